"""Command line: ``python -m mesh_components validate|render ...`` for people and GitOps pipelines
that have no Pulumi CLI.

Exit codes, the same for every command (each ``--help`` lists its own, :func:`exit_codes_epilog`):
0 success; 1 invalid input (one ``path: message`` line per problem on stderr, never a traceback) or
a usage error (unknown flag, missing argument, bad choice, no command: :class:`CLIParser`); 2 drift
(``diff``) or findings (``--strict``) and nothing else; 130 interrupted. ``--version`` prints
:func:`package_version`. STACK is a stack name (``dev`` -> ``stacks/Pulumi.dev.yaml``) or a stack file path.
``validate`` also runs the mesh-guardrails policy pack's rules on the render and prints its findings
(``mesh_components.analysis.findings``) as ``path: severity: message [code]`` lines on stderr: ``error`` (a
policy the pack enforces: exit 1, as ``pulumi up`` with the pack would stop), ``warning`` (an advisory
policy, or what the spec assumes without confirming it, ``spec.topology_warnings``: exit 0, 2 with
``--strict``) and ``notice`` (what the stack needs but does not create, ``spec.ingress_notices``:
never changes the exit code); ``--format json`` prints one report on stdout instead.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..spec.errors import MeshError


def usage_errors_exit_1(parser: argparse.ArgumentParser, command: str) -> None:
    """Make ``parser``'s usage errors exit 1 (bad input), for commands whose exit 2 means
    something else (drift for ``diff``, warnings for ``graph --strict``)."""
    def error(message: str) -> None:
        parser.print_usage(sys.stderr)
        print(f"{command}: {message}", file=sys.stderr)
        raise SystemExit(1)

    parser.error = error  # type: ignore[method-assign]
    parser.set_defaults(_usage_error=error)  # unknown arguments are found by the top-level parser


PROG = "python -m mesh_components"
DISTRIBUTION = "mesh-components"
"""The distribution name in ``pyproject.toml`` (what ``importlib.metadata`` knows the package by)."""


def exit_codes_epilog(codes: dict[int, str]) -> str:
    """The ``--help`` epilog that lists a command's exit codes, ``{0: "valid", 1: "invalid input
    or usage error"}`` -> ``"exit codes:\\n  0    valid\\n  1    invalid input or usage error"``
    (sorted by code; a long meaning wraps under itself). Give it as ``epilog=`` to a parser made
    under :func:`build_parser` (a :class:`CLIParser`, whose help keeps text with line breaks as
    written). The convention every command follows: 0 success, 1 invalid input or usage error,
    2 drift (``diff``) or findings (``--strict``) and nothing else."""
    import textwrap

    lines = ["exit codes:"]
    for code in sorted(codes):
        first, *rest = textwrap.wrap(codes[code], width=66) or [""]
        lines.append(f"  {code:<4} {first}")
        lines += [f"       {more}" for more in rest]
    return "\n".join(lines)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help layout, except that text written with line breaks (the exit-code epilogs
    of :func:`exit_codes_epilog`) is kept as written, as ``RawDescriptionHelpFormatter`` does; a
    description written as one line is still wrapped to the terminal, as the default does."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip("\n"):
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


class CLIParser(argparse.ArgumentParser):
    """The parser of the CLI and (``add_subparsers`` makes its sub-parsers of the parent's class)
    of every command: usage errors (unknown flag, missing argument, bad choice, no command) print
    the usage and ``<command>: <message>`` on stderr and exit 1, because exit 2 means drift or
    findings here, not argparse's usage error (https://docs.python.org/3/library/argparse.html#argparse.ArgumentParser.error:
    "prints a usage message ... and terminates the program with a status code of 2", which this
    overrides); help uses :class:`HelpFormatter`."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        command = self.prog[len(PROG) + 1:] if self.prog.startswith(PROG + " ") else self.prog
        print(f"{command}: {message}", file=sys.stderr)
        raise SystemExit(1)


def package_version() -> str:
    """This package's version: the installed distribution's (``importlib.metadata``), else, in a
    source checkout that is not installed, ``version`` in the ``[project]`` table of the
    ``pyproject.toml`` beside the package, else ``"0+unknown"``. Never raises."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    import re

    try:
        text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "0+unknown"
    project = re.search(r"(?ms)^\[project\]\s*$(.*?)(?=^\[|\Z)", text)
    found = project and re.search(r'(?m)^version\s*=\s*"([^"\n]+)"', project.group(1))
    return found.group(1) if found else "0+unknown"


class _VersionAction(argparse.Action):
    """``--version``: print ``mesh-components <version>`` and exit 0. Looked up only when asked
    (``importlib.metadata`` costs tens of milliseconds, which every other run would pay)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show the package version and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{DISTRIBUTION} {package_version()}")
        parser.exit(0)


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush finds no broken pipe (as the
    Python documentation's note on SIGPIPE does)."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a file descriptor (tests)
        pass


def _print_problems(err: MeshError) -> None:
    for path, message in err.problems:
        print(f"{path}: {message}", file=sys.stderr)


def _policy_pack_config(args):
    """The pack configuration ``validate`` runs the guardrails with: ``--policy-pack-config FILE``,
    else the stack project's ``policies/mesh-guardrails/config.<stack>.json`` when it exists
    (``findings.default_policy_pack_config``), else the pack's own levels."""
    from ..analysis.findings import default_policy_pack_config, read_policy_pack_config
    from ..spec import resolve_stack_file

    if args.policy_pack_config is not None:
        return read_policy_pack_config(Path(args.policy_pack_config), args.policy_pack_config)
    found = default_policy_pack_config(resolve_stack_file(args.stack))
    if found is None:
        return read_policy_pack_config(None)
    try:
        shown = str(found.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(found)
    return read_policy_pack_config(found, shown)


def validate_report(args) -> tuple[int, dict]:
    """Run ``validate`` for ``args`` (``stack``, ``strict``, ``policy_pack_config``): returns the
    exit code and the report (:func:`cmd_validate`'s JSON shape). Raises :class:`MeshError` for
    invalid input (the stack, its SMI files, the pack config, a suppression the pack would not honour)."""
    from ..analysis import findings as fnd
    from ..core.render import render_mesh
    from ..spec import load_stack

    config = _policy_pack_config(args)
    loaded = load_stack(args.stack)
    states = render_mesh(loaded)  # translation problems are input problems too
    found = fnd.validation_findings(loaded, states, config)
    code = fnd.exit_code(found, args.strict)
    spec = loaded.spec
    return code, {
        "stack": args.stack, "valid": code != 1, "mesh": spec.name,
        "backend": {"type": spec.backend.type, "chartVersion": spec.backend.chart_version},
        "clusters": len(spec.clusters), "services": len(spec.services),
        "objects": sum(len(s.objects) for s in states.values()), "policyPackConfig": config.source,
        "counts": fnd.counts(found), "findings": [f.to_dict() for f in found], "problems": []}


def _json_report(report: dict) -> None:
    import json

    sys.stdout.write(json.dumps(report, indent=2) + "\n")


def gc_paused(command):
    """Run the CLI command ``command`` with the cyclic garbage collector paused
    (``render.cyclic_gc_paused``): parsing, rendering and writing a large mesh keep millions of
    objects alive, and each full collection walks them all (benchmarks/README.md)."""
    def run(args) -> int:
        from ..core.render import cyclic_gc_paused
        with cyclic_gc_paused():
            return command(args)
    run.__name__, run.__doc__ = command.__name__, command.__doc__
    return run


@gc_paused
def cmd_validate(args) -> int:
    """``validate``: load and render the stack, run the mesh-guardrails policies on the render
    (``mesh_components.analysis.findings``) and say what it finds. Text: one ``path: severity: message
    [code]`` line per finding not suppressed on stderr, then the summary (stdout when deployable,
    stderr when not). ``--format json``: only the report on stdout, ``{schemaVersion, stack,
    valid, mesh, backend, clusters, services, objects, policyPackConfig, counts: {error, warning,
    notice, suppressed}, findings: [{code, severity, path, message, resources, suppressed,
    reason}], problems: [{path, message, file?, line?, column?}]}`` (``problems`` for invalid
    input, then ``mesh`` and the counts of the render are null). ``path`` is the spec field alone
    (``mesh.services[0].ports[0].port``); where the loader placed it in the stack or an SMI file,
    ``file``, ``line`` and ``column`` (1-based) say where, as the text form's ``file:line:column:
    path`` prefix does (``findings.place_fields``; a file that is not YAML has the file as
    ``path``). Exit: 1 invalid input or an error finding (``pulumi up`` with
    the pack would stop), 2 with ``--strict`` and a warning, else 0 (notices never count)."""
    if args.format == "json":
        from ..analysis.findings import problem_dict

        try:
            code, report = validate_report(args)
        except MeshError as e:
            code, report = 1, {"stack": args.stack, "valid": False, "mesh": None, "backend": None, "clusters": None,
                               "services": None, "objects": None, "policyPackConfig": None, "counts": None,
                               "findings": [], "problems": [problem_dict(p, m) for p, m in e.problems]}
        _json_report({"schemaVersion": 1, **report})
        return code
    code, report = validate_report(args)
    for f in report["findings"]:
        if not f["suppressed"]:
            print(f"{f['path']}: {f['severity']}: {f['message']} [{f['code']}]", file=sys.stderr)
    c = report["counts"]
    config = f", guardrails with {report['policyPackConfig']}" if report["policyPackConfig"] else ""
    tail = (f"; {c['warning']} warning(s)" if c["warning"] else "") + (f"; {c['suppressed']} suppressed"
                                                                        if c["suppressed"] else "")
    if c["error"]:
        print(f"{args.stack}: not deployable: {c['error']} error(s) from policies the mesh-guardrails pack "
              f"enforces (pulumi up --policy-pack policies/mesh-guardrails stops on them){config}{tail}",
              file=sys.stderr)
        return code
    print(f"{args.stack}: valid: mesh {report['mesh']!r} ({report['backend']['type']} "
          f"{report['backend']['chartVersion']}), {report['clusters']} cluster(s), {report['services']} service(s), "
          f"{report['objects']} objects{config}{tail}")
    return code


def _stream_cluster(args, clusters: list[str]) -> str | None:
    """The cluster ``--out -`` streams (``render.select_cluster``), or None for a folder render, where
    ``--cluster`` is a usage error: a folder render writes every cluster."""
    from ..core.render import OutputError, select_cluster

    if args.out == "-":
        return select_cluster(clusters, args.cluster)
    if args.cluster is not None:
        raise OutputError([("--cluster", "only with --out - (a folder render writes every cluster): "
                                         "drop --cluster, or stream with --out -")])
    return None


def _stream(states, cluster: str, include_secrets: bool = False) -> int:
    """Write cluster ``cluster``'s objects to stdout as one multi-document YAML; what is not in it
    (Helm releases, remote manifests, objects holding deploy-time placeholders) and any Secret value
    in the clear are said on stderr."""
    from ..core.render import DEPLOY_TIME_DIR, RELEASES_DIR, cluster_stream_and_left_out, holds_secret_values

    st = states[cluster]
    # whole first: never half a stream
    text, left_out = cluster_stream_and_left_out(cluster, st, include_secrets=include_secrets)
    sys.stdout.write(text)
    if left_out:
        shown = ", ".join(f"{o['kind']} {o['metadata'].get('namespace') or '-'}/{o['metadata']['name']}"
                          for o in left_out)
        print(f"-: notice: cluster {cluster}: not in the stream: {shown}, which hold deploy-time placeholders that "
              "pulumi up fills in (applied as they are, they would replace live values such as CA keys and "
              f"credentials with placeholder text); a folder render writes them to DIR/{cluster}/{DEPLOY_TIME_DIR}/",
              file=sys.stderr)
    if st.releases or st.remote_manifests:
        print(f"-: notice: cluster {cluster}: {len(st.objects) - len(left_out)} objects on stdout; not in the stream, "
              f"not being Kubernetes objects: {len(st.releases)} Helm release(s) and {len(st.remote_manifests)} remote "
              f"manifest(s) (Gateway API CRDs), which a folder render writes to DIR/{cluster}/{RELEASES_DIR}/",
              file=sys.stderr)
    not_streamed = {id(o) for o in left_out}
    clear = [f"{o['metadata'].get('namespace')}/{o['metadata']['name']}" for o in st.objects
             if include_secrets and holds_secret_values(o) and id(o) not in not_streamed]
    if clear:
        print(f"-: notice: secret values in the clear on stdout (--include-secrets): Secret {', '.join(clear)}",
              file=sys.stderr)
    return 0


def _secrets_notice(states, out: str) -> None:
    """Say on stderr which files of a ``--include-secrets`` render hold secret values in the clear."""
    from ..core.render import DEPLOY_TIME_DIR, holds_deploy_time_values, holds_secret_values, object_filename

    clear = [Path(out) / name / (DEPLOY_TIME_DIR if holds_deploy_time_values(o) else "") / object_filename(o)
             for name, st in states.items() for o in st.objects if holds_secret_values(o)]
    for path in clear:
        print(f"{path}: notice: secret values in the clear (--include-secrets; files 0600, folders 0700): "
              "keep it out of version control and CI logs", file=sys.stderr)
    if not clear:
        print(f"{out}: notice: --include-secrets: no secret value in the clear (CA keys and credentials are "
              "deploy-time placeholders); files 0600, folders 0700", file=sys.stderr)


@gc_paused
def cmd_render(args) -> int:
    from ..core.render import DEPLOY_TIME_DIR, RELEASES_DIR, render_mesh, write_tree
    from ..spec import load_stack

    loaded = load_stack(args.stack)
    cluster = _stream_cluster(args, [c.name for c in loaded.spec.clusters])
    states = render_mesh(loaded)
    if cluster is not None:
        return _stream(states, cluster, args.include_secrets)
    files = write_tree(states, Path(args.out), include_secrets=args.include_secrets)
    for name, st in states.items():
        later = sum(1 for f in files if f.parent.name == DEPLOY_TIME_DIR and f.parent.parent.name == name)
        print(f"{args.out}/{name}: {len(st.objects)} objects"
              + (f", {later} of them in {name}/{DEPLOY_TIME_DIR}/ (deploy-time values: filled in by pulumi up; "
                 "not for kubectl)" if later else "")
              + f", {len(st.releases)} Helm releases (in {name}/{RELEASES_DIR}/)")
    print(f"wrote {len(files)} files")
    if args.include_secrets:
        _secrets_notice(states, args.out)
    return 0


@gc_paused
def cmd_translate(args) -> int:
    from ..core.render import translate, write_tree
    from ..spec import load_stack, load_stack_with_files

    loaded = load_stack_with_files(args.stack, args.files) if args.files else load_stack(args.stack)
    cluster = _stream_cluster(args, [c.name for c in loaded.spec.clusters])
    states = translate(loaded, args.to)
    if cluster is not None:
        return _stream(states, cluster)
    files = write_tree(states, Path(args.out))
    for name, st in states.items():
        print(f"{args.out}/{name}: {len(st.objects)} {args.to} objects")
    print(f"wrote {len(files)} files")
    return 0


OPTIONAL_COMMANDS = {"drift_cli": "diff", "graph_cli": "graph", "workload_bootstrap": "workload-bootstrap"}
"""Commands in modules of their own (module -> command), imported when the parser is built; one
whose import fails is still listed and says why when run (:func:`_add_unavailable`)."""


def unavailable_message(command: str, error: ImportError) -> str:
    """``COMMAND: unavailable: <the import error>`` plus which package is missing and how to get it:
    ``"diff: unavailable: No module named 'kubernetes' (the package 'kubernetes' is missing: install
    the project with its dependencies, e.g. .venv/bin/pip install -e .)"``. The package is the
    top-level module :attr:`ImportError.name` names (https://docs.python.org/3/library/exceptions.html#ImportError)."""
    missing = (error.name or "").partition(".")[0]
    what = (f"the package {missing!r} is missing" if missing and missing != __package__.partition(".")[0]
            else "a module of this package failed to import")
    return (f"{command}: unavailable: {error} ({what}: install the project with its dependencies, e.g. "
            f".venv/bin/pip install -e .)")


def _add_unavailable(sub, command: str, error: ImportError) -> None:
    """Register ``command`` as one that cannot run: it takes any arguments, and running it prints
    :func:`unavailable_message` on stderr and exits 1 (bad set-up is not drift nor findings)."""
    message = unavailable_message(command, error)

    def run(args) -> int:
        print(message, file=sys.stderr)
        return 1

    def refuse(_usage_problem: str):  # whatever the arguments: the command cannot run
        raise SystemExit(run(None))

    p = sub.add_parser(command, help=f"unavailable here: {error}", description=message,
                       epilog=exit_codes_epilog({1: "unavailable (a package it needs is missing)"}))
    p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=run)
    p.error = refuse  # type: ignore[method-assign]


def _add_output_arguments(p: argparse.ArgumentParser) -> None:
    """``--out DIR|-`` and ``--cluster NAME``, the render layout both ``render`` and ``translate`` write
    (``render.write_tree``, ``render.cluster_stream``)."""
    p.add_argument("--out", required=True, metavar="DIR|-",
                   help=("output folder, replaced whole only when the render succeeds: DIR/<cluster>/ holds the "
                         "Kubernetes objects (kubectl apply -f DIR/<cluster>), DIR/<cluster>/deploy-time/ those "
                         "holding deploy-time placeholders (filled in by pulumi up; not for kubectl), "
                         "DIR/<cluster>/releases/ the Helm releases and remote manifests; '-' streams one "
                         "cluster's objects (not those of deploy-time/) to stdout as "
                         "multi-document YAML (a folder named '-': ./-)"))
    p.add_argument("--cluster", metavar="NAME",
                   help="with --out -: the cluster to stream (required when the stack has several)")


def build_parser() -> argparse.ArgumentParser:
    parser = CLIParser(prog=PROG, description="Validate and render a service mesh stack without the Pulumi CLI.",
                       epilog=exit_codes_epilog({
                           0: "success",
                           1: "invalid input (one 'path: message' line per problem on stderr), or a usage error "
                              "(unknown flag, missing argument, bad choice, no command)",
                           2: "drift (diff) or findings (validate --strict, graph --strict); nothing else",
                           130: "interrupted"}) + f"\n\n'{PROG} COMMAND --help' shows a command's options.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")  # sub-parsers are CLIParsers
    p = sub.add_parser(
        "validate", help="check a stack spec, its SMI files and what the guardrails policy pack would refuse",
        description=("Load, render and check a stack; run the mesh-guardrails policy pack's rules on the "
                     "rendered resources as pulumi preview --policy-pack would. Findings have a code (the "
                     "pack's policy names, e.g. mtls-strict, no-allow-all, and unconfirmed-flat-network, "
                     "ingress-prerequisite, linkerd-probe-paths) and a severity: error (a policy the pack "
                     "enforces as mandatory: pulumi up would stop), warning (an advisory policy, an "
                     "unconfirmed topology), notice (a prerequisite the stack does not create). Suppress a "
                     "code with mesh.validation.suppress: [{code, reason}] (never one the pack enforces)."),
        epilog=exit_codes_epilog({0: "deployable: no error finding (warnings and notices do not count)",
                                  1: "invalid input (stack, SMI files, policy pack config, a suppression of a "
                                     "mandatory policy), an error finding (the policy pack would stop pulumi "
                                     "up), or a usage error",
                                  2: "with --strict: no error, but a warning finding"}))
    p.add_argument("stack", metavar="STACK", help="stack name (stacks/Pulumi.<name>.yaml) or stack file")
    p.add_argument("--strict", action="store_true", help="exit 2 when there is a warning finding (and no error)")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text (default): findings as 'path: severity: message [code]' lines on stderr; json: "
                        "one report on stdout (README: 'validate --format json')")
    p.add_argument("--policy-pack-config", metavar="FILE",
                   help="the policy pack config (JSON, as pulumi preview --policy-pack-config takes) giving "
                        "enforcement levels and limits; default: policies/mesh-guardrails/config.<stack>.json "
                        "of the stack's project when it exists, else every policy mandatory")
    p.set_defaults(func=cmd_validate)
    usage_errors_exit_1(p, "validate")  # 2 means warnings with --strict
    p = sub.add_parser("render", help="write the desired state of every cluster as YAML",
                       epilog=exit_codes_epilog({0: "rendered and written",
                                                 1: "invalid input, a policy the mesh cannot render exactly, "
                                                    "an output that cannot be written, or a usage error"}))
    p.add_argument("stack", metavar="STACK", help="stack name (stacks/Pulumi.<name>.yaml) or stack file")
    _add_output_arguments(p)
    p.add_argument("--include-secrets", action="store_true",
                   help="write secret values instead of redacting them (files 0600, folders 0700)")
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("translate", help="translate SMI files for another mesh, in a stack's context",
                       epilog=exit_codes_epilog({0: "translated and written",
                                                 1: "invalid input, a policy the target mesh cannot express "
                                                    "exactly, an output that cannot be written, or a usage error"}))
    p.add_argument("--to", required=True, choices=["istio", "linkerd", "osm"], help="target mesh")
    p.add_argument("--stack", required=True, metavar="STACK",
                   help="stack whose services, clusters and trust domain give the context")
    _add_output_arguments(p)
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="SMI files or folders (default: the stack's own smiFiles); the stack's inline rules join them")
    p.set_defaults(func=cmd_translate)
    for optional, command in OPTIONAL_COMMANDS.items():
        try:
            module = __import__(f"{__package__}.{optional}", fromlist=["add_parser"])
        except ImportError as e:  # e.g. a dependency missing from a partial install: say so when run
            _add_unavailable(sub, command, e)
            continue
        module.add_parser(sub)
    for command in sub.choices.values():  # an unknown flag is found by the top-level parser: report it as the command's
        command.set_defaults(_usage_error=command.error)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``); returns the exit code: 0 success, 1
    invalid input, 2 drift (``diff``) or findings (``--strict``), 130 interrupted. A usage error
    (unknown flag, missing argument, bad choice, no command) raises ``SystemExit(1)`` after printing
    the usage and ``<command>: <message>`` on stderr; ``--help`` and ``--version`` raise
    ``SystemExit(0)``."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "_usage_error", parser.error)(f"unrecognized arguments: {' '.join(extra)}")
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not as "Exception ignored" at exit
        return code
    except BrokenPipeError:  # the reader went away (`... | head`): https://docs.python.org/3/library/signal.html#note-on-sigpipe
        _drop_stdout()
        return 1
    except MeshError as e:
        _print_problems(e)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug of ours: say so in one line, never a traceback
        print(f"internal error: {type(e).__name__}: {e} (please report this with the stack file)", file=sys.stderr)
        return 1
