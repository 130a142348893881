"""Istio policy: the mesh-neutral traffic model (``gamma``) translated into Istio objects, exactly
or not at all, for the sidecar and ambient data planes.

Upstream behaviour this follows:
- AuthorizationPolicy: https://istio.io/latest/docs/reference/config/security/authorization-policy/
  (ALLOW policies make a workload default-deny; paths and header values match exactly, by prefix
  ``x*``, by suffix ``*x`` or by presence ``*``, never by regex);
- principals ``<trust-domain>/ns/<namespace>/sa/<service-account>``;
- ambient: L7 policy is enforced by a waypoint (``targetRefs`` to the Service), L4 policy by
  ztunnel (``selector``); https://istio.io/latest/docs/ambient/usage/l7-features/ ;
- GAMMA traffic splitting: Gateway API HTTPRoute with a Service parent,
  https://istio.io/latest/docs/tasks/traffic-management/traffic-shifting/ .
"""
from __future__ import annotations

from .errors import Problem, TranslationError
from . import gamma, resilience
from .gamma import Authorization, TrafficModel
from .istio import GATEWAY_API, SECURITY, WAYPOINT
from .meta import k8s_object
from .smi import literal_prefix, regex_shape

APPROXIMATED = "mesh-components.io/approximated"
"""Annotation listing the approximations a user accepted on purpose for this object."""


# ---------------------------------------------------------------------------------------------
# exact matching: SMI regexes -> Istio's exact / prefix / suffix / presence strings

def istio_match(regex: str) -> str | None:
    """Translate a full-match regex into an Istio string match, exactly or not at all.

    Returns ``"x"`` (exact), ``"x*"`` (prefix), ``"*x"`` (suffix) or ``None`` (matches anything:
    ``.*``). Raises ``ValueError`` when no Istio string match admits exactly the same strings
    (shapes: :func:`mesh_components.smi.regex_shape`).
    """
    kind, literal = regex_shape(regex)
    if kind == "any":
        return None
    if kind == "exact":
        return literal
    if kind == "prefix":
        return literal + "*"
    if kind == "suffix":
        return "*" + literal
    raise ValueError(f"{regex!r} is neither an exact string, a prefix nor a suffix")


def principal(trust_domain: str, namespace: str, service_account: str) -> str:
    """Istio principal of a workload identity: ``<trust-domain>/ns/<ns>/sa/<sa>``."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


def needs_waypoint(spec, model: TrafficModel) -> set[str]:
    """Namespaces that need a waypoint (ambient only): those with an L7 authorization or a split."""
    if spec.backend.istio.data_plane != "ambient":
        return set()
    return ({a.destination.namespace for a in model.authorizations if a.http}
            | {r.namespace for r in model.routes})


# ---------------------------------------------------------------------------------------------
# traffic policy


def namespace_labels(spec, model: TrafficModel, namespace: str) -> dict[str, str]:
    """Policy labels of an application namespace: its waypoint, when it needs one (ambient)."""
    if namespace in needs_waypoint(spec, model):
        return {"istio.io/use-waypoint": WAYPOINT, "istio.io/ingress-use-waypoint": "true"}
    return {}


def policy_objects(spec, model: TrafficModel, cluster: str) -> list[dict]:
    """AuthorizationPolicies, waypoints and GAMMA HTTPRoutes for ``cluster``.

    Raises :class:`TranslationError` listing every match Istio cannot express exactly.
    """
    mesh, td = spec.name, spec.trust_domain
    waypoints = needs_waypoint(spec, model)
    objects: list[dict] = []
    problems: list[Problem] = []
    for ns in sorted(waypoints):
        if cluster in spec.namespace_clusters(ns):
            objects.append(k8s_object(GATEWAY_API, "Gateway", WAYPOINT, ns, mesh,
                                      labels={"istio.io/waypoint-for": "service"},
                                      spec={"gatewayClassName": "istio-waypoint",
                                            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}))
    guarded = set()
    for a in model.authorizations:
        if cluster not in a.destination.clusters:
            continue
        notes: list[str] = []
        try:
            rules = _rules(td, a, notes)
        except ValueError as e:
            problems.append((a.origin, str(e)))
            continue
        via_waypoint = a.destination.namespace in waypoints
        objects.append(k8s_object(SECURITY, "AuthorizationPolicy", f"{a.name}-{a.destination.name}",
                                  a.destination.namespace, mesh,
                                  annotations={APPROXIMATED: "; ".join(notes)} if notes else None,
                                  spec={**_target(a.destination, via_waypoint), "action": "ALLOW", "rules": rules}))
        if via_waypoint and a.destination.name not in guarded:
            # ztunnel admits only the waypoint, so nothing reaches the pods around the policy
            guarded.add(a.destination.name)
            objects.append(k8s_object(SECURITY, "AuthorizationPolicy", f"{a.destination.name}-via-waypoint",
                                      a.destination.namespace, mesh, spec={
                                          "selector": {"matchLabels": dict(a.destination.pod_labels)},
                                          "action": "ALLOW",
                                          "rules": [{"from": [{"source": {"principals": [
                                              principal(td, a.destination.namespace, WAYPOINT)]}}]}]}))
    routed = resilience.istio_virtual_services(spec)
    for r in model.routes:
        if cluster in r.clusters and (r.namespace, r.service) not in routed:
            objects += gamma.split_routes(spec.name, r)
    objects += resilience.istio_objects(spec, model, cluster)
    if problems:
        raise TranslationError(problems)
    return objects


def _target(w, via_waypoint: bool) -> dict:
    if via_waypoint:
        return {"targetRefs": [{"group": "", "kind": "Service", "name": w.name}]}
    return {"selector": {"matchLabels": dict(w.pod_labels)}}


def _rules(trust_domain: str, a: Authorization, notes: list[str]) -> list[dict]:
    """Istio rules of one authorization; accepted approximations are appended to ``notes``. No
    sources, or nothing to match, gives no rules: an ALLOW policy without rules admits nothing
    (an empty ``principals`` list would instead admit every caller)."""
    if not a.sources:
        return []
    sources = [{"source": {"principals": sorted(principal(trust_domain, ns, sa) for ns, sa in a.sources)}}]
    target_ports = [str(a.destination.target_port(p)) for p in a.ports]
    rules = []
    for origin, m in a.http if target_ports else ():  # HTTP matches on no HTTP port admit nothing
        op: dict = {}
        if target_ports:
            op["ports"] = target_ports
        if not m.any_method:
            op["methods"] = sorted(set(m.methods))
        when = []
        try:
            if m.path_regex is not None and m.approximate == "prefix" and regex_shape(m.path_regex)[0] == "regex":
                # accepted on purpose by the user: wider, and said so on the object
                op["paths"] = [literal_prefix(m.path_regex) + "*"]
                notes.append(f"{origin}: pathRegex {m.path_regex!r} as prefix {op['paths'][0]!r}")
            elif m.path_regex is not None:
                path = istio_match(m.path_regex)
                if path is not None:
                    op["paths"] = [path]
            for header, value in m.headers:
                match = istio_match(value)
                when.append({"key": f"request.headers[{header}]", "values": [match if match is not None else "*"]})
        except ValueError as e:
            raise ValueError(f"{origin}: {e}; Istio AuthorizationPolicy matches paths and header values only "
                             f"exactly ('/a'), by prefix ('/a.*') or by suffix ('.*a'): rewrite the regex as "
                             f"one of those, split it into several matches, or accept its literal prefix on "
                             f"purpose with approximate: prefix") from None
        rule: dict = {"from": sources}
        if op:
            rule["to"] = [{"operation": op}]
        if when:
            rule["when"] = when
        rules.append(rule)
    if a.tcp_ports is not None:
        rule = {"from": sources}
        if a.tcp_ports:
            rule["to"] = [{"operation": {"ports": [str(a.destination.target_port(p)) for p in a.tcp_ports]}}]
        rules.append(rule)
    return rules
