"""North-south ingress through Envoy: Gateway API objects served by the mesh's own implementation.

With Istio, a Gateway of class ``istio`` makes istiod deploy an Envoy gateway (Deployment and
Service ``<gateway>-istio``, service account of the same name) and program it from HTTPRoutes
(https://istio.io/latest/docs/tasks/traffic-management/ingress/gateway-api/). Cloud load-balancer
settings go on ``spec.infrastructure.annotations`` (Gateway API v1.1+), which Istio copies to the
Service. With ``tls``, HTTP listeners only redirect to HTTPS (301).
"""
from __future__ import annotations

from .clouds import load_balancer_annotations
from .meta import k8s_object

GATEWAY_API = "gateway.networking.k8s.io/v1"


def gateway_identity(spec) -> tuple[str, str] | None:
    """The ingress gateway's workload identity ``(namespace, service_account)``, or None."""
    if spec.ingress is None or spec.backend.type != "istio":
        return None
    return spec.ingress.namespace, f"{spec.ingress.name}-istio"


def ingress_clusters(spec) -> list[str]:
    if spec.ingress is None:
        return []
    return list(spec.ingress.clusters) if spec.ingress.clusters else spec.cluster_names()


def ingress_objects(spec, cluster) -> list[dict]:
    """Namespace, Gateway, HTTPRoutes and ReferenceGrants of the ingress in ``cluster``."""
    ing = spec.ingress
    if ing is None or cluster.name not in ingress_clusters(spec):
        return []
    if spec.backend.type != "istio":
        from .errors import SpecError
        raise SpecError([("mesh.ingress", f"ingress is served by Istio's Gateway API implementation; for "
                                          f"{spec.backend.type} it needs Envoy Gateway, which this release does "
                                          f"not render yet: remove mesh.ingress")])
    mesh, ns = spec.name, ing.namespace
    listeners, http_sections, route_sections = [], [], []
    for i, host in enumerate(ing.hosts):
        listeners.append({"name": f"http-{i}", "hostname": host, "port": 80, "protocol": "HTTP"})
        http_sections.append(f"http-{i}")
        if ing.tls:
            listeners.append({"name": f"https-{i}", "hostname": host, "port": 443, "protocol": "HTTPS",
                              "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": ing.tls.secret_name}]}})
            route_sections.append(f"https-{i}")
    route_sections = route_sections or http_sections
    gateway_spec: dict = {"gatewayClassName": "istio", "listeners": listeners}
    annotations = load_balancer_annotations(cluster.cloud, internal=cluster.internal_load_balancers)
    if annotations:
        gateway_spec["infrastructure"] = {"annotations": annotations}
    objects = [k8s_object("v1", "Namespace", ns, None, mesh),
               k8s_object(GATEWAY_API, "Gateway", ing.name, ns, mesh, spec=gateway_spec)]
    if ing.tls:
        objects.append(k8s_object(GATEWAY_API, "HTTPRoute", f"{ing.name}-https-redirect", ns, mesh, spec={
            "parentRefs": [{"name": ing.name, "sectionName": s} for s in http_sections],
            "hostnames": list(ing.hosts),
            "rules": [{"filters": [{"type": "RequestRedirect",
                                    "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]}))
    for rt in ing.routes:
        objects.append(k8s_object(GATEWAY_API, "HTTPRoute", f"{ing.name}-{rt.namespace}-{rt.service}", ns, mesh, spec={
            "parentRefs": [{"name": ing.name, "sectionName": s} for s in route_sections],
            "hostnames": list(ing.hosts),
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": rt.path_prefix}}],
                       "backendRefs": [{"name": rt.service, "namespace": rt.namespace, "port": rt.port}]}]}))
    for target_ns in sorted({rt.namespace for rt in ing.routes}):
        objects.append(k8s_object(GATEWAY_API, "ReferenceGrant", f"{ing.name}-from-{ns}", target_ns, mesh, spec={
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": ns}],
            "to": [{"group": "", "kind": "Service"}]}))
    return objects


def ingress_authorizations(spec):
    """The ingress gateway as an SMI-like source: ``[(service, namespace, port, path_prefix)]``."""
    if spec.ingress is None:
        return []
    return [(rt.service, rt.namespace, rt.port, rt.path_prefix) for rt in spec.ingress.routes]
