"""Istio policy: the mesh-neutral traffic model (``gamma``) translated into Istio objects, exactly
or not at all, for the sidecar and ambient data planes.

Upstream behaviour this follows:
- AuthorizationPolicy: https://istio.io/latest/docs/reference/config/security/authorization-policy/
  (ALLOW policies make a workload default-deny; paths and header values match exactly, by prefix
  ``x*``, by suffix ``*x`` or by presence ``*``, never by regex; ``*``, and in paths ``{``/``}``
  (1.22+ URI templates), cannot be escaped, so SMI literal text holding them is refused:
  :func:`istio_literal_problem`); a TCPRoute beside HTTP matches only scopes them to its ports
  (``gamma``), so such a rule gets no port-wide L4 rule;
- principals ``<trust-domain>/ns/<namespace>/sa/<service-account>``;
- ambient: L7 policy is enforced by a waypoint (``targetRefs`` to the Service), L4 policy by
  ztunnel (``selector``); https://istio.io/latest/docs/ambient/usage/l7-features/ . A policy
  names every Service of its destination (the per-version ones too, :func:`service_refs`), each
  waypoint denies by default (:func:`waypoint_default_deny`), so a Service nobody declared is
  closed, and services without access rules stay open there (:func:`_unrestricted_services`);
- GAMMA traffic splitting: Gateway API HTTPRoute with a Service parent,
  https://istio.io/latest/docs/tasks/traffic-management/traffic-shifting/ .
"""
from __future__ import annotations

from ..spec.errors import Problem, TranslationError
from ..core import gamma, resilience, spire
from ..spec import names
from ..core.gamma import Authorization, TrafficModel
from .istio import GATEWAY_API, SECURITY, WAYPOINT
from ..core.meta import k8s_object
from ..spec.smi import literal_prefix, regex_shape

APPROXIMATED = "mesh-components.io/approximated"
"""Annotation listing the approximations a user accepted on purpose for this object."""


# ---------------------------------------------------------------------------------------------
# exact matching: SMI regexes -> Istio's exact / prefix / suffix / presence strings

def istio_literal_problem(literal: str, field: str = "path") -> str | None:
    """Why ``literal`` (text an SMI regex requires verbatim) cannot appear in an Istio ``paths``
    (``field="path"``) or header ``values`` (``field="header"``) string, or None.

    Istio gives ``*`` meaning at either end (prefix, suffix, presence) and has no escape for it
    (istio 1.30.3 pilot/pkg/security/authz/matcher/string.go ``StringMatcherWithPrefix``,
    matcher/header.go ``HeaderMatcher``); in paths ``{*}``/``{**}`` are URI templates and any other
    ``{`` or ``}`` fails validation (pkg/config/security/security.go ``ContainsPathTemplate``,
    ``CheckValidPathTemplate``); an empty value fails validation (``CheckEmptyValues``), which
    would leave the workload with no ALLOW policy at all. Header values take ``{``/``}`` verbatim
    (``HeaderMatcher`` builds an exact, prefix or suffix match, no template).
    """
    reserved = "*{}" if field == "path" else "*"
    bad = sorted({c for c in literal if c in reserved})
    if bad:
        return (f"its literal text {literal!r} contains {' '.join(repr(c) for c in bad)}, which Istio reads as a "
                f"wildcard{' or URI template' if field == 'path' else ''} with no way to escape it")
    return None


def istio_match(regex: str, field: str = "path") -> str | None:
    """Translate a full-match regex into an Istio string match, exactly or not at all.

    Returns ``"x"`` (exact), ``"x*"`` (prefix), ``"*x"`` (suffix) or ``None`` (matches anything:
    ``.*``). Raises ``ValueError`` when no Istio string match admits exactly the same strings
    (shapes: :func:`mesh_components.spec.smi.regex_shape`): also when the literal text holds a
    character Istio gives meaning (:func:`istio_literal_problem`, ``field`` ``path`` or
    ``header``) or is empty.
    """
    kind, literal = regex_shape(regex)
    if kind == "any":
        return None
    problem = istio_literal_problem(literal, field) if literal is not None else None
    if problem:
        raise ValueError(f"{regex!r}: {problem}")
    if kind == "exact":
        if literal == "":
            raise ValueError(f"{regex!r} admits only the empty string, and Istio rejects an empty value")
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
    # AuthorizationPolicy and split HTTPRoute names join user names ("a" + "b-c" = "a-b" + "c"):
    # names.rename keeps them readable where unique, else hashes every member of a colliding group
    named: list[tuple] = []
    for ns in sorted(waypoints):
        if cluster in spec.namespace_clusters(ns):
            objects.append(k8s_object(GATEWAY_API, "Gateway", WAYPOINT, ns, mesh,
                                      labels={"istio.io/waypoint-for": "service"},
                                      spec={"gatewayClassName": "istio-waypoint",
                                            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}))
            objects.append(waypoint_default_deny(mesh, ns, WAYPOINT))
            named.append((objects[-1], ("waypoint-default-deny",), "mesh.backend.istio.dataPlane"))
            unrestricted = _unrestricted_services(spec, model, ns, cluster)
            objects += unrestricted
            # fixed: the guardrails know this policy by its name, <service>-unrestricted
            named += [(o, ("unrestricted", o["spec"]["targetRefs"][0]["name"]), "mesh.services", True)
                      for o in unrestricted]
    guards: dict[tuple[str, str], dict] = {}
    for a in model.authorizations:
        if cluster not in a.destination.clusters:
            continue
        notes: list[str] = []
        via_waypoint = a.destination.namespace in waypoints
        if via_waypoint and a.http and _headless(spec, a.destination):
            problems.append((a.origin, _HEADLESS_L7.format(f"{a.destination.namespace}/{a.destination.name}",
                                                           "these HTTP matches would never be checked and ztunnel "
                                                           "would refuse every call", "use TCP rules (a TCPRoute) "
                                                           "for it")))
            continue
        try:
            rules = _rules(spire.trust_domains(spec), a, notes, via_waypoint)  # several: federated SPIRE
        except ValueError as e:
            problems.append((a.origin, str(e)))
            continue
        objects.append(k8s_object(SECURITY, "AuthorizationPolicy", f"{a.name}-{a.destination.name}",
                                  a.destination.namespace, mesh,
                                  annotations={APPROXIMATED: "; ".join(notes)} if notes else None,
                                  spec={**_target(spec, a.destination, via_waypoint), "action": "ALLOW",
                                        "rules": rules}))
        identity, fixed = gamma.authorization_identity(a)  # an ingress route's policy keeps the mesh's name
        named.append((objects[-1], identity, a.origin, fixed))
        if via_waypoint:
            key = (a.destination.namespace, a.destination.name)
            if key not in guards:
                # ztunnel admits the waypoint, so nothing reaches the pods around the policy
                guards[key] = k8s_object(SECURITY, "AuthorizationPolicy", f"{a.destination.name}-via-waypoint",
                                         a.destination.namespace, mesh, spec={
                                             "selector": {"matchLabels": dict(a.destination.pod_labels)},
                                             "action": "ALLOW",
                                             "rules": [{"from": [{"source": {"principals": [
                                                 principal(td, a.destination.namespace, WAYPOINT)]}}]}]})
                objects.append(guards[key])
                named.append((guards[key], ("via-waypoint", a.destination.name), a.origin))
            if not a.http and a.tcp_ports is not None:
                # and the sources of an L4-only rule on its pod ports, exact at L4: pod-addressed
                # traffic (a headless Service) never meets a `waypoint-for: service` waypoint
                guards[key]["spec"]["rules"] += _rules(td, a, [], via_waypoint=False)
    routed = resilience.istio_virtual_services(spec)
    for r in model.routes:
        problems += gamma.tcp_split_problems("Istio", r) if cluster in r.clusters else []
        if cluster in r.clusters and r.namespace in waypoints and \
                getattr(spec.services_by_key.get((r.namespace, r.service)), "headless", False):
            problems.append((r.origin, _HEADLESS_L7.format(f"{r.namespace}/{r.service}", "the split would never "
                                                           "apply", "split a Service with a ClusterIP")))
            continue
        if cluster in r.clusters and (r.namespace, r.service) not in routed:
            split = gamma.split_routes(spec.name, r)
            objects += split
            named += [(o, ("split", r.name, o["spec"]["parentRefs"][0]["port"]), r.origin) for o in split]
    objects += resilience.istio_objects(spec, model, cluster)
    if problems:
        raise TranslationError(problems)
    names.rename(named)
    return objects


_HEADLESS_L7 = ("{0} is headless (headless: true): its callers address pods, not the Service, and an ambient "
                "waypoint (istio.io/waypoint-for: service) handles only Service-addressed traffic (istio 1.30.3 "
                "pilot/pkg/serviceregistry/ambient/waypoints.go:166-193: a pod gets a waypoint only if it accepts "
                "workload traffic), so {1}; {2}, give the Service a ClusterIP, or use dataPlane: sidecar")
"""Refusal of L7 policy or a split on a headless Service in ambient mode (format: service, effect, fix)."""


def _headless(spec, w) -> bool:
    return bool(getattr(spec.services_by_key.get((w.namespace, w.name)), "headless", False))


def _target(spec, w, via_waypoint: bool) -> dict:
    if via_waypoint:
        return {"targetRefs": service_refs(spec, w.namespace, w.name)}
    return {"selector": {"matchLabels": dict(w.pod_labels)}}


def service_names(spec, namespace: str, service: str) -> list[str]:
    """Every Service we know to select the pods of spec service ``namespace/service``: the
    application's own Service and the per-version Services ``<service>-<version>`` that
    ``render.version_services`` creates for splits (their selectors add the version labels to the
    service's pod labels, so they select a subset of the same pods)."""
    s = spec.services_by_key.get((namespace, service))
    return [service] + [f"{service}-{v.name}" for v in (s.versions if s else ())]


def service_refs(spec, namespace: str, service: str) -> list[dict]:
    """``targetRefs`` naming every Service of :func:`service_names`.

    At a waypoint a policy attaches only to the Service it names (istio/istio 1.30.3
    ``pilot/pkg/model/policyattachment.go:154-163``: a Service targetRef matches only the chain of
    the Service with that name), and ``istio.io/use-waypoint`` on the namespace sends every
    Service through the waypoint, so a per-version Service left out would reach the policed pods
    unchecked (ztunnel sees only the waypoint's identity)."""
    return [{"group": "", "kind": "Service", "name": n} for n in service_names(spec, namespace, service)]


def waypoint_default_deny(mesh: str, namespace: str, waypoint: str) -> dict:
    """An ALLOW AuthorizationPolicy without rules targeting the waypoint Gateway
    ``namespace/waypoint``: traffic to a Service that no other policy names is denied there.

    Upstream (istio/istio 1.30.3): a Gateway targetRef attaches to every chain of that waypoint
    (``pilot/pkg/model/policyattachment.go:194-197``, matched by the pods'
    ``gateway.networking.k8s.io/gateway-name``), next to the Service-targeted policies of the chain
    (``pilot/pkg/networking/core/listener_waypoint.go:872-879`` and ``networkfilter.go:136-139``
    build authz per Service; ``pilot/pkg/model/authorization.go:84-113`` lists both). All ALLOW
    policies of a chain go into one RBAC ALLOW filter whose policies are alternatives (``pilot/pkg/security/authz/builder/
    builder.go:135,205-299``); a policy without rules adds a policy that never matches (294-299).
    So this denies only what no Service policy allows. It would also act at the HBONE termination
    layer (L4, before any Service policy) if istiod ran with
    ``ENABLE_LAYERED_WAYPOINT_AUTHORIZATION_POLICIES=true`` (``pilot/pkg/features/ambient.go:84``,
    default false, ``listener_waypoint.go:276-280``): we never set it."""
    return k8s_object(SECURITY, "AuthorizationPolicy", f"{waypoint}-default-deny", namespace, mesh, spec={
        "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": waypoint}],
        "action": "ALLOW"})


UNRESTRICTED = "mesh-components.io/unrestricted"
"""Annotation on the policy that keeps a service without access rules open behind a waypoint."""


def _unrestricted_services(spec, model: TrafficModel, namespace: str, cluster: str) -> list[dict]:
    """Per spec service of ``namespace`` (a waypoint namespace) in ``cluster`` that no access rule
    names: an ALLOW policy for any mesh identity on its Services (:func:`service_refs`). The
    waypoint's default deny (:func:`waypoint_default_deny`) would otherwise close it, and a
    destination without authorizations is not restricted (``gamma``). A waypoint receives only
    HBONE, mutual TLS from ztunnel, so every caller there has a principal: ``principals: ["*"]``
    admits every caller, as no policy would."""
    policed = gamma.destinations_with_policy(model)
    out = []
    for s in spec.services:
        if s.namespace != namespace or (s.namespace, s.name) in policed or cluster not in spec.service_clusters(s):
            continue
        out.append(k8s_object(SECURITY, "AuthorizationPolicy", f"{s.name}-unrestricted", namespace, spec.name,
                              annotations={UNRESTRICTED: "no access rule names this service"}, spec={
                                  "targetRefs": service_refs(spec, namespace, s.name), "action": "ALLOW",
                                  "rules": [{"from": [{"source": {"principals": ["*"]}}]}]}))
    return out


def policy_ports(w, ports, via_waypoint: bool) -> list[str]:
    """The ``ports`` values of an Istio rule for service ports ``ports`` of ``w``: the pods' target
    ports on a sidecar, the service ports at a waypoint.

    ``ports`` matches the connection's destination port (Envoy RBAC ``destination_port``, istio
    1.30.3 pilot/pkg/security/authz/model/permission.go:71-76). A sidecar's inbound listener sees the
    pod port. A waypoint builds one chain per Service port, matched on the Service's VIPs and port
    (pilot/pkg/networking/core/listener_waypoint.go:448-470, the chain's port is
    ``TargetPort: uint32(port.Port)``, the service port; :593-606 the VIP range + port matcher), so
    there the destination port is the service port."""
    return [str(p if via_waypoint else w.target_port(p)) for p in ports]


def _rules(trust_domain: str | tuple[str, ...], a: Authorization, notes: list[str], via_waypoint: bool = False) -> list[dict]:
    """Istio rules of one authorization; accepted approximations are appended to ``notes``. No
    sources, or nothing to match, gives no rules: an ALLOW policy without rules admits nothing
    (an empty ``principals`` list would instead admit every caller). Ports: :func:`policy_ports`.

    A TCP rule for every port (a TCPRoute without ports, ``tcp_ports == ()``) lists the service's
    ports: "When matching ports are not specified, the TCP route will match all the ports of a
    Kubernetes service" (smi-spec apis/traffic-specs/v1alpha4/traffic-specs.md:153-154), not every
    port of the pod, which a rule without ``ports`` would admit (an undeclared debug port, say)."""
    if not a.sources:
        return []
    # several trust domains (federated SPIRE, ``core.spire.trust_domains``): the source in each
    domains = (trust_domain,) if isinstance(trust_domain, str) else tuple(trust_domain)
    sources = [{"source": {"principals": sorted(principal(t, ns, sa) for t in domains for ns, sa in a.sources)}}]
    target_ports = policy_ports(a.destination, a.ports, via_waypoint)
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
                problem = istio_literal_problem(literal_prefix(m.path_regex))
                if problem:
                    raise ValueError(f"approximate prefix of {m.path_regex!r}: {problem}")
                op["paths"] = [literal_prefix(m.path_regex) + "*"]
                notes.append(f"{origin}: pathRegex {m.path_regex!r} as prefix {op['paths'][0]!r}")
            elif m.path_regex is not None:
                path = istio_match(m.path_regex)
                if path is not None:
                    op["paths"] = [path]
            for header, value in m.headers:
                match = istio_match(value, "header")
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
        every = tuple(p for p, *_ in a.destination.ports)
        ports = sorted(set(policy_ports(a.destination, a.tcp_ports or every, via_waypoint)), key=int)
        rules.append({"from": sources, "to": [{"operation": {"ports": ports}}]})
    return rules
