"""Registering rendered objects and Helm releases as Pulumi resources: names, aliases,
patches of user-owned objects, CRDs before their custom resources."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from ..spec import names
from ..core.meta import is_patch
from ..core.render import HelmRelease
from ..core.slots import Slot, fill


Lookup = Callable[[Slot], Any]


_CRD_GROUP_SUFFIXES = (".istio.io", "gateway.networking.k8s.io", ".linkerd.io", ".smi-spec.io", ".openservicemesh.io",
                       ".envoyproxy.io", "cert-manager.io")


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
``provider/pkg/await/await.go`` ``patchForce``). Set on every ``NamespacePatch`` ``ServiceMesh``
registers (:func:`namespace_patch_metadata`), never on a standalone component's, never on a
``ServicePatch``."""


def namespace_patch_metadata(meta: dict, force: bool = True) -> dict:
    """``meta`` of a namespace the mesh labels (an application's) or creates (its own), with
    :data:`PATCH_FORCE_ANNOTATION` ``"true"`` (``force``, as ``ServiceMesh`` registers them), or
    as given (``force=False``: a standalone component's): the metadata of its ``NamespacePatch``.

    Why a standalone component's patches do not force: the reason to force below is state of
    earlier releases, which a component used alone on a mesh installed by other means has none
    of; and a forced Server-Side Apply takes the field from its other manager (the user's
    ``kubectl``, the tool that installed the mesh), after which ``pulumi destroy`` relinquishes it
    ownerless and the API server deletes it (pulumi-kubernetes v4.32.0 ``provider/pkg/await/await.go``
    ``Deletion`` lines 958-962, ``provider/pkg/ssa/actions.go`` ``Relinquish`` lines 27-57): a
    user's stricter ``config.linkerd.io/default-inbound-policy`` or own ``istio.io/use-waypoint``
    would be overwritten, then removed. Unforced, a conflicting value of another manager fails
    the apply with a field conflict naming both (https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts),
    which the user resolves; a key nobody else holds is applied as with force.

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
    if not force:
        return meta
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
                    resource: str | None = None, previous: str | None = None,
                    force_namespaces: bool = True) -> pulumi.CustomResource:
    """Register one Kubernetes object dict (slots filled from ``lookup``) as a Pulumi resource:
    typed classes for the core kinds, ``apiextensions.CustomResource`` for the rest. Every
    namespace, the application's (``meta.is_patch``) and the mesh's own alike, registers as a
    forced ``NamespacePatch`` (:func:`namespace_patch_metadata`), patches of application Services
    as ``ServicePatch`` and patches of custom resources (OSM's MeshConfig) as forced
    ``apiextensions.CustomResourcePatch`` (Server-Side Apply patches: relinquish their fields on
    delete, never delete the object; pulumi-kubernetes ``provider/pkg/await/await.go`` ``Deletion``).

    ``resource``: its Pulumi name (default :func:`resource_name`); ``previous``: the name an
    earlier release registered it under, to alias (:func:`previous_names`; None: none);
    ``force_namespaces``: whether a ``NamespacePatch`` forces (``ServiceMesh``: yes; a standalone
    component: no, :func:`namespace_patch_metadata`). The MeshConfig patch forces either way: it
    exists to change what osm-bootstrap set, and a standalone component registers it only when
    its args accept the mesh-wide change (``osm_mesh_wide_change``)."""
    o = fill(obj, lookup)
    name, api, kind, meta = resource or resource_name(prefix, obj), o["apiVersion"], o["kind"], o["metadata"]
    typed = type_aliases(obj)
    opts = ResourceOptions.merge(opts, ResourceOptions.merge(typed, previous_name_aliases(previous, typed)))
    if api == "v1":
        if kind == "Namespace":
            return k8s.core.v1.NamespacePatch(name, metadata=namespace_patch_metadata(meta, force_namespaces), opts=opts)
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


def depends_on_of(opts: Optional[ResourceOptions]) -> list[pulumi.Resource]:
    """The resources ``opts.depends_on`` names (one, a list, or none), for a component to hand to
    :func:`read_existing`: Pulumi does not make a component's children wait for the component's own
    ``depends_on``, so the reads of what the component patches are told explicitly."""
    deps = opts.depends_on if opts is not None else None
    if deps is None:
        return []
    if isinstance(deps, pulumi.Resource):
        return [deps]
    return [d for d in deps if isinstance(d, pulumi.Resource)] if isinstance(deps, (list, tuple)) else []


def read_existing(prefix: str, obj: dict, opts: ResourceOptions,
                  after: Sequence[pulumi.Resource] = ()) -> pulumi.CustomResource:
    """Read the live object the patch ``obj`` (a ``Namespace``, an application's ``Service`` or a
    custom resource such as OSM's MeshConfig) changes, as ``<prefix>-existing:[<namespace>/]<name>`` (``Namespace.get`` /
    ``CustomResource.get``), for a standalone component to make the patch depend on.

    Why: a patch resource's create is a Server-Side Apply upsert (pulumi-kubernetes v4.32.0
    ``provider/pkg/await/await.go`` ``Creation`` lines 190-207, "we currently always upsert"), so
    a patch of an object that does not exist CREATES it: a namespace misspelt in the args, or an
    ``osmNamespace`` that is not OSM's, would get a stray object the mesh never reads while the real
    one stays as it was. A read of a missing object fails the preview and the update instead:
    the provider answers an empty read (``provider/pkg/provider/provider.go`` ``Read``, v4.32.0
    line 1899ff, not-found -> ``deleteResponse``) and the engine fails the step with
    ``resource '<id>' does not exist`` (pulumi/pulumi ``pkg/resource/deploy/step.go`` ``ReadStep.Apply``,
    lines 1366-1368 at 1b5949891b).

    ``after``: resources the program creates that the object may be (its own ``Namespace``, passed
    as the component's ``opts.depends_on``, :func:`depends_on_of`). The read's id then resolves only
    once each of them has an id: unknown while one is still to be created in a preview, where the
    engine skips a read of an unknown id ("Read steps run during previews. The only time we can't
    run is if the ID we are given is unknown", ``ReadStep.Apply`` in the same file), and known
    after its creation in the update, where the read then finds it. Without ``after``, the object
    must exist before the preview."""
    meta = obj["metadata"]
    ns, name = meta.get("namespace"), meta["name"]
    resource = f"{prefix}-existing:{ns}/{name}" if ns else f"{prefix}-existing:{name}"
    ident = f"{ns}/{name}" if ns else name
    custom = [d for d in after if isinstance(d, pulumi.CustomResource)]
    rid: Any = ident if not custom else pulumi.Output.all(*[d.id for d in custom]).apply(lambda _: ident)
    if obj["apiVersion"] == "v1" and obj["kind"] == "Namespace":
        return k8s.core.v1.Namespace.get(resource, id=rid, opts=opts)
    if obj["apiVersion"] == "v1" and obj["kind"] == "Service":  # an application's Service (export labels)
        return k8s.core.v1.Service.get(resource, id=rid, opts=opts)
    return k8s.apiextensions.CustomResource.get(resource, api_version=obj["apiVersion"], kind=obj["kind"],
                                                id=rid, opts=opts)


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
                     previous: Mapping[tuple, str] | None = None,
                     force_namespaces: bool = True) -> list[pulumi.Resource]:
    """Register ``objects`` in order, named :func:`resource_name`. Namespaces are registered first
    and recorded in ``namespaces``; a namespaced object depends on its namespace, a custom resource
    on ``crds``, every object on ``after``. ``previous``: :func:`previous_names` of every object
    the component registers, over all its calls (default: of ``objects``), whose names get aliases;
    ``force_namespaces``: as :func:`register_object` (False for a standalone component)."""
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
                            previous=previous.get(object_identity(obj)), force_namespaces=force_namespaces)
        if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
            namespaces[obj["metadata"]["name"]] = r
        made.append(r)
    return made


def register_release(prefix: str, rel: HelmRelease, lookup: Lookup, opts: ResourceOptions) -> k8s.helm.v3.Release:
    # an OCI registry is not a chart repository: Helm takes the chart as oci://<registry>/<chart>
    oci = rel.repository.startswith("oci://")
    return k8s.helm.v3.Release(f"{prefix}-{rel.name}", k8s.helm.v3.ReleaseArgs(
        name=rel.name, namespace=rel.namespace, version=rel.version,
        chart=f"{rel.repository}/{rel.chart}" if oci else rel.chart,
        repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=rel.repository),
        values=fill(rel.values, lookup)), opts=opts)
