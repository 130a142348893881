"""Reading live state: the Kubernetes list API (one LIST per kind and cluster), ``kubectl`` dumps,
and Helm release storage Secrets.

No Pulumi here. The kubernetes client is imported only by :func:`client_for`, so the dump path
and the Helm decoder work without it.

Dumps (``diff --live DIR``)
---------------------------
For each cluster ``C`` of the stack, one of:

- ``DIR/C.yaml`` / ``DIR/C.yml`` / ``DIR/C.json``: YAML or JSON holding one or more documents,
  each either a Kubernetes object or a list (``kind: List`` or ``<Kind>List`` with ``items``), as
  written by ``kubectl get <kinds> -A -o yaml`` (items of typed lists without ``apiVersion``/``kind``
  get the list's, minus the ``List`` suffix);
- ``DIR/C/``: a directory whose ``*.yaml``/``*.yml``/``*.json`` files (recursively) are read as above.

Include the Gateway API CRDs (``kubectl get crd -o yaml``, or just the ones the stack uses) to
check the versions they serve (``mesh_components.core.gateway_api.check_crds``); without any CRD the
report notes that check did not run. Include ``secrets`` in the dump to compare Helm releases
and trust anchors, e.g.
``kubectl get ns,svc,sa,cm,secrets,mutatingwebhookconfigurations,peerauthentications,authorizationpolicies,... -A -o yaml > DIR/C.yaml``.
Include ``pods`` to check what the stack assumes of the workloads (``mesh_components.drift.workloads``),
e.g. ``kubectl get pods -A --field-selector=status.phase!=Succeeded,status.phase!=Failed -o json >
DIR/C/pods.json`` beside ``DIR/C/rest.json``; a dump without any Pod gets a note and no workload check.
For large clusters prefer ``-o json``: a JSON dump is read with ``json`` (about 0.2 s for 10,000
objects) where YAML takes seconds even with libyaml (see ``benchmarks/DIFF.md``).
A dump without any Secret is taken as "releases not read": releases are not compared (a note
says so); with Secrets but no Helm storage Secret for a release, that release is missing.

An object is in a cluster's dump once: two documents (in one file or in two) with the same
identity (API group, kind, namespace, name; the version is not part of it) are an error naming
both, never "the last one wins" (a stale dump beside a fresh one could hide what runs). So are
two Helm storage Secrets for the same release revision.

Objects of any shape: every object read, from a dump or a LIST, has its envelope checked once
(:func:`envelope_problems`: ``apiVersion``/``kind``/``metadata.name`` strings, ``metadata`` a
mapping, ``labels``/``annotations`` maps of strings): one that fails is an error at its place
(``file#doc[i].items[j]: message``, exit 1). That is where every reader looks (identity,
ownership, selectors), an API server never stores anything else, and a dump that breaks it is
hand-edited or truncated: its report would be about the wrong objects. Below the envelope a field
may hold any JSON shape (null, a number where a mapping belongs...): the readers (``diff``,
``intent``, ``workloads``, Helm decoding) take it as it is, and the diff reports it as drift, as it
would any other hand edit. A Helm storage Secret that does not decode is an error at the Secret.

Helm storage (https://helm.sh/docs/topics/advanced/#storage-backends, helm ``pkg/storage/driver``):
Secret ``sh.helm.release.v1.<release>.v<revision>`` of type ``helm.sh/release.v1``, labels
``owner=helm``, ``name``, ``status``, ``version``; ``data.release`` is base64 (the Secret's own
encoding) of base64 of gzip of the release JSON.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from .diff import LiveRelease, group_of, object_ref
from ..spec.errors import MeshError, Problem

__all__ = [
    "LiveError", "LiveState", "HELM_SECRET_TYPE", "WATCHED_KINDS", "PLURALS", "plural_of", "envelope_problems",
    "MAX_RELEASE_BYTES", "UNCONSTRUCTIBLE",
    "list_path", "kinds_to_read", "parse_dump_text", "parse_dump_located", "duplicate_objects",
    "read_dump_dir", "decode_helm_release", "yaml_error_text",
    "releases_from_objects", "client_for", "list_kind", "read_crds", "read_cluster", "kubeconfig_contexts",
]

HELM_SECRET_TYPE = "helm.sh/release.v1"
_HELM_NAME = re.compile(r"^sh\.helm\.release\.v1\.(?P<name>.+)\.v(?P<rev>\d+)$")
_GZIP_MAGIC = b"\x1f\x8b\x08"


class LiveError(MeshError):
    """Live state could not be read: a bad dump, an unreachable cluster, a refused request.
    ``problems`` is a list of ``(path, message)`` (path = file, ``file#doc[i]``, or cluster)."""


@dataclass
class LiveState:
    """What was read from one cluster: ``objects`` (every object listed, Helm Secrets included),
    ``releases`` keyed by ``(namespace, name)`` (None when no Helm storage was read), ``notes``
    (facts for the report, e.g. a kind the cluster does not serve) and ``requests`` made.
    ``crds``: the CustomResourceDefinitions read by name (:func:`read_crds`; None when not read:
    a dump's CRDs are then those among its ``objects``)."""

    objects: list[dict[str, Any]]
    releases: dict[tuple[str, str], LiveRelease] | None = None
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    crds: list[dict[str, Any]] | None = None
    pods_read: bool = False
    """True when the cluster's Pods were listed (or a dump holds Pods): only then are the workloads
    checked (``mesh_components.drift.workloads``). Pods are kept trimmed (``workloads.trim_pod``)."""


# ---------------------------------------------------------------------------------------------
# kinds

WATCHED_KINDS: tuple[tuple[str, str], ...] = (
    # Helm storage, trust anchors, shared mesh config, revision tags
    ("v1", "Namespace"), ("v1", "Secret"), ("v1", "ConfigMap"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    # every kind the renderers emit, so an owned object of a kind the stack no longer uses is found
    ("v1", "Service"), ("v1", "ServiceAccount"),
    ("security.istio.io/v1", "PeerAuthentication"), ("security.istio.io/v1", "AuthorizationPolicy"),
    ("networking.istio.io/v1", "ServiceEntry"), ("networking.istio.io/v1", "Sidecar"),
    ("networking.istio.io/v1", "Gateway"), ("networking.istio.io/v1", "DestinationRule"),
    ("networking.istio.io/v1", "VirtualService"),
    ("gateway.networking.k8s.io/v1", "Gateway"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"), ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
    ("policy.linkerd.io/v1alpha1", "AuthorizationPolicy"), ("policy.linkerd.io/v1beta3", "Server"),
    ("policy.linkerd.io/v1alpha1", "MeshTLSAuthentication"),
    ("policy.linkerd.io/v1alpha1", "NetworkAuthentication"), ("policy.linkerd.io/v1beta3", "HTTPRoute"),
    ("split.smi-spec.io/v1alpha2", "TrafficSplit"),
    # what the stack assumes of the workloads (mesh_components.drift.workloads): running pods only,
    # trimmed as they are read
    ("v1", "Pod"),
)
"""Kinds always read, besides those the stack declares: Helm storage and trust anchors (Secret,
ConfigMap), revision tags (MutatingWebhookConfiguration), PeerAuthentication for the mTLS check,
and every kind the renderers emit (for orphans). A kind the cluster does not serve (404) costs one
request and is skipped, with a note only when the stack declares objects of it."""

PLURALS: dict[str, str] = {
    "AuthorizationPolicy": "authorizationpolicies", "PeerAuthentication": "peerauthentications",
    "RequestAuthentication": "requestauthentications", "ServiceEntry": "serviceentries",
    "DestinationRule": "destinationrules", "VirtualService": "virtualservices",
    "Gateway": "gateways", "Sidecar": "sidecars", "WorkloadEntry": "workloadentries",
    "WorkloadGroup": "workloadgroups", "EnvoyFilter": "envoyfilters", "Telemetry": "telemetries",
    "ProxyConfig": "proxyconfigs", "WasmPlugin": "wasmplugins",
    "HTTPRoute": "httproutes", "GRPCRoute": "grpcroutes", "TCPRoute": "tcproutes",
    "TLSRoute": "tlsroutes", "UDPRoute": "udproutes", "GatewayClass": "gatewayclasses",
    "ReferenceGrant": "referencegrants", "BackendTLSPolicy": "backendtlspolicies",
    "TrafficSplit": "trafficsplits", "TrafficTarget": "traffictargets",
    "HTTPRouteGroup": "httproutegroups", "Server": "servers",
    "ServerAuthorization": "serverauthorizations", "MeshTLSAuthentication": "meshtlsauthentications",
    "NetworkAuthentication": "networkauthentications", "Link": "links",
    "ServiceProfile": "serviceprofiles", "ExternalWorkload": "externalworkloads",
    "Egress": "egresses", "IngressBackend": "ingressbackends", "MeshConfig": "meshconfigs",
    "Namespace": "namespaces", "Secret": "secrets", "ConfigMap": "configmaps",
    "Service": "services", "ServiceAccount": "serviceaccounts", "Endpoints": "endpoints",
    "Deployment": "deployments", "DaemonSet": "daemonsets", "StatefulSet": "statefulsets",
    "Role": "roles", "RoleBinding": "rolebindings", "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings", "NetworkPolicy": "networkpolicies",
    "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
    "CustomResourceDefinition": "customresourcedefinitions",
    "Certificate": "certificates", "Issuer": "issuers", "ClusterIssuer": "clusterissuers",
    "Bundle": "bundles", "Stack": "stacks",
}
"""Resource names (plurals) for the kinds the mesh uses, as the CRDs in ``../shared/crds`` and
the Kubernetes API reference name them; other kinds use :func:`plural_of`'s English rule."""


def plural_of(kind: str) -> str:
    """The resource (plural) name of ``kind``: :data:`PLURALS`, else lower-case + ``s``/``es``/``ies``
    (the rule of k8s.io/apimachinery ``meta.UnsafeGuessKindToResource``)."""
    if kind in PLURALS:
        return PLURALS[kind]
    low = kind.lower()
    if low.endswith("s"):
        return low + "es"
    if low.endswith("y"):
        return low[:-1] + "ies"
    return low + "s"


def list_path(api_version: str, kind: str) -> str:
    """The all-namespaces list path: ``/api/v1/secrets``, ``/apis/security.istio.io/v1/peerauthentications``
    (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris)."""
    prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    return f"{prefix}/{plural_of(kind)}"


def kinds_to_read(desired_objects: Iterable[Mapping[str, Any]],
                  extra: Iterable[tuple[str, str]] = WATCHED_KINDS) -> list[tuple[str, str]]:
    """``(apiVersion, kind)`` to LIST: every kind the desired objects use, then ``extra``; one
    entry per ``(group, kind)`` (the desired object's version wins)."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for obj in desired_objects:
        av, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        out.setdefault((group_of(av), kind), (av, kind))
    for av, kind in extra:
        out.setdefault((group_of(av), kind), (av, kind))
    return list(out.values())


# ---------------------------------------------------------------------------------------------
# dumps

try:  # the C loader is ~10x faster on large dumps
    _Loader = yaml.CSafeLoader  # type: ignore[attr-defined]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader  # type: ignore[misc]


def _type_name(value: Any) -> str:
    """How a message names the JSON type of ``value`` (never the value: it may be a secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number",
            float: "a number"}.get(type(value), f"a {type(value).__name__}")


_ENVELOPE_MAPS = ("labels", "annotations")
_SHOWN_KEYS = 3  # keys named in an envelope message before "and N more"


def envelope_problems(obj: Any) -> list[str]:
    """Why ``obj`` is not a Kubernetes object as the API server stores one, in the fields every
    reader of live objects relies on (identity and ownership); empty when it is one. Each message
    names the field and the JSON type found, never the value.

    The envelope (k8s.io/apimachinery v0.36.3 pkg/apis/meta/v1/types.go): ``TypeMeta``
    ``apiVersion`` and ``kind`` strings (lines 42-56); ``ObjectMeta`` a mapping (line 131) whose
    ``name`` (line 139) and ``namespace`` (line 165) are strings and whose ``labels`` (line 243)
    and ``annotations`` (line 250) are ``map[string]string``. ``apiVersion``, ``kind`` and
    ``metadata.name`` must be present; null ``namespace``/``labels``/``annotations`` are absent
    (``omitempty``). Fields below the envelope (``spec``, ``data``, ``status``...) are not
    checked here: their readers take any JSON shape (a wrong type there is drift)."""
    if not isinstance(obj, dict):
        return [f"expected a Kubernetes object, got {_type_name(obj)}"]
    missing: list[str] = []
    wrong: list[str] = []
    for k in ("apiVersion", "kind"):
        v = obj.get(k)
        if v is None or v == "":
            missing.append(k)
        elif not isinstance(v, str):
            wrong.append(f"{k} is {_type_name(v)}, not a string")
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        wrong.append(f"metadata is {_type_name(meta)}, not a mapping")
        meta = None
    name = (meta or {}).get("name")
    if name is None or name == "":
        missing.append("metadata.name")
    elif not isinstance(name, str):
        wrong.append(f"metadata.name is {_type_name(name)}, not a string")
    ns = (meta or {}).get("namespace")
    if ns is not None and not isinstance(ns, str):
        wrong.append(f"metadata.namespace is {_type_name(ns)}, not a string")
    for part in _ENVELOPE_MAPS:
        m = (meta or {}).get(part)
        if m is None:
            continue
        if not isinstance(m, dict):
            wrong.append(f"metadata.{part} is {_type_name(m)}, not a mapping of strings to strings")
            continue
        bad = [(k, v) for k, v in m.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            shown = ", ".join(
                (f"key {json.dumps(str(k))} is {_type_name(k)}" if not isinstance(k, str)
                 else f"{json.dumps(k)} is {_type_name(v)}") for k, v in bad[:_SHOWN_KEYS])
            more = f" and {len(bad) - _SHOWN_KEYS} more" if len(bad) > _SHOWN_KEYS else ""
            wrong.append(f"metadata.{part} maps strings to strings ({shown}{more}; quote them in YAML)")
    out = [f"not a Kubernetes object: missing {', '.join(missing)}"] if missing else []
    if wrong:
        out.append("not a Kubernetes object as the API server stores one: " + "; ".join(wrong))
    return out


def _flatten(doc: Any, where: str, out: list[tuple[str, dict]], problems: list[Problem], top: bool = True) -> None:
    if doc is None and top:  # an empty YAML document (``---`` twice, a trailing ``---``)
        return
    if not isinstance(doc, dict):
        problems.append((where, f"expected a Kubernetes object or List, got {_type_name(doc)}"))
        return
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        items = doc.get("items")
        if items is None:  # ``kubectl get`` of nothing writes ``items: []``; null is as empty
            return
        if not isinstance(items, list):  # ``List.Items []runtime.RawExtension`` (types.go:1133-1141)
            problems.append((f"{where}.items", f"expected a list of Kubernetes objects, got {_type_name(items)}"))
            return
        item_kind = kind[:-4] if kind != "List" else None
        for j, item in enumerate(items):
            if isinstance(item, dict) and item_kind and not item.get("kind"):
                item = {"apiVersion": doc.get("apiVersion"), "kind": item_kind, **item}
            _flatten(item, f"{where}.items[{j}]", out, problems, top=False)
        return
    bad = envelope_problems(doc)
    if bad:
        problems += [(where, m) for m in bad]
        return
    out.append((where, doc))


UNCONSTRUCTIBLE = ("a value does not convert to the type its form or tag gives it (a date such as 2001-13-01, "
                   "an integer of over 4300 digits, '!!int x', '!!bool x'): quote it")
"""Why PyYAML's constructors fail on a well-formed document (they raise ``ValueError``,
``KeyError``... rather than a ``YAMLError``, PyYAML ``constructor.py`` ``construct_yaml_int``,
``construct_yaml_timestamp``, ``construct_yaml_bool``). The value is never quoted back: it may be a
token."""


def _unconstructible_line(text: str) -> int | None:
    """The line (1-based) of the first scalar of ``text`` that PyYAML cannot construct (see
    :data:`UNCONSTRUCTIBLE`), or None. Composes the documents again and constructs each distinct
    scalar node once (aliases are not expanded): linear in the nodes. Called only after a load
    failed."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            seen: set[int] = set()
            stack = [loader.get_node()]
            while stack:
                node = stack.pop()
                if node is None or id(node) in seen:
                    continue
                seen.add(id(node))
                if isinstance(node, yaml.ScalarNode):
                    try:
                        loader.construct_object(node, deep=True)
                    except Exception:  # noqa: BLE001 - whatever the constructor raised, this is the value
                        return node.start_mark.line + 1
                elif isinstance(node, yaml.SequenceNode):
                    stack += reversed(node.value)
                elif isinstance(node, yaml.MappingNode):
                    for k, v in reversed(node.value):
                        stack += [v, k]
    except (yaml.YAMLError, RecursionError):
        return None
    finally:
        loader.dispose()
    return None


def yaml_error_text(e: yaml.YAMLError) -> str:
    """What is wrong and where (``line L, column C``), without the excerpt PyYAML appends: the
    text around the error may be a token or a key (kubeconfigs, dumps of Secrets)."""
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or type(e).__name__
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else str(problem)


def parse_dump_text(text: str, source: str) -> list[dict[str, Any]]:
    """Every object in a dump (multi-document YAML or JSON; Lists flattened).
    Raises :class:`LiveError` with ``source#doc[i]`` paths."""
    return [obj for _, obj in parse_dump_located(text, source)]


def parse_dump_located(text: str, source: str) -> list[tuple[str, dict[str, Any]]]:
    """Like :func:`parse_dump_text`, each object with where it is: ``source#doc[i]`` or
    ``source#doc[i].items[j]``. Raises :class:`LiveError`."""
    docs = None
    too_deep = LiveError([(source, f"nested too deeply (over {MAX_DEPTH} levels with YAML aliases, or over "
                                   f"the parser's limit) or expanding YAML aliases past {MAX_ALIAS_EXPANSION} "
                                   f"values: not objects as 'kubectl get -o yaml|json' writes them")])
    if text.lstrip().startswith("{"):  # kubectl -o json: one JSON document, parsed ~50x faster than YAML
        try:
            docs = [json.loads(text)]
        except ValueError:
            docs = None
        except RecursionError:
            raise too_deep from None
    try:
        if docs is None:
            docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise LiveError([(where, f"not valid YAML: {getattr(e, 'problem', None) or type(e).__name__}")]) from None
    except RecursionError:
        raise too_deep from None
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
        line = _unconstructible_line(text)
        raise LiveError([(f"{source}:{line}" if line else source, f"not valid YAML: {UNCONSTRUCTIBLE}")]) from None
    out: list[tuple[str, dict]] = []
    problems: list[Problem] = []
    aliases = "&" in text and "*" in text  # only YAML anchors and aliases can share nodes
    for i, doc in enumerate(docs):
        if aliases and _deeper_than(doc, MAX_DEPTH):  # the diff would walk every reuse in full
            problems.append((f"{source}#doc[{i}]", too_deep.problems[0][1]))
            continue
        _flatten(doc, f"{source}#doc[{i}]", out, problems)
    if problems:
        raise LiveError(problems)
    return out


MAX_DEPTH = 200
"""Deepest nesting of a dumped YAML document that uses aliases (a List, its objects and their
fields; Kubernetes objects, CRD schemas included, stay far below). JSON is limited by the
parser's own recursion limit, and ``drift_cli`` reports a document too deep to compare."""


MAX_ALIAS_EXPANSION = 1_000_000
"""How many mappings/lists a dumped document may expand to when it reuses some through YAML
aliases (``*ref``; kubectl never writes any): the diff walks every reuse in full, so "billion
laughs" documents are refused instead of expanded. Documents without aliases are bounded by
their size."""


def _deeper_than(doc: Any, limit: int) -> bool:
    """True when ``doc`` nests mappings/lists more than ``limit`` levels, or reuses them through
    YAML aliases so that it expands to over :data:`MAX_ALIAS_EXPANSION` of them. Iterative
    (any depth) and linear in the distinct containers: each one's depth and expanded size are
    computed once."""
    memo: dict[int, tuple[int, int]] = {}  # id -> (height, expanded size)
    opened: set[int] = set()  # on the current path: met again, it contains itself (``&a [*a]``)
    stack: list[tuple[Any, bool]] = [(doc, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in memo:
            continue
        children = [c for c in (node.values() if isinstance(node, dict) else node if isinstance(node, list) else ())
                    if isinstance(c, (dict, list))]
        if not done:
            if id(node) in opened:
                return True
            opened.add(id(node))
            stack.append((node, True))
            stack += [(c, False) for c in children if id(c) not in memo]
            continue
        opened.discard(id(node))
        height = 1 + max((memo[id(c)][0] for c in children), default=0)
        size = 1 + sum(memo[id(c)][1] for c in children)
        if height > limit or size > MAX_ALIAS_EXPANSION and size > len(memo) + 1:
            return True
        memo[id(node)] = (height, size)
    return False


def duplicate_objects(located: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Problem]:
    """One ``(where, message)`` per object whose identity (``diff.object_ref``: API group, kind,
    namespace, name) an earlier one already has, naming both places. Empty when all differ."""
    first: dict[tuple[str, str, str, str], str] = {}
    problems: list[Problem] = []
    for where, obj in located:
        ref = object_ref(obj)
        if ref.key in first:
            problems.append((where, f"{ref} is also at {first[ref.key]}: a dump holds each object once "
                                    f"(same API group, kind, namespace and name); remove the stale copy"))
        else:
            first[ref.key] = where
    return problems


def _dump_files(base: Path, cluster: str) -> list[Path]:
    for ext in (".yaml", ".yml", ".json"):
        f = base / f"{cluster}{ext}"
        if f.is_file():
            return [f]
    d = base / cluster
    if d.is_dir():
        return sorted(p for p in d.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
    return []


def read_dump_dir(path: str | Path, clusters: Sequence[str]) -> dict[str, LiveState]:
    """Read ``DIR/<cluster>.yaml`` (or ``.yml``/``.json``, or ``DIR/<cluster>/``) for each cluster.

    Returns cluster -> :class:`LiveState` (``releases`` decoded from the Helm Secrets found, or
    None when the dump holds none). Raises :class:`LiveError` listing every problem: missing
    directory or cluster dump, bad YAML, documents that are not objects, bad Helm Secrets."""
    base = Path(path)
    if not base.is_dir():
        raise LiveError([(str(base), "no such directory (give --live DIR with one dump per cluster)")])
    problems: list[Problem] = []
    out: dict[str, LiveState] = {}
    for cluster in clusters:
        files = _dump_files(base, cluster)
        if not files:
            problems.append((str(base / f"{cluster}.yaml"), f"no dump for cluster {cluster!r} "
                             f"(expected {cluster}.yaml, {cluster}.yml, {cluster}.json or {cluster}/)"))
            continue
        located: list[tuple[str, dict]] = []
        for f in files:
            try:
                located += parse_dump_located(f.read_text(), str(f))
            except LiveError as e:
                problems += e.problems
            except (OSError, UnicodeDecodeError) as e:
                problems.append((str(f), f"cannot read: {e}"))
        twice = duplicate_objects(located)
        if twice:
            problems += twice
            continue
        where = {id(obj): w for w, obj in located}
        objects = [obj for _, obj in located]
        try:
            releases = releases_from_objects(objects, locate=lambda o: where[id(o)])
        except LiveError as e:
            problems += e.problems
            continue
        if releases is None and any(o.get("kind") == "Secret" and not group_of(str(o.get("apiVersion")))
                                    for o in objects):
            releases = {}
        from .workloads import is_pod, trim_pod

        objects = [trim_pod(o) if is_pod(o) else o for o in objects]
        state = LiveState(objects, releases, pods_read=any(map(is_pod, objects)))
        if releases is None:
            state.notes.append("no Secrets in the dump: Helm releases not compared (dump secrets too)")
        if not state.pods_read:
            state.notes.append("no Pods in the dump: workloads not checked (dump pods too)")
        out[cluster] = state
    known = set(clusters)
    extra = sorted({p.stem for p in base.iterdir() if p.suffix in (".yaml", ".yml", ".json") or p.is_dir()} - known)
    for cluster in clusters:
        if cluster in out and extra:
            out[cluster].notes.append(f"dumps for clusters not in the stack ignored: {', '.join(extra)}")
            break
    if problems:
        raise LiveError(problems)
    return out


# ---------------------------------------------------------------------------------------------
# Helm storage


MAX_RELEASE_BYTES = 64 << 20
"""Largest decompressed Helm release read (bytes of JSON). A storage Secret holds at most 1 MiB
(https://kubernetes.io/docs/concepts/configuration/secret/#restriction-data-size), and the
chart's templates and values in it compress about tenfold; gzip can expand a thousandfold, so a
crafted Secret is refused instead of filling memory."""


def _gunzip(data: bytes, limit: int) -> bytes:
    """``data`` (one or more gzip members, RFC 1952) decompressed, at most ``limit`` bytes.
    Raises ``ValueError`` saying what is wrong: not gzip, or larger than ``limit``."""
    out: list[bytes] = []
    size = 0
    try:
        while data:
            d = zlib.decompressobj(wbits=31)  # 16 + MAX_WBITS: a gzip header and trailer
            chunk = d.decompress(data, limit - size + 1)
            size += len(chunk)
            out.append(chunk)
            if size > limit or d.unconsumed_tail:
                raise ValueError(f"data.release decompresses to over {limit >> 20} MiB: not a Helm release "
                                 f"(a storage Secret holds at most 1 MiB)")
            if not d.eof:
                raise ValueError("data.release is not valid gzip: the stream is truncated")
            data = d.unused_data.lstrip(b"\0")
    except zlib.error as e:
        raise ValueError(f"data.release is not valid gzip: {e}") from None
    return b"".join(out)


def decode_helm_release(secret: Mapping[str, Any]) -> LiveRelease:
    """Decode a Helm storage Secret into a :class:`LiveRelease`. Raises ``ValueError`` saying what
    is wrong (no ``data.release``, bad base64, bad gzip, bad JSON).

    Encoding (helm ``pkg/storage/driver/util.go`` ``encodeRelease``): JSON, gzip, base64; the
    Secret stores those bytes, so ``data.release`` is base64 once more. Releases written without
    gzip (the decoder accepts both) are read as plain JSON."""
    data = secret.get("data")
    raw = data.get("release") if isinstance(data, Mapping) else None
    if not isinstance(raw, str) or not raw:
        raise ValueError("no data.release" if raw is None else "data.release is empty" if raw == ""
                         else f"data.release is {_type_name(raw)}, not base64 text")
    try:
        inner = base64.b64decode(raw, validate=False)
        payload = base64.b64decode(inner, validate=False)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"data.release is not base64 of base64: {e}") from None
    if payload[:3] == _GZIP_MAGIC:
        payload = _gunzip(payload, MAX_RELEASE_BYTES)
    try:
        rel = json.loads(payload)
    except ValueError as e:
        raise ValueError(f"release is not JSON: {e}") from None
    except RecursionError:
        raise ValueError("release is JSON nested too deeply") from None
    if not isinstance(rel, dict):
        raise ValueError("release is not a JSON object")
    # any field may hold any JSON shape (helm pkg/release/release.go is what writes it; a
    # hand-made Secret need not be): only values of the expected type are read
    get = lambda m, k: m.get(k) if isinstance(m, Mapping) else None  # noqa: E731
    text = lambda v: v if isinstance(v, str) else ""  # noqa: E731
    meta = get(get(rel, "chart"), "metadata")
    meta_obj = secret.get("metadata")
    version = rel.get("version")
    return LiveRelease(
        name=text(rel.get("name")) or text(get(get(meta_obj, "labels"), "name")),
        namespace=text(rel.get("namespace")) or text(get(meta_obj, "namespace")),
        chart=text(get(meta, "name")), chart_version=text(get(meta, "version")),
        values=rel.get("config") or {}, status=text(get(get(rel, "info"), "status")),
        revision=version if isinstance(version, int) and not isinstance(version, bool) else 0,
        app_version=text(get(meta, "appVersion")))


def _is_helm_secret(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    labels = meta.get("labels") if isinstance(meta.get("labels"), Mapping) else {}
    return obj.get("kind") == "Secret" and (obj.get("type") == HELM_SECRET_TYPE or bool(
        _HELM_NAME.match(str(meta.get("name") or "")) and labels.get("owner") == "helm"))


def releases_from_objects(objects: Iterable[Mapping[str, Any]],
                          locate: Any = None) -> dict[tuple[str, str], LiveRelease] | None:
    """Current Helm releases, keyed by ``(namespace, name)``: of each release's storage Secrets,
    the highest revision with status ``deployed`` (else the highest revision); ``latest_status``
    is set when a newer revision is not deployed (``failed``, ``pending-upgrade``...).

    Returns None when ``objects`` holds no Helm storage Secret. Only the Secrets of a release's
    newest and deployed revisions are decoded. Raises :class:`LiveError` for an undecodable one,
    and for two Secrets that store the same revision of a release (Helm keeps one per revision,
    helm ``pkg/storage/driver/secrets.go``: the name ``sh.helm.release.v1.<name>.v<version>``
    is the key): which one is current would be a guess. ``locate(secret)``, when given, names
    where a Secret came from (a dump file and document) in those problems."""
    def name_of(secret: Mapping[str, Any]) -> str:
        meta = secret.get("metadata") if isinstance(secret.get("metadata"), Mapping) else {}
        text = f"secret {meta.get('namespace') or ''}/{meta.get('name')}"
        return f"{locate(secret)} ({text})" if locate else text

    by_release: dict[tuple[str, str], list[tuple[int, str, Mapping[str, Any]]]] = {}
    problems: list[Problem] = []
    for obj in objects:
        if not _is_helm_secret(obj):
            continue
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        m = _HELM_NAME.match(str(meta.get("name") or ""))
        labels = meta.get("labels") if isinstance(meta.get("labels"), Mapping) else {}
        name = str(labels.get("name") or (m.group("name") if m else ""))
        version = str(labels.get("version") or (m.group("rev") if m else 0))
        if not version.isdecimal() or not version.isascii():  # helm writes strconv.Itoa(rls.Version)
            problems.append((name_of(obj), "label version is not a revision number (Helm labels its storage "
                                           "Secrets version=<revision>, helm pkg/storage/driver/secrets.go)"))
            continue
        by_release.setdefault((str(meta.get("namespace") or ""), name), []).append(
            (int(version), str(labels.get("status") or ""), obj))
    if not by_release and not problems:
        return None
    out: dict[tuple[str, str], LiveRelease] = {}
    for key, revs in by_release.items():
        seen: dict[int, Mapping[str, Any]] = {}
        for rev, _, secret in revs:
            if rev in seen:
                problems.append((name_of(secret), f"Helm release {key[0]}/{key[1]} revision {rev} is also stored "
                                                  f"in {name_of(seen[rev])}: keep one Secret per revision"))
            seen.setdefault(rev, secret)
        if len(seen) < len(revs):
            continue
        revs.sort(key=lambda r: r[0])
        newest = revs[-1]
        labelled = [r for r in revs if r[1] == "deployed"]
        candidates = ([labelled[-1]] if labelled else []) + ([newest] if not labelled or labelled[-1] is not newest else [])
        decoded: list[LiveRelease] = []
        for rev, _, secret in candidates:
            try:
                decoded.append(decode_helm_release(secret))
            except ValueError as e:
                problems.append((name_of(secret), str(e)))
        if not decoded:
            continue
        deployed = [r for r in decoded if r.status == "deployed"]
        chosen = deployed[0] if deployed else decoded[-1]
        latest = max(decoded, key=lambda r: r.revision)
        if latest.revision > chosen.revision and latest.status != "deployed":
            chosen = LiveRelease(**{**chosen.__dict__, "latest_status": latest.status})
        out[key] = chosen
    if problems:
        raise LiveError(problems)
    return out


# ---------------------------------------------------------------------------------------------
# clusters, through the kubernetes client


def kubeconfig_contexts(path: str | Path) -> tuple[list[str], str | None]:
    """The context names of a kubeconfig file and its ``current-context``. Raises :class:`LiveError`."""
    try:
        text = Path(path).read_text()
        doc = yaml.load(text, Loader=_Loader)
    except (OSError, UnicodeDecodeError) as e:
        raise LiveError([(str(path), f"cannot read kubeconfig: {e}")]) from None
    except yaml.YAMLError as e:
        raise LiveError([(str(path), f"cannot read kubeconfig: {yaml_error_text(e)}")]) from None
    except RecursionError:
        raise LiveError([(str(path), "cannot read kubeconfig: nested too deeply")]) from None
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
        line = _unconstructible_line(text)
        raise LiveError([(f"{path}:{line}" if line else str(path), f"cannot read kubeconfig: {UNCONSTRUCTIBLE}")]) from None
    if not isinstance(doc, dict):
        raise LiveError([(str(path), "not a kubeconfig (expected a mapping with 'contexts')")])
    contexts = doc.get("contexts")
    names = [str(c.get("name")) for c in contexts if isinstance(c, dict)] if isinstance(contexts, list) else []
    current = doc.get("current-context")
    return names, current if isinstance(current, str) else None


def client_for(kubeconfig: str | Path | Mapping[str, Any], context: str | None = None, where: str = "") -> Any:
    """A ``kubernetes.client.ApiClient`` for one context of a kubeconfig (a file path, or the
    parsed kubeconfig mapping); each cluster gets its own client
    (``kubernetes.config.new_client_from_config[_dict]``). Raises :class:`LiveError`."""
    from kubernetes import config as kconfig
    from kubernetes.config.config_exception import ConfigException

    where = where or (f"{kubeconfig}" if not isinstance(kubeconfig, Mapping) else "kubeconfig")
    where += f"#{context}" if context else ""
    try:
        if isinstance(kubeconfig, Mapping):
            return kconfig.new_client_from_config_dict(dict(kubeconfig), context=context,
                                                       persist_config=False)
        return kconfig.new_client_from_config(config_file=str(kubeconfig), context=context,
                                              persist_config=False)
    except (ConfigException, OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise LiveError([(where, f"cannot load kubeconfig: {e}")]) from None


class _NotServed(Exception):
    pass


def _get_json(api_client: Any, path: str, query: list[tuple[str, Any]], timeout: float) -> dict[str, Any]:
    from kubernetes.client.exceptions import ApiException

    method, url, headers, body, post = api_client.param_serialize(
        method="GET", resource_path=path, query_params=query,
        header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
    try:
        resp = api_client.call_api(method, url, header_params=headers, body=body, post_params=post,
                                   _request_timeout=timeout)
    except ApiException as e:
        raise LiveError([(path, f"request failed: {e.reason or e}")]) from None
    except Exception as e:  # urllib3 connection and TLS errors
        raise LiveError([(path, f"cannot reach the API server: {e}")]) from None
    data = resp.read()
    if resp.status == 404:
        raise _NotServed()
    if not 200 <= resp.status <= 299:
        reason = ""
        try:
            reason = json.loads(data).get("message", "")
        except (ValueError, AttributeError):
            pass
        raise LiveError([(path, f"HTTP {resp.status} {resp.reason}{': ' + reason if reason else ''}")])
    try:
        doc = json.loads(data)
    except ValueError:
        raise LiveError([(path, "response is not JSON")]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items", []), list):
        raise LiveError([(path, "response is not a list")])
    return doc


def list_kind(api_client: Any, api_version: str, kind: str, page_size: int = 500,
              timeout: float = 30.0, field_selector: str | None = None,
              keep: Any = None) -> tuple[list[dict[str, Any]] | None, int]:
    """Every object of ``kind`` in all namespaces with one LIST (paged with ``limit``/``continue``
    when longer than ``page_size``, https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks).

    Returns ``(objects, requests)``; objects is None when the server does not serve the kind
    (404). Items get ``apiVersion``/``kind`` (typed lists omit them). ``field_selector``: the
    LIST's ``fieldSelector``; ``keep``: a function applied to each item as its page arrives (so a
    long list is held trimmed). Raises :class:`LiveError`."""
    path = list_path(api_version, kind)
    items: list[dict] = []
    problems: list[Problem] = []
    token = None
    requests = 0
    index = 0  # of the item across pages, as read_cluster names it
    while True:
        query: list[tuple[str, Any]] = [("limit", page_size)]
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if token:
            query.append(("continue", token))
        requests += 1
        try:
            doc = _get_json(api_client, path, query, timeout)
        except _NotServed:
            return None, requests
        for item in doc.get("items") or []:
            if isinstance(item, dict) and not item.get("kind"):
                item = {"apiVersion": api_version, "kind": kind, **item}
            bad = envelope_problems(item)  # the server validates what it stores; a proxy or a bug may not
            if bad:
                problems += [(f"{path} items[{index}]", m) for m in bad]
            elif not problems:
                items.append(keep(item) if keep else item)
            index += 1
        meta = doc.get("metadata")
        token = meta.get("continue") if isinstance(meta, dict) else None
        if not token or not isinstance(token, str):
            if problems:
                raise LiveError(problems)
            return items, requests


def read_crds(api_client: Any, names: Iterable[str], timeout: float = 30.0) -> tuple[list[dict[str, Any]], int]:
    """The CustomResourceDefinitions named ``names`` (one GET each, so the large schemas of other
    CRDs are not fetched); an absent one is left out. Returns ``(crds, requests)``. Raises
    :class:`LiveError`."""
    out: list[dict[str, Any]] = []
    requests = 0
    for name in names:
        requests += 1
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        try:
            crd = _get_json(api_client, path, [], timeout)
        except _NotServed:
            continue
        bad = envelope_problems(crd)
        if bad:
            raise LiveError([(path, m) for m in bad])
        out.append(crd)
    return out, requests


def read_cluster(api_client: Any, kinds: Iterable[tuple[str, str]], declared_kinds: Iterable[tuple[str, str]] = ()) -> LiveState:
    """LIST every ``(apiVersion, kind)`` of ``kinds`` once and decode Helm releases from the
    Secrets. A kind the server does not serve gets a note when it is in ``declared_kinds``
    (the stack declares objects of it, which are then all missing). Pods are listed without
    finished ones (``workloads.POD_FIELD_SELECTOR``) and kept trimmed (``workloads.trim_pod``); a
    403 on them is a note (the workloads are then not checked). Raises :class:`LiveError`."""
    from .workloads import POD_FIELD_SELECTOR, trim_pod

    declared = {(group_of(av), k) for av, k in declared_kinds}
    objects: list[dict] = []
    located: list[tuple[str, dict]] = []
    notes: list[str] = []
    requests = 0
    read_secrets = read_pods = False
    for av, kind in kinds:
        pods = kind == "Pod" and not group_of(av)
        try:
            got, n = list_kind(api_client, av, kind, field_selector=POD_FIELD_SELECTOR if pods else None,
                               keep=trim_pod if pods else None)
        except LiveError as e:  # a drift role without `list pods` still gets the object diff
            if not (pods and all(m.startswith("HTTP 403") for _, m in e.problems)):
                raise
            notes.append("Pods are not readable here (HTTP 403): workloads not checked (grant list on pods)")
            requests += 1
            continue
        requests += n
        if got is None:
            if (group_of(av), kind) in declared:
                notes.append(f"{kind} ({av}) is not served by this cluster (CRD not installed?)")
            continue
        read_secrets = read_secrets or (kind == "Secret" and not group_of(av))
        read_pods = read_pods or pods
        located += [(f"{list_path(av, kind)} items[{i}]", o) for i, o in enumerate(got)]
        objects += got
    twice = duplicate_objects(located)  # one LIST per (group, kind): only a server bug repeats one
    if twice:
        raise LiveError(twice)
    releases = releases_from_objects(objects)
    if releases is None and read_secrets:
        releases = {}
    return LiveState(objects, releases, notes, requests, pods_read=read_pods)
