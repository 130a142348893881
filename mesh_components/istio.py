"""Istio control plane: Helm releases in install order and mesh-wide objects, per cluster, for the
sidecar and ambient data planes (policy translation lives in ``istio_policy``).

Upstream behaviour this follows: ../shared/charts/istiod/INSTALL-FACTS.md (Istio 1.30 Helm
charts: install order, ``_internal_defaults_do_not_set``, multi-cluster and ambient values),
https://istio.io/latest/docs/setup/install/multicluster/multi-primary_multi-network/ and
https://istio.io/latest/docs/ambient/install/helm/ .
"""
from __future__ import annotations

from .clouds import load_balancer_annotations
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
# control plane


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


def namespace_labels(spec, namespace: str) -> dict[str, str]:
    """Labels that enrol an application namespace in the data plane: ambient mode, a revision,
    or sidecar injection (https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/)."""
    opts = spec.backend.istio
    if opts.data_plane == "ambient":
        return {"istio.io/dataplane-mode": "ambient"}
    if opts.revision:
        return {"istio.io/rev": opts.revision}
    return {"istio-injection": "enabled"}


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
