"""Overrides that leave an object of the wrong shape are input problems, never crashes (issue 13, item 7).

``mesh.overrides[].patch`` is free-form RFC 6902 JSON Patch, applied after the renderers. A patch
that makes ``metadata.labels`` a number, ``metadata`` a list or Helm values a string used to reach
the core's later readers (``meta.is_patch``, ``names.object_name_problem``, the identity checks of
``multicluster``) and end as "internal error". ``render.apply_overrides`` now checks the patched
object's shape once (``meta.object_shape_problems``): Kubernetes ``ObjectMeta`` types
(k8s.io/apimachinery ``pkg/apis/meta/v1/types.go``: ``Labels map[string]string``), every mapping and
list still a mapping or list, no infinite number (JSON, RFC 8259 section 6, has none); Helm values a
mapping.

The property: over the shipped stacks, one object of every (apiVersion, kind) and every Helm chart,
every path of ``metadata``, the top-level fields and the values' top-level keys, each set (``add``,
or ``replace`` for the whole object) to ``None``, ``1``, ``"x"``, ``[]``, ``{}`` and ``True``: the
render either succeeds with objects of the right shape, which the writers and ``validate``'s findings
take, or raises ``SpecError`` with ``path: message`` problems. Deterministic: fixed stacks, paths in
object order, fixed values.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mesh_components.analysis import findings as fnd
from mesh_components.cli import main
from mesh_components.spec.errors import MeshError, SpecError
from mesh_components.core.meta import container_shape_problems, object_shape_problems
from mesh_components.core.render import cluster_stream, render_mesh
from mesh_components.spec import LoadedMesh, Override, load_stack

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("dev", "linkerd", "osm", "prod", "staging")
VALUES = (None, 1, "x", [], {}, True)

_LOADED = {s: load_stack(s, root=ROOT) for s in STACKS}
_BASE = {s: render_mesh(m) for s, m in _LOADED.items()}


def _first_of_each_kind():
    """(stack, object) for the first object of every (apiVersion, kind), stacks in order."""
    seen: dict[tuple[str, str], tuple[str, dict]] = {}
    for s in STACKS:
        for st in _BASE[s].values():
            for o in st.objects:
                seen.setdefault((o["apiVersion"], o["kind"]), (s, o))
    return seen


def _first_of_each_chart():
    seen: dict[str, tuple[str, object]] = {}
    for s in STACKS:
        for st in _BASE[s].values():
            for r in st.releases:
                seen.setdefault(r.chart, (s, r))
    return seen


OBJECTS = _first_of_each_kind()
RELEASES = _first_of_each_chart()


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _metadata_paths(value, at: str):
    """Every JSON pointer under ``at`` in ``value``, plus a new key in each mapping."""
    yield at
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _metadata_paths(v, f"{at}/{_escape(k)}")
        yield f"{at}/zz-new"


def _object_patches(obj: dict):
    """The patches of the property: the whole object replaced, then every metadata path, every
    top-level field and a new top-level field added (``add`` replaces a mapping member)."""
    for v in VALUES:
        yield [{"op": "replace", "path": "", "value": v}]
    paths = list(_metadata_paths(obj["metadata"], "/metadata"))
    paths += [f"/{_escape(k)}" for k in obj if k != "metadata"] + ["/zz-new", "/metadata/labels",
                                                                  "/metadata/annotations"]
    for path in dict.fromkeys(paths):  # once each, in order
        for v in VALUES:
            yield [{"op": "add", "path": path, "value": v}]


def _with_override(stack: str, **override) -> LoadedMesh:
    loaded = _LOADED[stack]
    return LoadedMesh(loaded.spec.model_copy(update={"overrides": [Override(**override)]}), loaded.smi_documents)


def _assert_problem_or_good_objects(mesh: LoadedMesh, patch) -> None:
    """The render refuses ``mesh`` with ``path: message`` problems, or renders objects of the
    right shape that the writers and ``validate``'s findings take."""
    try:
        states = render_mesh(mesh)
    except SpecError as e:
        assert e.problems, patch
        for path, message in e.problems:
            assert isinstance(path, str) and path.startswith("mesh.") and isinstance(message, str) and message, patch
        return
    for name, st in states.items():
        for obj in st.objects:
            assert object_shape_problems(obj, obj) == [], (patch, obj)
        for rel in st.releases:
            assert isinstance(rel.values, dict), patch
        cluster_stream(name, st)
    try:
        fnd.validation_findings(mesh, states, fnd.read_policy_pack_config(None))
    except MeshError:
        pass


@pytest.mark.parametrize("key", sorted(OBJECTS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_overrides_of_any_shape_on_any_object_are_problems_or_valid(key):
    stack, obj = OBJECTS[key]
    meta = obj["metadata"]
    for patch in _object_patches(obj):
        mesh = _with_override(stack, kind=obj["kind"], name=meta["name"], namespace=meta.get("namespace"),
                              api_version=obj["apiVersion"], patch=patch)
        _assert_problem_or_good_objects(mesh, patch)


@pytest.mark.parametrize("chart", sorted(RELEASES))
def test_overrides_of_any_shape_on_helm_values_are_problems_or_valid(chart):
    stack, rel = RELEASES[chart]
    patches = [[{"op": "replace", "path": p, "value": v}] for p in ("", "/values") for v in VALUES]
    patches += [[{"op": "add", "path": f"/values/{_escape(k)}", "value": v}]
                for k in [*rel.values, "zz-new"] for v in VALUES]
    for patch in patches:
        _assert_problem_or_good_objects(_with_override(stack, kind="HelmRelease", name=rel.name,
                                                       namespace=rel.namespace, patch=patch), patch)


def _namespace_patch(stack: str = "osm") -> dict:
    return next(o for st in _BASE[stack].values() for o in st.objects
                if o["kind"] == "Namespace" and o["metadata"]["name"] == "bookstore")


def _problems(mesh: LoadedMesh) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as e:
        render_mesh(mesh)
    return e.value.problems


@pytest.mark.parametrize("path, value, expected", [
    ("/metadata/labels", 1, "/metadata/labels would be a number, not a mapping of strings to strings"),
    ("/metadata/annotations", None, "/metadata/annotations would be null, not a mapping of strings to strings "
                                    "(op: remove takes all annotations away)"),
    ("/metadata/labels/team", 1, "/metadata/labels/team would be a number, not a string (quote it in YAML: '1')"),
    ("/metadata/annotations/x", True, "would be a boolean, not a string (quote it in YAML: 'true')"),
    ("/metadata/name", [], "/metadata/name would be a list, not a string"),
    ("/metadata", "x", "/metadata would be a string, not a mapping"),
    ("", None, "the object would be null, not a mapping"),
])
def test_a_wrong_shape_is_a_problem_at_the_override(path, value, expected):
    ns = _namespace_patch()
    (where, message), *_ = _problems(_with_override("osm", kind="Namespace", name="bookstore", patch=[
        {"op": "replace" if path == "" else "add", "path": path, "value": value}]))
    assert where == "mesh.overrides[0].patch"
    assert expected in message and "(on Namespace -/bookstore in cluster " in message, message
    assert ns["metadata"]["name"] == "bookstore"  # the rendered object itself is never changed


def test_a_mapping_made_a_scalar_deep_in_an_object_is_a_problem():
    srv = next(o for st in _BASE["linkerd"].values() for o in st.objects if o["kind"] == "Server")
    meta = srv["metadata"]
    problems = _problems(_with_override("linkerd", kind="Server", name=meta["name"], namespace=meta["namespace"],
                                        patch=[{"op": "replace", "path": "/spec/podSelector", "value": "app=x"}]))
    clusters = [c for c, st in _BASE["linkerd"].items() if any(o["kind"] == "Server" and o["metadata"] == meta
                                                                for o in st.objects)]
    assert problems == [("mesh.overrides[0].patch",
                         f"after the patch, /spec/podSelector would be a string, where the rendered object has a "
                         f"mapping (on Server {meta['namespace']}/{meta['name']} in cluster {c})") for c in clusters]


def test_helm_values_must_stay_a_mapping_and_only_values_are_patched():
    rel = RELEASES["istiod"][1]
    stack = RELEASES["istiod"][0]
    (where, message), *_ = _problems(_with_override(stack, kind="HelmRelease", name=rel.name, namespace=rel.namespace,
                                                   patch=[{"op": "replace", "path": "/values", "value": 1}]))
    assert where == "mesh.overrides[0].patch" and "/values would be a number, where the rendered object has a mapping" \
        in message
    (where, message), *_ = _problems(_with_override(stack, kind="HelmRelease", name=rel.name, namespace=rel.namespace,
                                                   patch=[{"op": "add", "path": "/values/global", "value": "x"}]))
    assert "/values/global would be a string, where the rendered object has a mapping" in message
    (where, message), *_ = _problems(_with_override(stack, kind="HelmRelease", name=rel.name, namespace=rel.namespace,
                                                   patch=[{"op": "add", "path": "/chart", "value": "x"}]))
    assert "a HelmRelease override patches /values and what is under it, nothing else" in message


def test_values_of_the_right_shape_are_accepted():
    """A new string label, a Helm value of another scalar type, a free-form Helm value that
    becomes a mapping: applied as written."""
    states = render_mesh(_with_override("osm", kind="Namespace", name="bookstore", patch=[
        {"op": "add", "path": "/metadata/labels", "value": {"team": "books"}}]))
    ns = next(o for st in states.values() for o in st.objects if o["kind"] == "Namespace"
              and o["metadata"]["name"] == "bookstore")
    assert ns["metadata"]["labels"] == {"team": "books"}
    stack, rel = RELEASES["istiod"]
    states = render_mesh(_with_override(stack, kind="HelmRelease", name=rel.name, namespace=rel.namespace, patch=[
        {"op": "add", "path": "/values/zz-new", "value": {"a": [1]}}]))
    assert all(r.values["zz-new"] == {"a": [1]} for st in states.values() for r in st.releases if r.name == rel.name)


def test_infinite_numbers_are_refused_anywhere():
    assert container_shape_problems({"a": 1}, {"a": float("inf")}) == [
        ("/a", "would be inf, not a number JSON can carry (Kubernetes objects and Helm values are sent as JSON)")]
    assert [p for p, _ in container_shape_problems({}, {"a": [{"b": float("nan")}]}, free_form=True)] == ["/a/0/b"]


def test_list_items_keep_the_kind_of_the_rendered_items():
    assert container_shape_problems({"l": [{"a": 1}]}, {"l": [{"a": 2}, "x"]}) == [
        ("/l/1", "would be a string, where the rendered object has a mapping")]
    assert container_shape_problems({"l": ["x"]}, {"l": ["y", []]}) == [
        ("/l/1", "would be a list, where the rendered object has a string")]
    assert container_shape_problems({"l": ["x"]}, {"l": ["y", []]}, free_form=True) == []
    assert container_shape_problems({"l": ["x"]}, {"l": ["y", 2]}) == []  # int-or-string fields exist


def test_the_check_is_iterative_for_deep_values():
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    assert container_shape_problems({}, deep) == []


# --- the readers after the overrides: graph and the findings take what the API server would refuse

def _access_object(stack: str, kind: str) -> dict:
    return next(o for st in _BASE[stack].values() for o in st.objects if o["kind"] == kind)


@pytest.mark.parametrize("stack, kind, op", [
    ("linkerd", "HTTPRoute", {"op": "replace", "path": "/spec/rules/0/matches/0/method", "value": 1}),
    ("staging", "AuthorizationPolicy", {"op": "add", "path": "/spec/targetRefs", "value": 1}),
    ("linkerd", "Server", {"op": "remove", "path": "/spec"}),
    ("linkerd", "HTTPRoute", {"op": "remove", "path": "/spec"}),
    ("osm", "TrafficTarget", {"op": "replace", "path": "/spec/sources/0", "value": {}}),
    ("osm", "TrafficTarget", {"op": "replace", "path": "/spec/sources/0/name", "value": 7}),
    ("osm", "Egress", {"op": "remove", "path": "/spec/sources/0/name"}),
])
def test_fields_the_api_server_would_refuse_reach_no_reader_as_a_crash(stack, kind, op):
    """Cases a fuzzer found beyond the shape check (a scalar of another type, a required field
    removed): ``validate``'s findings and ``graph`` read them without crashing."""
    from mesh_components.cli.graph_cli import graph_json, graph_of

    obj = _access_object(stack, kind)
    if op["path"].startswith("/spec/rules/0/matches/0") and not (obj["spec"].get("rules") or [{}])[0].get("matches"):
        obj = next(o for st in _BASE[stack].values() for o in st.objects if o["kind"] == kind
                   and (o["spec"].get("rules") or [{}])[0].get("matches"))
    meta = obj["metadata"]
    mesh = _with_override(stack, kind=kind, name=meta["name"], namespace=meta.get("namespace"),
                          api_version=obj["apiVersion"], patch=[op])
    try:
        states = render_mesh(mesh)
    except MeshError:
        return
    try:
        fnd.validation_findings(mesh, states, fnd.read_policy_pack_config(None))
        graph_json(graph_of(mesh))
    except MeshError:
        pass


def test_validate_says_path_message_and_exit_1(tmp_path, capsys):
    """End to end: a stack file whose override makes labels a number."""
    data = yaml.safe_load((ROOT / "stacks" / "Pulumi.osm.yaml").read_text())
    mesh = data["config"]["service-mesh:mesh"]
    mesh["smiFiles"] = [str(ROOT / "policies" / "smi")]
    mesh["overrides"] = [{"kind": "Namespace", "name": "bookstore",
                          "patch": [{"op": "add", "path": "/metadata/labels", "value": 1}]}]
    stack = tmp_path / "Pulumi.shape.yaml"
    stack.write_text(json.dumps(data))
    for argv in (["validate", str(stack)], ["render", str(stack), "--out", str(tmp_path / "out")],
                 ["graph", str(stack)]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert "internal error" not in err and "Traceback" not in err
        assert "mesh.overrides[0].patch: after the patch, /metadata/labels would be a number" in err, err
    assert not (tmp_path / "out").exists()
