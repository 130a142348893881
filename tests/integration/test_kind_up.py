"""Real `pulumi up` of the dev stack on a kind cluster, through the Automation API: the update
succeeds and a second preview changes nothing. Skips, saying why, without the Pulumi CLI or the
kind cluster (`kind create cluster --name dev`); run it on a workstation or a CI runner with both."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = os.environ.get("MESH_IT_CONTEXT", "kind-dev")


def _cluster_reachable() -> str | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "kubectl is not on PATH"
    probe = subprocess.run([kubectl, "--context", CONTEXT, "get", "--raw", "/readyz"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"kube context {CONTEXT!r} does not answer ({probe.stderr.strip()[:120]})"


pytestmark = [
    pytest.mark.skipif(shutil.which("pulumi") is None,
                       reason="the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/)"),
]


def test_up_then_nothing_to_change(tmp_path):
    why = _cluster_reachable()
    if why:
        pytest.skip(f"no kind cluster: {why}; create one with `kind create cluster --name dev`")
    from pulumi import automation as auto

    # a copy of the project, so the stack's encryption salt is not written into stacks/
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".git", ".venv", "out", "__pycache__"))
    if (ROOT / ".venv").exists():
        (project / ".venv").symlink_to(ROOT / ".venv")
    env = {"PULUMI_BACKEND_URL": f"file://{tmp_path}", "PULUMI_CONFIG_PASSPHRASE": "integration-test"}
    stack = auto.create_or_select_stack(stack_name="dev", work_dir=str(project),
                                        opts=auto.LocalWorkspaceOptions(env_vars=env))
    try:
        up = stack.up(on_output=print)
        assert up.summary.result == "succeeded"
        assert up.outputs["root_fingerprint"].value
        stack.preview(expect_no_changes=True, on_output=print)  # raises if anything would change
    finally:
        stack.destroy(on_output=print)
        stack.workspace.remove_stack("dev")
