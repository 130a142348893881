"""The GitOps pipelines in ``.github/workflows`` and the operator example, read as data.

Throw-away clusters need throw-away state: with ``refresh: always`` (``Pulumi.yaml``), a stack that
outlived its kind cluster makes the next run's refresh read the deleted cluster through the stored
kubernetes provider and fail. Every job that makes a kind cluster must therefore keep its state in a
local backend of its own (``file://`` under the runner's temporary space), and a job that deploys there
must destroy and remove the stack at the end, whatever happened before.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def jobs():
    for wf in WORKFLOWS:
        doc = yaml.safe_load(wf.read_text())
        for name, job in doc["jobs"].items():
            yield f"{wf.name}:{name}", doc, job


def pulumi_steps(job, command=None):
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith("pulumi/actions")
            and (command is None or (s.get("with") or {}).get("command") == command)]


def test_pipelines_exist():
    assert {w.name for w in WORKFLOWS} >= {"deploy.yml", "preview.yml", "drift.yml"}


@pytest.mark.parametrize("where,doc,job", [j for j in jobs() if any(
    "kind-action" in str(s.get("uses", "")) for s in j[2].get("steps", []))], ids=lambda v: v if isinstance(v, str) else "")
def test_jobs_on_throwaway_clusters_keep_throwaway_state(where, doc, job):
    text = yaml.safe_dump(job)
    env = {**(doc.get("env") or {}), **(job.get("env") or {})}
    backend = str(env.get("PULUMI_BACKEND_URL", "")) + text
    assert "PULUMI_BACKEND_URL" in text and "file://" in backend, f"{where}: state must live in a local backend"
    assert "PULUMI_K8S_DELETE_UNREACHABLE" in text, where
    for step in pulumi_steps(job):
        assert "vars.PULUMI_ORG" not in str(step["with"]["stack-name"]) or "matrix" in text, where
    if pulumi_steps(job, "up"):
        last = [s for s in job["steps"] if "pulumi destroy" in str(s.get("run", ""))]
        assert last and last[0].get("if") == "always()", f"{where}: destroy the throw-away stack even on failure"
        assert "pulumi stack rm" in last[0]["run"]
        assert any("--expect-no-changes" in str(s.get("run", "")) for s in job["steps"]), \
            f"{where}: prove a second run changes nothing"


def test_deploy_dev_job_never_uses_the_long_lived_dev_stack():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    (up,) = pulumi_steps(doc["jobs"]["dev"], "up")
    assert up["with"]["stack-name"] == "dev" and up["with"]["upsert"] is True
    assert up["with"]["cloud-url"].startswith("${{ env.PULUMI_BACKEND_URL")
    assert doc["jobs"]["dev"]["env"]["PULUMI_BACKEND_URL"].startswith("file://")


def test_every_update_and_preview_runs_the_guardrails():
    for where, _doc, job in jobs():
        for step in pulumi_steps(job, "up") + pulumi_steps(job, "preview"):
            assert step["with"].get("policyPacks") == "policies/mesh-guardrails", where


def test_operator_example_says_how_guardrails_are_enforced():
    text = (ROOT / "deploy" / "operator" / "stack.yaml").read_text()
    stack = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "Stack"][0]
    assert stack["spec"]["useLocalStackOnly"] is True and stack["spec"]["destroyOnFinalize"] is False
    assert "pulumi policy enable" in text and "policy-group" in text
    assert "never create a stack that has no stacks/Pulumi" not in text  # the old, wrong reading


def test_long_lived_updates_and_previews_refuse_a_plan_that_deletes_a_namespace():
    """mesh_components.cli.preview_guard runs on `pulumi preview --json` before every `up` of a stack
    whose state outlives the run (a throw-away dev stack starts empty: nothing to delete), and in
    every preview job."""
    guarded = 0
    for where, _doc, job in jobs():
        steps = job.get("steps", [])
        up = [i for i, s in enumerate(steps) if s in pulumi_steps(job, "up")]
        preview = pulumi_steps(job, "preview")
        if not (up or preview) or (up and "PULUMI_BACKEND_URL" in yaml.safe_dump(job)):
            continue
        guard = [i for i, s in enumerate(steps) if "mesh_components.cli.preview_guard" in str(s.get("run", ""))]
        assert guard, f"{where}: no preview guard"
        run = steps[guard[0]]["run"]
        assert "pulumi preview" in run and "--json" in run and run.index("pulumi preview") < run.index("preview_guard")
        if up:
            assert guard[0] < up[0], f"{where}: the guard must run before `pulumi up`"
        guarded += 1
    assert guarded >= 3  # deploy staging and prod, preview
