"""Pulumi components: thin ComponentResources that register the pure core's desired state.

``ServiceMesh`` renders the spec with :func:`mesh_components.render.render_mesh` and composes,
per cluster and on that cluster's own kubernetes Provider:

- ``ControlPlane``: namespaces, the CA distribution (Istio ``cacerts``), the Gateway API CRDs, the
  Helm releases in install order, mesh-wide objects;
- ``SmiPolicies``: translated access policy, waypoints, traffic splits, version Services;
- ``EgressRules``: ServiceEntries, Sidecars, egress waypoint policy;
- ``EnvoyGateway``: the ingress Gateway and its routes;

plus one mesh-wide ``MeshCertificateAuthority`` (a dynamic resource). Custom resources depend on
the releases and manifests that define their CRDs (pulumi-kubernetes#2881), and every child is
named after its component and cluster (two clusters' ``istio-system`` must not collide in URNs,
pulumi-kubernetes#1689). Idioms: https://www.pulumi.com/docs/iac/concepts/resources/components/
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from .egress import allowed_egress
from .render import ClusterState, HelmRelease, render_mesh
from .slots import Slot, fill
from .spec import KubeconfigSource, LoadedMesh, MeshSpec, expand_path

Lookup = Callable[[Slot], Any]
_CRD_GROUP_SUFFIXES = (".istio.io", "gateway.networking.k8s.io")


# ---------------------------------------------------------------------------------------------
# providers


def kubeconfig_input(source: KubeconfigSource | None, cluster: str) -> Any:
    """The kubeconfig for ``cluster`` as a Pulumi input (text or secret Output), or None for the
    ambient kubeconfig. Raises ``pulumi.RunError`` naming the cluster when a file or variable is
    missing."""
    if source is None:
        return None
    if source.file:
        path = expand_path(source.file)
        if not path.exists():
            raise pulumi.RunError(f"cluster {cluster}: kubeconfig file {path} does not exist "
                                  f"(mesh.clusters[].kubeconfig.file)")
        return path.read_text()
    if source.env:
        value = os.environ.get(source.env)
        if not value:
            raise pulumi.RunError(f"cluster {cluster}: environment variable {source.env} is not set; export the "
                                  f"kubeconfig text or its path in it")
        return value if "apiVersion" in value or "\n" in value else expand_path(value).read_text()
    return pulumi.StackReference(source.stack_reference).get_output(source.output)


def cluster_providers(name: str, spec: MeshSpec, parent: pulumi.Resource | None = None) -> dict[str, k8s.Provider]:
    """One kubernetes Provider per cluster, named ``<name>-<cluster>-k8s``, kubeconfig kept secret."""
    providers = {}
    for c in spec.clusters:
        kc = kubeconfig_input(c.kubeconfig, c.name)
        providers[c.name] = k8s.Provider(
            f"{name}-{c.name}-k8s",
            kubeconfig=Output.secret(kc) if kc is not None else None,
            context=c.kubeconfig.context if c.kubeconfig and c.kubeconfig.context else None,
            cluster_identifier=c.name,
            opts=ResourceOptions(parent=parent))
    return providers


# ---------------------------------------------------------------------------------------------
# registering plain objects


def resource_name(prefix: str, obj: dict) -> str:
    """``<prefix>-<kind>[.<group>]-<namespace>-<name>``: unique per cluster component."""
    group = obj["apiVersion"].rpartition("/")[0]
    kind = obj["kind"].lower() + (f".{group}" if group else "")
    ns = obj["metadata"].get("namespace") or "cluster"
    return f"{prefix}-{kind}-{ns}-{obj['metadata']['name']}"


def register_object(prefix: str, obj: dict, lookup: Lookup, opts: ResourceOptions) -> pulumi.CustomResource:
    """Register one Kubernetes object dict (slots filled from ``lookup``) as a Pulumi resource:
    typed classes for the core kinds, ``apiextensions.CustomResource`` for the rest."""
    o = fill(obj, lookup)
    name, api, kind, meta = resource_name(prefix, obj), o["apiVersion"], o["kind"], o["metadata"]
    if api == "v1":
        if kind == "Namespace":
            return k8s.core.v1.Namespace(name, metadata=meta, opts=opts)
        if kind == "Secret":
            secret_opts = ResourceOptions.merge(opts, ResourceOptions(additional_secret_outputs=["stringData", "data"]))
            return k8s.core.v1.Secret(name, metadata=meta, type=o.get("type"), string_data=o.get("stringData"),
                                      data=o.get("data"), opts=secret_opts)
        if kind == "ConfigMap":
            return k8s.core.v1.ConfigMap(name, metadata=meta, data=o.get("data"), opts=opts)
        if kind == "Service":
            return k8s.core.v1.Service(name, metadata=meta, spec=o.get("spec"), opts=opts)
        if kind == "ServiceAccount":
            return k8s.core.v1.ServiceAccount(name, metadata=meta, opts=opts)
        raise ValueError(f"no Pulumi mapping for core kind {kind}")
    extra = set(o) - {"apiVersion", "kind", "metadata", "spec"}
    if extra:
        raise ValueError(f"{kind} {meta['name']}: top-level fields {sorted(extra)} need a typed resource")
    return k8s.apiextensions.CustomResource(name, api_version=api, kind=kind, metadata=meta, spec=o.get("spec"),
                                            opts=opts)


def needs_crds(obj: dict) -> bool:
    """True for objects whose kind is defined by a CRD that a release or manifest installs."""
    group = obj["apiVersion"].rpartition("/")[0]
    return any(group.endswith(s) for s in _CRD_GROUP_SUFFIXES)


def register_objects(prefix: str, objects: Sequence[dict], lookup: Lookup, *, parent: pulumi.Resource,
                     provider: k8s.Provider, namespaces: dict[str, pulumi.Resource],
                     crds: Sequence[pulumi.Resource] = ()) -> list[pulumi.Resource]:
    """Register ``objects`` in order. Namespaces are registered first and recorded in
    ``namespaces``; a namespaced object depends on its namespace, a custom resource on ``crds``."""
    made = []
    for obj in sorted(objects, key=lambda o: o["kind"] != "Namespace"):
        deps: list[pulumi.Resource] = []
        ns = obj["metadata"].get("namespace")
        if ns in namespaces:
            deps.append(namespaces[ns])
        if needs_crds(obj):
            deps += list(crds)
        r = register_object(prefix, obj, lookup, ResourceOptions(parent=parent, provider=provider, depends_on=deps))
        if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
            namespaces[obj["metadata"]["name"]] = r
        made.append(r)
    return made


# ---------------------------------------------------------------------------------------------
# components


class ControlPlane(pulumi.ComponentResource):
    """One cluster's control plane: namespaces, CA distribution, Gateway API CRDs, the Helm
    releases in install order (istiod after the ``cacerts`` it reads at start) and mesh-wide
    objects. Type ``mesh:index:ControlPlane``. Outputs: ``releases`` (name -> chart version)."""

    def __init__(self, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                 namespaces: dict[str, pulumi.Resource], opts: ResourceOptions | None = None):
        super().__init__("mesh:index:ControlPlane", name, None, opts)
        child = ResourceOptions(parent=self, provider=provider)
        register_objects(name, state.concerns["namespaces"], lookup, parent=self, provider=provider,
                         namespaces=namespaces)
        core = [o for o in state.concerns["control-plane"] if not needs_crds(o)]
        crs = [o for o in state.concerns["control-plane"] if needs_crds(o)]
        before_istiod = register_objects(name, core + state.concerns["ca"], lookup, parent=self, provider=provider,
                                         namespaces=namespaces)
        self.manifests = [k8s.yaml.v2.ConfigFile(f"{name}-{m.name}", file=m.url, opts=child)
                          for m in state.remote_manifests]
        made: dict[str, pulumi.Resource] = {}
        for rel in state.releases:
            deps = [made[d] for d in rel.depends_on] + before_istiod + self.manifests
            made[rel.name] = _release(name, rel, lookup, ResourceOptions(parent=self, provider=provider, depends_on=deps))
        self.releases = list(made.values())
        self.crds = self.releases + self.manifests
        register_objects(name, crs, lookup, parent=self, provider=provider, namespaces=namespaces, crds=self.crds)
        self.register_outputs({"releases": {r.name: r.version for r in state.releases}})


def _release(prefix: str, rel: HelmRelease, lookup: Lookup, opts: ResourceOptions) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(f"{prefix}-{rel.name}", k8s.helm.v3.ReleaseArgs(
        name=rel.name, namespace=rel.namespace, chart=rel.chart, version=rel.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=rel.repository),
        values=fill(rel.values, lookup)), opts=opts)


class _ObjectsComponent(pulumi.ComponentResource):
    """A component that registers one concern's objects of one cluster, after the CRDs."""

    TYPE = ""
    CONCERN = ""

    def __init__(self, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                 namespaces: dict[str, pulumi.Resource], crds: Sequence[pulumi.Resource],
                 opts: ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        objects = state.concerns[self.CONCERN]
        self.resources = register_objects(name, objects, lookup, parent=self, provider=provider,
                                          namespaces=namespaces, crds=crds)
        self.register_outputs(self.outputs(objects))

    def outputs(self, objects: list[dict]) -> dict:
        return {"objects": len(objects)}


class SmiPolicies(_ObjectsComponent):
    """One cluster's traffic policy as the mesh expresses it (type ``mesh:index:SmiPolicies``):
    access policy, waypoints, GAMMA routes for splits and version Services."""

    TYPE, CONCERN = "mesh:index:SmiPolicies", "policy"

    def outputs(self, objects):
        return {"objects": len(objects),
                "authorization_policies": sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                                                 for o in objects if o["kind"] == "AuthorizationPolicy")}


class EgressRules(_ObjectsComponent):
    """One cluster's egress allow-list (type ``mesh:index:EgressRules``)."""

    TYPE, CONCERN = "mesh:index:EgressRules", "egress"

    def outputs(self, objects):
        return {"objects": len(objects),
                "service_entries": sorted(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceEntry")}


class EnvoyGateway(_ObjectsComponent):
    """One cluster's north-south Envoy gateway (type ``mesh:index:EnvoyGateway``)."""

    TYPE, CONCERN = "mesh:index:EnvoyGateway", "gateway"

    def outputs(self, objects):
        gw = [o for o in objects if o["kind"] == "Gateway"]
        return {"objects": len(objects),
                "gateways": sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in gw),
                "hosts": sorted({lst["hostname"] for o in gw for lst in o["spec"]["listeners"] if "hostname" in lst})}


def ca_lookup(authority) -> Lookup:
    """Slot -> Output of the ``MeshCertificateAuthority``: mesh-wide bundle, per-cluster material."""
    def lookup(slot: Slot):
        if slot.source != "ca":
            raise KeyError(f"no producer for deploy-time value {slot.placeholder()}")
        if slot.cluster is None:
            return getattr(authority, slot.key)
        value = authority.intermediates.apply(lambda i, c=slot.cluster, k=slot.key: i[c][k])
        return Output.secret(value) if slot.secret else Output.unsecret(value)
    return lookup


class ServiceMesh(pulumi.ComponentResource):
    """The whole mesh across its clusters (type ``mesh:index:ServiceMesh``).

    ``mesh``: a validated :class:`LoadedMesh` (``spec.load_mesh`` / ``spec.load_stack``).
    ``providers``: cluster name -> kubernetes Provider (default: made from each cluster's
    ``kubeconfig``). ``ca_secrets``: secret inputs of the CA (``root_cert_pem``, ``root_key_pem``,
    ``intermediates``, ``vault_token``) as Pulumi secrets, for the byoRoot/intermediateOnly/vault modes.

    Outputs: ``root_fingerprint``, ``ca_stage``, ``clusters`` (per cluster: network, releases,
    authorization policies, service entries, gateways, hosts) and ``allowed_egress``.
    """

    def __init__(self, name: str, mesh: LoadedMesh, *, providers: Mapping[str, k8s.Provider] | None = None,
                 ca_secrets: Mapping[str, Any] | None = None, opts: ResourceOptions | None = None):
        super().__init__("mesh:index:ServiceMesh", name, None, opts)
        from .ca_provider import MeshCertificateAuthority

        spec = mesh.spec
        states = render_mesh(mesh)
        self.providers = dict(providers) if providers else cluster_providers(name, spec, parent=self)
        self.ca = MeshCertificateAuthority(f"{name}-ca", spec.ca_config(), **dict(ca_secrets or {}),
                                           opts=ResourceOptions(parent=self))
        lookup = ca_lookup(self.ca)
        clusters: dict[str, Any] = {}
        self.components: dict[str, dict[str, pulumi.ComponentResource]] = {}
        for cluster in spec.clusters:
            c, st = cluster.name, states[cluster.name]
            provider = self.providers[c]
            namespaces: dict[str, pulumi.Resource] = {}
            opts_c = ResourceOptions(parent=self, providers=[provider])
            cp = ControlPlane(f"{name}-{c}-control-plane", st, lookup, provider, namespaces, opts=opts_c)
            parts = {"control_plane": cp}
            for key, cls in (("policies", SmiPolicies), ("egress", EgressRules), ("gateway", EnvoyGateway)):
                parts[key] = cls(f"{name}-{c}-{key}", st, lookup, provider, namespaces, cp.crds, opts=opts_c)
            self.components[c] = parts
            clusters[c] = {
                "network": spec.network_of(cluster),
                "cloud": cluster.cloud,
                "releases": {r.name: f"{r.chart}@{r.version}" for r in st.releases},
                "objects": len(st.objects),
            }
        self.root_fingerprint = self.ca.root_fingerprint
        self.ca_stage = self.ca.stage
        self.clusters = clusters
        self.allowed_egress = [list(row) for row in allowed_egress(spec)]
        self.register_outputs({"root_fingerprint": self.root_fingerprint, "ca_stage": self.ca_stage,
                               "clusters": clusters, "allowed_egress": self.allowed_egress})
