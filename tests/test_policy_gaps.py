"""The shapes the access tests never used before issue 18, judged on every mesh by the evaluators of
``policy_eval`` against the SMI reference: Service ports whose ``targetPort`` differs, services with
HTTP and TCP ports, several TCPRoutes in one TrafficTarget, ``destination.port`` on HTTP targets,
any-method matches with paths, and malformed fields in every SMI kind.

Each refusal is tested twice: that it happens, and what the objects would admit without it (built
by the lower-level code the refusal guards, or with the guard patched off), so that removing a
refusal fails a test. Upstream, as pinned: smi-spec main (apis/traffic-access/v1alpha2..v1alpha3,
traffic-specs/v1alpha4, traffic-split), smi-sdk-go v0.5.0, OSM v1.2.4, Istio 1.30.3, Linkerd
edge-26.8.3 (mesh_components/meshes/linkerd.py ``LINKERD_VERSION``).
"""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from mesh_components.core import gamma
from mesh_components.spec import smi
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.render import render_mesh, translate
from mesh_components.spec import LoadedMesh, load_mesh

from policy_eval import Request, istio_allows, linkerd_allows, osm_allows, smi_allows

TD = "cluster.local"
MESHES = ["istio", "ambient", "linkerd", "osm"]
SOURCES = [("front", "client"), ("front", "other"), ("ops", "intruder")]
PATHS = ["/a", "/a/1", "/b"]
METHODS = ["GET", "POST", "DELETE"]

# services: (namespace, name = service account, [(port, protocol, targetPort or None)])
WEB = ("shop", "web", [(80, "http", 8080)])                     # a Service port with another pod port
MIX = ("shop", "mix", [(8080, "http", None), (5432, "tcp", None)])   # HTTP and TCP ports
DB = ("shop", "db", [(5432, "tcp", None), (9000, "tcp", None), (7000, "tcp", None)])
API = ("shop", "api", [(8080, "http", None), (9090, "http", None)])
CALLERS = [("front", "client", [(80, "http", None)]), ("front", "other", [(80, "http", None)]),
           ("ops", "intruder", [(80, "http", None)])]


def mesh_of(services, docs: list[dict], tmp_path: Path, data_plane: str = "sidecar"):
    """A one-cluster mesh of ``services`` (and the calling services of :data:`CALLERS`, in their own
    namespaces' terms) whose SMI file holds ``docs``."""
    every = list(services) + CALLERS
    (tmp_path / "smi.yaml").write_text(yaml.safe_dump_all(docs) if docs else "")
    return load_mesh({
        "name": "gaps", "backend": {"type": "istio", "istio": {"dataPlane": data_plane}},
        "clusters": [{"name": "c1", "cloud": "onprem", "region": "lab"}],
        "namespaces": [{"name": n} for n in sorted({ns for ns, _, _ in every})],
        "services": [{"name": n, "namespace": ns, "ports": [
            {"port": p, "name": f"{pr}-{p}", "protocol": pr, **({"targetPort": t} if t else {})}
            for p, pr, t in ports]} for ns, n, ports in every],
        "smiFiles": ["smi.yaml"] if docs else [],
    }, base_dir=tmp_path)


def objects_for(loaded, mesh: str) -> list[dict]:
    if mesh == "ambient":
        spec = loaded.spec.model_copy(update={"backend": loaded.spec.backend.model_copy(update={
            "istio": loaded.spec.backend.istio.model_copy(update={"data_plane": "ambient"})})})
        return render_mesh(LoadedMesh(spec, loaded.smi_documents))["c1"].objects
    return translate(loaded, mesh)["c1"].objects


def namespace_default(objects, namespace: str) -> str:
    """Linkerd's default inbound policy for ``namespace``: the Namespace patch's annotation, else the
    chart default ``all-unauthenticated`` (linkerd2 edge-26.8.3 charts/linkerd-control-plane/values.yaml)."""
    ns = next((o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == namespace), None)
    return ((ns or {}).get("metadata", {}).get("annotations") or {}).get(
        "config.linkerd.io/default-inbound-policy", "all-unauthenticated")


def evaluator(objects, mesh: str):
    if mesh in ("istio", "ambient"):
        waypoints = frozenset(o["metadata"]["namespace"] for o in objects
                              if o["kind"] == "Gateway" and o["metadata"]["name"] == "waypoint")
        return lambda r: istio_allows(objects, r, trust_domain=TD, ambient_waypoint_namespaces=waypoints)
    if mesh == "linkerd":
        return lambda r: linkerd_allows(objects, r, trust_domain=TD,
                                        default_policy=namespace_default(objects, r.namespace))
    return lambda r: osm_allows(objects, r)


def grid(services) -> list[Request]:
    """Every caller against every port of ``services``: HTTP requests (methods x paths) to HTTP
    ports, opaque connections to TCP ports; ``port`` is the pod's port (the targetPort),
    ``service_port`` the Service's (what an Istio waypoint compares, istio 1.30.3
    pilot/pkg/networking/core/listener_waypoint.go:448-470)."""
    out = []
    for (ns, name, ports), src in itertools.product(services, SOURCES):
        for port, proto, target in ports:
            base = Request(src, ns, name, name, (("app", name),), target or port, http=False, service_port=port)
            if proto == "tcp":
                out.append(base)
            else:
                out += [Request(src, ns, name, name, (("app", name),), target or port, http=True, method=m, path=p,
                                service_port=port) for m, p in itertools.product(METHODS, PATHS)]
    return out


def assert_exact(docs, services, tmp_path, mesh, *, reference=None):
    """The objects ``mesh`` gets for ``docs`` admit exactly what SMI admits (OSM denies every
    destination without a TrafficTarget: permissive mode off, release-v1-2 docs "traffic_management")."""
    objects = objects_for(mesh_of(services, docs, tmp_path), mesh)
    allows = evaluator(objects, mesh)
    policed = {(t["spec"]["destination"]["namespace"], t["spec"]["destination"]["name"])
               for t in docs if t["kind"] == "TrafficTarget"}
    for req in grid(services):
        expected = (reference or smi_allows)(docs, req)
        if mesh == "osm" and (req.namespace, req.service_account) not in policed:
            expected = False
        assert allows(req) == expected, (mesh, req, expected)
    return objects


# --- SMI documents ---------------------------------------------------------------------------------

def target(name, dest, rules, sources=(("front", "client"),), version="v1alpha3", port=None):
    destination = {"kind": "ServiceAccount", "name": dest, "namespace": "shop"}
    if port is not None:
        destination["port"] = port
    return {"apiVersion": f"access.smi-spec.io/{version}", "kind": "TrafficTarget",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"destination": destination, "rules": rules,
                     "sources": [{"kind": "ServiceAccount", "name": s, "namespace": n} for n, s in sources]}}


def group(name, matches):
    return {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": {"name": name, "namespace": "shop"}, "spec": {"matches": matches}}


def tcp_route(name, ports):
    return {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
            "metadata": {"name": name, "namespace": "shop"}, "spec": {"matches": {"ports": ports}}}


def http_rule(name):
    return {"kind": "HTTPRouteGroup", "name": name}


def tcp_rule(name):
    return {"kind": "TCPRoute", "name": name}


GET_A = [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]


# --- 1. a Service port whose targetPort differs -------------------------------------------------------

@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("shape", ["http", "tcp-every-port", "http-and-tcp-every-port"])
def test_target_port_differing_from_the_port_polices_the_pod_port(mesh, shape, tmp_path):
    """Shapes that name no port number are exact whatever the targetPort: the policy lands on the pod
    port 8080 behind Service port 80. Linkerd's ``Server.spec.port`` is a pod port ("A port name or
    number. Only ports in a pod spec's ports are considered", https://linkerd.io/2/reference/authorization-policy/#server),
    an Istio sidecar's ``ports`` is the pod port and a waypoint's the Service port
    (istio_policy.policy_ports), OSM's TCPRoute ports are compared with the pod port
    (osm v1.2.4 pkg/envoy/lds/rbac.go)."""
    docs = {"http": [group("g", GET_A), target("t", "web", [http_rule("g")])],
            "tcp-every-port": [tcp_route("r", []), target("t", "web", [tcp_rule("r")])],
            "http-and-tcp-every-port": [group("g", GET_A), tcp_route("r", []),
                                        target("t", "web", [http_rule("g"), tcp_rule("r")])]}[shape]
    objects = assert_exact(docs, [WEB], tmp_path, mesh)
    if mesh == "linkerd":
        assert {o["spec"]["port"] for o in objects if o["kind"] == "Server"} == {8080}
    if mesh == "osm":
        assert [o["spec"]["matches"]["ports"] for o in objects if o["kind"] == "TCPRoute"] == [[8080]]


@pytest.mark.parametrize("docs", [
    [tcp_route("r", [80]), target("t", "web", [tcp_rule("r")])],
    [group("g", GET_A), tcp_route("r", [80]), target("t", "web", [http_rule("g"), tcp_rule("r")])],
    [group("g", GET_A), target("t", "web", [http_rule("g")], version="v1alpha2", port=80)],
], ids=["tcproute-port", "tcproute-port-scoping-http", "destination-port"])
@pytest.mark.parametrize("mesh", MESHES)
def test_a_port_number_whose_target_port_differs_is_refused_and_would_widen(docs, mesh, tmp_path, monkeypatch):
    """SMI does not say whether TCPRoute ports and ``destination.port`` name the Service's port or the
    pod's; OSM, which reads SMI natively, compares them with the pod port (v1.2.4 pkg/envoy/lds/rbac.go,
    the RBAC of the per-targetPort filter chain of pkg/envoy/lds/inmesh.go). So "port 80" of a Service
    80 -> 8080 is refused (gamma.ambiguous_port_references). Without the refusal the objects open pod
    port 8080, which OSM's reading of the same documents (port 80 at the pod) does not."""
    with pytest.raises(SpecError, match="targetPort"):
        objects_for(mesh_of([WEB], docs, tmp_path), mesh)
    monkeypatch.setattr(gamma, "ambiguous_port_references", lambda w, named: [])
    allows = evaluator(objects_for(mesh_of([WEB], docs, tmp_path), mesh), mesh)
    call = Request(("front", "client"), "shop", "web", "web", (("app", "web"),), 8080, http=True, method="GET",
                   path="/a/1", service_port=80)
    assert not smi_allows(docs, call)    # the pod-port reading: port 80 is not the pod's 8080
    assert allows(call)                  # wider than that reading


def test_a_number_that_is_only_a_target_port_is_refused(tmp_path):
    """TCPRoute port 8080 of a Service 80 -> 8080: a pod port under OSM's reading, no Service port
    under the other; refused on every mesh, naming the ambiguity."""
    docs = [tcp_route("r", [8080]), target("t", "web", [tcp_rule("r")])]
    for mesh in MESHES:
        with pytest.raises(SpecError, match="only a targetPort"):
            objects_for(mesh_of([WEB], docs, tmp_path), mesh)


# --- 2. services with HTTP and TCP ports ------------------------------------------------------------

MIXED_SHAPES = {
    "http-only": [group("g", GET_A), target("t", "mix", [http_rule("g")])],
    "tcp-port-only": [tcp_route("r", [5432]), target("t", "mix", [tcp_rule("r")])],
    "tcp-http-port": [tcp_route("r", [8080]), target("t", "mix", [tcp_rule("r")])],
    "tcp-every-port": [tcp_route("r", []), target("t", "mix", [tcp_rule("r")])],
    "http-scoped-to-http-port": [group("g", GET_A), tcp_route("r", [8080]),
                                 target("t", "mix", [http_rule("g"), tcp_rule("r")])],
    "http-and-tcp-by-two-targets": [group("g", GET_A), tcp_route("r", [5432]),
                                    target("t1", "mix", [http_rule("g")]),
                                    target("t2", "mix", [tcp_rule("r")], sources=[("front", "other")])],
    "same-source-http-and-tcp": [group("g", GET_A), tcp_route("r", [5432]),
                                 target("t1", "mix", [http_rule("g")]), target("t2", "mix", [tcp_rule("r")])],
}


@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("shape", sorted(MIXED_SHAPES))
def test_service_with_http_and_tcp_ports_is_exact(mesh, shape, tmp_path):
    """An HTTPRouteGroup admits HTTP requests on the HTTP ports only, a TCPRoute the ports it lists
    ("When matching ports are not specified, the TCP route will match all the ports of a Kubernetes
    service", smi-spec apis/traffic-specs/v1alpha4/traffic-specs.md:153-154); a TCPRoute beside
    HTTP matches scopes them (traffic-access v1alpha3 "Example implementation for L7")."""
    assert_exact(MIXED_SHAPES[shape], [MIX], tmp_path, mesh)


@pytest.mark.parametrize("ports", [[5432], []], ids=["tcp-port", "every-port"])
@pytest.mark.parametrize("mesh", MESHES)
def test_http_matches_scoped_by_a_tcproute_with_a_tcp_port_are_refused(ports, mesh, tmp_path):
    """HTTP matches with a TCPRoute that covers a TCP port: SMI does not say whether that port opens
    at L4 (OSM v1.2.4 does, pkg/envoy/lds/inmesh.go) or carries only the matches, which an opaque
    connection never satisfies (gamma._scoped_http_ports); the reference evaluator says the same."""
    docs = [group("g", GET_A), tcp_route("r", ports), target("t", "mix", [http_rule("g"), tcp_rule("r")])]
    with pytest.raises(SpecError, match="non-HTTP port"):
        objects_for(mesh_of([MIX], docs, tmp_path), mesh)
    opaque = Request(("front", "client"), "shop", "mix", "mix", (("app", "mix"),), 5432, http=False)
    with pytest.raises(ValueError, match="does not say"):
        smi_allows(docs, opaque)
    # OSM itself, reading these documents natively, opens the port at L4 ...
    assert osm_allows(docs, opaque)
    # ... while the matches alone, which the guard would otherwise render there, never admit it
    assert not smi_allows([group("g", GET_A), target("t", "mix", [http_rule("g")])], opaque)


# --- 3. several TCPRoutes in one TrafficTarget ----------------------------------------------------------

@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("routes", [[[5432], [9000]], [[5432], []], [[5432], [5432, 9000]]],
                         ids=["two-lists", "a-list-and-every-port", "overlapping-lists"])
def test_several_tcproutes_in_one_target_admit_their_union(mesh, routes, tmp_path):
    """A TrafficTarget's rules are alternatives: its TCPRoutes admit the union of their ports, and one
    without ports every port of the Service (traffic-specs v1alpha4:153-154; OSM v1.2.4
    pkg/envoy/lds/rbac.go ``buildRBACPolicyFromTrafficTarget`` collects every TCPRoute's ports)."""
    docs = [tcp_route(f"r{i}", p) for i, p in enumerate(routes)]
    docs.append(target("t", "db", [tcp_rule(f"r{i}") for i in range(len(routes))]))
    assert_exact(docs, [DB], tmp_path, mesh)


# --- 4. destination.port on HTTP targets ---------------------------------------------------------------

@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("shape", ["http", "http-scoped", "tcp-every-port", "tcp-listing-it", "tcp-listing-other"])
def test_destination_port_limits_an_http_target_to_that_port(mesh, shape, tmp_path):
    """``destination.port`` (access.smi-spec.io v1alpha1/v1alpha2 only: smi-sdk-go v0.5.0
    pkg/apis/access/v1alpha2/traffic_target.go ``IdentityBindingSubject.Port``) limits the target to
    that port: "port: the port the traffic target applies to" (smi-spec apis/traffic-access/v1alpha2/
    traffic-access.md). On a service with two HTTP ports the other port stays closed."""
    rules = {"http": [http_rule("g")], "http-scoped": [http_rule("g"), tcp_rule("r0")],
             "tcp-every-port": [tcp_rule("r0")], "tcp-listing-it": [tcp_rule("r1")],
             "tcp-listing-other": [tcp_rule("r2"), tcp_rule("r1")]}[shape]
    docs = [group("g", GET_A), tcp_route("r0", []), tcp_route("r1", [8080]), tcp_route("r2", [9090]),
            target("t", "api", rules, version="v1alpha2", port=8080)]
    assert_exact(docs, [API], tmp_path, mesh)


@pytest.mark.parametrize("mesh", MESHES)
def test_a_destination_port_no_service_exposes_is_refused_not_unpoliced(mesh, tmp_path):
    """A TrafficTarget whose ``destination.port`` no service of the account exposes yields no
    authorization; without the refusal the destination would have no policy at all, which every
    mesh reads as unrestricted (SMI: only a destination some TrafficTarget names is default-deny)."""
    docs = [group("g", GET_A), target("t", "api", [http_rule("g")], version="v1alpha2", port=7777)]
    with pytest.raises(SpecError, match="exposes destination port 7777"):
        objects_for(mesh_of([API], docs, tmp_path), mesh)
    intruder = Request(("ops", "intruder"), "shop", "api", "api", (("app", "api"),), 8080, http=True,
                       method="GET", path="/a/1", service_port=8080)
    assert not smi_allows(docs, intruder)
    # what the renderers would get without it: the model without that TrafficTarget's authorization
    loaded = mesh_of([API], [], tmp_path)
    if mesh == "osm":
        return  # OSM denies destinations without TrafficTargets anyway (permissive mode off)
    assert evaluator(objects_for(loaded, mesh), mesh)(intruder)


# --- 5. any-method matches with paths ------------------------------------------------------------

@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("methods", [["*"], [], None, ["GET", "*"]], ids=["star", "empty", "absent", "get-and-star"])
def test_an_any_method_match_with_a_path_keeps_the_path(mesh, methods, tmp_path):
    """``methods: ["*"]`` (or none) admits every method on the match's path only: "A wildcard
    ``*`` matches any method" (smi-spec traffic-specs v1alpha4, HTTPRouteGroup). It must never become
    a match-all route: Linkerd's route keeps its path (linkerd.io/2/reference/httproute), Istio's
    operation its ``paths``, OSM's match its ``pathRegex``."""
    match = {"name": "any", "pathRegex": "/a/.*"}
    if methods is not None:
        match["methods"] = methods
    docs = [group("g", [match]), target("t", "api", [http_rule("g")])]
    objects = assert_exact(docs, [API], tmp_path, mesh)
    other = Request(("front", "client"), "shop", "api", "api", (("app", "api"),), 8080, http=True, method="GET",
                    path="/b", service_port=8080)
    assert not evaluator(objects, mesh)(other)


# --- 6. malformed fields in every SMI kind --------------------------------------------------------

def _tt(**spec):
    doc = target("t", "api", [http_rule("g")])
    doc["spec"].update(spec)
    return doc


def _without(doc, *keys):
    for k in keys:
        doc["spec"].pop(k)
    return doc


def _dest(**fields):
    return {"kind": "ServiceAccount", "name": "api", "namespace": "shop", **fields}


def _g(*matches):
    return group("g", list(matches))


def _split(version="v1alpha4", **spec):
    return {"apiVersion": f"split.smi-spec.io/{version}", "kind": "TrafficSplit",
            "metadata": {"name": "s", "namespace": "shop"},
            "spec": {"service": "api", "backends": [{"service": "api", "weight": 1}], **spec}}


MALFORMED = {
    # TrafficTarget
    "tt-no-spec": ({**target("t", "api", [http_rule("g")]), "spec": None}, "spec"),
    "tt-spec-list": ({**target("t", "api", [http_rule("g")]), "spec": ["x"]}, "spec"),
    "tt-no-destination": (_without(target("t", "api", [http_rule("g")]), "destination"), "spec.destination"),
    "tt-destination-string": (_tt(destination="api"), "spec.destination"),
    "tt-destination-kind": (_tt(destination=_dest(kind="Pod")), "spec.destination.kind"),
    "tt-destination-name-number": (_tt(destination=_dest(name=5)), "spec.destination.name"),
    "tt-destination-name-missing": (_tt(destination={"kind": "ServiceAccount", "namespace": "shop"}),
                                    "spec.destination.name"),
    "tt-destination-namespace": (_tt(destination=_dest(namespace="Not_A_Label")), "spec.destination.namespace"),
    "tt-v1alpha3-destination-port": (_tt(destination=_dest(port=8080)), "spec.destination.port"),
    "tt-no-sources": (_without(target("t", "api", [http_rule("g")]), "sources"), "spec.sources"),
    "tt-sources-mapping": (_tt(sources={"kind": "ServiceAccount", "name": "client"}), "spec.sources"),
    "tt-source-string": (_tt(sources=["client"]), "spec.sources[0]"),
    "tt-source-kind": (_tt(sources=[{"kind": "Group", "name": "client", "namespace": "shop"}]), "spec.sources[0].kind"),
    "tt-source-name": (_tt(sources=[{"kind": "ServiceAccount", "namespace": "shop"}]), "spec.sources[0].name"),
    "tt-no-rules": (_without(target("t", "api", [http_rule("g")]), "rules"), "spec.rules"),
    "tt-rules-mapping": (_tt(rules={"kind": "HTTPRouteGroup", "name": "g"}), "spec.rules"),
    "tt-rule-kind": (_tt(rules=[{"kind": "HTTPRoute", "name": "g"}]), "spec.rules[0]"),
    "tt-rule-name": (_tt(rules=[{"kind": "HTTPRouteGroup", "name": 7}]), "spec.rules[0]"),
    "tt-rule-matches-string": (_tt(rules=[{"kind": "HTTPRouteGroup", "name": "g", "matches": "get-a"}]),
                               "spec.rules[0].matches"),
    "tt-rule-matches-numbers": (_tt(rules=[{"kind": "HTTPRouteGroup", "name": "g", "matches": [1]}]),
                                "spec.rules[0].matches"),
    # HTTPRouteGroup
    "g-no-matches": ({**group("g", []), "spec": {}}, "spec.matches"),
    "g-matches-mapping": ({**group("g", []), "spec": {"matches": {"name": "x"}}}, "spec.matches"),
    "g-match-string": (_g("get-a"), "spec.matches[0]"),
    "g-match-no-name": (_g({"methods": ["GET"]}), "spec.matches[0]"),
    "g-methods-string": (_g({"name": "m", "methods": "GET"}), "spec.matches[0].methods"),
    "g-method-lower": (_g({"name": "m", "methods": ["get"]}), "spec.matches[0].methods"),
    "g-method-unknown": (_g({"name": "m", "methods": ["FETCH"]}), "spec.matches[0].methods"),
    "g-path-number": (_g({"name": "m", "pathRegex": 5}), "spec.matches[0].pathRegex"),
    "g-headers-string": (_g({"name": "m", "headers": "x-env"}), "spec.matches[0].headers"),
    "g-header-number": (_g({"name": "m", "headers": [{"x-env": 1}]}), "spec.matches[0].headers"),
    "g-header-list-item": (_g({"name": "m", "headers": ["x-env"]}), "spec.matches[0].headers"),
    # TCPRoute
    "r-matches-list": ({**tcp_route("r", []), "spec": {"matches": [8080]}}, "spec.matches"),
    "r-ports-number": ({**tcp_route("r", []), "spec": {"matches": {"ports": 8080}}}, "spec.matches.ports"),
    "r-port-zero": (tcp_route("r", [0]), "spec.matches.ports[0]"),
    "r-port-high": (tcp_route("r", [65536]), "spec.matches.ports[0]"),
    "r-port-string": (tcp_route("r", ["8080"]), "spec.matches.ports[0]"),
    "r-port-bool": (tcp_route("r", [True]), "spec.matches.ports[0]"),
    "r-port-fraction": (tcp_route("r", [8080.5]), "spec.matches.ports[0]"),
    "r-v1alpha3-ports": ({**tcp_route("r", [8080]), "apiVersion": "specs.smi-spec.io/v1alpha3"}, "spec.matches"),
    # TrafficSplit
    "s-no-service": (_split(service=None), "spec.service"),
    "s-service-number": (_split(service=5), "spec.service"),
    "s-service-other-namespace": (_split(service="api.other"), "spec.service"),
    "s-no-backends": (_split(backends=None), "spec.backends"),
    "s-backends-mapping": (_split(backends={"service": "api", "weight": 1}), "spec.backends"),
    "s-backend-string": (_split(backends=["api"]), "spec.backends[0]"),
    "s-backend-no-service": (_split(backends=[{"weight": 1}]), "spec.backends[0]"),
    "s-weight-negative": (_split(backends=[{"service": "api", "weight": -1}]), "spec.backends[0].weight"),
    "s-weight-string": (_split(backends=[{"service": "api", "weight": "50"}]), "spec.backends[0].weight"),
    "s-weight-bool": (_split(backends=[{"service": "api", "weight": True}]), "spec.backends[0].weight"),
    "s-weight-fraction": (_split(backends=[{"service": "api", "weight": 1.5}]), "spec.backends[0].weight"),
    "s-weights-zero": (_split(backends=[{"service": "api", "weight": 0}]), "spec.backends"),
    "s-v1alpha1-weight": (_split("v1alpha1", backends=[{"service": "api", "weight": "lots"}]),
                          "spec.backends[0].weight"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("mesh", ["istio", "linkerd", "osm"])
def test_a_malformed_smi_field_is_refused_naming_it(case, mesh, tmp_path):
    """Every malformed field of TrafficTarget, HTTPRouteGroup, TCPRoute and TrafficSplit (shapes of
    smi-sdk-go v0.5.0 pkg/apis/{access,specs,split}) is a ``path: message`` refusal naming the field,
    never a document silently dropped or read in part, which would leave its destination unpoliced
    or wider (see the tests below)."""
    bad, field = MALFORMED[case]
    good = {"TrafficTarget": [group("g", GET_A)], "HTTPRouteGroup": [target("t", "api", [http_rule("g")])],
            "TCPRoute": [target("t", "api", [tcp_rule("r")])], "TrafficSplit": []}[bad["kind"]]
    with pytest.raises(SpecError) as e:
        objects_for(mesh_of([API], good + [bad], tmp_path), mesh)
    assert any(f"#{bad['kind']}/shop/" in p and p.endswith(field) or f".{field}" in p for p, _ in e.value.problems), \
        e.value.problems


def _parsed(doc) -> object:
    """What ``smi.parse_document`` would hand on for ``doc`` if its problems were ignored: the model
    the kind's own parser builds (the lower-level code a refusal guards)."""
    kind, version = doc["kind"], doc["apiVersion"].rsplit("/", 1)[1]
    parser = {"TrafficTarget": smi._target, "TCPRoute": smi._tcp_route, "HTTPRouteGroup": smi._route_group}[kind]
    model, problems = parser(smi._body(doc, kind, version), doc["metadata"]["name"], "shop",
                             f"smi.yaml#{kind}/shop/{doc['metadata']['name']}", version)
    assert problems
    return model


@pytest.mark.parametrize("mesh", MESHES)
def test_a_pruned_destination_port_would_open_every_port(mesh, tmp_path):
    """``destination.port`` on access.smi-spec.io/v1alpha3 is pruned by the API server (no such field:
    smi-sdk-go v0.5.0 pkg/apis/access/v1alpha3/traffic_target.go), so it is refused. Read without
    the refusal, the target would cover port 9090 as well as the 8080 it names."""
    bad = _tt(destination=_dest(port=8080))
    loaded = mesh_of([API], [group("g", GET_A)], tmp_path)
    wide = LoadedMesh(loaded.spec, loaded.smi_documents + (_parsed(bad),))
    on_9090 = Request(("front", "client"), "shop", "api", "api", (("app", "api"),), 9090, http=True, method="GET",
                      path="/a/1", service_port=9090)
    assert evaluator(objects_for(wide, mesh), mesh)(on_9090)
    narrow = [group("g", GET_A), target("t", "api", [http_rule("g")], version="v1alpha2", port=8080)]
    assert not smi_allows(narrow, on_9090)


@pytest.mark.parametrize("mesh", MESHES)
def test_pruned_tcproute_ports_would_open_every_port(mesh, tmp_path):
    """``matches.ports`` on specs.smi-spec.io TCPRoute v1alpha1-v1alpha3 does not exist (smi-sdk-go
    v0.5.0 pkg/apis/specs/v1alpha3/tcp_route.go: an empty spec) and is refused: read without the
    refusal, the route would be one of every port, 7000 and 9000 beside the 5432 it lists."""
    bad = {**tcp_route("r", [5432]), "apiVersion": "specs.smi-spec.io/v1alpha3"}
    base = mesh_of([DB], [], tmp_path)
    tt = smi.parse_document(target("t", "db", [tcp_rule("r")]), "smi.yaml[0]")[0]
    wide = LoadedMesh(base.spec, (tt, _parsed(bad)))
    opaque = Request(("front", "client"), "shop", "db", "db", (("app", "db"),), 7000, http=False, service_port=7000)
    assert evaluator(objects_for(wide, mesh), mesh)(opaque)
    assert not smi_allows([tcp_route("r", [5432]), target("t", "db", [tcp_rule("r")])], opaque)


@pytest.mark.parametrize("mesh", MESHES)
def test_a_dropped_malformed_target_would_leave_its_destination_unpoliced(mesh, tmp_path):
    """A TrafficTarget whose destination is malformed makes no model (``smi._target`` returns None);
    were that not a refusal, the destination would have no TrafficTarget and so no policy, and every
    mesh but OSM (default deny, permissive mode off) would admit any caller."""
    bad = _tt(destination=_dest(kind="Pod"))
    assert _parsed(bad) is None
    intruder = Request(("ops", "intruder"), "shop", "api", "api", (("app", "api"),), 8080, http=True,
                       method="GET", path="/a/1", service_port=8080)
    dropped = evaluator(objects_for(mesh_of([API], [group("g", GET_A)], tmp_path), mesh), mesh)(intruder)
    assert dropped == (mesh != "osm")


# --- 7. refusals inside the renderers, and what they prevent -------------------------------------------

@pytest.mark.parametrize("mesh", MESHES)
def test_tcp_ports_the_service_does_not_expose_are_refused_not_every_port(mesh, tmp_path, monkeypatch):
    """A TCPRoute listing only ports the destination does not expose admits nothing there; gamma
    refuses it, because the authorization it would otherwise build has ``tcp_ports == ()``, which
    means "every port" (a TCPRoute without ports, traffic-specs v1alpha4:153-154)."""
    docs = [tcp_route("r", [6000]), target("t", "db", [tcp_rule("r")])]
    with pytest.raises(SpecError, match="not exposed"):
        objects_for(mesh_of([DB], docs, tmp_path), mesh)
    built = []
    original = gamma.Authorization

    def record(*args):
        built.append(original(*args))
        return built[-1]

    monkeypatch.setattr(gamma, "Authorization", record)
    with pytest.raises(SpecError):
        objects_for(mesh_of([DB], docs, tmp_path), mesh)
    assert built == []   # refused before an Authorization is made ...
    w = gamma.workloads(mesh_of([DB], [], tmp_path).spec)[("shop", "db")]
    # ... whose tcp_ports the same expression would have computed as () = every port
    tcp, service_ports = (6000,), {p for p, *_ in w.ports}
    assert (tuple(p for p in tcp if p in service_ports) if tcp else ()) == ()


@pytest.mark.parametrize("mesh", ["istio", "ambient", "linkerd"])
def test_a_target_without_sources_admits_nobody(mesh, tmp_path):
    """``sources: []`` admits nobody in SMI (default deny, nothing listed); OSM reads a TrafficTarget
    without sources as any source (v1.2.4 pkg/envoy/lds/rbac.go: no principals -> any), Istio an empty
    ``principals`` list as any caller, so neither is rendered (osm_policy._target_objects,
    istio_policy._rules)."""
    docs = [group("g", GET_A), target("t", "api", [http_rule("g")], sources=[])]
    assert_exact(docs, [API], tmp_path, mesh)


def test_osm_target_without_sources_is_not_rendered_because_osm_reads_it_as_any_source(tmp_path):
    """The SMI documents as OSM would read them natively (``osm_allows`` over them): no sources = every
    source, wider than SMI; the translation renders no TrafficTarget and OSM denies the destination.
    (The rule names its match: OSM builds no route from a rule without ``matches``, v1.2.4
    pkg/catalog/inbound_traffic_policies.go.)"""
    docs = [group("g", GET_A), target("t", "api", [{**http_rule("g"), "matches": ["get-a"]}], sources=[])]
    intruder = Request(("ops", "intruder"), "shop", "api", "api", (("app", "api"),), 8080, http=True,
                       method="GET", path="/a/1")
    assert not smi_allows(docs, intruder)
    assert osm_allows(docs, intruder)
    objects = assert_exact(docs, [API], tmp_path, "osm")
    assert not [o for o in objects if o["kind"] == "TrafficTarget"]


def test_osm_tcproute_always_lists_the_ports_it_opens(tmp_path):
    """OSM opens EVERY port of the service account to a TrafficTarget without TCPRoute ports
    (v1.2.4 pkg/envoy/lds/rbac.go ``buildRBACPolicyFromTrafficTarget``: no ports -> any port), so each
    rendered TrafficTarget names a TCPRoute listing exactly the ports it opens; without that TCPRoute
    OSM would admit the source on the TCP port too."""
    docs = [group("g", GET_A), target("t", "mix", [http_rule("g")])]
    objects = assert_exact(docs, [MIX], tmp_path, "osm")
    routes = [o for o in objects if o["kind"] == "TCPRoute"]
    assert [r["spec"]["matches"]["ports"] for r in routes] == [[8080]]
    opaque = Request(("front", "client"), "shop", "mix", "mix", (("app", "mix"),), 5432, http=False)
    assert not osm_allows(objects, opaque)
    without = [o for o in objects if o["kind"] != "TCPRoute"]
    for o in without:
        if o["kind"] == "TrafficTarget":
            o["spec"]["rules"] = [r for r in o["spec"]["rules"] if r["kind"] != "TCPRoute"]
    assert osm_allows(without, opaque)


# --- 8. what the objects carry besides access ----------------------------------------------------------

@pytest.mark.parametrize("mesh", ["istio", "linkerd", "osm"])
def test_every_policy_object_carries_the_mesh_ownership_labels(mesh, tmp_path):
    """Every object we create carries the ownership labels of its mesh (meta.ownership_labels), which
    is how a later run finds and prunes what it owns (never what the user owns)."""
    from mesh_components.core.meta import ownership_labels

    docs = [group("g", GET_A), tcp_route("r", [5432]), target("t1", "mix", [http_rule("g")]),
            target("t2", "mix", [tcp_rule("r")], sources=[("front", "other")])]
    want = ownership_labels("gaps")
    for o in objects_for(mesh_of([MIX], docs, tmp_path), mesh):
        if o["kind"] in ("Namespace", "Service") and "spec" not in o:
            continue  # patches of the user's objects carry no ownership labels (meta.k8s_patch)
        labels = o["metadata"].get("labels") or {}
        assert {k: labels.get(k) for k in want} == want, o


def test_osm_matches_of_the_same_name_get_distinct_names(tmp_path):
    """Two route groups of one TrafficTarget may both call a match "read" with different content; OSM
    looks matches up by name (v1.2.4 pkg/catalog/inbound_traffic_policies.go), so the rendered
    HTTPRouteGroup names them ``read``, ``read-2``, ``read-3`` (issue 10.6) and the rule names all three."""
    docs = [group("g1", [{"name": "read", "methods": ["GET"], "pathRegex": "/a"}]),
            group("g2", [{"name": "read", "methods": ["GET"], "pathRegex": "/b"}]),
            group("g3", [{"name": "read", "methods": ["GET"], "pathRegex": "/a/1"}]),
            target("t", "api", [http_rule("g1"), http_rule("g2"), http_rule("g3")])]
    objects = assert_exact(docs, [API], tmp_path, "osm")
    (g,) = [o for o in objects if o["kind"] == "HTTPRouteGroup"]
    assert sorted(m["name"] for m in g["spec"]["matches"]) == ["read", "read-2", "read-3"]
    (t,) = [o for o in objects if o["kind"] == "TrafficTarget"]
    assert sorted(t["spec"]["rules"][0]["matches"]) == ["read", "read-2", "read-3"]
