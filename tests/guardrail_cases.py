"""The per-object guardrail cases: each a Kubernetes object, the resource policy it is checked by,
and how many violations the CrossGuard validator reports on it (0: it passes). Shared by
tests/test_guardrails.py (the CrossGuard validators) and tests/test_admission_guardrails.py (the
admission policies rendered from the same definitions must refuse exactly the objects with a
violation), so both run on the very same objects.

``CASES``: ``(id, policy, resource_type, props, violations, config)``; ``config``: the policy's
CrossGuard config (its pack properties) and, for the admission side, ``mesh.guardrails`` settings
of the same meaning (``permissiveNamespaces``). ``props`` carry ``apiVersion`` and ``kind`` (as the
API server's object does) beside what CrossGuard reads.
"""
from __future__ import annotations

import copy

PA = "kubernetes:security.istio.io/v1:PeerAuthentication"
AP = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
L_AP = "kubernetes:policy.linkerd.io/v1alpha1:AuthorizationPolicy"
L_MTLS = "kubernetes:policy.linkerd.io/v1alpha1:MeshTLSAuthentication"
L_SERVER = "kubernetes:policy.linkerd.io/v1beta3:Server"
SE = "kubernetes:networking.istio.io/v1:ServiceEntry"
GW = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
ISTIO_GW = "kubernetes:networking.istio.io/v1:Gateway"
NS = "kubernetes:core/v1:Namespace"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
POD = "kubernetes:core/v1:Pod"
L_SA = "kubernetes:policy.linkerd.io/v1beta1:ServerAuthorization"


def obj(name, spec, ns="n", annotations=None):
    """``{metadata, spec}`` as the CrossGuard tests write objects."""
    meta = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec}


def as_k8s(resource_type: str, props: dict) -> dict:
    """The object as the API server hands it to an admission policy: ``apiVersion`` and ``kind``
    from the type token, the rest as is."""
    _, _, rest = resource_type.partition(":")
    api, _, kind = rest.rpartition(":")
    group, _, version = api.partition("/")
    return {"apiVersion": version if group == "core" else f"{group}/{version}", "kind": kind,
            **copy.deepcopy(props)}


# --- mtls-strict ---------------------------------------------------------------------------------

MTLS_PEER_AUTHENTICATION = [
    ({"mtls": {"mode": "STRICT"}}, 0), ({}, 0), ({"mtls": {"mode": "UNSET"}}, 0),
    ({"mtls": {"mode": "PERMISSIVE"}}, 1), ({"mtls": {"mode": "DISABLE"}}, 1),
    ({"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}, "9090": {"mode": "STRICT"}}}, 1),
]
"""``(spec, violations)`` of a PeerAuthentication ``n/pa``."""

# --- no-allow-all --------------------------------------------------------------------------------

ALLOWED = {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/a"]}}], "to": [{"operation": {"methods": ["GET"]}}]}

ISTIO_AUTHORIZATION = [
    ({"action": "ALLOW", "rules": [ALLOWED]}, 0),
    ({"rules": [ALLOWED]}, 0),
    ({"selector": {"matchLabels": {"app": "a"}}}, 0),          # no rules: denies everything
    ({"action": "DENY", "rules": [{}]}, 0),                    # deny-all is fine
    ({"action": "ALLOW", "rules": [{}]}, 1),                   # the textbook allow-all
    ({"rules": [ALLOWED, {"to": [{"operation": {"paths": ["/admin"]}}]}]}, 1),  # no 'from'
    ({"rules": [{"from": [], "to": []}]}, 1),
    ({"rules": [{"from": [{"source": {}}]}]}, 1),
    # wildcards restrict nothing: '*' is Istio's presence match (issue 10, point 13;
    # https://istio.io/latest/docs/reference/config/security/authorization-policy/#Source)
    ({"rules": [{"from": [{"source": {"principals": ["*"]}}]}]}, 1),
    ({"rules": [{"from": [{"source": {"principals": ["cluster.local/*"]}}]}]}, 1),
    ({"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/a/sa/a", "*"]}}]}]}, 1),
    ({"rules": [{"from": [{"source": {"namespaces": ["*"]}}]}]}, 1),
    ({"rules": [{"from": [{"source": {"ipBlocks": ["0.0.0.0/0"]}}]}]}, 1),
    ({"rules": [{"from": [{"source": {"notPrincipals": ["cluster.local/ns/a/sa/a"]}}]}]}, 1),
    ({"rules": [{"from": [{"source": {"principals": ["*"], "namespaces": ["a"]}}]}]}, 0),  # ANDed: namespace a
    ({"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/a/*"]}}]}]}, 0),
    # a suffix match spans every namespace (review point 8; istio 1.30.3
    # pilot/pkg/security/authz/matcher/string.go:100-116: '*x' is a suffix match)
    ({"rules": [{"from": [{"source": {"principals": ["*/sa/a"]}}]}]}, 1),
    ({"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/book*"]}}]}]}, 1),
    ({"rules": [{"from": [{"source": {"namespaces": ["book*"]}}]}]}, 1),
    ({"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/a/sa/*"]}}]}]}, 0),
]
"""``(spec, violations)`` of an Istio AuthorizationPolicy ``n/ap``."""

LINKERD_IDENTITIES = [
    (["a.n.serviceaccount.identity.linkerd.cluster.local"], 0),
    (["*.n.serviceaccount.identity.linkerd.cluster.local"], 0),       # one namespace
    (["*"], 1), (["*.cluster.local"], 1), (["*.serviceaccount.identity.linkerd.cluster.local"], 1),
]
"""``(identities, violations)`` of a MeshTLSAuthentication ``n/m``."""

# --- ingress-tls ---------------------------------------------------------------------------------

HTTP = {"name": "http", "port": 80, "protocol": "HTTP"}
HTTPS = {"name": "https", "port": 443, "protocol": "HTTPS", "tls": {"certificateRefs": [{"name": "cert"}]}}

GATEWAY_LISTENERS = [
    ([HTTP, HTTPS], 0), ([HTTPS], 0), ([{"name": "tls", "port": 443, "protocol": "TLS"}], 0),
    ([{"name": "mesh", "port": 15008, "protocol": "HBONE"}], 0),   # an ambient waypoint
    ([HTTP], 1), ([HTTP, {"name": "tcp", "port": 5432, "protocol": "TCP"}], 1),
]
"""``(listeners, violations)`` of a Gateway API Gateway ``n/gw``."""


def _open_service(**change):
    """The explicit open service ``mesh_components.meshes.istio_policy`` renders (and variations)."""
    spec = {"targetRefs": [{"group": "", "kind": "Service", "name": "bookstore"},
                           {"group": "", "kind": "Service", "name": "bookstore-v1"}],
            "rules": [{"from": [{"source": {"principals": ["*"]}}]}]}
    name = change.pop("name", "bookstore-unrestricted")
    spec.update(change)
    return obj(name, spec, ns="bookstore", annotations={"mesh-components.io/unrestricted": "true"})


def _fence(egress):
    return obj("mesh-egress-allow-list", {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress})


_PERMISSIVE = {"permissiveNamespaces": ["legacy"]}

CASES: list[tuple[str, str, str, dict, int, dict | None]] = [
    *[(f"pa-{i}", "mtls-strict", PA, obj("pa", spec), n, None) for i, (spec, n) in enumerate(MTLS_PEER_AUTHENTICATION)],
    ("pa-exempt-namespace", "mtls-strict", PA, obj("pa", {"mtls": {"mode": "PERMISSIVE"}}, ns="legacy"), 0, _PERMISSIVE),
    ("pa-other-namespace", "mtls-strict", PA, obj("pa", {"mtls": {"mode": "PERMISSIVE"}}, ns="n"), 1, _PERMISSIVE),
    ("pa-port-disable", "mtls-strict", PA, obj("pa", {"portLevelMtls": {"80": {"mode": "DISABLE"}}}), 1, None),
    ("pa-port-unset", "mtls-strict", PA, obj("pa", {"portLevelMtls": {"80": {}}}), 0, None),
    ("pa-lowercase-mode", "mtls-strict", PA, obj("pa", {"mtls": {"mode": "permissive"}}), 0, None),
    ("ns-plain", "mtls-strict", NS, {"metadata": {"name": "app"}}, 0, None),
    ("ns-deny", "mtls-strict", NS, {"metadata": {"name": "app", "annotations": {
        "config.linkerd.io/default-inbound-policy": "deny"}}}, 0, None),
    ("ns-all-authenticated", "mtls-strict", NS, {"metadata": {"name": "app", "annotations": {
        "config.linkerd.io/default-inbound-policy": "all-authenticated"}}}, 0, None),
    ("ns-all-unauthenticated", "mtls-strict", NS, {"metadata": {"name": "app", "annotations": {
        "config.linkerd.io/default-inbound-policy": "all-unauthenticated"}}}, 1, None),
    ("ns-cluster-unauthenticated", "mtls-strict", NS, {"metadata": {"name": "app", "annotations": {
        "config.linkerd.io/default-inbound-policy": "cluster-unauthenticated"}}}, 1, None),

    # audit lets every connection through (linkerd2 edge-26.8.3 policy-controller/k8s/index/src/defaults.rs:25-26,53)
    ("ns-audit", "mtls-strict", NS, {"metadata": {"name": "app", "annotations": {
        "config.linkerd.io/default-inbound-policy": "audit"}}}, 1, None),
    ("ns-audit-uppercase", "mtls-strict", NS, {"metadata": {"name": "app", "annotations": {
        "config.linkerd.io/default-inbound-policy": "Audit"}}}, 0, None),   # not a mode: Linkerd ignores it
    ("ns-audit-suffix", "mtls-strict", NS, {"metadata": {"name": "app", "annotations": {
        "config.linkerd.io/default-inbound-policy": "no-audit"}}}, 0, None),
    # the pod's annotation overrides the namespace's (policy-controller/k8s/index/src/inbound/workload.rs:186-193)
    ("pod-plain", "mtls-strict", POD, obj("p", {"containers": [{"name": "c", "image": "x"}]}), 0, None),
    ("pod-deny", "mtls-strict", POD, obj("p", {"containers": [{"name": "c", "image": "x"}]}, annotations={
        "config.linkerd.io/default-inbound-policy": "deny", "linkerd.io/inject": "enabled"}), 0, None),
    ("pod-audit", "mtls-strict", POD, obj("p", {"containers": [{"name": "c", "image": "x"}]}, annotations={
        "config.linkerd.io/default-inbound-policy": "audit"}), 1, None),
    ("pod-all-unauthenticated", "mtls-strict", POD, obj("p", {"containers": [{"name": "c", "image": "x"}]}, annotations={
        "config.linkerd.io/default-inbound-policy": "all-unauthenticated"}), 1, None),

    *[(f"ap-{i}", "no-allow-all", AP, obj("ap", spec), n, None) for i, (spec, n) in enumerate(ISTIO_AUTHORIZATION)],
    ("ap-two-open-rules", "no-allow-all", AP, obj("ap", {"rules": [{}, {"to": []}]}), 2, None),
    ("ap-ipv6-all", "no-allow-all", AP, obj("ap", {"rules": [{"from": [{"source": {"remoteIpBlocks": ["::/0"]}}]}]}), 1, None),
    ("ap-netmask-all", "no-allow-all", AP, obj("ap", {"rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/0.0.0.0"]}}]}]}), 1, None),
    ("ap-private-block", "no-allow-all", AP, obj("ap", {"rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}), 0, None),
    ("ap-block-slash-10", "no-allow-all", AP, obj("ap", {"rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/10"]}}]}]}), 0, None),
    ("ap-request-principal-any", "no-allow-all", AP, obj("ap", {"rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]}), 1, None),
    ("ap-request-principal-issuer", "no-allow-all", AP, obj("ap", {"rules": [{"from": [{"source": {"requestPrincipals": ["issuer.example/*"]}}]}]}), 1, None),
    ("ap-request-principal-one", "no-allow-all", AP, obj("ap", {"rules": [{"from": [{"source": {"requestPrincipals": ["https://issuer.example/alice"]}}]}]}), 0, None),
    ("ap-service-account-wildcard", "no-allow-all", AP, obj("ap", {"rules": [{"from": [{"source": {"serviceAccounts": ["a/*"]}}]}]}), 1, None),
    ("ap-audit", "no-allow-all", AP, obj("ap", {"action": "AUDIT", "rules": [{}]}), 0, None),
    ("open-service", "no-allow-all", AP, _open_service(), 0, None),
    ("open-service-only-base", "no-allow-all", AP, _open_service(targetRefs=[{"group": "", "kind": "Service", "name": "bookstore"}]), 0, None),
    ("open-service-wrong-name", "no-allow-all", AP, _open_service(name="other-unrestricted"), 1, None),
    ("open-service-other-target", "no-allow-all", AP, _open_service(targetRefs=[
        {"group": "", "kind": "Service", "name": "bookstore"}, {"group": "", "kind": "Service", "name": "mysql"}]), 1, None),
    ("open-service-version-with-dot", "no-allow-all", AP, _open_service(targetRefs=[
        {"group": "", "kind": "Service", "name": "bookstore"}, {"group": "", "kind": "Service", "name": "bookstore-v.1"}]), 1, None),
    ("open-service-repeated-target", "no-allow-all", AP, _open_service(targetRefs=[
        {"group": "", "kind": "Service", "name": "bookstore"}, {"group": "", "kind": "Service", "name": "bookstore"}]), 1, None),
    ("open-service-selector", "no-allow-all", AP, _open_service(selector={"matchLabels": {"app": "x"}}), 1, None),
    ("open-service-second-rule", "no-allow-all", AP, _open_service(rules=[
        {"from": [{"source": {"principals": ["*"]}}]}, {}]), 2, None),
    ("open-service-gateway-target", "no-allow-all", AP, _open_service(targetRefs=[
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "bookstore"}]), 1, None),
    ("open-service-unannotated", "no-allow-all", AP, {**_open_service(), "metadata": {"name": "bookstore-unrestricted",
                                                                                      "namespace": "bookstore"}}, 1, None),
    *[(f"mtls-auth-{i}", "no-allow-all", L_MTLS, obj("m", {"identities": ids}), n, None)
      for i, (ids, n) in enumerate(LINKERD_IDENTITIES)],
    ("mtls-auth-two-wild", "no-allow-all", L_MTLS, obj("m", {"identities": ["*", "*.x"]}), 2, None),
    ("mtls-auth-refs-only", "no-allow-all", L_MTLS, obj("m", {"identityRefs": [{"kind": "ServiceAccount", "name": "a"}]}), 0, None),
    ("multicluster-any-meshed", "no-allow-all", L_MTLS, obj("any-meshed", {"identities": ["*"]}, ns="linkerd-multicluster"), 0, None),
    ("any-meshed-elsewhere", "no-allow-all", L_MTLS, obj("any-meshed", {"identities": ["*"]}, ns="bookstore"), 1, None),
    ("any-meshed-wider", "no-allow-all", L_MTLS, obj("any-meshed", {"identities": ["*", "*.cluster.local"]},
                                                     ns="linkerd-multicluster"), 2, None),
    ("server-default", "no-allow-all", L_SERVER, obj("s", {"port": 80}), 0, None),
    ("server-deny", "no-allow-all", L_SERVER, obj("s", {"port": 80, "accessPolicy": "deny"}), 0, None),
    ("server-all-authenticated", "no-allow-all", L_SERVER, obj("s", {"port": 80, "accessPolicy": "all-authenticated"}), 1, None),
    # v1beta1 ServerAuthorization (policy-controller/k8s/index/src/inbound/server_authorization.rs:78-100)
    ("saz-identities", "no-allow-all", L_SA, obj("sa", {"server": {"name": "s"}, "client": {"meshTLS": {
        "identities": ["a.n.serviceaccount.identity.linkerd.cluster.local",
                       "*.n.serviceaccount.identity.linkerd.cluster.local"]}}}), 0, None),
    ("saz-service-accounts", "no-allow-all", L_SA, obj("sa", {"server": {"name": "s"}, "client": {"meshTLS": {
        "serviceAccounts": [{"name": "a"}]}}}), 0, None),
    ("saz-unauthenticated", "no-allow-all", L_SA, obj("sa", {"server": {"name": "s"}, "client": {
        "unauthenticated": True}}), 1, None),
    ("saz-unauthenticated-false", "no-allow-all", L_SA, obj("sa", {"server": {"name": "s"}, "client": {
        "unauthenticated": False, "meshTLS": {"serviceAccounts": [{"name": "a"}]}}}), 0, None),
    ("saz-unauthenticated-tls", "no-allow-all", L_SA, obj("sa", {"server": {"name": "s"}, "client": {"meshTLS": {
        "unauthenticatedTLS": True}}}), 1, None),
    ("saz-identity-star", "no-allow-all", L_SA, obj("sa", {"server": {"name": "s"}, "client": {"meshTLS": {
        "identities": ["*"]}}}), 1, None),
    ("saz-identity-cluster", "no-allow-all", L_SA, obj("sa", {"server": {"name": "s"}, "client": {
        "networks": [{"cidr": "10.0.0.0/8"}], "meshTLS": {"identities": ["*.cluster.local", "*.x"]}}}), 2, None),
    ("linkerd-ap-ok", "no-allow-all", L_AP, obj("ap", {"targetRef": {"kind": "Server", "name": "s"},
                                                     "requiredAuthenticationRefs": [{"kind": "MeshTLSAuthentication", "name": "m",
                                                                                     "group": "policy.linkerd.io"}]}), 0, None),
    ("linkerd-ap-no-auth", "no-allow-all", L_AP, obj("ap", {"targetRef": {"kind": "Server", "name": "s"},
                                                          "requiredAuthenticationRefs": []}), 1, None),
    ("linkerd-ap-network-only", "no-allow-all", L_AP, obj("ap", {"targetRef": {"kind": "Server", "name": "s"},
                                                               "requiredAuthenticationRefs": [{"kind": "NetworkAuthentication",
                                                                                               "name": "all"}]}), 0, None),

    ("se-exact", "no-wildcard-egress", SE, obj("se", {"hosts": ["api.example.com"]}), 0, None),
    ("se-wild", "no-wildcard-egress", SE, obj("se", {"hosts": ["api.example.com", "*.example.com"]}), 1, None),
    ("se-star", "no-wildcard-egress", SE, obj("se", {"hosts": ["*"]}), 1, None),
    ("se-excepted", "no-wildcard-egress", SE, obj("se", {"hosts": ["*.example.com"]},
                                                  annotations={"mesh-components.io/allow-wildcard": "true"}), 0, None),
    ("se-excepted-uppercase", "no-wildcard-egress", SE, obj("se", {"hosts": ["*.example.com"]},
                                                            annotations={"mesh-components.io/allow-wildcard": "TRUE"}), 0, None),
    ("se-not-excepted", "no-wildcard-egress", SE, obj("se", {"hosts": ["*.example.com"]},
                                                      annotations={"mesh-components.io/allow-wildcard": "false"}), 1, None),
    ("se-excepted-yes", "no-wildcard-egress", SE, obj("se", {"hosts": ["*.example.com"]},
                                                      annotations={"mesh-components.io/allow-wildcard": "yes"}), 1, None),
    ("se-two-wild", "no-wildcard-egress", SE, obj("se", {"hosts": ["*.a.example", "*.b.example"]}), 2, None),
    ("fence-ok", "no-wildcard-egress", NETPOL, _fence([{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}],
                                                        "ports": [{"port": 443, "protocol": "TCP"}]}]), 0, None),
    ("fence-dns-pods", "no-wildcard-egress", NETPOL, _fence([{"to": [{"namespaceSelector": {}}]}]), 0, None),
    ("fence-no-to", "no-wildcard-egress", NETPOL, _fence([{"ports": [{"port": 443, "protocol": "TCP"}]}]), 1, None),
    ("fence-everywhere", "no-wildcard-egress", NETPOL, _fence([{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]), 1, None),
    ("fence-everywhere-v6", "no-wildcard-egress", NETPOL, _fence([{"to": [{"ipBlock": {"cidr": "::/0", "except": ["fd00::/8"]}}]}]), 1, None),
    ("other-netpol-everywhere", "no-wildcard-egress", NETPOL,
     obj("allow-all", {"podSelector": {}, "egress": [{}]}), 0, None),

    *[(f"gw-{i}", "ingress-tls", GW, obj("gw", {"gatewayClassName": "istio", "listeners": ls}), n, None)
      for i, (ls, n) in enumerate(GATEWAY_LISTENERS)],
    ("gw-lowercase-http", "ingress-tls", GW, obj("gw", {"gatewayClassName": "istio", "listeners": [
        {"name": "http", "port": 80, "protocol": "http"}]}), 1, None),
    # Gateway API protocols are case-sensitive (gateway-api apis/v1/gateway_types.go ProtocolType
    # "HTTPS"): a lower-case "https" listener is no TLS listener, so the plain HTTP one is refused
    ("gw-lowercase-https", "ingress-tls", GW, obj("gw", {"gatewayClassName": "istio", "listeners": [
        HTTP, {"name": "https", "port": 443, "protocol": "https"}]}), 1, None),
    ("istio-gw-redirect", "ingress-tls", ISTIO_GW, obj("gw", {"servers": [
        {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"], "tls": {"httpsRedirect": True}}]}), 0, None),
    ("istio-gw-plain", "ingress-tls", ISTIO_GW, obj("gw", {"servers": [
        {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}), 1, None),
    ("istio-gw-two-plain", "ingress-tls", ISTIO_GW, obj("gw", {"servers": [
        {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]},
        {"port": {"number": 8080, "name": "http2", "protocol": "http"}, "hosts": ["*"], "tls": {"httpsRedirect": False}}]}), 2, None),
    # every protocol Istio serves as plaintext HTTP (istio 1.30.3 pkg/config/protocol/instance.go:68-94,117-120)
    *[(f"istio-gw-plain-{i}-{p}", "ingress-tls", ISTIO_GW, obj("gw", {"servers": [
        {"port": {"number": 80, "name": "p", "protocol": p}, "hosts": ["*"]}]}), 1, None)
      for i, p in enumerate(("HTTP2", "GRPC", "GRPC-Web", "HTTP_PROXY", "grpc"))],
    ("istio-gw-grpc-redirect", "ingress-tls", ISTIO_GW, obj("gw", {"servers": [
        {"port": {"number": 80, "name": "p", "protocol": "GRPC"}, "hosts": ["*"], "tls": {"httpsRedirect": True}}]}), 0, None),
    ("istio-gw-tcp", "ingress-tls", ISTIO_GW, obj("gw", {"servers": [
        {"port": {"number": 5432, "name": "p", "protocol": "TCP"}, "hosts": ["*"]}]}), 0, None),
    ("istio-gw-passthrough", "ingress-tls", ISTIO_GW, obj("gw", {"servers": [
        {"port": {"number": 15443, "name": "tls", "protocol": "TLS"}, "hosts": ["*.local"], "tls": {"mode": "AUTO_PASSTHROUGH"}}]}), 0, None),
]
"""Every per-object case, ids unique."""
