"""Istio ambient, read against upstream at the pinned versions (istio/istio 1.30.3, istio/ztunnel
1.30.3): every Service in front of a policed workload is covered at the waypoint, waypoints deny
by default, and the egress allow-list holds although ztunnel has no registry-only mode.

Upstream facts these tests are built from:
- pilot/pkg/model/policyattachment.go:151-163: at a waypoint a Service targetRef attaches only to
  the chain of the Service with that name; 194-197: a Gateway targetRef (same namespace) attaches
  to every chain of that waypoint. The namespace label ``istio.io/use-waypoint`` sends every
  Service of the namespace through it (https://istio.io/latest/docs/ambient/usage/waypoint/).
- pilot/pkg/security/authz/builder/builder.go:205-299: the ALLOW policies of one chain are one
  RBAC ALLOW filter whose policies are alternatives; a policy without rules is a policy that never
  matches, so an allow-nothing on the Gateway denies only what no Service policy allows
  (tests/policy_eval.py ``_decide`` models exactly that).
- ztunnel src/proxy/outbound.rs:599-629 (test ``build_request_unknown_dest``, 925-942): a
  destination without a known upstream is sent on as plain TCP; ambient respects Kubernetes
  NetworkPolicy, HBONE is TCP 15008, kubelet probes arrive from 169.254.7.127
  (https://istio.io/latest/docs/ambient/usage/networkpolicy/).
"""
from __future__ import annotations

import copy

import pytest

import egress_eval as ev
from mesh_components.core import egress
from mesh_components.meshes import istio_policy
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh, load_stack

from cp_helpers import stack_mesh, with_clusters, with_static_east_west
from policy_eval import Request, istio_allows
from program_harness import ROOT

TD = "cluster.local"
BOOKBUYER, BOOKTHIEF, INGRESS = ("bookbuyer", "bookbuyer"), ("bookthief", "bookthief"), ("mesh-ingress", "ingress-istio")


def dev():
    loaded = load_stack("dev", root=ROOT)
    return loaded.spec, render_mesh(loaded)["dev"].objects


def render(mesh: dict):
    loaded = load_mesh(mesh, base_dir=ROOT)
    return loaded.spec, render_mesh(loaded)


def waypoint_namespaces(objects) -> frozenset[str]:
    return frozenset(o["metadata"]["namespace"] for o in objects
                     if o["kind"] == "Gateway" and o["spec"].get("gatewayClassName") == "istio-waypoint")


def call(objects, source, service, labels, path="/books-bought", method="GET", namespace="bookstore",
         account="bookstore", port=14001) -> bool:
    req = Request(source, namespace, service, account, tuple(sorted(labels.items())), port, http=True,
                  method=method, path=path)
    return istio_allows(objects, req, trust_domain=TD, ambient_waypoint_namespaces=waypoint_namespaces(objects))


# --- 9: every Service in front of a policed workload, and default deny at the waypoint ----------

@pytest.mark.parametrize("service,labels", [
    ("bookstore", {"app": "bookstore", "version": "v1"}),
    ("bookstore-v1", {"app": "bookstore", "version": "v1"}),   # made for the split, same pods
    ("bookstore-v2", {"app": "bookstore", "version": "v2"}),
])
def test_per_version_services_admit_exactly_what_the_service_admits(service, labels):
    _, objs = dev()
    assert call(objs, BOOKBUYER, service, labels)
    assert not call(objs, BOOKBUYER, service, labels, path="/other")
    assert not call(objs, BOOKTHIEF, service, labels)       # before: bookstore-v1/-v2 let anyone in
    assert call(objs, INGRESS, service, labels, path="/anything")


def test_a_service_nobody_declared_is_closed_at_the_waypoint():
    """A user's own Service selecting the policed pods goes through the namespace waypoint too;
    no policy names it, so only the waypoint's default deny applies."""
    _, objs = dev()
    for source in (BOOKBUYER, BOOKTHIEF, INGRESS):
        assert not call(objs, source, "bookstore-admin", {"app": "bookstore", "version": "v1"})
    assert not call(objs, ("bookstore", "bookstore"), "warehouse-debug", {"app": "bookwarehouse"},
                    path="/restock-books", method="POST", namespace="bookwarehouse", account="bookwarehouse")
    assert call(objs, ("bookstore", "bookstore"), "bookwarehouse", {"app": "bookwarehouse"},
                path="/restock-books", method="POST", namespace="bookwarehouse", account="bookwarehouse")


def test_every_waypoint_denies_by_default_with_an_allow_nothing_on_its_gateway():
    _, objs = dev()
    gateways = [o for o in objs if o["kind"] == "Gateway" and o["spec"]["gatewayClassName"] == "istio-waypoint"]
    assert {(g["metadata"]["namespace"], g["metadata"]["name"]) for g in gateways} == {
        ("bookstore", "waypoint"), ("bookwarehouse", "waypoint"), ("mesh-egress", "egress-waypoint")}
    for g in gateways:
        ns, name = g["metadata"]["namespace"], g["metadata"]["name"]
        (deny,) = [o for o in objs if o["kind"] == "AuthorizationPolicy" and o["metadata"]["namespace"] == ns
                   and {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name}
                   in o["spec"].get("targetRefs", [])]
        assert deny["spec"] == {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                                "name": name}], "action": "ALLOW"}  # no rules: admits no one


def test_every_rendered_service_selecting_policed_pods_is_named_by_each_of_their_policies():
    """Structural form of the above: for each Service object we render (the per-version ones) in
    a waypoint namespace, every waypoint policy of the service whose pods it selects names it."""
    spec, objs = dev()
    waypoints = waypoint_namespaces(objs)
    for svc in (o for o in objs if o["kind"] == "Service" and o["metadata"]["namespace"] in waypoints):
        ns, selector = svc["metadata"]["namespace"], svc["spec"]["selector"]
        owner = next(s for s in spec.services if s.namespace == ns and s.pod_labels().items() <= selector.items())
        policies = [o for o in objs if o["kind"] == "AuthorizationPolicy" and o["metadata"]["namespace"] == ns
                    and {"group": "", "kind": "Service", "name": owner.name} in o["spec"].get("targetRefs", [])]
        assert policies
        for p in policies:
            assert {"group": "", "kind": "Service", "name": svc["metadata"]["name"]} in p["spec"]["targetRefs"]


def test_a_declared_service_without_access_rules_stays_open_behind_the_waypoint():
    """gamma: a destination without authorizations is not restricted; the default deny must not
    close it (a waypoint receives only HBONE, so every caller has a principal)."""
    mesh = stack_mesh("dev")
    mesh["services"].append({"name": "catalog", "namespace": "bookstore", "ports": [{"port": 8080}],
                             "versions": [{"name": "v1"}]})
    _, states = render(mesh)
    objs = states["dev"].objects
    open_ = next(o for o in objs if o["kind"] == "AuthorizationPolicy" and o["metadata"]["name"] == "catalog-unrestricted")
    assert open_["metadata"]["annotations"] == {istio_policy.UNRESTRICTED: "no access rule names this service"}
    for service in ("catalog", "catalog-v1"):
        assert call(objs, BOOKTHIEF, service, {"app": "catalog", "version": "v1"}, path="/x", account="catalog",
                    port=8080)
    assert not call(objs, BOOKTHIEF, "bookstore", {"app": "bookstore"})   # the policed one stays policed


def test_services_of_the_same_name_in_two_namespaces_are_each_guarded_at_ztunnel():
    """The ztunnel guard (only the waypoint may reach policed pods) is per namespace and service;
    keyed by name alone, the second namespace's pods were left open to direct pod traffic."""
    mesh = stack_mesh("dev")
    mesh["namespaces"] += [{"name": "shop-a"}, {"name": "shop-b"}]
    for ns in ("shop-a", "shop-b"):
        mesh["services"].append({"name": "api", "namespace": ns, "ports": [{"port": 8080}]})
        mesh["accessRules"].append({"name": f"buyer-to-{ns}", "namespace": ns,
                                    "destination": {"serviceAccount": "api"},
                                    "sources": [{"serviceAccount": "bookbuyer", "namespace": "bookbuyer"}],
                                    "http": [{"name": "get", "methods": ["GET"], "pathRegex": "/.*"}]})
    _, states = render(mesh)
    guards = {o["metadata"]["namespace"] for o in states["dev"].objects
              if o["kind"] == "AuthorizationPolicy" and o["metadata"]["name"] == "api-via-waypoint"}
    assert guards == {"shop-a", "shop-b"}


# --- 10: the ambient egress allow-list is a NetworkPolicy ---------------------------------------

def test_dev_lets_out_exactly_the_intent():
    """Before: no NetworkPolicy, so ztunnel's passthrough let every workload reach anything."""
    spec, objs = dev()
    assert ev.istio_ambient(objs, spec) == ev.intent(spec) == {
        ("bookwarehouse/bookwarehouse", "api.bookpublisher.example.com", 443)}
    without = [o for o in objs if o["kind"] != "NetworkPolicy"]
    assert ("bookbuyer/bookbuyer", ev.ANYWHERE, ev.ANY_PORT) in ev.istio_ambient(without, spec)


def test_egress_fence_allows_dns_the_cluster_and_hbone_and_leaves_probes_alone():
    spec, objs = dev()
    fences = [o for o in objs if o["kind"] == "NetworkPolicy"]
    assert sorted(o["metadata"]["namespace"] for o in fences) == ["bookbuyer", "bookstore", "bookthief", "bookwarehouse"]
    for f in fences:
        assert f["metadata"]["name"] == egress.EGRESS_FENCE
        assert f["spec"]["podSelector"] == {}                      # waypoint pods of the namespace too
        assert f["spec"]["policyTypes"] == ["Egress"]              # ingress (kubelet probes from 169.254.7.127) untouched
        dns, cluster = f["spec"]["egress"]
        assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                              "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
        assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
        assert cluster == {"to": [{"namespaceSelector": {}}]}
        rules = f["spec"]["egress"]
        waypoint = {"gateway.networking.k8s.io/gateway-name": egress.EGRESS_WAYPOINT}
        assert ev._reaches_pod(rules, f["metadata"]["namespace"], "mesh-egress", ev._ns_labels(objs, "mesh-egress"),
                               waypoint, egress.HBONE_PORT)
        assert ev._external(rules, set()) == set()


def test_ambient_without_egress_rules_still_lets_nothing_out():
    mesh = stack_mesh("dev")
    mesh["egress"] = []
    spec, states = render(mesh)
    objs = states["dev"].objects
    assert len([o for o in objs if o["kind"] == "NetworkPolicy"]) == 4
    assert ev.istio_ambient(objs, spec) == set()


def test_sidecars_keep_registry_only_and_get_no_network_policy():
    _, states = render(stack_mesh("staging"))
    assert not [o for st in states.values() for o in st.objects if o["kind"] == "NetworkPolicy"]


def test_an_override_that_opens_an_ip_block_shows_as_egress():
    mesh = stack_mesh("dev")
    mesh["overrides"] = [{"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1", "name": egress.EGRESS_FENCE,
                          "namespace": "bookbuyer", "patch": [{"op": "add", "path": "/spec/egress/-", "value": {
                              "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}}]}]
    spec, states = render(mesh)
    assert ("bookbuyer/bookbuyer", "0.0.0.0/0", 443) in ev.istio_ambient(states["dev"].objects, spec)


def test_multi_network_names_the_other_networks_east_west_gateways_or_refuses():
    mesh = with_clusters(stack_mesh("dev"), 2)
    with pytest.raises((SpecError, TranslationError)) as err:
        render(mesh)
    found = dict(err.value.problems)
    assert "eastWestGateway: {addresses" in found["mesh.clusters[1].eastWestGateway"]
    mesh = with_static_east_west(mesh)
    spec, states = render(mesh)
    fence = next(o for o in states["c1"].objects if o["kind"] == "NetworkPolicy")
    assert fence["spec"]["egress"][2] == {"to": [{"ipBlock": {"cidr": "198.51.100.2/32"}}],
                                          "ports": [{"protocol": "TCP", "port": 15008}]}   # c2's, not its own
    for st in states.values():
        assert ev.istio_ambient(st.objects, spec) <= ev.intent(spec)


def test_readme_says_registry_only_binds_sidecars_only():
    text = " ".join((ROOT / "README.md").read_text().split())
    assert "REGISTRY_ONLY binds sidecars only" in text


def test_policy_eval_reads_gateway_targeted_policies():
    """policy_eval's Gateway targetRef: attaches to every Service of the waypoint, not elsewhere."""
    pol = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
           "metadata": {"name": "d", "namespace": "bookstore"},
           "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}]}}
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "waypoint",
          "namespace": "bookstore"}, "spec": {"gatewayClassName": "istio-waypoint", "listeners": []}}
    assert not call([pol, gw], BOOKBUYER, "anything", {"app": "x"})
    other = copy.deepcopy(pol)
    other["spec"]["targetRefs"][0]["name"] = "another"
    assert call([other, gw], BOOKBUYER, "anything", {"app": "x"})
