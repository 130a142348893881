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
- Istio ambient: ztunnel has no registry-only mode and sends a destination it does not know on
  as plain TCP (istio/ztunnel 1.30.3 src/proxy/outbound.rs:599-629, test build_request_unknown_dest
  925-942), so what leaves is decided by the Kubernetes NetworkPolicies selecting the pods
  (https://kubernetes.io/docs/concepts/services-networking/network-policies/ ; ambient respects
  them, https://istio.io/latest/docs/ambient/usage/networkpolicy/): a pod no egress policy
  selects reaches ``(ANYWHERE, ANY_PORT)``; a rule with no ``to`` or an ``ipBlock`` reaches that
  address outside the cluster (other networks' east-west gateways on HBONE 15008 are mesh, not
  egress). A ServiceEntry host is reached through its waypoint (HBONE 15008 to the waypoint pods,
  ``gateway.networking.k8s.io/gateway-name: <waypoint>``, which the pod's egress policy must
  allow; a wildcard host only with resolution DYNAMIC_DNS, the only one Istio allocates it an
  address for, istio 1.30.3 pilot/pkg/controllers/ipallocate/ipallocate.go:361-363), where the ALLOW policies targeting the entry or the waypoint Gateway decide (istio
  1.30.3 pilot/pkg/model/policyattachment.go:165-197, builder.go:205-299: any rule of any of them
  admits; none attached admits everyone; a policy without rules admits no one).
- Linkerd: the EgressNetworks of the client's namespace, or, when it has none, of the global
  egress namespace ``linkerd-egress``; ``Deny`` is opened by HTTPRoute/TLSRoute parents (port) and
  hostnames, for every workload of that namespace; no EgressNetwork, or ``Allow``, lets anything out.
- OSM: Egress policies naming the client's service account, hosts and ports (global egress off).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from ipaddress import ip_address


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


def istio_sidecar(objects, releases, spec) -> set[tuple[str, str, int]]:
    td = spec.trust_domain
    # istiod's mesh config is its Helm meshConfig, merged into the istio ConfigMap (istio 1.30.3
    # manifests/charts/istio-control/istio-discovery/templates/configmap.yaml:76-79); no other map
    # may be named (env SHARED_MESH_CONFIG, pilot/pkg/bootstrap/mesh.go:44-47, 130-136)
    istiods = [r for r in releases if r.chart == "istiod"]
    assert istiods and all(r.values["meshConfig"]["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
                           and "SHARED_MESH_CONFIG" not in (r.values.get("env") or {}) for r in istiods)
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


ANYWHERE, ANY_PORT = "*", 0
"""Host and port of a triple meaning any address outside the cluster, on any port."""


def _ns_labels(objects, ns: str) -> dict:
    """A namespace's labels as NetworkPolicy namespaceSelectors see them (its Namespace object's
    labels, if rendered, plus the automatic ``kubernetes.io/metadata.name``)."""
    obj = next((o for o in _of(objects, "Namespace") if o["metadata"]["name"] == ns), None)
    return {**((obj or {}).get("metadata", {}).get("labels") or {}), "kubernetes.io/metadata.name": ns}


def _selects(selector: dict | None, labels: dict) -> bool:
    assert not (selector or {}).get("matchExpressions"), "matchExpressions are not modelled"
    return set(((selector or {}).get("matchLabels") or {}).items()) <= set(labels.items())


def _egress_rules(objects, w: Workload) -> list[dict] | None:
    """The egress rules of the NetworkPolicies that select ``w``'s pods, or None when none
    isolates it for egress (``policyTypes`` absent: Egress iff it has ``egress`` rules)."""
    pols = [np for np in _of(objects, "NetworkPolicy", "networking.k8s.io/")
            if np["metadata"]["namespace"] == w.namespace and _selects(np["spec"].get("podSelector"), dict(w.labels))
            and "Egress" in np["spec"].get("policyTypes", ["Ingress"] + (["Egress"] if "egress" in np["spec"] else []))]
    if not pols:
        return None
    return [r for np in pols for r in np["spec"].get("egress") or []]


def _ports(rule) -> list[tuple[str, int]]:
    out = []
    for p in rule.get("ports") or [{}]:
        assert "endPort" not in p and not isinstance(p.get("port", 0), str), "named ports and ranges are not modelled"
        out.append((p.get("protocol", "TCP"), p.get("port", ANY_PORT)))
    return out


def _reaches_pod(rules, own_ns: str, ns: str, ns_labels: dict, pod_labels: dict, port: int) -> bool:
    for r in rules:
        if not any(proto == "TCP" and p in (ANY_PORT, port) for proto, p in _ports(r)):
            continue
        peers = r.get("to") or [{}]
        for peer in peers:
            if "ipBlock" in peer:
                continue  # pod IPs in an ipBlock: not rendered, not modelled
            if not peer:
                return True
            ns_ok = _selects(peer["namespaceSelector"], ns_labels) if "namespaceSelector" in peer else ns == own_ns
            if ns_ok and _selects(peer.get("podSelector"), pod_labels):
                return True
    return False


def _external(rules, mesh_gateways: set[str]) -> set[tuple[str, int]]:
    out = set()
    for r in rules:
        for peer in r.get("to") or [{}]:
            if peer and "ipBlock" not in peer:
                continue  # pods of this cluster
            host = peer["ipBlock"]["cidr"] if peer else ANYWHERE
            for proto, port in _ports(r):
                if not (host in mesh_gateways and proto == "TCP" and port == 15008):
                    out.add((host, port))
    return out


def istio_ambient(objects, spec) -> set[tuple[str, str, int]]:
    td = spec.trust_domain
    out = set()
    waypoints = {(g["metadata"]["namespace"], g["metadata"]["name"]) for g in _of(objects, "Gateway", "gateway.networking")
                 if g["spec"]["gatewayClassName"] == "istio-waypoint"}
    mesh_gateways = {f"{a}/{ip_address(a).max_prefixlen}" for c in spec.clusters if c.east_west_gateway
                     for a in c.east_west_gateway.addresses}
    for w in workloads(spec):
        rules = _egress_rules(objects, w)
        if rules is None:
            out.add((w.key, ANYWHERE, ANY_PORT))
            continue
        out |= {(w.key, host, port) for host, port in _external(rules, mesh_gateways)}
        for se in _of(objects, "ServiceEntry"):
            ns, wp = se["metadata"]["namespace"], se["metadata"].get("labels", {}).get("istio.io/use-waypoint")
            assert (ns, wp) in waypoints
            if not _reaches_pod(rules, w.namespace, ns, _ns_labels(objects, ns),
                                {"gateway.networking.k8s.io/gateway-name": wp}, 15008):
                continue
            refs = ({"group": "networking.istio.io", "kind": "ServiceEntry", "name": se["metadata"]["name"]},
                    {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": wp})
            allows = [ap for ap in _of(objects, "AuthorizationPolicy", "security.istio.io")
                      if ap["metadata"]["namespace"] == ns and any(r in ap["spec"].get("targetRefs", []) for r in refs)]
            assert all(ap["spec"].get("action", "ALLOW") == "ALLOW" for ap in allows)
            for h in se["spec"]["hosts"]:
                if h.startswith("*") and se["spec"].get("resolution") != "DYNAMIC_DNS":
                    continue  # no address for the name (istio 1.30.3 ipallocate.go:361-363): ztunnel passes it through
                for port in se["spec"]["ports"]:
                    wire = port.get("targetPort", port["number"])
                    if not allows:
                        out.add((w.key, h, wire))
                    for ap in allows:
                        for rule in ap["spec"].get("rules") or []:
                            who = [p for f in rule["from"] for p in f["source"]["principals"]]
                            ports = [p for t in rule.get("to", []) for p in t["operation"].get("ports", [])]
                            if _principal(td, w) in who and str(port["number"]) in ports:
                                out.add((w.key, h, wire))
    return out


LINKERD_GLOBAL_EGRESS = "linkerd-egress"
"""egress.globalEgressNetworkNamespace default (linkerd2 edge-26.8.3 charts/linkerd-control-plane/values.yaml:746)."""


def linkerd(objects, spec) -> set[tuple[str, str, int]]:
    """A client's namespace's own EgressNetworks apply; only when it has none, those of the
    global egress namespace (linkerd2 edge-26.8.3 policy-controller/k8s/index/src/outbound/index/
    egress_network.rs:61-78). No EgressNetwork at all, or ``Allow``: anything leaves."""
    out = set()
    nets = _of(objects, "EgressNetwork")
    for w in workloads(spec):
        mine = [n for n in nets if n["metadata"]["namespace"] == w.namespace] or \
            [n for n in nets if n["metadata"]["namespace"] == LINKERD_GLOBAL_EGRESS]
        if not mine:
            out.add((w.key, ANYWHERE, ANY_PORT))
        for net in mine:
            assert "networks" not in net["spec"], "networks are not modelled"
            if net["spec"]["trafficPolicy"] != "Deny":
                out.add((w.key, ANYWHERE, ANY_PORT))
            ns, name = net["metadata"]["namespace"], net["metadata"]["name"]
            for route in [o for o in objects if o["kind"] in ("HTTPRoute", "TLSRoute")
                          and o["metadata"]["namespace"] == ns]:
                for ref in route["spec"]["parentRefs"]:
                    if ref.get("kind") == "EgressNetwork" and ref["name"] == name:
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
    from mesh_components.core.egress import allowed_egress

    return {(svc, host, port) for svc, host, _, port in allowed_egress(spec)}
