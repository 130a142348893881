"""SMI (Service Mesh Interface) documents: model, reader and reference checks.

Read: TrafficTarget (access.smi-spec.io v1alpha1-v1alpha3), HTTPRouteGroup and TCPRoute
(specs.smi-spec.io v1alpha1-v1alpha4), TrafficSplit (split.smi-spec.io v1alpha1-v1alpha4), from
plain YAML files (``kubectl``-style, several documents per file, ``kind: List`` too) and from the
stack spec's ``accessRules``/``trafficSplits`` (which are SMI with the routes inline).
Spec: https://github.com/servicemeshinterface/smi-spec (traffic-access-control, traffic-specs,
traffic-split). Every document keeps ``origin`` (``file#Kind/namespace/name``) so errors name it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from .errors import Problem
from .names import dns1123_label_problem, dns1123_subdomain_problem

ACCESS_GROUP = "access.smi-spec.io"
SPECS_GROUP = "specs.smi-spec.io"
SPLIT_GROUP = "split.smi-spec.io"
READ_VERSIONS = {
    ("TrafficTarget", ACCESS_GROUP): {"v1alpha1", "v1alpha2", "v1alpha3"},
    ("HTTPRouteGroup", SPECS_GROUP): {"v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"},
    ("TCPRoute", SPECS_GROUP): {"v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"},
    ("TrafficSplit", SPLIT_GROUP): {"v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"},
}
PORT_VERSIONS = {
    ("TrafficTarget", "destination.port"): {"v1alpha1", "v1alpha2"},
    ("TCPRoute", "matches.ports"): {"v1alpha4"},
}
"""The SMI versions whose schema has a port field (smi-sdk-go pkg/apis/access/*/traffic_target.go,
pkg/apis/specs/*/tcp_route.go); elsewhere the API server prunes it, so it is refused, never honoured."""
SPLIT_WEIGHT_MAX = 1_000_000
"""The largest backend weight every mesh takes: Gateway API caps ``backendRefs[].weight`` at 1000000
(gateway-api v1.6.1 config/crd/standard/gateway.networking.k8s.io_httproutes.yaml)."""
HTTP_METHODS = {"*", "GET", "HEAD", "PUT", "POST", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
"""The methods an SMI match may name: the HTTPRouteGroup CRD's enum (../shared/crds/smi/httproutegroup.yaml
``matches[].methods[]``; smi-sdk-go v0.5.0 pkg/apis/specs/v1alpha4 ``HTTPRouteMethod``), which is also all that
Linkerd's and Gateway API's HTTPRoute ``matches[].method`` enum takes (../shared/crds/linkerd/
httproutes.policy.linkerd.io.yaml; gateway-api v1.6.1 gateway.networking.k8s.io_httproutes.yaml)."""
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}")
"""An HTTP header field name: an RFC 9110 token (section 5.1: field-name = token; 5.6.2 tchar), at
most 256 characters: Gateway API v1.6.1 ``HTTPHeaderName`` (pattern ``^[A-Za-z0-9!#$%&'*+\\-.^_\\x60|~]+$``,
maxLength 256), which Linkerd's policy.linkerd.io HTTPRoute shares. A fixed pattern: ``re`` is linear on it."""


def method_problem(method: Any) -> str | None:
    """Why ``method`` cannot be an SMI match method, or None (:data:`HTTP_METHODS`).

    Methods are case-sensitive (RFC 9110 section 9.1: "The method token is case-sensitive") and
    every mesh compares them literally: Istio 1.30.3 matches ``methods`` with an exact, case-sensitive
    ``:method`` header matcher (pilot/pkg/security/authz/model/generator.go:421-430 ``methodGenerator``,
    pilot/pkg/security/authz/matcher/header.go:53 ``StringMatcherExact(v, false)``); OSM v1.2.4 with
    an RE2 ``safe_regex`` on ``:method`` (pkg/envoy/rds/route/route_config.go:476-531); Linkerd
    edge-26.8.3 takes only the upper-case enum (the CRD above; policy-controller/k8s/index/src/routes/
    http.rs:28-38 maps each variant to ``http::Method``). So ``get`` would match no ``GET`` request.
    """
    from .yaml_source import shown

    known = ", ".join(sorted(HTTP_METHODS))
    if not isinstance(method, str):  # (a YAML list or mapping is unhashable: test the type first)
        return f"{shown(method)} is not an HTTP method; use one of {known}"
    if method in HTTP_METHODS:
        return None
    if method.upper() in HTTP_METHODS:
        return (f"{shown(method)} is not an HTTP method: methods are case-sensitive (RFC 9110 section 9.1) and Envoy "
                f"(Istio, OSM) and Linkerd compare them literally, so {shown(method)} would match no "
                f"{method.upper()} request; write {shown(method.upper())}")
    return (f"{shown(method)} is not a method SMI's HTTPRouteGroup takes (nor Linkerd's and Gateway API's HTTPRoute): "
            f"use one of {known}")


def header_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a matched header's name (:data:`HEADER_NAME`), or None."""
    from .yaml_source import shown

    if isinstance(name, str) and HEADER_NAME.fullmatch(name):
        return None
    return (f"{shown(name)} is not an HTTP header name: write an RFC 9110 token (letters, digits and "
            f"!#$%&'*+-.^_`|~), at most 256 characters, as Gateway API's HTTPHeaderName requires "
            f"(pseudo-headers such as ':authority' cannot be matched)")


def repeated_header_problem(names: Iterable[str]) -> str | None:
    """Why a match's header names repeat one header, or None. Names are case-insensitive (RFC 9110
    section 5.1), so ``X-Id`` and ``x-id`` are one header; Linkerd lower-cases them, and an HTTPRoute
    match keeps only the first condition on a header (Gateway API v1.6.1 HTTPRouteMatch.headers:
    "only the first entry with an equivalent name MUST be considered"), so the second would be dropped."""
    from .yaml_source import shown

    seen: dict[str, str] = {}
    for n in names:
        if n.lower() in seen:
            return (f"header {shown(n)} is matched twice (as {shown(seen[n.lower()])} and {shown(n)}; header names are "
                    f"case-insensitive): give one condition for it")
        seen[n.lower()] = n
    return None


@dataclass(frozen=True)
class HTTPMatch:
    """One named match of an HTTPRouteGroup. ``methods`` empty or ``("*",)`` means any method;
    ``path_regex`` None means any path; ``headers`` are ``(name, value-regex)`` pairs, all required."""

    name: str
    methods: tuple[str, ...] = ("*",)
    path_regex: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    approximate: str | None = None
    """A named approximation the user accepts for this match (``prefix``), or None: exact only."""

    @property
    def any_method(self) -> bool:
        return not self.methods or "*" in self.methods


@dataclass(frozen=True)
class HTTPRouteGroup:
    """specs.smi-spec.io HTTPRouteGroup: named HTTP matches."""

    name: str
    namespace: str
    matches: tuple[HTTPMatch, ...]
    origin: str


@dataclass(frozen=True)
class TCPRoute:
    """specs.smi-spec.io TCPRoute: destination ports (empty: every port)."""

    name: str
    namespace: str
    ports: tuple[int, ...]
    origin: str


@dataclass(frozen=True)
class RuleRef:
    """A TrafficTarget rule: a route by kind and name; ``matches`` picks named HTTP matches
    (empty: all of the group's matches)."""

    kind: str
    name: str
    matches: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrafficTarget:
    """access.smi-spec.io TrafficTarget: ``sources`` (service accounts as ``(namespace, name)``)
    may reach pods running as ``destination`` on the routes in ``rules``."""

    name: str
    namespace: str
    destination: tuple[str, str]
    sources: tuple[tuple[str, str], ...]
    rules: tuple[RuleRef, ...]
    origin: str
    destination_port: int | None = None


@dataclass(frozen=True)
class TrafficSplit:
    """split.smi-spec.io TrafficSplit: ``service`` (the apex) to weighted ``backends``."""

    name: str
    namespace: str
    service: str
    backends: tuple[tuple[str, int], ...]
    origin: str
    matches: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicySet:
    """All SMI documents of a mesh, spec and files together, references checked."""

    targets: tuple[TrafficTarget, ...] = ()
    route_groups: tuple[HTTPRouteGroup, ...] = ()
    tcp_routes: tuple[TCPRoute, ...] = ()
    splits: tuple[TrafficSplit, ...] = ()
    index: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self):
        # first definition wins, as in the file order the documents were read
        for d in reversed(self.route_groups + self.tcp_routes):
            self.index[(type(d).__name__, d.namespace, d.name)] = d

    def route_group(self, namespace: str, name: str) -> HTTPRouteGroup | None:
        return self.index.get(("HTTPRouteGroup", namespace, name))

    def tcp_route(self, namespace: str, name: str) -> TCPRoute | None:
        return self.index.get(("TCPRoute", namespace, name))


# ---------------------------------------------------------------------------------------------
# the shape of SMI regexes

_META = set(".^$*+?()[]{}|\\")
_ESCAPABLE = _META | set("/-_~:@&=,;'\"!%#<> ")
_ANY = object()


@lru_cache(maxsize=1 << 14)  # pure; every rule of a large mesh asks about the same few regexes
def regex_shape(regex: str) -> tuple[str, str | None]:
    """Classify a full-match regex (SMI ``pathRegex`` and header values are matched against the
    whole value, as Envoy's ``safe_regex`` does) by the strings it admits:

    ``("exact", s)`` only ``s``; ``("prefix", s)`` strings starting with ``s`` (``s.*``);
    ``("suffix", s)`` strings ending with ``s`` (``.*s``); ``("any", None)`` every string
    (``.*``); ``("regex", None)`` anything else. Escaped metacharacters (``\\.``) are literals and
    ``^``/``$`` anchors are accepted.
    """
    s = regex[1:] if regex.startswith("^") else regex
    if s.endswith("$") and not s.endswith("\\$"):
        s = s[:-1]
    tokens: list = []
    literal: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in _ESCAPABLE:
            literal.append(s[i + 1])
            i += 2
        elif c == "." and s[i + 1:i + 2] == "*":
            if literal:
                tokens.append("".join(literal))
                literal = []
            if not tokens or tokens[-1] is not _ANY:
                tokens.append(_ANY)
            i += 2
        elif c in _META:
            return "regex", None
        else:
            literal.append(c)
            i += 1
    if literal:
        tokens.append("".join(literal))
    if tokens == [_ANY]:
        return "any", None
    if len(tokens) == 1:
        return "exact", tokens[0]
    if not tokens:
        return "exact", ""
    if len(tokens) == 2 and tokens[1] is _ANY:
        return "prefix", tokens[0]
    if len(tokens) == 2 and tokens[0] is _ANY:
        return "suffix", tokens[1]
    return "regex", None


def alternatives(regex: str) -> list[str]:
    """The top-level alternatives of a regex (``/a/.*|/b/.*`` -> ``["/a/.*", "/b/.*"]``; one item
    when there is no ``|`` outside groups and classes). A string full-matches the regex iff it
    full-matches one of them, so overlap and prefix reasoning must look at each (issue 10.6)."""
    out, depth, start, i, class_at = [], 0, 0, 0, None
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            i += 2
            continue
        if class_at is not None:
            # a "]" right after "[" or "[^" is a literal member of the class (RE2 syntax)
            if c == "]" and i > class_at + 1 and regex[class_at + 1:i] != "^":
                class_at = None
        elif c == "[":
            class_at = i
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(regex[start:i])
            start = i + 1
        i += 1
    return out + [regex[start:]]


def literal_prefix(regex: str) -> str:
    """The literal text every string the regex admits starts with (may be empty); with top-level
    alternatives, the prefix they all share."""
    alts = alternatives(regex)
    if len(alts) > 1:
        prefixes = [literal_prefix(a) for a in alts]
        common = prefixes[0]
        for x in prefixes[1:]:
            while not x.startswith(common):
                common = common[:-1]
        return common
    s = regex[1:] if regex.startswith("^") else regex
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in _ESCAPABLE:
            out.append(s[i + 1])
            i += 2
            continue
        if c in _META:
            # a quantifier applies to the previous literal, which is then not certain
            if c in "*?{" and out:
                out.pop()
            break
        out.append(c)
        i += 1
    return "".join(out)


def may_overlap(a: HTTPMatch, b: HTTPMatch) -> bool:
    """Whether some HTTP request could satisfy both matches (conservative: True when unsure).

    Disjoint when their method sets do not meet, when both require the same header to equal
    different literals, when two literal paths differ, when a literal path does not satisfy the
    other's regex, or when two regexes start with incompatible literal prefixes.
    """
    if not a.any_method and not b.any_method and not (set(a.methods) & set(b.methods)):
        return False
    literal_headers = {n.lower(): regex_shape(v) for n, v in a.headers}
    for n, v in b.headers:
        mine = literal_headers.get(n.lower())
        theirs = regex_shape(v)
        if mine and mine[0] == theirs[0] == "exact" and mine[1] != theirs[1]:
            return False
    if a.path_regex is None or b.path_regex is None:
        return True
    # a top-level alternation overlaps when one of its alternatives does (issue 10.6)
    return any(_paths_may_overlap(x, y) for x in alternatives(a.path_regex) for y in alternatives(b.path_regex))


def _paths_may_overlap(x: str, y: str) -> bool:
    (kx, lx), (ky, ly) = regex_shape(x), regex_shape(y)
    if kx == ky == "exact":
        return lx == ly
    if kx == "exact" or ky == "exact":
        literal, other = (lx, y) if kx == "exact" else (ly, x)
        compiled = re2_compile(other)
        return True if compiled is None else compiled.fullmatch(literal) is not None
    px, py = literal_prefix(x), literal_prefix(y)
    return px.startswith(py) or py.startswith(px)


def re2_compile(regex: str):
    """``regex`` compiled by RE2 (the engine of OSM's Envoy ``safe_regex``), or None when RE2
    refuses it. RE2 runs in linear time, so matching user regexes here cannot be made slow.
    https://github.com/google/re2/wiki/Syntax ; Python binding ``google-re2`` (PyPI)."""
    import re2  # google-re2

    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(regex, options)
    except re2.error:
        return None


def empty_as_absent(path_regex):
    """An SMI ``pathRegex`` as this project reads it: ``""`` is no path constraint (None), as upstream
    reads it. smi-sdk-go v0.5.0 pkg/apis/specs/v1alpha4/http_route.go:40 types it
    ``PathRegex string `json:"pathRegex,omitempty"``` (an empty value and an absent one are the same
    Go value), and OSM v1.2.4 pkg/catalog/inbound_traffic_policies.go:250-253 turns an empty path into
    ``.*`` ("When pathRegex or/and methods are not defined, they will be wildcarded"). So it never
    becomes an empty Istio path (rejected by istio 1.30.3 pkg/config/security/security.go
    ``CheckEmptyValues``) or a Linkerd ``Exact ''``: every mesh renders "any path" for it."""
    return None if path_regex == "" else path_regex


@lru_cache(maxsize=1 << 14)  # pure; many rules share a few regexes
def re2_error(regex: str) -> str | None:
    """RE2's own message when it cannot compile ``regex`` (``"invalid perl operator: (?!"``), or None.
    RE2 is the engine of Envoy's ``safe_regex`` (OSM v1.2.4 pkg/envoy/rds/route/route_config.go:371-375,
    476-523 ``GoogleRe2``); binding ``google-re2`` (PyPI), https://github.com/google/re2/wiki/Syntax ."""
    import re2  # google-re2

    options = re2.Options()
    options.log_errors = False
    try:
        re2.compile(regex, options)
    except re2.error as e:
        why = e.args[0] if e.args else "cannot compile"
        return why.decode("utf-8", "replace") if isinstance(why, bytes) else str(why)
    return None


# --- Rust regex (Linkerd): what RE2 accepts but Rust regex refuses or reads otherwise ---------------
#
# Linkerd edge-26.8.3 compiles a RegularExpression path or header match twice: in the policy
# controller (policy-controller/k8s/index/src/routes/http.rs:63-79 ``value.parse()``, i.e.
# ``regex::Regex::new``, core/src/routes.rs:168-172; Cargo.lock regex 1.13.1) and in the proxy
# (linkerd2-proxy release/v2.366.0 linkerd/http/route/src/http/match/path.rs and header.rs; Cargo.lock
# regex 1.12.4, the same regex-syntax 0.8 grammar: CHANGELOG 1.12.4-1.13.1 change no syntax). Both
# use the defaults (nest limit 250, compiled size limit 10 MiB). Syntax: https://docs.rs/regex/1.13.1/regex/#syntax
# against https://github.com/google/re2/wiki/Syntax. No Python binding of the regex crate is
# well kept (flpc 0.2.5: regex 1.10, unmaintained since 2024-07; rurex 0.2.0 puts a Python-``re``
# layer in front; paula 1.0.5: undocumented, Python >= 3.11), so the differences are refused here,
# one by one; tests/test_literal_values.py holds each with what regex 1.13.1 answers.

RUST_NEST_LIMIT = 250
"""regex-syntax 0.8.11 ``ParserBuilder`` default ``nest_limit`` (src/ast/parse.rs ``NestLimiter``: a
group, class, repetition, alternation, concatenation and class union each nest one level)."""
_POSIX_CLASSES = {"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
                  "space", "upper", "word", "xdigit"}
_RE2_REPEAT = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")   # fixed pattern on our side: `re` is safe here
_POSIX_AT = re.compile(r"\[:\^?([a-z]+):\]")
_BRACE = "'{' that starts no counted repetition is a literal to RE2 but a repetition to Rust regex (an error); write \\{"


class _RustRefuses(Exception):
    """Raised by the scanner below with Rust regex's reading of the construct."""


@lru_cache(maxsize=1 << 14)  # pure; many rules share a few regexes
def rust_regex_problem(regex: str) -> str | None:
    """For a regex RE2 compiles: what Rust ``regex`` 1.13 (Linkerd) says of it where it refuses it
    or reads it otherwise, or None when both read it alike (beyond the Unicode-aware ``\\d \\w \\s
    \\b`` of Rust regex, which RE2 keeps ASCII: the same on ASCII paths and header values).

    Refused: ``\\Q..\\E``, ``\\C``; octal ``\\0``-``\\7`` (back-references to Rust); ``\\<``, ``\\>``
    and ``\\b{..}`` (word boundaries to Rust, literals to RE2); ``\\p{^X}``; ``\\p{Cs}`` and
    ``\\x{D800}``-``\\x{DFFF}`` (no surrogates in Rust); a ``{`` that starts no counted repetition;
    a repetition right after a flags group ``(?i)*``; in classes, ``[`` that opens no POSIX class
    (a nested class to Rust), ``&&``/``--``/``~~`` (set operations to Rust), ``[\\d-z]`` and a
    leading ``]-x``; capture names Rust does not allow or repeats; nesting deeper than
    :data:`RUST_NEST_LIMIT` counted as regex-syntax counts it. Not modelled: the 10 MiB compiled
    size limit (reached by e.g. ``\\w{250}``), which RE2's own limits do not mirror."""
    try:
        depth, _ = _rust_alternation(regex, 0, set())
    except _RustRefuses as e:
        return str(e)
    except RecursionError:  # three frames per group: hundreds of nested groups, far over the limit
        depth = RUST_NEST_LIMIT + 1
    except (IndexError, ValueError):
        return None  # only for text RE2 refused already: the RE2 check reports it
    if depth > RUST_NEST_LIMIT:
        return f"exceed the maximum number of nested parentheses/brackets ({RUST_NEST_LIMIT}); nest less deeply"
    return None


def _rust_alternation(s: str, i: int, names: set) -> tuple[int, int]:
    depths = []
    while True:
        d, i = _rust_concat(s, i, names)
        depths.append(d)
        if i < len(s) and s[i] == "|":
            i += 1
            continue
        return max(depths) + (len(depths) > 1), i


def _rust_concat(s: str, i: int, names: set) -> tuple[int, int]:
    depths = []
    while i < len(s) and s[i] not in "|)":
        flags = _flags_group_end(s, i)
        d, i = _rust_atom(s, i, names)
        if i < len(s) and s[i] in "*+?{":
            if flags:
                raise _RustRefuses("a repetition right after a flags group repeats the item before it in RE2 and "
                                   "is an error in Rust regex (repetition operator missing expression); move the "
                                   "flags group")
            if s[i] == "{":
                m = _RE2_REPEAT.match(s, i)
                if m is None:
                    raise _RustRefuses(_BRACE)
                i = m.end()
            else:
                i += 1
            i += i < len(s) and s[i] == "?"
            d += 1
        depths.append(d)
    if not depths:
        return 0, i
    return (depths[0] if len(depths) == 1 else 1 + max(depths)), i


def _flags_group_end(s: str, i: int) -> int | None:
    """The end of a flags group ``(?i)`` at ``i`` (an item of its own, not a group), else None."""
    if not s.startswith("(?", i) or s.startswith(("(?P<", "(?<"), i):
        return None
    k = i + 2
    while s[k] not in ":)":
        k += 1
    return k + 1 if s[k] == ")" else None


def _rust_atom(s: str, i: int, names: set) -> tuple[int, int]:
    c = s[i]
    if c == "(":
        end = _flags_group_end(s, i)
        if s.startswith("(?", i) and not s.startswith(("(?P<", "(?<"), i):
            flags = s[i + 2:end - 1] if end is not None else s[i + 2:s.index(":", i)]
            if not flags and end is not None:
                raise _RustRefuses("an empty flags group (?) is nothing to RE2 but an error in Rust regex; remove it")
            letters = flags.replace("-", "")
            if len(set(letters)) != len(letters):
                raise _RustRefuses(f"flag repeated in (?{flags}): RE2 takes it, Rust regex refuses it (duplicate "
                                   f"flag); name each flag once")
        if end is not None:
            return 0, end
        k = i + 1
        if s.startswith(("(?P<", "(?<"), i):
            start = s.index("<", i) + 1
            k = s.index(">", start)
            name = s[start:k]
            # regex-syntax src/ast/parse.rs is_capture_char: '_' or alphabetic first, then also
            # digits, '.', '[' and ']'; RE2 also takes a leading digit
            if not (name[0] == "_" or name[0].isalpha()) or not all(ch in "_.[]" or ch.isalnum() for ch in name):
                raise _RustRefuses(f"invalid capture group name {name!r} for Rust regex; start it with a letter or '_'")
            if name in names:
                raise _RustRefuses(f"duplicate capture group name {name!r}; rename one")
            names.add(name)
            k += 1
        elif s.startswith("(?", i):
            k = s.index(":", i) + 1
        d, k = _rust_alternation(s, k, names)
        return 1 + d, k + 1
    if c == "[":
        return _rust_class(s, i)
    if c == "\\":
        return 0, _rust_escape(s, i, in_class=False)[0]
    if c == "{":
        raise _RustRefuses(_BRACE)
    return 0, i + 1


def _rust_escape(s: str, i: int, in_class: bool) -> tuple[int, bool]:
    """The escape at ``s[i] == '\\\\'``: (index after it, whether it is a class such as ``\\d``)."""
    c = s[i + 1]
    if c in "QE":
        raise _RustRefuses("\\Q...\\E quoting is RE2-only (Rust regex: unrecognized escape sequence); escape the "
                           "characters one by one")
    if c == "C":
        raise _RustRefuses("\\C (any byte) is RE2-only (Rust regex: unrecognized escape sequence); use .")
    if c in "01234567":
        raise _RustRefuses(f"\\{c} is an octal escape to RE2 and a back-reference to Rust regex (backreferences are "
                           f"not supported); write \\x{{..}}")
    if c in "<>":
        raise _RustRefuses(f"\\{c} is {c!r} to RE2 but " + ("invalid in a class (invalid escape sequence found in "
                           "character class)" if in_class else "a word boundary") + f" to Rust regex; write {c}")
    if c == "b" and not in_class and s.startswith("{", i + 2):
        raise _RustRefuses("\\b{ is \\b then '{' to RE2 but a special word boundary (\\b{start}, ...) to Rust regex; "
                           "write \\b\\{")
    if c in "pP":
        if s[i + 2] != "{":
            return i + 3, True
        end = s.index("}", i + 2)
        name = s[i + 3:end]
        if name.startswith("^"):
            raise _RustRefuses(f"\\{c}{{^...}} negation is RE2-only (Rust regex: Unicode property not found); write "
                               f"\\{'P' if c == 'p' else 'p'}{{{name[1:]}}}")
        if name == "Cs":
            raise _RustRefuses("\\p{Cs} (surrogates) is RE2-only (Rust regex: Unicode property value not found); "
                               "no path or header holds one")
        return end + 1, True
    if c == "x":
        if s[i + 2] != "{":
            return i + 4, False
        end = s.index("}", i + 2)
        if 0xD800 <= int(s[i + 3:end], 16) <= 0xDFFF:
            raise _RustRefuses(f"\\x{{{s[i + 3:end]}}} is a surrogate, which RE2 takes and Rust regex refuses "
                               f"(hexadecimal literal is not a Unicode scalar value)")
        return end + 1, False
    return i + 2, c in "dDwWsS"


def _rust_class(s: str, i: int) -> tuple[int, int]:
    """The bracketed class at ``s[i] == '['``: (nesting depth in Rust regex's AST, index after it)."""
    j = i + 1 + (s[i + 1] == "^")
    items, first = 0, True
    while True:
        c = s[j]
        if c == "]" and not first:
            return 1 + (items > 1), j + 1
        if first and c == "]" and s[j + 1] == "-" and s[j + 2] != "]":
            raise _RustRefuses("']-' opening a class starts a range at ']' in RE2 but is ']' then a range from '-' "
                               "in Rust regex; write \\]-")
        first = False
        items += 1
        if c == "[":
            m = _POSIX_AT.match(s, j)
            if m is None or m.group(1) not in _POSIX_CLASSES:
                raise _RustRefuses("'[' in a class is a literal to RE2 but opens a nested class in Rust regex; write \\[")
            j = m.end()
            continue
        if c in "&-~" and s[j + 1] == c:
            raise _RustRefuses(f"{c}{c} in a class is literal text to RE2 but a set operation in Rust regex; write "
                               f"\\{c}{c}")
        if c == "\\":
            j, is_class = _rust_escape(s, j, in_class=True)
            if is_class:
                if s[j] == "-" and s[j + 1] not in "]-":
                    raise _RustRefuses("a range may not start at a class such as \\d in Rust regex (invalid range); "
                                       "write the '-' as \\-")
                continue
        else:
            j += 1
        if s[j] == "-" and s[j + 1] == "-":
            raise _RustRefuses("-- in a class ends a range at '-' in RE2 but is a set operation in Rust regex; "
                               "write \\-")
        if s[j] == "-" and s[j + 1] != "]":
            j = _rust_escape(s, j + 1, in_class=True)[0] if s[j + 1] == "\\" else j + 2


def regex_problem(regex: str, field: str = "pathRegex", backend: str | None = None) -> str | None:
    """Why ``regex`` cannot be an SMI ``pathRegex`` (``field``) or header regex (``field="header"``)
    for ``backend`` (``istio``, ``linkerd``, ``osm``; None: the engines of every mesh), or None.
    (An empty pathRegex never gets here: :func:`empty_as_absent`.)

    - RE2 must compile it: OSM's Envoy matches it as ``safe_regex`` (RE2), Istio takes only the
      exact/prefix/suffix shapes RE2 reads (``istio_policy.istio_match``), and what RE2 refuses
      (look-around, back-references) Rust regex refuses too;
    - for Linkerd, the ``RegularExpression`` value it is sent
      (:func:`mesh_components.meshes.linkerd_policy.rendered_regex`) must read alike in Rust regex
      (:func:`rust_regex_problem`).
    The message names the engine and quotes its own words.
    """
    from .yaml_source import shown

    why = re2_error(regex)
    if why is not None:
        return (f"{shown(regex)} is not an RE2 regex: RE2 (the engine of Envoy's safe_regex, which OSM uses) says "
                f"\"{why}\"; rewrite it in RE2 syntax (no look-around or back-references; "
                f"https://github.com/google/re2/wiki/Syntax)")
    if backend in (None, "linkerd"):
        from ..meshes.linkerd_policy import rendered_regex

        sent = rendered_regex(regex, header=field != "pathRegex")
        why = rust_regex_problem(sent) if sent is not None else None
        if why is not None:
            return (f"{shown(regex)} does not read alike in Rust regex 1.13, the engine of Linkerd's policy controller "
                    f"and proxy: {why}")
    return None


def match_key(m: HTTPMatch) -> tuple:
    """What makes two matches the same route: methods, path regex and headers (not the name)."""
    return (None if m.any_method else tuple(sorted(set(m.methods))), m.path_regex or ".*",
            tuple(sorted((n.lower(), v) for n, v in m.headers)))


# ---------------------------------------------------------------------------------------------
# reading files


MAX_SMI_FILES = 10_000
"""At most this many SMI files in all of ``mesh.smiFiles`` (each at most
``yaml_source.MAX_FILE_BYTES``): work stays bounded when a folder names far more than policy."""


def _yaml_files_under(folder: Path, budget: int) -> list[Path] | None:
    """The ``*.yaml``/``*.yml`` files under ``folder``, recursively, in name order, leaving out hidden
    files and folders (``.git``, ``.venv``: never SMI policy); None when there are more than ``budget``."""
    found: list[Path] = []
    stack = [folder]
    while stack:
        here = stack.pop()
        for entry in sorted(here.iterdir(), reverse=True):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                stack.append(entry)
            elif entry.suffix in (".yaml", ".yml") and entry.is_file():
                found.append(entry)
                if len(found) > budget:
                    return None
    return sorted(found)


def read_files(paths: Iterable[str], base_dir: Path) -> tuple[list, list[Problem]]:
    """Read every SMI document in ``paths`` (files or folders, relative to ``base_dir``; folders
    are read recursively, ``*.yaml``/``*.yml`` in name order, hidden files and folders left out).
    Returns ``(documents, problems)``; an empty path (which would name the whole project) and more
    than :data:`MAX_SMI_FILES` files in all are problems."""
    from . import load_yaml_documents
    from .errors import SpecError
    from .yaml_source import shown as shown_value

    docs: list = []
    problems: list[Problem] = []
    budget = MAX_SMI_FILES
    for i, raw in enumerate(paths):
        if not str(raw).strip():
            problems.append((f"mesh.smiFiles[{i}]", "an empty path would read the whole project folder: name the "
                                                    "file or folder that holds the SMI documents (e.g. policies/smi)"))
            continue
        try:  # a NUL byte (ValueError) or an over-long name (ENAMETOOLONG) is bad input, not a crash
            path = (base_dir / raw) if not Path(raw).is_absolute() else Path(raw)
            if path.is_dir():
                files = _yaml_files_under(path, budget)
                if files is None:
                    problems.append((f"mesh.smiFiles[{i}]",
                                     f"{shown_value(raw)} holds more than {MAX_SMI_FILES:,} YAML files in all with the "
                                     f"entries before it: name the folder that holds the SMI documents, not a "
                                     f"folder above it"))
                    break
                budget -= len(files)
            elif path.is_file():
                files = [path]
                budget -= 1
                if budget < 0:
                    problems.append((f"mesh.smiFiles[{i}]", f"more than {MAX_SMI_FILES:,} SMI files in all: "
                                                            f"gather them into folders of fewer files"))
                    break
            else:
                problems.append((f"mesh.smiFiles[{i}]",
                                 f"{shown_value(raw)} is neither a file nor a folder under {base_dir}"))
                continue
        except (OSError, ValueError) as e:
            why = getattr(e, "strerror", None) or ("the name holds a NUL byte" if isinstance(e, ValueError) else e)
            problems.append((f"mesh.smiFiles[{i}]", f"{shown_value(raw)} cannot be read: {why}"))
            continue
        for f in files:
            shown = _shown(f, base_dir)
            try:
                raw_docs = load_yaml_documents(f, shown)
            except SpecError as e:
                problems += e.problems
                continue
            for j, d in enumerate(_flatten(raw_docs)):
                got, probs = parse_document(d, f"{shown}[{j}]")
                problems += probs
                if got is not None:
                    docs.append(got)
    return docs, problems


def placed_in_files(problems: list[Problem], base_dir: Path) -> list[Problem]:
    """``problems`` with each path into an SMI file (``file[j]...`` or ``file#Kind/ns/name...``, as
    :func:`read_files` and :func:`check_documents` write them, ``file`` relative to ``base_dir``)
    prefixed by its place there, ``file:line:column: path``. The files are composed again, only
    here, when there are problems; paths into no readable file are unchanged."""
    try:
        return _placed_in_files(problems, base_dir)
    except Exception:  # noqa: BLE001 - placing is best effort: the problems stand without it
        return problems


def _placed_in_files(problems: list[Problem], base_dir: Path) -> list[Problem]:
    from .yaml_source import compose_documents, with_position

    files: dict[str, list] = {}
    out: list[Problem] = []
    for path, message in problems:
        placed = None
        for cut in (i for i, ch in enumerate(path) if ch in "[#"):
            name = path[:cut]
            f = Path(name) if Path(name).is_absolute() else base_dir / name
            try:
                if name not in files and not f.is_file():
                    continue
            except (OSError, ValueError):
                continue
            if name not in files:
                files[name] = _document_nodes(compose_documents(f))
            placed = _place(path, name, files[name])
            break
        out.append((with_position(name, placed, path), message) if placed is not None else (path, message))
    return out


def _document_nodes(nodes: list) -> list:
    """The composed documents as :func:`_flatten` counts them (``kind: List`` items in its place)."""
    from .yaml_source import lookup
    from yaml.nodes import SequenceNode

    out = []
    for node in nodes:
        kind, items = lookup(node, "kind"), lookup(node, "items")
        if kind is not None and kind.value == "List" and isinstance(items, SequenceNode):
            out += items.value
        else:
            out.append(node)
    return out


def _place(path: str, name: str, docs: list):
    """The node ``path`` names in ``docs`` (the documents of file ``name``), or None."""
    from .yaml_source import lookup, node_at, split_path

    rest = path[len(name):]
    if rest.startswith("["):
        index, _, rest = rest[1:].partition("]")
        if not index.isdigit() or int(index) >= len(docs):
            return None
        return node_at(docs[int(index)], split_path("x" + rest)[1])
    best = None
    for doc in docs:  # an origin, file#Kind/namespace/name: the document parse_document named so
        meta = lookup(doc, "metadata")
        values = [getattr(lookup(doc, "kind"), "value", "?"), getattr(lookup(meta, "namespace"), "value", "default"),
                  getattr(lookup(meta, "name"), "value", "?")]
        for origin in {"#{}/{}/{}".format(*values), "#{}/?/{}".format(values[0], values[2]),
                       "#{}/{}/?".format(*values[:2]), "#{}/?/?".format(values[0])}:
            if rest.startswith(origin) and rest[len(origin):len(origin) + 1] in ("", ".", "[") \
                    and (best is None or len(origin) > best[0]):
                best = (len(origin), doc, rest[len(origin):])
    return node_at(best[1], split_path("x" + best[2])[1]) if best else None


def _shown(f: Path, base: Path) -> str:
    try:
        return str(f.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(f)


def _flatten(docs: list) -> list:
    out = []
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "List" and isinstance(d.get("items"), list):
            out += d["items"]
        else:
            out.append(d)
    return out


def parse_document(doc: Any, where: str):
    """One SMI document -> ``(model or None, problems)``. ``where`` names it in problems."""
    if not isinstance(doc, dict):
        return None, [(where, "expected a Kubernetes object (a mapping with apiVersion and kind)")]
    api, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
    group, _, version = api.rpartition("/")
    known = READ_VERSIONS.get((kind, group))
    if known is None:
        return None, [(where, f"{api or '?'} {kind or '?'} is not an SMI kind this reads "
                              f"(TrafficTarget, HTTPRouteGroup, TCPRoute, TrafficSplit)")]
    if version not in known:
        return None, [(where, f"{kind} version {version!r} is not known; use {group}/{max(known)}")]
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    name, namespace = meta.get("name"), meta.get("namespace", "default")
    problems: list[Problem] = []
    if not isinstance(name, str) or dns1123_subdomain_problem(name):
        problems.append((f"{where}.metadata.name", "missing or not a DNS-1123 name"))
        name = "?"
    if not isinstance(namespace, str) or dns1123_label_problem(namespace):
        problems.append((f"{where}.metadata.namespace", f"{namespace!r} is not a DNS-1123 label"))
        namespace = "?"
    origin = f"{where.rsplit('[', 1)[0]}#{kind}/{namespace}/{name}"
    body = _body(doc, kind, version)
    if not isinstance(body, dict):
        return None, problems + [(f"{origin}.spec", "missing or not a mapping")]
    if body is doc and "spec" in doc:
        # a later version's shape under an older apiVersion: the API server prunes spec (the
        # v1alpha1/v1alpha2 schemas have none), so what it holds would silently not apply
        return None, problems + [(f"{origin}.spec", f"{group}/{version} {kind} has no spec: its fields sit at the "
                                                    f"top level (spec arrived in v1alpha3); move them up, or use "
                                                    f"{group}/{max(known)}")]
    parser = {"TrafficTarget": _target, "HTTPRouteGroup": _route_group, "TCPRoute": _tcp_route,
              "TrafficSplit": _split}[kind]
    model, probs = parser(body, name, namespace, origin, version)
    problems += probs
    if kind == "HTTPRouteGroup" and model is not None:
        model, probs = _approximations(model, meta.get("annotations"), origin)
        problems += probs
    return (model if not problems else None), problems


TOP_LEVEL_VERSIONS = {
    "TrafficTarget": {"v1alpha1"},
    "HTTPRouteGroup": {"v1alpha1", "v1alpha2"},
    "TCPRoute": {"v1alpha1", "v1alpha2"},
}
"""The SMI versions whose Go types keep their fields at the top level, with no ``spec``
(servicemeshinterface/smi-sdk-go v0.5.0: pkg/apis/access/v1alpha1/traffic_target.go:11-24;
pkg/apis/specs/v1alpha1 and v1alpha2/http_route.go:13-23 ``Matches`` beside ``ObjectMeta``,
tcp_route.go ``TCPRoute`` with no fields at all; ``Spec`` arrives in v1alpha3). The v1alpha1/v1alpha2
HTTPRouteGroup CRD schema agrees (smi-sdk-go crds/httproutegroup.yaml: top-level ``matches``)."""


def _body(doc: dict, kind: str, version: str):
    """The mapping holding ``doc``'s fields: the document itself for :data:`TOP_LEVEL_VERSIONS`,
    else its ``spec``. A TCPRoute's spec may be absent (smi-sdk-go v0.5.0 specs/v1alpha3 and
    v1alpha4/tcp_route.go:20 ``Spec TCPRouteSpec `json:"spec,omitempty"```): then it is empty, a
    route of every port; None when the fields are missing or not a mapping."""
    if version in TOP_LEVEL_VERSIONS.get(kind, ()):
        return doc
    if kind == "TCPRoute" and doc.get("spec") is None:
        return {}
    return doc.get("spec")


APPROXIMATE_ANNOTATION = "mesh-components.io/approximate"
"""HTTPRouteGroup annotation accepting named approximations: ``"<match>=prefix[,<match>=prefix]"``."""


def _approximations(group: "HTTPRouteGroup", annotations: Any, origin: str):
    raw = (annotations or {}).get(APPROXIMATE_ANNOTATION) if isinstance(annotations, dict) else None
    if raw is None:
        return group, []
    where = f"{origin}.metadata.annotations[{APPROXIMATE_ANNOTATION}]"
    wanted: dict[str, str] = {}
    for item in str(raw).split(","):
        name, _, value = item.strip().partition("=")
        if value != "prefix":
            return group, [(where, f"{item.strip()!r}: write <match>=prefix (the only named approximation)")]
        wanted[name] = value
    names = {m.name for m in group.matches}
    unknown = sorted(set(wanted) - names)
    if unknown:
        return group, [(where, f"names match {unknown[0]!r}, which the group does not have ({', '.join(sorted(names))})")]
    matches = tuple(replace(m, approximate=wanted.get(m.name)) for m in group.matches)
    return replace(group, matches=matches), []


def _list(value: Any, path: str, problems: list[Problem], required: bool = False) -> list:
    if value is None:
        if required:
            problems.append((path, "required; give a list"))
        return []
    if not isinstance(value, list):
        problems.append((path, f"expected a list"))
        return []
    return value


def _subject(value: Any, path: str, problems: list[Problem], target_ns: str) -> tuple[str, str] | None:
    """A TrafficTarget destination or source: ``(namespace, service account)``, or None with a problem.

    ``kind`` is required (the access.smi-spec.io CRD, ../shared/crds/smi/access.yaml, lists
    ``required: [name, kind]`` for destination and sources) and must be ServiceAccount. ``namespace``
    is required too, though the CRD leaves it optional: OSM v1.2.4, the one mesh that reads
    TrafficTargets itself, takes it verbatim (pkg/smi/client.go ``isValidTrafficTarget`` ignores a
    target whose ``destination.namespace`` is not its own namespace, so an absent one drops the
    target; ``ListServiceAccounts`` builds ``K8sServiceAccount{Namespace: sources.Namespace}``, so an
    absent one names no service account), while reading it as the TrafficTarget's namespace would
    admit a service account there: refused, never guessed. ``target_ns`` only words the fix."""
    if not isinstance(value, dict):
        problems.append((path, "expected {kind: ServiceAccount, name, namespace}"))
        return None
    if value.get("kind") != "ServiceAccount":
        problems.append((f"{path}.kind", f"{value.get('kind')!r}: SMI identities are ServiceAccounts"
                         + ("; write kind: ServiceAccount" if value.get("kind") is None else "")))
        return None
    name, ns = value.get("name"), value.get("namespace")
    if not isinstance(name, str) or dns1123_subdomain_problem(name):
        problems.append((f"{path}.name", "missing or not a service account name"))
        return None
    if ns is None:
        problems.append((f"{path}.namespace", f"missing: write the service account's namespace (e.g. {target_ns!r}, "
                                              f"the TrafficTarget's); OSM reads a subject without one as no "
                                              f"service account, so it is not guessed"))
        return None
    if not isinstance(ns, str) or dns1123_label_problem(ns):
        problems.append((f"{path}.namespace", f"{ns!r} is not a namespace name"))
        return None
    return ns, name


def _port(value: Any, path: str, problems: list[Problem]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value \
            or not 1 <= int(value) <= 65535:
        problems.append((path, f"{value!r} is not a port number: use 1-65535"))
        return None
    return int(value)


def _target(body: dict, name: str, ns: str, origin: str, version: str):
    problems: list[Problem] = []
    dest = _subject(body.get("destination"), f"{origin}.spec.destination", problems, ns)
    port = None
    raw_port = (body.get("destination") or {}).get("port") if isinstance(body.get("destination"), dict) else None
    if raw_port is not None and version not in PORT_VERSIONS[("TrafficTarget", "destination.port")]:
        # smi-sdk-go pkg/apis/access/v1alpha3/traffic_target.go: IdentityBindingSubject has no Port
        # (v1alpha1/v1alpha2 have it) and the v1alpha3 CRD schema (crds/access.yaml) neither, so the
        # API server prunes it and the mesh would admit every port: refuse instead of guessing
        problems.append((f"{origin}.spec.destination.port",
                         f"TrafficTarget {version} has no destination.port (only v1alpha1 and v1alpha2 do; the API "
                         f"server drops it, so the rule would cover every port): name the port with a "
                         f"specs.smi-spec.io/v1alpha4 TCPRoute's matches.ports, or use access.smi-spec.io/v1alpha2"))
    elif raw_port is not None:
        port = _port(raw_port, f"{origin}.spec.destination.port", problems)
    sources = []
    for i, s in enumerate(_list(body.get("sources"), f"{origin}.spec.sources", problems, required=True)):
        got = _subject(s, f"{origin}.spec.sources[{i}]", problems, ns)
        if got:
            sources.append(got)
    key = "specs" if version == "v1alpha1" else "rules"
    rules = []
    for i, r in enumerate(_list(body.get(key), f"{origin}.spec.{key}", problems, required=True)):
        path = f"{origin}.spec.{key}[{i}]"
        if not isinstance(r, dict) or r.get("kind") not in ("HTTPRouteGroup", "TCPRoute") \
                or not isinstance(r.get("name"), str):
            problems.append((path, "expected {kind: HTTPRouteGroup|TCPRoute, name, matches?}"))
            continue
        matches = _list(r.get("matches"), f"{path}.matches", problems)
        if not all(isinstance(m, str) for m in matches):
            problems.append((f"{path}.matches", "expected a list of match names"))
            continue
        rules.append(RuleRef(r["kind"], r["name"], tuple(matches)))
    if dest is None:
        return None, problems
    return TrafficTarget(name, ns, dest, tuple(sources), tuple(rules), origin, port), problems


def _route_group(body: dict, name: str, ns: str, origin: str, version: str):
    problems: list[Problem] = []
    matches = []
    for i, m in enumerate(_list(body.get("matches"), f"{origin}.spec.matches", problems, required=True)):
        path = f"{origin}.spec.matches[{i}]"
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            problems.append((path, "expected {name, methods?, pathRegex?, headers?}"))
            continue
        methods = _list(m.get("methods"), f"{path}.methods", problems) or ["*"]
        for k, x in enumerate(methods):
            why = method_problem(x)
            if why:
                problems.append((f"{path}.methods[{k}]", why))
        path_regex = empty_as_absent(m.get("pathRegex"))
        if path_regex is not None and not isinstance(path_regex, str):
            problems.append((f"{path}.pathRegex", "expected a string"))
            path_regex = None
        headers: list[tuple[str, str]] = []
        raw_headers = m.get("headers")
        for h in ([raw_headers] if isinstance(raw_headers, dict) else _list(raw_headers, f"{path}.headers", problems)):
            if not isinstance(h, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in h.items()):
                problems.append((f"{path}.headers", "expected header: value-regex mappings"))
                continue
            headers += sorted(h.items())
        for header, _ in headers:  # not `name`: that is the group's
            why = header_name_problem(header)
            if why:
                problems.append((f"{path}.headers[{header}]", why))
        why = repeated_header_problem(n for n, _ in headers)
        if why:
            problems.append((f"{path}.headers", why))
        matches.append(HTTPMatch(m["name"], tuple(methods), path_regex, tuple(headers)))
    return HTTPRouteGroup(name, ns, tuple(matches), origin), problems


def _tcp_route(body: dict, name: str, ns: str, origin: str, version: str):
    problems: list[Problem] = []
    matches = body.get("matches") or {}
    ports = []
    if not isinstance(matches, dict):
        problems.append((f"{origin}.spec.matches", "expected {ports: [...]}"))
    elif matches and version not in PORT_VERSIONS[("TCPRoute", "matches.ports")]:
        # smi-sdk-go pkg/apis/specs/v1alpha1..v1alpha3/tcp_route.go: no matches (v1alpha3's spec is
        # empty); matches.ports arrived in v1alpha4. Pruned by the API server, the route would
        # admit every port: refuse
        problems.append((f"{origin}.spec.matches",
                         f"TCPRoute {version} has no matches.ports (added in v1alpha4; the API server drops it, so "
                         f"the route would admit every port): use specs.smi-spec.io/v1alpha4"))
    else:
        for i, p in enumerate(_list(matches.get("ports"), f"{origin}.spec.matches.ports", problems)):
            got = _port(p, f"{origin}.spec.matches.ports[{i}]", problems)
            if got:
                ports.append(got)
    return TCPRoute(name, ns, tuple(ports), origin), problems


_QUANTITY = re.compile(r"([+-]?)(\d+\.?\d*|\.\d+)(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?")
_QUANTITY_SUFFIX = {"n": (10, -9), "u": (10, -6), "m": (10, -3), "k": (10, 3), "M": (10, 6), "G": (10, 9),
                    "T": (10, 12), "P": (10, 15), "E": (10, 18), "Ki": (2, 10), "Mi": (2, 20), "Gi": (2, 30),
                    "Ti": (2, 40), "Pi": (2, 50), "Ei": (2, 60)}


def parse_quantity(value: Any):
    """A Kubernetes resource quantity (``"500m"``, ``"1"``, ``1``, ``"1.5"``, ``"2k"``, ``"1e3"``,
    ``"1Ki"``) as an exact :class:`fractions.Fraction`, or None when it is not one.

    Grammar of k8s.io/apimachinery pkg/api/resource/quantity.go (``<signedNumber><suffix>``, suffix
    binary SI ``Ki..Ei``, decimal SI ``n u m "" k M G T P E`` or a decimal exponent ``e<n>``). A
    YAML number is read from its decimal text, as the API server reads an unquoted JSON number.
    """
    from fractions import Fraction

    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = value if isinstance(value, str) else repr(value)
    got = _QUANTITY.fullmatch(text.strip()) if isinstance(value, str) else _QUANTITY.fullmatch(text)
    if got is None:
        return None
    sign, number, exponent, suffix = got.groups()
    q = Fraction(number if not number.endswith(".") else number[:-1])
    if exponent:
        q *= Fraction(10) ** int(exponent[1:])
    elif suffix:
        base, power = _QUANTITY_SUFFIX[suffix]
        q *= Fraction(base) ** power
    return -q if sign == "-" else q


def _weight(value: Any, path: str, problems: list[Problem], version: str = "v1alpha4"):
    """One backend weight: v1alpha1 a resource quantity (smi-spec apis/traffic-split/v1alpha1:
    "Identical to resources, 1 = 1000m"; smi-sdk-go split/v1alpha1 ``Weight *resource.Quantity``)
    as an exact Fraction; later versions an ``int`` (smi-sdk-go split/v1alpha2-4 ``Weight int``,
    the CRD's ``type: number``, so a quoted "500m" is rejected by the API server)."""
    from fractions import Fraction

    if version == "v1alpha1":
        q = parse_quantity(value)
        if q is None or q < 0:
            problems.append((path, f"{value!r} is not a non-negative resource quantity (e.g. 1, 500m, 1.5)"))
            return None
        if (q * 10 ** 9).denominator != 1:
            # apimachinery keeps nano precision and rounds finer values up: not what was written
            problems.append((path, f"{value!r} is finer than 1n, which a Kubernetes quantity rounds up; "
                                   f"scale every weight of the split up"))
            return None
        return q
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or int(value) != value:
        problems.append((path, f"{value!r} is not a weight: split.smi-spec.io/{version} weights are non-negative "
                               f"integers (quantities such as '500m' are v1alpha1 only)"))
        return None
    return Fraction(int(value))


def normalise_weights(weights: list) -> tuple[list[int], str | None]:
    """Exact integer weights in the same proportions as ``weights`` (Fractions or ints), and a
    problem or None. Fractions are scaled by the least common multiple of their denominators;
    integers are kept as written unless one exceeds :data:`SPLIT_WEIGHT_MAX`, when all are divided
    by their greatest common divisor. Still above it: the proportion cannot be written exactly."""
    import math
    from fractions import Fraction

    fracs = [Fraction(w) for w in weights]
    scale = math.lcm(*(f.denominator for f in fracs)) if fracs else 1
    ints = [int(f * scale) for f in fracs]
    divisor = math.gcd(*ints) if any(ints) else 1
    if scale != 1 or max(ints, default=0) > SPLIT_WEIGHT_MAX:
        ints = [i // divisor for i in ints]
    if max(ints, default=0) > SPLIT_WEIGHT_MAX:
        return ints, (f"in lowest terms the weights are {ints}; the largest is above {SPLIT_WEIGHT_MAX}, the most a "
                      f"Gateway API backendRef weight may be: choose weights with that precision")
    return ints, None


def _split(body: dict, name: str, ns: str, origin: str, version: str):
    problems: list[Problem] = []
    # every version keeps its fields under spec (smi-sdk-go v0.5.0 pkg/apis/split/v1alpha1..v1alpha4/
    # traffic_split.go ``Spec TrafficSplitSpec `json:"spec"```): a spec nested in spec is pruned
    spec = body
    service = _split_root(spec.get("service"), ns, f"{origin}.spec.service", problems)
    backends = []
    for i, b in enumerate(_list(spec.get("backends"), f"{origin}.spec.backends", problems, required=True)):
        path = f"{origin}.spec.backends[{i}]"
        if not isinstance(b, dict) or not isinstance(b.get("service"), str):
            problems.append((path, "expected {service, weight}"))
            continue
        w = _weight(b.get("weight"), f"{path}.weight", problems, version)
        if w is not None:
            backends.append((b["service"], w))
    if backends and sum(w for _, w in backends) == 0:
        problems.append((f"{origin}.spec.backends", "every weight is 0; give one backend a positive weight"))
    elif backends:
        weights, problem = normalise_weights([w for _, w in backends])
        if problem:
            problems.append((f"{origin}.spec.backends", problem))
        backends = [(b, w) for (b, _), w in zip(backends, weights)]
    matches = [m.get("name") for m in _list(spec.get("matches"), f"{origin}.spec.matches", problems)
               if isinstance(m, dict)]
    return TrafficSplit(name, ns, service, tuple(backends), origin, tuple(matches)), problems


def _split_root(value: Any, ns: str, path: str, problems: list[Problem]) -> str:
    """The root service name of a TrafficSplit in namespace ``ns``: ``spec.service`` as a name or as
    the FQDN of a Service of ``ns`` (``web``, ``web.<ns>``, ``web.<ns>.svc``,
    ``web.<ns>.svc.cluster.local``); ``"?"`` with a problem otherwise.

    SMI: "The ``spec.service`` name is the FQDN that applications will use to communicate", and the
    backends are "Services inside the namespace" (smi-spec apis/traffic-split/v1alpha4/traffic-split.md:22-26,
    51-53; splitting across namespaces is an open question there, :349-353). A name whose second
    label is another namespace (``web.other``) names ``other/web``, but OSM v1.2.4 reads only the
    first label and applies the split to the Service of the split's own namespace
    (pkg/k8s/util.go:42-63 ``splitHostName``, pkg/smi/client.go:112-116 matches the apex by
    ``trafficSplit.Namespace``), and a two-label name may also be ``<pod>.<service>`` there
    (util.go:70-76): refused, never read as a service the document did not name."""
    if not isinstance(value, str) or not value:
        problems.append((path, "missing or not a service name"))
        return "?"
    labels = value.split(".")
    if dns1123_label_problem(labels[0]):
        problems.append((path, f"{value!r} is not a service name"))
        return "?"
    from ..core.multicluster import CLUSTER_DOMAIN

    if len(labels) > 1 and ".".join(labels[1:]) not in (ns, f"{ns}.svc", f"{ns}.svc.{CLUSTER_DOMAIN}"):
        problems.append((path, f"{value!r} does not name a Service of the split's namespace {ns!r} (a TrafficSplit "
                               f"splits a root service of its own namespace, and meshes would apply it to {ns}/"
                               f"{labels[0]}, not to what the name says): write {labels[0]!r} to split {ns}/"
                               f"{labels[0]}, or put the TrafficSplit in the root service's namespace"))
        return "?"
    return labels[0]


# ---------------------------------------------------------------------------------------------
# the spec's own policies, as SMI


def from_spec(spec) -> list:
    """The stack spec's ``accessRules`` and ``trafficSplits`` as SMI documents (routes inline
    become an HTTPRouteGroup / TCPRoute named after the rule)."""
    docs: list = []
    for i, r in enumerate(spec.access_rules):
        origin = f"mesh.accessRules[{i}]"
        rules = []
        if r.http:
            matches = tuple(HTTPMatch(m.name or f"match-{j}", tuple(m.methods), empty_as_absent(m.path_regex),
                                      tuple(sorted(m.headers.items())), m.approximate)
                            for j, m in enumerate(r.http))
            docs.append(HTTPRouteGroup(r.name, r.namespace, matches, f"{origin}.http"))
            rules.append(RuleRef("HTTPRouteGroup", r.name))
        if r.tcp is not None:
            docs.append(TCPRoute(r.name, r.namespace, tuple(r.tcp.ports), f"{origin}.tcp"))
            rules.append(RuleRef("TCPRoute", r.name))
        sources = tuple((s.namespace or r.namespace, s.service_account) for s in r.sources)
        docs.append(TrafficTarget(r.name, r.namespace, (r.namespace, r.destination.service_account), sources,
                                  tuple(rules), origin, r.destination.port))
    for i, t in enumerate(spec.traffic_splits):
        docs.append(TrafficSplit(t.name, t.namespace, t.service,
                                 tuple((b.service, b.weight) for b in t.backends), f"mesh.trafficSplits[{i}]"))
    return docs


def policy_set(spec, file_documents: Iterable) -> PolicySet:
    """Spec policies plus file documents, sorted by (namespace, name) for deterministic output."""
    docs = from_spec(spec) + list(file_documents)
    key = lambda d: (d.namespace, d.name, d.origin)  # noqa: E731
    return PolicySet(
        targets=tuple(sorted((d for d in docs if isinstance(d, TrafficTarget)), key=key)),
        route_groups=tuple(sorted((d for d in docs if isinstance(d, HTTPRouteGroup)), key=key)),
        tcp_routes=tuple(sorted((d for d in docs if isinstance(d, TCPRoute)), key=key)),
        splits=tuple(sorted((d for d in docs if isinstance(d, TrafficSplit)), key=key)),
    )


def check_documents(spec, file_documents: Iterable) -> list[Problem]:
    """Reference problems across spec and files: duplicate names, rules naming a missing
    HTTPRouteGroup/TCPRoute or match (naming both documents), identities and services that no
    spec service has, split backends that do not exist; regexes the backend's engines cannot take
    (:func:`regex_problem`) and TrafficTargets outside their destination's namespace."""
    problems: list[Problem] = []
    docs = from_spec(spec) + list(file_documents)
    seen: dict[tuple, str] = {}
    for d in docs:
        key = (type(d).__name__, d.namespace, d.name)
        if key in seen and not d.origin.startswith("mesh."):
            problems.append((d.origin, f"{key[0]} {d.namespace}/{d.name} is also defined by {seen[key]}; rename one"))
        seen.setdefault(key, d.origin)
    for g in (d for d in docs if isinstance(d, HTTPRouteGroup)):
        base = g.origin if g.origin.startswith("mesh.") else f"{g.origin}.spec.matches"
        for j, m in enumerate(g.matches):
            why = None if m.path_regex is None else regex_problem(m.path_regex, backend=spec.backend.type)
            if why:
                problems.append((f"{base}[{j}].pathRegex", why))
            for header, value in m.headers:
                why = regex_problem(value, "header", spec.backend.type)
                if why:
                    problems.append((f"{base}[{j}].headers[{header}]", why))
    ps = policy_set(spec, file_documents)
    accounts = {(s.namespace, s.account) for s in spec.services}
    # sources only: a meshed workload the stack does not declare, e.g. an ingress gateway the user runs
    ingress = {(i.namespace, i.service_account) for i in spec.ingress_identities}
    from . import external_accounts  # spec/__init__ imports this module: import at call time
    external = external_accounts(spec)  # a VM's account is a source like a pod's (mesh.externalWorkloads)
    services = {(s.namespace, s.name) for s in spec.services}
    backends = services | {(s.namespace, f"{s.name}-{v.name}") for s in spec.services for v in s.versions}
    for t in ps.targets:
        if t.origin.startswith("mesh."):
            continue  # the spec's own rules were checked by spec.check_references
        if t.destination[0] != t.namespace:
            # the destination's owner grants access, not a client in its own namespace: OSM's webhook
            # rejects it (openservicemesh/osm v1.2.4 pkg/validator/validators.go trafficTargetValidator,
            # pkg/smi/client.go isValidTrafficTarget) and SMI forbids it (smi-spec
            # apis/traffic-access/v1alpha4/traffic-access.md, Tradeoffs: "The client should *not* be
            # allowed to give itself access to server applications")
            problems.append((f"{t.origin}.spec.destination.namespace",
                             f"{t.destination[0]!r} is not the TrafficTarget's namespace {t.namespace!r}: a "
                             f"TrafficTarget must live in its destination's namespace; move it to namespace "
                             f"{t.destination[0]!r}"))
            continue
        if t.destination not in accounts:
            problems.append((f"{t.origin}.spec.destination", f"no service in mesh.services runs as service account "
                                                             f"{t.destination[0]}/{t.destination[1]}; declare it or "
                                                             f"fix the name"))
        for i, s in enumerate(t.sources):
            if s not in accounts and s not in ingress and s not in external:
                problems.append((f"{t.origin}.spec.sources[{i}]", f"no service in mesh.services runs as service "
                                                                  f"account {s[0]}/{s[1]}; declare a service running as "
                                                                  f"it in mesh.services or, for a meshed workload the "
                                                                  f"mesh does not police (an ingress gateway you run), "
                                                                  f"list it in mesh.ingressIdentities"))
        for i, r in enumerate(t.rules):
            where = f"{t.origin}.spec.rules[{i}]"
            if r.kind == "HTTPRouteGroup":
                group = ps.route_group(t.namespace, r.name)
                if group is None:
                    problems.append((where, f"names HTTPRouteGroup {t.namespace}/{r.name}, which no document "
                                            f"defines; add it to the SMI files"))
                    continue
                names = {m.name for m in group.matches}
                for m in r.matches:
                    if m not in names:
                        problems.append((where, f"names match {m!r}, which HTTPRouteGroup {group.origin} does not "
                                                f"have (it has: {', '.join(sorted(names))})"))
            elif ps.tcp_route(t.namespace, r.name) is None:
                problems.append((where, f"names TCPRoute {t.namespace}/{r.name}, which no document defines"))
    for s in ps.splits:
        if s.origin.startswith("mesh."):
            continue
        if (s.namespace, s.service) not in services:
            problems.append((f"{s.origin}.spec.service", f"no service {s.namespace}/{s.service} in mesh.services"))
        for i, (b, _) in enumerate(s.backends):
            if (s.namespace, b) not in backends:
                problems.append((f"{s.origin}.spec.backends[{i}].service",
                                 f"no service or version backend {s.namespace}/{b}; name a service or "
                                 f"'<service>-<version>'"))
        if s.matches:
            problems.append((f"{s.origin}.spec.matches", "TrafficSplit matches are not translated yet; "
                                                         "split the whole service (drop matches)"))
    problems += _one_split_per_root(ps.splits)
    return problems


def _one_split_per_root(splits: Iterable[TrafficSplit]) -> list[Problem]:
    """Two splits of one root service, spec and files together, are refused naming both: OSM
    v1.2.4 picks one arbitrarily (pkg/catalog/outbound_traffic_policies.go: "Found more than 1 SMI
    TrafficSplit ... Picking the first one!"), linkerd-smi v0.2.7 writes both into the one
    ServiceProfile's dstOverrides (pkg/adaptor/controller.go, last writer wins), and two GAMMA
    HTTPRoutes on one Service port are a Gateway API conflict decided by creation time."""
    first: dict[tuple[str, str], TrafficSplit] = {}
    problems: list[Problem] = []
    for s in splits:
        seen = first.setdefault((s.namespace, s.service), s)
        if seen is not s:
            problems.append((f"{s.origin}.service" if s.origin.startswith("mesh.") else f"{s.origin}.spec.service",
                             f"service {s.namespace}/{s.service} is already split by {seen.origin}; a service takes "
                             f"one TrafficSplit (meshes would pick one of them): merge their backends into one"))
    return problems
