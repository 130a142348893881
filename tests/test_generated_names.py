"""Generated names (issue 13, item 1): collision-free by construction, within the limits the API
server, Helm and the file system set, checked by ``validate`` at the spec field that causes them,
and unchanged for every shipped stack (no replacement for existing users).

Upstream rules relied on:
- object names are DNS-1123 subdomains of at most 253 characters, namespaces DNS-1123 labels and
  Services DNS-1035 labels of at most 63, label values at most 63
  (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/ ; kubernetes
  staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go ``DNS1123SubdomainMaxLength``,
  ``DNS1123LabelMaxLength``, ``LabelValueMaxLength``);
- Helm release names at most 53 characters (helm/helm pkg/chartutil/validate_name.go
  ``maxReleaseNameLen``); file names at most 255 bytes (Linux ``NAME_MAX``);
- a Pulumi URN is ``urn:pulumi:<stack>::<project>::<parent type>$<type>::<name>`` (pulumi/pulumi
  sdk/go/common/resource/urn/urn.go ``New``): the parent's type, not its name, so two resources of
  one type under components of one type need different names, and the engine refuses a duplicate
  (pkg/resource/deploy/step_generator.go ``generateURN``). Resource names are
  ``<component>:[<namespace>/]<name>`` (``components.resource_name``), injective whatever the
  neighbours; the readable names of the release before alias to them where they were unique.
"""
from __future__ import annotations

import copy
import json
import itertools
from collections import Counter

import pytest
import yaml

from mesh_components.core import gateway
from mesh_components.spec import names
from mesh_components.cli import main
from mesh_components.components import previous_names, previous_resource_name, resource_name
from mesh_components.spec.errors import SpecError
from mesh_components.spec.names import DNS1123_LABEL, DNS1123_SUBDOMAIN
from mesh_components.core.render import render_mesh, traffic_model
from mesh_components.spec import load_mesh, load_stack

from cp_helpers import program, run_recording, stack_mesh
from engine_urns import AliasSpec, engine_urns, is_new_component, match_old_state, qualified_type, readable_counterpart
from program_harness import FAKE_KUBECONFIG, ROOT, stack_config

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
NAMES_GOLDEN = ROOT / "tests" / "golden" / "names"
"""Per shipped stack, ``<cluster>/<file name>`` of every object as the release before generated
names were allocated rendered it (one line each, sorted). Regenerate only when a stack file changes:
the lines are the object identities existing users' stacks hold. (The telemetry objects the
stacks gained with ``mesh.telemetry``, issue 17, were added from the render: only added lines.)"""
HTTP = [{"port": 8080, "name": "http", "protocol": "http"}]


def rendered(mesh: dict):
    loaded = load_mesh(mesh, base_dir=ROOT)
    return loaded.spec, render_mesh(loaded)


def refused(mesh: dict) -> dict[str, str]:
    with pytest.raises(SpecError) as err:
        rendered(mesh)
    return dict(err.value.problems)


# --- the allocator --------------------------------------------------------------------------------

def test_unique_names_that_fit_are_kept():
    got = names.allocate([(("ns",), ("a",), "x-a", "f[0]"), (("ns",), ("b",), "x-b", "f[1]"),
                          (("other",), ("c",), "x-a", "f[2]")])
    assert got == {(("ns",), ("a",)): "x-a", (("ns",), ("b",)): "x-b", (("other",), ("c",)): "x-a"}


def test_every_member_of_a_colliding_group_is_hashed_whatever_the_order():
    requests = [(("ns",), ("a", "b-c"), "a-b-c", "r[0]"), (("ns",), ("a-b", "c"), "a-b-c", "r[1]"),
                (("ns",), ("a-b-c",), "a-b-c", "r[2]"), (("ns",), ("d",), "d", "r[3]")]
    results = [names.allocate(p) for p in itertools.permutations(requests)]
    assert all(r == results[0] for r in results)
    got = results[0]
    assert got[(("ns",), ("d",))] == "d"
    hashed = [got[(("ns",), i)] for i in (("a", "b-c"), ("a-b", "c"), ("a-b-c",))]
    assert len(set(hashed)) == 3
    assert all(n.startswith("a-b-c-") and len(n) == len("a-b-c-") + names.HASH_CHARS for n in hashed)
    # the same identity asked twice is one object with one name
    assert names.allocate(requests + [requests[3]]) == got


@pytest.mark.parametrize("limit,pattern", [(names.MAX_NAME, DNS1123_SUBDOMAIN), (names.MAX_LABEL, DNS1123_LABEL)])
def test_long_names_are_cut_to_the_limit_and_stay_valid(limit, pattern):
    # the cut falls right after a '-' or '.', which a DNS name may not end with
    for cut in ("-", ".") if pattern is DNS1123_SUBDOMAIN else ("-",):
        readable = "a" * (limit - names.HASH_CHARS - 2) + cut + "b" * 300
        name = names.allocate([((), ("x",), readable, "f")], limit=limit)[((), ("x",))]
        assert len(name) <= limit and pattern.match(name), name
        assert names.bounded(readable, ("x",), limit) == name  # the same rule for a name that cannot collide
    assert names.bounded("short", ("x",)) == "short"


def test_a_fixed_name_is_kept_and_the_others_of_its_group_move():
    got = names.allocate([(("ns",), ("unrestricted", "x"), "x-unrestricted", "mesh.services", True),
                          (("ns",), ("rule", "x", "unrestricted"), "x-unrestricted", "mesh.accessRules[0]")])
    assert got[(("ns",), ("unrestricted", "x"))] == "x-unrestricted"
    assert got[(("ns",), ("rule", "x", "unrestricted"))].startswith("x-unrestricted-")


def test_a_collision_that_remains_names_the_spec_fields_not_a_generated_name_alone():
    scope = ("ns",)
    taken = names.suffixed("x", (*scope, "a"))  # what "a" becomes once it collides with "b"
    with pytest.raises(SpecError) as err:
        names.allocate([(scope, ("a",), "x", "mesh.egress[0]"), (scope, ("b",), "x", "mesh.egress[1]"),
                        (scope, ("c",), taken, "mesh.egress[2]")])
    problems = err.value.problems
    assert {p for p, _ in problems} <= {"mesh.egress[0]", "mesh.egress[2]"} and problems
    assert all("mesh.egress[" in m for _, m in problems)


# --- two ingress routes to one service ------------------------------------------------------------

def _two_routes(stack: str) -> dict:
    mesh = stack_mesh(stack)
    if not mesh.get("ingress"):
        mesh["ingress"] = {"hosts": ["bookstore.example.com"], "routes": [
            {"pathPrefix": "/catalog", "service": "bookstore", "namespace": "bookstore", "port": 14001}]}
    first = mesh["ingress"]["routes"][0]
    mesh["ingress"]["routes"].append({**first, "pathPrefix": first["pathPrefix"].rstrip("/") + "/api"})
    return mesh


def _ingress_routes(spec, objects) -> list[dict]:
    return [o for o in objects if o["kind"] == "HTTPRoute" and o["apiVersion"].startswith("gateway.networking.k8s.io/")
            and o["metadata"]["namespace"] == spec.ingress.namespace
            and o["metadata"]["name"] != f"{spec.ingress.name}-https-redirect"]


@pytest.mark.parametrize("stack", STACKS)
def test_two_ingress_routes_to_one_service_render_and_each_routes_as_declared(stack, tmp_path):
    loaded = load_mesh(_two_routes(stack), base_dir=ROOT)
    spec, states, model = loaded.spec, render_mesh(loaded), traffic_model(loaded)
    split_backends = {(r.namespace, r.service): {b for b, _ in r.backends} for r in model.routes}
    for cluster in gateway.ingress_clusters(spec):
        routes = _ingress_routes(spec, states[cluster].objects)
        assert len(routes) == len(spec.ingress.routes)
        assert len({o["metadata"]["name"] for o in routes}) == len(routes)
        for rt in spec.ingress.routes:
            serving = [o for o in routes if o["spec"]["rules"][0]["matches"] == [
                {"path": {"type": "PathPrefix", "value": rt.path_prefix}}]]
            assert len(serving) == 1, rt
            refs = serving[0]["spec"]["rules"][0]["backendRefs"]
            assert {r["name"] for r in refs} <= {rt.service} | split_backends.get((rt.namespace, rt.service), set())
            assert {(r["namespace"], r["port"]) for r in refs} == {(rt.namespace, rt.port)}
        assert all(names.object_name_problem(o) is None for o in routes)
    # and the whole render is written, one file per object
    path = tmp_path / f"Pulumi.{stack}-two-routes.yaml"
    mesh = _two_routes(stack)
    mesh["smiFiles"] = [str(ROOT / f) for f in mesh.get("smiFiles", [])]
    path.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": mesh}}))
    assert main(["render", str(path), "--out", str(tmp_path / "out")]) == 0
    for cluster, st in states.items():
        written = {p.name for p in (tmp_path / "out" / cluster).rglob("*.yaml")}  # subfolders too (deploy-time/)
        assert set(names.object_filenames(st.objects)) <= written


# --- access rules a + b-c and a-b + c -------------------------------------------------------------

def _joined_rules(stack: str) -> dict:
    """Rules ``a`` (to ``b-c``) and ``a-b`` (to ``c``) in one namespace: ``<rule>-<destination>``
    is ``a-b-c`` for both."""
    mesh = stack_mesh(stack)
    ns = "bookstore"
    mesh["services"] += [{"name": n, "namespace": ns, "serviceAccount": n, "ports": HTTP} for n in ("b-c", "c")]
    src = [{"serviceAccount": "bookbuyer", "namespace": "bookbuyer"}]
    mesh["accessRules"] = list(mesh.get("accessRules") or []) + [
        {"name": "a", "namespace": ns, "destination": {"serviceAccount": "b-c"}, "sources": src,
         "http": [{"methods": ["GET"], "pathRegex": "/to-b-c"}]},
        {"name": "a-b", "namespace": ns, "destination": {"serviceAccount": "c"}, "sources": src,
         "http": [{"methods": ["GET"], "pathRegex": "/to-c"}]}]
    return mesh


def _targets(spec, policy: dict) -> str:
    """The spec service an Istio AuthorizationPolicy applies to (waypoint targetRefs or selector)."""
    s = policy["spec"]
    if "targetRefs" in s:
        return s["targetRefs"][0]["name"]
    labels = s["selector"]["matchLabels"]
    return next(x.name for x in spec.services if x.namespace == policy["metadata"]["namespace"]
                and x.pod_labels() == labels)


@pytest.mark.parametrize("stack", STACKS)
def test_rules_a_b_c_and_a_b_c_render_with_distinct_names(stack):
    spec, states = rendered(_joined_rules(stack))
    for cluster, st in states.items():
        objects = st.objects
        assert len({names.object_scope(o) + (o["metadata"]["name"],) for o in objects}) == len(objects)
        if spec.backend.type != "istio":
            continue
        by_path = {}
        for o in objects:
            if o["kind"] == "AuthorizationPolicy" and o["metadata"]["namespace"] == "bookstore":
                for rule in o["spec"].get("rules") or []:
                    for to in rule.get("to") or []:
                        for p in to["operation"].get("paths") or []:
                            by_path[p] = o
        if "/to-c" not in by_path:
            continue  # neither service runs in this cluster
        a, a_b = by_path["/to-b-c"], by_path["/to-c"]
        assert a["metadata"]["name"] != a_b["metadata"]["name"]
        assert all(o["metadata"]["name"].startswith("a-b-c-") for o in (a, a_b))
        assert (_targets(spec, a), _targets(spec, a_b)) == ("b-c", "c")


def test_linkerd_servers_of_service_a_port_b_c_and_service_a_b_port_c_are_distinct():
    mesh = stack_mesh("linkerd")
    ns = "bookstore"
    mesh["services"] += [
        {"name": "a", "namespace": ns, "serviceAccount": "a", "ports": [{"port": 8080, "name": "b-c", "protocol": "http"}]},
        {"name": "a-b", "namespace": ns, "serviceAccount": "a-b", "ports": [{"port": 9090, "name": "c", "protocol": "http"}]}]
    src = [{"serviceAccount": "bookbuyer", "namespace": "bookbuyer"}]
    mesh["accessRules"] = list(mesh.get("accessRules") or []) + [
        {"name": f"to-{sa}", "namespace": ns, "destination": {"serviceAccount": sa}, "sources": src, "tcp": {}}
        for sa in ("a", "a-b")]
    spec, states = rendered(mesh)
    for st in states.values():
        servers = {(o["spec"]["port"]): o for o in st.objects if o["kind"] == "Server"
                   and o["metadata"]["namespace"] == ns and o["spec"]["port"] in (8080, 9090)}
        if not servers:
            continue
        assert servers[8080]["metadata"]["name"] != servers[9090]["metadata"]["name"]
        assert servers[8080]["spec"]["podSelector"]["matchLabels"] == spec.services_by_key[(ns, "a")].pod_labels()
        assert servers[9090]["spec"]["podSelector"]["matchLabels"] == spec.services_by_key[(ns, "a-b")].pod_labels()
        # every policy still points at a Server that exists
        present = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in st.objects if o["kind"] == "Server"}
        for o in st.objects:
            ref = o.get("spec", {}).get("targetRef") if isinstance(o.get("spec"), dict) else None
            if o["kind"] == "AuthorizationPolicy" and ref and ref.get("kind") == "Server":
                assert (o["metadata"]["namespace"], ref["name"]) in present


def test_linkerd_servers_that_collide_in_no_cluster_keep_their_readable_names():
    """Service ``sa`` port ``b-c`` only on linkerd-east and ``sa-b`` port ``c`` only on linkerd-west
    both ask for ``sa-b-c``, but in different clusters: each keeps it (``linkerd_policy.server_names``
    per cluster), as the release before named them, and its routes and authorizations follow."""
    mesh = stack_mesh("linkerd")
    add = [("sa", "bookstore", "linkerd-east", "b-c"), ("sa-b", "bookstore", "linkerd-west", "c"),
           ("ca", "bookbuyer", "linkerd-east", "http"), ("cb", "bookbuyer", "linkerd-west", "http")]
    mesh["services"] += [{"name": n, "namespace": ns, "clusters": [c], "ports": [{"port": 8080, "name": p, "protocol": "http"}]}
                         for n, ns, c, p in add]
    mesh["accessRules"] = list(mesh.get("accessRules") or []) + [
        {"name": f"buyer-to-{d}", "namespace": "bookstore", "destination": {"serviceAccount": d},
         "sources": [{"serviceAccount": src, "namespace": "bookbuyer"}], "tcp": {}} for d, src in (("sa", "ca"), ("sa-b", "cb"))]
    _, states = rendered(mesh)
    for cluster, service in (("linkerd-east", "sa"), ("linkerd-west", "sa-b")):
        objects = [o for o in states[cluster].objects if o["metadata"].get("namespace") == "bookstore"]
        server = [o for o in objects if o["kind"] == "Server" and o["spec"]["port"] == 8080
                  and o["spec"]["podSelector"]["matchLabels"].get("app") == service]
        assert [o["metadata"]["name"] for o in server] == ["sa-b-c"], cluster
        refs = [o["spec"]["targetRef"]["name"] for o in objects if o["kind"] == "AuthorizationPolicy"
                and o["spec"]["targetRef"].get("kind") == "Server"]
        assert "sa-b-c" in refs, cluster


def test_egress_rule_with_two_hosts_and_a_rule_named_like_its_first_subset():
    mesh = stack_mesh("prod")  # sidecars: egress through the gateway, per-host subsets
    rule = copy.deepcopy(mesh["egress"][0])
    mesh["egress"] = [{**rule, "name": "api", "hosts": ["a.example.com", "b.example.com"]},
                      {**rule, "name": "api-0", "hosts": ["c.example.com"]}]
    _, states = rendered(mesh)
    for st in states.values():
        services = [o for o in st.objects if o["kind"] == "VirtualService" and o["metadata"]["namespace"] == "mesh-egress"]
        if not services:
            continue
        assert len({o["metadata"]["name"] for o in services}) == len(services) == 3
        rule_ = next(o for o in st.objects if o["kind"] == "DestinationRule" and o["metadata"]["name"] == "istio-egressgateway")
        subsets = {s["name"]: s for s in rule_["spec"]["subsets"]}
        assert len(subsets) == 3
        for vs in services:  # each host's traffic goes to the subset whose SNI is that host
            host = vs["spec"]["hosts"][0]
            used = {r["destination"]["subset"] for key in ("http", "tls", "tcp") for route in vs["spec"].get(key, [])
                    for r in route["route"] if "subset" in r["destination"]}
            assert used == {vs["metadata"]["name"]}
            assert {t["tls"]["sni"] for t in subsets[vs["metadata"]["name"]]["trafficPolicy"]["portLevelSettings"]} == {host}


def test_egress_subsets_that_collide_in_no_cluster_keep_their_readable_names():
    """Rule ``api`` (two hosts) with sources only in prod-aws and rule ``api-0`` only in prod-gcp:
    ``api-0`` is one cluster's host 0 of ``api`` and the other cluster's ``api-0``, never both in
    one cluster, so the VirtualServices, gateway subsets and TLS-origination DestinationRules keep
    the names the release before gave them (``egress.subset_names`` per cluster): no replacement."""
    mesh = stack_mesh("prod")
    mesh["services"] += [{"name": s, "namespace": "bookstore", "clusters": [c], "ports": HTTP}
                         for s, c in (("sa", "prod-aws"), ("sb", "prod-gcp"))]
    port = [{"port": 443, "protocol": "http", "tlsOrigination": {"appPort": 80}}]
    mesh["egress"] = [{"name": "api", "hosts": ["a.example.com", "b.example.com"], "ports": port,
                       "sources": [{"service": "sa", "namespace": "bookstore"}]},
                      {"name": "api-0", "hosts": ["c.example.com"], "ports": port,
                       "sources": [{"service": "sb", "namespace": "bookstore"}]}]
    _, states = rendered(mesh)
    expected = {"prod-aws": {"api-0": "a.example.com", "api-1": "b.example.com"}, "prod-gcp": {"api-0": "c.example.com"}}
    for cluster, hosts in expected.items():
        objects = [o for o in states[cluster].objects if o["metadata"].get("namespace") == "mesh-egress"]
        services = {o["metadata"]["name"]: o["spec"]["hosts"][0] for o in objects if o["kind"] == "VirtualService"}
        assert services == hosts, cluster
        rules = {o["metadata"]["name"]: o for o in objects if o["kind"] == "DestinationRule"}
        assert {n: r["spec"]["host"] for n, r in rules.items() if n != "istio-egressgateway"} == \
            {f"{n}-tls-origination": h for n, h in hosts.items()}
        assert {s["name"] for s in rules["istio-egressgateway"]["spec"]["subsets"]} == set(hosts)


# --- names the mesh fixes: a user's object asking for one moves, the mesh's keeps it -------------

def _named(objects, kind: str, namespace: str, prefix: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind
            and o["metadata"].get("namespace") == namespace and o["metadata"]["name"].startswith(prefix)}


def _hashed(name: str, readable: str) -> bool:
    return name.startswith(readable + "-") and len(name) == len(readable) + 1 + names.HASH_CHARS


def _principals(policy: dict) -> set[str]:
    return {p for r in policy["spec"].get("rules") or [] for f in r.get("from") or []
            for p in f["source"].get("principals") or []}


def test_an_access_rule_named_like_the_ambient_ingress_policy_moves_to_the_hashed_name():
    """Rule ``ingress-route-0`` to bookstore asks for ``ingress-route-0-bookstore``, the name of the
    policy admitting ingress route 0 (``gamma.authorization_identity``: its own identity, fixed)."""
    mesh = stack_mesh("dev")
    mesh["accessRules"].append({"name": "ingress-route-0", "namespace": "bookstore",
                                "destination": {"serviceAccount": "bookstore"},
                                "sources": [{"serviceAccount": "bookthief", "namespace": "bookthief"}],
                                "http": [{"methods": ["GET"], "pathRegex": "/thief"}]})
    spec, states = rendered(mesh)
    got = _named(states["dev"].objects, "AuthorizationPolicy", "bookstore", "ingress-route-0-bookstore")
    assert len(got) == 2
    ingress = got.pop("ingress-route-0-bookstore")
    (name, rule), = got.items()
    assert _hashed(name, "ingress-route-0-bookstore")
    assert {p.rsplit("/", 1)[-1] for p in _principals(ingress)} == {gateway.gateway_identity(spec)[1]}
    assert _principals(rule) == {"cluster.local/ns/bookthief/sa/bookthief"}


def test_an_egress_rule_named_like_the_egress_waypoint_deny_moves_to_the_hashed_name():
    mesh = stack_mesh("dev")  # ambient: the egress waypoint denies what no rule allows
    mesh["egress"].append({"name": "egress-waypoint-default-deny", "hosts": ["z.example.com"],
                           "ports": [{"port": 443, "protocol": "https"}],
                           "sources": [{"service": "bookbuyer", "namespace": "bookbuyer"}]})
    _, states = rendered(mesh)
    objects = states["dev"].objects
    got = _named(objects, "AuthorizationPolicy", "mesh-egress", "egress-waypoint-default-deny")
    deny = got.pop("egress-waypoint-default-deny")
    (name, rule), = got.items()
    assert _hashed(name, "egress-waypoint-default-deny")
    assert "rules" not in deny["spec"] and deny["spec"]["targetRefs"][0]["kind"] == "Gateway"
    assert rule["spec"]["targetRefs"] == [{"group": "networking.istio.io", "kind": "ServiceEntry",
                                           "name": "egress-waypoint-default-deny"}]
    assert _principals(rule) == {"cluster.local/ns/bookbuyer/sa/bookbuyer"}


def _linkerd_with(service: str, port: str, *, tcp: bool, probe_paths=None) -> dict:
    mesh = stack_mesh("linkerd")
    mesh.pop("telemetry", None)  # its bundled Prometheus needs the stack's scrapers, replaced below
    mesh["backend"]["linkerd"] = {**(mesh["backend"].get("linkerd") or {}),
                                  "scrapers": [{"serviceAccount": "prometheus", "namespace": "bookbuyer"}]}
    p = {"port": 4191 if port == "admin" else 9090, "name": port, "protocol": "http"}
    if probe_paths:
        p["probePaths"] = probe_paths
    mesh["services"].append({"name": service, "namespace": "bookstore", "ports": [p]})
    rule = {"name": f"to-{service}", "namespace": "bookstore", "destination": {"serviceAccount": service},
            "sources": [{"serviceAccount": "bookbuyer", "namespace": "bookbuyer"}]}
    rule.update({"tcp": {}} if tcp else {"http": [{"methods": ["GET"], "pathRegex": "/x"}]})
    mesh["accessRules"].append(rule)
    return mesh


@pytest.mark.parametrize("service,port,tcp,kind,taken", [
    ("proxy", "admin", False, "Server", "proxy-admin"),  # the scrape Server
    ("prometheus", "scrape", True, "AuthorizationPolicy", "prometheus-scrape"),  # the scrape policy
    ("proxy", "probes", True, "AuthorizationPolicy", "proxy-probes"),  # the proxy probes' policy
])
def test_a_linkerd_server_named_like_a_scrape_object_moves_to_the_hashed_name(service, port, tcp, kind, taken):
    """With ``backend.linkerd.scrapers``, ``linkerd viz allow-scrapes``' objects sit in every
    namespace with a Server; a Server ``<service>-<port>`` (and its TCP authorization, named after
    it) asking for one of their names is hashed (``linkerd.reserved_server_names``)."""
    spec, states = rendered(_linkerd_with(service, port, tcp=tcp))
    for st in states.values():
        servers = _named(st.objects, "Server", "bookstore", f"{service}-{port}")
        if not servers:
            continue
        (mine,) = [s for s in servers.values() if s["spec"]["port"] != "linkerd-admin"]
        assert _hashed(mine["metadata"]["name"], f"{service}-{port}")
        assert mine["spec"]["podSelector"]["matchLabels"] == spec.services_by_key[("bookstore", service)].pod_labels()
        scrape = _named(st.objects, kind, "bookstore", taken)[taken]
        assert scrape["metadata"]["name"] == taken and (kind == "Server" or
                                                        scrape["spec"]["targetRef"]["kind"] == "HTTPRoute")
        # every policy still points at an object that exists, and the user's Server is the one used
        linkerd = [o for o in st.objects if o["apiVersion"].startswith("policy.linkerd.io/")
                   and o["metadata"]["namespace"] == "bookstore"]
        present = {(o["kind"], o["metadata"]["name"]) for o in linkerd}
        refs = [o["spec"]["targetRef"] for o in linkerd if o["kind"] == "AuthorizationPolicy"]
        refs += [r for o in linkerd if o["kind"] == "HTTPRoute" for r in o["spec"]["parentRefs"]]
        assert all((r["kind"], r["name"]) in present for r in refs)
        assert {"kind": "Server", "name": mine["metadata"]["name"], "group": "policy.linkerd.io"} in refs


def test_a_linkerd_server_named_like_another_servers_probe_objects_moves_to_the_hashed_name():
    """Server ``x-http`` with routes and probePaths gets AuthorizationPolicy ``x-http-probes``;
    Server ``x-http-probes`` (service ``x-http`` port ``probes``) with a TCP rule would too."""
    mesh = _linkerd_with("x", "http", tcp=False, probe_paths=["/ready"])
    mesh["services"].append({"name": "x-http", "namespace": "bookstore",
                             "ports": [{"port": 9191, "name": "probes", "protocol": "http"}]})
    mesh["accessRules"].append({"name": "to-x-http", "namespace": "bookstore", "destination": {"serviceAccount": "x-http"},
                                "sources": [{"serviceAccount": "bookbuyer", "namespace": "bookbuyer"}], "tcp": {}})
    _, states = rendered(mesh)
    for st in states.values():
        probes = _named(st.objects, "AuthorizationPolicy", "bookstore", "x-http-probes")
        if not probes:
            continue
        assert probes.pop("x-http-probes")["spec"]["targetRef"] == {
            "group": "policy.linkerd.io", "kind": "HTTPRoute", "name": "x-http-probes"}
        (name,) = probes
        assert _hashed(name, "x-http-probes")


def test_two_objects_given_one_identity_are_two_objects_to_the_allocator():
    """``names.rename``: distinct objects of one scope and identity (an identity too coarse) get
    distinct names, never one name twice."""
    make = lambda: {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n"}}  # noqa: E731
    a, b, c = make(), make(), {**make(), "metadata": {"name": "y", "namespace": "n"}}
    names.rename([(a, ("same",), "mesh.f[0]"), (b, ("same",), "mesh.f[1]"), (c, ("other",), "mesh.f[2]")])
    assert a["metadata"]["name"] != b["metadata"]["name"] and all(_hashed(o["metadata"]["name"], "x") for o in (a, b))
    assert c["metadata"]["name"] == "y"


# --- limits ---------------------------------------------------------------------------------------

def test_longest_namespace_service_and_rule_names_give_valid_names_and_files():
    mesh = stack_mesh("dev")
    ns, svc, rule = "n" * 63, "s" * 63, ".".join(["r" * 62] * 4) + "r"
    assert len(rule) == 252
    mesh["namespaces"].append({"name": ns})
    mesh["services"].append({"name": svc, "namespace": ns, "serviceAccount": svc, "ports": HTTP})
    mesh["accessRules"].append({"name": rule, "namespace": ns, "destination": {"serviceAccount": svc},
                                "sources": [{"serviceAccount": "bookbuyer", "namespace": "bookbuyer"}],
                                "http": [{"methods": ["GET"], "pathRegex": "/x"}]})
    _, states = rendered(mesh)
    objects = states["dev"].objects
    assert [o for o in objects if names.object_name_problem(o)] == []
    policy = next(o for o in objects if o["kind"] == "AuthorizationPolicy" and o["metadata"]["name"].startswith(rule[:100]))
    assert len(policy["metadata"]["name"]) <= names.MAX_NAME
    files = names.object_filenames(objects)
    assert len(set(files)) == len(files) and max(len(f.encode()) for f in files) <= names.MAX_FILENAME
    assert names.object_filename(policy) in files


def test_a_long_mesh_name_is_a_spec_error_at_mesh_name_unless_the_clusters_name_their_network(tmp_path, capsys):
    mesh = stack_mesh("dev")
    mesh["name"] = "m" * 63
    problems = refused(mesh)
    assert "mesh.name" in problems and "network" in problems["mesh.name"]
    path = tmp_path / "Pulumi.long.yaml"
    mesh["smiFiles"] = [str(ROOT / f) for f in mesh["smiFiles"]]
    path.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": mesh}}))
    assert main(["validate", str(path)]) == 1
    assert "mesh.name: " in capsys.readouterr().err
    mesh["clusters"][0]["network"] = "dev-network"
    _, states = rendered(mesh)
    assert [o for o in states["dev"].objects if names.object_name_problem(o)] == []


def test_derived_names_over_their_limits_are_spec_errors_at_their_fields():
    mesh = stack_mesh("dev")
    mesh["services"][2]["versions"].append({"name": "v" * 60})  # bookstore-vvv...: over 63
    assert "over the 63 of a Service name" in refused(mesh)["mesh.services[2].versions[2].name"]
    mesh = stack_mesh("staging")
    mesh["backend"]["istio"] = {"dataPlane": "sidecar", "revisions": [{"name": "r" * 50}]}
    assert "53" in refused(mesh)["mesh.backend.istio.revisions[0].name"]


def test_version_services_of_two_services_with_one_name_are_refused_at_both_versions():
    mesh = stack_mesh("dev")
    mesh["services"] += [{"name": "a-b", "namespace": "bookstore", "ports": HTTP, "versions": [{"name": "c"}]},
                         {"name": "a", "namespace": "bookstore", "ports": HTTP, "versions": [{"name": "b-c"}]}]
    problems = refused(mesh)
    k = len(mesh["services"]) - 1
    assert f"mesh.services[{k - 1}]" in problems[f"mesh.services[{k}].versions[0].name"]


# --- shipped stacks keep every name ---------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_keeps_its_object_file_and_resource_names(stack):
    states = render_mesh(load_stack(stack, root=ROOT))
    lines = sorted(f"{c}/{f}" for c, st in states.items() for f in names.object_filenames(st.objects))
    assert lines == (NAMES_GOLDEN / f"{stack}.txt").read_text().split()
    for c, st in states.items():
        for component, concerns in COMPONENT_CONCERNS.items():
            objects = [o for concern in concerns for o in st.concerns[concern]]
            # every object's readable name of the release before is unique in its component: each
            # gets the alias from it (components.previous_names), so no stack sees a replacement
            assert len(previous_names(f"mesh-{c}-{component}", objects)) == len(objects)


COMPONENT_CONCERNS = {"control-plane": ("namespaces", "control-plane", "ca"), "policies": ("policy",),
                      "egress": ("egress",), "gateway": ("gateway",), "multicluster": ("multicluster",)}
"""Component (``components.ServiceMesh``: ``<mesh>-<cluster>-<key>``) -> the concerns it registers."""


# --- every Pulumi URN is unique -------------------------------------------------------------------

def _ambiguous_namespaces() -> dict:
    """Version Services ``a-b/c-v1`` and ``a/b-c-v1``: both ``...-service-a-b-c-v1`` as readable
    Pulumi names (namespace and name joined with '-')."""
    mesh = stack_mesh("dev")
    mesh["namespaces"] += [{"name": "a-b"}, {"name": "a"}]
    mesh["services"] += [{"name": "c", "namespace": "a-b", "ports": HTTP, "versions": [{"name": "v1"}]},
                         {"name": "b-c", "namespace": "a", "ports": HTTP, "versions": [{"name": "v1"}]}]
    return mesh


CASES = {**{s: (s, None) for s in STACKS},
         "dev-two-routes": ("dev", _two_routes("dev")), "prod-two-routes": ("prod", _two_routes("prod")),
         "dev-joined-rules": ("dev", _joined_rules("dev")), "dev-ambiguous-namespaces": ("dev", _ambiguous_namespaces())}


@pytest.fixture
def kube_env(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(FAKE_KUBECONFIG)
    monkeypatch.setenv("HOME", str(home))
    for var in ("STAGING_USE1_KUBECONFIG", "STAGING_USW2_KUBECONFIG"):
        monkeypatch.setenv(var, FAKE_KUBECONFIG)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_urn_is_unique(case, kube_env):
    base, mesh = CASES[case]
    reads: list = []
    regs = program(mesh if mesh is not None else stack_mesh(base), base, base=base, reads=reads)
    urns = list(engine_urns(regs, base).values())
    assert [u for u, n in Counter(urns).items() if n > 1] == []
    parent_type = {r.urn: qualified_type(u) for r, u in zip(regs, urns)}
    read_keys = [(parent_type.get(r.parent, ""), r.type, r.name) for r in reads]
    assert [k for k, n in Counter(read_keys).items() if n > 1] == []
    if case == "dev-ambiguous-namespaces":
        services = [r.name for r in regs if r.type == "kubernetes:core/v1:Service"]
        assert {"mesh-dev-policies:a-b/c-v1", "mesh-dev-policies:a/b-c-v1"} <= set(services)


def test_the_collision_cases_collide_without_allocation():
    """The specs above are real collisions: their readable names coincide."""
    spec, states = rendered(_ambiguous_namespaces())
    objects = states["dev"].concerns["policy"]
    readable = Counter(previous_resource_name("mesh-dev-policies", o) for o in objects)
    assert readable["mesh-dev-policies-service-a-b-c-v1"] == 2
    ing = load_mesh(_two_routes("dev"), base_dir=ROOT).spec.ingress
    assert len(ing.routes) == 2 and len({f"{ing.name}-{rt.namespace}-{rt.service}" for rt in ing.routes}) == 1
    rules = _joined_rules("dev")["accessRules"][-2:]
    assert {f"{r['name']}-{r['destination']['serviceAccount']}" for r in rules} == {"a-b-c"}


# --- resource names are injective: a neighbour never renames an object (review of issue 13) -------

def test_resource_names_are_injective_whatever_the_prefix_namespace_and_name():
    """``<component>:[<namespace>/]<name>`` reads back as one (component, namespace, name): no
    DNS-1123 name holds ':' or '/'. The readable names of the release before did not."""
    prefixes = ["mesh-a-policies", "mesh-a-b-policies", "mesh-a-policies-service"]
    spaces = [None, "b", "b-c", "c", "policies-service-b"]
    objects = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": n, **({"namespace": ns} if ns else {})}}
               for ns in spaces for n in ("c", "b-c", "x", "c-x")]
    got = Counter(resource_name(p, o) for p in prefixes for o in objects)
    assert len(got) == len(prefixes) * len(objects)
    assert max(Counter(previous_resource_name(p, o) for p in prefixes for o in objects).values()) > 1
    # a shared readable name (b-c/x and b/c-x): neither object gets an alias from it, the others do
    shared = {("b-c", "x"), ("b", "c-x")}
    got = previous_names("p", objects)
    assert {k[2:] for k in got} == {(o["metadata"].get("namespace") or "", o["metadata"]["name"]) for o in objects} - shared


def _one_neighbour() -> dict:
    """:func:`_ambiguous_namespaces` without ``a/b-c``: the stack before the neighbour arrives."""
    mesh = _ambiguous_namespaces()
    mesh["namespaces"] = [n for n in mesh["namespaces"] if n["name"] != "a"]
    mesh["services"] = [s for s in mesh["services"] if s["namespace"] != "a"]
    return mesh


def _recorded(mesh: dict, stack: str = "dev"):
    regs, requests = run_recording({**stack_config(stack), "service-mesh:mesh": json.dumps(mesh)}, stack)
    return regs, {r.urn: [AliasSpec.from_proto(a) for a in requests[r.urn].aliases] for r in regs}


def test_adding_a_colliding_neighbour_changes_no_urn(kube_env):
    """Service ``a/b-c-v1`` beside ``a-b/c-v1`` (the same readable name): every URN of the stack
    before it stays, so the update only creates the neighbour's resources."""
    before, _ = _recorded(_one_neighbour())
    after, _ = _recorded(_ambiguous_namespaces())
    old, new = set(engine_urns(before, "dev").values()), set(engine_urns(after, "dev").values())
    assert old < new
    assert {u.rsplit("::", 1)[1] for u in new - old if "$kubernetes:core/v1:Service::" in u} == {"mesh-dev-policies:a/b-c-v1"}


def test_upgrading_then_adding_a_colliding_neighbour_keeps_every_object_and_both_at_once_do_not(kube_env):
    """A stack of the release of readable names that holds ``a-b/c-v1`` (its state: each URN's
    ``readable_counterpart``, as test_program proves for every shipped stack). Upgrading alone
    finds every stored object through its alias; adding ``a/b-c-v1`` in a later update finds them
    under their own URNs. Both in one update: the two share the readable name, so neither has the
    alias (``components.previous_names``), and the stored Service would be created beside its old
    state, which pulumi-kubernetes refuses with AlreadyExists (README, upgrade notes)."""
    first, first_aliases = _recorded(_one_neighbour())
    stored = {readable_counterpart(u) for u in engine_urns(first, "dev").values()}
    found = match_old_state(first, first_aliases, stored, "dev")
    assert set(found.values()) == stored
    both, both_aliases = _recorded(_ambiguous_namespaces())
    upgraded = set(engine_urns(first, "dev").values())
    real = engine_urns(both, "dev")
    later = match_old_state(both, both_aliases, upgraded, "dev")
    assert {later[r.urn] for r in both if real[r.urn] in upgraded} == upgraded
    assert all(later[r.urn] in (real[r.urn], None) for r in both)  # by its own URN, no alias
    at_once = match_old_state(both, both_aliases, stored, "dev")
    lost = {urn for urn in stored if urn not in at_once.values()}
    assert [u.rsplit("::", 1)[1] for u in lost] == ["mesh-dev-policies-service-a-b-c-v1"]


READABLE_SERVICE_AND_PATCH = ROOT / "tests" / "golden" / "urns-readable-names" / "osm-service-beside-a-service-patch.txt"
"""Engine URNs the release of readable names (296bfc3) registered for :func:`_osm_service_beside_a_patch`,
recorded from that release's program (``git archive 296bfc3``, its ``tests/cp_helpers.py``
``run_recording`` with this config, then ``engine_urns.engine_urns``). It holds both
``...$kubernetes:core/v1:Service::mesh-osm-policies-service-a-b-c-v1`` (the version Service of
``a-b/c``) and ``...$kubernetes:core/v1:ServicePatch::mesh-osm-policies-service-a-b-c-v1`` (OSM's
appProtocol patch of ``a/b-c-v1``): one readable name, two types, two URNs."""


def _osm_service_beside_a_patch() -> dict:
    """The osm stack plus Service ``a-b/c`` (versions v1, v2: version Services ``c-v1``, ``c-v2``)
    and Service ``a/b-c-v1`` with a tcp port named ``http`` (an appProtocol ServicePatch)."""
    mesh = json.loads(stack_config("osm")["service-mesh:mesh"])
    mesh.pop("telemetry", None)  # the URNs stored (READABLE_SERVICE_AND_PATCH) predate telemetry
    if mesh.get("namespaces"):
        mesh["namespaces"] += [{"name": "a"}, {"name": "a-b"}]
    mesh["services"] += [{"name": "c", "namespace": "a-b", "ports": HTTP_80, "versions": [{"name": "v1"}, {"name": "v2"}]},
                         {"name": "b-c-v1", "namespace": "a", "ports": [{**HTTP_80[0], "protocol": "tcp"}]}]
    return mesh


HTTP_80 = [{"port": 80, "name": "http", "protocol": "http"}]


def test_a_service_and_a_service_patch_of_one_readable_name_both_find_their_state(kube_env):
    """Objects of one readable name but different types had different URNs in the release before
    (the type token is part of the URN), so that release stored both, and both keep their aliases
    (``components.previous_names`` keys collisions on the old URNs an alias claims). Without the
    alias the owned version Service would get a new URN, and pulumi-kubernetes would create it
    client-side beside the live one: AlreadyExists (v4.32.0 ``provider/pkg/await/await.go``
    ``Creation`` lines 241-253)."""
    regs, aliases = _recorded(_osm_service_beside_a_patch(), "osm")
    stored = set(READABLE_SERVICE_AND_PATCH.read_text().split())
    both = [u for u in stored if u.endswith("::mesh-osm-policies-service-a-b-c-v1")]
    assert sorted(qualified_type(u).rsplit("$", 1)[1] for u in both) == ["kubernetes:core/v1:Service",
                                                                          "kubernetes:core/v1:ServicePatch"]
    found = match_old_state(regs, aliases, stored, "osm")
    real = engine_urns(regs, "osm")
    # no create but the components no stored state can hold (engine_urns.NEW_PARENTS: the CA's)
    assert {r.urn: found[r.urn] for r in regs if found[r.urn] is None and not is_new_component(real[r.urn])} == {}
    assert [real[r.urn] for r in regs if found[r.urn] is None] == [
        "urn:pulumi:osm::service-mesh::mesh:index:ServiceMesh$mesh:index:MeshCertificateAuthority::mesh-ca"]
    assert set(found.values()) - {None} == stored  # no delete: every stored object is taken, each once
    by_name = {real[r.urn].rsplit("::", 1)[1]: found[r.urn] for r in regs if r.type.startswith("kubernetes:core/v1:Service")}
    assert by_name["mesh-osm-policies:a-b/c-v1"].endswith("$kubernetes:core/v1:Service::mesh-osm-policies-service-a-b-c-v1")
    assert by_name["mesh-osm-policies:a/b-c-v1"].endswith("$kubernetes:core/v1:ServicePatch::mesh-osm-policies-service-a-b-c-v1")


def test_objects_of_one_type_and_readable_name_still_get_no_alias():
    """The same type (two owned Services, or two ServicePatches) and readable name: one old URN,
    which either may have stored; neither gets the alias. A Service and a ServicePatch of that name
    do, each its own."""
    from mesh_components.core.meta import k8s_patch

    svc = lambda ns, n: {"apiVersion": "v1", "kind": "Service", "metadata": {"name": n, "namespace": ns}}  # noqa: E731
    patched = lambda ns, n: k8s_patch("v1", "Service", n, ns)  # noqa: E731
    got = previous_names("p", [svc("a-b", "c-v1"), svc("a", "b-c-v1")])
    assert got == {}
    got = previous_names("p", [patched("a-b", "c-v1"), patched("a", "b-c-v1")])
    assert got == {}
    got = previous_names("p", [svc("a-b", "c-v1"), patched("a", "b-c-v1")])
    assert got == {("", "Service", "a-b", "c-v1"): "p-service-a-b-c-v1", ("", "Service", "a", "b-c-v1"): "p-service-a-b-c-v1"}


def test_a_namespace_the_mesh_installs_into_is_refused_at_mesh_namespaces():
    mesh = stack_mesh("dev")
    mesh["namespaces"].append({"name": "istio-system"})
    mesh["services"].append({"name": "x", "namespace": "istio-system", "ports": HTTP})
    problem = refused(mesh)["mesh.namespaces"]
    assert "'istio-system'" in problem and "mesh.backend" in problem and "cluster dev" in problem


def test_two_concerns_making_one_object_name_both_spec_fields():
    route = lambda: {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",  # noqa: E731
                     "metadata": {"name": "x", "namespace": "shop"}, "spec": {}}
    other = {**route(), "apiVersion": "gateway.networking.k8s.io/v1beta1"}  # one resource at two versions
    problems = names.object_problems({"c1": {"policy": [route()], "gateway": [other]}, "c2": {"policy": [route()]}})
    assert len(problems) == 1
    path, message = problems[0]
    assert path == "mesh.accessRules" and "mesh.ingress" in message and "HTTPRoute shop/x" in message
    assert "(cluster c1)" in message
    bad = {**route(), "metadata": {"name": "x" * 254, "namespace": "shop"}}
    assert names.object_problems({"c1": {"egress": [bad]}})[0][0] == "mesh.egress"


def test_an_osm_retry_for_a_caller_with_the_longest_service_account_has_a_valid_name():
    mesh = stack_mesh("osm")
    account = ".".join(["a" * 62] * 4)  # 251 characters, a DNS-1123 subdomain
    mesh["services"].append({"name": "caller", "namespace": "bookbuyer", "serviceAccount": account, "ports": HTTP})
    mesh["accessRules"].append({"name": "caller-to-bookstore", "namespace": "bookstore",
                                "destination": {"serviceAccount": "bookstore"},
                                "sources": [{"serviceAccount": account, "namespace": "bookbuyer"}],
                                "http": [{"methods": ["GET"], "pathRegex": "/from-caller"}]})
    mesh["services"][2]["resilience"] = {"retries": {"attempts": 2, "perTryTimeout": "1s"}}
    _, states = rendered(mesh)
    retries = [o for o in states["osm"].objects if o["kind"] == "Retry"]
    long_ = [o for o in retries if o["spec"]["source"]["name"] == account]
    assert len(long_) == 1 and names.object_name_problem(long_[0]) is None
    assert {o["metadata"]["name"] for o in retries if o not in long_} == {"bookbuyer.bookstore.bookstore"}


def test_an_issuer_name_that_leaves_no_room_for_its_secret_is_refused_at_its_field():
    mesh = stack_mesh("staging")
    mesh["ingress"]["tls"]["issuer"]["name"] = ".".join(["i" * 62] * 4)  # 251: + "-account-key" is over 253
    problems = refused(mesh)
    assert "over the 253" in problems["mesh.ingress.tls.issuer.name"]
