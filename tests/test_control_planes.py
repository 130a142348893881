"""Control planes per backend: Linkerd and OSM releases, namespaces and CA wiring; the Gateway API
CRDs where a backend needs them; per-cloud load-balancer settings for east-west gateways; Istio
locality failover; what a backend cannot do is refused at validation."""
from __future__ import annotations

import types

import pytest

from mesh_components.core import clouds
from mesh_components.meshes import linkerd, osm
from mesh_components.core.ca import slot_material, ca_helm_values
from mesh_components.spec.errors import SpecError
from mesh_components.core.render import CONTROL_PLANES, POLICIES, gateway_api_crds
from mesh_components.spec import GATEWAY_API_VERSION, EastWestGateway, load_mesh, load_stack

from cp_helpers import by_type, find, program, release, render, stack_mesh, with_clusters, with_static_east_west
from program_harness import FAKE_KUBECONFIG, ROOT


@pytest.fixture(autouse=True)
def kube_home(tmp_path, monkeypatch):
    """~/.kube/config for the osm stack's file kubeconfig."""
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(FAKE_KUBECONFIG)
    monkeypatch.setenv("HOME", str(tmp_path))


def problems(mesh) -> dict[str, str]:
    with pytest.raises(SpecError) as err:
        load_mesh(mesh, base_dir=ROOT)
    return dict(err.value.problems)


def test_every_backend_is_registered():
    assert set(CONTROL_PLANES) == set(POLICIES) == {"istio", "linkerd", "osm"}
    assert CONTROL_PLANES["linkerd"] is linkerd and CONTROL_PLANES["osm"] is osm


# ---------------------------------------------------------------------------------------------
# Linkerd


def test_linkerd_releases_in_install_order_with_the_mesh_ca():
    spec = load_stack("linkerd", root=ROOT).spec
    cluster = spec.clusters[0]
    ca_values = ca_helm_values("linkerd", slot_material(cluster.name), multi_root=False)
    objects, releases = linkerd.control_plane(spec, cluster, ca_values=ca_values)
    assert [(r["name"], r["namespace"], r["depends_on"]) for r in releases] == [
        ("linkerd-crds", "linkerd", []),
        ("linkerd-control-plane", "linkerd", ["linkerd-crds"]),
        ("linkerd-multicluster", "linkerd-multicluster", ["linkerd-control-plane"])]
    assert {r["version"] for r in releases} == {"2026.8.3"}
    assert {r["repository"] for r in releases} == {"https://helm.linkerd.io/edge"}
    cp = releases[1]["values"]
    assert cp["identityTrustDomain"] == "cluster.local"
    assert cp["identity"] == {"externalCA": True, "issuer": {"scheme": "kubernetes.io/tls"}}
    assert cp["identityTrustAnchorsPEM"] == slot_material(cluster.name).trust_bundle_pem
    ns = find(objects, "Namespace", "linkerd")
    assert ns["metadata"]["labels"]["linkerd.io/is-control-plane"] == "true"
    assert ns["metadata"]["annotations"] == {"linkerd.io/inject": "disabled"}
    mcv = releases[2]["values"]
    assert mcv["createNamespaceMetadataJob"] is False and mcv["gateway"]["enabled"] is True
    assert mcv["gateway"]["loadBalancerIP"] == "198.51.100.20"  # gcp takes its static address so


def test_single_cluster_linkerd_has_no_multicluster_parts():
    mesh = stack_mesh("linkerd")
    mesh["clusters"] = [mesh["clusters"][1]]
    st = render(mesh)["linkerd-west"]
    # linkerd-viz: the stack's mesh.telemetry (bundled Prometheus), no multicluster release
    assert [r.name for r in st.releases] == ["linkerd-crds", "linkerd-control-plane", "linkerd-viz"]
    assert st.concerns["multicluster"] == []


def test_linkerd_enrols_namespaces_by_annotation_and_gets_gateway_api_crds():
    st = render(stack_mesh("linkerd"))["linkerd-east"]
    ns = find(st.objects, "Namespace", "bookstore")
    assert ns["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"
    # a policed namespace closes what no Server selects (test_linkerd_default_inbound.py)
    assert ns["metadata"]["annotations"]["config.linkerd.io/default-inbound-policy"] == "deny"
    # the experimental bundle: Linkerd reads TLSRoute/TCPRoute only at v1alpha2 (test_gateway_api_crds.py)
    assert [m.to_dict() for m in st.remote_manifests] == [gateway_api_crds("experimental").to_dict()]
    assert st.remote_manifests[0].url.endswith(f"/{GATEWAY_API_VERSION}/experimental-install.yaml")


def test_linkerd_control_plane_waits_for_the_issuer_and_gateway_api(monkeypatch):
    regs = program(stack_mesh("linkerd"))
    urn = {r.urn: r for r in regs}
    cps = [r for r in by_type(regs, "kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "linkerd-control-plane"]
    assert len(cps) == 2
    for r in cps:
        deps = {urn[d].name for d in r.dependencies if d in urn}
        # resource names are <component>:<namespace>/<name>, the kind in the type token (components.resource_name)
        deps_typed = {(urn[d].type, urn[d].name.rpartition(":")[2]) for d in r.dependencies if d in urn}
        assert ("kubernetes:core/v1:Secret", "linkerd/linkerd-identity-issuer") in deps_typed, deps
        assert ("kubernetes:core/v1:ConfigMap", "linkerd/linkerd-identity-trust-roots") in deps_typed, deps
        assert any(urn[d].type == "kubernetes:yaml/v2:ConfigFile" for d in r.dependencies if d in urn)
    issuers = [r for r in by_type(regs, "kubernetes:core/v1:Secret")
               if r.inputs["metadata"]["name"] == "linkerd-identity-issuer"]
    assert len(issuers) == 2 and all("stringData" in r.secret_inputs for r in issuers)
    links = by_type(regs, "kubernetes:multicluster.linkerd.io/v1alpha3:Link")
    for r in links:  # the Link CRD comes with the linkerd-multicluster release
        assert any(urn[d].inputs.get("chart") == "linkerd-multicluster" for d in r.dependencies if d in urn)


# ---------------------------------------------------------------------------------------------
# OSM


def test_osm_release_namespaces_and_ca():
    spec = load_stack("osm", root=ROOT).spec
    assert spec.key_algorithm() == "RSA_2048"
    st = render(stack_mesh("osm"))["osm"]
    rel = release(st, "osm")
    assert (rel.namespace, rel.chart, rel.version, rel.repository) == (
        "osm-system", "osm", "1.2.4", "https://openservicemesh.github.io/osm")
    assert rel.values["osm"] == {"meshName": "bookstore-osm", "trustDomain": "cluster.local",
                                 "enablePermissiveTrafficPolicy": False, "enableEgress": False,
                                 "caBundleSecretName": "osm-ca-bundle", "certificateProvider": {"kind": "tresor"},
                                 # the stack's mesh.telemetry (telemetry.osm.release_values): operator mode
                                 # (the chart's deployPrometheus false stays unwritten), Zipkin tracing (only
                                 # what differs from the chart's osm.tracing, values.yaml@v1.2.4:335-343)
                                 "tracing": {"enable": True, "address": "zipkin.observability.svc.cluster.local"}}
    ns = find(st.objects, "Namespace", "bookstore")
    assert ns["metadata"]["labels"]["openservicemesh.io/monitored-by"] == "bookstore-osm"
    assert ns["metadata"]["annotations"] == {"openservicemesh.io/sidecar-injection": "enabled",
                                             "openservicemesh.io/metrics": "enabled",  # mesh.telemetry.metrics
                                             "mesh-components.io/patch": "true"}  # the app owns it: a patch
    assert find(st.objects, "Namespace", "osm-system")["metadata"]["labels"]["openservicemesh.io/ignore"] == "true"
    assert find(st.objects, "Secret", "osm-ca-bundle", "osm-system")["stringData"]["private.key"].secret
    assert st.remote_manifests == []
    assert [m for m in st.objects if m["apiVersion"].startswith("gateway.networking.k8s.io")] == []


def test_osm_smi_resources_wait_for_the_release_that_installs_their_crds():
    regs = program(stack_mesh("osm"))
    urn = {r.urn: r for r in regs}
    crs = [r for r in regs if ".smi-spec.io/" in r.type or ".openservicemesh.io/" in r.type]
    assert crs
    for r in crs:
        assert any(urn[d].inputs.get("chart") == "osm" for d in r.dependencies if d in urn), r.name


@pytest.mark.parametrize("backend,fragment", [("osm", "OSM has no locality"), ("linkerd", "HAZL")])
def test_what_a_backend_cannot_do_is_refused(backend, fragment):
    mesh = stack_mesh("osm")
    mesh["backend"] = {"type": backend, "localityFailover": {}}
    assert fragment in problems(mesh)["mesh.backend.localityFailover"]
    mesh = stack_mesh("osm")
    mesh["clusters"].append({"name": "osm2", "cloud": "onprem", "region": "x", "kubeconfig": {"env": "X"}})
    assert "one cluster" in problems(mesh)["mesh.clusters"]
    mesh = stack_mesh("osm")
    mesh["backend"]["istio"] = {"revision": "1-30"}
    assert "Istio options given" in problems(mesh)["mesh.backend.istio"]


# ---------------------------------------------------------------------------------------------
# Gateway API CRDs: one pinned version, where needed


@pytest.mark.parametrize("stack,channel", [("dev", "standard"), ("staging", "standard"), ("linkerd", "experimental"),
                                           ("osm", None)])
def test_gateway_api_crds_where_a_backend_needs_them(stack, channel):
    for st in render(stack_mesh(stack)).values():
        urls = {m.url for m in st.remote_manifests}
        assert urls == ({gateway_api_crds(channel).url} if channel else set())


# ---------------------------------------------------------------------------------------------
# clouds


def cluster(cloud, internal=False, **ew):
    return types.SimpleNamespace(cloud=cloud, internal_load_balancers=internal,
                                 east_west_gateway=EastWestGateway(**ew) if ew else None)


def test_east_west_load_balancer_settings_per_cloud():
    ann, ip = clouds.east_west_service(cluster("aws", addresses=["203.0.113.1", "203.0.113.2"],
                                               subnets=["subnet-a", "subnet-b"],
                                               eip_allocations=["eipalloc-a", "eipalloc-b"]))
    assert ip is None
    assert ann["service.beta.kubernetes.io/aws-load-balancer-eip-allocations"] == "eipalloc-a,eipalloc-b"
    assert ann["service.beta.kubernetes.io/aws-load-balancer-subnets"] == "subnet-a,subnet-b"
    assert ann["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
    ann, _ = clouds.east_west_service(cluster("aws", True, addresses=["10.0.1.5"], subnets=["subnet-a"]))
    assert ann["service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses"] == "10.0.1.5"
    assert ann["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    assert clouds.east_west_service(cluster("azure", True, addresses=["10.1.0.9"])) == (
        {"service.beta.kubernetes.io/azure-load-balancer-internal": "true",
         "service.beta.kubernetes.io/azure-load-balancer-ipv4": "10.1.0.9"}, None)
    assert clouds.east_west_service(cluster("gcp", True, addresses=["10.2.0.9"])) == (
        {"networking.gke.io/load-balancer-type": "Internal"}, "10.2.0.9")
    assert clouds.east_west_service(cluster("onprem")) == ({}, None)


def test_static_addresses_reach_istio_gateways_and_mesh_networks():
    st = render(stack_mesh("prod"))
    aws = release(st["prod-aws"], "istio-eastwestgateway").values["service"]
    assert "service.beta.kubernetes.io/aws-load-balancer-eip-allocations" in aws["annotations"]
    for s in st.values():  # every istiod routes to the AWS gateway's static addresses
        networks = release(s, "istiod").values["global"]["meshNetworks"]
        assert [g["address"] for g in networks["aws-us-east-1"]["gateways"]] == ["203.0.113.10", "203.0.113.11"]
    mesh = with_clusters(stack_mesh("dev"), 2)  # ambient, gcp first: Gateway API addresses
    mesh["clusters"][0]["eastWestGateway"] = {"addresses": ["198.51.100.30"]}
    mesh = with_static_east_west(mesh)  # c2 too: ambient egress names it (egress.ambient_egress_fences)
    gw = find(render(mesh)["c1"].objects, "Gateway", "istio-eastwestgateway", "istio-system")
    assert gw["spec"]["addresses"] == [{"type": "IPAddress", "value": "198.51.100.30"}]


# ---------------------------------------------------------------------------------------------
# Istio locality failover


def test_locality_failover_per_service_and_mesh_wide():
    mesh = stack_mesh("prod")
    mesh["backend"]["localityFailover"] = {"failover": [{"from": "us-east-1", "to": "us-central1"}],
                                           "consecutive5xxErrors": 3}
    st = render(mesh)["prod-gcp"]
    dr = find(st.objects, "DestinationRule", "bookstore-locality", "bookstore")
    assert dr["spec"] == {"host": "bookstore.bookstore.svc.cluster.local", "trafficPolicy": {
        "loadBalancer": {"localityLbSetting": {"enabled": True,
                                               "failover": [{"from": "us-east-1", "to": "us-central1"}]}},
        "outlierDetection": {"consecutive5xxErrors": 3, "interval": "10s", "baseEjectionTime": "30s"}}}
    assert len([o for o in st.concerns["control-plane"] if o["kind"] == "DestinationRule"]) == len(mesh["services"])
    assert release(st, "istiod").values["meshConfig"]["localityLbSetting"] == {
        "enabled": True, "failover": [{"from": "us-east-1", "to": "us-central1"}]}
    mesh["backend"]["localityFailover"]["services"] = [{"service": "bookstore", "namespace": "bookstore"}]
    st = render(mesh)["prod-gcp"]
    assert [o["metadata"]["name"] for o in st.concerns["control-plane"] if o["kind"] == "DestinationRule"] == [
        "bookstore-locality"]
    assert "localityLbSetting" not in release(st, "istiod").values["meshConfig"]


def test_locality_failover_refusals():
    mesh = stack_mesh("prod")
    mesh["backend"]["localityFailover"] = {"failover": [{"from": "us-east-1", "to": "mars-1"}]}
    assert "unknown region 'mars-1'" in problems(mesh)["mesh.backend.localityFailover.failover[0].to"]
    mesh = stack_mesh("dev")
    mesh["backend"]["localityFailover"] = {}
    assert "waypoint" in problems(mesh)["mesh.backend.localityFailover"]
    mesh = stack_mesh("prod")
    mesh["backend"]["localityFailover"] = {}
    mesh["services"][2]["resilience"] = {"outlierDetection": {}}
    assert "one per host" in problems(mesh)["mesh.services[2].resilience"]
