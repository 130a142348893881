"""Gateway API CRDs (issue 11, points 1 and 11): the bundle each cluster installs serves what its
controllers read, Linkerd's egress routes are of the version its policy controller watches, and
clusters whose cloud manages the CRDs skip the install and have them checked by ``diff``.

Upstream, at the versions we pin (served versions are read from the verbatim CRD files in
../shared/crds/gateway-api, kubernetes-sigs/gateway-api v1.6.1 ``config/crd/{standard,experimental}``):

- linkerd2 edge-26.8.3 ``policy-controller/k8s/api/src/lib.rs:41-79``: ``TLSRoute`` pinned to
  ``v1alpha2``; ``policy-controller/runtime/src/args.rs:331-361``: the TLSRoute/TCPRoute watches
  are skipped when ``api_resource_exists`` (``:514-527``, discovery of that group-version) is
  false; crate gateway-api 0.21.0 (linkerd2 ``Cargo.lock``) ``src/apis/experimental/
  {httproutes,grpcroutes,tcproutes}.rs:18``: ``v1``, ``v1``, ``v1alpha2``.
- istio 1.30.3 ``pkg/config/schema/gvk/resources.gen.go:16-79``.
- envoyproxy/gateway v1.9.0 ``internal/provider/kubernetes/controller.go:2251-2856``.
"""
from __future__ import annotations

import copy
import functools

import pytest
import yaml

from cp_helpers import by_type, program, render, set_kube_env, stack_mesh
from diff_helpers import installed_gateway_api_crds, live_from_desired, write_dump
from mesh_components.core import gateway_api
from mesh_components.cli import main
from mesh_components.cli.drift_cli import build_report
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.drift.live import LiveState, releases_from_objects
from mesh_components.spec import GATEWAY_API_VERSION, load_mesh

from program_harness import ROOT

CRDS = ROOT.parent / "shared" / "crds" / "gateway-api"
GROUP = "gateway.networking.k8s.io"
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))

UPSTREAM_READS = {
    # linkerd2 edge-26.8.3 (see the module docstring)
    "linkerd": {"HTTPRoute": "v1", "GRPCRoute": "v1", "TLSRoute": "v1alpha2", "TCPRoute": "v1alpha2"},
    # istio 1.30.3 resources.gen.go: 16 BackendTLSPolicy, 29 GRPCRoute, 34 GatewayClass, 37 HTTPRoute,
    # 44 KubernetesGateway, 48 ListenerSet, 59 ReferenceGrant v1beta1, 73 TCPRoute v1alpha2, 74 TLSRoute,
    # 79 UDPRoute v1alpha2
    "istio": {"BackendTLSPolicy": "v1", "GRPCRoute": "v1", "GatewayClass": "v1", "HTTPRoute": "v1", "Gateway": "v1",
              "ListenerSet": "v1", "ReferenceGrant": "v1beta1", "TCPRoute": "v1alpha2", "TLSRoute": "v1",
              "UDPRoute": "v1alpha2"},
    # envoy gateway v1.9.0 controller.go: 2251 GatewayClass, 2314 Gateway, 2353 ListenerSet, 2373 HTTPRoute,
    # 2399 GRPCRoute, 2425 TLSRoute, 2452 UDPRoute, 2479 TCPRoute (gwapiv1), 2666 ReferenceGrant (gwapiv1b1),
    # 2856 BackendTLSPolicy
    "envoy-gateway": {"GatewayClass": "v1", "Gateway": "v1", "ListenerSet": "v1", "HTTPRoute": "v1", "GRPCRoute": "v1",
                      "TLSRoute": "v1", "UDPRoute": "v1", "TCPRoute": "v1", "ReferenceGrant": "v1beta1",
                      "BackendTLSPolicy": "v1"},
}

pytestmark = pytest.mark.skipif(not CRDS.is_dir(), reason="../shared/crds is not beside the project")


@functools.lru_cache(maxsize=None)
def _crd_docs(channel: str) -> tuple[dict, ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRD files are large
    return tuple(d for f in sorted((CRDS / channel).glob("*.yaml")) for d in yaml.load_all(f.read_text(), Loader=loader)
                 if d)


def crd_docs(channel: str) -> list[dict]:
    """The channel's CRDs (each call a fresh copy: tests change them)."""
    return copy.deepcopy(list(_crd_docs(channel)))


def served(channel: str) -> dict[str, set[str]]:
    """kind -> served versions, from the channel's CRD files."""
    return {k: v["served"] for k, v in gateway_api.served_versions(crd_docs(channel)).items()}


def channel_of(state) -> str | None:
    (m,) = state.remote_manifests or [None]
    return gateway_api.channel_of_url(m.url) if m else None


def test_code_reads_tables_are_the_upstream_ones():
    assert gateway_api.READS == UPSTREAM_READS


def test_linkerd_egress_route_is_read_by_its_policy_controller_and_served_by_the_installed_crds():
    """The linkerd stack's TLS egress route: of the version Linkerd's policy controller watches, and
    served by the CRD bundle the cluster installs (the standard bundle would not serve it)."""
    for cluster, st in render(stack_mesh("linkerd")).items():
        routes = [o for o in st.objects if o["kind"] == "TLSRoute"]
        assert routes, cluster  # book-publisher-api is https
        channel = channel_of(st)
        assert st.remote_manifests[0].url == (f"https://github.com/kubernetes-sigs/gateway-api/releases/download/"
                                              f"{GATEWAY_API_VERSION}/{channel}-install.yaml")
        for r in routes:
            group, _, version = r["apiVersion"].rpartition("/")
            assert (group, version) == (GROUP, UPSTREAM_READS["linkerd"]["TLSRoute"])
            assert version in served(channel)["TLSRoute"], (cluster, channel)
            assert version not in served("standard")["TLSRoute"]  # why Linkerd's clusters are not standard


@pytest.mark.parametrize("stack", STACKS)
def test_every_gateway_api_object_and_every_read_is_served_by_the_installed_bundle(stack):
    """Each Gateway API object's version is served, and so is the version each controller of the
    cluster (the mesh, and Envoy Gateway where it is the ingress) watches for that kind; Istio and
    Envoy Gateway stay on a bundle that serves what they read."""
    for cluster, st in render(stack_mesh(stack)).items():
        gw = [o for o in st.objects if o["apiVersion"].startswith(GROUP + "/")]
        channel = channel_of(st)
        if not gw:
            continue
        ok = served(channel)
        readers = [r for r in UPSTREAM_READS if r == st_backend(stack) or
                   (r == "envoy-gateway" and any(rel.chart == "gateway-helm" for rel in st.releases))]
        for o in gw:
            kind, version = o["kind"], o["apiVersion"].rpartition("/")[2]
            assert version in ok[kind], (cluster, kind, version, channel)
            for reader in readers:
                if kind in UPSTREAM_READS[reader]:
                    assert UPSTREAM_READS[reader][kind] in ok[kind], (cluster, reader, kind, channel)
        assert {(k, v) for k, v, _ in st.gateway_api.versions} >= {
            (o["kind"], o["apiVersion"].rpartition("/")[2]) for o in gw}


def st_backend(stack: str) -> str:
    return stack_mesh(stack)["backend"]["type"]


def test_experimental_bundle_serves_everything_the_standard_one_does():
    """Moving Linkerd's clusters to experimental takes no version away from any reader."""
    std, exp = served("standard"), served("experimental")
    assert set(std) <= set(exp)
    for kind, versions in std.items():
        assert versions <= exp[kind], kind
    assert "v1alpha2" in exp["TCPRoute"] and "v1alpha2" not in std["TCPRoute"]


# ---------------------------------------------------------------------------------------------
# clusters[].gatewayApiCrds


def test_gateway_api_crds_defaults_to_install_and_refuses_other_values():
    spec = load_mesh(stack_mesh("prod"), base_dir=ROOT).spec
    assert {c.gateway_api_crds for c in spec.clusters} == {"install"}
    mesh = stack_mesh("prod")
    mesh["clusters"][2]["gatewayApiCrds"] = "gke"
    with pytest.raises(SpecError) as e:
        load_mesh(mesh, base_dir=ROOT)
    (path, message), = [p for p in e.value.problems if "gatewayApiCrds" in p[0]]
    assert path == "mesh.clusters[2].gatewayApiCrds" and "'install'" in message and "'managed'" in message


def managed_prod(cluster: str = "prod-gcp") -> dict:
    mesh = stack_mesh("prod")
    for c in mesh["clusters"]:
        if c["name"] == cluster:
            c["gatewayApiCrds"] = "managed"
    return mesh


def test_a_managed_cluster_gets_no_crd_bundle_and_keeps_its_objects():
    states, base = render(managed_prod()), render(stack_mesh("prod"))
    assert states["prod-gcp"].remote_manifests == []
    assert states["prod-gcp"].gateway_api.mode == "managed" and states["prod-gcp"].gateway_api.channel is None
    assert states["prod-gcp"].objects == base["prod-gcp"].objects
    for c in ("prod-aws", "prod-azure"):
        assert states[c].remote_manifests == base[c].remote_manifests and channel_of(states[c]) == "standard"


def test_managed_cluster_custom_resources_wait_for_the_control_plane_only(monkeypatch):
    """No ConfigFile on the managed cluster; its Gateway API resources depend on its control-plane
    releases (istio-base installs Istio's CRDs; the Gateway API CRDs are the cloud's). A second run
    registers identical inputs."""
    mesh = managed_prod()
    set_kube_env(monkeypatch, mesh)
    runs = [program(mesh), program(mesh)]
    for regs in runs:
        urn = {r.urn: r for r in regs}
        files = by_type(regs, "kubernetes:yaml/v2:ConfigFile")
        assert sorted(c for c in ("prod-aws", "prod-azure", "prod-gcp") for f in files if f"-{c}-" in f.name) == [
            "prod-aws", "prod-azure"]
        gcp_gw = [r for r in regs if GROUP in r.type and "-prod-gcp-" in r.name]
        assert gcp_gw
        for r in gcp_gw:
            deps = [urn[d] for d in r.dependencies if d in urn]
            assert not any(d.type == "kubernetes:yaml/v2:ConfigFile" for d in deps), r.name
            assert any(d.type == "kubernetes:helm.sh/v3:Release" and d.inputs["chart"] == "base" for d in deps), r.name
    first, second = ({(r.type, r.name): (r.inputs, sorted(r.dependencies)) for r in regs
                      if r.type != "pulumi:pulumi:Stack" and r.type != "pulumi-python:dynamic:Resource"} for regs in runs)
    assert first == second


def linkerd_managed(egress_protocol: str = "https") -> dict:
    mesh = stack_mesh("linkerd")
    mesh["clusters"][0]["gatewayApiCrds"] = "managed"
    mesh["egress"][0]["ports"] = [{"port": 443 if egress_protocol == "https" else 80, "protocol": egress_protocol}]
    return mesh


def test_linkerd_tls_egress_on_managed_crds_is_refused_with_the_fix():
    with pytest.raises(TranslationError) as e:
        render(linkerd_managed())
    (path, message), = e.value.problems
    assert path == "mesh.clusters[0].gatewayApiCrds"
    assert "v1alpha2" in message and "book-publisher-api" in message and "gatewayApiCrds: install" in message
    # HTTP egress (HTTPRoute v1, which the standard channel serves) is fine there
    states = render(linkerd_managed("http"))
    assert states["linkerd-east"].remote_manifests == [] and channel_of(states["linkerd-west"]) == "experimental"
    assert [o["kind"] for o in states["linkerd-east"].objects if o["apiVersion"].startswith(GROUP)] == [
        "HTTPRoute", "HTTPRoute"]


# ---------------------------------------------------------------------------------------------
# diff: the live CRDs serve what the stack needs


def report(mesh: dict, live_crds: dict[str, list[dict]]):
    states = render(mesh)
    live = {}
    for c, st in states.items():
        objs = live_from_desired(st.objects, st.releases) + live_crds.get(c, installed_gateway_api_crds(st))
        live[c] = LiveState(objs, releases_from_objects(objs))
    return build_report("t", mesh["name"], states, live)


def gw_findings(rep):
    return [f for f in rep.findings if f.check == "gateway-api-crds"]


def test_clean_clusters_have_no_crd_findings():
    for stack in ("linkerd", "dev"):
        assert gw_findings(report(stack_mesh(stack), {})) == []
    # a managed cluster holding the cloud's standard v1.6.1 CRDs serves everything prod needs
    assert gw_findings(report(managed_prod(), {"prod-gcp": crd_docs("standard")})) == []


def test_linkerd_on_standard_crds_is_a_finding_naming_the_admission_policy_step():
    """A Linkerd cluster set up by an earlier release (standard bundle): TLSRoute v1alpha2 is not
    served, and the fix deletes the safe-upgrades policy first (v1.6.1
    config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml:17-23)."""
    rep = report(stack_mesh("linkerd"), {"linkerd-west": crd_docs("standard")})
    (f,) = gw_findings(rep)
    assert (f.cluster, f.subject, f.declared) == ("linkerd-west", "TLSRoute v1alpha2", False)
    assert "serves v1, not v1alpha2" in f.message and "channel standard" in f.message
    assert gateway_api.SWITCH_TO_EXPERIMENTAL in f.message and rep.has_drift


def test_managed_crds_of_an_older_release_are_a_finding_with_the_managed_fix():
    """Gateway API before v1.5 served ReferenceGrant only at v1beta1 (v1.6.1 CHANGELOG/1.5-CHANGELOG.md:
    "the ReferenceGrant resource is moving to v1"); a cloud on such a release cannot take our v1
    ReferenceGrant."""
    old = copy.deepcopy(crd_docs("standard"))
    for crd in old:
        if crd["spec"]["names"]["kind"] == "ReferenceGrant":
            for v in crd["spec"]["versions"]:
                v["served"] = v["name"] == "v1beta1"
    rep = report(managed_prod(), {"prod-gcp": old})
    (f,) = gw_findings(rep)
    assert (f.cluster, f.subject) == ("prod-gcp", "ReferenceGrant v1")
    assert "mesh.clusters[2].gatewayApiCrds: managed" in f.message and "set mesh.clusters[2].gatewayApiCrds: install" in f.message
    # a CRD that is missing altogether is a finding too
    rep = report(managed_prod(), {"prod-gcp": [c for c in crd_docs("standard") if c["spec"]["names"]["kind"] != "Gateway"]})
    assert [f.subject for f in gw_findings(rep)] == ["Gateway v1"]
    assert "gateways.gateway.networking.k8s.io is not installed" in gw_findings(rep)[0].message


def test_a_dump_without_crds_notes_the_check_did_not_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    states = render(stack_mesh("linkerd"))
    for c, st in states.items():
        write_dump(tmp_path, c, live_from_desired(st.objects, st.releases))
    assert main(["diff", "linkerd", "--live", str(tmp_path)]) == 0
    assert "Gateway API CRDs not read" in capsys.readouterr().out
    for c, st in states.items():  # with the standard CRDs in the dump: drift, exit 2
        write_dump(tmp_path, c, live_from_desired(st.objects, st.releases) + crd_docs("standard"))
    assert main(["diff", "linkerd", "--live", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert out.count("TLSRoute v1alpha2") >= 2 and "safe-upgrades" in out


# ---------------------------------------------------------------------------------------------
# review of issue 11, point 1: the TLSRoute that changed version keeps its state


def test_linkerd_tlsroutes_claim_the_state_of_their_v1_registration():
    """A ``CustomResource``'s type is ``kubernetes:<apiVersion>:<kind>`` (pulumi-kubernetes v4.34.2
    ``sdk/python/pulumi_kubernetes/apiextensions/CustomResource.py:154``): the release before issue
    11 stored Linkerd's egress TLSRoutes as ``kubernetes:gateway.networking.k8s.io/v1:TLSRoute``
    (/tmp/review11/old-linkerd). Without an alias the engine creates the v1alpha2 object beside
    that state (AlreadyExists on pulumi-kubernetes >= 4.29) and deletes the old one; with it
    ``getOldResource`` (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``) finds it."""
    from cp_helpers import run_recording
    from engine_urns import AliasSpec, engine_urns, match_old_state, qualified_type, urn_name
    from program_harness import stack_config

    regs, requests = run_recording(stack_config("linkerd"), "linkerd")
    new_type = f"kubernetes:{gateway_api.LINKERD_TLSROUTE}:TLSRoute"
    routes = [r for r in regs if r.type == new_type]
    assert routes
    real = engine_urns(regs, "linkerd")
    old_type = f"kubernetes:{GROUP}/v1:TLSRoute"

    def old_urn(r):
        qtype = qualified_type(real[r.urn])
        return f"{real[r.urn].split('::')[0]}::{real[r.urn].split('::')[1]}::" \
               f"{qtype[: -len(new_type)]}{old_type}::{urn_name(real[r.urn])}"

    olds = {old_urn(r) for r in routes}
    found = match_old_state(regs, {r.urn: [AliasSpec.from_proto(a) for a in requests[r.urn].aliases]
                                   for r in regs}, olds, "linkerd")
    assert {found[r.urn] for r in routes} == olds


@pytest.mark.parametrize("api,expected", [
    (f"{GROUP}/v1alpha2", [f"kubernetes:{GROUP}/v1:TLSRoute"]),
    (f"{GROUP}/v1", [f"kubernetes:{GROUP}/v1alpha2:TLSRoute"]),
])
def test_every_former_version_of_a_kind_is_an_alias(api, expected):
    from mesh_components.components import api_version_aliases

    assert [a.type_ for a in api_version_aliases(api, "TLSRoute").aliases] == expected
    assert api_version_aliases(f"{GROUP}/v1", "HTTPRoute").aliases == []
