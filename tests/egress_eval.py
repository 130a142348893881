"""What each mesh would let out of the mesh, read back from rendered objects alone.

Each evaluator takes one cluster's rendered objects (and releases) plus the workloads (namespace,
service, service account, pod labels) and returns the ``(namespace/service, host, port)`` triples
the mesh's documented semantics would let leave, ``port`` being the destination port on the wire:

- Istio sidecars (REGISTRY_ONLY): a service reaches a ServiceEntry host only if the entry is
  exported to its namespace and no ``Sidecar`` selecting its pods hides ``mesh-egress``; with a
  VirtualService for the host, the request follows its ``mesh`` route to the egress gateway subset
  (ISTIO_MUTUAL, SNI from the DestinationRule subset), must hit a gateway server for that SNI and
  port, pass the gateway's ALLOW AuthorizationPolicies (principal, port, host or connection.sni),
  and then follows the gateway route to the host; the wire port is the entry's targetPort
  (TLS origination) or its number. Without a VirtualService the sidecar sends it directly.
- Istio ambient: the entry is bound to a waypoint and the waypoint's AuthorizationPolicy
  (targetRefs the entry) admits principals on ports.
- Linkerd: an EgressNetwork ``Deny`` in the client's namespace, opened by HTTPRoute/TLSRoute
  parents (port) and hostnames, for every workload of that namespace.
- OSM: Egress policies naming the client's service account, hosts and ports (global egress off).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    namespace: str
    service: str
    account: str
    labels: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.service}"


def workloads(spec) -> list[Workload]:
    return [Workload(s.namespace, s.name, s.account, tuple(sorted(s.pod_labels().items()))) for s in spec.services]


def _of(objects, kind, api_prefix=""):
    return [o for o in objects if o["kind"] == kind and o["apiVersion"].startswith(api_prefix)]


def _exported(obj, ns: str) -> bool:
    export = obj["spec"].get("exportTo") or ["*"]
    own = obj["metadata"]["namespace"]
    return "*" in export or ns in export or ("." in export and ns == own)


def _hidden(objects, w: Workload, namespace: str, host: str) -> bool:
    """True when a Sidecar selecting ``w`` limits egress to ``<ns>/<host>`` patterns that exclude
    ``host`` of ``namespace``."""
    for sc in _of(objects, "Sidecar"):
        if sc["metadata"]["namespace"] != w.namespace:
            continue
        sel = sc["spec"].get("workloadSelector", {}).get("labels", {})
        if not set(sel.items()) <= set(w.labels):
            continue
        hosts = [h for e in sc["spec"].get("egress", []) for h in e["hosts"]]
        if not any(h.split("/")[0] in ("*", namespace) and fnmatch.fnmatchcase(host, h.split("/")[1]) for h in hosts):
            return True
    return False


def _wire_port(se, number: int) -> int | None:
    for p in se["spec"]["ports"]:
        if p["number"] == number:
            return p.get("targetPort", p["number"])
    return None


def _principal(td: str, w: Workload) -> str:
    return f"{td}/ns/{w.namespace}/sa/{w.account}"


def istio_sidecar(objects, spec) -> set[tuple[str, str, int]]:
    td = spec.trust_domain
    mesh_config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "istio-mesh-components")
    assert "mode: REGISTRY_ONLY" in mesh_config["data"]["mesh"]
    out = set()
    entries = _of(objects, "ServiceEntry")
    services = _of(objects, "VirtualService")
    for w in workloads(spec):
        for se in entries:
            if not _exported(se, w.namespace):
                continue
            for h in se["spec"]["hosts"]:
                if _hidden(objects, w, se["metadata"]["namespace"], h):
                    continue
                for port in se["spec"]["ports"]:
                    a = port["number"]
                    vss = [v for v in services if v["spec"]["hosts"] == [h] and _exported(v, w.namespace)]
                    if not vss:  # no routing: the sidecar sends it directly (passthrough or DNS)
                        out.add((w.key, h, port.get("targetPort", a)))
                        continue
                    for vs in vss:
                        out |= _through_gateway(objects, entries, vs, h, a, _principal(td, w), w.key)
    return out


def _mesh_route(vs, a: int, h: str):
    spec = vs["spec"]
    for kind in ("http", "tls", "tcp"):
        for r in spec.get(kind, []):
            for m in r["match"]:
                if m.get("gateways") == ["mesh"] and m.get("port") == a and h in m.get("sniHosts", [h]):
                    return kind, r["route"][0]["destination"]
    return None, None


def _through_gateway(objects, entries, vs, h, a, who, key):
    kind, dest = _mesh_route(vs, a, h)
    if dest is None:
        return set()
    gw_host, subset, g = dest["host"], dest.get("subset"), dest["port"]["number"]
    dr = next(d for d in _of(objects, "DestinationRule") if d["spec"]["host"] == gw_host)
    sub = next(s for s in dr["spec"]["subsets"] if s["name"] == subset)
    tls = next(p["tls"] for p in sub["trafficPolicy"]["portLevelSettings"] if p["port"]["number"] == g)
    assert tls["mode"] == "ISTIO_MUTUAL"
    sni = tls["sni"]
    gw_refs = [r for r in vs["spec"]["gateways"] if r != "mesh"]
    servers = [s for g_ in _of(objects, "Gateway", "networking.istio.io")
               if f"{g_['metadata']['namespace']}/{g_['metadata']['name']}" in gw_refs
               for s in g_["spec"]["servers"]]
    if not any(s["port"]["number"] == g and sni in s["hosts"] and s["tls"]["mode"] == "ISTIO_MUTUAL" for s in servers):
        return set()
    if not _gateway_allows(objects, who, g, h if kind == "http" else None, sni):
        return set()
    out = set()
    for k in ("http", "tls", "tcp"):
        for r in vs["spec"].get(k, []):
            for m in r["match"]:
                if m.get("gateways") == gw_refs and m.get("port") == g:
                    d = r["route"][0]["destination"]
                    se = next(e for e in entries if d["host"] in e["spec"]["hosts"])
                    wire = _wire_port(se, d["port"]["number"])
                    if wire is not None:
                        out.add((key, d["host"], wire))
    return out


def _gateway_allows(objects, who, port, host, sni) -> bool:
    for ap in _of(objects, "AuthorizationPolicy", "security.istio.io"):
        if ap["spec"].get("selector", {}).get("matchLabels") != {"istio": "egressgateway"}:
            continue
        assert ap["spec"]["action"] == "ALLOW"
        for rule in ap["spec"]["rules"]:
            if who not in [p for f in rule["from"] for p in f["source"]["principals"]]:
                continue
            ops = [t["operation"] for t in rule.get("to", [])]
            if not any(str(port) in op.get("ports", [str(port)]) and
                       (host is None or host in op.get("hosts", [host])) for op in ops):
                continue
            when = {c["key"]: c["values"] for c in rule.get("when", [])}
            if "connection.sni" in when and sni not in when["connection.sni"]:
                continue
            if host is None and "connection.sni" not in when:
                continue  # an L4 rule without SNI would admit any host: never rendered
            return True
    return False


def istio_ambient(objects, spec) -> set[tuple[str, str, int]]:
    td = spec.trust_domain
    out = set()
    waypoints = {(g["metadata"]["namespace"], g["metadata"]["name"]) for g in _of(objects, "Gateway", "gateway.networking")
                 if g["spec"]["gatewayClassName"] == "istio-waypoint"}
    for se in _of(objects, "ServiceEntry"):
        wp = se["metadata"].get("labels", {}).get("istio.io/use-waypoint")
        assert (se["metadata"]["namespace"], wp) in waypoints
        policies = [ap for ap in _of(objects, "AuthorizationPolicy", "security.istio.io")
                    if {"group": "networking.istio.io", "kind": "ServiceEntry", "name": se["metadata"]["name"]}
                    in ap["spec"].get("targetRefs", [])]
        for w in workloads(spec):
            for h in se["spec"]["hosts"]:
                for port in se["spec"]["ports"]:
                    for ap in policies:
                        for rule in ap["spec"]["rules"]:
                            who = [p for f in rule["from"] for p in f["source"]["principals"]]
                            ports = [p for t in rule.get("to", []) for p in t["operation"].get("ports", [])]
                            if _principal(td, w) in who and str(port["number"]) in ports:
                                out.add((w.key, h, port.get("targetPort", port["number"])))
    return out


def linkerd(objects, spec) -> set[tuple[str, str, int]]:
    out = set()
    for net in _of(objects, "EgressNetwork"):
        assert net["spec"]["trafficPolicy"] == "Deny"
        ns, name = net["metadata"]["namespace"], net["metadata"]["name"]
        for route in [o for o in objects if o["kind"] in ("HTTPRoute", "TLSRoute") and o["metadata"]["namespace"] == ns]:
            for ref in route["spec"]["parentRefs"]:
                if ref.get("kind") == "EgressNetwork" and ref["name"] == name:
                    for w in workloads(spec):
                        if w.namespace == ns:
                            out |= {(w.key, h, ref["port"]) for h in route["spec"]["hostnames"]}
    return out


def osm(objects, releases, spec) -> set[tuple[str, str, int]]:
    osm_release = next(r for r in releases if r.chart == "osm")
    assert osm_release.values["osm"]["enableEgress"] is False
    out = set()
    for eg in _of(objects, "Egress"):
        for src in eg["spec"]["sources"]:
            for w in workloads(spec):
                if (w.namespace, w.account) == (src["namespace"], src["name"]):
                    out |= {(w.key, h, p["number"]) for h in eg["spec"]["hosts"] for p in eg["spec"]["ports"]}
    return out


def intent(spec) -> set[tuple[str, str, int]]:
    """The spec's egress intent as triples (``egress.allowed_egress`` without the protocol)."""
    from mesh_components.egress import allowed_egress

    return {(svc, host, port) for svc, host, _, port in allowed_egress(spec)}
