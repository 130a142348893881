"""A small evaluator of ValidatingAdmissionPolicy (+ binding) and Gatekeeper K8sNativeValidation
templates, for tests: what the API server decides on one admission request.

Faithful to Kubernetes' semantics (https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/;
k8s.io/apiserver pkg/admission/plugin/policy/validating ``dispatcher.go`` and ``validator.go``,
pkg/admission/plugin/policy/matching ``matching.go``, pkg/admission/plugin/cel ``activation.go``) for
what the mesh renders, and refusing what it does not implement:

* ``matchConstraints.resourceRules`` (and ``excludeResourceRules``): apiGroups, apiVersions,
  operations, resources (``*`` wildcards, no subresources), scope; a rule with ``resourceNames``,
  a non-empty ``namespaceSelector`` or ``objectSelector``, or ``matchPolicy: Exact`` is refused
  (:class:`Unsupported`), as is a binding with ``matchResources`` or ``paramRef``;
* ``matchConditions`` in order: all true -> evaluate; one false -> the policy does not apply; an
  error -> ``failurePolicy`` decides (Fail: a failure, Ignore: skipped);
* ``variables``: lazy, as upstream (an erroring variable fails only the expressions that use it);
* ``validations``: each expression must be a bool; false -> a failure with ``messageExpression``'s
  string (when it evaluates to a non-empty one), else ``message``, else
  ``failed expression: <expression>``; an error or a non-bool -> ``failurePolicy``;
* the binding's ``validationActions`` apply to every failure: Deny refuses the request, Warn
  returns a warning, Audit records an audit annotation.

The CEL runs on common-expression-language (cel-rust). Where cel-rust and cel-go differ
(/work/shared/tools/k8s_cel.py explains it: an error inside ``all()``/``exists()`` that cel-go's
other elements would absorb, Unicode-aware ``size()`` and regex classes), the guardrails' CEL does
not go (core/admission.py: every field guarded by ``has()``, ASCII patterns), and this evaluator
records any CEL error it meets so the tests can require there is none on the rendered objects.
The activation: ``object``, ``oldObject``, ``request`` (kind, resource, operation, namespace, name),
``params`` null (no paramKind), ``namespaceObject``; ``authorizer`` is not provided.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cel
import yaml


class Unsupported(Exception):
    """A policy feature this evaluator does not implement (so a test cannot silently pass)."""


CRDS = Path(__file__).resolve().parents[2] / "shared" / "crds"


@functools.lru_cache(maxsize=1)
def crd_plurals() -> dict[tuple[str, str], str]:
    """``(group, kind) -> plural`` of every CRD in ../shared/crds (the upstream CRDs)."""
    out = {}
    for f in sorted(CRDS.rglob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                s = doc["spec"]
                out[(s["group"], s["names"]["kind"])] = s["names"]["plural"]
    return out


def guess_resource(kind: str) -> str:
    """k8s.io/apimachinery pkg/api/meta ``UnsafeGuessKindToResource`` (``Gateway`` -> ``gatewaies``:
    only a fallback; the built-in kinds' plurals follow it, a CRD declares its own)."""
    low = kind.lower()
    if low.endswith("endpoints"):
        return low
    if low.endswith("s"):
        return low + "es"
    if low.endswith("y"):
        return low[:-1] + "ies"
    return low + "s"


def kind_to_resource(group: str, kind: str) -> str:
    """The resource the API server serves ``group``/``kind`` under: its CRD's plural, else the guess."""
    return crd_plurals().get((group, kind)) or guess_resource(kind)


def gvk(obj: dict) -> tuple[str, str, str]:
    group, _, version = obj["apiVersion"].rpartition("/")
    return group, version, obj["kind"]


CLUSTER_SCOPED = {("", "Namespace"), ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
                  ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
                  ("templates.gatekeeper.sh", "ConstraintTemplate"), ("apiextensions.k8s.io", "CustomResourceDefinition"),
                  ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "ClusterRoleBinding")}


@dataclass
class Decision:
    """What the API server does with one request under one policy and binding: ``matched`` (the
    policy applied), ``failures`` (``(message, cause)``: cause ``false`` or ``error: ...``),
    ``denied`` (a failure and Deny among the actions), ``warnings``, ``audit``."""

    matched: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)
    denied: bool = False
    warnings: list[str] = field(default_factory=list)
    audit: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [c for _, c in self.failures if c.startswith("error")]


_COMPILED: dict[str, Any] = {}


def _program(expr: str):
    p = _COMPILED.get(expr)
    if p is None:
        p = _COMPILED[expr] = cel.compile(expr)
    return p


class _Lazy:
    """``variables``: each evaluated on first use (k8s.io/apiserver pkg/cel/lazy)."""

    def __init__(self, variables: list[dict], base: dict):
        self.exprs = {v["name"]: v["expression"] for v in variables}
        self.base = base
        self.values: dict[str, Any] = {}

    def resolve(self, expr: str, within: tuple[str, ...] = ()) -> dict:
        """The variables ``expr`` uses (a variable may use only earlier ones, as upstream compiles them)."""
        used = set(re.findall(r"\bvariables\.([A-Za-z_][A-Za-z0-9_]*)", expr))
        names = list(self.exprs)
        out = {}
        for name in sorted(used):
            if name not in self.exprs or (within and names.index(name) >= names.index(within[-1])):
                raise KeyError(f"no such variable {name} here")
            if name not in self.values:
                try:
                    inner = self.resolve(self.exprs[name], (*within, name))
                except Exception as e:  # noqa: BLE001
                    self.values[name] = e
                else:
                    self.values[name] = _eval(self.exprs[name], {**self.base, "variables": inner})
            v = self.values[name]
            if isinstance(v, Exception):
                raise v
            out[name] = v
        return out


def _eval(expr: str, activation: dict) -> Any:
    try:
        return _program(expr).execute(activation)
    except Exception as e:  # noqa: BLE001 - every CEL failure is an evaluation error
        return e


def _run(expr: str, lazy: _Lazy) -> Any:
    try:
        variables = lazy.resolve(expr)
    except Exception as e:  # noqa: BLE001
        return e
    return _eval(expr, {**lazy.base, "variables": variables})


def _rule_matches(rule: dict, group: str, version: str, resource: str, operation: str, namespaced: bool) -> bool:
    if rule.get("resourceNames"):
        raise Unsupported("resourceRules[].resourceNames")
    def hit(values, v):
        return "*" in values or v in values
    scope = rule.get("scope", "*")
    return (hit(rule.get("apiGroups", []), group) and hit(rule.get("apiVersions", []), version)
            and hit(rule.get("operations", []), operation) and hit(rule.get("resources", []), resource)
            and (scope == "*" or (scope == "Namespaced") == namespaced))


def request_for(obj: dict, operation: str = "CREATE", old: dict | None = None) -> dict:
    """The ``request`` variable for ``obj`` (its namespace as the API server sets it on the object)."""
    group, version, kind = gvk(obj if obj is not None else old)
    meta = (obj if obj is not None else old)["metadata"]
    return {"kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": kind_to_resource(group, kind)},
            "operation": operation, "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
            "uid": "test", "dryRun": False}


def evaluate(policy: dict, binding: dict, obj: dict | None, operation: str = "CREATE", old: dict | None = None,
             namespace_object: dict | None = None) -> Decision:
    """The decision of ``policy`` bound by ``binding`` on ``obj`` (``operation`` CREATE/UPDATE/DELETE)."""
    if binding["spec"]["policyName"] != policy["metadata"]["name"]:
        return Decision()
    if binding["spec"].get("matchResources") or binding["spec"].get("paramRef"):
        raise Unsupported("binding matchResources / paramRef")
    spec = policy["spec"]
    if spec.get("paramKind"):
        raise Unsupported("paramKind")
    mc = spec.get("matchConstraints") or {}
    if mc.get("namespaceSelector") or mc.get("objectSelector"):
        raise Unsupported("namespaceSelector/objectSelector")
    if mc.get("matchPolicy") == "Exact":
        raise Unsupported("matchPolicy Exact")
    group, version, kind = gvk(obj if obj is not None else old)
    resource = kind_to_resource(group, kind)
    namespaced = (group, kind) not in CLUSTER_SCOPED
    if not any(_rule_matches(r, group, version, resource, operation, namespaced) for r in mc.get("resourceRules", [])):
        return Decision()
    if any(_rule_matches(r, group, version, resource, operation, namespaced) for r in mc.get("excludeResourceRules", [])):
        return Decision()
    base = {"object": obj, "oldObject": old, "request": request_for(obj, operation, old), "params": None,
            "namespaceObject": namespace_object}
    return _decide(spec, binding["spec"]["validationActions"], base)


def _decide(spec: dict, actions: list[str], base: dict) -> Decision:
    fail = spec.get("failurePolicy", "Fail")
    lazy = _Lazy(spec.get("variables") or [], base)
    out = Decision(matched=True)
    for cond in spec.get("matchConditions") or []:
        v = _run(cond["expression"], lazy)
        if isinstance(v, Exception) or not isinstance(v, bool):
            if fail == "Fail":
                out.failures.append((f"matchCondition {cond['name']} error", f"error: {v}"))
                break
            return Decision()
        if v is False:
            return Decision()
    else:
        for val in spec.get("validations") or []:
            v = _run(val["expression"], lazy)
            if isinstance(v, Exception) or not isinstance(v, bool):
                if fail == "Fail":
                    out.failures.append((f"expression '{val['expression'][:80]}' resulted in error",
                                         f"error: {type(v).__name__}: {v}"))
                continue
            if v is False:
                msg = None
                if val.get("messageExpression"):
                    m = _run(val["messageExpression"], lazy)
                    msg = m if isinstance(m, str) and m.strip() else None
                out.failures.append((msg or val.get("message") or f"failed expression: {val['expression']}", "false"))
    if out.failures:
        out.denied = "Deny" in actions
        if "Warn" in actions:
            out.warnings = [m for m, _ in out.failures]
        if "Audit" in actions:
            out.audit = [m for m, _ in out.failures]
    return out


def pairs(objects: list[dict]) -> list[tuple[dict, dict]]:
    """``(policy, binding)`` for every ValidatingAdmissionPolicy among ``objects`` (each must have one binding)."""
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"}
    bindings = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    out = []
    for b in bindings:
        out.append((policies[b["spec"]["policyName"]], b))
    assert len(out) == len(policies), "every policy has exactly one binding"
    return out


_GATEKEEPER_ACTIONS = {"deny": ["Deny"], "warn": ["Warn"], "dryrun": []}
"""A constraint's enforcementAction as VAP actions: dryrun only records audit results."""


def evaluate_gatekeeper(template: dict, constraint: dict, obj: dict, operation: str = "CREATE") -> Decision:
    """A Gatekeeper constraint of a K8sNativeValidation ``template`` on ``obj``: ``match.kinds``
    (apiGroups + kinds, ``*`` wildcards) selects; the template's source is evaluated as a VAP
    (open-policy-agent/gatekeeper pkg/drivers/k8scel); ``enforcementAction`` deny/warn/dryrun."""
    if template["spec"]["crd"]["spec"]["names"]["kind"] != constraint["kind"]:
        return Decision()
    match = constraint["spec"].get("match") or {}
    if set(match) - {"kinds"}:
        raise Unsupported(f"constraint match {sorted(set(match) - {'kinds'})}")
    group, _, kind = gvk(obj)
    if not any(("*" in k.get("apiGroups", []) or group in k.get("apiGroups", []))
               and ("*" in k.get("kinds", []) or kind in k.get("kinds", [])) for k in match.get("kinds", [])):
        return Decision()
    (target,) = template["spec"]["targets"]
    (code,) = [c for c in target["code"] if c["engine"] == "K8sNativeValidation"]
    base = {"object": obj, "oldObject": None, "request": request_for(obj, operation), "params": None,
            "namespaceObject": None}
    actions = _GATEKEEPER_ACTIONS[constraint["spec"].get("enforcementAction", "deny")]
    return _decide(code["source"], actions, base)
