"""``python -m mesh_components diff``: end to end on the staging stack (the lead's renderer), against
kubectl dumps and against a fake API server; the three formats; exit codes; errors."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from diff_helpers import (app_pods, fake_clusters, fake_desired, installed_gateway_api_crds, live_from_desired, sample_desired, write_dump,
                          write_kubeconfig)
from mesh_components.core.gateway_api import crd_name
from mesh_components.cli import drift_cli
from mesh_components.cli import main
from mesh_components.drift.live import WATCHED_KINDS, kinds_to_read, list_path
from mesh_components.core.meta import MANAGED_BY_LABEL, MANAGED_BY_VALUE, MESH_LABEL
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_stack

ROOT = Path(__file__).resolve().parents[1]
STACK = "staging"


@pytest.fixture(autouse=True)
def _project_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # stack names resolve against stacks/ here


@pytest.fixture(scope="module")
def staging():
    """The staging stack rendered by the lead's renderer: (mesh name, cluster -> ClusterState)."""
    loaded = load_stack(str(ROOT / "stacks" / f"Pulumi.{STACK}.yaml"), root=ROOT)
    return loaded.spec.name, render_mesh(loaded)


def clean_live(states, spec=None):
    """cluster -> objects as the clusters hold them after a clean deploy (noise + Helm storage, and
    the Gateway API CRDs its manifest installs), with the application's pods as ``spec`` (default:
    the staging stack's) declares them, meshed (``diff_helpers.app_pods``)."""
    spec = spec or load_stack(str(ROOT / "stacks" / f"Pulumi.{STACK}.yaml"), root=ROOT).spec
    return {c: live_from_desired(st.objects, st.releases) + installed_gateway_api_crds(st) + app_pods(spec, c)
            for c, st in states.items()}


def three_changes(live, mesh):
    """Change one split weight, delete one AuthorizationPolicy, add one owned unknown object, all in
    the first cluster. Returns a description of each for the assertions."""
    cluster = next(iter(live))
    objs = live[cluster]
    route = next(o for o in objs if o["kind"] == "HTTPRoute" and o["metadata"]["name"] == "bookstore-split")
    backend = route["spec"]["rules"][0]["backendRefs"][0]
    old = backend["weight"]
    backend["weight"] = 50
    policy = next(o for o in objs if o["kind"] == "AuthorizationPolicy")
    objs.remove(policy)
    objs.append({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "left-behind", "namespace": "bookstore", "uid": "x", "resourceVersion": "9",
                              "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, MESH_LABEL: mesh}},
                 "data": {"k": "v"}})
    return {"cluster": cluster, "weight_path": f"spec.rules[0].backendRefs[name={backend['name']}].weight",
            "old": old, "policy": policy["metadata"]}


def dump(tmp_path, live):
    for c, objs in live.items():
        write_dump(tmp_path, c, objs)
    return tmp_path


# ---------------------------------------------------------------------------------------------
# dumps


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_clean_dumps_report_no_drift(staging, tmp_path, capsys, fmt):
    _mesh, states = staging
    code = main(["diff", STACK, "--live", str(dump(tmp_path, clean_live(states))), "--format", fmt])
    out = capsys.readouterr()
    assert (code, out.err) == (0, ""), out.out
    if fmt == "json":
        doc = json.loads(out.out)
        assert doc["drift"] is False and sum(doc["summary"].values()) == 0
        assert [c["cluster"] for c in doc["clusters"]] == list(states)
    else:
        assert "no drift" in out.out


def test_three_changes_are_exactly_the_three_reported_in_every_format(staging, tmp_path, capsys):
    mesh, states = staging
    live = clean_live(states)
    what = three_changes(live, mesh)
    d = dump(tmp_path, live)

    assert main(["diff", STACK, "--live", str(d), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["drift"] is True
    assert doc["summary"] == {"missing": 1, "changed": 1, "orphaned": 1, "releases": 0, "findings": 0}
    first, *others = doc["clusters"]
    assert first["cluster"] == what["cluster"] and all(
        not (c["missing"] or c["changed"] or c["orphaned"] or c["releases"]) for c in others)
    (missing,) = first["missing"]
    assert (missing["kind"], missing["namespace"], missing["name"]) == (
        "AuthorizationPolicy", what["policy"]["namespace"], what["policy"]["name"])
    (changed,) = first["changed"]
    assert (changed["kind"], changed["name"]) == ("HTTPRoute", "bookstore-split")
    assert changed["changes"] == [{"path": what["weight_path"], "desired": what["old"], "live": 50}]
    (orphan,) = first["orphaned"]
    assert (orphan["kind"], orphan["namespace"], orphan["name"]) == ("ConfigMap", "bookstore", "left-behind")
    assert doc["findings"] == []

    assert main(["diff", STACK, "--live", str(d)]) == 2
    text = capsys.readouterr().out
    assert "DRIFT: 1 missing, 1 changed, 1 orphaned, 0 Helm release(s), 0 intent finding(s) (3 in all)" in text
    assert f"missing in cluster              AuthorizationPolicy {what['policy']['namespace']}/{what['policy']['name']}" in text
    assert f"{what['weight_path']}: desired {what['old']}, live 50" in text
    assert "orphaned (owned, not declared)  ConfigMap bookstore/left-behind (v1)" in text
    assert sum(line.startswith("  ") and not line.startswith("      ") for line in text.splitlines()) == 3

    assert main(["diff", STACK, "--live", str(d), "--format", "markdown"]) == 2
    md = capsys.readouterr().out
    assert md.startswith(f"## :warning: Mesh drift: stack `{STACK}` (mesh `{mesh}`)")
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith(("| State", "| Field", "| ---"))]
    assert [r.split(" | ")[0] for r in rows] == ["| missing", "| changed", "| orphaned", f"| `{what['weight_path']}`"]
    assert f"| `{what['weight_path']}` | `{what['old']}` | `50` |" in md


def test_release_drift_and_intent_findings_end_to_end(staging, tmp_path, capsys):
    mesh, states = staging
    live = clean_live(states)
    cluster = next(iter(states))
    istiod = next(r for r in states[cluster].releases if r.chart == "istiod")
    from diff_helpers import deployed, helm_secret
    values = deployed(copy.deepcopy(istiod.values))
    values["global"]["meshID"] = "someone-elses-mesh"
    live[cluster] = [o for o in live[cluster] if o["metadata"]["name"] != f"sh.helm.release.v1.{istiod.name}.v1"]
    live[cluster] += [helm_secret(istiod, 1, "superseded"), helm_secret(istiod, 2, values=values)]
    assert main(["diff", STACK, "--live", str(dump(tmp_path, live)), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["clusters"][0]["releases"] == [{"namespace": istiod.namespace, "name": istiod.name, "state": "changed",
                                               "changes": [{"path": "values.global.meshID", "desired": mesh,
                                                            "live": "someone-elses-mesh"}]}]
    assert [(f["check"], f["cluster"]) for f in doc["findings"]] == [("mesh-id", None)]


# ---------------------------------------------------------------------------------------------
# live clusters through a kubeconfig


def test_live_clusters_through_kubeconfig_one_list_per_kind_and_cluster(staging, tmp_path, capsys):
    mesh, states = staging
    live = clean_live(states)
    with fake_clusters(live, served=WATCHED_KINDS) as servers:
        kc = write_kubeconfig(tmp_path / "kubeconfig", {c: s.url for c, s in servers.items()})
        assert main(["diff", STACK, "--kubeconfig", str(kc)]) == 0
        assert "no drift" in capsys.readouterr().out
        for c, server in servers.items():
            expected = [list_path(av, k) for av, k in kinds_to_read(states[c].objects)] + [
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd_name(k)}"  # by name, once each
                for k in sorted({k for k, _, _ in states[c].gateway_api.versions})]
            assert Counter(server.requests) == Counter(expected) and max(Counter(server.requests).values()) == 1
            server.requests.clear()
        three_changes(live, mesh)
        for c, server in servers.items():
            server.set_objects(live[c])
        assert main(["diff", STACK, "--kubeconfig", str(kc), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"] == {"missing": 1, "changed": 1, "orphaned": 1, "releases": 0, "findings": 0}


# ---------------------------------------------------------------------------------------------
# errors and options (hand-made desired state, no renderer needed)


def test_cluster_filter_output_file_and_no_intent(monkeypatch, tmp_path, capsys):
    desired = fake_desired(monkeypatch)
    live = {c: live_from_desired(s["objects"], s["releases"]) for c, s in desired.items()}
    live["west"] = [o for o in live["west"] if o["kind"] != "Namespace"]
    write_dump(tmp_path, "east", live["east"])
    write_dump(tmp_path, "west", live["west"])
    assert main(["diff", "x", "--live", str(tmp_path), "--cluster", "east"]) == 0
    assert main(["diff", "x", "--live", str(tmp_path), "-o", str(tmp_path / "r.md"), "--format", "markdown"]) == 2
    assert capsys.readouterr().out.count("no drift") == 2
    assert "### Cluster `west`: 2 difference(s)" in (tmp_path / "r.md").read_text()
    assert main(["diff", "x", "--live", str(tmp_path), "--cluster", "north"]) == 1
    assert capsys.readouterr().err == "--cluster: no cluster 'north' in the stack (clusters: east, west)\n"


def test_errors_are_path_message_lines_with_exit_1(monkeypatch, tmp_path, capsys):
    assert main(["diff", "no-such-stack", "--live", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("no-such-stack: no such stack or stack file") and "Traceback" not in err
    fake_desired(monkeypatch)
    (tmp_path / "east.yaml").write_text("items: [\n")
    assert main(["diff", "x", "--live", str(tmp_path)]) == 1
    first, second = capsys.readouterr().err.splitlines()
    assert first.startswith(f"{tmp_path}/east.yaml:2: not valid YAML: ")
    assert second == f"{tmp_path}/west.yaml: no dump for cluster 'west' (expected west.yaml, west.yml, west.json or west/)"
    assert main(["diff", "x"]) == 1
    assert capsys.readouterr().err.splitlines()[0].startswith("mesh.clusters[0].kubeconfig: no kubeconfig for cluster 'east'")


def test_unexpected_failure_is_one_line_not_a_traceback(monkeypatch, tmp_path, capsys):
    def boom(stack):
        raise RuntimeError("kaput")
    monkeypatch.setattr(drift_cli, "_desired", boom)
    assert main(["diff", "x", "--live", str(tmp_path)]) == 1
    assert capsys.readouterr().err == "x: internal error: RuntimeError: kaput\n"


def test_real_process_exit_codes_and_no_traceback(staging, tmp_path):
    _mesh, states = staging
    d = dump(tmp_path / "ok", clean_live(states))
    run = lambda *a: subprocess.run([sys.executable, "-m", "mesh_components", "diff", *a],
                                    cwd=ROOT, capture_output=True, text=True)
    ok = run(STACK, "--live", str(d))
    assert (ok.returncode, ok.stderr) == (0, "")
    bad = run(STACK, "--live", str(tmp_path / "missing"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr == f"{tmp_path / 'missing'}: no such directory (give --live DIR with one dump per cluster)\n"
    usage = run(STACK, "--live", str(d), "--no-such-flag")
    assert usage.returncode == 1 and usage.stderr.splitlines()[-1] == "diff: unrecognized arguments: --no-such-flag"


def test_usage_errors_exit_1_not_2(capsys):
    for argv in (["diff"], ["diff", "x", "--live", "d", "--kubeconfig", "k"], ["diff", "x", "--format", "html"],
                 ["diff", "x", "--bogus"], ["diff", "x", "--live"], ["diff", "x", "--cluster"],
                 ["diff", "x", "y", "--live", "d"], ["diff", "x", "--format"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 1, argv
        assert capsys.readouterr().err.splitlines()[-1].startswith("diff: "), argv


def test_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["diff", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    codes = out[out.index("exit codes:"):].splitlines()
    assert [line.split()[0] for line in codes[1:] if line.startswith("  ") and line.split()[0].isdigit()] == ["0", "1", "2"]
    assert "no drift" in codes[1] and "usage error" in out and "drift" in codes[-2] + codes[-1]


def test_duplicate_live_objects_exit_1_naming_both_files(monkeypatch, tmp_path, capsys):
    desired = fake_desired(monkeypatch)
    live = {c: live_from_desired(s["objects"], s["releases"]) for c, s in desired.items()}
    write_dump(tmp_path, "west", live["west"])
    (tmp_path / "east").mkdir()
    policy = next(o for o in live["east"] if o["kind"] == "AuthorizationPolicy")
    write_dump(tmp_path / "east", "fresh", live["east"])
    stale = copy.deepcopy(policy)
    stale["spec"] = {"action": "ALLOW", "rules": [{}]}  # allow-all, from an old dump
    write_dump(tmp_path / "east", "stale", [stale])
    assert main(["diff", "x", "--live", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"{tmp_path}/east/stale.yaml#doc[0].items[0]: AuthorizationPolicy bookstore/"
                           f"{policy['metadata']['name']} (security.istio.io/v1) is also at {tmp_path}/east/fresh.yaml#doc[0].items[")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_other_stacks_clean_and_a_network_label_change_is_an_intent_finding(stack, tmp_path, capsys):
    loaded = load_stack(str(ROOT / "stacks" / f"Pulumi.{stack}.yaml"), root=ROOT)
    live = clean_live(render_mesh(loaded), loaded.spec)
    assert main(["diff", stack, "--live", str(dump(tmp_path / "clean", live))]) == 0, capsys.readouterr().out
    capsys.readouterr()
    cluster = next(iter(live))
    ns = next(o for o in live[cluster] if o["kind"] == "Namespace" and o["metadata"]["name"] == "istio-system")
    ns["metadata"]["labels"]["topology.istio.io/network"] = "somewhere-else"
    assert main(["diff", stack, "--live", str(dump(tmp_path / "moved", live)), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert [(f["check"], f["cluster"]) for f in doc["findings"]] == [("network", cluster)]
    (changed,) = doc["clusters"][0]["changed"]
    assert changed["changes"][0]["path"] == 'metadata.labels["topology.istio.io/network"]'


def test_a_markdown_report_is_cut_to_fit_a_comment_and_says_so(staging, tmp_path, capsys, monkeypatch):
    """Issue 13 item 8 (report size): the Markdown report is posted as a GitHub comment (at most 65,536
    characters), so past ``MARKDOWN_LIMIT`` it is cut at a line, an open ``<details>`` closed, and the
    last line says how much is left out; text and JSON stay whole."""
    from mesh_components.cli import drift_cli

    mesh, states = staging
    live = clean_live(states)
    for objs in live.values():  # many orphans and many changed fields: a long report
        objs += [{"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": f"left-behind-{i}", "namespace": "bookstore", "uid": str(i), "resourceVersion": "9",
                               "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, MESH_LABEL: mesh}}} for i in range(300)]
    d = dump(tmp_path, live)
    assert main(["diff", STACK, "--live", str(d), "--format", "markdown"]) == 2
    whole = capsys.readouterr().out
    assert "left-behind-299" in whole and "Cut to fit" not in whole
    monkeypatch.setattr(drift_cli, "MARKDOWN_LIMIT", 5000)
    assert main(["diff", STACK, "--live", str(d), "--format", "markdown"]) == 2
    cut = capsys.readouterr().out
    assert len(cut) <= 5000 + 1 and whole.startswith(cut.rsplit("\n\n**Cut to fit", 1)[0].removesuffix("\n\n</details>"))
    last = cut.rstrip("\n").splitlines()[-1]
    omitted = int(last.split("** ")[1].split(" ")[0])
    assert last.startswith("**Cut to fit a comment:**") and omitted > 0
    assert cut.count("<details>") == cut.count("</details>")
    assert main(["diff", STACK, "--live", str(d), "--format", "text"]) == 2
    assert "left-behind-299" in capsys.readouterr().out
