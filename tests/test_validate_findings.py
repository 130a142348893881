"""Issue 13 item 3 (guardrails) and item 11 (``validate --format json``): ``validate`` runs the
mesh-guardrails policy pack's rules on the rendered stack, so what the pack would stop at
``pulumi up --policy-pack policies/mesh-guardrails`` is known at validate time.

- A mandatory policy's violation is an ``error`` finding and ``validate`` exits 1: the stack is not
  deployable, as ``istioctl analyze`` fails on an Error by default (``--failure-threshold``,
  default Error: https://istio.io/latest/docs/reference/commands/istioctl/#istioctl-analyze);
  an advisory one is a ``warning`` (exit 0, 2 with ``--strict``); exit 2 means findings only with
  ``--strict`` (issue 13 item 11).
- The levels are the pack's (``__main__.py``: every policy mandatory) overlaid with the policy pack
  config the Pulumi CLI would get, reconciled as pulumi/pulumi v3.259.0
  ``pkg/resource/analyzer/config.go`` ``applyConfig`` does (``all`` first, then each policy's own).
- The pack sees the provider-checked inputs of each registered resource (pulumi/pulumi
  ``pkg/resource/deploy/step_generator.go``: ``inputs = resp.Properties`` after ``prov.Check``,
  then ``plugin.AnalyzerResource{Type: new.Type, Properties: inputs}``); the test against the
  program run under Pulumi's mocks checks the offline mapping has the same types, names and keys.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mesh_components.analysis import findings, guardrails
from mesh_components.cli import main
from mesh_components.spec.errors import SpecError
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh, load_stack

ROOT = Path(__file__).resolve().parents[1]
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))

BASE = {
    "name": "shop", "backend": {"type": "istio"},
    "clusters": [{"name": "c1", "cloud": "onprem", "region": "local"}],
    "namespaces": [{"name": "app"}],
    "services": [{"name": "web", "namespace": "app", "ports": [{"port": 80, "protocol": "http"}]},
                 {"name": "client", "namespace": "app", "ports": [{"port": 80, "protocol": "http"}]}],
    "accessRules": [{"name": "r", "namespace": "app", "destination": {"serviceAccount": "web"},
                     "sources": [{"serviceAccount": "client", "namespace": "app"}], "http": [{"methods": ["GET"]}]}],
    "egress": [{"name": "api", "hosts": ["api.example.com"], "ports": [{"port": 443, "protocol": "https"}],
                "sources": [{"service": "client", "namespace": "app"}]}],
}
"""A small stack the spec accepts and the pack passes; the cases below add what the pack refuses."""

PERMISSIVE = {"kind": "PeerAuthentication", "namespace": "istio-system", "name": "default",
              "patch": [{"op": "replace", "path": "/spec/mtls/mode", "value": "PERMISSIVE"}]}
ALLOW_ALL = {"kind": "AuthorizationPolicy", "namespace": "app", "name": "r-web",
             "patch": [{"op": "replace", "path": "/spec/rules", "value": [{}]}]}
WILDCARD = {"kind": "ServiceEntry", "namespace": "mesh-egress", "name": "api",
            "patch": [{"op": "add", "path": "/spec/hosts/-", "value": "*.example.com"}]}


def write(tmp_path: Path, mesh: dict, name: str = "t") -> str:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": mesh}}, sort_keys=False))
    return str(path)


def run(capsys, *argv) -> tuple[int, str, list[str]]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def run_json(capsys, *argv) -> tuple[int, dict, str]:
    code = main(["validate", *argv, "--format", "json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def pack_config(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "pack-config.json"
    path.write_text(json.dumps(data))
    return str(path)


# ---------------------------------------------------------------------------------------------
# what the pack refuses is an error finding, with code, severity and the spec field


def test_the_base_stack_passes_every_guardrail(tmp_path, capsys):
    code, out, err = run(capsys, write(tmp_path, BASE))
    assert code == 0 and err == [] and "valid: mesh 'shop'" in out


def test_pack_refusals_are_error_findings_in_text(tmp_path, capsys):
    mesh = {**BASE, "ca": {"rootValidityDays": 7300}, "overrides": [PERMISSIVE, ALLOW_ALL, WILDCARD]}
    code, out, err = run(capsys, write(tmp_path, mesh))
    assert code == 1 and out == ""  # not deployable: nothing on stdout, as for any refused input
    assert err[:-1] == [
        "mesh.overrides[0]: error: PeerAuthentication istio-system/default sets mtls.mode PERMISSIVE: mTLS must "
        "be STRICT [mtls-strict]",
        "mesh.overrides[1]: error: AuthorizationPolicy app/r-web rules[0] allows every source (no 'from', or an "
        "empty source): name the principals or namespaces it admits [no-allow-all]",
        "mesh.overrides[2]: error: ServiceEntry mesh-egress/api opens egress to wildcard host '*.example.com': "
        "list exact hosts, or annotate mesh-components.io/allow-wildcard: \"true\" to make the exception "
        "explicit [no-wildcard-egress]",
        "mesh.ca: error: root_validity_days 7300 exceeds the limit of 3650 days [ca-limits]",
        # a stack policy's violation the overrides cause: no one object to name
        "mesh.overrides: error: istiod release istiod has no mesh-wide STRICT PeerAuthentication: add one in "
        "namespace istio-system without a selector and with mtls.mode STRICT [mtls-mesh-wide-strict]",
    ]
    assert err[-1].startswith(f"{tmp_path / 'Pulumi.t.yaml'}: not deployable: 5 error(s)")
    # --strict does not turn errors into 2: 2 means findings only with --strict and no error
    assert run(capsys, write(tmp_path, mesh), "--strict")[0] == 1


def test_pack_refusals_are_error_findings_in_json(tmp_path, capsys):
    mesh = {**BASE, "overrides": [ALLOW_ALL]}
    code, report, err = run_json(capsys, write(tmp_path, mesh))
    assert code == 1 and err == ""
    assert report["valid"] is False and report["problems"] == []
    assert report["counts"] == {"error": 1, "warning": 0, "notice": 0, "suppressed": 0}
    (f,) = report["findings"]
    assert f == {"code": "no-allow-all", "severity": "error", "path": "mesh.overrides[0]",
                 "message": "AuthorizationPolicy app/r-web rules[0] allows every source (no 'from', or an empty "
                            "source): name the principals or namespaces it admits",
                 "resources": ["c1/app--authorizationpolicy.security.istio.io--r-web.yaml"],
                 "suppressed": False, "reason": None}


def test_a_violation_the_spec_itself_causes_names_the_rendered_object_or_spec_field(tmp_path, capsys):
    # the egress rule without allowWildcard is refused by the spec; with it, the ServiceEntry carries
    # the explicit exception annotation and passes (egress.ALLOW_WILDCARD)
    mesh = copy.deepcopy(BASE)
    mesh["egress"][0].update(hosts=["*.example.com"], allowWildcard=True)
    assert run(capsys, write(tmp_path, mesh))[0] == 0
    # an ingress without TLS serves plain HTTP: the ingress policies, at mesh.ingress
    dev = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]["service-mesh:mesh"]
    dev["smiFiles"] = [str(ROOT / f) for f in dev.get("smiFiles", [])]
    code, report, _ = run_json(capsys, write(tmp_path, dev, "copy"))   # no config.copy.json: every policy mandatory
    assert code == 1
    got = {(f["code"], f["severity"], f["path"]) for f in report["findings"] if f["severity"] == "error"}
    assert got == {("ingress-tls", "error", "mesh.ingress"), ("ingress-http-redirect-only", "error", "mesh.ingress")}


def test_a_helm_release_override_is_named_and_the_release_listed(tmp_path, capsys):
    """OSM's chart default admits every client (osm v1.2.4 pkg/catalog/inbound_traffic_policies.go:36-37):
    an override turning it back on is the pack's no-allow-all, at the override that does it."""
    osm = yaml.safe_load((ROOT / "stacks" / "Pulumi.osm.yaml").read_text())["config"]["service-mesh:mesh"]
    osm["smiFiles"] = [str(ROOT / f) for f in osm.get("smiFiles", [])]
    osm["overrides"] = [*osm.get("overrides", []), {
        "kind": "HelmRelease", "name": "osm",
        "patch": [{"op": "replace", "path": "/values/osm/enablePermissiveTrafficPolicy", "value": True}]}]
    code, report, _ = run_json(capsys, write(tmp_path, osm))
    assert code == 1
    # beside it only the notices of the stack's mesh.telemetry (Prometheus Operator CRDs, pod restarts)
    (f,) = [f for f in report["findings"] if (f["code"], f["severity"]) != ("telemetry-prerequisite", "notice")]
    assert (f["code"], f["severity"], f["path"]) == ("no-allow-all", "error", f"mesh.overrides[{len(osm['overrides']) - 1}]")
    assert f["resources"] == ["osm/releases/helm-releases.yaml#osm"]


# ---------------------------------------------------------------------------------------------
# enforcement levels from the pack config, and suppression


def test_every_shipped_stack_validates_with_no_error_finding(capsys, monkeypatch):
    """dev's two plain-HTTP findings are warnings: ``config.dev.json`` (the file the workflows give
    the pack for dev) makes those policies advisory, and ``validate dev`` reads it by convention."""
    monkeypatch.chdir(ROOT)
    for stack in STACKS:
        code, report, _ = run_json(capsys, stack)
        assert code == 0 and report["valid"] and report["counts"]["error"] == 0, (stack, report["findings"])
        guards = {f["code"] for f in report["findings"] if f["code"] in guardrails.POLICY_NAMES}
        if stack == "dev":
            assert report["policyPackConfig"] == "policies/mesh-guardrails/config.dev.json"
            assert guards == {"ingress-tls", "ingress-http-redirect-only"}
            assert {f["severity"] for f in report["findings"] if f["code"] in guards} == {"warning"}
        else:
            assert report["policyPackConfig"] is None and guards == set(), stack


def test_explicit_pack_config_replaces_the_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, report, _ = run_json(capsys, "dev", "--policy-pack-config", pack_config(tmp_path, {}))
    assert code == 1 and report["counts"]["error"] == 2 and report["policyPackConfig"] == str(tmp_path / "pack-config.json")
    # 'all' first, then the policy's own level, whatever the order in the file (applyConfig)
    cfg = pack_config(tmp_path, {"ingress-tls": "mandatory", "all": {"enforcementLevel": "disabled"}})
    code, report, _ = run_json(capsys, "dev", "--policy-pack-config", cfg)
    assert code == 1 and [f["code"] for f in report["findings"]] == ["ingress-tls"]


def test_pack_config_properties_reach_the_policies(tmp_path, capsys):
    mesh = {**BASE, "overrides": [PERMISSIVE]}
    path = write(tmp_path, mesh)
    exempt = pack_config(tmp_path, {"mtls-strict": {"permissiveNamespaces": ["istio-system"]},
                                    "mtls-mesh-wide-strict": "advisory"})
    code, report, _ = run_json(capsys, path, "--policy-pack-config", exempt)
    assert code == 0 and [(f["code"], f["severity"]) for f in report["findings"]] == [("mtls-mesh-wide-strict", "warning")]
    strict_rsa = pack_config(tmp_path, {"ca-limits": {"minRsaBits": 4096}})
    mesh = {**BASE, "ca": {"keyAlgorithm": "RSA_2048"}}
    code, out, err = run(capsys, write(tmp_path, mesh), "--policy-pack-config", strict_rsa)
    assert code == 1 and err[0] == "mesh.ca: error: key_algorithm RSA_2048: RSA keys must have at least 4096 bits [ca-limits]"


@pytest.mark.parametrize("data,line", [
    ({"ingres-tls": "advisory"}, "#ingres-tls: the mesh-guardrails pack has no policy 'ingres-tls': did you mean "
                                 "'ingress-tls'?"),
    ({"ingress-tls": "warn"}, "#ingress-tls: 'warn' is not an enforcement level: use one of advisory, mandatory, "
                              "remediate, disabled"),
    ({"ca-limits": {"minRsaBits": 1024}}, "#ca-limits.minRsaBits: must be at least 2048, got 1024"),
    ({"mtls-strict": {"permissiveNamespace": ["a"]}}, "#mtls-strict.permissiveNamespace: unknown property of "
                                                      "'mtls-strict': besides enforcementLevel, its properties are "
                                                      "permissiveNamespaces"),
    ([1], ": expected a JSON object of policy settings, got list"),
])
def test_bad_pack_configs_are_refused_with_the_file_and_key(tmp_path, capsys, data, line):
    cfg = pack_config(tmp_path, data)
    code, out, err = run(capsys, write(tmp_path, BASE), "--policy-pack-config", cfg)
    assert code == 1 and out == "" and err[0].startswith(cfg + line), err
    (tmp_path / "bad.json").write_text("{")
    code, report, _ = run_json(capsys, write(tmp_path, BASE), "--policy-pack-config", str(tmp_path / "bad.json"))
    assert code == 1 and report["problems"][0]["message"].startswith("not valid JSON (line 1, column 2)")


def test_suppression_silences_a_warning_and_says_so_in_json(tmp_path, capsys):
    advisory = pack_config(tmp_path, {"no-wildcard-egress": "advisory"})
    mesh = {**BASE, "overrides": [WILDCARD]}
    code, out, err = run(capsys, write(tmp_path, mesh), "--strict", "--policy-pack-config", advisory)
    assert code == 2 and err == ["mesh.overrides[0]: warning: ServiceEntry mesh-egress/api opens egress to wildcard "
                                 "host '*.example.com': list exact hosts, or annotate "
                                 "mesh-components.io/allow-wildcard: \"true\" to make the exception explicit "
                                 "[no-wildcard-egress]"]
    reason = "the partner's API rotates hosts under example.com; reviewed in SEC-42"
    mesh["validation"] = {"suppress": [{"code": "no-wildcard-egress", "reason": reason}]}
    path = write(tmp_path, mesh)
    code, out, err = run(capsys, path, "--strict", "--policy-pack-config", advisory)
    assert code == 0 and err == [] and out.rstrip().endswith("; 1 suppressed")
    code, report, _ = run_json(capsys, path, "--strict", "--policy-pack-config", advisory)
    assert code == 0 and report["counts"] == {"error": 0, "warning": 0, "notice": 0, "suppressed": 1}
    (f,) = report["findings"]
    assert (f["code"], f["severity"], f["suppressed"], f["reason"]) == ("no-wildcard-egress", "warning", True, reason)


def test_a_code_the_pack_enforces_is_not_silenced_and_says_why(tmp_path, capsys):
    """A suppression of a mandatory code does not apply (pulumi up would still stop on it), and is not bad
    input either: the same stack file meets other pack configs (dev suppresses ingress-tls, advisory in
    config.dev.json, mandatory in the pack's own levels)."""
    mesh = {**BASE, "overrides": [ALLOW_ALL],
            "validation": {"suppress": [{"code": "no-allow-all", "reason": "we know"}]}}
    code, out, err = run(capsys, write(tmp_path, mesh))
    assert code == 1
    (line,) = [l for l in err if l.endswith("[no-allow-all]")]
    assert ": error: " in line and ("(mesh.validation.suppress[0] does not apply: 'no-allow-all' is mandatory in the "
                                    "pack's own levels") in line
    code, report, _ = run_json(capsys, write(tmp_path, mesh))
    assert code == 1 and report["problems"] == [] and report["counts"]["suppressed"] == 0
    (f,) = [f for f in report["findings"] if f["code"] == "no-allow-all"]
    assert (f["severity"], f["suppressed"], f["reason"]) == ("error", False, None)


def test_validate_codes_suppress_too(tmp_path, capsys, monkeypatch):
    """The topology warning (``unconfirmed-flat-network``) is a finding: suppressed, --strict passes."""
    monkeypatch.chdir(ROOT)
    staging = yaml.safe_load((ROOT / "stacks" / "Pulumi.staging.yaml").read_text())["config"]["service-mesh:mesh"]
    staging.pop("flatNetworks")
    staging["smiFiles"] = [str(ROOT / f) for f in staging.get("smiFiles", [])]
    code, out, err = run(capsys, write(tmp_path, staging), "--strict")
    assert code == 2 and [ln for ln in err if ": warning: " in ln][0].endswith("[unconfirmed-flat-network]")
    staging["validation"] = {"suppress": [{"code": "unconfirmed-flat-network", "reason": "peered VPCs, VPC CNI"}]}
    assert run(capsys, write(tmp_path, staging), "--strict")[0] == 0


@pytest.mark.parametrize("suppress,path,fragment", [
    ([{"code": "mtls-strick", "reason": "x"}], "mesh.validation.suppress[0].code",
     "unknown finding code 'mtls-strick': did you mean 'mtls-strict'? the codes are mtls-strict, no-allow-all,"),
    ([{"code": "consul", "reason": "x"}], "mesh.validation.suppress[0].code", "unknown finding code 'consul': the codes are"),
    ([{"code": "ingress-tls"}], "mesh.validation.suppress[0].reason", "required field is missing"),
    ([{"code": "ingress-tls", "reason": "  "}], "mesh.validation.suppress[0].reason", "say why"),
    (["ingress-tls"], "mesh.validation.suppress[0]", ""),
    ([{"code": "ingress-tls", "reason": "a"}, {"code": "ingress-tls", "reason": "b"}], "mesh.validation",
     "suppress[1] repeats code 'ingress-tls' of suppress[0]"),
])
def test_unknown_codes_and_bad_suppressions_are_refused(suppress, path, fragment):
    with pytest.raises(SpecError) as e:
        load_mesh({**BASE, "validation": {"suppress": suppress}})
    hits = [m for p, m in e.value.problems if p == path]
    assert hits and fragment in hits[0], e.value.problems
    if "the codes are" in fragment:  # every known code is listed
        assert all(code in hits[0] for code in findings.FINDING_CODES)


# ---------------------------------------------------------------------------------------------
# the JSON report and the text lines stay what pipelines read


def test_json_report_shape_for_valid_and_invalid_input(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    keys = ["schemaVersion", "stack", "valid", "mesh", "backend", "clusters", "services", "objects",
            "policyPackConfig", "counts", "findings", "problems"]
    code, report, err = run_json(capsys, "prod")
    assert code == 0 and err == "" and list(report) == keys
    assert (report["schemaVersion"], report["stack"], report["mesh"], report["clusters"]) == (1, "prod", "bookstore-prod", 3)
    assert report["backend"] == {"type": "istio", "chartVersion": "1.30.3"}
    notice = next(f for f in report["findings"] if f["severity"] == "notice")
    assert notice["code"] == "ingress-prerequisite" and notice["path"] == "mesh.ingress.tls.secretName"
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  service-mesh:mesh:\n    name: Shop\n")
    code, report, err = run_json(capsys, str(bad))
    assert code == 1 and err == "" and list(report) == keys and report["valid"] is False
    assert report["mesh"] is None and report["findings"] == [] and report["problems"]
    # {path, message}, plus file, line and column where the loader placed the problem (findings.place_fields)
    assert all({"path", "message"} <= set(p) <= {"path", "message", "file", "line", "column"}
               for p in report["problems"])
    # same input, same bytes
    first = subprocess.run([sys.executable, "-m", "mesh_components", "validate", "linkerd", "--format", "json"],
                           cwd=ROOT, capture_output=True, text=True)
    again = subprocess.run([sys.executable, "-m", "mesh_components", "validate", "linkerd", "--format", "json"],
                           cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0 and first.stdout == again.stdout and first.stderr == ""


def test_text_lines_keep_path_severity_message(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run(capsys, "prod")
    assert code == 0 and err and err[0].startswith("mesh.ingress.tls.secretName: notice: ")
    assert err[0].endswith(" [ingress-prerequisite]")
    # then what the stack's mesh.telemetry needs (the Prometheus Operator's CRDs...)
    assert len(err) > 1 and all(ln.startswith("mesh.telemetry") and ": notice: " in ln
                                and ln.endswith(" [telemetry-prerequisite]") for ln in err[1:])
    assert out.startswith("prod: valid: mesh 'bookstore-prod' (istio 1.30.3), 3 cluster(s)")


def test_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["validate", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("exit codes:", "0 deployable: no error finding", "an error finding (the policy pack would "
                     "stop pulumi up)", "2 with --strict: no error, but a warning finding", "--format {text,json}",
                     "--policy-pack-config FILE"):
        assert fragment in text, fragment


# ---------------------------------------------------------------------------------------------
# the offline resources are what the program registers


def _pack_view(registrations) -> list[tuple[str, dict]]:
    return [(r.type, r.inputs) for r in registrations
            if r.type.startswith("kubernetes:") or r.type == "pulumi-python:dynamic:Resource"]


def _identity(resource_type: str, props: dict) -> tuple:
    meta = props.get("metadata") or {}
    return (resource_type, meta.get("namespace") or props.get("namespace"),
            meta.get("name") or props.get("name") or props.get("file"), tuple(sorted(props)))


@pytest.mark.parametrize("stack", ["prod", "linkerd"])
def test_offline_resources_match_the_programs_registrations(stack):
    """``findings.pulumi_resources`` has the type token, name and input keys of every resource the
    real ``__main__.py`` registers (under Pulumi's mocks, ``tests/program_harness.py``), and the
    guardrails find the same on both, including on a tampered stack."""
    from program_harness import run_program, stack_config

    config = stack_config(stack)
    mesh = json.loads(config["service-mesh:mesh"])
    if stack == "prod":   # an override the pack refuses, registered by the program as the render has it
        mesh["overrides"] = [{**PERMISSIVE, "clusters": ["prod-aws"]}]
        config = {**config, "service-mesh:mesh": json.dumps(mesh)}
    registered = _pack_view(run_program(config, stack=stack))
    loaded = load_mesh(mesh, base_dir=ROOT)
    offline = [(r.resource_type, r.props) for r in findings.pulumi_resources(loaded.spec, render_mesh(loaded))]
    assert sorted(_identity(*r) for r in offline) == sorted(_identity(*r) for r in registered)
    online_v = sorted((v.policy, v.message) for v in guardrails.check_resources(registered))
    offline_v = sorted((v.policy, v.message) for v in guardrails.check_resources(offline))
    assert offline_v == online_v
    assert bool(offline_v) == (stack == "prod")


@pytest.mark.parametrize("stack", STACKS)
def test_every_finding_place_is_a_file_render_writes(stack, tmp_path):
    """A finding on a rendered object names ``<cluster>/<file>`` as ``render --out`` writes it: objects
    holding deploy-time values under ``<cluster>/deploy-time/``, hashed file names where readable ones
    would collide or pass 255 bytes (names.object_filenames), Helm releases in ``releases/``."""
    from mesh_components.core.render import write_tree

    loaded = load_stack(stack, root=ROOT)
    states = render_mesh(loaded)
    write_tree(states, tmp_path / "out")
    places = [r.where for r in findings.pulumi_resources(loaded.spec, states) if r.cluster is not None]
    assert places
    for where in places:
        assert (tmp_path / "out" / where.partition("#")[0]).is_file(), where
    assert any("/deploy-time/" in w for w in places)  # every stack has its CA material there
