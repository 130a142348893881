"""What the stack assumes of the live workloads, checked against the pods a cluster runs (``diff``).

The mesh's policies select a service's pods by its labels (``services[].labels``, default
``app: <name>``) and admit callers by the service account they run as (``serviceAccount``, default
the service's name); a pod gets its proxy only in a namespace (or with pod labels) the mesh's
injector enrols. None of that is in the objects the mesh applies, so the object diff cannot see it;
``istioctl analyze`` checks the Istio part (IST0102 NamespaceNotInjected, IST0103 PodMissingProxy:
``pkg/config/analysis/analyzers/injection/injection.go`` at 1.30.3). Pure: it reads listed objects
(Pods, Namespaces, Services) and returns :class:`~mesh_components.drift.diff.Finding` records, each with
its fix.

Checks (``Finding.check``), per cluster where a service (or a version) runs
(``services[].clusters``, ``versions[].clusters``):

- ``workload-pods``: no running pod in the namespace carries the service's (and version's) labels;
- ``workload-selector``: the application's Service selects pods without those labels (traffic
  reaches pods no mesh policy selects);
- ``workload-service-account``: the pods run as another service account than the declared one;
- ``workload-namespace``: the namespace (with the pods' own labels and annotations) does not enrol
  the pods in the data plane (:data:`DATA_PLANES`);
- ``workload-proxy``: enrolled pods that carry no proxy (created before the namespace was enrolled,
  or opted out).

How each mesh enrols a pod and what its proxy looks like, at the versions we pin:

- Istio sidecar (1.30.3): the injector's webhooks
  (``manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml:62-143``) take a
  namespace labelled ``istio.io/rev: <revision>`` without ``istio-injection``, or, for the default
  revision only, ``istio-injection: enabled``; with neither on the namespace, a pod labelled
  ``istio.io/rev`` (or ``sidecar.istio.io/inject: "true"``, default revision); a pod labelled
  ``sidecar.istio.io/inject: "false"`` never. Revision tags (``revision-tags-mwc.yaml``) act as
  revisions (``sidecarInjectorWebhook.enableNamespacesByDefault``, which the stack never sets, is
  not modelled). The proxy is the container ``istio-proxy`` (``pkg/kube/inject/inject.go:79``), an init
  container when native sidecars are on (``ENABLE_NATIVE_SIDECARS`` defaults to ``auto``,
  ``pilot/pkg/features/pilot.go:330-334``), so both lists are searched as the analyzer does.
- Istio ambient (1.30.3): ``istio.io/dataplane-mode: ambient`` on the namespace or the pod, not
  ``none`` on the pod, and no sidecar (``cni/README.md:55-59``); the CNI marks a captured pod with
  the annotation ``ambient.istio.io/redirection: enabled`` (``cni/pkg/util/podutil.go:70-74``,
  ``pkg/config/analysis/analyzers/util/in_mesh.go`` ``PodInAmbientMode``).
- Linkerd (edge-26.8.3): annotation ``linkerd.io/inject`` ``enabled`` or ``ingress`` on the
  namespace (unless the pod says ``disabled``) or on the pod (``pkg/inject/report.go:183-227``,
  ``:42-52``); the proxy is the container ``linkerd-proxy`` (``pkg/k8s/labels.go:365``), or an init
  container as a native sidecar (``controller/webhook/util.go``).
- OSM (v1.2.4): the injector's webhook takes only namespaces labelled
  ``openservicemesh.io/monitored-by: <mesh name>`` (``pkg/injector/webhook.go:304-306``), then the
  annotation ``openservicemesh.io/sidecar-injection`` ``enabled``/``yes``/``true`` on the pod, or on
  the namespace unless the pod disables it (``webhook.go:193-262``); the proxy is the container
  ``envoy`` (``pkg/constants/constants.go:139``, ``pkg/injector/envoy_container.go:46``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from .diff import Finding, group_of

__all__ = ["Workload", "expected_workloads", "check_workloads", "trim_pod", "POD_FIELD_SELECTOR",
           "DATA_PLANES", "is_pod"]

POD_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
"""The Pod LIST's ``fieldSelector``: finished pods are neither listed nor checked (``status.phase``
is a field Pods can be selected by,
https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/#supported-fields)."""

_POD_ANNOTATIONS = ("sidecar.istio.io/inject", "sidecar.istio.io/status", "ambient.istio.io/redirection",
                    "linkerd.io/inject", "openservicemesh.io/sidecar-injection")
"""The only pod annotations the checks read (``trim_pod`` drops the others)."""

_SHOWN = 3  # pods named in a message before "and N more"

DATA_PLANES = {"istio-sidecar": "Istio sidecar", "istio-ambient": "Istio ambient", "linkerd": "Linkerd",
               "osm": "OSM"}
"""The data planes :func:`check_workloads` knows (key -> name used in messages)."""


def is_pod(obj: Mapping[str, Any]) -> bool:
    """True for a core ``v1`` Pod."""
    return obj.get("kind") == "Pod" and not group_of(str(obj.get("apiVersion") or ""))


def trim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a Pod the checks read: name, namespace, labels, the mesh annotations
    (:data:`_POD_ANNOTATIONS`), owner references, ``deletionTimestamp``, ``serviceAccountName``,
    ``hostNetwork``, container and init container names, ``status.phase``. Keeps a cluster's Pod
    list small (a pod is some kB, mostly spec and status the checks never read).

    Total: any field may hold any JSON shape (a hand-edited dump; ``live.envelope_problems`` checks
    only the envelope). What the checks read comes out in the shape of the Pod API
    (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/): strings,
    string maps, lists of ``{kind, name}`` / ``{name}``, ``hostNetwork`` only when ``true``; a field
    of another shape is left out (a list of containers that is not a list: no containers), so the
    checks report what it means (no proxy, no pods selected) instead of failing. Idempotent."""
    meta = _mapping(pod.get("metadata"))
    spec = _mapping(pod.get("spec"))
    out_meta = {k: meta[k] for k in ("name", "namespace") if isinstance(meta.get(k), str) and meta[k]}
    labels = _strings(meta.get("labels"))
    if labels:
        out_meta["labels"] = labels
    if meta.get("deletionTimestamp"):
        out_meta["deletionTimestamp"] = meta["deletionTimestamp"]
    ann = _strings(meta.get("annotations"))
    kept = {k: ann[k] for k in _POD_ANNOTATIONS if k in ann}
    if kept:
        out_meta["annotations"] = kept
    owners = [{"kind": o.get("kind"), "name": o.get("name")} for o in _list(meta.get("ownerReferences"))
              if isinstance(o, Mapping) and isinstance(o.get("kind"), str) and isinstance(o.get("name"), str)]
    if owners:
        out_meta["ownerReferences"] = owners
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    out_spec: dict[str, Any] = {
        "serviceAccountName": account if isinstance(account, str) else repr(account),
        "containers": [{"name": c.get("name")} for c in _list(spec.get("containers"))
                       if isinstance(c, Mapping) and isinstance(c.get("name"), str)],
        "initContainers": [{"name": c.get("name")} for c in _list(spec.get("initContainers"))
                           if isinstance(c, Mapping) and isinstance(c.get("name"), str)]}
    if spec.get("hostNetwork") is True:
        out_spec["hostNetwork"] = True
    phase = _mapping(pod.get("status")).get("phase")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": out_meta, "spec": out_spec,
            "status": {"phase": phase if isinstance(phase, str) else None}}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _strings(value: Any) -> dict[str, str]:
    """The string-to-string pairs of ``value`` (labels, annotations, a selector); empty when it is
    not a mapping."""
    return {k: v for k, v in _mapping(value).items() if isinstance(k, str) and isinstance(v, str)}


# ---------------------------------------------------------------------------------------------
# what the spec assumes


@dataclass(frozen=True)
class Workload:
    """The pods the spec assumes in one cluster: of ``service`` (``version``: one of its versions,
    or None), in ``namespace``, carrying ``selector`` (sorted ``(key, value)`` pairs), running as
    ``account``; ``path`` is the spec field that declares it (``mesh.services[i]``...)."""

    cluster: str
    namespace: str
    service: str
    version: str | None
    selector: tuple[tuple[str, str], ...]
    account: str
    path: str
    service_selector: tuple[tuple[str, str], ...] = ()
    """The service's own labels (``selector`` without the version's)."""

    @property
    def subject(self) -> str:
        return f"service {self.namespace}/{self.service}" + (f" version {self.version}" if self.version else "")


def expected_workloads(spec: Any) -> list[Workload]:
    """Every :class:`Workload` a ``spec.MeshSpec`` declares: per service without versions, one per
    cluster it runs in; per version, one per cluster the version runs in (``versions[].clusters``,
    default the service's), selecting the service's labels plus the version's (as the
    ``<service>-<version>`` Service does, ``render.version_services``)."""
    out: list[Workload] = []
    for i, s in enumerate(spec.services):
        clusters = spec.service_clusters(s)
        base = s.pod_labels()
        if not s.versions:
            out += [Workload(c, s.namespace, s.name, None, tuple(sorted(base.items())), s.account,
                             f"mesh.services[{i}]", tuple(sorted(base.items()))) for c in clusters]
            continue
        for j, v in enumerate(s.versions):
            labels = tuple(sorted({**base, **v.pod_labels()}.items()))
            out += [Workload(c, s.namespace, s.name, v.name, labels, s.account, f"mesh.services[{i}].versions[{j}]",
                             tuple(sorted(base.items())))
                    for c in clusters if not v.clusters or c in v.clusters]
    return out


# ---------------------------------------------------------------------------------------------
# data planes


def data_plane_of(spec: Any) -> str:
    """The key in :data:`DATA_PLANES` of a spec's backend."""
    if spec.backend.type == "istio":
        return f"istio-{spec.backend.istio.data_plane}"
    return spec.backend.type


def _istio_revisions(spec: Any) -> tuple[set[str], bool]:
    """``(istio.io/rev values an injector serves, whether istio-injection=enabled is served)``:
    every revision and the tag; ``istio-injection: enabled`` only with no revision (the default
    revision's ``namespace.sidecar-injector.istio.io`` webhook) or a tag named ``default``."""
    opts = spec.backend.istio
    revs = {r.name for r in opts.revisions} | {x for x in (opts.revision, opts.tag) if x}
    return (revs or {"default"}), (not revs or opts.tag == "default")


def _names(pod: Mapping[str, Any], key: str) -> set[str]:
    return {str(c.get("name")) for c in _list(_mapping(pod.get("spec")).get(key)) if isinstance(c, Mapping)}


def has_proxy(plane: str, pod: Mapping[str, Any]) -> bool:
    """True when ``pod`` carries the data plane ``plane`` (see the module doc for each)."""
    ann = _meta(pod, "annotations")
    if plane == "istio-ambient":
        return ann.get("ambient.istio.io/redirection") == "enabled"
    name = {"istio-sidecar": "istio-proxy", "linkerd": "linkerd-proxy", "osm": "envoy"}[plane]
    return name in _names(pod, "containers") | (_names(pod, "initContainers") if plane != "osm" else set())


def _meta(obj: Mapping[str, Any] | None, key: str) -> Mapping[str, str]:
    return _strings(_mapping(_mapping(obj).get("metadata")).get(key))


def enrolment(spec: Any, plane: str, namespace: Mapping[str, Any] | None,
              pod: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """Why the injector (or, ambient, the CNI) leaves ``pod`` (None: a pod without labels or
    annotations) in ``namespace`` out of the data plane, as ``(where, reason)`` with ``where``
    ``"namespace"`` or ``"pod"``; None when it enrols it. Rules in the module doc."""
    ns_labels, ns_ann = _meta(namespace, "labels"), _meta(namespace, "annotations")
    labels, ann = _meta(pod, "labels"), _meta(pod, "annotations")
    ns = _mapping(_mapping(namespace).get("metadata")).get("name")
    if plane == "istio-sidecar":
        revs, default = _istio_revisions(spec)
        inject = labels.get("sidecar.istio.io/inject", ann.get("sidecar.istio.io/inject"))
        if inject == "false":
            return "pod", 'it opts out with sidecar.istio.io/inject: "false"'
        injection, rev = ns_labels.get("istio-injection"), ns_labels.get("istio.io/rev")
        if injection == "enabled" and default:
            return None
        if injection is not None:
            why = (f"namespace {ns} is labelled istio-injection=enabled, which only the default revision's "
                   f"injector serves and which every revision's injector skips" if injection == "enabled"
                   else f"namespace {ns} is labelled istio-injection={injection}")
            return "namespace", why
        if rev is not None:
            return None if rev in revs else (
                "namespace", f"namespace {ns} is labelled istio.io/rev={rev}, which no injector of the stack "
                             f"serves (revisions and tag: {', '.join(sorted(revs))})")
        if labels.get("istio.io/rev") in revs or (inject == "true" and default):
            return None
        return "namespace", f"namespace {ns} has neither istio.io/rev nor istio-injection"
    if plane == "istio-ambient":
        mode = labels.get("istio.io/dataplane-mode")
        if mode == "none":
            return "pod", "it opts out with istio.io/dataplane-mode=none"
        if "sidecar.istio.io/status" in ann:
            return "pod", "it runs an Istio sidecar, which ambient never captures"
        if mode == "ambient" or ns_labels.get("istio.io/dataplane-mode") == "ambient":
            return None
        return "namespace", f"namespace {ns} is not labelled istio.io/dataplane-mode=ambient"
    if plane == "linkerd":
        pod_inject, ns_inject = ann.get("linkerd.io/inject"), ns_ann.get("linkerd.io/inject")
        if ns_inject in ("enabled", "ingress"):
            return None if pod_inject != "disabled" else ("pod", "it opts out with linkerd.io/inject: disabled")
        if pod_inject in ("enabled", "ingress"):
            return None
        return "namespace", f"namespace {ns} has no linkerd.io/inject: enabled annotation" + (
            f" (it says {ns_inject!r})" if ns_inject else "")
    # osm
    if ns_labels.get("openservicemesh.io/monitored-by") != spec.name or "openservicemesh.io/ignore" in ns_labels:
        got = ns_labels.get("openservicemesh.io/monitored-by")
        return "namespace", (f"namespace {ns} is not labelled openservicemesh.io/monitored-by={spec.name}"
                             + (f" (it says {got!r})" if got else "")
                             + (" or is labelled openservicemesh.io/ignore" if "openservicemesh.io/ignore" in ns_labels else ""))
    on_pod = str(ann.get("openservicemesh.io/sidecar-injection", "")).lower()
    on_ns = str(ns_ann.get("openservicemesh.io/sidecar-injection", "")).lower()
    if on_pod in ("enabled", "yes", "true"):
        return None
    if on_ns in ("enabled", "yes", "true"):
        return None if on_pod not in ("disabled", "no", "false") else (
            "pod", f"it opts out with openservicemesh.io/sidecar-injection: {on_pod}")
    return "namespace", f"namespace {ns} has no openservicemesh.io/sidecar-injection: enabled annotation"


def _enrol_fix(spec: Any, plane: str, namespace: str) -> str:
    """What to set on ``namespace`` (the stack's Namespace patch sets it on ``pulumi up``)."""
    if plane == "istio-sidecar":
        from ..meshes.istio import injection_revision

        rev = injection_revision(spec)
        what = (f"kubectl label namespace {namespace} istio.io/rev={rev} istio-injection-" if rev
                else f"kubectl label namespace {namespace} istio-injection=enabled")
    elif plane == "istio-ambient":
        what = f"kubectl label namespace {namespace} istio.io/dataplane-mode=ambient"
    elif plane == "linkerd":
        what = f"kubectl annotate namespace {namespace} linkerd.io/inject=enabled"
    else:
        what = (f"kubectl label namespace {namespace} openservicemesh.io/monitored-by={spec.name} and "
                f"kubectl annotate namespace {namespace} openservicemesh.io/sidecar-injection=enabled")
    return f"enrol it ({what}; the stack's Namespace patch sets it on `pulumi up`), then restart its workloads"


# ---------------------------------------------------------------------------------------------
# the checks


def _matches(selector: Iterable[tuple[str, str]], pod: Mapping[str, Any]) -> bool:
    labels = _meta(pod, "labels")
    return all(labels.get(k) == v for k, v in selector)


def _pod_names(pods: Sequence[Mapping[str, Any]]) -> str:
    names = sorted(str((p.get("metadata") or {}).get("name")) for p in pods)
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _labels_text(pairs: Iterable[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in pairs)


def _live(pod: Mapping[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _restart(pods: Sequence[Mapping[str, Any]], namespace: str) -> str:
    """``kubectl rollout restart`` of the pods' controllers (a ReplicaSet's Deployment is its name
    without the pod-template hash), else deleting the pods."""
    owners = set()
    for p in pods:
        for o in (p.get("metadata") or {}).get("ownerReferences") or []:
            kind, name = str(o.get("kind") or ""), str(o.get("name") or "")
            if kind == "ReplicaSet" and "-" in name:
                owners.add(f"deployment/{name.rsplit('-', 1)[0]}")
            elif kind in ("StatefulSet", "DaemonSet"):
                owners.add(f"{kind.lower()}/{name}")
    if owners:
        return f"kubectl rollout restart -n {namespace} {' '.join(sorted(owners))}"
    return f"kubectl delete pod -n {namespace} {' '.join(sorted(str((p.get('metadata') or {}).get('name')) for p in pods))}"


def _osm_workload(plane: str, w: Workload, service_selector: tuple[tuple[str, str], ...]) -> Workload:
    """``w`` selecting the pods by ``service_selector`` (the live Service's, sorted pairs) for an
    OSM service without versions whose live Service has one; else ``w`` as it is.

    OSM's policies name no pod labels: a TrafficTarget selects by ServiceAccount, and OSM maps a
    Service to its pods (and their accounts) by the live Service's selector (OSM v1.2.4
    pkg/k8s/client.go:223-246 ``ListServiceIdentitiesForService``, pkg/providers/kube/client.go:
    139-160 ``getServicesByLabels``), so ``app: <name>`` is not what the mesh needs. A version is
    selected by the ``<service>-<version>`` Service the mesh renders from the spec labels
    (``render.version_services``), so versions keep them, as Istio and Linkerd, whose policies
    select by the spec labels, do."""
    if plane != "osm" or w.version is not None or not service_selector:
        return w
    return replace(w, selector=service_selector, service_selector=service_selector)


def check_workloads(spec: Any, live: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Finding]:
    """Findings (module doc) for ``spec`` (a ``spec.MeshSpec``) against ``live``: cluster -> listed
    objects (Pods, trimmed or not; Namespaces; Services). Clusters absent from ``live`` (their
    Pods were not read) are skipped. Sorted by check, cluster and subject."""
    plane = data_plane_of(spec)
    mesh = DATA_PLANES[plane]
    out: list[Finding] = []
    by_cluster: dict[str, list[Workload]] = {}
    for w in expected_workloads(spec):
        by_cluster.setdefault(w.cluster, []).append(w)
    for cluster, workloads in sorted(by_cluster.items()):
        if cluster not in live:
            continue
        objects = live[cluster]
        pods: dict[str, list[Mapping[str, Any]]] = {}
        namespaces: dict[str, Mapping[str, Any]] = {}
        services: dict[tuple[str, str], Mapping[str, Any]] = {}
        for o in objects:
            if group_of(str(o.get("apiVersion") or "")):
                continue
            meta = _mapping(o.get("metadata"))
            if o.get("kind") == "Pod" and _live(o := trim_pod(o)):  # trimmed: the shape the checks read
                pods.setdefault(str(meta.get("namespace") or ""), []).append(o)
            elif o.get("kind") == "Namespace":
                namespaces[str(meta.get("name"))] = o
            elif o.get("kind") == "Service":
                services[(str(meta.get("namespace") or ""), str(meta.get("name")))] = o
        unenrolled: dict[str, tuple[str, set[str]]] = {}  # namespace -> (reason, subjects)
        seen: set[tuple[str, str]] = set()
        for w in workloads:
            ns_obj = namespaces.get(w.namespace)
            svc = services.get((w.namespace, w.service))
            # kept as it is, even with values that are not strings (then it selects nothing, as it would)
            selector = tuple(sorted(_mapping(_mapping(_mapping(svc).get("spec")).get("selector")).items(),
                                    key=lambda kv: str(kv[0])))
            w = _osm_workload(plane, w, selector)
            mine = [p for p in pods.get(w.namespace, []) if _matches(w.selector, p)]
            if selector and (w.namespace, w.service) not in seen:
                seen.add((w.namespace, w.service))
                stray = [p for p in pods.get(w.namespace, [])
                         if _matches(selector, p) and not _matches(w.service_selector, p)]
                if stray:
                    out.append(Finding("workload-selector", cluster, f"service {w.namespace}/{w.service}",
                                       f"Service {w.namespace}/{w.service} (selector {_labels_text(selector)}) sends "
                                       f"traffic to pods {_pod_names(stray)}, which lack {_labels_text(w.service_selector)}, "
                                       f"the labels the mesh's policies select, so no policy of the mesh governs them: "
                                       f"give those pods the labels, or set {w.path.split('.versions')[0]}.labels to "
                                       f"labels every pod of the service carries"))
            if not mine:
                hint = (f"; the Service's selector {_labels_text(selector)} selects "
                        f"{_pod_names([p for p in pods.get(w.namespace, []) if _matches(selector, p)])}: set "
                        f"{w.path}.labels to labels those pods carry"
                        if selector and any(_matches(selector, p) for p in pods.get(w.namespace, [])) else
                        f": deploy it in cluster {cluster}, give its pods these labels, or leave {cluster} out of "
                        f"{w.path}.clusters")
                out.append(Finding("workload-pods", cluster, w.subject,
                                   f"no running pod in namespace {w.namespace} carries {_labels_text(w.selector)} "
                                   f"({w.path}), so the mesh's policies and routes for it select nothing{hint}"))
            wrong = [p for p in mine if (p.get("spec") or {}).get("serviceAccountName", "default") != w.account]
            if wrong:
                accounts = sorted({str((p.get("spec") or {}).get("serviceAccountName", "default")) for p in wrong})
                out.append(Finding("workload-service-account", cluster, w.subject,
                                   f"pods {_pod_names(wrong)} run as service account {', '.join(accounts)}, not "
                                   f"{w.account} ({w.path.split('.versions')[0]}.serviceAccount, default the service "
                                   f"name): the mesh grants and admits by that identity, so their callers are "
                                   f"refused and their own calls denied; run them as {w.account} "
                                   f"(spec.serviceAccountName) or set serviceAccount: {accounts[0]}"))
            if ns_obj is not None:
                for p in mine or [None]:
                    why = enrolment(spec, plane, ns_obj, p)
                    if why and why[0] == "namespace":
                        unenrolled.setdefault(w.namespace, (why[1], set()))[1].add(w.subject)
                        break
            bare = [p for p in mine if not has_proxy(plane, p) and not (p.get("spec") or {}).get("hostNetwork")]
            host = [p for p in mine if not has_proxy(plane, p) and (p.get("spec") or {}).get("hostNetwork")]
            if host:
                out.append(Finding("workload-proxy", cluster, w.subject,
                                   f"pods {_pod_names(host)} use the host network, where no {mesh} proxy can run: "
                                   f"run them without hostNetwork"))
            opted = [(p, enrolment(spec, plane, ns_obj, p)) for p in bare]
            out_pods = [p for p, why in opted if why and why[0] == "pod"]
            if out_pods:
                reason = next(why[1] for p, why in opted if why and why[0] == "pod")
                out.append(Finding("workload-proxy", cluster, w.subject,
                                   f"pods {_pod_names(out_pods)} run without the {mesh} proxy: {reason}; remove "
                                   f"that from the pod template, so the mesh's policies apply to them"))
            stale = [p for p, why in opted if not why]
            if stale:
                what = ("are not captured by ztunnel (no ambient.istio.io/redirection: enabled annotation: "
                        "istio-cni has not redirected them; check the istio-cni-node pod on their nodes), "
                        if plane == "istio-ambient" else
                        f"have no {mesh} proxy container though the namespace enrols them (created before "
                        f"it was enrolled, or while the injector was down), ")
                out.append(Finding("workload-proxy", cluster, w.subject,
                                   f"pods {_pod_names(stale)} {what}so no mesh policy governs them; restart "
                                   f"them: {_restart(stale, w.namespace)}"))
        for ns, (reason, subjects) in sorted(unenrolled.items()):
            out.append(Finding("workload-namespace", cluster, f"namespace {ns}",
                               f"{reason}, so the {mesh} data plane leaves out the pods of "
                               f"{', '.join(sorted(subjects))}: {_enrol_fix(spec, plane, ns)}"))
    return sorted(out, key=lambda f: (f.check, f.cluster or "", f.subject, f.message))
