"""Listener certificates from cert-manager: the chart, the issuers the spec declares and one
``Certificate`` per ingress gateway, written into the Secret the HTTPS listeners reference.

Upstream (cert-manager v1.21.1, ../shared/charts/cert-manager and ../shared/crds/cert-manager):

- chart ``cert-manager`` from ``oci://quay.io/jetstack/charts`` in namespace ``cert-manager`` with
  ``crds.enabled: true`` (``crds.keep`` stays true: uninstalling never deletes certificates) and the
  Gateway API integration on (``config.gatewayAPI.enabled``, ControllerConfiguration
  ``controller.config.cert-manager.io/v1alpha1``; cert-manager checks for the Gateway API CRDs at
  start, so the release installs after them);
- ACME: a ``ClusterIssuer`` with one HTTP-01 solver of type ``gatewayHTTPRoute`` whose
  ``parentRefs`` name the ingress Gateway: cert-manager attaches a temporary HTTPRoute for
  ``/.well-known/acme-challenge/<token>`` to the Gateway's listeners, and an exact path outranks the
  HTTP-to-HTTPS redirect (``/`` prefix), https://cert-manager.io/docs/configuration/acme/http01/ ;
  or, with ``acme.dns01``, one DNS-01 solver at the DNS provider (cloudDNS, route53, azureDNS,
  cloudflare; https://cert-manager.io/docs/configuration/acme/dns01/), required when several
  clusters serve the host: each cluster orders its own certificate (same hosts, same Secret name)
  and HTTP-01 reaches only the cluster DNS points at (``spec.AcmeIssuer``). The credentials Secrets
  are the user's, in cert-manager's namespace (``spec.SecretKeyRef``);
- mesh CA: a namespaced ``Issuer`` of type ``ca`` whose Secret holds this cluster's mesh
  intermediate (``tls.crt`` = chain, ``tls.key``, ``ca.crt`` = trust bundle) as deploy-time values,
  https://cert-manager.io/docs/configuration/ca/ . Certificates it signs are trusted by clients
  that trust the mesh root (internal ingress), and the intermediate key gets a second home in the
  gateway namespace: a trade-off the user opts into with ``meshCA: true``.
"""
from __future__ import annotations

from . import ca
from .meta import k8s_object

CERT_MANAGER_NAMESPACE = "cert-manager"
CERT_MANAGER_RELEASE = "cert-manager"
CERT_MANAGER_REPOSITORY = "oci://quay.io/jetstack/charts"
CERT_MANAGER_VERSION = "v1.21.1"
CERT_MANAGER_API = "cert-manager.io/v1"


def cert_manager_release(concern: str) -> dict:
    """The cert-manager Helm release as a release dict (``render.HelmRelease`` fields) owned by
    ``concern``."""
    return {"name": CERT_MANAGER_RELEASE, "namespace": CERT_MANAGER_NAMESPACE, "repository": CERT_MANAGER_REPOSITORY,
            "chart": "cert-manager", "version": CERT_MANAGER_VERSION,
            "values": {"crds": {"enabled": True},
                       "config": {"apiVersion": "controller.config.cert-manager.io/v1alpha1",
                                  "kind": "ControllerConfiguration", "gatewayAPI": {"enabled": True}}},
            "depends_on": [], "concern": concern}


def needs_cert_manager(spec) -> bool:
    """True when the ingress asks cert-manager for its certificate and cert-manager is to be installed."""
    ing = spec.ingress
    return bool(ing and ing.tls and ing.tls.issuer and ing.cert_manager == "install")


def acme_solver(acme, gateway: str, namespace: str) -> dict:
    """The one solver of the ACME ClusterIssuer: ``dns01`` at the DNS provider when the spec gives
    ``acme.dns01`` (:class:`mesh_components.spec.Dns01Solver`; the only kind that works for a host
    several clusters serve, which ``validate`` requires), else HTTP-01 through the ingress Gateway
    ``namespace/gateway``."""
    if acme.dns01 is not None:
        return {"dns01": acme.dns01.solver()}
    return {"http01": {"gatewayHTTPRoute": {"parentRefs": [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway, "namespace": namespace}]}}}


def certificate_objects(spec, cluster: str, gateway: str, namespace: str) -> list[dict]:
    """The issuer (when the spec declares it) and the ``Certificate`` for the ingress Gateway
    ``namespace/gateway`` in ``cluster``; empty without ``tls.issuer``.

    The Certificate is named after the listener Secret (``tls.secretName``), in the gateway
    namespace, with every ingress host as a DNS name and ``issuerRef`` the named issuer.
    """
    ing = spec.ingress
    tls = ing.tls if ing else None
    if tls is None or tls.issuer is None:
        return []
    issuer, mesh = tls.issuer, spec.name
    objects = []
    if issuer.acme is not None:
        objects.append(k8s_object(CERT_MANAGER_API, "ClusterIssuer", issuer.name, None, mesh, spec={"acme": {
            "email": issuer.acme.email,
            "server": issuer.acme.server,
            "privateKeySecretRef": {"name": f"{issuer.name}-account-key"},
            "solvers": [acme_solver(issuer.acme, gateway, namespace)]}}))
    elif issuer.mesh_ca:
        material = ca.slot_material(cluster)
        secret = f"{issuer.name}-ca"
        objects.append(k8s_object("v1", "Secret", secret, namespace, mesh, type="kubernetes.io/tls", stringData={
            "tls.crt": material.cert_chain_pem, "tls.key": material.ca_key_pem,
            "ca.crt": material.trust_bundle_pem}))
        objects.append(k8s_object(CERT_MANAGER_API, "Issuer", issuer.name, namespace, mesh,
                                  spec={"ca": {"secretName": secret}}))
    objects.append(k8s_object(CERT_MANAGER_API, "Certificate", tls.secret_name, namespace, mesh, spec={
        "secretName": tls.secret_name,
        "dnsNames": list(ing.hosts),
        "issuerRef": {"group": "cert-manager.io", "kind": issuer.issuer_kind, "name": issuer.name}}))
    return objects
