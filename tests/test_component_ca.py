"""MeshCertificateAuthority used alone (issue 14): one root of trust and an intermediate CA per
cluster, for a mesh installed by other means, with no other part of the project.

Each program is a small Pulumi program under the SDK's mocks (``program_harness``), whose mock
runs the real dynamic provider (``MeshCAProvider``: check, then create) for the CA's dynamic
resource, so the outputs hold real certificates: they are verified with ``openssl verify``.
What is registered is compared with what ``ServiceMesh`` registers for the stack file with the
same ``mesh.ca`` settings (``spec.ca_config()``), and bad args are refused with the stack file's
messages, re-pathed to the component's camelCase fields, before anything is registered.
"""
from __future__ import annotations

import hashlib
import json

import pulumi
import pulumi_kubernetes as k8s
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import mesh_components
from mesh_components.core import ca as ca_core
from mesh_components import ca_provider
from mesh_components.components import MeshCertificateAuthority, MeshCertificateAuthorityArgs
from mesh_components.components.args import ArgsError
from mesh_components.spec import parse_spec

from ca_helpers import openssl_root, openssl_verify
from program_harness import FAKE_KUBECONFIG, ROOT, Mocks, RecordingMonitor, stack_config, run_mocked

COMPONENT_TYPE = "mesh:index:MeshCertificateAuthority"
DYNAMIC_TYPE = "pulumi-python:dynamic:Resource"
SECRET_OUTPUTS = ("intermediate_keys", "istio_cacerts", "linkerd_values", "osm_ca_bundle")
PUBLIC_OUTPUTS = ("root_fingerprint", "root_cert", "trust_bundle", "stage", "intermediate_certs",
                  "intermediate_chains")


def run(program) -> list:
    return run_mocked(program)


def resolved(component: MeshCertificateAuthority, names) -> pulumi.Output:
    """``{output name: (value, is secret)}`` of ``component``'s ``names``."""
    async def one(name):
        out = getattr(component, name)
        return await out.future(), await out.is_secret()

    import asyncio

    async def every():
        return {n: await one(n) for n in names}
    return pulumi.Output.from_input(asyncio.ensure_future(every()))


def equivalent_stack_config(**ca) -> dict:
    """``CAConfig.to_inputs()`` that ``ServiceMesh`` registers for a stack file with these CA
    settings (``spec.ca_config()``)."""
    mesh = {"name": ca.pop("name", "mesh"), "trustDomain": ca.pop("trustDomain"), "backend": {"type": ca.pop("mesh")},
            "clusters": [{"name": c, "cloud": "gcp", "region": "europe-west1",
                          "kubeconfig": {"env": f"K_{i}"}} for i, c in enumerate(ca.pop("clusters"))]}
    if ca:
        mesh["ca"] = ca
    return parse_spec(mesh).ca_config().to_inputs()


# --- the CA alone ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mesh,algorithm", [("istio", "ECDSA_P256"), ("linkerd", "ECDSA_P256"), ("osm", "RSA_2048")])
def test_the_ca_alone_registers_the_component_and_the_dynamic_resource_with_the_stacks_inputs(mesh, algorithm):
    clusters = ["east"] if mesh == "osm" else ["east", "west"]
    args = {"trust_domain": "shop.example", "mesh": mesh, "clusters": clusters, "root_validity_days": 1000,
            "intermediate_validity_days": 100, "rotation_window_days": 10, "mesh_name": "shop"}
    regs = run(lambda: MeshCertificateAuthority("ca", args).urn)
    assert [(r.type, r.name) for r in regs] == [(COMPONENT_TYPE, "ca"), (DYNAMIC_TYPE, "ca")]
    component, authority = regs
    assert authority.parent == component.urn
    want = equivalent_stack_config(trustDomain="shop.example", mesh=mesh, clusters=clusters, name="shop",
                                   rootValidityDays=1000, intermediateValidityDays=100, rotationWindowDays=10)
    assert want["key_algorithm"] == algorithm  # the stack's mesh-dependent default
    assert {k: authority.inputs.get(k) for k in ca_core.CONFIG_FIELDS} == want
    assert set(ca_provider.SECRET_OUTPUTS) <= set(authority.additional_secret_outputs)
    assert not [r for r in regs if r.type.startswith("kubernetes:")]


def test_the_cluster_provider_in_opts_reaches_no_dynamic_resource_and_nothing_else_is_registered():
    def program():
        cluster = k8s.Provider("cluster", kubeconfig=FAKE_KUBECONFIG)
        return MeshCertificateAuthority("ca", {"trust_domain": "cluster.local", "mesh": "linkerd", "clusters": ["east"]},
                                        pulumi.ResourceOptions(providers=[cluster])).urn
    regs = run(program)
    assert [r.type for r in regs] == ["pulumi:providers:kubernetes", COMPONENT_TYPE, DYNAMIC_TYPE]
    assert "kubernetes" not in regs[2].provider


def _material(mesh: str, clusters, **more):
    box: dict = {}

    def program():
        ca = MeshCertificateAuthority("ca", {"trust_domain": "shop.example", "mesh": mesh, "clusters": clusters, **more})
        names = [*PUBLIC_OUTPUTS, "intermediate_keys", "multi_root", {"istio": "istio_cacerts", "linkerd":
                 "linkerd_values", "osm": "osm_ca_bundle"}[mesh]]
        absent = [n for n in ("istio_cacerts", "linkerd_values", "osm_ca_bundle") if n not in names]
        box["absent"] = {n: getattr(ca, n, None) for n in absent}
        return resolved(ca, names).apply(lambda v: box.update(v))
    regs = run(program)
    return box, regs


def _der_sha256(pem: str) -> str:
    return hashlib.sha256(x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)).hexdigest()


def _key_matches(cert_pem: str, key_pem: str) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def test_istio_material_verifies_and_keys_are_secret():
    out, _ = _material("istio", ["east", "west"])
    root, bundle = out["root_cert"][0], out["trust_bundle"][0]
    assert out["root_fingerprint"][0] == _der_sha256(root)
    assert root.strip() in bundle and out["stage"][0] == "none" and out["multi_root"][0] is False
    certs, chains, keys = (out[k][0] for k in ("intermediate_certs", "intermediate_chains", "intermediate_keys"))
    assert sorted(certs) == sorted(chains) == sorted(keys) == ["east", "west"]
    for c in ("east", "west"):
        ok, text = openssl_verify(bundle, certs[c])
        assert ok, text
        assert _key_matches(certs[c], keys[c])
        assert chains[c].startswith(certs[c].strip()) and root.strip() in chains[c]
    assert certs["east"] != certs["west"]
    cacerts = out["istio_cacerts"][0]
    for c in ("east", "west"):  # the four files of Istio's cacerts, as ServiceMesh's Secret holds them
        assert cacerts[c] == {"ca-cert.pem": certs[c], "ca-key.pem": keys[c], "root-cert.pem": bundle,
                              "cert-chain.pem": chains[c]}
    for name in SECRET_OUTPUTS:
        if name in out:
            assert out[name][1] is True, name
    for name in PUBLIC_OUTPUTS:
        assert out[name][1] is False, name
    assert out["absent"] == {"linkerd_values": None, "osm_ca_bundle": None}


def test_a_workload_certificate_from_a_clusters_material_verifies_with_openssl():
    """The material is a real chain: a leaf signed with a cluster's intermediate key verifies
    against the trust bundle with the intermediate as the untrusted chain, as a peer checks it."""
    import datetime as dt

    out, _ = _material("istio", ["east"])
    certs, keys, bundle = out["intermediate_certs"][0], out["intermediate_keys"][0], out["trust_bundle"][0]
    leaf = ca_core.issue_workload_certificate(certs["east"], keys["east"], now=dt.datetime.now(dt.timezone.utc),
                                              spiffe_uri="spiffe://shop.example/ns/shop/sa/web")
    ok, text = openssl_verify(bundle, leaf.cert_pem, untrusted_pem=out["intermediate_chains"][0]["east"])
    assert ok, text
    ok, text = openssl_verify(bundle, leaf.cert_pem)  # without the intermediate: no path to the root
    assert not ok


def test_linkerd_values_are_the_charts_identity_values_and_the_issuer_is_named_as_linkerd_checks():
    out, _ = _material("linkerd", ["east"])
    values = out["linkerd_values"][0]["east"]
    assert out["linkerd_values"][1] is True
    tls = values["identity"]["issuer"]["tls"]
    assert values["identityTrustAnchorsPEM"] == out["trust_bundle"][0]
    assert values["identityTrustDomain"] == "shop.example"
    assert tls == {"crtPEM": out["intermediate_certs"][0]["east"], "keyPEM": out["intermediate_keys"][0]["east"]}
    issuer = x509.load_pem_x509_certificate(tls["crtPEM"].encode())
    cn = issuer.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "identity.linkerd.shop.example"  # ca.intermediate_common_name: linkerd2 pkg/tls/cred.go
    ok, text = openssl_verify(values["identityTrustAnchorsPEM"], tls["crtPEM"])
    assert ok, text
    assert set(values) == {"identityTrustAnchorsPEM", "identityTrustDomain", "identity"}
    # every key is a value of the pinned chart (../shared/charts/linkerd-control-plane/values.yaml)
    import yaml

    chart = yaml.safe_load((ROOT.parent / "shared" / "charts" / "linkerd-control-plane" / "values.yaml").read_text())
    assert {"identityTrustAnchorsPEM", "identityTrustDomain"} <= set(chart)
    assert {"crtPEM", "keyPEM"} <= set(chart["identity"]["issuer"]["tls"])


def test_osm_bundle_is_the_chain_and_an_rsa_key():
    out, _ = _material("osm", ["one"])
    bundle = out["osm_ca_bundle"][0]["one"]
    assert out["osm_ca_bundle"][1] is True
    assert bundle["ca.crt"] == out["intermediate_chains"][0]["one"]
    assert bundle["private.key"].startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, as OSM v1.2.4 decodes
    assert _key_matches(out["intermediate_certs"][0]["one"], bundle["private.key"])


# --- args as other languages send them -------------------------------------------------------------

def test_camel_case_keys_and_whole_floats_register_what_snake_case_ints_do():
    snake = {"trust_domain": "shop.example", "mesh": "istio", "clusters": ["east"], "root_validity_days": 1000,
             "intermediate_validity_days": 100, "rotation_window_days": 10, "root_generation": 1, "overlap_days": 3}
    camel = {"trustDomain": "shop.example", "mesh": "istio", "clusters": ["east"], "rootValidityDays": 1000.0,
             "intermediateValidityDays": 100.0, "rotationWindowDays": 10.0, "rootGeneration": 1.0, "overlapDays": 3.0}
    made: list = []

    def program(args):
        made.append(MeshCertificateAuthority("ca", args))
        return made[-1].urn
    a = run(lambda: program(snake))
    b = run(lambda: program(camel))
    pick = lambda regs: {k: regs[1].inputs.get(k) for k in ca_core.CONFIG_FIELDS}  # noqa: E731
    assert pick(a) == pick(b) and pick(b)["root_validity_days"] == 1000
    # the CAConfig holds ints (the wire turns every number into a float, so look before it)
    assert made[0].config == made[1].config
    assert all(type(getattr(made[1].config, f)) is int for f in ("root_validity_days", "intermediate_validity_days",
                                                                   "rotation_window_days", "root_generation",
                                                                   "overlap_days"))


def test_byo_root_camel_case_secret_inputs_are_secret_and_the_root_is_the_one_given(tmp_path):
    cert, key = openssl_root(tmp_path)
    box: dict = {}

    def program():
        ca = MeshCertificateAuthority("ca", {"trustDomain": "cluster.local", "mesh": "istio", "clusters": ["east"],
                                             "mode": "byoRoot", "rootCertPem": cert,
                                             "rootKeyPem": pulumi.Output.secret(key)})
        return resolved(ca, ["root_fingerprint", "intermediate_certs"]).apply(box.update)
    regs = run(program)
    authority = regs[-1]
    assert {"root_cert_pem", "root_key_pem"} <= authority.secret_inputs
    assert box["root_fingerprint"][0] == _der_sha256(cert)
    ok, text = openssl_verify(cert, box["intermediate_certs"][0]["east"])
    assert ok, text


def test_intermediate_only_with_camel_case_keys_inside_intermediates(tmp_path):
    """The schema types each supplied intermediate as ``MeshCAIntermediateArgs`` (``certPem``,
    ``keyPem``, ``chainPem`` from other languages); the provider reads ``cert_pem``..."""
    root_cert, root_key = openssl_root(tmp_path)
    cfg = ca_core.CAConfig(trust_domain="cluster.local", mesh="istio", clusters=("east",))
    import datetime as dt
    issued = ca_core.issue_intermediate(cfg, "east", issuer_cert_pem=root_cert, issuer_key_pem=root_key,
                                        now=dt.datetime.now(dt.timezone.utc))
    supplied = {"east": {"certPem": issued.cert_pem, "keyPem": issued.key_pem, "chainPem": issued.chain_pem}}
    box: dict = {}

    def program():
        ca = MeshCertificateAuthority("ca", {"trustDomain": "cluster.local", "mesh": "istio", "clusters": ["east"],
                                             "mode": "intermediateOnly", "rootCertPem": root_cert,
                                             "intermediates": pulumi.Output.secret(supplied)})
        return resolved(ca, ["intermediate_certs", "intermediate_keys"]).apply(box.update)
    regs = run(program)
    assert "intermediates" in regs[-1].secret_inputs
    assert set(regs[-1].inputs["intermediates"]["east"]) == {"cert_pem", "key_pem", "chain_pem"}
    assert box["intermediate_certs"][0]["east"] == issued.cert_pem
    assert box["intermediate_keys"] == ({"east": issued.key_pem}, True)


# --- bad args: the stack file's messages at the component's fields, nothing registered -------------

GOOD = {"trust_domain": "cluster.local", "mesh": "istio", "clusters": ["east"]}
BAD = [
    ({**GOOD, "mesh": "linkerd", "key_algorithm": "RSA_2048"}, "keyAlgorithm",
     "Linkerd accepts only ECDSA P-256"),
    ({**GOOD, "mesh": "osm", "keyAlgorithm": "ECDSA_P256"}, "keyAlgorithm", "RSA PKCS#8"),
    ({**GOOD, "trustDomain": "Not Valid"}, "trustDomain", "is not a DNS-1123 subdomain"),
    ({**GOOD, "clusters": ["east", "east"]}, "clusters[1]", "duplicate cluster 'east'"),
    ({**GOOD, "clusters": ["east", "No_Label"]}, "clusters[1]", "is not a DNS-1123 label"),
    ({**GOOD, "clusters": "east"}, "clusters", "expected a list of cluster names"),
    ({**GOOD, "mesh": "osm", "clusters": ["a", "b"]}, "clusters", "OSM runs in one cluster only"),
    ({**GOOD, "mesh": "consul"}, "mesh", "'consul' is not one of"),
    ({**GOOD, "rootValidityDays": 100, "intermediateValidityDays": 100.0}, "intermediateValidityDays",
     "is not shorter than the root's 100 days"),
    ({**GOOD, "rotation_window_days": 400}, "rotationWindowDays", "is not shorter than the intermediate validity"),
    ({**GOOD, "overlapDays": 1.5}, "overlapDays", "whole number"),
    ({**GOOD, "rotationStage": "addNewRoot"}, "rotationStage", "has no older root"),
    ({**GOOD, "rotationStage": "later"}, "rotationStage", "'later'"),
    ({**GOOD, "mode": "vault"}, "vaultAddress", "mode 'vault' needs vault.address"),
    ({**GOOD, "mode": "vault", "vaultAddress": "vault.example:8200"}, "vaultAddress", "is not an http:// or https:// URL"),
    ({**GOOD, "mode": "byoRoot"}, "rootCertPem", "byoRoot mode needs the root certificate and key"),
    ({**GOOD, "mode": "intermediateOnly", "intermediates": {"east": {"certPem": "x", "keyPem": "y"}}},
     "intermediates.east", "not PEM text"),
    ({**GOOD, "meshName": "Shop Mesh"}, "meshName", "is not a DNS-1123 label"),
    ({**GOOD, "rootValidityDays": "ten"}, "rootValidityDays", ""),
    ({**GOOD, "colour": "blue"}, "colour", "unknown field; known fields: clusters,"),
    ({k: v for k, v in GOOD.items() if k != "trust_domain"}, "trustDomain", "required"),
    ({**GOOD, "clusters": [pulumi.Output.from_input("east")]}, "clusters[0]", "must be known when the component"),
]


@pytest.mark.parametrize("args,field,fragment", BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_args_raise_before_anything_is_registered(args, field, fragment):
    caught: list = []

    def program():
        try:
            MeshCertificateAuthority("ca", args)
        except ArgsError as e:
            caught.append(e)
    regs = run(program)
    assert regs == []
    assert len(caught) == 1
    paths = dict(caught[0].problems)
    key = f"MeshCertificateAuthority ca: {field}"
    assert key in paths, caught[0].problems
    assert fragment in paths[key]
    assert str(caught[0]).startswith("MeshCertificateAuthority ca: ")


def test_the_messages_are_the_stack_files_at_the_components_fields():
    """The same mistake in a stack file and in the args: one message, only the path differs."""
    from mesh_components.spec.errors import SpecError
    from mesh_components.spec import load_mesh

    stack = {"name": "mesh", "trustDomain": "cluster.local", "backend": {"type": "linkerd"},
             "clusters": [{"name": "east", "cloud": "gcp", "region": "europe-west1"}],
             "ca": {"keyAlgorithm": "RSA_2048", "rootValidityDays": 100, "intermediateValidityDays": 200}}
    with pytest.raises(SpecError) as stack_err:
        load_mesh(stack)
    with pytest.raises(ArgsError) as args_err:
        MeshCertificateAuthority("ca", {"trustDomain": "cluster.local", "mesh": "linkerd", "clusters": ["east"],
                                        "keyAlgorithm": "RSA_2048", "rootValidityDays": 100,
                                        "intermediateValidityDays": 200})
    want = {p.replace("mesh.ca.", "MeshCertificateAuthority ca: "): m for p, m in stack_err.value.problems}
    assert dict(args_err.value.problems) == want and len(want) == 2


def test_the_secret_material_never_reaches_a_message(tmp_path):
    cert, key = openssl_root(tmp_path)
    with pytest.raises(ArgsError) as err:
        MeshCertificateAuthority("ca", {**GOOD, "mode": "byoRoot", "root_cert_pem": cert, "root_key_pem": cert})
    assert "BEGIN" not in str(err.value) and "rootKeyPem" in str(err.value)


# --- names ----------------------------------------------------------------------------------------

def test_the_package_name_is_the_component_and_the_dynamic_resource_stays_where_state_points():
    assert mesh_components.MeshCertificateAuthority is MeshCertificateAuthority
    assert mesh_components.MeshCertificateAuthorityArgs is MeshCertificateAuthorityArgs
    assert issubclass(MeshCertificateAuthority, pulumi.ComponentResource)
    assert issubclass(ca_provider.MeshCertificateAuthority, pulumi.dynamic.Resource)
    assert ca_provider.MeshCAProvider.__module__ == "mesh_components.ca_provider"
    assert "MeshCertificateAuthority" in mesh_components.__all__


def test_every_args_field_is_documented_and_covers_the_config_and_secret_inputs():
    from mesh_components.components import package

    schema = package.schema([MeshCertificateAuthority])
    resource = schema["resources"][COMPONENT_TYPE]
    inputs = resource["inputProperties"]
    assert set(inputs) == {package_name for package_name in map(_camel, [*ca_core.CONFIG_FIELDS,
                                                                          *ca_provider.SECRET_INPUTS])}
    assert sorted(resource["requiredInputs"]) == ["clusters", "mesh", "trustDomain"]
    assert all(p.get("description", "").strip() for p in inputs.values())
    assert all(p.get("description", "").strip() for p in resource["properties"].values())
    assert {"rootFingerprint", "trustBundle", "stage", "intermediateCerts", "intermediateChains",
            "intermediateKeys"} <= set(resource["required"])
    assert {"istioCacerts", "linkerdValues", "osmCaBundle"} <= set(resource["properties"]) - set(resource["required"])
    json.dumps(schema)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


# --- ServiceMesh composes the component: every shipped stack keeps its CA --------------------------

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


@pytest.fixture
def kube_env(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(FAKE_KUBECONFIG)
    monkeypatch.setenv("HOME", str(home))
    for var in ("STAGING_USE1_KUBECONFIG", "STAGING_USW2_KUBECONFIG"):
        monkeypatch.setenv(var, FAKE_KUBECONFIG)


@pytest.mark.parametrize("stack", STACKS)
def test_service_mesh_keeps_every_urn_and_finds_the_cas_state_through_its_alias(stack, kube_env):
    """The state of the release before the component: the same URNs, but the dynamic resource
    straight under ``ServiceMesh`` (``...ServiceMesh$pulumi-python:dynamic:Resource::mesh-ca``) and
    no ``MeshCertificateAuthority``. The engine (``engine_urns.match_old_state``, after pulumi/pulumi
    ``step_generator.go``) finds every stored resource, the CA's root of trust through
    ``Alias(parent=<ServiceMesh>)``, and creates only the new component."""
    from cp_helpers import run_recording
    from engine_urns import AliasSpec, engine_urns, match_old_state

    regs, requests = run_recording(stack_config(stack), stack)
    real = engine_urns(regs, stack)
    old_ca = f"urn:pulumi:{stack}::service-mesh::mesh:index:ServiceMesh${DYNAMIC_TYPE}::mesh-ca"
    new_ca = f"urn:pulumi:{stack}::service-mesh::mesh:index:ServiceMesh${COMPONENT_TYPE}${DYNAMIC_TYPE}::mesh-ca"
    component = f"urn:pulumi:{stack}::service-mesh::mesh:index:ServiceMesh${COMPONENT_TYPE}::mesh-ca"
    assert {new_ca, component} <= set(real.values())
    stored = (set(real.values()) - {new_ca, component}) | {old_ca}
    aliases = {r.urn: [AliasSpec.from_proto(a) for a in requests[r.urn].aliases] for r in regs}
    found = match_old_state(regs, aliases, stored, stack)
    assert {real[r.urn]: found[r.urn] for r in regs if found[r.urn] != real[r.urn]} == {new_ca: old_ca, component: None}
    assert set(found.values()) - {None} == stored
    ca = next(r for r in regs if r.type == DYNAMIC_TYPE)
    mesh = next(r for r in regs if r.type == "mesh:index:ServiceMesh")
    assert aliases[ca.urn][0] == AliasSpec(parent_urn=mesh.urn)  # Alias(parent=<the ServiceMesh>)


def test_service_mesh_exports_the_components_outputs_under_the_names_it_had(kube_env):
    """``ServiceMesh.root_fingerprint`` / ``ca_stage`` are the component's, and the lookups that fill
    the CA Secrets (Istio ``cacerts``) read the dynamic resource (``self.ca.authority``)."""
    import runpy

    box: dict = {}
    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="dev", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(stack_config("dev"))

    @pulumi.runtime.test
    def program():
        ns = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        sm = ns["service_mesh"]
        box["ca"] = sm.ca
        return pulumi.Output.all(sm.root_fingerprint, sm.ca_stage, sm.ca.root_fingerprint,
                                 sm.ca.authority.root_fingerprint).apply(lambda v: box.update(values=v))
    program()
    assert isinstance(box["ca"], MeshCertificateAuthority)
    assert isinstance(box["ca"].authority, ca_provider.MeshCertificateAuthority)
    fp, stage, component_fp, authority_fp = box["values"]
    assert fp == component_fp == authority_fp and len(fp) == 64 and stage == "none"
    cacerts = [r for r in monitor.registrations if r.type == "kubernetes:core/v1:Secret"
               and r.inputs["metadata"]["name"] == "cacerts"]
    assert cacerts and all(ok for ok, _ in (openssl_verify(r.inputs["stringData"]["root-cert.pem"],
                                                           r.inputs["stringData"]["ca-cert.pem"]) for r in cacerts))
