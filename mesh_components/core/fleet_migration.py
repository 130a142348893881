"""From one stack holding every cluster to fleet mode, without replacing a live object.

The single stack (``prod``) becomes the fleet's root: its program switches to
``MeshFleetRoot`` (aliased from ``ServiceMesh``, so the CA and its root of trust stay in place),
and each cluster's resources move, as they are, to that cluster's stack with ``pulumi state move``
(https://www.pulumi.com/docs/iac/cli/commands/pulumi_state_move/). What the move does, read from
pulumi/pulumi v3.259.0 ``pkg/cmd/pulumi/state/state_move.go``:

- a moved resource whose parent is not moved becomes a child of the destination's root stack
  (lines 405-414), and its URN is rebuilt from its new parent's type (``rewriteURNs``, lines
  641-700: ``urn.New(stack, project, parentType, type, name)``, the root stack's type left out,
  ``sdk/go/common/resource/urn/urn.go`` ``New`` lines 80-93); children moved with it keep it as
  parent;
- providers are never named (line 238-241: "cannot move providers"); each provider a moved resource
  uses is copied to the destination, reparented to its root stack the same way (lines 355-392);
- dependencies on resources that stay behind are dropped, with a warning (``breakDependencies``);
- ``--include-parents`` would move the parent too: here the parent is the one ``ServiceMesh``
  every cluster shares, so it is never given.

So each part ``mesh-<cluster>-<part>`` of the single stack lands in the cluster stack as a
top-level component of the same type and name, its children below it as before, and the provider
``mesh-<cluster>-k8s`` top-level: exactly the URNs the cluster stack's program registers
(``components.fleet.fleet_cluster``: parts with no parent, provider top-level). Same URN, same
inputs: the cluster stack's first ``pulumi up`` updates nothing.

:func:`cluster_resources` picks each cluster's resources out of ``pulumi stack export`` JSON;
:func:`moved_urn` is the move's URN rewrite; :func:`migration_steps` writes the sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ..spec.errors import SpecError

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
PARTS = ("control-plane", "policies", "egress", "gateway", "telemetry", "multicluster")
"""The per-cluster components ``ServiceMesh`` registers as ``<name>-<cluster>-<part>``."""


def _resources(deployment: Mapping[str, Any]) -> list[dict]:
    """The resources of a ``pulumi stack export`` document (``{version, deployment: {resources}}``)."""
    dep = deployment.get("deployment", deployment) if isinstance(deployment, Mapping) else None
    res = dep.get("resources") if isinstance(dep, Mapping) else None
    if not isinstance(res, list) or not all(isinstance(r, Mapping) and isinstance(r.get("urn"), str) for r in res):
        raise SpecError([("--state", "not a `pulumi stack export` document: expected deployment.resources[] with urn")])
    return [dict(r) for r in res]


def urn_parts(urn: str) -> tuple[str, str, str, str]:
    """``(stack, project, qualified type, name)`` of ``urn:pulumi:<stack>::<project>::<type>::<name>``."""
    head, project, qtype, name = urn.split("::", 3)
    return head[len("urn:pulumi:"):], project, qtype, name


def _type(qtype: str) -> str:
    return qtype.rsplit("$", 1)[-1]


def moved_urn(urn: str, new_parent_urn: str | None, dest_stack: str, dest_project: str | None = None) -> str:
    """``urn`` as ``pulumi state move`` rewrites it into ``dest_stack``: under ``new_parent_urn``
    (the moved parent's new URN, or None for the destination's root stack), same type and name."""
    _, project, qtype, name = urn_parts(urn)
    typ = _type(qtype)
    if new_parent_urn is not None:
        parent_q = urn_parts(new_parent_urn)[2]
        if parent_q != ROOT_STACK_TYPE:
            typ = f"{parent_q}${typ}"
    return f"urn:pulumi:{dest_stack}::{dest_project or project}::{typ}::{name}"


def cluster_resources(deployment: Mapping[str, Any], clusters: Sequence[str], name: str = "mesh") -> dict[str, list[str]]:
    """Cluster -> the URNs to move into its stack, in state order (parents before children): each
    part ``<name>-<cluster>-<part>`` (:data:`PARTS`) that is a child of the ``ServiceMesh``, every
    descendant of one, and the reads of the cluster's own objects the program made for others
    (``<name>-<cluster>-token-for-<reader>``, ``<name>-<cluster>-linkerd-gateway``). Providers are
    left out (the move copies them). Raises :class:`SpecError` (``--state``) for a document that is
    not a stack export, or one where no resource of a cluster is found."""
    resources = _resources(deployment)
    owner: dict[str, str] = {}
    heads: dict[str, str] = {}
    for c in clusters:
        for part in PARTS:
            heads[f"{name}-{c}-{part}"] = c
        for reader in clusters:
            heads[f"{name}-{c}-token-for-{reader}"] = c
        heads[f"{name}-{c}-linkerd-gateway"] = c
    out: dict[str, list[str]] = {c: [] for c in clusters}
    for r in resources:  # a stack export lists parents before children
        urn = r["urn"]
        _, _, qtype, rname = urn_parts(urn)
        if _type(qtype).startswith("pulumi:providers:"):
            continue
        parent = r.get("parent") or ""
        cluster = owner.get(parent)
        if cluster is None and rname in heads and _type(urn_parts(parent)[2] if parent else "") in (
                "mesh:index:ServiceMesh",):
            cluster = heads[rname]
        if cluster is not None:
            owner[urn] = cluster
            out[cluster].append(urn)
    missing = [c for c in clusters if not out[c]]
    if missing:
        raise SpecError([("--state", f"no resources of cluster {c} under a ServiceMesh in the export; is it the "
                                     f"single stack's (`pulumi stack export --stack <it>`)?") for c in missing])
    return out


def moved_urns(deployment: Mapping[str, Any], urns: Iterable[str], dest_stack: str) -> dict[str, str]:
    """Old URN -> its URN after ``pulumi state move --dest dest_stack`` of ``urns``, as
    ``state_move.go`` rewrites them (parents before children)."""
    resources = {r["urn"]: r for r in _resources(deployment)}
    moving = list(urns)
    chosen = set(moving)
    new: dict[str, str] = {}
    for urn in moving:
        parent = resources.get(urn, {}).get("parent") or ""
        new[urn] = moved_urn(urn, new[parent] if parent in chosen else None, dest_stack)
    return new


@dataclass(frozen=True)
class Step:
    """One step of the migration: what it does (``title``), the shell ``commands`` and why."""

    title: str
    commands: tuple[str, ...]
    why: str


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def migration_steps(deployment: Mapping[str, Any], source_stack: str, cluster_stacks: Mapping[str, str],
                    name: str = "mesh") -> list[Step]:
    """The whole sequence from the single stack ``source_stack`` (its ``pulumi stack export``,
    ``deployment``) to fleet mode with ``source_stack`` as root and ``cluster_stacks`` (cluster ->
    stack name). Deterministic: the same export gives the same text."""
    moves = cluster_resources(deployment, list(cluster_stacks), name)
    src = _quote(source_stack)
    steps = [
        Step("Start from a converged single stack, and keep a copy of its state",
             (f"pulumi preview --stack {src} --expect-no-changes",
              f"pulumi stack export --stack {src} --file {_quote(source_stack + '-before-fleet.json')}"),
             "every later step compares against this state; `pulumi stack import` of the copy undoes the moves"),
        Step("Write the fleet's stack files (the root keeps the spec)",
             (f"python -m mesh_components fleet init {src}",),
             "adds service-mesh:fleet {role: root} to the root's stack file and writes one stack file per cluster; "
             "commit them, but run no `pulumi up` of the root before the moves are done"),
    ]
    for cluster, stack in cluster_stacks.items():
        urns = moves[cluster]
        dest = _quote(stack)
        steps.append(Step(
            f"Move cluster {cluster}'s {len(urns)} resources to stack {stack}",
            (f"pulumi stack init {dest} || pulumi stack select {dest}",
             f"pulumi state move --source {src} --dest {dest} --yes \\\n  "
             + " \\\n  ".join(_quote(u) for u in urns)),
            "its provider is copied along (never named); dependencies on the CA, which stays in the root, are "
            "dropped with a warning: the cluster stack reads the CA from the root's outputs instead"))
    steps.append(Step(
        "Run the root",
        (f"pulumi up --stack {src}",),
        "the ServiceMesh becomes MeshFleetRoot by alias (same CA, same root of trust: 0 to replace); the copied "
        "providers and the reads left in the root are deleted from its state (no cluster object is touched); the "
        "registry and intermediates are exported"))
    steps.append(Step(
        "Check and run every cluster stack",
        tuple(f"pulumi preview --stack {_quote(s)} --diff   # expect: 0 to create, 0 to update, 0 to replace, "
              f"0 to delete" for s in cluster_stacks.values())
        + (f"python -m mesh_components fleet up {src}",),
        "the parts keep their URNs and inputs; each cluster stack reads its intermediate and its peers' "
        "credentials from stack outputs"))
    return steps


def format_steps(steps: Sequence[Step]) -> str:
    """The steps as a numbered shell script with comments."""
    lines = ["#!/bin/sh", "# Migration to fleet mode (python -m mesh_components fleet migrate); run step by step.", "set -e"]
    for i, s in enumerate(steps, 1):
        lines += ["", f"# {i}. {s.title}", f"#    {s.why}"] + list(s.commands)
    return "\n".join(lines) + "\n"
