"""What ``python -m mesh_components validate`` finds in a valid spec: the mesh-guardrails policy
pack run offline on the rendered stack, the topology the spec assumes, the prerequisites it needs.

A :class:`Finding` has a ``code`` (:data:`FINDING_CODES`: the pack's policy names, such as
``mtls-strict`` or ``no-allow-all``, and three of ``validate``'s own), a ``severity``, a
``path`` (the spec field that causes it when one does, else the rendered object, as
``render --out DIR`` writes it under ``DIR``), a ``message`` and, when ``mesh.validation.suppress``
names its code, ``suppressed`` with the ``reason``.

Severities, like ``istioctl analyze``'s Error/Warning/Info
(https://istio.io/latest/docs/reference/commands/istioctl/#istioctl-analyze):

- ``error``: a violation of a policy the pack enforces as ``mandatory`` (or ``remediate``, which
  pulumi-policy reports as mandatory for a policy without remediation): ``pulumi up --policy-pack
  policies/mesh-guardrails`` would stop on it, so the stack is not deployable and ``validate`` exits 1,
  as for any other input ``pulumi up`` refuses;
- ``warning``: an ``advisory`` policy's violation (Pulumi prints it and goes on), or a topology
  assumption the spec does not confirm (``unconfirmed-flat-network``): exit 0, or 2 with ``--strict``;
- ``notice``: something the stack needs but does not create (``ingress-prerequisite``,
  ``linkerd-probe-paths``): never changes the exit code.

The pack's enforcement levels are its own (every policy ``mandatory``: ``policies/mesh-guardrails/
__main__.py``) overlaid with a policy pack config file, the one ``pulumi preview
--policy-pack-config`` takes: ``validate --policy-pack-config FILE``, else the
``policies/mesh-guardrails/config.<stack>.json`` of the stack's project when there is one (the file
the workflows give the pack for that stack: ``config.dev.json`` for ``dev``).

Suppression (``mesh.validation.suppress: [{code, reason}]``, like ``istioctl analyze --suppress``)
silences findings of a code; it cannot silence an ``error``: what the pack enforces stops
``pulumi up`` whatever ``validate`` says, so a suppression of a code the pack config in force makes
mandatory does not apply, and the finding says so (make the policy ``advisory`` for that stack in its
pack config instead, as ``config.dev.json`` does).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from . import guardrails
from ..spec.errors import MeshError, Problem
from ..core.meta import is_patch

SEVERITIES = ("error", "warning", "notice")
"""Most severe first; the order findings are reported in."""

OWN_CODES: dict[str, str] = {
    "unconfirmed-flat-network": "Clusters in different regions share a network that mesh.flatNetworks does not "
                                "confirm as flat (spec.topology_warnings).",
    "ingress-prerequisite": "A Secret or issuer the ingress needs and the stack does not create "
                            "(spec.ingress_notices).",
    "linkerd-probe-paths": "A port with Linkerd HTTPRoutes and no probePaths: kubelet httpGet probes on it "
                           "would be refused (linkerd.probe_notices).",
    "telemetry-prerequisite": "What mesh.telemetry's objects need and the stack does not create: the Prometheus "
                              "Operator's CRDs, the monitors' namespace (telemetry.notices).",
    "spire-prerequisite": "What federated SPIRE needs and the stack does not create: each cluster's bundle "
                          "endpoint, reachable by the other clusters (spire.notices).",
}
"""``validate``'s own codes, beside the pack's policies."""

FINDING_CODES: dict[str, str] = {**{n: guardrails.DESCRIPTIONS[n] for n in guardrails.POLICY_NAMES}, **OWN_CODES}
"""Every code a finding can have (and ``mesh.validation.suppress[].code`` can name) -> what it means."""

PACK_DIR = Path("policies") / "mesh-guardrails"
"""Where the policy pack sits in a project (beside ``Pulumi.yaml``)."""


@dataclass(frozen=True)
class Finding:
    """One finding. ``resources``: the rendered objects it is about, as ``<cluster>/<file>``
    under the ``render --out`` folder (``mesh.ca`` for the CA; empty for a stack policy's)."""

    code: str
    severity: str
    path: str
    message: str
    resources: tuple[str, ...] = ()
    suppressed: bool = False
    reason: str | None = None

    def line(self) -> str:
        """The text form: ``path: severity: message [code]``."""
        return f"{self.path}: {self.severity}: {self.message} [{self.code}]"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{code, severity, path, message, resources, suppressed, reason}`` (every
        key always present; ``reason`` null unless suppressed), plus ``file``, ``line`` and
        ``column`` when the path carries a place (:func:`place_fields`)."""
        return {"code": self.code, "severity": self.severity, **place_fields(self.path), "message": self.message,
                "resources": list(self.resources), "suppressed": self.suppressed, "reason": self.reason}


def place_fields(path: str) -> dict[str, Any]:
    """The JSON fields of a problem or finding path: ``{"path": path}``, or, for a path the loader
    placed in a file (``file:line:column: mesh.x``, ``yaml_source.split_place``), ``{"path":
    "mesh.x", "file", "line", "column"}`` (line and column 1-based, as editors count). A place with
    no path after it (a file that is not valid YAML) gives the file as ``path``."""
    from ..spec.yaml_source import split_place

    place = split_place(path)
    if place is None:
        return {"path": path}
    file, line, column, inner = place
    return {"path": inner if inner is not None else file, "file": file, "line": line, "column": column}


def problem_dict(path: str, message: str) -> dict[str, Any]:
    """The JSON form of an input problem (``validate --format json``'s ``problems[]``):
    ``{path, message}`` plus ``file``, ``line``, ``column`` when known (:func:`place_fields`)."""
    fields = place_fields(path)
    return {"path": fields.pop("path"), "message": message, **fields}


# ---------------------------------------------------------------------------------------------
# the stack as Pulumi presents it to the pack


class PulumiResource(NamedTuple):
    """One resource as the policy pack receives it: ``resource_type`` (Pulumi type token) and
    ``props`` (its inputs), plus where it comes from: ``cluster`` (None for the CA), ``where``
    (``<cluster>/<file>`` of ``render --out``, or ``mesh.ca``) and ``target`` (``(kind,
    apiVersion, namespace, name)`` as ``mesh.overrides[]`` name it, ``kind`` ``HelmRelease`` for a
    release)."""

    resource_type: str
    props: dict
    cluster: str | None
    where: str
    target: tuple


_CORE_FIELDS = {"Namespace": (), "Secret": ("type", "stringData", "data"), "ConfigMap": ("data",),
                "Service": ("spec",), "ServiceAccount": ()}
"""The fields besides ``metadata`` that ``components.register_object`` passes for each core kind."""


def _object_resource(obj: dict) -> tuple[str, dict]:
    """``(type, props)`` of a rendered object as ``components.register_object`` registers it:
    namespaces as ``core/v1:NamespacePatch`` (forced: ``components.namespace_patch_metadata``),
    application Service patches as ``ServicePatch``, other core kinds typed (their ``apiVersion``
    and ``kind`` set by the class: pulumi-kubernetes 4.34.2 ``core/v1/NamespacePatch.py:165-171``),
    custom resource patches as ``apiextensions.CustomResourcePatch`` (type ``kubernetes:<apiVersion>:
    <kind>Patch``, ``apiextensions/CustomResourcePatch.py:147-154``) and every other object as
    ``apiextensions.CustomResource`` (``kubernetes:<apiVersion>:<kind>``, ``CustomResource.py:147-154``).
    Inputs that are None are not sent (pulumi 3.272.0 ``runtime/rpc.py`` ``serialize_properties``:
    "We treat properties that serialize to None as if they don't exist")."""
    api, kind = obj["apiVersion"], obj["kind"]
    group, _, version = api.rpartition("/")
    meta = obj["metadata"]
    # the fields register_object passes on for each kind (the typed classes take no others)
    passed = _CORE_FIELDS.get(kind, ("spec",)) if api == "v1" else ("spec",)
    fields = {k: obj.get(k) for k in passed}
    if api == "v1" and kind == "Namespace":
        meta = {**meta, "annotations": {**(meta.get("annotations") or {}), "pulumi.com/patchForce": "true"}}
        token = "kubernetes:core/v1:NamespacePatch"
    elif api == "v1":
        token = f"kubernetes:core/v1:{kind}Patch" if kind == "Service" and is_patch(obj) else f"kubernetes:core/v1:{kind}"
    elif is_patch(obj):
        meta = {**meta, "annotations": {**(meta.get("annotations") or {}), "pulumi.com/patchForce": "true"}}
        token = f"kubernetes:{group}/{version}:{kind}Patch"
    else:
        token = f"kubernetes:{group}/{version}:{kind}"
    props = {"apiVersion": api, "kind": kind, "metadata": meta, **fields}
    return token, {k: v for k, v in props.items() if v is not None}


def _release_props(rel) -> dict:
    """The inputs ``components._release`` gives ``k8s.helm.v3.Release`` (camelCase, as the SDK
    sends them; ``compat: "true"`` is the class's own, pulumi-kubernetes 4.34.2
    ``helm/v3/Release.py:1118``). The provider's Check adds defaults (``timeout``) no policy reads."""
    oci = rel.repository.startswith("oci://")
    props = {"chart": f"{rel.repository}/{rel.chart}" if oci else rel.chart, "compat": "true", "name": rel.name,
             "namespace": rel.namespace, "values": rel.values, "version": rel.version}
    if not oci:
        props["repositoryOpts"] = {"repo": rel.repository}
    return props


def pulumi_resources(spec, states: dict) -> list[PulumiResource]:
    """The resources ``ServiceMesh`` registers for ``spec`` rendered as ``states``
    (``render.render_mesh``), as ``(resource_type, props)`` the way the pack receives them: the CA
    dynamic resource (``pulumi-python:dynamic:Resource`` with the ``CAConfig`` inputs; secret
    inputs and outputs unknown offline), then per cluster every object (``_object_resource``),
    Helm release (``kubernetes:helm.sh/v3:Release``, ``_release_props``) and remote manifest
    (``kubernetes:yaml/v2:ConfigFile``). Deploy-time values stay ``Slot`` objects, where a first
    preview gives the pack unknowns; the props share the rendered objects (never modify them).
    Providers and component resources are left out: no policy reads them, and a provider's inputs
    hold its kubeconfig."""
    from ..spec.names import object_filenames
    from ..core.render import DEPLOY_TIME_DIR, RELEASES_DIR, holds_deploy_time_values

    ca = {k: v for k, v in spec.ca_config().to_inputs().items() if v is not None}
    out = [PulumiResource("pulumi-python:dynamic:Resource", {**ca, "__provider": "<serialized MeshCAProvider>"},
                          None, "mesh.ca", ("MeshCertificateAuthority", None, None, None))]
    for cluster, st in states.items():
        for o, fname in zip(st.objects, object_filenames(st.objects)):
            # not copied: no policy writes, and a Slot stands where the pack would see an unknown
            token, props = _object_resource(o)
            meta = o["metadata"]
            # where render --out writes it (render.write_tree): objects holding deploy-time values apart
            where = f"{cluster}/{DEPLOY_TIME_DIR}/{fname}" if holds_deploy_time_values(o) else f"{cluster}/{fname}"
            out.append(PulumiResource(token, props, cluster, where,
                                      (o["kind"], o["apiVersion"], meta.get("namespace"), meta["name"])))
        for rel in st.releases:
            out.append(PulumiResource("kubernetes:helm.sh/v3:Release", _release_props(rel), cluster,
                                      f"{cluster}/{RELEASES_DIR}/helm-releases.yaml#{rel.name}",
                                      ("HelmRelease", None, rel.namespace, rel.name)))
        for m in st.remote_manifests:
            out.append(PulumiResource("kubernetes:yaml/v2:ConfigFile", {"file": m.url}, cluster,
                                      f"{cluster}/{RELEASES_DIR}/remote-manifests.yaml#{m.name}",
                                      ("ConfigFile", None, None, m.name)))
    return out


# ---------------------------------------------------------------------------------------------
# the pack's configuration for a stack


def default_policy_pack_config(stack_file: Path) -> Path | None:
    """``<project>/policies/mesh-guardrails/config.<stack>.json`` for ``<...>/Pulumi.<stack>.yaml``
    when that file exists (``<project>``: the folder holding ``Pulumi.yaml``), else None."""
    from ..spec import project_root_for

    name = stack_file.name
    if not (name.startswith("Pulumi.") and name.endswith((".yaml", ".yml"))):
        return None
    stack = name[len("Pulumi."):].rpartition(".")[0]
    candidate = project_root_for(stack_file) / PACK_DIR / f"config.{stack}.json"
    return candidate if stack and candidate.is_file() else None


def read_policy_pack_config(path: Path | None, shown: str | None = None) -> guardrails.PolicyPackConfig:
    """The pack's reconciled configuration from the config file ``path`` (None: the pack's own
    levels). ``shown``: how to name the file in problems and output (default ``str(path)``).
    Raises :class:`MeshError` (``<file>: message``) for a file that cannot be read, is not JSON or
    that :func:`guardrails.parse_policy_pack_config` refuses."""
    if path is None:
        return guardrails.PolicyPackConfig()
    where = shown or str(path)
    try:
        if path.stat().st_size > 1 << 20:
            raise MeshError([(where, "larger than 1 MB: a policy pack config is a small JSON object")])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MeshError([(where, "no such file: give the policy pack config file (JSON) that "
                                 "'pulumi preview --policy-pack-config' takes")]) from None
    except IsADirectoryError:
        raise MeshError([(where, "is a folder: give the policy pack config file (JSON)")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise MeshError([(where, f"cannot be read: {e}")]) from None
    try:
        data = json.loads(text) if text.strip() else None  # Pulumi allows an empty file
    except json.JSONDecodeError as e:
        raise MeshError([(where, f"not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}")]) from None
    try:
        return guardrails.parse_policy_pack_config(data, where)
    except guardrails.PolicyConfigError as e:
        raise MeshError(e.problems) from None


# ---------------------------------------------------------------------------------------------
# findings


def _severity(level: str) -> str:
    return "error" if level in guardrails.BLOCKING_LEVELS else "warning"


def _override_paths(spec, res: PulumiResource) -> list[str]:
    """``mesh.overrides[i]`` of every override that patches ``res`` (the matching of
    ``render.apply_overrides``: kind, name, namespace, apiVersion when given, clusters)."""
    kind, api, ns, name = res.target
    if kind == "HelmRelease":
        same = lambda o: o.namespace is None or o.namespace == ns  # noqa: E731
    else:
        same = lambda o: o.namespace == ns and (o.api_version is None or o.api_version == api)  # noqa: E731
    return [f"mesh.overrides[{i}]" for i, o in enumerate(spec.overrides)
            if res.cluster in (o.clusters or spec.cluster_names()) and o.kind == kind and o.name == name and same(o)]


_SPEC_FIELDS = {"ca-limits": "mesh.ca", "single-trust-domain": "mesh.trustDomain"}
"""The spec field behind a policy whose input the spec alone decides."""


def _violations(loaded, states, config: guardrails.PolicyPackConfig):
    resources = pulumi_resources(loaded.spec, states)
    return resources, guardrails.check_resources(resources, config)


def guardrail_findings(loaded, states: dict, config: guardrails.PolicyPackConfig) -> list[Finding]:
    """The pack's violations on ``states`` (the render of ``loaded``) as findings, one per policy,
    path and message (a violation repeated in several clusters is one finding listing each
    rendered object). The path: the override(s) that cause it, when rendering without
    ``mesh.overrides`` makes it go away (``mesh.overrides[i]`` patching that object, or
    ``mesh.overrides`` for a stack policy's); else the spec field a policy's input comes from
    (``mesh.ca``, ``mesh.trustDomain``, ``mesh.ingress`` for the ingress policies); else the
    rendered object (``<cluster>/<file>``), or ``mesh`` for a stack policy."""
    spec = loaded.spec
    resources, violations = _violations(loaded, states, config)
    if not violations:
        return []
    base: set | None = None
    if spec.overrides:
        from ..core.render import render_mesh

        try:
            plain = loaded._replace(spec=spec.model_copy(update={"overrides": []}))  # a fleet member stays one
            plain_res, plain_v = _violations(plain, render_mesh(plain), config)
            base = {(v.policy, v.message, None if v.resource is None else plain_res[v.resource].where)
                    for v in plain_v}
        except MeshError:
            base = None
    grouped: dict[tuple, list[str]] = {}
    for v in violations:
        res = None if v.resource is None else resources[v.resource]
        where = None if res is None else res.where
        if base is not None and (v.policy, v.message, where) not in base:
            paths = _override_paths(spec, res) if res is not None else []
            path = paths[0] if paths else "mesh.overrides"
        elif v.policy in _SPEC_FIELDS:
            path = _SPEC_FIELDS[v.policy]
        elif v.policy.startswith("ingress-") and spec.ingress is not None:
            path = "mesh.ingress"
        else:
            path = where or "mesh"
        key = (v.policy, _severity(v.level), path, v.message)
        grouped.setdefault(key, [])
        if where and where not in grouped[key]:
            grouped[key].append(where)
    return [Finding(code, severity, path, message, tuple(wheres))
            for (code, severity, path, message), wheres in grouped.items()]


def spec_findings(loaded, states: dict) -> list[Finding]:
    """The topology warnings (``unconfirmed-flat-network``) and notices (``ingress-prerequisite``,
    ``linkerd-probe-paths``, ``telemetry-prerequisite``, ``spire-prerequisite``) ``validate`` prints, as findings."""
    from ..spec import ingress_notices, topology_warnings

    spec = loaded.spec
    out = [Finding("unconfirmed-flat-network", "warning", p, m) for p, m in topology_warnings(spec)]
    out += [Finding("ingress-prerequisite", "notice", p, m) for p, m in ingress_notices(spec)]
    if spec.backend.type == "linkerd":
        from ..meshes.linkerd import probe_notices
        notices = sorted({n for st in states.values() for n in probe_notices(spec, st.objects)})
        out += [Finding("linkerd-probe-paths", "notice", p, m) for p, m in notices]
    from ..core.telemetry import notices as telemetry_notices

    out += [Finding("telemetry-prerequisite", "notice", p, m) for p, m in telemetry_notices(spec, states)]
    from ..core import spire

    out += [Finding("spire-prerequisite", "notice", p, m) for p, m in spire.notices(spec)]
    return out


def unhonoured_suppression(code: str, index: int, config: guardrails.PolicyPackConfig) -> str | None:
    """Why ``mesh.validation.suppress[index]`` (for ``code``) does not apply under ``config``: a code
    the pack enforces (mandatory or remediate) stops ``pulumi up`` whatever ``validate`` says, so its
    findings stay errors; None when the suppression applies. The same stack file meets several pack
    configs (config.dev.json lowers ingress-tls to advisory for dev; a plain ``--policy-pack-config``
    may not), so this is said on the finding, never refused as bad input."""
    level = config.levels.get(code)
    if level not in guardrails.BLOCKING_LEVELS:
        return None
    where = f"the pack config {config.source}" if config.source else "the pack's own levels"
    return (f"mesh.validation.suppress[{index}] does not apply: {code!r} is {level} in {where}, and pulumi up "
            f"--policy-pack policies/mesh-guardrails stops on its violations whatever validate says; fix what it "
            f"finds, or make it advisory for this stack in its policy pack config "
            f"({PACK_DIR.as_posix()}/config.<stack>.json, as config.dev.json does)")


def suppress(findings: list[Finding], spec, config: guardrails.PolicyPackConfig | None = None) -> list[Finding]:
    """``findings`` with those of a code in ``mesh.validation.suppress`` marked suppressed (with
    the reason), most severe first (stable within a severity). A code ``config`` enforces is not
    suppressed: its findings keep their severity and say why (:func:`unhonoured_suppression`)."""
    entries = {s.code: (i, s.reason) for i, s in enumerate(spec.validation.suppress)}
    out = []
    for f in findings:
        if f.code not in entries:
            out.append(f)
            continue
        index, reason = entries[f.code]
        why = unhonoured_suppression(f.code, index, config) if config is not None else None
        out.append(Finding(f.code, f.severity, f.path, f"{f.message} ({why})", f.resources) if why else
                   Finding(f.code, f.severity, f.path, f.message, f.resources, True, reason))
    return sorted(out, key=lambda f: SEVERITIES.index(f.severity))


def validation_findings(loaded, states: dict, config: guardrails.PolicyPackConfig) -> list[Finding]:
    """Every finding of ``validate`` for ``loaded`` rendered as ``states``: the guardrails', then
    the spec's own, suppression applied under ``config`` (:func:`suppress`)."""
    return suppress(guardrail_findings(loaded, states, config) + spec_findings(loaded, states), loaded.spec, config)


def counts(findings: list[Finding]) -> dict[str, int]:
    """``{error, warning, notice, suppressed}``: unsuppressed findings per severity, and suppressed ones."""
    out = {s: sum(1 for f in findings if f.severity == s and not f.suppressed) for s in SEVERITIES}
    out["suppressed"] = sum(1 for f in findings if f.suppressed)
    return out


def exit_code(findings: list[Finding], strict: bool) -> int:
    """1 when an unsuppressed error remains (the pack would stop ``pulumi up``); else 2 with
    ``strict`` and an unsuppressed warning; else 0. Notices never count."""
    c = counts(findings)
    if c["error"]:
        return 1
    return 2 if strict and c["warning"] else 0
