"""Checking a component's typed Args before anything is registered.

Every public component takes ``args``: a ``TypedDict`` of ``pulumi.Input`` values, field names in
Python's snake_case. Other languages (through the component package, ``mesh_components.provider``)
send the same fields in camelCase, the form Pulumi's analyzer puts in the schema
(``pulumi/provider/experimental/util.py`` ``camel_case``, used by ``analyzer.py`` for property
names). Errors name both the component and the field in that schema form, so one message reads
the same for a Python, TypeScript or YAML program:

    ``MeshCertificateAuthority ca: trustDomain: required; give the SPIFFE trust domain, e.g. "cluster.local"``

:class:`ArgsError` is a :class:`~mesh_components.spec.errors.MeshError`: ``problems`` holds
``(path, message)`` pairs, ``str()`` one ``path: message`` line per problem, as for the stack file.
Values that are unknown at check time (an ``Output``, e.g. another resource's attribute) cannot be
checked here: :func:`is_output` tells, and a component checks what it can of them once known.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from pulumi.provider.experimental.util import camel_case

from ..spec.errors import MeshError, Problem


class ArgsError(MeshError):
    """Bad Args given to a component: nothing was registered. ``problems``: ``(path, message)``
    with ``path`` = ``"<Component> <name>: <camelCaseField>[...]"``."""


def schema_name(field: str) -> str:
    """``trust_domain`` -> ``trustDomain``: a Python Args field as the package schema names it
    (Pulumi's analyzer: ``pulumi.provider.experimental.util.camel_case``)."""
    return camel_case(field)


def where(component: str, name: str, path: str = "") -> str:
    """The path prefix of a problem in ``component`` ``name``'s args; ``path`` is a Python field
    path (``clusters[1]``, ``documents[0].kind``) whose first part is put in schema form."""
    if not path:
        return f"{component} {name}"
    head, sep, rest = path.partition(".")
    bracket = head.find("[")
    head = schema_name(head[:bracket]) + head[bracket:] if bracket >= 0 else schema_name(head)
    return f"{component} {name}: {head}{sep}{rest}"


def raise_if(component: str, name: str, problems: Iterable[Problem]) -> None:
    """Raise :class:`ArgsError` with every ``(field path, message)`` of ``problems`` prefixed by
    :func:`where`; return when there are none."""
    found = [(where(component, name, p), m) for p, m in problems]
    if found:
        raise ArgsError(found)


def is_output(value: Any) -> bool:
    """Whether ``value`` is not known yet when the component is constructed (a ``pulumi.Output``
    or an awaitable): such values are passed through, not checked."""
    import inspect

    import pulumi
    return isinstance(value, pulumi.Output) or inspect.isawaitable(value)


def unknown_inputs(args: Mapping[str, Any], known: Iterable[str]) -> list[Problem]:
    """A problem for every key of ``args`` that is not one of ``known`` (Python names; camelCase
    keys as other languages send them are accepted and named in the message)."""
    known = set(known)
    by_schema = {schema_name(k): k for k in known}
    out = []
    for key in sorted(args, key=str):
        if key in known or key in by_schema:
            continue
        out.append((str(key), f"unknown field; known fields: {', '.join(sorted(by_schema))}"))
    return out


def from_schema_keys(args: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """``args`` with camelCase keys (as the component package receives them from other languages)
    turned into the Python field names among ``known``; other keys are kept as given."""
    by_schema = {schema_name(k): k for k in known}
    return {by_schema.get(k, k): v for k, v in args.items()}


def whole_number(value: Any) -> Any:
    """``value`` as an ``int`` when it is a float holding a whole number: numbers from other
    languages reach a Python component as floats (the package schema's ``integer`` travels as a
    protobuf ``number_value``), and pulumi 3.272.0 converts them to ``int`` and then overwrites the
    conversion with the float (``pulumi/provider/experimental/component.py`` lines 276-287, no
    ``continue`` after the ``int()``). Anything else is returned unchanged, to be refused by the
    field's own check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
