"""The CA provider inside the SDK's own dynamic-provider host, driven over gRPC as the engine drives it.

Issue 12, "How to prove it without the CLI". The engine runs a dynamic provider by starting
``python -m pulumi.dynamic`` (the host in ``pulumi/dynamic/__main__.py`` of the installed SDK,
3.272.0), reading the port it prints (``__main__.py`` 274-276) and calling the ResourceProvider
service of ``pulumi.runtime.proto.provider_pb2_grpc``. :class:`Engine` below does what the engine
does at pulumi/pulumi 1b5949891b (v3.260.0-dev, the newest stored source), file and line:

* one host process per CLI command (plugins are launched per deployment), ``Configure`` first;
  the host answers ``acceptSecrets: false`` (``__main__.py`` 214), so every property is sent with
  its secrets unwrapped (``pkg/resource/plugin/provider_plugin.go`` ``KeepSecrets:
  protocol.acceptSecrets``, e.g. 1195, 1322, 1561);
* the inputs are what the program registers: the real ``MeshCertificateAuthority`` under Pulumi's
  mocks, whose ``__provider`` property is the SDK's ``serialize_provider`` of the provider
  (``pulumi/dynamic/dynamic.py`` 354-375);
* ``pulumi up``: with ``refresh: always`` (``Pulumi.yaml``) a refresh first, then a preview and an
  update, each ``Check(olds=stored inputs, news=program inputs)`` (``pkg/resource/deploy/
  step_generator.go`` 1326-1337), then ``Diff(olds=stored outputs, news=checked inputs,
  old_inputs=stored inputs)`` (step_generator.go 2945-2948), then ``Create`` or ``Update``; a
  ``DIFF_NONE`` keeps the old outputs with the new inputs (``pkg/resource/deploy/step.go`` 179);
* ``pulumi refresh``: ``Read(properties=stored outputs, inputs=stored inputs)``; the stored inputs
  stay unless the response carries inputs (step.go 1622-1623); then ``Diff(olds=refreshed outputs,
  news=stored inputs)`` (step.go 1699-1715); the refresh reports a change unless that is
  ``DIFF_NONE`` (step.go 1533), or, under ``PULUMI_ENABLE_LEGACY_REFRESH_DIFF``, unless the outputs
  are unchanged (step.go 1528-1530). Both must stay quiet, and the stored inputs must survive;
* ``pulumi destroy``: ``Delete(properties=stored outputs, old_inputs=stored inputs)``.

Time travel: the provider is serialized with ``ca_helpers.EnvClock`` and each host starts with
``MESH_CA_TEST_NOW``; the fake Vault gets the same time. No real waiting.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
import pathlib
import subprocess
import sys
import tempfile

import grpc
import pulumi
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import provider_pb2 as pb
from pulumi.runtime.proto import provider_pb2_grpc

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from ca_helpers import CLOCK_ENV, EnvClock, FakeVault, openssl_root, openssl_verify  # noqa: E402

from mesh_components.core import ca  # noqa: E402
from mesh_components.core.ca import CAConfig  # noqa: E402
from mesh_components.ca_provider import MeshCertificateAuthority  # noqa: E402

UTC = dt.timezone.utc
TYPE = "pulumi-python:dynamic:Resource"
NAME = "mesh-ca"
URN = f"urn:pulumi:host-test::service-mesh::mesh:index:ServiceMesh${TYPE}::{NAME}"
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


# --------------------------------------------------------------------------------------------- program side


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return [f"{args.name}-id", {}]

    def call(self, args):
        return {}


class _CaptureMonitor(MockMonitor):
    def __init__(self, mocks):
        super().__init__(mocks)
        self.objects = {}

    def RegisterResource(self, request):
        self.objects[request.name] = request.object
        return super().RegisterResource(request)


def _unwrap_secrets(v):
    """The engine's view of a property for a provider without ``acceptSecrets``: secrets unwrapped."""
    if isinstance(v, dict):
        if v.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unwrap_secrets(v.get("value"))
        return {k: _unwrap_secrets(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unwrap_secrets(x) for x in v]
    return v


def program_inputs(cfg: CAConfig, **secrets) -> dict:
    """What ``MeshCertificateAuthority(NAME, cfg, **secrets)`` registers (its Struct, as the monitor
    receives it), with secrets unwrapped as the engine sends them to this provider."""
    mocks = _Mocks()
    monitor = _CaptureMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, monitor=monitor, preview=False)

    @pulumi.runtime.test
    def register():
        return MeshCertificateAuthority(NAME, cfg, clock=EnvClock(), **secrets).urn

    register()
    props = json_format.MessageToDict(monitor.objects[NAME])
    assert props["__provider"][rpc._special_sig_key] == rpc._special_secret_sig  # serialize_as_secret_always
    return _unwrap_secrets(props)


# --------------------------------------------------------------------------------------------- engine side


def _struct(d: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


def _dict(s: struct_pb2.Struct) -> dict:
    return json_format.MessageToDict(s)


def _without_nulls(v):
    if isinstance(v, dict):
        return {k: _without_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_without_nulls(x) for x in v]
    return v


def engine_equal(a: dict, b: dict) -> bool:
    """``PropertyMap.DeepEquals``: a key holding null equals a missing key
    (``sdk/go/common/resource/properties_diff.go`` 334-354). The SDK drops nulls inside objects
    when it deserializes (``pulumi.runtime.rpc.deserialize_properties``), so a round trip through
    a provider may turn the one into the other."""
    return _without_nulls(a) == _without_nulls(b)


class CheckFailed(Exception):
    """The engine stops the update with the provider's check failures (``property: reason``)."""

    def __init__(self, failures):
        self.failures = [(f.property, f.reason) for f in failures]
        super().__init__("; ".join(f"{p}: {r}" for p, r in self.failures))


class Host:
    """One ``python -m pulumi.dynamic`` process for one CLI command, its clock set to ``at``."""

    def __init__(self, at: dt.datetime):
        self.at = at
        self.stderr = ""

    def __enter__(self) -> "Host":
        self._err = tempfile.TemporaryFile(mode="w+")
        env = {**os.environ, CLOCK_ENV: ca.iso(self.at),
               "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen([sys.executable, "-m", "pulumi.dynamic"], stdout=subprocess.PIPE,
                                     stderr=self._err, env=env, cwd=str(ROOT))
        port = int(self.proc.stdout.readline().decode().strip())  # the handshake: the port, one line
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        assert self.stub.GetPluginInfo(empty_pb2.Empty(), timeout=60).version
        conf = self.stub.Configure(pb.ConfigureRequest(args=_struct({}), acceptSecrets=True, acceptResources=True),
                                   timeout=60)
        assert conf.acceptSecrets is False  # so the engine sends plaintext secrets, as modelled here
        return self

    def __exit__(self, *exc) -> None:
        self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.proc.stdout.close()
        self._err.seek(0)
        self.stderr = self._err.read()
        self._err.close()


@dataclasses.dataclass
class Stored:
    """One resource in the stack's state."""

    id: str
    inputs: dict
    outputs: dict


@dataclasses.dataclass
class Refresh:
    changed: bool          # what the default refresh reports (provider Diff)
    legacy_changed: bool   # outputs changed (what PULUMI_ENABLE_LEGACY_REFRESH_DIFF reports) or inputs replaced
    read_returned_inputs: bool


@dataclasses.dataclass
class Up:
    preview: str           # create | update | same
    op: str
    refresh: Refresh | None
    stderr: str


class Engine:
    """The engine's side of one dynamic resource across CLI commands (module docstring)."""

    def __init__(self) -> None:
        self.state: Stored | None = None

    def _refresh(self, h: Host) -> Refresh:
        st = self.state
        resp = h.stub.Read(pb.ReadRequest(id=st.id, urn=URN, name=NAME, type=TYPE, properties=_struct(st.outputs),
                                          inputs=_struct(st.inputs)), timeout=120)
        assert resp.id == st.id, "the CA is never reported deleted"
        outputs = _dict(resp.properties)
        has_inputs = resp.HasField("inputs")
        inputs = _dict(resp.inputs) if has_inputs else st.inputs
        d = h.stub.Diff(pb.DiffRequest(id=st.id, urn=URN, name=NAME, type=TYPE, olds=_struct(outputs),
                                       news=_struct(st.inputs), old_inputs=_struct(inputs)), timeout=120)
        result = Refresh(changed=d.changes != pb.DiffResponse.DIFF_NONE,
                         legacy_changed=not (engine_equal(outputs, st.outputs) and engine_equal(inputs, st.inputs)),
                         read_returned_inputs=has_inputs)
        self.state = Stored(st.id, inputs, outputs)
        return result

    def _plan(self, h: Host, news: dict) -> tuple[str, dict]:
        olds = self.state.inputs if self.state else {}
        chk = h.stub.Check(pb.CheckRequest(urn=URN, name=NAME, type=TYPE, olds=_struct(olds), news=_struct(news)),
                           timeout=120)
        if chk.failures:
            raise CheckFailed(chk.failures)
        checked = _dict(chk.inputs)
        if self.state is None:
            return "create", checked
        st = self.state
        d = h.stub.Diff(pb.DiffRequest(id=st.id, urn=URN, name=NAME, type=TYPE, olds=_struct(st.outputs),
                                       news=_struct(checked), old_inputs=_struct(st.inputs)), timeout=120)
        assert d.changes in (pb.DiffResponse.DIFF_SOME, pb.DiffResponse.DIFF_NONE) and not d.replaces
        return ("update" if d.changes == pb.DiffResponse.DIFF_SOME else "same"), checked

    def up(self, news: dict, at: dt.datetime) -> Up:
        """``pulumi up`` at ``at`` with ``refresh: always``: refresh, preview, update."""
        with Host(at) as h:
            refreshed = self._refresh(h) if self.state else None
            preview, _ = self._plan(h, news)
            op, checked = self._plan(h, news)
            if op == "create":
                r = h.stub.Create(pb.CreateRequest(urn=URN, name=NAME, type=TYPE, properties=_struct(checked)),
                                  timeout=300)
                self.state = Stored(r.id, checked, _dict(r.properties))
            elif op == "update":
                st = self.state
                r = h.stub.Update(pb.UpdateRequest(id=st.id, urn=URN, name=NAME, type=TYPE, olds=_struct(st.outputs),
                                                   news=_struct(checked), old_inputs=_struct(st.inputs)), timeout=300)
                self.state = Stored(st.id, checked, _dict(r.properties))
            else:
                self.state = Stored(self.state.id, checked, self.state.outputs)
        return Up(preview, op, refreshed, h.stderr)

    def refresh(self, at: dt.datetime) -> tuple[Refresh, str]:
        with Host(at) as h:
            r = self._refresh(h)
        return r, h.stderr

    def destroy(self, at: dt.datetime) -> None:
        with Host(at) as h:
            self._refresh(h)
            st = self.state
            h.stub.Delete(pb.DeleteRequest(id=st.id, urn=URN, name=NAME, type=TYPE, properties=_struct(st.outputs),
                                           old_inputs=_struct(st.inputs)), timeout=120)
        self.state = None


# --------------------------------------------------------------------------------------------- scenarios


def _supplied_intermediates(cfg: CAConfig, clusters, at: dt.datetime, root=None) -> tuple[dict, tuple[str, str]]:
    """intermediateOnly input: an offline root (made once) and one intermediate per cluster issued at ``at``."""
    root = root or ca.issue_root(cfg, 1, now=at)
    out = {}
    for c in clusters:
        issued = ca.issue_intermediate(cfg, c, issuer_cert_pem=root[0], issuer_key_pem=root[1], now=at)
        out[c] = {"cert_pem": issued.cert_pem, "key_pem": issued.key_pem, "chain_pem": issued.chain_pem}
    return out, root


class Scenario:
    """One CA mode: the program's inputs for a cluster list at a time, and its secret material."""

    def __init__(self, mode: str, tmp_path: pathlib.Path, vault: FakeVault | None):
        self.mode, self.vault = mode, vault
        self.byo = openssl_root(tmp_path) if mode == "byoRoot" else None
        self.offline_root = None
        self.supplied: dict = {}

    def config(self, clusters) -> CAConfig:
        kw = dict(trust_domain="cluster.local", mesh="istio", clusters=tuple(clusters), mode=self.mode,
                  mesh_name="host-test")
        if self.mode == "vault":
            kw.update(vault_address=self.vault.address, vault_mount=self.vault.mount)
        return CAConfig(**kw)

    def supply(self, clusters, at: dt.datetime) -> None:
        """intermediateOnly: the user issues (or renews) intermediates for ``clusters`` offline at ``at``."""
        new, self.offline_root = _supplied_intermediates(self.config(clusters), clusters, at, self.offline_root)
        self.supplied.update(new)

    def inputs(self, clusters) -> dict:
        cfg = self.config(clusters)
        if self.mode == "byoRoot":
            return program_inputs(cfg, root_cert_pem=self.byo[0], root_key_pem=self.byo[1])
        if self.mode == "intermediateOnly":
            return program_inputs(cfg, intermediates={c: self.supplied[c] for c in clusters})
        if self.mode == "vault":
            return program_inputs(cfg, vault_token=self.vault.token)
        return program_inputs(cfg)


def _verify_chains(outs: dict, at: dt.datetime) -> None:
    for c, item in outs["intermediates"].items():
        ok, out = openssl_verify(outs["trust_bundle_pem"], item["chain_pem"], at=at)
        assert ok, (c, out)
        ca.load_private_key(item["key_pem"])


def _assert_quiet(r: Refresh) -> None:
    assert not r.read_returned_inputs, "Read must return no inputs: the engine keeps the stored ones"
    assert not r.changed, "the refresh diff reported a change"
    assert not r.legacy_changed, "the refresh changed stored inputs or outputs"


@pytest.fixture
def vault_and_clock():
    now = {"t": None}
    with FakeVault(now=lambda: now["t"] or dt.datetime.now(UTC)) as v:
        yield v, now


@pytest.mark.parametrize("mode", ["managed", "byoRoot", "intermediateOnly", "vault"])
def test_day_two_in_the_sdk_host(mode, tmp_path, vault_and_clock):
    """create, refresh twice, update, a second no-op up, refresh inside the rotation window (no
    change), rotation on up, refresh, destroy: in every CA mode, through ``python -m pulumi.dynamic``."""
    vault, vault_now = vault_and_clock
    sc = Scenario(mode, tmp_path, vault)
    t0 = (dt.datetime.now(UTC) + dt.timedelta(minutes=1)).replace(microsecond=0)  # after the BYO root's notBefore
    vault_now["t"] = t0
    if mode == "vault":
        vault.rotate_root()  # Vault's root dated t0, as the provider's clock is
    engine = Engine()
    two, three = ("east", "west"), ("east", "west", "south")
    if mode == "intermediateOnly":
        sc.supply(two, t0)

    up = engine.up(sc.inputs(two), t0)
    assert (up.preview, up.op) == ("create", "create")
    created = engine.state.outputs
    assert sorted(created["intermediates"]) == sorted(two) and created["mode"] == mode
    _verify_chains(created, t0)
    if mode == "byoRoot":
        assert created["root_fingerprint"] == ca.fingerprint(sc.byo[0])
    if mode == "vault":
        assert created["root_fingerprint"] == ca.fingerprint(vault.root_cert_pem)
        assert vault.root_key_pem not in repr(engine.state.outputs)
    if mode == "intermediateOnly":
        assert created["intermediate_certs"] == {c: sc.supplied[c]["cert_pem"] for c in two}

    for i in range(2):  # issue 12.3: the second refresh used to fail (inputs without the secret ones)
        r, err = engine.refresh(t0 + (i + 1) * HOUR)
        _assert_quiet(r)
        assert "warning" not in err and "Traceback" not in err, err
    for key in {"byoRoot": ("root_cert_pem", "root_key_pem"), "intermediateOnly": ("intermediates",),
                "vault": ("vault_token",), "managed": ()}[mode]:
        assert engine.state.inputs[key], f"the stored input {key} survived the refreshes"

    # an update: a third cluster
    vault_now["t"] = t1 = t0 + DAY
    if mode == "intermediateOnly":
        sc.supply(("south",), t1)
    up = engine.up(sc.inputs(three), t1)
    assert (up.preview, up.op) == ("update", "update")
    _assert_quiet(up.refresh)
    outs = engine.state.outputs
    assert sorted(outs["intermediates"]) == sorted(three)
    assert {c: outs["intermediate_fingerprints"][c] for c in two} == created["intermediate_fingerprints"]
    _verify_chains(outs, t1)
    up = engine.up(sc.inputs(three), t1 + HOUR)  # a second `pulumi up` changes nothing
    assert (up.preview, up.op) == ("same", "same")
    _assert_quiet(up.refresh)
    assert engine_equal(engine.state.outputs, outs)

    # issue 12.4: inside the rotation window the nightly `pulumi refresh --expect-no-changes` passes
    vault_now["t"] = t2 = t0 + 340 * DAY          # every intermediate expires within 30 days
    r, err = engine.refresh(t2)
    _assert_quiet(r)
    assert engine_equal(engine.state.outputs, outs)
    expected = "supply a new one" if mode == "intermediateOnly" else "rotation window"
    assert err.count("warning: mesh CA") >= 3 and expected in err, err

    # ... and `pulumi up` rotates (intermediateOnly: the user supplies new intermediates)
    if mode == "intermediateOnly":
        up = engine.up(sc.inputs(three), t2)
        assert (up.preview, up.op) == ("same", "same") and "supply a new one" in up.stderr
        sc.supply(three, t2)
    up = engine.up(sc.inputs(three), t2)
    assert (up.preview, up.op) == ("update", "update")
    _assert_quiet(up.refresh)
    rotated = engine.state.outputs
    for c in three:
        assert rotated["intermediate_fingerprints"][c] != outs["intermediate_fingerprints"][c], c
        assert ca.parse_iso(rotated["intermediates"][c]["not_after"]) > t2 + 300 * DAY
    assert rotated["root_fingerprint"] == outs["root_fingerprint"]
    _verify_chains(rotated, t2)
    if mode != "intermediateOnly":
        assert "rotation window" in rotated["last_change"]

    r, err = engine.refresh(t2 + DAY)
    _assert_quiet(r)
    assert "warning" not in err, err
    engine.destroy(t2 + DAY)
    assert engine.state is None


def test_user_mistakes_through_the_host_are_check_failures_not_tracebacks(tmp_path):
    """A swapped BYO root after two refreshes (the 16-line traceback of issue 12.3), a skipped
    rotation stage and an early ``removeOldRoot`` reach the engine as check failures."""
    sc = Scenario("byoRoot", tmp_path, None)
    t0 = (dt.datetime.now(UTC) + dt.timedelta(minutes=1)).replace(microsecond=0)
    engine = Engine()
    engine.up(sc.inputs(("east",)), t0)
    for i in range(2):
        _assert_quiet(engine.refresh(t0 + (i + 1) * HOUR)[0])
    good = sc.byo
    sc.byo = openssl_root(tmp_path, cn="Another Root")
    with pytest.raises(CheckFailed) as e:
        engine.up(sc.inputs(("east",)), t0 + DAY)
    assert [p for p, _ in e.value.failures] == ["root_cert_pem"]
    assert "staged rotation" in str(e.value) and "Traceback" not in str(e.value)
    assert sc.byo[1] not in str(e.value)
    sc.byo = good

    managed = Scenario("managed", tmp_path, None)
    engine = Engine()
    cfg = managed.config(("east",))
    engine.up(program_inputs(cfg), t0)
    with pytest.raises(CheckFailed, match="apply addNewRoot first"):
        engine.up(program_inputs(dataclasses.replace(cfg, root_generation=2, rotation_stage="reissueIntermediates")),
                  t0 + DAY)
    for i, stage in enumerate(("addNewRoot", "reissueIntermediates")):
        assert engine.up(program_inputs(dataclasses.replace(cfg, root_generation=2, rotation_stage=stage)),
                         t0 + (i + 1) * DAY).op == "update"
    _assert_quiet(engine.refresh(t0 + 3 * DAY)[0])
    last = dataclasses.replace(cfg, root_generation=2, rotation_stage="removeOldRoot")
    with pytest.raises(CheckFailed, match="wait 7 days") as e:
        engine.up(program_inputs(last), t0 + 3 * DAY)
    assert e.value.failures[0][0] == "rotation_stage" and "Traceback" not in str(e.value)
    up = engine.up(program_inputs(last), t0 + 9 * DAY)
    assert up.op == "update" and engine.state.outputs["multi_root"] is False
    _assert_quiet(engine.refresh(t0 + 10 * DAY)[0])


def test_a_failing_update_is_one_message_at_the_end_of_a_short_traceback():
    """What the host cannot avoid: any exception becomes ``traceback.format_exc()`` in the gRPC
    error (``pulumi/dynamic/__main__.py`` 81-88). Vault refusing the token is raised from the
    provider method's own frame, so the error is three frames and the Vault sentence."""
    t0 = dt.datetime.now(UTC).replace(microsecond=0)
    with FakeVault(now=lambda: t0) as v:
        sc = Scenario("vault", pathlib.Path("."), v)
        engine = Engine()
        engine.up(sc.inputs(("east",)), t0)
        stale = sc.inputs(("east", "west"))
        v.token = "hvs.rotated-elsewhere"  # the token the stack passes is no longer valid
        with pytest.raises(grpc.RpcError) as e:
            engine.up(stale, t0 + DAY)
    details = e.value.details()
    assert details.strip().splitlines()[-1].startswith("mesh_components.core.vault.VaultError: ca.vault.address: Vault POST")
    assert "HTTP 403" in details and details.count('  File "') <= 3, details
    assert "hvs." not in details
