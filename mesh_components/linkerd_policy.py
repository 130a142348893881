"""Linkerd policy: the mesh-neutral traffic model (``gamma``) translated into Linkerd's policy
resources, exactly or not at all.

Upstream behaviour this follows (https://linkerd.io/2/reference/authorization-policy/,
https://linkerd.io/2/reference/httproute/, linkerd2-proxy ``linkerd/http/route``):

- a ``Server`` (policy.linkerd.io/v1beta3) selects a port of a workload's pods; once one exists,
  traffic to that port is denied unless an ``AuthorizationPolicy`` admits it. SMI's default deny
  covers the whole destination, so every port of a destination with a policy gets a Server;
- client identities are ``<sa>.<ns>.serviceaccount.identity.linkerd.<trust-domain>``, required
  through a ``MeshTLSAuthentication``;
- with ``HTTPRoute``s attached to a Server, the proxy picks ONE route per request (the most
  specific) and only that route's authorizations decide; a request matching no route is refused.
  So matches that can select the same request but admit different sources cannot be expressed
  exactly: they are refused, naming both documents. Identical matches are merged (sources united).
- path matches: ``Exact`` for literal regexes, otherwise ``RegularExpression`` wrapped as
  ``^(?:re)$`` (the proxy accepts a regex match only when it spans the whole path); methods are one
  match each; header regexes likewise anchored;
- L4 rules (a TrafficTarget with TCPRoutes only) authorize the Server itself; they cannot be
  combined with HTTP routes on the same port for other sources, because a routed request is
  decided by its route alone. A TCPRoute beside HTTPRouteGroup matches in one TrafficTarget only
  scopes the matches to its ports (``gamma``: SMI's L7 example, OSM), so it gives no Server
  authorization;
- overlap is judged per top-level regex alternative (``/a/.*|/b/.*`` overlaps ``/b/x``), on match
  content, never on match names (``smi.may_overlap``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from . import gamma, resilience
from .errors import Problem, TranslationError
from .gamma import TrafficModel, Workload
from .meta import k8s_object
from .smi import HTTPMatch, may_overlap, regex_shape

POLICY_V1BETA3 = "policy.linkerd.io/v1beta3"
POLICY_V1ALPHA1 = "policy.linkerd.io/v1alpha1"
PROXY_PROTOCOL = {"http": "HTTP/1", "http2": "HTTP/2", "grpc": "HTTP/2", "tcp": "opaque", "tls": "TLS"}
"""Spec port protocol -> the ``Server``'s ``proxyProtocol``.

A ``grpc`` port is served as ``HTTP/2``, not ``gRPC``: a gRPC Server is sent only its GRPCRoutes
(linkerd/linkerd2 edge-26.8.3 policy-controller/grpc/src/inbound.rs:209-213 ``ProxyProtocol::Grpc``
carries ``grpc_routes`` alone; k8s/index/src/inbound/index.rs:2020-2040 gives a Server without
GRPCRoutes a default route that only the Server's own authorizations admit through), so the
policy.linkerd.io HTTPRoutes and their AuthorizationPolicies rendered for SMI matches would never
apply and every call would be refused. An HTTP/2 Server is sent the HTTPRoutes
(inbound.rs:203-208, index.rs:1997-2018), which match gRPC calls exactly on what SMI names: the
``:path`` ``/package.Service/Method``, the method (always POST) and headers. The proxy speaks h2 to
both alike (linkerd2-proxy release/v2.366.0 linkerd/app/inbound/src/detect.rs:204 ``Http2 | Grpc =>
Variant::H2``), and answers a refused gRPC request with a grpc-status whatever the Server's protocol:
it tells gRPC by the request's content-type (linkerd/app/core/src/errors/respond.rs:315-333)."""


def identity(trust_domain: str, namespace: str, service_account: str) -> str:
    """Linkerd identity of a workload: ``<sa>.<ns>.serviceaccount.identity.linkerd.<trust-domain>``."""
    return f"{service_account}.{namespace}.serviceaccount.identity.linkerd.{trust_domain}"


def namespace_labels(spec, model: TrafficModel, namespace: str) -> dict[str, str]:
    """Linkerd policy needs no namespace labels."""
    return {}


def namespace_annotations(spec, model: TrafficModel, namespace: str) -> dict[str, str]:
    """``config.linkerd.io/default-inbound-policy`` where the namespace needs one
    (:func:`mesh_components.linkerd.policy_namespace_annotations`)."""
    from .linkerd import policy_namespace_annotations

    return policy_namespace_annotations(spec, model, namespace)


def deployment_problems(spec, model: TrafficModel) -> list[Problem]:
    """What the namespaces' default inbound policy would close (:func:`mesh_components.linkerd.default_policy_problems`)."""
    from .linkerd import default_policy_problems

    return default_policy_problems(spec, model)


@dataclass(frozen=True)
class RouteMatch:
    """One Linkerd route's match: ``methods`` (None: any), path ``(type, value)`` (None: any),
    headers ``((name, type, value), ...)``; ``regex`` keeps the SMI path regex."""

    methods: frozenset[str] | None
    path: tuple[str, str] | None
    headers: tuple[tuple[str, str, str], ...]
    regex: str | None

    def key(self) -> str:
        return repr((sorted(self.methods) if self.methods else None, self.path, self.headers))


def _anchored(regex: str) -> str:
    """``^(?:re)$``: a regex the proxy's leftmost-first search can only satisfy over the whole value."""
    s = regex[1:] if regex.startswith("^") else regex
    if s.endswith("$") and not s.endswith("\\$"):
        s = s[:-1]
    return f"^(?:{s})$"


def route_match(m: HTTPMatch) -> RouteMatch:
    """The Linkerd form of an SMI HTTP match (exact: nothing is widened)."""
    path = None
    if m.path_regex is not None:
        kind, literal = regex_shape(m.path_regex)
        # the policy controller refuses an Exact path that is not absolute (edge-26.8.3
        # policy-controller/k8s/index/src/routes/http.rs path_match), so '' or 'books' stay regexes,
        # which match no request path, as the SMI regex does
        if kind == "exact" and literal.startswith("/"):
            path = ("Exact", literal)
        elif kind != "any":
            path = ("RegularExpression", _anchored(m.path_regex))
    headers = []
    for name, value in m.headers:
        kind, literal = regex_shape(value)
        headers.append((name.lower(), "Exact", literal) if kind == "exact" else
                       (name.lower(), "RegularExpression", _anchored(value)))
    methods = None if m.any_method else frozenset(m.methods)
    return RouteMatch(methods, path, tuple(sorted(headers)), m.path_regex)


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _auth(mesh, td, name, namespace, target_kind, target_name, sources) -> list[dict]:
    return [
        k8s_object(POLICY_V1ALPHA1, "MeshTLSAuthentication", name, namespace, mesh, spec={
            "identities": sorted(identity(td, ns, sa) for ns, sa in sources)}),
        k8s_object(POLICY_V1ALPHA1, "AuthorizationPolicy", name, namespace, mesh, spec={
            "targetRef": {"group": "policy.linkerd.io", "kind": target_kind, "name": target_name},
            "requiredAuthenticationRefs": [{"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication",
                                            "name": name}]}),
    ]


def _route_object(mesh, name, ns, server, rm: RouteMatch) -> dict:
    base: dict = {}
    if rm.path:
        base["path"] = {"type": rm.path[0], "value": rm.path[1]}
    if rm.headers:
        base["headers"] = [{"name": n, "type": t, "value": v} for n, t, v in rm.headers]
    matches = [{**base, "method": m} for m in sorted(rm.methods)] if rm.methods else [base or {"path": {
        "type": "PathPrefix", "value": "/"}}]
    return k8s_object(POLICY_V1BETA3, "HTTPRoute", name, ns, mesh, spec={
        "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": server}],
        "rules": [{"matches": matches}]})


def _server_objects(spec, w: Workload, port: int, target: int, protocol: str, port_name: str,
                    auths: list[gamma.Authorization], problems: list[Problem]) -> list[dict]:
    mesh, td = spec.name, spec.trust_domain
    server = f"{w.name}-{port_name}"
    objects = [k8s_object(POLICY_V1BETA3, "Server", server, w.namespace, mesh, spec={
        "podSelector": {"matchLabels": dict(w.pod_labels)}, "port": target,
        "proxyProtocol": PROXY_PROTOCOL[protocol]})]
    tcp_sources = sorted({s for a in auths if a.tcp_ports is not None and (not a.tcp_ports or port in a.tcp_ports)
                          for s in a.sources})
    routes: dict[str, tuple[RouteMatch, set, list[str], HTTPMatch]] = {}
    if protocol in ("http", "http2", "grpc"):
        for a in auths:
            if port not in a.ports:
                continue
            for origin, m in a.http:
                rm = route_match(m)
                got = routes.setdefault(rm.key(), (rm, set(), [], m))
                got[1].update(a.sources)
                got[2].append(origin)
    if tcp_sources:
        # a TCP rule admits every request on the port; routes only add sources it already has
        extra = sorted({s for _, srcs, _, _ in routes.values() for s in srcs} - set(tcp_sources))
        if extra:
            origins = sorted({o for _, _, os_, _ in routes.values() for o in os_})
            problems.append((origins[0], f"port {port} of {w.namespace}/{w.name} has both TCP rules (for "
                                         f"{', '.join(f'{n}/{s}' for n, s in tcp_sources)}) and HTTP matches for other "
                                         f"sources; Linkerd decides a routed request by its route alone, so this "
                                         f"cannot be expressed exactly: give those sources the TCP rule too, or "
                                         f"serve the HTTP matches on another port"))
            return objects
        return objects + _auth(mesh, td, server, w.namespace, "Server", server, tcp_sources)
    # a route nobody may use is not rendered (the request is refused without it all the same)
    items = sorted((r for r in routes.values() if r[1]), key=lambda r: r[0].key())
    for i, (_, sa, oa, ma) in enumerate(items):
        for _, sb, ob, mb in items[i + 1:]:
            if sa != sb and may_overlap(ma, mb):
                problems.append((oa[0], f"overlaps {ob[0]} on port {port} of {w.namespace}/{w.name} with different "
                                        f"sources; Linkerd picks one route per request, so the union of their sources "
                                        f"cannot be expressed exactly: make the matches disjoint (different paths, "
                                        f"methods or exact header values) or give them the same sources"))
    for rm, sources, _, _ in items:
        name = f"{server}-{_short(rm.key())}"
        objects.append(_route_object(mesh, name, w.namespace, server, rm))
        objects += _auth(mesh, td, name, w.namespace, "HTTPRoute", name, sorted(sources))
    return objects


def policy_objects(spec, model: TrafficModel, cluster: str) -> list[dict]:
    """Servers, HTTPRoutes, AuthorizationPolicies and MeshTLSAuthentications for ``cluster``, and
    GAMMA HTTPRoutes for splits. Raises :class:`TranslationError` listing everything Linkerd
    cannot express exactly."""
    problems: list[Problem] = []
    by_dest: dict[tuple[str, str], list[gamma.Authorization]] = {}
    workloads: dict[tuple[str, str], Workload] = {}
    for a in model.authorizations:
        key = (a.destination.namespace, a.destination.name)
        by_dest.setdefault(key, []).append(a)
        workloads[key] = a.destination
    objects: list[dict] = []
    for key in sorted(by_dest):
        w = workloads[key]
        if cluster not in w.clusters:
            continue
        for port, target, protocol, port_name in w.ports:
            objects += _server_objects(spec, w, port, target, protocol, port_name, by_dest[key], problems)
    from . import linkerd  # the deployment's part: default inbound policy, probes, multicluster identity

    objects += linkerd.probe_objects(spec, objects)
    problems += linkerd.cross_cluster_problems(spec, model)
    try:
        routed, replaced = resilience.linkerd_objects(spec, model, cluster)
    except TranslationError as e:
        problems += e.problems
        routed, replaced = [], set()
    for r in model.routes:
        problems += gamma.tcp_split_problems("Linkerd", r) if cluster in r.clusters else []
        if cluster in r.clusters and r.name not in replaced:
            objects += gamma.split_routes(spec.name, r)
    objects += routed
    if problems:
        raise TranslationError(sorted(set(problems)))
    return objects
