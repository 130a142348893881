"""Glue for ``tests/test_component_construct.py`` on top of ``tests/test_component_package.py``'s
engine, plugin and ``construct`` helpers (imported from there, not copied): what that file has no
form for.

- :class:`DryRun`: the plugin stub with every ``ConstructRequest`` sent as ``pulumi preview``
  sends it, ``dryRun: true`` (the engine copies ``req.Info.DryRun`` into the request: pulumi/pulumi
  ``sdk/go/common/resource/plugin/provider_plugin.go`` ``Construct``, line 2151 at 1b5949891b).
- :class:`PreviewEngine`: the test engine answering registrations as a preview does.
- :func:`run_python`: the same component in a Python program under the SDK's mocks, with the
  outputs it registers (``register_outputs``) recorded as well as its registrations.
"""
from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import provider_pb2, resource_pb2

from program_harness import FAKE_KUBECONFIG, Mocks, RecordingMonitor
from test_component_package import (SECRET_SIG, SIG, Engine, annotate_secrets, downgrade, new_urn, secret, to_dict,
                                    to_struct, unwrap)


class DryRun:
    """``stub`` (a ResourceProvider stub) whose ``Construct`` requests go out with ``dryRun``
    set, as the engine sends them during ``pulumi preview``; everything else as given."""

    def __init__(self, stub):
        self.stub = stub

    def Construct(self, request: provider_pb2.ConstructRequest, **kwargs):  # noqa: N802 (the gRPC method's name)
        request.dryRun = True
        return self.stub.Construct(request, **kwargs)


class PreviewEngine(Engine):
    """:class:`test_component_package.Engine` as it answers during a preview: nothing is created.

    - A custom resource gets no ID: the provider's preview Create returns none (pulumi/pulumi
      ``pkg/resource/deploy/step.go`` ``CreateStep.Apply`` calls ``Create`` with
      ``Preview: s.deployment.opts.DryRun``, lines 366-375 at 1b5949891b), and the SDK takes an
      empty ID as unknown.
    - The dynamic CA resource is checked (Check runs in a preview too) but not created: the
      Python dynamic provider announces no preview support (no ``Handshake``, and its ``Configure``
      answers only ``acceptSecrets: false``: ``pulumi/dynamic/__main__.py`` lines 207-215, SDK
      3.272.0), so the engine answers the
      preview Create with the checked inputs as the outputs
      (``sdk/go/common/resource/plugin/provider_plugin.go`` ``Create`` lines 1425-1440), secret
      where the input was, plus the ``additionalSecretOutputs``; the outputs the provider would
      compute (roots, intermediates) are absent, which the SDK resolves as unknown in a preview
      (``pulumi/runtime/rpc.py`` ``resolve_properties``).
    - Kubernetes objects get their inputs back (what pulumi-kubernetes' preview returns for the
      fields given; its computed fields, e.g. a Gateway's ``status``, are absent: unknown)."""

    def register(self, request):
        if request.type != "pulumi-python:dynamic:Resource":
            answer = super().register(request)
            if request.custom:
                answer.id = ""
            return answer
        urn = new_urn(request.parent, request.type, request.name)
        with self.lock:
            self.urns[len(self.registrations)] = urn
            self.registrations.append(request)
        inputs = downgrade(to_dict(request.object))
        checked = self.dynamic().Check(provider_pb2.CheckRequest(
            urn=urn, olds=struct_pb2.Struct(), news=to_struct(unwrap(inputs)[0])))
        assert not checked.failures, f"{urn}: Check failed: {checked.failures}"
        outs = annotate_secrets(to_dict(checked.inputs), inputs)
        for key in request.additionalSecretOutputs:
            if key in outs and not (isinstance(outs[key], dict) and outs[key].get(SIG) == SECRET_SIG):
                outs[key] = secret(outs[key])
        return resource_pb2.RegisterResourceResponse(urn=urn, id="", object=to_struct(outs))


def is_secret_value(value: struct_pb2.Value) -> bool:
    """Whether a Struct value is a secret as the SDK encodes one on the wire: an object whose
    ``4dabf18193072939515e22adb298388d`` key (``pulumi/runtime/rpc.py`` ``_special_sig_key``) holds
    ``1b47061264138c4ac30d75fd1eb44270`` (``_special_secret_sig``)."""
    return (value.HasField("struct_value") and SIG in value.struct_value.fields
            and value.struct_value.fields[SIG].string_value == SECRET_SIG)


def whole(value: Any) -> Any:
    """``value`` with whole-number floats as ints, through dicts and lists: numbers cross the
    wire as protobuf doubles both ways, so a comparison is made on this form."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [whole(v) for v in value]
    return value


class OutputsMonitor(RecordingMonitor):
    """The harness's recording monitor, also keeping what each component registers as its
    outputs (``RegisterResourceOutputs``), by URN, secrets unwrapped."""

    def __init__(self, mocks):
        super().__init__(mocks)
        self.outputs: dict[str, dict] = {}

    def RegisterResourceOutputs(self, request):  # noqa: N802
        self.outputs[request.urn] = unwrap(json_format.MessageToDict(request.outputs))[0]
        return super().RegisterResourceOutputs(request)


def run_python(cls: type, name: str, args: dict, mocks: Mocks | None = None):
    """``cls(name, args, opts=ResourceOptions(providers=[provider]))`` in a Python program under the
    SDK's mocks, ``provider`` the existing cluster's kubernetes provider: ``(registrations in
    order without the root Stack, the component's registered outputs)``."""
    import pulumi
    import pulumi_kubernetes as k8s

    mocks = mocks or Mocks()
    monitor = OutputsMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="test", preview=False, monitor=monitor)

    @pulumi.runtime.test
    def program():
        provider = k8s.Provider("existing-cluster", kubeconfig=FAKE_KUBECONFIG)
        component = cls(name, args, opts=pulumi.ResourceOptions(providers=[provider]))
        return component.urn

    program()
    regs = [r for r in monitor.registrations if r.type != "pulumi:pulumi:Stack"]
    (component,) = [r for r in regs if r.type == cls.TYPE and r.name == name]
    return regs, monitor.outputs.get(component.urn)
