"""Reading live state: the Kubernetes list API (a fake one on 127.0.0.1) and kubectl dumps."""
from __future__ import annotations

from collections import Counter

import pytest
import yaml

from diff_helpers import (MESH, FakeApiServer, fake_clusters, live_from_desired, sample_desired,
                          write_dump, write_kubeconfig)
from mesh_components.drift_cli import build_report, read_live_clusters, resolve_kubeconfigs
from mesh_components.live import (LiveError, WATCHED_KINDS, client_for, kinds_to_read, list_kind,
                                  list_path, parse_dump_text, plural_of, read_cluster, read_dump_dir)


class C:  # a spec Cluster stand-in: name + kubeconfig source
    def __init__(self, name, kubeconfig=None):
        self.name, self.kubeconfig = name, kubeconfig


def test_list_paths_and_plurals():
    assert list_path("v1", "Namespace") == "/api/v1/namespaces"
    assert list_path("security.istio.io/v1", "AuthorizationPolicy") == "/apis/security.istio.io/v1/authorizationpolicies"
    assert list_path("gateway.networking.k8s.io/v1", "Gateway") == "/apis/gateway.networking.k8s.io/v1/gateways"
    assert (plural_of("ServiceEntry"), plural_of("Frobnitz"), plural_of("Policy"), plural_of("Class")) == (
        "serviceentries", "frobnitzs", "policies", "classes")


def test_kinds_to_read_dedupes_by_group_and_kind_preferring_desired_versions():
    objs = [{"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication"},
            {"apiVersion": "v1", "kind": "Service"}, {"apiVersion": "v1", "kind": "Service"}]
    kinds = kinds_to_read(objs)
    assert kinds[:2] == [("security.istio.io/v1beta1", "PeerAuthentication"), ("v1", "Service")]
    assert ("security.istio.io/v1", "PeerAuthentication") not in kinds
    groups = {(av.rpartition("/")[0], k) for av, k in kinds}
    assert len(kinds) == len(groups) == len({(av.rpartition("/")[0], k) for av, k in WATCHED_KINDS})


def test_two_clusters_are_read_with_one_list_per_kind_and_cluster(tmp_path):
    desired = sample_desired()
    live = {c: live_from_desired(s["objects"], s["releases"]) for c, s in desired.items()}
    with fake_clusters(live, served=WATCHED_KINDS) as servers:
        kc = write_kubeconfig(tmp_path / "kubeconfig", {c: s.url for c, s in servers.items()})
        configs = resolve_kubeconfigs([C("east"), C("west")], [str(kc)], [])
        assert configs == {"east": (str(kc), "east"), "west": (str(kc), "west")}
        states = read_live_clusters(configs, desired)
        for cluster, server in servers.items():
            kinds = kinds_to_read(desired[cluster]["objects"])
            assert Counter(server.requests) == Counter(list_path(av, k) for av, k in kinds)
            assert all(n == 1 for n in Counter(server.requests).values())
            assert set(server.auth) == {f"Bearer token-{cluster}"}
            assert states[cluster].requests == len(kinds)
    report = build_report("test", MESH, desired, states)
    assert not report.has_drift, report
    assert sorted(states["east"].releases) == [("istio-system", "istio-base"), ("istio-system", "istiod-1-30")]


def test_items_get_kind_and_api_version_from_the_list_and_pages_are_followed():
    objs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}", "namespace": "n"}}
            for i in range(7)]
    with FakeApiServer(objs) as server:
        client = client_for({"apiVersion": "v1", "kind": "Config", "current-context": "x",
                             "clusters": [{"name": "x", "cluster": {"server": server.url}}],
                             "users": [{"name": "u", "user": {"token": "t"}}],
                             "contexts": [{"name": "x", "context": {"cluster": "x", "user": "u"}}]})
        got, requests = list_kind(client, "v1", "ConfigMap", page_size=3)
    assert requests == 3 and server.requests == ["/api/v1/configmaps"] * 3
    assert [o["metadata"]["name"] for o in got] == [f"cm{i}" for i in range(7)]
    assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in got)


def test_kind_not_served_is_a_note_when_declared_and_silent_otherwise(tmp_path):
    desired = sample_desired()["east"]
    live = [o for o in live_from_desired(desired["objects"]) if o["kind"] != "HTTPRoute"]
    with FakeApiServer(live, served=[("v1", "Secret")]) as server:
        kc = write_kubeconfig(tmp_path / "kc", {"east": server.url})
        state = read_cluster(client_for(kc, "east"), kinds_to_read(desired["objects"]),
                             declared_kinds=[(o["apiVersion"], o["kind"]) for o in desired["objects"]])
    assert state.notes == ["HTTPRoute (gateway.networking.k8s.io/v1) is not served by this cluster (CRD not installed?)"]
    assert state.releases == {}  # Secrets were read, no Helm storage among them


def test_refused_list_is_an_error_naming_cluster_and_path(tmp_path):
    with FakeApiServer([], served=[("v1", "Namespace")]) as server:
        server.status["/api/v1/secrets"] = 403
        kc = write_kubeconfig(tmp_path / "kc", {"east": server.url})
        with pytest.raises(LiveError) as e:
            read_live_clusters({"east": (str(kc), "east")}, {"east": {"objects": [], "releases": []}})
    (path, message), = e.value.problems
    assert path == "cluster east: /api/v1/secrets" and message.startswith("HTTP 403")


def test_unreachable_cluster_is_an_error(tmp_path):
    kc = write_kubeconfig(tmp_path / "kc", {"east": "http://127.0.0.1:9"})
    with pytest.raises(LiveError) as e:
        read_live_clusters({"east": (str(kc), "east")}, {"east": {"objects": [], "releases": []}})
    assert e.value.problems[0][0] == "cluster east: /api/v1/namespaces"
    assert "cannot reach the API server" in e.value.problems[0][1]


def test_kubeconfig_resolution_order_and_errors(tmp_path):
    kc = write_kubeconfig(tmp_path / "kc", {"ctx-a": "http://127.0.0.1:1", "b": "http://127.0.0.1:2"})

    class Src:
        def __init__(self, **kw):
            self.file = kw.get("file")
            self.env = kw.get("env")
            self.context = kw.get("context")
            self.stack_reference = kw.get("stack_reference")

    clusters = [C("a", Src(file=str(kc), context="ctx-a")), C("b", Src(env="KC_B"))]
    got = resolve_kubeconfigs(clusters, [], [], environ={"KC_B": str(kc)})
    assert got == {"a": (str(kc), "ctx-a"), "b": (str(kc), "b")}
    got = resolve_kubeconfigs(clusters, [f"b={kc}"], ["b=ctx-a"], environ={})
    assert got["b"] == (str(kc), "ctx-a")
    # a kubeconfig of its own (e.g. a stack output): its current context
    assert resolve_kubeconfigs([C("x"), C("y")], [f"x={kc}", f"y={kc}"], [], environ={}) == {
        "x": (str(kc), None), "y": (str(kc), None)}
    inline = yaml.safe_load(kc.read_text())
    assert resolve_kubeconfigs(clusters[1:], [], [], environ={"KC_B": kc.read_text()}) == {"b": (inline, None)}
    with pytest.raises(LiveError) as e:
        resolve_kubeconfigs([C("a"), C("c", Src(stack_reference="org/eks/prod"))], [], ["x=y"], environ={})
    assert [p for p, _ in e.value.problems] == ["--kubeconfig/--context x", "mesh.clusters[0].kubeconfig",
                                               "mesh.clusters[1].kubeconfig"]
    with pytest.raises(LiveError) as e:
        resolve_kubeconfigs([C("b"), C("z")], [str(kc)], [], environ={})
    assert e.value.problems == [(str(kc), "no context for cluster 'z': pass --context z=CONTEXT (contexts: ctx-a, b)")]


# ---------------------------------------------------------------------------------------------
# dumps


def test_dump_formats_list_multidoc_json_and_directory(tmp_path):
    objs = live_from_desired(sample_desired()["east"]["objects"])
    write_dump(tmp_path / "list", "east", objs)
    write_dump(tmp_path / "multi", "east", objs, as_list=False)
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "east.json").write_text(__import__("json").dumps({"kind": "List", "apiVersion": "v1", "items": objs}))
    (tmp_path / "dir" / "east" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "east" / "a.yaml").write_text(yaml.safe_dump_all(objs[:3]))
    (tmp_path / "dir" / "east" / "sub" / "b.yml").write_text(yaml.safe_dump({"kind": "List", "apiVersion": "v1", "items": objs[3:]}))
    for d in ("list", "multi", "json", "dir"):
        state = read_dump_dir(tmp_path / d, ["east"])["east"]
        assert sorted(o["metadata"]["name"] for o in state.objects) == sorted(o["metadata"]["name"] for o in objs), d
        assert state.releases == {}  # Secrets dumped (cacerts), no Helm storage


def test_typed_list_items_inherit_kind():
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "SecretList", "items": [{"metadata": {"name": "a"}}]})
    assert parse_dump_text(text, "f") == [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}}]


def test_dump_without_secrets_says_releases_were_not_read(tmp_path):
    write_dump(tmp_path, "east", [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}])
    state = read_dump_dir(tmp_path, ["east"])["east"]
    assert state.releases is None and "Helm releases not compared" in state.notes[0]


def test_bad_dumps_give_every_problem_with_its_path(tmp_path):
    (tmp_path / "east.yaml").write_text("kind: List\nitems:\n  - {kind: ConfigMap, metadata: {name: x}}\n  - 3\n---\n[1\n")
    (tmp_path / "west.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path, ["east", "west", "north"])
    assert [p for p, _ in e.value.problems] == [f"{tmp_path}/east.yaml:7", f"{tmp_path}/west.yaml#doc[0]",
                                               f"{tmp_path}/north.yaml"]
    assert e.value.problems[1][1] == "not a Kubernetes object: missing metadata.name"
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path / "nope", ["east"])
    assert "no such directory" in e.value.problems[0][1]
    (tmp_path / "east.yaml").write_text("kind: List\nitems:\n  - {kind: ConfigMap, metadata: {name: x}}\n  - 3\n")
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path, ["east"])
    assert e.value.problems == [(f"{tmp_path}/east.yaml#doc[0].items[0]", "not a Kubernetes object: missing apiVersion"),
                                (f"{tmp_path}/east.yaml#doc[0].items[1]", "expected a Kubernetes object or List, got a number")]


# ---------------------------------------------------------------------------------------------
# one object per identity (issue 13, item 10): never last-one-wins


def allow_all(version: str = "v1", namespace: str = "bookstore", name: str = "allow-all") -> dict:
    return {"apiVersion": f"security.istio.io/{version}", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"rules": [{}]}}


def test_the_same_object_in_two_dump_files_is_an_error_naming_both(tmp_path):
    # a stale dump beside a fresh one: the allow-all policy must not vanish behind its other copy;
    # the version is not part of the identity (diff.object_ref), so v1beta1 vs v1 is the same object
    (tmp_path / "east" / "old").mkdir(parents=True)
    (tmp_path / "east" / "a.yaml").write_text(yaml.safe_dump_all([allow_all("v1beta1")]))
    (tmp_path / "east" / "old" / "b.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "List", "items": [allow_all("v1", name="other"), allow_all("v1")]}))
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path, ["east"])
    ((where, message),) = e.value.problems
    assert where == f"{tmp_path}/east/old/b.yaml#doc[0].items[1]"
    assert message.startswith("AuthorizationPolicy bookstore/allow-all (security.istio.io/v1) is also at "
                              f"{tmp_path}/east/a.yaml#doc[0]: ")
    assert "remove the stale copy" in message


def test_the_same_object_twice_in_one_file_is_an_error_and_near_twins_are_not(tmp_path):
    write_dump(tmp_path, "east", [allow_all(), allow_all(namespace="other"), allow_all(name="x"),
                                  {**allow_all(), "apiVersion": "security.linkerd.io/v1"}])
    assert len(read_dump_dir(tmp_path, ["east"])["east"].objects) == 4  # namespace, name, group differ
    write_dump(tmp_path, "east", [allow_all(), allow_all()], as_list=False)
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path, ["east"])
    assert [p for p, _ in e.value.problems] == [f"{tmp_path}/east.yaml#doc[1]"]
    assert f"is also at {tmp_path}/east.yaml#doc[0]" in e.value.problems[0][1]


def test_two_storage_secrets_for_one_release_revision_are_an_error_naming_both(tmp_path):
    from diff_helpers import helm_secret

    rel = sample_desired()["east"]["releases"][1]
    copy_ = helm_secret(rel, 2, values={"global": {"meshID": "stale"}})
    copy_["metadata"]["name"] = "istiod-backup"  # another Secret, same labels: release and revision 2
    write_dump(tmp_path, "east", [helm_secret(rel, 1, "superseded"), helm_secret(rel, 2), copy_])
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path, ["east"])
    ((where, message),) = e.value.problems
    assert where == f"{tmp_path}/east.yaml#doc[0].items[2] (secret istio-system/istiod-backup)"
    assert message == (f"Helm release istio-system/istiod-1-30 revision 2 is also stored in {tmp_path}/east.yaml"
                       "#doc[0].items[1] (secret istio-system/sh.helm.release.v1.istiod-1-30.v2): keep one Secret "
                       "per revision")


def test_a_list_api_that_repeats_an_object_is_an_error_and_diff_cluster_refuses_twins():
    from mesh_components.diff import diff_cluster
    from mesh_components.errors import MeshError

    with FakeApiServer([allow_all(), allow_all("v1beta1")]) as server:
        client = client_for({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                             "clusters": [{"name": "c", "cluster": {"server": server.url}}],
                             "users": [{"name": "u", "user": {"token": "t"}}],
                             "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]})
        with pytest.raises(LiveError) as e:
            read_cluster(client, [("security.istio.io/v1", "AuthorizationPolicy"),
                                  ("security.istio.io/v1beta1", "AuthorizationPolicy")])
    assert [p for p, _ in e.value.problems] == ["/apis/security.istio.io/v1beta1/authorizationpolicies items[0]"]
    with pytest.raises(MeshError) as e:
        diff_cluster("east", MESH, [], [allow_all(), allow_all("v1beta1")])
    assert e.value.problems == [("cluster east", "AuthorizationPolicy bookstore/allow-all (security.istio.io/v1beta1) "
                                                 "is in the live objects twice: one object per API group, kind, "
                                                 "namespace and name")]


def test_dumps_nested_too_deeply_or_expanding_aliases_are_refused_not_walked(tmp_path):
    # "billion laughs": 10 levels of 10 aliases each expand to 10**10 values; refused before the
    # diff walks them. JSON deeper than its parser's recursion limit: an error, not a traceback.
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: x, namespace: n}", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    (tmp_path / "east.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "west.json").write_text('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}, "d": '
                                        + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path, ["east", "west"])
    assert [p for p, _ in e.value.problems] == [f"{tmp_path}/east.yaml#doc[0]", f"{tmp_path}/west.json"]
    assert all("nested too deeply" in m and "YAML aliases" in m for _, m in e.value.problems)
    (tmp_path / "east.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nd: &a [1, *a]\n")
    with pytest.raises(LiveError) as e:  # a list that contains itself
        read_dump_dir(tmp_path, ["east"])
    assert e.value.problems[0][0] == f"{tmp_path}/east.yaml#doc[0]"
    small = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: z, namespace: n}\nx: &r [1]\ny: *r\n"
    (tmp_path / "east.yaml").write_text(small)  # an alias or two is fine
    assert read_dump_dir(tmp_path, ["east"])["east"].objects[0]["y"] == [1]
