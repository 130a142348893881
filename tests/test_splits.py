"""SMI TrafficSplit on every mesh (issue 10, points 7 and 8): exact weights, every port of the root,
backends that lack a port, one split per root, port fields only where the SMI schema has them, and
OSM's generated names and ``destination.port``.

Upstream read at the pinned versions:
- SMI spec: https://github.com/servicemeshinterface/smi-spec/blob/main/apis/traffic-split/v1alpha1/traffic-split.md
  (weights "Identical to resources, 1 = 1000m"; "Ports"; the foobar workflow);
- smi-sdk-go (a143f8b): pkg/apis/split/v1alpha1/traffic_split.go ``Weight *resource.Quantity``,
  v1alpha2-4 ``Weight int``; pkg/apis/access/v1alpha1-2/traffic_target.go ``Port`` (gone in v1alpha3);
  pkg/apis/specs/v1alpha1-4/tcp_route.go (``matches.ports`` only in v1alpha4);
- OSM v1.2.4: pkg/catalog/outbound_traffic_policies.go (split per root port, TCP too; a backend
  without the port is "ignored"; more than one split: "Picking the first one!"),
  pkg/envoy/lds/inmesh.go + rbac.go (TCPRoute ports gate HTTP filter chains too);
- Istio 1.30.3: pkg/config/validation/validation.go ``validateHTTPRouteDestinations`` (relative
  weights), pilot/pkg/config/kube/gateway/conversion.go (Gateway API weights copied unscaled),
  pkg/config/schema/gvk/resources.gen.go (TCPRoute read at v1alpha2 only);
- Linkerd edge-26.8.3: Cargo.lock gateway-api 0.21.0 (TCPRoute bound to v1alpha2);
- Gateway API v1.6.1 standard CRDs: TCPRoute v1alpha2 ``served: false``; weight maximum 1000000.
"""
from __future__ import annotations

import copy
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from mesh_components.spec import smi
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.render import translate
from mesh_components.spec import load_mesh

from program_harness import ROOT
from test_spec import dev_mesh

MESHES = ("istio", "linkerd", "osm")


def mesh_with(tmp_path: Path, docs: list[dict], mutate=None) -> dict:
    """The dev mesh with ``docs`` as its only SMI file (absolute path) and ``mutate(mesh)`` applied."""
    f = tmp_path / "smi.yaml"
    f.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    mesh = dev_mesh()
    mesh["smiFiles"] = [str(f)]
    if mutate:
        mutate(mesh)
    return mesh


def objects(mesh: dict, to: str) -> list[dict]:
    return translate(load_mesh(mesh, base_dir=ROOT), to)["dev"].objects


def refusal(mesh: dict, to: str) -> dict[str, str]:
    with pytest.raises((TranslationError, SpecError)) as err:
        objects(mesh, to)
    return dict(err.value.problems)


def split_doc(name: str, service: str, backends: list[tuple[str, object]], version: str = "v1alpha4",
              ns: str = "bookstore") -> dict:
    return {"apiVersion": f"split.smi-spec.io/{version}", "kind": "TrafficSplit",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"service": service, "backends": [{"service": b, "weight": w} for b, w in backends]}}


def by_kind(objs: list[dict], kind: str, api_prefix: str = "") -> list[dict]:
    return [o for o in objs if o["kind"] == kind and o["apiVersion"].startswith(api_prefix)]


def weights(route: dict) -> dict[str, int]:
    return {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}


# --- 7a: v1alpha1 weights are Kubernetes quantities, normalised exactly ------------------------

def test_v1alpha1_weights_are_quantities_read_exactly():
    # smi-spec traffic-split v1alpha1, "Workflow": foobar-v1 weight 1, foobar-v2 weight 500m:
    # "the SMI implementation redirects approximately 33% of traffic to foobar-v2" (1 = 1000m)
    workflow = split_doc("foobar-rollout", "foobar", [("foobar-v1", 1), ("foobar-v2", "500m")], "v1alpha1",
                         ns="default")
    got, problems = smi.parse_document(workflow, "workflow.yaml[0]")
    assert problems == [] and got.backends == (("foobar-v1", 2), ("foobar-v2", 1))
    # "Specification": 10m, 100m, 1500m
    example = split_doc("my-weights", "numbers", [("one", "10m"), ("two", "100m"), ("three", "1500m")], "v1alpha1",
                        ns="default")
    got, problems = smi.parse_document(example, "spec.yaml[0]")
    assert problems == [] and got.backends == (("one", 1), ("two", 10), ("three", 150))


@pytest.mark.parametrize("text,value", [
    ("1", Fraction(1)), (1, Fraction(1)), ("1000m", Fraction(1)), ("500m", Fraction(1, 2)), ("1.5", Fraction(3, 2)),
    (0.5, Fraction(1, 2)), ("2k", Fraction(2000)), ("1Ki", Fraction(1024)), ("1e3", Fraction(1000)),
    ("1E-3", Fraction(1, 1000)), ("1E", Fraction(10 ** 18)), ("5n", Fraction(5, 10 ** 9)), (".5", Fraction(1, 2)),
    ("abc", None), ("1m5", None), ("", None), (True, None), ("1 m", None), ("1mi", None),
])
def test_quantity_grammar_of_apimachinery(text, value):
    # k8s.io/apimachinery pkg/api/resource/quantity.go: <signedNumber><suffix>, suffix binary SI,
    # decimal SI or decimal exponent
    assert smi.parse_quantity(text) == value


def test_quantities_only_in_v1alpha1_and_never_finer_than_nano():
    got, problems = smi.parse_document(split_doc("s", "bookstore", [("bookstore-v1", "500m")]), "f.yaml[0]")
    assert got is None and "v1alpha1 only" in dict(problems)["f.yaml#TrafficSplit/bookstore/s.spec.backends[0].weight"]
    got, problems = smi.parse_document(split_doc("s", "bookstore", [("bookstore-v1", "0.1n")], "v1alpha1"), "f.yaml[0]")
    assert got is None and "finer than 1n" in problems[0][1]
    got, problems = smi.parse_document(split_doc("s", "bookstore", [("bookstore-v1", "-1")], "v1alpha1"), "f.yaml[0]")
    assert got is None and "non-negative" in problems[0][1]


def test_weights_above_the_gateway_api_maximum_are_reduced_exactly_or_refused():
    got, _ = smi.parse_document(split_doc("s", "bookstore", [("a", 2_000_000), ("b", 4_000_000)]), "f.yaml[0]")
    assert got.backends == (("a", 1), ("b", 2))
    got, problems = smi.parse_document(split_doc("s", "bookstore", [("a", 1), ("b", 1_000_001)]), "f.yaml[0]")
    assert got is None and "1000000" in problems[0][1]
    got, problems = smi.parse_document(split_doc("s", "bookstore", [("a", "1n"), ("b", "1")], "v1alpha1"), "f.yaml[0]")
    assert got is None and "1000000000" in problems[0][1]


@pytest.mark.parametrize("mesh_type", MESHES)
def test_v1alpha1_workflow_weights_reach_every_mesh(tmp_path, mesh_type):
    mesh = mesh_with(tmp_path, [split_doc("bookstore-rollout", "bookstore",
                                          [("bookstore-v1", 1), ("bookstore-v2", "500m")], "v1alpha1")])
    objs = objects(mesh, mesh_type)
    if mesh_type == "osm":
        (ts,) = by_kind(objs, "TrafficSplit")
        assert ts["spec"]["backends"] == [{"service": "bookstore-v1", "weight": 2},
                                          {"service": "bookstore-v2", "weight": 1}]
    else:
        (route,) = by_kind(objs, "HTTPRoute", "gateway.networking.k8s.io/")
        assert weights(route) == {"bookstore-v1": 2, "bookstore-v2": 1}


def test_istio_virtual_service_keeps_exact_relative_weights(tmp_path):
    # a 1:2 split was rounded to 33/67 percent; Istio 1.30.3 VirtualService weights are relative
    # (validateHTTPRouteDestinations: >= 0, total > 0; the GAMMA conversion copies weights as is)
    def timeout(mesh):
        mesh["services"][2]["resilience"] = {"timeout": "5s"}
    mesh = mesh_with(tmp_path, [split_doc("bookstore-split", "bookstore",
                                          [("bookstore-v1", 1), ("bookstore-v2", 2)])], timeout)
    (vs,) = by_kind(objects(mesh, "istio"), "VirtualService")
    assert [(d["destination"]["host"], d["weight"]) for d in vs["spec"]["http"][0]["route"]] == [
        ("bookstore-v1.bookstore.svc.cluster.local", 1), ("bookstore-v2.bookstore.svc.cluster.local", 2)]


# --- 7b: a split covers every port of the root, TCP ports too, or is refused ------------------

def _tcp_port_on_bookstore(mesh):
    mesh["services"][2]["ports"].append({"port": 9000, "name": "admin", "protocol": "tcp"})


@pytest.mark.parametrize("mesh_type", ["istio", "linkerd"])
def test_split_of_a_root_with_a_tcp_port_is_refused_where_only_http_is_split(tmp_path, mesh_type):
    # SMI v1alpha1 "Ports": the split applies to every port of the root; OSM splits TCP ports too
    # (outbound_traffic_policies.go builds WeightedClusters per root port before the protocol check).
    # Istio 1.30.3 and Linkerd edge-26.8.3 read TCPRoute at v1alpha2, not served by Gateway API v1.6.1.
    mesh = mesh_with(tmp_path, [split_doc("bookstore-split", "bookstore", [("bookstore-v1", 9), ("bookstore-v2", 1)])],
                     _tcp_port_on_bookstore)
    found = refusal(mesh, mesh_type)
    message = found[f"{mesh['smiFiles'][0]}#TrafficSplit/bookstore/bookstore-split.spec.service"]
    assert "TCP port(s) [9000]" in message and "v1alpha2" in message


def test_osm_splits_tcp_ports_natively(tmp_path):
    mesh = mesh_with(tmp_path, [split_doc("bookstore-split", "bookstore", [("bookstore-v1", 9), ("bookstore-v2", 1)])],
                     _tcp_port_on_bookstore)
    (ts,) = by_kind(objects(mesh, "osm"), "TrafficSplit")
    assert ts["apiVersion"] == "split.smi-spec.io/v1alpha2" and ts["spec"]["service"] == "bookstore"


# --- 7c: a backend that lacks the root's port is left out, never sent traffic ------------------

def _birds(mesh):
    # smi-spec traffic-split v1alpha1 "Ports": birds (grpc 8080, rest 9090); green-birds maps 8080
    # to targetPort 8081; here blue-birds lacks 9090 (the spec's invalid example: a port the root has)
    mesh["namespaces"].append({"name": "birds"})
    mesh["services"] += [
        {"name": "birds", "namespace": "birds",
         "ports": [{"port": 8080, "name": "grpc", "protocol": "grpc"}, {"port": 9090, "name": "rest", "protocol": "http"}]},
        {"name": "blue-birds", "namespace": "birds", "ports": [{"port": 8080, "name": "grpc", "protocol": "grpc"}]},
        {"name": "green-birds", "namespace": "birds",
         "ports": [{"port": 8080, "name": "grpc", "protocol": "grpc", "targetPort": 8081},
                   {"port": 9090, "name": "rest", "protocol": "http"}]}]


def birds_split(backends):
    return split_doc("birds-split", "birds", backends, "v1alpha1", ns="birds")


@pytest.mark.parametrize("mesh_type", ["istio", "linkerd"])
def test_backend_without_the_root_port_is_left_out_of_that_port(tmp_path, mesh_type):
    mesh = mesh_with(tmp_path, [birds_split([("blue-birds", "500m"), ("green-birds", "500m")])], _birds)
    routes = {r["spec"]["parentRefs"][0]["port"]: r
              for r in by_kind(objects(mesh, mesh_type), "HTTPRoute", "gateway.networking.k8s.io/")
              if r["metadata"]["namespace"] == "birds"}
    # a backendRef to a missing Service port would be answered 500 for its share (Gateway API)
    assert sorted(weights(routes[9090])) == ["green-birds"]
    assert weights(routes[8080]) == {"blue-birds": 1, "green-birds": 1}


def test_istio_virtual_service_routes_each_port_to_the_backends_that_serve_it(tmp_path):
    def birds_with_timeout(mesh):
        _birds(mesh)
        mesh["services"][-3]["resilience"] = {"timeout": "5s"}
    mesh = mesh_with(tmp_path, [birds_split([("blue-birds", "500m"), ("green-birds", "500m")])], birds_with_timeout)
    (vs,) = [o for o in by_kind(objects(mesh, "istio"), "VirtualService") if o["metadata"]["namespace"] == "birds"]
    assert [(r["match"], [d["destination"]["host"].split(".")[0] for d in r["route"]]) for r in vs["spec"]["http"]] == [
        ([{"port": 8080}], ["blue-birds", "green-birds"]), ([{"port": 9090}], ["green-birds"])]


@pytest.mark.parametrize("mesh_type", MESHES)
def test_root_port_no_weighted_backend_serves_is_refused(tmp_path, mesh_type):
    mesh = mesh_with(tmp_path, [birds_split([("blue-birds", "1"), ("green-birds", "0")])], _birds)
    found = refusal(mesh, mesh_type)
    assert "no backend with a positive weight has port 9090" in found[
        f"{mesh['smiFiles'][0]}#TrafficSplit/birds/birds-split.spec.backends"]


# --- 7d: two splits for one root service are refused, naming both -----------------------------

def test_two_splits_of_one_root_are_refused_naming_both(tmp_path):
    # OSM v1.2.4 outbound_traffic_policies.go: "Found more than 1 SMI TrafficSplit configuration for
    # the same apex service ... Picking the first one!"
    mesh = mesh_with(tmp_path, [split_doc("canary-a", "bookstore", [("bookstore-v1", 1), ("bookstore-v2", 1)]),
                                split_doc("canary-b", "bookstore.bookstore", [("bookstore-v2", 1)])])
    with pytest.raises(SpecError) as err:
        load_mesh(mesh, base_dir=ROOT)
    f = mesh["smiFiles"][0]
    found = dict(err.value.problems)
    assert f"{f}#TrafficSplit/bookstore/canary-a" in found[f"{f}#TrafficSplit/bookstore/canary-b.spec.service"]


def test_a_spec_split_and_a_file_split_of_one_root_are_refused(tmp_path):
    def spec_split(mesh):
        mesh["trafficSplits"] = [{"name": "mine", "namespace": "bookstore", "service": "bookstore",
                                  "backends": [{"service": "bookstore-v1", "weight": 1}]}]
    mesh = mesh_with(tmp_path, [split_doc("theirs", "bookstore", [("bookstore-v2", 1)])], spec_split)
    with pytest.raises(SpecError) as err:
        load_mesh(mesh, base_dir=ROOT)
    assert any("mesh.trafficSplits[0]" in m for p, m in err.value.problems if "theirs" in p)


# --- 7e: destination.port / TCPRoute ports only in the SMI versions whose schema has them -------

def _target(version: str, port: int | None, rules_key: str = "rules") -> dict:
    dest = {"kind": "ServiceAccount", "name": "bookstore", "namespace": "bookstore",
            **({"port": port} if port is not None else {})}
    body = {"destination": dest, rules_key: [{"kind": "TCPRoute", "name": "t"}],
            "sources": [{"kind": "ServiceAccount", "name": "bookbuyer", "namespace": "bookbuyer"}]}
    doc = {"apiVersion": f"access.smi-spec.io/{version}", "kind": "TrafficTarget",
           "metadata": {"name": "tt", "namespace": "bookstore"}}
    return {**doc, **body} if version == "v1alpha1" else {**doc, "spec": body}


def test_destination_port_only_in_traffic_target_v1alpha1_and_v1alpha2():
    for version, key in (("v1alpha1", "specs"), ("v1alpha2", "rules")):
        got, problems = smi.parse_document(_target(version, 14001, key), "f.yaml[0]")
        assert problems == [] and got.destination_port == 14001, version
    got, problems = smi.parse_document(_target("v1alpha3", 14001), "f.yaml[0]")
    assert got is None
    assert "has no destination.port" in dict(problems)["f.yaml#TrafficTarget/bookstore/tt.spec.destination.port"]


def test_tcp_route_ports_only_in_v1alpha4():
    def route(version):
        return {"apiVersion": f"specs.smi-spec.io/{version}", "kind": "TCPRoute",
                "metadata": {"name": "t", "namespace": "bookstore"}, "spec": {"matches": {"ports": [3306]}}}
    got, problems = smi.parse_document(route("v1alpha4"), "f.yaml[0]")
    assert problems == [] and got.ports == (3306,)
    for version in ("v1alpha2", "v1alpha3"):
        got, problems = smi.parse_document(route(version), "f.yaml[0]")
        # v1alpha2 has no spec at all (smi-sdk-go v0.5.0 specs/v1alpha2/tcp_route.go): refused for that
        assert got is None and ("has no spec" if version == "v1alpha2" else "has no matches.ports") in problems[0][1]
    top_level = {**route("v1alpha2"), "matches": {"ports": [3306]}}
    top_level.pop("spec")
    got, problems = smi.parse_document(top_level, "f.yaml[0]")
    assert got is None and "has no matches.ports" in problems[0][1]


# --- 8a: OSM's generated names cannot collide ---------------------------------------------------

def _bookstore_two_http_ports(mesh):
    mesh["services"][2]["ports"].append({"port": 8080, "name": "admin", "protocol": "http"})
    mesh["accessRules"] = []  # the dev rule opens every HTTP port of bookstore to bookbuyer


def _access(name: str, rules: list[dict], port: int | None = None, version: str = "v1alpha3") -> dict:
    dest = {"kind": "ServiceAccount", "name": "bookstore", "namespace": "bookstore",
            **({"port": port} if port is not None else {})}
    return {"apiVersion": f"access.smi-spec.io/{version}", "kind": "TrafficTarget",
            "metadata": {"name": name, "namespace": "bookstore"},
            "spec": {"destination": dest, "rules": rules,
                     "sources": [{"kind": "ServiceAccount", "name": "bookbuyer", "namespace": "bookbuyer"}]}}


def _group(name: str, path: str) -> dict:
    return {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": {"name": name, "namespace": "bookstore"},
            "spec": {"matches": [{"name": "m", "methods": ["GET"], "pathRegex": path}]}}


def test_osm_names_derived_from_user_names_never_collide(tmp_path):
    # the case: TrafficTarget "reader" with a whole-port TCP rule on an HTTP port (rendered
    # as a catch-all route, once HTTPRouteGroup "reader-any") beside a TrafficTarget "reader-any"
    tcp = {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
           "metadata": {"name": "whole", "namespace": "bookstore"}, "spec": {"matches": {"ports": [14001]}}}
    docs = [tcp, _group("books", "/books"),
            _access("reader", [{"kind": "TCPRoute", "name": "whole"}]),
            _access("reader-any", [{"kind": "HTTPRouteGroup", "name": "books", "matches": ["m"]}]),
            _access("reader-no-tcp", [{"kind": "HTTPRouteGroup", "name": "books", "matches": ["m"]}])]

    def mysql_port_on_bookstore(mesh):  # a TCP port, so HTTP-only targets need a TCPRoute too
        mesh["services"][2]["ports"].append({"port": 3307, "name": "db", "protocol": "tcp"})
    objs = objects(mesh_with(tmp_path, docs, mysql_port_on_bookstore), "osm")
    names = Counter((o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs)
    assert [k for k, n in names.items() if n > 1] == []


def test_osm_retry_names_are_unique_per_caller_and_destination(tmp_path):
    # "<sa>-to-<service>" made "a-to" -> "b" and "a" -> "to-b" both "a-to-to-b"
    def callers(mesh):
        retry = {"retries": {"attempts": 2, "perTryTimeout": "1s"}}
        mesh["services"] += [
            {"name": "a", "namespace": "bookbuyer", "ports": [{"port": 80, "name": "http", "protocol": "http"}]},
            {"name": "a-to", "namespace": "bookbuyer", "ports": [{"port": 80, "name": "http", "protocol": "http"}]},
            {"name": "b", "namespace": "bookstore", "ports": [{"port": 80, "name": "http", "protocol": "http"}],
             "resilience": retry},
            {"name": "to-b", "namespace": "bookstore", "ports": [{"port": 80, "name": "http", "protocol": "http"}],
             "resilience": copy.deepcopy(retry)}]
        mesh["accessRules"] += [
            {"name": f"{src}-calls-{dst}", "namespace": "bookstore", "destination": {"serviceAccount": dst},
             "sources": [{"serviceAccount": src, "namespace": "bookbuyer"}], "http": [{"name": "all", "pathRegex": "/.*"}]}
            for src, dst in (("a", "to-b"), ("a-to", "b"))]
    objs = objects(mesh_with(tmp_path, [], callers), "osm")
    retries = sorted(o["metadata"]["name"] for o in by_kind(objs, "Retry"))
    assert retries == ["a-to.b.bookstore", "a.to-b.bookstore"]


# --- 8b: OSM expresses a v1alpha2 destination.port with a TCPRoute ------------------------------

def test_osm_destination_port_becomes_the_tcp_route_ports(tmp_path):
    # smi-spec traffic-access v1alpha2: destination.port scopes the TrafficTarget; OSM v1.2.4 serves
    # v1alpha3 only, and gates HTTP filter chains with the L4 RBAC built from TCPRoute ports
    # (pkg/envoy/lds/inmesh.go getInboundHTTPFilters -> rbac.go buildRBACPolicyFromTrafficTarget)
    docs = [_group("books", "/books"),
            _access("reader", [{"kind": "HTTPRouteGroup", "name": "books", "matches": ["m"]}], 14001, "v1alpha2")]
    objs = objects(mesh_with(tmp_path, docs, _bookstore_two_http_ports), "osm")
    (tt,) = [o for o in by_kind(objs, "TrafficTarget") if o["metadata"]["name"] == "reader"]
    assert tt["apiVersion"] == "access.smi-spec.io/v1alpha3" and "port" not in tt["spec"]["destination"]
    kinds = {r["kind"]: r["name"] for r in tt["spec"]["rules"]}
    (route,) = [o for o in by_kind(objs, "TCPRoute") if o["metadata"]["name"] == kinds["TCPRoute"]]
    assert route["spec"]["matches"]["ports"] == [14001]          # not 8080, the other HTTP port
    (group,) = [o for o in by_kind(objs, "HTTPRouteGroup") if o["metadata"]["name"] == kinds["HTTPRouteGroup"]]
    assert [m["pathRegex"] for m in group["spec"]["matches"]] == ["/books"]


def test_osm_destination_port_widened_by_another_target_is_refused(tmp_path):
    # OSM's routes serve every HTTP port of the service account (inbound_traffic_policies.go), so a
    # second TrafficTarget opening 8080 to the same source would carry /books there too
    docs = [_group("books", "/books"), _group("admin", "/admin"),
            _access("reader", [{"kind": "HTTPRouteGroup", "name": "books", "matches": ["m"]}], 14001, "v1alpha2"),
            _access("admin", [{"kind": "HTTPRouteGroup", "name": "admin", "matches": ["m"]}], 8080, "v1alpha2")]
    found = refusal(mesh_with(tmp_path, docs, _bookstore_two_http_ports), "osm")
    assert any("OSM grants per service account" in m for m in found.values()), found
