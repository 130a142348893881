"""Istio: control plane (Helm releases and mesh-wide objects) and the translation of the
mesh-neutral traffic model into Istio policy, for the sidecar and ambient data planes.

Upstream behaviour this follows:
- install order and values: ../shared/charts/istiod/INSTALL-FACTS.md (Istio 1.30 Helm charts);
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

from .clouds import load_balancer_annotations
from .errors import Problem, TranslationError
from .gamma import Authorization, TrafficModel, WeightedRoute
from .meta import k8s_object

REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
SYSTEM_NAMESPACE = "istio-system"
SHARED_MESH_CONFIG = "istio-mesh-components"
"""ConfigMap istiod merges under its own mesh config (istiod env SHARED_MESH_CONFIG)."""
WAYPOINT = "waypoint"
SECURITY = "security.istio.io/v1"
NETWORKING = "networking.istio.io/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"


# ---------------------------------------------------------------------------------------------
# exact matching: SMI regexes -> Istio's exact / prefix / suffix / presence strings

_META = set(".^$*+?()[]{}|\\")
_ANY = object()


def istio_match(regex: str) -> str | None:
    """Translate a full-match regex into an Istio string match, exactly or not at all.

    Returns ``"x"`` (exact), ``"x*"`` (prefix), ``"*x"`` (suffix) or ``None`` (matches anything:
    ``.*``). Raises ``ValueError`` when no Istio string match admits exactly the same strings.
    Escaped metacharacters (``\\.``) are literals; ``^`` and ``$`` anchors are accepted (SMI
    regexes are matched against the whole path, as Envoy's ``safe_regex`` does).
    """
    s = regex[1:] if regex.startswith("^") else regex
    if s.endswith("$") and not s.endswith("\\$"):
        s = s[:-1]
    tokens: list = []
    literal: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and (s[i + 1] in _META or s[i + 1] in "/-_~:@&=,;'\"!%#<> "):
            literal.append(s[i + 1])
            i += 2
        elif c == "." and s[i + 1:i + 2] == "*":
            if literal:
                tokens.append("".join(literal))
                literal = []
            if not tokens or tokens[-1] is not _ANY:
                tokens.append(_ANY)
            i += 2
        elif c in _META:
            raise ValueError(f"{regex!r} uses the regex construct {c!r}")
        else:
            literal.append(c)
            i += 1
    if literal:
        tokens.append("".join(literal))
    if tokens == [_ANY]:
        return None
    if len(tokens) == 1 and tokens[0] is not _ANY:
        return tokens[0]
    if len(tokens) == 2 and tokens[0] is not _ANY and tokens[1] is _ANY:
        return tokens[0] + "*"
    if len(tokens) == 2 and tokens[0] is _ANY and tokens[1] is not _ANY:
        return "*" + tokens[1]
    raise ValueError(f"{regex!r} is neither an exact string, a prefix nor a suffix")


def principal(trust_domain: str, namespace: str, service_account: str) -> str:
    """Istio principal of a workload identity: ``<trust-domain>/ns/<ns>/sa/<sa>``."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


# ---------------------------------------------------------------------------------------------
# control plane


def needs_waypoint(spec, model: TrafficModel) -> set[str]:
    """Namespaces that need a waypoint (ambient only): those with an L7 authorization or a split."""
    if spec.backend.istio.data_plane != "ambient":
        return set()
    return ({a.destination.namespace for a in model.authorizations if a.http}
            | {r.namespace for r in model.routes})


def is_multi_network(spec) -> bool:
    return len({spec.network_of(c) for c in spec.clusters}) > 1


def control_plane(spec, cluster, *, ca_values: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Objects and Helm releases of the Istio control plane in ``cluster``.

    Returns ``(objects, releases)``; releases are dicts ``{name, namespace, repository, chart,
    version, values, depends_on}`` in install order (base -> istiod -> cni -> ztunnel -> gateways).
    ``ca_values`` maps chart name to values from the CA (e.g. ``ISTIO_MULTIROOT_MESH``).
    """
    mesh, opts = spec.name, spec.backend.istio
    ambient = opts.data_plane == "ambient"
    version = spec.backend.chart_version
    network = spec.network_of(cluster)
    rev = {"revision": opts.revision} if opts.revision else {}
    ca_values = ca_values or {}
    objects = [
        k8s_object("v1", "Namespace", SYSTEM_NAMESPACE, None, mesh,
                   labels={"topology.istio.io/network": network}),
        k8s_object("v1", "ConfigMap", SHARED_MESH_CONFIG, SYSTEM_NAMESPACE, mesh,
                   data={"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}),
        k8s_object(SECURITY, "PeerAuthentication", "default", SYSTEM_NAMESPACE, mesh,
                   spec={"mtls": {"mode": "STRICT"}}),
    ]

    def release(name, chart, values, depends_on=(), namespace=SYSTEM_NAMESPACE):
        merged = _merge(values, ca_values.get(chart, {}))
        return {"name": name, "namespace": namespace, "repository": REPOSITORY, "chart": chart,
                "version": version, "values": merged, "depends_on": list(depends_on)}

    base_values = {"defaultRevision": opts.revision} if opts.revision else {}
    istiod_values: dict = {
        **rev,
        "global": {"meshID": mesh, "multiCluster": {"clusterName": cluster.name}, "network": network},
        "env": {"SHARED_MESH_CONFIG": SHARED_MESH_CONFIG},
    }
    if spec.trust_domain != "cluster.local":
        # the chart's documented API ("meshConfig.foo becomes the API", istiod configmap.yaml)
        istiod_values["meshConfig"] = {"trustDomain": spec.trust_domain}
    if ambient:
        istiod_values["profile"] = "ambient"
        if is_multi_network(spec):
            istiod_values["env"]["AMBIENT_ENABLE_MULTI_NETWORK"] = "true"
    releases = [release("istio-base", "base", base_values),
                release("istiod", "istiod", istiod_values, ["istio-base"])]
    if ambient:
        releases.append(release("istio-cni", "cni", {**rev, "profile": "ambient"}, ["istiod"]))
        releases.append(release("ztunnel", "ztunnel", {**rev, "multiCluster": {"clusterName": cluster.name},
                                                       "network": network}, ["istio-cni"]))
    if is_multi_network(spec) and not ambient:
        objects.append(k8s_object(NETWORKING, "Gateway", "cross-network-gateway", SYSTEM_NAMESPACE, mesh, spec={
            "selector": {"istio": "eastwestgateway"},
            "servers": [{"port": {"number": 15443, "name": "tls", "protocol": "TLS"},
                         "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": ["*.local"]}]}))
        releases.append(release("istio-eastwestgateway", "gateway", {
            # the chart labels the pods istio=eastwestgateway (release name minus "istio-") and,
            # with networkGateway, topology.istio.io/network=<network>
            **rev,
            "networkGateway": network,
            "service": {"annotations": load_balancer_annotations(cluster.cloud, internal=cluster.internal_load_balancers)},
        }, ["istiod"]))
    elif is_multi_network(spec):
        # ambient multi-network: an east-west Gateway API gateway (HBONE on 15008)
        objects.append(k8s_object(GATEWAY_API, "Gateway", "istio-eastwestgateway", SYSTEM_NAMESPACE, mesh,
                                  labels={"topology.istio.io/network": network}, spec={
                                      "gatewayClassName": "istio-east-west",
                                      "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE",
                                                     "tls": {"mode": "Terminate", "options": {
                                                         "gateway.istio.io/tls-terminate-mode": "ISTIO_MUTUAL"}}}]}))
    return objects, releases


def namespace_labels(spec, namespace: str, waypoints: set[str]) -> dict[str, str]:
    """Labels that enrol an application namespace in the data plane (and its waypoint)."""
    opts = spec.backend.istio
    if opts.data_plane == "ambient":
        labels = {"istio.io/dataplane-mode": "ambient"}
        if namespace in waypoints:
            labels.update({"istio.io/use-waypoint": WAYPOINT, "istio.io/ingress-use-waypoint": "true"})
        return labels
    if opts.revision:
        return {"istio.io/rev": opts.revision}
    return {"istio-injection": "enabled"}


# ---------------------------------------------------------------------------------------------
# traffic policy


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
        try:
            rules = _rules(td, a)
        except ValueError as e:
            problems.append((a.origin, str(e)))
            continue
        via_waypoint = a.destination.namespace in waypoints
        objects.append(k8s_object(SECURITY, "AuthorizationPolicy", f"{a.name}-{a.destination.name}",
                                  a.destination.namespace, mesh,
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
    for r in model.routes:
        if cluster in r.clusters:
            objects += split_routes(spec, r)
    if problems:
        raise TranslationError(problems)
    return objects


def _target(w, via_waypoint: bool) -> dict:
    if via_waypoint:
        return {"targetRefs": [{"group": "", "kind": "Service", "name": w.name}]}
    return {"selector": {"matchLabels": dict(w.pod_labels)}}


def _rules(trust_domain: str, a: Authorization) -> list[dict]:
    sources = [{"source": {"principals": sorted(principal(trust_domain, ns, sa) for ns, sa in a.sources)}}]
    target_ports = [str(a.destination.target_port(p)) for p in a.ports]
    rules = []
    for origin, m in a.http:
        op: dict = {}
        if target_ports:
            op["ports"] = target_ports
        if not m.any_method:
            op["methods"] = sorted(set(m.methods))
        when = []
        try:
            if m.path_regex is not None:
                path = istio_match(m.path_regex)
                if path is not None:
                    op["paths"] = [path]
            for header, value in m.headers:
                match = istio_match(value)
                when.append({"key": f"request.headers[{header}]", "values": [match if match is not None else "*"]})
        except ValueError as e:
            raise ValueError(f"{origin}: {e}; Istio AuthorizationPolicy matches paths and header values only "
                             f"exactly ('/a'), by prefix ('/a.*') or by suffix ('.*a'): rewrite the regex as "
                             f"one of those, or split it into several matches") from None
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


def split_routes(spec, r: WeightedRoute) -> list[dict]:
    """A GAMMA HTTPRoute per HTTP port of the apex service, weighted across the backends."""
    out = []
    for port in r.ports:
        name = r.name if len(r.ports) == 1 else f"{r.name}-{port}"
        out.append(k8s_object(GATEWAY_API, "HTTPRoute", name, r.namespace, spec.name, spec={
            "parentRefs": [{"group": "", "kind": "Service", "name": r.service, "port": port}],
            "rules": [{"backendRefs": [{"name": b, "port": port, "weight": w} for b, w in r.backends]}]}))
    return out


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
