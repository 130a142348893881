"""Istio mesh settings where istiod and istioctl read them, and egress gateway traffic kept in its
own cluster (issue 11, points 6 and 7). Each evaluator below follows istio/istio at tag 1.30.3
(commit 56df41f63e51) and reads only the rendered objects and Helm values.

Point 6, a sidecar's egress through the egress gateway in a multi-primary mesh:
- endpoints: istiod merges a Service's endpoints from every cluster; a cluster-local host gets only
  those of the proxy's own cluster (pilot/pkg/xds/endpoints/endpoint_builder.go:530-534). Cluster-
  local hosts: ``meshConfig.serviceSettings`` with ``clusterLocal: true``, plus the defaults
  ``*.kube-system.svc.<domain>``, ``kubernetes.default.svc.<domain>`` and istiod's own host, most
  specific match first (pilot/pkg/model/cluster_local.go:24-27, 82-146);
- SNI of the sidecar -> gateway hop: the DestinationRule's ``tls.sni``, else the cluster name
  ``outbound_.<port>_.<subset>_.<host>`` (pilot/pkg/networking/core/cluster_tls.go:451-454,
  152-153; pilot/pkg/model/service.go:1777-1779);
- an endpoint on the proxy's network is dialled directly: the egress gateway accepts the SNI of one
  of its ``ISTIO_MUTUAL`` servers on that port (the server's hosts are its filter chain's SNIs);
- an endpoint on another network is reached through that network's east-west gateway, whose
  ``AUTO_PASSTHROUGH`` server has one filter chain per Service port matching the SNI
  ``outbound_.<port>_._.<host>`` and one per subset of a DestinationRule it sees
  (pilot/pkg/networking/core/gateway.go:926-927, 979-1039), then passes the TLS stream on to the
  gateway pod unchanged, which must accept the SNI as above.

Point 7, where the mesh settings live:
- istiod reads the ``istio[-<rev>]`` ConfigMap, and a ``SHARED_MESH_CONFIG`` map only while its env
  names one, applied first, the ``istio`` map over it (pilot/pkg/bootstrap/mesh.go:44-47, 112-136;
  "experimental feature in 1.10", line 44); a named map that is missing is skipped
  (pkg/config/mesh/meshwatcher/collection.go:53-60); the default mode is ``ALLOW_ANY``;
- the ``istio`` map is the chart's mesh defaults merged with Helm ``meshConfig``
  (manifests/charts/istio-control/istio-discovery/templates/configmap.yaml:1-4, 76-79);
- ``istioctl analyze`` and ``istioctl x describe`` read only the ``istio[-<rev>]`` map
  (pkg/config/analysis/local/istiod_analyze.go:503-519, istioctl/pkg/describe/describe.go:1526-1545).
"""
from __future__ import annotations

import copy
import dataclasses
import importlib.util

import pytest
import yaml

from mesh_components.cli.graph_cli import graph_of
from mesh_components.drift.intent import ClusterView, check_registry_only
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh, load_stack

from cp_helpers import stack_mesh
from program_harness import ROOT

GW_HOST = "istio-egressgateway.mesh-egress.svc.cluster.local"
ISTIO_STACKS = ("dev", "staging", "prod")

_pack = importlib.util.spec_from_file_location("mesh_guardrails_mesh_config",
                                               ROOT / "policies" / "mesh-guardrails" / "mesh_guardrails.py")
guardrails = importlib.util.module_from_spec(_pack)
_pack.loader.exec_module(guardrails)


def _states(stack: str):
    return render_mesh(load_stack(stack, root=ROOT))


def _of(objects, kind, namespace=None, name=None):
    return [o for o in objects if o["kind"] == kind and o["apiVersion"].startswith(("networking.istio.io/", "v1"))
            and (namespace is None or o["metadata"].get("namespace") == namespace)
            and (name is None or o["metadata"]["name"] == name)]


def _istiod(st):
    return next(r for r in st.releases if r.chart == "istiod")


# ---------------------------------------------------------------------------------------------
# point 6: the egress gateway is reached in the caller's own cluster


def is_cluster_local(host: str, mesh: dict) -> bool:
    """cluster_local.go:82-146 with domain suffix cluster.local: the defaults unless a setting
    names them with clusterLocal false; the most specific match wins (exact before wildcards)."""
    specific, wildcard = {}, {}
    defaults = ["*.kube-system.svc.cluster.local", "kubernetes.default.svc.cluster.local",
                "istiod.istio-system.svc.cluster.local"]
    for s in mesh.get("serviceSettings") or []:
        local = bool((s.get("settings") or {}).get("clusterLocal"))
        for h in s.get("hosts") or []:
            if not local:
                defaults = [d for d in defaults if not (h == d or (d.startswith("*") and h.endswith(d[1:])))]
            (wildcard if h.startswith("*") else specific)[h] = local
    for d in defaults:
        (wildcard if d.startswith("*") else specific)[d] = True
    if host in specific:
        return specific[host]
    matches = [w for w in wildcard if host.endswith(w[1:])]
    return wildcard[max(matches, key=len)] if matches else False


def _server_accepts(objects, sni: str, port: int) -> bool:
    for gw in _of(objects, "Gateway", "mesh-egress"):
        if gw["spec"].get("selector") != {"istio": "egressgateway"}:
            continue
        for s in gw["spec"]["servers"]:
            hosts = [h.split("/", 1)[-1] for h in s["hosts"]]
            if s["port"]["number"] == port and s.get("tls", {}).get("mode") == "ISTIO_MUTUAL" and any(
                    h == sni or h == "*" or (h.startswith("*.") and sni.endswith(h[1:])) for h in hosts):
                return True
    return False


def _passthrough_snis(st) -> set[str]:
    """The SNIs the east-west gateway of ``st`` passes to the egress gateway's host."""
    servers = [s for gw in _of(st.objects, "Gateway", "istio-system") for s in gw["spec"]["servers"]
               if s.get("tls", {}).get("mode") == "AUTO_PASSTHROUGH"]
    if not servers or not any(GW_HOST.endswith(h.split("/", 1)[-1].lstrip("*")) for s in servers for h in s["hosts"]):
        return set()
    gw = next((r for r in st.releases if r.name == "istio-egressgateway"), None)
    ports = [p["port"] for p in gw.values["service"]["ports"]] if gw else []
    visible = [dr for dr in _of(st.objects, "DestinationRule") if dr["spec"]["host"] == GW_HOST and (
        dr["metadata"]["namespace"] == "istio-system"
        or set(dr["spec"].get("exportTo") or ["*"]) & {"*", "istio-system"})]
    subsets = [s["name"] for dr in visible for s in dr["spec"].get("subsets") or []]
    return {f"outbound_.{p}_.{sub}_.{GW_HOST}" for p in ports for sub in [""] + subsets}


def egress_hops(states) -> list[tuple[str, str, int, str, bool]]:
    """``(caller cluster, subset, port, endpoint cluster, connects)`` for every ``mesh`` route to
    the egress gateway and every gateway endpoint the caller's sidecar gets."""
    gateways = [c for c, st in states.items() if any(r.name == "istio-egressgateway" for r in st.releases)]
    network = {c: _istiod(st).values["global"]["network"] for c, st in states.items()}
    out = []
    for caller, st in states.items():
        mesh = _istiod(st).values.get("meshConfig") or {}
        endpoints = [caller] if is_cluster_local(GW_HOST, mesh) else gateways
        dr = next(iter(_of(st.objects, "DestinationRule", "mesh-egress", "istio-egressgateway")), None)
        for vs in _of(st.objects, "VirtualService", "mesh-egress"):
            for kind in ("http", "tls", "tcp"):
                for route in vs["spec"].get(kind) or []:
                    if not any("mesh" in m.get("gateways", []) for m in route["match"]):
                        continue
                    dest = route["route"][0]["destination"]
                    if dest["host"] != GW_HOST:
                        continue
                    subset, port = dest["subset"], dest["port"]["number"]
                    tls = next(p["tls"] for s in dr["spec"]["subsets"] if s["name"] == subset
                               for p in s["trafficPolicy"]["portLevelSettings"] if p["port"]["number"] == port)
                    sni = tls.get("sni") or f"outbound_.{port}_.{subset}_.{GW_HOST}"
                    for ep in endpoints:
                        target = states[ep]
                        if network[ep] == network[caller]:
                            ok = _server_accepts(target.objects, sni, port)
                        else:
                            ok = sni in _passthrough_snis(target) and _server_accepts(target.objects, sni, port)
                        out.append((caller, subset, port, ep, ok))
    return out


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_every_egress_connection_through_the_gateway_connects(stack):
    hops = egress_hops(_states(stack))
    assert hops, "no mesh route to the egress gateway"
    assert [h for h in hops if not h[4]] == []
    # and each caller reaches only its own cluster's gateway
    assert {(h[0], h[3]) for h in hops} == {(h[0], h[0]) for h in hops}


def test_without_cluster_local_two_in_three_prod_egress_connections_fail():
    """The failure the issue reports, reproduced on today's prod render minus serviceSettings:
    each sidecar gets the three clusters' gateways, and the two on other networks refuse it."""
    states = _states("prod")
    for st in states.values():
        rel = _istiod(st)
        values = copy.deepcopy(rel.values)
        values["meshConfig"].pop("serviceSettings")
        st.releases[st.releases.index(rel)] = dataclasses.replace(rel, values=values)
    hops = egress_hops(states)
    per_route: dict = {}
    for caller, subset, port, ep, ok in hops:
        per_route.setdefault((caller, subset, port), []).append((ep, ok))
    assert per_route and all(sorted(ok for _, ok in eps) == [False, False, True] for eps in per_route.values())
    assert all(ep == caller for (caller, _, _), eps in per_route.items() for ep, ok in eps if ok)


def test_cluster_local_is_the_gateway_host_only_and_keeps_the_defaults():
    mesh = _istiod(_states("prod")["prod-aws"]).values["meshConfig"]
    assert mesh["serviceSettings"] == [{"settings": {"clusterLocal": True}, "hosts": [GW_HOST]}]
    assert is_cluster_local("kubernetes.default.svc.cluster.local", mesh)
    assert is_cluster_local("kube-dns.kube-system.svc.cluster.local", mesh)
    assert not is_cluster_local("bookstore.bookstore.svc.cluster.local", mesh)
    # ambient (dev: egress waypoint, services local unless global) and other meshes set nothing
    assert "serviceSettings" not in _istiod(_states("dev")["dev"]).values["meshConfig"]


# ---------------------------------------------------------------------------------------------
# point 7: every mesh setting in istiod's meshConfig


def chart_mesh(values: dict) -> dict:
    """The ``istio`` ConfigMap's mesh config: the chart's defaults (configmap.yaml:1-10, the keys
    that matter here) merged with ``meshConfig`` (configmap.yaml:76-79, Helm mergeOverwrite)."""
    mesh = {"trustDomain": "cluster.local",
            "rootNamespace": (values.get("meshConfig") or {}).get("rootNamespace") or "istio-system"}

    def merge(into, extra):
        for k, v in extra.items():
            if isinstance(v, dict) and isinstance(into.get(k), dict):
                merge(into[k], v)
            else:
                into[k] = copy.deepcopy(v)
    merge(mesh, values.get("meshConfig") or {})
    return mesh


def effective_mode(values: dict, istio_map: dict, objects) -> str:
    """istiod's outbound mode: default ALLOW_ANY < a SHARED_MESH_CONFIG map its env names (skipped
    when missing) < the ``istio`` map (mesh.go:112-136, collection.go:53-60)."""
    mode = "ALLOW_ANY"
    shared = (values.get("env") or {}).get("SHARED_MESH_CONFIG")
    for cm in (o for o in objects if o["kind"] == "ConfigMap" and shared and o["metadata"]["name"] == shared):
        mode = (yaml.safe_load(cm["data"]["mesh"]).get("outboundTrafficPolicy") or {}).get("mode", mode)
    return (istio_map.get("outboundTrafficPolicy") or {}).get("mode", mode)


@pytest.mark.parametrize("stack", ISTIO_STACKS)
def test_istioctl_and_istiod_see_registry_only_in_the_istio_configmap(stack):
    for cluster, st in _states(stack).items():
        for rel in (r for r in st.releases if r.chart == "istiod"):
            assert "SHARED_MESH_CONFIG" not in (rel.values.get("env") or {}), (cluster, rel.name)
            seen_by_istioctl = chart_mesh(rel.values)
            assert seen_by_istioctl["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}, (cluster, rel.name)
            assert effective_mode(rel.values, seen_by_istioctl, []) == "REGISTRY_ONLY"


def test_non_default_trust_domain_and_mesh_wide_locality_are_meshConfig():
    mesh = stack_mesh("prod")
    mesh["trustDomain"] = "prod.example.org"
    mesh["backend"]["localityFailover"] = {"failover": [{"from": "us-east-1", "to": "us-central1"}]}
    st = render_mesh(load_mesh(mesh, base_dir=ROOT))["prod-gcp"]
    seen = chart_mesh(_istiod(st).values)
    assert seen["trustDomain"] == "prod.example.org"
    assert seen["localityLbSetting"] == {"enabled": True, "failover": [{"from": "us-east-1", "to": "us-central1"}]}


@pytest.mark.parametrize("stack", ISTIO_STACKS)
def test_upgrade_from_the_shared_configmap_never_runs_allow_any(stack):
    """A ``pulumi up`` from the previous release: istiod's env named the map, the ``istio`` map had
    no outbound policy. Helm applies the ``istio`` ConfigMap before the Deployment (helm v3
    pkg/releaseutil/kind_sorter.go ``InstallOrder``), so a new pod never starts with the old map,
    and old and new pods run side by side during the rollout (istiod watches both maps). The
    retired map is kept this release with the same settings, so each reachable state runs
    REGISTRY_ONLY; had the map been deleted before Helm's update, old pods with the old ``istio``
    map would fall back to ALLOW_ANY."""
    for cluster, st in _states(stack).items():
        new = _istiod(st).values
        retired = next(o for o in st.objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "istio-mesh-components")
        # the same settings, but mesh.telemetry's extensionProviders (merged into istiod's values after
        # the control plane is rendered): an old istiod reading the retired map during the rollout
        # knows no mesh-* provider and skips the Telemetry entries naming them until it is replaced
        assert yaml.safe_load(retired["data"]["mesh"]) == {
            k: v for k, v in new["meshConfig"].items() if k != "extensionProviders"}
        assert "mesh-components.io/retired" in retired["metadata"]["annotations"]
        old = {**{k: v for k, v in new.items() if k != "meshConfig"}, "env": {"SHARED_MESH_CONFIG": "istio-mesh-components"}}
        old_map, new_map = chart_mesh(old), chart_mesh(new)
        for pod, istio_map in ((old, old_map), (old, new_map), (new, new_map)):
            assert effective_mode(pod, istio_map, [retired]) == "REGISTRY_ONLY", cluster
        assert effective_mode(old, old_map, []) == "ALLOW_ANY"  # why the map stays for this release


def test_registry_only_drift_check_reads_both_places():
    st = _states("prod")["prod-aws"]
    desired = {"prod-aws": ClusterView(st.objects, st.releases)}

    def live(values_of, objects):
        rels = [dataclasses.replace(r, values=values_of(r)) if r.chart == "istiod" else r for r in st.releases]
        return {"prod-aws": ClusterView(objects, rels)}

    def legacy(r):
        return {**{k: v for k, v in r.values.items() if k != "meshConfig"}, "env": {"SHARED_MESH_CONFIG": "istio-mesh-components"}}
    cm = [o for o in st.objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "istio-mesh-components"]
    others = [o for o in st.objects if o not in cm]
    assert check_registry_only(desired, live(lambda r: r.values, others)) == []       # upgraded, map gone
    assert check_registry_only(desired, live(legacy, st.objects)) == []               # previous release
    (f,) = check_registry_only(desired, live(legacy, others))                         # map deleted too early
    assert "ALLOW_ANY" in f.message


def test_graph_watches_meshConfig_not_the_retired_configmap():
    def with_overrides(*overrides):
        mesh = stack_mesh("prod")
        mesh["overrides"] = list(overrides)
        return load_mesh(mesh, base_dir=ROOT)
    allow_any = {"kind": "HelmRelease", "name": "istiod", "clusters": ["prod-aws"], "patch": [
        {"op": "replace", "path": "/values/meshConfig/outboundTrafficPolicy/mode", "value": "ALLOW_ANY"}]}
    g = graph_of(with_overrides(allow_any))
    assert {f.kind for f in g.findings if f.origin == "mesh.overrides[0]"} == {"override-widens"}
    assert ("svc_bookthief_2fbookthief", "ext__2a") in {(e.source, e.target) for e in g.edges if e.kind == "override"}
    retired = {"kind": "ConfigMap", "name": "istio-mesh-components", "namespace": "istio-system", "patch": [
        {"op": "replace", "path": "/data/mesh", "value": "outboundTrafficPolicy:\n  mode: ALLOW_ANY\n"}]}
    g = graph_of(with_overrides(retired))
    assert not [f for f in g.findings if f.origin.startswith("mesh.overrides")]


def test_guardrail_trust_domain_ignores_a_shared_mesh_config_map():
    ca = ("pulumi-python:dynamic:Resource", {"key_algorithm": "ECDSA_P256", "trust_domain": "x.example"})
    istiod = ("kubernetes:helm.sh/v3:Release", {"name": "istiod", "namespace": "istio-system", "chart": "istiod",
                                                 "values": {"env": {"SHARED_MESH_CONFIG": "shared"}}})
    cm = ("kubernetes:core/v1:ConfigMap", {"metadata": {"name": "shared", "namespace": "istio-system"},
                                           "data": {"mesh": "trustDomain: x.example\n"}})
    (msg,) = guardrails.validate_single_trust_domain([ca, istiod, cm])
    assert "cluster.local: istiod" in msg
