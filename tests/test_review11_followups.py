"""Review of issue 11: what the first implementation left for day 2 on real clusters.

Upstream, at the versions we pin (cited beside each test): linkerd2 edge-26.8.3, envoyproxy/gateway
v1.9.0, pulumi-kubernetes v4.34.2 / CHANGELOG 4.29.0.
"""
from __future__ import annotations

import copy

import pytest
import yaml

from cp_helpers import by_type, program, release, render, set_kube_env, stack_mesh
from diff_helpers import installed_gateway_api_crds, live_from_desired
from mesh_components.core import gateway_api
from mesh_components.meshes import linkerd
from mesh_components.cli.drift_cli import build_report
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.drift.live import LiveState, releases_from_objects
from mesh_components.spec import GATEWAY_API_VERSION, load_mesh

from program_harness import ROOT

CHARTS = ROOT.parent / "shared" / "charts"


def values(state, name):
    return release(state, name).values


# --- point 2: the policy controller reads the served versions only at start ------------------


def test_linkerd_destination_pods_carry_the_gateway_api_bundle_they_started_on():
    """linkerd2 edge-26.8.3 ``policy-controller/runtime/src/args.rs:331-345``: the TLSRoute watch
    exists only if ``api_resource_exists`` (``:514-527``) was true at start. The chart merges
    ``destinationController.podAnnotations`` into the destination pod template
    (``charts/linkerd-control-plane/templates/destination.yaml:166``), so a new bundle rolls it."""
    chart_defaults = yaml.safe_load((CHARTS / "linkerd-control-plane" / "values.yaml").read_text())
    assert chart_defaults["destinationController"]["podAnnotations"] == {}
    for name, st in render(stack_mesh("linkerd")).items():
        annotations = values(st, "linkerd-control-plane")["destinationController"]["podAnnotations"]
        assert annotations == {linkerd.GATEWAY_API_ANNOTATION: f"experimental-{GATEWAY_API_VERSION}"}, name
        assert gateway_api.channel_of_url(st.remote_manifests[0].url) == "experimental"
    mesh = stack_mesh("linkerd")
    mesh["clusters"][0]["gatewayApiCrds"] = "managed"
    mesh["egress"] = [e for e in mesh["egress"] if all(p["protocol"] == "http" for p in e["ports"])]
    st = render(mesh)[mesh["clusters"][0]["name"]]
    assert values(st, "linkerd-control-plane")["destinationController"]["podAnnotations"] == {
        linkerd.GATEWAY_API_ANNOTATION: "managed"}


def test_the_control_plane_release_waits_for_the_bundle(monkeypatch):
    mesh = stack_mesh("linkerd")
    set_kube_env(monkeypatch, mesh)
    regs = program(mesh, base="linkerd")
    urn = {r.urn: r for r in regs}
    cps = [r for r in by_type(regs, "kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "linkerd-control-plane"]
    assert cps
    for r in cps:
        assert any(urn[d].type == "kubernetes:yaml/v2:ConfigFile" for d in r.dependencies if d in urn), r.name
        assert r.inputs["values"]["destinationController"]["podAnnotations"][linkerd.GATEWAY_API_ANNOTATION]


# --- point 5: linkerd-crds of old releases installed the Gateway API CRDs --------------------


def test_linkerd_crds_never_installs_gateway_api():
    """linkerd2 ``charts/linkerd-crds/values.yaml:4``: ``installGatewayAPI: true`` up to
    edge-25.9.3; the route CRD templates (``templates/gateway.networking.k8s.io_tlsroutes.yaml:1``)
    render on it. The key exists at edge-26.8.3 (../shared/charts/linkerd-crds/values.yaml)."""
    assert "installGatewayAPI" in yaml.safe_load((CHARTS / "linkerd-crds" / "values.yaml").read_text())
    for st in render(stack_mesh("linkerd")).values():
        assert values(st, "linkerd-crds")["installGatewayAPI"] is False


def report(mesh, live_crds):
    states = render(mesh)
    live = {}
    for c, st in states.items():
        objs = live_from_desired(st.objects, st.releases) + live_crds.get(c, installed_gateway_api_crds(st))
        live[c] = LiveState(objs, releases_from_objects(objs))
    return build_report("t", mesh["name"], states, live)


def test_gateway_api_crds_owned_by_a_helm_release_are_a_finding_with_the_fix():
    """CRDs that linkerd-crds <= edge-25.9.3 installed carry Helm's ownership and
    ``helm.sh/resource-policy: keep`` (``templates/gateway.networking.k8s.io_httproutes.yaml:11``):
    the bundle's create fails with AlreadyExists (pulumi-kubernetes CHANGELOG 4.29.0)."""
    mesh = stack_mesh("linkerd")
    assert not [f for f in report(mesh, {}).findings if f.check == "gateway-api-crds-owner"]
    cluster = mesh["clusters"][0]["name"]
    crds = copy.deepcopy(installed_gateway_api_crds(render(mesh)[cluster]))
    (http,) = [c for c in crds if c["spec"]["names"]["kind"] == "HTTPRoute"]
    http["metadata"].setdefault("annotations", {}).update({
        "meta.helm.sh/release-name": "linkerd-crds", "meta.helm.sh/release-namespace": "linkerd",
        "helm.sh/resource-policy": "keep"})
    rep = report(mesh, {cluster: crds})
    (f,) = [f for f in rep.findings if f.check == "gateway-api-crds-owner"]
    assert (f.cluster, f.subject) == (cluster, "httproutes.gateway.networking.k8s.io")
    assert "linkerd/linkerd-crds" in f.message and "installGatewayAPI: false" in f.message
    assert "meta.helm.sh/release-name-" in f.message and "PULUMI_K8S_UPSERT_EXISTING_OBJECTS=true" in f.message
    assert rep.has_drift


# --- point 3: the global Deny fences namespaces the spec does not know -----------------------


def egress_networks(st):
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o["spec"]["trafficPolicy"]
            for o in st.objects if o["kind"] == "EgressNetwork"}


def test_egress_open_namespaces_get_their_own_allow_egress_network():
    """linkerd2 edge-26.8.3 ``policy-controller/k8s/index/src/outbound/index/egress_network.rs:61-78``:
    a namespace's own EgressNetworks replace the global namespace's."""
    mesh = stack_mesh("linkerd")
    base = {name: egress_networks(st) for name, st in render(mesh).items()}
    mesh["backend"].setdefault("linkerd", {})["egressOpenNamespaces"] = ["monitoring", "batch"]
    for name, st in render(mesh).items():
        nets = egress_networks(st)
        assert nets == {**base[name], ("batch", "mesh-egress-open"): "Allow",
                        ("monitoring", "mesh-egress-open"): "Allow"}
        assert nets[("linkerd-egress", "mesh-egress")] == "Deny"


def test_an_egress_source_namespace_cannot_be_opened():
    mesh = stack_mesh("linkerd")
    ns = mesh["egress"][0]["sources"][0]["namespace"]
    mesh["backend"].setdefault("linkerd", {})["egressOpenNamespaces"] = [ns]
    with pytest.raises(TranslationError) as e:
        render(mesh)
    assert "mesh.backend.linkerd.egressOpenNamespaces[0]" in str(e.value) and ns in str(e.value)


# --- point 4: Envoy Gateway's chart installs Gateway API CRDs on managed clusters -------------


def test_envoy_gateway_on_cloud_managed_gateway_api_crds_is_refused():
    """envoyproxy/gateway v1.9.0 ``charts/gateway-helm/Chart.yaml`` (``crds`` subchart, condition
    ``crds.enabled``), ``charts/crds/crds/gatewayapi-crds.yaml`` and
    ``charts/crds/templates/gatewayapi-safe-upgrade-policy.yaml:1-23``: the only switch installs
    both Gateway API and Envoy Gateway CRDs, or neither."""
    mesh = stack_mesh("staging")
    assert mesh["ingress"]["implementation"] == "envoy-gateway"
    render(mesh)  # every cluster installs the bundle: accepted
    mesh["clusters"][0]["gatewayApiCrds"] = "managed"
    with pytest.raises(SpecError) as e:
        load_mesh(mesh, base_dir=ROOT)
    assert "mesh.clusters[0].gatewayApiCrds" in str(e.value) and "Envoy Gateway" in str(e.value)
    assert "gatewayApiCrds: install" in str(e.value) and "ingress.implementation: istio" in str(e.value)
    mesh["ingress"]["implementation"] = "istio"  # Istio's own Gateway API implementation installs no CRDs
    load_mesh(mesh, base_dir=ROOT)
