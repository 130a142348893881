"""Ingress (issue 11, points 9 and 10): canary splits at the edge, and certificates for a host that
several clusters serve.

Upstream read at the pinned versions:
- Gateway API v1.6.1 site/content/en/docs/mesh/mesh-overview.md ("Request Flow": a Service-parented
  route is applied where "the mesh data plane intercepts the request"); Istio 1.30.3
  pilot/pkg/config/kube/gateway/gateway_collection.go:454-466 (a Service parent is the internal
  parent ``mesh``, which gateway deployments do not read); Envoy Gateway v1.9.0
  internal/gatewayapi/helpers.go:126-145 (only its own Gateways are parents). So the ingress route
  must carry the split itself;
- SMI traffic-split v1alpha1 "Ports" (a backend without the root's port is not included), as
  ``gamma.WeightedRoute.backends_on`` reads it;
- Envoy Gateway v1.9.0 ``routingType: Service``: internal/gatewayapi/route.go:3116-3129 (one
  endpoint, the cluster IP, per backendRef), internal/xds/translator/cluster.go:880-913, 1049-1056
  (each backendRef a locality weighted by its weight), route.go:433-439 (a backendRef's URLRewrite
  hostname becomes that weighted cluster's ``host_rewrite_literal``);
- Istio 1.30.3 pilot/pkg/networking/core/httproute.go:559-590, 619-714 (a sidecar routes HTTP by
  Host, matching a Service's names, ``<svc>.<ns>`` and ``<svc>.<ns>.svc`` from another namespace);
- OSM v1.2.4 pkg/envoy/lds/response.go:61-66, lds/ingress.go:84-91 (one ingress filter chain per
  Service of a pod, matched on port and source IPs only), pkg/policy/client.go:88-108;
- cert-manager v1.21.1: ClusterIssuer CRD ``spec.acme.solvers[].dns01`` (../shared/crds/cert-manager),
  pkg/issuer/acme/dns/dns.go (credentials read as ``data[key]`` in the cluster resource namespace,
  pkg/controller/helper.go:39-47), https://cert-manager.io/docs/configuration/acme/http01/ (the CA
  fetches the token from the address DNS gives);
- Gateway API v1.6.1 apis/v1/gateway_types.go:606 (a listener's Secret is ``kubernetes.io/tls``),
  :1591-1602 (a missing one: ``ResolvedRefs`` False, ``InvalidCertificateRef``).
"""
from __future__ import annotations

import base64
import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from mesh_components.core import gamma
from mesh_components.cli import main
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.drift.intent import ClusterView, check_user_secrets
from mesh_components.core.render import render_mesh, write_tree
from mesh_components.spec import load_mesh, load_stack, topology_warnings

from cp_helpers import stack_mesh
from policy_eval import Request, istio_allows, linkerd_allows
from program_harness import ROOT
from test_gateway import linkerd_mesh, with_ingress

TOOLS = ROOT.parent / "shared" / "tools"
TD = "cluster.local"
SPLIT = yaml.safe_load((ROOT / "policies" / "smi" / "bookstore-split.yaml").read_text())
"""The canary every stack ships: bookstore 90/10 to bookstore-v1/bookstore-v2 (SMI v1alpha4)."""


def rendered(mesh: dict):
    loaded = load_mesh(mesh, base_dir=ROOT)
    return loaded.spec, render_mesh(loaded)


def refused(mesh: dict) -> dict[str, str]:
    with pytest.raises((SpecError, TranslationError)) as err:
        rendered(mesh)
    return dict(err.value.problems)


def ingress_routes(objects) -> list[dict]:
    return [o for o in objects if o["kind"] == "HTTPRoute" and o["metadata"]["namespace"] == "mesh-ingress"
            and o["metadata"]["name"] != "ingress-https-redirect"]


def smi_weighted_backends(doc: dict) -> list[tuple[str, int]]:
    return [(b["service"], int(b["weight"])) for b in doc["spec"]["backends"]]


# --- 9: the edge carries the split ------------------------------------------------------------

STACKS_WITH_INGRESS = {
    "dev": lambda: stack_mesh("dev"),              # Istio's gateway, ambient
    "prod": lambda: stack_mesh("prod"),            # Istio's gateway, sidecars, three networks
    "staging": lambda: stack_mesh("staging"),      # Envoy Gateway, Istio sidecars
    "linkerd": linkerd_mesh,                       # Envoy Gateway, Linkerd
    "osm": lambda: with_ingress("osm"),            # Envoy Gateway outside the mesh
}


@pytest.mark.parametrize("stack", sorted(STACKS_WITH_INGRESS))
def test_ingress_route_carries_the_split_backends_and_exact_weights(stack):
    """Before: every ingress route named the root Service, so the edge sent traffic to every pod of
    bookstore (v1 and v2 alike) and the 90/10 canary held only for mesh clients."""
    spec, states = rendered(STACKS_WITH_INGRESS[stack]())
    want = smi_weighted_backends(SPLIT)
    for cluster, st in states.items():
        routes = ingress_routes(st.objects)
        if cluster not in (spec.ingress.clusters or spec.cluster_names()):
            assert routes == []
            continue
        (route,) = routes
        (rule,) = route["spec"]["rules"]
        got = [(r["name"], r["weight"]) for r in rule["backendRefs"]]
        assert got == want, (cluster, rule["backendRefs"])
        assert {(r["namespace"], r["port"]) for r in rule["backendRefs"]} == {("bookstore", spec.ingress.routes[0].port)}
        # the same weights the mesh's own split uses (where the mesh renders it as a GAMMA route)
        mesh_split = [o for o in st.objects if o["kind"] == "HTTPRoute" and o["metadata"]["name"] == "bookstore-split"]
        for o in mesh_split:
            assert [(b["name"], b["weight"]) for b in o["spec"]["rules"][0]["backendRefs"]] == want
        # every backendRef resolves: the per-version Services exist in every ingress cluster, and the
        # ReferenceGrant in their namespace admits Services of any name
        services = {o["metadata"]["name"] for o in st.objects if o["kind"] == "Service"
                    and o["metadata"]["namespace"] == "bookstore"}
        assert {n for n, _ in want} <= services
        grant = next(o for o in st.objects if o["kind"] == "ReferenceGrant" and o["metadata"]["namespace"] == "bookstore")
        assert grant["spec"]["to"] == [{"group": "", "kind": "Service"}]


def test_v1alpha1_quantity_weights_reach_the_edge_exactly(tmp_path):
    """SMI v1alpha1 weights are quantities (``1`` = ``1000m``): the edge gets the same exact
    integers as the mesh's split route, not a rounding of its own."""
    (tmp_path / "split.yaml").write_text(yaml.safe_dump({
        "apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
        "metadata": {"name": "bookstore-split", "namespace": "bookstore"},
        "spec": {"service": "bookstore", "backends": [{"service": "bookstore-v1", "weight": "1"},
                                                      {"service": "bookstore-v2", "weight": "250m"}]}}))
    mesh = stack_mesh("prod")
    mesh["smiFiles"] = [str(ROOT / "policies/smi/bookwarehouse-access.yaml"), str(ROOT / "policies/smi/mysql-access.yaml"),
                        str(tmp_path / "split.yaml")]
    _, states = rendered(mesh)
    st = states["prod-aws"]
    (route,) = ingress_routes(st.objects)
    edge = [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]]
    mesh_route = next(o for o in st.objects if o["kind"] == "HTTPRoute" and o["metadata"]["name"] == "bookstore-split")
    assert edge == [(b["name"], b["weight"]) for b in mesh_route["spec"]["rules"][0]["backendRefs"]]
    assert edge[0][1] == 4 * edge[1][1]


def two_port_mesh() -> dict:
    """prod with bookstore on two HTTP ports and a split to its v1 and to another service,
    bookstore-next, that has only one of them; the ingress routes to ``port``."""
    mesh = stack_mesh("prod")
    store = next(s for s in mesh["services"] if s["name"] == "bookstore")
    store["ports"] = [{"port": 14001, "name": "http", "protocol": "http"},
                      {"port": 8080, "name": "http-admin", "protocol": "http"}]
    mesh["services"].append({"name": "bookstore-next", "namespace": "bookstore",
                             "ports": [{"port": 14001, "name": "http", "protocol": "http"}]})
    mesh["smiFiles"] = [str(ROOT / "policies/smi/bookwarehouse-access.yaml"), str(ROOT / "policies/smi/mysql-access.yaml")]
    mesh["trafficSplits"] = [{"name": "bookstore-split", "namespace": "bookstore", "service": "bookstore",
                              "backends": [{"service": "bookstore-v1", "weight": 80},
                                           {"service": "bookstore-next", "weight": 20}]}]
    return mesh


@pytest.mark.parametrize("port,want", [(14001, [("bookstore-v1", 80), ("bookstore-next", 20)]),
                                       (8080, [("bookstore-v1", 80)])])
def test_each_port_gets_the_backends_that_serve_it(port, want):
    """SMI "Ports": a backend without the root's port is not included for that port."""
    mesh = two_port_mesh()
    mesh["ingress"]["routes"] = [{"pathPrefix": "/", "service": "bookstore", "namespace": "bookstore", "port": port}]
    _, states = rendered(mesh)
    (route,) = ingress_routes(states["prod-gcp"].objects)
    assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == want


# --- 9: who may call the Services the edge now calls --------------------------------------------

def pods_behind(spec, objects, namespace: str, service: str) -> tuple[str, dict[str, str]]:
    """``(service account, pod labels)`` of the pods a Service selects: a rendered Service (the
    per-version ones) by its selector, else the spec service (the application owns that Service)."""
    rendered_svc = next((o for o in objects if o["kind"] == "Service" and o["metadata"]["namespace"] == namespace
                         and o["metadata"]["name"] == service), None)
    if rendered_svc is not None:
        labels = rendered_svc["spec"]["selector"]
        owner = next(s for s in spec.services if s.namespace == namespace and s.pod_labels().items() <= labels.items())
        return owner.account, labels
    s = spec.services_by_key[(namespace, service)]
    return s.account, s.pod_labels()


def edge_requests(spec, objects, source, path: str):
    """One request per backendRef of the ingress route, as the gateway sends it."""
    (route,) = ingress_routes(objects)
    for ref in route["spec"]["rules"][0]["backendRefs"]:
        account, labels = pods_behind(spec, objects, ref["namespace"], ref["name"])
        s = next(x for x in spec.services if x.namespace == ref["namespace"] and x.account == account)
        target = next(p.target_port or p.port for p in s.ports if p.port == ref["port"])
        yield ref["name"], Request(source, ref["namespace"], ref["name"], account, tuple(sorted(labels.items())), target,
                                   http=True, method="GET", path=path, service_port=ref["port"])


def in_namespace(objects, namespace: str) -> list[dict]:
    """The objects of the destination's namespace (the evaluators refuse what they do not model,
    such as the egress gateway's EnvoyFilter elsewhere)."""
    return [o for o in objects if o["metadata"].get("namespace") == namespace]


def test_istio_sidecars_admit_the_ingress_gateway_on_every_backend_and_no_one_else():
    """Before: a split to another service (bookstore-next) sent the edge's 20% to pods whose policy
    did not admit the gateway (403 for a fifth of the requests)."""
    spec, states = rendered(two_port_mesh())
    everything = states["prod-azure"].objects
    objects = in_namespace(everything, "bookstore")
    gw, thief = ("mesh-ingress", "ingress-istio"), ("bookthief", "bookthief")
    calls = list(edge_requests(spec, everything, gw, "/any/path"))
    assert [name for name, _ in calls] == ["bookstore-v1", "bookstore-next"]
    for name, req in calls:
        assert istio_allows(objects, req, trust_domain=TD), name
        assert not istio_allows(objects, Request(thief, *[getattr(req, f) for f in (
            "namespace", "service", "service_account", "pod_labels", "port")], http=True, method="GET",
            path="/any/path"), trust_domain=TD), name
    # exactly the route's port: bookstore-next's policy admits the gateway on 14001 only
    ap = next(o for o in objects if o["kind"] == "AuthorizationPolicy" and o["metadata"]["name"] == "ingress-route-0-bookstore-next")
    assert ap["spec"]["selector"] == {"matchLabels": {"app": "bookstore-next"}}
    assert [r["to"][0]["operation"]["ports"] for r in ap["spec"]["rules"]] == [["14001"]]


def test_ambient_and_staging_admit_the_gateway_on_the_version_services():
    for stack, gw in (("dev", ("mesh-ingress", "ingress-istio")), ("staging", ("envoy-gateway-system", "ingress-envoy"))):
        loaded = load_stack(stack, root=ROOT)
        everything = next(iter(render_mesh(loaded).values())).objects
        objects = in_namespace(everything, "bookstore")
        waypoints = frozenset(o["metadata"]["namespace"] for o in objects
                              if o["kind"] == "Gateway" and o["spec"].get("gatewayClassName") == "istio-waypoint")
        for name, req in edge_requests(loaded.spec, everything, gw, "/books"):
            assert istio_allows(objects, req, trust_domain=TD, ambient_waypoint_namespaces=waypoints), (stack, name)


def test_linkerd_admits_the_gateway_on_the_version_services_for_its_prefix_only():
    spec, states = rendered(linkerd_mesh())
    objects = in_namespace(states["linkerd-east"].objects, "bookstore")
    gw = ("envoy-gateway-system", "ingress-envoy")
    calls = list(edge_requests(spec, states["linkerd-east"].objects, gw, "/catalog/1"))
    assert [name for name, _ in calls] == ["bookstore-v1", "bookstore-v2"]
    for name, req in calls:
        assert linkerd_allows(objects, req, trust_domain=TD), name
        other = Request(*[getattr(req, f) for f in ("source", "namespace", "service", "service_account", "pod_labels",
                                                     "port")], http=True, method="GET", path="/admin")
        assert not linkerd_allows(objects, other, trust_domain=TD), name


def osm_ingress_chains(spec, objects, pod_labels: dict[str, str], port: int) -> int:
    """How many ingress filter chains OSM v1.2.4 builds for a pod on ``port``: one per Service that
    selects the pod and is named, with that target port, by an IngressBackend of its namespace
    (pkg/envoy/lds/response.go:61-66, pkg/policy/client.go:88-108, pkg/catalog/ingress.go:41-44).
    Services: the rendered ones (per-version) and the application's (spec services)."""
    selectors = {o["metadata"]["name"]: o["spec"]["selector"] for o in objects if o["kind"] == "Service"
                 and o["metadata"]["namespace"] == "bookstore" and o.get("spec", {}).get("selector")}
    selectors.update({s.name: s.pod_labels() for s in spec.services if s.namespace == "bookstore"})
    named = {(b["name"], b["port"]["number"]) for o in objects if o["kind"] == "IngressBackend"
             and o["metadata"]["namespace"] == "bookstore" for b in o["spec"]["backends"]}
    return sum(1 for svc, sel in selectors.items() if sel.items() <= pod_labels.items() and (svc, port) in named)


def test_osm_ingress_backends_cover_every_pod_the_edge_calls_exactly_once():
    """Exactly one chain per pod: none would refuse the gateway, two with one match make Envoy refuse
    the whole inbound listener ("multiple filter chains with the same matching rules are defined",
    envoyproxy/envoy#6905)."""
    mesh = with_ingress("osm")
    mesh["services"].append({"name": "bookstore-next", "namespace": "bookstore",
                             "ports": [{"port": 14001, "name": "http", "protocol": "http"}]})
    mesh["smiFiles"] = [str(ROOT / "policies/smi/bookwarehouse-access.yaml"), str(ROOT / "policies/smi/mysql-access.yaml")]
    mesh["trafficSplits"] = [{"name": "bookstore-split", "namespace": "bookstore", "service": "bookstore",
                              "backends": [{"service": "bookstore-v1", "weight": 50}, {"service": "bookstore-v2", "weight": 30},
                                           {"service": "bookstore-next", "weight": 20}]}]
    spec, states = rendered(mesh)
    objects = states["osm"].objects
    for labels in ({"app": "bookstore", "version": "v1"}, {"app": "bookstore", "version": "v2"}, {"app": "bookstore-next"}):
        assert osm_ingress_chains(spec, objects, labels, 14001) == 1, labels


def test_envoy_gateway_behind_istio_sidecars_rewrites_the_host_per_backend():
    """The meshed Envoy Gateway keeps the client's Host; its sidecar matches the Host against the
    Service's names (httproute.go:559-590, 702-714), so each weighted backend names its Service."""
    def sidecar_domains(service: str, namespace: str, port: int) -> set[str]:
        fqdn = f"{service}.{namespace}.svc.cluster.local"
        short = f"{service}.{namespace}"   # another namespace than the gateway's: hostname[:ih] and + ".svc"
        return {fqdn, f"{fqdn}:{port}", short, f"{short}:{port}", f"{short}.svc", f"{short}.svc:{port}"}

    loaded = load_stack("staging", root=ROOT)
    (route,) = ingress_routes(render_mesh(loaded)["staging-use1"].objects)
    for ref in route["spec"]["rules"][0]["backendRefs"]:
        (f,) = ref["filters"]
        assert f["type"] == "URLRewrite" and set(f["urlRewrite"]) == {"hostname"}
        assert f["urlRewrite"]["hostname"] in sidecar_domains(ref["name"], ref["namespace"], ref["port"])
        assert loaded.spec.ingress.hosts[0] not in sidecar_domains(ref["name"], ref["namespace"], ref["port"])
    # Istio's own gateway routes by cluster, Linkerd by address, ztunnel at L4: no rewrite there
    for stack in ("prod", "dev", "linkerd", "osm"):
        _, states = rendered(STACKS_WITH_INGRESS[stack]())
        for st in states.values():
            assert all("filters" not in r for o in ingress_routes(st.objects) for r in o["spec"]["rules"][0]["backendRefs"])


def test_a_route_to_a_service_without_a_split_is_unchanged():
    mesh = stack_mesh("prod")
    mesh["ingress"]["routes"] = [{"pathPrefix": "/", "service": "bookwarehouse", "namespace": "bookwarehouse", "port": 14001}]
    _, states = rendered(mesh)
    (route,) = ingress_routes(states["prod-aws"].objects)
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "bookwarehouse", "namespace": "bookwarehouse", "port": 14001}]
    assert gamma.edge_backends(None, "bookwarehouse", 14001) == (("bookwarehouse", 1),)


# --- 10: one host, several clusters -------------------------------------------------------------

def staging_with(acme: dict | None = None, **ingress) -> dict:
    mesh = stack_mesh("staging")
    if acme is not None:
        mesh["ingress"]["tls"]["issuer"]["acme"] = acme
    mesh["ingress"].update(ingress)
    return mesh


HTTP01 = {"email": "platform@example.com", "server": "https://acme-staging-v02.api.letsencrypt.org/directory"}


def test_http01_is_refused_for_a_host_several_clusters_serve():
    """Before: both staging clusters rendered an HTTP-01 ClusterIssuer and a Certificate for the same
    host; only the cluster DNS points at could ever pass."""
    problems = refused(staging_with(HTTP01))
    message = problems["mesh.ingress.tls.issuer.acme"]
    assert "staging-use1, staging-usw2" in message and "bookstore.staging.example.com" in message
    for fix in ("acme.dns01", "cloudDNS", "route53", "azureDNS", "cloudflare", "ingress.clusters",
                "mesh-ingress/bookstore-staging-tls"):
        assert fix in message
    # one cluster serving the host: HTTP-01 through its Gateway, as before
    _, states = rendered(staging_with(HTTP01, clusters=["staging-use1"]))
    issuer = next(o for o in states["staging-use1"].objects if o["kind"] == "ClusterIssuer")
    assert issuer["spec"]["acme"]["solvers"] == [{"http01": {"gatewayHTTPRoute": {"parentRefs": [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "ingress", "namespace": "mesh-ingress"}]}}}]
    assert not [o for o in states["staging-usw2"].objects if o["kind"] in ("ClusterIssuer", "Certificate")]


DNS01 = {
    "cloudDNS": ({"project": "acme-dns", "hostedZoneName": "example-com",
                  "serviceAccountSecretRef": {"name": "clouddns-sa", "key": "key.json"}},
                 [("cert-manager", "clouddns-sa", ("key.json",))]),
    "route53": ({"region": "us-east-1", "hostedZoneID": "Z0123456789ABC", "role": "arn:aws:iam::123456789012:role/dns",
                 "accessKeyIDSecretRef": {"name": "r53", "key": "id"},
                 "secretAccessKeySecretRef": {"name": "r53", "key": "secret"}},
                [("cert-manager", "r53", ("id", "secret"))]),
    "azureDNS": ({"subscriptionID": "00000000-0000-0000-0000-000000000000", "resourceGroupName": "dns",
                  "hostedZoneName": "example.com", "environment": "AzurePublicCloud", "clientID": "app-id",
                  "tenantID": "tenant", "clientSecretSecretRef": {"name": "azure-dns", "key": "client-secret"}},
                 [("cert-manager", "azure-dns", ("client-secret",))]),
    "cloudflare": ({"apiTokenSecretRef": {"name": "cloudflare-token", "key": "api-token"}},
                   [("cert-manager", "cloudflare-token", ("api-token",))]),
}


@pytest.mark.parametrize("provider", sorted(DNS01))
def test_dns01_solvers_render_as_cert_manager_reads_them(provider, tmp_path):
    settings, secrets = DNS01[provider]
    spec, states = rendered(staging_with({**HTTP01, "dns01": {provider: settings}}))
    crd = yaml.safe_load((ROOT.parent / "shared/crds/cert-manager/cert-manager.io_clusterissuers.yaml").read_text())
    fields = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["acme"][
        "properties"]["solvers"]["items"]["properties"]["dns01"]["properties"][provider]["properties"]
    for cluster, st in states.items():
        issuer = next(o for o in st.objects if o["kind"] == "ClusterIssuer")
        assert issuer["spec"]["acme"]["solvers"] == [{"dns01": {provider: settings}}]
        assert set(settings) <= set(fields)          # every field is the CRD's own
        view = ClusterView(st.objects, st.releases)
        from mesh_components.drift.intent import user_secrets
        assert [(ns, name, keys) for ns, name, _, keys, _ in user_secrets(view)] == secrets
    if TOOLS.is_dir():
        write_tree(states, tmp_path / "out")
        v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--profile", "istio",
                            str(tmp_path / "out" / "staging-use1")], capture_output=True, text=True)
        assert v.returncode == 0 and " 0 invalid" in v.stdout.splitlines()[-1], v.stdout[-2000:]


@pytest.mark.parametrize("dns01,path,needle", [
    ({"route53": {"accessKeyIDSecretRef": {"name": "r53", "key": "id"}}}, "route53", "secretAccessKeySecretRef"),
    ({"cloudflare": {"apiTokenSecretRef": {"name": "a", "key": "t"}, "apiKeySecretRef": {"name": "b", "key": "k"},
                     "email": "a@b.co"}}, "cloudflare", "exactly one of apiTokenSecretRef"),
    ({"cloudflare": {"apiKeySecretRef": {"name": "b", "key": "k"}}}, "cloudflare", "email"),
    ({"azureDNS": {"subscriptionID": "s", "resourceGroupName": "g", "clientID": "c"}}, "azureDNS", "tenantID"),
    ({"route53": {}, "cloudDNS": {"project": "p"}}, "", "exactly one DNS provider"),
    ({"cloudDNS": {"project": "p", "serviceAccountSecretRef": {"name": "sa"}}}, "cloudDNS.serviceAccountSecretRef.key",
     ""),
    ({"route53": {"hostedZoneId": "Z1"}}, "route53.hostedZoneId", "hostedZoneID"),
])
def test_dns01_mistakes_name_the_field(dns01, path, needle):
    problems = refused(staging_with({**HTTP01, "dns01": dns01}))
    base = "mesh.ingress.tls.issuer.acme.dns01"
    hits = [m for p, m in problems.items() if p == (f"{base}.{path}" if path else base)]
    assert hits and needle in hits[0], problems


def test_validate_says_which_secrets_the_user_supplies_and_keeps_the_exit_code(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    for stack, lines in (("prod", ["mesh.ingress.tls.secretName: notice: Secret mesh-ingress/bookstore-tls is yours to "
                                   "create (type kubernetes.io/tls, keys tls.crt and tls.key"]),
                         ("staging", [f"mesh.ingress.tls.issuer.acme.dns01.route53.{f}: notice: Secret "
                                      f"route53-credentials with key '{k}' is yours to create in namespace cert-manager "
                                      f"of cluster(s) staging-use1, staging-usw2"
                                      for f, k in (("accessKeyIDSecretRef", "access-key-id"),
                                                   ("secretAccessKeySecretRef", "secret-access-key"))]),
                         ("dev", [])):
        warnings = topology_warnings(load_stack(stack, root=ROOT).spec)
        assert main(["validate", stack, "--strict"]) == (2 if warnings else 0)   # notices never fail --strict
        err = capsys.readouterr().err.splitlines()
        # the ingress's notices (the telemetry ones are tests/test_telemetry_*'s)
        notices = [ln for ln in err if ": notice: " in ln and not ln.endswith("[telemetry-prerequisite]")]
        assert len(notices) == len(lines), err
        for want in lines:
            assert any(ln.startswith(want) for ln in notices), (want, notices)


def live_views(states, drop=(), mutate=None):
    from diff_helpers import live_from_desired

    out = {}
    for c, st in states.items():
        objs = [o for o in live_from_desired(st.objects, st.releases)
                if not (o["kind"] == "Secret" and (o["metadata"]["namespace"], o["metadata"]["name"]) in drop)]
        if mutate:
            mutate(objs)
        out[c] = ClusterView(objs, [], True)
    return out


def test_diff_finds_a_missing_or_malformed_user_secret_and_names_the_fix():
    states = render_mesh(load_stack("prod", root=ROOT))
    desired = {c: ClusterView(st.objects, st.releases) for c, st in states.items()}
    assert check_user_secrets(desired, live_views(states)) == []
    missing = check_user_secrets(desired, live_views(states, drop={("mesh-ingress", "bookstore-tls")}))
    assert [(f.check, f.cluster, f.subject) for f in missing] == [
        ("user-secret", c, "Secret mesh-ingress/bookstore-tls") for c in sorted(states)]
    assert "does not exist" in missing[0].message
    assert "kubectl -n mesh-ingress create secret tls bookstore-tls" in missing[0].message

    def opaque_without_key(objs):
        s = next(o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == "bookstore-tls")
        s["type"] = "Opaque"
        s["data"] = {"tls.crt": base64.b64encode(b"only a certificate").decode()}

    (first, *_rest) = check_user_secrets(desired, live_views(states, mutate=opaque_without_key))
    assert "has type Opaque, not kubernetes.io/tls" in first.message

    def tls_without_key(objs):
        s = next(o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == "bookstore-tls")
        del s["data"]["tls.key"]

    findings = check_user_secrets(desired, live_views(states, mutate=tls_without_key))
    assert all("has no key tls.key" in f.message for f in findings) and len(findings) == 3
    assert all("user value of" not in f.message for f in findings)     # values are never printed
    # Secrets not read (a dump without them): nothing is claimed
    assert check_user_secrets(desired, {c: ClusterView([], [], False) for c in states}) == []


def test_diff_cli_reports_missing_dns_credentials_as_drift(tmp_path, capsys, monkeypatch):
    from diff_helpers import app_pods, installed_gateway_api_crds, live_from_desired, write_dump

    monkeypatch.chdir(ROOT)
    loaded = load_stack("staging", root=ROOT)
    for c, st in render_mesh(loaded).items():
        objs = live_from_desired(st.objects, st.releases) + installed_gateway_api_crds(st) + app_pods(loaded.spec, c)
        if c == "staging-usw2":
            objs = [o for o in objs if not (o["kind"] == "Secret" and o["metadata"]["name"] == "route53-credentials")]
        write_dump(tmp_path, c, objs)
    assert main(["diff", "staging", "--live", str(tmp_path), "--format", "json"]) == 2
    import json
    doc = json.loads(capsys.readouterr().out)
    assert [(f["check"], f["cluster"], f["subject"]) for f in doc["findings"]] == [
        ("user-secret", "staging-usw2", "Secret cert-manager/route53-credentials")]
    assert "kubectl -n cert-manager create secret generic route53-credentials --from-literal=access-key-id=<value> " \
           "--from-literal=secret-access-key=<value>" in doc["findings"][0]["message"]
