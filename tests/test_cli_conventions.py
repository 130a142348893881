"""A CLI that fits pipelines, and a set-up that works on a fresh machine (issue 13, items 11-12).

- Usage errors (unknown flag, missing argument or value, bad choice, no command) exit 1 for every
  command, with the command's usage and ``<command>: <message>`` on stderr, never a traceback: exit
  2 means drift (``diff``) or findings (``--strict``) only. The table is read from the parser
  itself, so an option added later is covered too.
- ``--version``, and every ``--help`` lists its exit codes.
- ``tasks.py`` on a Python without ``ensurepip`` (what Debian and Ubuntu ship until
  ``python3-venv`` is installed: https://github.com/pypa/packaging.python.org/issues/399) says what
  to install and creates nothing; the install prints one line, and pip's whole output when it fails.
- The packaging metadata is PEP 639's: an SPDX ``license`` string and no license classifiers.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

from mesh_components import cli
from mesh_components.cli import build_parser, exit_codes_epilog, main, package_version

ROOT = Path(__file__).resolve().parents[1]
PROG = "python -m mesh_components"

# arguments that parse: each case below changes one thing (paths are never touched: parsing fails first)
VALID = {"validate": ["dev"], "render": ["dev", "--out", "out/x"],
         "translate": ["--to", "istio", "--stack", "dev", "--out", "out/x"],
         "graph": ["dev"], "diff": ["dev", "--live", "dumps"],
         "workload-bootstrap": ["dev", "--workload", "x", "--out", "out/x"]}
EXIT_CODES = {"validate": {0, 1, 2}, "render": {0, 1}, "translate": {0, 1}, "graph": {0, 1, 2}, "diff": {0, 1, 2},
              "workload-bootstrap": {0, 1}}


def commands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def without(argv: list[str], option: str) -> list[str]:
    i = argv.index(option)
    return argv[:i] + argv[i + 2:]


def usage_cases() -> list[tuple[str, str, list[str]]]:
    """(command, kind, argv) for every usage error the parsers define."""
    cases = [("", "no command", []), ("", "bad choice", ["no-such-command", "dev"]),
             # argparse gathers unknown flags wherever they stand: the command reports them
             ("validate", "unknown flag", ["--no-such-flag", "validate", "dev"])]
    for name, parser in commands().items():
        base = [name, *VALID[name]]
        cases += [(name, "unknown flag", base + ["--no-such-flag"]),
                  (name, "unknown flag", [name, "--no-such-flag", *VALID[name]]),
                  (name, "missing argument", [name])]
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0 or isinstance(action, argparse._HelpAction):
                continue
            option = action.option_strings[-1]
            cases.append((name, "missing argument", base + [option]))  # an option without its value
            if action.required:
                cases.append((name, "missing argument", without(base, option)))
            if action.choices:
                cases.append((name, "bad choice", base + [option, "no-such-choice"]))
    return cases


CASES = usage_cases()


def test_the_table_covers_every_command_and_kind():
    kinds = {(name, kind) for name, kind, _ in CASES}
    assert set(commands()) == set(VALID)
    for name in VALID:
        assert {(name, "unknown flag"), (name, "missing argument")} <= kinds
    assert {("translate", "bad choice"), ("graph", "bad choice"), ("diff", "bad choice")} <= kinds
    assert {("", "no command"), ("", "bad choice")} <= kinds


@pytest.mark.parametrize("name, kind, argv", CASES, ids=[" ".join(c[2]) or "(nothing)" for c in CASES])
def test_usage_errors_exit_1(name, kind, argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == ""
    assert lines[0].startswith(f"usage: {PROG} {name}".rstrip() + " ")
    assert lines[-1].startswith(f"{name or PROG}: "), err
    assert "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize("argv", [[], ["nocmd"], ["render", "dev"], ["graph", "dev", "--format", "svg"],
                                  ["translate", "--to", "consul", "--stack", "dev", "--out", "o"]])
def test_usage_errors_exit_1_from_the_shell(argv):
    done = subprocess.run([sys.executable, "-m", "mesh_components", *argv], cwd=ROOT, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("usage: ") and "Traceback" not in done.stderr


def documented_exit_codes(help_text: str) -> set[int]:
    """The codes of the ``exit codes:`` block (:func:`exit_codes_epilog`) of a help text."""
    block = help_text.split("\nexit codes:\n", 1)[1].split("\n\n", 1)[0]
    return {int(m) for m in re.findall(r"(?m)^  (\d+) ", block)}


@pytest.mark.parametrize("name", sorted(EXIT_CODES))
def test_each_help_lists_its_exit_codes(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    if "\nexit codes:\n" in text:
        assert documented_exit_codes(text) == EXIT_CODES[name]
    else:  # a command that states them in its description ("Exit 0: no drift; 2: drift; 1: error.")
        prose = re.search(r"Exit (\d+):[^;]*(?:; (\d+):[^;.]*)*", " ".join(text.split()))
        assert prose, text
        assert {int(c) for c in re.findall(r"(?:Exit |; )(\d+):", prose.group(0))} == EXIT_CODES[name]


def test_top_level_help_lists_the_convention(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert documented_exit_codes(text) == {0, 1, 2, 130}
    assert "drift (diff) or findings" in " ".join(text.split())


def test_exit_codes_epilog_layout():
    text = exit_codes_epilog({2: "findings", 0: "ok", 1: "invalid input " * 10})
    lines = text.splitlines()
    assert lines[:2] == ["exit codes:", "  0    ok"] and lines[-1] == "  2    findings"
    assert lines[2].startswith("  1    invalid input") and len(lines) > 4  # wrapped under its meaning:
    assert all(re.match(r" {7}\S", ln) for ln in lines[3:-1])
    assert " ".join(ln[7:] for ln in lines[2:-1]).split() == ("invalid input " * 10).split()
    assert all(len(ln) <= 79 for ln in lines)


def test_help_keeps_epilogs_and_wraps_one_line_descriptions(capsys):
    with pytest.raises(SystemExit):
        main(["graph", "--help"])
    text = capsys.readouterr().out
    assert "\nexit codes:\n  0    drawn" in text
    assert all(len(line) <= 100 for line in text.splitlines())


def pyproject_version() -> str:
    match = re.search(r'(?ms)^\[project\].*?^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text())
    return match.group(1)


def test_version():
    done = subprocess.run([sys.executable, "-m", "mesh_components", "--version"], cwd=ROOT,
                          capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"mesh-components {metadata.version('mesh-components')}\n"
    assert metadata.version("mesh-components") == pyproject_version()  # tasks.py re-installs on change


def test_version_when_not_installed(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert package_version() == pyproject_version()


# ---------------------------------------------------------------------------------------------
# set-up on a fresh machine


def project_copy(tmp_path: Path, pyproject: str) -> Path:
    """tasks.py alone in a folder of its own (its ROOT), so nothing touches this checkout's .venv."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "tasks.py", root / "tasks.py")
    (root / "pyproject.toml").write_text(pyproject)
    return root


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)  # offline
    return env


def python_without_ensurepip(tmp_path: Path) -> tuple[str, Path]:
    """The base interpreter with a standard library that has everything but ``ensurepip``, as on
    Debian/Ubuntu before ``python3-venv``: each entry of the real one linked into PYTHONHOME."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    libdest = Path(sysconfig.get_config_var("LIBDEST"))
    home = tmp_path / "home"
    stdlib = home / libdest.relative_to(sys.base_prefix)
    stdlib.mkdir(parents=True)
    for entry in libdest.iterdir():
        if entry.name not in ("ensurepip", "site-packages"):
            (stdlib / entry.name).symlink_to(entry)
    probe = subprocess.run([base, "-c", "import venv, hashlib, importlib.util as u; "
                                        "print(u.find_spec('ensurepip') is None)"],
                           env=clean_env(PYTHONHOME=str(home)), capture_output=True, text=True)
    if probe.stdout.strip() != "True":
        pytest.skip(f"cannot make a Python without ensurepip from {base}: {probe.stderr[-300:]}")
    return base, home


def test_tasks_says_what_to_install_when_ensurepip_is_missing(tmp_path):
    python, home = python_without_ensurepip(tmp_path)
    root = project_copy(tmp_path, '[project]\nname = "x"\nversion = "0"\n')
    done = subprocess.run([python, "tasks.py", "test"], cwd=root, env=clean_env(PYTHONHOME=str(home)),
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert done.stderr.startswith(f"tasks.py: this Python ({python}, {version}) has no ensurepip module")
    assert f"sudo apt install python{version}-venv" in done.stderr and "python3-venv" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in root.iterdir()) == ["pyproject.toml", "tasks.py"]  # no half-made .venv


def test_tasks_install_is_one_line_and_shows_pip_errors_in_full(tmp_path):
    """A .venv without pip (what a failed ``python3 -m venv`` leaves on Debian) is made again; the
    install prints one line; a failing pip (here: a pyproject.toml pip cannot parse) shows all its
    output and stops without the stamp that marks an installed .venv."""
    root = project_copy(tmp_path, "[project\nname = 'x'\n")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    done = subprocess.run([sys.executable, "tasks.py", "test"], cwd=root, env=clean_env(),
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stdout == "tasks.py: installing the project into .venv (first run, about a minute)...\n"
    assert "-m pip install -q -e .[test]" in done.stderr
    assert "Expected ']' at the end of a table declaration" in done.stderr  # pip's own words, in full
    assert done.stderr.rstrip().splitlines()[-1].startswith("tasks.py: installing the project failed")
    assert subprocess.run([str(root / ".venv" / "bin" / "python"), "-m", "pip", "--version"],
                          capture_output=True).returncode == 0
    assert not (root / ".venv" / ".installed").exists()


def test_packaging_metadata_is_pep_639():
    """``license`` is an SPDX expression (PEP 639: https://peps.python.org/pep-0639/), built by a
    setuptools that reads it (77.0.0+; the TOML-table form is deprecated there:
    https://setuptools.pypa.io/en/latest/history.html#v77-0-0), with no ``License ::`` classifier."""
    from packaging.licenses import canonicalize_license_expression
    from packaging.requirements import Requirement

    text = (ROOT / "pyproject.toml").read_text()
    (license_,) = re.findall(r'(?m)^license = "([^"]+)"', text)
    assert canonicalize_license_expression(license_) == license_
    assert "\"License ::" not in text and not re.search(r"(?m)^license = \{", text)
    (requires,) = re.findall(r'(?m)^requires = \["([^"]+)"\]', text)
    setuptools = Requirement(requires)
    assert setuptools.name == "setuptools" and not setuptools.specifier.contains("77.0.2")
    assert setuptools.specifier.contains("77.0.3")


def test_cli_module_documents_the_convention():
    assert "2 drift" in cli.__doc__ and "usage error" in cli.__doc__
