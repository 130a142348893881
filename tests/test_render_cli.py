"""The offline render contract and the CLI: golden output for dev, byte-identical re-renders,
redaction, the upstream schema and chart checks in ../shared/tools, and error output."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mesh_components.cli import main
from mesh_components.gateway_api import channel_of_url
from mesh_components.render import REDACTED, render_mesh, write_tree
from mesh_components.spec import load_stack

from program_harness import ROOT

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
GOLDEN = ROOT / "tests" / "golden"
TOOLS = ROOT.parent / "shared" / "tools"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mesh_components", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dev_render_matches_golden(tmp_path):
    """Golden output: regenerate with `python -m mesh_components render dev --out tests/golden/dev`."""
    result = cli("render", "dev", "--out", str(tmp_path / "dev"))
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "dev") == tree(GOLDEN / "dev")


@pytest.mark.parametrize("stack", STACKS)
def test_render_is_byte_identical(stack, tmp_path):
    for run in ("a", "b"):
        assert main(["render", stack, "--out", str(tmp_path / run)]) == 0
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if p.is_dir()) == \
        sorted(c.name for c in load_stack(stack, root=ROOT).spec.clusters)


def test_rerender_replaces_the_previous_output_and_refuses_foreign_folders(tmp_path):
    out = tmp_path / "out"
    assert main(["render", "prod", "--out", str(out)]) == 0
    assert main(["render", "dev", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["dev"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    result = cli("render", "dev", "--out", str(foreign))
    assert result.returncode == 1 and "--out:" in result.stderr
    assert (foreign / "keep.txt").read_text() == "mine"


def test_secret_values_are_redacted_unless_asked(tmp_path):
    states = render_mesh(load_stack("dev", root=ROOT))
    st = states["dev"]
    st.concerns["egress"].append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                  "metadata": {"name": "api-key", "namespace": "mesh-egress"},
                                  "stringData": {"token": "s3cr3t-value"}})
    write_tree(states, tmp_path / "redacted")
    write_tree(states, tmp_path / "plain", include_secrets=True)
    red = "\n".join(p.read_text() for p in (tmp_path / "redacted").rglob("*.yaml"))
    assert "s3cr3t-value" not in red and REDACTED in red
    assert "s3cr3t-value" in (tmp_path / "plain" / "dev" / "mesh-egress--secret--api-key.yaml").read_text()
    # CA keys are deploy-time values: never in render output, with or without --include-secrets
    cacerts = yaml.safe_load((tmp_path / "plain" / "dev" / "istio-system--secret--cacerts.yaml").read_text())
    assert cacerts["stringData"]["ca-key.pem"] == "$(deploy-time:ca/dev/key_pem)"
    assert "PRIVATE KEY" not in red


@pytest.mark.skipif(not TOOLS.is_dir(), reason="../shared/tools is not beside the project")
@pytest.mark.parametrize("stack", STACKS)
def test_rendered_stacks_pass_the_upstream_checks(stack, tmp_path):
    out = tmp_path / stack
    assert main(["render", stack, "--out", str(out)]) == 0
    for cluster in sorted(p for p in out.iterdir() if p.is_dir()):
        # against the Gateway API channel the cluster installs (Linkerd: experimental; managed: the cloud's standard)
        manifests = yaml.safe_load((cluster / "remote-manifests.yaml").read_text()) or []
        channel = next((channel_of_url(m["url"]) for m in manifests if m["name"] == "gateway-api-crds"), "standard")
        v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--gateway-api", channel, str(cluster)],
                           capture_output=True, text=True)
        assert v.returncode == 0, v.stdout[-3000:] + v.stderr[-2000:]
        assert " 0 invalid" in v.stdout.splitlines()[-1]
    h = subprocess.run([str(TOOLS / "check-helm-values"), str(out)], capture_output=True, text=True)
    assert h.returncode == 0, h.stdout[-3000:] + h.stderr[-2000:]
    assert h.stdout.splitlines()[-1].endswith(" 0 with problems")


BAD_STACKS = {
    "typo-enum": ("backend: {type: istoi}\n    clusters: [{name: c1, cloud: aws, region: r}]\n",
                  "mesh.backend.type: 'istoi' is not one of 'istio', 'linkerd' or 'osm'; did you mean 'istio'?"),
    "dangling": ("backend: {type: istio}\n    clusters: [{name: c1, cloud: aws, region: r}]\n"
                 "    namespaces: [{name: shop, clusters: [c9]}]\n",
                 "mesh.namespaces[0].clusters[0]: unknown cluster 'c9'; known: c1"),
    "bad-name": ("backend: {type: istio}\n    clusters: [{name: Cluster_1, cloud: aws, region: r}]\n",
                 "mesh.clusters[0].name: 'Cluster_1' is not a DNS-1123 label"),
    "bad-port": ("backend: {type: istio}\n    clusters: [{name: c1, cloud: aws, region: r}]\n"
                 "    services: [{name: web, namespace: shop, ports: [{port: 99999}]}]\n",
                 "mesh.services[0].ports[0].port: 99999 is not a port number: use 1-65535"),
    "bad-weight": ("backend: {type: istio}\n    clusters: [{name: c1, cloud: aws, region: r}]\n"
                   "    services: [{name: web, namespace: shop, ports: [{port: 80}], versions: [{name: v1}]}]\n"
                   "    trafficSplits: [{name: s, namespace: shop, service: web, backends: [{service: web-v1, weight: 0}]}]\n",
                   "mesh.trafficSplits[0].backends: every weight is 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_STACKS))
def test_bad_stack_files_exit_1_with_path_message_lines(case, tmp_path):
    body, expected = BAD_STACKS[case]
    f = tmp_path / f"Pulumi.{case}.yaml"
    f.write_text(f"config:\n  service-mesh:mesh:\n    name: shop\n    {body}")
    for command in (["validate", str(f)], ["render", str(f), "--out", str(tmp_path / "out")]):
        result = cli(*command)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert any(line.startswith(expected) for line in lines), lines
        assert all(": " in line for line in lines)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_unreadable_inputs_exit_1(tmp_path):
    (tmp_path / "Pulumi.x.yaml").write_text("config: [1")
    for target, fragment in ((str(tmp_path / "Pulumi.x.yaml"), "not valid YAML"), ("nosuch", "no such stack")):
        result = cli("validate", target)
        assert result.returncode == 1 and fragment in result.stderr and "Traceback" not in result.stderr


def test_validate_reports_counts():
    result = cli("validate", "prod")
    assert result.returncode == 0
    assert "valid: mesh 'bookstore-prod' (istio 1.30.3), 3 cluster(s)" in result.stdout
