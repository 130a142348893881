"""Multi-cluster wiring: ``MultiClusterLinks`` for a set of clusters (usable alone on meshes
installed by other means, or composed by ``ServiceMesh`` once per cluster), and the deploy-time
values read from other clusters (:class:`ClusterOutputs`).

No ``from __future__ import annotations`` here: Pulumi's analyzer reads the Args and output
annotations as objects (pulumi 3.x ``pulumi/provider/experimental/analyzer.py``
``analyze_component``, ``inspect.get_annotations`` without ``eval_str``).

Used alone, the component builds from its args the stack-shaped ``mesh:`` mapping of the clusters
(``mesh.backend``, ``mesh.clusters``, the exported services as ``mesh.services``), has it checked by
the stack file's loader and rendered by the pure core (:mod:`mesh_components.components.standalone`),
and registers exactly the ``multicluster`` concern of each cluster on that cluster's provider
(``clusters[].provider``): what ``istioctl create-remote-secret`` and ``linkerd multicluster link-gen``
produce by hand (:mod:`mesh_components.core.multicluster`), nothing of the control planes. What the
wiring relies on that the control planes normally set, and cannot be checked from here, is listed in
``requirements``; for Linkerd, ``linkerd_multicluster_values`` gives each cluster's
``linkerd-multicluster`` chart values the Links need (one service mirror and one remote-access
account per peer: linkerd2 edge-26.8.3 ``multicluster/charts/linkerd-multicluster/values.yaml``
``controllers``, ``remoteMirrorServiceAccountName``).
"""
import dataclasses
import os
from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from ..core import multicluster as mc
from ..core.render import ClusterState
from ..core.slots import Slot, iter_slots
from ..spec import MeshSpec
from ..spec.errors import Problem
from . import standalone
from .args import ArgsError, from_schema_keys, is_output, schema_name, unknown_inputs
from .lookups import _field
from .registration import Lookup, depends_on_of, previous_names, read_existing, register_objects

COMPONENT = "MultiClusterLinks"


class MultiClusterClusterArgs(TypedDict, total=False):
    """One cluster of the mesh, as ``mesh.clusters[]`` of the stack file, with its provider (its
    kubeconfig is in ``kubeconfigs``: secrets apart from the shape, which must be known when the
    component is constructed)."""

    name: Required[pulumi.Input[str]]
    """The cluster's name (DNS label): Istio's ``global.multiCluster.clusterName`` of its istiod
    (the remote secret's key and ``networking.istio.io/cluster`` annotation name it), Linkerd's
    ``Link`` name in its peers."""
    provider: Required[pulumi.Input[k8s.Provider]]
    """The kubernetes Provider of the cluster: every object of the cluster is registered on it."""
    context: pulumi.Input[str]
    """The context of the cluster's kubeconfig (``kubeconfigs``) to take the server and CA from.
    Default: its current context."""
    network: pulumi.Input[str]
    """The cluster's network (DNS label; Istio ``global.network``): clusters on one network reach
    each other's pods directly, others through east-west gateways. Default: one network for all."""
    east_west_addresses: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Static IPv4 addresses of the cluster's east-west gateway (Linkerd: the ``linkerd-gateway``
    address peers' Links dial). Default: none (Linkerd across networks: read from the
    ``linkerd-multicluster/linkerd-gateway`` Service's load-balancer status at deploy time)."""


class ExportedServiceArgs(TypedDict, total=False):
    """An application Service made visible to the other clusters (patched with the label only,
    never created)."""

    name: Required[pulumi.Input[str]]
    """The Service's name (DNS label); it must exist in each of ``clusters``."""
    namespace: Required[pulumi.Input[str]]
    """Its namespace (DNS label)."""
    clusters: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The clusters where it runs and is exported from. Default: every cluster."""


class MultiClusterLinksArgs(TypedDict, total=False):
    """Remote secrets (Istio) or credentials and Links (Linkerd) between every pair of a set of
    clusters of an existing mesh."""

    mesh: Required[pulumi.Input[str]]
    """The mesh that runs on the clusters: ``istio`` or ``linkerd`` (OSM is single-cluster: refused)."""
    clusters: Required[pulumi.Input[Sequence[pulumi.Input[MultiClusterClusterArgs]]]]
    """The clusters (at least two); each reads every other."""
    kubeconfigs: Required[pulumi.Input[Mapping[str, pulumi.Input[str]]]]
    """Cluster name -> a kubeconfig of the cluster (text; Pulumi secrets, kept secret whatever is
    passed), one per cluster of ``clusters``: its API server address and CA go into the kubeconfigs
    its peers read it with (each with its own token, read back from the cluster), so it must hold
    the address peers reach, not ``127.0.0.1``. Apart from ``clusters`` because a secret inside a
    list makes the whole list a secret Output on its way from another language (pulumi 3.272.0
    ``pulumi/runtime/rpc.py`` ``deserialize_property`` lifts a nested secret to the property), and
    the clusters' names, networks and addresses decide what is rendered."""
    trust_domain: pulumi.Input[str]
    """The trust domain every cluster's control plane shares (one root of trust). Linkerd: the
    ``multicluster.linkerd.io/trust-domain`` of the credentials. Default: ``cluster.local``."""
    data_plane: pulumi.Input[str]
    """Istio only: ``sidecar`` (default) or ``ambient`` (exported Services then carry
    ``istio.io/global: "true"``)."""
    exported_services: pulumi.Input[Sequence[pulumi.Input[ExportedServiceArgs]]]
    """Services the other clusters may discover: Linkerd ``mirror.linkerd.io/exported`` (``true``
    through gateways across networks, ``remote-discovery`` on one network), Istio ambient
    ``istio.io/global``. Istio sidecar mode discovers every Service of every cluster: refused there.
    Default: none."""
    mesh_name: pulumi.Input[str]
    """The ownership label ``mesh-components.io/mesh`` of every object (DNS label). Default: ``mesh``."""


FIELDS = {
    **{k: v for k, v in standalone.MESH_FIELDS.items() if not k.startswith(("mesh.clusters", "mesh.services"))},
    "mesh.clusters": "clusters",
    "mesh.services": "exportedServices",
}
"""Stack path -> MultiClusterLinks field (:func:`standalone.repath`); ``mesh.clusters[i].*`` keep
their index (the fields of a cluster are ours, in camelCase, with the stack's)."""

PLACEHOLDER_PORTS = [{"port": 80}]
"""The stack requires a port per service; the export patches read none (``multicluster.export_patches``
sets labels only)."""

PLACEHOLDER_KUBECONFIG_ENV = "MESH_COMPONENTS_MULTICLUSTER_KUBECONFIG"
"""The stack requires a kubeconfig source per cluster of a multi-cluster mesh; the render reads
none (the kubeconfigs are deploy-time slots filled from ``clusters[].kubeconfig``), so the spec
names this variable, which nothing reads."""

PLACEHOLDER_EAST_WEST = ["192.0.2.1"]
"""Istio ambient across networks: the stack requires static east-west addresses for the egress
fences of application namespaces (``egress.ambient_egress_fences``), which this component does not
register; the remote secrets read no address (``multicluster.istio_objects``), so a cluster given
none renders with this TEST-NET-1 address (RFC 5737), never registered anywhere."""

REQUIREMENTS = {
    "order": ("the control planes (and for Linkerd the linkerd-multicluster extension, which defines the Link CRD and "
              "creates the remote-access accounts) are installed before this component, or are in its "
              "opts.depends_on: every object and every read here waits for those"),
    "istio": ("every cluster runs istiod with the same meshID and trust domain {trust_domain}, its "
              "global.multiCluster.clusterName set to the name given here ({clusters}: istiod keys a remote secret's "
              "kubeconfig by that name and ignores one keyed by its own, istio 1.30.3 "
              "pkg/kube/multicluster/secretcontroller.go:432-434) and its own network in global.network; in "
              "namespace istio-system (global.istioNamespace: istiod reads remote secrets in its own namespace, "
              "secretcontroller.go:152-154); with the reader RBAC of the base and istiod charts "
              "(istio-reader-service-account and its ClusterRole: enableReaderRBAC, the default), which lets each peer's "
              "token read every Secret of the cluster, as istioctl create-remote-secret does; one root of trust signs "
              "every cluster's CA (https://istio.io/latest/docs/setup/install/multicluster/before-you-begin/)"),
    "istio-ambient": ("ambient across clusters: istiod runs with AMBIENT_ENABLE_MULTI_NETWORK=true (default false, "
                      "istio 1.30.3 pilot/pkg/features/ambient.go:65; without it remote clusters never reach the ambient "
                      "index and cross-cluster calls fail), meshConfig.serviceScopeConfigs maps the label istio.io/global "
                      "\"true\" to GLOBAL (the ambient profile's, manifests/charts/istio-control/istio-discovery/files/"
                      "profile-ambient.yaml:10-16; a serviceScopeConfigs of your own replaces it), and ztunnel's "
                      "multiCluster.clusterName and network are the names given here"),
    "istio-networks": ("clusters on different networks ({networks}) reach each other through an east-west gateway in "
                       "each cluster exposing its services (sidecar: https://istio.io/latest/docs/setup/install/"
                       "multicluster/multi-primary_multi-network/ ; ambient: a Gateway of class istio-east-west, "
                       "https://istio.io/latest/docs/ambient/install/multicluster/multi-primary_multi-network/): install "
                       "it with the control plane; this component does not"),
    "linkerd": ("every cluster runs Linkerd with trust domain {trust_domain}, clusterDomain cluster.local and trust "
                "anchors from one root, and the linkerd-multicluster extension with the values of "
                "linkerd_multicluster_values (a service mirror and a remote-access service account per peer, whose "
                "token Secret linkerd-multicluster/<account>-token peers read: linkerd2 edge-26.8.3 multicluster/charts/"
                "linkerd-multicluster/templates/remote-access-service-mirror-rbac.yaml:53-64)"),
    "linkerd-gateway": ("across networks ({networks}) the Links dial each peer's linkerd-gateway, a LoadBalancer Service "
                        "(gateway.serviceType, the chart default) on ports 4143 and 4191, and a mirrored "
                        "Service's callers reach it as the gateway's identity, not their own: an authorization policy "
                        "of an exported Service must admit the gateway's identity for remote callers, which admits "
                        "every remote caller alike"),
    "linkerd-rotation": ("Linkerd reads a cluster's credentials when they appear, not when they change (the destination "
                         "controller's cluster store handles add and delete only, controller/api/destination/watcher/"
                         "cluster_store.go:113-165; the service mirror reloads them on a Link update): after a change of "
                         "a kubeconfig or token here, restart linkerd-destination and the service mirrors"),
    "exported": ("the exported Services exist in the clusters named ({services}): each is patched with its export label "
                 "only, never created"),
}
"""What the component assumes of the existing meshes and cannot check at construction (``requirements``)."""


@dataclasses.dataclass(frozen=True)
class MultiClusterLinksPlan:
    """What :class:`MultiClusterLinks` registers, computed before anything is: the rendered
    ``states`` of the equivalent stack (each cluster's ``multicluster`` concern is registered),
    ``spec``, the kubeconfig input, context and provider per cluster, and ``outputs`` (plain
    values, by output name)."""

    spec: MeshSpec
    states: dict
    objects: dict
    providers: dict
    kubeconfigs: dict
    outputs: dict


def _cluster_problems(clusters: Any) -> tuple[list[dict], dict, list[Problem]]:
    """``clusters`` (args) -> ``(stack clusters, providers by name, problems)``."""
    known = dict(MultiClusterClusterArgs.__annotations__)
    out, providers, problems = [], {}, []
    if clusters is None:
        return out, providers, [("clusters", "required; give at least two clusters, each with name and provider")]
    if is_output(clusters) or not isinstance(clusters, (list, tuple)):
        return out, providers, [("clusters", "expected a list of clusters known when the component is constructed "
                                             "(name, provider; no secret inside: kubeconfigs go in kubeconfigs)")]
    if len(clusters) < 2:
        problems.append(("clusters", f"a multi-cluster mesh needs at least two clusters, got {len(clusters)}"))
    for i, c in enumerate(clusters):
        path = f"clusters[{i}]"
        if not isinstance(c, Mapping):
            problems.append((path, "expected a mapping with name and provider"))
            continue
        problems += [(f"{path}.{k}", m) for k, m in unknown_inputs(c, known)]
        c = from_schema_keys(c, known)
        for key in ("name", "provider"):
            if c.get(key) is None:
                problems.append((f"{path}.{schema_name(key)}", "required"))
        name = c.get("name")
        problems += standalone.unknown_values({k: c.get(k) for k in ("name", "network", "context",
                                                                      "east_west_addresses") if k in c}, path)
        provider = c.get("provider")
        if provider is not None and not isinstance(provider, pulumi.ProviderResource):
            problems.append((f"{path}.provider", f"expected the cluster's kubernetes Provider, got "
                                                 f"{type(provider).__name__}"))
        cluster: dict = {"name": name, "cloud": "onprem", "region": "standalone",
                         "kubeconfig": {"env": PLACEHOLDER_KUBECONFIG_ENV,
                                        **({"context": c["context"]} if c.get("context") is not None else {})}}
        if c.get("network") is not None:
            cluster["network"] = c["network"]
        if c.get("east_west_addresses") is not None:
            cluster["eastWestGateway"] = {"addresses": c["east_west_addresses"]}
        out.append(cluster)
        if isinstance(name, str):
            if name in providers:
                problems.append((f"{path}.name", f"cluster {name!r} is given twice; each cluster once"))
            providers[name] = provider
    return out, providers, problems


def _kubeconfig_problems(kubeconfigs: Any, names: Sequence[str]) -> list[Problem]:
    """``kubeconfigs`` must give one kubeconfig text per cluster and no other (checked when it is a
    plain mapping; an Output, e.g. a secret mapping from another language, is checked at deploy
    time, :class:`ClusterOutputs`)."""
    if kubeconfigs is None:
        return [("kubeconfigs", f"required; give a kubeconfig per cluster ({', '.join(names)}) as cluster name -> text")]
    if is_output(kubeconfigs):
        return []
    if not isinstance(kubeconfigs, Mapping):
        return [("kubeconfigs", f"expected a mapping of cluster name -> kubeconfig text, got {type(kubeconfigs).__name__}")]
    out = [(f"kubeconfigs.{n}", "required: the cluster's kubeconfig text") for n in names if n not in kubeconfigs]
    out += [(f"kubeconfigs.{k}", f"no cluster {k!r} in clusters ({', '.join(names)}); remove it or fix its name")
            for k in sorted(kubeconfigs, key=str) if k not in names]
    out += [(f"kubeconfigs.{k}", f"expected the kubeconfig text, got {type(v).__name__}")
            for k, v in sorted(kubeconfigs.items(), key=lambda kv: str(kv[0]))
            if k in names and not (isinstance(v, str) or is_output(v))]
    return out


def stack_mesh(name: str, args: Mapping[str, Any]) -> tuple[dict, dict, dict, list[Problem]]:
    """``args`` (Python or camelCase keys) -> ``(the stack-shaped mesh: mapping, providers by cluster,
    kubeconfig inputs by cluster, problems found before the spec loader)``."""
    if not isinstance(args, Mapping):
        raise ArgsError([(f"{COMPONENT} {name}", f"args must be a mapping of MultiClusterLinksArgs fields, got "
                                                 f"{type(args).__name__}")])
    known = dict(MultiClusterLinksArgs.__annotations__)
    problems: list[Problem] = list(unknown_inputs(args, known))
    plain = {k: v for k, v in from_schema_keys(args, known).items() if k in known}
    clusters, providers, cluster_problems = _cluster_problems(plain.pop("clusters", None))
    problems += cluster_problems
    kubeconfigs = plain.pop("kubeconfigs", None)
    problems += _kubeconfig_problems(kubeconfigs, [c["name"] for c in clusters if isinstance(c.get("name"), str)])
    problems += standalone.unknown_values(standalone.stack_keys(plain, MultiClusterLinksArgs), "")
    a = standalone.stack_keys(plain, MultiClusterLinksArgs)
    kind = a.get("mesh")
    if kind == "osm":
        problems.append(("mesh", "OSM is single-cluster (v1.2.4 has no multi-cluster support): give istio or "
                                 "linkerd"))
    backend: dict = {"type": kind}
    if a.get("dataPlane") is not None:
        if kind != "istio":
            problems.append(("dataPlane", f"applies to mesh istio only, not {kind!r}; remove it"))
        backend["istio"] = {"dataPlane": a["dataPlane"]}
    ambient = kind == "istio" and a.get("dataPlane") == "ambient"
    if ambient and len({c.get("network") for c in clusters}) > 1:
        for c in clusters:
            c.setdefault("eastWestGateway", {"addresses": PLACEHOLDER_EAST_WEST})
    mesh: dict = {"name": a.get("meshName", "mesh"), "backend": backend, "clusters": clusters}
    if a.get("trustDomain") is not None:
        mesh["trustDomain"] = a["trustDomain"]
    exported = a.get("exportedServices")
    if exported is not None:
        if kind == "istio" and not ambient and exported:
            problems.append(("exportedServices", "Istio sidecar mode discovers every Service of every cluster from the "
                                                 "remote secrets (no export label); remove it, or keep a Service local "
                                                 "with meshConfig.serviceSettings clusterLocal"))
        elif isinstance(exported, (list, tuple)):
            svc_known = dict(ExportedServiceArgs.__annotations__)
            services = []
            for j, s in enumerate(exported):
                if isinstance(s, Mapping):
                    problems += [(f"exportedServices[{j}].{k}", m) for k, m in unknown_inputs(s, svc_known)]
                    services.append({**s, "ports": PLACEHOLDER_PORTS})
                else:
                    services.append(s)
            mesh["services"] = services
        else:
            problems.append(("exportedServices", "expected a list of {name, namespace, clusters}"))
    return mesh, providers, kubeconfigs, problems


def _export_patches(spec: MeshSpec, cluster: str) -> list[dict]:
    """The export label patches of ``cluster``: every exported service running there (Linkerd's
    render exports only what another cluster calls in the stack's access rules; here the user names
    them)."""
    if spec.backend.type == "linkerd":
        value = "true" if mc.linkerd_gateway_mode(spec) else "remote-discovery"
        return mc.export_patches(spec, cluster, {mc.EXPORT_LABEL: value})
    return []  # Istio ambient: in the concern already (multicluster.istio_objects)


def plan(name: str, args: Mapping[str, Any]) -> MultiClusterLinksPlan:
    """Validate ``args`` and render them: the :class:`MultiClusterLinksPlan`. Pure (no Pulumi calls).

    Raises :class:`ArgsError` (``"MultiClusterLinks <name>: <camelField>: ..."``: bad args, the stack
    file's checks re-pathed, every problem at once) before anything is registered."""
    mesh, providers, kubeconfigs, problems = stack_mesh(name, args)
    standalone.raise_all(COMPONENT, name, problems, mesh, FIELDS, base_dir=os.getcwd())
    loaded, states = standalone.render(COMPONENT, name, mesh, FIELDS, base_dir=os.getcwd())
    spec = loaded.spec
    objects = {c: list(states[c].concerns["multicluster"]) + _export_patches(spec, c) for c in spec.cluster_names()}
    networks = sorted({spec.network_of(c) for c in spec.clusters})
    exported = sorted(f"{c}/{p['metadata']['namespace']}/{p['metadata']['name']}"
                      for c, objs in objects.items() for p in objs if p["kind"] == "Service")
    kind = spec.backend.type
    requirements = [REQUIREMENTS["order"], REQUIREMENTS[kind].format(trust_domain=spec.trust_domain,
                                                                     clusters=", ".join(spec.cluster_names()))]
    if kind == "istio" and spec.backend.istio.data_plane == "ambient":
        requirements.append(REQUIREMENTS["istio-ambient"])
    if kind == "linkerd":
        requirements.append(REQUIREMENTS["linkerd-rotation"])
    if len(networks) > 1:
        requirements.append(REQUIREMENTS["istio-networks" if kind == "istio" else "linkerd-gateway"].format(
            networks=", ".join(networks)))
    if exported:
        requirements.append(REQUIREMENTS["exported"].format(services=", ".join(exported)))
    outputs = {
        "peers": {c: sorted(t for r, t in mc.pairs(spec) if r == c) for c in spec.cluster_names()},
        "remote_secrets": sorted(f"{c}/{o['metadata']['namespace']}/{o['metadata']['name']}"
                                 for c, objs in objects.items() for o in objs
                                 if o["kind"] == "Secret" and any(True for _ in iter_slots(o))),
        "links": sorted(f"{c}/{o['metadata']['namespace']}/{o['metadata']['name']}"
                        for c, objs in objects.items() for o in objs if o["kind"] == "Link"),
        "exported_services": exported,
        "requirements": requirements,
    }
    if kind == "linkerd":
        outputs["linkerd_multicluster_values"] = {
            c: next(r.values for r in states[c].releases if r.name == "linkerd-multicluster")
            for c in spec.cluster_names()}
    return MultiClusterLinksPlan(spec=spec, states=states, objects=objects, providers=providers,
                                 kubeconfigs=kubeconfigs, outputs=outputs)


class MultiClusterLinks(pulumi.ComponentResource):
    """Multi-cluster wiring between clusters of one mesh (type ``mesh:index:MultiClusterLinks``):
    Istio remote secrets (``istio-remote-secret-<peer>``, with the ``istio-reader-token-<reader>``
    token Secrets they read each peer with) or Linkerd ``cluster-credentials-<peer>`` Secrets and
    ``Link``s, and the export labels of the Services other clusters discover. Used alone: every pair
    of ``clusters``, each cluster's objects on its own provider; the tokens are registered before
    the kubeconfigs that read them back (``Secret.get`` on the target's provider), and those stay
    Pulumi secrets. ``ServiceMesh`` composes one per cluster (:meth:`_of_service_mesh`)."""

    TYPE = "mesh:index:MultiClusterLinks"

    peers: pulumi.Output[dict[str, list[str]]]
    """Cluster -> the clusters it reads (every other one)."""
    remote_secrets: pulumi.Output[list[str]]
    """``cluster/namespace/name`` of every Secret holding a kubeconfig for a peer (values secret, never output)."""
    links: pulumi.Output[list[str]]
    """Linkerd: ``cluster/linkerd-multicluster/<peer>`` of every ``Link``; empty for Istio."""
    exported_services: pulumi.Output[list[str]]
    """``cluster/namespace/name`` of every Service patched with an export label."""
    linkerd_multicluster_values: Optional[pulumi.Output[dict[str, Any]]]
    """Linkerd: cluster -> the ``linkerd-multicluster`` chart values its Links need (install or
    upgrade the extension with them)."""
    requirements: pulumi.Output[list[str]]
    """What the wiring assumes of the existing meshes and this component cannot check, one sentence each."""

    def __init__(self, name: str, args: MultiClusterLinksArgs, opts: Optional[pulumi.ResourceOptions] = None):
        p = plan(name, args)  # raises before anything is registered
        pulumi.ComponentResource.__init__(self, self.TYPE, name, None, opts)
        outputs = ClusterOutputs(name, p.spec, p.providers, p.kubeconfigs, parent=self)
        # children do not wait for the component's own depends_on (pulumi 3.272.0 pulumi/resource.py
        # passes only protect and providers to children): every object and read waits for it here
        after = depends_on_of(opts)
        credentials: dict[str, list] = {}
        links: dict[str, list] = {}
        made: list = []
        for c in p.spec.cluster_names():  # first what needs no other cluster: the tokens peers read
            prefix, provider = f"{name}-{c}", p.providers[c]
            local = [o for o in p.objects[c] if not any(True for _ in iter_slots(o)) and o["kind"] not in ("Service", "Link")]
            credentials[c] = [o for o in p.objects[c] if any(True for _ in iter_slots(o)) and o["kind"] != "Link"]
            links[c] = [o for o in p.objects[c] if o["kind"] == "Link"]
            regs = register_objects(prefix, local, outputs, parent=self, provider=provider, namespaces={},
                                    after=after, force_namespaces=False)
            outputs.ready[c] = regs + [d for d in after if isinstance(d, pulumi.CustomResource)]
            made += regs
            for patch in (o for o in p.objects[c] if o["kind"] == "Service"):
                # an application Service is patched, never created: the patch waits for a read of it
                existing = read_existing(prefix, patch, ResourceOptions(parent=self, provider=provider), after=after)
                made += register_objects(prefix, [patch], outputs, parent=self, provider=provider, namespaces={},
                                         after=[existing, *after], force_namespaces=False)
        for c in p.spec.cluster_names():
            # the credentials, then each Link after them, as link-gen writes them (linkerd2 edge-26.8.3
            # multicluster/cmd/link-gen.go:109-113): a Link without its Secret fails the mirror's first start
            regs = register_objects(f"{name}-{c}", credentials[c], outputs, parent=self, provider=p.providers[c],
                                    namespaces={}, after=after, force_namespaces=False)
            made += regs + register_objects(f"{name}-{c}", links[c], outputs, parent=self, provider=p.providers[c],
                                            namespaces={}, after=[*after, *regs], force_namespaces=False)
        self.resources = made
        self.plan = p
        for key, value in p.outputs.items():
            setattr(self, key, pulumi.Output.from_input(value))
        self.register_outputs(p.outputs)

    @classmethod
    def _of_service_mesh(cls, name: str, state: ClusterState, lookup: Lookup, provider: k8s.Provider,
                         namespaces: dict, after: Sequence[pulumi.Resource],
                         opts: Optional[ResourceOptions] = None) -> "MultiClusterLinks":
        """One cluster's wiring as ``ServiceMesh`` composes it, registered after every cluster's
        control plane, in two phases: this registers what needs no other cluster (the token
        Secrets other clusters read this one with, exported-Service label patches), :meth:`link`
        what reads other clusters (remote secrets, Linkerd credentials and Links). Outputs:
        ``peers`` (the clusters this one reads), as releases before the standalone component had."""
        self = cls.__new__(cls)
        pulumi.ComponentResource.__init__(self, cls.TYPE, name, None, opts)
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
        return self

    def link(self, pending: "Sequence[str]" = ()) -> "MultiClusterLinks":
        """Register the objects that carry other clusters' deploy-time values; then the outputs.
        ``pending``: peers not ready yet (a fleet cluster stack whose peer's stack has not run,
        ``core.fleet.peer_plan``): the objects reading them are left out this run, and so missing
        from ``peers``, until a later run finds them."""
        from ..core.fleet import peers_of

        name, lookup, provider, namespaces, after = self._args
        later = [o for o in self._later if not (peers_of(o) & set(pending))]
        self.resources = self.local + register_objects(name, later, lookup, parent=self, provider=provider,
                                                       namespaces=namespaces, after=after, previous=self._previous)
        if pending:
            self.peers = [p for p in self.peers if p not in set(pending)]
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
            return mc.reader_kubeconfig(target, server, ca_data or token_ca, value,
                                        mc.tls_server_name(kubeconfig, context))
        return Output.secret(Output.all(self._kubeconfig(target), token.data).apply(build))

    def _kubeconfig(self, target: str) -> Any:
        """``target``'s kubeconfig input: from the mapping given, or, when the mapping itself is an
        Output (a secret mapping sent by another language), from its value at deploy time."""
        if isinstance(self.kubeconfigs, Mapping):
            return self.kubeconfigs[target]

        def pick(kubeconfigs):
            if not isinstance(kubeconfigs, Mapping) or target not in kubeconfigs:
                raise pulumi.RunError(f"kubeconfigs: no kubeconfig for cluster {target!r}: give one per cluster")
            return kubeconfigs[target]
        return Output.from_input(self.kubeconfigs).apply(pick)

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
