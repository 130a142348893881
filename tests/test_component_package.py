"""The component package (``provider/``, :mod:`mesh_components.components.package`) for every language.

- The schema Pulumi's analyzer infers from our components' type hints is the committed
  ``provider/schema.json`` (a drift test), and says what a consumer needs field by field: every
  public component, typed inputs and outputs, descriptions from the docstrings.
- The plugin, started as the Python language host starts it (``python provider <engine address>``,
  pulumi/pulumi ``sdk/python/cmd/pulumi-language-python/main.go`` ``RunPlugin``), answers
  ``GetSchema`` and ``Construct`` over gRPC as the engine drives it: the Construct request carries a
  ``monitorEndpoint`` (a mock ResourceMonitor here that records every registration), the inputs as
  the engine marshals them (secrets as secret objects) and the kubernetes provider reference from the
  program's ``providers`` option; the custom resources a component registers are created as the
  engine creates them (the CA's dynamic resource by the real dynamic provider plugin,
  ``python -m pulumi.dynamic``, through Check then Create). The CA alone and SmiPolicies on an
  existing Istio register what they should on the program's provider; bad args and refused
  policies fail with the component's own ``path: message`` text before anything registers; the
  CA's outputs feed a ``LinkerdControlPlane`` with the issuer key secret all the way.
- The example programs (``examples/yaml``, ``examples/typescript``) use only types and property
  names the committed schema has.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import (engine_pb2, engine_pb2_grpc, provider_pb2, provider_pb2_grpc, resource_pb2,
                                  resource_pb2_grpc)

from mesh_components.components import package

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "provider"
PY = sys.executable

# The wire forms of secrets and output values (pulumi/pulumi sdk/go/common/resource/sig/sig.go;
# the Python SDK's pulumi/runtime/rpc.py _special_sig_key, _special_secret_sig, _special_output_value_sig).
SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

PROJECT, STACK = "mesh-consumer", "dev"
STACK_URN = f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}"
K8S_PROVIDER_URN = f"urn:pulumi:{STACK}::{PROJECT}::pulumi:providers:kubernetes::existing-cluster"
K8S_PROVIDER_ID = "0f3c9f2e-5b1d-4c1e-9a57-2d1f0c7b9e11"
K8S_PROVIDER_REF = f"{K8S_PROVIDER_URN}::{K8S_PROVIDER_ID}"


# ---------------------------------------------------------------------------------------------
# wire values


def secret(value: Any) -> dict:
    """``value`` as the engine marshals a secret (``sig.Secret``)."""
    return {SIG: SECRET_SIG, "value": value}


def unwrap(value: Any) -> tuple[Any, bool]:
    """A wire value -> (plain value, whether it or anything inside it was secret)."""
    if isinstance(value, dict) and value.get(SIG) == SECRET_SIG:
        inner, _ = unwrap(value.get("value"))
        return inner, True
    if isinstance(value, dict) and value.get(SIG) == OUTPUT_SIG:
        inner, inner_secret = unwrap(value.get("value"))
        return inner, bool(value.get("secret")) or inner_secret
    if isinstance(value, dict):
        pairs = {k: unwrap(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        pairs = [unwrap(v) for v in value]
        return [v for v, _ in pairs], any(s for _, s in pairs)
    return value, False


def downgrade(value: Any) -> Any:
    """Output values -> their value (secret when the output was), as the engine hands inputs to a
    provider that does not take output values."""
    if isinstance(value, dict) and value.get(SIG) == OUTPUT_SIG:
        inner = downgrade(value.get("value", UNKNOWN))
        return secret(inner) if value.get("secret") else inner
    if isinstance(value, dict):
        return {k: downgrade(v) for k, v in value.items()}
    if isinstance(value, list):
        return [downgrade(v) for v in value]
    return value


def annotate_secrets(outs: dict, ins: dict) -> dict:
    """``outs`` with every output secret whose input of the same name held a secret, objects
    compared key by key (provider_plugin.go ``annotateSecrets``)."""
    out = dict(outs)
    for key, given in ins.items():
        if key not in out:
            continue
        if isinstance(out[key], dict) and isinstance(given, dict) and SIG not in given and SIG not in out[key]:
            out[key] = annotate_secrets(out[key], given)
        elif unwrap(given)[1] and not (isinstance(out[key], dict) and out[key].get(SIG) == SECRET_SIG):
            out[key] = secret(out[key])
    return out


def to_dict(struct: struct_pb2.Struct) -> dict:
    return json_format.MessageToDict(struct)


def to_struct(value: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def contains_text(value: Any, text: str) -> bool:
    """Whether ``text`` appears anywhere in a wire value, secret or not."""
    return text in json.dumps(value)


# ---------------------------------------------------------------------------------------------
# the engine's side: a ResourceMonitor and an Engine (logs), served from this process


def new_urn(parent: str, typ: str, name: str) -> str:
    """The URN the engine gives a registration: the parent's qualified type ``$`` the type, the
    root stack left out (pulumi/pulumi ``sdk/go/common/resource/urn/urn.go`` ``New``)."""
    qualified = typ
    if parent and parent != STACK_URN:
        qualified = parent.split("::")[2] + "$" + typ
    return f"urn:pulumi:{STACK}::{PROJECT}::{qualified}::{name}"


def start_plugin(args: list[str], cwd: Path) -> tuple[subprocess.Popen, int]:
    """A plugin process that prints its port first (``pulumi/provider/server.py`` ``main``,
    ``pulumi/dynamic/__main__.py`` ``main``): the process and the port. Its further output is
    read as it comes (kept in ``proc.output``), as the engine reads a plugin's, so a chatty plugin
    never blocks on a full pipe."""
    proc = subprocess.Popen([PY, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise AssertionError(f"{args} did not print its port: {line!r}\n{proc.stderr.read()}")
    proc.output = []
    for stream in (proc.stdout, proc.stderr):
        threading.Thread(target=lambda s=stream: proc.output.extend(s), daemon=True).start()
    return proc, int(line)


class Engine:
    """The pieces of the engine a Construct talks to: the ``Log`` service (every message kept) and
    the ResourceMonitor (every request kept), creating custom resources as the engine would:
    dynamic ones through the dynamic provider plugin's Check then Create
    (``pkg/resource/deploy/step.go`` CreateStep), then marking ``additionalSecretOutputs`` secret
    (``pkg/resource/deploy/step_executor.go`` lines 524-533 at 1b5949891b); other custom resources
    (the kubernetes objects) get their inputs back as outputs: the kubernetes provider itself is not
    run here, what matters is what was registered on it."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.lock = threading.Lock()
        self.registrations: list[Any] = []  # RegisterResourceRequest, in arrival order
        self.urns: dict[int, str] = {}  # index in registrations -> URN
        self.outputs: dict[str, dict] = {}  # RegisterResourceOutputs, by URN
        self.invokes: list[Any] = []
        self.reads: list[Any] = []  # ReadResourceRequest (``Resource.get``), in arrival order
        self.logs: list[Any] = []
        self._dynamic = None
        # what the program registered before the component: the kubernetes provider of the existing
        # cluster (its outputs as the kubernetes provider reports them, the kubeconfig secret)
        self.existing = {K8S_PROVIDER_URN: {"id": K8S_PROVIDER_ID, "state": {
            "kubeconfig": secret("apiVersion: v1\nkind: Config\n"), "version": "4.34.2"}}}
        self._dynamic_stub = None
        engine = self

        class Monitor(resource_pb2_grpc.ResourceMonitorServicer):
            def GetDeploymentInfo(self, request, context):
                # what the engine supports (pkg/resource/deploy/source_eval.go supportedMonitorFeatures)
                return resource_pb2.DeploymentInfo(supportedFeatures=[
                    resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS, resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES,
                    resource_pb2.RESOURCE_MONITOR_FEATURE_OUTPUT_VALUES, resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS,
                    resource_pb2.RESOURCE_MONITOR_FEATURE_DELETED_WITH])

            def SupportsFeature(self, request, context):
                return resource_pb2.SupportsFeatureResponse(hasSupport=request.id in {
                    "secrets", "resourceReferences", "outputValues", "aliasSpecs", "deletedWith"})

            def RegisterResource(self, request, context):
                return engine.register(request)

            def ReadResource(self, request, context):
                return engine.read(request)

            def RegisterResourceOutputs(self, request, context):
                with engine.lock:
                    engine.outputs[request.urn] = to_dict(request.outputs)
                return empty_pb2.Empty()

            def Invoke(self, request, context):
                with engine.lock:
                    engine.invokes.append(request)
                args = to_dict(request.args)
                if request.tok == "pulumi:pulumi:getResource" and args.get("urn") in engine.existing:
                    # the engine's builtin: a registered resource's urn, id and outputs, for a provider
                    # reference the SDK hydrates (pkg/resource/deploy/builtins.go getResource)
                    found = engine.existing[args["urn"]]
                    ret = {"urn": args["urn"], "id": found["id"], "state": found["state"]}
                    return resource_pb2.ResourceInvokeResponse(**{"return": to_struct(ret)})
                context.abort(grpc.StatusCode.UNIMPLEMENTED, f"no invoke {request.tok} {args} in this test engine")

            def RegisterPackage(self, request, context):
                return resource_pb2.RegisterPackageResponse(ref=f"pkg-{request.name}")

            def SignalAndWaitForShutdown(self, request, context):
                return empty_pb2.Empty()

        class Logs(engine_pb2_grpc.EngineServicer):
            def Log(self, request, context):
                with engine.lock:
                    engine.logs.append(request)
                return empty_pb2.Empty()

            def GetRootResource(self, request, context):
                return engine_pb2.GetRootResourceResponse(urn=STACK_URN)

            def SetRootResource(self, request, context):
                return engine_pb2.SetRootResourceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(Monitor(), self.server)
        engine_pb2_grpc.add_EngineServicer_to_server(Logs(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.address = f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self.lock:
            self.registrations.clear()
            self.urns.clear()
            self.outputs.clear()
            self.invokes.clear()
            self.reads.clear()
            self.logs.clear()

    def dynamic(self):
        """The dynamic provider plugin, started on first use as the engine starts it
        (``pulumi-resource-pulumi-python``: ``python -u -m pulumi.dynamic``, with the interpreter
        of ``PULUMI_PYTHON_CMD`` or the program's virtualenv: here the plugin's, this venv)."""
        if self._dynamic_stub is None:
            self._dynamic, port = start_plugin(["-u", "-m", "pulumi.dynamic"], self.tmp)
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            self._dynamic_stub = provider_pb2_grpc.ResourceProviderStub(channel)
        return self._dynamic_stub

    def register(self, request):
        urn = new_urn(request.parent, request.type, request.name)
        with self.lock:
            self.urns[len(self.registrations)] = urn
            self.registrations.append(request)
        if not request.custom:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        inputs = downgrade(to_dict(request.object))
        if request.type == "pulumi-python:dynamic:Resource":
            # The dynamic provider implements no Configure, so the engine takes it as accepting no
            # secrets: it sends plain values and marks an output secret when its input was
            # (sdk/go/common/resource/plugin/provider_plugin.go annotateSecrets, Create).
            stub = self.dynamic()
            plain = to_struct(unwrap(inputs)[0])
            checked = stub.Check(provider_pb2.CheckRequest(urn=urn, olds=struct_pb2.Struct(), news=plain))
            assert not checked.failures, f"{urn}: Check failed: {checked.failures}"
            created = stub.Create(provider_pb2.CreateRequest(urn=urn, properties=checked.inputs))
            outs, rid = annotate_secrets(to_dict(created.properties), inputs), created.id
        else:
            outs, rid = inputs, f"{request.name}-id"
        for key in request.additionalSecretOutputs:
            if key in outs and not (isinstance(outs[key], dict) and outs[key].get(SIG) == SECRET_SIG):
                outs[key] = secret(outs[key])
        return resource_pb2.RegisterResourceResponse(urn=urn, id=rid, object=to_struct(outs))

    def read(self, request):
        """A ``Resource.get`` of a live object, answered as a cluster holding it would: a token
        Secret with ``token`` and ``ca.crt`` (base64, as the API server serves ``data``), a Service
        with a load-balancer address; the request's own inputs otherwise."""
        import base64

        with self.lock:
            self.reads.append(request)
        outs = dict(to_dict(request.properties))
        if request.type == "kubernetes:core/v1:Secret":
            outs["data"] = secret({k: base64.b64encode(v.encode()).decode() for k, v in
                                   {"token": f"token-{request.id}", "ca.crt": "ca-from-token"}.items()})
        if request.type == "kubernetes:core/v1:Service":
            outs["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}
        return resource_pb2.ReadResourceResponse(urn=new_urn(request.parent, request.type, request.name),
                                                 properties=to_struct(outs))

    def registered(self) -> list[tuple[str, Any]]:
        """(URN, request) of every registration so far, in arrival order."""
        with self.lock:
            return [(self.urns[i], r) for i, r in enumerate(self.registrations)]

    def close(self) -> None:
        if self._dynamic is not None:
            self._dynamic.kill()
            self._dynamic.wait()
        self.server.stop(None)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = Engine(tmp_path_factory.mktemp("engine"))
    yield e
    e.close()


@pytest.fixture(scope="module")
def plugin(engine, tmp_path_factory):
    """A ResourceProvider stub on the component package's plugin, run as the language host runs it:
    ``python <plugin directory> <engine address>``, working directory the consumer's."""
    proc, port = start_plugin([str(PLUGIN_DIR), engine.address], tmp_path_factory.mktemp("consumer"))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield provider_pb2_grpc.ResourceProviderStub(channel)
    channel.close()
    proc.kill()
    proc.wait()


def construct(plugin, engine: Engine, typ: str, name: str, inputs: dict, **extra):
    """``Construct`` ``typ`` ``name`` as the engine sends it for a program's
    ``new X(name, inputs, {providers: [k8s]})``: the inputs marshalled, the stack as parent, the
    kubernetes provider reference by package (pkg/resource/deploy/source_eval.go, the
    ConstructRequest built in pkg/resource/plugin/provider_plugin.go ``Construct``)."""
    engine.reset()
    request = provider_pb2.ConstructRequest(
        project=PROJECT, stack=STACK, organization="organization", dryRun=False, parallel=4,
        monitorEndpoint=engine.address, type=typ, name=name, parent=STACK_URN, inputs=to_struct(inputs),
        providers={"kubernetes": K8S_PROVIDER_REF}, accepts_output_values=True, **extra)
    return plugin.Construct(request, timeout=120)


# ---------------------------------------------------------------------------------------------
# the schema


def committed_schema() -> dict:
    return json.loads(package.SCHEMA_FILE.read_text(encoding="utf-8"))


def test_the_committed_schema_is_the_one_the_analyzer_infers_from_the_code():
    """Inferred in a fresh interpreter, as the plugin host (provider/__main__.py) infers it: Pulumi's
    analyzer reads attribute docstrings with ``inspect.getsource`` and drops them silently when that
    fails (pulumi 3.272.0 provider/experimental/analyzer.py ``get_docstring``, ``except Exception:
    pass``), so state other tests leave in this process could change the result (a clean CI run once
    lost the value description of ``LinkerdControlPlane.releases`` this way)."""
    assert package.SCHEMA_FILE == PLUGIN_DIR / "schema.json"
    run = subprocess.run([sys.executable, "-c", "import sys; from mesh_components.components import package; "
                          "sys.stdout.write(package.schema_text())"], capture_output=True, text=True,
                         encoding="utf-8", cwd=PLUGIN_DIR.parent, timeout=300)
    assert run.returncode == 0, run.stderr
    inferred = run.stdout
    assert package.SCHEMA_FILE.read_text(encoding="utf-8") == inferred, (
        "provider/schema.json is out of date with the components' type hints and docstrings: "
        "regenerate it with `python3 tasks.py schema` and commit it")


def test_the_schema_job_checks_the_committed_file_under_any_hash_seed():
    """``python -m mesh_components.components.package --check`` (what ``python3 tasks.py schema
    --check`` runs) finds the committed file current in fresh interpreters whose set and dict
    orders of strings differ (PYTHONHASHSEED): nothing in the schema depends on them."""
    for seed in ("1", "4242"):
        done = subprocess.run([PY, "-m", "mesh_components.components.package", "--check"], cwd=ROOT,
                              capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0 and "up to date" in done.stdout, (seed, done.stdout + done.stderr[-2000:])
    assert re.search(r'"schema":\s*schema\b', (ROOT / "tasks.py").read_text())


def test_the_schema_job_says_when_the_file_is_stale(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "schema.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(package, "SCHEMA_FILE", stale)
    assert package._cli(["--check"]) == 1
    assert "out of date; run: python3 tasks.py schema" in capsys.readouterr().out
    assert package._cli([]) == 0
    assert stale.read_text() == package.schema_text()
    assert package._cli(["--check"]) == 0


def test_every_public_component_is_in_the_package_as_its_own_type():
    schema = committed_schema()
    names = [c.__name__ for c in package.components()]
    assert {"MeshCertificateAuthority", "SmiPolicies"} <= set(names)
    assert sorted(schema["resources"]) == sorted(f"mesh:index:{n}" for n in names)
    assert schema["name"] == "mesh" and schema["version"] == package.version()
    for token, resource in schema["resources"].items():
        assert resource["isComponent"] is True, token
        assert resource["description"].strip(), f"{token}: no description (the class docstring)"
    # the type each registers itself as is the token the engine sends it by: Construct finds the class
    # by the token's last part (pulumi/provider/experimental/component.py construct)
    for name in names:
        assert package.component(name).TYPE == f"mesh:index:{name}", name


def test_every_public_component_with_typed_args_is_served():
    """A public component of ``mesh_components.components`` whose ``__init__`` takes typed
    ``args`` is usable from other languages only when the package serves it: none is left out."""
    import inspect
    import typing

    import pulumi

    import mesh_components.components as public

    typed = set()
    for name in public.__all__:
        cls = getattr(public, name)
        if inspect.isclass(cls) and issubclass(cls, pulumi.ComponentResource):
            args = inspect.get_annotations(cls.__init__).get("args")
            if args is not None and typing.is_typeddict(args):
                typed.add(name)
    assert typed <= set(package.COMPONENTS), (
        f"{sorted(typed - set(package.COMPONENTS))}: public components with typed args the package does not "
        f"serve; add them to mesh_components.components.package.COMPONENTS and run `python3 tasks.py schema`")
    assert {"MeshCertificateAuthority", "SmiPolicies"} <= typed


def _type_of(prop: dict, schema: dict) -> str:
    """A schema property's type in words: ``string``, ``integer``, ``array<object>``, ``map<string>``,
    ``ref:<TypeName>``, ``any``."""
    if "$ref" in prop:
        ref = prop["$ref"]
        if ref == "pulumi.json#/Any":
            return "any"
        name = ref.rsplit("/", 1)[-1]
        assert name in schema.get("types", {}), f"dangling reference {ref}"
        return f"ref:{name.rsplit(':', 1)[-1]}"
    if prop.get("type") == "array":
        return f"array<{_type_of(prop['items'], schema)}>"
    if prop.get("type") == "object" and "additionalProperties" in prop:
        return f"map<{_type_of(prop['additionalProperties'], schema)}>"
    return prop["type"]


def _python_fields(typed_dict: type) -> dict[str, Any]:
    """A TypedDict's fields (its bases' too) with their annotations as written."""
    return dict(typed_dict.__annotations__)


def _declared_outputs(cls: type) -> dict[str, Any]:
    """A component's class-level annotations (its own and its bases' up to, not including,
    ``pulumi.ComponentResource``), private names left out."""
    import inspect

    import pulumi

    out: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        if base in (object, pulumi.Resource, pulumi.ComponentResource) or not issubclass(base, pulumi.Resource):
            continue
        out.update(inspect.get_annotations(base))
    return {k: v for k, v in out.items() if not k.startswith("_")}


def _expected_type(hint: Any) -> str:
    """The schema type Pulumi's analyzer gives a Python annotation (``analyzer.py``
    ``analyze_property``: Input/Output/Optional/NotRequired/Required unwrapped; str/int/float/bool;
    list -> array, dict[str, T] -> map, TypedDict -> a named type, Any -> pulumi.json#/Any)."""
    import collections.abc
    import typing

    import pulumi

    while True:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Union:
            members = [a for a in args if a is not type(None) and typing.get_origin(a) is not collections.abc.Awaitable
                       and not isinstance(a, typing.ForwardRef)]  # Input[T]'s Output is a ForwardRef
            plain = [a for a in members if typing.get_origin(a) is not pulumi.Output]
            assert len(plain) <= 1 and members, f"a union the analyzer refuses: {hint!r}"
            hint = (plain or members)[0]
        elif origin is pulumi.Output or repr(origin).rsplit(".", 1)[-1] in ("NotRequired", "Required"):
            hint = args[0]
        else:
            break
    if hint is typing.Any:
        return "any"
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if hint in simple:
        return simple[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, collections.abc.Sequence, typing.Sequence):
        return f"array<{_expected_type(args[0])}>"
    if origin in (dict, collections.abc.Mapping, typing.Mapping):
        return f"map<{_expected_type(args[1])}>"
    if typing.is_typeddict(hint):
        return f"ref:{hint.__name__}"
    raise AssertionError(f"unexpected annotation {hint!r}")


@pytest.mark.parametrize("component", list(package.COMPONENTS))
def test_each_component_s_inputs_and_outputs_are_typed_and_described_field_by_field(component):
    import inspect

    from mesh_components.components.args import schema_name

    cls = package.component(component)
    schema = committed_schema()
    resource = schema["resources"][f"mesh:index:{component}"]
    args_type = inspect.get_annotations(cls.__init__)["args"]
    assert args_type.__name__ == f"{component}Args"

    fields = _python_fields(args_type)
    assert sorted(resource["inputProperties"]) == sorted(schema_name(f) for f in fields)
    assert sorted(resource["requiredInputs"]) == sorted(schema_name(f) for f in args_type.__required_keys__)
    for field, hint in fields.items():
        prop = resource["inputProperties"][schema_name(field)]
        where = f"{component}Args.{field}"
        assert prop.get("description", "").strip(), f"{where}: no description (a docstring right below the field)"
        assert _type_of(prop, schema) == _expected_type(hint), where

    outputs = _declared_outputs(cls)
    assert outputs, f"{component}: no outputs declared (class-level pulumi.Output annotations)"
    assert sorted(resource["properties"]) == sorted(schema_name(k) for k in outputs)
    for field, hint in outputs.items():
        prop = resource["properties"][schema_name(field)]
        where = f"{component}.{field}"
        assert prop.get("description", "").strip(), f"{where}: no description (a docstring right below the output)"
        assert _type_of(prop, schema) == _expected_type(hint), where

    for token, typ in schema.get("types", {}).items():
        for name, prop in typ.get("properties", {}).items():
            assert prop.get("description", "").strip(), f"{token}.{name}: no description"


def test_descriptions_are_dedented_so_generated_docs_do_not_turn_them_into_code_blocks():
    schema = committed_schema()
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "description" and isinstance(v, str):
                    found.append((path, v))
                else:
                    walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(schema, "")
    assert found
    indented = [(p, line) for p, d in found for line in d.splitlines()[1:] if line.startswith("    ")]
    assert not indented, indented[:3]


def test_a_component_whose_annotations_are_strings_is_refused_with_the_fix(tmp_path):
    source = tmp_path / "future_component.py"
    source.write_text(
        "from __future__ import annotations\n"
        "from typing import Optional, TypedDict\n"
        "import pulumi\n"
        "class FutureArgs(TypedDict, total=False):\n"
        "    x: pulumi.Input[str]\n"
        "class Future(pulumi.ComponentResource):\n"
        "    y: pulumi.Output[str]\n"
        "    def __init__(self, name: str, args: FutureArgs, opts: Optional[pulumi.ResourceOptions] = None):\n"
        "        super().__init__('mesh:index:Future', name, None, opts)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import future_component
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("future_component", None)
    with pytest.raises(TypeError, match=r"future_component\.Future: .*from __future__ import annotations"):
        package.schema([future_component.Future])


# ---------------------------------------------------------------------------------------------
# the plugin package


def test_the_plugin_directory_is_a_python_source_plugin():
    manifest = yaml.safe_load((PLUGIN_DIR / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert manifest["runtime"]["options"] == {"toolchain": "pip", "virtualenv": "venv"}
    main = (PLUGIN_DIR / "__main__.py").read_text()
    assert "from mesh_components.components.package import main" in main
    requirements = [line.strip() for line in (PLUGIN_DIR / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    # pip runs in the plugin directory (sdk/python/toolchain/pip.go InstallDependencies), so `..` is this project
    assert requirements == ["-e .."]
    project = (ROOT / "pyproject.toml").read_text()
    assert '"pulumi>=' in project and '"pulumi-kubernetes>=' in project


def test_the_ca_s_dynamic_provider_is_pickled_by_reference_to_this_package():
    """The dynamic provider plugin runs in the Python of ``PULUMI_PYTHON_CMD`` (or the program's
    virtualenv; a YAML or TypeScript program has none) and unpickles the provider there
    (``pulumi/dynamic/__main__.py`` ``get_provider``): it needs ``mesh_components`` importable,
    which the plugin's venv has (requirements.txt) and a bare python3 has not, so the README tells
    consumers to point ``PULUMI_PYTHON_CMD`` at the plugin's venv."""
    from pulumi.dynamic.dynamic import serialize_provider

    from mesh_components.ca_provider import MeshCAProvider

    blob = serialize_provider(MeshCAProvider(None))
    code = ("import base64, sys, dill; sys.modules['mesh_components'] = None\n"
            f"dill.loads(base64.b64decode({blob!r}))\n")
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0 and "mesh_components" in done.stderr, done.stderr[-2000:]
    code = ("import base64, dill\n"
            f"p = dill.loads(base64.b64decode({blob!r}))\n"
            "print(type(p).__module__, type(p).__name__)\n")
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["mesh_components.ca_provider", "MeshCAProvider"], done.stderr[-2000:]
    readme = (PLUGIN_DIR / "README.md").read_text()
    assert "PULUMI_PYTHON_CMD" in readme


def test_get_schema_over_grpc_is_the_committed_schema(plugin):
    answer = plugin.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
    assert json.loads(answer.schema) == committed_schema()
    info = plugin.GetPluginInfo(empty_pb2.Empty(), timeout=60)
    assert info.version == package.version()


# ---------------------------------------------------------------------------------------------
# Construct: SmiPolicies onto an existing Istio


SMI_NAME = "policy"


def smi_inputs(mesh: str = "istio") -> dict:
    """SmiPolicies inputs as a TypeScript or YAML program sends them (schema names, camelCase):
    the dev stack's bookstore services and namespaces with the repository's SMI files, for an
    existing Istio (sidecar). ``paths`` absolute: the plugin runs in the consumer's directory."""
    from cp_helpers import stack_mesh

    dev = stack_mesh("dev")
    return {"mesh": mesh, "meshName": "shop", "clusterName": "c1", "trustDomain": "shop.example",
            "services": dev["services"], "namespaces": dev["namespaces"], "paths": [str(ROOT / "policies" / "smi")]}


def python_args(inputs: dict) -> dict:
    """The same inputs as a Python program passes them (snake_case field names at the top)."""
    import pulumi.provider.experimental.util as util

    from mesh_components.components.smi_policies import SmiPoliciesArgs

    by_schema = {util.camel_case(k): k for k in SmiPoliciesArgs.__annotations__}
    return {by_schema[k]: v for k, v in inputs.items()}


def test_construct_smi_policies_registers_the_rendered_policy_on_the_given_provider(plugin, engine):
    from mesh_components.components.registration import registered_type, resource_name
    from mesh_components.components.smi_policies import plan

    inputs = smi_inputs()
    expected = plan(SMI_NAME, python_args(inputs), base_dir=str(ROOT))
    answer = construct(plugin, engine, "mesh:index:SmiPolicies", SMI_NAME, inputs)
    regs = engine.registered()

    component_urn, component = regs[0]
    assert (component.type, component.name, component.parent, component.custom) == \
        ("mesh:index:SmiPolicies", SMI_NAME, STACK_URN, False)
    assert answer.urn == component_urn == new_urn(STACK_URN, "mesh:index:SmiPolicies", SMI_NAME)

    objects = expected.namespaces + expected.objects
    assert expected.objects and expected.namespaces == [] and expected.mesh_config is None  # Istio sidecar
    want = {(registered_type(o), resource_name(SMI_NAME, o)): o for o in objects}
    children = {(r.type, r.name): r for _, r in regs[1:]}
    assert sorted(children) == sorted(want)
    for key, request in children.items():
        assert request.parent == component_urn, key
        assert request.custom and request.provider == K8S_PROVIDER_REF, key  # the program's provider
        body, is_secret = unwrap(downgrade(to_dict(request.object)))
        assert not is_secret, key
        obj = want[key]
        assert body.get("spec") == obj.get("spec"), key
        assert body["metadata"]["name"] == obj["metadata"]["name"], key
        assert body["metadata"].get("namespace") == obj["metadata"].get("namespace"), key

    state, any_secret = unwrap(to_dict(answer.state))
    assert not any_secret
    assert state["objects"] == len(expected.objects)
    assert state["authorizationPolicies"] == sorted(
        f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in expected.objects
        if o["kind"] == "AuthorizationPolicy")
    assert state["authorizationPolicies"]
    assert state["kinds"] == {k: sum(1 for o in expected.objects if o["kind"] == k)
                              for k in {o["kind"] for o in expected.objects}}
    assert state["requirements"] == expected.requirements
    assert engine.outputs[component_urn]["objects"] == len(expected.objects)  # register_outputs


def test_construct_smi_policies_with_a_bad_field_fails_naming_component_and_field_before_registering(plugin, engine):
    """The answer is the component's own ``path: message`` text, exactly what a Python program
    gets from the same args, as an invalid-argument error without a traceback."""
    from mesh_components.components.args import ArgsError
    from mesh_components.components.smi_policies import plan

    inputs = smi_inputs()
    inputs["services"][0]["ports"][0]["port"] = 70000
    with pytest.raises(ArgsError) as python:
        plan(SMI_NAME, python_args(inputs))
    with pytest.raises(grpc.RpcError) as failed:
        construct(plugin, engine, "mesh:index:SmiPolicies", SMI_NAME, inputs)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.value.details() == str(python.value)
    assert f"SmiPolicies {SMI_NAME}: services[0].ports[0].port: " in failed.value.details()
    assert engine.registered() == []


@pytest.mark.parametrize("where", ["top", "nested"])
def test_construct_refuses_a_misspelt_field_as_a_python_program_gets_it(plugin, engine, where):
    """A field the schema does not have is not dropped (the SDK maps only the schema's properties)
    but refused by the component, with the text a Python program gets for the same args."""
    from mesh_components.components.args import ArgsError
    from mesh_components.components.smi_policies import plan

    inputs = smi_inputs()
    if where == "top":
        inputs["trustDomian"] = inputs.pop("trustDomain")
    else:
        inputs["services"][0]["ports"][0]["protocl"] = inputs["services"][0]["ports"][0].pop("protocol")
    args = python_args({k: v for k, v in inputs.items() if k != "trustDomian"})
    if where == "top":
        args["trustDomian"] = inputs["trustDomian"]
    with pytest.raises(ArgsError) as python:
        plan(SMI_NAME, args)
    with pytest.raises(grpc.RpcError) as failed:
        construct(plugin, engine, "mesh:index:SmiPolicies", SMI_NAME, inputs)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.value.details() == str(python.value)
    assert ("trustDomian" if where == "top" else "services[0].ports[0].protocl") in failed.value.details()
    assert engine.registered() == []


def test_construct_smi_policies_refuses_a_policy_the_mesh_cannot_express_before_registering(plugin, engine):
    """A path regex Istio cannot match exactly (its AuthorizationPolicy paths are exact, prefix or
    suffix matches): refused naming the document, the same text a Python program gets."""
    from mesh_components.components.smi_policies import plan
    from mesh_components.spec.errors import TranslationError

    inputs = {**smi_inputs(), "paths": [], "documents": [
        {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
         "metadata": {"name": "books", "namespace": "bookstore"},
         "spec": {"matches": [{"name": "numbered", "pathRegex": "/books/[0-9]+/reviews", "methods": ["GET"]}]}},
        {"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
         "metadata": {"name": "buyer-reviews", "namespace": "bookstore"},
         "spec": {"destination": {"kind": "ServiceAccount", "name": "bookstore", "namespace": "bookstore"},
                  "sources": [{"kind": "ServiceAccount", "name": "bookbuyer", "namespace": "bookbuyer"}],
                  "rules": [{"kind": "HTTPRouteGroup", "name": "books", "matches": ["numbered"]}]}}]}
    with pytest.raises(TranslationError) as python:
        plan(SMI_NAME, python_args(inputs))
    with pytest.raises(grpc.RpcError) as failed:
        construct(plugin, engine, "mesh:index:SmiPolicies", SMI_NAME, inputs)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.value.details() == str(python.value)
    assert failed.value.details().startswith(f"SmiPolicies {SMI_NAME}: documents#")
    assert engine.registered() == []


def test_construct_without_a_required_input_is_refused_by_the_sdk_naming_it(plugin, engine):
    """A required input missing: the SDK's ComponentProvider refuses it before the component runs
    (``pulumi/provider/experimental/component.py`` ``map_input_properties``), as an
    InputPropertyError the engine shows against the property."""
    inputs = smi_inputs()
    del inputs["mesh"]
    with pytest.raises(grpc.RpcError) as failed:
        construct(plugin, engine, "mesh:index:SmiPolicies", SMI_NAME, inputs)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailer = dict(failed.value.trailing_metadata() or ())
    assert b"Missing required input 'mesh' on 'SmiPolicies'" in trailer.get("grpc-status-details-bin", b"")
    assert engine.registered() == []


# ---------------------------------------------------------------------------------------------
# the example programs use what the schema has

EXAMPLES = ROOT / "examples"


class Expr(str):
    """A value in an example that is an expression (a variable, a call, a `${...}` reference),
    not a literal: its shape is not checked."""


def parse_ts_value(text: str, i: int) -> tuple[Any, int]:
    """The TypeScript value starting at ``text[i]``: object and array literals and string, number
    and boolean literals become Python values, anything else an :class:`Expr` (up to the next
    ``,`` or closing bracket at its own depth). Returns (value, index after it)."""
    def skip(j: int) -> int:
        while j < len(text):
            if text[j].isspace():
                j += 1
            elif text.startswith("//", j):
                j = text.index("\n", j)
            else:
                break
        return j

    i = skip(i)
    c = text[i]
    if c == "{":
        out, i = {}, skip(i + 1)
        while text[i] != "}":
            m = re.compile(r"""(?:([A-Za-z_$][\w$]*)|"([^"]*)"|'([^']*)')\s*:""").match(text, i)
            assert m, f"not a `key: value` at {text[i:i + 60]!r}"
            key = next(g for g in m.groups() if g is not None)
            value, i = parse_ts_value(text, m.end())
            out[key] = value
            i = skip(i)
            if text[i] == ",":
                i = skip(i + 1)
        return out, i + 1
    if c == "[":
        out, i = [], skip(i + 1)
        while text[i] != "]":
            value, i = parse_ts_value(text, i)
            out.append(value)
            i = skip(i)
            if text[i] == ",":
                i = skip(i + 1)
        return out, i + 1
    if c in "\"'":
        end = text.index(c, i + 1)
        return text[i + 1:end], end + 1
    m = re.compile(r"-?\d+(?:\.\d+)?(?![\w.])").match(text, i)
    if m:
        return (float(m.group(0)) if "." in m.group(0) else int(m.group(0))), m.end()
    m = re.compile(r"(true|false)\b").match(text, i)
    if m:
        return m.group(1) == "true", m.end()
    depth, j = 0, i
    while j < len(text):
        if text[j] in "([{":
            depth += 1
        elif text[j] in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif text[j] == "," and depth == 0:
            break
        j += 1
    return Expr(text[i:j].strip()), j


def ts_components(source: str) -> list[tuple[str, str, Any, dict, Any]]:
    """Every ``const v = new mesh.Type("name", args, opts)`` of a TypeScript program: (variable,
    type token, name, args, opts)."""
    found = []
    for m in re.finditer(r"const\s+(\w+)\s*=\s*new\s+mesh\.(\w+)\(", source):
        name, i = parse_ts_value(source, m.end())
        assert source[i] == ",", source[i:i + 40]
        args, i = parse_ts_value(source, i + 1)
        opts = None
        if source[i] == ",":
            opts, i = parse_ts_value(source, i + 1)
        found.append((m.group(1), f"mesh:index:{m.group(2)}", name, args, opts))
    return found


def check_against_schema(value: Any, prop: dict, schema: dict, path: str) -> list[str]:
    """Problems of ``value`` (an example's literal) against schema property ``prop``: unknown
    keys of typed objects, wrong literal types, missing required fields."""
    if isinstance(value, Expr) or value is None:
        return []
    if isinstance(value, str) and value.startswith("${"):
        return []
    if "$ref" in prop and prop["$ref"].startswith("#/types/"):
        typ = schema["types"][prop["$ref"].rsplit("/", 1)[-1]]
        return check_object(value, typ.get("properties", {}), typ.get("required", []), schema, path)
    if "$ref" in prop:  # pulumi.json#/Any
        return []
    kind = prop.get("type")
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [p for j, v in enumerate(value) for p in check_against_schema(v, prop["items"], schema, f"{path}[{j}]")]
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        inner = prop.get("additionalProperties", {})
        return [p for k, v in value.items() for p in check_against_schema(v, inner, schema, f"{path}.{k}")]
    want = {"string": str, "integer": int, "number": (int, float), "boolean": bool}[kind]
    if not isinstance(value, want) or (kind in ("integer", "number") and isinstance(value, bool)):
        return [f"{path}: expected {kind}, got {value!r}"]
    return []


def check_object(value: Any, properties: dict, required: list, schema: dict, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object"]
    problems = [f"{path}.{k}: not in the schema (known: {', '.join(sorted(properties))})"
                for k in value if k not in properties]
    problems += [f"{path}.{k}: required" for k in required if k not in value]
    problems += [p for k, v in value.items() if k in properties
                 for p in check_against_schema(v, properties[k], schema, f"{path}.{k}")]
    return problems


def check_resource(token: str, args: Any, schema: dict, where: str) -> list[str]:
    if token not in schema["resources"]:
        return [f"{where}: type {token} is not in provider/schema.json"]
    resource = schema["resources"][token]
    return check_object(args, resource["inputProperties"], resource.get("requiredInputs", []), schema, where)


def output_references(source: str, variables: dict[str, str]) -> list[tuple[str, str, str]]:
    """(variable, type token, property) of every ``v.prop`` / ``${v.prop}`` naming a component
    variable of ``variables`` (variable -> type token)."""
    return [(m.group(1), variables[m.group(1)], m.group(2))
            for m in re.finditer(r"\b(\w+)\.(\w+)\b", source) if m.group(1) in variables]


def test_the_yaml_example_uses_only_types_and_properties_of_the_schema():
    schema = committed_schema()
    program = yaml.safe_load((EXAMPLES / "yaml" / "Pulumi.yaml").read_text())
    assert program["runtime"] == "yaml"
    assert (EXAMPLES / "yaml" / program["packages"]["mesh"]).resolve() == PLUGIN_DIR
    mine = {k: r for k, r in program["resources"].items() if r["type"].startswith("mesh:")}
    assert {r["type"] for r in mine.values()} == {"mesh:index:MeshCertificateAuthority", "mesh:index:SmiPolicies"}
    problems = [p for k, r in mine.items() for p in check_resource(r["type"], r.get("properties", {}), schema, k)]
    assert not problems, problems
    # the policy goes to the cluster's provider through `providers` (a component's option)
    assert program["resources"]["cluster"]["type"] == "pulumi:providers:kubernetes"
    assert program["resources"]["policy"]["options"]["providers"] == ["${cluster}"]
    outputs = yaml.safe_dump(program.get("outputs", {}))
    refs = output_references(outputs.replace("${", " ").replace("}", " "), {k: r["type"] for k, r in mine.items()})
    assert refs
    missing = [(v, p) for v, t, p in refs if p not in schema["resources"][t]["properties"] and p not in ("urn",)]
    assert not missing, missing


def test_the_typescript_example_uses_only_types_and_properties_of_the_schema():
    schema = committed_schema()
    source = (EXAMPLES / "typescript" / "index.ts").read_text()
    found = ts_components(source)
    assert {t for _, t, *_ in found} == {"mesh:index:MeshCertificateAuthority", "mesh:index:SmiPolicies"}
    problems = [p for var, token, _, args, _ in found for p in check_resource(token, args, schema, var)]
    assert not problems, problems
    opts = {var: o for var, _, _, _, o in found}
    assert opts["policy"] == {"providers": [Expr("cluster")]}
    refs = output_references(source, {var: t for var, t, *_ in found})
    assert refs
    missing = [(v, p) for v, t, p in refs if p not in schema["resources"][t]["properties"] and p not in ("urn",)]
    assert not missing, missing
    project = yaml.safe_load((EXAMPLES / "typescript" / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "nodejs"
    assert (EXAMPLES / "typescript" / project["packages"]["mesh"]).resolve() == PLUGIN_DIR
    manifest = json.loads((EXAMPLES / "typescript" / "package.json").read_text())
    # the local SDK `pulumi package add` / `pulumi install` generates: in sdks/<name> (pulumi/pulumi
    # pkg/cmd/pulumi/packages/packages.go lines 125-137), named @pulumi/<name> without a namespace
    # (pkg/codegen/nodejs/gen.go genNPMPackageMetadata)
    assert manifest["dependencies"]["@pulumi/mesh"] == "file:sdks/mesh"
    assert 'import * as mesh from "@pulumi/mesh";' in source


def test_the_examples_inputs_are_accepted_by_the_components_own_checks():
    """The examples' inputs (literals) pass the components' checks, the stack file's: the CA's
    config and the SmiPolicies render."""
    from mesh_components.components.certificate_authority import config
    from mesh_components.components.smi_policies import plan

    program = yaml.safe_load((EXAMPLES / "yaml" / "Pulumi.yaml").read_text())
    found = {v: a for v, _, _, a, _ in ts_components((EXAMPLES / "typescript" / "index.ts").read_text())}
    assert found["ca"] == program["resources"]["ca"]["properties"]  # the two examples do the same
    cfg, _ = config("ca", found["ca"])
    assert (cfg.mesh, cfg.clusters, cfg.trust_domain) == ("linkerd", ("east",), "cluster.local")
    yaml_args = program["resources"]["policy"]["properties"]
    assert found["policy"] == yaml_args
    rendered = plan("policy", yaml_args)
    kinds = sorted({o["kind"] for o in rendered.objects})
    assert kinds == ["AuthorizationPolicy", "HTTPRoute", "MeshTLSAuthentication", "Server"], kinds
    assert rendered.namespaces  # default-inbound-policy patches on the existing Linkerd's namespaces


# ---------------------------------------------------------------------------------------------
# Construct: MeshCertificateAuthority alone, for a Linkerd installed by other means

CA_NAME = "ca"


def ca_inputs(**more) -> dict:
    return {"trustDomain": "cluster.local", "mesh": "linkerd", "clusters": ["east", "west"],
            "rootValidityDays": 3650, "intermediateValidityDays": 365, **more}


def documented_secret(token: str) -> set[str]:
    """The outputs of ``token`` the schema documents as secret (their docstring ends "Secret.")."""
    props = committed_schema()["resources"][token]["properties"]
    return {k for k, p in props.items() if re.search(r"\bSecret\.$", p.get("description", ""))}


def test_construct_the_ca_alone_registers_it_and_its_dynamic_resource_and_returns_its_material(plugin, engine):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    token = "mesh:index:MeshCertificateAuthority"
    answer = construct(plugin, engine, token, CA_NAME, ca_inputs())
    regs = engine.registered()

    # the component, and its one child: the dynamic resource holding the keys; nothing else (no
    # Kubernetes object, nothing on the cluster's provider)
    assert [(r.type, r.name) for _, r in regs] == [(token, CA_NAME), ("pulumi-python:dynamic:Resource", CA_NAME)]
    (component_urn, component), (dynamic_urn, dynamic) = regs
    assert component.parent == STACK_URN and not component.custom and answer.urn == component_urn
    assert dynamic.parent == component_urn and dynamic.custom
    assert "kubernetes" not in dynamic.provider
    assert {"intermediates", "roots"} <= set(dynamic.additionalSecretOutputs)
    given, _ = unwrap(downgrade(to_dict(dynamic.object)))
    assert (given["trust_domain"], given["mesh"], given["clusters"]) == ("cluster.local", "linkerd", ["east", "west"])
    assert (given["root_validity_days"], given["intermediate_validity_days"]) == (3650, 365)

    # the outputs: secret exactly where the schema says so, the rest plain
    raw = to_dict(answer.state)
    state = {k: unwrap(v)[0] for k, v in raw.items()}
    secret_now = {k for k, v in raw.items() if unwrap(v)[1]}
    assert secret_now == documented_secret(token) & set(raw) == {"intermediateKeys", "linkerdValues"}
    assert "istioCacerts" not in raw and "osmCaBundle" not in raw  # Linkerd's form only

    # the material is a real chain: the root the fingerprint names signs each cluster's
    # intermediate, whose key is the one returned
    roots = x509.load_pem_x509_certificates(state["trustBundle"].encode())
    assert len(roots) == 1 and state["multiRoot"] is False and state["stage"] == "none"
    root = roots[0]
    assert root.fingerprint(hashes.SHA256()).hex() == state["rootFingerprint"]
    assert x509.load_pem_x509_certificate(state["rootCert"].encode()) == root
    assert sorted(state["intermediateCerts"]) == ["east", "west"]
    for cluster in ("east", "west"):
        cert = x509.load_pem_x509_certificate(state["intermediateCerts"][cluster].encode())
        cert.verify_directly_issued_by(root)
        key = serialization.load_pem_private_key(state["intermediateKeys"][cluster].encode(), password=None)
        assert key.public_key() == cert.public_key()
        assert state["intermediateChains"][cluster].startswith(state["intermediateCerts"][cluster].strip())
        values = state["linkerdValues"][cluster]
        assert values["identityTrustAnchorsPEM"] == state["trustBundle"]
        assert values["identityTrustDomain"] == "cluster.local"
        assert values["identity"]["issuer"]["tls"] == {"crtPEM": state["intermediateCerts"][cluster],
                                                        "keyPEM": state["intermediateKeys"][cluster]}
        # no key in the clear anywhere else: not in a plain output, not in the registered outputs
        pem = state["intermediateKeys"][cluster]
        assert not any(contains_text(raw[k], pem) for k in raw if k not in secret_now)
        outputs = engine.outputs[component_urn]
        assert all(unwrap(v)[1] for v in outputs.values() if contains_text(v, pem))


def test_construct_the_ca_with_a_bad_field_fails_naming_component_and_field_before_registering(plugin, engine):
    from mesh_components.components.args import ArgsError
    from mesh_components.components.certificate_authority import config

    inputs = ca_inputs(keyAlgorithm="RSA_2048")
    with pytest.raises(ArgsError) as python:
        config(CA_NAME, inputs)
    with pytest.raises(grpc.RpcError) as failed:
        construct(plugin, engine, "mesh:index:MeshCertificateAuthority", CA_NAME, inputs)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.value.details() == str(python.value)
    assert f"MeshCertificateAuthority {CA_NAME}: keyAlgorithm: " in failed.value.details()
    assert engine.registered() == []


def outside_secrets(value: Any) -> Any:
    """A wire value with every secret (secret object, secret output value) replaced by "[secret]"."""
    if isinstance(value, dict) and (value.get(SIG) == SECRET_SIG or (value.get(SIG) == OUTPUT_SIG and value.get("secret"))):
        return "[secret]"
    if isinstance(value, dict):
        return {k: outside_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [outside_secrets(v) for v in value]
    return value


@pytest.mark.parametrize("sent_as_secret", [True, False], ids=["key-sent-secret", "key-sent-plain"])
def test_the_ca_s_outputs_feed_a_linkerd_control_plane_over_grpc_and_the_issuer_key_stays_secret(
        plugin, engine, sent_as_secret):
    """A program in another language wires the CA into ``LinkerdControlPlane``: the key arrives as
    a secret with its dependency on the CA (as the engine sends an Output of a secret,
    pkg/resource/plugin/provider_plugin.go Construct), or as a plain string a careless program
    passes, and either way lands in the issuer Secret and nowhere in the clear: not in any
    registration, not in the Construct response."""
    ca = construct(plugin, engine, "mesh:index:MeshCertificateAuthority", CA_NAME,
                   ca_inputs(clusters=["east"]))
    material = {k: unwrap(v)[0] for k, v in to_dict(ca.state).items()}
    key = material["intermediateKeys"]["east"]
    inputs = {"trustAnchorsPem": material["trustBundle"], "issuerCertPem": material["intermediateCerts"]["east"],
              "issuerKeyPem": secret(key) if sent_as_secret else key, "clusterName": "east", "trustDomain": "cluster.local",
              "gatewayApiCrds": "managed"}
    deps = {"issuerKeyPem": provider_pb2.ConstructRequest.PropertyDependencies(urns=[ca.urn])}
    answer = construct(plugin, engine, "mesh:index:LinkerdControlPlane", "linkerd", inputs, inputDependencies=deps)
    regs = engine.registered()

    component_urn = answer.urn
    assert regs[0][1].type == "mesh:index:LinkerdControlPlane" and regs[0][0] == component_urn
    children = [r for _, r in regs[1:]]
    assert children and all(r.parent == component_urn for r in children)
    assert all(r.provider == K8S_PROVIDER_REF for r in children if r.custom)
    for r in children:
        assert key.strip() not in json.dumps(outside_secrets(to_dict(r.object))), (r.type, r.name)
    assert key.strip() not in json.dumps(outside_secrets(to_dict(answer.state)))

    (issuer,) = [r for r in children if r.type == "kubernetes:core/v1:Secret"
                 and unwrap(to_dict(r.object))[0]["metadata"]["name"] == "linkerd-identity-issuer"]
    wire = to_dict(issuer.object)
    assert outside_secrets(wire)["stringData"] == "[secret]"
    assert {"data", "stringData"} <= set(issuer.additionalSecretOutputs)  # secret in its outputs too
    body, _ = unwrap(downgrade(wire))
    assert body["stringData"]["tls.key"].strip() == key.strip()
    assert body["stringData"]["tls.crt"].strip() == material["intermediateCerts"]["east"].strip()
    (control_plane,) = [r for r in children if r.type == "kubernetes:helm.sh/v3:Release"
                        and unwrap(to_dict(r.object))[0].get("chart") == "linkerd-control-plane"]
    values, _ = unwrap(downgrade(to_dict(control_plane.object)))
    assert values["values"]["identityTrustAnchorsPEM"].strip() == material["trustBundle"].strip()
    state, _ = unwrap(to_dict(answer.state))
    assert "linkerd-control-plane" in state["releases"]
