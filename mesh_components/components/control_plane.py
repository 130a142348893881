"""One cluster's control plane: ``IstioControlPlane``, ``LinkerdControlPlane``, ``OsmControlPlane``,
each usable alone on a cluster's kubernetes provider (given in ``opts``) or composed by
``ServiceMesh``; ``ControlPlane`` is their shared base (and the type releases before issue 14
registered every control plane under).

No ``from __future__ import annotations`` here: Pulumi's analyzer reads the Args and output
annotations as objects (pulumi 3.x ``pulumi/provider/experimental/analyzer.py``
``analyze_component``, ``inspect.get_annotations`` without ``eval_str``).

Used alone, a control plane builds from its args the minimal one-cluster stack-shaped ``mesh:``
mapping (``mesh.name``, ``mesh.trustDomain``, ``mesh.backend``, ``mesh.clusters[0]``) and has it
checked by the stack file's own loader and rendered by the pure core
(:mod:`mesh_components.components.standalone`), so it refuses exactly what the stack file would,
re-pathed to its fields (``IstioControlPlane cp: dataPlane: ...``), before anything is registered.
It then registers what ``ServiceMesh`` registers for that cluster's control plane: the
``namespaces``, ``control-plane`` and ``ca`` concerns, the remote manifests (Gateway API CRDs) and
the ``control-plane`` Helm releases, in the same order and with the same dependencies
(istiod after the ``cacerts`` it reads at start). The CA material the render leaves as deploy-time
slots (``ca.slot_material``: source ``ca``, keys ``trust_bundle_pem``, ``cert_pem``, ``key_pem``
(secret), ``chain_pem``; the keys :func:`~mesh_components.components.lookups.ca_lookup` answers
from a ``MeshCertificateAuthority``) is filled from the args (:func:`material_lookup`), so a
``MeshCertificateAuthority`` used alone, or any other CA, feeds it:

- Istio "Plug in CA Certificates" (https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/):
  Secret ``cacerts`` in ``istio-system`` with ``ca-cert.pem``, ``ca-key.pem``, ``root-cert.pem``,
  ``cert-chain.pem`` (``ca.ca_objects``);
- Linkerd with an external issuer (https://linkerd.io/2/tasks/automatically-rotating-control-plane-tls-credentials/):
  ConfigMap ``linkerd-identity-trust-roots`` and Secret ``linkerd-identity-issuer``
  (``kubernetes.io/tls``), chart values ``identityTrustAnchorsPEM``, ``identity.externalCA: true``,
  ``identity.issuer.scheme: kubernetes.io/tls`` (``ca.ca_helm_values``);
- OSM v1.2.4: Secret ``osm-ca-bundle`` (``ca.crt``, ``private.key``) read by the ``tresor``
  provider (``pkg/certificate/castorage/k8s``), chart value ``osm.caBundleSecretName``.

What the stack renders for every control plane, and so these too: Istio's mesh-wide STRICT
``PeerAuthentication`` and ``outboundTrafficPolicy: REGISTRY_ONLY`` (only declared egress leaves
the mesh: add ``EgressRules``); OSM with permissive traffic policy and global egress off.
"""
import dataclasses
from typing import Any, Callable, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from ..core import ca as ca_core
from ..core import spire
from ..meshes import istio
from ..spec.errors import Problem
from ..core.render import CONTROL_PLANES as MESH_MODULES, ClusterState
from ..core.slots import Slot
from ..spec import MeshSpec
from . import standalone
from .args import (ArgsError, from_schema_keys, is_output, raise_if, schema_name, unknown_inputs, where,
                   whole_number)
from .base import _with_former_types
from .registration import Lookup, needs_crds, previous_names, register_objects, register_release


GATEKEEPER_CONSTRAINTS = "constraints.gatekeeper.sh/"
"""API group of Gatekeeper constraints (``mesh.guardrails.gatekeeper``, ``core.admission.gatekeeper_objects``):
their kind is a CRD Gatekeeper makes from the ConstraintTemplate, so none exists before the template
has been processed ("no matches for kind" otherwise)."""
TEMPLATE_CREATED = "jsonpath={.status.created}=true"
"""When a ConstraintTemplate's constraint CRD exists: Gatekeeper's constrainttemplatestatus
controller sets ``status.created`` once a pod has ingested the template and made its CRD
(open-policy-agent/gatekeeper pkg/controller/constrainttemplatestatus/constrainttemplatestatus_controller.go,
"the CRD is created if there are any byPod status entries", gatekeeper#1605). pulumi-kubernetes
awaits it through the ``pulumi.com/waitFor`` annotation (v4.32.0 provider/pkg/metadata/annotations.go:34)."""


def _is_template(obj: dict) -> bool:
    return obj["kind"] == "ConstraintTemplate" and obj["apiVersion"].startswith("templates.gatekeeper.sh/")


def _awaited_template(obj: dict) -> dict:
    """The Gatekeeper ConstraintTemplate ``obj`` as registered: with ``pulumi.com/waitFor``
    :data:`TEMPLATE_CREATED`, so its constraint (registered after it) finds its kind."""
    meta = obj["metadata"]
    return {**obj, "metadata": {**meta, "annotations": {**meta.get("annotations", {}),
                                                        "pulumi.com/waitFor": TEMPLATE_CREATED}}}


class ControlPlane(pulumi.ComponentResource):
    """One cluster's control plane: namespaces, CA distribution, Gateway API CRDs, the Helm
    releases in install order (istiod after the ``cacerts`` it reads at start) and mesh-wide
    objects. Constructed with the internal render state (type ``mesh:index:ControlPlane``, as
    every release before issue 14 registered it); the public, typed per-mesh components are
    :class:`IstioControlPlane`, :class:`LinkerdControlPlane` and :class:`OsmControlPlane`, which
    ``ServiceMesh`` composes (:meth:`_of_service_mesh`). Outputs: ``releases`` (name -> chart
    version).

    Python attributes (not outputs): ``crds`` (the releases and manifests that install the CRDs:
    what other components' custom resources depend on, e.g. ``depends_on=cp.crds``),
    ``manifests``, ``release_resources`` (the Helm Release resources), ``namespace_resources``
    (namespace name -> its resource). Composed by ``ServiceMesh``, ``releases`` and ``namespaces``
    are the Release resources and that dict, as before; used alone they are outputs."""

    TYPE = "mesh:index:ControlPlane"
    FORMER_TYPES = ()  # no annotation: Pulumi's analyzer reads annotated class attributes as outputs
    """Type tokens earlier releases registered this component under, given as type aliases in
    ``ServiceMesh`` (:func:`mesh_components.components.base._with_former_types`): the component
    and every child keep their state (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``
    ``generateAliases`` / ``inheritedChildAlias``)."""

    def __init__(self, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                 namespaces: dict, opts: Optional[ResourceOptions] = None):
        pulumi.ComponentResource.__init__(self, self.TYPE, name, None, opts)
        self._register(name, state, lookup, provider, namespaces)
        self.register_outputs(self._former_outputs(state))

    @classmethod
    def _of_service_mesh(cls, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                         namespaces: dict, opts: Optional[ResourceOptions] = None) -> "ControlPlane":
        """The component as ``ServiceMesh`` composes it: ``state``'s control plane on ``provider``
        with the stack's ``lookup``, exactly the children and outputs ``ControlPlane`` had, and a
        type alias per :attr:`FORMER_TYPES` (``mesh:index:ControlPlane``), so a stack of an earlier
        release updates the component and every child in place. ``namespaces`` is filled with the
        namespaces registered (name -> resource); ``self.namespaces`` is that dict here, as the
        other parts of ``ServiceMesh`` read it (an output of names when used alone)."""
        self = cls.__new__(cls)
        pulumi.ComponentResource.__init__(self, cls.TYPE, name, None, _with_former_types(cls, opts))
        self._register(name, state, lookup, provider, namespaces)
        self.register_outputs(self._former_outputs(state))
        return self

    @staticmethod
    def _former_outputs(state: ClusterState) -> dict:
        return {"releases": {r.name: r.version for r in state.releases if r.concern == "control-plane"}}

    def _register(self, name: str, state: ClusterState, lookup: Lookup, provider: Optional[k8s.Provider],
                  namespaces: dict) -> None:
        """Register ``state``'s ``namespaces``, ``control-plane`` and ``ca`` concerns, remote
        manifests and ``control-plane`` releases as children (on ``provider``, or, None, on the
        provider the component inherits from its ``opts``)."""
        child = ResourceOptions(parent=self, provider=provider)
        previous = previous_names(name, [*state.concerns["namespaces"], *state.concerns["control-plane"],
                                         *state.concerns["ca"]])
        register_objects(name, state.concerns["namespaces"], lookup, parent=self, provider=provider,
                         namespaces=namespaces, previous=previous)
        # SPIRE's identities (ClusterSPIFFEID, ...) wait for its CRDs and controller, istiod for them
        identities = [o for o in state.concerns["control-plane"] if spire.is_spire_object(o)]
        # Gatekeeper constraints wait for their templates (gatekeeper_order)
        constraints = [o for o in state.concerns["control-plane"] if o["apiVersion"].startswith(GATEKEEPER_CONSTRAINTS)]
        templates = [_awaited_template(o) for o in state.concerns["control-plane"] if _is_template(o)]
        core = [o for o in state.concerns["control-plane"]
                if not needs_crds(o) and not spire.is_spire_object(o) and o not in constraints and not _is_template(o)]
        crs = [o for o in state.concerns["control-plane"] if needs_crds(o)]
        before_istiod = register_objects(name, core + state.concerns["ca"], lookup, parent=self, provider=provider,
                                         namespaces=namespaces, previous=previous)
        self.manifests = [k8s.yaml.v2.ConfigFile(f"{name}-{m.name}", file=m.url, opts=child)
                          for m in state.remote_manifests]
        made: dict = {}
        registered: list = []  # SPIRE's identities, once its release is made: every later release waits
        for rel in (r for r in state.releases if r.concern == "control-plane"):
            deps = [made[d] for d in rel.depends_on] + before_istiod + self.manifests + registered
            made[rel.name] = register_release(name, rel, lookup, ResourceOptions(parent=self, provider=provider,
                                                                                 depends_on=deps))
            if rel.name == spire.RELEASE and identities:
                registered = register_objects(name, identities, lookup, parent=self, provider=provider,
                                              namespaces=namespaces, previous=previous,
                                              after=[made[d] for d in (spire.CRDS_RELEASE, spire.RELEASE) if d in made])
        self.releases = list(made.values())
        self.release_resources = list(made.values())
        self.crds = self.release_resources + self.manifests
        self.namespaces = namespaces
        self.namespace_resources = namespaces
        register_objects(name, crs, lookup, parent=self, provider=provider, namespaces=namespaces, crds=self.crds,
                         previous=previous)
        if templates or constraints:
            made_templates = register_objects(name, templates, lookup, parent=self, provider=provider,
                                              namespaces=namespaces, previous=previous)
            register_objects(name, constraints, lookup, parent=self, provider=provider, namespaces=namespaces,
                             after=made_templates, previous=previous)

    def _construct_alone(self, name: str, plan: "ControlPlanePlan", opts: Optional[ResourceOptions]) -> None:
        """The standalone body: register ``plan`` under the provider of ``opts``, then set and
        register the outputs (``plan.outputs``)."""
        pulumi.ComponentResource.__init__(self, self.TYPE, name, None, opts)
        self.plan = plan
        self._register(name, plan.state, plan.lookup, None, {})
        for key, value in plan.outputs.items():  # ``releases``, ``namespaces`` become outputs here
            setattr(self, key, Output.from_input(value))
        self.register_outputs(plan.outputs)


# ---------------------------------------------------------------------------------------------
# args -> a one-cluster stack -> the render


@dataclasses.dataclass(frozen=True)
class ControlPlanePlan:
    """What a standalone control plane registers, computed before anything is: the one-cluster
    ``spec`` built from the args, its rendered ``state`` (``render_mesh``), the ``lookup`` filling
    the CA slots from the args, and the ``outputs`` (plain values, or the args' Outputs)."""

    component: str
    spec: MeshSpec
    state: ClusterState
    lookup: Lookup
    outputs: dict


@dataclasses.dataclass(frozen=True)
class Material:
    """One CA material arg: the slot key it fills (``ca.slot_material``), whether it is a private
    key (else certificates), and what to give (for messages)."""

    slot_key: str
    key: bool
    what: str


def material_lookup(component: str, name: str, values: Mapping[str, Any]) -> Lookup:
    """A lookup answering the render's ``ca`` slots from ``values`` (slot key -> the arg's
    input: ``trust_bundle_pem``, ``cert_pem``, ``key_pem``, ``chain_pem``): a secret slot as
    ``Output.secret`` whatever the input's secretness, the others as given. Any other slot raises
    ``KeyError`` naming it (a render of this component needs no other deploy-time value)."""
    def lookup(slot: Slot):
        if slot.source != "ca" or slot.key not in values:
            raise KeyError(f"{component} {name}: no producer for deploy-time value {slot.placeholder()}")
        value = Output.from_input(values[slot.key])
        return Output.secret(value) if slot.secret else value
    return lookup


def _material_problems(field: str, value: Any, m: Material, mesh: str) -> tuple[list[Problem], Any]:
    """The check of a plain material arg: PEM text holding a private key, or certificates whose
    first is a CA ``mesh`` can use (``ca.check_ca_certificate``: ``CA:TRUE``, keyCertSign, an
    ECDSA P-256 key for Linkerd, RSA for OSM, as ``ca.validate_ca_config`` requires of the mesh's
    own CA). ``(problems, the parsed key or first certificate, or None)``. An Output is checked by
    the cluster: it cannot be read at construction. Never echoes the value."""
    if value is None or is_output(value):
        return [], None
    try:
        if not isinstance(value, str):
            raise ca_core.CAError([("ca", f"expected PEM text, got {type(value).__name__}")])
        if m.key:
            return [], ca_core.load_private_key(value)
        first = ca_core.load_certificates(value)[0]
    except ca_core.CAError as e:
        return [(field, f"{e.problems[0][1]}; give {m.what}")], None
    return ca_core.check_ca_certificate(first, path=field, what=f"certificate of {field}", mesh=mesh), first


def _pair_problems(parsed: Mapping[str, Any], material: Mapping[str, Material]) -> list[Problem]:
    """The key arg must be the private key of the certificate its slot pairs with
    (``cert_pem``, else ``chain_pem``: the first certificate of each): a mismatch would only show
    as the mesh failing to sign (istiod, Linkerd's identity controller, OSM's tresor)."""
    key_field = next((f for f, m in material.items() if m.key), None)
    by_slot = {m.slot_key: f for f, m in material.items()}
    cert_field = by_slot.get("cert_pem") or by_slot.get("chain_pem")
    key, cert = parsed.get(key_field), parsed.get(cert_field)
    if key is None or cert is None:
        return []
    if ca_core.key_algorithm_of(key) != ca_core.key_algorithm_of(cert.public_key()) or \
            key.public_key().public_numbers() != cert.public_key().public_numbers():
        return [(key_field, f"is not the private key of the certificate in {schema_name(cert_field)}; give the "
                            f"key that certificate was issued for")]
    return []


def _plan(component: str, name: str, args: Any, typ: type, backend: str, material: Mapping[str, Material],
          required: Mapping[str, str], build: Callable[[dict], dict], fields: Mapping[str, str],
          checks: Callable[[dict], list] = lambda a: []) -> ControlPlanePlan:
    """Validate ``args`` (a mapping of ``typ``'s fields, Python or camelCase keys, whole floats
    taken as ints) and render them: unknown fields, missing ``required`` ones (field -> message),
    values not known at construction outside ``material``, plain ``material`` (PEM, a CA the mesh
    can use, the key matching its certificate); then
    ``checks(args)`` (the component's own, ``(field, message)``); then
    ``build(args)`` -> the stack-shaped ``mesh:`` mapping, checked by the stack file's loader and
    rendered (:func:`standalone.render`, problems re-pathed through ``fields``). Raises
    :class:`ArgsError` before anything is registered."""
    if not isinstance(args, Mapping):
        raise ArgsError([(where(component, name), f"args must be a mapping of {component}Args fields, got "
                                                   f"{type(args).__name__}")])
    known = typ.__annotations__
    problems: list[Problem] = list(unknown_inputs(args, known))
    a = {k: whole_number(v) for k, v in from_schema_keys(args, known).items() if k in known}
    parsed: dict = {}
    for key, value in a.items():
        if key not in material:
            problems += standalone.unknown_values(value, key)
        else:
            found, parsed[key] = _material_problems(key, value, material[key], backend)
            problems += found
    if not any(p[0] in material for p in problems):
        problems += _pair_problems(parsed, material)
    problems += [(key, message) for key, message in required.items() if a.get(key) is None]
    problems += checks(a)
    raise_if(component, name, problems)
    mesh = build(a)
    loaded, states = standalone.render(component, name, mesh, fields)
    spec = loaded.spec
    cluster = spec.clusters[0]
    state = states[cluster.name]
    lookup = material_lookup(component, name, {m.slot_key: a[k] for k, m in material.items()})
    module = MESH_MODULES[backend]
    own = [*state.concerns["namespaces"], *state.concerns["control-plane"]]
    annotations = getattr(module, "namespace_annotations", None)
    outputs = {
        "releases": {r.name: f"{r.chart}@{r.version}" for r in state.releases if r.concern == "control-plane"},
        "namespaces": sorted(o["metadata"]["name"] for o in own
                             if o["kind"] == "Namespace" and o["apiVersion"] == "v1"),
        "namespace_labels": dict(module.namespace_labels(spec, "")),
        "namespace_annotations": dict(annotations(spec, "") if annotations else {}),
        "cluster_name": cluster.name,
        "trust_domain": spec.trust_domain,
    }
    return ControlPlanePlan(component, spec, state, lookup, outputs)


def _cluster(a: dict, **more: Any) -> dict:
    """The one cluster of the stack: its name and what the args say of it; a cloud and region of
    its own (on one cluster they decide nothing of the control plane: the cloud's load-balancer
    settings apply to the east-west gateway, which only a mesh spanning networks has, ``istio.py``
    / ``linkerd.py`` ``control_plane``)."""
    c: dict = {"name": a.get("cluster_name", "default"), "cloud": "onprem", "region": "standalone"}
    if a.get("gateway_api_crds") is not None:
        c["gatewayApiCrds"] = a["gateway_api_crds"]
    c.update({k: v for k, v in more.items() if v is not None})
    return c


def _mesh(a: dict, name_field: str, backend: dict, cluster: dict) -> dict:
    mesh: dict = {"name": a.get(name_field, "mesh"), "backend": backend, "clusters": [cluster]}
    if a.get("trust_domain") is not None:
        mesh["trustDomain"] = a["trust_domain"]
    return mesh


_COMMON_FIELDS = {
    "mesh": "",
    "mesh.trustDomain": "trustDomain",
    "mesh.backend": "",
    "mesh.backend.type": "",
    "mesh.backend.version": "version",
    "mesh.clusters": "clusterName",
    "mesh.clusters[0]": "",
    "mesh.clusters[0].name": "clusterName",
    "mesh.clusters[0].gatewayApiCrds": "gatewayApiCrds",
}


# ---------------------------------------------------------------------------------------------
# Istio


class IstioRevisionArgs(TypedDict, total=False):
    """One istiod revision of a canary upgrade (https://istio.io/latest/docs/setup/upgrade/canary/),
    as ``mesh.backend.istio.revisions[]`` of the stack file."""

    name: Required[pulumi.Input[str]]
    """The revision's name (DNS label, ``istio.io/rev``), e.g. ``1-30``: istiod release ``istiod-<name>``."""
    version: pulumi.Input[str]
    """The istiod chart version this revision runs, e.g. ``1.30.3``. Default: ``version``."""


class IstioControlPlaneArgs(TypedDict, total=False):
    """Istio's control plane for one cluster (charts ``base``, ``istiod``; ambient: ``cni``,
    ``ztunnel``), the mesh identity it runs with and the CA material istiod signs workload
    certificates with."""

    cluster_name: Required[pulumi.Input[str]]
    """The cluster's name (DNS label): istiod's ``global.multiCluster.clusterName`` (and
    ztunnel's), the cluster ID other clusters of a multi-cluster mesh know it by."""
    ca_cert_pem: Required[pulumi.Input[str]]
    """The cluster's intermediate CA certificate (PEM): ``ca-cert.pem`` of Secret ``cacerts``
    (``MeshCertificateAuthority`` ``istio_cacerts[<cluster>]["ca-cert.pem"]``)."""
    ca_key_pem: Required[pulumi.Input[str]]
    """Its private key (PEM): ``ca-key.pem`` of ``cacerts``. Pass a Pulumi secret; registered as
    one whatever is passed."""
    cert_chain_pem: Required[pulumi.Input[str]]
    """The intermediate, then its issuers up to the root (PEM): ``cert-chain.pem``
    (``MeshCertificateAuthority`` ``intermediate_chains[<cluster>]``)."""
    root_cert_pem: Required[pulumi.Input[str]]
    """Every root workloads trust (PEM; one, or two during a root rotation): ``root-cert.pem``
    (``MeshCertificateAuthority`` ``trust_bundle``)."""
    multi_root: pulumi.Input[bool]
    """``true`` while ``root_cert_pem`` holds two roots (a root rotation between ``addNewRoot`` and
    ``removeOldRoot``): istiod gets ``ISTIO_MULTIROOT_MESH=true``. Must be a plain value (it
    decides the release values). Default: false."""
    version: pulumi.Input[str]
    """The Istio chart version, e.g. ``1.30.3``. Default: the pinned version (``spec.DEFAULT_VERSIONS``)."""
    revision: pulumi.Input[str]
    """One named istiod revision (DNS label, ``istio.io/rev``); release ``istiod``. Default: none
    (Istio's default revision). Give either this or ``revisions``."""
    revisions: pulumi.Input[Sequence[pulumi.Input[IstioRevisionArgs]]]
    """Canary upgrades: istiod revisions installed side by side, each its own release
    ``istiod-<name>``; with more than one, ``tag`` and ``tag_revision`` are required."""
    tag: pulumi.Input[str]
    """The revision tag namespaces are labelled with (``istio.io/rev: <tag>``), e.g. ``stable``;
    served by ``tag_revision`` (chart value ``revisionTags``). Needs ``revisions``."""
    tag_revision: pulumi.Input[str]
    """The revision of ``revisions`` that serves ``tag``. Move it to the new revision, restart the
    workloads, then remove the old revision."""
    data_plane: pulumi.Input[str]
    """``sidecar`` (default: Envoy in every pod) or ``ambient`` (ztunnel per node, waypoints;
    installs the Gateway API CRDs)."""
    mesh_id: pulumi.Input[str]
    """The mesh ID (DNS label): istiod's ``global.meshID``, and the ``mesh-components.io/mesh``
    label of every object. Default: ``mesh``."""
    network: pulumi.Input[str]
    """The cluster's network (DNS label): ``global.network`` and the ``topology.istio.io/network``
    label of ``istio-system``. Default: ``<mesh_id>-network``."""
    trust_domain: pulumi.Input[str]
    """The SPIFFE trust domain of workload identities (``meshConfig.trustDomain``). Default:
    ``cluster.local``."""
    gateway_api_crds: pulumi.Input[str]
    """Who installs the Gateway API CRDs where the control plane needs them (ambient): ``install``
    (default: Gateway API v1.6.1, standard channel) or ``managed`` (the cloud does: GKE, AKS)."""


ISTIO_MATERIAL = {
    "ca_cert_pem": Material("cert_pem", False, "the cluster's intermediate CA certificate (PEM)"),
    "ca_key_pem": Material("key_pem", True, "the intermediate's unencrypted private key (PEM)"),
    "cert_chain_pem": Material("chain_pem", False, "the intermediate and its issuers up to the root (PEM)"),
    "root_cert_pem": Material("trust_bundle_pem", False, "the trusted root certificate(s) (PEM)"),
}
"""Istio CA args -> the slot each fills (``ca.slot_material``, Secret ``cacerts``)."""

ISTIO_FIELDS = {
    **_COMMON_FIELDS,
    "mesh.name": "meshId",
    "mesh.backend.istio": "",
    "mesh.backend.istio.dataPlane": "dataPlane",
    "mesh.backend.istio.revision": "revision",
    "mesh.backend.istio.revisions": "revisions",
    "mesh.backend.istio.tag": "tag",
    "mesh.backend.istio.tagRevision": "tagRevision",
    "mesh.clusters[0].network": "network",
    "mesh.ca": "multiRoot",
}
"""Stack path -> IstioControlPlane field (:func:`standalone.repath`)."""


def _istio_mesh(a: dict) -> dict:
    options = {key: a[field] for field, key in (("data_plane", "dataPlane"), ("revision", "revision"),
                                                ("revisions", "revisions"), ("tag", "tag"),
                                                ("tag_revision", "tagRevision")) if a.get(field) is not None}
    backend: dict = {"type": "istio", **({"version": a["version"]} if a.get("version") is not None else {})}
    if options:
        backend["istio"] = options
    mesh = _mesh(a, "mesh_id", backend, _cluster(a, network=a.get("network")))
    if a.get("multi_root") is True:
        # the stack renders ISTIO_MULTIROOT_MESH while two roots are trusted: rotation stages
        # addNewRoot and reissueIntermediates (render._render_mesh, ca.ca_helm_values)
        mesh["ca"] = {"rootRotation": {"generation": 2, "stage": "addNewRoot"}}
    return mesh


def _istio_checks(a: dict) -> list:
    value = a.get("multi_root")
    if value is not None and not isinstance(value, bool) and not is_output(value):
        return [("multi_root", f"expected true or false, got {value!r}")]
    return []


def istio_plan(name: str, args: Any) -> ControlPlanePlan:
    """Validate and render :class:`IstioControlPlaneArgs`: the :class:`ControlPlanePlan`. Pure (no
    Pulumi calls). Raises :class:`ArgsError` (``"IstioControlPlane <name>: <camelField>: ..."``)."""
    plan = _plan(IstioControlPlane.__name__, name, args, IstioControlPlaneArgs, "istio", ISTIO_MATERIAL, {
        "cluster_name": "required; give the cluster's name (a DNS label), istiod's clusterName",
        **{k: f"required; give {m.what} (Secret cacerts in istio-system)" for k, m in ISTIO_MATERIAL.items()},
    }, _istio_mesh, ISTIO_FIELDS, _istio_checks)
    spec = plan.spec
    cluster = spec.clusters[0]
    outputs = {**plan.outputs, "mesh_id": spec.name, "network": spec.network_of(cluster),
               "data_plane": spec.backend.istio.data_plane,
               "revisions": {rev or "default": version for rev, version in istio.revisions(spec)},
               "multi_root": spec.ca.root_rotation.stage in ("addNewRoot", "reissueIntermediates")}
    return dataclasses.replace(plan, outputs=outputs)


class IstioControlPlane(ControlPlane):
    """Istio's control plane on one cluster, from the pinned charts: ``istio-system`` (labelled
    with the cluster's network), Secret ``cacerts`` from the CA material given, the ``base`` and
    ``istiod`` releases (one per revision; istiod after ``cacerts``), for ambient ``cni`` and
    ``ztunnel`` and the Gateway API CRDs, and the mesh-wide STRICT ``PeerAuthentication``; istiod's
    ``meshConfig`` holds ``outboundTrafficPolicy: REGISTRY_ONLY`` (add ``EgressRules`` for what may
    leave the mesh) and the trust domain. Registers on the kubernetes provider given in ``opts``.
    Upstream: ../shared/charts/istiod/INSTALL-FACTS.md, https://istio.io/latest/docs/setup/install/helm/ ."""

    TYPE = "mesh:index:IstioControlPlane"
    FORMER_TYPES = ("mesh:index:ControlPlane",)

    releases: pulumi.Output[dict[str, str]]
    """Helm release name -> ``<chart>@<version>``, e.g. ``{"istiod": "istiod@1.30.3"}``."""
    revisions: pulumi.Output[dict[str, str]]
    """istiod revision -> its chart version; ``default`` for Istio's default (unnamed) revision."""
    namespaces: pulumi.Output[list[str]]
    """The namespaces this control plane creates (``istio-system``)."""
    namespace_labels: pulumi.Output[dict[str, str]]
    """The labels that enrol an application namespace in this data plane: ``istio.io/rev: <tag or
    revision>``, ``istio-injection: enabled`` or (ambient) ``istio.io/dataplane-mode: ambient``."""
    namespace_annotations: pulumi.Output[dict[str, str]]
    """The annotations an application namespace needs too (none for Istio)."""
    cluster_name: pulumi.Output[str]
    """istiod's ``clusterName``."""
    mesh_id: pulumi.Output[str]
    """istiod's ``meshID``."""
    network: pulumi.Output[str]
    """The cluster's network (``global.network``)."""
    trust_domain: pulumi.Output[str]
    """The trust domain of workload identities."""
    data_plane: pulumi.Output[str]
    """``sidecar`` or ``ambient``."""
    multi_root: pulumi.Output[bool]
    """Whether istiod runs with ``ISTIO_MULTIROOT_MESH`` (two trusted roots)."""

    def __init__(self, name: str, args: IstioControlPlaneArgs, opts: Optional[pulumi.ResourceOptions] = None):
        self._construct_alone(name, istio_plan(name, args), opts)  # the plan raises before anything registers


# ---------------------------------------------------------------------------------------------
# Linkerd


class LinkerdControlPlaneArgs(TypedDict, total=False):
    """Linkerd's control plane for one cluster (charts ``linkerd-crds``, ``linkerd-control-plane``)
    with an external issuer: the trust anchors and the issuer certificate and key given here."""

    trust_anchors_pem: Required[pulumi.Input[str]]
    """The trust anchors (PEM; one root, or two during a rotation): chart value
    ``identityTrustAnchorsPEM`` and ConfigMap ``linkerd-identity-trust-roots``
    (``MeshCertificateAuthority`` ``trust_bundle``)."""
    issuer_cert_pem: Required[pulumi.Input[str]]
    """The identity issuer certificate (PEM, ECDSA P-256, a CA for
    ``identity.linkerd.<trust_domain>``): ``tls.crt`` of Secret ``linkerd-identity-issuer``
    (``MeshCertificateAuthority`` ``intermediate_certs[<cluster>]``)."""
    issuer_key_pem: Required[pulumi.Input[str]]
    """The issuer's private key (PEM): ``tls.key``. Pass a Pulumi secret; registered as one
    whatever is passed."""
    cluster_name: pulumi.Input[str]
    """The cluster's name (DNS label); names the cluster to other clusters of a multi-cluster mesh
    and in messages. Default: ``default``."""
    trust_domain: pulumi.Input[str]
    """The trust domain (``identityTrustDomain``). Default: ``cluster.local``."""
    mesh_name: pulumi.Input[str]
    """The ``mesh-components.io/mesh`` label of every object (DNS label). Default: ``mesh``."""
    version: pulumi.Input[str]
    """The Linkerd chart version, e.g. ``2026.8.3`` (edge channel). Default: the pinned version."""
    gateway_api_crds: pulumi.Input[str]
    """Who installs the Gateway API CRDs Linkerd's policy controller needs: ``install`` (default:
    v1.6.1, experimental channel: TLSRoute/TCPRoute at v1alpha2) or ``managed`` (the cloud does)."""


LINKERD_MATERIAL = {
    "trust_anchors_pem": Material("trust_bundle_pem", False, "the trust anchor certificate(s) (PEM)"),
    "issuer_cert_pem": Material("cert_pem", False, "the identity issuer certificate (PEM)"),
    "issuer_key_pem": Material("key_pem", True, "the issuer's unencrypted private key (PEM)"),
}
"""Linkerd CA args -> the slot each fills (``ca.slot_material``)."""

LINKERD_FIELDS = {**_COMMON_FIELDS, "mesh.name": "meshName", "mesh.backend.linkerd": ""}
"""Stack path -> LinkerdControlPlane field."""


def _linkerd_mesh(a: dict) -> dict:
    backend: dict = {"type": "linkerd", **({"version": a["version"]} if a.get("version") is not None else {})}
    return _mesh(a, "mesh_name", backend, _cluster(a))


def linkerd_plan(name: str, args: Any) -> ControlPlanePlan:
    """Validate and render :class:`LinkerdControlPlaneArgs` (see :func:`istio_plan`)."""
    plan = _plan(LinkerdControlPlane.__name__, name, args, LinkerdControlPlaneArgs, "linkerd", LINKERD_MATERIAL,
                 {k: f"required; give {m.what}" for k, m in LINKERD_MATERIAL.items()}, _linkerd_mesh, LINKERD_FIELDS)
    return dataclasses.replace(plan, outputs={**plan.outputs, "mesh_name": plan.spec.name})


class LinkerdControlPlane(ControlPlane):
    """Linkerd's control plane on one cluster, from the pinned charts: the ``linkerd`` namespace
    (labelled as the CLI labels it), the trust roots ConfigMap and issuer Secret from the material
    given (``identity.externalCA``, issuer scheme ``kubernetes.io/tls``), the Gateway API CRDs,
    then ``linkerd-crds`` and ``linkerd-control-plane``. Registers on the kubernetes provider given
    in ``opts``. Upstream: ../shared/charts/linkerd-control-plane/INSTALL-FACTS.md,
    https://linkerd.io/2/tasks/install-helm/ ."""

    TYPE = "mesh:index:LinkerdControlPlane"
    FORMER_TYPES = ("mesh:index:ControlPlane",)

    releases: pulumi.Output[dict[str, str]]
    """Helm release name -> ``<chart>@<version>``."""
    namespaces: pulumi.Output[list[str]]
    """The namespaces this control plane creates (``linkerd``)."""
    namespace_labels: pulumi.Output[dict[str, str]]
    """Labels an application namespace needs to join (none: Linkerd enrols by annotation)."""
    namespace_annotations: pulumi.Output[dict[str, str]]
    """The annotation that enrols an application namespace: ``linkerd.io/inject: enabled``."""
    cluster_name: pulumi.Output[str]
    """The cluster's name."""
    trust_domain: pulumi.Output[str]
    """``identityTrustDomain``."""
    mesh_name: pulumi.Output[str]
    """The ``mesh-components.io/mesh`` label value."""

    def __init__(self, name: str, args: LinkerdControlPlaneArgs, opts: Optional[pulumi.ResourceOptions] = None):
        self._construct_alone(name, linkerd_plan(name, args), opts)


# ---------------------------------------------------------------------------------------------
# OSM


class OsmControlPlaneArgs(TypedDict, total=False):
    """Open Service Mesh v1.2's control plane (chart ``osm``) with its ``tresor`` CA from the
    material given (Secret ``osm-ca-bundle``)."""

    cert_chain_pem: Required[pulumi.Input[str]]
    """The CA certificate OSM signs with, then its issuers up to the root (PEM, RSA): ``ca.crt``
    of ``osm-ca-bundle`` (``MeshCertificateAuthority`` ``osm_ca_bundle[<cluster>]["ca.crt"]``)."""
    ca_key_pem: Required[pulumi.Input[str]]
    """Its private key (PEM, RSA): ``private.key``. Pass a Pulumi secret; registered as one
    whatever is passed."""
    mesh_name: pulumi.Input[str]
    """OSM's mesh name (DNS label): ``osm.meshName``, the ``openservicemesh.io/monitored-by`` label
    value of enrolled namespaces. Default: ``mesh``."""
    trust_domain: pulumi.Input[str]
    """The trust domain (``osm.trustDomain``). Default: ``cluster.local``."""
    cluster_name: pulumi.Input[str]
    """The cluster's name (DNS label), in messages. Default: ``default``."""
    version: pulumi.Input[str]
    """The OSM chart version, e.g. ``1.2.4``. Default: the pinned version."""


OSM_MATERIAL = {
    "cert_chain_pem": Material("chain_pem", False, "the CA certificate and its issuers up to the root (PEM)"),
    "ca_key_pem": Material("key_pem", True, "the CA's unencrypted private key (PEM)"),
}
"""OSM CA args -> the slot each fills (``ca.slot_material``, Secret ``osm-ca-bundle``)."""

OSM_FIELDS = {**_COMMON_FIELDS, "mesh.name": "meshName"}
"""Stack path -> OsmControlPlane field."""


def _osm_mesh(a: dict) -> dict:
    backend: dict = {"type": "osm", **({"version": a["version"]} if a.get("version") is not None else {})}
    return _mesh(a, "mesh_name", backend, _cluster(a))


def osm_plan(name: str, args: Any) -> ControlPlanePlan:
    """Validate and render :class:`OsmControlPlaneArgs` (see :func:`istio_plan`)."""
    plan = _plan(OsmControlPlane.__name__, name, args, OsmControlPlaneArgs, "osm", OSM_MATERIAL,
                 {k: f"required; give {m.what} (Secret osm-ca-bundle)" for k, m in OSM_MATERIAL.items()},
                 _osm_mesh, OSM_FIELDS)
    return dataclasses.replace(plan, outputs={**plan.outputs, "mesh_name": plan.spec.name})


class OsmControlPlane(ControlPlane):
    """Open Service Mesh v1.2.4 (archived upstream) on one cluster: ``osm-system`` (ignored by
    OSM's injector), Secret ``osm-ca-bundle`` from the material given, and the ``osm`` release with
    permissive traffic policy and global egress off. Registers on the kubernetes provider given in
    ``opts``. Upstream: ../shared/charts/osm, https://release-v1-2.docs.openservicemesh.io/docs/guides/install/ ."""

    TYPE = "mesh:index:OsmControlPlane"
    FORMER_TYPES = ("mesh:index:ControlPlane",)

    releases: pulumi.Output[dict[str, str]]
    """Helm release name -> ``<chart>@<version>``."""
    namespaces: pulumi.Output[list[str]]
    """The namespaces this control plane creates (``osm-system``)."""
    namespace_labels: pulumi.Output[dict[str, str]]
    """The label that enrols an application namespace: ``openservicemesh.io/monitored-by: <mesh>``."""
    namespace_annotations: pulumi.Output[dict[str, str]]
    """The annotation for sidecar injection: ``openservicemesh.io/sidecar-injection: enabled``."""
    cluster_name: pulumi.Output[str]
    """The cluster's name."""
    trust_domain: pulumi.Output[str]
    """``osm.trustDomain``."""
    mesh_name: pulumi.Output[str]
    """``osm.meshName``."""

    def __init__(self, name: str, args: OsmControlPlaneArgs, opts: Optional[pulumi.ResourceOptions] = None):
        self._construct_alone(name, osm_plan(name, args), opts)


CONTROL_PLANES = {"istio": IstioControlPlane, "linkerd": LinkerdControlPlane, "osm": OsmControlPlane}
"""Backend type -> the control-plane component ``ServiceMesh`` composes for it."""
