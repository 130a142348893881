"""Independent evaluators of access policy: SMI (the reference), Istio, Linkerd and OSM.

Each evaluator answers one question -- *would this mesh let this request through?* -- from the
plain Kubernetes objects (dicts) rendered for it, following the mesh's documented semantics and,
where the documentation is silent, what its control plane and proxy do (source files cited by URL
in each docstring). They are written without reading this project's renderers, whose correctness
they judge, and copy no upstream code.

Anything an evaluator does not model raises :class:`Unsupported`, so a test never passes because
a field was silently ignored. Regexes are evaluated with RE2 (PyPI ``google-re2``), the engine of
Envoy's ``safe_regex`` (OSM, Istio) and, for what both accept, the semantics of Linkerd's Rust
``regex`` (leftmost-first search, linear time); what RE2 cannot compile (look-around,
back-references) raises, and so do ``\\C``/``\\Q``/``\\E``, which Rust ``regex`` rejects. Requests
are ASCII, where RE2's ASCII and Rust's Unicode ``\\d``/``\\w``/``\\s`` agree.

Every rule says where it comes from: the upstream file at the pinned tag (Istio 1.30.3, Linkerd
edge-26.8.3, OSM v1.2.4, smi-spec main / smi-sdk-go v0.5.0), or the spec page it restates.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping


class Unsupported(ValueError):
    """An object, field or request the evaluators do not model."""


@dataclass(frozen=True)
class Request:
    source: tuple[str, str]          # calling workload identity: (namespace, service_account)
    namespace: str                   # destination namespace
    service: str                     # destination Service name
    service_account: str             # service account the destination pods run as
    pod_labels: tuple[tuple[str, str], ...]   # destination pod labels
    port: int                        # destination pod (target) port
    http: bool                       # True: an HTTP request; False: an opaque TCP connection
    method: str | None = None        # HTTP only
    path: str | None = None          # HTTP only
    headers: tuple[tuple[str, str], ...] = ()   # HTTP only, lower-case names
    service_port: int | None = None  # the Service port called (None: the same as ``port``); what an
    # Istio waypoint compares ``ports`` with (istio 1.30.3 pilot/pkg/networking/core/listener_waypoint.go:448-470)


# =============================================================================================
# shared helpers

_PATH_RE = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")
_METHOD_RE = re.compile(r"[A-Z]+")


def _check_request(req: Request) -> None:
    """Requests are normalized: an absolute path without query, fragment, percent-encoding,
    empty or dot segments, so every mesh sees the same path (Istio normalizes paths, see
    https://istio.io/latest/docs/reference/config/security/normalization/ ; the others match the
    raw path without its query)."""
    if not (isinstance(req.source, tuple) and len(req.source) == 2):
        raise Unsupported(f"source must be (namespace, service_account): {req.source!r}")
    if not isinstance(req.port, int) or not 1 <= req.port <= 65535:
        raise Unsupported(f"bad port {req.port!r}")
    if req.http:
        if not isinstance(req.method, str) or not _METHOD_RE.fullmatch(req.method):
            raise Unsupported(f"HTTP request needs an upper-case method: {req.method!r}")
        p = req.path
        if not isinstance(p, str) or not _PATH_RE.fullmatch(p) or "//" in p \
                or re.search(r"/\.\.?(/|$)", p):
            raise Unsupported(f"path must be a normalized absolute path without query: {p!r}")
        for name, value in req.headers:
            if name != name.lower() or not name or name.startswith(":"):
                raise Unsupported(f"header names must be lower-case, not pseudo: {name!r}")
            if any(ord(c) < 0x20 or ord(c) > 0x7e for c in value):
                raise Unsupported(f"control or non-ASCII character in header {name}")
    elif req.method is not None or req.path is not None or req.headers:
        raise Unsupported("an opaque connection has no method, path or headers")


def _header_values(req: Request, name: str) -> list[str]:
    name = name.lower()
    return [v for n, v in req.headers if n == name]


def _only(d: Any, allowed: Iterable[str], where: str) -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise Unsupported(f"{where}: expected a mapping, got {type(d).__name__}")
    extra = set(d) - set(allowed)
    if extra:
        raise Unsupported(f"{where}: unsupported field(s) {sorted(extra)}")
    return d


def _list(v: Any, where: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise Unsupported(f"{where}: expected a list")
    return v


def _meta(obj: dict) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    name, ns = md.get("name"), md.get("namespace")
    if not name or not ns:
        raise Unsupported(f"{obj.get('kind')}: metadata.name and metadata.namespace are required")
    return ns, name


def _where(obj: dict) -> str:
    md = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{md.get('namespace')}/{md.get('name')}"


_NOT_RUST = re.compile(r"\\[CQE]")    # RE2-only escapes (docs.rs/regex 1.13 "Syntax")


def _regex(pattern: Any, where: str):
    """RE2-compiled ``pattern`` (``fullmatch``/``search``); raises :class:`Unsupported` for what
    RE2 refuses (https://github.com/google/re2/wiki/Syntax) or Rust ``regex`` refuses."""
    import re2

    if not isinstance(pattern, str):
        raise Unsupported(f"{where}: regex must be a string")
    if _NOT_RUST.search(pattern.replace("\\\\", "")):
        raise Unsupported(f"{where}: \\C, \\Q and \\E are RE2-only (Rust regex rejects them): {pattern!r}")
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as e:
        raise Unsupported(f"{where}: RE2 cannot compile {pattern!r}: {e}") from None


def _port_number(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
        raise Unsupported(f"{where}: port must be a number 1-65535, got {v!r}")
    return v


# =============================================================================================
# SMI (the reference)

# v1alpha2 has the v1alpha3 shape plus destination.port (smi-sdk-go v0.5.0
# pkg/apis/access/v1alpha2/traffic_target.go IdentityBindingSubject.Port)
_SMI_TT_VERSIONS = {"access.smi-spec.io/v1alpha2", "access.smi-spec.io/v1alpha3"}
_SMI_SPEC_VERSIONS = {"specs.smi-spec.io/v1alpha4"}


def _smi_index(documents: Iterable[dict]) -> tuple[list[dict], dict, dict]:
    targets, groups, tcp = [], {}, {}
    for d in documents:
        kind, api = d.get("kind"), d.get("apiVersion")
        if kind == "TrafficTarget":
            if api not in _SMI_TT_VERSIONS:
                raise Unsupported(f"{_where(d)}: apiVersion {api}")
            targets.append(d)
        elif kind in ("HTTPRouteGroup", "TCPRoute"):
            if api not in _SMI_SPEC_VERSIONS:
                raise Unsupported(f"{_where(d)}: apiVersion {api}")
            (groups if kind == "HTTPRouteGroup" else tcp)[_meta(d)] = d
        elif kind == "TrafficSplit":
            continue        # routing, not access
        else:
            raise Unsupported(f"{_where(d)}: not an SMI access document")
    return targets, groups, tcp


def _smi_subject(s: Any, where: str, *, port: bool = False) -> tuple[str, str, int | None]:
    s = _only(s, ("kind", "name", "namespace") + (("port",) if port else ()), where)
    if s.get("kind") != "ServiceAccount" or not s.get("name") or not s.get("namespace"):
        raise Unsupported(f"{where}: only kind ServiceAccount with name and namespace")
    p = s.get("port")
    return s["namespace"], s["name"], (_port_number(p, f"{where}.port") if p is not None else None)


def _headers_map(headers, where: str) -> dict:
    """SMI header matches as one name->regex map. The v1alpha4 CRDs (SMI SDK and OSM, in
    ../shared/crds) type them as a list of name->regex maps; older documents use one map."""
    if not headers:
        return {}
    if isinstance(headers, list) and all(isinstance(h, dict) for h in headers):
        return {k: v for h in headers for k, v in h.items()}
    if isinstance(headers, dict):
        return headers
    raise Unsupported(f"{where}.headers: expected a name->regex map or a list of them")


def _smi_http_match(m: dict, req: Request, where: str, *, joined_headers: bool) -> bool:
    """One HTTPRouteGroup match: method ``*``/exact (empty list = any), ``pathRegex`` and every
    header regex as full matches. ``joined_headers``: Envoy joins repeated headers with ``,``."""
    m = _only(m, ("name", "methods", "pathRegex", "headers"), where)
    methods = _list(m.get("methods"), f"{where}.methods")
    if methods and "*" not in methods and req.method not in methods:
        return False
    if m.get("pathRegex") not in (None, "") and not _regex(m["pathRegex"], where).fullmatch(req.path):
        return False
    headers = _headers_map(m.get("headers"), where)
    for name, rx in headers.items():
        if name.lower() == "host":
            raise Unsupported(f"{where}: host header matching is not modelled")
        values = _header_values(req, name)
        if joined_headers and values:
            values = [",".join(values)]
        if not any(_regex(rx, f"{where}.headers.{name}").fullmatch(v) for v in values):
            return False
    return True


def smi_allows(documents: Iterable[dict], req: Request, *,
               ports_of: Callable[[str, str], Iterable[int]] | None = None) -> bool:
    """SMI traffic access control: the reference semantics, read from the SMI spec and the one
    implementation that enforces TrafficTargets natively (OSM v1.2.4).

    Specs: https://github.com/servicemeshinterface/smi-spec/blob/main/apis/traffic-access/v1alpha2/traffic-access.md
    (TrafficTarget, ``destination.port``), .../apis/traffic-access/v1alpha3/traffic-access.md (v1alpha3:
    "all traffic is denied by default", ``matches`` omitted = all matches of the group, empty
    ``ports`` = all ports) and .../apis/traffic-specs/v1alpha4/traffic-specs.md.

    * A destination ``(namespace, service account)`` named by at least one TrafficTarget
      (access.smi-spec.io/v1alpha3) denies whatever no TrafficTarget allows; a destination named
      by none is unrestricted (allowed). Only ServiceAccount subjects are modelled.
    * A TrafficTarget outside its destination's namespace raises: SMI forbids a client granting
      itself access (v1alpha4/traffic-access.md, Tradeoffs) and OSM's webhook rejects it
      (osm v1.2.4 pkg/validator/validators.go ``trafficTargetValidator``).
    * A request is allowed iff some TrafficTarget whose destination is
      ``(req.namespace, req.service_account)`` lists ``req.source``, its ``destination.port`` (if
      set) equals ``req.port``, and its rules admit the request (below). Rules name routes in the
      TrafficTarget's namespace (a dangling name raises).
    * HTTPRouteGroup matches (specs v1alpha4): an HTTP request matches when one of the rule's named
      matches (``matches``; empty/omitted = all of the group's) does: ``methods`` contains ``*`` or
      the method (empty = any), ``pathRegex`` (omitted = any) *full*-matches the path (RE2; the spec
      says only "anchored to the beginning" -- this project, like Envoy's ``safe_regex``, anchors
      both ends) and every header regex full-matches a value of that header. They never match an
      opaque connection. ``pathRegex: ""`` is absent (any path): smi-sdk-go v0.5.0 types it
      ``omitempty`` (pkg/apis/specs/v1alpha4/http_route.go:40), and OSM v1.2.4 turns an empty path
      into ``.*`` (pkg/catalog/inbound_traffic_policies.go:250-253 ``getHTTPPathsPerRoute``).
    * TCPRoute ports (the union of the target's TCPRoutes; one with empty ``spec.matches.ports`` ->
      every port of the Service, ``ports_of(namespace, service)`` when given, otherwise any port).
      - A TrafficTarget with TCPRoutes only admits every connection, HTTP requests included, on
        those ports (traffic-access.md "Example implementation for L4").
      - With HTTPRouteGroup matches too, the TCPRoute ports **scope** the matches (AND): an HTTP
        request is admitted on a listed port iff it matches. The spec's "Example implementation for
        L7" lists TCPRoute ``api-service-port`` (8080) in both TrafficTargets and allows prometheus
        GET /metrics only, not the whole port; OSM enforces it so (pkg/envoy/lds/inmesh.go puts the
        L4 RBAC of TCPRoute ports before the HTTP routes). An opaque connection to a listed port of
        such a target raises: SMI does not say whether it is admitted (OSM: yes, at L4).
    """
    _check_request(req)
    targets, groups, tcp = _smi_index(documents)
    restricted = False
    for tt in targets:
        w = _where(tt)
        tt_ns, _ = _meta(tt)
        spec = _only(tt.get("spec"), ("destination", "sources", "rules"), f"{w}.spec")
        dns, dsa, dport = _smi_subject(spec.get("destination"), f"{w}.destination", port=True)
        if dns != tt_ns:
            raise Unsupported(f"{w}: a TrafficTarget must live in its destination's namespace {dns!r}")
        if (dns, dsa) != (req.namespace, req.service_account):
            continue
        restricted = True
        sources = [_smi_subject(s, f"{w}.sources[{i}]")[:2]
                   for i, s in enumerate(_list(spec.get("sources"), f"{w}.sources"))]
        if tuple(req.source) not in sources or (dport is not None and dport != req.port):
            continue
        has_http, http_hit, port_lists = False, False, []
        for i, rule in enumerate(_list(spec.get("rules"), f"{w}.rules")):
            rw = f"{w}.rules[{i}]"
            rule = _only(rule, ("kind", "name", "matches"), rw)
            kind, names = rule.get("kind"), _list(rule.get("matches"), f"{rw}.matches")
            if kind == "HTTPRouteGroup":
                has_http = True
                g = groups.get((tt_ns, rule.get("name")))
                if g is None:
                    raise Unsupported(f"{rw}: no HTTPRouteGroup {tt_ns}/{rule.get('name')}")
                gspec = _only(g.get("spec"), ("matches",), f"{_where(g)}.spec")
                ms = _list(gspec.get("matches"), f"{_where(g)}.matches")
                by_name = {m.get("name"): m for m in ms}
                missing = [n for n in names if n not in by_name]
                if missing:
                    raise Unsupported(f"{rw}: no match(es) {missing} in {_where(g)}")
                chosen = [by_name[n] for n in names] if names else ms
                if req.http and any(_smi_http_match(m, req, f"{_where(g)}.matches[{m.get('name')}]",
                                                    joined_headers=False) for m in chosen):
                    http_hit = True
            elif kind == "TCPRoute":
                if names:
                    raise Unsupported(f"{rw}: a TCPRoute rule has no named matches")
                r = tcp.get((tt_ns, rule.get("name")))
                if r is None:
                    raise Unsupported(f"{rw}: no TCPRoute {tt_ns}/{rule.get('name')}")
                rspec = _only(r.get("spec"), ("matches",), f"{_where(r)}.spec")
                mt = _only(rspec.get("matches"), ("ports",), f"{_where(r)}.spec.matches")
                port_lists.append([_port_number(p, f"{_where(r)}.ports") for p in _list(mt.get("ports"), "ports")])
            else:
                raise Unsupported(f"{rw}: rule kind {kind!r}")
        on_port = any(req.port in ports if ports else
                      ports_of is None or req.port in set(ports_of(req.namespace, req.service))
                      for ports in port_lists)
        if not port_lists:
            if http_hit:
                return True
        elif not has_http:
            if on_port:
                return True
        elif on_port:
            if not req.http:
                raise Unsupported(f"{w}: an opaque connection to a port its TCPRoute lists beside HTTP matches "
                                  f"(SMI does not say whether it is admitted)")
            if http_hit:
                return True
    return not restricted


# =============================================================================================
# Istio

ISTIO_ROOT_NAMESPACE = "istio-system"
WAYPOINT = "waypoint"   # the namespace waypoint: Gateway name and service account
_ISTIO_VERSIONS = {"security.istio.io/v1", "security.istio.io/v1beta1"}
_ISTIO_L4_WHEN = {"source.namespace", "source.principal", "destination.port"}
_ISTIO_HTTP_OPS = ("methods", "notMethods", "paths", "notPaths")


def _istio_str(pattern: str, value: str) -> bool:
    """Istio string match: ``*`` presence (non-empty), ``*x`` suffix, ``x*`` prefix, else exact
    (authorization-policy reference, "Rule"; matcher/string.go StringMatcherWithPrefix)."""
    if not isinstance(pattern, str):
        raise Unsupported(f"string match value must be a string: {pattern!r}")
    if pattern == "*":
        return value != ""
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _istio_header_match(pattern: str, values: list[str]) -> bool:
    """Envoy HeaderMatcher built by Istio (matcher/header.go): ``*`` = present (even empty),
    else prefix/suffix/exact against all values joined with ``,``."""
    if not values:
        return False
    if pattern == "*":
        return True
    return _istio_str(pattern, ",".join(values))


def _istio_ports(values: list, where: str) -> list[int]:
    out = []
    for v in values:
        if not isinstance(v, str) or not v.isdigit() or not 0 < int(v) <= 65535:
            raise Unsupported(f"{where}: ports are numeric strings, got {v!r}")
        out.append(int(v))
    return out


@dataclass(frozen=True)
class _Peer:
    principal: str      # "<td>/ns/<ns>/sa/<sa>" (without spiffe://)
    namespace: str
    service_account: str


def _istio_rule_parts(rule: Any, where: str) -> tuple[list[dict], list[dict], list[dict]]:
    rule = _only(rule, ("from", "to", "when"), where)
    froms = []
    for i, f in enumerate(_list(rule.get("from"), f"{where}.from")):
        f = _only(f, ("source",), f"{where}.from[{i}]")
        froms.append(_only(f.get("source"), ("principals", "notPrincipals", "namespaces",
                                             "notNamespaces", "serviceAccounts",
                                             "notServiceAccounts"), f"{where}.from[{i}].source"))
    tos = []
    for i, t in enumerate(_list(rule.get("to"), f"{where}.to")):
        t = _only(t, ("operation",), f"{where}.to[{i}]")
        tos.append(_only(t.get("operation"), ("ports", "notPorts") + _ISTIO_HTTP_OPS,
                         f"{where}.to[{i}].operation"))
    whens = []
    for i, c in enumerate(_list(rule.get("when"), f"{where}.when")):
        c = _only(c, ("key", "values", "notValues"), f"{where}.when[{i}]")
        key = c.get("key", "")
        if key not in _ISTIO_L4_WHEN and not re.fullmatch(r"request\.headers\[[^\[\]]+\]", key):
            raise Unsupported(f"{where}.when[{i}]: condition key {key!r} is not modelled")
        if not c.get("values") and not c.get("notValues"):
            raise Unsupported(f"{where}.when[{i}]: needs values or notValues")
        whens.append(c)
    return froms, tos, whens


def _sa_spec(v: str, policy_ns: str) -> tuple[str, str]:
    if "*" in v:
        raise Unsupported(f"serviceAccounts allows no wildcard: {v!r}")
    ns, _, sa = v.partition("/")
    return (ns, sa) if sa else (policy_ns, ns)


# --- sidecar / waypoint (Envoy RBAC built by istiod) -------------------------------------------

def _envoy_ns_match(pattern: str, peer: _Peer) -> bool:
    # pilot/pkg/security/authz/model/generator.go srcNamespaceGenerator: the principal URI must
    # full-match ".*/ns/<value with * -> .*>/.*" (the value is not escaped)
    rx = ".*/ns/" + pattern.replace("*", ".*") + "/.*"
    return re.fullmatch(rx, "spiffe://" + peer.principal) is not None


def _envoy_sa_match(spec: tuple[str, str], peer: _Peer) -> bool:
    # generator.go serviceAccountRegex
    rx = f"spiffe://.+/ns/{spec[0]}/(.+/|)sa/{spec[1]}(/.+)?"
    return re.fullmatch(rx, "spiffe://" + peer.principal) is not None


def _pos_neg(values: list, not_values: list, pred: Callable[[Any], bool]) -> bool:
    return (not values or any(pred(v) for v in values)) and \
        not (not_values and any(pred(v) for v in not_values))


def _envoy_rule(rule: Any, where: str, action: str, peer: _Peer, req: Request, policy_ns: str,
                *, l7: bool) -> bool:
    """One rule on Envoy (sidecar or waypoint), per pilot/pkg/security/authz/model/model.go.

    ``l7`` False (a TCP filter chain): an HTTP-only field makes an ALLOW rule be skipped (never
    matches); in a DENY rule the HTTP-only values are dropped, i.e. that field matches anything
    (model.go ``checkError``; "For a DENY rule, missing attributes are treated as matches")."""
    froms, tos, whens = _istio_rule_parts(rule, where)

    def http_field(present: bool) -> bool | None:
        """None: evaluate normally; True: field dropped (DENY over TCP); raises-skip via flag."""
        if not present or l7:
            return None
        if action == "ALLOW":
            raise _SkipRule
        return True

    try:
        def src_ok(s: dict) -> bool:
            return (_pos_neg(s.get("principals") or [], s.get("notPrincipals") or [],
                             lambda p: _istio_str(p, peer.principal))
                    and _pos_neg(s.get("namespaces") or [], s.get("notNamespaces") or [],
                                 lambda n: _envoy_ns_match(n, peer))
                    and _pos_neg([_sa_spec(v, policy_ns) for v in s.get("serviceAccounts") or []],
                                 [_sa_spec(v, policy_ns) for v in s.get("notServiceAccounts") or []],
                                 lambda sp: _envoy_sa_match(sp, peer)))

        def op_ok(o: dict) -> bool:
            ok = _pos_neg(_istio_ports(o.get("ports") or [], where),
                          _istio_ports(o.get("notPorts") or [], where), lambda p: p == req.port)
            for pos, neg, value in (("methods", "notMethods", req.method),
                                    ("paths", "notPaths", req.path)):
                for field in (pos, neg):
                    vals = o.get(field) or []
                    if pos == "paths" and any("{" in v or "}" in v for v in vals):
                        raise Unsupported(f"{where}: path templates are not modelled")
                    if http_field(bool(vals)) is None and vals:
                        hit = any(_istio_str(v, value) for v in vals)
                        ok = ok and (hit if field == pos else not hit)
            return ok

        def when_ok(c: dict) -> bool:
            key, vals, nots = c["key"], c.get("values") or [], c.get("notValues") or []
            if key.startswith("request.headers["):
                if http_field(True):
                    return True
                hv = _header_values(req, key[len("request.headers["):-1])
                return _pos_neg(vals, nots, lambda p: _istio_header_match(p, hv))
            if key == "source.principal":
                return _pos_neg(vals, nots, lambda p: _istio_str(p, peer.principal))
            if key == "source.namespace":
                return _pos_neg(vals, nots, lambda n: _envoy_ns_match(n, peer))
            return _pos_neg(_istio_ports(vals, where), _istio_ports(nots, where),
                            lambda p: p == req.port)

        # evaluate everything first so an ALLOW rule with an HTTP field over TCP is skipped
        # whatever the order of its clauses
        src = [src_ok(s) for s in froms]
        ops = [op_ok(o) for o in tos]
        conds = [when_ok(c) for c in whens]
    except _SkipRule:
        return False
    return (not froms or any(src)) and (not tos or any(ops)) and all(conds)


class _SkipRule(Exception):
    pass


# --- ztunnel ----------------------------------------------------------------------------------

def _zt_str(pattern: str, value: str) -> bool:
    # ztunnel src/rbac.rs StringMatch (Presence = non-empty); istiod ambient/authorization.go
    # stringToMatch maps "*", "*x", "x*" and exact the same way as Envoy
    return _istio_str(pattern, value)


def _ztunnel_rule(rule: Any, where: str, action: str, peer: _Peer, req: Request,
                  policy_ns: str) -> bool:
    """One rule enforced by ztunnel: istiod's conversion (pilot/pkg/serviceregistry/ambient/
    authorization.go ``handleRule``) then ztunnel's matcher (src/rbac.rs ``matches``).

    * Any L7 attribute (methods/paths and their negations, ``when`` keys other than
      source.namespace/source.principal/destination.port...) in an ALLOW rule: the rule is
      omitted (never matches). In a DENY rule the L7 attributes are dropped.
    * Each ``to`` entry, each ``from`` entry and each ``when`` condition becomes one match; the
      ``to`` list, the ``from`` list and each ``when`` are clauses that must all hold; a clause
      holds when one of its *non-empty* matches holds -- a match left empty (e.g. an operation
      with only methods, ``source: {}``, an L7 ``when``) never holds, so such a DENY rule has no
      effect (istiod warns: "this DENY policy has no enforceable rules at ztunnel").
    """
    froms, tos, whens = _istio_rule_parts(rule, where)
    has_l7 = any(o.get(f) for o in tos for f in _ISTIO_HTTP_OPS) or \
        any(c["key"] not in _ISTIO_L4_WHEN for c in whens)
    if has_l7 and action == "ALLOW":
        return False
    clauses: list[list[Callable[[], bool] | None]] = []   # None = empty match
    if tos:
        ms = []
        for o in tos:
            ports = _istio_ports(o.get("ports") or [], where)
            nports = _istio_ports(o.get("notPorts") or [], where)
            ms.append(None if not ports and not nports else
                      (lambda p=ports, n=nports: _pos_neg(p, n, lambda x: x == req.port)))
        clauses.append(ms)
    if froms:
        ms = []
        for s in froms:
            if not any(s.get(k) for k in s):
                ms.append(None)
                continue
            sas = [_sa_spec(v, policy_ns) for v in s.get("serviceAccounts") or []]
            nsas = [_sa_spec(v, policy_ns) for v in s.get("notServiceAccounts") or []]
            ms.append(lambda s=s, sas=sas, nsas=nsas: (
                _pos_neg(s.get("principals") or [], s.get("notPrincipals") or [],
                         lambda p: _zt_str(p, peer.principal))
                and _pos_neg(s.get("namespaces") or [], s.get("notNamespaces") or [],
                             lambda n: _zt_str(n, peer.namespace))
                and _pos_neg(sas, nsas,
                             lambda sp: sp == (peer.namespace, peer.service_account))))
        clauses.append(ms)
    for c in whens:
        key, vals, nots = c["key"], c.get("values") or [], c.get("notValues") or []
        if key == "source.namespace":
            m = lambda v=vals, n=nots: _pos_neg(v, n, lambda x: _zt_str(x, peer.namespace))
        elif key == "source.principal":
            m = lambda v=vals, n=nots: _pos_neg(v, n, lambda x: _zt_str(x, peer.principal))
        elif key == "destination.port":
            pv, pn = _istio_ports(vals, where), _istio_ports(nots, where)
            m = lambda v=pv, n=pn: _pos_neg(v, n, lambda x: x == req.port)
        else:
            m = None
        clauses.append([m])
    return all(any(m is not None and m() for m in ms) for ms in clauses)


# --- selection and evaluation -----------------------------------------------------------------

def _istio_policies(objects: Iterable[dict], root_ns: str) -> list[dict]:
    out = []
    for o in objects:
        kind = o.get("kind")
        if kind in ("EnvoyFilter", "WasmPlugin"):
            raise Unsupported(f"{_where(o)}: {kind} can change authorization arbitrarily")
        if kind != "AuthorizationPolicy":
            continue            # PeerAuthentication etc.: out of scope (STRICT mTLS assumed)
        if o.get("apiVersion") not in _ISTIO_VERSIONS:
            raise Unsupported(f"{_where(o)}: apiVersion {o.get('apiVersion')}")
        _meta(o)
        ann = (o.get("metadata") or {}).get("annotations") or {}
        if str(ann.get("istio.io/dry-run", "false")).lower() == "true":
            raise Unsupported(f"{_where(o)}: dry-run policies are not modelled")
        spec = _only(o.get("spec"), ("selector", "targetRef", "targetRefs", "rules", "action",
                                     "provider"), f"{_where(o)}.spec")
        action = spec.get("action", "ALLOW")
        if action == "CUSTOM" or "provider" in spec:
            raise Unsupported(f"{_where(o)}: CUSTOM (ext-authz) is not modelled")
        if action not in ("ALLOW", "DENY", "AUDIT"):
            raise Unsupported(f"{_where(o)}: action {action!r}")
        refs = _list(spec.get("targetRefs"), "targetRefs") or \
            ([spec["targetRef"]] if spec.get("targetRef") else [])
        if refs and spec.get("selector") is not None:
            raise Unsupported(f"{_where(o)}: selector and targetRefs are exclusive")
        if spec.get("selector") is not None:
            sel = _only(spec["selector"], ("matchLabels",), f"{_where(o)}.selector")
            if not sel.get("matchLabels"):
                raise Unsupported(f"{_where(o)}: empty selector")
        out.append(o)
    return out


def _selector_applies(p: dict, req: Request, root_ns: str) -> bool:
    ns, _ = _meta(p)
    spec = p.get("spec") or {}
    if spec.get("targetRefs") or spec.get("targetRef"):
        return False        # policyattachment.go: a non-gateway ignores targetRef policies
    if ns not in (req.namespace, root_ns):
        return False
    sel = (spec.get("selector") or {}).get("matchLabels")
    return sel is None or set(sel.items()) <= set(req.pod_labels)


def _waypoint_applies(p: dict, req: Request, root_ns: str) -> bool:
    ns, _ = _meta(p)
    spec = p.get("spec") or {}
    refs = _list(spec.get("targetRefs"), "targetRefs") or \
        ([spec["targetRef"]] if spec.get("targetRef") else [])
    hit = False
    for r in refs:
        r = _only(r, ("group", "kind", "name", "namespace"), f"{_where(p)}.targetRefs")
        group, kind = r.get("group") or "", r.get("kind")
        if kind == "Service" and group in ("", "core"):
            if r.get("namespace") not in (None, "", ns):
                raise Unsupported(f"{_where(p)}: cross-namespace targetRef")
            hit = hit or (r.get("name") == req.service and ns == req.namespace)
        elif kind == "GatewayClass" and group == "gateway.networking.k8s.io":
            if ns != root_ns or r.get("name") != "istio-waypoint":
                raise Unsupported(f"{_where(p)}: GatewayClass target other than istio-waypoint")
            hit = True
        elif kind == "Gateway" and group == "gateway.networking.k8s.io":
            # istio 1.30.3 pilot/pkg/model/policyattachment.go:184-197: a policy in the waypoint's
            # namespace naming the waypoint Gateway attaches to every Service chain of it; the
            # namespace's waypoint is named WAYPOINT (as the ztunnel peer below assumes)
            if r.get("namespace") not in (None, "", ns):
                continue    # lines 189-191: a cross-namespace reference never matches
            hit = hit or (ns == req.namespace and r.get("name") == WAYPOINT)
        elif kind == "ServiceEntry" and group == "networking.istio.io":
            pass            # lines 165-174: only ServiceEntry (External registry) chains; requests here are to Services
        else:
            raise Unsupported(f"{_where(p)}: targetRef kind {kind!r} is not modelled")
    return hit


def _decide(policies: list[dict], match: Callable[[Any, str, str, str], bool]) -> bool:
    """CUSTOM (refused earlier), then DENY: any match denies; then ALLOW: if any ALLOW policy
    applies, one must match; AUDIT never decides (authorization_policy.proto, top comment)."""
    rules_of = lambda p: _list((p.get("spec") or {}).get("rules"), f"{_where(p)}.rules")
    act = lambda p: (p.get("spec") or {}).get("action", "ALLOW")
    for p in policies:
        if act(p) == "DENY" and any(match(r, f"{_where(p)}.rules[{i}]", "DENY", _meta(p)[0])
                                    for i, r in enumerate(rules_of(p))):
            return False
    allows = [p for p in policies if act(p) == "ALLOW"]
    if not allows:
        return True
    return any(match(r, f"{_where(p)}.rules[{i}]", "ALLOW", _meta(p)[0])
               for p in allows for i, r in enumerate(rules_of(p)))


def istio_allows(objects: Iterable[dict], req: Request, *, trust_domain: str,
                 ambient_waypoint_namespaces: frozenset[str] = frozenset(),
                 ambient_namespaces: frozenset[str] = frozenset(),
                 root_namespace: str = ISTIO_ROOT_NAMESPACE) -> bool:
    """Istio AuthorizationPolicy (security.istio.io v1/v1beta1).

    Reference: https://istio.io/latest/docs/reference/config/security/authorization-policy/
    (= istio/api security/v1beta1/authorization_policy.proto), conditions:
    https://istio.io/latest/docs/reference/config/security/conditions/ , TCP:
    https://istio.io/latest/docs/tasks/security/authorization/authz-tcp/ , ambient:
    https://istio.io/latest/docs/ambient/usage/l4-policy/ . Where the docs are silent, istiod:
    https://github.com/istio/istio/blob/master/pilot/pkg/security/authz/model/model.go ,
    .../model/generator.go , .../builder/builder.go , .../pilot/pkg/model/policyattachment.go ,
    .../pilot/pkg/serviceregistry/ambient/authorization.go and ztunnel
    https://github.com/istio/ztunnel/blob/master/src/rbac.rs .

    * Scope: policies in ``req.namespace`` and ``root_namespace``. ``selector.matchLabels`` must be
      a subset of the pod labels (none = every workload; root namespace = every namespace).
      ``targetRefs`` (kind Service, group ""/core, same namespace; Gateway ``waypoint``, same
      namespace, on every Service of it; or GatewayClass istio-waypoint in the root namespace)
      apply only at a waypoint; ``req.service`` is the Service called; sidecars and ztunnel ignore them, and
      waypoints ignore selector and namespace-wide policies.
    * Order: CUSTOM (raises), DENY (any matching rule denies), ALLOW (if any ALLOW policy applies,
      one of its rules must match -- an ALLOW policy without rules denies everything); AUDIT does
      not decide. A rule matches when one ``from``, one ``to`` and every ``when`` match; absent
      parts match anything; ``rules: [{}]`` matches everything.
    * Fields: ``principals``/``notPrincipals`` (``x*`` prefix, ``*x`` suffix, ``*`` presence,
      exact), ``namespaces``/``notNamespaces``, ``serviceAccounts``/``notServiceAccounts``,
      ``ports``/``notPorts`` (pod port, numeric strings), ``methods``/``paths`` and negations
      (same string match; path templates raise), ``when`` on ``request.headers[name]`` (``*`` =
      present, multiple values joined by ``,``), ``source.principal``, ``source.namespace``,
      ``destination.port``. ``hosts``, IP blocks, JWT attributes etc. raise. The source principal
      is ``<trust_domain>/ns/<ns>/sa/<sa>``. Namespaces on Envoy are matched as istiod does, by
      the regex ``.*/ns/<value, * -> .*>/.*`` over the principal URI; ztunnel compares the
      namespace string.
    * Sidecar (``req.namespace`` not ambient): selector policies at the destination sidecar; an
      HTTP request sees all fields; an opaque connection uses the TCP filter: an ALLOW rule with
      any HTTP-only field never matches, a DENY rule has its HTTP-only fields dropped.
    * Ambient, no waypoint (``ambient_namespaces``): selector policies at the destination ztunnel,
      L4 only, with ztunnel's semantics (see ``_ztunnel_rule``).
    * Ambient with waypoint (``ambient_waypoint_namespaces``): targetRef policies at the waypoint
      with the real source (HTTP fields available for HTTP requests; ``ports`` compared with the
      *service* port, ``req.service_port``: a waypoint builds one chain per Service port matched on
      the Service VIP and port, istio 1.30.3 pilot/pkg/networking/core/listener_waypoint.go:448-470,
      593-606), then selector policies at the destination ztunnel with source
      ``<td>/ns/<req.namespace>/sa/waypoint`` (pod port); both must allow.
    PeerAuthentication is out of scope (STRICT mTLS assumed).
    """
    _check_request(req)
    policies = _istio_policies(objects, root_namespace)

    def peer(ns: str, sa: str) -> _Peer:
        return _Peer(f"{trust_domain}/ns/{ns}/sa/{sa}", ns, sa)

    real = peer(*req.source)
    selected = [p for p in policies if _selector_applies(p, req, root_namespace)]

    def envoy(pe: _Peer, seen: Request = req) -> Callable:
        return lambda r, w, a, pns: _envoy_rule(r, w, a, pe, seen, pns, l7=req.http)

    def ztunnel(pe: _Peer) -> Callable:
        return lambda r, w, a, pns: _ztunnel_rule(r, w, a, pe, req, pns)

    if req.namespace in ambient_waypoint_namespaces:
        at_waypoint = [p for p in policies if _waypoint_applies(p, req, root_namespace)]
        at_service_port = replace(req, port=req.service_port) if req.service_port is not None else req
        if not _decide(at_waypoint, envoy(real, at_service_port)):
            return False
        return _decide(selected, ztunnel(peer(req.namespace, WAYPOINT)))
    if req.namespace in ambient_namespaces:
        return _decide(selected, ztunnel(real))
    return _decide(selected, envoy(real))


# =============================================================================================
# Linkerd

_LD_DEFAULT_POLICIES = {"all-unauthenticated", "all-authenticated", "cluster-authenticated",
                        "cluster-unauthenticated", "deny", "audit"}
_LD_POLICY_GROUP = "policy.linkerd.io"
_GW_GROUP = "gateway.networking.k8s.io"


def _gk_is(ref: dict, group: str, kind: str) -> bool:
    """policy-controller k8s/api/src/policy.rs ``targets_kind``: group (absent = core) and kind
    compared case-insensitively."""
    g = ref.get("group") or "core"
    return g.lower() == (group or "core").lower() and str(ref.get("kind", "")).lower() == kind.lower()


def _label_selector(sel: Any, labels: Mapping[str, str], where: str) -> bool:
    sel = _only(sel, ("matchLabels", "matchExpressions"), where)
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for i, e in enumerate(_list(sel.get("matchExpressions"), f"{where}.matchExpressions")):
        e = _only(e, ("key", "operator", "values"), f"{where}.matchExpressions[{i}]")
        key, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in vals
        elif op == "NotIn":
            ok = not (key in labels and labels[key] in vals)
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise Unsupported(f"{where}: operator {op!r}")
        if not ok:
            return False
    return True


def _ld_identity_match(pattern: str, identity: str) -> bool:
    """policy-controller core/src/identity_match.rs + proxy server-policy/src/authz.rs: ``*`` any
    identity, ``*.a.b`` suffix ``.a.b``, anything else exact."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return identity.endswith(pattern[1:])
    return identity == pattern


def _ld_route_summary(match: dict, req: Request, where: str) -> tuple[int, bool, int, int] | None:
    """One HTTPRouteMatch as linkerd2-proxy scores it (linkerd/http/route/src/http/match.rs,
    match/path.rs, match/header.rs): None if it does not match, else
    (path match length, method given, header count, query param count)."""
    m = _only(match, ("path", "headers", "queryParams", "method"), where)
    if m.get("queryParams"):
        raise Unsupported(f"{where}: queryParams are not modelled (requests carry no query)")
    method = m.get("method")
    if method is not None and method != req.method:
        return None
    path_len = 1            # no path: prefix "/" (gateway default)
    if m.get("path") is not None:
        p = _only(m["path"], ("type", "value"), f"{where}.path")
        kind, value = p.get("type", "PathPrefix"), p.get("value", "/")
        if kind == "Exact":
            if value != req.path:
                return None
            path_len = len(value)
        elif kind == "PathPrefix":
            if not value.startswith("/"):
                raise Unsupported(f"{where}: prefix must be absolute")
            if value != "/":
                prefix = value.rstrip("/")
                rest = req.path.rstrip("/")
                if not rest.startswith(prefix):
                    return None
                rest = rest[len(prefix):]
                if rest and not rest.startswith("/"):
                    return None
                path_len = len(prefix)
        elif kind == "RegularExpression":
            hit = _regex(value, f"{where}.path").search(req.path)
            if not hit or hit.start() != 0 or hit.end() != len(req.path):
                return None
            path_len = len(req.path)
        else:
            raise Unsupported(f"{where}: path type {kind!r}")
    headers = _list(m.get("headers"), f"{where}.headers")
    for i, h in enumerate(headers):
        h = _only(h, ("type", "name", "value"), f"{where}.headers[{i}]")
        values = _header_values(req, h["name"])
        kind = h.get("type", "Exact")
        if kind == "Exact":
            ok = h["value"] in values
        elif kind == "RegularExpression":
            rx = _regex(h["value"], f"{where}.headers[{i}]")
            ok = any((f := rx.search(v)) is not None and f.start() == 0 and f.end() == len(v)
                     for v in values)
        else:
            raise Unsupported(f"{where}: header match type {kind!r}")
        if not ok:
            return None
    return (path_len, method is not None, len(headers), 0)


def _ld_best_route(routes: list[dict], req: Request) -> dict | None:
    """The proxy's route selection (linkerd/http/route/src/lib.rs ``find``): within a rule the best
    of its matches (no matches = implicit prefix "/"); within a route the best rule; across
    routes the best route; greater (path length, method, headers, query params) wins and the
    first wins ties. Routes arrive ordered by the policy controller
    (policy-controller/grpc/src/inbound/http.rs ``to_route_list``): creationTimestamp (routes
    without one last), then name, group, kind."""
    def order(r: dict) -> tuple:
        md = r.get("metadata") or {}
        ts = md.get("creationTimestamp")
        group = r["apiVersion"].split("/")[0]
        return (ts is None, ts or "", md["name"], group, "HTTPRoute")

    best, best_key = None, None
    for r in sorted(routes, key=order):
        w = _where(r)
        spec = r.get("spec") or {}
        if spec.get("hostnames"):
            raise Unsupported(f"{w}: hostnames are not modelled")
        rules = _list(spec.get("rules"), f"{w}.rules")
        if not rules:
            raise Unsupported(f"{w}: a route needs rules")
        route_key = None
        for i, rule in enumerate(rules):
            rule = _only(rule, ("name", "matches", "filters", "timeouts"), f"{w}.rules[{i}]")
            if rule.get("filters"):
                raise Unsupported(f"{w}.rules[{i}]: filters are not modelled")
            ms = _list(rule.get("matches"), f"{w}.rules[{i}].matches")
            if not ms:
                key = (1, False, 0, 0)
            else:
                key = None
                for j, m in enumerate(ms):
                    s = _ld_route_summary(m, req, f"{w}.rules[{i}].matches[{j}]")
                    if s is not None and (key is None or s > key):
                        key = s
            if key is not None and (route_key is None or key > route_key):
                route_key = key
        if route_key is not None and (best_key is None or route_key > best_key):
            best, best_key = r, route_key
    return best


def linkerd_allows(objects: Iterable[dict], req: Request, *, trust_domain: str,
                   default_policy: str = "all-unauthenticated") -> bool:
    """Linkerd inbound authorization (policy.linkerd.io).

    Docs: https://linkerd.io/2/reference/authorization-policy/ ,
    https://linkerd.io/2/reference/httproute/ . Behaviour read from the policy controller
    (https://github.com/linkerd/linkerd2/tree/main/policy-controller: k8s/index/src/inbound/
    index.rs, authorization_policy.rs, meshtls_authentication.rs, runtime/src/admission.rs,
    grpc/src/inbound/http.rs) and the proxy (https://github.com/linkerd/linkerd2-proxy:
    linkerd/http/route/src/lib.rs, http/match*.rs, linkerd/proxy/server-policy/src/{lib,http,
    authz}.rs, linkerd/app/inbound/src/policy/http.rs).

    * Server (v1beta1-3) in the pod's namespace selecting the pod (``podSelector`` matchLabels /
      matchExpressions) and ``port`` == req.port (named ports raise; overlapping Servers raise --
      admission forbids them). No Server: ``default_policy`` (every value but ``deny`` admits a
      meshed in-cluster client).
    * Server authorizations: AuthorizationPolicies (v1alpha1) in the namespace whose targetRef is
      that Server (group policy.linkerd.io) or the Namespace, plus the Server's ``accessPolicy``
      (v1beta3, default ``deny``; other values admit meshed clients).
    * Opaque connection (or ``proxyProtocol: opaque``): allowed iff a server authorization admits
      it. ``HTTP/1``/``HTTP/2`` servers refuse opaque connections; gRPC/TLS raise.
    * HTTP request, HTTPRoutes (policy.linkerd.io or gateway.networking.k8s.io) with a parentRef
      to the Server: the proxy picks the single best route (see ``_ld_best_route``); none -> 404
      (denied). Allowed iff an AuthorizationPolicy targeting that route (group/kind/name compared
      case-insensitively) **or any server authorization** admits the client: the proxy appends
      the Server's authorizations to every route's (server-policy ``mk_authorizations``).
      No routes: the default route carries the server authorizations only.
    * An AuthorizationPolicy admits the client when its single identity reference does:
      MeshTLSAuthentication ``identities`` (``*``, ``*.suffix``, exact) / ``identityRefs``
      (ServiceAccount, Namespace) or a ServiceAccount ref; no refs = everyone. Admission-invalid
      combinations and NetworkAuthentication raise; a policy whose MeshTLSAuthentication is
      missing is ignored (as the controller does). Client identity:
      ``<sa>.<ns>.serviceaccount.identity.linkerd.<trust_domain>``.
    * Path: Exact; PathPrefix by whole segments (trailing ``/`` ignored); RegularExpression must
      be found (leftmost-first) spanning the whole path; headers Exact (any value) or regex with
      the same whole-span check; ``method`` exact. Probe routes of the default policy, GRPCRoutes,
      ServerAuthorizations, rate limits are not modelled (raise).
    """
    _check_request(req)
    if default_policy not in _LD_DEFAULT_POLICIES:
        raise Unsupported(f"default policy {default_policy!r}")
    identity = f"{req.source[1]}.{req.source[0]}.serviceaccount.identity.linkerd.{trust_domain}"
    servers, routes, policies, meshtls = [], [], [], {}
    for o in objects:
        kind, api = o.get("kind"), str(o.get("apiVersion", ""))
        group = api.split("/")[0]
        if kind in ("ServerAuthorization", "GRPCRoute", "HTTPLocalRateLimitPolicy",
                    "NetworkAuthentication") and group in (_LD_POLICY_GROUP, _GW_GROUP):
            if kind == "NetworkAuthentication":
                continue    # raises only when a policy references it
            raise Unsupported(f"{_where(o)}: {kind} is not modelled")
        if kind == "Server" and api in {f"{_LD_POLICY_GROUP}/v1beta{i}" for i in (1, 2, 3)}:
            servers.append(o)
        elif kind == "HTTPRoute" and (group == _LD_POLICY_GROUP or group == _GW_GROUP):
            routes.append(o)
        elif kind == "AuthorizationPolicy" and api == f"{_LD_POLICY_GROUP}/v1alpha1":
            policies.append(o)
        elif kind == "MeshTLSAuthentication" and api == f"{_LD_POLICY_GROUP}/v1alpha1":
            meshtls[_meta(o)] = o
        elif group == _LD_POLICY_GROUP:
            raise Unsupported(f"{_where(o)}: {api} {kind} is not modelled")

    labels = dict(req.pod_labels)
    chosen = []
    for s in servers:
        ns, name = _meta(s)
        spec = _only(s.get("spec"), ("podSelector", "port", "proxyProtocol", "accessPolicy"),
                     f"{_where(s)}.spec")
        if ns != req.namespace:
            continue
        port = spec.get("port")
        if port == "linkerd-admin":
            # the proxy container's admin port, named so by the injector (linkerd2 edge-26.8.3
            # charts/partials/templates/_proxy.tpl, containerPort name linkerd-admin =
            # proxy.ports.admin, charts/linkerd-control-plane/values.yaml: 4191)
            port = 4191
        if isinstance(port, str):
            raise Unsupported(f"{_where(s)}: named port {port!r} is not modelled")
        if _port_number(port, f"{_where(s)}.port") != req.port:
            continue
        if "podSelector" not in spec:
            raise Unsupported(f"{_where(s)}: podSelector is required")
        if _label_selector(spec["podSelector"], labels, f"{_where(s)}.podSelector"):
            chosen.append(s)
    if len(chosen) > 1:
        raise Unsupported(f"overlapping Servers {[_where(s) for s in chosen]}")
    if not chosen:
        return default_policy != "deny"
    srv = chosen[0]
    srv_ns, srv_name = _meta(srv)
    sspec = srv.get("spec") or {}

    def admits(p: dict) -> bool:
        w = _where(p)
        p_ns, _ = _meta(p)
        spec = _only(p.get("spec"), ("targetRef", "requiredAuthenticationRefs"), f"{w}.spec")
        refs = _list(spec.get("requiredAuthenticationRefs"), f"{w}.requiredAuthenticationRefs")
        ident = []
        for r in refs:
            r = _only(r, ("group", "kind", "name", "namespace"), f"{w}.requiredAuthenticationRefs")
            if _gk_is(r, _LD_POLICY_GROUP, "NetworkAuthentication"):
                raise Unsupported(f"{w}: NetworkAuthentication is not modelled")
            if _gk_is(r, _LD_POLICY_GROUP, "MeshTLSAuthentication") or _gk_is(r, "", "ServiceAccount"):
                ident.append(r)
            else:
                raise Unsupported(f"{w}: authentication kind {r.get('kind')!r} (admission rejects)")
        if len(ident) > 1:
            raise Unsupported(f"{w}: at most one MeshTLSAuthentication or ServiceAccount (admission)")
        if not ident:
            return True         # Unauthenticated, all networks
        r = ident[0]
        ns = r.get("namespace") or p_ns
        if _gk_is(r, "", "ServiceAccount"):
            return identity == f"{r['name']}.{ns}.serviceaccount.identity.linkerd.{trust_domain}"
        a = meshtls.get((ns, r["name"]))
        if a is None:
            return False        # controller: "Illegal AuthorizationPolicy; ignoring"
        aw = _where(a)
        aspec = _only(a.get("spec"), ("identities", "identityRefs"), f"{aw}.spec")
        pats = list(_list(aspec.get("identities"), f"{aw}.identities"))
        for ir in _list(aspec.get("identityRefs"), f"{aw}.identityRefs"):
            ir = _only(ir, ("group", "kind", "name", "namespace"), f"{aw}.identityRefs")
            if _gk_is(ir, "", "ServiceAccount"):
                pats.append(f"{ir['name']}.{ir.get('namespace') or ns}"
                            f".serviceaccount.identity.linkerd.{trust_domain}")
            elif _gk_is(ir, "", "Namespace"):
                pats.append(f"*.{ir['name']}.serviceaccount.identity.linkerd.{trust_domain}")
            else:
                raise Unsupported(f"{aw}: identityRef kind {ir.get('kind')!r}")
        if not pats:
            raise Unsupported(f"{aw}: no identities configured")
        return any(_ld_identity_match(x, identity) for x in pats)

    def target(p: dict) -> dict:
        return _only((p.get("spec") or {}).get("targetRef"), ("group", "kind", "name"),
                     f"{_where(p)}.targetRef")

    ns_policies = [p for p in policies if _meta(p)[0] == srv_ns]
    server_aps = []
    for p in ns_policies:
        t = target(p)
        if _gk_is(t, _LD_POLICY_GROUP, "Server"):
            if t.get("name") == srv_name:
                server_aps.append(p)
        elif _gk_is(t, "", "Namespace"):
            if t.get("name") != srv_ns:
                raise Unsupported(f"{_where(p)}: cannot target another namespace (admission)")
            server_aps.append(p)
        elif not (_gk_is(t, _LD_POLICY_GROUP, "HTTPRoute") or _gk_is(t, _GW_GROUP, "HTTPRoute")):
            raise Unsupported(f"{_where(p)}: target kind {t.get('kind')!r}")
    access = sspec.get("accessPolicy", "deny")
    if access not in _LD_DEFAULT_POLICIES:
        raise Unsupported(f"{_where(srv)}: accessPolicy {access!r}")
    server_ok = access != "deny" or any(admits(p) for p in server_aps)

    protocol = sspec.get("proxyProtocol", "unknown")
    if protocol in ("gRPC", "TLS"):
        raise Unsupported(f"{_where(srv)}: proxyProtocol {protocol} is not modelled")
    if protocol not in ("unknown", "opaque", "HTTP/1", "HTTP/2"):
        raise Unsupported(f"{_where(srv)}: proxyProtocol {protocol!r}")
    if protocol == "opaque" or (protocol == "unknown" and not req.http):
        return server_ok
    if not req.http:
        return False            # an HTTP-only server cannot serve an opaque connection

    attached = []
    for r in routes:
        r_ns, _ = _meta(r)
        if r_ns != srv_ns:
            continue
        rspec = _only(r.get("spec"), ("parentRefs", "hostnames", "rules"), f"{_where(r)}.spec")
        for pr in _list(rspec.get("parentRefs"), f"{_where(r)}.parentRefs"):
            pr = _only(pr, ("group", "kind", "name", "namespace", "port", "sectionName"),
                       f"{_where(r)}.parentRefs")
            if not _gk_is(pr, _LD_POLICY_GROUP, "Server"):
                continue        # e.g. a Service parent: an outbound route
            if pr.get("namespace") not in (None, r_ns) or "port" in pr or "sectionName" in pr:
                raise Unsupported(f"{_where(r)}: invalid Server parentRef (route ignored upstream)")
            if pr.get("name") == srv_name:
                attached.append(r)
                break
    if not attached:
        return server_ok
    best = _ld_best_route(attached, req)
    if best is None:
        return False            # no route: 404
    b_group, b_name = best["apiVersion"].split("/")[0], _meta(best)[1]
    for p in ns_policies:
        t = target(p)
        if str(t.get("kind", "")).lower() == "httproute" \
                and (t.get("group") or "").lower() == b_group.lower() \
                and str(t.get("name", "")).lower() == b_name.lower() and admits(p):
            return True
    return server_ok


# =============================================================================================
# OSM

def osm_allows(objects: Iterable[dict], req: Request, *, port_protocol: str | None = None) -> bool:
    """Open Service Mesh v1.2 (checked against tag v1.2.4), permissive traffic policy mode off.

    Docs: https://release-v1-2.docs.openservicemesh.io/docs/guides/traffic_management/ (SMI
    access control, mesh-wide default deny). Behaviour read from
    https://github.com/openservicemesh/osm/tree/v1.2.4: pkg/smi/client.go (``isValidTrafficTarget``),
    pkg/catalog/inbound_traffic_policies.go, pkg/catalog/traffictarget.go, pkg/envoy/lds/rbac.go,
    pkg/envoy/rbac/policy.go, pkg/envoy/rds/route/{route_config,rbac}.go,
    pkg/trafficpolicy/trafficpolicy.go (``MergeRules``).

    ``port_protocol`` is the Service port's protocol: ``"http"`` (HTTP filter chain) or ``"tcp"``
    (TCP proxy); default: ``"http"`` for an HTTP request, ``"tcp"`` for an opaque one.

    * No valid TrafficTarget for the destination: denied. A TrafficTarget is valid only when its
      namespace equals ``spec.destination.namespace`` and it has rules, all of kind HTTPRouteGroup
      or TCPRoute; invalid ones are ignored. ``destination.port`` is ignored by OSM.
    * L4 RBAC, on every port, TCP and HTTP alike (pkg/envoy/lds/inmesh.go: the RBAC filter of
      ``buildRBACFilter`` is first on HTTP filter chains too): passes iff some TrafficTarget lists
      the source (no sources = any source) and either carries no TCPRoute ports
      (HTTPRouteGroup-only targets and TCPRoutes with empty ``ports`` add none -> **every port**)
      or lists ``req.port`` among the union of its TCPRoutes' ports. A TrafficTarget naming a
      missing TCPRoute is dropped (catalog/traffictarget.go). A TCP port is allowed iff it passes.
    * HTTP port, after the L4 RBAC (opaque connections fail): the routes are those of every
      TrafficTarget of the service account, whatever port its TCPRoute names (one route table per
      service account: catalog/inbound_traffic_policies.go). Every rule's ``matches`` names are looked up in the
      HTTPRouteGroup of the rule's name (whatever the rule's kind); **a rule without ``matches``
      yields no route**; identical routes from several targets merge their sources. Each route
      matches ``pathRegex`` (absent: ``.*``), the method (regex, ``*`` any) and header regexes,
      all full matches (Envoy ``safe_regex``; repeated headers joined by ``,``). Envoy takes the
      first matching route and its per-route RBAC checks the source; no route -> 404. Route order
      follows the informer's order of TrafficTargets, so when matching routes disagree on the
      source the outcome is order dependent and this raises :class:`Unsupported`.
    """
    _check_request(req)
    protocol = port_protocol or ("http" if req.http else "tcp")
    if protocol not in ("http", "tcp"):
        raise Unsupported(f"port protocol {protocol!r}")
    targets, groups, tcp = [], {}, {}
    for d in objects:
        kind, api = d.get("kind"), str(d.get("apiVersion", ""))
        group = api.split("/")[0]
        if kind == "TrafficTarget" and api in _SMI_TT_VERSIONS:
            targets.append(d)
        elif kind in ("HTTPRouteGroup", "TCPRoute") and api in _SMI_SPEC_VERSIONS:
            (groups if kind == "HTTPRouteGroup" else tcp)[_meta(d)] = d
        elif kind == "TrafficSplit" and group == "split.smi-spec.io":
            continue
        elif group in ("access.smi-spec.io", "specs.smi-spec.io", "split.smi-spec.io",
                       "policy.openservicemesh.io"):
            raise Unsupported(f"{_where(d)}: {api} {kind} is not modelled")

    dest = []
    for tt in targets:
        w = _where(tt)
        tt_ns, _ = _meta(tt)
        spec = _only(tt.get("spec"), ("destination", "sources", "rules"), f"{w}.spec")
        dns, dsa, _port = _smi_subject(spec.get("destination"), f"{w}.destination", port=True)
        rules = _list(spec.get("rules"), f"{w}.rules")
        for i, r in enumerate(rules):
            _only(r, ("kind", "name", "matches"), f"{w}.rules[{i}]")
        if tt_ns != dns or not rules or any(r.get("kind") not in ("HTTPRouteGroup", "TCPRoute")
                                            for r in rules):
            continue
        if (dns, dsa) == (req.namespace, req.service_account):
            sources = [_smi_subject(s, f"{w}.sources[{i}]")[:2]
                       for i, s in enumerate(_list(spec.get("sources"), f"{w}.sources"))]
            dest.append((tt, tt_ns, sources, rules))
    src = tuple(req.source)

    # L4 RBAC, on TCP and HTTP filter chains alike (pkg/envoy/lds/inmesh.go getInboundTCPFilters and
    # getInboundHTTPFilters both put buildRBACFilter first): one policy per TrafficTarget
    # (catalog/traffictarget.go ListInboundTrafficTargetsWithRoutes, which drops a target naming a
    # missing TCPRoute), principals = sources (none: any), permissions = its TCPRoute ports (none:
    # any port; pkg/envoy/rbac/policy.go Build)
    l4_ok = False
    for tt, tt_ns, sources, rules in dest:
        ports, ok = [], True
        for r in rules:
            if r.get("kind") != "TCPRoute":
                continue
            route = tcp.get((tt_ns, r.get("name")))
            if route is None:
                ok = False
                break
            mt = _only(_only(route.get("spec"), ("matches",), _where(route)).get("matches"),
                       ("ports",), f"{_where(route)}.matches")
            ports += [_port_number(p, _where(route)) for p in _list(mt.get("ports"), "ports")]
        if ok and (not sources or src in sources) and (not ports or req.port in ports):
            l4_ok = True
            break
    if protocol == "tcp" or not l4_ok:
        return l4_ok

    if not req.http:
        return False
    # HTTPRouteGroup matches by (namespace, group name) -> match name (last duplicate wins)
    spec_matches = {}
    for key, g in groups.items():
        gspec = _only(g.get("spec"), ("matches",), f"{_where(g)}.spec")
        if gspec.get("matches") is None:
            continue
        spec_matches[key] = {m.get("name"): m for m in _list(gspec["matches"], _where(g))}
    routes: list[list] = []     # [route-identity, match dict, where, principals(set|None)]
    for tt, tt_ns, sources, rules in dest:
        allowed = set(sources)
        for r in rules:
            by_name = spec_matches.get((tt_ns, r.get("name")), {})
            for name in _list(r.get("matches"), "matches"):
                m = by_name.get(name)
                if m is None:
                    continue
                # MergeRules compares whole routes (reflect.DeepEqual): path, methods in order,
                # headers map
                ident = (m.get("pathRegex") or ".*", tuple(m.get("methods") or ["*"]),
                         tuple(sorted(_headers_map(m.get("headers"), "headers").items())))
                for existing in routes:
                    if existing[0] == ident:
                        existing[3] |= allowed
                        break
                else:
                    routes.append([ident, m, f"{tt_ns}/{r.get('name')}#{name}", set(allowed)])
    verdicts = []
    for ident, m, w, allowed in routes:
        m2 = dict(m)
        m2["pathRegex"] = m.get("pathRegex") or ".*"
        methods = list(m2.pop("methods", None) or ["*"])
        if not any(_regex(".*" if x == "*" else x, w).fullmatch(req.method) for x in methods):
            continue
        if _smi_http_match(m2, req, w, joined_headers=True):
            verdicts.append(not allowed or src in allowed)
    if not verdicts:
        return False
    if len(set(verdicts)) > 1:
        raise Unsupported("OSM outcome depends on the order of Envoy routes (matching routes "
                          "from different TrafficTargets disagree on the source)")
    return verdicts[0]
