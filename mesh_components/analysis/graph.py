"""Who may talk to whom: the mesh's allowed calls as a graph (Mermaid or Graphviz DOT), and the
access rules that admit nothing or are shadowed by others. Pure: no I/O.

Input is the mesh-neutral :class:`~mesh_components.core.gamma.TrafficModel` (plus the spec for nodes,
egress and ingress, and the :class:`~mesh_components.spec.smi.PolicySet` for the rule-level checks).
Semantics are SMI traffic-access-control (https://github.com/servicemeshinterface/smi-spec), as
:mod:`mesh_components.core.gamma` states them: a request from identity *s* to port *p* of a service is
allowed iff some Authorization for that service lists *s* and either one of its HTTP matches
matches the request on one of its ``ports`` that the service serves over HTTP, or its TCP rule
admits *p*; a service with no Authorization is not restricted by this layer.

Graph: services are nodes grouped by namespace; an edge per (caller, callee) lists what is
allowed, one line per HTTP match (``METHODS PATH-REGEX [header: regex] :PORTS``) or TCP rule
(``tcp:PORTS``); egress hosts are nodes of their own (edges ``protocol:port`` from the source
services); the ingress gateway is a node with edges ``host+pathPrefix :port`` to routed services;
traffic splits are dashed edges from the apex service to its backends (``weight (share%)``).
Callers that ``mesh.overrides`` let in (read back from the rendered objects after the overrides,
:mod:`mesh_components.analysis.override_access`) are red ``override`` edges, with an ``override-widens``
finding; an override that changes access objects otherwise is an ``override-changes-access``
finding. Everything is sorted, so the same stack gives the same bytes. With the metrics overlay
(``build_graph(series=...)``, ``graph --metrics``) allow and ingress edges carry one more line per
source identity: the golden-signal series that will show that traffic
(:mod:`mesh_components.core.telemetry.golden_signals`); without it the output is unchanged.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..core.gamma import Authorization, TrafficModel
from ..spec.smi import HTTPMatch, PolicySet, re2_compile, regex_shape

HTTP_PROTOCOLS = ("http", "http2", "grpc")
INGRESS_ORIGIN = "mesh.ingress.routes["
"""Origin prefix of the Authorizations ``gamma.build`` makes for ingress routes."""


# ---------------------------------------------------------------------------------------------
# findings


@dataclass(frozen=True, order=True)
class Finding:
    """A warning about the policy. ``kind``: ``admits-nothing`` (a rule or part of one can never
    match a request), ``shadowed`` (a whole Authorization adds nothing: every request it admits is
    admitted by other Authorizations of the same destination), ``redundant-match`` (one HTTP match or
    TCP rule of an Authorization adds nothing), ``override-widens`` / ``override-changes-access``
    (:func:`override_findings`). ``origin`` names the document at fault; ``others``
    the documents that already admit what it admits (for the shadow kinds)."""

    origin: str
    kind: str
    message: str
    others: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.origin}: {self.kind}: {self.message}"


def _service_ports(a: Authorization) -> tuple[int, ...]:
    return tuple(p for p, *_ in a.destination.ports)


def _dest(a: Authorization) -> tuple[str, str]:
    return a.destination.namespace, a.destination.name


def http_ports_of(a: Authorization) -> tuple[int, ...]:
    """The ports an Authorization's HTTP matches can match on: its ``ports`` that the destination
    serves over HTTP (http, http2, grpc). A match on any other port never sees an HTTP request."""
    served = set(a.destination.http_ports)
    return tuple(p for p in a.ports if p in served)


def tcp_ports_of(a: Authorization) -> tuple[int, ...]:
    """The ports an Authorization's TCP rule admits (every service port for an empty list)."""
    if a.tcp_ports is None:
        return ()
    return a.tcp_ports or _service_ports(a)


# --- containment of regex languages (conservative: True only when certain) --------------------


def regex_within(inner: str | None, outer: str | None) -> bool:
    """True when every string the full-match regex ``inner`` admits is admitted by ``outer``
    (``None``: any string). Decided on the shapes of :func:`mesh_components.spec.smi.regex_shape`
    (exact, prefix ``s.*``, suffix ``.*s``, any ``.*``), on identical text, and on an exact string
    fully matched by a general regex; otherwise False (never claims a containment it cannot prove)."""
    if outer is None:
        return True
    o_kind, o = regex_shape(outer)
    if o_kind == "any":
        return True
    if inner is None:
        return False
    if inner == outer:
        return True
    i_kind, i = regex_shape(inner)
    if i_kind in ("any", "regex"):
        return False
    if o_kind == "regex":
        if i_kind != "exact":
            return False
        # RE2, linear in the path: Python's backtracking `re` takes minutes on a user regex such as
        # '/(a+)+b' against a 40-character path (issue 13.8); RE2 is also the engine that reads it
        compiled = re2_compile(outer)
        return compiled is not None and compiled.fullmatch(i) is not None
    if o_kind == "exact":
        return i_kind == "exact" and i == o
    if o_kind == "prefix":
        return i_kind in ("exact", "prefix") and i.startswith(o)
    return i_kind in ("exact", "suffix") and i.endswith(o)  # outer is a suffix


def headers_within(inner: tuple[tuple[str, str], ...], outer: tuple[tuple[str, str], ...]) -> bool:
    """True when a request meeting every ``inner`` header condition meets every ``outer`` one:
    each outer ``(name, regex)`` needs an inner condition on the same header (names compare
    case-insensitively; a header must be present to match, even ``.*``) whose regex is within it."""
    return all(any(h.lower() == name.lower() and regex_within(v, value) for h, v in inner)
               for name, value in outer)


# --- grants and atoms --------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One part of an Authorization: an HTTP match (``match`` set) or its TCP rule (``match``
    None), with the sources and the ports it is effective on. ``auth`` indexes
    ``TrafficModel.authorizations``; ``origin`` names the match or rule."""

    auth: int
    origin: str
    sources: tuple[tuple[str, str], ...]
    ports: tuple[int, ...]
    match: HTTPMatch | None = None

    def atoms(self) -> list[tuple]:
        """The requests this grant admits, as atoms: ``("tcp", source, port)`` for a TCP rule,
        ``("http", source, port, method, path_regex, headers)`` for an HTTP match (one per method;
        ``"*"`` when any method)."""
        sources = sorted(set(self.sources))
        if self.match is None:
            return [("tcp", s, p) for s in sources for p in self.ports]
        m = self.match
        methods = ["*"] if m.any_method else sorted(set(m.methods))
        return [("http", s, p, meth, m.path_regex, m.headers)
                for s in sources for p in self.ports for meth in methods]

    def covers(self, atom: tuple) -> bool:
        """Whether this grant admits every request of ``atom``. A TCP rule on a port admits every
        request to that port, HTTP ones included; an HTTP match never admits raw TCP."""
        if atom[1] not in self.sources or atom[2] not in self.ports:
            return False
        if self.match is None:
            return True
        if atom[0] != "http":
            return False
        _, _, _, method, path, headers = atom
        m = self.match
        return ((m.any_method or (method != "*" and method in m.methods))
                and regex_within(path, m.path_regex) and headers_within(headers, m.headers))


def grants(model: TrafficModel) -> list[Grant]:
    """Every HTTP match and TCP rule of the model's Authorizations, in model order."""
    out: list[Grant] = []
    for i, a in enumerate(model.authorizations):
        http_ports = http_ports_of(a)
        for origin, m in a.http:
            out.append(Grant(i, origin, a.sources, http_ports, m))
        if a.tcp_ports is not None:
            out.append(Grant(i, f"{a.origin} (TCP ports {list(tcp_ports_of(a))})", a.sources, tcp_ports_of(a)))
    return out


def shadowed(model: TrafficModel) -> list[Finding]:
    """Authorizations (and parts of them) that admit nothing no other part admits.

    Per destination service, grants (see :class:`Grant`) are visited in reverse model order (model
    order is by namespace, name and origin of the SMI documents, then the ingress routes); a grant
    is *redundant* when each of its atoms — (source, port, method, path regex, headers), or
    (source, port) for TCP — is covered by one grant not yet found redundant. Of two grants that
    admit the same requests, the later one is therefore reported and the earlier kept. Coverage is
    transitive, so all reported grants can be removed together without changing what is admitted.

    An Authorization whose every effective grant is redundant is reported once as ``shadowed``,
    naming the Authorizations that admit its requests; otherwise each redundant grant is reported
    as ``redundant-match`` (e.g. ``GET /a`` next to ``* /a``, or an HTTP match next to a TCP rule on
    the same port, in one rule). Grants that admit nothing are left to :func:`admits_nothing`.
    """
    all_grants = grants(model)
    auths = model.authorizations
    by_dest: dict[tuple[str, str], list[int]] = {}
    for gi, g in enumerate(all_grants):
        by_dest.setdefault(_dest(auths[g.auth]), []).append(gi)
    atoms = [g.atoms() for g in all_grants]
    findings: list[Finding] = []
    for dest, members in sorted(by_dest.items()):
        redundant: set[int] = set()
        for gi in reversed(members):
            if atoms[gi] and all(any(hi != gi and hi not in redundant and all_grants[hi].covers(at)
                                     for hi in members) for at in atoms[gi]):
                redundant.add(gi)
        kept = [hi for hi in members if hi not in redundant]

        def coverers(gi: int) -> list[int]:
            return [hi for hi in kept if any(all_grants[hi].covers(at) for at in atoms[gi])]

        by_auth: dict[int, list[int]] = {}
        for gi in members:
            if atoms[gi]:
                by_auth.setdefault(all_grants[gi].auth, []).append(gi)
        for ai, live in sorted(by_auth.items()):
            a = auths[ai]
            if all(gi in redundant for gi in live):
                others = tuple(sorted({auths[all_grants[hi].auth].origin for gi in live for hi in coverers(gi)}))
                findings.append(Finding(a.origin, "shadowed",
                                        f"every request it admits to {dest[0]}/{dest[1]} is also admitted by "
                                        f"{', '.join(others)}; remove one of them or make them differ", others))
                continue
            for gi in live:
                if gi in redundant:
                    others = tuple(sorted({all_grants[hi].origin for hi in coverers(gi)}))
                    findings.append(Finding(all_grants[gi].origin, "redundant-match",
                                            f"adds nothing to {dest[0]}/{dest[1]}: every request it admits is also "
                                            f"admitted by {', '.join(others)}", others))
    return findings


def admits_nothing(spec, policies: PolicySet, model: TrafficModel) -> list[Finding]:
    """Rules, or parts of rules, that can never admit a request (what passes validation):

    - a TrafficTarget with an empty ``sources`` list (SMI files; the spec requires one);
    - a TrafficTarget with no ``rules`` (SMI files; the spec refuses a rule without http/tcp);
    - a rule naming an HTTPRouteGroup whose ``matches`` list is empty (nothing to select);
    - HTTP matches that apply only on ports the destination does not serve over HTTP (a
      ``destination.port`` that is tcp/tls, or a service with no http/http2/grpc port);
    - a TCPRoute rule none of whose ports is admitted at any destination of the TrafficTarget
      (its ports are not the TrafficTarget's ``destination.port``, or no destination exposes them;
      a TCPRoute listing some ports a destination lacks is not flagged, as routes may be shared).

    Such a rule still makes its destination default-deny; when nothing at all admits a request to
    a destination, the message says every caller is denied.
    """
    auths = model.authorizations
    live_dest = {_dest(auths[g.auth]) for g in grants(model) if g.atoms()}
    by_origin: dict[str, list[Authorization]] = {}
    for a in auths:
        by_origin.setdefault(a.origin, []).append(a)

    def denied(origin: str) -> str:
        dead = sorted({_dest(a) for a in by_origin.get(origin, [])} - live_dest)
        if not dead:
            return ""
        return "; nothing else admits a request to " + ", ".join(f"{n}/{s}" for n, s in dead) + \
            ", so every caller is denied"

    out: list[Finding] = []
    for t in policies.targets:
        if not t.sources:
            out.append(Finding(t.origin, "admits-nothing", "lists no sources, so it admits no caller (SMI "
                                                           "identities: list the ServiceAccounts that may call)"
                               + denied(t.origin)))
        if not t.rules:
            out.append(Finding(t.origin, "admits-nothing", "has no rules, so it admits no request (name an "
                                                           "HTTPRouteGroup or TCPRoute)" + denied(t.origin)))
        resolved = by_origin.get(t.origin, [])
        admitted_tcp = {p for a in resolved for p in tcp_ports_of(a)}
        for i, r in enumerate(t.rules):
            where = t.origin if t.origin.startswith("mesh.") else f"{t.origin}.spec.rules[{i}]"
            if r.kind == "HTTPRouteGroup":
                group = policies.route_group(t.namespace, r.name)
                if group is not None and not [m for m in group.matches if not r.matches or m.name in r.matches]:
                    out.append(Finding(where, "admits-nothing",
                                       f"selects no match: HTTPRouteGroup {group.origin} has an empty matches "
                                       f"list, so this rule admits nothing" + denied(t.origin)))
            else:
                route = policies.tcp_route(t.namespace, r.name)
                if route is None or not route.ports or set(route.ports) & admitted_tcp:
                    continue
                if t.destination_port is not None:
                    why = f"the TrafficTarget's destination port is {t.destination_port}"
                else:
                    exposed = sorted({p for a in resolved for p in _service_ports(a)})
                    why = f"no service running as {t.destination[0]}/{t.destination[1]} exposes them (ports {exposed})"
                out.append(Finding(where, "admits-nothing",
                                   f"TCPRoute {route.origin} ports {sorted(route.ports)} admit nothing here: {why}"
                                   + denied(t.origin)))
    for a in auths:
        if a.http and not http_ports_of(a):
            served = ", ".join(f"{p}/{proto}" for p, _, proto, _ in a.destination.ports)
            if a.ports:
                where = f"port(s) {list(a.ports)}, which {a.destination.namespace}/{a.destination.name} does not " \
                        f"serve over HTTP (ports {served})"
            else:
                where = f"no port: {a.destination.namespace}/{a.destination.name} has no http/http2/grpc port " \
                        f"(ports {served})"
            out.append(Finding(a.origin, "admits-nothing",
                               f"its HTTP matches apply on {where}, so they admit nothing; use a TCPRoute for "
                               f"those ports" + denied(a.origin)))
    return sorted(set(out))


def analyse(spec, policies: PolicySet, model: TrafficModel) -> list[Finding]:
    """All findings, sorted: :func:`admits_nothing` then :func:`shadowed` per origin."""
    return sorted(set(admits_nothing(spec, policies, model) + shadowed(model)))


def override_findings(changed, widenings) -> list[Finding]:
    """Findings for overrides of access-policy objects (``override_access.override_report``):
    ``override-widens`` when an override lets a caller in that the access rules do not (per
    destination and cluster), else ``override-changes-access``: the object is no longer the exact
    translation of the access rules, so its effect is the reviewer's to check."""
    out: list[Finding] = []
    wide = {(w.override, w.cluster) for w in widenings}
    for w in widenings:
        target = getattr(w, "target", "service")
        on = f" on {w.scope}" if getattr(w, "scope", "") else ""
        if target == "egress":
            host, port = w.destination
            what = (f"now lets {w.caller.text} out to {'any address' if host == '*' else host}"
                    f"{' on any port' if port == '0' else ':' + port}, which no egress rule allows; add an egress "
                    f"rule instead, or remove the override")
        elif target == "setting":
            what = (f"sets {w.destination[1]} of release {w.destination[0]} so that it admits {w.caller.text}; "
                    f"keep the rendered value, or remove the override")
        else:
            what = (f"now admits {w.caller.text} to {w.destination[0]}/{w.destination[1]}{on}, which no access rule "
                    f"admits; widen the access rules instead, or remove the override")
        out.append(Finding(f"mesh.overrides[{w.override}]", "override-widens",
                           f"in cluster {w.cluster}, {', '.join(w.objects)} {what}"))
    for i, cluster, objects in changed:
        if (i, cluster) not in wide:
            out.append(Finding(f"mesh.overrides[{i}]", "override-changes-access",
                               f"in cluster {cluster}, changes {', '.join(objects)}, so what it admits is no longer "
                               f"the exact translation of the access rules; check it by hand, or express the "
                               f"change as an access rule"))
    return sorted(set(out))


# ---------------------------------------------------------------------------------------------
# the graph model


@dataclass(frozen=True, order=True)
class Node:
    """A node: ``kind`` is ``service``, ``version`` (a split backend ``<service>-<version>``),
    ``external`` (an egress host), ``ingress`` (the gateway), ``identity`` (a source account no
    service runs as) or ``vm`` (a ``mesh.externalWorkloads`` entry: a machine outside Kubernetes, joined
    to its service by a ``member`` edge, or a caller by its own identity); ``group`` its namespace (None: drawn outside every namespace);
    ``unrestricted``: a service no Authorization guards (every caller is allowed)."""

    group: str | None
    id: str
    kind: str
    label: str
    unrestricted: bool = False


@dataclass(frozen=True, order=True)
class Edge:
    """A directed edge; ``kind``: ``allow`` (an access rule), ``ingress``, ``egress``, ``split``
    (dashed) or ``override`` (a caller an override lets in, red); ``lines``: what it carries,
    sorted (one route, port set or weight per line); ``metrics``: with the metrics overlay, the
    series that show its traffic (``telemetry.golden_signals.SeriesRef``, sorted; each drawn as a
    further line, :meth:`text_lines`)."""

    source: str
    target: str
    kind: str
    lines: tuple[str, ...]
    metrics: tuple = ()

    def text_lines(self) -> tuple[str, ...]:
        """What the diagrams write on the edge: its lines, then one per metrics reference."""
        return self.lines + tuple(m.line() for m in self.metrics)


@dataclass(frozen=True)
class Graph:
    """What is drawn: nodes and edges sorted, the findings as notes."""

    mesh: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    findings: tuple[Finding, ...] = ()
    counts: dict = field(default_factory=dict, compare=False)
    metrics: bool = False
    """Built with the metrics overlay (``build_graph(series=...)``): edges carry ``metrics``."""


def safe_id(kind: str, *parts: str) -> str:
    """A node id made of ``[A-Za-z0-9_]`` only (valid unquoted in Mermaid and DOT), injective:
    letters and digits stay, every other character becomes ``_xx`` (its hex code, ``_`` too)."""
    text = "/".join(parts)
    return kind + "_" + "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):02x}" for c in text)


def http_line(m: HTTPMatch, ports: tuple[int, ...]) -> str:
    """``GET,POST /path-regex [header: regex] :14001`` (``*``: any method; ``(any path)``)."""
    methods = "*" if m.any_method else ",".join(sorted(set(m.methods)))
    text = f"{methods} {m.path_regex if m.path_regex is not None else '(any path)'}"
    text += "".join(f" [{h}: {v}]" for h, v in m.headers)
    return f"{text} :{','.join(str(p) for p in ports)}"


def _share(weight: int, total: int) -> str:
    return f"{weight} ({round(weight * 100 / total, 1):g}%)" if total else str(weight)


def build_graph(spec, model: TrafficModel, findings=(), ingress_identity: tuple[str, str] | None = None,
                widenings=(), series=None) -> Graph:
    """The :class:`Graph` of ``spec`` and its ``model``; ``findings`` become notes.
    ``ingress_identity``: the gateway's ``(namespace, service_account)`` (``gateway.gateway_identity``),
    drawn as the ingress node when an access rule names it as a source. ``widenings``
    (:class:`~mesh_components.analysis.override_access.Widening`): callers an override lets in, drawn as
    ``override`` edges (from the caller's service, an identity, a namespace or an "any" node).
    ``series``: the metrics overlay, ``(authorization, source identity) -> SeriesRef | None``
    (``telemetry.golden_signals.edge_series``): each allow edge, and each ingress edge to the
    route's own service, carries what it returns for the authorizations drawn on it."""
    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str, str], set[str]] = {}
    metrics: dict[tuple[str, str, str], set] = {}
    guarded = {_dest(a) for a in model.authorizations}

    def service_node(ns: str, name: str) -> str:
        return safe_id("svc", ns, name)

    for s in spec.services:
        ports = ", ".join(f"{p.port}/{p.protocol}" for p in s.ports)
        open_ = (s.namespace, s.name) not in guarded
        label = f"{s.name}\n{ports}" + ("\nunrestricted: no access rule" if open_ else "")
        nodes.setdefault(service_node(s.namespace, s.name),
                         Node(s.namespace, service_node(s.namespace, s.name), "service", label, open_))
    by_account: dict[tuple[str, str], list[str]] = {}
    for s in spec.services:
        by_account.setdefault((s.namespace, s.account), []).append(service_node(s.namespace, s.name))
    from ..core import external_workloads as vms  # external workloads: nodes marked as VMs

    for w in spec.external_workloads:
        vid, sa = safe_id("vm", w.namespace, w.name), vms.account(spec, w)
        where = ", ".join(w.addresses) or "auto-registered"
        nodes[vid] = Node(w.namespace, vid, "vm", f"VM {w.name} (external workload)\n{where}\nruns as {sa}")
        if w.service:  # policed and selected as one of the service's pods
            edges.setdefault((vid, service_node(w.namespace, w.service), "member"), set()).add(
                f"backs {w.service}" + (f" {w.version}" if w.version else ""))
        else:
            by_account.setdefault((w.namespace, sa), []).append(vid)

    ingress_id = None
    if spec.ingress is not None:
        ing = spec.ingress
        ingress_id = safe_id("gw", ing.namespace, ing.name)
        nodes[ingress_id] = Node(ing.namespace, ingress_id, "ingress",
                                 f"ingress gateway {ing.name}\n" + "\n".join(sorted(ing.hosts)))
        for rt in ing.routes:
            lines = {f"{h}{rt.path_prefix} :{rt.port}" for h in ing.hosts}
            edges.setdefault((ingress_id, service_node(rt.namespace, rt.service), "ingress"), set()).update(lines)

    def callers(identity: tuple[str, str]) -> list[str]:
        if identity in by_account:
            return by_account[identity]
        if ingress_id is not None and identity == ingress_identity:
            return [ingress_id]
        nid = safe_id("id", *identity)
        nodes.setdefault(nid, Node(identity[0], nid, "identity", f"service account {identity[1]}"))
        return [nid]

    for a in model.authorizations:
        if a.origin.startswith(INGRESS_ORIGIN):
            if series is not None and ingress_id is not None:
                for identity in a.sources:
                    if identity == ingress_identity and (ref := series(a, identity)) is not None:
                        metrics.setdefault((ingress_id, service_node(*_dest(a)), "ingress"), set()).add(ref)
            continue  # drawn from spec.ingress, with its hosts
        lines = set()
        ports = http_ports_of(a)
        if ports:
            lines |= {http_line(m, ports) for _, m in a.http}
        if a.tcp_ports is not None:
            lines.add("tcp:" + ",".join(str(p) for p in tcp_ports_of(a)))
        if not lines:
            continue
        target = service_node(*_dest(a))
        for identity in a.sources:
            ref = series(a, identity) if series is not None else None
            for src in callers(identity):
                edges.setdefault((src, target, "allow"), set()).update(lines)
                if ref is not None:
                    metrics.setdefault((src, target, "allow"), set()).add(ref)

    for w in widenings:
        c = w.caller
        if c.kind == "identity":
            sources = callers(tuple(c.value))
        else:
            nid = safe_id("any", c.kind, str(c.value))
            label = f"any workload of namespace {c.value}" if c.kind == "namespace" else f"callers matching {c.text}"
            nodes.setdefault(nid, Node(c.value if c.kind == "namespace" else None, nid, "identity", label))
            sources = [nid]
        line = f"mesh.overrides[{w.override}] in {w.cluster}: {c.text} ({', '.join(w.objects)})"
        target = getattr(w, "target", "service")
        if target == "setting":
            continue  # a mesh-wide switch: a finding, no edge
        if target == "egress":
            host, port = w.destination
            dest = safe_id("ext", host)
            nodes.setdefault(dest, Node(None, dest, "external", "any address" if host == "*" else host))
            line += f" port {'any' if port == '0' else port}"
        else:
            dest = service_node(*w.destination)
        for src in sources:
            edges.setdefault((src, dest, "override"), set()).add(line)

    for rule in spec.egress:
        for host in rule.hosts:
            hid = safe_id("ext", host)
            nodes.setdefault(hid, Node(None, hid, "external", host))
            for ref in rule.sources:
                edges.setdefault((service_node(ref.namespace, ref.service), hid, "egress"), set()).update(
                    f"{p.protocol}:{p.port}" for p in rule.ports)

    versions = {(s.namespace, f"{s.name}-{v.name}"): s for s in spec.services for v in s.versions}
    for r in model.routes:
        total = sum(w for _, w in r.backends)
        for backend, weight in r.backends:
            if (r.namespace, backend) in versions:
                bid = safe_id("ver", r.namespace, backend)
                nodes.setdefault(bid, Node(r.namespace, bid, "version", backend))
            else:
                bid = service_node(r.namespace, backend)
            edges.setdefault((service_node(r.namespace, r.service), bid, "split"), set()).add(_share(weight, total))

    edge_list = tuple(sorted(Edge(s, t, k, tuple(sorted(lines)), tuple(sorted(metrics.get((s, t, k), ()))))
                             for (s, t, k), lines in edges.items()))
    counts = {"services": sum(1 for n in nodes.values() if n.kind == "service"),
              "allowed calls": sum(1 for e in edge_list if e.kind == "allow"),
              "ingress routes": sum(1 for e in edge_list if e.kind == "ingress"),
              "egress edges": sum(1 for e in edge_list if e.kind == "egress"),
              "split backends": sum(1 for e in edge_list if e.kind == "split")}
    if widenings:
        counts["override edges"] = sum(1 for e in edge_list if e.kind == "override")
    return Graph(spec.name, tuple(sorted(nodes.values(), key=lambda n: (n.group or "", n.id))), edge_list,
                 tuple(sorted(findings)), counts, series is not None)


# ---------------------------------------------------------------------------------------------
# Mermaid


_MERMAID_ENTITIES = {'"': "#quot;", "#": "#35;", "&": "#amp;", "<": "#lt;", ">": "#gt;", "|": "#124;",
                     "`": "#96;"}
_MERMAID_SHAPES = {"service": '["{}"]', "version": '(["{}"])', "external": '>"{}"]', "ingress": '{{{{"{}"}}}}',
                   "identity": '(("{}"))', "vm": '[/"{}"/]'}
_MERMAID_ARROWS = {"allow": "-->", "ingress": "==>", "egress": "-->", "split": "-.->", "override": "--x",
                   "member": "-.-"}


def mermaid_text(text: str) -> str:
    """``text`` for a double-quoted Mermaid label: the characters Mermaid or HTML would read
    (``" # & < > |``, backtick, and a ``%`` next to another ``%``, so no ``%%{...}%%`` directive
    can form) become entity codes, newlines become ``<br/>``."""
    text = "".join(_MERMAID_ENTITIES.get(c, c) for c in text)
    return re.sub(r"%(?=%)|(?<=%)%", "#37;", text).replace("\r", "").replace("\n", "<br/>")


def _comment_text(text: str) -> str:
    """One line, and never ``%%`` (Mermaid reads ``%%{...}%%`` as a directive anywhere)."""
    text = " ".join(text.split())
    while "%%" in text:
        text = text.replace("%%", "% %")
    return text


def render_mermaid(graph: Graph) -> str:
    """A Mermaid ``flowchart LR`` (renders in GitHub Markdown): namespaces as subgraphs, quoted
    labels, ``[A-Za-z0-9_]`` ids; findings as ``%%`` comment lines."""
    out = ["flowchart LR",
           f"%% {_comment_text(graph.mesh)}: who may talk to whom (python -m mesh_components graph)"]
    out += [f"%% warning: {_comment_text(f.line())}" for f in graph.findings]
    groups: dict[str | None, list[Node]] = {}
    for n in graph.nodes:
        groups.setdefault(n.group, []).append(n)
    for group in sorted(g for g in groups if g is not None):
        out.append(f'    subgraph {safe_id("ns", group)}["{mermaid_text("namespace " + group)}"]')
        out += [f"        {n.id}{_MERMAID_SHAPES[n.kind].format(mermaid_text(n.label))}" for n in groups[group]]
        out.append("    end")
    out += [f"    {n.id}{_MERMAID_SHAPES[n.kind].format(mermaid_text(n.label))}" for n in groups.get(None, [])]
    for e in graph.edges:
        text = mermaid_text(chr(10).join(e.text_lines()))
        out.append(f'    {e.source} {_MERMAID_ARROWS[e.kind]}|"{text}"| {e.target}')
    classes = {"unrestricted": [n.id for n in graph.nodes if n.unrestricted],
               "external": [n.id for n in graph.nodes if n.kind in ("external", "vm")],
               "gateway": [n.id for n in graph.nodes if n.kind == "ingress"]}
    styles = {"unrestricted": "stroke-dasharray: 5 3", "external": "fill:#fff4e0,stroke:#b26b00",
              "gateway": "fill:#e8f0ff,stroke:#2457c5"}
    for name in sorted(classes):
        if classes[name]:
            out.append(f"    classDef {name} {styles[name]}")
            out.append(f"    class {','.join(classes[name])} {name}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Graphviz DOT


_DOT_SHAPES = {"service": "box", "version": "box", "external": "cds", "ingress": "hexagon", "identity": "ellipse",
               "vm": "component"}


def dot_string(text: str) -> str:
    """``text`` as a double-quoted DOT string: ``\\`` and ``"`` escaped, newlines as ``\\n``
    (so a regex's ``\\.`` prints as written and never ends the string)."""
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{body}"'


def render_dot(graph: Graph) -> str:
    """A Graphviz ``digraph`` (left to right): namespaces as ``cluster_`` subgraphs, every id and
    label quoted; findings as ``//`` comment lines."""
    out = [f"// {_comment_text(graph.mesh)}: who may talk to whom (python -m mesh_components graph)"]
    out += [f"// warning: {_comment_text(f.line())}" for f in graph.findings]
    out += [f"digraph {dot_string(graph.mesh)} {{",
            '    graph [rankdir=LR, fontname="Helvetica", fontsize=11];',
            '    node [shape=box, fontname="Helvetica", fontsize=10];',
            '    edge [fontname="Helvetica", fontsize=9];']

    def node(n: Node, indent: str) -> str:
        attrs = [f"label={dot_string(n.label)}", f"shape={_DOT_SHAPES[n.kind]}"]
        if n.kind == "version":
            attrs.append('style="rounded"')
        if n.unrestricted:
            attrs.append('style="dashed"')
        return f"{indent}{dot_string(n.id)} [{', '.join(attrs)}];"

    groups: dict[str | None, list[Node]] = {}
    for n in graph.nodes:
        groups.setdefault(n.group, []).append(n)
    for group in sorted(g for g in groups if g is not None):
        out.append(f"    subgraph {dot_string(safe_id('cluster', group))} {{")
        out.append(f"        label={dot_string('namespace ' + group)};")
        out += [node(n, "        ") for n in groups[group]]
        out.append("    }")
    out += [node(n, "    ") for n in groups.get(None, [])]
    for e in graph.edges:
        attrs = [f"label={dot_string(chr(10).join(e.text_lines()))}"]
        if e.kind == "split":
            attrs.append("style=dashed")
        elif e.kind == "member":
            attrs.append("style=dotted, arrowhead=none")
        elif e.kind == "ingress":
            attrs.append("penwidth=2")
        elif e.kind == "egress":
            attrs.append('color="#b26b00"')
        elif e.kind == "override":
            attrs.append('color="#c00000", style=bold')
        out.append(f"    {dot_string(e.source)} -> {dot_string(e.target)} [{', '.join(attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"


RENDERERS = {"mermaid": render_mermaid, "dot": render_dot}
