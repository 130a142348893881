"""Golden-signal recording rules and alerts, named the same on every mesh.

With ``mesh.telemetry.metrics.enabled`` and ``goldenSignals``, every cluster gets recording rules
over 5-minute windows (``rate(...[5m])``) whose names and labels do not depend on the mesh, so a
dashboard or alert written against them works whichever mesh runs. Only the expressions differ:
each reads the metrics its mesh really exports at the pinned version (tables below).

Series (labels are fixed strings, set by the rule's ``labels``; every expression aggregates its
mesh's labels away, so nothing else is kept):

==========================================  ===================  ===========================================
series                                      unit                 meaning
==========================================  ===================  ===========================================
``mesh:service_requests:rate5m``            requests/second      HTTP/gRPC requests to the service
``mesh:service_errors:ratio_rate5m``        ratio, 0 to 1        failed responses / all responses (below)
``mesh:service_latency_ms:p50_5m``          milliseconds         50th percentile request duration
``mesh:service_latency_ms:p90_5m``          milliseconds         90th percentile
``mesh:service_latency_ms:p99_5m``          milliseconds         99th percentile
``mesh:service_tcp_connections:rate5m``     connections/second   TCP connections opened to its tcp/tls ports
``mesh:access_rule_requests:rate5m``        requests/second      requests from the rule's source identity
``mesh:access_rule_errors:ratio_rate5m``    ratio, 0 to 1        their failed responses / all their responses
``mesh:access_rule_tcp_connections:rate5m`` connections/second   connections from the source to tcp/tls ports
==========================================  ===================  ===========================================

Labels: ``namespace`` and ``service`` (the declared service, ``mesh.services[]``) on every series;
the per-rule series add ``access_rule`` (the access rule's name: ``mesh.accessRules[].name``, the
SMI TrafficTarget's, or ``<ingress>-route-<i>`` for an ingress route), ``source_namespace`` and
``source_service_account`` (one series per source identity of the rule). A per-rule series counts
the traffic from that identity to that service, whichever rule admits it (two rules with the same
source and destination record equal values). The latency percentiles are per service only.

Which series a service or rule gets: request series where it has an HTTP/HTTP2/gRPC port (a rule:
where it admits one) and the mesh sees its requests; TCP series where it has a tcp/tls port (a
rule: admits one) and the mesh's L4 metric counts exactly those ports. Rules live in the clusters
where the destination runs (:func:`objects`), computed from the metrics reported there.

Per mesh (every metric and label name read from the source at the pinned version):

- **Istio 1.30.3** (istio/proxy 1.30.3, the proxy istio/istio ``istio.deps`` pins, and
  istio/ztunnel 1.30.3): ``istio_requests_total``, ``istio_request_duration_milliseconds`` (a
  histogram in ms: ``_bucket``), ``istio_tcp_connections_opened_total`` with ``reporter``,
  ``destination_service_namespace``, ``destination_service_name``, ``source_principal``,
  ``response_code``, ``connection_security_policy`` (istio/proxy
  ``source/extensions/filters/http/istio_stats/istio_stats.cc:188-236``). Sidecars: the server
  side, ``reporter="destination"`` (inbound listeners, ``istio_stats.cc:487-489,777-778``), so
  unmeshed callers count too, as in Istio's own service dashboards. Ambient: L7 only where a
  waypoint serves the service (``reporter="waypoint"``: ``pilot/pkg/model/telemetry.go:1006-1008``
  sets ``SERVER_GATEWAY``, reported as ``waypoint`` at ``istio_stats.cc:780-781``), i.e. in the
  namespaces the policy gives one (``istio_policy.needs_waypoint``) and not for headless Services
  (pod-addressed traffic skips a ``waypoint-for: service`` waypoint); elsewhere ztunnel reports
  TCP only (``istio_tcp_connections_opened_total``, ``reporter="destination"``: ztunnel
  ``src/proxy/metrics.rs:340-347``, labels ``:247-276``, prefix ``istio`` ``src/metrics.rs:35``),
  counting every port, so the TCP series is rendered there only for a service whose ports are
  all tcp/tls. ``destination_service_name`` is the *first* Service of the pod on that port
  (inbound cluster metadata, ``pilot/pkg/networking/core/cluster_builder.go:1047-1064``, ordered
  by creation time, ``pilot/pkg/model/context.go:596-611``; ztunnel guesses alike,
  ``src/proxy.rs:700-730``): a version pod of ``bookstore`` may report ``bookstore-v1``, so the
  selector takes the service and its version Services (``render.version_services``).
  ``source_principal`` is the peer's SPIFFE URI SAN, ``spiffe://<trust domain>/ns/<ns>/sa/<sa>``
  (``istio_stats.cc:1042-1066``; ztunnel ``src/identity/manager.rs:92-104``). Errors:
  ``response_code=~"5.."``.
- **Linkerd edge-26.8.3** (linkerd2-proxy release/v2.366.0, pinned by linkerd2 ``.proxy-version``):
  ``request_total``, ``response_total`` (label ``classification`` ``success|failure``: HTTP 5xx,
  gRPC errors and stream errors fail, linkerd/app/core/src/metrics.rs:485-510),
  ``response_latency_ms`` (histogram in ms, ``_bucket`` with ``le``: linkerd/metrics/src/histogram.rs:188)
  (linkerd/http/metrics/src/requests/report.rs:20-41; the endpoint metrics have no prefix,
  metrics.rs:175-178) and ``tcp_open_total`` (linkerd/transport-metrics/src/lib.rs:26), labels
  ``direction`` (metrics.rs:460-471), ``tls``/``client_id`` on inbound (transport/labels.rs:126-140),
  ``srv_name`` (metrics.rs:345-352), ``peer`` (transport/labels.rs:56-70,100-110), ``target_port``
  (transport/labels.rs:180) and the destination's labels prefixed ``dst_`` on outbound
  (outbound/src/http/concrete.rs:226, metrics.rs:429-455: ``dst_namespace``/``dst_service`` from
  the EndpointSlice, linkerd2 controller/api/destination/watcher/endpoints_watcher.go:22-23,
  controller/api/destination/watcher/port_publisher.go:98-114). Per service: the *client* side,
  ``direction="outbound"`` by ``dst_namespace``/``dst_service`` (service and version Services: a
  split's backends are their own Services), as ``linkerd viz stat svc`` does
  (viz/metrics-api/stat_summary.go:415-440): meshed callers only, in the cluster they run in (a
  call through a multicluster mirror Service counts under the mirror's name in the caller's
  cluster, not here). Per rule: the *server* side, ``direction="inbound"``, ``client_id`` (the
  source identity ``<sa>.<ns>.serviceaccount.identity.linkerd.<trust domain>``), ``srv_name`` (the
  ``Server`` objects the policy renders for the destination's ports,
  ``linkerd_policy.server_names``) and ``namespace``: the Prometheus target label of the pod's
  namespace, which every Kubernetes pod scrape sets (linkerd-viz ``linkerd-proxy`` job,
  viz/charts/linkerd-viz/templates/prometheus.yaml:110-112; Prometheus Operator ``PodMonitor``,
  prometheus-operator v0.93.0 pkg/prometheus/promcfg.go:1600-1613). Errors:
  ``classification="failure"``.
- **OSM v1.2.4**: the Envoy (v1.22.2, chart values.yaml:53) cluster stats of the *server's*
  sidecar, on its local cluster ``<namespace>/<service>|<target port>|local`` per Service port
  (osm pkg/service/types.go:94-97, built per upstream Service at
  pkg/catalog/inbound_traffic_policies.go:55-63): ``envoy_cluster_upstream_rq_total``,
  ``envoy_cluster_upstream_rq_xx`` (label ``envoy_response_code_class``),
  ``envoy_cluster_upstream_rq_time`` (histogram, ms) and ``envoy_cluster_upstream_cx_total``,
  label ``envoy_cluster_name`` (OSM's own names: charts/osm/templates/prometheus-configmap.yaml:58,
  charts/osm/grafana/dashboards/osm-workload-to-service.json:148,254; Envoy's:
  https://www.envoyproxy.io/docs/envoy/v1.22.2/configuration/upstream/cluster_manager/cluster_stats,
  no custom stats config in OSM's bootstrap). Errors: ``envoy_response_code_class="5"``.
  **Per-rule series are not rendered**: no OSM metric carries the client's identity (the local
  cluster stats have none; OSM's WASM stats, wasm/stats.cc:13-38, are client-side and name
  workloads, ``source_kind``/``source_name``, not service accounts), so the series the rule's
  source identity needs cannot be computed exactly. ``goldenSignals`` asks for golden signals as a
  whole, not for per-rule series by name, so this is a documented gap, not a refusal; ``graph
  --metrics`` shows it on each edge.

Alerts (``metrics.alerts``; rendered with or without ``goldenSignals``):

- ``MeshPlaintextTraffic`` (labels ``namespace``, ``service``, ``protocol`` ``http|tcp``;
  ``severity: warning``): traffic to a declared service's namespace seen without mutual TLS in
  the last 5 minutes; ``service`` is the Service the mesh reports (for a split's backend, the
  version Service ``<service>-<version>``).
  Istio: ``connection_security_policy!="mutual_tls"`` on what the destination side reports (any
  caller: plaintext accepted at a meshed server means mTLS is not enforced there); sidecar HTTP
  and TCP, ambient ztunnel TCP (``connection_security_policy`` ``unknown`` for plaintext, ztunnel
  ``src/proxy/metrics.rs:101-106``; a waypoint's traffic is HBONE, always mTLS). Linkerd: meshed
  clients' outbound requests and connections to a declared service's namespace with
  ``tls!="true"`` (the inbound side cannot tell a meshed client from kubelet probes, which are
  plaintext). OSM: none: its inbound listeners accept mesh traffic only over TLS (filter chains
  matching ``transport_protocol: tls``, pkg/envoy/lds/inmesh.go:161,211), so no metric can show
  plaintext between meshed workloads.
- ``MeshCertificateExpiry`` (label ``certificate``: ``root`` or ``intermediate``): a CA
  certificate the mesh exports the expiry of ends within ``certificateExpiryDays`` days. Istio:
  ``citadel_server_root_cert_expiry_timestamp`` (the first root) and
  ``citadel_server_cert_chain_expiry_timestamp`` (the cluster's intermediate), unix seconds,
  exported by istiod as the CA (security/pkg/server/ca/monitoring.go:58-75,
  server.go:163-188). Linkerd: ``issuer_cert_ttl_seconds`` of the identity controller (the
  cluster's issuer, i.e. intermediate; pkg/identity/service.go:156-171; no trust-anchor metric,
  a TODO there). OSM: none (pkg/metricsstore/metricsstore.go exports issuance counts and times,
  not expiry; Envoy's ``days_until_first_cert_expiring`` is dominated by the 24-hour leaf).
  Both need the control plane scraped (the collection side of each mesh).

Output (``metrics.prometheus.mode``):

- ``operator``: ``PrometheusRule``s (monitoring.coreos.com/v1, CRD from prometheus-operator
  v0.93.0) in ``prometheus.namespace`` (default: the mesh's control plane namespace), labelled
  with ``prometheus.labels`` (what the Prometheus's ``ruleSelector`` picks) and the ownership
  labels: ``mesh-golden-signals-<namespace>`` (group ``mesh.golden-signals.<namespace>``: the
  rules of the destinations in that namespace) and ``mesh-alerts`` (group ``mesh.alerts``).
  One object per namespace keeps each far below what the API server stores (etcd's 1.5 MiB
  request limit) whatever the mesh's size, and a new service changes one object only. A
  Prometheus with ``enforcedNamespaceLabel`` would rewrite every selector to the rule's own
  namespace: list these rules under its ``excludedFromEnforcement``.
- ``annotations``: one ConfigMap ``mesh-golden-signals`` (same namespace) whose key
  :data:`RULE_FILE` is a Prometheus rule file with the same groups: mount it in the Prometheus pod
  (a ``configMap`` volume) and list the mounted path in ``rule_files`` of prometheus.yml. A rule
  file over a ConfigMap's 1 MiB is refused (use ``operator``).
- ``bundled``: Linkerd: the same ConfigMap in the linkerd-viz namespace, mounted by linkerd-viz's
  ``prometheus.ruleConfigMapMounts`` (chart values.yaml:500-509; mounted at
  ``/etc/prometheus/<subPath>``, read by its ``rule_files: /etc/prometheus/*_rules.yml``,
  viz/charts/linkerd-viz/templates/prometheus.yaml:25-27,298-302,319-323):
  :func:`linkerd_viz_values` gives the values. OSM's bundled Prometheus loads no rule file
  (charts/osm/templates/prometheus-configmap.yaml has no ``rule_files``) and keeps only a fixed
  list of metrics, without the latency histogram (line 58): refused (:func:`problems`). Istio
  ships no Prometheus (its telemetry backend refuses ``bundled``).

The collection side (each backend's scrape configuration) must keep every metric of
:data:`METRICS_READ`: a ``metricRelabelings`` keep-list without one leaves its series empty.

Pure: no Pulumi import; the same spec gives the same objects, in the same order.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import yaml

from .. import gamma
from ..ca import ISTIO_NAMESPACE, LINKERD_NAMESPACE, OSM_NAMESPACE
from ...spec.errors import Problem, SpecError
from ..meta import k8s_object

WINDOW = "5m"
"""The range of every ``rate()`` (the ``5m`` in the series names)."""
MAX_SCRAPE_INTERVAL = 150
"""Longest scrape interval, in seconds, at which a 5-minute ``rate()`` still has the two samples it
needs (https://prometheus.io/docs/prometheus/latest/querying/functions/#rate)."""

SERVICE_REQUESTS = "mesh:service_requests:rate5m"
SERVICE_ERRORS = "mesh:service_errors:ratio_rate5m"
SERVICE_LATENCY = {50: "mesh:service_latency_ms:p50_5m", 90: "mesh:service_latency_ms:p90_5m",
                   99: "mesh:service_latency_ms:p99_5m"}
SERVICE_TCP = "mesh:service_tcp_connections:rate5m"
RULE_REQUESTS = "mesh:access_rule_requests:rate5m"
RULE_ERRORS = "mesh:access_rule_errors:ratio_rate5m"
RULE_TCP = "mesh:access_rule_tcp_connections:rate5m"

SERVICE_LABELS = ("namespace", "service")
RULE_LABELS = ("namespace", "service", "access_rule", "source_namespace", "source_service_account")

SERIES = {
    SERVICE_REQUESTS: ("requests/second", SERVICE_LABELS),
    SERVICE_ERRORS: ("ratio", SERVICE_LABELS),
    **{name: ("milliseconds", SERVICE_LABELS) for name in SERVICE_LATENCY.values()},
    SERVICE_TCP: ("connections/second", SERVICE_LABELS),
    RULE_REQUESTS: ("requests/second", RULE_LABELS),
    RULE_ERRORS: ("ratio", RULE_LABELS),
    RULE_TCP: ("connections/second", RULE_LABELS),
}
"""Every series this module may record: name -> (unit, labels). The same on every mesh."""

ALERT_PLAINTEXT = "MeshPlaintextTraffic"
ALERT_CERTIFICATE = "MeshCertificateExpiry"

OPERATOR_API = "monitoring.coreos.com/v1"
RULE_FILE = "golden_signals_rules.yml"
"""The ConfigMap key (annotations, bundled): linkerd-viz mounts only files named ``*_rules.yml``."""
VIZ_VOLUME = "mesh-golden-signals"
"""The volume linkerd-viz's Prometheus mounts the rule file from (a DNS label of its own: the
ConfigMap's name, ``mesh-golden-signals``, may be longer than a volume name's 63 characters)."""
LINKERD_VIZ_NAMESPACE = "linkerd-viz"
"""Where linkerd-viz (and its bundled Prometheus) is installed, unless ``prometheus.namespace``."""
CONTROL_PLANE_NAMESPACE = {"istio": ISTIO_NAMESPACE, "linkerd": LINKERD_NAMESPACE, "osm": OSM_NAMESPACE}
"""Default namespace of the rules (``prometheus.namespace`` unset): the control plane's."""

METRICS_READ = {
    "istio": ("istio_requests_total", "istio_request_duration_milliseconds_bucket",
              "istio_tcp_connections_opened_total", "citadel_server_root_cert_expiry_timestamp",
              "citadel_server_cert_chain_expiry_timestamp"),
    "linkerd": ("request_total", "response_total", "response_latency_ms_bucket", "tcp_open_total",
                "issuer_cert_ttl_seconds"),
    "osm": ("envoy_cluster_upstream_rq_total", "envoy_cluster_upstream_rq_xx", "envoy_cluster_upstream_rq_time_bucket",
            "envoy_cluster_upstream_cx_total"),
}
"""Backend -> every metric name the rules may read (as scraped series names): what the collection
side must keep (a scrape job's ``metricRelabelings`` keep-list that drops one empties its series)."""

HTTP = gamma.HTTP_PROTOCOLS


# ---------------------------------------------------------------------------------------------
# PromQL text


def _quote(value: str) -> str:
    """A PromQL double-quoted string (backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@lru_cache(maxsize=65536)
def _matcher(label: str, op: str, value: str) -> str:
    # cached: a mesh's rules repeat the same few matchers (reporter, namespaces, principals) many times
    return f"{label}{op}{_quote(value)}"


def selector(metric: str, *matchers: tuple[str, str, str]) -> str:
    """``metric{label op "value",...}`` for ``(label, op, value)`` matchers, in the given order."""
    return metric + "{" + ",".join([_matcher(*m) for m in matchers]) + "}"


def _one_of(label: str, values: list[str]) -> tuple[str, str, str]:
    """``label="v"`` for one value, else ``label=~"a|b"`` (values are DNS names: no regex syntax
    but ``-``, which is literal outside a class; PromQL anchors the regex at both ends)."""
    values = sorted(set(values))
    return (label, "=", values[0]) if len(values) == 1 else (label, "=~", "|".join(values))


def _rate(sel: str) -> str:
    return f"sum(rate({sel}[{WINDOW}]))"


def _ratio(errors: str, responses: str) -> str:
    # "or vector(0)": with no failed response there is no error series at all, and a ratio of
    # nothing to something would be absent instead of 0
    return f"({_rate(errors)} or vector(0)) / {_rate(responses)}"


def _quantile(q: int, bucket: str) -> str:
    return f"histogram_quantile({q / 100:g}, sum by (le) (rate({bucket}[{WINDOW}])))"


# ---------------------------------------------------------------------------------------------
# what each mesh reports for a destination (and a source)


@dataclass(frozen=True)
class Signals:
    """A mesh's selectors for one destination (and, for a rule, one source identity): the request
    counter, the failed-response and all-response counters, the latency histogram's ``_bucket``
    series (ms) and the TCP connections-opened counter; None where the mesh reports none."""

    requests: str | None = None
    errors: str | None = None
    responses: str | None = None
    latency: str | None = None
    connections: str | None = None


def _names(w: gamma.Workload, spec) -> list[str]:
    """The Service names a request to ``w`` may be reported under: ``w`` and its version Services
    ``<service>-<version>`` (render.version_services), in every cluster of the service."""
    svc = spec.services_by_key.get((w.namespace, w.name))
    return [w.name] + [f"{w.name}-{v.name}" for v in (svc.versions if svc else [])]


def _ports(w: gamma.Workload, http: bool) -> list[int]:
    """Target (pod) ports of ``w``'s HTTP ports (``http``) or tcp/tls ports."""
    return sorted({t for _, t, proto, _ in w.ports if (proto in HTTP) == http})


def waypoint_namespaces(spec, model) -> frozenset[str]:
    """Namespaces with a waypoint (Istio ambient: ``istio_policy.needs_waypoint``), else empty."""
    if spec.backend.type != "istio" or spec.backend.istio.data_plane != "ambient":
        return frozenset()
    from ...meshes.istio_policy import needs_waypoint

    return frozenset(needs_waypoint(spec, model))


def _istio_reporter(spec, model, w: gamma.Workload, waypoints: frozenset[str] | None = None
                    ) -> tuple[str | None, str | None]:
    """``(reporter of HTTP requests, reporter of TCP connections)`` Istio reports ``w``'s traffic
    under, at the destination side; None where it reports none that is exact (module doc).
    ``waypoints``: :func:`waypoint_namespaces`, when the caller has it."""
    if spec.backend.istio.data_plane != "ambient":
        return "destination", "destination"
    waypoints = waypoint_namespaces(spec, model) if waypoints is None else waypoints
    headless = bool(getattr(spec.services_by_key.get((w.namespace, w.name)), "headless", False))
    if w.namespace in waypoints and not headless:
        return "waypoint", "waypoint"
    # ztunnel: TCP only, every port alike
    return None, ("destination" if not _ports(w, True) else None)


def istio_signals(spec, model, w: gamma.Workload, source: tuple[str, str] | None = None,
                  waypoints: frozenset[str] | None = None) -> Signals:
    """Istio's selectors for ``w`` (and the caller identity ``source``), module doc."""
    http_reporter, tcp_reporter = _istio_reporter(spec, model, w, waypoints)
    base = [("destination_service_namespace", "=", w.namespace), _one_of("destination_service_name", _names(w, spec))]
    if source is not None:
        from ...meshes.istio_policy import principal  # <trust domain>/ns/<ns>/sa/<sa>; the metric has the URI SAN

        base.append(("source_principal", "=", "spiffe://" + principal(spec.trust_domain, *source)))
    out: dict = {}
    if http_reporter and _ports(w, True):
        m = [("reporter", "=", http_reporter), *base]
        out.update(requests=selector("istio_requests_total", *m),
                   errors=selector("istio_requests_total", *m, ("response_code", "=~", "5..")),
                   responses=selector("istio_requests_total", *m),
                   latency=selector("istio_request_duration_milliseconds_bucket", *m))
    if tcp_reporter and _ports(w, False):
        out["connections"] = selector("istio_tcp_connections_opened_total", ("reporter", "=", tcp_reporter), *base)
    return Signals(**out)


def linkerd_signals(spec, w: gamma.Workload, source: tuple[str, str] | None = None,
                    servers: dict | None = None) -> Signals:
    """Linkerd's selectors for ``w``: per service (``source`` None) the clients' outbound view by
    ``dst_namespace``/``dst_service``; per source identity the server's inbound view by
    ``client_id`` and ``srv_name`` (``servers``: ``linkerd_policy.server_names`` of the cluster).
    Module doc."""
    from ...meshes.linkerd_policy import identity

    http, tcp = _ports(w, True), _ports(w, False)
    out: dict = {}
    if source is None:
        m = [("direction", "=", "outbound"), ("dst_namespace", "=", w.namespace),
             _one_of("dst_service", _names(w, spec))]
        if http:
            out.update(requests=selector("request_total", *m),
                       errors=selector("response_total", *m, ("classification", "=", "failure")),
                       responses=selector("response_total", *m),
                       latency=selector("response_latency_ms_bucket", *m))
        if tcp:
            out["connections"] = selector("tcp_open_total", m[0], ("peer", "=", "dst"), *m[1:],
                                          _one_of("target_port", [str(p) for p in tcp]))
        return Signals(**out)
    servers = {} if servers is None else servers

    def srv(http_ports: bool) -> tuple[str, str, str]:
        return _one_of("srv_name", [servers[((w.namespace,), (w.name, name))] for _, _, proto, name in w.ports
                                    if (proto in HTTP) == http_ports])

    m = [("direction", "=", "inbound"), ("namespace", "=", w.namespace),
         ("client_id", "=", identity(spec.trust_domain, *source))]
    if http:
        out.update(requests=selector("request_total", *m, srv(True)),
                   errors=selector("response_total", *m, srv(True), ("classification", "=", "failure")),
                   responses=selector("response_total", *m, srv(True)))
    if tcp:
        out["connections"] = selector("tcp_open_total", m[0], ("peer", "=", "src"), *m[1:], srv(False))
    return Signals(**out)


def osm_signals(spec, w: gamma.Workload, source: tuple[str, str] | None = None) -> Signals:
    """OSM's selectors for ``w``: its sidecars' local-cluster stats (module doc); nothing per
    source identity (no OSM metric carries one)."""
    if source is not None:
        return Signals()
    names = _names(w, spec)

    def cluster(ports: list[int]) -> tuple[str, str, str]:
        # <namespace>/<service>|<target port>|local; "[|]": a literal bar without a backslash
        if len(names) == 1 and len(ports) == 1:
            return "envoy_cluster_name", "=", f"{w.namespace}/{names[0]}|{ports[0]}|local"
        alt = names[0] if len(names) == 1 else "(" + "|".join(sorted(names)) + ")"
        port = str(ports[0]) if len(ports) == 1 else "(" + "|".join(str(p) for p in ports) + ")"
        return "envoy_cluster_name", "=~", f"{w.namespace}/{alt}[|]{port}[|]local"

    http, tcp = _ports(w, True), _ports(w, False)
    out: dict = {}
    if http:
        c = cluster(http)
        out.update(requests=selector("envoy_cluster_upstream_rq_total", c),
                   errors=selector("envoy_cluster_upstream_rq_xx", c, ("envoy_response_code_class", "=", "5")),
                   responses=selector("envoy_cluster_upstream_rq_xx", c),
                   latency=selector("envoy_cluster_upstream_rq_time_bucket", c))
    if tcp:
        out["connections"] = selector("envoy_cluster_upstream_cx_total", cluster(tcp))
    return Signals(**out)


def signals(spec, model, w: gamma.Workload, source: tuple[str, str] | None = None,
            servers: dict | None = None, waypoints: frozenset[str] | None = None) -> Signals:
    """The backend's :class:`Signals` for destination ``w`` (and caller identity ``source``);
    ``servers`` (Linkerd) and ``waypoints`` (Istio) as the caller computed them for the cluster."""
    kind = spec.backend.type
    if kind == "istio":
        return istio_signals(spec, model, w, source, waypoints)
    if kind == "linkerd":
        return linkerd_signals(spec, w, source, servers)
    return osm_signals(spec, w, source)


# ---------------------------------------------------------------------------------------------
# which series a service and an access rule get


def _admits(a: gamma.Authorization) -> tuple[bool, bool]:
    """``(admits an HTTP port, admits a tcp/tls port)`` of its destination."""
    from ...analysis.graph import http_ports_of, tcp_ports_of

    http_ports = set(a.destination.http_ports)
    admitted = (set(http_ports_of(a)) if a.http else set()) | set(tcp_ports_of(a))
    return bool(admitted & http_ports), bool(admitted - http_ports)


def rule_sources(model) -> list[tuple[gamma.Authorization, tuple[str, str]]]:
    """Every ``(authorization, source identity)`` of the model that names a source, sorted by
    destination, rule name and source (ingress routes included: the gateway is a source)."""
    pairs = [(a, s) for a in model.authorizations for s in sorted(set(a.sources))]
    return sorted(pairs, key=lambda p: (p[0].destination.namespace, p[0].destination.name, p[0].name, p[1]))


def _rule_labels(a: gamma.Authorization, source: tuple[str, str]) -> dict[str, str]:
    return {"namespace": a.destination.namespace, "service": a.destination.name, "access_rule": a.name,
            "source_namespace": source[0], "source_service_account": source[1]}


def _record(name: str, expr: str, labels: dict[str, str]) -> dict:
    return {"record": name, "expr": expr, "labels": dict(labels)}


def service_rules(spec, model, w: gamma.Workload, waypoints: frozenset[str] | None = None) -> list[dict]:
    """Recording rules of one declared service (module doc), in :data:`SERIES` order."""
    s = signals(spec, model, w, waypoints=waypoints)
    labels = {"namespace": w.namespace, "service": w.name}
    out = []
    if s.requests:
        out.append(_record(SERVICE_REQUESTS, _rate(s.requests), labels))
        out.append(_record(SERVICE_ERRORS, _ratio(s.errors, s.responses), labels))
        out += [_record(name, _quantile(q, s.latency), labels) for q, name in SERVICE_LATENCY.items()]
    if s.connections:
        out.append(_record(SERVICE_TCP, _rate(s.connections), labels))
    return out


def rule_rules(spec, model, a: gamma.Authorization, source: tuple[str, str], servers: dict | None = None,
               waypoints: frozenset[str] | None = None) -> list[dict]:
    """Recording rules of one access rule and source identity (module doc)."""
    http, tcp = _admits(a)
    s = signals(spec, model, a.destination, source, servers, waypoints)
    labels = _rule_labels(a, source)
    out = []
    if http and s.requests:
        out.append(_record(RULE_REQUESTS, _rate(s.requests), labels))
        out.append(_record(RULE_ERRORS, _ratio(s.errors, s.responses), labels))
    if tcp and s.connections:
        out.append(_record(RULE_TCP, _rate(s.connections), labels))
    return out


def _linkerd_servers(spec, model, cluster: str) -> dict:
    from ...meshes.linkerd_policy import server_names

    by_dest: dict[tuple[str, str], list] = {}
    workloads: dict[tuple[str, str], gamma.Workload] = {}
    for a in model.authorizations:
        key = (a.destination.namespace, a.destination.name)
        by_dest.setdefault(key, []).append(a)
        workloads[key] = a.destination
    return server_names(spec, workloads.values(), by_dest, cluster)


def recording_rules(spec, model, cluster: str) -> list[dict]:
    """Every recording rule of ``cluster``: the declared services that run there, then the access
    rules whose destination runs there, deduplicated by series and labels."""
    workloads = gamma.workloads(spec)
    waypoints = waypoint_namespaces(spec, model)
    out = []
    for key in sorted(workloads):
        if cluster in workloads[key].clusters:
            out += service_rules(spec, model, workloads[key], waypoints)
    servers = _linkerd_servers(spec, model, cluster) if spec.backend.type == "linkerd" else None
    seen: set = set()
    for a, source in rule_sources(model):
        if cluster not in a.destination.clusters:
            continue
        for r in rule_rules(spec, model, a, source, servers, waypoints):
            key = (r["record"], tuple(r["labels"].items()))
            if key not in seen:
                seen.add(key)
                out.append(r)
    return out


# ---------------------------------------------------------------------------------------------
# alerts


def _by_service(expr: str, ns_label: str, svc_label: str) -> str:
    """``expr`` summed by its destination labels renamed ``namespace`` and ``service``."""
    inner = f"sum by ({ns_label}, {svc_label}) ({expr})"
    renamed = f'label_replace(label_replace({inner}, "namespace", "$1", "{ns_label}", "(.*)"), ' \
              f'"service", "$1", "{svc_label}", "(.*)")'
    return f"sum by (namespace, service) ({renamed}) > 0"


def _plaintext(protocol: str, expr: str, mesh: str) -> dict:
    return {"alert": ALERT_PLAINTEXT, "expr": expr,
            "labels": {"severity": "warning", "protocol": protocol},
            "annotations": {"summary": "Traffic without mutual TLS to {{ $labels.namespace }}/{{ $labels.service }}",
                            "description": f"{mesh} reports {protocol} traffic to this service without mutual TLS "
                                           f"in the last {WINDOW}: mTLS is not enforced for it."}}


def plaintext_alerts(spec) -> list[dict]:
    """``MeshPlaintextTraffic`` rules of the backend (module doc); [] for OSM."""
    namespaces = sorted({s.namespace for s in spec.services})
    if not namespaces:
        return []
    kind = spec.backend.type
    if kind == "istio":
        ns = _one_of("destination_service_namespace", namespaces)
        plain = ("connection_security_policy", "!=", "mutual_tls")
        out = []
        if spec.backend.istio.data_plane != "ambient":
            http = selector("istio_requests_total", ("reporter", "=", "destination"), ns, plain)
            out.append(_plaintext("http", _by_service(f"rate({http}[{WINDOW}])", "destination_service_namespace",
                                                      "destination_service_name"), "Istio"))
        # sidecars' TCP filter chains and ztunnel both report at the destination (a waypoint: HBONE, mTLS)
        tcp = selector("istio_tcp_connections_opened_total", ("reporter", "=", "destination"), ns, plain)
        out.append(_plaintext("tcp", _by_service(f"rate({tcp}[{WINDOW}])", "destination_service_namespace",
                                                 "destination_service_name"), "Istio"))
        return out
    if kind == "linkerd":
        ns = _one_of("dst_namespace", namespaces)
        plain = ("tls", "!=", "true")
        http = selector("request_total", ("direction", "=", "outbound"), ns, plain)
        tcp = selector("tcp_open_total", ("direction", "=", "outbound"), ("peer", "=", "dst"), ns, plain)
        return [_plaintext("http", _by_service(f"rate({http}[{WINDOW}])", "dst_namespace", "dst_service"), "Linkerd"),
                _plaintext("tcp", _by_service(f"rate({tcp}[{WINDOW}])", "dst_namespace", "dst_service"), "Linkerd")]
    return []


def certificate_alerts(spec) -> list[dict]:
    """``MeshCertificateExpiry`` rules of the backend (module doc); [] for OSM or without
    ``certificateExpiryDays``."""
    days = spec.telemetry.metrics.alerts.certificate_expiry_days
    if days is None:
        return []
    limit = days * 86400  # seconds

    def alert(certificate: str, expr: str) -> dict:
        return {"alert": ALERT_CERTIFICATE, "expr": expr,
                "labels": {"severity": "warning", "certificate": certificate},
                "annotations": {"summary": f"The mesh's {certificate} CA certificate expires within {days} days",
                                "description": "Rotate it (mesh.ca) before it expires: workloads whose certificates "
                                               "it signed stop trusting each other when it does."}}

    kind = spec.backend.type
    if kind == "istio":
        return [alert("root", f"min(citadel_server_root_cert_expiry_timestamp) - time() < {limit}"),
                alert("intermediate", f"min(citadel_server_cert_chain_expiry_timestamp) - time() < {limit}")]
    if kind == "linkerd":
        return [alert("intermediate", f"min(issuer_cert_ttl_seconds) < {limit}")]
    return []


def alert_rules(spec) -> list[dict]:
    a = spec.telemetry.metrics.alerts
    return (plaintext_alerts(spec) if a.plaintext_traffic else []) + certificate_alerts(spec)


# ---------------------------------------------------------------------------------------------
# the contract: problems, objects


def _enabled(spec) -> bool:
    return spec.telemetry is not None and spec.telemetry.metrics.enabled


def problems(spec) -> list[Problem]:
    """What golden signals cannot do for ``spec``, as ``(path, message)``: a scrape interval too
    long for a 5-minute rate, and OSM's bundled Prometheus, which loads no rule file."""
    if not _enabled(spec):
        return []
    m = spec.telemetry.metrics
    out: list[Problem] = []
    if m.golden_signals and m.scrape_interval_seconds > MAX_SCRAPE_INTERVAL:
        out.append(("mesh.telemetry.metrics.scrapeIntervalSeconds",
                    f"{m.scrape_interval_seconds} seconds leaves a 5-minute rate() fewer than the two samples it "
                    f"needs, so the golden-signal series would be empty: scrape every {MAX_SCRAPE_INTERVAL} seconds "
                    f"or less, or set goldenSignals: false"))
    if spec.backend.type == "osm" and m.prometheus.mode == "bundled" and (m.golden_signals or alert_rules(spec)):
        out.append(("mesh.telemetry.metrics.prometheus.mode",
                    "OSM's bundled Prometheus (chart osm 1.2.4, templates/prometheus-configmap.yaml) loads no rule "
                    "file and keeps only a fixed list of Envoy metrics, without the latency histogram, so the "
                    "golden-signal recording rules cannot run in it: use mode operator or annotations with a "
                    "Prometheus of your own, or set goldenSignals: false"))
    return out


def rule_namespace(spec) -> str:
    """The namespace of the rules' object: ``prometheus.namespace``, else linkerd-viz's (bundled
    Linkerd) or the control plane's."""
    p = spec.telemetry.metrics.prometheus
    if p.namespace:
        return p.namespace
    if p.mode == "bundled" and spec.backend.type == "linkerd":
        return LINKERD_VIZ_NAMESPACE
    return CONTROL_PLANE_NAMESPACE[spec.backend.type]


NAME_PREFIX = "mesh"
"""Prefix of the rule objects' and groups' names. Not ``mesh.name``: resource names never depend on
it, so renaming the mesh replaces nothing (README, "Resource names do not depend on mesh.name")."""


def rule_object_name(spec) -> str:
    return f"{NAME_PREFIX}-golden-signals"


def rule_groups(spec, model, cluster: str) -> list[dict]:
    """The Prometheus rule groups of ``cluster``: ``mesh.golden-signals.<namespace>`` per
    namespace of the destinations (the recording rules, with ``goldenSignals``), sorted, then
    ``mesh.alerts``; each only when it has rules."""
    m = spec.telemetry.metrics
    groups = []
    if m.golden_signals:
        by_ns: dict[str, list[dict]] = {}
        for r in recording_rules(spec, model, cluster):
            by_ns.setdefault(r["labels"]["namespace"], []).append(r)
        groups += [{"name": f"{NAME_PREFIX}.golden-signals.{ns}", "rules": rules} for ns, rules in sorted(by_ns.items())]
    if alerts := alert_rules(spec):
        groups.append({"name": f"{NAME_PREFIX}.alerts", "rules": alerts})
    return groups


def rule_file(groups: list[dict]) -> str:
    """A Prometheus rule file (YAML) holding ``groups``; deterministic text, no line folding."""
    return yaml.safe_dump({"groups": groups}, sort_keys=False, default_flow_style=False, width=1 << 16)


CONFIGMAP_LIMIT = 1024 * 1024
"""Most bytes a ConfigMap's data may hold (https://kubernetes.io/docs/concepts/configuration/configmap/:
"The data stored in a ConfigMap cannot exceed 1 MiB")."""


def _object_name(spec, group: dict) -> str:
    """``mesh-golden-signals-<namespace>`` for a namespace's group, ``mesh-alerts`` for the
    alerts (DNS subdomains: at most 4 + 16 + 63 characters; no two can be equal)."""
    suffix = group["name"][len(NAME_PREFIX) + 1:]  # golden-signals.<namespace> | alerts
    return f"{NAME_PREFIX}-{suffix.replace('.', '-')}"


def objects(spec, cluster, model) -> list[dict]:
    """The golden-signal rules' objects in ``cluster`` (a ``spec.Cluster``). ``operator``: one
    ``PrometheusRule`` per group (:func:`rule_groups`: one per destination namespace, and the
    alerts), so no object grows with the mesh past what the API server stores; ``annotations`` and
    ``bundled`` (Linkerd): one ConfigMap :func:`rule_object_name` holding every group in the rule
    file :data:`RULE_FILE` (one file to mount). None without rules, or for a ``bundled`` mode the
    backend refuses. Raises :class:`SpecError` for a rule file over a ConfigMap's 1 MiB. Module doc."""
    if not _enabled(spec):
        return []
    p = spec.telemetry.metrics.prometheus
    groups = rule_groups(spec, model, cluster.name)
    ns = rule_namespace(spec)
    if p.mode == "operator":
        return [k8s_object(OPERATOR_API, "PrometheusRule", _object_name(spec, g), ns, spec.name,
                           labels=dict(p.labels), spec={"groups": [g]}) for g in groups]
    if p.mode == "bundled":
        if not _viz_mounts(spec):
            return []  # refused for OSM (problems) and Istio (its backend's problems: no Prometheus shipped)
        # mounted by linkerd-viz in every cluster (linkerd_viz_values): present even with no group here,
        # or the Prometheus pod would wait for a missing ConfigMap volume
    elif not groups:
        return []
    text = rule_file(groups)
    if len(text.encode()) > CONFIGMAP_LIMIT:
        raise SpecError([("mesh.telemetry.metrics.prometheus.mode",
                          f"the golden-signal rule file of cluster {cluster.name} is {len(text.encode())} bytes, over "
                          f"the 1 MiB a ConfigMap holds: use mode operator (one PrometheusRule per namespace), or "
                          f"set goldenSignals: false")])
    return [k8s_object("v1", "ConfigMap", rule_object_name(spec), ns, spec.name, data={RULE_FILE: text})]


def _viz_mounts(spec) -> bool:
    """Whether linkerd-viz's bundled Prometheus mounts the rule ConfigMap: ``bundled`` mode on
    Linkerd asking for golden signals or any alert."""
    m = spec.telemetry.metrics
    return (spec.backend.type == "linkerd" and m.prometheus.mode == "bundled"
            and bool(m.golden_signals or alert_rules(spec)))


def linkerd_viz_values(spec) -> dict:
    """linkerd-viz values that mount the rule ConfigMap in its bundled Prometheus (``bundled``
    mode on Linkerd, with golden signals or an alert), to deep-merge into the linkerd-viz release
    of every cluster; {} otherwise. Chart values.yaml:500-509 (``ruleConfigMapMounts``: ``name``,
    the volume; ``subPath``, which must end in ``_rules.yml``; ``configMap``). :func:`objects`
    renders the ConfigMap in every cluster then, with no group where no rule applies (a rule file
    with ``groups: []`` is valid), so the volume never waits for a missing ConfigMap."""
    if not _enabled(spec) or not _viz_mounts(spec):
        return {}
    return {"prometheus": {"ruleConfigMapMounts": [{"name": VIZ_VOLUME, "subPath": RULE_FILE,
                                                     "configMap": rule_object_name(spec)}]}}


# ---------------------------------------------------------------------------------------------
# graph overlay


@dataclass(frozen=True, order=True)
class SeriesRef:
    """Series that show one edge's traffic: ``series`` names with the ``labels`` that select them
    (``(name, value)`` pairs), or ``gap``: why no per-rule series exists (then ``series`` holds
    the destination's per-service series, if any)."""

    labels: tuple[tuple[str, str], ...]
    series: tuple[str, ...]
    gap: str = ""

    def line(self) -> str:
        sel = "{" + ",".join(f'{k}="{v}"' for k, v in self.labels) + "}"
        names = ", ".join(self.series)
        if self.gap:
            return f"metrics: no per-rule series ({self.gap})" + (f"; destination: {names} {sel}" if names else "")
        return f"metrics {sel}: {names}"

    def as_json(self) -> dict:
        return {"labels": dict(self.labels), "series": list(self.series), **({"gap": self.gap} if self.gap else {})}


_RULE_GAPS = {"osm": "OSM's metrics carry no client identity"}


def edge_series(spec, model, a: gamma.Authorization, source: tuple[str, str],
                waypoints: frozenset[str] | None = None) -> SeriesRef | None:
    """The series that show the traffic of ``a`` from ``source`` (graph ``--metrics``), or None
    without golden signals. Names only: the series are the same in every cluster of the
    destination. ``waypoints``: :func:`waypoint_namespaces`, computed once by a caller that asks
    for many edges."""
    if not _enabled(spec) or not spec.telemetry.metrics.golden_signals:
        return None
    http, tcp = _admits(a)
    kind = spec.backend.type
    labels = tuple(_rule_labels(a, source).items())
    if kind in _RULE_GAPS:
        dest = [r["record"] for r in service_rules(spec, model, a.destination, waypoints)
                if (http and r["record"] in (SERVICE_REQUESTS, SERVICE_ERRORS))
                or (tcp and r["record"] == SERVICE_TCP)]
        return SeriesRef(labels[:2], tuple(dest), _RULE_GAPS[kind])
    names = tuple(r["record"] for r in rule_rules(spec, model, a, source, _AnyServer(), waypoints))
    if not names:
        why = "the mesh reports no exact series for the ports this rule admits here"
        if kind == "istio" and spec.backend.istio.data_plane == "ambient":
            why = "Istio ambient without a waypoint reports TCP only, for every port of the service alike"
        return SeriesRef(labels[:2], (), why)
    return SeriesRef(labels, names)


class _AnyServer(dict):
    """Server names for :func:`linkerd_signals` when only the series names matter."""

    def __missing__(self, key):
        return key[1][1]
