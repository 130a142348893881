"""OSM policy: SMI rendered for Open Service Mesh v1.2, shaped so that OSM admits exactly what
SMI admits.

OSM v1.2.4 (archived) serves TrafficTarget ``access.smi-spec.io/v1alpha3``, HTTPRouteGroup and
TCPRoute ``specs.smi-spec.io/v1alpha4`` and TrafficSplit only at ``split.smi-spec.io/v1alpha2``
(../shared/crds/osm). It reads them its own way (openservicemesh/osm v1.2.4: pkg/catalog
inbound_traffic_policies.go and traffictarget.go, pkg/envoy/rds, pkg/envoy/lds/rbac.go), so the
documents are rebuilt from the mesh-neutral model rather than copied:

- an HTTPRouteGroup rule without ``matches`` yields no route in OSM: every rule names its matches;
- TCPRoutes are ignored on HTTP ports: an SMI TCP rule on an HTTP port becomes a catch-all HTTP
  route (``pathRegex: .*``) for its sources;
- a TrafficTarget without TCPRoute ports opens EVERY TCP port of the destination, and a TCPRoute
  with empty ``ports`` adds none: TCP ports are always listed, and an HTTP-only target of a
  destination that has TCP ports gets a TCPRoute naming only HTTP ports, which opens nothing;
- Envoy takes the first matching route and only identical routes merge their sources: matches of
  different TrafficTargets that may select the same request with different sources are refused;
- TrafficTarget v1alpha3 has no ``destination.port``: refused;
- with permissive traffic policy mode off (the control plane's setting), OSM denies every
  destination without a TrafficTarget, not only those with one: stricter, never wider.
Docs: https://release-v1-2.docs.openservicemesh.io/docs/guides/traffic_management/
"""
from __future__ import annotations

from . import resilience
from .errors import Problem, TranslationError
from .gamma import Authorization, TrafficModel
from .meta import k8s_object
from .smi import HTTPMatch, match_key, may_overlap

ACCESS = "access.smi-spec.io/v1alpha3"
SPECS = "specs.smi-spec.io/v1alpha4"
SPLIT = "split.smi-spec.io/v1alpha2"
HTTP_PROTOCOLS = ("http", "http2", "grpc")
CATCH_ALL = HTTPMatch("any", ("*",), ".*")


def namespace_labels(spec, model: TrafficModel, namespace: str) -> dict[str, str]:
    """OSM policy needs no namespace labels (enrolment is the control plane's)."""
    return {}


def _match_doc(m: HTTPMatch) -> dict:
    doc: dict = {"name": m.name}
    if not m.any_method:
        doc["methods"] = list(m.methods)
    if m.path_regex is not None:
        doc["pathRegex"] = m.path_regex
    if m.headers:
        doc["headers"] = [{name: value} for name, value in m.headers]
    return doc


def _target_objects(spec, auths: list[Authorization], routes: dict, problems: list[Problem]) -> list[dict]:
    """The documents of one SMI TrafficTarget (``auths``: its authorizations, one per destination
    service running as its service account); records HTTP routes per destination port in ``routes``."""
    first = auths[0]
    ns, sa, name, mesh = first.destination.namespace, first.destination.service_account, first.name, spec.name
    sources = sorted(first.sources)
    if not sources:
        return []  # OSM reads a TrafficTarget without sources as "any source"; SMI admits nobody
    matches: dict[str, HTTPMatch] = {}
    tcp_ports: set[int] = set()
    catch_all_ports: set[int] = set()
    http_ports_all: set[int] = set()
    has_tcp_port = False
    for a in auths:
        w = a.destination
        proto = {p: (t, pr) for p, t, pr, _ in w.ports}
        http_ports_all |= {t for t, pr in proto.values() if pr in HTTP_PROTOCOLS}
        has_tcp_port |= any(pr not in HTTP_PROTOCOLS for _, pr in proto.values())
        for port in a.ports:
            target, pr = proto[port]
            if pr in HTTP_PROTOCOLS:
                for _, m in a.http:
                    matches[m.name] = m
                    routes.setdefault((ns, sa, target), []).append((m, frozenset(sources), a.origin))
        if a.tcp_ports is not None:
            for port in a.tcp_ports or proto:
                target, pr = proto[port]
                if pr in HTTP_PROTOCOLS:
                    catch_all_ports.add(target)
                    routes.setdefault((ns, sa, target), []).append((CATCH_ALL, frozenset(sources), a.origin))
                else:
                    tcp_ports.add(target)
    objects, rules = [], []
    if matches:
        objects.append(k8s_object(SPECS, "HTTPRouteGroup", name, ns, mesh,
                                  spec={"matches": [_match_doc(m) for m in matches.values()]}))
        rules.append({"kind": "HTTPRouteGroup", "name": name, "matches": list(matches)})
    if catch_all_ports:
        objects.append(k8s_object(SPECS, "HTTPRouteGroup", f"{name}-any", ns, mesh,
                                  spec={"matches": [_match_doc(CATCH_ALL)]}))
        rules.append({"kind": "HTTPRouteGroup", "name": f"{name}-any", "matches": [CATCH_ALL.name]})
    if tcp_ports:
        objects.append(k8s_object(SPECS, "TCPRoute", name, ns, mesh, spec={"matches": {"ports": sorted(tcp_ports)}}))
        rules.append({"kind": "TCPRoute", "name": name})
    elif has_tcp_port and rules:
        # without TCPRoute ports OSM would open every TCP port of the destination to these sources
        objects.append(k8s_object(SPECS, "TCPRoute", f"{name}-no-tcp", ns, mesh,
                                  spec={"matches": {"ports": sorted(http_ports_all)}}))
        rules.append({"kind": "TCPRoute", "name": f"{name}-no-tcp"})
    if not rules:
        return []  # the target admits nothing; OSM denies the destination anyway
    objects.append(k8s_object(ACCESS, "TrafficTarget", name, ns, mesh, spec={
        "destination": {"kind": "ServiceAccount", "name": sa, "namespace": ns},
        "rules": rules,
        "sources": [{"kind": "ServiceAccount", "name": s, "namespace": n} for n, s in sources]}))
    return objects


def _check_routes(routes: dict, problems: list[Problem]) -> None:
    """Refuse routes of one destination port that may select the same request with different sources
    (identical routes merge their sources in OSM, so they are fine)."""
    for (ns, sa, port), entries in sorted(routes.items()):
        merged: dict[tuple, tuple[HTTPMatch, set, str]] = {}
        for m, sources, origin in entries:
            got = merged.setdefault(match_key(m), (m, set(), origin))
            got[1].update(sources)
        items = list(merged.values())
        for i, (ma, sa_, oa) in enumerate(items):
            for mb, sb, ob in items[i + 1:]:
                if sa_ != sb and may_overlap(ma, mb):
                    problems.append((oa, f"match {ma.name!r} overlaps {ob} match {mb.name!r} on port {port} of service "
                                         f"account {ns}/{sa} with different sources; OSM's Envoy takes the first "
                                         f"matching route, so this cannot be expressed exactly: make the matches "
                                         f"disjoint or give them the same sources"))


def policy_objects(spec, model: TrafficModel, cluster: str) -> list[dict]:
    """TrafficTargets, HTTPRouteGroups, TCPRoutes, TrafficSplits (v1alpha2) and per-service
    resilience for ``cluster``. Raises :class:`TranslationError` for what OSM cannot express."""
    problems: list[Problem] = []
    for t in model.policies.targets:
        if t.destination_port is not None:
            problems.append((t.origin, f"destination port {t.destination_port}: OSM serves TrafficTarget only at "
                                       f"v1alpha3, which has no destination port; drop the port and restrict the "
                                       f"rule with a TCPRoute's ports instead"))
    groups: dict[tuple[str, str], list[Authorization]] = {}
    for a in model.authorizations:
        groups.setdefault((a.origin, a.name), []).append(a)
    routes: dict = {}
    objects: list[dict] = []
    for key in sorted(groups):
        auths = groups[key]
        if cluster in {c for a in auths for c in a.destination.clusters}:
            objects += _target_objects(spec, auths, routes, problems)
    _check_routes(routes, problems)
    for s in model.routes:
        if cluster in s.clusters:
            objects.append(k8s_object(SPLIT, "TrafficSplit", s.name, s.namespace, spec.name, spec={
                "service": s.service, "backends": [{"service": b, "weight": w} for b, w in s.backends]}))
    if problems:
        raise TranslationError(sorted(set(problems)))
    return objects + resilience.osm_objects(spec, model, cluster)
