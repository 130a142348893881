#!/usr/bin/env python3
"""A mutation run kept outside the project, on the code as landed, compared with the recorded one.

    python3 tasks.py mutate-outside [MODULE ...]   # default: every module of quality/mutate.py

1. clones the repository's committed ``HEAD`` (not the working tree: the code as landed) into a
   fresh directory outside it (``$MUTATION_OUTSIDE``, default ``/tmp/mutation-outside/<commit>``),
   with ``../shared`` beside it as the tests expect;
2. runs that clone's own ``quality/mutate.py MODULE`` there, so mutmut, its configuration, the tests
   and the judgements are the committed ones and nothing of the project's working tree or its
   ``.mutation`` directory is read;
3. compares each module's verdicts with the project's recorded ``quality/mutation-results.json``:
   the mutant count, the score, and the set of surviving mutants (by function and mutated line, as
   judgements are keyed), and writes ``quality/OUTSIDE.md``. A timeout counts as killed on both
   sides (mutmut's reading); a mutant that one side killed by timeout and the other side let survive
   is a disagreement, listed.

Exit status 1 when a module disagrees.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "quality"))
import mutate  # noqa: E402

REPORT = ROOT / "quality" / "OUTSIDE.md"
RESULTS = ROOT / "quality" / "outside-results.json"


def _key(s: dict) -> tuple[str, str, str]:
    return s["function"], s["original"], s["mutated"]


def compare(inside: dict, outside: dict) -> dict:
    """Per-module agreement of two ``collect`` results: same mutant count, score and survivors."""
    ins, outs = {_key(s) for s in inside["survivors"]}, {_key(s) for s in outside["survivors"]}
    return {"agrees": inside["total"] == outside["total"] and ins == outs and inside["score"] == outside["score"],
            "inside": {k: inside[k] for k in ("total", "killed", "equivalent", "score", "run")},
            "outside": {k: outside[k] for k in ("total", "killed", "equivalent", "score", "run")},
            "only_inside": sorted(ins - outs), "only_outside": sorted(outs - ins)}


def clone(commit: str, dest: Path) -> Path:
    """``dest/main``: a clone of ``commit``, with ``dest/shared`` linked to the project's ``../shared``."""
    main = dest / "main"
    if not main.exists():
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(main)], check=True)
    subprocess.run(["git", "-C", str(main), "checkout", "-q", "--detach", commit], check=True)
    shared = ROOT.parent / "shared"
    if shared.is_dir() and not (dest / "shared").exists():
        (dest / "shared").symlink_to(shared)
    return main


def main(argv: list[str]) -> int:
    modules = argv or list(mutate.MODULES)
    unknown = [m for m in modules if m not in mutate.MODULES]
    if unknown:
        sys.exit(f"usage: python3 tasks.py mutate-outside [{'|'.join(mutate.MODULES)} ...]  (got {unknown[0]!r})")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    dest = Path(os.environ.get("MUTATION_OUTSIDE", f"/tmp/mutation-outside/{commit[:12]}"))
    if ROOT in dest.resolve().parents or dest.resolve() == ROOT:
        sys.exit(f"mutate-outside: {dest} is inside the project; give MUTATION_OUTSIDE a directory outside it")
    where = clone(commit, dest)
    recorded = json.loads(mutate.RESULTS.read_text()) if mutate.RESULTS.exists() else {}
    for m in modules:
        code = subprocess.call([sys.executable, str(where / "quality" / "mutate.py"), m], cwd=where)
        if code:
            print(f"mutate-outside: the run of {m} in {where} exited with {code}", file=sys.stderr)
            return code
    outside = json.loads((where / "quality" / "mutation-results.json").read_text())
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    for m in modules:
        kept[m] = {"commit": commit, "clone": str(where), "at": when,
                   "comparison": compare(recorded[m], outside[m]) if m in recorded else None,
                   "outside": {k: outside[m][k] for k in ("total", "killed", "equivalent", "score", "run")}}
    RESULTS.write_text(json.dumps(kept, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    write_report(kept)
    print(f"mutate-outside: wrote {REPORT.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    return 0 if all(kept[m]["comparison"] is None or kept[m]["comparison"]["agrees"] for m in modules) else 1


def write_report(kept: dict) -> list[str]:
    """quality/OUTSIDE.md from every module's latest outside run (quality/outside-results.json)."""
    rows = []
    for m in mutate.MODULES:
        k = kept.get(m)
        if k is None:
            rows.append(f"| {m}.py | | not run outside yet | | | |")
            continue
        c = k["comparison"]
        if c is None:
            rows.append(f"| {m}.py | `{k['commit'][:12]}` | {k['outside']['score']}% of {k['outside']['total']} | "
                        f"not recorded in the project | | |")
            continue
        rows.append(f"| {m}.py | `{k['commit'][:12]}` | {c['outside']['score']}% of {c['outside']['total']} | "
                    f"{c['inside']['score']}% of {c['inside']['total']} | {'yes' if c['agrees'] else 'NO'} | "
                    f"{len(c['only_inside'])} / {len(c['only_outside'])} |")
    lines = ["# Mutation runs outside the project", "",
             "Written by `python3 tasks.py mutate-outside [MODULE ...]` (quality/outside.py): the committed HEAD "
             "cloned outside the project and mutated there by its own quality/mutate.py, each module's verdicts "
             "compared with the project's quality/mutation-results.json (mutant count, score, the set of "
             "surviving mutants by function and line). Latest run per module.", "",
             "| module | commit run outside | outside | project | agrees | survivors only in project / only outside |",
             "|---|---|---|---|---|---|", *rows]
    for m, k in sorted(kept.items()):
        c = k["comparison"]
        if c and not c["agrees"]:
            lines += ["", f"## {m}.py disagrees", "", f"project run: {c['inside']['run']}",
                      f"outside run: {c['outside']['run']} (commit {k['commit']}, {k['clone']})", ""]
            lines += [f"- only in the project: {f}: `{o}` -> `{n}`" for f, o, n in c["only_inside"]]
            lines += [f"- only outside: {f}: `{o}` -> `{n}`" for f, o, n in c["only_outside"]]
    REPORT.write_text("\n".join(lines) + "\n")
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
