"""How ``mesh_components.spec.smi`` reads SMI documents (issue 18): every malformed field of every SMI kind is
refused with the ``path: message`` the user sees (the path names the field, the message the fix), a
malformed entry does not hide the problems or the good entries after it, and the values that decide
who may call whom (subjects, ports, matches, headers, weights) are read as upstream reads them.

A refusal is tested by the refusal and, where dropping it would change what is admitted, by what the
document would grant without it. Upstream, as pinned:

- smi-spec main: apis/traffic-access/v1alpha2..v1alpha4/traffic-access.md, apis/traffic-specs/
  v1alpha4/traffic-specs.md, apis/traffic-split/v1alpha1..v1alpha4/traffic-split.md;
- smi-sdk-go v0.5.0 pkg/apis/{access,specs,split}/* (the Go types) and its CRDs, as
  ../shared/crds/smi/{access,httproutegroup,tcproute,split}.yaml;
- OSM v1.2.4 pkg/smi/client.go (``isValidTrafficTarget``, ``ListServiceAccounts``);
- RE2 syntax https://github.com/google/re2/wiki/Syntax (the engine of Envoy's ``safe_regex``);
- k8s.io/apimachinery pkg/api/resource/quantity.go (v1alpha1 weights);
- Gateway API v1.6.1 ``backendRefs[].weight`` (0..1000000).
"""
from __future__ import annotations

import copy
from fractions import Fraction

import pytest

from mesh_components.spec import smi
from mesh_components.spec.smi import HTTPMatch

WHERE = "smi.yaml[0]"


# --- documents --------------------------------------------------------------------------------------

def tt(version="v1alpha3", **spec):
    body = {"destination": {"kind": "ServiceAccount", "name": "api", "namespace": "shop"},
            "rules": [{"kind": "HTTPRouteGroup", "name": "g"}],
            "sources": [{"kind": "ServiceAccount", "name": "client", "namespace": "front"}]}
    body.update(spec)
    return {"apiVersion": f"access.smi-spec.io/{version}", "kind": "TrafficTarget",
            "metadata": {"name": "t", "namespace": "shop"}, "spec": body}


def group(matches, version="v1alpha4"):
    return {"apiVersion": f"specs.smi-spec.io/{version}", "kind": "HTTPRouteGroup",
            "metadata": {"name": "g", "namespace": "shop"}, "spec": {"matches": matches}}


def route(spec, version="v1alpha4"):
    doc = {"apiVersion": f"specs.smi-spec.io/{version}", "kind": "TCPRoute",
           "metadata": {"name": "r", "namespace": "shop"}}
    if spec is not ...:
        doc["spec"] = spec
    return doc


def split(version="v1alpha4", **spec):
    body = {"service": "api", "backends": [{"service": "api-v1", "weight": 1}]}
    body.update(spec)
    return {"apiVersion": f"split.smi-spec.io/{version}", "kind": "TrafficSplit",
            "metadata": {"name": "s", "namespace": "shop"}, "spec": body}


def problems(doc, where=WHERE):
    """The problems ``parse_document`` reports for ``doc``; the model must then be withheld."""
    model, found = smi.parse_document(doc, where)
    assert found and model is None, (model, found)
    return found


def parsed(doc, where=WHERE):
    model, found = smi.parse_document(doc, where)
    assert found == [] and model is not None, found
    return model


TT = "smi.yaml#TrafficTarget/shop/t"
G = "smi.yaml#HTTPRouteGroup/shop/g"
R = "smi.yaml#TCPRoute/shop/r"
S = "smi.yaml#TrafficSplit/shop/s"


# --- any kind: the object itself ---------------------------------------------------------------------

def test_a_document_that_is_not_a_mapping_is_refused():
    assert problems(["kind", "TrafficTarget"]) == [
        (WHERE, "expected a Kubernetes object (a mapping with apiVersion and kind)")]


@pytest.mark.parametrize("doc, message", [
    ({"kind": "TrafficTarget"}, "? TrafficTarget is not an SMI kind this reads"),
    ({"apiVersion": "access.smi-spec.io/v1alpha3"}, "access.smi-spec.io/v1alpha3 ? is not an SMI kind this reads"),
    ({"apiVersion": "v1", "kind": "Service"}, "v1 Service is not an SMI kind this reads"),
    # the version is the last segment (apiVersion is group/version): an extra segment is no SMI group
    ({"apiVersion": "access.smi-spec.io/extra/v1alpha3", "kind": "TrafficTarget"},
     "access.smi-spec.io/extra/v1alpha3 TrafficTarget is not an SMI kind this reads"),
])
def test_an_object_of_no_smi_kind_is_refused_naming_what_it_is(doc, message):
    assert problems(doc) == [(WHERE, message + " (TrafficTarget, HTTPRouteGroup, TCPRoute, TrafficSplit)")]


def test_an_unknown_version_of_a_kind_names_the_newest():
    doc = {**tt(), "apiVersion": "access.smi-spec.io/v1beta1"}
    assert problems(doc) == [(WHERE, "TrafficTarget version 'v1beta1' is not known; use access.smi-spec.io/v1alpha3")]


def test_metadata_namespace_defaults_to_default_as_kubectl_applies_it():
    """A document without ``metadata.namespace`` lands in ``default`` (kubectl without ``-n`` and a
    context namespace), and its origin says so."""
    doc = group([{"name": "m"}])
    del doc["metadata"]["namespace"]
    g = parsed(doc)
    assert (g.namespace, g.origin) == ("default", "smi.yaml#HTTPRouteGroup/default/g")


@pytest.mark.parametrize("metadata", ["g", None, ["g"]])
def test_metadata_that_is_not_a_mapping_is_a_missing_name(metadata):
    doc = {**group([{"name": "m"}]), "metadata": metadata}
    assert problems(doc) == [(f"{WHERE}.metadata.name", "missing or not a DNS-1123 name")]


@pytest.mark.parametrize("name", ["Web_Routes", "", 7, None])
def test_a_name_that_is_not_dns1123_is_refused_and_the_origin_says_unnamed(name):
    """The name problem and the field problems after it are all reported; the origin of the later
    ones shows the name as ``?``, never a made-up value."""
    doc = group([{"name": "m", "pathRegex": 5}])
    doc["metadata"]["name"] = name
    assert problems(doc) == [(f"{WHERE}.metadata.name", "missing or not a DNS-1123 name"),
                             ("smi.yaml#HTTPRouteGroup/shop/?.spec.matches[0].pathRegex", "expected a string")]


@pytest.mark.parametrize("namespace", ["Shop_1", "", 5])
def test_a_namespace_that_is_not_a_dns1123_label_is_refused(namespace):
    doc = group([{"name": "m", "pathRegex": 5}])
    doc["metadata"]["namespace"] = namespace
    assert problems(doc) == [(f"{WHERE}.metadata.namespace", f"{namespace!r} is not a DNS-1123 label"),
                             ("smi.yaml#HTTPRouteGroup/?/g.spec.matches[0].pathRegex", "expected a string")]


def test_the_origin_keeps_a_file_name_that_holds_brackets():
    """``where`` is ``<file>[<document index>]``; only that last index is cut, so a file called
    ``a[1].yaml`` keeps its name in every later path."""
    g = parsed(group([{"name": "m"}]), "policies/a[1].yaml[3]")
    assert g.origin == "policies/a[1].yaml#HTTPRouteGroup/shop/g"


@pytest.mark.parametrize("doc", [{**tt(), "spec": None}, {**tt(), "spec": ["x"]}, {**group([]), "spec": "m"},
                                 {**split(), "spec": None}],
                         ids=["target-null", "target-list", "group-string", "split-null"])
def test_a_missing_spec_is_refused(doc):
    assert problems(doc) == [(f"smi.yaml#{doc['kind']}/shop/{doc['metadata']['name']}.spec",
                              "missing or not a mapping")]


@pytest.mark.parametrize("version", ["v1alpha3", "v1alpha4"])
def test_a_tcproute_without_spec_is_a_route_of_every_port(version):
    """smi-sdk-go v0.5.0 pkg/apis/specs/v1alpha3 and v1alpha4/tcp_route.go: ``Spec TCPRouteSpec
    `json:"spec,omitempty"``` (absent is the empty spec); traffic-specs v1alpha4: "if not specified,
    traffic will be allowed to all ports"."""
    r = parsed(route(..., version))
    assert (r.ports, r.origin) == ((), R)
    assert parsed(route(None, version)).ports == ()


def test_an_approximation_annotation_problem_names_the_annotation():
    doc = group([{"name": "m", "pathRegex": "/a/.*"}])
    doc["metadata"]["annotations"] = {smi.APPROXIMATE_ANNOTATION: "m=suffix"}
    assert problems(doc) == [(f"{G}.metadata.annotations[{smi.APPROXIMATE_ANNOTATION}]",
                              "'m=suffix': write <match>=prefix (the only named approximation)")]


@pytest.mark.parametrize("doc", [tt(), route({"matches": {"ports": [80]}}), split()], ids=lambda d: d["kind"])
def test_the_approximation_annotation_is_read_on_route_groups_only(doc):
    """The annotation names HTTP matches; on other kinds it means nothing and changes nothing."""
    plain = parsed(copy.deepcopy(doc))
    doc["metadata"]["annotations"] = {smi.APPROXIMATE_ANNOTATION: "m=prefix"}
    assert parsed(doc) == plain


# --- TrafficTarget ------------------------------------------------------------------------------------

SUBJECT = "expected {kind: ServiceAccount, name, namespace}"


@pytest.mark.parametrize("field", ["destination", "sources[0]"])
@pytest.mark.parametrize("value, path, message", [
    ("api", "", SUBJECT),
    (None, "", SUBJECT),
    ({"kind": "Group", "name": "api", "namespace": "shop"}, ".kind", "'Group': SMI identities are ServiceAccounts"),
    ({"kind": "serviceaccount", "name": "api", "namespace": "shop"}, ".kind",
     "'serviceaccount': SMI identities are ServiceAccounts"),
    # the CRD requires kind (../shared/crds/smi/access.yaml: required [name, kind])
    ({"name": "api", "namespace": "shop"}, ".kind",
     "None: SMI identities are ServiceAccounts; write kind: ServiceAccount"),
    ({"kind": "ServiceAccount", "namespace": "shop"}, ".name", "missing or not a service account name"),
    ({"kind": "ServiceAccount", "name": "Api_1", "namespace": "shop"}, ".name", "missing or not a service account name"),
    ({"kind": "ServiceAccount", "name": "api", "namespace": "Not_A_Label"}, ".namespace",
     "'Not_A_Label' is not a namespace name"),
    ({"kind": "ServiceAccount", "name": "api", "namespace": 3}, ".namespace", "3 is not a namespace name"),
    ({"kind": "ServiceAccount", "name": "api"}, ".namespace",
     "missing: write the service account's namespace (e.g. 'shop', the TrafficTarget's); OSM reads a "
     "subject without one as no service account, so it is not guessed"),
])
def test_a_malformed_subject_is_refused_naming_the_field(field, value, path, message):
    if field == "destination":
        doc = tt(destination=value)
    else:
        doc = tt(sources=[value])
    where = f"{TT}.spec.{field}"
    assert problems(doc) == [(where + path, message)]


def test_a_subject_without_namespace_is_not_read_as_the_targets_namespace():
    """OSM v1.2.4 (pkg/smi/client.go) takes a subject's namespace verbatim: ``ListServiceAccounts``
    makes ``K8sServiceAccount{Namespace: sources.Namespace, ...}`` (an absent one names no
    service account) and ``isValidTrafficTarget`` drops a target whose destination namespace is not
    its own. Guessing the TrafficTarget's namespace instead would admit ``shop/client``, which the
    document, as OSM reads it, does not; so the document is refused, and with the namespace written
    it is read as written."""
    guessed = tt(sources=[{"kind": "ServiceAccount", "name": "client", "namespace": "shop"}])
    assert parsed(guessed).sources == (("shop", "client"),)
    problems(tt(sources=[{"kind": "ServiceAccount", "name": "client"}]))
    problems(tt(destination={"kind": "ServiceAccount", "name": "api"}))
    assert parsed(tt()).destination == ("shop", "api")


def test_a_malformed_source_does_not_hide_the_sources_after_it():
    doc = tt(sources=["client", {"kind": "Group", "name": "x", "namespace": "front"},
                      {"kind": "ServiceAccount", "name": "c", "namespace": "front"}])
    assert problems(doc) == [(f"{TT}.spec.sources[0]", SUBJECT),
                             (f"{TT}.spec.sources[1].kind", "'Group': SMI identities are ServiceAccounts")]
    good = tt(sources=[{"kind": "ServiceAccount", "name": "a", "namespace": "front"},
                       {"kind": "ServiceAccount", "name": "b", "namespace": "ops"}])
    assert parsed(good).sources == (("front", "a"), ("ops", "b"))


@pytest.mark.parametrize("key, value, message", [
    ("sources", None, "required; give a list"),
    ("sources", {"kind": "ServiceAccount", "name": "c", "namespace": "front"}, "expected a list"),
    ("rules", None, "required; give a list"),
    ("rules", "g", "expected a list"),
])
def test_sources_and_rules_are_required_lists(key, value, message):
    doc = tt()
    if value is None:
        del doc["spec"][key]
    else:
        doc["spec"][key] = value
    assert problems(doc) == [(f"{TT}.spec.{key}", message)]


RULE = "expected {kind: HTTPRouteGroup|TCPRoute, name, matches?}"


@pytest.mark.parametrize("rule, path, message", [
    ("g", "", RULE),
    ({"kind": "HTTPRoute", "name": "g"}, "", RULE),
    ({"kind": "HTTPRouteGroup", "name": 7}, "", RULE),
    ({"kind": "TCPRoute"}, "", RULE),
    ({"name": "g"}, "", RULE),
    ({"kind": "HTTPRouteGroup", "name": "g", "matches": "m"}, ".matches", "expected a list"),
    ({"kind": "HTTPRouteGroup", "name": "g", "matches": ["m", 1]}, ".matches", "expected a list of match names"),
])
def test_a_malformed_rule_is_refused_naming_it(rule, path, message):
    assert problems(tt(rules=[rule])) == [(f"{TT}.spec.rules[0]{path}", message)]


def test_a_malformed_rule_does_not_hide_the_rules_after_it():
    doc = tt(rules=["g", {"kind": "HTTPRouteGroup", "name": "g", "matches": [1]},
                    {"kind": "TCPRoute", "name": 5}])
    assert problems(doc) == [(f"{TT}.spec.rules[0]", RULE), (f"{TT}.spec.rules[1].matches", "expected a list of match names"),
                             (f"{TT}.spec.rules[2]", RULE)]
    good = tt(rules=[{"kind": "HTTPRouteGroup", "name": "g", "matches": ["m"]}, {"kind": "TCPRoute", "name": "r"}])
    assert parsed(good).rules == (smi.RuleRef("HTTPRouteGroup", "g", ("m",)), smi.RuleRef("TCPRoute", "r"))


def test_v1alpha1_targets_name_their_rules_specs():
    """access.smi-spec.io/v1alpha1 keeps its fields at the top level and calls the rules ``specs``
    (smi-sdk-go v0.5.0 pkg/apis/access/v1alpha1/traffic_target.go)."""
    doc = {"apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget",
           "metadata": {"name": "t", "namespace": "shop"},
           "destination": {"kind": "ServiceAccount", "name": "api", "namespace": "shop", "port": 8080},
           "specs": [{"kind": "HTTPRouteGroup", "name": "g"}],
           "sources": [{"kind": "ServiceAccount", "name": "client", "namespace": "front"}]}
    t = parsed(doc)
    assert (t.rules, t.destination_port) == ((smi.RuleRef("HTTPRouteGroup", "g"),), 8080)
    del doc["specs"]
    assert problems(doc) == [(f"{TT}.spec.specs", "required; give a list")]


@pytest.mark.parametrize("port", [1, 8080, 65535, 8080.0])
def test_destination_port_takes_every_port_number(port):
    """v1alpha2 ``destination.port`` (smi-sdk-go v0.5.0 pkg/apis/access/v1alpha2/traffic_target.go
    ``Port *int``): 1-65535, the port range."""
    t = parsed(tt("v1alpha2", destination={"kind": "ServiceAccount", "name": "api", "namespace": "shop",
                                            "port": port}))
    assert t.destination_port == port and type(t.destination_port) is int


@pytest.mark.parametrize("port", [0, 65536, -1, "8080", True, 80.5])
def test_destination_port_outside_the_port_range_is_refused(port):
    doc = tt("v1alpha2", destination={"kind": "ServiceAccount", "name": "api", "namespace": "shop", "port": port})
    assert problems(doc) == [(f"{TT}.spec.destination.port", f"{port!r} is not a port number: use 1-65535")]


# --- HTTPRouteGroup -----------------------------------------------------------------------------------

MATCH = "expected {name, methods?, pathRegex?, headers?}"
HEADERS = "expected header: value-regex mappings"


@pytest.mark.parametrize("spec, path, message", [
    ({}, "", "required; give a list"),
    ({"matches": {"name": "m"}}, "", "expected a list"),
    ({"matches": ["m"]}, "[0]", MATCH),
    ({"matches": [{"methods": ["GET"]}]}, "[0]", MATCH),
    ({"matches": [{"name": 1}]}, "[0]", MATCH),
    ({"matches": [{"name": "m", "methods": "GET"}]}, "[0].methods", "expected a list"),
    ({"matches": [{"name": "m", "pathRegex": 5}]}, "[0].pathRegex", "expected a string"),
    ({"matches": [{"name": "m", "pathRegex": ["/a"]}]}, "[0].pathRegex", "expected a string"),
    ({"matches": [{"name": "m", "headers": "x-env"}]}, "[0].headers", "expected a list"),
    ({"matches": [{"name": "m", "headers": ["x-env"]}]}, "[0].headers", HEADERS),
    ({"matches": [{"name": "m", "headers": [{"x-env": 1}]}]}, "[0].headers", HEADERS),
    ({"matches": [{"name": "m", "headers": [{1: "a"}]}]}, "[0].headers", HEADERS),
], ids=lambda v: str(v)[:40])
@pytest.mark.parametrize("version", ["v1alpha3", "v1alpha4"])
def test_a_malformed_route_group_field_is_refused_naming_it(spec, path, message, version):
    doc = {**group([], version), "spec": spec}
    assert problems(doc) == [(f"{G}.spec.matches{path}", message)]


def test_v1alpha2_route_groups_keep_matches_at_the_top_level():
    """specs.smi-spec.io v1alpha1/v1alpha2 (smi-sdk-go v0.5.0 pkg/apis/specs/v1alpha2/http_route.go:
    ``Matches`` beside ``ObjectMeta``); a ``spec`` there is pruned by the API server, so refused."""
    top = {"apiVersion": "specs.smi-spec.io/v1alpha2", "kind": "HTTPRouteGroup",
           "metadata": {"name": "g", "namespace": "shop"}, "matches": [{"name": "m", "pathRegex": "/a"}]}
    assert parsed(top).matches == (HTTPMatch("m", ("*",), "/a"),)
    assert problems({**group([{"name": "m"}], "v1alpha2")}) == [
        (f"{G}.spec", "specs.smi-spec.io/v1alpha2 HTTPRouteGroup has no spec: its fields sit at the top level (spec "
                      "arrived in v1alpha3); move them up, or use specs.smi-spec.io/v1alpha4")]


def test_a_malformed_match_does_not_hide_the_matches_after_it():
    doc = group(["m", {"name": "a", "methods": ["get"]}, {"name": "b", "headers": [5]}])
    found = problems(doc)
    assert [p for p, _ in found] == [f"{G}.spec.matches[0]", f"{G}.spec.matches[1].methods[0]",
                                     f"{G}.spec.matches[2].headers"]
    assert found[0][1] == MATCH and found[2][1] == HEADERS
    assert found[1][1].startswith("'get' is not an HTTP method: methods are case-sensitive")


def test_a_malformed_header_map_does_not_hide_the_header_maps_after_it():
    found = problems(group([{"name": "m", "headers": [5, {"x env": "a"}, {"x-a": "1"}, {"X-A": "2"}]}]))
    assert [p for p, _ in found] == [f"{G}.spec.matches[0].headers", f"{G}.spec.matches[0].headers[x env]",
                                     f"{G}.spec.matches[0].headers"]
    assert found[0][1] == HEADERS
    assert found[1][1] == smi.header_name_problem("x env")
    assert found[2][1] == "header 'X-A' is matched twice (as 'x-a' and 'X-A'; header names are case-insensitive): " \
                          "give one condition for it"


def test_an_empty_path_regex_is_no_path_constraint():
    """smi-sdk-go v0.5.0 pkg/apis/specs/v1alpha4/http_route.go ``PathRegex string
    `json:"pathRegex,omitempty"``` and OSM v1.2.4 pkg/catalog/inbound_traffic_policies.go wildcard an
    empty path (:func:`smi.empty_as_absent`)."""
    g = parsed(group([{"name": "m", "pathRegex": ""}, {"name": "n", "pathRegex": "/a"}]))
    assert [m.path_regex for m in g.matches] == [None, "/a"]
    assert smi.empty_as_absent("") is None and smi.empty_as_absent(".*") == ".*"


def test_methods_default_to_any_and_are_kept_as_written():
    g = parsed(group([{"name": "a"}, {"name": "b", "methods": []}, {"name": "c", "methods": ["GET", "POST"]},
                      {"name": "d", "methods": ["*"]}]))
    assert [m.methods for m in g.matches] == [("*",), ("*",), ("GET", "POST"), ("*",)]
    assert [m.any_method for m in g.matches] == [True, True, False, True]
    assert HTTPMatch("e", ()).any_method and HTTPMatch("f", ("GET", "*")).any_method


def test_headers_of_every_header_map_are_all_required():
    """v1alpha4 types headers as a list of name->regex maps (../shared/crds/smi/httproutegroup.yaml);
    older documents write one map. Every condition of every map is kept: dropping one would admit
    requests without that header."""
    g = parsed(group([{"name": "m", "headers": [{"x-b": "2", "x-a": "1"}, {"x-c": "3"}]},
                      {"name": "n", "headers": {"x-z": "9", "x-y": "8"}}]))
    assert g.matches[0].headers == (("x-a", "1"), ("x-b", "2"), ("x-c", "3"))
    assert g.matches[1].headers == (("x-y", "8"), ("x-z", "9"))


@pytest.mark.parametrize("name", [":authority", "x env", "", "x-é"])
def test_a_header_name_that_is_no_http_token_is_refused(name):
    """RFC 9110 section 5.1 field-name = token; Gateway API v1.6.1 ``HTTPHeaderName``."""
    assert problems(group([{"name": "m", "headers": [{name: "a"}]}])) == [
        (f"{G}.spec.matches[0].headers[{name}]", smi.header_name_problem(name))]
    assert smi.header_name_problem(name).startswith(f"{name!r} is not an HTTP header name")


def test_a_header_matched_twice_is_refused_whatever_its_case():
    """Header names are case-insensitive (RFC 9110 section 5.1) and an HTTPRoute match keeps only the
    first condition on a header (Gateway API v1.6.1 HTTPRouteMatch.headers), so a second one would
    be dropped, admitting what it excludes."""
    found = problems(group([{"name": "m", "headers": [{"X-Id": "a"}, {"x-id": "b"}]}]))
    assert found == [(f"{G}.spec.matches[0].headers", "header 'x-id' is matched twice (as 'X-Id' and 'x-id'; header "
                                                      "names are case-insensitive): give one condition for it")]


# --- TCPRoute -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, path, message", [
    ({"matches": [8080]}, ".matches", "expected {ports: [...]}"),
    ({"matches": "8080"}, ".matches", "expected {ports: [...]}"),
    ({"matches": {"ports": 8080}}, ".matches.ports", "expected a list"),
    ({"matches": {"ports": [0]}}, ".matches.ports[0]", "0 is not a port number: use 1-65535"),
    ({"matches": {"ports": [65536]}}, ".matches.ports[0]", "65536 is not a port number: use 1-65535"),
    ({"matches": {"ports": ["80"]}}, ".matches.ports[0]", "'80' is not a port number: use 1-65535"),
    ({"matches": {"ports": [False]}}, ".matches.ports[0]", "False is not a port number: use 1-65535"),
    ({"matches": {"ports": [80, 1.5, 90, -3]}}, ".matches.ports[1]", "1.5 is not a port number: use 1-65535"),
])
def test_a_malformed_tcproute_field_is_refused_naming_it(spec, path, message):
    found = problems(route(spec))
    assert found[0] == (f"{R}.spec{path}", message)
    if spec["matches"] == {"ports": [80, 1.5, 90, -3]}:  # a bad port does not hide the later ones
        assert found[1:] == [(f"{R}.spec.matches.ports[3]", "-3 is not a port number: use 1-65535")]
    else:
        assert len(found) == 1


def test_tcproute_ports_take_the_whole_port_range():
    assert parsed(route({"matches": {"ports": [1, 8080, 65535]}})).ports == (1, 8080, 65535)
    assert parsed(route({"matches": {}})).ports == ()
    assert parsed(route({"matches": {"ports": []}})).ports == ()


@pytest.mark.parametrize("version", ["v1alpha3"])
def test_tcproute_ports_before_v1alpha4_are_refused(version):
    assert problems(route({"matches": {"ports": [80]}}, version)) == [
        (f"{R}.spec.matches", f"TCPRoute {version} has no matches.ports (added in v1alpha4; the API server drops it, "
                              f"so the route would admit every port): use specs.smi-spec.io/v1alpha4")]


# --- TrafficSplit -------------------------------------------------------------------------------------

SERVICE_OTHER_NS = ("'api.other' does not name a Service of the split's namespace 'shop' (a TrafficSplit splits a "
                    "root service of its own namespace, and meshes would apply it to shop/api, not to what the name "
                    "says): write 'api' to split shop/api, or put the TrafficSplit in the root service's namespace")


@pytest.mark.parametrize("spec, path, message", [
    ({"service": None}, ".service", "missing or not a service name"),
    ({"service": ""}, ".service", "missing or not a service name"),
    ({"service": 5}, ".service", "missing or not a service name"),
    ({"service": "Api_1"}, ".service", "'Api_1' is not a service name"),
    ({"service": "api.other"}, ".service", SERVICE_OTHER_NS),
    ({"service": "api.shop.svc.other.local"}, ".service",
     SERVICE_OTHER_NS.replace("'api.other'", "'api.shop.svc.other.local'")),
    ({"backends": None}, ".backends", "required; give a list"),
    ({"backends": {"service": "api-v1", "weight": 1}}, ".backends", "expected a list"),
    ({"backends": ["api-v1"]}, ".backends[0]", "expected {service, weight}"),
    ({"backends": [{"weight": 1}]}, ".backends[0]", "expected {service, weight}"),
    ({"backends": [{"service": "api-v1", "weight": 0}]}, ".backends",
     "every weight is 0; give one backend a positive weight"),
    ({"backends": [{"service": "a", "weight": 0}, {"service": "b", "weight": 0}]}, ".backends",
     "every weight is 0; give one backend a positive weight"),
    ({"matches": {"name": "m"}}, ".matches", "expected a list"),
], ids=lambda v: str(v)[:40])
@pytest.mark.parametrize("version", ["v1alpha2", "v1alpha3", "v1alpha4"])
def test_a_malformed_split_field_is_refused_naming_it(spec, path, message, version):
    assert problems(split(version, **spec)) == [(f"{S}.spec{path}", message)]


@pytest.mark.parametrize("weight", [-1, 1.5, "1", True, None])
@pytest.mark.parametrize("version", ["v1alpha2", "v1alpha4"])
def test_a_weight_that_is_no_non_negative_integer_is_refused(weight, version):
    """split.smi-spec.io v1alpha2-v1alpha4: ``Weight int`` (smi-sdk-go v0.5.0)."""
    assert problems(split(version, backends=[{"service": "api-v1", "weight": weight}])) == [
        (f"{S}.spec.backends[0].weight", f"{weight!r} is not a weight: split.smi-spec.io/{version} weights are "
                                         f"non-negative integers (quantities such as '500m' are v1alpha1 only)")]


def test_a_weight_of_zero_is_a_backend_that_gets_no_traffic():
    """The split CRD's weight has no minimum (../shared/crds/smi/split.yaml ``type: number``) and the
    smi-spec workflow starts the new version at ``weight: 0`` (apis/traffic-split/v1alpha4/
    traffic-split.md, "Workflow"); Gateway API takes 0 too ("If weight is set to 0, no traffic should
    be forwarded for this entry", ../shared/crds/gateway-api backendRefs[].weight). Only all-zero is
    refused (above)."""
    s = parsed(split(backends=[{"service": "api-v1", "weight": 1}, {"service": "api-v2", "weight": 0}]))
    assert s.backends == (("api-v1", 1), ("api-v2", 0))


def test_a_malformed_backend_does_not_hide_the_backends_after_it():
    doc = split(backends=["a", {"service": "b", "weight": -1}, {"service": "c", "weight": 1}])
    assert problems(doc) == [
        (f"{S}.spec.backends[0]", "expected {service, weight}"),
        (f"{S}.spec.backends[1].weight", "-1 is not a weight: split.smi-spec.io/v1alpha4 weights are non-negative "
                                         "integers (quantities such as '500m' are v1alpha1 only)")]


@pytest.mark.parametrize("service", ["api", "api.shop", "api.shop.svc", "api.shop.svc.cluster.local"])
def test_the_root_service_may_be_written_as_its_fqdn_in_the_splits_namespace(service):
    """traffic-split v1alpha4: "The spec.service name is the FQDN that applications will use"."""
    assert parsed(split(service=service)).service == "api"


def test_split_matches_are_read_so_that_they_can_be_refused():
    """split.smi-spec.io/v1alpha4 ``matches`` (HTTPRouteGroup references) are read as written:
    :func:`smi.check_documents` refuses them (not translated yet); read as empty, the split would
    silently apply to every request."""
    s = parsed(split(matches=[{"kind": "HTTPRouteGroup", "name": "canary"}, {"kind": "HTTPRouteGroup", "name": "b"}]))
    assert s.matches == ("canary", "b")
    assert parsed(split()).matches == ()


def test_a_v1alpha1_spec_nested_in_spec_is_not_read():
    """smi-sdk-go v0.5.0 pkg/apis/split/v1alpha1/traffic_split.go: ``Spec TrafficSplitSpec
    `json:"spec"``` holds ``Service`` and ``Backends``; a ``spec`` inside it is no field (the API
    server prunes it), so what it holds is never read in place of the real fields."""
    doc = split("v1alpha1", backends=[{"service": "api-v1", "weight": "1"}])
    doc["spec"]["spec"] = {"service": "other", "backends": [{"service": "other-v1", "weight": "1"}]}
    s = parsed(doc)
    assert (s.service, s.backends) == ("api", (("api-v1", 1),))
    nested = {**split("v1alpha1"), "spec": {"spec": {"service": "api", "backends": [{"service": "api-v1", "weight": 1}]}}}
    assert problems(nested) == [(f"{S}.spec.service", "missing or not a service name"),
                                (f"{S}.spec.backends", "required; give a list")]


@pytest.mark.parametrize("weight, value", [
    ("500m", Fraction(1, 2)), (" 500m ", Fraction(1, 2)), ("1", 1), (1, 1), (1.5, Fraction(3, 2)), ("10.", 10),
    (".5", Fraction(1, 2)), ("2e3", 2000), ("2E-1", Fraction(1, 5)), ("1k", 1000), ("1Ki", 1024), ("+2", 2), ("0", 0),
    ("1n", Fraction(1, 10 ** 9)),
])
def test_v1alpha1_weights_are_kubernetes_quantities(weight, value):
    """k8s.io/apimachinery pkg/api/resource/quantity.go: ``<signedNumber><suffix>``; a quoted value
    has its surrounding spaces trimmed (``Quantity.UnmarshalJSON``: ``ParseQuantity(strings.TrimSpace(...))``)."""
    assert smi.parse_quantity(weight) == value


@pytest.mark.parametrize("weight", ["1.5.5", "m", "", "1 m", "0x10", True, None, [1], {"a": 1}])
def test_what_is_no_quantity_is_refused(weight):
    assert smi.parse_quantity(weight) is None
    assert problems(split("v1alpha1", backends=[{"service": "api-v1", "weight": weight}])) == [
        (f"{S}.spec.backends[0].weight", f"{weight!r} is not a non-negative resource quantity (e.g. 1, 500m, 1.5)")]


# --- weights in lowest terms ----------------------------------------------------------------------------

@pytest.mark.parametrize("weights, expected", [
    ([], []),
    ([1000000, 2], [1000000, 2]),          # at the maximum: kept as written
    ([1000000, 1], [1000000, 1]),
    ([2000000, 2], [1000000, 1]),          # above it: divided by the gcd
    ([Fraction(1, 2), Fraction(1)], [1, 2]),
    ([Fraction(1, 3), Fraction(2, 3), 0], [1, 2, 0]),
    ([6, 4], [6, 4]),                      # integers are not reduced when they fit
])
def test_weights_keep_their_proportions_as_integers(weights, expected):
    """Gateway API v1.6.1 ``backendRefs[].weight``: an integer 0..1000000."""
    got, problem = smi.normalise_weights(weights)
    assert (got, problem) == (expected, None)
    assert all(type(w) is int for w in got)


def test_weights_that_cannot_be_written_within_the_maximum_are_refused():
    got, problem = smi.normalise_weights([1000001, 1])
    assert got == [1000001, 1]
    assert problem == ("in lowest terms the weights are [1000001, 1]; the largest is above 1000000, the most a Gateway "
                       "API backendRef weight may be: choose weights with that precision")


# --- regexes: alternatives, prefixes, overlap -------------------------------------------------------------

ALTERNATIVES = [
    ("/a", ["/a"]),
    ("/a|/b", ["/a", "/b"]),
    ("|/a", ["", "/a"]),
    ("(a|b)", ["(a|b)"]),
    ("(a|b)|c", ["(a|b)", "c"]),
    ("((a|b)|c)|d", ["((a|b)|c)", "d"]),
    (r"a\|b", [r"a\|b"]),
    (r"a\(|b", [r"a\(", "b"]),
    ("[|]|x", ["[|]", "x"]),
    ("[a]|x", ["[a]", "x"]),
    ("[ab|c]|x", ["[ab|c]", "x"]),
    ("[]|]|x", ["[]|]", "x"]),              # RE2: a ']' right after '[' or '[^' is a member
    ("[^]|]|x", ["[^]|]", "x"]),
    ("a[^]|]|x", ["a[^]|]", "x"]),
    ("[^a|]|x", ["[^a|]", "x"]),
    (r"[\]|]|x", [r"[\]|]", "x"]),
    ("(/a|[)])|/b", ["(/a|[)])", "/b"]),
]


@pytest.mark.parametrize("regex, expected", ALTERNATIVES)
def test_alternatives_split_at_top_level_bars_only(regex, expected):
    """A string full-matches a regex iff it full-matches one of its top-level alternatives (RE2
    syntax: ``|`` inside a group or a class ``[...]`` does not split; ``\\|`` is a literal)."""
    assert smi.alternatives(regex) == expected
    probes = ["", "a", "b", "c", "d", "x", "|", "]", "(", ")", "/a", "/b", "a|b", "a(", "^"]
    whole = smi.re2_compile(regex)
    parts = [smi.re2_compile(a) for a in expected]
    for s in probes:
        assert (whole.fullmatch(s) is not None) == any(p.fullmatch(s) is not None for p in parts), (regex, s)


@pytest.mark.parametrize("regex, prefix", [
    ("/api/.*", "/api/"), ("^/api/.*", "/api/"), ("^/api$", "/api"), (r"/v1\.2/.*", "/v1.2/"), (r"/v1\.", "/v1."),
    ("/ab*", "/a"), ("/a(b|c)", "/a"), ("/a/.*|/a/b", "/a/"), ("/ab|/ac", "/a"), ("/x|/y", "/"), ("/a\\", "/a"),
    ("^^/a", ""), ("", ""),
])
def test_literal_prefix_is_what_every_admitted_path_starts_with(regex, prefix):
    assert smi.literal_prefix(regex) == prefix
    compiled = smi.re2_compile(regex)
    if compiled is not None:  # every probe the regex admits starts with the prefix
        for s in ["/api/", "/api", "/v1.2/x", "/v1.", "/a", "/ab", "/abb", "/ac", "/a/b", "/x", "/y", ""]:
            assert compiled.fullmatch(s) is None or s.startswith(prefix), (regex, s)


def m(path=None, methods=("*",), headers=()):
    return HTTPMatch("m", tuple(methods), path, tuple(headers))


@pytest.mark.parametrize("a, b, overlap", [
    (m("/a"), m("/a"), True),
    (m("/a"), m("/b"), False),
    (m("^/a$"), m("/a"), True),
    (m("/a/.*"), m("/a/b/.*"), True),         # prefixes, one inside the other
    (m("/a/.*"), m("/b/.*"), False),
    (m("/a/1"), m("/a/.*"), True),            # a literal path the other admits
    (m("/b"), m("/a/.*"), False),
    (m("/a"), m("(?!x)"), True),              # RE2 cannot read the other: unsure, so overlapping
    (m("/a|/c"), m("/c"), True),
    (m("/a|/c"), m("/b"), False),
    (m(), m("/b"), True),
    (m(methods=["GET"]), m(methods=["POST"]), False),
    (m(methods=["GET", "POST"]), m(methods=["POST"]), True),
    # the same header (names are case-insensitive) required to equal two different literals
    (m(headers=[("X-Env", "a")]), m(headers=[("x-env", "b")]), False),
    (m(headers=[("x-env", "a")]), m(headers=[("X-ENV", "b")]), False),
    (m(headers=[("x-env", "a")]), m(headers=[("x-env", "a")]), True),
    (m(headers=[("x-env", "x.*")]), m(headers=[("x-env", "xy")]), True),
    (m(headers=[("x-env", "xy")]), m(headers=[("x-env", "x.*")]), True),
    (m(headers=[("x-env", "a")]), m(headers=[("x-other", "b")]), True),
    (m(headers=[("x-env", "exact")]), m(headers=[("x-env", "prefix")]), False),
])
def test_may_overlap_is_false_only_when_no_request_satisfies_both(a, b, overlap):
    assert smi.may_overlap(a, b) is overlap
    assert smi.may_overlap(b, a) is overlap


def test_match_key_names_a_route_by_what_it_matches():
    """Two matches are one route when they admit the same requests whatever they are called."""
    key = smi.match_key
    assert key(m()) == key(HTTPMatch("other", ())) == key(m(methods=["GET", "*"])) == key(m(".*"))
    assert key(m(methods=["POST", "GET", "GET"])) == key(m(methods=["GET", "POST"])) != key(m(methods=["GET"]))
    assert key(m()) != key(m(methods=["GET"]))
    assert key(m(headers=[("X-Env", "a")])) == key(m(headers=[("x-env", "a")])) != key(m(headers=[("x-env", "b")]))
    assert key(m("/a")) != key(m()) and key(m("/a")) != key(m("/a/.*"))


# --- regexes the engines read otherwise -------------------------------------------------------------------

def test_a_regex_re2_refuses_is_refused_quoting_re2():
    why = smi.regex_problem("/a(?!b)")
    assert why.startswith("'/a(?!b)' is not an RE2 regex: RE2 (the engine of Envoy's safe_regex, which OSM uses) "
                          "says \"")
    assert why.endswith("\"; rewrite it in RE2 syntax (no look-around or back-references; "
                        "https://github.com/google/re2/wiki/Syntax)")


def test_a_path_and_a_header_value_are_judged_as_linkerd_is_sent_them():
    r"""``a\<`` is the literal ``a<`` to RE2. As a path it is no absolute path, so Linkerd is sent it
    as a RegularExpression (``linkerd_policy.rendered_regex``), where Rust regex reads ``\<`` as a
    word boundary: refused. As a header value it is sent as an Exact ``a<``: nothing to refuse."""
    path = smi.regex_problem(r"a\<", backend="linkerd")
    assert path == (r"'a\\<' does not read alike in Rust regex 1.13, the engine of Linkerd's policy controller and "
                    r"proxy: \< is '<' to RE2 but a word boundary to Rust regex; write <")
    assert smi.regex_problem(r"a\<", "pathRegex", "linkerd") == path == smi.regex_problem(r"a\<")
    assert smi.regex_problem(r"a\<", "header", "linkerd") is None
    assert smi.regex_problem(r"a\<", "header") is None
    assert smi.regex_problem(r"a\<", backend="osm") is None


# --- what a guessed subject namespace would admit -----------------------------------------------------------

@pytest.mark.parametrize("mesh", ["istio", "linkerd", "osm"])
def test_a_guessed_source_namespace_would_admit_a_caller_osm_does_not(mesh, tmp_path):
    """Without the refusal, a source ``{kind: ServiceAccount, name: api}`` of a TrafficTarget in
    ``shop`` would be read as ``shop/api`` and every mesh would be sent a rule admitting ``shop/api``;
    OSM, reading the same document itself, admits no one for it (pkg/smi/client.go
    ``ListServiceAccounts``: ``K8sServiceAccount{Namespace: sources.Namespace}`` with an empty namespace)."""
    from mesh_components.spec import LoadedMesh

    from policy_eval import Request
    from test_policy_gaps import API, GET_A, evaluator, group as gaps_group, mesh_of, objects_for

    bare = tt(sources=[{"kind": "ServiceAccount", "name": "api"}])
    found = problems(bare)
    assert found[0][0] == f"{TT}.spec.sources[0].namespace"
    guessed = copy.deepcopy(bare)
    guessed["spec"]["sources"][0]["namespace"] = "shop"     # what reading it as the target's namespace gives
    guessed["metadata"]["name"] = "t2"
    loaded = mesh_of([API], [gaps_group("g", GET_A), tt()], tmp_path)   # shop/api policed: front/client only
    self_call = Request(("shop", "api"), "shop", "api", "api", (("app", "api"),), 8080, http=True, method="GET",
                        path="/a/1", service_port=8080)
    assert not evaluator(objects_for(loaded, mesh), mesh)(self_call)
    wide = LoadedMesh(loaded.spec, loaded.smi_documents + (parsed(guessed),))
    assert evaluator(objects_for(wide, mesh), mesh)(self_call)
