"""Helpers for the control-plane, multi-cluster and revision tests: stack specs built from the
shipped stacks, rendering, and running them through the mocked program."""
from __future__ import annotations

import copy
import json
import subprocess

import yaml

from mesh_components.core.render import RELEASES_DIR, render_mesh, write_tree
from mesh_components.spec import load_mesh

from program_harness import FAKE_KUBECONFIG, ROOT, run_program, stack_config

CLOUDS = ("gcp", "azure", "onprem", "gcp")


def stack_mesh(stack: str) -> dict:
    """The ``service-mesh:mesh`` object of ``stacks/Pulumi.<stack>.yaml`` (a fresh copy)."""
    return copy.deepcopy(yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
                         ["config"]["service-mesh:mesh"])


def stack_with_telemetry(stack: str, telemetry: dict | None) -> dict:
    """``stack_mesh(stack)`` with ``mesh.telemetry`` replaced by ``telemetry`` (None: no section at
    all; the shipped prod, staging, linkerd and osm stacks have one)."""
    mesh = stack_mesh(stack)
    mesh.pop("telemetry", None)
    if telemetry is not None:
        mesh["telemetry"] = copy.deepcopy(telemetry)
    return mesh


def kubeconfig_for(cluster: str) -> str:
    """A kubeconfig whose server names the cluster, so tests can tell which cluster a secret reads."""
    return FAKE_KUBECONFIG.replace("https://127.0.0.1:6443", f"https://{cluster}.api.example:6443")


def env_name(cluster: str) -> str:
    return "KC_" + cluster.upper().replace("-", "_")


def with_clusters(mesh: dict, n: int, *, backend: dict | None = None, same_network: bool = False) -> dict:
    """``mesh`` with ``n`` clusters ``c1..cn`` (clouds without static-address rules, one network each
    unless ``same_network``), kubeconfigs from the variables :func:`env_name` names."""
    out = copy.deepcopy(mesh)
    out["clusters"] = [{"name": f"c{i + 1}", "cloud": CLOUDS[i % len(CLOUDS)], "region": f"region-{i + 1}",
                        "network": "flat" if same_network else f"net-{i + 1}",
                        "kubeconfig": {"env": env_name(f"c{i + 1}")}} for i in range(n)]
    out.pop("ingress", None)
    if backend is not None:
        out["backend"] = backend
    for v in (s.get("versions") or [] for s in out["services"]):
        for version in v:
            version.pop("clusters", None)
    return out


def with_static_east_west(mesh: dict) -> dict:
    """``mesh`` with a static east-west gateway address (198.51.100.<n>) on every cluster that has
    none: ambient multi-network egress names the other networks' gateways in its NetworkPolicy
    (``egress.ambient_egress_fences``). Use on :func:`with_clusters` meshes (no AWS clusters)."""
    out = copy.deepcopy(mesh)
    for i, c in enumerate(out["clusters"]):
        c.setdefault("eastWestGateway", {"addresses": [f"198.51.100.{i + 1}"]})
    return out


def set_kube_env(monkeypatch, mesh: dict) -> None:
    for c in mesh["clusters"]:
        source = c.get("kubeconfig") or {}
        if "env" in source:
            monkeypatch.setenv(source["env"], kubeconfig_for(c["name"]))


def render(mesh: dict):
    """Render a spec dict (SMI files resolved against the project)."""
    return render_mesh(load_mesh(mesh, base_dir=ROOT))


def program(mesh: dict, stack: str = "test", base: str = "prod", reads: list | None = None):
    """Run the real program with ``mesh`` as the stack's mesh config; returns the registrations."""
    return run_program({**stack_config(base), "service-mesh:mesh": json.dumps(mesh)}, stack, reads=reads)


def by_type(regs, typ):
    return [r for r in regs if r.type == typ]


def find(objects, kind, name, namespace=None):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
                and o["metadata"].get("namespace") == namespace)


def release(state, name):
    return next(r for r in state.releases if r.name == name)


def run_recording(config: dict, stack: str = "test", reads: list | None = None):
    """``run_program`` that also returns every registration's raw ``RegisterResourceRequest`` by
    (mock) URN, for what :class:`program_harness.Registration` does not hold: ``aliases`` (alias
    specs, the SDK sends them to a monitor that supports them: ``pulumi/runtime/resource.py``
    ``prepare_aliases``) and ``retainOnDelete``."""
    import pytest

    from program_harness import RecordingMonitor

    requests: dict = {}
    original = RecordingMonitor.RegisterResource

    def register(self, request):
        response = original(self, request)
        requests[response.urn] = request
        return response

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RecordingMonitor, "RegisterResource", register)
        regs = run_program(config, stack, reads=reads)
    return regs, requests


TOOLS = ROOT.parent / "shared" / "tools"


def assert_upstream_clean(states, out, profile: str) -> None:
    """Write ``states`` to ``out`` and check every cluster with ``../shared/tools/validate-manifests``
    (``profile``, with the Gateway API channel the cluster installs) and the Helm values with
    ``check-helm-values``: zero invalid documents, zero values with problems."""
    write_tree(states, out)
    for cluster in sorted(p for p in out.iterdir() if p.is_dir()):
        channel = "experimental" if "/experimental-install.yaml" in (
            cluster / RELEASES_DIR / "remote-manifests.yaml").read_text() else "standard"
        v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--profile", profile, "--gateway-api", channel,
                            str(cluster)], capture_output=True, text=True)
        assert v.returncode == 0 and " 0 invalid" in v.stdout.splitlines()[-1], v.stdout[-3000:]
    h = subprocess.run([str(TOOLS / "check-helm-values"), str(out)], capture_output=True, text=True)
    assert h.returncode == 0 and " 0 with problems" in h.stdout.splitlines()[-1], h.stdout[-3000:]
