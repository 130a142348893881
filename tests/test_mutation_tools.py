"""The mutation-testing tools of quality/ (issue 18): the outside run compares like for like."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "quality"))
import outside  # noqa: E402


def result(score, survivors, total=10):
    return {"total": total, "killed": 0, "equivalent": 0, "score": score, "run": "r",
            "survivors": [{"function": f, "original": o, "mutated": m, "mutant": f"x_{f}__mutmut_1",
                           "status": "survived"} for f, o, m in survivors]}


def test_runs_agree_only_on_the_same_count_score_and_survivors_whatever_their_numbers():
    a = result(90.0, [("f", "x = 1", "x = 2")])
    same = result(90.0, [("f", "x = 1", "x = 2")])
    same["survivors"][0]["mutant"] = "x_f__mutmut_7"  # renumbered: judged by line, not by number
    assert outside.compare(a, same)["agrees"]
    other = result(90.0, [("f", "x = 1", "x = 3")])
    c = outside.compare(a, other)
    assert not c["agrees"] and c["only_inside"] == [("f", "x = 1", "x = 2")] \
        and c["only_outside"] == [("f", "x = 1", "x = 3")]
    assert not outside.compare(a, result(90.0, [("f", "x = 1", "x = 2")], total=11))["agrees"]
    assert not outside.compare(a, result(80.0, [("f", "x = 1", "x = 2")]))["agrees"]


def test_the_outside_run_is_of_the_committed_head_in_a_clone_beside_shared(tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    where = outside.clone(head, tmp_path / "run")
    got = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True).stdout.strip()
    assert got == head and where.parent == tmp_path / "run"
    assert not subprocess.run(["git", "status", "--porcelain"], cwd=where, capture_output=True, text=True).stdout
    if (ROOT.parent / "shared").is_dir():
        assert (tmp_path / "run" / "shared").resolve() == (ROOT.parent / "shared").resolve()


def test_an_outside_directory_inside_the_project_is_refused(monkeypatch):
    monkeypatch.setenv("MUTATION_OUTSIDE", str(ROOT / ".mutation" / "outside"))
    with pytest.raises(SystemExit) as err:
        outside.main(["gamma"])
    assert "is inside the project" in str(err.value)


def test_the_report_keeps_each_modules_latest_outside_run_and_lists_disagreements(tmp_path, monkeypatch):
    monkeypatch.setattr(outside, "REPORT", tmp_path / "OUTSIDE.md")
    a = result(90.0, [("f", "x = 1", "x = 2")])
    kept = {"gamma": {"commit": "a" * 40, "clone": "/tmp/c", "at": "t", "comparison": outside.compare(a, a),
                      "outside": a},
            "smi": {"commit": "b" * 40, "clone": "/tmp/c", "at": "t",
                    "comparison": outside.compare(a, result(90.0, [])), "outside": result(90.0, [])}}
    outside.write_report(kept)
    text = (tmp_path / "OUTSIDE.md").read_text()
    assert "| gamma.py | `aaaaaaaaaaaa` | 90.0% of 10 | 90.0% of 10 | yes | 0 / 0 |" in text
    assert "| smi.py | `bbbbbbbbbbbb` | 90.0% of 10 | 90.0% of 10 | NO | 1 / 0 |" in text
    assert "- only in the project: f: `x = 1` -> `x = 2`" in text
    assert "| osm_policy.py | | not run outside yet |" in text
