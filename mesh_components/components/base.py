"""The shared shapes of the per-cluster components: one concern's objects, and its Helm releases."""
from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from ..core.render import ClusterState
from .registration import Lookup, previous_names, register_objects, register_release


class _ObjectsComponent(pulumi.ComponentResource):
    """A component that registers one concern's objects of one cluster, after the CRDs."""

    TYPE = ""
    FORMER_TYPES = ()  # no annotation: Pulumi's analyzer reads annotated class attributes as outputs
    """Type tokens earlier releases registered this component under: each is an alias (the type
    alone, name and parent kept), so a stack created by such a release updates the component in
    place, and every child with it: the engine derives a child's old URN from its parent's alias
    (pulumi/pulumi ``pkg/resource/deploy/step_generator.go`` ``generateAliases`` /
    ``inheritedChildAlias``)."""
    CONCERN = ""
    _force_namespaces = True  # no annotation (not an output); False as a component used alone registers
    """Whether this component's ``NamespacePatch``es force (``registration.namespace_patch_metadata``):
    yes as ``ServiceMesh`` composes it (state of earlier releases), no used alone."""

    def __init__(self, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                 namespaces: dict[str, pulumi.Resource], crds: Sequence[pulumi.Resource],
                 opts: ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, _with_former_types(self, opts))
        objects = state.concerns[self.CONCERN]
        self.resources = register_objects(name, objects, lookup, parent=self, provider=provider,
                                          namespaces=namespaces, crds=crds, force_namespaces=self._force_namespaces)
        self.register_outputs(self.outputs(objects))

    def outputs(self, objects: list[dict]) -> dict:
        return {"objects": len(objects)}


class _ReleasingComponent(_ObjectsComponent):
    """An objects component that also installs its concern's Helm releases (``HelmRelease.concern``):
    its namespaces first, then the releases (after the control plane's releases and manifests),
    then the other objects, custom resources after the CRDs those releases install."""

    def __init__(self, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                 namespaces: dict[str, pulumi.Resource], crds: Sequence[pulumi.Resource],
                 opts: ResourceOptions | None = None):
        pulumi.ComponentResource.__init__(self, self.TYPE, name, None, _with_former_types(self, opts))
        objects = state.concerns[self.CONCERN]
        own_ns = [o for o in objects if o["kind"] == "Namespace" and o["apiVersion"] == "v1"]
        rest = [o for o in objects if not (o["kind"] == "Namespace" and o["apiVersion"] == "v1")]
        self._previous = previous_names(name, objects)  # over both calls: aliases need names unique in the component
        made_ns = register_objects(name, own_ns, lookup, parent=self, provider=provider, namespaces=namespaces,
                                   previous=self._previous, force_namespaces=self._force_namespaces)
        self.releases: dict[str, pulumi.Resource] = {}
        for rel in (r for r in state.releases if r.concern == self.CONCERN):
            deps = list(crds) + made_ns + [self.releases[d] for d in rel.depends_on if d in self.releases]
            self.releases[rel.name] = register_release(name, rel, lookup,
                                               ResourceOptions(parent=self, provider=provider, depends_on=deps))
        self.resources = made_ns + list(self.releases.values()) + self._register(
            name, rest, lookup, provider, namespaces, list(crds) + list(self.releases.values()))
        self.register_outputs(self.outputs(objects))

    def _register(self, name: str, objects: list[dict], lookup: Lookup, provider: k8s.Provider,
                  namespaces: dict[str, pulumi.Resource], crds: list[pulumi.Resource]) -> list[pulumi.Resource]:
        return register_objects(name, objects, lookup, parent=self, provider=provider, namespaces=namespaces, crds=crds,
                                previous=self._previous, force_namespaces=self._force_namespaces)


def _with_former_types(component: _ObjectsComponent, opts: ResourceOptions | None) -> ResourceOptions | None:
    """``opts`` plus a type alias per ``component.FORMER_TYPES``."""
    if not component.FORMER_TYPES:
        return opts
    return ResourceOptions.merge(opts, ResourceOptions(aliases=[pulumi.Alias(type_=t) for t in component.FORMER_TYPES]))
