"""The fast YAML writer (``mesh_components.core.yaml_text``) gives exactly the bytes of the PyYAML dump it
replaces (``render._reference_yaml``), on every object the stacks render and on a fixed corpus of
generated structures full of strings YAML treats specially (a seeded generator: the same cases on
every run)."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from mesh_components.core.render import _BLOCK_YAML, _reference_yaml, dump_yaml, redact, render_mesh
from mesh_components.core.slots import Slot, fill
from mesh_components.spec import load_mesh, load_stack

from program_harness import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from synthetic import synthetic_mesh  # noqa: E402

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))

TRICKY = ["", " ", "a b", "a  b", "a: b", "a:b", "a:", ":a", "#x", "a #b", "a#b", "- x", "-x", "-", "--- x", "---",
          "...", "...x", ".x", "true", "True", "TRUE", "yes", "Yes", "no", "on", "off", "y", "n", "null", "Null", "~",
          "1", "01", "-1", "+1", "0x1F", "0o17", "0b101", "1_000", "1e3", "1.5", "1.", ".5", ".inf", "-.inf", ".nan",
          "190:20:30", "2024-01-01", "2024-01-01T10:00:00Z", "=", "<<", "*", "*x", "&a", "!x", "!!str", "'q'", '"q"',
          "a'b", 'a"b', "multi\nline", "multi\nline\n", "\n", "trail ", " lead", "tab\tx", "\t", "é", "日本語", "\x00",
          "\x07", "\u2028", "\ufeffbom", "x" * 2000, "word " * 300, "/api/.*", "/(a+)+b", "svc.ns.svc.cluster.local",
          "cluster.local/ns/a/sa/b", "$(deploy-time:ca/c1/root_cert_pem)", "%x", "@x", "`x", "a,b", ",a", "[x]",
          "{x}", "a]", "a}", "?x", "? x", "?", "|", ">", "a|b", "a>b", "x:y:z", "http://x:80/", "a=b", "a;b",
          "a(b)", "k8s.io/x=y", "<redacted: render with --include-secrets to show>", "request.headers[x-user]",
          "GET", "*.example.com", "10.0.0.0/8", "::1", "a\\b", "a\rb", "%", "@", "`", "~x", "x~"]


def gen(rng: random.Random, depth: int = 0):
    r = rng.random()
    if depth > 4 or r < 0.45:
        return rng.choice([rng.choice(TRICKY), rng.choice(TRICKY), rng.randint(-5, 70000), True, False, None,
                           rng.choice(TRICKY), 1.5, {}, []])
    if r < 0.75:
        return {rng.choice(TRICKY + [8080, 0, -1, "x" * 129]): gen(rng, depth + 1) for _ in range(rng.randint(1, 4))}
    return [gen(rng, depth + 1) for _ in range(rng.randint(1, 4))]


def test_generated_corpus_matches_pyyaml():
    rng = random.Random(13)
    for _ in range(3000):
        value = gen(rng)
        assert dump_yaml(value) == _reference_yaml(value), value


@pytest.mark.parametrize("text", TRICKY)
def test_each_tricky_string_as_key_and_value(text):
    for value in ({"k": text}, {text: "v"}, [text], {"a": [{"b": text, text: [text]}]}, {"a": {"b": {"c": text}}}):
        assert dump_yaml(value) == _reference_yaml(value)


def test_slots_are_written_as_their_placeholders():
    slot = Slot("ca", "root_cert_pem", "c1", secret=True)
    value = {"data": {"ca.crt": slot, "list": [slot, {"x": slot}]}}
    assert dump_yaml(value) == _reference_yaml(fill(value, Slot.placeholder))
    assert slot.placeholder() in dump_yaml(value)


def rendered_documents(loaded) -> list:
    states = render_mesh(loaded)
    docs = []
    for st in states.values():
        docs += [redact(o, include) for o in st.objects for include in (False, True)]
        docs += [o for o in st.objects if o["kind"] != "Secret"]  # slots unfilled, as write_tree passes them
        docs.append([fill(r.to_dict(), lambda s: s.placeholder()) for r in st.releases])
        docs.append([m.to_dict() for m in st.remote_manifests])
    return docs


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_object_matches_pyyaml(stack):
    for doc in rendered_documents(load_stack(stack, root=ROOT)):
        assert dump_yaml(doc) == _reference_yaml(doc)


def test_synthetic_mesh_matches_pyyaml_and_takes_the_fast_path():
    calls = []
    reference = _BLOCK_YAML.reference
    docs = rendered_documents(load_mesh(synthetic_mesh(60, 4)))
    _BLOCK_YAML.reference = lambda v: calls.append(v) or reference(v)
    try:
        texts = [dump_yaml(doc) for doc in docs]
    finally:
        _BLOCK_YAML.reference = reference
    assert texts == [_reference_yaml(doc) for doc in docs]
    whole = [c for c in calls if not (isinstance(c, dict) and len(c) == 1 and list(c.values()) in ([0], [c.get("k")]))]
    assert len(whole) < len(docs) / 10  # most objects never need the reference dump
