"""Telemetry as code: ``mesh.telemetry`` (spec.Telemetry) rendered per mesh, exact or refused.

Pure core (no Pulumi import). The render (``render._render_mesh``) asks this package, per cluster:

- :func:`problems` ``(spec) -> [(path, message)]``: settings the mesh cannot honour exactly, each
  naming its ``mesh.telemetry...`` field and what would work (raised as a ``SpecError`` before
  anything is rendered);
- :func:`objects` ``(spec, cluster, model) -> [object]``: the ``telemetry`` concern's objects
  (Istio ``Telemetry``, ``PodMonitor``/``ServiceMonitor``, ``PrometheusRule`` recording rules...);
- :func:`release_values` ``(spec, cluster) -> {release name: values}``: values deep-merged into the
  control plane's own releases (istiod ``meshConfig.extensionProviders``, Linkerd proxy settings,
  OSM chart settings);
- :func:`releases` ``(spec, cluster) -> [release dict]``: Helm releases of their own (linkerd-viz),
  shaped like ``control_plane``'s (``{name, namespace, repository, chart, version, values,
  depends_on}``), installed by the ``MeshTelemetry`` component;
- :func:`namespace_annotations` / :func:`namespace_labels` ``(spec, namespace) -> dict``: what the
  mesh's namespace patches carry for telemetry (Linkerd's access-log annotation, OSM's metrics
  annotation).

Without ``mesh.telemetry`` every function returns nothing, so the render is byte-identical to one
without telemetry, and removing the section removes exactly what it added.
"""
from __future__ import annotations

from ...spec.errors import Problem
from . import envoy_gateway, golden_signals, istio, linkerd, osm

BACKENDS = {"istio": istio, "linkerd": linkerd, "osm": osm}
"""Backend type -> its module (each defines problems, objects, release_values, releases,
namespace_annotations and namespace_labels with the signatures above)."""

CONCERN = "telemetry"


def problems(spec) -> list[Problem]:
    """What ``spec.telemetry`` asks that the backend (or Envoy Gateway) cannot render exactly."""
    if spec.telemetry is None:
        return []
    return (BACKENDS[spec.backend.type].problems(spec) + envoy_gateway.problems(spec)
            + golden_signals.problems(spec))


def objects(spec, cluster, model) -> list[dict]:
    """The ``telemetry`` concern's objects for ``cluster`` (a ``spec.Cluster``)."""
    if spec.telemetry is None:
        return []
    return (BACKENDS[spec.backend.type].objects(spec, cluster, model) + envoy_gateway.objects(spec, cluster)
            + golden_signals.objects(spec, cluster, model))


def release_values(spec, cluster) -> dict[str, dict]:
    """Release name -> values to deep-merge into that (already rendered) release of ``cluster``."""
    if spec.telemetry is None:
        return {}
    return BACKENDS[spec.backend.type].release_values(spec, cluster)


def releases(spec, cluster, model=None) -> list[dict]:
    """Helm releases of the telemetry concern in ``cluster`` (e.g. linkerd-viz). ``model`` (the
    traffic model) reaches Linkerd's, whose bundled Prometheus is annotated with a checksum of the
    rule file it mounts (:func:`linkerd.releases`)."""
    if spec.telemetry is None:
        return []
    if spec.backend.type == "linkerd":
        return linkerd.releases(spec, cluster, model)
    return BACKENDS[spec.backend.type].releases(spec, cluster)


def namespace_annotations(spec, namespace: str) -> dict[str, str]:
    if spec.telemetry is None:
        return {}
    return BACKENDS[spec.backend.type].namespace_annotations(spec, namespace)


def namespace_labels(spec, namespace: str) -> dict[str, str]:
    if spec.telemetry is None:
        return {}
    return BACKENDS[spec.backend.type].namespace_labels(spec, namespace)


PROMETHEUS_OPERATOR_GROUP = "monitoring.coreos.com"


def notices(spec, states) -> list[tuple[str, str]]:
    """What the rendered telemetry needs that the stack does not create, as ``(path, message)``
    notices for ``validate`` (code ``telemetry-prerequisite``): the Prometheus Operator's CRDs in each
    cluster that gets ``PodMonitor``/``ServiceMonitor``/``PrometheusRule`` objects (the API server
    refuses a custom resource whose CRD is missing: "no matches for kind"), and a
    ``prometheus.namespace`` the mesh does not create; then the backend module's own ``notices(spec,
    states)`` where it has one (:func:`istio.notices`). ``states``: cluster -> ``render.ClusterState``."""
    if spec.telemetry is None:
        return []
    kinds: dict[str, set[str]] = {}
    namespaces: dict[str, set[str]] = {}
    for cluster, st in states.items():
        for o in st.concerns.get(CONCERN, []):
            if o["apiVersion"].split("/")[0] == PROMETHEUS_OPERATOR_GROUP:
                kinds.setdefault(cluster, set()).add(o["kind"])
                namespaces.setdefault(o["metadata"].get("namespace") or "", set()).add(cluster)
    out: list[tuple[str, str]] = []
    if kinds:
        every = sorted({k for ks in kinds.values() for k in ks})
        out.append(("mesh.telemetry.metrics.prometheus.mode",
                    f"{', '.join(every)} are custom resources of the Prometheus Operator: its CRDs "
                    f"({PROMETHEUS_OPERATOR_GROUP}/v1) must be installed in cluster(s) {', '.join(sorted(kinds))} "
                    f"before 'pulumi up' (the mesh does not install them; the API server refuses a custom resource "
                    f"without its CRD; 'diff' notes a kind the cluster does not serve), and the operator's "
                    f"Prometheus must select them (mesh.telemetry.metrics.prometheus.labels)"))
    created = {o["metadata"]["name"] for st in states.values() for c in st.concerns.values() for o in c
               if o["kind"] == "Namespace" and o["apiVersion"] == "v1"}
    wanted = spec.telemetry.metrics.prometheus.namespace
    if wanted and wanted not in created and wanted in namespaces:
        out.append(("mesh.telemetry.metrics.prometheus.namespace",
                    f"namespace {wanted!r} is yours to create in cluster(s) {', '.join(sorted(namespaces[wanted]))} "
                    f"(the Prometheus Operator's, usually): the mesh puts its monitors and rules there and does not "
                    f"create it"))
    backend_notices = getattr(BACKENDS[spec.backend.type], "notices", None)  # e.g. istio.notices
    return out + (backend_notices(spec, states) if backend_notices else [])
