"""Gateway API CRDs (``gateway.networking.k8s.io``, release v1.6.1): which bundle a cluster gets,
which API versions its objects and the controllers reading them need, and the check of a live
cluster's CRDs against those needs (``diff``). Pure: no Pulumi, no client.

Channels (kubernetes-sigs/gateway-api v1.6.1 ``config/crd/{standard,experimental}``, copied in
``../shared/crds/gateway-api``; the release's ``<channel>-install.yaml`` is every
``config/crd/<channel>/gateway*.yaml``, ``hack/build-install-yaml.sh:53-60``): the standard bundle
serves TLSRoute and TCPRoute at ``v1`` only (``v1alpha2`` is ``served: false``); the experimental
one serves ``v1`` and, deprecated, ``v1alpha2`` (and TLSRoute ``v1alpha3``). Every version the
standard bundle serves, the experimental one serves too.

Who reads which version, at the versions we pin:

- Linkerd edge-26.8.3: the policy controller watches TLSRoute at ``v1alpha2`` (pinned on purpose:
  ``policy-controller/k8s/api/src/lib.rs:41-79``, test at ``:114-126``), TCPRoute at ``v1alpha2``
  (crate gateway-api 0.21.0 ``src/apis/experimental/tcproutes.rs:18``, ``Cargo.lock``), HTTPRoute
  and GRPCRoute at ``v1`` (``httproutes.rs:18``, ``grpcroutes.rs:18``), and skips a watch whose
  version the API server does not serve (``policy-controller/runtime/src/args.rs:331-361``,
  ``api_resource_exists`` at ``:514-527`` asks discovery of that group-version). On the standard
  bundle its TLSRoutes are never read: an ``EgressNetwork`` with ``trafficPolicy: Deny`` then denies
  the very destinations the routes allow. So Linkerd clusters get the experimental bundle and
  Linkerd's TLSRoutes are rendered at ``v1alpha2`` (:data:`LINKERD_TLSROUTE`).
- Istio 1.30.3 (``pkg/config/schema/gvk/resources.gen.go``): Gateway, HTTPRoute, GRPCRoute,
  GatewayClass, TLSRoute, ListenerSet, BackendTLSPolicy at ``v1`` (lines 16, 29, 34, 37, 44, 48,
  74), ReferenceGrant at ``v1beta1`` (59), TCPRoute and UDPRoute at ``v1alpha2`` (73, 79).
- Envoy Gateway v1.9.0 (``internal/provider/kubernetes/controller.go``): every route kind,
  Gateway, GatewayClass, ListenerSet, BackendTLSPolicy at ``v1`` (2251-2856), ReferenceGrant at
  ``v1beta1`` (2666).

Both bundles serve every version Istio and Envoy Gateway read for the kinds we render, so only
Linkerd changes channel. The bundle's ``ValidatingAdmissionPolicy``
``safe-upgrades.gateway.networking.k8s.io`` (``config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml:17-23``,
the same rule in the experimental bundle; CHANGELOG/1.5-CHANGELOG.md "Upgrades and
ValidatingAdmissionPolicy") lets a Gateway API CRD be updated to the experimental channel only when
it already is experimental, so the channel is decided at first install: a cluster that has the
standard CRDs must delete that policy and its binding before the experimental bundle applies
(:data:`SWITCH_TO_EXPERIMENTAL`). Going back to standard is allowed by the rule.

Clusters whose CRDs the cloud manages (``clusters[].gatewayApiCrds: managed``) get no bundle. GKE
installs the standard channel (its API's ``CHANNEL_EXPERIMENTAL`` is "Deprecated: use
CHANNEL_STANDARD instead",
https://cloud.google.com/python/docs/reference/container/latest/google.cloud.container_v1.types.GatewayAPIConfig.Channel),
as does AKS's managed Gateway API
(https://learn.microsoft.com/en-us/dotnet/api/microsoft.azure.management.containerservice.models.managedgatewaytype.standard),
and the standard channel never serves TLSRoute ``v1alpha2`` (before v1.5 it had no TLSRoute at
all), so Linkerd's TLSRoute egress is refused there (``egress.linkerd_egress``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..spec import GATEWAY_API_VERSION

if TYPE_CHECKING:  # the live-state checks below report drift findings; the core does not import drift
    from ..drift.diff import Finding

GROUP = "gateway.networking.k8s.io"
LINKERD_TLSROUTE = f"{GROUP}/v1alpha2"
"""The apiVersion of the TLSRoutes rendered for Linkerd: the one its policy controller reads."""
RELEASE_URL = "https://github.com/kubernetes-sigs/gateway-api/releases/download/{version}/{channel}-install.yaml"
SAFE_UPGRADES = "safe-upgrades.gateway.networking.k8s.io"
SWITCH_TO_EXPERIMENTAL = (f"kubectl delete validatingadmissionpolicybinding {SAFE_UPGRADES} && "
                          f"kubectl delete validatingadmissionpolicy {SAFE_UPGRADES}")
"""What lets the experimental bundle replace standard CRDs: the bundle's admission policy refuses
it while it exists; the experimental bundle installs it again."""

READS: dict[str, dict[str, str]] = {
    "linkerd": {"HTTPRoute": "v1", "GRPCRoute": "v1", "TLSRoute": "v1alpha2", "TCPRoute": "v1alpha2"},
    "istio": {"Gateway": "v1", "GatewayClass": "v1", "HTTPRoute": "v1", "GRPCRoute": "v1", "TLSRoute": "v1",
              "ListenerSet": "v1", "BackendTLSPolicy": "v1", "ReferenceGrant": "v1beta1", "TCPRoute": "v1alpha2",
              "UDPRoute": "v1alpha2"},
    "envoy-gateway": {"Gateway": "v1", "GatewayClass": "v1", "HTTPRoute": "v1", "GRPCRoute": "v1",
                      "TLSRoute": "v1", "TCPRoute": "v1", "UDPRoute": "v1", "ListenerSet": "v1",
                      "BackendTLSPolicy": "v1", "ReferenceGrant": "v1beta1"},
}
"""controller -> kind -> the version it watches (sources in the module docstring). OSM reads no
Gateway API kind."""


def channel_for(backend: str) -> str:
    """The bundle channel installed on a cluster of ``backend`` (``istio``/``linkerd``/``osm``):
    ``experimental`` for Linkerd (TLSRoute/TCPRoute ``v1alpha2``), else ``standard``."""
    return "experimental" if backend == "linkerd" else "standard"


def manifest_url(channel: str, version: str = GATEWAY_API_VERSION) -> str:
    """The release asset of ``channel`` (``standard``/``experimental``) at ``version``."""
    return RELEASE_URL.format(version=version, channel=channel)


def channel_of_url(url: str) -> str | None:
    """The channel a release URL of :func:`manifest_url` installs, else None."""
    name = url.rpartition("/")[2]
    return name[: -len("-install.yaml")] if name.endswith("-install.yaml") else None


@dataclass(frozen=True)
class Needs:
    """What one cluster needs of its Gateway API CRDs: ``mode`` (``install``/``managed``, the
    cluster's ``gatewayApiCrds``), ``channel`` (the bundle installed; None when managed),
    ``cluster_index`` (its place in ``mesh.clusters``, for fixes) and ``versions``: sorted
    ``(kind, version, why)``, one per version a rendered object or a controller reading it needs."""

    mode: str
    channel: str | None
    cluster_index: int
    versions: tuple[tuple[str, str, str], ...]


def needs(objects: Iterable[Mapping[str, Any]], readers: Iterable[str], mode: str, channel: str | None,
          cluster_index: int) -> Needs:
    """The :class:`Needs` of a cluster whose rendered ``objects`` are read by ``readers`` (keys of
    :data:`READS`): each Gateway API object's own version (the API server must serve it to accept
    it) and, for its kind, the version each reader watches (the CRDs declare no conversion, so an
    object written at one served version is read at any other served version as the same object)."""
    out: dict[tuple[str, str], set[str]] = {}
    for o in objects:
        group, _, version = str(o.get("apiVersion", "")).rpartition("/")
        if group != GROUP:
            continue
        kind, name = o["kind"], f"{o['metadata'].get('namespace', '-')}/{o['metadata']['name']}"
        out.setdefault((kind, version), set()).add(f"{kind} {name}")
        for reader in readers:
            if (read := READS.get(reader, {}).get(kind)) is not None:
                out.setdefault((kind, read), set()).add(f"{reader} reads {kind} at {read}")
    return Needs(mode, channel, cluster_index,
                 tuple(sorted((k, v, "; ".join(sorted(why))[:200]) for (k, v), why in out.items())))


def served_versions(crds: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``kind -> {"served": set of served versions, "channel": str|None, "bundle": str|None}`` of the
    Gateway API CRDs among ``crds`` (CustomResourceDefinition dicts, from files or a cluster)."""
    out: dict[str, dict[str, Any]] = {}
    for crd in crds:
        if crd.get("kind") != "CustomResourceDefinition" or (crd.get("spec") or {}).get("group") != GROUP:
            continue
        annotations = (crd.get("metadata") or {}).get("annotations") or {}
        out[crd["spec"]["names"]["kind"]] = {
            "served": {v["name"] for v in crd["spec"].get("versions") or [] if v.get("served")},
            "channel": annotations.get(f"{GROUP}/channel"), "bundle": annotations.get(f"{GROUP}/bundle-version")}
    return out


def crd_name(kind: str) -> str:
    """The CRD name of a Gateway API ``kind`` (``tlsroutes.gateway.networking.k8s.io``)."""
    from ..drift.live import plural_of

    return f"{plural_of(kind)}.{GROUP}"


def _fix(n: Needs, live_channels: set[str]) -> str:
    where = f"mesh.clusters[{n.cluster_index}].gatewayApiCrds"
    if n.mode == "managed":
        return (f"the cloud manages these CRDs ({where}: managed): upgrade the cloud's Gateway API (GKE and AKS "
                f"install the standard channel, which never serves TLSRoute/TCPRoute v1alpha2), or turn its "
                f"management off and set {where}: install, so that pulumi up installs Gateway API "
                f"{GATEWAY_API_VERSION}")
    fix = f"pulumi up installs Gateway API {GATEWAY_API_VERSION} ({n.channel} channel), which serves it"
    if n.channel == "experimental" and "standard" in live_channels:
        fix += (f"; the live CRDs are the standard channel, and the bundle's {SAFE_UPGRADES} admission "
                f"policy refuses experimental CRDs over them: first {SWITCH_TO_EXPERIMENTAL}")
    return fix


def check_crds(cluster: str, n: Needs, live_crds: Iterable[Mapping[str, Any]],
               read: bool = True) -> tuple[list[Finding], list[str]]:
    """``(findings, notes)`` for one cluster: a finding (check ``gateway-api-crds``, subject
    ``<kind> <version>``, the fix in its message) for every version of ``n.versions`` that the
    live CustomResourceDefinitions ``live_crds`` do not serve, a missing CRD included. ``read``:
    the CRDs were read by name, so an absent one is not installed; otherwise (a dump) no CRD at
    all means none were dumped, and a note says the check did not run."""
    from ..drift.diff import Finding

    crds = [o for o in live_crds if o.get("kind") == "CustomResourceDefinition"]
    if not n.versions:
        return [], []
    if not crds and not read:
        return [], [f"Gateway API CRDs not read (add `kubectl get crd -o yaml` to the dump): the served "
                    f"versions {', '.join(sorted({f'{k} {v}' for k, v, _ in n.versions}))} were not checked"]
    live = served_versions(crds)
    channels = {c for info in live.values() if (c := info["channel"])}
    findings = []
    for kind, version, why in n.versions:
        info = live.get(kind)
        if info is None:
            what = f"{crd_name(kind)} is not installed"
        elif version not in info["served"]:
            what = (f"{crd_name(kind)} (channel {info['channel'] or 'unknown'}, bundle {info['bundle'] or 'unknown'}) "
                    f"serves {', '.join(sorted(info['served'])) or 'no version'}, not {version}")
        else:
            continue
        findings.append(Finding("gateway-api-crds", cluster, f"{kind} {version}",
                                f"{what}; needed by {why}. Fix: {_fix(n, channels)}"))
    if n.mode == "install":
        findings += helm_owned_crds(cluster, crds)
    return findings, []


HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"


def helm_owned_crds(cluster: str, crds: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """A finding (check ``gateway-api-crds-owner``, subject the CRD name) for each Gateway API CRD
    among ``crds`` that a Helm release owns (annotation ``meta.helm.sh/release-name``), on a
    cluster where the mesh installs the bundle. linkerd-crds up to edge-25.9.3 installed them
    (``installGatewayAPI: true``, linkerd2 ``charts/linkerd-crds/values.yaml:4``) with
    ``helm.sh/resource-policy: keep`` (``templates/gateway.networking.k8s.io_tlsroutes.yaml:11``),
    so they outlive the chart's switch to ``false``; the bundle's create then fails with
    AlreadyExists (pulumi-kubernetes 4.29.0 CHANGELOG, ``provider/pkg/await/await.go`` ``Creation``)
    unless the provider upserts (``PULUMI_K8S_UPSERT_EXISTING_OBJECTS``,
    ``provider/pkg/provider/provider.go`` ``upsertExistingObjects``)."""
    from ..drift.diff import Finding

    out = []
    for crd in crds:
        meta = crd.get("metadata") or {}
        release = (meta.get("annotations") or {}).get(HELM_RELEASE_ANNOTATION)
        if (crd.get("spec") or {}).get("group") != GROUP or not release:
            continue
        ns = (meta.get("annotations") or {}).get("meta.helm.sh/release-namespace", "?")
        name = meta.get("name", "?")
        out.append(Finding("gateway-api-crds-owner", cluster, name,
                           f"{name} belongs to Helm release {ns}/{release} (kept by helm.sh/resource-policy: keep), "
                           f"not to the mesh's Gateway API {GATEWAY_API_VERSION} bundle, whose create then fails with "
                           f"AlreadyExists. Fix: stop the release installing it (linkerd-crds: installGatewayAPI: "
                           f"false, which pulumi up sets), drop Helm's claim (kubectl annotate crd {name} "
                           f"{HELM_RELEASE_ANNOTATION}- meta.helm.sh/release-namespace- && kubectl label crd {name} "
                           f"app.kubernetes.io/managed-by-), then adopt it with one "
                           f"PULUMI_K8S_UPSERT_EXISTING_OBJECTS=true pulumi up (never delete the CRD: that deletes "
                           f"every route of its kind)"))
    return out
