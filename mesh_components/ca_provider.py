"""``MeshCertificateAuthority``: a Pulumi dynamic resource over the pure core in :mod:`mesh_components.core.ca`.

Engine type ``pulumi-python:dynamic:Resource``. Inputs are the :class:`~mesh_components.core.ca.CAConfig`
fields as snake_case keys (``trust_domain``, ``mesh``, ``clusters``, ``key_algorithm``,
``root_validity_days``, ``intermediate_validity_days``, ``rotation_window_days``, ``mode``,
``root_generation``, ``rotation_stage``, ``overlap_days``, ``vault_*``, ``mesh_name``), so a
policy pack can read them. They also include the secret inputs ``root_cert_pem``, ``root_key_pem``,
``intermediates`` and ``vault_token``, and three inputs ``check`` adds: ``stage_plan`` (a sentence
saying what the requested stage does; it shows in ``pulumi preview`` when the stage changes),
``as_of`` (the time of this check, ISO UTC) and ``stage_since`` (the ``as_of`` at which the
current mode/generation/stage was first checked). The Python SDK's ``DiffResult`` carries no
detailed diff, so a preview cannot show per-property reasons.

Outputs (besides the config echo): ``root_cert_pem`` (the root that signs now), ``trust_bundle_pem``
(every trusted root), ``root_fingerprint`` (sha256 hex), ``root_not_after``, ``stage``,
``stage_description``, ``stage_applied_at``, ``signer_generation``, ``multi_root`` (true while two
roots are trusted), ``intermediates`` (cluster -> ``{cert_pem, chain_pem, key_pem, not_after}``),
``intermediate_certs`` / ``intermediate_chains`` (cluster -> PEM, no keys),
``intermediate_fingerprints``, ``roots`` (every trusted root with its key when the key is held
here), ``notices`` and ``last_change``. ``intermediates`` and ``roots`` hold private keys and are
listed in ``additional_secret_outputs`` (pulumi/pulumi#3012), so they are encrypted in state.

How the engine drives this provider (pulumi/pulumi at 1b5949891b, v3.260.0-dev, the newest stored
source; the dynamic-provider host ``pulumi/dynamic/__main__.py`` of the installed SDK 3.272.0):

* **Refresh** calls ``Read`` with the stored outputs, then ``Diff(olds=refreshed outputs,
  news=stored inputs)``; the refresh reports a change unless that diff is ``DIFF_NONE``
  (``pkg/resource/deploy/step.go`` lines 1580, 1699-1715, 1533; with
  ``PULUMI_ENABLE_LEGACY_REFRESH_DIFF`` it compares the outputs instead, line 1528). When the
  ReadResponse has no inputs, the engine keeps the stored ones (step.go 1622-1623), and the host
  sends inputs only when ``ReadResult.inputs is not None`` (``__main__.py`` 248). So ``read``
  returns the stored outputs unchanged and **no inputs**: the stored inputs, secret ones included,
  stay as the last update checked them (inputs returned by ``read`` would replace them, and ``read``
  never sees the secret inputs: the host hands it only the outputs, ``__main__.py`` 233).
* **Rotation is decided at check time, not at diff time.** ``check`` stamps ``as_of``; ``diff``,
  ``create`` and ``update`` plan at ``news["as_of"]``, never at the real clock. On ``pulumi up``
  and ``preview`` the engine runs ``Check`` first (``step_generator.go`` 1334-1337), so the stamp
  is fresh and an intermediate inside its rotation window is re-issued. On refresh, ``Diff``
  gets the stored inputs, whose ``as_of`` is the last update's, when nothing was due, so
  ``pulumi refresh --expect-no-changes`` stays quiet inside a rotation window. A no-change update
  stores the new inputs with the old outputs (``SameStep``, step.go 179), which keeps the pair
  consistent. What time has made due is printed by ``read`` on stderr, which the engine shows
  for dynamic providers (``sdk/go/common/resource/plugin/plugin.go`` 324, 356) and which appears
  in ``notices``/``last_change`` once ``up`` applies it.
* **Errors**: the host turns any exception into a gRPC error carrying the whole traceback
  (``__main__.py`` 81-88). ``check`` therefore catches every user mistake, including the ones
  that need the last applied CA (a skipped stage, an early ``removeOldRoot``, a swapped BYO root,
  a mode switch), and returns them as ``CheckFailure("path: message")``; it compares against
  the old inputs, which the engine passes as ``olds``. ``diff`` never raises. ``create``,
  ``update`` and ``read`` raise :class:`~mesh_components.core.ca.CAError` (e.g. Vault refusing)
  from their own frame, so the message ends a three-frame traceback.
* Secrets reach the provider unwrapped: the host answers ``Configure`` with ``acceptSecrets:
  false`` (``__main__.py`` 214), and the engine re-marks the properties that were secret by name
  (``pkg/resource/plugin/provider_plugin.go`` 1658).

**The pickled path is an API.** The SDK stores ``dill.dumps(provider, recurse=True)`` of
``MeshCAProvider`` in every stack's state (the ``__provider`` property, ``pulumi/dynamic/dynamic.py``
279-318 and 354-375), and dill pickles the class by reference: ``mesh_components.ca_provider.MeshCAProvider``.
Refresh, update and destroy of an existing stack load that blob (``__main__.py`` 46-78). So:
never rename or move this class or module; if it has to move, keep a re-export here. Instance
attributes of an old blob are restored without ``__init__``: every attribute needs a class-level
default, and methods must accept old state (``tests/test_ca_provider.py`` loads a blob frozen at
state version 1).

Other dynamic-provider rules (https://www.pulumi.com/docs/iac/concepts/resources/dynamic-providers/
and the issues named in DESIGN.md): importing this module creates no resources. The provider
captures only an optional clock (tests inject one to travel in time); the Vault client and its
HTTP session are built inside each method. ``update`` returns every output.
"""
from __future__ import annotations

import datetime as _dt
import functools
import sys
import uuid
from typing import Any, Callable, Mapping, Optional

import pulumi
from pulumi import Output, ResourceOptions
from pulumi.dynamic import (CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider,
                            UpdateResult)

from .core.ca import (CLOCK_SKEW, CONFIG_FIELDS, FIELD_PATHS, CAConfig, CAError, CAState, ClusterCAMaterial, IntermediateRecord, Plan, RootRecord, SuppliedMaterial, apply_plan, due_notices, fingerprint, iso, parse_iso, plan_changes, stage_description, transition_problems, validate_ca_config, validate_supplied)

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
AS_OF = "as_of"
"""Input ``check`` adds: the time of the check (ISO UTC). ``diff``/``create``/``update`` plan at it (module docstring)."""
STAGE_SINCE = "stage_since"
"""Input ``check`` adds: the ``as_of`` at which the current (mode, generation, stage) was first checked."""
PROVIDER_KEY = "__provider"
"""Where the SDK puts the pickled provider (``pulumi/dynamic/dynamic.py`` ``PROVIDER_KEY``)."""


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


def last_write_time(state: CAState) -> _dt.datetime:
    """When the provider last wrote ``state``, as far as the certificates tell: the latest of
    ``stage_applied_at`` and every intermediate's ``not_before`` plus :data:`~mesh_components.core.ca.CLOCK_SKEW`.
    The decision time of a ``diff`` whose inputs carry no ``as_of`` (state checked before ``as_of`` existed)."""
    times = [state.stage_applied_at]
    times += [r.cert.not_valid_before_utc + CLOCK_SKEW for r in state.intermediates.values()]
    return max(times)


def _parse_time(v: Any) -> _dt.datetime | None:
    if not isinstance(v, str) or not v or v == UNKNOWN:
        return None
    try:
        return parse_iso(v)
    except ValueError:
        return None


def _property_for(path: str) -> str:
    for f, p in FIELD_PATHS.items():
        if path == p or path.startswith(p + "[") or path.startswith(p + "."):
            return f
    return path.split(".")[-1]


def _failures(problems: list[tuple[str, str]]) -> list[CheckFailure]:
    return [CheckFailure(_property_for(path), f"{path}: {msg}") for path, msg in problems]


def _short_errors(method: Callable) -> Callable:
    """Re-raise :class:`CAError` from the provider method's own frame, without the frames below it.

    The SDK's host puts ``traceback.format_exc()`` into the gRPC error the engine shows
    (``pulumi/dynamic/__main__.py`` 81-88, SDK 3.272.0); this keeps that to three frames (the
    host's two and this one) above the ``path: message`` line, whatever depth the error came from.
    """
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except CAError as e:
            raise e.with_traceback(None) from None
    return wrapper


def _previous(olds: Mapping[str, Any]) -> dict[str, Any] | None:
    """The last applied (mode, generation, stage, stage_since, byoRoot root) from the old inputs, or ``None``."""
    keys = ("mode", "root_generation", "rotation_stage")
    if not olds or any(olds.get(k) is None or _has_unknown(olds.get(k)) for k in keys):
        return None
    try:
        gen = int(olds["root_generation"])
    except (TypeError, ValueError):
        return None
    return {"mode": olds["mode"], "generation": gen, "stage": olds["rotation_stage"],
            "stage_since": _parse_time(olds.get(STAGE_SINCE)),
            "root_fingerprint": _fingerprint_or_none(olds.get("root_cert_pem")) if olds["mode"] == "byoRoot" else None}


class MeshCAProvider(ResourceProvider):
    """The dynamic provider. ``clock``: a zero-argument callable returning an aware ``datetime``
    (default: the real UTC clock). It must be picklable by dill, e.g. a module-level class instance.

    Pickled by reference into every stack's state: keep ``mesh_components.ca_provider.MeshCAProvider``
    importable, and give every instance attribute a class-level default (module docstring).
    """

    serialize_as_secret_always = True
    clock: Optional[Callable[[], _dt.datetime]] = None

    def __init__(self, clock: Optional[Callable[[], _dt.datetime]] = None) -> None:
        super().__init__()
        self.clock = clock

    # -- helpers (no state kept between calls) -------------------------------------------------

    def _now(self) -> _dt.datetime:
        clock = getattr(self, "clock", None)
        t = clock() if clock is not None else _utcnow()
        return t.replace(tzinfo=_dt.timezone.utc) if t.tzinfo is None else t

    @staticmethod
    def _signer(cfg: CAConfig, supplied: SuppliedMaterial):
        if cfg.mode != "vault":
            return None
        from .core.vault import VaultPKIClient  # built per call: no client captured by the provider
        return VaultPKIClient(address=cfg.vault_address or "", token=supplied.vault_token or "", mount=cfg.vault_mount)

    def decision_time(self, news: Mapping[str, Any], state: CAState | None, *, applying: bool) -> _dt.datetime:
        """The time a plan for inputs ``news`` is made at: ``news["as_of"]`` (stamped by :meth:`check`).

        Without one, :func:`last_write_time` of ``state`` for a diff (so an unchecked refresh stays
        quiet) and the provider's clock when ``applying`` (create/update) or when there is no state.
        """
        t = _parse_time(news.get(AS_OF))
        if t is not None:
            return t
        if applying or state is None:
            return self._now()
        return last_write_time(state)

    def plan(self, olds: Mapping[str, Any] | None, news: Mapping[str, Any]) -> Plan:
        """The :class:`~mesh_components.core.ca.Plan` for stored outputs ``olds`` and checked inputs ``news``,
        at :meth:`decision_time`. Raises :class:`CAError` like :func:`~mesh_components.core.ca.plan_changes`."""
        state = state_from_outputs(olds)
        return plan_changes(config_from_inputs(news), state, self.decision_time(news, state, applying=False),
                            supplied_from_inputs(news))

    def _reconcile(self, olds: Mapping[str, Any] | None, news: Mapping[str, Any]) -> dict[str, Any]:
        cfg, supplied = config_from_inputs(news), supplied_from_inputs(news)
        state = state_from_outputs(olds)
        now = self.decision_time(news, state, applying=True)
        plan = plan_changes(cfg, state, now, supplied)
        new_state = apply_plan(cfg, state, plan, now, supplied=supplied, signer=self._signer(cfg, supplied))
        return state_to_outputs(cfg, new_state, plan)

    # -- ResourceProvider ------------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate the config, the secret inputs and the move from the last applied inputs ``_olds``.

        Problems return as ``CheckFailure(property, "path: message")``, which the engine shows
        without a traceback; no exception escapes. Adds ``stage_plan``, ``as_of`` (the provider's
        clock now) and ``stage_since`` to the inputs. Unknown values (preview) skip the checks that
        need them. The engine passes the stored inputs as ``_olds`` on every update
        (``pkg/resource/deploy/step_generator.go`` 1334-1337 at pulumi/pulumi 1b5949891b).
        """
        inputs = dict(news)
        now = self._now()
        inputs[AS_OF] = inputs[STAGE_SINCE] = iso(now)
        try:
            problems = self._check(_olds or {}, news, inputs, now)
        except (CAError, TypeError, ValueError, KeyError) as e:  # a malformed value: a failure, not a traceback
            problems = getattr(e, "problems", None) or [("ca", f"invalid CA inputs ({type(e).__name__}: {e})")]
        return CheckResult(inputs, _failures(problems))

    def _check(self, olds: Mapping[str, Any], news: Mapping[str, Any], inputs: dict[str, Any],
               now: _dt.datetime) -> list[tuple[str, str]]:
        if _has_unknown({k: news.get(k) for k in CONFIG_FIELDS}):
            return []
        cfg = config_from_inputs(news)
        problems = validate_ca_config(cfg)
        if problems:
            return problems
        inputs["stage_plan"] = stage_description(cfg.rotation_stage, cfg.root_generation)
        secrets_known = not any(_has_unknown(news.get(k)) for k in SECRET_INPUTS)
        supplied = supplied_from_inputs(news)
        if secrets_known:
            problems += validate_supplied(cfg, supplied)
        prev = _previous(olds)
        if prev is None or problems:
            return problems
        if (prev["mode"], prev["generation"], prev["stage"]) == (cfg.mode, cfg.root_generation, cfg.rotation_stage) \
                and prev["stage_since"] is not None:
            inputs[STAGE_SINCE] = iso(prev["stage_since"])
        same_gen_byo = prev["mode"] == "byoRoot" and prev["generation"] == cfg.root_generation
        return transition_problems(
            cfg, prev_mode=prev["mode"], prev_generation=prev["generation"], prev_stage=prev["stage"], now=now,
            stage_since=prev["stage_since"], prev_root_fingerprint=prev["root_fingerprint"] if same_gen_byo else None,
            supplied=supplied if secrets_known else None)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        """Compare checked inputs ``_news`` with the stored outputs ``_olds``, at ``_news["as_of"]``.

        Cheap and deterministic: a function of its arguments only (no clock), parses the stored
        certificates but signs nothing and calls nothing remote. Reports a change when
        :func:`~mesh_components.core.ca.plan_changes` finds work (an intermediate due at ``as_of``, a
        cluster added/removed, key/subject change, a stage to apply) or the config echo differs.
        Never asks for a replacement: a CA changes in place, stage by stage. Never raises: what
        ``check`` did not catch (inputs checked before it could) reports a change, so the
        update, which checks the same, names the problem.
        """
        watched = {k: _news.get(k) for k in (*CONFIG_FIELDS, *SECRET_INPUTS)}
        if _has_unknown(watched):
            return DiffResult(changes=True, replaces=[], stables=[], delete_before_replace=False)
        try:
            changes = self.plan(_olds, _news).changes
        except (CAError, TypeError, ValueError, KeyError):
            changes = True
        try:
            changes = changes or config_from_inputs(_olds) != config_from_inputs(_news)
        except CAError:
            changes = True
        return DiffResult(changes=changes, replaces=[], stables=[], delete_before_replace=False)

    @_short_errors
    def create(self, props: dict[str, Any]) -> CreateResult:
        """Issue the root (or adopt/fetch it) and one intermediate per cluster at ``props["as_of"]``. Returns every output."""
        outs = self._reconcile(None, props)
        return CreateResult(f"{outs['mesh_name']}-ca-{uuid.uuid4().hex[:12]}", outs)

    @_short_errors
    def update(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> UpdateResult:
        """Apply the plan at ``_news["as_of"]``: stage moves, due re-issues, cluster changes.
        Returns all outputs (pulumi/pulumi#7809)."""
        return UpdateResult(self._reconcile(_olds, _news))

    @_short_errors
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: the stored outputs ``props``, unchanged, and no inputs (the engine keeps the stored ones).

        There is no remote object to read: the CA lives in the state. The state is parsed (a
        corrupt one raises :class:`CAError`), and what the provider's clock says is now due
        (:func:`~mesh_components.core.ca.due_notices`) is printed on stderr as ``warning: ...`` lines,
        which the engine shows for dynamic providers; nothing changes until ``pulumi up``.
        Returning inputs here would replace the stored inputs with ones lacking the secret
        inputs, which ``read`` never sees (module docstring).
        """
        state = state_from_outputs(props)
        if state is not None:
            try:
                notes = due_notices(config_from_inputs(props), state, self._now())
            except CAError:
                notes = []
            for note in notes:
                print(f"warning: mesh CA {id_}: {note}", file=sys.stderr, flush=True)
        return ReadResult(id_, dict(props))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to delete remotely: the keys exist only in state, which the engine drops.

        Vault-signed intermediates are not revoked. They expire on their own, or can be revoked
        with ``vault write <mount>/revoke``.
        """
        return None


def _fingerprint_or_none(pem: Any) -> str | None:
    try:
        return fingerprint(pem)
    except (CAError, TypeError, ValueError):
        return None


def _secret(v: Any) -> Any:
    return None if v is None else Output.secret(v)


class MeshCertificateAuthority(pulumi.dynamic.Resource):
    """One mesh root of trust and one intermediate CA per cluster, with staged root rotation.

    ``config``: :class:`~mesh_components.core.ca.CAConfig` (days for all durations). Secret inputs:
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
        """``cluster``'s :class:`~mesh_components.core.ca.ClusterCAMaterial` as Outputs; the key stays secret."""
        key = self.intermediates.apply(lambda d: ((d or {}).get(cluster) or {}).get("key_pem"))
        return ClusterCAMaterial(
            trust_bundle_pem=self.trust_bundle_pem,
            ca_cert_pem=self.intermediate_certs.apply(lambda d: (d or {}).get(cluster)),
            ca_key_pem=Output.secret(key),
            cert_chain_pem=self.intermediate_chains.apply(lambda d: (d or {}).get(cluster)),
        )
