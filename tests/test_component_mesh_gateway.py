"""MeshGateway used alone (issue 14): the north-south gateway of one cluster of a mesh installed by
other means, registered on the kubernetes provider given in ``opts``.

Each program here is a small Pulumi program under the SDK's mocks (``program_harness``): a
provider for the existing cluster, then one ``MeshGateway``. What it registers is compared with
what the pure core renders for the equivalent one-cluster stack (``render_mesh`` of a stack with
the same services, splits and ``ingress``): exactly the ``gateway`` concern and its Helm releases
(Envoy Gateway, cert-manager), nothing of the control plane or the mesh's policy."""
from __future__ import annotations

import copy
import subprocess

import pulumi
import pulumi_kubernetes as k8s
import pytest

from mesh_components.components import MeshGateway
from mesh_components.components.args import ArgsError
from mesh_components.components.mesh_gateway import plan
from mesh_components.components.registration import PATCH_FORCE_ANNOTATION as PATCH_FORCE
from mesh_components.components.registration import registered_type, resource_name
from mesh_components.spec.errors import TranslationError
from mesh_components.core.render import ClusterState, render_mesh, write_tree
from mesh_components.spec import load_mesh

from cp_helpers import stack_mesh
from program_harness import FAKE_KUBECONFIG, ROOT, Mocks, run_mocked, refused_on_existing_cluster

TOOLS = ROOT.parent / "shared" / "tools"
DEV = stack_mesh("dev")  # the bookstore services the shipped stacks share
STAGING_TLS = stack_mesh("staging")["ingress"]["tls"]  # an ACME ClusterIssuer with DNS-01 (Route 53)
NAME = "gateway"
COMPONENT_TYPE = "mesh:index:MeshGateway"
PROVIDER_TYPE = "pulumi:providers:kubernetes"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
GATEWAY_TYPE = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
SPLIT = {"name": "bookstore-split", "namespace": "bookstore", "service": "bookstore",
         "backends": [{"service": "bookstore-v1", "weight": 75}, {"service": "bookstore-v2", "weight": 25}]}

CASES = {
    "istio": ("istio", "sidecar", {}),
    "istio-envoy-gateway-tls": ("istio", "sidecar", {"implementation": "envoy-gateway", "tls": STAGING_TLS,
                                                     "revision": "1-30", "cloud": "aws"}),
    "ambient": ("istio", "ambient", {"tls": {"secretName": "bookstore-tls"}}),
    "linkerd-split": ("linkerd", None, {"trafficSplits": [SPLIT]}),
    "osm": ("osm", None, {"cloud": "gcp", "internalLoadBalancers": True}),
}
"""case -> (mesh, data plane, extra settings in the stack's camelCase: ingress fields, splits,
cluster fields, revision)."""

INGRESS_KEYS = {"implementation": "implementation", "tls": "tls"}
CLUSTER_KEYS = {"cloud": "cloud", "internalLoadBalancers": "internal_load_balancers"}


def component_args(case: str, **more) -> dict:
    mesh, dp, extra = CASES[case]
    ingress = DEV["ingress"]
    args = {"mesh": mesh, "mesh_name": "shop", "cluster_name": "c1", "trust_domain": "shop.example",
            "services": copy.deepcopy(DEV["services"]), "hosts": list(ingress["hosts"]),
            "routes": copy.deepcopy(ingress["routes"])}
    if dp:
        args["data_plane"] = dp
    for key, value in extra.items():
        field = {"trafficSplits": "traffic_splits", **CLUSTER_KEYS}.get(key, key)
        args[field] = copy.deepcopy(value)
    return {**args, **more}


def equivalent_stack(case: str) -> dict:
    """The one-cluster stack holding what :func:`component_args` gives (a region of its own: on one
    network it decides nothing of the gateway)."""
    mesh, dp, extra = CASES[case]
    backend: dict = {"type": mesh}
    if dp:
        backend["istio"] = {"dataPlane": dp}
    if "revision" in extra:
        backend.setdefault("istio", {})["revision"] = extra["revision"]
    cluster = {"name": "c1", "cloud": extra.get("cloud", "onprem"), "region": "europe-west1"}
    if "internalLoadBalancers" in extra:
        cluster["internalLoadBalancers"] = extra["internalLoadBalancers"]
    ingress = {**copy.deepcopy(DEV["ingress"]), **{k: copy.deepcopy(extra[k]) for k in INGRESS_KEYS if k in extra}}
    stack = {"name": "shop", "trustDomain": "shop.example", "backend": backend, "clusters": [cluster],
             "services": copy.deepcopy(DEV["services"]), "ingress": ingress}
    if "trafficSplits" in extra:
        stack["trafficSplits"] = copy.deepcopy(extra["trafficSplits"])
    return stack


def stack_state(case: str) -> ClusterState:
    return render_mesh(load_mesh(equivalent_stack(case), base_dir=ROOT))["c1"]


class GatewayStatusMocks(Mocks):
    """The harness's mocks, with the Gateway's status as the controller publishes it."""

    def new_resource(self, args):
        rid, outputs = super().new_resource(args)
        if args.typ == GATEWAY_TYPE:
            outputs = {**outputs, "status": {"addresses": [{"type": "IPAddress", "value": "203.0.113.10"}]}}
        return [rid, outputs]


def run(program) -> list:
    return run_mocked(program, GatewayStatusMocks())


OUTPUTS = ["objects", "gateways", "hosts", "addresses", "implementation", "service", "requirements"]


def run_component(args: dict, captured: dict | None = None) -> list:
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        component = MeshGateway(NAME, args, opts=pulumi.ResourceOptions(providers=[provider]))
        if captured is None:
            return None
        return pulumi.Output.all(*[getattr(component, n) for n in OUTPUTS]).apply(
            lambda values: captured.update(zip(OUTPUTS, values)))
    return run(program)


@pytest.fixture(scope="module")
def registered():
    out = {}
    for case in CASES:
        captured: dict = {}
        out[case] = (run_component(component_args(case), captured), captured)
    return out


def kubernetes(regs) -> list:
    return [r for r in regs if r.type.startswith("kubernetes:") and r.type != RELEASE_TYPE]


def only_provider(regs) -> bool:
    return [r.type for r in regs] == [PROVIDER_TYPE]


@pytest.mark.parametrize("case", CASES)
def test_registers_on_the_given_provider_exactly_the_gateway_concern_the_core_renders(registered, case):
    regs, _ = registered[case]
    provider = next(r for r in regs if r.type == PROVIDER_TYPE)
    component = next(r for r in regs if r.type == COMPONENT_TYPE)
    concern = stack_state(case).concerns["gateway"]
    expected = {(registered_type(o), resource_name(NAME, o)): o for o in concern}
    got = {(r.type, r.name): r for r in kubernetes(regs)}
    assert sorted(got) == sorted(expected)
    for key, r in got.items():
        o = expected[key]
        # used alone, a namespace is an UNFORCED NamespacePatch: the rendered metadata as is, no
        # pulumi.com/patchForce (registration.namespace_patch_metadata(meta, force=False))
        assert r.inputs["metadata"] == o["metadata"], key
        assert PATCH_FORCE not in (r.inputs["metadata"].get("annotations") or {}), key
        for field in set(o) - {"apiVersion", "kind", "metadata"}:
            assert r.inputs.get(field) == o[field], (key, field)
    assert any(t == "kubernetes:core/v1:NamespacePatch" for t, _ in got)  # mesh-ingress: the check above bites
    for r in kubernetes(regs) + [r for r in regs if r.type == RELEASE_TYPE]:
        assert r.parent == component.urn, r.name
        assert r.provider.startswith(provider.urn + "::"), r.name


@pytest.mark.parametrize("case", CASES)
def test_the_gateway_releases_are_the_stacks_and_nothing_of_the_control_plane_registers(registered, case):
    regs, _ = registered[case]
    state = stack_state(case)
    releases = [r for r in regs if r.type == RELEASE_TYPE]
    want = [r for r in state.releases if r.concern == "gateway"]
    # registrations reach the monitor in no fixed order: compare by release name
    assert sorted((r.name, r.inputs["name"], r.inputs["namespace"], r.inputs["version"]) for r in releases) == \
        sorted((f"{NAME}-{r.name}", r.name, r.namespace, r.version) for r in want)
    values = {r.inputs["name"]: r.inputs["values"] for r in releases}
    assert values == {r.name: r.values for r in want}
    by_urn = {r.urn: r for r in regs}
    for r in kubernetes(regs):  # Envoy Gateway's and cert-manager's custom resources wait for their releases
        if r.type.startswith(("kubernetes:gateway.envoyproxy.io/", "kubernetes:cert-manager.io/")):
            assert {by_urn[d].inputs["name"] for d in r.dependencies if by_urn[d].type == RELEASE_TYPE} == \
                {x.inputs["name"] for x in releases}, r.name
    control = {(registered_type(o), resource_name(NAME, o)) for c in ("control-plane", "ca", "policy", "namespaces",
                                                                       "egress") for o in state.concerns[c]}
    assert not control & {(r.type, r.name) for r in regs}
    assert not [r for r in regs if r.type.startswith("kubernetes:yaml") or r.type.startswith("pulumi-python:dynamic")]
    assert [r.type for r in regs if r.type.startswith("mesh:")] == [COMPONENT_TYPE]


def test_envoy_gateway_and_cert_manager_releases_where_the_stack_has_them(registered):
    names = {case: sorted(r.inputs["name"] for r in regs if r.type == RELEASE_TYPE)
             for case, (regs, _) in registered.items()}
    assert names == {"istio": [], "istio-envoy-gateway-tls": ["cert-manager", "eg"], "ambient": [],
                     "linkerd-split": ["eg"], "osm": ["eg"]}


@pytest.mark.parametrize("case", CASES)
def test_outputs_name_the_gateway_its_hosts_and_the_published_addresses(registered, case):
    _, out = registered[case]
    assert out["gateways"] == ["mesh-ingress/ingress"]
    assert out["hosts"] == ["bookstore.localtest.me"]
    assert out["addresses"] == ["203.0.113.10"]  # the Gateway's status, read back
    assert out["objects"] == len(stack_state(case).concerns["gateway"])
    impl = "istio" if case in ("istio", "ambient") else "envoy-gateway"
    assert out["implementation"] == impl
    assert out["service"] == ("mesh-ingress/ingress-istio" if impl == "istio" else "envoy-gateway-system/ingress-envoy")


def test_requirements_name_the_identity_the_mesh_must_admit_and_the_users_secrets(registered):
    _, out = registered["istio"]
    assert out["requirements"][0].startswith("the mesh's access policy admits the gateway's identity "
                                             "mesh-ingress/ingress-istio (service account; principal "
                                             "shop.example/ns/mesh-ingress/sa/ingress-istio) to the routed services "
                                             "bookstore/bookstore")
    _, out = registered["linkerd-split"]
    assert "envoy-gateway-system/ingress-envoy (service account; identity ingress-envoy.envoy-gateway-system." \
           "serviceaccount.identity.linkerd.shop.example)" in out["requirements"][0]
    assert any(r.startswith("no other Envoy Gateway runs in the cluster") for r in out["requirements"])
    _, out = registered["osm"]  # OSM: the IngressBackends registered here admit the gateway
    assert out["requirements"][0].startswith("the routed services' namespaces are monitored by OSM")
    _, out = registered["ambient"]  # the stack's notice, at the component's field
    assert any(r.startswith("tls.secretName: Secret mesh-ingress/bookstore-tls is yours to create") for r in
               out["requirements"])
    _, out = registered["istio-envoy-gateway-tls"]
    assert "istiod injects revision 1-30 into the Envoy Gateway proxies (label istio.io/rev: 1-30)" in out["requirements"]
    assert any(r.startswith("tls.issuer.acme.dns01.route53.accessKeyIDSecretRef: Secret route53-credentials")
               for r in out["requirements"])


def test_a_split_of_a_routed_service_is_applied_at_the_edge(registered):
    regs, _ = registered["linkerd-split"]
    (route,) = [r for r in regs if r.type == "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"]
    assert [(b["name"], b["weight"]) for b in route.inputs["spec"]["rules"][0]["backendRefs"]] == \
        [("bookstore-v1", 75), ("bookstore-v2", 25)]
    regs, _ = registered["istio"]  # no split: one backend, no weight
    (route,) = [r for r in regs if r.type == "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"]
    assert route.inputs["spec"]["rules"][0]["backendRefs"] == [{"name": "bookstore", "namespace": "bookstore",
                                                                 "port": 14001}]


def test_a_provider_given_as_opts_provider_reaches_every_child():
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        MeshGateway(NAME, component_args("osm"), opts=pulumi.ResourceOptions(provider=provider))
    regs = run(program)
    provider = next(r for r in regs if r.type == PROVIDER_TYPE)
    children = [r for r in regs if r.type.startswith("kubernetes:")]
    assert any(r.type == RELEASE_TYPE for r in children) and any(r.type == GATEWAY_TYPE for r in children)
    assert all(r.provider.startswith(provider.urn + "::") for r in children)


def test_camel_case_keys_and_whole_floats_are_accepted():
    snake = component_args("istio-envoy-gateway-tls", gateway_name="edge", cert_manager="external")
    camel = {("gatewayName" if k == "gateway_name" else "certManager" if k == "cert_manager" else
              "meshName" if k == "mesh_name" else "clusterName" if k == "cluster_name" else
              "trustDomain" if k == "trust_domain" else "dataPlane" if k == "data_plane" else k): v
             for k, v in copy.deepcopy(snake).items()}
    camel["routes"] = [{**r, "port": float(r["port"])} for r in camel["routes"]]
    a, b = plan(NAME, snake), plan(NAME, camel)
    assert a.objects == b.objects and a.outputs == b.outputs
    assert a.outputs["gateways"] == ["mesh-ingress/edge"]
    assert not [r for r in a.state.releases if r.chart == "cert-manager"]  # external: not installed


@pytest.mark.parametrize("case,change,expected", [
    ("istio", {"mesh": "kuma"}, ["MeshGateway gateway: mesh: 'kuma' is not one of 'istio', 'linkerd' or 'osm' "
                                 "(the meshes this project supports)"]),
    ("istio", {"colour": "blue"}, ["MeshGateway gateway: colour: unknown field; known fields: certManager, cloud, "
                                   "clusterName, dataPlane, gatewayApiCrds, gatewayName, gatewayNamespace, hosts, "
                                   "implementation, internalLoadBalancers, mesh, meshName, revision, routes, services, "
                                   "tls, trafficSplits, trustDomain"]),
    ("linkerd-split", {"implementation": "istio"},
     ["MeshGateway gateway: implementation: Istio's Gateway API implementation needs the istio backend; for linkerd "
      "use implementation: envoy-gateway"]),
    ("linkerd-split", {"revision": "1-30"},
     ["MeshGateway gateway: revision: applies to mesh istio only (the Envoy Gateway proxies' injection), not "
      "'linkerd'; remove it"]),
    ("istio", {"revision": "1-30"},
     ["MeshGateway gateway: revision: names the revision that injects Envoy Gateway's proxies, which only "
      "implementation envoy-gateway with dataPlane sidecar has; remove it"]),
    ("istio", {"tls": {"secretName": "bookstore-tls", "issuer": {"name": "mesh-ca", "meshCA": True}}},
     ["MeshGateway gateway: tls.issuer.meshCA: an Issuer signing with the mesh CA needs the cluster's intermediate CA "
      "material, which MeshGateway does not take; name an existing issuer (name, kind) or give acme"]),
    ("istio", {"routes": [{"pathPrefix": "/", "service": "bookshop", "namespace": "bookstore", "port": 14001}]},
     ["MeshGateway gateway: routes[0]: unknown service 'bookstore/bookshop'; did you mean 'bookstore/bookstore'?"]),
])
def test_bad_args_are_refused_at_the_components_field_before_anything_registers(case, change, expected):
    regs, error = refused_on_existing_cluster(MeshGateway, NAME, {**component_args(case), **change}, ArgsError)
    assert only_provider(regs)
    assert str(error).splitlines() == expected


def test_required_fields_are_named_with_every_other_problem_at_once():
    args = component_args("istio")
    del args["routes"]
    args["mesh_name"] = "Shop"
    with pytest.raises(ArgsError) as e:
        plan(NAME, args)
    lines = str(e.value).splitlines()
    assert lines[0] == "MeshGateway gateway: routes: required; give the routes (service, namespace, port, pathPrefix)"
    assert [line for line in lines[1:] if line.startswith("MeshGateway gateway: meshName: 'Shop' is not a DNS-1123")]
    assert not [line for line in lines[1:] if line.startswith("MeshGateway gateway: routes")]  # said once


def test_a_gateway_name_too_long_for_its_service_is_refused_at_its_field():
    with pytest.raises(ArgsError) as e:
        plan(NAME, component_args("istio", gateway_name="x" * 58))
    assert str(e.value).splitlines() == [
        "MeshGateway gateway: gatewayName: at most 57 characters: the gateway's Service and service account are named "
        "'<name>-envoy' or '<name>-istio' (a 63-character DNS label)"]


def test_a_value_not_known_at_construction_is_refused_naming_its_field():
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        with pytest.raises(ArgsError) as e:
            MeshGateway(NAME, component_args("istio", hosts=[provider.id]),
                        opts=pulumi.ResourceOptions(provider=provider))
        assert str(e.value).splitlines()[0].startswith(
            "MeshGateway gateway: hosts[0]: must be known when the component is constructed")
    assert only_provider(run(program))


def test_an_osm_route_to_a_tcp_port_is_refused_before_anything_registers():
    routes = [{"pathPrefix": "/", "service": "mysql", "namespace": "bookwarehouse", "port": 3306}]
    regs, error = refused_on_existing_cluster(MeshGateway, NAME, component_args("osm", routes=routes), TranslationError)
    assert only_provider(regs)
    (line,) = str(error).splitlines()
    assert line.startswith("MeshGateway gateway: routes[0].port: port 3306 of mysql is tcp; the ingress routes HTTP")


@pytest.mark.parametrize("case", CASES)
def test_every_object_passes_the_upstream_schemas(tmp_path, case):
    p = plan(NAME, component_args(case))
    st = ClusterState("c1")
    st.concerns["gateway"] = list(p.objects)
    st.releases = [r for r in p.state.releases if r.concern == "gateway"]
    write_tree({"c1": st}, tmp_path / "out")
    mesh = CASES[case][0]
    channel = "experimental" if mesh == "linkerd" else "standard"
    v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--profile", mesh, "--gateway-api", channel,
                        str(tmp_path / "out" / "c1")], capture_output=True, text=True)
    assert v.returncode == 0 and " 0 invalid" in v.stdout.splitlines()[-1], v.stdout[-3000:]


def test_service_mesh_composes_the_class_with_its_former_outputs():
    """``ServiceMesh`` builds its per-cluster gateway through ``_of_service_mesh``: same type, same
    name, the concern's objects, the four outputs it always had (tests/test_program.py,
    tests/test_generated_names.py and tests/test_gateway.py check every URN, the former type's
    alias and the addresses of the shipped stacks)."""
    state = stack_state("linkerd-split")
    seen: dict = {}

    def program():
        provider = k8s.Provider("c1", kubeconfig=FAKE_KUBECONFIG)
        comp = MeshGateway._of_service_mesh("mesh-c1-gateway", state, lambda slot: None, provider, {}, [],
                                            opts=pulumi.ResourceOptions(providers=[provider]))
        seen["outputs"] = comp.outputs(state.concerns["gateway"])
        return seen["outputs"]["addresses"].apply(lambda a: seen.update(addresses=a))
    regs = run(program)
    assert [r.type for r in regs if r.type.startswith("mesh:")] == [COMPONENT_TYPE]
    assert sorted(r.name for r in kubernetes(regs)) == sorted(resource_name("mesh-c1-gateway", o)
                                                             for o in state.concerns["gateway"])
    assert set(seen["outputs"]) == {"objects", "gateways", "hosts", "addresses"}
    assert seen["addresses"] == ["203.0.113.10"]


def test_pulumis_analyzer_reads_the_component_with_every_field_documented():
    from pulumi.provider.experimental.analyzer import Analyzer

    from mesh_components.components import package

    package.check_components([MeshGateway])
    (component,) = Analyzer("mesh").analyze([MeshGateway])["component_definitions"].values()
    assert {"mesh", "hosts", "routes", "services", "tls", "trafficSplits"} <= set(component.inputs)
    assert set(component.outputs) == {"objects", "gateways", "hosts", "addresses", "implementation", "service",
                                      "requirements"}
    assert all(p.description for p in [*component.inputs.values(), *component.outputs.values()])
