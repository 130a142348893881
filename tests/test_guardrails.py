"""The mesh-guardrails policy pack: each rule firing and not firing, the CrossGuard wrappers, and the
lead's rendered stacks passing every rule. ``__main__.py`` is never imported (PolicyPack() blocks).
The rules live in ``mesh_components/analysis/guardrails.py``; the pack's ``mesh_guardrails.py`` re-exports
them, and is what these tests load, as the pack does."""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest

import guardrail_cases as cases

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "policies" / "mesh-guardrails"

_spec = importlib.util.spec_from_file_location("mesh_guardrails", PACK / "mesh_guardrails.py")
g = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(g)

PA = "kubernetes:security.istio.io/v1:PeerAuthentication"
AP = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
L_AP = "kubernetes:policy.linkerd.io/v1alpha1:AuthorizationPolicy"
L_NA = "kubernetes:policy.linkerd.io/v1alpha1:NetworkAuthentication"
SE = "kubernetes:networking.istio.io/v1:ServiceEntry"
GW = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
ISTIO_GW = "kubernetes:networking.istio.io/v1:Gateway"
ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
RELEASE = "kubernetes:helm.sh/v3:Release"
DYNAMIC = "pulumi-python:dynamic:Resource"

obj = cases.obj  # one way to write a test object, shared with the admission tests


def test_pack_files_exist_and_module_imports_no_pulumi_policy_at_top():
    assert {p.name for p in PACK.iterdir()} >= {"PulumiPolicy.yaml", "__main__.py", "requirements.txt",
                                                "mesh_guardrails.py", "README.md"}
    top = [line for line in (PACK / "mesh_guardrails.py").read_text().splitlines() if line.startswith(("import", "from"))]
    assert not any("pulumi" in line for line in top)
    assert "pulumi preview --policy-pack policies/mesh-guardrails" in (PACK / "README.md").read_text()


def test_k8s_kind_parses_type_tokens():
    assert g.k8s_kind(PA) == ("security.istio.io", "PeerAuthentication")
    assert g.k8s_kind("kubernetes:core/v1:ConfigMap") == ("", "ConfigMap")
    assert g.k8s_kind(RELEASE) == ("helm.sh", "Release") and g.k8s_kind(DYNAMIC) is None


# ---------------------------------------------------------------------------------------------
# mtls-strict


@pytest.mark.parametrize("spec,fires", cases.MTLS_PEER_AUTHENTICATION)
def test_mtls_strict_peer_authentication(spec, fires):
    assert len(g.validate_mtls_strict(PA, obj("pa", spec))) == fires


def test_mtls_strict_exempt_namespace_and_linkerd_default_policy():
    assert g.validate_mtls_strict(PA, obj("pa", {"mtls": {"mode": "PERMISSIVE"}}, ns="legacy"),
                                  {"permissiveNamespaces": ["legacy"]}) == []
    lk = {"chart": "linkerd-control-plane", "values": {"proxy": {"defaultInboundPolicy": "all-unauthenticated"}}}
    assert "all-unauthenticated" in g.validate_mtls_strict(RELEASE, lk)[0]
    lk["values"]["proxy"]["defaultInboundPolicy"] = "all-authenticated"
    assert g.validate_mtls_strict(RELEASE, lk) == []
    # audit admits every connection (linkerd2 edge-26.8.3 policy-controller/k8s/index/src/defaults.rs:25-26,53)
    lk["values"]["proxy"]["defaultInboundPolicy"] = "audit"
    assert "audit" in g.validate_mtls_strict(RELEASE, lk)[0]
    lk["values"]["proxy"]["defaultInboundPolicy"] = "Audit"  # not a mode Linkerd parses (exact match)
    assert g.validate_mtls_strict(RELEASE, lk) == []
    assert g.validate_mtls_strict("kubernetes:core/v1:ConfigMap", obj("x", {"mtls": {"mode": "DISABLE"}})) == []


def test_mesh_wide_strict_peer_authentication_required_per_istiod():
    istiod = (RELEASE, {"name": "istiod", "namespace": "istio-system", "chart": "istiod", "values": {}})
    mesh_wide = (PA, obj("default", {"mtls": {"mode": "STRICT"}}, ns="istio-system"))
    scoped = (PA, obj("one", {"selector": {"matchLabels": {"app": "a"}}, "mtls": {"mode": "STRICT"}}, ns="istio-system"))
    assert g.validate_mesh_wide_mtls([istiod, mesh_wide]) == []
    (msg,) = g.validate_mesh_wide_mtls([istiod, scoped])
    assert "namespace istio-system" in msg
    assert len(g.validate_mesh_wide_mtls([istiod, (PA, obj("d", {"mtls": {"mode": "STRICT"}}, ns="other"))])) == 1


# ---------------------------------------------------------------------------------------------
# no-allow-all


ALLOWED = cases.ALLOWED


@pytest.mark.parametrize("spec,fires", cases.ISTIO_AUTHORIZATION)
def test_no_allow_all_istio(spec, fires):
    assert len(g.validate_no_allow_all(AP, obj("ap", spec))) == fires


@pytest.mark.parametrize("identities,fires", cases.LINKERD_IDENTITIES)
def test_no_allow_all_linkerd_identity_wildcards(identities, fires):
    mtls = obj("m", {"identities": identities})
    assert len(g.validate_no_allow_all("kubernetes:policy.linkerd.io/v1alpha1:MeshTLSAuthentication", mtls)) == fires


def test_no_allow_all_linkerd_server_access_policy():
    server = "kubernetes:policy.linkerd.io/v1beta3:Server"
    assert g.validate_no_allow_all(server, obj("s", {"port": 80})) == []
    assert g.validate_no_allow_all(server, obj("s", {"port": 80, "accessPolicy": "deny"})) == []
    # the linkerd-multicluster chart's gateway authentication, only where the mesh installs that chart
    mtls = "kubernetes:policy.linkerd.io/v1alpha1:MeshTLSAuthentication"
    assert g.validate_no_allow_all(mtls, obj("any-meshed", {"identities": ["*"]}, ns="linkerd-multicluster")) == []
    assert len(g.validate_no_allow_all(mtls, obj("any-meshed", {"identities": ["*"]}, ns="other"))) == 1
    assert len(g.validate_no_allow_all(server, obj("s", {"port": 80, "accessPolicy": "all-authenticated"}))) == 1


def test_no_allow_all_linkerd():
    ok = obj("ap", {"targetRef": {"kind": "Server", "name": "s"},
                    "requiredAuthenticationRefs": [{"kind": "MeshTLSAuthentication", "name": "m",
                                                    "group": "policy.linkerd.io"}]})
    assert g.validate_no_allow_all(L_AP, ok) == []
    assert len(g.validate_no_allow_all(L_AP, obj("ap", {"requiredAuthenticationRefs": []}))) == 1
    open_net = obj("all", {"networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]})
    private = obj("private", {"networks": [{"cidr": "10.0.0.0/8"}]})
    with_except = obj("most", {"networks": [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}]})
    via = lambda name: (L_AP, obj(f"ap-{name}", {"requiredAuthenticationRefs": [{"kind": "NetworkAuthentication", "name": name}]}))
    res = [(L_NA, open_net), (L_NA, private), (L_NA, with_except)]
    assert len(g.validate_linkerd_network_allow_all(res + [via("all")])) == 1
    assert g.validate_linkerd_network_allow_all(res + [via("private"), via("most")]) == []
    both = (L_AP, obj("ap", {"requiredAuthenticationRefs": [{"kind": "NetworkAuthentication", "name": "all"},
                                                            {"kind": "MeshTLSAuthentication", "name": "m"}]}))
    assert g.validate_linkerd_network_allow_all(res + [both]) == []


# ---------------------------------------------------------------------------------------------
# no-wildcard-egress


def test_no_wildcard_egress():
    exact = obj("se", {"hosts": ["api.example.com"]})
    wild = obj("se", {"hosts": ["api.example.com", "*.example.com"]})
    assert g.validate_no_wildcard_egress(SE, exact) == []
    (msg,) = g.validate_no_wildcard_egress(SE, wild)
    assert "'*.example.com'" in msg
    assert len(g.validate_no_wildcard_egress(SE, obj("se", {"hosts": ["*"]}))) == 1
    excepted = obj("se", {"hosts": ["*.example.com"]}, annotations={"mesh-components.io/allow-wildcard": "true"})
    assert g.validate_no_wildcard_egress(SE, excepted) == []
    not_excepted = obj("se", {"hosts": ["*.example.com"]}, annotations={"mesh-components.io/allow-wildcard": "false"})
    assert len(g.validate_no_wildcard_egress(SE, not_excepted)) == 1


# ---------------------------------------------------------------------------------------------
# ca-limits


CA = {"trust_domain": "cluster.local", "mesh": "istio", "clusters": ["a", "b"], "key_algorithm": "ECDSA_P256",
      "root_validity_days": 3650, "intermediate_validity_days": 365, "rotation_window_days": 30}


@pytest.mark.parametrize("change,fires", [
    ({}, []),
    ({"key_algorithm": "RSA_2048"}, []),
    ({"key_algorithm": "RSA_1024"}, ["at least 2048 bits"]),
    ({"key_algorithm": "ECDSA_P224"}, ["curve P224 is not allowed"]),
    ({"intermediate_validity_days": 3650}, ["not shorter than root_validity_days", "exceeds the limit of 365 "]),
    ({"intermediate_validity_days": 200, "root_validity_days": 100}, ["not shorter than root_validity_days"]),
    ({"root_validity_days": 7300, "intermediate_validity_days": 400}, ["exceeds the limit of 3650", "exceeds the limit of 365 "]),
    ({"root_validity_days": 3650.0, "intermediate_validity_days": 365.0}, []),  # the engine sends floats
    ({"root_validity_days": None}, []),                                         # unknown during preview
])
def test_ca_limits(change, fires):
    got = g.validate_ca_limits(DYNAMIC, {**CA, **change})
    assert len(got) == len(fires) and all(f in m + " " for f, m in zip(fires, got))


def test_ca_limits_configurable_and_only_on_the_ca():
    assert len(g.validate_ca_limits(DYNAMIC, CA, {"maxRootValidityDays": 1825})) == 1
    assert g.validate_ca_limits(DYNAMIC, {**CA, "key_algorithm": "RSA_3072"}, {"minRsaBits": 4096})[0].endswith("4096 bits")
    assert g.validate_ca_limits(DYNAMIC, {"some": "other dynamic resource"}) == []
    assert g.validate_ca_limits("kubernetes:core/v1:Secret", {**CA, "key_algorithm": "RSA_512"}) == []


# ---------------------------------------------------------------------------------------------
# single-trust-domain


def istiod(cluster, td=None, shared=None):
    values = {"global": {"multiCluster": {"clusterName": cluster}}}
    if td:
        values["meshConfig"] = {"trustDomain": td}
    if shared:
        values["env"] = {"SHARED_MESH_CONFIG": shared}
    return (RELEASE, {"name": "istiod", "namespace": "istio-system", "chart": "istiod", "values": values})


def test_single_trust_domain():
    ca = (DYNAMIC, CA)
    assert g.validate_single_trust_domain([ca, istiod("a"), istiod("b")]) == []
    (msg,) = g.validate_single_trust_domain([ca, istiod("a"), istiod("b", "prod.example")])
    assert "cluster.local: CA, istiod a" in msg and "prod.example: istiod b" in msg
    assert len(g.validate_single_trust_domain([(DYNAMIC, {**CA, "trust_domain": "x.example"}), istiod("a")])) == 1
    # a SHARED_MESH_CONFIG map's trustDomain never applies: the chart's own mesh config sets
    # trustDomain "cluster.local" and wins over it (istio 1.30.3 manifests/charts/istio-control/
    # istio-discovery/templates/configmap.yaml:4, pilot/pkg/bootstrap/mesh.go:130-136)
    cm = ("kubernetes:core/v1:ConfigMap", {"metadata": {"name": "shared", "namespace": "istio-system"},
                                           "data": {"mesh": "trustDomain: x.example\n"}})
    (msg,) = g.validate_single_trust_domain([(DYNAMIC, {**CA, "trust_domain": "x.example"}),
                                             istiod("a", shared="shared"), cm])
    assert "cluster.local: istiod a" in msg and "x.example: CA" in msg
    assert g.validate_single_trust_domain([(DYNAMIC, {**CA, "trust_domain": "x.example"}),
                                           istiod("a", td="x.example", shared="shared"), cm]) == []
    linkerd = (RELEASE, {"name": "linkerd", "chart": "linkerd-control-plane", "values": {"identityTrustDomain": "y.example"}})
    assert len(g.validate_single_trust_domain([ca, linkerd])) == 1


# ---------------------------------------------------------------------------------------------
# ingress-tls and redirect-only


HTTP, HTTPS = cases.HTTP, cases.HTTPS


@pytest.mark.parametrize("listeners,fires", cases.GATEWAY_LISTENERS)
def test_ingress_tls_gateway_api(listeners, fires):
    assert len(g.validate_ingress_tls(GW, obj("gw", {"gatewayClassName": "istio", "listeners": listeners}))) == fires


def test_ingress_tls_istio_gateway():
    redirect = {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"], "tls": {"httpsRedirect": True}}
    plain = {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
    assert g.validate_ingress_tls(ISTIO_GW, obj("gw", {"servers": [redirect]})) == []
    assert len(g.validate_ingress_tls(ISTIO_GW, obj("gw", {"servers": [plain]}))) == 1


def route(name, parent, rules):
    return (ROUTE, obj(name, {"parentRefs": [parent], "rules": rules}, ns="web"))


REDIRECT = {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}
FORWARD = {"backendRefs": [{"name": "app", "port": 80}]}


def test_http_listener_routes_may_only_redirect():
    gw = (GW, obj("gw", {"listeners": [HTTP, HTTPS]}, ns="web"))
    assert g.validate_http_redirect_only([gw, route("r", {"name": "gw", "sectionName": "http"}, [REDIRECT]),
                                          route("app", {"name": "gw", "sectionName": "https"}, [FORWARD])]) == []
    (msg,) = g.validate_http_redirect_only([gw, route("app", {"name": "gw", "sectionName": "http"}, [FORWARD])])
    assert "HTTPRoute web/app" in msg and "listener http" in msg
    # no sectionName: attached to every listener, the HTTP one included
    assert len(g.validate_http_redirect_only([gw, route("app", {"name": "gw"}, [FORWARD])])) == 1
    assert g.validate_http_redirect_only([gw, route("app", {"name": "gw", "port": 443}, [FORWARD])]) == []
    http_redirect = {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "http"}}]}
    assert len(g.validate_http_redirect_only([gw, route("r", {"name": "gw", "sectionName": "http"}, [http_redirect])])) == 1
    # a route whose parent is a Service (GAMMA) is not ingress
    assert g.validate_http_redirect_only([gw, route("mesh", {"group": "", "kind": "Service", "name": "gw"}, [FORWARD])]) == []


# ---------------------------------------------------------------------------------------------
# CrossGuard wrappers (pulumi_policy), called as the analyzer would


@pytest.mark.parametrize("case", cases.CASES, ids=[c[0] for c in cases.CASES])
def test_every_shared_case(case):
    """The per-object cases tests/test_admission_guardrails.py also runs through the admission policies."""
    _, policy, resource_type, props, violations, config = case
    assert len(g.run_resource_policy(policy, resource_type, props, config)) == violations
    assert all(not fn(resource_type, props, config) for name, fn in g.RESOURCE_VALIDATORS.items() if name != policy)


def test_policies_wrap_the_validators_with_config():
    pp = pytest.importorskip("pulumi_policy", reason="pulumi-policy is in policies/mesh-guardrails/requirements.txt")
    policies = {p.name: p for p in g.build_policies()}
    assert set(policies) == set(g.RESOURCE_VALIDATORS) | set(g.STACK_VALIDATORS)
    assert all(p.enforcement_level == pp.EnforcementLevel.MANDATORY for p in policies.values())
    assert policies["ca-limits"].config_schema.properties["minRsaBits"]["minimum"] == 2048

    seen = []
    report = lambda message, urn=None: seen.append(message)
    args = pp.ResourceValidationArgs(resource_type=DYNAMIC, props={**CA, "root_validity_days": 1000}, urn="urn:x",
                                     name="ca", opts=None, provider=None, config={"maxRootValidityDays": 900})
    policies["ca-limits"].validate(args, report)
    assert seen == ["root_validity_days 1000 exceeds the limit of 900 days"]
    seen.clear()
    res = [pp.PolicyResource(t, p, f"urn:{i}", f"r{i}", None, None, None, [], {})
           for i, (t, p) in enumerate([(DYNAMIC, CA), istiod("a", "other.example")])]
    policies["single-trust-domain"].validate(pp.StackValidationArgs(res), report)
    assert len(seen) == 1 and "2 trust domains" in seen[0]


# ---------------------------------------------------------------------------------------------
# the lead's stacks pass every guardrail


def _as_resources(states, spec):
    """The stack as the pack receives it (type tokens and inputs as the components register them;
    tests/test_validate_findings.py checks them against the program run under Pulumi's mocks)."""
    from mesh_components.analysis.findings import pulumi_resources
    return [(r.resource_type, r.props) for r in pulumi_resources(spec, states)]


DEV_ADVISORY = {"ingress-tls", "ingress-http-redirect-only"}
"""dev (a local kind cluster) serves plain HTTP on purpose: config.dev.json makes these advisory."""


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "linkerd", "osm"])
def test_rendered_stacks_pass_every_guardrail(stack):
    from mesh_components.core.render import render_mesh
    from mesh_components.spec import load_stack
    loaded = load_stack(str(ROOT / "stacks" / f"Pulumi.{stack}.yaml"), root=ROOT)
    resources = _as_resources(render_mesh(loaded), loaded.spec)
    fired = {name for name, fn in g.RESOURCE_VALIDATORS.items() for t, p in resources if fn(t, p, None)}
    fired |= {name for name, fn in g.STACK_VALIDATORS.items() if fn(resources, None)}
    assert fired == (DEV_ADVISORY if stack == "dev" else set())
    # and a tampered copy does not pass
    tampered = copy.deepcopy(resources)
    if stack == "linkerd":  # the probe route, widened to every path (issue 10, point 11)
        route = next(p for t, p in tampered if p.get("kind") == "HTTPRoute" and p["metadata"]["name"].endswith("-probes"))
        route["spec"]["rules"][0]["matches"][0]["path"] = {"type": "PathPrefix", "value": "/"}
        assert g.validate_linkerd_network_allow_all(tampered)
        return
    if stack == "osm":
        return
    pa = next(p for t, p in tampered if t == PA)
    pa["spec"]["mtls"]["mode"] = "PERMISSIVE"
    assert [m for t, p in tampered for m in g.validate_mtls_strict(t, p)]


def test_dev_config_makes_only_the_plain_http_rules_advisory():
    import json
    conf = json.loads((PACK / "config.dev.json").read_text())
    assert {k for k, v in conf.items() if v.get("enforcementLevel") == "advisory"} == DEV_ADVISORY


# ---------------------------------------------------------------------------------------------
# the rules live in the library; the pack re-exports them and runs without the library installed


def test_the_pack_module_is_the_library_module():
    from mesh_components.analysis import guardrails
    assert g.build_policies is guardrails.build_policies and g.RESOURCE_VALIDATORS is guardrails.RESOURCE_VALIDATORS
    assert set(g.__all__) >= {"validate_open_service_targets", "validate_linkerd_default_policy", "check_resources"}
    assert g.POLICY_NAMES == (*g.RESOURCE_VALIDATORS, *g.STACK_VALIDATORS)


def test_the_pack_loads_the_rules_from_the_repository_when_the_library_is_not_installed(tmp_path):
    """``-I -S``: no site-packages (so no installed mesh_components) and not the working folder."""
    import subprocess
    import sys
    code = ("import importlib.util, sys\n"
            f"s = importlib.util.spec_from_file_location('mesh_guardrails', {str(PACK / 'mesh_guardrails.py')!r})\n"
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m)\n"
            "print(m.validate_mtls_strict('kubernetes:security.istio.io/v1:PeerAuthentication',"
            " {'metadata': {'name': 'pa', 'namespace': 'n'}, 'spec': {'mtls': {'mode': 'DISABLE'}}}))\n"
            "print(sorted(k for k in sys.modules if k.startswith(('pulumi', 'yaml', 'pydantic'))))\n")
    run = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["['PeerAuthentication n/pa sets mtls.mode DISABLE: mTLS must be STRICT']", "[]"]


def test_pack_config_levels_reconcile_as_the_pulumi_cli_does():
    """pulumi/pulumi v3.259.0 pkg/resource/analyzer/config.go applyConfig: 'all' first, then each
    policy's own level; properties merge over the schema defaults."""
    import json
    dev = g.parse_policy_pack_config(json.loads((PACK / "config.dev.json").read_text()), "config.dev.json")
    assert {n for n, lv in dev.levels.items() if lv == "advisory"} == DEV_ADVISORY
    assert {lv for n, lv in dev.levels.items() if n not in DEV_ADVISORY} == {"mandatory"}
    example = g.parse_policy_pack_config(json.loads((PACK / "config.example.json").read_text()), "config.example.json")
    assert set(example.levels.values()) == {"mandatory"} and example.properties["mtls-strict"] == {"permissiveNamespaces": []}
    assert example.properties["ca-limits"] == json.loads((PACK / "config.example.json").read_text())["ca-limits"]
    both = g.parse_policy_pack_config({"ca-limits": {"enforcementLevel": "advisory", "maxRootValidityDays": 1000},
                                       "all": "disabled"}, "x")
    assert both.levels["ca-limits"] == "advisory" and both.levels["no-allow-all"] == "disabled"
    assert both.properties["ca-limits"] == {**{k: v["default"] for k, v in g.CONFIG_SCHEMAS["ca-limits"].items()},
                                            "maxRootValidityDays": 1000}
    assert g.parse_policy_pack_config({}, "x").levels == {n: g.PACK_ENFORCEMENT for n in g.POLICY_NAMES}


def test_check_resources_runs_each_policy_at_its_level():
    ca = (DYNAMIC, {**CA, "root_validity_days": 7300})
    pa = (PA, obj("pa", {"mtls": {"mode": "PERMISSIVE"}}))
    got = g.check_resources([ca, pa])
    assert [(v.policy, v.level, v.resource) for v in got] == [("mtls-strict", "mandatory", 1),
                                                            ("ca-limits", "mandatory", 0)]
    cfg = g.parse_policy_pack_config({"mtls-strict": "disabled", "ca-limits": {"enforcementLevel": "advisory",
                                                                               "maxRootValidityDays": 7300}}, "x")
    assert g.check_resources([ca, pa], cfg) == []
    cfg = g.parse_policy_pack_config({"ca-limits": "advisory"}, "x")
    assert [(v.policy, v.level) for v in g.check_resources([ca], cfg)] == [("ca-limits", "advisory")]
    # a stack policy's violation has no resource index
    mesh_wide = (PA, obj("default", {"mtls": {"mode": "STRICT"}}, ns="istio-system"))
    (v,) = g.check_resources([istiod("a", "other.example"), mesh_wide, (DYNAMIC, CA)])
    assert (v.policy, v.resource) == ("single-trust-domain", None)


@pytest.mark.parametrize("resource_type,props,policy", [
    (PA, obj("pa", {"portLevelMtls": [1]}), "mtls-strict"),
    (AP, obj("ap", {"rules": 1}), "no-allow-all"),
    (AP, obj("ap", {"rules": [{"from": True}]}), "no-allow-all"),
    (SE, obj("se", {"hosts": True}), "no-wildcard-egress"),
])
def test_a_field_of_the_wrong_type_is_a_violation_not_a_crash(resource_type, props, policy):
    """An override can give a field any JSON value; the rule says it cannot read it (the API server
    refuses such an object too) instead of failing the whole preview with a traceback."""
    (message,) = g.run_resource_policy(policy, resource_type, props)
    assert f"cannot be checked by {policy}: a field has a value of the wrong type" in message
    assert message.startswith(("PeerAuthentication n/pa", "AuthorizationPolicy n/ap", "ServiceEntry n/se"))
    (v,) = g.check_resources([(resource_type, props)])
    assert (v.policy, v.level, v.message) == (policy, "mandatory", message)
