"""The whole mesh across its clusters: the one-stack-file entry point."""
from __future__ import annotations

from typing import Any, Mapping

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from ..core.egress import allowed_egress, egress_summary
from ..core.gateway import ingress_summary
from ..core.render import ClusterState, render_mesh
from ..spec import LoadedMesh, MeshSpec
from .certificate_authority import MeshCertificateAuthority
from .control_plane import CONTROL_PLANES
from .egress_rules import EgressRules
from .lookups import ca_lookup, config_secret_lookup, mesh_lookup
from .mesh_gateway import MeshGateway
from .mesh_telemetry import MeshTelemetry
from .multicluster_links import ClusterOutputs, MultiClusterLinks
from .providers import cluster_providers, kubeconfig_inputs
from .registration import Lookup
from .smi_policies import SmiPolicies


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


def register_cluster_parts(name: str, spec: MeshSpec, st: ClusterState, lookup: Lookup, provider: k8s.Provider,
                           parent: pulumi.Resource | None) -> dict[str, pulumi.ComponentResource]:
    """One cluster's components on its ``provider``, as ``ServiceMesh`` composes them, named
    ``<name>-<cluster>-<part>``: control plane, policies, egress, gateway, telemetry (when the spec
    has it). ``parent``: the ``ServiceMesh``, or None for a fleet cluster stack, whose parts are
    the stack's own (where ``pulumi state move`` puts them: :mod:`mesh_components.core.fleet_migration`).
    The multi-cluster wiring is registered apart, after every control plane of the stack."""
    c = st.cluster
    namespaces: dict[str, pulumi.Resource] = {}
    opts_c = ResourceOptions(parent=parent, providers=[provider])
    cp = CONTROL_PLANES[spec.backend.type]._of_service_mesh(f"{name}-{c}-control-plane", st, lookup, provider,
                                                             namespaces, opts=opts_c)
    parts: dict[str, pulumi.ComponentResource] = {"control_plane": cp}
    parts["policies"] = SmiPolicies._of_service_mesh(f"{name}-{c}-policies", st, lookup, provider, namespaces,
                                                     cp.crds, opts=opts_c)
    for key, cls in (("egress", EgressRules), ("gateway", MeshGateway)):
        parts[key] = cls._of_service_mesh(f"{name}-{c}-{key}", st, lookup, provider, namespaces, cp.crds,
                                          opts=opts_c)
    if spec.telemetry is not None:  # a stack without telemetry keeps exactly the resources it had
        parts["telemetry"] = MeshTelemetry(f"{name}-{c}-telemetry", st, lookup, provider, namespaces,
                                           cp.crds, opts=opts_c)
    return parts


def cluster_summary(spec: MeshSpec, c: str, st: ClusterState, parts: Mapping[str, Any]) -> dict:
    """The ``clusters[<c>]`` output: network, cloud, releases, object count, egress, ingress."""
    cluster = next(x for x in spec.clusters if x.name == c)
    out: dict[str, Any] = {
        "network": spec.network_of(cluster),
        "cloud": cluster.cloud,
        "releases": {r.name: f"{r.chart}@{r.version}" for r in st.releases},
        "objects": len(st.objects),
        "egress": egress_summary(spec, c),
    }
    ingress = ingress_summary(spec, c)
    if ingress is not None:
        out["ingress"] = {**ingress, "addresses": parts["gateway"].addresses}
    return out


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

        spec = mesh.spec
        states = render_mesh(mesh)
        # read once, for the providers and the kubeconfigs other clusters read this one with
        kubeconfigs = kubeconfig_inputs(spec) if not providers or len(spec.clusters) > 1 else {}
        self.providers = dict(providers) if providers else cluster_providers(name, spec, parent=self,
                                                                             kubeconfigs=kubeconfigs)
        # the CA component; its dynamic resource keeps its URN through aliases (_of_service_mesh)
        self.ca = MeshCertificateAuthority._of_service_mesh(
            f"{name}-ca", spec.ca_config(), dict(ca_secrets or {}), self, name,
            [a.name for a in (opts.aliases if opts and opts.aliases else []) if isinstance(a, pulumi.Alias)
             and isinstance(a.name, str) and a.name], opts=ResourceOptions(parent=self))
        cluster_outputs = ClusterOutputs(name, spec, self.providers, kubeconfigs, parent=self)
        lookup = config_secret_lookup(mesh_lookup(ca_lookup(self.ca.authority), cluster_outputs))
        clusters: dict[str, Any] = {}
        self.components: dict[str, dict[str, pulumi.ComponentResource]] = {}
        for cluster in spec.clusters:
            c, st = cluster.name, states[cluster.name]
            parts = register_cluster_parts(name, spec, st, lookup, self.providers[c], parent=self)
            self.components[c] = parts
            clusters[c] = cluster_summary(spec, c, st, parts)
        links = {}
        for cluster in spec.clusters:  # after every control plane: each reads the others
            c, st = cluster.name, states[cluster.name]
            if not st.concerns["multicluster"]:
                continue
            parts = self.components[c]
            links[c] = MultiClusterLinks._of_service_mesh(
                f"{name}-{c}-multicluster", st, lookup, self.providers[c], parts["control_plane"].namespaces,
                parts["control_plane"].crds, opts=ResourceOptions(parent=self, providers=[self.providers[c]]))
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
