"""mesh.telemetry on Linkerd (edge-26.8.3) and OSM (v1.2.4): linkerd-viz or PodMonitors with
Linkerd's scrape configuration, the proxies' access-log annotation and OpenTelemetry tracing; OSM's
chart values, namespace metrics enablement, PodMonitors with its bundled scrape jobs and the
MeshConfig tracing patch; refusals of what either cannot do; exact removal; the upstream checks.
Upstream sources are cited beside each test (path@tag:line)."""
from __future__ import annotations

import copy
import re

import pytest

from mesh_components.meshes import linkerd as linkerd_cp
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.meta import ownership_labels
from mesh_components.core.render import write_tree
from mesh_components.spec import load_mesh
from mesh_components.core.telemetry import golden_signals

from cp_helpers import assert_upstream_clean, render, stack_mesh, stack_with_telemetry
from program_harness import ROOT
from test_osm_protocols import with_retries

TOOLS = ROOT.parent / "shared" / "tools"
VIZ_SCRAPER = {"namespace": "linkerd-viz", "serviceAccount": "prometheus"}
EXTERNAL_SCRAPER = {"namespace": "monitoring", "serviceAccount": "prometheus"}
COLLECTOR = "collector.observability.svc.cluster.local:4317"
ZIPKIN = "zipkin.observability.svc.cluster.local:9411"
OSM_LOGS = {"enabled": True, "format": "json"}  # what OSM v1.2.4 always does


NO_ALERTS = {"plaintextTraffic": False, "certificateExpiryDays": None}


def linkerd(telemetry: dict | None, scrapers=(VIZ_SCRAPER,), **linkerd_options) -> dict:
    """The shipped Linkerd stack with ``telemetry`` (None: none at all); in bundled mode without
    ``alerts`` given, alerts off (viz's Prometheus has no Alertmanager: refused otherwise)."""
    mesh = stack_mesh("linkerd")
    mesh.pop("telemetry", None)  # the shipped stack has telemetry on: None means none at all
    mesh["backend"] = {"type": "linkerd", "linkerd": {"scrapers": list(scrapers), **linkerd_options}}
    if telemetry is not None:
        telemetry = copy.deepcopy(telemetry)
        metrics = telemetry.get("metrics", {})
        if metrics.get("prometheus", {}).get("mode") == "bundled" and metrics.get("enabled", True):
            metrics.setdefault("alerts", NO_ALERTS)
        mesh["telemetry"] = telemetry
    return mesh


def osm(telemetry: dict | None) -> dict:
    return stack_with_telemetry("osm", telemetry)


def refused(mesh: dict) -> dict[str, str]:
    with pytest.raises((SpecError, TranslationError)) as err:
        render(mesh)
    found: dict[str, str] = {}
    for path, message in err.value.problems:
        found[path] = f"{found[path]} | {message}" if path in found else message
    return found


def kinds(objects) -> list[tuple[str, str | None, str]]:
    return sorted((o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects)


def own(objects, kind: str, name: str) -> dict:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def release(st, name: str):
    return next(r for r in st.releases if r.name == name)


def ns_annotations(st, namespace: str) -> dict:
    patch = next(o for o in st.concerns["namespaces"] if o["metadata"]["name"] == namespace)
    return patch["metadata"].get("annotations", {})


# --- Linkerd: bundled (linkerd-viz) ------------------------------------------------------------

def test_linkerd_bundled_installs_viz_from_the_control_planes_repository_into_its_namespace():
    # viz/charts/linkerd-viz/values.yaml@edge-26.8.3:35,67,445-447,472-475; templates/namespace.yaml:6-17
    mesh = linkerd({"metrics": {"scrapeIntervalSeconds": 15, "prometheus": {"mode": "bundled"}}})
    states = render(mesh)
    mounts = golden_signals.linkerd_viz_values(load_mesh(mesh, base_dir=ROOT).spec)["prometheus"]["ruleConfigMapMounts"]
    for st in states.values():
        viz = release(st, "linkerd-viz")
        assert (viz.namespace, viz.chart, viz.repository, viz.version, viz.concern) == (
            "linkerd-viz", "linkerd-viz", linkerd_cp.REPOSITORY, "2026.8.3", "telemetry")
        values = copy.deepcopy(viz.values)
        assert values["prometheus"].pop("ruleConfigMapMounts") == mounts  # the recording rules (golden_signals)
        assert set(values["prometheus"].pop("podAnnotations")) == {"checksum/config"}  # test_linkerd_viz_prometheus_rolls...
        assert values == {"linkerdNamespace": "linkerd", "identityTrustDomain": "cluster.local",
                              "createNamespaceMetadataJob": False,
                              "prometheus": {"enabled": True, "globalConfig": {"scrape_interval": "15s",
                                                                               "scrape_timeout": "10s"}}}
        ns = own(st.concerns["telemetry"], "Namespace", "linkerd-viz")
        assert ns["metadata"]["labels"] == {**ownership_labels("bookstore-linkerd"), "linkerd.io/extension": "viz",
                                            "pod-security.kubernetes.io/enforce": "privileged"}
        assert "annotations" not in ns["metadata"]  # no external Prometheus
        assert not [o for o in st.concerns["telemetry"] if o["kind"] == "PodMonitor"]


def test_linkerd_scrape_timeout_never_outlasts_a_short_interval():
    states = render(linkerd({"metrics": {"scrapeIntervalSeconds": 5, "prometheus": {"mode": "bundled"}}}))
    values = release(states["linkerd-east"], "linkerd-viz").values
    assert values["prometheus"]["globalConfig"] == {"scrape_interval": "5s", "scrape_timeout": "5s"}


def test_linkerd_bundled_needs_vizs_prometheus_among_the_scrapers_where_the_default_is_deny():
    # bookstore and bookwarehouse hold access rules' destinations, so they default to deny
    # (mesh_components/meshes/linkerd.py default_inbound_policy); viz/cmd/allow-scrapes.go@edge-26.8.3:131
    found = refused(linkerd({"metrics": {"prometheus": {"mode": "bundled"}}}, scrapers=()))
    message = found["mesh.telemetry.metrics.prometheus"]
    assert "namespace bookstore" in message and "namespace bookwarehouse" in message
    assert "namespace bookbuyer" not in message  # cluster default all-unauthenticated there
    assert "add {namespace: linkerd-viz, serviceAccount: prometheus} to mesh.backend.linkerd.scrapers" in message
    # another scraper is not viz's Prometheus: the scrape objects would shut it out
    found = refused(linkerd({"metrics": {"prometheus": {"mode": "bundled"}}}, scrapers=(EXTERNAL_SCRAPER,)))
    assert "namespace bookstore" in found["mesh.telemetry.metrics.prometheus"]


def test_linkerd_deny_namespace_without_a_server_admits_the_scrapers():
    """A namespace whose default inbound policy is deny refuses Prometheus scrapes unless the
    scrape objects admit them, Server or not (linkerd2 edge-26.8.3 viz/cmd/allow-scrapes.go:131):
    bookthief holds no access rule's destination, so its Server proxy-admin and scrape policy come
    from the deny alone, and viz's Prometheus is the identity they admit."""
    mesh = linkerd({"metrics": {"prometheus": {"mode": "bundled"}}})
    next(n for n in mesh["namespaces"] if n["name"] == "bookthief")["defaultInboundPolicy"] = "deny"
    for name, st in render(mesh).items():
        here = {(o["kind"], o["metadata"]["name"]): o for o in st.concerns["policy"]
                if o["metadata"].get("namespace") == "bookthief"}
        assert ("Server", linkerd_cp.ADMIN_SERVER) in here, name
        assert here[("MeshTLSAuthentication", linkerd_cp.SCRAPE_AUTH)]["spec"]["identities"] == [
            "prometheus.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"]
    mesh["backend"]["linkerd"]["scrapers"] = []
    message = refused(mesh)["mesh.telemetry.metrics.prometheus"]
    assert "could not scrape" in message and "add {namespace: linkerd-viz, serviceAccount: prometheus}" in message


def test_linkerd_bundled_scrapes_are_admitted_by_the_rendered_scrape_objects():
    st = render(linkerd({"metrics": {"prometheus": {"mode": "bundled"}}}))["linkerd-east"]
    auth = next(o for o in st.concerns["policy"] if o["kind"] == "MeshTLSAuthentication"
                and o["metadata"]["name"] == linkerd_cp.SCRAPE_AUTH and o["metadata"]["namespace"] == "bookstore")
    assert auth["spec"]["identities"] == [
        "prometheus.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"]


def test_linkerd_bundled_refuses_an_unused_url_and_another_namespace():
    found = refused(linkerd({"metrics": {"prometheus": {"mode": "bundled", "url": "http://p.monitoring.svc:9090",
                                                        "namespace": "monitoring"}}}))
    assert "drop url" in found["mesh.telemetry.metrics.prometheus.url"]
    assert "set it to linkerd-viz" in found["mesh.telemetry.metrics.prometheus.namespace"]
    render(linkerd({"metrics": {"prometheus": {"mode": "bundled", "namespace": "linkerd-viz"}}}))


# --- Linkerd: external Prometheus ----------------------------------------------------------------

def test_linkerd_operator_renders_the_charts_podmonitors():
    # charts/linkerd-control-plane/templates/podmonitor.yaml@edge-26.8.3:1-145 (with our interval)
    tel = {"metrics": {"scrapeIntervalSeconds": 20,
                       "prometheus": {"mode": "operator", "namespace": "monitoring", "labels": {"release": "kps"}}}}
    st = render(linkerd(tel, scrapers=(EXTERNAL_SCRAPER,)))["linkerd-east"]
    monitors = [o for o in st.concerns["telemetry"] if o["kind"] == "PodMonitor"]
    assert sorted(m["metadata"]["name"] for m in monitors) == [
        "linkerd-controller", "linkerd-multicluster-controller", "linkerd-proxy"]
    for m in monitors:
        assert m["metadata"]["namespace"] == "monitoring"
        assert m["metadata"]["labels"]["release"] == "kps"
        assert m["metadata"]["labels"]["linkerd.io/control-plane-ns"] == "linkerd"
        [endpoint] = m["spec"]["podMetricsEndpoints"]
        assert (endpoint["interval"], endpoint["scrapeTimeout"], endpoint["honorTimestamps"]) == ("20s", "10s", False)
    proxy = own(monitors, "PodMonitor", "linkerd-proxy")
    assert proxy["spec"]["namespaceSelector"] == {"any": True}
    first = proxy["spec"]["podMetricsEndpoints"][0]["relabelings"][0]
    assert first == {"sourceLabels": ["__meta_kubernetes_pod_container_name", "__meta_kubernetes_pod_container_port_name",
                                      "__meta_kubernetes_pod_label_linkerd_io_control_plane_ns"],
                     "action": "keep", "regex": "^linkerd-proxy;linkerd-admin;linkerd$"}  # podmonitor.yaml:112-117
    targets = [r.get("targetLabel") for r in proxy["spec"]["podMetricsEndpoints"][0]["relabelings"]]
    assert targets[1:4] == ["namespace", "pod", "k8s_job"]  # podmonitor.yaml:118-126
    assert own(monitors, "PodMonitor", "linkerd-controller")["spec"]["namespaceSelector"] == {"matchNames": ["linkerd"]}
    assert not [r for r in st.releases if r.name == "linkerd-viz"]  # no url: nothing for viz to read


def test_linkerd_single_cluster_has_no_service_mirror_monitor():
    mesh = linkerd({"metrics": {"prometheus": {"mode": "operator"}}}, scrapers=(EXTERNAL_SCRAPER,))
    mesh["clusters"] = mesh["clusters"][:1]
    mesh["clusters"][0].pop("eastWestGateway")
    st = render(mesh)["linkerd-east"]
    names = sorted(o["metadata"]["name"] for o in st.concerns["telemetry"] if o["kind"] == "PodMonitor")
    assert names == ["linkerd-controller", "linkerd-proxy"]
    assert {o["metadata"]["namespace"] for o in st.concerns["telemetry"] if o["kind"] == "PodMonitor"} == {"linkerd"}


def test_linkerd_operator_with_url_installs_viz_without_its_prometheus():
    # viz values.yaml@edge-26.8.3:75-76 (prometheusUrl), 445-447; templates/namespace.yaml:14-17
    url = "http://prometheus-operated.monitoring.svc:9090"
    st = render(linkerd({"metrics": {"prometheus": {"mode": "operator", "url": url}}},
                        scrapers=(EXTERNAL_SCRAPER,)))["linkerd-west"]
    values = release(st, "linkerd-viz").values
    assert values["prometheus"] == {"enabled": False} and values["prometheusUrl"] == url
    ns = own(st.concerns["telemetry"], "Namespace", "linkerd-viz")
    assert ns["metadata"]["annotations"] == {"viz.linkerd.io/external-prometheus": url}
    controller = own(st.concerns["telemetry"], "PodMonitor", "linkerd-controller")
    assert controller["spec"]["namespaceSelector"] == {"matchNames": ["linkerd", "linkerd-viz"]}


def single_cluster(mesh: dict) -> dict:
    mesh["clusters"] = mesh["clusters"][:1]
    mesh["clusters"][0].pop("eastWestGateway", None)
    return mesh


def test_linkerd_external_prometheus_must_be_a_meshed_scraper():
    found = refused(single_cluster(linkerd({"metrics": {"prometheus": {"mode": "operator"}}}, scrapers=())))
    assert "add the Prometheus's (meshed) namespace and serviceAccount" in found["mesh.telemetry.metrics.prometheus"]
    mesh = single_cluster(linkerd({"metrics": {"prometheus": {"mode": "operator"}}}, scrapers=()))
    mesh["accessRules"], mesh["smiFiles"] = [], []  # nothing policed ...
    next(n for n in mesh["namespaces"] if n["name"] == "bookthief")["defaultInboundPolicy"] = "all-authenticated"
    message = refused(mesh)["mesh.telemetry.metrics.prometheus"]  # ... but one namespace meshed-only
    assert "namespace bookthief admits only meshed clients" in message


def test_linkerd_refuses_annotation_discovery():
    # no "prometheus.io/" in linkerd2@edge-26.8.3 sources or the injector's patch (pkg/inject/inject.go)
    found = refused(linkerd({"metrics": {"prometheus": {"mode": "annotations"}}}))
    assert "use mode operator" in found["mesh.telemetry.metrics.prometheus.mode"]


def test_linkerd_metrics_off_renders_no_monitor_and_no_viz():
    states = render(linkerd({"metrics": {"enabled": False, "goldenSignals": False}}, scrapers=()))
    for st in states.values():
        assert st.concerns["telemetry"] == [] and not [r for r in st.releases if r.concern == "telemetry"]


# --- Linkerd: access logs -----------------------------------------------------------------------

def test_linkerd_access_logs_are_the_namespace_annotation_the_injector_copies():
    # pkg/k8s/labels.go@edge-26.8.3:301-303; pkg/inject/inject.go:76,174-189; proxy v2.366.0
    # linkerd/tracing/src/access_log.rs:157-165 (apache|json)
    tel = {"metrics": {"enabled": False, "goldenSignals": False}, "accessLogs": {"enabled": True, "format": "json"},
           "overrides": [{"namespace": "bookthief", "accessLogs": {"enabled": False}},
                         {"namespace": "bookbuyer", "accessLogs": {"format": "text"}}]}
    for st in render(linkerd(tel, scrapers=())).values():
        assert ns_annotations(st, "bookstore")["config.linkerd.io/access-log"] == "json"
        assert ns_annotations(st, "bookbuyer")["config.linkerd.io/access-log"] == "apache"
        assert "config.linkerd.io/access-log" not in ns_annotations(st, "bookthief")
        assert ns_annotations(st, "bookstore")["linkerd.io/inject"] == "enabled"  # the rest stays


def test_linkerd_access_logs_off_by_default():
    for st in render(linkerd({"metrics": {"enabled": False, "goldenSignals": False}}, scrapers=())).values():
        assert all("config.linkerd.io/access-log" not in p["metadata"].get("annotations", {})
                   for p in st.concerns["namespaces"])


def test_linkerd_refuses_an_error_filter_and_per_service_logs():
    base = {"metrics": {"enabled": False, "goldenSignals": False}}
    found = refused(linkerd({**base, "accessLogs": {"enabled": True, "filter": "errors"}}, scrapers=()))
    assert "use filter all" in found["mesh.telemetry.accessLogs.filter"]
    found = refused(linkerd({**base, "overrides": [
        {"namespace": "bookstore", "service": "bookstore", "accessLogs": {"enabled": True}}]}, scrapers=()))
    assert "drop service" in found["mesh.telemetry.overrides[0].service"]
    found = refused(linkerd({**base, "overrides": [
        {"namespace": "bookstore", "accessLogs": {"filter": "errors"}}]}, scrapers=()))
    assert "mesh.telemetry.overrides[0].accessLogs.filter" in found


# --- Linkerd: tracing ---------------------------------------------------------------------------

def tracing(**settings) -> dict:
    return {"metrics": {"enabled": False, "goldenSignals": False},
            "tracing": {"enabled": True, "address": COLLECTOR, "samplingPercent": 0, **settings}}


def test_linkerd_tracing_sets_the_proxy_collector_values():
    # charts/linkerd-control-plane/values.yaml@edge-26.8.3:284-308; charts/partials/templates/_proxy.tpl:148-175
    mesh = linkerd(tracing(), scrapers=(), traceCollector={"namespace": "observability", "serviceAccount": "collector"})
    for st in render(mesh).values():
        values = release(st, "linkerd-control-plane").values
        assert values["proxy"]["tracing"] == {"enabled": True, "collector": {
            "endpoint": COLLECTOR, "meshIdentity": {"serviceAccountName": "collector", "namespace": "observability"}}}
        assert values["identityTrustDomain"] == "cluster.local"  # merged into, not replacing, the release values


def test_linkerd_refuses_tracing_it_cannot_do():
    # proxy v2.366.0 linkerd/app/src/trace_collector.rs:13-54 (OTLP only);
    # linkerd/trace-context/src/service.rs:15-23,189-221 (spans only for requests already sampled)
    found = refused(linkerd(tracing(provider="zipkin", samplingPercent=1), scrapers=()))
    assert "use provider opentelemetry" in found["mesh.telemetry.tracing.provider"]
    assert "set samplingPercent: 0" in found["mesh.telemetry.tracing.samplingPercent"]
    assert "set traceCollector" in found["mesh.backend.linkerd.traceCollector"]  # _proxy.tpl:162-167
    tel = tracing()
    tel["overrides"] = [{"namespace": "bookstore", "tracing": {"enabled": False}}]
    found = refused(linkerd(tel, scrapers=(), traceCollector={"namespace": "o", "serviceAccount": "c"}))
    assert "one setting of the control plane" in found["mesh.telemetry.overrides[0].tracing.enabled"]


# --- Linkerd: exact removal, determinism, upstream checks --------------------------------------

def test_linkerd_telemetry_off_removes_exactly_what_it_added(tmp_path):
    tel = {"metrics": {"prometheus": {"mode": "bundled"}}, "accessLogs": {"enabled": True},
           "tracing": {"enabled": True, "address": COLLECTOR, "samplingPercent": 0}}
    opts = {"traceCollector": {"namespace": "o", "serviceAccount": "c"}}
    on, off = render(linkerd(tel, **opts)), render(linkerd(None, **opts))
    for cluster, st in on.items():
        bare = off[cluster]
        for concern in st.concerns:
            if concern in ("telemetry", "namespaces"):
                continue
            assert st.concerns[concern] == bare.concerns[concern], concern
        assert bare.concerns["telemetry"] == []
        for patch, bare_patch in zip(st.concerns["namespaces"], bare.concerns["namespaces"]):
            extra = {k: v for k, v in patch["metadata"]["annotations"].items()
                     if bare_patch["metadata"]["annotations"].get(k) != v}
            assert extra == {"config.linkerd.io/access-log": "apache"}
        assert [r.name for r in st.releases] == [r.name for r in bare.releases] + ["linkerd-viz"]
        cp, bare_cp = release(st, "linkerd-control-plane").values, release(bare, "linkerd-control-plane").values
        assert {k: v for k, v in cp.items() if k != "proxy"} == bare_cp and "proxy" not in bare_cp
    first, second = tmp_path / "a", tmp_path / "b"
    write_tree(render(linkerd(tel, **opts)), first)
    write_tree(render(linkerd(tel, **opts)), second)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


VARIANTS = {
    "linkerd-bundled": lambda: (linkerd({
        "metrics": {"prometheus": {"mode": "bundled"}}, "accessLogs": {"enabled": True, "format": "json"},
        "tracing": {"enabled": True, "address": COLLECTOR, "samplingPercent": 0}},
        traceCollector={"namespace": "observability", "serviceAccount": "collector"}), "linkerd"),
    "linkerd-operator": lambda: (linkerd({"metrics": {"prometheus": {
        "mode": "operator", "url": "http://prometheus-operated.monitoring.svc:9090", "labels": {"release": "kps"}}}},
        scrapers=(EXTERNAL_SCRAPER,)), "linkerd"),
    "osm-operator": lambda: (osm({"metrics": {"prometheus": {"mode": "operator"}}, "accessLogs": OSM_LOGS,
                                  "tracing": {"enabled": True, "provider": "zipkin", "address": ZIPKIN,
                                              "samplingPercent": 100}}), "osm"),
    "osm-bundled": lambda: (osm({"metrics": {"scrapeIntervalSeconds": 10, "goldenSignals": False,
                                             "prometheus": {"mode": "bundled"}}, "accessLogs": OSM_LOGS}), "osm"),
}


@pytest.mark.skipif(not TOOLS.is_dir(), reason="../shared/tools is not beside the project")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_telemetry_variants_pass_the_upstream_checks(variant, tmp_path):
    """validate-manifests (PodMonitor schema from prometheus-operator v0.93.0 CRDs, MeshConfig from
    OSM v1.2.4's) and check-helm-values (linkerd-viz 2026.8.3, linkerd-control-plane, osm 1.2.4)."""
    mesh, profile = VARIANTS[variant]()
    assert_upstream_clean(render(mesh), tmp_path / "out", profile)


# --- OSM ----------------------------------------------------------------------------------------

def test_osm_metrics_annotate_every_mesh_namespace():
    # pkg/constants/constants.go@v1.2.4:184-185; pkg/injector/metrics.go:10-35; pkg/injector/patch.go:73-85
    st = render(osm({"metrics": {"prometheus": {"mode": "operator"}}, "accessLogs": OSM_LOGS}))["osm"]
    for ns in ("bookbuyer", "bookthief", "bookstore", "bookwarehouse"):
        assert ns_annotations(st, ns)["openservicemesh.io/metrics"] == "enabled"
        assert ns_annotations(st, ns)["openservicemesh.io/sidecar-injection"] == "enabled"
    off = render(osm({"metrics": {"enabled": False, "goldenSignals": False}, "accessLogs": OSM_LOGS}))["osm"]
    assert all("openservicemesh.io/metrics" not in p["metadata"]["annotations"] for p in off.concerns["namespaces"])


def test_osm_operator_podmonitors_carry_the_bundled_scrape_jobs():
    # charts/osm/templates/prometheus-configmap.yaml@v1.2.4:53-211; pkg/constants/constants.go:22-23,61-62,88-89,118-119
    tel = {"metrics": {"scrapeIntervalSeconds": 60, "prometheus": {"mode": "operator", "labels": {"release": "kps"}}},
           "accessLogs": OSM_LOGS}
    st = render(osm(tel))["osm"]
    sidecars = own(st.concerns["telemetry"], "PodMonitor", "osm-sidecars")
    assert sidecars["metadata"]["namespace"] == "osm-system" and sidecars["metadata"]["labels"]["release"] == "kps"
    assert sidecars["spec"]["namespaceSelector"] == {"matchNames": ["bookbuyer", "bookthief", "bookstore",
                                                                    "bookwarehouse"]}
    assert sidecars["spec"]["selector"] == {"matchExpressions": [{"key": "osm-proxy-uuid", "operator": "Exists"}]}
    pods, wasm = sidecars["spec"]["podMetricsEndpoints"]
    for ep in (pods, wasm):
        assert (ep["port"], ep["path"], ep["interval"], ep["scrapeTimeout"]) == (
            "proxy-metrics", "/stats/prometheus", "60s", "10s")
        # only pods annotated for scraping serve the stats listener (pkg/envoy/lds/response.go:74-84)
        assert ep["relabelings"][0] == {"sourceLabels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                                        "action": "keep", "regex": "true"}
    keep = pods["metricRelabelings"][0]["regex"]
    assert keep.startswith("(envoy_server_live|envoy_cluster_health_check_.*|")  # prometheus-configmap.yaml:58
    # ... and what the golden-signal rules read, which the bundled job drops
    assert all(re.fullmatch(keep, m) for m in golden_signals.METRICS_READ["osm"])
    assert re.fullmatch(keep, "envoy_cluster_upstream_rq_time_sum") and not re.fullmatch(keep, "envoy_http_rq_total")
    assert {r.get("targetLabel") for r in pods["relabelings"]} >= {
        "source_namespace", "source_pod_name", "source_workload_kind", "source_workload_name"}
    regexes = [r["regex"] for r in wasm["metricRelabelings"]]
    # prometheus-configmap.yaml:133, 137, 141, 173, 178, 210 (verbatim regexes)
    assert regexes[0] == ".*osm_request_(total|duration_ms_(bucket|count|sum))"
    assert regexes[1] == (r"response_code_(\d{3})_source_namespace_.*_source_kind_.*_source_name_.*_source_pod_.*"
                          r"_destination_namespace_.*_destination_kind_.*_destination_name_.*_destination_pod_.*"
                          r"_osm_request_total")
    assert regexes[2] == (r"response_code_\d{3}_source_namespace_(.*)_source_kind_.*_source_name_.*_source_pod_.*"
                          r"_destination_namespace_.*_destination_kind_.*_destination_name_.*_destination_pod_.*"
                          r"_osm_request_total")
    assert regexes[10] == ".*(osm_request_total)"
    assert regexes[11] == ("source_namespace_(.*)_source_kind_.*_source_name_.*_source_pod_.*_destination_namespace_.*"
                           "_destination_kind_.*_destination_name_.*_destination_pod_.*"
                           "_osm_request_duration_ms_(bucket|sum|count)")
    assert regexes[-1] == ".*(osm_request_duration_ms_(bucket|sum|count))" and len(regexes) == 20
    controller = own(st.concerns["telemetry"], "PodMonitor", "osm-controller")
    # test_osm_control_plane_monitor_selects_every_pod_the_bundled_job_scrapes
    assert controller["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"  # osm-deployment.yaml:52-53
    assert "deployPrometheus" not in release(st, "osm").values["osm"]  # the chart's default (false) stays


def test_osm_bundled_prometheus_scrapes_every_ten_seconds_only():
    # charts/osm/values.yaml@v1.2.4:266-267; templates/prometheus-configmap.yaml:12-15
    st = render(osm({"metrics": {"scrapeIntervalSeconds": 10, "goldenSignals": False,
                                 "prometheus": {"mode": "bundled"}}, "accessLogs": OSM_LOGS}))["osm"]
    assert release(st, "osm").values["osm"]["deployPrometheus"] is True
    assert not [o for o in st.concerns["telemetry"] if o["kind"] == "PodMonitor"]
    found = refused(osm({"metrics": {"goldenSignals": False, "prometheus": {"mode": "bundled"}},
                         "accessLogs": OSM_LOGS}))
    assert "set scrapeIntervalSeconds: 10" in found["mesh.telemetry.metrics.scrapeIntervalSeconds"]
    found = refused(osm({"metrics": {"prometheus": {"mode": "operator", "url": "http://p.m.svc:9090"}},
                         "accessLogs": OSM_LOGS}))
    assert "drop url" in found["mesh.telemetry.metrics.prometheus.url"]


def test_osm_annotation_mode_renders_no_monitor():
    st = render(osm({"metrics": {"prometheus": {"mode": "annotations"}}, "accessLogs": OSM_LOGS}))["osm"]
    assert not [o for o in st.concerns["telemetry"] if o["kind"] == "PodMonitor"]
    assert ns_annotations(st, "bookstore")["openservicemesh.io/metrics"] == "enabled"


def test_osm_access_logs_are_fixed_so_only_json_of_everything_is_exact():
    # pkg/envoy/xdsutil.go@v1.2.4:78-127 (JSON to stdout, no filter); pkg/envoy/lds/http_connection.go:87
    render(osm({"accessLogs": OSM_LOGS}))  # what OSM does: accepted, nothing to render for it
    found = refused(osm({"metrics": {"prometheus": {"mode": "operator"}}}))  # the default: enabled false
    assert "set enabled: true" in found["mesh.telemetry.accessLogs.enabled"]
    found = refused(osm({"accessLogs": {"enabled": True, "format": "text", "filter": "errors"}}))
    assert "use format json" in found["mesh.telemetry.accessLogs.format"]
    assert "use filter all" in found["mesh.telemetry.accessLogs.filter"]
    found = refused(osm({"accessLogs": OSM_LOGS, "overrides": [{"namespace": "bookstore",
                                                                "accessLogs": {"enabled": False}}]}))
    assert "mesh.telemetry.overrides[0].accessLogs.enabled" in found


def test_osm_tracing_goes_to_the_chart_and_the_running_meshconfig():
    # charts/osm/values.yaml@v1.2.4:335-345; templates/preset-mesh-config.yaml:28-35;
    # cmd/osm-bootstrap/osm-bootstrap.go:282-329 (the preset only at first install)
    st = render(osm({"accessLogs": OSM_LOGS, "tracing": {"enabled": True, "provider": "zipkin", "address": ZIPKIN,
                                                         "samplingPercent": 100}}))["osm"]
    tracing = {"enable": True, "address": "zipkin.observability.svc.cluster.local", "port": 9411,
               "endpoint": "/api/v2/spans"}
    # only what differs from the chart's osm.tracing (values.yaml@v1.2.4:335-343: port 9411, endpoint /api/v2/spans)
    assert release(st, "osm").values["osm"]["tracing"] == {"enable": True,
                                                           "address": "zipkin.observability.svc.cluster.local"}
    patch = own(st.concerns["telemetry"], "MeshConfig", "osm-mesh-config")
    assert patch["apiVersion"] == "config.openservicemesh.io/v1alpha2" and patch["metadata"]["namespace"] == "osm-system"
    assert patch["metadata"]["annotations"] == {"mesh-components.io/patch": "true"}
    assert patch["spec"] == {"observability": {"tracing": tracing}}
    other_port = ZIPKIN.replace(":9411", ":9412")
    st = render(osm({"accessLogs": OSM_LOGS, "tracing": {"enabled": True, "provider": "zipkin", "address": other_port,
                                                         "samplingPercent": 100}}))["osm"]
    assert release(st, "osm").values["osm"]["tracing"]["port"] == 9412
    off = render(osm({"accessLogs": OSM_LOGS}))["osm"]
    assert "tracing" not in release(off, "osm").values["osm"]
    assert not [o for o in off.concerns["telemetry"] if o["kind"] == "MeshConfig"]


def test_osm_refuses_tracing_it_cannot_do():
    # pkg/envoy/lds/tracing.go@v1.2.4:13-39 (Zipkin, no sampling setting: Envoy's 100% default)
    found = refused(osm({"accessLogs": OSM_LOGS, "tracing": {"enabled": True, "address": ZIPKIN,
                                                             "samplingPercent": 5},
                         "overrides": [{"namespace": "bookstore", "tracing": {"enabled": False}}]}))
    assert "use provider zipkin" in found["mesh.telemetry.tracing.provider"]
    assert "set samplingPercent: 100" in found["mesh.telemetry.tracing.samplingPercent"]
    assert "for the whole mesh" in found["mesh.telemetry.overrides[0].tracing.enabled"]


def test_osm_tracing_beside_retries_makes_one_mesh_config_patch_holding_both():
    """Retries (the enableRetryPolicy flag, osm v1.2.4 pkg/catalog/retry.go:11-15) and tracing
    (spec.observability.tracing, pkg/envoy/lds/tracing.go:13-39) both live in osm-mesh-config: one
    patch carries both (two patches of one object would be refused), and turning tracing off
    leaves exactly the retries' patch."""
    mesh = with_retries(osm({"accessLogs": OSM_LOGS, "tracing": {"enabled": True, "provider": "zipkin",
                                                                 "address": ZIPKIN, "samplingPercent": 100}}))
    def patches(states):
        return [o for st in states.values() for o in st.objects if o["kind"] == "MeshConfig"]
    both = patches(render(mesh))
    assert len(both) == 1
    assert both[0]["spec"]["featureFlags"] == {"enableRetryPolicy": True}
    assert both[0]["spec"]["observability"]["tracing"]["enable"] is True
    mesh["telemetry"]["tracing"]["enabled"] = False
    alone = patches(render(mesh))
    assert len(alone) == 1 and alone[0]["spec"] == {"featureFlags": {"enableRetryPolicy": True}}
    mesh.pop("telemetry")
    assert patches(render(mesh)) == alone


def test_osm_telemetry_off_removes_exactly_what_it_added():
    tel = {"metrics": {"prometheus": {"mode": "operator"}}, "accessLogs": OSM_LOGS,
           "tracing": {"enabled": True, "provider": "zipkin", "address": ZIPKIN, "samplingPercent": 100}}
    st, bare = render(osm(tel))["osm"], render(osm(None))["osm"]
    for concern in st.concerns:
        if concern not in ("telemetry", "namespaces"):
            assert st.concerns[concern] == bare.concerns[concern], concern
    assert bare.concerns["telemetry"] == []
    for patch, bare_patch in zip(st.concerns["namespaces"], bare.concerns["namespaces"]):
        a, b = patch["metadata"]["annotations"], bare_patch["metadata"]["annotations"]
        assert {k: v for k, v in a.items() if k not in b} == {"openservicemesh.io/metrics": "enabled"}
    values, bare_values = copy.deepcopy(release(st, "osm").values), release(bare, "osm").values
    assert "deployPrometheus" not in values["osm"]  # operator mode: the chart's default stays unwritten
    del values["osm"]["tracing"]
    assert values == bare_values


# --- review fixes (issue 17, second review) ------------------------------------------------------

def spec_of(mesh: dict):
    return load_mesh(mesh, base_dir=ROOT).spec


def test_linkerd_operator_service_mirror_monitor_selects_the_pods_component_label():
    """The service mirrors are labelled ``component: controller`` (multicluster/charts/
    linkerd-multicluster/templates/controller/deployment.yaml@edge-26.8.3:31-35) and have no
    ``linkerd.io/control-plane-component`` label, which the chart's own PodMonitor reads
    (charts/linkerd-control-plane/templates/podmonitor.yaml:70-74), so that would keep nothing;
    viz's job reads ``component`` (viz/charts/linkerd-viz/templates/prometheus.yaml:84-88)."""
    st = render(linkerd({"metrics": {"prometheus": {"mode": "operator"}}}, scrapers=(EXTERNAL_SCRAPER,)))["linkerd-east"]
    mirror = own(st.concerns["telemetry"], "PodMonitor", "linkerd-multicluster-controller")
    keep = mirror["spec"]["podMetricsEndpoints"][0]["relabelings"][0]
    assert keep == {"sourceLabels": ["__meta_kubernetes_pod_label_component", "__meta_kubernetes_pod_container_port_name"],
                    "action": "keep", "regex": "(linkerd-service-mirror|controller);.*-admin$"}
    # the label as the chart's Deployment template sets it on the pods (deployment.yaml:31-35)
    labels = {"linkerd.io/extension": "multicluster", "component": "controller"}
    name = "__meta_kubernetes_pod_label_" + "component"
    assert keep["sourceLabels"][0] == name and re.fullmatch(keep["regex"], f"{labels['component']};ctrl-admin")


def test_linkerd_operator_admits_the_external_scrapers_on_multiclusters_servers():
    """linkerd-multicluster's Servers ``linkerd-admin`` (every multicluster pod's proxy admin port)
    and ``controller`` (``ctrl-admin``) admit only linkerd-viz's Prometheus (multicluster/charts/
    linkerd-multicluster/templates/service-mirror-policy.yaml@edge-26.8.3:2-33,75-113; its comment
    at :107-110 asks for another AuthorizationPolicy for another Prometheus): one per Server,
    requiring the scrapers' identities, beside the chart's."""
    scraper = {"namespace": "monitoring", "serviceAccount": "kps-prometheus"}
    mesh = linkerd({"metrics": {"prometheus": {"mode": "operator"}}}, scrapers=(VIZ_SCRAPER, scraper))
    for st in render(mesh).values():
        mc = {(o["kind"], o["metadata"]["name"]): o for o in st.concerns["telemetry"]
              if o["metadata"].get("namespace") == "linkerd-multicluster"}
        assert sorted(mc) == [("AuthorizationPolicy", "controller-scrapers"), ("AuthorizationPolicy", "linkerd-admin-scrapers"),
                              ("MeshTLSAuthentication", "prometheus-scrape")]
        # viz's Prometheus is the chart's to admit: only the external identity here
        assert mc[("MeshTLSAuthentication", "prometheus-scrape")]["spec"]["identities"] == [
            "kps-prometheus.monitoring.serviceaccount.identity.linkerd.cluster.local"]
        for server in ("linkerd-admin", "controller"):
            policy = mc[("AuthorizationPolicy", f"{server}-scrapers")]["spec"]
            assert policy == {"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": server},
                              "requiredAuthenticationRefs": [{"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication",
                                                              "name": "prometheus-scrape"}]}
    # one cluster: no linkerd-multicluster, nothing there
    st = render(single_cluster(linkerd({"metrics": {"prometheus": {"mode": "operator"}}},
                                       scrapers=(scraper,))))["linkerd-east"]
    assert not [o for o in st.concerns["telemetry"] if o["metadata"].get("namespace") == "linkerd-multicluster"]
    # several clusters and no scraper: refused, naming what to add
    found = refused(linkerd({"metrics": {"prometheus": {"mode": "operator"}}}, scrapers=()))
    assert "could not scrape the service mirrors" in found["mesh.backend.linkerd.scrapers"]


def test_linkerd_operator_refuses_scrapers_naming_only_vizs_prometheus():
    """Operator mode installs no viz Prometheus (prometheus.enabled false, viz values.yaml@edge-26.8.3:
    445-447), so scrapers naming only it would admit no Prometheus that runs
    (viz/cmd/allow-scrapes.go:13-108 shuts out every other identity)."""
    for tel in ({"metrics": {"prometheus": {"mode": "operator"}}},
                {"metrics": {"prometheus": {"mode": "operator", "url": "http://prometheus.monitoring.svc:9090"}}}):
        message = refused(linkerd(tel, scrapers=(VIZ_SCRAPER,)))["mesh.backend.linkerd.scrapers"]
        assert "names only linkerd-viz's Prometheus" in message and "add the external Prometheus's" in message
    render(linkerd({"metrics": {"prometheus": {"mode": "operator"}}}, scrapers=(VIZ_SCRAPER, EXTERNAL_SCRAPER)))


def test_linkerd_viz_dashboard_admits_no_one():
    """linkerd-viz's web runs with cluster-wide tap (dashboard.restrictPrivileges false, viz
    values.yaml@edge-26.8.3:375-376; ClusterRoleBinding to tap-admin, templates/web-rbac.yaml:97-112,
    tap-rbac.yaml:25-38) and the chart gives it no Server (its Servers: metrics-api, prometheus-admin,
    tap-api, tap-injector-webhook in templates/*-policy.yaml), so the namespace default would admit
    any pod to /api/tap. A Server on web's http port (web.yaml:70-73,125-126) with accessPolicy deny
    and no authorization admits no one (charts/linkerd-crds/templates/policy/server.yaml:239-241);
    the dashboard stays reachable by port-forward, which the proxy's iptables rules do not redirect
    (https://linkerd.io/2/reference/iptables/)."""
    for tel, scrapers in (({"metrics": {"prometheus": {"mode": "bundled"}}}, (VIZ_SCRAPER,)),
                          ({"metrics": {"prometheus": {"mode": "operator", "url": "http://p.monitoring.svc:9090"}}},
                           (EXTERNAL_SCRAPER,))):
        for st in render(linkerd(tel, scrapers=scrapers)).values():
            web = own(st.concerns["telemetry"], "Server", "web")
            assert web["metadata"]["namespace"] == "linkerd-viz"
            assert web["spec"] == {"podSelector": {"matchLabels": {"linkerd.io/extension": "viz", "component": "web"}},
                                   "port": "http", "proxyProtocol": "HTTP/1", "accessPolicy": "deny"}
            # nothing rendered admits anyone in linkerd-viz: not to web, not to tap (whose Server is the chart's)
            admitting = [o for o in st.objects if o["metadata"].get("namespace") == "linkerd-viz"
                         and o["kind"] in ("AuthorizationPolicy", "ServerAuthorization", "MeshTLSAuthentication",
                                           "NetworkAuthentication", "HTTPRoute")]
            assert admitting == []
            viz = release(st, "linkerd-viz").values
            assert "dashboard" not in viz and "tap" not in viz  # no value widens web or tap
    # no viz, no Server
    st = render(linkerd({"metrics": {"prometheus": {"mode": "operator"}}}, scrapers=(EXTERNAL_SCRAPER,)))["linkerd-east"]
    assert not [o for o in st.concerns["telemetry"] if o["kind"] == "Server"]


def test_linkerd_viz_prometheus_rolls_when_its_configuration_or_rules_change():
    """The chart mounts prometheus.yml and the rule files by subPath (viz/charts/linkerd-viz/templates/
    prometheus.yaml@edge-26.8.3:298-308), never refreshed, with no checksum on the pod (:229-239):
    prometheus.podAnnotations (values.yaml:477-478) carries a sha256 of globalConfig, scrapeConfigs and
    the rule file the ConfigMap holds."""
    from mesh_components.core.telemetry import linkerd as tl

    def checksum_and_rules(mesh, cluster="linkerd-east"):
        st = render(mesh)[cluster]
        values = release(st, "linkerd-viz").values["prometheus"]
        rules = own(st.concerns["telemetry"], "ConfigMap", golden_signals.rule_object_name(spec_of(mesh)))
        return values["podAnnotations"]["checksum/config"], values, rules["data"][golden_signals.RULE_FILE]

    base = linkerd({"metrics": {"prometheus": {"mode": "bundled"}}})
    first, values, text = checksum_and_rules(base)
    assert first == tl.prometheus_checksum(values, text) and re.fullmatch("[0-9a-f]{64}", first)
    assert checksum_and_rules(copy.deepcopy(base))[0] == first  # deterministic
    interval = copy.deepcopy(base)
    interval["telemetry"]["metrics"]["scrapeIntervalSeconds"] = 15
    assert checksum_and_rules(interval)[0] != first
    west, _, west_text = checksum_and_rules(base, "linkerd-west")
    fewer_rules = copy.deepcopy(base)  # every service in linkerd-east only: linkerd-west's rule file empties
    for service in fewer_rules["services"]:
        service["clusters"] = ["linkerd-east"]
    changed, values, fewer_text = checksum_and_rules(fewer_rules, "linkerd-west")
    assert fewer_text != west_text and changed != west
    assert values["globalConfig"] == release(render(base)["linkerd-west"], "linkerd-viz").values["prometheus"]["globalConfig"]


def test_linkerd_bundled_refuses_alerts_it_cannot_deliver_and_labels_it_cannot_use():
    """viz's Prometheus has no Alertmanager (values.yaml@edge-26.8.3:487-494) and its API admits only
    metrics-api (templates/prometheus-policy.yaml:1-39): alerts would go nowhere. Labels mark
    PodMonitors/PrometheusRules, which bundled mode renders none of."""
    default_alerts = linkerd({"metrics": {"prometheus": {"mode": "bundled"}}})
    default_alerts["telemetry"]["metrics"].pop("alerts")
    message = refused(default_alerts)["mesh.telemetry.metrics.alerts"]
    assert "MeshCertificateExpiry" in message and "MeshPlaintextTraffic" in message
    assert "set alerts: {plaintextTraffic: false, certificateExpiryDays: null}, or use mode operator" in message
    one = linkerd({"metrics": {"prometheus": {"mode": "bundled"},
                               "alerts": {"plaintextTraffic": True, "certificateExpiryDays": None}}})
    assert "MeshCertificateExpiry" not in refused(one)["mesh.telemetry.metrics.alerts"]
    found = refused(linkerd({"metrics": {"prometheus": {"mode": "bundled", "labels": {"release": "kps"}}}}))
    assert "drop labels" in found["mesh.telemetry.metrics.prometheus.labels"]
    render(linkerd({"metrics": {"prometheus": {"mode": "bundled"}}}))  # alerts off: accepted


def test_linkerd_operator_url_must_be_reachable_through_the_egress_fence():
    """linkerd-viz's metrics-api queries prometheusUrl; the mesh's global Deny EgressNetwork in
    linkerd-egress (mesh_components.core.egress; linkerd2 edge-26.8.3 policy-controller/k8s/index/src/
    outbound/index/egress_network.rs:61-78) refuses hosts outside the cluster networks, a Service
    name is inside them."""
    def tel(url):
        return {"metrics": {"prometheus": {"mode": "operator", "url": url}}}
    found = refused(linkerd(tel("https://prometheus.example.com:9090"), scrapers=(EXTERNAL_SCRAPER,)))
    message = found["mesh.telemetry.metrics.prometheus.url"]
    assert "prometheus.example.com is not a Service name" in message
    assert "add linkerd-viz to mesh.backend.linkerd.egressOpenNamespaces" in message
    render(linkerd(tel("https://prometheus.example.com:9090"), scrapers=(EXTERNAL_SCRAPER,),
                   egressOpenNamespaces=["linkerd-viz"]))
    for url in ("http://prometheus-operated.monitoring.svc:9090", "http://p.monitoring.svc.cluster.local",
                "http://p.monitoring.svc.cluster.local:9090/prefix"):
        render(linkerd(tel(url), scrapers=(EXTERNAL_SCRAPER,)))


def test_tracing_override_percent_while_tracing_is_off_is_refused():
    """Linkerd (proxy.tracing, one setting of the control plane, charts/linkerd-control-plane/
    values.yaml@edge-26.8.3:284-308) and OSM (MeshConfig observability.tracing, mesh-wide,
    pkg/envoy/lds/tracing.go@v1.2.4:13-39) trace all or none: a percent for a namespace while the
    mesh does not trace would apply nowhere."""
    override = [{"namespace": "bookstore", "tracing": {"samplingPercent": 0}}]
    found = refused(linkerd({"metrics": {"enabled": False, "goldenSignals": False}, "overrides": override},
                            scrapers=()))
    assert "would apply nowhere" in found["mesh.telemetry.overrides[0].tracing.samplingPercent"]
    found = refused(osm({"accessLogs": OSM_LOGS, "overrides": [{"namespace": "bookstore",
                                                                 "tracing": {"samplingPercent": 100}}]}))
    assert "would apply nowhere" in found["mesh.telemetry.overrides[0].tracing.samplingPercent"]


def test_osm_refuses_metrics_settings_nothing_renders():
    """Annotations mode: OSM's pods carry only prometheus.io/scrape, port and path (pkg/injector/
    metrics.go@v1.2.4:10-35), so the interval is the scraping Prometheus's; labels mark only
    PodMonitors/PrometheusRules (operator mode); the bundled Prometheus runs in osm-system (chart
    osm.deployPrometheus, values.yaml:266-267). Only what is given explicitly is refused."""
    render(osm({"metrics": {"prometheus": {"mode": "annotations"}}, "accessLogs": OSM_LOGS}))  # the default 30
    found = refused(osm({"metrics": {"scrapeIntervalSeconds": 30, "prometheus": {"mode": "annotations"}},
                         "accessLogs": OSM_LOGS}))
    assert "remove scrapeIntervalSeconds" in found["mesh.telemetry.metrics.scrapeIntervalSeconds"]
    for mode, extra in (("annotations", {}), ("bundled", {"scrapeIntervalSeconds": 10, "goldenSignals": False})):
        found = refused(osm({"metrics": {**extra, "prometheus": {"mode": mode, "labels": {"release": "x"}}},
                             "accessLogs": OSM_LOGS}))
        assert "drop labels" in found["mesh.telemetry.metrics.prometheus.labels"], mode
    found = refused(osm({"metrics": {"scrapeIntervalSeconds": 10, "goldenSignals": False,
                                     "prometheus": {"mode": "bundled", "namespace": "monitoring"}},
                         "accessLogs": OSM_LOGS}))
    assert "drop namespace" in found["mesh.telemetry.metrics.prometheus.namespace"]
    found = refused(osm({"metrics": {"goldenSignals": False, "prometheus": {"mode": "annotations",
                                                                            "namespace": "monitoring"}},
                         "accessLogs": OSM_LOGS}))
    assert "no rule file is rendered" in found["mesh.telemetry.metrics.prometheus.namespace"]
    # with golden signals the rule file goes there: accepted
    st = render(osm({"metrics": {"prometheus": {"mode": "annotations", "namespace": "monitoring"}},
                     "accessLogs": OSM_LOGS}))["osm"]
    assert own(st.concerns["telemetry"], "ConfigMap", "mesh-golden-signals")["metadata"]["namespace"] == "monitoring"


def test_osm_control_plane_monitor_selects_every_pod_the_bundled_job_scrapes():
    """The bundled kubernetes-pods job scrapes every pod annotated prometheus.io/scrape: osm-controller,
    osm-injector and osm-bootstrap, each with port metrics 9091 (charts/osm/templates@v1.2.4:
    osm-deployment.yaml:22,27-28,52-53; osm-injector-deployment.yaml:21,26-27,49-50;
    osm-bootstrap-deployment.yaml:19,24-25,43-44)."""
    st = render(osm({"metrics": {"prometheus": {"mode": "operator"}}, "accessLogs": OSM_LOGS}))["osm"]
    controller = own(st.concerns["telemetry"], "PodMonitor", "osm-controller")
    assert controller["spec"]["selector"] == {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["osm-bootstrap", "osm-controller", "osm-injector"]}]}
    assert controller["spec"]["namespaceSelector"] == {"matchNames": ["osm-system"]}


def test_osm_release_values_only_what_differs_from_the_chart():
    """osm values.yaml@v1.2.4:267 (deployPrometheus false), 335-343 (tracing enable false, port 9411,
    endpoint /api/v2/spans): telemetry that leaves them so writes nothing, so turning it on does not
    upgrade the release."""
    on = render(osm({"metrics": {"prometheus": {"mode": "operator"}}, "accessLogs": OSM_LOGS}))["osm"]
    assert release(on, "osm").values == release(render(osm(None))["osm"], "osm").values
    bundled = render(osm({"metrics": {"scrapeIntervalSeconds": 10, "goldenSignals": False,
                                      "prometheus": {"mode": "bundled"}}, "accessLogs": OSM_LOGS}))["osm"]
    assert release(bundled, "osm").values["osm"]["deployPrometheus"] is True


def test_restart_notices_name_the_namespaces_whose_pods_keep_the_old_settings():
    """Linkerd: the injector copies the namespace's config annotations onto a pod when it injects it
    (controller/proxy-injector/webhook.go@edge-26.8.3:106-108), proxy.tracing is in the injected
    proxy (charts/partials/templates/_proxy.tpl:148-175). OSM: the injector adds prometheus.io/scrape
    at injection (pkg/injector/patch.go@v1.2.4:73-85), a sidecar serves stats only for such a pod
    (pkg/envoy/lds/response.go:74-84); `osm metrics enable` patches running pods
    (cmd/cli/metrics_enable.go:102-147), the mesh does not."""
    from mesh_components.core import telemetry

    tel = {"metrics": {"enabled": False, "goldenSignals": False}, "accessLogs": {"enabled": True},
           "overrides": [{"namespace": "bookthief", "accessLogs": {"enabled": False}}],
           "tracing": {"enabled": True, "address": COLLECTOR, "samplingPercent": 0}}
    mesh = linkerd(tel, scrapers=(), traceCollector={"namespace": "o", "serviceAccount": "c"})
    found = dict(telemetry.notices(spec_of(mesh), render(mesh)))
    logs = found["mesh.telemetry.accessLogs"]
    assert "restart the workloads of namespace(s) bookbuyer, bookstore, bookwarehouse" in logs  # not bookthief
    assert "bookthief" not in logs
    assert "bookthief" in found["mesh.telemetry.tracing"]
    quiet = linkerd({"metrics": {"enabled": False, "goldenSignals": False}}, scrapers=())
    assert not dict(telemetry.notices(spec_of(quiet), render(quiet)))
    mesh = osm({"metrics": {"prometheus": {"mode": "annotations"}}, "accessLogs": OSM_LOGS})
    found = dict(telemetry.notices(spec_of(mesh), render(mesh)))
    assert "bookbuyer, bookthief, bookstore, bookwarehouse" in found["mesh.telemetry.metrics"]
    off = osm({"metrics": {"enabled": False, "goldenSignals": False}, "accessLogs": OSM_LOGS})
    assert "mesh.telemetry.metrics" not in dict(telemetry.notices(spec_of(off), render(off)))


def test_linkerd_access_logs_in_a_tcp_only_namespace_get_a_notice():
    """The proxy logs inbound HTTP requests only (linkerd2-proxy v2.366.0 linkerd/app/inbound/src/
    http/server.rs:88): an override turning them on where the declared services serve only TCP/TLS
    would log nothing. A notice, not a refusal: the proxy does what the setting says, and the
    namespace may run HTTP pods the spec does not declare."""
    from mesh_components.core import telemetry

    mesh = linkerd({"metrics": {"enabled": False, "goldenSignals": False},
                    "overrides": [{"namespace": "bookwarehouse", "accessLogs": {"enabled": True}}]}, scrapers=())
    tcp_only = [s for s in mesh["services"] if s["namespace"] == "bookwarehouse"]
    for s in tcp_only:
        for p in s["ports"]:
            p["protocol"] = "tcp"
            p.pop("probePaths", None)
    found = dict(telemetry.notices(spec_of(mesh), render(mesh)))
    assert "serve only TCP/TLS ports: nothing would be logged" in found["mesh.telemetry.overrides[0].accessLogs.enabled"]
    mesh = linkerd({"metrics": {"enabled": False, "goldenSignals": False},
                    "overrides": [{"namespace": "bookstore", "accessLogs": {"enabled": True}}]}, scrapers=())
    assert "mesh.telemetry.overrides[0].accessLogs.enabled" not in dict(telemetry.notices(spec_of(mesh), render(mesh)))


def test_linkerd_deny_namespace_gets_the_scrape_objects_without_telemetry():
    """A namespace whose default inbound policy is deny refuses Prometheus scrapes unless the
    allow-scrapes objects admit the scrapers (linkerd2 edge-26.8.3 viz/cmd/allow-scrapes.go:13-108,
    its help at :131), whether or not a Server of ours is there, and whether or not mesh.telemetry is
    set: backend.linkerd.scrapers alone renders them (linkerd.probe_objects)."""
    mesh = linkerd(None, scrapers=(EXTERNAL_SCRAPER,))
    next(n for n in mesh["namespaces"] if n["name"] == "bookthief")["defaultInboundPolicy"] = "deny"
    for name, st in render(mesh).items():
        assert st.concerns["telemetry"] == []
        here = {(o["kind"], o["metadata"]["name"]) for o in st.concerns["policy"]
                if o["metadata"].get("namespace") == "bookthief"}
        assert {("Server", linkerd_cp.ADMIN_SERVER), ("HTTPRoute", linkerd_cp.SCRAPE_METRICS),
                ("MeshTLSAuthentication", linkerd_cp.SCRAPE_AUTH), ("AuthorizationPolicy", linkerd_cp.SCRAPE_AUTH),
                ("HTTPRoute", linkerd_cp.SCRAPE_PROBES)} <= here, name
        # bookthief holds no authorization's destination: the deny alone brings them
        assert not [k for k in here if k[0] == "Server" and k[1] != linkerd_cp.ADMIN_SERVER], name
    # without scrapers nothing is rendered for it
    mesh["backend"]["linkerd"]["scrapers"] = []
    for st in render(mesh).values():
        assert not [o for o in st.concerns["policy"] if o["metadata"].get("namespace") == "bookthief"
                    and o["metadata"]["name"] == linkerd_cp.ADMIN_SERVER]
