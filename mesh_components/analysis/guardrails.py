"""Deploy-time guardrails for the service mesh: pure validators, and the CrossGuard policies that wrap them.

The rules live here, in the library, so that both their users run the same code: the
``policies/mesh-guardrails`` policy pack (its ``mesh_guardrails.py`` re-exports this module and
its ``__main__.py`` serves :func:`build_policies`) and ``python -m mesh_components validate``,
which runs them offline on the rendered stack (:func:`check_resources`, with the enforcement
levels and properties of a pack config file read by :func:`parse_policy_pack_config`).
This module imports nothing outside the standard library but ``mesh_components.core.admission``
(standard library only too), so the pack needs only ``pulumi-policy``.

The rule definitions - names, scopes, descriptions, the regular expressions both sides use, and the
per-object part of each resource rule as CEL - are ``mesh_components.core.admission.GUARDRAILS``:
``mesh.guardrails`` renders them as ``ValidatingAdmissionPolicy`` objects (and optionally Gatekeeper
templates) so that a ``kubectl`` change meets the same rules in the cluster; this module refuses to
import when its validator tables and those definitions disagree (:func:`_check_one_source`), and
tests/test_admission_guardrails.py evaluates the CEL on the very objects tests/test_guardrails.py
checks here. Stack rules, Helm release values and the CA limits are CrossGuard-only.

Every validator is a plain function; none imports ``pulumi_policy`` at module level, so tests call
them directly. Resource validators take ``(resource_type, props, config)`` and return a list of
violation messages (empty: compliant); stack validators take ``(resources, config)`` where
``resources`` is a list of ``(resource_type, props)`` pairs (or objects with ``resource_type`` and
``props``). ``config`` is the policy's configuration (``None``: :data:`DEFAULTS`).
:func:`build_policies` wraps them as ``pulumi_policy`` policies for ``__main__.py``.

Resource types are Pulumi type tokens: Kubernetes objects are ``kubernetes:<group>/<version>:<Kind>``
(``core`` for the core group; custom resources registered with ``apiextensions.CustomResource`` get
the same form), Helm releases ``kubernetes:helm.sh/v3:Release``, the mesh CA dynamic resource
``pulumi-python:dynamic:Resource`` (recognised by its ``key_algorithm`` input).
Sources: https://www.pulumi.com/docs/iac/using-pulumi/crossguard/ (policy packs),
https://www.pulumi.com/registry/packages/kubernetes/api-docs/apiextensions/customresource/ (type tokens).

The rules, precisely:

``mtls-strict``
    An Istio ``PeerAuthentication`` must not set ``mtls.mode`` or any ``portLevelMtls[*].mode`` to
    PERMISSIVE or DISABLE (UNSET and absent inherit, and are allowed), except in namespaces listed
    in ``permissiveNamespaces``. A ``linkerd-control-plane`` release must not set
    ``proxy.defaultInboundPolicy``, nor a Namespace (or NamespacePatch) or Pod the annotation
    ``config.linkerd.io/default-inbound-policy``, to an ``*-unauthenticated`` policy or ``audit``
    (which admits every connection: linkerd2 edge-26.8.3 policy-controller/k8s/index/src/defaults.rs:25-26,53).
    https://istio.io/latest/docs/reference/config/security/peer_authentication/
``mtls-mesh-wide-strict`` (stack)
    For every istiod release there is a mesh-wide PeerAuthentication: in the release namespace
    (Istio's root namespace, or ``meshConfig.rootNamespace``), without ``selector``, mode STRICT.
``no-allow-all``
    An Istio ``AuthorizationPolicy`` with action ALLOW (the default) must not have a rule that
    matches every source: a rule without ``from``, with an empty ``from``, or with a ``from`` entry
    whose ``source`` is empty (``rules: [{}]`` is the textbook allow-all) or restricts only by
    values that reach beyond one namespace: Istio reads ``*`` as a prefix/suffix/presence match
    (istio 1.30.3 pilot/pkg/security/authz/matcher/string.go:100-116), so a principal may hold ``*`` only
    as ``<td>/ns/<ns>/sa/*`` or ``<td>/ns/<ns>/*`` (``cluster.local/ns/book*``, ``*/sa/bookbuyer``, ``*`` fail), a
    namespace or service account never (``book*`` fails), and ``ipBlocks`` must not be
    of prefix length zero (``0.0.0.0/0``, ``::/0``; ``core.admission.PATTERNS`` ``zero-prefix``). Exempt is exactly the explicit open service ``mesh_components.meshes.istio_policy``
    renders in an ambient waypoint namespace for a declared service without access rules (the
    waypoint denies by default; a sidecar needs no policy for it): annotation
    ``mesh-components.io/unrestricted``, name ``<service>-unrestricted``, ``targetRefs`` exactly to
    the core Services ``<service>`` (first) and ``<service>-<version>`` (each once; the stack rule
    ``no-allow-all-open-service`` checks they are version Services the mesh renders), no
    ``selector``, and one rule whose only key is ``from``, a single source ``principals: ['*']``.
    Any other allow-all, annotated or not, fails. A Linkerd ``AuthorizationPolicy`` must require
    at least one authentication; a ``MeshTLSAuthentication`` identity may hold ``*`` only as
    ``*.<ns>.serviceaccount.identity.linkerd.<td>`` (one namespace; linkerd2 edge-26.8.3
    policy-controller/core/src/identity_match.rs:18-30 reads ``*`` and a ``*.`` prefix as suffix
    matches), except the linkerd-multicluster chart's gateway authentication
    ``linkerd-multicluster/any-meshed`` (``identities: ['*']`` exactly; ``core.admission``); a ``Server`` must not set an ``accessPolicy`` other than ``deny``;
    a v1beta1 ``ServerAuthorization`` must not set ``client.unauthenticated`` or
    ``client.meshTLS.unauthenticatedTLS``, nor hold a ``client.meshTLS.identities`` wildcard beyond one
    namespace (linkerd2 edge-26.8.3 policy-controller/k8s/index/src/inbound/server_authorization.rs:78-100). An ``osm``
    release must set ``osm.enablePermissiveTrafficPolicy: false`` (the chart default ``true``
    admits every client to every service: osm v1.2.4 pkg/catalog/inbound_traffic_policies.go:36-37,
    123-131).
    https://istio.io/latest/docs/reference/config/security/authorization-policy/
``no-allow-all-open-service`` (stack)
    Every extra ``targetRefs`` name of an explicit open service (``<service>-<version>``) is a
    Service of the stack in that namespace labelled ``app: <service>``, ``version: <version>``
    and ``app.kubernetes.io/managed-by: mesh-components`` (``mesh_components.core.render.version_services``):
    a version Service selects a subset of the service's pods, any other Service would open other pods.
``no-allow-all-linkerd-default`` (stack)
    A Namespace holding Linkerd policy (a ``Server`` or ``AuthorizationPolicy`` of the stack) must
    not default to ``all-authenticated`` or ``cluster-authenticated``
    (``config.linkerd.io/default-inbound-policy``: every meshed client of the cluster, or of
    every linked one, reaches every port no Server selects) unless that is the spec's declared
    ``namespaces[].defaultInboundPolicy``, which the mesh writes beside it as
    ``mesh-components.io/declared-default-inbound-policy``.
``no-allow-all-linkerd-network`` (stack)
    A Linkerd ``AuthorizationPolicy`` whose required authentications are only
    ``NetworkAuthentication``s, one of which admits ``0.0.0.0/0`` or ``::/0`` with no ``except``,
    admits unauthenticated traffic from anywhere - except the kubelet-probe route rendered for a
    Server with HTTPRoutes (marked ``mesh-components.io/kubelet-probes: "true"`` on the policy and
    its route, every match ``GET`` of an ``Exact`` path), the shape Linkerd's own default probe
    route has. https://linkerd.io/2/reference/authorization-policy/
``no-wildcard-egress``
    An Istio ``ServiceEntry`` host containing ``*`` needs the annotation
    ``mesh-components.io/allow-wildcard: "true"`` (the explicit exception). The ambient egress
    fence (NetworkPolicy ``mesh-egress-allow-list``) must not have an egress rule to every
    address (no ``to``, or an ``ipBlock`` of ``0.0.0.0/0`` / ``::/0``). An ``osm`` release must set
    ``osm.enableEgress: false`` (the chart default ``true`` lets every pod reach any address:
    osm v1.2.4 pkg/envoy/lds/listener.go:56-67, charts/osm/values.yaml:261).
``ca-limits``
    On the CA dynamic resource: ``intermediate_validity_days`` < ``root_validity_days``;
    ``root_validity_days`` <= ``maxRootValidityDays`` (3650); ``intermediate_validity_days`` <=
    ``maxIntermediateValidityDays`` (365); RSA keys >= ``minRsaBits`` (2048); ECDSA only on
    ``allowedEcdsaCurves`` (P256, P384).
``single-trust-domain`` (stack)
    Every CA resource (``trust_domain``), istiod release (``meshConfig.trustDomain``, else
    ``cluster.local``: the chart writes ``trustDomain: "cluster.local"`` into its own mesh config,
    which wins over a ``SHARED_MESH_CONFIG`` map, so a trust domain set only there never applies;
    istio 1.30.3 manifests/charts/istio-control/istio-discovery/templates/configmap.yaml:4,76-79,
    pilot/pkg/bootstrap/mesh.go:130-136) and
    linkerd-control-plane release (``identityTrustDomain``, default ``cluster.local``) names the same
    trust domain. https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/#MeshConfig
``ingress-tls``
    A Gateway API ``Gateway`` with a listener of protocol HTTP (any case) must also have an HTTPS or TLS
    listener, spelled so: Gateway API protocols are case-sensitive (gateway-api apis/v1/gateway_types.go
    ``ProtocolType``) and ``https`` is no TLS listener (Gateways without an HTTP listener - TLS passthrough, HBONE waypoints, TCP - are not
    plain-HTTP ingress and pass). An Istio ``Gateway`` server on a plaintext HTTP port (HTTP, HTTP2,
    HTTP_PROXY, GRPC, GRPC-Web in any case: istio 1.30.3 pkg/config/protocol/instance.go:68-94,117-120) must set
    ``tls.httpsRedirect: true``. https://gateway-api.sigs.k8s.io/guides/http-redirect-rewrite/
``ingress-http-redirect-only`` (stack)
    Every ``HTTPRoute`` attached to an HTTP listener (its parentRef names the Gateway, in the route's
    namespace unless given, and the listener by ``sectionName``, by ``port``, or neither = every
    listener) has only rules whose filters are a ``RequestRedirect`` with ``scheme: https`` and
    no ``backendRefs``.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
import functools
from collections.abc import Callable, Iterable, Mapping  # abc: isinstance checks are hot
from typing import Any, NamedTuple

from ..core.admission import (ALLOW_WILDCARD_ANNOTATION, EGRESS_FENCE, GUARDRAILS, LINKERD_DEFAULT_POLICY,
                              MULTICLUSTER_GATEWAY_AUTHENTICATION, PATTERNS, UNRESTRICTED_ANNOTATION, WEAK_MTLS)

__all__ = [
    "DEFAULTS", "CONFIG_SCHEMAS", "k8s_kind", "validate_mtls_strict", "validate_no_allow_all",
    "validate_no_wildcard_egress", "validate_ca_limits", "validate_ingress_tls",
    "validate_mesh_wide_mtls", "validate_linkerd_network_allow_all", "validate_single_trust_domain",
    "validate_http_redirect_only", "validate_open_service_targets", "validate_linkerd_default_policy",
    "RESOURCE_VALIDATORS", "STACK_VALIDATORS", "DESCRIPTIONS", "build_policies",
    "POLICY_NAMES", "ENFORCEMENT_LEVELS", "PACK_ENFORCEMENT", "PolicyPackConfig", "parse_policy_pack_config",
    "Violation", "check_resources", "run_resource_policy", "run_stack_policy",
]

PROBE_ANNOTATION = "mesh-components.io/kubelet-probes"
"""Marks the Linkerd route + NetworkAuthentication + AuthorizationPolicy that admit kubelet probes
(``mesh_components.meshes.linkerd.probe_objects``)."""
DEFAULT_TRUST_DOMAIN = "cluster.local"

DEFAULTS: dict[str, Any] = {
    "permissiveNamespaces": [],
    "maxRootValidityDays": 3650,
    "maxIntermediateValidityDays": 365,
    "minRsaBits": 2048,
    "allowedEcdsaCurves": ["P256", "P384"],
}
"""Configuration defaults (CrossGuard config, per policy, in the policy pack config file)."""

CONFIG_SCHEMAS: dict[str, dict[str, dict[str, Any]]] = {
    "mtls-strict": {"permissiveNamespaces": {"type": "array", "items": {"type": "string"}, "default": []}},
    "ca-limits": {
        "maxRootValidityDays": {"type": "integer", "minimum": 1, "default": 3650},
        "maxIntermediateValidityDays": {"type": "integer", "minimum": 1, "default": 365},
        "minRsaBits": {"type": "integer", "minimum": 2048, "default": 2048},
        "allowedEcdsaCurves": {"type": "array", "items": {"type": "string"}, "default": ["P256", "P384"]},
    },
}
"""JSON schemas of the configurable policies' properties (``PolicyConfigSchema``)."""

_TOKEN = re.compile(r"^kubernetes:(?P<group>[^:]+)/(?P<version>[^/:]+):(?P<kind>[A-Za-z0-9]+)$")


def _conf(config: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULTS, **{k: v for k, v in (config or {}).items() if v is not None}}


@functools.lru_cache(maxsize=1024)  # a stack has a few dozen type tokens
def k8s_kind(resource_type: str) -> tuple[str, str] | None:
    """``kubernetes:security.istio.io/v1:PeerAuthentication`` -> ``("security.istio.io", "PeerAuthentication")``;
    core kinds give group ``""``; None for non-Kubernetes types."""
    m = _TOKEN.match(resource_type or "")
    if not m:
        return None
    group = m.group("group")
    return ("" if group == "core" else group, m.group("kind"))


def _get(d: Any, *path: Any) -> Any:
    for p in path:
        if isinstance(d, Mapping):
            d = d.get(p)
        elif isinstance(d, (list, tuple)) and isinstance(p, int) and -len(d) <= p < len(d):
            d = d[p]
        else:
            return None
    return d


def _name(props: Mapping[str, Any]) -> str:
    ns, name = _get(props, "metadata", "namespace"), _get(props, "metadata", "name")
    return f"{ns}/{name}" if ns else str(name)


def _release(resource_type: str, props: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """``(chart name, values)`` of a Helm release resource (helm.sh v3 Release or v4 Chart)."""
    if resource_type not in ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"):
        return None
    chart = str(props.get("chart") or "").rstrip("/").rpartition("/")[2]
    return chart, props.get("values") or {}


# ---------------------------------------------------------------------------------------------
# resource validators


def validate_mtls_strict(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``mtls-strict``: PeerAuthentication weaker than STRICT; Linkerd unauthenticated default inbound policy."""
    cfg = _conf(config)
    kind = k8s_kind(resource_type)
    if kind == ("security.istio.io", "PeerAuthentication"):
        if _get(props, "metadata", "namespace") in cfg["permissiveNamespaces"]:
            return []
        out = []
        mode = _get(props, "spec", "mtls", "mode")
        if mode in WEAK_MTLS:
            out.append(f"PeerAuthentication {_name(props)} sets mtls.mode {mode}: mTLS must be STRICT")
        for port, setting in sorted((_get(props, "spec", "portLevelMtls") or {}).items(), key=lambda kv: str(kv[0])):
            if _get(setting, "mode") in WEAK_MTLS:
                out.append(f"PeerAuthentication {_name(props)} sets port {port} to {setting['mode']}: "
                           f"mTLS must be STRICT on every port")
        return out
    rel = _release(resource_type, props)
    if rel and rel[0] == "linkerd-control-plane":
        policy = _get(rel[1], "proxy", "defaultInboundPolicy")
        if isinstance(policy, str) and _open_default_policy(policy):
            return [f"linkerd-control-plane sets proxy.defaultInboundPolicy {policy}: use all-authenticated "
                    f"or cluster-authenticated so every connection is mTLS"]
    if kind in (("", "Namespace"), ("", "NamespacePatch"), ("", "Pod")):
        policy = _get(props, "metadata", "annotations", LINKERD_DEFAULT_POLICY)
        if isinstance(policy, str) and _open_default_policy(policy):
            return [f"{kind[1]} {_name(props)} sets {LINKERD_DEFAULT_POLICY}: {policy}, so every port no Server "
                    f"selects accepts clients without mTLS: use deny, all-authenticated or cluster-authenticated"]
    return []


def _open_default_policy(policy: str) -> bool:
    """A Linkerd default inbound policy admitting clients without mTLS: ``*-unauthenticated`` or
    ``audit`` (which lets everything through; ``core.admission.PATTERNS`` ``open-default-policy``,
    linkerd2 edge-26.8.3 policy-controller/k8s/index/src/defaults.rs:25-26,53). On a Pod the
    annotation overrides the namespace's (policy-controller/k8s/index/src/inbound/workload.rs:186-193);
    the mesh renders no Pod, so that check only meets Pods of other programs."""
    return re.fullmatch(PATTERNS["open-default-policy"], policy) is not None


_POSITIVE_SOURCE_FIELDS = ("principals", "namespaces", "serviceAccounts", "requestPrincipals", "ipBlocks",
                           "remoteIpBlocks")
"""Fields of an Istio ``Source`` that restrict who matches (the ``not*`` fields only exclude)."""


_ONE_NAMESPACE_PRINCIPAL = re.compile(PATTERNS["one-namespace-principal"])
"""The wildcard principals confined to one namespace: ``<td>/ns/<ns>/sa/*`` and its equivalent
``<td>/ns/<ns>/*`` (prefix matches; every principal there continues with ``sa/``)."""


def _wide_source_value(field: str, value: Any) -> bool:
    """A value that matches peers beyond one namespace: ``*`` anywhere in a principal except
    ``<td>/ns/<ns>/sa/*``, in a namespace or a service account (Istio's prefix/suffix/presence
    match), a request principal ``*`` or ``<issuer>/*``, an all-addresses block."""
    v = str(value)
    if field in ("ipBlocks", "remoteIpBlocks"):
        return _zero_prefix(v)
    if field == "principals":
        return "*" in v and not _ONE_NAMESPACE_PRINCIPAL.fullmatch(v)
    if field == "requestPrincipals":
        return v == "*" or re.fullmatch(PATTERNS["issuer-wildcard"], v) is not None
    return "*" in v


def _zero_prefix(cidr: str) -> bool:
    """An address block of prefix length zero, spelt as ``mesh_components.core.admission.PATTERNS``
    ``zero-prefix`` says (the admission policies' CEL reads it alike): ``/0`` (``/00``...), or the
    IPv4 netmask/hostmask ``0.0.0.0``/``255.255.255.255``, whatever the address, so every block
    Python's ``ipaddress`` reads as ``/0`` and also unparsable ones (which Istio's validation and
    the API server refuse anyway: istio 1.30.3 pkg/config/security/security.go ``ValidateIPs``)."""
    return re.fullmatch(PATTERNS["zero-prefix"], cidr) is not None


def _matches_every_source(rule: Any) -> bool:
    """A rule without ``from``, with an empty ``from``, or with a ``from`` entry whose source has no
    restricting field or only wildcard ones (``principals: ['*']`` admits every authenticated peer;
    fields of one source are ANDed, values of one field ORed)."""
    if not isinstance(rule, Mapping):
        return False
    sources = rule.get("from")
    if not sources:
        return True
    for entry in sources:
        src = _get(entry, "source")
        if not src:
            return True
        present = [f for f in _POSITIVE_SOURCE_FIELDS if _get(src, f)]
        if all(any(_wide_source_value(f, v) for v in _get(src, f)) for f in present):
            return True
    return False


def _wide_linkerd_identity(value: Any) -> bool:
    """``*``, or a ``*.<suffix>`` other than ``*.<ns>.serviceaccount.identity.linkerd.<td>`` (one
    namespace): Linkerd reads ``*`` and a leading ``*.`` as suffix matches and any other ``*``
    literally (linkerd2 edge-26.8.3 policy-controller/core/src/identity_match.rs:18-30)."""
    v = str(value)
    return v == "*" or (v.startswith("*.") and not re.fullmatch(PATTERNS["one-namespace-identity"], v))


"""``UNRESTRICTED_ANNOTATION`` marks the policy that keeps a declared service without access rules open behind an Istio
waypoint (``mesh_components.meshes.istio_policy._unrestricted_services``)."""


def _explicit_open_service(props: Mapping[str, Any]) -> bool:
    """Exactly the shape of ``mesh_components.meshes.istio_policy._unrestricted_services``: the spec's own
    "no access rule names this service", which in sidecar mode renders no policy at all (and passes).
    Overrides cannot rename an object, so the name ties it to its Service; any other rule, source,
    target or field makes it an ordinary allow-all again."""
    if _get(props, "metadata", "annotations", UNRESTRICTED_ANNOTATION) is None:
        return False
    spec = _get(props, "spec")
    if not isinstance(spec, Mapping) or set(spec) - {"targetRefs", "action", "rules"}:
        return False
    refs = spec.get("targetRefs")
    if not isinstance(refs, list) or not refs or not all(
            isinstance(r, Mapping) and r.get("kind") == "Service" and r.get("group", "") == ""
            and set(r) <= {"group", "kind", "name"} for r in refs):
        return False
    base = str(refs[0].get("name"))
    if _get(props, "metadata", "name") != f"{base}-unrestricted":
        return False
    names = [str(r.get("name")) for r in refs]
    if len(set(names)) != len(names) or not all(_version_of(base).fullmatch(n) for n in names[1:]):
        return False  # another Service in targetRefs would open other pods (review U2)
    return spec.get("rules") == [{"from": [{"source": {"principals": ["*"]}}]}]


def _version_of(base: str) -> re.Pattern:
    """``<base>-<version>``: the name ``mesh_components.core.render.version_services`` gives a version
    Service (``istio_policy.service_names``), a DNS label version."""
    return re.compile(re.escape(base) + "-(?:" + PATTERNS["version-label"] + ")")


def validate_no_allow_all(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``no-allow-all``: Istio ALLOW rules matching every source; Linkerd policies requiring no authentication."""
    kind = k8s_kind(resource_type)
    if kind == ("security.istio.io", "AuthorizationPolicy"):
        if (_get(props, "spec", "action") or "ALLOW") != "ALLOW" or _explicit_open_service(props):
            return []
        return [f"AuthorizationPolicy {_name(props)} rules[{i}] allows every source (no 'from', or an empty "
                f"source): name the principals or namespaces it admits"
                for i, rule in enumerate(_get(props, "spec", "rules") or []) if _matches_every_source(rule)]
    if kind == ("policy.linkerd.io", "AuthorizationPolicy"):
        if not _get(props, "spec", "requiredAuthenticationRefs"):
            return [f"AuthorizationPolicy {_name(props)} requires no authentication, so it admits every "
                    f"client: reference a MeshTLSAuthentication"]
    if kind == ("policy.linkerd.io", "MeshTLSAuthentication"):
        if (_get(props, "metadata", "namespace"), _get(props, "metadata", "name")) == \
                MULTICLUSTER_GATEWAY_AUTHENTICATION and _get(props, "spec", "identities") == ["*"]:
            return []  # the linkerd-multicluster gateway's own (core.admission.MULTICLUSTER_GATEWAY_AUTHENTICATION)
        return [f"MeshTLSAuthentication {_name(props)} identities[{i}] {v!r} matches every meshed workload (of "
                f"every linked cluster too): name the identities it admits"
                for i, v in enumerate(_get(props, "spec", "identities") or []) if _wide_linkerd_identity(v)]
    if kind == ("policy.linkerd.io", "ServerAuthorization"):
        # core.admission.LINKERD_SERVER_AUTHORIZATION (linkerd2 edge-26.8.3
        # policy-controller/k8s/index/src/inbound/server_authorization.rs:78-100)
        client = _get(props, "spec", "client")
        out = []
        if _get(client, "unauthenticated") is True:
            out.append(f"ServerAuthorization {_name(props)} sets client.unauthenticated, so it admits every client "
                       f"without mTLS: name the identities it admits")
        if _get(client, "meshTLS", "unauthenticatedTLS") is True:
            out.append(f"ServerAuthorization {_name(props)} sets client.meshTLS.unauthenticatedTLS, so it admits "
                       f"every TLS client without an identity: name the identities it admits")
        out += [f"ServerAuthorization {_name(props)} client.meshTLS.identities[{i}] {v!r} matches meshed workloads "
                f"beyond one namespace: name the identities it admits"
                for i, v in enumerate(_get(client, "meshTLS", "identities") or []) if _wide_linkerd_identity(v)]
        return out
    if kind == ("policy.linkerd.io", "Server"):
        access = _get(props, "spec", "accessPolicy")
        if access not in (None, "deny"):
            return [f"Server {_name(props)} sets accessPolicy {access}, which admits clients without any "
                    f"AuthorizationPolicy: leave it deny and authorize callers explicitly"]
    rel = _release(resource_type, props)
    if rel and rel[0] == "osm" and _get(rel[1], "osm", "enablePermissiveTrafficPolicy") is not False:
        return ["osm release leaves osm.enablePermissiveTrafficPolicy on (the chart default), which admits every "
                "client to every service whatever the TrafficTargets say: set it to false"]
    return []


def validate_no_wildcard_egress(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``no-wildcard-egress``: ServiceEntry wildcard hosts without the explicit exception annotation."""
    rel = _release(resource_type, props)
    if rel and rel[0] == "osm" and _get(rel[1], "osm", "enableEgress") is not False:
        return ["osm release leaves osm.enableEgress on (the chart default), which lets every pod reach any "
                "address outside the mesh: set it to false and allow destinations with Egress policies"]
    if k8s_kind(resource_type) == ("networking.k8s.io", "NetworkPolicy") and \
            _get(props, "metadata", "name") == EGRESS_FENCE:
        return [f"NetworkPolicy {_name(props)} egress[{i}] lets pods reach every address (ztunnel passes "
                f"unknown destinations through, so this fence is the egress allow-list): name the addresses"
                for i, rule in enumerate(_get(props, "spec", "egress") or []) if _to_everywhere(rule)]
    if k8s_kind(resource_type) != ("networking.istio.io", "ServiceEntry"):
        return []
    if re.fullmatch(PATTERNS["true"], str(_get(props, "metadata", "annotations", ALLOW_WILDCARD_ANNOTATION))):
        return []
    return [f"ServiceEntry {_name(props)} opens egress to wildcard host {h!r}: list exact hosts, or annotate "
            f"{ALLOW_WILDCARD_ANNOTATION}: \"true\" to make the exception explicit"
            for h in _get(props, "spec", "hosts") or [] if isinstance(h, str) and "*" in h]


# EGRESS_FENCE: the ambient egress NetworkPolicy of every application namespace (``mesh_components.core.egress``)


def _to_everywhere(rule: Any) -> bool:
    if not isinstance(rule, Mapping):
        return False
    peers = rule.get("to")
    if not peers:
        return True
    for peer in peers:
        cidr = _get(peer, "ipBlock", "cidr")
        if cidr is not None and _zero_prefix(str(cidr)):  # the API server refuses an unparsable cidr
            return True
    return False


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def validate_ca_limits(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``ca-limits``: the CA dynamic resource's key algorithm and lifetimes (unknown values pass)."""
    if resource_type != "pulumi-python:dynamic:Resource" or "key_algorithm" not in props:
        return []
    cfg = _conf(config)
    out = []
    root, inter = _number(props.get("root_validity_days")), _number(props.get("intermediate_validity_days"))
    if root is not None and inter is not None and inter >= root:
        out.append(f"intermediate_validity_days {inter:g} is not shorter than root_validity_days {root:g}: "
                   f"an intermediate must expire before its root")
    if root is not None and root > cfg["maxRootValidityDays"]:
        out.append(f"root_validity_days {root:g} exceeds the limit of {cfg['maxRootValidityDays']} days")
    if inter is not None and inter > cfg["maxIntermediateValidityDays"]:
        out.append(f"intermediate_validity_days {inter:g} exceeds the limit of {cfg['maxIntermediateValidityDays']} days")
    algo = props.get("key_algorithm")
    if isinstance(algo, str):
        m = re.fullmatch(r"(?i)(RSA|ECDSA)[-_ ]?P?(\d+)", algo.strip())
        if not m:
            out.append(f"key_algorithm {algo!r} is not one of RSA_<bits> or ECDSA_P<curve>")
        elif m.group(1).upper() == "RSA" and int(m.group(2)) < cfg["minRsaBits"]:
            out.append(f"key_algorithm {algo}: RSA keys must have at least {cfg['minRsaBits']} bits")
        elif m.group(1).upper() == "ECDSA" and f"P{m.group(2)}" not in cfg["allowedEcdsaCurves"]:
            out.append(f"key_algorithm {algo}: ECDSA curve P{m.group(2)} is not allowed "
                       f"({', '.join(cfg['allowedEcdsaCurves'])})")
    return out


def _is(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def validate_ingress_tls(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``ingress-tls``: plain-HTTP listeners only beside an HTTPS/TLS one (Gateway API), or redirecting (Istio)."""
    kind = k8s_kind(resource_type)
    if kind == ("gateway.networking.k8s.io", "Gateway"):
        listeners = _get(props, "spec", "listeners") or []
        protocols = [str(_get(ln, "protocol") or "") for ln in listeners]
        if any(_is(PATTERNS["http"], p) for p in protocols) and not any(_is(PATTERNS["https-or-tls"], p) for p in protocols):
            names = [str(_get(ln, "name")) for ln, p in zip(listeners, protocols) if _is(PATTERNS["http"], p)]
            return [f"Gateway {_name(props)} serves plain HTTP ({', '.join(names)}) without an HTTPS or TLS "
                    f"listener: add one and let HTTP only redirect to it"]
        return []
    if kind == ("networking.istio.io", "Gateway"):
        out = []
        for i, server in enumerate(_get(props, "spec", "servers") or []):
            if _is(PATTERNS["istio-http"], str(_get(server, "port", "protocol") or "")) and \
                    _get(server, "tls", "httpsRedirect") is not True:
                out.append(f"Gateway {_name(props)} servers[{i}] serves plain HTTP on port "
                           f"{_get(server, 'port', 'number')}: set tls.httpsRedirect: true")
        return out
    return []


RESOURCE_VALIDATORS: dict[str, Callable[[str, Mapping[str, Any], Mapping[str, Any] | None], list[str]]] = {
    "mtls-strict": validate_mtls_strict,
    "no-allow-all": validate_no_allow_all,
    "no-wildcard-egress": validate_no_wildcard_egress,
    "ca-limits": validate_ca_limits,
    "ingress-tls": validate_ingress_tls,
}


# ---------------------------------------------------------------------------------------------
# stack validators


def _pairs(resources: Iterable[Any]) -> list[tuple[str, Mapping[str, Any]]]:
    out = []
    for r in resources:
        if isinstance(r, tuple):
            out.append((r[0], r[1] or {}))
        else:
            out.append((r.resource_type, r.props or {}))
    return out


def _objects(resources: list[tuple[str, Mapping[str, Any]]], group: str, kind: str) -> list[Mapping[str, Any]]:
    return [p for t, p in resources if k8s_kind(t) == (group, kind)]


def validate_mesh_wide_mtls(resources: Iterable[Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``mtls-mesh-wide-strict``: every istiod release has a selector-less STRICT PeerAuthentication
    in its root namespace."""
    res = _pairs(resources)
    pas = _objects(res, "security.istio.io", "PeerAuthentication")
    strict_ns = {_get(p, "metadata", "namespace") for p in pas
                 if not _get(p, "spec", "selector") and _get(p, "spec", "mtls", "mode") == "STRICT"}
    out = []
    for t, p in res:
        rel = _release(t, p)
        if not rel or rel[0] != "istiod":
            continue
        root = _get(rel[1], "meshConfig", "rootNamespace") or p.get("namespace") or "istio-system"
        if root not in strict_ns:
            out.append(f"istiod release {p.get('name') or ''} has no mesh-wide STRICT PeerAuthentication: add one "
                       f"in namespace {root} without a selector and with mtls.mode STRICT")
    return out


def _open_network(na: Mapping[str, Any]) -> bool:
    for net in _get(na, "spec", "networks") or []:
        cidr, exceptions = _get(net, "cidr"), _get(net, "except")
        try:
            if ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0 and not exceptions:
                return True
        except ValueError:
            continue
    return False


def _probe_only(ap: Mapping[str, Any], routes: Mapping[tuple, list[Mapping[str, Any]]]) -> bool:
    """The kubelet-probe exception: an AuthorizationPolicy marked :data:`PROBE_ANNOTATION` targeting a
    policy.linkerd.io HTTPRoute, marked too, whose every match is ``GET`` of one ``Exact`` path - the
    shape of the probe route Linkerd's policy controller itself authorizes from its probe networks
    (linkerd2 edge-26.8.3 policy-controller/k8s/index/src/inbound/index.rs:2258-2298). Every route of
    that namespace and name (one per cluster) must have that shape."""
    if str(_get(ap, "metadata", "annotations", PROBE_ANNOTATION)).lower() != "true":
        return False
    ref = _get(ap, "spec", "targetRef") or {}
    if _get(ref, "kind") != "HTTPRoute" or (_get(ref, "group") or "policy.linkerd.io") != "policy.linkerd.io":
        return False
    found = routes.get((_get(ap, "metadata", "namespace"), _get(ref, "name"))) or []
    return bool(found) and all(_probe_route(r) for r in found)


def _probe_route(route: Mapping[str, Any]) -> bool:
    if str(_get(route, "metadata", "annotations", PROBE_ANNOTATION)).lower() != "true":
        return False
    matches = [m for rule in _get(route, "spec", "rules") or [] for m in _get(rule, "matches") or [None]]
    return bool(matches) and all(isinstance(m, Mapping) and m.get("method") == "GET"
                                 and _get(m, "path", "type") == "Exact" and set(m) <= {"method", "path"}
                                 for m in matches)


def validate_linkerd_network_allow_all(resources: Iterable[Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``no-allow-all-linkerd-network``: Linkerd policies authenticated only by an all-addresses network
    (except the marked kubelet-probe route: GET of exact paths only, see :func:`_probe_only`)."""
    res = _pairs(resources)
    nets = {(_get(n, "metadata", "namespace"), _get(n, "metadata", "name")): n
            for n in _objects(res, "policy.linkerd.io", "NetworkAuthentication")}
    routes: dict[tuple, list[Mapping[str, Any]]] = {}  # a stack spans clusters: one name, several routes
    for r in _objects(res, "policy.linkerd.io", "HTTPRoute"):
        routes.setdefault((_get(r, "metadata", "namespace"), _get(r, "metadata", "name")), []).append(r)
    out = []
    for ap in _objects(res, "policy.linkerd.io", "AuthorizationPolicy"):
        refs = _get(ap, "spec", "requiredAuthenticationRefs") or []
        if not refs or any(_get(r, "kind") != "NetworkAuthentication" for r in refs):
            continue
        if _probe_only(ap, routes):
            continue
        for r in refs:
            na = nets.get((_get(r, "namespace") or _get(ap, "metadata", "namespace"), _get(r, "name")))
            if na is not None and _open_network(na):
                out.append(f"AuthorizationPolicy {_name(ap)} admits unauthenticated clients from every address "
                           f"(NetworkAuthentication {_name(na)} allows 0.0.0.0/0 or ::/0): require a "
                           f"MeshTLSAuthentication too")
                break
    return out


def validate_open_service_targets(resources: Iterable[Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``no-allow-all-open-service``: the extra targets of every explicit open service are version
    Services the mesh renders for that service (module docstring)."""
    res = _pairs(resources)
    services = {(_get(p, "metadata", "namespace"), _get(p, "metadata", "name")): p for p in _objects(res, "", "Service")}
    out = []
    for ap in _objects(res, "security.istio.io", "AuthorizationPolicy"):
        if not _explicit_open_service(ap):
            continue
        ns = _get(ap, "metadata", "namespace")
        refs = _get(ap, "spec", "targetRefs")
        base = str(refs[0].get("name"))
        for r in refs[1:]:
            name = str(r.get("name"))
            labels = _get(services.get((ns, name)), "metadata", "labels") or {}
            if not (labels.get("app") == base and name == f"{base}-{labels.get('version')}"
                    and labels.get("app.kubernetes.io/managed-by") == "mesh-components"):
                out.append(f"AuthorizationPolicy {_name(ap)} opens Service {ns}/{name} to every caller, but that is "
                           f"not a version Service of {base} the mesh renders: remove it from targetRefs")
    return out


_AUTHENTICATED_DEFAULTS = ("all-authenticated", "cluster-authenticated")
DECLARED_POLICY_ANNOTATION = "mesh-components.io/declared-default-inbound-policy"
"""Written by ``mesh_components.meshes.linkerd.policy_namespace_annotations`` when the spec declares the value."""


def validate_linkerd_default_policy(resources: Iterable[Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``no-allow-all-linkerd-default``: no undeclared ``*-authenticated`` default in a namespace
    holding Linkerd policy (module docstring)."""
    res = _pairs(resources)
    policed = {_get(o, "metadata", "namespace") for kind in ("Server", "AuthorizationPolicy")
               for o in _objects(res, "policy.linkerd.io", kind)}
    out = []
    for t, p in res:
        if k8s_kind(t) not in (("", "Namespace"), ("", "NamespacePatch")):
            continue
        annotations = _get(p, "metadata", "annotations") or {}
        policy = annotations.get(LINKERD_DEFAULT_POLICY)
        if policy in _AUTHENTICATED_DEFAULTS and _get(p, "metadata", "name") in policed and \
                annotations.get(DECLARED_POLICY_ANNOTATION) != policy:
            out.append(f"Namespace {_name(p)} sets {LINKERD_DEFAULT_POLICY}: {policy}, so every meshed client "
                       f"reaches every port of it that no Server selects; it holds access policy and the spec does "
                       f"not declare that default: use deny, or declare it in mesh.namespaces[].defaultInboundPolicy")
    return out


def validate_single_trust_domain(resources: Iterable[Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``single-trust-domain``: the CA, every istiod and every Linkerd control plane name one trust domain."""
    res = _pairs(resources)
    seen: dict[str, list[str]] = {}
    for t, p in res:
        if t == "pulumi-python:dynamic:Resource" and "key_algorithm" in p and isinstance(p.get("trust_domain"), str):
            seen.setdefault(p["trust_domain"], []).append(f"CA {p.get('mesh_name') or ''}".strip())
            continue
        rel = _release(t, p)
        if not rel:
            continue
        chart, values = rel
        if chart == "istiod":
            td = _get(values, "meshConfig", "trustDomain")  # never a SHARED_MESH_CONFIG map's (docstring)
        elif chart == "linkerd-control-plane":
            td = _get(values, "identityTrustDomain")
        else:
            continue
        where = _get(values, "global", "multiCluster", "clusterName") or p.get("name") or chart
        seen.setdefault(td if isinstance(td, str) and td else DEFAULT_TRUST_DOMAIN, []).append(f"{chart} {where}")
    if len(seen) <= 1:
        return []
    detail = "; ".join(f"{td}: {', '.join(sorted(who))}" for td, who in sorted(seen.items()))
    return [f"the mesh spans {len(seen)} trust domains ({detail}): every cluster and the CA must share one, "
            f"or identities from one cluster are rejected in another"]


def _listener_matches(ref: Mapping[str, Any], listener: Mapping[str, Any]) -> bool:
    section, port = _get(ref, "sectionName"), _get(ref, "port")
    if section is not None and section != _get(listener, "name"):
        return False
    return port is None or port == _get(listener, "port")


def _redirect_only(rule: Any) -> bool:
    if not isinstance(rule, Mapping) or _get(rule, "backendRefs"):
        return False
    filters = _get(rule, "filters") or []
    return bool(filters) and all(_get(f, "type") == "RequestRedirect" and _get(f, "requestRedirect", "scheme") == "https"
                                 for f in filters)


def validate_http_redirect_only(resources: Iterable[Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """``ingress-http-redirect-only``: routes on plain-HTTP listeners only redirect to https."""
    res = _pairs(resources)
    gateways = {(_get(g, "metadata", "namespace"), _get(g, "metadata", "name")): g
                for g in _objects(res, "gateway.networking.k8s.io", "Gateway")}
    out = []
    for route in _objects(res, "gateway.networking.k8s.io", "HTTPRoute"):
        route_ns = _get(route, "metadata", "namespace")
        for ref in _get(route, "spec", "parentRefs") or []:
            if (_get(ref, "group") or "gateway.networking.k8s.io") != "gateway.networking.k8s.io" or \
                    (_get(ref, "kind") or "Gateway") != "Gateway":
                continue
            gw = gateways.get((_get(ref, "namespace") or route_ns, _get(ref, "name")))
            if gw is None:
                continue
            http = [ln for ln in _get(gw, "spec", "listeners") or []
                    if str(_get(ln, "protocol") or "").upper() == "HTTP" and _listener_matches(ref, ln)]
            bad = [i for i, rule in enumerate(_get(route, "spec", "rules") or [{}]) if not _redirect_only(rule)]
            if http and bad:
                out.append(f"HTTPRoute {_name(route)} serves plain HTTP on Gateway {_name(gw)} listener "
                           f"{', '.join(str(_get(ln, 'name')) for ln in http)} (rules {bad}): on an HTTP listener a "
                           f"route may only redirect to https (RequestRedirect scheme: https, no backendRefs)")
    return out


STACK_VALIDATORS: dict[str, Callable[[Iterable[Any], Mapping[str, Any] | None], list[str]]] = {
    "mtls-mesh-wide-strict": validate_mesh_wide_mtls,
    "no-allow-all-linkerd-network": validate_linkerd_network_allow_all,
    "no-allow-all-open-service": validate_open_service_targets,
    "no-allow-all-linkerd-default": validate_linkerd_default_policy,
    "single-trust-domain": validate_single_trust_domain,
    "ingress-http-redirect-only": validate_http_redirect_only,
}

DESCRIPTIONS: dict[str, str] = {name: g.description for name, g in GUARDRAILS.items()}
"""Each policy's description: ``mesh_components.core.admission.GUARDRAILS``, the rule definitions
the in-cluster admission policies are rendered from too."""


def _check_one_source() -> None:
    """Every policy of :data:`GUARDRAILS` has its validator here, at its scope, in its order, and
    no validator is missing from it: a rule cannot exist on one side only."""
    resource = tuple(n for n, g in GUARDRAILS.items() if g.scope == "resource")
    stack = tuple(n for n, g in GUARDRAILS.items() if g.scope == "stack")
    if tuple(RESOURCE_VALIDATORS) != resource or tuple(STACK_VALIDATORS) != stack:
        raise ImportError(f"mesh-guardrails: the validators ({[*RESOURCE_VALIDATORS]}, {[*STACK_VALIDATORS]}) and "
                          f"mesh_components.core.admission.GUARDRAILS ({[*resource]}, {[*stack]}) disagree")


_check_one_source()


def build_policies() -> list[Any]:
    """The CrossGuard policies (``ResourceValidationPolicy``/``StackValidationPolicy``, mandatory)
    wrapping the validators; imports ``pulumi_policy`` here, not at module level."""
    from pulumi_policy import (EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy,
                               StackValidationPolicy)

    def resource(name: str, fn: Callable) -> Any:
        def validate(args: Any, report_violation: Callable) -> None:
            for message in run_resource_policy(name, args.resource_type, args.props or {}, args.get_config()):
                report_violation(message, None)
        schema = CONFIG_SCHEMAS.get(name)
        return ResourceValidationPolicy(name=name, description=DESCRIPTIONS[name], validate=validate,
                                        enforcement_level=EnforcementLevel.MANDATORY,
                                        config_schema=PolicyConfigSchema(properties=schema) if schema else None)

    def stack(name: str, fn: Callable) -> Any:
        def validate(args: Any, report_violation: Callable) -> None:
            for message in run_stack_policy(name, args.resources, args.get_config()):
                report_violation(message, None)
        return StackValidationPolicy(name=name, description=DESCRIPTIONS[name], validate=validate,
                                     enforcement_level=EnforcementLevel.MANDATORY)

    return ([resource(n, f) for n, f in RESOURCE_VALIDATORS.items()]
            + [stack(n, f) for n, f in STACK_VALIDATORS.items()])


# ---------------------------------------------------------------------------------------------
# enforcement levels, pack configuration, and the offline run (``python -m mesh_components validate``)


POLICY_NAMES: tuple[str, ...] = (*RESOURCE_VALIDATORS, *STACK_VALIDATORS)
"""Every policy of the pack, in the order :func:`build_policies` serves them (resource policies first)."""

ENFORCEMENT_LEVELS = ("advisory", "mandatory", "remediate", "disabled")
"""Pulumi's enforcement levels (pulumi/pulumi v3.259.0 ``sdk/go/common/apitype/policy.go:164-173``)."""

PACK_ENFORCEMENT = "mandatory"
"""Every policy's level unless a config file changes it: ``__main__.py`` gives the pack
``EnforcementLevel.MANDATORY`` and :func:`build_policies` gives it to each policy."""

BLOCKING_LEVELS = ("mandatory", "remediate")
"""Levels whose violations stop ``pulumi up``: ``mandatory``, and ``remediate`` on a policy without
a remediation (all of ours), which pulumi-policy 1.21.0 reports as mandatory
(``pulumi_policy/policy.py:989-992``)."""


class PolicyConfigError(ValueError):
    """A policy pack config that the Pulumi CLI would refuse or that names what the pack does not
    have. ``problems``: ``(path, message)`` pairs, like :class:`mesh_components.spec.errors.MeshError`."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("\n".join(f"{p}: {m}" for p, m in self.problems))


class PolicyPackConfig:
    """The reconciled configuration of the pack: ``levels`` (policy -> enforcement level, every
    policy of :data:`POLICY_NAMES`) and ``properties`` (policy -> its properties, the schema
    defaults of :data:`CONFIG_SCHEMAS` overlaid with the file's), as the Pulumi CLI reconciles them
    (pulumi/pulumi v3.259.0 ``pkg/resource/analyzer/config.go`` ``ReconcilePolicyPackConfig``,
    ``applyConfig``: ``all`` first, then each policy's own level; properties merge over the defaults).
    ``source``: the file it came from, or None for the pack's own defaults."""

    def __init__(self, levels: Mapping[str, str] | None = None,
                 properties: Mapping[str, Mapping[str, Any]] | None = None, source: str | None = None):
        self.levels = {name: (levels or {}).get(name, PACK_ENFORCEMENT) for name in POLICY_NAMES}
        self.properties = {name: {**{k: v["default"] for k, v in CONFIG_SCHEMAS.get(name, {}).items()},
                                  **dict((properties or {}).get(name) or {})} for name in POLICY_NAMES}
        self.source = source


def _schema_problem(schema: Mapping[str, Any], value: Any) -> str | None:
    """The JSON-schema keywords :data:`CONFIG_SCHEMAS` uses (``type`` integer/array, ``items``
    string, ``minimum``); a JSON number with no fraction is an integer, as in JSON Schema."""
    if schema.get("type") == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(value, float) and not value.is_integer()):
            return f"expected an integer, got {value!r}"
        if "minimum" in schema and value < schema["minimum"]:
            return f"must be at least {schema['minimum']}, got {value!r}"
    if schema.get("type") == "array":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"expected a list of strings, got {value!r}"
    return None


def parse_policy_pack_config(data: Any, where: str) -> PolicyPackConfig:
    """Read a policy pack config file's JSON ``data`` (the file ``pulumi preview --policy-pack-config``
    takes): ``{"all"|<policy>: <level> | {"enforcementLevel": <level>, <property>: <value>...}}``,
    https://www.pulumi.com/docs/iac/using-pulumi/crossguard/configuration/ and pulumi/pulumi v3.259.0
    ``pkg/resource/analyzer/config.go`` ``parsePolicyPackConfig``. ``environments`` (Pulumi ESC
    references) is accepted and not resolved. ``where``: the file's path, the prefix of every problem.

    Raises :class:`PolicyConfigError` with every problem: a level not in :data:`ENFORCEMENT_LEVELS`,
    a value neither a string nor an object, a property its policy's schema refuses. Stricter than
    the Pulumi CLI, which ignores them: a policy name the pack does not have and a property its
    policy does not declare (a typo would silently leave a policy at its default)."""
    problems: list[tuple[str, str]] = []
    if data is None or data == {}:
        return PolicyPackConfig(source=where)
    if not isinstance(data, Mapping):
        raise PolicyConfigError([(where, f"expected a JSON object of policy settings, got {type(data).__name__}")])
    every: str | None = None          # the "all" level
    levels: dict[str, str] = {}       # each policy's own level
    properties: dict[str, dict[str, Any]] = {}
    known = ", ".join(POLICY_NAMES)
    for name, value in data.items():
        at = f"{where}#{name}"
        if name == "environments":
            continue
        if name != "all" and name not in POLICY_NAMES:
            close = difflib.get_close_matches(name, [*POLICY_NAMES, "all"], n=1, cutoff=0.8)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append((at, f"the mesh-guardrails pack has no policy {name!r}: {hint}its policies are "
                                 f"{known} (or 'all')"))
            continue
        level, props = (value, {}) if isinstance(value, str) else (None, value)
        if not isinstance(props, Mapping):
            problems.append((at, f"expected an enforcement level or an object, got {value!r}"))
            continue
        props = dict(props)
        if level is None and "enforcementLevel" in props:
            level = props.pop("enforcementLevel")
        if level is not None and level not in ENFORCEMENT_LEVELS:
            problems.append((at, f"{level!r} is not an enforcement level: use one of {', '.join(ENFORCEMENT_LEVELS)}"))
            continue
        schema = CONFIG_SCHEMAS.get(name, {})
        for key, v in props.items():
            if key not in schema:
                declared = f"its properties are {', '.join(schema)}" if schema else "it has no properties"
                problems.append((f"{at}.{key}", f"unknown property of {name!r}: besides enforcementLevel, "
                                                f"{declared}"))
                continue
            problem = _schema_problem(schema[key], v)
            if problem:
                problems.append((f"{at}.{key}", problem))
        if name == "all":
            every = level
            continue
        if level is not None:
            levels[name] = level
        if props:
            properties[name] = props
    if problems:
        raise PolicyConfigError(problems)
    # "all" first, then each policy's own level (applyConfig), whatever the key order in the file
    resolved = {n: levels.get(n, every or PACK_ENFORCEMENT) for n in POLICY_NAMES}
    return PolicyPackConfig(resolved, properties, source=where)


class Violation(NamedTuple):
    """One violation: ``policy`` (its name), ``level`` (its enforcement level), ``message``, and
    ``resource``: the index of the resource in the list given to :func:`check_resources` (None for
    a stack policy)."""

    policy: str
    level: str
    message: str
    resource: int | None


def check_resources(resources: Iterable[Any], config: PolicyPackConfig | None = None) -> list[Violation]:
    """Run every policy not ``disabled`` in ``config`` (default: the pack's own levels) over
    ``resources`` (``(resource_type, props)`` pairs as the pack receives them, or objects with
    ``resource_type`` and ``props``), as ``pulumi preview --policy-pack`` would: each resource
    policy on every resource, each stack policy once on all of them, with the policy's properties.
    Returns the :class:`Violation` list in :data:`POLICY_NAMES` order, then resource order."""
    cfg = config or PolicyPackConfig()
    pairs = _pairs(resources)
    out: list[Violation] = []
    for name in POLICY_NAMES:
        level = cfg.levels[name]
        if level == "disabled":
            continue
        props = cfg.properties[name]
        if name in RESOURCE_VALIDATORS:
            out += [Violation(name, level, m, i) for i, (t, p) in enumerate(pairs)
                    for m in run_resource_policy(name, t, p, props)]
        else:
            out += [Violation(name, level, m, None) for m in run_stack_policy(name, pairs, props)]
    return out


_SHAPE_ERRORS = (TypeError, AttributeError, ValueError, KeyError, IndexError)
"""What a validator raises on a field of the wrong type (a list where the API has an object...)."""


def run_resource_policy(name: str, resource_type: str, props: Mapping[str, Any],
                        config: Mapping[str, Any] | None = None) -> list[str]:
    """Resource policy ``name`` on one resource: its messages, or, when a field has a shape the
    rule cannot read (which the Kubernetes API refuses too), one message saying so: a violation,
    never a crash of the policy (which would fail the whole preview without saying where)."""
    try:
        return RESOURCE_VALIDATORS[name](resource_type, props, config)
    except _SHAPE_ERRORS as e:
        kind = (k8s_kind(resource_type) or ("", resource_type))[1]
        what = f"{kind} {_name(props)}" if isinstance(props.get("metadata"), Mapping) else resource_type
        return [f"{what} cannot be checked by {name}: a field has a value of the wrong type "
                f"({type(e).__name__}: {str(e)[:120]}); the Kubernetes API would refuse it too"]


def run_stack_policy(name: str, resources: Iterable[Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """Stack policy ``name`` on every resource; like :func:`run_resource_policy` for a field it cannot read."""
    try:
        return STACK_VALIDATORS[name](resources, config)
    except _SHAPE_ERRORS as e:
        return [f"the stack cannot be checked by {name}: a field has a value of the wrong type "
                f"({type(e).__name__}: {str(e)[:120]}); the Kubernetes API would refuse it too"]
