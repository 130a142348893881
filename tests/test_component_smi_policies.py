"""SmiPolicies used alone (issue 14): SMI documents plus their service context, rendered for a mesh
installed by other means and registered on the kubernetes provider given in ``opts``.

Each program here is a small Pulumi program under the SDK's mocks (``program_harness``): a
provider for the existing cluster, then one ``SmiPolicies``. What it registers is compared with
what the pure core renders for the equivalent stack (``render_mesh`` of a one-cluster stack with
the same services and SMI files): exactly the ``policy`` concern, plus the patches the policy
relies on (Istio ambient ``istio.io/use-waypoint``, Linkerd ``default-inbound-policy``, OSM's
MeshConfig permissive mode off), nothing of the control plane."""
from __future__ import annotations

import copy
import subprocess

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from mesh_components.components import SmiPolicies
from mesh_components.components.args import ArgsError
from mesh_components.components.registration import registered_type, resource_name
from mesh_components.components.smi_policies import plan
from mesh_components.spec.errors import TranslationError
from mesh_components.meshes.linkerd import DEFAULT_POLICY_ANNOTATION
from mesh_components.core.meta import PATCH_ANNOTATION
from mesh_components.core.render import ClusterState, render_mesh, write_tree
from mesh_components.spec import load_mesh

from cp_helpers import stack_mesh
from program_harness import FAKE_KUBECONFIG, ROOT, Mocks, PreviewMocks, run_mocked, refused_on_existing_cluster

TOOLS = ROOT.parent / "shared" / "tools"
DEV = stack_mesh("dev")  # the bookstore services and namespaces the shipped stacks share
NAME = "policies"
COMPONENT_TYPE = "mesh:index:SmiPolicies"
PROVIDER_TYPE = "pulumi:providers:kubernetes"

MESHES = [("istio", "sidecar"), ("istio", "ambient"), ("linkerd", None), ("osm", None)]


def component_args(mesh: str, data_plane: str | None, **more) -> dict:
    args = {"mesh": mesh, "mesh_name": "shop", "cluster_name": "c1", "trust_domain": "shop.example",
            "services": copy.deepcopy(DEV["services"]), "namespaces": copy.deepcopy(DEV["namespaces"]),
            "paths": ["policies/smi"]}
    if data_plane:
        args["data_plane"] = data_plane
    if mesh == "osm":  # the mesh-wide permissive-mode switch, accepted (smi_policies.stack_mesh)
        args["osm_mesh_wide_change"] = True
    return {**args, **more}


def equivalent_stack(mesh: str, data_plane: str | None) -> dict:
    """The one-cluster stack holding what :func:`component_args` gives (a cloud and region of its
    own: they decide nothing of the policy)."""
    backend: dict = {"type": mesh}
    if data_plane:
        backend["istio"] = {"dataPlane": data_plane}
    return {"name": "shop", "trustDomain": "shop.example", "backend": backend,
            "clusters": [{"name": "c1", "cloud": "gcp", "region": "europe-west1"}],
            "namespaces": copy.deepcopy(DEV["namespaces"]), "services": copy.deepcopy(DEV["services"]),
            "smiFiles": ["policies/smi"]}


def stack_state(mesh: str, data_plane: str | None) -> ClusterState:
    return render_mesh(load_mesh(equivalent_stack(mesh, data_plane), base_dir=ROOT))["c1"]


def run(program) -> list:
    return run_mocked(program)


def run_component(args: dict, captured: dict | None = None) -> list:
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        component = SmiPolicies(NAME, args, opts=pulumi.ResourceOptions(providers=[provider]))
        if captured is None:
            return None
        names = ["objects", "kinds", "authorization_policies", "servers", "traffic_targets", "namespaces_patched",
                 "restart_namespaces", "requirements"] + (["mesh_config"] if hasattr(component, "mesh_config") else [])
        return pulumi.Output.all(*[getattr(component, n) for n in names]).apply(
            lambda values: captured.update(zip(names, values)))
    return run(program)


@pytest.fixture(autouse=True)
def _at_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # `paths` resolve against the program's working directory, as the stack's smiFiles


@pytest.fixture(scope="module")
def registered():
    """mesh/data plane -> (registrations, captured outputs), one run each."""
    import os
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        out = {}
        for mesh, dp in MESHES:
            captured: dict = {}
            out[(mesh, dp)] = (run_component(component_args(mesh, dp), captured), captured)
        return out
    finally:
        os.chdir(here)


def kubernetes(regs) -> list:
    return [r for r in regs if r.type.startswith("kubernetes:")]


@pytest.mark.parametrize("mesh,dp", MESHES)
def test_registers_on_the_given_provider_exactly_the_policy_objects_the_core_renders(registered, mesh, dp):
    regs, _ = registered[(mesh, dp)]
    provider = next(r for r in regs if r.type == PROVIDER_TYPE)
    component = next(r for r in regs if r.type == COMPONENT_TYPE)
    policy = stack_state(mesh, dp).concerns["policy"]
    assert policy, "the equivalent stack renders policy objects"
    expected = {(registered_type(o), resource_name(NAME, o)): o for o in policy}
    got = {(r.type, r.name): r for r in kubernetes(regs)
           if r.type not in ("kubernetes:core/v1:NamespacePatch",
                             "kubernetes:config.openservicemesh.io/v1alpha2:MeshConfigPatch")}
    assert sorted(got) == sorted(expected)
    for key, r in got.items():
        o = expected[key]
        # the one addition: a waypoint is awaited until it takes traffic (smi_policies._awaited)
        want = ({**o["metadata"], "annotations": {WAIT_FOR: WAYPOINT_READY}} if is_waypoint(o) else o["metadata"])
        assert r.inputs["metadata"] == want, key
        assert r.inputs.get("spec") == o.get("spec"), key
    for r in kubernetes(regs):
        assert r.parent == component.urn, r.name  # children of the component ...
        assert r.provider.startswith(provider.urn + "::"), r.name  # ... on the provider given in opts
    children = {r.urn for r in kubernetes(regs)}
    for key, r in got.items():  # the mesh's CRDs exist already: a policy object waits only for the component's own
        assert set(r.dependencies) <= children, key


WAIT_FOR, WAYPOINT_READY = "pulumi.com/waitFor", "jsonpath={.status.addresses[0].value}"


def is_waypoint(o: dict) -> bool:
    return o["kind"] == "Gateway" and o["spec"].get("gatewayClassName") == "istio-waypoint"


def test_a_provider_given_as_opts_provider_reaches_every_child():
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        SmiPolicies(NAME, component_args("linkerd", None), opts=pulumi.ResourceOptions(provider=provider))
    regs = run(program)
    provider = next(r for r in regs if r.type == PROVIDER_TYPE)
    assert kubernetes(regs) and all(r.provider.startswith(provider.urn + "::") for r in kubernetes(regs))


@pytest.mark.parametrize("mesh,dp", MESHES)
def test_nothing_of_the_control_plane_is_registered(registered, mesh, dp):
    regs, _ = registered[(mesh, dp)]
    state = stack_state(mesh, dp)
    assert state.releases and state.concerns["control-plane"], "the stack itself has a control plane"
    types = {r.type for r in regs}
    assert not {t for t in types if t.startswith("kubernetes:helm") or t.startswith("kubernetes:yaml")}
    control = {(registered_type(o), resource_name(NAME, o)) for c in ("control-plane", "ca") for o in state.concerns[c]}
    assert not control & {(r.type, r.name) for r in regs}
    assert not [r for r in regs if r.type.startswith("pulumi-python:dynamic")]  # no CA either
    assert [r.type for r in regs if r.type.startswith("mesh:")] == [COMPONENT_TYPE]


def namespace_patches(regs) -> dict:
    return {r.inputs["metadata"]["name"]: r for r in regs if r.type == "kubernetes:core/v1:NamespacePatch"}


def test_istio_sidecar_patches_no_namespace_and_no_mesh_config(registered):
    regs, out = registered[("istio", "sidecar")]
    assert namespace_patches(regs) == {}
    assert out["namespaces_patched"] == [] and "mesh_config" not in out


def test_istio_ambient_labels_exactly_the_waypoint_namespaces_with_the_stacks_labels(registered):
    regs, out = registered[("istio", "ambient")]
    patches = namespace_patches(regs)
    stack_ns = {o["metadata"]["name"]: o for o in stack_state("istio", "ambient").concerns["namespaces"]}
    waypoints = {o["metadata"]["namespace"] for o in stack_state("istio", "ambient").concerns["policy"]
                 if o["kind"] == "Gateway"}
    assert set(patches) == waypoints == {"bookstore", "bookwarehouse"}
    for ns, r in patches.items():
        labels = r.inputs["metadata"]["labels"]
        assert labels == {"istio.io/use-waypoint": "waypoint", "istio.io/ingress-use-waypoint": "true"}
        assert labels.items() <= stack_ns[ns]["metadata"]["labels"].items()  # the stack sets the same
        assert "istio.io/dataplane-mode" not in labels  # enrolment stays the user's
        # unforced: a user's own use-waypoint fails the apply instead of being taken over (and deleted on destroy)
        assert r.inputs["metadata"]["annotations"] == {PATCH_ANNOTATION: "true"}
    assert out["namespaces_patched"] == ["bookstore", "bookwarehouse"]


def test_linkerd_annotates_the_policed_namespaces_deny_and_asks_for_a_restart(registered):
    regs, out = registered[("linkerd", None)]
    patches = namespace_patches(regs)
    stack_ns = {o["metadata"]["name"]: o for o in stack_state("linkerd", None).concerns["namespaces"]}
    assert set(patches) == {"bookwarehouse"}  # the namespace holding destinations with access rules
    meta = patches["bookwarehouse"].inputs["metadata"]
    assert meta["annotations"][DEFAULT_POLICY_ANNOTATION] == "deny"
    assert meta["annotations"][DEFAULT_POLICY_ANNOTATION] == \
        stack_ns["bookwarehouse"]["metadata"]["annotations"][DEFAULT_POLICY_ANNOTATION]
    assert "linkerd.io/inject" not in meta["annotations"]  # injection stays the user's
    assert out["restart_namespaces"] == ["bookwarehouse"]
    assert any("restart the workloads of namespaces bookwarehouse" in r for r in out["requirements"])
    assert out["servers"] and all(s.startswith("bookwarehouse/") for s in out["servers"])
    assert out["servers"] == sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                                    for o in stack_state("linkerd", None).concerns["policy"] if o["kind"] == "Server")


def test_namespace_patches_used_alone_do_not_force_and_service_meshs_still_do(registered):
    """A forced Server-Side Apply takes a field from its other manager (a user's stricter
    default-inbound-policy, their own use-waypoint) and ``pulumi destroy`` relinquishes it ownerless,
    so the API server deletes it (pulumi-kubernetes v4.32.0 provider/pkg/await/await.go Deletion
    lines 958-962, provider/pkg/ssa/actions.go Relinquish lines 27-57). ``ServiceMesh`` forces for
    the state of earlier releases only (registration.namespace_patch_metadata), which a component
    used alone has none of: unforced, a conflicting value fails the apply loudly. (ServiceMesh's
    patches of every shipped stack: tests/test_program.py, the PATCH_FORCE assertion.)"""
    from mesh_components.components.registration import PATCH_FORCE_ANNOTATION

    for key in (("linkerd", None), ("istio", "ambient")):
        patches = namespace_patches(registered[key][0])
        assert patches, key
        assert all(PATCH_FORCE_ANNOTATION not in r.inputs["metadata"]["annotations"] for r in patches.values()), key
    state = stack_state("linkerd", None)

    def program():
        provider = k8s.Provider("c1", kubeconfig=FAKE_KUBECONFIG)
        SmiPolicies._of_service_mesh("mesh-c1-policies", state, lambda slot: None, provider, {}, [],
                                     opts=pulumi.ResourceOptions(providers=[provider]))
        from mesh_components.components.registration import register_objects
        register_objects("mesh-c1", state.concerns["namespaces"], lambda slot: None, parent=None, provider=provider,
                         namespaces={})  # as ServiceMesh registers the cluster's namespaces (the default)
    composed = namespace_patches(run(program))
    assert "bookwarehouse" in composed
    assert all(r.inputs["metadata"]["annotations"][PATCH_FORCE_ANNOTATION] == "true" for r in composed.values())


def test_linkerd_warns_on_the_component_which_namespaces_to_restart_and_how(monkeypatch):
    """Running pods keep the default inbound policy they were injected with (linkerd2 edge-26.8.3
    policy-controller/k8s/index/src/inbound/workload.rs:185-195 reads the pod's annotation,
    index.rs:1767 falls back to the cluster default): ``restart_namespaces`` alone is easy to miss,
    so the component warns on itself, naming the namespaces and the command."""
    warned: list = []
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, resource=None, **kw: warned.append((msg, resource)))
    seen: dict = {}

    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        seen["linkerd"] = SmiPolicies(NAME, component_args("linkerd", None),
                                      opts=pulumi.ResourceOptions(providers=[provider]))
    run(program)
    assert len(warned) == 1
    msg, resource = warned[0]
    assert resource is seen["linkerd"]
    assert msg.startswith("SmiPolicies policies: the pods already running in namespaces bookwarehouse keep their "
                          "former Linkerd default inbound policy until restarted")
    assert "kubectl rollout restart deploy -n bookwarehouse" in msg
    # the other meshes patch no pod-read annotation: no warning
    for mesh, dp in (("istio", "sidecar"), ("istio", "ambient"), ("osm", None)):
        warned.clear()

        def other(mesh=mesh, dp=dp):
            provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
            SmiPolicies(NAME, component_args(mesh, dp), opts=pulumi.ResourceOptions(providers=[provider]))
        run(other)
        assert warned == [], mesh


def run_with_reads(program) -> tuple[list, list]:
    """:func:`run`, also returning the program's reads (``Resource.get``) in order."""
    return run_mocked(program, with_reads=True)


@pytest.mark.parametrize("mesh,more,read_type,read_id,patch_type", [
    ("linkerd", {}, "kubernetes:core/v1:Namespace", "bookwarehouse", "kubernetes:core/v1:NamespacePatch"),
    ("osm", {"osm_namespace": "mesh-system"}, "kubernetes:config.openservicemesh.io/v1alpha2:MeshConfig",
     "mesh-system/osm-mesh-config", "kubernetes:config.openservicemesh.io/v1alpha2:MeshConfigPatch"),
])
def test_each_patch_waits_for_a_read_of_what_it_patches(mesh, more, read_type, read_id, patch_type):
    """A patch's create is an SSA upsert (pulumi-kubernetes v4.32.0 provider/pkg/await/await.go
    Creation lines 190-207, "we currently always upsert"): without the read, a misspelt namespace
    or a wrong osmNamespace would be CREATED. A read of a missing object fails the step instead
    ("resource '<id>' does not exist", pulumi/pulumi pkg/resource/deploy/step.go ReadStep.Apply)."""
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        SmiPolicies(NAME, component_args(mesh, None, **more), opts=pulumi.ResourceOptions(providers=[provider]))
    regs, reads = run_with_reads(program)
    component = next(r for r in regs if r.type == COMPONENT_TYPE)
    provider = next(r for r in regs if r.type == PROVIDER_TYPE)
    (read,) = reads
    assert (read.type, read.id, read.parent) == (read_type, read_id, component.urn)
    assert read.provider.startswith(provider.urn + "::")  # the cluster of opts, like every child
    (patch,) = [r for r in regs if r.type == patch_type]
    # the read's URN (mocks: the parent's type chain, then the read's type and name)
    assert [d for d in patch.dependencies if d.endswith(f"mesh:index:SmiPolicies${read_type}::{read.name}")]
    assert read.name == f"{NAME}-existing:{read_id}"


def test_osm_turns_permissive_mode_off_after_the_traffic_targets(registered):
    regs, out = registered[("osm", None)]
    assert namespace_patches(regs) == {}
    (mc,) = [r for r in regs if r.type == "kubernetes:config.openservicemesh.io/v1alpha2:MeshConfigPatch"]
    assert mc.inputs["metadata"]["name"] == "osm-mesh-config" and mc.inputs["metadata"]["namespace"] == "osm-system"
    assert mc.inputs["spec"] == {"traffic": {"enablePermissiveTrafficPolicyMode": False}}
    others = [r for r in kubernetes(regs) if r is not mc]
    assert {r.urn for r in others} <= set(mc.dependencies)
    assert out["mesh_config"] == "osm-system/osm-mesh-config"
    assert out["traffic_targets"] == sorted(
        f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in stack_state("osm", None).concerns["policy"]
        if o["kind"] == "TrafficTarget")
    assert out["traffic_targets"]


def test_osm_mesh_config_carries_the_retry_flag_when_a_retry_is_rendered():
    args = component_args("osm", None)
    args["services"][3]["resilience"] = {"retries": {"attempts": 2, "perTryTimeout": "1s"}}
    p = plan(NAME, args)
    assert any(o["kind"] == "Retry" for o in p.objects)
    assert p.mesh_config["spec"] == {"traffic": {"enablePermissiveTrafficPolicyMode": False},
                                     "featureFlags": {"enableRetryPolicy": True}}
    p = plan(NAME, {**component_args("osm", None), "osm_namespace": "mesh-system"})
    assert p.mesh_config["metadata"]["namespace"] == "mesh-system"


@pytest.mark.parametrize("mesh,change,expected", [
    # enablePermissiveTrafficPolicyMode is one switch of the whole mesh (OSM v1.2.4
    # pkg/apis/config/v1alpha2/mesh_config.go:113-114): turning it off denies every app's traffic
    ("osm", {"osm_mesh_wide_change": None},
     "SmiPolicies policies: osmMeshWideChange: required for OSM: this component sets "
     "spec.traffic.enablePermissiveTrafficPolicyMode false in OSM's MeshConfig, which denies every destination of the "
     "mesh that no TrafficTarget admits"),
    ("osm", {"osm_mesh_wide_change": False}, "SmiPolicies policies: osmMeshWideChange: required for OSM"),
    ("linkerd", {"osm_mesh_wide_change": True},
     "SmiPolicies policies: osmMeshWideChange: applies to mesh osm only, not 'linkerd'; remove it"),
])
def test_osms_mesh_wide_switch_needs_the_users_word_before_anything_registers(mesh, change, expected):
    args = {k: v for k, v in {**component_args(mesh, None), **change}.items() if v is not None}
    regs, error = refused_on_existing_cluster(SmiPolicies, NAME, args, ArgsError)
    assert only_provider(regs)
    lines = str(error).splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    if mesh == "osm":
        assert lines[0].endswith("give osmMeshWideChange: true to accept it")


def _json_patch_of(requirement: str) -> dict:
    """The ``-p '<json>'`` of the kubectl command a requirement names, parsed."""
    import json

    return json.loads(requirement.rsplit("-p '", 1)[1].rstrip("'"))


def test_osm_says_destroy_leaves_the_mesh_denying_and_how_to_reopen_it():
    """After ``pulumi destroy`` the relinquished field is absent and OSM reads it as false: the CRD
    has no default (../shared/crds/osm/config_meshconfig.yaml, enablePermissiveTrafficPolicyMode),
    osm-bootstrap applies the chart presets only to a MeshConfig it creates (OSM v1.2.4
    cmd/osm-bootstrap/osm-bootstrap.go:282-329), the Go bool has no omitempty
    (pkg/apis/config/v1alpha2/mesh_config.go:114) and is read as is (pkg/configurator/methods.go:70)."""
    p = plan(NAME, {**component_args("osm", None), "osm_namespace": "mesh-system"})
    (text,) = [r for r in p.requirements if r.startswith("pulumi destroy does not turn permissive mode back on")]
    assert "the mesh keeps denying every destination without a TrafficTarget" in text
    assert "kubectl patch meshconfig osm-mesh-config -n mesh-system --type=merge -p '" in text
    assert _json_patch_of(text) == {"spec": {"traffic": {"enablePermissiveTrafficPolicyMode": True}}}


def test_istio_sidecar_says_the_labels_must_select_the_pods():
    """A sidecar policy selects pods by the service's labels (default ``app: <name>``): matching no pod,
    it applies to none and the workload admits every caller
    (https://istio.io/latest/docs/reference/config/security/authorization-policy/ , "If there are no
    ALLOW policies for the workload, allow the request"). Ambient's waypoint policies name Services."""
    sidecar = plan(NAME, component_args("istio", "sidecar")).requirements
    assert any(r.startswith("the labels of each service (services[].labels, default app: <name>) select exactly its "
                            "pods") and "admits every caller" in r for r in sidecar)
    assert not any("services[].labels" in r for r in plan(NAME, component_args("istio", "ambient")).requirements)


def test_linkerd_names_older_servers_probes_and_scrapers_it_cannot_check():
    """Oldest Server of a port wins (linkerd2 edge-26.8.3 policy-controller/k8s/index/src/inbound/
    index.rs:1246-1266); a Server with HTTPRoutes gets no default probe route (index.rs:2008-2017);
    a deny namespace refuses scrapers not in linkerdScrapers (linkerd.scrape_objects)."""
    p = plan(NAME, component_args("linkerd", None))
    servers = [o for o in p.objects if o["kind"] == "Server"]
    (older,) = [r for r in p.requirements if r.startswith("no other Server selects these pods on the same port")]
    assert "the oldest Server that selects it and skips the others" in older
    assert all(f"{o['metadata']['namespace']}/{o['metadata']['name']}" in older for o in servers) and servers
    (probes,) = [r for r in p.requirements if r.startswith("the kubelet's httpGet probes of ports ")]
    assert probes.startswith("the kubelet's httpGet probes of ports bookwarehouse/bookwarehouse:14001 are admitted "
                             "only on the paths listed in probePaths")
    (scrapes,) = [r for r in p.requirements if r.startswith("nothing needs to scrape the proxies' metrics")]
    assert "in namespaces bookwarehouse (default inbound policy deny)" in scrapes and "linkerdScrapers" in scrapes
    # each goes once the args cover it
    args = component_args("linkerd", None,
                          linkerd_scrapers=[{"namespace": "linkerd-viz", "service_account": "prometheus"}])
    for s in args["services"]:
        if s["name"] == "bookwarehouse":
            s["ports"] = [{**port, "probe_paths": ["/healthz"]} for port in s["ports"]]
    covered = plan(NAME, args).requirements
    assert not [r for r in covered if r.startswith(("the kubelet's httpGet probes", "nothing needs to scrape"))]
    assert any(r.startswith("no other Server selects these pods") for r in covered)


@pytest.mark.parametrize("mesh,dp", MESHES)
def test_outputs_count_and_name_what_was_registered(registered, mesh, dp):
    regs, out = registered[(mesh, dp)]
    policy = stack_state(mesh, dp).concerns["policy"]
    assert out["objects"] == len(policy)
    assert sum(out["kinds"].values()) == len(policy)
    assert out["authorization_policies"] == sorted(
        f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in policy if o["kind"] == "AuthorizationPolicy")
    assert out["requirements"][0].startswith("the workloads of namespaces bookbuyer, bookstore, bookthief, "
                                             "bookwarehouse run in the mesh")


def test_the_same_documents_given_as_objects_render_the_same_policy_objects_but_their_origin():
    docs = [d for f in sorted((ROOT / "policies" / "smi").glob("*.yaml"))
            for d in yaml.safe_load_all(f.read_text()) if d]
    by_path = plan(NAME, component_args("linkerd", None))
    by_object = plan(NAME, {**component_args("linkerd", None), "paths": [], "documents": docs})
    assert by_object.objects == by_path.objects
    assert by_object.namespaces == by_path.namespaces


def test_camel_case_keys_and_whole_floats_are_accepted():
    snake = component_args("istio", "ambient")
    camel = {"mesh": "istio", "meshName": "shop", "clusterName": "c1", "trustDomain": "shop.example",
             "dataPlane": "ambient", "paths": ["policies/smi"], "namespaces": copy.deepcopy(DEV["namespaces"]),
             "services": [{**{k: v for k, v in s.items() if k != "ports"},
                           "ports": [{**p, "port": float(p["port"])} for p in s["ports"]]} for s in DEV["services"]]}
    camel["services"][0]["serviceAccount"] = "bookbuyer"  # a camelCase nested key, the default made explicit
    a, b = plan(NAME, snake), plan(NAME, camel)
    assert a.objects == b.objects and a.namespaces == b.namespaces


def only_provider(regs) -> bool:
    return [r.type for r in regs] == [PROVIDER_TYPE]


@pytest.mark.parametrize("change,expected", [
    ({"mesh": "kuma"}, ["SmiPolicies policies: mesh: 'kuma' is not one of 'istio', 'linkerd' or 'osm' "
                        "(the meshes this project supports)"]),
    ({"trust_domain": "Shop Example"}, ["SmiPolicies policies: trustDomain: 'Shop Example' is not a DNS-1123 "
                                        "subdomain: use lower-case letters, digits, '-' and '.' (e.g. 'shop-example')"]),
    ({"data_plane": "waypoints"}, ["SmiPolicies policies: dataPlane: 'waypoints' is not one of 'sidecar' or "
                                   "'ambient'"]),
    ({"osm_namespace": "osm-system"}, ["SmiPolicies policies: osmNamespace: applies to mesh osm only, not 'istio'; "
                                       "remove it"]),
    ({"colour": "blue"}, ["SmiPolicies policies: colour: unknown field; known fields: clusterName, dataPlane, "
                          "documents, ingressIdentities, linkerdScrapers, mesh, meshName, namespaces, osmMeshWideChange, osmNamespace, "
                          "paths, services, trustDomain"]),
    ({"paths": ["policies/nowhere"]}, ["SmiPolicies policies: paths[0]: 'policies/nowhere' is neither a file nor a "
                                       f"folder under {ROOT}"]),
])
def test_bad_args_are_refused_at_the_components_field_before_anything_registers(change, expected):
    args = {**component_args("istio", None), **change}
    with pytest.raises(ArgsError) as e:
        run_component(args)
    assert str(e.value).splitlines() == expected


def test_bad_nested_args_name_the_camel_case_path_and_every_problem_at_once():
    args = component_args("istio", None)
    args["services"][0]["ports"][0]["port"] = 0
    args["services"][1]["service_account"] = "Book_Thief"
    args["colour"] = "blue"
    with pytest.raises(ArgsError) as e:
        plan(NAME, args)
    lines = str(e.value).splitlines()
    assert lines[0].startswith("SmiPolicies policies: colour: unknown field")
    assert "SmiPolicies policies: services[0].ports[0].port: 0 is not a port number: use 1-65535" in lines
    assert any(line.startswith("SmiPolicies policies: services[1].serviceAccount: 'Book_Thief' is not a DNS-1123")
               for line in lines)


def test_a_value_not_known_at_construction_is_refused_naming_its_field():
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        args = component_args("istio", None)
        args["services"][0]["namespace"] = provider.id  # another resource's output
        args["trust_domain"] = "Shop"
        with pytest.raises(ArgsError) as e:
            SmiPolicies(NAME, args, opts=pulumi.ResourceOptions(provider=provider))
        lines = str(e.value).splitlines()
        assert lines[0].startswith("SmiPolicies policies: services[0].namespace: must be known when the "
                                   "component is constructed")
        # every other problem too, and not the loader's word on the value it could not read
        assert lines[1:] == ["SmiPolicies policies: trustDomain: 'Shop' is not a DNS-1123 subdomain: use lower-case "
                             "letters, digits, '-' and '.' (e.g. 'shop')"]
    assert only_provider(run(program))


def test_an_istio_refusal_names_the_component_and_the_document_before_anything_registers():
    docs = [
        {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
         "metadata": {"name": "books", "namespace": "bookstore"},
         "spec": {"matches": [{"name": "numbered", "pathRegex": "/books/[0-9]+/reviews", "methods": ["GET"]}]}},
        {"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
         "metadata": {"name": "buyer-reviews", "namespace": "bookstore"},
         "spec": {"destination": {"kind": "ServiceAccount", "name": "bookstore", "namespace": "bookstore"},
                  "sources": [{"kind": "ServiceAccount", "name": "bookbuyer", "namespace": "bookbuyer"}],
                  "rules": [{"kind": "HTTPRouteGroup", "name": "books", "matches": ["numbered"]}]}},
    ]
    regs, error = refused_on_existing_cluster(SmiPolicies, NAME, {**component_args("istio", "sidecar"), "paths": [], "documents": docs}, TranslationError)
    assert only_provider(regs)
    lines = str(error).splitlines()
    assert lines and all(line.startswith("SmiPolicies policies: documents#") for line in lines)
    assert any("HTTPRouteGroup/bookstore/books" in line or "TrafficTarget/bookstore/buyer-reviews" in line
               for line in lines)
    assert "'/books/[0-9]+/reviews'" in str(error)


def test_a_linkerd_refusal_names_the_service_and_the_fix_in_the_components_terms():
    args = component_args("linkerd", None)
    args["services"].append({"name": "audit", "namespace": "bookwarehouse", "ports": [{"port": 8080}]})
    with pytest.raises(TranslationError) as e:
        plan(NAME, args)
    (line,) = str(e.value).splitlines()
    assert line.startswith("SmiPolicies policies: services[5]: bookwarehouse/audit has no access rule")
    assert "set defaultInboundPolicy on namespace 'bookwarehouse' in namespaces" in line
    # the fix it names works: a declared default is the user's decision, rendered as declared
    args["namespaces"] = [{**n, "default_inbound_policy": "all-authenticated"} if n["name"] == "bookwarehouse" else n
                          for n in args["namespaces"]]
    (patch,) = plan(NAME, args).namespaces
    assert patch["metadata"]["name"] == "bookwarehouse"
    assert patch["metadata"]["annotations"][DEFAULT_POLICY_ANNOTATION] == "all-authenticated"


def test_an_osm_refusal_names_the_component_and_both_documents():
    """OSM's Envoy rejects an RE2 program over 100 (osm_policy.envoy_regex_problem): refused, not dropped."""
    docs = [{"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
             "metadata": {"name": "long", "namespace": "bookstore"},
             "spec": {"matches": [{"name": "m", "pathRegex": "/" + "[a-z]{1,20}" * 4}]}},
            {"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
             "metadata": {"name": "buyer-long", "namespace": "bookstore"},
             "spec": {"destination": {"kind": "ServiceAccount", "name": "bookstore", "namespace": "bookstore"},
                      "sources": [{"kind": "ServiceAccount", "name": "bookbuyer", "namespace": "bookbuyer"}],
                      "rules": [{"kind": "HTTPRouteGroup", "name": "long", "matches": ["m"]}]}}]
    regs, error = refused_on_existing_cluster(SmiPolicies, NAME, {**component_args("osm", None), "documents": docs}, TranslationError)
    assert only_provider(regs)
    (line,) = str(error).splitlines()
    assert line.startswith("SmiPolicies policies: documents#TrafficTarget/bookstore/buyer-long: "
                           "documents#HTTPRouteGroup/bookstore/long match 'm': regex ")
    assert "over the 100 OSM's Envoy accepts" in line


@pytest.mark.parametrize("mesh,dp,profile", [(m, d, m) for m, d in MESHES])
def test_every_object_passes_the_upstream_schemas(tmp_path, mesh, dp, profile):
    p = plan(NAME, component_args(mesh, dp))
    st = ClusterState("c1")
    st.concerns["namespaces"] = list(p.namespaces)
    st.concerns["policy"] = list(p.objects)
    st.concerns["control-plane"] = [p.mesh_config] if p.mesh_config else []
    write_tree({"c1": st}, tmp_path / "out")
    channel = "experimental" if mesh == "linkerd" else "standard"
    v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--profile", profile, "--gateway-api", channel,
                        str(tmp_path / "out" / "c1")], capture_output=True, text=True)
    assert v.returncode == 0 and " 0 invalid" in v.stdout.splitlines()[-1], v.stdout[-3000:]


def test_service_mesh_composes_the_class_with_its_former_outputs():
    """``ServiceMesh`` builds its per-cluster policies through ``_of_service_mesh``: same type,
    same name, the concern's objects, the two outputs it always had (tests/test_program.py and
    tests/test_generated_names.py check every URN of every shipped stack)."""
    state = stack_state("istio", "sidecar")
    seen: dict = {}

    def program():
        provider = k8s.Provider("c1", kubeconfig=FAKE_KUBECONFIG)
        comp = SmiPolicies._of_service_mesh("mesh-c1-policies", state, lambda slot: None, provider, {}, [],
                                            opts=pulumi.ResourceOptions(providers=[provider]))
        seen["component"] = comp
    regs = run(program)
    assert [r.type for r in regs if r.type.startswith("mesh:")] == [COMPONENT_TYPE]
    assert sorted(r.name for r in kubernetes(regs)) == sorted(resource_name("mesh-c1-policies", o)
                                                             for o in state.concerns["policy"])
    assert seen["component"].outputs(state.concerns["policy"]).keys() == {"objects", "authorization_policies"}


def test_repath_maps_the_longest_stack_prefix_at_a_field_boundary_and_the_paths_in_messages():
    """``components.standalone.repath`` (shared by the standalone components): a stack path becomes
    the component's field by its longest mapped prefix that ends at a field boundary."""
    from mesh_components.components.standalone import repath, repath_one

    fields = {"mesh": "", "mesh.backend": "mesh", "mesh.backend.istio.dataPlane": "dataPlane",
              "mesh.services": "services", "mesh.smiFiles": "paths"}
    assert repath_one("mesh.backend.istio.dataPlane", fields) == "dataPlane"
    assert repath_one("mesh.backend.type", fields) == "mesh.type"  # only what the map says
    assert repath_one("mesh.services[2].ports[0].port", fields) == "services[2].ports[0].port"
    assert repath_one("mesh.servicesExtra", fields) == "servicesExtra"  # not services: no boundary
    assert repath_one("policies/smi/a.yaml#TrafficTarget/x/y.spec", fields) == \
        "policies/smi/a.yaml#TrafficTarget/x/y.spec"  # an SMI file's own path stays
    assert repath("X", "n", [("mesh.smiFiles[1]", "see mesh.services[0] and mesh.smiFiles"),
                             ("mesh.smiFiles[1]", "see mesh.services[0] and mesh.smiFiles")], fields) == \
        [("X n: paths[1]", "see services[0] and paths")]


# ---------------------------------------------------------------------------------------------
# registration order: nothing denies an admitted call on the way, nothing stays open longer than it must


def ztunnel_enforced(r) -> bool:
    """An Istio AuthorizationPolicy with a ``selector``: ztunnel's (istio 1.30.3
    pilot/pkg/serviceregistry/ambient/authorization.go:419-422 gives ztunnel none with targetRefs)."""
    return r.type == "kubernetes:security.istio.io/v1:AuthorizationPolicy" and "selector" in r.inputs["spec"]


def in_namespace(regs, ns: str) -> list:
    return [r for r in kubernetes(regs) if r.type != "kubernetes:core/v1:NamespacePatch"
            and r.inputs["metadata"].get("namespace") == ns]


def test_istio_ambient_labels_a_namespace_after_its_waypoint_and_policies_and_ztunnels_policies_after_the_label(
        registered):
    """A namespace labelled ``istio.io/use-waypoint`` for a waypoint not taking traffic yet gets no
    waypoint: istiod gives its Services none (istio 1.30.3 pilot/pkg/serviceregistry/ambient/
    waypoints.go:112-126 ReportWaypointIsNotReady; :230-231 a Gateway without status.addresses is
    none; services.go:693 ``Waypoint: w.GetAddress()``, nil) and ztunnel calls the pods directly,
    where only its own (``selector``) policies apply. The label comes after the waypoint Gateway
    (awaited until it has an address) and every policy acting at it; the ``<service>-via-waypoint``
    policies, which admit only the waypoint, come after the label: registered with the label,
    they refused every direct call until the waypoint's pods ran."""
    regs, _ = registered[("istio", "ambient")]
    patches = namespace_patches(regs)
    guards = 0
    for ns, patch in patches.items():
        here = in_namespace(regs, ns)
        at_waypoint = [r for r in here if not ztunnel_enforced(r)]
        (gateway,) = [r for r in at_waypoint if r.type == "kubernetes:gateway.networking.k8s.io/v1:Gateway"]
        assert gateway.inputs["metadata"]["annotations"] == {WAIT_FOR: WAYPOINT_READY}
        assert {r.urn for r in at_waypoint} <= set(patch.dependencies), ns  # the waypoint and its policies first
        assert all(patch.urn not in r.dependencies for r in at_waypoint), ns
        for r in here:
            if ztunnel_enforced(r):
                assert r.inputs["metadata"]["name"].endswith("-via-waypoint")
                assert patch.urn in r.dependencies and r.urn not in patch.dependencies, r.name
                guards += 1
    assert set(patches) == {"bookstore", "bookwarehouse"} and guards == 2  # bookwarehouse's and mysql's


def test_the_waypoint_is_awaited_until_istiod_gives_it_an_address():
    """pulumi-kubernetes awaits ``pulumi.com/waitFor`` after a create or update (v4.32.0
    provider/pkg/metadata/overrides.go:81-160 ReadyCondition); a JSONPath without a value holds once
    it selects something (provider/pkg/jsonpath/jsonpath.go:29-52), so ``addresses[0].value`` and not
    ``addresses``, which an empty list would satisfy. Only the waypoints: the core's objects stay
    as rendered, and ServiceMesh's too."""
    from mesh_components.components.smi_policies import _awaited

    p = plan(NAME, component_args("istio", "ambient"))
    awaited = [_awaited(o) for o in p.objects]
    assert [o["metadata"]["namespace"] for o in awaited if WAIT_FOR in (o["metadata"].get("annotations") or {})] == \
        ["bookstore", "bookwarehouse"]
    assert all(a is o for a, o in zip(awaited, p.objects) if not is_waypoint(o))
    assert all(WAIT_FOR not in (o["metadata"].get("annotations") or {}) for o in p.objects)  # the plan as rendered


def test_linkerd_servers_wait_for_their_authorizations_and_the_default_inbound_policy_for_both(registered):
    """A Server denies its port to every caller no AuthorizationPolicy targeting it admits (linkerd2
    edge-26.8.3 policy-controller/k8s/index/src/inbound/index.rs:1794-1830), and a pod injected after
    ``default-inbound-policy: deny`` denies every port no Server selects
    (controller/proxy-injector/webhook.go:106-108, policy-controller/k8s/index/src/inbound/
    workload.rs:185-195): the routes and authorizations first, then the Servers, then the patch."""
    regs, _ = registered[("linkerd", None)]
    (patch,) = namespace_patches(regs).values()
    here = in_namespace(regs, "bookwarehouse")
    servers = [r for r in here if r.type == "kubernetes:policy.linkerd.io/v1beta3:Server"]
    rest = [r for r in here if r.type != "kubernetes:policy.linkerd.io/v1beta3:Server"]
    assert servers and {r.type.rsplit(":", 1)[1] for r in rest} == {"HTTPRoute", "MeshTLSAuthentication",
                                                                      "AuthorizationPolicy"}
    for server in servers:
        assert {r.urn for r in rest} <= set(server.dependencies), server.name
    # a policy route's authorizations are those targeting it (index.rs:1937-1975): routes after them
    routes = [r for r in here if r.type == "kubernetes:policy.linkerd.io/v1beta3:HTTPRoute"]
    authz = [r for r in here if r.type.rsplit(":", 1)[1] in ("MeshTLSAuthentication", "AuthorizationPolicy")]
    assert routes and authz
    for route in routes:
        assert {r.urn for r in authz} <= set(route.dependencies), route.name
    assert {r.urn for r in here} <= set(patch.dependencies)
    assert not [r.name for r in kubernetes(regs) if patch.urn in r.dependencies]  # nothing waits for the patch


def test_registration_stages_split_only_ambients_ztunnel_policies_and_linkerds_servers():
    from mesh_components.components.smi_policies import registration_stages

    for mesh, dp in MESHES:
        p = plan(NAME, component_args(mesh, dp))
        first, routes, servers, late = registration_stages(p)
        assert sorted(map(id, first + routes + servers + late)) == sorted(map(id, p.objects)), mesh
        assert {(o["apiVersion"], o["kind"]) for o in routes} <= {("policy.linkerd.io/v1beta3", "HTTPRoute")}
        assert bool(routes) == (mesh == "linkerd"), mesh
        assert not [o for o in first if o["apiVersion"].startswith("policy.linkerd.io/") and o["kind"] == "HTTPRoute"]
        assert [o["metadata"]["name"] for o in late] == (["bookwarehouse-via-waypoint", "mysql-via-waypoint"]
                                                          if dp == "ambient" else []), mesh
        assert {o["kind"] for o in servers} <= {"Server"} and bool(servers) == (mesh == "linkerd"), mesh


# ---------------------------------------------------------------------------------------------
# ingress identities: an existing gateway as a TrafficTarget source


def ingress_documents(namespace: str, service_account: str) -> list[dict]:
    """A route group and a TrafficTarget in bookstore whose one source is ``namespace/service_account``."""
    return [{"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
             "metadata": {"name": "books", "namespace": "bookstore"},
             "spec": {"matches": [{"name": "list", "methods": ["GET"], "pathRegex": "/books"}]}},
            {"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
             "metadata": {"name": "ingress-books", "namespace": "bookstore"},
             "spec": {"destination": {"kind": "ServiceAccount", "name": "bookstore", "namespace": "bookstore"},
                      "sources": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
                      "rules": [{"kind": "HTTPRouteGroup", "name": "books", "matches": ["list"]}]}}]


ISTIO_INGRESS = ("istio-system", "istio-ingressgateway-service-account")  # gateways/istio-ingress chart
GATEWAY_API_INGRESS = ("mesh-ingress", "public-istio")  # a Gateway of class istio named public: <gw>-istio


def identity_forms(td: str, ns: str, sa: str) -> list[str]:
    """How each mesh writes the identity: Istio principal, Linkerd identity, OSM TrafficTarget source."""
    return [f"{td}/ns/{ns}/sa/{sa}", f"{sa}.{ns}.serviceaccount.identity.linkerd.{td}",
            f'"name": "{sa}", "namespace": "{ns}"']


@pytest.mark.parametrize("mesh,dp,ingress", [("istio", "sidecar", ISTIO_INGRESS), ("istio", "ambient", ISTIO_INGRESS),
                                             ("istio", "ambient", GATEWAY_API_INGRESS), ("linkerd", None, ISTIO_INGRESS),
                                             ("osm", None, ISTIO_INGRESS)])
def test_an_ingress_identity_is_admitted_as_exactly_that_identity_and_nothing_wider(mesh, dp, ingress):
    """The same TrafficTarget with a declared source (bookbuyer, a source of nothing else) renders the
    same objects, the identity aside: Istio ``<td>/ns/<ns>/sa/<sa>``, Linkerd
    ``<sa>.<ns>.serviceaccount.identity.linkerd.<td>``, OSM the source as given. Nothing is rendered,
    read or patched in the gateway's namespace."""
    import json

    ns, sa = ingress
    p = plan(NAME, component_args(mesh, dp, documents=ingress_documents(ns, sa),
                                  ingress_identities=[{"namespace": ns, "service_account": sa}]))
    declared = plan(NAME, component_args(mesh, dp, documents=ingress_documents("bookbuyer", "bookbuyer")))
    expected = json.dumps(declared.objects, sort_keys=True)
    for was, now in zip(identity_forms("shop.example", "bookbuyer", "bookbuyer"), identity_forms("shop.example", ns, sa)):
        expected = expected.replace(was, now)
    assert json.dumps(p.objects, sort_keys=True) == expected
    assert any(form in expected for form in identity_forms("shop.example", ns, sa))  # the TrafficTarget is rendered
    assert p.namespaces == declared.namespaces and p.mesh_config == declared.mesh_config
    assert ns not in {o["metadata"].get("namespace") for o in p.objects} | {o["metadata"]["name"] for o in p.namespaces}
    (said,) = [r for r in p.requirements if r.startswith(f"the workloads running as {ns}/{sa} (ingressIdentities) are "
                                                         f"in the mesh")]
    assert {"istio": f"shop.example/ns/{ns}/sa/{sa}", "osm": "sidecar-injected in a namespace OSM monitors",
            "linkerd": f"{sa}.{ns}.serviceaccount.identity.linkerd.shop.example"}[mesh] in said


def test_ambient_routes_ingress_gateways_through_the_waypoint_of_the_namespace_they_call():
    """An Istio gateway sends to a Service's waypoint only with ``istio.io/ingress-use-waypoint: true``
    on the Service or, without one there, its namespace (istio 1.30.3 pilot/pkg/xds/endpoints/
    endpoint_builder.go:896-920, pilot/pkg/serviceregistry/ambient/services.go:786-799); directly,
    ztunnel's ``<service>-via-waypoint`` policy admits only the waypoint. The namespace patch carries
    the label; a Service's own ``false`` is the user's, named in requirements."""
    ns, sa = ISTIO_INGRESS
    p = plan(NAME, component_args("istio", "ambient", documents=ingress_documents(ns, sa),
                                  ingress_identities=[{"namespace": ns, "service_account": sa}]))
    (patch,) = [q for q in p.namespaces if q["metadata"]["name"] == "bookstore"]
    assert patch["metadata"]["labels"] == {"istio.io/use-waypoint": "waypoint", "istio.io/ingress-use-waypoint": "true"}
    (policy,) = [o for o in p.objects if o["metadata"]["name"] == "ingress-books-bookstore"]
    assert "targetRefs" in policy["spec"]  # enforced at the waypoint ...
    (guard,) = [o for o in p.objects if o["metadata"]["name"] == "bookstore-via-waypoint"]
    assert guard["spec"]["rules"] == [{"from": [{"source": {"principals": ["shop.example/ns/bookstore/sa/waypoint"]}}]}]
    (said,) = [r for r in p.requirements if r.startswith("Istio's gateways send requests for the Services of "
                                                         "namespaces bookstore to the waypoint only where")]
    assert 'labelled istio.io/ingress-use-waypoint: "false" is called directly' in said
    sidecar = plan(NAME, component_args("istio", "sidecar", documents=ingress_documents(ns, sa),
                                        ingress_identities=[{"namespace": ns, "service_account": sa}]))
    assert not [r for r in sidecar.requirements if r.startswith("Istio's gateways send")]


def test_an_ingress_identity_in_an_smi_file_is_admitted_too(tmp_path):
    ns, sa = ISTIO_INGRESS
    (tmp_path / "ingress.yaml").write_text(yaml.safe_dump_all(ingress_documents(ns, sa)))
    args = component_args("istio", "sidecar", paths=["policies/smi", str(tmp_path / "ingress.yaml")])
    with pytest.raises(ArgsError) as e:
        plan(NAME, args)
    (line,) = str(e.value).splitlines()
    assert line.endswith("ingress.yaml#TrafficTarget/bookstore/ingress-books.spec.sources[0]: no service in services "
                         f"runs as service account {ns}/{sa}; declare a service running as it in services or, for a "
                         "meshed workload the mesh does not police (an ingress gateway you run), list it in "
                         "ingressIdentities")
    p = plan(NAME, {**args, "ingressIdentities": [{"namespace": ns, "serviceAccount": sa}]})  # camelCase as well
    (policy,) = [o for o in p.objects if o["metadata"]["name"] == "ingress-books-bookstore"]
    assert policy["spec"]["rules"][0]["from"] == [{"source": {"principals": [f"shop.example/ns/{ns}/sa/{sa}"]}}]


def test_an_undeclared_source_not_listed_stays_refused_with_the_fix_before_anything_registers():
    ns, sa = ISTIO_INGRESS
    args = component_args("istio", "sidecar", documents=ingress_documents(ns, "istio-egressgateway-service-account"),
                          ingress_identities=[{"namespace": ns, "service_account": sa}])
    regs, error = refused_on_existing_cluster(SmiPolicies, NAME, args, ArgsError)
    assert only_provider(regs)
    (line,) = str(error).splitlines()
    assert line.startswith("SmiPolicies policies: documents#TrafficTarget/bookstore/ingress-books.spec.sources[0]: no "
                           f"service in services runs as service account {ns}/istio-egressgateway-service-account; ")
    assert line.endswith("list it in ingressIdentities")


def test_ingress_identities_named_by_no_traffic_target_change_nothing():
    base = plan(NAME, component_args("istio", "ambient"))
    more = plan(NAME, component_args("istio", "ambient", ingress_identities=[
        {"namespace": ISTIO_INGRESS[0], "service_account": ISTIO_INGRESS[1]}]))
    assert (more.objects, more.namespaces, more.requirements) == (base.objects, base.namespaces, base.requirements)


@pytest.mark.parametrize("given,expected", [
    ([{"namespace": "istio-system"}], ["ingressIdentities[0].serviceAccount: required"]),
    ([{"namespace": "Istio", "service_account": "gw", "port": 80}],
     ["ingressIdentities[0].port: unknown field; known fields: namespace, serviceAccount",
      "ingressIdentities[0].namespace: 'Istio' is not a DNS-1123 label"]),
    ([{"namespace": "a", "service_account": "gw"}, {"namespace": "a", "service_account": "gw"}],
     ["ingressIdentities[1]: a/gw is already ingressIdentities[0]; remove one"]),
    ("istio-system/gw", ["ingressIdentities: expected a list of identities, each {namespace, serviceAccount}"]),
])
def test_bad_ingress_identities_are_refused_at_their_field(given, expected):
    with pytest.raises(ArgsError) as e:
        plan(NAME, component_args("istio", "sidecar", ingress_identities=given))
    lines = str(e.value).splitlines()
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected):
        assert line.startswith(f"SmiPolicies policies: {want}"), line


# ---------------------------------------------------------------------------------------------
# version Services the user's manifests made; what the component depends on


def with_existing_version(args: dict, service: str = "bookstore", version: str = "v1") -> dict:
    for s in args["services"]:
        if s["name"] == service:
            for v in s["versions"]:
                if v["name"] == version:
                    v["existing"] = True
    return args


@pytest.mark.parametrize("mesh, dp", [("istio", "sidecar"), ("linkerd", None), ("osm", None)])
def test_an_existing_version_service_is_read_not_created_and_the_split_waits_for_the_read(mesh, dp):
    """A create of a Service that exists fails (pulumi-kubernetes creates, it does not adopt, unless
    the provider upserts: provider/pkg/provider/provider.go ``upsertExistingObjects``); the Service
    the user's manifests made is read instead, and what routes to it waits for the read."""
    from program_harness import RecordingMonitor

    base = plan(NAME, component_args(mesh, dp))
    assert any(o["kind"] == "Service" and o["metadata"]["name"] == "bookstore-v1" for o in base.objects)
    p = plan(NAME, with_existing_version(component_args(mesh, dp)))
    assert [o["metadata"]["name"] for o in p.existing_services] == ["bookstore-v1"]
    assert [o for o in base.objects if o["metadata"]["name"] != "bookstore-v1" or o["kind"] != "Service"] == p.objects
    (said,) = [r for r in p.requirements if r.startswith("the existing version Services bookstore/bookstore-v1 (")]
    assert "select exactly their version's pods" in said

    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="test", preview=False, monitor=monitor)

    @pulumi.runtime.test
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        return SmiPolicies(NAME, with_existing_version(component_args(mesh, dp)),
                           opts=pulumi.ResourceOptions(providers=[provider])).urn
    program()
    assert [(r.type, r.id) for r in monitor.reads if r.type == "kubernetes:core/v1:Service"] == [
        ("kubernetes:core/v1:Service", "bookstore/bookstore-v1")]
    names = [r.name for r in monitor.registrations]
    assert f"{NAME}:bookstore/bookstore-v1" not in names and f"{NAME}:bookstore/bookstore-v2" in names


def test_an_existing_flag_that_is_not_a_boolean_is_refused_at_its_field():
    args = with_existing_version(component_args("istio", "sidecar"))
    for s in args["services"]:
        for v in s.get("versions") or []:
            if v.get("existing"):
                v["existing"] = "yes"
    with pytest.raises(ArgsError) as e:
        plan(NAME, args)
    assert any(p.endswith(".existing") and "expected true or false" in m for p, m in e.value.problems), e.value.problems


@pytest.mark.parametrize("preview", [True, False])
def test_a_namespace_the_program_creates_in_the_same_update_is_read_only_after_it_exists(preview):
    """With the Namespace in ``opts.depends_on``, the read before its patch waits for its id:
    unknown in the preview, where the engine skips a read of an unknown id (pulumi/pulumi
    pkg/resource/deploy/step.go ``ReadStep.Apply``), so the first preview does not fail."""
    from pulumi.runtime import rpc
    from program_harness import RecordingMonitor

    mocks = PreviewMocks(preview, "kubernetes:core/v1:Namespace")
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="test", preview=preview, monitor=monitor)

    @pulumi.runtime.test
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        nss = [k8s.core.v1.Namespace(n["name"], metadata={"name": n["name"]},
                                     opts=pulumi.ResourceOptions(provider=provider)) for n in DEV["namespaces"]]
        return SmiPolicies(NAME, component_args("linkerd", None),
                           opts=pulumi.ResourceOptions(providers=[provider], depends_on=nss)).urn
    program()
    reads = [r for r in monitor.reads if r.type == "kubernetes:core/v1:Namespace"]
    assert reads
    assert all(r.id == (rpc.UNKNOWN if preview else r.name.rsplit(":", 1)[1]) for r in reads), reads
    created = {r.urn for r in monitor.registrations if r.type == "kubernetes:core/v1:Namespace"}
    children = [r for r in monitor.registrations if r.name.startswith(f"{NAME}") and r.type.startswith("kubernetes:")]
    assert children and all(created <= set(r.dependencies) for r in children)


# ---------------------------------------------------------------------------------------------
# ServiceMesh's policies: the same stages after the namespaces the control plane labels first


def test_service_mesh_ambient_ztunnel_policies_wait_for_an_awaited_waypoint_and_linkerd_servers_for_their_routes(
        tmp_path, monkeypatch):
    """The dev stack (Istio ambient): each ``<service>-via-waypoint`` policy (ztunnel's, ``selector``)
    depends on its namespace's waypoint Gateway, which carries ``pulumi.com/waitFor`` for an address:
    a namespace labelled for a waypoint without one sends directly to the pods (istio 1.30.3
    pilot/pkg/serviceregistry/ambient/waypoints.go:128-143), which those policies would refuse.
    The linkerd stack: Servers after their routes, routes after their authorizations
    (linkerd2 edge-26.8.3 policy-controller/k8s/index/src/inbound/index.rs:1794-1830, :1937-1975)."""
    from program_harness import run_program, stack_config
    from mesh_components.components.smi_policies import WAIT_FOR, WAYPOINT_READY

    (tmp_path / ".kube").mkdir()  # the dev and linkerd stacks read ~/.kube/config (contexts kind-dev...)
    (tmp_path / ".kube" / "config").write_text(FAKE_KUBECONFIG)
    monkeypatch.setenv("HOME", str(tmp_path))

    regs = run_program(stack_config("dev"), stack="dev")
    by_urn = {r.urn: r for r in regs}
    via = [r for r in regs if r.type == "kubernetes:security.istio.io/v1:AuthorizationPolicy"
           and r.name.endswith("-via-waypoint")]
    assert via
    for r in via:
        gateways = [by_urn[d] for d in r.dependencies if d in by_urn
                    and by_urn[d].type == "kubernetes:gateway.networking.k8s.io/v1:Gateway"]
        assert gateways, r.name
        for g in gateways:
            assert g.inputs["metadata"]["namespace"] == r.inputs["metadata"]["namespace"]
            assert g.inputs["metadata"]["annotations"][WAIT_FOR] == WAYPOINT_READY

    regs = run_program(stack_config("linkerd"), stack="linkerd")
    by_urn = {r.urn: r for r in regs}
    for server in (r for r in regs if r.type == "kubernetes:policy.linkerd.io/v1beta3:Server"):
        ns = server.inputs["metadata"]["namespace"]
        routes = [r for r in regs if r.type == "kubernetes:policy.linkerd.io/v1beta3:HTTPRoute"
                  and r.inputs["metadata"]["namespace"] == ns and r.parent == server.parent]
        assert {r.urn for r in routes} <= set(server.dependencies), server.name
        for route in routes:
            authz = [r for r in regs if r.type == "kubernetes:policy.linkerd.io/v1alpha1:AuthorizationPolicy"
                     and r.inputs["metadata"]["namespace"] == ns and r.parent == route.parent]
            assert {r.urn for r in authz} <= set(route.dependencies), route.name
