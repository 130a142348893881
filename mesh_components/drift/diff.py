"""Desired versus live: normalisation, object and Helm release comparison, orphans, report model.

Pure: plain dicts in, frozen dataclasses out; no Kubernetes client, no Pulumi. ``live`` reads the
clusters, ``intent`` adds the cross-cluster checks, ``drift_cli`` prints the report.

How two objects are compared (:func:`compare_object`)
----------------------------------------------------
Objects match on ``(group, kind, namespace, name)``; the API *version* is ignored, so an object
read at ``v1beta1`` matches one declared at ``v1``.

1. What the API server adds is dropped from the live side (:func:`strip_server_fields`): ``status``
   and every ``metadata`` field except ``name``, ``namespace``, ``labels`` and ``annotations``
   (``managedFields``, ``resourceVersion``, ``uid``, ``generation``, ``creationTimestamp``,
   ``selfLink``, ``ownerReferences``, ``finalizers``...). Of ``labels`` and ``annotations`` only the
   keys the stack declares are compared: controllers and tools add their own
   (``kubectl.kubernetes.io/last-applied-configuration``, ``kubernetes.io/metadata.name``,
   ``deployment.kubernetes.io/revision``), and a key the stack does not own is not drift.
2. Secret ``stringData`` is folded into ``data`` as base64, as the API server does on write
   (https://kubernetes.io/docs/concepts/configuration/secret/#restriction-names-data).
3. Fields the server *defaults* are filled in on both sides from :data:`DEFAULTS` (Kubernetes
   built-ins, from the API reference, and CRD ``default:`` values from the upstream schemas in
   ``../shared/crds``, https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#defaulting),
   so "absent" and "the default" compare equal whichever side holds which.
4. Fields the server *allocates* (:data:`ALLOCATED`: Service ``clusterIP(s)``, ``ipFamilies``,
   ``nodePort``...) are dropped from the live side where the stack does not set them.
5. The rest is compared in full, so a field someone added by hand is drift. ``None``, ``{}``, ``[]``
   and "absent" are the same value (the API server prunes empty ``omitempty`` fields), but a list
   item is never "absent": ``rules: [{}]`` (allow all) differs from ``rules: []``. Leaves compare
   with Python equality (``50 == 50.0``; ``"8080" != 8080``).
   Lists whose items all carry a unique ``name`` are paired by name (``ports[name=http]``),
   others by position.

Deploy-time values: a desired value that is a :class:`~mesh_components.core.slots.Slot`, or a string
holding ``$(deploy-time:`` (what a slot renders to), is unknown offline: it is never compared. Only
its absence from the live object is reported.

Field paths read ``spec.rules[0].backendRefs[name=reviews-v2].weight``; keys that are not plain
identifiers are quoted: ``metadata.labels["app.kubernetes.io/managed-by"]``.

Secrets never leave in a report (:func:`redact_report`)
-------------------------------------------------------
The comparison itself works on the values as they are; :func:`redact_report` is the one place
that makes a report safe to print, and every formatter of ``drift_cli`` applies it (the nightly
workflow posts reports publicly). It replaces by *field name* (Secret ``data``/``stringData``;
fields such as ``password``, ``token``, ``secret``, ``credentials``, ``apiKey``, ``keyPEM``,
``tls.key``, ``client-key-data``; an env var or header ``value`` whose ``name`` is one), by
*neighbour* (a list item after a secret flag, ``[--token, x]``, and a ``value`` beside a secret
``name``, seen through :attr:`FieldChange.within` when only that item changed) and by *value
shape* anywhere (a PEM ``PRIVATE KEY`` block, base64 of one, base64 DER private keys confirmed by
``cryptography``'s parser, OpenSSH key bodies, a JWT, ``Bearer`` tokens, the password of a URL,
``password: x``/``--token=x``/``--token x`` inside text, JSON inside strings) each secret with
``<redacted #N>``. ``N`` numbers the distinct secret values of the report, so
a changed secret still reads as changed (``desired <redacted #1>, live <redacted #2>``) without
revealing anything, not even a hash (an unsalted hash of a short password can be brute-forced
from a public report). This is what ``kubectl diff`` does for Secrets (``*** (before)`` /
``*** (after)``, kubernetes/kubectl ``pkg/cmd/diff/diff.go`` ``Masker``) and Argo CD (``+``
runs of different lengths, argoproj/gitops-engine ``pkg/diff/diff.go`` ``HideSecretData``).
"""
from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..spec.errors import MeshError
from ..core.meta import MANAGED_BY_LABEL, MANAGED_BY_VALUE, MESH_LABEL
from ..core.slots import PLACEHOLDER_PREFIX, Slot

__all__ = [
    "MISSING", "ObjectRef", "FieldChange", "ObjectDrift", "LiveRelease", "ReleaseDrift",
    "Finding", "ClusterReport", "DriftReport", "DEFAULTS", "ALLOCATED", "object_ref",
    "group_of", "strip_server_fields", "fold_string_data", "apply_defaults", "drop_allocated",
    "normalize_pair", "compare_values", "compare_object", "is_owned", "find_orphans",
    "release_view", "compare_release", "diff_releases", "diff_cluster", "is_unknown", "to_jsonable",
    "is_secret_name", "is_der_private_key", "redact_text", "redact_report", "REDACTED_PREFIX",
]


class _Missing:
    """The value of a field that is absent. Falsy, a singleton, prints as ``<absent>``."""

    _instance: "_Missing | None" = None

    def __new__(cls) -> "_Missing":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<absent>"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self):
        return (_Missing, ())


MISSING: Any = _Missing()
"""Sentinel for an absent field in :class:`FieldChange` (never equal to ``None``)."""


# ---------------------------------------------------------------------------------------------
# report model


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Identity of a Kubernetes object: ``group`` ("" for core), ``kind``, ``namespace`` ("" when
    cluster-scoped), ``name``; ``api_version`` is carried for display and not compared."""

    group: str
    kind: str
    namespace: str
    name: str
    api_version: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.group, self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where} ({self.api_version or self.group or 'v1'})"

    def to_dict(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace,
                "name": self.name}


@dataclass(frozen=True)
class FieldChange:
    """One differing field: ``path`` (see module doc), the ``desired`` and ``live`` values; either
    may be :data:`MISSING` (field absent on that side)."""

    path: str
    desired: Any
    live: Any
    within: tuple[Any, Any] = field(default=(None, None), compare=False, repr=False)
    """``(desired, live)`` containers that hold the changed value, as :func:`compare_values`
    found them (the mapping of a field, the list of an item; None at the top or when absent).
    Only :func:`redact_report` reads them, to see a value's neighbours: a list item after a
    secret flag (``[--token, x]``), a ``value`` beside its ``name`` in a list paired by
    position. Never printed, not compared; :func:`redact_report` drops them."""

    def to_dict(self) -> dict[str, Any]:
        """``{"path", "desired"?, "live"?}``: a side that is absent is left out."""
        out: dict[str, Any] = {"path": self.path}
        if self.desired is not MISSING:
            out["desired"] = to_jsonable(self.desired)
        if self.live is not MISSING:
            out["live"] = to_jsonable(self.live)
        return out


@dataclass(frozen=True)
class ObjectDrift:
    """``state`` is ``missing`` (declared, not in the cluster), ``changed`` (with ``changes``) or
    ``orphaned`` (owned by the mesh by its labels, no longer declared)."""

    ref: ObjectRef
    state: str
    changes: tuple[FieldChange, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.ref.to_dict(), "state": self.state}
        if self.changes:
            out["changes"] = [c.to_dict() for c in self.changes]
        return out


@dataclass(frozen=True)
class LiveRelease:
    """A Helm release as its storage Secret records it (https://helm.sh/docs/topics/advanced/#storage-backends).

    ``chart``/``chart_version`` from ``chart.metadata``, ``values`` = ``config`` (the user-supplied
    values), ``status`` = ``info.status``, ``revision`` = ``version``.
    """

    name: str
    namespace: str
    chart: str
    chart_version: str
    values: Mapping[str, Any]
    status: str
    revision: int
    app_version: str = ""
    latest_status: str = ""
    """Status of the newest revision when it is not the one compared (e.g. ``failed``)."""


@dataclass(frozen=True)
class ReleaseDrift:
    """A Helm release that is ``missing`` or ``changed`` (chart, version, values or status)."""

    namespace: str
    name: str
    state: str
    changes: tuple[FieldChange, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"namespace": self.namespace, "name": self.name, "state": self.state}
        if self.changes:
            out["changes"] = [c.to_dict() for c in self.changes]
        return out


@dataclass(frozen=True)
class Finding:
    """An intent-level problem (``mesh_components.drift.intent``): ``check`` id, ``cluster`` (None when it
    spans clusters), ``subject`` (what it is about) and a ``message`` for people. ``declared``:
    the stack itself asks for this state, so it is reported but is not drift."""

    check: str
    cluster: str | None
    subject: str
    message: str
    declared: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.check, self.cluster or "", self.subject)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "cluster": self.cluster, "subject": self.subject,
                "message": self.message, "declared": self.declared}


@dataclass(frozen=True)
class ClusterReport:
    """Drift of one cluster. ``notes`` are facts that are not drift (e.g. a kind not served)."""

    cluster: str
    missing: tuple[ObjectDrift, ...] = ()
    changed: tuple[ObjectDrift, ...] = ()
    orphaned: tuple[ObjectDrift, ...] = ()
    releases: tuple[ReleaseDrift, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.missing) + len(self.changed) + len(self.orphaned) + len(self.releases)

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster,
                "missing": [d.to_dict() for d in self.missing],
                "changed": [d.to_dict() for d in self.changed],
                "orphaned": [d.to_dict() for d in self.orphaned],
                "releases": [d.to_dict() for d in self.releases],
                "notes": list(self.notes)}


@dataclass(frozen=True)
class DriftReport:
    """The whole report: per-cluster drift plus intent findings. ``has_drift`` drives exit code 2."""

    stack: str
    mesh: str
    clusters: tuple[ClusterReport, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def has_drift(self) -> bool:
        return any(c.count for c in self.clusters) or any(not f.declared for f in self.findings)

    def summary(self) -> dict[str, int]:
        """Counts: ``missing``, ``changed``, ``orphaned``, ``releases``, ``findings`` (undeclared)."""
        return {"missing": sum(len(c.missing) for c in self.clusters),
                "changed": sum(len(c.changed) for c in self.clusters),
                "orphaned": sum(len(c.orphaned) for c in self.clusters),
                "releases": sum(len(c.releases) for c in self.clusters),
                "findings": sum(1 for f in self.findings if not f.declared)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``diff --format json`` (documented in ``drift_cli``)."""
        return {"stack": self.stack, "mesh": self.mesh, "drift": self.has_drift,
                "summary": self.summary(),
                "clusters": [c.to_dict() for c in self.clusters],
                "findings": [f.to_dict() for f in self.findings]}


def to_jsonable(value: Any) -> Any:
    """``value`` with Slots as their placeholder text and other non-JSON leaves as ``str``;
    an infinite or NaN number (a YAML dump may hold ``.inf``/``.nan``) as its YAML spelling
    (``".inf"``, ``"-.inf"``, ``".nan"``), since JSON has none (RFC 8259 section 6)."""
    if isinstance(value, Slot):
        return value.placeholder()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if value != value else ".inf" if value > 0 else "-.inf"
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# ---------------------------------------------------------------------------------------------
# identity and ownership


def group_of(api_version: str) -> str:
    """``"security.istio.io/v1"`` -> ``"security.istio.io"``; ``"v1"`` -> ``""`` (core group)."""
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one: live objects come from dumps that may
    hold any JSON shape in any field (``live.envelope_problems`` checks only the envelope)."""
    return value if isinstance(value, Mapping) else {}


def object_ref(obj: Mapping[str, Any]) -> ObjectRef:
    """The :class:`ObjectRef` of a Kubernetes object dict (``apiVersion``, ``kind``, ``metadata``)."""
    meta = _mapping(obj.get("metadata"))
    api_version = str(obj.get("apiVersion") or "")
    return ObjectRef(group_of(api_version), str(obj.get("kind") or ""),
                     str(meta.get("namespace") or ""), str(meta.get("name") or ""), api_version)


def is_owned(obj: Mapping[str, Any], mesh: str) -> bool:
    """True when ``obj`` carries both ownership labels of ``mesh`` (see ``mesh_components.core.meta``)."""
    labels = _mapping(_mapping(obj.get("metadata")).get("labels"))
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and labels.get(MESH_LABEL) == mesh


# ---------------------------------------------------------------------------------------------
# normalisation

_KEEP_META = ("name", "namespace", "labels", "annotations")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def strip_server_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` without ``status`` and with ``metadata`` cut to name, namespace, labels
    and annotations (minus ``kubectl.kubernetes.io/last-applied-configuration``). Shallow: nested
    values are shared, never mutated.

    Source: https://kubernetes.io/docs/reference/using-api/api-concepts/ (server-populated fields)."""
    out = {k: v for k, v in obj.items() if k != "status" and k != "metadata"}
    meta = _mapping(obj.get("metadata"))
    kept = {k: meta[k] for k in _KEEP_META if meta.get(k) is not None}
    ann = kept.get("annotations")
    if isinstance(ann, Mapping) and _LAST_APPLIED in ann:
        kept["annotations"] = {k: v for k, v in ann.items() if k != _LAST_APPLIED}
    out["metadata"] = kept
    return out


def fold_string_data(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """For a Secret, ``stringData`` merged into ``data`` as base64 (``stringData`` wins, as on the
    server); other objects are returned as they are. Deploy-time values stay as they are. A
    ``stringData`` or ``data`` that is not a mapping is left as it is (compared as it is: drift)."""
    if obj.get("kind") != "Secret" or group_of(str(obj.get("apiVersion") or "")) or not obj.get("stringData"):
        return obj
    if not isinstance(obj["stringData"], Mapping) or not isinstance(obj.get("data") or {}, Mapping):
        return obj
    data = dict(obj.get("data") or {})
    for k, v in obj["stringData"].items():
        data[k] = v if is_unknown(v) or not isinstance(v, str) else base64.b64encode(v.encode()).decode()
    out = {k: v for k, v in obj.items() if k != "stringData"}
    out["data"] = data
    return out


Default = Any  # a value, or a callable(parent dict) -> value | MISSING

_SERVICE_PORT_TARGET: Callable[[Mapping[str, Any]], Any] = lambda port: port.get("port", MISSING)


def _service_default(field_name: str, value: Any, types: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Any]:
    def default(spec: Mapping[str, Any]) -> Any:
        return value if (spec.get("type") or "ClusterIP") in types else MISSING
    return default


def _image_pull_policy(container: Mapping[str, Any]) -> Any:
    image = str(container.get("image") or "")
    if "@" in image:
        return "IfNotPresent"
    tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


_POD_TEMPLATE: list[tuple[tuple[str, ...], Default]] = [
    (("spec", "template", "spec", "restartPolicy"), "Always"),
    (("spec", "template", "spec", "terminationGracePeriodSeconds"), 30),
    (("spec", "template", "spec", "dnsPolicy"), "ClusterFirst"),
    (("spec", "template", "spec", "schedulerName"), "default-scheduler"),
    (("spec", "template", "spec", "serviceAccount"), lambda s: s.get("serviceAccountName", MISSING)),
    (("spec", "template", "spec", "containers", "*", "terminationMessagePath"), "/dev/termination-log"),
    (("spec", "template", "spec", "containers", "*", "terminationMessagePolicy"), "File"),
    (("spec", "template", "spec", "containers", "*", "imagePullPolicy"), _image_pull_policy),
    (("spec", "template", "spec", "containers", "*", "ports", "*", "protocol"), "TCP"),
    (("spec", "template", "spec", "initContainers", "*", "terminationMessagePath"), "/dev/termination-log"),
    (("spec", "template", "spec", "initContainers", "*", "terminationMessagePolicy"), "File"),
    (("spec", "template", "spec", "initContainers", "*", "imagePullPolicy"), _image_pull_policy),
]

_WEBHOOK = [
    (("webhooks", "*", "failurePolicy"), "Fail"),
    (("webhooks", "*", "matchPolicy"), "Equivalent"),
    (("webhooks", "*", "timeoutSeconds"), 10),
    (("webhooks", "*", "clientConfig", "service", "port"), 443),
    (("webhooks", "*", "rules", "*", "scope"), "*"),
]

_ROUTE_PARENT = [
    (("spec", "parentRefs", "*", "group"), "gateway.networking.k8s.io"),
    (("spec", "parentRefs", "*", "kind"), "Gateway"),
]
_ROUTE_BACKEND = [
    (("spec", "rules", "*", "backendRefs", "*", "group"), ""),
    (("spec", "rules", "*", "backendRefs", "*", "kind"), "Service"),
    (("spec", "rules", "*", "backendRefs", "*", "weight"), 1),
]
_HTTP_MATCH_ALL = [{"path": {"type": "PathPrefix", "value": "/"}}]
_HTTP_ROUTE_RULES = [
    (("spec", "rules"), [{"matches": _HTTP_MATCH_ALL}]),
    (("spec", "rules", "*", "matches"), _HTTP_MATCH_ALL),
    (("spec", "rules", "*", "matches", "*", "path", "type"), "PathPrefix"),
    (("spec", "rules", "*", "matches", "*", "path", "value"), "/"),
    (("spec", "rules", "*", "matches", "*", "headers", "*", "type"), "Exact"),
    (("spec", "rules", "*", "matches", "*", "queryParams", "*", "type"), "Exact"),
    (("spec", "rules", "*", "filters", "*", "requestRedirect", "statusCode"), 302),
    (("spec", "rules", "*", "backendRefs", "*", "filters", "*", "requestRedirect", "statusCode"), 302),
    (("spec", "rules", "*", "filters", "*", "requestMirror", "backendRef", "group"), ""),
    (("spec", "rules", "*", "filters", "*", "requestMirror", "backendRef", "kind"), "Service"),
    (("spec", "rules", "*", "filters", "*", "requestMirror", "fraction", "denominator"), 100),
    (("spec", "rules", "*", "filters", "*", "cors", "maxAge"), 5),
]

DEFAULTS: dict[tuple[str, str], list[tuple[tuple[str, ...], Default]]] = {
    # core/v1, https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/
    ("", "Service"): [
        (("spec", "type"), "ClusterIP"),
        (("spec", "sessionAffinity"), "None"),
        (("spec", "internalTrafficPolicy"), _service_default("internalTrafficPolicy", "Cluster",
                                                             ("ClusterIP", "NodePort", "LoadBalancer"))),
        (("spec", "externalTrafficPolicy"), _service_default("externalTrafficPolicy", "Cluster",
                                                             ("NodePort", "LoadBalancer"))),
        (("spec", "allocateLoadBalancerNodePorts"), _service_default("allocateLoadBalancerNodePorts", True,
                                                                     ("LoadBalancer",))),
        (("spec", "ports", "*", "protocol"), "TCP"),
        (("spec", "ports", "*", "targetPort"), _SERVICE_PORT_TARGET),
    ],
    # https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/namespace-v1/
    ("", "Namespace"): [(("spec",), {"finalizers": ["kubernetes"]}), (("spec", "finalizers"), ["kubernetes"])],
    # https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/
    ("", "Secret"): [(("type",), "Opaque")],
    # https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/
    ("apps", "Deployment"): [
        (("spec", "replicas"), 1),
        (("spec", "revisionHistoryLimit"), 10),
        (("spec", "progressDeadlineSeconds"), 600),
        (("spec", "strategy"), {"type": "RollingUpdate"}),
        (("spec", "strategy", "rollingUpdate"),
         lambda s: {"maxSurge": "25%", "maxUnavailable": "25%"} if s.get("type") == "RollingUpdate" else MISSING),
        *_POD_TEMPLATE,
    ],
    # https://kubernetes.io/docs/reference/kubernetes-api/extend-resources/mutating-webhook-configuration-v1/
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): [
        *_WEBHOOK, (("webhooks", "*", "reinvocationPolicy"), "Never")],
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): list(_WEBHOOK),
    # CRD schema defaults: ../shared/crds/gateway-api/standard (Gateway API v1.6.1)
    ("gateway.networking.k8s.io", "Gateway"): [
        (("spec", "listeners", "*", "allowedRoutes"), {"namespaces": {"from": "Same"}}),
        (("spec", "listeners", "*", "allowedRoutes", "namespaces"), {"from": "Same"}),
        (("spec", "listeners", "*", "allowedRoutes", "namespaces", "from"), "Same"),
        (("spec", "listeners", "*", "allowedRoutes", "kinds", "*", "group"), "gateway.networking.k8s.io"),
        (("spec", "listeners", "*", "tls", "mode"), "Terminate"),
        (("spec", "listeners", "*", "tls", "certificateRefs", "*", "group"), ""),
        (("spec", "listeners", "*", "tls", "certificateRefs", "*", "kind"), "Secret"),
        (("spec", "addresses", "*", "type"), "IPAddress"),
    ],
    ("gateway.networking.k8s.io", "HTTPRoute"): [*_ROUTE_PARENT, *_HTTP_ROUTE_RULES, *_ROUTE_BACKEND],
    ("gateway.networking.k8s.io", "GRPCRoute"): [
        *_ROUTE_PARENT, *_ROUTE_BACKEND,
        (("spec", "rules", "*", "matches", "*", "method", "type"), "Exact"),
        (("spec", "rules", "*", "matches", "*", "headers", "*", "type"), "Exact")],
    ("gateway.networking.k8s.io", "TCPRoute"): [*_ROUTE_PARENT, *_ROUTE_BACKEND],
    ("gateway.networking.k8s.io", "TLSRoute"): [*_ROUTE_PARENT, *_ROUTE_BACKEND],
    ("gateway.networking.k8s.io", "UDPRoute"): [*_ROUTE_PARENT, *_ROUTE_BACKEND],
    # ../shared/crds/linkerd (linkerd2 version-2.20)
    ("policy.linkerd.io", "HTTPRoute"): [
        (("spec", "parentRefs", "*", "group"), "policy.linkerd.io"),
        (("spec", "parentRefs", "*", "kind"), "Gateway"),
        *_HTTP_ROUTE_RULES[:8], *_ROUTE_BACKEND],
    ("policy.linkerd.io", "Server"): [(("spec", "proxyProtocol"), "unknown"),
                                      (("spec", "accessPolicy"), "deny")],
    ("multicluster.linkerd.io", "Link"): [(("spec", "probeSpec", "failureThreshold"), "3"),
                                          (("spec", "probeSpec", "timeout"), "30s")],
    ("workload.linkerd.io", "ExternalWorkload"): [(("spec", "ports", "*", "protocol"), "TCP")],
}
"""Server-side defaults per ``(group, kind)``: ``(path, default)`` with ``"*"`` for every list item;
a callable default gets the parent mapping and returns the value or :data:`MISSING`. Applied in
order, so a defaulted object gets its own children's defaults (as structural defaulting does)."""

ALLOCATED: dict[tuple[str, str], list[tuple[str, ...]]] = {
    ("", "Service"): [("spec", "clusterIP"), ("spec", "clusterIPs"), ("spec", "ipFamilies"),
                      ("spec", "ipFamilyPolicy"), ("spec", "healthCheckNodePort"),
                      ("spec", "ports", "*", "nodePort")],
    ("", "ServiceAccount"): [("secrets",)],
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): [
        ("webhooks", "*", "clientConfig", "caBundle")],
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): [
        ("webhooks", "*", "clientConfig", "caBundle")],
}
"""Fields the server (or a controller) fills with values the stack cannot know: dropped from the
live side wherever the desired side does not set them (``caBundle``: injected by istiod)."""


class _Trie:
    """Default rules of one kind merged by path prefix, so one walk applies them all."""

    __slots__ = ("defaults", "children", "items")

    def __init__(self) -> None:
        self.defaults: dict[str, Default] = {}
        self.children: dict[str, "_Trie"] = {}
        self.items: "_Trie | None" = None

    def add(self, path: Sequence[str], default: Default) -> None:
        node = self
        for key in path[:-1]:
            if key == "*":
                node.items = node.items or _Trie()
                node = node.items
            else:
                node = node.children.setdefault(key, _Trie())
        if path[-1] == "*":
            raise ValueError(f"a default path ends with a field, not '*': {path}")
        node.defaults.setdefault(path[-1], default)
        node.children.setdefault(path[-1], _Trie())  # one dict keeps first-appearance order


_TRIES: dict[int, tuple[Any, _Trie]] = {}


def _trie_for(rules: list) -> _Trie:
    cached = _TRIES.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    trie = _Trie()
    for path, default in rules:
        trie.add(path, default)
    _TRIES[id(rules)] = (rules, trie)
    return trie


def _apply_trie(node: Any, trie: _Trie) -> Any:
    """``node`` with the trie's defaults set where absent, parents before children (structural
    defaulting order); copies only the containers that change."""
    if isinstance(node, list):
        if trie.items is None:
            return node
        out = None
        for idx, item in enumerate(node):
            new = _apply_trie(item, trie.items)
            if new is not item:
                if out is None:
                    out = list(node)
                out[idx] = new
        return node if out is None else out
    if not isinstance(node, dict):
        return node
    out = None
    for key, child in trie.children.items():
        value = (out or node).get(key)
        if value is None and key in trie.defaults:
            default = trie.defaults[key]
            value = default(out or node) if callable(default) else default
            if value is MISSING:
                continue
            if out is None:
                out = dict(node)
            out[key] = value
        if value is None or (not child.children and child.items is None):
            continue
        new = _apply_trie(value, child)
        if new is not value:
            if out is None:
                out = dict(node)
            out[key] = new
    return node if out is None else out


def _apply_rules(obj: Any, rules: list) -> Any:
    return _apply_trie(obj, _trie_for(rules))


def apply_defaults(obj: Mapping[str, Any], defaults: Mapping[tuple[str, str], list] | None = None) -> Mapping[str, Any]:
    """``obj`` with the server defaults of its kind filled in (see :data:`DEFAULTS`); the input is
    not mutated and is returned as is when its kind has no defaults."""
    rules = (DEFAULTS if defaults is None else defaults).get(
        (group_of(str(obj.get("apiVersion") or "")), str(obj.get("kind") or "")))
    return _apply_rules(obj, rules) if rules else obj


def _drop_at(live: Any, desired: Any, path: Sequence[str], i: int) -> Any:
    key = path[i]
    if key == "*":
        if not isinstance(live, list):
            return live
        out = None
        for idx, item in enumerate(live):
            d_item = desired[idx] if isinstance(desired, list) and idx < len(desired) else MISSING
            new = _drop_at(item, d_item, path, i + 1)
            if new is not item:
                if out is None:
                    out = list(live)
                out[idx] = new
        return live if out is None else out
    if not isinstance(live, dict) or key not in live:
        return live
    d_child = desired.get(key, MISSING) if isinstance(desired, dict) else MISSING
    if i == len(path) - 1:
        if d_child is not MISSING and d_child is not None:
            return live
        return {k: v for k, v in live.items() if k != key}
    new_child = _drop_at(live[key], d_child, path, i + 1)
    if new_child is live[key]:
        return live
    new = dict(live)
    new[key] = new_child
    return new


def drop_allocated(desired: Mapping[str, Any], live: Mapping[str, Any]) -> Mapping[str, Any]:
    """``live`` without the :data:`ALLOCATED` fields of its kind that ``desired`` does not set."""
    paths = ALLOCATED.get((group_of(str(live.get("apiVersion") or "")), str(live.get("kind") or "")))
    for path in paths or ():
        live = _drop_at(live, desired, path, 0)
    return live


def _keep_declared_keys(desired: Mapping[str, Any], live: Mapping[str, Any]) -> Mapping[str, Any]:
    """``live`` whose metadata labels/annotations are cut to the keys ``desired`` declares."""
    d_meta = _mapping(desired.get("metadata"))
    l_meta = _mapping(live.get("metadata"))
    new_meta = dict(l_meta)
    for part in ("labels", "annotations"):
        declared = _mapping(d_meta.get(part))
        have = _mapping(l_meta.get(part))
        kept = {k: have[k] for k in declared if k in have}
        if kept:
            new_meta[part] = kept
        else:
            new_meta.pop(part, None)
    out = dict(live)
    out["metadata"] = new_meta
    return out


def normalize_pair(desired: Mapping[str, Any], live: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both sides made comparable (steps 1-4 of the module doc), without ``apiVersion`` and
    ``metadata.namespace`` (part of the identity); the inputs are not mutated."""
    kind = (group_of(str(desired.get("apiVersion") or "")), str(desired.get("kind") or ""))
    d = strip_server_fields(fold_string_data(desired))
    l = strip_server_fields(fold_string_data(live))
    d.pop("apiVersion", None)
    l.pop("apiVersion", None)
    l = _keep_declared_keys(d, l)
    d["metadata"] = {k: v for k, v in d["metadata"].items() if k != "namespace"}
    l["metadata"].pop("namespace", None)
    rules = DEFAULTS.get(kind)
    if rules:
        d = _apply_rules(d, rules)
        l = _apply_rules(l, rules)
    for path in ALLOCATED.get(kind, ()):
        l = _drop_at(l, d, path, 0)
    return d, l


# ---------------------------------------------------------------------------------------------
# comparison

_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


def _key_path(base: str, key: Any) -> str:
    key = str(key)
    if _IDENT.match(key):
        return f"{base}.{key}" if base else key
    return f"{base}[{json.dumps(key)}]"


def is_unknown(value: Any) -> bool:
    """True for a deploy-time value: a :class:`Slot` or a string that holds ``$(deploy-time:``."""
    return isinstance(value, Slot) or (isinstance(value, str) and PLACEHOLDER_PREFIX in value)


def _empty(value: Any) -> bool:
    """Absent, None, ``[]``, or a mapping whose values are all empty (``{"a": {}}``)."""
    if value is MISSING or value is None:
        return True
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    return isinstance(value, (list, tuple)) and not value


def _names(items: list) -> list | None:
    """The ``name`` of every item when all are mappings with distinct string names, else None."""
    names = []
    for it in items:
        if not isinstance(it, dict):
            return None
        n = it.get("name")
        if not isinstance(n, str) or is_unknown(n):
            return None
        names.append(n)
    return names if len(set(names)) == len(names) else None


def compare_values(desired: Any, live: Any, path: str = "", out: list[FieldChange] | None = None,
                   within: tuple[Any, Any] = (None, None)) -> list[FieldChange]:
    """Every :class:`FieldChange` between ``desired`` and ``live`` under ``path`` (see module doc:
    empties are equal, deploy-time values are skipped, named lists pair by name). ``within``: the
    ``(desired, live)`` containers of the two values, carried in each change for redaction."""
    if out is None:
        out = []
    if is_unknown(desired):
        if _empty(live):
            out.append(FieldChange(path, desired, MISSING, within))
        return out
    if _empty(desired) and _empty(live):
        return out
    if isinstance(desired, dict) and isinstance(live, dict):
        if desired == live:
            return out
        for k in desired:
            compare_values(desired[k], live.get(k, MISSING), _key_path(path, k), out, (desired, live))
        for k in live:
            if k not in desired and not _empty(live[k]):
                out.append(FieldChange(_key_path(path, k), MISSING, live[k], (desired, live)))
        return out
    if isinstance(desired, (list, tuple)) and isinstance(live, (list, tuple)):
        if list(desired) == list(live):
            return out
        d_names, l_names = _names(list(desired)), _names(list(live))
        if d_names is not None and l_names is not None:
            by_name = dict(zip(l_names, live))
            for n, item in zip(d_names, desired):
                compare_values(item, by_name.get(n, MISSING), f"{path}[name={n}]", out, (desired, live))
            seen = set(d_names)
            for n, item in zip(l_names, live):
                if n not in seen:
                    out.append(FieldChange(f"{path}[name={n}]", MISSING, item, (desired, live)))
            return out
        for idx in range(max(len(desired), len(live))):
            d_item = desired[idx] if idx < len(desired) else MISSING
            l_item = live[idx] if idx < len(live) else MISSING
            if d_item is MISSING:
                out.append(FieldChange(f"{path}[{idx}]", MISSING, l_item, (desired, live)))
            elif l_item is MISSING:
                out.append(FieldChange(f"{path}[{idx}]", d_item, MISSING, (desired, live)))
            else:
                compare_values(d_item, l_item, f"{path}[{idx}]", out, (desired, live))
        return out
    if _empty(desired):
        out.append(FieldChange(path, MISSING, live, within))
    elif _empty(live):
        out.append(FieldChange(path, desired, MISSING, within))
    elif desired != live:
        out.append(FieldChange(path, desired, live, within))
    return out


def compare_object(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[FieldChange]:
    """The field changes from ``desired`` to ``live`` (same object), after :func:`normalize_pair`.
    Values are as they are (Secret data included): a report is made printable by
    :func:`redact_report`, never by its parts."""
    d, l = normalize_pair(desired, live)
    if d == l:
        return []
    return compare_values(d, l)


# ---------------------------------------------------------------------------------------------
# Helm releases


def release_view(release: Any) -> dict[str, Any]:
    """A desired release (``render.HelmRelease``, its ``to_dict()``, or a ``helm-releases.yaml``
    entry) as ``{name, namespace, chart, version, values}``; ``chart`` is cut to its last path
    segment (``oci://ghcr.io/x/istiod`` -> ``istiod``), as Helm names the chart in its metadata."""
    get = (lambda k: release.get(k)) if isinstance(release, Mapping) else (lambda k: getattr(release, k, None))
    chart = str(get("chart") or "")
    return {"name": str(get("name") or ""), "namespace": str(get("namespace") or ""),
            "chart": chart.rstrip("/").rpartition("/")[2], "version": str(get("version") or ""),
            "values": get("values") or {}}


def compare_release(desired: Any, live: LiveRelease) -> list[FieldChange]:
    """Changes between a desired release and the deployed one: ``chart``, ``version``,
    ``values.<path>`` (user values against the release's ``config``) and ``status`` when the
    newest revision is not deployed."""
    d = release_view(desired)
    out: list[FieldChange] = []
    if d["chart"] and live.chart and d["chart"] != live.chart:
        out.append(FieldChange("chart", d["chart"], live.chart))
    if d["version"] and not is_unknown(d["version"]) and d["version"].lstrip("v") != live.chart_version.lstrip("v"):
        out.append(FieldChange("version", d["version"], live.chart_version))
    compare_values(d["values"], live.values, "values", out)
    if live.status != "deployed" or (live.latest_status and live.latest_status != "deployed"):
        out.append(FieldChange("status", "deployed", live.latest_status or live.status))
    return out


def diff_releases(desired: Iterable[Any], live: Mapping[tuple[str, str], LiveRelease]) -> list[ReleaseDrift]:
    """One :class:`ReleaseDrift` per desired release that is missing or differs; ``live`` is keyed
    by ``(namespace, name)`` (see ``live.releases_from_objects``). Releases installed by hand are
    not reported: their storage Secret carries no ownership label."""
    out = []
    for r in desired:
        v = release_view(r)
        found = live.get((v["namespace"], v["name"]))
        if found is None:
            out.append(ReleaseDrift(v["namespace"], v["name"], "missing"))
            continue
        changes = compare_release(r, found)
        if changes:
            out.append(ReleaseDrift(v["namespace"], v["name"], "changed", tuple(changes)))
    return sorted(out, key=lambda r: (r.namespace, r.name))


# ---------------------------------------------------------------------------------------------
# one cluster


def find_orphans(live_objects: Iterable[Mapping[str, Any]], desired_keys: set, mesh: str,
                 releases: Iterable[str] = ()) -> list[ObjectDrift]:
    """Live objects owned by ``mesh`` (both ownership labels) whose key is not in ``desired_keys``.
    Objects Helm installed for one of ``releases`` (annotation ``meta.helm.sh/release-name``)
    belong to that release and are skipped."""
    release_names = set(releases)
    out = []
    for obj in live_objects:
        if not is_owned(obj, mesh):
            continue
        ref = object_ref(obj)
        if ref.key in desired_keys:
            continue
        ann = _mapping(_mapping(obj.get("metadata")).get("annotations"))
        release = ann.get("meta.helm.sh/release-name")
        if isinstance(release, str) and release in release_names:
            continue
        out.append(ObjectDrift(ref, "orphaned"))
    return sorted(out, key=lambda d: d.ref)


def diff_cluster(cluster: str, mesh: str, desired_objects: Iterable[Mapping[str, Any]],
                 live_objects: Iterable[Mapping[str, Any]], desired_releases: Iterable[Any] = (),
                 live_releases: Mapping[tuple[str, str], LiveRelease] | None = None,
                 notes: Iterable[str] = ()) -> ClusterReport:
    """Compare one cluster. Objects: missing, changed (with field changes) and orphaned; releases
    are compared only when ``live_releases`` is given (None: not read). Raises
    :class:`~mesh_components.spec.errors.MeshError` when two live objects share an identity
    (``live`` reports where each came from before this point)."""
    live_by_key: dict[tuple, Mapping[str, Any]] = {}
    twice = []
    for obj in live_objects:
        ref = object_ref(obj)
        if ref.key in live_by_key:  # never last-one-wins: a stale copy could hide what runs
            twice.append((f"cluster {cluster}", f"{ref} is in the live objects twice: one object per "
                                                f"API group, kind, namespace and name"))
        live_by_key[ref.key] = obj
    if twice:
        raise MeshError(twice)
    missing, changed = [], []
    desired_keys = set()
    for obj in desired_objects:
        ref = object_ref(obj)
        desired_keys.add(ref.key)
        live = live_by_key.get(ref.key)
        if live is None:
            missing.append(ObjectDrift(ref, "missing"))
            continue
        changes = compare_object(obj, live)
        if changes:
            changed.append(ObjectDrift(ref, "changed", tuple(changes)))
    desired_releases = list(desired_releases)
    orphaned = find_orphans(live_by_key.values(), desired_keys, mesh,
                            [release_view(r)["name"] for r in desired_releases])
    releases = diff_releases(desired_releases, live_releases) if live_releases is not None else []
    return ClusterReport(cluster, tuple(sorted(missing, key=lambda d: d.ref)),
                         tuple(sorted(changed, key=lambda d: d.ref)), tuple(orphaned),
                         tuple(releases), tuple(notes))


# ---------------------------------------------------------------------------------------------
# redaction (see the module doc): one pure function over the whole report

REDACTED_PREFIX = "<redacted"
"""Every replacement starts with this (``<redacted #3>``); ``render.REDACTED`` does too."""

_MARK = re.compile(r"<redacted[^<>\n]{0,60}>")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# Words a field name may end with after its secret word: ``keyPEM``, ``client-key-data``, ``ca-key.pem``.
_FORMAT_WORDS = frozenset({"pem", "data", "b64", "base64", "der", "hex", "raw", "encoded", "bytes", "str",
                           "string", "value", "contents", "content", "text"})
# The last word of a secret field name; ``secrets``/``credentials``: lists of them (``imagePullSecrets``
# is a list of references, whose ``name`` stays visible, see _SAFE_CHILDREN).
_SECRET_WORDS = frozenset({"password", "passwords", "passwd", "passphrase", "token", "tokens", "secret",
                           "secrets", "credential", "credentials", "kubeconfig", "psk", "htpasswd", "pass"})
# ``pwd`` is a password only after a qualifier: ``MYSQL_PWD`` (MySQL's password variable,
# https://dev.mysql.com/doc/refman/8.4/en/environment-variables.html), ``DB_PWD``; a bare ``PWD``
# (or ``OLDPWD``) is the shell's working directory (POSIX ``cd``).
_QUALIFIED_SECRET_WORDS = frozenset({"pwd"})
_SECRET_SUFFIXES = ("password", "passwd", "passphrase", "token", "secret", "credential", "credentials")
_SECRET_EXACT = frozenset({"auth", "pass", "jwt", "bearer", "dockercfg", "dockerconfigjson", "apikey",
                           "privatekey", "secretkey", "accesskey", "signingkey", "encryptionkey",
                           "clientkey", "sshkey", "tlskey", "cakey", "masterkey"})
# ``<qualifier>Key`` fields that name something rather than hold key material: ``topologyKey``
# (PodAffinityTerm, TopologySpreadConstraint), ``publicKey``, ``configMapKey``, ``labelKey``...
_KEY_NAME_QUALIFIERS = frozenset({"public", "topology", "label", "map", "sort", "partition", "hash", "primary",
                                  "routing", "cache", "object", "annotation", "lookup", "index", "field", "tag",
                                  "selector", "metadata", "header", "query", "claim", "node", "match", "group",
                                  "shard", "consistent"})
# Header or variable names whose value is a credential (``Authorization: Bearer ...``, ``Cookie``).
_HEADER_WORDS = frozenset({"authorization", "cookie"})
# A plain ``key`` is the *name* of a key in these Kubernetes and Istio types, not key material:
# LabelSelectorRequirement / NodeSelectorRequirement (``matchExpressions``, ``matchFields``),
# Toleration (``tolerations``), KeyToPath (``items``), Istio AuthorizationPolicy Condition (``when``)
# (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/label-selector/,
# https://istio.io/latest/docs/reference/config/security/authorization-policy/#Condition), and the
# SecretKeySelector / ConfigMapKeySelector under any ``...Ref``/``...Selector`` field (``secretKeyRef``).
_KEY_NAME_LISTS = frozenset({"matchExpressions", "matchFields", "tolerations", "items", "when"})
_KEY_NAME_PARENTS = frozenset({"ref", "reference", "selector"})
# Inside a secret field, these children describe or reference it and stay visible
# (``imagePullSecrets[0].name``, cert-manager ``privateKey.algorithm``).
_SAFE_CHILDREN = frozenset({"name", "namespace", "kind", "group", "apiVersion", "secretName", "path", "optional",
                            "type", "algorithm", "encoding", "size", "rotationPolicy", "enabled", "mode",
                            "defaultMode"})

_PEM_PRIVATE = re.compile(r"-----BEGIN (?P<t>[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END (?P=t)-----|\Z)",
                          re.DOTALL)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# a credential, not a word ("basic authentication"): it has a digit, a symbol or an inner capital
_AUTH_SCHEME = re.compile(r"(?i)\b(?:bearer|basic)[ \t]+(?![A-Za-z][a-z]*\b)([A-Za-z0-9._~+/=-]{8,})")
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,20}://[^\s/:@]{0,256}:)([^\s/@]{1,256})@")
_IDENT_AT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
# base64 text, possibly wrapped (``base64`` wraps at 76 columns; YAML may indent the lines)
_B64_RUN = re.compile(r"[A-Za-z0-9+/=]+(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/=]+(?=[ \t]*(?:\r?\n|\Z)))*")
_B64_BLOB = re.compile(r"[A-Za-z0-9+/]{12,}={0,2}")
_SPACE = re.compile(r"\s+")
_LINE = re.compile(r"(?P<pre>[ \t]*(?:-[ \t]+)?(?:export[ \t]+)?(?:--?)?[\"']?)(?P<name>\.?[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99})"
                   r"(?P<sep>[\"']?[ \t]*[:=][ \t]*)(?P<val>.*)")
# ``name=value`` / ``name: value`` inside a line: DSNs (``host=db password=x``), query strings
# (``?token=x&a=1``), logfmt, messages; a name may start with a dot (``.dockerconfigjson``)
_PAIR = re.compile(r"(?<![A-Za-z0-9_.\-])(?P<name>\.?[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99})[ \t]*[=:][ \t]*")
_PAIR_VALUE = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|[^\s&;,\"'<>]+")
_BLOCK_START = re.compile(r"[|>][-+0-9]*[ \t]*(?:#.*)?")
_FLAG = re.compile(r"--?(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]{0,99})")
# a flag anywhere in a line, its value after ``=`` or after blanks (a command line inside a string:
# ``sh -c "app --token x"``); after blanks the value is not itself a flag
_FLAG_ARG = re.compile(r"(?<![A-Za-z0-9_.\-])--?(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]{0,99})"
                       r"(?:[ \t]*=[ \t]*|(?P<blank>[ \t]+)(?=[^\s-]))")
# words that follow a flag in prose, not as its value ("pass --kubeconfig or set ...")
_PROSE_WORDS = frozenset({"a", "an", "and", "are", "as", "flag", "for", "if", "in", "is", "not", "of", "on",
                          "option", "or", "the", "to", "when", "with"})
_MAX_DECODE = 4 << 20  # bytes of text parsed as JSON or decoded from base64 (a Secret holds at most 1 MiB)


def _b64_needles(marker: bytes) -> tuple[str, ...]:
    """The base64 text that ``marker`` becomes at each of the 3 byte alignments, without the
    partial groups at either end (they depend on the neighbouring bytes)."""
    out = []
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + marker).decode()
        out.append(enc[4 if k else 0: len(enc) - (4 if (k + len(marker)) % 3 else 0)])
    return tuple(out)


_B64_PRIVATE = _b64_needles(b"PRIVATE KEY")

# Private keys with no PEM armour: base64 of DER (PKCS#8 PrivateKeyInfo / OneAsymmetricKey,
# RFC 5208 s5 and RFC 5958 s2, encrypted PKCS#8 RFC 5208 s6; SEC1 ECPrivateKey, RFC 5915 s3;
# PKCS#1 RSAPrivateKey, RFC 8017 A.1.2; PKCS#12 PFX, RFC 7292 s4) under a field of no secret name.
# Each is one DER SEQUENCE (base64 "M...") whose length is its whole text; PKCS#12 aside, a
# candidate of plausible length is confirmed by ``cryptography``'s own parser.
_DER_MIN, _DER_MAX = 40, 16384  # bytes: an Ed25519 PKCS#8 key is 48, an RSA-16384 PKCS#8 key ~9,400
_DER_B64 = re.compile(r"(?<![A-Za-z0-9+/])M[A-P][A-Za-z0-9+/]{6}")  # 0x30, then a length byte
_B64_CHARS = re.compile(r"[A-Za-z0-9+/]*")
_LINE_BREAK = re.compile(r"[ \t]*\r?\n[ \t]*")
_PKCS12_DATA = bytes.fromhex("06092a864886f70d010701")  # OID 1.2.840.113549.1.7.1 (id-data), RFC 7292 s4
# OpenSSH's own private key format, base64 of "openssh-key-v1\0..." (openssh-portable
# PROTOCOL.key, sshkey.c AUTH_MAGIC), when its "-----BEGIN OPENSSH PRIVATE KEY-----" lines are gone
_OPENSSH_RUN = re.compile(r"(?<![A-Za-z0-9+/])" + re.escape(base64.b64encode(b"openssh-key-v1\0").decode()[:20])
                          + r"[A-Za-z0-9+/=]*(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/=]+(?=[ \t]*(?:\r?\n|\Z)))*")


def _der_length(head: bytes) -> tuple[int, int] | None:
    """``(total length, header length)`` of the DER SEQUENCE that ``head`` (its first 6 bytes)
    starts, or None: not a SEQUENCE, or a length outside ``_DER_MIN``-``_DER_MAX``."""
    if len(head) < 6 or head[0] != 0x30:
        return None
    if head[1] < 0x80:
        size, hdr = head[1], 2
    elif head[1] == 0x81:
        size, hdr = head[2], 3
    elif head[1] == 0x82:
        size, hdr = head[2] << 8 | head[3], 4
    else:
        return None
    total = size + hdr
    return (total, hdr) if _DER_MIN <= total <= _DER_MAX else None


def is_der_private_key(der: bytes) -> bool:
    """True when ``der`` is exactly one DER-encoded private key: PKCS#8 (plain or encrypted),
    SEC1 EC, PKCS#1 RSA, DSA, or a PKCS#12 store. Bounded: only a SEQUENCE of 40 to 16,384
    bytes whose length field covers ``der`` exactly, whose first element is an INTEGER version
    (or, encrypted PKCS#8, a SEQUENCE) is handed to ``cryptography``'s
    ``load_der_private_key`` (RSA key checks skipped: seconds for a large key, and a key that
    fails them is still a key); "encrypted, no password given" (``TypeError``) and "algorithm not
    supported" count as keys, a parse error does not
    (https://cryptography.io/en/latest/hazmat/primitives/asymmetric/serialization/#cryptography.hazmat.primitives.serialization.load_der_private_key).
    Certificates and public keys are not keys (their first element is a SEQUENCE that does not
    parse as an encrypted key)."""
    size = _der_length(der[:6])
    if size is None or size[0] != len(der):
        return False
    body = der[size[1]:]
    if body[:3] == b"\x02\x01\x03" and _PKCS12_DATA in body[:32]:  # PFX version 3, authSafe id-data
        return True
    if body[:1] not in (b"\x02", b"\x30"):
        return False
    # imported here: only a candidate that passed the checks above pays for loading OpenSSL
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_der_private_key
    try:
        load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:  # "Password was not given but private key is encrypted"
        return True
    except UnsupportedAlgorithm:
        return True
    except ValueError:
        return False
    return True


def _b64_span(text: str, start: int, count: int) -> tuple[int, bool]:
    """``(end, True)``: ``text[start:end]`` holds ``count`` base64 characters, line breaks
    between them allowed (a key wrapped at 64 or 76 columns, indented in YAML);
    ``(where it stopped, False)`` when another character comes first or the text ends."""
    i, seen = start, 0
    while True:
        run = _B64_CHARS.match(text, i).end() - i
        if seen + run >= count:
            return i + count - seen, True
        seen, i = seen + run, i + run
        gap = _LINE_BREAK.match(text, i)
        if gap is None:
            return i, False
        i = gap.end()


def _redact_der_keys(text: str, marks: dict) -> str:
    """``text`` with each base64 DER private key (:func:`is_der_private_key`), wrapped or not,
    and each OpenSSH key body replaced. A key starts where base64 does (``key: MIIE...``,
    ``password=MIIE...``) and is as long as its DER length field says, ``=`` padding included.
    Linear in ``len(text)``: a text whose candidate keys would need more than 64 Ki plus twice
    its length characters read is replaced whole (the worst is assumed)."""
    if len(text) < 64:
        return text
    budget = (1 << 16) + 2 * len(text)
    spans, pos = [], 0
    for m in _DER_B64.finditer(text):
        i = m.start()
        if i < pos:
            continue
        size = _der_length(base64.b64decode(m.group(0)))
        if size is None:
            continue
        data = (size[0] * 4 + 2) // 3  # base64 characters before the padding
        end, whole = _b64_span(text, i, data)
        budget -= end - i
        if budget < 0:
            return _mark(marks, text)
        if not whole:
            continue
        compact = _SPACE.sub("", text[i:end])
        pad = -data % 4
        try:
            der = base64.b64decode(compact + "=" * pad, validate=True)
        except ValueError:
            continue
        if len(der) != size[0] or not is_der_private_key(der):
            continue
        while pad and text.startswith("=", end):
            end, pad = end + 1, pad - 1
        spans.append((i, end, compact))
        pos = end
    spans += [(m.start(), m.end(), _SPACE.sub("", m.group(0))) for m in _OPENSSH_RUN.finditer(text)]
    out, pos = [], 0
    for start, end, key in sorted(spans):
        if start >= pos:
            out += [text[pos:start], _mark(marks, key)]
            pos = end
    return "".join(out) + text[pos:] if out else text


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(name)]


def is_secret_name(name: str, header: bool = False) -> bool:
    """True when a field (or, with ``header``, an env var or header) named ``name`` holds a secret:
    its last word (camelCase, ``-``, ``_``, ``.`` split; a trailing ``PEM``/``data``/``b64``...
    dropped) is ``password``, ``token``, ``secret``, ``credentials``... or ``key`` not qualified
    as a name (``topologyKey``, ``publicKey``); with ``header`` also ``Authorization``/``Cookie``.
    ``keyPEM``, ``tls.key``, ``client-key-data``, ``secretAccessKey``, ``DB_PASSWORD``, ``DB_PASS``,
    ``MYSQL_PWD``, ``.dockerconfigjson`` are; ``crtPEM``, ``secretName``, ``tokenFile``,
    ``passwordRef``, ``keyManager``, ``PWD``, ``bypass`` are not. A bare ``key`` is, except
    where the caller knows it names a key (see :func:`redact_report`)."""
    words = _words(name)
    while len(words) > 1 and words[-1] in _FORMAT_WORDS:
        words.pop()
    if not words:
        return False
    last = words[-1]
    if "".join(words) in _SECRET_EXACT:
        return True
    if last == "key":
        return not (len(words) > 1 and words[-2] in _KEY_NAME_QUALIFIERS)
    if last in _SECRET_WORDS or last.endswith(_SECRET_SUFFIXES):
        return True
    if last in _QUALIFIED_SECRET_WORDS and len(words) > 1:
        return True
    return header and last in _HEADER_WORDS


Segment = tuple[str, Any]  # ("field", name) or ("item", name of the list item or None)


def _parse_path(path: str) -> list[Segment] | None:
    """The segments of a :class:`FieldChange` path (``a.b["x.y"][0][name=n]``), None if it does not parse."""
    out: list[Segment] = []
    i, n = 0, len(path)
    while i < n:
        c = path[i]
        if c == ".":
            i += 1
        elif path.startswith('["', i):
            try:
                key, end = json.JSONDecoder().raw_decode(path, i + 1)
            except ValueError:
                return None
            if path[end:end + 1] != "]":
                return None
            out.append(("field", key))
            i = end + 1
        elif path.startswith("[name=", i):
            j = i + 6
            while True:  # a name may hold "]": the segment ends at a "]" before ".", "[" or the end
                j = path.find("]", j)
                if j < 0:
                    return None
                if j + 1 == n or path[j + 1] in ".[":
                    break
                j += 1
            out.append(("item", path[i + 6:j]))
            i = j + 1
        elif c == "[":
            j = path.find("]", i)
            if j < 0 or not path[i + 1:j].isdigit():
                return None
            out.append(("item", None))
            i = j + 1
        else:
            m = _IDENT_AT.match(path, i)
            if not m:
                return None
            out.append(("field", m.group(0)))
            i = m.end()
    return out


def _key_names_something(ctx: Sequence[Segment]) -> bool:
    """True when a field ``key`` at ``ctx`` is the name of a key (see :data:`_KEY_NAME_LISTS`)."""
    if ctx and ctx[-1][0] == "field":
        parent = _words(str(ctx[-1][1]))
        return bool(parent) and parent[-1] in _KEY_NAME_PARENTS
    return len(ctx) >= 2 and ctx[-1][0] == "item" and ctx[-2][0] == "field" and ctx[-2][1] in _KEY_NAME_LISTS


def _child_state(state: int, ctx: Sequence[Segment], name: str, parent: Any = None, value: Any = None) -> int:
    """Redaction state of field ``name`` under ``ctx``: 0 clear (shapes still checked), 1 secret
    (its references stay visible), 2 secret through and through (Secret data)."""
    if state == 2:
        return 2
    if state == 1:
        return 0 if name in _SAFE_CHILDREN or name == "key" and _key_names_something(ctx) else 1
    if name == "key" and _key_names_something(ctx):
        return 0
    if is_secret_name(name) or (isinstance(value, str) and is_secret_name(name, header=True)):
        return 1
    if name in ("value", "values"):  # EnvVar / HTTPHeader {name, value}, or {key, value} pairs
        owner = None
        if isinstance(parent, Mapping):
            owner = parent.get("name") if isinstance(parent.get("name"), str) else parent.get("key")
        elif ctx and ctx[-1][0] == "item":
            owner = ctx[-1][1]
        if isinstance(owner, str) and is_secret_name(owner, header=True):
            return 1
    return 0


def _mark(marks: dict, value: Any) -> str:
    key = value if isinstance(value, str) else "\0" + json.dumps(to_jsonable(value), sort_keys=True)
    return f"<redacted #{marks.setdefault(key, len(marks) + 1)}>"


def _redact_lines(text: str, marks: dict) -> str:
    """``name: value`` / ``name=value`` / ``--name=value`` lines of ``text`` (YAML, INI, env files,
    flags) with a secret ``name`` get their value replaced; so do the more-indented lines below a
    ``name: |`` block or a ``name:`` mapping."""
    if ":" not in text and "=" not in text:
        return _redact_flags(text, marks)
    lines = text.split("\n")
    out, block_indent, block = [], -1, []

    def close_block():
        tail = []
        while block and not block[-1].strip():  # blank lines after the block are not part of it
            tail.append(block.pop())
        if block:
            out.append(" " * (block_indent + 2) + _mark(marks, "\n".join(block)))
        out.extend(tail)
        block.clear()

    for line in lines:
        indent = len(line) - len(line.lstrip(" \t"))
        if block_indent >= 0:
            if line.strip() and indent > block_indent or not line.strip() and block:
                block.append(line)
                continue
            close_block()
            block_indent = -1
        m = _LINE.fullmatch(line)
        if m and is_secret_name(m.group("name"), header=True):
            val = m.group("val")
            if not val.strip() or _BLOCK_START.fullmatch(val):
                out.append(line)
                block_indent = indent
                continue
            if not _MARK.fullmatch(val.strip().strip("\"',")):
                line = m.group("pre") + m.group("name") + m.group("sep") + _mark(marks, val)
        out.append(line)
    close_block()
    return _redact_flags(_redact_pairs("\n".join(out), marks), marks)


def _redact_pairs(text: str, marks: dict) -> str:
    """``text`` with the value of every ``name=value`` / ``name: value`` inside a line replaced
    when ``name`` is secret; a value runs to the next space, ``&``, ``;`` or ``,`` (or is quoted)."""
    out, pos = [], 0
    for m in _PAIR.finditer(text):
        if m.start() < pos or not is_secret_name(m.group("name"), header=True):
            continue
        v = _PAIR_VALUE.match(text, m.end())
        if not v or _MARK.match(text, m.end()):
            continue
        out += [text[pos:v.start()], _mark(marks, v.group(0))]
        pos = v.end()
    return "".join(out) + text[pos:] if out else text


def _redact_flags(text: str, marks: dict) -> str:
    """``text`` with the value of every secret flag inside a line replaced: ``--token=x``,
    ``--token x``, ``-password "x"`` (a command line in a string, ``sh -c "app --token x"``)."""
    if "-" not in text:
        return text
    out, pos = [], 0
    marked = [m.span() for m in _MARK.finditer(text)]  # "<redacted: ... --include-secrets to show>"
    for m in _FLAG_ARG.finditer(text):
        if m.start() < pos or not is_secret_name(m.group("name")) or any(a <= m.start() < b for a, b in marked):
            continue
        v = _PAIR_VALUE.match(text, m.end())
        if not v or _MARK.match(text, m.end()) or m.group("blank") and v.group(0) in _PROSE_WORDS:
            continue
        out += [text[pos:v.start()], _mark(marks, v.group(0))]
        pos = v.end()
    return "".join(out) + text[pos:] if out else text


def _redact_shapes(text: str, marks: dict) -> str:
    """``text`` with what is a secret by its shape alone replaced: PEM private keys, base64 of
    one, base64 DER private keys (:func:`_redact_der_keys`), JWTs, ``Bearer``/``Basic``
    credentials, URL passwords."""
    if "PRIVATE KEY" in text:
        text = _PEM_PRIVATE.sub(lambda m: _mark(marks, m.group(0)), text)
    if any(n in _SPACE.sub("", text) for n in _B64_PRIVATE):
        def run(m: re.Match) -> str:
            compact = _SPACE.sub("", m.group(0))
            return _mark(marks, compact) if any(n in compact for n in _B64_PRIVATE) else m.group(0)
        replaced = _B64_RUN.sub(run, text)
        text = replaced if replaced != text else _mark(marks, text)  # split some other way: all of it
    text = _redact_der_keys(text, marks)
    if "eyJ" in text:
        text = _JWT.sub(lambda m: _mark(marks, m.group(0)), text)
    text = _AUTH_SCHEME.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + _mark(marks, m.group(1)), text)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group(1) + _mark(marks, m.group(2)) + "@", text)
    return text


def redact_text(text: str, marks: dict | None = None, _depth: int = 0) -> str:
    """``text`` (a value of no secret field, a message, a note) with the secrets it holds
    replaced by ``<redacted #N>`` (``marks``: value -> N, shared across one report): JSON
    documents are redacted as structures; base64 that decodes to text holding a secret is
    replaced whole; then :func:`_redact_shapes` and secret ``name: value`` lines. Linear in
    ``len(text)``; already redacted text is returned as it is."""
    marks = {} if marks is None else marks
    if not text or _MARK.fullmatch(text):
        return text
    head = text.lstrip()[:1]
    if head in ("{", "[") and len(text) <= _MAX_DECODE:
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, (dict, list)):
            red = _redact_value(doc, (), 0, marks)
            return text if red == doc else json.dumps(red, ensure_ascii=False)
    compact = _SPACE.sub("", text) if len(text) <= _MAX_DECODE else ""
    if _depth < 2 and len(compact) % 4 == 0 and _B64_BLOB.fullmatch(compact):
        try:
            decoded = base64.b64decode(compact, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            decoded = None
        if decoded is not None and redact_text(decoded, {}, _depth + 1) != decoded:
            return _mark(marks, text)
    return _redact_shapes(_redact_lines(text, marks), marks)


def _redact_value(value: Any, ctx: tuple[Segment, ...], state: int, marks: dict) -> Any:
    """``value`` found at ``ctx`` in redaction ``state`` (see :func:`_child_state`), redacted.
    Mappings are walked in sorted key order so the numbering does not depend on dict order."""
    if value is MISSING or value is None or is_unknown(value):
        return value
    if isinstance(value, Mapping):
        red = {}
        for k in sorted(value, key=str):
            name = str(k)
            red[k] = _redact_value(value[k], ctx + (("field", name),),
                                   _child_state(state, ctx, name, value, value[k]), marks)
        return {k: red[k] for k in value}
    if isinstance(value, (list, tuple)):
        out, flag = [], False
        for item in value:
            name = item.get("name") if isinstance(item, Mapping) and isinstance(item.get("name"), str) else None
            out.append(_redact_value(item, ctx + (("item", name),), 1 if flag and not state else state, marks))
            flag = not state and _is_secret_flag(item)  # ["--token", "abc"]
        return out
    if state:
        if value == "" or isinstance(value, bool) and state == 1 or isinstance(value, str) and _MARK.fullmatch(value):
            return value  # an already redacted value keeps its number: redact_report is idempotent
        return _mark(marks, value)
    if isinstance(value, bytes):  # YAML !!binary
        if is_der_private_key(value):
            return _mark(marks, base64.b64encode(value).decode())
        text = value.decode("utf-8", "replace")
        red = redact_text(text, marks)
        return value if red == text else red
    return redact_text(value, marks) if isinstance(value, str) else value


def _path_state(segments: Sequence[Segment], secret_object: bool, value: Any) -> int:
    if secret_object and segments and segments[0] in (("field", "data"), ("field", "stringData")):
        return 2
    state = 0
    for i, (kind, name) in enumerate(segments):
        if kind == "field":
            last = i == len(segments) - 1
            state = _child_state(state, segments[:i], name, value=value if last else None)
    return state


_LAST_INDEX = re.compile(r"\[([0-9]+)\]\Z")


def _is_secret_flag(item: Any) -> bool:
    """True for a list item that is a secret flag whose value is the next item (``"--token"``)."""
    m = _FLAG.fullmatch(item) if isinstance(item, str) else None
    return bool(m and is_secret_name(m.group("name")))


def _within_state(change: FieldChange, segments: Sequence[Segment]) -> int:
    """1 when a container in ``change.within`` makes the changed value a secret although its path
    does not: a list item right after a secret flag on either side (``extraArgs[2]`` of
    ``[-v, --token, x]``), or a ``value`` whose sibling ``name``/``key`` is secret in an item of a
    list paired by position (``env[3].value``); else 0."""
    if not segments:
        return 0
    kind, name = segments[-1]
    index = _LAST_INDEX.search(change.path) if kind == "item" else None
    for parent in change.within:
        if kind == "field" and isinstance(parent, Mapping):
            if _child_state(0, segments[:-1], name, parent, parent.get(name)):
                return 1
        elif index and isinstance(parent, (list, tuple)):
            i = int(index.group(1))
            if 0 < i <= len(parent) and _is_secret_flag(parent[i - 1]):
                return 1
    return 0


def _redact_change(change: FieldChange, secret_object: bool, marks: dict) -> FieldChange:
    segments = _parse_path(change.path)
    if segments is None:  # a path we cannot read: assume the worst
        segments, state = [], 2
    else:
        probe = change.desired if isinstance(change.desired, str) else change.live
        state = _path_state(segments, secret_object, probe) or _within_state(change, segments)
    ctx = tuple(segments)
    return FieldChange(_redact_shapes(change.path, marks), _redact_value(change.desired, ctx, state, marks),
                       _redact_value(change.live, ctx, state, marks))


def redact_report(report: DriftReport) -> DriftReport:
    """A copy of ``report`` safe to print or post: every secret value in its changes, findings
    and notes replaced by ``<redacted #N>``, ``N`` the same for equal values and different for
    different ones within the report (see the module doc for what counts as a secret). Identities
    (kinds, names, paths) and counts are kept, so the drift stays as visible as before; the
    changes come back without :attr:`FieldChange.within`. Pure and idempotent
    (``redact_report(redact_report(r)) == redact_report(r)``, numbers included)."""
    marks: dict = {}

    def changes(items: Iterable[FieldChange], secret_object: bool) -> tuple[FieldChange, ...]:
        return tuple(_redact_change(c, secret_object, marks) for c in items)

    clusters = []
    for c in report.clusters:
        changed = tuple(replace(d, changes=changes(d.changes, d.ref.key[:2] == ("", "Secret"))) for d in c.changed)
        releases = tuple(replace(r, changes=changes(r.changes, False)) for r in c.releases)
        clusters.append(replace(c, changed=changed, releases=releases,
                                notes=tuple(redact_text(n, marks) for n in c.notes)))
    findings = tuple(replace(f, subject=redact_text(f.subject, marks), message=redact_text(f.message, marks))
                     for f in report.findings)
    return replace(report, clusters=tuple(clusters), findings=findings)
