"""Multi-cluster wiring: one remote secret (Istio) or credentials + Link (Linkerd) per ordered
cluster pair, built at deploy time from the target's kubeconfig and a token read back from it;
adding or removing a cluster adds or removes exactly its pairs; every cluster runs one mesh
identity; per-cloud static addresses for east-west gateways."""
from __future__ import annotations

import base64

import pytest
import yaml

from mesh_components.core import multicluster as mc
from mesh_components.spec.errors import SpecError
from mesh_components.spec import load_mesh, load_stack

from cp_helpers import (by_type, find, kubeconfig_for, program, release, render, set_kube_env, stack_mesh,
                        with_clusters, with_static_east_west)
from program_harness import ROOT

SECRET = "kubernetes:core/v1:Secret"


def remote_secrets(regs):
    return [r for r in by_type(regs, SECRET) if (r.inputs["metadata"].get("labels") or {}).get("istio/multiCluster")]


def provider_cluster(regs):
    return {f"{p.urn}::{p.name}-id": p.inputs["clusterIdentifier"] for p in by_type(regs, "pulumi:providers:kubernetes")}


def run(monkeypatch, mesh, reads=None):
    set_kube_env(monkeypatch, mesh)
    return program(mesh, reads=reads)


# ---------------------------------------------------------------------------------------------
# pure core


def test_pairs_are_every_ordered_pair_of_distinct_clusters():
    spec = load_mesh(with_clusters(stack_mesh("prod"), 3), base_dir=ROOT).spec
    assert mc.pairs(spec) == [("c1", "c2"), ("c1", "c3"), ("c2", "c1"), ("c2", "c3"), ("c3", "c1"), ("c3", "c2")]
    assert mc.pairs(load_stack("dev", root=ROOT).spec) == []
    assert mc.pairs(load_stack("osm", root=ROOT).spec) == []


def test_istio_objects_hold_slots_for_deploy_time_values():
    states = render(with_clusters(stack_mesh("prod"), 3))
    c1 = states["c1"].concerns["multicluster"]
    secret = find(c1, "Secret", "istio-remote-secret-c2", "istio-system")
    assert secret["metadata"]["labels"]["istio/multiCluster"] == "true"
    assert secret["metadata"]["annotations"] == {"networking.istio.io/cluster": "c2"}
    assert secret["stringData"] == {"c2": mc.reader_kubeconfig_slot("c2", "c1")}
    assert mc.reader_kubeconfig_slot("c2", "c1").placeholder() == "$(deploy-time:cluster/c2/reader_kubeconfig/c1)"
    token = find(c1, "Secret", "istio-reader-token-c3", "istio-system")  # c3 reads c1 with it
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "istio-reader-service-account"}
    assert {o["metadata"]["name"] for o in c1} == {"istio-remote-secret-c2", "istio-remote-secret-c3",
                                                   "istio-reader-token-c2", "istio-reader-token-c3"}


def test_kubeconfig_helpers():
    text = kubeconfig_for("c9").replace("server:", "certificate-authority-data: Q0E=, server:")
    assert mc.server_and_ca(text) == ("https://c9.api.example:6443", "Q0E=")
    with pytest.raises(ValueError, match="no context 'other'"):
        mc.server_and_ca(text, "other")
    built = yaml.safe_load(mc.reader_kubeconfig("c9", "https://c9:6443", "Q0E=", "t0k"))
    assert built["current-context"] == "c9"
    assert built["clusters"][0]["cluster"] == {"server": "https://c9:6443", "certificate-authority-data": "Q0E="}
    assert built["users"][0]["user"] == {"token": "t0k"}
    assert mc.decode_token_secret({"token": base64.b64encode(b"abc").decode(), "ca.crt": "Q0E="}) == ("abc", "Q0E=")
    with pytest.raises(ValueError, match="no token yet"):
        mc.decode_token_secret({})


# ---------------------------------------------------------------------------------------------
# the mocked program: one remote secret per ordered pair


@pytest.mark.parametrize("n", [3, 4])
def test_one_remote_secret_per_ordered_pair_each_reading_its_target(n, monkeypatch):
    mesh = with_clusters(stack_mesh("prod"), n)
    reads = []
    regs = run(monkeypatch, mesh, reads)
    clusters = provider_cluster(regs)
    secrets = remote_secrets(regs)
    assert len(secrets) == n * (n - 1)
    seen = set()
    for r in secrets:
        reader = clusters[r.provider]
        target = r.inputs["metadata"]["annotations"]["networking.istio.io/cluster"]
        assert r.inputs["metadata"]["name"] == f"istio-remote-secret-{target}" and reader != target
        assert "stringData" in r.secret_inputs and "stringData" in r.additional_secret_outputs
        kubeconfig = yaml.safe_load(r.inputs["stringData"][target])
        assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{target}.api.example:6443"
        # the token of the Secret that grants *this reader* access, read back from the target
        assert kubeconfig["users"][0]["user"]["token"] == f"token-istio-system/istio-reader-token-{reader}"
        seen.add((reader, target))
    assert len(seen) == n * (n - 1)
    # each token is read on the target's own provider, once per pair
    token_reads = [r for r in reads if r.type == SECRET]
    assert sorted((clusters[r.provider], r.id) for r in token_reads) == sorted(
        (t, f"istio-system/istio-reader-token-{a}") for a, t in seen)
    tokens = [r for r in by_type(regs, SECRET) if r.inputs.get("type") == "kubernetes.io/service-account-token"]
    assert sorted((clusters[r.provider], r.inputs["metadata"]["name"]) for r in tokens) == sorted(
        (t, f"istio-reader-token-{a}") for a, t in seen)


def test_token_secrets_wait_for_the_base_chart_that_makes_the_reader_account(monkeypatch):
    regs = run(monkeypatch, with_clusters(stack_mesh("prod"), 2))
    urn = {r.urn: r for r in regs}
    tokens = [r for r in by_type(regs, SECRET) if r.inputs.get("type") == "kubernetes.io/service-account-token"]
    assert len(tokens) == 2
    for r in tokens:
        assert any(urn[d].inputs.get("chart") == "base" for d in r.dependencies if d in urn), r.name


def test_removing_a_cluster_removes_exactly_its_pairs(monkeypatch):
    four = with_clusters(stack_mesh("prod"), 4)
    three = {**four, "clusters": four["clusters"][:3]}
    full, small = run(monkeypatch, four), run(monkeypatch, three)
    names_full = {(r.type, r.name): r for r in full}
    names_small = {(r.type, r.name): r for r in small}
    assert set(names_small) <= set(names_full)
    removed = set(names_full) - set(names_small)
    assert removed and all("c4" in name for t, name in removed if t != "pulumi-python:dynamic:Resource")
    removed_remote = {n for t, n in removed if "istio-remote-secret" in n}
    removed_tokens = {n for t, n in removed if "istio-reader-token" in n}
    assert len(removed_remote) == 6 and len(removed_tokens) == 6  # 3 pairs as reader + 3 as target
    # the pairs that stay keep the same credentials
    for key, r in names_small.items():
        if "istio-remote-secret" in key[1]:
            assert r.inputs == names_full[key].inputs


def test_linkerd_links_every_pair_with_credentials_and_a_controller(monkeypatch):
    mesh = stack_mesh("linkerd")
    reads = []
    regs = program(mesh, reads=reads)
    clusters = provider_cluster(regs)
    links = by_type(regs, "kubernetes:multicluster.linkerd.io/v1alpha3:Link")
    assert sorted((clusters[r.provider], r.inputs["metadata"]["name"]) for r in links) == [
        ("linkerd-east", "linkerd-west"), ("linkerd-west", "linkerd-east")]
    by_target = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in links}
    assert by_target["linkerd-east"]["gatewayAddress"] == "198.51.100.20"  # static, from the spec
    assert by_target["linkerd-west"]["gatewayAddress"] == "198.51.100.7"   # read back from the Service
    creds = [r for r in by_type(regs, SECRET) if r.inputs["metadata"]["name"].startswith("cluster-credentials-")]
    assert len(creds) == 4  # two per pair: linkerd-multicluster and linkerd namespaces
    for r in creds:
        target = r.inputs["metadata"]["name"].removeprefix("cluster-credentials-")
        reader = clusters[r.provider]
        kc = yaml.safe_load(r.inputs["stringData"]["kubeconfig"])
        assert kc["users"][0]["user"]["token"] == \
            f"token-linkerd-multicluster/linkerd-service-mirror-remote-access-{reader}-token"
        assert "stringData" in r.secret_inputs
    releases = {(clusters[r.provider], r.inputs["name"]): r for r in by_type(regs, "kubernetes:helm.sh/v3:Release")}
    mcv = releases[("linkerd-east", "linkerd-multicluster")].inputs["values"]
    assert mcv["controllers"] == [{"link": {"ref": {"name": "linkerd-west"}}}]
    assert mcv["remoteMirrorServiceAccountName"] == "linkerd-service-mirror-remote-access-linkerd-west"
    gateway_reads = [r for r in reads if r.type == "kubernetes:core/v1:Service"]
    assert [(clusters[r.provider], r.id) for r in gateway_reads] == [("linkerd-west", "linkerd-multicluster/linkerd-gateway")]


def test_linkerd_on_one_network_links_pod_to_pod():
    mesh = with_clusters(stack_mesh("linkerd"), 2, same_network=True)
    next(s for s in mesh["services"] if s["name"] == "mysql")["clusters"] = ["c2"]  # the warehouse in c1 calls it
    states = render(mesh)
    st = states["c1"]
    link = find(st.concerns["multicluster"], "Link", "c2", "linkerd-multicluster")
    assert "gatewayAddress" not in link["spec"] and "selector" not in link["spec"]
    values = release(st, "linkerd-multicluster").values
    assert values["gateway"] == {"enabled": False}
    assert values["controllers"] == [{"link": {"ref": {"name": "c2"}}, "gateway": {"enabled": False}}]
    # only what another cluster calls is exported (test_linkerd_multicluster_identity.py)
    assert not [o for o in st.concerns["multicluster"] if mc.is_patch(o)]
    exported = [o for o in states["c2"].concerns["multicluster"] if mc.is_patch(o)]
    assert [o["metadata"]["name"] for o in exported] == ["mysql"]
    assert exported[0]["metadata"]["labels"][mc.EXPORT_LABEL] == "remote-discovery"


def test_ambient_multicluster_gives_services_global_scope():
    mesh = with_static_east_west(with_clusters(stack_mesh("dev"), 2))
    st = render(mesh)["c1"]
    patches = [o for o in st.concerns["multicluster"] if mc.is_patch(o)]
    assert {o["metadata"]["name"] for o in patches} == {s["name"] for s in mesh["services"]}
    assert all(o["metadata"]["labels"]["istio.io/global"] == "true" and "spec" not in o for o in patches)
    istiod = release(st, "istiod")
    assert istiod.values["env"]["AMBIENT_ENABLE_MULTI_NETWORK"] == "true"
    gw = find(st.concerns["control-plane"], "Gateway", "istio-eastwestgateway", "istio-system")
    assert gw["spec"]["gatewayClassName"] == "istio-east-west"
    assert gw["metadata"]["labels"]["topology.istio.io/network"] == "net-1"


def test_service_patches_register_as_patches(monkeypatch):
    regs = run(monkeypatch, with_static_east_west(with_clusters(stack_mesh("dev"), 2)))
    patches = by_type(regs, "kubernetes:core/v1:ServicePatch")
    assert patches and all("spec" not in r.inputs and r.inputs["kind"] == "Service" for r in patches)


# ---------------------------------------------------------------------------------------------
# one mesh identity


@pytest.mark.parametrize("stack", ["prod", "linkerd"])
def test_every_cluster_carries_one_mesh_id_trust_domain_and_root(stack):
    states = render(stack_mesh(stack))
    assert mc.check_mesh_identity(load_stack(stack, root=ROOT).spec, states) == []
    bundles = {str(find(s.objects, *(("Secret", "cacerts", "istio-system") if stack == "prod" else
                                     ("ConfigMap", "linkerd-identity-trust-roots", "linkerd"))))
               .count("trust_bundle_pem") for s in states.values()}
    assert bundles == {1}


def test_the_mocked_program_hands_every_cluster_the_same_root(monkeypatch):
    regs = run(monkeypatch, with_clusters(stack_mesh("prod"), 3))
    cacerts = [r for r in by_type(regs, SECRET) if r.inputs["metadata"]["name"] == "cacerts"]
    assert len(cacerts) == 3
    assert len({r.inputs["stringData"]["root-cert.pem"] for r in cacerts}) == 1
    assert len({r.inputs["stringData"]["ca-cert.pem"] for r in cacerts}) == 3  # one intermediate each
    istiods = [r for r in by_type(regs, "kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "istiod"]
    assert {r.inputs["values"]["global"]["meshID"] for r in istiods} == {"bookstore-prod"}


@pytest.mark.parametrize("stack,override,what", [
    ("prod", {"kind": "HelmRelease", "name": "istiod", "clusters": ["prod-gcp"],
              "patch": [{"op": "replace", "path": "/values/global/meshID", "value": "other-mesh"}]}, "meshID"),
    ("prod", {"kind": "HelmRelease", "name": "istiod", "clusters": ["prod-azure"],
              "patch": [{"op": "add", "path": "/values/meshConfig", "value": {"trustDomain": "other.org"}}]},
     "trust domain"),
    ("prod", {"kind": "Secret", "name": "cacerts", "namespace": "istio-system", "clusters": ["prod-aws"],
              "patch": [{"op": "replace", "path": "/stringData/root-cert.pem", "value": "x"}]}, "trust bundle"),
    ("linkerd", {"kind": "HelmRelease", "name": "linkerd-multicluster", "clusters": ["linkerd-west"],
                 "patch": [{"op": "replace", "path": "/values/identityTrustDomain", "value": "west.org"}]},
     "trust domain"),
])
def test_a_stack_whose_clusters_disagree_is_refused(stack, override, what):
    mesh = stack_mesh(stack)
    mesh["overrides"] = [override]
    with pytest.raises(SpecError) as err:
        render(mesh)
    cluster = override["clusters"][0]
    index = [c["name"] for c in mesh["clusters"]].index(cluster)
    problems = dict(err.value.problems)
    assert f"mesh.clusters[{index}]" in problems
    assert what in problems[f"mesh.clusters[{index}]"] and cluster in problems[f"mesh.clusters[{index}]"]


# ---------------------------------------------------------------------------------------------
# refusals


def problems(mesh):
    with pytest.raises(SpecError) as err:
        load_mesh(mesh, base_dir=ROOT)
    return dict(err.value.problems)


def test_aws_multi_network_without_static_addresses_is_refused_naming_the_field():
    mesh = stack_mesh("prod")
    del mesh["clusters"][0]["eastWestGateway"]
    found = problems(mesh)
    assert "mesh.clusters[0].eastWestGateway" in found
    assert "istio#29359" in found["mesh.clusters[0].eastWestGateway"]
    mesh = stack_mesh("linkerd")
    mesh["clusters"][1].update(cloud="aws")
    assert "mesh.clusters[1].eastWestGateway" in problems(mesh)


@pytest.mark.parametrize("change,path,fragment", [
    ({"subnets": ["subnet-1"]}, "mesh.clusters[0].eastWestGateway.subnets", "one static address per subnet"),
    ({"eipAllocations": ["x", "eipalloc-2"]}, "mesh.clusters[0].eastWestGateway.eipAllocations[0]", "eipalloc"),
    ({"addresses": ["nlb.example.com", "203.0.113.11"]}, "mesh.clusters[0].eastWestGateway.addresses[0]",
     "not an IPv4 address"),
])
def test_bad_aws_static_addresses(change, path, fragment):
    mesh = stack_mesh("prod")
    mesh["clusters"][0]["eastWestGateway"].update(change)
    found = problems(mesh)
    assert fragment in found[path]


def test_other_topology_refusals():
    mesh = with_clusters(stack_mesh("dev"), 2, same_network=True)  # ambient on one network
    assert "separate networks" in problems(mesh)["mesh.clusters[1].network"]
    mesh = with_clusters(stack_mesh("prod"), 2)
    del mesh["clusters"][1]["kubeconfig"]
    assert "kubeconfig" in problems(mesh)["mesh.clusters[1].kubeconfig"]
    mesh = with_clusters(stack_mesh("prod"), 2, same_network=True)
    mesh["clusters"][0]["eastWestGateway"] = {"addresses": ["198.51.100.1"]}
    assert "remove eastWestGateway" in problems(mesh)["mesh.clusters[0].eastWestGateway"]
    mesh = with_clusters(stack_mesh("prod"), 2)
    mesh["clusters"][1]["eastWestGateway"] = {"addresses": ["198.51.100.1"], "subnets": ["subnet-1"]}
    assert "aws only" in problems(mesh)["mesh.clusters[1].eastWestGateway.subnets"]
