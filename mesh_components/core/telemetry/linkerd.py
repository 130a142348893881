"""``mesh.telemetry`` for Linkerd edge-26.8.3 (chart 2026.8.3; proxy v2.366.0, the version
linkerd2 ``.proxy-version`` pins at the tag): exact or refused.

Metrics
    ``metrics.prometheus.mode``:

    - ``bundled``: the ``linkerd-viz`` extension with its own Prometheus (chart ``linkerd-viz`` from
      the control plane's repository, :func:`releases`; its scrape configuration is the chart's,
      linkerd2 ``viz/charts/linkerd-viz/templates/prometheus.yaml:29-158``), scraping every
      ``scrapeIntervalSeconds`` (``prometheus.globalConfig``, values.yaml:472-475), and also the
      Envoy Gateway ingress proxies when there are any (:func:`eg_scrape_config`);
    - ``operator``: an external Prometheus Operator; ``PodMonitor``s in ``prometheus.namespace``
      (default ``linkerd``) with Linkerd's documented scrape configuration, as the control-plane
      chart renders them when ``podMonitor.enabled`` (``charts/linkerd-control-plane/templates/
      podmonitor.yaml:1-145``; https://linkerd.io/2/tasks/external-prometheus/): the data plane
      (``linkerd-proxy``), the control plane (``linkerd-controller``) and, with several clusters,
      the service mirrors (``linkerd-multicluster-controller``). With ``prometheus.url``, also
      linkerd-viz without its Prometheus (``prometheus.enabled: false`` + ``prometheusUrl``) so its
      dashboards query that one; without a url no viz is installed (it would have nothing to read);
      The scrapers must then include that Prometheus's identity (linkerd-viz's alone is refused),
      and with several clusters they are admitted to linkerd-multicluster's Servers too
      (:func:`multicluster_scrape_objects`); a ``url`` outside the cluster is refused unless
      linkerd-viz keeps open egress (:func:`_operator_problems`);
    - ``annotations``: refused. Linkerd puts no ``prometheus.io/*`` annotation on its pods (no such
      string in linkerd2 at the tag, nor in the proxy injector's patch, ``pkg/inject/inject.go``),
      and the mesh never edits the application's pods, so an annotation-driven Prometheus would not
      find the proxies.

    Bundled: viz's Prometheus API admits only viz's ``metrics-api`` (Server ``prometheus-admin``,
    ``viz/charts/linkerd-viz/templates/prometheus-policy.yaml:1-39``), so the golden-signal series are
    for the dashboard and ``linkerd viz`` only (a Grafana or alerting of yours needs mode operator),
    and it has no Alertmanager (``prometheus.alertmanagers`` unset, values.yaml:487-494): alerts
    (``metrics.alerts``) are refused in this mode; ``prometheus.labels`` (nothing to label) too. Its
    pod is annotated with a checksum of its configuration and rules (:func:`prometheus_checksum`), as
    it reads them at start only. Whenever viz is installed its dashboard ``web`` gets a Server that
    admits no one (:func:`viz_web_server`): the chart leaves it open while binding it to tap-admin.

    A Prometheus outside the mesh cannot scrape a proxy whose namespace's default inbound policy
    refuses it (``linkerd viz allow-scrapes`` help, ``viz/cmd/allow-scrapes.go:131``): in a ``deny``
    namespace only ``backend.linkerd.scrapers`` are admitted, in ``*-authenticated`` namespaces only
    meshed clients, and wherever the scrape objects are rendered only the scrapers
    (``mesh_components.meshes.linkerd.scrape_objects``). :func:`scrape_problems` refuses a telemetry
    setting whose Prometheus those rules would shut out, naming the namespace and the fix.

    What the proxies export (proxy v2.366.0, on the ``linkerd-admin`` port 4191, ``/metrics``),
    for the golden-signal rules (``golden_signals``):

    - ``request_total`` (counter), ``response_total`` (counter) and ``response_latency_ms``
      (histogram, milliseconds: ``_bucket``/``_sum``/``_count``), unprefixed
      (``linkerd/http/metrics/src/requests/report.rs:20-42``; the endpoint report has no prefix,
      ``linkerd/app/core/src/metrics.rs:175-177``);
    - labels of every one: ``direction`` ``inbound``|``outbound`` (metrics.rs:457-471),
      ``authority`` (when known), ``target_addr``, ``target_ip``, ``target_port``
      (``linkerd/app/core/src/transport/labels.rs:176-185``) and ``tls``: ``true`` with
      ``client_id`` (inbound) or ``server_id`` (outbound), ``no_identity`` with ``no_tls_reason``,
      ``disabled`` or ``opaque`` (labels.rs:127-168);
      inbound also ``srv_group``, ``srv_kind``, ``srv_name``, ``srv_port``, ``route_group``,
      ``route_kind``, ``route_name``, ``authz_group``, ``authz_kind``, ``authz_name``
      (metrics.rs:343-419); outbound the destination's ``dst_*`` labels (metrics.rs:429-455,
      ``linkerd/app/outbound/src/http/concrete.rs:226``) from the destination controller:
      ``dst_service``, ``dst_namespace`` (linkerd2 ``controller/api/destination/watcher/
      port_publisher.go:98-114``), ``dst_pod``, ``dst_<owner kind>`` (e.g. ``dst_deployment``),
      ``dst_serviceaccount``, ``dst_control_plane_ns``, ``dst_pod_template_hash``
      (``pkg/k8s/labels.go:563-580``) and ``dst_zone`` (``endpoint_translator.go:438``);
    - ``response_latency_ms`` adds ``status_code``; ``response_total`` adds ``status_code``,
      ``classification`` ``success``|``failure``, ``grpc_status`` and ``error``
      (report.rs:128-152, metrics.rs:485-511);
    - the scrape job adds ``namespace``, ``pod``, ``k8s_job`` and the pod's labels, the
      ``linkerd.io/proxy-<kind>`` ones as ``<kind>`` (``deployment``, ``statefulset``...) and the
      other ``linkerd.io/*`` ones without the prefix (podmonitor.yaml:111-144);
    - certificate expiry: ``control_identity_cert_expiration_timestamp_seconds`` (gauge, seconds
      since the epoch; ``linkerd/identity/src/metrics.rs:24-30`` registered under
      ``control_identity`` + ``cert``, ``linkerd/app/src/lib.rs:143-145``,
      ``linkerd/app/src/identity.rs:57``);
    - refused requests: ``inbound_http_authz_deny_total`` and ``inbound_tcp_authz_deny_total``
      (``linkerd/app/inbound/src/metrics/authz.rs:18-36``).

Access logs
    The proxy's ``config.linkerd.io/access-log`` (``apache`` or ``json``, the only values the proxy
    reads: ``linkerd/tracing/src/access_log.rs:157-165``), set on the namespace: the proxy injector
    copies a namespace's config annotations onto every pod it injects
    (``controller/proxy-injector/webhook.go:106-108``, ``pkg/inject/inject.go:174-189``; the
    annotation is in ``ProxyAnnotations``, inject.go:43-84 and :76, and becomes the proxy's
    ``LINKERD2_PROXY_ACCESS_LOG``, inject.go:604-606 and ``charts/partials/templates/
    _proxy.tpl:235-238``). Pods injected before the annotation keep their setting until restarted.
    ``text`` is the proxy's Apache common format. The proxy logs inbound HTTP requests only
    (``linkerd/app/inbound/src/http/server.rs:88``), on its standard error
    (``linkerd/tracing/src/access_log.rs:96-101``), which the container log holds beside stdout.
    It has no filter (``filter: errors`` is refused) and a per-service setting would need pod
    annotations on the application's workloads (refused). An override turning logs on in a
    namespace whose declared services serve only TCP/TLS gets a notice (:func:`notices`), as do
    the namespaces whose workloads must be restarted to pick the setting up.

Tracing
    ``proxy.tracing`` of the control-plane chart (values.yaml:284-308, rendered by
    ``_proxy.tpl:148-175``): OpenTelemetry only (the proxy builds only an OTLP exporter,
    ``linkerd/app/src/trace_collector.rs:13-54``; Zipkin refused), to a meshed collector whose
    identity ``backend.linkerd.traceCollector`` names (the chart fails without it, _proxy.tpl:162-167).
    The proxies start no trace: they record a span only for a request whose ``traceparent``/b3
    header is already marked sampled (``linkerd/trace-context/src/service.rs:15-23,189-221``), so
    the only exact ``samplingPercent`` is 0 (the proxies join the traces the applications start);
    any other is refused, and so is an override's ``samplingPercent`` while tracing is off (it
    would apply nowhere). The setting is per control plane: per-namespace overrides are refused.
    Proxies injected before it was set keep theirs until restarted (:func:`notices`).
"""
from __future__ import annotations

from ...meshes import linkerd as cp
from . import golden_signals
from ...spec.errors import Problem, SpecError
from ..meta import deep_merge, k8s_object

VIZ_RELEASE = "linkerd-viz"
VIZ_NAMESPACE = "linkerd-viz"
VIZ_PROMETHEUS = (VIZ_NAMESPACE, "prometheus")
"""The bundled Prometheus's identity: ServiceAccount ``prometheus`` in the viz namespace (linkerd2
edge-26.8.3 ``viz/charts/linkerd-viz/templates/prometheus-rbac.yaml:36-40``); its pods are meshed
(``templates/prometheus.yaml:238``, ``linkerd.io/inject: enabled``)."""
ACCESS_LOG_ANNOTATION = "config.linkerd.io/access-log"
ACCESS_LOG_FORMATS = {"text": "apache", "json": "json"}
POD_MONITOR_API = "monitoring.coreos.com/v1"
CLUSTER_DEFAULT_POLICY = "all-unauthenticated"
"""``proxy.defaultInboundPolicy`` of the chart (values.yaml:247-251), which ``linkerd.py`` keeps."""
MESHED_ONLY = ("all-authenticated", "cluster-authenticated")
SCRAPE_TIMEOUT_SECONDS = 10
"""The chart's ``podMonitor.scrapeTimeout`` and viz's ``scrape_timeout`` (10s), shortened to the
interval when that is shorter (a scrape may not outlast its interval)."""


def _metrics_on(spec) -> bool:
    return spec.telemetry.metrics.enabled


def _mode(spec) -> str:
    return spec.telemetry.metrics.prometheus.mode


def wants_viz(spec) -> bool:
    """linkerd-viz is installed when metrics are on and either its own Prometheus is wanted
    (``bundled``) or an external one's ``url`` is given for its dashboards."""
    m = spec.telemetry.metrics
    return m.enabled and (m.prometheus.mode == "bundled" or m.prometheus.url is not None)


def _tracing_on(spec) -> bool:
    return spec.telemetry.tracing.enabled


def problems(spec) -> list[Problem]:
    """``(path, message)`` for every ``mesh.telemetry`` setting Linkerd cannot honour exactly (see
    the module docstring); empty without ``mesh.telemetry``."""
    t = spec.telemetry
    if t is None:
        return []
    out: list[Problem] = []
    prom = t.metrics.prometheus
    if t.metrics.enabled and prom.mode == "annotations":
        out.append(("mesh.telemetry.metrics.prometheus.mode",
                    "Linkerd puts no prometheus.io/* scrape annotations on its pods (and the mesh never edits the "
                    "application's pods), so a Prometheus that discovers pods by annotation would not find the "
                    "proxies: use mode operator (PodMonitors with Linkerd's scrape configuration) or bundled "
                    "(linkerd-viz and its Prometheus)"))
    if t.metrics.enabled and prom.mode == "bundled" and prom.url is not None:
        out.append(("mesh.telemetry.metrics.prometheus.url",
                    f"mode bundled installs linkerd-viz's own Prometheus, which its dashboards query; {prom.url} "
                    f"would not be used: drop url, or use mode operator to point linkerd-viz at that Prometheus"))
    if t.metrics.enabled and prom.mode == "bundled" and prom.namespace not in (None, VIZ_NAMESPACE):
        out.append(("mesh.telemetry.metrics.prometheus.namespace",
                    f"mode bundled runs linkerd-viz's Prometheus in namespace {VIZ_NAMESPACE}, where the rule "
                    f"ConfigMap it mounts must be: drop namespace, or set it to {VIZ_NAMESPACE}"))
    if t.metrics.enabled and prom.mode == "bundled" and "labels" in prom.model_fields_set and prom.labels:
        out.append(("mesh.telemetry.metrics.prometheus.labels",
                    "mode bundled renders no PodMonitor or PrometheusRule for labels to mark (linkerd-viz's Prometheus "
                    "reads its own scrape configuration and the mounted rule file): drop labels, or use mode operator"))
    if t.metrics.enabled and prom.mode == "bundled" and (alerts := golden_signals.alert_rules(spec)):
        which = sorted({r["alert"] for r in alerts})
        out.append(("mesh.telemetry.metrics.alerts",
                    f"linkerd-viz's bundled Prometheus has no Alertmanager (viz values.yaml@edge-26.8.3:487-494, "
                    f"prometheus.alertmanagers unset) and its API admits only viz's metrics-api "
                    f"(templates/prometheus-policy.yaml:1-39), so alerts {', '.join(which)} would fire where no one "
                    f"sees them: set alerts: {{plaintextTraffic: false, certificateExpiryDays: null}}, or use mode "
                    f"operator (a Prometheus Operator's Prometheus with its Alertmanager)"))
    out += _operator_problems(spec)
    if t.access_logs.enabled and t.access_logs.filter == "errors":
        out.append(("mesh.telemetry.accessLogs.filter",
                    "Linkerd's proxy logs every inbound HTTP request or none (config.linkerd.io/access-log has no "
                    "filter): use filter all, or filter the errors where the logs are collected"))
    for i, o in enumerate(t.overrides):
        where = f"mesh.telemetry.overrides[{i}]"
        a = o.access_logs
        if a is not None and o.service is not None and (a.enabled, a.format, a.filter) != (None, None, None):
            out.append((f"{where}.service",
                        f"Linkerd sets access logs per pod (config.linkerd.io/access-log), and the mesh sets them on "
                        f"the namespace only, never on the application's workloads: drop service to set them for all "
                        f"of namespace {o.namespace}, or annotate {o.service}'s pod template yourself"))
        elif a is not None and a.filter == "errors":
            out.append((f"{where}.accessLogs.filter",
                        "Linkerd's proxy logs every inbound HTTP request or none: use filter all"))
        tr = o.tracing
        if tr is not None and tr.enabled is not None and tr.enabled != t.tracing.enabled:
            out.append((f"{where}.tracing.enabled",
                        "Linkerd's proxy tracing is one setting of the control plane (proxy.tracing) for every "
                        "proxy: set mesh.telemetry.tracing.enabled and drop this override"))
        if tr is not None and tr.sampling_percent is not None and not t.tracing.enabled:
            out.append((f"{where}.tracing.samplingPercent",
                        "tracing is off for the whole mesh (mesh.telemetry.tracing.enabled: false, one setting of the "
                        "control plane for every proxy), so this percent would apply nowhere: drop samplingPercent, or "
                        "turn tracing on"))
        elif tr is not None and tr.sampling_percent not in (None, 0):
            out.append((f"{where}.tracing.samplingPercent", _SAMPLING))
    if t.tracing.enabled:
        if t.tracing.provider != "opentelemetry":
            out.append(("mesh.telemetry.tracing.provider",
                        "Linkerd's proxy exports spans over OpenTelemetry (OTLP/gRPC) only: use provider "
                        "opentelemetry, e.g. an OpenTelemetry Collector that forwards to Zipkin"))
        if t.tracing.sampling_percent != 0:
            out.append(("mesh.telemetry.tracing.samplingPercent", _SAMPLING))
        if spec.backend.linkerd.trace_collector is None:
            out.append(("mesh.backend.linkerd.traceCollector",
                        "Linkerd's proxies send spans over mTLS to a meshed collector and check its identity "
                        "(proxy.tracing.collector.meshIdentity): set traceCollector to the collector's namespace and "
                        "serviceAccount"))
    return out


def _external_scrapers(spec) -> list:
    """``backend.linkerd.scrapers`` other than linkerd-viz's Prometheus (:data:`VIZ_PROMETHEUS`):
    the identities an external (operator-mode) Prometheus can run as."""
    return [s for s in spec.backend.linkerd.scrapers if (s.namespace, s.service_account) != VIZ_PROMETHEUS]


CLUSTER_LOCAL_SUFFIXES = (".svc", ".svc.cluster.local")
"""Host names that are a Service of the cluster (Kubernetes DNS ``<service>.<namespace>.svc[.<cluster
domain>]``): reached at a ClusterIP, inside the cluster networks, so no EgressNetwork applies."""


def _url_host(url: str) -> str:
    rest = url.split("://", 1)[1].split("/", 1)[0]
    return rest.rsplit(":", 1)[0] if ":" in rest and not rest.endswith("]") else rest


def _operator_problems(spec) -> list[Problem]:
    """Operator mode: the external Prometheus must be a scraper (:func:`_external_scrapers`) when
    ``backend.linkerd.scrapers`` is given or several clusters run (linkerd-multicluster's Servers
    admit only linkerd-viz's Prometheus and, through :func:`multicluster_scrape_objects`, the
    scrapers: multicluster/charts/linkerd-multicluster/templates/service-mirror-policy.yaml@edge-26.8.3:
    2-33,75-113); and linkerd-viz's metrics-api, which queries ``url``, must reach it: the mesh's
    global ``Deny`` EgressNetwork (``mesh_components.core.egress``) refuses a host outside the cluster
    networks unless linkerd-viz keeps open egress (``backend.linkerd.egressOpenNamespaces``)."""
    t = spec.telemetry
    prom = t.metrics.prometheus
    if not t.metrics.enabled or prom.mode != "operator":
        return []
    out: list[Problem] = []
    if not _external_scrapers(spec):
        add = ("add the external Prometheus's (meshed) namespace and serviceAccount, e.g. {namespace: monitoring, "
               "serviceAccount: prometheus-kube-prometheus-prometheus}")
        if spec.backend.linkerd.scrapers:
            out.append(("mesh.backend.linkerd.scrapers",
                        f"mode operator scrapes with your Prometheus, but scrapers names only linkerd-viz's Prometheus "
                        f"({VIZ_PROMETHEUS[1]} in {VIZ_PROMETHEUS[0]}), which operator mode does not install, so the "
                        f"scrape objects would shut your Prometheus out: {add}"))
        elif len(spec.clusters) > 1:
            out.append(("mesh.backend.linkerd.scrapers",
                        f"with several clusters linkerd-multicluster's Servers (linkerd-admin, controller in "
                        f"{cp.MC_NAMESPACE}) admit only linkerd-viz's Prometheus and the scrapers, so your Prometheus "
                        f"could not scrape the service mirrors: {add}"))
    if prom.url is not None:
        host = _url_host(prom.url)
        local = host.endswith(CLUSTER_LOCAL_SUFFIXES) or host.endswith(f".svc.{spec.trust_domain}")
        if not local and VIZ_NAMESPACE not in spec.backend.linkerd.egress_open_namespaces:
            out.append(("mesh.telemetry.metrics.prometheus.url",
                        f"{host} is not a Service name of the cluster (<service>.<namespace>.svc[.cluster.local]), so "
                        f"linkerd-viz's metrics-api would query it through the mesh's global Deny EgressNetwork "
                        f"(linkerd-egress) and be refused: use the Prometheus's Service name, or add {VIZ_NAMESPACE} "
                        f"to mesh.backend.linkerd.egressOpenNamespaces"))
    return out


_SAMPLING = ("Linkerd's proxies start no trace: they record a span only for a request whose traceparent or b3 "
             "header is already marked sampled, so they cannot sample a share of requests: set samplingPercent: 0 "
             "(the proxies then join the traces your applications start)")


def release_values(spec, cluster) -> dict[str, dict]:
    """``{"linkerd-control-plane": {"proxy": {"tracing": ...}}}`` when tracing is on: ``enabled``,
    ``collector.endpoint`` = ``tracing.address`` and ``collector.meshIdentity`` from
    ``backend.linkerd.traceCollector`` (values.yaml:284-308). Empty otherwise: the chart's
    default (tracing off) stays. Applies to proxies injected after the change."""
    if spec.telemetry is None or not _tracing_on(spec):
        return {}
    tc = spec.backend.linkerd.trace_collector
    return {"linkerd-control-plane": {"proxy": {"tracing": {"enabled": True, "collector": {
        "endpoint": spec.telemetry.tracing.address,
        "meshIdentity": {"serviceAccountName": tc.service_account, "namespace": tc.namespace}}}}}}


def _interval(spec) -> tuple[str, str]:
    n = spec.telemetry.metrics.scrape_interval_seconds
    return f"{n}s", f"{min(n, SCRAPE_TIMEOUT_SECONDS)}s"


def eg_scrape_config(spec, cluster) -> list[dict]:
    """The extra scrape job of the bundled Prometheus for the Envoy Gateway ingress proxies of
    ``cluster`` (viz ``prometheus.scrapeConfigs``, values.yaml:511-513, appended to its jobs by
    templates/prometheus.yaml:156-158): their stats on container port ``metrics``
    (19001), path ``/stats/prometheus`` (Envoy Gateway v1.9.0 ``internal/infrastructure/kubernetes/
    proxy/resource.go:84-90``, ``internal/xds/bootstrap/bootstrap.go:45``), pods selected by the
    labels Envoy Gateway gives the ingress Gateway's proxies (``telemetry.envoy_gateway.proxy_selector``).
    Empty when the cluster runs no Envoy Gateway ingress."""
    from . import envoy_gateway as eg

    if not eg.runs_in(spec, cluster):
        return []
    interval, timeout = _interval(spec)
    keep = [{"source_labels": [f"__meta_kubernetes_pod_label_{_label_name(k)}" for k in sorted(eg.proxy_selector(spec))]
             + ["__meta_kubernetes_pod_container_port_name"],
             "action": "keep",
             "regex": ";".join(v for _, v in sorted(eg.proxy_selector(spec).items())) + f";{eg.METRICS_PORT_NAME}"}]
    return [{"job_name": "envoy-gateway-proxies", "scrape_interval": interval, "scrape_timeout": timeout,
             "metrics_path": eg.METRICS_PATH,
             "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [eg.NAMESPACE]}}],
             "relabel_configs": keep + [
                 {"source_labels": ["__meta_kubernetes_namespace"], "action": "replace", "target_label": "namespace"},
                 {"source_labels": ["__meta_kubernetes_pod_name"], "action": "replace", "target_label": "pod"}]}]


def _label_name(key: str) -> str:
    """Prometheus's name for a pod label in ``__meta_kubernetes_pod_label_<name>``: every character
    that is not a letter, digit or underscore becomes ``_`` (Prometheus ``discovery/kubernetes``
    ``strutil.SanitizeLabelName``)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in key)


CONFIG_CHECKSUM_ANNOTATION = "checksum/config"
"""Pod annotation of viz's Prometheus holding :func:`prometheus_checksum` (Helm's documented idiom for
rolling a Deployment when its configuration changes, https://helm.sh/docs/howto/charts_tips_and_tricks/
"Automatically Roll Deployments")."""


def prometheus_checksum(prometheus_values: dict, rule_text: str) -> str:
    """sha256 (hex) of what viz's bundled Prometheus reads at start only: its ``globalConfig`` and
    ``scrapeConfigs`` (rendered into ConfigMap ``prometheus-config``) and the golden-signal rule file
    (``rule_text``, '' when none is mounted). The chart mounts both by ``subPath``
    (viz/charts/linkerd-viz/templates/prometheus.yaml@edge-26.8.3:298-308), which the kubelet never
    refreshes, and puts no checksum on the pod (:229-239), so without this a change would reach
    Prometheus only when its pod happens to restart. Canonical JSON (sorted keys): deterministic."""
    import hashlib
    import json

    material = {"globalConfig": prometheus_values.get("globalConfig"),
                "scrapeConfigs": prometheus_values.get("scrapeConfigs"), "rules": rule_text}
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def releases(spec, cluster, model=None) -> list[dict]:
    """``[linkerd-viz]`` when :func:`wants_viz`, else ``[]``: chart ``linkerd-viz`` at the control
    plane's version from its repository, in ``linkerd-viz`` (the namespace :func:`objects`
    creates; the chart's namespace-metadata Job is off, ``createNamespaceMetadataJob``), with the
    mesh's trust domain (``identityTrustDomain``, which viz's policies name identities in). Bundled:
    its Prometheus scrapes every ``scrapeIntervalSeconds`` (``prometheus.globalConfig``) and, with
    an Envoy Gateway ingress, those proxies too; otherwise ``prometheus.enabled: false`` and
    ``prometheusUrl`` (viz values.yaml:75-76, 445-447). Deep-merged with
    ``golden_signals.linkerd_viz_values`` (the recording rules' ConfigMap mount). Bundled: the
    Prometheus pod is annotated :data:`CONFIG_CHECKSUM_ANNOTATION` = :func:`prometheus_checksum`
    (``prometheus.podAnnotations``, values.yaml:477-478) of its configuration and of the rule file
    ``golden_signals`` renders for ``cluster`` from ``model`` (the traffic model; None: no rules), so
    a change of either rolls the pod."""
    if spec.telemetry is None or not wants_viz(spec):
        return []
    values: dict = {"linkerdNamespace": cp.NAMESPACE, "identityTrustDomain": spec.trust_domain,
                    "createNamespaceMetadataJob": False}
    if _mode(spec) == "bundled":
        interval, timeout = _interval(spec)
        values["prometheus"] = {"enabled": True, "globalConfig": {"scrape_interval": interval,
                                                                  "scrape_timeout": timeout}}
        if extra := eg_scrape_config(spec, cluster):
            values["prometheus"]["scrapeConfigs"] = extra
    else:
        values["prometheus"] = {"enabled": False}
        values["prometheusUrl"] = spec.telemetry.metrics.prometheus.url
    values = deep_merge(values, golden_signals.linkerd_viz_values(spec))
    if _mode(spec) == "bundled":
        mounted = golden_signals.linkerd_viz_values(spec) and model is not None
        rules = golden_signals.rule_file(golden_signals.rule_groups(spec, model, cluster.name)) if mounted else ""
        values["prometheus"]["podAnnotations"] = {
            CONFIG_CHECKSUM_ANNOTATION: prometheus_checksum(values["prometheus"], rules)}
    return [{"name": VIZ_RELEASE, "namespace": VIZ_NAMESPACE, "repository": cp.REPOSITORY, "chart": "linkerd-viz",
             "version": spec.backend.chart_version, "values": values, "depends_on": []}]


def viz_namespace(spec) -> dict:
    """The ``linkerd-viz`` Namespace with the metadata the CLI gives it and the chart's
    namespace-metadata Job would add (linkerd2 edge-26.8.3 ``viz/charts/linkerd-viz/templates/
    namespace.yaml:6-17``): ``linkerd.io/extension: viz``, ``pod-security.kubernetes.io/enforce:
    privileged`` (linkerd-init needs it; no CNI plugin here) and, with an external Prometheus,
    ``viz.linkerd.io/external-prometheus: <url>``. Created like ``linkerd.control_plane``'s
    namespaces (Helm does not create it)."""
    url = spec.telemetry.metrics.prometheus.url if _mode(spec) != "bundled" else None
    return k8s_object("v1", "Namespace", VIZ_NAMESPACE, None, spec.name, labels={
        "linkerd.io/extension": "viz", "pod-security.kubernetes.io/enforce": "privileged"},
        annotations={"viz.linkerd.io/external-prometheus": url} if url else None)


def monitor_namespace(spec) -> str:
    """Where the PodMonitors go: ``metrics.prometheus.namespace``, else ``linkerd``."""
    return spec.telemetry.metrics.prometheus.namespace or cp.NAMESPACE


def _pod_monitor(spec, name: str, namespace_selector: dict, relabelings: list[dict]) -> dict:
    interval, timeout = _interval(spec)
    labels = {"linkerd.io/control-plane-ns": cp.NAMESPACE, **spec.telemetry.metrics.prometheus.labels}
    return k8s_object(POD_MONITOR_API, "PodMonitor", name, monitor_namespace(spec), spec.name, labels=labels, spec={
        "namespaceSelector": namespace_selector, "selector": {"matchLabels": {}},
        "podMetricsEndpoints": [{"interval": interval, "scrapeTimeout": timeout, "honorTimestamps": False,
                                 "relabelings": relabelings}]})


_ADMIN_PORTS = [
    {"sourceLabels": ["__meta_kubernetes_pod_container_port_name"], "action": "keep", "regex": ".*-admin$"},
    {"sourceLabels": ["__meta_kubernetes_pod_container_port_name"], "action": "drop", "regex": "linkerd-admin"},
    {"sourceLabels": ["__meta_kubernetes_pod_container_name"], "action": "replace", "targetLabel": "component"},
]


def pod_monitors(spec, cluster) -> list[dict]:
    """The PodMonitors of ``operator`` mode, as linkerd2 edge-26.8.3 ``charts/linkerd-control-plane/
    templates/podmonitor.yaml`` renders them (lines 1-41 ``linkerd-controller``, 42-83
    ``linkerd-multicluster-controller``, 84-145 ``linkerd-proxy``), with our interval: the
    proxies (container ``linkerd-proxy``, port ``linkerd-admin``, of this control plane) in every
    namespace; the control plane's admin ports in ``linkerd`` (and ``linkerd-viz`` when installed);
    with several clusters the service mirrors (selected by their ``component`` label, as viz's
    Prometheus does: the chart's PodMonitor selects on a label those pods lack). Labelled
    ``prometheus.labels``."""
    ns = cp.NAMESPACE
    controller_ns = [ns] + ([VIZ_NAMESPACE] if wants_viz(spec) else [])
    out = [_pod_monitor(spec, "linkerd-controller", {"matchNames": controller_ns}, _ADMIN_PORTS)]
    if len(spec.clusters) > 1:  # linkerd-multicluster runs (linkerd.control_plane)
        # the pods' own label ``component`` (multicluster/charts/linkerd-multicluster/templates/controller/
        # deployment.yaml@edge-26.8.3:31-35), as viz's job selects it (viz/charts/linkerd-viz/templates/
        # prometheus.yaml:84-88); the chart's PodMonitor reads linkerd.io/control-plane-component, which
        # those pods lack (podmonitor.yaml:68-72), so it would scrape nothing
        out.append(_pod_monitor(spec, "linkerd-multicluster-controller", {"any": True}, [
            {"sourceLabels": ["__meta_kubernetes_pod_label_component",
                              "__meta_kubernetes_pod_container_port_name"],
             "action": "keep", "regex": "(linkerd-service-mirror|controller);.*-admin$"}] + _ADMIN_PORTS[1:]))
    out.append(_pod_monitor(spec, "linkerd-proxy", {"any": True}, [
        {"sourceLabels": ["__meta_kubernetes_pod_container_name", "__meta_kubernetes_pod_container_port_name",
                          "__meta_kubernetes_pod_label_linkerd_io_control_plane_ns"],
         "action": "keep", "regex": f"^linkerd-proxy;linkerd-admin;{ns}$"},
        {"sourceLabels": ["__meta_kubernetes_namespace"], "action": "replace", "targetLabel": "namespace"},
        {"sourceLabels": ["__meta_kubernetes_pod_name"], "action": "replace", "targetLabel": "pod"},
        {"sourceLabels": ["__meta_kubernetes_pod_label_linkerd_io_proxy_job"], "action": "replace",
         "targetLabel": "k8s_job"},
        {"action": "labeldrop", "regex": "__meta_kubernetes_pod_label_linkerd_io_proxy_job"},
        {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_linkerd_io_proxy_(.+)"},
        {"action": "labeldrop", "regex": "__meta_kubernetes_pod_label_linkerd_io_proxy_(.+)"},
        {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_linkerd_io_(.+)"},
        {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)", "replacement": "__tmp_pod_label_$1"},
        {"action": "labelmap", "regex": "__tmp_pod_label_linkerd_io_(.+)", "replacement": "__tmp_pod_label_$1"},
        {"action": "labeldrop", "regex": "__tmp_pod_label_linkerd_io_(.+)"},
        {"action": "labelmap", "regex": "__tmp_pod_label_(.+)"}]))
    return out


MC_SERVERS = ("linkerd-admin", "controller")
"""linkerd-multicluster's Servers of the pods the PodMonitors scrape: ``linkerd-admin`` (every
multicluster pod's proxy admin port) and ``controller`` (the service mirrors' ``ctrl-admin``), each
admitting only linkerd-viz's Prometheus (multicluster/charts/linkerd-multicluster/templates/
service-mirror-policy.yaml@edge-26.8.3:2-33, 75-113; the chart's comment at :107-110 asks for an
extra AuthorizationPolicy for another Prometheus)."""
MC_SCRAPE_SUFFIX = "-scrapers"


def multicluster_scrape_objects(spec) -> list[dict]:
    """Operator mode with several clusters: a MeshTLSAuthentication ``prometheus-scrape`` in
    ``linkerd-multicluster`` of the external scrapers' identities (:func:`_external_scrapers`) and
    an AuthorizationPolicy ``<server>-scrapers`` requiring it on each of :data:`MC_SERVERS`, beside
    the chart's own for viz's Prometheus. They target the Server, as the chart's do (a route on it
    would drop the policy controller's probe route for the proxies' /live and /ready). Else []."""
    from ...meshes.linkerd_policy import POLICY_V1ALPHA1, identity

    scrapers = _external_scrapers(spec)
    if not (_metrics_on(spec) and _mode(spec) == "operator" and len(spec.clusters) > 1 and scrapers):
        return []
    ns, group = cp.MC_NAMESPACE, "policy.linkerd.io"
    return [k8s_object(POLICY_V1ALPHA1, "MeshTLSAuthentication", cp.SCRAPE_AUTH, ns, spec.name, spec={
        "identities": sorted(identity(spec.trust_domain, s.namespace, s.service_account) for s in scrapers)})] + [
        k8s_object(POLICY_V1ALPHA1, "AuthorizationPolicy", f"{server}{MC_SCRAPE_SUFFIX}", ns, spec.name, spec={
            "targetRef": {"group": group, "kind": "Server", "name": server},
            "requiredAuthenticationRefs": [{"group": group, "kind": "MeshTLSAuthentication",
                                            "name": cp.SCRAPE_AUTH}]}) for server in MC_SERVERS]


WEB_SERVER = "web"


def viz_web_server(spec) -> dict:
    """A Server ``web`` on linkerd-viz's dashboard port (``http``, 8084; pods labelled
    ``linkerd.io/extension: viz``, ``component: web``: viz/charts/linkerd-viz/templates/web.yaml@
    edge-26.8.3:70-73,125-126) with ``accessPolicy: deny`` and no AuthorizationPolicy, so the proxy
    refuses every connection to it. The chart gives web no Server, so the namespace default
    (``all-unauthenticated``) would let any pod reach it; and web runs with cluster-wide tap
    (``dashboard.restrictPrivileges: false``, values.yaml:375-376; ClusterRoleBinding to
    ``linkerd-linkerd-viz-tap-admin``, web-rbac.yaml:97-112, tap-rbac.yaml:25-38), so its
    ``/api/tap`` would stream every meshed workload's live requests to anyone. ``linkerd viz
    dashboard`` (a port-forward to Deployment web, viz/cmd/dashboard.go:114-118) and ``kubectl
    port-forward`` still work: they connect to the pod's loopback, which
    the proxy's iptables rules leave alone (only traffic arriving at the pod is redirected to the
    inbound proxy, https://linkerd.io/2/reference/iptables/). The probes are on port ``admin``
    (9994, web.yaml:118-133), not this one. To expose the dashboard through an ingress, authorize
    the ingress's identity on Server ``web`` yourself."""
    from ...meshes.linkerd_policy import POLICY_V1BETA3

    return k8s_object(POLICY_V1BETA3, "Server", WEB_SERVER, VIZ_NAMESPACE, spec.name, spec={
        "podSelector": {"matchLabels": {"linkerd.io/extension": "viz", "component": "web"}},
        "port": "http", "proxyProtocol": "HTTP/1", "accessPolicy": "deny"})


def _server_namespaces(spec, model, cluster: str) -> set[str]:
    """Namespaces of ``cluster`` that get the scrape objects when ``backend.linkerd.scrapers`` is set
    (``linkerd.probe_objects``): those holding a destination of an authorization, with ports, that
    runs in the cluster (``linkerd_policy.policy_objects``), and those whose default inbound policy
    is ``deny`` (``linkerd.deny_namespaces``)."""
    return {a.destination.namespace for a in model.authorizations
            if cluster in a.destination.clusters and a.destination.ports} | cp.deny_namespaces(spec, model, cluster)


def scrape_problems(spec, model, cluster) -> list[Problem]:
    """Namespaces of ``cluster`` whose proxies the chosen Prometheus could not scrape:

    - where the scrape objects are rendered (``backend.linkerd.scrapers`` set and a Server there)
      or the default inbound policy is ``deny``, only the scrapers are admitted: bundled mode needs
      viz's Prometheus (:data:`VIZ_PROMETHEUS`) among them, operator mode needs scrapers (its
      Prometheus's identity);
    - where it is ``all-authenticated`` or ``cluster-authenticated`` only meshed clients are:
      viz's Prometheus is meshed, an external one must be named in ``scrapers`` (as a meshed identity).
    Empty when metrics are off."""
    if spec.telemetry is None or not _metrics_on(spec) or _mode(spec) == "annotations":
        return []
    scrapers = {(s.namespace, s.service_account) for s in spec.backend.linkerd.scrapers}
    servers = _server_namespaces(spec, model, cluster.name)
    bundled = _mode(spec) == "bundled"
    external = bool(_external_scrapers(spec))  # operator mode: viz's Prometheus is not installed
    names = [n.name for n in spec.namespaces] or sorted({s.namespace for s in spec.services})
    out: list[Problem] = []
    for ns in names:
        if cluster.name not in spec.namespace_clusters(ns):
            continue
        policy = cp.default_inbound_policy(spec, model, ns) or CLUSTER_DEFAULT_POLICY
        only_scrapers = policy == "deny" or (scrapers and ns in servers)
        who = (f"linkerd-viz's Prometheus ({VIZ_PROMETHEUS[1]} in {VIZ_PROMETHEUS[0]})" if bundled
               else "the Prometheus")
        if only_scrapers and (VIZ_PROMETHEUS not in scrapers if bundled else not external):
            add = ("add {namespace: linkerd-viz, serviceAccount: prometheus} to mesh.backend.linkerd.scrapers"
                   if bundled else "add the Prometheus's (meshed) namespace and serviceAccount to "
                                   "mesh.backend.linkerd.scrapers")
            why = ("its default inbound policy is deny, which admits" if policy == "deny"
                   else "the scrape objects there admit")
            out.append(("mesh.telemetry.metrics.prometheus",
                        f"{who} could not scrape the proxies of namespace {ns} in cluster {cluster.name}: "
                        f"{why} only backend.linkerd.scrapers: {add}"))
        elif policy in MESHED_ONLY and not bundled and not external:
            out.append(("mesh.telemetry.metrics.prometheus",
                        f"namespace {ns} admits only meshed clients (default inbound policy {policy}), so only a "
                        f"meshed Prometheus can scrape its proxies: mesh it and add its namespace and serviceAccount "
                        f"to mesh.backend.linkerd.scrapers"))
    return out


def objects(spec, cluster, model) -> list[dict]:
    """The telemetry objects of ``cluster``: the ``linkerd-viz`` Namespace (:func:`viz_namespace`)
    and the dashboard's closed Server (:func:`viz_web_server`) when viz is installed and, in
    ``operator`` mode, the PodMonitors (:func:`pod_monitors`) and the scrapers' authorizations in
    linkerd-multicluster (:func:`multicluster_scrape_objects`).
    Raises :class:`~mesh_components.spec.errors.SpecError` with :func:`scrape_problems` (they depend on
    the traffic model, which ``problems`` does not see)."""
    if spec.telemetry is None:
        return []
    if found := scrape_problems(spec, model, cluster):
        raise SpecError(found)
    out = [viz_namespace(spec), viz_web_server(spec)] if wants_viz(spec) else []
    if _metrics_on(spec) and _mode(spec) == "operator":
        out += pod_monitors(spec, cluster) + multicluster_scrape_objects(spec)
    return out


def access_log_format(spec, namespace: str) -> str | None:
    """The proxy's access-log format for ``namespace`` (``apache`` or ``json``), or None (off): the
    namespace's override (``overrides[]`` without ``service``) over the mesh default."""
    a = spec.telemetry.access_logs
    enabled, fmt = a.enabled, a.format
    for o in spec.telemetry.overrides:
        if o.namespace == namespace and o.service is None and o.access_logs is not None:
            enabled = o.access_logs.enabled if o.access_logs.enabled is not None else enabled
            fmt = o.access_logs.format or fmt
    return ACCESS_LOG_FORMATS[fmt] if enabled else None


def namespace_annotations(spec, namespace: str) -> dict[str, str]:
    """``{config.linkerd.io/access-log: apache|json}`` where access logs are on, else ``{}``."""
    if spec.telemetry is None:
        return {}
    fmt = access_log_format(spec, namespace)
    return {ACCESS_LOG_ANNOTATION: fmt} if fmt else {}


def namespace_labels(spec, namespace: str) -> dict[str, str]:
    """Linkerd reads no telemetry label on namespaces."""
    return {}


def _mesh_namespaces(spec) -> list[str]:
    return [n.name for n in spec.namespaces] or sorted({s.namespace for s in spec.services})


def notices(spec, states) -> list[Problem]:
    """``(path, message)`` notices for ``validate`` (code ``telemetry-prerequisite``), from
    ``telemetry.notices``:

    - access logs and tracing reach only pods injected after they are set: the proxy injector copies
      the namespace's ``config.linkerd.io/access-log`` onto a pod when it injects it
      (``controller/proxy-injector/webhook.go@edge-26.8.3:106-108``) and ``proxy.tracing`` is part
      of the injected proxy's environment (``charts/partials/templates/_proxy.tpl:148-175``), so the
      workloads of those namespaces must be restarted after the first ``pulumi up`` that sets them;
    - an override turning access logs on in a namespace whose declared services serve no HTTP port
      (only ``tcp``/``tls``): the proxy logs inbound HTTP requests only (linkerd2-proxy v2.366.0
      ``linkerd/app/inbound/src/http/server.rs:88``), so nothing would be logged. A notice, not a
      refusal: the setting is what the proxy does, and the namespace may run HTTP pods the spec does
      not declare."""
    t = spec.telemetry
    if t is None:
        return []
    out: list[Problem] = []
    logged = [ns for ns in _mesh_namespaces(spec) if access_log_format(spec, ns)]
    if logged:
        out.append(("mesh.telemetry.accessLogs",
                    f"Linkerd's proxy injector copies config.linkerd.io/access-log onto pods only when it injects "
                    f"them: after the first 'pulumi up' with these access logs, restart the workloads of namespace(s) "
                    f"{', '.join(logged)} (kubectl rollout restart), or their running pods keep their old setting"))
    if t.tracing.enabled:
        out.append(("mesh.telemetry.tracing",
                    f"proxy.tracing is set in each proxy when it is injected: after the first 'pulumi up' with "
                    f"tracing, restart the workloads of namespace(s) {', '.join(_mesh_namespaces(spec))} (kubectl "
                    f"rollout restart), or their running proxies send no spans"))
    for i, o in enumerate(t.overrides):
        if o.service is not None or o.access_logs is None or not o.access_logs.enabled:
            continue
        ports = [p for s in spec.services if s.namespace == o.namespace for p in s.ports]
        if ports and not any(p.is_http for p in ports):
            out.append((f"mesh.telemetry.overrides[{i}].accessLogs.enabled",
                        f"Linkerd's proxy logs inbound HTTP requests only, and the services of namespace {o.namespace} "
                        f"serve only TCP/TLS ports: nothing would be logged there"))
    return out
