#!/usr/bin/env python3
"""Set-up and the everyday jobs, with nothing but Python 3.10+ on the machine.

    python3 tasks.py render [STACK]   # make .venv, install, render STACK (default dev) into out/STACK
                                      # and check it against ../shared/tools when they are there
    python3 tasks.py test [PYTEST ARGS]
    python3 tasks.py shuffle [N] [PYTEST ARGS]  # N runs (default 20), each in its own random test order
                                      # and Hypothesis seed, two workers: finds order-dependent tests
    python3 tasks.py mutate [MODULE]  # mutation testing of the access-deciding code -> quality/MUTATION.md
    python3 tasks.py schema [--check] # write provider/schema.json (the component package's schema, as
                                      # Pulumi's analyzer infers it from the code); --check: exit 1 when stale
    python3 tasks.py mutate-outside [MODULE ...]  # the same on the committed HEAD, cloned outside -> quality/OUTSIDE.md

The virtual environment lives in .venv (the one Pulumi.yaml names) and is re-installed when
pyproject.toml changes. Making it needs Python's `venv` and `ensurepip` modules (on Debian and
Ubuntu they come in the `python3-venv` package, not with `python3`); without them this says so and
stops before creating anything.
"""
from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
TOOLS = ROOT.parent / "shared" / "tools"


def run(*cmd: str) -> int:
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def missing_venv_modules() -> list[str]:
    """The modules this Python lacks to make a virtual environment with pip: ``venv`` and
    ``ensurepip`` (which ``venv`` runs inside the new environment to install pip). Debian and
    Ubuntu ship ``ensurepip`` only in ``python3-venv`` / ``python3.X-venv``; without it ``python3 -m
    venv`` leaves an environment with no pip (https://github.com/pypa/packaging.python.org/issues/399,
    https://docs.python.org/3/library/ensurepip.html)."""
    return [name for name in ("venv", "ensurepip") if importlib.util.find_spec(name) is None]


def no_venv_message(missing: list[str]) -> str:
    """What to do when this Python cannot make .venv (``missing``: :func:`missing_venv_modules`)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return (f"tasks.py: this Python ({sys.executable}, {version}) has no {' and no '.join(missing)} module, "
            f"which making .venv with pip needs.\n"
            f"  On Debian or Ubuntu: sudo apt install python{version}-venv  (python3-venv for the default python3)\n"
            f"  Elsewhere: use a Python 3.10+ that ships venv and ensurepip (python.org, pyenv, or your "
            f"distribution's full python3 package).\n"
            f"Then run tasks.py again.")


def has_pip(python: Path) -> bool:
    """Whether ``python`` runs pip (a .venv an interrupted or failed set-up left may not)."""
    return subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True).returncode == 0


def make_venv() -> None:
    """Make .venv with pip, from scratch (replacing one without pip); exits with what to do when
    this Python cannot, leaving no half-made .venv behind."""
    missing = missing_venv_modules()
    if missing:
        sys.exit(no_venv_message(missing))
    import venv

    try:
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    except (subprocess.CalledProcessError, OSError) as e:  # ensurepip failed in the new environment
        shutil.rmtree(VENV, ignore_errors=True)
        output = getattr(e, "output", None) or b""
        output = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        sys.exit(f"{output.rstrip()}\ntasks.py: making .venv failed: {e}\n" + no_venv_message(["working ensurepip"]))


def pip_install(*args: str) -> None:
    """``.venv/bin/python -m pip install -q ARGS``, silent on success; on failure pip's whole
    output is shown and tasks.py stops."""
    cmd = [str(PY), "-m", "pip", "install", "-q", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(f"+ {' '.join(cmd)}\n{done.stdout}{done.stderr}")
        sys.exit(f"tasks.py: installing the project failed (pip's output above, exit {done.returncode})")


def ensure_venv() -> None:
    """Make .venv and install the project with its test extras, once per pyproject.toml: one
    progress line, pip's output only when it fails."""
    stamp = VENV / ".installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and PY.exists():
        return
    fresh = not PY.exists() or not has_pip(PY)
    if fresh and missing_venv_modules():  # say so before announcing an install that cannot start
        sys.exit(no_venv_message(missing_venv_modules()))
    why = "pyproject.toml changed" if stamp.exists() else "first run"
    print(f"tasks.py: installing the project into .venv ({why}, about a minute)...", flush=True)
    if fresh:
        make_venv()
    pip_install("--upgrade", "pip")
    pip_install("-e", ".[test]")
    stamp.write_text(want)


def render(stack: str = "dev") -> int:
    ensure_venv()
    out = ROOT / "out" / stack
    code = run(str(PY), "-m", "mesh_components", "render", stack, "--out", str(out))
    if code or not TOOLS.is_dir():
        return code
    for cluster in sorted(p for p in out.iterdir() if p.is_dir()):
        # against the Gateway API channel the cluster installs (Linkerd: experimental, mesh_components/core/gateway_api.py)
        manifests = cluster / "releases" / "remote-manifests.yaml"  # render.RELEASES_DIR: where kubectl does not read
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


def schema(*args: str) -> int:
    """Write the component package's schema, ``provider/schema.json``, from the components' type
    hints and docstrings (``mesh_components.components.package``); ``--check`` only says whether
    the committed file is current (exit 1 when not; tests/test_component_package.py fails then too)."""
    ensure_venv()
    return run(str(PY), "-m", "mesh_components.components.package", *args)


def mutate(*args: str) -> int:
    """Mutation testing of the access-deciding modules (quality/mutate.py: ``[MODULE] [PYTEST ARGS]``),
    results in quality/MUTATION.md; installs the ``mutation`` extra (mutmut) into .venv first."""
    ensure_venv()
    if subprocess.run([str(PY), "-c", "import mutmut"], capture_output=True).returncode:
        pip_install("-e", ".[test,mutation]")
    return run(str(PY), str(ROOT / "quality" / "mutate.py"), *args)


def mutate_outside(*args: str) -> int:
    """A mutation run of the committed HEAD in a clone outside the project (quality/outside.py:
    ``[MODULE ...]``), compared with quality/mutation-results.json in quality/OUTSIDE.md."""
    ensure_venv()
    if subprocess.run([str(PY), "-c", "import mutmut"], capture_output=True).returncode:
        pip_install("-e", ".[test,mutation]")
    return run(str(PY), str(ROOT / "quality" / "outside.py"), *args)


if __name__ == "__main__":
    if sys.version_info < (3, 10):
        sys.exit(f"tasks.py: needs Python 3.10 or newer; this is {sys.version.split()[0]} ({sys.executable})")
    job, *rest = sys.argv[1:] or ["test"]
    jobs = {"render": render, "test": test, "shuffle": shuffle, "mutate": mutate, "mutate-outside": mutate_outside,
            "schema": schema}
    if job not in jobs:
        sys.exit(f"usage: python3 tasks.py render [STACK] | test [PYTEST ARGS] | shuffle [N] | mutate [MODULE] | mutate-outside [MODULE ...] | schema [--check]  (got {job!r})")
    sys.exit(jobs[job](*rest))
