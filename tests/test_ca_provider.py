"""The Pulumi dynamic provider: engine pickling, check/diff/create/update/read/delete with an injected
clock, secret handling, and the resource's registration under Pulumi mocks."""
from __future__ import annotations

import ast
import base64
import datetime as dt
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap

import dill
import pulumi
import pytest
from pulumi.dynamic import dynamic as pulumi_dynamic
from pulumi.runtime.mocks import MockMonitor

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from ca_helpers import FixedClock, openssl_verify  # noqa: E402

from mesh_components.core import ca  # noqa: E402
from mesh_components import ca_provider as cp  # noqa: E402
from mesh_components.core.ca import CAConfig, CAError  # noqa: E402

UTC = dt.timezone.utc
T0 = dt.datetime(2031, 3, 1, tzinfo=UTC)


def inputs(**kw) -> dict:
    base = dict(trust_domain="cluster.local", mesh="istio", clusters=("a", "b"))
    base.update(kw)
    d = CAConfig(**base).to_inputs()
    # as the engine sends them: numbers are floats, secret inputs present but empty
    d = {k: (float(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in d.items()}
    d.update({"root_cert_pem": None, "root_key_pem": None, "intermediates": None, "vault_token": None})
    d["__provider"] = "serialized-provider"
    return d


def checked(p: cp.MeshCAProvider, olds: dict, news: dict) -> dict:
    r = p.check(olds, news)
    assert r.failures == [], [(f.property, f.reason) for f in r.failures]
    return r.inputs


# --------------------------------------------------------------------------------------------- pickling


def test_provider_survives_the_engines_dill_pickling_and_works_after_loading():
    clock = FixedClock(T0)
    provider = cp.MeshCAProvider(clock)
    raw = dill.dumps(provider, protocol=pickle.DEFAULT_PROTOCOL, recurse=True)  # as pulumi/dynamic/dynamic.py
    encoded = pulumi_dynamic.serialize_provider(provider)  # the SDK's own function, sorted-dict pickler and all
    assert base64.b64decode(encoded)
    for blob in (raw, base64.b64decode(encoded)):
        assert b"PRIVATE KEY" not in blob and b"requests" not in blob
        loaded = dill.loads(blob)
        assert isinstance(loaded, cp.MeshCAProvider) and loaded.clock() == T0
        news = checked(loaded, {}, inputs())
        created = loaded.create(news)
        assert loaded.diff(created.id, created.outs, news).changes is False


FROZEN_PROVIDER_V1 = ("gASVQgAAAAAAAACMG21lc2hfY29tcG9uZW50cy5jYV9wcm92aWRlcpSMDk1lc2hDQVByb3ZpZGVylJOUKYGUfZSMBWNs"
                      "b2NrlE5zYi4=")
"""``serialize_provider(MeshCAProvider())`` as it sits in the ``__provider`` property of users' state
(state version 1; SDK 3.272.0, dill 0.4.1, Python 3.11). Never regenerate it: it stands for stacks
that already exist, which refresh, update and destroy by unpickling it (issue 12.5)."""


def test_the_pickled_path_is_an_api_a_blob_from_existing_state_still_loads_and_works():
    """dill pickles the provider's class by reference (``pulumi/dynamic/dynamic.py`` 279-318 in SDK
    3.272.0), so the blob names ``mesh_components.ca_provider.MeshCAProvider``; the host unpickles it
    with ``dill.loads`` (``pulumi/dynamic/__main__.py`` 68-72). Moving or renaming the class fails here."""
    import importlib
    import pickletools
    blob = base64.b64decode(FROZEN_PROVIDER_V1)
    strings = [arg for op, arg, _ in pickletools.genops(blob) if isinstance(arg, str)]
    assert strings[:2] == ["mesh_components.ca_provider", "MeshCAProvider"]
    cls = importlib.import_module("mesh_components.ca_provider").MeshCAProvider
    assert (cls.__module__, cls.__qualname__) == ("mesh_components.ca_provider", "MeshCAProvider")
    fresh = base64.b64decode(pulumi_dynamic.serialize_provider(cls()))  # what new stacks store
    assert [a for _, a, _ in pickletools.genops(fresh) if isinstance(a, str)][:2] == strings[:2]
    provider = dill.loads(blob)
    assert type(provider) is cls and provider.clock is None
    news = checked(provider, {}, inputs())
    created = provider.create(news)
    assert provider.read(created.id, created.outs).outs == created.outs
    assert provider.diff(created.id, created.outs, news).changes is False
    wider = checked(provider, news, inputs(clusters=("a", "b", "c")))
    assert sorted(provider.update(created.id, created.outs, wider).outs["intermediates"]) == ["a", "b", "c"]
    assert provider.delete(created.id, created.outs) is None


def test_a_blob_without_todays_attributes_still_works():
    """Old blobs restore their ``__dict__`` without ``__init__``: an attribute added later must have a
    class-level default (the rule in the module docstring)."""
    provider = cp.MeshCAProvider()
    del provider.__dict__["clock"]
    loaded = dill.loads(dill.dumps(provider, recurse=True))
    assert "clock" not in vars(loaded)
    assert loaded.create(checked(loaded, {}, inputs())).outs["stage"] == "none"


def test_serialized_provider_loads_and_runs_in_a_fresh_provider_host_process():
    encoded = pulumi_dynamic.serialize_provider(cp.MeshCAProvider())
    script = textwrap.dedent("""
        import base64, sys, dill
        p = dill.loads(base64.b64decode(sys.stdin.read()))
        news = dict(trust_domain="cluster.local", mesh="linkerd", clusters=["east", "west"])
        r = p.check({}, news)
        assert not r.failures, r.failures
        out = p.create(r.inputs).outs
        assert sorted(out["intermediates"]) == ["east", "west"]
        print(type(p).__module__, out["stage"], len(out["roots"]))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", script], input=encoded, capture_output=True, text=True,
                       timeout=120, env=env, cwd="/")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["mesh_components.ca_provider", "none", "1"]


def test_importing_creates_no_resources_and_the_core_has_no_pulumi_import():
    tree = ast.parse((ROOT / "mesh_components" / "core" / "ca.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.split(".")[0] == "pulumi" for m in imported)
    script = ("import mesh_components.ca_provider, mesh_components.core.vault, mesh_components.core.ca\n"
              "from pulumi.runtime import settings\n"
              "assert settings.SETTINGS.monitor is None\n"
              "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd="/")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# --------------------------------------------------------------------------------------------- check


def test_check_reports_user_mistakes_as_failures_not_tracebacks():
    p = cp.MeshCAProvider(FixedClock(T0))
    r = p.check({}, inputs(mesh="linkerd", key_algorithm="RSA_3072"))
    assert [f.property for f in r.failures] == ["key_algorithm"]
    assert "ca.keyAlgorithm" in r.failures[0].reason and "ECDSA_P256" in r.failures[0].reason
    r = p.check({}, inputs(clusters=("a", "a")))
    assert r.failures and r.failures[0].property == "clusters"
    r = p.check({}, inputs(mode="byoRoot"))
    assert r.failures and r.failures[0].property == "root_cert_pem"


def test_check_refuses_a_skipped_stage_against_the_last_applied_inputs_and_shows_the_stage():
    p = cp.MeshCAProvider(FixedClock(T0))
    olds = checked(p, {}, inputs())
    r = p.check(olds, inputs(root_generation=2, rotation_stage="reissueIntermediates"))
    assert r.failures and r.failures[0].property == "rotation_stage"
    assert "apply addNewRoot first" in r.failures[0].reason
    ok = checked(p, olds, inputs(root_generation=2, rotation_stage="addNewRoot"))
    assert ok["stage_plan"] == "rotation 1/3: trust roots g1 + g2 everywhere; signer stays g1"


def test_check_and_diff_tolerate_unknown_values_during_preview():
    p = cp.MeshCAProvider(FixedClock(T0))
    news = inputs()
    created = p.create(checked(p, {}, news))
    unknown = {**news, "clusters": cp.UNKNOWN}
    assert p.check({}, unknown).failures == []
    assert p.diff(created.id, created.outs, {**news, "vault_token": cp.UNKNOWN}).changes is True


# --------------------------------------------------------------------------------------------- lifecycle


def test_lifecycle_no_op_diff_then_time_travel_reissues_only_what_is_due():
    clock = FixedClock(T0)
    p = cp.MeshCAProvider(clock)
    one = checked(p, {}, inputs(clusters=("b",)))
    assert one[cp.AS_OF] == ca.iso(T0) == one[cp.STAGE_SINCE]
    created = p.create(one)
    outs = created.outs
    assert p.diff(created.id, outs, one).changes is False
    clock.advance(days=100)
    both = checked(p, one, inputs(clusters=("a", "b")))
    assert both[cp.STAGE_SINCE] == ca.iso(T0), "the stage did not move, so stage_since stays"
    assert p.diff(created.id, outs, both).changes is True
    outs = p.update(created.id, outs, both).outs
    assert set(outs) == set(created.outs), "update returns every output"
    assert p.diff(created.id, outs, both).changes is False
    clock.t = T0 + dt.timedelta(days=340)                      # b (issued T0) is inside its window
    # a refresh diffs against the stored inputs, checked at T0+100: quiet, whatever the clock says
    assert p.diff(created.id, outs, both).changes is False
    assert p.plan(outs, both).reissue == ()
    # an update checks again, at T0+340, and re-issues exactly b
    due = checked(p, both, inputs(clusters=("a", "b")))
    assert p.plan(outs, due).reissue_clusters == ("b",)
    assert p.diff(created.id, outs, due).changes is True
    new = p.update(created.id, outs, due).outs
    assert new["intermediate_fingerprints"]["a"] == outs["intermediate_fingerprints"]["a"]
    assert new["intermediate_fingerprints"]["b"] != outs["intermediate_fingerprints"]["b"]
    assert new["root_fingerprint"] == outs["root_fingerprint"]
    assert "issue b (inside the 30-day rotation window" in new["last_change"]
    clock.advance(days=1)
    assert p.diff(created.id, new, checked(p, due, inputs(clusters=("a", "b")))).changes is False
    # config-only change (no certificate work) still updates the echo, without re-issuing
    wider = checked(p, due, inputs(clusters=("a", "b"), rotation_window_days=31))
    assert p.plan(new, wider).reissue == () and p.diff(created.id, new, wider).changes is True


def test_diff_is_a_function_of_its_arguments_not_of_the_clock():
    """The refresh diff (stored inputs vs refreshed outputs) must not change as time passes
    (issue 12.4): only a new ``check`` moves the decision time."""
    clock = FixedClock(T0)
    p = cp.MeshCAProvider(clock)
    news = checked(p, {}, inputs())
    outs = p.create(news).outs
    for days in (0, 200, 340, 364, 400, 2000):
        clock.t = T0 + dt.timedelta(days=days)
        assert p.diff("id", outs, news).changes is False, days
    # inputs stamped before as_of existed fall back to the state's last write, not to the clock
    legacy = {k: v for k, v in news.items() if k not in (cp.AS_OF, cp.STAGE_SINCE)}
    assert p.diff("id", outs, legacy).changes is False
    assert cp.last_write_time(cp.state_from_outputs(outs)) == T0


def test_check_and_diff_never_raise_on_malformed_inputs():
    p = cp.MeshCAProvider(FixedClock(T0))
    news = checked(p, {}, inputs())
    outs = p.create(news).outs
    for bad in ({**news, "root_validity_days": "ten"}, {**news, "clusters": 7}, {**news, "trust_domain": None},
                {**news, "mode": "byoRoot", "root_cert_pem": "not a pem", "root_key_pem": "x"}):
        r = p.check(news, bad)
        assert r.failures and all(": " in f.reason for f in r.failures), bad
        assert p.diff("id", outs, bad).changes is True
    broken_state = {**outs, "roots": [{"generation": 1, "cert_pem": "garbage"}]}
    assert p.diff("id", broken_state, news).changes is True


def test_rotation_stages_through_the_provider_are_visible_in_outputs():
    clock = FixedClock(T0)
    p = cp.MeshCAProvider(clock)
    i0 = checked(p, {}, inputs())
    outs = p.create(i0).outs
    assert (outs["stage"], outs["multi_root"], outs["signer_generation"]) == ("none", False, 1)
    i1 = checked(p, i0, inputs(root_generation=2, rotation_stage="addNewRoot"))
    outs1 = p.update("id", outs, i1).outs
    assert (outs1["stage"], outs1["multi_root"], outs1["signer_generation"]) == ("addNewRoot", True, 1)
    assert outs1["trust_bundle_pem"].count("BEGIN CERTIFICATE") == 2
    assert outs1["intermediate_fingerprints"] == outs["intermediate_fingerprints"]
    i2 = checked(p, i1, inputs(root_generation=2, rotation_stage="reissueIntermediates"))
    outs2 = p.update("id", outs1, i2).outs
    assert outs2["signer_generation"] == 2 and outs2["root_fingerprint"] != outs["root_fingerprint"]
    for c, item in outs2["intermediates"].items():
        assert openssl_verify(outs2["trust_bundle_pem"], item["chain_pem"], at=clock())[0]
        assert openssl_verify(outs2["trust_bundle_pem"], outs1["intermediates"][c]["chain_pem"], at=clock())[0]
    # too early: a check failure naming the date, never an exception out of check or diff
    early = p.check(i2, inputs(root_generation=2, rotation_stage="removeOldRoot"))
    assert [f.property for f in early.failures] == ["rotation_stage"]
    assert "wait 7 days" in early.failures[0].reason and ca.iso(T0 + dt.timedelta(days=7)) in early.failures[0].reason
    assert p.diff("id", outs2, early.inputs).changes is True
    with pytest.raises(CAError, match="wait 7 days"):
        p.update("id", outs2, early.inputs)
    clock.advance(days=7)
    i3 = checked(p, i2, inputs(root_generation=2, rotation_stage="removeOldRoot"))
    assert p.diff("id", outs2, i3).changes is True
    outs3 = p.update("id", outs2, i3).outs
    assert (outs3["stage"], outs3["multi_root"]) == ("removeOldRoot", False)
    assert outs3["trust_bundle_pem"] == outs3["root_cert_pem"]
    assert outs3["stage_description"].startswith("rotation 3/3")


def test_read_returns_the_stored_outputs_and_no_inputs_so_the_engine_keeps_the_secret_ones(capfd):
    """Issue 12.3. The engine keeps the stored inputs when Read returns none (pulumi/pulumi
    1b5949891b ``pkg/resource/deploy/step.go`` 1622-1623; the SDK host sends inputs only when
    ``ReadResult.inputs is not None``, ``pulumi/dynamic/__main__.py`` 248 in SDK 3.272.0)."""
    clock = FixedClock(T0)
    p = cp.MeshCAProvider(clock)
    news = checked(p, {}, inputs())
    created = p.create(news)
    rr = p.read(created.id, created.outs)
    assert rr.id == created.id and rr.outs == created.outs and rr.inputs is None
    assert p.diff(created.id, rr.outs, news).changes is False          # the refresh diff
    assert capfd.readouterr().err == ""
    clock.advance(days=340)                                             # inside the rotation window
    rr = p.read(created.id, created.outs)
    assert rr.outs == created.outs and rr.inputs is None
    err = capfd.readouterr().err
    assert err.count("warning: mesh CA") == 2 and "rotation window" in err and "next `pulumi up`" in err
    assert p.diff(created.id, rr.outs, news).changes is False
    assert p.delete(created.id, created.outs) is None


def test_private_keys_appear_only_in_the_secret_outputs():
    p = cp.MeshCAProvider(FixedClock(T0))
    outs = p.create(checked(p, {}, inputs(mesh="osm", key_algorithm="RSA_2048"))).outs
    leaking = [k for k, v in outs.items() if "PRIVATE KEY" in repr(v) and k not in cp.SECRET_OUTPUTS]
    assert leaking == []
    assert all("PRIVATE KEY" in v["key_pem"] for v in outs["intermediates"].values())
    assert all(r["key_pem"] for r in outs["roots"])


def test_byo_root_through_the_provider_and_a_changed_root_is_refused_by_check(tmp_path):
    from ca_helpers import openssl_root
    root_pem, key_pem = openssl_root(tmp_path)
    other_pem, other_key = openssl_root(tmp_path, cn="Other")
    p = cp.MeshCAProvider(FixedClock(dt.datetime.now(UTC)))
    i0 = checked(p, {}, {**inputs(mode="byoRoot"), "root_cert_pem": root_pem, "root_key_pem": key_pem})
    outs = p.create(i0).outs
    assert outs["root_cert_pem"] == ca.join_pems(root_pem)
    r = p.check(i0, {**i0, "root_cert_pem": other_pem, "root_key_pem": other_key})
    assert r.failures and "staged rotation" in r.failures[0].reason
    assert all(other_key not in f.reason for f in r.failures)


# --------------------------------------------------------------------------------------------- resource


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return [f"{args.name}-id", dict(args.inputs)]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class _SpyMonitor(MockMonitor):
    def __init__(self, mocks):
        super().__init__(mocks)
        self.requests = []

    def RegisterResource(self, request):
        self.requests.append(request)
        return super().RegisterResource(request)


def test_resource_registration_type_inputs_and_secret_outputs():
    from mesh_components.ca_provider import MeshCertificateAuthority
    monitor = _SpyMonitor(_Mocks())
    pulumi.runtime.set_mocks(_Mocks(), monitor=monitor, preview=False)
    cfg = CAConfig(trust_domain="cluster.local", mesh="istio", clusters=("a", "b"), key_algorithm="RSA_2048")

    seen: dict = {}

    @pulumi.runtime.test
    def run():
        res = MeshCertificateAuthority("mesh-ca", cfg, vault_token="hvs.not-a-real-token")
        for out in ("root_cert_pem", "trust_bundle_pem", "root_fingerprint", "stage", "intermediates",
                    "intermediate_fingerprints", "multi_root"):
            assert isinstance(getattr(res, out), pulumi.Output), out
        mat = res.material("a")

        async def key_secretness():
            seen["key_secret"] = await mat.ca_key_pem.is_secret()
            return seen["key_secret"]

        return pulumi.Output.all(res.urn, key_secretness())

    run()
    assert seen["key_secret"] is True
    req = next(r for r in monitor.requests if r.name == "mesh-ca")
    assert req.type == "pulumi-python:dynamic:Resource"
    assert set(req.additionalSecretOutputs) == set(cp.SECRET_OUTPUTS)
    fields = dict(req.object.fields)
    for k in ("key_algorithm", "root_validity_days", "intermediate_validity_days", "trust_domain", "clusters",
              "mesh", "rotation_stage", "root_generation", "overlap_days", "mode"):
        assert k in fields, k
    assert fields["key_algorithm"].string_value == "RSA_2048"
    # the Vault token and the serialized provider travel as secrets
    token = fields["vault_token"].struct_value.fields
    assert token["4dabf18193072939515e22adb298388d"].string_value == "1b47061264138c4ac30d75fd1eb44270"
    prov = fields["__provider"].struct_value.fields
    assert prov["4dabf18193072939515e22adb298388d"].string_value == "1b47061264138c4ac30d75fd1eb44270"


def test_offline_slots_fill_to_exactly_the_objects_built_from_the_provider_outputs():
    from mesh_components.core.slots import fill, iter_slots
    p = cp.MeshCAProvider(FixedClock(T0))
    outs = p.create(checked(p, {}, inputs(mesh="linkerd"))).outs

    def lookup(slot):
        return outs[slot.key] if slot.cluster is None else outs["intermediates"][slot.cluster][slot.key]

    state = cp.state_from_outputs(outs)
    labels = {"mesh-components.io/mesh": "mesh"}
    for mesh in ("istio", "linkerd", "osm"):
        placed = ca.ca_objects(mesh, ca.slot_material("a"), labels)
        assert list(iter_slots(placed))
        assert fill(placed, lookup) == ca.ca_objects(mesh, state.material("a"), labels)
    vals = ca.ca_helm_values("linkerd", ca.slot_material("a"), multi_root=True)
    assert fill(vals, lookup) == ca.ca_helm_values("linkerd", state.material("a"), multi_root=True)
