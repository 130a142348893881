"""Intent-level checks across clusters: what a per-object diff cannot see.

Pure: each check takes per-cluster views (objects + Helm releases) and returns
:class:`~mesh_components.drift.diff.Finding` records. :func:`check_intent` runs them on the live state
and on the desired state; a live finding that the desired state has too is marked ``declared``
(the stack asks for it: reported, not drift - the policy pack is where such intent is refused).

Checks (``Finding.check``):

- ``trust-anchors``: every cluster must trust the same roots. Istio: Secret ``cacerts`` key
  ``root-cert.pem`` (plug-in CA, https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/),
  else ConfigMap ``istio-ca-root-cert`` in the istiod namespace; Linkerd: ConfigMap
  ``linkerd-identity-trust-roots`` key ``ca-bundle.crt``
  (https://linkerd.io/2/tasks/generate-certificates/). Bundles are compared as sets of
  certificates (PEM blocks), so order and line wrapping do not matter.
- ``mesh-id``: istiod ``global.meshID`` must be the same in every cluster
  (https://istio.io/latest/docs/setup/install/multicluster/before-you-begin/).
- ``network``: istiod ``global.network`` must equal the ``topology.istio.io/network`` label of its
  namespace (https://istio.io/latest/docs/setup/install/multicluster/multi-primary_multi-network/).
- ``revision-tag``: a MutatingWebhookConfiguration labelled ``istio.io/tag`` must point
  (``istio.io/rev``) at an installed istiod revision
  (https://istio.io/latest/docs/setup/upgrade/canary/#stable-revision-labels).
- ``registry-only``: where the stack runs istiod with ``outboundTrafficPolicy.mode: REGISTRY_ONLY``
  (in its Helm ``meshConfig``, where the stack sets it), the cluster must too, read as istiod
  reads it: ``meshConfig``, else a ``SHARED_MESH_CONFIG`` ConfigMap the live values still name
  (clusters deployed by earlier releases), else ``ALLOW_ANY``
  (https://istio.io/latest/docs/tasks/traffic-management/egress/egress-control/).
- ``peer-authentication``: a PeerAuthentication with ``mtls.mode`` PERMISSIVE or DISABLE, at
  workload or port level (``portLevelMtls``), is weaker than STRICT
  (https://istio.io/latest/docs/reference/config/security/peer_authentication/).
- ``user-secret``: a Secret the stack references but does not create (an ingress listener's
  ``certificateRefs`` with no Secret or cert-manager ``Certificate`` writing it; the credentials of
  a DNS-01 solver) must exist in the cluster with the keys its reader needs (listener:
  ``kubernetes.io/tls`` with ``tls.crt``/``tls.key``, Gateway API v1.6.1 apis/v1/gateway_types.go:606
  and :1591-1602; DNS-01: ``data[key]``, cert-manager v1.21.1 pkg/issuer/acme/dns/dns.go). Only key
  names are read, never values; skipped where Secrets were not read. See :func:`check_user_secrets`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import yaml

from .diff import Finding, LiveRelease, group_of, is_unknown, release_view

__all__ = ["ClusterView", "check_trust_anchors", "check_mesh_identity", "check_revision_tags",
           "check_registry_only", "outbound_mode", "check_peer_authentication", "check_intent", "pem_fingerprints",
           "check_user_secrets", "user_secrets"]

WEAK_MTLS = ("PERMISSIVE", "DISABLE")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class ClusterView:
    """One cluster's state for the checks: ``objects`` (Kubernetes dicts), ``releases``
    (desired ``HelmRelease``/dicts or :class:`LiveRelease`), ``releases_known`` (False when the
    Helm storage was not read)."""

    objects: Sequence[Mapping[str, Any]]
    releases: Sequence[Any] = ()
    releases_known: bool = True


def _release(r: Any) -> dict[str, Any]:
    if isinstance(r, LiveRelease):
        return {"name": r.name, "namespace": r.namespace, "chart": r.chart, "values": r.values or {}}
    return release_view(r)


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(p)
    return d


def _istiods(view: ClusterView) -> list[dict[str, Any]]:
    return [r for r in map(_release, view.releases) if r["chart"] == "istiod"]


def _find(view: ClusterView, kind: str, name: str, group: str = "") -> list[Mapping[str, Any]]:
    return [o for o in view.objects if o.get("kind") == kind and _get(o, "metadata", "name") == name
            and group_of(str(o.get("apiVersion") or "")) == group]


def pem_fingerprints(bundle: str) -> frozenset[str] | None:
    """SHA-256 (hex) of each certificate in a PEM bundle; None when the text is a deploy-time
    value; an empty set when it holds no certificate."""
    if is_unknown(bundle):
        return None
    out = set()
    for body in _PEM.findall(bundle or ""):
        try:
            der = base64.b64decode("".join(body.split()), validate=False)
        except (binascii.Error, ValueError):
            der = "".join(body.split()).encode()
        out.add(hashlib.sha256(der).hexdigest())
    return frozenset(out)


def _data_value(obj: Mapping[str, Any], key: str) -> Any:
    """A Secret/ConfigMap value as text (Secret ``data`` is base64; ``stringData`` is not)."""
    string = _get(obj, "stringData", key)
    if string is not None:
        return string
    value = _get(obj, "data", key)
    if value is None or is_unknown(value) or obj.get("kind") != "Secret" or not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return ""


def _anchors(view: ClusterView) -> dict[str, frozenset[str] | None]:
    """``{"istio": fingerprints, "linkerd": fingerprints}`` for the anchors found (None: unknown)."""
    out: dict[str, frozenset[str] | None] = {}
    istio_ns = {r["namespace"] for r in _istiods(view)} | {"istio-system"}
    for source, kind, name, key in (("istio", "Secret", "cacerts", "root-cert.pem"),
                                    ("istio", "ConfigMap", "istio-ca-root-cert", "root-cert.pem"),
                                    ("linkerd", "ConfigMap", "linkerd-identity-trust-roots", "ca-bundle.crt")):
        if source in out:
            continue
        for obj in _find(view, kind, name):
            if source == "istio" and _get(obj, "metadata", "namespace") not in istio_ns:
                continue
            value = _data_value(obj, key)
            if value is not None:
                out[source] = pem_fingerprints(value) if isinstance(value, str) or is_unknown(value) else frozenset()
                break
    return out


def _short(fps: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(f[:16] for f in fps)) + "}" if fps else "{no certificate}"


def check_trust_anchors(views: Mapping[str, ClusterView]) -> list[Finding]:
    """``trust-anchors`` findings: clusters whose root bundles differ, and clusters lacking the
    bundle that others have. Deploy-time (unknown) bundles are not compared."""
    found = {c: _anchors(v) for c, v in views.items()}
    out: list[Finding] = []
    for source, label in (("istio", "Istio root-cert.pem"), ("linkerd", "Linkerd ca-bundle.crt")):
        having = {c: a[source] for c, a in found.items() if source in a}
        if not having:
            continue
        known = {c: fps for c, fps in having.items() if fps is not None}
        if len(set(known.values())) > 1:
            detail = "; ".join(f"{c}: {_short(fps)}" for c, fps in sorted(known.items()))
            out.append(Finding("trust-anchors", None, label,
                               f"clusters trust different roots ({detail}): workloads across them "
                               f"cannot verify each other's certificates"))
        for c in sorted(set(views) - set(having)):
            out.append(Finding("trust-anchors", c, label,
                               f"no {label} in cluster {c}, while {', '.join(sorted(having))} have one"))
    return out


def check_mesh_identity(views: Mapping[str, ClusterView]) -> list[Finding]:
    """``mesh-id`` (istiod ``global.meshID`` differs between clusters) and ``network`` (istiod
    ``global.network`` differs from its namespace's ``topology.istio.io/network`` label)."""
    out: list[Finding] = []
    mesh_ids: dict[str, set] = {}
    for cluster, view in sorted(views.items()):
        namespaces = {_get(o, "metadata", "name"): o for o in view.objects
                      if o.get("kind") == "Namespace" and not group_of(str(o.get("apiVersion") or ""))}
        for r in _istiods(view):
            mesh_id = _get(r["values"], "global", "meshID")
            if not is_unknown(mesh_id):  # live values hold any JSON: a list or mapping is kept as its text
                mesh_ids.setdefault(cluster, set()).add(mesh_id if _hashable(mesh_id) else repr(mesh_id))
            network = _get(r["values"], "global", "network")
            ns = namespaces.get(r["namespace"])
            if ns is None or is_unknown(network):
                continue
            label = _get(ns, "metadata", "labels", "topology.istio.io/network")
            if (network or None) != (label or None):
                out.append(Finding("network", cluster, f"helm release {r['namespace']}/{r['name']}",
                                   f"istiod global.network is {network!r} but namespace {r['namespace']} "
                                   f"is labelled topology.istio.io/network={label!r}"))
    distinct = {m for ids in mesh_ids.values() for m in ids}
    if len(distinct) > 1:
        detail = "; ".join(f"{c}: {', '.join(repr(m) for m in sorted(ids, key=str))}"
                           for c, ids in sorted(mesh_ids.items()))
        out.append(Finding("mesh-id", None, "istiod global.meshID",
                           f"istiod global.meshID differs between clusters ({detail})"))
    return out


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``metadata.labels`` of ``obj`` when it is a mapping (``live.envelope_problems`` checks live
    objects once; desired ones are made so), else an empty one."""
    labels = _get(obj, "metadata", "labels")
    return labels if isinstance(labels, Mapping) else {}


def _revisions(view: ClusterView) -> set[str]:
    revs = {str(_get(r["values"], "revision") or "default") for r in _istiods(view)}
    for o in view.objects:
        labels = _labels(o)
        rev = labels.get("istio.io/rev")
        if not rev or "istio.io/tag" in labels:
            continue
        if o.get("kind") == "MutatingWebhookConfiguration" or (
                o.get("kind") == "Deployment" and str(_get(o, "metadata", "name") or "").startswith("istiod")):
            revs.add(str(rev))
    return revs


def check_revision_tags(views: Mapping[str, ClusterView]) -> list[Finding]:
    """``revision-tag`` findings: tag webhooks whose ``istio.io/rev`` names no installed revision
    (evidence of a revision: an istiod release's ``revision`` value, or an injector webhook or
    istiod Deployment labelled with it)."""
    out: list[Finding] = []
    for cluster, view in sorted(views.items()):
        revisions = None
        for o in view.objects:
            if o.get("kind") != "MutatingWebhookConfiguration":
                continue
            labels = _labels(o)
            tag, rev = labels.get("istio.io/tag"), labels.get("istio.io/rev")
            if not tag:
                continue
            if revisions is None:
                revisions = _revisions(view)
            if not isinstance(rev, str) or rev not in revisions:
                name = _get(o, "metadata", "name")
                out.append(Finding("revision-tag", cluster, f"MutatingWebhookConfiguration {name}",
                                   f"revision tag {tag!r} points at revision {rev!r}, which is not "
                                   f"installed (revisions: {', '.join(sorted(revisions)) or 'none'})"))
    return out


def outbound_mode(release: Mapping[str, Any], view: ClusterView) -> Any:
    """The outbound traffic policy mode an istiod release runs with: its values'
    ``meshConfig.outboundTrafficPolicy.mode`` (where the stack sets it, ``istio.mesh_config``);
    else the ``mesh`` key of the ConfigMap named by its ``SHARED_MESH_CONFIG`` env value (``env``
    or ``pilot.env``) in its namespace: the place earlier releases used, still read for live
    clusters not yet upgraded (the chart's own mesh config takes precedence over the shared one,
    istio 1.30.3 ``pilot/pkg/features/pilot.go:215-216``, ``pilot/pkg/bootstrap/mesh.go:130-136``;
    a missing map is skipped, ``pkg/config/mesh/meshwatcher/collection.go:56-60``); else
    ``ALLOW_ANY``, Istio's default. A deploy-time value comes back as it is."""
    values = release["values"] or {}
    mode = _get(values, "meshConfig", "outboundTrafficPolicy", "mode")
    if mode:
        return mode
    shared = _get(values, "env", "SHARED_MESH_CONFIG") or _get(values, "pilot", "env", "SHARED_MESH_CONFIG")
    if shared:
        for cm in _find(view, "ConfigMap", shared):
            if _get(cm, "metadata", "namespace") != release["namespace"]:
                continue
            text = _get(cm, "data", "mesh")
            if is_unknown(text):
                return text
            try:  # PyYAML's constructors raise ValueError, KeyError... on some well-formed scalars
                mesh = yaml.safe_load(text if isinstance(text, str) else "") or {}
            except (yaml.YAMLError, ValueError, TypeError, AttributeError, KeyError, OverflowError, RecursionError):
                mesh = {}
            mode = _get(mesh, "outboundTrafficPolicy", "mode")
            if mode:
                return mode
    return "ALLOW_ANY"


def check_registry_only(desired: Mapping[str, ClusterView], live: Mapping[str, ClusterView]) -> list[Finding]:
    """``registry-only`` findings: an istiod release that the stack runs with ``REGISTRY_ONLY``
    (:func:`outbound_mode`) but that runs with another mode in the cluster. Skipped where the
    cluster's Helm storage was not read."""
    out: list[Finding] = []
    for cluster, want in sorted(desired.items()):
        have = live.get(cluster)
        if have is None or not have.releases_known:
            continue
        deployed = {(r["namespace"], r["name"]): r for r in _istiods(have)}
        for r in _istiods(want):
            if outbound_mode(r, want) != "REGISTRY_ONLY":
                continue
            got = deployed.get((r["namespace"], r["name"]))
            if got is None:
                continue
            mode = outbound_mode(got, have)
            if mode != "REGISTRY_ONLY" and not is_unknown(mode):
                out.append(Finding("registry-only", cluster, f"helm release {r['namespace']}/{r['name']}",
                                   f"outbound traffic policy is {mode}, the stack wants REGISTRY_ONLY: "
                                   f"workloads can reach any external host"))
    return out


def check_peer_authentication(views: Mapping[str, ClusterView]) -> list[Finding]:
    """``peer-authentication`` findings: every PeerAuthentication (owned by the mesh or not) with
    a PERMISSIVE or DISABLE mode, at workload or port level."""
    out: list[Finding] = []
    for cluster, view in sorted(views.items()):
        for o in view.objects:
            if o.get("kind") != "PeerAuthentication" or group_of(str(o.get("apiVersion") or "")) != "security.istio.io":
                continue
            weak = []
            mode = _get(o, "spec", "mtls", "mode")
            if mode in WEAK_MTLS:
                weak.append(f"mtls.mode {mode}")
            ports = _get(o, "spec", "portLevelMtls")
            for port, setting in sorted(ports.items() if isinstance(ports, Mapping) else (), key=lambda kv: str(kv[0])):
                if isinstance(setting, Mapping) and setting.get("mode") in WEAK_MTLS:
                    weak.append(f"port {port} mode {setting['mode']}")
            if weak:
                ns, name = _get(o, "metadata", "namespace") or "", _get(o, "metadata", "name")
                out.append(Finding("peer-authentication", cluster, f"PeerAuthentication {ns}/{name}",
                                   f"weaker than STRICT: {', '.join(weak)} (plain-text traffic accepted)"))
    return out


TLS_KEYS = ("tls.crt", "tls.key")
"""Keys of a ``kubernetes.io/tls`` Secret (https://kubernetes.io/docs/concepts/configuration/secret/#tls-secrets)."""


def user_secrets(view: ClusterView) -> list[tuple[str, str, str, tuple[str, ...], str]]:
    """The Secrets the desired objects of one cluster read but do not create, sorted:
    ``(namespace, name, type or "", keys, reader)``.

    - Gateway API ``Gateway`` listeners' ``tls.certificateRefs`` to core Secrets (namespace: the
      ref's, else the Gateway's), type ``kubernetes.io/tls`` with :data:`TLS_KEYS`, unless a
      desired Secret or cert-manager ``Certificate`` (``spec.secretName``) writes it;
    - a cert-manager ``ClusterIssuer``'s ``spec.acme.solvers[].dns01.<provider>.*SecretRef``
      (``name`` + ``key``), in the namespace of the desired cert-manager release (its cluster
      resource namespace, chart templates/deployment.yaml:100-103); none when the stack does not
      install cert-manager (``certManager: external``: its namespace is not known here)."""
    made = {(_get(o, "metadata", "namespace") or "", _get(o, "metadata", "name")) for o in view.objects
            if o.get("kind") == "Secret" and group_of(str(o.get("apiVersion") or "")) == ""}
    made |= {(_get(o, "metadata", "namespace") or "", _get(o, "spec", "secretName")) for o in view.objects
             if o.get("kind") == "Certificate" and group_of(str(o.get("apiVersion") or "")) == "cert-manager.io"}
    out: dict[tuple[str, str], tuple[str, str, str, tuple[str, ...], str]] = {}
    for o in view.objects:
        group = group_of(str(o.get("apiVersion") or ""))
        ns, name = _get(o, "metadata", "namespace") or "", _get(o, "metadata", "name")
        if o.get("kind") == "Gateway" and group == "gateway.networking.k8s.io":
            for ln in _get(o, "spec", "listeners") or []:
                for ref in _get(ln, "tls", "certificateRefs") or []:
                    if (ref.get("group") or "") != "" or (ref.get("kind") or "Secret") != "Secret":
                        continue
                    key = (ref.get("namespace") or ns, ref.get("name"))
                    if key not in made:
                        out.setdefault(key, (*key, "kubernetes.io/tls", TLS_KEYS,
                                             f"listener {ln.get('name')} of Gateway {ns}/{name}"))
        elif o.get("kind") == "ClusterIssuer" and group == "cert-manager.io":
            cm_ns = next((r["namespace"] for r in map(_release, view.releases) if r["chart"] == "cert-manager"), None)
            if cm_ns is None:
                continue
            for solver in _get(o, "spec", "acme", "solvers") or []:
                for provider, settings in sorted((_get(solver, "dns01") or {}).items()):
                    for field_name, ref in sorted((settings or {}).items() if isinstance(settings, Mapping) else ()):
                        if field_name.endswith("SecretRef") and isinstance(ref, Mapping) and ref.get("name"):
                            key = (cm_ns, ref["name"])
                            have = out.get(key)
                            keys = tuple(sorted(set(have[3] if have else ()) | {str(ref.get("key") or "")}))
                            out[key] = (*key, "", keys, have[4] if have else
                                        f"DNS-01 {provider}.{field_name} of ClusterIssuer {name}")
    return [out[k] for k in sorted(out)]


def check_user_secrets(desired: Mapping[str, ClusterView], live: Mapping[str, ClusterView]) -> list[Finding]:
    """``user-secret`` findings: each Secret of :func:`user_secrets` that the live cluster lacks,
    or holds with another type or without a needed key (names of keys only; values are never
    read into a message). Skipped for clusters whose Secrets were not read (``releases_known``)."""
    out: list[Finding] = []
    for cluster, want in sorted(desired.items()):
        have = live.get(cluster)
        if have is None or not have.releases_known:
            continue
        secrets = {(_get(o, "metadata", "namespace") or "", _get(o, "metadata", "name")): o for o in have.objects
                   if o.get("kind") == "Secret" and group_of(str(o.get("apiVersion") or "")) == ""}
        for ns, name, kind, keys, reader in user_secrets(want):
            got = secrets.get((ns, name))
            create = (f"kubectl -n {ns} create secret tls {name} --cert=<chain.pem> --key=<key.pem>" if kind else
                      f"kubectl -n {ns} create secret generic {name} "
                      + " ".join(f"--from-literal={k}=<value>" for k in keys))
            if got is None:
                problem = "does not exist"
            else:
                present = {k for part in ("data", "stringData") if isinstance(_get(got, part), Mapping)
                           for k in _get(got, part)}
                missing = [k for k in keys if k not in present]
                if kind and (got.get("type") or "Opaque") != kind:
                    problem = f"has type {got.get('type') or 'Opaque'}, not {kind}"
                elif missing:
                    problem = f"has no key {', '.join(missing)}"
                else:
                    continue
            out.append(Finding("user-secret", cluster, f"Secret {ns}/{name}",
                               f"{problem}; {reader} reads it and the stack does not create it: {create}"))
    return out


def _structural(views: Mapping[str, ClusterView]) -> list[Finding]:
    return (check_trust_anchors(views) + check_mesh_identity(views) + check_revision_tags(views)
            + check_peer_authentication(views))


def check_intent(desired: Mapping[str, ClusterView], live: Mapping[str, ClusterView]) -> list[Finding]:
    """Every intent finding on ``live``, sorted; those the ``desired`` state has as well (same
    check, cluster and subject) come back with ``declared=True``."""
    declared = {f.key for f in _structural(desired)}
    findings = _structural(live) + check_registry_only(desired, live) + check_user_secrets(desired, live)
    out = [replace(f, declared=True) if f.key in declared else f for f in findings]
    return sorted(out, key=lambda f: (f.declared, f.check, f.cluster or "", f.subject))
