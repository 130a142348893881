"""The mesh-neutral traffic-policy model, shaped like Gateway API / GAMMA, that sits between SMI
input and each mesh's output.

SMI names service accounts; meshes select pods and ports. :func:`build` resolves every SMI
TrafficTarget against the spec's services into :class:`Authorization` entries (one per
TrafficTarget and destination *service*), and every TrafficSplit into a :class:`WeightedRoute`.

Semantics (SMI traffic-access-control, https://github.com/servicemeshinterface/smi-spec): a
request from identity *s* to port *p* of a pod running as *d* is allowed iff some Authorization
for *d* lists *s* and either one of its ``http`` matches matches the request (on ``ports``) or
``tcp_ports`` admits *p*. A destination with at least one Authorization denies everything else
(default deny); a destination with none is not restricted by this layer.
GAMMA: https://gateway-api.sigs.k8s.io/mesh/
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SpecError
from .meta import k8s_object
from .smi import HTTPMatch, PolicySet


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
    apply on (the destination port, else the service's HTTP ports). ``http``: allowed HTTP matches
    (each with its ``origin`` for errors). ``tcp_ports``: service ports allowed at L4 (``None``:
    no TCP rule; empty tuple: every port).
    """

    name: str
    origin: str
    destination: Workload
    sources: tuple[tuple[str, str], ...]
    ports: tuple[int, ...]
    http: tuple[tuple[str, HTTPMatch], ...]
    tcp_ports: tuple[int, ...] | None


@dataclass(frozen=True)
class WeightedRoute:
    """A weighted split of requests to ``service`` across ``backends`` ``(service, weight)``,
    per HTTP ``ports`` of the apex service (a GAMMA HTTPRoute with a Service parent)."""

    name: str
    namespace: str
    service: str
    ports: tuple[int, ...]
    backends: tuple[tuple[str, int], ...]
    clusters: tuple[str, ...]
    origin: str


@dataclass(frozen=True)
class TrafficModel:
    """Everything the renderers translate: authorizations and weighted routes, sorted, and the SMI
    documents they came from (for meshes that take SMI natively)."""

    authorizations: tuple[Authorization, ...]
    routes: tuple[WeightedRoute, ...]
    policies: PolicySet = PolicySet()


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
        for w in sorted(dests, key=lambda w: w.name):
            service_ports = {p for p, *_ in w.ports}
            if t.destination_port is not None:
                if t.destination_port not in service_ports:
                    continue  # this service does not expose the destination port
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
    if ingress_identity and spec.ingress:
        for i, rt in enumerate(spec.ingress.routes):
            w = by_key[(rt.namespace, rt.service)]
            prefix = rt.path_prefix.rstrip("/")
            matches = ([HTTPMatch("ingress", ("*",), "/.*")] if not prefix else
                       [HTTPMatch("ingress-exact", ("*",), re.escape(prefix)),
                        HTTPMatch("ingress-prefix", ("*",), re.escape(prefix + "/") + ".*")])
            origin = f"mesh.ingress.routes[{i}]"
            auths.append(Authorization(f"{spec.ingress.name}-route-{i}", origin, w, (ingress_identity,),
                                       (rt.port,), tuple((origin, m) for m in matches), None))
    routes = []
    for s in policies.splits:
        apex = by_key[(s.namespace, s.service)]
        if not apex.http_ports:
            problems.append((s.origin, f"service {s.service!r} has no HTTP port; weighted routing is rendered as a "
                                       f"GAMMA HTTPRoute, so give the service an http, http2 or grpc port"))
            continue
        routes.append(WeightedRoute(s.name, s.namespace, s.service, apex.http_ports, s.backends,
                                    apex.clusters, s.origin))
    if problems:
        raise SpecError(problems)
    return TrafficModel(tuple(auths), tuple(routes), policies)


def destinations_with_policy(model: TrafficModel) -> set[tuple[str, str]]:
    """``(namespace, service)`` of every destination that has an authorization (default deny)."""
    return {(a.destination.namespace, a.destination.name) for a in model.authorizations}


GATEWAY_API = "gateway.networking.k8s.io/v1"


def split_routes(mesh: str, r: WeightedRoute) -> list[dict]:
    """A GAMMA HTTPRoute per HTTP port of the apex service, weighted across the backends
    (https://gateway-api.sigs.k8s.io/mesh/ ; served by Istio and by Linkerd alike)."""
    out = []
    for port in r.ports:
        name = r.name if len(r.ports) == 1 else f"{r.name}-{port}"
        out.append(k8s_object(GATEWAY_API, "HTTPRoute", name, r.namespace, mesh, spec={
            "parentRefs": [{"group": "", "kind": "Service", "name": r.service, "port": port}],
            "rules": [{"backendRefs": [{"name": b, "port": port, "weight": w} for b, w in r.backends]}]}))
    return out
