"""``mesh.ingressIdentities`` (spec.IngressIdentity): a meshed workload the stack does not declare,
an ingress gateway the user runs, named as an SMI TrafficTarget source and admitted as exactly that
identity on every mesh, nothing wider; any other undeclared source stays refused with the fix.

Identities as each mesh reads them: Istio ``principals`` ``<trustDomain>/ns/<ns>/sa/<sa>``
(https://istio.io/latest/docs/reference/config/security/authorization-policy/ , Source.principals);
Linkerd MeshTLSAuthentication ``identities`` ``<sa>.<ns>.serviceaccount.identity.linkerd.<trustDomain>``
(linkerd2 edge-26.8.3 policy-controller/k8s/api/src/policy/meshtls_authentication.rs); OSM the
TrafficTarget ``sources`` entry itself (OSM v1.2.4 pkg/smi/client.go)."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from mesh_components.spec import load_mesh
from mesh_components.spec.errors import SpecError
from mesh_components.core.render import render_mesh

from cp_helpers import stack_mesh

GATEWAY = ("istio-system", "istio-ingressgateway-service-account")
INGRESS_TARGET = f"""apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {{name: books-from-ingress, namespace: bookstore}}
spec:
  matches:
  - {{name: read-books, methods: [GET], pathRegex: /books-bought}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {{name: ingress-books, namespace: bookstore}}
spec:
  destination: {{kind: ServiceAccount, name: bookstore, namespace: bookstore}}
  rules: [{{kind: HTTPRouteGroup, name: books-from-ingress, matches: [read-books]}}]
  sources: [{{kind: ServiceAccount, name: {GATEWAY[1]}, namespace: {GATEWAY[0]}}}]
"""


def stack(tmp_path: Path, backend: str, identities: list | None) -> dict:
    """The dev stack's services, for ``backend``, with one more SMI file: the ingress gateway may
    GET /books-bought of bookstore."""
    mesh = stack_mesh("dev")
    mesh["backend"] = {"type": backend}
    mesh.pop("telemetry", None)
    mesh.pop("ingress", None)
    mesh.pop("egress", None)  # not what is tested here (Linkerd refuses its per-namespace approximation)
    (tmp_path / "smi").mkdir()
    root = Path(__file__).resolve().parents[1]
    for f in (root / "policies" / "smi").glob("*.yaml"):
        (tmp_path / "smi" / f.name).write_text(f.read_text())
    (tmp_path / "smi" / "ingress.yaml").write_text(INGRESS_TARGET)
    mesh["smiFiles"] = ["smi"]
    if identities is not None:
        mesh["ingressIdentities"] = identities
    return mesh


def policy(tmp_path, backend, identities):
    loaded = load_mesh(stack(tmp_path, backend, identities), base_dir=tmp_path)
    states = render_mesh(loaded)
    return loaded, [o for st in states.values() for o in st.concerns["policy"]]


IDENTITY = [{"namespace": GATEWAY[0], "serviceAccount": GATEWAY[1]}]


def test_istio_admits_the_gateway_as_exactly_its_principal(tmp_path):
    loaded, objects = policy(tmp_path, "istio", IDENTITY)
    td = loaded.spec.trust_domain
    principal = f"{td}/ns/{GATEWAY[0]}/sa/{GATEWAY[1]}"
    rules = [r for o in objects if o["kind"] == "AuthorizationPolicy"
             for r in o["spec"].get("rules", []) if any(principal in f["source"].get("principals", [])
                                                        for f in r.get("from", []))]
    assert rules, "no rule admits the gateway"
    for r in rules:
        assert all(f["source"]["principals"] == [principal] for f in r["from"])  # no other caller in that rule
        ops = [o["operation"] for o in r["to"]]
        assert ops and all(op.get("methods") == ["GET"] and op.get("paths") == ["/books-bought"] for op in ops)
    # nothing for the gateway's own workload: it is not ours
    assert not [o for o in objects if o["metadata"].get("namespace") == GATEWAY[0]]


def test_linkerd_admits_the_gateway_by_its_mesh_tls_identity(tmp_path):
    loaded, objects = policy(tmp_path, "linkerd", IDENTITY)
    td = loaded.spec.trust_domain
    identity = f"{GATEWAY[1]}.{GATEWAY[0]}.serviceaccount.identity.linkerd.{td}"
    auths = {o["metadata"]["name"] for o in objects if o["kind"] == "MeshTLSAuthentication"
             and identity in o["spec"].get("identities", [])}
    assert auths
    # every authorization the gateway gets targets a route of GET /books-bought only (Linkerd shares one
    # MeshTLSAuthentication among the callers of the same route: the dev stack's bookbuyer reads it too)
    routes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "HTTPRoute"}
    granted = [o for o in objects if o["kind"] == "AuthorizationPolicy"
               and any(r["name"] in auths for r in o["spec"]["requiredAuthenticationRefs"])]
    assert granted
    for a in granted:
        route = routes[a["spec"]["targetRef"]["name"]]
        matches = [m for r in route["spec"]["rules"] for m in r["matches"]]
        assert matches and all(m["method"] == "GET" and m["path"]["value"] == "/books-bought" for m in matches), matches


def test_osm_names_the_gateway_as_the_traffic_target_source(tmp_path):
    _, objects = policy(tmp_path, "osm", IDENTITY)
    targets = [o for o in objects if o["kind"] == "TrafficTarget"
               and {"kind": "ServiceAccount", "name": GATEWAY[1], "namespace": GATEWAY[0]} in o["spec"]["sources"]]
    assert targets and all(len(o["spec"]["sources"]) == 1 for o in targets)


def test_without_the_identity_the_source_is_refused_with_the_fix(tmp_path):
    with pytest.raises(SpecError) as e:
        load_mesh(stack(tmp_path, "istio", None), base_dir=tmp_path)
    (problem,) = [p for p in e.value.problems if "sources[0]" in p[0]]
    assert problem[0].endswith("ingress.yaml#TrafficTarget/bookstore/ingress-books.spec.sources[0]")
    assert problem[1] == (f"no service in mesh.services runs as service account {GATEWAY[0]}/{GATEWAY[1]}; declare a "
                          "service running as it in mesh.services or, for a meshed workload the mesh does not police "
                          "(an ingress gateway you run), list it in mesh.ingressIdentities")


def test_an_identity_admits_nothing_as_a_destination(tmp_path):
    mesh = stack(tmp_path, "istio", IDENTITY)
    doc = INGRESS_TARGET.replace("destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}",
                                 f"destination: {{kind: ServiceAccount, name: {GATEWAY[1]}, namespace: {GATEWAY[0]}}}")
    doc = doc.replace("namespace: bookstore}", f"namespace: {GATEWAY[0]}}}")
    (tmp_path / "smi" / "ingress.yaml").write_text(doc)
    with pytest.raises(SpecError) as e:
        load_mesh(mesh, base_dir=tmp_path)
    assert any(p.endswith(".spec.destination") and "no service in mesh.services" in m for p, m in e.value.problems)


@pytest.mark.parametrize("identities, where, words", [
    (IDENTITY * 2, "mesh.ingressIdentities", "duplicate"),
    ([{"namespace": "Istio", "serviceAccount": "gw"}], "mesh.ingressIdentities[0].namespace", ""),
    ([{"namespace": "istio-system"}], "mesh.ingressIdentities[0].serviceAccount", ""),
])
def test_bad_identities_are_refused_at_their_path(tmp_path, identities, where, words):
    with pytest.raises(SpecError) as e:
        load_mesh(stack(tmp_path, "istio", identities), base_dir=tmp_path)
    assert any(p.startswith(where) and words in m.lower() for p, m in e.value.problems), e.value.problems


def test_graph_draws_the_gateway_as_a_caller(tmp_path):
    from mesh_components.cli.graph_cli import graph_of

    loaded = load_mesh(stack(tmp_path, "istio", IDENTITY), base_dir=tmp_path)
    graph = graph_of(loaded)
    text = repr(graph)
    assert GATEWAY[1] in text and "books-bought" in text


def test_a_stack_without_the_field_renders_as_before(tmp_path):
    mesh = stack_mesh("dev")
    before = render_mesh(load_mesh(copy.deepcopy(mesh)))
    mesh["ingressIdentities"] = IDENTITY  # named by no TrafficTarget: changes nothing
    after = render_mesh(load_mesh(mesh))
    assert {c: s.concerns for c, s in before.items()} == {c: s.concerns for c, s in after.items()}


@pytest.mark.parametrize("backend, refused", [("linkerd", True), ("istio", False)])
def test_an_identity_in_a_namespace_of_the_meshs_services_is_refused_where_that_namespace_denies(
        tmp_path, backend, refused):
    """Linkerd patches such a namespace with ``default-inbound-policy: deny`` (and Istio ambient puts
    it behind its waypoint): the gateway's own inbound traffic, from outside the mesh, would be refused."""
    ident = IDENTITY + [{"namespace": "bookstore", "serviceAccount": "gateway"}]
    mesh = stack(tmp_path, backend, ident)
    if refused:
        with pytest.raises(SpecError) as e:
            load_mesh(mesh, base_dir=tmp_path)
        assert any(p == "mesh.ingressIdentities[1].namespace" and "namespace of its own" in m
                   for p, m in e.value.problems), e.value.problems
    else:
        load_mesh(mesh, base_dir=tmp_path)  # Istio sidecar: ALLOW policies select only the declared services


def test_an_identity_that_is_a_declared_services_account_is_refused(tmp_path):
    ident = [{"namespace": "bookstore", "serviceAccount": "bookstore"}]
    with pytest.raises(SpecError) as e:
        load_mesh(stack(tmp_path, "istio", ident), base_dir=tmp_path)
    assert any(p == "mesh.ingressIdentities[0]" and "service account of service bookstore/bookstore" in m
               for p, m in e.value.problems), e.value.problems
