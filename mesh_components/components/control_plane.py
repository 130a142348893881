"""One cluster's control plane component."""
from __future__ import annotations


import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from ..render import ClusterState
from .registration import Lookup, needs_crds, previous_names, register_objects, register_release


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
            made[rel.name] = register_release(name, rel, lookup, ResourceOptions(parent=self, provider=provider, depends_on=deps))
        self.releases = list(made.values())
        self.crds = self.releases + self.manifests
        self.namespaces = namespaces
        register_objects(name, crs, lookup, parent=self, provider=provider, namespaces=namespaces, crds=self.crds,
                         previous=previous)
        self.register_outputs({"releases": {r.name: r.version for r in state.releases if r.concern == "control-plane"}})
