"""Envoy Gateway (``gateway.envoyproxy.io``, chart ``gateway-helm`` v1.9.0) as the north-south
gateway of any mesh, and how its Envoy proxies join the mesh.

Install (../shared/charts/gateway-helm/INSTALL-FACTS.md): release ``eg`` of
``oci://docker.io/envoyproxy/gateway-helm`` in ``envoy-gateway-system``. The chart's ``crds``
subchart ships Envoy Gateway's CRDs and the Gateway API CRDs in Helm's ``crds/`` folder, which Helm
installs only when absent: the release installs after the Gateway API CRD manifest this project
pins, so that one stays authoritative and only Envoy Gateway's own CRDs come from the chart.
A ``GatewayClass`` ``envoy-gateway`` (controllerName ``gateway.envoyproxy.io/gatewayclass-controller``)
serves the ingress ``Gateway``, which names an ``EnvoyProxy`` in its own namespace through
``spec.infrastructure.parametersRef`` (one per Gateway, so per-cluster load-balancer settings live
beside it): https://gateway.envoyproxy.io/docs/tasks/operations/customize-envoyproxy/ .

The EnvoyProxy pins what the mesh must know (v1.9.0 ``internal/infrastructure/kubernetes/proxy``):

- names: Deployment, Service and ServiceAccount ``<ingress>-envoy`` in the controller namespace
  ``envoy-gateway-system`` (``envoyDeployment.name``, ``envoyService.name``,
  ``envoyServiceAccount.name``; without them Envoy Gateway appends a hash). The proxies' workload
  identity is therefore ``(envoy-gateway-system, <ingress>-envoy)``, the source the mesh's access
  policy admits for each ingress route (``gamma.build``);
- ``routingType: Service``: Envoy sends to the Service's cluster IP rather than to pod IPs, so the
  mesh sees service-addressed traffic: Istio sidecars and Linkerd apply mutual TLS and their
  service routing, and in ambient mode ztunnel sends it through the destination's waypoint (a pod
  IP would bypass the waypoint and be refused by the ``<service>-via-waypoint`` policy);
- the cloud's load-balancer annotations on the Service (``envoyService.annotations``,
  :func:`mesh_components.core.clouds.load_balancer_annotations`).

Joining the mesh (pod labels and annotations on ``envoyDeployment.pod``; only the proxies, never
the controller or its certgen Job, are meshed, as Linkerd's ingress guide advises for Jobs):

- Istio sidecars: label ``istio.io/rev: <tag or revision>`` (else ``sidecar.istio.io/inject:
  "true"``), ``traffic.sidecar.istio.io/includeInboundPorts: ""`` (internet clients reach Envoy
  directly; the mesh-wide STRICT PeerAuthentication would refuse them on a captured port),
  ``traffic.sidecar.istio.io/excludeOutboundPorts: "18000"`` (Envoy's own mTLS xDS stream to the
  controller) and ``holdApplicationUntilProxyStarts``;
- Istio ambient: label ``istio.io/dataplane-mode: ambient`` and annotation
  ``ambient.istio.io/bypass-inbound-capture: "true"`` (Istio 1.24+: ztunnel captures outbound only,
  for pods that serve out-of-mesh clients);
- Linkerd: ``linkerd.io/inject: enabled`` (normal mode is right for an ingress that routes to
  service IPs, https://linkerd.io/2/tasks/using-ingress/), ``config.linkerd.io/skip-inbound-ports``
  for the listeners' container ports (Envoy Gateway binds port ``p < 1024`` as ``p + 10000``) and
  ``config.linkerd.io/skip-outbound-ports: "18000"``;
- OSM: the proxies stay outside the mesh; each route's backend admits them with an OSM
  ``IngressBackend`` whose source is the proxies' Service (OSM's documented ingress model,
  https://release-v1-2.docs.openservicemesh.io/docs/guides/traffic_management/ingress/). It admits
  the gateway on the backend's target port (the pod's, as OSM matches it); the path prefix is
  enforced by the gateway's HTTPRoute.
"""
from __future__ import annotations

from typing import Iterable

from ..meshes import istio
from .clouds import load_balancer_annotations
from ..spec.errors import TranslationError
from .meta import k8s_object

NAMESPACE = "envoy-gateway-system"
RELEASE = "eg"
REPOSITORY = "oci://docker.io/envoyproxy"
CHART = "gateway-helm"
VERSION = "v1.9.0"
API = "gateway.envoyproxy.io/v1alpha1"
GATEWAY_CLASS = "envoy-gateway"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
XDS_PORT = 18000
"""The controller's xDS port (chart ``deployment.ports`` ``grpc``), kept out of the mesh proxies."""
WELL_KNOWN_PORT_SHIFT = 10000
"""Envoy Gateway binds a listener port below 1024 as port + 10000 in the container."""
OSM_POLICY = "policy.openservicemesh.io/v1alpha1"


def proxy_name(spec) -> str:
    """Name of the ingress proxies' Deployment, Service and ServiceAccount: ``<ingress>-envoy``."""
    return f"{spec.ingress.name}-envoy"


def proxy_identity(spec) -> tuple[str, str]:
    """``(namespace, service_account)`` of the ingress Envoy proxies."""
    return NAMESPACE, proxy_name(spec)


def release() -> dict:
    """The ``gateway-helm`` release as a release dict (``render.HelmRelease`` fields), concern
    ``gateway``. Chart defaults suffice: Kubernetes provider, the standard controllerName, certgen."""
    return {"name": RELEASE, "namespace": NAMESPACE, "repository": REPOSITORY, "chart": CHART, "version": VERSION,
            "values": {}, "depends_on": [], "concern": "gateway"}


def container_port(port: int) -> int:
    """The container port Envoy Gateway binds for listener ``port``."""
    return port + WELL_KNOWN_PORT_SHIFT if port < 1024 else port


def mesh_membership(spec, listener_ports: list[int]) -> tuple[dict[str, str], dict[str, str]]:
    """``(pod labels, pod annotations)`` that enrol the ingress proxies in the spec's mesh (see the
    module docstring); empty for OSM."""
    kind = spec.backend.type
    if kind == "istio" and spec.backend.istio.data_plane == "ambient":
        return {"istio.io/dataplane-mode": "ambient"}, {"ambient.istio.io/bypass-inbound-capture": "true"}
    if kind == "istio":
        rev = istio.injection_revision(spec)
        return ({"istio.io/rev": rev} if rev else {"sidecar.istio.io/inject": "true"}), {
            "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
            "traffic.sidecar.istio.io/excludeOutboundPorts": str(XDS_PORT),
            "traffic.sidecar.istio.io/includeInboundPorts": ""}
    if kind == "linkerd":
        return {}, {"config.linkerd.io/skip-inbound-ports": ",".join(str(container_port(p)) for p in listener_ports),
                    "config.linkerd.io/skip-outbound-ports": str(XDS_PORT),
                    "linkerd.io/inject": "enabled"}
    return {}, {}


def envoy_proxy(spec, cluster, listener_ports: list[int]) -> dict:
    """The ``EnvoyProxy`` named after the ingress, in the gateway namespace (referenced by the
    Gateway's ``infrastructure.parametersRef``)."""
    from .telemetry.envoy_gateway import proxy_pod_annotations  # here: telemetry imports this module

    ing, name = spec.ingress, proxy_name(spec)
    labels, annotations = mesh_membership(spec, listener_ports)
    annotations = {**annotations, **proxy_pod_annotations(spec)}  # mesh.telemetry: Istio's metrics merging off
    pod: dict = {}
    if labels:
        pod["labels"] = labels
    if annotations:
        pod["annotations"] = annotations
    service: dict = {"name": name, "type": "LoadBalancer"}
    lb = load_balancer_annotations(cluster.cloud, internal=cluster.internal_load_balancers)
    if lb:
        service["annotations"] = lb
    from .telemetry.envoy_gateway import envoy_proxy_telemetry  # here: telemetry imports this module

    telemetry = envoy_proxy_telemetry(spec)  # mesh.telemetry's access logs, metrics, tracing; {} without
    return k8s_object(API, "EnvoyProxy", ing.name, ing.namespace, spec.name, spec={
        "provider": {"type": "Kubernetes", "kubernetes": {
            "envoyDeployment": {"name": name, **({"pod": pod} if pod else {})},
            "envoyService": service,
            "envoyServiceAccount": {"name": name}}},
        "routingType": "Service", **({"telemetry": telemetry} if telemetry else {})})


def infrastructure_objects(spec, cluster, listener_ports: list[int]) -> list[dict]:
    """Controller namespace, ``GatewayClass`` and the ingress ``EnvoyProxy``."""
    mesh = spec.name
    return [k8s_object("v1", "Namespace", NAMESPACE, None, mesh),
            k8s_object("gateway.networking.k8s.io/v1", "GatewayClass", GATEWAY_CLASS, None, mesh,
                       spec={"controllerName": CONTROLLER_NAME}),
            envoy_proxy(spec, cluster, listener_ports)]


def osm_ingress_backends(spec, cluster: str, extra: Iterable[tuple[str, str, int]] = ()) -> list[dict]:
    """One OSM ``IngressBackend`` per routed service in ``cluster``, in the service's namespace:
    its routed ports (``protocol: http``) admit the ingress proxies' Service as source; ``extra``
    ``(namespace, service, port)`` adds the services a split sends ingress traffic to
    (``gateway.ingress_backend_services``). Each backend
    names the routed port's **target** port: OSM v1.2.4 applies a backend only where
    ``backend.Port.Number`` equals the MeshService's ``TargetPort`` (pkg/catalog/ingress.go:41-44),
    the pod port it reads from the Service's endpoints (pkg/k8s/client.go:312-317). Raises
    :class:`TranslationError` for a route to a non-HTTP port (the ingress routes HTTP)."""
    ing = spec.ingress
    by_key = spec.services_by_key
    problems = []
    ports: dict[tuple[str, str], list[int]] = {}
    for j, rt in enumerate(ing.routes):
        s = by_key[(rt.namespace, rt.service)]
        routed = next(p for p in s.ports if p.port == rt.port)
        proto, target = routed.protocol, routed.target_port or routed.port
        if proto not in ("http", "http2"):
            problems.append((f"mesh.ingress.routes[{j}].port", f"port {rt.port} of {rt.service} is {proto}; the ingress "
                                                               f"routes HTTP, and OSM's IngressBackend admits it on "
                                                               f"http ports: route to an http port"))
            continue
        if cluster in spec.service_clusters(s) and target not in ports.setdefault((rt.namespace, rt.service), []):
            ports[(rt.namespace, rt.service)].append(target)
    for ns, svc, port in extra:  # split backends that are other services (gateway.ingress_backend_services)
        s = by_key[(ns, svc)]
        routed = next(p for p in s.ports if p.port == port)
        if routed.protocol not in ("http", "http2"):
            problems.append(("mesh.ingress.routes", f"the ingress sends split traffic to port {port} of {ns}/{svc}, "
                                                    f"which is {routed.protocol}; give that backend an http port {port}"))
        elif cluster in spec.service_clusters(s) and (target := routed.target_port or routed.port) \
                not in ports.setdefault((ns, svc), []):
            ports[(ns, svc)].append(target)
    if problems:
        raise TranslationError(problems)
    return [k8s_object(OSM_POLICY, "IngressBackend", f"{ing.name}-{svc}", ns, spec.name, spec={
        "backends": [{"name": svc, "port": {"number": p, "protocol": "http"}} for p in sorted(nums)],
        "sources": [{"kind": "Service", "namespace": NAMESPACE, "name": proxy_name(spec)}]})
        for (ns, svc), nums in sorted(ports.items())]
