"""One cluster's multi-cluster wiring, and the deploy-time values read from other clusters."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from ..core import multicluster as mc
from ..core.render import ClusterState
from ..core.slots import Slot, iter_slots
from ..spec import MeshSpec
from .lookups import _field
from .registration import Lookup, previous_names, register_objects


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
    """Deploy-time values of source ``cluster`` slots (:mod:`mesh_components.core.multicluster`):

    - ``reader_kubeconfig/<reader>`` of cluster B: a kubeconfig for B (server and CA from B's
      kubeconfig input, CA falling back to the token Secret's ``ca.crt``) with the token of the
      Secret :func:`~mesh_components.core.multicluster.reader_token` names, read back from B once B's
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
