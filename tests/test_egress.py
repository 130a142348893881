"""One egress intent compiled for every mesh: the (service, host, port) triples each mesh would let
out, read back from the rendered objects (tests/egress_eval.py), equal the intent; wildcards only
when allowed; the Istio egress gateway (ISTIO_MUTUAL hop, identity policy, TLS origination,
credential injection) and the ambient waypoint; what Linkerd and OSM refuse; no secret value in
render output."""
from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

import egress_eval as ev
from mesh_components.core import egress
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.gateway_api import channel_of_url
from mesh_components.core.render import render_mesh, write_tree
from mesh_components.core.slots import Slot, iter_slots
from mesh_components.spec import load_mesh, load_stack

from program_harness import ROOT, TEST_SECRET, run_program, stack_config
from test_policy import find
from test_spec import dev_mesh

TOOLS = ROOT.parent / "shared" / "tools"
MESHES = {
    "istio-sidecar": {"type": "istio", "istio": {"dataPlane": "sidecar"}},
    "istio-ambient": {"type": "istio", "istio": {"dataPlane": "ambient"}},
    "linkerd": {"type": "linkerd"},
    "osm": {"type": "osm"},
}
INTENT = [
    # bookbuyer and bookstore each run alone in their namespace, so every mesh can be exact
    {"name": "catalog", "hosts": ["api.catalog.example.com"], "ports": [{"port": 443, "protocol": "https"}],
     "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}]},
    {"name": "ratings", "hosts": ["ratings.example.com", "ratings-eu.example.com"],
     "ports": [{"port": 80, "protocol": "http"}, {"port": 8443, "protocol": "tls"}],
     "sources": [{"service": "bookstore", "namespace": "bookstore"}, {"service": "bookbuyer", "namespace": "bookbuyer"}]},
]


def mesh_with(backend: dict, egress_rules=INTENT, **extra) -> dict:
    mesh = dev_mesh()
    mesh["backend"] = copy.deepcopy(backend)
    mesh["egress"] = copy.deepcopy(egress_rules)
    if backend["type"] == "linkerd":  # the ingress route "/" overlaps bookbuyer's routes (test_gateway)
        mesh.pop("ingress")
    mesh.update(extra)
    return mesh


def rendered(mesh: dict):
    loaded = load_mesh(mesh, base_dir=ROOT)
    return loaded.spec, render_mesh(loaded)["dev"]


def let_out(kind: str, spec, st) -> set:
    if kind == "istio-sidecar":
        return ev.istio_sidecar(st.objects, st.releases, spec)
    if kind == "istio-ambient":
        return ev.istio_ambient(st.objects, spec)
    if kind == "linkerd":
        return ev.linkerd(st.objects, spec)
    return ev.osm(st.objects, st.releases, spec)


def refused(mesh: dict) -> dict[str, str]:
    with pytest.raises((SpecError, TranslationError)) as err:
        rendered(mesh)
    return dict(err.value.problems)


# --- one intent, every mesh ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(MESHES))
def test_every_mesh_lets_out_exactly_the_intent(kind):
    spec, st = rendered(mesh_with(MESHES[kind]))
    expected = ev.intent(spec)
    assert expected == {("bookbuyer/bookbuyer", "api.catalog.example.com", 443)} | {
        (svc, h, p) for svc in ("bookstore/bookstore", "bookbuyer/bookbuyer")
        for h in ("ratings.example.com", "ratings-eu.example.com") for p in (80, 8443)}
    assert let_out(kind, spec, st) == expected


@pytest.mark.parametrize("kind", sorted(MESHES))
def test_the_shipped_bookstore_egress_per_mesh(kind):
    """The stacks' own rule (bookwarehouse shares its namespace with mysql): exact on Istio and OSM;
    Linkerd only with the named approximation, and then mysql gets it too."""
    rules = copy.deepcopy(dev_mesh()["egress"])
    if kind == "linkerd":
        assert "approximate: namespace" in refused(mesh_with(MESHES[kind], rules))["mesh.egress[0].sources"]
        rules[0]["approximate"] = "namespace"
    spec, st = rendered(mesh_with(MESHES[kind], rules))
    extra = {("bookwarehouse/mysql", "api.bookpublisher.example.com", 443)} if kind == "linkerd" else set()
    assert let_out(kind, spec, st) == ev.intent(spec) | extra


def test_a_service_beside_a_source_gets_nothing_on_istio():
    spec, st = rendered(mesh_with(MESHES["istio-sidecar"], dev_mesh()["egress"]))
    assert not {t for t in ev.istio_sidecar(st.objects, st.releases, spec) if t[0] == "bookwarehouse/mysql"}
    # even sending straight to the egress gateway, mysql's identity is not admitted
    assert not ev._gateway_allows(st.objects, "cluster.local/ns/bookwarehouse/sa/mysql", 443, None,
                                  "api.bookpublisher.example.com")
    assert ev._gateway_allows(st.objects, "cluster.local/ns/bookwarehouse/sa/bookwarehouse", 443, None,
                              "api.bookpublisher.example.com")


# --- wildcards ----------------------------------------------------------------------------------

WILD = [{"name": "cdn", "hosts": ["*.cdn.example.com"], "ports": [{"port": 443, "protocol": "https"}],
         "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}]}]


@pytest.mark.parametrize("kind", sorted(MESHES))
def test_wildcards_are_refused_unless_allowed_per_rule(kind):
    found = refused(mesh_with(MESHES[kind], WILD))
    assert "allowWildcard" in found["mesh.egress[0].hosts[0]"]


@pytest.mark.parametrize("kind", ["istio-sidecar", "istio-ambient", "linkerd"])
def test_an_allowed_wildcard_is_exactly_that_wildcard(kind):
    rules = copy.deepcopy(WILD)
    rules[0]["allowWildcard"] = True
    if kind == "istio-ambient":  # ambient serves wildcards over HTTP only (tests/test_review10_fidelity.py)
        rules[0]["ports"] = [{"port": 80, "protocol": "http"}]
    port = rules[0]["ports"][0]["port"]
    spec, st = rendered(mesh_with(MESHES[kind], rules))
    assert let_out(kind, spec, st) == {("bookbuyer/bookbuyer", "*.cdn.example.com", port)}
    if kind.startswith("istio"):
        se = find(st.objects, "ServiceEntry", "cdn", "mesh-egress")
        assert se["metadata"]["annotations"] == {egress.ALLOW_WILDCARD: "true"}
        assert se["spec"]["resolution"] == ("DYNAMIC_DNS" if kind == "istio-ambient" else "NONE")
    if kind == "istio-sidecar":  # the gateway must resolve each name: wildcards leave from the sidecar
        assert not [o for o in st.objects if o["kind"] == "VirtualService"]
        assert not [r for r in st.releases if r.name == egress.EGRESS_GATEWAY]


# --- the Istio egress gateway -------------------------------------------------------------------

ORIGINATE = [{"name": "orders", "hosts": ["orders.example.com"],
              "ports": [{"port": 443, "protocol": "http", "tlsOrigination": {"appPort": 80}}],
              "sources": [{"service": "bookstore", "namespace": "bookstore"}],
              "credential": {"header": "X-Api-Key", "secretConfig": "ordersApiKey"}},
             {"name": "ledger-db", "hosts": ["db.ledger.example.com"],
              "ports": [{"port": 27017, "protocol": "tcp",
                         "tlsOrigination": {"appPort": 27018, "mode": "MUTUAL", "credentialName": "ledger-client"}}],
              "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}]}]


def test_egress_gateway_release_is_a_clusterip_gateway_chart():
    spec, st = rendered(mesh_with(MESHES["istio-sidecar"]))
    (rel,) = [r for r in st.releases if r.name == egress.EGRESS_GATEWAY]
    assert (rel.namespace, rel.chart, rel.repository, rel.version, rel.concern) == (
        "mesh-egress", "gateway", "https://istio-release.storage.googleapis.com/charts", "1.30.3", "egress")
    assert rel.depends_on == ("istiod",)
    assert rel.values["service"]["type"] == "ClusterIP"
    assert [(p["name"], p["port"]) for p in rel.values["service"]["ports"]] == [
        ("status-port", 15021), ("http2-80", 80), ("tls-443", 443), ("tls-8443", 8443)]
    # the hop from the sidecars is mutual TLS with the destination host as SNI
    dr = find(st.objects, "DestinationRule", "istio-egressgateway", "mesh-egress")
    assert dr["spec"]["host"] == "istio-egressgateway.mesh-egress.svc.cluster.local"
    assert {s["name"] for s in dr["spec"]["subsets"]} == {"catalog", "ratings-0", "ratings-1"}
    assert all(p["tls"]["mode"] == "ISTIO_MUTUAL" for s in dr["spec"]["subsets"]
               for p in s["trafficPolicy"]["portLevelSettings"])
    gw = find(st.objects, "Gateway", "ratings", "mesh-egress")
    assert {(s["port"]["number"], s["port"]["protocol"], s["hosts"][0]) for s in gw["spec"]["servers"]} == {
        (80, "HTTPS", "ratings.example.com"), (8443, "TLS", "ratings.example.com"),
        (80, "HTTPS", "ratings-eu.example.com"), (8443, "TLS", "ratings-eu.example.com")}
    ap = find(st.objects, "AuthorizationPolicy", "ratings", "mesh-egress")
    assert ap["spec"]["rules"][1]["when"] == [{"key": "connection.sni",
                                               "values": ["ratings.example.com", "ratings-eu.example.com"]}]


def test_revisioned_data_plane_runs_the_gateway_at_its_revision():
    backend = {"type": "istio", "istio": {"dataPlane": "sidecar", "revision": "1-30"}}
    _, st = rendered(mesh_with(backend))
    (rel,) = [r for r in st.releases if r.name == egress.EGRESS_GATEWAY]
    assert rel.values["revision"] == "1-30"


@pytest.mark.parametrize("kind", ["istio-sidecar", "istio-ambient"])
def test_tls_origination_on_both_istio_data_planes(kind):
    rules = copy.deepcopy(ORIGINATE)
    if kind == "istio-ambient":
        del rules[0]["credential"]
    spec, st = rendered(mesh_with(MESHES[kind], rules))
    assert let_out(kind, spec, st) == ev.intent(spec) == {
        ("bookstore/bookstore", "orders.example.com", 443), ("bookbuyer/bookbuyer", "db.ledger.example.com", 27017)}
    se = find(st.objects, "ServiceEntry", "orders", "mesh-egress")
    assert se["spec"]["ports"] == [{"number": 80, "name": "http-80", "protocol": "HTTP", "targetPort": 443}]
    dr = find(st.objects, "DestinationRule", "orders-tls-origination", "mesh-egress")
    assert dr["spec"]["exportTo"] == ["."]  # the gateway or waypoint originates, never the application
    assert dr["spec"]["trafficPolicy"]["portLevelSettings"] == [
        {"port": {"number": 80}, "tls": {"mode": "SIMPLE", "sni": "orders.example.com"}}]
    mtls = find(st.objects, "DestinationRule", "ledger-db-tls-origination", "mesh-egress")
    assert mtls["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"] == {
        "mode": "MUTUAL", "sni": "db.ledger.example.com", "credentialName": "ledger-client"}


def test_credential_is_injected_at_the_gateway_from_a_mounted_secret():
    spec, st = rendered(mesh_with(MESHES["istio-sidecar"], ORIGINATE))
    secret = find(st.objects, "Secret", "orders-credential", "mesh-egress")
    assert secret["stringData"] == {"credential": Slot("config", "ordersApiKey", None, secret=True)}
    sds = yaml.safe_load(find(st.objects, "ConfigMap", "orders-credential-sds", "mesh-egress")["data"]["sds.yaml"])
    assert sds["resources"][0]["generic_secret"] == {
        "secret": {"filename": "/etc/mesh-egress/credentials/orders/credential"}}
    ef = find(st.objects, "EnvoyFilter", "orders-credential", "mesh-egress")
    assert ef["apiVersion"] == "networking.istio.io/v1alpha3"
    assert ef["spec"]["workloadSelector"] == {"labels": {"istio": "egressgateway"}}
    (patch,) = ef["spec"]["configPatches"]
    assert patch["match"]["listener"]["portNumber"] == 80
    assert patch["match"]["listener"]["filterChain"]["sni"] == "orders.example.com"
    assert patch["patch"]["operation"] == "INSERT_BEFORE"
    injector = patch["patch"]["value"]["typed_config"]
    assert injector["overwrite"] is True
    generic = injector["credential"]["typed_config"]
    assert generic["header"] == "X-Api-Key"
    assert generic["credential"]["sds_config"]["path_config_source"] == {
        "path": "/etc/mesh-egress/credentials/orders/sds.yaml",
        "watched_directory": {"path": "/etc/mesh-egress/credentials/orders"}}
    (rel,) = [r for r in st.releases if r.name == egress.EGRESS_GATEWAY]
    (vol,) = rel.values["volumes"]
    assert [s.get("secret", s.get("configMap"))["name"] for s in vol["projected"]["sources"]] == [
        "orders-credential", "orders-credential-sds"]
    assert rel.values["volumeMounts"] == [{"name": vol["name"], "mountPath": "/etc/mesh-egress/credentials/orders",
                                           "readOnly": True}]
    # only the Secret carries the value (a deploy-time slot); no custom resource or release does
    holders = [o["kind"] for o in st.objects for s in iter_slots(o) if s.source == "config"]
    assert holders == ["Secret"]
    assert not [s for r in st.releases for s in iter_slots(r.values) if s.source == "config"]


@pytest.mark.parametrize("kind,where", [
    ("istio-ambient", "mesh.egress[0].credential"),
    ("linkerd", "mesh.egress[0].credential"),
    ("osm", "mesh.egress[0].credential")])
def test_credential_is_refused_where_the_mesh_cannot_inject(kind, where):
    assert where in refused(mesh_with(MESHES[kind], ORIGINATE[:1]))


@pytest.mark.parametrize("kind", ["linkerd", "osm"])
def test_linkerd_and_osm_refuse_tls_origination_and_tcp(kind):
    rules = copy.deepcopy(ORIGINATE)
    del rules[0]["credential"]
    found = refused(mesh_with(MESHES[kind], rules))
    assert "cannot originate TLS" in found["mesh.egress[0].ports[0].tlsOrigination"]
    tcp = [{"name": "db", "hosts": ["db.example.com"], "ports": [{"port": 5432, "protocol": "tcp"}],
            "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}]}]
    assert "mesh.egress[0].ports[0]" in refused(mesh_with(MESHES[kind], tcp))


def test_bad_egress_input_names_the_field_and_the_fix():
    rules = copy.deepcopy(INTENT) + [
        {"name": "again", "hosts": ["api.catalog.example.com"], "ports": [{"port": 80, "protocol": "http"}],
         "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}]},
        {"name": "tlsy", "hosts": ["t.example.com"],
         "ports": [{"port": 443, "protocol": "https", "tlsOrigination": {}},
                   {"port": 444, "protocol": "http", "tlsOrigination": {"appPort": 80, "mode": "MUTUAL"}},
                   {"port": 80, "protocol": "http"}],
         "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}],
         "credential": {"secretConfig": "k"}}]
    found = refused(mesh_with(MESHES["istio-sidecar"], rules))
    assert "one rule" in found["mesh.egress[2].hosts[0]"]
    assert "already speaks TLS" in found["mesh.egress[3].ports[0].tlsOrigination"]
    assert "used twice" in found["mesh.egress[3].ports[1].tlsOrigination.appPort"]
    assert "tls.crt" in found["mesh.egress[3].ports[1].tlsOrigination.credentialName"]
    assert "443/https" in found["mesh.egress[3].credential"]


def test_istio_refuses_reserved_and_clashing_gateway_ports():
    rules = [{"name": "a", "hosts": ["a.example.com"], "ports": [{"port": 15020, "protocol": "http"}],
              "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}]}]
    assert "reserved" in refused(mesh_with(MESHES["istio-sidecar"], rules))["mesh.egress[0].ports[0]"]
    rules = [{"name": "a", "hosts": ["a.example.com"], "ports": [{"port": 9000, "protocol": "http"}],
              "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}]},
             {"name": "b", "hosts": ["b.example.com"], "ports": [{"port": 9000, "protocol": "tls"}],
              "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}]}]
    assert "one protocol per port" in refused(mesh_with(MESHES["istio-sidecar"], rules))["mesh.egress[1].ports[0]"]


# --- the shipped stacks, secrets and outputs ----------------------------------------------------

def test_prod_keeps_the_api_key_out_of_render_output(tmp_path):
    states = render_mesh(load_stack("prod", root=ROOT))
    for include in (False, True):
        out = tmp_path / str(include)
        write_tree(states, out, include_secrets=include)
        text = "\n".join(p.read_text() for p in out.rglob("*.yaml"))
        assert TEST_SECRET not in text and "Bearer" not in text
        # a deploy-time value: kept apart from what kubectl apply -f DIR reads (render.DEPLOY_TIME_DIR)
        secret = yaml.safe_load((out / "prod-aws" / "deploy-time" /
                                 "mesh-egress--secret--book-publisher-orders-credential.yaml").read_text())
        assert secret["stringData"] == {"credential": "$(deploy-time:config/bookPublisherApiKey)"}


def test_prod_intent_table_and_what_leaves():
    spec = load_stack("prod", root=ROOT).spec
    assert egress.allowed_egress(spec) == [
        ("bookwarehouse/bookwarehouse", "api.bookpublisher.example.com", "https", 443),
        ("bookwarehouse/bookwarehouse", "orders.bookpublisher.example.com", "http+tls", 443)]
    for cluster, st in render_mesh(load_stack("prod", root=ROOT)).items():
        assert ev.istio_sidecar(st.objects, st.releases, spec) == ev.intent(spec), cluster


def test_program_registers_the_api_key_as_a_secret_and_only_there():
    regs = run_program(stack_config("prod"), "prod")
    creds = [r for r in regs if r.type == "kubernetes:core/v1:Secret"
             and r.inputs["metadata"]["name"] == "book-publisher-orders-credential"]
    assert len(creds) == 3
    for r in creds:
        assert r.inputs["stringData"] == {"credential": TEST_SECRET}
        assert any(p.startswith("stringData") for p in r.secret_inputs)
        assert {"stringData", "data"} <= set(r.additional_secret_outputs)
    assert not [r.name for r in regs if r not in creds and TEST_SECRET in repr(r.inputs)]
    # the egress gateway release is installed by EgressRules, after its namespace and istiod
    urn = {r.urn: r for r in regs}
    gw = [r for r in regs if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["name"] == "istio-egressgateway"]
    assert len(gw) == 3
    for r in gw:
        assert urn[r.parent].type == "mesh:index:EgressRules"
        deps = [urn[d] for d in r.dependencies if d in urn]
        assert any(d.type == "kubernetes:core/v1:NamespacePatch" and d.inputs["metadata"]["name"] == "mesh-egress"
                   for d in deps)
        assert any(d.type == "kubernetes:helm.sh/v3:Release" and d.inputs["chart"] == "istiod" for d in deps)


def test_egress_summary_for_outputs():
    spec = load_stack("prod", root=ROOT).spec
    summary = egress.egress_summary(spec, "prod-aws")
    assert summary["enforcedBy"] == "istio-egressgateway"
    assert [(r["name"], r["via"], r["ports"]) for r in summary["rules"]] == [
        ("book-publisher-api", "mesh-egress/istio-egressgateway", ["https:443"]),
        ("book-publisher-orders", "mesh-egress/istio-egressgateway", ["http+tls:443"])]
    assert egress.egress_summary(load_stack("dev", root=ROOT).spec, "dev")["enforcedBy"] == "egress-waypoint"


@pytest.mark.skipif(not TOOLS.is_dir(), reason="../shared/tools is not beside the project")
@pytest.mark.parametrize("kind", sorted(MESHES))
def test_rendered_egress_passes_the_upstream_checks(kind, tmp_path):
    rules = copy.deepcopy(INTENT)
    if kind.startswith("istio"):
        rules += copy.deepcopy(ORIGINATE)
        if kind == "istio-ambient":
            del rules[-2]["credential"]
    _, st = rendered(mesh_with(MESHES[kind], rules))
    write_tree({"dev": st}, tmp_path / "out")
    profile = kind.split("-")[0]
    # the Gateway API channel the cluster installs (Linkerd: experimental, for TLSRoute v1alpha2)
    channel = channel_of_url(st.remote_manifests[0].url) if st.remote_manifests else "standard"
    v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--profile", profile, "--gateway-api", channel,
                        str(tmp_path / "out" / "dev")], capture_output=True, text=True)
    assert v.returncode == 0 and " 0 invalid" in v.stdout.splitlines()[-1], v.stdout[-3000:]
    h = subprocess.run([str(TOOLS / "check-helm-values"), str(tmp_path / "out")], capture_output=True, text=True)
    assert h.returncode == 0, h.stdout[-3000:]


def test_the_evaluators_see_tampering():
    """The reading is not vacuous: widening visibility alone lets nothing new out (the gateway
    still checks identities), and narrowing the gateway policy takes exactly that source away."""
    spec, st = rendered(mesh_with(MESHES["istio-sidecar"]))
    objects = copy.deepcopy(st.objects)
    for o in objects:
        if o["kind"] in ("ServiceEntry", "VirtualService"):
            o["spec"]["exportTo"] = ["*"]
    assert ev.istio_sidecar(objects, st.releases, spec) == ev.intent(spec)
    ap = find(objects, "AuthorizationPolicy", "ratings", "mesh-egress")
    for rule in ap["spec"]["rules"]:
        rule["from"][0]["source"]["principals"].remove("cluster.local/ns/bookbuyer/sa/bookbuyer")
    assert ev.istio_sidecar(objects, st.releases, spec) == {t for t in ev.intent(spec)
                                               if not (t[0] == "bookbuyer/bookbuyer" and t[1].startswith("ratings"))}
    ambient_spec, amb = rendered(mesh_with(MESHES["istio-ambient"]))
    objects = copy.deepcopy(amb.objects)
    find(objects, "AuthorizationPolicy", "catalog", "mesh-egress")["spec"]["rules"][0]["to"][0]["operation"]["ports"] = ["1"]
    assert ("bookbuyer/bookbuyer", "api.catalog.example.com", 443) not in ev.istio_ambient(objects, ambient_spec)
