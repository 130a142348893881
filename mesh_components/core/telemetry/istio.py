"""``mesh.telemetry`` for Istio 1.30.3: the Telemetry API, istiod's ``meshConfig`` and the scrape
objects of a Prometheus Operator. Pure core; exact or refused.

What is rendered (every upstream reference is istio/istio at tag 1.30.3 unless named otherwise;
``api`` is istio/api 2e43f07b30b6, the commit 1.30.3's go.mod pins):

- **Providers** (:func:`release_values`): every istiod release of the cluster (one per revision,
  :func:`mesh_components.meshes.istio.revisions`) gets, in Helm ``meshConfig.extensionProviders``, an
  ``envoyFileAccessLog`` provider to ``/dev/stdout`` per access-log format some scope uses
  (:data:`ACCESS_LOG_PROVIDERS`) and one tracing provider (:data:`TRACING_PROVIDER`, ``zipkin`` or
  ``opentelemetry``). istiod adds them to its built-in ``prometheus``/``stackdriver``/``envoy``
  providers by name (``pkg/config/mesh/mesh.go:107-129`` defaults, ``236-250`` merge).
  ``meshConfig.defaultProviders`` is left alone: the chart writes ``defaultProviders.metrics:
  [prometheus]`` only while ``meshConfig.defaultProviders`` is unset
  (``manifests/charts/istio-control/istio-discovery/templates/_helpers.tpl:1-7``,
  ``templates/configmap.yaml:12-26``), so setting it for tracing would silently drop Istio's
  metrics; and a Telemetry object can state ``disabled``/``disableSpanReporting`` per scope, which
  a default provider cannot.
- **Telemetry objects** (:func:`objects`, ``telemetry.istio.io/v1``): ``mesh-default`` in the root
  namespace ``istio-system`` (chart ``rootNamespace: .Values.meshConfig.rootNamespace | default
  .Values.global.istioNamespace``, ``templates/configmap.yaml:10``; code default
  ``pkg/config/mesh/mesh.go:91``) with the mesh defaults, then one per ``overrides[i]``: in its
  namespace without a selector (namespace-wide), or for one service. Istio stacks root, then
  namespace, then workload/Service Telemetry, later ones winning field by field
  (``pilot/pkg/model/telemetry.go:408-494``; access logs ``mergeLogs`` ``601-668``: the lowest
  scope naming providers picks them, each scope's filter replaces the one above; tracing
  ``293-390``: each set field replaces the parent's). Every scope is therefore rendered fully
  resolved (:func:`effective`), each entry naming its provider and stating ``disabled`` /
  ``disableSpanReporting``, so no scope depends on what a parent left unset.
- **Metrics**: Istio's built-in ``prometheus`` provider (the standard metrics, e.g.
  ``istio_requests_total``), named in ``mesh-default``; scraped per ``prometheus.mode``:
  ``operator`` renders :func:`scrape_objects`; ``annotations`` sets ``enablePrometheusMerge:
  true`` (the mesh default, ``pkg/config/mesh/mesh.go:106``, chart ``values.yaml:222-223``, pinned
  here because that mode depends on it): the injector then points each sidecar pod's
  ``prometheus.io/port|path|scrape`` at the agent's merged endpoint ``:15020/stats/prometheus``
  (``pkg/kube/inject/webhook.go:884-921``); gateways, waypoints, ztunnel and istiod carry such
  annotations from their own templates (gateway chart ``values.yaml:29-32``,
  ``istio-discovery/files/waypoint.yaml:55-57``, ztunnel chart ``values.yaml:49-52``,
  ``istio-discovery/templates/deployment.yaml:62-64``). ``metrics.enabled: false`` renders none
  of this: the proxies still produce their standard metrics (the chart's
  ``defaultProviders.metrics``), nothing here configures their collection.

Scopes and data planes (:func:`effective` resolves a scope: mesh default, then the namespace's
override, then the service's, each field left out keeping the one above):

- sidecars: the namespace Telemetry applies to every sidecar of the namespace; the service
  Telemetry selects the service's pods (``selector.matchLabels`` = ``Service.pod_labels()``; a
  selector applies to non-gateway proxies only, ``pilot/pkg/model/policyattachment.go:130-137``,
  and to every pod whose labels include it, ``:109-112``, so a selector that also picks another
  declared service's or version's pods is refused). An override's ``accessLogging`` entry carries
  ``match: {mode: SERVER}``: ``mergeLogs`` honours it per listener class (``telemetry.go:618,652,
  670-680``; inbound listeners are ``SERVER``, outbound and gateways ``CLIENT``: ``:223-237``), so
  an override's access logs are about requests TO the namespace's (service's) pods, as a
  waypoint's are in ambient, and the requests those pods send keep the mesh default (their
  client-side line); so does a gateway running in an override's namespace (its listeners are
  ``CLIENT``). Tracing entries carry no match: a sidecar override's tracing is that of its pods'
  proxies, inbound and outbound (see sampling below).
- ambient: HTTP requests are seen by waypoints only (ztunnel reads no Telemetry object: it logs
  every connection on its own ``access`` target at ``info``, istio/ztunnel 1.30.3
  ``src/proxy/metrics.rs:503-528``, and sends no spans). ztunnel's connection log follows the
  MESH-WIDE ``accessLogs`` only, through its chart values (:func:`ztunnel_values`: off, filter
  errors = failed connections, JSON); overrides govern the waypoints' Envoy, and one that would
  change access logs for a scope while the mesh default has them on is refused (ztunnel would
  still log that scope's connections as the mesh default says). A waypoint reads the namespace-wide
  Telemetry of its namespace and of the Service's (``telemetry.go:436-470``) and Service-attached
  Telemetry (``targetRefs`` kind ``Service``, only for waypoints: api
  ``telemetry/v1alpha1/telemetry.proto:296-316``; ``policyattachment.go:154-163``; the listener
  passes the Service: ``pilot/pkg/networking/core/listener_waypoint.go:911-931``,
  ``listener_builder.go:391-393``); waypoints ignore ``selector`` (``policyattachment.go:139-148``).
  A service override targets the service's Service and its per-version Services
  (:func:`mesh_components.meshes.istio_policy.service_refs`). An override that turns access logs or
  tracing on where no waypoint runs (a namespace without an L7 rule or split,
  :func:`mesh_components.meshes.istio_policy.needs_waypoint`, or a headless service) is refused. The
  mesh default applies to every Envoy of the mesh (waypoints, gateways, sidecars); in ambient a
  namespace without a waypoint has no HTTP access log or span.

Sampling (tracing): ``samplingPercent`` becomes ``randomSamplingPercentage``, which Envoy applies
only to requests on which no sampling decision was made before (istio/api 1.30.3
``telemetry/v1alpha1/telemetry.proto:359-364``; rendered as the HTTP connection manager's
``random_sampling``: ``pilot/pkg/networking/core/tracing.go:122-136,703-713``). A request carrying
a decision (``x-b3-sampled``, ``traceparent``) keeps it. So an override raises or lowers sampling
only for traces that START in its scope: requests its pods send (sidecars: their outbound proxy
decides first), or requests arriving at it without trace context (from an unmeshed client or an
untraced scope); a request from a traced caller is sampled as the caller decided, and one through
an ingress gateway as the gateway's scope (its namespace, else the mesh default) decided. A scope with
tracing off gets ``disableSpanReporting: true``, and istiod then configures no tracing at all on
that proxy (``tracing.go:101-103``; the API says it leaves sampling alone, the source does not):
it makes no decision and propagates none, so a request its pods send arrives at the next scope
undecided and is sampled there at that scope's percentage, as a new trace.

Facts for the golden-signal rules (``telemetry.golden_signals``) from this configuration:

- series: the ``prometheus`` provider's standard metrics, ``istio_`` + ``requests_total``,
  ``request_duration_milliseconds`` (histogram, ``_bucket``/``_sum``/``_count``), ``request_bytes``,
  ``response_bytes``, ``tcp_connections_opened_total``, ``tcp_connections_closed_total``,
  ``tcp_sent_bytes_total``, ``tcp_received_bytes_total`` (``telemetry.go:977-988``); labels such as
  ``reporter`` (``source``/``destination``; ``waypoint`` at waypoints, ``telemetry.go:1006-1008``,
  read as ``reporter=~"source|waypoint"`` by ``manifests/addons/dashboards/
  istio-mesh-dashboard.gen.json:83``), ``source_workload``, ``source_workload_namespace``,
  ``source_principal``, ``destination_service_name``, ``destination_service_namespace``,
  ``destination_workload``, ``destination_workload_namespace``, ``response_code``,
  ``connection_security_policy`` (``mutual_tls`` or not: ``manifests/addons/dashboards/
  istio-service-dashboard.json:938,950``). ztunnel exports the ``istio_tcp_*`` series.
- certificate expiry: istiod exports ``citadel_server_root_cert_expiry_timestamp`` and
  ``citadel_server_cert_chain_expiry_timestamp`` (``security/pkg/server/ca/monitoring.go:59,68``),
  scraped by the ``mesh-istiod`` ServiceMonitor (operator mode).
- scrape target labels (operator mode): the operator adds ``namespace``, ``pod``, ``container``,
  ``endpoint`` (the port name) and ``job`` = ``<namespace>/<PodMonitor name>``
  (prometheus-operator v0.93.0 ``pkg/prometheus/promcfg.go:1569-1653``).
"""
from __future__ import annotations

from ...spec.errors import Problem, TranslationError
from ...meshes.istio import SYSTEM_NAMESPACE, istiod_release_name, revisions
from ...meshes.istio_policy import needs_waypoint, service_refs
from ..meta import k8s_object
from ...spec import AccessLogs, Tracing

TELEMETRY_API = "telemetry.istio.io/v1"
ZTUNNEL_RELEASE = "ztunnel"
"""The ztunnel chart's release name in :func:`mesh_components.meshes.istio.control_plane` (ambient)."""
ZTUNNEL_LOG_LEVEL = "info"
"""The ztunnel chart's default ``logLevel`` (istio 1.30.3 ``manifests/charts/ztunnel/values.yaml:121``),
kept for every log target but ``access``."""
ZTUNNEL_ACCESS_TARGET = "access"
"""ztunnel's access-log target (istio/ztunnel 1.30.3 ``src/proxy/metrics.rs:471,509,518,595``)."""
MONITORING_API = "monitoring.coreos.com/v1"
ROOT_NAMESPACE = SYSTEM_NAMESPACE
"""Where the mesh-wide Telemetry goes: istiod's root namespace (see the module doc)."""
ROOT_TELEMETRY = "mesh-default"
NAMESPACE_TELEMETRY = "mesh-telemetry"
"""Name of a namespace override's Telemetry; a service override's is ``mesh-telemetry-<service>``.
Istio reads one selector-less Telemetry per namespace (the oldest: ``telemetry.go:682-689``), so a
namespace should hold no other."""

ACCESS_LOG_PROVIDERS = {"text": "mesh-access-log-text", "json": "mesh-access-log-json"}
"""Access-log format -> extension provider name (``envoyFileAccessLog``, ``/dev/stdout``)."""
TRACING_PROVIDER = "mesh-tracing"
PROMETHEUS_PROVIDER = "prometheus"
"""istiod's built-in metrics provider (``pkg/config/mesh/mesh.go:109-114``)."""
ERRORS_FILTER = "response.code >= 400"
"""``accessLogs.filter: errors`` as the Telemetry ``filter.expression``: a CEL expression over Envoy's
attributes (``response.code``, the HTTP status: https://www.envoyproxy.io/docs/envoy/latest/intro/
arch_overview/advanced/attributes#response-attributes), built into Envoy's CEL access-log filter
(``pilot/pkg/networking/core/accesslog.go:155-198``); the same expression is istio's own test case
(``pilot/pkg/model/telemetry_logging_test.go:734``). A TCP connection has no ``response.code``,
so the expression does not hold and it is not logged: only requests answered with a status of 400
or more are."""

ENVOY_STATS_PORT = "http-envoy-prom"
"""The Envoy stats port (15090, ``/stats/prometheus``) of every Istio Envoy: sidecars
(``istio-discovery/files/injection-template.yaml:187-197``; excluded from inbound capture, so it
is scraped in plain text beside mTLS: ``:106-113``), gateways (gateway chart
``templates/deployment.yaml:71-104``), waypoints and Gateway API gateways
(``istio-discovery/files/waypoint.yaml:92-102``, ``kube-gateway.yaml:87-117``)."""
ZTUNNEL_STATS_PORT = "ztunnel-stats"
"""ztunnel's metrics port (15020; ztunnel chart ``templates/daemonset.yaml:64-73``), serving
``/metrics`` (istio/ztunnel 1.30.3 ``src/metrics/server.rs:56``)."""
ISTIOD_MONITORING_PORT = "http-monitoring"
"""istiod's metrics port (15014) on its Service (``istio-discovery/templates/service.yaml:34-35``)."""


# ---------------------------------------------------------------------------------------------
# resolving the spec


def effective(spec, namespace: str | None = None, service: str | None = None) -> tuple[AccessLogs, Tracing]:
    """The access-log and tracing settings of one scope: the mesh (``namespace`` None), a namespace,
    or one service of it. Mesh defaults, then the namespace's override, then the service's; a field
    an override leaves out keeps the value above it. Returns ``(AccessLogs, Tracing)`` (fresh
    models; ``Tracing.address``/``provider`` always the mesh's)."""
    return _effective(spec, _overrides_by_scope(spec), namespace, service)


def _overrides_by_scope(spec) -> dict:
    return {(o.namespace, o.service): o for o in spec.telemetry.overrides}


def _effective(spec, by_scope: dict, namespace: str | None, service: str | None) -> tuple[AccessLogs, Tracing]:
    t = spec.telemetry
    access = t.access_logs.model_dump()
    tracing = t.tracing.model_dump()
    keys = [] if namespace is None else [(namespace, None)] + ([(namespace, service)] if service is not None else [])
    for o in (by_scope[k] for k in keys if k in by_scope):
        if o.access_logs is not None:
            access.update({k: v for k, v in o.access_logs.model_dump().items() if v is not None})
        if o.tracing is not None:
            tracing.update({k: v for k, v in o.tracing.model_dump().items() if v is not None})
    # model_construct: the values were validated in the spec; Tracing's "enabled needs an
    # address" check is the mesh's (an override enabling it without one is refused in problems)
    return AccessLogs.model_construct(**access), Tracing.model_construct(**tracing)


def _scopes(spec) -> list[tuple[AccessLogs, Tracing]]:
    """The mesh scope, then every override's scope in spec order, each resolved (one pass)."""
    by_scope = _overrides_by_scope(spec)
    return [_effective(spec, by_scope, None, None)] + [
        _effective(spec, by_scope, o.namespace, o.service) for o in spec.telemetry.overrides]


def _used(scopes) -> tuple[bool, bool]:
    """Whether some scope turns access logs, tracing on (only then is its provider rendered)."""
    return any(a.enabled for a, _ in scopes), any(t.enabled for _, t in scopes)


def _collector(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


# ---------------------------------------------------------------------------------------------
# problems


_NOT_FQDN = ("Istio finds the collector by its host name in its service registry (istio 1.30.3 "
             "pilot/pkg/model/telemetry_logging.go:545-579; api mesh/v1alpha1/config.proto:814-817: \"a fully "
             "qualified host name of a service defined by the Kubernetes service or ServiceEntry\"), and {0!r} "
             "is not one; write the Service's full name <name>.<namespace>.svc.cluster.local (or the host of a "
             "ServiceEntry for an external collector)")


_IP_COLLECTOR = ("{0!r} is an IP address, and istiod finds a collector only by the host name of a Service or "
                 "ServiceEntry in its registry (istio 1.30.3 pilot/pkg/model/telemetry_logging.go:545-579); when the "
                 "lookup fails the proxy gets no tracing at all (pilot/pkg/networking/core/tracing.go:106-111); name "
                 "the collector's Service, <name>.<namespace>.svc.cluster.local, or declare a ServiceEntry for that "
                 "address and use its host")


def problems(spec) -> list[Problem]:
    """What ``spec.telemetry`` asks that Istio 1.30.3 cannot do exactly, as ``(path, message)``
    (paths ``mesh.telemetry...``). Refused here (needing the spec only):

    - ``metrics.prometheus.mode: bundled``: Istio's charts ship no Prometheus (base, istiod, cni,
      ztunnel, gateway: ../shared/charts; ``samples/addons/prometheus.yaml`` is a sample);
    - ``metrics.scrapeIntervalSeconds`` given with ``mode: annotations``: the pods carry only
      ``prometheus.io/scrape|port|path`` (``pkg/kube/inject/webhook.go:914-916``), so the
      Prometheus's own ``scrape_interval`` applies;
    - ``metrics.prometheus.namespace`` naming a namespace of ``mesh.namespaces`` that some cluster
      lacks (the scrape objects go in every cluster);
    - tracing turned on by an override while the mesh's ``tracing.address`` is unset;
    - a tracing collector host that is an IP address (:data:`_IP_COLLECTOR`) or not a fully
      qualified name (:data:`_NOT_FQDN`);
    - a service override whose access logs are on with ``filter: errors`` while the service has no
      HTTP port (a TCP connection has no ``response.code``: nothing would be logged);
    - sidecars: a service override whose selector (the service's pod labels) also picks the pods
      of another declared service or version of its namespace (``policyattachment.go:109-112``:
      the override would govern them too);
    - ambient, mesh access logs on: an override whose access logs differ from the mesh default
      (off, another format or filter): ztunnel, which reads no Telemetry, would still log that
      scope's connections as the mesh default says (:func:`ztunnel_values`);
    - ambient: an override turning access logs or tracing on for a headless service (a
      ``waypoint-for: service`` waypoint never sees it), or for a service with more Services than
      ``targetRefs`` takes (16).

    Refusals that need the traffic model or the cluster's other objects (ambient namespaces
    without a waypoint; sidecars whose ``Sidecar`` egress leaves the collector out) are raised by
    :func:`objects`."""
    t = spec.telemetry
    out: list[Problem] = []
    m = t.metrics
    if m.enabled and m.prometheus.mode == "bundled":
        out.append(("mesh.telemetry.metrics.prometheus.mode",
                    "Istio ships no Prometheus of its own (its charts base, istiod, cni, ztunnel and gateway install "
                    "none; samples/addons/prometheus.yaml is a demo): use mode operator (PodMonitor/ServiceMonitor for "
                    "a Prometheus Operator in the cluster) or annotations (a Prometheus that reads prometheus.io/* "
                    "pod annotations)"))
    if m.enabled and m.prometheus.mode == "annotations" and "scrape_interval_seconds" in m.model_fields_set:
        out.append(("mesh.telemetry.metrics.scrapeIntervalSeconds",
                    "with prometheus.mode annotations the scraping Prometheus's own scrape_interval applies: Istio's "
                    "pods carry only the prometheus.io/scrape, port and path annotations (istio 1.30.3 "
                    "pkg/kube/inject/webhook.go:914-916), none for an interval; set the interval in that Prometheus "
                    "and remove scrapeIntervalSeconds, or use mode operator (the PodMonitors carry it)"))
    ns = m.prometheus.namespace
    if m.enabled and m.prometheus.mode == "operator" and ns is not None and \
            ns in {n.name for n in spec.namespaces} and len(spec.namespace_clusters(ns)) < len(spec.clusters):
        missing = [c for c in spec.cluster_names() if c not in spec.namespace_clusters(ns)]
        out.append(("mesh.telemetry.metrics.prometheus.namespace",
                    f"the scrape objects go in every cluster, but namespace {ns} (mesh.namespaces) is not in "
                    f"{', '.join(missing)}; list those clusters for it, or name a namespace every cluster has"))
    scopes = _scopes(spec)  # scopes[0] the mesh, scopes[i + 1] overrides[i]
    _, tracing_on = _used(scopes)
    if tracing_on and t.tracing.address is None:
        first = next(i for i, (_, tr) in enumerate(scopes[1:]) if tr.enabled)
        out.append(("mesh.telemetry.tracing.address",
                    f"overrides[{first}] turns tracing on, but no collector is named: set tracing.address to the "
                    f"collector's <host>:<port> (tracing.enabled may stay false for the rest of the mesh)"))
    if t.tracing.address is not None and (tracing_on or t.tracing.enabled):
        host, _ = _collector(t.tracing.address)
        labels = host.split(".")
        if labels[-1].isdigit():  # no top-level domain is all digits: an IPv4 address
            out.append(("mesh.telemetry.tracing.address", _IP_COLLECTOR.format(host)))
        elif len(labels) < 3 or labels[-1] == "svc":
            out.append(("mesh.telemetry.tracing.address", _NOT_FQDN.format(host)))
    ambient = spec.backend.istio.data_plane == "ambient"
    mesh_logs = scopes[0][0]
    for i, o in enumerate(t.overrides):
        logs = scopes[i + 1][0]
        if ambient and mesh_logs.enabled and o.access_logs is not None and \
                _log_settings(logs) != _log_settings(mesh_logs):
            out.append((f"mesh.telemetry.overrides[{i}].accessLogs", _ZTUNNEL_LOGS.format(
                what=f"service {o.namespace}/{o.service}" if o.service else f"namespace {o.namespace}",
                mesh=_shown_logs(mesh_logs), here=_shown_logs(logs))))
        if o.service is None:
            continue
        svc = spec.services_by_key.get((o.namespace, o.service))
        if svc is None:  # an unknown service is spec.telemetry_reference_problems'
            continue
        where = f"mesh.telemetry.overrides[{i}].service"
        if o.access_logs is not None and logs.enabled and logs.filter == "errors" and \
                not any(port.is_http for port in svc.ports):
            out.append((f"mesh.telemetry.overrides[{i}].accessLogs.filter", _TCP_ERRORS.format(
                svc=f"{o.namespace}/{o.service}",
                ports=", ".join(f"{port.port}/{port.protocol}" for port in svc.ports))))
        if ambient:
            if _turns_on(o, *scopes[i + 1]) and svc.headless:
                out.append((where, f"service {o.namespace}/{o.service} is headless (headless: true): its callers "
                                   f"address pods, and a waypoint (istio.io/waypoint-for: service) sees only "
                                   f"Service-addressed traffic (istio 1.30.3 pilot/pkg/serviceregistry/ambient/"
                                   f"waypoints.go:166-193), so no proxy would log or trace its requests; give the "
                                   f"Service a ClusterIP, drop the override, or use dataPlane: sidecar"))
            refs = service_refs(spec, o.namespace, o.service)
            if len(refs) > 16:
                out.append((where, f"service {o.namespace}/{o.service} has {len(refs)} Services (its own and one per "
                                   f"version), more than a Telemetry's targetRefs takes (16: maxItems in the "
                                   f"telemetry.istio.io CRD); keep at most 15 versions"))
            continue
        selector = svc.pod_labels()
        for other, labels in _pod_groups(spec, o.namespace):
            if other != o.service and selector.items() <= labels.items():
                out.append((where, f"the selector of service {o.namespace}/{o.service} ({_shown(selector)}) also "
                                   f"picks the pods of {o.namespace}/{other} ({_shown(labels)}): a selector "
                                   f"applies to every pod whose labels include it (istio 1.30.3 "
                                   f"pilot/pkg/model/policyattachment.go:109-112), so this override would "
                                   f"govern those pods too; give {o.namespace}/{o.service}'s pods a label of "
                                   f"their own (services[].labels), or drop the override"))
                break
    return out


_ZTUNNEL_LOGS = ("in ambient mode ztunnel logs every connection of the mesh, {what}'s too, as the mesh default "
                 "says ({mesh}): it reads no Telemetry object, only its chart's logLevel and logAsJson (istio/ztunnel "
                 "1.30.3 src/proxy/metrics.rs:503-528, src/telemetry.rs:74-93), so this override ({here}) would "
                 "hold for the waypoint's request logs only; set mesh.telemetry.accessLogs.enabled: false and turn "
                 "access logs on per namespace where wanted (then ztunnel logs no connection), drop the override's "
                 "accessLogs, or use dataPlane: sidecar")

_TCP_ERRORS = ("service {svc} has no HTTP port ({ports}): filter errors keeps requests answered with an HTTP status "
               "of 400 or more (the expression " + ERRORS_FILTER + ", istio 1.30.3 pilot/pkg/networking/core/"
               "accesslog.go:155-198), and a TCP connection has no response.code, so nothing of this service would "
               "be logged; use filter: all, or give the port its protocol (ports[].protocol http, http2 or grpc) "
               "if it speaks HTTP")


def _log_settings(a: AccessLogs) -> tuple:
    """What ztunnel's connection log of a scope would have to be: off, or on with a format and filter."""
    return (a.enabled, a.format, a.filter) if a.enabled else (False,)


def _shown_logs(a: AccessLogs) -> str:
    return f"on, {a.format}, filter {a.filter}" if a.enabled else "off"


def _pod_groups(spec, namespace: str) -> list[tuple[str, dict]]:
    """``(service name, pod labels)`` of every declared service of ``namespace`` and of each of its
    versions (a version's pods carry the service's labels and the version's:
    :func:`mesh_components.core.render.version_services`)."""
    out: list[tuple[str, dict]] = []
    for s in spec.services:
        if s.namespace == namespace:
            out.append((s.name, s.pod_labels()))
            out += [(s.name, {**s.pod_labels(), **v.pod_labels()}) for v in s.versions]
    return out


def _turns_on(o, a: AccessLogs, tr: Tracing) -> bool:
    """Whether override ``o`` states a section (accessLogs, tracing) that is on in its scope
    (``a``, ``tr``: the scope resolved)."""
    return (o.access_logs is not None and a.enabled) or (o.tracing is not None and tr.enabled)


def _shown(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _ambient_problems(spec, model) -> list[Problem]:
    """Ambient overrides that turn access logs or tracing on in a namespace without a waypoint."""
    if spec.backend.istio.data_plane != "ambient":
        return []
    waypoints = needs_waypoint(spec, model)
    out: list[Problem] = []
    for i, (o, (a, tr)) in enumerate(zip(spec.telemetry.overrides, _scopes(spec)[1:])):
        if o.namespace in waypoints:
            continue
        what = f"service {o.namespace}/{o.service}" if o.service else f"namespace {o.namespace}"
        for field, on, signal in (("accessLogs", o.access_logs is not None and a.enabled, "access logs"),
                                  ("tracing", o.tracing is not None and tr.enabled, "spans")):
            if on:
                out.append((f"mesh.telemetry.overrides[{i}].{field}",
                            f"{what} has no waypoint (Istio ambient adds one to a namespace only for an HTTP access "
                            f"rule or a traffic split), and only a waypoint sees its HTTP requests: ztunnel logs "
                            f"connections on its own and sends no spans (istio/ztunnel 1.30.3 src/proxy/metrics.rs:"
                            f"503-528), so no proxy would write these {signal}; add an HTTP rule or split for "
                            f"namespace {o.namespace}, drop the override, or use dataPlane: sidecar"))
    return out


# ---------------------------------------------------------------------------------------------
# istiod values


def extension_providers(spec) -> list[dict]:
    """``meshConfig.extensionProviders`` entries for what some scope turns on, in a fixed order: one
    ``envoyFileAccessLog`` per access-log format in use (text: no ``logFormat``, Istio's default
    text line, ``telemetry_logging.go:224-226,359-370``; JSON: ``logFormat.labels: {}``, "Use
    `labels: {}` for default envoy JSON log format", api ``mesh/v1alpha1/config.proto:1032``,
    ``telemetry_logging.go:263-271``), then the tracing provider (``zipkin`` or
    ``opentelemetry`` over gRPC, ``service``/``port`` from ``tracing.address``: ``tracing.go:180-192,
    219-226``; api ``config.proto:801-822,1195-1205``)."""
    out: list[dict] = []
    scopes = _scopes(spec)
    access_on, tracing_on = _used(scopes)
    if access_on:
        formats = {a.format for a, _ in scopes}
        for fmt in ("text", "json"):
            if fmt in formats:
                provider: dict = {"path": "/dev/stdout"}
                if fmt == "json":
                    provider["logFormat"] = {"labels": {}}
                out.append({"name": ACCESS_LOG_PROVIDERS[fmt], "envoyFileAccessLog": provider})
    if tracing_on and spec.telemetry.tracing.address is not None:
        host, port = _collector(spec.telemetry.tracing.address)
        out.append({"name": TRACING_PROVIDER, spec.telemetry.tracing.provider: {"service": host, "port": port}})
    return out


def release_values(spec, cluster) -> dict[str, dict]:
    """``{istiod release name: {"meshConfig": {...}}}`` for every istiod revision of ``cluster``
    (:func:`mesh_components.meshes.istio.istiod_release_name`), deep-merged by the render into the values
    :func:`mesh_components.meshes.istio.control_plane` gives them: ``extensionProviders``
    (:func:`extension_providers`) and, for ``prometheus.mode: annotations``,
    ``enablePrometheusMerge: true``. Keys ``istio.mesh_config`` sets (``outboundTrafficPolicy``,
    ``trustDomain``, ``localityLbSetting``, ``serviceSettings``) are not touched. Ambient: also
    ``{ZTUNNEL_RELEASE: ztunnel_values(spec)}`` for the ztunnel release when that is not empty.
    Empty when there is nothing to set (the releases stay as they were)."""
    def mesh_config() -> dict:  # a fresh dict per release: no two releases share a value
        out: dict = {}
        if providers := extension_providers(spec):
            out["extensionProviders"] = providers
        m = spec.telemetry.metrics
        if m.enabled and m.prometheus.mode == "annotations":
            out["enablePrometheusMerge"] = True
        return out

    out = {istiod_release_name(spec, rev): {"meshConfig": mesh_config()} for rev, _ in revisions(spec)} \
        if mesh_config() else {}
    if spec.backend.istio.data_plane == "ambient" and (ztunnel := ztunnel_values(spec)):
        out[ZTUNNEL_RELEASE] = ztunnel
    return out


def ztunnel_values(spec) -> dict:
    """The ztunnel chart values for the MESH-WIDE ``accessLogs`` (ambient). ztunnel reads no Telemetry
    object: it logs every connection it proxies on the log target ``access`` (istio/ztunnel 1.30.3
    ``src/proxy/metrics.rs:503-528``: ``INFO`` "connection complete" on success, ``ERROR`` on
    failure; ``:462-487``: ``WARN`` "connection failed" for a connection refused before it starts,
    e.g. denied by policy; ``:594-597``: ``DEBUG`` "connection opened"), filtered by ``RUST_LOG``
    (``src/telemetry.rs:87-93``) and written as JSON when ``LOG_FORMAT=json`` (``:74-78``); the chart
    sets them from ``logLevel`` and ``logAsJson`` (istio 1.30.3 ``manifests/charts/ztunnel/
    values.yaml:119-124``, ``templates/daemonset.yaml:122-131``). So:

    - off: ``logLevel: "info,access=off"`` (the chart's default level, :data:`ZTUNNEL_LOG_LEVEL`, for
      every other target);
    - on, ``filter: all``: nothing to set (the default ``info`` logs them);
    - on, ``filter: errors``: ``logLevel: "info,access=warn"``: failed and refused connections only.
      A failure is ztunnel's notion (the connection failed or was denied), not an HTTP status: ztunnel
      sees bytes, not responses, so a request answered 503 over a good connection is not logged;
    - on, ``format: json``: ``logAsJson: true``, which turns EVERY ztunnel log line into JSON, not
      only the access log (text keeps ztunnel's own line format, not Envoy's).

    ``{}`` when nothing differs from the chart's defaults. Overrides do not reach ztunnel (they govern
    the waypoints' Envoy; :func:`problems` refuses those that would have to)."""
    a = spec.telemetry.access_logs
    out: dict = {}
    if not a.enabled:
        out["logLevel"] = f"{ZTUNNEL_LOG_LEVEL},{ZTUNNEL_ACCESS_TARGET}=off"
        return out
    if a.filter == "errors":
        out["logLevel"] = f"{ZTUNNEL_LOG_LEVEL},{ZTUNNEL_ACCESS_TARGET}=warn"
    if a.format == "json":
        out["logAsJson"] = True
    return out


# ---------------------------------------------------------------------------------------------
# objects


def _access_logging(a: AccessLogs, *, server_only: bool = False) -> list[dict]:
    """One ``accessLogging`` entry naming the scope's provider; ``server_only``: ``match: {mode:
    SERVER}`` (a sidecar override: requests the pods receive, see the module doc)."""
    entry: dict = {"providers": [{"name": ACCESS_LOG_PROVIDERS[a.format]}], "disabled": not a.enabled}
    if a.enabled and a.filter == "errors":
        entry["filter"] = {"expression": ERRORS_FILTER}
    if server_only:
        entry["match"] = {"mode": "SERVER"}
    return [entry]


def _tracing(t: Tracing) -> list[dict]:
    entry: dict = {"providers": [{"name": TRACING_PROVIDER}], "disableSpanReporting": not t.enabled}
    if t.enabled:
        entry["randomSamplingPercentage"] = t.sampling_percent
    return [entry]


def _sections(used: tuple[bool, bool], access: AccessLogs, tracing: Tracing, *, metrics: bool,
              server_only: bool = False) -> dict:
    """A Telemetry spec's sections for one resolved scope: every signal some scope turns on
    (``used``, :func:`_used`), so each object states it whatever its parents say."""
    body: dict = {}
    if metrics:
        body["metrics"] = [{"providers": [{"name": PROMETHEUS_PROVIDER}]}]
    if used[0]:
        body["accessLogging"] = _access_logging(access, server_only=server_only)
    if used[1]:
        body["tracing"] = _tracing(tracing)
    return body


def telemetry_objects(spec, cluster) -> list[dict]:
    """The Telemetry objects of ``cluster`` (a ``spec.Cluster``): ``mesh-default`` in the root
    namespace (when it has a section), then per override, in spec order, where its namespace (and
    service) exists: ``mesh-telemetry`` (namespace) or ``mesh-telemetry-<service>``, each with every
    section some scope uses, resolved for that scope (:func:`effective`). Service overrides select
    the service's pods (sidecars) or target its Services (ambient waypoints); sidecar overrides'
    ``accessLogging`` entries match ``SERVER`` only (module doc)."""
    mesh = spec.name
    ambient = spec.backend.istio.data_plane == "ambient"
    out: list[dict] = []
    scopes = _scopes(spec)
    used = _used(scopes)
    root = _sections(used, *scopes[0], metrics=spec.telemetry.metrics.enabled)
    if root:
        out.append(k8s_object(TELEMETRY_API, "Telemetry", ROOT_TELEMETRY, ROOT_NAMESPACE, mesh, spec=root))
    for o, scope in zip(spec.telemetry.overrides, scopes[1:]):
        body = _sections(used, *scope, metrics=False, server_only=not ambient)
        if not body or cluster.name not in spec.namespace_clusters(o.namespace):
            continue
        if o.service is None:
            out.append(k8s_object(TELEMETRY_API, "Telemetry", NAMESPACE_TELEMETRY, o.namespace, mesh, spec=body))
            continue
        svc = spec.services_by_key[(o.namespace, o.service)]
        if cluster.name not in spec.service_clusters(svc):
            continue
        target = ({"targetRefs": service_refs(spec, o.namespace, o.service)} if ambient
                  else {"selector": {"matchLabels": svc.pod_labels()}})
        out.append(k8s_object(TELEMETRY_API, "Telemetry", f"{NAMESPACE_TELEMETRY}-{o.service}", o.namespace, mesh,
                              spec={**target, **body}))
    return out


def scrape_objects(spec, cluster) -> list[dict]:
    """``prometheus.mode: operator``: the Prometheus Operator objects that scrape the mesh, after
    Istio's own sample (``samples/addons/extras/prometheus-operator.yaml:1-66``), in
    ``prometheus.namespace`` (default ``istio-system``, which the mesh creates), labelled with
    ``prometheus.labels`` (what the Prometheus's monitor selectors pick), every endpoint scraped
    every ``scrapeIntervalSeconds``:

    - PodMonitor ``mesh-envoy-stats``: every pod of every namespace with a container port
      :data:`ENVOY_STATS_PORT` (sidecars, gateways, waypoints), ``/stats/prometheus``; pods labelled
      ``istio-prometheus-ignore`` are left out, as in the sample. The port is Envoy's own, so this
      does not depend on ``enablePrometheusMerge`` (the sample follows the merge annotations);
    - PodMonitor ``mesh-ztunnel`` (ambient): the ztunnel pods (``app: ztunnel``, ztunnel chart
      ``templates/daemonset.yaml:31``) in ``istio-system`` on :data:`ZTUNNEL_STATS_PORT`, ``/metrics``;
    - ServiceMonitor ``mesh-istiod``: istiod's Services (``istio: pilot``,
      ``istio-discovery/templates/service.yaml:13-21``) in ``istio-system`` on
      :data:`ISTIOD_MONITORING_PORT`, leaving out the revision-tag Services
      (``istio.io/tag``, ``templates/revision-tags-svc.yaml:15``), which select the same pods.

    Empty unless metrics are enabled in operator mode. The operator keeps only targets whose port
    has that name (prometheus-operator v0.93.0 ``pkg/prometheus/promcfg.go:1569-1574``)."""
    m = spec.telemetry.metrics
    if not m.enabled or m.prometheus.mode != "operator":
        return []
    mesh, namespace, labels = spec.name, m.prometheus.namespace or SYSTEM_NAMESPACE, dict(m.prometheus.labels)
    interval = f"{m.scrape_interval_seconds}s"
    out = [k8s_object(MONITORING_API, "PodMonitor", "mesh-envoy-stats", namespace, mesh, labels=labels, spec={
        "selector": {"matchExpressions": [{"key": "istio-prometheus-ignore", "operator": "DoesNotExist"}]},
        "namespaceSelector": {"any": True},
        "podMetricsEndpoints": [{"port": ENVOY_STATS_PORT, "path": "/stats/prometheus", "interval": interval}]})]
    if spec.backend.istio.data_plane == "ambient":
        out.append(k8s_object(MONITORING_API, "PodMonitor", "mesh-ztunnel", namespace, mesh, labels=labels, spec={
            "selector": {"matchLabels": {"app": "ztunnel"}},
            "namespaceSelector": {"matchNames": [SYSTEM_NAMESPACE]},
            "podMetricsEndpoints": [{"port": ZTUNNEL_STATS_PORT, "path": "/metrics", "interval": interval}]}))
    out.append(k8s_object(MONITORING_API, "ServiceMonitor", "mesh-istiod", namespace, mesh, labels=labels, spec={
        "selector": {"matchLabels": {"istio": "pilot"},
                     "matchExpressions": [{"key": "istio.io/tag", "operator": "DoesNotExist"}]},
        "namespaceSelector": {"matchNames": [SYSTEM_NAMESPACE]},
        "endpoints": [{"port": ISTIOD_MONITORING_PORT, "path": "/metrics", "interval": interval}]}))
    return out


def objects(spec, cluster, model) -> list[dict]:
    """The telemetry concern's Istio objects in ``cluster``: :func:`telemetry_objects` then
    :func:`scrape_objects`. Raises :class:`TranslationError` for ambient overrides that turn access
    logs or tracing on in a namespace without a waypoint (``model``: the traffic model, which says
    where waypoints run: :func:`mesh_components.meshes.istio_policy.needs_waypoint`), and for tracing on
    pods whose ``Sidecar`` egress leaves the collector out (:func:`_sidecar_egress_problems`)."""
    if found := _ambient_problems(spec, model) + _sidecar_egress_problems(spec, cluster):
        raise TranslationError(found)
    return telemetry_objects(spec, cluster) + scrape_objects(spec, cluster)


def _sidecar_egress_problems(spec, cluster) -> list[Problem]:
    """Tracing on for pods whose rendered ``Sidecar`` (``networking.istio.io``, e.g. the
    ``<service>-no-egress`` ones of :mod:`mesh_components.core.egress`) leaves the collector's host out of
    its ``egress`` hosts. istiod builds the tracer from the provider's cluster name
    (``outbound|<port>||<host>``: ``pilot/pkg/model/telemetry_logging.go:545-579``) whatever the
    proxy's Sidecar scope holds, and adds the mesh providers' services to gateways and waypoints
    only (``pilot/pkg/model/push_context.go:884-918,977-1026``): such a sidecar's tracer would name a
    cluster it does not have. Refused, naming the Sidecar (adding the host to it would widen what the
    pods may reach)."""
    t = spec.telemetry
    if spec.backend.istio.data_plane == "ambient" or t.tracing.address is None:
        return []
    from ..egress import egress_objects  # egress imports the Istio control plane: import when needed

    sidecars = [o for o in egress_objects(spec, cluster.name)
                if o["kind"] == "Sidecar" and o["apiVersion"].startswith("networking.istio.io/")]
    if not sidecars:
        return []
    host, _ = _collector(t.tracing.address)
    by_scope = _overrides_by_scope(spec)
    out: list[Problem] = []
    for sc in sidecars:
        ns = sc["metadata"]["namespace"]
        selector = sc["spec"].get("workloadSelector", {}).get("labels", {})
        hosts = [h for e in sc["spec"].get("egress", []) for h in e.get("hosts", [])]
        traced = sorted({name for name, labels in _pod_groups(spec, ns) if selector.items() <= labels.items()
                         and _effective(spec, by_scope, ns, name)[1].enabled})
        if traced and not any(_egress_host_covers(h, ns, host) for h in hosts):
            out.append(("mesh.telemetry.tracing.address",
                        f"tracing is on for {', '.join(f'{ns}/{n}' for n in traced)} in cluster {cluster.name}, "
                        f"whose pods' Sidecar {ns}/{sc['metadata']['name']} lets them reach only "
                        f"{', '.join(hosts)}, not the collector {host}: their tracer would point at a cluster "
                        f"the proxy does not have (istio 1.30.3 pilot/pkg/model/push_context.go:884-918,977-1026 "
                        f"add the collector only to gateways and waypoints); run the collector as a Service "
                        f"<name>.<namespace>.svc.cluster.local, or turn tracing off for those pods ("
                        + "; ".join(f"overrides: {{namespace: {ns}, service: {n}, tracing: {{enabled: false}}}}"
                                    for n in traced) + ")"))
    return out


def _egress_host_covers(entry: str, sidecar_namespace: str, host: str) -> bool:
    """Whether a Sidecar ``egress.hosts`` entry ``<namespace>/<dnsName>`` takes ``host``: namespace
    ``*`` any, ``.`` the Sidecar's own, ``~`` none, else that namespace; dnsName ``*``, a ``*.``
    suffix, or the exact name (istio/api 1.30.3 ``networking/v1alpha3/sidecar.proto:508-535``,
    IstioEgressListener.hosts).
    A host's namespace is known only for a cluster Service ``<name>.<namespace>.svc.cluster.local``
    (a ServiceEntry's is not: then only ``*`` takes it)."""
    namespace, _, name = entry.partition("/")
    labels = host.split(".")
    own = labels[1] if len(labels) == 5 and labels[2:] == ["svc", "cluster", "local"] else None
    if namespace == "~" or (namespace != "*" and (own is None or own != (
            sidecar_namespace if namespace == "." else namespace))):
        return False
    return name == "*" or name == host or (name.startswith("*.") and host.endswith(name[1:]))


def releases(spec, cluster) -> list[dict]:
    """None: Istio's telemetry needs no release of its own (the Prometheus is the cluster's)."""
    return []


def namespace_annotations(spec, namespace: str) -> dict[str, str]:
    """None: Istio reads telemetry from Telemetry objects, not namespace annotations."""
    return {}


def namespace_labels(spec, namespace: str) -> dict[str, str]:
    """None (see :func:`namespace_annotations`)."""
    return {}


def notices(spec, states) -> list[tuple[str, str]]:
    """What the rendered Istio telemetry needs that the stack cannot see or create, as ``(path,
    message)`` notices (``telemetry.notices``, code ``telemetry-prerequisite``); ``states``: cluster ->
    ``render.ClusterState``.

    - Each namespace that gets a selector-less Telemetry here (``istio-system`` for
      :data:`ROOT_TELEMETRY`, an override's namespace for :data:`NAMESPACE_TELEMETRY`) must hold no
      other: istiod reads one per namespace, the oldest (``pilot/pkg/model/telemetry.go:682-689``;
      sorted by creation time, ``:120``), so one created before ours would win.
    - ``prometheus.mode: operator``: the pods still carry ``prometheus.io/*`` scrape annotations
      (sidecars through ``enablePrometheusMerge``, on by default: ``pkg/kube/inject/webhook.go:884-921``;
      gateways, waypoints, ztunnel and istiod from their own templates), so a Prometheus that also
      runs an annotation-based scrape job scrapes every proxy twice. ``enablePrometheusMerge`` is not
      turned off for this: the merged endpoint also serves the application's own metrics (the agent
      reads the app's former annotations from ``ISTIO_PROMETHEUS_ANNOTATIONS``, ``webhook.go:899-906``,
      ``pilot/cmd/pilot-agent/status/server.go:94,262-265``), which
      a Prometheus cannot scrape directly through STRICT mTLS."""
    if spec.telemetry is None:
        return []
    wide: dict[str, set[str]] = {}
    for cluster, st in states.items():
        for o in st.concerns.get("telemetry", []):
            if o["kind"] == "Telemetry" and o["apiVersion"] == TELEMETRY_API and \
                    "selector" not in o["spec"] and "targetRefs" not in o["spec"]:
                wide.setdefault(f"{o['metadata']['namespace']}/{o['metadata']['name']}", set()).add(cluster)
    out: list[tuple[str, str]] = []
    if wide:
        out.append(("mesh.telemetry",
                    f"no other selector-less Telemetry may exist in the namespaces of "
                    f"{', '.join(sorted(wide))} (cluster(s) {', '.join(sorted(set().union(*wide.values())))}): "
                    f"istiod applies one mesh-wide (istio-system) and one namespace-wide Telemetry each, the "
                    f"oldest (istio 1.30.3 pilot/pkg/model/telemetry.go:120,682-689), so one created before these "
                    f"would win over the spec; delete it or give it a selector first"))
    m = spec.telemetry.metrics
    if m.enabled and m.prometheus.mode == "operator":
        out.append(("mesh.telemetry.metrics.prometheus.mode",
                    "the mesh's pods also carry prometheus.io/scrape|port|path annotations (sidecars through "
                    "meshConfig.enablePrometheusMerge, on by default: istio 1.30.3 pkg/kube/inject/webhook.go:884-921; "
                    "gateways, waypoints, ztunnel and istiod from their charts): if the Prometheus that selects "
                    "the PodMonitors also runs an annotation-based scrape job (kubernetes-pods), it scrapes every "
                    "proxy twice and sums over the doubled series; drop that job for the mesh's pods, or use "
                    "prometheus.mode: annotations instead (the merge is kept on: it also serves the applications' "
                    "own metrics)"))
    return out
