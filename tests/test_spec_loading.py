"""Reading stack and SMI files (issue 13, items 3, 4, 7, 8, 13): LibYAML with unique keys and merge
keys, bounded input (file size, alias expansion, nesting), and problems that say where they are
(``file:line:column: path: message``), show the bad value cut short, and never use pydantic's words.
"""
from __future__ import annotations

import copy
import gc
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from mesh_components.spec import yaml_source
from mesh_components.cli import main
from mesh_components.spec.errors import SpecError
from mesh_components.spec import load_mesh, load_stack, mesh_config_from_stack, parse_spec

from program_harness import ROOT

LOADERS = [yaml_source.LOADER, yaml_source.PYTHON_LOADER]
LOADER_IDS = ["default", "python"]

SHOP = """\
config:
  service-mesh:mesh:
    name: shop
    backend: {type: istio}
    clusters:
      - name: c1
        cloud: aws
        region: r
    services:
      - name: web
        namespace: shop
        ports: [{port: 80}]
        versions: [{name: v1}, {name: v2}]
    trafficSplits:
      - name: s
        namespace: shop
        service: web
        backends: [{service: web-v1, weight: 50}, {service: web-v2, weight: 50}]
"""

PYDANTIC_WORDS = re.compile(r"Input should|Value error|validation error|Field required|Extra inputs|String should|"
                            r"should be a valid|Assertion failed|pydantic", re.I)


def stack_file(tmp_path: Path, text: str, name: str = "Pulumi.t.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def shop(tmp_path: Path, old: str = "", new: str = "") -> Path:
    assert old in SHOP
    return stack_file(tmp_path, SHOP.replace(old, new, 1))


def stack_problems(f: Path) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as err:
        load_stack(str(f))
    for path, message in err.value.problems:
        assert not PYDANTIC_WORDS.search(message), message
    return err.value.problems


def one_problem(f: Path) -> tuple[str, str]:
    found = stack_problems(f)
    assert len(found) == 1, found
    return found[0]


def load_text(tmp_path: Path, text: str, loader=None) -> list:
    f = tmp_path / "doc.yaml"
    f.write_text(text)
    return yaml_source.load_documents(f, loader=loader)


def load_problem(tmp_path: Path, text: str | bytes, loader=None) -> tuple[str, str]:
    f = tmp_path / "doc.yaml"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SpecError) as err:
        yaml_source.load_documents(f, "doc.yaml", loader=loader)
    [problem] = err.value.problems
    return problem


def dev_mesh() -> dict:
    return yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]["service-mesh:mesh"]


# ---------------------------------------------------------------------------------------------
# the parser (item 13)


def test_libyaml_parses_when_pyyaml_has_it():
    """PyYAML's C binding is the parser whenever PyYAML was built with LibYAML (the wheels are);
    the pure-Python SafeLoader is only the fallback."""
    if yaml.__with_libyaml__:
        assert issubclass(yaml_source.LOADER, yaml.CSafeLoader)
    assert issubclass(yaml_source.PYTHON_LOADER, yaml.SafeLoader)


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_duplicate_keys_are_refused_with_both_lines(tmp_path, loader):
    where, message = load_problem(tmp_path, "a: 1\nb:\n  c: 1\n  c: 2\n", loader)
    assert where == "doc.yaml:4:3"
    assert message == "not valid YAML: duplicate key 'c' (first at line 3): remove one"


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_equal_keys_written_differently_are_duplicates(tmp_path, loader):
    """YAML 1.1 reads ``1`` and ``0x1`` as the same int key, ``yes`` and ``true`` as the same bool."""
    assert "duplicate key 1" in load_problem(tmp_path, "1: a\n0x1: b\n", loader)[1]
    assert "duplicate key true" in load_problem(tmp_path, "yes: a\ntrue: b\n", loader)[1]


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_merge_keys_follow_yaml_1_1(tmp_path, loader):
    """https://yaml.org/type/merge.html: the mapping's own keys override merged ones, and of a
    list of merged mappings the earlier ones win; merges through merges work."""
    [doc] = load_text(tmp_path, textwrap.dedent("""\
        base: &base {a: base, b: base, c: base}
        other: &other {a: other, d: other}
        mid: &mid {<<: *base, b: mid}
        own: {<<: *base, a: own}
        listed: {<<: [*other, *base]}
        chained: {<<: *mid, e: chained}
        """), loader)
    assert doc["own"] == {"a": "own", "b": "base", "c": "base"}
    assert doc["listed"] == {"a": "other", "b": "base", "c": "base", "d": "other"}
    assert doc["chained"] == {"a": "base", "b": "mid", "c": "base", "e": "chained"}
    assert doc["mid"] == {"a": "base", "b": "mid", "c": "base"}  # the anchored node itself is unchanged


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_a_key_overriding_a_merged_one_is_not_a_duplicate_but_two_own_keys_are(tmp_path, loader):
    """Duplicate detection looks at each mapping's own keys only, even where the merged mapping was
    rewritten by an earlier merge (PyYAML's flatten_mapping mutates anchored nodes)."""
    text = "d: &d {x: 1}\nm: &m {<<: *d, x: 2}\nuse: [{<<: *m}, *m]\n"
    [doc] = load_text(tmp_path, text, loader)
    assert doc["use"] == [{"x": 2}, {"x": 2}]
    where, message = load_problem(tmp_path, "d: &d {x: 1}\ne: {<<: *d, y: 1, y: 2}\n", loader)
    assert where == "doc.yaml:2:19" and "duplicate key 'y'" in message
    where, message = load_problem(tmp_path, "e: {<<: {y: 1, y: 2}}\n", loader)
    assert "duplicate key 'y'" in message  # a merged mapping written in place is checked too
    where, message = load_problem(tmp_path, "d: &d {x: 1}\ne: {<<: *d, <<: *d}\n", loader)
    assert "duplicate key '<<'" in message and "<<: [*a, *b]" in message
    where, message = load_problem(tmp_path, "d: &d [1]\ne: {<<: *d}\n", loader)
    assert where == "doc.yaml:2:5" and "a merge key '<<' takes a mapping" in message


def test_a_stack_with_merge_keys_loads(tmp_path):
    f = shop(tmp_path, """    clusters:
      - name: c1
        cloud: aws
        region: r
""", """    clusters:
      - &cluster {name: c1, cloud: aws, region: r, kubeconfig: {stackReference: acme/c1}}
      - <<: *cluster
        name: c2
        kubeconfig: {stackReference: acme/c2}
""")
    spec = load_stack(str(f)).spec
    assert [(c.name, c.cloud, c.region, c.kubeconfig.stack_reference) for c in spec.clusters] == \
        [("c1", "aws", "r", "acme/c1"), ("c2", "aws", "r", "acme/c2")]


# ---------------------------------------------------------------------------------------------
# bounds (items 7, 8)


BILLION_LAUGHS = "config:\n  service-mesh:mesh:\n    name: shop\n    lol0: &a0 [lol]\n" + "".join(
    f"    lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))


def test_billion_laughs_fails_fast_under_a_1_gb_memory_cap(tmp_path):
    """Ten levels of ten aliases each: 10^9 nodes once expanded, a few hundred bytes written. The
    budget is checked on the node graph before anything expands it, so the CLI refuses it within
    a 1 GB address space (RLIMIT_AS) instead of exhausting memory."""
    f = stack_file(tmp_path, BILLION_LAUGHS)
    code = textwrap.dedent(f"""\
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from mesh_components.cli import main
        sys.exit(main(["validate", {str(f)!r}]))
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"{f}:10:11: ")  # lol6, the first list whose expansion passes the budget
    assert "expand to more than 1,000,000 nodes" in line and "billion laughs" in line


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_alias_budget_counts_expansion_linearly(tmp_path, loader):
    # under the budget: 5 levels of 10 = 100,000 nodes, loaded (shared objects, as PyYAML builds them)
    text = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 6))
    [doc] = load_text(tmp_path, text, loader)
    assert len(doc["a5"]) == 10 and doc["a5"][0] is doc["a4"]
    # the budget is for the whole file, over its documents too
    where, message = load_problem(tmp_path, (text + "b: [*a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5]\n"
                                             "---\n" + text) * 1, loader)
    assert "expand to more than 1,000,000 nodes" in message


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_a_recursive_alias_is_refused(tmp_path, loader):
    where, message = load_problem(tmp_path, "a: &m\n  b: 1\n  c: *m\n", loader)
    assert where == "doc.yaml:1:4" and "refers to a node that contains it" in message  # at the anchor


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
@pytest.mark.parametrize("depth", [150, 2000])
def test_deep_nesting_is_a_problem_not_a_crash(tmp_path, loader, depth):
    """2000 levels is past Python's recursion limit (PyYAML's Python composer recurses per level)
    and LibYAML's own limit (1000); 150 is past ours (100)."""
    where, message = load_problem(tmp_path, "a: " + "[" * depth + "]" * depth + "\n", loader)
    assert where.startswith("doc.yaml") and "nest" in message and "deeper than 100 levels" in message


def test_deep_block_nesting_in_a_stack_is_placed(tmp_path):
    body = "".join("      " + "  " * i + "- a:\n" for i in range(120)) + "      " + "  " * 120 + "- 1\n"
    f = stack_file(tmp_path, "config:\n  service-mesh:mesh:\n    name: shop\n    overrides:\n" + body)
    where, message = one_problem(f)
    assert re.fullmatch(re.escape(str(f)) + r":\d+:\d+", where) and "deeper than 100 levels" in message


def test_deep_override_patches_from_pulumi_config_are_refused():
    """``pulumi up`` hands the config over as JSON, which no YAML bound saw: the one free-form
    field, ``overrides[].patch``, is bounded in parse_spec."""
    mesh = dev_mesh()
    value: list = []
    for _ in range(2000):
        value = [value]
    mesh["overrides"] = [{"kind": "Deployment", "name": "x", "patch": [{"op": "add", "path": "/a", "value": value}]}]
    with pytest.raises(SpecError) as err:
        parse_spec(mesh)
    assert err.value.problems == [("mesh.overrides[0].patch", "nests deeper than 100 levels: flatten it")]


def test_a_file_over_16_mib_is_refused_before_parsing(tmp_path):
    f = stack_file(tmp_path, SHOP + "    x: '" + "a" * (17 * 1024 * 1024) + "'\n")
    where, message = one_problem(f)
    assert where == str(f)
    assert message.startswith("larger than 16 MiB (16,777,216 bytes), the most a stack or SMI file may hold")


def test_an_smi_file_over_16_mib_is_refused(tmp_path):
    (tmp_path / "big.yaml").write_text("# " + "a" * (17 * 1024 * 1024) + "\n")
    f = shop(tmp_path, "    trafficSplits:", "    smiFiles: [big.yaml]\n    trafficSplits:")
    where, message = one_problem(f)
    assert where == "big.yaml" and message.startswith("larger than 16 MiB")


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_non_utf8_and_control_characters_are_placed(tmp_path, loader):
    assert load_problem(tmp_path, b"a: 1\nname: caf\xe9\n", loader) == \
        ("doc.yaml:2:10", "not UTF-8 text (byte 0xe9): save the file as UTF-8")
    where, message = load_problem(tmp_path, "a: 1\nname: \"caf\u00e9\" \x01\n".encode(), loader)
    assert where == "doc.yaml:2:14" and "the character U+0001 is not allowed" in message


def test_utf16_with_a_byte_order_mark_is_read(tmp_path):
    """YAML 1.2 section 5.2: UTF-16 and UTF-32 with a byte order mark are YAML character sets."""
    f = tmp_path / "doc.yaml"
    f.write_bytes("name: café\n".encode("utf-16"))
    assert yaml_source.load_documents(f) == [{"name": "café"}]


def test_non_utf8_stack_file_exits_1(tmp_path, capsys):
    f = tmp_path / "Pulumi.t.yaml"
    f.write_bytes(SHOP.replace("name: shop", "name: sh\xf6p").encode("latin-1"))
    assert main(["validate", str(f)]) == 1
    assert capsys.readouterr().err == f"{f}:3:13: not UTF-8 text (byte 0xf6): save the file as UTF-8\n"


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_scalars_python_cannot_build_are_placed(tmp_path, loader):
    where, message = load_problem(tmp_path, "a: 1\nb: " + "9" * 5000 + "\n", loader)
    assert where == "doc.yaml:2:4" and message.endswith("it has more than 4300 digits") and len(message) < 200
    where, message = load_problem(tmp_path, "b: 2001-02-30\n", loader)
    assert where == "doc.yaml:1:4" and "cannot read the date '2001-02-30'" in message


def test_the_garbage_collector_is_back_on_after_loading(tmp_path):
    assert gc.isenabled()
    load_text(tmp_path, "a: [1, 2]\n")
    assert gc.isenabled()
    load_problem(tmp_path, "a: [1\n")
    assert gc.isenabled()


def test_a_long_parser_message_is_cut(tmp_path):
    where, message = load_problem(tmp_path, "a: !" + "t" * 5000 + " x\n")
    assert len(message) < 300


# ---------------------------------------------------------------------------------------------
# numbers are numbers (items 2, 7)


@pytest.mark.parametrize("value,fragment", [
    ("true", "expected a whole number, got the boolean true"),
    ("yes", "expected a whole number, got the boolean true"),
    (".inf", "expected a whole number, got infinity"),
    ("-.inf", "expected a whole number, got -infinity"),
    (".nan", "expected a whole number, got nan"),
    ("80.5", "expected a whole number, got 80.5"),
    ("'80'", "got the string '80': write it as 80, without quotes"),
    ("1e400", "got '1e400', which is too large for any number"),  # YAML 1.1: a string (no '.')
    ("1.0e+400", "expected a whole number, got infinity"),
    ("http", "expected a whole number, got the string 'http'"),
    ("[80]", "expected a whole number, got a list"),
])
def test_ports_are_whole_numbers(tmp_path, value, fragment):
    where, message = one_problem(shop(tmp_path, "port: 80", f"port: {value}"))
    # at the value, or at the key when the value is a list or mapping
    column = 18 if value.startswith("[") else 24
    assert where == f"{tmp_path / 'Pulumi.t.yaml'}:12:{column}: mesh.services[0].ports[0].port"
    assert fragment in message


def test_a_whole_float_is_a_whole_number(tmp_path):
    assert load_stack(str(shop(tmp_path, "port: 80", "port: 80.0"))).spec.services[0].ports[0].port == 80


@pytest.mark.parametrize("weight,fragment", [
    (float("inf"), "got infinity"), (float("nan"), "got nan"), (True, "got the boolean true"), (0.5, "got 0.5")])
def test_weights_from_pulumi_config_json_are_whole_numbers(weight, fragment):
    """``pulumi up`` reads the config as JSON, where 1e400 is infinity."""
    mesh = dev_mesh()
    mesh["services"][2]["versions"] = [{"name": "v1"}, {"name": "v2"}]
    mesh["trafficSplits"] = [{"name": "s", "namespace": mesh["services"][2]["namespace"],
                              "service": mesh["services"][2]["name"],
                              "backends": [{"service": f"{mesh['services'][2]['name']}-v1", "weight": weight}]}]
    assert json.loads(json.dumps(mesh)) is not None
    with pytest.raises(SpecError) as err:
        parse_spec(mesh)
    assert fragment in dict(err.value.problems)["mesh.trafficSplits[0].backends[0].weight"]


@pytest.mark.parametrize("field,value", [
    (["ca", "rootValidityDays"], True), (["ca", "rootRotation", "generation"], 1.5),
    (["ca", "rootRotation", "overlapDays"], float("inf")), (["ca", "intermediateValidityDays"], "30")])
def test_counts_are_whole_numbers(field, value):
    mesh = dev_mesh()
    node = mesh
    for part in field[:-1]:
        node = node.setdefault(part, {})
    node[field[-1]] = value
    with pytest.raises(SpecError) as err:
        parse_spec(mesh)
    assert "expected a whole number" in dict(err.value.problems)["mesh." + ".".join(field)]


@pytest.mark.parametrize("field,value,fragment", [
    (["egress", 0, "hosts"], [1], "expected a string, got a number 1"),
    (["smiFiles"], [True], "expected a string, got a boolean true"),
    (["namespaces", 0, "clusters"], [{"a": 1}], "expected a string, got a mapping"),
    (["services", 0, "labels"], {1: "a"}, "keys here are strings, not a number 1"),
])
def test_non_string_items_are_problems(field, value, fragment):
    mesh = dev_mesh()
    node = mesh
    for part in field[:-1]:
        node = node[part]
    node[field[-1]] = value
    with pytest.raises(SpecError) as err:
        parse_spec(mesh)
    assert any(fragment in m for _, m in err.value.problems), err.value.problems


@pytest.mark.parametrize("raw", ["a\0b", "x" * 5000])
def test_unreadable_smi_file_names_are_problems(raw):
    """A NUL byte (ValueError) or a name past NAME_MAX (ENAMETOOLONG) is a problem, not a crash."""
    mesh = dev_mesh()
    mesh["smiFiles"] = [raw]
    with pytest.raises(SpecError) as err:
        load_mesh(mesh, base_dir=ROOT)
    message = dict(err.value.problems)["mesh.smiFiles[0]"]
    assert len(message) < 250


# ---------------------------------------------------------------------------------------------
# messages (item 3)


def test_spec_errors_carry_file_line_column(tmp_path):
    f = shop(tmp_path, "cloud: aws", "cloud: amazon")
    assert one_problem(f) == (
        f"{f}:7:16: mesh.clusters[0].cloud",
        "'amazon' is not one of 'aws', 'azure', 'gcp' or 'onprem'; for another cloud or your own machines use "
        "'onprem' (no cloud-specific load-balancer settings)")


def test_places_of_unknown_missing_and_merged_fields(tmp_path):
    f = shop(tmp_path, "        region: r\n", "        regoin: r\n")
    found = dict(stack_problems(f))
    assert found[f"{f}:8:9: mesh.clusters[0].regoin"] == "unknown field; did you mean 'region'?"  # at the key
    assert found[f"{f}:6:9: mesh.clusters[0].region"] == "required field is missing"  # at its mapping
    f = shop(tmp_path, """    clusters:
      - name: c1
        cloud: aws
        region: r
""", """    clusters:
      - &c {name: c1, cloud: amazon, region: r}
      - {<<: *c, name: c2}
""")
    found = dict(stack_problems(f))
    assert f"{f}:6:30: mesh.clusters[1].cloud" in found  # where the merged value is written


def test_cross_field_problems_are_placed(tmp_path):
    f = shop(tmp_path, "service: web-v2", "service: web-v3")
    where, message = one_problem(f)
    assert where == f"{f}:18:61: mesh.trafficSplits[0].backends[1].service"
    assert "unknown backend service 'web-v3'" in message


def test_consul_lists_the_backends_and_a_typo_gets_the_close_match(tmp_path):
    assert one_problem(shop(tmp_path, "type: istio", "type: consul"))[1] == \
        "'consul' is not one of 'istio', 'linkerd' or 'osm' (the meshes this project supports)"
    assert one_problem(shop(tmp_path, "type: istio", "type: linkrd"))[1] == \
        "'linkrd' is not one of 'istio', 'linkerd' or 'osm'; did you mean 'linkerd'?"


def test_an_unknown_cloud_says_to_use_onprem(tmp_path):
    where, message = one_problem(shop(tmp_path, "cloud: aws", "cloud: hetzner"))
    assert "did you mean" not in message and "use 'onprem'" in message


def test_echoed_values_are_cut(tmp_path):
    found = stack_problems(shop(tmp_path, "name: web", "name: " + "W" * 5000))
    assert found and all(len(m) < 300 for _, m in found)
    found = stack_problems(shop(tmp_path, "type: istio", "type: " + "z" * 5000))
    assert found and all(len(m) < 300 for _, m in found)


JUNK = [None, True, 1.5, float("inf"), "", "Bad_Name", [], [1], {}, {1: "a"}, [{"a": 1}], "x" * 300]


from test_spec import _paths  # noqa: E402  every path of a spec tree, as the mutation test walks it


def test_no_pydantic_wording_reaches_users():
    """Every field of the prod stack, set to each junk value in turn: the problems are ours
    (pydantic's messages are replaced for every error type the spec's fields can raise)."""
    base = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())["config"]["service-mesh:mesh"]
    seen = 0
    for path in [p for p in _paths(base) if p]:
        for junk in JUNK:
            mesh = copy.deepcopy(base)
            node = mesh
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = junk
            try:
                parse_spec(mesh)
            except SpecError as e:
                for where, message in e.problems:
                    seen += 1
                    assert not PYDANTIC_WORDS.search(message), (where, message)
                    assert len(message) < 700, (where, message)
    assert seen > 500


def test_smi_file_problems_are_placed(tmp_path):
    (tmp_path / "smi").mkdir()
    (tmp_path / "smi" / "a.yaml").write_text(textwrap.dedent("""\
        apiVersion: access.smi-spec.io/v1alpha3
        kind: TrafficTarget
        metadata: {name: t, namespace: shop}
        spec:
          destination: {kind: ServiceAccount, name: web, namespace: shop}
          rules: [{kind: HTTPRouteGroup, name: r}]
          sources:
            - {kind: Group, name: x}
        ---
        apiVersion: v1
        kind: List
        items:
          - apiVersion: split.smi-spec.io/v1alpha4
            kind: TrafficSplit
            metadata: {name: sp, namespace: shop}
            spec:
              service: web
              backends: [{service: web-v1, weight: -1}]
        """))
    f = shop(tmp_path, "    trafficSplits:", "    smiFiles: [smi]\n    trafficSplits:")
    found = dict(stack_problems(f))
    assert found["smi/a.yaml:8:14: smi/a.yaml#TrafficTarget/shop/t.spec.sources[0].kind"] == \
        "'Group': SMI identities are ServiceAccounts"
    assert any(p.startswith("smi/a.yaml:18:44: smi/a.yaml#TrafficSplit/shop/sp.spec.backends[0].weight")
               for p in found), found
    (tmp_path / "smi" / "a.yaml").write_text("a: [1\n")
    assert one_problem(f)[0] == "smi/a.yaml:2:1"


# ---------------------------------------------------------------------------------------------
# the config key (item 4)


@pytest.mark.parametrize("key", ["other:mesh", "mesh", "service-mesh:config:mesh", "servicemesh:mesh"])
def test_only_the_key_pulumi_up_reads_is_accepted(tmp_path, key):
    """``pulumi.Config()`` namespaces keys with the project name (pulumi sdk/python/lib/pulumi/
    config.py ``full_key``), and Pulumi refuses a key without a namespace (sdk/go/common/resource/
    config/key.go ``ParseKey``)."""
    f = shop(tmp_path, "service-mesh:mesh:", f"{key}:")
    where, message = one_problem(f)
    assert where == f"{f}:2:3: config.{key}"
    assert message.endswith("rename it to 'service-mesh:mesh'")


def test_another_mesh_key_beside_the_right_one_is_refused_too(tmp_path):
    f = stack_file(tmp_path, SHOP + "  other:mesh: {name: x}\n")
    assert one_problem(f) == (f"{f}:19:3: config.other:mesh",
                              "`pulumi up` does not read this key: the program reads 'service-mesh:mesh' "
                              "(pulumi.Config() puts its keys under the project name in Pulumi.yaml, "
                              "'service-mesh'): rename it to 'service-mesh:mesh'")


def test_the_key_follows_the_project_name(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: my-mesh\nruntime: python\n")
    f = shop(tmp_path, "service-mesh:mesh:", "my-mesh:mesh:")
    assert load_stack(str(f)).spec.name == "shop"
    f = shop(tmp_path)
    assert one_problem(f)[1].endswith("rename it to 'my-mesh:mesh'")


def test_the_shipped_program_reads_the_accepted_key():
    """``__main__.py`` reads ``CONFIG_KEY`` through ``pulumi.Config()`` (the project namespace),
    and every shipped stack uses ``<project>:mesh``."""
    assert "config.get_object(CONFIG_KEY)" in (ROOT / "__main__.py").read_text()  # load_program_mesh requires it
    assert "pulumi.Config()" in (ROOT / "__main__.py").read_text()
    for stack in (ROOT / "stacks").glob("Pulumi.*.yaml"):
        doc = yaml.safe_load(stack.read_text())
        assert mesh_config_from_stack(doc, str(stack), "service-mesh") is doc["config"]["service-mesh:mesh"]


def test_a_placed_path_splits_for_structured_reports(tmp_path):
    f = shop(tmp_path, "cloud: aws", "cloud: amazon")
    where, _ = one_problem(f)
    assert yaml_source.split_place(where) == (str(f), 7, 16, "mesh.clusters[0].cloud")
    assert yaml_source.split_place("mesh.clusters[0].cloud") is None
