"""Istio control plane: Helm releases in install order and mesh-wide objects, per cluster, for the
sidecar and ambient data planes (policy translation lives in ``istio_policy``).

Upstream behaviour this follows: ../shared/charts/istiod/INSTALL-FACTS.md (Istio 1.30 Helm
charts: install order, ``_internal_defaults_do_not_set``, multi-cluster and ambient values),
https://istio.io/latest/docs/setup/install/multicluster/multi-primary_multi-network/ and
https://istio.io/latest/docs/ambient/install/helm/ .
"""
from __future__ import annotations

import copy

import yaml

from ..core.clouds import east_west_service
from ..core.meta import deep_merge, k8s_object
from ..spec import is_multi_network

REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
SYSTEM_NAMESPACE = "istio-system"
SHARED_MESH_CONFIG = "istio-mesh-components"
"""The ConfigMap earlier releases set the mesh config in (istiod env ``SHARED_MESH_CONFIG``, "experimental
feature in 1.10": istio 1.30.3 ``pilot/pkg/bootstrap/mesh.go:44-47``; ``istioctl analyze`` and
``istioctl x describe`` read only the ``istio[-<rev>]`` ConfigMap: ``pkg/config/analysis/local/
istiod_analyze.go:503-519``, ``istioctl/pkg/describe/describe.go:1526-1545``). istiod no longer names
it; it is kept, retired (:data:`RETIRED_ANNOTATION`), for one release (:func:`control_plane`)."""
RETIRED_ANNOTATION = "mesh-components.io/retired"
WAYPOINT = "waypoint"
SECURITY = "security.istio.io/v1"
NETWORKING = "networking.istio.io/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"


# ---------------------------------------------------------------------------------------------
# control plane


def revisions(spec) -> list[tuple[str, str]]:
    """Every istiod revision as ``(name, chart version)``, in spec order: ``[("", version)]``
    without revisions, ``[(revision, version)]`` for the single ``revision``."""
    opts, default = spec.backend.istio, spec.backend.chart_version
    if opts.revisions:
        return [(r.name, r.version or default) for r in opts.revisions]
    return [(opts.revision or "", default)]


def serving_revision(spec) -> tuple[str, str]:
    """``(name, version)`` of the revision that serves the data plane: the ``tagRevision`` (or the
    only revision). Gateways, ztunnel and CNI run at its version."""
    revs = revisions(spec)
    wanted = spec.backend.istio.tag_revision
    return next((r for r in revs if r[0] == wanted), revs[0])


def istiod_release_name(spec, revision: str) -> str:
    """``istiod-<revision>`` for a ``revisions`` entry; ``istiod`` otherwise (the single
    ``revision`` keeps the release name it always had)."""
    return f"istiod-{revision}" if spec.backend.istio.revisions else "istiod"


def injection_revision(spec) -> str | None:
    """The ``istio.io/rev`` value workloads and gateways carry: the tag, else the revision."""
    opts = spec.backend.istio
    return opts.tag or serving_revision(spec)[0] or None


def needs_gateway_api(spec) -> bool:
    """Ambient mode needs the Gateway API CRDs (waypoints, east-west gateway)."""
    return spec.backend.istio.data_plane == "ambient"


def control_plane(spec, cluster, *, ca_values: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Objects and Helm releases of the Istio control plane in ``cluster``.

    Returns ``(objects, releases)``; releases are dicts ``{name, namespace, repository, chart,
    version, values, depends_on}`` in install order (base -> istiod per revision -> cni -> ztunnel
    -> gateways). ``ca_values`` maps chart name to values from the CA (e.g. ``ISTIO_MULTIROOT_MESH``).

    Revisions (:func:`revisions`): one istiod release per revision; the one serving the tag gets
    ``revisionTags: [tag]`` and installs after the others, so when the tag moves, the old holder
    gives up the tag's webhook before the new one takes it (Helm refuses an object another release
    owns). ``base`` runs the newest version (CRDs only grow) with ``defaultRevision`` the first
    listed revision. Multi-network: east-west gateway (sidecar: ``gateway`` chart +
    ``AUTO_PASSTHROUGH`` Gateway; ambient: Gateway API class ``istio-east-west``) with the cloud's
    load-balancer settings (:func:`mesh_components.core.clouds.east_west_service`) and, for sidecars,
    ``global.meshNetworks`` naming static gateway addresses. ``localityFailover`` adds a
    DestinationRule per service (:func:`locality_objects`). Every istiod gets the mesh settings as
    Helm ``meshConfig`` (:func:`mesh_config`); the ConfigMap :data:`SHARED_MESH_CONFIG` earlier
    releases set them in is still rendered, retired and with the same settings, for one release:
    istiod falls back to the default ``ALLOW_ANY`` when a map it names is missing (istio 1.30.3
    ``pkg/config/mesh/meshwatcher/collection.go:56-60``), so the map may go only once no istiod
    names it and the ``istio`` map has the settings (the next release deletes it).
    """
    mesh, opts = spec.name, spec.backend.istio
    ambient = opts.data_plane == "ambient"
    multi_network = is_multi_network(spec)
    network = spec.network_of(cluster)
    revs = revisions(spec)
    serving, serving_version = serving_revision(spec)
    ca_values = ca_values or {}
    settings = mesh_config(spec)
    objects = [
        k8s_object("v1", "Namespace", SYSTEM_NAMESPACE, None, mesh,
                   labels={"topology.istio.io/network": network}),
        # retired: the same settings as istiod's meshConfig, so that no istiod still reading it (the
        # old pods of the rollout) ever runs with less; the next release stops rendering it
        k8s_object("v1", "ConfigMap", SHARED_MESH_CONFIG, SYSTEM_NAMESPACE, mesh,
                   annotations={RETIRED_ANNOTATION: _RETIRED_TEXT},
                   data={"mesh": yaml.safe_dump(settings, sort_keys=False)}),
        k8s_object(SECURITY, "PeerAuthentication", "default", SYSTEM_NAMESPACE, mesh,
                   spec={"mtls": {"mode": "STRICT"}}),
    ]

    def release(name, chart, values, depends_on=(), version=serving_version, namespace=SYSTEM_NAMESPACE):
        merged = deep_merge(values, ca_values.get(chart, {}))
        return {"name": name, "namespace": namespace, "repository": REPOSITORY, "chart": chart,
                "version": version, "values": merged, "depends_on": list(depends_on)}

    base_values = {"defaultRevision": revs[0][0]} if revs[0][0] else {}
    releases = [release("istio-base", "base", base_values, version=max((v for _, v in revs), key=_version_key))]
    istiods = [istiod_release_name(spec, r) for r, _ in revs]
    holder = istiod_release_name(spec, serving)
    for (rev, version), name in zip(revs, istiods):
        values: dict = {
            **({"revision": rev} if rev else {}),
            "global": {"meshID": mesh, "multiCluster": {"clusterName": cluster.name}, "network": network},
            "meshConfig": copy.deepcopy(settings),
            "env": {},  # kept (empty) so that overrides adding /values/env/<NAME> still apply
        }
        if opts.tag and rev == serving:
            values["revisionTags"] = [opts.tag]
        if multi_network and not ambient:
            networks = mesh_networks(spec)
            if networks:
                values["global"]["meshNetworks"] = networks
        if ambient:
            values["profile"] = "ambient"
            if multi_network:
                values["env"]["AMBIENT_ENABLE_MULTI_NETWORK"] = "true"
        after = ["istio-base"] + ([n for n in istiods if n != name] if name == holder else [])
        releases.append(release(name, "istiod", values, after, version=version))
    rev = {"revision": serving} if serving else {}
    if ambient:
        releases.append(release("istio-cni", "cni", {**rev, "profile": "ambient"}, [holder]))
        releases.append(release("ztunnel", "ztunnel", {**rev, "multiCluster": {"clusterName": cluster.name},
                                                       "network": network}, ["istio-cni"]))
    annotations, load_balancer_ip = east_west_service(cluster)
    if multi_network and not ambient:
        objects.append(k8s_object(NETWORKING, "Gateway", "cross-network-gateway", SYSTEM_NAMESPACE, mesh, spec={
            "selector": {"istio": "eastwestgateway"},
            "servers": [{"port": {"number": 15443, "name": "tls", "protocol": "TLS"},
                         "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": ["*.local"]}]}))
        service: dict = {"annotations": annotations}
        if load_balancer_ip:
            service["loadBalancerIP"] = load_balancer_ip
        gateway_rev = injection_revision(spec)
        releases.append(release("istio-eastwestgateway", "gateway", {
            # the chart labels the pods istio=eastwestgateway (release name minus "istio-") and,
            # with networkGateway, topology.istio.io/network=<network>
            **({"revision": gateway_rev} if gateway_rev else {}),
            "networkGateway": network,
            "service": service,
        }, [holder]))
    elif multi_network:
        # ambient multi-network: an east-west Gateway API gateway (HBONE on 15008)
        labels = {"topology.istio.io/network": network}
        if injection_revision(spec):
            labels["istio.io/rev"] = injection_revision(spec)
        gateway_spec: dict = {
            "gatewayClassName": "istio-east-west",
            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE",
                           "tls": {"mode": "Terminate", "options": {
                               "gateway.istio.io/tls-terminate-mode": "ISTIO_MUTUAL"}}}]}
        if load_balancer_ip:
            gateway_spec["addresses"] = [{"type": "IPAddress", "value": load_balancer_ip}]
        if annotations:
            gateway_spec["infrastructure"] = {"annotations": annotations}
        objects.append(k8s_object(GATEWAY_API, "Gateway", "istio-eastwestgateway", SYSTEM_NAMESPACE, mesh,
                                  labels=labels, spec=gateway_spec))
    objects += locality_objects(spec, cluster.name)
    return objects, releases


_RETIRED_TEXT = ("istiod no longer reads this map (its settings are in istiod's Helm meshConfig); kept with the same "
                 "settings for one release so that no istiod runs without them during the upgrade, removed by the next")


def mesh_config(spec) -> dict:
    """Every mesh-wide setting of the stack, as istiod's Helm ``meshConfig`` (the MeshConfig API,
    ``mesh/v1alpha1/config.proto`` of istio/api 2e43f07b30b6, the commit istio 1.30.3's go.mod pins):
    ``outboundTrafficPolicy.mode: REGISTRY_ONLY`` (field 17); ``trustDomain`` (26) when it is not
    the chart's ``cluster.local``; mesh-wide ``localityLbSetting`` (35) under ``localityFailover``
    without ``services``; ``serviceSettings`` (50) making the egress gateway's host cluster-local
    (:func:`mesh_components.core.egress.cluster_local_hosts`).

    Why ``meshConfig``: the istiod chart merges it over its own defaults into the ``istio[-<rev>]``
    ConfigMap ("meshConfig.foo becomes the API", manifests/charts/istio-control/istio-discovery/
    templates/configmap.yaml:76-79), the map ``istioctl`` reads (:data:`SHARED_MESH_CONFIG`).
    Returns a fresh dict."""
    out: dict = {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}
    if spec.trust_domain != "cluster.local":
        out["trustDomain"] = spec.trust_domain
    out.update(_locality_mesh_config(spec))
    from ..core.egress import cluster_local_hosts  # egress builds on this module

    hosts = cluster_local_hosts(spec)
    if hosts:
        out["serviceSettings"] = [{"settings": {"clusterLocal": True}, "hosts": hosts}]
    return out


def mesh_networks(spec) -> dict:
    """``global.meshNetworks`` for the networks whose east-west gateways have static addresses:
    ``{network: {endpoints: [{fromRegistry: cluster}], gateways: [{address, port: 15443}]}}``, the
    same in every cluster. istiod then routes to those addresses instead of resolving the gateway
    Service's load-balancer status (a host name on AWS, istio#29359)."""
    out: dict = {}
    for c in spec.clusters:
        if c.east_west_gateway is None:
            continue
        net = out.setdefault(spec.network_of(c), {"endpoints": [], "gateways": []})
        net["endpoints"].append({"fromRegistry": c.name})
        net["gateways"] += [{"address": a, "port": 15443} for a in c.east_west_gateway.addresses]
    return out


def _version_key(version: str) -> tuple:
    return tuple(int(x) if x.isdigit() else x for x in version.lstrip("v").replace("-", ".").split("."))


# ---------------------------------------------------------------------------------------------
# locality-aware failover


def _locality_setting(lf) -> dict:
    setting: dict = {"enabled": True}
    if lf.failover:
        setting["failover"] = [{"from": f.from_, "to": f.to} for f in lf.failover]
    return setting


def _locality_mesh_config(spec) -> dict:
    """Mesh-wide ``localityLbSetting`` (a mesh config fragment) when failover covers every service."""
    lf = spec.backend.locality_failover
    if lf is None or lf.services is not None:
        return {}
    return {"localityLbSetting": _locality_setting(lf)}


def locality_objects(spec, cluster: str) -> list[dict]:
    """A DestinationRule ``<service>-locality`` per service under ``localityFailover`` (every
    service, or those listed) whose namespace exists in ``cluster``: ``localityLbSetting`` plus the
    outlier detection without which Istio never fails over
    (https://istio.io/latest/docs/tasks/traffic-management/locality-load-balancing/failover/)."""
    lf = spec.backend.locality_failover
    if lf is None:
        return []
    wanted = None if lf.services is None else {(r.namespace, r.service) for r in lf.services}
    out = []
    for s in spec.services:
        if wanted is not None and (s.namespace, s.name) not in wanted:
            continue
        if cluster not in spec.namespace_clusters(s.namespace):
            continue
        out.append(k8s_object(NETWORKING, "DestinationRule", f"{s.name}-locality", s.namespace, spec.name, spec={
            "host": f"{s.name}.{s.namespace}.svc.cluster.local",
            "trafficPolicy": {
                "loadBalancer": {"localityLbSetting": _locality_setting(lf)},
                "outlierDetection": {"consecutive5xxErrors": lf.consecutive_5xx_errors,
                                     "interval": f"{lf.interval_seconds}s",
                                     "baseEjectionTime": f"{lf.base_ejection_seconds}s"}}}))
    return out


def namespace_labels(spec, namespace: str) -> dict[str, str]:
    """Labels that enrol an application namespace in the data plane: ambient mode, the revision
    tag or revision (:func:`injection_revision`), or sidecar injection (https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/)."""
    if spec.backend.istio.data_plane == "ambient":
        return {"istio.io/dataplane-mode": "ambient"}
    rev = injection_revision(spec)
    if rev:
        return {"istio.io/rev": rev}
    return {"istio-injection": "enabled"}
