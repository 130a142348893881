"""The mesh-guardrails rules as data, and the in-cluster admission objects rendered from them.

One source of truth for both enforcement points of ``policies/mesh-guardrails``:

* the CrossGuard policies (``mesh_components.analysis.guardrails``) take their names, scopes and
  descriptions from :data:`GUARDRAILS`, and the regular expressions they share with the CEL below
  from :data:`PATTERNS`; ``guardrails`` refuses to import when its validator tables and
  :data:`GUARDRAILS` disagree, so a rule cannot exist on one side only;
* the per-object part of every resource rule is :attr:`Guardrail.checks`: CEL expressions, true when
  the object complies, rendered as a Kubernetes ``ValidatingAdmissionPolicy`` and its
  ``ValidatingAdmissionPolicyBinding`` (admissionregistration.k8s.io/v1, GA in Kubernetes 1.30:
  https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/, API types
  k8s.io/api admissionregistration/v1 types.go ``ValidatingAdmissionPolicySpec``,
  ``ValidatingAdmissionPolicyBindingSpec``) by :func:`admission_objects`, or as an OPA Gatekeeper
  ``ConstraintTemplate`` (engine ``K8sNativeValidation``, the same CEL) and its constraint by
  :func:`gatekeeper_objects` (https://open-policy-agent.github.io/gatekeeper/website/docs/validating-admission-policy/,
  open-policy-agent/gatekeeper ``website/docs/validating-admission-policy.md``).

What stays CrossGuard-only, and why (:attr:`Guardrail.crossguard_only`): the stack rules (they
compare several objects; an admission policy sees one object per request), the rules on Helm
release values (a release is not an object the API server admits: its rendered objects are) and
the CA limits (a Pulumi dynamic resource, not a Kubernetes object).

The CEL uses only what both cel-go (the API server, Gatekeeper) and cel-rust (the tests'
``common-expression-language``) implement alike: ``has()``, ``all()``, ``exists()``, ``exists_one()``,
``in``, ``size()``, ``startsWith``, ``endsWith``, ``contains``, ``matches`` (RE2 / Rust regex,
ASCII-only patterns, no ``\\d \\w \\s``), and it guards every field with ``has()`` so that no
element of an ``all()``/``exists()`` fails (cel-go and cel-rust differ there). The object is the
unstructured map the API server hands to CEL (k8s.io/apiserver pkg/admission/plugin/cel
``objectToResolveVal``: dynamic maps, no schema escaping), so ``object.metadata.namespace`` and
``rule.from`` are plain map keys. ``object.metadata.namespace`` is set on a namespaced object
before admission (k8s.io/apiserver pkg/endpoints/handlers/create.go and patch.go
``rest.EnsureObjectNamespaceMatchesRequestNamespace``), so the rules never read ``request`` and
run unchanged in Gatekeeper's audit, which has no request.

Configuration the CrossGuard policies read from the pack config comes from the stack spec
(``mesh.guardrails``, :class:`AdmissionConfig`) and is baked into the CEL as literals (no
``paramKind``, so bindings have no ``paramRef``): ``permissiveNamespaces`` (``mtls-strict``) as a
list literal, and the exceptions the cluster's render holds (:meth:`AdmissionConfig.with_exceptions`:
the open services annotated ``mesh-components.io/unrestricted`` and the ServiceEntries annotated
``mesh-components.io/allow-wildcard``) as lists of ``<namespace>/<name>``: CrossGuard, which checks
the render itself, reads the annotations; in the cluster an annotation counts only on those objects,
since anyone who may edit the object may write it.

Pure: standard library only (the policy pack imports this module through ``guardrails``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

__all__ = ["Check", "Guardrail", "GUARDRAILS", "PATTERNS", "ADMISSION_RULES", "ACTIONS", "AdmissionConfig",
           "admission_objects", "gatekeeper_objects", "cel_string", "POLICY_PREFIX"]

ALLOW_WILDCARD_ANNOTATION = "mesh-components.io/allow-wildcard"
LINKERD_DEFAULT_POLICY = "config.linkerd.io/default-inbound-policy"
UNRESTRICTED_ANNOTATION = "mesh-components.io/unrestricted"
EGRESS_FENCE = "mesh-egress-allow-list"
WEAK_MTLS = ("PERMISSIVE", "DISABLE")
MULTICLUSTER_GATEWAY_AUTHENTICATION = ("linkerd-multicluster", "any-meshed")
"""``(namespace, name)`` of the ``MeshTLSAuthentication`` the linkerd-multicluster chart installs for
its gateway, ``identities: ['*']`` (linkerd2 edge-26.8.3
multicluster/charts/linkerd-multicluster/templates/gateway-policy.yaml:45-59; its AuthorizationPolicy
``linkerd-gateway`` requires it together with the ``source-cluster`` NetworkAuthentication): the one
identity wildcard ``no-allow-all`` accepts, in the namespace the mesh installs that chart in
(``mesh_components.core.multicluster.LINKERD_MC_NAMESPACE``). Helm creates it in the cluster, where
an admission policy sees it; without the exception a linked cluster's ``pulumi up`` would fail."""

PATTERNS: dict[str, str] = {
    # Istio principal wildcards confined to one namespace: <td>/ns/<ns>/sa/* and <td>/ns/<ns>/*
    # (istio 1.30.3 pilot/pkg/security/authz/matcher/string.go:100-116: '*' is a prefix/suffix match)
    "one-namespace-principal": r"[^/*]+/ns/[^/*]+/(sa/)?\*",
    # a request principal wildcard over one issuer: <issuer>/*
    "issuer-wildcard": r"[^/*]*/\*",
    # an address block of prefix length zero: /0 (/00 ...), or the IPv4 netmask / hostmask spellings
    # of /0 that Python's ipaddress accepts (0.0.0.0, 255.255.255.255); whatever the address before
    # it. Istio refuses an unparsable block (istio 1.30.3 pkg/config/security/security.go ValidateIPs,
    # netip.ParsePrefix), the API server an unparsable NetworkPolicy cidr.
    "zero-prefix": r"(?s).*/(0+|0\.0\.0\.0|255\.255\.255\.255)",
    # a Linkerd identity wildcard over one namespace: *.<ns>.serviceaccount.identity.linkerd.<td>
    # (linkerd2 edge-26.8.3 policy-controller/core/src/identity_match.rs:18-30)
    "one-namespace-identity": r"\*\.[^.*]+\.serviceaccount\.identity\.linkerd\.[^*]+",
    # the version Service name <service>-<version> after its '<service>-' prefix: a DNS label
    "version-label": r"[a-z0-9]([-a-z0-9]*[a-z0-9])?",
    # the annotation value "true" in any case (Python's str.lower() == "true"; no character outside
    # ASCII lower-cases or case-folds to t, r, u or e)
    "true": r"(?i)true",
    # a Linkerd default inbound policy that admits clients without mTLS: the *-unauthenticated
    # ones, and audit, which lets every connection through (only logging it): linkerd2 edge-26.8.3
    # policy-controller/k8s/index/src/defaults.rs:25-26,53 (DefaultPolicy::from_str is exact and
    # case-sensitive; any other value is an error and the policy controller falls back to the
    # cluster default). Shared by the Namespace and Pod annotation and the Helm value.
    "open-default-policy": r"(?s).*-unauthenticated|audit",
    "http": r"(?i)http",
    # an Istio Gateway server protocol served as plaintext HTTP: Parse is case-insensitive and IsHTTP
    # holds for HTTP, HTTP2, HTTP_PROXY, GRPC and GRPC-Web (istio 1.30.3
    # pkg/config/protocol/instance.go:68-94,117-120)
    "istio-http": r"(?i)(http|http2|http_proxy|grpc|grpc-web)",
    # a Gateway API listener that terminates or passes TLS: protocol values are case-sensitive
    # (gateway-api apis/v1/gateway_types.go ProtocolType: "HTTPS", "TLS"; an implementation serves
    # "https" as an unknown protocol, not as HTTPS), so only these spellings count as TLS; "http" stays
    # case-insensitive above: refusing a lower-case plain listener is the safe side
    "https-or-tls": r"HTTPS|TLS",
}
"""Regular expressions shared by the CrossGuard validators (``re.fullmatch``) and the CEL
(``matches('^(?:' + pattern + ')$')``: RE2 and Rust regex read them alike; ``$`` there is the end
of the text, as with ``fullmatch``)."""


def cel_string(s: str) -> str:
    """``s`` as a CEL single-quoted string literal (backslash and quote escaped)."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _full(value: str, pattern: str) -> str:
    """CEL: ``value`` matches :data:`PATTERNS` ``[pattern]`` as a whole."""
    return f"{value}.matches({cel_string('^(?:' + PATTERNS[pattern] + ')$')})"


def _list(values) -> str:
    return "[" + ", ".join(cel_string(v) for v in values) + "]"


def _annotation(key: str) -> str:
    return f"(has(object.metadata.annotations) && {cel_string(key)} in object.metadata.annotations)"


def _ann(key: str) -> str:
    return f"object.metadata.annotations[{cel_string(key)}]"


@dataclass(frozen=True)
class Check:
    """One kind's part of a rule: ``expression`` (CEL, true when the object complies) on objects of
    API group ``group`` (``""``: core), kind ``kind``, resource ``resource`` (plural), every version;
    ``message``: what the API server returns when it is false. ``params``: the
    :class:`AdmissionConfig` fields the expression reads (placeholders ``{name}``)."""

    group: str
    kind: str
    resource: str
    expression: str
    message: str
    params: tuple[str, ...] = ()

    def cel(self, config: "AdmissionConfig") -> str:
        """The expression with its parameters baked in as CEL literals."""
        values = {"permissiveNamespaces": _list(config.permissive_namespaces),
                  "openServices": _list(config.open_services),
                  "wildcardServiceEntries": _list(config.wildcard_service_entries)}
        out = self.expression
        for p in self.params:  # not str.format: the expressions hold CEL map literals ({...})
            out = out.replace("{" + p + "}", values[p])
        return out

    def guarded(self, config: "AdmissionConfig") -> str:
        """The expression for a policy matching several kinds: true for an object of another kind."""
        api = "object.apiVersion.startsWith(" + cel_string(self.group + "/") + ")" if self.group \
            else "!object.apiVersion.contains('/')"
        return f"!({api} && object.kind == {cel_string(self.kind)}) || ({self.cel(config)})"


@dataclass(frozen=True)
class Guardrail:
    """A mesh-guardrails policy: ``name`` (the CrossGuard policy name), ``scope`` (``resource``:
    one object at a time; ``stack``: the whole stack), ``description`` (CrossGuard's), ``checks``
    (its per-object part enforced in-cluster; empty: none) and ``crossguard_only`` (what of it only
    CrossGuard checks, and why)."""

    name: str
    scope: str
    description: str
    checks: tuple[Check, ...] = ()
    crossguard_only: str = ""
    config: tuple[str, ...] = field(default=())


# --- the per-object CEL --------------------------------------------------------------------------

_PA_MODE = ("(!has(object.spec) || !has(object.spec.mtls) || !has(object.spec.mtls.mode) || "
            f"!(object.spec.mtls.mode in {_list(WEAK_MTLS)}))")
_PA_PORTS = ("(!has(object.spec) || !has(object.spec.portLevelMtls) || object.spec.portLevelMtls.all(p, "
             "!has(object.spec.portLevelMtls[p].mode) || "
             f"!(object.spec.portLevelMtls[p].mode in {_list(WEAK_MTLS)})))")
PEER_AUTHENTICATION = Check(
    "security.istio.io", "PeerAuthentication", "peerauthentications",
    "(has(object.metadata.namespace) && object.metadata.namespace in {permissiveNamespaces}) || "
    f"({_PA_MODE} && {_PA_PORTS})",
    "mTLS must be STRICT: this PeerAuthentication sets mtls.mode or a portLevelMtls mode to PERMISSIVE or DISABLE "
    "(mesh-guardrails mtls-strict; exempt namespaces are mesh.guardrails.permissiveNamespaces)",
    params=("permissiveNamespaces",))
_OPEN_DEFAULT = f"!{_annotation(LINKERD_DEFAULT_POLICY)} || !{_full(_ann(LINKERD_DEFAULT_POLICY), 'open-default-policy')}"
NAMESPACE_DEFAULT_POLICY = Check(
    "", "Namespace", "namespaces", _OPEN_DEFAULT,
    f"{LINKERD_DEFAULT_POLICY} must not be *-unauthenticated or audit: every port no Server selects would accept "
    "clients without mTLS; use deny, all-authenticated or cluster-authenticated (mesh-guardrails mtls-strict)")
POD_DEFAULT_POLICY = Check(
    "", "Pod", "pods", _OPEN_DEFAULT,
    f"{LINKERD_DEFAULT_POLICY} on a pod must not be *-unauthenticated or audit: every port of it no Server selects "
    "would accept clients without mTLS (mesh-guardrails mtls-strict)")
"""The same annotation on a Pod overrides its namespace's (linkerd2 edge-26.8.3
policy-controller/k8s/index/src/inbound/workload.rs:164,186-193 reads it from the pod's annotations).
Only Pods are matched, not the workloads whose pod templates carry it: a Deployment (ReplicaSet,
StatefulSet, DaemonSet, Job) with such a template is admitted, and its controller's pod creations
are refused (visible as FailedCreate events on the ReplicaSet). Nothing the mesh renders, and no
pod template of the pinned charts, sets the annotation on a pod."""


def _wide_values(src: str, field_: str, wide: str) -> str:
    """CEL: field ``field_`` of the Istio source ``src`` is absent or empty, or holds a value ``v``
    for which ``wide`` holds (so it does not narrow the source)."""
    f = f"{src}.{field_}"
    return f"(!has({f}) || size({f}) == 0 || {f}.exists(v, {wide}))"


_ZERO = _full("v", "zero-prefix")
_SOURCE_WIDE = " && ".join([
    _wide_values("e.source", "principals", f"v.contains('*') && !{_full('v', 'one-namespace-principal')}"),
    _wide_values("e.source", "namespaces", "v.contains('*')"),
    _wide_values("e.source", "serviceAccounts", "v.contains('*')"),
    _wide_values("e.source", "requestPrincipals", f"v == '*' || {_full('v', 'issuer-wildcard')}"),
    _wide_values("e.source", "ipBlocks", _ZERO),
    _wide_values("e.source", "remoteIpBlocks", _ZERO),
])
_EVERY_SOURCE = (f"(!has(r.from) || size(r.from) == 0 || r.from.exists(e, !has(e.source) || size(e.source) == 0 "
                 f"|| ({_SOURCE_WIDE})))")
_REFS = "object.spec.targetRefs"
_BASE = f"{_REFS}[0].name"
_OPEN_SERVICE = " && ".join([
    _annotation(UNRESTRICTED_ANNOTATION),
    # only the open services this cluster's render holds (AdmissionConfig.open_services): the
    # annotation alone is written by anyone who may edit the object
    "(object.metadata.namespace + '/' + object.metadata.name) in {openServices}",
    "object.spec.all(k, k in ['targetRefs', 'action', 'rules'])",
    f"has({_REFS}) && size({_REFS}) > 0",
    f"{_REFS}.all(t, has(t.kind) && t.kind == 'Service' && (!has(t.group) || t.group == '') && has(t.name) "
    "&& t.all(k, k in ['group', 'kind', 'name']))",
    f"object.metadata.name == {_BASE} + '-unrestricted'",
    f"{_REFS}.all(t, {_REFS}.exists_one(x, x.name == t.name))",
    f"{_REFS}.all(t, t.name == {_BASE} || (t.name.startsWith({_BASE} + '-') && "
    f"t.name.matches('^' + {_BASE} + {cel_string('-(?:' + PATTERNS['version-label'] + ')$')})))",
    "has(object.spec.rules) && object.spec.rules == [{'from': [{'source': {'principals': ['*']}}]}]",
])
"""The explicit open service (``guardrails._explicit_open_service``). ``<base>`` goes into the
pattern unescaped: the policy's name is ``<base>-unrestricted``, a DNS subdomain the API server
checks, so ``<base>`` holds only ``[a-z0-9.-]``, and ``startsWith`` pins the ``.``s the pattern would
read as any character."""
ISTIO_AUTHORIZATION = Check(
    "security.istio.io", "AuthorizationPolicy", "authorizationpolicies",
    "!has(object.spec) || (has(object.spec.action) && object.spec.action != '' && object.spec.action != 'ALLOW') "
    f"|| ({_OPEN_SERVICE}) || !has(object.spec.rules) || object.spec.rules.all(r, !{_EVERY_SOURCE})",
    "this ALLOW AuthorizationPolicy has a rule that admits every source (no 'from', an empty source, or only "
    "wildcards beyond one namespace): name the principals or namespaces it admits (mesh-guardrails no-allow-all)",
    params=("openServices",))
LINKERD_AUTHORIZATION = Check(
    "policy.linkerd.io", "AuthorizationPolicy", "authorizationpolicies",
    "has(object.spec) && has(object.spec.requiredAuthenticationRefs) && "
    "size(object.spec.requiredAuthenticationRefs) > 0",
    "this AuthorizationPolicy requires no authentication, so it admits every client: reference a "
    "MeshTLSAuthentication (mesh-guardrails no-allow-all)")
LINKERD_MESH_TLS = Check(
    "policy.linkerd.io", "MeshTLSAuthentication", "meshtlsauthentications",
    f"(object.metadata.name == {cel_string(MULTICLUSTER_GATEWAY_AUTHENTICATION[1])} && "
    f"has(object.metadata.namespace) && object.metadata.namespace == {cel_string(MULTICLUSTER_GATEWAY_AUTHENTICATION[0])} "
    "&& has(object.spec) && has(object.spec.identities) && object.spec.identities == ['*']) || "
    "!has(object.spec) || !has(object.spec.identities) || !object.spec.identities.exists(v, v == '*' || "
    f"(v.startsWith('*.') && !{_full('v', 'one-namespace-identity')}))",
    "an identity wildcard of this MeshTLSAuthentication matches workloads beyond one namespace: name the "
    "identities it admits, or *.<namespace>.serviceaccount.identity.linkerd.<trust domain> (mesh-guardrails no-allow-all)")
_SA_CLIENT = "object.spec.client"
LINKERD_SERVER_AUTHORIZATION = Check(
    "policy.linkerd.io", "ServerAuthorization", "serverauthorizations",
    f"!has(object.spec) || !has({_SA_CLIENT}) || (!(has({_SA_CLIENT}.unauthenticated) && "
    f"{_SA_CLIENT}.unauthenticated == true) && (!has({_SA_CLIENT}.meshTLS) || "
    f"(!(has({_SA_CLIENT}.meshTLS.unauthenticatedTLS) && {_SA_CLIENT}.meshTLS.unauthenticatedTLS == true) && "
    f"(!has({_SA_CLIENT}.meshTLS.identities) || !{_SA_CLIENT}.meshTLS.identities.exists(v, v == '*' || "
    f"(v.startsWith('*.') && !{_full('v', 'one-namespace-identity')}))))))",
    "this ServerAuthorization admits clients without mTLS (client.unauthenticated or meshTLS.unauthenticatedTLS) "
    "or meshed workloads beyond one namespace (an identity wildcard): name the identities or service accounts it "
    "admits (mesh-guardrails no-allow-all)")
"""policy.linkerd.io/v1beta1 ``ServerAuthorization`` (still served by linkerd-crds edge-26.8.3;
/work/shared/crds/linkerd/serverauthorizations.policy.linkerd.io.yaml): ``client.unauthenticated``
admits every client, ``client.meshTLS.unauthenticatedTLS`` every TLS client without identity, and
``client.meshTLS.identities`` are identity matches as a MeshTLSAuthentication's (linkerd2 edge-26.8.3
policy-controller/k8s/index/src/inbound/server_authorization.rs:78-100,
policy-controller/core/src/identity_match.rs:18-30)."""
LINKERD_SERVER = Check(
    "policy.linkerd.io", "Server", "servers",
    "!has(object.spec) || !has(object.spec.accessPolicy) || object.spec.accessPolicy == 'deny'",
    "this Server sets an accessPolicy other than deny, which admits clients without any AuthorizationPolicy: "
    "leave it deny and authorize callers explicitly (mesh-guardrails no-allow-all)")
SERVICE_ENTRY = Check(
    "networking.istio.io", "ServiceEntry", "serviceentries",
    f"({_annotation(ALLOW_WILDCARD_ANNOTATION)} && {_full(_ann(ALLOW_WILDCARD_ANNOTATION), 'true')} && "
    "(object.metadata.namespace + '/' + object.metadata.name) in {wildcardServiceEntries}) || "
    "!has(object.spec) || !has(object.spec.hosts) || !object.spec.hosts.exists(h, h.contains('*'))",
    f"this ServiceEntry opens egress to a wildcard host: list exact hosts, or annotate {ALLOW_WILDCARD_ANNOTATION}: "
    "\"true\" to make the exception explicit; in the cluster only the exceptions the stack renders are admitted "
    "(mesh.egress, mesh-guardrails no-wildcard-egress)",
    params=("wildcardServiceEntries",))
EGRESS_FENCE_POLICY = Check(
    "networking.k8s.io", "NetworkPolicy", "networkpolicies",
    f"object.metadata.name != {cel_string(EGRESS_FENCE)} || !has(object.spec) || !has(object.spec.egress) || "
    "!object.spec.egress.exists(r, !has(r.to) || size(r.to) == 0 || r.to.exists(p, has(p.ipBlock) && "
    f"has(p.ipBlock.cidr) && {_full('p.ipBlock.cidr', 'zero-prefix')}))",
    f"the egress fence {EGRESS_FENCE} must not let pods reach every address (an egress rule without 'to', or to "
    "0.0.0.0/0 or ::/0): name the addresses (mesh-guardrails no-wildcard-egress)")
GATEWAY_API_LISTENERS = Check(
    "gateway.networking.k8s.io", "Gateway", "gateways",
    "!has(object.spec) || !has(object.spec.listeners) || "
    f"!object.spec.listeners.exists(l, has(l.protocol) && {_full('l.protocol', 'http')}) || "
    f"object.spec.listeners.exists(l, has(l.protocol) && {_full('l.protocol', 'https-or-tls')})",
    "this Gateway serves plain HTTP without an HTTPS or TLS listener: add one and let HTTP only redirect to it "
    "(mesh-guardrails ingress-tls)")
ISTIO_GATEWAY_SERVERS = Check(
    "networking.istio.io", "Gateway", "gateways",
    "!has(object.spec) || !has(object.spec.servers) || object.spec.servers.all(s, "
    f"!(has(s.port) && has(s.port.protocol) && {_full('s.port.protocol', 'istio-http')}) || "
    "(has(s.tls) && has(s.tls.httpsRedirect) && s.tls.httpsRedirect == true))",
    "a server of this Gateway serves plain HTTP: set tls.httpsRedirect: true (mesh-guardrails ingress-tls)")

_STACK = "all of it: a stack rule compares several objects, an admission policy sees one object per request"
_RELEASES = "Helm release values (a release is not an object the API server admits; its rendered objects are)"

GUARDRAILS: dict[str, Guardrail] = {g.name: g for g in [
    Guardrail("mtls-strict", "resource",
              "Mesh traffic must use mutual TLS: no PERMISSIVE or DISABLE PeerAuthentication, no unauthenticated "
              "Linkerd default policy.",
              (PEER_AUTHENTICATION, NAMESPACE_DEFAULT_POLICY, POD_DEFAULT_POLICY),
              f"the linkerd-control-plane proxy.defaultInboundPolicy: {_RELEASES}", ("permissiveNamespaces",)),
    Guardrail("no-allow-all", "resource",
              "No access rule may admit every caller or callers across namespaces (Istio ALLOW rule without "
              "sources or with wildcards, Linkerd policy without authentication, OSM permissive mode).",
              (ISTIO_AUTHORIZATION, LINKERD_AUTHORIZATION, LINKERD_MESH_TLS, LINKERD_SERVER,
               LINKERD_SERVER_AUTHORIZATION),
              f"osm.enablePermissiveTrafficPolicy: {_RELEASES}"),
    Guardrail("no-wildcard-egress", "resource",
              "ServiceEntry wildcard hosts need the explicit exception annotation mesh-components.io/allow-wildcard; "
              "no egress fence or OSM release lets everything out.",
              (SERVICE_ENTRY, EGRESS_FENCE_POLICY), f"osm.enableEgress: {_RELEASES}"),
    Guardrail("ca-limits", "resource",
              "The mesh CA: intermediate shorter-lived than root, lifetimes within limits, RSA >= 2048 bits.",
              (), "all of it: the CA is a Pulumi dynamic resource, not a Kubernetes object"),
    Guardrail("ingress-tls", "resource",
              "Ingress serves TLS: an HTTP listener only beside an HTTPS/TLS one; Istio HTTP servers redirect.",
              (GATEWAY_API_LISTENERS, ISTIO_GATEWAY_SERVERS)),
    Guardrail("mtls-mesh-wide-strict", "stack",
              "Each Istio control plane has a mesh-wide STRICT PeerAuthentication in its root namespace.",
              crossguard_only=_STACK),
    Guardrail("no-allow-all-linkerd-network", "stack",
              "No Linkerd policy may admit unauthenticated clients from 0.0.0.0/0 or ::/0.", crossguard_only=_STACK),
    Guardrail("no-allow-all-open-service", "stack",
              "An explicit open service opens only its own Service and its version Services.",
              crossguard_only=_STACK),
    Guardrail("no-allow-all-linkerd-default", "stack",
              "No undeclared all-/cluster-authenticated Linkerd default in a namespace with access policy.",
              crossguard_only=_STACK),
    Guardrail("single-trust-domain", "stack", "Every cluster and the CA share one trust domain.",
              crossguard_only=_STACK),
    Guardrail("ingress-http-redirect-only", "stack", "Routes on plain-HTTP listeners only redirect to https.",
              crossguard_only=_STACK),
]}
"""Every mesh-guardrails policy, in the order the pack serves them (resource policies first)."""

ADMISSION_RULES: tuple[str, ...] = tuple(n for n, g in GUARDRAILS.items() if g.checks)
"""The policies rendered as admission policies (those with per-object checks)."""

ACTIONS = ("off", "warn", "audit", "deny")
"""``mesh.guardrails.admission`` and ``policies`` values."""
_VALIDATION_ACTIONS = {"warn": ["Warn"], "audit": ["Audit"], "deny": ["Deny"]}
"""-> the binding's ``validationActions`` (Deny and Warn never together: the API server refuses it)."""
_GATEKEEPER_ACTIONS = {"warn": "warn", "audit": "dryrun", "deny": "deny"}
"""-> a constraint's ``enforcementAction`` (Gatekeeper: deny, warn, dryrun)."""

POLICY_PREFIX = "mesh-guardrails-"


@dataclass(frozen=True)
class AdmissionConfig:
    """What :func:`admission_objects` renders: ``actions`` (policy name of :data:`ADMISSION_RULES`
    -> ``warn``/``audit``/``deny``; a policy not listed is not rendered), ``permissive_namespaces``
    (``mtls-strict``'s exempt namespaces), ``gatekeeper`` (also Gatekeeper templates), ``labels``
    (every object's)."""

    actions: Mapping[str, str]
    permissive_namespaces: tuple[str, ...] = ()
    gatekeeper: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    open_services: tuple[str, ...] = ()
    """``<namespace>/<name>`` of the explicit open services (AuthorizationPolicies annotated
    ``mesh-components.io/unrestricted``) the cluster's render holds: in the cluster, the annotation is
    honoured on these only, since anyone who may edit an AuthorizationPolicy may write it."""
    wildcard_service_entries: tuple[str, ...] = ()
    """``<namespace>/<name>`` of the ServiceEntries annotated ``mesh-components.io/allow-wildcard``
    the cluster's render holds (the spec's own exceptions); likewise the only ones admitted."""

    def with_exceptions(self, objects: list[dict[str, Any]]) -> "AdmissionConfig":
        """This config with :attr:`open_services` and :attr:`wildcard_service_entries` taken from a
        cluster's rendered ``objects`` (sorted, so the same stack gives the same bytes)."""
        def keys(kind: str, group: str, annotation: str) -> tuple[str, ...]:
            return tuple(sorted({f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" for o in objects
                                 if o.get("kind") == kind and str(o.get("apiVersion", "")).startswith(group + "/")
                                 and annotation in ((o.get("metadata") or {}).get("annotations") or {})}))
        return replace(self, open_services=keys("AuthorizationPolicy", "security.istio.io", UNRESTRICTED_ANNOTATION),
                       wildcard_service_entries=keys("ServiceEntry", "networking.istio.io", ALLOW_WILDCARD_ANNOTATION))

    @classmethod
    def from_spec(cls, guardrails: Any, labels: Mapping[str, str]) -> "AdmissionConfig | None":
        """From ``mesh.guardrails`` (``mesh_components.spec.Guardrails`` or None): None when no policy is on."""
        if guardrails is None:
            return None
        actions = {n: guardrails.policies.get(n, guardrails.admission) for n in ADMISSION_RULES}
        actions = {n: a for n, a in actions.items() if a != "off"}
        if not actions:
            return None
        return cls(actions, tuple(sorted(set(guardrails.permissive_namespaces))), guardrails.gatekeeper, dict(labels))


def _validations(g: Guardrail, config: AdmissionConfig) -> list[dict[str, str]]:
    return [{"expression": c.guarded(config), "message": c.message, "reason": "Forbidden"} for c in g.checks]


def _resource_rules(g: Guardrail) -> list[dict[str, Any]]:
    by_group: dict[str, set[str]] = {}
    for c in g.checks:
        by_group.setdefault(c.group, set()).add(c.resource)
    return [{"apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
             "resources": sorted(res)} for group, res in sorted(by_group.items())]


def admission_objects(config: AdmissionConfig | None) -> list[dict[str, Any]]:
    """``[ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, ...]`` (cluster-scoped,
    named ``mesh-guardrails-<policy>``) for every policy ``config.actions`` turns on, in
    :data:`GUARDRAILS` order, then the Gatekeeper objects when ``config.gatekeeper``; ``[]`` for None.

    Each policy matches CREATE and UPDATE of its kinds in every version (``apiVersions: ['*']``, as
    CrossGuard reads ``group/kind`` whatever the version), ``failurePolicy: Fail`` (a CEL error, e.g.
    a field of the wrong type, refuses the object, as CrossGuard reports it as a violation), one
    validation per kind, each true for objects of the policy's other kinds. The binding names the
    policy, ``validationActions`` from the action (``deny``: Deny, ``warn``: Warn, ``audit``: Audit)
    and no ``paramRef`` (the configuration is baked into the CEL)."""
    if config is None:
        return []
    out: list[dict[str, Any]] = []
    for name, g in GUARDRAILS.items():
        if name not in config.actions:
            continue
        meta = {"name": POLICY_PREFIX + name, "labels": dict(config.labels)}
        out.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                    "metadata": {**meta, "annotations": {"mesh-components.io/guardrail": name}},
                    "spec": {"failurePolicy": "Fail",
                             "matchConstraints": {"resourceRules": _resource_rules(g)},
                             "validations": _validations(g, config)}})
        out.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                    "metadata": dict(meta, labels=dict(config.labels)),
                    "spec": {"policyName": POLICY_PREFIX + name,
                             "validationActions": list(_VALIDATION_ACTIONS[config.actions[name]])}})
    return out + (gatekeeper_objects(config) if config.gatekeeper else [])


def gatekeeper_kind(name: str) -> str:
    """``mtls-strict`` -> ``MeshGuardrailsMtlsStrict`` (a template's name is its kind lower-cased)."""
    return "MeshGuardrails" + "".join(p.capitalize() for p in name.split("-"))


def gatekeeper_objects(config: AdmissionConfig) -> list[dict[str, Any]]:
    """For every policy ``config.actions`` turns on: a Gatekeeper ``ConstraintTemplate``
    (templates.gatekeeper.sh/v1, target ``admission.k8s.gatekeeper.sh``, engine
    ``K8sNativeValidation`` with the same validations as the admission policy, each also true when
    there is no object, as on a DELETE review) and its constraint (constraints.gatekeeper.sh/v1beta1,
    kind :func:`gatekeeper_kind`, ``match.kinds`` the policy's kinds, ``enforcementAction`` deny,
    warn or dryrun for audit). Gatekeeper >= 3.16 evaluates K8sNativeValidation templates (enabled
    by default from 3.17); Gatekeeper creates the constraint's kind from the template
    (open-policy-agent/gatekeeper website/docs/validating-admission-policy.md, website/docs/api.md).
    The source holds only what Gatekeeper's ``Source`` reads (pkg/drivers/k8scel/schema/schema.go:
    ``validations`` of expression + message, ``failurePolicy``): no ``reason``; and
    ``generateVAP: false`` (schema.go:59-60@v3.20.0): Gatekeeper >= 3.20 otherwise makes its own
    ValidatingAdmissionPolicy (and, per constraint, a binding) from every K8sNativeValidation
    template (pkg/controller/constraint/constraint_controller.go:79-80, ``ShouldGenerateVAP``
    446-455@v3.20.0), duplicating :func:`admission_objects`' policies under other names."""
    out: list[dict[str, Any]] = []
    for name, g in GUARDRAILS.items():
        if name not in config.actions:
            continue
        kind = gatekeeper_kind(name)
        validations = [{**v, "expression": f"object == null || ({v['expression']})"}
                       for v in _validations(g, config)]
        for v in validations:
            v.pop("reason")
        out.append({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
                    "metadata": {"name": kind.lower(), "labels": dict(config.labels),
                                 "annotations": {"mesh-components.io/guardrail": name,
                                                 "description": g.description}},
                    "spec": {"crd": {"spec": {"names": {"kind": kind}}},
                             "targets": [{"target": "admission.k8s.gatekeeper.sh",
                                          "code": [{"engine": "K8sNativeValidation",
                                                    "source": {"failurePolicy": "Fail", "generateVAP": False,
                                                               "validations": validations}}]}]}})
        groups: dict[str, set[str]] = {}
        for c in g.checks:
            groups.setdefault(c.group, set()).add(c.kind)
        out.append({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
                    "metadata": {"name": POLICY_PREFIX + name, "labels": dict(config.labels)},
                    "spec": {"enforcementAction": _GATEKEEPER_ACTIONS[config.actions[name]],
                             "match": {"kinds": [{"apiGroups": [grp], "kinds": sorted(kinds)}
                                                 for grp, kinds in sorted(groups.items())]}}})
    return out
