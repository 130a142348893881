"""Multi-cluster wiring, the pure part: what ``istioctl create-remote-secret`` and ``linkerd
multicluster link-gen`` do by hand once per cluster pair, as desired state.

For every ordered pair ``(reader, target)`` of clusters (:func:`pairs`), the reader's control plane
gets credentials to read the target's API server:

- Istio (https://istio.io/latest/docs/setup/install/multicluster/multi-primary/): in the target, a
  token Secret (type ``kubernetes.io/service-account-token``) for the ``istio-reader-service-account``
  the ``base`` chart installs, one per reader (``istio-reader-token-<reader>``), so removing a
  cluster revokes exactly its tokens; in the reader, Secret ``istio-remote-secret-<target>`` in
  ``istio-system`` labelled ``istio/multiCluster: "true"`` and annotated
  ``networking.istio.io/cluster: <target>``, whose key ``<target>`` holds a kubeconfig for the
  target (istioctl ``pkg/multicluster/remote_secret.go``).
- Linkerd (https://linkerd.io/2/tasks/installing-multicluster/, ``multicluster/cmd/link-gen.go``):
  the target's ``linkerd-multicluster`` chart creates one remote-access service account and its
  token Secret per reader (value ``remoteMirrorServiceAccountName``); the reader gets Secret
  ``cluster-credentials-<target>`` (type ``mirror.linkerd.io/remote-kubeconfig``, key
  ``kubeconfig``) in ``linkerd-multicluster`` and, labelled for the destination controller, in
  ``linkerd``, and a ``Link`` named after the target. Clusters on one network link pod to pod
  (remote discovery, services labelled ``mirror.linkerd.io/exported: remote-discovery``); on
  several networks through each target's ``linkerd-gateway`` (``mirror.linkerd.io/exported: "true"``).
  Only services another cluster calls are exported; in gateway mode such calls are refused, since
  the callee sees the gateway's identity (``mesh_components.meshes.linkerd``, issue 10 point 12).

The kubeconfig, the target's gateway address (when not static) and the token exist only at deploy
time: they are :class:`~mesh_components.core.slots.Slot` placeholders (:func:`reader_kubeconfig_slot`,
:func:`gateway_address_slot`) that ``mesh_components.components`` fills from Pulumi outputs, with
:func:`server_and_ca` and :func:`reader_kubeconfig` building the text. Services are exported by a
label patch on the application's own Service (:func:`export_patches`).

:func:`check_mesh_identity` refuses rendered states whose clusters disagree on the mesh ID, the
trust domain or the trust bundle (e.g. after an override).
"""
from __future__ import annotations

import base64
from typing import Any

import yaml

from ..spec.errors import Problem
from .meta import PATCH_ANNOTATION, is_patch, k8s_object, k8s_patch  # noqa: F401 (re-exported)
from .slots import Slot
from ..spec import MeshSpec, is_multi_network

ISTIO_NAMESPACE = "istio-system"
ISTIO_READER_ACCOUNT = "istio-reader-service-account"
"""Service account the Istio ``base`` chart installs (``global.enableReaderRBAC``, default true);
each istiod revision binds it to its reader ClusterRole."""
LINKERD_NAMESPACE = "linkerd"
LINKERD_MC_NAMESPACE = "linkerd-multicluster"
LINKERD_GATEWAY = "linkerd-gateway"
LINKERD_GATEWAY_PORT = 4143
LINKERD_PROBE_PORT = 4191
CLUSTER_DOMAIN = "cluster.local"
"""Kubernetes DNS domain of every cluster (``clusterDomain`` of the Linkerd charts)."""
EXPORT_LABEL = "mirror.linkerd.io/exported"
ISTIO_GLOBAL_LABEL = "istio.io/global"
READER_KEY = "reader_kubeconfig"
GATEWAY_KEY = "gateway_address"


# ---------------------------------------------------------------------------------------------
# pairs and deploy-time values


def pairs(spec: MeshSpec) -> list[tuple[str, str]]:
    """Every ordered ``(reader, target)`` pair of distinct clusters, in spec order: n clusters give
    n*(n-1) pairs; a single cluster (and OSM, which is single-cluster) gives none."""
    if spec.backend.type == "osm":
        return []
    names = spec.cluster_names()
    return [(a, b) for a in names for b in names if a != b]


def reader_kubeconfig_slot(target: str, reader: str) -> Slot:
    """The kubeconfig ``reader`` uses to read ``target`` (secret): placeholder
    ``$(deploy-time:cluster/<target>/reader_kubeconfig/<reader>)``."""
    return Slot("cluster", f"{READER_KEY}/{reader}", target, secret=True)


def gateway_address_slot(target: str) -> Slot:
    """The load-balancer address of ``target``'s Linkerd gateway, read back at deploy time."""
    return Slot("cluster", GATEWAY_KEY, target)


def reader_of(slot: Slot) -> str | None:
    """The reader cluster of a :func:`reader_kubeconfig_slot`, else None."""
    head, _, reader = slot.key.partition("/")
    return reader if slot.source == "cluster" and head == READER_KEY else None


def reader_token(spec: MeshSpec, reader: str) -> tuple[str, str]:
    """``(namespace, name)`` of the token Secret in a target cluster that grants ``reader`` access."""
    if spec.backend.type == "linkerd":
        return LINKERD_MC_NAMESPACE, f"{linkerd_remote_account(reader)}-token"
    return ISTIO_NAMESPACE, f"istio-reader-token-{reader}"


def linkerd_remote_account(reader: str) -> str:
    """Service account in a target cluster through which ``reader``'s service mirror reads it."""
    return f"linkerd-service-mirror-remote-access-{reader}"


def linkerd_gateway_mode(spec: MeshSpec) -> bool:
    """Linkerd links through gateways when the clusters span several networks, else pod to pod."""
    return is_multi_network(spec)


def gateway_address(spec: MeshSpec, target: str) -> Any:
    """The address(es) readers dial for ``target``'s gateway: its static ``eastWestGateway``
    addresses (comma-separated, as a Link takes them) or a deploy-time slot."""
    cluster = next(c for c in spec.clusters if c.name == target)
    if cluster.east_west_gateway:
        return ",".join(cluster.east_west_gateway.addresses)
    return gateway_address_slot(target)


# ---------------------------------------------------------------------------------------------
# objects


def objects(spec: MeshSpec, cluster: str, model=None) -> list[dict]:
    """The multi-cluster objects of ``cluster``: the tokens other clusters read it with, its own
    credentials for (and Links to) every other cluster, and its exported Services. Empty for a
    single cluster. ``model`` (``gamma.TrafficModel``) decides which services Linkerd exports."""
    if not pairs(spec):
        return []
    if spec.backend.type == "linkerd":
        return linkerd_objects(spec, cluster, model)
    return istio_objects(spec, cluster)


def istio_objects(spec: MeshSpec, cluster: str) -> list[dict]:
    """Istio remote-secret wiring of ``cluster`` (see the module docstring); in ambient mode also
    the ``istio.io/global`` label patches that give services cross-cluster scope."""
    mesh, out = spec.name, []
    for reader, target in pairs(spec):
        if target == cluster:
            ns, name = reader_token(spec, reader)
            out.append(k8s_object("v1", "Secret", name, ns, mesh,
                                  annotations={"kubernetes.io/service-account.name": ISTIO_READER_ACCOUNT},
                                  type="kubernetes.io/service-account-token"))
    for reader, target in pairs(spec):
        if reader == cluster:
            out.append(k8s_object("v1", "Secret", f"istio-remote-secret-{target}", ISTIO_NAMESPACE, mesh,
                                  labels={"istio/multiCluster": "true"},
                                  annotations={"networking.istio.io/cluster": target},
                                  type="Opaque", stringData={target: reader_kubeconfig_slot(target, reader)}))
    if spec.backend.istio.data_plane == "ambient":
        out += export_patches(spec, cluster, {ISTIO_GLOBAL_LABEL: "true"})
    return out


def linkerd_objects(spec: MeshSpec, cluster: str, model=None) -> list[dict]:
    """Linkerd credentials and Links of ``cluster`` towards every other cluster, and the export
    label patches of the services another cluster calls (``linkerd.exported_services`` of
    ``model``; none without a model)."""
    mesh, gateway_mode = spec.name, linkerd_gateway_mode(spec)
    out = []
    for reader, target in pairs(spec):
        if reader != cluster:
            continue
        secret = f"cluster-credentials-{target}"
        data = {"kubeconfig": reader_kubeconfig_slot(target, reader)}
        out.append(k8s_object("v1", "Secret", secret, LINKERD_MC_NAMESPACE, mesh,
                              type="mirror.linkerd.io/remote-kubeconfig", stringData=data))
        out.append(k8s_object("v1", "Secret", secret, LINKERD_NAMESPACE, mesh,
                              labels={"multicluster.linkerd.io/cluster-name": target},
                              annotations={"multicluster.linkerd.io/trust-domain": spec.trust_domain,
                                           "multicluster.linkerd.io/cluster-domain": CLUSTER_DOMAIN},
                              type="mirror.linkerd.io/remote-kubeconfig", stringData=dict(data)))
        link: dict = {
            "targetClusterName": target,
            "targetClusterDomain": CLUSTER_DOMAIN,
            "targetClusterLinkerdNamespace": LINKERD_NAMESPACE,
            "clusterCredentialsSecret": secret,
            "remoteDiscoverySelector": {"matchLabels": {EXPORT_LABEL: "remote-discovery"}},
            "federatedServiceSelector": {"matchLabels": {"mirror.linkerd.io/federated": "member"}},
        }
        if gateway_mode:
            link.update({
                "gatewayAddress": gateway_address(spec, target),
                "gatewayIdentity": f"{LINKERD_GATEWAY}.{LINKERD_MC_NAMESPACE}.serviceaccount.identity."
                                   f"{LINKERD_NAMESPACE}.{spec.trust_domain}",
                "gatewayPort": str(LINKERD_GATEWAY_PORT),
                "probeSpec": {"path": "/ready", "port": str(LINKERD_PROBE_PORT), "period": "3s"},
                "selector": {"matchLabels": {EXPORT_LABEL: "true"}},
            })
        out.append(k8s_object("multicluster.linkerd.io/v1alpha3", "Link", target, LINKERD_MC_NAMESPACE, mesh,
                              spec=link))
    from ..meshes.linkerd import exported_services  # only what another cluster calls (issue 10, point 12)

    wanted = exported_services(spec, model) if model is not None else set()
    out += [p for p in export_patches(spec, cluster, {EXPORT_LABEL: "true" if gateway_mode else "remote-discovery"})
            if (p["metadata"]["namespace"], p["metadata"]["name"]) in wanted]
    return out


def export_patches(spec: MeshSpec, cluster: str, labels: dict[str, str]) -> list[dict]:
    """A label patch (``metadata`` only, ``meta.k8s_patch``: no ownership labels) on the application's Service of
    every spec service running in ``cluster``: the application owns the Service, the mesh owns only
    these labels. The Service must exist when the patch is applied."""
    return [k8s_patch("v1", "Service", s.name, s.namespace, labels=labels)
            for s in spec.services if cluster in spec.service_clusters(s)]


# ---------------------------------------------------------------------------------------------
# kubeconfigs (filled at deploy time)


def server_and_ca(kubeconfig: str, context: str | None = None) -> tuple[str, str | None]:
    """The API server URL and base64 CA data of ``context`` (default: the current context) in a
    kubeconfig text. Raises ``ValueError`` naming what is missing."""
    doc = yaml.safe_load(kubeconfig) if isinstance(kubeconfig, str) else kubeconfig
    if not isinstance(doc, dict):
        raise ValueError("the kubeconfig is not a YAML mapping")
    name = context or doc.get("current-context")
    ctx = next((c.get("context") or {} for c in doc.get("contexts") or [] if c.get("name") == name), None)
    if ctx is None:
        raise ValueError(f"the kubeconfig has no context {name!r}")
    cluster = next((c.get("cluster") or {} for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")),
                   None)
    if not cluster or not cluster.get("server"):
        raise ValueError(f"the kubeconfig's context {name!r} names no cluster with a server")
    return cluster["server"], cluster.get("certificate-authority-data")


def tls_server_name(kubeconfig: str, context: str | None = None) -> str | None:
    """The ``tls-server-name`` of ``context``'s cluster in a kubeconfig text (the name the API
    server's certificate is checked against when ``server`` is an address it does not name), or
    None. ``istioctl create-remote-secret`` carries it into the remote secret's kubeconfig (istio
    1.30.3 istioctl/pkg/multicluster/remote_secret.go:159-166)."""
    doc = yaml.safe_load(kubeconfig) if isinstance(kubeconfig, str) else kubeconfig
    if not isinstance(doc, dict):
        return None
    name = context or doc.get("current-context")
    ctx = next((c.get("context") or {} for c in doc.get("contexts") or [] if c.get("name") == name), {})
    cluster = next((c.get("cluster") or {} for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")),
                   {})
    value = cluster.get("tls-server-name")
    return value if isinstance(value, str) and value else None


def reader_kubeconfig(target: str, server: str, ca_data: str | None, token: str,
                      server_name: str | None = None) -> str:
    """A kubeconfig for ``target`` authenticating with a service-account bearer ``token``: the
    shape ``istioctl create-remote-secret`` and ``linkerd multicluster link-gen`` write. ``ca_data``
    is base64 PEM (None: no CA pinned, the server's certificate must then be publicly trusted);
    ``server_name``: the source kubeconfig's ``tls-server-name`` (:func:`tls_server_name`), kept."""
    cluster: dict = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    if server_name:
        cluster["tls-server-name"] = server_name
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": target, "cluster": cluster}],
        "contexts": [{"name": target, "context": {"cluster": target, "user": target}}],
        "current-context": target,
        "users": [{"name": target, "user": {"token": token}}],
    }, sort_keys=False)


def decode_token_secret(data: dict | None) -> tuple[str, str | None]:
    """``(token, ca.crt as base64)`` from a service-account token Secret's ``data`` (base64 values).
    Raises ``ValueError`` while the token controller has not filled it yet."""
    data = data or {}
    if not data.get("token"):
        raise ValueError("the service-account token Secret holds no token yet (the token controller fills it "
                         "shortly after creation); run the update again")
    return base64.b64decode(data["token"]).decode(), data.get("ca.crt")


# ---------------------------------------------------------------------------------------------
# one mesh identity


def _values(states, chart: str):
    for name, st in states.items():
        for r in st.releases:
            if r.chart == chart:
                yield name, r.values


def _object_value(st, kind: str, name: str, field: str, key: str):
    for o in st.objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return (o.get(field) or {}).get(key)
    return None


def check_mesh_identity(spec: MeshSpec, states: dict) -> list[Problem]:
    """Problems when the rendered clusters of ``states`` (cluster -> ``ClusterState``) would not
    form one mesh: each cluster's Istio ``global.meshID`` must be ``mesh.name``; its trust domain
    (istiod ``meshConfig.trustDomain``, Linkerd ``identityTrustDomain`` of the control plane and the
    multicluster chart) ``mesh.trustDomain``; the roots it trusts (``cacerts`` ``root-cert.pem``,
    ``linkerd-identity-trust-roots``, ``identityTrustAnchorsPEM``) the mesh CA's one bundle. Values
    only an override can change; paths name ``mesh.clusters[i]``."""
    bundle = Slot("ca", "trust_bundle_pem")
    expected = {"meshID": (spec.name, "mesh.name"), "trust domain": (spec.trust_domain, "mesh.trustDomain"),
                "trust bundle": (bundle, "the mesh CA's trust bundle")}
    checks = (("meshID", "istiod", lambda v: (v.get("global") or {}).get("meshID")),
              ("trust domain", "istiod", lambda v: (v.get("meshConfig") or {}).get("trustDomain", "cluster.local")),
              ("trust domain", "linkerd-control-plane", lambda v: v.get("identityTrustDomain")),
              ("trust domain", "linkerd-multicluster", lambda v: v.get("identityTrustDomain")),
              ("trust bundle", "linkerd-control-plane", lambda v: v.get("identityTrustAnchorsPEM")))
    index = {c: i for i, c in enumerate(spec.cluster_names())}
    found: list[tuple[str, str, Any]] = []
    for what, chart, get in checks:
        found += [(cluster, what, get(values)) for cluster, values in _values(states, chart)]
    for cluster, st in states.items():
        for kind, name, field, key in (("Secret", "cacerts", "stringData", "root-cert.pem"),
                                       ("ConfigMap", "linkerd-identity-trust-roots", "data", "ca-bundle.crt")):
            value = _object_value(st, kind, name, field, key)
            if value is not None:
                found.append((cluster, "trust bundle", value))
    problems: list[Problem] = []
    for cluster, what, value in found:
        want, source = expected[what]
        if value != want:
            problem = (f"mesh.clusters[{index.get(cluster, 0)}]",
                       f"cluster {cluster!r} would run {what} {_show(value)}, not {_show(want)} ({source}); every "
                       f"cluster of one mesh needs the same {what}: check mesh.overrides")
            if problem not in problems:
                problems.append(problem)
    return problems


def _show(value: Any) -> str:
    return value.placeholder() if isinstance(value, Slot) else repr(value)
