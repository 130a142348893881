"""The render runs with Python's cyclic garbage collector paused (render.cyclic_gc_paused, for
speed at scale: benchmarks/README.md) and always gives it back as it found it: enabled or
disabled, after a render that succeeds, one that raises, and a CLI command that fails."""
from __future__ import annotations

import gc

import pytest
import yaml

from mesh_components.cli import main
from mesh_components.spec.errors import SpecError
from mesh_components.core.render import cyclic_gc_paused, render_mesh
from mesh_components.spec import load_mesh

from program_harness import ROOT


def dev_mesh() -> dict:
    return yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]["service-mesh:mesh"]


def failing_mesh() -> dict:
    """Valid as a spec, refused by the render: an override of an object that is not generated."""
    mesh = dev_mesh()
    mesh["overrides"] = [{"kind": "ConfigMap", "name": "not-generated", "namespace": "bookbuyer",
                          "patch": [{"op": "add", "path": "/data/x", "value": "y"}]}]
    return mesh


@pytest.fixture(params=[True, False], ids=["gc-enabled", "gc-disabled"])
def gc_state(request):
    was = gc.isenabled()
    (gc.enable if request.param else gc.disable)()
    yield request.param
    (gc.enable if was else gc.disable)()


def test_paused_inside_and_restored_after(gc_state):
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled() is gc_state


def test_restored_when_the_block_raises(gc_state):
    with pytest.raises(KeyError):
        with cyclic_gc_paused():
            raise KeyError("x")
    assert gc.isenabled() is gc_state


def test_render_mesh_restores_the_collector(gc_state):
    states = render_mesh(load_mesh(dev_mesh(), base_dir=ROOT))
    assert states and gc.isenabled() is gc_state


def test_render_mesh_restores_the_collector_when_it_raises(gc_state):
    loaded = load_mesh(failing_mesh(), base_dir=ROOT)
    with pytest.raises(SpecError) as err:
        render_mesh(loaded)
    assert any(path.startswith("mesh.overrides[0]") for path, _ in err.value.problems)
    assert gc.isenabled() is gc_state


def test_cli_commands_restore_the_collector(gc_state, tmp_path):
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": failing_mesh()}}))
    assert main(["render", str(stack), "--out", str(tmp_path / "out")]) == 1
    assert gc.isenabled() is gc_state
    assert main(["validate", str(stack)]) == 1
    assert gc.isenabled() is gc_state
    assert main(["render", "dev", "--out", str(tmp_path / "dev")]) == 0
    assert gc.isenabled() is gc_state


def test_a_render_leaves_no_cyclic_garbage_to_speak_of():
    """Pausing the collector is safe only if the render frees its garbage by reference counting."""
    gc.collect()
    with cyclic_gc_paused():
        states = render_mesh(load_mesh(dev_mesh(), base_dir=ROOT))
        found = gc.collect()
    assert states and found < 100  # none for every shipped stack today
