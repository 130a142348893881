#!/usr/bin/env python3
"""Mutation testing of the code that decides who may call whom (issue 18), with mutmut 3.

    python3 tasks.py mutate [MODULE] [PYTEST ARGS]   # MODULE: gamma, istio_policy, linkerd_policy,
                                                     # osm_policy or smi (default: all five)

What it does, so a run is repeatable and never disturbs the working tree:

1. copies the repository's tracked and new files (``git ls-files -co --exclude-standard``) into
   ``.mutation/work`` (git-ignored), so edits made meanwhile do not change the run;
2. runs ``nice -n 19 mutmut run <mutant names>`` there with the ``[tool.mutmut]`` configuration of
   pyproject.toml (mutated files, the policy tests that judge them), two workers. PYTEST ARGS (for
   instance ``--deselect tests/x.py::test_y`` for a test that fails on the unmutated code) are added
   to the configuration's ``pytest_add_cli_args`` for this run only;
3. reads mutmut's verdicts (``mutants/<path>.meta``) and each survivor's diff (``mutmut show``),
   applies the judgements in quality/equivalent-mutants.json, and writes
   quality/mutation-results.json (per module: counts and every survivor) and quality/MUTATION.md.

A judgement is keyed by module, function and the mutated line before and after (whitespace
collapsed), never by mutmut's mutant number, so it survives line moves and renumbering; a
judgement whose mutant no longer exists is reported as stale.

Score per module: killed (timeouts count as killed, as mutmut counts them) / (mutants - equivalent).
mutmut 3 mutates function bodies only (not module constants, not functions with decorators such as
``@lru_cache``'d ``smi.regex_shape``), see https://mutmut.readthedocs.io/ .
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUALITY = ROOT / "quality"
WORK = ROOT / ".mutation" / "work"
EQUIVALENT = QUALITY / "equivalent-mutants.json"
NOTES = QUALITY / "survivor-notes.json"
FINDINGS = QUALITY / "findings.md"
"""Surviving mutants judged killable but not widening access, with why (keyed like EQUIVALENT)."""
RESULTS = QUALITY / "mutation-results.json"
REPORT = QUALITY / "MUTATION.md"
MUTMUT = Path(sys.executable).parent / "mutmut"

MODULES = {
    "osm_policy": None, "linkerd_policy": None, "istio_policy": None, "gamma": None,
    # smi.py: only what parses matches, regexes, methods, ports and weights and feeds the renderers
    "smi": ["xǁHTTPMatchǁany_method", "x_alternatives", "x_literal_prefix", "x_may_overlap",
            "x__paths_may_overlap", "x_empty_as_absent", "x_regex_problem", "x_match_key", "x_parse_document",
            "x__body", "x__list", "x__subject", "x__port", "x__target", "x__route_group", "x__tcp_route",
            "x_parse_quantity", "x__weight", "x_normalise_weights", "x__split", "x__split_root"],
}
"""Module -> the mutmut function names mutated in it (None: every function of the module)."""

PACKAGES = {"osm_policy": "meshes", "linkerd_policy": "meshes", "istio_policy": "meshes", "gamma": "core",
            "smi": "spec"}
"""Module -> its folder under mesh_components/ (the layers of README "How the pieces fit"). Results and
judgements stay keyed by the module's own name."""

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", 37: "caught by type check", None: "not checked"}
"""mutmut 3.8 exit codes (mutmut/stats.py ``status_by_exit_code``); anything else is "suspicious"."""


def _squash(line: str) -> str:
    return " ".join(line.split())


SNAPSHOT_OF: dict = {}
"""``commit``: the HEAD the snapshot was taken at; ``uncommitted``: the files of the snapshot that
differ from it (``git status --porcelain``), recorded with each module's results."""


def snapshot() -> None:
    """``.mutation/work`` := the repository's files as they are now (tracked and new, not ignored)."""
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, check=True, capture_output=True, text=True).stdout  # noqa: E731
    SNAPSHOT_OF["commit"] = git("rev-parse", "HEAD").strip()
    SNAPSHOT_OF["uncommitted"] = sorted(line[3:] for line in git("status", "--porcelain").splitlines()
                                        if not line[3:].startswith(("quality/", ".mutation/")))
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    shutil.rmtree(WORK, ignore_errors=True)
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file() and not f.startswith(("quality/", ".mutation/")):
            (WORK / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, WORK / f)
    # the tests find ../shared (CRD schemas, charts) beside the repository: for the snapshot and for
    # mutmut's copy of it (WORK/mutants)
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        for where in (WORK.parent / "shared", WORK / "shared"):
            if not where.exists():
                where.symlink_to(shared)


def configure(pytest_args: list[str]) -> None:
    """Add ``pytest_args`` to the snapshot's ``[tool.mutmut] pytest_add_cli_args``."""
    if not pytest_args:
        return
    pyproject = WORK / "pyproject.toml"
    text = pyproject.read_text()
    current = tomllib.loads(text)["tool"]["mutmut"]["pytest_add_cli_args"]
    line = re.search(r"^pytest_add_cli_args = .*$", text, re.M)
    pyproject.write_text(text[:line.start()] + f"pytest_add_cli_args = {json.dumps(current + pytest_args)}"
                         + text[line.end():])


def mutant_names(module: str) -> list[str]:
    functions = MODULES[module]
    prefix = f"mesh_components.{PACKAGES[module]}.{module}."
    return [f"{prefix}*"] if functions is None else [f"{prefix}{f}__mutmut_*" for f in functions]


def run_mutmut(modules: list[str]) -> int:
    names = [n for m in modules for n in mutant_names(m)]
    cmd = ["nice", "-n", "19", str(MUTMUT), "run", "--max-children", "2", *names]
    print("+", " ".join(cmd), flush=True)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.call(cmd, cwd=WORK, env=env)


def _diff(name: str) -> tuple[str, str, str]:
    """``(function, original line, mutated line)`` of mutant ``name`` from ``mutmut show``."""
    out = subprocess.run([str(MUTMUT), "show", name], cwd=WORK, capture_output=True, text=True).stdout
    minus = [l[1:] for l in out.splitlines() if l.startswith("-") and not l.startswith("---")]
    plus = [l[1:] for l in out.splitlines() if l.startswith("+") and not l.startswith("+++")]
    function = re.sub(r"^x_|__mutmut_\d+$", "", name.rsplit(".", 1)[1]).replace("xǁ", "").replace("ǁ", ".")
    return function, _squash(" / ".join(minus)), _squash(" / ".join(plus))


def collect(module: str) -> dict:
    """The verdicts of ``module``'s selected mutants in the snapshot, with survivors' diffs."""
    meta = WORK / "mutants" / "mesh_components" / PACKAGES[module] / f"{module}.py.meta"
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    wanted = MODULES[module]
    keep = {k: v for k, v in codes.items()
            if wanted is None or any(k.split(".", 2)[2].startswith(f + "__mutmut_") for f in wanted)}
    equivalent = [e for e in json.loads(EQUIVALENT.read_text()) if e["module"] == module] \
        if EQUIVALENT.exists() else []
    judged = {(e["function"], _squash(e["original"]), _squash(e["mutated"])): e for e in equivalent}
    notes = {(e["function"], _squash(e["original"]), _squash(e["mutated"])): e
             for e in (json.loads(NOTES.read_text()) if NOTES.exists() else []) if e["module"] == module}
    counts: dict[str, int] = {}
    survivors, equivalents, used = [], [], set()
    for name, code in sorted(keep.items(), key=lambda kv: (kv[0].rsplit("__mutmut_", 1)[0],
                                                           int(kv[0].rsplit("_", 1)[1]))):
        status = STATUS.get(code, "suspicious")
        if status in ("survived", "no tests", "suspicious", "not checked"):
            function, original, mutated = _diff(name)
            e = judged.get((function, original, mutated))
            if e is not None and status in ("survived", "no tests"):
                status = "equivalent"
                used.add((function, original, mutated))
                equivalents.append({"mutant": name, "function": function, "original": original,
                                    "mutated": mutated, "reason": e["reason"]})
            else:
                note = notes.get((function, original, mutated))
                survivors.append({"mutant": name, "status": status, "function": function,
                                  "original": original, "mutated": mutated,
                                  **({"note": note["reason"], "widens": note["widens"]} if note else {})})
        counts[status] = counts.get(status, 0) + 1
    total = sum(counts.values())
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    denominator = total - counts.get("equivalent", 0)
    stale = [dict(e) for k, e in judged.items() if k not in used]
    return {"module": module, "run": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: python3 tasks.py mutate {module}",
            "commit": SNAPSHOT_OF.get("commit"), "uncommitted": SNAPSHOT_OF.get("uncommitted"),
            "total": total, "killed": killed, "equivalent": counts.get("equivalent", 0),
            "counts": counts, "score": round(100 * killed / denominator, 1) if denominator else 100.0,
            "survivors": survivors, "equivalents": equivalents, "stale_judgements": stale}


def write_report(results: dict) -> None:
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    lines = ["# Mutation testing of the access-deciding code", "",
             "Written by `python3 tasks.py mutate [MODULE]` (quality/mutate.py, mutmut 3; configuration: "
             "`[tool.mutmut]` in pyproject.toml). Judged-equivalent mutants: quality/equivalent-mutants.json, "
             "keyed by module, function and the mutated line (not by mutant number). Score = killed / "
             "(mutants - equivalent); timeouts count as killed.", "",
             "| module | mutants | killed | equivalent | surviving | score |", "|---|---|---|---|---|---|"]
    for m in MODULES:
        r = results.get(m)
        if r:
            lines.append(f"| {m}.py | {r['total']} | {r['killed']} | {r['equivalent']} | {len(r['survivors'])} "
                         f"| {r['score']}% |")
        else:
            lines.append(f"| {m}.py | not run yet | | | | |")
    for m in MODULES:
        r = results.get(m)
        if not r:
            continue
        lines += ["", f"## {m}.py", "", f"Run: {r.get('run', 'date not recorded')}", "",
                  f"Counts: {json.dumps(r['counts'], sort_keys=True)}"]
        if r["survivors"]:
            lines += ["", "Surviving mutants (function: original -> mutated):", ""]
            lines += [f"- `{s['mutant'].rsplit('.', 1)[1]}` ({s['status']}) {s['function']}: `{s['original']}` -> "
                      f"`{s['mutated']}`" + (f" — {'WIDENS' if s['widens'] else 'does not widen'}: {s['note']}"
                                            if 'note' in s else " — not judged yet")
                      for s in r["survivors"]]
        if r["equivalents"]:
            lines += ["", "Judged equivalent:", ""]
            lines += [f"- {e['function']}: `{e['original']}` -> `{e['mutated']}`: {e['reason']}"
                      for e in r["equivalents"]]
        if r["stale_judgements"]:
            lines += ["", "Stale judgements (no such mutant any more; drop or re-judge):", ""]
            lines += [f"- {e['function']}: `{e['original']}` -> `{e['mutated']}`" for e in r["stale_judgements"]]
    if FINDINGS.exists():  # hand-written: widening survivors found, what closed them, what remains
        lines += ["", FINDINGS.read_text().rstrip()]
    REPORT.write_text("\n".join(lines) + "\n")


def rejudge(results: dict) -> dict:
    """``results`` with the judgement files applied again to the recorded survivors, without a run:
    a survivor now judged equivalent leaves the survivors (and the score's denominator), a note is
    attached or refreshed. For judgements made after a run (``python3 quality/mutate.py --rejudge``)."""
    equivalent = json.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else []
    notes = json.loads(NOTES.read_text()) if NOTES.exists() else []
    for m, r in results.items():
        judged = {(e["function"], _squash(e["original"]), _squash(e["mutated"])): e for e in equivalent if e["module"] == m}
        noted = {(e["function"], _squash(e["original"]), _squash(e["mutated"])): e for e in notes if e["module"] == m}
        kept = []
        for s in r["survivors"]:
            key = (s["function"], s["original"], s["mutated"])
            if key in judged and s["status"] in ("survived", "no tests"):
                r["equivalents"].append({"mutant": s["mutant"], "function": s["function"], "original": s["original"],
                                         "mutated": s["mutated"], "reason": judged[key]["reason"]})
                r["equivalent"] += 1
                r["counts"][s["status"]] -= 1
                r["counts"]["equivalent"] = r["counts"].get("equivalent", 0) + 1
                continue
            s = {k: v for k, v in s.items() if k not in ("note", "widens")}
            if key in noted:
                s.update(note=noted[key]["reason"], widens=noted[key]["widens"])
            kept.append(s)
        r["survivors"] = kept
        denominator = r["total"] - r["equivalent"]
        r["score"] = round(100 * r["killed"] / denominator, 1) if denominator else 100.0
    return results


def main(argv: list[str]) -> int:
    if argv == ["--rejudge"]:
        write_report(rejudge(json.loads(RESULTS.read_text())))
        print(f"mutate: re-judged {RESULTS.relative_to(ROOT)}, wrote {REPORT.relative_to(ROOT)}")
        return 0
    modules = [argv[0]] if argv and argv[0] in MODULES else list(MODULES)
    pytest_args = argv[1:] if argv and argv[0] in MODULES else argv
    if pytest_args and not pytest_args[0].startswith("-"):
        sys.exit(f"usage: python3 tasks.py mutate [{'|'.join(MODULES)}] [PYTEST ARGS]  (got {pytest_args[0]!r})")
    if not MUTMUT.exists():
        sys.exit(f"mutate: {MUTMUT} is missing; install the mutation extra: pip install -e '.[test,mutation]'")
    snapshot()
    configure(pytest_args)
    code = run_mutmut(modules)
    if code:
        print(f"mutate: mutmut exited with {code}; results of this run are not recorded", file=sys.stderr)
        return code
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for m in modules:
        results[m] = collect(m)
        r = results[m]
        print(f"{m}: {r['killed']} killed of {r['total']} ({r['equivalent']} equivalent), "
              f"{len(r['survivors'])} surviving, score {r['score']}%")
    write_report(results)
    print(f"mutate: wrote {REPORT.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
