"""SMI in, Istio out: the reader, reference checks, exact-or-refused matching, and the objects
rendered for the bookstore in sidecar and ambient modes."""
from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesh_components.core import gamma, gateway
from mesh_components.spec import smi
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.meshes.istio_policy import istio_match
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh, load_stack

from program_harness import ROOT
from test_spec import dev_mesh


# --- exact or refused ---------------------------------------------------------------------------

@pytest.mark.parametrize("regex,expected", [
    ("/books-bought", "/books-bought"),
    ("^/books-bought$", "/books-bought"),
    ("/api/.*", "/api/*"),
    (".*\\.json", "*.json"),
    (".*", None),
    ("/v1\\.0/x", "/v1.0/x"),
])
def test_istio_match_exact_prefix_suffix(regex, expected):
    assert istio_match(regex) == expected


@pytest.mark.parametrize("regex", ["/a[0-9]+", "/a/.*/b", "/a.", "(/a|/b)", "/a+", "/x?", "\\d+", "/a.*b.*"])
def test_istio_match_refuses_what_it_cannot_express(regex):
    with pytest.raises(ValueError):
        istio_match(regex)


LITERAL = st.text(alphabet="abcXYZ019/-_.~", min_size=1, max_size=12)


def _admits(istio: str | None, path: str) -> bool:
    """Istio's documented string match: exact, prefix `x*`, suffix `*x`, anything (None)."""
    if istio is None:
        return True
    if istio.endswith("*"):
        return path.startswith(istio[:-1])
    if istio.startswith("*"):
        return path.endswith(istio[1:])
    return path == istio


@given(lit=LITERAL, shape=st.sampled_from(["exact", "prefix", "suffix"]), probe=st.text(alphabet="abc/.", max_size=14))
def test_istio_match_admits_exactly_what_the_regex_admits(lit, shape, probe):
    regex = {"exact": re.escape(lit), "prefix": re.escape(lit) + ".*", "suffix": ".*" + re.escape(lit)}[shape]
    translated = istio_match(regex)
    for path in (probe, lit, lit + probe, probe + lit):
        assert _admits(translated, path) == bool(re.fullmatch(regex, path, re.S)), (regex, translated, path)


# --- SMI reading ---------------------------------------------------------------------------------

def test_reads_every_smi_version(tmp_path):
    (tmp_path / "old.yaml").write_text("""
apiVersion: access.smi-spec.io/v1alpha1
kind: TrafficTarget
metadata: {name: t1, namespace: bookstore}
destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore, port: 14001}
specs: [{kind: HTTPRouteGroup, name: g1, matches: [m]}]
sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
---
apiVersion: specs.smi-spec.io/v1alpha1
kind: HTTPRouteGroup
metadata: {name: g1, namespace: bookstore}
matches: [{name: m, methods: [GET], pathRegex: /x}]
---
apiVersion: v1
kind: List
items:
  - apiVersion: split.smi-spec.io/v1alpha1
    kind: TrafficSplit
    metadata: {name: s1, namespace: bookstore}
    spec: {service: bookstore, backends: [{service: bookstore-v1, weight: 900m}, {service: bookstore-v2, weight: 100m}]}
""")
    docs, problems = smi.read_files(["old.yaml"], tmp_path)
    assert problems == []
    kinds = sorted(type(d).__name__ for d in docs)
    assert kinds == ["HTTPRouteGroup", "TrafficSplit", "TrafficTarget"]
    target = next(d for d in docs if isinstance(d, smi.TrafficTarget))
    assert target.destination_port == 14001 and target.rules[0].matches == ("m",)
    split = next(d for d in docs if isinstance(d, smi.TrafficSplit))
    assert dict(split.backends) == {"bookstore-v1": 9, "bookstore-v2": 1}  # 900m:100m in lowest terms


def test_rule_naming_a_missing_group_or_match_names_both_documents(tmp_path):
    (tmp_path / "p.yaml").write_text("""
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: g, namespace: bookstore}
spec: {matches: [{name: a, pathRegex: /a}]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: t, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  rules: [{kind: HTTPRouteGroup, name: g, matches: [b]}, {kind: TCPRoute, name: missing}]
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
""")
    mesh = dev_mesh()
    mesh["smiFiles"] = ["p.yaml"]
    with pytest.raises(SpecError) as err:
        load_mesh(mesh, base_dir=tmp_path)
    found = dict(err.value.problems)
    rule0 = found["p.yaml#TrafficTarget/bookstore/t.spec.rules[0]"]
    assert "match 'b'" in rule0 and "p.yaml#HTTPRouteGroup/bookstore/g" in rule0
    assert "TCPRoute bookstore/missing" in found["p.yaml#TrafficTarget/bookstore/t.spec.rules[1]"]


def test_unknown_kind_and_version_are_refused(tmp_path):
    (tmp_path / "x.yaml").write_text("apiVersion: split.smi-spec.io/v1beta9\nkind: TrafficSplit\nmetadata: {name: a}\n"
                                     "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")
    _, problems = smi.read_files(["x.yaml"], tmp_path)
    assert "use split.smi-spec.io/v1alpha4" in problems[0][1]
    assert "not an SMI kind" in problems[1][1]


# --- Istio objects -------------------------------------------------------------------------------

def objects_of(stack: str, cluster: str | None = None) -> list[dict]:
    states = render_mesh(load_stack(stack, root=ROOT))
    st_ = states[cluster] if cluster else next(iter(states.values()))
    return st_.objects


def find(objs, kind, name, ns=None):
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name
            and (ns is None or o["metadata"].get("namespace") == ns)]
    assert len(hits) == 1, (kind, name, [o["metadata"]["name"] for o in objs if o["kind"] == kind])
    return hits[0]


def test_sidecar_access_policy_selects_pods_and_names_principals():
    objs = objects_of("prod", "prod-aws")
    ap = find(objs, "AuthorizationPolicy", "bookbuyer-access-bookstore-bookstore")
    assert ap["spec"]["selector"] == {"matchLabels": {"app": "bookstore"}}
    assert ap["spec"]["action"] == "ALLOW"
    ops = [r["to"][0]["operation"] for r in ap["spec"]["rules"]]
    assert ops == [{"ports": ["14001"], "methods": ["GET"], "paths": ["/books-bought"]},
                   {"ports": ["14001"], "methods": ["GET"], "paths": ["/buy-a-book/new"]}]
    assert all(r["from"] == [{"source": {"principals": ["cluster.local/ns/bookbuyer/sa/bookbuyer"]}}]
               for r in ap["spec"]["rules"])
    mysql = find(objs, "AuthorizationPolicy", "bookwarehouse-access-mysql-mysql")
    assert mysql["spec"]["rules"] == [{"from": [{"source": {"principals": [
        "cluster.local/ns/bookwarehouse/sa/bookwarehouse"]}}], "to": [{"operation": {"ports": ["3306"]}}]}]
    # bookthief is admitted nowhere
    assert "bookthief" not in str([o for o in objs if o["kind"] == "AuthorizationPolicy"])
    assert find(objs, "PeerAuthentication", "default", "istio-system")["spec"] == {"mtls": {"mode": "STRICT"}}


def test_ambient_binds_l7_policy_to_a_waypoint_and_guards_the_pods():
    objs = objects_of("dev")
    assert find(objs, "Gateway", "waypoint", "bookstore")["spec"]["gatewayClassName"] == "istio-waypoint"
    ap = find(objs, "AuthorizationPolicy", "bookbuyer-access-bookstore-bookstore")
    # the per-version Services select the same pods (tests/test_ambient.py)
    assert ap["spec"]["targetRefs"] == [{"group": "", "kind": "Service", "name": n}
                                        for n in ("bookstore", "bookstore-v1", "bookstore-v2")]
    guard = find(objs, "AuthorizationPolicy", "bookstore-via-waypoint")
    assert guard["spec"]["selector"] == {"matchLabels": {"app": "bookstore"}}
    assert guard["spec"]["rules"][0]["from"][0]["source"]["principals"] == ["cluster.local/ns/bookstore/sa/waypoint"]
    ns = find(objs, "Namespace", "bookstore")
    assert ns["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient"
    assert ns["metadata"]["labels"]["istio.io/use-waypoint"] == "waypoint"


def test_split_is_a_weighted_gamma_route_and_backends_exist():
    objs = objects_of("staging", "staging-use1")
    route = find(objs, "HTTPRoute", "bookstore-split", "bookstore")
    assert route["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": "bookstore", "port": 14001}]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "bookstore-v1", "port": 14001, "weight": 90},
                                                        {"name": "bookstore-v2", "port": 14001, "weight": 10}]
    v2 = find(objs, "Service", "bookstore-v2", "bookstore")
    assert v2["spec"]["selector"] == {"app": "bookstore", "version": "v2"}


def test_ingress_gateway_is_a_source_admitted_by_policy():
    objs = objects_of("prod", "prod-gcp")
    ap = find(objs, "AuthorizationPolicy", "ingress-route-0-bookstore")
    assert ap["spec"]["rules"][0]["from"][0]["source"]["principals"] == ["cluster.local/ns/mesh-ingress/sa/ingress-istio"]
    assert ap["spec"]["rules"][0]["to"][0]["operation"] == {"ports": ["14001"], "paths": ["/*"]}
    redirect = find(objs, "HTTPRoute", "ingress-https-redirect", "mesh-ingress")
    assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"] == {"scheme": "https", "statusCode": 301}


def test_ingress_path_prefix_is_whole_path_elements():
    mesh = dev_mesh()
    mesh["ingress"]["routes"][0]["pathPrefix"] = "/books"
    objs = objects_of_mesh(mesh)
    ap = find(objs, "AuthorizationPolicy", "ingress-route-0-bookstore")
    paths = [r["to"][0]["operation"]["paths"] for r in ap["spec"]["rules"]]
    assert paths == [["/books"], ["/books/*"]]


def objects_of_mesh(mesh):
    return next(iter(render_mesh(load_mesh(mesh, base_dir=ROOT)).values())).objects


def test_untranslatable_regex_is_refused_naming_document_and_match():
    mesh = dev_mesh()
    mesh["accessRules"][0]["http"][0]["pathRegex"] = "/books/[0-9]+"
    with pytest.raises(TranslationError) as err:
        objects_of_mesh(mesh)
    (where, message), = err.value.problems
    assert where == "mesh.accessRules[0]"
    assert "mesh.accessRules[0].http match 'books-bought'" in message
    assert "prefix ('/a.*')" in message


def test_header_match_translates_to_when_conditions():
    mesh = dev_mesh()
    mesh["accessRules"][0]["http"][0]["headers"] = {"x-tenant": "acme", "x-trace": ".*"}
    ap = find(objects_of_mesh(mesh), "AuthorizationPolicy", "bookbuyer-access-bookstore-bookstore")
    assert ap["spec"]["rules"][0]["when"] == [{"key": "request.headers[x-tenant]", "values": ["acme"]},
                                              {"key": "request.headers[x-trace]", "values": ["*"]}]


def test_egress_is_exact_per_service():
    side = objects_of("staging", "staging-use1")
    se = find(side, "ServiceEntry", "book-publisher-api", "mesh-egress")
    assert se["spec"]["hosts"] == ["api.bookpublisher.example.com"] and se["spec"]["exportTo"] == ["bookwarehouse", "."]
    hide = find(side, "Sidecar", "mysql-no-egress", "bookwarehouse")
    assert hide["spec"]["workloadSelector"] == {"labels": {"app": "mysql"}}
    amb = objects_of("dev")
    ap = find(amb, "AuthorizationPolicy", "book-publisher-api", "mesh-egress")
    assert ap["spec"]["rules"][0]["from"][0]["source"]["principals"] == [
        "cluster.local/ns/bookwarehouse/sa/bookwarehouse"]


def test_multi_network_gets_east_west_gateway_and_network_labels():
    states = render_mesh(load_stack("prod", root=ROOT))
    for name, st_ in states.items():
        objs = st_.objects
        gw = find(objs, "Gateway", "cross-network-gateway", "istio-system")
        assert gw["spec"]["servers"][0]["tls"] == {"mode": "AUTO_PASSTHROUGH"}
        network = find(objs, "Namespace", "istio-system")["metadata"]["labels"]["topology.istio.io/network"]
        istiod = next(r for r in st_.releases if r.chart == "istiod")
        networks = istiod.values["global"].pop("meshNetworks")  # the AWS gateway's static addresses
        assert istiod.values["global"] == {"meshID": "bookstore-prod", "multiCluster": {"clusterName": name},
                                           "network": network}
        assert networks["aws-us-east-1"]["gateways"][0] == {"address": "203.0.113.10", "port": 15443}
        ew = next(r for r in st_.releases if r.name == "istio-eastwestgateway")
        assert ew.values["networkGateway"] == network
    assert len({find(s.objects, "Namespace", "istio-system")["metadata"]["labels"]["topology.istio.io/network"]
                for s in states.values()}) == 3


def test_model_sources_match_smi():
    loaded = load_stack("prod", root=ROOT)
    model = gamma.build(loaded.spec, smi.policy_set(loaded.spec, loaded.smi_documents),
                        gateway.gateway_identity(loaded.spec))
    allowed = {(a.destination.name, src) for a in model.authorizations for src in a.sources}
    assert allowed == {("bookstore", ("bookbuyer", "bookbuyer")), ("bookwarehouse", ("bookstore", "bookstore")),
                       ("mysql", ("bookwarehouse", "bookwarehouse")), ("bookstore", ("mesh-ingress", "ingress-istio"))}


def test_target_on_a_port_no_service_exposes_is_refused(tmp_path):
    (tmp_path / "t.yaml").write_text("""
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: r, namespace: bookwarehouse}
spec: {matches: {ports: [3307]}}
---
apiVersion: access.smi-spec.io/v1alpha2
kind: TrafficTarget
metadata: {name: t, namespace: bookwarehouse}
spec:
  destination: {kind: ServiceAccount, name: mysql, namespace: bookwarehouse, port: 3307}
  rules: [{kind: TCPRoute, name: r}]
  sources: [{kind: ServiceAccount, name: bookwarehouse, namespace: bookwarehouse}]
""")
    mesh = dev_mesh()
    mesh["smiFiles"] = ["t.yaml"]
    with pytest.raises(SpecError) as err:
        render_mesh(load_mesh(mesh, base_dir=tmp_path))
    assert err.value.problems == [("t.yaml#TrafficTarget/bookwarehouse/t",
                                   "no service running as 'mysql' exposes destination port 3307; "
                                   "name a port one of them exposes")]
