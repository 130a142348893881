"""One cluster's north-south gateway component and the Gateway's published addresses."""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from ..slots import fill
from .base import _ReleasingComponent
from .lookups import _field
from .registration import object_identity, previous_name_aliases, register_objects, resource_name, type_aliases


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


class MeshGateway(_ReleasingComponent):
    """One cluster's north-south gateway (type ``mesh:index:MeshGateway``): the Gateway API
    Gateway of ``mesh.ingress`` as the mesh runs it (Envoy Gateway, or Istio's own gateway
    controller), the Envoy Gateway or cert-manager releases, GatewayClass, EnvoyProxy, routes,
    ReferenceGrants, certificates. Outputs: ``objects``, ``gateways``, ``hosts`` and ``addresses``
    (the Gateway's ``status.addresses``, refreshed on every update).

    Releases before this one named it ``EnvoyGateway`` (type ``mesh:index:EnvoyGateway``), wrong for
    Istio's own ingress: that type is an alias (:attr:`FORMER_TYPES`), so their stacks keep the
    component and every object below it."""

    TYPE, CONCERN = "mesh:index:MeshGateway", "gateway"
    FORMER_TYPES = ("mesh:index:EnvoyGateway",)

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
