"""mesh.telemetry through the real program under Pulumi's mocks: one ``MeshTelemetry`` component
per cluster holding exactly the rendered telemetry concern (objects and releases), none without a
``telemetry`` section, and the same registrations on a second run."""
from __future__ import annotations

import pytest

from mesh_components.core.render import CONCERNS

from cp_helpers import by_type, program, render, stack_mesh
from program_harness import FAKE_KUBECONFIG

TELEMETRY = {"metrics": {"prometheus": {"mode": "operator", "labels": {"release": "kube-prometheus-stack"}}},
             "accessLogs": {"enabled": True, "format": "json"},
             "tracing": {"enabled": True, "provider": "opentelemetry",
                         "address": "otel-collector.observability.svc.cluster.local:4317", "samplingPercent": 10}}


@pytest.fixture(autouse=True)
def kube_env(tmp_path, monkeypatch):
    """A kubeconfig file for the stacks that read ~/.kube/config (dev, osm)."""
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(FAKE_KUBECONFIG)
    monkeypatch.setenv("HOME", str(tmp_path))


def with_telemetry(stack: str, telemetry: dict | None = None) -> dict:
    mesh = stack_mesh(stack)
    mesh["telemetry"] = telemetry or TELEMETRY
    return mesh


@pytest.fixture(scope="module")
def prod_runs():
    mesh = with_telemetry("prod")
    return mesh, program(mesh, base="prod"), program(mesh, base="prod")


def test_telemetry_concern_is_applied_after_the_gateway_and_before_the_links():
    assert CONCERNS.index("gateway") < CONCERNS.index("telemetry") < CONCERNS.index("multicluster")


def test_one_telemetry_component_per_cluster_holding_exactly_the_rendered_concern(prod_runs):
    mesh, regs, _ = prod_runs
    states = render(mesh)
    comps = by_type(regs, "mesh:index:MeshTelemetry")
    assert sorted(c.name for c in comps) == sorted(f"mesh-{c}-telemetry" for c in states)
    mesh_urn = by_type(regs, "mesh:index:ServiceMesh")[0].urn
    assert all(c.parent == mesh_urn for c in comps)
    for comp in comps:
        cluster = comp.name[len("mesh-"):-len("-telemetry")]
        st = states[cluster]
        children = [r for r in regs if r.parent == comp.urn]
        expected = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
                    for o in st.concerns["telemetry"]}
        registered = {(r.inputs.get("kind") or r.type.rsplit(":", 1)[1], (r.inputs.get("metadata") or {}).get("namespace"),
                       (r.inputs.get("metadata") or {}).get("name")) for r in children
                      if r.type.startswith("kubernetes:") and "helm" not in r.type}
        assert registered == expected
        releases = sorted(r.inputs.get("name") for r in children if "helm.sh" in r.type)
        assert releases == sorted(r.name for r in st.releases if r.concern == "telemetry")
        assert st.concerns["telemetry"], f"{cluster}: telemetry on renders nothing"


def test_telemetry_resources_are_on_their_clusters_provider(prod_runs):
    _, regs, _ = prod_runs
    providers = {f"{p.urn}::{p.name}-id": p.inputs["clusterIdentifier"]
                 for p in by_type(regs, "pulumi:providers:kubernetes")}
    comps = {c.urn: c.name for c in by_type(regs, "mesh:index:MeshTelemetry")}
    for r in regs:
        if r.parent in comps and r.type.startswith("kubernetes:"):
            assert f"-{providers[r.provider]}-" in comps[r.parent]


def test_second_run_registers_identical_telemetry(prod_runs):
    _, first, second = prod_runs
    def view(regs):
        return sorted((r.type, r.name, repr(r.inputs)) for r in regs if "telemetry" in r.name)
    assert view(first) == view(second) and view(first)


@pytest.mark.parametrize("stack", ["dev", "linkerd", "osm"])
def test_no_telemetry_section_registers_no_telemetry_component(stack):
    mesh = stack_mesh(stack)
    mesh.pop("telemetry", None)
    regs = program(mesh, base=stack)
    assert not by_type(regs, "mesh:index:MeshTelemetry")
    assert not [r for r in regs if "-telemetry" in r.name]


@pytest.mark.parametrize("mode", ["operator", "annotations"])
def test_the_component_outputs_the_series_it_records_in_either_form(mode):
    """PrometheusRule (operator) or the rule-file ConfigMap (annotations): the same series."""
    from mesh_components.components import recording_rule_names
    from mesh_components.core.telemetry import golden_signals

    mesh = with_telemetry("prod", {"metrics": {"prometheus": {"mode": mode}}})
    names = recording_rule_names(render(mesh)["prod-aws"].concerns["telemetry"])
    assert golden_signals.SERVICE_REQUESTS in names and golden_signals.RULE_REQUESTS in names
    assert set(names) <= set(golden_signals.SERIES)
