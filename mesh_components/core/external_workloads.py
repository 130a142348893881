"""Workloads outside Kubernetes (``mesh.externalWorkloads``: VMs, bare metal) as mesh members: the
spec checks, the objects each mesh needs, and the bootstrap files a machine needs to join.

An external workload is a source and a destination like a pod (issue 16):

- **identity** ``(namespace, serviceAccount)``: Istio principal ``<td>/ns/<ns>/sa/<sa>`` (the VM's
  istio-agent asks istiod's CA with a token of that service account, audience ``istio-ca``: istio
  1.30.3 ``istioctl/pkg/workload/workload.go:409-431``); Linkerd: as a CLIENT the VM's proxy
  presents ``<sa>.<ns>.serviceaccount.identity.linkerd.<td>`` (what access rules name), carried
  by its SPIRE SVID as the first subject alternative name (the proxy takes a client's identity
  from the first SAN: linkerd2-proxy release/v2.366.0 ``linkerd/meshtls/verifier/src/lib.rs:35-41``;
  Go's ``crypto/x509`` writes DNS SANs before URI SANs, so a SPIRE entry with ``-dns <identity>``
  gives it); as a SERVER peers verify the ExternalWorkload's ``meshTLS.identity``, which the
  destination controller always sends as a URI identity ("we assume external workloads support
  only SPIRE identity", linkerd2 edge-26.8.3 ``controller/api/destination/
  endpoint_translator.go:378-388``) and the proxy parses with ``Id::parse_uri``
  (``linkerd/proxy/api-resolve/src/pb.rs:69-82``, ``linkerd/identity/src/lib.rs:58-62``: a DNS
  name is no URL, the endpoint would lose TLS), so it is the SVID's SPIFFE ID
  ``spiffe://<td>/ns/<ns>/sa/<sa>`` (``verify_id`` accepts any SAN of the certificate,
  ``verifier/src/lib.rs:43-53``) and ``serverName`` the DNS identity. A workload that joins a declared service must run as that service's account: SMI
  destinations are identities, and a VM selected by the service's policies under another identity
  would be policed by labels but not named by rules (refused, :func:`spec_problems`).
- **labels**: a joining workload carries the service's pod labels (plus its version's, plus its
  own), so the service's Kubernetes Service and version Services (``render.version_services``)
  select it -- Istio: ``PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES`` (default true, istio 1.30.3
  ``pilot/pkg/features/pilot.go:119-121``; ``pilot/pkg/serviceregistry/kube/controller/
  controller.go:773-831`` selects WorkloadEntries by the Service selector, endpoint port the numeric
  ``targetPort``), across clusters with ``PILOT_ENABLE_CROSS_CLUSTER_WORKLOAD_ENTRY`` (default true,
  ``pilot.go:155-156``, ``multicluster.go:199-215``: Services select WorkloadEntries of their own
  cluster); Linkerd: the ExternalWorkload endpoints controller gives every Service with a selector
  the ExternalWorkloads it matches (linkerd2 edge-26.8.3 ``controller/api/destination/
  external-workload/endpoints_controller.go:369-377``), at the port equal to the numeric
  ``targetPort`` with the same protocol (``endpoints_reconciler.go:642-665``) -- and the policies
  that select the service's pods select it too: an Istio ``AuthorizationPolicy`` selector matches a
  VM proxy's labels, which are exactly its bootstrap metadata labels (``pilot/pkg/model/
  context.go:616-620``); Linkerd ``Server``s select pods only, so ``linkerd_policy`` adds the same
  Servers with ``externalWorkloadSelector`` (:func:`linkerd_external_selector`). Its labels must
  not make another declared service select it (refused).
- **ports**: the machine listens on the service port's target port (the port the policies name).

Istio (sidecar data plane, clusters on several networks): per workload a ``WorkloadGroup`` (the
template ``istioctl x workload entry configure`` reads) and, per address, a static
``WorkloadEntry`` with ``network`` always set (an endpoint with no network counts as on every
network, ``pilot/pkg/model/context.go:421-422``); no ``addresses``: auto-registration, the VM
creating its entry from the group when it connects (``pilot/pkg/autoregistration/
controller.go:226-260,680-740``). The VM reaches istiod through its cluster's east-west gateway
("single-cluster installations may need this gateway to allow VMs to get discovery",
``samples/multicluster/gen-eastwest-gateway.sh:56``), exposed on 15012 and 15017 as
``samples/multicluster/expose-istiod.yaml`` does (:func:`istiod_exposure`); its static address
goes in the VM's ``hosts`` file. Ambient is refused (the VM runs a sidecar, which an ambient
namespace's ztunnel policies do not cover).

Linkerd (edge, https://linkerd.io/2-edge/tasks/adding-non-kubernetes-workloads/): one
``ExternalWorkload`` (``workload.linkerd.io/v1beta1``) per workload, one IP address, ``meshTLS``
identity (SPIFFE ID) and server name (DNS identity) as above, annotated with the namespace's default inbound policy (the
policy controller reads it from the workload itself: edge-26.8.3 ``policy-controller/k8s/index/
src/inbound/workload.rs:140-189``). The machine must reach every pod of its cluster (the task's
prerequisites), so it must be on its cluster's network.

OSM has no workloads outside Kubernetes: refused.
"""
from __future__ import annotations

import ipaddress
import json
import shlex

import yaml

from ..spec.errors import Problem
from .meta import k8s_object

ISTIO_NETWORKING = "networking.istio.io/v1"
LINKERD_WORKLOAD = "workload.linkerd.io/v1beta1"
ISTIO_NAMESPACE = "istio-system"
DEFAULT_POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
EXTERNAL_LABEL = "mesh-components.io/external-workload"
"""Label on every object rendered for an external workload: its name."""
TOKEN_SECONDS = 3600
"""Lifetime of the istio-agent bootstrap token, istioctl's ``--tokenDuration`` default (workload.go:284)."""
LINKERD_CLUSTER_NETWORKS = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"
"""``clusterNetworks`` of the linkerd-control-plane chart (linkerd2 edge-26.8.3
``charts/linkerd-control-plane/values.yaml:13``; ``meshes.linkerd.control_plane`` leaves it at that
default), which the chart gives every pod proxy as ``LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS``
(``charts/partials/templates/_proxy.tpl:78-79``)."""


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """``spiffe://<td>/ns/<ns>/sa/<sa>``: the SPIFFE ID of an external workload's SPIRE SVID, and its
    Linkerd ``ExternalWorkload`` ``meshTLS.identity`` (module docstring: the destination
    controller sends that field as a URI identity)."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


# ---------------------------------------------------------------------------------------------
# derived facts


def joined_service(spec, w):
    """The declared :class:`~mesh_components.spec.Service` ``w`` backs, or None (a service of its own)."""
    return spec.services_by_key.get((w.namespace, w.service)) if w.service else None


def account(spec, w) -> str:
    """The service account ``w`` runs as: its own, else the joined service's, else its name."""
    svc = joined_service(spec, w)
    return w.service_account or (svc.account if svc else w.name)


def network(spec, w) -> str:
    """The network ``w`` sits on: its own, else its cluster's."""
    cluster = next((c for c in spec.clusters if c.name == w.cluster), None)
    return w.network or (spec.network_of(cluster) if cluster else "")


def labels(spec, w) -> dict[str, str]:
    """Labels of ``w`` (its WorkloadEntry / ExternalWorkload, and its Istio proxy): the joined
    service's pod labels, its version's labels, then ``w.labels``; a service of its own:
    ``w.labels`` or ``{app: <name>}``. Sorted by key."""
    svc = joined_service(spec, w)
    if svc is None:
        out = dict(w.labels) or {"app": w.name}
    else:
        out = dict(svc.pod_labels())
        version = next((v for v in svc.versions if v.name == w.version), None)
        if version is not None:
            out.update(version.pod_labels())
        out.update(w.labels)
    return dict(sorted(out.items()))


def ports(spec, w) -> list[tuple[int, int, str, str]]:
    """``(service port, machine port, protocol, port name)`` of ``w``: the joined service's ports it
    lists (all when it lists none), served on their target ports; a service of its own: its ports."""
    svc = joined_service(spec, w)
    if svc is None:
        return [(p.port, p.target_port or p.port, p.protocol or "http", p.name or f"{p.protocol or 'http'}-{p.port}")
                for p in w.ports]
    wanted = {p.port for p in w.ports}
    return [(p.port, p.target_port or p.port, p.protocol, p.port_name) for p in svc.ports
            if not wanted or p.port in wanted]


def instances(w) -> list[tuple[str, str]]:
    """``(object name, address)`` per address: ``<name>`` for one, ``<name>-<i>`` for several."""
    if len(w.addresses) == 1:
        return [(w.name, w.addresses[0])]
    return [(f"{w.name}-{i}", a) for i, a in enumerate(w.addresses)]


def in_cluster(spec, cluster: str) -> list:
    """The external workloads attached to ``cluster``, in spec order."""
    return [w for w in spec.external_workloads if w.cluster == cluster]


def of_service(spec, namespace: str, service: str, cluster: str | None = None) -> list:
    """The external workloads joining declared service ``namespace/service`` (in ``cluster``)."""
    return [w for w in spec.external_workloads if w.namespace == namespace and w.service == service
            and (cluster is None or w.cluster == cluster)]


def linkerd_external_selector(spec, namespace: str, service: str, cluster: str) -> dict | None:
    """The ``externalWorkloadSelector`` a Linkerd ``Server`` needs so that it covers the external
    workloads of ``namespace/service`` in ``cluster`` exactly as its ``podSelector`` covers the
    pods: the service's pod labels (every joining workload carries them, and no other declared
    service's workload does: :func:`spec_problems`); None when none joins there. A Server's
    selector is one of ``podSelector`` or ``externalWorkloadSelector`` (CRD
    servers.policy.linkerd.io ``oneOf``), so this is a second Server."""
    if not of_service(spec, namespace, service, cluster):
        return None
    svc = spec.services_by_key[(namespace, service)]
    return {"matchLabels": dict(svc.pod_labels())}


def own_service_workloads(spec, namespace: str | None = None) -> list:
    """External workloads with a service of their own (no ``service``), in ``namespace`` if given."""
    return [w for w in spec.external_workloads if not w.service and (namespace is None or w.namespace == namespace)]


# ---------------------------------------------------------------------------------------------
# spec checks


def spec_problems(spec) -> list[Problem]:
    """Every problem of ``mesh.externalWorkloads`` as ``(path, message)``; empty when valid. Called
    by ``spec.check_references``. See the module docstring for why each rule holds."""
    if not spec.external_workloads:
        return []
    from ..spec import _unique, _unknown

    p: list[Problem] = []
    kind = spec.backend.type
    if kind == "osm":
        return [("mesh.externalWorkloads", "OSM (v1.2.4) cannot mesh a workload outside Kubernetes: it has no "
                                           "WorkloadEntry or ExternalWorkload counterpart (its proxies are injected "
                                           "into pods only); remove externalWorkloads or use backend istio "
                                           "(WorkloadEntry) or linkerd (ExternalWorkload)")]
    if spec.ca.mode == "spire":
        # not verified exact: an Istio VM's istio-agent asks istiod's CA with a token
        # (istioctl/pkg/workload/workload.go:398-432), so it would hold an istiod certificate, not a
        # SPIRE SVID; Linkerd's VM proxy takes an SVID from a SPIRE agent of the machine, whose
        # server this mesh does not configure
        p.append(("mesh.externalWorkloads", "ca.mode: spire with external workloads is not supported: an Istio "
                                            "VM's istio-agent gets its certificate from istiod's CA with a "
                                            "service-account token (istio 1.30.3 istioctl/pkg/workload/"
                                            "workload.go:398-432), not a SPIRE SVID, and the SPIRE agent a VM "
                                            "would need is not part of this mesh; use another ca.mode or remove "
                                            "externalWorkloads"))
    _unique(p, "mesh.externalWorkloads", [f"{w.namespace}/{w.name}" for w in spec.external_workloads],
            "external workload")
    clusters = {c.name: c for c in spec.clusters}
    networks = sorted({spec.network_of(c) for c in spec.clusters})
    declared_ns = {n.name for n in spec.namespaces}
    services = spec.services_by_key
    taken = {(s.namespace, s.name) for s in spec.services} | {
        (s.namespace, f"{s.name}-{v.name}") for s in spec.services for v in s.versions}
    from ..spec import is_multi_network

    multi_network = is_multi_network(spec)
    seen_addresses: dict[str, str] = {}
    for i, w in enumerate(spec.external_workloads):
        base = f"mesh.externalWorkloads[{i}]"
        cluster = clusters.get(w.cluster)
        if cluster is None:
            p.append((f"{base}.cluster", _unknown("cluster", w.cluster, sorted(clusters))))
        if spec.namespaces and w.namespace not in declared_ns:
            p.append((f"{base}.namespace", _unknown("namespace", w.namespace, sorted(declared_ns),
                                                    "add it to mesh.namespaces")))
        elif cluster is not None and w.cluster not in spec.namespace_clusters(w.namespace):
            p.append((f"{base}.cluster", f"namespace {w.namespace!r} does not span cluster {w.cluster!r}; add "
                                         f"{w.cluster!r} to that namespace's clusters"))
        if w.network is not None and w.network not in networks:
            p.append((f"{base}.network", _unknown("network", w.network, networks,
                                                  "name the network of a cluster in mesh.clusters: the mesh reaches "
                                                  "a network through its clusters' east-west gateways")))
        for j, a in enumerate(w.addresses):
            try:
                ipaddress.ip_address(a)
            except ValueError:
                p.append((f"{base}.addresses[{j}]", f"{a!r} is not an IP address; give the machine's IPv4 or IPv6 "
                                                    f"address (the mesh sends to it directly, no name lookup)"))
                continue
            if a in seen_addresses:
                p.append((f"{base}.addresses[{j}]", f"{a} is also an address of {seen_addresses[a]}; one machine is "
                                                    f"one external workload"))
            seen_addresses.setdefault(a, f"{w.namespace}/{w.name}")
        _unique(p, f"{base}.ports", [str(pt.port) for pt in w.ports], "port")
        svc = joined_service(spec, w)
        if w.service and svc is None:
            p.append((f"{base}.service", _unknown("service", w.service,
                                                  sorted(n for ns, n in services if ns == w.namespace),
                                                  f"declare it in mesh.services with namespace {w.namespace!r}, or "
                                                  f"leave service out for a service of its own")))
        elif svc is not None:
            if cluster is not None and w.cluster not in spec.service_clusters(svc):
                p.append((f"{base}.cluster", f"service {svc.name!r} does not run in cluster {w.cluster!r}, whose "
                                             f"Service would select the workload; add it to the service's clusters"))
            if w.service_account and w.service_account != svc.account:
                p.append((f"{base}.serviceAccount", f"a workload of service {svc.name!r} runs as its account "
                                                    f"{svc.account!r}: the service's policies select it by labels and "
                                                    f"access rules name it by that identity; remove serviceAccount "
                                                    f"or leave service out for a service of its own"))
            service_ports = {pt.port: pt for pt in svc.ports}
            for j, pt in enumerate(w.ports):
                sp = service_ports.get(pt.port)
                if sp is None:
                    p.append((f"{base}.ports[{j}].port", f"service {svc.name!r} has no port {pt.port}; ports: "
                                                         f"{sorted(service_ports)}"))
                    continue
                if pt.protocol is not None and pt.protocol != sp.protocol:
                    p.append((f"{base}.ports[{j}].protocol", f"port {pt.port} of service {svc.name!r} is "
                                                             f"{sp.protocol}; remove protocol or give {sp.protocol}"))
                if pt.target_port is not None:
                    p.append((f"{base}.ports[{j}].targetPort", f"the workload serves port {pt.port} on the "
                                                               f"service's target port {sp.target_port or sp.port}, "
                                                               f"the port its access policy names; remove targetPort"))
                if pt.name is not None and pt.name != sp.port_name:
                    p.append((f"{base}.ports[{j}].name", f"port {pt.port} of service {svc.name!r} is named "
                                                         f"{sp.port_name!r}; remove name"))
            version = None
            if w.version is None and svc.versions:
                # the service's traffic goes to its version Services (render.version_services) and only
                # a version's labels make one of them select the workload
                p.append((f"{base}.version", f"service {svc.name!r} has versions "
                                             f"({', '.join(v.name for v in svc.versions)}), whose Services its "
                                             f"traffic splits send to and which select by the version's labels; "
                                             f"give version: one of them"))
            elif w.version is not None:
                version = next((v for v in svc.versions if v.name == w.version), None)
                if version is None:
                    p.append((f"{base}.version", _unknown("version", w.version, [v.name for v in svc.versions],
                                                          f"declare it in the versions of service {svc.name!r}")))
                elif version.clusters and w.cluster not in version.clusters:
                    p.append((f"{base}.version", f"version {w.version!r} of {svc.name!r} runs only in "
                                                 f"{', '.join(version.clusters)}; add {w.cluster!r} to its clusters"))
            given = {**svc.pod_labels(), **(version.pod_labels() if version is not None else {})}
            clash = sorted(k for k in w.labels if k in given and w.labels[k] != given[k])
            if clash:
                whose = f"service {svc.name!r}" + (f" and its version {version.name!r}" if version is not None else "")
                p.append((f"{base}.labels", f"label(s) {', '.join(clash)} would change the pod labels of {whose}, "
                                            f"which its Services select by; remove them"))
        else:
            if w.version is not None:
                p.append((f"{base}.version", "a version is one of a declared service's versions; give service too"))
            if not w.ports:
                p.append((f"{base}.ports", "a workload with a service of its own needs its ports (port, protocol); "
                                           "or give service: <a declared service> it joins"))
            if (w.namespace, w.name) in taken:
                p.append((f"{base}.name", f"{w.namespace}/{w.name} is a Service of mesh.services (or of a version); "
                                          f"join it with service: {w.name}, or rename the workload"))
            _unique(p, f"{base}.ports", [pt.name or f"{pt.protocol or 'http'}-{pt.port}" for pt in w.ports],
                    "port name")
        mine = labels(spec, w)
        for s in spec.services:
            if s.namespace == w.namespace and s is not svc and all(mine.get(k) == v for k, v in s.pod_labels().items()):
                p.append((f"{base}.labels", f"its labels {mine} hold the pod labels of service {s.name!r}, whose "
                                            f"Service and policies would select it too; give it other labels"))
            elif (s.namespace == w.namespace and svc is None
                  and all(s.pod_labels().get(k) == v for k, v in mine.items())):
                p.append((f"{base}.labels", f"its Service would select by {mine}, which the pods of service "
                                            f"{s.name!r} carry too; give it labels of its own"))
        if kind == "istio":
            p += _istio_problems(spec, base, w, cluster, multi_network)
        else:
            p += _linkerd_problems(spec, base, w, cluster)
    return p


def _istio_problems(spec, base: str, w, cluster, multi_network: bool) -> list[Problem]:
    if spec.backend.istio.data_plane == "ambient":
        return [(base, "an Istio VM runs a sidecar (istio-agent and Envoy), and this stack runs the ambient data "
                       "plane, whose policies bind to ztunnel and waypoints the VM has not; use dataPlane: sidecar "
                       "or remove the external workload")]
    if cluster is None:
        return []
    if not multi_network:
        return [(f"{base}.cluster", "a VM reaches istiod through its cluster's east-west gateway (istio 1.30.3 "
                                    "samples/multicluster/gen-eastwest-gateway.sh:56, expose-istiod.yaml), and this "
                                    "mesh renders one only for clusters on several networks; give the clusters "
                                    "their own networks (mesh.clusters[].network) with eastWestGateway addresses")]
    if cluster.east_west_gateway is None:
        i = spec.clusters.index(cluster)
        return [(f"{base}.cluster", f"the VM's bootstrap maps istiod's name to cluster {cluster.name!r}'s east-west "
                                    f"gateway, whose address is known only when static; give "
                                    f"mesh.clusters[{i}].eastWestGateway.addresses")]
    return []


def _linkerd_problems(spec, base: str, w, cluster) -> list[Problem]:
    p: list[Problem] = []
    if len(w.addresses) != 1:
        p.append((f"{base}.addresses", "a Linkerd ExternalWorkload is one machine with one address (workloadIPs; "
                                       "the policy controller and proxy know it by name) and has no "
                                       "auto-registration; give exactly one IP address, one external workload per "
                                       "machine"))
    if cluster is not None and network(spec, w) != spec.network_of(cluster):
        p.append((f"{base}.network", f"Linkerd's mesh expansion needs IP connectivity from the machine to every pod "
                                     f"of its cluster (https://linkerd.io/2-edge/tasks/adding-non-kubernetes-workloads/"
                                     ", prerequisites), i.e. cluster {cluster.name!r}'s network "
                                     f"{spec.network_of(cluster)!r}; attach it to a cluster of its network"))
    return p


# ---------------------------------------------------------------------------------------------
# objects


def _ports_map(spec, w) -> dict[str, int]:
    return {name: target for _, target, _, name in sorted(ports(spec, w), key=lambda p: p[3])}


def own_service(spec, w) -> dict:
    """The Service of a workload with a service of its own: ``<name>`` in its namespace, selecting
    its labels, one port per declared port (``targetPort`` the machine's port)."""
    # appProtocol the spec protocol, as on the mesh's version Services (app_protocol.version_app_protocol;
    # OSM, which reads other names, refuses external workloads)
    return k8s_object("v1", "Service", w.name, w.namespace, spec.name, labels={EXTERNAL_LABEL: w.name}, spec={
        "selector": labels(spec, w),
        "ports": [{"name": name, "port": port, "targetPort": target, "protocol": "TCP", "appProtocol": proto}
                  for port, target, proto, name in ports(spec, w)]})


def service_accounts(spec, cluster: str) -> list[dict]:
    """The ``ServiceAccount``s of the Istio workloads with a service of their own attached to
    ``cluster``: ``<account>`` in the workload's namespace, labelled :data:`EXTERNAL_LABEL` (the
    first such workload's name), one per ``(namespace, account)``, sorted; none for an account a
    declared service running in ``cluster`` already runs as (the application's, not ours).

    The VM's bootstrap token is a TokenRequest on that account, which must exist (istio 1.30.3
    ``istioctl/pkg/workload/workload.go:408-425``: "could not create a token under service
    account"); a workload joining a service runs as the service's account, which the application
    brings. Linkerd needs none: its VM proxy's identity is a SPIRE SVID, not a token."""
    if spec.backend.type != "istio":
        return []
    app = {(s.namespace, s.account) for s in spec.services if cluster in spec.service_clusters(s)}
    owners: dict[tuple[str, str], str] = {}
    for w in own_service_workloads(spec):
        key = (w.namespace, account(spec, w))
        if w.cluster == cluster and key not in app:
            owners[key] = min(owners.get(key, w.name), w.name)
    return [k8s_object("v1", "ServiceAccount", sa, ns, spec.name, labels={EXTERNAL_LABEL: owners[(ns, sa)]})
            for ns, sa in sorted(owners)]


def istio_objects(spec, cluster: str) -> list[dict]:
    """Istio objects of the external workloads attached to ``cluster`` (policy concern): per
    workload a ``WorkloadGroup`` (template: labels, ports, service account, network), one static
    ``WorkloadEntry`` per address, and the Service of a workload with a service of its own; and
    the ServiceAccounts the bootstrap tokens need (:func:`service_accounts`)."""
    out = service_accounts(spec, cluster)
    for w in in_cluster(spec, cluster):
        lb, net, sa, pm = labels(spec, w), network(spec, w), account(spec, w), _ports_map(spec, w)
        mark = {EXTERNAL_LABEL: w.name}
        out.append(k8s_object(ISTIO_NETWORKING, "WorkloadGroup", w.name, w.namespace, spec.name, labels=mark, spec={
            "metadata": {"labels": dict(lb)},
            "template": {"ports": dict(pm), "serviceAccount": sa, "network": net}}))
        for name, address in instances(w):
            out.append(k8s_object(ISTIO_NETWORKING, "WorkloadEntry", name, w.namespace, spec.name,
                                  labels={**lb, **mark}, spec={
                                      "address": address, "labels": dict(lb), "ports": dict(pm),
                                      "serviceAccount": sa, "network": net}))
        if not w.service:
            out.append(own_service(spec, w))
    return out


def linkerd_objects(spec, model, cluster: str) -> list[dict]:
    """Linkerd objects of the external workloads attached to ``cluster`` (policy concern): one
    ``ExternalWorkload`` each (identity its SPIFFE ID, server name its Linkerd identity, one
    workload IP, ports at the machine's port, TCP), annotated with its namespace's default inbound
    policy where the mesh sets one, and the Service of a workload with a service of its own."""
    from ..meshes.linkerd import default_inbound_policy
    from ..meshes.linkerd_policy import identity

    out = []
    for w in in_cluster(spec, cluster):
        sa = account(spec, w)
        ident = identity(spec.trust_domain, w.namespace, sa)
        policy = default_inbound_policy(spec, model, w.namespace)
        for name, address in instances(w):
            out.append(k8s_object(LINKERD_WORKLOAD, "ExternalWorkload", name, w.namespace, spec.name,
                                  labels={**labels(spec, w), EXTERNAL_LABEL: w.name},
                                  annotations={DEFAULT_POLICY_ANNOTATION: policy} if policy else None, spec={
                                      # identity: a URI to the proxies that dial it (module docstring)
                                      "meshTLS": {"identity": spiffe_id(spec.trust_domain, w.namespace, sa),
                                                  "serverName": ident},
                                      "workloadIPs": [{"ip": address}],
                                      "ports": [{"name": n, "port": t, "protocol": "TCP"}
                                                for _, t, _, n in sorted(ports(spec, w), key=lambda p: p[3])]}))
        if not w.service:
            out.append(own_service(spec, w))
    return out


def policy_objects(spec, model, cluster: str) -> list[dict]:
    """The ``policy``-concern objects of the external workloads attached to ``cluster`` (none
    without ``mesh.externalWorkloads``)."""
    if not spec.external_workloads:
        return []
    if spec.backend.type == "istio":
        return istio_objects(spec, cluster)
    if spec.backend.type == "linkerd":
        return linkerd_objects(spec, model, cluster)
    return []


def istiod_service(spec) -> str:
    """istiod's Service of the revision serving the data plane: ``istiod`` or ``istiod-<revision>``."""
    from ..meshes.istio import serving_revision

    rev = serving_revision(spec)[0]
    return f"istiod-{rev}" if rev else "istiod"


def istiod_exposure(spec, cluster: str) -> list[dict]:
    """istiod exposed on ``cluster``'s east-west gateway for its VMs (multicluster concern): an
    Istio ``Gateway`` ``istiod-gateway`` (TLS passthrough on 15012 and 15017) and a
    ``VirtualService`` ``istiod-vs`` sending them to istiod's 15012 and 443, as istio 1.30.3
    ``samples/multicluster/expose-istiod.yaml`` does (there ``istiod``; here the serving revision's
    Service, :func:`istiod_service`). Only where an Istio VM is attached."""
    if spec.backend.type != "istio" or not in_cluster(spec, cluster):
        return []
    host = f"{istiod_service(spec)}.{ISTIO_NAMESPACE}.svc.cluster.local"
    servers = [{"port": {"name": name, "number": port, "protocol": "TLS"}, "tls": {"mode": "PASSTHROUGH"},
                "hosts": ["*"]} for name, port in (("tls-istiod", 15012), ("tls-istiodwebhook", 15017))]
    return [
        k8s_object(ISTIO_NETWORKING, "Gateway", "istiod-gateway", ISTIO_NAMESPACE, spec.name,
                   spec={"selector": {"istio": "eastwestgateway"}, "servers": servers}),
        k8s_object(ISTIO_NETWORKING, "VirtualService", "istiod-vs", ISTIO_NAMESPACE, spec.name, spec={
            "hosts": ["*"], "gateways": ["istiod-gateway"],
            "tls": [{"match": [{"port": port, "sniHosts": ["*"]}],
                     "route": [{"destination": {"host": host, "port": {"number": target}}}]}
                    for port, target in ((15012, 15012), (15017, 443))]}),
    ]


# ---------------------------------------------------------------------------------------------
# bootstrap files


def find(spec, name: str):
    """The external workload named ``name`` (``NAME`` or ``NAMESPACE/NAME``); raises
    :class:`~mesh_components.spec.errors.SpecError` (path ``--workload``) naming the known ones."""
    from ..spec.errors import SpecError

    ns, _, short = name.rpartition("/")
    found = [w for w in spec.external_workloads if w.name == short and (not ns or w.namespace == ns)]
    known = sorted(f"{w.namespace}/{w.name}" for w in spec.external_workloads)
    if len(found) == 1:
        return found[0]
    if not found:
        raise SpecError([("--workload", f"unknown external workload {name!r}; "
                                        + (f"known: {', '.join(known)}" if known else
                                           "the stack declares none (mesh.externalWorkloads)"))])
    raise SpecError([("--workload", f"{name!r} names several external workloads; give NAMESPACE/NAME: "
                                    f"{', '.join(known)}")])


def kube_context(spec, cluster_name: str) -> str | None:
    """The kubectl context of a cluster: its kubeconfig's ``context`` when the stack names one;
    None for a kubeconfig ``file`` without one (the file's ``current-context``, the one the stack's
    provider uses: ``spec.minify_kubeconfig``); else the cluster's name (an ``env`` or
    ``stackReference`` kubeconfig names no context the commands can know)."""
    c = next(c for c in spec.clusters if c.name == cluster_name)
    source = c.kubeconfig
    if source is not None and source.context:
        return source.context
    return None if source is not None and source.file else cluster_name


def kubectl(spec, cluster_name: str) -> str:
    """``kubectl`` with the flags that reach the cluster as the stack does: ``--kubeconfig <file>``
    when the stack names a file (as written there; relative to the project directory, a leading
    ``~/`` left to the shell) and ``--context <context>`` (:func:`kube_context`), shell-quoted."""
    c = next(c for c in spec.clusters if c.name == cluster_name)
    words = ["kubectl"]
    if c.kubeconfig is not None and c.kubeconfig.file:
        f = c.kubeconfig.file
        words.append("--kubeconfig " + ("~/" + shlex.quote(f[2:]) if f.startswith("~/") else shlex.quote(f)))
    context = kube_context(spec, cluster_name)
    if context:
        words.append(f"--context {shlex.quote(context)}")
    return " ".join(words)


def _env_file(values: dict[str, str]) -> str:
    """``KEY=value`` lines, sorted, values quoted for a POSIX shell (as istioctl's ``mapToString``,
    workload.go:603-611, with ``shellescape.Quote``, which quotes as ``shlex.quote`` does)."""
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(values.items()))


def istio_bootstrap(spec, w, root_cert: str | None) -> dict[str, str]:
    """The files ``istioctl x workload entry configure`` writes for ``w`` (istio 1.30.3
    ``istioctl/pkg/workload/workload.go:310-334`` ``createConfig``), from the stack instead of a
    live cluster, as ``{file name: text}``:

    - ``cluster.env`` (``createClusterEnv`` :338-392): the proxy metadata of ``mesh.yaml`` merged
      with the overrides: inbound ports ``*`` (istioctl: the group's ports; see the comment in the
      code), namespace, service ``<group>.<ns>``, service CIDR ``*``, excluded ports
      ``22,15090,15021,15020``, service account, ``CA_ADDR`` for a revisioned istiod,
      ``ISTIO_SVC_IP`` when the workload has one address;
    - ``mesh.yaml`` (``createMeshConfig`` :434-533): ``defaultConfig`` with the chart's
      ``discoveryAddress`` and ``meshId`` (istio-discovery ``templates/configmap.yaml:28-73``) and
      the proxy metadata istioctl sets (canonical service/revision, namespace, service account,
      trust domain, cluster, mesh, network, pod ports, workload name, JSON labels, DNS capture, and
      the auto-registration group when the workload has no addresses);
    - ``hosts`` (``createHosts`` :555-583): istiod's name at the cluster's east-west gateway;
    - ``root-cert.pem``: ``root_cert`` as given (istioctl reads ConfigMap ``istio-ca-root-cert``);
    - no ``istio-token``: a token is made by the API server (``createCertsTokens`` :398-432); instead
      ``istio-token.command`` holds the exact ``kubectl create token`` call (audience ``istio-ca``,
      :417, lifetime :data:`TOKEN_SECONDS`) and ``README`` says where each file goes.
    The same stack gives the same bytes."""
    from ..meshes.istio import serving_revision
    from .spire import trust_domain_of

    cluster = next(c for c in spec.clusters if c.name == w.cluster)
    rev = serving_revision(spec)[0]
    istiod_host = f"{istiod_service(spec)}.{ISTIO_NAMESPACE}.svc"
    lb, sa, net = labels(spec, w), account(spec, w), network(spec, w)
    pm = _ports_map(spec, w)
    # "*", not istioctl's default (the group's ports, workload.go:340-348): pods capture every inbound
    # port (manifests/charts/istio-control/istio-discovery/values.yaml:351 includeInboundPorts "*"),
    # and a listener outside the capture would take plaintext past STRICT mTLS and AuthorizationPolicies; istio-iptables
    # excludes ISTIO_LOCAL_EXCLUDE_PORTS only with "*" (tools/istio-iptables/pkg/cmd/root.go:65-73),
    # istioctl's "22,15090,15021" + the default status port 15020 (workload.go:350-362)
    env = {
        "ISTIO_INBOUND_PORTS": "*",
        "ISTIO_NAMESPACE": w.namespace,
        "ISTIO_SERVICE": f"{w.name}.{w.namespace}",
        "ISTIO_SERVICE_CIDR": "*",
        "ISTIO_LOCAL_EXCLUDE_PORTS": "22,15090,15021,15020",
        "SERVICE_ACCOUNT": sa,
    }
    if rev:
        env["CA_ADDR"] = f"{istiod_host}:15012"
    if len(w.addresses) == 1:
        env["ISTIO_SVC_IP"] = w.addresses[0]
    name_keys = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
    rev_keys = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")
    canonical = next((lb[k] for k in name_keys if k in lb), w.name)
    canonical_rev = next((lb[k] for k in rev_keys if k in lb), "latest")
    proxy_labels = {**lb, "service.istio.io/canonical-name": canonical,
                    "service.istio.io/canonical-revision": canonical_rev}
    metadata = {
        "CANONICAL_REVISION": canonical_rev,
        "CANONICAL_SERVICE": canonical,
        "ISTIO_META_CLUSTER_ID": cluster.name,
        "ISTIO_META_DNS_CAPTURE": "true",
        "ISTIO_META_MESH_ID": spec.name,
        "ISTIO_META_NETWORK": net,
        "ISTIO_META_WORKLOAD_NAME": w.name,
        "ISTIO_METAJSON_LABELS": json.dumps(dict(sorted(proxy_labels.items())), separators=(",", ":")),
        "POD_NAMESPACE": w.namespace,
        "SERVICE_ACCOUNT": sa,
        # the trust domain of the VM's istiod (federated ca.mode spire: its cluster's,
        # spire.trust_domain_of; istiod's meshConfig.trustDomain, core.spire.istiod_values)
        "TRUST_DOMAIN": trust_domain_of(spec, w.cluster),
    }
    if pm:
        metadata["ISTIO_META_POD_PORTS"] = json.dumps([{"name": n, "containerPort": p} for n, p in sorted(pm.items())],
                                                      separators=(",", ":"))
    if not w.addresses:
        metadata["ISTIO_META_AUTO_REGISTER_GROUP"] = w.name
    mesh = {"defaultConfig": {"discoveryAddress": f"{istiod_host}:15012", "meshId": spec.name,
                              "proxyMetadata": dict(sorted(metadata.items()))}}
    gateway = cluster.east_west_gateway.addresses[0]
    token = (f"{kubectl(spec, cluster.name)} create token {shlex.quote(sa)} -n {shlex.quote(w.namespace)} "
             f"--audience istio-ca --duration {TOKEN_SECONDS}s > istio-token\n")
    files = {
        # the proxy metadata and the overrides, as createClusterEnv merges them (workload.go:383-390):
        # istio-start.sh sources only sidecar.env and cluster.env (tools/packaging/common/
        # istio-start.sh:24-34), and pilot-agent reads ISTIO_META_* from its environment
        "cluster.env": _env_file({**metadata, **env}),
        "mesh.yaml": yaml.safe_dump(mesh, sort_keys=False, default_flow_style=False, width=4096),
        "hosts": f"{gateway} {istiod_host}\n",
        "istio-token.command": token,
        "README": _istio_readme(spec, w, cluster, root_cert is not None),
    }
    if root_cert is not None:
        files["root-cert.pem"] = root_cert
    return files


def _istio_readme(spec, w, cluster, have_root: bool) -> str:
    root = ("root-cert.pem: the mesh root certificate you gave" if have_root else
            "root-cert.pem: NOT WRITTEN (no --root-cert): save the mesh root certificate there, e.g. "
            f"{kubectl(spec, cluster.name)} -n {shlex.quote(w.namespace)} get configmap istio-ca-root-cert "
            "-o jsonpath='{.data.root-cert\\.pem}' > root-cert.pem")
    entries = ("static WorkloadEntries (one per address) are rendered by the stack" if w.addresses else
               "no addresses: the VM registers its own WorkloadEntry from WorkloadGroup "
               f"{w.namespace}/{w.name} when it connects (ISTIO_META_AUTO_REGISTER_GROUP)")
    return (f"Istio VM bootstrap for external workload {w.namespace}/{w.name} (cluster {cluster.name}).\n"
            f"Written by python -m mesh_components workload-bootstrap, as istioctl x workload entry configure "
            f"writes it (istio 1.30.3 istioctl/pkg/workload/workload.go).\n\n"
            f"- {root}\n"
            f"- istio-token: NOT WRITTEN (a token is made by the API server, never offline): run the command in "
            f"istio-token.command, then copy the file to the VM before its token expires "
            f"({TOKEN_SECONDS}s)\n"
            f"- {entries}\n\n"
            f"On the VM (https://istio.io/latest/docs/setup/install/virtual-machine/):\n"
            f"  sudo mkdir -p /etc/certs /var/run/secrets/tokens /etc/istio/config /var/lib/istio/envoy\n"
            f"  sudo cp root-cert.pem /etc/certs/root-cert.pem\n"
            f"  sudo cp istio-token /var/run/secrets/tokens/istio-token\n"
            f"  sudo cp cluster.env /var/lib/istio/envoy/cluster.env\n"
            f"  sudo cp mesh.yaml /etc/istio/config/mesh\n"
            f"  sudo sh -c 'cat hosts >> /etc/hosts'\n"
            f"then install the istio-sidecar package of Istio {spec.backend.chart_version} and start istio.\n")


def linkerd_bootstrap(spec, model, w, root_cert: str | None) -> dict[str, str]:
    """The files a machine needs to join Linkerd as ``w``, following
    https://linkerd.io/2-edge/tasks/adding-non-kubernetes-workloads/ (SPIRE agent + proxy), as
    ``{file name: text}``:

    - ``proxy.env``: the proxy's environment (names from linkerd2-proxy release/v2.366.0
      ``linkerd/app/src/env.rs:200-262``; addresses and control-plane names as the chart's proxy
      template gives them, linkerd2 edge-26.8.3 ``charts/partials/templates/_proxy.tpl:67-79,191-234``):
      ``LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS`` the chart's (:data:`LINKERD_CLUSTER_NETWORKS`),
      ``LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS`` ``root_cert`` when given,
      ``LINKERD2_PROXY_IDENTITY_SERVER_ID`` the SPIFFE ID ``spiffe://<td>/ns/<ns>/sa/<sa>`` (with
      SPIRE the proxy needs a SPIFFE id, ``env/identity.rs:17-40``), ``..._SERVER_NAME`` the Linkerd
      identity, ``..._SPIRE_SOCKET``, ``..._POLICY_WORKLOAD`` / ``..._DESTINATION_CONTEXT`` naming the
      ExternalWorkload, the inbound default policy of its namespace;
    - ``spire-entry.command``: the ``spire-server entry create`` registering that SPIFFE ID with the
      Linkerd identity as its DNS name (the identity peers and policies see: module docstring);
    - ``ready.command``: the ``kubectl patch --subresource=status`` that marks the ExternalWorkload
      Ready (nothing in Linkerd sets it; without it its endpoints are not serving,
      ``controller/api/destination/external-workload/controller_util.go:214-229``);
    - ``trust-anchors.pem``: ``root_cert`` (the Linkerd trust anchor, also the root SPIRE's
      upstream authority must chain to), when given; ``README``."""
    from ..meshes.linkerd import default_inbound_policy
    from ..meshes.linkerd_policy import identity
    from . import multicluster as mc

    sa, ns = account(spec, w), w.namespace
    ident = identity(spec.trust_domain, ns, sa)
    spiffe = spiffe_id(spec.trust_domain, ns, sa)
    control = f"linkerd-destination.{mc.LINKERD_NAMESPACE}.serviceaccount.identity.{mc.LINKERD_NAMESPACE}." \
              f"{spec.trust_domain}"
    name = instances(w)[0][0]
    ref = json.dumps({"ns": ns, "external_workload": name}, separators=(",", ":"))
    env = {
        "LINKERD2_PROXY_IDENTITY_SERVER_ID": spiffe,
        "LINKERD2_PROXY_IDENTITY_SERVER_NAME": ident,
        "LINKERD2_PROXY_IDENTITY_SPIRE_SOCKET": "unix:///tmp/spire-agent/public/api.sock",
        "LINKERD2_PROXY_POLICY_WORKLOAD": ref,
        "LINKERD2_PROXY_DESTINATION_CONTEXT": json.dumps({"ns": ns, "nodeName": name, "external_workload": name},
                                                         separators=(",", ":")),
        "LINKERD2_PROXY_DESTINATION_SVC_ADDR": f"linkerd-dst-headless.{mc.LINKERD_NAMESPACE}.svc."
                                               f"{mc.CLUSTER_DOMAIN}.:8086",
        "LINKERD2_PROXY_DESTINATION_SVC_NAME": control,
        "LINKERD2_PROXY_POLICY_SVC_ADDR": f"linkerd-policy.{mc.LINKERD_NAMESPACE}.svc.{mc.CLUSTER_DOMAIN}.:8090",
        "LINKERD2_PROXY_POLICY_SVC_NAME": control,
        "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY": default_inbound_policy(spec, model, ns) or "all-unauthenticated",
        # what pod proxies get (_proxy.tpl:78-79); without it cluster-scoped default policies are
        # unsupported (linkerd2-proxy linkerd/app/src/env.rs:669-688)
        "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS": LINKERD_CLUSTER_NETWORKS,
    }
    if root_cert is not None:  # PEM text, env.rs:217 ENV_IDENTITY_TRUST_ANCHORS
        env["LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"] = root_cert
    trust = ("proxy.env sets LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS to the trust anchor you gave" if root_cert is not None
             else "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS: NOT SET (no --root-cert): rerun with --root-cert "
                  "trust-anchors.pem, or add it to proxy.env "
                  "(LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS=\"$(cat trust-anchors.pem)\")")
    spire = (f"spire-server entry create -spiffeID {shlex.quote(spiffe)} -dns {shlex.quote(ident)} "
             f"-parentID \"$SPIRE_AGENT_ID\" -selector \"$WORKLOAD_SELECTOR\"\n")
    ready = (f"{kubectl(spec, w.cluster)} -n {shlex.quote(ns)} patch externalworkloads.workload.linkerd.io "
             f"{shlex.quote(name)} --subresource=status --type=merge -p "
             + shlex.quote(json.dumps({"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                                      separators=(",", ":"))) + "\n")
    root = ("trust-anchors.pem: the Linkerd trust anchor you gave" if root_cert is not None else
            f"trust-anchors.pem: NOT WRITTEN (no --root-cert): {kubectl(spec, w.cluster)} -n linkerd get configmap "
            "linkerd-identity-trust-roots -o jsonpath='{.data.ca-bundle\\.crt}' > trust-anchors.pem")
    readme = (f"Linkerd bootstrap for external workload {ns}/{w.name} (ExternalWorkload {name}, cluster "
              f"{w.cluster}), following https://linkerd.io/2-edge/tasks/adding-non-kubernetes-workloads/.\n\n"
              f"- {root}\n- {trust}\n"
              f"- proxy.env is POSIX shell (values quoted, the trust anchor spans lines): load it with "
              f"set -a; . ./proxy.env; set +a\n"
              f"- DNS: the machine must resolve in-cluster names of cluster {w.cluster} (the task's "
              f"prerequisites), among them the control-plane addresses in proxy.env\n"
              f"- SPIRE: run a SPIRE agent on the machine whose server's upstream authority chains to the trust "
              f"anchor, trust domain {spec.trust_domain}; register the workload with spire-entry.command (set "
              f"SPIRE_AGENT_ID to the agent's SPIFFE ID and WORKLOAD_SELECTOR to the proxy's selector, e.g. "
              f"unix:uid:<uid>). The DNS name makes the proxy present {ident}, the identity access rules name.\n"
              f"- run linkerd2-proxy of Linkerd {spec.backend.chart_version} with proxy.env and the iptables "
              f"redirection of the task (inbound 4143, outbound 4140)\n"
              f"- ready.command marks the ExternalWorkload Ready once the proxy runs (until then its "
              f"Services send it nothing)\n")
    files = {"proxy.env": _env_file(env), "spire-entry.command": spire, "ready.command": ready, "README": readme}
    if root_cert is not None:
        files["trust-anchors.pem"] = root_cert
    return files


def bootstrap_files(loaded, workload: str, root_cert: str | None) -> dict[str, str]:
    """``{file name: text}`` of the bootstrap of external workload ``workload`` of ``loaded`` (a
    ``LoadedMesh``): :func:`istio_bootstrap` or :func:`linkerd_bootstrap`. Raises ``SpecError``
    for an unknown workload or an OSM stack (already refused by validation)."""
    spec = loaded.spec
    w = find(spec, workload)
    if spec.backend.type == "istio":
        return istio_bootstrap(spec, w, root_cert)
    from .render import traffic_model

    return linkerd_bootstrap(spec, traffic_model(loaded), w, root_cert)
