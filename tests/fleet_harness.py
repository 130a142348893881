"""Fleet stacks under Pulumi's mocks: the real ``__main__.py`` per stack, stack outputs kept in a
fake backend between runs, as the engine's builtin ``pulumi:pulumi:readStackOutputs`` gives them
(pulumi/pulumi v3.259.0 ``pkg/resource/deploy/builtins.go`` lines 372-419: ``outputs`` with
``secretOutputNames``; an error for a stack the backend does not have, ``GetStackOutputs``).

:func:`run_stack` runs one stack's program with its config and returns its registrations and its
exports (the root ``Stack``'s ``RegisterResourceOutputs``), storing the exports in the backend, so
a later run of another stack reads them, as a later ``pulumi up`` of a stack that references it.
"""
from __future__ import annotations

import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from program_harness import ROOT, SECRET_SIG, EngineState, Mocks, RecordingMonitor, TEST_SECRET, _unwrap


@dataclass
class Backend:
    """Stack name -> ``(outputs, secret output names)``; ``reads``: the stacks each run read."""

    stacks: dict = field(default_factory=dict)
    reads: list = field(default_factory=list)
    resources: dict = field(default_factory=dict)
    """Stack name -> its stored resources, ``{urn: {type, outputs}}``, as
    ``pulumi:pulumi:readStackResourceOutputs`` answers (pulumi/pulumi v3.259.0
    ``pkg/backend/backend.go`` ``GetStackResourceOutputs``)."""


def _secret_keys(struct) -> list[str]:
    return sorted(k for k, v in struct.fields.items()
                  if v.HasField("struct_value") and v.struct_value.fields.get(rpc._special_sig_key) is not None
                  and v.struct_value.fields[rpc._special_sig_key].string_value == SECRET_SIG)


class FleetMocks(Mocks):
    def __init__(self, backend: Backend, state: EngineState | None = None):
        super().__init__(state)
        self.backend = backend

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "pulumi:pulumi:readStackOutputs":
            name = args.args["name"]
            self.backend.reads.append(name)
            if name not in self.backend.stacks:
                raise Exception(f"failed to read stack outputs: stack '{name}' not found")
            outputs, secret = self.backend.stacks[name]
            return {"name": name, "outputs": outputs, "secretOutputNames": sorted(secret)}
        if args.token == "pulumi:pulumi:readStackResourceOutputs":
            name = args.args["stackName"]
            return {"name": name, "outputs": self.backend.resources.get(name, {})}
        return super().call(args)


def run_stack(config: dict, stack: str, backend: Backend, state: EngineState | None = None,
              reads: list | None = None):
    """Run ``__main__.py`` as ``stack`` with ``config`` (``{key: JSON or text}``); return
    ``(registrations, exports)`` and store the exports (and which were secret) in ``backend``."""
    mocks = FleetMocks(backend, state)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config)
    exported: dict[str, pulumi.Output] = {}

    # the mocks' test runner never finishes the root Stack, whose RegisterResourceOutputs carries the
    # exports in a real run: record what the program exports instead, secretness and all
    @pulumi.runtime.test
    def program():
        real = pulumi.export
        pulumi.export = lambda name, value: exported.__setitem__(name, pulumi.Output.from_input(value))
        try:
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        finally:
            pulumi.export = real
        return pulumi.Output.all(*exported.values())

    program()
    values = {k: _unwrap(_sync_await(o.future())) for k, o in exported.items()}
    secret = {k for k, o in exported.items() if _sync_await(o.is_secret())}
    if reads is not None:
        reads.extend(monitor.reads)
    backend.stacks[stack] = (values, secret)
    return [r for r in monitor.registrations if r.type != "pulumi:pulumi:Stack"], values


def fleet_configs(mesh: dict, root: str = "prod", pattern: str | None = None, mesh_file: str | None = None,
                  tmp: Path | None = None) -> tuple[dict, dict]:
    """``(root config, {cluster: cluster stack config})`` of ``mesh`` as a fleet. The spec is
    written to a root stack file (``mesh_file``, default ``tmp/Pulumi.<root>.yaml``) that every
    cluster stack names as ``meshFile``, as ``fleet init`` writes them."""
    fleet_root = {"role": "root", **({"clusterStacks": pattern} if pattern else {})}
    path = Path(mesh_file) if mesh_file else Path(tmp) / f"Pulumi.{root}.yaml"
    if not mesh_file:
        path.write_text(yaml.safe_dump({"config": {"service-mesh:fleet": fleet_root, "service-mesh:mesh": mesh}},
                                       sort_keys=False))
    root_config = {"service-mesh:mesh": json.dumps(mesh), "service-mesh:fleet": json.dumps(fleet_root)}
    for rule in mesh.get("egress") or []:
        key = (rule.get("credential") or {}).get("secretConfig")
        if key:
            root_config[f"service-mesh:{key}"] = TEST_SECRET
    clusters = {}
    for c in mesh["clusters"]:
        cfg = {"service-mesh:fleet": json.dumps({"role": "cluster", "root": root, "cluster": c["name"],
                                                 "meshFile": str(path.resolve())})}
        cfg.update({k: v for k, v in root_config.items() if k not in ("service-mesh:mesh", "service-mesh:fleet")})
        clusters[c["name"]] = cfg
    return root_config, clusters
