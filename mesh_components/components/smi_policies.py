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
from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from ..meshes import osm
from ..core.ca import OSM_NAMESPACE
from ..spec.errors import Problem
from ..core.meta import PATCH_ANNOTATION, deep_merge, k8s_patch
from ..spec.names import dns1123_label_problem
from ..core.render import POLICIES, ClusterState, app_namespaces, traffic_model
from ..core.slots import Slot
from . import standalone
from .args import ArgsError, from_schema_keys, unknown_inputs
from .registration import Lookup, read_existing, register_object, register_objects

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
    return mesh, problems


def plan(name: str, args: Mapping[str, Any], base_dir: Optional[str] = None) -> SmiPoliciesPlan:
    """Validate ``args`` and render them: the :class:`SmiPoliciesPlan`. Pure (no Pulumi calls).

    Raises :class:`ArgsError` (``"SmiPolicies <name>: <camelField>: ..."``: bad args, exactly the
    stack file's checks re-pathed) or :class:`~mesh_components.spec.errors.TranslationError` (a policy
    the mesh cannot express exactly, naming the document). ``base_dir``: where relative ``paths``
    resolve (default: the working directory)."""
    mesh, problems = stack_mesh(name, args)
    a = standalone.stack_keys(from_schema_keys(args, SmiPoliciesArgs.__annotations__), SmiPoliciesArgs)
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
    return SmiPoliciesPlan(kind, cluster, state, patches, objects, mesh_config, restart, requirements)


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
        # each patch after a read of what it patches: a missing namespace or MeshConfig fails the
        # preview instead of being created by the patch's upsert (registration.read_existing)
        made = []
        for patch in p.namespaces:
            made += register_objects(name, [patch], lookup, after=[read_existing(name, patch, ResourceOptions(
                parent=self))], **child)
        made += register_objects(name, p.objects, lookup, **child)
        if p.mesh_config is not None:  # after the TrafficTargets: no window where allowed traffic is denied
            existing = read_existing(name, p.mesh_config, ResourceOptions(parent=self))
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
        self.resources = register_objects(name, objects, lookup, parent=self, provider=provider,
                                          namespaces=namespaces, crds=crds)
        self.register_outputs(self.outputs(objects))
        return self

    def outputs(self, objects):
        return {"objects": len(objects),
                "authorization_policies": sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                                                 for o in objects if o["kind"] == "AuthorizationPolicy")}
