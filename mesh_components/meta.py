"""Metadata conventions shared by every renderer: ownership labels and stable names.

Every object the core renders carries ``MANAGED_BY_LABEL: MANAGED_BY_VALUE`` and
``MESH_LABEL: <mesh name>``, so a drift report can find objects the mesh owns but the stack no
longer declares (see ``mesh_components.diff``). The label keys follow the Kubernetes recommended
labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
"""
from __future__ import annotations

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "mesh-components"
MESH_LABEL = "mesh-components.io/mesh"
"""Label naming the mesh (``MeshSpec.name``) that owns an object."""


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


def deep_merge(a: dict, b: dict) -> dict:
    """``a`` with ``b`` merged in: nested mappings merge key by key, anything else in ``b`` wins."""
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
