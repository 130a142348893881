"""``MeshCertificateAuthority``: a Pulumi dynamic resource over the pure core in :mod:`mesh_components.ca`.

Engine type ``pulumi-python:dynamic:Resource``. Inputs are the :class:`~mesh_components.ca.CAConfig`
fields as snake_case keys (``trust_domain``, ``mesh``, ``clusters``, ``key_algorithm``,
``root_validity_days``, ``intermediate_validity_days``, ``rotation_window_days``, ``mode``,
``root_generation``, ``rotation_stage``, ``overlap_days``, ``vault_*``, ``mesh_name``), so a
policy pack can read them. They also include the secret inputs ``root_cert_pem``, ``root_key_pem``,
``intermediates`` and ``vault_token``, and ``stage_plan``, a sentence ``check`` computes that says
what the requested stage does. It shows in ``pulumi preview`` when the stage changes. The Python
SDK's ``DiffResult`` carries no detailed diff, so a preview cannot show per-property reasons.

Outputs (besides the config echo): ``root_cert_pem`` (the root that signs now), ``trust_bundle_pem``
(every trusted root), ``root_fingerprint`` (sha256 hex), ``root_not_after``, ``stage``,
``stage_description``, ``stage_applied_at``, ``signer_generation``, ``multi_root`` (true while two
roots are trusted), ``intermediates`` (cluster -> ``{cert_pem, chain_pem, key_pem, not_after}``),
``intermediate_certs`` / ``intermediate_chains`` (cluster -> PEM, no keys),
``intermediate_fingerprints``, ``roots`` (every trusted root with its key when the key is held
here), ``notices`` and ``last_change``. ``intermediates`` and ``roots`` hold private keys and are
listed in ``additional_secret_outputs`` (pulumi/pulumi#3012), so they are encrypted in state.

Dynamic-provider rules (https://www.pulumi.com/docs/iac/concepts/resources/dynamic-providers/ and
the issues named in DESIGN.md): the provider is importable and importing this module creates no
resources. It captures only an optional clock (tests inject one to travel in time); the Vault
client and its HTTP session are built inside each method. Inputs arrive as plaintext. ``update``
returns every output. ``read`` rebuilds the outputs from state and returns
``ReadResult(id, outs, inputs)`` for refresh.
"""
from __future__ import annotations

import datetime as _dt
import uuid
from typing import Any, Callable, Mapping, Optional

import pulumi
from pulumi import Output, ResourceOptions
from pulumi.dynamic import (CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider,
                            UpdateResult)

from .ca import (CONFIG_FIELDS, FIELD_PATHS, CAConfig, CAError, CAState, ClusterCAMaterial, IntermediateRecord,
                 Plan, RootRecord, SuppliedMaterial, apply_plan, check_stage_transition, fingerprint, iso,
                 parse_iso, plan_changes, stage_description, validate_ca_config, validate_supplied)

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""``pulumi.runtime.rpc.UNKNOWN``: how an unknown value (during preview) reaches a dynamic provider."""

SECRET_INPUTS = ("root_cert_pem", "root_key_pem", "intermediates", "vault_token")
SECRET_OUTPUTS = ("intermediates", "roots")
"""Outputs that hold private keys. They are passed as ``additional_secret_outputs``."""
OUTPUTS = ("root_cert_pem", "trust_bundle_pem", "root_fingerprint", "root_not_after", "stage",
           "stage_description", "stage_applied_at", "signer_generation", "multi_root", "intermediates",
           "intermediate_certs", "intermediate_chains", "intermediate_fingerprints", "roots", "notices",
           "last_change", "state_version")
STATE_VERSION = 1


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _has_unknown(v: Any) -> bool:
    if isinstance(v, str):
        return v == UNKNOWN
    if isinstance(v, Mapping):
        return any(_has_unknown(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(_has_unknown(x) for x in v)
    return False


def config_from_inputs(inputs: Mapping[str, Any]) -> CAConfig:
    """The :class:`CAConfig` in provider inputs (or outputs, which echo it)."""
    return CAConfig.from_inputs(inputs)


def supplied_from_inputs(inputs: Mapping[str, Any]) -> SuppliedMaterial:
    """The secret inputs as :class:`SuppliedMaterial` (plaintext: dynamic providers receive secrets unwrapped)."""
    inter = inputs.get("intermediates")
    return SuppliedMaterial(root_cert_pem=inputs.get("root_cert_pem") or None,
                            root_key_pem=inputs.get("root_key_pem") or None,
                            intermediates=dict(inter) if isinstance(inter, Mapping) and inter else None,
                            vault_token=inputs.get("vault_token") or None)


def state_to_outputs(cfg: CAConfig, state: CAState, plan: Plan | None = None,
                     previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every output of the resource for ``state``: the config echo plus the CA outputs (see module docstring)."""
    signer = state.signer
    outs: dict[str, Any] = cfg.to_inputs()
    outs.update({
        "root_generation": state.root_generation,
        "rotation_stage": state.stage,
        "mode": state.mode,
        "root_cert_pem": signer.cert_pem,
        "trust_bundle_pem": state.trust_bundle_pem,
        "root_fingerprint": signer.fingerprint,
        "root_not_after": iso(signer.not_after),
        "stage": state.stage,
        "stage_description": stage_description(state.stage, state.root_generation),
        "stage_applied_at": iso(state.stage_applied_at),
        "signer_generation": state.signer_generation,
        "multi_root": state.multi_root,
        "intermediates": {c: {"cert_pem": r.cert_pem, "chain_pem": r.chain_pem, "key_pem": r.key_pem,
                              "not_after": iso(r.not_after)} for c, r in state.intermediates.items()},
        "intermediate_certs": {c: r.cert_pem for c, r in state.intermediates.items()},
        "intermediate_chains": {c: r.chain_pem for c, r in state.intermediates.items()},
        "intermediate_fingerprints": {c: r.fingerprint for c, r in state.intermediates.items()},
        "roots": [{"generation": r.generation, "cert_pem": r.cert_pem, "key_pem": r.key_pem,
                   "fingerprint": r.fingerprint, "not_after": iso(r.not_after)} for r in state.roots],
        "notices": list(plan.notices) if plan else list((previous or {}).get("notices") or []),
        "last_change": plan.describe() if plan else (previous or {}).get("last_change", ""),
        "state_version": STATE_VERSION,
    })
    return outs


def state_from_outputs(outs: Mapping[str, Any] | None) -> CAState | None:
    """Rebuild :class:`CAState` from stored outputs; ``None`` when there is none (a fresh resource)."""
    if not outs or not outs.get("roots"):
        return None
    roots = tuple(RootRecord(int(r["generation"]), r["cert_pem"], r.get("key_pem") or None) for r in outs["roots"])
    inter = {c: IntermediateRecord(c, v["cert_pem"], v["key_pem"], v["chain_pem"])
             for c, v in (outs.get("intermediates") or {}).items()}
    return CAState(mode=outs.get("mode", "managed"), root_generation=int(outs["root_generation"]),
                   stage=outs.get("stage") or "none", stage_applied_at=parse_iso(outs["stage_applied_at"]),
                   roots=tuple(sorted(roots, key=lambda r: r.generation)),
                   signer_generation=int(outs["signer_generation"]), intermediates=inter)


def _property_for(path: str) -> str:
    for f, p in FIELD_PATHS.items():
        if path == p or path.startswith(p + "[") or path.startswith(p + "."):
            return f
    return path.split(".")[-1]


class MeshCAProvider(ResourceProvider):
    """The dynamic provider. ``clock``: a zero-argument callable returning an aware ``datetime``
    (default: the real UTC clock). It must be picklable by dill, e.g. a module-level class instance."""

    serialize_as_secret_always = True

    def __init__(self, clock: Optional[Callable[[], _dt.datetime]] = None) -> None:
        super().__init__()
        self.clock = clock

    # -- helpers (no state kept between calls) -------------------------------------------------

    def _now(self) -> _dt.datetime:
        t = self.clock() if self.clock is not None else _utcnow()
        return t.replace(tzinfo=_dt.timezone.utc) if t.tzinfo is None else t

    @staticmethod
    def _signer(cfg: CAConfig, supplied: SuppliedMaterial):
        if cfg.mode != "vault":
            return None
        from .vault import VaultPKIClient  # built per call: no client captured by the provider
        return VaultPKIClient(address=cfg.vault_address or "", token=supplied.vault_token or "", mount=cfg.vault_mount)

    def plan(self, olds: Mapping[str, Any] | None, news: Mapping[str, Any]) -> Plan:
        """The :class:`~mesh_components.ca.Plan` for stored outputs ``olds`` and inputs ``news`` at the provider's clock."""
        return plan_changes(config_from_inputs(news), state_from_outputs(olds), self._now(), supplied_from_inputs(news))

    def _reconcile(self, olds: Mapping[str, Any] | None, news: Mapping[str, Any]) -> dict[str, Any]:
        cfg, supplied, now = config_from_inputs(news), supplied_from_inputs(news), self._now()
        state = state_from_outputs(olds)
        plan = plan_changes(cfg, state, now, supplied)
        new_state = apply_plan(cfg, state, plan, now, supplied=supplied, signer=self._signer(cfg, supplied))
        return state_to_outputs(cfg, new_state, plan)

    # -- ResourceProvider ------------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate the config, the secret inputs and the stage move since the last applied inputs.

        Problems return as ``CheckFailure(property, "path: message")``, shown without a traceback.
        Adds ``stage_plan`` to the inputs. Unknown values (preview) skip the checks that need them.
        """
        olds = _olds or {}
        inputs = dict(news)
        cfg_part = {k: news.get(k) for k in CONFIG_FIELDS}
        if _has_unknown(cfg_part):
            return CheckResult(inputs, [])
        try:
            cfg = config_from_inputs(news)
            problems = validate_ca_config(cfg)
        except (CAError, TypeError) as e:
            problems = getattr(e, "problems", [("ca", str(e))])
            cfg = None
        if cfg is not None and not problems:
            if not any(_has_unknown(news.get(k)) for k in SECRET_INPUTS):
                problems += validate_supplied(cfg, supplied_from_inputs(news))
            if olds.get("root_generation") is not None and olds.get("rotation_stage") and not _has_unknown(olds):
                try:
                    check_stage_transition(int(olds["root_generation"]), olds["rotation_stage"],
                                           cfg.root_generation, cfg.rotation_stage)
                except CAError as e:
                    problems += e.problems
                same_gen = int(olds["root_generation"]) == cfg.root_generation
                old_root, new_root = olds.get("root_cert_pem"), news.get("root_cert_pem")
                if (not problems and cfg.mode == "byoRoot" and olds.get("mode") == "byoRoot" and same_gen
                        and old_root and new_root and not _has_unknown(new_root)
                        and _fingerprint_or_none(old_root) not in (None, _fingerprint_or_none(new_root))):
                    problems.append((FIELD_PATHS["root_cert_pem"],
                                     f"the supplied root differs from root generation {cfg.root_generation} already in "
                                     f"use; a new root needs a staged rotation: set generation "
                                     f"{cfg.root_generation + 1} with stage addNewRoot"))
            inputs["stage_plan"] = stage_description(cfg.rotation_stage, cfg.root_generation)
        failures = [CheckFailure(_property_for(path), f"{path}: {msg}") for path, msg in problems]
        return CheckResult(inputs, failures)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        """Compare desired inputs ``_news`` with the stored outputs ``_olds`` at the provider's clock.

        Cheap and deterministic: parses the stored certificates but signs nothing and calls nothing
        remote. Reports a change when :func:`~mesh_components.ca.plan_changes` finds work (an
        intermediate due, cluster added/removed, key/subject change, a stage to apply) or the
        config echo differs. Never asks for a replacement: a CA changes in place, stage by stage.
        Raises :class:`CAError` for a skipped stage or an early ``removeOldRoot``.
        """
        watched = {k: _news.get(k) for k in (*CONFIG_FIELDS, *SECRET_INPUTS)}
        if _has_unknown(watched):
            return DiffResult(changes=True, replaces=[], stables=[], delete_before_replace=False)
        plan = self.plan(_olds, _news)
        try:
            config_changed = config_from_inputs(_olds) != config_from_inputs(_news)
        except CAError:
            config_changed = True
        return DiffResult(changes=plan.changes or config_changed, replaces=[], stables=[],
                          delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Issue the root (or adopt/fetch it) and one intermediate per cluster. Returns every output."""
        outs = self._reconcile(None, props)
        return CreateResult(f"{outs['mesh_name']}-ca-{uuid.uuid4().hex[:12]}", outs)

    def update(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> UpdateResult:
        """Apply the plan: stage moves, due re-issues, cluster changes. Returns all outputs (pulumi/pulumi#7809)."""
        return UpdateResult(self._reconcile(_olds, _news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: rebuild the outputs from the certificates in state, and the config inputs from them.

        There is no remote object to read: the CA lives in the state, so this re-derives
        fingerprints, expiries and the trust bundle. The returned inputs are the config echo plus
        ``stage_plan``. Secret inputs stay out, because inputs returned here would be stored
        without their secret marking.
        """
        state = state_from_outputs(props)
        if state is None:
            return ReadResult(id_, dict(props))
        cfg = config_from_inputs(props)
        outs = state_to_outputs(cfg, state, None, previous=props)
        inputs = cfg.to_inputs()
        inputs["stage_plan"] = stage_description(cfg.rotation_stage, cfg.root_generation)
        return ReadResult(id_, outs, inputs)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to delete remotely: the keys exist only in state, which the engine drops.

        Vault-signed intermediates are not revoked. They expire on their own, or can be revoked
        with ``vault write <mount>/revoke``.
        """
        return None


def _fingerprint_or_none(pem: Any) -> str | None:
    try:
        return fingerprint(pem)
    except (CAError, TypeError):
        return None


def _secret(v: Any) -> Any:
    return None if v is None else Output.secret(v)


class MeshCertificateAuthority(pulumi.dynamic.Resource):
    """One mesh root of trust and one intermediate CA per cluster, with staged root rotation.

    ``config``: :class:`~mesh_components.ca.CAConfig` (days for all durations). Secret inputs:
    ``root_cert_pem``/``root_key_pem`` (byoRoot, PEM), ``intermediates`` (intermediateOnly:
    cluster -> ``{cert_pem, key_pem, chain_pem}``), ``vault_token`` (vault). Each is wrapped in
    ``Output.secret``. ``clock`` is for tests. Config errors surface from the provider's ``check``
    as Pulumi check failures (``ca.keyAlgorithm: ...``), not tracebacks.
    """

    root_cert_pem: Output[str]
    trust_bundle_pem: Output[str]
    root_fingerprint: Output[str]
    root_not_after: Output[str]
    stage: Output[str]
    stage_description: Output[str]
    stage_applied_at: Output[str]
    signer_generation: Output[int]
    multi_root: Output[bool]
    intermediates: Output[dict]
    intermediate_certs: Output[dict]
    intermediate_chains: Output[dict]
    intermediate_fingerprints: Output[dict]
    roots: Output[list]
    notices: Output[list]
    last_change: Output[str]

    def __init__(self, name: str, config: CAConfig, *, root_cert_pem: Any = None, root_key_pem: Any = None,
                 intermediates: Any = None, vault_token: Any = None, opts: Optional[ResourceOptions] = None,
                 clock: Optional[Callable[[], _dt.datetime]] = None) -> None:
        props: dict[str, Any] = config.to_inputs()
        props.update({"root_cert_pem": _secret(root_cert_pem), "root_key_pem": _secret(root_key_pem),
                      "intermediates": _secret(intermediates), "vault_token": _secret(vault_token),
                      "stage_plan": None})
        for k in OUTPUTS:
            props.setdefault(k, None)
        opts = ResourceOptions.merge(opts, ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS)))
        super().__init__(MeshCAProvider(clock), name, props, opts)

    def material(self, cluster: str) -> ClusterCAMaterial:
        """``cluster``'s :class:`~mesh_components.ca.ClusterCAMaterial` as Outputs; the key stays secret."""
        key = self.intermediates.apply(lambda d: ((d or {}).get(cluster) or {}).get("key_pem"))
        return ClusterCAMaterial(
            trust_bundle_pem=self.trust_bundle_pem,
            ca_cert_pem=self.intermediate_certs.apply(lambda d: (d or {}).get(cluster)),
            ca_key_pem=Output.secret(key),
            cert_chain_pem=self.intermediate_chains.apply(lambda d: (d or {}).get(cluster)),
        )
