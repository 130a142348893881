"""Vault PKI client against a local HTTP server that speaks the documented API shapes, and the
CA provider's vault mode (root key never in state) including a staged rotation."""
from __future__ import annotations

import datetime as dt
import pathlib
import sys

import pytest
from cryptography import x509

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from ca_helpers import FakeVault, FixedClock, free_port, openssl_text, openssl_verify  # noqa: E402

from mesh_components.core import ca  # noqa: E402
from mesh_components import ca_provider as cp  # noqa: E402
from mesh_components.core.ca import CAConfig, CAError  # noqa: E402
from mesh_components.core.vault import VaultError, VaultPKIClient  # noqa: E402

UTC = dt.timezone.utc


def _csr(mesh="istio", cluster="east"):
    c = CAConfig(trust_domain="cluster.local", mesh=mesh, clusters=(cluster,))
    key = ca.generate_key()
    return c, key, ca.intermediate_csr(c, cluster, key)


@pytest.mark.parametrize("fmt, bundled", [("pem_bundle", False), ("pem_bundle", True), ("pem", False)])
def test_sign_intermediate_sends_the_documented_request_and_parses_the_response(fmt, bundled):
    with FakeVault() as v:
        v.bundle_issuer = bundled
        client = VaultPKIClient(v.address, v.token)
        c, key, csr = _csr(mesh="linkerd")
        signed = client.sign_intermediate(csr, common_name="identity.linkerd.cluster.local", ttl_hours=8760,
                                          format=fmt)
        req = v.requests[-1]
        assert req["method"] == "POST" and req["path"] == "/v1/pki/root/sign-intermediate"
        assert req["token"] == v.token and req["content_type"] == "application/json"
        assert req["body"]["csr"] == csr and req["body"]["common_name"] == "identity.linkerd.cluster.local"
        assert req["body"]["ttl"] == "8760h" and req["body"]["format"] == fmt
        assert req["body"]["max_path_length"] == 0 and req["body"]["use_csr_values"] is True
        assert signed.certificate.count("BEGIN CERTIFICATE") == 1
        assert signed.ca_chain and ca.fingerprint(signed.ca_chain[-1]) == ca.fingerprint(v.root_cert_pem)
        assert signed.issuing_ca == v.root_cert_pem and signed.expiration and ":" in signed.serial_number
        cert = ca.load_certificate(signed.certificate)
        assert cert.public_key().public_numbers() == key.public_key().public_numbers()
        ok, out = openssl_verify(v.root_cert_pem, signed.certificate)
        assert ok, out
        assert "CA:TRUE, pathlen:0" in openssl_text(signed.certificate)


def test_bad_token_is_a_clear_403_error_without_the_token():
    with FakeVault() as v:
        client = VaultPKIClient(v.address, "hvs.wrong-secret-token")
        with pytest.raises(VaultError) as e:
            client.sign_intermediate(_csr()[2], common_name="x", ttl_hours=1)
        assert e.value.status == 403 and e.value.errors == ["permission denied"]
        msg = str(e.value)
        assert "HTTP 403: permission denied" in msg and "vault_token" in msg
        assert "hvs.wrong-secret-token" not in msg and "hvs.wrong-secret-token" not in repr(client)
        assert isinstance(e.value, CAError) and e.value.problems[0][0] == "ca.vault.address"


def test_vault_error_bodies_and_unreachable_server():
    with FakeVault() as v:
        client = VaultPKIClient(v.address, v.token)
        with pytest.raises(VaultError) as e:
            client.sign_intermediate("", common_name="x", ttl_hours=1)
        assert e.value.status == 400 and '"csr" is empty' in str(e.value)
        with pytest.raises(VaultError) as e:
            VaultPKIClient(v.address, v.token, mount="nope").sign_intermediate(_csr()[2], common_name="x", ttl_hours=1)
        assert e.value.status == 404 and "mounted at 'nope'" in str(e.value)
        assert ca.fingerprint(client.read_ca_chain()[-1]) == ca.fingerprint(v.root_cert_pem)
        assert v.requests[-1]["token"] is None  # ca_chain is unauthenticated
    with pytest.raises(VaultError, match="cannot reach Vault") as e:
        VaultPKIClient(f"http://127.0.0.1:{free_port()}", "t", timeout=2).read_ca_chain()
    assert e.value.status is None


def _vault_inputs(v: FakeVault, **kw) -> dict:
    base = dict(trust_domain="cluster.local", mesh="istio", clusters=("east", "west"), mode="vault",
                vault_address=v.address, vault_mount="pki")
    base.update(kw)
    d = CAConfig(**base).to_inputs()
    d.update({"root_cert_pem": None, "root_key_pem": None, "intermediates": None, "vault_token": v.token})
    return d


def test_vault_mode_keeps_the_root_key_out_of_state_and_rotates_in_stages():
    clock = FixedClock(dt.datetime.now(UTC).replace(microsecond=0))
    p = cp.MeshCAProvider(clock)
    with FakeVault() as v:
        i0 = p.check({}, _vault_inputs(v))
        assert not i0.failures
        outs = p.create(i0.inputs).outs
        assert [r["key_pem"] for r in outs["roots"]] == [None]
        assert v.root_key_pem not in repr(outs) and v.token not in repr(outs)
        assert outs["root_fingerprint"] == ca.fingerprint(v.root_cert_pem)
        for item in outs["intermediates"].values():
            ok, o = openssl_verify(outs["trust_bundle_pem"], item["chain_pem"])
            assert ok, o
            assert "PRIVATE KEY" in item["key_pem"]  # the intermediate key is ours; the root key stays in Vault
        signs = [r for r in v.requests if r["method"] == "POST"]
        assert len(signs) == 2 and all(r["token"] == v.token for r in signs)
        assert p.diff("id", outs, i0.inputs).changes is False
        assert len([r for r in v.requests if r["method"] == "POST"]) == 2, "diff never calls Vault"

        # starting a rotation before Vault has a new default issuer is refused clearly
        i1 = p.check(i0.inputs, _vault_inputs(v, root_generation=2, rotation_stage="addNewRoot")).inputs
        with pytest.raises(CAError, match="still chains to root g1"):
            p.update("id", outs, i1)
        old_root = v.root_cert_pem
        v.rotate_root()
        outs1 = p.update("id", outs, i1).outs
        assert outs1["multi_root"] and outs1["signer_generation"] == 1
        assert outs1["intermediate_fingerprints"] == outs["intermediate_fingerprints"]
        i2 = p.check(i1, _vault_inputs(v, root_generation=2, rotation_stage="reissueIntermediates")).inputs
        outs2 = p.update("id", outs1, i2).outs
        assert outs2["root_fingerprint"] == ca.fingerprint(v.root_cert_pem)
        for c, item in outs2["intermediates"].items():
            assert openssl_verify(outs2["trust_bundle_pem"], item["chain_pem"])[0]
            assert openssl_verify(outs2["trust_bundle_pem"], outs1["intermediates"][c]["chain_pem"])[0]
            assert not openssl_verify(old_root, item["chain_pem"])[0]
        clock.advance(days=7)
        i3 = p.check(i2, _vault_inputs(v, root_generation=2, rotation_stage="removeOldRoot")).inputs
        outs3 = p.update("id", outs2, i3).outs
        assert not outs3["multi_root"] and ca.fingerprint(outs3["trust_bundle_pem"]) == ca.fingerprint(v.root_cert_pem)


def test_vault_mode_with_a_bad_token_fails_with_the_vault_message():
    p = cp.MeshCAProvider()
    with FakeVault() as v:
        news = {**_vault_inputs(v), "vault_token": "hvs.stale"}
        # create first reads the chain (unauthenticated), then Vault refuses to sign
        with pytest.raises(VaultError, match="HTTP 403") as e:
            p.create(p.check({}, news).inputs)
        assert "hvs.stale" not in str(e.value)
    assert p.check({}, {**_vault_inputs(v), "vault_token": None}).failures[0].property == "vault_token"


def test_linkerd_issuer_signed_by_vault_keeps_the_dns_name():
    with FakeVault() as v:
        p = cp.MeshCAProvider()
        outs = p.create(p.check({}, _vault_inputs(v, mesh="linkerd", clusters=("east",))).inputs).outs
        cert = ca.load_certificate(outs["intermediates"]["east"]["cert_pem"])
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["identity.linkerd.cluster.local"]
        assert p.diff("id", outs, p.check({}, _vault_inputs(v, mesh="linkerd", clusters=("east",))).inputs).changes is False
