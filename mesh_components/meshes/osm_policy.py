"""OSM policy: SMI rendered for Open Service Mesh v1.2, shaped so that OSM admits exactly what
SMI admits.

OSM v1.2.4 (archived) serves TrafficTarget ``access.smi-spec.io/v1alpha3``, HTTPRouteGroup and
TCPRoute ``specs.smi-spec.io/v1alpha4`` and TrafficSplit only at ``split.smi-spec.io/v1alpha2``
(../shared/crds/osm). It reads them its own way (openservicemesh/osm v1.2.4: pkg/catalog
inbound_traffic_policies.go and traffictarget.go, pkg/envoy/rds, pkg/envoy/lds/rbac.go), so the
documents are rebuilt from the mesh-neutral model rather than copied:

- an HTTPRouteGroup rule without ``matches`` yields no route in OSM: every rule names its matches
  (by content: matches of different route groups that share a name get distinct names);
- TCPRoute ports are an L4 RBAC gate on every inbound filter chain, HTTP ones included
  (pkg/envoy/lds/inmesh.go, rbac.go), and HTTP routes come from HTTPRouteGroups only: an SMI
  TCP-only rule on an HTTP port becomes a catch-all HTTP route (``pathRegex: .*``) for its
  sources, and HTTP matches are scoped to ports by the TCPRoute (SMI's own reading, see gamma);
- a TrafficTarget without TCPRoute ports opens EVERY port of the service account, and a TCPRoute
  with empty ``ports`` adds none: every rendered TrafficTarget has a TCPRoute listing exactly the
  ports it opens (HTTP ports for its matches, TCP ports for its TCP rules);
- OSM grants per service account, not per port: every route of the account serves on each of its
  HTTP ports, so matches a source may use on some ports only, while another TrafficTarget opens
  further ports to it, are refused;
- Envoy takes the first matching route and only identical routes merge their sources: matches of
  different TrafficTargets that may select the same request with different sources are refused;
- an SMI v1alpha1/v1alpha2 ``destination.port`` (v1alpha3 has none) is the TCPRoute's ports;
- with permissive traffic policy mode off (the control plane's setting), OSM denies every
  destination without a TrafficTarget, not only those with one: stricter, never wider.
Docs: https://release-v1-2.docs.openservicemesh.io/docs/guides/traffic_management/
"""
from __future__ import annotations

from dataclasses import replace

from ..core import gamma, resilience
from ..spec.errors import Problem, TranslationError
from ..core.gamma import Authorization, TrafficModel
from ..core.meta import k8s_object
from ..spec.smi import HTTPMatch, match_key, may_overlap, re2_compile

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


ENVOY_RE2_MAX_PROGRAM_SIZE = 100
"""Envoy's default ``re2.max_program_size.error_level``: a larger RE2 program fails to compile and
the route configuration is NACKed (https://www.envoyproxy.io/docs/envoy/v1.22.2/api-v3/type/matcher/v3/regex.proto ,
RegexMatcher.GoogleRE2). OSM v1.2.4 runs Envoy v1.22.2 (charts/osm/values.yaml ``sidecarImage``)
and sets no other limit (no ``max_program_size`` anywhere in its pkg/)."""


def envoy_regex_problem(regex: str) -> str | None:
    """Why OSM's Envoy would reject ``regex`` (an HTTPRouteGroup path or header regex, used verbatim
    as ``safe_regex``: pkg/envoy/rds/route/route_config.go), or None."""
    compiled = re2_compile(regex)
    if compiled is not None and compiled.programsize > ENVOY_RE2_MAX_PROGRAM_SIZE:
        return (f"regex {regex!r} compiles to an RE2 program of size {compiled.programsize}, over the "
                f"{ENVOY_RE2_MAX_PROGRAM_SIZE} OSM's Envoy accepts (re2.max_program_size.error_level), so Envoy "
                f"would reject the routes; simplify it (e.g. '+' or '*' instead of counted repetition '{{1,20}}')")
    return None


def _target_objects(spec, auths: list[Authorization], routes: dict, problems: list[Problem],
                    l4: dict | None = None) -> list[dict]:
    """The documents of one SMI TrafficTarget (``auths``: its authorizations, one per destination
    service running as its service account); records HTTP routes per destination port in ``routes``
    and, in ``l4`` (``(ns, sa) -> {source: target ports}``), the ports its TCPRoute opens per source.

    OSM checks a TrafficTarget twice (v1.2.4): an L4 RBAC filter on every inbound filter chain, HTTP
    ones included, admits its sources on its TCPRoute ports, or on every port without TCPRoute
    ports (pkg/envoy/lds/inmesh.go ``getInboundHTTPFilters``/``getInboundTCPFilters``,
    pkg/envoy/lds/rbac.go ``buildRBACPolicyFromTrafficTarget``); then, on HTTP ports, the route's
    RBAC admits the sources of the HTTPRouteGroup matches (pkg/catalog/inbound_traffic_policies.go).
    So the TCPRoute always lists exactly the ports this target opens: its HTTP ports for the
    matches (and catch-all routes of whole-port TCP rules) and its TCP ports.
    """
    first = auths[0]
    ns, sa, name, mesh = first.destination.namespace, first.destination.service_account, first.name, spec.name
    sources = sorted(first.sources)
    if not sources:
        return []  # OSM reads a TrafficTarget without sources as "any source"; SMI admits nobody
    # matches by content, never by name: two route groups may both call a match "read" (issue 10.6)
    matches: dict[tuple, HTTPMatch] = {}

    def add(m: HTTPMatch, origin: str | None = None) -> None:
        if match_key(m) not in matches:
            for rx in [m.path_regex] + [v for _, v in m.headers]:
                why = envoy_regex_problem(rx) if rx is not None else None
                if why:
                    problems.append((first.origin, f"{origin}: {why}" if origin else why))
            used, unique, i = {x.name for x in matches.values()}, m.name, 2
            while unique in used:
                unique, i = f"{m.name}-{i}", i + 1
            matches[match_key(m)] = replace(m, name=unique)

    opened: set[int] = set()
    for a in auths:
        w = a.destination
        proto = {p: (t, pr) for p, t, pr, _ in w.ports}
        for port in a.ports:
            target, pr = proto[port]
            if pr in HTTP_PROTOCOLS and a.http:
                opened.add(target)
                for origin, m in a.http:
                    add(m, origin)
                    routes.setdefault((ns, sa, target), []).append((m, frozenset(sources), a.origin))
        if a.tcp_ports is not None:
            for port in a.tcp_ports or proto:
                target, pr = proto[port]
                opened.add(target)
                if pr in HTTP_PROTOCOLS:
                    add(CATCH_ALL)
                    routes.setdefault((ns, sa, target), []).append((CATCH_ALL, frozenset(sources), a.origin))
    if not opened:
        return []  # the target admits nothing; OSM denies the destination anyway
    if l4 is not None:
        for s in sources:
            l4.setdefault((ns, sa), {}).setdefault(s, set()).update(opened)
    objects, rules = [], []
    if matches:
        objects.append(k8s_object(SPECS, "HTTPRouteGroup", name, ns, mesh,
                                  spec={"matches": [_match_doc(m) for m in matches.values()]}))
        rules.append({"kind": "HTTPRouteGroup", "name": name, "matches": [m.name for m in matches.values()]})
    # without TCPRoute ports OSM would open EVERY port of the service account to these sources
    objects.append(k8s_object(SPECS, "TCPRoute", name, ns, mesh, spec={"matches": {"ports": sorted(opened)}}))
    rules.append({"kind": "TCPRoute", "name": name})
    objects.append(k8s_object(ACCESS, "TrafficTarget", name, ns, mesh, spec={
        "destination": {"kind": "ServiceAccount", "name": sa, "namespace": ns},
        "rules": rules,
        "sources": [{"kind": "ServiceAccount", "name": s, "namespace": n} for n, s in sources]}))
    return objects


def _check_routes(routes: dict, problems: list[Problem]) -> None:
    """Refuse routes of one service account that may select the same request with different
    sources (identical routes merge their sources in OSM, so they are fine). OSM builds the routes
    of every TrafficTarget of a service account into the route table of each of its HTTP ports
    (pkg/catalog/inbound_traffic_policies.go ``buildInboundHTTPPolicyFromTrafficTarget``), so
    routes meant for different ports still meet."""
    by_account: dict[tuple[str, str], list] = {}
    for (ns, sa, _port), entries in sorted(routes.items()):
        by_account.setdefault((ns, sa), []).extend(entries)
    for (ns, sa), entries in sorted(by_account.items()):
        merged: dict[tuple, tuple[HTTPMatch, set, str]] = {}
        for m, sources, origin in entries:
            got = merged.setdefault(match_key(m), (m, set(), origin))
            got[1].update(sources)
        items = list(merged.values())
        for i, (ma, sa_, oa) in enumerate(items):
            for mb, sb, ob in items[i + 1:]:
                if sa_ != sb and may_overlap(ma, mb):
                    problems.append((oa, f"match {ma.name!r} overlaps {ob} match {mb.name!r} on service account "
                                         f"{ns}/{sa} with different sources; OSM's Envoy takes the first matching "
                                         f"route, so this cannot be expressed exactly: make the matches disjoint or "
                                         f"give them the same sources"))


def _check_port_scope(spec, routes: dict, l4: dict, problems: list[Problem]) -> None:
    """Refuse what OSM would widen across ports: it grants per service account, not per port. A
    source's HTTP routes serve on every HTTP port of the service account whose L4 RBAC admits the
    source through ANY of its TrafficTargets (pkg/envoy/lds/rbac.go: one RBAC policy per
    TrafficTarget; pkg/catalog/inbound_traffic_policies.go: one route table per service account),
    so each of a source's matches must be allowed on every HTTP port some TCPRoute opens to it."""
    http_ports: dict[tuple[str, str], set[int]] = {}   # every HTTP target port of the account's services
    for w in gamma.workloads(spec).values():
        http_ports.setdefault((w.namespace, w.service_account), set()).update(
            t for _, t, pr, _ in w.ports if pr in HTTP_PROTOCOLS)
    allowed: dict[tuple, set[int]] = {}   # (ns, sa, source, match key) -> ports SMI allows it on
    origin_of: dict[tuple, tuple[str, HTTPMatch]] = {}
    for (ns, sa, port), entries in routes.items():
        for m, sources, origin in entries:
            for s in sources:
                allowed.setdefault((ns, sa, s, match_key(m)), set()).add(port)
                origin_of.setdefault((ns, sa, s, match_key(m)), (origin, m))
    for (ns, sa, s, key), ports in sorted(allowed.items(), key=repr):
        whole = allowed.get((ns, sa, s, match_key(CATCH_ALL)), set())
        reach = l4.get((ns, sa), {}).get(s, set()) & http_ports.get((ns, sa), set())
        wider = sorted(reach - ports - whole)
        if wider:
            origin, m = origin_of[(ns, sa, s, key)]
            problems.append((origin, f"match {m.name!r} admits {s[0]}/{s[1]} on port(s) {sorted(ports)} of service "
                                     f"account {ns}/{sa} only, but OSM grants per service account: its routes serve "
                                     f"every HTTP port, and another TrafficTarget opens port(s) {wider} to that "
                                     f"source, so OSM would admit the match there too; give the source the same "
                                     f"ports in every TrafficTarget of {ns}/{sa}, or run the services as different "
                                     f"service accounts"))


def policy_objects(spec, model: TrafficModel, cluster: str) -> list[dict]:
    """TrafficTargets, HTTPRouteGroups, TCPRoutes, TrafficSplits (v1alpha2) and per-service
    resilience for ``cluster``. Raises :class:`TranslationError` for what OSM cannot express."""
    problems: list[Problem] = []
    # an SMI v1alpha1/v1alpha2 destination.port needs no refusal: OSM serves TrafficTarget only at
    # v1alpha3 (no port), but gamma scopes the authorization to that port and its TCPRoute lists
    # exactly that target port, which OSM's L4 RBAC enforces on HTTP filter chains too (v1.2.4
    # pkg/envoy/lds/inmesh.go getInboundHTTPFilters, rbac.go buildRBACPolicyFromTrafficTarget);
    # _check_port_scope refuses what another TrafficTarget would widen
    groups: dict[tuple[str, str], list[Authorization]] = {}
    for a in model.authorizations:
        groups.setdefault((a.origin, a.name), []).append(a)
    routes: dict = {}
    l4: dict = {}
    objects: list[dict] = []
    for key in sorted(groups):
        auths = groups[key]
        if cluster in {c for a in auths for c in a.destination.clusters}:
            objects += _target_objects(spec, auths, routes, problems, l4)
    _check_routes(routes, problems)
    _check_port_scope(spec, routes, l4, problems)
    for s in model.routes:
        if cluster in s.clusters:
            objects.append(k8s_object(SPLIT, "TrafficSplit", s.name, s.namespace, spec.name, spec={
                "service": s.service, "backends": [{"service": b, "weight": w} for b, w in s.backends]}))
    if problems:
        raise TranslationError(sorted(set(problems)))
    return objects + resilience.osm_objects(spec, model, cluster)
