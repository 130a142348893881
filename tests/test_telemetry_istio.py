"""``mesh.telemetry`` on Istio 1.30.3 (``mesh_components.core.telemetry.istio``): Telemetry objects,
istiod's ``meshConfig.extensionProviders`` on every revision, the Prometheus Operator scrape objects,
the refusals, and that telemetry off renders exactly what it did before.

Upstream references are istio/istio at tag 1.30.3 unless named otherwise. The semantic tests read
the rendered objects the way istiod does: :func:`applicable` picks the Telemetry objects that apply
to a proxy (``pilot/pkg/model/telemetry.go:408-494``, ``pilot/pkg/model/policyattachment.go:123-201``),
:func:`istio_access_logs` merges their access logging as ``mergeLogs`` does (``telemetry.go:601-668``)
and :func:`istio_tracing` their tracing as ``Telemetries.Tracing`` does (``telemetry.go:293-390``)."""
from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.meta import deep_merge
from mesh_components.core.render import render_mesh, write_tree
from mesh_components.spec import load_mesh
from mesh_components.core.telemetry import istio as tel

from cp_helpers import stack_mesh
from program_harness import ROOT

TOOLS = ROOT.parent / "shared" / "tools"
GOLDEN = ROOT / "tests" / "golden"
MINE = ("Telemetry", "PodMonitor", "ServiceMonitor")
"""The kinds this module renders (golden_signals adds its own to the same concern)."""
ZIPKIN = {"enabled": True, "provider": "zipkin", "address": "zipkin.observability.svc.cluster.local:9411",
          "samplingPercent": 5}
OTEL = {"enabled": True, "provider": "opentelemetry",
        "address": "otel-collector.observability.svc.cluster.local:4317"}
OLD, NEW = {"name": "1-29", "version": "1.29.4"}, {"name": "1-30"}


def with_telemetry(stack: str, telemetry: dict | None, **changes) -> dict:
    mesh = stack_mesh(stack)
    mesh.update(changes)
    mesh.pop("telemetry", None)  # the shipped stacks may carry their own
    if telemetry is not None:
        mesh["telemetry"] = copy.deepcopy(telemetry)
    return mesh


def render(mesh: dict):
    return render_mesh(load_mesh(mesh, base_dir=ROOT))


def mine(st) -> list[dict]:
    return [o for o in st.concerns["telemetry"] if o["kind"] in MINE]


def get(objects, kind, name, namespace):
    hits = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
            and o["metadata"].get("namespace") == namespace]
    assert len(hits) == 1, (kind, name, namespace, [(o["kind"], o["metadata"]["name"]) for o in objects])
    return hits[0]


def istiods(st):
    return [r for r in st.releases if r.chart == "istiod"]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- istiod's reading of the rendered objects -------------------------------------------------


def applicable(objects, namespace: str, pod_labels: dict | None = None, service: str | None = None,
               waypoint: bool = False) -> list[dict]:
    """The Telemetry specs that apply to a proxy, root first: the root namespace's selector-less one
    (telemetry.go:419-434), the proxy namespace's (436-452), then those with a selector (sidecars:
    labels a subset of the pod's, policyattachment.go:109-112,130-137) or a Service targetRef
    (waypoints, for that Service's traffic: policyattachment.go:154-163; a waypoint ignores
    selectors: 139-148)."""
    ts = [o for o in objects if o["kind"] == "Telemetry"]

    def wide(ns):
        return [o["spec"] for o in ts if o["metadata"]["namespace"] == ns
                and "selector" not in o["spec"] and "targetRefs" not in o["spec"]]

    out = wide(tel.ROOT_NAMESPACE) + (wide(namespace) if namespace != tel.ROOT_NAMESPACE else [])
    for o in ts:
        if o["metadata"]["namespace"] != namespace:
            continue
        s = o["spec"]
        if not waypoint and "selector" in s and s["selector"]["matchLabels"].items() <= (pod_labels or {}).items():
            out.append(s)
        if waypoint and any(r["kind"] == "Service" and r["name"] == service for r in s.get("targetRefs", [])):
            out.append(s)
    return out


def _matches(entry: dict, mode: str) -> bool:
    """matchWorkloadMode (telemetry.go:670-680): no match, or CLIENT_AND_SERVER, or the same mode."""
    wanted = entry.get("match", {}).get("mode", "CLIENT_AND_SERVER")
    return wanted in ("CLIENT_AND_SERVER", mode)


def istio_access_logs(specs, mode: str = "SERVER") -> dict[str, str | None]:
    """Enabled access-log providers -> filter expression, as ``mergeLogs`` (telemetry.go:601-668)
    computes them for a listener of ``mode`` (SERVER: inbound and waypoints; CLIENT: outbound and
    gateways, telemetry.go:223-237), skipping entries whose ``match`` is another mode (:618, :652); no
    default providers (the chart sets none for logs, configmap.yaml:12-26); no Telemetry logging
    falls back to meshConfig.accessLogFile, "" by default (mesh.go:72): nothing."""
    levels = [s["accessLogging"] for s in specs if s.get("accessLogging")]
    if not levels:
        return {}
    names: list[str] = []
    filters: dict[str, str | None] = {}
    for level in levels:
        here = [p["name"] for e in level if _matches(e, mode) for p in e.get("providers", [])]
        for e in level:
            if _matches(e, mode):
                for p in e.get("providers", []):
                    filters[p["name"]] = e.get("filter", {}).get("expression")
        if here:
            names = here
    providers: dict[str, object] = {}
    parent: list[str] = []
    for level in levels:
        for e in level:
            named = [p["name"] for p in e.get("providers", [])] or parent
            parent = named
            for p in named:
                if p in names and _matches(e, mode):
                    providers[p] = "off" if e.get("disabled") else filters[p]
    return {p: f for p, f in providers.items() if f != "off"}


def istio_tracing(specs) -> tuple[str, float | None] | None:
    """``(provider, sampling)`` when spans are reported, as ``Tracing`` (telemetry.go:293-390) with
    no default tracing provider: each set field replaces the parent's; no provider means disabled."""
    entries = [e for s in specs for e in s.get("tracing", [])]
    if not entries:
        return None  # legacy tracing: the chart's tracer is "none" (istiod values.yaml:410-412)
    provider, disabled, sampling = None, False, None
    for e in entries:
        if e.get("providers"):
            provider = e["providers"][0]["name"]
        if "disableSpanReporting" in e:
            disabled = e["disableSpanReporting"]
        if "randomSamplingPercentage" in e:
            sampling = e["randomSamplingPercentage"]
    return None if disabled or provider is None else (provider, sampling)


def expected(spec, namespace=None, service=None):
    """What the spec asks for that scope, in the same terms."""
    a, t = tel.effective(spec, namespace, service)
    logs = {tel.ACCESS_LOG_PROVIDERS[a.format]: (tel.ERRORS_FILTER if a.filter == "errors" else None)} \
        if a.enabled else {}
    return logs, ((tel.TRACING_PROVIDER, t.sampling_percent) if t.enabled else None)


# --- resolving the spec -----------------------------------------------------------------------


def test_scopes_resolve_mesh_then_namespace_then_service():
    """A field an override leaves out keeps the value above it: the namespace's override over the
    mesh default, the service's over both (the order istiod stacks root, namespace and workload
    Telemetry in: telemetry.go:408-494)."""
    spec = load_mesh(with_telemetry("prod", {
        "accessLogs": {"enabled": True, "format": "text", "filter": "all"},
        "tracing": {**ZIPKIN, "samplingPercent": 2},
        "overrides": [{"namespace": "bookwarehouse", "service": "mysql", "accessLogs": {"filter": "errors"},
                       "tracing": {"enabled": False}},
                      {"namespace": "bookwarehouse", "accessLogs": {"format": "json"},
                       "tracing": {"samplingPercent": 7}}]}),
        base_dir=ROOT).spec

    def seen(ns=None, svc=None):
        a, t = tel.effective(spec, ns, svc)
        return a.enabled, a.format, a.filter, t.enabled, t.sampling_percent

    assert seen() == (True, "text", "all", True, 2.0)
    assert seen("bookstore", "bookstore") == seen("bookstore") == seen()
    assert seen("bookwarehouse") == (True, "json", "all", True, 7.0)
    assert seen("bookwarehouse", "bookwarehouse") == seen("bookwarehouse")
    assert seen("bookwarehouse", "mysql") == (True, "json", "errors", False, 7.0)


# --- sidecars (prod: three clusters) ----------------------------------------------------------

PROD_TELEMETRY = {
    "accessLogs": {"enabled": True},
    "tracing": ZIPKIN,
    "metrics": {"scrapeIntervalSeconds": 15, "prometheus": {"labels": {"release": "kube-prometheus-stack"}}},
    "overrides": [
        {"namespace": "bookstore", "accessLogs": {"filter": "errors", "format": "json"}},
        {"namespace": "bookstore", "service": "bookstore", "accessLogs": {"enabled": False},
         "tracing": {"samplingPercent": 100}},
        {"namespace": "bookthief", "tracing": {"enabled": False}},
        {"namespace": "bookwarehouse", "service": "mysql", "accessLogs": {"format": "json"}},
    ]}


def prod_with_telemetry(telemetry=PROD_TELEMETRY):
    mesh = with_telemetry("prod", telemetry)
    # bookthief only in prod-aws: its override must render only there (spec.namespace_clusters)
    next(n for n in mesh["namespaces"] if n["name"] == "bookthief")["clusters"] = ["prod-aws"]
    return mesh


def test_sidecar_scopes_read_by_istiod_as_the_spec_says():
    """Every scope of the spec (mesh, namespace, service), read through istiod's merge of root,
    namespace and workload Telemetry (telemetry.go:408-494, 601-668, 293-390), gets exactly the
    access logs and tracing the spec resolves for it, in every cluster: access logs on its inbound
    (SERVER) listeners, the requests it receives, while its outbound (CLIENT) listeners keep the mesh
    default (the overrides' match: {mode: SERVER}, honoured per listener class: telemetry.go:618,652,
    670-680), as a waypoint's are only for requests to its Services (listener_waypoint.go:911-931)."""
    loaded = load_mesh(prod_with_telemetry(), base_dir=ROOT)
    spec, states = loaded.spec, render_mesh(loaded)
    mesh_logs, _ = expected(spec)
    for cluster, st in states.items():
        objs = mine(st)
        for svc in spec.services:
            if svc.namespace == "bookthief" and cluster != "prod-aws":
                continue
            specs = applicable(objs, svc.namespace, pod_labels={**svc.pod_labels(), "version": "v1"})
            got = (istio_access_logs(specs, "SERVER"), istio_tracing(specs))
            assert got == expected(spec, svc.namespace, svc.name), (cluster, svc.name)
            assert istio_access_logs(specs, "CLIENT") == mesh_logs, (cluster, svc.name)
        # the overrides do change what the pods receive, so the CLIENT check above tells them apart
        assert any(expected(spec, s.namespace, s.name)[0] != mesh_logs for s in spec.services)
        # a pod of no override, in a namespace without one: the mesh default (root Telemetry only)
        specs = applicable(objs, "bookbuyer", pod_labels={"app": "bookbuyer"})
        assert (istio_access_logs(specs), istio_tracing(specs)) == expected(spec)
    # the scopes really differ, so the check above tells them apart
    assert len({repr(expected(spec, s.namespace, s.name)) for s in spec.services}) >= 4


def test_sidecar_objects_where_their_namespace_exists():
    """Mesh default in the root namespace of every cluster (istio-system: chart configmap.yaml:10,
    mesh.go:91); a namespace override namespace-wide (no selector) only where the namespace exists;
    a service override selecting the service's pods (policyattachment.go:130-137)."""
    states = render(prod_with_telemetry())
    for cluster, st in states.items():
        objs = mine(st)
        root = get(objs, "Telemetry", "mesh-default", "istio-system")["spec"]
        assert root["metrics"] == [{"providers": [{"name": "prometheus"}]}]
        assert "selector" not in root and "targetRefs" not in root
        ns = get(objs, "Telemetry", "mesh-telemetry", "bookstore")["spec"]
        assert "selector" not in ns and "metrics" not in ns
        assert ns["accessLogging"] == [{"providers": [{"name": "mesh-access-log-json"}], "disabled": False,
                                        "filter": {"expression": "response.code >= 400"},
                                        "match": {"mode": "SERVER"}}]
        svc = get(objs, "Telemetry", "mesh-telemetry-bookstore", "bookstore")["spec"]
        assert svc["selector"] == {"matchLabels": {"app": "bookstore"}}
        # the service inherits the namespace's format and restates its own (disabled) logging
        assert svc["accessLogging"] == [{"providers": [{"name": "mesh-access-log-json"}], "disabled": True,
                                         "match": {"mode": "SERVER"}}]
        # the mesh default holds for both directions: no match
        assert all("match" not in e for e in root["accessLogging"])
        assert svc["tracing"] == [{"providers": [{"name": "mesh-tracing"}], "disableSpanReporting": False,
                                   "randomSamplingPercentage": 100.0}]
        thief = [o for o in objs if o["metadata"]["namespace"] == "bookthief"]
        off = [{"providers": [{"name": "mesh-tracing"}], "disableSpanReporting": True}]
        assert [o["spec"]["tracing"] for o in thief] == ([off] if cluster == "prod-aws" else [])


def test_providers_on_every_istiod_without_touching_its_mesh_config():
    """Each istiod gets the providers the Telemetry objects name, deep-merged over the meshConfig
    istio.mesh_config renders (outboundTrafficPolicy, serviceSettings stay); istiod adds them to its
    built-in providers by name (pkg/config/mesh/mesh.go:236-250). Text: Istio's default line
    (telemetry_logging.go:224-226); JSON: labels {} (api mesh/v1alpha1/config.proto:1032); zipkin
    service and port split from the address (tracing.go:180-192)."""
    without = render(prod_with_telemetry(None))
    with_ = render(prod_with_telemetry())
    for cluster, st in with_.items():
        for r in istiods(st):
            before = next(b for b in istiods(without[cluster]) if b.name == r.name).values
            mc = r.values["meshConfig"]
            assert mc["extensionProviders"] == [
                {"name": "mesh-access-log-text", "envoyFileAccessLog": {"path": "/dev/stdout"}},
                {"name": "mesh-access-log-json", "envoyFileAccessLog": {"path": "/dev/stdout",
                                                                        "logFormat": {"labels": {}}}},
                {"name": "mesh-tracing", "zipkin": {"service": "zipkin.observability.svc.cluster.local",
                                                    "port": 9411}}]
            assert {k: v for k, v in mc.items() if k != "extensionProviders"} == before["meshConfig"]
            assert {k: v for k, v in r.values.items() if k != "meshConfig"} == \
                {k: v for k, v in before.items() if k != "meshConfig"}
            # defaultProviders untouched: the chart keeps metrics: [prometheus] only while it is unset
            # (istio-discovery/templates/_helpers.tpl:1-7)
            assert "defaultProviders" not in mc
        # every provider a Telemetry names is defined (fetchProvider skips unknown ones, telemetry.go:691-699)
        named = {p["name"] for o in mine(st) if o["kind"] == "Telemetry"
                 for section in ("accessLogging", "tracing") for e in o["spec"].get(section, [])
                 for p in e["providers"]}
        assert named <= {p["name"] for p in istiods(st)[0].values["meshConfig"]["extensionProviders"]}


def test_every_revision_gets_the_providers():
    """One istiod release per revision (istio.revisions, istiod_release_name), each reading its own
    istio-<rev> ConfigMap (istio-discovery/templates/configmap.yaml:83-89): each needs the providers."""
    mesh = with_telemetry("staging", {"tracing": OTEL})
    mesh["backend"]["istio"] = {"dataPlane": "sidecar", "revisions": [OLD, NEW], "tag": "stable",
                                "tagRevision": "1-30"}
    st = render(mesh)["staging-use1"]
    assert sorted(r.name for r in istiods(st)) == ["istiod-1-29", "istiod-1-30"]
    for r in istiods(st):
        assert r.values["meshConfig"]["extensionProviders"] == [{"name": "mesh-tracing", "opentelemetry": {
            "service": "otel-collector.observability.svc.cluster.local", "port": 4317}}]
        assert r.values["meshConfig"]["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    a, b = istiods(st)
    assert a.values["meshConfig"] == b.values["meshConfig"]
    assert a.values["meshConfig"] is not b.values["meshConfig"]
    assert a.values["meshConfig"]["extensionProviders"] is not b.values["meshConfig"]["extensionProviders"]


def test_tracing_turned_on_by_an_override_only():
    """Mesh default off, one namespace on: the root states disableSpanReporting: true, the override
    false (a set field replaces the parent's: telemetry.go:341-373), with its sampling (tracing.go:122-136)."""
    telemetry = {"tracing": {**ZIPKIN, "enabled": False},
                 "overrides": [{"namespace": "bookstore", "tracing": {"enabled": True, "samplingPercent": 20}}]}
    loaded = load_mesh(with_telemetry("prod", telemetry), base_dir=ROOT)
    objs = mine(render_mesh(loaded)["prod-gcp"])
    assert istio_tracing(applicable(objs, "bookstore", {"app": "bookstore"})) == ("mesh-tracing", 20.0)
    assert istio_tracing(applicable(objs, "bookbuyer", {"app": "bookbuyer"})) is None
    root = get(objs, "Telemetry", "mesh-default", "istio-system")["spec"]
    assert root["tracing"] == [{"providers": [{"name": "mesh-tracing"}], "disableSpanReporting": True}]
    assert "accessLogging" not in root  # access logs on nowhere: no provider, no section


def test_metrics_only_names_prometheus_and_nothing_else():
    """Telemetry with defaults only: metrics on (operator mode), logs and tracing off. Istio's
    built-in prometheus provider is named (mesh.go:109-114); no extension provider is added, so the
    istiod values stay exactly as they were."""
    without, with_ = render(with_telemetry("prod", None)), render(with_telemetry("prod", {}))
    for cluster, st in with_.items():
        assert [o["spec"] for o in mine(st) if o["kind"] == "Telemetry"] == \
            [{"metrics": [{"providers": [{"name": "prometheus"}]}]}]
        assert [r.values for r in st.releases] == [r.values for r in without[cluster].releases]


# --- scraping ---------------------------------------------------------------------------------


def test_operator_mode_monitors():
    """Like Istio's samples/addons/extras/prometheus-operator.yaml:1-66: Envoy stats of every pod
    with the http-envoy-prom port (sidecars: injection-template.yaml:187-197; gateways: gateway chart
    deployment.yaml:101-104; waypoints: waypoint.yaml:100-102), on /stats/prometheus; istiod's
    Services (istio: pilot, service.yaml:13-21) on http-monitoring (15014) without the revision-tag
    Services (revision-tags-svc.yaml:15); in prometheus.namespace, labelled for the Prometheus's
    selectors plus ownership, every scrapeIntervalSeconds."""
    telemetry = {"metrics": {"scrapeIntervalSeconds": 20, "prometheus": {
        "namespace": "monitoring", "labels": {"release": "kps"}}}}
    st = render(with_telemetry("prod", telemetry))["prod-aws"]
    monitors = [o for o in mine(st) if o["kind"] != "Telemetry"]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in monitors) == [
        ("PodMonitor", "mesh-envoy-stats"), ("ServiceMonitor", "mesh-istiod")]
    for o in monitors:
        assert o["apiVersion"] == "monitoring.coreos.com/v1"
        assert o["metadata"]["namespace"] == "monitoring"
        assert o["metadata"]["labels"]["release"] == "kps"
        assert o["metadata"]["labels"]["mesh-components.io/mesh"] == "bookstore-prod"
        endpoints = o["spec"].get("podMetricsEndpoints") or o["spec"]["endpoints"]
        assert [e["interval"] for e in endpoints] == ["20s"]
    envoy = get(monitors, "PodMonitor", "mesh-envoy-stats", "monitoring")["spec"]
    assert envoy["namespaceSelector"] == {"any": True}
    assert envoy["podMetricsEndpoints"][0]["port"] == "http-envoy-prom"
    assert envoy["podMetricsEndpoints"][0]["path"] == "/stats/prometheus"
    istiod = get(monitors, "ServiceMonitor", "mesh-istiod", "monitoring")["spec"]
    assert istiod["selector"]["matchLabels"] == {"istio": "pilot"}
    assert {"key": "istio.io/tag", "operator": "DoesNotExist"} in istiod["selector"]["matchExpressions"]
    assert istiod["endpoints"][0]["port"] == "http-monitoring"
    # default namespace: istio-system, which the mesh creates (istio.control_plane)
    st = render(with_telemetry("prod", {}))["prod-aws"]
    assert {o["metadata"]["namespace"] for o in mine(st) if o["kind"] != "Telemetry"} == {"istio-system"}
    assert any(o["kind"] == "Namespace" and o["metadata"]["name"] == "istio-system" for o in st.objects)


def test_annotations_mode_pins_prometheus_merge():
    """annotations: no monitors; every istiod gets enablePrometheusMerge: true, on which the
    injector's rewrite of the pod's prometheus.io annotations depends (pkg/kube/inject/webhook.go:884-921)."""
    telemetry = {"metrics": {"prometheus": {"mode": "annotations"}}}
    mesh = with_telemetry("staging", telemetry)
    mesh["backend"]["istio"] = {"dataPlane": "sidecar", "revisions": [OLD, NEW], "tag": "stable", "tagRevision": "1-30"}
    st = render(mesh)["staging-use1"]
    assert [o["kind"] for o in mine(st)] == ["Telemetry"]
    assert [r.values["meshConfig"]["enablePrometheusMerge"] for r in istiods(st)] == [True, True]
    assert all("extensionProviders" not in r.values["meshConfig"] for r in istiods(st))


# --- ambient (dev: waypoints in bookstore and bookwarehouse) -----------------------------------


def test_ambient_service_override_targets_its_services_at_the_waypoint():
    """Ambient: a service override attaches to the service's Services at the waypoint (targetRefs
    kind Service, waypoints only: api telemetry/v1alpha1/telemetry.proto:296-316,
    policyattachment.go:154-163), including the per-version Services a caller may address; a
    namespace override is namespace-wide, which the namespace's waypoint reads (telemetry.go:436-470);
    ztunnel is scraped on ztunnel-stats (ztunnel chart daemonset.yaml:64-73; /metrics: istio/ztunnel
    1.30.3 src/metrics/server.rs:56)."""
    telemetry = {"accessLogs": {"enabled": False}, "tracing": OTEL,
                 "overrides": [{"namespace": "bookstore", "service": "bookstore",
                                "accessLogs": {"enabled": True, "format": "json", "filter": "errors"}},
                               {"namespace": "bookwarehouse", "tracing": {"samplingPercent": 50}}]}
    loaded = load_mesh(with_telemetry("dev", telemetry), base_dir=ROOT)
    objs = mine(render_mesh(loaded)["dev"])
    svc = get(objs, "Telemetry", "mesh-telemetry-bookstore", "bookstore")["spec"]
    assert "selector" not in svc
    assert svc["targetRefs"] == [{"group": "", "kind": "Service", "name": n}
                                 for n in ("bookstore", "bookstore-v1", "bookstore-v2")]
    for service in ("bookstore", "bookstore-v2"):
        specs = applicable(objs, "bookstore", service=service, waypoint=True)
        assert (istio_access_logs(specs), istio_tracing(specs)) == expected(loaded.spec, "bookstore", "bookstore")
    for service in ("bookwarehouse", "mysql"):
        specs = applicable(objs, "bookwarehouse", service=service, waypoint=True)
        assert (istio_access_logs(specs), istio_tracing(specs)) == expected(loaded.spec, "bookwarehouse")
    assert expected(loaded.spec, "bookstore", "bookstore") != expected(loaded.spec)
    ztunnel = get(objs, "PodMonitor", "mesh-ztunnel", "istio-system")["spec"]
    assert ztunnel["selector"] == {"matchLabels": {"app": "ztunnel"}}
    assert ztunnel["podMetricsEndpoints"][0]["port"] == "ztunnel-stats"
    assert ztunnel["podMetricsEndpoints"][0]["path"] == "/metrics"
    # sidecars have no ztunnel to scrape
    assert not [o for o in mine(render(with_telemetry("prod", {}))["prod-aws"]) if "ztunnel" in o["metadata"]["name"]]


@pytest.mark.parametrize("override,path", [
    ({"namespace": "bookbuyer", "accessLogs": {"enabled": True}}, "mesh.telemetry.overrides[0].accessLogs"),
    ({"namespace": "bookthief", "service": "bookthief", "tracing": {"samplingPercent": 10}},
     "mesh.telemetry.overrides[0].tracing"),
])
def test_ambient_override_without_a_waypoint_is_refused(override, path):
    """Only a waypoint sees an ambient namespace's HTTP requests; bookbuyer and bookthief have none
    (no L7 rule or split: istio_policy.needs_waypoint), and ztunnel does its own connection logs and
    no spans (istio/ztunnel 1.30.3 src/proxy/metrics.rs:503-528)."""
    telemetry = {"tracing": OTEL, "overrides": [override]}
    with pytest.raises(TranslationError) as err:
        render(with_telemetry("dev", telemetry))
    found = dict(err.value.problems)
    assert list(found) == [path] and "no waypoint" in found[path], found


def test_ambient_override_turning_tracing_off_without_a_waypoint_renders():
    """Turning tracing off where no proxy traces (ztunnel sends no spans) is exact: rendered, no refusal."""
    telemetry = {"tracing": OTEL, "overrides": [{"namespace": "bookbuyer", "tracing": {"enabled": False}}]}
    objs = mine(render(with_telemetry("dev", telemetry))["dev"])
    assert get(objs, "Telemetry", "mesh-telemetry", "bookbuyer")["spec"]["tracing"][0]["disableSpanReporting"] is True


# --- ambient: ztunnel's connection log ----------------------------------------------------------

SHARED_ZTUNNEL = ROOT.parent / "shared" / "charts" / "ztunnel" / "values.yaml"


def ztunnel(st):
    hits = [r for r in st.releases if r.chart == "ztunnel"]
    assert len(hits) == 1, [r.name for r in st.releases]
    return hits[0]


def test_ztunnel_default_log_level_is_the_charts():
    """The level kept for every target but access is the ztunnel chart's default logLevel (istio
    1.30.3 manifests/charts/ztunnel/values.yaml:119-121), which the chart passes as RUST_LOG
    (templates/daemonset.yaml:130-131); the release the values go to is control_plane's ztunnel."""
    chart = yaml.safe_load(SHARED_ZTUNNEL.read_text())["_internal_defaults_do_not_set"]
    assert chart["logLevel"] == tel.ZTUNNEL_LOG_LEVEL
    assert chart["logAsJson"] is False
    assert ztunnel(render(with_telemetry("dev", {}))["dev"]).name == tel.ZTUNNEL_RELEASE


@pytest.mark.parametrize("access,values", [
    # off: ztunnel's "access" target silenced (its events: istio/ztunnel 1.30.3
    # src/proxy/metrics.rs:471,509,518,595), every other target at the chart's level
    ({"enabled": False}, {"logLevel": "info,access=off"}),
    # on: the default "info" already writes INFO "connection complete" (metrics.rs:503-528)
    ({"enabled": True}, {}),
    # errors: WARN (refused early, metrics.rs:464-487) and ERROR (failed, :516-525), not INFO
    ({"enabled": True, "filter": "errors"}, {"logLevel": "info,access=warn"}),
    # json: LOG_FORMAT=json (src/telemetry.rs:74-78; chart daemonset.yaml:122-125), every line
    ({"enabled": True, "format": "json"}, {"logAsJson": True}),
    ({"enabled": True, "format": "json", "filter": "errors"}, {"logLevel": "info,access=warn", "logAsJson": True}),
    # off: the format does not matter (nothing on the access target is written)
    ({"enabled": False, "format": "json"}, {"logLevel": "info,access=off"}),
])
def test_ztunnel_follows_the_mesh_wide_access_logs(access, values):
    """ztunnel reads no Telemetry object; its connection log is set by its chart's logLevel (RUST_LOG)
    and logAsJson (LOG_FORMAT) only (istio 1.30.3 manifests/charts/ztunnel/values.yaml:119-124,
    templates/daemonset.yaml:122-131; istio/ztunnel 1.30.3 src/telemetry.rs:74-93), deep-merged over
    the release control_plane renders; sidecar meshes have no ztunnel."""
    without = ztunnel(render(with_telemetry("dev", None))["dev"])
    got = ztunnel(render(with_telemetry("dev", {"accessLogs": access}))["dev"])
    assert got.values == deep_merge(without.values, values)
    assert {k: got.values.get(k) for k in ("logLevel", "logAsJson") if k in got.values} == values
    spec = load_mesh(with_telemetry("prod", {"accessLogs": access}), base_dir=ROOT).spec
    assert tel.ZTUNNEL_RELEASE not in tel.release_values(spec, spec.clusters[0])


@pytest.mark.parametrize("mesh_logs,override", [
    ({"enabled": True}, {"enabled": False}),
    ({"enabled": True}, {"format": "json"}),
    ({"enabled": True, "format": "json"}, {"filter": "errors"}),
])
@pytest.mark.parametrize("scope", [{"namespace": "bookstore"}, {"namespace": "bookstore", "service": "bookstore"}])
def test_ambient_override_changing_access_logs_while_ztunnel_logs_is_refused(mesh_logs, override, scope):
    """With the mesh's access logs on, ztunnel logs every connection of the mesh as the mesh default
    says (istio/ztunnel 1.30.3 src/proxy/metrics.rs:503-528; no Telemetry read): an override turning
    them off, or to another format or filter, would hold for the waypoint only."""
    telemetry = {"accessLogs": mesh_logs, "overrides": [{**scope, "accessLogs": override}]}
    with pytest.raises(SpecError) as err:
        render(with_telemetry("dev", telemetry))
    found = dict(err.value.problems)
    assert "ztunnel logs every connection" in found["mesh.telemetry.overrides[0].accessLogs"], found
    assert "accessLogs.enabled: false" in found["mesh.telemetry.overrides[0].accessLogs"]


def test_ambient_override_agreeing_with_ztunnel_renders():
    """Mesh off (ztunnel: access=off) and an override turning the waypoint's logs on, or mesh on and an
    override restating it: nothing ztunnel logs differs from the spec."""
    for telemetry in ({"accessLogs": {"enabled": False},
                       "overrides": [{"namespace": "bookstore", "accessLogs": {"enabled": True, "format": "json"}}]},
                      {"accessLogs": {"enabled": True, "format": "json"},
                       "overrides": [{"namespace": "bookstore", "accessLogs": {"enabled": True}}]}):
        objs = mine(render(with_telemetry("dev", telemetry))["dev"])
        assert get(objs, "Telemetry", "mesh-telemetry", "bookstore")["spec"]["accessLogging"][0]["disabled"] is False


# --- refusals ---------------------------------------------------------------------------------


def _bookthief_in_aws(mesh):
    next(n for n in mesh["namespaces"] if n["name"] == "bookthief")["clusters"] = ["prod-aws"]
    return mesh


def _headless_mysql(mesh):
    next(s for s in mesh["services"] if s["name"] == "mysql")["headless"] = True
    return mesh


@pytest.mark.parametrize("stack,telemetry,change,path,fragment", [
    # Istio's charts ship no Prometheus (../shared/charts: base, istiod, cni, ztunnel, gateway)
    ("prod", {"metrics": {"prometheus": {"mode": "bundled"}}}, None,
     "mesh.telemetry.metrics.prometheus.mode", "ships no Prometheus"),
    # annotations carry no interval (pkg/kube/inject/webhook.go:914-916)
    ("prod", {"metrics": {"scrapeIntervalSeconds": 60, "prometheus": {"mode": "annotations"}}}, None,
     "mesh.telemetry.metrics.scrapeIntervalSeconds", "scrape_interval"),
    # an override turns tracing on with no collector named (refused for every mesh, by the spec)
    ("prod", {"overrides": [{"namespace": "bookstore", "tracing": {"enabled": True}}]}, None,
     "mesh.telemetry", "overrides[0].tracing.enabled: tracing is turned on without a collector"),
    # the registry knows Services by their full name (telemetry_logging.go:545-579)
    ("prod", {"tracing": {**OTEL, "address": "otel-collector.observability:4317"}}, None,
     "mesh.telemetry.tracing.address", "<name>.<namespace>.svc.cluster.local"),
    ("prod", {"tracing": {**OTEL, "address": "otel-collector.observability.svc:4317"}}, None,
     "mesh.telemetry.tracing.address", "is not one"),
    # by host name only (telemetry_logging.go:545-579); a failed lookup: no tracing (tracing.go:106-111)
    ("prod", {"tracing": {**OTEL, "address": "10.0.0.7:4317"}}, None,
     "mesh.telemetry.tracing.address", "'10.0.0.7' is an IP address"),
    ("prod", {"overrides": [{"namespace": "bookstore", "tracing": {"enabled": True}}],
              "tracing": {**OTEL, "enabled": False, "address": "192.168.1.20:9411"}}, None,
     "mesh.telemetry.tracing.address", "is an IP address"),
    # the monitors go in every cluster; bookthief is only in prod-aws here (spec.namespace_clusters)
    ("prod", {"metrics": {"prometheus": {"namespace": "bookthief"}}}, _bookthief_in_aws,
     "mesh.telemetry.metrics.prometheus.namespace", "not in prod-azure, prod-gcp"),
    # a headless Service's traffic never meets a waypoint (ambient/waypoints.go:166-193)
    ("dev", {"tracing": OTEL, "overrides": [{"namespace": "bookwarehouse", "service": "mysql",
                                             "tracing": {"samplingPercent": 3}}]}, _headless_mysql,
     "mesh.telemetry.overrides[0].service", "headless"),
])
def test_refusals_name_the_field(stack, telemetry, change, path, fragment):
    mesh = with_telemetry(stack, telemetry)
    if change:
        change(mesh)
    with pytest.raises(SpecError) as err:
        render(mesh)
    found = dict(err.value.problems)
    assert path in found and fragment in found[path], found


def _labels(mesh, **by_service):
    for svc in mesh["services"]:
        if svc["name"] in by_service:
            svc["labels"] = by_service[svc["name"]]
    return mesh


def test_overlapping_service_selectors_are_refused():
    """Two service overrides whose selectors pick the same pods: a selector applies to every pod whose
    labels include it (policyattachment.go:109-112), and Istio applies every matching Telemetry in
    creation order (telemetry.go:479-491), so the wider one would govern the other's pods too."""
    mesh = _labels(with_telemetry("prod", {"accessLogs": {"enabled": True}, "overrides": [
        {"namespace": "bookwarehouse", "service": "bookwarehouse", "accessLogs": {"format": "json"}},
        {"namespace": "bookwarehouse", "service": "mysql", "accessLogs": {"enabled": False}}]}),
        bookwarehouse={"tier": "warehouse"}, mysql={"tier": "warehouse", "role": "db"})
    with pytest.raises(SpecError) as err:
        render(mesh)
    found = dict(err.value.problems)
    # the wide one is refused (its selector picks mysql's pods); mysql's own selector is not
    assert list(found) == ["mesh.telemetry.overrides[0].service"], found
    assert "also picks the pods of bookwarehouse/mysql" in found["mesh.telemetry.overrides[0].service"]
    # told apart by a label of their own: rendered
    _labels(mesh, bookwarehouse={"tier": "warehouse", "role": "api"})
    objs = mine(render(mesh)["prod-aws"])
    assert get(objs, "Telemetry", "mesh-telemetry-mysql", "bookwarehouse")["spec"]["selector"] == \
        {"matchLabels": {"tier": "warehouse", "role": "db"}}


def test_selector_picking_a_service_without_override_is_refused():
    """Reviewer's repro (/tmp/r1/overlap.py): one override only, but its selector (app=warehouse) is a
    subset of mysql's pod labels, so istiod would apply it to mysql's pods too
    (policyattachment.go:109-112), which the spec leaves at the mesh default."""
    mesh = _labels(with_telemetry("prod", {"accessLogs": {"enabled": False}, "overrides": [
        {"namespace": "bookwarehouse", "service": "bookwarehouse", "accessLogs": {"enabled": True}}]}),
        bookwarehouse={"app": "warehouse"}, mysql={"app": "warehouse", "tier": "db"})
    with pytest.raises(SpecError) as err:
        render(mesh)
    found = dict(err.value.problems)
    assert "bookwarehouse/mysql (app=warehouse,tier=db)" in found["mesh.telemetry.overrides[0].service"], found


def test_selector_picking_another_services_version_is_refused():
    """A version's pods carry its service's labels and the version's (render.version_services); a
    selector that is a subset of those picks them, though the service's base labels differ."""
    mesh = with_telemetry("prod", {"accessLogs": {"enabled": True}, "overrides": [
        {"namespace": "bookwarehouse", "service": "mysql", "accessLogs": {"format": "json"}}]})
    _labels(mesh, mysql={"track": "stable"}, bookwarehouse={"app": "bookwarehouse"})
    warehouse = next(s for s in mesh["services"] if s["name"] == "bookwarehouse")
    warehouse["versions"] = [{"name": "v1"}, {"name": "v2", "labels": {"track": "stable"}}]
    with pytest.raises(SpecError) as err:
        render(mesh)
    found = dict(err.value.problems)
    assert "bookwarehouse/bookwarehouse (app=bookwarehouse,track=stable)" in \
        found["mesh.telemetry.overrides[0].service"], found
    # the service's own versions are its pods: no refusal
    warehouse["versions"] = []
    next(s for s in mesh["services"] if s["name"] == "mysql")["versions"] = [{"name": "v1"}]
    assert get(mine(render(mesh)["prod-aws"]), "Telemetry", "mesh-telemetry-mysql", "bookwarehouse")


def test_errors_filter_on_a_tcp_only_service_is_refused():
    """filter: errors is the CEL expression response.code >= 400 (accesslog.go:155-198); a TCP
    connection has no response.code, so a service without an HTTP port would log nothing."""
    mesh = with_telemetry("prod", {"accessLogs": {"enabled": True, "filter": "errors"}, "overrides": [
        {"namespace": "bookwarehouse", "service": "mysql", "accessLogs": {"format": "json"}}]})
    ports = next(s for s in mesh["services"] if s["name"] == "mysql")["ports"]
    assert ports and all(p.get("protocol") == "tcp" for p in ports)  # the stack's mysql is TCP only
    with pytest.raises(SpecError) as err:
        render(mesh)
    found = dict(err.value.problems)
    message = found["mesh.telemetry.overrides[0].accessLogs.filter"]
    assert "no HTTP port" in message and "filter: all" in message
    # filter all for it: rendered
    mesh["telemetry"]["overrides"][0]["accessLogs"]["filter"] = "all"
    assert get(mine(render(mesh)["prod-aws"]), "Telemetry", "mesh-telemetry-mysql", "bookwarehouse")


def test_tracing_past_a_sidecar_that_hides_the_collector_is_refused():
    """egress renders Sidecar mysql-no-egress (hosts */*.svc.cluster.local, istio-system/*) for
    bookwarehouse's non-source service; a collector outside those hosts (a ServiceEntry host) would be
    a cluster its proxy does not have: istiod names the cluster from the registry
    (telemetry_logging.go:545-579) but adds providers' services only to gateways and waypoints
    (push_context.go:884-918,977-1026)."""
    mesh = with_telemetry("prod", {"tracing": {**OTEL, "address": "collector.example.com:4317"}})
    states_without = render(with_telemetry("prod", None))
    sidecars = [o for o in states_without["prod-aws"].concerns["egress"] if o["kind"] == "Sidecar"]
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in sidecars] == \
        [("bookwarehouse", "mysql-no-egress")]
    with pytest.raises(TranslationError) as err:
        render(mesh)
    found = dict(err.value.problems)
    message = found["mesh.telemetry.tracing.address"]
    assert "Sidecar bookwarehouse/mysql-no-egress" in message and "collector.example.com" in message
    assert "service: mysql, tracing: {enabled: false}" in message
    # tracing off for mysql: rendered
    mesh["telemetry"]["overrides"] = [{"namespace": "bookwarehouse", "service": "mysql",
                                       "tracing": {"enabled": False}}]
    assert render(mesh)
    # a cluster Service collector is among */*.svc.cluster.local: rendered
    assert render(with_telemetry("prod", {"tracing": OTEL}))


@pytest.mark.parametrize("entry,host,covered", [
    ("*/*.svc.cluster.local", "otel.observability.svc.cluster.local", True),
    ("*/*.svc.cluster.local", "collector.example.com", False),
    ("istio-system/*", "otel.istio-system.svc.cluster.local", True),
    ("istio-system/*", "otel.observability.svc.cluster.local", False),
    ("istio-system/*", "collector.example.com", False),  # a ServiceEntry's namespace is unknown
    ("./*", "otel.bookwarehouse.svc.cluster.local", True),
    ("./*", "otel.observability.svc.cluster.local", False),
    ("~/*", "otel.bookwarehouse.svc.cluster.local", False),
    ("*/collector.example.com", "collector.example.com", True),
    ("*/*", "collector.example.com", True),
])
def test_sidecar_egress_host_matching(entry, host, covered):
    """Sidecar egress hosts are <namespace>/<dnsName>: namespace *, . (the Sidecar's), ~ (none) or a
    name; dnsName *, a *. suffix or exact (istio/api 1.30.3 networking/v1alpha3/sidecar.proto:508-535)."""
    assert tel._egress_host_covers(entry, "bookwarehouse", host) is covered


def test_istio_notices():
    """validate's telemetry-prerequisite notices (telemetry.notices): no older selector-less Telemetry
    beside ours (istiod takes the oldest per namespace: telemetry.go:120,682-689), and, in operator
    mode, the double scrape an annotation job would add (the injector's prometheus.io annotations,
    pkg/kube/inject/webhook.go:884-921)."""
    from mesh_components.core import telemetry

    loaded = load_mesh(with_telemetry("prod", {"accessLogs": {"enabled": True}, "overrides": [
        {"namespace": "bookstore", "accessLogs": {"format": "json"}}]}), base_dir=ROOT)
    found = dict(telemetry.notices(loaded.spec, render_mesh(loaded)))
    assert "bookstore/mesh-telemetry, istio-system/mesh-default (cluster(s) prod-aws" in found["mesh.telemetry"]
    assert "the oldest" in found["mesh.telemetry"]
    assert "scrapes every proxy twice" in found["mesh.telemetry.metrics.prometheus.mode"]
    # annotations mode: the annotations are the way in, no double scrape to warn of
    loaded = load_mesh(with_telemetry("prod", {"metrics": {"prometheus": {"mode": "annotations"}}}), base_dir=ROOT)
    notes = tel.notices(loaded.spec, render_mesh(loaded))
    assert [p for p, _ in notes] == ["mesh.telemetry"]
    assert "twice" not in notes[0][1]


def test_ambient_does_not_refuse_overlapping_pods():
    """At a waypoint a service override attaches to Services by name (policyattachment.go:154-163),
    so pod labels do not matter there."""
    mesh = with_telemetry("dev", {"accessLogs": {"enabled": False}, "overrides": [
        {"namespace": "bookwarehouse", "service": "bookwarehouse", "accessLogs": {"enabled": True, "format": "json"}},
        {"namespace": "bookwarehouse", "service": "mysql", "accessLogs": {"enabled": True}}]})
    for s in mesh["services"]:
        if s["name"] in ("bookwarehouse", "mysql"):
            s["labels"] = {"tier": "warehouse"}
    objs = mine(render(mesh)["dev"])
    assert [o["metadata"]["name"] for o in objs if o["metadata"]["namespace"] == "bookwarehouse"] == [
        "mesh-telemetry-bookwarehouse", "mesh-telemetry-mysql"]


# --- off is off -------------------------------------------------------------------------------


def test_without_telemetry_the_render_is_byte_identical_to_before(tmp_path):
    """tests/golden/dev predates telemetry: the dev stack, and the same stack after telemetry was
    added and removed again, still render those bytes."""
    write_tree(render(with_telemetry("dev", None)), tmp_path / "a")
    assert tree(tmp_path / "a") == tree(GOLDEN / "dev")
    loaded = load_mesh(with_telemetry("dev", {"accessLogs": {"enabled": True}, "tracing": OTEL}), base_dir=ROOT)
    off = loaded.spec.model_copy(update={"telemetry": None})
    states = render_mesh(loaded._replace(spec=off))
    assert all(st.concerns["telemetry"] == [] for st in states.values())
    write_tree(states, tmp_path / "b")
    assert tree(tmp_path / "b") == tree(GOLDEN / "dev")


@pytest.mark.parametrize("stack,telemetry", [("prod", PROD_TELEMETRY),
                                             ("dev", {"accessLogs": {"enabled": True, "format": "json"},
                                                      "tracing": OTEL})])
def test_turning_telemetry_off_removes_exactly_what_it_added(stack, telemetry, tmp_path):
    """With telemetry on, the render is the one without it plus this module's objects and the
    meshConfig keys it sets; a second render is byte-identical."""
    mesh_on = prod_with_telemetry(telemetry) if stack == "prod" else with_telemetry(stack, telemetry)
    mesh_off = copy.deepcopy(mesh_on)
    del mesh_off["telemetry"]
    on, off = render(mesh_on), render(mesh_off)
    for cluster in off:
        a, b = on[cluster], off[cluster]
        assert {c: v for c, v in a.concerns.items() if c != "telemetry"} == \
            {c: v for c, v in b.concerns.items() if c != "telemetry"}
        assert mine(a) and not b.concerns["telemetry"]
        assert [r.name for r in a.releases] == [r.name for r in b.releases]
        spec = load_mesh(mesh_on, base_dir=ROOT).spec
        values = tel.release_values(spec, next(c for c in spec.clusters if c.name == cluster))
        assert set(values) <= {r.name for r in b.releases}
        for ra, rb in zip(a.releases, b.releases):
            assert ra.values == deep_merge(rb.values, values.get(ra.name, {}))
            if ra.chart == "istiod":
                stripped = {k: v for k, v in ra.values["meshConfig"].items()
                            if k not in ("extensionProviders", "enablePrometheusMerge")}
                assert stripped == rb.values["meshConfig"]
            elif ra.chart == "ztunnel":
                assert {k: v for k, v in ra.values.items() if k not in ("logLevel", "logAsJson")} == rb.values
            else:
                assert ra.values == rb.values
    write_tree(render(mesh_on), tmp_path / "one")
    write_tree(render(mesh_on), tmp_path / "two")
    assert tree(tmp_path / "one") == tree(tmp_path / "two")


# --- the upstream checks ----------------------------------------------------------------------


@pytest.mark.skipif(not TOOLS.is_dir(), reason="../shared/tools is not beside the project")
@pytest.mark.parametrize("stack,telemetry", [
    ("prod", PROD_TELEMETRY),
    ("dev", {"accessLogs": {"enabled": True, "format": "json", "filter": "errors"}, "tracing": OTEL,
             "overrides": [{"namespace": "bookstore", "service": "bookstore", "tracing": {"samplingPercent": 50}}]}),
    ("dev", {"accessLogs": {"enabled": False}, "tracing": OTEL,
             "overrides": [{"namespace": "bookstore", "service": "bookstore",
                            "accessLogs": {"enabled": True, "format": "json"}}]}),
    ("staging", {"metrics": {"prometheus": {"mode": "annotations"}}, "tracing": ZIPKIN}),
])
def test_rendered_telemetry_passes_the_upstream_checks(stack, telemetry, tmp_path):
    """The Telemetry CRD (../shared/crds/istio, with its CEL rules: accessLogging match.mode SERVER
    among its enum), the Prometheus Operator CRDs (../shared/crds/prometheus-operator), istiod's
    MeshConfig API and the ztunnel chart's values (logLevel, logAsJson: check-helm-values)."""
    mesh = prod_with_telemetry(telemetry) if stack == "prod" else with_telemetry(stack, telemetry)
    states = render(mesh)
    assert any(mine(st) for st in states.values())
    write_tree(states, tmp_path / "out")
    for cluster in states:
        v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--profile", "istio",
                            str(tmp_path / "out" / cluster)], capture_output=True, text=True)
        assert v.returncode == 0 and " 0 invalid" in v.stdout.splitlines()[-1], v.stdout[-3000:]
    h = subprocess.run([str(TOOLS / "check-helm-values"), str(tmp_path / "out")], capture_output=True, text=True)
    assert h.returncode == 0, h.stdout[-3000:]
    releases = yaml.safe_load((tmp_path / "out" / next(iter(states)) / "releases" / "helm-releases.yaml").read_text())
    assert any("extensionProviders" in r["values"].get("meshConfig", {}) or
               "enablePrometheusMerge" in r["values"].get("meshConfig", {}) for r in releases if r["chart"] == "istiod")
    if stack == "dev":  # the ztunnel values are among those checked
        assert [sorted({"logLevel", "logAsJson"} & set(r["values"])) for r in releases if r["chart"] == "ztunnel"] \
            in ([["logAsJson", "logLevel"]], [["logLevel"]])
