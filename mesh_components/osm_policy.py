"""OSM policy: SMI rendered natively, at the API versions Open Service Mesh v1.2 serves.

OSM v1.2.4 (archived) serves TrafficTarget ``access.smi-spec.io/v1alpha3``, HTTPRouteGroup and
TCPRoute ``specs.smi-spec.io/v1alpha4`` and TrafficSplit only at ``split.smi-spec.io/v1alpha2``
(../shared/crds/osm). Translation is the identity on SMI semantics, with two refusals:
TrafficTarget v1alpha3 has no ``destination.port`` (a port-scoped target cannot be expressed), and
OSM has no GAMMA/ingress-identity authorization. With permissive traffic policy mode off (the
control plane's setting), OSM denies every destination without a TrafficTarget, not only those
with one: stricter than the other meshes for unpoliced destinations, never wider.
Docs: https://release-v1-2.docs.openservicemesh.io/docs/guides/traffic_management/
"""
from __future__ import annotations

from . import resilience
from .errors import Problem, TranslationError
from .gamma import TrafficModel
from .meta import k8s_object
from .smi import PolicySet

ACCESS = "access.smi-spec.io/v1alpha3"
SPECS = "specs.smi-spec.io/v1alpha4"
SPLIT = "split.smi-spec.io/v1alpha2"


def namespace_labels(spec, model: TrafficModel, namespace: str) -> dict[str, str]:
    """OSM policy needs no namespace labels (enrolment is the control plane's)."""
    return {}


def smi_objects(spec, policies: PolicySet, cluster: str) -> list[dict]:
    """TrafficTargets, HTTPRouteGroups, TCPRoutes and TrafficSplits (v1alpha2) for ``cluster``:
    each document in the namespaces that exist there. Raises :class:`TranslationError` for a
    port-scoped TrafficTarget."""
    mesh = spec.name
    here = lambda ns: cluster in spec.namespace_clusters(ns)  # noqa: E731
    problems: list[Problem] = []
    objects: list[dict] = []
    for g in policies.route_groups:
        if here(g.namespace):
            matches = []
            for m in g.matches:
                match: dict = {"name": m.name}
                if not m.any_method:
                    match["methods"] = list(m.methods)
                if m.path_regex is not None:
                    match["pathRegex"] = m.path_regex
                if m.headers:
                    match["headers"] = [{name: value} for name, value in m.headers]
                matches.append(match)
            objects.append(k8s_object(SPECS, "HTTPRouteGroup", g.name, g.namespace, mesh, spec={"matches": matches}))
    for r in policies.tcp_routes:
        if here(r.namespace):
            objects.append(k8s_object(SPECS, "TCPRoute", r.name, r.namespace, mesh,
                                      spec={"matches": {"ports": list(r.ports)}}))
    for t in policies.targets:
        if t.destination_port is not None:
            problems.append((t.origin, f"destination port {t.destination_port}: OSM serves TrafficTarget only at "
                                       f"v1alpha3, which has no destination port; drop the port and restrict the "
                                       f"rule with a TCPRoute's ports instead"))
            continue
        if here(t.namespace):
            rules = []
            for r in t.rules:
                rule: dict = {"kind": r.kind, "name": r.name}
                if r.matches:
                    rule["matches"] = list(r.matches)
                rules.append(rule)
            objects.append(k8s_object(ACCESS, "TrafficTarget", t.name, t.namespace, mesh, spec={
                "destination": {"kind": "ServiceAccount", "name": t.destination[1], "namespace": t.destination[0]},
                "rules": rules,
                "sources": [{"kind": "ServiceAccount", "name": sa, "namespace": ns} for ns, sa in t.sources]}))
    for s in policies.splits:
        if here(s.namespace):
            objects.append(k8s_object(SPLIT, "TrafficSplit", s.name, s.namespace, mesh, spec={
                "service": s.service, "backends": [{"service": b, "weight": w} for b, w in s.backends]}))
    if problems:
        raise TranslationError(problems)
    return objects


def policy_objects(spec, model: TrafficModel, cluster: str) -> list[dict]:
    """The SMI objects of ``cluster`` (see :func:`smi_objects`) and per-service resilience."""
    return smi_objects(spec, model.policies, cluster) + resilience.osm_objects(spec, model, cluster)
