"""Values the meshes compare literally (issue 13.2) and linear-time regex work (issue 13.8).

- HTTP methods: case-sensitive (RFC 9110 section 9.1), compared literally by Istio 1.30.3 (an exact
  ``:method`` matcher, pilot/pkg/security/authz/matcher/header.go:53), OSM v1.2.4 (an RE2
  ``safe_regex``, pkg/envoy/rds/route/route_config.go:476-531) and Linkerd edge-26.8.3 (the CRD's
  upper-case enum): ``get`` is refused with the fix, in the spec and in SMI files alike;
- header names: RFC 9110 tokens of at most 256 characters (Gateway API ``HTTPHeaderName``), one
  condition per header (names are case-insensitive);
- regexes: RE2 must compile them (Envoy's ``safe_regex``), and for Linkerd the ``RegularExpression``
  it is sent must read alike in Rust ``regex`` 1.13 (policy controller and proxy). Each Rust case
  below was run through regex 1.13.1 (rust-lang/regex at tag 1.13.1, ``Regex::new`` with its default
  features, as Linkerd builds it): ``error`` quotes its error, ``otherwise`` names an input on which
  its match differs from RE2's;
- one TrafficSplit per root service, spec and files together, naming both documents;
- the overlap check matches user regexes with RE2, in linear time.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mesh_components.spec import smi
from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.meshes.linkerd_policy import rendered_regex
from mesh_components.core.render import translate
from mesh_components.spec import load_mesh

from program_harness import ROOT
from test_access_semantics import TWO_PORTS, hrg, tt
from test_spec import dev_mesh


def mesh(tmp_path: Path, docs: list[dict] = (), backend: str = "osm", rules: list[dict] | None = None,
         splits: list[dict] | None = None):
    """A one-cluster ``backend`` mesh of TWO_PORTS (shop/books, clients/web) with SMI ``docs``."""
    (tmp_path / "smi.yaml").write_text(yaml.safe_dump_all(list(docs)) if docs else "")
    return load_mesh({
        "name": "literal", "backend": {"type": backend},
        "clusters": [{"name": "c1", "cloud": "onprem", "region": "lab"}],
        "namespaces": [{"name": "shop"}, {"name": "clients"}],
        "services": [{"name": n, "namespace": ns, "ports": [{"port": p, "name": f"{pr}-{p}", "protocol": pr}
                                                            for p, pr in ports]} for ns, n, ports in TWO_PORTS],
        "accessRules": rules or [], "trafficSplits": splits or [],
        "smiFiles": ["smi.yaml"] if docs else [],
    }, base_dir=tmp_path)


def problems(call) -> dict[str, str]:
    with pytest.raises((SpecError, TranslationError)) as err:
        call()
    return dict(err.value.problems)


def rule(**match) -> list[dict]:
    return [{"name": "r", "namespace": "shop", "destination": {"serviceAccount": "books"},
             "sources": [{"serviceAccount": "web", "namespace": "clients"}], "http": [{"name": "m", **match}]}]


def smi_match(**match) -> list[dict]:
    return [hrg("routes", "shop", [{"name": "m", **match}]),
            tt("t", "shop", "books", [{"kind": "HTTPRouteGroup", "name": "routes"}], [("clients", "web")])]


SMI_MATCH = "smi.yaml#HTTPRouteGroup/shop/routes.spec.matches[0]"


# --- methods ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["get", "Get", "post"])
def test_a_lower_case_method_is_refused_with_the_fix_in_the_spec_and_in_smi_files(method, tmp_path):
    found = problems(lambda: mesh(tmp_path, rules=rule(methods=["GET", method])))
    message = found["mesh.accessRules[0].http[0].methods[1]"]
    assert "case-sensitive" in message and f"write {method.upper()!r}" in message
    found = problems(lambda: mesh(tmp_path, smi_match(methods=[method])))
    assert f"write {method.upper()!r}" in found[f"{SMI_MATCH}.methods[0]"]


@pytest.mark.parametrize("method", ["PROPFIND", "GET ", "", 7, ["GET"]])
def test_a_method_outside_the_smi_enum_is_refused_listing_the_methods(method, tmp_path):
    found = problems(lambda: mesh(tmp_path, smi_match(methods=[method])))
    assert "GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE" in found[f"{SMI_MATCH}.methods[0]"]


def test_the_enum_is_what_smi_linkerd_and_gateway_api_crds_take():
    crds = ROOT.parent / "shared" / "crds"
    if not crds.is_dir():
        pytest.skip("../shared/crds is not beside the project")
    smi_crd = yaml.safe_load((crds / "smi" / "httproutegroup.yaml").read_text())
    for version in smi_crd["spec"]["versions"]:   # v1alpha1/2 keep matches at the top level
        schema = version["schema"]["openAPIV3Schema"]["properties"]
        matches = (schema["spec"]["properties"] if "spec" in schema else schema)["matches"]
        assert set(matches["items"]["properties"]["methods"]["items"]["enum"]) == smi.HTTP_METHODS
    for path in ("linkerd/httproutes.policy.linkerd.io.yaml", "gateway-api/standard/gateway.networking.k8s.io_httproutes.yaml"):
        crd = yaml.safe_load((crds / path).read_text())
        match = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["rules"][
            "items"]["properties"]["matches"]["items"]["properties"]
        assert set(match["method"]["enum"]) == smi.HTTP_METHODS - {"*"}
        assert match["headers"]["items"]["properties"]["name"]["maxLength"] == 256


def test_upper_case_methods_and_any_render(tmp_path):
    loaded = mesh(tmp_path, rules=rule(methods=["GET", "POST"], pathRegex="/a"), backend="linkerd")
    routes = [o for o in translate(loaded, "linkerd")["c1"].objects if o["kind"] == "HTTPRoute"]
    assert {m["method"] for o in routes for r in o["spec"]["rules"] for m in r["matches"]} == {"GET", "POST"}
    assert mesh(tmp_path, smi_match(methods=["*"]))


# --- header names -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["x y", ":authority", "x-\u00e9", "x" * 257, "x(1)"])
def test_a_header_name_that_is_no_token_is_refused(name, tmp_path):
    found = problems(lambda: mesh(tmp_path, rules=rule(headers={name: "a"})))
    assert "RFC 9110 token" in found["mesh.accessRules[0].http[0].headers"]
    found = problems(lambda: mesh(tmp_path, smi_match(headers={name: "a"})))
    assert "RFC 9110 token" in found[f"{SMI_MATCH}.headers[{name}]"]


def test_token_header_names_up_to_256_characters_are_taken(tmp_path):
    assert mesh(tmp_path, rules=rule(headers={"X-Request-Id": "a", "x" * 256: "b", "!#$%&'*+-.^_`|~": "c"}))


def test_one_header_twice_in_other_cases_is_refused(tmp_path):
    found = problems(lambda: mesh(tmp_path, rules=rule(headers={"X-Env": "a", "x-env": "b"})))
    assert "matched twice" in found["mesh.accessRules[0].http[0].headers"]
    found = problems(lambda: mesh(tmp_path, smi_match(headers=[{"X-Env": "a"}, {"x-env": "b"}])))
    assert "case-insensitive" in found[f"{SMI_MATCH}.headers"]


# --- regexes: RE2 -------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["istio", "linkerd", "osm"])
def test_a_regex_re2_refuses_names_the_field_the_engine_and_its_message(backend, tmp_path):
    found = problems(lambda: mesh(tmp_path, smi_match(pathRegex="/a(?=b)"), backend=backend))
    message = found[f"{SMI_MATCH}.pathRegex"]
    assert "RE2" in message and "invalid perl operator: (?=" in message
    found = problems(lambda: mesh(tmp_path, rules=rule(headers={"x-v": "(a"}), backend=backend))
    assert "missing ): (a" in found["mesh.accessRules[0].http[0].headers[x-v]"]


# --- regexes: Rust regex for Linkerd ------------------------------------------------------------

RUST_REFUSES = [
    # (SMI pathRegex, what regex 1.13.1 does with the anchored form Linkerd is sent)
    (r"/a\Q.\E/b", "error: unrecognized escape sequence"),
    (r"/a\C", "error: unrecognized escape sequence"),
    (r"/\0", "error: backreferences are not supported"),
    (r"/a\12", "error: backreferences are not supported"),
    (r"/a/\b{start}x", "otherwise: a special word boundary, not \\b then '{start}'"),
    (r"/a.*\<b", "otherwise: a word boundary, not '<'"),
    (r"/x\p{^Greek}", "error: Unicode property not found"),
    (r"/x\p{Cs}", "error: Unicode property value not found"),
    (r"/x\x{D800}", "error: hexadecimal literal is not a Unicode scalar value"),
    (r"/a{", "error: repetition quantifier expects a valid decimal"),
    (r"/a{,2}", "error: repetition quantifier expects a valid decimal"),
    (r"/{x}", "error: repetition quantifier expects a valid decimal"),
    (r"/a(?i)*", "error: repetition operator missing expression"),
    (r"/a(?)b", "error: repetition operator missing expression"),
    (r"/(?ii)a", "error: duplicate flag"),
    (r"/[[a]]", "otherwise on '/a'"),
    (r"/[a[]", "error: unclosed character class"),
    (r"/[a&&b]", "otherwise on '/&'"),
    (r"/[a~~b]", "otherwise on '/~'"),
    (r"/[!--]", "otherwise on '/-'"),
    (r"/[\d-z]", "error: invalid range boundary, must be a literal"),
    (r"/[]-a]", "otherwise on '/-'"),
    (r"/(?P<1a>x)", "error: invalid capture group character"),
    (r"/(?P<n>a)|(?P<n>b)", "error: duplicate capture group name"),
    ("/" + "(" * 248 + "a" + ")" * 248, "error: exceed the maximum number of nested parentheses/brackets"),
]
RUST_ALIKE = [r"/books/[0-9]+", r"/api/.*", r"(?i)/x", r"/[a-z\-]+", r"/v[12]/(?P<id>\w+)", r"/a{2,3}",
              r"/[[:alpha:]]+", r"/\p{Greek}", r"/[]a]", r"/[\]a]", r"/(?:a|b)*c", r"/[^/]+/x", r"/\x41",
              r"/[\x{41}-\x{5A}]", r"/a$|/b", r"/[a-]", r"/[-a]", r"/[\d-]", r"/[[:word:]-]", r"/a}",
              r"/x\pN", r"/[a\&&b]", r"/(?-i)a\z", "/" + "(" * 247 + "a" + ")" * 247]


@pytest.mark.parametrize("regex,rust", RUST_REFUSES)
def test_what_rust_regex_refuses_or_reads_otherwise_is_refused_for_linkerd(regex, rust, tmp_path):
    assert smi.regex_problem(regex, backend="osm") is None  # RE2 takes it
    found = problems(lambda: mesh(tmp_path, smi_match(pathRegex=regex), backend="linkerd"))
    assert "Rust regex" in found[f"{SMI_MATCH}.pathRegex"]
    assert smi.rust_regex_problem(rendered_regex(regex)) is not None


@pytest.mark.parametrize("regex", RUST_ALIKE)
def test_what_both_engines_read_alike_is_taken(regex):
    assert smi.regex_problem(regex, backend="linkerd") is None


def test_only_what_linkerd_is_sent_as_a_regex_is_checked(tmp_path):
    # '/a\<b' is the literal '/a<b' (RE2): Linkerd gets an Exact match, no regex
    assert rendered_regex(r"/a\<b") is None and smi.regex_problem(r"/a\<b", backend="linkerd") is None
    assert rendered_regex(r"/a\<b", header=True) is None
    found = problems(lambda: mesh(tmp_path, smi_match(headers={"x-v": r"a\Qb\E"}), backend="linkerd"))
    assert "Rust regex" in found[f"{SMI_MATCH}.headers[x-v]"]
    assert mesh(tmp_path, smi_match(headers={"x-v": r"a\Qb\E"}), backend="osm")   # RE2 alone: fine


def test_linkerd_render_refuses_a_rust_regex_problem_of_a_spec_loaded_for_another_mesh(tmp_path):
    loaded = mesh(tmp_path, smi_match(pathRegex=r"/a[x&&y]"), backend="osm")
    (where, message), = problems(lambda: translate(loaded, "linkerd")).items()
    assert where == "smi.yaml#HTTPRouteGroup/shop/routes match 'm'" and "set operation" in message


def test_hundreds_of_nested_groups_are_the_nest_limit_not_a_crash():
    regex = "/" + "(" * 900 + "a" + ")" * 900   # RE2 nests up to 1000
    assert smi.regex_problem(regex, backend="osm") is None
    assert "nested parentheses" in smi.regex_problem(regex, backend="linkerd")
    assert len(smi.regex_problem(regex, backend="linkerd")) < 400  # the regex is shown cut


# --- one split per root service -------------------------------------------------------------------

def split_doc(name: str) -> dict:
    return {"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"service": "books", "backends": [{"service": "books", "weight": 1}]}}


def test_two_splits_of_one_root_service_are_refused_naming_both(tmp_path):
    found = problems(lambda: mesh(tmp_path, [split_doc("a"), split_doc("b")]))
    assert "smi.yaml#TrafficSplit/shop/a" in found["smi.yaml#TrafficSplit/shop/b.spec.service"]
    inline = [{"name": n, "namespace": "shop", "service": "books", "backends": [{"service": "books", "weight": 1}]}
              for n in ("a", "b")]
    found = problems(lambda: mesh(tmp_path, splits=inline))
    assert "mesh.trafficSplits[0]" in found["mesh.trafficSplits[1].service"]
    found = problems(lambda: mesh(tmp_path, [split_doc("c")], splits=inline[:1]))
    assert "mesh.trafficSplits[0]" in found["smi.yaml#TrafficSplit/shop/c.spec.service"]


# --- linear-time regex work on user input (issue 13.8) -------------------------------------------------

REDOS = r"""
import json, sys, copy
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from mesh_components.analysis import graph
from mesh_components.spec import smi
from mesh_components.cli.graph_cli import graph_of
from mesh_components.spec import load_mesh
mesh = json.loads(sys.argv[2])
path = "/" + "a" * 39                      # 40 characters, no 'b': backtracking tries 2**39 splits
assert not graph.regex_within(path, "/(a+)+b")
assert not smi.may_overlap(smi.HTTPMatch("x", ("GET",), "/(a+)+b"), smi.HTTPMatch("y", ("GET",), path))
graph_of(load_mesh(mesh, base_dir=sys.argv[1]))   # the shadowed-rule analysis of `graph`
print("done")
"""


def test_an_exponential_backtracking_regex_is_checked_in_linear_time():
    """'/(a+)+b' against a 40-character path took over 60 s in `graph` (Python's `re`); with RE2 it
    is immediate. Run in a subprocess with a generous timeout, so a regression fails instead of
    hanging the suite."""
    m = copy.deepcopy(dev_mesh())
    m["accessRules"][0]["http"] = [{"name": "evil", "methods": ["GET"], "pathRegex": "/(a+)+b"},
                                   {"name": "long", "methods": ["GET"], "pathRegex": "/" + "a" * 39}]
    done = subprocess.run([sys.executable, "-c", REDOS, str(ROOT), json.dumps(m)], capture_output=True, text=True,
                          timeout=10)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-2000:]


def test_the_overlap_checks_use_re2():
    import re2

    assert isinstance(smi.re2_compile("/(a+)+b"), re2._Regexp)
