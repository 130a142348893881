"""The pure core's entry point: a validated mesh spec -> desired state per cluster, and the
offline render layout that ``python -m mesh_components render`` writes.

Desired state of one cluster (:class:`ClusterState`): Kubernetes objects (plain dicts) grouped by
concern in apply order, Helm releases (:class:`HelmRelease`) in install order, and remote
manifests (the Gateway API CRD release). Values known only at deploy time are
:class:`~mesh_components.slots.Slot` placeholders. No Pulumi import: the Pulumi components
(``mesh_components.components``) register exactly these objects.

Render layout (../shared/DESIGN.md): ``DIR/<cluster>/`` with one YAML file per object, named
``<namespace>--<kind>[.<group>]--<name>.yaml`` (``_cluster`` for cluster-scoped objects),
``helm-releases.yaml`` (a list of ``{name, namespace, repository, chart, version, values}``) and
``remote-manifests.yaml``. The same spec gives the same bytes. Objects the application owns (its
namespaces, Services exported to other clusters) are rendered as patches: partial objects holding
only the fields the mesh sets, annotated ``mesh-components.io/patch: "true"``
(``meta.k8s_patch``), to apply with ``kubectl apply --server-side``, never to create.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from . import (ca, egress, envoy_gateway, gamma, gateway, istio, istio_policy, linkerd, linkerd_policy, multicluster,
               osm, osm_policy, smi)
from . import app_protocol
from . import gateway_api as gateway_api_crds_
from .errors import SpecError, TranslationError
from .meta import PATCH_ANNOTATION, deep_merge, is_patch, k8s_object, k8s_patch, ownership_labels
from .slots import Slot, fill
from .spec import GATEWAY_API_VERSION, LoadedMesh, MeshSpec

CONCERNS = ("namespaces", "ca", "control-plane", "policy", "egress", "gateway", "multicluster")
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
    :func:`mesh_components.gateway_api.channel_for`), at the one version pinned for every stack."""
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
    :class:`~mesh_components.errors.TranslationError` for what ``to`` cannot express exactly."""
    from .spec import Backend

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
    return states


def check_deployment(spec: MeshSpec, model: gamma.TrafficModel, policy) -> None:
    """Raise :class:`TranslationError` for what the deployment around ``policy``'s objects would make
    inexact (its ``deployment_problems``, e.g. Linkerd's per-namespace ``deny`` default closing a
    service the spec leaves open: :func:`mesh_components.linkerd.default_policy_problems`)."""
    deployment_problems = getattr(policy, "deployment_problems", None)
    if deployment_problems is not None and (problems := deployment_problems(spec, model)):
        raise TranslationError(problems)


def policy_namespace_patches(spec: MeshSpec, model: gamma.TrafficModel, cluster: str, policy) -> list[dict]:
    """For :func:`translate`: a Namespace patch (``meta.k8s_patch``) holding only the policy
    annotations ``policy.namespace_annotations`` gives each application namespace of ``cluster``
    (Linkerd: ``config.linkerd.io/default-inbound-policy: deny`` on every namespace holding a
    destination with an access rule, :func:`mesh_components.linkerd.default_inbound_policy`), none
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


def render_mesh(mesh: LoadedMesh | MeshSpec) -> dict[str, ClusterState]:
    """Desired state of every cluster, keyed by cluster name in spec order.

    ``mesh`` is a :class:`LoadedMesh` (spec + SMI file documents) or a bare :class:`MeshSpec`.
    Raises :class:`SpecError` for a backend this release cannot render and
    :class:`~mesh_components.errors.TranslationError` for policy the mesh cannot express exactly.
    """
    spec = mesh.spec if isinstance(mesh, LoadedMesh) else mesh
    if spec.backend.type not in CONTROL_PLANES:
        raise SpecError([("mesh.backend.type", f"the {spec.backend.type} backend is not rendered by this release; "
                                               f"use {' or '.join(sorted(CONTROL_PLANES))}")])
    control, policy = CONTROL_PLANES[spec.backend.type], POLICIES[spec.backend.type]
    model = traffic_model(mesh)
    check_deployment(spec, model, policy)  # e.g. Linkerd's per-namespace default
    # both roots are trusted from addNewRoot until removeOldRoot (ca.CAState.multi_root)
    multi_root = spec.ca.root_rotation.stage in ("addNewRoot", "reissueIntermediates")
    states = {}
    for cluster in spec.clusters:
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
            **control.namespace_labels(spec, ns), **policy.namespace_labels(spec, model, ns)},
            (lambda ns: {**(annotations(spec, ns) if annotations else {}),
                         **(policy_annotations(spec, model, ns) if policy_annotations else {})}))
        st.concerns["policy"] = (version_services(spec, cluster.name) + app_service_patches(spec, cluster.name)
                                 + policy.policy_objects(spec, model, cluster.name))
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
        st.concerns["multicluster"] = multicluster.objects(spec, cluster.name, model)
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
    problems += app_protocol.linkerd_problems(spec, states)  # server-first ports opaque as deployed
    if problems:
        raise SpecError(problems)
    return states


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
    return (obj["kind"] == o.kind and meta["name"] == o.name and meta.get("namespace") == o.namespace
            and (o.api_version is None or obj["apiVersion"] == o.api_version))


_PATCH_STATUS_CHANGE = ("the override {1} the {2} annotation of {0}: whether an object is the application's "
                        "(patched) or the mesh's (owned) is not an override's to change, as the component "
                        "registers it by that annotation; add or replace single keys "
                        "(/metadata/annotations/<key>) instead of /metadata/annotations")
"""The problem of an override that would flip :func:`meta.is_patch`: it would turn a patch of an
application object into an owned one (a create that fails with AlreadyExists, then the patch's
relinquish), or the reverse."""


def apply_overrides(spec: MeshSpec, states: dict[str, ClusterState]) -> None:
    """Apply ``spec.overrides`` (RFC 6902 JSON Patch, via the ``jsonpatch`` library) to the
    generated objects in place; ``kind: HelmRelease`` patches a release's ``/values``. Raises
    :class:`SpecError` for an override that matches nothing, a patch that fails (including a
    failed ``test``), one that would rename the object, or one that adds or removes the
    ``mesh-components.io/patch`` annotation (:data:`_PATCH_STATUS_CHANGE`)."""
    import jsonpatch
    import jsonpointer

    problems = []
    for i, o in enumerate(spec.overrides):
        where = f"mesh.overrides[{i}]"
        hits = 0
        for c in o.clusters or spec.cluster_names():
            st = states.get(c)
            if st is None:
                problems.append((f"{where}.clusters", f"unknown cluster {c!r}"))
                continue
            try:
                if o.kind == "HelmRelease":
                    for j, rel in enumerate(st.releases):
                        if rel.name == o.name and (o.namespace is None or rel.namespace == o.namespace):
                            hits += 1
                            values = jsonpatch.apply_patch({"values": _unshared(rel.values)}, o.patch)["values"]
                            st.releases[j] = HelmRelease(**{**rel.__dict__, "values": values})
                    continue
                for objs in st.concerns.values():
                    for j, obj in enumerate(objs):
                        if _same_object(obj, o):
                            hits += 1
                            patched = jsonpatch.apply_patch(_unshared(obj), o.patch)
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
                problems.append((f"{where}.patch", f"{e} (on {o.kind} {o.namespace or '-'}/{o.name} in cluster {c})"))
        if not hits and not any(p[0].startswith(where) for p in problems):
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
    spec says: OSM's ``appProtocol`` (:func:`mesh_components.app_protocol.osm_service_patches`);
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


def dump_yaml(value: Any) -> str:
    """Deterministic YAML text of ``value`` (insertion order kept, no aliases; LibYAML's emitter
    when PyYAML has it, which writes the same bytes as the pure-Python one, only faster)."""
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096,
                     allow_unicode=True)


def object_filename(obj: dict) -> str:
    group = obj["apiVersion"].rpartition("/")[0]
    kind = obj["kind"].lower() + (f".{group}" if group else "")
    ns = obj["metadata"].get("namespace") or "_cluster"
    return f"{ns}--{kind}--{obj['metadata']['name']}.yaml"


def redact(obj: dict, include_secrets: bool) -> dict:
    """``obj`` with slots shown as placeholders and, unless ``include_secrets``, Secret values
    replaced by :data:`REDACTED`."""
    out = fill(obj, lambda s: s.placeholder())
    if obj.get("kind") == "Secret" and not include_secrets:
        for key in ("data", "stringData"):
            if isinstance(out.get(key), dict):
                out[key] = {k: v if isinstance(obj[key][k], Slot) else REDACTED for k, v in out[key].items()}
    return out


def write_tree(states: dict[str, ClusterState], out: Path, *, include_secrets: bool = False) -> list[Path]:
    """Write the render layout under ``out``; returns the files written, sorted.

    A folder that already holds files but no earlier render (no ``.mesh-render`` marker) is
    refused with :class:`SpecError`, so a wrong ``--out`` never deletes anything; an earlier
    render is replaced whole, so removed objects disappear from it.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise SpecError([("--out", f"{out} is not empty and holds no earlier render; give a new or empty folder")])
    if out.exists():
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by python -m mesh_components render; replaced on every render\n")
    written = []
    for name, st in states.items():
        folder = out / name
        folder.mkdir()
        seen: dict[str, dict] = {}
        for obj in st.objects:
            fname = object_filename(obj)
            if fname in seen:
                raise SpecError([(f"cluster {name}", f"two objects render to {fname}; rename one")])
            seen[fname] = obj
            (folder / fname).write_text(dump_yaml(redact(obj, include_secrets)))
        (folder / "helm-releases.yaml").write_text(
            dump_yaml([fill(r.to_dict(), lambda s: s.placeholder()) for r in st.releases]))
        (folder / "remote-manifests.yaml").write_text(dump_yaml([m.to_dict() for m in st.remote_manifests]))
        written += sorted(folder.iterdir())
    return sorted(written)
