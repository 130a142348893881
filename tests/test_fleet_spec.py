"""Fleet config (``service-mesh:fleet``): parsing, loading a cluster stack file, offline commands.

A cluster stack file holds only its place in the fleet; the spec is the root stack file's, so the
root and every cluster stack read one file (issue 15 item 1), and ``render``/``validate`` of a
cluster stack give that cluster's state only, the same as its part of the root's render (item 5).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mesh_components.cli import main
from mesh_components.core import fleet as fleet_core
from mesh_components.core.ca import STAGES, CAError, check_stage_transition
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_program_mesh, load_stack
from mesh_components.spec.errors import SpecError
from mesh_components.spec.fleet import cluster_stack_problems, parse_fleet

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the project's Pulumi.yaml, policies and prod stack, with prod as a fleet root and
    one stack file per cluster, as ``fleet init`` writes them."""
    (tmp_path / "stacks").mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    text = (ROOT / "stacks" / "Pulumi.prod.yaml").read_text()
    text = text.replace("config:\n", "config:\n  service-mesh:fleet: {role: root, clusterStacks: 'prod-{cluster}'}\n", 1)
    (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text(text)
    for c in ("aws", "azure", "gcp"):
        (tmp_path / "stacks" / f"Pulumi.prod-prod-{c}.yaml").write_text(
            f"config:\n  service-mesh:fleet: {{role: cluster, root: prod, cluster: prod-{c}}}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_cluster_stack_file_loads_the_roots_spec_and_renders_its_cluster_only(project):
    root = load_stack("prod")
    assert root.fleet.role == "root" and root.fleet.stack_of("prod-aws") == "prod-prod-aws"
    member = load_stack("prod-prod-aws")
    assert member.spec == root.spec
    assert (member.fleet.role, member.fleet.cluster, member.fleet.root_stack) == ("cluster", "prod-aws", "prod")
    assert member.fleet.stack_of("prod-gcp") == "prod-prod-gcp"  # peers' names from the root's pattern
    alone = render_mesh(member)
    assert list(alone) == ["prod-aws"]
    assert alone["prod-aws"].concerns == render_mesh(root)["prod-aws"].concerns


def test_render_of_a_cluster_stack_writes_the_same_files_as_the_roots_render_of_that_cluster(project, capsys):
    assert main(["render", "prod", "--out", str(project / "out-root")]) == 0
    assert main(["render", "prod-prod-azure", "--out", str(project / "out-member")]) == 0
    member = project / "out-member"
    assert sorted(p.name for p in member.iterdir() if p.is_dir()) == ["prod-azure"]
    files = sorted(p.relative_to(member / "prod-azure") for p in (member / "prod-azure").rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(project / "out-root" / "prod-azure")
                                     for p in (project / "out-root" / "prod-azure").rglob("*") if p.is_file())
    for f in files:
        assert (member / "prod-azure" / f).read_bytes() == (project / "out-root" / "prod-azure" / f).read_bytes()
    assert main(["validate", "prod-prod-gcp"]) == 0


def test_a_cluster_stack_naming_an_unknown_cluster_or_holding_a_spec_is_refused(project):
    (project / "stacks" / "Pulumi.prod-x.yaml").write_text(
        "config:\n  service-mesh:fleet: {role: cluster, root: prod, cluster: nowhere}\n")
    with pytest.raises(SpecError, match=r"fleet\.cluster: unknown cluster 'nowhere'; the mesh has prod-aws"):
        load_stack("prod-x")
    (project / "stacks" / "Pulumi.prod-y.yaml").write_text(
        "config:\n  service-mesh:fleet: {role: cluster, root: prod, cluster: prod-aws}\n  service-mesh:mesh: {}\n")
    with pytest.raises(SpecError, match=r"reads the mesh spec from the root's stack file"):
        load_stack("prod-y")
    (project / "stacks" / "Pulumi.prod-z.yaml").write_text(
        "config:\n  service-mesh:fleet: {role: cluster, root: gone, cluster: prod-aws}\n")
    with pytest.raises(SpecError, match=r"meshFile: stacks/Pulumi.gone.yaml does not exist"):
        load_stack("prod-z")


@pytest.mark.parametrize("data, message", [
    ("root", "expected a mapping"),
    ({"role": "leaf"}, "role: expected 'root' or 'cluster'"),
    ({"role": "root", "root": "x"}, "root: unknown field for role root"),
    ({"role": "root", "clusterStacks": "prod"}, "clusterStacks: must hold {cluster}"),
    ({"role": "root", "clusterStacks": "a/b/c/{cluster}"}, "is not a stack name"),
    ({"role": "cluster", "root": "prod"}, "cluster: required for role cluster"),
    ({"role": "cluster", "root": "bad name", "cluster": "c"}, "root: 'bad name' is not a stack name"),
    ({"role": "cluster", "root": "prod", "cluster": 3}, "cluster: expected a string, got int"),
])
def test_bad_fleet_config_is_a_path_message(data, message):
    with pytest.raises(SpecError) as e:
        parse_fleet(data, "prod")
    assert message in str(e.value) and str(e.value).startswith("config.service-mesh:fleet")


def test_cluster_stack_names_that_collide_or_are_the_root_are_refused():
    fleet = parse_fleet({"role": "root", "clusterStacks": "{cluster}"}, "prod")
    assert cluster_stack_problems(["a", "prod"], fleet) == [
        ("config.service-mesh:fleet.clusterStacks",
         "cluster prod's stack would be the root stack prod; give a pattern such as 'prod-{cluster}'")]
    assert cluster_stack_problems(["a", "b"], fleet) == []


def test_the_program_loader_refuses_a_missing_spec_with_the_fix():
    with pytest.raises(SpecError, match=r"config.service-mesh:mesh: missing"):
        load_program_mesh(None, None, "prod", ROOT)
    member = load_program_mesh(None, {"role": "cluster", "root": "prod", "cluster": "prod-gcp"}, "prod-gcp", ROOT)
    assert member.fleet.cluster == "prod-gcp" and member.spec == load_stack("prod", ROOT).spec


def test_rotation_rank_orders_every_forward_move_the_ca_accepts():
    """Each move ``check_stage_transition`` accepts as forward (start, next stage, finish) raises
    the rank by one or keeps it (none <-> removeOldRoot, one root either way); the roll-backs it
    accepts (abandoning a rotation at addNewRoot, reissueIntermediates back to addNewRoot) lower it. So "ahead of the root" is a rank comparison (pulumi's CA staging,
    mesh_components/core/ca.py check_stage_transition)."""
    for g in (1, 2, 3):
        for s0 in STAGES:
            for dg in (-1, 0, 1):
                for s1 in STAGES:
                    if g + dg < 1:
                        continue
                    try:
                        check_stage_transition(g, s0, g + dg, s1)
                    except CAError:
                        continue
                    step = fleet_core.rotation_rank(g + dg, s1) - fleet_core.rotation_rank(g, s0)
                    if dg == -1 or (s0, s1) == ("reissueIntermediates", "addNewRoot"):  # abandon, roll back
                        assert step < 0, (g, s0, g + dg, s1)
                    else:
                        assert step in (0, 1), (g, s0, g + dg, s1)


def test_a_cluster_ahead_of_the_roots_stage_is_refused_and_behind_is_not():
    spec = load_stack("prod", ROOT).spec
    ahead = spec.model_copy(update={"ca": spec.ca.model_copy(update={
        "root_rotation": spec.ca.root_rotation.model_copy(update={"generation": 2, "stage": "addNewRoot"})})})
    [(path, message)] = fleet_core.rotation_problems(ahead, {"generation": 1, "stage": "none"}, "prod", "prod-aws")
    assert path == "mesh.ca.rootRotation"
    assert "ahead of the root stack prod" in message and "pulumi up --stack prod" in message
    assert fleet_core.rotation_problems(spec, {"generation": 2, "stage": "addNewRoot"}, "prod", "prod-aws") == []
    assert "exports no ca_rotation" in fleet_core.rotation_problems(spec, None, "prod", "prod-aws")[0][1]
