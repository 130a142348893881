"""Fast block-style YAML text of plain data, byte-identical to a reference PyYAML dump.

``render.dump_yaml`` writes one file per object, hundreds of thousands for a large mesh, and
PyYAML's representer (Python code run for every node, even with LibYAML's emitter) cost about
150 µs per object: most of a large render. :class:`BlockEmitter` writes the same text directly for
the shapes the renderer produces (dicts with string or integer keys, lists, strings, integers,
booleans, ``None``), block style, indent 2, sequences inside mappings not indented: LibYAML's
layout for ``default_flow_style=False`` (yaml/libyaml src/emitter.c, ``yaml_emitter_emit_block_*``;
PyYAML lib/yaml/emitter.py has the same layout).

Exactness comes from the reference, not from a copy of the YAML rules: a string's text (plain,
quoted or escaped) is the reference dumper's own, obtained once per distinct string and cached;
only strings that are certainly plain are recognised without asking it (:data:`_PLAIN`, below).
Anything else (a multi-line string, a float, a long key, another type) makes the whole value go
through the reference dump unchanged, so the output is the reference's in every case
(tests/test_yaml_text.py compares both on every rendered object and on generated structures).
"""
from __future__ import annotations

import re
from typing import Any, Callable

_PLAIN = re.compile(r"[A-Za-z0-9_/](?:[A-Za-z0-9_./*+=@~()$%,;-]|:(?=[^ ]))*"
                    r"(?: (?:[A-Za-z0-9_./*+=@~()$%,;-]|:(?=[^ ]))+)*")
"""Strings LibYAML writes plain in block context whatever the indentation, unless a tag resolver
claims them (checked separately): no indicator first character (``-?:,[]{}#&*!|>'"%@```), no ``: ``
or `` #``, no leading, trailing or double space (a conservative subset of
``yaml_emitter_analyze_scalar``), no ``:`` at the end, ASCII printable only."""

_MAX_INLINE = 1000
"""Longest string written without the reference: far below the emitter's line width (4096), so
no line is ever folded whatever the indentation."""
_MAX_KEY = 100
"""Longest key written as ``key:`` without asking the reference: longer simple keys (128 and up,
PyYAML lib/yaml/emitter.py ``check_simple_key``, LibYAML ``yaml_emitter_check_simple_key``) are
written as ``? key``."""
_MAX_DEPTH = 100
_CACHE_LIMIT = 100_000
"""Entries per cache; a full cache is emptied (it refills with the strings every object repeats),
so memory stays bounded in a long-lived process whatever it renders."""


def _one_line(text: str) -> bool:
    """``text`` is one line ending in ``\\n``: no other break of any kind (YAML also breaks lines at
    ``\\r``, NEL, U+2028 and U+2029), so its scalar reads the same at any indentation."""
    return text.endswith("\n") and len(text.splitlines()) == 1


class _Fallback(Exception):
    """The value holds something only the reference dump writes exactly."""


class BlockEmitter:
    """``dump(value)`` -> the YAML text ``reference(value)`` gives, faster for plain data.

    ``reference`` is the dump it must equal (``value -> str``, block style, no aliases, keys in
    insertion order); ``resolvers`` its dumper class's ``yaml_implicit_resolvers`` (which plain
    strings would read back as another type: ``true``, ``1e3``, ``null``, ``2024-01-01``...);
    ``convert`` maps a value type to the function giving the value written in its place (the
    reference must do the same replacement).
    """

    def __init__(self, reference: Callable[[Any], str], resolvers: dict,
                 convert: dict[type, Callable[[Any], Any]] | None = None) -> None:
        self.reference = reference
        self.resolvers = resolvers
        self.convert = convert or {}
        self.values: dict[str, str | None] = {}
        self.keys: dict[str, str | None] = {}

    def dump(self, value: Any) -> str:
        """The YAML text of ``value``, equal to ``reference(value)``."""
        if type(value) is dict and value:
            out: list[str] = []
            try:
                self._mapping(value, "", "", out, 0)
                return "".join(out)
            except _Fallback:
                pass
        elif type(value) is list and value:
            out = []
            try:
                self._sequence(value, "", "", out, 0)
                return "".join(out)
            except _Fallback:
                pass
        return self.reference(value)

    # scalars ---------------------------------------------------------------------------------

    def _resolves_to_str(self, s: str) -> bool:
        for _tag, regexp in self.resolvers.get(s[0], ()):
            if regexp.match(s):
                return False
        return not any(regexp.match(s) for _tag, regexp in self.resolvers.get(None, ()))

    def _value_text(self, s: str) -> str:
        form = self.values.get(s)
        if form is None:
            if s in self.values or len(s) > _MAX_INLINE:
                raise _Fallback
            if _PLAIN.fullmatch(s) and self._resolves_to_str(s):
                form = s
            else:  # the reference's own quoting/escaping, when it fits on the line
                text = self.reference({"k": s})
                form = text[3:-1] if text.startswith("k: ") and _one_line(text) else None
            if len(self.values) > _CACHE_LIMIT:
                self.values.clear()
            self.values[s] = form
            if form is None:
                raise _Fallback
        return form

    def _key_text(self, k: Any) -> str:
        if type(k) is int:
            return str(k)
        if type(k) is not str:
            raise _Fallback
        form = self.keys.get(k)
        if form is None:
            if k in self.keys or not k or len(k) > _MAX_KEY:
                raise _Fallback
            if _PLAIN.fullmatch(k) and self._resolves_to_str(k):
                form = k
            else:
                text = self.reference({k: 0})
                form = (text[:-4] if text.endswith(": 0\n") and _one_line(text) and not text.startswith("? ")
                        else None)
            if len(self.keys) > _CACHE_LIMIT:
                self.keys.clear()
            self.keys[k] = form
            if form is None:
                raise _Fallback
        return form

    def _scalar(self, v: Any) -> str | None:
        """The text of scalar ``v``; None when ``v`` is a non-empty collection."""
        t = type(v)
        if t is str:
            return self._value_text(v)
        if t is bool:
            return "true" if v else "false"
        if t is int:
            return str(v)
        if v is None:
            return "null"
        if t is dict or t is list:
            return None if v else ("{}" if t is dict else "[]")
        if t in self.convert:
            return self._scalar(self.convert[t](v))
        raise _Fallback  # floats, tuples, other types: the reference's representers decide

    # collections (LibYAML block layout) -------------------------------------------------------

    def _mapping(self, d: dict, indent: str, lead: str, out: list[str], depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _Fallback
        prefix = lead
        inner = indent + "  "
        keys, values = self.keys, self.values
        for k, v in d.items():
            # cached forms inline (the common case); the methods fill the caches and raise _Fallback
            key = keys.get(k) or self._key_text(k)
            text = (values.get(v) or self._value_text(v)) if type(v) is str else self._scalar(v)
            if text is not None:
                out.append(f"{prefix}{key}: {text}\n")
            elif type(v) is dict:
                out.append(f"{prefix}{key}:\n")
                self._mapping(v, inner, inner, out, depth + 1)
            else:  # a sequence in a mapping is not indented
                out.append(f"{prefix}{key}:\n")
                self._sequence(v, indent, indent, out, depth + 1)
            prefix = indent

    def _sequence(self, items: list, indent: str, lead: str, out: list[str], depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _Fallback
        prefix = lead + "- "
        inner = indent + "  "
        values = self.values
        for v in items:
            text = (values.get(v) or self._value_text(v)) if type(v) is str else self._scalar(v)
            if text is not None:
                out.append(f"{prefix}{text}\n")
            elif type(v) is dict:  # the first key on the dash's line
                self._mapping(v, inner, prefix, out, depth + 1)
            else:
                self._sequence(v, inner, prefix, out, depth + 1)
            prefix = indent + "- "
