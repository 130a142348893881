"""Reading live state: the Kubernetes list API (a fake one on 127.0.0.1) and kubectl dumps."""
from __future__ import annotations

from collections import Counter

import pytest
import yaml

from diff_helpers import (MESH, FakeApiServer, deployed, fake_clusters, live_from_desired, sample_desired,
                          write_dump, write_kubeconfig)
from mesh_components.cli.drift_cli import build_report, read_live_clusters, resolve_kubeconfigs
from mesh_components.drift.live import (LiveError, WATCHED_KINDS, client_for, kinds_to_read, list_kind, list_path, parse_dump_text, plural_of, read_cluster, read_dump_dir)


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
    from mesh_components.drift.diff import diff_cluster
    from mesh_components.spec.errors import MeshError

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


# ---------------------------------------------------------------------------------------------
# any JSON shape in any field of a live object (issue 13, item 7): an error naming the object
# (its envelope is wrong) or a report (a wrong type below it is drift), never "internal error"

FUZZ_VALUES = (None, 1, "x", [], {}, True, -1, 1.5, [None], {"a": [1]})
FUZZ_STACK = {"name": "t", "backend": {"type": "istio"},
              "clusters": [{"name": "c1", "cloud": "onprem", "region": "local"}],
              "namespaces": [{"name": "app"}],
              "services": [{"name": "web", "namespace": "app", "ports": [{"port": 8080, "protocol": "http"}]},
                           {"name": "client", "namespace": "app", "ports": [{"port": 8080, "protocol": "http"}]}],
              "accessRules": [{"name": "r", "namespace": "app", "destination": {"serviceAccount": "web"},
                               "sources": [{"serviceAccount": "client", "namespace": "app"}],
                               "http": [{"methods": ["GET"], "pathRegex": "/ok"}]}]}


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    """A small stack and its cluster's clean live objects (server noise, Helm storage, pods)."""
    from diff_helpers import app_pods
    from mesh_components.core.render import render_mesh
    from mesh_components.spec import load_stack

    path = tmp_path_factory.mktemp("fuzz") / "Pulumi.t.yaml"
    path.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": FUZZ_STACK}}, sort_keys=False))
    loaded = load_stack(str(path))
    state = render_mesh(loaded)["c1"]
    live = live_from_desired(state.objects, state.releases) + app_pods(loaded.spec, "c1")
    # the CA Secret as applied with `stringData` (a hand-made dump; the server folds it into `data`)
    i = next(i for i, o in enumerate(live) if o["metadata"]["name"] == "cacerts")
    live[i] = deployed(next(o for o in state.objects if o["metadata"]["name"] == "cacerts"))
    assert live[i]["stringData"]
    return str(path), live


def _paths(node, at=()):
    """Every path below ``node`` (keys and list indices); ``managedFields`` entries count as one."""
    if at and at[-1] == "managedFields":
        return
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield at + (k,)
        yield from _paths(v, at + (k,))


def _with(obj, path, value):
    import copy

    out = copy.deepcopy(obj)
    node = out
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = copy.deepcopy(value)
    return out


def _envelope_ok(obj) -> bool:
    """The oracle, from k8s.io/apimachinery v0.36.3 pkg/apis/meta/v1/types.go (TypeMeta lines 42-56,
    ObjectMeta 131-250): apiVersion, kind and metadata.name non-empty strings, metadata a mapping,
    namespace a string or absent, labels and annotations absent or mappings of strings to strings."""
    meta = obj.get("metadata")
    strings = lambda m: m is None or isinstance(m, dict) and all(  # noqa: E731
        isinstance(k, str) and isinstance(v, str) for k, v in m.items())
    return (all(isinstance(obj.get(k), str) and obj[k] for k in ("apiVersion", "kind")) and isinstance(meta, dict)
            and isinstance(meta.get("name"), str) and bool(meta["name"])
            and (meta.get("namespace") is None or isinstance(meta["namespace"], str))
            and strings(meta.get("labels")) and strings(meta.get("annotations")))


def _diff(stack, objects, where, fmt, via_main=True):
    """``diff STACK --live DIR --format fmt`` on a JSON dump of ``objects``: (exit code, stdout,
    stderr). ``via_main=False``: the command's own ``drift_cli.run`` on the parsed arguments (what
    ``cli.main`` calls; half the time, for the exhaustive walks)."""
    import contextlib
    import io
    import json

    from mesh_components import cli
    from mesh_components.cli import drift_cli

    where.mkdir(exist_ok=True)
    (where / "c1.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    argv = ["diff", stack, "--live", str(where), "--format", fmt]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv) if via_main else drift_cli.run(_parsed(tuple(argv)), out, err)
    return rc, out.getvalue(), err.getvalue()


@__import__("functools").lru_cache(maxsize=16)
def _parsed(argv):
    from mesh_components import cli

    return cli.build_parser().parse_args(list(argv))


def _assert_outcome(case, rc, out, err, dump):
    assert rc in (0, 1, 2), case
    assert "internal error" not in out + err and "Traceback" not in out + err, (case, err)
    if rc == 1:  # every line names the dump's object: `file#doc[0].items[j]: message`
        lines = err.splitlines()
        assert lines and all(line.startswith(f"{dump}#doc[0].items[") and ": " in line for line in lines), (case, err)


def test_any_shape_in_any_field_of_a_few_live_objects_is_an_error_or_drift(fuzz_stack, tmp_path):
    # every path of a Namespace, an AuthorizationPolicy, a Pod, a Helm storage Secret and a Secret
    # with stringData, times every value: a broken envelope is an error at the object, any other
    # shape is a report (battery dev-fuzz24 / linkerd-fuzz3: a float or string stringData)
    stack, live = fuzz_stack
    picks = [next(i for i, o in enumerate(live) if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))
             for kind, name in (("Namespace", "app"), ("AuthorizationPolicy", None), ("Pod", None),
                                ("Secret", "sh.helm.release.v1.istiod.v1"), ("Secret", "cacerts"))]
    dump = tmp_path / "c1.json"
    n = 0
    for i in picks:
        for path in _paths(live[i]):
            for value in FUZZ_VALUES:
                obj = _with(live[i], path, value)
                case = (live[i]["kind"], path, value)
                rc, out, err = _diff(stack, live[:i] + [obj] + live[i + 1:], tmp_path, ("text", "json", "markdown")[n % 3],
                                     via_main=False)
                n += 1
                _assert_outcome(case, rc, out, err, dump)
                if not _envelope_ok(obj):
                    assert rc == 1 and err.startswith(f"{dump}#doc[0].items[{i}]: not a Kubernetes object"), (case, err)
                elif live[i]["metadata"]["name"] != "sh.helm.release.v1.istiod.v1":  # compared, or read as it is
                    assert rc in (0, 2), (case, err)
    assert n > 1000  # the product was walked, not skipped


def test_any_shape_inside_a_helm_release_is_drift_not_a_crash(fuzz_stack, tmp_path):
    import base64
    import gzip
    import json

    stack, live = fuzz_stack
    i = next(i for i, o in enumerate(live) if o["metadata"]["name"] == "sh.helm.release.v1.istiod.v1")
    body = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(live[i]["data"]["release"]))))
    for n, path in enumerate(list(_paths(body))):
        for value in FUZZ_VALUES:
            secret = _with(live[i], ("data", "release"), base64.b64encode(base64.b64encode(
                gzip.compress(json.dumps(_with(body, path, value)).encode()))).decode())
            rc, out, err = _diff(stack, live[:i] + [secret] + live[i + 1:], tmp_path, ("text", "json", "markdown")[n % 3],
                                 via_main=False)
            assert rc in (0, 2), (path, value, err)  # release.go fields of any shape are read as they are
            assert "internal error" not in out + err


@pytest.mark.parametrize("seed", range(40))
def test_seeded_mutations_anywhere_are_an_error_or_drift(fuzz_stack, tmp_path, seed):
    # 1 to 4 values set at random paths of random objects (fixed seeds: the same cases every run)
    import random

    stack, live = fuzz_stack
    rr = random.Random(seed)
    objects = list(live)
    for _ in range(rr.randint(1, 4)):
        i = rr.randrange(len(objects))
        path = rr.choice(list(_paths(objects[i])))
        objects[i] = _with(objects[i], path, rr.choice(FUZZ_VALUES))
    rc, out, err = _diff(stack, objects, tmp_path, ("text", "json", "markdown")[seed % 3])
    _assert_outcome(seed, rc, out, err, tmp_path / "c1.json")
    assert (rc == 1) == (not all(map(_envelope_ok, objects))) or rc == 1 and "secret" in err, (seed, err)


def test_envelope_errors_name_the_field_and_type_never_the_value(tmp_path):
    ns = lambda **meta: {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", **meta}}  # noqa: E731
    write_dump(tmp_path, "east", [ns(labels={"version": 2, "app": "a"}), ns(annotations=["x"]), {**ns(), "kind": 7},
                                  ns(namespace={"n": 1}), None, ns(labels=None)])
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path, ["east"])
    at = f"{tmp_path}/east.yaml#doc[0].items"
    assert e.value.problems == [
        (f"{at}[0]", 'not a Kubernetes object as the API server stores one: metadata.labels maps strings to strings '
                     '("version" is a number; quote them in YAML)'),
        (f"{at}[1]", "not a Kubernetes object as the API server stores one: metadata.annotations is a list, not a "
                     "mapping of strings to strings"),
        (f"{at}[2]", "not a Kubernetes object as the API server stores one: kind is a number, not a string"),
        (f"{at}[3]", "not a Kubernetes object as the API server stores one: metadata.namespace is a mapping, not a string"),
        (f"{at}[4]", "expected a Kubernetes object or List, got null")]  # [5]: null labels are absent (omitempty)
    (tmp_path / "east.yaml").write_text("apiVersion: v1\nkind: List\nitems: {a: 1}\n")
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path, ["east"])
    assert e.value.problems == [(f"{tmp_path}/east.yaml#doc[0].items", "expected a list of Kubernetes objects, got a mapping")]


@pytest.mark.parametrize("value", ["2001-14-02", "!!bool maybe", "!!int abc", "!!timestamp x", "1" * 5000])
def test_values_pyyaml_cannot_construct_are_errors_at_their_line(tmp_path, value):
    # PyYAML's constructors raise ValueError/KeyError/AttributeError, not YAMLError, for these
    (tmp_path / "east.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata:\n  k: {value}\n")
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path, ["east"])
    ((where, message),) = e.value.problems
    assert where == f"{tmp_path}/east.yaml:5" and message.startswith("not valid YAML: a value does not convert")
    assert value not in message  # never echoed: it may be a token


def test_a_list_api_item_with_a_broken_envelope_is_an_error_at_its_index():
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}}
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "n", "labels": {"x": 1}}}
    with FakeApiServer([good, good | {"metadata": {"name": "c", "namespace": "n"}}, bad]) as server:
        client = client_for({"apiVersion": "v1", "kind": "Config", "current-context": "x",
                             "clusters": [{"name": "x", "cluster": {"server": server.url}}],
                             "users": [{"name": "u", "user": {"token": "t"}}],
                             "contexts": [{"name": "x", "context": {"cluster": "x", "user": "u"}}]})
        with pytest.raises(LiveError) as e:
            list_kind(client, "v1", "ConfigMap", page_size=2)  # the item is on the second page
    assert e.value.problems == [("/api/v1/configmaps items[2]", 'not a Kubernetes object as the API server stores '
                                 'one: metadata.labels maps strings to strings ("x" is a number; quote them in YAML)')]


def test_helm_storage_of_any_shape_is_an_error_at_the_secret_and_bounded(tmp_path):
    import base64
    import gzip

    from diff_helpers import helm_secret
    from mesh_components.drift.live import MAX_RELEASE_BYTES, decode_helm_release

    rel = sample_desired()["east"]["releases"][1]
    b64 = lambda raw: base64.b64encode(base64.b64encode(raw)).decode()  # noqa: E731
    bomb = helm_secret(rel)
    bomb["data"]["release"] = b64(gzip.compress(b"[" * (MAX_RELEASE_BYTES + 1)))  # ~64 KiB that inflate past the bound
    corrupt = helm_secret(rel)
    corrupt["data"]["release"] = b64(gzip.compress(b'{"name": "x"}')[:12] + b"\xff" * 20)
    for secret, expected in ((bomb, "decompresses to over 64 MiB"), (corrupt, "not valid gzip"),
                             ({**helm_secret(rel), "data": "x"}, "no data.release"),
                             ({**helm_secret(rel), "data": {"release": 5}}, "data.release is a number, not base64 text")):
        with pytest.raises(ValueError, match=expected):
            decode_helm_release(secret)
    wrong_rev = helm_secret(rel)
    wrong_rev["metadata"]["labels"]["version"] = "two"
    write_dump(tmp_path, "east", [wrong_rev])
    with pytest.raises(LiveError) as e:
        read_dump_dir(tmp_path, ["east"])
    ((where, message),) = e.value.problems
    assert where == f"{tmp_path}/east.yaml#doc[0].items[0] (secret istio-system/sh.helm.release.v1.istiod-1-30.v1)"
    assert message.startswith("label version is not a revision number")


def test_trim_pod_takes_any_shape_and_keeps_the_pod_api_shape():
    from mesh_components.drift.workloads import trim_pod

    odd = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n", "ownerReferences": 1,
                                                         "annotations": {"linkerd.io/inject": "enabled"}},
           "spec": {"containers": "x", "initContainers": [None, {"name": 3}, {"name": "linkerd-proxy"}],
                    "serviceAccountName": ["a"], "hostNetwork": "yes"}, "status": [1]}
    assert trim_pod(odd) == {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "n", "annotations": {"linkerd.io/inject": "enabled"}},
        "spec": {"serviceAccountName": "['a']", "containers": [], "initContainers": [{"name": "linkerd-proxy"}]},
        "status": {"phase": None}}
    assert trim_pod(trim_pod(odd)) == trim_pod(odd)
    assert trim_pod({"spec": "x", "metadata": None})["spec"]["serviceAccountName"] == "default"
