"""North-south ingress through Envoy: Gateway API objects served by Istio's own implementation or
by Envoy Gateway (``mesh.ingress.implementation``), for every mesh.

- ``istio`` (istio backend only; the default there): a Gateway of class ``istio`` makes istiod
  deploy an Envoy gateway (Deployment and Service ``<gateway>-istio``, service account of the same
  name) and program it from HTTPRoutes
  (https://istio.io/latest/docs/tasks/traffic-management/ingress/gateway-api/). Cloud load-balancer
  settings go on ``spec.infrastructure.annotations`` (Gateway API v1.1+), which Istio copies to the
  Service.
- ``envoy-gateway`` (the default, and the only choice, for linkerd and osm): Envoy Gateway
  v1.9.0, see :mod:`mesh_components.core.envoy_gateway` for the install, the EnvoyProxy (names,
  ``routingType: Service``, load-balancer annotations) and how its proxies join each mesh.

Both render the same listeners and routes: per host an HTTP listener ``http-<i>`` (port 80) and,
with ``tls``, an HTTPS listener ``https-<i>`` (port 443) terminating with the Secret
``tls.secretName``; with ``tls`` the HTTP listeners only redirect to HTTPS (301) and the routes
attach to the HTTPS listeners. Each route is an HTTPRoute (``PathPrefix``) to a mesh service, with a
ReferenceGrant in the service's namespace. The certificate comes from the user (the Secret exists)
or from cert-manager (``tls.issuer``, :mod:`mesh_components.core.certificates`).

The gateway is a source like any other: :func:`gateway_identity` is the workload identity the
mesh's access policy admits for each route (``gamma.build``); OSM, whose ingress proxies stay
outside the mesh, admits them with IngressBackends instead.
"""
from __future__ import annotations

from . import certificates, envoy_gateway, gamma
from ..spec import names
from .clouds import load_balancer_annotations
from .meta import k8s_object

GATEWAY_API = "gateway.networking.k8s.io/v1"


def implementation(spec) -> str | None:
    """``istio`` or ``envoy-gateway`` (as given, else ``istio`` for the istio backend and
    ``envoy-gateway`` otherwise); None without ``mesh.ingress``."""
    ing = spec.ingress
    if ing is None:
        return None
    return ing.implementation or ("istio" if spec.backend.type == "istio" else "envoy-gateway")


def gateway_identity(spec) -> tuple[str, str] | None:
    """The ingress gateway's workload identity ``(namespace, service_account)``, or None (no
    ingress, or OSM, where the gateway is admitted by IngressBackends rather than by identity)."""
    impl = implementation(spec)
    if impl == "istio":
        return spec.ingress.namespace, f"{spec.ingress.name}-istio"
    if impl == "envoy-gateway" and spec.backend.type in ("istio", "linkerd"):
        return envoy_gateway.proxy_identity(spec)
    return None


def gateway_service(spec) -> tuple[str, str] | None:
    """``(namespace, name)`` of the Service that carries the ingress load-balancer address."""
    impl = implementation(spec)
    if impl == "istio":
        return spec.ingress.namespace, f"{spec.ingress.name}-istio"
    if impl == "envoy-gateway":
        return envoy_gateway.NAMESPACE, envoy_gateway.proxy_name(spec)
    return None


def ingress_clusters(spec) -> list[str]:
    """Clusters that run the ingress gateway: ``ingress.clusters``, else every cluster."""
    if spec.ingress is None:
        return []
    return list(spec.ingress.clusters) if spec.ingress.clusters else spec.cluster_names()


def _listeners(ing) -> tuple[list[dict], list[str], list[str]]:
    listeners, http_sections, route_sections = [], [], []
    for i, host in enumerate(ing.hosts):
        listeners.append({"name": f"http-{i}", "hostname": host, "port": 80, "protocol": "HTTP"})
        http_sections.append(f"http-{i}")
        if ing.tls:
            listeners.append({"name": f"https-{i}", "hostname": host, "port": 443, "protocol": "HTTPS",
                              "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": ing.tls.secret_name}]}})
            route_sections.append(f"https-{i}")
    return listeners, http_sections, route_sections or http_sections


def _split_of(model: gamma.TrafficModel | None, namespace: str, service: str) -> gamma.WeightedRoute | None:
    return next((r for r in (model.routes if model else ()) if (r.namespace, r.service) == (namespace, service)), None)


def route_backend_refs(spec, model: gamma.TrafficModel | None, rt) -> list[dict]:
    """The ``backendRefs`` of the ingress HTTPRoute for route ``rt``: the routed service, or, when
    a split covers it, the split's backends on the route's port with their exact weights
    (:func:`mesh_components.core.gamma.edge_backends`: the gateway does not apply the mesh's GAMMA route).

    Envoy Gateway sends each backendRef to its Service's cluster IP (``routingType: Service``,
    v1.9.0 internal/gatewayapi/route.go:3116-3129, one endpoint per backendRef) and weighs the
    backendRefs of a rule as localities (internal/xds/translator/cluster.go:880-913, 1049-1056:
    ``LoadBalancingWeight`` = the backendRef's weight) or, with per-backendRef filters, as
    weighted clusters (route.go:384-387): the split's weights are applied at the edge either way,
    and a weight of 0 sends nothing (route.go ``processDestination``: "Skip processing backends
    with 0 weight").

    Envoy Gateway meshed with Istio sidecars keeps the client's Host header, and the sidecar routes
    HTTP by Host, matching only the Service's names and cluster IP (istio 1.30.3
    pilot/pkg/networking/core/httproute.go:559-590 ``generateVirtualHostDomains``, 702-714 the
    ``<svc>.<ns>`` and ``<svc>.<ns>.svc`` forms for another namespace): an external host falls to
    the passthrough or, under REGISTRY_ONLY, the black-hole route. So there each backendRef rewrites
    the Host to ``<service>.<namespace>.svc`` (a per-backendRef ``URLRewrite``, which Envoy Gateway
    applies per weighted cluster as ``host_rewrite_literal``, internal/xds/translator/route.go:
    433-439). Istio's own gateway, Linkerd (routes by destination address) and ztunnel (L4) need none."""
    refs = []
    for b, weight in gamma.edge_backends(_split_of(model, rt.namespace, rt.service), rt.service, rt.port):
        ref: dict = {"name": b, "namespace": rt.namespace, "port": rt.port}
        if _split_of(model, rt.namespace, rt.service) is not None:
            ref["weight"] = weight
        if _host_routed_sidecar(spec):
            ref["filters"] = [{"type": "URLRewrite", "urlRewrite": {"hostname": f"{b}.{rt.namespace}.svc"}}]
        refs.append(ref)
    return refs


def _host_routed_sidecar(spec) -> bool:
    """True when the ingress proxies are Envoy Gateway behind an Istio sidecar (routing by Host)."""
    return (implementation(spec) == "envoy-gateway" and spec.backend.type == "istio"
            and spec.backend.istio.data_plane == "sidecar")


def ingress_backend_services(spec, model: gamma.TrafficModel | None) -> list[tuple[str, str, int]]:
    """``(namespace, service, port)`` of the spec services the ingress reaches beyond the routed
    ones: split backends that are other spec services (:func:`mesh_components.core.gamma.ingress_destinations`),
    for OSM's IngressBackends. A version Service needs none: its pods are its service's, and OSM
    builds one ingress filter chain per Service of a pod, all with the same match (destination port,
    source IPs; osm v1.2.4 pkg/envoy/lds/response.go:61-66, lds/ingress.go:84-91), so naming a
    version Service beside its service would give the pod's inbound listener two chains with one
    match, which Envoy refuses whole ("multiple filter chains with the same matching rules are
    defined", envoyproxy/envoy#6905); the service's IngressBackend already admits the gateway at
    every pod of it, the versions' included."""
    out = []
    by_key = gamma.workloads(spec)
    for rt in spec.ingress.routes if spec.ingress else ():
        for w in gamma.ingress_destinations(spec, by_key, _split_of(model, rt.namespace, rt.service), rt)[1:]:
            if (w.namespace, w.name, rt.port) not in out:
                out.append((w.namespace, w.name, rt.port))
    return out


def ingress_objects(spec, cluster, model: gamma.TrafficModel | None = None) -> list[dict]:
    """Every object of the ingress in ``cluster`` (a ``Cluster``): namespaces, the implementation's
    infrastructure (Envoy Gateway: GatewayClass, EnvoyProxy), the Gateway, the redirect and service
    HTTPRoutes, ReferenceGrants, cert-manager issuer and Certificate, and OSM IngressBackends.
    ``model``: the traffic model (``render.traffic_model``), whose splits the service routes carry
    (:func:`route_backend_refs`); None: no splits. Empty without ``mesh.ingress`` or outside
    ``ingress.clusters``. Raises :class:`~mesh_components.spec.errors.TranslationError` for what the
    mesh cannot admit."""
    ing = spec.ingress
    if ing is None or cluster.name not in ingress_clusters(spec):
        return []
    impl = implementation(spec)
    mesh, ns = spec.name, ing.namespace
    listeners, http_sections, route_sections = _listeners(ing)
    ports = sorted({ln["port"] for ln in listeners})
    if impl == "istio":
        gateway_spec: dict = {"gatewayClassName": "istio", "listeners": listeners}
        annotations = load_balancer_annotations(cluster.cloud, internal=cluster.internal_load_balancers)
        if annotations:
            gateway_spec["infrastructure"] = {"annotations": annotations}
        infra: list[dict] = []
    else:
        gateway_spec = {"gatewayClassName": envoy_gateway.GATEWAY_CLASS, "listeners": listeners,
                        "infrastructure": {"parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy",
                                                             "name": ing.name}}}
        infra = envoy_gateway.infrastructure_objects(spec, cluster, ports)
    objects = [k8s_object("v1", "Namespace", ns, None, mesh)] + infra + [
        k8s_object(GATEWAY_API, "Gateway", ing.name, ns, mesh, spec=gateway_spec)]
    # route names: readable, or hashed where two routes would share one (names.allocate), e.g. two
    # routes (`/` and `/api`) to one service, or namespace `a-b` + service `c` and `a` + `b-c`
    named: list[tuple[dict, tuple, str]] = []
    if ing.tls:
        objects.append(k8s_object(GATEWAY_API, "HTTPRoute", f"{ing.name}-https-redirect", ns, mesh, spec={
            "parentRefs": [{"name": ing.name, "sectionName": s} for s in http_sections],
            "hostnames": list(ing.hosts),
            "rules": [{"filters": [{"type": "RequestRedirect",
                                    "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]}))
        named.append((objects[-1], ("https-redirect",), "mesh.ingress.tls"))
    identities = set()
    for i, rt in enumerate(ing.routes):
        identity = ("route", rt.namespace, rt.service, rt.port, rt.path_prefix)
        if identity in identities:
            continue  # the same route twice: one HTTPRoute routes it
        identities.add(identity)
        objects.append(k8s_object(GATEWAY_API, "HTTPRoute", f"{ing.name}-{rt.namespace}-{rt.service}", ns, mesh, spec={
            "parentRefs": [{"name": ing.name, "sectionName": s} for s in route_sections],
            "hostnames": list(ing.hosts),
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": rt.path_prefix}}],
                       "backendRefs": route_backend_refs(spec, model, rt)}]}))
        named.append((objects[-1], identity, f"mesh.ingress.routes[{i}]"))
    names.rename(named)
    for target_ns in sorted({rt.namespace for rt in ing.routes}):
        objects.append(k8s_object(GATEWAY_API, "ReferenceGrant", f"{ing.name}-from-{ns}", target_ns, mesh, spec={
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": ns}],
            "to": [{"group": "", "kind": "Service"}]}))
    if certificates.needs_cert_manager(spec):
        objects.append(k8s_object("v1", "Namespace", certificates.CERT_MANAGER_NAMESPACE, None, mesh))
    objects += certificates.certificate_objects(spec, cluster.name, ing.name, ns)
    if impl == "envoy-gateway" and spec.backend.type == "osm":
        objects += envoy_gateway.osm_ingress_backends(spec, cluster.name, ingress_backend_services(spec, model))
    return objects


def ingress_releases(spec, cluster) -> list[dict]:
    """Helm releases of the ingress in ``cluster`` (release dicts, concern ``gateway``): Envoy
    Gateway's ``gateway-helm`` for ``envoy-gateway``, cert-manager when ``tls.issuer`` asks for it
    and ``certManager: install``."""
    if spec.ingress is None or cluster.name not in ingress_clusters(spec):
        return []
    out = [envoy_gateway.release()] if implementation(spec) == "envoy-gateway" else []
    if certificates.needs_cert_manager(spec):
        out.append(certificates.cert_manager_release("gateway"))
    return out


def ingress_summary(spec, cluster: str) -> dict | None:
    """The ingress of ``cluster`` for stack outputs: ``{implementation, gateway, service, hosts,
    https}`` (``gateway``/``service`` as ``namespace/name``), or None where no gateway runs."""
    if spec.ingress is None or cluster not in ingress_clusters(spec):
        return None
    ing = spec.ingress
    svc_ns, svc = gateway_service(spec)
    return {"implementation": implementation(spec), "gateway": f"{ing.namespace}/{ing.name}",
            "service": f"{svc_ns}/{svc}", "hosts": list(ing.hosts), "https": ing.tls is not None}


def ingress_authorizations(spec):
    """The ingress gateway as an SMI-like source: ``[(service, namespace, port, path_prefix)]``."""
    if spec.ingress is None:
        return []
    return [(rt.service, rt.namespace, rt.port, rt.path_prefix) for rt in spec.ingress.routes]
