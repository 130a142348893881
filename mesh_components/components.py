"""Pulumi components: thin ComponentResources that register the pure core's desired state.

``ServiceMesh`` renders the spec with :func:`mesh_components.render.render_mesh` and composes,
per cluster and on that cluster's own kubernetes Provider:

- ``ControlPlane``: namespaces, the CA distribution (Istio ``cacerts``), the Gateway API CRDs, the
  Helm releases in install order, mesh-wide objects;
- ``SmiPolicies``: translated access policy, waypoints, traffic splits, version Services;
- ``EgressRules``: ServiceEntries, Sidecars, egress waypoint policy;
- ``EnvoyGateway``: the ingress Gateway and its routes;
- ``MultiClusterLinks`` (several clusters only): the credentials other clusters read this one
  with, this cluster's remote secrets / Links to the others (kubeconfigs built from each target's
  kubeconfig input and a token read back from it, :class:`ClusterOutputs`), exported Services;

plus one mesh-wide ``MeshCertificateAuthority`` (a dynamic resource). Custom resources depend on
the releases and manifests that define their CRDs (pulumi-kubernetes#2881), and every child is
named after its component and cluster (two clusters' ``istio-system`` must not collide in URNs,
pulumi-kubernetes#1689). Idioms: https://www.pulumi.com/docs/iac/concepts/resources/components/
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi import Output, ResourceOptions

from . import multicluster as mc
from . import names
from .egress import CONFIG_SOURCE, allowed_egress, egress_summary
from .gateway import ingress_summary
from .meta import is_patch
from .render import ClusterState, HelmRelease, render_mesh
from .slots import Slot, fill, iter_slots
from .spec import KubeconfigSource, LoadedMesh, MeshSpec, expand_path, minify_kubeconfig

Lookup = Callable[[Slot], Any]
_CRD_GROUP_SUFFIXES = (".istio.io", "gateway.networking.k8s.io", ".linkerd.io", ".smi-spec.io", ".openservicemesh.io",
                       ".envoyproxy.io", "cert-manager.io")


# ---------------------------------------------------------------------------------------------
# providers


def kubeconfig_input(source: KubeconfigSource | None, cluster: str,
                     stack_references: dict[str, pulumi.StackReference] | None = None) -> Any:
    """The kubeconfig for ``cluster`` as a Pulumi input (text or secret Output), or None for the
    ambient kubeconfig. Text read here (``file``, or ``env`` holding the text or a path) is
    minified to the chosen context (``spec.minify_kubeconfig``): only that context's cluster and
    user reach the provider's inputs, and so the state, and the text changes only when they do;
    relative file references in a file (``certificate-authority``, ``client-key``, ``exec.command``
    with a ``/``, ...) are made absolute against its directory, as client-go would.
    A ``stackReference`` output is used as its stack publishes it. ``stack_references``: stack name
    -> the ``StackReference`` already made for it, shared by every cluster that reads that stack
    (a second one would register the same URN, which the engine rejects) and filled here. Raises
    ``pulumi.RunError`` naming the cluster when a file or variable is missing or the kubeconfig
    has no such context."""
    if source is None:
        return None
    if source.file or source.env:
        return _minified(*_read_kubeconfig(source, cluster), source, cluster)
    refs = stack_references if stack_references is not None else {}
    if source.stack_reference not in refs:
        refs[source.stack_reference] = pulumi.StackReference(source.stack_reference)
    return refs[source.stack_reference].get_output(source.output)


def _read_kubeconfig(source: KubeconfigSource, cluster: str) -> tuple[str, str | None]:
    """(kubeconfig text, the directory of the file it was read from, or None for text held in the
    variable itself): relative paths in a file are relative to that file, as for client-go."""
    if source.file:
        path = expand_path(source.file)
        if not path.exists():
            raise pulumi.RunError(f"cluster {cluster}: kubeconfig file {path} does not exist "
                                  f"(mesh.clusters[].kubeconfig.file)")
        return path.read_text(), os.path.dirname(path)
    value = os.environ.get(source.env)
    if not value:
        raise pulumi.RunError(f"cluster {cluster}: environment variable {source.env} is not set; export the "
                              f"kubeconfig text or its path in it")
    if "apiVersion" in value or "\n" in value:
        return value, None
    path = expand_path(value)
    return path.read_text(), os.path.dirname(path)


def _minified(text: str, base_dir: str | None, source: KubeconfigSource, cluster: str) -> str:
    try:
        return minify_kubeconfig(text, source.context, base_dir=base_dir)
    except ValueError as e:
        where = source.file or f"${source.env}"
        raise pulumi.RunError(f"cluster {cluster}: kubeconfig {where}: {e} (mesh.clusters[].kubeconfig)") from None


def kubeconfig_inputs(spec: MeshSpec) -> dict[str, Any]:
    """Cluster name -> :func:`kubeconfig_input` of every cluster of ``spec``, with one
    ``StackReference`` per referenced stack."""
    refs: dict[str, pulumi.StackReference] = {}
    return {c.name: kubeconfig_input(c.kubeconfig, c.name, refs) for c in spec.clusters}


def cluster_providers(name: str, spec: MeshSpec, parent: pulumi.Resource | None = None,
                      kubeconfigs: Mapping[str, Any] | None = None) -> dict[str, k8s.Provider]:
    """One kubernetes Provider per cluster, named ``<name>-<cluster>-k8s``, kubeconfig kept secret.
    ``kubeconfigs``: cluster -> kubeconfig input already read (default: read with
    :func:`kubeconfig_inputs`)."""
    kubeconfigs = kubeconfigs if kubeconfigs is not None else kubeconfig_inputs(spec)
    providers = {}
    for c in spec.clusters:
        kc = kubeconfigs[c.name]
        providers[c.name] = k8s.Provider(
            f"{name}-{c.name}-k8s",
            kubeconfig=Output.secret(kc) if kc is not None else None,
            context=c.kubeconfig.context if c.kubeconfig and c.kubeconfig.context else None,
            cluster_identifier=c.name,
            opts=ResourceOptions(parent=parent))
    return providers


# ---------------------------------------------------------------------------------------------
# registering plain objects


def resource_name(prefix: str, obj: dict) -> str:
    """``<prefix>:[<namespace>/]<name>``: the Pulumi resource name of ``obj`` registered by the
    component named ``prefix``, the form pulumi-kubernetes gives the objects of a ``yaml/v2``
    ConfigFile or a ``helm/v4`` Chart (v4.32.0 ``provider/pkg/provider/yaml/v2/yaml.go`` lines
    344-352: ``<namespace>/<name>``, or ``<name>``, after ``<prefix>:``; ``helm/v4/chart.go``
    lines 178-181, 271-273: the prefix defaults to the component's name).

    Unique by construction, whatever else the component registers: a URN is
    ``urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>`` (pulumi/pulumi
    ``sdk/go/common/resource/urn/urn.go`` ``New``) and the type token names the group, version
    and kind (``kubernetes:core/v1:Service``, ``kubernetes:<group>/<version>:<Kind>``), so only
    objects of one kind compare; among them ``<prefix>:`` is one string per component (cluster
    names are DNS labels: no ``:``) and neither a namespace nor a name can hold ``/`` or ``:``
    (DNS-1123), so the part after the first ``:`` reads back as exactly one namespace and name.
    Hence adding an object never changes another's name (which the readable
    :func:`previous_resource_name` did not ensure: ``a-b`` + ``c`` and ``a`` + ``b-c``). The name
    starts with the component's name, so aliases of the component carry over to it
    (:func:`rename_aliases`)."""
    ns = obj["metadata"].get("namespace")
    return f"{prefix}:{ns}/{obj['metadata']['name']}" if ns else f"{prefix}:{obj['metadata']['name']}"


def previous_resource_name(prefix: str, obj: dict) -> str:
    """``<prefix>-<kind>[.<group>]-<namespace, or "cluster">-<name>``: the name releases before
    :func:`resource_name` registered ``obj`` under (readable, but not unique: namespace and name
    both may hold ``-``). Aliases lead from it to the current name (:func:`previous_names`)."""
    group = obj["apiVersion"].rpartition("/")[0]
    kind = obj["kind"].lower() + (f".{group}" if group else "")
    ns = obj["metadata"].get("namespace") or "cluster"
    return f"{prefix}-{kind}-{ns}-{obj['metadata']['name']}"


def object_identity(obj: dict) -> tuple[str, str, str, str]:
    """``(API group, kind, namespace, name)``: one object to the API server (versions of a group
    and kind are one resource)."""
    return (*names.object_scope(obj), obj["metadata"]["name"])


def registered_type(obj: dict) -> str:
    """The type token :func:`register_object` registers ``obj`` as, the same one the release of
    :func:`previous_resource_name` gave it: ``kubernetes:core/v1:NamespacePatch`` for every
    namespace, ``kubernetes:core/v1:ServicePatch`` for a patch of an application's Service,
    ``kubernetes:core/v1:<Kind>`` for the other core kinds, ``kubernetes:<apiVersion>:<Kind>Patch``
    for a patch of a custom resource (pulumi-kubernetes v4.34.2
    ``sdk/python/pulumi_kubernetes/apiextensions/CustomResourcePatch.py:154``) and
    ``kubernetes:<apiVersion>:<Kind>`` for the rest (``CustomResource.py:154``; the typed
    ``networking.k8s.io/v1`` NetworkPolicy has the same). Part of the URN: objects of two types
    never share one, whatever their names."""
    api, kind = obj["apiVersion"], obj["kind"]
    if api == "v1":
        if kind == "Namespace":
            return "kubernetes:core/v1:NamespacePatch"
        return f"kubernetes:core/v1:{kind}Patch" if kind == "Service" and is_patch(obj) else f"kubernetes:core/v1:{kind}"
    if not (api == "networking.k8s.io/v1" and kind == "NetworkPolicy") and is_patch(obj):
        return f"kubernetes:{api}:{kind}Patch"
    return f"kubernetes:{api}:{kind}"


def previous_claims(prefix: str, obj: dict) -> list[tuple[str, str]]:
    """The old ``(type token, name)`` pairs the aliases of :func:`previous_name_aliases` would
    claim for ``obj`` in its component (the parent part of the URN is the component's, the same
    for all its objects): its :func:`registered_type` and each type alias of
    :func:`type_aliases`, each with :func:`previous_resource_name`."""
    previous = previous_resource_name(prefix, obj)
    types = [registered_type(obj)] + [a.type_ for a in type_aliases(obj).aliases or ()
                                      if isinstance(a, pulumi.Alias) and isinstance(a.type_, str)]
    return [(t, previous) for t in dict.fromkeys(types)]


def previous_names(prefix: str, objects: Sequence[dict]) -> dict[tuple, str]:
    """:func:`object_identity` -> :func:`previous_resource_name` for each of ``objects`` (every
    object one component registers) none of whose old URNs (:func:`previous_claims`: the type it
    registers as, and each of its type aliases, with the previous name) another object claims too;
    the objects of a shared URN get none. Two objects of one previous name but different types
    (a ``Service`` and a ``ServicePatch``, ``a-b/c-v1`` and ``a/b-c-v1``) both keep their aliases:
    their old URNs differ, and the earlier release stored both.

    Why only those: a stack of an earlier release holds objects under their previous names, and
    ``pulumi up`` refused two registrations of one URN (pulumi/pulumi v3.259.0
    ``pkg/resource/deploy/step_generator.go`` ``generateURN``, ``GetDuplicateResourceURNError``),
    so it never stored a shared URN. Where two objects now claim one, the stored object may be
    either, and an alias on both would make the engine refuse the update
    (``getOldResource``: a second claim of one old URN is ``GetDuplicateResourceAliasError``) or,
    on the wrong one, carry the state over to another object. Without an alias the stored one
    gets a new URN, which the engine creates before deleting the old (create-before-delete), and
    pulumi-kubernetes >= 4.29 creates it client-side, failing with AlreadyExists (v4.32.0
    ``provider/pkg/await/await.go`` ``Creation`` lines 241-253): upgrade first, then add such a
    neighbour (README, "Upgrading to injective resource names")."""
    keyed = [(o, previous_claims(prefix, o)) for o in objects]
    count: dict[tuple, int] = {}
    for _, claims in keyed:
        for claim in claims:
            count[claim] = count.get(claim, 0) + 1
    return {object_identity(o): claims[0][1] for o, claims in keyed if all(count[c] == 1 for c in claims)}


def previous_name_aliases(previous: str | None, typed: ResourceOptions) -> ResourceOptions:
    """Aliases from the ``previous`` name (:func:`previous_names`; None: no alias) to the current
    one: ``Alias(name=previous)`` for the state the release before :func:`resource_name` wrote,
    and ``Alias(type_=T, name=previous)`` for each type alias ``T`` of ``typed`` (the per-kind
    aliases of :func:`patch_options` and :func:`api_version_aliases`: an application namespace
    earlier releases registered as ``Namespace``, a TLSRoute at another version). An alias spec's
    empty fields mean the resource's own (pulumi/pulumi v3.259.0 ``sdk/python/lib/pulumi/resource.py``
    ``Alias`` lines 108-178: "If not provided, the current name [type, parent] of the resource is
    used"; ``sdk/python/lib/pulumi/runtime/resource.py`` ``create_alias_spec`` sends them empty;
    ``pkg/resource/deploy/step_generator.go`` ``collapseAliasToUrn`` lines 545-585 fills them in),
    and the engine multiplies each alias by the parent's alias when the parent matched through
    one (``generateAliases`` lines 621-653, ``inheritedChildAlias`` lines 590-619: the parent's old
    name in place of the name's prefix), which is how the state of releases before
    :data:`STABLE_NAME` is found too. ``getOldResource`` (lines 655-713) tries the URN, then each
    alias in order, and refuses an old URN claimed twice or one that another resource registers
    (``GetDuplicateResourceAliasError``); no alias here can be a current URN (a current name holds
    ``:``, a previous one never does), and :func:`previous_names` gives no two objects one."""
    if previous is None:
        return ResourceOptions()
    types = [a.type_ for a in typed.aliases or () if isinstance(a, pulumi.Alias) and isinstance(a.type_, str)]
    return ResourceOptions(aliases=[pulumi.Alias(name=previous)] + [pulumi.Alias(type_=t, name=previous)
                                                                     for t in types])


NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"
PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce"
"""pulumi-kubernetes' per-resource switch that makes a patch resource's Server-Side Apply force
conflicts (``provider/pkg/metadata/annotations.go`` ``AnnotationPatchForce``, read by
``provider/pkg/await/await.go`` ``patchForce``). Set on every ``NamespacePatch``
(:func:`namespace_patch_metadata`), never on a ``ServicePatch``."""


def namespace_patch_metadata(meta: dict) -> dict:
    """``meta`` of a namespace the mesh labels (an application's) or creates (its own), with
    :data:`PATCH_FORCE_ANNOTATION` ``"true"``: the metadata of its ``NamespacePatch``.

    Why every namespace is a ``NamespacePatch`` (pulumi-kubernetes v4.32.0, the newest tag stored
    here; 4.34.2 is installed):

    - create is a Server-Side Apply upsert for patch resources (``await.go`` ``Creation`` lines
      190-240), never the client-side Create that fails with AlreadyExists on an existing object
      (lines 241-253, CHANGELOG 4.29.0 #2926), so ``pulumi up`` after ``pulumi destroy`` on the same
      cluster labels the namespaces the destroy left instead of failing;
    - delete relinquishes the patch's fields (``Deletion`` lines 958-962, ``ssa/actions.go``
      ``Relinquish``) and never deletes the namespace: a destroy cannot cascade into what other
      tools put in ``istio-system`` or into an application's workloads (what ``retainOnDelete``
      did for the mesh's own namespaces, minus the failure on the next create).

    Why it forces: earlier releases registered these namespaces as ``Namespace``; pulumi-kubernetes
    >= 4.29 creates those client-side under field manager ``pulumi-kubernetes`` (lines 241-253), and
    the first update hands that manager's fields to the Server-Side Apply manager only for
    non-patch resources (``fixCSAFieldManagers`` lines 855-871 return early for patches). After the
    alias turns such a ``Namespace`` into this patch, the old manager keeps every label it set, so
    the first change of one (``istio.io/rev`` in a revision canary, ``topology.istio.io/network``)
    would fail with a field conflict, and ``pulumi preview`` would not show it (``patchForce``
    forces on preview when that manager is present, lines 1043-1053). Forcing is right for these
    keys because they are the mesh's and the stack file decides them: enrolment and topology
    (``istio.io/rev``, ``istio-injection``, ``istio.io/dataplane-mode``, ``istio.io/use-waypoint``,
    ``istio.io/ingress-use-waypoint``, ``topology.istio.io/network``, ``linkerd.io/inject``,
    ``config.linkerd.io/default-inbound-policy``, ``openservicemesh.io/monitored-by``,
    ``openservicemesh.io/sidecar-injection``) and, on the mesh's own namespaces, its ownership
    labels; a conflicting value is the old release's manager or a stale hand edit, and leaving it
    would keep workloads on a revision or policy the stack no longer declares. Forcing never
    removes a label it does not set. ``ServicePatch``es do not force: patch resources are always
    applied, never created client-side, so they have no stale manager to override, and the
    export labels they set sit on the application's own Service, where a conflicting value is the
    application's decision to surface, not to overwrite (``meta.k8s_patch``)."""
    return {**meta, "annotations": {**(meta.get("annotations") or {}), PATCH_FORCE_ANNOTATION: "true"}}


def patch_options(kind: str) -> ResourceOptions:
    """Options of the patch of an object of ``kind``. A ``NamespacePatch`` carries an alias to the
    ``Namespace`` type earlier releases registered namespaces as (the application's, and the
    mesh's own with ``retainOnDelete``), under the same name: a stack upgraded from them then
    updates that state in place into the patch (the engine finds old state through a type alias:
    pulumi/pulumi v3.259.0 ``pkg/resource/deploy/step_generator.go`` ``getOldResource``/
    ``generateAliases``; the provider keeps the stored field manager,
    ``provider/pkg/provider/provider.go`` ``fieldManagerName``) instead of creating a patch and
    deleting the Namespace, which would delete the namespace and every workload in it."""
    if kind == "Namespace":
        return ResourceOptions(aliases=[pulumi.Alias(type_=NAMESPACE_TYPE)])
    return ResourceOptions()


def register_object(prefix: str, obj: dict, lookup: Lookup, opts: ResourceOptions,
                    resource: str | None = None, previous: str | None = None) -> pulumi.CustomResource:
    """Register one Kubernetes object dict (slots filled from ``lookup``) as a Pulumi resource:
    typed classes for the core kinds, ``apiextensions.CustomResource`` for the rest. Every
    namespace, the application's (``meta.is_patch``) and the mesh's own alike, registers as a
    forced ``NamespacePatch`` (:func:`namespace_patch_metadata`), patches of application Services
    as ``ServicePatch`` and patches of custom resources (OSM's MeshConfig) as forced
    ``apiextensions.CustomResourcePatch`` (Server-Side Apply patches: relinquish their fields on
    delete, never delete the object; pulumi-kubernetes ``provider/pkg/await/await.go`` ``Deletion``).

    ``resource``: its Pulumi name (default :func:`resource_name`); ``previous``: the name an
    earlier release registered it under, to alias (:func:`previous_names`; None: none)."""
    o = fill(obj, lookup)
    name, api, kind, meta = resource or resource_name(prefix, obj), o["apiVersion"], o["kind"], o["metadata"]
    typed = type_aliases(obj)
    opts = ResourceOptions.merge(opts, ResourceOptions.merge(typed, previous_name_aliases(previous, typed)))
    if api == "v1":
        if kind == "Namespace":
            return k8s.core.v1.NamespacePatch(name, metadata=namespace_patch_metadata(meta), opts=opts)
        if kind == "Secret":
            secret_opts = ResourceOptions.merge(opts, ResourceOptions(additional_secret_outputs=["stringData", "data"]))
            return k8s.core.v1.Secret(name, metadata=meta, type=o.get("type"), string_data=o.get("stringData"),
                                      data=o.get("data"), opts=secret_opts)
        if kind == "ConfigMap":
            return k8s.core.v1.ConfigMap(name, metadata=meta, data=o.get("data"), opts=opts)
        if kind == "Service" and is_patch(obj):
            # spec: only OSM's appProtocol entries, keyed by (port, protocol) (app_protocol.osm_service_patches)
            return k8s.core.v1.ServicePatch(name, metadata=meta, spec=o.get("spec"), opts=opts)
        if kind == "Service":
            return k8s.core.v1.Service(name, metadata=meta, spec=o.get("spec"), opts=opts)
        if kind == "ServiceAccount":
            return k8s.core.v1.ServiceAccount(name, metadata=meta, opts=opts)
        raise ValueError(f"no Pulumi mapping for core kind {kind}")
    extra = set(o) - {"apiVersion", "kind", "metadata", "spec"}
    if extra:
        raise ValueError(f"{kind} {meta['name']}: top-level fields {sorted(extra)} need a typed resource")
    if api == "networking.k8s.io/v1" and kind == "NetworkPolicy":  # built in, not a CRD (ambient egress)
        return k8s.networking.v1.NetworkPolicy(name, metadata=meta, spec=o.get("spec"), opts=opts)
    if is_patch(obj):
        # OSM's MeshConfig (osm.control_plane_objects_for), forced: osm-bootstrap created it with
        # enableRetryPolicy false (a non-omitempty bool, OSM v1.2.4 pkg/apis/config/v1alpha2/
        # mesh_config.go:233) and holds that field, so an unforced apply would conflict with it
        return k8s.apiextensions.CustomResourcePatch(name, api_version=api, kind=kind,
                                                     metadata=namespace_patch_metadata(meta), spec=o.get("spec"),
                                                     opts=opts)
    return k8s.apiextensions.CustomResource(name, api_version=api, kind=kind, metadata=meta, spec=o.get("spec"),
                                            opts=opts)


def type_aliases(obj: dict) -> ResourceOptions:
    """The type aliases of ``obj`` as :func:`register_object` registers it: a namespace's
    (:func:`patch_options`), a custom resource's other versions (:func:`api_version_aliases`),
    none for the rest."""
    api, kind = obj["apiVersion"], obj["kind"]
    if api == "v1":
        return patch_options(kind)
    if (api == "networking.k8s.io/v1" and kind == "NetworkPolicy") or is_patch(obj):
        return ResourceOptions()
    return api_version_aliases(api, kind)


REGISTERED_API_VERSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # Linkerd's egress TLSRoutes: v1 up to issue 11, v1alpha2 since (gateway_api.LINKERD_TLSROUTE);
    # Istio's and Envoy Gateway's at v1
    ("gateway.networking.k8s.io", "TLSRoute"): ("v1", "v1alpha2"),
}
"""(group, kind) -> every version any release of this project registered a custom resource of
that kind at. Add a version here whenever a kind's rendered apiVersion changes."""


def api_version_aliases(api_version: str, kind: str) -> ResourceOptions:
    """Options of a custom resource at ``api_version``/``kind``: a type alias for each other
    version of :data:`REGISTERED_API_VERSIONS` of its group and kind. A ``CustomResource``'s type
    is ``kubernetes:<apiVersion>:<kind>`` (pulumi-kubernetes v4.34.2
    ``sdk/python/pulumi_kubernetes/apiextensions/CustomResource.py:154``), so its URN changes with
    the version; without the alias the engine creates the new object beside the old state (an
    AlreadyExists error for the same live object) and then deletes it. With it the engine finds
    the old state (pulumi/pulumi ``pkg/resource/deploy/step_generator.go`` ``getOldResource``) and
    the provider updates the object in place, or deletes before replacing an object of the same
    name (pulumi-kubernetes ``provider/pkg/provider/provider.go`` ``Diff``,
    ``deleteBeforeReplace``)."""
    group, _, version = api_version.rpartition("/")
    others = [v for v in REGISTERED_API_VERSIONS.get((group, kind), ()) if v != version]
    return ResourceOptions(aliases=[pulumi.Alias(type_=f"kubernetes:{group}/{v}:{kind}") for v in others])


def needs_crds(obj: dict) -> bool:
    """True for objects whose kind is defined by a CRD that a release or manifest installs."""
    group = obj["apiVersion"].rpartition("/")[0]
    return any(group.endswith(s) for s in _CRD_GROUP_SUFFIXES)


def register_objects(prefix: str, objects: Sequence[dict], lookup: Lookup, *, parent: pulumi.Resource,
                     provider: k8s.Provider, namespaces: dict[str, pulumi.Resource],
                     crds: Sequence[pulumi.Resource] = (), after: Sequence[pulumi.Resource] = (),
                     previous: Mapping[tuple, str] | None = None) -> list[pulumi.Resource]:
    """Register ``objects`` in order, named :func:`resource_name`. Namespaces are registered first
    and recorded in ``namespaces``; a namespaced object depends on its namespace, a custom resource
    on ``crds``, every object on ``after``. ``previous``: :func:`previous_names` of every object
    the component registers, over all its calls (default: of ``objects``), whose names get aliases."""
    made = []
    objects = sorted(objects, key=lambda o: o["kind"] != "Namespace")
    previous = previous_names(prefix, objects) if previous is None else previous
    for obj in objects:
        deps: list[pulumi.Resource] = list(after)
        ns = obj["metadata"].get("namespace")
        if ns in namespaces:
            deps.append(namespaces[ns])
        if needs_crds(obj):
            deps += list(crds)
        r = register_object(prefix, obj, lookup, ResourceOptions(parent=parent, provider=provider, depends_on=deps),
                            previous=previous.get(object_identity(obj)))
        if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
            namespaces[obj["metadata"]["name"]] = r
        made.append(r)
    return made


# ---------------------------------------------------------------------------------------------
# components


class ControlPlane(pulumi.ComponentResource):
    """One cluster's control plane: namespaces, CA distribution, Gateway API CRDs, the Helm
    releases in install order (istiod after the ``cacerts`` it reads at start) and mesh-wide
    objects. Type ``mesh:index:ControlPlane``. Outputs: ``releases`` (name -> chart version)."""

    def __init__(self, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                 namespaces: dict[str, pulumi.Resource], opts: ResourceOptions | None = None):
        super().__init__("mesh:index:ControlPlane", name, None, opts)
        child = ResourceOptions(parent=self, provider=provider)
        previous = previous_names(name, [*state.concerns["namespaces"], *state.concerns["control-plane"],
                                         *state.concerns["ca"]])
        register_objects(name, state.concerns["namespaces"], lookup, parent=self, provider=provider,
                         namespaces=namespaces, previous=previous)
        core = [o for o in state.concerns["control-plane"] if not needs_crds(o)]
        crs = [o for o in state.concerns["control-plane"] if needs_crds(o)]
        before_istiod = register_objects(name, core + state.concerns["ca"], lookup, parent=self, provider=provider,
                                         namespaces=namespaces, previous=previous)
        self.manifests = [k8s.yaml.v2.ConfigFile(f"{name}-{m.name}", file=m.url, opts=child)
                          for m in state.remote_manifests]
        made: dict[str, pulumi.Resource] = {}
        for rel in (r for r in state.releases if r.concern == "control-plane"):
            deps = [made[d] for d in rel.depends_on] + before_istiod + self.manifests
            made[rel.name] = _release(name, rel, lookup, ResourceOptions(parent=self, provider=provider, depends_on=deps))
        self.releases = list(made.values())
        self.crds = self.releases + self.manifests
        self.namespaces = namespaces
        register_objects(name, crs, lookup, parent=self, provider=provider, namespaces=namespaces, crds=self.crds,
                         previous=previous)
        self.register_outputs({"releases": {r.name: r.version for r in state.releases if r.concern == "control-plane"}})


def _release(prefix: str, rel: HelmRelease, lookup: Lookup, opts: ResourceOptions) -> k8s.helm.v3.Release:
    # an OCI registry is not a chart repository: Helm takes the chart as oci://<registry>/<chart>
    oci = rel.repository.startswith("oci://")
    return k8s.helm.v3.Release(f"{prefix}-{rel.name}", k8s.helm.v3.ReleaseArgs(
        name=rel.name, namespace=rel.namespace, version=rel.version,
        chart=f"{rel.repository}/{rel.chart}" if oci else rel.chart,
        repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=rel.repository),
        values=fill(rel.values, lookup)), opts=opts)


class _ObjectsComponent(pulumi.ComponentResource):
    """A component that registers one concern's objects of one cluster, after the CRDs."""

    TYPE = ""
    CONCERN = ""

    def __init__(self, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                 namespaces: dict[str, pulumi.Resource], crds: Sequence[pulumi.Resource],
                 opts: ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        objects = state.concerns[self.CONCERN]
        self.resources = register_objects(name, objects, lookup, parent=self, provider=provider,
                                          namespaces=namespaces, crds=crds)
        self.register_outputs(self.outputs(objects))

    def outputs(self, objects: list[dict]) -> dict:
        return {"objects": len(objects)}


class SmiPolicies(_ObjectsComponent):
    """One cluster's traffic policy as the mesh expresses it (type ``mesh:index:SmiPolicies``):
    access policy, waypoints, GAMMA routes for splits and version Services."""

    TYPE, CONCERN = "mesh:index:SmiPolicies", "policy"

    def outputs(self, objects):
        return {"objects": len(objects),
                "authorization_policies": sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                                                 for o in objects if o["kind"] == "AuthorizationPolicy")}


class _ReleasingComponent(_ObjectsComponent):
    """An objects component that also installs its concern's Helm releases (``HelmRelease.concern``):
    its namespaces first, then the releases (after the control plane's releases and manifests),
    then the other objects, custom resources after the CRDs those releases install."""

    def __init__(self, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                 namespaces: dict[str, pulumi.Resource], crds: Sequence[pulumi.Resource],
                 opts: ResourceOptions | None = None):
        pulumi.ComponentResource.__init__(self, self.TYPE, name, None, opts)
        objects = state.concerns[self.CONCERN]
        own_ns = [o for o in objects if o["kind"] == "Namespace" and o["apiVersion"] == "v1"]
        rest = [o for o in objects if not (o["kind"] == "Namespace" and o["apiVersion"] == "v1")]
        self._previous = previous_names(name, objects)  # over both calls: aliases need names unique in the component
        made_ns = register_objects(name, own_ns, lookup, parent=self, provider=provider, namespaces=namespaces,
                                   previous=self._previous)
        self.releases: dict[str, pulumi.Resource] = {}
        for rel in (r for r in state.releases if r.concern == self.CONCERN):
            deps = list(crds) + made_ns + [self.releases[d] for d in rel.depends_on if d in self.releases]
            self.releases[rel.name] = _release(name, rel, lookup,
                                               ResourceOptions(parent=self, provider=provider, depends_on=deps))
        self.resources = made_ns + list(self.releases.values()) + self._register(
            name, rest, lookup, provider, namespaces, list(crds) + list(self.releases.values()))
        self.register_outputs(self.outputs(objects))

    def _register(self, name: str, objects: list[dict], lookup: Lookup, provider: k8s.Provider,
                  namespaces: dict[str, pulumi.Resource], crds: list[pulumi.Resource]) -> list[pulumi.Resource]:
        return register_objects(name, objects, lookup, parent=self, provider=provider, namespaces=namespaces, crds=crds,
                                previous=self._previous)


class EgressRules(_ReleasingComponent):
    """One cluster's egress allow-list (type ``mesh:index:EgressRules``): ServiceEntries, the Istio
    egress gateway release and its routing, policy and credential objects, Sidecars, waypoint
    policy and, ambient, the egress NetworkPolicy of each application namespace, Linkerd
    EgressNetworks or OSM Egress policies. Outputs: ``objects``,
    ``service_entries``, ``egress_gateway`` (the release, or None)."""

    TYPE, CONCERN = "mesh:index:EgressRules", "egress"

    def outputs(self, objects):
        return {"objects": len(objects),
                "service_entries": sorted(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceEntry"),
                "egress_gateway": next(iter(self.releases), None)}


class MeshTelemetry(_ReleasingComponent):
    """One cluster's telemetry (type ``mesh:index:MeshTelemetry``), from ``mesh.telemetry``: Istio
    ``Telemetry`` objects, ``PodMonitor``/``ServiceMonitor`` scrape objects and ``PrometheusRule``
    recording rules and alerts (custom resources of the cluster's Prometheus Operator, which the mesh
    never installs), the linkerd-viz release. Registered only when the spec has a ``telemetry``
    section. Outputs: ``objects``, ``recording_rules`` (the golden-signal series names) and
    ``releases``."""

    TYPE, CONCERN = "mesh:index:MeshTelemetry", "telemetry"

    def outputs(self, objects):
        return {"objects": len(objects), "recording_rules": recording_rule_names(objects),
                "releases": sorted(self.releases)}


def recording_rule_names(objects: list[dict]) -> list[str]:
    """The series the telemetry objects record (``record`` of every rule), sorted: from
    ``PrometheusRule``s (``spec.groups``) and from the rule-file ConfigMap of the annotations and
    bundled modes (``telemetry.golden_signals.RULE_FILE``, a Prometheus rule file)."""
    from .telemetry.golden_signals import RULE_FILE

    groups = []
    for o in objects:
        if o["kind"] == "PrometheusRule":
            groups += o.get("spec", {}).get("groups", [])
        elif o["kind"] == "ConfigMap" and RULE_FILE in (o.get("data") or {}):
            groups += (yaml.safe_load(o["data"][RULE_FILE]) or {}).get("groups", [])
    return sorted({r["record"] for g in groups for r in g.get("rules", []) if "record" in r})


class _CustomResourceWithStatus(k8s.apiextensions.CustomResource):
    """``apiextensions.CustomResource`` that also resolves the object's ``status`` as an output (as
    the typed resources do for theirs): the live status read back after create, update and every
    refresh. ``status`` is output-only; nothing is sent for it."""

    status: pulumi.Output[Any]

    def _internal_init(self, resource_name, api_version, kind, opts=None, metadata=None, spec=None, __props__=None):
        from pulumi_kubernetes import _utilities
        from pulumi_kubernetes.apiextensions.CustomResource import CustomResourceArgs

        opts = opts or ResourceOptions()
        if opts.version is None:
            opts.version = _utilities.get_version()
        props = CustomResourceArgs.__new__(CustomResourceArgs)
        props.__dict__.update({"api_version": api_version, "kind": kind, "metadata": metadata, "spec": spec,
                               "status": None})
        pulumi.CustomResource.__init__(self, f"kubernetes:{api_version}:{kind}", resource_name, props, opts)


def gateway_addresses(status: Any) -> list[str]:
    """``status.addresses[].value`` of a Gateway API Gateway (a dict or typed output), sorted; empty
    until the controller has published an address (e.g. a load balancer still pending)."""
    addresses = _field(status, "addresses") or []
    return sorted({str(_field(a, "value")) for a in addresses if _field(a, "value")})


class EnvoyGateway(_ReleasingComponent):
    """One cluster's north-south Envoy gateway (type ``mesh:index:EnvoyGateway``): Envoy Gateway or
    cert-manager releases, GatewayClass, EnvoyProxy, the Gateway, routes, ReferenceGrants,
    certificates. Outputs: ``objects``, ``gateways``, ``hosts`` and ``addresses`` (the Gateway's
    ``status.addresses``, refreshed on every update)."""

    TYPE, CONCERN = "mesh:index:EnvoyGateway", "gateway"

    def _register(self, name, objects, lookup, provider, namespaces, crds):
        is_gateway = lambda o: o["kind"] == "Gateway" and o["apiVersion"].startswith("gateway.networking.k8s.io/")  # noqa: E731
        made = register_objects(name, [o for o in objects if not is_gateway(o)], lookup, parent=self,
                                provider=provider, namespaces=namespaces, crds=crds, previous=self._previous)
        self.gateways = []
        for obj in (o for o in objects if is_gateway(o)):
            o = fill(obj, lookup)
            ns = o["metadata"].get("namespace")
            deps = ([namespaces[ns]] if ns in namespaces else []) + list(crds)
            typed = type_aliases(obj)
            previous = self._previous.get(object_identity(obj))
            aliases = ResourceOptions.merge(typed, previous_name_aliases(previous, typed))
            self.gateways.append(_CustomResourceWithStatus(
                resource_name(name, obj), api_version=o["apiVersion"], kind=o["kind"], metadata=o["metadata"],
                spec=o.get("spec"), opts=ResourceOptions.merge(
                    ResourceOptions(parent=self, provider=provider, depends_on=deps), aliases)))
        self.addresses = (Output.all(*[g.status for g in self.gateways]).apply(
            lambda statuses: sorted({a for s in statuses for a in gateway_addresses(s)}))
            if self.gateways else Output.from_input([]))
        return made + self.gateways

    def outputs(self, objects):
        gw = [o for o in objects if o["kind"] == "Gateway"]
        return {"objects": len(objects),
                "gateways": sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in gw),
                "hosts": sorted({lst["hostname"] for o in gw for lst in o["spec"]["listeners"] if "hostname" in lst}),
                "addresses": self.addresses}


class MultiClusterLinks(pulumi.ComponentResource):
    """One cluster's multi-cluster wiring (type ``mesh:index:MultiClusterLinks``), registered after
    every cluster's control plane, in two phases: :meth:`__init__` registers what needs no other
    cluster (the token Secrets other clusters read this one with, exported-Service label patches),
    :meth:`link` what reads other clusters (remote secrets, Linkerd credentials and Links).
    Outputs: ``peers`` (the clusters this one reads)."""

    def __init__(self, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                 namespaces: dict[str, pulumi.Resource], after: Sequence[pulumi.Resource],
                 opts: ResourceOptions | None = None):
        super().__init__("mesh:index:MultiClusterLinks", name, None, opts)
        objects = state.concerns["multicluster"]
        self._args = (name, lookup, provider, namespaces, after)
        self._later = [o for o in objects if any(True for _ in iter_slots(o))]
        local = [o for o in objects if not any(True for _ in iter_slots(o))]
        self._previous = previous_names(name, objects)
        self.local = register_objects(name, local, lookup, parent=self, provider=provider, namespaces=namespaces,
                                      after=after, previous=self._previous)
        self.peers = sorted({o["metadata"]["name"] for o in objects if o["kind"] == "Link"} |
                            {o["metadata"]["annotations"]["networking.istio.io/cluster"] for o in objects
                             if o["kind"] == "Secret" and "networking.istio.io/cluster" in (
                                 o["metadata"].get("annotations") or {})})

    def link(self) -> "MultiClusterLinks":
        """Register the objects that carry other clusters' deploy-time values; then the outputs."""
        name, lookup, provider, namespaces, after = self._args
        self.resources = self.local + register_objects(name, self._later, lookup, parent=self, provider=provider,
                                                       namespaces=namespaces, after=after, previous=self._previous)
        self.register_outputs({"peers": self.peers})
        return self


class ClusterOutputs:
    """Deploy-time values of source ``cluster`` slots (:mod:`mesh_components.multicluster`):

    - ``reader_kubeconfig/<reader>`` of cluster B: a kubeconfig for B (server and CA from B's
      kubeconfig input, CA falling back to the token Secret's ``ca.crt``) with the token of the
      Secret :func:`~mesh_components.multicluster.reader_token` names, read back from B once B's
      control plane and tokens exist (``Secret.get``);
    - ``gateway_address`` of B: the load-balancer address of B's ``linkerd-gateway`` Service.

    Each read is registered once, on B's provider; values stay Pulumi secrets.
    """

    def __init__(self, name: str, spec: MeshSpec, providers: Mapping[str, k8s.Provider],
                 kubeconfigs: Mapping[str, Any], parent: pulumi.Resource):
        self.name, self.spec, self.providers, self.kubeconfigs, self.parent = name, spec, providers, kubeconfigs, parent
        self.ready: dict[str, list[pulumi.Resource]] = {}
        self._cache: dict[Slot, Any] = {}

    def __call__(self, slot: Slot) -> Any:
        if slot not in self._cache:
            reader = mc.reader_of(slot)
            if reader is not None:
                self._cache[slot] = self._reader_kubeconfig(slot.cluster, reader)
            elif slot.source == "cluster" and slot.key == mc.GATEWAY_KEY:
                self._cache[slot] = self._gateway_address(slot.cluster)
            else:
                raise KeyError(f"no producer for deploy-time value {slot.placeholder()}")
        return self._cache[slot]

    def _after_ready(self, target: str, ident: str) -> Output:
        deps = self.ready.get(target, [])
        # a custom resource's id resolves once it exists (a component's urn at registration)
        return Output.all(*[d.id if isinstance(d, pulumi.CustomResource) else d.urn for d in deps]).apply(
            lambda _: ident)

    def _reader_kubeconfig(self, target: str, reader: str) -> Output:
        ns, secret = mc.reader_token(self.spec, reader)
        token = k8s.core.v1.Secret.get(f"{self.name}-{target}-token-for-{reader}", self._after_ready(target, f"{ns}/{secret}"),
                                       opts=ResourceOptions(parent=self.parent, provider=self.providers[target]))
        source = next(c.kubeconfig for c in self.spec.clusters if c.name == target)
        context = source.context if source else None

        def build(args):
            kubeconfig, data = args
            try:
                server, ca_data = mc.server_and_ca(kubeconfig, context)
                value, token_ca = mc.decode_token_secret(data)
            except ValueError as e:
                raise pulumi.RunError(f"cluster {target}: cannot build the kubeconfig {reader} reads it with: {e}")
            return mc.reader_kubeconfig(target, server, ca_data or token_ca, value)
        return Output.secret(Output.all(self.kubeconfigs[target], token.data).apply(build))

    def _gateway_address(self, target: str) -> Output:
        svc = k8s.core.v1.Service.get(f"{self.name}-{target}-linkerd-gateway",
                                      self._after_ready(target, f"{mc.LINKERD_MC_NAMESPACE}/{mc.LINKERD_GATEWAY}"),
                                      opts=ResourceOptions(parent=self.parent, provider=self.providers[target]))

        def address(status):
            ingress = _field(_field(status, "load_balancer", "loadBalancer"), "ingress") or []
            found = [a for i in ingress for a in [_field(i, "ip") or _field(i, "hostname")] if a]
            if not found:
                raise pulumi.RunError(f"cluster {target}: {mc.LINKERD_MC_NAMESPACE}/{mc.LINKERD_GATEWAY} has no "
                                      f"load-balancer address yet; run the update again, or give the cluster "
                                      f"eastWestGateway.addresses")
            return ",".join(found)
        return svc.status.apply(address)


def _field(obj: Any, *names: str) -> Any:
    """A field of a typed Pulumi output object or of a plain dict, by any of ``names``."""
    for n in names:
        value = getattr(obj, n, None) if not isinstance(obj, dict) or hasattr(type(obj), n) else None
        if value is None and isinstance(obj, dict):
            value = obj.get(n)
        if value is not None:
            return value
    return None


def mesh_lookup(*lookups: Lookup) -> Lookup:
    """A lookup that asks ``ca`` slots of the first and every other source of the second."""
    ca, clusters = lookups

    def lookup(slot: Slot):
        return ca(slot) if slot.source == "ca" else clusters(slot)
    return lookup


def config_secret_lookup(inner: Lookup, config: pulumi.Config | None = None) -> Lookup:
    """A lookup for slots of source ``config`` (egress credentials, ``egress.credential_objects``):
    the Pulumi secret config value named by the slot's key (``pulumi config set --secret <key>
    <value>``), kept a secret; every other slot goes to ``inner``. Raises ``pulumi.RunError`` naming
    the key and the command when the value is not set."""
    cache: dict[str, Any] = {}

    def lookup(slot: Slot):
        if slot.source != CONFIG_SOURCE:
            return inner(slot)
        if slot.key not in cache:
            value = (config or pulumi.Config()).get_secret(slot.key)
            if value is None:
                raise pulumi.RunError(f"secret config {slot.key!r} is not set (an egress credential names it): run "
                                      f"`pulumi config set --secret {slot.key} <header value>`")
            cache[slot.key] = Output.secret(value)
        return cache[slot.key]
    return lookup


def ca_lookup(authority) -> Lookup:
    """Slot -> Output of the ``MeshCertificateAuthority``: mesh-wide bundle, per-cluster material."""
    def lookup(slot: Slot):
        if slot.source != "ca":
            raise KeyError(f"no producer for deploy-time value {slot.placeholder()}")
        if slot.cluster is None:
            return getattr(authority, slot.key)
        value = authority.intermediates.apply(lambda i, c=slot.cluster, k=slot.key: i[c][k])
        return Output.secret(value) if slot.secret else Output.unsecret(value)
    return lookup


STABLE_NAME = "mesh"
"""The name the program (``__main__.py``) gives its one ``ServiceMesh``, whatever ``mesh.name``
is: URNs hold resource names, so a name built from ``mesh.name`` made a rename of the mesh replace
every resource, the CA (its root of trust) included. See :func:`rename_aliases`."""


def rename_aliases(mesh_name: str) -> list[pulumi.Alias]:
    """Aliases for the program's ``ServiceMesh`` from the name releases before :data:`STABLE_NAME`
    gave it: ``mesh.name``. One alias on the component is enough: the engine derives every
    descendant's old URN from it, replacing the component's new name by its old one where a child's
    name starts with its parent's name (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``
    ``generateAliases``/``inheritedChildAlias``), as every name below ``ServiceMesh`` does, down to
    the CRDs a ``yaml/v2.ConfigFile`` names ``<its name>:<object>`` (pulumi-kubernetes
    ``provider/pkg/provider/yaml/v2/configfile.go``, ``yaml.go``). A stack upgraded from those
    releases with its ``mesh.name`` unchanged so keeps every resource; later renames touch no URN.
    https://www.pulumi.com/docs/iac/concepts/options/aliases/"""
    return [pulumi.Alias(name=mesh_name)] if mesh_name != STABLE_NAME else []


class ServiceMesh(pulumi.ComponentResource):
    """The whole mesh across its clusters (type ``mesh:index:ServiceMesh``).

    ``name`` prefixes every descendant's name (``<name>-<cluster>-<component>``, objects
    ``<component name>:[<namespace>/]<name>``, :func:`resource_name`), so aliases given to the component in ``opts``
    carry over to all of them (:func:`rename_aliases`).

    ``mesh``: a validated :class:`LoadedMesh` (``spec.load_mesh`` / ``spec.load_stack``).
    ``providers``: cluster name -> kubernetes Provider (default: made from each cluster's
    ``kubeconfig``). ``ca_secrets``: secret inputs of the CA (``root_cert_pem``, ``root_key_pem``,
    ``intermediates``, ``vault_token``) as Pulumi secrets, for the byoRoot/intermediateOnly/vault modes.

    Outputs: ``root_fingerprint``, ``ca_stage``, ``clusters`` (per cluster: network, cloud,
    releases, object count, ``egress`` (``egress.egress_summary``: what enforces it and, per rule,
    hosts, ports, sources and path), ``ingress`` where a gateway runs (``gateway.ingress_summary``
    plus ``addresses``, the Gateway's published addresses), ``peers``) and ``allowed_egress`` (the
    intent table, ``egress.allowed_egress``).
    """

    def __init__(self, name: str, mesh: LoadedMesh, *, providers: Mapping[str, k8s.Provider] | None = None,
                 ca_secrets: Mapping[str, Any] | None = None, opts: ResourceOptions | None = None):
        super().__init__("mesh:index:ServiceMesh", name, None, opts)
        from .ca_provider import MeshCertificateAuthority

        spec = mesh.spec
        states = render_mesh(mesh)
        # read once, for the providers and the kubeconfigs other clusters read this one with
        kubeconfigs = kubeconfig_inputs(spec) if not providers or len(spec.clusters) > 1 else {}
        self.providers = dict(providers) if providers else cluster_providers(name, spec, parent=self,
                                                                             kubeconfigs=kubeconfigs)
        self.ca = MeshCertificateAuthority(f"{name}-ca", spec.ca_config(), **dict(ca_secrets or {}),
                                           opts=ResourceOptions(parent=self))
        cluster_outputs = ClusterOutputs(name, spec, self.providers, kubeconfigs, parent=self)
        lookup = config_secret_lookup(mesh_lookup(ca_lookup(self.ca), cluster_outputs))
        clusters: dict[str, Any] = {}
        self.components: dict[str, dict[str, pulumi.ComponentResource]] = {}
        for cluster in spec.clusters:
            c, st = cluster.name, states[cluster.name]
            provider = self.providers[c]
            namespaces: dict[str, pulumi.Resource] = {}
            opts_c = ResourceOptions(parent=self, providers=[provider])
            cp = ControlPlane(f"{name}-{c}-control-plane", st, lookup, provider, namespaces, opts=opts_c)
            parts = {"control_plane": cp}
            for key, cls in (("policies", SmiPolicies), ("egress", EgressRules), ("gateway", EnvoyGateway)):
                parts[key] = cls(f"{name}-{c}-{key}", st, lookup, provider, namespaces, cp.crds, opts=opts_c)
            if spec.telemetry is not None:  # a stack without telemetry keeps exactly the resources it had
                parts["telemetry"] = MeshTelemetry(f"{name}-{c}-telemetry", st, lookup, provider, namespaces,
                                                   cp.crds, opts=opts_c)
            self.components[c] = parts
            clusters[c] = {
                "network": spec.network_of(cluster),
                "cloud": cluster.cloud,
                "releases": {r.name: f"{r.chart}@{r.version}" for r in st.releases},
                "objects": len(st.objects),
                "egress": egress_summary(spec, c),
            }
            ingress = ingress_summary(spec, c)
            if ingress is not None:
                clusters[c]["ingress"] = {**ingress, "addresses": parts["gateway"].addresses}
        links = {}
        for cluster in spec.clusters:  # after every control plane: each reads the others
            c, st = cluster.name, states[cluster.name]
            if not st.concerns["multicluster"]:
                continue
            parts = self.components[c]
            links[c] = MultiClusterLinks(f"{name}-{c}-multicluster", st, lookup, self.providers[c],
                                         parts["control_plane"].namespaces, parts["control_plane"].crds,
                                         opts=ResourceOptions(parent=self, providers=[self.providers[c]]))
            cluster_outputs.ready[c] = parts["control_plane"].crds + links[c].local
        for c, component in links.items():
            self.components[c]["multicluster"] = component.link()
            clusters[c]["peers"] = component.peers
        self.root_fingerprint = self.ca.root_fingerprint
        self.ca_stage = self.ca.stage
        self.clusters = clusters
        self.allowed_egress = [list(row) for row in allowed_egress(spec)]
        self.register_outputs({"root_fingerprint": self.root_fingerprint, "ca_stage": self.ca_stage,
                               "clusters": clusters, "allowed_egress": self.allowed_egress})
