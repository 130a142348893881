"""Findings of the independent review of SMI translation (issue 10, "How we make sure"), one test each.

The reviewer translated a corpus of upstream SMI documents and judged the output by each mesh's
source. Every test below copies the small SMI snippet it came from (repository, commit and path as
the corpus lists them) and cites the mesh source line that decides it, at the versions we pin:
Linkerd edge-26.8.3 (proxy release/v2.366.0), Istio 1.30.3, OSM v1.2.4, smi-sdk-go v0.5.0,
smi-spec main (cc4babdc4457).
"""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import yaml

from mesh_components.spec import smi
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.render import render_mesh, translate, write_tree
from mesh_components.spec import Backend, LoadedMesh, load_mesh

from cp_helpers import stack_mesh
from policy_eval import Request, istio_allows, linkerd_allows, osm_allows
from program_harness import ROOT

TD = "cluster.local"
DEFAULT_POLICY = "config.linkerd.io/default-inbound-policy"
CHART_DEFAULT = "all-unauthenticated"
"""linkerd/linkerd2 edge-26.8.3 charts/linkerd-control-plane/values.yaml:251 ``proxy.defaultInboundPolicy``."""


def mesh(tmp_path: Path, smi_text: str, services: list[dict], *, backend: str = "istio",
         data_plane: str = "sidecar", namespaces: list[dict] | None = None):
    """A one-cluster mesh (cluster ``c1``) of ``services`` (spec form) whose SMI file holds ``smi_text``."""
    (tmp_path / "smi.yaml").write_text(smi_text)
    names = sorted({s["namespace"] for s in services})
    backend_spec: dict = {"type": backend}
    if backend == "istio":
        backend_spec["istio"] = {"dataPlane": data_plane}
    return load_mesh({
        "name": "review", "backend": backend_spec,
        "clusters": [{"name": "c1", "cloud": "onprem", "region": "lab"}],
        "namespaces": namespaces or [{"name": n} for n in names],
        "services": services, "smiFiles": ["smi.yaml"],
    }, base_dir=tmp_path)


def svc(name: str, namespace: str, *ports: tuple) -> dict:
    """A spec service; ports ``(port, protocol)`` or ``(port, protocol, targetPort)``."""
    return {"name": name, "namespace": namespace, "ports": [
        {"port": p[0], "name": f"{p[1]}-{p[0]}", "protocol": p[1], **({"targetPort": p[2]} if len(p) > 2 else {})}
        for p in ports]}


def as_linkerd(loaded) -> LoadedMesh:
    """``loaded`` with a Linkerd backend, for render (as translate switches it)."""
    return LoadedMesh(loaded.spec.model_copy(update={"backend": Backend(type="linkerd")}), loaded.smi_documents)


def objects(loaded, to: str) -> list[dict]:
    return translate(loaded, to)["c1"].objects


def refused(call) -> dict[str, str]:
    with pytest.raises((SpecError, TranslationError)) as err:
        call()
    return dict(err.value.problems)


def namespace_default(objs: list[dict], namespace: str) -> str:
    """The default inbound policy the namespace's pods get: the annotation of the translated Namespace
    (the proxy injector copies it onto pods, controller/proxy-injector/webhook.go:106-108), else the chart's."""
    ns = next((o for o in objs if o["kind"] == "Namespace" and o["metadata"]["name"] == namespace), None)
    return ((ns or {}).get("metadata", {}).get("annotations") or {}).get(DEFAULT_POLICY, CHART_DEFAULT)


# --- W1: translate --to linkerd closes the ports no Server selects ------------------------------------

# openservicemesh/osm 826510089218 demo/deploy-traffic-target.sh (heredoc 0) and
# demo/deploy-traffic-specs.sh (heredoc 1), as the corpus has them
OSM_DEMO_WAREHOUSE = """
kind: TrafficTarget
apiVersion: access.smi-spec.io/v1alpha3
metadata:
  name: bookstore-access-bookwarehouse
  namespace: bookwarehouse
spec:
  destination:
    kind: ServiceAccount
    name: bookwarehouse
    namespace: bookwarehouse
  rules:
  - kind: HTTPRouteGroup
    name: bookwarehouse-service-routes
    matches:
    - restock-books
  sources:
  - kind: ServiceAccount
    name: bookstore-v1
    namespace: bookstore
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata:
  name: bookwarehouse-service-routes
  namespace: bookwarehouse
spec:
  matches:
  - name: restock-books
    methods:
    - POST
"""
WAREHOUSE = [svc("bookwarehouse", "bookwarehouse", (14001, "http")), svc("bookstore-v1", "bookstore", (14001, "http"))]


def test_w1_translate_to_linkerd_puts_the_policed_namespace_on_deny(tmp_path):
    """A pod port no Server selects falls to the chart default ``all-unauthenticated`` (linkerd2
    edge-26.8.3 charts/linkerd-control-plane/values.yaml:251; policy-controller/k8s/index/src/inbound/
    index.rs:1753-1790 ``default_inbound_server``). render annotates the namespace with ``deny``;
    translate now emits the same as a minimal Namespace patch."""
    loaded = mesh(tmp_path, OSM_DEMO_WAREHOUSE, WAREHOUSE)
    objs = objects(loaded, "linkerd")
    namespaces = [o for o in objs if o["kind"] == "Namespace"]
    assert namespaces == [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "bookwarehouse", "annotations": {DEFAULT_POLICY: "deny", "mesh-components.io/patch": "true"}}}]
    # the same annotation render gives the namespace
    rendered = render_mesh(as_linkerd(loaded))
    ns = next(o for o in rendered["c1"].objects if o["kind"] == "Namespace" and o["metadata"]["name"] == "bookwarehouse")
    assert ns["metadata"]["annotations"][DEFAULT_POLICY] == "deny"

    policy = [o for o in objs if o["kind"] != "Namespace"]
    debug = Request(("bookstore", "bookstore-v1"), "bookwarehouse", "bookwarehouse", "bookwarehouse",
                    (("app", "bookwarehouse"),), 9999, http=False)          # a port the Service does not declare
    assert linkerd_allows(policy, debug, trust_domain=TD, default_policy=CHART_DEFAULT)   # the hole
    assert not linkerd_allows(policy, debug, trust_domain=TD, default_policy=namespace_default(objs, "bookwarehouse"))
    restock = Request(("bookstore", "bookstore-v1"), "bookwarehouse", "bookwarehouse", "bookwarehouse",
                      (("app", "bookwarehouse"),), 14001, http=True, method="POST", path="/restock")
    assert linkerd_allows(policy, restock, trust_domain=TD, default_policy=namespace_default(objs, "bookwarehouse"))
    # written where translate writes: one file per object, kubectl-appliable
    written = write_tree(translate(loaded, "linkerd"), tmp_path / "out")
    assert tmp_path / "out" / "c1" / "_cluster--namespace--bookwarehouse.yaml" in written


def test_w1_translate_refuses_what_the_namespace_deny_would_close_as_render_does(tmp_path):
    """The annotation is per namespace: a service without access rules beside a policed one would be
    closed (linkerd2 edge-26.8.3 policy-controller/k8s/index/src/defaults.rs:83-104, ``deny`` has no
    authorization). render refuses it through ``deployment_problems``; translate now does too."""
    services = WAREHOUSE + [svc("mysql", "bookwarehouse", (3306, "tcp"))]   # osm demo/deploy-mysql.sh
    loaded = mesh(tmp_path, OSM_DEMO_WAREHOUSE, services)
    found = refused(lambda: translate(loaded, "linkerd"))
    assert list(found) == ["mesh.services[2]"] and "bookwarehouse/mysql has no access rule" in found["mesh.services[2]"]
    assert refused(lambda: render_mesh(as_linkerd(loaded))) == found
    # Istio and OSM have no such namespace default: nothing to refuse
    assert objects(loaded, "istio") and objects(loaded, "osm")


# --- W2: a TCPRoute without ports is every port of the Service, not of the pod --------------------------

# traefik/mesh 2e3182bdcd91 docs/content/examples.md § ACL Example
TRAEFIK_ACL = """
apiVersion: specs.smi-spec.io/v1alpha3
kind: HTTPRouteGroup
metadata:
  name: http-everything
  namespace: whoami
spec:
  matches:
  - name: everything
    pathRegex: .*
    methods:
    - '*'
---
apiVersion: access.smi-spec.io/v1alpha2
kind: TrafficTarget
metadata:
  name: whatever
  namespace: whoami
spec:
  destination:
    kind: ServiceAccount
    name: whoami-server
    namespace: whoami
    port: 80
  rules:
  - kind: HTTPRouteGroup
    name: http-everything
    matches:
    - everything
  sources:
  - kind: ServiceAccount
    name: whoami-client
    namespace: whoami
---
apiVersion: specs.smi-spec.io/v1alpha3
kind: TCPRoute
metadata:
  name: my-tcp-route
  namespace: whoami
spec: {}
---
apiVersion: access.smi-spec.io/v1alpha2
kind: TrafficTarget
metadata:
  name: api-service-target
  namespace: whoami
spec:
  destination:
    kind: ServiceAccount
    name: whoami-server
    namespace: whoami
  rules:
  - kind: TCPRoute
    name: my-tcp-route
  sources:
  - kind: ServiceAccount
    name: whoami-client
    namespace: whoami
"""
WHOAMI = [svc("whoami-server", "whoami", (80, "http", 8080), (9000, "tcp")), svc("whoami-client", "whoami", (80, "http"))]
CLIENT = ("whoami", "whoami-client")
# W2 is about api-service-target (a TCPRoute without ports). The example's other target names
# destination.port 80, which on WHOAMI's 80 -> 8080 port is ambiguous (Service port or pod port?) and
# refused (test_a_port_whose_target_port_differs_is_refused_not_guessed); these tests drop that line.
TRAEFIK_ACL_NO_PORT = TRAEFIK_ACL.replace("    namespace: whoami\n    port: 80\n", "    namespace: whoami\n")
assert TRAEFIK_ACL_NO_PORT != TRAEFIK_ACL


def test_a_port_whose_target_port_differs_is_refused_not_guessed(tmp_path):
    """SMI does not say whether ``destination.port`` / TCPRoute ports name the Service's port or the
    pod's; OSM v1.2.4, which serves SMI natively, compares them with the destination port at the pod
    (pkg/envoy/lds/rbac.go, on the inbound filter chain of the targetPort, pkg/envoy/lds/inmesh.go).
    Port 80 -> targetPort 8080 reads as pod port 8080 one way and as a port the pod does not serve the
    other: refused on every mesh, naming the document; with port == targetPort both readings agree."""
    for backend in ("istio", "linkerd", "osm"):
        found = refused(lambda: objects(mesh(tmp_path, TRAEFIK_ACL, WHOAMI, backend=backend), backend))
        (where, message), = found.items()
        assert "TrafficTarget/whoami/whatever" in where and "80 -> targetPort 8080" in message, found
    same = [svc("whoami-server", "whoami", (80, "http"), (9000, "tcp")), svc("whoami-client", "whoami", (80, "http"))]
    objs = objects(mesh(tmp_path, TRAEFIK_ACL, same), "istio")
    ap = next(o for o in objs if o["metadata"]["name"] == "whatever-whoami-server")
    assert ap["spec"]["rules"][0]["to"][0]["operation"]["ports"] == ["80"]


def whoami(port: int, *, http: bool, service_port: int | None = None) -> Request:
    return Request(CLIENT, "whoami", "whoami-server", "whoami-server", (("app", "whoami-server"),), port, http,
                   "GET" if http else None, "/" if http else None, service_port=service_port)


def test_w2_istio_sidecar_tcp_route_without_ports_admits_the_service_target_ports_only(tmp_path):
    """"When matching ports are not specified, the TCP route will match all the ports of a Kubernetes
    service" (smi-spec cc4babdc4457 apis/traffic-specs/v1alpha4/traffic-specs.md:153-154). An Istio
    rule without ``ports`` admits every port of the pod (istio 1.30.3 pilot/pkg/security/authz/model/
    generator.go:63 builds a destination_port permission only for listed ports): name the target ports."""
    objs = objects(mesh(tmp_path, TRAEFIK_ACL_NO_PORT, WHOAMI), "istio")
    ap = next(o for o in objs if o["metadata"]["name"] == "api-service-target-whoami-server")
    assert ap["spec"]["rules"] == [{"from": [{"source": {"principals": [f"{TD}/ns/whoami/sa/whoami-client"]}}],
                                    "to": [{"operation": {"ports": ["8080", "9000"]}}]}]
    assert istio_allows(objs, whoami(9000, http=False), trust_domain=TD)
    assert istio_allows(objs, whoami(8080, http=True), trust_domain=TD)
    assert not istio_allows(objs, whoami(9999, http=False), trust_domain=TD)   # not a port of the Service


def test_w2_istio_waypoint_rules_name_service_ports(tmp_path):
    """At a waypoint the destination port is the Service port: one chain per Service port, matched on
    the Service VIPs and port (istio 1.30.3 pilot/pkg/networking/core/listener_waypoint.go:448-470,
    ``TargetPort: uint32(port.Port)``; :593-606). A target port there admits nothing (80 -> 8080)."""
    objs = render_mesh(mesh(tmp_path, TRAEFIK_ACL_NO_PORT, WHOAMI, data_plane="ambient"))["c1"].objects
    by_name = {o["metadata"]["name"]: o for o in objs if o["kind"] == "AuthorizationPolicy"}
    assert by_name["api-service-target-whoami-server"]["spec"]["rules"][0]["to"] == [{"operation": {"ports": ["80", "9000"]}}]
    assert by_name["whatever-whoami-server"]["spec"]["rules"][0]["to"][0]["operation"]["ports"] == ["80"]
    waypoints = frozenset({"whoami"})
    assert istio_allows(objs, whoami(8080, http=True, service_port=80), trust_domain=TD,
                        ambient_waypoint_namespaces=waypoints)
    assert istio_allows(objs, whoami(9000, http=False, service_port=9000), trust_domain=TD,
                        ambient_waypoint_namespaces=waypoints)
    assert not istio_allows(objs, whoami(9999, http=False), trust_domain=TD, ambient_waypoint_namespaces=waypoints)


def test_w2_linkerd_and_osm_open_only_the_service_ports(tmp_path):
    """Linkerd: one Server per Service port; the rest falls to the namespace default, here declared
    ``deny`` (whoami-client has no rule of its own). OSM: the TCPRoute lists exactly the target ports
    (OSM v1.2.4 pkg/envoy/lds/rbac.go ``buildRBACPolicyFromTrafficTarget``: no ports = every port)."""
    loaded = mesh(tmp_path, TRAEFIK_ACL_NO_PORT, WHOAMI, backend="linkerd",
                  namespaces=[{"name": "whoami", "defaultInboundPolicy": "deny"}])
    objs = objects(loaded, "linkerd")
    assert {o["spec"]["port"] for o in objs if o["kind"] == "Server"} == {8080, 9000}
    default = namespace_default(objs, "whoami")
    assert default == "deny"
    policy = [o for o in objs if o["kind"] != "Namespace"]
    assert linkerd_allows(policy, whoami(9000, http=False), trust_domain=TD, default_policy=default)
    assert not linkerd_allows(policy, whoami(9999, http=False), trust_domain=TD, default_policy=default)
    osm = objects(mesh(tmp_path, TRAEFIK_ACL_NO_PORT, WHOAMI), "osm")
    assert osm_allows(osm, whoami(9000, http=False)) and not osm_allows(osm, whoami(9999, http=False))


# --- N1: Linkerd gRPC ports get HTTP routes that apply ----------------------------------------------------

# SMI describes gRPC with HTTPRouteGroups: "gRPC protobufs can similarly be used to automatically
# generate the list of routes" and "HTTPRouteGroup can be used in the interim" (smi-spec cc4babdc4457
# apis/traffic-specs/v1alpha4/traffic-specs.md:196-197, 208-209); a gRPC call is POST /package.Service/Method.
# The reviewer's corpus/adversarial/grpc-port.yaml:
GRPC = """
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: rpc, namespace: default}
spec:
  matches:
  - {name: get-book, pathRegex: "/bookstore.Books/GetBook", methods: [POST]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: a-rpc, namespace: default}
spec:
  destination: {kind: ServiceAccount, name: rpc, namespace: default}
  rules: [{kind: HTTPRouteGroup, name: rpc}]
  sources: [{kind: ServiceAccount, name: a, namespace: rpc-clients}]
"""


def test_n1_linkerd_grpc_port_is_an_http2_server_so_its_http_routes_apply(tmp_path):
    """A ``gRPC`` Server is sent only GRPCRoutes (linkerd2 edge-26.8.3 policy-controller/grpc/src/
    inbound.rs:209-213; k8s/index/src/inbound/index.rs:2020-2040 gives it a default route without
    the HTTPRoutes' authorizations): the HTTPRoute rendered for the match never applied and the
    legitimate call got 403. An ``HTTP/2`` Server is sent the HTTPRoutes (inbound.rs:203-208,
    index.rs:1997-2018) and the proxy speaks h2 to it as to gRPC (linkerd2-proxy release/v2.366.0
    linkerd/app/inbound/src/detect.rs:204)."""
    services = [svc("rpc", "default", (9090, "grpc")), svc("a", "rpc-clients", (80, "http"))]
    objs = objects(mesh(tmp_path, GRPC, services), "linkerd")
    server = next(o for o in objs if o["kind"] == "Server")
    assert server["spec"]["proxyProtocol"] == "HTTP/2"
    route = next(o for o in objs if o["kind"] == "HTTPRoute" and o["apiVersion"] == "policy.linkerd.io/v1beta3")
    assert route["spec"]["parentRefs"] == [{"group": "policy.linkerd.io", "kind": "Server",
                                            "name": server["metadata"]["name"]}]
    assert route["spec"]["rules"][0]["matches"] == [
        {"path": {"type": "RegularExpression", "value": "^(?:/bookstore.Books/GetBook)$"}, "method": "POST"}]
    policy = [o for o in objs if o["kind"] != "Namespace"]
    call = Request(("rpc-clients", "a"), "default", "rpc", "rpc", (("app", "rpc"),), 9090, True, "POST",
                   "/bookstore.Books/GetBook")
    assert linkerd_allows(policy, call, trust_domain=TD, default_policy=namespace_default(objs, "default"))
    other = Request(("rpc-clients", "a"), "default", "rpc", "rpc", (("app", "rpc"),), 9090, True, "POST",
                    "/bookstore.Books/DeleteBook")
    assert not linkerd_allows(policy, other, trust_domain=TD, default_policy=namespace_default(objs, "default"))


# --- R1: SMI v1alpha2 HTTPRouteGroup / TCPRoute in their canonical shape ----------------------------------

# servicemeshinterface/smi-spec cc4babdc4457 apis/traffic-specs/v1alpha2/traffic-specs.md § HTTPRouteGroup
# and § TCPRoute (apiVersion filled in from the page); the fields sit at the top level, as in
# smi-sdk-go v0.5.0 pkg/apis/specs/v1alpha2/http_route.go:13-23 and tcp_route.go:12 (no spec)
V1ALPHA2_ROUTES = """
kind: HTTPRouteGroup
metadata:
  name: the-routes
  namespace: default
matches:
- name: metrics
  pathRegex: /metrics
  methods:
  - GET
- name: health
  pathRegex: /ping
  methods:
  - '*'
apiVersion: specs.smi-spec.io/v1alpha2
---
kind: TCPRoute
metadata:
  name: tcp-route
  namespace: default
apiVersion: specs.smi-spec.io/v1alpha2
"""
# smi-spec cc4babdc4457 apis/traffic-access/v1alpha2/traffic-access.md § TrafficTarget (the source moved from
# namespace default to monitoring, so Linkerd's per-namespace deny leaves no rule-less service beside service-a)
V1ALPHA2_TARGET = """
---
kind: TrafficTarget
apiVersion: access.smi-spec.io/v1alpha2
metadata:
  name: path-specific
  namespace: default
spec:
  destination:
    kind: ServiceAccount
    name: service-a
    namespace: default
    port: 8080
  rules:
  - kind: HTTPRouteGroup
    name: the-routes
    matches:
    - metrics
  sources:
  - kind: ServiceAccount
    name: prometheus
    namespace: monitoring
"""


def test_r1_v1alpha2_routes_are_read_at_the_top_level():
    group, tcp = [smi.parse_document(d, f"f.yaml[{i}]") for i, d in enumerate(yaml.safe_load_all(V1ALPHA2_ROUTES))]
    assert group[1] == [] and [(m.name, m.methods, m.path_regex) for m in group[0].matches] == [
        ("metrics", ("GET",), "/metrics"), ("health", ("*",), "/ping")]
    assert tcp[1] == [] and tcp[0].ports == ()           # no body: every port of the Service
    # v1alpha3 and v1alpha4 TCPRoute: spec is omitempty (smi-sdk-go v0.5.0 specs/v1alpha3|4/tcp_route.go:20)
    bare = {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute", "metadata": {"name": "t"}}
    assert smi.parse_document(bare, "f.yaml[0]")[0].ports == ()
    # a later version's spec under v1alpha2 would be pruned by the API server: refused, saying why
    nested = {"apiVersion": "specs.smi-spec.io/v1alpha2", "kind": "HTTPRouteGroup", "metadata": {"name": "g"},
              "spec": {"matches": [{"name": "m"}]}}
    got, problems = smi.parse_document(nested, "f.yaml[0]")
    assert got is None and "top level" in dict(problems)["f.yaml#HTTPRouteGroup/default/g.spec"]


def test_r1_v1alpha2_routes_translate_for_every_mesh(tmp_path):
    services = [svc("service-a", "default", (8080, "http")), svc("prometheus", "monitoring", (9090, "http"))]
    loaded = mesh(tmp_path, V1ALPHA2_ROUTES + V1ALPHA2_TARGET, services)
    scrape = Request(("monitoring", "prometheus"), "default", "service-a", "service-a", (("app", "service-a"),),
                     8080, True, "GET", "/metrics")
    ping = Request(("monitoring", "prometheus"), "default", "service-a", "service-a", (("app", "service-a"),),
                   8080, True, "GET", "/ping")
    istio = objects(loaded, "istio")
    assert istio_allows(istio, scrape, trust_domain=TD) and not istio_allows(istio, ping, trust_domain=TD)
    osm = objects(loaded, "osm")
    assert osm_allows(osm, scrape) and not osm_allows(osm, ping)
    ld = objects(loaded, "linkerd")
    ld_default = namespace_default(ld, "default")
    assert linkerd_allows(ld, scrape, trust_domain=TD, default_policy=ld_default)
    assert not linkerd_allows(ld, ping, trust_domain=TD, default_policy=ld_default)


# --- R4: an empty pathRegex is no path constraint ------------------------------------------------------------

# smi-sdk-go v0.5.0 pkg/apis/specs/v1alpha4/http_route.go:40 ``PathRegex string `json:"pathRegex,omitempty"```;
# OSM v1.2.4 pkg/catalog/inbound_traffic_policies.go:250-253 turns "" into ".*". The reviewer's
# corpus/adversarial/empty-pathregex.yaml, a match of the SMI spec's shape with pathRegex "":
EMPTY_PATH = """
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: default}
spec:
  matches:
  - {name: reads, pathRegex: "", methods: [GET]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: a-api, namespace: default}
spec:
  destination: {kind: ServiceAccount, name: api, namespace: default}
  rules: [{kind: HTTPRouteGroup, name: routes}]
  sources: [{kind: ServiceAccount, name: a, namespace: clients}]
"""


def test_r4_empty_path_regex_is_every_path_on_every_mesh(tmp_path):
    services = [svc("api", "default", (8080, "http")), svc("a", "clients", (80, "http"))]
    loaded = mesh(tmp_path, EMPTY_PATH, services)

    def call(method: str, path: str) -> Request:
        return Request(("clients", "a"), "default", "api", "api", (("app", "api"),), 8080, True, method, path)

    istio = objects(loaded, "istio")
    op = next(o for o in istio if o["kind"] == "AuthorizationPolicy")["spec"]["rules"][0]["to"][0]["operation"]
    assert op == {"ports": ["8080"], "methods": ["GET"]}            # never paths: [""] (CheckEmptyValues)
    ld = objects(loaded, "linkerd")
    route = next(o for o in ld if o["kind"] == "HTTPRoute")
    assert route["spec"]["rules"][0]["matches"] == [{"method": "GET"}]    # never Exact ''
    osm = objects(loaded, "osm")
    group = next(o for o in osm if o["kind"] == "HTTPRouteGroup")
    assert "pathRegex" not in group["spec"]["matches"][0]
    ld_default = namespace_default(ld, "default")
    for path in ("/", "/any/thing"):
        assert istio_allows(istio, call("GET", path), trust_domain=TD)
        assert linkerd_allows(ld, call("GET", path), trust_domain=TD, default_policy=ld_default)
        assert osm_allows(osm, call("GET", path))
        assert not istio_allows(istio, call("POST", path), trust_domain=TD)
        assert not linkerd_allows(ld, call("POST", path), trust_domain=TD, default_policy=ld_default)
        assert not osm_allows(osm, call("POST", path))


# --- 6: a TrafficSplit's root is a Service of its own namespace ------------------------------------------------

# smi-spec cc4babdc4457 apis/traffic-split/v1alpha4/traffic-split.md § Canary example (namespace and
# apiVersion filled in), with spec.service written as an FQDN: "The spec.service name is the FQDN that
# applications will use to communicate" (:22-26); OSM v1.2.4 keeps only its first label and applies
# the split in its own namespace (pkg/k8s/util.go:42-63, pkg/smi/client.go:112-116).
CANARY = """
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata:
  name: canary
  namespace: default
spec:
  # The root service that clients use to connect to the destination application.
  service: {root}
  # Services inside the namespace with their own selectors, endpoints and configuration.
  backends:
  - service: website-v1
    weight: 90
  - service: website-v2
    weight: 10
"""
WEBSITE = [{**svc("website", "default", (80, "http")), "versions": [{"name": "v1"}, {"name": "v2"}]},
           svc("website", "other", (80, "http"))]


@pytest.mark.parametrize("to", ["istio", "linkerd", "osm"])
def test_6_a_split_naming_another_namespace_is_refused_naming_the_field(tmp_path, to):
    found = refused(lambda: objects(mesh(tmp_path, CANARY.format(root="website.other"), WEBSITE), to))
    (where, message), = found.items()
    assert where == "smi.yaml#TrafficSplit/default/canary.spec.service"
    assert "'website.other'" in message and "namespace 'default'" in message


@pytest.mark.parametrize("root", ["website", "website.default", "website.default.svc", "website.default.svc.cluster.local"])
def test_6_a_split_naming_its_own_namespace_splits_that_service(tmp_path, root):
    objs = objects(mesh(tmp_path, CANARY.format(root=root), WEBSITE), "osm")
    split = next(o for o in objs if o["kind"] == "TrafficSplit")
    assert split["metadata"]["namespace"] == "default" and split["spec"]["service"] == "website"


# --- 7: the no-allow-all guardrail and the explicit open service of an ambient waypoint ------------------------

_pack = importlib.util.spec_from_file_location("mesh_guardrails_review",
                                               ROOT / "policies" / "mesh-guardrails" / "mesh_guardrails.py")
guardrails = importlib.util.module_from_spec(_pack)
_pack.loader.exec_module(guardrails)
AP = "kubernetes:security.istio.io/v1:AuthorizationPolicy"


def _catalog_mesh(data_plane: str) -> dict:
    """The dev stack plus a declared service without access rules in the waypoint namespace bookstore."""
    m = stack_mesh("dev")
    m["backend"]["istio"]["dataPlane"] = data_plane
    m["services"].append({"name": "catalog", "namespace": "bookstore", "ports": [{"port": 8080}]})
    return m


def test_7_the_generated_open_service_passes_no_allow_all_and_any_other_allow_all_fails():
    """The waypoint denies by default (an ALLOW policy without rules on its Gateway: istio 1.30.3
    pilot/pkg/model/policyattachment.go:194-197, builder/builder.go:294-299), so a service the spec
    leaves unrestricted gets ``<svc>-unrestricted`` there; in sidecar mode it gets no policy at all."""
    ambient = render_mesh(load_mesh(_catalog_mesh("ambient"), base_dir=ROOT))["dev"].objects
    open_ = next(o for o in ambient if o["kind"] == "AuthorizationPolicy" and o["metadata"]["name"] == "catalog-unrestricted")
    assert guardrails.validate_no_allow_all(AP, open_) == []
    sidecar = render_mesh(load_mesh(_catalog_mesh("sidecar"), base_dir=ROOT))["dev"].objects
    assert not [o for o in sidecar if o["kind"] == "AuthorizationPolicy" and "catalog" in o["metadata"]["name"]]
    tampered = {
        "second rule": lambda o: o["spec"]["rules"].append({"from": [{"source": {"namespaces": ["x"]}}]}),
        "rule with to": lambda o: o["spec"]["rules"][0].update(to=[{"operation": {"ports": ["8080"]}}]),
        "no annotation": lambda o: o["metadata"].pop("annotations"),
        "selector": lambda o: o["spec"].update(selector={"matchLabels": {"app": "catalog"}}),
        "gateway target": lambda o: o["spec"]["targetRefs"].append(
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}),
        "other name": lambda o: o["metadata"].update(name="catalog-open"),
        "empty source": lambda o: o["spec"].update(rules=[{"from": [{"source": {}}]}]),
    }
    for why, tamper in tampered.items():
        bad = copy.deepcopy(open_)
        tamper(bad)
        assert guardrails.validate_no_allow_all(AP, bad), why
    # an ordinary allow-all carrying the annotation is still an allow-all
    annotated = copy.deepcopy(next(o for o in ambient if o["kind"] == "AuthorizationPolicy"
                                   and o["metadata"]["name"] == "bookbuyer-access-bookstore-bookstore"))
    annotated["metadata"].setdefault("annotations", {})["mesh-components.io/unrestricted"] = "x"
    annotated["spec"]["rules"] = [{"from": [{"source": {"principals": ["*"]}}]}]
    assert guardrails.validate_no_allow_all(AP, annotated)
