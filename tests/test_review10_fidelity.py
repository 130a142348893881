"""Issue 10, independent review (/tmp/review10): what the rendered stacks and reviewer's overrides
admitted against upstream, each case with the upstream source it rests on (pinned tags: Istio
1.30.3, Linkerd edge-26.8.3, OSM v1.2.4). Every test here failed on the code before the fix.

The guardrail cases (review points 1, 4, 8) are at the end; the Istio wildcard forms are also in
tests/test_guardrails.py.
"""
from __future__ import annotations

import copy
import importlib.util

import pytest
import yaml

import egress_eval as ev
from mesh_components.core import egress
from mesh_components.meshes import linkerd
from mesh_components.analysis import override_access
from mesh_components.cli import main
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.cli.graph_cli import graph_of
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh

from cp_helpers import stack_mesh
from policy_eval import Request, istio_allows, linkerd_allows
from program_harness import ROOT
from test_egress import MESHES, let_out, mesh_with, rendered
from test_policy import find


def with_overrides(stack: str, *overrides, edit=None) -> dict:
    mesh = stack_mesh(stack)
    mesh["overrides"] = copy.deepcopy(list(overrides))
    mesh["smiFiles"] = [str(ROOT / f) for f in mesh.get("smiFiles", [])]
    if edit:
        edit(mesh)
    return mesh


def findings(mesh) -> dict[str, set[str]]:
    """``{kind: {messages}}`` of the override findings of ``graph``."""
    out: dict[str, set[str]] = {}
    for f in graph_of(load_mesh(mesh, base_dir=ROOT)).findings:
        if f.origin.startswith("mesh.overrides"):
            out.setdefault(f.kind, set()).add(f.message)
    return out


def strict_exit(tmp_path, mesh) -> int:
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": mesh}}))
    return main(["graph", str(path), "--strict"])


# --- 1. overrides outside the access kinds --------------------------------------------------------

NP_OPEN = {"kind": "NetworkPolicy", "name": "mesh-egress-allow-list", "namespace": "bookthief",
           "patch": [{"op": "add", "path": "/spec/egress/-", "value": {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}}]}
SE_HOST = {"kind": "ServiceEntry", "name": "book-publisher-api", "namespace": "mesh-egress",
           "patch": [{"op": "add", "path": "/spec/hosts/-", "value": "pastebin.com"}]}
ALLOW_ANY_HELM = {"kind": "HelmRelease", "name": "istiod",
                  "patch": [{"op": "add", "path": "/values/meshConfig",
                             "value": {"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}}]}
EGRESS_NET_ALLOW = {"kind": "EgressNetwork", "name": "mesh-egress", "namespace": "bookwarehouse",
                    "patch": [{"op": "replace", "path": "/spec/trafficPolicy", "value": "Allow"}]}
GLOBAL_EGRESS_NS = {"kind": "HelmRelease", "name": "linkerd-control-plane",
                    "patch": [{"op": "add", "path": "/values/egress",
                               "value": {"globalEgressNetworkNamespace": "elsewhere"}}]}
OSM_PERMISSIVE = {"kind": "HelmRelease", "name": "osm",
                  "patch": [{"op": "replace", "path": "/values/osm/enablePermissiveTrafficPolicy", "value": True}]}
OSM_EGRESS = {"kind": "HelmRelease", "name": "osm",
              "patch": [{"op": "replace", "path": "/values/osm/enableEgress", "value": True}]}
PROBE_NETWORKS = {"kind": "HelmRelease", "name": "linkerd-control-plane",
                  "patch": [{"op": "add", "path": "/values/policyController",
                             "value": {"probeNetworks": ["10.0.0.0/8"]}}]}


@pytest.mark.parametrize("stack, override, expect", [
    # ambient: ztunnel passes unknown destinations through, the NetworkPolicy is the fence
    ("dev", NP_OPEN, "out to any address on any port"),
    # ambient: the waypoint admits bookwarehouse to every host of the entry
    ("dev", SE_HOST, "out to pastebin.com:443"),
    # sidecars: istiod's mesh config (Helm meshConfig; pkg/config/mesh/mesh.go:83 default ALLOW_ANY)
    ("staging", ALLOW_ANY_HELM, "out to any address on any port"),
    # a Sidecar's own outboundTrafficPolicy wins for its pods
    # (https://istio.io/latest/docs/reference/config/networking/sidecar/#OutboundTrafficPolicy)
    ("staging", {"kind": "Sidecar", "name": "mysql-no-egress", "namespace": "bookwarehouse", "patch": [
        {"op": "add", "path": "/spec/outboundTrafficPolicy", "value": {"mode": "ALLOW_ANY"}}]},
     "identity bookwarehouse/mysql out to any address on any port"),
    # a mesh route around the egress gateway skips its AuthorizationPolicy
    ("staging", {"kind": "VirtualService", "name": "book-publisher-api", "namespace": "mesh-egress", "patch": [
        {"op": "replace", "path": "/spec/tls/0/route/0/destination",
         "value": {"host": "api.bookpublisher.example.com", "port": {"number": 443}}}]},
     "other workloads of namespace bookwarehouse out to api.bookpublisher.example.com:443"),
    # Linkerd: egress_network.rs:61-78 (own namespace first, else the global egress namespace)
    ("linkerd", EGRESS_NET_ALLOW, "workloads of namespace bookwarehouse out to any address"),
    ("linkerd", GLOBAL_EGRESS_NS, "workloads of namespace bookstore out to any address"),
    # OSM permissive mode: a wildcard route for every client (osm v1.2.4
    # pkg/catalog/inbound_traffic_policies.go:36-37,123-131); global egress: listener.go:56-67
    ("osm", OSM_PERMISSIVE, "every client (osm.enablePermissiveTrafficPolicy) to bookstore/bookstore"),
    ("osm", OSM_EGRESS, "out to any address on any port"),
])
def test_an_override_that_opens_egress_or_a_mesh_switch_widens(tmp_path, stack, override, expect):
    found = findings(with_overrides(stack, override))
    assert any(expect in m for m in found.get("override-widens", ())), found
    assert strict_exit(tmp_path, with_overrides(stack, override)) == 2


def test_istiod_mesh_config_wins_over_a_shared_map():
    """istio 1.30.3 pilot/pkg/bootstrap/mesh.go:130-136: the SHARED_MESH_CONFIG map is applied
    first and istiod's own map (Helm ``meshConfig``) over it; without either, ALLOW_ANY
    (pkg/config/mesh/mesh.go:83). A map no istiod names is read by nobody."""
    from mesh_components.analysis import egress_access
    from mesh_components.core.render import HelmRelease

    cm = lambda mode: {"apiVersion": "v1", "kind": "ConfigMap",  # noqa: E731
                       "metadata": {"name": "shared", "namespace": "istio-system"},
                       "data": {"mesh": f"outboundTrafficPolicy:\n  mode: {mode}\n"}}
    istiod = lambda values: [HelmRelease("istiod", "istio-system", "r", "istiod", "1", values)]  # noqa: E731
    mode = egress_access.istio_outbound_mode
    assert mode([], istiod({})) == "ALLOW_ANY"
    assert mode([cm("REGISTRY_ONLY")], istiod({})) == "ALLOW_ANY"  # named by no istiod
    assert mode([cm("REGISTRY_ONLY")], istiod({"env": {"SHARED_MESH_CONFIG": "shared"}})) == "REGISTRY_ONLY"
    assert mode([cm("ALLOW_ANY")], istiod({"env": {"SHARED_MESH_CONFIG": "shared"},
                                             "meshConfig": {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}})) \
        == "REGISTRY_ONLY"
    assert mode([cm("REGISTRY_ONLY")], istiod({"env": {"SHARED_MESH_CONFIG": "shared"},
                                                 "meshConfig": {"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}})) \
        == "ALLOW_ANY"


def test_egress_widenings_are_drawn_to_the_destination(tmp_path):
    g = graph_of(load_mesh(with_overrides("dev", SE_HOST), base_dir=ROOT))
    assert [(e.source, e.target) for e in g.edges if e.kind == "override"] == [
        ("svc_bookwarehouse_2fbookwarehouse", "ext_pastebin_2ecom")]


def test_a_wider_probe_network_is_a_widening_and_a_narrower_one_a_change():
    """policyController.probeNetworks: the networks unauthenticated probe requests are authorized
    from (linkerd2 edge-26.8.3 policy-controller/k8s/index/src/inbound/index.rs:2243-2298; chart
    default 0.0.0.0/0 and ::/0, values.yaml:96-98). The render keeps the default, so an override
    can only narrow it there (a change); against a narrower base, wider networks widen."""
    from mesh_components.analysis import egress_access
    from mesh_components.core.render import HelmRelease

    assert set(findings(with_overrides("linkerd", PROBE_NETWORKS))) == {"override-changes-access"}
    rel = lambda nets: HelmRelease("linkerd-control-plane", "linkerd", "r", "linkerd-control-plane", "1",  # noqa: E731
                                   {"policyController": {"probeNetworks": nets}})
    assert egress_access.setting_widenings(rel(["10.0.0.0/8"]), rel(["10.1.0.0/16"])) == []
    (wider,) = egress_access.setting_widenings(rel(["10.0.0.0/8"]), rel(["10.0.0.0/8", "192.168.0.0/16"]))
    assert wider == ("policyController.probeNetworks", "unauthenticated probe requests from 192.168.0.0/16")
    assert egress_access.setting_widenings(rel(["10.0.0.0/8"]), rel("0.0.0.0/0"))  # a string is a list too


def test_dns_capture_off_is_reported():
    """istio-cni ``ambient.dnsCapture`` (manifests/charts/istio-cni/values.yaml:70) decides whether
    ServiceEntry hosts resolve to addresses ztunnel sends to the egress waypoint."""
    off = {"kind": "HelmRelease", "name": "istio-cni",
           "patch": [{"op": "add", "path": "/values/ambient", "value": {"dnsCapture": False}}]}
    assert set(findings(with_overrides("dev", off))) == {"override-changes-access"}


def test_egress_exits_of_the_shipped_stacks_are_the_intent():
    """The production reader (egress_access) agrees with the independent one on every shipped stack:
    no exit beyond the rules."""
    from mesh_components.analysis import egress_access

    for stack in ("dev", "staging", "linkerd", "osm"):
        loaded = load_mesh(with_overrides(stack), base_dir=ROOT)
        for cluster, st in render_mesh(loaded).items():
            exits = egress_access.exits(loaded.spec, st.objects, st.releases)
            wide = [e for e in exits if e.host == "*"]
            assert not wide, (stack, cluster, wide)


# --- 2. callers per route; enrolment; egress policies ---------------------------------------------

def test_an_identity_on_a_route_is_not_covered_by_the_probe_route(tmp_path):
    """The kubelet-probe route admits unauthenticated clients to GET of its exact paths only
    (index.rs:2258-2298), so a new identity on the bookstore route is a widening (review L1)."""
    add = {"kind": "MeshTLSAuthentication", "name": "bookstore-http-831e5e9e", "namespace": "bookstore",
           "patch": [{"op": "add", "path": "/spec/identities/-",
                      "value": "bookthief.bookthief.serviceaccount.identity.linkerd.cluster.local"}]}
    found = findings(with_overrides("linkerd", add))
    assert any("bookthief.bookthief" in m and "route bookstore-http-831e5e9e (GET Exact /books-bought)" in m
               for m in found["override-widens"]), found
    assert strict_exit(tmp_path, with_overrides("linkerd", add)) == 2


def test_a_route_widened_to_every_path_is_a_widening():
    """review L3: the same caller on a wider route (PathPrefix /) reaches paths no rule grants."""
    wide = {"kind": "HTTPRoute", "name": "bookstore-http-831e5e9e", "namespace": "bookstore",
            "patch": [{"op": "replace", "path": "/spec/rules",
                       "value": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]}]}
    found = findings(with_overrides("linkerd", wide))
    assert any("(PathPrefix /)" in m for m in found["override-widens"]), found


@pytest.mark.parametrize("stack, override", [
    ("dev", {"kind": "Namespace", "name": "bookstore",
             "patch": [{"op": "remove", "path": "/metadata/labels/istio.io~1dataplane-mode"}]}),
    ("staging", {"kind": "Namespace", "name": "bookstore",
                 "patch": [{"op": "remove", "path": "/metadata/labels/istio.io~1rev"}]}),
    ("linkerd", {"kind": "Namespace", "name": "bookstore",
                 "patch": [{"op": "remove", "path": "/metadata/annotations/linkerd.io~1inject"}]}),
    ("osm", {"kind": "Namespace", "name": "bookstore",
             "patch": [{"op": "remove", "path": "/metadata/labels/openservicemesh.io~1monitored-by"}]}),
])
def test_taking_a_namespace_out_of_the_mesh_widens(stack, override):
    """Pods without a proxy obey no mesh policy (https://istio.io/latest/docs/ambient/usage/add-workloads/,
    https://linkerd.io/2/features/proxy-injection/, osm v1.2.4 pkg/injector: only monitored
    namespaces are injected)."""
    found = findings(with_overrides(stack, override))
    assert any("not enrolled in the mesh" in m and "bookstore/bookstore" in m for m in found["override-widens"])


def test_a_source_added_to_an_egress_policy_widens():
    """review D4: the ambient egress waypoint admits whom the entry's ALLOW policy names
    (policyattachment.go:165-197)."""
    add = {"kind": "AuthorizationPolicy", "name": "book-publisher-api", "namespace": "mesh-egress",
           "patch": [{"op": "add", "path": "/spec/rules/0/from/0/source/principals/-",
                      "value": "cluster.local/ns/bookthief/sa/bookthief"}]}
    found = findings(with_overrides("dev", add))
    assert any("bookthief/sa/bookthief out to api.bookpublisher.example.com:443" in m
               for m in found["override-widens"]), found
    # sidecar mode: the same through the egress gateway's policy
    sidecar = {"kind": "AuthorizationPolicy", "name": "book-publisher-api", "namespace": "mesh-egress",
               "patch": [{"op": "add", "path": "/spec/rules/0/from/0/source/principals/-",
                          "value": "cluster.local/ns/bookthief/sa/bookthief"}]}
    found = findings(with_overrides("staging", sidecar))
    assert any("bookthief/sa/bookthief out to api.bookpublisher.example.com:443" in m
               for m in found["override-widens"]), found


def test_grants_are_compared_per_scope():
    g = override_access.Grant
    c = override_access.Caller
    any_ = c("any", "network", "probes")
    thief = c("identity", ("bookthief", "bookthief"), "thief")
    probe = g(("route", 14001, ('{"method":"GET","path":{"type":"Exact","value":"/healthz"}}',)), any_)
    assert not override_access._covered(g(("route", 14001, ('{"path":{"type":"PathPrefix","value":"/"}}',)), thief),
                                        {probe})
    assert override_access._covered(g(("route", 14001, ("a",)), thief), {g(("port", 14001), any_)})
    assert not override_access._covered(g(("port", 14001), thief), {g(("route", 14001, ("a",)), any_)})
    assert override_access._covered(g(("rule", "x"), thief), {g(("all",), any_)})


# --- 3. ambient: pod-addressed (headless) destinations ---------------------------------------------

MYSQL_FROM = lambda src: Request(src, "bookwarehouse", "mysql", "mysql", (("app", "mysql"),), 3306,  # noqa: E731
                                 http=False)


def test_a_tcp_only_destination_admits_its_sources_without_the_waypoint():
    """OSM's demo mysql is headless (osm v1.2.4 demo/deploy-mysql.sh:17-30): clients dial pod IPs,
    which a ``waypoint-for: service`` waypoint never handles (istio 1.30.3
    pilot/pkg/serviceregistry/ambient/waypoints.go:166-193), so ztunnel sees the real client. The
    L4 rule is exact there too: bookwarehouse in, bookthief out, through the waypoint and around it."""
    st = render_mesh(load_mesh(with_overrides("dev"), base_dir=ROOT))["dev"]
    pols = [o for o in st.objects if o["kind"] == "AuthorizationPolicy" and o["metadata"]["namespace"] == "bookwarehouse"]
    for mode in ({"ambient_namespaces": frozenset({"bookwarehouse"})},
                 {"ambient_waypoint_namespaces": frozenset({"bookwarehouse"})}):
        assert istio_allows(pols, MYSQL_FROM(("bookwarehouse", "bookwarehouse")), trust_domain="cluster.local", **mode)
        assert not istio_allows(pols, MYSQL_FROM(("bookthief", "bookthief")), trust_domain="cluster.local", **mode)
    # an HTTP destination still admits only its waypoint at ztunnel
    shop = Request(("bookstore", "bookstore"), "bookwarehouse", "bookwarehouse", "bookwarehouse",
                   (("app", "bookwarehouse"),), 14001, http=True, method="POST", path="/restock-books")
    assert not istio_allows(pols, shop, trust_domain="cluster.local", ambient_namespaces=frozenset({"bookwarehouse"}))


def test_http_rules_on_a_headless_service_are_refused_in_ambient():
    def headless(mesh):
        next(s for s in mesh["services"] if s["name"] == "bookwarehouse")["headless"] = True
    with pytest.raises(TranslationError) as err:
        render_mesh(load_mesh(with_overrides("dev", edit=headless), base_dir=ROOT))
    (message,) = {m for _, m in err.value.problems if "headless" in m}
    assert "bookwarehouse/bookwarehouse is headless" in message and "waypoints.go:166-193" in message

    def headless_mysql(mesh):  # TCP only: rendered, exact at L4
        next(s for s in mesh["services"] if s["name"] == "mysql")["headless"] = True
    render_mesh(load_mesh(with_overrides("dev", edit=headless_mysql), base_dir=ROOT))
    # sidecars see pod-addressed traffic on the destination's own proxy: nothing to refuse
    staging = with_overrides("staging", edit=headless)
    render_mesh(load_mesh(staging, base_dir=ROOT))


# --- 5. Linkerd: every namespace fenced ------------------------------------------------------------

def test_linkerd_fences_every_namespace_through_the_global_egress_namespace():
    """egress_network.rs:61-78: a namespace without EgressNetworks gets those of the global egress
    namespace (values.yaml:746 ``linkerd-egress``; no chart creates it)."""
    loaded = load_mesh(with_overrides("linkerd"), base_dir=ROOT)
    for cluster, st in render_mesh(loaded).items():
        ns = find(st.objects, "Namespace", "linkerd-egress", None)
        assert ns["apiVersion"] == "v1"
        net = find(st.objects, "EgressNetwork", "mesh-egress", "linkerd-egress")
        assert net["spec"] == {"trafficPolicy": "Deny"}
        assert ev.linkerd(st.objects, loaded.spec) == ev.intent(loaded.spec) | {
            ("bookwarehouse/mysql", "api.bookpublisher.example.com", 443)}  # approximate: namespace
        # the service-mirror controllers keep reaching the peers' API servers
        mirror = find(st.objects, "EgressNetwork", "service-mirror-api-servers", "linkerd-multicluster")
        assert mirror["spec"] == {"trafficPolicy": "Allow"}
        # without the global network, bookthief would reach any address (the evaluator reads the precedence)
        bare = [o for o in st.objects if o["metadata"].get("namespace") != "linkerd-egress"]
        assert ("bookthief/bookthief", ev.ANYWHERE, ev.ANY_PORT) in ev.linkerd(bare, loaded.spec)


def test_one_cluster_linkerd_opens_no_mirror_namespace():
    spec, st = rendered(mesh_with(MESHES["linkerd"]))
    assert not [o for o in st.objects if o["kind"] == "EgressNetwork" and o["spec"]["trafficPolicy"] != "Deny"]
    assert let_out("linkerd", spec, st) == ev.intent(spec)


# --- 6. ambient wildcard egress ------------------------------------------------------------------

WILD_HTTP = [{"name": "cdn", "hosts": ["*.cdn.example.com"], "ports": [{"port": 80, "protocol": "http"}],
              "allowWildcard": True, "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}]}]


def test_ambient_wildcards_use_dynamic_dns_or_are_refused():
    """Istio allocates a wildcard host no address unless DYNAMIC_DNS (ipallocate.go:361-363,
    ambient/services.go:590-595), and without one ztunnel passes the call through to the
    NetworkPolicy, which drops it. DYNAMIC_DNS wants every host wildcarded and HTTP/TLS/gRPC ports
    (pkg/config/validation/validation.go:3073-3097); TLS needs an istiod flag off by default
    (pilot/pkg/features/experimental.go:211-214)."""
    spec, st = rendered(mesh_with(MESHES["istio-ambient"], WILD_HTTP))
    assert find(st.objects, "ServiceEntry", "cdn", "mesh-egress")["spec"]["resolution"] == "DYNAMIC_DNS"
    assert let_out("istio-ambient", spec, st) == {("bookbuyer/bookbuyer", "*.cdn.example.com", 80)}
    for port, expect in (({"port": 443, "protocol": "https"}, "ENABLE_WILDCARD_HOST_SERVICE_ENTRIES_FOR_TLS"),
                         ({"port": 5432, "protocol": "tcp"}, "HTTP, TLS and gRPC only")):
        rules = copy.deepcopy(WILD_HTTP)
        rules[0]["ports"] = [port]
        with pytest.raises(TranslationError) as err:
            rendered(mesh_with(MESHES["istio-ambient"], rules))
        assert expect in dict(err.value.problems)["mesh.egress[0].ports[0]"]
    mixed = copy.deepcopy(WILD_HTTP)
    mixed[0]["hosts"].append("static.example.com")
    with pytest.raises(TranslationError) as err:
        rendered(mesh_with(MESHES["istio-ambient"], mixed))
    assert "move static.example.com to a rule of its own" in dict(err.value.problems)["mesh.egress[0].hosts"]


# --- 7. Linkerd: Prometheus scrapes under default deny ----------------------------------------------

def test_linkerd_scrapers_get_what_allow_scrapes_renders():
    """viz/cmd/allow-scrapes.go:13-108: Server on linkerd-admin, /metrics for the scraper, and the
    proxy's own /live and /ready (a Server with routes loses the default probe route,
    policy-controller/k8s/index/src/inbound/index.rs:2001-2017)."""
    def scrape(mesh):
        mesh["backend"]["linkerd"] = {"scrapers": [{"namespace": "monitoring", "serviceAccount": "prometheus"}]}
        mesh.pop("telemetry", None)  # the stack's bundled viz Prometheus would need its own identity listed
    loaded = load_mesh(with_overrides("linkerd", edit=scrape), base_dir=ROOT)
    st = render_mesh(loaded)["linkerd-east"]
    srv = find(st.objects, "Server", "proxy-admin", "bookstore")
    assert srv["spec"] == {"podSelector": {"matchExpressions": [{"key": "linkerd.io/control-plane-ns",
                                                                  "operator": "Exists"}]},
                           "port": "linkerd-admin", "proxyProtocol": "HTTP/1"}
    assert find(st.objects, "MeshTLSAuthentication", "prometheus-scrape", "bookstore")["spec"] == {
        "identities": ["prometheus.monitoring.serviceaccount.identity.linkerd.cluster.local"]}
    probes = find(st.objects, "HTTPRoute", "proxy-probes", "bookstore")
    assert [m["path"]["value"] for m in probes["spec"]["rules"][0]["matches"]] == ["/live", "/ready"]
    for ns in ("bookstore", "bookwarehouse"):  # every namespace whose default inbound policy is deny
        find(st.objects, "AuthorizationPolicy", "prometheus-scrape", ns)
    # without scrapers: nothing (the option is opt-in; the shipped stack lists viz's for its telemetry)
    def no_scrapers(mesh):
        mesh["backend"]["linkerd"].pop("scrapers", None)
        mesh.pop("telemetry", None)
    plain = render_mesh(load_mesh(with_overrides("linkerd", edit=no_scrapers), base_dir=ROOT))["linkerd-east"]
    assert not [o for o in plain.objects if o["metadata"]["name"] in ("proxy-admin", "prometheus-scrape")]
    assert linkerd.scrape_objects(loaded.spec, "x")  # the helper itself follows the option


def test_linkerd_scrape_policy_admits_only_the_scraper():
    def scrape(mesh):
        mesh["backend"]["linkerd"] = {"scrapers": [{"namespace": "monitoring", "serviceAccount": "prometheus"}]}
        mesh.pop("telemetry", None)  # the stack's bundled viz Prometheus would need its own identity listed
    st = render_mesh(load_mesh(with_overrides("linkerd", edit=scrape), base_dir=ROOT))["linkerd-east"]
    objs = [o for o in st.objects if o["apiVersion"].startswith("policy.linkerd") and
            o["metadata"].get("namespace") == "bookstore" and o["kind"] != "EgressNetwork"]
    for o in objs:  # the evaluator models numeric ports: the admin port is 4191 (proxy.ports.admin)
        if o["kind"] == "Server" and o["spec"]["port"] == "linkerd-admin":
            o["spec"] = {**o["spec"], "port": 4191, "podSelector": {"matchLabels": {"app": "bookstore"}}}
    req = lambda src, path: Request(src, "bookstore", "bookstore", "bookstore", (("app", "bookstore"),), 4191,  # noqa: E731
                                    http=True, method="GET", path=path)
    kw = {"trust_domain": "cluster.local", "default_policy": "deny"}
    assert linkerd_allows(objs, req(("monitoring", "prometheus"), "/metrics"), **kw)
    assert not linkerd_allows(objs, req(("bookthief", "bookthief"), "/metrics"), **kw)
    assert not linkerd_allows(objs, req(("monitoring", "prometheus"), "/env.json"), **kw)


# --- 9. NodeLocal DNSCache ---------------------------------------------------------------------------

def test_node_local_dns_is_admitted_on_53_only():
    """NodeLocal DNSCache listens on a link-local host-network address
    (https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/), outside every pod selector."""
    mesh = mesh_with(MESHES["istio-ambient"])
    mesh["clusters"][0]["nodeLocalDns"] = "169.254.20.10"
    spec, st = rendered(mesh)
    fence = find(st.objects, "NetworkPolicy", egress.EGRESS_FENCE, "bookthief")
    assert {"to": [{"ipBlock": {"cidr": "169.254.20.10/32"}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]} in fence["spec"]["egress"]
    out = let_out("istio-ambient", spec, st)
    assert out - ev.intent(spec) == {(f"{s.namespace}/{s.name}", "169.254.20.10/32", 53) for s in spec.services}
    with pytest.raises(SpecError) as err:
        bad = mesh_with(MESHES["istio-ambient"])
        bad["clusters"][0]["nodeLocalDns"] = "node-local"
        rendered(bad)
    assert "mesh.clusters[0].nodeLocalDns" in dict(err.value.problems)


# --- guardrails: 1 (OSM switches, the egress fence), 4 (the open-service exemption), 8 (wildcards) ---

_pack = importlib.util.spec_from_file_location("mesh_guardrails_review10",
                                               ROOT / "policies" / "mesh-guardrails" / "mesh_guardrails.py")
guardrails = importlib.util.module_from_spec(_pack)
_pack.loader.exec_module(guardrails)
RELEASE = "kubernetes:helm.sh/v3:Release"


def resources(mesh) -> list[tuple[str, dict]]:
    """The stack's objects and releases as CrossGuard sees them (type token, props)."""
    out = []
    for st in render_mesh(load_mesh(mesh, base_dir=ROOT)).values():
        for o in st.objects:
            group, _, version = o["apiVersion"].rpartition("/")
            out.append((f"kubernetes:{group or 'core'}/{version}:{o['kind']}", o))
        out += [(RELEASE, {"name": r.name, "namespace": r.namespace, "chart": r.chart, "values": r.values})
                for r in st.releases]
    return out


def fired(res, *names) -> list[str]:
    out = [m for t, p in res for n in names if n in guardrails.RESOURCE_VALIDATORS
           for m in guardrails.RESOURCE_VALIDATORS[n](t, p, None)]
    return out + [m for n in names if n in guardrails.STACK_VALIDATORS for m in guardrails.STACK_VALIDATORS[n](res, None)]


@pytest.mark.parametrize("override, policy, expect", [
    (OSM_PERMISSIVE, "no-allow-all", "enablePermissiveTrafficPolicy"),
    (OSM_EGRESS, "no-wildcard-egress", "enableEgress"),
])
def test_osm_permissive_mode_and_global_egress_fail_the_guardrails(override, policy, expect):
    """Both chart defaults are true (osm v1.2.4 charts/osm/values.yaml:258, 261): a release that
    leaves them out is as open as one that sets them."""
    assert not fired(resources(with_overrides("osm")), policy)
    (message,) = fired(resources(with_overrides("osm", override)), policy)
    assert expect in message
    gone = {"kind": "HelmRelease", "name": "osm", "patch": [{"op": "remove", "path": f"/values/osm/{expect}"}]}
    assert fired(resources(with_overrides("osm", gone)), policy)


def test_an_open_egress_fence_fails_no_wildcard_egress():
    assert not fired(resources(with_overrides("dev")), "no-wildcard-egress")
    (message,) = fired(resources(with_overrides("dev", NP_OPEN)), "no-wildcard-egress")
    assert "bookthief/mesh-egress-allow-list egress[2]" in message


def _with_reviews(mesh):
    mesh["services"].append({"name": "reviews", "namespace": "bookstore",
                             "ports": [{"port": 9080, "name": "http", "protocol": "http"}]})


def test_the_open_service_exemption_holds_exactly_its_own_services():
    """Review U2: appending another Service to ``<service>-unrestricted`` opens that Service at the
    waypoint (a Service targetRef attaches to that Service's chain, istio 1.30.3
    pilot/pkg/model/policyattachment.go:154-163) and passed no-allow-all."""
    clean = resources(with_overrides("dev", edit=_with_reviews))
    assert not fired(clean, "no-allow-all", "no-allow-all-open-service")
    add = lambda name: {"kind": "AuthorizationPolicy", "name": "reviews-unrestricted", "namespace": "bookstore",  # noqa: E731
                        "patch": [{"op": "add", "path": "/spec/targetRefs/-",
                                   "value": {"group": "", "kind": "Service", "name": name}}]}
    (message,) = fired(resources(with_overrides("dev", add("bookstore"), edit=_with_reviews)), "no-allow-all")
    assert "bookstore/reviews-unrestricted rules[0] allows every source" in message
    # a version-shaped name must be a version Service the mesh renders
    shaped = resources(with_overrides("dev", add("reviews-admin"), edit=_with_reviews))
    assert not fired(shaped, "no-allow-all")
    (message,) = fired(shaped, "no-allow-all-open-service")
    assert "bookstore/reviews-admin" in message

    def versions(mesh):  # the generated shape with versions passes both
        _with_reviews(mesh)
        mesh["services"][-1]["versions"] = [{"name": "v1"}, {"name": "v2"}]
    assert not fired(resources(with_overrides("dev", edit=versions)), "no-allow-all", "no-allow-all-open-service")


@pytest.mark.parametrize("identity, wide", [
    ("*", True),
    ("*.cluster.local", True),
    ("*.serviceaccount.identity.linkerd.cluster.local", True),
    ("*.book*.serviceaccount.identity.linkerd.cluster.local", True),
    ("*.bookbuyer.serviceaccount.identity.linkerd.cluster.local", False),
    ("bookbuyer.bookbuyer.serviceaccount.identity.linkerd.cluster.local", False),
])
def test_linkerd_identities_may_wildcard_one_namespace_only(identity, wide):
    """identity_match.rs:18-30 (linkerd2 edge-26.8.3): ``*`` and a ``*.`` prefix are suffix matches."""
    mtls = {"metadata": {"name": "m", "namespace": "bookstore"}, "spec": {"identities": [identity]}}
    found = guardrails.validate_no_allow_all("kubernetes:policy.linkerd.io/v1alpha1:MeshTLSAuthentication", mtls)
    assert bool(found) == wide


def test_an_authenticated_default_in_a_policed_namespace_must_be_declared():
    """``all-authenticated`` admits every meshed client (of every linked cluster) on each port no
    Server selects (charts/linkerd-control-plane/values.yaml:245-251; https://linkerd.io/2/reference/
    authorization-policy/#default-policies): only where the spec says so."""
    default = lambda v: {"kind": "Namespace", "name": "bookstore", "patch": [  # noqa: E731
        {"op": "replace", "path": "/metadata/annotations/config.linkerd.io~1default-inbound-policy", "value": v}]}
    assert not fired(resources(with_overrides("linkerd")), "no-allow-all-linkerd-default")
    for value in ("all-authenticated", "cluster-authenticated"):
        found = fired(resources(with_overrides("linkerd", default(value))), "no-allow-all-linkerd-default")
        assert len(found) == 2 and all(f"default-inbound-policy: {value}" in m for m in found)  # two clusters

    def declared(mesh):
        next(n for n in mesh["namespaces"] if n["name"] == "bookstore")["defaultInboundPolicy"] = "all-authenticated"
    res = resources(with_overrides("linkerd", edit=declared))
    ns = next(p for t, p in res if p.get("kind") == "Namespace" and p["metadata"]["name"] == "bookstore")
    assert ns["metadata"]["annotations"][linkerd.DECLARED_POLICY_ANNOTATION] == "all-authenticated"
    assert not fired(res, "no-allow-all-linkerd-default")
