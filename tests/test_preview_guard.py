"""The plan guard the workflows run before `pulumi up` (mesh_components.cli.preview_guard), on preview
files shaped as the CLI prints them: the digest of `pulumi preview --json` (pulumi/pulumi v3.259.0
pkg/display/json.go PreviewDigest/PreviewStep, pkg/backend/display/json.go ShowPreviewDigest) and
the streamed engine events (ShowJSONEvents, sdk/go/common/apitype/events.go)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mesh_components.cli import preview_guard

from program_harness import ROOT

SAMPLES = Path(__file__).parent / "preview_samples"
BOOKSTORE = ("urn:pulumi:prod::service-mesh::mesh:index:ServiceMesh$mesh:index:ControlPlane$"
             "kubernetes:core/v1:Namespace::bookstore-prod-prod-aws-control-plane-namespace-cluster-bookstore")


def guard(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mesh_components.cli.preview_guard", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_an_upgrade_that_carries_namespaces_into_patches_passes():
    # aliased updates Namespace -> NamespacePatch, and a ConfigMap delete, are not the guard's business
    run = guard(str(SAMPLES / "upgrade-in-place.json"))
    assert run.returncode == 0, run.stderr
    assert "no Namespace is deleted or replaced" in run.stdout


@pytest.mark.parametrize("sample", ["rename-during-upgrade.json", "rename-during-upgrade.events.jsonl"])
def test_an_upgrade_that_also_renames_is_refused(sample):
    run = guard(str(SAMPLES / sample))
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    # the application's namespace, and the retained istio-system too: no Namespace may be deleted
    assert lines[0].startswith(f"{BOOKSTORE}: the plan would delete this Namespace (step 'delete')")
    assert "first `pulumi up` with no other change" in lines[0]
    assert len(lines) == (2 if sample.endswith(".json") else 1)


def test_a_replacement_is_refused_once_per_step():
    found = preview_guard.destructive_steps((SAMPLES / "replace-namespace.json").read_text())
    assert [op for op, _ in found] == ["create-replacement", "replace", "delete-replaced"]
    assert all(preview_guard.urn_type(urn) == "kubernetes:core/v1:Namespace" for _, urn in found)


def test_stdin_and_a_preview_without_steps():
    run = guard("-", stdin='{"changeSummary": {"same": 12}, "duration": 1000}')
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("text,fragment", [
    ("", "is empty; write it with `pulumi preview --json > FILE`"),
    ("Previewing update (prod)\n", "line 1 is not JSON; give the output of `pulumi preview --json`"),
    ('{"steps": [{"op": "delete"}]}', "steps[0] has no 'op' and 'urn' strings"),
    ('{"steps": [{"op": "delete", "urn": "not-a-urn"}]}', "'not-a-urn' is not a Pulumi URN"),
])
def test_what_is_no_preview_is_an_error_not_a_pass(text, fragment, tmp_path):
    f = tmp_path / "preview.json"
    f.write_text(text)
    run = guard(str(f))
    assert run.returncode == 1 and run.stderr.strip() == f"{f}: {fragment}"
    assert "Traceback" not in run.stderr
