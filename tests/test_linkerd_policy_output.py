"""What ``linkerd_policy.policy_objects`` hands Linkerd beside the access routes themselves (issue 18):
the names users see in ``kubectl`` and Pulumi keys resources on, the GAMMA routes that carry
timeouts, retries and splits, the scrape objects of namespaces whose default is ``deny``, and the
refusals, word for word.

Upstream, as pinned (Linkerd edge-26.8.3, ``mesh_components/meshes/linkerd.py`` ``LINKERD_VERSION``;
stacks/Pulumi.linkerd.yaml "Linkerd edge 2026.8.3"):

- a ``Server``, ``HTTPRoute`` or ``AuthorizationPolicy`` is found by name within its namespace (an
  HTTPRoute's ``parentRefs``, an AuthorizationPolicy's ``targetRef``: policy-controller/k8s/api/src/
  policy/httproute.rs:228-238), so two objects of one kind and name in a namespace would be one to
  the API server: every rendered identity (group, kind, namespace, name) must be unique, and the
  names of a stack must stay what they were (a renamed object is a replaced Pulumi resource);
- ``linkerd viz allow-scrapes --help`` (viz/cmd/allow-scrapes.go:131): a namespace whose default
  inbound policy is ``deny`` refuses Prometheus' scrapes unless its objects are there, Server or not;
- timeouts and retries are a GAMMA HTTPRoute on the Service (``timeouts.request``,
  ``retry.linkerd.io/http``, ``/limit``, ``/timeout``: https://linkerd.io/2/reference/retries/,
  https://linkerd.io/2/reference/timeouts/); a Service port is routed by one GAMMA HTTPRoute, so a
  split of that Service moves into it (``resilience.linkerd_objects``: ``replaced``);
- a GAMMA split covers HTTP ports only (``gamma.tcp_split_problems``).

All fast: a small spec, ``render.traffic_model`` and ``policy_objects`` (or ``translate``), no Pulumi.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mesh_components.meshes import linkerd_policy
from mesh_components.spec import names
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.meta import ownership_labels
from mesh_components.core.render import traffic_model, translate
from mesh_components.spec import load_mesh

GATEWAY = "gateway.networking.k8s.io/v1"
MESH = "lk"


def http(name: str = "http", port: int = 8080, **more) -> list[dict]:
    return [{"port": port, "name": name, "protocol": "http", **more}]


def svc(name: str, namespace: str = "shop", ports=None, **more) -> dict:
    return {"name": name, "namespace": namespace, "ports": ports or http(), **more}


def rule(name: str, destination: str, sources=(("front", "client"),), namespace: str = "shop", **kind) -> dict:
    return {"name": name, "namespace": namespace, "destination": {"serviceAccount": destination},
            "sources": [{"serviceAccount": sa, "namespace": ns} for ns, sa in sources], **(kind or {"tcp": {}})}


def split(name: str, service: str, backends, namespace: str = "shop") -> dict:
    return {"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"service": service, "backends": [{"service": b, "weight": w} for b, w in backends]}}


def mesh(services, rules, tmp_path: Path, *, docs=(), clusters=("c1",), namespaces=None, scrapers=None,
         backend: str = "linkerd") -> dict:
    """A Linkerd mesh of ``services`` (plus the caller ``front/client``) and access ``rules``; SMI
    ``docs`` (splits) in a file beside it."""
    (tmp_path / "smi.yaml").write_text(yaml.safe_dump_all(list(docs)) if docs else "")
    services = list(services) + [svc("client", "front")]
    every = sorted({s["namespace"] for s in services})
    linkerd = {"linkerd": {"scrapers": [{"namespace": ns, "serviceAccount": sa} for ns, sa in scrapers]}} \
        if scrapers else {}
    return {"name": MESH, "backend": {"type": backend, **linkerd},
            "clusters": [{"name": c, "cloud": "onprem", "region": "lab",
                          **({"kubeconfig": {"env": f"KUBECONFIG_{c.upper()}"}} if len(clusters) > 1 else {})}
                         for c in clusters],
            "namespaces": namespaces if namespaces is not None else [{"name": n} for n in every],
            "services": services, "accessRules": list(rules), "smiFiles": ["smi.yaml"] if docs else []}


def rendered(m: dict, tmp_path: Path, cluster: str = "c1") -> list[dict]:
    loaded = load_mesh(m, base_dir=tmp_path)
    return linkerd_policy.policy_objects(loaded.spec, traffic_model(loaded), cluster)


def refusal(m: dict, tmp_path: Path, cluster: str = "c1", error=TranslationError) -> list[tuple[str, str]]:
    with pytest.raises(error) as err:
        rendered(m, tmp_path, cluster)
    return list(err.value.problems)


def ids(objects) -> list[tuple[str, str, str]]:
    return sorted((o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects)


def unique(objects) -> bool:
    """One object per identity (API group, kind, namespace, name), as the API server holds them."""
    return names.object_problems({"c1": {"policy": objects}}) == []


def find(objects, kind: str, name: str, namespace: str = "shop", group: str | None = None) -> dict:
    (got,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
              and o["metadata"]["namespace"] == namespace and (group is None or o["apiVersion"].startswith(group))]
    return got


def ref(kind: str, name: str) -> tuple[str, str]:
    """A reference as Linkerd's policy controller resolves it: kinds compared case-insensitively
    (edge-26.8.3 policy-controller/k8s/api/src/policy.rs:31-48 ``targets_kind``:
    ``eq_ignore_ascii_case``), names exactly."""
    return kind.lower(), name


def servers_of(objects, app: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objects if o["kind"] == "Server"
                  and o["spec"]["podSelector"].get("matchLabels", {}).get("app") == app)


# --- names: pinned for a small stack, unique, and every reference resolving -----------------------

GET_A = {"http": [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]}


def _names_mesh(tmp_path):
    """Access routes with probes, a service with a timeout and retries, and three splits whose GAMMA
    route names collide: split ``api`` (of ``web``) with the timeout route of service ``api``, and
    split ``b`` on a two-port service (``b-80``, ``b-8080``) with split ``b-80``."""
    services = [svc("api", ports=http(probePaths=["/ready"]),
                    resilience={"timeout": "5s", "retries": {"attempts": 2, "perTryTimeout": "1s",
                                                             "retryOn": ["5xx", "gateway-error"]}}),
                svc("web"), svc("web-v1"), svc("web-v2"),
                svc("shelf", ports=http("web", 80) + http("admin", 8080)), svc("shelf-v1", ports=http("web", 80) + http("admin", 8080)),
                svc("cart", ports=http("web", 80)), svc("cart-v1", ports=http("web", 80))]
    rules = [rule("to-api", "api", **GET_A)] + [rule(f"to-{d}", d) for d in ("web", "web-v1", "web-v2", "shelf",
                                                                            "shelf-v1", "cart", "cart-v1")]
    docs = [split("api", "web", [("web-v1", 9), ("web-v2", 1)]), split("b", "shelf", [("shelf-v1", 1)]),
            split("b-80", "cart", [("cart-v1", 1)])]
    return mesh(services, rules, tmp_path, docs=docs)


def test_the_names_of_a_small_linkerd_stack_stay_as_released_and_are_unique(tmp_path):
    """Exact names, as the release before gave them: readable where unique (``<service>-<port>``
    Servers, ``<server>-<8 hex digits of the match>`` access routes, ``<server>-probes``), hashed
    (``names.allocate``: ``-`` and 8 hex digits of the object's identity) where two GAMMA routes
    ask for one name. A changed name would make Pulumi replace the object; a name given twice
    would make the API server hold one object for two."""
    objects = rendered(_names_mesh(tmp_path), tmp_path)
    assert unique(objects)
    gamma = sorted(o["metadata"]["name"] for o in objects if o["apiVersion"] == GATEWAY)
    assert gamma == ["api-16598a4e", "api-2bac2052", "b-80-18f0895a", "b-80-ad73afe6", "b-8080"], gamma
    route = [o["metadata"]["name"] for o in objects if o["kind"] == "HTTPRoute"
             and o["apiVersion"].startswith("policy.linkerd.io/") and o["metadata"]["name"] != "api-http-probes"]
    assert route == ["api-http-6e2fe3e8"], route
    assert ids(o for o in objects if o["apiVersion"].startswith("policy.linkerd.io/")
               and o["metadata"]["name"].startswith("api-")) == [
        ("AuthorizationPolicy", "shop", "api-http-6e2fe3e8"), ("AuthorizationPolicy", "shop", "api-http-probes"),
        ("HTTPRoute", "shop", "api-http-6e2fe3e8"), ("HTTPRoute", "shop", "api-http-probes"),
        ("MeshTLSAuthentication", "shop", "api-http-6e2fe3e8"), ("NetworkAuthentication", "shop", "api-http-probes"),
        ("Server", "shop", "api-http")]
    # which colliding route is which: the timeout route of api, the split api of web, the splits b and b-80
    by_parent = {(o["spec"]["parentRefs"][0]["name"], o["spec"]["parentRefs"][0]["port"]): o["metadata"]["name"]
                 for o in objects if o["apiVersion"] == GATEWAY}
    assert by_parent == {("api", 8080): "api-2bac2052", ("web", 8080): "api-16598a4e", ("shelf", 80): "b-80-ad73afe6",
                         ("shelf", 8080): "b-8080", ("cart", 80): "b-80-18f0895a"}, by_parent
    # every object is the mesh's (ownership labels: what prune and diff select on)
    assert all(o["metadata"]["labels"] == ownership_labels(MESH) for o in objects)
    # every reference resolves to an object of the stack
    present = {ref(o["kind"], o["metadata"]["name"]) for o in objects if o["apiVersion"].startswith("policy.linkerd.io/")}
    refs = [o["spec"]["targetRef"] for o in objects if o["kind"] == "AuthorizationPolicy"]
    refs += [a for o in objects if o["kind"] == "AuthorizationPolicy" for a in o["spec"]["requiredAuthenticationRefs"]]
    refs += [p for o in objects if o["kind"] == "HTTPRoute" and o["apiVersion"].startswith("policy.linkerd.io/")
             for p in o["spec"]["parentRefs"]]
    assert refs and all(ref(r["kind"], r["name"]) in present for r in refs)


def test_an_access_route_is_named_by_its_server_and_the_match_it_holds(tmp_path):
    """``<server>-<first 8 hex digits of sha256 of the match key>``: the same match gives the same
    name in every render, another match another name."""
    def route_names(matches):
        objects = rendered(mesh([svc("api")], [rule("to-api", "api", http=matches)], tmp_path), tmp_path)
        return [o["metadata"]["name"] for o in objects if o["kind"] == "HTTPRoute"]

    import hashlib

    one = route_names([{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}])
    key = repr((["GET"], ("RegularExpression", "^(?:/a/.*)$"), ()))
    assert one == [f"api-http-{hashlib.sha256(key.encode()).hexdigest()[:8]}"] == ["api-http-6e2fe3e8"]
    assert route_names([{"name": "renamed", "methods": ["GET"], "pathRegex": "/a/.*"}]) == one
    other = route_names([{"name": "get-b", "methods": ["GET"], "pathRegex": "/b"}])
    assert len(other) == 1 and other != one and len(other[0]) == len("api-http-") + 8


# --- Server names: per cluster, and never one the mesh's own objects of the namespace have -------

def test_servers_colliding_in_no_cluster_keep_their_readable_names(tmp_path):
    """Service ``sa`` port ``b-c`` runs in c1 only, ``sa-b`` port ``c`` in c2 only: both ask for
    ``sa-b-c`` but never in one cluster, so each keeps it (``server_names`` per cluster: a Server's
    name is unique per namespace of one cluster, and nothing refers to another cluster's Servers);
    where both run, both move to hashed names."""
    services = [svc("sa", ports=http("b-c"), clusters=["c1"]), svc("sa-b", ports=http("c"), clusters=["c2"])]
    rules = [rule("to-sa", "sa"), rule("to-sa-b", "sa-b")]
    m = mesh(services, rules, tmp_path, clusters=("c1", "c2"))
    assert servers_of(rendered(m, tmp_path, "c1"), "sa") == ["sa-b-c"]
    assert servers_of(rendered(m, tmp_path, "c2"), "sa-b") == ["sa-b-c"]
    assert servers_of(rendered(m, tmp_path, "c1"), "sa-b") == []
    for s in m["services"][:2]:
        s["clusters"] = ["c1", "c2"]
    for cluster in ("c1", "c2"):
        objects = rendered(m, tmp_path, cluster)
        (a,), (b,) = servers_of(objects, "sa"), servers_of(objects, "sa-b")
        assert a != b and a.startswith("sa-b-c-") and b.startswith("sa-b-c-") and unique(objects), (a, b)
        # each Server's TCP authorization is named after it and targets it
        assert find(objects, "AuthorizationPolicy", a)["spec"]["targetRef"]["name"] == a


@pytest.mark.parametrize("service,port,tcp,kind,taken", [
    ("proxy", "admin", False, "Server", "proxy-admin"),  # the scrape Server
    ("prometheus", "scrape", True, "AuthorizationPolicy", "prometheus-scrape"),  # the scrape policy
    ("proxy", "probes", True, "AuthorizationPolicy", "proxy-probes"),  # the proxy probes' policy
])
def test_a_server_named_like_a_scrape_object_moves_to_the_hashed_name(service, port, tcp, kind, taken, tmp_path):
    """With scrapers, ``linkerd viz allow-scrapes``' objects sit in every namespace with a Server
    (``linkerd.scrape_objects``, names as upstream gives them); a Server ``<service>-<port>``
    asking for one of their names (or whose TCP authorization, named after it, would) is hashed,
    so both exist and the user's routes and authorizations point at the user's Server."""
    kind_of = {} if tcp else GET_A
    m = mesh([svc(service, ports=http(port))], [rule(f"to-{service}", service, **kind_of)], tmp_path,
             scrapers=[("mon", "prom")])
    objects = rendered(m, tmp_path)
    assert unique(objects)
    (mine,) = servers_of(objects, service)
    assert mine != f"{service}-{port}" and mine.startswith(f"{service}-{port}-") and len(mine) == len(service) + len(port) + 10
    scrape = find(objects, kind, taken)
    assert (scrape["spec"]["port"] == "linkerd-admin") if kind == "Server" else (
        ref(**{k: scrape["spec"]["targetRef"][k] for k in ("kind", "name")}) == ref("HTTPRoute", "proxy-metrics" if
                                                                                  taken == "prometheus-scrape" else taken))
    targets = {ref(o["spec"]["targetRef"]["kind"], o["spec"]["targetRef"]["name"]) for o in objects
               if o["kind"] == "AuthorizationPolicy"}
    targets |= {ref(p["kind"], p["name"]) for o in objects if o["kind"] == "HTTPRoute" for p in o["spec"]["parentRefs"]}
    assert ref("Server", mine) in targets


def test_a_server_named_like_another_servers_probe_objects_moves_to_the_hashed_name(tmp_path):
    """Server ``x-http`` has routes and probe paths, so its probe objects are ``x-http-probes``
    (``linkerd.probe_objects``); Server ``x-http-probes`` (service ``x-http``, port ``probes``) with
    a TCP rule would give its AuthorizationPolicy that name too: it is hashed, and the probe policy
    keeps targeting the probe route."""
    services = [svc("x", ports=http(probePaths=["/ready"])), svc("x-http", ports=http("probes", 9191))]
    objects = rendered(mesh(services, [rule("to-x", "x", **GET_A), rule("to-x-http", "x-http")], tmp_path), tmp_path)
    assert unique(objects)
    assert servers_of(objects, "x") == ["x-http"]
    (mine,) = servers_of(objects, "x-http")
    assert mine.startswith("x-http-probes-") and len(mine) == len("x-http-probes-") + 8
    assert find(objects, "AuthorizationPolicy", "x-http-probes")["spec"]["targetRef"] == {
        "group": "policy.linkerd.io", "kind": "HTTPRoute", "name": "x-http-probes"}
    target = find(objects, "AuthorizationPolicy", mine)["spec"]["targetRef"]
    assert target["group"] == "policy.linkerd.io" and ref(target["kind"], target["name"]) == ref("Server", mine)


def test_a_server_name_no_allocation_can_make_unique_is_refused_at_both_ports(tmp_path):
    """``a`` port ``b-c`` and ``a-b`` port ``c`` both ask for ``a-b-c`` and are hashed; a third port
    whose readable name is one of those hashed names (service ``a-b-c``, port named like the hash)
    cannot be told apart: refused, naming the two spec fields and the Server name
    (``names.allocate``), never rendered with one name for two Servers."""
    hashed = names.suffixed("a-b-c", ("shop", "a", "b-c"))
    suffix = hashed.rsplit("-", 1)[1]
    assert any(c.isalpha() for c in suffix), suffix  # a port name needs a letter
    services = [svc("a", ports=http("b-c")), svc("a-b", ports=http("c")), svc("a-b-c", ports=http(suffix))]
    m = mesh(services, [rule(f"to-{s['name']}", s["name"]) for s in services], tmp_path)
    assert refusal(m, tmp_path, error=SpecError) == [
        ("mesh.services[2].ports", f"generates the same Server name as mesh.services[0].ports (Server {hashed!r}); "
                                   f"rename one of them")]


# --- the scrape objects: wherever the default inbound policy is deny ------------------------------

def _scrape_ids(namespace):
    return [("AuthorizationPolicy", namespace, "prometheus-scrape"), ("AuthorizationPolicy", namespace, "proxy-probes"),
            ("HTTPRoute", namespace, "proxy-metrics"), ("HTTPRoute", namespace, "proxy-probes"),
            ("MeshTLSAuthentication", namespace, "prometheus-scrape"), ("NetworkAuthentication", namespace, "proxy-probes"),
            ("Server", namespace, "proxy-admin")]


def test_scrapers_are_admitted_in_every_deny_namespace_of_the_cluster_server_or_not(tmp_path):
    """``deny`` refuses Prometheus' scrapes of the proxies (allow-scrapes.go:131), Server or not:
    namespace ``quiet`` (declared ``deny``, no rule) and namespace ``shop`` in c1, where its only
    destination does not run (its annotation is ``deny`` in every cluster of the namespace), get
    the scrape objects; namespace ``front`` (no default set) and ``away`` (not in c1) do not."""
    services = [svc("api", clusters=["c2"]), svc("q", "quiet"), svc("w", "away")]
    namespaces = [{"name": "shop"}, {"name": "front"}, {"name": "quiet", "defaultInboundPolicy": "deny"},
                  {"name": "away", "clusters": ["c2"], "defaultInboundPolicy": "deny"}]
    m = mesh(services, [rule("to-api", "api")], tmp_path, clusters=("c1", "c2"), namespaces=namespaces,
             scrapers=[("front", "client")])
    c1 = rendered(m, tmp_path, "c1")
    assert ids(c1) == sorted(_scrape_ids("quiet") + _scrape_ids("shop"))
    auth = find(c1, "MeshTLSAuthentication", "prometheus-scrape", "quiet")
    assert auth["spec"]["identities"] == ["client.front.serviceaccount.identity.linkerd.cluster.local"]
    c2 = rendered(m, tmp_path, "c2")
    assert {ns for _, ns, name in ids(c2) if name == "proxy-admin"} == {"away", "quiet", "shop"}
    assert servers_of(c2, "api") == ["api-http"]


# --- timeouts, retries and splits on GAMMA routes --------------------------------------------------

def test_timeouts_and_retries_ride_on_the_one_gamma_route_of_the_port_with_its_split(tmp_path):
    """Service ``web`` has a timeout and retries and a 9:1 split: one GAMMA HTTPRoute per HTTP port
    on Service ``web`` carries the split's weights, ``timeouts.request`` and the retry annotations;
    the split is not rendered a second time (a Service port takes one GAMMA route). A service
    without resilience keeps its split route as is."""
    services = [svc("web", ports=http() + http("admin", 9090),
                    resilience={"timeout": "5s", "retries": {"attempts": 2, "perTryTimeout": "1s",
                                                             "retryOn": ["5xx", "gateway-error"]}}),
                svc("web-v1", ports=http() + http("admin", 9090)), svc("web-v2", ports=http()),
                svc("cart"), svc("cart-v1")]
    docs = [split("s", "web", [("web-v1", 9), ("web-v2", 1)]), split("t", "cart", [("cart-v1", 1)])]
    objects = rendered(mesh(services, [rule(f"to-{s['name']}", s["name"]) for s in services], tmp_path, docs=docs),
                       tmp_path)
    gamma = [o for o in objects if o["apiVersion"] == GATEWAY]
    assert unique(objects)
    assert sorted((o["metadata"]["name"], o["spec"]["parentRefs"][0]["name"], o["spec"]["parentRefs"][0]["port"])
                  for o in gamma) == [("s-8080", "web", 8080), ("s-9090", "web", 9090), ("t", "cart", 8080)]
    retry = {"retry.linkerd.io/http": "5xx,gateway-error", "retry.linkerd.io/limit": "2", "retry.linkerd.io/timeout": "1s"}
    web = find(objects, "HTTPRoute", "s-8080", group="gateway.networking.k8s.io")
    assert web["metadata"]["annotations"] == retry
    assert web["spec"] == {"parentRefs": [{"group": "", "kind": "Service", "name": "web", "port": 8080}],
                           "rules": [{"backendRefs": [{"name": "web-v1", "port": 8080, "weight": 9},
                                                      {"name": "web-v2", "port": 8080, "weight": 1}],
                                      "timeouts": {"request": "5s"}}]}
    admin = find(objects, "HTTPRoute", "s-9090", group="gateway.networking.k8s.io")
    assert admin["spec"]["rules"] == [{"backendRefs": [{"name": "web-v1", "port": 9090, "weight": 9}],
                                       "timeouts": {"request": "5s"}}]
    cart = find(objects, "HTTPRoute", "t", group="gateway.networking.k8s.io")
    assert "annotations" not in cart["metadata"] and cart["spec"]["rules"] == [
        {"backendRefs": [{"name": "cart-v1", "port": 8080, "weight": 1}]}]


def test_a_timeout_of_a_service_of_another_cluster_is_not_rendered_here_and_its_own_is(tmp_path):
    """Resilience follows the service's clusters: ``api`` (c1 only) gets its timeout route in c1,
    none in c2; ``web`` (both) in both."""
    services = [svc("api", clusters=["c1"], resilience={"timeout": "2s"}), svc("web", resilience={"timeout": "3s"})]
    m = mesh(services, [rule("to-web", "web")], tmp_path, clusters=("c1", "c2"))
    for cluster, want in (("c1", {"api": "2s", "web": "3s"}), ("c2", {"web": "3s"})):
        got = {o["metadata"]["name"]: o["spec"]["rules"][0]["timeouts"]["request"]
               for o in rendered(m, tmp_path, cluster) if o["apiVersion"] == GATEWAY}
        assert got == want, cluster


def test_a_split_of_another_cluster_is_not_rendered_here(tmp_path):
    """A split whose services run in c2 only has no route in c1."""
    services = [svc("web", clusters=["c2"]), svc("web-v1", clusters=["c2"])]
    m = mesh(services, [rule("to-web", "web")], tmp_path, clusters=("c1", "c2"),
             docs=[split("s", "web", [("web-v1", 1)])])
    assert [o for o in rendered(m, tmp_path, "c1") if o["apiVersion"] == GATEWAY] == []
    assert [o["metadata"]["name"] for o in rendered(m, tmp_path, "c2") if o["apiVersion"] == GATEWAY] == ["s"]


# --- refusals: all of them at once, word for word --------------------------------------------------

CIRCUIT = ("mesh.services[0].resilience.circuitBreaker",
           "Linkerd has no connection-pool limits; remove it for this mesh (Linkerd sheds load with its own queues)")


def test_resilience_linkerd_lacks_is_refused_with_the_access_refusals_of_the_same_render(tmp_path):
    """A circuit breaker (Linkerd has none) beside overlapping matches for different sources: both
    refusals in one error, so a user fixes the stack in one pass; nothing is rendered."""
    services = [svc("api", resilience={"circuitBreaker": {"maxConnections": 10}}), svc("other", "front")]
    rules = [rule("all-a", "api", http=[{"name": "all-a", "methods": ["GET"], "pathRegex": "/a/.*"}]),
             rule("one-a", "api", sources=(("front", "other"),),
                  http=[{"name": "one-a", "methods": ["GET"], "pathRegex": "/a/1"}])]
    problems = refusal(mesh(services, rules, tmp_path), tmp_path)
    assert CIRCUIT in problems
    overlaps = [(p, msg) for p, msg in problems if msg.startswith("overlaps ")]
    assert len(overlaps) == 1 and len(problems) == 2, problems


def test_resilience_linkerd_lacks_is_refused_alone_too(tmp_path):
    """Outlier detection and retry conditions Linkerd lacks, refused at their fields with the fix."""
    services = [svc("api", resilience={"circuitBreaker": {"maxConnections": 10}, "outlierDetection": {},
                                       "retries": {"attempts": 1, "retryOn": ["reset", "5xx"]}})]
    assert refusal(mesh(services, [rule("to-api", "api")], tmp_path), tmp_path) == [
        CIRCUIT,
        ("mesh.services[0].resilience.outlierDetection",
         "Linkerd's failure accrual is set by annotating the Service (balancer.linkerd.io/failure-accrual), which the "
         "application owns; annotate it there and remove this"),
        ("mesh.services[0].resilience.retries.retryOn",
         "Linkerd retries only on ['5xx', 'gateway-error'], not ['reset']; use those conditions")]


def test_a_split_of_a_service_with_a_tcp_port_is_refused_naming_linkerd(tmp_path):
    """A GAMMA HTTPRoute routes HTTP only and Linkerd reads TCPRoute at v1alpha2, which the pinned
    Gateway API no longer serves (``gamma.tcp_split_problems``): refused at the split, naming the
    mesh and both ways out."""
    ports = http() + [{"port": 5432, "name": "pg", "protocol": "tcp"}]
    services = [svc("db", ports=ports), svc("db-v1", ports=ports)]
    m = mesh(services, [rule("to-db", "db")], tmp_path, docs=[split("s", "db", [("db-v1", 1)])])
    assert refusal(m, tmp_path) == [(
        "smi.yaml#TrafficSplit/shop/s.spec.service",
        "service shop/db has TCP port(s) [5432], which an SMI split covers too; Linkerd splits only HTTP ports here "
        "(it reads Gateway API TCPRoute at v1alpha2, which Gateway API v1.6.1 no longer serves): split a service whose "
        "ports are all HTTP, or move the TCP port to a Service of its own")]


def test_a_tcp_rule_beside_http_matches_for_other_sources_names_every_tcp_source(tmp_path):
    """The refusal lists the TCP rule's sources, comma-separated, so the user sees whom to give the
    HTTP matches' sources' rule to."""
    services = [svc("api"), svc("other", "front"), svc("third", "front"), svc("intruder", "ops")]
    rules = [rule("whole", "api", sources=(("front", "client"), ("front", "other"))),
             rule("some", "api", sources=(("ops", "intruder"),), http=[{"name": "get-a", "methods": ["GET"],
                                                                        "pathRegex": "/a"}])]
    (where, message), = refusal(mesh(services, rules, tmp_path), tmp_path)
    assert message == ("port 8080 of shop/api has both TCP rules (for front/client, front/other) and HTTP matches for "
                       "other sources; Linkerd decides a routed request by its route alone, so this cannot be expressed "
                       "exactly: give those sources the TCP rule too, or serve the HTTP matches on another port")


def test_a_regex_rust_reads_otherwise_is_refused_quoting_it(tmp_path):
    """A stack validated for Istio (RE2 only) translated to Linkerd: the regex Linkerd would be sent
    is quoted in the refusal (``yaml_source.shown``), with what Rust regex says of it."""
    from mesh_components.spec import smi

    services = [svc("api")]
    m = mesh(services, [rule("to-api", "api", http=[{"name": "m", "methods": ["GET"], "pathRegex": r"/a\b{x"}])],
             tmp_path, backend="istio")
    loaded = load_mesh(m, base_dir=tmp_path)
    with pytest.raises(TranslationError) as err:
        translate(loaded, "linkerd")
    sent = linkerd_policy.rendered_regex(r"/a\b{x")
    (where, message), = [p for p in err.value.problems if p[1].startswith("regex ")]
    assert message == (f"regex {sent!r} does not read alike in Rust regex, Linkerd's engine: "
                       f"{smi.rust_regex_problem(sent)}"), message
    assert repr(sent) in message and sent.startswith("^(?:/a")


def test_a_gamma_route_name_no_allocation_can_make_unique_is_refused_naming_the_services(tmp_path):
    """The timeout route of service ``api`` and split ``api`` (of ``web``) both ask for HTTPRoute
    ``api`` and are hashed (see the pinned names above); a service named like the timeout route's
    hashed name, with a timeout of its own, asks for that name readable: no allocation tells them
    apart, so it is refused naming both services' ``resilience`` fields (``names.rename``), never
    rendered as one route for two Services."""
    hashed = names.suffixed("api", ("gateway.networking.k8s.io", "HTTPRoute", "shop", "resilience", "api", 8080))
    assert hashed == "api-2bac2052"
    services = [svc("api", resilience={"timeout": "5s"}), svc("web"), svc("web-v1"),
                svc(hashed, resilience={"timeout": "1s"})]
    m = mesh(services, [rule(f"to-{s['name']}", s["name"]) for s in services], tmp_path,
             docs=[split("api", "web", [("web-v1", 1)])])
    assert refusal(m, tmp_path, error=SpecError) == [
        ("mesh.services[3].resilience", f"generates the same object name as mesh.services[0].resilience "
                                        f"(object {hashed!r}); rename one of them")]


def test_a_split_linkerd_cannot_route_is_refused_only_where_it_is_rendered(tmp_path):
    """``policy_objects`` renders one cluster: a split with a TCP port whose services run in c2
    only is refused there, and c1, which holds none of it, renders."""
    ports = http() + [{"port": 5432, "name": "pg", "protocol": "tcp"}]
    services = [svc("db", ports=ports, clusters=["c2"]), svc("db-v1", ports=ports, clusters=["c2"]), svc("api")]
    m = mesh(services, [rule("to-api", "api")], tmp_path, clusters=("c1", "c2"), docs=[split("s", "db", [("db-v1", 1)])])
    assert servers_of(rendered(m, tmp_path, "c1"), "api") == ["api-http"]
    assert [p for p, _ in refusal(m, tmp_path, "c2")] == ["smi.yaml#TrafficSplit/shop/s.spec.service"]
