"""Refuse a Pulumi plan that would delete or replace a ``Namespace``.

``python -m mesh_components.cli.preview_guard PREVIEW.json`` reads what ``pulumi preview --json``
printed and exits 0 when no step deletes or replaces a ``kubernetes:core/v1:Namespace``, 1 (one
``path: message`` line per such step, on stderr) when one does or the file is unreadable. The
deploy and preview workflows run it before ``pulumi up`` (``.github/workflows``).

Why: this release registers every namespace as a ``NamespacePatch`` (``components.register_object``),
so a plan that still deletes a ``Namespace`` is state from an earlier release that the upgrade
did not carry over, and the engine deletes it with the *stored* ``retainOnDelete``
(pulumi/pulumi v3.259.0 ``pkg/resource/deploy/step.go`` ``DeleteStep.Apply``, line 661), which is
false for the application namespaces earlier releases owned: the namespace and every workload in
it would go. That happens when the upgrade's first ``pulumi up`` also renames ``mesh.name``, or
removes a cluster or a namespace (README, "Upgrading from a release before stable names").

Input shapes (pulumi/pulumi v3.259.0): the preview digest ``pulumi preview --json`` prints, one
JSON object ``{"steps": [{"op", "urn", "oldState", "newState", ...}], "changeSummary", ...}``
(``pkg/backend/display/json.go`` ``ShowPreviewDigest``, ``pkg/display/json.go`` ``PreviewDigest``/
``PreviewStep``), or, with ``PULUMI_ENABLE_STREAMING_JSON_PREVIEW``, one engine event per line
with ``resourcePreEvent.metadata.{op, urn, type}`` (``ShowJSONEvents``,
``sdk/go/common/apitype/events.go`` ``StepEventMetadata``). Step ops are the engine's
(``pkg/resource/deploy/step.go`` lines 2236-2252).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable, Iterator

PROTECTED_TYPES = frozenset({"kubernetes:core/v1:Namespace"})
"""Resource types whose delete takes the application with it."""
DESTRUCTIVE_OPS = frozenset({"delete", "replace", "create-replacement", "delete-replaced"})
"""Engine step ops that delete the resource (``delete``) or replace it (a replacement shows as
``replace`` and its ``create-replacement``/``delete-replaced`` halves). ``discard`` and
``discard-replaced`` only drop read resources from the state and ``same``/``update`` keep them."""


class PreviewError(ValueError):
    """The file is not a preview ``pulumi preview --json`` prints."""


def urn_type(urn: str) -> str:
    """The resource type of ``urn`` (``urn:pulumi:<stack>::<project>::<parent types$>type::<name>``)."""
    parts = urn.split("::")
    if len(parts) < 4:
        raise PreviewError(f"{urn!r} is not a Pulumi URN")
    return parts[2].rsplit("$", 1)[-1]


def steps(text: str) -> list[dict]:
    """The ``{op, urn}`` steps of a preview digest or a stream of engine events, in file order.
    Raises :class:`PreviewError` when ``text`` is neither."""
    text = text.strip()
    if not text:
        raise PreviewError("is empty; write it with `pulumi preview --json > FILE`")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and ("steps" in doc or "changeSummary" in doc):
        found = doc.get("steps") or []
        if not isinstance(found, list) or not all(isinstance(s, dict) for s in found):
            raise PreviewError("has 'steps' that are not a list of objects")
        return [_step(s, f"steps[{i}]") for i, s in enumerate(found)]
    return list(_event_steps(text.splitlines()))


def _step(s: dict, where: str) -> dict:
    if not isinstance(s.get("op"), str) or not isinstance(s.get("urn"), str):
        raise PreviewError(f"{where} has no 'op' and 'urn' strings")
    return {"op": s["op"], "urn": s["urn"]}


def _event_steps(lines: Iterable[str]) -> Iterator[dict]:
    seen = False
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise PreviewError(f"line {n} is not JSON; give the output of `pulumi preview --json`") from None
        if not isinstance(event, dict):
            raise PreviewError(f"line {n} is not a JSON object")
        seen = True
        pre = event.get("resourcePreEvent")
        if isinstance(pre, dict) and isinstance(pre.get("metadata"), dict):
            yield _step(pre["metadata"], f"line {n} resourcePreEvent.metadata")
    if not seen:
        raise PreviewError("holds no preview; write it with `pulumi preview --json > FILE`")


def destructive_steps(text: str) -> list[tuple[str, str]]:
    """``(op, urn)`` of every step of the preview ``text`` that deletes or replaces a resource of
    :data:`PROTECTED_TYPES`, in file order, each once."""
    out: list[tuple[str, str]] = []
    for s in steps(text):
        key = (s["op"], s["urn"])
        if s["op"] in DESTRUCTIVE_OPS and urn_type(s["urn"]) in PROTECTED_TYPES and key not in out:
            out.append(key)
    return out


def problems(text: str) -> list[tuple[str, str]]:
    """``(path, message)`` per destructive step, naming the URN and the fix."""
    return [(urn, f"the plan would {'delete' if op == 'delete' else 'replace'} this Namespace (step {op!r}), "
                  "and with it every workload in the namespace; run the upgrade's first `pulumi up` with no "
                  "other change (same mesh.name, clusters and namespaces) so the aliases carry it into a "
                  "NamespacePatch, and never `pulumi destroy` a stack before that (README, Upgrading)")
            for op, urn in destructive_steps(text)]


def main(argv: list[str] | None = None) -> int:
    """CLI entry: ``preview_guard PREVIEW.json`` (``-`` reads stdin). Exit 0 safe, 1 refused or unreadable."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mesh_components.cli.preview_guard PREVIEW.json  (pulumi preview --json > PREVIEW.json)",
              file=sys.stderr)
        return 1
    where = args[0]
    try:
        text = sys.stdin.read() if where == "-" else Path(where).read_text()
        found = problems(text)
    except OSError as e:
        print(f"{where}: cannot read it ({e.strerror or e})", file=sys.stderr)
        return 1
    except PreviewError as e:
        print(f"{where}: {e}", file=sys.stderr)
        return 1
    for path, message in found:
        print(f"{path}: {message}", file=sys.stderr)
    if not found:
        print(f"{where}: no Namespace is deleted or replaced")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
