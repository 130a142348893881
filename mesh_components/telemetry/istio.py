"""``mesh.telemetry`` for Istio 1.30.3: the Telemetry API, istiod's ``meshConfig`` and the scrape
objects of a Prometheus Operator. Pure core; exact or refused.

What is rendered (every upstream reference is istio/istio at tag 1.30.3 unless named otherwise;
``api`` is istio/api 2e43f07b30b6, the commit 1.30.3's go.mod pins):

- **Providers** (:func:`release_values`): every istiod release of the cluster (one per revision,
  :func:`mesh_components.istio.revisions`) gets, in Helm ``meshConfig.extensionProviders``, an
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

- sidecars: the namespace Telemetry applies to every sidecar of the namespace (requests its pods
  send and receive); the service Telemetry selects the service's pods (``selector.matchLabels`` =
  ``Service.pod_labels()``; a selector applies to non-gateway proxies only,
  ``pilot/pkg/model/policyattachment.go:130-137``).
- ambient: HTTP requests are seen by waypoints only (ztunnel reads no Telemetry object: it logs
  every connection on its own ``access`` target at ``info``, istio/ztunnel 1.30.3
  ``src/proxy/metrics.rs:503-528``, and sends no spans). A waypoint reads the namespace-wide
  Telemetry of its namespace and of the Service's (``telemetry.go:436-470``) and Service-attached
  Telemetry (``targetRefs`` kind ``Service``, only for waypoints: api
  ``telemetry/v1alpha1/telemetry.proto:296-316``; ``policyattachment.go:154-163``; the listener
  passes the Service: ``pilot/pkg/networking/core/listener_waypoint.go:911-931``,
  ``listener_builder.go:391-393``); waypoints ignore ``selector`` (``policyattachment.go:139-148``).
  A service override targets the service's Service and its per-version Services
  (:func:`mesh_components.istio_policy.service_refs`). An override that turns access logs or
  tracing on where no waypoint runs (a namespace without an L7 rule or split,
  :func:`mesh_components.istio_policy.needs_waypoint`, or a headless service) is refused. The
  mesh default applies to every Envoy of the mesh (waypoints, gateways, sidecars); in ambient a
  namespace without a waypoint has no HTTP access log or span.

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
  scraped by the ``<mesh>-istiod`` ServiceMonitor (operator mode).
- scrape target labels (operator mode): the operator adds ``namespace``, ``pod``, ``container``,
  ``endpoint`` (the port name) and ``job`` = ``<namespace>/<PodMonitor name>``
  (prometheus-operator v0.93.0 ``pkg/prometheus/promcfg.go:1569-1653``).
"""
from __future__ import annotations

from ..errors import Problem, TranslationError
from ..istio import SYSTEM_NAMESPACE, istiod_release_name, revisions
from ..istio_policy import needs_waypoint, service_refs
from ..meta import k8s_object
from ..spec import AccessLogs, Tracing

TELEMETRY_API = "telemetry.istio.io/v1"
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
    - a tracing collector host that is not a fully qualified name (:data:`_NOT_FQDN`);
    - sidecars: two service overrides whose selectors pick the same pods (Istio would apply both
      in creation order, ``telemetry.go:479-491``);
    - ambient: an override turning access logs or tracing on for a headless service (a
      ``waypoint-for: service`` waypoint never sees it), or for a service with more Services than
      ``targetRefs`` takes (16).

    Refusals that need the traffic model (ambient namespaces without a waypoint) are raised by
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
        if len(labels) < 3 or labels[-1] == "svc":
            out.append(("mesh.telemetry.tracing.address", _NOT_FQDN.format(host)))
    ambient = spec.backend.istio.data_plane == "ambient"
    seen: dict[str, list[tuple[int, dict]]] = {}
    for i, o in enumerate(t.overrides):
        if o.service is None:
            continue
        svc = spec.services_by_key.get((o.namespace, o.service))
        if svc is None:  # an unknown service is spec.telemetry_reference_problems'
            continue
        where = f"mesh.telemetry.overrides[{i}].service"
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
        for j, other in seen.get(o.namespace, []):
            if _overlap(selector, other):
                out.append((where, f"the pods of service {o.namespace}/{o.service} ({_shown(selector)}) and those "
                                   f"of overrides[{j}].service ({_shown(other)}) overlap: Istio would apply both "
                                   f"Telemetry objects to them, in creation order (istio 1.30.3 "
                                   f"pilot/pkg/model/telemetry.go:479-491); give the services labels that tell "
                                   f"their pods apart, or keep one override"))
        seen.setdefault(o.namespace, []).append((i, selector))
    return out


def _turns_on(o, a: AccessLogs, tr: Tracing) -> bool:
    """Whether override ``o`` states a section (accessLogs, tracing) that is on in its scope
    (``a``, ``tr``: the scope resolved)."""
    return (o.access_logs is not None and a.enabled) or (o.tracing is not None and tr.enabled)


def _overlap(a: dict, b: dict) -> bool:
    """Whether one service's pod labels hold the other's: then its pods match both selectors
    (``policyattachment.go:109-112``: a selector picks pods whose labels include it)."""
    return a.items() <= b.items() or b.items() <= a.items()


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
    (:func:`mesh_components.istio.istiod_release_name`), deep-merged by the render into the values
    :func:`mesh_components.istio.control_plane` gives them: ``extensionProviders``
    (:func:`extension_providers`) and, for ``prometheus.mode: annotations``,
    ``enablePrometheusMerge: true``. Keys ``istio.mesh_config`` sets (``outboundTrafficPolicy``,
    ``trustDomain``, ``localityLbSetting``, ``serviceSettings``) are not touched. Empty when there is
    nothing to set (the releases stay as they were)."""
    def mesh_config() -> dict:  # a fresh dict per release: no two releases share a value
        out: dict = {}
        if providers := extension_providers(spec):
            out["extensionProviders"] = providers
        m = spec.telemetry.metrics
        if m.enabled and m.prometheus.mode == "annotations":
            out["enablePrometheusMerge"] = True
        return out

    if not mesh_config():
        return {}
    return {istiod_release_name(spec, rev): {"meshConfig": mesh_config()} for rev, _ in revisions(spec)}


# ---------------------------------------------------------------------------------------------
# objects


def _access_logging(a: AccessLogs) -> list[dict]:
    entry: dict = {"providers": [{"name": ACCESS_LOG_PROVIDERS[a.format]}], "disabled": not a.enabled}
    if a.enabled and a.filter == "errors":
        entry["filter"] = {"expression": ERRORS_FILTER}
    return [entry]


def _tracing(t: Tracing) -> list[dict]:
    entry: dict = {"providers": [{"name": TRACING_PROVIDER}], "disableSpanReporting": not t.enabled}
    if t.enabled:
        entry["randomSamplingPercentage"] = t.sampling_percent
    return [entry]


def _sections(used: tuple[bool, bool], access: AccessLogs, tracing: Tracing, *, metrics: bool) -> dict:
    """A Telemetry spec's sections for one resolved scope: every signal some scope turns on
    (``used``, :func:`_used`), so each object states it whatever its parents say."""
    body: dict = {}
    if metrics:
        body["metrics"] = [{"providers": [{"name": PROMETHEUS_PROVIDER}]}]
    if used[0]:
        body["accessLogging"] = _access_logging(access)
    if used[1]:
        body["tracing"] = _tracing(tracing)
    return body


def telemetry_objects(spec, cluster) -> list[dict]:
    """The Telemetry objects of ``cluster`` (a ``spec.Cluster``): ``mesh-default`` in the root
    namespace (when it has a section), then per override, in spec order, where its namespace (and
    service) exists: ``mesh-telemetry`` (namespace) or ``mesh-telemetry-<service>``, each with every
    section some scope uses, resolved for that scope (:func:`effective`). Service overrides select
    the service's pods (sidecars) or target its Services (ambient waypoints)."""
    mesh = spec.name
    ambient = spec.backend.istio.data_plane == "ambient"
    out: list[dict] = []
    scopes = _scopes(spec)
    used = _used(scopes)
    root = _sections(used, *scopes[0], metrics=spec.telemetry.metrics.enabled)
    if root:
        out.append(k8s_object(TELEMETRY_API, "Telemetry", ROOT_TELEMETRY, ROOT_NAMESPACE, mesh, spec=root))
    for o, scope in zip(spec.telemetry.overrides, scopes[1:]):
        body = _sections(used, *scope, metrics=False)
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

    - PodMonitor ``<mesh>-envoy-stats``: every pod of every namespace with a container port
      :data:`ENVOY_STATS_PORT` (sidecars, gateways, waypoints), ``/stats/prometheus``; pods labelled
      ``istio-prometheus-ignore`` are left out, as in the sample. The port is Envoy's own, so this
      does not depend on ``enablePrometheusMerge`` (the sample follows the merge annotations);
    - PodMonitor ``<mesh>-ztunnel`` (ambient): the ztunnel pods (``app: ztunnel``, ztunnel chart
      ``templates/daemonset.yaml:31``) in ``istio-system`` on :data:`ZTUNNEL_STATS_PORT`, ``/metrics``;
    - ServiceMonitor ``<mesh>-istiod``: istiod's Services (``istio: pilot``,
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
    out = [k8s_object(MONITORING_API, "PodMonitor", f"{mesh}-envoy-stats", namespace, mesh, labels=labels, spec={
        "selector": {"matchExpressions": [{"key": "istio-prometheus-ignore", "operator": "DoesNotExist"}]},
        "namespaceSelector": {"any": True},
        "podMetricsEndpoints": [{"port": ENVOY_STATS_PORT, "path": "/stats/prometheus", "interval": interval}]})]
    if spec.backend.istio.data_plane == "ambient":
        out.append(k8s_object(MONITORING_API, "PodMonitor", f"{mesh}-ztunnel", namespace, mesh, labels=labels, spec={
            "selector": {"matchLabels": {"app": "ztunnel"}},
            "namespaceSelector": {"matchNames": [SYSTEM_NAMESPACE]},
            "podMetricsEndpoints": [{"port": ZTUNNEL_STATS_PORT, "path": "/metrics", "interval": interval}]}))
    out.append(k8s_object(MONITORING_API, "ServiceMonitor", f"{mesh}-istiod", namespace, mesh, labels=labels, spec={
        "selector": {"matchLabels": {"istio": "pilot"},
                     "matchExpressions": [{"key": "istio.io/tag", "operator": "DoesNotExist"}]},
        "namespaceSelector": {"matchNames": [SYSTEM_NAMESPACE]},
        "endpoints": [{"port": ISTIOD_MONITORING_PORT, "path": "/metrics", "interval": interval}]}))
    return out


def objects(spec, cluster, model) -> list[dict]:
    """The telemetry concern's Istio objects in ``cluster``: :func:`telemetry_objects` then
    :func:`scrape_objects`. Raises :class:`TranslationError` for ambient overrides that turn access
    logs or tracing on in a namespace without a waypoint (``model``: the traffic model, which says
    where waypoints run: :func:`mesh_components.istio_policy.needs_waypoint`)."""
    if found := _ambient_problems(spec, model):
        raise TranslationError(found)
    return telemetry_objects(spec, cluster) + scrape_objects(spec, cluster)


def releases(spec, cluster) -> list[dict]:
    """None: Istio's telemetry needs no release of its own (the Prometheus is the cluster's)."""
    return []


def namespace_annotations(spec, namespace: str) -> dict[str, str]:
    """None: Istio reads telemetry from Telemetry objects, not namespace annotations."""
    return {}


def namespace_labels(spec, namespace: str) -> dict[str, str]:
    """None (see :func:`namespace_annotations`)."""
    return {}
