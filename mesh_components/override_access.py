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
- OSM ``TrafficTarget`` sources (ServiceAccounts) of the destination's service account.

Only callers are compared: an override that changes routes, paths or ports is reported as
changing access (the objects are no longer the translation of the access rules) without a claim
about what it admits.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
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
LINKERD_CHART_DEFAULT = "all-unauthenticated"
"""``proxy.defaultInboundPolicy`` of the linkerd-control-plane chart (values.yaml:251, edge-26.8.3)."""
DEFAULT_POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
_ISTIO_ROOT = "istio-system"


@dataclass(frozen=True, order=True)
class Caller:
    """Who an object admits: ``kind`` ``identity`` (``value`` = ``(namespace, service_account)``),
    ``namespace`` (every workload of namespace ``value``) or ``any`` (every source of the kind
    ``text`` describes); ``text`` says it as the object does."""

    kind: str
    value: Any
    text: str


@dataclass(frozen=True, order=True)
class Widening:
    """An override that lets ``caller`` reach ``destination`` ``(namespace, service)`` in ``cluster``."""

    override: int
    cluster: str
    destination: tuple[str, str]
    caller: Caller
    objects: tuple[str, ...]


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
    """True for the kinds in :data:`ACCESS_KINDS`."""
    return _gk(obj) in ACCESS_KINDS


_NAMESPACE_ACCESS_LABELS = ("istio.io/use-waypoint", "istio.io/dataplane-mode", "istio-injection", "istio.io/rev")


def access_view(obj: Mapping) -> Any:
    """The part of an access object that decides access: a Namespace's Linkerd default inbound
    policy and Istio enrolment/waypoint labels; the whole object for the other kinds."""
    if _gk(obj) != ("", "Namespace"):
        return obj
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    return ((meta.get("annotations") or {}).get(DEFAULT_POLICY_ANNOTATION),
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


def _istio_rule_callers(rule: Any, td: str, where: str) -> set[Caller]:
    if not isinstance(rule, Mapping):
        return set()
    froms = rule.get("from")
    if not froms:
        return {Caller("any", "rule", f"every source ({where}: a rule without 'from')")}
    out: set[Caller] = set()
    for f in froms:
        src = (f or {}).get("source") if isinstance(f, Mapping) else None
        src = src or {}
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


def _istio_callers(spec, objects: list[dict]) -> dict[tuple[str, str], set[Caller]]:
    td = spec.trust_domain
    policies = [o for o in objects if _gk(o) == ("security.istio.io", "AuthorizationPolicy")]
    out: dict[tuple[str, str], set[Caller]] = {}
    for s in spec.services:
        names = {s.name} | {f"{s.name}-{v.name}" for v in s.versions}
        labels = s.pod_labels()
        found, callers = False, set()
        for p in policies:
            meta, body = p.get("metadata") or {}, p.get("spec") or {}
            ns = meta.get("namespace")
            refs = body.get("targetRefs") or ([body["targetRef"]] if body.get("targetRef") else [])
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
                callers |= _istio_rule_callers(rule, td, _show(p))
        out[(s.namespace, s.name)] = callers if found else {Caller("any", "none", "every source (no ALLOW policy)")}
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
            mesh = (mesh or set()) | got
        elif kind == "NetworkAuthentication":
            n = by_key.get(("NetworkAuthentication", rns, r.get("name")))
            networks += [str(x.get("cidr")) for x in ((n or {}).get("spec") or {}).get("networks") or []]
    if mesh is not None:
        return mesh  # identities AND networks: the identities bound who may call
    return {Caller("any", "network", f"unauthenticated clients from {', '.join(networks) or 'no network'} "
                                     f"({_show(ap)})")}


def _linkerd_callers(spec, objects: list[dict], releases: Iterable) -> dict[tuple[str, str], set[Caller]]:
    td = spec.trust_domain
    by_key = {(o["kind"], (o.get("metadata") or {}).get("namespace"), (o.get("metadata") or {}).get("name")): o
              for o in objects if _gk(o)[0] == "policy.linkerd.io"}
    servers = [o for o in objects if _gk(o) == ("policy.linkerd.io", "Server")]
    routes = [o for o in objects if _gk(o) == ("policy.linkerd.io", "HTTPRoute")]
    aps = [o for o in objects if _gk(o) == ("policy.linkerd.io", "AuthorizationPolicy")]
    out: dict[tuple[str, str], set[Caller]] = {}
    for s in spec.services:
        labels, callers = s.pod_labels(), set()
        for port in s.ports:
            target = port.target_port or port.port
            srv = next((o for o in servers if o["metadata"].get("namespace") == s.namespace
                        and (o.get("spec") or {}).get("port") in (target, port.port_name)
                        and _selects((o.get("spec") or {}).get("podSelector"), labels)), None)
            if srv is None:
                policy = _linkerd_default(objects, releases, s.namespace)
                if policy != "deny":
                    callers.add(Caller("any", policy, f"every client of default inbound policy {policy}"))
                continue
            name = srv["metadata"]["name"]
            access = (srv.get("spec") or {}).get("accessPolicy", "deny")
            if access != "deny":
                callers.add(Caller("any", access, f"every client of {_show(srv)} accessPolicy {access}"))
            attached = {r["metadata"]["name"] for r in routes if r["metadata"].get("namespace") == s.namespace
                        and any(p.get("kind") == "Server" and p.get("name") == name
                                for p in (r.get("spec") or {}).get("parentRefs") or [])}
            for ap in aps:
                if ap["metadata"].get("namespace") != s.namespace:
                    continue
                ref = (ap.get("spec") or {}).get("targetRef") or {}
                if (ref.get("kind") == "Server" and ref.get("name") == name) or ref.get("kind") == "Namespace" or \
                        (ref.get("kind") == "HTTPRoute" and ref.get("name") in attached):
                    callers |= _linkerd_auth_callers(ap, by_key, td)
        out[(s.namespace, s.name)] = callers
    return out


# --- OSM -----------------------------------------------------------------------------------------


def _osm_callers(spec, objects: list[dict]) -> dict[tuple[str, str], set[Caller]]:
    targets = [o for o in objects if _gk(o) == ("access.smi-spec.io", "TrafficTarget")]
    out: dict[tuple[str, str], set[Caller]] = {}
    for s in spec.services:
        callers = set()
        for t in targets:
            body = t.get("spec") or {}
            dest = body.get("destination") or {}
            if (dest.get("namespace") or t["metadata"].get("namespace"), dest.get("name")) != (s.namespace, s.account):
                continue
            for src in body.get("sources") or []:
                callers.add(Caller("identity", (src.get("namespace"), src.get("name")),
                                   f"ServiceAccount {src.get('namespace')}/{src.get('name')}"))
        out[(s.namespace, s.name)] = callers
    return out


def callers_by_service(spec, objects: list[dict], releases: Iterable = ()) -> dict[tuple[str, str], set[Caller]]:
    """Per spec service ``(namespace, name)``, the :class:`Caller` set the rendered ``objects`` (and
    Helm ``releases``) of one cluster admit, read by the backend's semantics (module docstring)."""
    kind = spec.backend.type
    if kind == "istio":
        return _istio_callers(spec, objects)
    if kind == "linkerd":
        return _linkerd_callers(spec, objects, releases)
    return _osm_callers(spec, objects)


def _covered(c: Caller, base: set[Caller]) -> bool:
    if c in base or any(b.kind == "any" for b in base):
        return True
    if c.kind == "identity":
        return any(b.kind == "namespace" and b.value == c.value[0] for b in base) or \
            any(b.kind == "identity" and b.value == c.value for b in base)
    return c.kind == "namespace" and any(b.kind == "namespace" and b.value == c.value for b in base)


def override_report(spec, base_states: Mapping, states: Mapping) -> tuple[list[tuple[int, str, tuple[str, ...]]],
                                                                          list[Widening]]:
    """``(changed, widenings)`` for ``spec.overrides``: ``changed`` lists ``(override index, cluster,
    objects)`` for every override that changes an access-policy object (:data:`ACCESS_KINDS`), as
    ``Kind namespace/name`` strings; ``widenings`` the callers each lets reach a service that the
    render without overrides (``base_states``) does not admit. States are
    ``render.ClusterState``s keyed by cluster."""
    changed: list[tuple[int, str, tuple[str, ...]]] = []
    touched: dict[str, dict[int, list[dict]]] = {}
    for i, o in enumerate(spec.overrides):
        if o.kind == "HelmRelease":
            continue
        for cluster in o.clusters or spec.cluster_names():
            st, base = states.get(cluster), base_states.get(cluster)
            if st is None or base is None:
                continue
            before = {_key(b): b for b in base.objects}
            hits = [obj for obj in st.objects if is_access_object(obj) and obj["kind"] == o.kind
                    and obj["metadata"]["name"] == o.name and obj["metadata"].get("namespace") == o.namespace
                    and (o.api_version is None or obj["apiVersion"] == o.api_version)
                    and access_view(before.get(_key(obj)) or {}) != access_view(obj)]
            if hits:
                changed.append((i, cluster, tuple(sorted(_show(h) for h in hits))))
                touched.setdefault(cluster, {}).setdefault(i, []).extend(hits)
    widenings: list[Widening] = []
    for cluster, by_override in sorted(touched.items()):
        before = callers_by_service(spec, base_states[cluster].objects, base_states[cluster].releases)
        after = callers_by_service(spec, states[cluster].objects, states[cluster].releases)
        for dest in sorted(after):
            new = sorted(c for c in after[dest] if not _covered(c, before.get(dest, set())))
            if not new:
                continue
            for i, hits in sorted(by_override.items()):
                spaces = {h["metadata"].get("namespace") or h["metadata"]["name"] for h in hits}
                if dest[0] in spaces or _ISTIO_ROOT in spaces:
                    widenings += [Widening(i, cluster, dest, c, tuple(sorted(_show(h) for h in hits))) for c in new]
    return changed, sorted(set(widenings))
