"""Linkerd's default inbound policy and kubelet probes (issue 10, point 11).

Upstream, linkerd/linkerd2 at edge-26.8.3 (git show edge-26.8.3:<path>):
- charts/linkerd-control-plane/values.yaml:251 ``proxy.defaultInboundPolicy: "all-unauthenticated"``
  (the copy in ../shared/charts/linkerd-control-plane is byte-identical): a port no Server selects
  admits any client, even unmeshed; :93-98 ``policyController.probeNetworks`` 0.0.0.0/0, ::/0.
- policy-controller/k8s/index/src/inbound/workload.rs:185-195 reads
  ``config.linkerd.io/default-inbound-policy``; controller/proxy-injector/webhook.go:106-108 copies
  it from the namespace to the pod; defaults.rs:83-104: ``deny`` has no authorization.
- policy-controller/k8s/index/src/inbound/index.rs:1997-2018 + 2241-2300: a Server without routes
  (and a port without Server) gets the probe route ``GET`` ``Exact <probe path>`` from the probe
  networks; a Server WITH HTTPRoutes gets only its routes, so its kubelet probes are refused.
- OSM v1.2.4 demo/deploy-bookstore.sh:105-130: the bookstore is probed on 14001 at /liveness,
  /readiness and /startup (the app the shipped stacks describe).
"""
from __future__ import annotations

import copy
import importlib.util

import pytest
import yaml

from mesh_components.meshes import linkerd
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.render import render_mesh, translate
from mesh_components.spec import load_mesh, load_stack

from cp_helpers import find, stack_mesh
from policy_eval import Request, linkerd_allows

SCRAPE_OBJECTS = (linkerd.ADMIN_SERVER, linkerd.SCRAPE_METRICS, linkerd.SCRAPE_AUTH, linkerd.SCRAPE_PROBES)
"""The objects ``backend.linkerd.scrapers`` (the linkerd stack's, for its telemetry) adds to a
namespace with a Server: the proxy's admin port only (Server port ``linkerd-admin``, 4191), which
the evaluator does not model and no request here addresses (``linkerd.scrape_objects``)."""
from program_harness import ROOT

CHART = ROOT.parent / "shared" / "charts" / "linkerd-control-plane" / "values.yaml"
ANNOTATION = "config.linkerd.io/default-inbound-policy"

_pack = importlib.util.spec_from_file_location("mesh_guardrails_probe",
                                               ROOT / "policies" / "mesh-guardrails" / "mesh_guardrails.py")
guardrails = importlib.util.module_from_spec(_pack)
_pack.loader.exec_module(guardrails)


def render(mesh: dict):
    return render_mesh(load_mesh(mesh, base_dir=ROOT))


def default_of(state, namespace: str) -> str:
    """The default inbound policy the namespace's pods get: its annotation (copied onto every pod by
    the proxy injector), else the chart default read from the upstream chart's values."""
    ns = find(state.objects, "Namespace", namespace)
    chart_default = yaml.safe_load(CHART.read_text())["proxy"]["defaultInboundPolicy"]
    return (ns["metadata"].get("annotations") or {}).get(ANNOTATION, chart_default)


def test_the_chart_default_admits_everyone_and_probe_networks_are_ours():
    values = yaml.safe_load(CHART.read_text())
    assert values["proxy"]["defaultInboundPolicy"] == "all-unauthenticated"
    assert tuple(values["policyController"]["probeNetworks"]) == linkerd.PROBE_NETWORKS


def test_policed_namespaces_deny_what_no_server_selects():
    st = render(stack_mesh("linkerd"))["linkerd-east"]
    assert default_of(st, "bookstore") == "deny" and default_of(st, "bookwarehouse") == "deny"
    # namespaces without a destination keep the cluster default: the spec leaves them unrestricted
    assert ANNOTATION not in (find(st.objects, "Namespace", "bookthief")["metadata"].get("annotations") or {})
    # bookthief calls a port of the bookstore's pods that no Server covers (a debug port, say):
    # the chart default would let it (and any unmeshed pod) in; the namespace's deny does not
    debug = Request(("bookthief", "bookthief"), "bookstore", "bookstore", "bookstore", (("app", "bookstore"),),
                    9090, http=False)
    policy = [o for o in st.objects if o["apiVersion"].startswith("policy.linkerd.io/")
              and o["metadata"].get("namespace") == "bookstore" and "-probes" not in o["metadata"]["name"]
              and o["metadata"]["name"] not in SCRAPE_OBJECTS]
    assert linkerd_allows(policy, debug, trust_domain="cluster.local", default_policy="all-unauthenticated")
    assert not linkerd_allows(policy, debug, trust_domain="cluster.local", default_policy=default_of(st, "bookstore"))


def test_an_unpoliced_service_in_a_policed_namespace_is_refused_or_the_namespace_says_so():
    mesh = stack_mesh("linkerd")
    mesh["services"].append({"name": "inventory", "namespace": "bookstore",
                             "ports": [{"port": 8080, "protocol": "http"}]})
    with pytest.raises(TranslationError) as err:
        render(mesh)
    (path, message), = [(p, m) for p, m in err.value.problems if "inventory" in m]
    assert path == "mesh.services[5]" and "defaultInboundPolicy" in message and "'deny'" in message
    # translate renders the namespace's deny too (tests/test_review_findings.py, W1), so it refuses alike
    with pytest.raises(TranslationError) as err:
        translate(load_mesh(mesh, base_dir=ROOT), "linkerd")
    assert [p for p, m in err.value.problems if "inventory" in m] == ["mesh.services[5]"]
    # the user decides for the namespace: rendered as written
    next(n for n in mesh["namespaces"] if n["name"] == "bookstore")["defaultInboundPolicy"] = "cluster-authenticated"
    st = render(mesh)["linkerd-west"]
    assert default_of(st, "bookstore") == "cluster-authenticated"


def test_default_inbound_policy_is_a_linkerd_setting():
    mesh = stack_mesh("prod")
    mesh["namespaces"][0]["defaultInboundPolicy"] = "deny"
    with pytest.raises(SpecError) as err:
        load_mesh(mesh, base_dir=ROOT)
    assert any(p == "mesh.namespaces[0].defaultInboundPolicy" for p, _ in err.value.problems)


def test_probes_are_admitted_only_where_the_policy_controller_would_drop_them():
    st = render(stack_mesh("linkerd"))["linkerd-east"]
    route = find(st.objects, "HTTPRoute", "bookstore-http-probes", "bookstore")
    assert route["apiVersion"] == "policy.linkerd.io/v1beta3"
    assert route["spec"]["parentRefs"] == [{"group": "policy.linkerd.io", "kind": "Server", "name": "bookstore-http"}]
    # the shape of the controller's own probe route (index.rs:2258-2266): GET, Exact path
    assert route["spec"]["rules"] == [{"matches": [{"path": {"type": "Exact", "value": p}, "method": "GET"}
                                                   for p in ("/liveness", "/readiness", "/startup")]}]
    net = find(st.objects, "NetworkAuthentication", "bookstore-http-probes", "bookstore")
    assert [n["cidr"] for n in net["spec"]["networks"]] == list(linkerd.PROBE_NETWORKS)
    ap = find(st.objects, "AuthorizationPolicy", "bookstore-http-probes", "bookstore")
    assert ap["spec"]["targetRef"] == {"group": "policy.linkerd.io", "kind": "HTTPRoute", "name": "bookstore-http-probes"}
    assert ap["spec"]["requiredAuthenticationRefs"] == [{"group": "policy.linkerd.io", "kind": "NetworkAuthentication",
                                                         "name": "bookstore-http-probes"}]
    # a Server without routes keeps the controller's probe route: nothing rendered for it
    mesh = stack_mesh("linkerd")
    mysql = next(s for s in mesh["services"] if s["name"] == "mysql")
    mysql["ports"][0]["probePaths"] = ["/health"]
    st = render(mesh)["linkerd-east"]
    assert not [o for o in st.objects if o["metadata"]["name"].startswith("mysql") and "probes" in o["metadata"]["name"]]
    # and no probePaths, no probe objects (but the scrape objects' own, for the proxy's admin port)
    bare = stack_mesh("linkerd")
    next(s for s in bare["services"] if s["name"] == "bookstore")["ports"][0].pop("probePaths")
    assert not [o for o in render(bare)["linkerd-east"].objects if o["metadata"]["name"].endswith("-probes")
                and o["metadata"]["name"] not in SCRAPE_OBJECTS]


def _resources(st):
    out = []
    for o in st.objects:
        group, _, version = o["apiVersion"].rpartition("/")
        out.append((f"kubernetes:{group or 'core'}/{version}:{o['kind']}", o))
    return out


def test_the_probe_route_passes_the_network_guardrail_and_only_as_rendered():
    st = render(stack_mesh("linkerd"))["linkerd-east"]
    res = _resources(st)
    assert guardrails.validate_linkerd_network_allow_all(res) == []
    for tamper in (lambda r: r["spec"]["rules"][0]["matches"][0].pop("method"),
                   lambda r: r["spec"]["rules"][0]["matches"][0]["path"].update(type="PathPrefix", value="/"),
                   lambda r: r["metadata"]["annotations"].clear()):
        bad = copy.deepcopy(res)
        tamper(next(p for t, p in bad if p["kind"] == "HTTPRoute" and p["metadata"]["name"] == "bookstore-http-probes"))
        (msg,) = guardrails.validate_linkerd_network_allow_all(bad)
        assert "bookstore/bookstore-http-probes" in msg


def test_namespace_annotation_unauthenticated_fails_mtls_strict():
    ns = {"metadata": {"name": "bookstore", "annotations": {ANNOTATION: "all-unauthenticated"}}}
    assert guardrails.validate_mtls_strict("kubernetes:core/v1:NamespacePatch", ns)
    ns["metadata"]["annotations"][ANNOTATION] = "deny"
    assert guardrails.validate_mtls_strict("kubernetes:core/v1:Namespace", ns) == []


def test_shipped_linkerd_stack_loads_with_probe_paths():
    spec = load_stack("linkerd", root=ROOT).spec
    svc = next(s for s in spec.services if s.name == "bookstore")
    assert svc.ports[0].probe_paths == ["/liveness", "/readiness", "/startup"]
    with pytest.raises(SpecError):
        load_mesh({**stack_mesh("linkerd"), "services": [{"name": "x", "namespace": "bookstore", "ports": [
            {"port": 1, "probePaths": ["healthz"]}]}]}, base_dir=ROOT)
