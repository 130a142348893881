"""Fleet mode as Pulumi programs: the root stack (:class:`MeshFleetRoot`) and a cluster stack
(:func:`fleet_cluster`), from one spec (:mod:`mesh_components.spec.fleet`; the contract of their
outputs is :mod:`mesh_components.core.fleet`).

The root registers the CA (one root of trust, one intermediate per cluster) and exports the
registry; a cluster stack registers its own cluster's parts exactly as ``ServiceMesh`` does, under
the same names but as the stack's own resources (where ``pulumi state move`` puts the parts of a
single stack: :mod:`mesh_components.core.fleet_migration`), and reads the CA and its peers'
credentials from their stacks' outputs.

Outputs of other stacks are read with the engine's builtin invoke ``pulumi:pulumi:readStackOutputs``,
the function a ``StackReference`` is answered from (pulumi/pulumi v3.259.0
``pkg/resource/deploy/builtins.go`` lines 333-419; the SDK sends builtin invokes with no provider,
as ``Resource.get`` of a component does, pulumi 3.272.0 ``pulumi/runtime/resource.py:609``). Unlike a
``StackReference`` resource it stores nothing in the reading stack's state (a cluster stack's state
never holds another cluster's intermediate or credentials), a stack that does not exist yet is an
error the program catches (a peer skipped, not a failed update), and the values are there while
the program runs, so a stack that must not run (ahead of the root's rotation stage) stops before it
registers anything. Secret outputs (``secretOutputNames``) are wrapped in ``Output.secret`` again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from ..core import fleet as fleet_core
from ..core import multicluster as mc
from ..core.egress import allowed_egress
from ..core.render import render_mesh
from ..core.slots import Slot
from ..spec import LoadedMesh
from ..spec.fleet import cluster_stack_problems
from .certificate_authority import MeshCertificateAuthority
from .lookups import config_secret_lookup
from .multicluster_links import ClusterOutputs, MultiClusterLinks
from .providers import kubeconfig_input
from .service_mesh import cluster_summary, register_cluster_parts

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"


@dataclass(frozen=True)
class StackOutputs:
    """Another stack's outputs as read at program time: ``values`` (plain) and ``secret_names``
    (the outputs the stack exported as secrets)."""

    stack: str
    values: dict
    secret_names: frozenset

    def output(self, key: str, default: Any = None) -> Any:
        """Output ``key`` as an Output, secret where the stack's was."""
        value = self.values.get(key, default)
        return Output.secret(value) if key in self.secret_names else Output.from_input(value)


def _builtin_invoke(token: str, args: dict) -> tuple[dict | None, str | None]:
    """``(result, None)`` of the engine's builtin function ``token``, or ``(None, reason)``.

    The invoke goes to the resource monitor directly, synchronously, as ``Resource.get`` of a
    component sends ``pulumi:pulumi:getResource`` (pulumi 3.272.0 ``pulumi/runtime/resource.py``
    605-621): ``pulumi.runtime.invoke`` would record the failed call in the SDK's RPC manager, which
    fails the whole program at its end however the error was caught (``pulumi/runtime/rpc_manager.py``
    ``do_rpc`` lines 67-82, ``stack.py`` ``wait_for_rpcs``); the engine itself only answers the call
    with the error (pulumi/pulumi v3.259.0 ``pkg/resource/deploy/source_eval.go`` ``Invoke``: "invocation
    of %v returned an error")."""
    from pulumi.runtime import rpc, settings
    from pulumi.runtime.proto import resource_pb2
    from pulumi.runtime.sync_await import _sync_await

    request = resource_pb2.ResourceInvokeRequest(tok=token, args=_sync_await(rpc.serialize_properties(args, {})),
                                                 provider="", version="", acceptResources=False)
    try:
        response = settings.get_monitor().Invoke(request)
    except Exception as e:  # noqa: BLE001 - grpc.RpcError from the engine, any exception from a mock
        text = e.details() if hasattr(e, "details") and callable(e.details) else str(e)
        return None, ((text or "").strip().splitlines() or [type(e).__name__])[0]
    if response.failures:
        return None, "; ".join(f"{f.property}: {f.reason}" for f in response.failures)
    value, _ = rpc.deserialize_properties_unwrap_secrets(getattr(response, "return"))
    return (value if isinstance(value, dict) else {}), None


def read_stack_outputs(stack: str) -> tuple[StackOutputs | None, str | None]:
    """``(outputs, None)``, or ``(None, reason)`` when ``stack`` cannot be read (it does not exist
    yet, no access): the engine's error, first line (:func:`_builtin_invoke`)."""
    value, why = _builtin_invoke(READ_STACK_OUTPUTS, {"name": stack})
    if value is None:
        return None, why
    outputs = value.get("outputs") if isinstance(value.get("outputs"), Mapping) else {}
    secret = frozenset(value.get("secretOutputNames") or ())
    return StackOutputs(stack, dict(outputs), secret), None


READ_STACK_RESOURCES = "pulumi:pulumi:readStackResourceOutputs"
CLUSTER_PART_TYPES = frozenset({
    "mesh:index:IstioControlPlane", "mesh:index:LinkerdControlPlane", "mesh:index:OsmControlPlane",
    "mesh:index:SmiPolicies", "mesh:index:EgressRules", "mesh:index:MeshGateway", "mesh:index:MeshTelemetry",
    "mesh:index:MultiClusterLinks"})
"""The types of the per-cluster parts (``service_mesh.register_cluster_parts``)."""


def held_cluster_parts(stack: str) -> list[str]:
    """URNs of per-cluster parts (:data:`CLUSTER_PART_TYPES`) that ``stack``'s stored state holds,
    read with the builtin ``pulumi:pulumi:readStackResourceOutputs`` (URN -> {type, outputs} of
    every resource not being deleted: pulumi/pulumi v3.259.0 ``pkg/backend/backend.go``
    ``GetStackResourceOutputs`` lines 429-459); none for a stack that cannot be read."""
    value, _ = _builtin_invoke(READ_STACK_RESOURCES, {"stackName": stack})
    outputs = (value or {}).get("outputs")
    if not isinstance(outputs, Mapping):
        return []
    return sorted(u for u, r in outputs.items() if isinstance(r, Mapping) and r.get("type") in CLUSTER_PART_TYPES)


def _fail(problems: list) -> None:
    raise pulumi.RunError("the fleet stack cannot run now:\n" + "\n".join(f"{p}: {m}" for p, m in problems))


class MeshFleetRoot(pulumi.ComponentResource):
    """The root stack of a fleet (type ``mesh:index:MeshFleetRoot``): the mesh-wide CA, the registry.

    Registers ``MeshCertificateAuthority`` ``<name>-ca`` exactly as ``ServiceMesh`` does, and is aliased
    from the ``ServiceMesh`` type, so a single stack switched to the root keeps its CA, its root of
    trust, in place (the engine carries the alias to every child, pulumi/pulumi
    ``pkg/resource/deploy/step_generator.go`` ``generateAliases``/``inheritedChildAlias``). Renders
    the whole fleet once, to refuse what only the whole mesh shows, registering none of it.

    Outputs (:data:`mesh_components.core.fleet.ROOT_OUTPUTS`): ``registry``, ``ca_rotation``,
    ``trust_bundle_pem``, ``intermediates`` (secret), ``root_fingerprint``, ``ca_stage``, ``mesh``,
    plus ``allowed_egress``.
    """

    TYPE = "mesh:index:MeshFleetRoot"

    def __init__(self, name: str, mesh: LoadedMesh, *, ca_secrets: Mapping[str, Any] | None = None,
                 opts: ResourceOptions | None = None):
        spec, fleet = mesh.spec, mesh.fleet
        if problems := cluster_stack_problems(spec.cluster_names(), fleet):
            _fail(problems)
        # a single stack switched to the root before its clusters moved: this update would delete
        # every object of every cluster (the root registers none of them)
        if held := held_cluster_parts(pulumi.get_stack()):
            _fail([("config.service-mesh:fleet.role", (
                f"this stack still holds {len(held)} per-cluster part(s) of the single stack (e.g. {held[0]}); as "
                f"the root it would delete them and every object in them: move them to the cluster stacks first "
                f"(`pulumi stack export --file s.json; python -m mesh_components fleet migrate "
                f"{pulumi.get_stack()} --state s.json`), or remove role root"))])
        render_mesh(mesh, clusters=spec.cluster_names())  # raises for the whole fleet before anything registers
        former = [a.name for a in (opts.aliases if opts and opts.aliases else []) if isinstance(a, pulumi.Alias)
                  and isinstance(a.name, str) and a.name]
        aliases = [pulumi.Alias(type_="mesh:index:ServiceMesh")] + [
            pulumi.Alias(type_="mesh:index:ServiceMesh", name=n) for n in former]
        super().__init__(self.TYPE, name, None, ResourceOptions.merge(opts, ResourceOptions(aliases=aliases)))
        self.ca = MeshCertificateAuthority._of_service_mesh(f"{name}-ca", spec.ca_config(), dict(ca_secrets or {}),
                                                            self, name, former, opts=ResourceOptions(parent=self))
        a = self.ca.authority
        clusters = spec.cluster_names()
        self.outputs = {
            "registry": fleet_core.registry(spec, fleet),
            "ca_rotation": fleet_core.spec_rotation(spec),
            "trust_bundle_pem": a.trust_bundle_pem,
            "intermediates": Output.secret(a.intermediates.apply(
                lambda d: {c: {k: ((d or {}).get(c) or {}).get(k) for k in ("cert_pem", "key_pem", "chain_pem")}
                           for c in clusters})),
            "root_fingerprint": self.ca.root_fingerprint,
            "ca_stage": self.ca.stage,
            "mesh": spec.name,
            "allowed_egress": [list(row) for row in allowed_egress(spec)],
        }
        self.register_outputs(self.outputs)


@dataclass
class FleetCluster:
    """What :func:`fleet_cluster` registered: the ``provider``, the ``parts`` (as ``ServiceMesh``'s
    per cluster), the peers linked (``peers``) and skipped (``pending``: peer -> why), and the stack
    ``outputs`` (:data:`mesh_components.core.fleet.CLUSTER_OUTPUTS` plus ``summary``)."""

    provider: k8s.Provider
    parts: dict
    peers: list
    pending: dict
    outputs: dict


def fleet_lookup(root: StackOutputs, peers: Mapping[str, StackOutputs], me: str) -> Callable[[Slot], Any]:
    """Deploy-time values of a cluster stack: ``ca`` slots from the root's outputs (the key secret,
    certificates plain, as ``lookups.ca_lookup`` gives them), ``cluster`` slots of a peer from the
    peer's outputs (its ``reader_kubeconfigs[me]``, secret; its ``gateway_address``)."""
    inter = Output.secret(root.values["intermediates"][me])

    def lookup(slot: Slot):
        if slot.source == "ca":
            if slot.cluster is None:
                return root.output(slot.key)
            value = inter.apply(lambda i, k=slot.key: i[k])
            return Output.secret(value) if slot.secret else Output.unsecret(value)
        if slot.source == "cluster" and slot.cluster in peers:
            peer = peers[slot.cluster]
            reader = mc.reader_of(slot)
            if reader is not None:
                return Output.secret(peer.values["reader_kubeconfigs"][reader])
            if slot.key == mc.GATEWAY_KEY:
                return peer.output("gateway_address")
        raise KeyError(f"no producer for deploy-time value {slot.placeholder()} in the stack of {me}")
    return lookup


def fleet_cluster(name: str, mesh: LoadedMesh, *, stack: str,
                  read_outputs: Callable[[str], tuple[StackOutputs | None, str | None]] = read_stack_outputs
                  ) -> FleetCluster:
    """Register the cluster stack of ``mesh.fleet.cluster`` (``stack``: this stack's name).

    Before anything is registered, refuses (``pulumi.RunError`` with ``path: message`` lines naming
    the stack to run first) a root that cannot be read, a cluster not in the root's registry or
    without an intermediate, and a spec ahead of the root's rotation stage
    (:func:`mesh_components.core.fleet.rotation_problems`). Then registers, as the stack's own
    resources: the provider ``<name>-<cluster>-k8s`` (this cluster's kubeconfig only), the parts of
    ``ServiceMesh`` for this cluster, the multi-cluster wiring to each ready peer (pending ones are
    skipped with a warning, :func:`mesh_components.core.fleet.peer_plan`), and the reads of the
    tokens its readers' kubeconfigs carry (``<name>-<cluster>-token-for-<reader>``), exported as
    ``reader_kubeconfigs`` (secret)."""
    spec, fleet = mesh.spec, mesh.fleet
    me = fleet.cluster
    root, why = read_outputs(fleet.root_stack)
    if root is None:
        _fail([("config.service-mesh:fleet.root", f"cannot read the root stack {fleet.root_stack} ({why}): "
                                                  f"run `pulumi up --stack {fleet.root_stack}` first")])
    problems = fleet_core.registry_problems(root.values, me, fleet.root_stack)
    problems += fleet_core.rotation_problems(spec, root.values.get("ca_rotation"), fleet.root_stack, stack)
    if not problems:
        problems += fleet_core.intermediate_problems(root.values, me, fleet.root_stack)
    if problems:
        _fail(problems)
    st = render_mesh(mesh, clusters=[me])[me]
    read: dict[str, tuple[StackOutputs | None, str | None]] = {}

    def values_of(s: str):
        if s not in read:
            read[s] = read_outputs(s)
        outs, reason = read[s]
        return (outs.values if outs is not None else None), reason
    plan = fleet_core.peer_plan(spec, me, root.values["registry"], values_of)
    peers = {p: read[root.values["registry"][p]["stack"]][0] for p in plan.ready}
    for peer, reason in plan.pending.items():
        pulumi.log.warn(f"fleet: peer {peer} skipped this run: {reason}; it is linked on a later run of {stack}")

    cluster = next(c for c in spec.clusters if c.name == me)
    kubeconfig = kubeconfig_input(cluster.kubeconfig, me, {})
    provider = k8s.Provider(f"{name}-{me}-k8s", kubeconfig=Output.secret(kubeconfig) if kubeconfig is not None else None,
                            context=cluster.kubeconfig.context if cluster.kubeconfig and cluster.kubeconfig.context
                            else None, cluster_identifier=me)
    lookup = config_secret_lookup(fleet_lookup(root, peers, me))
    parts = register_cluster_parts(name, spec, st, lookup, provider, parent=None)
    outputs: dict[str, Any] = {"cluster": me, "summary": cluster_summary(spec, me, st, parts)}
    linked: list[str] = []
    if st.concerns["multicluster"]:
        links = MultiClusterLinks._of_service_mesh(
            f"{name}-{me}-multicluster", st, lookup, provider, parts["control_plane"].namespaces,
            parts["control_plane"].crds, opts=ResourceOptions(providers=[provider]))
        own = ClusterOutputs(name, spec, {me: provider}, {me: kubeconfig}, parent=None)
        own.ready[me] = parts["control_plane"].crds + links.local
        parts["multicluster"] = links.link(pending=list(plan.pending))
        linked = list(links.peers)
        readers = fleet_core.readers_of(spec, me)
        if readers:
            outputs["reader_kubeconfigs"] = Output.secret(Output.all(**{
                r: own(mc.reader_kubeconfig_slot(me, r)) for r in readers}))
        if fleet_core.needs_gateway_address(spec, me):
            outputs["gateway_address"] = own(mc.gateway_address_slot(me))
    outputs.update({
        "trust_bundle_fingerprint": fleet_core.fingerprint(root.values.get("trust_bundle_pem")),
        "ca_rotation": fleet_core.spec_rotation(spec),
        "peers": linked,
        "pending_peers": dict(plan.pending),
    })
    return FleetCluster(provider, parts, linked, dict(plan.pending), outputs)


def export_all(outputs: Mapping[str, Any], keys: Sequence[str] | None = None) -> None:
    """``pulumi.export`` each of ``outputs`` (``keys`` only, when given), in sorted order."""
    for key in sorted(keys if keys is not None else outputs):
        if key in outputs:
            pulumi.export(key, outputs[key])
