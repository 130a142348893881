"""Edges of the access-deciding code that the mutation run of issue 18 found untested: limits at
their exact value, and the identity (name, namespace) a mesh reads an object by. Each test asserts
what the mesh as pinned would admit, refuse or read, citing it; the helpers are those of
``test_policy_gaps`` (one-cluster meshes judged by the evaluators of ``policy_eval``).
Upstream, as pinned: OSM v1.2.4 with Envoy v1.22.2, Istio 1.30.3, Linkerd edge-26.8.3.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mesh_components.meshes import istio_policy
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.render import render_mesh
from mesh_components.spec.smi import re2_compile
from mesh_components.spec import LoadedMesh, load_mesh

from policy_eval import Request, istio_allows, smi_allows
from test_policy_gaps import (SOURCES, TD, assert_exact, group, http_rule, mesh_of, objects_for, target, tcp_route,
                              tcp_rule)

API = ("shop", "api", [(8080, "http", None), (9090, "http", None)])


# --- OSM ----------------------------------------------------------------------------------------------

def test_osm_takes_a_regex_of_exactly_envoys_program_size_limit_and_refuses_one_more(tmp_path):
    """Envoy refuses a regex only when its RE2 program is LARGER than
    ``re2.max_program_size.error_level`` (default 100): envoy v1.22.2
    source/common/common/regex.cc ``CompiledGoogleReMatcher``: ``if (regex_program_size >
    max_program_size_error_level) throw EnvoyException(...)``. A regex of size exactly 100 is
    served; refusing it would be an outage, taking 101 a NACKed route table."""
    at_limit, over = "/abx{1,47}", "/ax{1,48}"
    (tmp_path / "at").mkdir(), (tmp_path / "over").mkdir()
    assert (re2_compile(at_limit).programsize, re2_compile(over).programsize) == (100, 101)
    docs = [group("g", [{"name": "m", "methods": ["GET"], "pathRegex": at_limit}]), target("t", "api", [http_rule("g")])]
    objects = assert_exact(docs, [API], tmp_path / "at", "osm")
    (g,) = [o for o in objects if o["kind"] == "HTTPRouteGroup"]
    assert [m["pathRegex"] for m in g["spec"]["matches"]] == [at_limit]
    docs = [group("g", [{"name": "m", "methods": ["GET"], "pathRegex": over}]), target("t", "api", [http_rule("g")])]
    with pytest.raises(TranslationError) as err:
        objects_for(mesh_of([API], docs, tmp_path / "over"), "osm")
    (where, message), = err.value.problems
    assert where == "smi.yaml#TrafficTarget/shop/t" and "program of size 101" in message


def test_osm_traffic_split_keeps_its_name_in_the_namespace_of_its_root_service(tmp_path):
    """OSM applies a TrafficSplit to the root service of the split's OWN namespace (v1.2.4
    pkg/smi/client.go:113 ``FilterTrafficSplit``: ``o.ApexService.Namespace != trafficSplit.Namespace``
    -> not this service's split), so the rendered split lives in the root's namespace under the
    SMI document's name (a second split of the same root is refused: tests/test_splits.py)."""
    services = [("shop", "api", [(8080, "http", None)]), ("shop", "api-v1", [(8080, "http", None)]),
                ("shop", "api-v2", [(8080, "http", None)])]
    docs = [{"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
             "metadata": {"name": "api-canary", "namespace": "shop"},
             "spec": {"service": "api", "backends": [{"service": "api-v1", "weight": 9},
                                                     {"service": "api-v2", "weight": 1}]}}]
    (ts,) = [o for o in objects_for(mesh_of(services, docs, tmp_path), "osm") if o["kind"] == "TrafficSplit"]
    assert ts["apiVersion"] == "split.smi-spec.io/v1alpha2"
    assert (ts["metadata"]["name"], ts["metadata"]["namespace"]) == ("api-canary", "shop")
    from mesh_components.core.meta import ownership_labels   # ours, so a later run prunes it
    assert {k: ts["metadata"]["labels"].get(k) for k in ownership_labels("gaps")} == ownership_labels("gaps")
    assert ts["spec"] == {"service": "api", "backends": [{"service": "api-v1", "weight": 9},
                                                         {"service": "api-v2", "weight": 1}]}



def test_osm_a_whole_port_tcp_rule_covers_a_match_the_same_source_has_on_another_port(tmp_path):
    """OSM serves every route of a service account on each of its HTTP ports (v1.2.4
    pkg/catalog/inbound_traffic_policies.go); a source that SMI admits on whole HTTP ports (a TCP
    rule, rendered as a catch-all route) loses nothing when its match for one of those ports
    serves on the others too, so this is exact and not refused (osm_policy._check_port_scope)."""
    docs = [tcp_route("whole", [8080, 9090]), target("t1", "api", [tcp_rule("whole")]),
            group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]), tcp_route("p9090", [9090]),
            target("t2", "api", [http_rule("g"), tcp_rule("p9090")])]
    assert_exact(docs, [API], tmp_path, "osm")


def test_osm_refusal_of_a_match_widened_to_other_ports_names_the_source(tmp_path):
    """The refusal names the source as ``namespace/service account`` (SMI's identity) and the
    ports SMI allows the match on, so the user sees whom OSM would admit where."""
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]), tcp_route("p9090", [9090]),
            target("t1", "api", [http_rule("g"), tcp_rule("p9090")]), tcp_route("p8080", [8080]),
            group("h", [{"name": "get-b", "methods": ["GET"], "pathRegex": "/b"}]),
            target("t2", "api", [http_rule("h"), tcp_rule("p8080")])]
    with pytest.raises(TranslationError) as err:
        objects_for(mesh_of([API], docs, tmp_path), "osm")
    messages = [m for _, m in err.value.problems]
    assert any("match 'get-a' admits front/client on port(s) [9090] of service account shop/api only" in m
               and "opens port(s) [8080]" in m for m in messages), messages


def test_osm_refuses_overlapping_matches_of_different_sources_among_many(tmp_path):
    """Envoy takes the first matching route (OSM v1.2.4 pkg/envoy/rds/route/route_config.go), so
    two matches of one service account that may select the same request with different sources
    are refused, however many other matches lie between them (osm_policy._check_routes compares
    every pair)."""
    docs = [group("g1", [{"name": "a-any", "methods": ["GET"], "pathRegex": "/a/.*"}]),
            group("g2", [{"name": "x", "methods": ["GET"], "pathRegex": "/x"},
                         {"name": "a-one", "methods": ["GET"], "pathRegex": "/a/1"},
                         {"name": "y", "methods": ["GET"], "pathRegex": "/y"}]),
            target("t1", "api", [http_rule("g1")]),
            target("t2", "api", [http_rule("g2")], sources=[("front", "other")])]
    with pytest.raises(TranslationError) as err:
        objects_for(mesh_of([API], docs, tmp_path), "osm")
    (where, message), = err.value.problems
    assert "'a-any' overlaps" in message and "'a-one'" in message, message


# --- Istio ambient ------------------------------------------------------------------------------------

def ambient_mesh(services, docs, tmp_path, headless=frozenset()):
    """``test_policy_gaps.mesh_of`` in ambient mode, the services named in ``headless`` headless."""
    loaded = mesh_of(services, docs, tmp_path, data_plane="ambient")
    spec = loaded.spec.model_copy(update={"services": [
        s.model_copy(update={"headless": True}) if s.name in headless else s for s in loaded.spec.services]})
    return LoadedMesh(spec, loaded.smi_documents)


def test_ambient_http_rules_on_a_headless_service_are_refused_because_they_would_admit_nobody(tmp_path,
                                                                                          monkeypatch):
    """A headless Service's callers dial pod IPs, and a ``waypoint-for: service`` waypoint handles only
    Service-addressed traffic (istio 1.30.3 pilot/pkg/serviceregistry/ambient/waypoints.go:166-193),
    so an HTTP rule there is refused: rendered, its waypoint policy would never see the call and
    ztunnel, which admits only the waypoint, would refuse the allowed source (an outage). A TCP rule
    on it is rendered and exact at ztunnel."""
    api = ("shop", "api", [(8080, "http", None)])
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]),
            target("t", "api", [http_rule("g")])]
    loaded = ambient_mesh([api], docs, tmp_path, headless={"api"})
    with pytest.raises(TranslationError) as err:
        render_mesh(loaded)
    (where, message), = [(w, m) for w, m in err.value.problems if "headless" in m]
    assert where == "smi.yaml#TrafficTarget/shop/t" and "shop/api is headless" in message
    # the message says what would happen and how to fix it (DEVELOPERS.md: `path: message` with the fix)
    for said in ("these HTTP matches would never be checked and ztunnel would refuse every call",
                 "use TCP rules (a TCPRoute) for it", "give the Service a ClusterIP", "dataPlane: sidecar"):
        assert said in message, said
    # without the refusal: pod-addressed traffic meets only ztunnel, which admits the waypoint alone
    monkeypatch.setattr(istio_policy, "_headless", lambda spec, w: False)
    objects = render_mesh(loaded)["c1"].objects
    call = Request(("front", "client"), "shop", "api", "api", (("app", "api"),), 8080, http=True,
                   method="GET", path="/a/1")
    assert smi_allows(docs, call)
    assert not istio_allows(objects, call, trust_domain=TD, ambient_namespaces=frozenset({"shop"}))


def test_ambient_tcp_rules_on_a_headless_service_are_exact_at_ztunnel(tmp_path):
    """An L4-only rule needs no waypoint: ztunnel checks the real source on pod-addressed traffic
    (istio 1.30.3 ztunnel rbac; https://istio.io/latest/docs/ambient/usage/l4-policy/)."""
    db = ("shop", "db", [(5432, "tcp", None), (9000, "tcp", None)])
    docs = [tcp_route("r", [5432]), target("t", "db", [tcp_rule("r")])]
    objects = render_mesh(ambient_mesh([db], docs, tmp_path, headless={"db"}))["c1"].objects
    for src in SOURCES:
        for port in (5432, 9000):
            req = Request(src, "shop", "db", "db", (("app", "db"),), port, http=False)
            assert istio_allows(objects, req, trust_domain=TD, ambient_namespaces=frozenset({"shop"})) == \
                smi_allows(docs, req), req


def test_ambient_policy_objects_carry_the_mesh_ownership_labels(tmp_path):
    """The waypoint, its default deny and every AuthorizationPolicy of ambient mode carry the
    ownership labels (meta.ownership_labels): how a later run finds and prunes what it owns."""
    from mesh_components.core.meta import ownership_labels

    api = ("shop", "api", [(8080, "http", None)])
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]),
            target("t", "api", [http_rule("g")])]
    want = ownership_labels("gaps")
    objects = render_mesh(ambient_mesh([api, ("shop", "open", [(80, "http", None)])], docs, tmp_path))["c1"].objects
    kinds = set()
    for o in objects:
        if o["kind"] in ("AuthorizationPolicy", "Gateway"):
            kinds.add((o["kind"], o["metadata"]["name"]))
            labels = o["metadata"].get("labels") or {}
            assert {k: labels.get(k) for k in want} == want, o
    assert {("Gateway", "waypoint"), ("AuthorizationPolicy", "waypoint-default-deny"),
            ("AuthorizationPolicy", "open-unrestricted")} <= kinds


def test_istio_service_names_of_a_service_the_spec_does_not_declare_is_that_name_alone(tmp_path):
    """Only spec services have per-version Services (render.version_services); a Service the spec
    does not declare is named alone."""
    loaded = mesh_of([API], [], tmp_path)
    assert istio_policy.service_names(loaded.spec, "shop", "stray") == ["stray"]
    assert istio_policy.service_names(loaded.spec, "shop", "api") == ["api"]


# --- Istio: approximations accepted on purpose, and the ambient namespace labels --------------------

def approximated_group(name, matches, approximate: str):
    """An HTTPRouteGroup accepting ``approximate`` (``<match>=prefix,...``, smi.APPROXIMATE_ANNOTATION)."""
    doc = group(name, matches)
    doc["metadata"]["annotations"] = {"mesh-components.io/approximate": approximate}
    return doc


def test_istio_takes_an_accepted_prefix_approximation_only_where_it_cannot_match_exactly(tmp_path):
    """``approximate: prefix`` accepts, on purpose, a regex's literal prefix where Istio cannot match
    the regex exactly (spec.HttpMatch.approximate; Istio paths match exactly, by prefix ``x*`` or
    suffix ``*x``: https://istio.io/latest/docs/reference/config/security/authorization-policy/ ,
    Operation.paths). A regex Istio can match exactly stays exact: accepting an approximation
    never widens a match that needs none."""
    api = ("shop", "api", [(8080, "http", None)])
    docs = [approximated_group("g", [{"name": "num", "methods": ["GET"], "pathRegex": "/a/[0-9]+"},
                                     {"name": "lit", "methods": ["GET"], "pathRegex": "/b"},
                                     {"name": "pre", "methods": ["GET"], "pathRegex": "/c/.*"}],
                               "num=prefix,lit=prefix,pre=prefix"),
            target("t", "api", [http_rule("g")])]
    objects = objects_for(mesh_of([api], docs, tmp_path), "istio")
    (ap,) = [o for o in objects if o["kind"] == "AuthorizationPolicy"]
    assert "'/a/[0-9]+' as prefix '/a/*'" in ap["metadata"]["annotations"]["mesh-components.io/approximated"]
    assert "/b" not in ap["metadata"]["annotations"]["mesh-components.io/approximated"].replace("/a/", "")

    def allows(path, src=("front", "client")):
        return istio_allows(objects, Request(src, "shop", "api", "api", (("app", "api"),), 8080, http=True,
                                             method="GET", path=path), trust_domain=TD)
    assert allows("/a/1") and allows("/a/x")          # the accepted widening: every path under /a/
    assert not allows("/a") and not allows("/ab")
    assert allows("/b") and not allows("/bx") and not allows("/b/1")   # exact stays exact
    assert allows("/c/") and allows("/c/x") and not allows("/c")        # a prefix regex is exact already
    assert not allows("/a/1", ("ops", "intruder"))


@pytest.mark.parametrize("regex,bad", [("/a\\*b/[0-9]+", "'*'"), ("/a\\{b/[0-9]+", "'{'")])
def test_istio_refuses_an_accepted_prefix_that_holds_a_wildcard_character(regex, bad, tmp_path):
    """The literal prefix of an approximated regex is sent as ``<prefix>*``; a ``*`` (or, in paths,
    ``{``/``}``) inside it would be read by Istio as a wildcard or URI template with no escape
    (istio 1.30.3 pilot/pkg/security/authz/matcher/string.go, pkg/config/security/security.go
    CheckValidPathTemplate), so it is refused naming the match."""
    api = ("shop", "api", [(8080, "http", None)])
    docs = [approximated_group("g", [{"name": "star", "methods": ["GET"], "pathRegex": regex}], "star=prefix"),
            target("t", "api", [http_rule("g")])]
    with pytest.raises(TranslationError) as err:
        objects_for(mesh_of([api], docs, tmp_path), "istio")
    (where, message), = err.value.problems
    assert where == "smi.yaml#TrafficTarget/shop/t"
    assert f"approximate prefix of {regex!r}" in message and f"contains {bad}" in message


def test_ambient_namespace_labels_send_ingress_through_the_waypoint_as_istio_reads_them(tmp_path):
    """A namespace with L7 policy uses its waypoint for mesh AND ingress traffic: istiod reads
    ``istio.io/ingress-use-waypoint`` with Go's strconv.ParseBool (istio 1.30.3
    pilot/pkg/serviceregistry/ambient/services.go:786-800 ``ingressUseWaypointFromLabels``: an
    invalid value is false), and ``istio.io/use-waypoint`` names the waypoint Gateway. Without it the
    ingress gateway would dial the pods, whose ztunnel admits only the waypoint."""
    go_true = {"1", "t", "T", "TRUE", "true", "True"}   # strconv.ParseBool's true spellings
    api = ("shop", "api", [(8080, "http", None)])
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]),
            target("t", "api", [http_rule("g")])]
    loaded = ambient_mesh([api], docs, tmp_path)
    objects = render_mesh(loaded)["c1"].objects
    (ns,) = [o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == "shop"]
    labels = ns["metadata"]["labels"]
    assert labels["istio.io/ingress-use-waypoint"] in go_true
    (gw,) = [o for o in objects if o["kind"] == "Gateway" and o["metadata"]["namespace"] == "shop"]
    assert labels["istio.io/use-waypoint"] == gw["metadata"]["name"]
    # a namespace without L7 policy gets no waypoint and no waypoint labels
    for o in objects:
        if o["kind"] == "Namespace" and o["metadata"]["name"] != "shop":
            assert not {"istio.io/use-waypoint", "istio.io/ingress-use-waypoint"} & set(o["metadata"].get("labels") or {})


def schema_problems(value, schema: dict, path: str = "") -> list[str]:
    """What a CRD's structural OpenAPI schema refuses in ``value``: missing ``required`` fields,
    ``pattern``/``minItems``/``minLength`` and ``type`` (the checks the API server runs, enough
    for the objects tested here; unknown fields would be pruned, so their required siblings fail)."""
    out = []
    kind = schema.get("type")
    if kind == "object" and isinstance(value, dict):
        out += [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in schema.get("properties", {}):
                out += schema_problems(v, schema["properties"][k], f"{path}.{k}")
    elif kind == "array" and isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{path}: fewer than {schema['minItems']} items")
        for i, v in enumerate(value):
            out += schema_problems(v, schema.get("items", {}), f"{path}[{i}]")
    elif kind == "string":
        if not isinstance(value, str):
            out.append(f"{path}: not a string")
        elif len(value) < schema.get("minLength", 0) or ("pattern" in schema and not re.search(schema["pattern"], value)):
            out.append(f"{path}: {value!r} does not match {schema.get('pattern')!r}")
    elif kind == "integer" and not isinstance(value, int):
        out.append(f"{path}: not an integer")
    return out


def test_ambient_waypoint_is_a_valid_gateway_for_service_traffic(tmp_path):
    """The waypoint is a Gateway API v1.6.1 Gateway (../shared/crds/gateway-api/standard
    gateway.networking.k8s.io_gateways.yaml, version v1) of class ``istio-waypoint`` with an HBONE
    listener on 15008 (https://istio.io/latest/docs/ambient/usage/waypoint/), and it takes Service
    traffic whatever its GatewayClass says: istio 1.30.3
    pilot/pkg/serviceregistry/ambient/waypoints.go:244-258 (the Gateway's ``istio.io/waypoint-for``
    overrides the class's) and :166 (Service traffic needs ``service`` or ``all``)."""
    crd = yaml.safe_load((Path(__file__).resolve().parents[2] / "shared" / "crds" / "gateway-api" / "standard" /
                          "gateway.networking.k8s.io_gateways.yaml").read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    api = ("shop", "api", [(8080, "http", None)])
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]),
            target("t", "api", [http_rule("g")])]
    objects = render_mesh(ambient_mesh([api], docs, tmp_path))["c1"].objects
    (gw,) = [o for o in objects if o["kind"] == "Gateway" and o["metadata"]["namespace"] == "shop"]
    assert gw["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert schema_problems(gw, schema) == []
    assert gw["metadata"]["labels"]["istio.io/waypoint-for"] in ("service", "all")
    assert gw["spec"]["gatewayClassName"] == "istio-waypoint"
    assert [(x["port"], x["protocol"]) for x in gw["spec"]["listeners"]] == [(15008, "HBONE")]


def test_istio_header_values_take_braces_verbatim(tmp_path):
    """Istio header ``values`` have no URI templates: ``{``/``}`` are literal there (istio 1.30.3
    pilot/pkg/security/authz/matcher/header.go ``HeaderMatcher``: exact, prefix or suffix), unlike
    ``paths`` (pkg/config/security/security.go ``CheckValidPathTemplate``), so an exact header value
    with braces is rendered and exact."""
    api = ("shop", "api", [(8080, "http", None)])
    docs = [group("g", [{"name": "v", "methods": ["GET"], "headers": {"x-v": "v\\{1\\}"}}]),
            target("t", "api", [http_rule("g")])]
    objects = objects_for(mesh_of([api], docs, tmp_path), "istio")
    (ap,) = [o for o in objects if o["kind"] == "AuthorizationPolicy"]
    assert ap["spec"]["rules"][0]["when"] == [{"key": "request.headers[x-v]", "values": ["v{1}"]}]
    # nothing approximated, so no approximation is shown (APPROXIMATED lists only what was accepted)
    assert "mesh-components.io/approximated" not in (ap["metadata"].get("annotations") or {})
    call = Request(("front", "client"), "shop", "api", "api", (("app", "api"),), 8080, http=True, method="GET",
                   path="/", headers=(("x-v", "v{1}"),))
    assert istio_allows(objects, call, trust_domain=TD) and smi_allows(docs, call)


def test_istio_l4_rule_lists_ports_in_numeric_order(tmp_path):
    """Ports are numbers: an L4 rule lists them ascending by value (9000 before 10000), so the
    rendered policy reads and diffs in port order (mesh output is deterministic and reviewable)."""
    db = ("shop", "db", [(10000, "tcp", None), (9000, "tcp", None), (5432, "tcp", None)])
    docs = [tcp_route("r", []), target("t", "db", [tcp_rule("r")])]
    objects = objects_for(mesh_of([db], docs, tmp_path), "istio")
    (ap,) = [o for o in objects if o["kind"] == "AuthorizationPolicy"]
    assert ap["spec"]["rules"][0]["to"] == [{"operation": {"ports": ["5432", "9000", "10000"]}}]


def test_ambient_tcp_rule_for_every_port_behind_a_waypoint_uses_the_service_ports(tmp_path):
    """Behind a waypoint a policy's ``ports`` are compared with the Service port (istio 1.30.3
    pilot/pkg/networking/core/listener_waypoint.go:448-470), at ztunnel with the pod port: a
    TCPRoute for every port on a Service whose port 80 targets pod port 8080, in a namespace that
    has a waypoint (another destination's HTTP rule), admits its source exactly on both."""
    web = ("shop", "web", [(80, "http", 8080)])
    api = ("shop", "api", [(8080, "http", None)])
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]),
            target("t1", "api", [http_rule("g")]), tcp_route("r", []), target("t2", "web", [tcp_rule("r")])]
    objects = assert_exact(docs, [web, api], tmp_path, "ambient")
    assert any(o["kind"] == "Gateway" and o["metadata"]["namespace"] == "shop" for o in objects)


def test_istio_lists_every_refusal_of_a_render_not_only_the_first(tmp_path):
    """policy_objects raises one TranslationError listing EVERY match Istio cannot express (its
    docstring; DEVELOPERS.md: the user fixes all of them in one pass): HTTP rules on headless
    Services in ambient mode and regexes Istio cannot match, whatever their order."""
    services = [("shop", n, [(8080, "http", None)]) for n in ("api1", "api2", "api3", "api4")]
    regex = [{"name": "num", "methods": ["GET"], "pathRegex": "/a/[0-9]+"}]
    plain = [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]
    docs = [group("plain", plain), group("regex", regex),
            target("t1", "api1", [http_rule("plain")]), target("t2", "api2", [http_rule("regex")]),
            target("t3", "api3", [http_rule("plain")]), target("t4", "api4", [http_rule("regex")])]
    with pytest.raises(TranslationError) as err:
        render_mesh(ambient_mesh(services, docs, tmp_path, headless={"api1", "api3"}))
    assert sorted({where for where, _ in err.value.problems}) == [
        f"smi.yaml#TrafficTarget/shop/t{i}" for i in (1, 2, 3, 4)]


def test_ambient_policy_names_that_collide_are_made_unique_keeping_the_fixed_ones(tmp_path):
    """AuthorizationPolicy names join user names: TrafficTarget ``waypoint-default`` to service
    ``deny`` would be ``waypoint-default-deny``, the waypoint's default deny, and target ``open`` to
    service ``unrestricted`` would be ``open-unrestricted``, the policy keeping service ``open``
    open. Two objects of one name would be one object in the cluster (the later overwrites the
    earlier: a lost default deny or a lost rule), so names.rename suffixes the colliding ones and
    keeps ``<service>-unrestricted`` as is (the guardrails know it by that name); access stays exact."""
    services = [("shop", "deny", [(8080, "http", None)]), ("shop", "unrestricted", [(8080, "http", None)]),
                ("shop", "open", [(8080, "http", None)])]
    plain = [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]
    docs = [group("g", plain), target("waypoint-default", "deny", [http_rule("g")]),
            target("open", "unrestricted", [http_rule("g")])]
    loaded = ambient_mesh(services, docs, tmp_path)
    objects = render_mesh(loaded)["c1"].objects
    policies = [o for o in objects if o["kind"] == "AuthorizationPolicy" and o["metadata"]["namespace"] == "shop"]
    names = [o["metadata"]["name"] for o in policies]
    assert len(names) == len(set(names)), names
    (kept,) = [o for o in policies if o["metadata"]["name"] == "open-unrestricted"]
    assert kept["spec"]["targetRefs"][0]["name"] == "open" and kept["spec"]["rules"] == [
        {"from": [{"source": {"principals": ["*"]}}]}]
    (deny,) = [o for o in policies if o["spec"].get("targetRefs", [{}])[0].get("kind") == "Gateway"]
    assert "rules" not in deny["spec"]
    waypoints = frozenset({"shop"})
    for src in SOURCES:
        for name in ("deny", "unrestricted", "open"):
            for path in ("/a/1", "/b"):
                req = Request(src, "shop", name, name, (("app", name),), 8080, http=True, method="GET", path=path)
                want = smi_allows(docs, req)
                assert istio_allows(objects, req, trust_domain=TD, ambient_waypoint_namespaces=waypoints) == want, req


def test_ambient_tcp_rules_behind_a_waypoint_also_admit_pod_addressed_connections(tmp_path):
    """In a waypoint namespace the ztunnel of a TCP-only destination admits the waypoint AND the
    sources of its L4 rules on the pod ports: pod-addressed traffic (a headless Service, or a
    client dialling a pod) never meets a ``waypoint-for: service`` waypoint (istio 1.30.3
    pilot/pkg/serviceregistry/ambient/waypoints.go:166-193), so without them the allowed sources
    would be refused there; HTTP destinations admit only the waypoint at ztunnel."""
    web = ("shop", "web", [(80, "tcp", 8080), (90, "tcp", 9090)])
    api = ("shop", "api", [(8080, "http", None)])
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]),
            target("t1", "api", [http_rule("g")]), tcp_route("r", []), target("t2", "web", [tcp_rule("r")])]
    objects = assert_exact(docs, [web, api], tmp_path, "ambient")
    around = frozenset({"shop"})   # ztunnel alone: the connection is addressed to a pod
    for src in SOURCES:
        for port, pod_port in ((80, 8080), (90, 9090)):
            req = Request(src, "shop", "web", "web", (("app", "web"),), pod_port, http=False, service_port=port)
            assert istio_allows(objects, req, trust_domain=TD, ambient_namespaces=around) == smi_allows(docs, req), req
        req = Request(src, "shop", "api", "api", (("app", "api"),), 8080, http=True, method="GET", path="/a/1")
        assert not istio_allows(objects, req, trust_domain=TD, ambient_namespaces=around), req


def test_istio_shows_every_accepted_approximation_of_a_policy(tmp_path):
    """Each accepted approximation is listed on the policy's annotation, one per match, separated
    by '; ' (istio_policy.APPROXIMATED)."""
    api = ("shop", "api", [(8080, "http", None)])
    docs = [approximated_group("g", [{"name": "n1", "methods": ["GET"], "pathRegex": "/a/[0-9]+"},
                                     {"name": "n2", "methods": ["GET"], "pathRegex": "/b/[0-9]+"}], "n1=prefix,n2=prefix"),
            target("t", "api", [http_rule("g")])]
    (ap,) = [o for o in objects_for(mesh_of([api], docs, tmp_path), "istio") if o["kind"] == "AuthorizationPolicy"]
    shown = ap["metadata"]["annotations"]["mesh-components.io/approximated"].split("; ")
    assert sorted(shown) == ["smi.yaml#HTTPRouteGroup/shop/g match 'n1': pathRegex '/a/[0-9]+' as prefix '/a/*'",
                             "smi.yaml#HTTPRouteGroup/shop/g match 'n2': pathRegex '/b/[0-9]+' as prefix '/b/*'"]


def split_services():
    return [("shop", "api", [(8080, "http", None)]), ("shop", "api-v1", [(8080, "http", None)]),
            ("shop", "api-v2", [(8080, "http", None)])]


SPLIT = {"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
         "metadata": {"name": "api-canary", "namespace": "shop"},
         "spec": {"service": "api", "backends": [{"service": "api-v1", "weight": 9}, {"service": "api-v2", "weight": 1}]}}


def test_ambient_split_of_a_headless_service_is_refused_and_one_with_a_cluster_ip_is_rendered(tmp_path):
    """A split of a headless root never applies in ambient mode: callers dial pods, and the waypoint
    that would route the GAMMA HTTPRoute handles only Service-addressed traffic (istio 1.30.3
    pilot/pkg/serviceregistry/ambient/waypoints.go:166-193), so it is refused with the fix; with a
    ClusterIP it is rendered as a Service-parented HTTPRoute, and with sidecars either way."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    docs = [SPLIT]
    with pytest.raises(TranslationError) as err:
        render_mesh(ambient_mesh(split_services(), docs, tmp_path / "a", headless={"api"}))
    (where, message), = err.value.problems
    assert where.endswith("#TrafficSplit/shop/api-canary") and "shop/api is headless" in message
    assert "the split would never apply" in message and "split a Service with a ClusterIP" in message
    objects = render_mesh(ambient_mesh(split_services(), docs, tmp_path / "b"))["c1"].objects
    routes = [o for o in objects if o["kind"] == "HTTPRoute"]
    assert [o["spec"]["parentRefs"] for o in routes] == [[{"group": "", "kind": "Service", "name": "api", "port": 8080}]]
    from mesh_components.core.meta import ownership_labels   # ours, so a later run prunes it
    assert all(o["metadata"]["labels"][k] == v for o in routes for k, v in ownership_labels("gaps").items())
    objects = objects_for(mesh_of(split_services(), docs, tmp_path / "c"), "istio")
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "HTTPRoute"] == ["api-canary"]


def test_istio_refuses_a_split_of_a_root_with_a_tcp_port_naming_istio(tmp_path):
    """Istio 1.30.3 reads Gateway API TCPRoute only at v1alpha2 (pkg/config/schema/gvk/resources.gen.go),
    which Gateway API v1.6.1 no longer serves, so a split whose root has a TCP port is refused on
    Istio, the message naming the mesh that cannot split it (gamma.tcp_split_problems)."""
    services = [("shop", n, [(8080, "http", None), (5432, "tcp", None)]) for n in ("api", "api-v1", "api-v2")]
    with pytest.raises(TranslationError) as err:
        objects_for(mesh_of(services, [SPLIT], tmp_path), "istio")
    (where, message), = err.value.problems
    assert where.endswith("#TrafficSplit/shop/api-canary.spec.service")
    assert "TCP port(s) [5432]" in message and "Istio splits only HTTP ports" in message


@pytest.mark.parametrize("field,regex,said", [
    # paths: '*' is a wildcard and '{'/'}' URI templates, neither escapable (istio 1.30.3
    # pkg/config/security/security.go ContainsPathTemplate / CheckValidPathTemplate)
    ("path", "/a\\{x\\}", "contains '{' '}', which Istio reads as a wildcard or URI template with no way to escape it"),
    ("path", "/a\\*\\{", "contains '*' '{', which Istio reads as a wildcard or URI template"),
    # header values: only '*' (matcher/header.go HeaderMatcher: exact, prefix, suffix, presence)
    ("header", "v\\*X", "contains '*', which Istio reads as a wildcard with no way to escape it"),
    # neither exact, prefix nor suffix
    ("path", "/a/[0-9]+", "'/a/[0-9]+' is neither an exact string, a prefix nor a suffix"),
])
def test_istio_refuses_literal_text_it_would_read_as_a_pattern(field, regex, said, tmp_path):
    """An AuthorizationPolicy path with a stray ``{`` fails Istio's validation, which would leave
    the workload without its ALLOW policy (admitting every caller); a ``*`` would widen the match.
    So such text is refused, saying why; Linkerd, whose matches are regexes, takes it."""
    api = ("shop", "api", [(8080, "http", None)])
    match = {"name": "m", "methods": ["GET"], **({"pathRegex": regex} if field == "path" else {"headers": {"x-v": regex}})}
    docs = [group("g", [match]), target("t", "api", [http_rule("g")])]
    loaded = mesh_of([api], docs, tmp_path)
    with pytest.raises(TranslationError) as err:
        objects_for(loaded, "istio")
    (where, message), = err.value.problems
    assert where == "smi.yaml#TrafficTarget/shop/t" and said in message, message
    if field == "header":
        assert "URI template" not in message
    assert [o for o in objects_for(loaded, "linkerd") if o["kind"] == "HTTPRoute"]


def test_istio_header_values_take_braces_and_other_letters_verbatim(tmp_path):
    """Only '*' is reserved in header values: braces and any letter are literal."""
    api = ("shop", "api", [(8080, "http", None)])
    docs = [group("g", [{"name": "v", "methods": ["GET"], "headers": {"x-v": "X\\{Y\\}"}}]),
            target("t", "api", [http_rule("g")])]
    (ap,) = [o for o in objects_for(mesh_of([api], docs, tmp_path), "istio") if o["kind"] == "AuthorizationPolicy"]
    assert ap["spec"]["rules"][0]["when"] == [{"key": "request.headers[x-v]", "values": ["X{Y}"]}]


def test_ambient_objects_of_a_namespace_go_only_to_the_clusters_it_spans(tmp_path):
    """A namespace declared in cluster c2 only exists there: its waypoint, policies and split
    routes are rendered in c2 and nowhere else (spec.MeshSpec.namespace_clusters); in c1 they
    would name a namespace and Services that do not exist there."""
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]),
            target("t", "api", [http_rule("g")]), SPLIT]
    (tmp_path / "smi.yaml").write_text(yaml.safe_dump_all(docs))
    loaded = load_mesh({
        "name": "gaps", "backend": {"type": "istio", "istio": {"dataPlane": "ambient"}},
        "clusters": [{"name": c, "cloud": "onprem", "region": "lab", "network": f"net-{c}",
                      "kubeconfig": {"env": f"KUBECONFIG_{c.upper()}"},
                      "eastWestGateway": {"addresses": [f"10.0.{i}.1"]}} for i, c in enumerate(("c1", "c2"))],
        "namespaces": [{"name": "front"}, {"name": "shop", "clusters": ["c2"]}],
        "services": [{"name": n, "namespace": "shop", "ports": [{"port": 8080, "name": "http-8080", "protocol": "http"}]}
                     for n in ("api", "api-v1", "api-v2")] +
                    [{"name": "client", "namespace": "front", "ports": [{"port": 80, "name": "http-80", "protocol": "http"}]}],
        "smiFiles": ["smi.yaml"]}, base_dir=tmp_path)
    rendered = render_mesh(loaded)
    kinds = {"Gateway", "AuthorizationPolicy", "HTTPRoute"}
    in_shop = {c: sorted((o["kind"], o["metadata"]["name"]) for o in st.objects
                         if o["kind"] in kinds and o["metadata"].get("namespace") == "shop") for c, st in rendered.items()}
    assert in_shop["c1"] == []
    assert ("Gateway", "waypoint") in in_shop["c2"] and ("HTTPRoute", "api-canary") in in_shop["c2"]


def in_namespace(doc: dict, namespace: str) -> dict:
    """``doc`` (a test_policy_gaps document, namespace shop) moved to ``namespace``."""
    import copy

    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = namespace
    if doc["kind"] == "TrafficTarget":
        doc["spec"]["destination"]["namespace"] = namespace
    return doc


def test_colliding_policy_names_are_made_unique_in_every_waypoint_namespace_beside_splits(tmp_path):
    """The same collision as above in two waypoint namespaces (``shop`` and ``zoo``) with a split
    rendered too: in each namespace every AuthorizationPolicy and HTTPRoute name is unique, so no
    default deny is overwritten (which would open every Service nobody declared)."""
    plain = [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]
    services, docs = [], []
    for ns in ("shop", "zoo"):
        services += [(ns, "deny", [(8080, "http", None)]), (ns, "api", [(8080, "http", None)]),
                     (ns, "api-v1", [(8080, "http", None)]), (ns, "api-v2", [(8080, "http", None)])]
        docs += [in_namespace(d, ns) for d in (group("g", plain), target("waypoint-default", "deny", [http_rule("g")]),
                                                target("api-canary", "api", [http_rule("g")]), SPLIT)]
    objects = render_mesh(ambient_mesh(services, docs, tmp_path))["c1"].objects
    for ns in ("shop", "zoo"):
        for kind in ("AuthorizationPolicy", "HTTPRoute"):
            names = [o["metadata"]["name"] for o in objects if o["kind"] == kind and o["metadata"]["namespace"] == ns]
            assert names and len(names) == len(set(names)), (ns, kind, names)
        stray = Request(("front", "client"), ns, "stray", "stray", (("app", "stray"),), 8080, http=True,
                        method="GET", path="/a/1")   # a Service nobody declared: closed at the waypoint
        assert not istio_allows(objects, stray, trust_domain=TD, ambient_waypoint_namespaces=frozenset({ns}))


def test_ambient_ztunnel_refuses_opaque_connections_to_an_http_destination_even_for_a_match_all_rule(tmp_path):
    """SMI HTTPRouteGroup matches admit HTTP requests, nothing at L4: an opaque connection to the
    pod port of an HTTP destination is refused, even when the match admits every request. In a
    waypoint namespace ztunnel admits only the waypoint there (istio_policy: the via-waypoint
    guard), so pod-addressed connections get no L4 grant from HTTP rules."""
    api = ("shop", "api", [(8080, "http", None)])
    docs = [group("g", [{"name": "all", "methods": ["*"]}]), target("t", "api", [http_rule("g")])]
    objects = assert_exact(docs, [api], tmp_path, "ambient")
    opaque = Request(("front", "client"), "shop", "api", "api", (("app", "api"),), 8080, http=False)
    assert not smi_allows(docs, opaque)
    assert not istio_allows(objects, opaque, trust_domain=TD, ambient_namespaces=frozenset({"shop"}))


# --- gamma: services sharing a service account, refusals side by side ------------------------------

def shared_account_mesh(tmp_path, docs, data_plane="sidecar"):
    """Services ``a-svc`` (port 8080) and ``b-svc`` (ports 8080, 9090) both running as service
    account ``api`` in ``shop``, and the callers of test_policy_gaps."""
    (tmp_path / "smi.yaml").write_text(yaml.safe_dump_all(docs))
    port = lambda p: {"port": p, "name": f"http-{p}", "protocol": "http"}   # noqa: E731
    return load_mesh({
        "name": "gaps", "backend": {"type": "istio", "istio": {"dataPlane": data_plane}},
        "clusters": [{"name": "c1", "cloud": "onprem", "region": "lab"}],
        "namespaces": [{"name": "shop"}, {"name": "front"}, {"name": "ops"}],
        "services": [{"name": "a-svc", "namespace": "shop", "serviceAccount": "api", "ports": [port(8080)]},
                     {"name": "b-svc", "namespace": "shop", "serviceAccount": "api", "ports": [port(8080), port(9090)]},
                     {"name": "client", "namespace": "front", "ports": [port(80)]},
                     {"name": "intruder", "namespace": "ops", "ports": [port(80)]}],
        "smiFiles": ["smi.yaml"]}, base_dir=tmp_path)


@pytest.mark.parametrize("mesh", ["istio", "osm"])   # Linkerd refuses: a-svc would be closed (linkerd.py)
def test_a_destination_port_polices_every_service_of_the_account_that_exposes_it(mesh, tmp_path):
    """SMI names a service account; every Service running as it is the destination (gamma.build,
    one Authorization per service). With ``destination.port`` 9090, exposed by ``b-svc`` only, b-svc
    admits the source on 9090 and nothing else, and the other services of the account are not
    authorized on a port they lack; a service skipped there must not stop the others from being
    policed (an unpoliced destination admits every caller in Istio and Linkerd)."""
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]),
            target("t", "api", [http_rule("g")], version="v1alpha2", port=9090)]
    objects = objects_for(shared_account_mesh(tmp_path, docs), mesh)
    from test_policy_gaps import evaluator
    allows = evaluator(objects, mesh)
    for src in (("front", "client"), ("ops", "intruder")):
        for path in ("/a/1", "/b"):
            for port in (8080, 9090):
                req = Request(src, "shop", "b-svc", "api", (("app", "b-svc"),), port, http=True, method="GET", path=path)
                assert allows(req) == (src == ("front", "client") and port == 9090 and path == "/a/1"), (mesh, req)


def test_a_destination_port_nobody_exposes_is_refused_beside_other_refusals(tmp_path):
    """Each TrafficTarget whose destination.port no service of the account exposes is refused, also
    when another document is refused in the same run: otherwise it would render nothing and leave
    its destination unpoliced (gamma.build)."""
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]),
            tcp_route("r", [6000]), target("t1", "api", [tcp_rule("r")]),     # a port no service exposes
            target("t2", "api", [http_rule("g")], version="v1alpha2", port=7000)]
    with pytest.raises((SpecError, TranslationError)) as err:
        objects_for(shared_account_mesh(tmp_path, docs), "istio")
    found = dict(err.value.problems)
    assert "TCP ports [6000] are not exposed" in found["smi.yaml#TrafficTarget/shop/t1"]
    assert "exposes destination port 7000" in found["smi.yaml#TrafficTarget/shop/t2"]


def two_cluster_mesh(tmp_path, docs, namespaces, services):
    """An ambient-ready two-cluster Istio mesh (sidecars) of ``namespaces`` (``[{"name", "clusters"?}]``)
    and ``services`` (``(namespace, name)``, HTTP port 8080 each) whose SMI file holds ``docs``."""
    (tmp_path / "smi.yaml").write_text(yaml.safe_dump_all(docs))
    return load_mesh({
        "name": "gaps", "backend": {"type": "istio", "istio": {"dataPlane": "sidecar"}},
        "clusters": [{"name": c, "cloud": "onprem", "region": "lab", "network": f"net-{c}",
                      "kubeconfig": {"env": f"KUBECONFIG_{c.upper()}"},
                      "eastWestGateway": {"addresses": [f"10.0.{i}.1"]}} for i, c in enumerate(("c1", "c2"))],
        "namespaces": namespaces,
        "services": [{"name": n, "namespace": ns, "ports": [{"port": 8080, "name": "http-8080", "protocol": "http"}]}
                     for ns, n in services],
        "smiFiles": ["smi.yaml"]}, base_dir=tmp_path)


def test_istio_polices_every_destination_of_a_cluster_whatever_other_clusters_hold(tmp_path):
    """An authorization whose destination runs in c2 only is skipped in c1, and only it: every
    destination of c1 keeps its ALLOW policy there (without it Istio admits every caller)."""
    plain = [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]
    docs = [in_namespace(group("g", plain), "alpha"), in_namespace(target("a", "x", [http_rule("g")]), "alpha"),
            group("g", plain), target("b", "api", [http_rule("g")]),
            in_namespace(group("g", plain), "zulu"), in_namespace(target("c", "z", [http_rule("g")]), "zulu")]
    loaded = two_cluster_mesh(tmp_path, docs, [{"name": "alpha", "clusters": ["c2"]}, {"name": "shop"},
                                               {"name": "zulu", "clusters": ["c2"]}, {"name": "front"}, {"name": "ops"}],
                              [("alpha", "x"), ("shop", "api"), ("zulu", "z"), ("front", "client"), ("ops", "intruder")])
    rendered = render_mesh(loaded)
    for cluster in ("c1", "c2"):
        objects = rendered[cluster].objects
        for src in (("front", "client"), ("ops", "intruder")):
            req = Request(src, "shop", "api", "api", (("app", "api"),), 8080, http=True, method="GET", path="/a/1")
            assert istio_allows(objects, req, trust_domain=TD) == (src == ("front", "client")), (cluster, req)
    assert not [o for o in rendered["c1"].objects if o["metadata"].get("namespace") in ("alpha", "zulu")
                and o["kind"] == "AuthorizationPolicy"]


def test_http_matches_scoped_by_a_tcp_route_of_ports_the_service_lacks_are_refused(tmp_path):
    """A TrafficTarget naming HTTP matches and a TCPRoute: the TCPRoute's ports scope the matches
    (gamma._scoped_http_ports). A TCPRoute listing only ports the service does not expose scopes
    them to no port at all: refused with the service's ports and the fix, not rendered as a rule
    that admits nothing."""
    docs = [group("g", [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a/.*"}]), tcp_route("r", [6000]),
            target("t", "api", [http_rule("g"), tcp_rule("r")])]
    with pytest.raises(SpecError) as err:
        objects_for(mesh_of([API], docs, tmp_path), "istio")
    assert err.value.problems == [("smi.yaml#TrafficTarget/shop/t", "TCP ports [6000] are not exposed by service 'api' "
                                                                    "(ports [8080, 9090]); name a port the service exposes")]


def test_a_rule_for_an_account_no_service_runs_as_is_refused_by_the_model_too(tmp_path):
    """SMI names service accounts; a mesh needs the pods behind them. load_mesh refuses a rule whose
    destination account no service runs as (spec.check_references), and so does the traffic model
    for a spec that skipped that check (render_mesh takes a bare MeshSpec, render.render_mesh):
    one problem at the rule, naming the account, its namespace and the fix; nothing rendered."""
    from mesh_components.spec import parse_spec

    data = {"name": "gaps", "backend": {"type": "istio"},
            "clusters": [{"name": "c1", "cloud": "onprem", "region": "lab"}],
            "namespaces": [{"name": "shop"}, {"name": "front"}],
            "services": [{"name": "api", "namespace": "shop", "ports": [{"port": 8080, "name": "http", "protocol": "http"}]},
                         {"name": "client", "namespace": "front", "ports": [{"port": 80, "name": "http", "protocol": "http"}]}],
            "accessRules": [{"name": "to-ghost", "namespace": "shop", "destination": {"serviceAccount": "ghost"},
                             "sources": [{"serviceAccount": "client", "namespace": "front"}],
                             "http": [{"name": "get-a", "methods": ["GET"], "pathRegex": "/a"}]}]}
    with pytest.raises(SpecError) as err:
        load_mesh(data, base_dir=tmp_path)
    assert [p for p, _ in err.value.problems] == ["mesh.accessRules[0].destination.serviceAccount"]
    with pytest.raises(SpecError) as err:
        render_mesh(parse_spec(data))
    assert err.value.problems == [("mesh.accessRules[0]", "no service runs as service account 'ghost' in namespace "
                                                          "'shop'; set serviceAccount on the service in mesh.services")]
