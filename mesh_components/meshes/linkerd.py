"""Linkerd control plane: Helm releases in install order and the namespaces they run in, per
cluster, with the mesh CA's trust anchor and issuer, and multi-cluster links (policy translation
lives in ``linkerd_policy``); and what the deployment around the policy decides: each policed
namespace's default inbound policy, the kubelet-probe routes a routed ``Server`` needs, which
services another cluster calls (the only ones exported) and the refusal of rules a multicluster
gateway would widen (issue 10, points 11 and 12; sources beside each function).

Upstream behaviour this follows: ../shared/charts/linkerd-control-plane/INSTALL-FACTS.md (charts
2026.8.3 from https://helm.linkerd.io/edge; ``linkerd-crds`` -> ``linkerd-control-plane`` ->
extensions), https://linkerd.io/2/tasks/install-helm/ (the Gateway API CRDs must exist first),
https://linkerd.io/2/tasks/installing-multicluster/ and the chart templates of linkerd/linkerd2
(``charts/linkerd-control-plane/templates/namespace.yaml``,
``multicluster/charts/linkerd-multicluster/templates/remote-access-service-mirror-rbac.yaml``).
"""
from __future__ import annotations

from ..core import multicluster as mc
from ..core.clouds import east_west_service
from ..spec.errors import Problem
from ..core.meta import deep_merge, k8s_object

REPOSITORY = "https://helm.linkerd.io/edge"
NAMESPACE = mc.LINKERD_NAMESPACE
MC_NAMESPACE = mc.LINKERD_MC_NAMESPACE


CRDS_VALUES = {"installGatewayAPI": False}
"""``linkerd-crds`` values: the Gateway API CRDs come from the mesh's own bundle
(``gateway_api``), never from the chart. linkerd2 ``charts/linkerd-crds/values.yaml:4`` defaults
``installGatewayAPI`` to ``true`` up to edge-25.9.3 and ``false`` at edge-26.8.3; the templates
(``templates/gateway.networking.k8s.io_tlsroutes.yaml:1``, same for the other route CRDs) render a
route CRD when ``enable<Kind>Routes`` or else ``installGatewayAPI`` is true. Said explicitly so that
an upgrade from an older chart never keeps installing them, whatever the chart's default."""

GATEWAY_API_ANNOTATION = "mesh-components.io/gateway-api"
"""Pod annotation of ``linkerd-destination`` (chart value ``destinationController.podAnnotations``,
merged over global ``podAnnotations`` in ``charts/linkerd-control-plane/templates/destination.yaml:166``
at edge-26.8.3): the Gateway API CRDs the cluster serves. The policy controller in that pod asks
discovery whether TLSRoute/TCPRoute ``v1alpha2`` is served only when it starts and otherwise never
watches them (``policy-controller/runtime/src/args.rs:331-361``, ``api_resource_exists`` at
``:514-527``); a change of the value rolls the pods after the new CRDs are served (the release
depends on the bundle, ``components.ControlPlane``)."""


def gateway_api_stamp(cluster) -> str:
    """The value of :data:`GATEWAY_API_ANNOTATION` for ``cluster``: ``<channel>-<version>``
    (``experimental-v1.6.1``) of the bundle the mesh installs, or ``managed`` where the cloud
    installs the CRDs (``clusters[].gatewayApiCrds: managed``; roll ``linkerd-destination`` after
    the cloud changes them)."""
    from ..core import gateway_api
    from ..spec import GATEWAY_API_VERSION

    if cluster.gateway_api_crds == "managed":
        return "managed"
    return f"{gateway_api.channel_for('linkerd')}-{GATEWAY_API_VERSION}"


def needs_gateway_api(spec) -> bool:
    """Linkerd's policy controller needs the Gateway API CRDs installed before it."""
    return True


def control_plane(spec, cluster, *, ca_values: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Objects and Helm releases of Linkerd in ``cluster``: ``(objects, releases)``.

    Releases (dicts ``{name, namespace, repository, chart, version, values, depends_on}``):
    ``linkerd-crds`` -> ``linkerd-control-plane`` (``identityTrustDomain`` = the mesh trust domain;
    trust anchors and the external issuer from ``ca_values["linkerd-control-plane"]``, see
    ``ca.ca_helm_values``) and, with several clusters, ``linkerd-multicluster``: one
    service-mirror controller per other cluster (``controllers``), one remote-access service
    account per other cluster (``remoteMirrorServiceAccountName``), and on several networks the
    ``linkerd-gateway`` with the cloud's load-balancer settings. Objects: the ``linkerd`` and
    ``linkerd-multicluster`` namespaces with the labels the CLI would give them (Helm does not
    create them; the chart's namespace-metadata Job is turned off so nothing else edits them).
    """
    mesh, td = spec.name, spec.trust_domain
    version = spec.backend.chart_version
    ca_values = ca_values or {}
    objects = [k8s_object("v1", "Namespace", NAMESPACE, None, mesh, labels={
        "linkerd.io/is-control-plane": "true", "config.linkerd.io/admission-webhooks": "disabled",
        "linkerd.io/control-plane-ns": NAMESPACE, "pod-security.kubernetes.io/enforce": "privileged"},
        annotations={"linkerd.io/inject": "disabled"})]

    def release(name, chart, values, depends_on=(), namespace=NAMESPACE):
        return {"name": name, "namespace": namespace, "repository": REPOSITORY, "chart": chart, "version": version,
                "values": deep_merge(values, ca_values.get(chart, {})), "depends_on": list(depends_on)}

    releases = [release("linkerd-crds", "linkerd-crds", CRDS_VALUES),
                release("linkerd-control-plane", "linkerd-control-plane",
                        {"identityTrustDomain": td, "destinationController": {
                            "podAnnotations": {GATEWAY_API_ANNOTATION: gateway_api_stamp(cluster)}}},
                        ["linkerd-crds"])]
    others = [c.name for c in spec.clusters if c.name != cluster.name]
    if others:
        objects.append(k8s_object("v1", "Namespace", MC_NAMESPACE, None, mesh, labels={
            "linkerd.io/extension": "multicluster", "pod-security.kubernetes.io/enforce": "privileged"}))
        gateway_mode = mc.linkerd_gateway_mode(spec)
        gateway: dict = {"enabled": gateway_mode}
        if gateway_mode:
            annotations, load_balancer_ip = east_west_service(cluster)
            if annotations:
                gateway["serviceAnnotations"] = annotations
            if load_balancer_ip:
                gateway["loadBalancerIP"] = load_balancer_ip
        controllers = [{"link": {"ref": {"name": o}}, **({} if gateway_mode else {"gateway": {"enabled": False}})}
                       for o in others]
        releases.append(release("linkerd-multicluster", "linkerd-multicluster", {
            "linkerdNamespace": NAMESPACE,
            "identityTrustDomain": td,
            "createNamespaceMetadataJob": False,
            "gateway": gateway,
            "remoteMirrorServiceAccountName": ",".join(mc.linkerd_remote_account(o) for o in others),
            "controllers": controllers,
        }, ["linkerd-control-plane"], namespace=MC_NAMESPACE))
    return objects, releases


def namespace_labels(spec, namespace: str) -> dict[str, str]:
    """Linkerd enrols namespaces by annotation (:func:`namespace_annotations`), not by label."""
    return {}


def namespace_annotations(spec, namespace: str) -> dict[str, str]:
    """``linkerd.io/inject: enabled``: the proxy injector adds a proxy to every new pod of the
    namespace (https://linkerd.io/2/features/proxy-injection/)."""
    return {"linkerd.io/inject": "enabled"}


# ---------------------------------------------------------------------------------------------
# default inbound policy (issue 10, point 11)
#
# Upstream, linkerd/linkerd2 at edge-26.8.3:
# - charts/linkerd-control-plane/values.yaml:247-251: ``proxy.defaultInboundPolicy`` defaults to
#   ``all-unauthenticated``: a port no Server selects admits every client, meshed or not.
# - policy-controller/k8s/index/src/inbound/workload.rs:185-195: the policy controller reads the
#   pod's ``config.linkerd.io/default-inbound-policy`` annotation; controller/proxy-injector/
#   webhook.go:106-108 with pkg/inject/inject.go:174-189 (ProxyAnnotations, :43 and :74, lists it)
#   copy it from the namespace onto every pod injected after it is set (older pods keep theirs
#   until restarted).
# - policy-controller/k8s/index/src/defaults.rs:83-104: ``deny`` carries no authorization at all.
# - policy-controller/k8s/index/src/inbound/index.rs:1753-1790 and 2241-2300: every port without a
#   Server (and, index.rs:1997-2018, every Server without HTTPRoutes) also gets a ``probe`` route:
#   ``GET`` + ``Exact`` path for each httpGet probe path of the pod spec, authorized unauthenticated
#   from ``policyController.probeNetworks`` (values.yaml:93-98, default 0.0.0.0/0 and ::/0) -
#   whatever the default policy, ``deny`` included. A Server WITH HTTPRoutes gets only its routes
#   (index.rs:2014-2016 returns before the default routes are added), so its probes are refused
#   unless a route admits them: :func:`probe_objects` renders exactly that route, nothing else.

DEFAULT_POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
PROBE_NETWORKS = ("0.0.0.0/0", "::/0")
"""``policyController.probeNetworks`` of the linkerd-control-plane chart (values.yaml:93-98)."""
PROBE_ANNOTATION = "mesh-components.io/kubelet-probes"
"""Marks the route, NetworkAuthentication and AuthorizationPolicy that admit kubelet probes (the
``no-allow-all-linkerd-network`` guardrail accepts these, and only for GET + Exact matches)."""
_POLICY_GROUP = "policy.linkerd.io"


def policed_namespaces(model) -> set[str]:
    """Namespaces holding the destination of at least one Authorization of ``model``."""
    return {a.destination.namespace for a in model.authorizations}


def default_inbound_policy(spec, model, namespace: str) -> str | None:
    """The ``config.linkerd.io/default-inbound-policy`` of ``namespace``: its
    ``mesh.namespaces[].defaultInboundPolicy``, else ``deny`` when it holds a destination with an
    access rule (SMI default deny then covers undeclared ports and workloads without a Server
    too), else None (the cluster default stays)."""
    declared = next((n.default_inbound_policy for n in spec.namespaces if n.name == namespace), None)
    if declared is not None:
        return declared
    return "deny" if namespace in policed_namespaces(model) else None


DECLARED_POLICY_ANNOTATION = "mesh-components.io/declared-default-inbound-policy"
"""Set beside the default inbound policy when the spec declares it (``namespaces[].defaultInboundPolicy``):
the ``no-allow-all`` guardrail accepts an ``*-authenticated`` default in a policed namespace only
when it is the declared one (like ``mesh-components.io/allow-wildcard`` for wildcard egress)."""


def policy_namespace_annotations(spec, model, namespace: str) -> dict[str, str]:
    """``{config.linkerd.io/default-inbound-policy: ...}`` for a namespace that needs one, else
    ``{}``; with :data:`DECLARED_POLICY_ANNOTATION` too when the spec declares the value."""
    policy = default_inbound_policy(spec, model, namespace)
    if not policy:
        return {}
    declared = next((n.default_inbound_policy for n in spec.namespaces if n.name == namespace), None)
    return {DEFAULT_POLICY_ANNOTATION: policy, **({DECLARED_POLICY_ANNOTATION: declared} if declared else {})}


def default_policy_problems(spec, model) -> list[Problem]:
    """A spec service with no access rule in a namespace that defaults to ``deny`` only because
    another service there has one: the annotation is per namespace (we never edit the
    application's workloads), so it would close a service the spec leaves unrestricted. Refused,
    naming the service and the two ways out."""
    policed = {(a.destination.namespace, a.destination.name) for a in model.authorizations}
    declared = {n.name for n in spec.namespaces if n.default_inbound_policy is not None}
    problems: list[Problem] = []
    for i, s in enumerate(spec.services):
        ns = s.namespace
        if (ns, s.name) in policed or ns in declared or ns not in policed_namespaces(model):
            continue
        problems.append((f"mesh.services[{i}]", f"{ns}/{s.name} has no access rule, but namespace {ns!r} holds "
                                                f"destinations that do, so Linkerd's default inbound policy "
                                                f"there becomes 'deny' ({DEFAULT_POLICY_ANNOTATION}, per "
                                                f"namespace) and would close {s.name} to every caller: give it "
                                                f"an access rule, or set defaultInboundPolicy on namespace "
                                                f"{ns!r} in mesh.namespaces (e.g. all-unauthenticated keeps "
                                                f"{s.name} open, and every undeclared port of the namespace too)"))
    return problems


def routed_servers(spec, objects: list[dict]):
    """Yield ``(server, [(service index, port index, ServicePort), ...])`` for every
    policy.linkerd.io ``Server`` in ``objects`` with ``HTTPRoute``s attached: the spec ports it
    serves (same namespace, the service's pod labels, the port's target port). Such a Server loses
    the policy controller's default probe route (index.rs:2014-2016)."""
    routed = {(r["metadata"]["namespace"], ref.get("name")) for r in objects
              if r["kind"] == "HTTPRoute" and r["apiVersion"].startswith(_POLICY_GROUP + "/")
              for ref in (r.get("spec") or {}).get("parentRefs") or [] if ref.get("kind") == "Server"}
    for srv in objects:
        if srv["kind"] != "Server" or not srv["apiVersion"].startswith(_POLICY_GROUP + "/"):
            continue
        ns, name = srv["metadata"]["namespace"], srv["metadata"]["name"]
        if (ns, name) not in routed:
            continue
        body = srv.get("spec") or {}  # an override may remove it (the API server then refuses the Server)
        labels = (body.get("podSelector") or {}).get("matchLabels") or {}
        yield srv, [(i, j, p) for i, s in enumerate(spec.services) if s.namespace == ns and s.pod_labels() == labels
                    for j, p in enumerate(s.ports) if (p.target_port or p.port) == body.get("port")]


def probe_notices(spec, objects: list[dict]) -> list[Problem]:
    """``(path, message)`` notices for ``validate``: every spec port served by a routed Linkerd
    ``Server`` that declares no ``probePaths``. Such a Server gets only its routes, not the policy
    controller's probe route (policy-controller/k8s/index/src/inbound/index.rs:2014-2016, edge-26.8.3),
    so an ``httpGet`` liveness/readiness probe on that port would be refused and the pods would never
    become Ready. Offline we cannot see the pods' probes, so this is a notice, never a failure."""
    seen: set[tuple[int, int]] = set()
    out: list[Problem] = []
    for srv, ports in routed_servers(spec, objects):
        for i, j, p in ports:
            if p.probe_paths or (i, j) in seen:
                continue
            seen.add((i, j))
            out.append((f"mesh.services[{i}].ports[{j}].probePaths",
                        f"port {p.target_port or p.port} of {spec.services[i].namespace}/{spec.services[i].name} has "
                        f"Linkerd HTTPRoutes (Server {srv['metadata']['name']}), which replace the policy "
                        f"controller's probe route: if the kubelet probes this port with httpGet, list the probe "
                        f"paths here, or the probes are refused and the pods never become Ready"))
    return out


def probe_objects(spec, objects: list[dict], deny_namespaces=()) -> list[dict]:
    """A route admitting the kubelet's probes for every policy.linkerd.io ``Server`` in
    ``objects`` that has ``HTTPRoute``s attached and whose port declares ``probePaths``:
    ``HTTPRoute <server>-probes`` (one ``GET`` + ``Exact`` match per path, the shape of the policy
    controller's own probe route, index.rs:2258-2298), a ``NetworkAuthentication`` of the chart's
    probe networks and the ``AuthorizationPolicy`` joining them, all marked :data:`PROBE_ANNOTATION`.
    Servers without routes get the controller's probe route anyway: nothing is rendered for them.
    With ``backend.linkerd.scrapers``, also the proxy admin port objects of :func:`scrape_objects`
    for every namespace holding such a Server and every namespace of ``deny_namespaces`` (those of
    the cluster whose default inbound policy is ``deny``, :func:`scrape_namespaces`): ``deny`` refuses
    the scrapers there too, Server or not (``linkerd viz allow-scrapes --help``, edge-26.8.3
    viz/cmd/allow-scrapes.go:131)."""
    from .linkerd_policy import POLICY_V1ALPHA1, POLICY_V1BETA3

    out: list[dict] = []
    for srv, ports in routed_servers(spec, objects):
        ns, name = srv["metadata"]["namespace"], srv["metadata"]["name"]
        paths = sorted({path for _, _, p in ports for path in p.probe_paths})
        if not paths:
            continue
        probe, mark = f"{name}{PROBES_SUFFIX}", {PROBE_ANNOTATION: "true"}
        out += [
            k8s_object(POLICY_V1BETA3, "HTTPRoute", probe, ns, spec.name, annotations=mark, spec={
                "parentRefs": [{"group": _POLICY_GROUP, "kind": "Server", "name": name}],
                "rules": [{"matches": [{"path": {"type": "Exact", "value": p}, "method": "GET"} for p in paths]}]}),
            k8s_object(POLICY_V1ALPHA1, "NetworkAuthentication", probe, ns, spec.name, annotations=mark, spec={
                "networks": [{"cidr": c} for c in PROBE_NETWORKS]}),
            k8s_object(POLICY_V1ALPHA1, "AuthorizationPolicy", probe, ns, spec.name, annotations=mark, spec={
                "targetRef": {"group": _POLICY_GROUP, "kind": "HTTPRoute", "name": probe},
                "requiredAuthenticationRefs": [{"group": _POLICY_GROUP, "kind": "NetworkAuthentication",
                                                "name": probe}]}),
        ]
    namespaces = {srv["metadata"]["namespace"] for srv in objects
                  if srv["kind"] == "Server" and srv["apiVersion"].startswith(_POLICY_GROUP + "/")}
    return out + [o for ns in sorted(namespaces | set(deny_namespaces)) for o in scrape_objects(spec, ns)]


def deny_namespaces(spec, model, cluster: str) -> set[str]:
    """The application namespaces present in ``cluster`` whose default inbound policy
    (:func:`default_inbound_policy`) is ``deny``: the namespace annotation is the same in every
    cluster of the namespace, whether or not a destination runs there."""
    names = [n.name for n in spec.namespaces] or sorted({s.namespace for s in spec.services})
    return {ns for ns in names
            if cluster in spec.namespace_clusters(ns) and default_inbound_policy(spec, model, ns) == "deny"}


ADMIN_SERVER = "proxy-admin"
SCRAPE_METRICS = "proxy-metrics"
SCRAPE_AUTH = "prometheus-scrape"
SCRAPE_PROBES = "proxy-probes"
"""The names ``linkerd viz allow-scrapes`` gives its objects (:func:`scrape_objects`)."""
PROBES_SUFFIX = "-probes"
"""The probe objects of a routed Server are ``<server>-probes`` (:func:`probe_objects`)."""


def reserved_server_names(spec, servers) -> list[tuple[str, str]]:
    """``(name, why)`` of the names a Server of the spec's services must not take in a namespace
    where ``servers`` (readable Server names, ``<service>-<port name>``) are allocated
    (``linkerd_policy.server_names`` registers them as fixed, so such a Server moves to the hashed
    name): the mesh's own objects there are named so, and a Server's TCP authorization takes the
    Server's name (AuthorizationPolicy and MeshTLSAuthentication ``<server>``). With
    ``backend.linkerd.scrapers``, :data:`ADMIN_SERVER` (a Server), :data:`SCRAPE_AUTH` and
    :data:`SCRAPE_PROBES` (AuthorizationPolicies); and ``<server>-probes`` of every Server (the
    probe AuthorizationPolicy :func:`probe_objects` may make). :data:`SCRAPE_METRICS` is an
    HTTPRoute, a name no Server's objects take (theirs are ``<server>-<8 hex digits>``)."""
    out = [(f"{s}{PROBES_SUFFIX}", "probes") for s in sorted(set(servers))]
    if spec.backend.linkerd.scrapers:
        out += [(ADMIN_SERVER, "scrape"), (SCRAPE_AUTH, "scrape"), (SCRAPE_PROBES, "scrape")]
    return out


PROXY_PROBE_PATHS = ("/live", "/ready")
"""The proxy's own kubelet probes on its admin port (linkerd2 edge-26.8.3 viz/cmd/allow-scrapes.go:50-69)."""


def scrape_objects(spec, namespace: str) -> list[dict]:
    """What ``linkerd viz allow-scrapes --namespace <ns>`` renders (linkerd2 edge-26.8.3
    viz/cmd/allow-scrapes.go:13-108; its help, :131, says a namespace whose default inbound
    policy is ``deny`` refuses Prometheus scrapes without it), for ``backend.linkerd.scrapers``
    (empty: nothing): Server ``proxy-admin`` on port ``linkerd-admin`` of every meshed pod
    (``linkerd.io/control-plane-ns`` exists), HTTPRoute ``proxy-metrics`` (``/metrics``) with an
    AuthorizationPolicy ``prometheus-scrape`` requiring a MeshTLSAuthentication of the scrapers'
    identities (upstream names one ServiceAccount; several ServiceAccount refs would all be
    required at once), and, because a Server with routes loses the policy controller's own probe
    route (index.rs:2001-2017), HTTPRoute ``proxy-probes`` for the proxy's ``/live`` and
    ``/ready`` admitted from the chart's probe networks. The probe route is ``GET`` + ``Exact``
    (upstream: any method, prefix), the shape the ``no-allow-all-linkerd-network`` guardrail
    accepts and all the kubelet sends."""
    from .linkerd_policy import POLICY_V1ALPHA1, POLICY_V1BETA3, identity

    scrapers = spec.backend.linkerd.scrapers
    if not scrapers:
        return []
    mesh, td = spec.name, spec.trust_domain
    parent = [{"group": _POLICY_GROUP, "kind": "Server", "name": ADMIN_SERVER}]
    mark = {PROBE_ANNOTATION: "true"}
    probes = SCRAPE_PROBES
    return [
        k8s_object(POLICY_V1BETA3, "Server", ADMIN_SERVER, namespace, mesh, spec={
            "podSelector": {"matchExpressions": [{"key": "linkerd.io/control-plane-ns", "operator": "Exists"}]},
            "port": "linkerd-admin", "proxyProtocol": "HTTP/1"}),
        k8s_object(POLICY_V1BETA3, "HTTPRoute", SCRAPE_METRICS, namespace, mesh, spec={
            "parentRefs": parent, "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/metrics"}}]}]}),
        k8s_object(POLICY_V1ALPHA1, "MeshTLSAuthentication", SCRAPE_AUTH, namespace, mesh, spec={
            "identities": sorted(identity(td, s.namespace, s.service_account) for s in scrapers)}),
        k8s_object(POLICY_V1ALPHA1, "AuthorizationPolicy", SCRAPE_AUTH, namespace, mesh, spec={
            "targetRef": {"group": _POLICY_GROUP, "kind": "HTTPRoute", "name": SCRAPE_METRICS},
            "requiredAuthenticationRefs": [{"group": _POLICY_GROUP, "kind": "MeshTLSAuthentication",
                                            "name": SCRAPE_AUTH}]}),
        k8s_object(POLICY_V1BETA3, "HTTPRoute", probes, namespace, mesh, annotations=mark, spec={
            "parentRefs": parent,
            "rules": [{"matches": [{"path": {"type": "Exact", "value": p}, "method": "GET"}
                                   for p in PROXY_PROBE_PATHS]}]}),
        k8s_object(POLICY_V1ALPHA1, "NetworkAuthentication", probes, namespace, mesh, annotations=mark, spec={
            "networks": [{"cidr": c} for c in PROBE_NETWORKS]}),
        k8s_object(POLICY_V1ALPHA1, "AuthorizationPolicy", probes, namespace, mesh, annotations=mark, spec={
            "targetRef": {"group": _POLICY_GROUP, "kind": "HTTPRoute", "name": probes},
            "requiredAuthenticationRefs": [{"group": _POLICY_GROUP, "kind": "NetworkAuthentication",
                                            "name": probes}]}),
    ]


# ---------------------------------------------------------------------------------------------
# multicluster: who calls across clusters (issue 10, point 12)
#
# Gateway mode (clusters on several networks): a call to a mirrored service enters the target
# cluster through its ``linkerd-gateway`` - a pod running only the proxy (multicluster/charts/
# linkerd-multicluster/templates/gateway.yaml:34-36,56,71 at edge-26.8.3) - which forwards it as
# itself: the destination sees the gateway's identity, not the caller's ("Lost Identity",
# https://linkerd.io/2023/09/12/linkerd-214/). The gateway admits any meshed identity from any
# network (templates/gateway-policy.yaml: MeshTLSAuthentication ``any-meshed`` identities '*',
# NetworkAuthentication 0.0.0.0/0, ::/0), and reaches services it does not export
# (linkerd/linkerd2#4452, closed wontfix). Admitting the gateway therefore admits every meshed
# workload of every linked cluster: such a rule is refused. Pod-to-pod (remote discovery, one
# flat network) keeps the caller's identity (https://linkerd.io/2/tasks/pod-to-pod-multicluster/),
# so rules hold as written there.


def identity_clusters(spec, identity: tuple[str, str]) -> tuple[str, ...]:
    """Clusters a caller ``(namespace, service_account)`` runs in: those of the spec services
    running as it; for the ingress gateway's identity the ingress clusters; otherwise every
    cluster of its namespace (we cannot know better, so we assume it may run anywhere there)."""
    from ..core.gateway import gateway_identity

    names = spec.cluster_names()
    found = [c for s in spec.services if (s.namespace, s.account) == identity for c in spec.service_clusters(s)]
    if found:
        return tuple(c for c in names if c in found)
    if spec.ingress is not None and identity == gateway_identity(spec):
        return tuple(spec.ingress.clusters or names)
    return tuple(spec.namespace_clusters(identity[0]))


def cross_cluster_calls(spec, model) -> list[tuple]:
    """Every declared call that must cross clusters: ``(authorization, source, caller cluster)``
    where the source runs in a cluster the destination service does not run in (Linkerd sends a
    call to a local service locally; only a destination missing from the caller's cluster is
    reached through a mirror). Sorted by origin, source, cluster."""
    out = []
    for a in model.authorizations:
        for src in a.sources:
            out += [(a, src, c) for c in identity_clusters(spec, src) if c not in a.destination.clusters]
    return sorted(out, key=lambda t: (t[0].origin, t[1], t[2], t[0].destination.namespace, t[0].destination.name))


def exported_services(spec, model) -> set[tuple[str, str]]:
    """``(namespace, name)`` of the services some other cluster calls (:func:`cross_cluster_calls`):
    the only ones to export (``mirror.linkerd.io/exported``); every other service stays unmirrored."""
    return {(a.destination.namespace, a.destination.name) for a, _, _ in cross_cluster_calls(spec, model)}


def cross_cluster_problems(spec, model) -> list[Problem]:
    """In gateway mode, one problem per rule with a cross-cluster call (see the comment above):
    the call could only be admitted by admitting the target's linkerd-gateway identity, i.e.
    every meshed workload of every linked cluster."""
    if len(spec.clusters) < 2 or not mc.linkerd_gateway_mode(spec):
        return []
    gateway = f"{mc.LINKERD_GATEWAY}.{MC_NAMESPACE}.serviceaccount.identity.{NAMESPACE}.{spec.trust_domain}"
    by_origin: dict[str, list[tuple]] = {}
    for a, src, c in cross_cluster_calls(spec, model):
        by_origin.setdefault(a.origin, []).append((a, src, c))
    problems: list[Problem] = []
    for origin, calls in sorted(by_origin.items()):
        a, src, c = calls[0]
        dest = f"{a.destination.namespace}/{a.destination.name}"
        problems.append((origin, f"source {src[0]}/{src[1]} runs in cluster {c}, where {dest} does not run "
                                 f"(it runs in {', '.join(a.destination.clusters)}); these clusters are on "
                                 f"different networks, so Linkerd links them through the target's "
                                 f"linkerd-gateway and {dest} sees the call as the gateway's identity {gateway}, "
                                 f"not the caller's. Admitting that identity would admit every meshed workload of "
                                 f"every linked cluster, so the rule cannot be met exactly: run {a.destination.name} "
                                 f"in cluster {c} too (mesh.services[].clusters), or put the clusters on one flat "
                                 f"network (the same mesh.clusters[].network) so Linkerd links them pod to pod and "
                                 f"keeps the caller's identity"))
    return problems
