"""``python -m mesh_components graph``: the allowed-calls diagram of the shipped stacks, the
admits-nothing and shadow findings on crafted stacks (each one also passing ``validate``, so it is
something that really gets through), and golden-free syntax checks of the Mermaid and DOT output
(the DOT ones through Graphviz itself when ``dot`` is installed)."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mesh_components.core import gamma
from mesh_components.analysis import graph
from mesh_components.spec import smi
from mesh_components.cli import main
from mesh_components.analysis.graph import (Edge, Finding, Graph, Node, dot_string, mermaid_text, regex_within, render_dot, render_mermaid, safe_id, shadowed)
from mesh_components.cli.graph_cli import graph_json, graph_of
from mesh_components.spec.smi import HTTPMatch
from mesh_components.spec import load_stack

ROOT = Path(__file__).resolve().parents[1]
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


@pytest.fixture(autouse=True)
def _project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def svc(ns: str, name: str) -> str:
    return safe_id("svc", ns, name)


def edges_by_pair(g: Graph) -> dict[tuple[str, str, str], Edge]:
    return {(e.source, e.target, e.kind): e for e in g.edges}


# ---------------------------------------------------------------------------------------------
# the shipped stacks


@pytest.fixture(scope="module")
def prod():
    return graph_of(load_stack(str(ROOT / "stacks" / "Pulumi.prod.yaml"), root=ROOT))


def test_prod_nodes_grouped_by_namespace(prod):
    groups = {n.id: n.group for n in prod.nodes}
    assert groups[svc("bookstore", "bookstore")] == "bookstore"
    assert groups[svc("bookwarehouse", "mysql")] == "bookwarehouse"
    assert {n.kind for n in prod.nodes} == {"service", "version", "external", "ingress"}
    # services nobody guards are marked: any caller may reach them
    assert {n.id for n in prod.nodes if n.unrestricted} == {svc("bookbuyer", "bookbuyer"),
                                                             svc("bookthief", "bookthief")}


def test_prod_bookthief_has_no_edges(prod):
    thief = svc("bookthief", "bookthief")
    assert not [e for e in prod.edges if thief in (e.source, e.target)]


def test_prod_access_edges(prod):
    edges = edges_by_pair(prod)
    buyer = edges[(svc("bookbuyer", "bookbuyer"), svc("bookstore", "bookstore"), "allow")]
    assert buyer.lines == ("GET /books-bought :14001", "GET /buy-a-book/new :14001")
    restock = edges[(svc("bookstore", "bookstore"), svc("bookwarehouse", "bookwarehouse"), "allow")]
    assert restock.lines == ("POST /restock-books :14001",)
    mysql = edges[(svc("bookwarehouse", "bookwarehouse"), svc("bookwarehouse", "mysql"), "allow")]
    assert mysql.lines == ("tcp:3306",)
    assert len([e for e in prod.edges if e.kind == "allow"]) == 3


def test_prod_egress_ingress_and_split(prod):
    edges = edges_by_pair(prod)
    host = safe_id("ext", "api.bookpublisher.example.com")
    assert next(n for n in prod.nodes if n.id == host).kind == "external"
    assert edges[(svc("bookwarehouse", "bookwarehouse"), host, "egress")].lines == ("https:443",)
    gw = safe_id("gw", "mesh-ingress", "ingress")
    assert next(n for n in prod.nodes if n.id == gw).kind == "ingress"
    assert edges[(gw, svc("bookstore", "bookstore"), "ingress")].lines == ("bookstore.example.com/ :14001",)
    apex = svc("bookstore", "bookstore")
    assert edges[(apex, safe_id("ver", "bookstore", "bookstore-v1"), "split")].lines == ("90 (90%)",)
    assert edges[(apex, safe_id("ver", "bookstore", "bookstore-v2"), "split")].lines == ("10 (10%)",)
    mermaid = render_mermaid(prod)
    assert f'{apex} -.->|"90 (90%)"| {safe_id("ver", "bookstore", "bookstore-v1")}' in mermaid
    assert "style=dashed" in render_dot(prod)


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_have_no_warnings_and_exit_0(stack, capsys):
    assert main(["graph", stack, "--strict"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("flowchart LR\n")
    assert err.strip().splitlines()[-1].endswith("warnings 0")


@pytest.mark.parametrize("stack", STACKS)
def test_output_is_deterministic(stack, tmp_path, capsys):
    for fmt in ("mermaid", "dot", "json"):
        main(["graph", stack, "--format", fmt, "-o", str(tmp_path / "a")])
        main(["graph", stack, "--format", fmt, "-o", str(tmp_path / "b")])
        assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
        capsys.readouterr()
        main(["graph", stack, "--format", fmt])
        assert capsys.readouterr().out == (tmp_path / "b").read_text()


# ---------------------------------------------------------------------------------------------
# crafted stacks: every finding comes from an input that passes `validate`

SERVICES = [
    {"name": "web", "namespace": "app", "ports": [{"port": 8080, "protocol": "http"}]},
    {"name": "client", "namespace": "app", "ports": [{"port": 8080, "protocol": "http"}]},
    {"name": "other", "namespace": "app", "ports": [{"port": 8080, "protocol": "http"}]},
    {"name": "pg", "namespace": "db", "ports": [{"port": 5432, "protocol": "tcp"}]},
]
CLIENT = {"serviceAccount": "client", "namespace": "app"}


def write_stack(tmp_path: Path, rules=(), smi_docs=()) -> str:
    mesh = {"name": "t", "backend": {"type": "istio"},
            "clusters": [{"name": "c1", "cloud": "onprem", "region": "local"}],
            "namespaces": [{"name": "app"}, {"name": "db"}], "services": SERVICES,
            "accessRules": list(rules)}
    if smi_docs:
        (tmp_path / "smi").mkdir()
        (tmp_path / "smi" / "policy.yaml").write_text(yaml.safe_dump_all(list(smi_docs), sort_keys=False))
        mesh["smiFiles"] = ["smi"]
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": mesh}}, sort_keys=False))
    return str(path)


def rule(name, dest="web", http=None, tcp=None, sources=(CLIENT,), port=None, ns="app"):
    r = {"name": name, "namespace": ns, "destination": {"serviceAccount": dest}, "sources": list(sources)}
    if port is not None:
        r["destination"]["port"] = port
    if http is not None:
        r["http"] = http
    if tcp is not None:
        r["tcp"] = {"ports": tcp}
    return r


def target(name, rules, sources=(("client", "app"),), dest=("web", "app"), port=None):
    d = {"kind": "ServiceAccount", "name": dest[0], "namespace": dest[1]}
    if port is not None:
        d["port"] = port
    return {"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
            "metadata": {"name": name, "namespace": dest[1]},
            "spec": {"destination": d, "rules": rules,
                     "sources": [{"kind": "ServiceAccount", "name": n, "namespace": ns} for n, ns in sources]}}


def route_group(name, matches, ns="app"):
    return {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": {"name": name, "namespace": ns}, "spec": {"matches": matches}}


def tcp_route(name, ports, ns="db"):
    return {"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
            "metadata": {"name": name, "namespace": ns}, "spec": {"matches": {"ports": ports}}}


def graph_run(path: str, capsys, *extra, validate: bool = True) -> tuple[int, str, list[str]]:
    """``validate`` must accept the stack (a finding is about input that gets through); then graph."""
    if validate:
        assert main(["validate", path]) == 0, capsys.readouterr().err
        capsys.readouterr()
    code = main(["graph", path, *extra])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def warnings_of(err: list[str]) -> list[str]:
    return [line for line in err if line.startswith("warning: ")]


def test_target_with_empty_sources(tmp_path, capsys):
    path = write_stack(tmp_path, smi_docs=[
        route_group("web-routes", [{"name": "all", "pathRegex": "/.*"}]),
        target("nobody", [{"kind": "HTTPRouteGroup", "name": "web-routes"}], sources=())])
    code, out, err = graph_run(path, capsys)
    assert code == 0
    (w,) = warnings_of(err)
    assert w.startswith("warning: smi/policy.yaml#TrafficTarget/app/nobody: admits-nothing: lists no sources")
    assert "every caller is denied" in w
    assert err[-1].endswith("warnings 1")
    assert "%% warning: smi/policy.yaml#TrafficTarget/app/nobody: admits-nothing" in out
    assert f"--> {svc('app', 'web')}" not in out  # nothing drawn into web


def test_target_with_no_rules(tmp_path, capsys):
    path = write_stack(tmp_path, smi_docs=[target("no-rules", [])])
    _, _, err = graph_run(path, capsys)
    (w,) = warnings_of(err)
    assert "TrafficTarget/app/no-rules: admits-nothing: has no rules" in w


def test_route_group_selecting_no_match(tmp_path, capsys):
    path = write_stack(tmp_path, rules=[rule("client-web", http=[{"methods": ["GET"], "pathRegex": "/ok"}])],
                       smi_docs=[route_group("empty", []),
                                 target("empty-group", [{"kind": "HTTPRouteGroup", "name": "empty"}])])
    _, _, err = graph_run(path, capsys)
    (w,) = warnings_of(err)
    assert w.startswith("warning: smi/policy.yaml#TrafficTarget/app/empty-group.spec.rules[0]: admits-nothing: "
                        "selects no match: HTTPRouteGroup smi/policy.yaml#HTTPRouteGroup/app/empty")
    assert "every caller is denied" not in w  # client-web still admits GET /ok


def test_http_matches_on_a_tcp_destination_port(tmp_path, capsys):
    path = write_stack(tmp_path, rules=[rule("web-pg", dest="pg", ns="db", port=5432,
                                             http=[{"methods": ["GET"], "pathRegex": "/x"}],
                                             sources=[{"serviceAccount": "web", "namespace": "app"}])])
    code, out, err = graph_run(path, capsys)
    (w,) = warnings_of(err)
    assert w.startswith("warning: mesh.accessRules[0]: admits-nothing: its HTTP matches apply on port(s) [5432], "
                        "which db/pg does not serve over HTTP")
    assert f"--> {svc('db', 'pg')}" not in out


def test_http_matches_on_a_service_without_http_port(tmp_path, capsys):
    path = write_stack(tmp_path, rules=[rule("web-pg", dest="pg", ns="db", http=[{"pathRegex": "/x"}],
                                             sources=[{"serviceAccount": "web", "namespace": "app"}])])
    _, _, err = graph_run(path, capsys)
    (w,) = warnings_of(err)
    assert "mesh.accessRules[0]: admits-nothing: its HTTP matches apply on no port: db/pg has no " \
           "http/http2/grpc port" in w


def test_tcp_route_missing_the_destination_port(tmp_path, capsys):
    path = write_stack(tmp_path, rules=[rule("client-web", port=8080, tcp=[9090])])
    _, out, err = graph_run(path, capsys)
    (w,) = warnings_of(err)
    assert w.startswith("warning: mesh.accessRules[0]: admits-nothing: TCPRoute mesh.accessRules[0].tcp ports "
                        "[9090] admit nothing here: the TrafficTarget's destination port is 8080")
    assert "every caller is denied" in w


def test_tcp_route_whose_ports_the_service_does_not_expose(tmp_path, capsys):
    path = write_stack(tmp_path, smi_docs=[
        tcp_route("pg", [5432]), tcp_route("stale", [9999]),
        target("web-pg", [{"kind": "TCPRoute", "name": "pg"}, {"kind": "TCPRoute", "name": "stale"}],
               sources=(("web", "app"),), dest=("pg", "db"))])
    _, out, err = graph_run(path, capsys)
    (w,) = warnings_of(err)
    assert w.startswith("warning: smi/policy.yaml#TrafficTarget/db/web-pg.spec.rules[1]: admits-nothing: TCPRoute "
                        "smi/policy.yaml#TCPRoute/db/stale ports [9999] admit nothing here: no service running as "
                        "db/pg exposes them (ports [5432])")
    assert f'{svc("app", "web")} -->|"tcp:5432"| {svc("db", "pg")}' in out


def test_http_match_shadowed_by_a_tcp_rule_on_the_same_port(tmp_path, capsys):
    path = write_stack(tmp_path, rules=[rule("a-http", http=[{"methods": ["GET"], "pathRegex": "/a"}]),
                                        rule("b-tcp", tcp=[8080])])
    code, out, err = graph_run(path, capsys, "--strict")
    assert code == 2
    (w,) = warnings_of(err)
    assert w == ("warning: mesh.accessRules[0]: shadowed: every request it admits to app/web is also admitted by "
                 "mesh.accessRules[1]; remove one of them or make them differ")
    assert err[-1].endswith("warnings 1")


def test_match_duplicated_in_two_targets_flags_one(tmp_path, capsys):
    same = {"methods": ["GET"], "pathRegex": "/a"}
    path = write_stack(tmp_path, rules=[rule("first", http=[same]), rule("second", http=[same])])
    _, out, err = graph_run(path, capsys)
    (w,) = warnings_of(err)  # only the later one: removing it changes nothing, removing both would
    assert w.startswith("warning: mesh.accessRules[1]: shadowed:") and w.count("mesh.accessRules[0]") == 1
    assert "// warning: mesh.accessRules[1]: shadowed:" in main_dot(path, capsys)


def main_dot(path: str, capsys) -> str:
    main(["graph", path, "--format", "dot"])
    return capsys.readouterr().out


def test_specific_method_shadowed_by_any_method(tmp_path, capsys):
    get, any_ = {"methods": ["GET"], "pathRegex": "/a"}, {"methods": ["*"], "pathRegex": "/a"}
    for i, order in enumerate(([("any", any_), ("get", get)], [("get", get), ("any", any_)])):
        (tmp_path / str(i)).mkdir()
        path = write_stack(tmp_path / str(i), rules=[rule(name, http=[m]) for name, m in order])
        _, _, err = graph_run(path, capsys)
        (w,) = warnings_of(err)  # the narrower rule, whichever comes first
        narrow, wide = (1, 0) if order[0][0] == "any" else (0, 1)
        assert w.startswith(f"warning: mesh.accessRules[{narrow}]: shadowed:") and f"mesh.accessRules[{wide}]" in w


def test_redundant_match_inside_one_rule(tmp_path, capsys):
    path = write_stack(tmp_path, rules=[rule("r", http=[{"name": "get-a", "methods": ["GET"], "pathRegex": "/a"},
                                                        {"name": "any-a", "pathRegex": "/a"}])])
    _, _, err = graph_run(path, capsys)
    (w,) = warnings_of(err)
    assert w == ("warning: mesh.accessRules[0].http match 'get-a': redundant-match: adds nothing to app/web: every "
                 "request it admits is also admitted by mesh.accessRules[0].http match 'any-a'")


def test_shadowing_across_smi_files_names_both_documents(tmp_path, capsys):
    path = write_stack(tmp_path, rules=[rule("spec-rule", http=[{"methods": ["GET"], "pathRegex": "/books/1"}])],
                       smi_docs=[route_group("books", [{"name": "books", "methods": ["GET", "POST"],
                                                        "pathRegex": "/books/.*"}]),
                                 target("file-rule", [{"kind": "HTTPRouteGroup", "name": "books"}])])
    _, _, err = graph_run(path, capsys)
    (w,) = warnings_of(err)
    assert w.startswith("warning: mesh.accessRules[0]: shadowed:")
    assert "smi/policy.yaml#TrafficTarget/app/file-rule" in w


@pytest.mark.parametrize("first, second, warnings", [
    ({"methods": ["GET"], "pathRegex": "/a"}, {"methods": ["POST"], "pathRegex": "/a"}, 0),
    ({"methods": ["GET"], "pathRegex": "/a"}, {"methods": ["GET"], "pathRegex": "/b"}, 0),
    ({"methods": ["GET"], "pathRegex": "/a.*"}, {"methods": ["GET"], "pathRegex": "/a"}, 1),  # only the narrower
    ({"pathRegex": "/a"}, {"pathRegex": "/a", "headers": {"x-user": "admin"}}, 1),  # a header condition narrows
    ({"pathRegex": "/a[0-9]+"}, {"pathRegex": "/a.*"}, 0),  # a general regex is never claimed to be within
])
def test_not_shadowed(first, second, warnings, tmp_path, capsys):
    """``first`` (mesh.accessRules[1]) is never reported; ``second`` only when it is within ``first``."""
    path = write_stack(tmp_path, rules=[rule("second", http=[second]), rule("first", http=[first])])
    general = "[" in first.get("pathRegex", "")  # Istio cannot express it, so validate refuses it
    _, _, err = graph_run(path, capsys, validate=not general)
    found = warnings_of(err)
    assert len(found) == warnings and not [w for w in found if w.startswith("warning: mesh.accessRules[1]")]


def test_different_sources_do_not_shadow(tmp_path, capsys):
    same = {"methods": ["GET"], "pathRegex": "/a"}
    path = write_stack(tmp_path, rules=[rule("first", http=[same]),
                                        rule("second", http=[same], sources=[{"serviceAccount": "other",
                                                                              "namespace": "app"}])])
    _, out, err = graph_run(path, capsys)
    assert warnings_of(err) == []
    assert f'{svc("app", "other")} -->|"GET /a :8080"| {svc("app", "web")}' in out


def test_invalid_input_exits_1_with_path_lines(tmp_path, capsys):
    path = write_stack(tmp_path, rules=[rule("bad", dest="nobody", http=[{"pathRegex": "/a"}])])
    assert main(["graph", path]) == 1
    err = capsys.readouterr().err
    # ``file:line:column: `` first when the spec came from a file (spec errors, issue 13 item 3)
    assert re.match(r"(\S+:\d+:\d+: )?mesh\.accessRules\[0\]\.destination\.serviceAccount: unknown service account", err)
    assert "Traceback" not in err
    assert main(["graph", "no-such-stack"]) == 1
    with pytest.raises(SystemExit) as usage:  # usage errors are input errors: 1, never 2 (warnings)
        main(["graph", "prod", "--format", "svg"])
    assert usage.value.code == 1
    assert "graph: argument --format" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the pure analysis


@pytest.mark.parametrize("inner, outer, within", [
    ("/a", None, True), (None, ".*", True), (None, "/.*", False), (None, "/a.*", False), ("/a", "/a", True),
    ("/a/b", "/a/.*", True), ("/a/.*", "/.*", True), ("/.*", "/a/.*", False), ("/a", "/b", False),
    ("/x\\.json", ".*\\.json", True), ("/x.json", ".*\\.json", False), (".*\\.json", ".*json", True), ("/a", "/a/.*", False),
    ("/a/1", "/a/[0-9]+", True), ("/a/x", "/a/[0-9]+", False), ("/a/[0-9]+", "/a/[0-9]+", True),
    ("/a/[0-9]+", "/a/.*", False), ("/a(", "/a(", True), ("/b", "/a(", False),
])
def test_regex_within(inner, outer, within):
    assert regex_within(inner, outer) is within


def test_removing_every_reported_grant_keeps_what_is_admitted():
    """Three rules where each pair overlaps: the reported set can go, all together, at no loss."""
    spec_src = {"name": "t", "backend": {"type": "istio"}, "clusters": [{"name": "c", "cloud": "onprem", "region": "r"}],
                "services": SERVICES, "accessRules": [
                    rule("a", http=[{"methods": ["GET"], "pathRegex": "/a"}, {"methods": ["POST"], "pathRegex": "/b"}]),
                    rule("b", http=[{"pathRegex": "/a"}]), rule("c", http=[{"methods": ["POST"], "pathRegex": "/b"}]),
                    rule("d", http=[{"methods": ["GET"], "pathRegex": "/a"}])]}
    from mesh_components.spec import load_mesh
    spec = load_mesh(spec_src).spec
    model = gamma.build(spec, smi.policy_set(spec, ()))
    found = shadowed(model)
    reported = {f.origin for f in found}
    assert reported == {"mesh.accessRules[0].http match 'match-0'", "mesh.accessRules[2]", "mesh.accessRules[3]"}
    everything = [at for g in graph.grants(model) for at in g.atoms()]
    kept = [g for g in graph.grants(model) if g.origin not in reported and
            model.authorizations[g.auth].origin not in reported]
    assert all(any(g.covers(at) for g in kept) for at in everything)


# ---------------------------------------------------------------------------------------------
# syntax, golden-free

NASTY = 'GET ^/a\\.b"c|d<e>#f&g;`h` {x} [y] (z) %% end\\'


def nasty_graph() -> Graph:
    nodes = (Node("ns-a", safe_id("svc", "ns-a", "end"), "service", "end\n1/http"),
             Node("ns-a", safe_id("svc", "ns-a", "o"), "service", 'x"y', unrestricted=True),
             Node("ns-b", safe_id("id", "ns-b", "sa.x"), "identity", "service account sa.x"),
             Node("ns-b", safe_id("gw", "ns-b", "ingress"), "ingress", "ingress gateway\nh.example.com"),
             Node(None, safe_id("ext", "api.x.example.com"), "external", "api.x.example.com"),
             Node("ns-a", safe_id("ver", "ns-a", "end-v1"), "version", "end-v1"))
    ids = [n.id for n in nodes]
    edges = (Edge(ids[1], ids[0], "allow", (NASTY, "tcp:1")), Edge(ids[0], ids[4], "egress", ("https:443",)),
             Edge(ids[3], ids[0], "ingress", ("h.example.com/ :1",)), Edge(ids[0], ids[5], "split", ("1 (100%)",)),
             Edge(ids[2], ids[0], "allow", ("* (any path) :1",)))
    return Graph("mesh \"q\"", nodes, edges, (Finding("f.yaml#X/a/b", "shadowed", "multi\nline %%{init} // */"),))


MERMAID_LINE = re.compile(
    r'^(flowchart LR'
    r'|%% [^{].*'
    r'|    subgraph [A-Za-z0-9_]+\["[^"]*"\]'
    r'|    end'
    r'| {4,8}(?P<node>[A-Za-z0-9_]+)(\["[^"]*"\]|\(\["[^"]*"\]\)|>"[^"]*"\]|\{\{"[^"]*"\}\}|\(\("[^"]*"\)\))'
    r'|    (?P<src>[A-Za-z0-9_]+) (-->|==>|-\.->)\|"[^"]*"\| (?P<dst>[A-Za-z0-9_]+)'
    r'|    classDef [a-z]+ [^;]+'
    r'|    class [A-Za-z0-9_,]+ [a-z]+)$')


def check_mermaid(text: str) -> None:
    lines = text.splitlines()
    assert lines[0] == "flowchart LR" and text.endswith("\n")
    declared, used, depth = set(), set(), 0
    for line in lines:
        m = MERMAID_LINE.match(line)
        assert m, f"not a line this renderer writes: {line!r}"
        depth += line.startswith("    subgraph ") - (line == "    end")
        assert depth in (0, 1)
        if m.group("node"):
            declared.add(m.group("node"))
        if m.group("src"):
            used |= {m.group("src"), m.group("dst")}
        for label in re.findall(r'"([^"]*)"', line):
            stripped = re.sub(r"#(\w+);", "", label.replace("<br/>", ""))
            assert not set(stripped) & set('"#<>|`&'), label
    assert depth == 0 and used <= declared


def test_mermaid_syntax_and_escaping():
    g = nasty_graph()
    text = render_mermaid(g)
    check_mermaid(text)
    assert mermaid_text(NASTY) == ("GET ^/a\\.b#quot;c#124;d#lt;e#gt;#35;f#amp;g;#96;h#96; {x} [y] (z) #37;#37; end\\")
    assert "%% warning: f.yaml#X/a/b: shadowed: multi line % %{init} // */" in text
    assert "%%{" not in text.replace("\n%% ", "\n")
    # ids are injective and safe, and never a bare keyword
    assert safe_id("svc", "a-b", "c") != safe_id("svc", "a", "b-c") != safe_id("svc", "a_2db", "c")
    assert all(re.fullmatch(r"[a-z]+_[A-Za-z0-9_]+", n.id) for n in g.nodes)


@pytest.mark.parametrize("stack", STACKS)
def test_mermaid_of_shipped_stacks_is_well_formed(stack):
    check_mermaid(render_mermaid(graph_of(load_stack(str(ROOT / "stacks" / f"Pulumi.{stack}.yaml"), root=ROOT))))


DOT_STRING = r'"(?:[^"\\]|\\.)*"'


def check_dot(text: str) -> None:
    """Structure without Graphviz: comments, then one digraph whose braces balance outside strings;
    every statement is a quoted id, attribute list or edge between quoted ids."""
    body = [line for line in text.splitlines() if not line.startswith("// ")]
    assert all("\n" not in c for c in text.splitlines() if c.startswith("// "))
    assert re.fullmatch(rf"digraph {DOT_STRING} \{{", body[0]) and body[-1] == "}"
    stmt = re.compile(rf"^ +(graph|node|edge) \[.*\];$|^ +subgraph {DOT_STRING} \{{$|^ +\}}$|^ +label={DOT_STRING};$"
                      rf"|^ +{DOT_STRING}( -> {DOT_STRING})? \[((label|shape|style|color|penwidth)=({DOT_STRING}|[a-z0-9#]+)"
                      rf"(, )?)+\];$")
    depth = 0
    for line in body[1:-1]:
        assert stmt.match(line), f"not a statement this renderer writes: {line!r}"
        outside = re.sub(DOT_STRING, "", line)
        depth += outside.count("{") - outside.count("}")
        assert depth >= 0
    assert depth == 0
    assert dot_string('a\\"b\nc') == '"a\\\\\\"b\\nc"'


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (apt-get install graphviz)")
def test_dot_parses_in_graphviz_and_labels_round_trip(tmp_path):
    g = nasty_graph()
    text = render_dot(g)
    check_dot(text)
    svg = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, check=True).stdout
    shown = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert NASTY in shown and 'x"y' in shown and "end" in shown and "namespace ns-a" in shown


@pytest.mark.parametrize("stack", STACKS)
def test_dot_of_shipped_stacks(stack):
    text = render_dot(graph_of(load_stack(str(ROOT / "stacks" / f"Pulumi.{stack}.yaml"), root=ROOT)))
    check_dot(text)
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tcanon"], input=text, capture_output=True, text=True, check=True)


# ---------------------------------------------------------------------------------------------
# JSON: the same graph the diagrams draw


def mermaid_graph(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """The node ids (-> label text) and edges (source, target, label text) of a Mermaid diagram
    this renderer wrote, read back through the line grammar :data:`MERMAID_LINE`."""
    nodes, edges = {}, []
    for line in text.splitlines():
        m = MERMAID_LINE.match(line)
        assert m, line
        labels = re.findall(r'"([^"]*)"', line)
        if m.group("node"):
            nodes[m.group("node")] = labels[0]
        if m.group("src"):
            edges.append((m.group("src"), m.group("dst"), labels[0]))
    return nodes, edges


def check_json_matches_mermaid(g: Graph) -> dict:
    doc = json.loads(graph_json(g))
    assert list(doc) == ["mesh", "nodes", "edges", "warnings"] and doc["mesh"] == g.mesh
    nodes, edges = mermaid_graph(render_mermaid(g))
    assert {n["id"]: mermaid_text(n["label"]) for n in doc["nodes"]} == nodes
    assert [(e["source"], e["target"], mermaid_text("\n".join(e["lines"]))) for e in doc["edges"]] == edges
    assert [n["id"] for n in doc["nodes"]] == [n.id for n in g.nodes]  # the diagrams' sorted order
    for n, node in zip(doc["nodes"], g.nodes):
        assert (n["kind"], n["namespace"], n["unrestricted"]) == (node.kind, node.group, node.unrestricted)
    assert [e["kind"] for e in doc["edges"]] == [e.kind for e in g.edges]
    assert [f"{w['origin']}: {w['kind']}: {w['message']}" for w in doc["warnings"]] == [f.line() for f in g.findings]
    return doc


@pytest.mark.parametrize("stack", STACKS)
def test_json_of_shipped_stacks_matches_the_mermaid_graph(stack, capsys):
    assert main(["graph", stack, "--format", "json", "--strict"]) == 0
    out = capsys.readouterr().out
    g = graph_of(load_stack(str(ROOT / "stacks" / f"Pulumi.{stack}.yaml"), root=ROOT))
    assert out == graph_json(g)
    doc = check_json_matches_mermaid(g)
    assert doc["nodes"] and doc["warnings"] == []


def test_json_of_every_node_and_edge_kind_and_a_warning():
    g = nasty_graph()
    doc = check_json_matches_mermaid(g)
    assert {n["kind"] for n in doc["nodes"]} == {"service", "version", "external", "ingress", "identity"}
    assert {e["kind"] for e in doc["edges"]} == {"allow", "egress", "ingress", "split"}
    assert next(n for n in doc["nodes"] if n["kind"] == "external")["namespace"] is None
    assert doc["warnings"] == [{"origin": "f.yaml#X/a/b", "kind": "shadowed",
                                "message": "multi\nline %%{init} // */", "others": []}]
    allow = next(e for e in doc["edges"] if e["lines"][0] == NASTY)
    assert allow["lines"] == [NASTY, "tcp:1"]  # as written, no diagram escaping


def test_json_findings_with_strict(tmp_path, capsys):
    path = write_stack(tmp_path, rules=[rule("a-http", http=[{"methods": ["GET"], "pathRegex": "/a"}]),
                                        rule("b-tcp", tcp=[8080])])
    code, out, err = graph_run(path, capsys, "--format", "json", "--strict")
    assert code == 2
    (w,) = json.loads(out)["warnings"]
    assert (w["origin"], w["kind"], w["others"]) == ("mesh.accessRules[0]", "shadowed", ["mesh.accessRules[1]"])
    assert warnings_of(err) == [f"warning: {w['origin']}: {w['kind']}: {w['message']}"]


def test_mermaid_label_helpers():
    assert mermaid_text("a\nb") == "a<br/>b"
    assert http_line_sample() == "GET,POST /a [x-user: adm.*] :8080,9090"


def http_line_sample() -> str:
    return graph.http_line(HTTPMatch("m", ("POST", "GET"), "/a", (("x-user", "adm.*"),)), (8080, 9090))
