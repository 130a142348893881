"""The mocked program runs the real CA provider (issue 12, "How to prove it without the CLI"), so
the CA objects it registers hold real chains: verified here with ``openssl verify -x509_strict``,
per stack and cluster, in each mesh's format (``ca.ca_objects``), and kept across updates of one
stack as the engine keeps them (``program_harness.EngineState``)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from pulumi.dynamic import DiffResult
from pulumi.dynamic.dynamic import serialize_provider

from ca_helpers import openssl_verify
from program_harness import FAKE_KUBECONFIG, ROOT, EngineState, run_dynamic_resource, run_program, stack_config

from mesh_components.core import ca
from mesh_components import ca_provider as cp

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
UTC = dt.timezone.utc


@pytest.fixture(autouse=True)
def kube_env(tmp_path, monkeypatch):
    """Kubeconfigs for the stacks' sources: a file for dev and osm (HOME), variables for staging."""
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(FAKE_KUBECONFIG)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("STAGING_USE1_KUBECONFIG", FAKE_KUBECONFIG)
    monkeypatch.setenv("STAGING_USW2_KUBECONFIG", str(home / ".kube" / "config"))


def mesh_of(stack: str) -> dict:
    return json.loads(stack_config(stack)["service-mesh:mesh"])


def ca_material(regs) -> dict[str, dict[str, dict]]:
    """cluster -> ``{"<Kind>/<name>": data}`` of the CA objects (``stringData`` or ``data``) and
    ``"values/<chart>"`` of the Helm releases, found through each object's cluster provider."""
    providers = {f"{r.urn}::{r.name}-id": r.inputs["clusterIdentifier"]
                 for r in regs if r.type == "pulumi:providers:kubernetes"}
    names = {"cacerts", "linkerd-identity-trust-roots", "linkerd-identity-issuer", ca.OSM_CA_SECRET}
    out: dict[str, dict[str, dict]] = {}
    for r in regs:
        cluster = providers.get(r.provider)
        if cluster is None:
            continue
        if r.type in ("kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap"):
            name = r.inputs["metadata"]["name"]
            if name in names:
                kind = r.type.split(":")[-1]
                out.setdefault(cluster, {})[f"{kind}/{name}"] = r.inputs.get("stringData") or r.inputs["data"]
        elif r.type == "kubernetes:helm.sh/v3:Release":
            out.setdefault(cluster, {})[f"values/{r.inputs['chart']}"] = r.inputs.get("values") or {}
    return out


def verify_cluster(mesh: str, trust_domain: str, objs: dict, now: dt.datetime) -> tuple[str, str]:
    """Verify one cluster's CA objects; return (trust bundle, intermediate fingerprint)."""
    if mesh == "istio":
        sd = objs["Secret/cacerts"]
        bundle, cert, key, chain = sd["root-cert.pem"], sd["ca-cert.pem"], sd["ca-key.pem"], sd["cert-chain.pem"]
    elif mesh == "linkerd":
        sd = objs["Secret/linkerd-identity-issuer"]
        bundle, cert, key = sd["ca.crt"], sd["tls.crt"], sd["tls.key"]
        assert objs["ConfigMap/linkerd-identity-trust-roots"]["ca-bundle.crt"] == bundle
        assert objs["values/linkerd-control-plane"]["identityTrustAnchorsPEM"] == bundle
        chain = ca.join_pems(cert, bundle)
        assert ca.key_algorithm_of(ca.load_certificate(cert).public_key()) == "ECDSA_P256"
        assert ca.intermediate_common_name(ca.CAConfig(trust_domain, "linkerd", ("x",)), "x") in \
            ca.load_certificate(cert).subject.rfc4514_string()
    else:
        sd = objs[f"Secret/{ca.OSM_CA_SECRET}"]
        chain, key = sd["ca.crt"], sd["private.key"]
        certs = ca.load_certificates(chain)
        assert len(certs) == 2, "osm-ca-bundle ca.crt holds the intermediate, then its root"
        cert, bundle = ca.cert_to_pem(certs[0]), ca.cert_to_pem(certs[-1])
        assert ca.key_algorithm_of(certs[0].public_key()).startswith("RSA_")
    assert ca.cert_to_pem(ca.load_certificate(chain)) == ca.cert_to_pem(ca.load_certificate(cert))
    ok, out = openssl_verify(bundle, cert, untrusted_pem=chain, at=now)
    assert ok, out
    assert ca._key_matches(ca.load_certificate(cert), ca.load_private_key(key)), "the key belongs to the CA cert"
    # a workload certificate the mesh would sign from this material verifies against the bundle
    leaf = ca.issue_workload_certificate(cert, key, now=now, spiffe_uri=ca.spiffe_id(trust_domain, "ns", "sa"),
                                         issuer_chain_pem=chain)
    ok, out = openssl_verify(bundle, leaf.cert_pem, untrusted_pem=chain, at=now, purpose="sslclient")
    assert ok, out
    return bundle, ca.fingerprint(cert)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_renders_real_verifiable_ca_chains(stack):
    mesh = mesh_of(stack)
    backend, clusters = mesh["backend"]["type"], [c["name"] for c in mesh["clusters"]]
    material = ca_material(run_program(stack_config(stack), stack))
    assert sorted(material) == sorted(clusters)
    now = dt.datetime.now(UTC)
    seen = [verify_cluster(backend, mesh.get("trustDomain", "cluster.local"), material[c], now) for c in clusters]
    assert len({b for b, _ in seen}) == 1, "one root of trust for every cluster"
    assert len({f for _, f in seen}) == len(clusters), "one intermediate per cluster"


def test_one_stack_over_several_updates_keeps_its_ca():
    """A second ``pulumi up`` changes nothing; removing a cluster removes only its intermediate."""
    state = EngineState()
    config = stack_config("prod")
    first = ca_material(run_program(config, "prod", state=state))
    (ca_id,) = [s.id for s in state.resources.values()]
    assert ca_material(run_program(config, "prod", state=state)) == first
    mesh = mesh_of("prod")
    mesh["clusters"] = [c for c in mesh["clusters"] if c["name"] != "prod-gcp"]
    smaller = ca_material(run_program({**config, "service-mesh:mesh": json.dumps(mesh)}, "prod", state=state))
    assert sorted(smaller) == sorted(set(first) - {"prod-gcp"})
    for c in smaller:
        assert smaller[c]["Secret/cacerts"] == first[c]["Secret/cacerts"], c
    (stored,) = state.resources.values()
    assert stored.id == ca_id and sorted(stored.outputs["intermediates"]) == sorted(smaller)
    for c in smaller:
        verify_cluster("istio", "cluster.local", smaller[c], dt.datetime.now(UTC))


class NoisyRefresh(cp.MeshCAProvider):
    """A provider whose diff always finds a change (what a clock-reading diff does in a rotation window)."""

    def diff(self, _id, _olds, _news):
        return DiffResult(changes=True, replaces=[], stables=[], delete_before_replace=False)


def test_the_harness_fails_a_refresh_that_reports_a_change():
    registered = {**ca.CAConfig(trust_domain="cluster.local", mesh="istio", clusters=("a",)).to_inputs(),
                  "__provider": serialize_provider(NoisyRefresh())}
    state = EngineState()
    rid, outs = run_dynamic_resource(state, "s", "ca", registered)
    assert sorted(outs["intermediates"]) == ["a"] and outs["__provider"] == registered["__provider"]
    with pytest.raises(AssertionError, match="refresh of ca reports a change"):
        run_dynamic_resource(state, "s", "ca", registered)
