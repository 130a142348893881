"""``mesh.telemetry`` on the Envoy Gateway ingress (v1.9.0): the ``EnvoyProxy``'s
``spec.telemetry`` (:func:`envoy_proxy_telemetry`, merged by ``mesh_components.core.envoy_gateway.envoy_proxy``)
and, with a Prometheus Operator, a ``PodMonitor`` for the ingress proxies (:func:`objects`).
Only where the ingress is Envoy Gateway (``gateway.implementation``) and in the clusters it runs
in; the mesh defaults apply (``overrides`` name the mesh's namespaces and services, never the
gateway's proxies). Sources: envoyproxy/gateway v1.9.0 and the CRD in
``../shared/crds/envoy-gateway/gateway.envoyproxy.io_envoyproxies.yaml``.

Access logs (``internal/gatewayapi/listener.go:823-927``)
    Without ``telemetry.accessLog`` Envoy Gateway writes its default JSON log to stdout
    (listener.go:824-836), so ``enabled: false`` is rendered as ``disable: true``. On: one setting
    with a ``File`` sink ``/dev/stdout`` and ``format`` ``JSON`` (no format given: Envoy Gateway's
    default JSON fields, listener.go:856-865 and ``internal/xds/translator/accesslog.go:39-64``) or
    ``Text`` with the Envoy format string Envoy Gateway documents
    (``site/content/en/v1.9/tasks/observability/proxy-accesslog.md:124-126``); ``filter: errors`` is
    the CEL match ``response.code >= 400`` (matches are CEL, listener.go:871-880, applied as an
    access-log filter, accesslog.go:390-423). With no ``type`` the setting logs every route and, for
    requests no route matched, the listener (the site page above, "Access Log Types").

Tracing (listener.go:1029-1122, ``internal/xds/translator/tracing.go:39-150``)
    ``provider`` ``OpenTelemetry`` (OTLP over gRPC, listener.go:1046-1051) or ``Zipkin`` (HTTP JSON
    to ``/api/v2/spans``, tracing.go:87-100) at ``host``/``port`` from ``tracing.address`` (the
    host/port form, still read at v1.9.0 when no backendRefs are given, listener.go:1055-1065; a
    Service reference to another namespace would need a ReferenceGrant there). Sampling applies
    where no earlier hop decided (CRD ``samplingRate`` description): ``samplingRate`` for a whole
    percent, else ``samplingFraction`` over 10000, which Envoy Gateway turns into the
    ``random_sampling`` percent (listener.go:1106-1122, tracing.go:126-128). Envoy samples in steps
    of 0.01% (``tracing.random_sampling`` runs 0-10000, envoyproxy/envoy
    ``docs/root/configuration/http/http_conn_man/runtime.rst``), so a finer percent is refused. The
    ingress takes the mesh's ``samplingPercent``: on Linkerd only 0 is exact (its proxies start no
    trace, ``telemetry.linkerd``), so there the ingress starts none either and traces begin only
    where a client or application sends a sampled ``traceparent``/b3 header.

Metrics
    The proxies serve Prometheus stats on container port ``metrics`` (19001), path
    ``/stats/prometheus``, and carry ``prometheus.io/*`` scrape annotations, unless
    ``metrics.prometheus.disable`` (``internal/infrastructure/kubernetes/proxy/resource.go:64-90``,
    ``resource_provider.go:660-666``, ``internal/xds/bootstrap/bootstrap.go:45``): metrics off
    disables it; annotation-mode Prometheuses find the pods by those annotations; operator mode gets
    a PodMonitor. The proxies are the pods labelled ``app.kubernetes.io/name: envoy``,
    ``app.kubernetes.io/component: proxy``, ``app.kubernetes.io/managed-by: envoy-gateway``
    (resource.go:47-53) and ``gateway.envoyproxy.io/owning-gateway-{namespace,name}`` of the
    ingress Gateway (``internal/gatewayapi/helpers.go:270-291``, translator.go:639).

    What they export (Envoy's Prometheus stats, ``envoy_`` prefix, tags as labels): per route
    rule cluster ``envoy_cluster_upstream_rq_total``, ``envoy_cluster_upstream_rq_xx``
    (``envoy_response_code_class``), ``envoy_cluster_upstream_rq`` (``envoy_response_code``),
    ``envoy_cluster_upstream_rq_time_bucket``/``_sum``/``_count`` (milliseconds), labelled
    ``envoy_cluster_name`` = ``httproute/<namespace>/<name>/rule/<index>`` (``internal/gatewayapi/
    helpers.go:543-563``); per listener ``envoy_http_downstream_rq_xx`` and
    ``envoy_http_downstream_rq_time_bucket`` labelled ``envoy_http_conn_manager_prefix`` =
    ``http-<port>``/``https-<port>`` (``internal/xds/translator/listener.go:561-571``); and
    ``envoy_server_days_until_first_cert_expiring``.
"""
from __future__ import annotations

from decimal import Decimal

from .. import envoy_gateway as eg
from .. import gateway
from ...spec.errors import Problem
from ..meta import k8s_object

NAMESPACE = eg.NAMESPACE
METRICS_PORT_NAME = "metrics"
METRICS_PATH = "/stats/prometheus"
POD_MONITOR_API = "monitoring.coreos.com/v1"
STDOUT = "/dev/stdout"
TEXT_FORMAT = ('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
               '%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "%REQ(X-FORWARDED-FOR)%" '
               '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n')
"""The text format of Envoy Gateway's access-log task (v1.9.0 ``site/content/en/v1.9/tasks/
observability/proxy-accesslog.md:124-126``, a YAML block scalar: one line with its newline)."""
ERRORS_MATCH = "response.code >= 400"
"""CEL over Envoy's attributes (``response.code``: the HTTP status): ``filter: errors``."""
SAMPLING_STEPS = 10000
"""Envoy's random-sampling resolution: 0-10000, steps of 0.01%."""
_PROVIDERS = {"opentelemetry": "OpenTelemetry", "zipkin": "Zipkin"}
_MONITOR_DEFAULT_NAMESPACE = {"istio": "istio-system", "linkerd": "linkerd", "osm": "osm-system"}
"""Where the PodMonitor goes without ``prometheus.namespace``: beside the mesh's own monitors
(the control plane's namespace, as ``spec.PrometheusTarget`` says)."""


def applies(spec) -> bool:
    """True when ``spec`` has telemetry and its ingress is Envoy Gateway."""
    return spec.telemetry is not None and gateway.implementation(spec) == "envoy-gateway"


def runs_in(spec, cluster) -> bool:
    """True when :func:`applies` and the ingress runs in ``cluster`` (a ``spec.Cluster``)."""
    return applies(spec) and cluster.name in gateway.ingress_clusters(spec)


def proxy_selector(spec) -> dict[str, str]:
    """The labels of the ingress Gateway's Envoy proxy pods (see the module docstring)."""
    return {"app.kubernetes.io/component": "proxy", "app.kubernetes.io/managed-by": "envoy-gateway",
            "app.kubernetes.io/name": "envoy", "gateway.envoyproxy.io/owning-gateway-name": spec.ingress.name,
            "gateway.envoyproxy.io/owning-gateway-namespace": spec.ingress.namespace}


def sampling_steps(percent: float) -> int | None:
    """``percent`` in Envoy's steps of 0.01% (``1.5`` -> 150), or None when it is finer. Read as
    the decimal number it was written as (``repr``), not its binary approximation."""
    steps = Decimal(repr(percent)) * 100
    return int(steps) if steps == steps.to_integral_value() else None


def problems(spec) -> list[Problem]:
    """What the EnvoyProxy cannot honour: a ``tracing.samplingPercent`` finer than 0.01%."""
    if not applies(spec):
        return []
    t = spec.telemetry.tracing
    if t.enabled and sampling_steps(t.sampling_percent) is None:
        return [("mesh.telemetry.tracing.samplingPercent",
                 f"the Envoy Gateway ingress samples in steps of 0.01% (Envoy's random sampling runs from 0 to "
                 f"10000), so {t.sampling_percent}% cannot be met exactly: round it to two decimal places")]
    return []


def _sampling(percent: float) -> dict:
    steps = sampling_steps(percent)
    if steps % 100 == 0:
        return {"samplingRate": steps // 100}
    return {"samplingFraction": {"numerator": steps, "denominator": SAMPLING_STEPS}}


def envoy_proxy_telemetry(spec) -> dict:
    """``EnvoyProxy.spec.telemetry`` for ``spec``: ``accessLog``, ``metrics.prometheus`` and, when
    tracing is on, ``tracing`` (see the module docstring); ``{}`` without telemetry or without an
    Envoy Gateway ingress (Envoy Gateway's defaults stay)."""
    if not applies(spec):
        return {}
    t = spec.telemetry
    a = t.access_logs
    if a.enabled:
        setting: dict = {"sinks": [{"type": "File", "file": {"path": STDOUT}}]}
        if a.format == "text":
            setting["format"] = {"type": "Text", "text": TEXT_FORMAT}
        if a.filter == "errors":
            setting["matches"] = [ERRORS_MATCH]
        access_log: dict = {"settings": [setting]}
    else:
        access_log = {"disable": True}
    out: dict = {"accessLog": access_log, "metrics": {"prometheus": {"disable": not t.metrics.enabled}}}
    if t.tracing.enabled:
        host, port = t.tracing.address.rsplit(":", 1)
        out["tracing"] = {"provider": {"type": _PROVIDERS[t.tracing.provider], "host": host, "port": int(port)},
                          **_sampling(t.tracing.sampling_percent)}
    return out


MERGE_METRICS_ANNOTATION = "prometheus.istio.io/merge-metrics"
"""Istio's per-pod switch for metrics merging (istio 1.30.3 ``pkg/kube/inject/webhook.go:323-336``
reads it before ``meshConfig.enablePrometheusMerge``; name from istio/api ``annotation``
``PrometheusMergeMetrics``)."""


def proxy_pod_annotations(spec) -> dict[str, str]:
    """Pod annotations of the ingress proxies for telemetry, merged by
    ``mesh_components.core.envoy_gateway.envoy_proxy``: on Istio with sidecars and metrics in
    ``annotations`` mode, ``prometheus.istio.io/merge-metrics: "false"``. With merging on (Istio's
    default) the injector points the pod's ``prometheus.io/*`` annotations at the sidecar agent, which
    serves its own Envoy's stats concatenated with the application's (istio 1.30.3
    ``pilot/cmd/pilot-agent/status/server.go:530-533``): here the application is Envoy Gateway's Envoy,
    so both sets of ``envoy_*`` series would arrive under one target and collide (istio/api
    ``mesh/v1alpha1/config.proto`` ``enable_prometheus_merge``: "a separately managed Envoy with an Istio
    sidecar ... the metrics will collide", and https://istio.io/latest/docs/ops/integrations/prometheus/
    #option-1-metrics-merging). Off, the annotations stay Envoy Gateway's (port 19001). {} otherwise
    (operator mode scrapes port ``metrics`` directly; ambient merges nothing)."""
    if not applies(spec) or spec.backend.type != "istio" or spec.backend.istio.data_plane == "ambient":
        return {}
    m = spec.telemetry.metrics
    return {MERGE_METRICS_ANNOTATION: "false"} if m.enabled and m.prometheus.mode == "annotations" else {}


def monitor_namespace(spec) -> str:
    """``metrics.prometheus.namespace``, else the mesh control plane's namespace."""
    return spec.telemetry.metrics.prometheus.namespace or _MONITOR_DEFAULT_NAMESPACE[spec.backend.type]


def objects(spec, cluster) -> list[dict]:
    """``[PodMonitor <ingress>-envoy]`` in ``operator`` mode with metrics on where the ingress runs:
    the proxies of the ingress Gateway in ``envoy-gateway-system``, port ``metrics``, path
    ``/stats/prometheus``, every ``scrapeIntervalSeconds`` (timeout the same, at most 10s, as
    Prometheus's default), labelled ``prometheus.labels``. Else ``[]``."""
    if not runs_in(spec, cluster):
        return []
    m = spec.telemetry.metrics
    if not m.enabled or m.prometheus.mode != "operator":
        return []
    n = m.scrape_interval_seconds
    return [k8s_object(POD_MONITOR_API, "PodMonitor", eg.proxy_name(spec), monitor_namespace(spec), spec.name,
                       labels=dict(m.prometheus.labels), spec={
                           "namespaceSelector": {"matchNames": [NAMESPACE]},
                           "selector": {"matchLabels": proxy_selector(spec)},
                           "podMetricsEndpoints": [{"port": METRICS_PORT_NAME, "path": METRICS_PATH,
                                                    "interval": f"{n}s", "scrapeTimeout": f"{min(n, 10)}s"}]})]
