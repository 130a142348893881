"""Command line: ``python -m mesh_components validate|render ...`` for people and GitOps pipelines
that have no Pulumi CLI.

Exit codes: 0 success; 1 invalid input (one ``path: message`` line per problem on stderr, never a
traceback). STACK is a stack name (``dev`` -> ``stacks/Pulumi.dev.yaml``) or a stack file path.
``validate`` prints what the spec assumes without confirming it as ``path: warning: message`` lines on
stderr (``spec.topology_warnings``) and still exits 0; with ``--strict`` it exits 2 when there is any.
It prints what the stack needs but does not create (a TLS or DNS-credentials Secret the user
supplies, ``spec.ingress_notices``) as ``path: notice: message`` lines, which never change the exit code.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import MeshError


def usage_errors_exit_1(parser: argparse.ArgumentParser, command: str) -> None:
    """Make ``parser``'s usage errors exit 1 (bad input), for commands whose exit 2 means
    something else (drift for ``diff``, warnings for ``graph --strict``)."""
    def error(message: str) -> None:
        parser.print_usage(sys.stderr)
        print(f"{command}: {message}", file=sys.stderr)
        raise SystemExit(1)

    parser.error = error  # type: ignore[method-assign]
    parser.set_defaults(_usage_error=error)  # unknown arguments are found by the top-level parser


def _print_problems(err: MeshError) -> None:
    for path, message in err.problems:
        print(f"{path}: {message}", file=sys.stderr)


def cmd_validate(args) -> int:
    from .render import render_mesh
    from .spec import load_stack

    from .spec import ingress_notices, topology_warnings

    loaded = load_stack(args.stack)
    states = render_mesh(loaded)  # translation problems are input problems too
    spec = loaded.spec
    warnings = topology_warnings(spec)
    for path, message in warnings:
        print(f"{path}: warning: {message}", file=sys.stderr)
    notices = ingress_notices(spec)
    if spec.backend.type == "linkerd":
        from .linkerd import probe_notices
        notices += sorted({n for st in states.values() for n in probe_notices(spec, st.objects)})
    for path, message in notices:  # prerequisites the user provides or confirms; never fail --strict
        print(f"{path}: notice: {message}", file=sys.stderr)
    print(f"{args.stack}: valid: mesh {spec.name!r} ({spec.backend.type} {spec.backend.chart_version}), "
          f"{len(spec.clusters)} cluster(s), {len(spec.services)} service(s), "
          f"{sum(len(s.objects) for s in states.values())} objects"
          + (f"; {len(warnings)} warning(s)" if warnings else ""))
    return 2 if warnings and args.strict else 0


def cmd_render(args) -> int:
    from .render import render_mesh, write_tree
    from .spec import load_stack

    states = render_mesh(load_stack(args.stack))
    files = write_tree(states, Path(args.out), include_secrets=args.include_secrets)
    for name, st in states.items():
        print(f"{args.out}/{name}: {len(st.objects)} objects, {len(st.releases)} Helm releases")
    print(f"wrote {len(files)} files")
    return 0


def cmd_translate(args) -> int:
    from .render import translate, write_tree
    from .spec import load_stack, load_stack_with_files

    loaded = load_stack_with_files(args.stack, args.files) if args.files else load_stack(args.stack)
    states = translate(loaded, args.to)
    files = write_tree(states, Path(args.out))
    for name, st in states.items():
        print(f"{args.out}/{name}: {len(st.objects)} {args.to} objects")
    print(f"wrote {len(files)} files")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mesh_components",
                                     description="Validate and render a service mesh stack without the Pulumi CLI.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("validate", help="check a stack spec and its SMI files")
    p.add_argument("stack", metavar="STACK", help="stack name (stacks/Pulumi.<name>.yaml) or stack file")
    p.add_argument("--strict", action="store_true", help="exit 2 when there is any warning")
    p.set_defaults(func=cmd_validate)
    usage_errors_exit_1(p, "validate")  # 2 means warnings with --strict
    p = sub.add_parser("render", help="write the desired state of every cluster as YAML")
    p.add_argument("stack", metavar="STACK", help="stack name (stacks/Pulumi.<name>.yaml) or stack file")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (DIR/<cluster>/...)")
    p.add_argument("--include-secrets", action="store_true", help="write secret values instead of redacting them")
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("translate", help="translate SMI files for another mesh, in a stack's context")
    p.add_argument("--to", required=True, choices=["istio", "linkerd", "osm"], help="target mesh")
    p.add_argument("--stack", required=True, metavar="STACK",
                   help="stack whose services, clusters and trust domain give the context")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (DIR/<cluster>/...)")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="SMI files or folders (default: the stack's own smiFiles); the stack's inline rules join them")
    p.set_defaults(func=cmd_translate)
    for optional in ("drift_cli", "graph_cli"):
        try:
            module = __import__(f"{__package__}.{optional}", fromlist=["add_parser"])
        except ImportError:
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 invalid input, 2 usage; subcommands may add more)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "_usage_error", parser.error)(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except MeshError as e:
        _print_problems(e)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug of ours: say so in one line, never a traceback
        print(f"internal error: {type(e).__name__}: {e} (please report this with the stack file)", file=sys.stderr)
        return 1
