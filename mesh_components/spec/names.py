"""Name rules from Kubernetes (DNS-1123) and the field's naming conventions, as small pure checks,
and the allocator of every name the core derives from user names.

Generated names (:func:`allocate`, :func:`rename`) are collision-free by construction: the readable
name (``<rule>-<destination>``, ``<ingress>-<namespace>-<service>``...) where it is unique in its
scope and within its limit, else, for every member of a colliding group alike, the readable part
cut to fit plus ``-`` and 8 hex digits of a hash of what the object stands for (its identity in
user names). Names of stacks that collide nowhere never change, so existing stacks see no
replacement. What the core cannot rename (names users write elsewhere, like version Services, or
names other objects refer to) is checked up front instead (:func:`spec_name_problems`,
:func:`object_problems`), each problem at the spec field it comes from.

Source: https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
"""
from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def suggest_label(value: str) -> str:
    """A DNS-1123 label close to ``value``: lower-cased, other characters turned into '-'."""
    s = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    return s[:63].rstrip("-") or "name"


@lru_cache(maxsize=1 << 16)  # pure; a render checks the same namespaces on every object
def dns1123_label_problem(value: str) -> str | None:
    """Why ``value`` is not a DNS-1123 label (max 63 chars), with a fix; None when it is one."""
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters; shorten it (a DNS-1123 label)"
    if not DNS1123_LABEL.match(value):
        return (f"{value!r} is not a DNS-1123 label: use lower-case letters, digits and '-', starting "
                f"and ending with a letter or digit (e.g. {suggest_label(value)!r})")
    return None


def dns1123_subdomain_problem(value: str) -> str | None:
    """Why ``value`` is not a DNS-1123 subdomain (max 253 chars), with a fix; None when it is one."""
    if len(value) > 253:
        return f"{value!r} is longer than 253 characters"
    if not DNS1123_SUBDOMAIN.match(value):
        return (f"{value!r} is not a DNS-1123 subdomain: use lower-case letters, digits, '-' and '.' "
                f"(e.g. {suggest_label(value)!r})")
    return None


@lru_cache(maxsize=1 << 16)  # pure; a render checks the same labels on every object
def label_problem(key: str, value: str) -> str | None:
    """Why ``key: value`` is not a valid Kubernetes label; None when it is one."""
    prefix, _, short = key.rpartition("/")
    if not short or len(short) > 63 or not LABEL_KEY_NAME.match(short) \
            or (prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix))):
        return f"label key {key!r} is not valid: use [prefix/]name, name up to 63 alphanumerics, '-', '_' or '.'"
    if len(value) > 63 or not LABEL_VALUE.match(value):
        return f"label value {value!r} for {key!r} is not valid: up to 63 alphanumerics, '-', '_' or '.'"
    return None


# ---------------------------------------------------------------------------------------------
# generated names: readable when unique and short enough, else readable part + hash, by construction
#
# Limits (kubernetes staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go:
# DNS1123SubdomainMaxLength 253, DNS1123LabelMaxLength 63, LabelValueMaxLength 63; object names are
# DNS-1123 subdomains, namespaces DNS-1123 labels, Services DNS-1035 labels:
# https://kubernetes.io/docs/concepts/overview/working-with-objects/names/), Helm release names
# (helm v3 pkg/chartutil/validate_name.go ``maxReleaseNameLen`` 53) and file names (255 bytes,
# NAME_MAX of Linux file systems; ENAMETOOLONG beyond).

MAX_NAME = 253
"""Longest object name (a DNS-1123 subdomain)."""
MAX_LABEL = 63
"""Longest DNS-1123 label (namespace and Service names) and label value."""
MAX_RELEASE = 53
"""Longest Helm release name."""
MAX_FILENAME = 255
"""Longest file name, in bytes."""
HASH_CHARS = 8
"""Hex digits of the suffix that makes a generated name unique (32 bits of SHA-256)."""

DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def digest(identity) -> str:
    """:data:`HASH_CHARS` hex digits of SHA-256 over ``identity`` (a tuple of strings and numbers,
    the user names an object stands for), encoded as JSON so that ``("a-b", "c")`` and
    ``("a", "b-c")`` differ. Deterministic across runs and machines."""
    return hashlib.sha256(json.dumps(list(identity), separators=(",", ":")).encode()).hexdigest()[:HASH_CHARS]


def _trim(readable: str, room: int) -> str:
    """``readable`` cut to ``room`` characters, without a trailing '-' or '.' (a DNS name ends with
    an alphanumeric, and a label may not start with '-' after the cut)."""
    return readable[:room].rstrip("-.")


def suffixed(readable: str, identity, limit: int = MAX_NAME) -> str:
    """``<readable, cut to fit>-<digest(identity)>``: at most ``limit`` characters, still a
    DNS-1123 name when ``readable`` is one."""
    return f"{_trim(readable, limit - HASH_CHARS - 1)}-{digest(identity)}"


def bounded(readable: str, identity, limit: int = MAX_NAME) -> str:
    """``readable`` when it has at most ``limit`` characters, else :func:`suffixed`. For a name
    that cannot collide with another one (only its length is at stake)."""
    return readable if len(readable) <= limit else suffixed(readable, identity, limit)


def allocate(requests, *, limit: int = MAX_NAME, what: str = "object") -> dict:
    """Names for generated objects, collision-free by construction.

    ``requests``: ``(scope, identity, readable, origin[, fixed])`` tuples. ``scope``: the collision
    domain (e.g. ``(group, kind, namespace)``: names must differ within it); ``identity``: what the object
    stands for, in the user's names (stable when the spec is reordered); ``readable``: the name to
    give it; ``origin``: the spec field it comes from, for errors. Requests with the same scope and
    identity are one object. Returns ``{(scope, identity): name}``:

    - ``readable`` when no other identity of the scope asks for it and it has at most ``limit``
      characters (so names that fit and do not collide never change);
    - otherwise, for every member of the colliding group alike (order-independent),
      :func:`suffixed`: the readable part cut to fit, ``-`` and 8 hex digits of a hash of the
      scope and identity;
    - ``fixed`` requests (a name something else relies on) always keep ``readable``; the others
      of their group are suffixed.

    Raises :class:`~mesh_components.spec.errors.SpecError` naming the spec fields (``origin``) of the
    objects that still share a name (a hash collision, or a suffixed name equal to another
    object's readable name), never the generated name alone."""
    from .errors import SpecError

    origins: dict[tuple, str] = {}
    wanted: dict[tuple, str] = {}
    count: dict[tuple, int] = {}  # (scope, readable) -> how many identities ask for it
    fixed: set[tuple] = set()
    for request in requests:  # indexing, not star-unpacking: this runs once per generated object
        scope, identity, readable = request[0], request[1], request[2]
        key = (scope, identity)
        if key in wanted:
            continue  # the same object again
        wanted[key], origins[key] = readable, request[3]
        count[(scope, readable)] = count.get((scope, readable), 0) + 1
        if len(request) > 4 and request[4]:
            fixed.add(key)
    out = {key: readable if key in fixed or (count[(key[0], readable)] == 1 and len(readable) <= limit)
           else suffixed(readable, (*key[0], *key[1]), limit) for key, readable in wanted.items()}
    problems = []
    if len({(key[0], name) for key, name in out.items()}) != len(out):
        taken: dict[tuple, tuple] = {}
        for key, name in out.items():
            other = taken.setdefault((key[0], name), key)
            if other != key:  # a hash collision, or a hashed name equal to another's readable one
                first, second = sorted((origins[key], origins[other]))
                problems.append((second, f"generates the same {what} name as {first} ({what} {name!r}); "
                                         f"rename one of them"))
    if problems:
        raise SpecError(sorted(set(problems)))
    return out


def object_scope(obj: dict) -> tuple[str, str, str]:
    """The collision domain of a Kubernetes object's name: ``(API group, kind, namespace)`` (``""``
    for the core group and for cluster-scoped objects). Versions of one group and kind are one
    resource to the API server."""
    return (_group(obj["apiVersion"]), obj["kind"], obj["metadata"].get("namespace") or "")


@lru_cache(maxsize=256)  # pure; a handful of apiVersions
def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def rename(entries, *, limit: int = MAX_NAME) -> None:
    """Give the objects of ``entries`` (``(obj, identity, origin[, fixed])``, objects just built by
    the caller and referred to by no other object's name) the names :func:`allocate` gives them,
    in place, scoped by :func:`object_scope`. Each entry is another object: where two give one
    scope and identity (an identity too coarse to tell them apart, e.g. a user's rule named like
    a policy the mesh makes), the spec field (``origin``) is added to theirs, so they are two
    objects to the allocator, not one that keeps the name twice. Raises ``SpecError`` as
    :func:`allocate` does."""
    entries = list(entries)
    wanted = [(object_scope(e[0]), e[0]["metadata"]["name"]) for e in entries]
    if len(set(wanted)) == len(wanted) and all(len(name) <= limit for _, name in wanted):
        return  # the common case: allocate would keep every name as it is
    requests = [(w[0], tuple(e[1]), w[1], *e[2:]) for e, w in zip(entries, wanted)]
    seen: dict[tuple, int] = {}
    for r in requests:
        seen[(r[0], r[1])] = seen.get((r[0], r[1]), 0) + 1
    requests = [(r[0], (*r[1], r[3]), *r[2:]) if seen[(r[0], r[1])] > 1 else r for r in requests]
    names = allocate(requests, limit=limit)
    for e, request in zip(entries, requests):
        e[0]["metadata"]["name"] = names[(request[0], request[1])]


# ---------------------------------------------------------------------------------------------
# file names of the render layout


def object_filename(obj: dict) -> str:
    """``<namespace>--<kind>[.<group>]--<name>.yaml`` (``_cluster`` for cluster-scoped objects),
    the render layout's file of ``obj``; when that has more than :data:`MAX_FILENAME` bytes (a
    long namespace, kind and name: 63 + 253 + the kind), the readable part cut to fit plus
    ``-<hash of the object's identity>.yaml``. Names that fit never change."""
    readable = _readable_filename(obj)
    if len(readable.encode()) + len(".yaml") <= MAX_FILENAME:
        return f"{readable}.yaml"
    return _hashed_filename(obj)


def _readable_filename(obj: dict) -> str:
    group = _group(obj["apiVersion"])
    kind = obj["kind"].lower() + (f".{group}" if group else "")
    return f"{obj['metadata'].get('namespace') or '_cluster'}--{kind}--{obj['metadata']['name']}"


def _hashed_filename(obj: dict) -> str:
    """The readable file name cut to fit 255 bytes with ``-<hash of group, kind, namespace, name>``."""
    room = MAX_FILENAME - len(".yaml") - HASH_CHARS - 1
    cut = _readable_filename(obj).encode()[:room].decode("utf-8", "ignore").rstrip("-.")
    return f"{cut}-{digest(object_scope(obj) + (obj['metadata']['name'],))}.yaml"


def object_filenames(objects) -> list[str]:
    """The file name of each of ``objects`` (one cluster's, each identity once), in order: the
    :func:`object_filename` of each, except that objects whose readable file names coincide (a
    namespace or name holding ``--``: ``a--service--b`` + ``c`` against ``a`` + ``b--service--c``)
    all get the hashed form, so the names are unique by construction. Raises ``SpecError`` for two
    objects of one identity (``render_mesh`` refuses those first)."""
    objects = list(objects)
    wanted = [object_filename(o) for o in objects]
    count: dict[str, int] = {}
    for name in wanted:
        count[name] = count.get(name, 0) + 1
    out = [_hashed_filename(o) if count[name] > 1 else name for o, name in zip(objects, wanted)]
    if len(set(out)) != len(out):
        from .errors import SpecError

        dup = sorted({n for n in out if out.count(n) > 1})
        raise SpecError([("render", f"two objects of the same kind, namespace and name would both be written "
                                    f"to {dup[0]}")])
    return out


# ---------------------------------------------------------------------------------------------
# checks up front: names the API server, Helm or the file system would refuse, with the spec field

CONCERN_FIELDS = {
    "namespaces": "mesh.namespaces", "ca": "mesh.ca", "control-plane": "mesh.backend",
    "policy": "mesh.accessRules", "egress": "mesh.egress", "gateway": "mesh.ingress",
    "telemetry": "mesh.telemetry", "multicluster": "mesh.clusters",
}
"""The spec field whose settings make each concern's objects (``render.CONCERNS``); the policy
concern also comes from ``mesh.trafficSplits``, ``mesh.smiFiles`` and ``mesh.services``."""
_CONCERN_TEXT = {
    "namespaces": "the namespaces (mesh.namespaces, mesh.services[].namespace)",
    "ca": "the CA (mesh.ca)", "control-plane": "the control plane (mesh.backend)",
    "policy": "the traffic policy (mesh.accessRules, mesh.trafficSplits, mesh.smiFiles, mesh.services)",
    "egress": "the egress rules (mesh.egress)", "gateway": "the ingress (mesh.ingress)",
    "telemetry": "the telemetry (mesh.telemetry)", "multicluster": "the multi-cluster links (mesh.clusters)",
}


def _show(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']} {meta['namespace'] + '/' if meta.get('namespace') else ''}{meta['name']}"


def object_name_problem(obj: dict) -> str | None:
    """Why the API server would refuse the name, namespace or labels of generated ``obj``, or None:
    ``metadata.name`` a DNS-1123 subdomain of at most 253 characters (a Namespace: a DNS-1123 label,
    a Service: a DNS-1035 label, of at most 63), ``metadata.namespace`` a DNS-1123 label, label keys
    and values as :func:`label_problem` says (kubernetes pkg/apis/core/validation/validation.go
    ``ValidateNamespaceName``, ``ValidateServiceName = NameIsDNS1035Label``; apimachinery
    validation.go)."""
    meta = obj["metadata"]
    name = meta.get("name")
    if type(name) is not str:
        return None  # a deploy-time value; nothing to check offline
    kind = obj["kind"]
    if kind in ("Namespace", "Service") and obj["apiVersion"] == "v1":
        problem = dns1123_label_problem(name) if kind == "Namespace" else _service_name_problem(name)
    else:
        problem = dns1123_subdomain_problem(name)
    ns = meta.get("namespace")
    if problem is None and type(ns) is str:
        problem = dns1123_label_problem(ns)
    labels = meta.get("labels")
    if problem is None and labels:
        for key, value in labels.items():
            if type(value) is str and (problem := label_problem(key, value)) is not None:
                break
    return problem


@lru_cache(maxsize=1 << 16)  # pure; one Service name per version and export
def _service_name_problem(name: str) -> str | None:
    return dns1123_label_problem(name) or (None if DNS1035_LABEL.match(name) else
                                           f"{name!r} is not a Service name: it must start with a letter "
                                           f"(a DNS-1035 label)")


def object_problems(clusters) -> list[tuple[str, str]]:
    """``(path, message)`` problems of the rendered objects (``clusters``: cluster -> concern ->
    objects, as ``render.ClusterState.concerns``): two objects of one identity (API group, kind,
    namespace, name) in a cluster, which the API server would hold as one and Pulumi would fight
    over, and names or labels the API server would refuse (:func:`object_name_problem`). The path
    is the spec field the concern comes from (:data:`CONCERN_FIELDS`; for a namespace the mesh
    also installs into, the application's ``mesh.namespaces``); the message says which settings
    collide and in which clusters."""
    found: dict[tuple[str, str], list[str]] = {}
    for cluster, concerns in clusters.items():
        seen: dict[tuple, str] = {}
        for concern, objects in concerns.items():
            for obj in objects:
                if (problem := object_name_problem(obj)) is not None:
                    found.setdefault((CONCERN_FIELDS.get(concern, "mesh"),
                                      f"{_show(obj)}: {problem}; shorten the names it is made of"), []).append(cluster)
                    continue
                meta = obj["metadata"]
                key = (_group(obj["apiVersion"]), obj["kind"], meta.get("namespace") or "", meta["name"])
                if key not in seen:
                    seen[key] = concern
                    continue
                first = seen[key]
                if first == "namespaces" and obj["kind"] == "Namespace":
                    problem = (f"namespace {obj['metadata']['name']!r} is one the mesh installs into "
                               f"({_CONCERN_TEXT.get(concern, concern)}); put the application's services in "
                               f"another namespace")
                    found.setdefault((CONCERN_FIELDS["namespaces"], problem), []).append(cluster)
                    continue
                where = (f"{_CONCERN_TEXT.get(first, first)} and {_CONCERN_TEXT.get(concern, concern)} both make"
                         if first != concern else f"{_CONCERN_TEXT.get(concern, concern)} makes two of")
                found.setdefault((CONCERN_FIELDS.get(first, "mesh"),
                                  f"{where} {_show(obj)}; give one of them other names"), []).append(cluster)
    return [(path, f"{message} (cluster{'s' if len(cs) > 1 else ''} {', '.join(dict.fromkeys(cs))})")
            for (path, message), cs in sorted(found.items())]


def spec_name_problems(spec) -> list[tuple[str, str]]:
    """Names derived from the spec that the API server or Helm would refuse or that would coincide,
    each at the spec field it comes from (checked before rendering, so ``validate`` says it):

    - version Services ``<service>-<version>`` (``render.version_services``): a Service name of at
      most 63 characters, and one Service per name in a namespace (``a-b`` version ``c`` and ``a``
      version ``b-c`` are both ``a-b-c``). They keep their names: split backends name them;
    - Istio: the default network ``<mesh>-network`` (``topology.istio.io/network``, a label value of
      at most 63) of a cluster without ``network``; istiod releases ``istiod-<revision>`` (a Helm
      release name of at most 53).
    """
    problems = []
    version_paths: dict[tuple[str, str], str] = {}
    for i, s in enumerate(spec.services):
        for j, v in enumerate(s.versions):
            path, name = f"mesh.services[{i}].versions[{j}].name", f"{s.name}-{v.name}"
            if len(name) > MAX_LABEL:
                problems.append((path, f"the version Service {name!r} (<service>-<version>) has {len(name)} "
                                       f"characters, over the {MAX_LABEL} of a Service name; shorten the version "
                                       f"or the service name ({MAX_LABEL - 1} characters for both together)"))
            other = version_paths.setdefault((s.namespace, name), path)
            if other != path:
                problems.append((path, f"makes the version Service {s.namespace}/{name} that {other.rpartition('.')[0]} "
                                       f"makes too (<service>-<version>); rename one of the versions"))
    if spec.backend.type == "istio":
        for i, c in enumerate(spec.clusters):
            if c.network is None and len(spec.network_of(c)) > MAX_LABEL:
                problems.append(("mesh.name", f"cluster {c.name!r} has no network, and the default network name "
                                              f"{spec.network_of(c)!r} (<mesh>-network) has over {MAX_LABEL} characters, "
                                              f"too long for the topology.istio.io/network label: shorten mesh.name to "
                                              f"{MAX_LABEL - len('-network')} characters or set mesh.clusters[{i}].network"))
        for i, r in enumerate(spec.backend.istio.revisions):
            from ..meshes.istio import istiod_release_name

            release = istiod_release_name(spec, r.name)
            if len(release) > MAX_RELEASE:
                problems.append((f"mesh.backend.istio.revisions[{i}].name",
                                 f"the istiod release {release!r} has {len(release)} characters, over Helm's "
                                 f"{MAX_RELEASE} for a release name; shorten the revision to "
                                 f"{MAX_RELEASE - len(release) + len(r.name)} characters or less"))
    issuer = spec.ingress.tls.issuer if spec.ingress is not None and spec.ingress.tls is not None else None
    if issuer is not None and (issuer.acme is not None or issuer.mesh_ca):
        # certificates.certificate_objects: the ACME account key Secret, or the mesh CA's Secret
        suffix = "-account-key" if issuer.acme is not None else "-ca"
        if len(issuer.name) + len(suffix) > MAX_NAME:
            problems.append(("mesh.ingress.tls.issuer.name",
                             f"the issuer's Secret '<issuer name>{suffix}' would have {len(issuer.name) + len(suffix)} "
                             f"characters, over the {MAX_NAME} of an object name; shorten the issuer name to "
                             f"{MAX_NAME - len(suffix)} characters or less"))
    return problems  # the ingress gateway's <name>-istio / <name>-envoy: spec.py refuses names over 57
