"""The mesh-neutral traffic-policy model, shaped like Gateway API / GAMMA, that sits between SMI
input and each mesh's output.

SMI names service accounts; meshes select pods and ports. :func:`build` resolves every SMI
TrafficTarget against the spec's services into :class:`Authorization` entries (one per
TrafficTarget and destination *service*), and every TrafficSplit into a :class:`WeightedRoute`.

Semantics (SMI traffic-access-control, https://github.com/servicemeshinterface/smi-spec): a
request from identity *s* to port *p* of a pod running as *d* is allowed iff some Authorization
for *d* lists *s* and either one of its ``http`` matches matches the request (on ``ports``) or
``tcp_ports`` admits *p*. A destination with at least one Authorization denies everything else
(default deny); a destination with none is not restricted by this layer. A TrafficTarget naming
both a TCPRoute and HTTPRouteGroup matches admits the matches on the TCPRoute's ports (AND, as in
the SMI spec's L7 example and OSM; see :func:`_scoped_http_ports`), never the whole port.
GAMMA: https://gateway-api.sigs.k8s.io/mesh/
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..spec.errors import SpecError
from .meta import k8s_object
from ..spec.smi import HTTPMatch, PolicySet


@dataclass(frozen=True)
class Workload:
    """A destination service as meshes need it: name, namespace, pod labels, ports
    ``(port, target_port, protocol, name)``, the clusters it runs in."""

    name: str
    namespace: str
    service_account: str
    pod_labels: tuple[tuple[str, str], ...]
    ports: tuple[tuple[int, int, str, str], ...]
    clusters: tuple[str, ...]

    @property
    def http_ports(self) -> tuple[int, ...]:
        return tuple(p for p, _, proto, _ in self.ports if proto in ("http", "http2", "grpc"))

    def target_port(self, port: int) -> int:
        return next((t for p, t, _, _ in self.ports if p == port), port)


@dataclass(frozen=True)
class Authorization:
    """Who may call one destination service, and how.

    ``sources``: ``(namespace, service_account)`` pairs. ``ports``: service ports the HTTP matches
    apply on (the destination port, else the service's HTTP ports; with a TCPRoute in the same
    TrafficTarget, only its ports). ``http``: allowed HTTP matches (each with its ``origin`` for
    errors). ``tcp_ports``: service ports allowed at L4, whole (``None``: no TCP-only rule -- a
    TCPRoute beside HTTP matches only scopes them; empty tuple: every port).
    """

    name: str
    origin: str
    destination: Workload
    sources: tuple[tuple[str, str], ...]
    ports: tuple[int, ...]
    http: tuple[tuple[str, HTTPMatch], ...]
    tcp_ports: tuple[int, ...] | None


HTTP_PROTOCOLS = ("http", "http2", "grpc")
"""Spec port protocols a GAMMA HTTPRoute routes (``Workload.http_ports``)."""


@dataclass(frozen=True)
class WeightedRoute:
    """A weighted split of requests to ``service`` (the SMI root) across ``backends``
    ``(service, weight)`` as declared (weights exact integers, smi.normalise_weights).

    ``ports``: the root's HTTP ports. ``port_backends``: for EVERY port of the root ``(port,
    protocol, backends)``, the backends that serve that port number: SMI traffic-split v1alpha1
    "Ports": "There *must* be a match between a port on the *root* service and a port on every
    destination backend service. If they do not match, the backend service is not included",
    as OSM v1.2.4 does (pkg/catalog/outbound_traffic_policies.go: a backend without the port is
    "ignored"). A split covers every port of the root, TCP ports too.
    """

    name: str
    namespace: str
    service: str
    ports: tuple[int, ...]
    backends: tuple[tuple[str, int], ...]
    clusters: tuple[str, ...]
    origin: str
    port_backends: tuple[tuple[int, str, tuple[tuple[str, int], ...]], ...] = ()

    @property
    def tcp_ports(self) -> tuple[int, ...]:
        """The root's ports that are not HTTP (the split covers them too)."""
        return tuple(p for p, proto, _ in self.port_backends if proto not in HTTP_PROTOCOLS)

    def backends_on(self, port: int) -> tuple[tuple[str, int], ...]:
        """The backends that serve ``port`` of the root, with their weights."""
        return next((b for p, _, b in self.port_backends if p == port), self.backends)


@dataclass(frozen=True)
class TrafficModel:
    """Everything the renderers translate: authorizations and weighted routes, sorted, and the SMI
    documents they came from (for meshes that take SMI natively)."""

    authorizations: tuple[Authorization, ...]
    routes: tuple[WeightedRoute, ...]
    policies: PolicySet = PolicySet()


INGRESS_ROUTE_ORIGIN = "mesh.ingress.routes["
"""Origin prefix of the Authorizations :func:`build` makes for ingress routes."""


def authorization_identity(a: Authorization) -> tuple[tuple, bool]:
    """``(identity, fixed)`` of the access policy translating ``a``, for
    :func:`mesh_components.spec.names.rename`: for an access rule ``("authorization", rule,
    destination)``; for an ingress route's ``("ingress", <ingress>-route-<i>, destination)``,
    fixed. The ingress policy's name (``<ingress>-route-<i>-<destination>``) is the mesh's, so a
    rule asking for it (a rule named ``ingress-route-0`` to the same destination) is the one that
    moves to the hashed name, and the two are distinct objects (with one identity the allocator
    would take them for one and both would keep the name). The ingress names stay numbered by
    route position, as every shipped stack has them: a name by route identity would rename the
    policies of every stack, so reordering routes still renames them (a new ALLOW policy is
    created before the old one goes: no request is refused meanwhile)."""
    if a.origin.startswith(INGRESS_ROUTE_ORIGIN):
        return ("ingress", a.name, a.destination.name), True
    return ("authorization", a.name, a.destination.name), False


def workloads(spec) -> dict[tuple[str, str], Workload]:
    """Every spec service as a :class:`Workload`, keyed by ``(namespace, name)``."""
    return {
        (s.namespace, s.name): Workload(
            s.name, s.namespace, s.account, tuple(sorted(s.pod_labels().items())),
            tuple((p.port, p.target_port or p.port, p.protocol, p.port_name) for p in s.ports),
            tuple(spec.service_clusters(s)))
        for s in spec.services
    }


def build(spec, policies: PolicySet, ingress_identity: tuple[str, str] | None = None) -> TrafficModel:
    """Resolve SMI documents against the spec into a :class:`TrafficModel`.

    ``ingress_identity`` ``(namespace, service_account)`` of the ingress gateway, when the spec
    has one: each ingress route becomes an Authorization from it (the gateway is a source like
    any other), for exactly the route's port and path prefix (Gateway API ``PathPrefix`` matches
    whole path elements: ``/books`` admits ``/books`` and ``/books/...``, not ``/booksx``).

    Raises :class:`SpecError` for a TrafficTarget whose destination service account no service
    runs as (SMI names identities; a mesh needs the pods behind them).
    """
    by_key = workloads(spec)
    by_account: dict[tuple[str, str], list[Workload]] = {}
    for w in by_key.values():
        by_account.setdefault((w.namespace, w.service_account), []).append(w)
    problems = []
    auths: list[Authorization] = []
    for t in policies.targets:
        dests = by_account.get(t.destination, [])
        if not dests:
            problems.append((t.origin, f"no service runs as service account {t.destination[1]!r} in namespace "
                                       f"{t.destination[0]!r}; set serviceAccount on the service in mesh.services"))
            continue
        http: list[tuple[str, HTTPMatch]] = []
        tcp: tuple[int, ...] | None = None
        for r in t.rules:
            if r.kind == "HTTPRouteGroup":
                group = policies.route_group(t.namespace, r.name)
                chosen = [m for m in group.matches if not r.matches or m.name in r.matches]
                http += [(f"{group.origin} match {m.name!r}", m) for m in chosen]
            else:
                route = policies.tcp_route(t.namespace, r.name)
                tcp = () if tcp == () or not route.ports else tuple(sorted(set(tcp or ()) | set(route.ports)))
        before = len(auths)
        has_http = any(r.kind == "HTTPRouteGroup" for r in t.rules)
        named = ([t.destination_port] if t.destination_port is not None else []) + list(tcp or ())
        for w in sorted(dests, key=lambda w: w.name):
            service_ports = {p for p, *_ in w.ports}
            if ambiguous := ambiguous_port_references(w, named):
                problems.append((t.origin, f"port(s) {ambiguous} of service {w.namespace}/{w.name} mean different "
                                           f"pod ports depending on how SMI is read: {_port_map(w, ambiguous)}; SMI "
                                           f"does not say whether TCPRoute ports and destination.port name the "
                                           f"Service's ports or the pod's, and OSM reads them as the pod's "
                                           f"(pkg/envoy/lds/rbac.go), so the rule is refused rather than guessed: "
                                           f"give these Service ports a targetPort equal to the port, or drop "
                                           f"the port list"))
                continue
            if t.destination_port is not None and t.destination_port not in service_ports:
                continue  # this service does not expose the destination port
            if has_http and tcp is not None:
                # TCPRoute + HTTPRouteGroup: the TCPRoute's ports scope the HTTP matches (AND)
                scoped = _scoped_http_ports(t, w, tcp, problems)
                if scoped is not None:
                    auths.append(Authorization(t.name, t.origin, w, t.sources, scoped, tuple(http), None))
                continue
            if t.destination_port is not None:
                ports = (t.destination_port,)
                # a TCPRoute that lists ports admits the destination port only if it lists it
                tcp_here = None if tcp is None or (tcp and t.destination_port not in tcp) else ports
            else:
                ports = w.http_ports
                tcp_here = None if tcp is None else tuple(p for p in tcp if p in service_ports) if tcp else ()
                if tcp and not tcp_here:
                    problems.append((t.origin, f"TCP ports {list(tcp)} are not exposed by service {w.name!r} "
                                               f"(ports {sorted(service_ports)}); name a port the service exposes"))
                    continue
            auths.append(Authorization(t.name, t.origin, w, t.sources, ports, tuple(http), tcp_here))
        if len(auths) == before and t.destination_port is not None and not any(p[0] == t.origin for p in problems):
            problems.append((f"{t.origin}", f"no service running as {t.destination[1]!r} exposes destination port "
                                           f"{t.destination_port}; name a port one of them exposes"))
    routes = []
    served = backend_ports(spec)
    for s in policies.splits:
        apex = by_key[(s.namespace, s.service)]
        per_port = []
        for port, _, proto, _ in apex.ports:
            here = tuple((b, w) for b, w in s.backends if port in served.get((s.namespace, b), ()))
            if not any(w for _, w in here):
                # every backend with weight lacks the port: SMI excludes them, leaving nothing to serve it
                problems.append((f"{s.origin}.spec.backends",
                                 f"no backend with a positive weight has port {port} of service {s.service!r} "
                                 f"(SMI sends a root port only to backends with the same port number); give a "
                                 f"backend port {port} or split a service without it"))
            per_port.append((port, proto, here))
        routes.append(WeightedRoute(s.name, s.namespace, s.service, apex.http_ports, s.backends,
                                    apex.clusters, s.origin, tuple(per_port)))
    if ingress_identity and spec.ingress:
        split_of = {(r.namespace, r.service): r for r in routes}
        for i, rt in enumerate(spec.ingress.routes):
            prefix = rt.path_prefix.rstrip("/")
            matches = ([HTTPMatch("ingress", ("*",), "/.*")] if not prefix else
                       [HTTPMatch("ingress-exact", ("*",), re.escape(prefix)),
                        HTTPMatch("ingress-prefix", ("*",), re.escape(prefix + "/") + ".*")])
            origin = f"{INGRESS_ROUTE_ORIGIN}{i}]"
            for w in ingress_destinations(spec, by_key, split_of.get((rt.namespace, rt.service)), rt):
                auths.append(Authorization(f"{spec.ingress.name}-route-{i}", origin, w, (ingress_identity,),
                                           (rt.port,), tuple((origin, m) for m in matches), None))
    if problems:
        raise SpecError(problems)
    return TrafficModel(tuple(auths), tuple(routes), policies)


def edge_backends(r: WeightedRoute | None, service: str, port: int) -> tuple[tuple[str, int], ...]:
    """The weighted backends ``(service, weight)`` an ingress route to ``service`` port ``port``
    must carry: the split's backends on that port (:meth:`WeightedRoute.backends_on`, weights as
    declared), or the service itself, unweighted (weight 1, the Gateway API default), without a split.

    A split rendered as a Service-parented HTTPRoute is a GAMMA *mesh* route, applied where "the mesh
    data plane intercepts the request" of a client (Gateway API v1.6.1
    site/content/en/docs/mesh/mesh-overview.md, "Request Flow"), and a north-south gateway programs
    only the routes attached to its Gateway: Istio 1.30.3 makes a Service parent the internal parent
    ``mesh`` (pilot/pkg/config/kube/gateway/gateway_collection.go:454-466, conversion.go:1692-1694),
    which sidecars and waypoints read, not gateway deployments; Envoy Gateway v1.9.0 takes a parentRef
    only if it is a Gateway (or ListenerSet) of its own (internal/gatewayapi/helpers.go:126-145,
    151). OSM's Envoy Gateway is not meshed at all. So the ingress route carries the split itself, to
    the same Services with the same weights."""
    if r is None:
        return ((service, 1),)
    return r.backends_on(port)


def ingress_destinations(spec, by_key: dict[tuple[str, str], Workload], r: WeightedRoute | None,
                         rt) -> list[Workload]:
    """The spec services whose pods receive ingress route ``rt``'s requests: the routed service, and
    each split backend with a positive weight on the route's port that is another spec service (a
    version Service ``<service>-<version>`` selects a subset of its service's pods,
    ``render.version_services``, so it adds none). The gateway is admitted on exactly these, for
    the route's port and path prefix, as for the routed service."""
    out = [by_key[(rt.namespace, rt.service)]]
    for b, weight in edge_backends(r, rt.service, rt.port):
        w = by_key.get((rt.namespace, b))
        if weight and w is not None and w not in out:
            out.append(w)
    return out


def ambiguous_port_references(w: Workload, named) -> list[int]:
    """The port numbers in ``named`` (TCPRoute ports, ``destination.port``) whose meaning for ``w``
    depends on the reading of SMI, sorted: a Service port whose ``targetPort`` differs (read as a
    Service port it admits the target port; read as a pod port it admits a port the pod may not
    serve), or a number that is only some port's ``targetPort``. SMI's traffic-specs say a TCPRoute
    without ports selects "all the ports of a Kubernetes service" but not which number a listed
    port is; OSM v1.2.4, which implements SMI natively, compares them with the connection's
    destination port at the pod (pkg/envoy/lds/rbac.go, the L4 RBAC of the inbound filter chain
    built per targetPort in pkg/envoy/lds/inmesh.go). Ports whose two readings agree (port ==
    targetPort) are never listed."""
    by_port = {p: t for p, t, *_ in w.ports}
    targets = {t for _, t, *_ in w.ports}
    return sorted(p for p in set(named)
                  if (p in by_port and by_port[p] != p) or (p not in by_port and p in targets))


def _port_map(w: Workload, ports: list[int]) -> str:
    """``80 -> targetPort 8080`` / ``8080 is only a targetPort`` for the ports in an ambiguity error."""
    by_port = {p: t for p, t, *_ in w.ports}
    return ", ".join(f"{p} -> targetPort {by_port[p]}" if p in by_port else f"{p} is only a targetPort"
                     for p in ports)


def _scoped_http_ports(t, w: Workload, tcp: tuple[int, ...], problems: list) -> tuple[int, ...] | None:
    """Service ports of ``w`` on which the HTTP matches of TrafficTarget ``t`` apply when ``t``
    also names TCPRoutes with ports ``tcp`` (empty: every port): the TCPRoute scopes the matches
    (AND), it does not open its ports besides them. None (with a problem recorded) when refused.

    Upstream: smi-spec apis/traffic-access/v1alpha3/traffic-access.md, "Example implementation
    for L7": TrafficTarget ``api-service-metrics`` names TCPRoute ``api-service-port`` (8080) and
    the HTTPRouteGroup match ``metrics``, and the spec's table lets prometheus do GET /metrics
    only, not use the whole port. OSM v1.2.4 enforces that reading: pkg/envoy/lds/inmesh.go
    ``getInboundHTTPFilters`` puts the L4 RBAC filter built from TCPRoute ports
    (pkg/envoy/lds/rbac.go ``buildRBACPolicyFromTrafficTarget``) in front of the HTTP routes,
    which come from HTTPRouteGroup matches alone (pkg/catalog/inbound_traffic_policies.go).
    Refused where the reading is ambiguous: a listed (or, with empty ports, any) port that is not
    an HTTP port -- SMI does not say whether it opens at L4 (OSM: yes) or only carries the HTTP
    matches (which an opaque connection never satisfies).
    """
    exposed = [p for p, *_ in w.ports]
    here = [p for p in (tcp or exposed) if p in exposed
            and (t.destination_port is None or p == t.destination_port)]
    opaque = [p for p in here if p not in w.http_ports]
    if opaque:
        problems.append((t.origin, f"names HTTP matches and a TCPRoute whose ports include non-HTTP port(s) "
                                   f"{opaque} of service {w.name!r} ({'every port' if not tcp else f'ports {list(tcp)}'}); "
                                   f"SMI does not say whether those ports open for TCP or only carry the HTTP matches: "
                                   f"split it into two TrafficTargets, one naming the TCPRoute of the TCP ports, one "
                                   f"naming the HTTPRouteGroup with a TCPRoute that lists only HTTP ports "
                                   f"{list(w.http_ports)}"))
        return None
    if tcp and not any(p in exposed for p in tcp):
        problems.append((t.origin, f"TCP ports {list(tcp)} are not exposed by service {w.name!r} "
                                   f"(ports {sorted(exposed)}); name a port the service exposes"))
        return None
    return tuple(here)


def destinations_with_policy(model: TrafficModel) -> set[tuple[str, str]]:
    """``(namespace, service)`` of every destination that has an authorization (default deny)."""
    return {(a.destination.namespace, a.destination.name) for a in model.authorizations}


GATEWAY_API = "gateway.networking.k8s.io/v1"


def backend_ports(spec) -> dict[tuple[str, str], frozenset[int]]:
    """The port numbers each possible split backend serves, keyed by ``(namespace, name)``: every
    spec service, and every version Service ``<service>-<version>`` (render.version_services,
    which copies its service's ports). A service of that name wins over a version Service."""
    out: dict[tuple[str, str], frozenset[int]] = {}
    for s in spec.services:
        for v in s.versions:
            out[(s.namespace, f"{s.name}-{v.name}")] = frozenset(p.port for p in s.ports)
    for s in spec.services:
        out[(s.namespace, s.name)] = frozenset(p.port for p in s.ports)
    return out


def tcp_split_problems(mesh_name: str, r: WeightedRoute) -> list:
    """``[(path, message)]`` refusing a split whose root has a port that is not HTTP, for a mesh
    whose splits are GAMMA HTTPRoutes: Istio 1.30.3 and Linkerd edge-26.8.3 would leave it unsplit.

    Both read Gateway API TCPRoute only at ``v1alpha2`` (istio pkg/config/schema/gvk/resources.gen.go
    ``TCPRoute ... Version: "v1alpha2"``; linkerd2 Cargo.lock gateway-api 0.21.0, whose
    apis/experimental/tcproutes.rs binds ``version = "v1alpha2"``), which the pinned Gateway API
    v1.6.1 standard CRDs no longer serve (gateway.networking.k8s.io_tcproutes.yaml: v1alpha2
    ``served: false``), and a GAMMA HTTPRoute routes only HTTP ports.
    """
    if not r.tcp_ports:
        return []
    return [(f"{r.origin}.spec.service",
             f"service {r.namespace}/{r.service} has TCP port(s) {list(r.tcp_ports)}, which an SMI split covers "
             f"too; {mesh_name} splits only HTTP ports here (it reads Gateway API TCPRoute at v1alpha2, which "
             f"Gateway API v1.6.1 no longer serves): split a service whose ports are all HTTP, or move the TCP "
             f"port to a Service of its own")]


def split_routes(mesh: str, r: WeightedRoute) -> list[dict]:
    """A GAMMA HTTPRoute per HTTP port of the apex service, weighted across the backends that
    serve that port (https://gateway-api.sigs.k8s.io/mesh/ ; served by Istio and by Linkerd alike).

    A backendRef to a Service port that does not exist is answered with 500 for its share
    (Gateway API HTTPBackendRef; istio pilot route.go ``ClusterNotFoundResponseCode``), so such
    backends are left out, as SMI says (:class:`WeightedRoute`). Callers refuse roots with TCP
    ports first (:func:`tcp_split_problems`)."""
    out = []
    for port in r.ports:
        name = r.name if len(r.ports) == 1 else f"{r.name}-{port}"
        out.append(k8s_object(GATEWAY_API, "HTTPRoute", name, r.namespace, mesh, spec={
            "parentRefs": [{"group": "", "kind": "Service", "name": r.service, "port": port}],
            "rules": [{"backendRefs": [{"name": b, "port": port, "weight": w} for b, w in r.backends_on(port)]}]}))
    return out
