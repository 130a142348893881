"""The mesh spec: the whole service mesh as data (pydantic v2), and how it is loaded.

A stack file (``stacks/Pulumi.<stack>.yaml``) holds the spec under the config key
``service-mesh:mesh``; ``__main__.py`` reads the same object with ``pulumi.Config().require_object``.
Field names in YAML are camelCase (``trustDomain``); in Python they are snake_case.

Validation happens in two passes, and both report *every* problem with the field path and the fix:

1. shape (pydantic): types, enums, unknown fields (with the nearest real field), DNS-1123 names,
   port ranges, weights;
2. references (:func:`check_references`): clusters, namespaces, services, service accounts and
   split backends named anywhere must exist; names must be unique; cross-field rules.

SMI documents named by ``smiFiles`` are read and checked by :mod:`mesh_components.spec.smi`; their
problems are reported together with the spec's.
"""
from __future__ import annotations

import difflib
import math
import os
import re
import typing
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      field_validator, model_validator)
from pydantic.alias_generators import to_camel

from .errors import Problem, SpecError
from .names import dns1123_label_problem, dns1123_subdomain_problem, label_problem
from . import yaml_source
from .yaml_source import is_finite_integral, shown

CONFIG_KEY = "mesh"
PROJECT = "service-mesh"

DEFAULT_VERSIONS = {"istio": "1.30.3", "linkerd": "2026.8.3", "osm": "1.2.4"}
"""Chart versions pinned per backend (the versions in ../shared/charts/SOURCES.md)."""
GATEWAY_API_VERSION = "v1.6.1"
"""Gateway API CRD release installed where a backend needs it (ambient, GAMMA, ingress)."""


# ---------------------------------------------------------------------------------------------
# name types


def _label(v: str) -> str:
    problem = dns1123_label_problem(v)
    if problem:
        raise ValueError(problem)
    return v


def _subdomain(v: str) -> str:
    problem = dns1123_subdomain_problem(v)
    if problem:
        raise ValueError(problem)
    return v


def _labels(v: dict[str, str]) -> dict[str, str]:
    for key, value in v.items():
        problem = label_problem(key, value)
        if problem:
            raise ValueError(problem)
    return v


def _host(v: str) -> str:
    bare = v[2:] if v.startswith("*.") else v
    if v == "*" or dns1123_subdomain_problem(bare):
        raise ValueError(f"{v!r} is not a host name: give an exact DNS name such as 'api.example.com'"
                         " (a leading '*.' is a wildcard)")
    return v


DnsLabel = Annotated[str, AfterValidator(_label)]
DnsSubdomain = Annotated[str, AfterValidator(_subdomain)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
Host = Annotated[str, AfterValidator(_host)]
def _whole_number(v: Any) -> int:
    """A YAML/JSON number that is a whole number, as Kubernetes reads its integer fields (a port is an
    ``int32``: ``true``, ``80.5`` or ``"80"`` is refused by the API server's JSON decoding). pydantic's
    lax ``int`` would take ``true`` as 1 and ``"80"`` as 80; ``80.0`` is taken, ``.inf``/``.nan``
    (YAML) or ``1e400`` (JSON, which reads it as infinity) are not."""
    if isinstance(v, bool):
        raise ValueError(f"expected a whole number, got the boolean {shown(v)}")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if is_finite_integral(v):
            return int(v)
        raise ValueError(f"expected a whole number, got {v!r}" if math.isfinite(v) else
                         f"expected a whole number, got {str(v).replace('inf', 'infinity')} "
                         f"(YAML .inf/.nan, or a number too large for a float)")
    if isinstance(v, str):
        try:
            number: float | None = float(v)
        except ValueError:
            number = None
        if number is not None and is_finite_integral(number):
            raise ValueError(f"expected a whole number, got the string {shown(v)}: write it as {int(number)}, "
                             f"without quotes")
        if number is not None:  # 1e400: YAML 1.1 reads an exponent without a '.' as a string
            raise ValueError(f"expected a whole number, got {shown(v)}"
                             + ("" if math.isfinite(number) else ", which is too large for any number"))
        raise ValueError(f"expected a whole number, got the string {shown(v)}")
    raise ValueError(f"expected a whole number, got {_kind(v)}")


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
"""An ``int`` field that takes only whole numbers (:func:`_whole_number`); ranges go in ``Field``."""
PortNumber = Annotated[WholeNumber, Field(ge=1, le=65535)]
Days = Annotated[WholeNumber, Field(ge=1, le=36500)]


class Base(BaseModel):
    """Shared model settings: camelCase aliases, unknown fields refused, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              frozen=True)


# ---------------------------------------------------------------------------------------------
# clusters


class KubeconfigSource(Base):
    """Where a cluster's kubeconfig comes from: exactly one of ``file``, ``env``, ``stackReference``.

    - ``file`` (path, ``~`` expanded) with an optional ``context``;
    - ``env``: an environment variable holding the kubeconfig text or a path to it;
    - ``stackReference`` + ``output``: an output of another Pulumi stack (e.g. the stack that made
      the EKS cluster), https://www.pulumi.com/docs/iac/concepts/stacks/#stackreferences.

    Text from ``file`` or ``env`` is cut to ``context`` (default: its current context) before it
    reaches the cluster's provider (:func:`minify_kubeconfig`); relative paths in a file are
    resolved against the file's directory, as kubectl does.
    """

    file: str | None = None
    context: str | None = None
    env: str | None = None
    stack_reference: str | None = None
    output: str = "kubeconfig"

    @model_validator(mode="after")
    def _one_source(self) -> "KubeconfigSource":
        given = [k for k in ("file", "env", "stack_reference") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of 'file' (with optional 'context'), 'env' or "
                             "'stackReference' (with 'output')")
        return self


def minify_kubeconfig(text: str, context: str | None = None, base_dir: str | os.PathLike | None = None) -> str:
    """``text`` (a kubeconfig) cut to one context, as ``kubectl config view --minify --raw`` does:
    ``context`` (default: its ``current-context``), that context's cluster and user, and
    ``current-context`` set to it; YAML with sorted keys, so the same entries give the same bytes
    whatever else the file holds or in which order. Other contexts' credentials never reach a
    provider's inputs (the stack's state), and the text changes only when the chosen entries do.

    ``base_dir``: the directory of the file ``text`` was read from (None for text that came from no
    file, e.g. a variable holding it). Relative file references of the kept entries are resolved
    against it, as client-go does for a kubeconfig it loads from a file (``ResolveLocalPaths``:
    the cluster's ``certificate-authority``, the user's ``client-certificate``, ``client-key``,
    ``tokenFile``, and ``exec.command`` only when it holds a path separator, a bare command being
    looked up on ``PATH``; kubernetes/client-go v0.36.1 ``tools/clientcmd/loader.go`` lines
    511-540, 605-630). The provider needs them absolute: it loads the text it is given with
    ``clientcmd.Load`` and never resolves them (pulumi-kubernetes v4.32.0
    ``provider/pkg/provider/util.go`` ``parseKubeconfigString``, lines 133-169), so a relative
    path would be read against the provider's working directory. Absolute and empty references
    are kept; the result then names the absolute path, which is part of the state.

    Raises ``ValueError`` (a message without any value from the file) when ``text`` is not a
    kubeconfig mapping, names no context, or the context, its cluster or its user is missing.
    Source: https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/
    (a context is a cluster, a user and a namespace, each referred to by name)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"is not valid YAML ({getattr(e, 'problem', None) or 'unparseable'})") from None
    if not isinstance(doc, dict):
        raise ValueError("is not a kubeconfig (a YAML mapping with clusters, contexts and users)")
    name = context or doc.get("current-context")
    if not name:
        raise ValueError("sets no current-context; name the context with kubeconfig.context")

    def entry(section: str, wanted: Any) -> dict | None:
        return next((e for e in doc.get(section) or [] if isinstance(e, dict) and e.get("name") == wanted), None)

    ctx = entry("contexts", name)
    if ctx is None:
        have = sorted(str(e.get("name")) for e in doc.get("contexts") or [] if isinstance(e, dict))
        raise ValueError(f"has no context {name!r} (it has {', '.join(have) or 'none'})")
    body = ctx.get("context") or {}
    cluster = entry("clusters", body.get("cluster"))
    if cluster is None:
        raise ValueError(f"context {name!r} names cluster {body.get('cluster')!r}, which the file does not define")
    user = entry("users", body.get("user")) if body.get("user") else None
    if body.get("user") and user is None:
        raise ValueError(f"context {name!r} names user {body.get('user')!r}, which the file does not define")
    if base_dir is not None:
        cluster, user = _resolve_local_paths(cluster, user, os.path.abspath(base_dir))
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [cluster], "contexts": [ctx],
                           "current-context": name, "users": [user] if user else []},
                          sort_keys=True, default_flow_style=False)


def _resolve_local_paths(cluster: dict, user: dict | None, base: str) -> tuple[dict, dict | None]:
    """Copies of a kubeconfig's ``cluster`` and ``user`` entries with client-go's file references
    made absolute against ``base`` (see :func:`minify_kubeconfig`; ``ResolvePaths`` joins and
    cleans, as ``os.path.normpath(os.path.join(...))`` does)."""
    def resolve(holder: Any, key: str) -> None:
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, str) and value and not os.path.isabs(value):
            holder[key] = os.path.normpath(os.path.join(base, value))

    cluster = {**cluster, "cluster": dict(cluster.get("cluster") or {})}
    resolve(cluster["cluster"], "certificate-authority")
    if user is None:
        return cluster, None
    user = {**user, "user": dict(user.get("user") or {})}
    for key in ("client-certificate", "client-key", "tokenFile"):
        resolve(user["user"], key)
    exec_ = user["user"].get("exec")
    if isinstance(exec_, dict) and os.sep in str(exec_.get("command") or ""):
        user["user"]["exec"] = exec_ = dict(exec_)
        resolve(exec_, "command")
    return cluster, user


class EastWestGateway(Base):
    """Pre-allocated addresses for a cluster's east-west gateway load balancer (Istio's
    ``istio-eastwestgateway``, Linkerd's ``linkerd-gateway``).

    Load balancers that hand out host names break cross-network discovery (istio#29359,
    linkerd2#5343), so peers are given these IPv4 ``addresses`` directly (Istio
    ``global.meshNetworks`` gateways, the Linkerd ``Link`` gateway address), and the cloud is asked
    for exactly them:

    - aws (AWS Load Balancer Controller NLB): ``subnets`` lists the NLB's subnets, one address per
      subnet in the same order; internet-facing NLBs take ``eipAllocations`` (the Elastic IPs that
      hold ``addresses``, annotation ``aws-load-balancer-eip-allocations``), internal ones
      (``internalLoadBalancers: true``) take ``addresses`` as private IPv4 addresses
      (``aws-load-balancer-private-ipv4-addresses``);
      https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/
    - azure: one address (annotation ``service.beta.kubernetes.io/azure-load-balancer-ipv4``),
      https://learn.microsoft.com/azure/aks/static-ip ;
    - gcp and onprem: one address (Service ``loadBalancerIP``), https://cloud.google.com/kubernetes-engine/docs/concepts/service-load-balancer-parameters .
    """

    addresses: list[str] = Field(min_length=1)
    subnets: list[str] = []
    eip_allocations: list[str] = []


class Cluster(Base):
    """One Kubernetes cluster of the mesh.

    ``network`` groups clusters with direct pod-to-pod reachability (Istio ``global.network``);
    clusters on different networks talk through east-west gateways. Default: one network for all.
    One network across regions is a claim about the underlay: confirm it in ``mesh.flatNetworks``
    (else ``validate`` warns, :func:`topology_warnings`).
    """

    name: DnsLabel
    cloud: Literal["aws", "azure", "gcp", "onprem"]
    region: str = Field(min_length=1)
    network: DnsLabel | None = None
    kubeconfig: KubeconfigSource | None = None
    internal_load_balancers: bool = False
    """Ask the cloud for internal (VPC-only) load balancers for the gateways of this cluster."""
    east_west_gateway: EastWestGateway | None = None
    """Static addresses of this cluster's east-west (cross-network) gateway; see :class:`EastWestGateway`."""
    node_local_dns: str | None = None
    """The address pods resolve names at when the cluster runs NodeLocal DNSCache (commonly
    ``169.254.20.10``, a host-network listener no pod selector matches,
    https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/): Istio ambient's egress
    NetworkPolicy then also admits it (``ipBlock`` /32 or /128, UDP and TCP 53)."""
    gateway_api_crds: Literal["install", "managed"] = "install"
    """Who installs the Gateway API CRDs (``gateway.networking.k8s.io``) on this cluster.

    - ``install`` (default): the mesh applies Gateway API v1.6.1's release bundle where the cluster
      needs it, the ``experimental`` channel for Linkerd (its policy controller reads TLSRoute and
      TCPRoute only at ``v1alpha2``, which v1.6.1 serves only there) and the ``standard`` channel
      otherwise (``mesh_components.core.gateway_api``). The channel is fixed at first install: the
      bundle's ``safe-upgrades.gateway.networking.k8s.io`` admission policy refuses experimental
      CRDs over standard ones (README, "Gateway API CRDs").
    - ``managed``: the cloud owns them (GKE with the Gateway API enabled, AKS's managed Gateway
      API; both install the standard channel). Nothing installs or changes them here, custom
      resources wait only for the control plane, ``diff`` checks that the live CRDs serve every
      version the stack's objects and their controllers need, and what the standard channel cannot
      serve (Linkerd's ``v1alpha2`` TLSRoute egress) is refused."""

    @field_validator("node_local_dns")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        import ipaddress

        if v is not None:
            try:
                ipaddress.ip_address(v)
            except ValueError:
                raise ValueError(f"{v!r} is not an IP address; give the node-local DNS cache's listen address, "
                                 f"e.g. 169.254.20.10") from None
        return v


# ---------------------------------------------------------------------------------------------
# backend and CA


ChartVersion = Annotated[str, Field(pattern=r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")]


class IstioRevision(Base):
    """One installed istiod revision: ``name`` (``istio.io/rev``, e.g. ``1-30``) and the chart
    ``version`` it runs (default: ``backend.version``, else the pinned Istio version)."""

    name: DnsLabel
    version: ChartVersion | None = None


class IstioOptions(Base):
    """Istio options: data plane ``sidecar`` (Envoy per pod) or ``ambient`` (ztunnel + waypoints),
    and the control-plane revisions (https://istio.io/latest/docs/setup/upgrade/canary/).

    - ``revision``: one revision, as before (istiod release ``istiod``, namespaces labelled
      ``istio.io/rev: <revision>``);
    - ``revisions`` + ``tag``: canary upgrades. Each revision is its own istiod release
      ``istiod-<name>``; namespaces are labelled ``istio.io/rev: <tag>`` and the istiod of
      ``tagRevision`` serves the tag (chart value ``revisionTags``). Upgrade in two updates: add the
      new revision and point ``tagRevision`` at it (the old one keeps serving pods not yet
      restarted), restart workloads, then remove the old revision.
    """

    data_plane: Literal["sidecar", "ambient"] = "sidecar"
    revision: DnsLabel | None = None
    revisions: list[IstioRevision] = []
    tag: DnsLabel | None = None
    tag_revision: DnsLabel | None = None


class FailoverRegion(Base):
    """Istio ``localityLbSetting.failover`` entry: traffic from ``from`` fails over to ``to`` (regions)."""

    from_: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)


class LocalityFailover(Base):
    """Locality-aware routing with failover across zones and regions: requests stay in the caller's
    zone, then region, and move on when outlier detection ejects the local endpoints.

    Istio: ``localityLbSetting`` with ``outlierDetection`` in a DestinationRule per service
    (https://istio.io/latest/docs/tasks/traffic-management/locality-load-balancing/failover/);
    ``services`` none: every service of the mesh (and the mesh-wide ``localityLbSetting``), else
    only those listed. ``failover`` orders regions explicitly (default: Istio's own order).
    Outlier detection: eject after ``consecutive5xxErrors`` errors, checked every
    ``intervalSeconds``, for at least ``baseEjectionSeconds``. Linkerd and OSM have no equivalent
    and refuse it.
    """

    services: list["ServiceRef"] | None = None
    failover: list[FailoverRegion] = []
    consecutive_5xx_errors: WholeNumber = Field(5, ge=1, le=1000, alias="consecutive5xxErrors")
    interval_seconds: WholeNumber = Field(10, ge=1, le=3600)
    base_ejection_seconds: WholeNumber = Field(30, ge=1, le=86400)


class Scraper(Base):
    """A metrics scraper by identity (a meshed Prometheus): its service account and namespace."""

    namespace: DnsLabel
    service_account: DnsSubdomain


class IngressIdentity(Base):
    """A meshed workload the stack does not declare or police, by identity (its service account and
    namespace), that SMI TrafficTargets may name as a source: an ingress gateway you run yourself
    (Istio's ``istio-system/istio-ingressgateway-service-account``, a Gateway-API-deployed
    ``<gateway>-istio``). Admitted as exactly that identity (Istio principal
    ``<trustDomain>/ns/<namespace>/sa/<serviceAccount>``, Linkerd
    ``<serviceAccount>.<namespace>.serviceaccount.identity.linkerd.<trustDomain>``, OSM the
    TrafficTarget source itself), nothing wider; a destination must still be a declared service."""

    namespace: DnsLabel
    service_account: DnsSubdomain


class LinkerdOptions(Base):
    """Linkerd options. ``scrapers``: the identities allowed to scrape the proxies' metrics
    (``/metrics`` on the ``linkerd-admin`` port 4191) in the namespaces whose default inbound
    policy we set (``config.linkerd.io/default-inbound-policy: deny`` blocks scrapes there);
    rendered as ``linkerd viz allow-scrapes`` renders it (linkerd2 edge-26.8.3
    viz/cmd/allow-scrapes.go:13-108), with the proxy's own probes kept open. Scrapers must be
    meshed (they are admitted by mTLS identity).

    ``egressOpenNamespaces``: namespaces, of the spec or not, that keep open egress despite the
    mesh's global ``Deny`` EgressNetwork in ``linkerd-egress``: each gets an ``Allow``
    EgressNetwork ``mesh-egress-open`` of its own, which replaces the global ones there (linkerd2
    edge-26.8.3 ``policy-controller/k8s/index/src/outbound/index/egress_network.rs:61-78``). The
    namespace must exist; one that is a source of an ``egress`` rule is refused.

    ``traceCollector``: the mesh identity (namespace and service account) of the trace collector
    at ``mesh.telemetry.tracing.address``: Linkerd's proxies export spans over mTLS and check the
    collector's identity (chart values ``proxy.tracing.collector.meshIdentity``, required when
    tracing is on: linkerd2 edge-26.8.3 ``charts/partials/templates/_proxy.tpl:162-169``), so the
    collector must be meshed; required with Linkerd tracing (``mesh_components.core.telemetry.linkerd``)."""

    scrapers: list[Scraper] = []
    egress_open_namespaces: list[DnsLabel] = []
    trace_collector: Scraper | None = None


class Backend(Base):
    """The mesh implementation and its pinned version (default: the charts in ../shared/charts),
    its Istio or Linkerd options and, optionally, locality-aware failover."""

    type: Literal["istio", "linkerd", "osm"]
    version: ChartVersion | None = None
    istio: IstioOptions = IstioOptions()
    linkerd: LinkerdOptions = LinkerdOptions()
    locality_failover: LocalityFailover | None = None

    @property
    def chart_version(self) -> str:
        return self.version or DEFAULT_VERSIONS[self.type]


class RootRotation(Base):
    """Staged root rotation (see ``mesh_components.core.ca``): bump ``generation`` to start one, then
    apply the stages in order, one ``pulumi up`` each; ``overlapDays`` is the minimum wait, in days,
    before the old root is removed."""

    generation: WholeNumber = Field(1, ge=1)
    stage: Literal["none", "addNewRoot", "reissueIntermediates", "removeOldRoot"] = "none"
    overlap_days: WholeNumber = Field(7, ge=0, le=3650)


class VaultSigner(Base):
    """External root signer: HashiCorp Vault PKI ``sign-intermediate``
    (https://developer.hashicorp.com/vault/api-docs/secret/pki#sign-intermediate)."""

    address: str = Field(pattern=r"^https?://")
    mount: str = "pki"
    role: str | None = None
    token_config: str = "vaultToken"
    """Name of the Pulumi secret config key that holds the Vault token."""


_SPIFFE_TRUST_DOMAIN = r"^[a-z0-9._-]{1,255}$"
"""A SPIFFE trust domain name (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md#21-trust-domain)."""


class SpireOptions(Base):
    """``ca.mode: spire`` (Istio sidecars only): SPIRE issues the workload identities
    (``mesh_components.core.spire``), with the mesh CA's per-cluster intermediate as its
    ``disk`` UpstreamAuthority, so every SVID chains to the one mesh root.

    - ``namespace``: where the ``spire-crds`` and ``spire`` releases go (default ``spire-server``,
      as istio.io's SPIRE integration page installs them);
    - ``trustDomains``: cluster -> its SPIRE trust domain. Default: ``mesh.trustDomain`` for every
      cluster (one trust domain). Give every cluster its own to federate them
      (``ClusterFederatedTrustDomain``); then ``bundleEndpoints`` is required;
    - ``bundleEndpoints``: cluster -> the ``https://host:port`` URL at which the other clusters'
      SPIRE servers reach that cluster's federation bundle endpoint (the spire-server Service's
      ``federation`` port, 8443; expose it yourself, e.g. with a load balancer).
    """

    namespace: DnsLabel = "spire-server"
    trust_domains: dict[str, Annotated[str, Field(pattern=_SPIFFE_TRUST_DOMAIN)]] = {}
    bundle_endpoints: dict[str, Annotated[str, Field(pattern=r"^https://[^/\s@]+(/\S*)?$")]] = {}


class CASpec(Base):
    """The mesh certificate authority: one root, one intermediate per cluster.

    ``mode``: ``managed`` (Pulumi mints the root), ``byoRoot`` (root cert/key from the secret config
    keys ``rootCertConfig``/``rootKeyConfig``), ``intermediateOnly`` (each cluster's intermediate
    from the secret config object ``intermediatesConfig``), ``vault`` (root stays in Vault),
    ``spire`` (Pulumi mints the root as in ``managed``; SPIRE issues workload certificates under
    each cluster's intermediate, options in ``spire``: :class:`SpireOptions`).
    Validities and the rotation window are in days.
    """

    mode: Literal["managed", "byoRoot", "intermediateOnly", "vault", "spire"] = "managed"
    key_algorithm: Literal["ECDSA_P256", "RSA_2048", "RSA_3072", "RSA_4096"] | None = None
    """Default: ECDSA_P256, except RSA_2048 for OSM (which reads only RSA CA keys)."""
    root_validity_days: Days = 3650
    intermediate_validity_days: Days = 365
    rotation_window_days: Days = 30
    root_rotation: RootRotation = RootRotation()
    root_cert_config: str = "caRootCert"
    root_key_config: str = "caRootKey"
    intermediates_config: str = "caIntermediates"
    vault: VaultSigner | None = None
    spire: SpireOptions | None = None
    """SPIRE options of ``mode: spire`` (default: :class:`SpireOptions` defaults)."""

    @property
    def root_mode(self) -> str:
        """The CA resource's mode (``core.ca.MODES``): ``managed`` for ``spire``, else ``mode``."""
        return "managed" if self.mode == "spire" else self.mode


# ---------------------------------------------------------------------------------------------
# workloads


class Namespace(Base):
    """An application namespace and the clusters it spans (default: every cluster).

    ``defaultInboundPolicy`` (Linkerd only): the namespace's
    ``config.linkerd.io/default-inbound-policy``, which decides every port no ``Server`` selects.
    Default: ``deny`` in a namespace that holds a destination of an access rule (the chart's own
    default, ``all-unauthenticated``, would admit any client, even unmeshed, on undeclared ports),
    none elsewhere. See ``mesh_components.meshes.linkerd.default_inbound_policy``."""

    name: DnsLabel
    clusters: list[str] | None = None
    default_inbound_policy: Literal["deny", "cluster-authenticated", "all-authenticated", "cluster-unauthenticated",
                                    "all-unauthenticated"] | None = None


class ServicePort(Base):
    """A service port; ``protocol`` decides L7 (http, http2, grpc) or L4 (tcp, tls) handling."""

    port: PortNumber
    name: DnsLabel | None = None
    protocol: Literal["http", "http2", "grpc", "tcp", "tls"] = "http"
    target_port: PortNumber | None = None
    probe_paths: list[Annotated[str, Field(pattern=r"^/[^?#\s]*$")]] = []
    """Paths the kubelet's ``httpGet`` probes (liveness, readiness, startup) request on this port's
    target port. Linkerd admits them, unauthenticated, where the policy controller would drop its
    own probe route (a ``Server`` with ``HTTPRoute``s; ``mesh_components.meshes.linkerd.probe_objects``)."""
    server_first: bool = False
    """A ``tcp`` port whose server speaks first (MySQL, PostgreSQL, SMTP, Redis...): no proxy may
    wait for the client's first bytes to detect the protocol. OSM reads it as ``tcp-server-first``
    (set as the Service port's ``appProtocol``), Istio and Linkerd need it declared TCP or opaque;
    see ``mesh_components.core.app_protocol``."""

    @model_validator(mode="after")
    def _server_first_is_tcp(self) -> "ServicePort":
        if self.server_first and self.protocol != "tcp":
            raise ValueError(f"serverFirst applies to protocol tcp (a server-first protocol is opaque TCP to the "
                             f"mesh), not {self.protocol!r}; set protocol: tcp or remove serverFirst")
        return self

    @property
    def is_http(self) -> bool:
        return self.protocol in ("http", "http2", "grpc")

    @property
    def port_name(self) -> str:
        return self.name or f"{self.protocol}-{self.port}"


class ServiceVersion(Base):
    """A version of a service (e.g. ``v1``): pods carrying ``labels`` (default ``version: <name>``),
    reachable as the backend Service ``<service>-<version>`` (an SMI TrafficSplit backend)."""

    name: DnsLabel
    labels: Labels = {}
    clusters: list[str] | None = None

    def pod_labels(self) -> dict[str, str]:
        return dict(self.labels) or {"version": self.name}


Duration = Annotated[str, Field(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")]
"""A duration such as ``250ms``, ``5s`` or ``1m30s`` (Go/Gateway API style)."""


class Retries(Base):
    """Retry failed requests: ``attempts`` extra tries, each within ``perTryTimeout``, on the
    conditions in ``retryOn`` (Envoy ``retry_on`` names: 5xx, gateway-error, reset, connect-failure...)."""

    attempts: WholeNumber = Field(ge=1, le=10)
    per_try_timeout: Duration | None = None
    retry_on: list[str] = ["5xx"]


class CircuitBreaker(Base):
    """Connection-pool limits towards the service (Envoy circuit breakers)."""

    max_connections: WholeNumber | None = Field(None, ge=1)
    max_pending_requests: WholeNumber | None = Field(None, ge=1)
    max_requests: WholeNumber | None = Field(None, ge=1)


class OutlierDetection(Base):
    """Eject an endpoint after ``consecutiveErrors`` 5xx/gateway errors, checked every
    ``interval``, for at least ``baseEjectionTime``, at most ``maxEjectionPercent`` percent of them."""

    consecutive_errors: WholeNumber = Field(5, ge=1)
    interval: Duration = "10s"
    base_ejection_time: Duration = "30s"
    max_ejection_percent: WholeNumber = Field(50, ge=1, le=100)


class Resilience(Base):
    """What SMI lacks, per service: request ``timeout``, ``retries``, ``circuitBreaker`` and
    ``outlierDetection``; each mesh renders what it can and refuses the rest (see ``resilience``)."""

    timeout: Duration | None = None
    retries: Retries | None = None
    circuit_breaker: CircuitBreaker | None = None
    outlier_detection: OutlierDetection | None = None


class Service(Base):
    """A mesh service: its pods (``labels``, default ``app: <name>``), the service account they run
    as (default ``<name>``), ports, versions and clusters (default: its namespace's clusters).
    ``headless``: the application's Service has ``clusterIP: None`` (DNS answers with pod IPs, as
    for OSM's demo ``mysql``, osm v1.2.4 demo/deploy-mysql.sh:17-30); Istio ambient then refuses
    HTTP rules and splits for it, which its waypoint would never see."""

    name: DnsLabel
    namespace: DnsLabel
    service_account: DnsSubdomain | None = None
    labels: Labels = {}
    ports: list[ServicePort] = Field(min_length=1)
    versions: list[ServiceVersion] = []
    clusters: list[str] | None = None
    resilience: Resilience | None = None
    headless: bool = False

    @property
    def account(self) -> str:
        return self.service_account or self.name

    def pod_labels(self) -> dict[str, str]:
        return dict(self.labels) or {"app": self.name}


# ---------------------------------------------------------------------------------------------
# policy (SMI semantics)


class Identity(Base):
    """A workload identity: an SMI ``ServiceAccount`` subject (``namespace`` defaults to the rule's)."""

    service_account: DnsSubdomain
    namespace: DnsLabel | None = None


class AccessDestination(Base):
    """SMI TrafficTarget ``destination``: a service account, optionally one port."""

    service_account: DnsSubdomain
    port: PortNumber | None = None


def _http_method(v: str) -> str:
    from .smi import method_problem  # the SMI reader's rule: spec and SMI files are read alike

    problem = method_problem(v)
    if problem:
        raise ValueError(problem)
    return v


HttpMethod = Annotated[str, AfterValidator(_http_method)]
"""An SMI match method: ``*`` or an upper-case method of the SMI enum (``smi.method_problem``)."""


class HttpMatch(Base):
    """An SMI HTTPRouteGroup match: methods (``*`` for any), a path regex and header regexes.
    Methods and header names are checked here (``smi.method_problem``, ``smi.header_name_problem``);
    the regexes, which depend on the backend's engine, in ``smi.check_documents``."""

    name: DnsLabel | None = None
    methods: list[HttpMethod] = ["*"]
    path_regex: str | None = None
    headers: dict[str, str] = {}
    approximate: Literal["prefix"] | None = None
    """Accept, on purpose, translating a ``pathRegex`` a mesh cannot match exactly by its literal
    prefix (wider: every path starting with it). Shown on the rendered object as an annotation."""

    @field_validator("headers")
    @classmethod
    def _header_names(cls, v: dict[str, str]) -> dict[str, str]:
        from .smi import header_name_problem, repeated_header_problem

        problem = next(filter(None, map(header_name_problem, v)), None) or repeated_header_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class TcpMatch(Base):
    """An SMI TCPRoute match: the destination ports allowed (empty: every port)."""

    ports: list[PortNumber] = []


class AccessRule(Base):
    """Who may call whom: an SMI TrafficTarget with its routes inline.

    ``sources`` may call the pods running as ``destination.serviceAccount`` in ``namespace`` with
    the ``http`` matches (any one), on every HTTP port or, with ``tcp`` too, on its ports only
    (SMI: the TCPRoute scopes the HTTP matches); ``tcp`` alone opens its ports whole. A
    destination with any rule denies all other callers (SMI default deny).
    """

    name: DnsSubdomain
    namespace: DnsLabel
    destination: AccessDestination
    sources: list[Identity] = Field(min_length=1)
    http: list[HttpMatch] = []
    tcp: TcpMatch | None = None


class SplitBackend(Base):
    """A weighted backend: a Service name (``<service>-<version>`` or another service)."""

    service: DnsLabel
    weight: WholeNumber = Field(ge=0, le=1_000_000)


class TrafficSplit(Base):
    """SMI TrafficSplit: requests to ``service`` go to ``backends`` in proportion to their weights
    (relative integers, as in split.smi-spec.io v1alpha4)."""

    name: DnsSubdomain
    namespace: DnsLabel
    service: DnsLabel
    backends: list[SplitBackend] = Field(min_length=1)


class EgressTLSOrigination(Base):
    """TLS opened by the mesh, not by the application: the application speaks plain HTTP (or TCP)
    to ``appPort`` and the egress gateway (Istio sidecar mode) or egress waypoint (ambient)
    connects to the destination ``port`` over TLS.

    ``mode``: ``SIMPLE`` (server-authenticated TLS; the server certificate is checked against the
    system roots, or against ``ca.crt`` of ``credentialName``) or ``MUTUAL`` (client certificate:
    ``credentialName`` names a Secret in the ``mesh-egress`` namespace with ``tls.crt``,
    ``tls.key`` and ``ca.crt``). ``sni`` defaults to the host. Istio DestinationRule ``tls``:
    https://istio.io/latest/docs/tasks/traffic-management/egress/egress-gateway-tls-origination/ .
    Linkerd and OSM cannot originate TLS and refuse it.
    """

    app_port: PortNumber = 80
    mode: Literal["SIMPLE", "MUTUAL"] = "SIMPLE"
    credential_name: DnsSubdomain | None = None
    sni: Host | None = None


class EgressPort(Base):
    """An external destination port. ``https``/``tls``: TLS passthrough (the application speaks
    TLS); ``http``: plain HTTP; ``tcp``: opaque TCP. With ``tlsOrigination`` (``http`` or
    ``tcp``), the application speaks plain text to ``tlsOrigination.appPort`` and the mesh opens
    TLS to ``port``."""

    port: PortNumber
    protocol: Literal["http", "https", "tls", "tcp"] = "https"
    tls_origination: EgressTLSOrigination | None = None

    @property
    def app_port(self) -> int:
        """The port the application calls: ``tlsOrigination.appPort``, else ``port``."""
        return self.tls_origination.app_port if self.tls_origination else self.port

    @property
    def is_http(self) -> bool:
        """True when the mesh sees HTTP requests on this port (plain ``http``, with or without TLS
        origination)."""
        return self.protocol == "http"


HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", max_length=256)]
"""An HTTP header field name (RFC 9110 token)."""
ConfigKey = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=128)]
"""A Pulumi config key of this project (``pulumi config set --secret <key> ...``)."""


class EgressCredential(Base):
    """Keep an API credential out of the application: the egress gateway sets request header
    ``header`` (replacing any value the application sent) to the value of the Pulumi secret config
    key ``secretConfig`` (``pulumi config set --secret <key> 'Bearer ...'``; the whole header
    value). The value reaches the cluster only as a Kubernetes Secret mounted into the egress
    gateway, which Envoy's ``credential_injector`` filter reads through file-based SDS; it is never
    written into a custom resource or into render output. HTTP ports only (the gateway cannot see
    headers inside the application's own TLS); Istio with sidecars only."""

    header: HeaderName = "Authorization"
    secret_config: ConfigKey


class ServiceRef(Base):
    """A mesh service by name and namespace."""

    service: DnsLabel
    namespace: DnsLabel


class EgressRule(Base):
    """A named external destination and which services may reach it. Hosts are exact names; a
    ``*.`` wildcard is refused unless ``allowWildcard`` is true for this rule."""

    name: DnsLabel
    hosts: list[Host] = Field(min_length=1)
    ports: list[EgressPort] = Field(min_length=1)
    sources: list[ServiceRef] = Field(min_length=1)
    allow_wildcard: bool = False
    approximate: Literal["namespace"] | None = None
    """Accept, on purpose, a mesh that can only allow egress per namespace (Linkerd's
    EgressNetwork): every workload of the sources' namespaces may then reach the hosts."""
    credential: EgressCredential | None = None
    """Header injected at the egress gateway from a secret (see :class:`EgressCredential`)."""

    @property
    def has_wildcard(self) -> bool:
        return any(h.startswith("*.") for h in self.hosts)


class IngressRoute(Base):
    """Requests whose path starts with ``pathPrefix`` go to ``service`` on ``port``."""

    path_prefix: str = Field("/", pattern=r"^/")
    service: DnsLabel
    namespace: DnsLabel
    port: PortNumber


SecretDataKey = Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)]
"""A key of a Secret's ``data`` (Kubernetes ``IsConfigMapKey``)."""


class SecretKeyRef(Base):
    """A key of a Secret you create in cert-manager's cluster resource namespace (``cert-manager``
    when this project installs it): cert-manager v1.21.1 reads a ClusterIssuer's DNS-01 credentials
    there (pkg/controller/helper.go:39-47 ``ResourceNamespaceRef``; chart
    templates/deployment.yaml:100-103 ``--cluster-resource-namespace=$(POD_NAMESPACE)``), as
    ``data[key]`` (pkg/issuer/acme/dns/dns.go:228-236, 262-268, 320-345, 389-396): ``key`` is needed."""

    name: DnsSubdomain
    key: SecretDataKey


class CloudDNSSolver(Base):
    """Google Cloud DNS (cert-manager ``dns01.cloudDNS``): ``project``, optional ``hostedZoneName``,
    and ``serviceAccountSecretRef`` (a service-account JSON key); without it cert-manager uses ambient
    credentials (GKE Workload Identity on its service account; pkg/issuer/acme/dns/dns.go:220-241)."""

    project: str = Field(min_length=1)
    hosted_zone_name: str | None = None
    service_account_secret_ref: SecretKeyRef | None = None


class Route53Solver(Base):
    """AWS Route 53 (cert-manager ``dns01.route53``): optional ``region``, ``hostedZoneID`` and
    ``role`` (ARN to assume), and an access key as ``accessKeyIDSecretRef`` +
    ``secretAccessKeySecretRef``; without them cert-manager uses ambient credentials (IRSA, EKS Pod
    Identity; pkg/issuer/acme/dns/dns.go:295-381)."""

    region: str | None = None
    hosted_zone_id: str | None = Field(None, alias="hostedZoneID")
    role: str | None = None
    access_key_id_secret_ref: SecretKeyRef | None = Field(None, alias="accessKeyIDSecretRef")
    secret_access_key_secret_ref: SecretKeyRef | None = None

    @model_validator(mode="after")
    def _key_pair(self) -> "Route53Solver":
        if (self.access_key_id_secret_ref is None) != (self.secret_access_key_secret_ref is None):
            raise ValueError("an access key needs both accessKeyIDSecretRef and secretAccessKeySecretRef; give "
                             "both, or neither to use the cluster's ambient credentials (IRSA)")
        return self


class AzureManagedIdentity(Base):
    """Azure Workload Identity or managed identity of cert-manager (``dns01.azureDNS.managedIdentity``)."""

    client_id: str | None = Field(None, alias="clientID")
    resource_id: str | None = Field(None, alias="resourceID")
    tenant_id: str | None = Field(None, alias="tenantID")


class AzureDNSSolver(Base):
    """Azure DNS (cert-manager ``dns01.azureDNS``): ``subscriptionID``, ``resourceGroupName``,
    optional ``hostedZoneName`` and ``environment``, and either a service principal (``clientID``,
    ``tenantID`` and ``clientSecretSecretRef``, all three) or ``managedIdentity``
    (the CRD: "If set, ClientID, ClientSecret and TenantID must not be set")."""

    subscription_id: str = Field(alias="subscriptionID", min_length=1)
    resource_group_name: str = Field(min_length=1)
    hosted_zone_name: str | None = None
    environment: Literal["AzurePublicCloud", "AzureChinaCloud", "AzureGermanCloud", "AzureUSGovernmentCloud"] | None = None
    client_id: str | None = Field(None, alias="clientID")
    tenant_id: str | None = Field(None, alias="tenantID")
    client_secret_secret_ref: SecretKeyRef | None = None
    managed_identity: AzureManagedIdentity | None = None

    @model_validator(mode="after")
    def _one_identity(self) -> "AzureDNSSolver":
        principal = [self.client_id, self.tenant_id, self.client_secret_secret_ref]
        if any(v is not None for v in principal) and not all(v is not None for v in principal):
            raise ValueError("a service principal needs clientID, tenantID and clientSecretSecretRef; give all "
                             "three, or use managedIdentity")
        if self.managed_identity is not None and self.client_id is not None:
            raise ValueError("give either a service principal (clientID, tenantID, clientSecretSecretRef) or "
                             "managedIdentity, not both")
        return self


class CloudflareSolver(Base):
    """Cloudflare (cert-manager ``dns01.cloudflare``): an API token (``apiTokenSecretRef``,
    recommended upstream) or a global API key (``apiKeySecretRef`` with the account ``email``);
    exactly one (pkg/issuer/acme/dns/dns.go:245-280)."""

    api_token_secret_ref: SecretKeyRef | None = None
    api_key_secret_ref: SecretKeyRef | None = None
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @model_validator(mode="after")
    def _one_credential(self) -> "CloudflareSolver":
        if (self.api_token_secret_ref is None) == (self.api_key_secret_ref is None):
            raise ValueError("give exactly one of apiTokenSecretRef (an API token) or apiKeySecretRef (a global "
                             "API key, with email)")
        if self.api_key_secret_ref is not None and not self.email:
            raise ValueError("an API key (apiKeySecretRef) needs the account's email")
        return self


class Dns01Solver(Base):
    """A DNS-01 solver: cert-manager proves control of the name with a TXT record at the DNS
    provider, so every cluster can pass the challenge whatever its address
    (https://cert-manager.io/docs/configuration/acme/dns01/). Exactly one provider; the fields are
    cert-manager v1.21.1's ``ClusterIssuer`` ``spec.acme.solvers[].dns01`` ones
    (../shared/crds/cert-manager/cert-manager.io_clusterissuers.yaml) and pass through as given.
    Concurrent challenges from several clusters for one name do not overwrite each other: Route 53
    writes each value as its own multi-value record set (pkg/issuer/acme/dns/route53/route53.go:
    361-372), Cloud DNS merges the values (clouddns/clouddns.go:159-186), Azure DNS appends
    (azuredns/azuredns.go:175-205), Cloudflare adds a record per value."""

    cloud_dns: CloudDNSSolver | None = Field(None, alias="cloudDNS")
    route53: Route53Solver | None = None
    azure_dns: AzureDNSSolver | None = Field(None, alias="azureDNS")
    cloudflare: CloudflareSolver | None = None

    @model_validator(mode="after")
    def _one_provider(self) -> "Dns01Solver":
        if sum(p is not None for p in (self.cloud_dns, self.route53, self.azure_dns, self.cloudflare)) != 1:
            raise ValueError("give exactly one DNS provider: cloudDNS, route53, azureDNS or cloudflare")
        return self

    def provider(self) -> tuple[str, Base]:
        """``(cert-manager field name, settings)`` of the provider given."""
        return next((alias, p) for alias, p in (("cloudDNS", self.cloud_dns), ("route53", self.route53),
                                                 ("azureDNS", self.azure_dns), ("cloudflare", self.cloudflare))
                    if p is not None)

    def secret_refs(self) -> list[tuple[str, SecretKeyRef]]:
        """``(field path under dns01, ref)`` of every Secret the provider reads, in field order."""
        alias, p = self.provider()
        fields = type(p).model_fields
        return [(f"{alias}.{fields[f].alias or f}", getattr(p, f)) for f in fields
                if isinstance(getattr(p, f), SecretKeyRef)]

    def solver(self) -> dict:
        """The cert-manager ``dns01`` object (camelCase, unset fields left out)."""
        alias, p = self.provider()
        return {alias: p.model_dump(by_alias=True, exclude_none=True)}


class AcmeIssuer(Base):
    """An ACME account (Let's Encrypt by default). cert-manager answers its challenges with HTTP-01
    through this gateway (solver ``http01.gatewayHTTPRoute``,
    https://cert-manager.io/docs/configuration/acme/http01/#configuring-the-http-01-gateway-api-solver),
    or with DNS-01 at the DNS provider when ``dns01`` is given (:class:`Dns01Solver`).

    HTTP-01 needs the CA's request for ``/.well-known/acme-challenge/<token>`` to reach the cluster
    that placed the token, and DNS sends it to one address: for a host served by several clusters
    (``ingress.clusters``, default every cluster) each cluster orders its own certificate and only
    the cluster DNS points at can pass, so ``validate`` refuses HTTP-01 there."""

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    server: str = Field("https://acme-v02.api.letsencrypt.org/directory", pattern=r"^https://\S+$")
    dns01: Dns01Solver | None = None


class CertificateIssuer(Base):
    """The cert-manager issuer that signs the listener certificate.

    - only ``name`` (and ``kind``): an issuer that already exists in the cluster;
    - ``acme``: a ``ClusterIssuer`` of that name is rendered (ACME, HTTP-01 through the gateway);
    - ``meshCA: true``: an ``Issuer`` of that name in the gateway namespace, signing with the
      cluster's mesh intermediate CA (clients must trust the mesh root: internal use).
    """

    name: DnsSubdomain
    kind: Literal["ClusterIssuer", "Issuer"] | None = None
    acme: AcmeIssuer | None = None
    mesh_ca: bool = Field(False, alias="meshCA")

    @property
    def issuer_kind(self) -> str:
        """``kind`` as given, else ``Issuer`` for the mesh CA and ``ClusterIssuer`` otherwise."""
        return self.kind or ("Issuer" if self.mesh_ca else "ClusterIssuer")


class IngressTLS(Base):
    """TLS for the HTTPS listeners: the ``kubernetes.io/tls`` Secret ``secretName`` in the gateway
    namespace, supplied by the user, or written there by cert-manager when ``issuer`` is given
    (a ``Certificate`` for every ingress host)."""

    secret_name: DnsSubdomain
    issuer: CertificateIssuer | None = None


class Ingress(Base):
    """The north-south gateway: a Gateway API ``Gateway`` with HTTP listeners (redirecting to HTTPS
    when ``tls`` is set), HTTPS listeners and HTTPRoutes to mesh services.

    ``implementation``: ``istio`` (Istio's own Gateway API implementation; the default for the
    istio backend) or ``envoy-gateway`` (Envoy Gateway ``gateway-helm`` v1.9.0; the default, and the
    only choice, for linkerd and osm). ``certManager``: ``install`` the cert-manager chart where a
    ``tls.issuer`` needs it, or ``external`` when the cluster already runs cert-manager.
    """

    name: DnsLabel = "ingress"
    namespace: DnsLabel = "mesh-ingress"
    implementation: Literal["istio", "envoy-gateway"] | None = None
    hosts: list[Host] = Field(min_length=1)
    routes: list[IngressRoute] = Field(min_length=1)
    tls: IngressTLS | None = None
    clusters: list[str] | None = None
    cert_manager: Literal["install", "external"] = "install"


# ---------------------------------------------------------------------------------------------
# the mesh


class Override(Base):
    """An explicit change to a generated object: RFC 6902 JSON Patch operations (``add``,
    ``remove``, ``replace``, ``move``, ``copy``, ``test``) applied to the object named by
    ``apiVersion``/``kind``/``namespace``/``name`` in ``clusters`` (default: every cluster)."""

    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    namespace: str | None = None
    api_version: str | None = None
    clusters: list[str] | None = None
    patch: list[dict[str, Any]] = Field(min_length=1)


class Suppression(Base):
    """A finding code ``validate`` keeps quiet about, and why (``mesh.validation.suppress[]``, like
    ``istioctl analyze --suppress``): ``code`` is one of ``mesh_components.analysis.findings.FINDING_CODES``
    (the mesh-guardrails policies and ``validate``'s own codes), ``reason`` is required. A code the
    policy pack enforces as mandatory is not silenced: its findings stay errors and say why
    (``mesh_components.analysis.findings.suppress``)."""

    code: str
    reason: str

    @field_validator("code")
    @classmethod
    def _known_code(cls, v: str) -> str:
        from ..analysis.findings import FINDING_CODES

        if v not in FINDING_CODES:
            close = difflib.get_close_matches(v, list(FINDING_CODES), n=1, cutoff=0.8)
            hint = f"did you mean {close[0]!r}? " if close else ""
            shown = v if len(v) <= 60 else v[:57] + "..."
            raise ValueError(f"unknown finding code {shown!r}: {hint}the codes are {', '.join(FINDING_CODES)}")
        return v

    @field_validator("reason")
    @classmethod
    def _has_reason(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("say why this finding is accepted (the reason is kept with the stack for review)")
        return v


def _percent(v: Any) -> float:
    """A number from 0 to 100 (a percentage of requests): ``true``, strings, ``.inf``/``.nan`` refused."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected a number from 0 to 100, got {_kind(v)} {shown(v)}")
    if not math.isfinite(v) or not 0 <= v <= 100:
        raise ValueError(f"expected a number from 0 to 100 (percent of requests), got {shown(v)}")
    # proxies sample in steps of 0.01 percent (Istio: istio/api telemetry/v1alpha1/telemetry.proto:366-367,
    # "0.01% increments"; Envoy: runtime fractional percent over 10000, http_conn_man runtime.rst)
    if abs(v * 100 - round(v * 100)) > 1e-6:
        raise ValueError(f"{shown(v)} percent is finer than proxies sample (steps of 0.01 percent): "
                         f"use {round(v, 2)}")
    return float(round(v, 2))


Percent = Annotated[float, BeforeValidator(_percent)]
"""A percentage from 0 to 100 (float; ``1`` means one request in a hundred)."""


class PrometheusTarget(Base):
    """The Prometheus that collects the mesh's metrics.

    - ``mode: operator``: a Prometheus Operator runs in the cluster; the mesh renders
      ``PodMonitor``/``ServiceMonitor`` objects (monitoring.coreos.com/v1) and its recording rules as
      ``PrometheusRule``s, in ``namespace`` (default: the control plane's namespace), each labelled
      with ``labels`` (what the ``Prometheus`` object's monitor and rule selectors pick, e.g.
      ``release: kube-prometheus-stack``). The CRDs are the operator's: the mesh never installs them.
    - ``mode: annotations``: a Prometheus that discovers pods by ``prometheus.io/*`` scrape
      annotations; the recording rules go in a ConfigMap (a Prometheus rule file) to mount.
    - ``mode: bundled``: the Prometheus the mesh's own charts ship (linkerd-viz's, OSM's
      ``deployPrometheus``); a mesh that ships none (Istio) refuses it. linkerd-viz's serves its API
      to viz's ``metrics-api`` only (linkerd2 edge-26.8.3 ``viz/charts/linkerd-viz/templates/
      prometheus-policy.yaml:1-39``: no Grafana or query of yours reaches it) and has no Alertmanager,
      so ``alerts`` must be off there; ``namespace``/``labels`` that nothing rendered would carry are
      refused (``mesh_components.core.telemetry``).

    ``url``: the Prometheus's HTTP API (e.g. ``http://prometheus-operated.monitoring.svc:9090``), for
    the mesh's dashboards that query it (linkerd-viz ``prometheusUrl``)."""

    mode: Literal["operator", "annotations", "bundled"] = "operator"
    namespace: DnsLabel | None = None
    labels: Labels = {}
    url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")] | None = None

    @model_validator(mode="after")
    def _not_ownership_labels(self) -> "PrometheusTarget":
        from ..core.meta import MANAGED_BY_LABEL, MESH_LABEL

        if taken := sorted(set(self.labels) & {MANAGED_BY_LABEL, MESH_LABEL}):
            raise ValueError(f"labels {taken}: the mesh sets these on every object it owns (its ownership "
                             f"labels); select the monitors by another label")
        return self


class TelemetryAlerts(Base):
    """Alerts rendered beside the recording rules: ``plaintextTraffic`` fires when the mesh's metrics
    show a request between meshed workloads without mutual TLS; ``certificateExpiryDays`` fires when a
    certificate the mesh exports the expiry of ends within that many days (None: no such alert)."""

    plaintext_traffic: bool = True
    certificate_expiry_days: Days | None = 7


class Metrics(Base):
    """Metrics collection (on by default once ``telemetry`` is given): scraped every
    ``scrapeIntervalSeconds`` (seconds) by ``prometheus``; ``goldenSignals`` renders recording rules
    for request rate, error rate and latency percentiles per declared service and per access rule,
    named the same on every mesh (``mesh_components.core.telemetry.golden_signals``)."""

    enabled: bool = True
    scrape_interval_seconds: WholeNumber = Field(30, ge=5, le=3600)
    prometheus: PrometheusTarget = PrometheusTarget()
    golden_signals: bool = True
    alerts: TelemetryAlerts = TelemetryAlerts()


class AccessLogs(Base):
    """Proxy access logs, written to the proxy container's log (``kubectl logs -c <proxy>``; Envoy's
    on standard output, Linkerd's proxy on standard error, linkerd2-proxy v2.366.0
    ``linkerd/tracing/src/access_log.rs:96-101``): ``format`` text or JSON; ``filter: errors`` logs
    only requests answered with an HTTP status of 400 or more (a mesh that cannot filter refuses it).
    Linkerd logs inbound HTTP requests only (``linkerd/app/inbound/src/http/server.rs:88``): neither
    the requests a pod sends nor TCP connections (``mesh_components.core.telemetry.linkerd``)."""

    enabled: bool = False
    format: Literal["text", "json"] = "text"
    filter: Literal["all", "errors"] = "all"


_COLLECTOR = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[0-9]{1,5}$"


class Tracing(Base):
    """Distributed tracing: spans sent to the collector at ``address`` (``<host>:<port>``, e.g.
    ``otel-collector.observability.svc.cluster.local:4317``) with ``provider`` zipkin or
    opentelemetry (OTLP over gRPC).

    ``samplingPercent``: the share of requests that START a trace at a proxy, i.e. of those arriving
    there without an earlier sampling decision (no ``traceparent``/b3 sampled flag); a request that
    carries one keeps it, so it is not the percent of all requests traced. Meshes differ in what they
    can do (exact or refused, ``mesh_components.core.telemetry``): Linkerd's proxies start no trace at all
    (they only join traces already sampled, linkerd2-proxy v2.366.0
    ``linkerd/trace-context/src/service.rs:15-23,189-221``), so on Linkerd only 0 is exact, and an
    Envoy Gateway ingress in front of it then samples 0 too (it takes the mesh default); OSM v1.2.4
    sets no sampling (Envoy's 100)."""

    enabled: bool = False
    provider: Literal["zipkin", "opentelemetry"] = "opentelemetry"
    address: Annotated[str, Field(pattern=_COLLECTOR)] | None = None
    sampling_percent: Percent = 1.0

    @model_validator(mode="after")
    def _address_when_enabled(self) -> "Tracing":
        if self.enabled and self.address is None:
            raise ValueError("tracing is enabled without an address: set address to the collector's "
                             "<host>:<port>, e.g. otel-collector.observability.svc.cluster.local:4317")
        if self.address is not None and not 1 <= int(self.address.rsplit(":", 1)[1]) <= 65535:
            raise ValueError(f"address {self.address!r}: the port must be from 1 to 65535")
        return self


class AccessLogsOverride(Base):
    """Access-log settings for one namespace or service; a field left out keeps what applies around it
    (a service: its namespace's override, else the mesh default; a namespace: the mesh default)."""

    enabled: bool | None = None
    format: Literal["text", "json"] | None = None
    filter: Literal["all", "errors"] | None = None


class TracingOverride(Base):
    """Tracing settings for one namespace or service; a field left out keeps what applies around it
    (a service: its namespace's override, else the mesh default; a namespace: the mesh default).

    ``samplingPercent`` decides only for requests on which no sampling decision was made before
    (Istio: ``randomSamplingPercentage``, istio/api 1.30.3 ``telemetry/v1alpha1/telemetry.proto:359-364``;
    Envoy's ``random_sampling``, istio 1.30.3 ``pilot/pkg/networking/core/tracing.go:122-136,703-713``): a
    request carrying a decision (``x-b3-sampled``, ``traceparent``) keeps it. So an override raises or
    lowers sampling only for traces that START in its scope: requests its pods send, or requests arriving
    at it without trace context; a request from a traced caller (an ingress gateway too) is sampled as
    the caller decided.
    ``enabled: false``: the scope's proxies send no spans; on Istio (``disableSpanReporting: true``) they
    then have no tracing at all (``tracing.go:101-103``), make no decision and propagate none, so their
    requests are sampled by the next traced scope, at its percentage, as new traces. Istio sidecars: the
    override's tracing is that of its pods' proxies (requests they send and receive); ambient: the
    waypoint's, for requests to the namespace's (service's) Services (``mesh_components.core.telemetry.istio``)."""

    enabled: bool | None = None
    sampling_percent: Percent | None = None


class TelemetryOverride(Base):
    """Telemetry of one namespace (``service`` left out) or one declared service of it.

    Its ``accessLogs`` are about requests TO that namespace's (service's) pods: on Istio, sidecar
    overrides log with ``match: {mode: SERVER}`` (istio 1.30.3 ``pilot/pkg/model/telemetry.go:618,652,
    670-680``), as an ambient waypoint logs requests to the Service it serves; the requests those pods
    send keep the mesh default. Istio ambient: ztunnel's connection log follows the mesh default only
    (overrides that would change it while the mesh's access logs are on are refused). Tracing: see
    :class:`TracingOverride`."""

    namespace: DnsLabel
    service: DnsLabel | None = None
    access_logs: AccessLogsOverride | None = None
    tracing: TracingOverride | None = None


class Telemetry(Base):
    """``mesh.telemetry``: metrics, access logs and tracing, as mesh defaults plus per-namespace or
    per-service ``overrides``; rendered per mesh, exact or refused (``mesh_components.core.telemetry``).
    Without this section nothing about telemetry is rendered (each mesh's chart defaults apply)."""

    metrics: Metrics = Metrics()
    access_logs: AccessLogs = AccessLogs()
    tracing: Tracing = Tracing()
    overrides: list[TelemetryOverride] = []

    @model_validator(mode="after")
    def _override_once(self) -> "Telemetry":
        seen: dict[tuple[str, str | None], int] = {}
        for i, o in enumerate(self.overrides):
            key = (o.namespace, o.service)
            if key in seen:
                what = f"service {o.namespace}/{o.service}" if o.service else f"namespace {o.namespace}"
                raise ValueError(f"overrides[{i}] repeats {what} of overrides[{seen[key]}]: keep one entry each")
            seen[key] = i
            if o.tracing is not None and o.tracing.enabled and self.tracing.address is None:
                raise ValueError(f"overrides[{i}].tracing.enabled: tracing is turned on without a collector: set "
                                 f"tracing.address to the collector's <host>:<port>")
        return self


class Validation(Base):
    """What ``validate`` reports: ``suppress`` lists the finding codes it keeps quiet about
    (each at most once)."""

    suppress: list[Suppression] = []

    @model_validator(mode="after")
    def _once_each(self) -> "Validation":
        seen: dict[str, int] = {}
        for i, s in enumerate(self.suppress):
            if s.code in seen:
                raise ValueError(f"suppress[{i}] repeats code {s.code!r} of suppress[{seen[s.code]}]: "
                                 f"keep one entry per code")
            seen[s.code] = i
        return self


GuardrailAction = Literal["off", "warn", "audit", "deny"]
"""An in-cluster guardrail's action: ``off`` (not rendered), ``warn``, ``audit``, ``deny``."""


class Guardrails(Base):
    """The mesh-guardrails rules enforced in the cluster (``mesh.guardrails``; opt-in, default off):
    ``mesh_components.core.admission`` renders each per-object rule as a ``ValidatingAdmissionPolicy``
    + binding (Kubernetes >= 1.30) in every cluster, so a ``kubectl`` change meets the rules
    ``pulumi up --policy-pack policies/mesh-guardrails`` checks.

    ``admission``: every policy's action (``off``, ``warn``, ``audit``, ``deny``: the binding's
    ``validationActions`` Warn, Audit, Deny); ``policies``: one policy's action instead (e.g.
    ``ingress-tls: warn`` where the pack config makes it advisory); ``permissiveNamespaces``: the
    namespaces ``mtls-strict`` exempts (keep them the pack config's ``mtls-strict.permissiveNamespaces``);
    ``gatekeeper``: also render Gatekeeper ``ConstraintTemplate``s and constraints (CEL engine
    ``K8sNativeValidation``, Gatekeeper >= 3.16) with the same rules and actions."""

    admission: GuardrailAction = "off"
    policies: dict[str, GuardrailAction] = {}
    permissive_namespaces: list[DnsLabel] = []
    gatekeeper: bool = False

    @field_validator("policies")
    @classmethod
    def _admission_policies(cls, v: dict[str, str]) -> dict[str, str]:
        from ..core.admission import ADMISSION_RULES, GUARDRAILS

        for name in v:
            if name in GUARDRAILS and name not in ADMISSION_RULES:
                raise ValueError(f"{name!r} is checked only by the CrossGuard policy pack "
                                 f"({GUARDRAILS[name].crossguard_only}); the policies enforced in the cluster are "
                                 f"{', '.join(ADMISSION_RULES)}")
            if name not in GUARDRAILS:
                close = difflib.get_close_matches(name, list(ADMISSION_RULES), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(f"unknown policy {shown(name)}: {hint}the policies enforced in the cluster are "
                                 f"{', '.join(ADMISSION_RULES)}")
        return v

    @model_validator(mode="after")
    def _gatekeeper_needs_a_policy(self) -> "Guardrails":
        if self.gatekeeper and self.admission == "off" and all(a == "off" for a in self.policies.values()):
            raise ValueError("gatekeeper: true renders the policies that are on, and every policy is off: set "
                             "admission (warn, audit or deny) or a policy's action in policies")
        return self


class ExternalWorkloadPort(Base):
    """A port of an external workload (:class:`ExternalWorkload`). Joining a declared service:
    ``port`` names one of that service's ports, whose protocol and target port the machine serves
    (``protocol`` may repeat it, ``targetPort`` is refused: the access policy addresses the pods'
    target port, so the machine listens on the same one). A service of its own: ``port``, ``name``,
    ``protocol`` (default http) and ``targetPort`` (the machine's port, default ``port``) as a
    :class:`ServicePort`."""

    port: PortNumber
    name: DnsLabel | None = None
    protocol: Literal["http", "http2", "grpc", "tcp", "tls"] | None = None
    target_port: PortNumber | None = None


class ExternalWorkload(Base):
    """A workload outside Kubernetes (a VM or bare-metal machine) that joins the mesh
    (``mesh.externalWorkloads``, opt-in; ``mesh_components.core.external_workloads`` renders it:
    Istio ``WorkloadGroup`` + ``WorkloadEntry``, Linkerd ``ExternalWorkload``; OSM refuses it).

    ``namespace`` and ``serviceAccount`` are its mesh identity; ``addresses`` the machine's IP
    addresses (Istio: one static ``WorkloadEntry`` each, none for auto-registration through the
    ``WorkloadGroup``; Linkerd: exactly one); ``cluster`` the cluster whose control plane it joins;
    ``network`` the network it sits on (default the cluster's; one of the clusters' networks).
    ``service`` (+ optional ``version``): the declared service of ``namespace`` it backs, whose
    Services and policies then select it like one of its pods; without ``service`` it is a service
    of its own named ``name`` (``ports`` required). ``labels`` are added to the ones it gets."""

    name: DnsLabel
    namespace: DnsLabel
    service_account: DnsSubdomain | None = None
    addresses: list[str] = []
    ports: list[ExternalWorkloadPort] = []
    labels: Labels = {}
    cluster: DnsLabel
    network: DnsLabel | None = None
    service: DnsLabel | None = None
    version: DnsLabel | None = None


class MeshSpec(Base):
    """The whole mesh: see the module docstring and README for the YAML form."""

    name: DnsLabel
    trust_domain: DnsSubdomain = "cluster.local"
    backend: Backend
    ca: CASpec = CASpec()
    clusters: list[Cluster] = Field(min_length=1)
    flat_networks: list[DnsLabel] = []
    """Networks (``clusters[].network``) confirmed flat: a pod in any of their clusters reaches
    the pod IPs of the others directly (e.g. peered VPCs whose CNI gives pods VPC addresses). The
    mesh assumes it for clusters sharing a network (Istio sends to remote pod IPs, Linkerd links
    pod to pod); :func:`topology_warnings` warns about one spanning regions until it is listed here."""
    namespaces: list[Namespace] = []
    services: list[Service] = []
    access_rules: list[AccessRule] = []
    traffic_splits: list[TrafficSplit] = []
    egress: list[EgressRule] = []
    ingress: Ingress | None = None
    ingress_identities: list[IngressIdentity] = []
    external_workloads: list[ExternalWorkload] = []
    """Workloads outside Kubernetes that join the mesh (:class:`ExternalWorkload`); default none."""
    """Identities of meshed workloads outside ``services`` that SMI TrafficTarget sources may name
    (:class:`IngressIdentity`); default none."""
    smi_files: list[str] = []
    overrides: list[Override] = []
    telemetry: Telemetry | None = None
    """Metrics, access logs and tracing (:class:`Telemetry`); None: nothing about telemetry is rendered."""
    validation: Validation = Validation()
    """What ``validate`` reports (:class:`Validation`); no effect on what is rendered or deployed."""
    guardrails: Guardrails | None = None
    """The guardrails enforced in the cluster (:class:`Guardrails`); None: no admission policy is rendered."""

    # convenience lookups (pure, derived)
    def cluster_names(self) -> list[str]:
        return [c.name for c in self.clusters]

    @cached_property
    def _namespace_clusters(self) -> dict[str, tuple[str, ...]]:
        every = tuple(self.cluster_names())
        out: dict[str, tuple[str, ...]] = {}
        for ns in self.namespaces:
            out.setdefault(ns.name, tuple(ns.clusters) if ns.clusters else every)
        return out

    def namespace_clusters(self, namespace: str) -> list[str]:
        """Clusters where ``namespace`` exists (all when it is not declared or lists none)."""
        got = self._namespace_clusters.get(namespace)
        return list(got) if got is not None else self.cluster_names()

    @cached_property
    def services_by_key(self) -> dict[tuple[str, str], "Service"]:
        """Services keyed by ``(namespace, name)`` (first definition wins)."""
        out: dict[tuple[str, str], Service] = {}
        for s in self.services:
            out.setdefault((s.namespace, s.name), s)
        return out

    def service_clusters(self, svc: Service) -> list[str]:
        return list(svc.clusters) if svc.clusters else self.namespace_clusters(svc.namespace)

    def network_of(self, cluster: Cluster) -> str:
        return cluster.network or f"{self.name}-network"

    def key_algorithm(self) -> str:
        """The CA key algorithm: as given, else the backend's default."""
        return self.ca.key_algorithm or ("RSA_2048" if self.backend.type == "osm" else "ECDSA_P256")

    def ca_config(self):
        """The CA resource's configuration (``mesh_components.core.ca.CAConfig``) from this spec."""
        from ..core.ca import CAConfig

        c = self.ca
        return CAConfig(
            trust_domain=self.trust_domain, mesh=self.backend.type, clusters=tuple(self.cluster_names()),
            key_algorithm=self.key_algorithm(), root_validity_days=c.root_validity_days,
            intermediate_validity_days=c.intermediate_validity_days, rotation_window_days=c.rotation_window_days,
            mode=c.root_mode, root_generation=c.root_rotation.generation, rotation_stage=c.root_rotation.stage,
            overlap_days=c.root_rotation.overlap_days,
            vault_address=c.vault.address if c.vault else None, vault_mount=c.vault.mount if c.vault else "pki",
            vault_role=c.vault.role if c.vault else None, mesh_name=self.name,
            **({"intermediate_path_length": 1} if c.mode == "spire" else {}),  # SPIRE's CA below it
            **self._intermediate_uri_domains())

    def _intermediate_uri_domains(self) -> dict:
        """Federated SPIRE: ``{"intermediate_uri_domains": {cluster: its trust domain}}`` (each
        intermediate name-constrained to its trust domain, ``core.ca.intermediate_name_constraints``);
        else ``{}``."""
        from ..core import spire

        if not spire.is_federated(self):
            return {}
        return {"intermediate_uri_domains": {c: spire.trust_domain_of(self, c) for c in self.cluster_names()}}


# ---------------------------------------------------------------------------------------------
# loading


def load_yaml_documents(path: Path, shown_as: str | None = None) -> list[Any]:
    """Every non-empty YAML document in ``path``, read by :func:`yaml_source.load_documents`
    (LibYAML, unique keys, merge keys; size, alias and depth bounds). ``shown_as`` names the file
    in problems. Raises :class:`SpecError` with a ``(file:line:column, message)`` problem."""
    return yaml_source.load_documents(path, shown_as)


def project_root_for(path: Path) -> Path:
    """The folder holding ``Pulumi.yaml`` at or above ``path``'s folder (else the folder itself)."""
    start = path.resolve().parent
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").exists():
            return folder
    return start


def project_name(root: Path) -> str:
    """The ``name`` in ``root/Pulumi.yaml``: the namespace of the program's config keys, since
    ``pulumi.Config()`` without a name uses the project's (pulumi 3.272.0 sdk/python/lib/pulumi/
    config.py:43-52, ``full_key`` at 563-571 returns ``f"{self.name}:{key}"``). :data:`PROJECT`
    when there is no readable one."""
    try:
        doc = yaml_source.load_documents(root / "Pulumi.yaml")
    except SpecError:
        return PROJECT
    name = doc[0].get("name") if doc and isinstance(doc[0], dict) else None
    return name if isinstance(name, str) and name and ":" not in name else PROJECT


def resolve_stack_file(ref: str, root: Path | None = None) -> Path:
    """``ref`` is a stack file path, or a stack name looked up as ``stacks/Pulumi.<ref>.yaml``."""
    p = Path(ref)
    try:
        if p.suffix in (".yaml", ".yml") or p.exists():
            return p
    except (OSError, ValueError):  # ENAMETOOLONG, a NUL byte: load_stack says so
        return p
    base = root or Path.cwd()
    return base / "stacks" / f"Pulumi.{ref}.yaml"


def mesh_config_from_stack(doc: Any, source: str, project: str = PROJECT) -> Any:
    """The ``<project>:mesh`` object of a Pulumi stack config document (``source`` names it).

    Only that key is read, as ``pulumi up`` reads only it (``__main__.py``:
    ``pulumi.Config().require_object("mesh")``, namespaced by the project name, see
    :func:`project_name`). A bare ``mesh`` key or another ``<namespace>:mesh`` is a problem at
    ``config.<key>`` naming the key to use: Pulumi refuses a key without a namespace (pulumi
    sdk/go/common/resource/config/key.go ``ParseKey``: "configuration keys should be of the form
    `<namespace>:<name>`"), and hands another namespace's key to no program. Raises :class:`SpecError`."""
    want = f"{project}:{CONFIG_KEY}"
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise SpecError([(source, f"not a Pulumi stack file: expected a top-level 'config' mapping "
                                  f"holding '{want}'")])
    config = doc["config"]
    problems: list[Problem] = []
    for key in config:
        text = str(key)
        if text == CONFIG_KEY:
            problems.append((f"config.{text}", f"Pulumi reads stack config keys as '<namespace>:<name>' and "
                                               f"refuses a bare '{CONFIG_KEY}': rename it to '{want}'"))
        elif text != want and text.endswith(f":{CONFIG_KEY}"):
            problems.append((f"config.{text if len(text) <= 60 else text[:60] + '...'}",
                             f"`pulumi up` does not read this key: the program reads '{want}' (pulumi.Config() puts "
                             f"its keys under the project name in Pulumi.yaml, {project!r}): rename it to '{want}'"))
    if problems:
        raise SpecError(problems)
    if want not in config:
        raise SpecError([(source, f"config has no '{want}' key: put the mesh spec under config.{want}")])
    return config[want]


def load_stack(ref: str, root: Path | None = None) -> "LoadedMesh":
    """Read, validate and resolve the stack ``ref`` (a name or a stack file path).

    Returns a :class:`LoadedMesh` (spec + SMI documents). Raises :class:`SpecError` with every
    problem found (bad YAML, bad shape, dangling references, bad SMI files); a problem in the
    stack file or an SMI file starts with its place, ``file:line:column: path``.
    """
    path = resolve_stack_file(ref, root)
    if not _exists(path, ref):
        names = sorted(p.name[len("Pulumi."):-len(".yaml")]
                       for p in (root or Path.cwd()).glob("stacks/Pulumi.*.yaml"))
        hint = f" (stacks here: {', '.join(names)})" if names else ""
        raise SpecError([(shown(str(ref))[1:-1], f"no such stack or stack file{hint}")])
    return _load_stack_file(path)


def load_stack_with_files(ref: str, files: list[str], root: Path | None = None) -> "LoadedMesh":
    """:func:`load_stack`, with ``files`` (paths as given, relative to the working folder)
    replacing the stack's own ``smiFiles``."""
    path = resolve_stack_file(ref, root)
    if not _exists(path, ref):
        return load_stack(ref, root)  # raises the usual "no such stack" problem
    return _load_stack_file(path, smi_files=[str(Path(f).resolve()) for f in files])


def _exists(path: Path, ref: str) -> bool:
    """Whether ``path`` exists; a name the OS refuses (ENAMETOOLONG, a NUL byte) is a problem."""
    try:
        return path.exists()
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or "the name holds a NUL byte"
        raise SpecError([(shown(str(ref))[1:-1], f"cannot read the stack file: {why}")]) from None


def _shown_file(path: Path) -> str:
    """``path`` as problems name it: relative to the working folder when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _load_stack_file(path: Path, smi_files: list[str] | None = None) -> "LoadedMesh":
    where = _shown_file(path)
    docs = load_yaml_documents(path, where)
    if len(docs) != 1:
        raise SpecError([(where, "a stack file holds exactly one YAML document, " +
                                 (f"not {len(docs)}" if docs else "and this one is empty"))])
    base = project_root_for(path)
    project = project_name(base)
    fleet = _fleet_of_stack_file(docs[0], path, where, project)
    if fleet is not None and fleet.role == "cluster":
        return _load_fleet_member(fleet, base, where, smi_files)
    try:
        data = mesh_config_from_stack(docs[0], where, project)
        if smi_files is not None and isinstance(data, dict):
            data = {**data, "smiFiles": smi_files}
        loaded = load_mesh(data, base_dir=base)
        if fleet is not None:
            from .fleet import cluster_stack_problems
            if problems := cluster_stack_problems(loaded.spec.cluster_names(), fleet):
                raise SpecError([(f"{where}: {p}", m) for p, m in problems])
        return loaded._replace(fleet=fleet) if fleet is not None else loaded
    except SpecError as e:
        from . import smi

        placed = _placed_in_stack(e.problems, path, where, project, smi_files is not None)
        raise SpecError(smi.placed_in_files(placed, base)) from None


def _stack_name_of(path: Path) -> str:
    """The stack a stack file ``stacks/Pulumi.<stack>.yaml`` is for."""
    name = path.name
    return name[len("Pulumi."):-len(".yaml")] if name.startswith("Pulumi.") and name.endswith(".yaml") else path.stem


def _fleet_of_stack_file(doc: Any, path: Path, where: str, project: str):
    """The stack file's ``service-mesh:fleet`` (:class:`~mesh_components.spec.fleet.Fleet`), or None."""
    from . import fleet as fleet_

    config = doc.get("config") if isinstance(doc, dict) else None
    data = config.get(f"{project}:{fleet_.FLEET_KEY}") if isinstance(config, dict) else None
    if data is None:
        return None
    try:
        fleet = fleet_.parse_fleet(data, _stack_name_of(path), f"config.{project}:{fleet_.FLEET_KEY}")
    except SpecError as e:
        raise SpecError([(f"{where}: {p}", m) for p, m in e.problems]) from None
    if fleet.role == "cluster" and f"{project}:{CONFIG_KEY}" in config:
        raise SpecError([(f"{where}: config.{project}:{CONFIG_KEY}",
                          f"a cluster stack reads the mesh spec from the root's stack file ({fleet.mesh_file}); "
                          f"remove it here, so one file holds the fleet's spec")])
    return fleet


def _load_fleet_member(fleet, base: Path, where: str, smi_files: list[str] | None) -> "LoadedMesh":
    """A cluster stack's mesh: the spec of its ``meshFile``, with the cluster stack's :class:`Fleet`
    (the root's ``clusterStacks`` pattern, so peers' stack names are known offline too)."""
    from . import fleet as fleet_

    root_path = (base / fleet.mesh_file)
    if not root_path.is_file():
        raise SpecError([(f"{where}: config.{PROJECT}:{fleet_.FLEET_KEY}.meshFile",
                          f"{fleet.mesh_file} does not exist (relative to {_shown_file(base) or '.'}): name the root "
                          f"stack's file, which holds service-mesh:mesh")])
    root = _load_stack_file(root_path, smi_files)
    if root.fleet is not None and root.fleet.role != "root":
        raise SpecError([(f"{where}: config.{PROJECT}:{fleet_.FLEET_KEY}.meshFile",
                          f"{fleet.mesh_file} is a cluster stack's file; name the root stack's")])
    pattern = root.fleet.cluster_stacks if root.fleet is not None else fleet_.DEFAULT_CLUSTER_STACKS
    member = fleet_.Fleet("cluster", fleet.root_stack, cluster=fleet.cluster, cluster_stacks=pattern,
                          mesh_file=fleet.mesh_file)
    if problems := fleet_.member_problems(member, root.spec.cluster_names()):
        raise SpecError([(f"{where}: {p}", m) for p, m in problems])
    return root._replace(fleet=member)


def load_program_mesh(mesh_data: Any, fleet_data: Any, stack: str, base_dir: Path | str) -> "LoadedMesh":
    """What ``__main__.py`` runs: the stack's ``service-mesh:mesh`` config (``mesh_data``) read
    with :func:`load_mesh`, or, for a fleet cluster stack (``service-mesh:fleet`` with role
    ``cluster``, ``fleet_data``), the spec of its ``meshFile`` under ``base_dir`` (the project
    folder). The result's ``fleet`` is the stack's :class:`~mesh_components.spec.fleet.Fleet` (None
    outside fleet mode). Raises :class:`SpecError`."""
    from . import fleet as fleet_

    fleet = fleet_.parse_fleet(fleet_data, stack) if fleet_data is not None else None
    if fleet is not None and fleet.role == "cluster":
        if mesh_data is not None:
            raise SpecError([(f"config.{PROJECT}:{CONFIG_KEY}", f"a cluster stack reads the mesh spec from the root's "
                                                               f"stack file ({fleet.mesh_file}); remove it here")])
        return _load_fleet_member(fleet, Path(base_dir), f"stack {stack}", None)
    if mesh_data is None:
        raise SpecError([(f"config.{PROJECT}:{CONFIG_KEY}", "missing: set the mesh spec (pulumi config set --path, "
                                                            "or the stack file)")])
    loaded = load_mesh(mesh_data, base_dir=base_dir)
    if fleet is not None and (problems := fleet_.cluster_stack_problems(loaded.spec.cluster_names(), fleet)):
        raise SpecError(problems)
    return loaded._replace(fleet=fleet) if fleet is not None else loaded


def _placed_in_stack(problems: list[Problem], path: Path, where: str, project: str,
                     smi_files_replaced: bool) -> list[Problem]:
    """``problems`` with ``mesh...`` and ``config...`` paths placed in the stack file (composed
    again: this runs only when there are problems, and keeps the happy path free of node trees)."""
    if not any(p.startswith(("mesh", "config")) for p, _ in problems):
        return problems
    try:
        return _placed(problems, path, where, project, smi_files_replaced)
    except Exception:  # noqa: BLE001 - placing is best effort: the problems stand without it
        return problems


def _placed(problems: list[Problem], path: Path, where: str, project: str,
            smi_files_replaced: bool) -> list[Problem]:
    nodes = yaml_source.compose_documents(path)
    roots = {}
    config = yaml_source.lookup(nodes[0], "config") if len(nodes) == 1 else None
    if config is not None:
        roots["config"] = config
        mesh = yaml_source.lookup(config, f"{project}:{CONFIG_KEY}")
        if mesh is not None:
            roots["mesh"] = mesh
    kept = [pm for pm in problems if smi_files_replaced and pm[0].startswith("mesh.smiFiles")]
    return [pm if pm in kept else placed
            for pm, placed in zip(problems, yaml_source.locate(problems, roots, where))]


def load_mesh(data: Any, base_dir: Path | str = ".") -> "LoadedMesh":
    """Validate the ``mesh`` config object ``data`` (a dict) and read its SMI files from
    ``base_dir``. Raises :class:`SpecError` with every problem found, at paths (``mesh...``,
    ``file[j]...``, ``file#Kind/ns/name...``); :func:`load_stack` puts places in front of them."""
    from . import smi  # the SMI reader builds on this module

    with yaml_source.gc_paused():  # millions of small objects, no garbage cycles (see gc_paused)
        spec = parse_spec(data)
        problems = check_references(spec)
        documents, smi_problems = smi.read_files(spec.smi_files, Path(base_dir))
        problems += smi_problems
        if not problems:
            problems += smi.check_documents(spec, documents)
    if problems:
        raise SpecError(problems)
    return LoadedMesh(spec=spec, smi_documents=tuple(documents))


class LoadedMesh(typing.NamedTuple):
    """A validated spec plus the SMI documents read from its ``smiFiles`` (file order)."""

    spec: MeshSpec
    smi_documents: tuple
    fleet: Any = None
    """The stack's place in a fleet (:class:`mesh_components.spec.fleet.Fleet`), None outside fleet
    mode: a cluster stack's renders hold its cluster only (``core.render.render_mesh``)."""


def parse_spec(data: Any, root: str = "mesh") -> MeshSpec:
    """Shape-validate ``data`` into a :class:`MeshSpec`; raise :class:`SpecError` with
    ``mesh.<path>: <message>`` problems in our words (:func:`_problem`), every one at once.

    ``data`` may come from a stack file (bounded by :mod:`yaml_source`) or from ``pulumi up``'s
    config (JSON): the only free-form part, ``overrides[].patch``, is also checked here for
    nesting past :data:`yaml_source.MAX_DEPTH`, which the renderer's recursive walkers could not
    take."""
    if not isinstance(data, dict):
        raise SpecError([(root, f"expected a mapping of mesh settings, got {_kind(data)}")])
    deep = _deep_patches(data, root)
    if deep:
        raise SpecError(deep)
    try:
        return MeshSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(_problems(e.errors(include_url=False), root)) from None
    except RecursionError:
        raise SpecError([(root, f"nests deeper than {yaml_source.MAX_DEPTH} levels: flatten it")]) from None


def _deep_patches(data: dict, root: str) -> list[Problem]:
    overrides = data.get("overrides")
    out: list[Problem] = []
    for i, override in enumerate(overrides if isinstance(overrides, list) else []):
        patch = override.get("patch") if isinstance(override, dict) else None
        stack, seen = [(patch, 1)], 0
        while stack and seen < 1_000_000:  # bounded: a patch of a million values is refused later anyway
            value, depth = stack.pop()
            seen += 1
            if depth > yaml_source.MAX_DEPTH:
                out.append((f"{root}.overrides[{i}].patch",
                            f"nests deeper than {yaml_source.MAX_DEPTH} levels: flatten it"))
                break
            if isinstance(value, dict):
                stack.extend((v, depth + 1) for v in value.values())
            elif isinstance(value, list):
                stack.extend((v, depth + 1) for v in value)
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing", int: "a number",
            float: "a number"}.get(type(value), f"a {type(value).__name__}")


def _path_key(problem: Problem):
    return problem[0]


def format_path(root: str, loc: tuple) -> str:
    """``("clusters", 0, "cloud")`` under ``"mesh"`` -> ``"mesh.clusters[0].cloud"``: YAML field
    names joined with ``.``, list indexes in brackets (what :func:`yaml_source.node_at` walks)."""
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


_SCHEMA_TAG = re.compile(r"^(function-(before|after|wrap|plain)|nullable|lax-or-strict|constrained-[a-z]+|"
                         r"json-or-python|tagged-union|union|list|dict|set|tuple|default|chain)\[")
"""pydantic-core's names of the schema layers it went through, which it puts into ``loc``."""
_MEMBER_TAGS = {"literal", "str", "int", "float", "bool", "none", "is-instance", "model", "json"}
"""pydantic-core's names of union members (``loc`` holds the member that failed)."""

_PATTERN_MEANING = {
    r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$": "a chart version such as 1.30.3",
    r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$": "a duration such as 250ms, 5s or 1m30s",
    r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$": "an HTTP header name (RFC 9110 token characters)",
    r"^[A-Za-z][A-Za-z0-9_.-]*$": "a Pulumi config key such as vaultToken (a letter, then letters, digits, '_', "
                                  "'.' or '-')",
    r"^[-._a-zA-Z0-9]+$": "a Secret data key (letters, digits, '-', '_' or '.')",
    r"^https?://": "an http:// or https:// URL",
    r"^https://\S+$": "an https:// URL",
    r"^/[^?#\s]*$": "a path starting with '/', without query, fragment or spaces",
    r"^/": "a path starting with '/'",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "an email address",
}
"""What each ``Field(pattern=...)`` of the spec asks for, in words."""


def _problems(errors: list[dict], root: str) -> list[Problem]:
    """pydantic's errors as problems: one per path (a union reports each member that failed; the
    first is kept), sorted by path."""
    out: dict[str, str] = {}
    for err in errors:
        path, message = _problem(err, root)
        if path not in out:
            out[path] = message
        elif not _is_union(err) and message not in out[path]:
            out[path] = f"{out[path]}; {message}"
    return sorted(out.items(), key=_path_key)


def _is_union(err: dict) -> bool:
    return any(isinstance(p, str) and p in _MEMBER_TAGS for p in err["loc"])


def _problem(err: dict, root: str) -> Problem:
    """One pydantic error as ``(mesh.path, message)`` in our words (pydantic's own are not shown):
    the value echoed cut to :data:`yaml_source.SHOWN_CHARS`, choices listed, a "did you mean" only
    for a close match (``difflib`` ratio over 0.5: ``consul`` (0.44) gets the list of backends, not
    ``osm``)."""
    raw = err["loc"]
    key_error = bool(raw) and raw[-1] == "[key]"
    loc = tuple(p for p in raw if not (isinstance(p, str) and (p in _MEMBER_TAGS or p == "[key]"
                                                                 or _SCHEMA_TAG.match(p))))
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    got = f"{_kind(value)} {shown(value)}" if not isinstance(value, (dict, list, type(None))) else _kind(value)
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if key_error:
        return format_path(root, loc), f"keys here are strings, not {_kind(value)} {shown(value)}: quote the key"
    if kind == "extra_forbidden":
        known = _fields_at(MeshSpec, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.5) if loc else []
        hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(known)}"
        msg = f"unknown field; {hint}"
    elif kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", ""))
        choices = [c.strip().strip("'") for c in expected.replace(" or ", ", ").split(",") if c.strip()]
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.51) if isinstance(value, str) else []
        msg = f"{shown(value)} is not one of {expected}" if isinstance(value, str) else \
            f"expected one of {expected}, got {got}"
        if close:
            msg += f"; did you mean {close[0]!r}?"
        elif loc[-2:] == ("backend", "type"):
            msg += " (the meshes this project supports)"
        elif field == "cloud":
            msg += "; for another cloud or your own machines use 'onprem' (no cloud-specific load-balancer settings)"
    elif kind == "missing":
        msg = "required field is missing"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than") and "port" in field.lower() \
            and (ctx.get("ge") == 1 or ctx.get("le") == 65535):
        msg = f"{shown(value)} is not a port number: use 1-65535"
    elif kind in ("greater_than_equal", "greater_than"):
        msg = f"{shown(value)} is too small: use at least {ctx.get('ge', ctx.get('gt'))}"
    elif kind in ("less_than_equal", "less_than"):
        msg = f"{shown(value)} is too large: use at most {ctx.get('le', ctx.get('lt'))}"
    elif kind == "multiple_of":
        msg = f"{shown(value)} is not a multiple of {ctx.get('multiple_of')}"
    elif kind == "too_short":
        msg = "must list at least one entry" if ctx.get("min_length", 1) <= 1 else \
            f"must list at least {ctx['min_length']} entries"
    elif kind == "too_long":
        msg = f"lists more than {ctx.get('max_length')} entries"
    elif kind == "string_too_short":
        msg = "must not be empty" if ctx.get("min_length", 1) <= 1 else \
            f"must be at least {ctx['min_length']} characters long"
    elif kind == "string_too_long":
        msg = f"{shown(value)} is longer than {ctx.get('max_length')} characters"
    elif kind == "string_pattern_mismatch":
        meaning = _PATTERN_MEANING.get(str(ctx.get("pattern")), f"of the form {ctx.get('pattern')}")
        msg = f"{shown(value)} is not {meaning}"
    elif kind in ("string_type", "string_sub_type", "string_unicode"):
        msg = f"expected a string, got {got}"
        if isinstance(value, bool):
            msg += " (YAML reads true/false/yes/no/on/off unquoted as booleans): quote it"
        elif isinstance(value, (int, float)) or type(value).__name__ in ("date", "datetime"):
            msg += ": quote it to mean the text"
    elif kind.startswith(("int_", "float_")) or kind == "finite_number":
        msg = f"expected a number, got {got}"
    elif kind.startswith("bool_"):
        msg = f"expected true or false, got {got}"
    elif kind in ("list_type", "tuple_type", "set_type", "iterable_type"):
        msg = f"expected a list, got {got}"
    elif kind in ("dict_type", "mapping_type", "model_type", "model_attributes_type", "dataclass_type"):
        msg = f"expected a mapping of fields, got {got}"
    elif kind in ("value_error", "assertion_error"):
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if isinstance(value, str) and len(value) > yaml_source.SHOWN_CHARS:
            msg = msg.replace(repr(value), shown(value))  # validators echo what they got
    elif kind == "recursion_loop":
        msg = "refers to itself: a mesh spec is a tree"
    elif kind == "invalid_key":
        msg = f"field names are strings, not {got}"
    elif kind.startswith("union_tag"):
        msg = f"{got} matches none of the accepted forms"
    else:  # a pydantic check not used by the spec today: name it by its code, never by pydantic's words
        msg = f"{got} is not accepted here ({kind.replace('_', ' ')})"
    return format_path(root, loc), msg


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The YAML field names of the model reached by following ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part or n == part), None)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(f.alias or n for n, f in current.model_fields.items())
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------------------------------------
# cross-field checks


def check_references(spec: MeshSpec) -> list[Problem]:
    """Every cross-field problem of a shape-valid spec, as ``(path, message)``; empty when valid.

    Checks unique names, that clusters/namespaces/services/service accounts named anywhere exist,
    that versions and split backends resolve, egress wildcards and CA lifetimes.
    """
    p: list[Problem] = []
    clusters = spec.cluster_names()
    _unique(p, "mesh.clusters", [c.name for c in spec.clusters], "cluster")
    _unique(p, "mesh.namespaces", [n.name for n in spec.namespaces], "namespace")
    _unique(p, "mesh.services", [f"{s.namespace}/{s.name}" for s in spec.services], "service")
    _unique(p, "mesh.accessRules", [f"{r.namespace}/{r.name}" for r in spec.access_rules], "access rule")
    _unique(p, "mesh.trafficSplits", [f"{t.namespace}/{t.name}" for t in spec.traffic_splits], "traffic split")
    _unique(p, "mesh.egress", [e.name for e in spec.egress], "egress rule")
    _unique(p, "mesh.ingressIdentities", [f"{i.namespace}/{i.service_account}" for i in spec.ingress_identities],
            "ingress identity")
    accounts = {(s.namespace, s.account): s for s in spec.services}
    app_namespaces = {s.namespace for s in spec.services}
    denies = spec.backend.type == "linkerd" or (spec.backend.type == "istio"
                                                and spec.backend.istio.data_plane == "ambient")
    for i, ident in enumerate(spec.ingress_identities):
        where = f"mesh.ingressIdentities[{i}]"
        svc = accounts.get((ident.namespace, ident.service_account))
        if svc is not None:
            p.append((where, f"{ident.namespace}/{ident.service_account} is the service account of service "
                             f"{svc.namespace}/{svc.name}, a source by that already; remove it from ingressIdentities"))
        elif denies and ident.namespace in app_namespaces:
            # its own inbound traffic would meet the policy's default deny: Linkerd's
            # default-inbound-policy of the namespace, Istio ambient's waypoint for the namespace
            p.append((f"{where}.namespace", f"{ident.namespace!r} holds services of the mesh, whose policy denies by "
                                            f"default what it does not admit ({spec.backend.type}: the namespace's "
                                            f"default inbound policy or waypoint), so the gateway's own inbound "
                                            f"traffic would be refused; run it in a namespace of its own"))

    def known_clusters(path: str, names: list[str] | None) -> None:
        for i, c in enumerate(names or []):
            if c not in clusters:
                p.append((f"{path}[{i}]", _unknown("cluster", c, clusters)))

    declared_ns = {n.name for n in spec.namespaces}
    for i, ns in enumerate(spec.namespaces):
        known_clusters(f"mesh.namespaces[{i}].clusters", ns.clusters)

    def known_namespace(path: str, ns: str) -> bool:
        if spec.namespaces and ns not in declared_ns:
            p.append((path, _unknown("namespace", ns, sorted(declared_ns), "add it to mesh.namespaces")))
            return False
        return True

    services = {(s.namespace, s.name): s for s in spec.services}
    version_backends: dict[tuple[str, str], Service] = {}
    version_paths: dict[tuple[str, str], str] = {}
    for i, s in enumerate(spec.services):
        base = f"mesh.services[{i}]"
        known_namespace(f"{base}.namespace", s.namespace)
        known_clusters(f"{base}.clusters", s.clusters)
        ns_clusters = set(spec.namespace_clusters(s.namespace))
        for j, c in enumerate(s.clusters or []):
            if c in clusters and c not in ns_clusters:
                p.append((f"{base}.clusters[{j}]", f"namespace {s.namespace!r} does not span cluster {c!r}; "
                                                   f"add {c!r} to that namespace's clusters"))
        _unique(p, f"{base}.ports", [str(pt.port) for pt in s.ports], "port")
        _unique(p, f"{base}.ports", [pt.port_name for pt in s.ports], "port name")
        _unique(p, f"{base}.versions", [v.name for v in s.versions], "version")
        svc_clusters = set(spec.service_clusters(s))
        for j, v in enumerate(s.versions):
            known_clusters(f"{base}.versions[{j}].clusters", v.clusters)
            for k, c in enumerate(v.clusters or []):
                if c in clusters and c not in svc_clusters:
                    p.append((f"{base}.versions[{j}].clusters[{k}]",
                              f"service {s.name!r} does not run in cluster {c!r}; add it to the service's clusters"))
            version_backends[(s.namespace, f"{s.name}-{v.name}")] = s
            version_paths[(s.namespace, f"{s.name}-{v.name}")] = f"{base}.versions[{j}]"
    # render.version_services creates and owns a Service <service>-<version> per version; a declared
    # service of that name is the application's own Service, which the mesh must neither adopt
    # (pulumi-kubernetes < 4.29 created by upsert) nor delete on destroy
    for i, s in enumerate(spec.services):
        owner = version_backends.get((s.namespace, s.name))
        if owner is not None:
            p.append((f"mesh.services[{i}].name",
                      f"service {s.name!r} is named like the Service the mesh creates and owns for "
                      f"{version_paths[(s.namespace, s.name)]} of service {owner.name!r} in {s.namespace!r}; "
                      f"rename the version or this service"))

    accounts = {(s.namespace, s.account) for s in spec.services}
    for i, r in enumerate(spec.access_rules):
        base = f"mesh.accessRules[{i}]"
        known_namespace(f"{base}.namespace", r.namespace)
        if (r.namespace, r.destination.service_account) not in accounts:
            p.append((f"{base}.destination.serviceAccount",
                      _unknown_account(r.destination.service_account, r.namespace, accounts)))
        elif r.destination.port is not None:
            ports = {pt.port for s in spec.services if (s.namespace, s.account) == (r.namespace, r.destination.service_account)
                     for pt in s.ports}
            if r.destination.port not in ports:
                p.append((f"{base}.destination.port", f"no service running as {r.destination.service_account!r} "
                                                      f"exposes port {r.destination.port}; ports: {sorted(ports)}"))
        for j, src in enumerate(r.sources):
            ns = src.namespace or r.namespace
            # an external workload is a source by its identity, as a pod is (core.external_workloads)
            if (ns, src.service_account) not in accounts | external_accounts(spec):
                p.append((f"{base}.sources[{j}].serviceAccount", _unknown_account(src.service_account, ns, accounts)))
        if not r.http and r.tcp is None:
            p.append((base, "the rule admits nothing: give 'http' matches and/or 'tcp' ports"))
        _unique(p, f"{base}.http", [m.name for m in r.http if m.name], "match name")

    for i, t in enumerate(spec.traffic_splits):
        base = f"mesh.trafficSplits[{i}]"
        known_namespace(f"{base}.namespace", t.namespace)
        if (t.namespace, t.service) not in services:
            p.append((f"{base}.service", _unknown("service", t.service,
                                                  sorted(n for ns, n in services if ns == t.namespace),
                                                  f"declare it in mesh.services with namespace {t.namespace!r}")))
        if sum(b.weight for b in t.backends) == 0:
            p.append((f"{base}.backends", "every weight is 0, so no request could be routed; give at least one "
                                          "backend a positive weight"))
        _unique(p, f"{base}.backends", [b.service for b in t.backends], "backend")
        for j, b in enumerate(t.backends):
            if (t.namespace, b.service) not in services and (t.namespace, b.service) not in version_backends:
                backend_names = sorted(n for ns, n in list(services) + list(version_backends) if ns == t.namespace)
                p.append((f"{base}.backends[{j}].service",
                          _unknown("backend service", b.service, backend_names,
                                   "name a service or a version backend '<service>-<version>'")))

    for i, e in enumerate(spec.egress):
        base = f"mesh.egress[{i}]"
        for j, h in enumerate(e.hosts):
            if h.startswith("*.") and not e.allow_wildcard:
                p.append((f"{base}.hosts[{j}]", f"wildcard host {h!r} would let traffic out to every name "
                                                f"under it; list exact hosts, or set allowWildcard: true on this rule"))
        _unique(p, f"{base}.ports", [str(pt.port) for pt in e.ports], "port")
        for j, ref in enumerate(e.sources):
            if (ref.namespace, ref.service) not in services:
                p.append((f"{base}.sources[{j}]", _unknown("service", f"{ref.namespace}/{ref.service}",
                                                            sorted(f"{a}/{b}" for a, b in services))))

    if spec.ingress:
        ing = spec.ingress
        known_clusters("mesh.ingress.clusters", ing.clusters)
        for j, rt in enumerate(ing.routes):
            s = services.get((rt.namespace, rt.service))
            if s is None:
                p.append((f"mesh.ingress.routes[{j}]", _unknown("service", f"{rt.namespace}/{rt.service}",
                                                                 sorted(f"{a}/{b}" for a, b in services))))
            elif rt.port not in {pt.port for pt in s.ports}:
                p.append((f"mesh.ingress.routes[{j}].port",
                          f"service {rt.service!r} has no port {rt.port}; ports: {sorted(pt.port for pt in s.ports)}"))
        if ing.namespace in declared_ns:
            p.append(("mesh.ingress.namespace", f"{ing.namespace!r} is an application namespace; give the "
                                                f"gateway its own namespace"))
    p += egress_problems(spec) + ingress_problems(spec)

    if spec.ca.mode == "vault" and spec.ca.vault is None:
        p.append(("mesh.ca.vault", "mode 'vault' needs vault.address (and vault.mount) of the PKI engine"))
    elif spec.ca.mode == "spire" or spec.ca.spire is not None:
        from ..core.spire import spec_problems as spire_problems  # SPIRE's own rules, beside its renderer

        p += spire_problems(spec)
    else:
        taken = {path for path, _ in p}
        p += [(path, m) for path, m in ca_problems(spec) if path not in taken]
    if spec.backend.type == "osm" and len(spec.clusters) > 1:
        p.append(("mesh.clusters", "OSM runs in one cluster only (it has no multi-cluster support); "
                                   "use istio or linkerd for several clusters"))
    if spec.backend.type != "istio" and spec.backend.istio != IstioOptions():
        p.append(("mesh.backend.istio", f"Istio options given but the backend is {spec.backend.type!r}"))
    if spec.backend.type != "linkerd":
        p += [(f"mesh.namespaces[{i}].defaultInboundPolicy", f"a Linkerd setting, but the backend is "
                                                              f"{spec.backend.type!r}; remove it")
              for i, ns in enumerate(spec.namespaces) if ns.default_inbound_policy is not None]
    p += control_plane_problems(spec)
    from ..core.app_protocol import server_first_problems  # Istio reads server-first ports by their names

    p += server_first_problems(spec)
    p += envoy_gateway_managed_crd_problems(spec)
    p += telemetry_reference_problems(spec)
    from ..core.external_workloads import spec_problems as external_workload_problems  # mesh.externalWorkloads

    p += external_workload_problems(spec)
    return p


def telemetry_reference_problems(spec: MeshSpec) -> list[Problem]:
    """``mesh.telemetry.overrides[i]``: the namespace (and service) an override names must be declared
    (a namespace of ``mesh.namespaces``, or of a declared service when no namespace is declared)."""
    if spec.telemetry is None:
        return []
    p: list[Problem] = []
    services = {(s.namespace, s.name) for s in spec.services}
    namespaces = sorted({n.name for n in spec.namespaces} | {ns for ns, _ in services})
    for i, o in enumerate(spec.telemetry.overrides):
        where = f"mesh.telemetry.overrides[{i}]"
        if o.namespace not in namespaces:
            p.append((f"{where}.namespace", _unknown("namespace", o.namespace, namespaces,
                                                     "add it to mesh.namespaces")))
        elif o.service is not None and (o.namespace, o.service) not in services:
            p.append((f"{where}.service", _unknown("service", f"{o.namespace}/{o.service}",
                                                   sorted(f"{a}/{b}" for a, b in services))))
    return p


def envoy_gateway_managed_crd_problems(spec: MeshSpec) -> list[Problem]:
    """Envoy Gateway refused on a cluster whose cloud manages the Gateway API CRDs
    (``clusters[].gatewayApiCrds: managed``), as ``(path, message)``. Chart ``gateway-helm``
    v1.9.0 has one switch for its CRDs, ``crds.enabled`` (envoyproxy/gateway
    ``charts/gateway-helm/Chart.yaml`` ``dependencies: crds, condition: crds.enabled``): its
    ``crds`` subchart ships the experimental Gateway API CRDs beside Envoy Gateway's own
    (``charts/gateway-helm/charts/crds/crds/gatewayapi-crds.yaml``; Helm creates the absent ones)
    and the ``safe-upgrades.gateway.networking.k8s.io`` admission policy where none exists
    (``charts/crds/templates/gatewayapi-safe-upgrade-policy.yaml:1-23``), a second owner beside the
    cloud whose policy refuses the cloud's own updates; with ``crds.enabled: false`` Envoy
    Gateway's CRDs are missing. Splitting them needs the ``gateway-crds-helm`` chart
    (``crds.gatewayAPI.enabled: false``, ``crds.envoyGateway.enabled: true``;
    ../shared/charts/gateway-helm/INSTALL-FACTS.md), which this project does not pin yet."""
    from ..core.gateway import implementation, ingress_clusters

    if implementation(spec) != "envoy-gateway":
        return []
    on = set(ingress_clusters(spec))
    return [(f"mesh.clusters[{i}].gatewayApiCrds",
             f"cluster {c.name} runs Envoy Gateway (mesh.ingress), whose gateway-helm v1.9.0 chart would install "
             f"Gateway API CRDs and their safe-upgrades admission policy beside the cloud's (it cannot install "
             f"only its own CRDs); set gatewayApiCrds: install (with the cloud's Gateway API turned off), leave "
             f"{c.name} out of mesh.ingress.clusters"
             + (", or use ingress.implementation: istio" if spec.backend.type == "istio" else ""))
            for i, c in enumerate(spec.clusters) if c.gateway_api_crds == "managed" and c.name in on]


def is_multi_network(spec: MeshSpec) -> bool:
    """True when the clusters span several networks, so they talk through east-west gateways."""
    return len({spec.network_of(c) for c in spec.clusters}) > 1


def topology_warnings(spec: MeshSpec) -> list[Problem]:
    """What the topology assumes and the spec does not confirm, as ``(path, message)`` warnings
    (``validate`` prints them; ``validate --strict`` fails on them). Pure; empty when none.

    Clusters in different regions on one network (``clusters[].network``, default one network for
    all) are taken to route pod IPs to each other: Istio sends a sidecar's traffic straight to the
    endpoints of its own network (``pilot/pkg/xds/endpoints/ep_filters.go:154-155`` at 1.30.3,
    ``Proxy.InNetwork`` ``pilot/pkg/model/context.go:421``; "both clusters reside on the network1
    network, meaning there is direct connectivity between the pods in both clusters",
    https://istio.io/v1.30/docs/setup/install/multicluster/multi-primary/), and Linkerd links
    clusters on one network pod to pod (https://linkerd.io/2/tasks/pod-to-pod-multicluster/).
    One warning per such network (at its second region's cluster) naming every cluster and region,
    unless the network is listed in ``mesh.flatNetworks``. OSM has no multi-cluster traffic."""
    if spec.backend.type not in ("istio", "linkerd") or len(spec.clusters) < 2:
        return []
    confirmed = set(spec.flat_networks)
    by_network: dict[str, list[tuple[int, Cluster]]] = {}
    for i, c in enumerate(spec.clusters):
        by_network.setdefault(spec.network_of(c), []).append((i, c))
    out: list[Problem] = []
    for net, members in by_network.items():
        regions = sorted({c.region for _, c in members})
        if len(regions) < 2 or net in confirmed:
            continue
        first = members[0][1].region
        i = next(i for i, c in members if c.region != first)
        where = ", ".join(f"{c.name!r} ({c.region})" for _, c in members)
        named = "" if any(c.network for _, c in members) else " (no cluster names a network: one network for all)"
        out.append((f"mesh.clusters[{i}].network",
                    f"clusters {where} are on one network {net!r}{named}, so the mesh sends traffic between "
                    f"them to pod IPs directly, with no east-west gateway: pods in {' and '.join(regions)} must "
                    f"reach each other's pod IPs (e.g. peered VPCs with VPC-routable pod IPs and routes and "
                    f"security groups open between them); confirm it with flatNetworks: [{net}], or give each "
                    f"region's clusters their own network (east-west gateways)"))
    return out


def egress_problems(spec: MeshSpec) -> list[Problem]:
    """Cross-field problems of ``mesh.egress`` that hold for every mesh: one rule per host, TLS
    origination only where the application speaks plain text, application ports unique per rule,
    ``MUTUAL`` origination with a client certificate, credentials only on HTTP ports, exact hosts
    for origination and credentials. ``(path, message)`` pairs; empty when valid. What a mesh
    cannot do is refused by its renderer (``mesh_components.core.egress``)."""
    p: list[Problem] = []
    owner: dict[str, str] = {}
    for i, e in enumerate(spec.egress):
        base = f"mesh.egress[{i}]"
        for j, h in enumerate(e.hosts):
            if h in owner and owner[h] != e.name:
                p.append((f"{base}.hosts[{j}]", f"host {h!r} is also in egress rule {owner[h]!r}; a mesh holds one "
                                                f"ServiceEntry per host, so put all its ports and sources in one rule"))
            owner.setdefault(h, e.name)
        app_ports = [pt.app_port for pt in e.ports]
        for j, pt in enumerate(e.ports):
            o = pt.tls_origination
            if o is None:
                continue
            path = f"{base}.ports[{j}].tlsOrigination"
            if pt.protocol in ("https", "tls"):
                p.append((path, f"protocol {pt.protocol!r} means the application already speaks TLS (passthrough); "
                                f"for TLS opened by the mesh use protocol http (or tcp) with tlsOrigination, "
                                f"else remove tlsOrigination"))
            if app_ports.count(o.app_port) > 1 or any(q.port == o.app_port for k, q in enumerate(e.ports) if k != j):
                p.append((f"{path}.appPort", f"application port {o.app_port} is used twice in this rule; "
                                             f"give each port its own appPort"))
            if o.mode == "MUTUAL" and not o.credential_name:
                p.append((f"{path}.credentialName", "MUTUAL TLS origination needs the client certificate: name a "
                                                    "Secret in namespace mesh-egress with tls.crt, tls.key and ca.crt"))
            if e.has_wildcard:
                p.append((path, "TLS origination needs exact hosts (the mesh resolves and verifies each name); "
                                "list the hosts instead of a '*.' wildcard"))
        if e.credential is not None:
            plain = [f"{pt.port}/{pt.protocol}" for pt in e.ports if not pt.is_http]
            if plain:
                p.append((f"{base}.credential", f"a header can only be injected into HTTP requests, and ports "
                                                f"{', '.join(plain)} carry the application's own TLS or opaque TCP; "
                                                f"use protocol http (with tlsOrigination for an https API) or move "
                                                f"those ports to another rule"))
            if e.has_wildcard:
                p.append((f"{base}.credential", "an injected credential goes to exact hosts only; list the hosts "
                                                "instead of a '*.' wildcard"))
    return p


def ingress_problems(spec: MeshSpec) -> list[Problem]:
    """Cross-field problems of ``mesh.ingress``: the implementation the backend can run, issuer
    settings, name lengths. ``(path, message)`` pairs; empty when valid."""
    ing = spec.ingress
    if ing is None:
        return []
    p: list[Problem] = []
    if ing.implementation == "istio" and spec.backend.type != "istio":
        p.append(("mesh.ingress.implementation", f"Istio's Gateway API implementation needs the istio backend; for "
                                                 f"{spec.backend.type} use implementation: envoy-gateway"))
    if len(ing.name) > 57:
        p.append(("mesh.ingress.name", "at most 57 characters: the gateway's Service and service account are named "
                                       "'<name>-envoy' or '<name>-istio' (a 63-character DNS label)"))
    issuer = ing.tls.issuer if ing.tls else None
    if issuer is not None:
        path = "mesh.ingress.tls.issuer"
        if issuer.acme is not None and issuer.mesh_ca:
            p.append((path, "give either acme (a public ACME CA) or meshCA: true (the mesh CA), not both"))
        if issuer.acme is not None and issuer.kind == "Issuer":
            p.append((f"{path}.kind", "the ACME issuer is rendered as a ClusterIssuer; remove kind or set ClusterIssuer"))
        if issuer.mesh_ca and issuer.kind == "ClusterIssuer":
            p.append((f"{path}.kind", "the mesh-CA issuer is a namespaced Issuer beside the gateway (its CA Secret stays "
                                      "in the gateway namespace); remove kind or set Issuer"))
        served_by = ingress_cluster_names(spec)
        if issuer.acme is not None and issuer.acme.dns01 is None and len(served_by) > 1:
            p.append((f"{path}.acme", f"HTTP-01 cannot work for {', '.join(ing.hosts)} served by {len(served_by)} "
                                      f"clusters ({', '.join(served_by)}): each cluster orders its own certificate, "
                                      f"and the ACME CA fetches every challenge from the one address DNS gives, so "
                                      f"only that cluster's order passes; use DNS-01 (acme.dns01 with cloudDNS, "
                                      f"route53, azureDNS or cloudflare), serve the hosts from one cluster "
                                      f"(ingress.clusters), or supply the certificate yourself (drop issuer and "
                                      f"create Secret {ing.namespace}/{ing.tls.secret_name} in every cluster)"))
    return p


def ingress_cluster_names(spec: MeshSpec) -> list[str]:
    """Clusters that run the ingress gateway: ``ingress.clusters``, else every cluster (empty
    without ``mesh.ingress``)."""
    if spec.ingress is None:
        return []
    return list(spec.ingress.clusters) if spec.ingress.clusters else spec.cluster_names()


def ingress_notices(spec: MeshSpec) -> list[Problem]:
    """What the ingress needs that the stack does not create, as ``(path, message)`` notices:
    ``validate`` prints them as ``path: notice: message`` and, unlike :func:`topology_warnings`,
    they never fail ``--strict`` (they are prerequisites, not doubts about the spec); ``diff``
    checks the Secrets on live clusters (``mesh_components.drift.intent.check_user_secrets``). Pure;
    empty when none.

    - ``tls`` without ``issuer``: the listener Secret is the user's. Without it the HTTPS listeners
      have no certificate to serve: a certificate reference "that is invalid or does not exist"
      sets the listener's ``ResolvedRefs`` condition False with reason ``InvalidCertificateRef``
      (Gateway API v1.6.1 apis/v1/gateway_types.go:1566-1602).
    - ``dns01`` credentials: each Secret a DNS-01 provider reads, in cert-manager's cluster
      resource namespace (:class:`SecretKeyRef`).
    - an existing issuer (``issuer`` with only ``name``) used by several clusters: if it answers
      HTTP-01, only the cluster DNS points at gets a certificate (:class:`AcmeIssuer`).
    """
    ing = spec.ingress
    if ing is None or ing.tls is None:
        return []
    where = ", ".join(ingress_cluster_names(spec))
    tls, issuer = ing.tls, ing.tls.issuer
    if issuer is None:
        return [("mesh.ingress.tls.secretName",
                 f"Secret {ing.namespace}/{tls.secret_name} is yours to create (type kubernetes.io/tls, keys "
                 f"tls.crt and tls.key, a certificate for {', '.join(ing.hosts)}) in cluster(s) {where}: the mesh "
                 f"does not create it, and without it the HTTPS listeners have no certificate to serve (Gateway "
                 f"API: ResolvedRefs False, InvalidCertificateRef); 'diff' checks that it exists")]
    out: list[Problem] = []
    if issuer.acme is not None and issuer.acme.dns01 is not None:
        namespace = "cert-manager" if ing.cert_manager == "install" else "cert-manager's cluster resource namespace"
        for field, ref in issuer.acme.dns01.secret_refs():
            out.append((f"mesh.ingress.tls.issuer.acme.dns01.{field}",
                        f"Secret {ref.name} with key {ref.key!r} is yours to create in namespace {namespace} of "
                        f"cluster(s) {where}: the ClusterIssuer {issuer.name!r} reads its DNS credentials there, "
                        f"and without it no certificate is issued; 'diff' checks that it exists"))
    if issuer.acme is None and not issuer.mesh_ca and len(ingress_cluster_names(spec)) > 1:
        out.append(("mesh.ingress.tls.issuer", f"every cluster ({where}) orders the certificate from the existing "
                                               f"{issuer.issuer_kind} {issuer.name!r}: if it answers ACME HTTP-01, "
                                               f"only the cluster DNS points at can pass; give it a DNS-01 solver"))
    return out


def control_plane_problems(spec: MeshSpec) -> list[Problem]:
    """Cross-field problems of the control-plane and multi-cluster settings: Istio revisions and
    tags, kubeconfigs for remote secrets, network topologies each mesh supports, east-west gateway
    addresses per cloud, and locality failover. ``(path, message)`` pairs; empty when valid."""
    p: list[Problem] = []
    kind = spec.backend.type
    opts = spec.backend.istio
    base = "mesh.backend.istio"
    names = [r.name for r in opts.revisions]
    if opts.revision and opts.revisions:
        p.append((f"{base}.revisions", f"give either 'revision' (one revision) or 'revisions' (canary upgrades), "
                                       f"not both; list {opts.revision!r} in revisions and remove 'revision'"))
    _unique(p, f"{base}.revisions", names, "revision")
    if opts.tag and not opts.revisions:
        p.append((f"{base}.tag", "a revision tag points at one of 'revisions'; list the revisions "
                                 "(e.g. revisions: [{name: 1-30}]) or remove 'tag'"))
    elif opts.tag in names:
        p.append((f"{base}.tag", f"tag {opts.tag!r} is also a revision name (both become Service "
                                 f"istiod-{opts.tag}); pick another tag, e.g. 'stable'"))
    if opts.tag_revision and not opts.tag:
        p.append((f"{base}.tagRevision", "tagRevision needs a 'tag' (the label namespaces use, e.g. stable)"))
    elif opts.tag_revision and opts.revisions and opts.tag_revision not in names:
        p.append((f"{base}.tagRevision", _unknown("revision", opts.tag_revision, names, "list it in revisions")))
    if len(opts.revisions) > 1 and not opts.tag:
        p.append((f"{base}.tag", f"revisions {', '.join(names)} are installed side by side; name the revision "
                                 f"tag namespaces use (e.g. tag: stable) and the revision serving it (tagRevision)"))
    elif len(opts.revisions) > 1 and not opts.tag_revision:
        p.append((f"{base}.tagRevision", f"say which of {', '.join(names)} serves tag {opts.tag!r}"))

    multi_cluster, multi_network = len(spec.clusters) > 1, is_multi_network(spec)
    networks = sorted({spec.network_of(c) for c in spec.clusters})
    for i, net in enumerate(spec.flat_networks):
        if net not in networks:
            p.append((f"mesh.flatNetworks[{i}]", _unknown("network", net, networks,
                                                          "name the network of clusters in mesh.clusters")))
    if multi_cluster:
        for i, c in enumerate(spec.clusters):
            if c.kubeconfig is None:
                p.append((f"mesh.clusters[{i}].kubeconfig",
                          "a multi-cluster mesh builds the other clusters' credentials for this cluster from its "
                          "kubeconfig (API server and CA); give file, env or stackReference"))
    if kind == "istio" and opts.data_plane == "ambient" and multi_cluster:
        seen: dict[str, str] = {}
        for i, c in enumerate(spec.clusters):
            net = spec.network_of(c)
            if net in seen:
                p.append((f"mesh.clusters[{i}].network",
                          f"Istio ambient multi-cluster supports only clusters on separate networks (multi-primary, "
                          f"multi-network; https://istio.io/latest/docs/ambient/install/multicluster/), and "
                          f"{c.name!r} shares network {net!r} with {seen[net]!r}; give each cluster its own network"))
            seen.setdefault(net, c.name)
    gateways = kind in ("istio", "linkerd") and multi_network
    for i, c in enumerate(spec.clusters):
        path = f"mesh.clusters[{i}].eastWestGateway"
        ew = c.east_west_gateway
        if ew is None:
            if gateways and c.cloud == "aws":
                p.append((path, "AWS load balancers hand out host names, which cross-network discovery handles "
                                "badly (istio#29359, linkerd2#5343); give the east-west gateway static addresses: "
                                "eastWestGateway: {addresses: [<IPv4 per subnet>], subnets: [<subnet ids>], "
                                "eipAllocations: [<eipalloc ids>]} (eipAllocations only for internet-facing NLBs)"))
            continue
        if not gateways:
            p.append((path, "this mesh has no east-west gateway (clusters on separate networks need one); "
                            "remove eastWestGateway"))
            continue
        p += _east_west_problems(path, c, ew)

    lf = spec.backend.locality_failover
    if lf is not None:
        path = "mesh.backend.localityFailover"
        if kind != "istio":
            what = ("open-source Linkerd has no locality-aware failover (zone-aware balancing is Buoyant "
                    "Enterprise's HAZL)" if kind == "linkerd" else "OSM has no locality-aware routing")
            p.append((path, f"{what}; remove localityFailover or use the istio backend"))
        elif opts.data_plane == "ambient":
            p.append((path, "in ambient mode a DestinationRule (locality and outlier detection) applies only at a "
                            "waypoint, and ztunnel does not fail over by locality; remove localityFailover or use "
                            "dataPlane: sidecar"))
        services = spec.services_by_key
        for j, ref in enumerate(lf.services or []):
            if (ref.namespace, ref.service) not in services:
                p.append((f"{path}.services[{j}]", _unknown("service", f"{ref.namespace}/{ref.service}",
                                                             sorted(f"{a}/{b}" for a, b in services))))
        wanted = None if lf.services is None else {(r.namespace, r.service) for r in lf.services}
        for i, s in enumerate(spec.services):
            r = s.resilience
            if kind == "istio" and r and (r.outlier_detection or r.circuit_breaker) and (
                    wanted is None or (s.namespace, s.name) in wanted):
                p.append((f"mesh.services[{i}].resilience", f"service {s.name!r} gets a DestinationRule from its "
                                                            f"resilience and one from localityFailover, and Istio "
                                                            f"honours one per host; leave it out of "
                                                            f"localityFailover.services or drop its outlierDetection "
                                                            f"and circuitBreaker"))
        regions = sorted({c.region for c in spec.clusters})
        for j, f in enumerate(lf.failover):
            for key, region in (("from", f.from_), ("to", f.to)):
                if region not in regions:
                    p.append((f"{path}.failover[{j}].{key}", _unknown("region", region, regions,
                                                                       "name the region of a cluster in mesh.clusters")))
            if f.from_ == f.to:
                p.append((f"{path}.failover[{j}]", f"fails over from {f.from_!r} to itself; name another region"))
    return p


def _east_west_problems(path: str, c: Cluster, ew: EastWestGateway) -> list[Problem]:
    import ipaddress

    p: list[Problem] = []
    for j, a in enumerate(ew.addresses):
        try:
            ipaddress.IPv4Address(a)
        except ValueError:
            p.append((f"{path}.addresses[{j}]", f"{a!r} is not an IPv4 address; peers dial these addresses "
                                                f"(a host name is what this setting avoids)"))
    if c.cloud == "aws":
        if len(ew.subnets) != len(ew.addresses):
            p.append((f"{path}.subnets", f"an AWS NLB takes one static address per subnet: give {len(ew.addresses)} "
                                         f"subnet id(s), in the order of addresses"))
        if c.internal_load_balancers and ew.eip_allocations:
            p.append((f"{path}.eipAllocations", "an internal NLB has no Elastic IPs; remove eipAllocations "
                                                "(addresses are its private IPv4 addresses)"))
        elif not c.internal_load_balancers and len(ew.eip_allocations) != len(ew.addresses):
            p.append((f"{path}.eipAllocations", f"an internet-facing NLB takes its static addresses as Elastic IP "
                                                f"allocations: give {len(ew.addresses)} eipalloc id(s), the EIPs "
                                                f"holding addresses, in the same order (or set internalLoadBalancers)"))
        for j, e in enumerate(ew.eip_allocations):
            if not e.startswith("eipalloc-"):
                p.append((f"{path}.eipAllocations[{j}]", f"{e!r} is not an Elastic IP allocation id (eipalloc-...)"))
        return p
    if len(ew.addresses) != 1:
        p.append((f"{path}.addresses", f"a {c.cloud} load balancer takes one static address; give exactly one"))
    for key in ("subnets", "eip_allocations"):
        if getattr(ew, key):
            field = "eipAllocations" if key == "eip_allocations" else key
            p.append((f"{path}.{field}", f"{field} applies to aws only; remove it for a {c.cloud} cluster"))
    return p


_CA_PATHS = {"ca.trustDomain": "mesh.trustDomain", "ca.mesh": "mesh.backend.type", "ca.clusters": "mesh.clusters",
             "ca.meshName": "mesh.name"}


def ca_problems(spec: MeshSpec) -> list[Problem]:
    """The CA's own checks (``ca.validate_ca_config``: key algorithms each mesh accepts, lifetimes,
    rotation stages), with paths into the mesh spec."""
    from ..core.ca import validate_ca_config

    out = []
    for path, message in validate_ca_config(spec.ca_config()):
        head, sep, rest = path.partition("[")
        out.append((_CA_PATHS.get(head, f"mesh.{head}") + sep + rest, message))
    return out


def _unique(problems: list[Problem], path: str, names: list[str], what: str) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            problems.append((f"{path}[{i}]", f"duplicate {what} {n!r}; names must be unique"))
        seen.add(n)


def _unknown(what: str, name: str, known: list[str], fix: str | None = None) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    msg = f"unknown {what} {name!r}"
    if close:
        msg += f"; did you mean {close[0]!r}?"
    elif known:
        msg += f"; known: {', '.join(known)}"
    return msg + (f" ({fix})" if fix and not close else "")


def external_accounts(spec: MeshSpec) -> set[tuple[str, str]]:
    """``(namespace, service account)`` of every ``mesh.externalWorkloads`` entry: its own
    ``serviceAccount``, else the joined service's account, else its name."""
    if not spec.external_workloads:
        return set()
    # not spec.services_by_key: a cached_property, which model_copy would carry over stale
    by_key: dict[tuple[str, str], Service] = {}
    for s in spec.services:
        by_key.setdefault((s.namespace, s.name), s)
    return {(w.namespace, w.service_account or (by_key[(w.namespace, w.service)].account
                                                if (w.namespace, w.service) in by_key else w.name))
            for w in spec.external_workloads}


def _unknown_account(sa: str, ns: str, accounts: set[tuple[str, str]]) -> str:
    same_ns = sorted(a for n, a in accounts if n == ns)
    return _unknown("service account", f"{sa}", same_ns,
                    f"no service in namespace {ns!r} runs as it; set serviceAccount on a service in mesh.services")


def expand_path(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(path)))
