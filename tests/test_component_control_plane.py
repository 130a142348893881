"""IstioControlPlane, LinkerdControlPlane and OsmControlPlane used alone (issue 14): one cluster's
control plane from typed args, on the kubernetes provider given in ``opts``, its CA material
from the args (what a ``MeshCertificateAuthority`` gives per cluster, or any other CA's).

Each program here is a small Pulumi program under the SDK's mocks (``program_harness``): a
provider for the cluster, then one control plane. What it registers is compared with what the
pure core renders for the equivalent one-cluster stack (``render_mesh``; the stack's own cloud and
region, which decide nothing of a one-cluster control plane): the ``namespaces``, ``control-plane``
and ``ca`` concerns, the Gateway API manifest where needed and the control-plane Helm releases,
with the CA slots filled by the material given. And ``ServiceMesh`` composing them keeps every
shipped stack's control plane and children through the former type ``mesh:index:ControlPlane``."""
from __future__ import annotations

import datetime as dt
import subprocess

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from mesh_components.core import ca
from mesh_components.components import IstioControlPlane, LinkerdControlPlane, OsmControlPlane
from mesh_components.components.args import ArgsError
from mesh_components.components.registration import namespace_patch_metadata, registered_type, resource_name
from mesh_components.core.render import render_mesh
from mesh_components.core.slots import fill
from mesh_components.spec import load_mesh

from program_harness import FAKE_KUBECONFIG, ROOT, run_mocked, stack_config

TOOLS = ROOT.parent / "shared" / "tools"
NAME = "cp"
PROVIDER_TYPE = "pulumi:providers:kubernetes"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
CONFIG_FILE_TYPE = "kubernetes:yaml/v2:ConfigFile"
CLASSES = {"istio": IstioControlPlane, "linkerd": LinkerdControlPlane, "osm": OsmControlPlane}
CASES = [("istio", "sidecar"), ("istio", "ambient"), ("linkerd", None), ("osm", None)]


def _material(mesh: str):
    """A real root and intermediate for cluster ``c1`` (``ca.apply_plan``, managed mode), at a fixed time."""
    cfg = ca.CAConfig(trust_domain="shop.example", mesh=mesh, clusters=("c1",),
                      key_algorithm="RSA_2048" if mesh == "osm" else "ECDSA_P256")
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    state = ca.apply_plan(cfg, None, ca.plan_changes(cfg, None, now), now)
    return state.trust_bundle_pem, state.intermediates["c1"]


MATERIAL = {mesh: _material(mesh) for mesh in CLASSES}


def slot_values(mesh: str) -> dict:
    """The value of each ``ca`` slot key (``ca.slot_material``) for ``mesh``'s material."""
    bundle, inter = MATERIAL[mesh]
    return {"trust_bundle_pem": bundle, "cert_pem": inter.cert_pem, "key_pem": inter.key_pem,
            "chain_pem": inter.chain_pem}


def material_args(mesh: str) -> dict:
    bundle, inter = MATERIAL[mesh]
    if mesh == "istio":
        return {"ca_cert_pem": inter.cert_pem, "ca_key_pem": inter.key_pem, "cert_chain_pem": inter.chain_pem,
                "root_cert_pem": bundle}
    if mesh == "linkerd":
        return {"trust_anchors_pem": bundle, "issuer_cert_pem": inter.cert_pem, "issuer_key_pem": inter.key_pem}
    return {"cert_chain_pem": inter.chain_pem, "ca_key_pem": inter.key_pem}


def component_args(mesh: str, data_plane: str | None = None, **more) -> dict:
    args = {**material_args(mesh), "cluster_name": "c1", "trust_domain": "shop.example"}
    if mesh == "istio":
        args.update({"mesh_id": "shop", "network": "net-a"})
        if data_plane:
            args["data_plane"] = data_plane
    else:
        args["mesh_name"] = "shop"
    return {**args, **more}


def equivalent_stack(mesh: str, data_plane: str | None = None, istio: dict | None = None, **more) -> dict:
    """The one-cluster stack with what :func:`component_args` says (a cloud and region of its own)."""
    backend: dict = {"type": mesh}
    options = {**({"dataPlane": data_plane} if data_plane else {}), **(istio or {})}
    if options:
        backend["istio"] = options
    cluster = {"name": "c1", "cloud": "gcp", "region": "europe-west1"}
    if mesh == "istio":
        cluster["network"] = "net-a"
    return {"name": "shop", "trustDomain": "shop.example", "backend": backend, "clusters": [cluster], **more}


def stack_state(stack: dict):
    return render_mesh(load_mesh(stack, base_dir=ROOT))["c1"]


def run(program) -> list:
    return run_mocked(program)


OUTPUTS = ["releases", "namespaces", "namespace_labels", "namespace_annotations", "cluster_name", "trust_domain"]
EXTRA_OUTPUTS = {"istio": ["mesh_id", "network", "data_plane", "revisions", "multi_root"],
                 "linkerd": ["mesh_name"], "osm": ["mesh_name"]}


def run_component(mesh: str, args: dict, captured: dict | None = None, *, as_provider: bool = False) -> list:
    def program():
        provider = k8s.Provider("cluster", kubeconfig=FAKE_KUBECONFIG)
        opts = (pulumi.ResourceOptions(provider=provider) if as_provider
                else pulumi.ResourceOptions(providers=[provider]))
        component = CLASSES[mesh](NAME, args, opts=opts)
        if captured is None:
            return None
        captured["_component"] = component
        names = OUTPUTS + EXTRA_OUTPUTS[mesh]
        return pulumi.Output.all(*[getattr(component, n) for n in names]).apply(
            lambda values: captured.update(zip(names, values)))
    return run(program)


@pytest.fixture(scope="module")
def registered():
    """case -> (registrations, captured outputs), one run each."""
    out = {}
    for mesh, dp in CASES:
        captured: dict = {}
        out[(mesh, dp)] = (run_component(mesh, component_args(mesh, dp), captured), captured)
    return out


def kubernetes(regs) -> list:
    return [r for r in regs if r.type.startswith("kubernetes:")]


# --- what is registered ---------------------------------------------------------------------------

@pytest.mark.parametrize("mesh,dp", CASES)
def test_registers_on_the_given_provider_exactly_what_the_core_renders_for_the_one_cluster_stack(registered, mesh,
                                                                                                   dp):
    regs, _ = registered[(mesh, dp)]
    provider = next(r for r in regs if r.type == PROVIDER_TYPE)
    component = next(r for r in regs if r.type == CLASSES[mesh].TYPE)
    st = stack_state(equivalent_stack(mesh, dp))
    values = slot_values(mesh)
    lookup = lambda slot: values[slot.key]  # noqa: E731
    objects = [*st.concerns["namespaces"], *st.concerns["control-plane"], *st.concerns["ca"]]
    expected = {(registered_type(o), resource_name(NAME, o)): fill(o, lookup) for o in objects}
    for o in expected.values():  # every namespace is a forced NamespacePatch, as ServiceMesh registers it
        if o["kind"] == "Namespace":
            o["metadata"] = namespace_patch_metadata(o["metadata"])
    got = {(r.type, r.name): r for r in kubernetes(regs) if r.type not in (RELEASE_TYPE, CONFIG_FILE_TYPE)}
    assert sorted(got) == sorted(expected)
    for key, r in got.items():
        o = expected[key]
        for field in ("metadata", "spec", "data", "stringData", "type"):
            assert r.inputs.get(field) == o.get(field), (key, field)
    releases = {r.name: r for r in regs if r.type == RELEASE_TYPE}
    wanted = [rel for rel in st.releases if rel.concern == "control-plane"]
    assert sorted(releases) == sorted(f"{NAME}-{rel.name}" for rel in wanted)
    for rel in wanted:
        r = releases[f"{NAME}-{rel.name}"]
        assert (r.inputs["name"], r.inputs["namespace"], r.inputs["chart"], r.inputs["version"]) == (
            rel.name, rel.namespace, rel.chart, rel.version)
        assert r.inputs["values"] == fill(rel.values, lookup), rel.name
    manifests = {r.name: r.inputs["file"] for r in regs if r.type == CONFIG_FILE_TYPE}
    assert manifests == {f"{NAME}-{m.name}": m.url for m in st.remote_manifests}
    assert bool(manifests) == (mesh == "linkerd" or dp == "ambient")  # what needs the Gateway API CRDs
    for r in kubernetes(regs):
        assert r.parent == component.urn, r.name  # children of the component ...
        assert r.provider.startswith(provider.urn + "::"), r.name  # ... on the provider given in opts


@pytest.mark.parametrize("mesh,dp", CASES)
def test_releases_wait_for_the_ca_material_and_each_other_as_in_the_stack(registered, mesh, dp):
    regs, _ = registered[(mesh, dp)]
    urn = {r.urn: r for r in regs}
    releases = {r.inputs["name"]: r for r in regs if r.type == RELEASE_TYPE}
    st = stack_state(equivalent_stack(mesh, dp))
    secrets = {r.urn for r in regs if r.type == "kubernetes:core/v1:Secret"}
    manifests = {r.urn for r in regs if r.type == CONFIG_FILE_TYPE}
    for rel in (r for r in st.releases if r.concern == "control-plane"):
        deps = set(releases[rel.name].dependencies)
        assert {releases[d].urn for d in rel.depends_on} <= deps
        assert secrets and secrets <= deps, rel.name  # istiod after cacerts, Linkerd after its issuer, OSM its bundle
        assert manifests <= deps, rel.name
    for r in regs:  # custom resources wait for the releases that install their CRDs
        if r.type.startswith("kubernetes:security.istio.io"):
            assert {releases["istio-base"].urn} <= set(r.dependencies) and r.parent in urn


def test_istio_release_values_carry_the_mesh_identity_and_cacerts_the_material(registered):
    regs, out = registered[("istio", "sidecar")]
    istiod = next(r for r in regs if r.type == RELEASE_TYPE and r.inputs["chart"] == "istiod")
    g = istiod.inputs["values"]["global"]
    assert (g["meshID"], g["network"], g["multiCluster"]["clusterName"]) == ("shop", "net-a", "c1")
    assert istiod.inputs["values"]["meshConfig"]["trustDomain"] == "shop.example"
    assert "ISTIO_MULTIROOT_MESH" not in istiod.inputs["values"]["env"]
    cacerts = next(r for r in regs if r.type == "kubernetes:core/v1:Secret")
    bundle, inter = MATERIAL["istio"]
    assert cacerts.inputs["metadata"]["name"] == "cacerts" and cacerts.inputs["metadata"]["namespace"] == "istio-system"
    assert cacerts.inputs["stringData"] == {"ca-cert.pem": inter.cert_pem, "ca-key.pem": inter.key_pem,
                                            "root-cert.pem": bundle, "cert-chain.pem": inter.chain_pem}
    assert any(p.startswith("stringData") for p in cacerts.secret_inputs)
    ns = next(r for r in regs if r.type == "kubernetes:core/v1:NamespacePatch")
    assert ns.inputs["metadata"]["labels"]["topology.istio.io/network"] == "net-a"
    assert out["releases"] == {"istio-base": "base@1.30.3", "istiod": "istiod@1.30.3"}
    assert (out["mesh_id"], out["network"], out["cluster_name"], out["trust_domain"], out["data_plane"]) == (
        "shop", "net-a", "c1", "shop.example", "sidecar")
    assert out["revisions"] == {"default": "1.30.3"} and out["multi_root"] is False
    assert out["namespaces"] == ["istio-system"]
    assert (out["namespace_labels"], out["namespace_annotations"]) == ({"istio-injection": "enabled"}, {})


def test_istio_ambient_installs_cni_ztunnel_and_enrols_by_dataplane_mode(registered):
    regs, out = registered[("istio", "ambient")]
    assert out["releases"] == {"istio-base": "base@1.30.3", "istiod": "istiod@1.30.3", "istio-cni": "cni@1.30.3",
                               "ztunnel": "ztunnel@1.30.3"}
    ztunnel = next(r for r in regs if r.type == RELEASE_TYPE and r.inputs["chart"] == "ztunnel")
    values = ztunnel.inputs["values"]
    assert values["multiCluster"] == {"clusterName": "c1"} and values["network"] == "net-a"
    assert out["namespace_labels"] == {"istio.io/dataplane-mode": "ambient"}


def test_linkerd_values_take_the_trust_anchors_and_the_issuer_secret_the_material(registered):
    regs, out = registered[("linkerd", None)]
    cp = next(r for r in regs if r.type == RELEASE_TYPE and r.inputs["chart"] == "linkerd-control-plane")
    bundle, inter = MATERIAL["linkerd"]
    v = cp.inputs["values"]
    assert (v["identityTrustAnchorsPEM"], v["identityTrustDomain"]) == (bundle, "shop.example")
    assert v["identity"] == {"externalCA": True, "issuer": {"scheme": "kubernetes.io/tls"}}
    issuer = next(r for r in regs if r.type == "kubernetes:core/v1:Secret")
    assert issuer.inputs["metadata"]["name"] == "linkerd-identity-issuer"
    assert issuer.inputs["type"] == "kubernetes.io/tls"
    assert issuer.inputs["stringData"] == {"tls.crt": inter.cert_pem, "tls.key": inter.key_pem, "ca.crt": bundle}
    assert any(p.startswith("stringData") for p in issuer.secret_inputs)
    roots = next(r for r in regs if r.type == "kubernetes:core/v1:ConfigMap")
    assert roots.inputs["data"] == {"ca-bundle.crt": bundle}
    assert out["releases"] == {"linkerd-crds": "linkerd-crds@2026.8.3",
                               "linkerd-control-plane": "linkerd-control-plane@2026.8.3"}
    assert (out["namespaces"], out["namespace_labels"], out["namespace_annotations"]) == (
        ["linkerd"], {}, {"linkerd.io/inject": "enabled"})
    assert (out["cluster_name"], out["trust_domain"], out["mesh_name"]) == ("c1", "shop.example", "shop")


def test_osm_values_name_the_ca_bundle_the_material_fills(registered):
    regs, out = registered[("osm", None)]
    rel = next(r for r in regs if r.type == RELEASE_TYPE)
    v = rel.inputs["values"]["osm"]
    assert (v["meshName"], v["trustDomain"], v["caBundleSecretName"], v["certificateProvider"]) == (
        "shop", "shop.example", "osm-ca-bundle", {"kind": "tresor"})
    assert (v["enablePermissiveTrafficPolicy"], v["enableEgress"]) == (False, False)
    bundle = next(r for r in regs if r.type == "kubernetes:core/v1:Secret")
    _, inter = MATERIAL["osm"]
    meta = bundle.inputs["metadata"]
    assert (meta["namespace"], meta["name"]) == ("osm-system", "osm-ca-bundle")
    assert bundle.inputs["stringData"] == {"ca.crt": inter.chain_pem, "private.key": inter.key_pem}
    assert any(p.startswith("stringData") for p in bundle.secret_inputs)
    assert out["releases"] == {"osm": "osm@1.2.4"} and out["namespaces"] == ["osm-system"]
    assert (out["namespace_labels"], out["namespace_annotations"]) == (
        {"openservicemesh.io/monitored-by": "shop"}, {"openservicemesh.io/sidecar-injection": "enabled"})


@pytest.mark.parametrize("mesh,dp", CASES)
def test_release_values_pass_check_helm_values(registered, mesh, dp, tmp_path):
    regs, _ = registered[(mesh, dp)]
    releases = [{"name": r.inputs["name"], "namespace": r.inputs["namespace"], "chart": r.inputs["chart"],
                 "version": r.inputs["version"], "values": r.inputs["values"]} for r in regs if r.type == RELEASE_TYPE]
    assert releases
    (tmp_path / "helm-releases.yaml").write_text(yaml.safe_dump(releases))
    h = subprocess.run([str(TOOLS / "check-helm-values"), str(tmp_path)], capture_output=True, text=True)
    assert h.returncode == 0 and " 0 with problems" in h.stdout.splitlines()[-1], h.stdout[-3000:]


def test_istio_canary_revisions_and_multi_root_render_as_the_stack_does():
    revisions = [{"name": "1-29", "version": "1.29.0"}, {"name": "1-30"}]
    args = component_args("istio", revisions=revisions, tag="stable", tag_revision="1-30", multi_root=True)
    captured: dict = {}
    regs = run_component("istio", args, captured)
    st = stack_state(equivalent_stack("istio", istio={"revisions": revisions, "tag": "stable", "tagRevision": "1-30"},
                                      ca={"rootRotation": {"generation": 2, "stage": "addNewRoot"}}))
    releases = {r.inputs["name"]: r for r in regs if r.type == RELEASE_TYPE}
    assert sorted(releases) == sorted(r.name for r in st.releases) == ["istio-base", "istiod-1-29", "istiod-1-30"]
    for rel in st.releases:
        assert releases[rel.name].inputs["version"] == rel.version
    assert releases["istiod-1-30"].inputs["values"]["revisionTags"] == ["stable"]
    assert "revisionTags" not in releases["istiod-1-29"].inputs["values"]
    assert {n: r.inputs["values"]["env"].get("ISTIO_MULTIROOT_MESH") for n, r in releases.items()
            if r.inputs["chart"] == "istiod"} == {"istiod-1-29": "true", "istiod-1-30": "true"}
    assert captured["revisions"] == {"1-29": "1.29.0", "1-30": "1.30.3"} and captured["multi_root"] is True
    assert captured["namespace_labels"] == {"istio.io/rev": "stable"}


def test_managed_gateway_api_crds_install_no_manifest():
    regs = run_component("linkerd", component_args("linkerd", gateway_api_crds="managed"))
    assert not [r for r in regs if r.type == CONFIG_FILE_TYPE]
    cp = next(r for r in regs if r.type == RELEASE_TYPE and r.inputs["chart"] == "linkerd-control-plane")
    annotations = cp.inputs["values"]["destinationController"]["podAnnotations"]
    assert annotations == {"mesh-components.io/gateway-api": "managed"}


def test_a_provider_given_as_opts_provider_reaches_every_child():
    regs = run_component("istio", component_args("istio", "ambient"), as_provider=True)
    provider = next(r for r in regs if r.type == PROVIDER_TYPE)
    assert kubernetes(regs) and all(r.provider.startswith(provider.urn + "::") for r in kubernetes(regs))


def test_material_from_other_resources_outputs_is_registered_and_the_key_kept_secret():
    """The material as Outputs (e.g. a ``MeshCertificateAuthority``'s), the key passed NOT as a
    secret: the key still reaches the cluster as a secret (``material_lookup``)."""
    bundle, inter = MATERIAL["istio"]
    args = {**component_args("istio"), "ca_cert_pem": pulumi.Output.from_input(inter.cert_pem),
            "ca_key_pem": pulumi.Output.from_input(inter.key_pem), "root_cert_pem": pulumi.Output.from_input(bundle)}
    regs = run_component("istio", args)
    cacerts = next(r for r in regs if r.type == "kubernetes:core/v1:Secret")
    assert cacerts.inputs["stringData"]["ca-key.pem"] == inter.key_pem
    assert cacerts.inputs["stringData"]["ca-cert.pem"] == inter.cert_pem
    assert any(p.startswith("stringData") for p in cacerts.secret_inputs)


def test_linkerd_issuer_key_in_helm_values_never_appears():
    """The issuer key goes to the Secret only: no release value holds it."""
    regs = run_component("linkerd", component_args("linkerd"))
    _, inter = MATERIAL["linkerd"]
    for r in regs:
        if r.type == RELEASE_TYPE:
            assert inter.key_pem not in yaml.safe_dump(r.inputs["values"])


def test_camel_case_keys_register_the_same():
    snake = run_component("istio", component_args("istio", revisions=[{"name": "1-30"}]))
    camel_keys = {"cluster_name": "clusterName", "ca_cert_pem": "caCertPem", "ca_key_pem": "caKeyPem",
                  "cert_chain_pem": "certChainPem", "root_cert_pem": "rootCertPem", "trust_domain": "trustDomain",
                  "mesh_id": "meshId"}
    camel_args = {camel_keys.get(k, k): v for k, v in component_args("istio", revisions=[{"name": "1-30"}]).items()}
    assert set(camel_args) - set(component_args("istio"))  # camelCase keys indeed
    camel = run_component("istio", camel_args)
    # registration order depends on when Outputs resolve: compare by (type, name)
    assert {(r.type, r.name): (r.inputs, sorted(r.dependencies)) for r in snake} == \
           {(r.type, r.name): (r.inputs, sorted(r.dependencies)) for r in camel}
    assert len(snake) == len(camel)


# --- bad args -------------------------------------------------------------------------------------

BAD = [
    ("istio", {"ca_key_pem": None}, "IstioControlPlane cp: caKeyPem", "required"),
    ("istio", {"data_plane": "hybrid"}, "IstioControlPlane cp: dataPlane", "sidecar"),
    ("istio", {"cluster_name": "C_1"}, "IstioControlPlane cp: clusterName", "DNS"),
    ("istio", {"network": "Net A"}, "IstioControlPlane cp: network", "DNS"),
    ("istio", {"tag": "stable"}, "IstioControlPlane cp: tag", "revisions"),
    ("istio", {"revisions": [{"name": "a"}, {"name": "b"}]}, "IstioControlPlane cp: tag", "tag"),
    ("istio", {"revision": "a", "revisions": [{"name": "a"}]}, "IstioControlPlane cp: revisions", "not both"),
    ("istio", {"version": "latest"}, "IstioControlPlane cp: version", ""),
    ("istio", {"multi_root": "yes"}, "IstioControlPlane cp: multiRoot", "true or false"),
    ("istio", {"root_cert_pem": "not a certificate"}, "IstioControlPlane cp: rootCertPem", "CERTIFICATE"),
    ("istio", {"ca_key_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
     "IstioControlPlane cp: caKeyPem", "private key"),
    ("istio", {"cloud": "aws"}, "IstioControlPlane cp: cloud", "unknown field"),
    ("istio", {"gateway_api_crds": "cloud"}, "IstioControlPlane cp: gatewayApiCrds", "install"),
    ("linkerd", {"issuer_key_pem": None}, "LinkerdControlPlane cp: issuerKeyPem", "required"),
    ("linkerd", {"issuer_cert_pem": MATERIAL["osm"][1].cert_pem, "issuer_key_pem": MATERIAL["osm"][1].key_pem},
     "LinkerdControlPlane cp: issuerCertPem", "Linkerd accepts only ECDSA P-256"),
    ("istio", {"ca_key_pem": MATERIAL["linkerd"][1].key_pem}, "IstioControlPlane cp: caKeyPem",
     "not the private key of the certificate in caCertPem"),
    ("osm", {"ca_key_pem": _material("osm")[1].key_pem}, "OsmControlPlane cp: caKeyPem",
     "not the private key of the certificate in certChainPem"),
    ("linkerd", {"trust_domain": "Not A Domain"}, "LinkerdControlPlane cp: trustDomain", ""),
    ("linkerd", {"mesh_name": "x" * 70}, "LinkerdControlPlane cp: meshName", ""),
    ("osm", {"cert_chain_pem": 42}, "OsmControlPlane cp: certChainPem", "PEM"),
    ("osm", {"data_plane": "ambient"}, "OsmControlPlane cp: dataPlane", "unknown field"),
]


@pytest.mark.parametrize("mesh,change,path,fragment", BAD, ids=[f"{m}-{p.rsplit(' ', 1)[-1]}" for m, _, p, _ in BAD])
def test_bad_args_are_refused_at_the_components_field_before_anything_registers(mesh, change, path, fragment):
    args = {**component_args(mesh), **change}
    args = {k: v for k, v in args.items() if v is not None}
    errors: list = []

    def program():
        provider = k8s.Provider("cluster", kubeconfig=FAKE_KUBECONFIG)
        try:
            CLASSES[mesh](NAME, args, opts=pulumi.ResourceOptions(providers=[provider]))
        except ArgsError as e:
            errors.append(e)
    regs = run(program)
    assert [r.type for r in regs] == [PROVIDER_TYPE]  # nothing of the component
    assert errors, "refused"
    problems = dict(errors[0].problems)
    assert path in problems, problems
    assert fragment in problems[path], problems[path]
    text = str(errors[0])
    assert "BEGIN" not in text and "AAAA" not in text  # never echoes material


def test_every_problem_at_once_and_a_value_not_known_at_construction_named():
    args = {**component_args("istio"), "mesh_id": pulumi.Output.from_input("shop"), "bogus": 1}
    del args["cluster_name"]
    with pytest.raises(ArgsError) as err:
        from mesh_components.components.control_plane import istio_plan
        istio_plan(NAME, args)
    problems = dict(err.value.problems)
    assert set(problems) == {"IstioControlPlane cp: meshId", "IstioControlPlane cp: bogus",
                             "IstioControlPlane cp: clusterName"}
    assert "must be known" in problems["IstioControlPlane cp: meshId"]


def test_args_that_are_not_a_mapping_are_refused():
    from mesh_components.components.control_plane import osm_plan
    with pytest.raises(ArgsError) as err:
        osm_plan(NAME, ["x"])
    assert err.value.problems == [("OsmControlPlane cp",
                                   "args must be a mapping of OsmControlPlaneArgs fields, got list")]


# --- ServiceMesh composes them: every shipped stack keeps its control plane --------------------------

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


@pytest.fixture
def stack_env(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(FAKE_KUBECONFIG)
    monkeypatch.setenv("HOME", str(home))
    for var in ("STAGING_USE1_KUBECONFIG", "STAGING_USW2_KUBECONFIG"):
        monkeypatch.setenv(var, FAKE_KUBECONFIG)


@pytest.mark.parametrize("stack", STACKS)
def test_a_stack_of_the_control_plane_type_updates_each_control_plane_and_its_children_in_place(stack, stack_env):
    """Releases before issue 14 registered every cluster's control plane as
    ``mesh:index:ControlPlane``; a component's type is part of every descendant's URN (pulumi/pulumi
    ``sdk/go/common/resource/urn/urn.go`` ``New``), so the per-mesh types would replace every
    namespace, Secret and release of the control plane without the component's type alias: with
    it the engine finds the component's old state, and each child's through the parent's alias
    (``pkg/resource/deploy/step_generator.go`` ``generateAliases``/``inheritedChildAlias``)."""
    from cp_helpers import run_recording
    from engine_urns import AliasSpec, before_type_renames, engine_urns, match_old_state

    backend = yaml.safe_load(stack_config(stack)["service-mesh:mesh"])["backend"]["type"]
    typ = CLASSES[backend].TYPE
    regs, requests = run_recording(stack_config(stack), stack)
    real = engine_urns(regs, stack)
    below = [r for r in regs if typ in real[r.urn]]
    clusters = yaml.safe_load(stack_config(stack)["service-mesh:mesh"])["clusters"]
    assert len([r for r in below if r.type == typ]) == len(clusters)
    assert not [r for r in regs if r.type == "mesh:index:ControlPlane"]
    assert {RELEASE_TYPE, "kubernetes:core/v1:Secret", "kubernetes:core/v1:NamespacePatch"} <= {r.type for r in below}
    stored = {before_type_renames(u) for u in real.values()}
    assert not {real[r.urn] for r in below} & stored  # every URN below the control plane changed
    aliases = {r.urn: [AliasSpec.from_proto(a) for a in requests[r.urn].aliases] for r in regs}
    found = match_old_state(regs, aliases, stored, stack)
    assert {r.name: found[r.urn] for r in below} == {r.name: before_type_renames(real[r.urn]) for r in below}
    # the alias is the type alone: without it nothing below the control plane is found
    without = {u: [a for a in al if a.type != "mesh:index:ControlPlane"] for u, al in aliases.items()}
    bare = match_old_state(regs, without, stored, stack)
    assert all(bare[r.urn] is None for r in below)


def test_control_plane_stays_importable_and_is_the_base_of_the_per_mesh_components():
    from mesh_components import ControlPlane
    assert all(issubclass(c, ControlPlane) for c in CLASSES.values())
    assert ControlPlane.TYPE == "mesh:index:ControlPlane"
    assert {c.FORMER_TYPES for c in CLASSES.values()} == {("mesh:index:ControlPlane",)}
    from mesh_components.components.control_plane import CONTROL_PLANES
    from mesh_components.core.render import CONTROL_PLANES as RENDERED
    assert set(CONTROL_PLANES) == set(RENDERED) and CONTROL_PLANES == CLASSES  # one component per backend


def test_pulumis_analyzer_reads_typed_inputs_and_outputs_with_descriptions():
    """The schema Pulumi's analyzer infers (``pulumi.provider.experimental.analyzer.Analyzer``,
    through ``components.package.schema``): every Args field an input (camelCase), the
    ``Required`` ones required, every annotated output a property, each with its docstring."""
    import inspect

    from pulumi.provider.experimental.util import camel_case

    from mesh_components.components import package

    classes = list(CLASSES.values())
    package.check_components(classes)
    resources = package.schema(classes)["resources"]
    assert sorted(resources) == sorted(c.TYPE for c in classes)
    args_of = {IstioControlPlane: "IstioControlPlaneArgs", LinkerdControlPlane: "LinkerdControlPlaneArgs",
               OsmControlPlane: "OsmControlPlaneArgs"}
    from mesh_components.components import control_plane as module
    for cls in classes:
        r = resources[cls.TYPE]
        args = getattr(module, args_of[cls])
        assert set(r["inputProperties"]) == {camel_case(k) for k in args.__annotations__}
        assert sorted(r["requiredInputs"]) == sorted(camel_case(k) for k in args.__required_keys__)
        outputs = {k for k in inspect.get_annotations(cls) if not k.startswith("_")}
        assert set(r["properties"]) == {camel_case(k) for k in outputs}
        described = [*r["inputProperties"].values(), *r["properties"].values()]
        assert all(p.get("description") for p in described), cls.__name__
        assert r["description"].startswith(cls.__doc__.split()[0])


def test_the_material_lookup_makes_key_slots_secret_and_refuses_slots_it_has_no_value_for():
    """The key reaches its Secret as a Pulumi secret even when passed plain (``material_lookup``:
    the slot ``ca.slot_material(...).ca_key_pem`` is ``secret``); certificates keep their
    secretness as given; a slot no arg fills is an error naming it, never an empty value."""
    import asyncio

    from mesh_components.core.ca import slot_material
    from mesh_components.components.control_plane import material_lookup
    from mesh_components.core.slots import Slot

    async def check():
        lookup = material_lookup("OsmControlPlane", "cp", {"key_pem": "k", "chain_pem": "c"})
        m = slot_material("c1")
        key, chain = lookup(m.ca_key_pem), lookup(m.cert_chain_pem)
        with pytest.raises(KeyError, match=r"OsmControlPlane cp: .*ca/c1/cert_pem"):
            lookup(m.ca_cert_pem)
        with pytest.raises(KeyError, match="cluster/"):
            lookup(Slot("cluster", "key_pem"))
        return await key.is_secret(), await key.future(), await chain.is_secret(), await chain.future()
    assert asyncio.run(check()) == (True, "k", False, "c")
