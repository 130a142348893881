"""Linkerd control plane: Helm releases in install order and the namespaces they run in, per
cluster, with the mesh CA's trust anchor and issuer, and multi-cluster links (policy translation
lives in ``linkerd_policy``).

Upstream behaviour this follows: ../shared/charts/linkerd-control-plane/INSTALL-FACTS.md (charts
2026.8.3 from https://helm.linkerd.io/edge; ``linkerd-crds`` -> ``linkerd-control-plane`` ->
extensions), https://linkerd.io/2/tasks/install-helm/ (the Gateway API CRDs must exist first),
https://linkerd.io/2/tasks/installing-multicluster/ and the chart templates of linkerd/linkerd2
(``charts/linkerd-control-plane/templates/namespace.yaml``,
``multicluster/charts/linkerd-multicluster/templates/remote-access-service-mirror-rbac.yaml``).
"""
from __future__ import annotations

from . import multicluster as mc
from .clouds import east_west_service
from .meta import deep_merge, k8s_object

REPOSITORY = "https://helm.linkerd.io/edge"
NAMESPACE = mc.LINKERD_NAMESPACE
MC_NAMESPACE = mc.LINKERD_MC_NAMESPACE


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

    releases = [release("linkerd-crds", "linkerd-crds", {}),
                release("linkerd-control-plane", "linkerd-control-plane", {"identityTrustDomain": td},
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
