#!/usr/bin/env python3
"""Set-up and the everyday jobs, with nothing but Python 3.10+ on the machine.

    python3 tasks.py render [STACK]   # make .venv, install, render STACK (default dev) into out/STACK
                                      # and check it against ../shared/tools when they are there
    python3 tasks.py test [PYTEST ARGS]
    python3 tasks.py shuffle [N] [PYTEST ARGS]  # N runs (default 20), each in its own random test order
                                      # and Hypothesis seed, two workers: finds order-dependent tests

The virtual environment lives in .venv (the one Pulumi.yaml names) and is re-installed when
pyproject.toml changes.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
TOOLS = ROOT.parent / "shared" / "tools"


def run(*cmd: str) -> int:
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def ensure_venv() -> None:
    stamp = VENV / ".installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and PY.exists():
        return
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    for cmd in ([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"],
                [str(PY), "-m", "pip", "install", "-q", "-e", ".[test]"]):
        if run(*cmd) != 0:
            sys.exit("tasks.py: installing the project failed (see pip's output above)")
    stamp.write_text(want)


def render(stack: str = "dev") -> int:
    ensure_venv()
    out = ROOT / "out" / stack
    code = run(str(PY), "-m", "mesh_components", "render", stack, "--out", str(out))
    if code or not TOOLS.is_dir():
        return code
    for cluster in sorted(p for p in out.iterdir() if p.is_dir()):
        # against the Gateway API channel the cluster installs (Linkerd: experimental, mesh_components/gateway_api.py)
        manifests = cluster / "remote-manifests.yaml"
        channel = "experimental" if manifests.is_file() and "/experimental-install.yaml" in manifests.read_text() \
            else "standard"
        code |= run(str(TOOLS / "validate-manifests"), "--quiet", "--gateway-api", channel, str(cluster))
    return code | run(str(TOOLS / "check-helm-values"), str(out))


def test(*args: str) -> int:
    ensure_venv()
    code = run(str(PY), "-m", "pytest", *(args or ("-q",)))
    return 1 if code == 5 else code  # 5: no test ran, which is a failure here


def shuffle(runs: str = "20", *args: str) -> int:
    """Run the suite ``runs`` times, each with another pytest-randomly order seed and Hypothesis
    seed (seeds 1..N, printed, so a failure is replayed with the same two flags), on two workers.
    Stops at the first failing run."""
    ensure_venv()
    if not runs.isdigit() or int(runs) < 1:
        sys.exit(f"usage: python3 tasks.py shuffle [N] [PYTEST ARGS]  (N must be a positive whole number, got {runs!r})")
    for seed in range(1, int(runs) + 1):
        code = run(str(PY), "-m", "pytest", "-q", "-p", "randomly", "-p", "no:cacheprovider", "-n", "2",
                   f"--randomly-seed={seed}", f"--hypothesis-seed={seed}", *args)
        if code:
            print(f"shuffle: run {seed} failed; replay it with --randomly-seed={seed} --hypothesis-seed={seed}")
            return 1
    print(f"shuffle: {runs} runs in random order passed")
    return 0


if __name__ == "__main__":
    job, *rest = sys.argv[1:] or ["test"]
    jobs = {"render": render, "test": test, "shuffle": shuffle}
    if job not in jobs:
        sys.exit(f"usage: python3 tasks.py render [STACK] | test [PYTEST ARGS] | shuffle [N]  (got {job!r})")
    sys.exit(jobs[job](*rest))
