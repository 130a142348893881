"""A component used alone: its typed Args -> a stack-shaped ``mesh:`` spec -> the pure core's render.

A standalone component (``SmiPolicies``, ``EgressRules``, a control plane...) builds a minimal
``mesh:`` mapping from its args, as a stack file would hold it, and has it checked by the very
loader the stack file goes through (:func:`mesh_components.spec.parse_spec`,
:func:`~mesh_components.spec.check_references`, the SMI reader :mod:`mesh_components.spec.smi`), then
rendered by :func:`mesh_components.core.render.render_mesh`. So a component refuses exactly what the
stack file would, with the same messages; only the paths change, from the stack's
(``mesh.services[0].ports[0].port``) to the component's fields (``services[0].ports[0].port``),
through a field map the component gives (:func:`repath`):

    ``{"mesh.trustDomain": "trustDomain", "mesh.backend.type": "mesh", "mesh.smiFiles": "paths"}``

Errors are raised before anything is registered, prefixed ``"<Component> <name>: "``
(:mod:`mesh_components.components.args`): :class:`~mesh_components.components.args.ArgsError` for
bad args (the stack file's :class:`~mesh_components.spec.errors.SpecError`), and
:class:`~mesh_components.spec.errors.TranslationError` kept as such (re-pathed) for policy the mesh
cannot express exactly, so callers can tell a refusal from a typo.
"""
from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pydantic.alias_generators import to_camel

from ..spec.errors import Problem, SpecError, TranslationError
from ..core.render import ClusterState, render_mesh
from ..spec import LoadedMesh, check_references, parse_spec
from .args import ArgsError, is_output, raise_if, schema_name

FieldMap = Mapping[str, str]
"""Stack path prefix (``mesh.backend.istio.dataPlane``) -> the component's field path in schema
form (``dataPlane``; ``""`` for the component as a whole)."""

MESH_FIELDS: dict[str, str] = {"mesh": "", "mesh.name": "meshName", "mesh.trustDomain": "trustDomain", "mesh.backend": "mesh", "mesh.backend.type": "mesh", "mesh.backend.istio": "dataPlane", "mesh.backend.istio.dataPlane": "dataPlane", "mesh.clusters": "clusterName", "mesh.clusters[0].name": "clusterName", "mesh.services": "services"}
"""The stack paths every one-cluster component maps alike (mesh kind, name, trust domain, data plane,
the cluster's name, services); each component's ``FIELDS`` adds its own to these."""


def _matches(path: str, prefix: str) -> bool:
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[")


def repath_one(path: str, fields: FieldMap) -> str:
    """``path`` (a stack path, or an SMI document's) with its longest prefix in ``fields``
    replaced by the component's field; unmapped paths (an SMI file's ``file#Kind/ns/name...``, a
    document's ``documents#Kind/ns/name...``) are returned as they are."""
    best = max((p for p in fields if _matches(path, p)), key=len, default=None)
    if best is None:
        return path
    target, rest = fields[best], path[len(best):]
    if not target:
        return rest.lstrip(".")
    return target + rest


_STACK_PATH = re.compile(r"\bmesh(?:\.[A-Za-z0-9_]+|\[[0-9]+\])+")


def _repath_message(message: str, fields: FieldMap) -> str:
    """Stack paths a message names (``set defaultInboundPolicy ... in mesh.namespaces``) in the
    component's terms, where they map."""
    def swap(m: re.Match) -> str:
        mapped = repath_one(m.group(0), fields)
        return mapped if mapped != m.group(0) and mapped else m.group(0)
    return _STACK_PATH.sub(swap, message)


def repath(component: str, name: str, problems: Iterable[Problem], fields: FieldMap) -> list[Problem]:
    """``problems`` at stack paths -> ``("<component> <name>: <field path>", message)``, every
    path and the stack paths inside each message mapped through ``fields`` (:func:`repath_one`),
    in the order given, duplicates dropped."""
    out: list[Problem] = []
    for path, message in problems:
        mapped = repath_one(path, fields)
        item = (f"{component} {name}: {mapped}" if mapped else f"{component} {name}", _repath_message(message, fields))
        if item not in out:
            out.append(item)
    return out


def unknown_values(value: Any, path: str) -> list[Problem]:
    """A problem for every value inside ``value`` (args, nested mappings and lists) that is not
    known when the component is constructed (:func:`~mesh_components.components.args.is_output`):
    these args decide which objects exist and what they hold, so the render needs them as plain
    values. ``path``: the field path of ``value`` in schema form."""
    if is_output(value):
        return [(path, "must be known when the component is constructed (a plain value, not another resource's "
                       "output): it decides which objects are rendered; pass the value itself")]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in unknown_values(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in unknown_values(v, f"{path}[{i}]")]
    return []


def _typed_dict_of(annotation: Any) -> type | None:
    """The TypedDict an Args annotation holds (through ``Input``, ``Required``/``NotRequired``,
    ``Optional`` and one level of ``Sequence``/``list``), or None."""
    seen = 0
    while seen < 8:
        seen += 1
        if typing.is_typeddict(annotation):
            return annotation
        args = typing.get_args(annotation)
        if not args:
            return None
        origin = typing.get_origin(annotation)
        if origin is typing.Union:  # Input[T] = Union[T, Awaitable[T], Output[T]], Optional[T]
            annotation = args[0]
        else:  # Required, NotRequired, Sequence, list
            annotation = args[0]
    return None


def stack_keys(value: Any, typ: type) -> Any:
    """``value`` (an Args mapping of TypedDict ``typ``, Python or camelCase keys) with the keys of
    ``typ``'s fields in the stack file's camelCase, recursively into fields whose type is another
    TypedDict (or a list of them). Keys that are not fields of ``typ`` are kept as given (the spec
    loader refuses them, naming the known fields); values of free-form mappings (labels) are never
    touched."""
    if not isinstance(value, Mapping):
        return value
    hints = dict(typ.__annotations__)  # the TypedDict's own and inherited fields, Required/NotRequired kept
    by_schema = {schema_name(k): k for k in hints}
    out: dict = {}
    for key, v in value.items():
        field = key if key in hints else by_schema.get(key)
        if field is None:
            out[key] = v
            continue
        inner = _typed_dict_of(hints[field])
        if inner is not None and isinstance(v, (list, tuple)):
            v = [stack_keys(item, inner) for item in v]
        elif inner is not None:
            v = stack_keys(v, inner)
        out[to_camel(field)] = v
    return out


def load(component: str, name: str, mesh: dict, fields: FieldMap, *, documents: Sequence[Any] = (),
         base_dir: Path | str = ".") -> LoadedMesh:
    """The stack-shaped ``mesh`` validated as ``spec.load_mesh`` validates a stack's, with
    ``documents`` (SMI objects given as mappings; problems at ``documents[j]`` or
    ``documents#Kind/ns/name``) read beside the files ``mesh.smiFiles`` names (relative to
    ``base_dir``). Raises :class:`ArgsError` with every problem, re-pathed (:func:`repath`)."""
    from ..spec import smi

    try:
        spec = parse_spec(mesh)
    except SpecError as e:
        raise ArgsError(repath(component, name, e.problems, fields)) from None
    problems = check_references(spec)
    docs, file_problems = smi.read_files(spec.smi_files, Path(base_dir))
    problems += file_problems
    for j, doc in enumerate(documents):
        got, probs = smi.parse_document(doc, f"documents[{j}]")
        problems += probs
        if got is not None:
            docs.append(got)
    if not problems:
        problems += smi.check_documents(spec, docs)
    if problems:
        raise ArgsError(repath(component, name, problems, fields))
    return LoadedMesh(spec=spec, smi_documents=tuple(docs))


def render(component: str, name: str, mesh: dict, fields: FieldMap, *, documents: Sequence[Any] = (),
           base_dir: Path | str = ".") -> tuple[LoadedMesh, dict[str, ClusterState]]:
    """:func:`load`, then :func:`~mesh_components.core.render.render_mesh`: ``(loaded, states)``.
    Raises :class:`ArgsError` (bad args, also what the render refuses as the stack file's
    ``SpecError``) or :class:`TranslationError` (what the mesh cannot express exactly), re-pathed."""
    loaded = load(component, name, mesh, fields, documents=documents, base_dir=base_dir)
    try:
        return loaded, render_mesh(loaded)
    except TranslationError as e:
        raise TranslationError(repath(component, name, e.problems, fields)) from None
    except SpecError as e:
        raise ArgsError(repath(component, name, e.problems, fields)) from None


def raise_all(component: str, name: str, problems: Sequence[Problem], mesh: dict, fields: FieldMap, *,
              base_dir: Path | str = ".") -> None:
    """Raise :class:`ArgsError` with ``problems`` (the component's own checks of its args, at field
    paths) and, so the user sees every problem at once, what the stack file's loader says of the
    rest of ``mesh`` (:func:`load`), leaving out the loader's word on a field already refused (its
    path or one below it: noise). Returns when ``problems`` is empty."""
    if not problems:
        return
    try:
        load(component, name, mesh, fields, base_dir=base_dir)
        more: list[Problem] = []
    except (ArgsError, TypeError, ValueError) as e:
        more = list(getattr(e, "problems", ()))
    try:
        raise_if(component, name, problems)
    except ArgsError as e:
        ours = [p for p, _ in e.problems]
        raise ArgsError(e.problems + [m for m in more if m not in e.problems and not any(
            m[0] == p or m[0].startswith((p + ".", p + "[")) for p in ours)]) from None
