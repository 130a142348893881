"""Translation for every mesh: Linkerd and OSM objects for the bookstore, refusals that keep
translation exact, named approximations, per-service resilience, overrides and the translate CLI."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.render import render_mesh, translate
from mesh_components.spec import load_mesh, load_stack

from program_harness import ROOT
from test_policy import find
from test_spec import dev_mesh

TOOLS = ROOT.parent / "shared" / "tools"


def policy(mesh: dict, to: str, cluster: str = "dev", base_dir: Path = ROOT) -> list[dict]:
    return translate(load_mesh(mesh, base_dir=base_dir), to)[cluster].objects


def refused(mesh: dict, to: str, base_dir: Path = ROOT) -> dict[str, str]:
    with pytest.raises((TranslationError, SpecError)) as err:
        policy(mesh, to, base_dir=base_dir)
    return dict(err.value.problems)


# --- Linkerd -------------------------------------------------------------------------------------

def test_linkerd_bookstore_objects():
    objs = policy(dev_mesh(), "linkerd")
    server = find(objs, "Server", "bookstore-http", "bookstore")
    assert server["spec"] == {"podSelector": {"matchLabels": {"app": "bookstore"}}, "port": 14001,
                              "proxyProtocol": "HTTP/1"}
    routes = [o for o in objs if o["kind"] == "HTTPRoute" and o["apiVersion"].startswith("policy.linkerd.io")
              and o["metadata"]["namespace"] == "bookstore"]
    assert sorted(r["spec"]["rules"][0]["matches"][0]["path"]["value"] for r in routes) == ["/books-bought",
                                                                                           "/buy-a-book/new"]
    for r in routes:
        name = r["metadata"]["name"]
        authz = find(objs, "AuthorizationPolicy", name, "bookstore")
        assert authz["spec"]["targetRef"] == {"group": "policy.linkerd.io", "kind": "HTTPRoute", "name": name}
        mtls = find(objs, "MeshTLSAuthentication", name, "bookstore")
        assert mtls["spec"]["identities"] == ["bookbuyer.bookbuyer.serviceaccount.identity.linkerd.cluster.local"]
    mysql = find(objs, "Server", "mysql-mysql", "bookwarehouse")
    assert mysql["spec"]["proxyProtocol"] == "opaque" and mysql["spec"]["port"] == 3306
    assert find(objs, "AuthorizationPolicy", "mysql-mysql", "bookwarehouse")["spec"]["targetRef"]["kind"] == "Server"
    split = find(objs, "HTTPRoute", "bookstore-split", "bookstore")
    assert split["apiVersion"] == "gateway.networking.k8s.io/v1"


def test_linkerd_regex_paths_are_anchored_and_methods_split():
    mesh = dev_mesh()
    mesh["accessRules"][0]["http"] = [{"name": "books", "methods": ["GET", "HEAD"], "pathRegex": "/books/[0-9]+"}]
    route = next(o for o in policy(mesh, "linkerd") if o["kind"] == "HTTPRoute"
                 and o["apiVersion"] == "policy.linkerd.io/v1beta3" and o["metadata"]["namespace"] == "bookstore")
    assert route["spec"]["rules"][0]["matches"] == [
        {"path": {"type": "RegularExpression", "value": "^(?:/books/[0-9]+)$"}, "method": "GET"},
        {"path": {"type": "RegularExpression", "value": "^(?:/books/[0-9]+)$"}, "method": "HEAD"}]


def test_linkerd_refuses_overlapping_routes_with_different_sources():
    mesh = dev_mesh()
    mesh["accessRules"].append({"name": "thief", "namespace": "bookstore", "destination": {"serviceAccount": "bookstore"},
                                "sources": [{"serviceAccount": "bookthief", "namespace": "bookthief"}],
                                "http": [{"name": "all-books", "pathRegex": "/books.*"}]})
    found = refused(mesh, "linkerd")
    (where, message), = found.items()
    assert "overlaps" in message and "make the matches disjoint" in message
    # the same overlap is fine on Istio, whose rules are OR-ed per request
    assert policy(mesh, "istio")


def test_linkerd_refuses_tcp_and_http_sources_mixed_on_one_port():
    mesh = dev_mesh()
    mesh["accessRules"].append({"name": "thief-tcp", "namespace": "bookstore", "destination": {"serviceAccount": "bookstore"},
                                "sources": [{"serviceAccount": "bookthief", "namespace": "bookthief"}],
                                "tcp": {"ports": [14001]}})
    message = next(iter(refused(mesh, "linkerd").values()))
    assert "both TCP rules" in message


# --- OSM -----------------------------------------------------------------------------------------

def test_osm_renders_smi_at_the_versions_it_serves():
    objs = policy(dev_mesh(), "osm")
    versions = {o["kind"]: o["apiVersion"] for o in objs if o["kind"] != "Service"}
    assert versions == {"TrafficTarget": "access.smi-spec.io/v1alpha3", "HTTPRouteGroup": "specs.smi-spec.io/v1alpha4",
                        "TCPRoute": "specs.smi-spec.io/v1alpha4", "TrafficSplit": "split.smi-spec.io/v1alpha2"}
    split = find(objs, "TrafficSplit", "bookstore-split", "bookstore")
    assert split["spec"] == {"service": "bookstore", "backends": [{"service": "bookstore-v1", "weight": 90},
                                                                  {"service": "bookstore-v2", "weight": 10}]}


def test_osm_expresses_a_port_scoped_target_with_a_tcp_route():
    # issue 10.8: OSM v1.2.4 gates HTTP filter chains with the TCPRoute ports (lds/inmesh.go, rbac.go);
    # more in tests/test_splits.py
    mesh = dev_mesh()
    mesh["accessRules"][0]["destination"]["port"] = 14001
    objs = policy(mesh, "osm")
    tt = find(objs, "TrafficTarget", "bookbuyer-access-bookstore", "bookstore")
    tcp = next(r["name"] for r in tt["spec"]["rules"] if r["kind"] == "TCPRoute")
    assert find(objs, "TCPRoute", tcp, "bookstore")["spec"]["matches"]["ports"] == [14001]


# --- approximations ------------------------------------------------------------------------------

def test_named_approximation_is_accepted_on_purpose_and_shown():
    mesh = dev_mesh()
    mesh["accessRules"][0]["http"][0]["pathRegex"] = "/books/[0-9]+"
    assert "approximate: prefix" in refused(mesh, "istio")["mesh.accessRules[0]"]
    mesh["accessRules"][0]["http"][0]["approximate"] = "prefix"
    ap = find(policy(mesh, "istio"), "AuthorizationPolicy", "bookbuyer-access-bookstore-bookstore")
    assert ap["spec"]["rules"][0]["to"][0]["operation"]["paths"] == ["/books/*"]
    assert "'/books/[0-9]+' as prefix '/books/*'" in ap["metadata"]["annotations"]["mesh-components.io/approximated"]
    # Linkerd matches the regex itself: nothing to approximate
    route = [o for o in policy(mesh, "linkerd") if o["kind"] == "HTTPRoute" and "annotations" in o["metadata"]]
    assert route == []


def test_approximation_from_an_smi_file_annotation(tmp_path):
    (tmp_path / "g.yaml").write_text("""
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata:
  name: g
  namespace: bookwarehouse
  annotations: {mesh-components.io/approximate: "restock=prefix"}
spec: {matches: [{name: restock, methods: [POST], pathRegex: "/restock/[a-z]+"}]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: t, namespace: bookwarehouse}
spec:
  destination: {kind: ServiceAccount, name: bookwarehouse, namespace: bookwarehouse}
  rules: [{kind: HTTPRouteGroup, name: g}]
  sources: [{kind: ServiceAccount, name: bookstore, namespace: bookstore}]
""")
    mesh = dev_mesh()
    mesh["smiFiles"] = ["g.yaml"]
    ap = find(policy(mesh, "istio", base_dir=tmp_path), "AuthorizationPolicy", "t-bookwarehouse")
    assert ap["spec"]["rules"][0]["to"][0]["operation"]["paths"] == ["/restock/*"]


# --- resilience ----------------------------------------------------------------------------------

RESILIENCE = {"timeout": "5s", "retries": {"attempts": 3, "perTryTimeout": "2s"},
              "circuitBreaker": {"maxConnections": 100, "maxPendingRequests": 10},
              "outlierDetection": {"consecutiveErrors": 3}}


def with_resilience(res: dict) -> dict:
    mesh = dev_mesh()
    mesh["services"][2]["resilience"] = copy.deepcopy(res)  # bookstore, which has the 90/10 split
    return mesh


def test_istio_resilience_destination_rule_and_virtual_service_carrying_the_split():
    objs = policy(with_resilience(RESILIENCE), "istio")
    dr = find(objs, "DestinationRule", "bookstore", "bookstore")
    assert dr["spec"] == {"host": "bookstore.bookstore.svc.cluster.local", "trafficPolicy": {
        "connectionPool": {"tcp": {"maxConnections": 100}, "http": {"http1MaxPendingRequests": 10}},
        "outlierDetection": {"consecutive5xxErrors": 3, "interval": "10s", "baseEjectionTime": "30s",
                             "maxEjectionPercent": 50}}}
    vs = find(objs, "VirtualService", "bookstore", "bookstore")
    assert vs["spec"]["http"] == [{"route": [
        {"destination": {"host": "bookstore-v1.bookstore.svc.cluster.local"}, "weight": 90},
        {"destination": {"host": "bookstore-v2.bookstore.svc.cluster.local"}, "weight": 10}],
        "timeout": "5s", "retries": {"attempts": 3, "retryOn": "5xx", "perTryTimeout": "2s"}}]
    assert not [o for o in objs if o["kind"] == "HTTPRoute" and o["metadata"]["name"] == "bookstore-split"]


def test_linkerd_resilience_route_and_refusals():
    found = refused(with_resilience(RESILIENCE), "linkerd")
    assert set(found) == {"mesh.services[2].resilience.circuitBreaker", "mesh.services[2].resilience.outlierDetection"}
    objs = policy(with_resilience({"timeout": "5s", "retries": {"attempts": 3, "perTryTimeout": "2s"}}), "linkerd")
    route = find(objs, "HTTPRoute", "bookstore-split", "bookstore")
    assert route["metadata"]["annotations"] == {"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "3",
                                                "retry.linkerd.io/timeout": "2s"}
    assert route["spec"]["rules"][0]["timeouts"] == {"request": "5s"}
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [90, 10]


def test_osm_resilience_settings_retries_and_refusals():
    found = refused(with_resilience(RESILIENCE), "osm")
    assert set(found) == {"mesh.services[2].resilience.timeout", "mesh.services[2].resilience.outlierDetection"}
    objs = policy(with_resilience({"retries": {"attempts": 3, "perTryTimeout": "2s"},
                                   "circuitBreaker": {"maxConnections": 100}}), "osm")
    assert find(objs, "UpstreamTrafficSetting", "bookstore", "bookstore")["spec"]["connectionSettings"] == {
        "tcp": {"maxConnections": 100}}
    retry = find(objs, "Retry", "bookbuyer.bookstore.bookstore", "bookbuyer")  # <sa>.<service>.<namespace>
    assert retry["spec"]["retryPolicy"]["numRetries"] == 3


@pytest.mark.skipif(not TOOLS.is_dir(), reason="../shared/tools is not beside the project")
@pytest.mark.parametrize("to,res", [("istio", RESILIENCE), ("linkerd", {"timeout": "5s", "retries": {"attempts": 2}}),
                                    ("osm", {"retries": {"attempts": 2, "perTryTimeout": "1s"},
                                             "circuitBreaker": {"maxRequests": 5}})])
def test_translated_objects_pass_the_mesh_schemas(to, res, tmp_path):
    from mesh_components.core.render import write_tree
    states = translate(load_mesh(with_resilience(res), base_dir=ROOT), to)
    write_tree(states, tmp_path / "out")
    v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--profile", to, str(tmp_path / "out" / "dev")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stdout[-3000:]


# --- overrides -----------------------------------------------------------------------------------

def test_override_patches_a_generated_object_and_a_release():
    mesh = dev_mesh()
    mesh["overrides"] = [
        {"kind": "PeerAuthentication", "name": "default", "namespace": "istio-system",
         "patch": [{"op": "test", "path": "/spec/mtls/mode", "value": "STRICT"},
                   {"op": "add", "path": "/spec/portLevelMtls", "value": {"15021": {"mode": "PERMISSIVE"}}}]},
        {"kind": "HelmRelease", "name": "istiod", "patch": [{"op": "add", "path": "/values/replicaCount", "value": 2}]},
    ]
    st = render_mesh(load_mesh(mesh, base_dir=ROOT))["dev"]
    pa = find(st.objects, "PeerAuthentication", "default", "istio-system")
    assert pa["spec"]["portLevelMtls"] == {"15021": {"mode": "PERMISSIVE"}}
    assert next(r for r in st.releases if r.name == "istiod").values["replicaCount"] == 2


@pytest.mark.parametrize("override,fragment", [
    ({"kind": "PeerAuthentication", "name": "nope", "namespace": "istio-system",
      "patch": [{"op": "remove", "path": "/spec"}]}, "no generated PeerAuthentication istio-system/nope"),
    ({"kind": "PeerAuthentication", "name": "default", "namespace": "istio-system",
      "patch": [{"op": "test", "path": "/spec/mtls/mode", "value": "PERMISSIVE"}]}, "test"),
    ({"kind": "PeerAuthentication", "name": "default", "namespace": "istio-system",
      "patch": [{"op": "replace", "path": "/metadata/name", "value": "other"}]}, "may not change"),
    ({"kind": "PeerAuthentication", "name": "default", "namespace": "istio-system",
      "patch": [{"op": "frobnicate", "path": "/spec"}]}, "frobnicate"),
])
def test_bad_overrides_are_refused(override, fragment):
    mesh = dev_mesh()
    mesh["overrides"] = [override]
    with pytest.raises(SpecError) as err:
        render_mesh(load_mesh(mesh, base_dir=ROOT))
    assert any(p.startswith("mesh.overrides[0]") and fragment in m for p, m in err.value.problems), err.value.problems


# --- egress on every mesh ------------------------------------------------------------------------

def test_egress_for_linkerd_and_osm():
    from mesh_components.core import egress
    from mesh_components.spec import Backend
    spec = load_stack("dev", root=ROOT).spec
    linkerd = spec.model_copy(update={"backend": Backend(type="linkerd")})
    with pytest.raises(TranslationError) as err:
        egress.egress_objects(linkerd, "dev")
    assert "approximate: namespace" in err.value.problems[0][1]
    accepted = linkerd.model_copy(update={"egress": [r.model_copy(update={"approximate": "namespace"})
                                                     for r in linkerd.egress]})
    objs = egress.egress_objects(accepted, "dev")
    assert find(objs, "EgressNetwork", "mesh-egress", "bookwarehouse")["spec"] == {"trafficPolicy": "Deny"}
    assert find(objs, "TLSRoute", "book-publisher-api-443", "bookwarehouse")["spec"]["hostnames"] == [
        "api.bookpublisher.example.com"]
    osm = egress.egress_objects(spec.model_copy(update={"backend": Backend(type="osm")}), "dev")
    assert osm[0]["spec"]["sources"] == [{"kind": "ServiceAccount", "name": "bookwarehouse", "namespace": "bookwarehouse"}]


# --- the translate command -----------------------------------------------------------------------

def test_translate_cli_writes_the_render_layout(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "mesh_components", "translate", "--to", "linkerd", "--stack", "prod",
                             "--out", str(out), "policies/smi/mysql-access.yaml", "policies/smi/bookwarehouse-access.yaml"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["prod-aws", "prod-azure", "prod-gcp"]
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in (out / "prod-aws").glob("*--*.yaml")}
    assert {"Server", "AuthorizationPolicy", "MeshTLSAuthentication", "Namespace"} <= kinds
    # only the given files (plus the stack's inline rules): no split from policies/smi/bookstore-split.yaml
    assert not list((out / "prod-aws").glob("bookstore--httproute.gateway.networking.k8s.io--*"))
    # one file alone leaves bookwarehouse without a rule in a namespace that then defaults to deny:
    # refused as render refuses it (tests/test_review_findings.py, W1)
    alone = subprocess.run([sys.executable, "-m", "mesh_components", "translate", "--to", "linkerd", "--stack", "prod",
                            "--out", str(tmp_path / "alone"), "policies/smi/mysql-access.yaml"], cwd=ROOT,
                           capture_output=True, text=True)
    assert alone.returncode == 1 and "bookwarehouse/bookwarehouse has no access rule" in alone.stderr
    bad = subprocess.run([sys.executable, "-m", "mesh_components", "translate", "--to", "osm", "--stack", "prod",
                          "--out", str(tmp_path / "x"), "nowhere.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and "nowhere.yaml" in bad.stderr and "Traceback" not in bad.stderr
