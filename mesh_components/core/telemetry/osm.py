"""``mesh.telemetry`` for Open Service Mesh v1.2.4 (chart 1.2.4): exact or refused. Sources:
openservicemesh/osm at v1.2.4 and ``../shared/charts/osm``.

Metrics
    OSM's sidecars serve Prometheus stats on their ``proxy-metrics`` port (15010,
    ``/stats/prometheus``; ``pkg/constants/constants.go:22-23,61-62,88-89``) only when the pod is
    annotated ``prometheus.io/scrape: "true"`` (``pkg/envoy/lds/response.go:74-84``,
    ``pkg/k8s/client.go:255-265``), which the injector adds to the pods of a namespace annotated
    ``openservicemesh.io/metrics: enabled`` (``pkg/injector/patch.go:73-85``,
    ``pkg/injector/metrics.go:10-35``; ``osm metrics enable``): :func:`namespace_annotations` sets
    it on every mesh namespace when metrics are on (pods injected before keep theirs until
    restarted). ``metrics.prometheus.mode``:

    - ``bundled``: the chart's Prometheus (``osm.deployPrometheus``, values.yaml:266-267), whose
      configuration scrapes every 10s, fixed (``charts/osm/templates/prometheus-configmap.yaml:12-15``):
      another ``scrapeIntervalSeconds`` is refused;
    - ``annotations``: a Prometheus of the user's that discovers pods by ``prometheus.io/*``
      annotations finds the sidecars (and the controller, ``templates/osm-deployment.yaml:26-28``);
      ``scrapeIntervalSeconds`` is that Prometheus's own and is not rendered;
    - ``operator``: PodMonitors (:func:`pod_monitors`) with the bundled Prometheus's scrape jobs
      ``kubernetes-pods`` and ``smi-metrics`` (prometheus-configmap.yaml:53-211, what OSM documents
      for bringing your own Prometheus) translated to the operator's fields, keeping also what the
      golden-signal rules read (:func:`keep_metrics`).

    ``prometheus.url`` is refused: OSM has no dashboard to point at a Prometheus; so are settings
    nothing rendered would carry (:func:`_unused_target_problems`). Pods injected before metrics
    were on serve none until restarted (:func:`notices`). Release values are written only where
    they differ from the chart's defaults (:func:`release_values`).

    What the sidecars export, after those jobs (for ``golden_signals``):

    - Envoy's stats, ``envoy_`` prefix, those the jobs keep (prometheus-configmap.yaml:56-59):
      ``envoy_cluster_upstream_rq_total``, ``envoy_cluster_upstream_rq_xx``
      (``envoy_response_code_class``), ``envoy_cluster_upstream_cx_active``, ...
      ``envoy_server_live`` (the bundled job drops the latency histogram ``envoy_cluster_upstream_rq_time``
      and ``envoy_cluster_upstream_cx_total``; operator mode keeps them, :func:`keep_metrics`), labelled
      ``envoy_cluster_name`` = ``<namespace>/<service>|<target port>`` (the upstream service; with
      ``|local`` for the pod's own inbound cluster, ``pkg/service/types.go:89-97``), and by the job
      ``source_namespace``, ``source_pod_name``, ``source_service`` (the pod's ``app`` label),
      ``source_workload_kind``, ``source_workload_name`` (the scraped pod's);
    - with the ``enableWASMStats`` feature flag (chart default true, values.yaml:469-470): the
      WASM filter's ``osm_request_total`` (counter; ``response_code``, ``source_namespace``,
      ``source_kind``, ``source_name``, ``source_pod``, ``destination_namespace``,
      ``destination_kind``, ``destination_name``, ``destination_pod``) and
      ``osm_request_duration_ms`` (histogram, milliseconds, the same labels but ``response_code``;
      ``wasm/stats.cc:13-38``), counted on the calling side (stats.cc:90-126), their labels
      recovered from the stat names by the ``smi-metrics`` job (prometheus-configmap.yaml:131-211);
    - no certificate expiry metric (the controller's ``osm_*`` metrics have issued counts and
      times only, ``pkg/metricsstore/metricsstore.go:212-227``; the bundled jobs drop Envoy's
      ``envoy_server_days_until_first_cert_expiring``).

Access logs
    OSM v1.2.4 gives every sidecar listener and HTTP connection manager one access log: JSON, to
    stdout, every request (``pkg/envoy/xdsutil.go:78-127``; ``pkg/envoy/lds/http_connection.go:87``,
    ``listener.go:53,154``), with no setting to turn it off, change it or filter it (MeshConfig has
    none, ``charts/osm/templates/preset-mesh-config.yaml``). So the only exact settings are
    ``enabled: true, format: json, filter: all``, which render nothing; anything else is refused.

Tracing
    ``spec.observability.tracing`` of the MeshConfig (``enable``, ``address``, ``port``,
    ``endpoint``; chart ``osm.tracing``, values.yaml:335-345, preset-mesh-config.yaml:28-35): Zipkin
    only (``pkg/envoy/lds/tracing.go:13-39``, HTTP JSON to ``/api/v2/spans``,
    ``pkg/constants/constants.go:47``), mesh-wide, with no sampling setting, so Envoy traces every
    request that arrives without a sampling decision (the HTTP connection manager's
    ``random_sampling`` defaults to 100%, Envoy ``http_connection_manager.proto`` ``Tracing``):
    only ``samplingPercent: 100`` is exact (an override's ``samplingPercent`` while tracing is off
    is refused: it would apply nowhere). The preset reaches the MeshConfig only when
    osm-bootstrap creates it (``cmd/osm-bootstrap/osm-bootstrap.go:282-329``), so a running mesh
    gets the setting through a patch of ``osm-mesh-config`` (:func:`mesh_config_patch`, as
    ``mesh_components.meshes.osm.control_plane_objects_for`` does for retries).
"""
from __future__ import annotations

import re

from ...meshes import osm as cp
from ..ca import OSM_NAMESPACE
from ...spec.errors import Problem
from ..meta import k8s_object, k8s_patch

METRICS_ANNOTATION = "openservicemesh.io/metrics"
POD_MONITOR_API = "monitoring.coreos.com/v1"
PROXY_UUID_LABEL = "osm-proxy-uuid"
"""Label of every pod OSM injected (``pkg/constants/constants.go:118-119``)."""
PROXY_METRICS_PORT = "proxy-metrics"
PROXY_METRICS_PATH = "/stats/prometheus"
BUNDLED_SCRAPE_SECONDS = 10
TRACING_ENDPOINT = "/api/v2/spans"
"""Zipkin's v2 span API, OSM's default (``pkg/constants/constants.go:47``)."""
OSM_ACCESS_LOG = (True, "json", "all")
"""What OSM's sidecars always do: ``(enabled, format, filter)``."""

KEEP_METRICS = ("(envoy_server_live|envoy_cluster_health_check_.*|envoy_cluster_upstream_rq_xx|"
                "envoy_cluster_upstream_cx_active|envoy_cluster_upstream_cx_tx_bytes_total|"
                "envoy_cluster_upstream_cx_rx_bytes_total|envoy_cluster_upstream_rq_total|"
                "envoy_cluster_upstream_cx_destroy_remote_with_active_rq|envoy_cluster_upstream_cx_connect_timeout|"
                "envoy_cluster_upstream_cx_destroy_local_with_active_rq|envoy_cluster_upstream_rq_pending_failure_eject|"
                "envoy_cluster_upstream_rq_pending_overflow|envoy_cluster_upstream_rq_timeout|"
                "envoy_cluster_upstream_rq_rx_reset|envoy_cluster_upstream_rq_retry.*|^osm.*)")
"""The metrics the ``kubernetes-pods`` job keeps (``prometheus-configmap.yaml:56-59``)."""


def keep_metrics() -> str:
    """The operator-mode keep list: :data:`KEEP_METRICS` plus every metric the golden-signal rules
    read (``golden_signals.METRICS_READ["osm"]``, with a histogram's ``_sum`` and ``_count`` beside
    its ``_bucket``) that it would drop, e.g. the latency histogram ``envoy_cluster_upstream_rq_time``,
    which the bundled job drops (so ``bundled`` mode has no golden signals on OSM)."""
    from . import golden_signals

    names = []
    for m in golden_signals.METRICS_READ["osm"]:
        names += [m[:-len("bucket")] + s for s in ("bucket", "sum", "count")] if m.endswith("_bucket") else [m]
    extra = [m for m in dict.fromkeys(names) if not re.fullmatch(KEEP_METRICS, m)]
    return KEEP_METRICS[:-1] + "".join(f"|{re.escape(m)}" for m in extra) + ")" if extra else KEEP_METRICS
WASM_LABELS = ("source_namespace", "source_kind", "source_name", "source_pod",
               "destination_namespace", "destination_kind", "destination_name", "destination_pod")
"""The WASM stats' tags after ``response_code`` (``wasm/stats.cc:20-38``)."""


def _metrics_on(spec) -> bool:
    return spec.telemetry.metrics.enabled


def _mode(spec) -> str:
    return spec.telemetry.metrics.prometheus.mode


def problems(spec) -> list[Problem]:
    """``(path, message)`` for every ``mesh.telemetry`` setting OSM v1.2.4 cannot honour exactly
    (see the module docstring); empty without ``mesh.telemetry``."""
    t = spec.telemetry
    if t is None:
        return []
    out: list[Problem] = []
    m = t.metrics
    if m.enabled and m.prometheus.mode == "bundled" and m.scrape_interval_seconds != BUNDLED_SCRAPE_SECONDS:
        out.append(("mesh.telemetry.metrics.scrapeIntervalSeconds",
                    f"OSM's bundled Prometheus scrapes every {BUNDLED_SCRAPE_SECONDS}s (fixed in the chart's "
                    f"configuration): set scrapeIntervalSeconds: {BUNDLED_SCRAPE_SECONDS}, or use mode operator"))
    if m.prometheus.url is not None:
        out.append(("mesh.telemetry.metrics.prometheus.url",
                    "OSM has no dashboard that reads a Prometheus URL: drop url"))
    out += _unused_target_problems(spec)
    out += _access_log_problems("mesh.telemetry.accessLogs", t.access_logs.enabled, t.access_logs.format,
                                t.access_logs.filter)
    for i, o in enumerate(t.overrides):
        where = f"mesh.telemetry.overrides[{i}]"
        if o.access_logs is not None:
            out += _access_log_problems(f"{where}.accessLogs", o.access_logs.enabled, o.access_logs.format,
                                        o.access_logs.filter)
        if o.tracing is not None and o.tracing.enabled is not None and o.tracing.enabled != t.tracing.enabled:
            out.append((f"{where}.tracing.enabled",
                        "OSM turns tracing on or off for the whole mesh (MeshConfig observability.tracing): set "
                        "mesh.telemetry.tracing.enabled and drop this override"))
        if o.tracing is not None and o.tracing.sampling_percent is not None and not t.tracing.enabled:
            out.append((f"{where}.tracing.samplingPercent",
                        "tracing is off for the whole mesh (mesh.telemetry.tracing.enabled: false; OSM traces all or "
                        "none, MeshConfig observability.tracing), so this percent would apply nowhere: drop "
                        "samplingPercent, or turn tracing on"))
        elif o.tracing is not None and o.tracing.sampling_percent not in (None, 100):
            out.append((f"{where}.tracing.samplingPercent", _SAMPLING))
    if t.tracing.enabled:
        if t.tracing.provider != "zipkin":
            out.append(("mesh.telemetry.tracing.provider",
                        "OSM v1.2.4's sidecars send spans to a Zipkin collector only (HTTP JSON, /api/v2/spans): use "
                        "provider zipkin, e.g. an OpenTelemetry Collector's zipkin receiver"))
        if t.tracing.sampling_percent != 100:
            out.append(("mesh.telemetry.tracing.samplingPercent", _SAMPLING))
    return out


def _unused_target_problems(spec) -> list[Problem]:
    """Settings of ``metrics`` that nothing rendered for OSM would carry, when given explicitly
    (``model_fields_set``): ``scrapeIntervalSeconds`` in ``annotations`` mode (the scraping
    Prometheus's own interval applies: OSM's pods carry only ``prometheus.io/scrape``, ``port`` and
    ``path``, pkg/injector/metrics.go@v1.2.4:10-35); ``prometheus.labels`` outside ``operator``
    mode (only the PodMonitors and PrometheusRules carry them); ``prometheus.namespace`` in
    ``bundled`` mode (the chart's Prometheus runs in osm-system) and in ``annotations`` mode when
    no rule file is rendered there (``goldenSignals: false``; OSM has no alert,
    ``golden_signals.alert_rules``)."""
    from . import golden_signals

    m = spec.telemetry.metrics
    p = m.prometheus
    if not m.enabled:
        return []
    out: list[Problem] = []
    if p.mode == "annotations" and "scrape_interval_seconds" in m.model_fields_set:
        out.append(("mesh.telemetry.metrics.scrapeIntervalSeconds",
                    "with prometheus.mode annotations the scraping Prometheus's own scrape_interval applies: OSM's "
                    "pods carry only the prometheus.io/scrape, port and path annotations: set the interval in that "
                    "Prometheus and remove scrapeIntervalSeconds, or use mode operator (the PodMonitors carry it)"))
    if p.mode != "operator" and "labels" in p.model_fields_set and p.labels:
        out.append(("mesh.telemetry.metrics.prometheus.labels",
                    f"mode {p.mode} renders no PodMonitor or PrometheusRule for labels to mark: drop labels, or use "
                    f"mode operator"))
    rule_file = p.mode == "annotations" and (m.golden_signals or golden_signals.alert_rules(spec))
    if p.mode != "operator" and p.namespace is not None and not rule_file:
        why = ("OSM's bundled Prometheus runs in osm-system (chart osm 1.2.4, osm.deployPrometheus)"
               if p.mode == "bundled" else "with goldenSignals off no rule file is rendered, and nothing else goes "
                                           "in that namespace in mode annotations")
        out.append(("mesh.telemetry.metrics.prometheus.namespace", f"{why}: drop namespace"))
    return out


_SAMPLING = ("OSM v1.2.4 sets no trace sampling, so its sidecars trace every request that comes without a sampling "
             "decision (Envoy's default of 100%): set samplingPercent: 100")


def _access_log_problems(where: str, enabled, fmt, filter_) -> list[Problem]:
    on, json, all_ = OSM_ACCESS_LOG
    why = ("OSM v1.2.4's sidecars always write a JSON access log of every request to stdout, and no setting turns it "
           "off, changes its format or filters it")
    out: list[Problem] = []
    if enabled is not None and enabled != on:
        out.append((f"{where}.enabled", f"{why}: set enabled: true (with format json)"))
    if fmt is not None and fmt != json:
        out.append((f"{where}.format", f"{why}: use format json"))
    if filter_ is not None and filter_ != all_:
        out.append((f"{where}.filter", f"{why}: use filter all, or filter the errors where the logs are collected"))
    return out


CHART_TRACING_PORT = 9411
"""``osm.tracing.port`` of the chart (values.yaml@v1.2.4:341); its ``endpoint`` default is
:data:`TRACING_ENDPOINT` (:343), ``enable`` false (:337) and ``deployPrometheus`` false (:267)."""


def release_values(spec, cluster) -> dict[str, dict]:
    """``{"osm": {"osm": ...}}`` holding only what differs from the chart's defaults (so turning
    telemetry on changes the release only where it changes OSM): ``deployPrometheus: true`` when
    metrics are on in ``bundled`` mode, and with tracing on ``osm.tracing`` ``enable: true``,
    ``address`` and, when not 9411, ``port`` from ``tracing.address`` (the endpoint is the
    chart's ``/api/v2/spans``), for the MeshConfig osm-bootstrap creates at first install. {} when
    nothing differs."""
    t = spec.telemetry
    if t is None:
        return {}
    osm: dict = {}
    if _metrics_on(spec) and _mode(spec) == "bundled":
        osm["deployPrometheus"] = True
    if t.tracing.enabled:
        host, port = t.tracing.address.rsplit(":", 1)
        osm["tracing"] = {"enable": True, "address": host,
                          **({} if int(port) == CHART_TRACING_PORT else {"port": int(port)})}
    return {"osm": {"osm": osm}} if osm else {}


def releases(spec, cluster) -> list[dict]:
    """OSM's telemetry needs no release of its own (its Prometheus is the ``osm`` chart's)."""
    return []


def mesh_config_patch(spec) -> dict | None:
    """With tracing on, a patch of MeshConfig ``osm-system/osm-mesh-config`` (``meta.k8s_patch``,
    registered forced, ``components.register_object``) holding only
    ``spec.observability.tracing`` {``enable``, ``address``, ``port``, ``endpoint``}; None when
    tracing is off (the preset's ``enable: false`` stays, and removing the patch relinquishes the
    fields it set)."""
    t = spec.telemetry.tracing
    if not t.enabled:
        return None
    host, port = t.address.rsplit(":", 1)
    return {**k8s_patch(cp.MESH_CONFIG_API, "MeshConfig", cp.MESH_CONFIG_NAME, OSM_NAMESPACE),
            "spec": {"observability": {"tracing": {"enable": True, "address": host, "port": int(port),
                                                   "endpoint": TRACING_ENDPOINT}}}}


def monitor_namespace(spec) -> str:
    """Where the PodMonitors go: ``metrics.prometheus.namespace``, else ``osm-system``."""
    return spec.telemetry.metrics.prometheus.namespace or OSM_NAMESPACE


def mesh_namespaces(spec, cluster: str) -> list[str]:
    """The mesh's application namespaces present in ``cluster`` (as ``render.app_namespaces``)."""
    names = [n.name for n in spec.namespaces] or sorted({s.namespace for s in spec.services})
    return [ns for ns in names if cluster in spec.namespace_clusters(ns)]


_SCRAPED = {"sourceLabels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "action": "keep",
            "regex": "true"}
"""Only pods annotated for scraping (a sidecar without it serves no stats listener)."""
_POD_LABELS = [
    {"sourceLabels": ["__meta_kubernetes_namespace"], "action": "replace", "targetLabel": "source_namespace"},
    {"sourceLabels": ["__meta_kubernetes_pod_name"], "action": "replace", "targetLabel": "source_pod_name"},
    {"regex": "(__meta_kubernetes_pod_label_app)", "action": "labelmap", "replacement": "source_service"},
    # upstream's next rule ("drop" by regex without source labels) matches nothing: not carried over
    {"sourceLabels": ["__meta_kubernetes_pod_controller_kind"], "action": "replace",
     "targetLabel": "source_workload_kind"},
    {"sourceLabels": ["__meta_kubernetes_pod_controller_name"], "action": "replace",
     "targetLabel": "source_workload_name"},
    {"sourceLabels": ["__meta_kubernetes_pod_controller_kind"], "action": "replace", "regex": "^ReplicaSet$",
     "targetLabel": "source_workload_kind", "replacement": "Deployment"},
    {"sourceLabels": ["__meta_kubernetes_pod_controller_kind", "__meta_kubernetes_pod_controller_name"],
     "action": "replace", "regex": "^ReplicaSet;(.*)-[^-]+$", "targetLabel": "source_workload_name"},
]
"""``kubernetes-pods`` relabel_configs (prometheus-configmap.yaml:73-113) minus the annotation
discovery of port and path, which the PodMonitor names."""


def wasm_metric_relabelings() -> list[dict]:
    """The ``smi-metrics`` job's metric_relabel_configs (prometheus-configmap.yaml:131-211): keep
    the WASM stats, read each tag out of the stat's name, then name it ``osm_request_total`` or
    ``osm_request_duration_ms_{bucket,sum,count}``. Built from the tag lists (``WASM_LABELS``) in
    upstream's order, the same regexes."""
    def name_regex(tags, capture, suffix):
        return "_".join(f"{tag}_{('(' + v + ')') if tag == capture else v}"
                        for tag, v in tags) + suffix
    total = [("response_code", r"\d{3}")] + [(t, ".*") for t in WASM_LABELS]
    duration = [(t, ".*") for t in WASM_LABELS]
    out = [{"sourceLabels": ["__name__"], "regex": ".*osm_request_(total|duration_ms_(bucket|count|sum))",
            "action": "keep"}]
    out += [{"sourceLabels": ["__name__"], "action": "replace", "regex": name_regex(total, tag, "_osm_request_total"),
             "targetLabel": tag} for tag, _ in total]
    out.append({"sourceLabels": ["__name__"], "action": "replace", "regex": ".*(osm_request_total)",
                "targetLabel": "__name__"})
    out += [{"sourceLabels": ["__name__"], "action": "replace",
             "regex": name_regex(duration, tag, "_osm_request_duration_ms_(bucket|sum|count)"), "targetLabel": tag}
            for tag, _ in duration]
    out.append({"sourceLabels": ["__name__"], "action": "replace",
                "regex": ".*(osm_request_duration_ms_(bucket|sum|count))", "targetLabel": "__name__"})
    return out


def _interval(spec) -> dict:
    n = spec.telemetry.metrics.scrape_interval_seconds
    return {"interval": f"{n}s", "scrapeTimeout": f"{min(n, 10)}s"}


CONTROL_PLANE_APPS = ("osm-bootstrap", "osm-controller", "osm-injector")
"""``app`` labels of OSM's control-plane pods that serve ``metrics`` (9091) and carry
``prometheus.io/scrape`` (charts/osm/templates@v1.2.4: osm-deployment.yaml:22,27-28,52-53;
osm-injector-deployment.yaml:21,26-27,49-50; osm-bootstrap-deployment.yaml:19,24-25,43-44)."""


def pod_monitors(spec, cluster) -> list[dict]:
    """``operator`` mode: PodMonitor ``osm-sidecars`` (the injected pods of the mesh namespaces of
    ``cluster``, port ``proxy-metrics``, path ``/stats/prometheus``: one endpoint per bundled job,
    ``kubernetes-pods`` and ``smi-metrics``, whose kept metrics do not overlap) and
    ``osm-controller`` (the control plane's ``metrics`` port, 9091, of the pods the bundled
    ``kubernetes-pods`` job finds by their ``prometheus.io/scrape`` annotation: :data:`CONTROL_PLANE_APPS`),
    labelled ``prometheus.labels``."""
    labels = dict(spec.telemetry.metrics.prometheus.labels)
    keep = [{"sourceLabels": ["__name__"], "regex": keep_metrics(), "action": "keep"}]
    proxy = {"port": PROXY_METRICS_PORT, "path": PROXY_METRICS_PATH, **_interval(spec)}
    ns = monitor_namespace(spec)
    return [
        k8s_object(POD_MONITOR_API, "PodMonitor", "osm-sidecars", ns, spec.name, labels=labels, spec={
            "namespaceSelector": {"matchNames": mesh_namespaces(spec, cluster.name)},
            "selector": {"matchExpressions": [{"key": PROXY_UUID_LABEL, "operator": "Exists"}]},
            "podMetricsEndpoints": [
                {**proxy, "relabelings": [_SCRAPED] + _POD_LABELS, "metricRelabelings": keep},
                {**proxy, "relabelings": [_SCRAPED], "metricRelabelings": wasm_metric_relabelings()}]}),
        k8s_object(POD_MONITOR_API, "PodMonitor", "osm-controller", ns, spec.name, labels=labels, spec={
            "namespaceSelector": {"matchNames": [OSM_NAMESPACE]},
            "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": list(CONTROL_PLANE_APPS)}]},
            "podMetricsEndpoints": [{"port": "metrics", **_interval(spec),
                                     "relabelings": [_SCRAPED] + _POD_LABELS, "metricRelabelings": keep}]}),
    ]


def objects(spec, cluster, model) -> list[dict]:
    """The PodMonitors of ``operator`` mode (metrics on) and, with tracing on, the MeshConfig patch
    (:func:`mesh_config_patch`). Where the cluster also renders an OSM ``Retry``, whose feature-flag
    patch of the same MeshConfig is the control plane's (``mesh_components.meshes.osm.control_plane_objects_for``),
    the render merges this patch into that one (``render.merge_telemetry_patches``): one object, one patch."""
    if spec.telemetry is None:
        return []
    out = pod_monitors(spec, cluster) if _metrics_on(spec) and _mode(spec) == "operator" else []
    if (patch := mesh_config_patch(spec)) is not None:
        out.append(patch)
    return out


def namespace_annotations(spec, namespace: str) -> dict[str, str]:
    """``{openservicemesh.io/metrics: enabled}`` when metrics are on, else ``{}``."""
    if spec.telemetry is None or not _metrics_on(spec):
        return {}
    return {METRICS_ANNOTATION: "enabled"}


def namespace_labels(spec, namespace: str) -> dict[str, str]:
    """OSM reads no telemetry label on namespaces."""
    return {}


def notices(spec, states) -> list[Problem]:
    """``(path, message)`` notices for ``validate`` (code ``telemetry-prerequisite``), from
    ``telemetry.notices``: with metrics on, the pods of the mesh namespaces need the
    ``prometheus.io/scrape`` annotation, which OSM's injector adds only when it injects a pod
    (``pkg/injector/patch.go@v1.2.4:73-85``), and a sidecar serves its stats listener only for a
    pod so annotated (``pkg/envoy/lds/response.go:74-84``). ``osm metrics enable`` also patches
    the running pods (``cmd/cli/metrics_enable.go:102-147``); the mesh only annotates the
    namespaces, so their workloads must be restarted after the first ``pulumi up``."""
    if spec.telemetry is None or not _metrics_on(spec):
        return []
    names = [n.name for n in spec.namespaces] or sorted({s.namespace for s in spec.services})
    return [("mesh.telemetry.metrics",
             f"OSM's injector annotates pods for scraping (prometheus.io/scrape) only when it injects them, and a "
             f"sidecar serves its metrics only for a pod so annotated: after the first 'pulumi up' with metrics on, "
             f"restart the workloads of namespace(s) {', '.join(names)} (kubectl rollout restart), or their running "
             f"pods serve no metrics")]
