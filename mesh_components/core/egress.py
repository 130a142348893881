"""Egress: what may leave the mesh, from the spec's named external destinations (``mesh.egress``),
compiled for each mesh from one intent: exact hosts, ports and protocols, and the services that may
reach each destination.

Istio (https://istio.io/latest/docs/tasks/traffic-management/egress/):

- mesh-wide ``outboundTrafficPolicy: REGISTRY_ONLY`` (set by ``istio.control_plane``), so only
  hosts with a ServiceEntry leave the mesh; one ``ServiceEntry`` per rule in ``mesh-egress``,
  MESH_EXTERNAL, DNS resolution;
- sidecar mode: the entry is exported only to the source services' namespaces (and to
  ``mesh-egress``, where the egress gateway runs); every other service of those namespaces gets a
  ``Sidecar`` that hides external entries. Traffic is forced through the egress gateway
  (the ``gateway`` chart, release ``istio-egressgateway`` in ``mesh-egress``, ``service.type:
  ClusterIP``; https://istio.io/latest/docs/tasks/traffic-management/egress/egress-gateway/):
  per rule an Istio ``Gateway`` (one server per host and port, ``ISTIO_MUTUAL``), per host a
  ``VirtualService`` bound to ``mesh`` (sidecar -> gateway subset) and to the gateway (gateway ->
  host), and one ``DestinationRule`` for the gateway whose subsets set ``ISTIO_MUTUAL`` with the
  host as SNI. The sidecar-to-gateway hop is therefore always mutual TLS, also for TLS passthrough
  and TCP (the application's stream is carried inside it), so the gateway knows the caller: an
  ``AuthorizationPolicy`` on the gateway admits exactly the source principals
  ``<trust-domain>/ns/<ns>/sa/<sa>`` to exactly the rule's hosts (``hosts`` for HTTP, the
  ``connection.sni`` of the mesh hop for TLS and TCP) and ports. Rules with a ``*.`` wildcard
  (``allowWildcard``) cannot go through the gateway (it must resolve each name, or it forwards to
  itself; see the warning in the egress-gateway task) and leave directly from the source sidecars,
  scoped by ``exportTo`` and the ``Sidecar`` objects as before;
- ambient mode: the entry is bound to an egress waypoint (``istio.io/use-waypoint``) and an
  ``AuthorizationPolicy`` on it (``targetRefs`` the ServiceEntry) admits exactly the source
  identities on the rule's ports; the waypoint denies what no entry's policy allows. REGISTRY_ONLY
  binds sidecars only: ztunnel sends a destination it does not know on as plain TCP, so a
  Kubernetes ``NetworkPolicy`` in every application namespace keeps everything else in the
  cluster (:func:`ambient_egress_fences`);
- TLS origination (``tlsOrigination``, both modes): the ServiceEntry port is the application port
  (HTTP or TCP) with ``targetPort`` the destination port, and a ``DestinationRule`` seen only in
  ``mesh-egress`` (the gateway or waypoint) opens TLS (``SIMPLE``, or ``MUTUAL`` with
  ``credentialName``, a Secret in ``mesh-egress``);
  https://istio.io/latest/docs/tasks/traffic-management/egress/egress-gateway-tls-origination/ ;
- credential injection (``credential``, sidecar mode): see :func:`credential_objects`.

Linkerd (https://linkerd.io/2/features/egress/): an ``EgressNetwork`` with ``trafficPolicy: Deny``
in each source namespace (it governs that namespace's clients) and a ``TLSRoute`` (by SNI, at
``v1alpha2``, the version Linkerd reads, served by the experimental Gateway API bundle its
clusters get: ``mesh_components.core.gateway_api``) or ``HTTPRoute`` (by Host) per destination back to
it; every other namespace is fenced by a ``Deny``
EgressNetwork in the global egress namespace ``linkerd-egress`` (:func:`linkerd_global_egress`). It cannot tell clients of one namespace apart,
so a namespace holding other services is refused unless the rule accepts
``approximate: namespace``; opaque TCP cannot be limited by host name and is refused; Linkerd
neither originates TLS nor changes request headers, so ``tlsOrigination`` and ``credential`` are
refused.

OSM (https://release-v1-2.docs.openservicemesh.io/docs/guides/traffic_management/egress/): one
``Egress`` policy per rule and source namespace naming exactly the source service accounts, with
global egress off in the control plane (``osm.enableEgress: false``, ``mesh_components.meshes.osm``).
OSM matches TCP egress by destination IP range only (hosts are ignored for ``tcp``:
openservicemesh/osm v1.2.4 ``pkg/catalog/egress.go``), so TCP rules are refused rather than opened
to every address; TLS origination and credentials are refused too.
"""
from __future__ import annotations

import hashlib

import yaml

from ..meshes import istio
from ..spec import names
from ..spec.errors import Problem, TranslationError
from .gateway_api import LINKERD_TLSROUTE
from ..meshes.istio import GATEWAY_API, NETWORKING, SECURITY
from ..meshes.istio_policy import principal, waypoint_default_deny
from .external_workloads import own_service_workloads
from .meta import k8s_object
from .slots import Slot

EGRESS_NAMESPACE = "mesh-egress"
EGRESS_WAYPOINT = "egress-waypoint"
EGRESS_GATEWAY = "istio-egressgateway"
"""Release, Deployment, Service and service account of the Istio egress gateway (``gateway`` chart)."""
EGRESS_GATEWAY_LABELS = {"istio": "egressgateway"}
"""Pod labels the ``gateway`` chart gives release ``istio-egressgateway`` (release name minus ``istio-``)."""
EGRESS_GATEWAY_HOST = f"{EGRESS_GATEWAY}.{EGRESS_NAMESPACE}.svc.cluster.local"
CREDENTIALS_DIR = "/etc/mesh-egress/credentials"
"""Where the egress gateway mounts each rule's credential (``<dir>/<rule>/credential``, ``sds.yaml``)."""
ALLOW_WILDCARD = "mesh-components.io/allow-wildcard"
"""Annotation marking a wildcard host as allowed on purpose (``allowWildcard``); guardrails read it."""
CONFIG_SOURCE = "config"
"""Slot source of values read from Pulumi secret config (key: the config key)."""
ENVOY_FILTER_API = "networking.istio.io/v1alpha3"
"""EnvoyFilter is served only at v1alpha3 (../shared/crds/istio)."""
_ISTIO_PROTOCOL = {"http": "HTTP", "https": "TLS", "tls": "TLS", "tcp": "TCP"}
_ISTIO_RESERVED = range(15000, 15100)
NETWORK_POLICY_API = "networking.k8s.io/v1"
EGRESS_FENCE = "mesh-egress-allow-list"
"""Name of the egress NetworkPolicy of each application namespace in ambient mode."""
HBONE_PORT = 15008


def egress_clusters(spec, rule) -> list[str]:
    """Clusters where any source service of ``rule`` runs (where its egress must be declared)."""
    by_key = spec.services_by_key
    clusters = {c for ref in rule.sources for c in spec.service_clusters(by_key[(ref.namespace, ref.service)])}
    return [c for c in spec.cluster_names() if c in clusters]


def egress_objects(spec, cluster: str) -> list[dict]:
    """The egress objects of ``cluster`` in the spec's mesh (see the module docstring).
    Raises :class:`TranslationError` for what the mesh cannot allow exactly."""
    return {"istio": istio_egress, "linkerd": linkerd_egress, "osm": osm_egress}[spec.backend.type](spec, cluster)


def egress_releases(spec, cluster: str) -> list[dict]:
    """Helm releases of the egress concern in ``cluster``: the Istio egress gateway (sidecar mode,
    when a rule of this cluster goes through it), as dicts ``{name, namespace, repository, chart,
    version, values, depends_on, concern}`` (see ``render.HelmRelease``). Values: ``service.type:
    ClusterIP`` with exactly the ports the rules use plus the status port, the revision the data
    plane runs, and a projected volume per credential rule. Empty for other meshes."""
    if spec.backend.type != "istio" or spec.backend.istio.data_plane == "ambient":
        return []
    rules = gateway_rules(spec, cluster)
    if not rules:
        return []
    rev = istio.injection_revision(spec)
    holder = istio.istiod_release_name(spec, istio.serving_revision(spec)[0])
    ports = [{"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021}]
    ports += [{"name": name, "port": port, "protocol": "TCP", "targetPort": port}
              for port, name in sorted(_gateway_ports(rules).items())]
    values: dict = {**({"revision": rev} if rev else {}), "service": {"type": "ClusterIP", "ports": ports}}
    creds = [r for r in rules if r.credential]
    if creds:
        values["volumes"] = [{"name": _volume(r), "projected": {"sources": [
            {"secret": {"name": f"{r.name}-credential", "items": [{"key": "credential", "path": "credential"}]}},
            {"configMap": {"name": f"{r.name}-credential-sds", "items": [{"key": "sds.yaml", "path": "sds.yaml"}]}},
        ]}} for r in creds]
        values["volumeMounts"] = [{"name": _volume(r), "mountPath": f"{CREDENTIALS_DIR}/{r.name}", "readOnly": True}
                                  for r in creds]
    return [{"name": EGRESS_GATEWAY, "namespace": EGRESS_NAMESPACE, "repository": istio.REPOSITORY,
             "chart": "gateway", "version": istio.serving_revision(spec)[1], "values": values,
             "depends_on": [holder], "concern": "egress"}]


def gateway_rules(spec, cluster: str) -> list:
    """The rules of ``cluster`` that leave through the Istio egress gateway: every exact-host rule
    in sidecar mode (wildcard rules leave from the sidecars)."""
    if spec.backend.type != "istio" or spec.backend.istio.data_plane == "ambient":
        return []
    return [r for r in spec.egress if cluster in egress_clusters(spec, r) and not r.has_wildcard]


def cluster_local_hosts(spec) -> list[str]:
    """Hosts istiod must keep cluster-local (``meshConfig.serviceSettings`` ``clusterLocal: true``,
    set by ``istio.mesh_config``): the egress gateway's, whenever a cluster runs it (sidecar mode).

    Why: multi-primary istiods merge a Service's endpoints from every cluster, so a sidecar would
    send a share of its egress to the other clusters' gateways. Off its own network that hop goes
    through the east-west gateway, whose ``AUTO_PASSTHROUGH`` filter chains match only the SNI
    ``outbound_.<port>_.<subset>_.<host>`` (istio 1.30.3 ``pilot/pkg/networking/core/gateway.go:926-927,
    979-1039``; ``pilot/pkg/model/service.go:1777-1779``), while the gateway's DestinationRule sets
    the destination host as SNI (``cluster_tls.go:451-454``: a user SNI replaces the automatic
    one), which the egress gateway's servers need: no filter chain matches and the connection
    fails (in prod two calls in three). On one network the other cluster's gateway may lack the
    rule, its credential or its Gateway server. A cluster-local host gets only the endpoints of
    the proxy's own cluster (``pilot/pkg/xds/endpoints/endpoint_builder.go:530-534``,
    ``pilot/pkg/model/cluster_local.go:108-146``, which keeps the defaults for kube-system and the
    API server). Ambient egress waypoints need nothing: an ambient service is local unless marked
    global (istio/api ``mesh/v1alpha1/config.proto`` ServiceSettings)."""
    if any(gateway_rules(spec, c) for c in spec.cluster_names()):
        return [EGRESS_GATEWAY_HOST]
    return []


def _volume(rule) -> str:
    return "cred-" + hashlib.sha256(rule.name.encode()).hexdigest()[:12]


def _gateway_port_name(p) -> str:
    kind = "http2" if p.is_http else "tls" if p.protocol in ("https", "tls") else "tcp"
    return f"{kind}-{p.app_port}"


def _gateway_ports(rules) -> dict[int, str]:
    return {p.app_port: _gateway_port_name(p) for r in rules for p in r.ports}


def _subset(rule, i: int, subsets: dict | None = None) -> str:
    """Per-host object name: the rule's name, suffixed with the host's index when it has several;
    hashed where two rules' hosts would share one in the cluster (rule ``a`` with two hosts and
    rule ``a-0``): ``subsets`` is :func:`subset_names` of the cluster's rules, so that the
    VirtualService, the gateway subset and the TLS-origination DestinationRule agree."""
    return (subsets or subset_names([rule]))[(("subset",), (rule.name, i))]


def hosted_rules(rules, ambient: bool) -> list:
    """Those of one cluster's ``rules`` that make objects named per host (:func:`_subset`): in
    sidecar mode the rules through the egress gateway (exact hosts: a VirtualService and a gateway
    subset per host, and TLS-origination DestinationRules), in ambient mode the rules with
    ``tlsOrigination`` ports (their DestinationRules)."""
    if ambient:
        return [r for r in rules if any(p.tls_origination for p in r.ports)]
    return [r for r in rules if not r.has_wildcard]


def subset_names(rules, index: dict | None = None) -> dict:
    """``{(("subset",), (rule name, host index)): name}`` for every host of ``rules`` (names.allocate):
    :func:`hosted_rules` of one cluster. Per cluster, because the names must differ only there (the
    VirtualServices and DestinationRules of ``mesh-egress`` and the subsets of the cluster's
    ``istio-egressgateway`` DestinationRule, whose host is cluster-local: :func:`cluster_local_hosts`),
    so rules that collide in no cluster keep their readable names (the release before allocation
    named every host so; names.allocate's promise). ``index``: ``id(rule)`` -> its index in
    ``mesh.egress``, for errors (default: the position in ``rules``)."""
    index = index or {}
    return names.allocate([(("subset",), (r.name, i), r.name if len(r.hosts) == 1 else f"{r.name}-{i}",
                            f"mesh.egress[{index.get(id(r), k)}].hosts[{i}]")
                           for k, r in enumerate(rules) for i in range(len(r.hosts))], what="egress subset")


def _se_ports(rule) -> list[dict]:
    out = []
    for p in rule.ports:
        if p.tls_origination:
            kind = "http" if p.is_http else "tcp"
            out.append({"number": p.app_port, "name": f"{kind}-{p.app_port}", "protocol": kind.upper(),
                        "targetPort": p.port})
        else:
            out.append({"number": p.port, "name": f"{p.protocol}-{p.port}", "protocol": _ISTIO_PROTOCOL[p.protocol]})
    return out


def _principals(spec, rule) -> list[str]:
    by_key = spec.services_by_key
    return sorted({principal(spec.trust_domain, ref.namespace, by_key[(ref.namespace, ref.service)].account)
                   for ref in rule.sources})


def _origination_rules(mesh: str, rule, subsets: dict | None = None) -> list[dict]:
    """A DestinationRule per host of ``rule`` that opens TLS on its ``tlsOrigination`` ports, seen
    only in ``mesh-egress`` (the egress gateway or waypoint), never by the applications."""
    ports = [p for p in rule.ports if p.tls_origination]
    if not ports:
        return []
    out = []
    for i, h in enumerate(rule.hosts):
        settings = []
        for p in ports:
            o = p.tls_origination
            tls = {"mode": o.mode, "sni": o.sni or h}
            if o.credential_name:
                tls["credentialName"] = o.credential_name
            settings.append({"port": {"number": p.app_port}, "tls": tls})
        out.append(k8s_object(NETWORKING, "DestinationRule", f"{_subset(rule, i, subsets)}-tls-origination", EGRESS_NAMESPACE,
                              mesh, spec={"host": h, "exportTo": ["."], "trafficPolicy": {"portLevelSettings": settings}}))
    return out


def _istio_problems(spec, rules, ambient: bool) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[int, tuple[str, str]] = {}
    tcp_seen: dict[int, str] = {}
    first: dict[str, int] = {}  # each rule's index in mesh.egress, found once (a scan per rule was quadratic)
    for k, r in enumerate(spec.egress):
        first.setdefault(r.name, k)
    for r in rules:
        i = first[r.name]
        if r.credential and ambient:
            problems.append((f"mesh.egress[{i}].credential",
                             "credential injection is rendered on the Istio egress gateway (sidecar mode); an ambient "
                             "egress waypoint serves every destination on Istio-internal listeners that no stable API "
                             "patches per destination, and its pods cannot mount the credential; use dataPlane: "
                             "sidecar, or let the application send the header"))
        if ambient and r.has_wildcard:
            problems += _ambient_wildcard_problems(i, r)
        for j, p in enumerate(r.ports):
            if ambient or r.has_wildcard:
                continue
            if p.app_port in _ISTIO_RESERVED:
                problems.append((f"mesh.egress[{i}].ports[{j}]", f"port {p.app_port} is reserved for Istio's own "
                                                                 f"listeners on the egress gateway (15000-15099); "
                                                                 f"call the destination on another port"))
            name = _gateway_port_name(p)
            other = seen.setdefault(p.app_port, (name, r.name))
            if other[0] != name:
                problems.append((f"mesh.egress[{i}].ports[{j}]", f"port {p.app_port} is {name.split('-')[0]} here but "
                                                                 f"{other[0].split('-')[0]} in rule {other[1]!r}; the "
                                                                 f"egress gateway Service has one protocol per port: "
                                                                 f"use another port for one of them"))
            if p.protocol == "tcp":
                owner = tcp_seen.setdefault(p.app_port, r.name)
                if owner != r.name:
                    problems.append((f"mesh.egress[{i}].ports[{j}]",
                                     f"opaque TCP on port {p.app_port} is also routed for rule {owner!r}; a sidecar "
                                     f"cannot tell TCP destinations on one port apart by name, so give one of them "
                                     f"another port"))
    return problems


_WILDCARD_VIP = ("Istio gives a wildcard host an address (so that ztunnel sends it to the egress waypoint instead of "
                 "passing it through, where the egress NetworkPolicy drops it) only with resolution DYNAMIC_DNS "
                 "(istio 1.30.3 pilot/pkg/controllers/ipallocate/ipallocate.go:361-363, "
                 "pilot/pkg/serviceregistry/ambient/services.go:590-595)")


def _ambient_wildcard_problems(i: int, rule) -> list[Problem]:
    """Why an ambient wildcard rule cannot be rendered as a ``DYNAMIC_DNS`` ServiceEntry on the
    egress waypoint (:data:`_WILDCARD_VIP`): DYNAMIC_DNS needs every host wildcarded
    (pkg/config/validation/validation.go:3073-3079) and HTTP, TLS, GRPC or HTTP2 ports (3090-3097);
    a TLS port of a wildcard DYNAMIC_DNS entry gets no configuration unless istiod runs with
    ``ENABLE_WILDCARD_HOST_SERVICE_ENTRIES_FOR_TLS`` (pilot/pkg/features/experimental.go:211-214,
    default false, "susceptible to SNI spoofing"; ambient/services.go:600-604), which we do not set."""
    out: list[Problem] = []
    exact = [h for h in rule.hosts if not h.startswith("*.")]
    if exact:
        out.append((f"mesh.egress[{i}].hosts", f"{_WILDCARD_VIP}, and DYNAMIC_DNS needs every host of an entry "
                                                f"wildcarded: move {', '.join(exact)} to a rule of its own"))
    for j, p in enumerate(rule.ports):
        if p.protocol in ("https", "tls"):
            out.append((f"mesh.egress[{i}].ports[{j}]", f"{_WILDCARD_VIP}, and the egress waypoint serves TLS for a "
                                                        f"wildcard DYNAMIC_DNS host only when istiod runs with "
                                                        f"ENABLE_WILDCARD_HOST_SERVICE_ENTRIES_FOR_TLS, off by default "
                                                        f"as open to SNI spoofing (pilot/pkg/features/experimental.go:"
                                                        f"211-214); list the hosts, use protocol http, or use "
                                                        f"dataPlane: sidecar"))
        elif p.protocol == "tcp":
            out.append((f"mesh.egress[{i}].ports[{j}]", f"{_WILDCARD_VIP}, and DYNAMIC_DNS serves HTTP, TLS and gRPC "
                                                        f"only (pkg/config/validation/validation.go:3090-3097): list "
                                                        f"the hosts"))
    return out


def ambient_egress_fences(spec, cluster: str) -> list[dict]:
    """A default-deny egress ``NetworkPolicy`` (:data:`EGRESS_FENCE`) per application namespace of
    ``cluster`` (ambient mode), which lets pods reach only the cluster itself: kube-dns (UDP and TCP
    53), every pod of the cluster on every port, and, with several networks, the other networks'
    east-west gateways on HBONE 15008. The egress waypoint is a pod of the cluster, so the allowed
    destinations leave through it and its AuthorizationPolicies; anything else is dropped.

    Why (upstream): ztunnel has no registry-only mode; a destination it knows no upstream for is
    sent on as plain TCP (istio/ztunnel 1.30.3 ``src/proxy/outbound.rs:599-629``, test
    ``build_request_unknown_dest`` 925-942; istio#54281), and mesh config
    ``outboundTrafficPolicy`` is read by sidecars only. Ambient never bypasses NetworkPolicy, and
    in-pod redirection makes ztunnel's connections leave from the pod, so the pod's egress policy
    governs them: HBONE is TCP 15008 to the destination pod or waypoint
    (https://istio.io/latest/docs/ambient/usage/networkpolicy/). Kubelet probes arrive SNATed from
    169.254.7.127 (same page); they are ingress, and this policy has ``policyTypes: [Egress]``
    only, so probes and replies to inbound connections are untouched. ServiceEntry hosts resolve
    to addresses ztunnel knows because ztunnel captures DNS (istio/istio 1.30.3
    ``manifests/charts/istio-cni/values.yaml:70`` ``ambient.dnsCapture: true``); kube-dns is
    matched by ``k8s-app: kube-dns`` in ``kube-system``
    (https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/) and namespaces
    by the automatic ``kubernetes.io/metadata.name`` label; a cluster running NodeLocal DNSCache
    names its listen address (``clusters[].nodeLocalDns``), admitted as an ``ipBlock`` on 53
    (https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/). Pods of other clusters on the same
    network are not modelled: ambient multi-cluster needs separate networks (``spec``). Host-network
    addresses (the API server, nodes) are outside every pod selector; a workload that calls them
    needs an ``overrides`` patch adding an ``ipBlock``, which then counts as egress.

    Raises :class:`TranslationError` when another network's east-west gateway has no static
    addresses (``clusters[].eastWestGateway.addresses``): cross-network HBONE goes to that
    gateway's address, which must then be named."""
    from ipaddress import ip_address

    from .render import app_namespaces  # render imports this module

    me = next(c for c in spec.clusters if c.name == cluster)
    problems: list[Problem] = []
    gateways: list[str] = []
    for i, c in enumerate(spec.clusters):
        if spec.network_of(c) == spec.network_of(me):
            continue
        if c.east_west_gateway is None:
            problems.append((f"mesh.clusters[{i}].eastWestGateway",
                             f"in ambient mode egress is enforced by a NetworkPolicy in every application namespace "
                             f"(ztunnel has no registry-only mode), and cross-network HBONE from {cluster} goes to "
                             f"{c.name}'s east-west gateway, which the policy must name by address: give it static "
                             f"addresses (eastWestGateway: {{addresses: [...]}})"))
            continue
        gateways += [f"{a}/{ip_address(a).max_prefixlen}" for a in c.east_west_gateway.addresses]
    if problems:
        raise TranslationError(problems)
    rules: list[dict] = [
        {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                 "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
         "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"to": [{"namespaceSelector": {}}]},  # every pod here: HBONE to meshed pods and waypoints, TCP to the rest
    ]
    if me.node_local_dns:  # NodeLocal DNSCache listens on the host network, outside every pod selector
        dns = ip_address(me.node_local_dns)
        rules.insert(1, {"to": [{"ipBlock": {"cidr": f"{dns}/{dns.max_prefixlen}"}}],
                         "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]})
    if gateways:
        rules.append({"to": [{"ipBlock": {"cidr": g}} for g in sorted(set(gateways))],
                      "ports": [{"protocol": "TCP", "port": HBONE_PORT}]})
    namespaces = [o["metadata"]["name"] for o in app_namespaces(spec, cluster, lambda ns: {})]
    return [k8s_object(NETWORK_POLICY_API, "NetworkPolicy", EGRESS_FENCE, ns, spec.name, spec={
        "podSelector": {}, "policyTypes": ["Egress"], "egress": rules}) for ns in namespaces]


def istio_egress(spec, cluster: str) -> list[dict]:
    """Istio egress objects for ``cluster`` (in sidecar mode empty when no egress rule has a
    source there; in ambient mode always the :func:`ambient_egress_fences`); see the module
    docstring. Raises :class:`TranslationError` for credentials in ambient mode, Istio's reserved
    ports, ports whose protocol differs between rules, and east-west gateways without static
    addresses in ambient multi-network meshes."""
    mesh, ambient = spec.name, spec.backend.istio.data_plane == "ambient"
    fences = ambient_egress_fences(spec, cluster) if ambient else []
    rules = [r for r in spec.egress if cluster in egress_clusters(spec, r)]
    if not rules:
        return fences
    problems = _istio_problems(spec, rules, ambient)
    if problems:
        raise TranslationError(problems)
    objects = [k8s_object("v1", "Namespace", EGRESS_NAMESPACE, None, mesh)]
    index = {id(r): k for k, r in enumerate(spec.egress)}
    subset_map = subset_names(hosted_rules(rules, ambient), index)
    # a rule's waypoint AuthorizationPolicy is named after the rule: one named like the waypoint's
    # default deny (fixed) moves to the hashed name (names.rename), never shares it
    named: list[tuple] = []
    if ambient:
        objects.append(k8s_object(GATEWAY_API, "Gateway", EGRESS_WAYPOINT, EGRESS_NAMESPACE, mesh,
                                  labels={"istio.io/waypoint-for": "service"},
                                  spec={"gatewayClassName": "istio-waypoint",
                                        "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}))
        objects.append(waypoint_default_deny(mesh, EGRESS_NAMESPACE, EGRESS_WAYPOINT))
        named.append((objects[-1], ("waypoint-default-deny",), "mesh.backend.istio.dataPlane", True))
    for r in rules:
        source_ns = sorted({ref.namespace for ref in r.sources})
        via_gateway = not ambient and not r.has_wildcard
        objects.append(k8s_object(NETWORKING, "ServiceEntry", r.name, EGRESS_NAMESPACE, mesh,
                                  labels={"istio.io/use-waypoint": EGRESS_WAYPOINT} if ambient else None,
                                  annotations={ALLOW_WILDCARD: "true"} if r.allow_wildcard else None, spec={
            "hosts": list(r.hosts),
            "exportTo": ["*"] if ambient else source_ns + (["."] if via_gateway else []),
            "location": "MESH_EXTERNAL",
            "ports": _se_ports(r),
            # ambient wildcards: DYNAMIC_DNS, the only resolution Istio allocates a wildcard address for
            "resolution": ("DYNAMIC_DNS" if ambient else "NONE") if r.has_wildcard else "DNS",
        }))
        if ambient:
            objects.append(k8s_object(SECURITY, "AuthorizationPolicy", r.name, EGRESS_NAMESPACE, mesh, spec={
                "targetRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry", "name": r.name}],
                "action": "ALLOW",
                "rules": [{"from": [{"source": {"principals": _principals(spec, r)}}],
                           "to": [{"operation": {"ports": [str(p.app_port) for p in r.ports]}}]}]}))
            named.append((objects[-1], ("egress", r.name), f"mesh.egress[{index[id(r)]}].name"))
        if ambient or via_gateway:
            objects += _origination_rules(mesh, r, subset_map)
    if not ambient:
        objects += egress_gateway_objects(spec, gateway_rules(spec, cluster), subset_map)
        objects += _hide_from_other_services(spec, rules, cluster)
    names.rename(named)
    return objects + fences


def egress_gateway_objects(spec, rules, subset_map: dict | None = None) -> list[dict]:
    """The routing and policy that force ``rules`` through the egress gateway (sidecar mode).

    Per rule: an Istio ``Gateway`` named after the rule (a server per host and application port:
    ``HTTPS`` for HTTP ports, ``TLS`` otherwise, all ``tls.mode: ISTIO_MUTUAL``), an
    ``AuthorizationPolicy`` on the gateway pods (``istio: egressgateway``) admitting the source
    principals to the hosts (``hosts``, with and without ``:port``, on HTTP ports;
    ``connection.sni`` on TLS and TCP ports) and ports, and the credential objects
    (:func:`credential_objects`); per host a ``VirtualService`` (``mesh`` -> gateway subset,
    gateway -> host); one ``DestinationRule`` ``istio-egressgateway`` with an ``ISTIO_MUTUAL``
    subset per host (SNI = host). Object names: the rule's name, ``-<i>`` per host when it has
    several, hashed where two share one in the cluster (``subset_map``: :func:`subset_names` of
    the cluster's :func:`hosted_rules`; default: of ``rules``, one cluster's gateway rules)."""
    if not rules:
        return []
    mesh = spec.name
    objects: list[dict] = []
    subsets = []
    if subset_map is None:
        index = {id(r): k for k, r in enumerate(spec.egress)}
        subset_map = subset_names(rules, index)
    all_ns: set[str] = set()
    for r in rules:
        source_ns = sorted({ref.namespace for ref in r.sources})
        all_ns.update(source_ns)
        gw_ref = f"{EGRESS_NAMESPACE}/{r.name}"
        servers = []
        for i, h in enumerate(r.hosts):
            n = _subset(r, i, subset_map)
            http, tls, tcp = [], [], []
            for p in r.ports:
                a = p.app_port
                servers.append({"port": {"number": a, "name": f"{_gateway_port_name(p)}-{i}",
                                         "protocol": "HTTPS" if p.is_http else "TLS"},
                                "hosts": [h], "tls": {"mode": "ISTIO_MUTUAL"}})
                to_gateway = {"destination": {"host": EGRESS_GATEWAY_HOST, "subset": n, "port": {"number": a}}}
                to_host = {"destination": {"host": h, "port": {"number": a}}}
                if p.is_http:
                    http += [{"match": [{"gateways": ["mesh"], "port": a}], "route": [to_gateway]},
                             {"match": [{"gateways": [gw_ref], "port": a}], "route": [to_host]}]
                elif p.protocol in ("https", "tls"):
                    tls.append({"match": [{"gateways": ["mesh"], "port": a, "sniHosts": [h]}], "route": [to_gateway]})
                    tcp.append({"match": [{"gateways": [gw_ref], "port": a}], "route": [to_host]})
                else:
                    tcp += [{"match": [{"gateways": ["mesh"], "port": a}], "route": [to_gateway]},
                            {"match": [{"gateways": [gw_ref], "port": a}], "route": [to_host]}]
            vs: dict = {"hosts": [h], "gateways": ["mesh", gw_ref], "exportTo": source_ns + ["."]}
            for key, routes in (("http", http), ("tls", tls), ("tcp", tcp)):
                if routes:
                    vs[key] = routes
            objects.append(k8s_object(NETWORKING, "VirtualService", n, EGRESS_NAMESPACE, mesh, spec=vs))
            subsets.append({"name": n, "trafficPolicy": {"portLevelSettings": [
                {"port": {"number": p.app_port}, "tls": {"mode": "ISTIO_MUTUAL", "sni": h}} for p in r.ports]}})
        objects.append(k8s_object(NETWORKING, "Gateway", r.name, EGRESS_NAMESPACE, mesh, spec={
            "selector": dict(EGRESS_GATEWAY_LABELS), "servers": servers}))
        who = lambda: [{"source": {"principals": _principals(spec, r)}}]  # noqa: E731 (a fresh list per rule)
        rules_ = []
        http_ports = [p.app_port for p in r.ports if p.is_http]
        if http_ports:
            hosts = list(r.hosts) + [f"{h}:{a}" for h in r.hosts for a in http_ports]
            rules_.append({"from": who(), "to": [{"operation": {"hosts": hosts, "ports": [str(a) for a in http_ports]}}]})
        l4_ports = [str(p.app_port) for p in r.ports if not p.is_http]
        if l4_ports:
            rules_.append({"from": who(), "to": [{"operation": {"ports": l4_ports}}],
                           "when": [{"key": "connection.sni", "values": list(r.hosts)}]})
        objects.append(k8s_object(SECURITY, "AuthorizationPolicy", r.name, EGRESS_NAMESPACE, mesh, spec={
            "selector": {"matchLabels": dict(EGRESS_GATEWAY_LABELS)}, "action": "ALLOW", "rules": rules_}))
        objects += credential_objects(mesh, r)
    objects.append(k8s_object(NETWORKING, "DestinationRule", EGRESS_GATEWAY, EGRESS_NAMESPACE, mesh, spec={
        "host": EGRESS_GATEWAY_HOST, "exportTo": sorted(all_ns), "subsets": subsets}))
    return objects


def credential_objects(mesh: str, rule) -> list[dict]:
    """The header injection of ``rule.credential`` at the egress gateway (empty without one).

    The value never enters a custom resource: Secret ``<rule>-credential`` (key ``credential``,
    a deploy-time :class:`~mesh_components.core.slots.Slot` filled from the Pulumi secret config key
    ``credential.secretConfig``) and ConfigMap ``<rule>-credential-sds`` (key ``sds.yaml``, an SDS
    ``DiscoveryResponse`` holding a generic secret whose value is read from the file
    ``credential``) are mounted together into the gateway pods (:func:`egress_releases`), and an
    ``EnvoyFilter`` inserts Envoy's ``credential_injector`` HTTP filter (generic credential,
    ``overwrite: true``, so an application-sent value is replaced) before the router on the filter
    chain of each host and HTTP port of the rule, after the gateway's authorization. Envoy reads the
    secret through file-based SDS (``path_config_source`` with ``watched_directory``, so a rotated
    Secret is picked up). Upstream: https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/credential_injector_filter
    (filter and ``envoy.http.injected_credentials.generic`` are built into istio/proxy 1.30)."""
    cred = rule.credential
    if cred is None:
        return []
    directory = f"{CREDENTIALS_DIR}/{rule.name}"
    secret_name = f"{rule.name}-credential"
    sds = {"resources": [{
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
        "name": secret_name,
        "generic_secret": {"secret": {"filename": f"{directory}/credential"}},
    }]}
    patches = []
    for h in rule.hosts:
        for p in rule.ports:
            if not p.is_http:
                continue
            patches.append({
                "applyTo": "HTTP_FILTER",
                "match": {"context": "GATEWAY", "listener": {"portNumber": p.app_port, "filterChain": {
                    "sni": h, "filter": {"name": "envoy.filters.network.http_connection_manager",
                                         "subFilter": {"name": "envoy.filters.http.router"}}}}},
                "patch": {"operation": "INSERT_BEFORE", "value": {
                    "name": "envoy.filters.http.credential_injector",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.credential_injector.v3"
                                 ".CredentialInjector",
                        "overwrite": True,
                        "credential": {
                            "name": "envoy.http.injected_credentials.generic",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.http.injected_credentials.generic.v3"
                                         ".Generic",
                                "header": cred.header,
                                "credential": {"name": secret_name, "sds_config": {"path_config_source": {
                                    "path": f"{directory}/sds.yaml",
                                    "watched_directory": {"path": directory}}}}}}}}}})
    return [
        k8s_object("v1", "Secret", secret_name, EGRESS_NAMESPACE, mesh, type="Opaque",
                   stringData={"credential": Slot(CONFIG_SOURCE, cred.secret_config, None, secret=True)}),
        k8s_object("v1", "ConfigMap", f"{rule.name}-credential-sds", EGRESS_NAMESPACE, mesh,
                   data={"sds.yaml": yaml.safe_dump(sds, sort_keys=False)}),
        k8s_object(ENVOY_FILTER_API, "EnvoyFilter", f"{rule.name}-credential", EGRESS_NAMESPACE,
                   mesh, spec={"workloadSelector": {"labels": dict(EGRESS_GATEWAY_LABELS)},
                               "configPatches": patches}),
    ]


def _hide_from_other_services(spec, rules, cluster: str) -> list[dict]:
    """Sidecars for the non-source services of source namespaces: Kubernetes services and the
    control plane only, so an entry exported to the namespace is not visible to them."""
    allowed = {(ref.namespace, ref.service) for r in rules for ref in r.sources}
    namespaces = {ns for ns, _ in allowed}
    out = []
    for s in spec.services:
        if s.namespace in namespaces and (s.namespace, s.name) not in allowed and cluster in spec.service_clusters(s):
            out.append(k8s_object(NETWORKING, "Sidecar", f"{s.name}-no-egress", s.namespace, spec.name, spec={
                "workloadSelector": {"labels": s.pod_labels()},
                "egress": [{"hosts": ["*/*.svc.cluster.local", "istio-system/*"]}]}))
    # a VM with a service of its own is never a source (sources name declared services); its proxy's
    # labels are its WorkloadEntry's, which a Sidecar selects as a pod's (core.external_workloads)
    from .external_workloads import labels as vm_labels

    for w in own_service_workloads(spec):
        if w.namespace in namespaces and w.cluster == cluster:
            out.append(k8s_object(NETWORKING, "Sidecar", f"{w.name}-no-egress", w.namespace, spec.name, spec={
                "workloadSelector": {"labels": vm_labels(spec, w)},
                "egress": [{"hosts": ["*/*.svc.cluster.local", "istio-system/*"]}]}))
    return out


def protocol_label(port) -> str:
    """How a port leaves the mesh, for tables: ``http``, ``https``, ``tls``, ``tcp``, or
    ``http+tls``/``tcp+tls`` with TLS origination."""
    return f"{port.protocol}+tls" if port.tls_origination else port.protocol


def allowed_egress(spec) -> list[tuple[str, str, str, int]]:
    """The intent as a table: ``(namespace/service, host, protocol, port)`` rows, sorted; ``port``
    is the destination port (what leaves the mesh), ``protocol`` as :func:`protocol_label`."""
    return sorted((f"{ref.namespace}/{ref.service}", h, protocol_label(p), p.port)
                  for r in spec.egress for ref in r.sources for h in r.hosts for p in r.ports)


def egress_summary(spec, cluster: str) -> dict:
    """What leaves ``cluster`` and how, for stack outputs: ``{"enforcedBy", "rules"}`` with
    ``enforcedBy`` one of ``istio-egressgateway``, ``egress-waypoint``, ``sidecar`` (Istio without
    gateway rules), ``EgressNetwork`` (Linkerd), ``Egress`` (OSM) or None (no rule here), and per
    rule ``{name, hosts, ports, sources, via}`` (``via``: ``mesh-egress/istio-egressgateway`` or
    ``direct``)."""
    rules = [r for r in spec.egress if cluster in egress_clusters(spec, r)]
    kind = spec.backend.type
    ambient = kind == "istio" and spec.backend.istio.data_plane == "ambient"
    through = {r.name for r in gateway_rules(spec, cluster)}
    enforced = (None if not rules else {"linkerd": "EgressNetwork", "osm": "Egress"}.get(kind)
                or (EGRESS_WAYPOINT if ambient else EGRESS_GATEWAY if through else "sidecar"))
    return {"enforcedBy": enforced, "rules": [{
        "name": r.name, "hosts": list(r.hosts),
        "ports": [f"{protocol_label(p)}:{p.port}" for p in r.ports],
        "sources": sorted(f"{ref.namespace}/{ref.service}" for ref in r.sources),
        "via": f"{EGRESS_NAMESPACE}/{EGRESS_GATEWAY}" if r.name in through else
               f"{EGRESS_NAMESPACE}/{EGRESS_WAYPOINT}" if ambient else "direct"} for r in rules]}


LINKERD_EGRESS_NETWORK = "mesh-egress"
_LINKERD_POLICY = "policy.linkerd.io"
LINKERD_GLOBAL_EGRESS_NAMESPACE = "linkerd-egress"
"""``egress.globalEgressNetworkNamespace`` of linkerd-control-plane (linkerd2 edge-26.8.3
charts/linkerd-control-plane/values.yaml:746), passed to the destination controller only
(templates/destination.yaml:355): no chart creates the namespace."""


def linkerd_global_egress(spec, cluster: str) -> list[dict]:
    """The cluster-wide egress fence of Linkerd: Namespace ``linkerd-egress`` (mesh-owned) and an
    ``EgressNetwork`` ``mesh-egress`` with ``trafficPolicy: Deny`` and no ``networks`` (every
    address outside the cluster networks) in it. The policy controller applies a client
    namespace's own EgressNetworks, or, when it has none, those of the global egress namespace
    (linkerd2 edge-26.8.3 policy-controller/k8s/index/src/outbound/index/egress_network.rs:61-78),
    so every namespace without an egress rule is closed, as Istio's REGISTRY_ONLY and OSM's
    ``enableEgress: false`` close it. With several clusters the service-mirror controllers in
    ``linkerd-multicluster`` (meshed: multicluster/charts/linkerd-multicluster/templates/
    controller/deployment.yaml:28) must reach the other clusters' API servers, whose addresses
    exist only in deploy-time kubeconfigs: that mesh-owned namespace keeps open egress with an
    ``Allow`` EgressNetwork of its own, as it has without this fence."""
    mesh = spec.name
    out = [k8s_object("v1", "Namespace", LINKERD_GLOBAL_EGRESS_NAMESPACE, None, mesh),
           k8s_object(f"{_LINKERD_POLICY}/v1alpha1", "EgressNetwork", LINKERD_EGRESS_NETWORK,
                      LINKERD_GLOBAL_EGRESS_NAMESPACE, mesh, spec={"trafficPolicy": "Deny"})]
    if len(spec.clusters) > 1:
        from .multicluster import LINKERD_MC_NAMESPACE

        out.append(k8s_object(f"{_LINKERD_POLICY}/v1alpha1", "EgressNetwork", "service-mirror-api-servers",
                              LINKERD_MC_NAMESPACE, mesh, spec={"trafficPolicy": "Allow"}))
    # the user's opt-out (backend.linkerd.egressOpenNamespaces): a namespace's own EgressNetwork
    # replaces the global Deny there (egress_network.rs:61-78)
    for ns in sorted(set(spec.backend.linkerd.egress_open_namespaces)):
        out.append(k8s_object(f"{_LINKERD_POLICY}/v1alpha1", "EgressNetwork", LINKERD_OPEN_EGRESS_NETWORK, ns, mesh,
                              spec={"trafficPolicy": "Allow"}))
    return out


LINKERD_OPEN_EGRESS_NETWORK = "mesh-egress-open"


def _origination_and_credential_problems(spec, rules, mesh_name: str) -> list[Problem]:
    problems = []
    for i, r in rules:
        for j, p in enumerate(r.ports):
            if p.tls_origination:
                problems.append((f"mesh.egress[{i}].ports[{j}].tlsOrigination",
                                 f"{mesh_name} cannot originate TLS for egress traffic: let the application speak TLS "
                                 f"(protocol https on port {p.port}) or use the istio backend"))
        if r.credential:
            problems.append((f"mesh.egress[{i}].credential",
                             f"{mesh_name} cannot add request headers to egress traffic, so the credential would have "
                             f"to live in the application; remove credential or use the istio backend (sidecar mode)"))
    return problems


def _linkerd_managed_crd_problems(spec, cluster: str, rules) -> list[Problem]:
    """A cluster whose Gateway API CRDs the cloud manages (``gatewayApiCrds: managed``) has the
    standard channel, which never serves TLSRoute ``v1alpha2``, the only version Linkerd's policy
    controller reads (``mesh_components.core.gateway_api``): its TLS egress routes would never be seen
    and the namespace's ``Deny`` EgressNetwork would block the destination."""
    k, me = next((k, c) for k, c in enumerate(spec.clusters) if c.name == cluster)
    if me.gateway_api_crds != "managed":
        return []
    names = sorted({r.name for _, r in rules if any(p.protocol in ("https", "tls") for p in r.ports)})
    if not names:
        return []
    return [(f"mesh.clusters[{k}].gatewayApiCrds",
             f"Linkerd reads TLSRoute only at v1alpha2 (linkerd2 edge-26.8.3 policy-controller/k8s/api/src/lib.rs:41-79), "
             f"which the cloud-managed Gateway API CRDs (standard channel) never serve, so egress "
             f"{', '.join(names)} would be denied on {cluster}; set gatewayApiCrds: install (with the cloud's "
             f"Gateway API turned off) for the experimental channel, or give those rules protocol http")]


def linkerd_egress(spec, cluster: str) -> list[dict]:
    """Linkerd egress objects for ``cluster`` (see the module docstring). Raises
    :class:`TranslationError` for shared namespaces (unless ``approximate: namespace``), opaque
    TCP, TLS origination, credentials, and TLS egress on a cluster whose Gateway API CRDs the cloud
    manages (:func:`_linkerd_managed_crd_problems`)."""
    mesh = spec.name
    rules = [(i, r) for i, r in enumerate(spec.egress) if cluster in egress_clusters(spec, r)]
    problems = _origination_and_credential_problems(spec, rules, "Linkerd")
    by_ns: dict[str, list] = {}
    for i, r in rules:
        allowed = {(ref.namespace, ref.service) for ref in r.sources}
        for ns in sorted({ref.namespace for ref in r.sources}):
            others = sorted([s.name for s in spec.services if s.namespace == ns and (ns, s.name) not in allowed]
                            + [w.name for w in own_service_workloads(spec, ns)])  # VMs: clients of ns too
            if others and r.approximate != "namespace":
                problems.append((f"mesh.egress[{i}].sources", f"Linkerd allows egress per namespace, and {ns} also "
                                                              f"runs {', '.join(others)}, which would get {r.name} too; "
                                                              f"move the sources to their own namespace, or set "
                                                              f"approximate: namespace to accept that"))
            by_ns.setdefault(ns, []).append(r)
        for j, p in enumerate(r.ports):
            if p.protocol == "tcp":
                problems.append((f"mesh.egress[{i}].ports[{j}]", "Linkerd cannot limit opaque TCP egress to host "
                                                                 "names; use protocol tls/https or http"))
    problems += _linkerd_managed_crd_problems(spec, cluster, rules)
    opened = spec.backend.linkerd.egress_open_namespaces
    for k, ns in enumerate(opened):
        if ns in by_ns:
            problems.append((f"mesh.backend.linkerd.egressOpenNamespaces[{k}]",
                             f"{ns} is a source namespace of egress {', '.join(sorted(r.name for r in by_ns[ns]))}, "
                             f"whose Deny EgressNetwork it would open; remove {ns} from egressOpenNamespaces, or "
                             f"the rule's sources from {ns}"))
    if problems:
        raise TranslationError(problems)
    parent = lambda port: {"group": _LINKERD_POLICY, "kind": "EgressNetwork",  # noqa: E731
                           "name": LINKERD_EGRESS_NETWORK, "port": port}
    objects = linkerd_global_egress(spec, cluster)
    for ns in sorted(by_ns):
        objects.append(k8s_object(f"{_LINKERD_POLICY}/v1alpha1", "EgressNetwork", LINKERD_EGRESS_NETWORK, ns, mesh,
                                  spec={"trafficPolicy": "Deny"}))
        for r in by_ns[ns]:
            for p in r.ports:
                # TLSRoute at the version Linkerd's policy controller reads (gateway_api.LINKERD_TLSROUTE)
                kind, api = ("HTTPRoute", GATEWAY_API) if p.protocol == "http" else ("TLSRoute", LINKERD_TLSROUTE)
                objects.append(k8s_object(api, kind, f"{r.name}-{p.port}", ns, mesh, spec={
                    "parentRefs": [parent(p.port)], "hostnames": list(r.hosts),
                    "rules": [{"backendRefs": [parent(p.port)]}]}))
    return objects


def osm_egress(spec, cluster: str) -> list[dict]:
    """OSM ``Egress`` policies for ``cluster``: exactly the source identities, hosts and ports.
    Raises :class:`TranslationError` for TCP (OSM ignores hosts there), TLS origination and
    credentials."""
    by_key = spec.services_by_key
    rules = [(i, r) for i, r in enumerate(spec.egress) if cluster in egress_clusters(spec, r)]
    problems = _origination_and_credential_problems(spec, rules, "OSM")
    for i, r in rules:
        for j, p in enumerate(r.ports):
            if p.protocol == "tcp":
                problems.append((f"mesh.egress[{i}].ports[{j}]",
                                 "OSM matches TCP egress by destination IP range only and ignores host names, so this "
                                 "port would be open to every address; use protocol tls/https or http"))
    if problems:
        raise TranslationError(problems)
    objects = []
    for _, r in rules:
        for ns in sorted({ref.namespace for ref in r.sources}):
            accounts = sorted({by_key[(ref.namespace, ref.service)].account for ref in r.sources if ref.namespace == ns})
            objects.append(k8s_object("policy.openservicemesh.io/v1alpha1", "Egress", r.name, ns, spec.name, spec={
                "sources": [{"kind": "ServiceAccount", "name": sa, "namespace": ns} for sa in accounts],
                "hosts": list(r.hosts),
                "ports": [{"number": p.port, "protocol": "http" if p.protocol == "http" else "https"}
                          for p in r.ports]}))
    return objects
