"""What the rendered objects and Helm values of one cluster let leave the mesh, and the
security-relevant Helm settings: read back from the objects *after* ``mesh.overrides``, so that
``override_access.override_report`` can tell an override that opens egress (or flips a
mesh-wide switch) from one that does not (issue 10, review point 1). Pure: no I/O, never raises
on odd input (an override can put anything in an object).

An :class:`Exit` is "``caller`` may open ``port`` (0: any) on ``host`` (a name, a ``*.`` pattern, a
CIDR, or ``*``: any address)". Per mesh, following upstream at the pinned versions:

- Istio, effective ``outboundTrafficPolicy``: istiod applies a ``SHARED_MESH_CONFIG`` map (named by
  its ``env``; earlier releases of this project did, this one sets Helm ``meshConfig`` only) first
  and its own ``istio`` ConfigMap (Helm ``meshConfig``) over it (istio 1.30.3
  ``pilot/pkg/bootstrap/mesh.go:130-136`` "User configuration is applied first",
  ``pkg/config/mesh/meshwatcher/collection.go:44-62``); the default is ``ALLOW_ANY``
  (``pkg/config/mesh/mesh.go:83``); a ``Sidecar``'s own ``outboundTrafficPolicy`` wins for the
  pods it selects. ``ALLOW_ANY`` lets a sidecar reach any address.
- Istio sidecars: a ServiceEntry host is reachable where the entry is exported and no ``Sidecar``
  selecting the pod hides it; a ``mesh`` VirtualService route to the egress gateway hands the
  decision to the gateway, where ALLOW AuthorizationPolicies selecting the gateway pods admit
  callers per host and port (any rule of any policy; none: everyone,
  https://istio.io/latest/docs/reference/config/security/authorization-policy/).
- Istio ambient: ztunnel has no registry-only mode (``egress.ambient_egress_fences``), so the
  Kubernetes NetworkPolicies decide what leaves a pod: no egress policy selecting it, a rule
  without ``to``, or an ``ipBlock`` is an exit; ServiceEntries bound to a waypoint are reached
  through it, where the ALLOW policies targeting the entry or the waypoint Gateway decide (istio
  1.30.3 ``pilot/pkg/model/policyattachment.go:165-197``).
- Linkerd: the EgressNetworks of the client's namespace apply, or, when it has none, those of the
  global egress namespace (linkerd2 edge-26.8.3
  ``policy-controller/k8s/index/src/outbound/index/egress_network.rs:61-78``; chart value
  ``egress.globalEgressNetworkNamespace``, ``charts/linkerd-control-plane/values.yaml:746``);
  none at all, ``trafficPolicy: Allow`` or ``networks`` that leave addresses out (an address no
  EgressNetwork matches is not governed) are exits to any address; a ``Deny`` network is opened
  only by the routes attached to it (hostnames, port).
- OSM: ``osm.enableEgress`` (chart default ``true``, ``charts/osm/values.yaml:261``) lets every
  pod out (osm v1.2.4 ``pkg/envoy/lds/listener.go:56-67``: a default passthrough filter chain
  to the original destination); otherwise ``Egress`` policies open hosts / IP ranges and ports to the
  service accounts they name.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Iterable, Mapping

import yaml

from ..core.egress import LINKERD_GLOBAL_EGRESS_NAMESPACE as LINKERD_GLOBAL_EGRESS_DEFAULT  # values.yaml:746

ANYWHERE = "*"
ANY_PORT = 0


@dataclass(frozen=True, order=True)
class Exit:
    """``caller`` (an ``override_access.Caller``) may reach ``host`` on ``port`` (0: any port)."""

    caller: Any
    host: str
    port: int


# --- tolerant readers ----------------------------------------------------------------------------


def _d(x: Any) -> Mapping:
    return x if isinstance(x, Mapping) else {}


def _l(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else []


def _get(d: Any, *path: str, default: Any = None) -> Any:
    for p in path:
        if not isinstance(d, Mapping) or p not in d:
            return default
        d = d[p]
    return d


def _gk(obj: Mapping) -> tuple[str, str]:
    return (str(obj.get("apiVersion", "")).rpartition("/")[0], str(obj.get("kind", "")))


def _ns(obj: Mapping) -> Any:
    return _d(obj.get("metadata")).get("namespace")


def _name(obj: Mapping) -> Any:
    return _d(obj.get("metadata")).get("name")


def _of(objects: Iterable[Mapping], group: str, kind: str) -> list[Mapping]:
    return [o for o in objects if isinstance(o, Mapping) and _gk(o) == (group, kind)]


def _port(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return ANY_PORT  # a named port or garbage: any port, so nothing is missed


def _selects(selector: Any, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector; ``matchExpressions`` (never rendered) count as not selecting,
    which can only add exits (a pod no egress policy selects is unfenced)."""
    sel = _d(selector)
    if sel.get("matchExpressions"):
        return False
    return all(labels.get(k) == v for k, v in _d(sel.get("matchLabels")).items())


def release_values(releases: Iterable, chart: str) -> list[Mapping]:
    """The values of every release of ``chart`` (releases are ``render.HelmRelease``-like)."""
    return [_d(getattr(r, "values", None)) for r in releases if getattr(r, "chart", None) == chart]


# --- workloads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Workload:
    namespace: str
    labels: tuple[tuple[str, str], ...]
    caller: Any


def _workloads(spec) -> list[_Workload]:
    """Every spec service (its identity), plus, per application namespace, the other pods there
    (labels unknown: only namespace-wide selectors pick them), as the namespace."""
    from .override_access import Caller

    out = [_Workload(s.namespace, tuple(sorted(s.pod_labels().items())),
                     Caller("identity", (s.namespace, s.account), f"identity {s.namespace}/{s.account}"))
           for s in spec.services]
    namespaces = sorted({n.name for n in spec.namespaces} | {s.namespace for s in spec.services})
    out += [_Workload(ns, (), Caller("namespace", ns, f"other workloads of namespace {ns}")) for ns in namespaces]
    return out


def _any(text: str):
    from .override_access import Caller

    return Caller("any", "egress", text)


# --- Istio -----------------------------------------------------------------------------------------


def _mesh_mode(text: Any) -> str | None:
    try:
        mesh = yaml.safe_load(str(text)) if text is not None else None
    except yaml.YAMLError:
        return "ALLOW_ANY"  # istiod would refuse the map; never assume it restricts anything
    return _get(mesh, "outboundTrafficPolicy", "mode") if isinstance(mesh, Mapping) else None


def istio_outbound_mode(objects: list[Mapping], releases: Iterable) -> str:
    """The effective mesh-wide ``outboundTrafficPolicy.mode``: Helm ``meshConfig`` over the
    ``SHARED_MESH_CONFIG`` ConfigMap over the default ``ALLOW_ANY`` (module docstring)."""
    mode = "ALLOW_ANY"
    for values in release_values(releases, "istiod"):
        shared = _get(values, "env", "SHARED_MESH_CONFIG") or _get(values, "pilot", "env", "SHARED_MESH_CONFIG")
        for cm in _of(objects, "", "ConfigMap"):
            if shared and _name(cm) == shared:
                mode = _mesh_mode(_get(cm, "data", "mesh")) or mode
        mode = _get(values, "meshConfig", "outboundTrafficPolicy", "mode") or mode
    return str(mode)


def _sidecars_for(objects: list[Mapping], w: _Workload) -> list[Mapping]:
    """The Sidecar that applies to ``w``: one with a matching ``workloadSelector``, else the
    namespace's selector-less one (https://istio.io/latest/docs/reference/config/networking/sidecar/)."""
    labels = dict(w.labels)
    own = [s for s in _of(objects, "networking.istio.io", "Sidecar") if _ns(s) == w.namespace]
    selected = [s for s in own if _get(s, "spec", "workloadSelector")
                and all(labels.get(k) == v for k, v in _d(_get(s, "spec", "workloadSelector", "labels")).items())]
    return selected or [s for s in own if not _get(s, "spec", "workloadSelector")]


def _visible(se: Mapping, ns: str) -> bool:
    export = _l(_get(se, "spec", "exportTo")) or ["*"]
    return "*" in export or ns in export or ("." in export and ns == _ns(se))


def _hidden(sidecars: list[Mapping], se_ns: str, host: str) -> bool:
    for sc in sidecars:
        egress = _l(_get(sc, "spec", "egress"))
        if not egress:
            continue
        hosts = [str(h) for e in egress for h in _l(_d(e).get("hosts"))]
        if not any("/" in h and h.split("/", 1)[0] in ("*", ".", se_ns) and
                   fnmatchcase(host, h.split("/", 1)[1]) for h in hosts):
            return True
    return False


def _entry_hosts(se: Mapping) -> list[str]:
    """What an entry lets a caller reach: its hosts, plus its endpoint addresses and, with
    resolution NONE, its ``addresses`` (traffic goes to the address the caller dialled)."""
    spec = _d(se.get("spec"))
    out = [str(h) for h in _l(spec.get("hosts"))]
    out += [str(_d(e).get("address")) for e in _l(spec.get("endpoints")) if _d(e).get("address")]
    if spec.get("resolution") == "NONE":
        out += [str(a) for a in _l(spec.get("addresses"))]
    return out


def _entry_ports(se: Mapping) -> list[int]:
    return [_port(_d(p).get("number")) for p in _l(_get(se, "spec", "ports"))] or [ANY_PORT]


def _rule_matches(rule: Mapping, host: str, port: int) -> bool:
    """An ALLOW rule's ``to`` / ``when`` admit a request for ``host`` on ``port`` (absent: any)."""
    ops = [_d(_d(t).get("operation")) for t in _l(rule.get("to"))]
    if ops and not any(
            (not op.get("ports") or str(port) in [str(p) for p in _l(op.get("ports"))] or port == ANY_PORT)
            and (not op.get("hosts") or any(fnmatchcase(host, str(h).split(":")[0]) or fnmatchcase(host, str(h))
                                            for h in _l(op.get("hosts"))))
            for op in ops):
        return False
    for cond in _l(rule.get("when")):
        if _d(cond).get("key") == "connection.sni" and not any(fnmatchcase(host, str(v))
                                                              for v in _l(_d(cond).get("values"))):
            return False
    return True


def _allowed_callers(policies: list[Mapping], td: str, host: str, port: int, where: str) -> set:
    """Callers the ALLOW ``policies`` admit for ``host``:``port``; every caller when none applies."""
    from .override_access import istio_rule_callers

    allow = [p for p in policies if (_get(p, "spec", "action") or "ALLOW") == "ALLOW"]
    if not allow:
        return {_any(f"every caller ({where}: no ALLOW policy)")}
    out: set = set()
    for p in allow:
        for rule in _l(_get(p, "spec", "rules")):
            if isinstance(rule, Mapping) and _rule_matches(rule, host, port):
                out |= istio_rule_callers(rule, td, f"{_gk(p)[1]} {_ns(p)}/{_name(p)}")
    return out


def _mesh_route(vs: Mapping, host: str, port: int) -> tuple[bool, Any]:
    """``(found, destination)`` of the first ``mesh`` route of ``vs`` for ``host``:``port``."""
    spec = _d(vs.get("spec"))
    gateways = _l(spec.get("gateways")) or ["mesh"]
    if "mesh" not in gateways:
        return False, None
    for kind in ("http", "tls", "tcp"):
        for r in _l(spec.get(kind)):
            matches = _l(_d(r).get("match")) or [{}]
            for m in matches:
                m = _d(m)
                if "mesh" not in (_l(m.get("gateways")) or gateways):
                    continue
                if m.get("port") not in (None, port) or (m.get("sniHosts") and host not in _l(m.get("sniHosts"))):
                    continue
                dests = [_d(_d(x).get("destination")) for x in _l(_d(r).get("route"))]
                return True, dests
    return False, None


def _gateway_exits(spec, objects: list[Mapping]) -> set[Exit]:
    """Exits through the Istio egress gateway: per server host and port of an Istio Gateway on the
    gateway pods, the host its gateway-bound VirtualService routes to, for the callers the
    gateway's ALLOW policies admit."""
    from ..core.egress import EGRESS_GATEWAY_LABELS, EGRESS_NAMESPACE

    labels = dict(EGRESS_GATEWAY_LABELS)
    policies = [p for p in _of(objects, "security.istio.io", "AuthorizationPolicy")
                if _ns(p) == EGRESS_NAMESPACE and _get(p, "spec", "selector")
                and _selects(_get(p, "spec", "selector"), labels)]
    policies += [p for p in _of(objects, "security.istio.io", "AuthorizationPolicy")
                 if _ns(p) in (EGRESS_NAMESPACE, "istio-system") and not _get(p, "spec", "selector")
                 and not _get(p, "spec", "targetRefs") and not _get(p, "spec", "targetRef")]
    out: set[Exit] = set()
    for gw in _of(objects, "networking.istio.io", "Gateway"):
        sel = _d(_get(gw, "spec", "selector"))
        if not sel or not all(labels.get(k) == v for k, v in sel.items()):
            continue
        refs = {f"{_ns(gw)}/{_name(gw)}", str(_name(gw))}
        for server in _l(_get(gw, "spec", "servers")):
            port = _port(_get(server, "port", "number"))
            for h in _l(_d(server).get("hosts")):
                host = str(h).split("/", 1)[-1]
                for vs in _of(objects, "networking.istio.io", "VirtualService"):
                    if not refs & set(map(str, _l(_get(vs, "spec", "gateways")))):
                        continue
                    if not any(fnmatchcase(str(x), host) or fnmatchcase(host, str(x))
                               for x in _l(_get(vs, "spec", "hosts"))):
                        continue
                    for kind in ("http", "tls", "tcp"):
                        for r in _l(_get(vs, "spec", kind)):
                            ms = [_d(m) for m in _l(_d(r).get("match"))] or [{}]
                            if not any(m.get("port") in (None, port) and
                                       (not m.get("gateways") or refs & set(map(str, _l(m.get("gateways")))))
                                       for m in ms):
                                continue
                            for dest in (_d(_d(x).get("destination")) for x in _l(_d(r).get("route"))):
                                target = str(dest.get("host") or host)
                                callers = _allowed_callers(policies, spec.trust_domain, host, port,
                                                           f"egress gateway {_ns(gw)}/{_name(gw)}")
                                out |= {Exit(c, target, port) for c in callers}
    return out


def _istio_sidecar_exits(spec, objects: list[Mapping], releases: Iterable) -> set[Exit]:
    from ..core.egress import EGRESS_GATEWAY

    mesh_mode = istio_outbound_mode(objects, releases)
    entries = _of(objects, "networking.istio.io", "ServiceEntry")
    services = _of(objects, "networking.istio.io", "VirtualService")
    out: set[Exit] = set()
    for w in _workloads(spec):
        sidecars = _sidecars_for(objects, w)
        mode = next((_get(s, "spec", "outboundTrafficPolicy", "mode") for s in sidecars
                     if _get(s, "spec", "outboundTrafficPolicy", "mode")), mesh_mode)
        if mode != "REGISTRY_ONLY":
            out.add(Exit(w.caller, ANYWHERE, ANY_PORT))
        for se in entries:
            if not _visible(se, w.namespace):
                continue
            for h in _entry_hosts(se):
                if _hidden(sidecars, str(_ns(se)), h):
                    continue
                for port in _entry_ports(se):
                    routes = [r for r in (_mesh_route(vs, h, port) for vs in services
                                          if _visible(vs, w.namespace) and h in map(str, _l(_get(vs, "spec", "hosts"))))
                              if r[0]]
                    if not routes:
                        out.add(Exit(w.caller, h, port))
                        continue
                    for dest in routes[0][1]:
                        target = str(dest.get("host") or h)
                        if EGRESS_GATEWAY not in target:  # routed around the gateway
                            out.add(Exit(w.caller, target, _port(_get(dest, "port", "number")) or port))
    return out | _gateway_exits(spec, objects)


def _np_exits(spec, objects: list[Mapping], w: _Workload) -> set[Exit]:
    """What the NetworkPolicies selecting ``w`` let out of the cluster."""
    labels = dict(w.labels)
    pols = [p for p in _of(objects, "networking.k8s.io", "NetworkPolicy") if _ns(p) == w.namespace
            and _selects(_get(p, "spec", "podSelector"), labels)
            and "Egress" in (_l(_get(p, "spec", "policyTypes"))
                             or (["Ingress"] + (["Egress"] if "egress" in _d(p.get("spec")) else [])))]
    if not pols:
        return {Exit(w.caller, ANYWHERE, ANY_PORT)}
    mesh_gateways = {f"{a}/{ipaddress.ip_address(a).max_prefixlen}" for c in spec.clusters if c.east_west_gateway
                     for a in c.east_west_gateway.addresses}
    out: set[Exit] = set()
    for p in pols:
        for rule in _l(_get(p, "spec", "egress")):
            rule = _d(rule)
            ports = [ANY_PORT if _d(x).get("endPort") else _port(_d(x).get("port", ANY_PORT))
                     for x in _l(rule.get("ports"))] or [ANY_PORT]
            for peer in _l(rule.get("to")) or [{}]:
                peer = _d(peer)
                if peer and "ipBlock" not in peer:
                    continue  # pods of this cluster
                cidr = str(_get(peer, "ipBlock", "cidr")) if peer else ANYWHERE
                try:
                    if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
                        cidr = ANYWHERE
                except ValueError:
                    cidr = ANYWHERE if not peer else cidr
                for port in ports:
                    if cidr in mesh_gateways and port == 15008:
                        continue  # HBONE to another network's east-west gateway: mesh traffic
                    out.add(Exit(w.caller, cidr, port))
    return out


def _istio_ambient_exits(spec, objects: list[Mapping]) -> set[Exit]:
    out: set[Exit] = set()
    for w in _workloads(spec):
        out |= _np_exits(spec, objects, w)
    namespaces = {_name(n): _d(_get(n, "metadata", "labels")) for n in _of(objects, "", "Namespace")}
    policies = _of(objects, "security.istio.io", "AuthorizationPolicy")
    for se in _of(objects, "networking.istio.io", "ServiceEntry"):
        ns = _ns(se)
        wp = _d(_get(se, "metadata", "labels")).get("istio.io/use-waypoint") or \
            _d(namespaces.get(ns)).get("istio.io/use-waypoint")
        if not wp or wp == "none":
            continue  # no waypoint: ztunnel sends it on, and the NetworkPolicies above decide
        refs = [("networking.istio.io", "ServiceEntry", _name(se)), ("gateway.networking.k8s.io", "Gateway", wp)]
        attached = [p for p in policies if _ns(p) == ns and any(
            (_d(r).get("group", ""), _d(r).get("kind"), _d(r).get("name")) in refs
            for r in _l(_get(p, "spec", "targetRefs")) + ([_get(p, "spec", "targetRef")] if _get(p, "spec", "targetRef") else []))]
        for h in _entry_hosts(se):
            if h.startswith("*") and _get(se, "spec", "resolution") != "DYNAMIC_DNS":
                continue  # no address for a wildcard otherwise (ipallocate.go:361-363): passed through
            for port in _entry_ports(se):
                out |= {Exit(c, h, port) for c in _allowed_callers(attached, spec.trust_domain, h, port,
                                                                     f"waypoint {ns}/{wp}")}
    return out


# --- Linkerd ---------------------------------------------------------------------------------------

_EGRESS_ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute")


def linkerd_global_egress_namespace(releases: Iterable) -> str:
    """The effective ``egress.globalEgressNetworkNamespace`` of the linkerd-control-plane release."""
    for values in release_values(releases, "linkerd-control-plane"):
        ns = _get(values, "egress", "globalEgressNetworkNamespace")
        if ns:
            return str(ns)
    return LINKERD_GLOBAL_EGRESS_DEFAULT


def _covers_every_address(net: Mapping) -> bool:
    """Without ``networks`` an EgressNetwork covers every address outside the cluster networks
    (egress_network.rs:35-48); with them, every address only if 0.0.0.0/0 and ::/0 are listed
    without ``except`` (an address no network matches is not governed)."""
    nets = _get(net, "spec", "networks")
    if nets is None:
        return True
    full = set()
    for n in _l(nets):
        try:
            cidr = ipaddress.ip_network(str(_d(n).get("cidr")), strict=False)
        except ValueError:
            continue
        if cidr.prefixlen == 0 and not _d(n).get("except"):
            full.add(cidr.version)
    return full == {4, 6}


def _linkerd_exits(spec, objects: list[Mapping], releases: Iterable) -> set[Exit]:
    from .override_access import Caller

    global_ns = linkerd_global_egress_namespace(releases)
    nets = _of(objects, "policy.linkerd.io", "EgressNetwork")
    routes = [o for o in objects if isinstance(o, Mapping) and _gk(o)[1] in _EGRESS_ROUTE_KINDS]
    out: set[Exit] = set()
    namespaces = sorted({n.name for n in spec.namespaces} | {s.namespace for s in spec.services})
    for ns in namespaces:
        caller = Caller("namespace", ns, f"workloads of namespace {ns}")
        own = [n for n in nets if _ns(n) == ns]
        effective = own or [n for n in nets if _ns(n) == global_ns]
        if not effective:
            out.add(Exit(caller, ANYWHERE, ANY_PORT))
            continue
        for net in effective:
            if _get(net, "spec", "trafficPolicy") != "Deny" or not _covers_every_address(net):
                out.add(Exit(caller, ANYWHERE, ANY_PORT))
            for r in routes:
                for ref in _l(_get(r, "spec", "parentRefs")):
                    ref = _d(ref)
                    if ref.get("kind") == "EgressNetwork" and ref.get("name") == _name(net) and \
                            (ref.get("namespace") or _ns(r)) == _ns(net):
                        hosts = [str(h) for h in _l(_get(r, "spec", "hostnames"))] or [ANYWHERE]
                        out |= {Exit(caller, h, _port(ref.get("port", ANY_PORT))) for h in hosts}
    return out


# --- OSM -------------------------------------------------------------------------------------------

OSM_DEFAULTS = {"enablePermissiveTrafficPolicy": True, "enableEgress": True}
"""Chart defaults of ``osm.*`` (openservicemesh/osm v1.2.4 charts/osm/values.yaml:258, 261)."""


def osm_setting(releases: Iterable, key: str) -> Any:
    """The effective ``osm.<key>`` of the osm release (chart default :data:`OSM_DEFAULTS`)."""
    for values in release_values(releases, "osm"):
        value = _get(values, "osm", key)
        return OSM_DEFAULTS.get(key) if value is None else value
    return OSM_DEFAULTS.get(key)


def _osm_exits(spec, objects: list[Mapping], releases: Iterable) -> set[Exit]:
    from .override_access import Caller

    out: set[Exit] = set()
    if osm_setting(releases, "enableEgress") is not False:
        out |= {Exit(w.caller, ANYWHERE, ANY_PORT) for w in _workloads(spec)}
    for eg in _of(objects, "policy.openservicemesh.io", "Egress"):
        body = _d(eg.get("spec"))
        hosts = [str(h) for h in _l(body.get("hosts"))] + [str(a) for a in _l(body.get("ipAddresses"))]
        ports = [_port(_d(p).get("number")) for p in _l(body.get("ports"))] or [ANY_PORT]
        for src in _l(body.get("sources")):
            src = _d(src)
            who = Caller("identity", (src.get("namespace"), src.get("name")),
                         f"ServiceAccount {src.get('namespace')}/{src.get('name')}") \
                if src.get("kind") == "ServiceAccount" else _any(f"sources {dict(src)}")
            out |= {Exit(who, h, p) for h in hosts or [ANYWHERE] for p in ports}
    return out


def exits(spec, objects: list[Mapping], releases: Iterable = ()) -> set[Exit]:
    """Every :class:`Exit` the objects and releases of one cluster allow (module docstring)."""
    kind = spec.backend.type
    if kind == "istio":
        if spec.backend.istio.data_plane == "ambient":
            return _istio_ambient_exits(spec, objects)
        return _istio_sidecar_exits(spec, objects, releases)
    if kind == "linkerd":
        return _linkerd_exits(spec, objects, releases)
    return _osm_exits(spec, objects, releases)


def _host_covers(wide: str, narrow: str) -> bool:
    if wide in (ANYWHERE, narrow):
        return True
    try:
        return ipaddress.ip_network(narrow, strict=False).subnet_of(ipaddress.ip_network(wide, strict=False))
    except (ValueError, TypeError):
        pass
    return wide.startswith("*.") and narrow != ANYWHERE and fnmatchcase(narrow, wide)


def uncovered(after: set[Exit], before: set[Exit], caller_covered) -> list[Exit]:
    """The exits of ``after`` no exit of ``before`` covers (host, port and caller;
    ``caller_covered(c, {callers})`` is ``override_access._caller_covered``)."""
    out = []
    for e in sorted(after, key=lambda x: (repr(x.caller), x.host, x.port)):
        wider = {b.caller for b in before if _host_covers(b.host, e.host) and b.port in (ANY_PORT, e.port)}
        if not caller_covered(e.caller, wider):
            out.append(e)
    return out


# --- Helm settings that decide access ----------------------------------------------------------

SECURITY_VALUES: dict[str, dict[str, Any]] = {
    "osm": {"osm.enablePermissiveTrafficPolicy": True, "osm.enableEgress": True},
    "istiod": {"meshConfig.outboundTrafficPolicy": None, "meshConfig.rootNamespace": None,
               "env.SHARED_MESH_CONFIG": None},
    "linkerd-control-plane": {"proxy.defaultInboundPolicy": "all-unauthenticated",
                              "policyController.probeNetworks": ["0.0.0.0/0", "::/0"],
                              "egress.globalEgressNetworkNamespace": LINKERD_GLOBAL_EGRESS_DEFAULT},
    "cni": {"ambient.dnsCapture": True, "ambient.enabled": None},
}
"""Per chart, the values (dotted paths, chart defaults) that decide who may call whom or what may
leave: osm charts/osm/values.yaml:258,261; istio manifests/charts/istiod/values.yaml
(``meshConfig``, merged over a ``SHARED_MESH_CONFIG`` map where ``env`` names one: the stack sets
everything in ``meshConfig`` and names none, ``istio.mesh_config``); linkerd charts/linkerd-control-plane/
values.yaml:96-98 (probeNetworks), 251 (defaultInboundPolicy), 746; istio
manifests/charts/istio-cni/values.yaml:70 (dnsCapture). An override that changes one of them is
an access change; :func:`setting_widenings` says which changes widen."""


def security_values(release) -> dict[str, Any]:
    """The effective :data:`SECURITY_VALUES` of one release (chart defaults filled in)."""
    keys = SECURITY_VALUES.get(getattr(release, "chart", None), {})
    values = _d(getattr(release, "values", None))
    return {k: _get(values, *k.split("."), default=default) for k, default in keys.items()}


def _networks(value: Any) -> list:
    out = []
    for v in _l(value) if not isinstance(value, str) else value.split(","):
        try:
            out.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            out.append(ipaddress.ip_network("0.0.0.0/0"))
            out.append(ipaddress.ip_network("::/0"))
    return out


def setting_widenings(before, after) -> list[tuple[str, str]]:
    """``(key, text)`` for each setting of release ``after`` that admits more than in ``before``
    and that the object-level reading (access callers, :func:`exits`) does not already judge:
    Linkerd ``policyController.probeNetworks`` (the networks the policy controller authorizes
    unauthenticated probe requests from, index.rs:2243-2298), listed wider."""
    if getattr(after, "chart", None) != "linkerd-control-plane":
        return []
    old = _networks(security_values(before)["policyController.probeNetworks"])
    new = _networks(security_values(after)["policyController.probeNetworks"])
    wider = [n for n in new if not any(n.version == o.version and n.subnet_of(o) for o in old)]
    return [("policyController.probeNetworks", f"unauthenticated probe requests from {', '.join(map(str, wider))}")] \
        if wider else []

