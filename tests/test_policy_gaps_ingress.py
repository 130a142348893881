"""Who the mesh admits the ingress gateway as, per ingress route (gamma.build, issue 18): the route's
path prefix by whole path elements (a prefix ending in any character, with or without a trailing
``/``, and ``/``), any method, the route's port only, and each weighted backend of a split that
serves the port with a positive weight, judged on every mesh by the evaluators of ``policy_eval``.

What the gateway itself sends (Gateway API v1.6.1, config/crd/standard/
gateway.networking.k8s.io_httproutes.yaml, shared in ../shared/crds/gateway-api/standard):
- ``PathPrefix`` "matches full path elements ... When specified, a trailing ``/`` is ignored. For
  example, the paths ``/abc``, ``/abc/``, and ``/abc/def`` would all match the prefix ``/abc``, but
  the path ``/abcd`` would not" (lines 1079-1083); a match without ``method`` matches every method;
- a backendRef's weight: "If weight is set to 0, no traffic should be forwarded for this entry"
  (lines 1602-1604); Envoy Gateway v1.9.0 internal/gatewayapi/route.go ``processDestination`` skips
  backends with weight 0.
The mesh must admit the gateway on exactly that: never on a sibling path (``/apiXY`` for
``/apiX``), another port or a backend the gateway never calls (wider), and on every method and
backend it does call (narrower would refuse the edge's own requests). OSM's gateway is outside the
mesh: OSM v1.2.4 admits it by IngressBackend, on port and source only (pkg/envoy/lds/ingress.go:84-91),
so the path is the edge route's alone.
Upstream, as pinned: Istio 1.30.3, Linkerd edge-26.8.3, OSM v1.2.4, Envoy Gateway v1.9.0.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from mesh_components.core import gamma, gateway
from mesh_components.spec import smi
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh

from policy_eval import Request, istio_allows, linkerd_allows
from test_policy_gaps import TD, namespace_default

MESHES = ["sidecar", "ambient", "linkerd"]
"""Meshes whose policy admits the gateway by identity (gateway.gateway_identity): Istio with
sidecars or ambient (Istio's own gateway), Linkerd (Envoy Gateway, meshed)."""
INTRUDER = ("front", "client")
METHODS = ["GET", "POST", "PATCH", "OPTIONS"]
PATHS = ["/", "/a", "/api", "/api/", "/api/1", "/apiX", "/apiX/", "/apiX/1", "/apiXY", "/apiXX", "/apiY",
         "/apis", "/APIX", "/v1.0", "/v1.0/x", "/v1x0", "/v1x0/x"]


def http(port: int, name: str, target: int | None = None) -> dict:
    return {"port": port, "name": name, "protocol": "http", **({"targetPort": target} if target else {})}


CALLER = {"name": "client", "namespace": "front", "ports": [http(80, "http")]}


def ingress_mesh(tmp_path: Path, backend: str, routes: list[dict], services: list[dict], docs=(), splits=()):
    """A one-cluster mesh of ``services`` (and :data:`CALLER`) with an ingress of ``routes`` (host
    shop.example.com): ``backend`` ``sidecar``/``ambient`` (Istio), ``linkerd`` or ``osm``."""
    every = services + [CALLER]
    (tmp_path / "smi.yaml").write_text(yaml.safe_dump_all(list(docs)) if docs else "")
    mesh = {"name": "gaps",
            "backend": {"type": backend} if backend in ("linkerd", "osm")
            else {"type": "istio", "istio": {"dataPlane": backend}},
            "clusters": [{"name": "c1", "cloud": "onprem", "region": "lab"}],
            "namespaces": [{"name": n} for n in sorted({s["namespace"] for s in every})],
            "services": every, "smiFiles": ["smi.yaml"] if docs else [],
            "ingress": {"hosts": ["shop.example.com"], "routes": routes}}
    if splits:
        mesh["trafficSplits"] = list(splits)
    return load_mesh(mesh, base_dir=tmp_path)


def mesh_allows(loaded, backend: str):
    """``allows(request)`` for the rendered objects of the destination namespace ``shop`` (and the
    Namespace patches, which carry Linkerd's default policy)."""
    objects = [o for o in render_mesh(loaded)["c1"].objects
               if o["metadata"].get("namespace") == "shop" or o["kind"] == "Namespace"]
    if backend == "linkerd":
        return lambda r: linkerd_allows(objects, r, trust_domain=TD, default_policy=namespace_default(objects, r.namespace))
    waypoints = frozenset(o["metadata"]["namespace"] for o in objects
                          if o["kind"] == "Gateway" and o["spec"].get("gatewayClassName") == "istio-waypoint")
    return lambda r: istio_allows(objects, r, trust_domain=TD, ambient_waypoint_namespaces=waypoints)


def edge_routes(loaded) -> list[dict]:
    return [o for o in render_mesh(loaded)["c1"].objects if o["kind"] == "HTTPRoute"
            and o["metadata"]["namespace"] == "mesh-ingress" and o["metadata"]["name"] != "ingress-https-redirect"]


def call(source, service: str, pods: tuple[str, dict], target: int, service_port: int, method: str, path: str) -> Request:
    """``method path`` from ``source`` to Service ``service`` port ``service_port``, reaching pods
    ``(service account, labels)`` on pod port ``target``."""
    account, labels = pods
    return Request(source, "shop", service, account, tuple(sorted(labels.items())), target, http=True, method=method,
                   path=path, service_port=service_port)


# --- the route's path prefix, any method, the route's port ------------------------------------------

API = {"name": "api", "namespace": "shop", "ports": [http(80, "http", 8080), http(9090, "admin")]}

PREFIXES = {
    # pathPrefix: the paths of PATHS the gateway sends to the route (Gateway API PathPrefix)
    "/apiX": {"/apiX", "/apiX/", "/apiX/1"},
    "/apiX/": {"/apiX", "/apiX/", "/apiX/1"},      # a trailing '/' is ignored
    "/api/": {"/api", "/api/", "/api/1"},
    "/v1.0": {"/v1.0", "/v1.0/x"},                 # '.' is a character, not "any character"
    "/": set(PATHS),
}


@pytest.mark.parametrize("backend", MESHES)
@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_the_gateway_is_admitted_on_exactly_the_paths_its_route_sends_on_any_method(backend, prefix, tmp_path):
    """Route ``prefix`` to api port 80 (pod port 8080): the gateway may call exactly the paths the
    prefix matches, by every method, on 8080; not a sibling path (``/apiXY``, ``/apiY``), not the
    admin port 9090 no route names; and no other caller anything (the route polices api)."""
    loaded = ingress_mesh(tmp_path, backend, [{"pathPrefix": prefix, "service": "api", "namespace": "shop", "port": 80}],
                          [API])
    gw = gateway.gateway_identity(loaded.spec)
    (route,) = edge_routes(loaded)
    (match,) = route["spec"]["rules"][0]["matches"]
    assert match == {"path": {"type": "PathPrefix", "value": prefix}}   # the edge: any method, this prefix
    allows = mesh_allows(loaded, backend)
    for source, path, method, (target, port) in itertools.product((gw, INTRUDER), PATHS, METHODS,
                                                                  ((8080, 80), (9090, 9090))):
        want = source == gw and target == 8080 and path in PREFIXES[prefix]
        req = call(source, "api", ("api", {"app": "api"}), target, port, method, path)
        assert allows(req) == want, (backend, prefix, req)


@pytest.mark.parametrize("prefix", ["/apiX", "/"])
def test_osm_admits_the_gateway_by_ingress_backend_on_the_route_port_and_the_edge_keeps_the_prefix(prefix, tmp_path):
    """OSM's Envoy Gateway is not meshed (gateway.gateway_identity is None): no TrafficTarget names
    it, the IngressBackend admits its Service on the routed port's target port only (OSM v1.2.4
    pkg/envoy/lds/ingress.go:84-91: one filter chain per backend port, matched on port and source),
    and the path is enforced by the edge route, whose PathPrefix is the route's as given."""
    loaded = ingress_mesh(tmp_path, "osm", [{"pathPrefix": prefix, "service": "api", "namespace": "shop", "port": 80}],
                          [API])
    assert gateway.gateway_identity(loaded.spec) is None
    objects = render_mesh(loaded)["c1"].objects
    assert not [o for o in objects if o["kind"] in ("TrafficTarget", "HTTPRouteGroup", "TCPRoute")]
    (backend,) = [o for o in objects if o["kind"] == "IngressBackend"]
    assert backend["metadata"]["namespace"] == "shop"
    assert backend["spec"]["backends"] == [{"name": "api", "port": {"number": 8080, "protocol": "http"}}]
    assert backend["spec"]["sources"] == [{"kind": "Service", "namespace": "envoy-gateway-system",
                                           "name": "ingress-envoy"}]
    (route,) = edge_routes(loaded)
    assert route["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": prefix}}]
    # and the traffic model has no authorization from a gateway identity it does not have
    model = gamma.build(loaded.spec, smi.policy_set(loaded.spec, loaded.smi_documents), None)
    assert model.authorizations == ()


# --- a split at the edge: every backend the gateway calls, and only those -------------------------

SPLIT_SERVICES = [
    {"name": "api", "namespace": "shop", "ports": [http(80, "http", 8080), http(9090, "admin")], "versions": [{"name": "v1"}]},
    {"name": "api-next", "namespace": "shop", "ports": [http(80, "http", 8080)]},     # lacks 9090
    {"name": "api-zero", "namespace": "shop", "ports": [http(80, "http", 8080)]},     # weight 0
]
SPLIT = {"name": "api-split", "namespace": "shop", "service": "api",
         "backends": [{"service": "api-v1", "weight": 70}, {"service": "api-next", "weight": 30},
                      {"service": "api-zero", "weight": 0}]}
SPLIT_ROUTES = [{"pathPrefix": "/store", "service": "api", "namespace": "shop", "port": 80},
                {"pathPrefix": "/admin", "service": "api", "namespace": "shop", "port": 9090}]
ZERO_ACCESS = [  # api-zero is policed by a rule of its own: client may GET /z
    {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup", "metadata": {"name": "z", "namespace": "shop"},
     "spec": {"matches": [{"name": "get-z", "methods": ["GET"], "pathRegex": "/z"}]}},
    {"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget", "metadata": {"name": "z", "namespace": "shop"},
     "spec": {"destination": {"kind": "ServiceAccount", "name": "api-zero", "namespace": "shop"},
              "rules": [{"kind": "HTTPRouteGroup", "name": "z"}],
              "sources": [{"kind": "ServiceAccount", "name": "client", "namespace": "front"}]}}]


@pytest.mark.parametrize("backend", MESHES)
def test_the_gateway_is_admitted_on_each_positively_weighted_backend_serving_the_route_port(backend, tmp_path):
    """Split api -> api-v1 70 / api-next 30 / api-zero 0; routes /store -> api:80, /admin -> api:9090.
    The edge sends /store to api-v1 and api-next (port 80, pod port 8080) and /admin to api-v1 alone
    (api-next has no port 9090: SMI traffic-split "Ports", gamma.WeightedRoute), api-zero nothing
    (weight 0). The mesh admits the gateway there and nowhere else; api-zero keeps its own rule."""
    loaded = ingress_mesh(tmp_path, backend, SPLIT_ROUTES, SPLIT_SERVICES, ZERO_ACCESS, [SPLIT])
    gw = gateway.gateway_identity(loaded.spec)
    by_prefix = {r["spec"]["rules"][0]["matches"][0]["path"]["value"]:
                 [(b["name"], b["port"], b["weight"]) for b in r["spec"]["rules"][0]["backendRefs"]]
                 for r in edge_routes(loaded)}
    assert by_prefix == {"/store": [("api-v1", 80, 70), ("api-next", 80, 30), ("api-zero", 80, 0)],
                         "/admin": [("api-v1", 9090, 70)]}
    allows = mesh_allows(loaded, backend)
    pods = {"api-v1": ("api", {"app": "api", "version": "v1"}), "api-next": ("api-next", {"app": "api-next"}),
            "api-zero": ("api-zero", {"app": "api-zero"})}
    # (Service called, its port, pod port) -> the paths the gateway may use there
    admitted = {("api-v1", 80, 8080): {"/store", "/store/1"}, ("api-v1", 9090, 9090): {"/admin", "/admin/1"},
                ("api-next", 80, 8080): {"/store", "/store/1"}, ("api-zero", 80, 8080): set()}
    for (service, port, target), paths in admitted.items():
        for path, method in itertools.product(["/store", "/store/1", "/admin", "/admin/1", "/z"], ["GET", "DELETE"]):
            req = call(gw, service, pods[service], target, port, method, path)
            assert allows(req) == (path in paths), (backend, req)
    assert allows(call(INTRUDER, "api-zero", pods["api-zero"], 8080, 80, "GET", "/z"))
    if backend == "sidecar":
        # a sidecar sees pod ports: api-next's pods are not opened on 9090, which only api's route names
        for path in ("/admin", "/store"):
            assert not allows(call(gw, "api-next", pods["api-next"], 9090, 9090, "GET", path)), path


def test_osm_ingress_backends_cover_the_positively_weighted_backends_serving_each_route_port(tmp_path):
    """OSM admits the unmeshed gateway by IngressBackend (OSM v1.2.4 pkg/policy/client.go:88-108):
    one per Service the edge calls, on the target ports it calls it on; none for api-zero
    (weight 0), none for api-next on 9090, which it does not serve."""
    loaded = ingress_mesh(tmp_path, "osm", SPLIT_ROUTES, SPLIT_SERVICES, ZERO_ACCESS, [SPLIT])
    backends = {o["metadata"]["name"]: o["spec"]["backends"] for o in render_mesh(loaded)["c1"].objects
                if o["kind"] == "IngressBackend"}
    assert backends == {
        "ingress-api": [{"name": "api", "port": {"number": 8080, "protocol": "http"}},
                        {"name": "api", "port": {"number": 9090, "protocol": "http"}}],
        "ingress-api-next": [{"name": "api-next", "port": {"number": 8080, "protocol": "http"}}]}
