"""``ca.mode: spire``: SPIRE as the identity provider of an Istio (sidecar) mesh, per cluster.

Pure core (no Pulumi). What :func:`wire` adds to one cluster's rendered state, all opt-in (a stack
without ``ca.mode: spire`` is left untouched, byte for byte):

* releases (concern ``control-plane``, namespace ``ca.spire.namespace``, default ``spire-server``):
  ``spire-crds`` 0.6.0, then the ``spire`` umbrella chart 0.30.0 (SPIRE 1.14.5: server, agent, the
  SPIFFE CSI driver ``csi.spiffe.io`` and the SPIRE controller manager), both from
  https://spiffe.github.io/helm-charts-hardened/ (the Helm repository of
  github.com/spiffe/helm-charts-hardened, ../shared/charts/SOURCES.md "spire/, spire-crds/";
  istio.io/latest/docs/ops/integrations/spire/ installs them the same way); every istiod release
  then depends on ``spire``. Values: :func:`spire_values`.
* SPIRE's upstream authority from the mesh CA (concern ``ca``): Secret :data:`UPSTREAM_SECRET`
  (``tls.crt``: the cluster's intermediate and its chain up to the root, ``tls.key``: its key,
  ``bundle.crt``: the mesh trust bundle), the file names the spire-server chart's ``disk``
  UpstreamAuthority mounts at ``/run/spire/upstream_ca`` (helm-charts-hardened spire-0.30.0
  ``charts/spire/charts/spire-server/templates/configmap.yaml:514-525``,
  ``templates/upstream-ca-secret.yaml:11-16``, ``templates/server-resource.yaml:415-418,677-680``)
  and SPIRE's ``disk`` plugin reads as ``cert_file_path``/``key_file_path``/``bundle_file_path``
  ("When using the bundle_file_path option cert_file_path MUST contain a chain of certificates
  ... up to the trusted root", spiffe/spire v1.14.5 ``doc/plugin_server_upstreamauthority_disk.md:19-29``).
  The SPIRE server's X.509 CA is then signed by the cluster's intermediate and its bundle is the
  mesh root: one root for the mesh, one intermediate per cluster, as with istiod's ``cacerts``.
* ``cacerts`` stays: istiod still serves xDS (and its webhooks) with a certificate from its own
  CA, which proxies verify with the ``root-cert.pem`` of the ``istio-ca-root-cert`` ConfigMap
  (istio 1.30.3 ``pkg/istio-agent/agent.go:653-682`` ``FindRootCAForXDS``: the mounted
  ``CitadelCACertPath`` root by default); the plug-in CA (https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/)
  makes that chain to the same mesh root. Workload certificates no longer come from istiod: the
  agent serves only files when a socket exists at ``/var/run/secrets/workload-spiffe-uds/socket``
  (``agent.go:382-393``; ``pkg/security/security.go:49-54``).
* registration (concern ``control-plane``, cluster-scoped): one ``ClusterSPIFFEID`` per
  application namespace with sidecars and per gateway (:func:`cluster_spiffe_ids`), whose
  ``spiffeIDTemplate`` is Istio's identity ``spiffe://<trust domain>/ns/<ns>/sa/<sa>``. SPIRE gives
  identities only to registered workloads, and an Istio proxy without one never becomes Ready
  (istio.io SPIRE page, "Register workloads").
* Istio wiring: istiod's injector gets the ``spire`` template (``sidecarInjectorWebhook.templates``)
  that swaps the ``workload-socket`` volume for a ``csi.spiffe.io`` CSI volume and labels the pod
  :data:`MANAGED_LABEL`; it is a default template (``defaultTemplates: [sidecar, spire]``: pods the
  application owns carry no ``inject.istio.io/templates`` annotation, istio 1.30.3
  ``pkg/kube/inject/inject.go:529-539`` ``selectTemplates``). Gateways of the ``gateway`` chart get
  ``inject.istio.io/templates: gateway,spire`` (istio 1.30.3 ``pkg/kube/inject/testdata/inject/gateway-spire.yaml``);
  Gateway API gateways of class ``istio`` (not injected: ``kube-gateway.yaml`` sets
  ``sidecar.istio.io/inject: "false"``) get the same volume through a ``deployment`` overlay
  ConfigMap named by ``spec.infrastructure.parametersRef`` (``pilot/pkg/config/kube/gatewaycommon/
  deploymentcontroller.go:667-731,762-775``).
* federation (:func:`is_federated`, ``ca.spire.trustDomains`` naming several trust domains):
  ``federation.enabled`` on every spire-server, a ``ClusterFederatedTrustDomain`` per other
  cluster (https_spiffe profile, endpoint ID ``spiffe://<td>/spire/server``, as istio 1.30.3
  ``samples/security/spire-trust-domain-federation/cluster-federated-trust-domain.yaml``), every
  ``ClusterSPIFFEID`` ``federatesWith`` the other trust domains, and istiod's
  ``meshConfig.trustDomainAliases`` the other trust domains (see :func:`trust_domains`).

The socket name: the SPIFFE CSI driver shares the agent's socket directory, and the spire-agent
chart links the socket under the names ``socket`` and ``spire-agent.sock`` there
(``charts/spire/charts/spire-agent/values.yaml:353-357`` ``socketAlternate.names``), so the
agent's default ``WORKLOAD_IDENTITY_SOCKET_FILE`` (``socket``) finds it.
"""
from __future__ import annotations

import base64
import json
from dataclasses import replace

from ..spec.errors import Problem
from .meta import k8s_object
from .slots import Slot, register_transform

REPOSITORY = "https://spiffe.github.io/helm-charts-hardened/"
CRDS_CHART, CRDS_VERSION, CRDS_RELEASE = "spire-crds", "0.6.0", "spire-crds"
CHART, VERSION, RELEASE = "spire", "0.30.0", "spire"
API = "spire.spiffe.io/v1alpha1"
CSI_DRIVER = "csi.spiffe.io"
"""The SPIFFE CSI driver's name (``charts/spire/charts/spiffe-csi-driver/values.yaml:10`` ``pluginName``)."""
CLASS_NAME = "mesh-components"
"""``spire-server.controllerManager.className``: the controller manager acts only on custom
resources of its class (``templates/_helpers.tpl:388-398``), ours carry it in ``spec.className``."""
UPSTREAM_SECRET = "spire-upstream-ca"
MANAGED_LABEL = "spiffe.io/spire-managed-identity"
"""The pod label the ``spire`` template sets (istio.io SPIRE page; istio 1.30.3
``samples/security/spire/clusterspiffeid.yaml`` selects it)."""
SPIFFE_ID_TEMPLATE = "spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}"
"""Istio's workload identity as a controller-manager template (istio 1.30.3
``samples/security/spire/clusterspiffeid.yaml:6``; Istio principals are this without ``spiffe://``)."""
SERVER_ID = "spiffe://{td}/spire/server"
"""The SPIRE server's own SPIFFE ID: the federation bundle endpoint's identity (https_spiffe)."""
WORKLOAD_SOCKET_VOLUME = {"name": "workload-socket", "csi": {"driver": CSI_DRIVER, "readOnly": True}}
"""Replaces the ``emptyDir`` the sidecar, gateway and kube-gateway templates give the volume the
``istio-proxy`` container already mounts at ``/var/run/secrets/workload-spiffe-uds`` (istio 1.30.3
``files/injection-template.yaml:423-425,473-475``, ``files/gateway-injection-template.yaml:172-174,
208-210``, ``files/kube-gateway.yaml:246-247,271-273``): so the template names no container and
works for native (init-container) sidecars too. ``readOnly``: the SPIFFE CSI driver mounts only
read-only volumes (istio 1.30.3 ``samples/security/spire/istio-spire-config.yaml:21-25``)."""
SPIRE_TEMPLATE = (f"metadata:\n  labels:\n    {MANAGED_LABEL}: \"true\"\n"
                  f"spec:\n  volumes:\n  - name: workload-socket\n    csi:\n      driver: {CSI_DRIVER}\n"
                  f"      readOnly: true\n")
"""istiod's ``spire`` injection template (a Pod fragment merged over ``sidecar``/``gateway``)."""
GATEWAY_TEMPLATES = "gateway,spire"
ISTIO_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
NAMESPACE_LABELS = {"pod-security.kubernetes.io/enforce": "privileged"}
"""Pod Security level of our SPIRE namespace. With ``global.spire.recommendations.enabled`` off
(the chart's default, ``charts/spire/values.yaml:46-47`` at spire-0.30.0) the agent and SPIFFE CSI
driver DaemonSets run in the release namespace (``charts/spire/charts/spire-agent/templates/
_helpers.tpl:29-41``, ``charts/spiffe-csi-driver/templates/_helpers.tpl:29-41`` ``.Release.Namespace``),
and both mount ``hostPath`` volumes, which the ``baseline`` and ``restricted`` levels forbid
(https://kubernetes.io/docs/concepts/security/pod-security-standards/ "HostPath Volumes"): a
cluster whose default level is one of them would reject their pods. ``privileged`` is the level
the chart itself gives a namespace it creates when a component needs it
(``charts/spire-lib/templates/_spire-server-namespace.yaml:11-15``)."""
SERVER_SERVICE, FEDERATION_PORT = "spire-server", 8443
"""The spire-server Service (release ``spire``, chart ``spire-server``) and the port
``federation.enabled`` adds to it (``charts/spire-server/values.yaml:257-262``,
``templates/service.yaml:23-29`` at spire-0.30.0)."""
BUNDLE_TRANSFORM = "spiffe-bundle"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(n: int, size: int | None = None) -> bytes:
    return n.to_bytes(size or max(1, (n.bit_length() + 7) // 8), "big")


def spiffe_bundle_json(trust_bundle_pem: str) -> str:
    """The SPIFFE bundle (JWK Set) of ``trust_bundle_pem`` (one or more PEM root certificates), as
    compact JSON with sorted keys: ``{"keys": [{"use": "x509-svid", "kty", "crv", "x", "y" (EC) or
    "n", "e" (RSA), "x5c": [base64 DER]}...]}``, one key per root in bundle order (the SPIFFE Trust
    Domain and Bundle spec, https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Trust_Domain_and_Bundle.md
    section 4: ``use`` ``x509-svid``, exactly one certificate in ``x5c``; RFC 7518 6.2.1 / 6.3.1:
    base64url coordinates, EC ones padded to the curve size). Raises ``CAError`` for text that is
    not PEM certificates, ``ValueError`` for a key type other than EC P-256/384/521 or RSA."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import Encoding

    from .ca import load_certificates

    keys = []
    for cert in load_certificates(trust_bundle_pem, what="trust bundle"):
        pub = cert.public_key()
        key: dict = {"use": "x509-svid", "x5c": [base64.b64encode(cert.public_bytes(Encoding.DER)).decode()]}
        if isinstance(pub, ec.EllipticCurvePublicKey):
            crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(pub.curve.name)
            if crv is None:
                raise ValueError(f"curve {pub.curve.name} has no JWK name")
            size = (pub.curve.key_size + 7) // 8
            nums = pub.public_numbers()
            key.update(kty="EC", crv=crv, x=_b64url(_int_bytes(nums.x, size)), y=_b64url(_int_bytes(nums.y, size)))
        elif isinstance(pub, rsa.RSAPublicKey):
            nums = pub.public_numbers()
            key.update(kty="RSA", n=_b64url(_int_bytes(nums.n)), e=_b64url(_int_bytes(nums.e)))
        else:
            raise ValueError(f"key type {type(pub).__name__} is not EC or RSA")
        keys.append(key)
    return json.dumps({"keys": keys}, sort_keys=True, separators=(",", ":"))


register_transform(BUNDLE_TRANSFORM, spiffe_bundle_json)


def bundle_value(trust_bundle_pem):
    """``trustDomainBundle`` for a trust bundle: a :class:`Slot` with transform
    :data:`BUNDLE_TRANSFORM` for a slot (filled at deploy time from the CA's bundle, written as
    ``$(deploy-time:ca/trust_bundle_pem|spiffe-bundle)`` offline), else :func:`spiffe_bundle_json`."""
    if isinstance(trust_bundle_pem, Slot):
        return replace(trust_bundle_pem, transform=BUNDLE_TRANSFORM)
    return spiffe_bundle_json(trust_bundle_pem)


def enabled(spec) -> bool:
    """True when the stack asks for SPIRE (``mesh.ca.mode: spire``)."""
    return spec.ca.mode == "spire"


def options(spec):
    """``mesh.ca.spire`` or its defaults (:class:`mesh_components.spec.SpireOptions`)."""
    from ..spec import SpireOptions

    return spec.ca.spire or SpireOptions()


def trust_domain_of(spec, cluster: str) -> str:
    """The trust domain of ``cluster``: ``ca.spire.trustDomains[cluster]``, else ``mesh.trustDomain``."""
    if not enabled(spec):
        return spec.trust_domain
    return options(spec).trust_domains.get(cluster, spec.trust_domain)


def trust_domains(spec) -> tuple[str, ...]:
    """Every trust domain of the mesh, sorted: ``(mesh.trustDomain,)`` unless SPIRE federates several.

    Istio principals of a source carry the trust domain of the cluster it runs in, so an access
    rule admits its source account in every trust domain of the mesh: istiod would do so anyway,
    since with ``trustDomainAliases`` it rewrites a principal of any trust domain of the bundle
    (``meshConfig.trustDomain`` + aliases) to all of them (istio 1.30.3
    ``pilot/pkg/security/trustdomain/bundle.go:54-119`` ``ReplaceTrustDomainAliases``): listing
    them all renders exactly what is enforced. The aliases are needed: a sidecar checks a remote
    pod's certificate against the SAN istiod builds with its own trust domain
    (``pilot/pkg/serviceregistry/kube/controller/endpoint_builder.go:55``), expanded by the
    aliases (``pilot/pkg/model/push_context.go:1635``)."""
    if not enabled(spec):
        return (spec.trust_domain,)
    return tuple(sorted({trust_domain_of(spec, c) for c in spec.cluster_names()}))


def is_federated(spec) -> bool:
    """True when SPIRE runs several trust domains (federated with ``ClusterFederatedTrustDomain``)."""
    return enabled(spec) and len(trust_domains(spec)) > 1


# ---------------------------------------------------------------------------------------------
# checks


def spec_problems(spec) -> list[Problem]:
    """Every reason the spec's SPIRE settings cannot be rendered exactly, as ``(path, message)``.

    Refused: ``ca.spire`` without ``mode: spire``; Linkerd (its proxies take their certificate
    only from the ``linkerd-identity`` controller, chart values ``identity.*``,
    https://linkerd.io/2-edge/reference/architecture/#identity ; its SPIRE client serves mesh
    expansion only, https://linkerd.io/2-edge/tasks/adding-non-kubernetes-workloads/); OSM v1.2.4
    (certificate providers ``tresor``, ``vault`` and ``cert-manager`` only, chart value
    ``osm.certificateProvider.kind``, ../shared/charts/osm/values.yaml); Istio ambient (ztunnel
    1.30.3 takes its certificates only from the Istio CA client at ``CA_ADDRESS``,
    istio/ztunnel 1.30.3 ``src/identity/manager.rs:550-563``, ``src/config.rs:542-545``: no SDS
    or SPIFFE Workload API source); unknown clusters; a federation that is not one trust domain
    per cluster with a bundle endpoint each; federation with shapes whose identities are built
    from ``mesh.trustDomain`` alone (egress gateway rules, telemetry)."""
    p: list[Problem] = []
    kind = spec.backend.type
    if spec.ca.mode != "spire":
        return [("mesh.ca.spire", f"SPIRE options given but ca.mode is {spec.ca.mode!r}; set mode: spire or "
                                  "remove ca.spire")]
    if kind == "linkerd":
        p.append(("mesh.ca.mode", "Linkerd's proxies take their certificates only from the linkerd-identity "
                                  "controller (SPIRE serves Linkerd's mesh expansion, not its pods); use mode managed, "
                                  "byoRoot, intermediateOnly or vault (the mesh CA as Linkerd's issuer), or the "
                                  "istio backend with sidecars for SPIRE"))
    elif kind == "osm":
        p.append(("mesh.ca.mode", "OSM v1.2.4 issues certificates only through its tresor, vault or cert-manager "
                                  "providers and has no SPIRE integration; use mode managed (the mesh CA as OSM's "
                                  "osm-ca-bundle), or the istio backend with sidecars for SPIRE"))
    elif spec.backend.istio.data_plane == "ambient":
        p.append(("mesh.ca.mode", "Istio 1.30.3's ztunnel takes its certificates only from istiod's CA (istio/ztunnel "
                                  "1.30.3 src/identity/manager.rs: no SDS or SPIFFE Workload API source), so ambient "
                                  "workloads cannot get SPIRE identities; use dataPlane: sidecar with mode spire, or "
                                  "another ca.mode with ambient"))
    o = options(spec)
    clusters = spec.cluster_names()
    for key, what in (("trust_domains", "trustDomains"), ("bundle_endpoints", "bundleEndpoints")):
        for c in sorted(getattr(o, key)):
            if c not in clusters:
                p.append((f"mesh.ca.spire.{what}.{c}", f"unknown cluster {c!r}; known: {', '.join(clusters)}"))
    tds = {c: o.trust_domains.get(c, spec.trust_domain) for c in clusters}
    if len(set(tds.values())) > 1:
        seen: dict[str, str] = {}
        for c in clusters:
            if tds[c] in seen:
                p.append((f"mesh.ca.spire.trustDomains.{c}",
                          f"clusters {seen[tds[c]]!r} and {c!r} share trust domain {tds[c]!r} while others federate; "
                          "give every cluster its own trust domain, or all the same one (no federation)"))
            seen.setdefault(tds[c], c)
            if c not in o.bundle_endpoints:
                p.append((f"mesh.ca.spire.bundleEndpoints.{c}",
                          f"federated trust domain {tds[c]!r} needs the https://host:port at which the other clusters "
                          f"reach cluster {c!r}'s SPIRE federation bundle endpoint (spire-server port 8443)"))
        if spec.egress:
            p.append(("mesh.egress", "the egress gateway's policy admits sources by principals of mesh.trustDomain "
                                     "only, which federated trust domains would not match; remove the egress rules "
                                     "or use one trust domain (no ca.spire.trustDomains)"))
        if spec.telemetry is not None:
            p.append(("mesh.telemetry", "telemetry selects callers by principals of mesh.trustDomain only, which "
                                        "federated trust domains would not match; remove mesh.telemetry or use one "
                                        "trust domain (no ca.spire.trustDomains)"))
    elif o.bundle_endpoints:
        p.append(("mesh.ca.spire.bundleEndpoints", "every cluster runs one trust domain, so there is nothing to "
                                                   "federate; remove bundleEndpoints (or give clusters their own "
                                                   "trustDomains)"))
    return p


# ---------------------------------------------------------------------------------------------
# rendering


def spire_values(spec, cluster: str, material) -> dict:
    """Values of the ``spire`` umbrella chart for ``cluster`` (every key exists in
    ../shared/charts/spire: ``values.yaml`` and ``charts/spire-server/values.yaml``):

    - ``global.spire.trustDomain`` / ``clusterName``: the cluster's trust domain and name;
    - ``spire-server.upstreamAuthority.disk``: on, with our Secret (:data:`UPSTREAM_SECRET`,
      ``secret.create: false``); ``secret.data.bundle`` is the mesh trust bundle: the chart sets
      ``bundle_file_path`` only when it is non-empty (``templates/configmap.yaml:520-523``), and
      never writes it when it does not create the Secret;
    - ``spire-server.controllerManager.className`` :data:`CLASS_NAME` and the chart's own
      ``ClusterSPIFFEID``s off (``default`` would register every pod of every namespace,
      ``oidc-discovery-provider`` and ``test-keys`` serve components we do not install): the
      identities are exactly :func:`cluster_spiffe_ids`;
    - ``spiffe-oidc-discovery-provider.enabled: false`` (JWT discovery; Istio uses X.509 SVIDs);
    - federated: ``spire-server.federation.enabled`` (bundle endpoint on port 8443).
    """
    server: dict = {
        "controllerManager": {"className": CLASS_NAME, "identities": {"clusterSPIFFEIDs": {
            "default": {"enabled": False}, "oidc-discovery-provider": {"enabled": False},
            "test-keys": {"enabled": False}}}},
        "upstreamAuthority": {"disk": {"enabled": True, "secret": {
            "create": False, "name": UPSTREAM_SECRET, "data": {"bundle": material.trust_bundle_pem}}}},
    }
    if is_federated(spec):
        server["federation"] = {"enabled": True}
    return {"global": {"spire": {"clusterName": cluster, "trustDomain": trust_domain_of(spec, cluster)}},
            "spire-server": server, "spiffe-oidc-discovery-provider": {"enabled": False}}


def upstream_authority_objects(spec, material) -> list[dict]:
    """The Secret SPIRE's ``disk`` UpstreamAuthority reads (module docstring): ``tls.crt`` the
    cluster's intermediate chain (intermediate, then root), ``tls.key`` its key (a secret slot),
    ``bundle.crt`` the trust bundle."""
    o = options(spec)
    secret = k8s_object("v1", "Secret", UPSTREAM_SECRET, o.namespace, spec.name, type="Opaque", stringData={
        "tls.crt": material.cert_chain_pem, "tls.key": material.ca_key_pem, "bundle.crt": material.trust_bundle_pem})
    return [secret]


def releases(spec, cluster: str, material) -> list[dict]:
    """``spire-crds`` then ``spire`` (release dicts, concern ``control-plane``)."""
    ns = options(spec).namespace
    return [
        {"name": CRDS_RELEASE, "namespace": ns, "repository": REPOSITORY, "chart": CRDS_CHART,
         "version": CRDS_VERSION, "values": {}, "depends_on": []},
        {"name": RELEASE, "namespace": ns, "repository": REPOSITORY, "chart": CHART, "version": VERSION,
         "values": spire_values(spec, cluster, material), "depends_on": [CRDS_RELEASE]},
    ]


def istiod_values(spec, cluster: str) -> dict:
    """What istiod needs for SPIRE: the ``spire`` injection template as a default template, the
    cluster's trust domain and, federated, the other trust domains as aliases."""
    td = trust_domain_of(spec, cluster)
    mesh_config: dict = {}
    if td != "cluster.local":
        mesh_config["trustDomain"] = td
    others = [t for t in trust_domains(spec) if t != td]
    if others:
        mesh_config["trustDomainAliases"] = others
    out: dict = {"sidecarInjectorWebhook": {"templates": {"spire": SPIRE_TEMPLATE},
                                            "defaultTemplates": ["sidecar", "spire"]}}
    if mesh_config:
        out["meshConfig"] = mesh_config
    return out


def _selector_namespace(ns: str) -> dict:
    # kubernetes.io/metadata.name: set on every namespace by the API server (Kubernetes 1.22+)
    return {"matchLabels": {"kubernetes.io/metadata.name": ns}}


def cluster_spiffe_id(spec, cluster: str, name: str, namespace: str, pod_selector: dict) -> dict:
    """One ``ClusterSPIFFEID`` (cluster-scoped) registering the pods ``pod_selector`` picks in ``namespace``."""
    body: dict = {"className": CLASS_NAME, "spiffeIDTemplate": SPIFFE_ID_TEMPLATE,
                  "namespaceSelector": _selector_namespace(namespace), "podSelector": pod_selector}
    td = trust_domain_of(spec, cluster)
    others = [t for t in trust_domains(spec) if t != td]
    if others:
        body["federatesWith"] = others
    return k8s_object(API, "ClusterSPIFFEID", name, None, spec.name, spec=body)


def _injection_namespaces(objects: list[dict]) -> list[str]:
    out = []
    for o in objects:
        if o["kind"] != "Namespace" or o["apiVersion"] != "v1":
            continue
        labels = o["metadata"].get("labels") or {}
        if labels.get("istio-injection") == "enabled" or "istio.io/rev" in labels:
            out.append(o["metadata"]["name"])
    return out


def gateway_releases(releases_: list) -> list:
    """The releases of Istio's ``gateway`` chart (east-west and egress gateways)."""
    return [r for r in releases_ if r.chart == "gateway" and r.repository == ISTIO_REPOSITORY]


def istio_class_gateways(objects: list[dict]) -> list[dict]:
    """Gateway API Gateways of class ``istio`` (istiod deploys them from ``kube-gateway.yaml``)."""
    return [o for o in objects if o["kind"] == "Gateway" and o["apiVersion"].startswith("gateway.networking.k8s.io/")
            and (o.get("spec") or {}).get("gatewayClassName") == "istio"]


def cluster_spiffe_ids(spec, cluster: str, state) -> list[dict]:
    """The ``ClusterSPIFFEID``s of ``cluster``, sorted by name: ``gateway-<ns>-<release>`` per
    ``gateway`` chart release (pods ``app: <release>``, the chart's selector label, istio 1.30.3
    ``manifests/charts/gateway/templates/_helpers.tpl:18-21``), ``gateway-<ns>-<gateway>`` per
    Gateway of class ``istio`` (pods ``gateway.networking.k8s.io/gateway-name: <gateway>``,
    ``kube-gateway.yaml``), and ``sidecars-<ns>`` per namespace with sidecar injection (and
    Envoy Gateway's, whose proxies are injected: ``core.envoy_gateway``), picking the pods the
    ``spire`` template labelled (:data:`MANAGED_LABEL`) minus that namespace's gateways, so no
    pod is registered twice."""
    from . import envoy_gateway, gateway as gateway_core

    objects = state.objects
    out: list[dict] = []
    gateway_apps: dict[str, list[str]] = {}
    for r in gateway_releases(state.releases):
        gateway_apps.setdefault(r.namespace, []).append(r.name)
        out.append(cluster_spiffe_id(spec, cluster, f"gateway-{r.namespace}-{r.name}", r.namespace,
                                     {"matchLabels": {"app": r.name}}))
    for g in istio_class_gateways(objects):
        ns, name = g["metadata"]["namespace"], g["metadata"]["name"]
        out.append(cluster_spiffe_id(spec, cluster, f"gateway-{ns}-{name}", ns,
                                     {"matchLabels": {GATEWAY_NAME_LABEL: name}}))
    namespaces = set(_injection_namespaces(objects))
    if (gateway_core.implementation(spec) == "envoy-gateway" and spec.ingress is not None
            and cluster in gateway_core.ingress_clusters(spec)):
        namespaces.add(envoy_gateway.proxy_identity(spec)[0])
    for ns in sorted(namespaces):
        selector: dict = {"matchLabels": {MANAGED_LABEL: "true"}}
        if ns in gateway_apps:
            selector["matchExpressions"] = [{"key": "app", "operator": "NotIn", "values": sorted(gateway_apps[ns])}]
        out.append(cluster_spiffe_id(spec, cluster, f"sidecars-{ns}", ns, selector))
    return sorted(out, key=lambda o: o["metadata"]["name"])


def federation_objects(spec, cluster: str, material) -> list[dict]:
    """A ``ClusterFederatedTrustDomain`` per other cluster's trust domain (federated only), with
    its ``trustDomainBundle``: with the ``https_spiffe`` profile SPIRE authenticates the remote
    bundle endpoint with a bundle it already holds and fetches none without one (spiffe/spire
    v1.14.5 ``pkg/server/bundle/client/updater.go:120-131``), and an entry whose ``federatesWith``
    names a trust domain without a bundle is refused ("unable to find federated bundle",
    ``pkg/server/datastore/sqlstore/sqlstore.go:2570,4705-4722``). Every trust domain's bundle is
    the mesh trust bundle: each SPIRE server's ``disk`` upstream authority reads it as
    ``bundle_file_path`` and publishes it as its X.509 roots (``pkg/server/plugin/upstreamauthority/
    disk/disk.go:145-153``), so it is rendered exactly (:func:`bundle_value` of
    ``material.trust_bundle_pem``); later changes (a root rotation) arrive through the endpoint."""
    if not is_federated(spec):
        return []
    o = options(spec)
    out = []
    for c in spec.cluster_names():
        if c == cluster:
            continue
        td = trust_domain_of(spec, c)
        out.append(k8s_object(API, "ClusterFederatedTrustDomain", c, None, spec.name, spec={
            "className": CLASS_NAME, "trustDomain": td, "bundleEndpointURL": o.bundle_endpoints[c],
            "bundleEndpointProfile": {"type": "https_spiffe", "endpointSPIFFEID": SERVER_ID.format(td=td)},
            "trustDomainBundle": bundle_value(material.trust_bundle_pem)}))
    return out


def notices(spec) -> list[Problem]:
    """What federated SPIRE needs and the stack does not create, as ``(path, message)`` notices
    (one per cluster, at ``mesh.ca.spire.bundleEndpoints.<cluster>``; empty unless federated).

    ``federation.enabled`` only adds port :data:`FEDERATION_PORT` to the ClusterIP Service
    :data:`SERVER_SERVICE` (``charts/spire-server/values.yaml:79-80``, ``templates/service.yaml:23-29``
    at spire-0.30.0). The chart's ``federation.ingress`` is not rendered: it is an Ingress that needs
    TLS passthrough (``templates/federation-ingress.yaml:9-18`` sets ingress-nginx's
    ``ssl-passthrough``, which that controller honours only when started with
    ``--enable-ssl-passthrough``, or an OpenShift passthrough Route), since the ``https_spiffe``
    profile authenticates SPIRE's own certificate end to end; which controller a cluster runs is
    not in the spec. So exposing the endpoint at ``bundleEndpoints.<cluster>`` is the user's."""
    if not is_federated(spec):
        return []
    o = options(spec)
    out: list[Problem] = []
    for c in spec.cluster_names():
        others = [x for x in spec.cluster_names() if x != c]
        out.append((f"mesh.ca.spire.bundleEndpoints.{c}",
                    f"expose cluster {c!r}'s SPIRE bundle endpoint (Service {o.namespace}/{SERVER_SERVICE}, port "
                    f"{FEDERATION_PORT}, ClusterIP only) at {o.bundle_endpoints.get(c, '?')} for cluster(s) "
                    f"{', '.join(others)}, passing TLS through to SPIRE (https_spiffe authenticates SPIRE's own "
                    f"certificate, spiffe://{trust_domain_of(spec, c)}/spire/server): e.g. a LoadBalancer Service or "
                    "a TLS-passthrough route; the stack does not create it, and without it the other SPIRE servers "
                    "cannot refresh this trust domain's bundle and keep only the copy rendered in their "
                    "ClusterFederatedTrustDomain"))
    return out


def gateway_overlay(spec, gateway: dict) -> dict:
    """The ``deployment`` overlay ConfigMap ``<gateway>-spire`` of a Gateway of class ``istio``: a
    strategic merge patch replacing the ``workload-socket`` ``emptyDir`` with the CSI volume
    (``emptyDir: null`` deletes the field in a strategic merge patch)."""
    import yaml

    ns, name = gateway["metadata"]["namespace"], gateway["metadata"]["name"]
    patch = {"spec": {"template": {"spec": {"volumes": [
        {"name": "workload-socket", "emptyDir": None, "csi": {"driver": CSI_DRIVER, "readOnly": True}}]}}}}
    return k8s_object("v1", "ConfigMap", f"{name}-spire", ns, spec.name,
                      data={"deployment": yaml.safe_dump(patch, sort_keys=True)})


def _with_parameters_ref(gateway: dict, configmap: str) -> dict:
    spec = dict(gateway["spec"])
    infra = dict(spec.get("infrastructure") or {})
    infra["parametersRef"] = {"group": "", "kind": "ConfigMap", "name": configmap}
    spec["infrastructure"] = infra
    return {**gateway, "spec": spec}


def wire(spec, cluster, state, material) -> None:
    """Add SPIRE to ``state`` (a ``render.ClusterState`` of ``cluster``) in place; nothing unless
    :func:`enabled`. ``material``: the cluster's CA material (``ca.slot_material``)."""
    from .meta import deep_merge
    from .render import HelmRelease  # render calls this: loaded

    if not enabled(spec):
        return
    name = cluster.name
    o = options(spec)
    st = state
    # gateways of the gateway chart (east-west, egress): the spire template beside the gateway one
    st.releases = [replace(r, values=deep_merge(r.values, {"podAnnotations": {
        "inject.istio.io/templates": GATEWAY_TEMPLATES}})) if r in gateway_releases(st.releases) else r
        for r in st.releases]
    # istiod: the template, the trust domain (aliases), and after SPIRE and its identities
    istiod = istiod_values(spec, name)
    st.releases = [replace(r, values=deep_merge(r.values, istiod), depends_on=tuple(r.depends_on) + (RELEASE,))
                   if r.chart == "istiod" and r.repository == ISTIO_REPOSITORY else r for r in st.releases]
    st.releases = [HelmRelease(**{**r, "depends_on": tuple(r["depends_on"])})
                   for r in releases(spec, name, material)] + st.releases
    # Gateway API gateways of class istio: the CSI volume through a deployment overlay
    for concern, objects in st.concerns.items():
        out = []
        for obj in objects:
            if obj in istio_class_gateways([obj]):
                overlay = gateway_overlay(spec, obj)
                out += [overlay, _with_parameters_ref(obj, overlay["metadata"]["name"])]
            else:
                out.append(obj)
        st.concerns[concern] = out
    st.concerns["ca"] = st.concerns["ca"] + upstream_authority_objects(spec, material)
    namespace = k8s_object("v1", "Namespace", o.namespace, None, spec.name)
    namespace["metadata"]["labels"] = {**(namespace["metadata"].get("labels") or {}), **NAMESPACE_LABELS}
    st.concerns["control-plane"] = ([namespace] + st.concerns["control-plane"] + cluster_spiffe_ids(spec, name, st)
                                    + federation_objects(spec, name, material))


def is_spire_object(obj: dict) -> bool:
    """True for the custom resources the SPIRE controller manager serves (``spire.spiffe.io``):
    registered after the ``spire-crds`` and ``spire`` releases, before istiod
    (``components.control_plane``)."""
    return obj["apiVersion"].startswith("spire.spiffe.io/")
