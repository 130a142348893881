"""Metadata conventions shared by every renderer: ownership labels, patches and stable names.

Every object the mesh creates carries ``MANAGED_BY_LABEL: MANAGED_BY_VALUE`` and
``MESH_LABEL: <mesh name>``, so a drift report can find objects the mesh owns but the stack no
longer declares (see ``mesh_components.diff``). The label keys follow the Kubernetes recommended
labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).

Objects the application owns (its namespaces, its Services) are never created: the mesh renders a
*patch* (:func:`k8s_patch`), a partial object holding only the fields the mesh sets, marked with
:data:`PATCH_ANNOTATION` (:func:`is_patch`). The components register patches as pulumi-kubernetes
``*Patch`` resources (Server-Side Apply, https://www.pulumi.com/registry/packages/kubernetes/how-to-guides/managing-resources-with-server-side-apply/),
which on delete relinquish those fields and never delete the object; rendered output shows them as
the partial objects to apply with ``kubectl apply --server-side``.
"""
from __future__ import annotations

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


def deep_merge(a: dict, b: dict) -> dict:
    """``a`` with ``b`` merged in: nested mappings merge key by key, anything else in ``b`` wins."""
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
