"""mesh.telemetry on the Envoy Gateway ingress (v1.9.0): the EnvoyProxy's ``spec.telemetry``
(access logs, Prometheus endpoint, tracing with exact sampling), the ingress proxies' PodMonitor
and linkerd-viz's scrape job for them; nothing without telemetry; the upstream checks (the
EnvoyProxy CRD's schema and CEL rules, the PodMonitor CRD). Sources: envoyproxy/gateway@v1.9.0,
cited beside each test."""
from __future__ import annotations


import pytest

from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.telemetry import envoy_gateway as teg

from cp_helpers import assert_upstream_clean, render, stack_with_telemetry
from program_harness import ROOT
from test_gateway import linkerd_mesh, with_ingress

TOOLS = ROOT.parent / "shared" / "tools"
OTEL = "otel-collector.observability.svc.cluster.local:4317"
ZIPKIN = "zipkin.observability.svc.cluster.local:9411"
NO_ALERTS = {"plaintextTraffic": False, "certificateExpiryDays": None}
SELECTOR = {"app.kubernetes.io/component": "proxy", "app.kubernetes.io/managed-by": "envoy-gateway",
            "app.kubernetes.io/name": "envoy", "gateway.envoyproxy.io/owning-gateway-name": "ingress",
            "gateway.envoyproxy.io/owning-gateway-namespace": "mesh-ingress"}


def staging(telemetry: dict | None) -> dict:
    return stack_with_telemetry("staging", telemetry)


def refused(mesh: dict) -> dict[str, str]:
    with pytest.raises((SpecError, TranslationError)) as err:
        render(mesh)
    return dict(err.value.problems)


def envoy_proxy(st) -> dict:
    return next(o for o in st.concerns["gateway"] if o["kind"] == "EnvoyProxy")


def telemetry_of(mesh: dict) -> list[dict]:
    return [envoy_proxy(st)["spec"]["telemetry"] for st in render(mesh).values()]


def test_no_telemetry_section_leaves_the_envoyproxy_as_it_was():
    for st in render(staging(None)).values():
        assert "telemetry" not in envoy_proxy(st)["spec"]
        assert st.concerns["telemetry"] == []


def test_access_logs_off_disables_envoy_gateways_default_log():
    # internal/gatewayapi/listener.go@v1.9.0:823-839: no accessLog = the default JSON log to stdout
    for t in telemetry_of(staging({"metrics": {"prometheus": {"mode": "annotations"}}})):
        assert t["accessLog"] == {"disable": True}
        assert t["metrics"] == {"prometheus": {"disable": False}}
        assert "tracing" not in t


def test_access_logs_json_text_and_errors_only():
    # listener.go@v1.9.0:856-865 (no format: the default JSON fields), 892-916 (File sink),
    # 871-880 (CEL matches); site/content/en/v1.9/tasks/observability/proxy-accesslog.md:124-126
    [json] = telemetry_of(staging({"accessLogs": {"enabled": True, "format": "json"}}))[:1]
    assert json["accessLog"] == {"settings": [{"sinks": [{"type": "File", "file": {"path": "/dev/stdout"}}]}]}
    [text] = telemetry_of(staging({"accessLogs": {"enabled": True, "filter": "errors"}}))[:1]
    setting = text["accessLog"]["settings"][0]
    assert setting["format"]["type"] == "Text" and setting["format"]["text"].startswith('[%START_TIME%] "%REQ(:METHOD)%')
    assert setting["format"]["text"].endswith('"%UPSTREAM_HOST%"\n')
    assert setting["matches"] == ["response.code >= 400"]


def test_metrics_off_disables_the_prometheus_endpoint():
    # internal/infrastructure/kubernetes/proxy/resource.go@v1.9.0:64-90, resource_provider.go:660-666
    mesh = staging({"metrics": {"enabled": False, "goldenSignals": False}})
    for t in telemetry_of(mesh):
        assert t["metrics"] == {"prometheus": {"disable": True}}


def test_tracing_provider_address_and_sampling():
    # listener.go@v1.9.0:1029-1122; internal/xds/translator/tracing.go:87-100,117-128
    [t] = telemetry_of(staging({"tracing": {"enabled": True, "address": OTEL, "samplingPercent": 7}}))[:1]
    assert t["tracing"] == {"provider": {"type": "OpenTelemetry", "host": "otel-collector.observability.svc.cluster.local",
                                         "port": 4317}, "samplingRate": 7}
    [t] = telemetry_of(staging({"tracing": {"enabled": True, "provider": "zipkin", "address": ZIPKIN,
                                            "samplingPercent": 0.25}}))[:1]
    assert t["tracing"] == {"provider": {"type": "Zipkin", "host": "zipkin.observability.svc.cluster.local",
                                         "port": 9411}, "samplingFraction": {"numerator": 25, "denominator": 10000}}


def test_sampling_finer_than_envoys_hundredth_of_a_percent_is_refused():
    # envoyproxy/envoy docs/root/configuration/http/http_conn_man/runtime.rst: tracing.random_sampling 0-10000
    assert teg.sampling_steps(12.34) == 1234 and teg.sampling_steps(0.1) == 10 and teg.sampling_steps(100) == 10000
    assert teg.sampling_steps(0.005) is None
    # the spec refuses it for every mesh (spec._percent; Istio samples in 0.01% steps too,
    # istio/api telemetry/v1alpha1/telemetry.proto:366-367), whether tracing is on or not
    for enabled in (True, False):
        found = refused(staging({"tracing": {"enabled": enabled, "address": OTEL, "samplingPercent": 0.125}}))
        assert "finer than proxies sample (steps of 0.01 percent): use 0.12" in found[
            "mesh.telemetry.tracing.samplingPercent"]


def test_operator_mode_podmonitor_for_the_ingress_proxies():
    # resource.go@v1.9.0:47-53,84-90; internal/gatewayapi/helpers.go:270-291, translator.go:639;
    # internal/xds/bootstrap/bootstrap.go:45
    tel = {"metrics": {"scrapeIntervalSeconds": 45, "prometheus": {"mode": "operator", "labels": {"release": "kps"}}}}
    for st in render(staging(tel)).values():
        pm = next(o for o in st.concerns["telemetry"] if o["kind"] == "PodMonitor"
                  and o["metadata"]["name"] == "ingress-envoy")
        assert pm["metadata"]["namespace"] == "istio-system"  # beside the mesh's own monitors
        assert pm["metadata"]["labels"]["release"] == "kps"
        assert pm["spec"] == {"namespaceSelector": {"matchNames": ["envoy-gateway-system"]},
                              "selector": {"matchLabels": SELECTOR},
                              "podMetricsEndpoints": [{"port": "metrics", "path": "/stats/prometheus",
                                                       "interval": "45s", "scrapeTimeout": "10s"}]}


def test_no_podmonitor_where_the_ingress_does_not_run_or_without_an_operator():
    mesh = staging({"metrics": {"prometheus": {"mode": "operator", "namespace": "monitoring"}}})
    mesh["ingress"]["clusters"] = ["staging-use1"]
    states = render(mesh)
    names = {c: [o["metadata"]["name"] for o in st.concerns["telemetry"] if o["kind"] == "PodMonitor"]
             for c, st in states.items()}
    assert "ingress-envoy" in names["staging-use1"] and "ingress-envoy" not in names["staging-usw2"]
    pm = next(o for o in states["staging-use1"].concerns["telemetry"] if o["metadata"]["name"] == "ingress-envoy")
    assert pm["metadata"]["namespace"] == "monitoring"
    for st in render(staging({"metrics": {"prometheus": {"mode": "annotations"}}})).values():
        assert not [o for o in st.concerns["telemetry"] if o["metadata"]["name"] == "ingress-envoy"]


def test_linkerd_bundled_prometheus_also_scrapes_the_ingress_proxies():
    # viz/charts/linkerd-viz/values.yaml@edge-26.8.3:511-513; templates/prometheus.yaml:156-158
    mesh = linkerd_mesh()
    mesh["backend"] = {"type": "linkerd", "linkerd": {"scrapers": [{"namespace": "linkerd-viz",
                                                                    "serviceAccount": "prometheus"}]}}
    mesh["telemetry"] = {"metrics": {"scrapeIntervalSeconds": 20, "prometheus": {"mode": "bundled"},
                                     "alerts": NO_ALERTS}}  # viz's Prometheus has no Alertmanager
    for st in render(mesh).values():
        viz = next(r for r in st.releases if r.name == "linkerd-viz")
        [job] = viz.values["prometheus"]["scrapeConfigs"]
        assert job["job_name"] == "envoy-gateway-proxies" and job["metrics_path"] == "/stats/prometheus"
        assert (job["scrape_interval"], job["scrape_timeout"]) == ("20s", "10s")
        assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["envoy-gateway-system"]}}]
        keep = job["relabel_configs"][0]
        assert keep["action"] == "keep" and keep["source_labels"][-1] == "__meta_kubernetes_pod_container_port_name"
        assert "__meta_kubernetes_pod_label_gateway_envoyproxy_io_owning_gateway_name" in keep["source_labels"]
        assert keep["regex"] == "proxy;envoy-gateway;envoy;ingress;mesh-ingress;metrics"


def test_osm_ingress_traces_with_zipkin_at_every_request():
    mesh = with_ingress("osm")
    mesh["telemetry"] = {"accessLogs": {"enabled": True, "format": "json"},
                         "tracing": {"enabled": True, "provider": "zipkin", "address": ZIPKIN, "samplingPercent": 100}}
    [t] = telemetry_of(mesh)
    assert t["tracing"]["provider"]["type"] == "Zipkin" and t["tracing"]["samplingRate"] == 100


def test_telemetry_off_removes_exactly_the_envoyproxy_telemetry():
    on = render(staging({"metrics": {"prometheus": {"mode": "operator"}}, "accessLogs": {"enabled": True}}))
    off = render(staging(None))
    for cluster, st in on.items():
        proxy, bare = envoy_proxy(st), envoy_proxy(off[cluster])
        assert {**proxy, "spec": {k: v for k, v in proxy["spec"].items() if k != "telemetry"}} == bare
        others = [o for o in st.concerns["gateway"] if o["kind"] != "EnvoyProxy"]
        assert others == [o for o in off[cluster].concerns["gateway"] if o["kind"] != "EnvoyProxy"]


VARIANTS = {
    "staging-operator": lambda: (staging({
        "metrics": {"prometheus": {"mode": "operator", "namespace": "monitoring", "labels": {"release": "kps"}}},
        "accessLogs": {"enabled": True, "filter": "errors"},
        "tracing": {"enabled": True, "address": OTEL, "samplingPercent": 0.25}}), "istio"),
    "staging-json-zipkin": lambda: (staging({
        "metrics": {"prometheus": {"mode": "annotations"}}, "accessLogs": {"enabled": True, "format": "json"},
        "tracing": {"enabled": True, "provider": "zipkin", "address": ZIPKIN, "samplingPercent": 10}}), "istio"),
    "linkerd-bundled-ingress": lambda: (dict(linkerd_mesh(), backend={"type": "linkerd", "linkerd": {
        "scrapers": [{"namespace": "linkerd-viz", "serviceAccount": "prometheus"}]}},
        telemetry={"metrics": {"prometheus": {"mode": "bundled"}, "alerts": NO_ALERTS},
                   "accessLogs": {"enabled": False}}), "linkerd"),
}


@pytest.mark.skipif(not TOOLS.is_dir(), reason="../shared/tools is not beside the project")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_envoy_gateway_telemetry_passes_the_upstream_checks(variant, tmp_path):
    """The EnvoyProxy against gateway.envoyproxy.io_envoyproxies.yaml (v1.9.0: schema and CEL, e.g.
    a Text format needs ``text``, only one of samplingRate/samplingFraction), the PodMonitor against
    prometheus-operator v0.93.0, linkerd-viz's values against the chart's."""
    mesh, profile = VARIANTS[variant]()
    assert_upstream_clean(render(mesh), tmp_path / "out", profile)


def pod_annotations(st) -> dict:
    return envoy_proxy(st)["spec"]["provider"]["kubernetes"]["envoyDeployment"].get("pod", {}).get("annotations", {})


def test_istio_sidecar_does_not_merge_the_ingress_envoys_metrics_in_annotation_mode():
    """With Istio's metrics merging (its default) the injector points prometheus.io/* at the sidecar
    agent, which concatenates its Envoy's stats with the application's (istio 1.30.3
    pilot/cmd/pilot-agent/status/server.go:530-533): here the application is Envoy Gateway's Envoy
    (prometheus.io annotations, internal/infrastructure/kubernetes/proxy/resource.go@v1.9.0:64-90), so
    the two envoy_* sets would collide. prometheus.istio.io/merge-metrics "false" (read first by
    pkg/kube/inject/webhook.go@1.30.3:323-336) keeps Envoy Gateway's annotations."""
    for st in render(staging({"metrics": {"prometheus": {"mode": "annotations"}}})).values():
        annotations = pod_annotations(st)
        assert annotations["prometheus.istio.io/merge-metrics"] == "false"
        assert annotations["traffic.sidecar.istio.io/includeInboundPorts"] == ""  # the mesh's own stay
    bare = {c: pod_annotations(st) for c, st in render(staging(None)).items()}
    for tel in ({"metrics": {"prometheus": {"mode": "operator"}}},  # the PodMonitor reads port metrics itself
                {"metrics": {"enabled": False, "goldenSignals": False}}):
        for cluster, st in render(staging(tel)).items():
            assert pod_annotations(st) == bare[cluster]
    mesh = with_ingress("osm")
    mesh["telemetry"] = {"metrics": {"prometheus": {"mode": "annotations"}}, "accessLogs": {"enabled": True,
                                                                                          "format": "json"}}
    for st in render(mesh).values():
        assert "prometheus.istio.io/merge-metrics" not in pod_annotations(st)


def test_linkerd_ingress_inherits_the_only_exact_sampling_zero():
    """On Linkerd only samplingPercent 0 is exact (its proxies start no trace, linkerd2-proxy v2.366.0
    linkerd/trace-context/src/service.rs:15-23,189-221): the Envoy Gateway ingress takes the mesh
    default, so it starts none either (samplingRate 0, listener.go@v1.9.0:1106-1122)."""
    mesh = dict(linkerd_mesh(), backend={"type": "linkerd", "linkerd": {
        "traceCollector": {"namespace": "observability", "serviceAccount": "otel-collector"}}})
    mesh["telemetry"] = {"metrics": {"enabled": False, "goldenSignals": False},
                         "tracing": {"enabled": True, "address": OTEL, "samplingPercent": 0}}
    for t in telemetry_of(mesh):
        assert t["tracing"]["samplingRate"] == 0 and t["tracing"]["provider"]["type"] == "OpenTelemetry"
    mesh["telemetry"]["tracing"]["samplingPercent"] = 5
    assert "set samplingPercent: 0" in refused(mesh)["mesh.telemetry.tracing.samplingPercent"]
