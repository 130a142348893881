"""Real `pulumi up` of the dev stack's mesh on a kind cluster of its own, through the Automation API.

What it proves, as a platform team's pipeline would see it: the update succeeds; a refresh of the
unchanged system reports nothing, twice in a row (``Pulumi.yaml`` refreshes before every update, so a
noisy refresh would make every update show changes, and the CA's ``read`` runs in every mode); a second
preview changes nothing; destroy leaves no resource behind.

It never touches a developer's ``dev``: it runs on a copy of the project, as its own stack
(``mesh-it``) with its own mesh name (``bookstore-it``, so ownership labels and URNs differ) on its own
cluster (kube context ``kind-mesh-it``: ``kind create cluster --name mesh-it``; another context with
``MESH_IT_CONTEXT``), with its state in a temporary local backend that disappears with the test.
``PULUMI_K8S_DELETE_UNREACHABLE`` (pulumi-kubernetes provider option ``deleteUnreachable``, read in
``pulumi_kubernetes/provider.py``) lets the final destroy finish if the cluster went away mid-test.

Skips, saying why, without the Pulumi CLI, kubectl or that cluster.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = os.environ.get("MESH_IT_CONTEXT", "kind-mesh-it")
STACK = "mesh-it"
MESH_NAME = "bookstore-it"


def _cluster_reachable() -> str | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "kubectl is not on PATH"
    probe = subprocess.run([kubectl, "--context", CONTEXT, "get", "--raw", "/readyz"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"kube context {CONTEXT!r} does not answer ({probe.stderr.strip()[:120]})"


def integration_stack_file(dev_stack_text: str, context: str = CONTEXT) -> str:
    """The dev stack file turned into the integration test's own: mesh ``bookstore-it`` on the one
    cluster reached through ``context``. Pure, so the isolation is tested without a cluster."""
    doc = yaml.safe_load(dev_stack_text)
    mesh = doc["config"]["service-mesh:mesh"]
    mesh["name"] = MESH_NAME
    (cluster,) = mesh["clusters"]
    cluster["kubeconfig"] = {"file": "~/.kube/config", "context": context}
    doc.pop("encryptionsalt", None)
    return yaml.safe_dump(doc, sort_keys=False)


def test_the_integration_stack_cannot_touch_a_developers_dev():
    """Runs everywhere: the stack the integration test deploys differs from ``dev`` in stack name,
    mesh name (hence URNs and ownership labels) and kube context."""
    dev = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
    it = yaml.safe_load(integration_stack_file(dev))["config"]["service-mesh:mesh"]
    original = yaml.safe_load(dev)["config"]["service-mesh:mesh"]
    assert STACK != "dev" and not (ROOT / "stacks" / f"Pulumi.{STACK}.yaml").exists()
    assert it["name"] == MESH_NAME != original["name"]
    assert it["clusters"][0]["kubeconfig"]["context"] == CONTEXT != original["clusters"][0]["kubeconfig"]["context"]
    assert it["services"] == original["services"]


@pytest.mark.skipif(shutil.which("pulumi") is None,
                    reason="the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/)")
def test_up_refresh_twice_then_nothing_to_change(tmp_path):
    why = _cluster_reachable()
    if why:
        pytest.skip(f"no cluster for the integration stack: {why}; create one with `kind create cluster --name mesh-it`")
    from pulumi import automation as auto

    # a copy of the project, so nothing (stack file, encryption salt) is written into the checkout
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".git", ".venv", "out", "__pycache__"))
    if (ROOT / ".venv").exists():
        (project / ".venv").symlink_to(ROOT / ".venv")
    (project / "stacks" / f"Pulumi.{STACK}.yaml").write_text(
        integration_stack_file((ROOT / "stacks" / "Pulumi.dev.yaml").read_text()))
    state = tmp_path / "state"
    state.mkdir()
    env = {"PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE": "integration-test",
           "PULUMI_K8S_DELETE_UNREACHABLE": "true"}
    stack = auto.create_or_select_stack(stack_name=STACK, work_dir=str(project),
                                        opts=auto.LocalWorkspaceOptions(env_vars=env))
    try:
        up = stack.up(on_output=print)
        assert up.summary.result == "succeeded"
        assert up.outputs["root_fingerprint"].value
        for _ in range(2):  # refresh on an unchanged system reports nothing, every time
            stack.refresh(expect_no_changes=True, on_output=print)
        stack.preview(expect_no_changes=True, on_output=print)  # raises if anything would change
    finally:
        stack.destroy(on_output=print)
        stack.workspace.remove_stack(STACK)
