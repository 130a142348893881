"""The package's folders are its layers (README "How the pieces fit"): spec -> core and meshes ->
analysis and drift -> components -> cli. A module imports, at module level, only from its own layer or
those below; only the Pulumi layer imports Pulumi; ``mesh_components.ca_provider.MeshCAProvider``
stays at the path Pulumi's dynamic-provider host unpickles from every stack's state."""
from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mesh_components"
LAYERS = {"spec": 0, "core": 1, "meshes": 1, "analysis": 2, "drift": 2, "components": 3, "ca_provider": 3,
          "cli": 4}
"""Folder (or top-level module) -> layer; a module may import at module level from a layer <= its own."""


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = f.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


MODULES = _modules()


def _imports(name: str, path: Path, module_level_only: bool) -> list[tuple[str, int]]:
    """``(absolute module imported, line)`` of every import in the module ``name``."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = []
    for node in nodes:
        if isinstance(node, ast.If) and module_level_only:  # `if TYPE_CHECKING:` blocks do not run
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module or ""
            for a in node.names:
                full = f"{target}.{a.name}"
                out.append((full if full in MODULES else target, node.lineno))
    return out


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if parts[0] == "mesh_components" and len(parts) > 1 else None


def test_every_module_sits_in_a_layer_folder():
    loose = sorted(n for n in MODULES if _layer(n) is None and n not in ("mesh_components", "mesh_components.__main__"))
    assert loose == [], f"modules outside the layer folders: {loose}"
    assert sorted(p.name for p in PKG.iterdir() if p.suffix == ".py") == ["__init__.py", "__main__.py", "ca_provider.py"]


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _layer(n) is not None))
def test_module_level_imports_go_down_the_layers(name):
    up = [(t, line) for t, line in _imports(name, MODULES[name], module_level_only=True)
          if (_layer(t) or 0) > _layer(name)]
    assert up == [], f"{name} imports from a higher layer at module level: {up}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if (_layer(n) or 0) < 3 or _layer(n) == 4))
def test_only_the_pulumi_layer_imports_pulumi(name):
    """The pure core and the offline CLI run without the Pulumi SDK's engine connection; the
    ``components`` layer (and ``ca_provider``) is where Pulumi is imported."""
    pulumi = [(t, line) for t, line in _imports(name, MODULES[name], module_level_only=False)
              if t.split(".")[0] == "pulumi"]
    assert pulumi == [], f"{name} imports Pulumi: {pulumi}"


def test_the_dynamic_provider_keeps_its_pickled_path():
    """Pulumi's Python dynamic provider serialises the provider with dill, by reference for a class
    in an importable module (pulumi/pulumi v3.272.0 sdk/python/lib/pulumi/dynamic/dynamic.py:318,
    ``serialize_provider``: ``dill.dumps(provider, recurse=True)``); every stack's state names
    ``mesh_components.ca_provider.MeshCAProvider``."""
    from mesh_components.ca_provider import MeshCAProvider

    assert (MeshCAProvider.__module__, MeshCAProvider.__qualname__) == ("mesh_components.ca_provider",
                                                                        "MeshCAProvider")
    assert b"mesh_components.ca_provider" in pickle.dumps(MeshCAProvider)
