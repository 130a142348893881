"""Helpers for the drift tests: server-side noise, Helm storage Secrets, slot filling, dumps, and a
fake Kubernetes list API on 127.0.0.1.

The noise is what a real API server (v1.30+) and the usual controllers add to an applied object:
read from ``kubectl get -o yaml`` output of a kind cluster and from the API reference defaults.
"""
from __future__ import annotations

import base64
import copy
import functools
import gzip
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qs, urlparse

import yaml

from mesh_components.drift.diff import group_of
from mesh_components.drift.live import list_path
from mesh_components.core.slots import Slot, fill

FAKE_ROOT_PEM = ("-----BEGIN CERTIFICATE-----\n"
                 + base64.b64encode(b"fake root certificate for tests " * 4).decode() +
                 "\n-----END CERTIFICATE-----\n")
OTHER_ROOT_PEM = ("-----BEGIN CERTIFICATE-----\n"
                  + base64.b64encode(b"another root, another mesh      " * 4).decode() +
                  "\n-----END CERTIFICATE-----\n")


def slot_value(slot: Slot) -> str:
    """A stand-in for a deploy-time value: the same root for every cluster, per-cluster others."""
    if "bundle" in slot.key or "root" in slot.key:
        return FAKE_ROOT_PEM
    if "key" in slot.key:
        return f"-----BEGIN EC PRIVATE KEY-----\nkey-{slot.cluster}\n-----END EC PRIVATE KEY-----\n"
    if "pem" in slot.key or "cert" in slot.key or "chain" in slot.key:
        return ("-----BEGIN CERTIFICATE-----\n" + base64.b64encode(f"{slot.key} {slot.cluster}".encode()).decode()
                + "\n-----END CERTIFICATE-----\n")
    return f"deployed-{slot.source}-{slot.key}-{slot.cluster or 'mesh'}"


def deployed(value: Any) -> Any:
    """``value`` with every Slot replaced by what deployment would put there."""
    return fill(value, slot_value)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _managed_fields(obj: dict) -> list[dict]:
    return [{"apiVersion": obj.get("apiVersion"), "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, "f:spec": {".": {}}},
             "manager": "pulumi-kubernetes-a1b2c3", "operation": "Apply",
             "time": "2026-01-02T03:04:05Z"}]


def add_noise(obj: dict, index: int = 0) -> dict:
    """A copy of an applied ``obj`` as the API server returns it: metadata bookkeeping, status,
    and the defaults of its kind (deploy-time slots must be filled first, see :func:`deployed`)."""
    o = copy.deepcopy(obj)
    meta = o.setdefault("metadata", {})
    kind, group = o.get("kind"), group_of(o.get("apiVersion", ""))
    meta.update({"uid": f"0000-{index:08d}", "resourceVersion": str(1000 + index), "generation": 1,
                 "creationTimestamp": "2026-01-02T03:04:05Z", "managedFields": _managed_fields(o)})
    ann = meta.setdefault("annotations", {})
    ann["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(obj, sort_keys=True, default=str)
    if kind == "Namespace":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        o["spec"] = {"finalizers": ["kubernetes"]}
        o["status"] = {"phase": "Active"}
        meta.pop("generation")
    elif kind == "Service" and not group:
        spec = o.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec.get("clusterIP") != "None":
            spec["clusterIP"] = f"10.96.{index // 250 % 250}.{index % 250 + 1}"
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.update({"ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                     "internalTrafficPolicy": "Cluster", "sessionAffinity": "None"})
        for p in spec.get("ports", []):
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p["port"])
        o["status"] = {"loadBalancer": {}}
    elif kind == "Secret" and not group:
        data = dict(o.get("data") or {})
        for k, v in (o.pop("stringData", None) or {}).items():
            data[k] = _b64(v)
        o["data"] = data
        o.setdefault("type", "Opaque")
    elif kind == "ServiceAccount":
        pass
    elif group == "gateway.networking.k8s.io" and kind in ("HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute"):
        spec = o.setdefault("spec", {})
        for ref in spec.get("parentRefs", []):
            ref.setdefault("group", "gateway.networking.k8s.io")
            ref.setdefault("kind", "Gateway")
        if kind == "HTTPRoute" and not spec.get("rules"):
            spec["rules"] = [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]
        for rule in spec.get("rules", []):
            if kind == "HTTPRoute":
                rule.setdefault("matches", [{"path": {"type": "PathPrefix", "value": "/"}}])
            for b in rule.get("backendRefs", []):
                b.setdefault("group", "")
                b.setdefault("kind", "Service")
                b.setdefault("weight", 1)
            for f in rule.get("filters", []):
                if "requestRedirect" in f:
                    f["requestRedirect"].setdefault("statusCode", 302)
        o["status"] = {"parents": [{"controllerName": "istio.io/gateway-controller",
                                    "parentRef": (spec.get("parentRefs") or [{}])[0],
                                    "conditions": [{"type": "Accepted", "status": "True"}]}]}
    elif group == "gateway.networking.k8s.io" and kind == "Gateway":
        for ln in o.get("spec", {}).get("listeners", []):
            ln.setdefault("allowedRoutes", {"namespaces": {"from": "Same"}})
            if "tls" in ln:
                ln["tls"].setdefault("mode", "Terminate")
                for ref in ln["tls"].get("certificateRefs", []):
                    ref.setdefault("group", "")
                    ref.setdefault("kind", "Secret")
        o["status"] = {"addresses": [{"type": "IPAddress", "value": "203.0.113.10"}],
                       "conditions": [{"type": "Programmed", "status": "True"}]}
    elif kind == "Deployment":
        spec = o.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        pod = spec.setdefault("template", {}).setdefault("spec", {})
        pod.update({"restartPolicy": pod.get("restartPolicy", "Always"), "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler", "securityContext": {},
                    "terminationGracePeriodSeconds": pod.get("terminationGracePeriodSeconds", 30)})
        for c in pod.get("containers", []):
            c.setdefault("imagePullPolicy", "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
        ann["deployment.kubernetes.io/revision"] = "1"
        o["status"] = {"replicas": 1, "readyReplicas": 1}
    else:
        o["status"] = {}
    return o


def helm_secret(release: Any, revision: int = 1, status: str = "deployed", gzip_it: bool = True,
                values: dict | None = None, chart_version: str | None = None) -> dict:
    """The Helm storage Secret of ``release`` (a ``render.HelmRelease`` or a dict) at ``revision``."""
    get = (lambda k: release[k]) if isinstance(release, dict) else (lambda k: getattr(release, k))
    chart = str(get("chart")).rstrip("/").rpartition("/")[2]
    body = {"name": get("name"), "namespace": get("namespace"), "version": revision,
            "info": {"status": status, "first_deployed": "2026-01-02T03:04:05Z"},
            "chart": {"metadata": {"name": chart, "version": chart_version or get("version"),
                                   "appVersion": get("version")}, "values": {"defaults": True}},
            "config": deployed(get("values")) if values is None else values,
            "manifest": "---\n# manifest text\n"}
    raw = json.dumps(body).encode()
    encoded = base64.b64encode(gzip.compress(raw) if gzip_it else raw).decode()
    name = get("name")
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{name}.v{revision}", "namespace": get("namespace"),
                         "labels": {"name": name, "owner": "helm", "status": status, "version": str(revision)}},
            "data": {"release": _b64(encoded)}}


def live_from_desired(objects: Iterable[dict], releases: Iterable[Any] = ()) -> list[dict]:
    """What a cluster holds after a clean deploy: objects with noise, plus Helm storage Secrets,
    plus the Secrets the user creates before deploying (:func:`user_secret_objects`)."""
    objects, releases = list(objects), list(releases)
    out = [add_noise(deployed(o), i) for i, o in enumerate(objects)]
    out += [helm_secret(r) for r in releases]
    return out + user_secret_objects(objects, releases)


def user_secret_objects(objects: Iterable[dict], releases: Iterable[Any] = ()) -> list[dict]:
    """The Secrets the stack reads but the user supplies (``intent.user_secrets``: a listener's TLS
    Secret, DNS-01 credentials), as the user creates them, with every key their readers need."""
    from mesh_components.drift.intent import ClusterView, user_secrets

    return [{"apiVersion": "v1", "kind": "Secret", "type": kind or "Opaque",
             "metadata": {"name": name, "namespace": ns, "uid": f"user-{ns}-{name}", "resourceVersion": "7"},
             "data": {k: _b64(f"user value of {k}") for k in keys}}
            for ns, name, kind, keys, _ in user_secrets(ClusterView(list(objects), list(releases)))]


def write_dump(directory: Path, cluster: str, objects: list[dict], as_list: bool = True) -> Path:
    """``DIR/<cluster>.yaml`` as ``kubectl get -o yaml`` writes it (a ``kind: List``), or multi-doc."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{cluster}.yaml"
    if as_list:
        text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                               "items": objects}, sort_keys=False)
    else:
        text = yaml.safe_dump_all(objects, sort_keys=False)
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------
# a fake Kubernetes list API


class FakeApiServer:
    """Answers ``GET <list path>`` with ``{"kind": "<Kind>List", "apiVersion", "metadata", "items"}``
    for the objects it holds (items without apiVersion/kind, as typed lists do); 404 for kinds it
    does not serve; ``status`` overrides (path -> HTTP status). Pages with ``limit``/``continue``.
    A CustomResourceDefinition it holds is also answered by name (``<list path>/<name>``).
    ``requests`` records every path asked for."""

    def __init__(self, objects: Iterable[dict], served: Iterable[tuple[str, str]] = (),
                 status: dict[str, int] | None = None):
        self.served = list(served)
        self.set_objects(objects)
        self.status = dict(status or {})
        self.requests: list[str] = []
        self.auth: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                url = urlparse(self.path)
                server.requests.append(url.path)
                server.auth.append(self.headers.get("Authorization"))
                if url.path in server.status:
                    code = server.status[url.path]
                    return self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                             "message": f"forbidden: {url.path}", "code": code})
                if url.path in server.named:  # GET one object by name (live.read_crds)
                    return self._send(200, server.named[url.path])
                if url.path not in server.lists:
                    return self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                            "reason": "NotFound", "code": 404})
                av, kind, items = server.lists[url.path]
                q = parse_qs(url.query)
                limit = int(q.get("limit", ["0"])[0]) or len(items) or 1
                start = int(q.get("continue", ["0"])[0])
                page = items[start:start + limit]
                meta = {"resourceVersion": "4242"}
                if start + limit < len(items):
                    meta["continue"] = str(start + limit)
                self._send(200, {"kind": f"{kind}List", "apiVersion": av, "metadata": meta, "items": page})

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def set_objects(self, objects: Iterable[dict]) -> None:
        """Replace what the server holds (kinds in ``served`` answer with empty lists)."""
        lists: dict[str, tuple[str, str, list[dict]]] = {}
        for av, kind in self.served:
            lists.setdefault(list_path(av, kind), (av, kind, []))
        for o in objects:
            av, kind = o["apiVersion"], o["kind"]
            item = {k: v for k, v in o.items() if k not in ("apiVersion", "kind")}
            lists.setdefault(list_path(av, kind), (av, kind, []))[2].append(item)
        self.lists = lists
        self.named = {f"{list_path(o['apiVersion'], o['kind'])}/{o['metadata']['name']}": o for o in objects
                      if o["kind"] == "CustomResourceDefinition"}

    def __enter__(self) -> "FakeApiServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def write_kubeconfig(path: Path, servers: dict[str, str], current: str | None = None) -> Path:
    """A kubeconfig with one context per ``name -> server URL`` (token auth)."""
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": n, "cluster": {"server": url}} for n, url in servers.items()],
           "users": [{"name": f"{n}-user", "user": {"token": f"token-{n}"}} for n in servers],
           "contexts": [{"name": n, "context": {"cluster": n, "user": f"{n}-user"}} for n in servers],
           "current-context": current or next(iter(servers))}
    path.write_text(yaml.safe_dump(doc))
    return path


@contextmanager
def fake_clusters(live: dict[str, list[dict]], served: Iterable[tuple[str, str]] = ()) -> Iterator[dict[str, FakeApiServer]]:
    """One :class:`FakeApiServer` per cluster, started and stopped together."""
    servers = {c: FakeApiServer(objs, served) for c, objs in live.items()}
    for s in servers.values():
        s.__enter__()
    try:
        yield servers
    finally:
        for s in servers.values():
            s.__exit__(None, None, None)


# ---------------------------------------------------------------------------------------------
# a hand-made desired state, shaped like the renderer's output (two clusters, Istio)

MESH = "demo"


def _own(labels: dict | None = None) -> dict:
    return {"app.kubernetes.io/managed-by": "mesh-components", "mesh-components.io/mesh": MESH, **(labels or {})}


def sample_cluster(cluster: str, network: str = "net-1") -> dict[str, list]:
    """Desired objects and releases of one cluster of mesh :data:`MESH`."""
    objects = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "istio-system", "labels": _own({"topology.istio.io/network": network})}},
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "bookstore", "labels": _own({"istio.io/rev": "1-30"})}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "cacerts", "namespace": "istio-system", "labels": _own()},
         "stringData": {"root-cert.pem": Slot("ca", "trust_bundle_pem"),
                        "ca-cert.pem": Slot("ca", "cert_pem", cluster),
                        "ca-key.pem": Slot("ca", "key_pem", cluster, secret=True),
                        "cert-chain.pem": Slot("ca", "chain_pem", cluster)}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "bookstore", "namespace": "bookstore", "labels": _own()}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "bookstore-v1", "namespace": "bookstore", "labels": _own({"app": "bookstore"})},
         "spec": {"selector": {"app": "bookstore", "version": "v1"},
                  "ports": [{"name": "http", "port": 14001, "appProtocol": "http"}]}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "bookstore-v2", "namespace": "bookstore", "labels": _own({"app": "bookstore"})},
         "spec": {"selector": {"app": "bookstore", "version": "v2"},
                  "ports": [{"name": "http", "port": 14001, "appProtocol": "http"}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "bookstore-split", "namespace": "bookstore", "labels": _own()},
         "spec": {"parentRefs": [{"kind": "Service", "group": "", "name": "bookstore", "port": 14001}],
                  "rules": [{"backendRefs": [{"name": "bookstore-v1", "port": 14001, "weight": 90},
                                             {"name": "bookstore-v2", "port": 14001, "weight": 10}]}]}},
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": {"name": "default", "namespace": "istio-system", "labels": _own()},
         "spec": {"mtls": {"mode": "STRICT"}}},
        {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
         "metadata": {"name": "bookstore-allow-bookbuyer", "namespace": "bookstore", "labels": _own()},
         "spec": {"action": "ALLOW", "selector": {"matchLabels": {"app": "bookstore"}},
                  "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/bookbuyer/sa/bookbuyer"]}}],
                             "to": [{"operation": {"methods": ["GET"], "paths": ["/books-bought"]}}]}]}},
        {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
         "metadata": {"name": "bookstore-deny-others", "namespace": "bookstore", "labels": _own()},
         "spec": {"selector": {"matchLabels": {"app": "bookstore"}}}},
        {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
         "metadata": {"name": "book-publisher-api", "namespace": "istio-system", "labels": _own()},
         "spec": {"hosts": ["api.bookpublisher.example.com"], "location": "MESH_EXTERNAL",
                  "resolution": "DNS", "ports": [{"number": 443, "name": "tls-443", "protocol": "TLS"}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "ingress", "namespace": "mesh-ingress", "labels": _own()},
         "spec": {"gatewayClassName": "istio",
                  "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"},
                                {"name": "https", "port": 443, "protocol": "HTTPS",
                                 "tls": {"certificateRefs": [{"name": "bookstore-tls"}]}}]}},
    ]
    releases = [
        {"name": "istio-base", "namespace": "istio-system", "repository": "https://istio-release.storage.googleapis.com/charts",
         "chart": "base", "version": "1.30.3", "values": {"defaultRevision": "1-30"}},
        {"name": "istiod-1-30", "namespace": "istio-system", "repository": "https://istio-release.storage.googleapis.com/charts",
         "chart": "istiod", "version": "1.30.3",
         "values": {"revision": "1-30", "global": {"meshID": MESH, "network": network,
                                                    "multiCluster": {"clusterName": cluster}},
                    "meshConfig": {"trustDomain": "cluster.local",
                                   "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
                    "pilot": {"env": {"ISTIO_MULTIROOT_MESH": "false"}}}},
    ]
    return {"objects": objects, "releases": releases}


def sample_desired() -> dict[str, dict[str, list]]:
    """Two clusters, ``east`` and ``west``, on one network."""
    return {"east": sample_cluster("east"), "west": sample_cluster("west")}


def revision_tag_webhook(tag: str, rev: str) -> dict:
    """The MutatingWebhookConfiguration ``istioctl tag set``/the istiod chart writes for a tag."""
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": f"istio-revision-tag-{tag}",
                         "labels": {"istio.io/tag": tag, "istio.io/rev": rev, "app": "sidecar-injector"}},
            "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"],
                          "sideEffects": "None",
                          "clientConfig": {"service": {"name": f"istiod-{rev}", "namespace": "istio-system",
                                                       "path": "/inject"}, "caBundle": "Zm9v"}}]}


def injector_webhook(rev: str) -> dict:
    """The injector webhook the istiod chart installs for revision ``rev``."""
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": f"istio-sidecar-injector-{rev}", "labels": {"istio.io/rev": rev}},
            "webhooks": []}


SHARED_CRDS = Path(__file__).resolve().parents[2] / "shared" / "crds"


def installed_gateway_api_crds(state: Any) -> list[dict]:
    """The Gateway API CRDs a cluster holds after ``state`` (a ``render.ClusterState``) is deployed:
    the bundle of its remote manifest's channel, read from ../shared/crds/gateway-api/<channel>
    (Gateway API v1.6.1, verbatim upstream files; kubernetes-sigs/gateway-api
    ``hack/build-install-yaml.sh``: the release bundle is those files); none without a manifest."""
    from mesh_components.core.gateway_api import channel_of_url

    out = []
    for m in getattr(state, "remote_manifests", ()):
        out += copy.deepcopy(list(_bundle(channel_of_url(m.url))))
    return out


@functools.lru_cache(maxsize=None)
def _bundle(channel: str) -> tuple[dict, ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRD files are large
    return tuple(d for f in sorted((SHARED_CRDS / "gateway-api" / channel).glob("*.yaml"))
                 for d in yaml.load_all(f.read_text(), Loader=loader) if d)


def app_pods(spec: Any, cluster: str, native_sidecars: bool = False) -> list[dict]:
    """The running pods of every declared service (and version) in ``cluster`` of ``spec`` (a
    ``MeshSpec``), labelled and running as the spec says, and carrying the proxy the way each
    mesh's injector leaves it, at our pins:

    - Istio sidecar 1.30.3: container ``istio-proxy`` (``pkg/kube/inject/inject.go:79``) plus init
      container ``istio-init`` and annotation ``sidecar.istio.io/status``; as a native sidecar both
      are init containers (``pkg/kube/inject/testdata/inject/native-sidecar.yaml.injected``);
    - Istio ambient 1.30.3: annotation ``ambient.istio.io/redirection: enabled``, set by istio-cni
      (``cni/pkg/util/podutil.go:35-39,70-74``), no extra container;
    - Linkerd edge-26.8.3: container ``linkerd-proxy`` (``pkg/k8s/labels.go:365``) plus init
      container ``linkerd-init`` (``controller/proxy-injector/fake/data/pod.patch.json``); native:
      ``linkerd-proxy`` among the init containers (``pod.nativesidecar.patch.json``);
    - OSM v1.2.4: container ``envoy`` (``pkg/constants/constants.go:139``) and init container
      ``osm-init`` (``pkg/constants/constants.go:142``).
    """
    plane = spec.backend.type if spec.backend.type != "istio" else f"istio-{spec.backend.istio.data_plane}"
    out = []
    for s in spec.services:
        if cluster not in spec.service_clusters(s):
            continue
        labels = dict(s.labels) or {"app": s.name}
        versions = [(v.name, {**labels, **(dict(v.labels) or {"version": v.name})}) for v in s.versions
                    if not v.clusters or cluster in v.clusters] if s.versions else [(None, labels)]
        for version, pod_labels in versions:
            workload = f"{s.name}-{version}" if version else s.name
            containers, init, ann = [{"name": s.name, "image": f"example/{s.name}:1"}], [], {}
            if plane == "istio-sidecar":
                ann["sidecar.istio.io/status"] = '{"initContainers":["istio-init"],"containers":["istio-proxy"]}'
                proxy = {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.3"}
                init = [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.30.3"}]
                (init if native_sidecars else containers).append({**proxy, "restartPolicy": "Always"}
                                                                 if native_sidecars else proxy)
            elif plane == "istio-ambient":
                ann["ambient.istio.io/redirection"] = "enabled"
            elif plane == "linkerd":
                proxy = {"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-26.8.3"}
                init = [{"name": "linkerd-init", "image": "cr.l5d.io/linkerd/proxy-init"}]
                (init if native_sidecars else containers).insert(len(init) if native_sidecars else 0, proxy)
            else:
                containers.append({"name": "envoy", "image": "envoyproxy/envoy-distroless"})
                init = [{"name": "osm-init", "image": "openservicemesh/init:v1.2.4"}]
            out.append({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": f"{workload}-5d8f7c9b4-x2x7q", "namespace": s.namespace,
                                     "labels": {**pod_labels, "pod-template-hash": "5d8f7c9b4"},
                                     "annotations": ann, "uid": f"pod-{workload}",
                                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                          "name": f"{workload}-5d8f7c9b4", "controller": True}]},
                        "spec": {"serviceAccountName": s.service_account or s.name, "containers": containers,
                                 "initContainers": init, "nodeName": "node-1"},
                        "status": {"phase": "Running", "podIP": "10.244.1.7"}})
    return out


def fake_desired(monkeypatch, desired=None):
    """Make ``drift_cli`` see ``desired`` (default :func:`sample_desired`: cluster -> ``{"objects",
    "releases"}``) as the rendered stack ``demo``, whatever STACK is given; returns ``desired``."""
    from mesh_components.cli import drift_cli

    desired = desired or sample_desired()

    class Cluster:
        def __init__(self, name):
            self.name, self.kubeconfig = name, None

    class Spec:
        name = "demo"
        clusters = [Cluster(c) for c in desired]

    monkeypatch.setattr(drift_cli, "_desired", lambda stack: (Spec, "demo", desired))
    return desired
