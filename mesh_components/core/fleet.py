"""Fleet mode, the pure part: what the root stack and each cluster stack export, read and check.

The root stack (:mod:`mesh_components.spec.fleet`) owns what is mesh-wide: the CA (root, rotation
stage, one intermediate per cluster) and the cluster registry. Each cluster stack owns its cluster
and reads the root and its peers through their stack outputs. The names of those outputs and the
checks on them live here, so the program, the tests and the driver agree on one contract:

- root: :data:`ROOT_OUTPUTS` (``registry``: cluster -> {stack, network, cloud, region};
  ``ca_rotation``: {generation, stage}; ``trust_bundle_pem``; ``intermediates``: cluster ->
  {cert_pem, key_pem, chain_pem}, one secret output; ``root_fingerprint``; ``ca_stage``; ``mesh``);
- cluster: :data:`CLUSTER_OUTPUTS` (``cluster``; ``reader_kubeconfigs``: reader -> the kubeconfig
  that reader's control plane reads this cluster with, secret; ``gateway_address`` where a peer's
  Link dials one read back at deploy time; ``trust_bundle_fingerprint``; ``ca_rotation``; ``peers``;
  ``pending_peers``).

A stack's outputs are read the way a ``StackReference`` reads them: the engine's builtin
``pulumi:pulumi:readStackOutputs`` (pulumi/pulumi v3.259.0 ``pkg/resource/deploy/builtins.go``
lines 333-419: every output, with ``secretOutputNames`` naming the secret ones), so secrets stay
secret and a stack that does not exist yet is an error the reader can catch and skip
(:func:`peer_plan`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

from ..spec import MeshSpec
from ..spec.errors import Problem
from ..spec.fleet import Fleet
from . import multicluster as mc
from .slots import Slot, iter_slots

ROOT_OUTPUTS = ("registry", "ca_rotation", "trust_bundle_pem", "intermediates", "root_fingerprint", "ca_stage",
                "mesh")
CLUSTER_OUTPUTS = ("cluster", "reader_kubeconfigs", "gateway_address", "trust_bundle_fingerprint", "ca_rotation",
                   "peers", "pending_peers")
SECRET_OUTPUTS = frozenset({"intermediates", "reader_kubeconfigs"})
"""Outputs that hold keys or credentials: exported as Pulumi secrets, read back as secrets."""


_STAGE_OFFSET = {"addNewRoot": -2, "reissueIntermediates": -1, "removeOldRoot": 0, "none": 0}


def rotation_rank(generation: int, stage: str) -> int:
    """The position of ``(generation, stage)`` in the root-rotation sequence of
    :func:`mesh_components.core.ca.check_stage_transition`: ``(g, none|removeOldRoot)`` (one trusted
    root) < ``(g+1, addNewRoot)`` < ``(g+1, reissueIntermediates)`` < ``(g+1, removeOldRoot)`` =
    ``(g+1, none)``. One step per ``pulumi up`` of the root."""
    return 3 * int(generation) + _STAGE_OFFSET[stage]


def spec_rotation(spec: MeshSpec) -> dict:
    """``{generation, stage}`` of the spec's ``ca.rootRotation``."""
    r = spec.ca.root_rotation
    return {"generation": r.generation, "stage": r.stage}


def rotation_problems(spec: MeshSpec, root_rotation: Mapping[str, Any] | None, root_stack: str,
                      cluster_stack: str) -> list[Problem]:
    """A cluster stack whose spec is at a later root-rotation stage than the root stack applied
    (``root_rotation``, the root's ``ca_rotation`` output): stages move from the root outward, since
    the root issues the trust bundle and intermediates a stage's Helm values assume (both roots
    trusted from ``addNewRoot``). Behind the root is fine (the next run catches up)."""
    mine = spec_rotation(spec)
    if not isinstance(root_rotation, Mapping) or root_rotation.get("stage") not in _STAGE_OFFSET:
        return [("mesh.ca.rootRotation", f"the root stack {root_stack} exports no ca_rotation: run "
                                         f"`pulumi up --stack {root_stack}` first")]
    if rotation_rank(mine["generation"], mine["stage"]) > rotation_rank(root_rotation["generation"],
                                                                         root_rotation["stage"]):
        return [("mesh.ca.rootRotation",
                 f"stack {cluster_stack} is at root generation {mine['generation']} stage {mine['stage']}, ahead of "
                 f"the root stack {root_stack} (generation {root_rotation['generation']} stage "
                 f"{root_rotation['stage']}): rotation stages move from the root outward; run "
                 f"`pulumi up --stack {root_stack}` first, then this stack")]
    return []


def registry(spec: MeshSpec, fleet: Fleet) -> dict[str, dict]:
    """The root's ``registry`` output: cluster -> ``{stack, network, cloud, region}``, spec order."""
    return {c.name: {"stack": fleet.stack_of(c.name), "network": spec.network_of(c), "cloud": c.cloud,
                     "region": c.region} for c in spec.clusters}


def readers_of(spec: MeshSpec, target: str) -> list[str]:
    """The clusters whose control planes read ``target`` (:func:`multicluster.pairs`), spec order:
    ``target`` exports a reader kubeconfig for each."""
    return [r for r, t in mc.pairs(spec) if t == target]


def read_by(spec: MeshSpec, reader: str) -> list[str]:
    """The clusters ``reader`` reads (its peers), spec order."""
    return [t for r, t in mc.pairs(spec) if r == reader]


def needs_gateway_address(spec: MeshSpec, cluster: str) -> bool:
    """Whether peers' Links read ``cluster``'s gateway address at deploy time (Linkerd across
    networks with no static ``eastWestGateway.addresses``): then the cluster exports it."""
    return isinstance(mc.gateway_address(spec, cluster), Slot) and spec.backend.type == "linkerd" \
        and mc.linkerd_gateway_mode(spec)


def peers_of(obj: dict) -> set[str]:
    """The peer clusters whose outputs ``obj``'s deploy-time values come from (``cluster`` slots)."""
    return {s.cluster for s in iter_slots(obj) if s.source == "cluster" and s.cluster}


def fingerprint(pem: str | None) -> str | None:
    """sha256 hex of a PEM bundle's text (None for None): a peer compares bundles without the text."""
    return hashlib.sha256(pem.encode()).hexdigest() if isinstance(pem, str) else None


@dataclass(frozen=True)
class PeerPlan:
    """Which peers a cluster stack links now: ``ready`` (cluster -> their outputs) and ``pending``
    (cluster -> why it is skipped this run: not in the root's registry yet, its stack missing or
    without the outputs this cluster needs), both in spec order."""

    ready: dict
    pending: dict


def peer_plan(spec: MeshSpec, me: str, root_registry: Mapping[str, Any],
              read_outputs) -> PeerPlan:
    """For cluster ``me``: each peer it reads (:func:`read_by`) as ready or pending.

    ``read_outputs(stack) -> (outputs dict, None) | (None, reason)`` reads a stack's outputs. A
    peer is ready when the root's ``root_registry`` lists it, its stack has run and it exports
    ``reader_kubeconfigs[me]`` (and ``gateway_address`` where :func:`needs_gateway_address`); else
    pending with the reason: skipped with a warning and picked up on the next run."""
    ready, pending = {}, {}
    for peer in read_by(spec, me):
        entry = root_registry.get(peer) if isinstance(root_registry, Mapping) else None
        if not isinstance(entry, Mapping) or not entry.get("stack"):
            pending[peer] = "not in the root stack's registry yet (run the root stack)"
            continue
        outputs, why = read_outputs(entry["stack"])
        if outputs is None:
            pending[peer] = f"stack {entry['stack']} cannot be read yet ({why})"
            continue
        kubeconfigs = outputs.get("reader_kubeconfigs")
        if not isinstance(kubeconfigs, Mapping) or not kubeconfigs.get(me):
            pending[peer] = f"stack {entry['stack']} exports no reader kubeconfig for {me} yet (run it after this one)"
            continue
        if needs_gateway_address(spec, peer) and not outputs.get("gateway_address"):
            pending[peer] = f"stack {entry['stack']} exports no gateway_address yet"
            continue
        ready[peer] = outputs
    return PeerPlan(ready, pending)


def intermediate_problems(root_outputs: Mapping[str, Any], cluster: str, root_stack: str) -> list[Problem]:
    """The root has issued no intermediate for ``cluster`` (or none whole): run the root first."""
    inter = root_outputs.get("intermediates")
    mine = inter.get(cluster) if isinstance(inter, Mapping) else None
    if not isinstance(mine, Mapping) or not all(mine.get(k) for k in ("cert_pem", "key_pem", "chain_pem")):
        return [("mesh.clusters", f"the root stack {root_stack} has issued no intermediate CA for cluster {cluster}: "
                                  f"run `pulumi up --stack {root_stack}` first (it issues one per cluster of the spec)")]
    if not root_outputs.get("trust_bundle_pem"):
        return [("mesh.ca", f"the root stack {root_stack} exports no trust_bundle_pem: run it first")]
    return []


def registry_problems(root_outputs: Mapping[str, Any], cluster: str, root_stack: str) -> list[Problem]:
    """This cluster is not in the root's registry (the root ran with an older spec)."""
    reg = root_outputs.get("registry")
    if not isinstance(reg, Mapping) or cluster not in reg:
        return [("mesh.clusters", f"cluster {cluster} is not in the registry of the root stack {root_stack}: run "
                                  f"`pulumi up --stack {root_stack}` with this spec first")]
    return []
