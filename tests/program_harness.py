"""Run the real ``__main__.py`` under Pulumi's unit-test mocks and record every registration.

``run_program(config)`` returns the list of :class:`Registration` (type, name, parent URN,
provider reference, dependencies, inputs, which inputs were secret, additional secret outputs) in
registration order. The mocks answer like ``pulumi up``: inputs become outputs; StackReferences
return a kubeconfig; the CA dynamic resource runs the **real** ``MeshCAProvider`` from its
``__provider`` property, as the SDK's host does (:func:`run_dynamic_resource`), so the CA Secrets
the program renders hold real, verifiable chains. Reads (``Resource.get``) are answered as the
cluster would: a Secret with a service-account token (``token-<name>``) and ``ca.crt``, a Service
with a load-balancer IP; ``run_program(..., reads=[])`` collects them as :class:`Read` records.
"""
from __future__ import annotations

import base64
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dill
import pulumi
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc

ROOT = Path(__file__).resolve().parent.parent
SECRET_SIG = rpc._special_secret_sig if hasattr(rpc, "_special_secret_sig") else "1b47061264138c4ac30d75fd1eb44270"
FAKE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
contexts: [{name: c, context: {cluster: c, user: u}},
           {name: kind-dev, context: {cluster: c, user: u}}, {name: kind-osm, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {token: fake}}]
"""


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    provider: str
    dependencies: list[str]
    inputs: dict
    secret_inputs: set[str]
    additional_secret_outputs: list[str]


@dataclass
class Read:
    type: str
    name: str
    id: str
    provider: str
    parent: str


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Stored:
    """One dynamic resource as the engine stores it: id, checked inputs, outputs."""

    id: str
    inputs: dict
    outputs: dict


@dataclass
class EngineState:
    """The stored state of the program's dynamic resources (the CA) across runs.

    Share one between ``run_program`` calls to model one stack over several ``pulumi up``: a
    later run refreshes, checks and diffs against what an earlier one stored, and updates only on
    a change. ``by_inputs=True`` (the process-wide default, :data:`DEFAULT_STATE`) keys the state
    by stack, name and registered inputs as well, so one config always meets the CA it created,
    whatever other tests ran before: results do not depend on test order.
    """

    by_inputs: bool = False
    resources: dict = field(default_factory=dict)

    def key(self, stack: str, name: str, news: dict) -> tuple:
        if not self.by_inputs:
            return (stack, name)
        return (stack, name, json.dumps({k: v for k, v in news.items() if k != PROVIDER_KEY}, sort_keys=True))


PROVIDER_KEY = "__provider"
DEFAULT_STATE = EngineState(by_inputs=True)


class DynamicCheckFailed(Exception):
    """The provider's ``check`` refused the inputs; the engine stops with these ``path: message`` lines."""


def run_dynamic_resource(state: EngineState, stack: str, name: str, registered: dict) -> tuple[str, dict]:
    """What the engine and the SDK's host do with a dynamic resource on ``pulumi up`` (``refresh: always``).

    ``registered``: the inputs as the program registered them. The provider is ``dill.loads`` of
    the ``__provider`` property, as ``get_provider`` does (``pulumi/dynamic/__main__.py`` 46-78,
    SDK 3.272.0), and it sees secrets unwrapped (the host declines them, ``__main__.py`` 214). With
    stored state: ``read`` then the refresh diff (pulumi/pulumi 1b5949891b
    ``pkg/resource/deploy/step.go`` 1580-1715), which must report nothing on an unchanged
    system; then ``check(stored inputs, news)`` (``step_generator.go`` 1334-1337), ``diff`` and
    ``update``, or the old outputs with the new inputs on no change (step.go 179). Without:
    ``check`` and ``create``. Returns ``(id, outputs)``; the outputs carry ``__provider`` as the
    host adds it (``__main__.py`` 146, 172). Raises :class:`DynamicCheckFailed` on check failures.
    """
    news = _unwrap(dict(registered))
    provider = dill.loads(base64.b64decode(news[PROVIDER_KEY]))
    key = state.key(stack, name, news)
    old = state.resources.get(key)
    if old is not None:
        read = provider.read(old.id, dict(old.outputs))
        refreshed = Stored(read.id, old.inputs if read.inputs is None else dict(read.inputs),
                           {**read.outs, PROVIDER_KEY: old.outputs[PROVIDER_KEY]})
        if provider.diff(old.id, refreshed.outputs, old.inputs).changes:
            raise AssertionError(f"refresh of {name} reports a change on an unchanged system")
        old = refreshed
    checked = provider.check(old.inputs if old else {}, news)
    if checked.failures:
        raise DynamicCheckFailed("\n".join(f.reason for f in checked.failures))
    inputs = {**checked.inputs, PROVIDER_KEY: news[PROVIDER_KEY]}
    if old is None:
        created = provider.create(inputs)
        stored = Stored(created.id, inputs, {**created.outs, PROVIDER_KEY: inputs[PROVIDER_KEY]})
    elif provider.diff(old.id, old.outputs, inputs).changes:
        outs = provider.update(old.id, old.outputs, inputs).outs
        stored = Stored(old.id, inputs, {**outs, PROVIDER_KEY: inputs[PROVIDER_KEY]})
    else:
        stored = Stored(old.id, inputs, old.outputs)
    state.resources[key] = stored
    return stored.id, dict(stored.outputs)


class Mocks(pulumi.runtime.Mocks):
    """``state``: where dynamic resources keep their state between runs (default :data:`DEFAULT_STATE`)."""

    def __init__(self, state: EngineState | None = None):
        super().__init__()
        self.state = state if state is not None else DEFAULT_STATE

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.resource_id and args.typ.startswith("kubernetes:"):  # a read of live state (Resource.get)
            outputs = dict(args.inputs)
            if args.typ == "kubernetes:core/v1:Secret":
                outputs["data"] = {"token": _b64(f"token-{args.resource_id}"), "ca.crt": _b64("fake-ca")}
            if args.typ == "kubernetes:core/v1:Service":
                outputs["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}
            return [args.resource_id, outputs]
        if args.typ == "pulumi-python:dynamic:Resource":
            rid, outputs = run_dynamic_resource(self.state, pulumi.get_stack(), args.name, dict(args.inputs))
            return [rid, outputs]
        outputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            outputs = {"name": args.name, "outputs": {"kubeconfig": FAKE_KUBECONFIG}, "secretOutputNames": []}
        return [f"{args.name}-id", outputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class PreviewMocks(Mocks):
    """:class:`Mocks` as a preview answers a resource of type ``unknown_type`` that the program
    creates: no id yet (the SDK then resolves it unknown), as the engine leaves a resource still to be
    created; with ``preview`` False, as :class:`Mocks`."""

    def __init__(self, preview: bool, unknown_type: str, state: EngineState | None = None):
        super().__init__(state)
        self.preview, self.unknown_type = preview, unknown_type

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if self.preview and not args.resource_id and args.typ == self.unknown_type:
            return ["", dict(args.inputs)]
        return super().new_resource(args)


class RecordingMonitor(pmocks.MockMonitor):
    def __init__(self, mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.reads: list[Read] = []

    def ReadResource(self, request):
        response = super().ReadResource(request)
        self.reads.append(Read(type=request.type, name=request.name, id=request.id, provider=request.provider,
                               parent=request.parent))
        return response

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        secret = set(_secret_paths(request.object))
        self.registrations.append(Registration(
            type=request.type, name=request.name, urn=response.urn, parent=request.parent,
            provider=request.provider, dependencies=list(request.dependencies),
            inputs=_unwrap(rpc.deserialize_properties(request.object)), secret_inputs=secret,
            additional_secret_outputs=list(request.additionalSecretOutputs)))
        return response


def _unwrap(value):
    """Inputs with secret wrappers replaced by their values (secretness is in ``secret_inputs``)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return _unwrap(value.get("value"))
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _secret_paths(struct, prefix: str = ""):
    """Dotted paths of every secret value inside a protobuf Struct of serialised inputs."""
    for key, value in struct.fields.items():
        path = f"{prefix}{key}"
        if value.HasField("struct_value"):
            inner = value.struct_value
            sig = inner.fields.get(rpc._special_sig_key)
            if sig is not None and sig.string_value == SECRET_SIG:
                yield path
            else:
                yield from _secret_paths(inner, path + ".")


def stack_config(stack: str) -> dict:
    """The stack file's config, as ``pulumi.runtime.set_all_config`` takes it (JSON for objects)."""
    import yaml
    data = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    # secret config a real stack gets from `pulumi config set --secret` (egress credentials)
    for rule in (data.get("service-mesh:mesh") or {}).get("egress") or []:
        key = (rule.get("credential") or {}).get("secretConfig")
        if key:
            data.setdefault(f"service-mesh:{key}", TEST_SECRET)
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in data.items()}


TEST_SECRET = "Bearer test-secret-0123456789"
"""The value :func:`stack_config` gives secret config keys the stack file names but cannot hold."""


def run_program(config: dict, stack: str = "test", reads: list | None = None,
                state: EngineState | None = None) -> list[Registration]:
    """Run ``__main__.py`` with ``config`` under mocks; return its registrations in order.
    ``reads``, when given, receives the program's reads (:class:`Read`) in order. ``state``: the
    stack's stored dynamic-resource state (:class:`EngineState`; default :data:`DEFAULT_STATE`)."""
    mocks = Mocks(state)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config)

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    program()
    if reads is not None:
        reads.extend(monitor.reads)
    # The SDK registers the root ``pulumi:pulumi:Stack`` once per process (the first program run
    # only), so keeping it would make a run's registrations depend on which test ran first.
    return [r for r in monitor.registrations if r.type != "pulumi:pulumi:Stack"]


def run_mocked(program, mocks: pulumi.runtime.Mocks | None = None, *, with_reads: bool = False):
    """Run ``program`` (a function that may return an Output to wait for) as a Pulumi program under
    the SDK's mocks (``mocks``, default :class:`Mocks`), recorded by :class:`RecordingMonitor`; every
    registration in order, the root Stack left out (and, ``with_reads``, the program's reads
    (``Resource.get``) in order too). For a component used alone in a small program."""
    mocks = mocks or Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="test", preview=False, monitor=monitor)

    @pulumi.runtime.test
    def test_program():
        return program()

    test_program()
    regs = [r for r in monitor.registrations if r.type != "pulumi:pulumi:Stack"]
    return (regs, list(monitor.reads)) if with_reads else regs


def refused_on_existing_cluster(component: type, name: str, args: Any, error: type = Exception):
    """``component(name, args)`` on a kubernetes provider for an existing cluster, in a small program
    under mocks (:func:`run_mocked`), where it must raise ``error``: ``(registrations, the error)``."""
    import pulumi_kubernetes as k8s

    captured: dict = {}

    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        try:
            component(name, args, opts=pulumi.ResourceOptions(providers=[provider]))
        except error as e:
            captured["error"] = e
    regs = run_mocked(program)
    assert "error" in captured, f"{component.__name__} {name} was not refused"
    return regs, captured["error"]
