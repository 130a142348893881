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
