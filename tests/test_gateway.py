"""North-south ingress through Envoy: Istio's Gateway API implementation or Envoy Gateway, chosen
in the spec, for every mesh; cert-manager certificates; the gateway admitted by the mesh's access
policy under the identity its proxies really run as; load-balancer settings per cloud; addresses
in the stack outputs; the upstream schema and chart checks."""
from __future__ import annotations

import subprocess

import pulumi
import pytest

from mesh_components.core import envoy_gateway, gateway
from mesh_components.components import gateway_addresses
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.render import RELEASES_DIR, render_mesh, write_tree
from mesh_components.core.slots import Slot
from mesh_components.spec import load_mesh, load_stack

from cp_helpers import stack_mesh
from program_harness import FAKE_KUBECONFIG, ROOT, Mocks, run_program, stack_config
from test_policy import find

TOOLS = ROOT.parent / "shared" / "tools"
EG_PRINCIPAL = "cluster.local/ns/envoy-gateway-system/sa/ingress-envoy"
LINKERD_EG = "ingress-envoy.envoy-gateway-system.serviceaccount.identity.linkerd.cluster.local"


def render(mesh: dict, cluster: str | None = None):
    states = render_mesh(load_mesh(mesh, base_dir=ROOT))
    return states[cluster] if cluster else next(iter(states.values()))


def refused(mesh: dict) -> dict[str, str]:
    with pytest.raises((SpecError, TranslationError)) as err:
        render(mesh)
    return dict(err.value.problems)


def with_ingress(stack: str, **ingress) -> dict:
    mesh = stack_mesh(stack)
    mesh["ingress"] = {"hosts": ["bookstore.example.com"],
                       "routes": [{"pathPrefix": "/", "service": "bookstore", "namespace": "bookstore", "port": 14001}],
                       "tls": {"secretName": "bookstore-tls"}, **ingress}
    return mesh


def linkerd_mesh(**ingress) -> dict:
    # "/" would overlap bookbuyer's routes on bookstore, which Linkerd refuses (see below)
    mesh = with_ingress("linkerd", **ingress)
    mesh["ingress"]["routes"][0]["pathPrefix"] = "/catalog"
    return mesh


# --- which implementation -----------------------------------------------------------------------

def test_implementation_defaults_per_backend():
    assert gateway.implementation(load_stack("prod", root=ROOT).spec) == "istio"
    assert gateway.implementation(load_stack("staging", root=ROOT).spec) == "envoy-gateway"
    for stack in ("linkerd", "osm"):
        spec = load_mesh(with_ingress(stack), base_dir=ROOT).spec
        assert gateway.implementation(spec) == "envoy-gateway"
    assert gateway.gateway_identity(load_stack("prod", root=ROOT).spec) == ("mesh-ingress", "ingress-istio")
    assert gateway.gateway_identity(load_stack("staging", root=ROOT).spec) == ("envoy-gateway-system", "ingress-envoy")
    # OSM admits the gateway with IngressBackends, not by identity
    assert gateway.gateway_identity(load_mesh(with_ingress("osm"), base_dir=ROOT).spec) is None


def test_istio_implementation_is_refused_for_linkerd_and_osm():
    for stack in ("linkerd", "osm"):
        found = refused(with_ingress(stack, implementation="istio"))
        assert "use implementation: envoy-gateway" in found["mesh.ingress.implementation"]


def test_istio_implementation_in_prod_gets_cloud_annotations_and_a_redirect():
    st = render_mesh(load_stack("prod", root=ROOT))["prod-aws"]
    gw = find(st.objects, "Gateway", "ingress", "mesh-ingress")
    assert gw["spec"]["gatewayClassName"] == "istio"
    assert gw["spec"]["infrastructure"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"] == "external"
    redirect = find(st.objects, "HTTPRoute", "ingress-https-redirect", "mesh-ingress")
    assert redirect["spec"]["parentRefs"] == [{"name": "ingress", "sectionName": "http-0"}]
    assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"] == {"scheme": "https", "statusCode": 301}
    route = find(st.objects, "HTTPRoute", "ingress-bookstore-bookstore", "mesh-ingress")
    assert route["spec"]["parentRefs"] == [{"name": "ingress", "sectionName": "https-0"}]
    assert not [r for r in st.releases if r.name in ("eg", "cert-manager")]


# --- Envoy Gateway on Istio (staging: sidecars, revision 1-30, cert-manager ACME) ----------------

def test_staging_envoy_gateway_with_sidecars_and_acme():
    st = render_mesh(load_stack("staging", root=ROOT))["staging-use1"]
    eg = next(r for r in st.releases if r.name == "eg")
    assert (eg.namespace, eg.repository, eg.chart, eg.version, eg.concern) == (
        "envoy-gateway-system", "oci://docker.io/envoyproxy", "gateway-helm", "v1.9.0", "gateway")
    cls = find(st.objects, "GatewayClass", "envoy-gateway")
    assert cls["spec"] == {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}
    gw = find(st.objects, "Gateway", "ingress", "mesh-ingress")
    assert gw["spec"]["gatewayClassName"] == "envoy-gateway"
    assert gw["spec"]["infrastructure"] == {"parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy",
                                                              "name": "ingress"}}
    proxy = find(st.objects, "EnvoyProxy", "ingress", "mesh-ingress")["spec"]
    assert proxy["routingType"] == "Service"
    kube = proxy["provider"]["kubernetes"]
    assert kube["envoyDeployment"]["name"] == kube["envoyService"]["name"] == kube["envoyServiceAccount"]["name"] \
        == "ingress-envoy"
    assert kube["envoyDeployment"]["pod"]["labels"] == {"istio.io/rev": "1-30"}
    annotations = kube["envoyDeployment"]["pod"]["annotations"]
    assert annotations["traffic.sidecar.istio.io/includeInboundPorts"] == ""
    assert annotations["traffic.sidecar.istio.io/excludeOutboundPorts"] == "18000"
    assert kube["envoyService"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    # the gateway is a source like any other: admitted under the proxies' identity, nothing else
    ap = find(st.objects, "AuthorizationPolicy", "ingress-route-0-bookstore", "bookstore")
    assert ap["spec"]["rules"][0]["from"] == [{"source": {"principals": [EG_PRINCIPAL]}}]
    # cert-manager answers DNS-01 through Route 53 (two clusters serve the host: HTTP-01 would pass in
    # one only, tests/test_ingress_edge.py) and writes the listener's Secret
    cm = next(r for r in st.releases if r.name == "cert-manager")
    assert (cm.namespace, cm.repository, cm.version) == ("cert-manager", "oci://quay.io/jetstack/charts", "v1.21.1")
    assert cm.values["config"]["gatewayAPI"] == {"enabled": True} and cm.values["crds"] == {"enabled": True}
    issuer = find(st.objects, "ClusterIssuer", "letsencrypt-staging")["spec"]["acme"]
    assert issuer["server"] == "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert issuer["solvers"] == [{"dns01": {"route53": {
        "region": "us-east-1", "accessKeyIDSecretRef": {"name": "route53-credentials", "key": "access-key-id"},
        "secretAccessKeySecretRef": {"name": "route53-credentials", "key": "secret-access-key"}}}}]
    cert = find(st.objects, "Certificate", "bookstore-staging-tls", "mesh-ingress")["spec"]
    assert cert == {"secretName": "bookstore-staging-tls", "dnsNames": ["bookstore.staging.example.com"],
                    "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "letsencrypt-staging"}}
    listener = next(ln for ln in gw["spec"]["listeners"] if ln["name"] == "https-0")
    assert listener["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "bookstore-staging-tls"}]


@pytest.mark.parametrize("cloud,internal,key", [("azure", True, "service.beta.kubernetes.io/azure-load-balancer-internal"),
                                                ("gcp", True, "networking.gke.io/load-balancer-type"),
                                                ("onprem", False, None)])
def test_load_balancer_settings_per_cloud_go_on_the_envoy_proxy(cloud, internal, key):
    mesh = with_ingress("dev", implementation="envoy-gateway")
    mesh["clusters"][0].update(cloud=cloud, internalLoadBalancers=internal)
    service = find(render(mesh).objects, "EnvoyProxy", "ingress", "mesh-ingress")["spec"]["provider"]["kubernetes"][
        "envoyService"]
    assert service.get("annotations", {}) == ({key: {"azure": "true", "gcp": "Internal"}[cloud]} if key else {})


# --- Envoy Gateway on ambient, with the mesh CA -------------------------------------------------

def test_ambient_envoy_gateway_with_a_mesh_ca_certificate():
    mesh = with_ingress("dev", implementation="envoy-gateway",
                        tls={"secretName": "bookstore-tls", "issuer": {"name": "mesh-ca", "meshCA": True}})
    st = render(mesh)
    kube = find(st.objects, "EnvoyProxy", "ingress", "mesh-ingress")["spec"]["provider"]["kubernetes"]
    assert kube["envoyDeployment"]["pod"] == {"labels": {"istio.io/dataplane-mode": "ambient"},
                                              "annotations": {"ambient.istio.io/bypass-inbound-capture": "true"}}
    # bookstore's L7 policy lives on its waypoint; the gateway is admitted there by identity
    ap = find(st.objects, "AuthorizationPolicy", "ingress-route-0-bookstore", "bookstore")
    assert ap["spec"]["targetRefs"] == [{"group": "", "kind": "Service", "name": n}  # and its per-version Services
                                        for n in ("bookstore", "bookstore-v1", "bookstore-v2")]
    assert ap["spec"]["rules"][0]["from"] == [{"source": {"principals": [EG_PRINCIPAL]}}]
    secret = find(st.objects, "Secret", "mesh-ca-ca", "mesh-ingress")
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["stringData"]["tls.key"] == Slot("ca", "key_pem", "dev", secret=True)
    assert find(st.objects, "Issuer", "mesh-ca", "mesh-ingress")["spec"] == {"ca": {"secretName": "mesh-ca-ca"}}
    assert find(st.objects, "Certificate", "bookstore-tls", "mesh-ingress")["spec"]["issuerRef"]["kind"] == "Issuer"


def test_issuer_and_name_mistakes_name_the_field():
    mesh = with_ingress("dev", name="x" * 58, tls={"secretName": "t", "issuer": {
        "name": "both", "kind": "ClusterIssuer", "meshCA": True, "acme": {"email": "ops@example.com"}}})
    found = refused(mesh)
    assert "not both" in found["mesh.ingress.tls.issuer"]
    assert "namespaced Issuer" in found["mesh.ingress.tls.issuer.kind"]
    assert "57 characters" in found["mesh.ingress.name"]
    found = refused(with_ingress("dev", tls={"secretName": "t", "issuer": {"name": "le", "acme": {"email": "nope"}}}))
    assert "mesh.ingress.tls.issuer.acme.email" in found


def test_existing_issuer_and_external_cert_manager():
    mesh = with_ingress("dev", certManager="external",
                        tls={"secretName": "t", "issuer": {"name": "corp-ca", "kind": "ClusterIssuer"}})
    st = render(mesh)
    assert not [r for r in st.releases if r.name == "cert-manager"]
    assert not [o for o in st.objects if o["kind"] in ("ClusterIssuer", "Issuer")]
    assert find(st.objects, "Certificate", "t", "mesh-ingress")["spec"]["issuerRef"]["name"] == "corp-ca"


# --- Envoy Gateway on Linkerd and OSM -----------------------------------------------------------

def test_linkerd_envoy_gateway_is_meshed_and_admitted_by_identity():
    st = render(linkerd_mesh(), "linkerd-east")
    pod = find(st.objects, "EnvoyProxy", "ingress", "mesh-ingress")["spec"]["provider"]["kubernetes"][
        "envoyDeployment"]["pod"]
    assert pod == {"annotations": {"config.linkerd.io/skip-inbound-ports": "10080,10443",
                                   "config.linkerd.io/skip-outbound-ports": "18000", "linkerd.io/inject": "enabled"}}
    identities = [o["spec"]["identities"] for o in st.objects if o["kind"] == "MeshTLSAuthentication"
                  and o["metadata"]["namespace"] == "bookstore"]
    assert [LINKERD_EG] in identities
    # the others keep their own routes: nothing admits the gateway beyond /catalog
    assert all(ids == [LINKERD_EG] or LINKERD_EG not in ids for ids in identities)


def test_linkerd_refuses_an_ingress_route_overlapping_other_sources():
    found = refused(with_ingress("linkerd"))
    assert any(path.startswith("mesh.ingress.routes[0]") and "overlaps" in m for path, m in found.items())


def test_osm_envoy_gateway_stays_outside_and_is_admitted_by_ingress_backend():
    st = render(with_ingress("osm"))
    kube = find(st.objects, "EnvoyProxy", "ingress", "mesh-ingress")["spec"]["provider"]["kubernetes"]
    assert "pod" not in kube["envoyDeployment"]
    backend = find(st.objects, "IngressBackend", "ingress-bookstore", "bookstore")
    assert backend["spec"] == {"backends": [{"name": "bookstore", "port": {"number": 14001, "protocol": "http"}}],
                               "sources": [{"kind": "Service", "namespace": "envoy-gateway-system",
                                            "name": "ingress-envoy"}]}
    mesh = with_ingress("osm")
    mesh["ingress"]["routes"] = [{"service": "mysql", "namespace": "bookwarehouse", "port": 3306}]
    assert "route to an http port" in refused(mesh)["mesh.ingress.routes[0].port"]


def test_container_ports_follow_envoy_gateway():
    assert [envoy_gateway.container_port(p) for p in (80, 443, 8080)] == [10080, 10443, 8080]


# --- upstream checks for the variants the stacks do not ship ------------------------------------

VARIANTS = {
    "linkerd": (linkerd_mesh, "linkerd"),
    "osm": (lambda: with_ingress("osm"), "osm"),
    "dev-mesh-ca": (lambda: with_ingress("dev", implementation="envoy-gateway", tls={
        "secretName": "bookstore-tls", "issuer": {"name": "mesh-ca", "meshCA": True}}), "istio"),
}


@pytest.mark.skipif(not TOOLS.is_dir(), reason="../shared/tools is not beside the project")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_envoy_gateway_variants_pass_the_upstream_checks(variant, tmp_path):
    build, profile = VARIANTS[variant]
    out = tmp_path / "out"
    write_tree(render_mesh(load_mesh(build(), base_dir=ROOT)), out)
    for cluster in sorted(p for p in out.iterdir() if p.is_dir()):
        # the Gateway API channel the cluster installs (Linkerd: experimental, mesh_components/core/gateway_api.py)
        channel = "experimental" if "/experimental-install.yaml" in (cluster / RELEASES_DIR / "remote-manifests.yaml").read_text() \
            else "standard"
        v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--profile", profile, "--gateway-api", channel,
                            str(cluster)], capture_output=True, text=True)
        assert v.returncode == 0 and " 0 invalid" in v.stdout.splitlines()[-1], v.stdout[-3000:]
    h = subprocess.run([str(TOOLS / "check-helm-values"), str(out)], capture_output=True, text=True)
    assert h.returncode == 0, h.stdout[-3000:]


# --- Pulumi: ordering and outputs ---------------------------------------------------------------

@pytest.fixture
def staging_env(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGING_USE1_KUBECONFIG", FAKE_KUBECONFIG)
    monkeypatch.setenv("STAGING_USW2_KUBECONFIG", FAKE_KUBECONFIG)


def test_envoy_gateway_component_installs_its_charts_before_their_resources(staging_env):
    regs = run_program(stack_config("staging"), "staging")
    urn = {r.urn: r for r in regs}
    rel = {(r.inputs["name"], r.name.split("-gateway-")[0]): r for r in regs if r.type == "kubernetes:helm.sh/v3:Release"}
    for cluster in ("staging-use1", "staging-usw2"):
        eg = next(r for (n, _), r in rel.items() if n == "eg" and cluster in r.name)
        cm = next(r for (n, _), r in rel.items() if n == "cert-manager" and cluster in r.name)
        assert eg.inputs["chart"] == "oci://docker.io/envoyproxy/gateway-helm" and "repositoryOpts" not in eg.inputs
        assert urn[eg.parent].type == urn[cm.parent].type == "mesh:index:MeshGateway"
        assert any(urn[d].inputs.get("metadata", {}).get("name") == "envoy-gateway-system"
                   for d in eg.dependencies if d in urn)
        proxy = next(r for r in regs if r.type == "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
                     and cluster in r.name)
        assert eg.urn in proxy.dependencies
        cert = next(r for r in regs if r.type == "kubernetes:cert-manager.io/v1:Certificate" and cluster in r.name)
        assert cm.urn in cert.dependencies


class GatewayStatusMocks(Mocks):
    """The harness's mocks, with the Gateway's status as the controller publishes it."""

    def new_resource(self, args):
        rid, outputs = super().new_resource(args)
        if args.typ == "kubernetes:gateway.networking.k8s.io/v1:Gateway":
            outputs = {**outputs, "status": {"addresses": [{"type": "Hostname", "value": "lb-1.elb.example.com"}]}}
        return [rid, outputs]


def test_gateway_addresses_reach_the_stack_outputs(staging_env):
    from mesh_components.components import ServiceMesh

    pulumi.runtime.set_mocks(GatewayStatusMocks(), project="service-mesh", stack="staging", preview=False)
    pulumi.runtime.set_all_config(stack_config("staging"))

    @pulumi.runtime.test
    def check():
        mesh = ServiceMesh("bookstore-staging", load_stack("staging", root=ROOT))
        ingress = mesh.clusters["staging-use1"]["ingress"]
        assert {k: v for k, v in ingress.items() if k != "addresses"} == {
            "implementation": "envoy-gateway", "gateway": "mesh-ingress/ingress",
            "service": "envoy-gateway-system/ingress-envoy", "hosts": ["bookstore.staging.example.com"], "https": True}
        assert mesh.clusters["staging-use1"]["egress"]["enforcedBy"] == "istio-egressgateway"
        return ingress["addresses"].apply(lambda a: assert_equal(a, ["lb-1.elb.example.com"]))

    check()


def assert_equal(a, b):
    assert a == b


def test_gateway_addresses_reads_typed_and_plain_status():
    assert gateway_addresses(None) == []
    assert gateway_addresses({"addresses": [{"value": "203.0.113.9"}, {"value": "203.0.113.9"}]}) == ["203.0.113.9"]


def test_a_stack_of_the_envoy_gateway_type_updates_the_gateway_component_and_its_children_in_place(staging_env):
    """Releases before issue 14 registered each cluster's gateway component as
    ``mesh:index:EnvoyGateway``. A component's type is part of every descendant's URN (pulumi/pulumi
    ``sdk/go/common/resource/urn/urn.go`` ``New``: the parent's qualified type ``$`` the type), so the
    rename to ``MeshGateway`` would replace every gateway object without the component's type alias:
    with it the engine finds the component's old state, and each child's through the parent's alias
    (``pkg/resource/deploy/step_generator.go`` ``generateAliases``/``inheritedChildAlias``)."""
    from cp_helpers import run_recording
    from engine_urns import AliasSpec, before_type_renames, engine_urns, match_old_state

    regs, requests = run_recording(stack_config("staging"), "staging")
    real = engine_urns(regs, "staging")
    below = [r for r in regs if "mesh:index:MeshGateway" in real[r.urn]]
    assert len(below) > 10 and any(r.type == "mesh:index:MeshGateway" for r in below)
    stored = {before_type_renames(u) for u in real.values()}
    assert not {real[r.urn] for r in below} & stored  # every URN below the gateway changed
    found = match_old_state(regs, {r.urn: [AliasSpec.from_proto(a) for a in requests[r.urn].aliases]
                                   for r in regs}, stored, "staging")
    assert {r.name: found[r.urn] for r in below} == {r.name: before_type_renames(real[r.urn]) for r in below}
    # the alias is the type alone: without it nothing below the gateway is found
    bare = match_old_state(regs, {r.urn: [AliasSpec.from_proto(a) for a in requests[r.urn].aliases
                                          if AliasSpec.from_proto(a).type != "mesh:index:EnvoyGateway"]
                                  for r in regs}, stored, "staging")
    assert all(bare[r.urn] is None for r in below)
