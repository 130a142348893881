"""One cluster's telemetry component."""
from __future__ import annotations


import yaml

from .base import _ReleasingComponent


class MeshTelemetry(_ReleasingComponent):
    """One cluster's telemetry (type ``mesh:index:MeshTelemetry``), from ``mesh.telemetry``: Istio
    ``Telemetry`` objects, ``PodMonitor``/``ServiceMonitor`` scrape objects and ``PrometheusRule``
    recording rules and alerts (custom resources of the cluster's Prometheus Operator, which the mesh
    never installs), the linkerd-viz release. Registered only when the spec has a ``telemetry``
    section. Outputs: ``objects``, ``recording_rules`` (the golden-signal series names) and
    ``releases``."""

    TYPE, CONCERN = "mesh:index:MeshTelemetry", "telemetry"

    def outputs(self, objects):
        return {"objects": len(objects), "recording_rules": recording_rule_names(objects),
                "releases": sorted(self.releases)}


def recording_rule_names(objects: list[dict]) -> list[str]:
    """The series the telemetry objects record (``record`` of every rule), sorted: from
    ``PrometheusRule``s (``spec.groups``) and from the rule-file ConfigMap of the annotations and
    bundled modes (``telemetry.golden_signals.RULE_FILE``, a Prometheus rule file)."""
    from ..core.telemetry.golden_signals import RULE_FILE

    groups = []
    for o in objects:
        if o["kind"] == "PrometheusRule":
            groups += o.get("spec", {}).get("groups", [])
        elif o["kind"] == "ConfigMap" and RULE_FILE in (o.get("data") or {}):
            groups += (yaml.safe_load(o["data"][RULE_FILE]) or {}).get("groups", [])
    return sorted({r["record"] for g in groups for r in g.get("rules", []) if "record" in r})
