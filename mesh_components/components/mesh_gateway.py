"""One cluster's north-south gateway component and the Gateway's published addresses, usable alone
on a mesh installed by other means, or composed by ``ServiceMesh``.

No ``from __future__ import annotations`` here: Pulumi's analyzer reads the Args and output
annotations as objects (pulumi 3.x ``pulumi/provider/experimental/analyzer.py``
``analyze_component``, ``inspect.get_annotations`` without ``eval_str``).

Used alone, the component builds from its args the one-cluster stack-shaped ``mesh:`` mapping
(``mesh.backend``, ``mesh.clusters[0]``, ``mesh.services``, ``mesh.trafficSplits``,
``mesh.ingress``), has it checked by the stack file's loader and rendered by the pure core
(:mod:`mesh_components.components.standalone`), and registers exactly the ``gateway`` concern and
its Helm releases (Envoy Gateway ``eg``, cert-manager) on the kubernetes provider of ``opts``.
What the gateway relies on that other parts of a stack render, and this component does not
(``requirements`` says it in words):

- the mesh's access policy admits the gateway's workload identity to the routed services: in a
  stack, the ``policy`` concern renders that admission from ``mesh.ingress``
  (``gamma.build`` with ``gateway.gateway_identity``); an ``SmiPolicies`` used alone does not
  know the gateway. OSM admits the gateway with ``IngressBackend``s, which are part of this
  concern and registered here (``envoy_gateway.osm_ingress_backends``);
- Istio's own implementation: istiod's Gateway API controller (GatewayClass ``istio``,
  https://istio.io/latest/docs/tasks/traffic-management/ingress/gateway-api/);
- the Gateway API CRDs (the control plane's: ``mesh_components.core.gateway_api``);
- what ``spec.ingress_notices`` names (the listener Secret without an issuer, DNS-01 credentials).

``tls.issuer.meshCA`` is refused alone: its Issuer signs with the cluster's mesh intermediate CA,
material this component does not take.
"""
import dataclasses
from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from ..core import gateway as gateway_core
from ..spec.errors import Problem
from ..core.render import ClusterState
from ..core.slots import Slot, fill
from ..spec import ingress_notices
from . import standalone
from .args import ArgsError, from_schema_keys, unknown_inputs, whole_number
from .base import _ReleasingComponent
from .lookups import _field
from .registration import Lookup, object_identity, previous_name_aliases, register_objects, resource_name, type_aliases
from .smi_policies import SmiServiceArgs

COMPONENT = "MeshGateway"


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


class MeshGatewayRouteArgs(TypedDict, total=False):
    """Requests whose path starts with ``path_prefix`` go to ``service`` on ``port``, as
    ``mesh.ingress.routes[]`` of the stack file (an ``HTTPRoute``, ``PathPrefix`` match)."""

    service: Required[pulumi.Input[str]]
    """The routed service (one of ``services``)."""
    namespace: Required[pulumi.Input[str]]
    """Its namespace (gets a ``ReferenceGrant`` from the gateway namespace)."""
    port: Required[pulumi.Input[int]]
    """The service port (1-65535), one of its ``ports``; OSM: an ``http`` port."""
    path_prefix: pulumi.Input[str]
    """The path prefix matched (starts with ``/``). Default: ``/``."""


class MeshGatewayTlsArgs(TypedDict, total=False):
    """TLS for the HTTPS listeners (port 443; the HTTP listeners then redirect with 301), as
    ``mesh.ingress.tls`` of the stack file."""

    secret_name: Required[pulumi.Input[str]]
    """The ``kubernetes.io/tls`` Secret in the gateway namespace: yours to create, or written by
    cert-manager when ``issuer`` is given."""
    issuer: pulumi.Input[Mapping[str, Any]]
    """The cert-manager issuer, as ``mesh.ingress.tls.issuer`` of the stack file: ``name`` (and
    ``kind``) of an existing issuer, or ``acme`` (``email``, ``server``, ``dns01``) to render a
    ClusterIssuer. ``meshCA`` is refused here (it needs the mesh CA's material). Default: none."""


class MeshGatewayArgs(TypedDict, total=False):
    """The north-south gateway of one cluster of an existing mesh, as ``mesh.ingress`` of the stack
    file, with the service context its routes need."""

    mesh: Required[pulumi.Input[str]]
    """The mesh that runs on the cluster: ``istio``, ``linkerd`` or ``osm``."""
    hosts: Required[pulumi.Input[Sequence[pulumi.Input[str]]]]
    """The host names served (one HTTP listener each, port 80; with ``tls`` an HTTPS one, 443)."""
    routes: Required[pulumi.Input[Sequence[pulumi.Input[MeshGatewayRouteArgs]]]]
    """The routes (at least one)."""
    services: Required[pulumi.Input[Sequence[pulumi.Input[SmiServiceArgs]]]]
    """The routed services with their ports (OSM's IngressBackends name the target ports), and the
    versions ``traffic_splits`` name."""
    gateway_name: pulumi.Input[str]
    """The Gateway's name (DNS label, at most 57 characters: its Service is ``<name>-envoy`` or
    ``<name>-istio``). Default: ``ingress``."""
    gateway_namespace: pulumi.Input[str]
    """The gateway's namespace, created by this component (not an application namespace).
    Default: ``mesh-ingress``."""
    implementation: pulumi.Input[str]
    """``istio`` (Istio's own Gateway API implementation; the default for mesh istio) or
    ``envoy-gateway`` (Envoy Gateway ``gateway-helm`` v1.9.0, installed here; the default, and the
    only choice, for linkerd and osm)."""
    tls: pulumi.Input[MeshGatewayTlsArgs]
    """HTTPS listeners and their certificate. Default: none (HTTP only)."""
    cert_manager: pulumi.Input[str]
    """``install`` (default: the cert-manager chart, where ``tls.issuer`` needs it) or
    ``external`` (the cluster already runs cert-manager)."""
    traffic_splits: pulumi.Input[Sequence[pulumi.Input[Mapping[str, Any]]]]
    """Splits of routed services, as ``mesh.trafficSplits`` of the stack file (``name``,
    ``namespace``, ``service``, ``backends`` of ``service`` and ``weight``): the gateway applies
    them at the edge (the mesh's own split route does not apply to it). Default: none."""
    data_plane: pulumi.Input[str]
    """Istio only: ``sidecar`` (default) or ``ambient``: how Envoy Gateway's proxies join the mesh."""
    revision: pulumi.Input[str]
    """Istio sidecar with ``implementation: envoy-gateway`` only: the ``istio.io/rev`` (revision or
    tag) that injects Envoy Gateway's proxies. Default: none (``sidecar.istio.io/inject: "true"``,
    the default revision)."""
    cloud: pulumi.Input[str]
    """The cluster's cloud: ``aws``, ``azure``, ``gcp`` or ``onprem`` (default): the load
    balancer's annotations (``mesh_components.core.clouds.load_balancer_annotations``)."""
    internal_load_balancers: pulumi.Input[bool]
    """Ask the cloud for an internal (VPC-only) load balancer. Default: false."""
    gateway_api_crds: pulumi.Input[str]
    """``install`` (default) or ``managed`` (the cloud's standard channel; refuses what it cannot serve)."""
    trust_domain: pulumi.Input[str]
    """The mesh's trust domain. Default: ``cluster.local``."""
    cluster_name: pulumi.Input[str]
    """The cluster's name (DNS label), in messages. Default: ``default``."""
    mesh_name: pulumi.Input[str]
    """The ownership label ``mesh-components.io/mesh`` of every object (DNS label). Default: ``mesh``."""


FIELDS = {
    **standalone.MESH_FIELDS,
    "mesh.backend.istio.revision": "revision",
    "mesh.clusters[0]": "",
    "mesh.clusters[0].cloud": "cloud",
    "mesh.clusters[0].internalLoadBalancers": "internalLoadBalancers",
    "mesh.clusters[0].gatewayApiCrds": "gatewayApiCrds",
    "mesh.trafficSplits": "trafficSplits",
    "mesh.ingress": "",
    "mesh.ingress.name": "gatewayName",
    "mesh.ingress.namespace": "gatewayNamespace",
    "mesh.ingress.implementation": "implementation",
    "mesh.ingress.hosts": "hosts",
    "mesh.ingress.routes": "routes",
    "mesh.ingress.tls": "tls",
    "mesh.ingress.certManager": "certManager",
}
"""Stack path -> MeshGateway field (:func:`standalone.repath`)."""

REQUIREMENTS = {
    "admit": ("the mesh's access policy admits the gateway's identity {identity} to the routed services {routed} (in a "
              "stack the policy concern renders that; SmiPolicies used alone does not know the gateway)"),
    "osm": ("the routed services' namespaces are monitored by OSM: the IngressBackends registered here admit the "
            "gateway's proxies (Service {service}) there"),
    "istio": ("istiod runs its Gateway API controller (GatewayClass istio, on by default) and the cluster has the "
              "Gateway API CRDs (standard channel)"),
    "envoy-gateway": ("no other Envoy Gateway runs in the cluster: this component installs release "
                      "envoy-gateway-system/eg (gateway-helm v1.9.0) and GatewayClass envoy-gateway; the Gateway API "
                      "CRDs are installed (the release does not replace them)"),
    "sidecar-proxies": "istiod injects revision {revision} into the Envoy Gateway proxies (label {label})",
    "cert-manager": ("no cert-manager runs in the cluster yet (certManager install registers the chart); if one does, "
                     "set certManager: external"),
}
"""What the gateway assumes of the existing mesh and cannot check at construction (``requirements``)."""


@dataclasses.dataclass(frozen=True)
class MeshGatewayPlan:
    """What :class:`MeshGateway` registers, computed before anything is: the rendered ``state`` of
    the equivalent one-cluster stack (its ``gateway`` concern and releases are registered) and the
    plain ``outputs`` (by output name; ``addresses`` comes from the registered Gateway)."""

    mesh: str
    cluster: str
    state: ClusterState
    objects: list
    outputs: dict


def _whole(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_whole(v) for v in value]
    return whole_number(value)


def stack_mesh(name: str, args: Mapping[str, Any]) -> tuple[dict, list[Problem]]:
    """``args`` (Python or camelCase keys, whole floats taken as ints) -> ``(the stack-shaped
    mesh: mapping, problems found before the spec loader)``."""
    if not isinstance(args, Mapping):
        raise ArgsError([(f"{COMPONENT} {name}", f"args must be a mapping of MeshGatewayArgs fields, got "
                                                 f"{type(args).__name__}")])
    known = dict(MeshGatewayArgs.__annotations__)
    problems: list[Problem] = list(unknown_inputs(args, known))
    plain = {k: v for k, v in from_schema_keys(args, known).items() if k in known}
    problems += standalone.unknown_values(standalone.stack_keys(plain, MeshGatewayArgs), "")
    a = _whole(standalone.stack_keys(plain, MeshGatewayArgs))
    kind = a.get("mesh")
    for key, message in (("hosts", "required; give the host names the gateway serves"),
                         ("routes", "required; give the routes (service, namespace, port, pathPrefix)"),
                         ("services", "required; give the routed services, each with name, namespace and ports")):
        if key not in a:
            problems.append((key, message))
    backend: dict = {"type": kind}
    istio = {k: a[k] for k in ("dataPlane", "revision") if a.get(k) is not None and (k == "dataPlane" or kind == "istio")}
    if a.get("revision") is not None and kind != "istio":
        problems.append(("revision", f"applies to mesh istio only (the Envoy Gateway proxies' injection), not "
                                     f"{kind!r}; remove it"))
    elif a.get("revision") is not None and (a.get("implementation", "istio") != "envoy-gateway"
                                            or a.get("dataPlane") == "ambient"):
        # only Envoy Gateway's proxies behind sidecars carry it (envoy_gateway.mesh_membership)
        problems.append(("revision", "names the revision that injects Envoy Gateway's proxies, which only "
                                     "implementation envoy-gateway with dataPlane sidecar has; remove it"))
    if istio:
        backend["istio"] = istio
    cluster: dict = {"name": a.get("clusterName", "default"), "cloud": a.get("cloud", "onprem"),
                     "region": "standalone"}
    for key in ("internalLoadBalancers", "gatewayApiCrds"):
        if a.get(key) is not None:
            cluster[key] = a[key]
    ingress: dict = {}
    for key, field in (("name", "gatewayName"), ("namespace", "gatewayNamespace"), ("implementation", "implementation"),
                       ("hosts", "hosts"), ("routes", "routes"), ("tls", "tls"), ("certManager", "certManager")):
        if a.get(field) is not None:
            ingress[key] = a[field]
    tls = a.get("tls")
    issuer = tls.get("issuer") if isinstance(tls, Mapping) else None
    if isinstance(issuer, Mapping) and issuer.get("meshCA"):
        problems.append(("tls.issuer.meshCA", "an Issuer signing with the mesh CA needs the cluster's intermediate CA "
                                              "material, which MeshGateway does not take; name an existing issuer "
                                              "(name, kind) or give acme"))
    mesh: dict = {"name": a.get("meshName", "mesh"), "backend": backend, "clusters": [cluster], "ingress": ingress}
    for key, field in (("trustDomain", "trustDomain"), ("services", "services"), ("trafficSplits", "trafficSplits")):
        if a.get(field) is not None:
            mesh[key] = a[field]
    return mesh, problems


def plan(name: str, args: Mapping[str, Any]) -> MeshGatewayPlan:
    """Validate ``args`` and render them: the :class:`MeshGatewayPlan`. Pure (no Pulumi calls).

    Raises :class:`ArgsError` (``"MeshGateway <name>: <camelField>: ..."``: bad args, exactly the
    stack file's checks re-pathed, every problem at once) or
    :class:`~mesh_components.spec.errors.TranslationError` (what the mesh cannot admit, e.g. an OSM
    route to a non-HTTP port), before anything is registered."""
    import os

    mesh, problems = stack_mesh(name, args)
    # every problem at once: the stack file's checks of what could be read too
    standalone.raise_all(COMPONENT, name, problems, mesh, FIELDS, base_dir=os.getcwd())
    loaded, states = standalone.render(COMPONENT, name, mesh, FIELDS, base_dir=os.getcwd())
    spec = loaded.spec
    cluster = spec.clusters[0].name
    state = states[cluster]
    kind = spec.backend.type
    objects = list(state.concerns["gateway"])
    impl = gateway_core.implementation(spec)
    svc_ns, svc = gateway_core.gateway_service(spec)
    routed = ", ".join(sorted({f"{r.namespace}/{r.service}" for r in spec.ingress.routes}))
    requirements = []
    identity = gateway_core.gateway_identity(spec)
    if identity is not None:
        if kind == "istio":
            from ..meshes.istio_policy import principal

            who = f"principal {principal(spec.trust_domain, *identity)}"
        else:
            from ..meshes.linkerd_policy import identity as linkerd_identity

            who = f"identity {linkerd_identity(spec.trust_domain, *identity)}"
        requirements.append(REQUIREMENTS["admit"].format(
            identity=f"{identity[0]}/{identity[1]} (service account; {who})", routed=routed))
    else:
        requirements.append(REQUIREMENTS["osm"].format(service=f"{svc_ns}/{svc}"))
    requirements.append(REQUIREMENTS[impl])
    if impl == "envoy-gateway" and kind == "istio" and spec.backend.istio.data_plane == "sidecar":
        from ..meshes import istio

        rev = istio.injection_revision(spec)
        requirements.append(REQUIREMENTS["sidecar-proxies"].format(
            revision=rev or "(the default revision)",
            label=f"istio.io/rev: {rev}" if rev else 'sidecar.istio.io/inject: "true"'))
    if any(r.concern == "gateway" and r.chart == "cert-manager" for r in state.releases):
        requirements.append(REQUIREMENTS["cert-manager"])
    requirements += [standalone.repath_one(path, FIELDS) + ": " + standalone._repath_message(message, FIELDS)
                     for path, message in ingress_notices(spec)]
    gw = [o for o in objects if o["kind"] == "Gateway" and o["apiVersion"].startswith("gateway.networking.k8s.io/")]
    outputs = {"objects": len(objects),
               "gateways": sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in gw),
               "hosts": sorted({lst["hostname"] for o in gw for lst in o["spec"]["listeners"] if "hostname" in lst}),
               "implementation": impl, "service": f"{svc_ns}/{svc}", "requirements": requirements}
    return MeshGatewayPlan(kind, cluster, state, objects, outputs)


def _refuse_slot(slot: Slot):
    raise KeyError(f"no producer for deploy-time value {slot.placeholder()}: MeshGateway renders no deploy-time values")


class MeshGateway(_ReleasingComponent):
    """One cluster's north-south gateway (type ``mesh:index:MeshGateway``): the Gateway API
    Gateway of ``mesh.ingress`` as the mesh runs it (Envoy Gateway, or Istio's own gateway
    controller), the Envoy Gateway or cert-manager releases, GatewayClass, EnvoyProxy, routes,
    ReferenceGrants, certificates, OSM IngressBackends. Used alone, registers on the kubernetes
    provider given in ``opts``; the mesh and the Gateway API CRDs must already be installed, and
    ``requirements`` says what else the gateway relies on (the mesh's policy admitting it).

    Releases before this one named it ``EnvoyGateway`` (type ``mesh:index:EnvoyGateway``), wrong for
    Istio's own ingress: that type is an alias (:attr:`FORMER_TYPES`), so their stacks keep the
    component and every object below it."""

    TYPE, CONCERN = "mesh:index:MeshGateway", "gateway"
    FORMER_TYPES = ("mesh:index:EnvoyGateway",)
    _plan = None  # the standalone plan; None as ServiceMesh composes the component

    objects: pulumi.Output[int]
    """How many gateway objects this component registers."""
    gateways: pulumi.Output[list[str]]
    """``namespace/name`` of the Gateway API Gateway, e.g. ``mesh-ingress/ingress``."""
    hosts: pulumi.Output[list[str]]
    """The host names its listeners serve, sorted."""
    addresses: pulumi.Output[list[str]]
    """The Gateway's ``status.addresses`` (load-balancer IPs or host names), read back after every
    create, update and refresh; empty while the address is pending."""
    implementation: pulumi.Output[str]
    """``istio`` or ``envoy-gateway``."""
    service: pulumi.Output[str]
    """``namespace/name`` of the Service that carries the load-balancer address."""
    requirements: pulumi.Output[list[str]]
    """What the gateway relies on that this component does not set or cannot check, one sentence each."""

    def __init__(self, name: str, args: MeshGatewayArgs, opts: Optional[pulumi.ResourceOptions] = None):
        p = plan(name, args)  # raises before anything is registered
        self._plan = p
        self._force_namespaces = False  # used alone: nothing to migrate (registration.namespace_patch_metadata)
        _ReleasingComponent.__init__(self, name, p.state, _refuse_slot, None, {}, [], opts)

    @classmethod
    def _of_service_mesh(cls, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                         namespaces: dict, crds: Sequence[pulumi.Resource],
                         opts: Optional[ResourceOptions] = None) -> "MeshGateway":
        """The component as ``ServiceMesh`` composes it: the ``gateway`` concern and releases of
        ``state`` on ``provider``, after ``crds``, with exactly the registrations and outputs
        (``objects``, ``gateways``, ``hosts``, ``addresses``) releases before the standalone
        component had, and the former type ``mesh:index:EnvoyGateway`` as an alias."""
        self = cls.__new__(cls)
        _ReleasingComponent.__init__(self, name, state, lookup, provider, namespaces, crds, opts)
        return self

    def _register(self, name, objects, lookup, provider, namespaces, crds):
        is_gateway = lambda o: o["kind"] == "Gateway" and o["apiVersion"].startswith("gateway.networking.k8s.io/")  # noqa: E731
        made = register_objects(name, [o for o in objects if not is_gateway(o)], lookup, parent=self,
                                provider=provider, namespaces=namespaces, crds=crds, previous=self._previous,
                                force_namespaces=self._force_namespaces)
        self.gateway_resources = []
        for obj in (o for o in objects if is_gateway(o)):
            o = fill(obj, lookup)
            ns = o["metadata"].get("namespace")
            deps = ([namespaces[ns]] if ns in namespaces else []) + list(crds)
            typed = type_aliases(obj)
            previous = self._previous.get(object_identity(obj))
            aliases = ResourceOptions.merge(typed, previous_name_aliases(previous, typed))
            self.gateway_resources.append(_CustomResourceWithStatus(
                resource_name(name, obj), api_version=o["apiVersion"], kind=o["kind"], metadata=o["metadata"],
                spec=o.get("spec"), opts=ResourceOptions.merge(
                    ResourceOptions(parent=self, provider=provider, depends_on=deps), aliases)))
        self.addresses = (Output.all(*[g.status for g in self.gateway_resources]).apply(
            lambda statuses: sorted({a for s in statuses for a in gateway_addresses(s)}))
            if self.gateway_resources else Output.from_input([]))
        return made + self.gateway_resources

    def outputs(self, objects):
        if self._plan is None:
            gw = [o for o in objects if o["kind"] == "Gateway"]
            return {"objects": len(objects),
                    "gateways": sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in gw),
                    "hosts": sorted({lst["hostname"] for o in gw for lst in o["spec"]["listeners"]
                                     if "hostname" in lst}),
                    "addresses": self.addresses}
        values = dict(self._plan.outputs)
        for key, value in values.items():
            setattr(self, key, Output.from_input(value))
        values["addresses"] = self.addresses
        return values
