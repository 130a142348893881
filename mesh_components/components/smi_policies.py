"""One cluster's traffic policy component (SMI translated for the mesh), usable alone on a mesh
installed by other means, or composed by ``ServiceMesh``.

No ``from __future__ import annotations`` here: Pulumi's analyzer reads the Args and output
annotations as objects (``inspect.get_annotations``, pulumi 3.x
``pulumi/provider/experimental/analyzer.py`` ``analyze_component``), not as strings.

What SMI's policy relies on that the control plane normally sets, and what this component does
about it on an existing mesh (it never installs or changes the control plane's releases):

- Istio, sidecar or ambient: an ALLOW ``AuthorizationPolicy`` makes its workload deny whatever no
  ALLOW policy admits (https://istio.io/latest/docs/reference/config/security/authorization-policy/),
  so the policy brings its own default deny; nothing to patch. Nor does it need the stack's
  mesh-wide STRICT ``PeerAuthentication``: every rule names ``principals``, which a plaintext caller
  has none of ("This field requires mTLS enabled", same page, ``Source.principals``), so a PERMISSIVE
  mesh admits no more than SMI says. Ambient: L7 policy is enforced by
  the namespace's waypoint, which traffic reaches only from namespaces labelled
  ``istio.io/use-waypoint: <waypoint>`` (https://istio.io/latest/docs/ambient/usage/waypoint/ ,
  "Configure a pod to use a waypoint"; ``istio.io/ingress-use-waypoint`` for ingress gateways,
  https://istio.io/latest/docs/reference/config/labels/): the namespaces are PATCHED with exactly
  the labels the policy needs (``istio_policy.namespace_labels``).
- Linkerd: a ``Server`` denies its port unless an AuthorizationPolicy admits the caller, but a
  port no Server selects falls to the default inbound policy, ``all-unauthenticated`` by the
  chart's default (linkerd2 edge-26.8.3 ``charts/linkerd-control-plane/values.yaml:247-251``),
  wider than SMI's default deny: the namespaces are PATCHED with
  ``config.linkerd.io/default-inbound-policy`` as the stack renders it
  (``linkerd.policy_namespace_annotations``; https://linkerd.io/2/features/server-policy/ ,
  "Policy annotations"). The proxy injector copies it onto pods when it injects them and the
  policy controller reads the pod's copy (``policy-controller/k8s/index/src/inbound/workload.rs:185-195``,
  ``controller/proxy-injector/webhook.go:106-108``): pods created before keep the old default
  until restarted, so the namespaces are listed in ``restart_namespaces``.
- OSM: with permissive traffic policy mode on, OSM bypasses every SMI access policy
  (https://release-v1-1.docs.openservicemesh.io/docs/guides/traffic_management/permissive_mode ,
  "SMI traffic access policy enforcement is bypassed"), and the chart turns it on by default
  (OSM v1.2.4 ``charts/osm/values.yaml:258`` ``enablePermissiveTrafficPolicy: true``): the
  MeshConfig ``<osmNamespace>/osm-mesh-config`` is PATCHED with
  ``spec.traffic.enablePermissiveTrafficPolicyMode: false`` (the docs' own ``kubectl patch
  meshconfig``; field ``config.openservicemesh.io/v1alpha2`` MeshConfig, ../shared/crds/osm/
  config_meshconfig.yaml), and with the Retry feature flag when a Retry is rendered
  (``osm.control_plane_objects_for``). This is mesh-wide: every destination without a
  TrafficTarget is then denied, as SMI's default deny says; ``mesh_config`` names the patch. The
  args must accept that with ``osm_mesh_wide_change: true`` (refused otherwise).

Everything is registered in an order that refuses no call the policy admits on the way
(:func:`registration_stages`): Istio ambient labels a namespace for its waypoint only once the
waypoint takes traffic and the policies acting there exist, and only then adds ztunnel's own
policies; Linkerd's Servers come after their authorizations and its default inbound policy last;
OSM's MeshConfig after every TrafficTarget.

A TrafficTarget source must be a declared service's account or one of ``ingress_identities``: a
meshed workload this component does not police (an ingress gateway the user runs), admitted as
exactly its identity; the stack file's ``mesh.ingressIdentities`` (``spec.IngressIdentity``),
checked by the same loader (``spec.smi.check_documents``).

Application namespaces are patched, never created: unforced ``NamespacePatch``es holding only these
keys (:func:`~mesh_components.components.registration.namespace_patch_metadata`), which relinquish
them on delete; a key another field manager holds with another value (the user's own
``default-inbound-policy`` or ``use-waypoint``) fails the apply with a conflict instead of being
taken over, and then removed by ``pulumi destroy``. Each patch (namespaces, the MeshConfig) waits
for a read of the object it patches
(:func:`~mesh_components.components.registration.read_existing`): a patch is an upsert, and
would create a namespace or MeshConfig that is not there.
What cannot be checked from here (the workloads are meshed, no other policy of the
mesh widens ours) is listed in ``requirements``.
"""
import dataclasses
import os
import types
from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from ..meshes import osm
from ..core.ca import OSM_NAMESPACE
from ..spec.errors import Problem
from ..core.meta import PATCH_ANNOTATION, deep_merge, k8s_patch
from ..spec.names import dns1123_label_problem, dns1123_subdomain_problem
from ..core.render import POLICIES, ClusterState, app_namespaces, traffic_model
from ..core.slots import Slot
from . import standalone
from .args import ArgsError, from_schema_keys, unknown_inputs
from .registration import Lookup, depends_on_of, previous_names, read_existing, register_object, register_objects

COMPONENT = "SmiPolicies"


class SmiServicePortArgs(TypedDict, total=False):
    """One port of a service, as ``mesh.services[].ports[]`` of the stack file."""

    port: Required[pulumi.Input[int]]
    """The Service port (1-65535)."""
    name: pulumi.Input[str]
    """The Service port's name (DNS label). Default: ``<protocol>-<port>``."""
    protocol: pulumi.Input[str]
    """``http`` (default), ``http2``, ``grpc``: L7 rules apply; ``tcp`` or ``tls``: L4 only."""
    target_port: pulumi.Input[int]
    """The pods' port the Service sends to (1-65535). Default: ``port``. Istio sidecar and
    Linkerd policies match it, not the Service port."""
    probe_paths: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Paths the kubelet's ``httpGet`` probes request on the target port (``/healthz``): Linkerd
    admits them where a Server with HTTPRoutes would refuse them. Default: none."""
    server_first: pulumi.Input[bool]
    """A ``tcp`` port whose server speaks first (MySQL, SMTP...). Default: false."""


class SmiServiceVersionArgs(TypedDict, total=False):
    """A version of a service, the backend of a TrafficSplit (``<service>-<version>`` Service)."""

    name: Required[pulumi.Input[str]]
    """The version's name (DNS label), e.g. ``v1``."""
    labels: pulumi.Input[Mapping[str, pulumi.Input[str]]]
    """Pod labels of this version. Default: ``version: <name>``."""
    existing: pulumi.Input[bool]
    """``true``: the Service ``<service>-<version>`` exists already (your manifests made it, as
    OSM's and Linkerd's demos do): it is read, not created (a create would fail on the existing
    object: pulumi-kubernetes creates, it does not adopt, unless the provider upserts), and it
    must select exactly this version's pods and carry the service's ports (``requirements``).
    Default: false (created and owned here, selecting the service's labels and the version's)."""


class SmiServiceArgs(TypedDict, total=False):
    """A service of the existing mesh that SMI documents name, as ``mesh.services[]`` of the stack
    file: who runs it (service account), its pods (labels) and its ports."""

    name: Required[pulumi.Input[str]]
    """The Kubernetes Service's name (DNS label)."""
    namespace: Required[pulumi.Input[str]]
    """Its namespace (DNS label); the namespace must exist (it is patched, never created; where
    it is patched, it is read first, and a missing one fails the preview)."""
    service_account: pulumi.Input[str]
    """The service account its pods run as: the identity SMI names. Default: the service's name."""
    labels: pulumi.Input[Mapping[str, pulumi.Input[str]]]
    """Labels selecting its pods. Default: ``app: <name>``."""
    ports: Required[pulumi.Input[Sequence[pulumi.Input[SmiServicePortArgs]]]]
    """Its ports (at least one)."""
    versions: pulumi.Input[Sequence[pulumi.Input[SmiServiceVersionArgs]]]
    """Versions that TrafficSplits name as backends. Default: none."""
    headless: pulumi.Input[bool]
    """The Service has ``clusterIP: None``. Default: false."""
    resilience: pulumi.Input[Mapping[str, Any]]
    """Timeouts, retries, circuit breaking and outlier detection, as ``mesh.services[].resilience``
    of the stack file (``timeout``, ``retries``, ``circuitBreaker``, ``outlierDetection``).
    Default: none."""


class SmiNamespaceArgs(TypedDict, total=False):
    """An application namespace, as ``mesh.namespaces[]`` of the stack file."""

    name: Required[pulumi.Input[str]]
    """The namespace (DNS label)."""
    default_inbound_policy: pulumi.Input[str]
    """Linkerd only: its ``config.linkerd.io/default-inbound-policy`` (``deny``,
    ``cluster-authenticated``, ``all-authenticated``, ``cluster-unauthenticated``,
    ``all-unauthenticated``). Default: ``deny`` where a destination has an access rule."""


class SmiScraperArgs(TypedDict):
    """A meshed metrics scraper by identity."""

    namespace: pulumi.Input[str]
    """The scraper's namespace, e.g. ``linkerd-viz``."""
    service_account: pulumi.Input[str]
    """The scraper's service account, e.g. ``prometheus``."""


class SmiIngressIdentityArgs(TypedDict):
    """A workload of the existing mesh that this component does not police and that TrafficTarget
    ``sources`` may name without a declared service: an ingress gateway you run yourself."""

    namespace: pulumi.Input[str]
    """Its namespace (DNS label), e.g. ``istio-system``; neither read nor patched."""
    service_account: pulumi.Input[str]
    """The service account its pods run as (DNS-1123 subdomain), e.g.
    ``istio-ingressgateway-service-account`` (Istio's ``gateways/istio-ingress`` chart:
    ``<gateway name>-service-account``), or ``<gateway>-istio`` for a Gateway API Gateway of class
    ``istio``."""


class SmiPoliciesArgs(TypedDict, total=False):
    """SMI documents and their service context, rendered for the existing mesh named by ``mesh``."""

    mesh: Required[pulumi.Input[str]]
    """The mesh that runs on the cluster: ``istio``, ``linkerd`` or ``osm``."""
    services: Required[pulumi.Input[Sequence[pulumi.Input[SmiServiceArgs]]]]
    """The services the documents name (sources and destinations), with their ports."""
    documents: pulumi.Input[Sequence[pulumi.Input[Mapping[str, Any]]]]
    """SMI documents as objects (TrafficTarget ``access.smi-spec.io``, HTTPRouteGroup and TCPRoute
    ``specs.smi-spec.io``, TrafficSplit ``split.smi-spec.io``; every version the stack file reads).
    Default: none."""
    paths: pulumi.Input[Sequence[pulumi.Input[str]]]
    """YAML files or folders (read recursively) holding SMI documents, as ``mesh.smiFiles``;
    relative paths resolve against the program's working directory (give absolute paths from a
    component package). Default: none."""
    trust_domain: pulumi.Input[str]
    """The mesh's trust domain, which its identities carry (Istio principals
    ``<td>/ns/<ns>/sa/<sa>``, Linkerd ``<sa>.<ns>.serviceaccount.identity.linkerd.<td>``).
    Default: ``cluster.local``."""
    data_plane: pulumi.Input[str]
    """Istio only: ``sidecar`` (default) or ``ambient`` (L7 policy at a waypoint per namespace)."""
    cluster_name: pulumi.Input[str]
    """The cluster's name (DNS label), as it appears in messages. Default: ``default``."""
    mesh_name: pulumi.Input[str]
    """The value of the ownership label ``mesh-components.io/mesh`` on every object (DNS label).
    Default: ``mesh``."""
    namespaces: pulumi.Input[Sequence[pulumi.Input[SmiNamespaceArgs]]]
    """The application namespaces (default: those of ``services``), with Linkerd's
    ``defaultInboundPolicy``."""
    linkerd_scrapers: pulumi.Input[Sequence[pulumi.Input[SmiScraperArgs]]]
    """Linkerd only: identities allowed to scrape the proxies' metrics where the default inbound
    policy is ``deny`` (as ``mesh.backend.linkerd.scrapers``). Default: none."""
    ingress_identities: pulumi.Input[Sequence[pulumi.Input[SmiIngressIdentityArgs]]]
    """Identities of meshed workloads not in ``services`` (an existing ingress gateway) that
    TrafficTarget ``sources`` may name; each is admitted exactly as that identity, only where a
    TrafficTarget names it (Istio principal ``<trustDomain>/ns/<namespace>/sa/<serviceAccount>``;
    Linkerd MeshTLSAuthentication identity
    ``<serviceAccount>.<namespace>.serviceaccount.identity.linkerd.<trustDomain>``; OSM the
    TrafficTarget source as given). Nothing is rendered, read or patched for them; what they must
    be (meshed; Istio ambient: routed through the waypoint) is in ``requirements``. Default: none
    (every source is a service's account)."""
    osm_namespace: pulumi.Input[str]
    """OSM only: the namespace of OSM's control plane, which holds MeshConfig ``osm-mesh-config``.
    Default: ``osm-system``."""
    osm_mesh_wide_change: pulumi.Input[bool]
    """OSM only, and required there: ``true`` accepts that this component patches the mesh-wide
    MeshConfig with ``spec.traffic.enablePermissiveTrafficPolicyMode: false``, which denies every
    destination of the WHOLE mesh that no TrafficTarget admits, not only these services (OSM v1.2.4
    ``pkg/apis/config/v1alpha2/mesh_config.go:113-114``: "permissive traffic policy mode is
    enabled mesh-wide"), and that after ``pulumi destroy`` the field is relinquished and reads as
    ``false`` (the mesh keeps denying; see ``requirements``). Default: none (refused)."""


FIELDS = {
    **standalone.MESH_FIELDS,
    "mesh.backend.linkerd": "linkerdScrapers",
    "mesh.backend.linkerd.scrapers": "linkerdScrapers",
    "mesh.namespaces": "namespaces",
    "mesh.smiFiles": "paths",
    "mesh.ingressIdentities": "ingressIdentities",
}
"""Stack path -> SmiPolicies field (:func:`standalone.repath`)."""


REQUIREMENTS = {
    "all": ("the workloads of namespaces {namespaces} run in the mesh: a mesh enforces policy only on its own "
            "workloads (Istio: sidecar-injected or ambient-enrolled; Linkerd: proxy-injected; OSM: namespaces "
            "monitored by the mesh and injected)"),
    "istio": ("no other ALLOW AuthorizationPolicy selects these workloads: ALLOW policies are alternatives, and one "
              "in the root namespace (istio-system by default) applies to every workload "
              "(https://istio.io/latest/docs/reference/config/security/authorization-policy/)"),
    "sidecar": ("the labels of each service (services[].labels, default app: <name>) select exactly its pods: a "
                "policy's selector that matches no pod applies to none, and a workload no ALLOW policy selects admits "
                "every caller (https://istio.io/latest/docs/reference/config/security/authorization-policy/ , "
                "\"If there are no ALLOW policies for the workload, allow the request\")"),
    "ambient": ("the istio-waypoint GatewayClass exists (ambient install); namespaces {waypoints} send their "
                "traffic through waypoint 'waypoint' (istio.io/use-waypoint, patched here), which denies every "
                "Service there that no policy names: declare each Service of these namespaces in services"),
    "linkerd": ("no other policy.linkerd.io AuthorizationPolicy targets these namespaces or the Servers rendered here; "
                "restart the workloads of namespaces {restart} (kubectl rollout restart): their pods read "
                "config.linkerd.io/default-inbound-policy when injected; a workload there that services does not "
                "declare is then denied where the default is deny"),
    "linkerd-servers": ("no other Server selects these pods on the same port: the policy controller gives a port to "
                        "the oldest Server that selects it and skips the others (\"Port already matched by another "
                        "server; skipping\", linkerd2 edge-26.8.3 policy-controller/k8s/index/src/inbound/"
                        "index.rs:1246-1266), so with an older Server there the Servers {servers} and their "
                        "authorizations apply to nothing; delete or re-scope the older one"),
    "linkerd-probes": ("the kubelet's httpGet probes of ports {ports} are admitted only on the paths listed in "
                       "probePaths: these ports' Servers have HTTPRoutes, which replace the policy controller's "
                       "default probe route (policy-controller/k8s/index/src/inbound/index.rs:2008-2017), so any "
                       "other probe is refused and the pods never become Ready; list the probe paths in "
                       "services[].ports[].probePaths"),
    "linkerd-scrapers": ("nothing needs to scrape the proxies' metrics in namespaces {namespaces} (default inbound "
                         "policy deny): linkerd-viz's Prometheus and other scrapers are refused there unless given in "
                         "linkerdScrapers (e.g. namespace linkerd-viz, serviceAccount prometheus)"),
    "osm": ("permissive traffic policy mode is turned off mesh-wide (MeshConfig {mesh_config}, patched here): every "
            "destination of the mesh without a TrafficTarget is then denied; no other TrafficTarget grants these "
            "destinations"),
    "osm-destroy": ("pulumi destroy does not turn permissive mode back on: it relinquishes "
                    "spec.traffic.enablePermissiveTrafficPolicyMode, OSM reads the absent field as false (the CRD has "
                    "no default and osm-bootstrap applies the chart's presets only to a MeshConfig it creates: OSM "
                    "v1.2.4 cmd/osm-bootstrap/osm-bootstrap.go:282-329, pkg/configurator/methods.go:70), and the mesh "
                    "keeps denying every destination without a TrafficTarget; to reopen it: kubectl patch meshconfig "
                    "{name} -n {namespace} --type=merge -p "
                    "'{{\"spec\":{{\"traffic\":{{\"enablePermissiveTrafficPolicyMode\":true}}}}}}'"),
    "ingress": ("the workloads running as {identities} (ingressIdentities) are in the mesh and call with their mesh "
                "identity, by which alone they are admitted, and call each destination by its Service (its "
                "ClusterIP name), not its pods' addresses (ingress-nginx: service-upstream \"true\"): a call to a pod "
                "address bypasses an ambient waypoint, which serves Services only, and a headless Service gets none "
                "(istio 1.30.3 pilot/pkg/xds/endpoints/endpoint_builder.go:902-905): {how}"),
    "ingress-istio": ("Istio principals {principals}, which need mutual TLS "
                      "(https://istio.io/latest/docs/reference/config/security/authorization-policy/ , "
                      "Source.principals: \"This field requires mTLS enabled\"): an Istio ingress gateway "
                      "(istio-ingressgateway, or a Gateway of class istio) has them"),
    "ingress-linkerd": ("Linkerd identities {principals} (MeshTLSAuthentication): the ingress's pods must be "
                        "proxy-injected (linkerd.io/inject)"),
    "ingress-osm": ("OSM matches a TrafficTarget source by the certificate of its sidecar (OSM v1.2.4 "
                    "pkg/envoy/lds/rbac.go:75-76 for TCP, pkg/envoy/rds/route/rbac.go:22-31 for HTTP routes): the "
                    "ingress's pods must be sidecar-injected in a namespace OSM monitors, with their listening ports "
                    "excluded from the sidecar's inbound capture (annotation openservicemesh.io/inbound-port-exclusion-list, "
                    "pkg/injector/exclusions.go:18): an injected pod sends all inbound TCP to its Envoy, whose inbound "
                    "listener holds only mesh mTLS and IngressBackend filter chains (pkg/envoy/lds/response.go:46-71), "
                    "so the load balancer's plaintext would find none; an ingress controller outside the mesh is "
                    "admitted by an IngressBackend (policy.openservicemesh.io) instead, which this component does not "
                    "render"),
    "ingress-ambient": ("Istio's gateways send requests for the Services of namespaces {namespaces} to the waypoint "
                        "only where istio.io/ingress-use-waypoint is true (patched here on the namespaces; a "
                        "Service's own label wins: istio 1.30.3 pilot/pkg/serviceregistry/ambient/services.go:786-799, "
                        "pilot/pkg/xds/endpoints/endpoint_builder.go:896-920) and istiod keeps "
                        "ENABLE_INGRESS_WAYPOINT_ROUTING on (its default, pilot/pkg/features/ambient.go:62): a "
                        "Service there labelled istio.io/ingress-use-waypoint: \"false\" is called directly, where "
                        "ztunnel's <service>-via-waypoint policy refuses what only the waypoint's policies admit"),
    "existing-versions": ("the existing version Services {services} select exactly their version's pods and carry "
                          "these ports, as the Services this component would create: a TrafficSplit sends each "
                          "backend's share to what its Service selects, so a wider selector sends traffic to other "
                          "versions, and a missing port drops that backend from the port's split"),
}
"""What the component assumes of the existing mesh and cannot check at construction (``requirements``)."""


@dataclasses.dataclass(frozen=True)
class SmiPoliciesPlan:
    """What :class:`SmiPolicies` registers, computed before anything is: ``namespaces`` (the
    namespace patches), ``objects`` (the ``policy`` concern of the rendered cluster, as
    ``render_mesh`` gives it for the equivalent stack), ``mesh_config`` (OSM's MeshConfig patch, or
    None), ``restart_namespaces`` and ``requirements`` (texts)."""

    mesh: str
    cluster: str
    state: ClusterState
    namespaces: list
    objects: list
    mesh_config: Optional[dict]
    restart_namespaces: list
    requirements: list
    existing_services: list = dataclasses.field(default_factory=list)
    """The version Services marked ``existing``: read, not registered (left out of ``objects``)."""


def stack_mesh(name: str, args: Mapping[str, Any]) -> tuple[dict, list[Problem]]:
    """``args`` (Python or camelCase keys) -> ``(the stack-shaped mesh: mapping, problems found
    before the spec loader: unknown fields, values not known yet, osmNamespace)``."""
    problems: list[Problem] = []
    if not isinstance(args, Mapping):
        raise ArgsError([(f"{COMPONENT} {name}", f"args must be a mapping of SmiPoliciesArgs fields, got "
                                                 f"{type(args).__name__}")])
    known = SmiPoliciesArgs.__annotations__
    problems += unknown_inputs(args, known)
    plain = from_schema_keys(args, known)
    problems += standalone.unknown_values(standalone.stack_keys(plain, SmiPoliciesArgs), "")
    a = standalone.stack_keys({k: v for k, v in plain.items() if k in known}, SmiPoliciesArgs)
    backend: dict = {"type": a.get("mesh")}
    if a.get("dataPlane") is not None:
        backend["istio"] = {"dataPlane": a["dataPlane"]}
    if a.get("linkerdScrapers") is not None:
        backend["linkerd"] = {"scrapers": a["linkerdScrapers"]}
    mesh: dict = {
        "name": a.get("meshName", "mesh"),
        "backend": backend,
        # one cluster; its cloud and region decide nothing of the policy concern
        "clusters": [{"name": a.get("clusterName", "default"), "cloud": "onprem", "region": "standalone"}],
    }
    for key, field in (("services", "services"), ("trustDomain", "trustDomain"), ("namespaces", "namespaces"),
                       ("smiFiles", "paths")):
        if a.get(field) is not None:
            mesh[key] = a[field]
    if isinstance(mesh.get("services"), (list, tuple)):
        mesh["services"], more = _without_existing_flags(mesh["services"])
        problems += more
    identities, identity_problems = ingress_identities(a)
    if identities and not identity_problems:  # the stack file's own field (spec.IngressIdentity)
        mesh["ingressIdentities"] = [{"namespace": ns, "serviceAccount": sa} for ns, sa in sorted(identities)]
    if "services" not in a:
        problems.append(("services", "required; give the services the SMI documents name, each with name, "
                                     "namespace and ports"))
    documents = a.get("documents")
    if documents is not None and not isinstance(documents, (list, tuple)):
        problems.append(("documents", "expected a list of SMI documents (mappings with apiVersion, kind, metadata)"))
    ns = a.get("osmNamespace")
    if ns is not None:
        if a.get("mesh") != "osm":
            problems.append(("osmNamespace", f"applies to mesh osm only, not {a.get('mesh')!r}; remove it"))
        elif not isinstance(ns, str) or dns1123_label_problem(ns):
            problems.append(("osmNamespace", f"{ns!r} is not a namespace name (a DNS-1123 label, e.g. osm-system)"))
    ack = a.get("osmMeshWideChange")
    if a.get("mesh") == "osm" and ack is not True:
        # never wider without the user saying so: permissive mode is one switch of the whole mesh
        # (OSM v1.2.4 pkg/apis/config/v1alpha2/mesh_config.go:113-114)
        problems.append(("osmMeshWideChange",
                         "required for OSM: this component sets spec.traffic.enablePermissiveTrafficPolicyMode false "
                         "in OSM's MeshConfig, which denies every destination of the mesh that no TrafficTarget "
                         "admits, not only these services, and keeps denying after pulumi destroy; give "
                         "osmMeshWideChange: true to accept it"))
    elif a.get("mesh") in ("istio", "linkerd") and ack is not None:
        problems.append(("osmMeshWideChange", f"applies to mesh osm only, not {a.get('mesh')!r}; remove it"))
    problems += identity_problems
    return mesh, problems


def _without_existing_flags(services: Sequence[Any]) -> tuple[list, list[Problem]]:
    """``services`` with ``versions[].existing`` taken out (the stack file has no such field: its
    version Services are always its own) and its problems."""
    out, problems = [], []
    for i, svc in enumerate(services):
        versions = svc.get("versions") if isinstance(svc, Mapping) else None
        if not isinstance(versions, (list, tuple)):
            out.append(svc)
            continue
        kept = []
        for j, v in enumerate(versions):
            if isinstance(v, Mapping) and "existing" in v:
                if not isinstance(v["existing"], bool):
                    problems.append((f"services[{i}].versions[{j}].existing", f"expected true or false, got "
                                                                             f"{v['existing']!r}"))
                v = {k: x for k, x in v.items() if k != "existing"}
            kept.append(v)
        out.append({**svc, "versions": kept})
    return out, problems


def existing_version_services(a: Mapping[str, Any]) -> set[tuple[str, str]]:
    """``(namespace, <service>-<version>)`` of every version marked ``existing: true`` in ``a``
    (the args with the stack file's keys)."""
    out = set()
    for svc in a.get("services") or ():
        if not isinstance(svc, Mapping):
            continue
        for v in svc.get("versions") or ():
            if isinstance(v, Mapping) and v.get("existing") is True:
                out.add((svc.get("namespace"), f"{svc.get('name')}-{v.get('name')}"))
    return out


def ingress_identities(a: Mapping[str, Any]) -> tuple[set[tuple[str, str]], list[Problem]]:
    """``(the (namespace, service account) pairs of ingressIdentities, their problems)``; ``a``:
    the args with the stack file's camelCase keys (:func:`standalone.stack_keys`)."""
    given = a.get("ingressIdentities")
    if given is None:
        return set(), []
    if not isinstance(given, (list, tuple)):
        return set(), [("ingressIdentities", "expected a list of identities, each {namespace, serviceAccount}")]
    found: dict[tuple[str, str], int] = {}
    problems: list[Problem] = []
    for i, item in enumerate(given):
        where = f"ingressIdentities[{i}]"
        if not isinstance(item, Mapping):
            problems.append((where, "expected {namespace, serviceAccount}, e.g. {namespace: istio-system, "
                                    "serviceAccount: istio-ingressgateway-service-account}"))
            continue
        for key in sorted(set(item) - {"namespace", "serviceAccount"}, key=str):
            problems.append((f"{where}.{key}", "unknown field; known fields: namespace, serviceAccount"))
        ns, sa = item.get("namespace"), item.get("serviceAccount")
        why_ns = "required" if ns is None else (f"{ns!r} is not a namespace name" if not isinstance(ns, str)
                                                  else dns1123_label_problem(ns))
        why_sa = "required" if sa is None else (f"{sa!r} is not a service account name" if not isinstance(sa, str)
                                                  else dns1123_subdomain_problem(sa))
        problems += [(f"{where}.{f}", why) for f, why in (("namespace", why_ns), ("serviceAccount", why_sa)) if why]
        if why_ns or why_sa:
            continue
        if (ns, sa) in found:
            problems.append((where, f"{ns}/{sa} is already ingressIdentities[{found[(ns, sa)]}]; remove one"))
        found.setdefault((ns, sa), i)
    return set(found), problems


def plan(name: str, args: Mapping[str, Any], base_dir: Optional[str] = None) -> SmiPoliciesPlan:
    """Validate ``args`` and render them: the :class:`SmiPoliciesPlan`. Pure (no Pulumi calls).

    Raises :class:`ArgsError` (``"SmiPolicies <name>: <camelField>: ..."``: bad args, exactly the
    stack file's checks re-pathed) or :class:`~mesh_components.spec.errors.TranslationError` (a policy
    the mesh cannot express exactly, naming the document). ``base_dir``: where relative ``paths``
    resolve (default: the working directory)."""
    mesh, problems = stack_mesh(name, args)
    a = standalone.stack_keys(from_schema_keys(args, SmiPoliciesArgs.__annotations__), SmiPoliciesArgs)
    admitted = ingress_identities(a)[0]
    # every problem at once: the stack file's checks of what could be read too
    standalone.raise_all(COMPONENT, name, problems, mesh, FIELDS, base_dir=base_dir or os.getcwd())
    loaded, states = standalone.render(COMPONENT, name, mesh, FIELDS, documents=list(a.get("documents") or ()),
                                       base_dir=base_dir or os.getcwd())
    spec = loaded.spec
    cluster = spec.clusters[0].name
    state = states[cluster]
    kind = spec.backend.type
    policy = POLICIES[kind]
    model = traffic_model(loaded)
    annotations = getattr(policy, "namespace_annotations", None)
    patches = [p for p in app_namespaces(spec, cluster, lambda ns: policy.namespace_labels(spec, model, ns),
                                         (lambda ns: annotations(spec, model, ns)) if annotations else None)
               if p["metadata"].get("labels") or set(p["metadata"]["annotations"]) - {PATCH_ANNOTATION}]
    objects = list(state.concerns["policy"])
    existing = existing_version_services(a)
    existing_services = [o for o in objects if o["apiVersion"] == "v1" and o["kind"] == "Service"
                         and (o["metadata"]["namespace"], o["metadata"]["name"]) in existing]
    objects = [o for o in objects if not any(o is e for e in existing_services)]
    mesh_config = None
    if kind == "osm":
        namespace = a.get("osmNamespace") or OSM_NAMESPACE
        body: dict = {"traffic": {"enablePermissiveTrafficPolicyMode": False}}
        for needed in osm.control_plane_objects_for(objects):  # the Retry feature flag
            body = deep_merge(body, needed["spec"])
        mesh_config = {**k8s_patch(osm.MESH_CONFIG_API, "MeshConfig", osm.MESH_CONFIG_NAME, namespace), "spec": body}
    restart = sorted(p["metadata"]["name"] for p in patches if kind == "linkerd")
    app = sorted({s.namespace for s in spec.services} | {n.name for n in spec.namespaces})
    requirements = [REQUIREMENTS["all"].format(namespaces=", ".join(app))]
    if kind == "istio":
        requirements.append(REQUIREMENTS["istio"])
        if spec.backend.istio.data_plane != "ambient":  # ambient's waypoint policies name Services (targetRefs)
            requirements.append(REQUIREMENTS["sidecar"])
        waypoints = sorted(p["metadata"]["name"] for p in patches if "istio.io/use-waypoint" in
                           (p["metadata"].get("labels") or {}))
        if waypoints:
            requirements.append(REQUIREMENTS["ambient"].format(waypoints=", ".join(waypoints)))
    elif kind == "linkerd":
        requirements += linkerd_requirements(spec, objects, patches, restart)
    else:
        meta = mesh_config["metadata"]
        requirements.append(REQUIREMENTS["osm"].format(mesh_config=f"{meta['namespace']}/{meta['name']}"))
        requirements.append(REQUIREMENTS["osm-destroy"].format(name=meta["name"], namespace=meta["namespace"]))
    requirements += ingress_requirements(spec, model, admitted, patches)
    if existing_services:
        requirements.append(REQUIREMENTS["existing-versions"].format(services=", ".join(
            f"{o['metadata']['namespace']}/{o['metadata']['name']} (selector {_selector(o)}, ports "
            f"{', '.join(str(pt['port']) for pt in o['spec'].get('ports', []))})" for o in existing_services)))
    return SmiPoliciesPlan(kind, cluster, state, patches, objects, mesh_config, restart, requirements,
                           existing_services)


def _selector(service: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((service["spec"].get("selector") or {}).items()))


def linkerd_requirements(spec, objects: list, patches: list, restart: list) -> list[str]:
    """The ``requirements`` of a Linkerd plan: no other policy (and the restart of ``restart``);
    no older ``Server`` on the ports of ``objects``' Servers; the ports whose routed Server lacks
    ``probePaths`` (``linkerd.probe_notices``: linkerd2 edge-26.8.3 ``index.rs:2008-2017``, a
    Server with HTTPRoutes gets no default probe route); the ``deny`` namespaces of ``patches``
    when no ``linkerdScrapers`` are given (``linkerd.scrape_objects`` admits only those)."""
    from ..meshes import linkerd

    out = [REQUIREMENTS["linkerd"].format(restart=", ".join(restart) or "(none)")]
    servers = _names(objects, "Server", "policy.linkerd.io/")
    if servers:
        out.append(REQUIREMENTS["linkerd-servers"].format(servers=", ".join(servers)))
    ports = sorted({f"{spec.services[i].namespace}/{spec.services[i].name}:{p.target_port or p.port}"
                    for _, found in linkerd.routed_servers(spec, objects) for i, _j, p in found if not p.probe_paths})
    if ports:
        out.append(REQUIREMENTS["linkerd-probes"].format(ports=", ".join(ports)))
    deny = sorted(p["metadata"]["name"] for p in patches
                  if p["metadata"].get("annotations", {}).get(linkerd.DEFAULT_POLICY_ANNOTATION) == "deny")
    if deny and not spec.backend.linkerd.scrapers:
        out.append(REQUIREMENTS["linkerd-scrapers"].format(namespaces=", ".join(deny)))
    return out


def ingress_requirements(spec, model, admitted: set[tuple[str, str]], patches: list) -> list[str]:
    """The ``requirements`` of the ingressIdentities that some TrafficTarget names (none without):
    meshed, with the identity each mesh admits them by (Istio ``istio_policy.principal``, Linkerd
    ``linkerd_policy.identity``, OSM the source itself); Istio ambient, where such a source calls
    a waypoint namespace: the gateway must route through the waypoint."""
    from ..meshes import istio_policy, linkerd_policy

    used = sorted({s for a in model.authorizations for s in a.sources if s in admitted})
    if not used:
        return []
    kind, td = spec.backend.type, spec.trust_domain
    if kind == "istio":
        how = REQUIREMENTS["ingress-istio"].format(principals=", ".join(
            istio_policy.principal(td, ns, sa) for ns, sa in used))
    elif kind == "linkerd":
        how = REQUIREMENTS["ingress-linkerd"].format(principals=", ".join(
            linkerd_policy.identity(td, ns, sa) for ns, sa in used))
    else:
        how = REQUIREMENTS["ingress-osm"]
    out = [REQUIREMENTS["ingress"].format(identities=", ".join(f"{ns}/{sa}" for ns, sa in used), how=how)]
    # the core labels each waypoint namespace istio.io/ingress-use-waypoint: "true" beside its
    # istio.io/use-waypoint (istio_policy.namespace_labels)
    waypoints = {p["metadata"]["name"] for p in patches
                 if "istio.io/use-waypoint" in (p["metadata"].get("labels") or {})}
    called = sorted({a.destination.namespace for a in model.authorizations
                     if a.destination.namespace in waypoints and set(a.sources) & admitted})
    if called:
        out.append(REQUIREMENTS["ingress-ambient"].format(namespaces=", ".join(called)))
    return out


def restart_warning(name: str, namespaces: Sequence[str]) -> str:
    """The warning :class:`SmiPolicies` logs on itself (``pulumi.log.warn(..., resource=self)``,
    shown by ``pulumi preview``/``up`` beside the component) when it patches Linkerd's default
    inbound policy of ``namespaces`` (sorted, at least one): running pods keep the policy they
    were injected with until restarted. The proxy injector copies
    ``config.linkerd.io/default-inbound-policy`` onto a pod when it injects it
    (linkerd2 edge-26.8.3 ``controller/proxy-injector/webhook.go:106-108``) and the policy
    controller reads the pod's own copy (``policy-controller/k8s/index/src/inbound/workload.rs:185-195``,
    ``index.rs:1767`` ``settings.default_policy.unwrap_or(config.default_policy)``)."""
    commands = "; ".join(f"kubectl rollout restart deploy -n {ns}" for ns in namespaces)
    return (f"{COMPONENT} {name}: the pods already running in namespaces {', '.join(namespaces)} keep their former "
            f"Linkerd default inbound policy until restarted (the policy controller reads the "
            f"config.linkerd.io/default-inbound-policy copied onto each pod at injection): after this update run "
            f"{commands} (and the same for statefulsets and daemonsets there)")


WAYPOINT_CLASS = "istio-waypoint"
"""The GatewayClass of the waypoints ``istio_policy.policy_objects`` renders."""
WAIT_FOR = "pulumi.com/waitFor"
"""pulumi-kubernetes' annotation of a condition the provider awaits after creating or updating the
object (v4.32.0 ``provider/pkg/metadata/annotations.go:34``, read by
``provider/pkg/metadata/overrides.go`` ``ReadyCondition`` lines 81-160; 10 minutes unless
``customTimeouts``, ``provider/pkg/await/await.go:306``, :491)."""
WAYPOINT_READY = "jsonpath={.status.addresses[0].value}"
"""A waypoint Gateway is ready to take traffic once istiod has given it an address: istio 1.30.3
``pilot/pkg/serviceregistry/ambient/waypoints.go:230-231`` ignores a Gateway without
``status.addresses`` ("should only be populated once the Waypoint's deployment has at least 1 ready
pod"). A JSONPath without a value holds once the path selects something
(pulumi-kubernetes v4.32.0 ``provider/pkg/jsonpath/jsonpath.go:29-52``): the first address's value,
not an empty list."""


def _is_waypoint(obj: dict) -> bool:
    return (obj["kind"] == "Gateway" and obj["apiVersion"].startswith("gateway.networking.k8s.io/")
            and (obj.get("spec") or {}).get("gatewayClassName") == WAYPOINT_CLASS)


def _awaited(obj: dict) -> dict:
    """``obj`` as :class:`SmiPolicies` registers it: a waypoint Gateway with :data:`WAIT_FOR`
    :data:`WAYPOINT_READY`, so what registers after it (the ``istio.io/use-waypoint`` patch) waits
    until the waypoint takes traffic (:func:`registration_stages`); any other object as rendered."""
    if not _is_waypoint(obj):
        return obj
    meta = obj["metadata"]
    return {**obj, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}), WAIT_FOR: WAYPOINT_READY}}}


def registration_stages(p: SmiPoliciesPlan) -> tuple[list, list, list, list]:
    """``(first, routes, servers, late)``: ``p.objects`` in the order :class:`SmiPolicies` registers
    them, ``first`` at once; Linkerd's policy ``routes`` after the ``first`` of their namespace;
    ``servers`` after the ``first`` and ``routes`` of their namespace; then the namespace patches
    (``p.namespaces``), each after everything of the stages before in its namespace; ``late`` after
    their namespace's patch. So no call the policy admits is refused on
    the way, and nothing it restricts stays open longer than that takes:

    - Istio ambient. A namespace labelled for a waypoint that does not take traffic yet (no
      Gateway, or one without an address) gets none: istiod gives its Services no waypoint
      (istio 1.30.3 ``pilot/pkg/serviceregistry/ambient/waypoints.go:128-143`` for a namespace's label,
      ``ReportWaypointIsNotReady``; :230-231 a Gateway without ``status.addresses`` is no
      waypoint; ``services.go:272``, :693 ``Waypoint: w.GetAddress()``, nil), and ztunnel sends
      to the pods directly: nothing is dropped, and nothing is checked but ztunnel's own
      policies. Those are the ``selector`` AuthorizationPolicies; a ``targetRefs`` one never
      reaches ztunnel (``authorization.go:419-422``, "TargetRef is not intended for ztunnel") and
      acts only at the waypoint. So ``first`` holds the waypoint Gateway (awaited until it has an
      address: :func:`_awaited`), its default deny and every Service-targeted policy and route,
      which act on nothing until the label sends traffic through the waypoint; the patch then
      labels the namespace (``istio.io/use-waypoint``, and ``istio.io/ingress-use-waypoint`` for
      ingress gateways); ``late`` holds the ``<service>-via-waypoint`` policies of the labelled
      namespaces (``selector``: ztunnel admits only the waypoint, and the sources of L4 rules),
      which before the label would refuse every direct call. Before, the label came first and
      these policies beside the waypoint: the calls were refused until the waypoint's pods ran.
      What remains: istiod pushes the label's effect and these policies independently (seconds),
      and a waypoint's address is reported once it has any endpoint, ready or not
      (``gatewaycommon/context.go:102-103``; not-ready endpoints are kept as unhealthy,
      ``kube/controller/endpointslice.go:265-283``), so the label may land seconds before its pods
      serve: a short window where the waypoint refuses nothing it should admit but may not answer.
    - Linkerd. A ``Server`` denies its port to every caller no AuthorizationPolicy admits: its
      authorizations are only those targeting it, where a port without Server takes the default
      policy's (linkerd2 edge-26.8.3 ``policy-controller/k8s/index/src/inbound/index.rs:1767-1787``
      ``default_authzs``, :1794-1830 ``inbound_server``/``client_authzs``), so it comes after the routes,
      authentications and authorizations of its namespace (the policy controller's admission
      checks an AuthorizationPolicy without looking its target up: linkerd2 edge-26.8.3
      ``policy-controller/runtime/src/admission.rs:243-303``). A policy ``HTTPRoute``'s
      authorizations are likewise only those targeting the route (``index.rs:1937-1975``): the
      routes come after the authorizations and before their Server, so a new route on a Server
      refuses nothing its authorizations admit, and a new Server never runs without its routes. The namespace's
      ``config.linkerd.io/default-inbound-policy`` comes last: the proxy injector copies it onto
      every pod it injects from then on (``controller/proxy-injector/webhook.go:106-108``) and the
      policy controller applies the pod's copy to each port no Server selects
      (``policy-controller/k8s/index/src/inbound/workload.rs:185-195``), so a pod restarted before
      the Servers existed would refuse their admitted callers (``deny``).
    - Istio sidecar: ALLOW policies only, nothing to order; OSM: the MeshConfig patch comes after
      everything (:class:`SmiPolicies`)."""
    waypoint_ns = {q["metadata"]["name"] for q in p.namespaces
                   if "istio.io/use-waypoint" in (q["metadata"].get("labels") or {})}
    late = [o for o in p.objects if o["metadata"].get("namespace") in waypoint_ns and o["kind"] == "AuthorizationPolicy"
            and o["apiVersion"].startswith("security.istio.io/") and "selector" in (o.get("spec") or {})]
    servers = [o for o in p.objects if o["kind"] == "Server" and o["apiVersion"].startswith("policy.linkerd.io/")]
    routes = [o for o in p.objects if o["kind"] == "HTTPRoute" and o["apiVersion"].startswith("policy.linkerd.io/")]
    staged = {id(o) for o in late + servers + routes}
    return [o for o in p.objects if id(o) not in staged], routes, servers, late


def _refuse_slot(slot: Slot):
    raise KeyError(f"no producer for deploy-time value {slot.placeholder()}: SmiPolicies renders no secrets")


def _names(objects: list, kind: str, api_prefix: str = "") -> list:
    return sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objects
                  if o["kind"] == kind and o["apiVersion"].startswith(api_prefix))


class SmiPolicies(pulumi.ComponentResource):
    """SMI access policy and traffic splits, translated exactly for the mesh that runs on the
    cluster (Istio sidecar or ambient, Linkerd or OSM), or refused: AuthorizationPolicies and
    waypoints (Istio), Servers, HTTPRoutes and AuthorizationPolicies (Linkerd), TrafficTargets,
    route groups and TrafficSplits (OSM), GAMMA routes for splits and the per-version Services.
    Registers on the kubernetes provider given in ``opts``; the mesh and its CRDs must already be
    installed. Patches what the policy relies on (Istio ambient: ``istio.io/use-waypoint`` on the
    namespaces; Linkerd: ``config.linkerd.io/default-inbound-policy``; OSM: permissive mode off)."""

    TYPE, CONCERN = "mesh:index:SmiPolicies", "policy"

    objects: pulumi.Output[int]
    """How many policy objects this component registers (namespace and MeshConfig patches not counted)."""
    kinds: pulumi.Output[dict[str, int]]
    """Policy objects per kind, e.g. ``{"AuthorizationPolicy": 3, "Service": 2}``."""
    authorization_policies: pulumi.Output[list[str]]
    """``namespace/name`` of every AuthorizationPolicy (Istio ``security.istio.io``, Linkerd ``policy.linkerd.io``)."""
    servers: pulumi.Output[list[str]]
    """Linkerd: ``namespace/name`` of every ``Server``; empty for the other meshes."""
    traffic_targets: pulumi.Output[list[str]]
    """OSM: ``namespace/name`` of every TrafficTarget; empty for the other meshes."""
    namespaces_patched: pulumi.Output[list[str]]
    """Application namespaces given policy labels or annotations (Istio ambient: ``istio.io/use-waypoint``;
    Linkerd: ``config.linkerd.io/default-inbound-policy``), patched, never created."""
    mesh_config: Optional[pulumi.Output[str]]
    """OSM: ``namespace/name`` of the MeshConfig patched to turn permissive traffic policy mode off."""
    restart_namespaces: pulumi.Output[list[str]]
    """Linkerd: namespaces whose workloads must be restarted to take their new default inbound policy."""
    requirements: pulumi.Output[list[str]]
    """What the policy assumes of the existing mesh and this component cannot check (meshed workloads,
    no other policy widening these), one sentence each."""

    def __init__(self, name: str, args: SmiPoliciesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        p = plan(name, args)  # raises before anything is registered
        pulumi.ComponentResource.__init__(self, self.TYPE, name, None, opts)
        lookup: Lookup = _refuse_slot
        namespaces: dict = {}
        # children inherit the provider of opts; namespace patches unforced: a value another field manager
        # set fails the apply instead of being taken over (registration.namespace_patch_metadata)
        child = dict(parent=self, provider=None, namespaces=namespaces, force_namespaces=False)
        made: list = []
        by_namespace: dict[str, list] = {}
        previous = previous_names(name, p.objects)  # the aliases one registration of them all would give
        # children do not wait for the component's own depends_on (pulumi 3.272.0 pulumi/resource.py
        # passes only protect and providers to children); the reads of what is patched or used wait too
        deps = depends_on_of(opts)
        # version Services the user's manifests made: read (a missing one fails the preview), not created
        deps = deps + [read_existing(name, o, ResourceOptions(parent=self), after=deps) for o in p.existing_services]

        def register(objects: list, after) -> None:
            for obj in objects:
                ns = obj["metadata"].get("namespace")
                got = register_objects(name, [_awaited(obj)], lookup, after=deps + after(ns), previous=previous,
                                       **child)
                by_namespace.setdefault(ns, []).extend(got)
                made.extend(got)

        # in the order that denies no admitted call and leaves nothing open longer than it must
        # (registration_stages): what acts on nothing yet, Linkerd's routes, then its Servers, the
        # namespace patches, what the patches make act
        first, routes, servers, late = registration_stages(p)
        register(first, lambda ns: [])
        before = {ns: list(rs) for ns, rs in by_namespace.items()}
        register(routes, lambda ns: before.get(ns, []))
        before = {ns: list(rs) for ns, rs in by_namespace.items()}
        register(servers, lambda ns: before.get(ns, []))
        # each patch after a read of what it patches: a missing namespace or MeshConfig fails the
        # preview instead of being created by the patch's upsert (registration.read_existing)
        for patch in p.namespaces:
            ns = patch["metadata"]["name"]
            made += register_objects(name, [patch], lookup, after=[read_existing(name, patch, ResourceOptions(
                parent=self), after=depends_on_of(opts))] + deps + by_namespace.get(ns, []), **child)
        register(late, lambda ns: [])  # each waits for its namespace's patch (``namespaces``)
        if p.mesh_config is not None:  # after the TrafficTargets: no window where allowed traffic is denied
            existing = read_existing(name, p.mesh_config, ResourceOptions(parent=self), after=depends_on_of(opts))
            made.append(register_object(name, p.mesh_config, lookup,
                                        ResourceOptions(parent=self, depends_on=list(made) + [existing])))
        self.resources = made
        self.plan = p
        values = self.outputs(p.objects)
        values.update({
            "kinds": {k: sum(1 for o in p.objects if o["kind"] == k) for k in sorted({o["kind"] for o in p.objects})},
            "servers": _names(p.objects, "Server", "policy.linkerd.io/"),
            "traffic_targets": _names(p.objects, "TrafficTarget", "access.smi-spec.io/"),
            "namespaces_patched": [o["metadata"]["name"] for o in p.namespaces],
            "restart_namespaces": p.restart_namespaces,
            "requirements": p.requirements,
        })
        if p.mesh_config is not None:
            values["mesh_config"] = f"{p.mesh_config['metadata']['namespace']}/{p.mesh_config['metadata']['name']}"
        for key, value in values.items():
            setattr(self, key, pulumi.Output.from_input(value))
        self.register_outputs(values)
        if p.restart_namespaces:
            pulumi.log.warn(restart_warning(name, p.restart_namespaces), resource=self)

    @classmethod
    def _of_service_mesh(cls, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                         namespaces: dict, crds: Sequence[pulumi.Resource],
                         opts: Optional[ResourceOptions] = None) -> "SmiPolicies":
        """The component as ``ServiceMesh`` composes it: the ``policy`` concern of ``state`` on
        ``provider``, after ``crds`` (the control plane's releases), with exactly the
        registrations and outputs releases before the standalone component had (the body of
        ``base._ObjectsComponent``, which this class does not extend: the analyzer would read that
        base's class annotations as outputs)."""
        self = cls.__new__(cls)
        pulumi.ComponentResource.__init__(self, cls.TYPE, name, None, opts)
        objects = state.concerns[cls.CONCERN]
        # the stack's namespaces carry their policy labels from the start (the control plane
        # registers them), so only the stages after them apply here (registration_stages): Linkerd's
        # routes after their authorizations and its Servers after both; Istio ambient's ztunnel
        # policies after the waypoint of their namespace takes traffic (awaited: _awaited), as a
        # namespace labelled for a waypoint without an address sends directly to the pods, which
        # those policies would refuse (istio 1.30.3 pilot/pkg/serviceregistry/ambient/waypoints.go:128-143)
        labelled = [o for o in state.concerns.get("namespaces", []) if o["kind"] == "Namespace"]
        first, routes, servers, late = registration_stages(
            types.SimpleNamespace(namespaces=labelled, objects=objects))
        previous = previous_names(name, objects)  # the aliases one registration of them all gives
        made: list = []
        by_namespace: dict[str, list] = {}
        waypoints: dict[str, list] = {}

        def register(stage: list, after) -> None:
            for obj in stage:
                ns = obj["metadata"].get("namespace")
                got = register_objects(name, [_awaited(obj)], lookup, parent=self, provider=provider,
                                       namespaces=namespaces, crds=crds, after=after(ns), previous=previous)
                by_namespace.setdefault(ns, []).extend(got)
                if _is_waypoint(obj):
                    waypoints.setdefault(ns, []).extend(got)
                made.extend(got)

        register(first, lambda ns: [])
        before = {ns: list(rs) for ns, rs in by_namespace.items()}
        register(routes, lambda ns: before.get(ns, []))
        before = {ns: list(rs) for ns, rs in by_namespace.items()}
        register(servers, lambda ns: before.get(ns, []))
        register(late, lambda ns: waypoints.get(ns, []))
        self.resources = made
        self.register_outputs(self.outputs(objects))
        return self

    def outputs(self, objects):
        return {"objects": len(objects),
                "authorization_policies": sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                                                 for o in objects if o["kind"] == "AuthorizationPolicy")}
