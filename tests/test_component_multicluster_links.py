"""MultiClusterLinks used alone (issue 14): remote secrets / Links for a set of clusters of a mesh
installed by other means, given each cluster's provider and kubeconfig.

Each program is a small Pulumi program under the SDK's mocks (``program_harness``): one kubernetes
Provider per existing cluster, then one ``MultiClusterLinks``. What it registers is compared with the
``multicluster`` concern the pure core renders for the equivalent stack (the same clusters and
networks), cluster by cluster, on that cluster's provider; the kubeconfigs peers read each other
with are built from the kubeconfig given (server, CA) and the token read back from the target
(istioctl ``pkg/multicluster/remote_secret.go``, linkerd2 edge-26.8.3 ``multicluster/cmd/link-gen.go``)."""
from __future__ import annotations

import base64
import copy

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from mesh_components.components import MultiClusterLinks
from mesh_components.components.args import ArgsError
from mesh_components.components.multicluster_links import plan
from mesh_components.components.registration import registered_type, resource_name
from mesh_components.core import multicluster as mc
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh

from program_harness import Mocks, PreviewMocks, run_mocked

NAME = "links"
PROVIDER_TYPE = "pulumi:providers:kubernetes"
COMPONENT_TYPE = "mesh:index:MultiClusterLinks"


def kubeconfig(cluster: str) -> str:
    ca = base64.b64encode(f"ca-of-{cluster}".encode()).decode()
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {"server": f"https://{cluster}.example:6443",
                                                   "certificate-authority-data": ca}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": "admin"}}],
        "users": [{"name": "admin", "user": {"token": f"admin-token-of-{cluster}"}}]})


CLUSTERS = {"east": {"network": "net-east", "east_west_addresses": ["203.0.113.10"]},
            "west": {"network": "net-west", "east_west_addresses": ["203.0.113.20"]}}


def component_args(mesh: str, *, networks: bool = True, **more) -> dict:
    clusters = []
    for name, extra in CLUSTERS.items():
        c = {"name": name}
        if networks:
            c.update(copy.deepcopy(extra))
        clusters.append(c)
    return {"mesh": mesh, "clusters": clusters, "trust_domain": "shop.example", "mesh_name": "shop",
            "kubeconfigs": {name: pulumi.Output.secret(kubeconfig(name)) for name in CLUSTERS}, **more}


def with_providers(args: dict) -> dict:
    """``args`` with a kubernetes Provider per cluster (created inside the mocked program)."""
    out = {k: (copy.deepcopy(v) if k != "kubeconfigs" else dict(v)) for k, v in args.items() if k != "clusters"}
    out["clusters"] = [{**copy.deepcopy(c), "provider": k8s.Provider(f"existing-{c['name']}",
                                                                     kubeconfig=kubeconfig(c["name"]))}
                       for c in args["clusters"]]
    return out


def equivalent_stack(mesh: str, *, networks: bool = True, data_plane: str | None = None, services=()) -> dict:
    """The multicluster concern per cluster of the stack a platform team would write for the same clusters."""
    backend: dict = {"type": mesh}
    if data_plane:
        backend["istio"] = {"dataPlane": data_plane}
    clusters = []
    for name, extra in CLUSTERS.items():
        c = {"name": name, "cloud": "onprem", "region": "r", "kubeconfig": {"env": "KUBECONFIG"}}
        if networks:
            c.update({"network": extra["network"], "eastWestGateway": {"addresses": extra["east_west_addresses"]}})
        clusters.append(c)
    spec = {"name": "shop", "trustDomain": "shop.example", "backend": backend, "clusters": clusters,
            "services": [{**s, "ports": [{"port": 80}]} for s in services]}
    states = render_mesh(load_mesh(spec))
    return {c: st.concerns["multicluster"] for c, st in states.items()}


def registered(args: dict, with_reads: bool = False):
    holder = {}

    def program():
        holder["component"] = MultiClusterLinks(NAME, with_providers(args))
        return holder["component"].urn
    got = run_mocked(program, Mocks(), with_reads=with_reads)
    return (got, holder["component"]) if not with_reads else (got[0], got[1], holder["component"])


@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_each_cluster_gets_its_multicluster_concern_on_its_own_provider(mesh):
    regs, _ = registered(component_args(mesh))
    providers = {r.name.removeprefix("existing-"): r for r in regs if r.type == PROVIDER_TYPE}
    component = next(r for r in regs if r.type == COMPONENT_TYPE)
    expected = equivalent_stack(mesh)
    for cluster, objects in expected.items():
        assert objects, cluster
        want = sorted((registered_type(o), resource_name(f"{NAME}-{cluster}", o)) for o in objects)
        mine = [r for r in regs if r.name.startswith(f"{NAME}-{cluster}:")]
        assert sorted((r.type, r.name) for r in mine) == want
        assert all(r.provider.startswith(providers[cluster].urn + "::") for r in mine), cluster
        assert all(r.parent == component.urn for r in mine)
    others = [r for r in regs if r.type not in (PROVIDER_TYPE, COMPONENT_TYPE)]
    assert len(others) == sum(len(o) for o in expected.values())  # nothing of the control planes


def test_istio_remote_secret_holds_a_kubeconfig_of_the_target_with_the_token_read_back_from_it():
    regs, reads, _ = registered(component_args("istio"), with_reads=True)
    providers = {r.name.removeprefix("existing-"): r.urn for r in regs if r.type == PROVIDER_TYPE}
    secret = next(r for r in regs if r.name == f"{NAME}-east:istio-system/istio-remote-secret-west")
    assert "stringData" in secret.secret_inputs  # the kubeconfig stays a Pulumi secret
    config = yaml.safe_load(secret.inputs["stringData"]["west"])
    assert config["clusters"][0]["cluster"]["server"] == "https://west.example:6443"
    assert config["clusters"][0]["cluster"]["certificate-authority-data"] == base64.b64encode(b"ca-of-west").decode()
    assert config["users"][0]["user"]["token"] == "token-istio-system/istio-reader-token-east"
    # the token is read on the TARGET's provider, after the token Secret was registered there
    read = next(r for r in reads if r.id == "istio-system/istio-reader-token-east")
    assert read.provider.startswith(providers["west"] + "::")
    token = next(r for r in regs if r.name == f"{NAME}-west:istio-system/istio-reader-token-east")
    assert token.inputs["type"] == "kubernetes.io/service-account-token"
    assert token.inputs["metadata"]["annotations"]["kubernetes.io/service-account.name"] == mc.ISTIO_READER_ACCOUNT
    assert token.provider.startswith(providers["west"] + "::")


def test_linkerd_links_dial_the_static_gateway_and_the_values_name_one_mirror_per_peer():
    regs, component = registered(component_args("linkerd"))
    link = next(r for r in regs if r.name == f"{NAME}-east:linkerd-multicluster/west")
    assert link.inputs["spec"]["gatewayAddress"] == "203.0.113.20"
    assert link.inputs["spec"]["gatewayIdentity"] == (
        "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.shop.example")
    p = component.plan
    assert p.outputs["links"] == ["east/linkerd-multicluster/west", "west/linkerd-multicluster/east"]
    values = p.outputs["linkerd_multicluster_values"]
    assert values["east"]["remoteMirrorServiceAccountName"] == "linkerd-service-mirror-remote-access-west"
    assert values["east"]["controllers"] == [{"link": {"ref": {"name": "west"}}}]
    assert values["east"]["gateway"]["enabled"] is True
    assert any("linkerd_multicluster_values" in r for r in p.outputs["requirements"])
    assert any("gateway's identity" in r for r in p.outputs["requirements"])


def test_linkerd_on_one_network_links_pod_to_pod_and_exports_the_named_services_by_patch():
    args = component_args("linkerd", networks=False,
                          exported_services=[{"name": "books", "namespace": "shop", "clusters": ["west"]}])
    regs, component = registered(args)
    link = next(r for r in regs if r.name == f"{NAME}-east:linkerd-multicluster/west")
    assert "gatewayAddress" not in link.inputs["spec"]
    patches = [r for r in regs if r.type == "kubernetes:core/v1:ServicePatch"]
    assert [(r.name, r.inputs["metadata"]["labels"]) for r in patches] == [
        (f"{NAME}-west:shop/books", {mc.EXPORT_LABEL: "remote-discovery"})]
    assert component.plan.outputs["exported_services"] == ["west/shop/books"]


def test_an_exported_service_is_patched_only_after_a_read_of_it():
    """A patch is a Server-Side Apply upsert (pulumi-kubernetes v4.32.0 provider/pkg/await/await.go
    ``Creation``): without the read a misspelt Service would be created."""
    args = component_args("linkerd", networks=False, exported_services=[{"name": "books", "namespace": "shop"}])
    regs, reads, _ = registered(args, with_reads=True)
    assert sorted(r.id for r in reads if r.type == "kubernetes:core/v1:Service") == ["shop/books", "shop/books"]
    for r in (r for r in regs if r.type == "kubernetes:core/v1:ServicePatch"):
        cluster = r.name.split(":")[0].removeprefix(f"{NAME}-")
        assert any(d.endswith(f"{NAME}-{cluster}-existing:shop/books") for d in r.dependencies), r.dependencies


def test_istio_ambient_exports_with_the_global_label_as_the_stack_does():
    services = [{"name": "books", "namespace": "shop"}]
    regs, _ = registered(component_args("istio", data_plane="ambient", exported_services=services))
    expected = equivalent_stack("istio", data_plane="ambient", services=services)
    patches = sorted(r.name for r in regs if r.type == "kubernetes:core/v1:ServicePatch")
    assert patches == sorted(resource_name(f"{NAME}-{c}", o) for c, objs in expected.items() for o in objs
                             if o["kind"] == "Service")
    assert patches == [f"{NAME}-east:shop/books", f"{NAME}-west:shop/books"]


def test_istio_ambient_across_networks_needs_no_east_west_addresses_here():
    """The stack asks ambient clusters on several networks for static east-west addresses for the
    egress fences (not this component's); the remote secrets read none."""
    args = component_args("istio", data_plane="ambient")
    for c in args["clusters"]:
        c.pop("east_west_addresses")
    p = plan(NAME, with_plain_providers(args))
    assert sorted(o["metadata"]["name"] for o in p.objects["east"]) == ["istio-reader-token-west",
                                                                        "istio-remote-secret-west"]
    assert not any("192.0.2.1" in repr(o) for objs in p.objects.values() for o in objs)


def with_plain_providers(args: dict) -> dict:
    """For :func:`plan` outside a program: the provider fields hold a stand-in ProviderResource."""
    class FakeProvider(pulumi.ProviderResource):
        def __init__(self):  # never registered: plan() is pure
            pass
    out = copy.deepcopy({k: v for k, v in args.items() if k not in ("clusters", "kubeconfigs")})
    out["clusters"] = [{**c, "provider": FakeProvider()} for c in args["clusters"]]
    out["kubeconfigs"] = {c["name"]: kubeconfig(c["name"]) for c in args["clusters"]}
    return out


def test_outputs_name_every_peer_and_remote_secret_but_no_secret_value():
    regs, component = registered(component_args("istio"))
    outputs = component.plan.outputs
    assert outputs["peers"] == {"east": ["west"], "west": ["east"]}
    assert outputs["remote_secrets"] == ["east/istio-system/istio-remote-secret-west",
                                         "west/istio-system/istio-remote-secret-east"]
    assert outputs["links"] == [] and "linkerd_multicluster_values" not in outputs
    assert "admin-token" not in repr(outputs) and "token-" not in repr(outputs)
    assert any("global.multiCluster.clusterName" in r for r in outputs["requirements"])
    assert any("east-west gateway" in r for r in outputs["requirements"])


@pytest.mark.parametrize("change, where, words", [
    (lambda a: a.update(mesh="osm"), "mesh", "single-cluster"),
    (lambda a: a["clusters"].pop(), "clusters", "at least two"),
    (lambda a: a["kubeconfigs"].pop("west"), "kubeconfigs.west", "required"),
    (lambda a: a["kubeconfigs"].update(north="x"), "kubeconfigs.north", "no cluster 'north'"),
    (lambda a: a.pop("kubeconfigs"), "kubeconfigs", "required"),
    (lambda a: a["clusters"][1].pop("provider"), "clusters[1].provider", "required"),
    (lambda a: a["clusters"][0].update(colour="blue"), "clusters[0].colour", "unknown field"),
    (lambda a: a["clusters"][1].update(name="east"), "clusters[1].name", "given twice"),
    (lambda a: a["clusters"][0].update(name="East_1"), "clusters[0].name", "DNS"),
    (lambda a: a.update(exported_services=[{"name": "books", "namespace": "shop"}]), "exportedServices",
     "discovers every Service"),
    (lambda a: a.update(data_plane="ambient", mesh="linkerd"), "dataPlane", "istio only"),
    (lambda a: a.update(colour="blue"), "colour", "unknown field"),
])
def test_bad_args_name_the_component_and_field_before_anything_is_registered(change, where, words):
    args = with_plain_providers(component_args("istio"))
    change(args)
    with pytest.raises(ArgsError) as e:
        plan(NAME, args)
    paths = [p for p, _ in e.value.problems]
    assert f"MultiClusterLinks {NAME}: {where}" in paths, e.value.problems
    assert any(words.lower() in m.lower() for p, m in e.value.problems if p == f"MultiClusterLinks {NAME}: {where}")


def test_a_cluster_without_a_provider_is_refused_in_a_program_before_registering():
    regs = []

    def program():
        args = component_args("linkerd")
        args["clusters"][0]["provider"] = "not-a-provider"
        args["clusters"][1]["provider"] = k8s.Provider("existing-west", kubeconfig=kubeconfig("west"))
        with pytest.raises(ArgsError) as e:
            MultiClusterLinks(NAME, args)
        assert any(p == f"MultiClusterLinks {NAME}: clusters[0].provider" for p, _ in e.value.problems)
    regs = run_mocked(program, Mocks())
    assert [r.type for r in regs] == [PROVIDER_TYPE]


@pytest.mark.parametrize("preview", [True, False])
def test_a_service_the_program_creates_in_the_same_update_is_read_only_after_it_exists(preview):
    """With the Service in ``opts.depends_on``, the read of it waits for its id: unknown in the
    preview, where the engine skips a read of an unknown id (pulumi/pulumi pkg/resource/deploy/step.go
    ``ReadStep.Apply``: "The only time we can't run is if the ID we are given is unknown"), so the
    first preview does not fail on a Service that does not exist yet; in the update the read runs
    once the Service exists."""
    from pulumi.runtime import rpc
    from program_harness import RecordingMonitor

    mocks = PreviewMocks(preview, "kubernetes:core/v1:Service")
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="test", preview=preview, monitor=monitor)
    args = component_args("linkerd", networks=False, exported_services=[{"name": "books", "namespace": "shop",
                                                                         "clusters": ["west"]}])

    @pulumi.runtime.test
    def program():
        full = with_providers(args)
        west = next(c["provider"] for c in full["clusters"] if c["name"] == "west")
        svc = k8s.core.v1.Service("books", metadata={"name": "books", "namespace": "shop"},
                                  opts=pulumi.ResourceOptions(provider=west))
        return MultiClusterLinks(NAME, full, opts=pulumi.ResourceOptions(depends_on=[svc])).urn
    program()
    reads = [r for r in monitor.reads if r.type == "kubernetes:core/v1:Service"]
    assert [r.name for r in reads] == [f"{NAME}-west-existing:shop/books"]
    assert reads[0].id == (rpc.UNKNOWN if preview else "shop/books")


def test_every_object_and_read_waits_for_the_components_depends_on():
    """Children do not wait for their component's ``depends_on`` (pulumi 3.272.0 ``pulumi/resource.py``
    passes only ``protect`` and providers to children): with the control plane installed in the same
    program, a Link before the linkerd-multicluster chart's CRD, or a read of a token Secret the chart
    has not made yet, would fail; here each waits for what the component depends on."""
    from program_harness import RecordingMonitor

    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="test", preview=False, monitor=monitor)
    args = component_args("linkerd")

    @pulumi.runtime.test
    def program():
        full = with_providers(args)
        charts = [k8s.helm.v3.Release(f"mc-{c['name']}", chart="linkerd-multicluster",
                                      opts=pulumi.ResourceOptions(provider=c["provider"])) for c in full["clusters"]]
        return MultiClusterLinks(NAME, full, opts=pulumi.ResourceOptions(depends_on=charts)).urn
    program()
    regs = monitor.registrations
    charts = {r.urn for r in regs if r.type == "kubernetes:helm.sh/v3:Release"}
    children = [r for r in regs if r.name.startswith(f"{NAME}-") and r.type.startswith("kubernetes:")]
    assert children
    for r in children:
        assert charts <= set(r.dependencies), r.name
    # the token reads' ids wait for the charts' ids (an unknown id in a preview: the read is skipped)
    assert sorted(r.id for r in monitor.reads if r.type == "kubernetes:core/v1:Secret") == [
        "linkerd-multicluster/linkerd-service-mirror-remote-access-east-token",
        "linkerd-multicluster/linkerd-service-mirror-remote-access-west-token"]


def test_each_link_is_registered_after_its_credentials_as_link_gen_writes_them():
    """linkerd2 edge-26.8.3 multicluster/cmd/link-gen.go:109-113 writes the credentials Secret before
    the Link; a Link first makes the service mirror fail its first start."""
    regs, _ = registered(component_args("linkerd"))
    by_urn = {r.urn: r for r in regs}
    for link in (r for r in regs if r.type == "kubernetes:multicluster.linkerd.io/v1alpha3:Link"):
        cluster, target = link.name.removeprefix(f"{NAME}-").split(":linkerd-multicluster/")
        deps = {by_urn[d].name for d in link.dependencies if d in by_urn}
        assert {f"{NAME}-{cluster}:linkerd-multicluster/cluster-credentials-{target}",
                f"{NAME}-{cluster}:linkerd/cluster-credentials-{target}"} <= deps, deps


@pytest.mark.parametrize("mesh, data_plane, words", [
    ("istio", "ambient", "AMBIENT_ENABLE_MULTI_NETWORK=true"),
    ("istio", "ambient", "istio-east-west"),
    ("istio", None, "global.multiCluster.clusterName"),
    ("linkerd", None, "restart linkerd-destination"),
    ("linkerd", None, "opts.depends_on"),
])
def test_requirements_say_what_the_control_planes_must_hold(mesh, data_plane, words):
    extra = {"data_plane": data_plane} if data_plane else {}
    p = plan(NAME, with_plain_providers(component_args(mesh, **extra)))
    assert any(words in r for r in p.outputs["requirements"]), p.outputs["requirements"]


def test_a_kubeconfigs_tls_server_name_is_kept_in_the_kubeconfig_peers_read_it_with():
    """istioctl create-remote-secret keeps the source's ``tls-server-name`` (istio 1.30.3
    istioctl/pkg/multicluster/remote_secret.go:159-166): a server given by address, whose
    certificate names the cluster by name, fails TLS verification without it."""
    args = component_args("istio")
    named = yaml.safe_load(kubeconfig("west"))
    named["clusters"][0]["cluster"]["server"] = "https://198.51.100.20:6443"
    named["clusters"][0]["cluster"]["tls-server-name"] = "api.west.example"
    args["kubeconfigs"]["west"] = pulumi.Output.secret(yaml.safe_dump(named))
    regs, _ = registered(args)
    secret = next(r for r in regs if r.name == f"{NAME}-east:istio-system/istio-remote-secret-west")
    config = yaml.safe_load(secret.inputs["stringData"]["west"])
    assert config["clusters"][0]["cluster"]["server"] == "https://198.51.100.20:6443"
    assert config["clusters"][0]["cluster"]["tls-server-name"] == "api.west.example"
    east = next(r for r in regs if r.name == f"{NAME}-west:istio-system/istio-remote-secret-east")
    assert "tls-server-name" not in yaml.safe_load(east.inputs["stringData"]["east"])["clusters"][0]["cluster"]
