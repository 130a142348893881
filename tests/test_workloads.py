"""Issue 11 point 13: ``diff`` checks what the stack assumes of the live workloads, as ``istioctl
analyze`` does (istio 1.30.3 ``pkg/config/analysis/analyzers/injection/injection.go``: IST0102 a
namespace not enrolled, IST0103 a pod without ``istio-proxy`` among its containers *or* init
containers), for every mesh we render.

The pods are shaped as each mesh's injector leaves them (``diff_helpers.app_pods``, which cites the
container names and annotations at our pins); the namespaces are those the stack renders, deployed.
"""
from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pytest

from diff_helpers import FakeApiServer, app_pods, live_from_desired, write_dump, write_kubeconfig
from mesh_components.cli import main
from mesh_components.cli.drift_cli import build_report
from mesh_components.drift.live import (WATCHED_KINDS, client_for, kinds_to_read, list_path, read_cluster, read_dump_dir)
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_stack
from mesh_components.drift.workloads import check_workloads, expected_workloads, trim_pod

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("dev", "staging", "prod", "linkerd", "osm")


@pytest.fixture(scope="module")
def stacks():
    out = {}
    for name in STACKS:
        loaded = load_stack(name, root=ROOT)
        out[name] = (loaded.spec, render_mesh(loaded))
    return out


def namespaces(states) -> dict[str, list[dict]]:
    """cluster -> the Namespaces the stack renders, as the API server returns them."""
    return {c: live_from_desired([o for o in st.objects if o["kind"] == "Namespace"]) for c, st in states.items()}


def live_of(spec, states, native=False) -> dict[str, list[dict]]:
    return {c: ns + app_pods(spec, c, native_sidecars=native) for c, ns in namespaces(states).items()}


def pod(live, cluster, name_prefix):
    return next(o for o in live[cluster] if o["kind"] == "Pod" and o["metadata"]["name"].startswith(name_prefix))


def by_check(findings):
    return sorted((f.check, f.cluster, f.subject) for f in findings)


@pytest.mark.parametrize("name", STACKS)
def test_meshed_pods_as_each_injector_leaves_them_satisfy_every_stack(stacks, name):
    spec, states = stacks[name]
    assert check_workloads(spec, live_of(spec, states)) == []
    if spec.backend.type == "linkerd" or (spec.backend.type == "istio" and spec.backend.istio.data_plane == "sidecar"):
        # native sidecars: the proxy is an init container (istio ENABLE_NATIVE_SIDECARS=auto,
        # pilot/pkg/features/pilot.go:330-334; linkerd controller/webhook/util.go)
        assert check_workloads(spec, live_of(spec, states, native=True)) == []


def test_expected_workloads_follow_services_versions_and_clusters(stacks):
    spec, _ = stacks["prod"]
    got = {(w.cluster, w.namespace, w.service, w.version) for w in expected_workloads(spec)}
    v2 = {c for c, _, s, v in got if (s, v) == ("bookstore", "v2")}
    assert v2 == {"prod-aws"}  # versions[1].clusters: [prod-aws]
    assert {c for c, _, s, v in got if (s, v) == ("bookstore", "v1")} == set(spec.cluster_names())
    w = next(w for w in expected_workloads(spec) if (w.service, w.version) == ("bookstore", "v2"))
    assert dict(w.selector) == {"app": "bookstore", "version": "v2"} and w.account == "bookstore"
    assert w.path.endswith(".versions[1]")


def test_a_version_without_pods_is_a_finding_with_the_fix(stacks):
    spec, states = stacks["staging"]
    live = live_of(spec, states)
    cluster = "staging-usw2"
    live[cluster] = [o for o in live[cluster] if not o["metadata"]["name"].startswith("bookstore-v2-")]
    (f,) = check_workloads(spec, live)
    assert (f.check, f.cluster, f.subject) == ("workload-pods", cluster, "service bookstore/bookstore version v2")
    assert "app=bookstore,version=v2" in f.message and "mesh.services[2].versions[1]" in f.message
    assert f"leave {cluster} out of mesh.services[2].versions[1].clusters" in f.message


def test_pods_selected_by_the_service_but_not_by_the_mesh(stacks):
    spec, states = stacks["dev"]
    live = live_of(spec, states)
    (cluster,) = live
    p = pod(live, cluster, "bookbuyer-")
    p["metadata"]["labels"] = {"app.kubernetes.io/name": "bookbuyer"}
    live[cluster].append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bookbuyer", "namespace": "bookbuyer"},
                          "spec": {"selector": {"app.kubernetes.io/name": "bookbuyer"}, "ports": [{"port": 14001}]}})
    got = check_workloads(spec, live)
    assert by_check(got) == [("workload-pods", cluster, "service bookbuyer/bookbuyer"),
                             ("workload-selector", cluster, "service bookbuyer/bookbuyer")]
    pods_f = next(f for f in got if f.check == "workload-pods")
    assert "the Service's selector app.kubernetes.io/name=bookbuyer selects bookbuyer-5d8f7c9b4-x2x7q" in pods_f.message
    assert "set mesh.services[0].labels to labels those pods carry" in pods_f.message


def relabel_mysql(live, cluster, with_service: bool) -> None:
    """mysql's pods labelled ``app.kubernetes.io/name: mysql`` only, optionally with the live
    Service that selects them."""
    for p in live[cluster]:
        if p["kind"] == "Pod" and p["metadata"]["name"].startswith("mysql-"):
            p["metadata"]["labels"] = {"app.kubernetes.io/name": "mysql"}
    if with_service:
        live[cluster].append({"apiVersion": "v1", "kind": "Service",
                              "metadata": {"name": "mysql", "namespace": "bookwarehouse"},
                              "spec": {"selector": {"app.kubernetes.io/name": "mysql"}, "ports": [{"port": 3306}]}})


def test_osm_selects_the_pods_of_a_service_by_its_live_selector(stacks):
    """OSM's policies name no pod labels: a TrafficTarget selects by ServiceAccount and OSM maps a
    Service to its pods by the live Service's selector (openservicemesh/osm v1.2.4
    pkg/k8s/client.go:223-246, pkg/providers/kube/client.go:139-160), so mysql pods without
    ``app: mysql`` are the mesh's when the live Service selects them; Istio's policies select
    ``app: mysql`` (``mesh_components.meshes.istio_policy``), so there they stay findings."""
    spec, states = stacks["osm"]
    live = live_of(spec, states)
    (cluster,) = live
    relabel_mysql(live, cluster, with_service=True)
    found = by_check(check_workloads(spec, live))
    assert not [f for f in found if f[0] in ("workload-pods", "workload-selector")], found
    # no live Service: the spec's labels, as before
    live = live_of(spec, states)
    relabel_mysql(live, cluster, with_service=False)
    assert ("workload-pods", cluster, "service bookwarehouse/mysql") in by_check(check_workloads(spec, live))

    spec, states = stacks["dev"]
    live = live_of(spec, states)
    (cluster,) = live
    relabel_mysql(live, cluster, with_service=True)
    assert {("workload-pods", cluster, "service bookwarehouse/mysql"),
            ("workload-selector", cluster, "service bookwarehouse/mysql")} <= set(by_check(check_workloads(spec, live)))


def test_another_service_account_is_a_finding(stacks):
    spec, states = stacks["linkerd"]
    live = live_of(spec, states)
    cluster = next(iter(live))
    pod(live, cluster, "bookwarehouse-")["spec"]["serviceAccountName"] = "default"
    (f,) = check_workloads(spec, live)
    assert (f.check, f.subject) == ("workload-service-account", "service bookwarehouse/bookwarehouse")
    assert "run as service account default, not bookwarehouse" in f.message
    assert "set serviceAccount: default" in f.message and "spec.serviceAccountName" in f.message


def test_istio_revision_injection_rules(stacks):
    """mutatingwebhook.yaml (1.30.3, lines 62-143): a revision's injector takes namespaces with
    ``istio.io/rev: <rev>`` and *no* ``istio-injection`` label; ``istio-injection: enabled`` is the
    default revision's; a pod labelled ``sidecar.istio.io/inject: "false"`` is never injected."""
    spec, states = stacks["staging"]  # revision 1-30
    cluster = "staging-use1"

    def ns_of(live, name):
        return next(o for o in live[cluster] if o["kind"] == "Namespace" and o["metadata"]["name"] == name)

    live = live_of(spec, states)
    ns_of(live, "bookstore")["metadata"]["labels"]["istio-injection"] = "enabled"
    (f,) = check_workloads(spec, live)
    assert (f.check, f.cluster, f.subject) == ("workload-namespace", cluster, "namespace bookstore")
    assert "istio-injection=enabled, which only the default revision's injector serves" in f.message
    assert "kubectl label namespace bookstore istio.io/rev=1-30 istio-injection-" in f.message

    live = live_of(spec, states)
    del ns_of(live, "bookthief")["metadata"]["labels"]["istio.io/rev"]
    (f,) = check_workloads(spec, live)
    assert (f.check, f.subject) == ("workload-namespace", "namespace bookthief")
    assert "neither istio.io/rev nor istio-injection" in f.message and "service bookthief/bookthief" in f.message
    # ... unless the pods name the revision themselves (the rev.object webhook)
    pod(live, cluster, "bookthief-")["metadata"]["labels"]["istio.io/rev"] = "1-30"
    assert check_workloads(spec, live) == []

    live = live_of(spec, states)
    ns_of(live, "bookbuyer")["metadata"]["labels"]["istio.io/rev"] = "1-29"
    (f,) = check_workloads(spec, live)
    assert "istio.io/rev=1-29, which no injector of the stack serves (revisions and tag: 1-30)" in f.message


def test_pods_without_a_proxy_are_found_with_the_fix(stacks):
    spec, states = stacks["staging"]
    cluster = "staging-use1"
    live = live_of(spec, states)
    p = pod(live, cluster, "bookstore-v1-")
    p["spec"]["containers"] = [c for c in p["spec"]["containers"] if c["name"] != "istio-proxy"]
    (f,) = check_workloads(spec, live)
    assert (f.check, f.subject) == ("workload-proxy", "service bookstore/bookstore version v1")
    assert "no Istio sidecar proxy container though the namespace enrols them" in f.message
    assert f.message.endswith("kubectl rollout restart -n bookstore deployment/bookstore-v1")

    p["metadata"]["labels"]["sidecar.istio.io/inject"] = "false"
    (f,) = check_workloads(spec, live)
    assert 'opts out with sidecar.istio.io/inject: "false"' in f.message


def test_ambient_pods_must_be_redirected(stacks):
    """istio-cni marks a captured pod ``ambient.istio.io/redirection: enabled`` (1.30.3
    cni/pkg/util/podutil.go:70-74); ``istio.io/dataplane-mode=none`` on a pod opts out (cni/README.md:55-59)."""
    spec, states = stacks["dev"]
    live = live_of(spec, states)
    (cluster,) = live
    p = pod(live, cluster, "mysql-")
    p["metadata"]["annotations"]["ambient.istio.io/redirection"] = "pending"
    (f,) = check_workloads(spec, live)
    assert f.check == "workload-proxy" and "not captured by ztunnel" in f.message
    p["metadata"]["labels"]["istio.io/dataplane-mode"] = "none"
    (f,) = check_workloads(spec, live)
    assert "opts out with istio.io/dataplane-mode=none" in f.message
    ns = next(o for o in live[cluster] if o["kind"] == "Namespace" and o["metadata"]["name"] == "bookstore")
    ns["metadata"]["labels"].pop("istio.io/dataplane-mode")
    assert ("workload-namespace", cluster, "namespace bookstore") in by_check(check_workloads(spec, live))


def test_linkerd_inject_annotation_on_namespace_or_pod(stacks):
    """linkerd2 edge-26.8.3 pkg/inject/report.go:183-227: the namespace's ``linkerd.io/inject:
    enabled`` unless the pod says ``disabled``; else the pod's own annotation."""
    spec, states = stacks["linkerd"]
    live = live_of(spec, states)
    cluster = next(iter(live))
    ns = next(o for o in live[cluster] if o["kind"] == "Namespace" and o["metadata"]["name"] == "bookthief")
    del ns["metadata"]["annotations"]["linkerd.io/inject"]
    (f,) = check_workloads(spec, live)
    assert (f.check, f.subject) == ("workload-namespace", "namespace bookthief")
    assert "kubectl annotate namespace bookthief linkerd.io/inject=enabled" in f.message
    p = pod(live, cluster, "bookthief-")
    p["metadata"]["annotations"]["linkerd.io/inject"] = "enabled"
    assert check_workloads(spec, live) == []
    live = live_of(spec, states)
    p = pod(live, cluster, "bookthief-")
    p["metadata"]["annotations"]["linkerd.io/inject"] = "disabled"
    p["spec"]["containers"] = [c for c in p["spec"]["containers"] if c["name"] != "linkerd-proxy"]
    (f,) = check_workloads(spec, live)
    assert f.check == "workload-proxy" and "opts out with linkerd.io/inject: disabled" in f.message


def test_osm_namespace_must_be_monitored_by_this_mesh(stacks):
    """osm v1.2.4 pkg/injector/webhook.go:304-306: the injector's webhook only sees namespaces
    labelled ``openservicemesh.io/monitored-by: <mesh name>``."""
    spec, states = stacks["osm"]
    live = live_of(spec, states)
    (cluster,) = live
    ns = next(o for o in live[cluster] if o["kind"] == "Namespace" and o["metadata"]["name"] == "bookwarehouse")
    ns["metadata"]["labels"]["openservicemesh.io/monitored-by"] = "another-mesh"
    (f,) = check_workloads(spec, live)
    assert (f.check, f.subject) == ("workload-namespace", "namespace bookwarehouse")
    assert "(it says 'another-mesh')" in f.message and "service bookwarehouse/mysql" in f.message
    assert f"openservicemesh.io/monitored-by={spec.name}" in f.message
    p = pod(live, cluster, "bookwarehouse-")
    p["spec"]["containers"] = [c for c in p["spec"]["containers"] if c["name"] != "envoy"]
    assert ("workload-proxy", cluster, "service bookwarehouse/bookwarehouse") not in by_check(check_workloads(spec, live))


# ---------------------------------------------------------------------------------------------
# reading Pods: one LIST per cluster, finished pods left out, trimmed


def test_pods_are_one_list_without_finished_pods_and_trimmed(stacks, tmp_path, monkeypatch):
    spec, states = stacks["staging"]
    cluster = "staging-use1"
    objects = live_from_desired(states[cluster].objects, states[cluster].releases) + app_pods(spec, cluster)
    big = copy.deepcopy(pod({cluster: objects}, cluster, "bookbuyer-"))
    big["spec"]["volumes"] = [{"name": f"v{i}", "emptyDir": {}} for i in range(50)]
    big["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "x" * 1000
    objects = [o for o in objects if o is not pod({cluster: objects}, cluster, "bookbuyer-")] + [big]
    import mesh_components.drift.live as live_mod
    queries = []
    real = live_mod._get_json
    monkeypatch.setattr(live_mod, "_get_json", lambda c, path, q, t: queries.append((path, q)) or real(c, path, q, t))
    with FakeApiServer(objects, served=WATCHED_KINDS) as server:
        kc = write_kubeconfig(tmp_path / "kc", {cluster: server.url})
        kinds = kinds_to_read(states[cluster].objects)
        state = read_cluster(client_for(kc, cluster), kinds)
    assert Counter(server.requests)[list_path("v1", "Pod")] == 1
    assert max(Counter(server.requests).values()) == 1 and state.requests == len(kinds)
    assert [q for p, q in queries if p == "/api/v1/pods"] == [
        [("limit", 500), ("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed")]]
    assert state.pods_read
    got = next(o for o in state.objects if o["kind"] == "Pod" and o["metadata"]["name"].startswith("bookbuyer-"))
    assert got == trim_pod(big) and "volumes" not in got["spec"]
    assert set(got["metadata"]["annotations"]) == {"sidecar.istio.io/status"}
    assert len(json.dumps(got)) < len(json.dumps(big)) / 4


def test_dumps_with_and_without_pods(stacks, tmp_path):
    spec, states = stacks["staging"]
    c = "staging-use1"
    objs = live_from_desired(states[c].objects, states[c].releases)
    write_dump(tmp_path / "none", c, objs)
    state = read_dump_dir(tmp_path / "none", [c])[c]
    assert not state.pods_read and "no Pods in the dump: workloads not checked (dump pods too)" in state.notes
    report = build_report("staging", spec.name, {c: states[c]}, {c: state}, spec=spec)
    assert not [f for f in report.findings if f.check.startswith("workload-")]
    write_dump(tmp_path / "pods", c, objs + app_pods(spec, c)[1:])
    state = read_dump_dir(tmp_path / "pods", [c])[c]
    assert state.pods_read and all(o == trim_pod(o) for o in state.objects if o["kind"] == "Pod")
    report = build_report("staging", spec.name, {c: states[c]}, {c: state}, spec=spec)
    assert not [d for cr in report.clusters for d in cr.orphaned if d.ref.kind == "Pod"]
    assert [(f.check, f.subject) for f in report.findings if f.check.startswith("workload-")] == [
        ("workload-pods", "service bookbuyer/bookbuyer")]


def test_diff_reports_workload_findings_in_every_format(stacks, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    spec, states = stacks["staging"]
    for c, st in states.items():
        pods = [p for p in app_pods(spec, c) if not (c == "staging-usw2" and p["metadata"]["name"].startswith("mysql-"))]
        write_dump(tmp_path, c, live_from_desired(st.objects, st.releases) + pods)
    assert main(["diff", "staging", "--live", str(tmp_path), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    mine = [f for f in doc["findings"] if f["check"].startswith("workload-")]
    assert [(f["check"], f["cluster"], f["subject"], f["declared"]) for f in mine] == [
        ("workload-pods", "staging-usw2", "service bookwarehouse/mysql", False)]
    assert main(["diff", "staging", "--live", str(tmp_path)]) == 2
    assert "  [workload-pods] staging-usw2: service bookwarehouse/mysql: no running pod" in capsys.readouterr().out
    assert main(["diff", "staging", "--live", str(tmp_path), "--format", "markdown"]) == 2
    assert "| workload-pods | staging-usw2 | service bookwarehouse/mysql | no running pod" in capsys.readouterr().out
    assert main(["diff", "staging", "--live", str(tmp_path), "--no-intent", "--format", "json"]) in (0, 2)
    assert not [f for f in json.loads(capsys.readouterr().out)["findings"] if f["check"].startswith("workload-")]


def test_a_drift_role_without_list_pods_gets_a_note_not_an_error(tmp_path):
    with FakeApiServer([], served=WATCHED_KINDS) as server:
        server.status["/api/v1/pods"] = 403
        kc = write_kubeconfig(tmp_path / "kc", {"east": server.url})
        state = read_cluster(client_for(kc, "east"), WATCHED_KINDS)
    assert not state.pods_read and state.requests == len(WATCHED_KINDS)
    assert state.notes == ["Pods are not readable here (HTTP 403): workloads not checked (grant list on pods)"]
