"""Metadata conventions shared by every renderer: ownership labels, patches and stable names.

Every object the mesh creates carries ``MANAGED_BY_LABEL: MANAGED_BY_VALUE`` and
``MESH_LABEL: <mesh name>``, so a drift report can find objects the mesh owns but the stack no
longer declares (see ``mesh_components.drift.diff``). The label keys follow the Kubernetes recommended
labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).

Objects the application owns (its namespaces, its Services) are never created: the mesh renders a
*patch* (:func:`k8s_patch`), a partial object holding only the fields the mesh sets, marked with
:data:`PATCH_ANNOTATION` (:func:`is_patch`). The components register patches as pulumi-kubernetes
``*Patch`` resources (Server-Side Apply, https://www.pulumi.com/registry/packages/kubernetes/how-to-guides/managing-resources-with-server-side-apply/),
which on delete relinquish those fields and never delete the object; rendered output shows them as
the partial objects to apply with ``kubectl apply --server-side``.
"""
from __future__ import annotations

import json

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "mesh-components"
MESH_LABEL = "mesh-components.io/mesh"
"""Label naming the mesh (``MeshSpec.name``) that owns an object."""


PATCH_ANNOTATION = "mesh-components.io/patch"
"""Marks a rendered object as a patch of an object the application owns (value ``"true"``).

It stays on the applied object, the one field of a patch that is not there for the mesh's
behaviour: it sits under the mesh's own key prefix, so it can neither take over nor delete a field
the application owns, it goes away with the patch (Server-Side Apply relinquishes it), and it tells
a reader of the live object, and the drift report, that the mesh patches it. Ownership labels are
deliberately absent: ``app.kubernetes.io/managed-by`` is the application's (Helm, Argo CD, kubectl
set it), and a patch that set it would take it over and delete it on relinquish. Replaces the
``pulumi.com/patchForce`` marker earlier releases put on every patch: Service patches no longer
force (see :func:`k8s_patch`); namespace patches do, added at registration only
(``components.namespace_patch_metadata`` says why), so rendered output never shows it."""


def ownership_labels(mesh: str) -> dict[str, str]:
    """Labels that mark an object as owned by mesh ``mesh``: ``{managed-by, mesh}``."""
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, MESH_LABEL: mesh}


def k8s_object(api_version: str, kind: str, name: str, namespace: str | None, mesh: str,
               labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
               **body) -> dict:
    """A plain Kubernetes object dict with ownership labels: ``{apiVersion, kind, metadata, **body}``.

    ``namespace`` None makes a cluster-scoped object. Keys keep insertion order, so the same inputs
    always serialise to the same bytes.
    """
    metadata: dict = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = {**ownership_labels(mesh), **(labels or {})}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def k8s_patch(api_version: str, kind: str, name: str, namespace: str | None,
              labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict:
    """A patch of the application's object ``kind`` ``namespace/name``: ``{apiVersion, kind,
    metadata: {name, [namespace], [labels], annotations}}`` with only ``labels``, ``annotations``
    and :data:`PATCH_ANNOTATION` (no ownership labels, no ``spec``).

    A patch rendered here carries no ``pulumi.com/patchForce``: a Service patch whose field another
    manager holds with a different value fails with a Server-Side Apply conflict naming that
    manager, instead of silently taking the field over (pulumi-kubernetes v4.32.0
    ``provider/pkg/await/await.go``: ``Force`` comes from ``patchForce``, lines 1031-1064;
    https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts). Equal values
    never conflict: they are shared between managers. Namespace patches are forced at registration
    (``components.namespace_patch_metadata``)."""
    metadata: dict = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    metadata["annotations"] = {**(annotations or {}), PATCH_ANNOTATION: "true"}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def is_patch(obj: dict) -> bool:
    """True for an object rendered by :func:`k8s_patch`."""
    return (obj.get("metadata", {}).get("annotations") or {}).get(PATCH_ANNOTATION) == "true"


def _kind_of(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "null", int: "a number",
            float: "a number"}.get(type(value), f"a {type(value).__name__}")


def _pointer(parts) -> str:
    """The RFC 6901 JSON Pointer of ``parts`` (``~`` and ``/`` escaped)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


_METADATA_STRINGS = ("name", "namespace", "generateName")
_METADATA_MAPS = ("labels", "annotations")


def object_shape_problems(before, after) -> list[tuple[str, str]]:
    """Why ``after``, the object ``before`` once changed by an override, is not the shape of a
    Kubernetes object, as ``(JSON pointer, message)`` pairs (empty when it is one): a mapping
    whose ``apiVersion`` and ``kind`` are strings and whose ``metadata`` is a mapping with
    ``name``, ``namespace`` and ``generateName`` strings and ``labels`` and ``annotations``
    mappings of strings to strings (``ObjectMeta``: k8s.io/apimachinery
    pkg/apis/meta/v1/types.go, ``Labels map[string]string``, ``Annotations map[string]string``;
    the API server refuses anything else); every mapping and list of ``before`` still a mapping or
    a list (:func:`container_shape_problems`); and no number that is infinite or NaN (objects are
    sent as JSON, RFC 8259 section 6, which has neither).

    Checked once where an override applies (``render.apply_overrides``), so that what reads the
    objects afterwards (names, identity checks, the guardrails, the writers) reads objects of the
    shape the renderers made."""
    if not isinstance(after, dict):
        return [("", f"would be {_kind_of(after)}, not a mapping")]
    out = [(f"/{k}", f"would be {_kind_of(after.get(k))}, not a string")
           for k in ("apiVersion", "kind") if not isinstance(after.get(k), str)]
    meta = after.get("metadata")
    if not isinstance(meta, dict):
        return out + [("/metadata", f"would be {_kind_of(meta)}, not a mapping")]
    out += [(f"/metadata/{k}", f"would be {_kind_of(meta[k])}, not a string")
            for k in _METADATA_STRINGS if k in meta and not isinstance(meta[k], str)]
    for k in _METADATA_MAPS:
        if k not in meta:
            continue
        m = meta[k]
        if not isinstance(m, dict):
            fix = f" (op: remove takes all {k} away)" if m is None else ""
            out.append((f"/metadata/{k}", f"would be {_kind_of(m)}, not a mapping of strings to strings{fix}"))
            continue
        out += [(_pointer(("metadata", k, key)), f"would be {_kind_of(v)}, not a string"
                 + (f" (quote it in YAML: '{json.dumps(v)}')" if isinstance(v, (bool, int, float)) else ""))
                for key, v in m.items() if not isinstance(v, str)]
    said = {p for p, _ in out}
    return out + [(p, m) for p, m in container_shape_problems(before, after) if p not in said]


def container_shape_problems(before, after, at: tuple = (), *, free_form: bool = False) -> list[tuple[str, str]]:
    """``(JSON pointer, message)`` for every place where ``after`` has something other than a
    mapping where ``before`` has a mapping, or other than a list where ``before`` has a list (the
    items of a list are compared with the kinds of ``before``'s items), unless ``free_form`` a
    mapping or list where ``before`` has a string, number or boolean, and for every infinite or
    NaN number in ``after``. ``at``: the JSON pointer parts of ``before`` in its document.

    An override changes values; it does not turn a field the renderers made a mapping, a list or
    a scalar into another of these (a structural schema, which every CRD and built-in type has,
    refuses that: https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema,
    and the core's own checks read those fields as they were made); ``op: remove`` takes a field
    away. Helm values are ``free_form`` (a chart's values schema, when it has one, is its own).
    Iterative: ``after`` may nest as deep as a spec may (``yaml_source.MAX_DEPTH``)."""
    out: list[tuple[str, str]] = []
    stack = [(before, after, at)]
    while stack:
        b, a, where = stack.pop()
        if isinstance(a, float) and (a != a or a in (float("inf"), float("-inf"))):
            out.append((_pointer(where), f"would be {a}, not a number JSON can carry (Kubernetes objects and Helm "
                                         f"values are sent as JSON)"))
            continue
        for kind, name in ((dict, "a mapping"), (list, "a list")):
            if isinstance(b, kind) and not isinstance(a, kind):
                fix = "; op: remove takes a field away" if a is None else ""
                out.append((_pointer(where), f"would be {_kind_of(a)}, where the rendered object has {name}{fix}"))
                break
        else:
            if not free_form and isinstance(b, (str, int, float)) and isinstance(a, (dict, list)):
                out.append((_pointer(where), f"would be {_kind_of(a)}, where the rendered object has {_kind_of(b)}"))
                continue
            if isinstance(a, dict):
                stack += [(b.get(k) if isinstance(b, dict) else None, v, where + (k,)) for k, v in a.items()]
            elif isinstance(a, list):
                # items are compared with the item of the same index when it is of the same kind, else
                # with the first: the lists renderers make hold items of one kind
                items = b if isinstance(b, list) else []
                kinds = {type(x) for x in items}
                like = items[0] if len(kinds) == 1 else None
                for i, v in enumerate(a):
                    same = items[i] if i < len(items) and type(items[i]) is type(v) else like
                    stack.append((same, v, where + (i,)))
    return sorted(out)


def deep_merge(a: dict, b: dict) -> dict:
    """``a`` with ``b`` merged in: nested mappings merge key by key, anything else in ``b`` wins."""
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
