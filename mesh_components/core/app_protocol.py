"""Which protocol each mesh reads for an application's Service port, and what makes it read the
spec's ``protocol`` (and ``serverFirst``).

A mesh reads a port's protocol from the application's Service, which the application owns:

- OSM v1.2.4 takes ``appProtocol``, else the port name's prefix (``tcp-server-first-``, ``http-``,
  ``tcp-``, ``grpc-``), else **http** (pkg/k8s/client.go:296-310; the prefixes and their order:
  pkg/constants/constants.go:244-261, 310-311). So a ``tcp`` port named ``mysql`` is HTTP to OSM,
  and its TCPRoute never applies (pkg/catalog/inbound_traffic_policies.go:97-101 builds HTTP routes
  for it instead). A server-first protocol needs ``tcp-server-first``: the outbound listener's TLS and
  HTTP inspectors wait for the client's first bytes on every other port
  (pkg/envoy/lds/listener.go:69-111, 210-230); OSM's own demo sets ``appProtocol: tcp-server-first``
  on its mysql Service (demo/deploy-mysql.sh:17-30). :func:`osm_service_patches` renders a
  ``ServicePatch`` setting ``appProtocol`` on exactly the ports whose name would say otherwise.
  OSM builds filter chains for http, grpc, tcp and tcp-server-first only
  (pkg/envoy/lds/inmesh.go:36-58): ``http2`` is served as ``http`` (its HTTP connection manager's
  codec is AUTO, pkg/envoy/lds/http_connection.go:53) and ``tls`` (the application's own TLS) as
  ``tcp``.
- Istio 1.30.3 takes ``appProtocol``, else the name's prefix, and sniffs an unrecognised one, except
  on the well-known ports 25, 53, 3306 and 27017, which it reads as TCP (pkg/config/kube/
  conversion.go:26-93; prefixes: pkg/config/protocol/instance.go:67-99). Sniffing waits for the
  client's bytes, so a server-first port needs a name Istio reads as TCP (``tcp``, ``mysql``,
  ``mongo``, ``redis``: ``IsTCP`` minus TLS/HTTPS, instance.go:126-134) or a well-known port: else
  :func:`server_first_problems` refuses it. The mesh's mTLS is STRICT (``istio.PeerAuthentication``),
  so no PERMISSIVE inspection waits on the inbound side either.
- Linkerd edge-26.8.3 detects the protocol unless the port is opaque. The client's proxy takes
  opacity from the Service port's ``appProtocol``, else the Service's
  ``config.linkerd.io/opaque-ports`` annotation, else the control plane's default opaque ports
  (policy-controller/k8s/index/src/outbound/index.rs:252-287); the server's side from the pod's
  annotation, which the injector sets to the defaults the pod exposes, else the defaults
  (pkg/inject/inject.go:870-910, controller/api/destination/watcher/workload_watcher.go:788-795),
  and from our ``Server``'s ``proxyProtocol: opaque`` where one selects the port. The defaults are
  the chart's ``proxy.opaquePorts``, ``25,587,3306,4444,5432,6379,9300,11211``
  (charts/linkerd-control-plane/values.yaml:236-245: the server-first protocols SMTP, MySQL,
  Galera, PostgreSQL, Redis, ElasticSearch, and Memcached), so a MySQL port 3306 works with no extra
  object. :func:`linkerd_problems` refuses a server-first port whose Service port is outside the
  effective list (after overrides), or whose target port is outside it where no opaque ``Server``
  of ours selects it (the destination controller then reads the Server:
  controller/api/destination/watcher/endpoints_watcher.go:611-650). An application Service
  annotated ``config.linkerd.io/opaque-ports`` replaces that list for its ports; it must then name
  the server-first port itself.

Server-Side Apply merges a patch's ``spec.ports`` entries into the Service's by the key
``(port, protocol)`` (k8s.io/api v0.36.3 core/v1/types.go:5981-5988 ``+listType=map``,
``+listMapKey=port``, ``+listMapKey=protocol``; client-go v0.36.3
applyconfigurations/internal/internal.go:8059-8067), so a patch entry carries both keys and the one
field it sets, ``appProtocol``, and the application keeps its names, target ports and every other
field. A different ``appProtocol`` the application already sets is a conflict the patch does not
force (``meta.k8s_patch``).
"""
from __future__ import annotations

from ..spec.errors import Problem
from .meta import k8s_patch

OSM_PROTOCOL = {"http": "http", "http2": "http", "grpc": "grpc", "tcp": "tcp", "tls": "tcp"}
"""Spec protocol -> the OSM v1.2.4 protocol that handles it (see the module doc)."""
OSM_SERVER_FIRST = "tcp-server-first"
OSM_NAME_PREFIXES = ("tcp-server-first", "http", "tcp", "grpc")
"""``constants.SupportedProtocolsInMesh`` in its order (pkg/constants/constants.go:310-311), the
order pkg/k8s/client.go:302-307 tries the port name's ``<protocol>-`` prefixes in."""

ISTIO_TCP = frozenset({"tcp", "mysql", "mongo", "redis"})
"""Port-name prefixes Istio reads as a plain TCP protocol (pkg/config/protocol/instance.go:67-99,
126-134), case-insensitive."""
ISTIO_KNOWN_PREFIXES = frozenset({"tcp", "udp", "grpc", "grpc-web", "http", "http_proxy", "http2", "https", "tls",
                                  "mongo", "redis", "mysql"})
ISTIO_WELL_KNOWN_TCP_PORTS = frozenset({25, 53, 3306, 27017})
"""Ports Istio reads as TCP when the name declares no protocol (pkg/config/kube/conversion.go:26-40, 86-92)."""

LINKERD_RELEASE = "linkerd-control-plane"
LINKERD_DEFAULT_OPAQUE_PORTS = "25,587,3306,4444,5432,6379,9300,11211"
"""``proxy.opaquePorts`` of the linkerd-control-plane chart, edge-26.8.3 values.yaml:245."""


def osm_protocol(port) -> str:
    """The protocol OSM must read for a spec :class:`~mesh_components.spec.ServicePort`."""
    return OSM_SERVER_FIRST if port.server_first else OSM_PROTOCOL[port.protocol]


def osm_protocol_from_name(name: str) -> str:
    """What OSM v1.2.4 reads for a Service port named ``name`` without ``appProtocol``: its
    ``<protocol>-`` prefix, else ``http`` (pkg/k8s/client.go:296-307)."""
    return next((p for p in OSM_NAME_PREFIXES if name.startswith(p + "-")), "http")


def osm_service_patches(spec, cluster: str) -> list[dict]:
    """``ServicePatch``es (``meta.k8s_patch`` + ``spec.ports``) of the application Services in
    ``cluster`` whose ports OSM would misread: per such port ``{port, protocol: TCP, appProtocol}``
    (``appProtocol`` from :func:`osm_protocol`), for every port whose spec ``name`` is unknown
    (None) or says another protocol by its prefix. Services in service order, ports in spec
    order; none when every name already says what the spec says."""
    out = []
    for s in spec.services:
        if cluster not in spec.service_clusters(s):
            continue
        entries = [{"port": p.port, "protocol": "TCP", "appProtocol": osm_protocol(p)} for p in s.ports
                   if p.name is None or osm_protocol_from_name(p.name) != osm_protocol(p)]
        if entries:
            out.append({**k8s_patch("v1", "Service", s.name, s.namespace), "spec": {"ports": entries}})
    return out


def version_app_protocol(spec, port) -> str:
    """``appProtocol`` of a port of the mesh's own per-version Services (``render.version_services``):
    the spec protocol, except on OSM, which reads only its own names (:func:`osm_protocol`)."""
    return osm_protocol(port) if spec.backend.type == "osm" else port.protocol


def istio_protocol(port: int, name: str | None) -> str | None:
    """The protocol Istio 1.30.3 reads for a Service port ``port`` named ``name`` without
    ``appProtocol`` (pkg/config/kube/conversion.go:48-93), lower-cased; ``"tcp"`` for a well-known
    port whose name declares nothing; None where it would sniff."""
    if name is None:
        return None
    lowered = name.lower()
    if lowered.startswith("grpc-web"):
        return "grpc-web"
    prefix = lowered.split("-", 1)[0]
    if prefix in ISTIO_KNOWN_PREFIXES:
        return prefix
    return "tcp" if port in ISTIO_WELL_KNOWN_TCP_PORTS else None


def server_first_problems(spec) -> list[Problem]:
    """``(path, message)`` for ``serverFirst`` ports Istio would sniff (see the module doc);
    Linkerd's check needs the rendered control plane (:func:`linkerd_problems`), OSM needs none."""
    if spec.backend.type != "istio":
        return []
    p: list[Problem] = []
    for i, s in enumerate(spec.services):
        for j, pt in enumerate(s.ports):
            if not pt.server_first:
                continue
            read = istio_protocol(pt.port, pt.name)
            if read not in ISTIO_TCP:
                said = "has no name in the spec" if pt.name is None else f"is named {pt.name!r}"
                how = "would sniff its protocol" if read is None else f"would read it as {read}"
                p.append((f"mesh.services[{i}].ports[{j}].name",
                          f"port {pt.port} is server-first and {said}; Istio reads a port's protocol from the "
                          f"Service port's name and {how}, waiting for the client's first bytes, which a "
                          f"server-first client never sends: name it 'tcp' or 'tcp-<suffix>' (or with a "
                          f"mysql-, mongo- or redis- prefix), here and on the application's Service"))
    return p


def parse_ports(text: str) -> set[int]:
    """A Linkerd port list (``"25,587,4320-4325"``) as a set of port numbers, ranges expanded;
    invalid parts are skipped, as the destination controller skips them (pkg/util/parsing.go:10-29
    ``ParsePorts``)."""
    out: set[int] = set()
    for part in str(text).split(","):
        lo, _, hi = part.strip().partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _opaque_server(objects: list[dict], pod_labels: dict[str, str], target: int) -> bool:
    """True when a rendered ``Server`` with ``proxyProtocol: opaque`` selects these pods on ``target``:
    the destination controller then marks the endpoint opaque (controller/api/destination/watcher/
    endpoints_watcher.go:611-650 ``SetToServerProtocol``) and the inbound proxy serves it opaque."""
    def selects(o: dict) -> bool:
        wanted = ((o["spec"].get("podSelector") or {}).get("matchLabels") or {})
        return bool(wanted) and set(wanted.items()) <= set(pod_labels.items())

    return any(o["kind"] == "Server" and o["apiVersion"].startswith("policy.linkerd.io/")
               and (o.get("spec") or {}).get("proxyProtocol") == "opaque" and o["spec"].get("port") == target
               and selects(o) for o in objects)


def linkerd_problems(spec, states) -> list[Problem]:
    """``(path, message)`` for each ``serverFirst`` port of a service in a cluster whose effective
    ``proxy.opaquePorts`` (the ``linkerd-control-plane`` release's, after overrides) lacks its
    Service port (the client's side), or its target port where no rendered opaque ``Server``
    selects it (the server's side); ``states``: cluster -> ``render.ClusterState``."""
    if spec.backend.type != "linkerd":
        return []
    found: dict[tuple, list[str]] = {}  # (i, j, listed, missing, patch) -> clusters
    for cluster, st in sorted(states.items()):
        rel = next((r for r in st.releases if r.name == LINKERD_RELEASE), None)
        if rel is None:
            continue
        listed = str((rel.values.get("proxy") or {}).get("opaquePorts", LINKERD_DEFAULT_OPAQUE_PORTS))
        opaque = parse_ports(listed)
        for i, s in enumerate(spec.services):
            if cluster not in spec.service_clusters(s):
                continue
            for j, pt in enumerate(s.ports):
                target = pt.target_port or pt.port
                inbound_ok = target in opaque or _opaque_server(st.objects, s.pod_labels(), target)
                missing = tuple(sorted({n for n, ok in ((pt.port, pt.port in opaque), (target, inbound_ok)) if not ok}))
                if pt.server_first and missing:
                    wanted = ",".join(([listed] if listed else []) + [str(n) for n in missing])
                    patch = (f"{{op: add, path: /values/proxy/opaquePorts, value: '{wanted}'}}" if "proxy" in rel.values
                             else f"{{op: add, path: /values/proxy, value: {{opaquePorts: '{wanted}'}}}}")
                    found.setdefault((i, j, listed, missing, patch), []).append(cluster)
    p: list[Problem] = []
    for (i, j, listed, missing, patch), clusters in sorted(found.items()):
        s = spec.services[i]
        p.append((f"mesh.services[{i}].ports[{j}].serverFirst",
                  f"port {s.ports[j].port} of {s.namespace}/{s.name} is server-first, but port(s) "
                  f"{', '.join(map(str, missing))} are not opaque in cluster(s) {', '.join(clusters)} "
                  f"(proxy.opaquePorts {listed!r}), so Linkerd's proxies would wait for the client's first bytes "
                  f"to detect the protocol: add them with an overrides entry {{kind: HelmRelease, name: "
                  f"{LINKERD_RELEASE}, patch: [{patch}]}} (restart the workloads so the injector annotates "
                  f"them anew)"))
    return p
