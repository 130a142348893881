"""The guardrails enforced in-cluster (``mesh.guardrails``): the ValidatingAdmissionPolicies (and
Gatekeeper templates) rendered from ``mesh_components.core.admission.GUARDRAILS``, evaluated with a
CEL library (tests/admission_eval.py) on the same objects as the CrossGuard validators
(tests/guardrail_cases.py): each admission policy refuses exactly the objects its CrossGuard twin
reports, and none of what the mesh renders for the stacks in stacks/."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from mesh_components.analysis import guardrails as g
from mesh_components.core import admission as a
from mesh_components.spec import Guardrails, load_stack
from mesh_components.spec.errors import SpecError

import admission_eval as ev
from guardrail_cases import CASES, as_k8s

ROOT = Path(__file__).resolve().parents[1]
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
CRDS = ROOT.parent / "shared" / "crds"


def config(actions=None, case_config=None, gatekeeper=False) -> a.AdmissionConfig:
    return a.AdmissionConfig(actions or {n: "deny" for n in a.ADMISSION_RULES},
                             tuple((case_config or {}).get("permissiveNamespaces", [])), gatekeeper,
                             {"app.kubernetes.io/managed-by": "mesh-components"})


def decisions(objects: list[dict], obj: dict, operation: str = "CREATE") -> dict[str, ev.Decision]:
    """Policy name (the CrossGuard one) -> the decision of its ValidatingAdmissionPolicy on ``obj``."""
    return {p["metadata"]["annotations"]["mesh-components.io/guardrail"]: ev.evaluate(p, b, obj, operation)
            for p, b in ev.pairs(objects)}


# ---------------------------------------------------------------------------------------------
# one source of truth


def test_every_policy_is_defined_once_and_crossguard_takes_it_from_the_definitions():
    assert g.POLICY_NAMES == tuple(a.GUARDRAILS)
    assert g.DESCRIPTIONS == {n: d.description for n, d in a.GUARDRAILS.items()}
    assert tuple(g.RESOURCE_VALIDATORS) == tuple(n for n, d in a.GUARDRAILS.items() if d.scope == "resource")
    assert tuple(g.STACK_VALIDATORS) == tuple(n for n, d in a.GUARDRAILS.items() if d.scope == "stack")
    # in-cluster: the resource rules with a per-object part; what is not enforced there says why
    assert set(a.ADMISSION_RULES) == {"mtls-strict", "no-allow-all", "no-wildcard-egress", "ingress-tls"}
    assert all(d.crossguard_only for n, d in a.GUARDRAILS.items() if n not in a.ADMISSION_RULES)
    assert all(d.scope == "resource" for n, d in a.GUARDRAILS.items() if n in a.ADMISSION_RULES)


def test_a_rule_on_one_side_only_refuses_to_import(monkeypatch):
    monkeypatch.setitem(g.RESOURCE_VALIDATORS, "no-such-rule", g.validate_ca_limits)
    with pytest.raises(ImportError, match="disagree"):
        g._check_one_source()
    monkeypatch.delitem(g.RESOURCE_VALIDATORS, "no-such-rule")
    g._check_one_source()
    monkeypatch.setitem(a.GUARDRAILS, "extra", a.Guardrail("extra", "stack", "x", crossguard_only="x"))
    with pytest.raises(ImportError):
        g._check_one_source()


def test_crossguard_policies_carry_the_definitions_descriptions():
    pytest.importorskip("pulumi_policy", reason="pulumi-policy is in policies/mesh-guardrails/requirements.txt")
    assert {p.name: p.description for p in g.build_policies()} == {n: d.description for n, d in a.GUARDRAILS.items()}


def test_the_cases_fire_and_pass_every_check():
    """Each kind an admission policy checks has objects that fire and objects that pass."""
    for name in a.ADMISSION_RULES:
        for check in a.GUARDRAILS[name].checks:
            mine = [n for _, p, t, _, n, _ in CASES if p == name and g.k8s_kind(t) == (check.group, check.kind)]
            assert any(mine) and 0 in mine, f"{name} {check.kind}: cases {mine}"
    assert len({c[0] for c in CASES}) == len(CASES)


# ---------------------------------------------------------------------------------------------
# each admission policy fires exactly where its CrossGuard twin does


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_admission_policy_refuses_exactly_what_crossguard_reports(case):
    _, policy, resource_type, props, violations, case_config = case
    assert len(g.run_resource_policy(policy, resource_type, props, case_config)) == violations
    obj = as_k8s(resource_type, props)
    # CrossGuard checks the stack's render: an exception it admits is one the render holds
    objects = a.admission_objects(config(case_config=case_config).with_exceptions([obj]))
    for operation in ("CREATE", "UPDATE"):
        got = decisions(objects, obj, operation)
        assert all(not d.errors for d in got.values()), {n: d.errors for n, d in got.items()}
        assert got[policy].matched
        assert got[policy].denied == (violations > 0), got[policy]
        # the other policies let it through (one rule, one policy)
        assert {n for n, d in got.items() if d.denied} == ({policy} if violations else set())


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_gatekeeper_constraint_refuses_exactly_what_crossguard_reports(case):
    _, policy, resource_type, props, violations, case_config = case
    obj = as_k8s(resource_type, props)
    objects = a.gatekeeper_objects(config(case_config=case_config).with_exceptions([obj]))
    templates = {o["spec"]["crd"]["spec"]["names"]["kind"]: o for o in objects if o["kind"] == "ConstraintTemplate"}
    constraints = [o for o in objects if o["apiVersion"].startswith("constraints.gatekeeper.sh/")]
    got = {c["metadata"]["name"]: ev.evaluate_gatekeeper(templates[c["kind"]], c, obj) for c in constraints}
    assert all(not d.errors for d in got.values())
    assert {n for n, d in got.items() if d.denied} == ({a.POLICY_PREFIX + policy} if violations else set())


def test_a_field_of_the_wrong_type_is_refused_like_a_violation():
    """CrossGuard reports it (tests/test_guardrails.py); ``failurePolicy: Fail`` refuses it in the cluster."""
    objects = a.admission_objects(config())
    for policy, resource_type, props in [("mtls-strict", "kubernetes:security.istio.io/v1:PeerAuthentication",
                                          {"metadata": {"name": "pa", "namespace": "n"}, "spec": {"portLevelMtls": [1]}}),
                                         ("no-wildcard-egress", "kubernetes:networking.istio.io/v1:ServiceEntry",
                                          {"metadata": {"name": "se", "namespace": "n"}, "spec": {"hosts": True}})]:
        assert g.run_resource_policy(policy, resource_type, props)
        d = decisions(objects, as_k8s(resource_type, props))[policy]
        assert d.denied and d.errors


def test_delete_and_other_kinds_are_not_matched():
    objects = a.admission_objects(config())
    pa = as_k8s("kubernetes:security.istio.io/v1:PeerAuthentication",
                {"metadata": {"name": "pa", "namespace": "n"}, "spec": {"mtls": {"mode": "DISABLE"}}})
    assert decisions(objects, pa)["mtls-strict"].denied
    deleted = {n: ev.evaluate(p, b, None, "DELETE", old=pa) for p, b in ev.pairs(objects)
               for n in [p["metadata"]["annotations"]["mesh-components.io/guardrail"]]}
    assert not any(d.matched for d in deleted.values())
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n"},
          "data": {"mtls": "DISABLE"}}
    assert not any(d.matched for d in decisions(objects, cm).values())
    # a kind of another group with the same name (Linkerd's AuthorizationPolicy is not Istio's)
    lap = as_k8s("kubernetes:policy.linkerd.io/v1alpha1:AuthorizationPolicy",
                 {"metadata": {"name": "ap", "namespace": "n"}, "spec": {"rules": [{}],
                                                                         "requiredAuthenticationRefs": [{"kind": "x"}]}})
    assert not decisions(objects, lap)["no-allow-all"].denied


# ---------------------------------------------------------------------------------------------
# the rendered objects and their actions


def test_admission_objects_shape_and_actions():
    cfg = config({"mtls-strict": "deny", "ingress-tls": "warn", "no-allow-all": "audit"})
    objects = a.admission_objects(cfg)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        (k, f"mesh-guardrails-{n}") for n in ("mtls-strict", "no-allow-all", "ingress-tls")
        for k in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")]
    bindings = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"}
    assert bindings["mesh-guardrails-mtls-strict"] == {"policyName": "mesh-guardrails-mtls-strict",
                                                       "validationActions": ["Deny"]}
    assert bindings["mesh-guardrails-ingress-tls"]["validationActions"] == ["Warn"]
    assert bindings["mesh-guardrails-no-allow-all"]["validationActions"] == ["Audit"]
    assert all("paramRef" not in b for b in bindings.values())
    for o in objects:
        assert "namespace" not in o["metadata"] and o["apiVersion"] == "admissionregistration.k8s.io/v1"
    vap = objects[0]["spec"]
    assert vap["failurePolicy"] == "Fail" and "paramKind" not in vap
    assert vap["matchConstraints"]["resourceRules"] == [
        {"apiGroups": [""], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["namespaces", "pods"]},
        {"apiGroups": ["security.istio.io"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
         "resources": ["peerauthentications"]}]
    # warn and audit never refuse
    plain = as_k8s("kubernetes:gateway.networking.k8s.io/v1:Gateway", {"metadata": {"name": "gw", "namespace": "n"},
                                                                       "spec": {"listeners": [{"name": "h", "port": 80,
                                                                                               "protocol": "HTTP"}]}})
    d = decisions(objects, plain)["ingress-tls"]
    assert not d.denied and d.warnings == [a.GATEWAY_API_LISTENERS.message]
    open_ap = as_k8s("kubernetes:security.istio.io/v1:AuthorizationPolicy",
                     {"metadata": {"name": "ap", "namespace": "n"}, "spec": {"rules": [{}]}})
    d = decisions(objects, open_ap)["no-allow-all"]
    assert not d.denied and d.audit and not d.warnings
    assert a.admission_objects(None) == []


def test_gatekeeper_objects():
    objects = a.admission_objects(config({"no-wildcard-egress": "audit", "mtls-strict": "deny"}, gatekeeper=True))
    gk = [o for o in objects if "gatekeeper.sh" in o["apiVersion"]]
    assert [(o["kind"], o["metadata"]["name"]) for o in gk] == [
        ("ConstraintTemplate", "meshguardrailsmtlsstrict"), ("MeshGuardrailsMtlsStrict", "mesh-guardrails-mtls-strict"),
        ("ConstraintTemplate", "meshguardrailsnowildcardegress"),
        ("MeshGuardrailsNoWildcardEgress", "mesh-guardrails-no-wildcard-egress")]
    t, c = gk[2], gk[3]
    assert t["metadata"]["name"] == t["spec"]["crd"]["spec"]["names"]["kind"].lower()  # Gatekeeper requires it
    (target,) = t["spec"]["targets"]
    assert target["target"] == "admission.k8s.gatekeeper.sh" and target["code"][0]["engine"] == "K8sNativeValidation"
    # Gatekeeper >= 3.20 would otherwise generate a second VAP + binding from the template
    # (open-policy-agent/gatekeeper pkg/controller/constraint/constraint_controller.go:79-80,446-455@v3.20.0)
    assert all(o["spec"]["targets"][0]["code"][0]["source"]["generateVAP"] is False
               for o in gk if o["kind"] == "ConstraintTemplate")
    assert c["spec"] == {"enforcementAction": "dryrun", "match": {"kinds": [
        {"apiGroups": ["networking.istio.io"], "kinds": ["ServiceEntry"]},
        {"apiGroups": ["networking.k8s.io"], "kinds": ["NetworkPolicy"]}]}}
    # the template's validations are the admission policy's, also true with no object
    vap = next(o for o in objects if o["metadata"]["name"] == "mesh-guardrails-no-wildcard-egress"
               and o["kind"] == "ValidatingAdmissionPolicy")
    assert [v["expression"] for v in target["code"][0]["source"]["validations"]] == \
        [f"object == null || ({v['expression']})" for v in vap["spec"]["validations"]]


def test_resources_are_the_crds_plurals():
    """The ``resource`` of every check is the plural its CRD serves (../shared/crds), or for a
    built-in kind the plural Kubernetes serves it under (namespaces, networkpolicies)."""
    if not ev.crd_plurals():
        pytest.skip("../shared/crds not present")
    built_in = {("", "Namespace"): "namespaces", ("", "Pod"): "pods",
                ("networking.k8s.io", "NetworkPolicy"): "networkpolicies"}
    for name in a.ADMISSION_RULES:
        for c in a.GUARDRAILS[name].checks:
            assert c.resource == (built_in.get((c.group, c.kind)) or ev.crd_plurals()[(c.group, c.kind)]), c
            assert c.resource == ev.kind_to_resource(c.group, c.kind)


def test_the_multicluster_exception_is_the_namespace_the_mesh_installs_the_chart_in():
    from mesh_components.core.multicluster import LINKERD_MC_NAMESPACE
    assert a.MULTICLUSTER_GATEWAY_AUTHENTICATION[0] == LINKERD_MC_NAMESPACE


def test_permissive_namespaces_are_baked_into_the_cel():
    exempt = a.admission_objects(config({"mtls-strict": "deny"}, {"permissiveNamespaces": ["legacy", "o'dd"]}))
    assert "['legacy', 'o\\'dd']" in exempt[0]["spec"]["validations"][0]["expression"]
    pa = as_k8s("kubernetes:security.istio.io/v1:PeerAuthentication",
                {"metadata": {"name": "pa", "namespace": "o'dd"}, "spec": {"mtls": {"mode": "DISABLE"}}})
    assert not decisions(exempt, pa)["mtls-strict"].denied
    assert decisions(a.admission_objects(config({"mtls-strict": "deny"})), pa)["mtls-strict"].denied


# ---------------------------------------------------------------------------------------------
# the spec field


def _guardrails(stack: str) -> Guardrails:
    """deny, except what the stack's pack config makes advisory (warn) or disables (off)."""
    path = ROOT / "policies" / "mesh-guardrails" / f"config.{stack}.json"
    levels = g.parse_policy_pack_config(json.loads(path.read_text()), str(path)).levels if path.exists() else {}
    to_action = {"advisory": "warn", "disabled": "off", "mandatory": "deny", "remediate": "deny"}
    return Guardrails(admission="deny", gatekeeper=True,
                      policies={n: to_action[levels[n]] for n in a.ADMISSION_RULES if levels.get(n, "mandatory") != "mandatory"})


def _render(stack: str, guardrails: Guardrails | None):
    from mesh_components.core.render import render_mesh
    loaded = load_stack(str(ROOT / "stacks" / f"Pulumi.{stack}.yaml"), root=ROOT)
    loaded = loaded._replace(spec=loaded.spec.model_copy(update={"guardrails": guardrails}))
    return render_mesh(loaded)


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_stacks_pass_every_admission_policy(stack):
    """The key check: in every cluster of every stack, every admission policy (and Gatekeeper
    constraint) admits every object the mesh renders, with no CEL error: a policy that refused the
    mesh's own output would fail ``pulumi up``. Only what the stack's pack config makes advisory
    warns. And a tampered object is refused."""
    guard = _guardrails(stack)
    states = _render(stack, guard)
    warned = set()
    for cluster, st in states.items():
        objects = [o for objs in st.concerns.values() for o in objs]
        mine = [o for o in st.concerns["control-plane"] if o["apiVersion"].startswith(
            ("admissionregistration.k8s.io/", "templates.gatekeeper.sh/", "constraints.gatekeeper.sh/"))]
        assert len([o for o in mine if o["kind"] == "ValidatingAdmissionPolicy"]) == len(a.ADMISSION_RULES)
        templates = {o["spec"]["crd"]["spec"]["names"]["kind"]: o for o in mine if o["kind"] == "ConstraintTemplate"}
        constraints = [o for o in mine if o["apiVersion"].startswith("constraints.gatekeeper.sh/")]
        assert len(templates) == len(constraints) == len(a.ADMISSION_RULES)
        matched = 0
        for obj in objects:
            for operation in ("CREATE", "UPDATE"):
                for name, d in decisions(mine, obj, operation).items():
                    matched += d.matched
                    assert not d.errors, (cluster, obj["kind"], obj["metadata"], d.errors)
                    assert not d.denied, (cluster, obj["kind"], obj["metadata"], d.failures)
                    if d.warnings:
                        warned.add(name)
            for c in constraints:
                d = ev.evaluate_gatekeeper(templates[c["kind"]], c, obj)
                assert not d.errors and not d.denied, (cluster, obj["kind"], obj["metadata"], d.failures)
        assert matched  # the policies did look at the mesh's objects
    assert warned <= {n for n, act in guard.policies.items() if act == "warn"}
    # a tampered copy is refused
    st = next(iter(states.values()))
    mine = [o for o in st.concerns["control-plane"] if o["apiVersion"].startswith("admissionregistration.k8s.io/")]
    every = [o for objs in st.concerns.values() for o in objs]
    pa = next((o for o in every if o["kind"] == "PeerAuthentication"), None)
    if pa is not None:
        bad = copy.deepcopy(pa)
        bad["spec"].setdefault("mtls", {})["mode"] = "PERMISSIVE"
        assert decisions(mine, bad)["mtls-strict"].denied
    mtls = next((o for o in every if o["kind"] == "MeshTLSAuthentication"), None)
    if mtls is not None:
        bad = copy.deepcopy(mtls)
        bad["spec"]["identities"] = ["*"]
        assert decisions(mine, bad)["no-allow-all"].denied
    assert pa is not None or mtls is not None or stack == "osm"


def test_the_linkerd_multicluster_chart_gateway_objects_are_admitted():
    """Helm creates them in the cluster (linkerd2 edge-26.8.3
    multicluster/charts/linkerd-multicluster/templates/gateway-policy.yaml), where the policies see them."""
    objects = a.admission_objects(config())
    meta = {"namespace": "linkerd-multicluster", "labels": {"linkerd.io/extension": "multicluster"}}
    chart = [
        {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server", "metadata": {"name": "linkerd-gateway", **meta},
         "spec": {"podSelector": {"matchLabels": {"app": "linkerd-gateway"}}, "port": "linkerd-proxy"}},
        {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy",
         "metadata": {"name": "linkerd-gateway", **meta},
         "spec": {"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": "linkerd-gateway"},
                  "requiredAuthenticationRefs": [
                      {"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "any-meshed",
                       "namespace": "linkerd-multicluster"},
                      {"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "source-cluster",
                       "namespace": "linkerd-multicluster"}]}},
        {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "MeshTLSAuthentication",
         "metadata": {"name": "any-meshed", **meta}, "spec": {"identities": ["*"]}},
    ]
    for obj in chart:
        assert not any(d.denied or d.errors for d in decisions(objects, obj).values()), obj["metadata"]["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_without_the_field_nothing_is_rendered(stack):
    states = _render(stack, None)
    assert not any(o["apiVersion"].startswith(("admissionregistration.k8s.io/", "templates.gatekeeper.sh/"))
                   for st in states.values() for objs in st.concerns.values() for o in objs)
    off = _render(stack, Guardrails(gatekeeper=False))  # admission: off (the default)
    assert {c: st.concerns for c, st in off.items()} == {c: st.concerns for c, st in states.items()}


def _spec_error(tmp_path, guardrails_yaml: str) -> str:
    text = (ROOT / "stacks" / "Pulumi.staging.yaml").read_text()
    marker = "  service-mesh:mesh:\n"
    assert marker in text
    head, tail = text.split(marker, 1)
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(head + marker + "    guardrails: " + guardrails_yaml + "\n" + tail)
    with pytest.raises(SpecError) as e:
        load_stack(str(path), root=ROOT)
    return str(e.value)


def test_spec_refuses_what_it_cannot_enforce(tmp_path):
    msg = _spec_error(tmp_path, "{admission: deny, policies: {ingres-tls: warn}}")
    assert "mesh.guardrails.policies" in msg and "did you mean 'ingress-tls'?" in msg
    msg = _spec_error(tmp_path, "{admission: deny, policies: {single-trust-domain: deny}}")
    assert "mesh.guardrails.policies" in msg and "only by the CrossGuard policy pack" in msg
    msg = _spec_error(tmp_path, "{gatekeeper: true}")
    assert "mesh.guardrails" in msg and "every policy is off" in msg
    msg = _spec_error(tmp_path, "{admission: block}")
    assert "mesh.guardrails.admission" in msg
    msg = _spec_error(tmp_path, "{admission: deny, permissiveNamespaces: [Legacy]}")
    assert "mesh.guardrails.permissiveNamespaces" in msg


def test_render_cli_writes_the_admission_objects(tmp_path):
    import subprocess
    import sys
    text = (ROOT / "stacks" / "Pulumi.staging.yaml").read_text()
    marker = "  service-mesh:mesh:\n"
    head, tail = text.split(marker, 1)
    stack = ROOT / "stacks" / f".test-admission-{tmp_path.name}.yaml"
    try:
        stack.write_text(head + marker + "    guardrails: {admission: deny, policies: {ingress-tls: warn}}\n" + tail)
        run = subprocess.run([sys.executable, "-m", "mesh_components", "render", str(stack), "--out", str(tmp_path / "out")],
                             cwd=ROOT, capture_output=True, text=True)
    finally:
        stack.unlink()
    assert run.returncode == 0, run.stderr
    for cluster in (tmp_path / "out").iterdir():
        if not cluster.is_dir():
            continue
        docs = [d for f in cluster.glob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d]
        got = {(d["kind"], d["metadata"]["name"]) for d in docs if d["apiVersion"].startswith("admissionregistration")}
        assert got == {(k, a.POLICY_PREFIX + n) for n in a.ADMISSION_RULES
                       for k in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")}
        warn = next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"
                    and d["metadata"]["name"] == "mesh-guardrails-ingress-tls")
        assert warn["spec"]["validationActions"] == ["Warn"]


def test_the_program_registers_them_with_the_control_plane():
    """``pulumi up`` (the program under Pulumi's mocks): each cluster's ControlPlane component
    registers the admission policies and bindings, cluster-scoped, as rendered."""
    pytest.importorskip("pulumi")
    from program_harness import run_program, stack_config
    conf = stack_config("prod")
    mesh = json.loads(conf["service-mesh:mesh"])
    mesh["guardrails"] = {"admission": "deny", "policies": {"ingress-tls": "warn"}}
    regs = run_program({**conf, "service-mesh:mesh": json.dumps(mesh)}, stack="prod")
    vaps = [r for r in regs if r.type.startswith("kubernetes:admissionregistration.k8s.io/v1:")]
    states = _render("prod", Guardrails(admission="deny", policies={"ingress-tls": "warn"}))
    rendered = [o for st in states.values() for o in st.concerns["control-plane"]
                if o["apiVersion"].startswith("admissionregistration.k8s.io/")]
    assert len(vaps) == len(rendered) == 2 * len(a.ADMISSION_RULES) * len(states)
    assert {r.type.rpartition(":")[2] for r in vaps} == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    assert all("ControlPlane" in r.parent for r in vaps)
    by_name = {}
    for r in vaps:
        by_name.setdefault((r.type.rpartition(":")[2], r.inputs["metadata"]["name"]), []).append(r.inputs)
    for o in rendered:
        got = by_name[(o["kind"], o["metadata"]["name"])]
        assert any(i["spec"] == o["spec"] and "namespace" not in i["metadata"] for i in got)


def test_gatekeeper_constraints_wait_for_their_templates():
    """A constraint's kind is a CRD Gatekeeper makes from its ConstraintTemplate, so under ``pulumi up``
    each template awaits ``status.created`` (set by Gatekeeper's constrainttemplatestatus controller
    once the CRD exists; pulumi-kubernetes' ``pulumi.com/waitFor``) and every constraint depends on
    the templates: the first update does not fail with "no matches for kind"."""
    pytest.importorskip("pulumi")
    from program_harness import run_program, stack_config
    conf = stack_config("prod")
    mesh = json.loads(conf["service-mesh:mesh"])
    mesh["guardrails"] = {"admission": "deny", "gatekeeper": True}
    regs = run_program({**conf, "service-mesh:mesh": json.dumps(mesh)}, stack="prod")
    templates = [r for r in regs if r.type == "kubernetes:templates.gatekeeper.sh/v1:ConstraintTemplate"]
    constraints = [r for r in regs if r.type.startswith("kubernetes:constraints.gatekeeper.sh/")]
    clusters = len(_render("prod", Guardrails(admission="deny")))
    assert len(templates) == len(constraints) == len(a.ADMISSION_RULES) * clusters
    assert all(t.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "jsonpath={.status.created}=true"
               for t in templates)
    urns = {t.parent: set() for t in templates}
    for t in templates:
        urns[t.parent].add(t.urn)
    for c in constraints:
        assert urns[c.parent] <= set(c.dependencies), c.name  # every template of its cluster


@pytest.mark.parametrize("case", [c for c in CASES if c[4] == 0 and (
    a.UNRESTRICTED_ANNOTATION in str(c[3]) or a.ALLOW_WILDCARD_ANNOTATION in str(c[3]))], ids=lambda c: c[0])
def test_in_the_cluster_an_exception_annotation_counts_only_on_the_objects_the_render_holds(case):
    """Review finding: anyone who may edit an AuthorizationPolicy or ServiceEntry may write
    ``mesh-components.io/unrestricted`` or ``allow-wildcard``, so in the cluster the exception holds
    only for the ``<namespace>/<name>`` the cluster's render holds (AdmissionConfig.with_exceptions,
    baked into the CEL): the same compliant-looking object under another name, or in a cluster whose
    render has no such exception, is refused; CrossGuard, which checks the render itself, admits it."""
    _, policy, resource_type, props, violations, case_config = case
    obj = as_k8s(resource_type, props)
    held = a.admission_objects(config(case_config=case_config).with_exceptions([obj]))
    assert not decisions(held, obj)[policy].denied
    none = a.admission_objects(config(case_config=case_config))
    assert decisions(none, obj)[policy].denied
    other = {**obj, "metadata": {**obj["metadata"], "namespace": "elsewhere"}}
    assert decisions(held, other)[policy].denied


def test_rendered_exceptions_are_the_clusters_own():
    """with_exceptions takes exactly the annotated AuthorizationPolicies and ServiceEntries of the
    cluster's objects, sorted (same stack, same bytes)."""
    objs = [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
             "metadata": {"name": "b-unrestricted", "namespace": "n", "annotations": {a.UNRESTRICTED_ANNOTATION: "x"}}},
            {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
             "metadata": {"name": "a-unrestricted", "namespace": "n", "annotations": {a.UNRESTRICTED_ANNOTATION: "x"}}},
            {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "c", "namespace": "n"}},
            {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
             "metadata": {"name": "w", "namespace": "e", "annotations": {a.ALLOW_WILDCARD_ANNOTATION: "true"}}}]
    got = config().with_exceptions(objs)
    assert got.open_services == ("n/a-unrestricted", "n/b-unrestricted")
    assert got.wildcard_service_entries == ("e/w",)
