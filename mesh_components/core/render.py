"""The pure core's entry point: a validated mesh spec -> desired state per cluster, and the
offline render layout that ``python -m mesh_components render`` writes.

Desired state of one cluster (:class:`ClusterState`): Kubernetes objects (plain dicts) grouped by
concern in apply order, Helm releases (:class:`HelmRelease`) in install order, and remote
manifests (the Gateway API CRD release). Values known only at deploy time are
:class:`~mesh_components.core.slots.Slot` placeholders. No Pulumi import: the Pulumi components
(``mesh_components.components``) register exactly these objects.

Render layout (../shared/DESIGN.md, :func:`write_tree`): ``DIR/<cluster>/`` holding only Kubernetes
objects, one YAML file each, named ``<namespace>--<kind>[.<group>]--<name>.yaml`` (``_cluster`` for
cluster-scoped objects), so ``kubectl apply -f DIR/<cluster>`` takes it as it is;
``DIR/<cluster>/deploy-time/`` with, the same way, the objects that still hold deploy-time
placeholders (CA and credential Secrets: filled in by ``pulumi up``; not for kubectl); and
``DIR/<cluster>/releases/`` with ``helm-releases.yaml`` (a list of ``{name, namespace, repository,
chart, version, values}``) and ``remote-manifests.yaml``, where kubectl does not read them. A render
is swapped in whole or not at all. :func:`cluster_stream` gives one cluster's objects as one
multi-document YAML (``render --out -``), those with placeholders left out. The same spec gives
the same bytes. Objects the application owns (its
namespaces, Services exported to other clusters) are rendered as patches: partial objects holding
only the fields the mesh sets, annotated ``mesh-components.io/patch: "true"``
(``meta.k8s_patch``), to apply with ``kubectl apply --server-side``, never to create.
"""
from __future__ import annotations

import errno
import gc
import os
import secrets
import shutil
import stat
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from . import ca, egress, envoy_gateway, external_workloads, gamma, gateway, multicluster, spire
from ..meshes import istio, istio_policy, linkerd, linkerd_policy, osm, osm_policy
from ..spec import names, smi
from . import app_protocol, telemetry, yaml_text
from . import gateway_api as gateway_api_crds_
from . import admission as admission_
from ..spec.errors import MeshError, SpecError, TranslationError
from .meta import (PATCH_ANNOTATION, container_shape_problems, deep_merge, is_patch, k8s_object, k8s_patch,
                   object_shape_problems, ownership_labels)
from .slots import PLACEHOLDER_PREFIX, Slot, fill
from ..spec import GATEWAY_API_VERSION, LoadedMesh, MeshSpec

CONCERNS = ("namespaces", "ca", "control-plane", "policy", "egress", "gateway", "telemetry", "multicluster")
"""Object groups in apply order; each maps to one Pulumi component."""
REDACTED = "<redacted: render with --include-secrets to show>"
MARKER = ".mesh-render"


@dataclass(frozen=True)
class HelmRelease:
    """A Helm release to install: chart ``chart`` at ``version`` from ``repository`` into
    ``namespace`` with ``values``; ``depends_on`` names releases of the same cluster that must be
    installed first."""

    name: str
    namespace: str
    repository: str
    chart: str
    version: str
    values: dict
    depends_on: tuple[str, ...] = ()
    concern: str = "control-plane"
    """The concern (:data:`CONCERNS`) whose Pulumi component installs it: ``control-plane``, or
    ``egress``/``gateway`` for the egress gateway, Envoy Gateway and cert-manager, which install
    after their namespaces and before their custom resources. Not part of the render output."""

    def to_dict(self) -> dict:
        return {"name": self.name, "namespace": self.namespace, "repository": self.repository,
                "chart": self.chart, "version": self.version, "values": self.values}


@dataclass(frozen=True)
class RemoteManifest:
    """A released manifest applied from its upstream URL (e.g. the Gateway API CRDs)."""

    name: str
    url: str
    version: str

    def to_dict(self) -> dict:
        return {"name": self.name, "url": self.url, "version": self.version}


@dataclass
class ClusterState:
    """Desired state of one cluster: ``concerns`` (concern -> objects, see :data:`CONCERNS`),
    ``releases`` and ``remote_manifests``."""

    cluster: str
    concerns: dict[str, list[dict]] = field(default_factory=lambda: {c: [] for c in CONCERNS})
    releases: list[HelmRelease] = field(default_factory=list)
    remote_manifests: list[RemoteManifest] = field(default_factory=list)
    gateway_api: gateway_api_crds_.Needs | None = None
    """What the cluster needs of its Gateway API CRDs (None where nothing uses them): the versions
    its objects and their controllers need, checked against live CRDs by ``diff``. Not rendered."""

    @property
    def objects(self) -> list[dict]:
        """Every object, in apply order."""
        return [o for c in CONCERNS for o in self.concerns[c]]


def gateway_api_crds(channel: str = "standard") -> RemoteManifest:
    """The Gateway API CRDs of ``channel`` (``standard``, or ``experimental`` for Linkerd:
    :func:`mesh_components.core.gateway_api.channel_for`), at the one version pinned for every stack."""
    return RemoteManifest("gateway-api-crds", gateway_api_crds_.manifest_url(channel), GATEWAY_API_VERSION)


CONTROL_PLANES = {"istio": istio, "linkerd": linkerd, "osm": osm}
"""Backend type -> control-plane module: ``control_plane(spec, cluster, *, ca_values) ->
(objects, releases)``, ``namespace_labels(spec, namespace)``, ``needs_gateway_api(spec)`` and,
optionally, ``namespace_annotations(spec, namespace)`` and ``release_values_for(policy_objects) ->
{release name: values}`` (values the rendered policy needs merged in: OSM's Retry feature flag)
and ``control_plane_objects_for(policy_objects) -> [objects]`` (OSM's MeshConfig patch of that flag)."""
POLICIES = {"istio": istio_policy, "linkerd": linkerd_policy, "osm": osm_policy}
"""Backend type -> policy module: ``policy_objects(spec, model, cluster)``,
``namespace_labels(spec, model, namespace)`` and, optionally, ``namespace_annotations(spec, model,
namespace)`` and ``deployment_problems(spec, model)`` (what the deployment around the policy objects,
not they, would make inexact). :func:`render_mesh` and :func:`translate` both apply the policy
annotations and check its deployment problems (:func:`check_deployment`)."""


def traffic_model(mesh: LoadedMesh | MeshSpec) -> gamma.TrafficModel:
    """The mesh-neutral traffic model of a spec and its SMI documents."""
    spec, documents = (mesh.spec, mesh.smi_documents) if isinstance(mesh, LoadedMesh) else (mesh, ())
    return gamma.build(spec, smi.policy_set(spec, documents), gateway.gateway_identity(spec))


def translate(mesh: LoadedMesh, to: str) -> dict[str, ClusterState]:
    """Only the traffic policy of ``mesh`` (SMI from the spec and its files), rendered for the mesh
    ``to`` (istio|linkerd|osm) in the context of the spec's services and trust domain, per cluster:
    version Services, access policy and splits in the ``policy`` concern. Raises
    :class:`~mesh_components.spec.errors.TranslationError` for what ``to`` cannot express exactly."""
    from ..spec import Backend

    spec = mesh.spec.model_copy(update={"backend": Backend(type=to), "ingress": None})
    model = traffic_model(LoadedMesh(spec, mesh.smi_documents))
    policy = POLICIES[to]
    check_deployment(spec, model, policy)
    states = {}
    for cluster in spec.clusters:
        st = ClusterState(cluster.name)
        st.concerns["namespaces"] = policy_namespace_patches(spec, model, cluster.name, policy)
        st.concerns["policy"] = version_services(spec, cluster.name) + app_service_patches(
            spec, cluster.name) + policy.policy_objects(spec, model, cluster.name)
        states[cluster.name] = st
    if problems := names.object_problems({c: st.concerns for c, st in states.items()}):
        raise SpecError(problems)  # one object per identity, names the API server accepts
    return states


def check_deployment(spec: MeshSpec, model: gamma.TrafficModel, policy) -> None:
    """Raise :class:`TranslationError` for what the deployment around ``policy``'s objects would make
    inexact (its ``deployment_problems``, e.g. Linkerd's per-namespace ``deny`` default closing a
    service the spec leaves open: :func:`mesh_components.meshes.linkerd.default_policy_problems`)."""
    deployment_problems = getattr(policy, "deployment_problems", None)
    if deployment_problems is not None and (problems := deployment_problems(spec, model)):
        raise TranslationError(problems)


def policy_namespace_patches(spec: MeshSpec, model: gamma.TrafficModel, cluster: str, policy) -> list[dict]:
    """For :func:`translate`: a Namespace patch (``meta.k8s_patch``) holding only the policy
    annotations ``policy.namespace_annotations`` gives each application namespace of ``cluster``
    (Linkerd: ``config.linkerd.io/default-inbound-policy: deny`` on every namespace holding a
    destination with an access rule, :func:`mesh_components.meshes.linkerd.default_inbound_policy`), none
    for namespaces that need none. Without it a Linkerd pod port no Server selects falls to the
    chart default ``all-unauthenticated`` (linkerd2 edge-26.8.3
    charts/linkerd-control-plane/values.yaml:251; policy-controller/k8s/index/src/inbound/index.rs
    :1753-1790 ``default_inbound_server``): wider than SMI's default deny. A patch carries no spec and no
    ownership labels, so ``kubectl apply`` (client-side or ``--server-side``) on the existing
    namespace adds the annotation and leaves everything else of the namespace as it is."""
    annotations = getattr(policy, "namespace_annotations", None)
    if annotations is None:
        return []
    return [p for p in app_namespaces(spec, cluster, lambda ns: {}, lambda ns: annotations(spec, model, ns))
            if set(p["metadata"]["annotations"]) - {PATCH_ANNOTATION}]


@contextmanager
def cyclic_gc_paused():
    """Pause Python's cyclic garbage collector inside the block, and restore its previous state
    (enabled or not) on the way out, also when the block raises. Usable as a decorator.

    Why: a render allocates millions of small dicts and lists that all stay alive until it ends,
    and every full collection walks all of them, so with the collector on, the cost per object
    grows with the mesh (benchmarks/README.md: 2x from 1,000 to 5,000 services). Nothing here
    relies on cycles being collected: memory is freed by reference counting, and the few cycles a
    render makes (caught exceptions' tracebacks) are collected after the block; the benchmark
    checks what is left. Reference counting is unaffected
    (https://docs.python.org/3/library/gc.html#gc.disable)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def render_mesh(mesh: LoadedMesh | MeshSpec, clusters: "list[str] | tuple[str, ...] | None" = None
                ) -> dict[str, ClusterState]:
    """Desired state of every cluster, keyed by cluster name in spec order.

    ``mesh`` is a :class:`LoadedMesh` (spec + SMI file documents) or a bare :class:`MeshSpec`.
    ``clusters``: render only these (spec order kept); default: every cluster, or, for a fleet
    cluster stack (``mesh.fleet``, :mod:`mesh_components.spec.fleet`), its own cluster only. A
    cluster's state does not depend on which others are rendered beside it (the traffic model is
    always the whole mesh's), so one cluster rendered alone is byte-identical to its part of the
    whole render; what only the whole mesh shows (an ``overrides`` entry matching nothing in
    clusters not rendered here) is left to the full render (``validate`` of the root stack, whose
    program renders the whole fleet).
    Raises :class:`SpecError` for a backend this release cannot render or an unknown cluster, and
    :class:`~mesh_components.spec.errors.TranslationError` for policy the mesh cannot express exactly.
    Runs with the cyclic garbage collector paused (:func:`cyclic_gc_paused`).
    """
    if clusters is None and isinstance(mesh, LoadedMesh) and mesh.fleet is not None and mesh.fleet.role == "cluster":
        clusters = [mesh.fleet.cluster]
    with cyclic_gc_paused():
        return _render_mesh(mesh, clusters)


def _render_mesh(mesh: LoadedMesh | MeshSpec, only: "list[str] | tuple[str, ...] | None" = None
                 ) -> dict[str, ClusterState]:
    spec = mesh.spec if isinstance(mesh, LoadedMesh) else mesh
    if only is not None and (unknown := [c for c in only if c not in spec.cluster_names()]):
        raise SpecError([("clusters", f"unknown cluster {c!r}; the mesh has {', '.join(spec.cluster_names())}")
                         for c in unknown])
    if spec.backend.type not in CONTROL_PLANES:
        raise SpecError([("mesh.backend.type", f"the {spec.backend.type} backend is not rendered by this release; "
                                               f"use {' or '.join(sorted(CONTROL_PLANES))}")])
    if problems := names.spec_name_problems(spec):  # derived names too long or shared, at their spec fields
        raise SpecError(problems)
    if problems := telemetry.problems(spec):  # mesh.telemetry settings the mesh cannot honour exactly
        raise SpecError(problems)
    control, policy = CONTROL_PLANES[spec.backend.type], POLICIES[spec.backend.type]
    model = traffic_model(mesh)
    check_deployment(spec, model, policy)  # e.g. Linkerd's per-namespace default
    # both roots are trusted from addNewRoot until removeOldRoot (ca.CAState.multi_root)
    multi_root = spec.ca.root_rotation.stage in ("addNewRoot", "reissueIntermediates")
    states = {}
    for cluster in (c for c in spec.clusters if only is None or c.name in only):
        st = ClusterState(cluster.name)
        material = ca.slot_material(cluster.name)
        ca_values = ca.ca_helm_values(spec.backend.type, material, multi_root=multi_root)
        objects, releases = control.control_plane(spec, cluster, ca_values=ca_values)
        st.concerns["control-plane"] = objects
        st.releases = [HelmRelease(**{**r, "depends_on": tuple(r["depends_on"])}) for r in releases]
        st.concerns["ca"] = ca.ca_objects(spec.backend.type, material, ownership_labels(spec.name))
        annotations = getattr(control, "namespace_annotations", None)
        policy_annotations = getattr(policy, "namespace_annotations", None)  # Linkerd's default inbound policy
        st.concerns["namespaces"] = app_namespaces(spec, cluster.name, lambda ns: {
            **control.namespace_labels(spec, ns), **policy.namespace_labels(spec, model, ns),
            **telemetry.namespace_labels(spec, ns)},
            (lambda ns: {**(annotations(spec, ns) if annotations else {}),
                         **(policy_annotations(spec, model, ns) if policy_annotations else {}),
                         **telemetry.namespace_annotations(spec, ns)}))
        st.concerns["policy"] = (version_services(spec, cluster.name) + app_service_patches(spec, cluster.name)
                                 + policy.policy_objects(spec, model, cluster.name)
                                 + external_workloads.policy_objects(spec, model, cluster.name))  # VMs
        needed = getattr(control, "release_values_for", None)  # OSM: the Retry feature flag
        if needed and (more := needed(st.concerns["policy"])):
            st.releases = [replace(r, values=deep_merge(r.values, more[r.name])) if r.name in more else r
                           for r in st.releases]
        needed_objects = getattr(control, "control_plane_objects_for", None)  # OSM: the MeshConfig patch
        if needed_objects:
            st.concerns["control-plane"] = st.concerns["control-plane"] + needed_objects(st.concerns["policy"])
        st.concerns["egress"] = egress.egress_objects(spec, cluster.name)
        st.concerns["gateway"] = gateway.ingress_objects(spec, cluster, model)  # its routes carry the splits
        st.releases += [HelmRelease(**{**r, "depends_on": tuple(r["depends_on"])})
                        for r in egress.egress_releases(spec, cluster.name) + gateway.ingress_releases(spec, cluster)]
        # mesh.telemetry: its own objects and releases, and values merged into the control plane's releases
        st.concerns["control-plane"], st.concerns[telemetry.CONCERN] = merge_telemetry_patches(
            st.concerns["control-plane"], telemetry.objects(spec, cluster, model))
        # mesh.guardrails: the guardrails' ValidatingAdmissionPolicies (and Gatekeeper templates), opt-in,
        # admitting as exceptions only those this cluster's policy and egress objects hold
        if (guard := admission_.AdmissionConfig.from_spec(spec.guardrails, ownership_labels(spec.name))) is not None:
            st.concerns["control-plane"] = st.concerns["control-plane"] + admission_.admission_objects(
                guard.with_exceptions(st.objects))
        if more := telemetry.release_values(spec, cluster):
            st.releases = [replace(r, values=deep_merge(r.values, more[r.name])) if r.name in more else r
                           for r in st.releases]
        st.releases += [HelmRelease(**{**r, "depends_on": tuple(r["depends_on"]), "concern": telemetry.CONCERN})
                        for r in telemetry.releases(spec, cluster, model)]
        st.concerns["multicluster"] = (multicluster.objects(spec, cluster.name, model)
                                       + external_workloads.istiod_exposure(spec, cluster.name))  # istiod for VMs
        spire.wire(spec, cluster, st, material)  # ca.mode: spire only (SPIRE releases, identities, Istio wiring)
        if control.needs_gateway_api(spec) or any(
                o["apiVersion"].startswith("gateway.networking.k8s.io/") for o in st.objects):
            # a cloud that manages the CRDs (clusters[].gatewayApiCrds: managed) gets none from us
            channel = gateway_api_crds_.channel_for(spec.backend.type)
            if cluster.gateway_api_crds == "install":
                st.remote_manifests.append(gateway_api_crds(channel))
            st.gateway_api = gateway_api_crds_.Needs(cluster.gateway_api_crds,
                                                     channel if cluster.gateway_api_crds == "install" else None,
                                                     spec.clusters.index(cluster), ())
        states[cluster.name] = st
    apply_overrides(spec, states)
    for st in states.values():  # after the overrides: the objects as deployed
        if st.gateway_api is not None:
            n = st.gateway_api
            readers = [spec.backend.type] + (["envoy-gateway"] if any(
                r.chart == envoy_gateway.CHART for r in st.releases) else [])
            st.gateway_api = gateway_api_crds_.needs(st.objects, readers, n.mode, n.channel, n.cluster_index)
    problems = multicluster.check_mesh_identity(spec, states)
    if spire.is_federated(spec):  # federated SPIRE: one trust domain per cluster, by design
        problems = [p for p in problems if " trust domain " not in p[1]]
    # one object per identity, names the API server accepts
    problems += names.object_problems({c: st.concerns for c, st in states.items()})
    problems += app_protocol.linkerd_problems(spec, states)  # server-first ports opaque as deployed
    if problems:
        raise SpecError(problems)
    return states


def merge_telemetry_patches(control_plane: list[dict], telemetry_objects: list[dict]) -> tuple[list[dict], list[dict]]:
    """``(control_plane, telemetry_objects)`` with each telemetry patch (``meta.is_patch``) of an object
    the control plane already patches merged into that patch (``meta.deep_merge``): one object, one
    patch (two would be refused, ``names.object_problems``), e.g. OSM's MeshConfig ``osm-mesh-config``,
    patched for the Retry feature flag (``osm.control_plane_objects_for``) and for tracing
    (``telemetry.osm.mesh_config_patch``). Without telemetry both lists come back unchanged."""
    def key(o: dict) -> tuple:
        return (o["apiVersion"].split("/")[0], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])

    patched = {key(o): i for i, o in enumerate(control_plane) if is_patch(o)}
    if not patched or not any(is_patch(o) and key(o) in patched for o in telemetry_objects):
        return control_plane, telemetry_objects
    control_plane, rest = list(control_plane), []
    for o in telemetry_objects:
        if is_patch(o) and key(o) in patched:
            i = patched[key(o)]
            control_plane[i] = deep_merge(control_plane[i], {k: v for k, v in o.items() if k != "metadata"})
        else:
            rest.append(o)
    return control_plane, rest


def _unshared(value):
    """``value`` with every dict and list copied afresh: renderers may put one dict in several
    places (e.g. the same ``from`` in two rules), and deepcopy would keep them one object, so a
    patch of ``/spec/rules/0`` would change ``rules[1]`` too."""
    if isinstance(value, dict):
        return {k: _unshared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshared(v) for v in value]
    return value


def _same_object(obj: dict, o) -> bool:
    meta = obj["metadata"]
    return (obj["kind"] == o.kind and meta.get("name") == o.name and meta.get("namespace") == o.namespace
            and (o.api_version is None or obj["apiVersion"] == o.api_version))


_PATCH_STATUS_CHANGE = ("the override {1} the {2} annotation of {0}: whether an object is the application's "
                        "(patched) or the mesh's (owned) is not an override's to change, as the component "
                        "registers it by that annotation; add or replace single keys "
                        "(/metadata/annotations/<key>) instead of /metadata/annotations")
"""The problem of an override that would flip :func:`meta.is_patch`: it would turn a patch of an
application object into an owned one (a create that fails with AlreadyExists, then the patch's
relinquish), or the reverse."""


_SHAPE_PROBLEMS_SHOWN = 5
"""Shape problems listed per patched object; the rest are counted (bounded output)."""


def _target(o, cluster: str) -> str:
    return f"{o.kind} {o.namespace or '-'}/{o.name} in cluster {cluster}"


def _shape_problems(path: str, shape: list[tuple[str, str]], target: str) -> list[tuple[str, str]]:
    """``meta.object_shape_problems`` pairs as ``(path, message)`` problems, at most
    :data:`_SHAPE_PROBLEMS_SHOWN` of them, the last one saying how many more there are."""
    shown = [(path, f"after the patch, {pointer or 'the object'} {message} (on {target})")
             for pointer, message in shape[:_SHAPE_PROBLEMS_SHOWN]]
    if len(shape) > _SHAPE_PROBLEMS_SHOWN:
        shown.append((path, f"and {len(shape) - _SHAPE_PROBLEMS_SHOWN} more places of that shape (on {target})"))
    return shown


def apply_overrides(spec: MeshSpec, states: dict[str, ClusterState]) -> None:
    """Apply ``spec.overrides`` (RFC 6902 JSON Patch, via the ``jsonpatch`` library) to the
    generated objects in place; ``kind: HelmRelease`` patches a release's ``/values``. Raises
    :class:`SpecError` for an override that matches nothing, a patch that fails (including a
    failed ``test``), one that leaves an object that is not the shape of one
    (:func:`meta.object_shape_problems`: metadata of the wrong type, a mapping or list made
    something else, an infinite number) or Helm values that are not (a mapping; anything beside
    ``/values`` patched), one that would rename the object, or one that adds or removes the
    ``mesh-components.io/patch`` annotation (:data:`_PATCH_STATUS_CHANGE`)."""
    import jsonpatch
    import jsonpointer

    problems = []
    for i, o in enumerate(spec.overrides):
        where = f"mesh.overrides[{i}]"
        hits = 0
        targets = o.clusters or spec.cluster_names()
        for c in targets:
            st = states.get(c)
            if st is None:
                if c not in spec.cluster_names():
                    problems.append((f"{where}.clusters", f"unknown cluster {c!r}"))
                continue  # a cluster not rendered here (a fleet cluster stack renders its own)
            try:
                if o.kind == "HelmRelease":
                    for j, rel in enumerate(st.releases):
                        if rel.name == o.name and (o.namespace is None or rel.namespace == o.namespace):
                            hits += 1
                            doc = jsonpatch.apply_patch({"values": _unshared(rel.values)}, o.patch)
                            if not isinstance(doc, dict) or set(doc) != {"values"}:
                                problems.append((f"{where}.patch", f"a HelmRelease override patches /values and "
                                                                   f"what is under it, nothing else "
                                                                   f"(on {_target(o, c)})"))
                                continue
                            if shape := container_shape_problems(rel.values, doc["values"], ("values",),
                                                                 free_form=True):
                                problems += _shape_problems(f"{where}.patch", shape, _target(o, c))
                                continue
                            st.releases[j] = HelmRelease(**{**rel.__dict__, "values": doc["values"]})
                    continue
                for objs in st.concerns.values():
                    for j, obj in enumerate(objs):
                        if _same_object(obj, o):
                            hits += 1
                            patched = jsonpatch.apply_patch(_unshared(obj), o.patch)
                            # once, here: whatever reads the objects later reads the shape renderers make
                            if shape := object_shape_problems(obj, patched):
                                problems += _shape_problems(f"{where}.patch", shape, _target(o, c))
                                continue
                            if not _same_object(patched, o) or patched["apiVersion"] != obj["apiVersion"]:
                                problems.append((f"{where}.patch", "an override may not change apiVersion, kind, "
                                                                   "metadata.name or metadata.namespace"))
                                continue
                            if is_patch(patched) != is_patch(obj):
                                problems.append((f"{where}.patch", _PATCH_STATUS_CHANGE.format(
                                    f"{o.kind} {o.namespace + '/' if o.namespace else ''}{o.name}",
                                    "takes away" if is_patch(obj) else "adds", PATCH_ANNOTATION)))
                                continue
                            objs[j] = patched
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
                problems.append((f"{where}.patch", f"{e} (on {_target(o, c)})"))
        if not hits and not any(p[0].startswith(where) for p in problems) and all(
                c in states or c not in spec.cluster_names() for c in targets):
            problems.append((where, f"no generated {o.kind} {o.namespace + '/' if o.namespace else ''}{o.name} in "
                                    f"clusters {', '.join(o.clusters or spec.cluster_names())}; "
                                    f"`python -m mesh_components render` shows what is generated"))
    if problems:
        raise SpecError(problems)


def app_namespaces(spec: MeshSpec, cluster: str, labels, annotations=None) -> list[dict]:
    """Patches (``meta.k8s_patch``) of the application namespaces present in ``cluster``: only
    the labels ``labels(namespace)`` and, when given, the annotations ``annotations(namespace)``
    (Linkerd and OSM enrol by annotation). The application owns its namespaces: the mesh never
    creates or deletes them, and carries no ownership labels on them."""
    names = [n.name for n in spec.namespaces] or sorted({s.namespace for s in spec.services})
    return [k8s_patch("v1", "Namespace", ns, None, labels=labels(ns),
                      annotations=annotations(ns) if annotations else None)
            for ns in names if cluster in spec.namespace_clusters(ns)]


def version_services(spec: MeshSpec, cluster: str) -> list[dict]:
    """A backend Service ``<service>-<version>`` per version of every service in ``cluster``:
    the targets of traffic splits (SMI TrafficSplit backends are Services)."""
    out = []
    for s in spec.services:
        for v in s.versions:
            # in every cluster of the service, not only where the version's pods run: Istio
            # multi-cluster needs the Service locally to resolve and route to remote endpoints
            if cluster not in spec.service_clusters(s):
                continue
            out.append(k8s_object("v1", "Service", f"{s.name}-{v.name}", s.namespace, spec.name,
                                  labels={"app": s.name, "version": v.name}, spec={
                "selector": {**s.pod_labels(), **v.pod_labels()},
                "ports": [{"name": p.port_name, "port": p.port, "targetPort": p.target_port or p.port,
                           "protocol": "TCP", "appProtocol": app_protocol.version_app_protocol(spec, p)}
                          for p in s.ports]}))
    return out


def app_service_patches(spec: MeshSpec, cluster: str) -> list[dict]:
    """Patches of the application's Services that make the mesh read each port's protocol as the
    spec says: OSM's ``appProtocol`` (:func:`mesh_components.core.app_protocol.osm_service_patches`);
    none for Istio and Linkerd, which are checked instead (``app_protocol`` module doc)."""
    return app_protocol.osm_service_patches(spec, cluster) if spec.backend.type == "osm" else []


# ---------------------------------------------------------------------------------------------
# writing the render layout


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    """Block style, multi-line strings as ``|`` literals, so diffs of rendered files read well."""


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


_Dumper.ignore_aliases = lambda self, data: True


def _reference_yaml(value: Any) -> str:
    return yaml.dump(fill(value, Slot.placeholder), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=4096, allow_unicode=True)


_BLOCK_YAML = yaml_text.BlockEmitter(_reference_yaml, _Dumper.yaml_implicit_resolvers, {Slot: Slot.placeholder})


def dump_yaml(value: Any) -> str:
    """Deterministic YAML text of ``value`` (insertion order kept, no aliases; LibYAML's emitter
    when PyYAML has it, which writes the same bytes as the pure-Python one, only faster).
    A :class:`~mesh_components.core.slots.Slot` is written as its placeholder. Plain data is written by
    :class:`~mesh_components.core.yaml_text.BlockEmitter`, which gives the same bytes as this PyYAML
    dump about ten times faster (benchmarks/README.md)."""
    return _BLOCK_YAML.dump(value)


def object_filename(obj: dict) -> str:
    """The file name of ``obj`` in its cluster folder: ``<namespace>--<kind>[.<group>]--<name>.yaml``,
    ``_cluster`` for a cluster-scoped object, cut and hashed when it would pass 255 bytes
    (:func:`mesh_components.spec.names.object_filename`). ``kubectl apply -f DIR`` reads a folder's files in
    lexical order (Go's ``filepath.Walk``), so the ``_cluster--`` files (Namespaces among them) come
    before the files of namespaces whose name starts with a letter (``_`` sorts before ``a``)."""
    return names.object_filename(obj)


def redact(obj: dict, include_secrets: bool) -> dict:
    """``obj`` with slots shown as placeholders and, unless ``include_secrets``, Secret values
    replaced by :data:`REDACTED`."""
    out = fill(obj, lambda s: s.placeholder())
    if obj.get("kind") == "Secret" and not include_secrets:
        for key in ("data", "stringData"):
            if isinstance(out.get(key), dict):
                out[key] = {k: v if isinstance(obj[key][k], Slot) else REDACTED for k, v in out[key].items()}
    return out


def holds_secret_values(obj: dict) -> bool:
    """True when ``obj`` is a Secret with a value :func:`redact` hides: one that is not a
    deploy-time slot (CA keys and cluster credentials are slots, never in render output)."""
    return obj.get("kind") == "Secret" and any(
        not isinstance(v, Slot) for key in ("data", "stringData") if isinstance(obj.get(key), dict)
        for v in obj[key].values())


class OutputError(MeshError):
    """The render cannot be written where ``--out`` says (a file, a folder of someone else's, a
    name the file system refuses, a full disk...): the output folder is left as it was."""


RELEASES_DIR = "releases"
"""The subfolder of each cluster folder for what is not a Kubernetes object: ``helm-releases.yaml``
and ``remote-manifests.yaml``, YAML lists that kubectl refuses (kubectl 1.32: ``unable to decode
".../helm-releases.yaml": json: cannot unmarshal array into Go value of type unstructured.detector``).
``kubectl apply -f DIR/<cluster>`` reads only the folder's own ``.json``, ``.yaml`` and ``.yml``
files, subfolders only with ``-R`` (kubernetes/cli-runtime
``pkg/resource/builder.go`` ``FileExtensions``, ``pkg/resource/visitor.go``
``ExpandPathsToFileVisitors``: ``filepath.SkipDir`` unless ``recursive``; ``ignoreFile`` by
extension). ``istioctl analyze DIR`` does not stop there: at istio 1.30.3 it always reads
subfolders (``istioctl/pkg/analyze/analyze.go:135-136,362-363``: ``-R`` removed, "hardcoded to
true"; ``gatherFilesInDirectory`` :432-446 skips no folder), so it reads these lists and fails
(``FileParseError``, exit 65, :330-331); give it the stream or ``DIR/<cluster>/*.yaml``.
``../shared/tools/check-helm-values`` finds ``helm-releases.yaml`` by name in any subfolder
(``rglob``); ``validate-manifests`` reads every ``.yaml`` under the folder and skips list items
without ``apiVersion`` and ``kind``."""

DEPLOY_TIME_DIR = "deploy-time"
"""The subfolder of each cluster folder for the objects that still hold a deploy-time placeholder
(a :class:`~mesh_components.core.slots.Slot`, whatever the object's kind) after rendering: the CA's
Secrets (``cacerts``, ``linkerd-identity-issuer``, ``osm-ca-bundle``), the trust-anchor ConfigMap,
other clusters' credentials (``istio-remote-secret-*``, ``cluster-credentials-*``), a Linkerd
``Link``'s gateway address. ``pulumi up`` fills them in; they are not for kubectl, and
``kubectl apply -f DIR/<cluster>`` does not read a subfolder (see :data:`RELEASES_DIR`), so
applying a render never replaces a live CA or credential with placeholder text: istiod keeps a CA
it already runs with (istio 1.30.3 ``pilot/pkg/bootstrap/istio_ca.go:356``) but refuses to start
with one it cannot use (:508 "failed to create an istiod CA"). ``render --out -`` leaves them out
too. ``validate-manifests`` reads them (it searches recursively): every placeholder stands where
the schema wants a string (``stringData``, ConfigMap ``data``, ``Link.spec.gatewayAddress``)."""

_PLAIN = frozenset({str, int, bool, float, type(None)})  # leaves, tested without a call


def _holds_slot(value: Any) -> bool:
    if isinstance(value, dict):
        values = value.values()
    elif isinstance(value, (list, tuple)):
        values = value
    else:
        return isinstance(value, Slot)
    return any(type(v) not in _PLAIN and _holds_slot(v) for v in values)


def holds_deploy_time_values(obj: dict, text: str | None = None) -> bool:
    """True when ``obj`` holds a deploy-time :class:`~mesh_components.core.slots.Slot` anywhere, so its
    file goes in :data:`DEPLOY_TIME_DIR` and the ``--out -`` stream leaves it out. ``text``, the
    object's rendered YAML when the caller has it, makes the usual answer cheap: a slot is written
    as its placeholder, so an object whose text lacks ``$(deploy-time:`` holds none (a substring
    search instead of a walk of every value, about half the cost of dumping the object)."""
    return (text is None or PLACEHOLDER_PREFIX in text) and _holds_slot(obj)


_LEGACY_MARKER = "written by python -m mesh_components render; replaced on every render"
_MARKER_HEAD = ("# written by python -m mesh_components render; the next render replaces this folder whole\n"
                "# and refuses to while it holds a file not listed here\n")
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # linux/fcntl.h, linux/fs.h


def _cluster_files(name: str, st: ClusterState) -> list[tuple[str, dict]]:
    """``(file name, object)`` of every object of cluster ``name``, in apply order; two objects that
    would share a file are a :class:`SpecError`, found before anything is written."""
    # unique by construction (names.object_filenames); two objects of one identity are refused
    # earlier by render_mesh's names.object_problems
    return list(zip(names.object_filenames(st.objects), st.objects))


def select_cluster(clusters: list[str], name: str | None) -> str:
    """The one cluster ``--out -`` streams: ``name``, which must be one of ``clusters``, or the only
    cluster when ``name`` is None. One stream never mixes clusters, so piping it into ``kubectl
    --context X`` cannot put one cluster's objects into another; raises :class:`OutputError`
    (path ``--cluster``) listing the clusters otherwise."""
    if name is None:
        if len(clusters) == 1:
            return clusters[0]
        raise OutputError([("--cluster", f"--out - streams one cluster and the stack has {len(clusters)}: "
                                         f"give --cluster with one of {', '.join(clusters)}")])
    if name not in clusters:
        raise OutputError([("--cluster", f"unknown cluster {name!r}; the stack's clusters: {', '.join(clusters)}")])
    return name


def cluster_stream(name: str, st: ClusterState, *, include_secrets: bool = False) -> str:
    """Cluster ``name``'s Kubernetes objects as one multi-document YAML, in apply order, for
    ``kubectl apply --dry-run=server -f -``, ``kubectl diff -f -`` and ``istioctl analyze -``; a
    leading comment names the cluster. kubectl sends a stream's documents one at a time, in order,
    so Namespaces come first and CustomResourceDefinitions next (an object needs its namespace, a
    custom resource its CRD), then the rest in :data:`CONCERNS` order. Each document is the text of
    the object's file in a folder render; Secret values redacted unless ``include_secrets``. Helm
    releases and remote manifests are not Kubernetes objects and are not in it, nor are the objects
    that hold deploy-time placeholders (:data:`DEPLOY_TIME_DIR`: the stream is for kubectl, and
    applying one would replace a live CA or credential with placeholder text)."""
    return cluster_stream_and_left_out(name, st, include_secrets=include_secrets)[0]


def cluster_stream_and_left_out(name: str, st: ClusterState, *,
                                include_secrets: bool = False) -> tuple[str, list[dict]]:
    """:func:`cluster_stream`'s text and the objects it leaves out for holding deploy-time
    placeholders (in apply order), for the CLI to name them on stderr."""
    files = sorted(_cluster_files(name, st), key=lambda fo: _APPLY_FIRST.get(fo[1]["kind"], len(_APPLY_FIRST)))
    docs, left_out = [f"# cluster: {name}\n"], []
    for _, o in files:
        text = dump_yaml(redact(o, include_secrets))
        if holds_deploy_time_values(o, text):
            left_out.append(o)
        else:
            docs.append(f"---\n{text}")
    return "".join(docs), left_out


_APPLY_FIRST = {"Namespace": 0, "CustomResourceDefinition": 1}


def _write_text(path: Path | str, text: str, mode: int) -> None:
    """Create ``path`` (never an existing file) holding ``text`` in UTF-8, with permission ``mode``
    (less the umask)."""
    # os.open/os.write, not a file object: a third less CPU per file, for 100,000s of files
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0),
                 mode)
    try:
        data = memoryview(text.encode())
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def _foreign_files(target: Path) -> list[str]:
    """Files under the earlier render ``target`` that it did not write (paths relative to it,
    sorted): the ones its marker does not list; for a marker of a release before the list, the
    files beside the cluster folders (which that release kept). A symlink counts as a file."""
    text = (target / MARKER).read_text(encoding="utf-8", errors="replace")
    legacy = text.strip() == _LEGACY_MARKER
    listed = {line for line in text.splitlines() if line and not line.startswith("#")}
    found = []
    for root, dirs, files in os.walk(target):
        rel = Path(root).relative_to(target)
        for entry in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = (rel / entry).as_posix()
            if path != MARKER and not ((rel != Path(".")) if legacy else path in listed):
                found.append(path)
    return sorted(found)


def _file_ancestor(path: Path) -> Path | None:
    """The first of ``path``'s parents, from the root, that exists and is not a folder."""
    return next((p for p in reversed(path.parents) if os.path.lexists(p) and not os.path.isdir(p)), None)


def _check_target(out: Path) -> tuple[Path, bool]:
    """The folder a render into ``out`` replaces (symlinks resolved) and whether it holds an
    earlier render. Raises :class:`OutputError` for a file, a mount point, a folder holding files
    no render wrote, or a path the file system refuses; never changes anything."""
    target = Path(os.path.realpath(out))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target, False
    except NotADirectoryError:
        anc = _file_ancestor(target) or target.parent
        raise OutputError([("--out", f"{anc} is a file, not a folder, so {out} cannot be made there: "
                                     "give a path under a folder")]) from None
    except OSError as e:
        raise _os_problem(e, out, out) from None
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError([("--out", f"{out} is a file, not a folder: give a new folder, an empty one "
                                     "or an earlier render")])
    if os.path.ismount(target):
        raise OutputError([("--out", f"{out} is a mount point, which a render cannot replace in one step: "
                                     f"give a folder inside it, e.g. {Path(out) / 'render'}")])
    try:
        entries = os.listdir(target)
        if not entries:
            return target, False
        if MARKER not in entries:
            raise OutputError([("--out", f"{out} is not empty and holds no earlier render; "
                                         "give a new or empty folder")])
        foreign = _foreign_files(target)
    except OSError as e:  # unreadable folder or marker
        raise _os_problem(e, e.filename or out, out, "read") from None
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError([("--out", f"{out} holds an earlier render and files it did not write ({shown}), "
                                     "which a render would delete: move them away or give another folder")])
    return target, True


_OS_HINTS = {
    errno.ENAMETOOLONG: "a file or folder name is at most 255 bytes: give a shorter --out",
    errno.EACCES: "give a folder you may write to", errno.EPERM: "give a folder you may write to",
    errno.EROFS: "give a folder on a writable file system",
    errno.ENOSPC: "free some space and render again", errno.EDQUOT: "free some space and render again",
    errno.ENOTDIR: "a parent of it is a file: give a path under a folder",
    errno.ENOTEMPTY: "something wrote to it during the render: render again",
    errno.EEXIST: "something wrote to it during the render: render again",
}


def _os_problem(e: OSError, where: Path | str, out: Path | str, doing: str = "write") -> OutputError:
    """``e``, raised while writing (``doing``) ``where`` (a path as the user will find it), as an
    :class:`OutputError` that says ``out`` is left as it was."""
    hint = _OS_HINTS.get(e.errno, "give another --out")
    if e.errno == errno.ENAMETOOLONG and len(Path(where).name.encode()) > 255 and Path(where) != Path(out):
        hint = "its name is over the file system's 255 bytes: shorten the object's name in the stack"
    left = "" if Path(where) == Path(out) else f"; {_shown(out)} is left as it was"
    return OutputError([("--out", f"cannot {doing} {_shown(where)}: {e.strerror or e}: {hint}{left}")])


def _shown(path: Path | str) -> str:
    """``path`` for a message, each name over 64 characters cut to its first 32 and its length."""
    return "/".join(p if len(p) <= 64 else f"{p[:32]}...({len(p.encode())} bytes)" for p in str(path).split("/"))


def _new_name_beside(target: Path) -> Path:
    """A hidden name beside ``target`` that no file has, for a folder of the render's own (its
    stem cut to 100 bytes, so it stays under the 255-byte name limit)."""
    stem = target.name.encode()[:100].decode(errors="ignore")
    while True:
        candidate = target.with_name(f".{stem}.mesh-render-{secrets.token_hex(4)}")
        if not os.path.lexists(candidate):
            return candidate


def _exchange(a: Path, b: Path) -> bool:
    """Swap folders ``a`` and ``b`` in one atomic step with Linux ``renameat2(RENAME_EXCHANGE)``
    (man 2 rename: since Linux 3.15, glibc 2.28), so a reader of ``b`` always finds a whole render.
    False where the system or the file system lacks it (``ENOSYS``, ``EINVAL``)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, target: Path, earlier: bool) -> Path | None:
    """Put the folder ``new`` in ``target``'s place; returns where the earlier render now is (to
    delete), or None. On any failure ``target`` is as it was. A missing or empty ``target`` is
    replaced by one ``rename`` (rename(2): atomic, and an empty folder may be replaced)."""
    if not earlier:
        os.rename(new, target)
        return None
    if _exchange(new, target):
        return new
    old = _new_name_beside(target)  # two renames: the earlier render moves aside, and back on failure
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    return old


def write_tree(states: dict[str, ClusterState], out: Path, *, include_secrets: bool = False) -> list[Path]:
    """Write the render layout under ``out``; returns the files written (paths under ``out``),
    sorted, the marker left out.

    Layout: ``out/.mesh-render`` (the marker, listing every file written), and for each cluster
    ``out/<cluster>/`` holding only Kubernetes objects, one per file (:func:`object_filename`),
    for ``kubectl apply -f``; ``out/<cluster>/deploy-time/`` (:data:`DEPLOY_TIME_DIR`, only where
    there are some) holding, the same way, the objects that still hold deploy-time placeholders,
    which ``pulumi up`` fills in (not for kubectl); and ``out/<cluster>/releases/``
    (:data:`RELEASES_DIR`) holding ``helm-releases.yaml`` (a list of ``{name, namespace,
    repository, chart, version, values}``, in install order) and ``remote-manifests.yaml`` (a list
    of ``{name, url, version}``).

    Atomic: everything is written into a new hidden folder beside ``out`` and swapped in only when
    complete, so a render that fails at any point (:class:`SpecError`, a write error, Ctrl-C)
    leaves an earlier render byte-identical and a fresh ``out`` absent or empty, as it was
    (folders made for ``out``'s missing parents are removed again). It deletes nothing but its own
    earlier output: a folder that holds files but no marker, or an earlier render holding files
    its marker does not list, is refused. With ``include_secrets`` the files are mode 0600 and
    the folders 0700. Raises :class:`OutputError` (path ``--out``) when ``out`` cannot take the
    render, :class:`SpecError` when two objects would share a file.
    """
    out = Path(out)
    plan = [(name, st, _cluster_files(name, st)) for name, st in states.items()]
    target, earlier = _check_target(out)
    dir_mode, file_mode = (0o700, 0o600) if include_secrets else (0o777, 0o666)
    made: list[Path] = []  # out's missing parents, made here: removed again on failure
    new: Path | None = None
    where: Path = out
    try:
        missing = [p for p in target.parents if not os.path.isdir(p)]
        for parent in reversed(missing):
            where = parent
            os.mkdir(parent)
            made.append(parent)
        where = out
        new = _new_name_beside(target)
        os.mkdir(new, dir_mode)
        written: list[str] = []
        for name, st, files in plan:
            where = out / name
            os.mkdir(new / name, dir_mode)
            folder = f"{new / name}/"  # joined as text: Path joins were a third of a large write
            deploy_time_made = False
            for fname, obj in files:
                # redact's copy only where there are secret values: dump_yaml writes slots as placeholders
                text = dump_yaml(redact(obj, include_secrets) if obj.get("kind") == "Secret" else obj)
                if holds_deploy_time_values(obj, text):  # not for kubectl: out of the folder's top level
                    if not deploy_time_made:
                        where = out / name / DEPLOY_TIME_DIR
                        os.mkdir(new / name / DEPLOY_TIME_DIR, dir_mode)
                        deploy_time_made = True
                    fname = f"{DEPLOY_TIME_DIR}/{fname}"
                try:
                    _write_text(folder + fname, text, file_mode)
                except OSError:
                    where = out / name / fname
                    raise
                written.append(f"{name}/{fname}")
            where = out / name / RELEASES_DIR
            os.mkdir(new / name / RELEASES_DIR, dir_mode)
            for fname, items in (("helm-releases.yaml", [fill(r.to_dict(), lambda s: s.placeholder())
                                                         for r in st.releases]),
                                 ("remote-manifests.yaml", [m.to_dict() for m in st.remote_manifests])):
                where = out / name / RELEASES_DIR / fname
                _write_text(new / name / RELEASES_DIR / fname, dump_yaml(items), file_mode)
                written.append(f"{name}/{RELEASES_DIR}/{fname}")
        written.sort()
        where = out / MARKER
        _write_text(new / MARKER, _MARKER_HEAD + "".join(f"{f}\n" for f in written), file_mode)
        where = out
        old = _swap_in(new, target, earlier)
    except BaseException as e:
        if new is not None:
            shutil.rmtree(new, ignore_errors=True)
        for parent in reversed(made):
            try:
                os.rmdir(parent)
            except OSError:
                pass
        if isinstance(e, OSError):
            raise _os_problem(e, where, out) from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    # sorted as Paths sort (part by part), without comparing Path objects
    return [out / f for f in sorted(written, key=lambda f: f.split("/"))]
