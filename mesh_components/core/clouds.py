"""Per-cloud load-balancer settings for gateway Services, where the clouds differ.

Sources: AWS Load Balancer Controller service annotations
(https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/),
AKS internal load balancer (https://learn.microsoft.com/azure/aks/internal-lb), GKE internal
passthrough Network Load Balancer (https://cloud.google.com/kubernetes-engine/docs/how-to/internal-load-balancing).
On AWS we ask for NLB with IP targets: classic ELBs hand out hostnames only, which cross-network
discovery handles badly (istio#29359, linkerd2#5343).
"""
from __future__ import annotations


def load_balancer_annotations(cloud: str, *, internal: bool) -> dict[str, str]:
    """Service annotations for a gateway load balancer on ``cloud`` (aws|azure|gcp|onprem);
    ``internal`` asks for a private (VPC/VNet-only) address. Sorted keys, string values."""
    if cloud == "aws":
        return {
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal" if internal else "internet-facing",
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        }
    if cloud == "azure" and internal:
        return {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}
    if cloud == "gcp" and internal:
        return {"networking.gke.io/load-balancer-type": "Internal"}
    return {}


def east_west_service(cluster) -> tuple[dict[str, str], str | None]:
    """Load-balancer settings of ``cluster``'s east-west gateway Service: ``(annotations,
    load_balancer_ip)``. The annotations are :func:`load_balancer_annotations` plus the static
    addresses of ``cluster.east_west_gateway`` as the cloud takes them; ``load_balancer_ip`` is the
    Service ``loadBalancerIP`` (gcp, onprem) or None.

    - aws: ``aws-load-balancer-subnets`` and, internet-facing, ``aws-load-balancer-eip-allocations``
      or, internal, ``aws-load-balancer-private-ipv4-addresses`` (one per subnet, same order;
      https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/#subnets);
    - azure: ``azure-load-balancer-ipv4`` (https://learn.microsoft.com/azure/aks/static-ip);
    - gcp, onprem: ``loadBalancerIP``
      (https://cloud.google.com/kubernetes-engine/docs/concepts/service-load-balancer-parameters).
    """
    annotations = load_balancer_annotations(cluster.cloud, internal=cluster.internal_load_balancers)
    ew = cluster.east_west_gateway
    if ew is None:
        return annotations, None
    if cluster.cloud == "aws":
        annotations["service.beta.kubernetes.io/aws-load-balancer-subnets"] = ",".join(ew.subnets)
        if cluster.internal_load_balancers:
            annotations["service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses"] = ",".join(ew.addresses)
        else:
            annotations["service.beta.kubernetes.io/aws-load-balancer-eip-allocations"] = ",".join(ew.eip_allocations)
        return dict(sorted(annotations.items())), None
    if cluster.cloud == "azure":
        annotations["service.beta.kubernetes.io/azure-load-balancer-ipv4"] = ew.addresses[0]
        return dict(sorted(annotations.items())), None
    return annotations, ew.addresses[0]
