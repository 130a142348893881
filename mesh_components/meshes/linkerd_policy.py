"""Linkerd policy: the mesh-neutral traffic model (``gamma``) translated into Linkerd's policy
resources, exactly or not at all.

Upstream behaviour this follows (https://linkerd.io/2/reference/authorization-policy/,
https://linkerd.io/2/reference/httproute/, linkerd2-proxy ``linkerd/http/route``):

- a ``Server`` (policy.linkerd.io/v1beta3) selects a port of a workload's pods; once one exists,
  traffic to that port is denied unless an ``AuthorizationPolicy`` admits it. SMI's default deny
  covers the whole destination, so every port of a destination with a policy gets a Server;
- client identities are ``<sa>.<ns>.serviceaccount.identity.linkerd.<trust-domain>``, required
  through a ``MeshTLSAuthentication``;
- with ``HTTPRoute``s attached to a Server, the proxy picks ONE route per request (the most
  specific) and only that route's authorizations decide; a request matching no route is refused.
  So matches that can select the same request but admit different sources cannot be expressed
  exactly: they are refused, naming both documents. Identical matches are merged (sources united).
- path matches: ``Exact`` for literal regexes, otherwise ``RegularExpression`` wrapped as
  ``^(?:re)$`` (the proxy accepts a regex match only when it spans the whole path); methods are one
  match each; header regexes likewise anchored;
- L4 rules (a TrafficTarget with TCPRoutes only) authorize the Server itself; they cannot be
  combined with HTTP routes on the same port for other sources, because a routed request is
  decided by its route alone. A TCPRoute beside HTTPRouteGroup matches in one TrafficTarget only
  scopes the matches to its ports (``gamma``: SMI's L7 example, OSM), so it gives no Server
  authorization;
- overlap is judged per top-level regex alternative (``/a/.*|/b/.*`` overlaps ``/b/x``), on match
  content, never on match names (``smi.may_overlap``).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from ..core import gamma, resilience
from ..spec import names
from ..spec.errors import Problem, TranslationError
from ..core.gamma import TrafficModel, Workload
from ..core.external_workloads import linkerd_external_selector
from ..core.meta import k8s_object
from ..spec.smi import HTTPMatch, may_overlap, re2_compile, regex_shape, rust_regex_problem

POLICY_V1BETA3 = "policy.linkerd.io/v1beta3"
POLICY_V1ALPHA1 = "policy.linkerd.io/v1alpha1"
PROXY_PROTOCOL = {"http": "HTTP/1", "http2": "HTTP/2", "grpc": "HTTP/2", "tcp": "opaque", "tls": "TLS"}
"""Spec port protocol -> the ``Server``'s ``proxyProtocol``.

A ``grpc`` port is served as ``HTTP/2``, not ``gRPC``: a gRPC Server is sent only its GRPCRoutes
(linkerd/linkerd2 edge-26.8.3 policy-controller/grpc/src/inbound.rs:209-213 ``ProxyProtocol::Grpc``
carries ``grpc_routes`` alone; k8s/index/src/inbound/index.rs:2020-2040 gives a Server without
GRPCRoutes a default route that only the Server's own authorizations admit through), so the
policy.linkerd.io HTTPRoutes and their AuthorizationPolicies rendered for SMI matches would never
apply and every call would be refused. An HTTP/2 Server is sent the HTTPRoutes
(inbound.rs:203-208, index.rs:1997-2018), which match gRPC calls exactly on what SMI names: the
``:path`` ``/package.Service/Method``, the method (always POST) and headers. The proxy speaks h2 to
both alike (linkerd2-proxy release/v2.366.0 linkerd/app/inbound/src/detect.rs:204 ``Http2 | Grpc =>
Variant::H2``), and answers a refused gRPC request with a grpc-status whatever the Server's protocol:
it tells gRPC by the request's content-type (linkerd/app/core/src/errors/respond.rs:315-333)."""


def identity(trust_domain: str, namespace: str, service_account: str) -> str:
    """Linkerd identity of a workload: ``<sa>.<ns>.serviceaccount.identity.linkerd.<trust-domain>``.

    Also the identity of an external workload as a SOURCE: the proxy takes a client's identity from
    its certificate's first SAN (linkerd2-proxy release/v2.366.0 ``linkerd/meshtls/verifier/src/
    lib.rs:35-41``), the DNS name the VM's SPIRE entry carries (``-dns``, written before the URI
    SAN); as a destination its ExternalWorkload's ``meshTLS.identity`` is its SPIFFE ID
    (``core.external_workloads.spiffe_id``)."""
    return f"{service_account}.{namespace}.serviceaccount.identity.linkerd.{trust_domain}"


def namespace_labels(spec, model: TrafficModel, namespace: str) -> dict[str, str]:
    """Linkerd policy needs no namespace labels."""
    return {}


def namespace_annotations(spec, model: TrafficModel, namespace: str) -> dict[str, str]:
    """``config.linkerd.io/default-inbound-policy`` where the namespace needs one
    (:func:`mesh_components.meshes.linkerd.policy_namespace_annotations`)."""
    from .linkerd import policy_namespace_annotations

    return policy_namespace_annotations(spec, model, namespace)


def deployment_problems(spec, model: TrafficModel) -> list[Problem]:
    """What the namespaces' default inbound policy would close (:func:`mesh_components.meshes.linkerd.default_policy_problems`)."""
    from .linkerd import default_policy_problems

    return default_policy_problems(spec, model)


@dataclass(frozen=True)
class RouteMatch:
    """One Linkerd route's match: ``methods`` (None: any), path ``(type, value)`` (None: any),
    headers ``((name, type, value), ...)``; ``regex`` keeps the SMI path regex."""

    methods: frozenset[str] | None
    path: tuple[str, str] | None
    headers: tuple[tuple[str, str, str], ...]
    regex: str | None

    def key(self) -> str:
        return repr((sorted(self.methods) if self.methods else None, self.path, self.headers))


def _anchored(regex: str) -> str:
    """``^(?:re)$``: a regex the proxy's leftmost-first search can only satisfy over the whole value."""
    s = regex[1:] if regex.startswith("^") else regex
    if s.endswith("$") and not s.endswith("\\$"):
        s = s[:-1]
    return f"^(?:{s})$"


# --- RE2's ASCII Perl classes, spelled out for Rust regex ---------------------------------------
#
# RE2 (OSM's Envoy safe_regex; Istio) reads \d \w \s as ASCII and \b \B as ASCII word boundaries
# (https://github.com/google/re2/wiki/Syntax: "\d digits (== [0-9])", "\s whitespace
# (== [\t\n\f\r ])", "\w word characters (== [0-9A-Za-z_])", "\b at ASCII word boundary").
# Rust regex 1.13.1 in a `Regex` is in Unicode mode: \d is \p{Nd}, \s \p{White_Space}, \w and \b
# Unicode-aware (regex 1.13.1 src/lib.rs "Perl character classes (Unicode friendly)" and "Unicode":
# "use (?-u:\b) and (?-u:\B)"), and the proxy matches request paths, which may hold UTF-8
# (http 1.4.0 src/uri/path.rs:65 "potentially utf8"), so `/books/\d+` sent as is would admit
# `/books/٣` on Linkerd alone. The classes are therefore sent as what RE2 means by them:
# [0-9], [^0-9] ... in Unicode mode, never (?-u:\D) (Rust refuses it: "pattern can match invalid
# UTF-8", src/lib.rs "Disabling the u flag ... only allowed where the UTF-8 invariant is
# maintained"), nor (?-u:\s) (Rust's ASCII \s has \v, RE2's has not) nor (?-u:\w) (ASCII-only case
# folding: RE2's (?i)\w takes U+212A KELVIN SIGN). Case folding agrees: RE2 folds each class item,
# then negates (re2 re2/parse.cc AddRangeFlags, AddUGroup "first, build up the group positively;
# then negate"), as regex-syntax 0.8.11 src/hir/translate.rs does ("we must apply case folding
# before negation"), both by Unicode simple case folding, so (?i)[0-9A-Za-z_] is RE2's (?i)\w.

_ASCII_PERL = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
"""RE2's Perl classes as the inside of a bracket class (https://github.com/google/re2/wiki/Syntax)."""
_ANY = "\\x{0}-\\x{10FFFF}"
_CLASS_POSIX = re.compile(r"\[:\^?[a-z]+:\]")  # fixed pattern on our side: `re` is safe here
_REPEAT = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")  # RE2 counted repetition; fixed pattern as above


class _Verbatim(Exception):
    """The regex holds what Rust regex refuses anyway (``\\Q``): it is sent unrewritten."""


@lru_cache(maxsize=1 << 14)  # pure; many rules share a few regexes
def ascii_perl_classes(regex: str) -> str:
    """``regex`` (RE2 syntax, compiled by RE2) with RE2's ASCII Perl classes spelled out for Rust
    regex's Unicode mode, matching exactly the strings RE2 matches:

    - outside classes ``\\d \\w \\s`` -> ``[0-9]``, ``[0-9A-Za-z_]``, ``[\\t\\n\\f\\r ]`` and
      ``\\D \\W \\S`` -> ``[^0-9]``, ... ; ``\\b``/``\\B`` -> ``(?-u:\\b)``/``(?-u:\\B)``;
    - inside a class, ``\\d \\w \\s`` -> their ranges (``[\\d-]`` -> ``[0-9-]``); a class that
      holds ``\\D \\W \\S`` is written out from what RE2 reads it as (``[^\\W]`` ->
      ``[0-9A-Z_a-z]``, ``[a\\D]`` -> ``[^0-9]``), under the ``(?i)`` in force there: such a class
      or its complement lies within the case-fold closure of ASCII, and every one of its
      characters folds to an ASCII one in it, so the ASCII characters RE2 admits decide it.

    Left as they are, for :func:`mesh_components.spec.smi.rust_regex_problem` to refuse with its fix:
    ``\\b{`` that starts no counted repetition (``\\b{start}``), a class whose Perl class starts a
    range (``[\\d-z]``), and the whole regex when it holds ``\\Q``. Text RE2 refuses is returned
    unchanged. Work is linear in ``len(regex)`` (plus 128 RE2 matches of one character per class
    holding ``\\D \\W \\S``). Upstream: see the comment above."""
    try:
        return _ascii(regex)
    except _Verbatim:
        return regex
    except (IndexError, ValueError):  # only for text RE2 refused: regex_problem reports it
        return regex


def _ascii(s: str) -> str:
    out, fold, groups, i = [], False, [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            e = s[i + 1]
            if e == "Q":
                raise _Verbatim
            if e.lower() in _ASCII_PERL:
                out.append(("[^" if e.isupper() else "[") + _ASCII_PERL[e.lower()] + "]")
            elif e == "B" or (e == "b" and (not s.startswith("{", i + 2) or _REPEAT.match(s, i + 2))):
                out.append(f"(?-u:\\{e})")
            else:
                out.append(s[i:i + 2])
            i += 2
        elif c == "[":
            i = _ascii_class(s, i, fold, out)
        else:
            if c == "(":
                # RE2: (?flags) sets flags to the end of the enclosing group, (?flags:re) inside it
                # only; only i (case folding) changes what a class admits
                end = i + 2
                if s.startswith("(?", i) and not s.startswith(("(?P<", "(?<"), i):
                    while s[end] not in ":)":
                        end += 1
                    on, _, off = s[i + 2:end].partition("-")
                    new = False if "i" in off else True if "i" in on else fold
                    if s[end] == ")":
                        fold = new
                    else:
                        groups.append(fold)
                        fold = new
                else:
                    groups.append(fold)
            elif c == ")" and groups:
                fold = groups.pop()
            out.append(c)
            i += 1
    return "".join(out)


def _ascii_class(s: str, i: int, fold: bool, out: list) -> int:
    """Append the rewritten bracket class at ``s[i] == '['`` to ``out``; the index after it."""
    j = i + 1 + (s[i + 1] == "^")
    items = []
    while s[j] != "]" or j == i + 1 + (s[i + 1] == "^"):  # a leading ']' is a literal to RE2
        m = _CLASS_POSIX.match(s, j) if s[j] == "[" else None
        k = m.end() if m else j + 2 if s[j] == "\\" else j + 1
        if s.startswith("\\Q", j):
            raise _Verbatim
        items.append(s[j:k])
        j = k
    text, negated = s[i:j + 1], s[i + 1] == "^"
    perl = [n for n, item in enumerate(items)
            if len(item) == 2 and item[0] == "\\" and item[1].lower() in _ASCII_PERL]
    if any(items[n + 1:n + 2] == ["-"] and n + 2 < len(items) for n in perl):
        out.append(text)  # [\d-z]: rust_regex_problem refuses it ("write the '-' as \-")
    elif any(items[n][1].isupper() for n in perl):
        out.append(_probed_class(text, negated, fold))
    else:
        for n, item in enumerate(items):
            items[n] = _ASCII_PERL[item[1]] if n in perl else item
        out.append(s[i:i + 1 + negated] + "".join(items) + "]")
    return j + 1


def _probed_class(text: str, negated: bool, fold: bool) -> str:
    """A class holding ``\\D``, ``\\W`` or ``\\S`` as RE2 reads it, in Rust syntax. Non-negated it
    is the complement of a set ``B`` within fold(ASCII) (``[a\\D]``: B = [0-9] less a); negated it
    is such a set itself. ``B`` is closed under case folding and each member folds to an ASCII
    member, so ``[^A]`` / ``[A]``, ``A`` the ASCII part of ``B``, under the same ``(?i)`` is exact
    in Rust, which folds a class before negating it as RE2 does."""
    rx = re2_compile(f"(?i:{text})" if fold else text)
    if rx is None:
        raise ValueError(text)
    inside = [c for c in range(128) if bool(rx.fullmatch(chr(c))) == negated]
    runs: list[list[int]] = []
    for c in inside:
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    shown = "".join(_class_char(lo) + ("-" + _class_char(hi) if hi > lo else "") for lo, hi in runs)
    if negated:
        return f"[{shown}]" if shown else f"[^{_ANY}]"  # matches nothing, as RE2's [^\D0-9]
    return f"[^{shown}]" if shown else f"[{_ANY}]"


def _class_char(c: int) -> str:
    ch = chr(c)
    return ch if ch.isascii() and (ch.isalnum() or ch == "_") else f"\\x{c:02X}"


def rendered_regex(regex: str, header: bool = False) -> str | None:
    """The ``RegularExpression`` value Linkerd is sent for an SMI path regex (``header``: header
    value regex), or None when :func:`route_match` sends an ``Exact`` match (or, for a path, none).
    Both the policy controller and the proxy compile it with Rust ``regex``
    (:func:`mesh_components.spec.smi.rust_regex_problem`)."""
    kind, literal = regex_shape(regex)
    if header:
        return None if kind == "exact" else _anchored(ascii_perl_classes(regex))
    # the policy controller refuses an Exact path that is not absolute (edge-26.8.3
    # policy-controller/k8s/index/src/routes/http.rs path_match), so '' or 'books' stay regexes,
    # which match no request path, as the SMI regex does
    if (kind == "exact" and literal.startswith("/")) or kind == "any":
        return None
    return _anchored(ascii_perl_classes(regex))


def route_match(m: HTTPMatch) -> RouteMatch:
    """The Linkerd form of an SMI HTTP match (exact: nothing is widened)."""
    path = None
    if m.path_regex is not None:
        sent = rendered_regex(m.path_regex)
        if sent is not None:
            path = ("RegularExpression", sent)
        elif regex_shape(m.path_regex)[0] == "exact":
            path = ("Exact", regex_shape(m.path_regex)[1])
    headers = []
    for name, value in m.headers:
        sent = rendered_regex(value, header=True)
        headers.append((name.lower(), "Exact", regex_shape(value)[1]) if sent is None else
                       (name.lower(), "RegularExpression", sent))
    methods = None if m.any_method else frozenset(m.methods)
    return RouteMatch(methods, path, tuple(sorted(headers)), m.path_regex)


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _auth(mesh, td, name, namespace, target_kind, target_name, sources) -> list[dict]:
    return [
        k8s_object(POLICY_V1ALPHA1, "MeshTLSAuthentication", name, namespace, mesh, spec={
            "identities": sorted(identity(td, ns, sa) for ns, sa in sources)}),
        k8s_object(POLICY_V1ALPHA1, "AuthorizationPolicy", name, namespace, mesh, spec={
            "targetRef": {"group": "policy.linkerd.io", "kind": target_kind, "name": target_name},
            "requiredAuthenticationRefs": [{"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication",
                                            "name": name}]}),
    ]


def _route_object(mesh, name, ns, server, rm: RouteMatch) -> dict:
    base: dict = {}
    if rm.path:
        base["path"] = {"type": rm.path[0], "value": rm.path[1]}
    if rm.headers:
        base["headers"] = [{"name": n, "type": t, "value": v} for n, t, v in rm.headers]
    matches = [{**base, "method": m} for m in sorted(rm.methods)] if rm.methods else [base or {"path": {
        "type": "PathPrefix", "value": "/"}}]
    return k8s_object(POLICY_V1BETA3, "HTTPRoute", name, ns, mesh, spec={
        "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": server}],
        "rules": [{"matches": matches}]})


def _server_objects(spec, w: Workload, port: int, target: int, protocol: str, port_name: str,
                    auths: list[gamma.Authorization], problems: list[Problem], server: str | None = None,
                    external: dict | None = None) -> list[dict]:
    mesh, td = spec.name, spec.trust_domain
    server = server or f"{w.name}-{port_name}"  # policy_objects allocates it (server_names)
    # external: the externalWorkloadSelector of the service's external workloads (a Server selects pods
    # or ExternalWorkloads, never both: core.external_workloads.linkerd_external_selector)
    selector = {"externalWorkloadSelector": external} if external else {"podSelector": {
        "matchLabels": dict(w.pod_labels)}}
    objects = [k8s_object(POLICY_V1BETA3, "Server", server, w.namespace, mesh, spec={
        **selector, "port": target, "proxyProtocol": PROXY_PROTOCOL[protocol]})]
    tcp_sources = sorted({s for a in auths if a.tcp_ports is not None and (not a.tcp_ports or port in a.tcp_ports)
                          for s in a.sources})
    routes: dict[str, tuple[RouteMatch, set, list[str], HTTPMatch]] = {}
    if protocol in ("http", "http2", "grpc"):
        for a in auths:
            if port not in a.ports:
                continue
            for origin, m in a.http:
                rm = route_match(m)
                for kind, value in ([rm.path] if rm.path else []) + [h[1:] for h in rm.headers]:
                    why = rust_regex_problem(value) if kind == "RegularExpression" else None
                    if why:  # validate finds it with the field's path (smi.regex_problem); this is the last guard
                        from ..spec.yaml_source import shown

                        problems.append((origin, f"regex {shown(value)} does not read alike in Rust regex, "
                                                 f"Linkerd's engine: {why}"))
                got = routes.setdefault(rm.key(), (rm, set(), [], m))
                got[1].update(a.sources)
                got[2].append(origin)
    if tcp_sources:
        # a TCP rule admits every request on the port; routes only add sources it already has
        extra = sorted({s for _, srcs, _, _ in routes.values() for s in srcs} - set(tcp_sources))
        if extra:
            origins = sorted({o for _, _, os_, _ in routes.values() for o in os_})
            problems.append((origins[0], f"port {port} of {w.namespace}/{w.name} has both TCP rules (for "
                                         f"{', '.join(f'{n}/{s}' for n, s in tcp_sources)}) and HTTP matches for other "
                                         f"sources; Linkerd decides a routed request by its route alone, so this "
                                         f"cannot be expressed exactly: give those sources the TCP rule too, or "
                                         f"serve the HTTP matches on another port"))
            return objects
        return objects + _auth(mesh, td, server, w.namespace, "Server", server, tcp_sources)
    # a route nobody may use is not rendered (the request is refused without it all the same)
    items = sorted((r for r in routes.values() if r[1]), key=lambda r: r[0].key())
    for i, (_, sa, oa, ma) in enumerate(items):
        for _, sb, ob, mb in items[i + 1:]:
            if sa != sb and may_overlap(ma, mb):
                problems.append((oa[0], f"overlaps {ob[0]} on port {port} of {w.namespace}/{w.name} with different "
                                        f"sources; Linkerd picks one route per request, so the union of their sources "
                                        f"cannot be expressed exactly: make the matches disjoint (different paths, "
                                        f"methods or exact header values) or give them the same sources"))
    for rm, sources, _, _ in items:
        name = f"{server}-{_short(rm.key())}"
        objects.append(_route_object(mesh, name, w.namespace, server, rm))
        objects += _auth(mesh, td, name, w.namespace, "HTTPRoute", name, sorted(sources))
    return objects


def policy_objects(spec, model: TrafficModel, cluster: str) -> list[dict]:
    """Servers, HTTPRoutes, AuthorizationPolicies and MeshTLSAuthentications for ``cluster``, and
    GAMMA HTTPRoutes for splits. Raises :class:`TranslationError` listing everything Linkerd
    cannot express exactly."""
    problems: list[Problem] = []
    by_dest: dict[tuple[str, str], list[gamma.Authorization]] = {}
    workloads: dict[tuple[str, str], Workload] = {}
    for a in model.authorizations:
        key = (a.destination.namespace, a.destination.name)
        by_dest.setdefault(key, []).append(a)
        workloads[key] = a.destination
    objects: list[dict] = []
    servers = server_names(spec, workloads.values(), by_dest, cluster)
    for key in sorted(by_dest):
        w = workloads[key]
        if cluster not in w.clusters:
            continue
        external = linkerd_external_selector(spec, w.namespace, w.name, cluster)  # VMs of the service
        for port, target, protocol, port_name in w.ports:
            objects += _server_objects(spec, w, port, target, protocol, port_name, by_dest[key], problems,
                                       servers[((w.namespace,), (w.name, port_name))])
            if external:  # the same policy for the service's external workloads, on a Server of their own
                objects += _server_objects(spec, w, port, target, protocol, port_name, by_dest[key], problems,
                                           servers[((w.namespace,), (w.name, port_name))] + "-external", external)
    from . import linkerd  # the deployment's part: default inbound policy, probes, multicluster identity

    objects += linkerd.probe_objects(spec, objects, linkerd.deny_namespaces(spec, model, cluster))
    problems += linkerd.cross_cluster_problems(spec, model)
    try:
        routed, replaced = resilience.linkerd_objects(spec, model, cluster)
    except TranslationError as e:
        problems += e.problems
        routed, replaced = [], set()
    # GAMMA HTTPRoute names join user names (split "a" port 80 = split "a-80"): names.rename
    named: list[tuple] = []
    for r in model.routes:
        problems += gamma.tcp_split_problems("Linkerd", r) if cluster in r.clusters else []
        if cluster in r.clusters and r.name not in replaced:
            split = gamma.split_routes(spec.name, r)
            objects += split
            named += [(o, ("split", r.name, o["spec"]["parentRefs"][0]["port"]), r.origin) for o in split]
    objects += routed
    index = {(s.namespace, s.name): i for i, s in enumerate(spec.services)}
    named += [(o, ("resilience", ref["name"], ref["port"]),
               f"mesh.services[{index.get((o['metadata']['namespace'], ref['name']), 0)}].resilience")
              for o in routed for ref in o["spec"]["parentRefs"][:1]]
    if problems:
        raise TranslationError(sorted(set(problems)))
    names.rename(named)
    return objects


def server_names(spec, workloads, by_dest, cluster: str | None = None) -> dict:
    """``{((namespace,), (service, port name)): Server name}`` for every port of the destinations
    with authorizations that run in ``cluster`` (None: in any): ``<service>-<port name>`` where
    unique in the namespace, else hashed (:func:`mesh_components.spec.names.allocate`: service ``a``
    port ``b-c`` and service ``a-b`` port ``c`` would share ``a-b-c``). Allocated per cluster: a
    Server's name must be unique only in its namespace of one cluster, and no object refers to a
    Server of another cluster (its routes, authorizations and probe objects are in its own
    namespace and cluster; a Link mirrors Services, not Servers), so names that collide in no
    cluster keep the readable name the release before gave them. Names the mesh's own objects of
    the namespace have, or a Server's objects would share (``linkerd.reserved_server_names``: the
    scrape objects, ``<server>-probes``), are fixed: a Server asking for one is hashed."""
    from .linkerd import reserved_server_names

    index = {(s.namespace, s.name): i for i, s in enumerate(spec.services)}
    requests = [((w.namespace,), (w.name, port_name), f"{w.name}-{port_name}",
                 f"mesh.services[{index.get((w.namespace, w.name), 0)}].ports")
                for w in workloads if (w.namespace, w.name) in by_dest and (cluster is None or cluster in w.clusters)
                for _, _, _, port_name in w.ports]
    readable: dict[str, list[str]] = {}
    for scope, _, name, _ in requests:
        readable.setdefault(scope[0], []).append(name)
    requests += [((ns,), ("reserved", why, name), name, "mesh.backend.linkerd", True)
                 for ns, servers in sorted(readable.items()) for name, why in reserved_server_names(spec, servers)]
    return names.allocate(requests, what="Server")
