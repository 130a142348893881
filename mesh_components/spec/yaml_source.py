"""Reading the YAML files users give us (stack files, SMI files): fast, bounded, exact about keys,
and able to say where in a file a problem is.

- **Parser**: LibYAML through PyYAML (``yaml.CSafeLoader``), about 5-10x faster than PyYAML's
  pure-Python ``SafeLoader``, which is the fallback when PyYAML was built without LibYAML
  (https://pyyaml.org/wiki/PyYAMLDocumentation, "LibYAML bindings"). Only the safe tags.
- **Keys**: a duplicate key in one mapping is an error naming both lines (YAML 1.2 section 3.2.1.1:
  mapping keys are unique; PyYAML silently keeps the last). Merge keys (``<<: *defaults``) work
  as the YAML 1.1 merge-key type says (https://yaml.org/type/merge.html): the mapping's own keys
  override merged ones, and of a list of merged mappings the earlier ones win; only the mapping's
  own keys are checked for duplicates.
- **Bounds**, checked on the composed node graph before anything expands it: a file is at most
  :data:`MAX_FILE_BYTES`; aliases may add at most :data:`MAX_ALIAS_NODES` nodes beyond those
  written in the file (the "billion laughs" document is a few hundred bytes that expand to 10^9
  nodes; PyYAML shares an alias's object, so the blow-up happens later, in whatever walks the
  data); a recursive alias is refused; nesting is at most :data:`MAX_DEPTH` levels (LibYAML stops
  at 1000, and the recursive walkers downstream - pydantic, ``copy.deepcopy``, the YAML emitter -
  need two to four Python frames per level under Python's 1000-frame limit).
- **Positions**: :func:`locate` maps a problem path (``mesh.clusters[0].cloud``) to ``line:column``
  by composing the file again (only when there is a problem to place) and walking its nodes.

Errors are :class:`~mesh_components.spec.errors.SpecError` problems ``(file:line:column, message)``.
"""
from __future__ import annotations

import contextlib
import datetime
import gc
import math
import re
import reprlib
import sys
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Problem, SpecError

MAX_FILE_BYTES = 16 * 1024 * 1024
"""The largest stack or SMI file read (16 MiB): a 10,000-service stack is about 4.5 MB."""
MAX_ALIAS_NODES = 1_000_000
"""How many nodes YAML aliases may add to a file beyond the nodes written in it."""
MAX_DEPTH = 100
"""The deepest nesting of mappings and lists read (real stacks nest under 15 levels)."""
SHOWN_CHARS = 60
"""Input echoed in a message is cut to about this many characters."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_MAP_TAG = "tag:yaml.org,2002:map"


# ---------------------------------------------------------------------------------------------
# echoing input


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = SHOWN_CHARS, SHOWN_CHARS, 40


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters (bounded work for any size or depth:
    ``reprlib`` stops at two levels and a few items), for echoing user input in messages; scalars
    YAML has its own words for (``true``, ``null``, ``2020-01-01``) are shown as YAML writes them."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    try:
        text = _REPR.repr(value)
    except (ValueError, RecursionError):  # an int past Python's 4300-digit str() limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit + 5 else text[:limit] + "..."


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters (a parser message can quote a whole line or name)."""
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------------------------
# the loader: LibYAML when present, unique keys, YAML 1.1 merge keys


def _merge_sources(node: Node, key_node: Node) -> list[MappingNode]:
    if isinstance(node, MappingNode):
        return [node]
    if isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
        return list(node.value)
    raise yaml.constructor.ConstructorError(
        None, None, "a merge key '<<' takes a mapping (<<: *defaults) or a list of mappings (<<: [*a, *b])",
        key_node.start_mark)


def _effective_pairs(loader, node: MappingNode) -> list[tuple[Any, Node]]:
    """``node``'s ``(key, value node)`` pairs with merges applied, in assignment order: merged
    pairs first (later-listed sources first, so earlier ones overwrite them), then the node's
    own keys, so they override merged ones (https://yaml.org/type/merge.html). Raises
    ``ConstructorError`` for a duplicate own key. Nodes are never mutated (PyYAML's
    ``flatten_mapping`` rewrites anchored nodes in place, which loses which keys were written)."""
    cache = loader._pairs
    got = cache.get(id(node))
    if got is not None:
        return got
    merged: list[tuple[Any, Node]] = []
    own: list[tuple[Any, Node]] = []
    seen: dict[Any, Node] = {}
    merge_key: Node | None = None
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            if merge_key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '<<' (first at line {merge_key.start_mark.line + 1}): "
                                f"merge several mappings with one key, <<: [*a, *b]", key_node.start_mark)
            merge_key = key_node
            for source in reversed(_merge_sources(value_node, key_node)):
                merged += _effective_pairs(loader, source)
            continue
        key = key_node.value if key_node.tag == _VALUE_TAG else loader.construct_object(key_node)
        try:
            first = seen.get(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a scalar (a string or number), not a list or mapping",
                key_node.start_mark) from None
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {shown(key)} (first at line {first.start_mark.line + 1}): "
                            f"remove one", key_node.start_mark)
        seen[key] = key_node
        own.append((key, value_node))
    pairs = merged + own
    cache[id(node)] = pairs
    return pairs


def _construct_map(loader, node: MappingNode):
    # a generator, as PyYAML's own construct_yaml_map: the children are built after the parent is
    # yielded, by construct_document's loop, so deep nesting never recurses in Python
    data: dict = {}
    yield data
    for key, value_node in _effective_pairs(loader, node):
        data[key] = loader.construct_object(value_node)


def _marked(construct, what: str):
    """A scalar constructor whose ValueError (an int past Python's 4300-digit limit, 2001-02-30)
    gets the node's position instead of escaping as a bare exception."""
    def wrapped(loader, node):
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as e:
            limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()  # Python 3.11, 3.10.7
            why = f"it has more than {limit} digits" if what == "number" else str(e)
            raise yaml.constructor.ConstructorError(None, None, f"cannot read the {what} {clip(node.value, 40)!r}: "
                                                                f"{why}", node.start_mark) from None
    return wrapped


def _construct_document(loader, node: Node) -> Any:
    loader._pairs = {}  # merged pairs by node identity: one document's nodes only
    try:
        return super(type(loader), loader).construct_document(node)
    finally:
        loader._pairs = {}


def _loader_class(base: type) -> type:
    cls = type(f"Unique{base.__name__}", (base,), {"construct_document": _construct_document})
    cls.add_constructor(_MAP_TAG, _construct_map)
    for tag, construct, what in (
            ("tag:yaml.org,2002:int", yaml.constructor.SafeConstructor.construct_yaml_int, "number"),
            ("tag:yaml.org,2002:timestamp", yaml.constructor.SafeConstructor.construct_yaml_timestamp, "date")):
        cls.add_constructor(tag, _marked(construct, what))
    return cls


PYTHON_LOADER = _loader_class(yaml.SafeLoader)
"""PyYAML's pure-Python safe loader with unique keys and merge keys."""
LOADER = _loader_class(yaml.CSafeLoader) if getattr(yaml, "__with_libyaml__", False) else PYTHON_LOADER
"""The loader used: LibYAML's parser (``CSafeLoader``) when PyYAML has it, else :data:`PYTHON_LOADER`."""


# ---------------------------------------------------------------------------------------------
# bounds on the node graph


def _too_deep(node: Node) -> yaml.composer.ComposerError:
    return yaml.composer.ComposerError(None, None, f"the data from here nests deeper than {MAX_DEPTH} levels: "
                                                   f"flatten it", node.start_mark)


def _check_tree_depth(root: Node) -> None:
    """:data:`MAX_DEPTH` for a document without anchors (a tree: nothing to memoise)."""
    stack = [(root, 1)]
    while stack:
        node, d = stack.pop()
        if d > MAX_DEPTH:
            raise _too_deep(node)
        items = [n for pair in node.value for n in pair] if node.__class__ is MappingNode else node.value
        stack.extend((n, d + 1) for n in items if n.__class__ is not ScalarNode)


def check_bounds(root: Node, alias_budget: int = MAX_ALIAS_NODES, anchors: bool = True) -> int:
    """Check one composed document against :data:`MAX_DEPTH` (levels of mappings and lists) and
    the alias budget; returns the budget left (the nodes aliases added are subtracted).

    ``anchors=False`` says the text has no ``&`` (so no alias, and the document is a tree): only
    the depth is checked. Otherwise expanded sizes and depths are computed once per mapping or
    list (memoised by identity), so the work is linear in the nodes *written*, however far aliases
    would expand. Raises ``ComposerError`` (a ``MarkedYAMLError``, placed at the offending node) for
    a recursive alias, too deep a nesting or too many alias nodes."""
    if root.__class__ is ScalarNode:
        return alias_budget
    if not anchors:
        _check_tree_depth(root)
        return alias_budget
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    written = 0  # nodes written: each mapping or list once, with its scalar entries (an alias counts as written)
    stack: list[tuple[Node, Any]] = [(root, None)]
    while stack:
        node, state = stack.pop()
        nid = id(node)
        if state is None:  # first visit
            if nid in size:
                continue
            if nid in open_:
                raise yaml.composer.ComposerError(
                    None, None, "an alias refers to a node that contains it (a recursive structure): "
                                "a mesh spec is a tree, so alias only finished, outside nodes", node.start_mark)
            items = [n for pair in node.value for n in pair] if node.__class__ is MappingNode else node.value
            kids = [n for n in items if n.__class__ is not ScalarNode]
            scalars = len(items) - len(kids)
            written += 1 + scalars
            open_.add(nid)
            stack.append((node, (kids, scalars)))
            stack.extend((k, None) for k in kids if id(k) not in size)
            continue
        kids, scalars = state
        open_.discard(nid)
        s, d = 1 + scalars, 0
        for k in kids:
            kid = id(k)
            s += size[kid]
            if depth[kid] > d:
                d = depth[kid]
        size[nid], depth[nid] = s, d + 1
        if d + 1 > MAX_DEPTH:
            raise _too_deep(node)
        # s counts this subtree as expanded, written the nodes seen so far (a lower bound of the
        # file's), so this fires only when the budget is surely spent, at the smallest such node
        if s - written > alias_budget:
            raise yaml.composer.ComposerError(
                None, None, f"the aliases here expand to more than {MAX_ALIAS_NODES:,} nodes beyond those "
                            f"written (the 'billion laughs' pattern): write the repeated parts out, or alias "
                            f"less", node.start_mark)
    return alias_budget - (size[id(root)] - written)


# ---------------------------------------------------------------------------------------------
# reading files


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector for a block that allocates millions of objects and
    makes no garbage cycles (parsing, building the spec models): each automatic collection walks
    every live object again, which made a 1 MB stack's parse 4x and its pydantic validation 3-4x
    slower. Refcounting still frees everything; the collector's previous state is restored (so
    nested pauses and callers that keep it off are left as they were)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def read_text(path: Path, shown_as: str | None = None) -> str:
    """The text of ``path`` (UTF-8, or UTF-16/32 with a byte order mark, as YAML 1.2 section 5.2
    allows), at most :data:`MAX_FILE_BYTES`. Raises :class:`SpecError` ``(file[:line:column],
    message)`` for an unreadable, too large or undecodable file."""
    where = shown_as or str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise SpecError([(where, f"cannot read: {e.strerror or e}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError([(where, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB ({MAX_FILE_BYTES:,} bytes), "
                                 f"the most a stack or SMI file may hold: split the SMI documents over several "
                                 f"files, or trim the file")])
    if data[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"):
        encoding = "utf-32"
    elif data[:2] in (b"\xfe\xff", b"\xff\xfe"):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = len(data[data.rfind(b"\n", 0, e.start) + 1:e.start].decode(encoding, "replace")) + 1
        raise SpecError([(f"{where}:{line}:{column}",
                          f"not {encoding.removesuffix('-sig').upper()} text (byte 0x{data[e.start]:02x}): save "
                          f"the file as UTF-8")]) from None


def _yaml_problem(e: yaml.YAMLError, where: str, text: str, byte_offsets: bool) -> Problem:
    """A parser or constructor error as ``(file:line:column, message)``."""
    if isinstance(e, yaml.reader.ReaderError):
        # LibYAML gives a byte offset into the UTF-8 text, PyYAML's reader a character offset
        offset = e.position
        if byte_offsets:
            offset = len(text.encode("utf-8")[:offset].decode("utf-8", "replace"))
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        char = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        return (f"{where}:{line}:{column}", f"not valid YAML: the character {char} is not allowed in YAML text "
                                            f"(control characters other than tab, CR and LF): remove it, or "
                                            f"write it as an escape such as \"\\x00\" in a double-quoted string")
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None else where
    problem = getattr(e, "problem", None) or str(e)
    if "maximum nesting depth" in problem:  # LibYAML's own limit (1000 levels)
        problem = f"nesting deeper than {MAX_DEPTH} levels: flatten the data"
    context = getattr(e, "context", None)
    if context and "nesting" not in problem and context not in problem:
        problem = f"{problem} ({context})"
    return at, f"not valid YAML: {clip(problem)}"


def load_documents(path: Path, shown_as: str | None = None, loader: type | None = None) -> list[Any]:
    """Every non-empty YAML document in ``path``, with the bounds and key rules above.

    ``shown_as`` names the file in problems (default ``str(path)``); ``loader`` defaults to
    :data:`LOADER`. Raises :class:`SpecError` with one ``(file:line:column, message)`` problem.
    The cyclic garbage collector is paused while parsing (:func:`gc_paused`)."""
    where = shown_as or str(path)
    text = read_text(path, where)
    with gc_paused():
        return _parse(text, where, loader or LOADER)


def _parse(text: str, where: str, loader_cls: type) -> list[Any]:
    parser = None
    try:
        parser = loader_cls(text)  # PyYAML's reader checks the characters here
        docs: list[Any] = []
        budget = MAX_ALIAS_NODES
        anchors = "&" in text  # no '&', no anchor, no alias: a tree
        while parser.check_node():
            node = parser.get_node()
            budget = check_bounds(node, budget, anchors)
            data = parser.construct_document(node)
            if data is not None:
                docs.append(data)
        return docs
    except yaml.YAMLError as e:
        raise SpecError([_yaml_problem(e, where, text, byte_offsets=not issubclass(loader_cls, yaml.SafeLoader))]) \
            from None
    except RecursionError:  # PyYAML's pure-Python composer recurses per level
        raise SpecError([(where, f"not valid YAML: nesting deeper than {MAX_DEPTH} levels: flatten the data")]) \
            from None
    finally:
        if parser is not None:
            parser.dispose()


# ---------------------------------------------------------------------------------------------
# positions


_SEGMENT = re.compile(r"\.([^.\[\]]+)|\[([^\]]*)\]")


def split_path(path: str) -> tuple[str, list[str]]:
    """``"mesh.clusters[0].cloud"`` -> ``("mesh", [".clusters", "[0]", ".cloud"])``: the root and
    the segments, as far as the path is well-formed (text after that, such as ``" in dev: ..."``,
    is dropped)."""
    m = re.match(r"[^.\[\]]*", path)
    root = m.group(0) if m else ""
    segments: list[str] = []
    pos = len(root)
    while pos < len(path):
        seg = _SEGMENT.match(path, pos)
        if not seg:
            break
        segments.append(seg.group(0))
        pos = seg.end()
    return root, segments


def _lookup(node: MappingNode, key: str, seen: set[int] | None = None) -> tuple[Node, Node] | None:
    """The ``(key node, value node)`` of scalar key ``key`` in ``node``, own keys before merged ones."""
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key and k.tag != _MERGE_TAG:
            return k, v
    seen = seen or set()
    for k, v in node.value:
        if k.tag == _MERGE_TAG and id(v) not in seen:
            seen.add(id(v))
            for source in (v.value if isinstance(v, SequenceNode) else [v]):
                if isinstance(source, MappingNode):
                    found = _lookup(source, key, seen)
                    if found:
                        return found
    return None


def node_at(root: Node, segments: list[str], at_key: bool = False) -> Node:
    """The deepest node reached from ``root`` along ``segments`` (:func:`split_path`): the node
    itself when the whole path exists, else the last node on the way (the mapping a missing field
    belongs in). A key holding dots (a label such as ``app.kubernetes.io/name``) spans several
    ``.`` segments; a missing ``spec`` is skipped (SMI v1alpha1/v1alpha2 keep fields at the top).
    A mapping value that is a mapping or list is placed at its key, and any value with ``at_key``."""
    node, i = root, 0
    while i < len(segments):
        seg = segments[i]
        if isinstance(node, SequenceNode) and seg.startswith("[") and seg[1:-1].isdigit():
            index = int(seg[1:-1])
            if index >= len(node.value):
                break
            node, i = node.value[index], i + 1
            continue
        if not isinstance(node, MappingNode):
            break
        found, used = None, 0
        if seg.startswith("["):
            found, used = _lookup(node, seg[1:-1]), 1
        else:
            for j in range(len(segments), i, -1):  # the longest dotted key first
                parts = segments[i:j]
                if all(p.startswith(".") for p in parts):
                    found = _lookup(node, ".".join(p[1:] for p in parts))
                    if found:
                        used = j - i
                        break
        if not found:
            if seg == ".spec":
                i += 1
                continue
            break
        key_node, value_node = found
        i += used
        node = value_node if i < len(segments) or (isinstance(value_node, ScalarNode) and not at_key) else key_node
    return node


def compose_documents(path: Path) -> list[Node]:
    """The composed (not constructed) documents of ``path``, for placing problems; [] when the
    file cannot be read or parsed (it was read fine moments ago, so that is a race)."""
    try:
        text = read_text(path)
        parser = LOADER(text)
        try:
            nodes = []
            while parser.check_node():
                nodes.append(parser.get_node())
            # the documents load_documents keeps: not the empty ones
            return [n for n in nodes if not (isinstance(n, ScalarNode) and n.tag == "tag:yaml.org,2002:null")]
        finally:
            parser.dispose()
    except Exception:  # noqa: BLE001 - placing is best effort: never turn a problem into a crash
        return []


def position(node: Node) -> str:
    """``line:column`` of ``node`` (1-based, as editors count)."""
    return f"{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def with_position(shown_file: str, node: Node, path: str) -> str:
    """A problem path with its place in front, ``file:line:column: path`` (the form compilers and
    linters print, which editors and CI problem matchers read)."""
    return f"{shown_file}:{position(node)}: {path}"


def locate(problems: list[Problem], roots: dict[str, Node], shown_file: str) -> list[Problem]:
    """``problems`` with each path that starts with a name in ``roots`` (``mesh...``) prefixed by
    its place, ``file:line:column: path``, walking from that root's node; others unchanged."""
    out = []
    for path, message in problems:
        name, segments = split_path(path)
        root = roots.get(name)
        if root is not None and (path == name or segments):
            # an unknown field is placed at its key, other problems at the value
            node = node_at(root, segments, at_key=message.startswith("unknown field"))
            out.append((with_position(shown_file, node, path), message))
        else:
            out.append((path, message))
    return out


_PLACE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+)(?:: (?P<path>.*))?$", re.S)


def split_place(path: str) -> tuple[str, int, int, str | None] | None:
    """A placed problem path ``file:line:column[: path]`` -> ``(file, line, column, path or None)``
    (for structured reports such as ``validate --format json``); None for a path with no place."""
    m = _PLACE.match(path)
    return (m["file"], int(m["line"]), int(m["column"]), m["path"]) if m else None


def lookup(node: Node | None, key: str) -> Node | None:
    """The value node of scalar key ``key`` in mapping ``node`` (merged keys too), or None."""
    found = _lookup(node, key) if isinstance(node, MappingNode) else None
    return found[1] if found else None


def is_finite_integral(value: float) -> bool:
    """Whether a float is a whole number (``80.0``), not ``.inf``, ``.nan`` or ``1.5``."""
    return math.isfinite(value) and value.is_integer()
