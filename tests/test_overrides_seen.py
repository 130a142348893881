"""Overrides are part of what we deploy (issue 10, point 13): ``graph``, the guardrails and the
exactness checks read the objects after ``mesh.overrides``.

Upstream semantics the widening relies on:
- Istio AuthorizationPolicy ``Source.principals`` "supports exact, prefix, suffix and presence
  match": ``*`` matches every authenticated peer
  (https://istio.io/latest/docs/reference/config/security/authorization-policy/#Source).
- Linkerd MeshTLSAuthentication ``identities``: ``*`` matches every meshed identity
  (https://linkerd.io/2/reference/authorization-policy/#meshtlsauthentication).
Both are judged here by the independent evaluators of ``tests/policy_eval.py`` as well.
"""
from __future__ import annotations

import importlib.util

import yaml

from mesh_components.meshes import linkerd
from mesh_components.cli import main
from mesh_components.analysis.graph import render_dot, render_mermaid
from mesh_components.cli.graph_cli import graph_of
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh

from cp_helpers import stack_mesh
from policy_eval import Request, istio_allows, linkerd_allows
from program_harness import ROOT

_pack = importlib.util.spec_from_file_location("mesh_guardrails_overrides",
                                               ROOT / "policies" / "mesh-guardrails" / "mesh_guardrails.py")
guardrails = importlib.util.module_from_spec(_pack)
_pack.loader.exec_module(guardrails)

WIDEN_ISTIO = {"kind": "AuthorizationPolicy", "name": "bookbuyer-access-bookstore-bookstore", "namespace": "bookstore",
               "patch": [{"op": "replace", "path": "/spec/rules/0/from/0/source/principals", "value": ["*"]}]}
WIDEN_LINKERD = {"kind": "MeshTLSAuthentication", "name": "mysql-mysql", "namespace": "bookwarehouse",
                 "patch": [{"op": "replace", "path": "/spec/identities", "value": ["*"]}]}


def with_overrides(stack: str, *overrides) -> dict:
    mesh = stack_mesh(stack)
    mesh["overrides"] = list(overrides)
    mesh["smiFiles"] = [str(ROOT / f) for f in mesh.get("smiFiles", [])]
    return mesh


def loaded(mesh):
    return load_mesh(mesh, base_dir=ROOT)


def stack_file(tmp_path, mesh) -> str:
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": mesh}}))
    return str(path)


def test_a_widening_override_shows_in_graph_and_fails_strict(tmp_path, capsys):
    mesh = with_overrides("prod", WIDEN_ISTIO)
    g = graph_of(loaded(mesh))
    override_edges = [e for e in g.edges if e.kind == "override"]
    assert [(e.source, e.target) for e in override_edges] == [("any_any_2f_2a", "svc_bookstore_2fbookstore")]
    assert all("principals '*'" in line and "mesh.overrides[0]" in line for line in override_edges[0].lines)
    kinds = {(f.origin, f.kind) for f in g.findings}
    assert ("mesh.overrides[0]", "override-widens") in kinds
    assert "--x" in render_mermaid(g) and 'color="#c00000"' in render_dot(g)
    path = stack_file(tmp_path, mesh)
    assert main(["graph", path, "--strict"]) == 2
    err = capsys.readouterr().err
    assert "warning: mesh.overrides[0]: override-widens:" in err
    # without the override the same stack graphs clean under --strict
    assert main(["graph", stack_file(tmp_path, with_overrides("prod")), "--strict"]) == 0


def test_the_graph_reads_what_the_independent_evaluator_reads():
    """Every caller the rendered (overridden) objects let in that the render without overrides did
    not is a caller the graph draws an override edge for: here bookthief, once principals is '*'."""
    mesh = with_overrides("prod", WIDEN_ISTIO)
    deployed = render_mesh(loaded(mesh))["prod-aws"].objects
    clean = render_mesh(loaded(with_overrides("prod")))["prod-aws"].objects
    policies = lambda objs: [o for o in objs if o["kind"] == "AuthorizationPolicy"  # noqa: E731
                             and o["metadata"]["namespace"] == "bookstore"]
    buy = lambda src: Request(src, "bookstore", "bookstore", "bookstore", (("app", "bookstore"),), 14001,  # noqa: E731
                              http=True, method="GET", path="/books-bought")
    thief = ("bookthief", "bookthief")
    assert not istio_allows(policies(clean), buy(thief), trust_domain="cluster.local")
    assert istio_allows(policies(deployed), buy(thief), trust_domain="cluster.local")
    g = graph_of(loaded(mesh))
    assert any(e.kind == "override" and e.target == "svc_bookstore_2fbookstore" for e in g.edges)


def test_no_allow_all_fails_on_the_overridden_objects():
    for stack, override, kind in (("prod", WIDEN_ISTIO, "AuthorizationPolicy"),
                                  ("linkerd", WIDEN_LINKERD, "MeshTLSAuthentication")):
        states = render_mesh(loaded(with_overrides(stack, override)))
        objs = [o for st in states.values() for o in st.objects if o["kind"] == kind
                and o["metadata"]["name"] == override["name"]]
        group, _, version = objs[0]["apiVersion"].rpartition("/")
        fired = [m for o in objs for m in guardrails.validate_no_allow_all(f"kubernetes:{group}/{version}:{kind}", o)]
        assert fired and len(fired) == len(objs), (stack, fired)
        clean = render_mesh(loaded(with_overrides(stack)))
        assert not [m for st in clean.values() for o in st.objects if o["kind"] == kind
                    for m in guardrails.validate_no_allow_all(f"kubernetes:{group}/{version}:{kind}", o)]


def test_linkerd_identity_wildcard_is_seen_by_graph_and_by_the_evaluator():
    mesh = with_overrides("linkerd", WIDEN_LINKERD)
    g = graph_of(loaded(mesh))
    assert [(e.source, e.target) for e in g.edges if e.kind == "override"] == [("any_any_2f_2a",
                                                                                  "svc_bookwarehouse_2fmysql")]
    # leaving out the scrape objects of the stack's backend.linkerd.scrapers: the proxy's admin port only
    # (Server port linkerd-admin, 4191, which the evaluator does not model; linkerd.scrape_objects)
    objs = [o for o in render_mesh(loaded(mesh))["linkerd-east"].objects if o["apiVersion"].startswith("policy.linkerd")
            and o["metadata"].get("namespace") == "bookwarehouse" and o["kind"] != "EgressNetwork"
            and o["metadata"]["name"] not in (linkerd.ADMIN_SERVER, linkerd.SCRAPE_METRICS, linkerd.SCRAPE_AUTH,
                                              linkerd.SCRAPE_PROBES)]
    thief = Request(("bookthief", "bookthief"), "bookwarehouse", "mysql", "mysql", (("app", "mysql"),), 3306, http=False)
    assert linkerd_allows(objs, thief, trust_domain="cluster.local", default_policy="deny")


def test_overrides_that_change_access_without_widening_are_still_reported():
    narrow = {"kind": "AuthorizationPolicy", "name": "bookbuyer-access-bookstore-bookstore", "namespace": "bookstore",
              "patch": [{"op": "remove", "path": "/spec/rules/1"}]}
    g = graph_of(loaded(with_overrides("prod", narrow)))
    assert {f.kind for f in g.findings if f.origin == "mesh.overrides[0]"} == {"override-changes-access"}
    assert not [e for e in g.edges if e.kind == "override"]
    # an override of something that decides no access is not a finding
    release = {"kind": "HelmRelease", "name": "istiod", "patch": [{"op": "add", "path": "/values/env/PILOT_X", "value": "1"}]}
    service = {"kind": "Service", "name": "bookstore-v1", "namespace": "bookstore",
               "patch": [{"op": "add", "path": "/metadata/labels/team", "value": "books"}]}
    g = graph_of(loaded(with_overrides("prod", release, service)))
    assert not [f for f in g.findings if f.origin.startswith("mesh.overrides")]


def test_an_override_changes_only_the_element_it_names():
    """The rendered rules may share one ``from`` dict; a patch of rules[0] must not reach rules[1]."""
    st = render_mesh(loaded(with_overrides("prod", WIDEN_ISTIO)))["prod-aws"]
    ap = next(o for o in st.objects if o["kind"] == "AuthorizationPolicy"
              and o["metadata"]["name"] == WIDEN_ISTIO["name"])
    assert ap["spec"]["rules"][0]["from"][0]["source"]["principals"] == ["*"]
    assert ap["spec"]["rules"][1]["from"][0]["source"]["principals"] == ["cluster.local/ns/bookbuyer/sa/bookbuyer"]
