"""The single stack -> fleet migration replaces nothing, and both modes give the same per-cluster state.

The proof, offline: the real ``__main__.py`` of the single stack (``prod``, ``linkerd``, ``staging``)
under mocks gives the state ``pulumi up`` would store (URNs as the engine builds them,
``engine_urns``); :func:`mesh_components.core.fleet_migration.cluster_resources` picks each
cluster's resources out of it and ``moved_urns`` rewrites them as ``pulumi state move`` does
(pulumi/pulumi v3.259.0 ``pkg/cmd/pulumi/state/state_move.go`` 355-414, 641-700). Then the fleet
programs run (root, then every cluster stack twice, so every peer is linked): each cluster stack
must register exactly the moved URNs (its provider where the move copies it) with the same inputs,
secret the same, so the engine finds each one's state and has nothing to update (no create, no
replace, no delete of a cluster object); the root must find the ServiceMesh and the CA through its
aliases (``step_generator.go`` ``getOldResource``/``generateAliases``).
"""
from __future__ import annotations

import json

import pytest

from cp_helpers import run_recording
from engine_urns import AliasSpec, engine_urns, match_old_state, new_urn, qualified_type
from fleet_harness import Backend, run_stack
from program_harness import FAKE_KUBECONFIG, RecordingMonitor, stack_config

from mesh_components.core import fleet_migration as fm
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_stack

STACKS = ["prod", "linkerd", "staging"]
PROJECT = "service-mesh"


@pytest.fixture
def kube_env(tmp_path, monkeypatch):
    for var in ("STAGING_USE1_KUBECONFIG", "STAGING_USW2_KUBECONFIG"):
        monkeypatch.setenv(var, FAKE_KUBECONFIG)


def single_stack_export(regs, reads, stack: str) -> dict:
    """The ``pulumi stack export`` document of the single stack's registrations and reads."""
    real = engine_urns(regs, stack)
    root = f"urn:pulumi:{stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{stack}"
    resources = [{"urn": root, "type": "pulumi:pulumi:Stack"}]
    for r in regs:
        resources.append({"urn": real[r.urn], "type": r.type, "parent": real.get(r.parent) or root, "custom": True})
    for r in reads:
        parent = real.get(r.parent, "")
        resources.append({"urn": new_urn(stack, PROJECT, qualified_type(parent) if parent else "", r.type, r.name),
                          "type": r.type, "parent": parent or root, "external": True})
    return {"version": 3, "deployment": {"resources": resources}}


def _recorded(run):
    requests: dict = {}
    original = RecordingMonitor.RegisterResource

    def register(self, request):
        response = original(self, request)
        requests[response.urn] = request
        return response
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RecordingMonitor, "RegisterResource", register)
        result = run()
    return result, requests


def fleet_run(stack: str, clusters: list[str], stored: dict | None = None):
    """Root, then each cluster stack twice: ``(root regs, root requests, {cluster: regs}, backend)``.
    ``stored``: the root stack's stored resources (``{urn: {type, outputs}}``) when it runs."""
    config = stack_config(stack)
    backend = Backend(resources={stack: stored or {}})
    root_config = {**config, "service-mesh:fleet": json.dumps({"role": "root"})}
    (root_regs, _), requests = _recorded(lambda: run_stack(root_config, stack, backend))
    member = {k: v for k, v in config.items() if k != "service-mesh:mesh"}
    regs: dict = {}
    for _ in range(2):
        for c in clusters:
            cfg = {**member, "service-mesh:fleet": json.dumps(
                {"role": "cluster", "root": stack, "cluster": c, "meshFile": f"stacks/Pulumi.{stack}.yaml"})}
            regs[c], exports = run_stack(cfg, c, backend)
    assert all(not backend.stacks[c][0]["pending_peers"] for c in clusters)
    return root_regs, requests, regs, backend


@pytest.mark.parametrize("stack", STACKS)
def test_every_cluster_stack_registers_exactly_the_moved_resources_with_the_same_inputs(stack, kube_env):
    reads: list = []
    single, _ = run_recording(stack_config(stack), stack, reads=reads)
    export = single_stack_export(single, reads, stack)
    clusters = load_stack(stack).spec.cluster_names()
    moves = fm.cluster_resources(export, clusters)
    real = engine_urns(single, stack)
    by_old = {real[r.urn]: r for r in single}
    _, _, fleet, _ = fleet_run(stack, clusters)
    for c in clusters:
        moved = fm.moved_urns(export, moves[c], c)
        mine = engine_urns(fleet[c], c)
        registered = {mine[r.urn]: r for r in fleet[c]}
        # the provider: copied by the move, reparented to the root stack (state_move.go 355-392)
        provider = next(u for u, r in by_old.items() if r.type == "pulumi:providers:kubernetes"
                        and r.name == f"mesh-{c}-k8s")
        expected = {n for o, n in moved.items() if o in by_old} | {fm.moved_urn(provider, None, c)}
        assert len(expected) > 40 and set(registered) == expected, c
        for old, new in moved.items():
            if old not in by_old:
                continue  # a read: the cluster stack reads it again
            before, after = by_old[old], registered[new]
            assert (after.type, after.inputs, after.secret_inputs) == (before.type, before.inputs, before.secret_inputs), new
        assert registered[fm.moved_urn(provider, None, c)].inputs == by_old[provider].inputs
        # no object of another cluster moves here: every moved object is on this cluster's provider
        own = by_old[provider].urn  # its mock URN, as the objects' provider references hold it
        assert all(by_old[o].provider.startswith(own + "::") for o in moved
                   if o in by_old and by_old[o].type.startswith("kubernetes:"))


@pytest.mark.parametrize("stack", ["prod"])
def test_the_root_finds_the_service_mesh_and_the_ca_through_its_aliases(stack, kube_env):
    """After the moves the single stack holds the ServiceMesh, the CA, the copied providers and reads;
    the root program claims the first three (the CA's state, its root of trust, kept) and creates nothing."""
    reads: list = []
    single, _ = run_recording(stack_config(stack), stack, reads=reads)
    export = single_stack_export(single, reads, stack)
    clusters = load_stack(stack).spec.cluster_names()
    moved = {u for us in fm.cluster_resources(export, clusters).values() for u in us}
    real = engine_urns(single, stack)
    remaining = set(real.values()) - moved
    types = {real[r.urn]: r.type for r in single}
    root_regs, requests, _, backend = fleet_run(stack, clusters, {u: {"type": types[u], "outputs": {}}
                                                                   for u in remaining})
    aliases = {r.urn: [AliasSpec.from_proto(a) for a in requests[r.urn].aliases] for r in root_regs}
    found = match_old_state(root_regs, aliases, remaining, stack)
    assert all(found[r.urn] is not None for r in root_regs), {r.name: found[r.urn] for r in root_regs}
    claimed = set(found.values())
    left = {u.split("::")[2].rsplit("$", 1)[-1] for u in remaining - claimed}
    assert left == {"pulumi:providers:kubernetes"}  # deleted from the root's state: providers, not objects
    ca = next(r for r in root_regs if r.type == "pulumi-python:dynamic:Resource")
    before = next(r for r in single if r.type == "pulumi-python:dynamic:Resource")
    assert {k: v for k, v in ca.inputs.items() if k != "__provider"} == \
        {k: v for k, v in before.inputs.items() if k != "__provider"}


@pytest.mark.parametrize("stack", STACKS)
def test_render_gives_each_cluster_the_same_state_in_both_modes(stack):
    """Offline parity (issue 15 item 5): a cluster rendered alone is its part of the whole render."""
    whole = render_mesh(load_stack(stack))
    for c in whole:
        alone = render_mesh(load_stack(stack), clusters=[c])
        assert list(alone) == [c]
        assert alone[c].concerns == whole[c].concerns
        assert alone[c].releases == whole[c].releases
        assert alone[c].remote_manifests == whole[c].remote_manifests


def test_the_migration_steps_name_every_moved_urn_and_no_provider(kube_env):
    reads: list = []
    single, _ = run_recording(stack_config("prod"), "prod", reads=reads)
    export = single_stack_export(single, reads, "prod")
    clusters = load_stack("prod").spec.cluster_names()
    steps = fm.migration_steps(export, "prod", {c: c for c in clusters})
    text = fm.format_steps(steps)
    assert text == fm.format_steps(fm.migration_steps(export, "prod", {c: c for c in clusters}))
    moves = fm.cluster_resources(export, clusters)
    for c in clusters:
        step = next(s for s in steps if s.title.startswith(f"Move cluster {c}'s"))
        assert all(f"'{u}'" in step.commands[1] for u in moves[c])
        assert "pulumi:providers:" not in step.commands[1] and "--include-parents" not in step.commands[1]
    assert text.index("fleet init") < text.index("state move") < text.index("pulumi up --stack 'prod'")


def test_an_export_that_is_not_a_single_stacks_is_refused():
    from mesh_components.spec.errors import SpecError

    with pytest.raises(SpecError, match=r"--state"):
        fm.cluster_resources({"deployment": {}}, ["a"])
    with pytest.raises(SpecError, match=r"no resources of cluster a"):
        fm.cluster_resources({"deployment": {"resources": []}}, ["a"])


def test_the_root_refuses_to_run_while_its_state_still_holds_the_clusters(kube_env):
    """Switched to role root before the moves, the root's update would delete every cluster's
    objects (it registers none of them): it stops first, naming the migration command."""
    single = run_recording(stack_config("prod"), "prod")[0]
    real = engine_urns(single, "prod")
    stored = {real[r.urn]: {"type": r.type, "outputs": {}} for r in single}
    backend = Backend(resources={"prod": stored})
    config = {**stack_config("prod"), "service-mesh:fleet": json.dumps({"role": "root"})}
    with pytest.raises(Exception, match=r"fleet stack cannot run now:\nconfig.service-mesh:fleet.role: this stack still holds 18 per-cluster part\(s\).*fleet migrate prod"):
        run_stack(config, "prod", backend)
