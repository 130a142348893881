"""The policy evaluators against hand-written objects: one test per documented rule, each with an
allowed and a denied (or raising) case. The upstream source of each rule is cited in
``policy_eval``'s docstrings."""
from __future__ import annotations

import pytest

from policy_eval import (Request, Unsupported, istio_allows, linkerd_allows, osm_allows,
                         smi_allows)

TD = "cluster.local"
NS = "shop"
APP = (("app", "books"),)


def req(src=("shop", "web"), *, port=8080, method="GET", path="/", headers=(), http=True,
        ns=NS, service="books", sa="books", labels=APP) -> Request:
    if not http:
        return Request(src, ns, service, sa, labels, port, False)
    return Request(src, ns, service, sa, labels, port, True, method, path, tuple(headers))


def tcp(src=("shop", "web"), **kw) -> Request:
    return req(src, http=False, **kw)


# =============================================================================================
# SMI

def tt(rules, sources=(("shop", "web"),), name="tt", dest=("shop", "books"), port=None, ns=None):
    d = {"kind": "ServiceAccount", "namespace": dest[0], "name": dest[1]}
    if port is not None:
        d["port"] = port
    return {"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
            "metadata": {"name": name, "namespace": ns or dest[0]},
            "spec": {"destination": d, "rules": list(rules),
                     "sources": [{"kind": "ServiceAccount", "namespace": n, "name": s}
                                 for n, s in sources]}}


def hrg(matches, name="routes", ns=NS):
    return {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": {"name": name, "namespace": ns}, "spec": {"matches": list(matches)}}


def tcpr(ports, name="tcp", ns=NS):
    return {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
            "metadata": {"name": name, "namespace": ns}, "spec": {"matches": {"ports": list(ports)}}}


def hrule(*names, name="routes"):
    r = {"kind": "HTTPRouteGroup", "name": name}
    if names:
        r["matches"] = list(names)
    return r


TRULE = {"kind": "TCPRoute", "name": "tcp"}
API = {"name": "api", "pathRegex": "/api/.*", "methods": ["GET"]}
ALL = {"name": "all", "pathRegex": ".*", "methods": ["*"]}


def test_smi_destination_without_traffic_target_is_unrestricted():
    docs = [tt([hrule("api")], dest=("shop", "other")), hrg([API])]
    assert smi_allows(docs, req(path="/anything"))
    assert not smi_allows(docs, req(path="/anything", sa="other"))


def test_smi_only_listed_sources():
    docs = [tt([hrule()]), hrg([ALL])]
    assert smi_allows(docs, req(("shop", "web")))
    assert not smi_allows(docs, req(("shop", "intruder")))
    assert not smi_allows(docs, req(("other", "web")))


def test_smi_method_and_full_match_path():
    docs = [tt([hrule("api")]), hrg([API])]
    assert smi_allows(docs, req(path="/api/books"))
    assert not smi_allows(docs, req(path="/v1/api/books"))      # anchored at the start
    assert not smi_allows(docs, req(method="POST", path="/api/books"))
    docs = [tt([hrule("exact")]), hrg([{"name": "exact", "pathRegex": "/api"}])]
    assert smi_allows(docs, req(path="/api", method="DELETE"))  # no methods: any method
    assert not smi_allows(docs, req(path="/api/x"))             # anchored at the end too


def test_smi_named_matches_or_all_of_the_group():
    docs = [tt([hrule("api")]), hrg([API, ALL])]
    assert not smi_allows(docs, req(path="/other"))
    docs = [tt([hrule()]), hrg([API, ALL])]
    assert smi_allows(docs, req(path="/other"))


def test_smi_headers_full_match():
    m = {"name": "h", "headers": {"x-user": "admin|root"}}
    docs = [tt([hrule("h")]), hrg([m])]
    assert smi_allows(docs, req(headers=[("x-user", "root")]))
    assert not smi_allows(docs, req(headers=[("x-user", "rooted")]))
    assert not smi_allows(docs, req())


def test_smi_tcp_route_ports():
    docs = [tt([TRULE]), tcpr([8080])]
    assert smi_allows(docs, tcp(port=8080))
    assert not smi_allows(docs, tcp(port=9090))
    docs = [tt([TRULE]), tcpr([])]
    assert smi_allows(docs, tcp(port=9090))
    assert not smi_allows(docs, tcp(port=9090), ports_of=lambda ns, svc: [8080])


def test_smi_tcp_route_admits_http_but_http_routes_never_admit_opaque():
    assert smi_allows([tt([TRULE]), tcpr([8080])], req(path="/x", method="PUT"))
    assert not smi_allows([tt([hrule()]), hrg([ALL])], tcp())


def test_smi_tcp_route_beside_http_matches_scopes_them():
    # smi-spec traffic-access/v1alpha3 "Example implementation for L7": prometheus gets GET /metrics
    # on the TCPRoute's port 8080, not the whole port (AND, not OR)
    docs = [tt([TRULE, hrule("api")]), tcpr([8080]), hrg([API])]
    assert smi_allows(docs, req(path="/api/x"))
    assert not smi_allows(docs, req(path="/other"))                 # OR would admit it
    assert not smi_allows(docs, req(path="/api/x", port=9090))
    assert not smi_allows(docs, tcp(port=9090))
    with pytest.raises(Unsupported):
        smi_allows(docs, tcp())                                      # SMI does not say


def test_smi_reads_an_empty_path_regex_as_any_path_and_refuses_a_foreign_traffic_target():
    # smi-sdk-go v0.5.0 specs/v1alpha4/http_route.go:40 omitempty: absent; OSM v1.2.4
    # pkg/catalog/inbound_traffic_policies.go:250-253: ".*"
    assert smi_allows([tt([hrule()]), hrg([{"name": "e", "pathRegex": ""}])], req(path="/anything"))
    foreign = tt([TRULE], ns="elsewhere")
    with pytest.raises(Unsupported):    # osm pkg/validator/validators.go; SMI Tradeoffs
        smi_allows([foreign, tcpr([8080], ns="elsewhere")], tcp())


def test_regexes_are_re2():
    docs = [tt([hrule()]), hrg([{"name": "la", "pathRegex": "/a(?=b).*"}])]
    with pytest.raises(Unsupported):
        smi_allows(docs, req(path="/ab"))
    # RE2's "$" is the end of text only (Python's also matches before a final newline)
    docs = [tt([hrule()]), hrg([{"name": "h", "headers": {"x-v": "a$"}}])]
    assert smi_allows(docs, req(headers=[("x-v", "a")]))


def test_smi_destination_port():
    docs = [tt([hrule()], port=8080), hrg([ALL])]
    assert smi_allows(docs, req(port=8080))
    assert not smi_allows(docs, req(port=9090))


def test_smi_refuses_what_it_does_not_model():
    with pytest.raises(Unsupported):
        smi_allows([tt([{"kind": "UDPRoute", "name": "u"}])], tcp())
    with pytest.raises(Unsupported):
        smi_allows([tt([hrule()])], req())                    # dangling reference
    with pytest.raises(Unsupported):
        smi_allows([tt([hrule()]), hrg([{**ALL, "pathPrefix": "/"}])], req())
    with pytest.raises(Unsupported):
        smi_allows([], req(path="/a?b=c"))


# =============================================================================================
# Istio

def ap(rules=None, *, action=None, name="p", ns=NS, selector=APP, target=None, **extra):
    spec: dict = {}
    if selector:
        spec["selector"] = {"matchLabels": dict(selector)}
    if target:
        spec["targetRefs"] = [{"kind": "Service", "group": "", "name": target}]
    if action:
        spec["action"] = action
    if rules is not None:
        spec["rules"] = rules
    spec.update(extra)
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def frm(**source):
    return {"from": [{"source": source}]}


def to(**op):
    return {"to": [{"operation": op}]}


def ist(objs, r, **kw):
    return istio_allows(objs, r, trust_domain=TD, **kw)


WEB = f"{TD}/ns/shop/sa/web"


def test_istio_no_policy_allows():
    assert ist([], req())
    assert not ist([ap([])], req())


def test_istio_allow_principals_exact_prefix_suffix_presence():
    assert ist([ap([frm(principals=[WEB])])], req())
    assert not ist([ap([frm(principals=[WEB])])], req(("shop", "other")))
    assert ist([ap([frm(principals=[f"{TD}/ns/shop/*"])])], req(("shop", "any")))
    assert not ist([ap([frm(principals=[f"{TD}/ns/shop/*"])])], req(("shopx", "any")))
    assert ist([ap([frm(principals=["*/sa/web"])])], req(("x", "web")))
    assert not ist([ap([frm(principals=["*/sa/web"])])], req(("x", "webby")))
    assert ist([ap([frm(principals=["*"])])], req(("x", "y")))


def test_istio_not_principals_and_namespaces():
    assert not ist([ap([frm(notPrincipals=[WEB])])], req())
    assert ist([ap([frm(notPrincipals=[WEB])])], req(("shop", "other")))
    assert ist([ap([frm(namespaces=["shop"])])], req(("shop", "x")))
    assert not ist([ap([frm(namespaces=["shop"])])], req(("store", "x")))


def test_istio_sidecar_namespace_pattern_is_a_regex_over_the_principal():
    # istiod builds ".*/ns/.*a/.*": "…/ns/bar/sa/x" matches through "sa/", ztunnel compares "bar"
    pol = [ap([frm(namespaces=["*a"])])]
    assert ist(pol, req(("bar", "x")))
    assert not ist(pol, req(("bar", "x")), ambient_namespaces=frozenset({NS}))
    assert ist(pol, req(("ba", "x")), ambient_namespaces=frozenset({NS}))


def test_istio_selector_and_root_namespace():
    other = ap([], selector=(("app", "other"),))
    assert ist([other], req())
    assert not ist([ap([], ns="istio-system", selector=None)], req())
    assert ist([ap([], ns="elsewhere", selector=None)], req())


def test_istio_deny_before_allow():
    objs = [ap([{}]), ap([frm(principals=[WEB])], action="DENY", name="d")]
    assert not ist(objs, req())
    assert ist(objs, req(("shop", "other")))


def test_istio_empty_rule_matches_everything_no_rules_nothing():
    assert ist([ap([{}])], req())
    assert not ist([ap(None)], req())
    assert ist([ap(None, action="DENY")], req())


def test_istio_operation_ports_methods_paths():
    assert ist([ap([to(ports=["8080"])])], req(port=8080))
    assert not ist([ap([to(ports=["8080"])])], req(port=9090))
    assert ist([ap([to(methods=["GET"], paths=["/api/*"])])], req(path="/api/x"))
    assert not ist([ap([to(methods=["GET"], paths=["/api/*"])])], req(path="/apix"))
    assert ist([ap([to(methods=["GET"], paths=["/api*"])])], req(path="/apix"))
    assert not ist([ap([to(methods=["GET"], paths=["/api/*"])])], req(method="POST", path="/api/x"))
    assert ist([ap([to(notPaths=["*.json"])])], req(path="/a.html"))
    assert not ist([ap([to(notPaths=["*.json"])])], req(path="/a.json"))
    assert not ist([ap([to(notMethods=["DELETE"])])], req(method="DELETE"))


def test_istio_when_headers_presence_and_not_values():
    hdr = [{"to": [], "when": [{"key": "request.headers[X-User]", "values": ["adm*"]}]}]
    assert ist([ap(hdr)], req(headers=[("x-user", "admin")]))
    assert not ist([ap(hdr)], req(headers=[("x-user", "user")]))
    star = [{"when": [{"key": "request.headers[x-user]", "values": ["*"]}]}]
    assert ist([ap(star)], req(headers=[("x-user", "")]))
    assert not ist([ap(star)], req())
    neg = [{"when": [{"key": "request.headers[x-user]", "notValues": ["bob"]}]}]
    assert ist([ap(neg)], req())
    assert not ist([ap(neg)], req(headers=[("x-user", "bob")]))


def test_istio_sidecar_tcp_http_fields():
    # ALLOW: a rule with an HTTP-only field is skipped on the TCP filter chain
    allow = [ap([{**frm(principals=[WEB]), **to(methods=["GET"])}])]
    assert ist(allow, req())
    assert not ist(allow, tcp())
    # DENY: the HTTP-only field is dropped, so the rule denies all TCP from that source
    deny = [ap([{**frm(principals=[WEB]), **to(methods=["POST"])}], action="DENY")]
    assert ist(deny, req(method="GET"))
    assert not ist(deny, tcp())
    assert ist(deny, tcp(("shop", "other")))


def test_istio_ztunnel_l4_only():
    amb = dict(ambient_namespaces=frozenset({NS}))
    allow = [ap([{**frm(principals=[WEB]), **to(methods=["GET"])}])]
    assert not ist(allow, req(), **amb)                      # ALLOW rule with L7: omitted
    assert ist([ap([frm(principals=[WEB])])], req(), **amb)
    # DENY with only L7 operations: empty match, never fires at ztunnel
    deny = [ap([to(methods=["POST"])], action="DENY")]
    assert ist(deny, req(method="POST"), **amb)
    assert not ist(deny, req(method="POST"))                 # the sidecar does enforce it
    # but a DENY rule with an L4 field keeps it and drops the L7 part
    deny_port = [ap([to(ports=["8080"], methods=["POST"])], action="DENY")]
    assert not ist(deny_port, req(method="GET"), **amb)
    # an empty source is an empty match at ztunnel (never matches), "any source" on Envoy
    assert not ist([ap([{"from": [{"source": {}}]}])], req(), **amb)
    assert ist([ap([{"from": [{"source": {}}]}])], req())


def test_istio_waypoint_then_ztunnel():
    wp = dict(ambient_waypoint_namespaces=frozenset({NS}))
    l7 = ap([{**frm(principals=[WEB]), **to(paths=["/api/*"])}], selector=None, target="books",
            name="svc")
    from_wp = ap([frm(principals=[f"{TD}/ns/{NS}/sa/waypoint"])], name="zt")
    assert ist([l7, from_wp], req(path="/api/x"), **wp)
    assert not ist([l7, from_wp], req(path="/other"), **wp)
    # the ztunnel sees the waypoint, not the client
    assert not ist([l7, ap([frm(principals=[WEB])], name="zt")], req(path="/api/x"), **wp)
    # a targetRef for another Service does not apply; sidecars ignore targetRef policies
    assert ist([ap([], selector=None, target="other")], req(), **wp)
    assert ist([l7], req(path="/other"))


def test_istio_refuses_what_it_does_not_model():
    for bad in (ap([to(hosts=["x"])]), ap([], action="CUSTOM", provider={"name": "x"}),
                ap([frm(ipBlocks=["1.2.3.4"])]), ap([to(ports=["http"])]),
                ap([{"when": [{"key": "request.auth.claims[iss]", "values": ["x"]}]}]),
                ap([to(paths=["/foo/{*}"])])):
        with pytest.raises(Unsupported):
            ist([bad], req())


# =============================================================================================
# Linkerd

LP = "policy.linkerd.io"


def server(name="books", port=8080, selector=None, **spec):
    return {"apiVersion": f"{LP}/v1beta3", "kind": "Server",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"podSelector": selector or {"matchLabels": dict(APP)}, "port": port, **spec}}


def lap(target_kind, target, authn=None, name=None, group=LP):
    t = {"kind": target_kind, "name": target}
    if group:
        t["group"] = group
    refs = []
    if authn:
        kind, aname = authn
        refs = [{"kind": kind, "name": aname} | ({"group": LP} if kind != "ServiceAccount" else {})]
    return {"apiVersion": f"{LP}/v1alpha1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name or f"ap-{target}-{authn}", "namespace": NS},
            "spec": {"targetRef": t, "requiredAuthenticationRefs": refs}}


def mtls(name="authn", identities=None, identity_refs=None):
    spec = {}
    if identities is not None:
        spec["identities"] = identities
    if identity_refs is not None:
        spec["identityRefs"] = identity_refs
    return {"apiVersion": f"{LP}/v1alpha1", "kind": "MeshTLSAuthentication",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def hroute(name, *rules, ts=None, srv="books"):
    md = {"name": name, "namespace": NS}
    if ts:
        md["creationTimestamp"] = ts
    return {"apiVersion": f"{LP}/v1beta3", "kind": "HTTPRoute", "metadata": md,
            "spec": {"parentRefs": [{"group": LP, "kind": "Server", "name": srv}],
                     "rules": [{"matches": list(ms)} for ms in rules]}}


def prefix(v, **kw):
    return {"path": {"type": "PathPrefix", "value": v}, **kw}


def lk(objs, r, **kw):
    return linkerd_allows(objs, r, trust_domain=TD, **kw)


WEB_ID = f"web.shop.serviceaccount.identity.linkerd.{TD}"
SRV_AP = [server(), lap("Server", "books", ("MeshTLSAuthentication", "authn")),
          mtls(identities=[WEB_ID])]


def test_linkerd_no_server_uses_default_policy():
    assert lk([], req())
    assert not lk([], req(), default_policy="deny")
    assert lk([server(port=9090)], req(port=8080))


def test_linkerd_server_denies_unless_authorized():
    assert not lk([server()], req())
    assert lk(SRV_AP, req())
    assert not lk(SRV_AP, req(("shop", "other")))
    assert lk([server(accessPolicy="all-authenticated")], req())


def test_linkerd_pod_selector_expressions():
    sel = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["books"]},
                                {"key": "tier", "operator": "DoesNotExist"}]}
    assert not lk([server(selector=sel)], req())
    assert lk([server(selector=sel)], req(labels=APP + (("tier", "x"),)))


def test_linkerd_identities_wildcards_and_refs():
    base = [server(), lap("Server", "books", ("MeshTLSAuthentication", "authn"))]
    for ids, refs, ok, bad in (
            (["*"], None, ("x", "y"), None),
            ([f"*.shop.serviceaccount.identity.linkerd.{TD}"], None, ("shop", "z"), ("store", "z")),
            (None, [{"kind": "ServiceAccount", "name": "web"}], ("shop", "web"), ("shop", "x")),
            (None, [{"kind": "Namespace", "name": "shop"}], ("shop", "q"), ("shopx", "q"))):
        objs = base + [mtls(identities=ids, identity_refs=refs)]
        assert lk(objs, req(ok))
        if bad:
            assert not lk(objs, req(bad))


def test_linkerd_service_account_ref_and_namespace_target():
    objs = [server(), lap("Namespace", NS, ("ServiceAccount", "web"), group=None)]
    assert lk(objs, req())
    assert not lk(objs, req(("shop", "other")))
    assert not lk(objs, req(("store", "web")))


def test_linkerd_route_policy_and_404():
    objs = [server(), hroute("get", [prefix("/api", method="GET")]),
            lap("HTTPRoute", "get", ("MeshTLSAuthentication", "authn")), mtls(identities=[WEB_ID])]
    assert lk(objs, req(path="/api/x"))
    assert not lk(objs, req(("shop", "other"), path="/api/x"))
    assert not lk(objs, req(path="/admin"))                  # no route: 404
    assert not lk(objs, req(method="POST", path="/api"))


def test_linkerd_server_policies_also_authorize_routed_requests():
    objs = SRV_AP + [hroute("get", [prefix("/api")])]
    assert lk(objs, req(path="/api/x"))                      # server authz chained into routes
    assert not lk(objs, req(path="/other"))                  # but the route must still match


def test_linkerd_prefix_matches_whole_segments():
    objs = [server(), hroute("r", [prefix("/foo/")]), lap("HTTPRoute", "r")]
    assert lk(objs, req(path="/foo"))
    assert lk(objs, req(path="/foo/bar"))
    assert not lk(objs, req(path="/foobar"))


def test_linkerd_regex_must_span_the_whole_value_leftmost_first():
    rx = {"path": {"type": "RegularExpression", "value": "/foo|/foo/bar"}}
    objs = [server(), hroute("r", [rx]), lap("HTTPRoute", "r")]
    assert lk(objs, req(path="/foo"))
    assert not lk(objs, req(path="/foo/bar"))                # find() stops at "/foo"
    h = {"headers": [{"type": "RegularExpression", "name": "x-v", "value": "a|ab"}]}
    objs = [server(), hroute("r", [h]), lap("HTTPRoute", "r")]
    assert lk(objs, req(headers=[("x-v", "a")]))
    assert not lk(objs, req(headers=[("x-v", "ab")]))


def test_linkerd_route_precedence():
    allow_long = lap("HTTPRoute", "long")
    # the longer path match wins, whatever the order
    objs = [server(), hroute("a-short", [prefix("/api")]), hroute("long", [prefix("/api/v1")]),
            allow_long]
    assert lk(objs, req(path="/api/v1/x"))
    assert not lk(objs, req(path="/api/v2"))
    # equal path length: a method match beats none
    objs = [server(), hroute("a", [prefix("/api")]), hroute("long", [prefix("/api", method="GET")]),
            allow_long]
    assert lk(objs, req(path="/api"))
    # a regex match counts the whole path's length
    rx = {"path": {"type": "RegularExpression", "value": "/a.*"}}
    objs = [server(), hroute("a", [prefix("/api/v1")]), hroute("long", [rx]), allow_long]
    assert lk(objs, req(path="/api/v1/books"))
    # full tie: the oldest route wins, then the name
    objs = [server(), hroute("long", [prefix("/x")], ts="2024-02-01T00:00:00Z"),
            hroute("b", [prefix("/x")], ts="2024-01-01T00:00:00Z"), allow_long]
    assert not lk(objs, req(path="/x"))
    objs = [server(), hroute("long", [prefix("/x")]), hroute("m", [prefix("/x")]), allow_long]
    assert lk(objs, req(path="/x"))


def test_linkerd_opaque_and_protocols():
    objs = SRV_AP + [hroute("get", [prefix("/api")])]
    assert lk(objs, tcp())                                   # opaque: server authorizations
    assert not lk(objs, tcp(("shop", "other")))
    route_only = [server(proxyProtocol="opaque"), hroute("r", [prefix("/")]), lap("HTTPRoute", "r")]
    assert not lk(route_only, req())                         # opaque server: routes unused
    assert not lk([server(proxyProtocol="HTTP/1", accessPolicy="all-unauthenticated")], tcp())


def test_linkerd_refuses_what_it_does_not_model():
    na = [server(), lap("Server", "books", ("NetworkAuthentication", "net"))]
    two = [server(), {**lap("Server", "books"), "spec": {
        "targetRef": {"group": LP, "kind": "Server", "name": "books"},
        "requiredAuthenticationRefs": [{"group": LP, "kind": "MeshTLSAuthentication", "name": "a"},
                                       {"kind": "ServiceAccount", "name": "web"}]}}]
    for objs in (na, two, [server(port="http")],
                 [server(), hroute("r", [{"queryParams": [{"name": "a", "value": "b"}]}])]):
        with pytest.raises(Unsupported):
            lk(objs, req())


# =============================================================================================
# OSM

def test_osm_default_deny_is_mesh_wide():
    assert not osm_allows([], req())
    assert not osm_allows([], tcp())


def test_osm_http_named_matches_and_sources():
    docs = [tt([hrule("api")]), hrg([API])]
    assert osm_allows(docs, req(path="/api/x"))
    assert not osm_allows(docs, req(("shop", "other"), path="/api/x"))
    assert not osm_allows(docs, req(path="/x/api/x"))


def test_osm_rule_without_matches_yields_no_route():
    docs = [tt([hrule()]), hrg([ALL])]
    assert smi_allows(docs, req())
    assert not osm_allows(docs, req())


def test_osm_l4_rbac_gates_http_ports_too():
    # osm v1.2.4 pkg/envoy/lds/inmesh.go: the RBAC filter of TCPRoute ports leads HTTP filter chains
    docs = [tt([TRULE]), tcpr([8080])]
    assert osm_allows(docs, tcp())
    assert not osm_allows(docs, req())                      # no HTTP route: 404
    assert osm_allows(docs, req(), port_protocol="tcp")
    assert not osm_allows([tt([hrule("all")]), hrg([ALL])], tcp(), port_protocol="http")
    scoped = [tt([TRULE, hrule("api")]), tcpr([9090]), hrg([API])]
    assert not osm_allows(scoped, req(path="/api/x"))       # route matches, L4 port does not
    assert osm_allows(scoped, req(path="/api/x", port=9090))
    assert osm_allows([tt([hrule("api")]), hrg([API])], req(path="/api/x"))   # no TCPRoute: any port


def test_osm_routes_of_a_service_account_serve_every_port():
    # one route table per service account (catalog/inbound_traffic_policies.go): a match scoped to
    # 9090 by one target is served on 8080 once another target opens 8080 to the same source
    other = {"name": "other", "pathRegex": "/other", "methods": ["GET"]}
    docs = [tt([TRULE, hrule("api")], name="a"), tcpr([9090]), hrg([API, other]),
            tt([{"kind": "TCPRoute", "name": "p8080"}, hrule("other")], name="b"), tcpr([8080], name="p8080")]
    assert osm_allows(docs, req(path="/api/x", port=8080))
    assert not smi_allows(docs, req(path="/api/x", port=8080))
    assert not osm_allows(docs[:3], req(path="/api/x", port=8080))


def test_osm_tcp_port_rbac():
    # an HTTPRouteGroup-only target grants every TCP port to its sources
    docs = [tt([hrule("api")]), hrg([API])]
    assert osm_allows(docs, tcp(port=5432))
    assert not osm_allows(docs, tcp(("shop", "other"), port=5432))
    # a TCPRoute with empty ports adds none: the other route's ports are all that is allowed
    docs = [tt([TRULE, {"kind": "TCPRoute", "name": "any"}]), tcpr([8080]), tcpr([], name="any")]
    assert osm_allows(docs, tcp(port=8080))
    assert not osm_allows(docs, tcp(port=9090))
    # a missing TCPRoute drops the whole target
    assert not osm_allows([tt([TRULE])], tcp())


def test_osm_traffic_target_must_live_in_the_destination_namespace():
    assert osm_allows([tt([TRULE]), tcpr([8080])], tcp())
    assert not osm_allows([tt([TRULE], ns="elsewhere"), tcpr([8080], ns="elsewhere")], tcp())


def test_osm_route_order_dependence_raises():
    docs = [tt([hrule("api")], name="a"), tt([hrule("all")], name="b", sources=(("shop", "x"),)),
            hrg([API, ALL])]
    assert osm_allows(docs, req(("shop", "x"), path="/other"))
    with pytest.raises(Unsupported):
        osm_allows(docs, req(("shop", "x"), path="/api/y"))
