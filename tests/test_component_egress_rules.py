"""EgressRules used alone (issue 14): egress rules plus their service context, rendered for a mesh
installed by other means and registered on the kubernetes provider given in ``opts``.

Each program here is a small Pulumi program under the SDK's mocks (``program_harness``): a
provider for the existing cluster, then one ``EgressRules``. What it registers is compared with
what the pure core renders for the equivalent one-cluster stack (``render_mesh`` of a stack with
the same services, with their real ports, namespaces and ``egress``): exactly the ``egress``
concern and its Helm release, plus OSM's MeshConfig patch (global egress off), nothing of the
control plane."""
from __future__ import annotations

import copy
import subprocess

import pulumi
import pulumi_kubernetes as k8s
import pytest

from mesh_components.core import egress as egress_core
from mesh_components.components import EgressRules
from mesh_components.components.args import ArgsError
from mesh_components.components.egress_rules import PLACEHOLDER_PORTS, plan
from mesh_components.components.registration import PATCH_FORCE_ANNOTATION as PATCH_FORCE
from mesh_components.components.registration import registered_type, resource_name
from mesh_components.spec.errors import TranslationError
from mesh_components.core.render import ClusterState, render_mesh, write_tree
from mesh_components.core.slots import Slot, fill
from mesh_components.spec import load_mesh

from cp_helpers import stack_mesh
from program_harness import FAKE_KUBECONFIG, ROOT, Mocks, RecordingMonitor, run_mocked, refused_on_existing_cluster

TOOLS = ROOT.parent / "shared" / "tools"
DEV = stack_mesh("dev")  # the bookstore services and namespaces the shipped stacks share
PROD_RULES = stack_mesh("prod")["egress"]  # exact https, TLS origination and an injected credential
NAME = "egress"
COMPONENT_TYPE = "mesh:index:EgressRules"
PROVIDER_TYPE = "pulumi:providers:kubernetes"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
MESH_CONFIG_PATCH = "kubernetes:config.openservicemesh.io/v1alpha2:MeshConfigPatch"
API_KEY = "Bearer test-api-key-4f1c"  # a stand-in secret: asserted never to leave the Secret
BASIC_RULE = {"name": "book-publisher-api", "hosts": ["api.bookpublisher.example.com"],
              "ports": [{"port": 443, "protocol": "https"}],
              "sources": [{"service": "bookwarehouse", "namespace": "bookwarehouse"}]}

MESHES = [("istio", "sidecar"), ("istio", "ambient"), ("linkerd", None), ("osm", None)]


def rules_for(mesh: str, dp: str | None) -> list:
    if (mesh, dp) == ("istio", "sidecar"):
        return copy.deepcopy(PROD_RULES)
    if mesh == "linkerd":  # bookwarehouse also runs mysql: Linkerd allows per namespace, accepted on purpose
        return [{**copy.deepcopy(BASIC_RULE), "approximate": "namespace"}]
    return [copy.deepcopy(BASIC_RULE)]


def identities(services: list) -> list:
    """The services without their ports and versions: egress needs neither (``EgressServiceArgs``)."""
    return [{k: v for k, v in s.items() if k in ("name", "namespace", "serviceAccount", "labels")} for s in services]


def acknowledgements(mesh: str, dp: str | None) -> dict:
    """What the args must state for ``mesh`` (``egress_rules._acknowledgement_problems``): Istio
    sidecars that istiod runs REGISTRY_ONLY, OSM that the mesh-wide egress switch may be turned off."""
    if (mesh, dp) in (("istio", "sidecar"), ("istio", None)):
        return {"istio_outbound_traffic_policy": "REGISTRY_ONLY"}
    return {"osm_mesh_wide_change": True} if mesh == "osm" else {}


def component_args(mesh: str, dp: str | None, **more) -> dict:
    args = {"mesh": mesh, "mesh_name": "shop", "cluster_name": "c1", "trust_domain": "shop.example",
            "services": identities(DEV["services"]), "namespaces": [n["name"] for n in DEV["namespaces"]],
            "rules": rules_for(mesh, dp)}
    if dp:
        args["data_plane"] = dp
    args.update(acknowledgements(mesh, dp))
    if any(r.get("credential") for r in args["rules"]):
        args["credentials"] = {"bookPublisherApiKey": pulumi.Output.secret(API_KEY)}
    return {**args, **more}


def equivalent_stack(mesh: str, dp: str | None) -> dict:
    """The one-cluster stack holding what :func:`component_args` gives, services with their real
    ports (a cloud and region of its own: they decide nothing of egress on one network)."""
    backend: dict = {"type": mesh}
    if dp:
        backend["istio"] = {"dataPlane": dp}
    return {"name": "shop", "trustDomain": "shop.example", "backend": backend,
            "clusters": [{"name": "c1", "cloud": "gcp", "region": "europe-west1"}],
            "namespaces": copy.deepcopy(DEV["namespaces"]), "services": copy.deepcopy(DEV["services"]),
            "egress": rules_for(mesh, dp)}


def stack_state(mesh: str, dp: str | None) -> ClusterState:
    return render_mesh(load_mesh(equivalent_stack(mesh, dp), base_dir=ROOT))["c1"]


def stack_lookup(slot: Slot):
    assert (slot.source, slot.key, slot.secret) == ("config", "bookPublisherApiKey", True), slot
    return API_KEY


def run(program) -> list:
    return run_mocked(program)


OUTPUTS = ["objects", "service_entries", "allowed", "enforced_by", "namespaces", "requirements"]


def run_component(args: dict, captured: dict | None = None) -> list:
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        component = EgressRules(NAME, args, opts=pulumi.ResourceOptions(providers=[provider]))
        if captured is None:
            return None
        names = OUTPUTS + [n for n in ("egress_gateway", "mesh_config") if hasattr(component, n)]
        return pulumi.Output.all(*[getattr(component, n) for n in names]).apply(
            lambda values: captured.update(zip(names, values)))
    return run(program)


@pytest.fixture(scope="module")
def registered():
    """mesh/data plane -> (registrations, captured outputs), one run each."""
    out = {}
    for mesh, dp in MESHES:
        captured: dict = {}
        out[(mesh, dp)] = (run_component(component_args(mesh, dp), captured), captured)
    return out


def kubernetes(regs) -> list:
    return [r for r in regs if r.type.startswith("kubernetes:") and r.type != RELEASE_TYPE]


def only_provider(regs) -> bool:
    return [r.type for r in regs] == [PROVIDER_TYPE]


@pytest.mark.parametrize("mesh,dp", MESHES)
def test_registers_on_the_given_provider_exactly_the_egress_concern_the_core_renders(registered, mesh, dp):
    regs, _ = registered[(mesh, dp)]
    provider = next(r for r in regs if r.type == PROVIDER_TYPE)
    component = next(r for r in regs if r.type == COMPONENT_TYPE)
    concern = stack_state(mesh, dp).concerns["egress"]
    assert concern, "the equivalent stack renders egress objects"
    expected = {(registered_type(o), resource_name(NAME, o)): fill(o, stack_lookup) for o in concern}
    got = {(r.type, r.name): r for r in kubernetes(regs) if r.type != MESH_CONFIG_PATCH}
    assert sorted(got) == sorted(expected)
    for key, r in got.items():
        o = expected[key]
        # used alone, a namespace is an UNFORCED NamespacePatch: the rendered metadata as is, no
        # pulumi.com/patchForce (registration.namespace_patch_metadata(meta, force=False))
        assert r.inputs["metadata"] == o["metadata"], key
        assert PATCH_FORCE not in (r.inputs["metadata"].get("annotations") or {}), key
        for field in set(o) - {"apiVersion", "kind", "metadata"}:  # spec, data, stringData, type
            assert r.inputs.get(field) == o[field], (key, field)
    for r in kubernetes(regs) + [r for r in regs if r.type == RELEASE_TYPE]:
        assert r.parent == component.urn, r.name  # children of the component ...
        assert r.provider.startswith(provider.urn + "::"), r.name  # ... on the provider given in opts


@pytest.mark.parametrize("mesh,dp", MESHES)
def test_the_egress_release_is_the_stacks_and_nothing_of_the_control_plane_registers(registered, mesh, dp):
    regs, _ = registered[(mesh, dp)]
    state = stack_state(mesh, dp)
    releases = [r for r in regs if r.type == RELEASE_TYPE]
    want = [r for r in state.releases if r.concern == "egress"]
    assert [(r.inputs["name"], r.inputs["namespace"], r.inputs["chart"], r.inputs["version"]) for r in releases] == \
        [(r.name, r.namespace, r.chart, r.version) for r in want]
    for got, rel in zip(releases, want):
        assert got.inputs["values"] == rel.values
        assert got.name == f"{NAME}-{rel.name}"
    assert state.releases and state.concerns["control-plane"], "the stack itself has a control plane"
    control = {(registered_type(o), resource_name(NAME, o)) for c in ("control-plane", "ca", "policy", "namespaces")
               for o in state.concerns[c]}
    assert not control & {(r.type, r.name) for r in regs}
    assert not [r for r in regs if r.type.startswith("kubernetes:yaml") or r.type.startswith("pulumi-python:dynamic")]
    assert [r.type for r in regs if r.type.startswith("mesh:")] == [COMPONENT_TYPE]


def test_a_provider_given_as_opts_provider_reaches_every_child():
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        EgressRules(NAME, component_args("istio", "sidecar"), opts=pulumi.ResourceOptions(provider=provider))
    regs = run(program)
    provider = next(r for r in regs if r.type == PROVIDER_TYPE)
    children = [r for r in regs if r.type.startswith("kubernetes:")]
    assert any(r.type == RELEASE_TYPE for r in children)
    assert children and all(r.provider.startswith(provider.urn + "::") for r in children)


def test_istio_sidecar_the_gateway_release_precedes_its_routing_and_the_credential_stays_secret(registered):
    regs, out = registered[("istio", "sidecar")]
    by_urn = {r.urn: r for r in regs}
    (release,) = [r for r in regs if r.type == RELEASE_TYPE]
    assert release.inputs["name"] == "istio-egressgateway" and release.inputs["namespace"] == "mesh-egress"
    ns = next(r for r in regs if r.type == "kubernetes:core/v1:NamespacePatch"
              and r.inputs["metadata"]["name"] == "mesh-egress")
    assert ns.urn in release.dependencies  # the release waits for its namespace only: istiod exists already
    assert {by_urn[d].type for d in release.dependencies} == {"kubernetes:core/v1:NamespacePatch"}
    for r in kubernetes(regs):
        if r.type.startswith("kubernetes:networking.istio.io/") and r.inputs["metadata"]["namespace"] == "mesh-egress":
            assert release.urn in r.dependencies, r.name
    (secret,) = [r for r in regs if r.type == "kubernetes:core/v1:Secret"]
    assert secret.inputs["metadata"]["name"] == "book-publisher-orders-credential"
    assert secret.inputs["stringData"] == {"credential": API_KEY}
    assert any(p.startswith("stringData") for p in secret.secret_inputs)
    assert not [r.name for r in regs if r is not secret and API_KEY in repr(r.inputs)]
    assert API_KEY not in repr(out)
    assert out["egress_gateway"] == "mesh-egress/istio-egressgateway"
    assert out["enforced_by"] == "istio-egressgateway"
    assert out["service_entries"] == ["book-publisher-api", "book-publisher-orders"]
    # mysql shares bookwarehouse with the source: a Sidecar hides the entries from it
    assert [r.inputs["metadata"]["name"] for r in regs if r.type == "kubernetes:networking.istio.io/v1:Sidecar"] == \
        ["mysql-no-egress"]


def test_a_credential_given_as_a_plain_string_is_still_registered_as_a_secret():
    args = component_args("istio", "sidecar", credentials={"bookPublisherApiKey": API_KEY})
    regs = run_component(args)
    (secret,) = [r for r in regs if r.type == "kubernetes:core/v1:Secret"]
    assert secret.inputs["stringData"] == {"credential": API_KEY}
    assert any(p.startswith("stringData") for p in secret.secret_inputs)


def test_istio_sidecar_tells_that_registry_only_is_the_users_and_patches_nothing_of_istiod(registered):
    regs, out = registered[("istio", "sidecar")]
    assert out["requirements"][1].startswith("istiod runs with meshConfig.outboundTrafficPolicy.mode REGISTRY_ONLY")
    assert "https://istio.io/latest/docs/tasks/traffic-management/egress/egress-control/" in out["requirements"][1]
    assert any("every service of namespaces bookwarehouse is declared in services" in r for r in out["requirements"])
    assert not [r for r in regs if r.type.startswith("kubernetes:core/v1:ConfigMap")
                and r.inputs["metadata"].get("namespace") == "istio-system"]
    assert not [r for r in regs if (r.inputs.get("metadata") or {}).get("namespace") == "istio-system"]
    _, ambient = registered[("istio", "ambient")]
    assert not any("REGISTRY_ONLY" in r for r in ambient["requirements"])  # ztunnel: the NetworkPolicies fence it


def test_istio_ambient_fences_every_application_namespace(registered):
    regs, out = registered[("istio", "ambient")]
    fences = sorted(r.inputs["metadata"]["namespace"] for r in regs
                    if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert fences == ["bookbuyer", "bookstore", "bookthief", "bookwarehouse"]
    assert out["enforced_by"] == "egress-waypoint" and "egress_gateway" not in out
    assert not [r for r in regs if r.type == RELEASE_TYPE]
    assert any("NetworkPolicy mesh-egress-allow-list in namespaces bookbuyer, bookstore, bookthief, bookwarehouse"
               in r for r in out["requirements"])


def test_linkerd_closes_the_cluster_with_the_global_deny_and_says_so(registered):
    regs, out = registered[("linkerd", None)]
    nets = {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs["spec"] for r in regs
            if r.type == "kubernetes:policy.linkerd.io/v1alpha1:EgressNetwork"}
    assert nets == {("linkerd-egress", "mesh-egress"): {"trafficPolicy": "Deny"},
                    ("bookwarehouse", "mesh-egress"): {"trafficPolicy": "Deny"}}
    assert out["namespaces"] == ["linkerd-egress"]
    assert any(r.startswith("Linkerd's egress.globalEgressNetworkNamespace is linkerd-egress") and "open ones: none" in r
               for r in out["requirements"])
    p = plan(NAME, component_args("linkerd", None, linkerd_egress_open_namespaces=["linkerd-multicluster"]))
    opened = [o for o in p.objects if o["kind"] == "EgressNetwork" and o["spec"] == {"trafficPolicy": "Allow"}]
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in opened] == \
        [("linkerd-multicluster", "mesh-egress-open")]
    assert any("open ones: linkerd-multicluster" in r for r in p.outputs["requirements"])


def test_osm_turns_global_egress_off_after_the_egress_policies(registered):
    regs, out = registered[("osm", None)]
    (mc,) = [r for r in regs if r.type == MESH_CONFIG_PATCH]
    assert mc.inputs["metadata"]["name"] == "osm-mesh-config" and mc.inputs["metadata"]["namespace"] == "osm-system"
    assert mc.inputs["spec"] == {"traffic": {"enableEgress": False}}
    others = [r for r in kubernetes(regs) if r is not mc]
    assert others and {r.urn for r in others} <= set(mc.dependencies)
    assert out["mesh_config"] == "osm-system/osm-mesh-config"
    assert any("spec.traffic.enableEgress: false, patched here" in r for r in out["requirements"])
    p = plan(NAME, component_args("osm", None, osm_namespace="mesh-system"))
    assert p.mesh_config["metadata"]["namespace"] == "mesh-system"


def test_the_mesh_config_patch_waits_for_a_read_of_the_mesh_config():
    """A patch of a MeshConfig that is not there would create it (an SSA upsert: pulumi-kubernetes
    v4.32.0 provider/pkg/await/await.go Creation lines 190-207): a wrong osmNamespace would leave
    the real one with egress on. The read fails the step instead (registration.read_existing)."""
    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="test", preview=False, monitor=monitor)

    @pulumi.runtime.test
    def test_program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        EgressRules(NAME, component_args("osm", None, osm_namespace="mesh-system"),
                    opts=pulumi.ResourceOptions(providers=[provider]))

    test_program()
    regs = monitor.registrations
    component = next(r for r in regs if r.type == COMPONENT_TYPE)
    (read,) = monitor.reads
    assert (read.type, read.id, read.parent) == ("kubernetes:config.openservicemesh.io/v1alpha2:MeshConfig",
                                                 "mesh-system/osm-mesh-config", component.urn)
    (mc,) = [r for r in regs if r.type == MESH_CONFIG_PATCH]
    assert [d for d in mc.dependencies
            if d.endswith(f"mesh:index:EgressRules$kubernetes:config.openservicemesh.io/v1alpha2:MeshConfig::{read.name}")]
    for mesh, dp in MESHES[:3]:  # the other meshes patch nothing they must read (mesh-egress is the component's own)
        monitor.reads.clear()
        pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="test", preview=False, monitor=monitor)

        @pulumi.runtime.test
        def other(mesh=mesh, dp=dp):
            provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
            EgressRules(NAME, component_args(mesh, dp), opts=pulumi.ResourceOptions(providers=[provider]))
        other()
        assert monitor.reads == [], mesh


def test_osm_says_destroy_leaves_egress_closed_and_how_to_reopen_it():
    """The relinquished enableEgress reads as false after ``pulumi destroy``: no CRD default
    (../shared/crds/osm/config_meshconfig.yaml), presets applied only at creation (OSM v1.2.4
    cmd/osm-bootstrap/osm-bootstrap.go:282-329), read as is (pkg/configurator/methods.go:75)."""
    import json

    p = plan(NAME, component_args("osm", None, osm_namespace="mesh-system"))
    (text,) = [r for r in p.outputs["requirements"] if r.startswith("pulumi destroy does not reopen egress")]
    assert "every pod of the mesh stays without egress" in text
    assert "kubectl patch meshconfig osm-mesh-config -n mesh-system --type=merge -p '" in text
    assert json.loads(text.rsplit("-p '", 1)[1].rstrip("'")) == {"spec": {"traffic": {"enableEgress": True}}}


@pytest.mark.parametrize("mesh,dp,drop,expected", [
    # Istio's default outboundTrafficPolicy is ALLOW_ANY (istio 1.30.3 pkg/config/mesh/mesh.go:83,
    # DefaultMeshConfig): the sidecars would pass every host through and these ServiceEntries restrict nothing
    ("istio", "sidecar", {"istio_outbound_traffic_policy": None},
     "EgressRules egress: istioOutboundTrafficPolicy: required for Istio sidecars, not given: these ServiceEntries "
     "restrict egress only when istiod runs with meshConfig.outboundTrafficPolicy.mode REGISTRY_ONLY"),
    ("istio", "sidecar", {"istio_outbound_traffic_policy": "ALLOW_ANY"},
     "EgressRules egress: istioOutboundTrafficPolicy: required for Istio sidecars, 'ALLOW_ANY' given"),
    ("istio", "ambient", {"istio_outbound_traffic_policy": "REGISTRY_ONLY"},
     "EgressRules egress: istioOutboundTrafficPolicy: applies to Istio sidecar mode only, not ambient"),
    # enableEgress is one mesh-wide switch (OSM v1.2.4 pkg/apis/config/v1alpha2/mesh_config.go:97-98)
    ("osm", None, {"osm_mesh_wide_change": None},
     "EgressRules egress: osmMeshWideChange: required for OSM: this component sets spec.traffic.enableEgress false "
     "in OSM's MeshConfig, which closes egress for every application of the mesh"),
    ("osm", None, {"osm_mesh_wide_change": "true"}, "EgressRules egress: osmMeshWideChange: required for OSM"),
    ("linkerd", None, {"osm_mesh_wide_change": True},
     "EgressRules egress: osmMeshWideChange: applies to mesh osm only, not 'linkerd'; remove it"),
])
def test_rules_that_would_restrict_nothing_or_change_the_whole_mesh_need_the_users_word(mesh, dp, drop, expected):
    """Never wider than the user said: without the statement, nothing registers."""
    args = {k: v for k, v in {**component_args(mesh, dp), **drop}.items() if v is not None}
    regs, error = refused_on_existing_cluster(EgressRules, NAME, args, ArgsError)
    assert only_provider(regs)
    lines = str(error).splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    if "required" in expected:  # the message names the fix
        assert ("give istioOutboundTrafficPolicy: 'REGISTRY_ONLY'" in lines[0] and
                "in istiod's Helm values" in lines[0]) or "give osmMeshWideChange: true" in lines[0]


@pytest.mark.parametrize("mesh,dp", MESHES)
def test_allowed_is_the_intent_table_of_the_equivalent_stack(registered, mesh, dp):
    _, out = registered[(mesh, dp)]
    spec = load_mesh(equivalent_stack(mesh, dp), base_dir=ROOT).spec
    assert [(a["source"], a["host"], a["protocol"], a["port"]) for a in out["allowed"]] == \
        egress_core.allowed_egress(spec)
    assert out["objects"] == len(stack_state(mesh, dp).concerns["egress"])
    assert out["enforced_by"] == egress_core.egress_summary(spec, "c1")["enforcedBy"]


def test_ports_given_to_services_decide_nothing_of_egress():
    """The component gives each service :data:`PLACEHOLDER_PORTS`; the render with the real ports
    (above) and with other ports is the same egress."""
    stack = equivalent_stack("istio", "sidecar")
    other = copy.deepcopy(stack)
    for s in other["services"]:
        s["ports"] = copy.deepcopy(PLACEHOLDER_PORTS)
    a = render_mesh(load_mesh(stack, base_dir=ROOT))["c1"]
    b = render_mesh(load_mesh(other, base_dir=ROOT))["c1"]
    assert a.concerns["egress"] == b.concerns["egress"]
    assert [r for r in a.releases if r.concern == "egress"] == [r for r in b.releases if r.concern == "egress"]


def test_camel_case_keys_and_whole_floats_are_accepted():
    snake = component_args("istio", "sidecar")
    camel = {"mesh": "istio", "meshName": "shop", "clusterName": "c1", "trustDomain": "shop.example",
             "dataPlane": "sidecar", "istioOutboundTrafficPolicy": "REGISTRY_ONLY", "namespaces": [n["name"] for n in DEV["namespaces"]],
             "services": identities(DEV["services"]), "credentials": {"bookPublisherApiKey": API_KEY},
             "rules": [{**r, "ports": [{**p, "port": float(p["port"])} for p in r["ports"]]} for r in PROD_RULES]}
    camel["rules"][1]["ports"][0]["tlsOrigination"] = {"appPort": 80.0}
    camel["services"][0]["serviceAccount"] = "bookbuyer"  # a camelCase nested key, the default made explicit
    a, b = plan(NAME, snake), plan(NAME, camel)
    assert a.objects == b.objects and a.outputs == b.outputs


@pytest.mark.parametrize("change,expected", [
    ({"mesh": "kuma"}, ["EgressRules egress: mesh: 'kuma' is not one of 'istio', 'linkerd' or 'osm' "
                        "(the meshes this project supports)"]),
    ({"colour": "blue"}, ["EgressRules egress: colour: unknown field; known fields: clusterName, credentials, "
                          "dataPlane, gatewayApiCrds, istioOutboundTrafficPolicy, linkerdEgressOpenNamespaces, mesh, "
                          "meshName, namespaces, nodeLocalDns, osmMeshWideChange, osmNamespace, revision, rules, "
                          "services, trustDomain, version"]),
    ({"revision": "1-30", "mesh": "osm", "rules": [BASIC_RULE], "credentials": None,
      "istio_outbound_traffic_policy": None, "osm_mesh_wide_change": True},
     ["EgressRules egress: revision: applies to mesh istio only (the egress gateway), not 'osm'; remove it"]),
    ({"version": "1.30.3", "data_plane": "ambient", "rules": [BASIC_RULE], "credentials": None,
      "istio_outbound_traffic_policy": None},
     ["EgressRules egress: version: applies to the egress gateway of sidecar mode; ambient egress leaves through the "
      "egress waypoint, which istiod deploys: remove it"]),
    ({"credentials": {}}, ["EgressRules egress: rules[1].credential.secretConfig: no value for 'bookPublisherApiKey' "
                           "in credentials; give credentials: {'bookPublisherApiKey': <the header value, as a Pulumi "
                           "secret>}"]),
    ({"credentials": {"bookPublisherApiKey": "x", "stale": "y"}},
     ["EgressRules egress: credentials.stale: no rule's credential.secretConfig names this key; remove it or name "
      "it in a rule"]),
    ({"rules": [{**BASIC_RULE, "hosts": ["*.bookpublisher.example.com"]}], "credentials": None},
     ["EgressRules egress: rules[0].hosts[0]: wildcard host '*.bookpublisher.example.com' would let traffic out to "
      "every name under it; list exact hosts, or set allowWildcard: true on this rule"]),
])
def test_bad_args_are_refused_at_the_components_field_before_anything_registers(change, expected):
    args = {k: v for k, v in {**component_args("istio", "sidecar"), **change}.items() if v is not None}
    regs, error = refused_on_existing_cluster(EgressRules, NAME, args, ArgsError)
    assert only_provider(regs)
    assert str(error).splitlines() == expected


def test_bad_nested_args_name_the_camel_case_path_and_every_problem_at_once():
    args = component_args("istio", "sidecar")
    args["rules"][0]["ports"][0]["port"] = 0
    args["rules"][0]["sources"][0]["service"] = "bookshop"
    args["services"][1]["ports"] = [{"port": 14001}]  # not an egress field
    args["colour"] = "blue"
    with pytest.raises(ArgsError) as e:
        plan(NAME, args)
    lines = str(e.value).splitlines()
    assert lines[0].startswith("EgressRules egress: colour: unknown field")
    assert lines[1] == ("EgressRules egress: services[1].ports: unknown field; known fields: labels, name, namespace, "
                        "serviceAccount")
    assert "EgressRules egress: rules[0].ports[0].port: 0 is not a port number: use 1-65535" in lines


def test_a_source_that_is_not_a_declared_service_is_refused_naming_it():
    args = component_args("osm", None)
    args["rules"][0]["sources"][0]["service"] = "bookshop"
    with pytest.raises(ArgsError) as e:
        plan(NAME, args)
    (line,) = str(e.value).splitlines()
    assert line.startswith("EgressRules egress: rules[0].sources[0]: unknown service 'bookwarehouse/bookshop'")


def test_a_value_not_known_at_construction_is_refused_naming_its_field():
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        args = component_args("osm", None)
        args["rules"][0]["hosts"] = [provider.id]  # another resource's output
        with pytest.raises(ArgsError) as e:
            EgressRules(NAME, args, opts=pulumi.ResourceOptions(provider=provider))
        assert str(e.value).splitlines()[0].startswith(
            "EgressRules egress: rules[0].hosts[0]: must be known when the component is constructed")
    assert only_provider(run(program))


@pytest.mark.parametrize("mesh,rule,expected", [
    ("linkerd", BASIC_RULE, "EgressRules egress: rules[0].sources: Linkerd allows egress per namespace, and "
                            "bookwarehouse also runs mysql, which would get book-publisher-api too"),
    ("osm", {**BASIC_RULE, "ports": [{"port": 5432, "protocol": "tcp"}]},
     "EgressRules egress: rules[0].ports[0]: OSM matches TCP egress by destination IP range only"),
    ("linkerd", {**BASIC_RULE, "approximate": "namespace", "ports": [{"port": 80, "protocol": "http",
                                                                       "tlsOrigination": {"appPort": 8080}}]},
     "EgressRules egress: rules[0].ports[0].tlsOrigination: Linkerd cannot originate TLS"),
])
def test_what_the_mesh_cannot_allow_exactly_is_refused_before_anything_registers(mesh, rule, expected):
    regs, error = refused_on_existing_cluster(EgressRules, NAME, component_args(mesh, None, rules=[copy.deepcopy(rule)]), TranslationError)
    assert only_provider(regs)
    lines = str(error).splitlines()
    assert any(line.startswith(expected) for line in lines), lines


@pytest.mark.parametrize("mesh,dp", MESHES)
def test_every_object_passes_the_upstream_schemas(tmp_path, mesh, dp):
    p = plan(NAME, component_args(mesh, dp))
    st = ClusterState("c1")
    st.concerns["egress"] = list(p.objects)
    st.concerns["control-plane"] = [p.mesh_config] if p.mesh_config else []
    st.releases = [r for r in p.state.releases if r.concern == "egress"]
    write_tree({"c1": st}, tmp_path / "out")
    channel = "experimental" if mesh == "linkerd" else "standard"
    v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--profile", mesh, "--gateway-api", channel,
                        str(tmp_path / "out" / "c1")], capture_output=True, text=True)
    assert v.returncode == 0 and " 0 invalid" in v.stdout.splitlines()[-1], v.stdout[-3000:]


def test_service_mesh_composes_the_class_with_its_former_outputs():
    """``ServiceMesh`` builds its per-cluster egress through ``_of_service_mesh``: same type, same
    name, the concern's objects and release, the three outputs it always had
    (tests/test_program.py and tests/test_generated_names.py check every URN of every shipped stack)."""
    state = stack_state("istio", "sidecar")
    seen: dict = {}

    def program():
        provider = k8s.Provider("c1", kubeconfig=FAKE_KUBECONFIG)
        seen["component"] = EgressRules._of_service_mesh("mesh-c1-egress", state, stack_lookup, provider, {}, [],
                                                         opts=pulumi.ResourceOptions(providers=[provider]))
    regs = run(program)
    assert [r.type for r in regs if r.type.startswith("mesh:")] == [COMPONENT_TYPE]
    assert sorted(r.name for r in kubernetes(regs)) == sorted(resource_name("mesh-c1-egress", o)
                                                             for o in state.concerns["egress"])
    assert [r.name for r in regs if r.type == RELEASE_TYPE] == ["mesh-c1-egress-istio-egressgateway"]
    former = seen["component"].outputs(state.concerns["egress"])
    assert former == {"objects": len(state.concerns["egress"]),
                      "service_entries": ["book-publisher-api", "book-publisher-orders"],
                      "egress_gateway": "istio-egressgateway"}


def test_namespace_patches_force_as_service_mesh_composes_them_and_never_used_alone(registered):
    """``ServiceMesh`` forces its NamespacePatches (the field manager an earlier release's
    ``Namespace`` left: registration.namespace_patch_metadata); used alone there is no such state,
    and a forced apply would take a value from its other manager, which ``pulumi destroy`` then
    relinquishes ownerless, so deleted (pulumi-kubernetes v4.32.0 provider/pkg/await/await.go
    Deletion lines 958-962, provider/pkg/ssa/actions.go Relinquish lines 27-57)."""
    alone = [r for r in registered[("istio", "sidecar")][0] if r.type == "kubernetes:core/v1:NamespacePatch"]
    assert [r.inputs["metadata"]["name"] for r in alone] == ["mesh-egress"]
    assert all(PATCH_FORCE not in (r.inputs["metadata"].get("annotations") or {}) for r in alone)
    state = stack_state("istio", "sidecar")

    def program():
        provider = k8s.Provider("c1", kubeconfig=FAKE_KUBECONFIG)
        EgressRules._of_service_mesh("mesh-c1-egress", state, stack_lookup, provider, {}, [],
                                     opts=pulumi.ResourceOptions(providers=[provider]))
    composed = [r for r in run(program) if r.type == "kubernetes:core/v1:NamespacePatch"]
    assert [r.inputs["metadata"]["name"] for r in composed] == ["mesh-egress"]
    assert all(r.inputs["metadata"]["annotations"][PATCH_FORCE] == "true" for r in composed)


def test_pulumis_analyzer_reads_the_component_with_every_field_documented():
    from pulumi.provider.experimental.analyzer import Analyzer

    from mesh_components.components import package

    package.check_components([EgressRules])
    (component,) = Analyzer("mesh").analyze([EgressRules])["component_definitions"].values()
    assert {"mesh", "rules", "services", "credentials"} <= set(component.inputs)
    assert set(component.outputs) == {"objects", "serviceEntries", "egressGateway", "allowed", "enforcedBy",
                                      "namespaces", "meshConfig", "requirements"}
    assert not [k for k, p in component.inputs.items() if p.optional and k in ("mesh", "rules", "services")]
    assert all(p.description for p in [*component.inputs.values(), *component.outputs.values()])


def test_credentials_given_as_one_secret_output_as_other_languages_send_them_are_read_at_deploy_time():
    """From TypeScript or YAML a mapping of secrets reaches the component as ONE secret Output (the
    SDK lifts a nested secret to the property: pulumi 3.272.0 ``pulumi/runtime/rpc.py``
    ``deserialize_property``), so its keys cannot be checked at construction: the value is taken at
    deploy time, still a secret."""
    args = component_args("istio", "sidecar")
    args["credentials"] = pulumi.Output.secret({"bookPublisherApiKey": API_KEY})
    regs = run_component(args)
    (secret,) = [r for r in regs if r.type == "kubernetes:core/v1:Secret"]
    assert secret.inputs["stringData"] == {"credential": API_KEY}
    assert any(p.startswith("stringData") for p in secret.secret_inputs)


def test_a_secret_credentials_output_without_a_rules_key_fails_the_update_naming_it():
    args = component_args("istio", "sidecar")
    args["credentials"] = pulumi.Output.secret({"otherKey": API_KEY})
    with pytest.raises(Exception) as e:
        run_component(args)
    assert f"EgressRules {NAME}: credentials.bookPublisherApiKey: no value" in str(e.value)
    assert API_KEY not in str(e.value)
