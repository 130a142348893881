"""What ``mesh.overrides`` do to access policy: the rendered objects after the overrides, read back
and compared with the same render without them (issue 10, point 13). Pure: no I/O.

The translators are exact or refuse, so without overrides the objects admit what the traffic
model says. An override is a JSON Patch on those objects, applied after translation
(``render.apply_overrides``): it can widen access (``principals: ['*']``) without any translator
seeing it. :func:`override_report` finds every override that changes an access-policy object and
reads, per destination service and cluster, which callers the objects admit before and after:

- Istio ``AuthorizationPolicy`` (ALLOW): ``from[].source`` principals ``<td>/ns/<ns>/sa/<sa>``,
  namespaces, other fields; a rule without ``from`` or with an empty source admits every source;
  a workload no ALLOW policy applies to admits every source
  (https://istio.io/latest/docs/reference/config/security/authorization-policy/). Policies apply
  by ``selector`` (subset of the pod labels), by ``targetRefs`` (a Service, or the namespace's
  waypoint Gateway), or namespace / mesh-wide (root namespace) without either.
- Linkerd: ``Server`` per port (``accessPolicy`` other than ``deny`` admits clients by itself),
  ``AuthorizationPolicy`` on the Server, its HTTPRoutes or the Namespace, through
  ``MeshTLSAuthentication`` identities (``<sa>.<ns>.serviceaccount.identity.linkerd.<td>``,
  ``*``, ``*.<suffix>``) and ``identityRefs``, or ``NetworkAuthentication`` (unauthenticated); a
  port without a Server falls to the namespace's ``config.linkerd.io/default-inbound-policy``,
  else the control plane's ``proxy.defaultInboundPolicy`` (chart default ``all-unauthenticated``)
  (https://linkerd.io/2/reference/authorization-policy/).
- OSM ``TrafficTarget`` sources (ServiceAccounts) of the destination's service account; with
  ``osm.enablePermissiveTrafficPolicy`` (chart default ``true``) every client reaches every
  service on every route (osm v1.2.4 ``pkg/catalog/inbound_traffic_policies.go:36-37,123-131``:
  a wildcard route for ``identity.WildcardPrincipal``).
- Enrolment: a namespace that loses ``istio.io/dataplane-mode: ambient`` (ambient),
  ``istio-injection: enabled`` / ``istio.io/rev`` (sidecar), ``linkerd.io/inject: enabled`` or
  OSM's ``openservicemesh.io/monitored-by`` + ``sidecar-injection`` gets pods without a proxy,
  which no mesh policy governs: every caller reaches them.

Callers are compared per scope (:class:`Grant`): an Istio rule's ``to``/``when``, a Linkerd
route's matches on its port (the kubelet-probe route admits only ``GET`` of its exact paths, so its
unauthenticated clients cover nothing else), a whole port, or a whole workload. A caller an
override lets in on a scope where the render without it did not (a wider route, a new identity on
a route) is a widening. Egress is read the same way (:mod:`mesh_components.analysis.egress_access`: exits
per caller, host and port, from ServiceEntries, Sidecars, the egress gateway's routes and
policies, NetworkPolicies, EgressNetworks and their routes, OSM Egress and the security-relevant
Helm values, istiod's ``meshConfig`` among them). An override that changes these objects without admitting anyone
new is reported as changing access, without a claim about what it admits.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

ACCESS_KINDS = {
    ("security.istio.io", "AuthorizationPolicy"),
    ("policy.linkerd.io", "Server"), ("policy.linkerd.io", "AuthorizationPolicy"),
    ("policy.linkerd.io", "MeshTLSAuthentication"), ("policy.linkerd.io", "NetworkAuthentication"),
    ("policy.linkerd.io", "HTTPRoute"), ("policy.linkerd.io", "ServerAuthorization"),
    ("access.smi-spec.io", "TrafficTarget"), ("specs.smi-spec.io", "HTTPRouteGroup"),
    ("specs.smi-spec.io", "TCPRoute"), ("policy.openservicemesh.io", "IngressBackend"),
    ("", "Namespace"),
}
"""``(group, kind)`` of the objects that decide who may call a workload."""
EGRESS_KINDS = {
    ("networking.k8s.io", "NetworkPolicy"), ("networking.istio.io", "ServiceEntry"),
    ("networking.istio.io", "Sidecar"), ("policy.linkerd.io", "EgressNetwork"),
    ("policy.openservicemesh.io", "Egress"), ("security.istio.io", "PeerAuthentication"),
}
"""``(group, kind)`` of the objects that decide what leaves the mesh (and mTLS), wherever they are."""
_EGRESS_NAMESPACE_KINDS = {("networking.istio.io", "Gateway"), ("networking.istio.io", "VirtualService"),
                           ("networking.istio.io", "DestinationRule"), ("gateway.networking.k8s.io", "Gateway")}
"""Kinds that decide egress in the mesh's egress namespace (egress gateway / waypoint routing)."""
_EGRESS_ROUTE_KINDS = {"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute"}
LINKERD_CHART_DEFAULT = "all-unauthenticated"
"""``proxy.defaultInboundPolicy`` of the linkerd-control-plane chart (values.yaml:251, edge-26.8.3)."""
DEFAULT_POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
_ISTIO_ROOT = "istio-system"


@dataclass(frozen=True, order=True)
class Caller:
    """Who an object admits: ``kind`` ``identity`` (``value`` = ``(namespace, service_account)``),
    ``namespace`` (every workload of namespace ``value``) or ``any`` (every source of the kind
    ``text`` describes); ``text`` says it as the object does. Identity and namespace values are
    kept as text (a missing one as ``""``): an override may leave a name out or give it another
    type, which the API server refuses, and the graph still has to draw and sort it."""

    kind: str
    value: Any
    text: str

    def __post_init__(self) -> None:
        as_text = (lambda v: "" if v is None else v if isinstance(v, str) else str(v))
        if self.kind == "identity" and isinstance(self.value, tuple):
            object.__setattr__(self, "value", tuple(as_text(v) for v in self.value))
        elif self.kind == "namespace":
            object.__setattr__(self, "value", as_text(self.value))


@dataclass(frozen=True, order=True)
class Grant:
    """``caller`` may reach a destination within ``scope``: ``("all",)`` (every port and request),
    ``("port", port)`` (every request on that port), ``("route", port, matches)`` (a Linkerd route
    on that port; ``matches`` the sorted canonical texts of its matches) or ``("rule", text)`` (an
    Istio or OSM rule, canonical text of what it matches). ``where`` says it for people and is not
    compared."""

    scope: tuple
    caller: Caller
    where: str = field(default="", compare=False)


@dataclass(frozen=True, order=True)
class Widening:
    """An override that lets ``caller`` reach ``destination`` in ``cluster``. ``target`` says what
    ``destination`` is: ``service`` ``(namespace, service)``, ``egress`` ``(host, port)`` (port
    ``"0"``: any; host ``*``: any address) or ``setting`` ``(release, value path)``; ``scope`` says
    on what (a route, a rule) for people."""

    override: int
    cluster: str
    destination: tuple[str, str]
    caller: Caller
    objects: tuple[str, ...]
    target: str = "service"
    scope: str = ""


def _gk(obj: Mapping) -> tuple[str, str]:
    api = str(obj.get("apiVersion", ""))
    return (api.rpartition("/")[0], str(obj.get("kind", "")))


def _key(obj: Mapping) -> tuple:
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace"), meta.get("name"))


def _show(obj: Mapping) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')} {meta.get('namespace') + '/' if meta.get('namespace') else ''}{meta.get('name')}"


def is_access_object(obj: Mapping) -> bool:
    """True for objects that decide who may call a workload or what leaves the mesh: the kinds
    in :data:`ACCESS_KINDS` and :data:`EGRESS_KINDS`, routing in the egress namespace
    (``mesh-egress``) and routes attached to a Linkerd ``EgressNetwork``. Istio's mesh-wide
    settings are istiod's Helm ``meshConfig`` (``istio.mesh_config``), judged as
    ``egress_access.SECURITY_VALUES``; the retired ``istio.SHARED_MESH_CONFIG`` map is read by no
    istiod this release renders, so an override of it changes nothing (one that also points istiod
    at it again through ``env`` is a Helm value change and judged there)."""
    from ..core.egress import EGRESS_NAMESPACE

    gk, meta = _gk(obj), obj.get("metadata") or {}
    if gk in ACCESS_KINDS or gk in EGRESS_KINDS:
        return True
    if gk in _EGRESS_NAMESPACE_KINDS and meta.get("namespace") == EGRESS_NAMESPACE:
        return True
    return gk[1] in _EGRESS_ROUTE_KINDS and any(
        isinstance(r, Mapping) and r.get("kind") == "EgressNetwork"
        for r in (obj.get("spec") or {}).get("parentRefs") or [])


_NAMESPACE_ACCESS_LABELS = ("istio.io/use-waypoint", "istio.io/dataplane-mode", "istio-injection", "istio.io/rev",
                            "openservicemesh.io/monitored-by")
_NAMESPACE_ACCESS_ANNOTATIONS = (DEFAULT_POLICY_ANNOTATION, "linkerd.io/inject", "openservicemesh.io/sidecar-injection")


def access_view(obj: Mapping) -> Any:
    """The part of an access object that decides access: a Namespace's Linkerd default inbound
    policy and Istio enrolment/waypoint labels; the whole object for the other kinds."""
    if _gk(obj) != ("", "Namespace"):
        return obj
    meta = obj.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    return (tuple((k, annotations.get(k)) for k in _NAMESPACE_ACCESS_ANNOTATIONS),
            tuple((k, labels.get(k)) for k in _NAMESPACE_ACCESS_LABELS))


def _selects(selector: Mapping | None, labels: Mapping[str, str]) -> bool:
    """``matchLabels`` subset test; ``matchExpressions`` (not rendered by us) select conservatively
    (True: the policy may apply)."""
    selector = selector or {}
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


# --- identities ----------------------------------------------------------------------------------


def _istio_principal(value: str, td: str) -> Caller:
    m = re.fullmatch(r"([^/]+)/ns/([^/*]+)/sa/([^/*]+)", value)
    if m and m.group(1) == td:
        return Caller("identity", (m.group(2), m.group(3)), f"principal {value}")
    return Caller("any" if "*" in value else "pattern", value, f"principals {value!r}")


def _linkerd_identity(value: str, td: str) -> Caller:
    suffix = f".serviceaccount.identity.linkerd.{td}"
    if value.endswith(suffix):
        head = value[: -len(suffix)]
        parts = head.split(".")
        if len(parts) == 2 and "*" not in head:
            return Caller("identity", (parts[1], parts[0]), f"identity {value}")
        if len(parts) == 2 and parts[0] == "*" and "*" not in parts[1]:
            return Caller("namespace", parts[1], f"identities {value!r}")
    return Caller("any" if "*" in value else "pattern", value, f"identities {value!r}")


# --- Istio ---------------------------------------------------------------------------------------


def istio_rule_callers(rule: Any, td: str, where: str) -> set[Caller]:
    """The callers one Istio ALLOW ``rule`` admits (its ``from``; every source without one)."""
    if not isinstance(rule, Mapping):
        return set()
    froms = rule.get("from")
    if not froms:
        return {Caller("any", "rule", f"every source ({where}: a rule without 'from')")}
    out: set[Caller] = set()
    for f in froms:
        src = (f or {}).get("source") if isinstance(f, Mapping) else None
        src = src if isinstance(src, Mapping) else {}
        if src.get("principals"):
            out |= {_istio_principal(str(p), td) for p in src["principals"]}
        elif src.get("namespaces"):
            out |= {Caller("any", "*", f"namespaces {n!r} ({where})") if "*" in str(n) else
                    Caller("namespace", str(n), f"namespace {n}") for n in src["namespaces"]}
        elif src.get("serviceAccounts"):
            out |= {Caller("pattern", str(a), f"serviceAccounts {a!r}") for a in src["serviceAccounts"]}
        elif any(src.get(k) for k in ("requestPrincipals", "ipBlocks", "remoteIpBlocks")):
            out |= {Caller("pattern", repr(sorted(src)), f"{where}: source {dict(src)}")}
        else:
            out.add(Caller("any", "source", f"every source ({where}: a source with no positive field)"))
    return out


_istio_rule_callers = istio_rule_callers


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _istio_scope(rule: Any) -> tuple[tuple, str]:
    """``(scope, text)`` of an Istio rule: what its ``to`` and ``when`` match (``("all",)`` without
    either)."""
    rule = rule if isinstance(rule, Mapping) else {}
    if not rule.get("to") and not rule.get("when"):
        return ("all",), "every request"
    text = _canonical({"to": rule.get("to") or [], "when": rule.get("when") or []})
    return ("rule", text), f"requests matching {text}"


def _namespace_object(objects: list[dict], namespace: str) -> Mapping | None:
    return next((o for o in objects if _gk(o) == ("", "Namespace")
                 and (o.get("metadata") or {}).get("name") == namespace), None)


def unenrolled(spec, objects: list[dict], namespace: str) -> str | None:
    """Why the pods of ``namespace`` get no proxy (so no mesh policy governs them), or None: the
    rendered Namespace lacks the backend's enrolment label or annotation (Istio ambient
    ``istio.io/dataplane-mode: ambient``; sidecar ``istio-injection: enabled`` or ``istio.io/rev``;
    Linkerd ``linkerd.io/inject: enabled``; OSM ``openservicemesh.io/monitored-by`` and
    ``openservicemesh.io/sidecar-injection: enabled``). A namespace that is not rendered is not
    judged (None)."""
    obj = _namespace_object(objects, namespace)
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    kind = spec.backend.type
    if kind == "istio" and spec.backend.istio.data_plane == "ambient":
        ok = labels.get("istio.io/dataplane-mode") == "ambient"
    elif kind == "istio":
        ok = labels.get("istio-injection") == "enabled" or (
            bool(labels.get("istio.io/rev")) and labels.get("istio-injection") != "disabled")
    elif kind == "linkerd":
        ok = annotations.get("linkerd.io/inject") == "enabled"
    else:
        ok = bool(labels.get("openservicemesh.io/monitored-by")) and \
            annotations.get("openservicemesh.io/sidecar-injection") == "enabled"
    return None if ok else f"every caller (namespace {namespace} is not enrolled in the mesh, so its pods run without a proxy)"


def _unenrolled_grant(spec, objects: list[dict], namespace: str) -> set[Grant]:
    why = unenrolled(spec, objects, namespace)
    return {Grant(("all",), Caller("any", "unenrolled", why), "every port")} if why else set()


def _istio_callers(spec, objects: list[dict]) -> dict[tuple[str, str], set[Grant]]:
    td = spec.trust_domain
    policies = [o for o in objects if _gk(o) == ("security.istio.io", "AuthorizationPolicy")]
    out: dict[tuple[str, str], set[Grant]] = {}
    for s in spec.services:
        names = {s.name} | {f"{s.name}-{v.name}" for v in s.versions}
        labels = s.pod_labels()
        found, grants = False, _unenrolled_grant(spec, objects, s.namespace)
        for p in policies:
            meta, body = p.get("metadata") or {}, p.get("spec") or {}
            ns = meta.get("namespace")
            refs = body.get("targetRefs") or ([body["targetRef"]] if body.get("targetRef") else [])
            refs = refs if isinstance(refs, list) else [refs]  # an override's wrong type: matches no Service
            if refs:
                applies = ns == s.namespace and any(
                    (r.get("kind") == "Service" and r.get("name") in names) or r.get("kind") == "Gateway"
                    for r in refs if isinstance(r, Mapping))
            elif body.get("selector"):
                applies = ns == s.namespace and _selects(body.get("selector"), labels)
            else:
                applies = ns in (s.namespace, _ISTIO_ROOT)
            if not applies or (body.get("action") or "ALLOW") != "ALLOW":
                continue
            found = True
            for rule in body.get("rules") or []:
                scope, where = _istio_scope(rule)
                grants |= {Grant(scope, c, where) for c in istio_rule_callers(rule, td, _show(p))}
        if not found:
            grants.add(Grant(("all",), Caller("any", "none", "every source (no ALLOW policy)"), "every request"))
        out[(s.namespace, s.name)] = grants
    return out


# --- Linkerd -------------------------------------------------------------------------------------


def _linkerd_default(objects: list[dict], releases: Iterable, namespace: str) -> str:
    for o in objects:
        if _gk(o) == ("", "Namespace") and (o.get("metadata") or {}).get("name") == namespace:
            value = ((o["metadata"].get("annotations") or {}).get(DEFAULT_POLICY_ANNOTATION))
            if value:
                return str(value)
    for r in releases:
        if getattr(r, "chart", None) == "linkerd-control-plane":
            value = ((r.values or {}).get("proxy") or {}).get("defaultInboundPolicy")
            if value:
                return str(value)
    return LINKERD_CHART_DEFAULT


def _linkerd_auth_callers(ap: Mapping, by_key: dict, td: str) -> set[Caller]:
    ns = (ap.get("metadata") or {}).get("namespace")
    refs = (ap.get("spec") or {}).get("requiredAuthenticationRefs") or []
    if not refs:
        return {Caller("any", "noauth", f"every client ({_show(ap)} requires no authentication)")}
    mesh: set[Caller] | None = None
    networks: list[str] = []
    for r in refs:
        kind, rns = r.get("kind"), r.get("namespace") or ns
        if kind == "ServiceAccount":
            mesh = (mesh or set()) | {Caller("identity", (rns, r.get("name")), f"ServiceAccount {rns}/{r.get('name')}")}
        elif kind == "MeshTLSAuthentication":
            m = by_key.get(("MeshTLSAuthentication", rns, r.get("name")))
            body = (m or {}).get("spec") or {}
            got = {_linkerd_identity(str(i), td) for i in body.get("identities") or []}
            for ir in body.get("identityRefs") or []:
                irns = ir.get("namespace") or rns
                if ir.get("kind") == "ServiceAccount":
                    got.add(Caller("identity", (irns, ir.get("name")), f"ServiceAccount {irns}/{ir.get('name')}"))
                elif ir.get("kind") == "Namespace":
                    got.add(Caller("namespace", ir.get("name"), f"namespace {ir.get('name')}"))
                else:
                    got.add(Caller("any", "identityRef", f"identityRefs {dict(ir)!r} ({_show(m or {})})"))
            mesh = (mesh or set()) | got
        elif kind == "NetworkAuthentication":
            n = by_key.get(("NetworkAuthentication", rns, r.get("name")))
            networks += [str(x.get("cidr")) for x in ((n or {}).get("spec") or {}).get("networks") or []]
    if mesh is not None:
        return mesh  # identities AND networks: the identities bound who may call
    return {Caller("any", "network", f"unauthenticated clients from {', '.join(networks) or 'no network'} "
                                     f"({_show(ap)})")}


_MATCH_ALL = {"path": {"type": "PathPrefix", "value": "/"}}


def _route_matches(route: Mapping) -> tuple[str, ...]:
    """The sorted canonical texts of a Gateway-API-shaped route's matches; a rule without
    matches, or a match without a path, matches every path (``PathPrefix /``, the API default)."""
    out = set()
    rules = (route.get("spec") or {}).get("rules") or [{}]
    for rule in rules:
        for m in (rule.get("matches") if isinstance(rule, Mapping) else None) or [{}]:
            m = dict(m) if isinstance(m, Mapping) else {}
            path = m.get("path") if isinstance(m.get("path"), Mapping) else _MATCH_ALL["path"]
            m["path"] = {"type": path.get("type") or "PathPrefix", "value": path.get("value", "/")}
            out.add(_canonical(m))
    return tuple(sorted(out))


def _matches_text(matches: tuple[str, ...]) -> str:
    out = []
    for text in matches:
        m = json.loads(text)
        # str(): an override may set a field of the wrong type, which the API server refuses later
        out.append(" ".join(str(x) for x in (m.get("method"), m["path"]["type"], m["path"]["value"]) if x)
                   + (" +" + ",".join(sorted(k for k in m if k not in ("method", "path"))) if set(m) - {"method", "path"}
                      else ""))
    return "; ".join(out)


def _linkerd_callers(spec, objects: list[dict], releases: Iterable) -> dict[tuple[str, str], set[Grant]]:
    td = spec.trust_domain
    by_key = {(o["kind"], (o.get("metadata") or {}).get("namespace"), (o.get("metadata") or {}).get("name")): o
              for o in objects if _gk(o)[0] == "policy.linkerd.io"}
    servers = [o for o in objects if _gk(o) == ("policy.linkerd.io", "Server")]
    routes = [o for o in objects if _gk(o) == ("policy.linkerd.io", "HTTPRoute")]
    aps = [o for o in objects if _gk(o) == ("policy.linkerd.io", "AuthorizationPolicy")]
    out: dict[tuple[str, str], set[Grant]] = {}
    for s in spec.services:
        labels, grants = s.pod_labels(), _unenrolled_grant(spec, objects, s.namespace)
        for port in s.ports:
            target = port.target_port or port.port
            whole = Grant(("port", target), Caller("any", "", ""), f"port {target}")
            srv = next((o for o in servers if o["metadata"].get("namespace") == s.namespace
                        and (o.get("spec") or {}).get("port") in (target, port.port_name)
                        and _selects((o.get("spec") or {}).get("podSelector"), labels)), None)
            if srv is None:
                policy = _linkerd_default(objects, releases, s.namespace)
                if policy != "deny":
                    grants.add(Grant(whole.scope, Caller("any", policy, f"every client of default inbound policy "
                                                                        f"{policy}"), whole.where))
                continue
            name = srv["metadata"]["name"]
            access = (srv.get("spec") or {}).get("accessPolicy", "deny")
            if access != "deny":
                grants.add(Grant(whole.scope, Caller("any", access, f"every client of {_show(srv)} accessPolicy "
                                                                    f"{access}"), whole.where))
            attached = {r["metadata"]["name"]: r for r in routes if r["metadata"].get("namespace") == s.namespace
                        and any(p.get("kind") == "Server" and p.get("name") == name
                                for p in (r.get("spec") or {}).get("parentRefs") or [] if isinstance(p, Mapping))}
            for ap in aps:
                if ap["metadata"].get("namespace") != s.namespace:
                    continue
                ref = (ap.get("spec") or {}).get("targetRef") or {}
                if (ref.get("kind") == "Server" and ref.get("name") == name) or ref.get("kind") == "Namespace":
                    grants |= {Grant(whole.scope, c, whole.where) for c in _linkerd_auth_callers(ap, by_key, td)}
                elif ref.get("kind") == "HTTPRoute" and ref.get("name") in attached:
                    scope = ("route", target, _route_matches(attached[ref["name"]]))
                    where = f"port {target} route {ref['name']} ({_matches_text(scope[2])})"
                    grants |= {Grant(scope, c, where) for c in _linkerd_auth_callers(ap, by_key, td)}
        out[(s.namespace, s.name)] = grants
    return out


# --- OSM -----------------------------------------------------------------------------------------


def _osm_scope(tt: Mapping, objects: list[dict]) -> tuple[tuple, str]:
    """A TrafficTarget's rules with the route groups and TCPRoutes they name resolved."""
    ns = (tt.get("metadata") or {}).get("namespace")
    specs = {(o.get("kind"), (o.get("metadata") or {}).get("name")): o.get("spec") for o in objects
             if _gk(o)[0] == "specs.smi-spec.io" and (o.get("metadata") or {}).get("namespace") == ns}
    rules = []
    for r in (tt.get("spec") or {}).get("rules") or []:
        r = r if isinstance(r, Mapping) else {}
        rules.append({"rule": r, "spec": specs.get((r.get("kind"), r.get("name")))})
    text = _canonical(rules)
    return ("rule", text), f"rules {_canonical((tt.get('spec') or {}).get('rules') or [])}"


def _osm_callers(spec, objects: list[dict], releases: Iterable = ()) -> dict[tuple[str, str], set[Grant]]:
    from .egress_access import osm_setting

    targets = [o for o in objects if _gk(o) == ("access.smi-spec.io", "TrafficTarget")]
    permissive = osm_setting(releases, "enablePermissiveTrafficPolicy") is not False
    out: dict[tuple[str, str], set[Grant]] = {}
    for s in spec.services:
        grants = _unenrolled_grant(spec, objects, s.namespace)
        if permissive:
            grants.add(Grant(("all",), Caller("any", "permissive", "every client (osm.enablePermissiveTrafficPolicy)"),
                             "every request"))
        for t in targets:
            body = t.get("spec") or {}
            dest = body.get("destination") or {}
            if (dest.get("namespace") or t["metadata"].get("namespace"), dest.get("name")) != (s.namespace, s.account):
                continue
            scope, where = _osm_scope(t, objects)
            for src in body.get("sources") or []:
                # as text: an override may leave a field out or of the wrong type (the CRD requires
                # name and kind, strings), which the API server refuses; the graph still shows it
                ns, name = ("" if v is None else str(v) for v in ((src if isinstance(src, Mapping) else {}).get(k)
                                                                   for k in ("namespace", "name")))
                grants.add(Grant(scope, Caller("identity", (ns, name), f"ServiceAccount {ns}/{name}"), where))
        out[(s.namespace, s.name)] = grants
    return out


def callers_by_service(spec, objects: list[dict], releases: Iterable = ()) -> dict[tuple[str, str], set[Grant]]:
    """Per spec service ``(namespace, name)``, the :class:`Grant` set the rendered ``objects`` (and
    Helm ``releases``) of one cluster admit, read by the backend's semantics (module docstring)."""
    kind = spec.backend.type
    if kind == "istio":
        return _istio_callers(spec, objects)
    if kind == "linkerd":
        return _linkerd_callers(spec, objects, releases)
    return _osm_callers(spec, objects, releases)


def caller_covered(c: Caller, base: set[Caller]) -> bool:
    """``c`` is among ``base``: equal, any ``any`` caller, or (for an identity) its namespace."""
    if c in base or any(b.kind == "any" for b in base):
        return True
    if c.kind == "identity":
        return any(b.kind == "namespace" and b.value == c.value[0] for b in base) or \
            any(b.kind == "identity" and b.value == c.value for b in base)
    return c.kind == "namespace" and any(b.kind == "namespace" and b.value == c.value for b in base)


def _scope_covers(wide: tuple, narrow: tuple) -> bool:
    if wide == narrow or wide == ("all",):
        return True
    if wide[0] == "port" and narrow[0] in ("port", "route"):
        return wide[1] == narrow[1]
    if wide[0] == "route" and narrow[0] == "route":
        return wide[1] == narrow[1] and set(narrow[2]) <= set(wide[2])
    return False


def _covered(g: Grant, base: set[Grant]) -> bool:
    return caller_covered(g.caller, {b.caller for b in base if _scope_covers(b.scope, g.scope)})


# --- the report ----------------------------------------------------------------------------------


def _judge(spec, before_objs: list[dict], before_rels: list, after_objs: list[dict],
           after_rels: list) -> list[tuple[str, tuple[str, str], Caller, str]]:
    """``(target, destination, caller, scope)`` for everything ``after`` admits that ``before``
    does not (see :class:`Widening`)."""
    from . import egress_access

    out = []
    before = callers_by_service(spec, before_objs, before_rels)
    after = callers_by_service(spec, after_objs, after_rels)
    for dest in sorted(after):
        for g in sorted(after[dest]):
            if not _covered(g, before.get(dest, set())):
                out.append(("service", dest, g.caller, g.where))
    old_exits = egress_access.exits(spec, before_objs, before_rels)
    new_exits = egress_access.exits(spec, after_objs, after_rels)
    for e in egress_access.uncovered(new_exits, old_exits, caller_covered):
        out.append(("egress", (e.host, str(e.port)), e.caller, ""))
    old_rels = {(r.name, r.namespace): r for r in before_rels}
    for r in after_rels:
        old = old_rels.get((r.name, r.namespace))
        if old is not None:
            for key, text in egress_access.setting_widenings(old, r):
                out.append(("setting", (r.name, key), Caller("any", key, text), ""))
    return out


def _release_hits(o, st, base) -> list:
    from .egress_access import security_values

    before = {(r.name, r.namespace): r for r in base.releases}
    return [r for r in st.releases if r.name == o.name and (o.namespace is None or r.namespace == o.namespace)
            and (r.name, r.namespace) in before and security_values(before[(r.name, r.namespace)]) != security_values(r)]


def override_report(spec, base_states: Mapping, states: Mapping) -> tuple[list[tuple[int, str, tuple[str, ...]]],
                                                                          list[Widening]]:
    """``(changed, widenings)`` for ``spec.overrides``: ``changed`` lists ``(override index, cluster,
    objects)`` for every override that changes an access or egress object (:func:`is_access_object`)
    or a security-relevant Helm value (``egress_access.SECURITY_VALUES``), as ``Kind
    namespace/name`` strings (``HelmRelease <name>``); ``widenings`` what each lets in that the
    render without overrides (``base_states``) does not admit (:class:`Widening`). Each override
    is judged on the render without overrides plus the objects it changed (in their final form);
    what only the overrides together admit is charged to every override that changed that
    cluster. States are ``render.ClusterState``s keyed by cluster."""
    changed: list[tuple[int, str, tuple[str, ...]]] = []
    widenings: set[Widening] = set()
    by_cluster: dict[str, list[int]] = {}
    for i, o in enumerate(spec.overrides):
        for cluster in o.clusters or spec.cluster_names():
            st, base = states.get(cluster), base_states.get(cluster)
            if st is None or base is None:
                continue
            before = {_key(b): b for b in base.objects}
            if o.kind == "HelmRelease":
                hits, rels = [], _release_hits(o, st, base)
            else:
                rels = []
                hits = [obj for obj in st.objects if is_access_object(obj) and obj["kind"] == o.kind
                        and obj["metadata"]["name"] == o.name and obj["metadata"].get("namespace") == o.namespace
                        and (o.api_version is None or obj["apiVersion"] == o.api_version)
                        and access_view(before.get(_key(obj)) or {}) != access_view(obj)]
            if not hits and not rels:
                continue
            names = tuple(sorted([_show(h) for h in hits] + [f"HelmRelease {r.name}" for r in rels]))
            changed.append((i, cluster, names))
            by_cluster.setdefault(cluster, []).append(i)
            swapped = {_key(h): h for h in hits}
            objs = [swapped.get(_key(b), b) for b in base.objects]
            new_rels = {(r.name, r.namespace): r for r in rels}
            releases = [new_rels.get((r.name, r.namespace), r) for r in base.releases]
            for target, dest, caller, scope in _judge(spec, base.objects, base.releases, objs, releases):
                widenings.add(Widening(i, cluster, dest, caller, names, target, scope))
    for cluster, overrides in sorted(by_cluster.items()):
        seen = {(w.target, w.destination, w.caller) for w in widenings if w.cluster == cluster}
        base, st = base_states[cluster], states[cluster]
        names = tuple(sorted({n for i, c, ns in changed if c == cluster for n in ns}))
        for target, dest, caller, scope in _judge(spec, base.objects, base.releases, st.objects, st.releases):
            if (target, dest, caller) not in seen:
                widenings |= {Widening(i, cluster, dest, caller, names, target, scope) for i in overrides}
    return changed, sorted(widenings)
