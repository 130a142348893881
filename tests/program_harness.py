"""Run the real ``__main__.py`` under Pulumi's unit-test mocks and record every registration.

``run_program(config)`` returns the list of :class:`Registration` (type, name, parent URN,
provider reference, dependencies, inputs, which inputs were secret, additional secret outputs) in
registration order. The mocks answer like a fresh ``pulumi up``: inputs become outputs; the CA
dynamic resource gets real-looking PEM outputs; StackReferences return a kubeconfig. Reads
(``Resource.get``) are answered as the cluster would: a Secret with a service-account token
(``token-<name>``) and ``ca.crt``, a Service with a load-balancer IP; ``run_program(..., reads=[])``
collects them as :class:`Read` records.
"""
from __future__ import annotations

import base64
import json
import runpy
from dataclasses import dataclass
from pathlib import Path

import pulumi
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc

ROOT = Path(__file__).resolve().parent.parent
SECRET_SIG = rpc._special_secret_sig if hasattr(rpc, "_special_secret_sig") else "1b47061264138c4ac30d75fd1eb44270"
FAKE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
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


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.resource_id and args.typ.startswith("kubernetes:"):  # a read of live state (Resource.get)
            outputs = dict(args.inputs)
            if args.typ == "kubernetes:core/v1:Secret":
                outputs["data"] = {"token": _b64(f"token-{args.resource_id}"), "ca.crt": _b64("fake-ca")}
            if args.typ == "kubernetes:core/v1:Service":
                outputs["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}
            return [args.resource_id, outputs]
        outputs = dict(args.inputs)
        if args.typ == "pulumi-python:dynamic:Resource":
            clusters = outputs.get("clusters") or []
            outputs.update({
                "root_cert_pem": "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n",
                "trust_bundle_pem": "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n",
                "root_fingerprint": "ab" * 32, "stage": outputs.get("rotation_stage", "none"),
                "multi_root": False,
                "intermediates": {c: {"cert_pem": f"cert-{c}", "chain_pem": f"chain-{c}",
                                      "key_pem": f"key-{c}", "not_after": "2027-01-01T00:00:00Z"} for c in clusters},
                "intermediate_fingerprints": {c: "cd" * 32 for c in clusters},
            })
        if args.typ == "pulumi:pulumi:StackReference":
            outputs = {"name": args.name, "outputs": {"kubeconfig": FAKE_KUBECONFIG}, "secretOutputNames": []}
        return [f"{args.name}-id", outputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


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


def run_program(config: dict, stack: str = "test", reads: list | None = None) -> list[Registration]:
    """Run ``__main__.py`` with ``config`` under mocks; return its registrations in order.
    ``reads``, when given, receives the program's reads (:class:`Read`) in order."""
    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config)

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    program()
    if reads is not None:
        reads.extend(monitor.reads)
    return monitor.registrations
