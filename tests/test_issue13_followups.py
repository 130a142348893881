"""Follow-ups of issue 13: problem places in ``validate --format json``, commands whose module does
not import, and the preview workflow's render diff on the new layout.

- ``validate --format json`` gives each problem's spec field as ``path`` and where the loader
  placed it as ``file``, ``line``, ``column`` (``findings.place_fields``), never
  ``"path": "file:7:16: mesh.x"``; the text form keeps ``file:line:column: path: message``.
- ``diff`` and ``graph`` live in modules of their own: when one does not import (a missing
  package), the command is still listed and, run, exits 1 with ``COMMAND: unavailable: <error>``
  naming the package.
- The preview workflow diffs the objects of two renders, not the ``.mesh-render`` marker.
"""
from __future__ import annotations

import builtins
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mesh_components import cli
from mesh_components.cli import main
from mesh_components.analysis.findings import Finding, place_fields, problem_dict

ROOT = Path(__file__).resolve().parents[1]


# --- validate --format json: path, file, line, column


@pytest.mark.parametrize("path, fields", [
    ("mesh.services[0].ports[0].port", {"path": "mesh.services[0].ports[0].port"}),
    ("stacks/Pulumi.dev.yaml:7:16: mesh.x", {"path": "mesh.x", "file": "stacks/Pulumi.dev.yaml", "line": 7,
                                             "column": 16}),
    ("C:\\stacks\\Pulumi.dev.yaml:7:16: mesh.a: b", {"path": "mesh.a: b", "file": "C:\\stacks\\Pulumi.dev.yaml",
                                                      "line": 7, "column": 16}),
    ("/tmp/Pulumi.x.yaml:3:1", {"path": "/tmp/Pulumi.x.yaml", "file": "/tmp/Pulumi.x.yaml", "line": 3, "column": 1}),
    ("--policy-pack-config", {"path": "--policy-pack-config"}),
])
def test_place_fields(path, fields):
    assert place_fields(path) == fields
    assert problem_dict(path, "m") == {"path": fields["path"], "message": "m",
                                       **{k: v for k, v in fields.items() if k != "path"}}


def test_a_finding_keeps_its_keys():
    f = Finding("mtls-strict", "error", "mesh.backend", "m")
    assert f.to_dict() == {"code": "mtls-strict", "severity": "error", "path": "mesh.backend", "message": "m",
                           "resources": [], "suppressed": False, "reason": None}


def _bad_stack(tmp_path: Path) -> Path:
    text = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
    text = text.replace("smiFiles: [policies/smi]", f"smiFiles: [{ROOT / 'policies' / 'smi'}]")
    text = text.replace("ports: [{port: 3306, name: mysql, protocol: tcp}]",
                        "ports: [{port: 3306, name: mysql, protocol: tcpp}]")
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text(text)
    return stack


def test_validate_json_problems_have_path_and_place(tmp_path, capsys):
    stack = _bad_stack(tmp_path)
    assert main(["validate", str(stack)]) == 1
    text_lines = capsys.readouterr().err.strip().splitlines()
    assert main(["validate", str(stack), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problems"], report
    for p, line in zip(report["problems"], text_lines):
        assert ":" not in p["path"].split("[")[0], p  # a spec field, no place in front
        assert p["file"] == str(stack) and isinstance(p["line"], int) and isinstance(p["column"], int)
        assert line == f"{p['file']}:{p['line']}:{p['column']}: {p['path']}: {p['message']}"
    (problem,) = [p for p in report["problems"] if p["path"].startswith("mesh.services[4].ports[0].protocol")]
    lines = stack.read_text().splitlines()
    assert "tcpp" in lines[problem["line"] - 1][problem["column"] - 1:]


def test_validate_json_of_a_file_that_is_not_yaml(tmp_path, capsys):
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text("config:\n  a: [\n")
    assert main(["validate", str(stack), "--format", "json"]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem["path"] == problem["file"] == str(stack) and problem["line"] >= 1
    assert problem["message"].startswith("not valid YAML")


# --- optional commands whose import fails


def _failing_import(monkeypatch, module: str, missing: str):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == module:
            raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


@pytest.mark.parametrize("module, command, argv", [
    ("mesh_components.cli.drift_cli", "diff", ["diff", "dev", "--live", "dumps"]),
    ("mesh_components.cli.drift_cli", "diff", ["diff", "--no-such-flag"]),
    ("mesh_components.cli.drift_cli", "diff", ["diff"]),
    ("mesh_components.cli.graph_cli", "graph", ["graph", "dev", "--format", "json"]),
])
def test_a_command_that_cannot_import_says_why_and_exits_1(module, command, argv, monkeypatch, capsys):
    _failing_import(monkeypatch, module, "kubernetes")
    (sub,) = [a for a in cli.build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert command in sub.choices and {"validate", "render", "translate", "diff", "graph"} <= set(sub.choices)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines()[-1] == (
        f"{command}: unavailable: No module named 'kubernetes' (the package 'kubernetes' is missing: install the "
        f"project with its dependencies, e.g. .venv/bin/pip install -e .)")


def test_the_other_commands_still_run_when_one_cannot_import(monkeypatch, capsys):
    _failing_import(monkeypatch, "mesh_components.cli.graph_cli", "graphviz")
    assert main(["validate", "dev"]) == 0
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "graph" in capsys.readouterr().out


def test_an_import_error_of_this_package_is_not_called_a_missing_package():
    message = cli.unavailable_message("graph", ImportError("cannot import name 'x' from 'mesh_components.analysis.graph'",
                                                           name="mesh_components.analysis.graph"))
    assert message.startswith("graph: unavailable: cannot import name 'x'") and "a module of this package" in message


# --- the preview workflow's render diff


def _workflow_step(name: str) -> str:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "preview.yml").read_text())
    (step,) = [s for s in doc["jobs"]["render-diff"]["steps"] if s.get("name") == name]
    return step["run"]


@pytest.mark.skipif(shutil.which("diff") is None or shutil.which("bash") is None, reason="needs diff and bash")
def test_the_preview_diff_shows_objects_not_the_marker(tmp_path):
    """Base without the egress rule, head with it: the diff shows the egress objects, in the layout
    render writes (``<stack>/<cluster>/...``, releases in ``releases/``), and not the marker."""
    text = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text().replace(
        "smiFiles: [policies/smi]", f"smiFiles: [{ROOT / 'policies' / 'smi'}]")
    start = text.index("    egress:\n")
    base_text = text[:start] + text[text.index("    # what `validate`", start):]
    base_stack = tmp_path / "Pulumi.dev.yaml"
    base_stack.write_text(base_text)
    render = tmp_path / "render"
    assert main(["render", str(base_stack), "--out", str(render / "base" / "dev")]) == 0
    assert main(["render", "dev", "--out", str(render / "head" / "dev")]) == 0
    assert (render / "head" / "dev" / "dev" / "releases" / "helm-releases.yaml").is_file()
    output = tmp_path / "github-output"
    env = {**os.environ, "RUNNER_TEMP": str(tmp_path), "GITHUB_OUTPUT": str(output)}
    subprocess.run(["bash", "-e", "-c", _workflow_step("Diff")], check=True, env=env)
    diff = (tmp_path / "render.diff").read_text()
    assert output.read_text().strip() == "changed=1"
    assert ".mesh-render" not in diff.replace("-x .mesh-render", "")
    assert "head/dev/dev/" in diff and "book-publisher-api" in diff
