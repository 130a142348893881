"""The pure CA core: issuance checked with `openssl verify`, mTLS over loopback, staged rotation,
the time-travelling planner, BYO/intermediate-only modes and distribution objects checked by the
shared upstream-schema tools."""
from __future__ import annotations

import datetime as dt
import pathlib
import subprocess
import sys

import pytest
import yaml
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from ca_helpers import FixedClock, mtls_handshake, openssl_root, openssl_text, openssl_verify, tools_dir  # noqa: E402

from mesh_components.core import ca  # noqa: E402
from mesh_components.core.ca import CAConfig, CAError  # noqa: E402
from mesh_components.core.slots import Slot  # noqa: E402

UTC = dt.timezone.utc
T0 = dt.datetime(2030, 1, 1, tzinfo=UTC)


def cfg(**kw) -> CAConfig:
    base = dict(trust_domain="cluster.local", mesh="istio", clusters=("a", "b"))
    base.update(kw)
    return CAConfig(**base)


def run(c: CAConfig, state, now, supplied=None):
    plan = ca.plan_changes(c, state, now, supplied)
    return plan, ca.apply_plan(c, state, plan, now, supplied=supplied)


def leaf(state: ca.CAState, cluster: str, now, ns="default", sa="sleep", td="cluster.local") -> ca.IssuedCert:
    rec = state.intermediates[cluster]
    return ca.issue_workload_certificate(rec.cert_pem, rec.key_pem, now=now, spiffe_uri=ca.spiffe_id(td, ns, sa),
                                         issuer_chain_pem=rec.chain_pem)


def verify_leaf(trusted: str, lf: ca.IssuedCert, at) -> bool:
    return openssl_verify(trusted, lf.cert_pem, untrusted_pem=lf.chain_pem, at=at, purpose="sslclient")[0]


# --------------------------------------------------------------------------------------------- config


def test_valid_default_config_has_no_problems():
    assert ca.validate_ca_config(cfg()) == []


@pytest.mark.parametrize("kw, path, words", [
    (dict(mesh="linkerd", key_algorithm="RSA_2048"), "ca.keyAlgorithm", "ECDSA_P256"),
    (dict(mesh="osm"), "ca.keyAlgorithm", "RSA_2048"),
    (dict(key_algorithm="DSA"), "ca.keyAlgorithm", "ECDSA_P256"),
    (dict(rotation_window_days=365), "ca.rotationWindowDays", "lower it"),
    (dict(intermediate_validity_days=4000), "ca.intermediateValidityDays", "rootValidityDays"),
    (dict(trust_domain="Cluster Local"), "ca.trustDomain", "cluster.local"),
    (dict(clusters=("a", "a")), "ca.clusters[1]", "once"),
    (dict(clusters=()), "ca.clusters", "at least one"),
    (dict(mode="vault"), "ca.vault.address", "http(s)://"),
    (dict(mode="intermediateOnly", root_generation=2, rotation_stage="addNewRoot"), "ca.rootRotation.stage", "supply new intermediates"),
    (dict(rotation_stage="addNewRoot"), "ca.rootRotation.stage", "generation to 2"),
    (dict(overlap_days=-1), "ca.rootRotation.overlapDays", ">= 0"),
])
def test_config_problems_name_field_and_fix(kw, path, words):
    problems = ca.validate_ca_config(cfg(**kw))
    assert any(p == path and words in m for p, m in problems), problems
    with pytest.raises(CAError) as e:
        ca.require_valid(cfg(**kw))
    assert path in str(e.value) and "Traceback" not in str(e.value)


def test_config_roundtrips_through_provider_inputs_with_float_numbers():
    c = cfg(root_generation=3, rotation_stage="addNewRoot")
    inputs = {k: (float(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in c.to_inputs().items()}
    assert CAConfig.from_inputs(inputs) == c


# --------------------------------------------------------------------------------------------- issuance


@pytest.mark.parametrize("alg", ca.KEY_ALGORITHMS)
def test_root_and_intermediates_verify_with_openssl_and_carry_ca_extensions(alg):
    c = cfg(key_algorithm=alg, clusters=("east", "west", "north"))
    _, state = run(c, None, dt.datetime.now(UTC))
    root = state.signer
    text = openssl_text(root.cert_pem)
    assert "CA:TRUE, pathlen:1" in text
    assert "X509v3 Basic Constraints: critical" in text and "X509v3 Key Usage: critical" in text
    assert "Certificate Sign, CRL Sign" in text
    assert "X509v3 Subject Key Identifier" in text and "X509v3 Authority Key Identifier" in text
    assert ca.key_algorithm_of(root.cert.public_key()) == alg
    root_ski = root.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    for cluster, rec in state.intermediates.items():
        ok, out = openssl_verify(root.cert_pem, rec.cert_pem)
        assert ok, out
        ok, out = openssl_verify(state.trust_bundle_pem, rec.chain_pem)  # Istio's cert-chain.pem shape
        assert ok, out
        t = openssl_text(rec.cert_pem)
        assert "CA:TRUE, pathlen:0" in t and "Certificate Sign, CRL Sign" in t
        assert "X509v3 Basic Constraints: critical" in t and "X509v3 Key Usage: critical" in t
        assert f"L={cluster}" in t.replace(" = ", "=")
        aki = rec.cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        assert aki == root_ski
        assert rec.not_after <= root.not_after


def test_linkerd_issuer_carries_the_dns_name_linkerd_verifies():
    c = cfg(mesh="linkerd", trust_domain="example.org")
    _, state = run(c, None, dt.datetime.now(UTC))
    rec = state.intermediates["a"]
    san = rec.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["identity.linkerd.example.org"]
    assert "BEGIN EC PRIVATE KEY" in rec.key_pem  # the block type every Linkerd release decodes


def test_osm_key_is_rsa_pkcs8_as_osm_decodes_it():
    _, state = run(cfg(mesh="osm", key_algorithm="RSA_2048", clusters=("a",)), None, dt.datetime.now(UTC))
    assert state.intermediates["a"].key_pem.startswith("-----BEGIN PRIVATE KEY-----")


def test_workload_leaves_verify_against_root_with_openssl():
    now = dt.datetime.now(UTC)
    _, state = run(cfg(), None, now)
    for cluster in ("a", "b"):
        lf = leaf(state, cluster, now)
        assert verify_leaf(state.trust_bundle_pem, lf, now)
        assert openssl_verify(state.trust_bundle_pem, lf.cert_pem, untrusted_pem=lf.chain_pem,
                              purpose="sslserver")[0]
        assert "URI:spiffe://cluster.local/ns/default/sa/sleep" in openssl_text(lf.cert_pem)


# --------------------------------------------------------------------------------------------- mTLS


def test_mtls_between_clusters_trusting_only_the_root_bundle_and_unrelated_root_refused():
    now = dt.datetime.now(UTC)
    _, state = run(cfg(clusters=("a", "b")), None, now)
    a = leaf(state, "a", now, ns="frontend", sa="web")
    b = leaf(state, "b", now, ns="backend", sa="api")
    bundle = state.trust_bundle_pem
    assert "BEGIN CERTIFICATE" in bundle and bundle.count("BEGIN CERTIFICATE") == 1
    r = mtls_handshake(a, b, server_trust=bundle, client_trust=bundle)
    assert r["ok"], r
    assert r["server_saw"] == ["spiffe://cluster.local/ns/backend/sa/api"]
    assert r["client_saw"] == ["spiffe://cluster.local/ns/frontend/sa/web"]

    _, other = run(cfg(clusters=("x",), mesh_name="other"), None, now)
    stranger = leaf(other, "x", now, ns="evil", sa="intruder")
    r = mtls_handshake(a, stranger, server_trust=bundle, client_trust=other.trust_bundle_pem + bundle)
    assert not r["ok"] and r["server_error"], r  # server refuses the unrelated client
    r = mtls_handshake(stranger, b, server_trust=bundle + other.trust_bundle_pem, client_trust=bundle)
    assert not r["ok"] and r["client_error"], r  # client refuses the unrelated server


# --------------------------------------------------------------------------------------------- rotation


def test_staged_root_rotation_keeps_every_chain_verifying_at_each_stage():
    clock = FixedClock(dt.datetime.now(UTC).replace(microsecond=0))
    c1 = cfg(clusters=("a", "b"))
    _, s0 = run(c1, None, clock())
    old_root = s0.signer
    old_leaves = {k: leaf(s0, k, clock()) for k in ("a", "b")}
    old_fps = {k: r.fingerprint for k, r in s0.intermediates.items()}

    # stage 1: trust old + new everywhere, signer unchanged
    c2 = cfg(clusters=("a", "b"), root_generation=2, rotation_stage="addNewRoot")
    p1, s1 = run(c2, s0, clock())
    assert p1.add_root_generation == 2 and not p1.reissue and p1.signer_generation == 1
    assert s1.multi_root and [r.generation for r in s1.roots] == [1, 2]
    assert {k: r.fingerprint for k, r in s1.intermediates.items()} == old_fps
    assert s1.signer.fingerprint == old_root.fingerprint
    for k in ("a", "b"):
        assert verify_leaf(s1.trust_bundle_pem, old_leaves[k], clock())

    # stage 2: intermediates re-issued from the new root; the bundle still holds both roots
    c3 = cfg(clusters=("a", "b"), root_generation=2, rotation_stage="reissueIntermediates")
    p2, s2 = run(c3, s1, clock())
    assert sorted(p2.reissue_clusters) == ["a", "b"] and p2.signer_generation == 2
    new_root = s2.root(2)
    assert all(r.issuer_fingerprint == new_root.fingerprint for r in s2.intermediates.values())
    new_leaves = {k: leaf(s2, k, clock()) for k in ("a", "b")}
    for k in ("a", "b"):
        assert verify_leaf(s2.trust_bundle_pem, old_leaves[k], clock()), "old intermediates must still verify"
        assert verify_leaf(s2.trust_bundle_pem, new_leaves[k], clock())
    # mid-rollout: cluster a already on the new intermediate, cluster b's pods still on the old one
    r = mtls_handshake(new_leaves["a"], old_leaves["b"], server_trust=s2.trust_bundle_pem,
                       client_trust=s2.trust_bundle_pem)
    assert r["ok"], r

    # stage 3 too early: refused, naming when it may be applied
    c4 = cfg(clusters=("a", "b"), root_generation=2, rotation_stage="removeOldRoot")
    with pytest.raises(CAError, match="removeOldRoot must wait 7 days"):
        ca.plan_changes(c4, s2, clock.advance(days=3))
    clock.advance(days=5)
    p3, s3 = run(c4, s2, clock())
    assert p3.drop_root_generations == (1,) and not p3.reissue
    assert not s3.multi_root and s3.trust_bundle_pem.count("BEGIN CERTIFICATE") == 1
    fresh = {k: leaf(s3, k, clock()) for k in ("a", "b")}
    for k in ("a", "b"):
        assert verify_leaf(s3.trust_bundle_pem, fresh[k], clock())
        assert not verify_leaf(s3.trust_bundle_pem, old_leaves[k], clock() - dt.timedelta(days=8)), \
            "the old root is gone from the bundle"
    # finishing: back to 'none' changes nothing but the recorded stage
    p4, s4 = run(cfg(clusters=("a", "b"), root_generation=2), s3, clock())
    assert not p4.reissue and not p4.drop_root_generations and p4.add_root_generation is None
    assert ca.plan_changes(cfg(clusters=("a", "b"), root_generation=2), s4, clock()).changes is False


@pytest.mark.parametrize("old, new, words", [
    ((1, "none"), (2, "reissueIntermediates"), "apply addNewRoot first"),
    ((1, "none"), (2, "removeOldRoot"), "apply addNewRoot first"),
    ((1, "none"), (2, "none"), "must begin with stage addNewRoot"),
    ((2, "addNewRoot"), (2, "removeOldRoot"), "apply stage reissueIntermediates first"),
    ((2, "addNewRoot"), (2, "none"), "apply stage reissueIntermediates first"),
    ((2, "reissueIntermediates"), (2, "none"), "apply stage removeOldRoot first"),
    ((2, "reissueIntermediates"), (3, "addNewRoot"), "finish it (removeOldRoot)"),
    ((1, "none"), (3, "addNewRoot"), "set 2 with stage addNewRoot first"),
    ((2, "removeOldRoot"), (2, "reissueIntermediates"), "set generation 3 with stage addNewRoot"),
    ((3, "none"), (2, "none"), "cannot go back"),
])
def test_a_stack_cannot_skip_a_stage(old, new, words):
    with pytest.raises(CAError) as e:
        ca.check_stage_transition(*old, *new)
    assert words in str(e.value)


@pytest.mark.parametrize("old, new", [
    ((1, "none"), (2, "addNewRoot")), ((2, "addNewRoot"), (2, "reissueIntermediates")),
    ((2, "reissueIntermediates"), (2, "removeOldRoot")), ((2, "removeOldRoot"), (2, "none")),
    ((2, "reissueIntermediates"), (2, "addNewRoot")), ((2, "addNewRoot"), (1, "none")),
    ((2, "removeOldRoot"), (3, "addNewRoot")),
])
def test_allowed_stage_moves(old, new):
    ca.check_stage_transition(*old, *new)


def test_abandoning_a_rotation_at_addNewRoot_drops_the_new_root_only():
    now = dt.datetime.now(UTC)
    _, s0 = run(cfg(), None, now)
    _, s1 = run(cfg(root_generation=2, rotation_stage="addNewRoot"), s0, now)
    p, s2 = run(cfg(root_generation=1), s1, now)
    assert p.drop_root_generations == (2,) and not p.reissue
    assert s2.trust_bundle_pem == s0.trust_bundle_pem


# --------------------------------------------------------------------------------------------- planner / time


def test_time_travel_reissues_exactly_what_is_due():
    clock = FixedClock(T0)
    _, s = run(cfg(clusters=("b",)), None, clock())          # b issued at T0: expires T0+365
    clock.advance(days=100)
    p, s = run(cfg(clusters=("a", "b")), s, clock())          # a added at T0+100: expires T0+465
    assert p.reissue_clusters == ("a",) and p.reissue[0].reason == "cluster added"
    root_fp = s.signer.fingerprint
    assert not ca.plan_changes(cfg(clusters=("a", "b")), s, clock()).changes
    assert not ca.plan_changes(cfg(clusters=("a", "b")), s, T0 + dt.timedelta(days=334)).changes
    due = ca.plan_changes(cfg(clusters=("a", "b")), s, T0 + dt.timedelta(days=340))
    assert due.reissue_clusters == ("b",) and "rotation window" in due.reissue[0].reason
    assert due.add_root_generation is None and not due.drop_root_generations
    clock.t = T0 + dt.timedelta(days=340)
    before = {k: r.fingerprint for k, r in s.intermediates.items()}
    s2 = ca.apply_plan(cfg(clusters=("a", "b")), s, due, clock())
    assert s2.intermediates["a"].fingerprint == before["a"] and s2.intermediates["b"].fingerprint != before["b"]
    assert s2.signer.fingerprint == root_fp
    assert not ca.plan_changes(cfg(clusters=("a", "b")), s2, clock.advance(days=1)).changes
    # an expired intermediate is due too
    late = ca.plan_changes(cfg(clusters=("a", "b")), s, T0 + dt.timedelta(days=500))
    assert set(late.reissue_clusters) == {"a", "b"} and any("expired" in r.reason for r in late.reissue)


def test_intermediate_capped_by_root_is_not_reissued_forever_and_root_expiry_is_noticed():
    c = cfg(root_validity_days=400, intermediate_validity_days=365, clusters=("a",))
    _, s = run(c, None, T0)
    at = T0 + dt.timedelta(days=372)
    _, s = run(c, s, at)                                       # a re-issued, capped at the root's expiry
    assert s.intermediates["a"].not_after == s.signer.not_after
    p = ca.plan_changes(c, s, at + dt.timedelta(days=20))
    assert not p.reissue and any("start a staged rotation" in n for n in p.notices)


def test_adding_and_removing_clusters_touches_only_those_intermediates():
    now = dt.datetime.now(UTC)
    _, s = run(cfg(clusters=("a", "b", "c")), None, now)
    fps = {k: r.fingerprint for k, r in s.intermediates.items()}
    p, s2 = run(cfg(clusters=("a", "c", "d")), s, now)
    assert p.reissue_clusters == ("d",) and p.remove == ("b",)
    assert p.add_root_generation is None and not p.drop_root_generations
    assert sorted(s2.intermediates) == ["a", "c", "d"] and s2.signer.fingerprint == s.signer.fingerprint
    assert all(s2.intermediates[k].fingerprint == fps[k] for k in ("a", "c"))


def test_key_algorithm_and_subject_changes_reissue_intermediates_not_the_root():
    now = dt.datetime.now(UTC)
    _, s = run(cfg(), None, now)
    p = ca.plan_changes(cfg(key_algorithm="RSA_2048"), s, now)
    assert set(p.reissue_clusters) == {"a", "b"} and "ECDSA_P256 -> RSA_2048" in p.reissue[0].reason
    assert p.add_root_generation is None and any("next rotation" in n for n in p.notices)
    p = ca.plan_changes(cfg(trust_domain="prod.example"), s, now)
    assert set(p.reissue_clusters) == {"a", "b"} and "subject" in p.reissue[0].reason


_STAGE_MOVES = st.sampled_from(["next", "skip", "advance", "add", "remove", "rollback"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_STAGE_MOVES, st.integers(0, 40)), min_size=1, max_size=10))
def test_any_sequence_of_moves_keeps_every_intermediate_trusted(moves):
    """Property: whatever the user asks, each applied state has 1-2 roots, a trusted signer, and
    every intermediate chains to a trusted root. Refused moves raise CAError and change nothing."""
    order = ["none", "addNewRoot", "reissueIntermediates", "removeOldRoot"]
    clock = FixedClock(T0)
    clusters = ["a", "b"]
    c = cfg(clusters=tuple(clusters))
    _, s = run(c, None, clock())
    for move, days in moves:
        clock.advance(days=days)
        g, stage = c.root_generation, c.rotation_stage
        if move == "next":
            g, stage = (g + 1, "addNewRoot") if stage in ("none", "removeOldRoot") else (g, order[order.index(stage) + 1])
        elif move == "skip":
            stage = "removeOldRoot" if stage == "none" else "none"
            g = g + 1 if stage == "removeOldRoot" else g
        elif move == "rollback":
            stage = "addNewRoot" if stage == "reissueIntermediates" else stage
        elif move == "add":
            clusters = clusters + [f"c{len(clusters)}"]
        elif move == "remove" and len(clusters) > 1:
            clusters = clusters[1:]
        new = cfg(clusters=tuple(clusters), root_generation=g, rotation_stage=stage)
        try:
            p, s2 = run(new, s, clock())
        except CAError:
            continue
        c, s = new, s2
        fps = {r.fingerprint for r in s.roots}
        assert 1 <= len(s.roots) <= 2 and s.root(s.signer_generation) is not None
        assert s.multi_root == (len(s.roots) == 2)
        assert sorted(s.intermediates) == sorted(clusters)
        for rec in s.intermediates.values():
            assert rec.issuer_fingerprint in fps
            chain = ca.load_certificates(rec.chain_pem)
            for child, parent in zip(chain, chain[1:]):
                child.verify_directly_issued_by(parent)
        assert not ca.plan_changes(c, s, clock()).changes


# --------------------------------------------------------------------------------------------- BYO modes


def test_byo_root_made_by_openssl_signs_verifiable_intermediates(tmp_path):
    root_pem, key_pem = openssl_root(tmp_path)
    sup = ca.SuppliedMaterial(root_cert_pem=root_pem, root_key_pem=key_pem)
    c = cfg(mode="byoRoot")
    now = dt.datetime.now(UTC)
    _, s = run(c, None, now, sup)
    assert s.signer.fingerprint == ca.fingerprint(root_pem)
    for rec in s.intermediates.values():
        ok, out = openssl_verify(root_pem, rec.cert_pem)
        assert ok, out
    # another root for the same generation is a hard cut-over: refused
    other_pem, other_key = openssl_root(tmp_path, cn="Other Root")
    with pytest.raises(CAError, match="staged rotation"):
        ca.plan_changes(c, s, now, ca.SuppliedMaterial(root_cert_pem=other_pem, root_key_pem=other_key))
    # ...but fine as the next generation, staged
    p, s2 = run(cfg(mode="byoRoot", root_generation=2, rotation_stage="addNewRoot"), s, now,
                ca.SuppliedMaterial(root_cert_pem=other_pem, root_key_pem=other_key))
    assert s2.multi_root and p.signer_generation == 1


def test_byo_root_problems_are_clear(tmp_path):
    root_pem, key_pem = openssl_root(tmp_path, pathlen=0, cn="Leafy Root")
    _, other_key = openssl_root(tmp_path, cn="Another")
    rsa_pem, rsa_key = openssl_root(tmp_path, algorithm="rsa", cn="Rsa Root")
    probs = ca.validate_supplied(cfg(mode="byoRoot"), ca.SuppliedMaterial(root_pem, key_pem))
    assert any("pathlen 0" in m for _, m in probs)
    probs = ca.validate_supplied(cfg(mode="byoRoot"), ca.SuppliedMaterial(root_pem, other_key))
    assert any(p == "ca.rootKey" and "does not belong" in m for p, m in probs)
    probs = ca.validate_supplied(cfg(mode="byoRoot", mesh="linkerd"), ca.SuppliedMaterial(rsa_pem, rsa_key))
    assert any("ECDSA P-256" in m for _, m in probs)
    probs = ca.validate_supplied(cfg(mode="byoRoot"), ca.SuppliedMaterial(root_pem, "-----BEGIN PRIVATE KEY-----\nnope\n"))
    assert probs and all("nope" not in m for _, m in probs)
    assert ca.validate_supplied(cfg(mode="byoRoot"), ca.SuppliedMaterial())[0][0] == "ca.rootCert"


def test_intermediate_only_mode_adopts_supplied_intermediates(tmp_path):
    root_pem, key_pem = openssl_root(tmp_path)
    now = dt.datetime.now(UTC)
    c = cfg(mode="intermediateOnly")
    issued = {k: ca.issue_intermediate(c, k, issuer_cert_pem=root_pem, issuer_key_pem=key_pem, now=now)
              for k in ("a", "b")}
    sup = ca.SuppliedMaterial(intermediates={k: {"cert_pem": v.cert_pem, "key_pem": v.key_pem,
                                                 "chain_pem": root_pem} for k, v in issued.items()})
    p, s = run(c, None, now, sup)
    assert s.trust_bundle_pem == ca.join_pems(root_pem)
    assert s.intermediates["a"].fingerprint == ca.fingerprint(issued["a"].cert_pem)
    assert openssl_verify(s.trust_bundle_pem, s.intermediates["b"].chain_pem)[0]
    assert not ca.plan_changes(c, s, now, sup).changes
    with pytest.raises(CAError, match="ca.intermediates.b"):
        ca.plan_changes(c, s, now, ca.SuppliedMaterial(intermediates={"a": sup.intermediates["a"]}))
    bad = dict(sup.intermediates)
    bad["b"] = {**bad["b"], "key_pem": issued["a"].key_pem}
    with pytest.raises(CAError, match="does not belong"):
        ca.plan_changes(c, s, now, ca.SuppliedMaterial(intermediates=bad))


# --------------------------------------------------------------------------------------------- distribution


def _write_objects(d: pathlib.Path, objs: list[dict]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for o in objs:
        (d / f"{o['kind'].lower()}-{o['metadata']['name']}.yaml").write_text(yaml.safe_dump(o, sort_keys=True))


def _tool(name: str, *args: str) -> subprocess.CompletedProcess:
    path = tools_dir() / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return subprocess.run([str(path), *args], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("mesh, alg", [("istio", "ECDSA_P256"), ("linkerd", "ECDSA_P256"), ("osm", "RSA_2048")])
def test_distribution_objects_validate_against_upstream_schemas(tmp_path, mesh, alg):
    now = dt.datetime.now(UTC)
    _, s = run(cfg(mesh=mesh, key_algorithm=alg, root_generation=2, rotation_stage="addNewRoot"), None, now)
    labels = {"app.kubernetes.io/managed-by": "mesh-components", "mesh-components.io/mesh": "mesh"}
    real = ca.ca_objects(mesh, s.material("a"), labels)
    slots = ca.ca_objects(mesh, ca.slot_material("a"), labels)
    expected = {"istio": {("Secret", "cacerts", "istio-system")},
                "linkerd": {("ConfigMap", "linkerd-identity-trust-roots", "linkerd"),
                            ("Secret", "linkerd-identity-issuer", "linkerd")},
                "osm": {("Secret", "osm-ca-bundle", "osm-system")}}[mesh]
    assert {(o["kind"], o["metadata"]["name"], o["metadata"]["namespace"]) for o in real} == expected
    keys = {o["metadata"]["name"]: set((o.get("stringData") or o.get("data")).keys()) for o in real}
    assert keys == {"istio": {"cacerts": {"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"}},
                    "linkerd": {"linkerd-identity-trust-roots": {"ca-bundle.crt"},
                                "linkerd-identity-issuer": {"tls.crt", "tls.key", "ca.crt"}},
                    "osm": {"osm-ca-bundle": {"ca.crt", "private.key"}}}[mesh]
    assert all("data" not in o for o in real if o["kind"] == "Secret")
    if mesh == "linkerd":
        assert real[1]["type"] == "kubernetes.io/tls"
    # slots are placed, never inspected; the key slot is secret
    key_slot = ca.slot_material("a").ca_key_pem
    assert isinstance(key_slot, Slot) and key_slot.secret
    assert any(key_slot in (o.get("stringData") or {}).values() for o in slots)
    placeholder = [{**o, "stringData": {k: (v.placeholder() if isinstance(v, Slot) else v)
                                        for k, v in o["stringData"].items()}} if "stringData" in o else
                   {**o, "data": {k: (v.placeholder() if isinstance(v, Slot) else v) for k, v in o["data"].items()}}
                   for o in slots]
    _write_objects(tmp_path / "real", real)
    _write_objects(tmp_path / "slots", placeholder)
    for sub in ("real", "slots"):
        r = _tool("validate-manifests", "--profile", mesh, str(tmp_path / sub))
        assert r.returncode == 0, r.stdout + r.stderr


def test_helm_values_keys_exist_in_upstream_charts(tmp_path):
    now = dt.datetime.now(UTC)
    versions = {"istiod": ("istio-system", "https://istio-release.storage.googleapis.com/charts", "1.30.3"),
                "linkerd-control-plane": ("linkerd", "https://helm.linkerd.io/edge", "2026.8.3"),
                "osm": ("osm-system", "https://openservicemesh.github.io/osm", "1.2.4")}
    releases = []
    for mesh, alg in (("istio", "ECDSA_P256"), ("linkerd", "ECDSA_P256"), ("osm", "RSA_2048")):
        _, s = run(cfg(mesh=mesh, key_algorithm=alg, clusters=("a",)), None, now)
        vals = ca.ca_helm_values(mesh, s.material("a"), multi_root=True)
        assert ca.ca_helm_values("istio", s.material("a"), multi_root=False) == {}
        for chart, v in vals.items():
            ns, repo, ver = versions[chart]
            releases.append({"name": chart, "namespace": ns, "repository": repo, "chart": chart, "version": ver,
                             "values": v})
    assert {r["chart"] for r in releases} == set(versions)
    istio = next(r for r in releases if r["chart"] == "istiod")
    assert istio["values"] == {"env": {"ISTIO_MULTIROOT_MESH": "true"}}
    lk = next(r for r in releases if r["chart"] == "linkerd-control-plane")["values"]
    assert lk["identity"] == {"externalCA": True, "issuer": {"scheme": "kubernetes.io/tls"}}
    assert lk["identityTrustAnchorsPEM"].startswith("-----BEGIN CERTIFICATE-----")
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "helm-releases.yaml").write_text(yaml.safe_dump(releases, sort_keys=False))
    r = _tool("check-helm-values", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 releases" in r.stdout and "0 with problems" in r.stdout


def test_unknown_mesh_is_a_clear_error():
    with pytest.raises(CAError, match="unknown mesh 'kuma'"):
        ca.ca_objects("kuma", ca.slot_material("a"), {})
