"""Egress: what may leave the mesh, from the spec's named external destinations.

Istio (this module's renderer; https://istio.io/latest/docs/tasks/traffic-management/egress/):
- mesh-wide ``outboundTrafficPolicy: REGISTRY_ONLY`` (set by ``istio.control_plane``), so only
  hosts with a ServiceEntry leave the mesh;
- one ``ServiceEntry`` per rule in the ``mesh-egress`` namespace, MESH_EXTERNAL, DNS resolution;
- sidecar mode: the entry is exported only to the source services' namespaces, and every other
  service of those namespaces gets a ``Sidecar`` that hides external entries, so exactly the listed
  services see the host;
- ambient mode: the entry is bound to an egress waypoint (``istio.io/use-waypoint``) and an
  ``AuthorizationPolicy`` on it admits exactly the source identities.

Linkerd (https://linkerd.io/2/features/egress/): an ``EgressNetwork`` with ``trafficPolicy: Deny``
in each source namespace (it governs that namespace's clients) and a ``TLSRoute`` (by SNI) or
``HTTPRoute`` (by Host) per destination back to it. It cannot tell clients of one namespace apart,
so a namespace holding other services is refused unless the rule accepts
``approximate: namespace``; opaque TCP cannot be limited by host name and is refused.

OSM (https://release-v1-2.docs.openservicemesh.io/docs/guides/traffic_management/egress/): one
``Egress`` policy per rule and source namespace naming exactly the source service accounts (global
egress off in the control plane).
"""
from __future__ import annotations

from .errors import TranslationError
from .istio import GATEWAY_API, NETWORKING, SECURITY
from .istio_policy import principal
from .meta import k8s_object

EGRESS_NAMESPACE = "mesh-egress"
EGRESS_WAYPOINT = "egress-waypoint"
ALLOW_WILDCARD = "mesh-components.io/allow-wildcard"
"""Annotation marking a wildcard host as allowed on purpose (``allowWildcard``); guardrails read it."""
_ISTIO_PROTOCOL = {"http": "HTTP", "https": "TLS", "tls": "TLS", "tcp": "TCP"}


def egress_clusters(spec, rule) -> list[str]:
    """Clusters where any source service of ``rule`` runs (where its egress must be declared)."""
    by_key = spec.services_by_key
    clusters = {c for ref in rule.sources for c in spec.service_clusters(by_key[(ref.namespace, ref.service)])}
    return [c for c in spec.cluster_names() if c in clusters]


def egress_objects(spec, cluster: str) -> list[dict]:
    """The egress objects of ``cluster`` in the spec's mesh (see the module docstring).
    Raises :class:`TranslationError` for what the mesh cannot allow exactly."""
    return {"istio": istio_egress, "linkerd": linkerd_egress, "osm": osm_egress}[spec.backend.type](spec, cluster)


def istio_egress(spec, cluster: str) -> list[dict]:
    """Istio egress objects for ``cluster`` (empty when no egress rule has a source there)."""
    rules = [r for r in spec.egress if cluster in egress_clusters(spec, r)] if spec.egress else []
    if not rules:
        return []
    mesh, ambient = spec.name, spec.backend.istio.data_plane == "ambient"
    by_key = spec.services_by_key
    objects = [k8s_object("v1", "Namespace", EGRESS_NAMESPACE, None, mesh)]
    if ambient:
        objects.append(k8s_object(GATEWAY_API, "Gateway", EGRESS_WAYPOINT, EGRESS_NAMESPACE, mesh,
                                  labels={"istio.io/waypoint-for": "service"},
                                  spec={"gatewayClassName": "istio-waypoint",
                                        "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}))
    for r in rules:
        source_ns = sorted({ref.namespace for ref in r.sources})
        objects.append(k8s_object(NETWORKING, "ServiceEntry", r.name, EGRESS_NAMESPACE, mesh,
                                  labels={"istio.io/use-waypoint": EGRESS_WAYPOINT} if ambient else None,
                                  annotations={ALLOW_WILDCARD: "true"} if r.allow_wildcard else None, spec={
            "hosts": list(r.hosts),
            "exportTo": ["*"] if ambient else source_ns,
            "location": "MESH_EXTERNAL",
            "ports": [{"number": p.port, "name": f"{p.protocol}-{p.port}", "protocol": _ISTIO_PROTOCOL[p.protocol]}
                      for p in r.ports],
            "resolution": "NONE" if any(h.startswith("*.") for h in r.hosts) else "DNS",
        }))
        if ambient:
            sources = sorted(principal(spec.trust_domain, ref.namespace, by_key[(ref.namespace, ref.service)].account)
                             for ref in r.sources)
            objects.append(k8s_object(SECURITY, "AuthorizationPolicy", r.name, EGRESS_NAMESPACE, mesh, spec={
                "targetRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry", "name": r.name}],
                "action": "ALLOW",
                "rules": [{"from": [{"source": {"principals": sources}}],
                           "to": [{"operation": {"ports": [str(p.port) for p in r.ports]}}]}]}))
    if not ambient:
        objects += _hide_from_other_services(spec, rules, cluster)
    return objects


def _hide_from_other_services(spec, rules, cluster: str) -> list[dict]:
    """Sidecars for the non-source services of source namespaces: Kubernetes services and the
    control plane only, so an entry exported to the namespace is not visible to them."""
    allowed = {(ref.namespace, ref.service) for r in rules for ref in r.sources}
    namespaces = {ns for ns, _ in allowed}
    out = []
    for s in spec.services:
        if s.namespace in namespaces and (s.namespace, s.name) not in allowed and cluster in spec.service_clusters(s):
            out.append(k8s_object(NETWORKING, "Sidecar", f"{s.name}-no-egress", s.namespace, spec.name, spec={
                "workloadSelector": {"labels": s.pod_labels()},
                "egress": [{"hosts": ["*/*.svc.cluster.local", "istio-system/*"]}]}))
    return out


def allowed_egress(spec) -> list[tuple[str, str, str, int]]:
    """The intent as a table: ``(namespace/service, host, protocol, port)`` rows, sorted."""
    return sorted((f"{ref.namespace}/{ref.service}", h, p.protocol, p.port)
                  for r in spec.egress for ref in r.sources for h in r.hosts for p in r.ports)


LINKERD_EGRESS_NETWORK = "mesh-egress"
_LINKERD_POLICY = "policy.linkerd.io"


def linkerd_egress(spec, cluster: str) -> list[dict]:
    """Linkerd egress objects for ``cluster`` (see the module docstring)."""
    mesh = spec.name
    rules = [(i, r) for i, r in enumerate(spec.egress) if cluster in egress_clusters(spec, r)]
    problems = []
    by_ns: dict[str, list] = {}
    for i, r in rules:
        allowed = {(ref.namespace, ref.service) for ref in r.sources}
        for ns in sorted({ref.namespace for ref in r.sources}):
            others = sorted(s.name for s in spec.services if s.namespace == ns and (ns, s.name) not in allowed)
            if others and r.approximate != "namespace":
                problems.append((f"mesh.egress[{i}].sources", f"Linkerd allows egress per namespace, and {ns} also "
                                                              f"runs {', '.join(others)}, which would get {r.name} too; "
                                                              f"move the sources to their own namespace, or set "
                                                              f"approximate: namespace to accept that"))
            by_ns.setdefault(ns, []).append(r)
        for j, p in enumerate(r.ports):
            if p.protocol == "tcp":
                problems.append((f"mesh.egress[{i}].ports[{j}]", "Linkerd cannot limit opaque TCP egress to host "
                                                                 "names; use protocol tls/https or http"))
    if problems:
        raise TranslationError(problems)
    parent = lambda port: {"group": _LINKERD_POLICY, "kind": "EgressNetwork",  # noqa: E731
                           "name": LINKERD_EGRESS_NETWORK, "port": port}
    objects = []
    for ns in sorted(by_ns):
        objects.append(k8s_object(f"{_LINKERD_POLICY}/v1alpha1", "EgressNetwork", LINKERD_EGRESS_NETWORK, ns, mesh,
                                  spec={"trafficPolicy": "Deny"}))
        for r in by_ns[ns]:
            for p in r.ports:
                kind = "HTTPRoute" if p.protocol == "http" else "TLSRoute"
                objects.append(k8s_object(GATEWAY_API, kind, f"{r.name}-{p.port}", ns, mesh, spec={
                    "parentRefs": [parent(p.port)], "hostnames": list(r.hosts),
                    "rules": [{"backendRefs": [parent(p.port)]}]}))
    return objects


def osm_egress(spec, cluster: str) -> list[dict]:
    """OSM ``Egress`` policies for ``cluster``: exactly the source identities, hosts and ports."""
    by_key = spec.services_by_key
    objects = []
    for r in spec.egress:
        if cluster not in egress_clusters(spec, r):
            continue
        for ns in sorted({ref.namespace for ref in r.sources}):
            accounts = sorted({by_key[(ref.namespace, ref.service)].account for ref in r.sources if ref.namespace == ns})
            objects.append(k8s_object("policy.openservicemesh.io/v1alpha1", "Egress", r.name, ns, spec.name, spec={
                "sources": [{"kind": "ServiceAccount", "name": sa, "namespace": ns} for sa in accounts],
                "hosts": list(r.hosts),
                "ports": [{"number": p.port, "protocol": "http" if p.protocol == "http" else
                           "tcp" if p.protocol == "tcp" else "https"} for p in r.ports]}))
    return objects
