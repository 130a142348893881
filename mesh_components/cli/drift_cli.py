"""``python -m mesh_components diff``: desired (the stack, rendered) against live, per cluster.

Usage::

    python -m mesh_components diff STACK [--live DIR | --kubeconfig [CLUSTER=]PATH ...]
                                   [--context CLUSTER=CONTEXT ...] [--cluster NAME ...]
                                   [--format text|json|markdown] [--output FILE] [--no-intent]

Live state comes from ``--live DIR`` (one ``kubectl get -o yaml`` dump per cluster, see
``mesh_components.drift.live``) or from the clusters themselves, one LIST per kind and cluster. The
kubeconfig of a cluster is, in order: ``--kubeconfig CLUSTER=PATH``; ``--kubeconfig PATH``; the
stack's ``clusters[i].kubeconfig`` (``file`` or ``env``). Its context: ``--context CLUSTER=CTX``;
the stack's ``kubeconfig.context``; a context named like the cluster; else the file's current context,
unless one ``--kubeconfig PATH`` serves several clusters (then a context must be named).

Intent findings include what the stack assumes of the running workloads (``workload-*`` checks,
``mesh_components.drift.workloads``: pods per declared service, their service account, namespace
enrolment, proxies), from the Pods listed (one LIST per cluster) or dumped.

Exit codes: 0 no drift, 2 drift (any difference, or an intent finding the stack does not
declare) and nothing else, 1 error (bad stack, unreadable or ambiguous dump, an object whose
envelope is not a Kubernetes object's, ``live.envelope_problems``, unreachable cluster) or usage
error (unknown flag, missing argument): ``path: message`` lines on stderr, never a traceback.
A live field below the envelope may hold any JSON shape: it is compared as it is (drift).
``--help`` lists them.

Secrets: every report, in each format, goes through ``diff.redact_report`` first (the nightly
workflow posts reports publicly): Helm values, Secret data and any other field or text that holds
a key, password, token or credential shows as ``<redacted #N>`` (equal values, equal ``N``), so a
changed secret is still reported as changed. Error lines on stderr are redacted the same way.

JSON (``--format json``): ``{"stack", "mesh", "drift": bool, "summary": {"missing", "changed",
"orphaned", "releases", "findings"}, "clusters": [{"cluster", "missing": [ref], "changed":
[ref + "changes": [{"path", "desired"?, "live"?}]], "orphaned": [ref], "releases": [{"namespace",
"name", "state", "changes"?}], "notes": [str]}], "findings": [{"check", "cluster", "subject",
"message", "declared"}]}`` where ``ref`` = ``{"apiVersion", "kind", "namespace", "name", "state"}``;
a side that is absent is left out of a change.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from . import exit_codes_epilog, usage_errors_exit_1
from ..drift.diff import (MISSING, ClusterReport, DriftReport, FieldChange, ObjectDrift, diff_cluster, redact_report, redact_text, to_jsonable)
from ..spec.errors import MeshError, Problem
from ..drift.intent import ClusterView, check_intent
from ..drift.live import (UNCONSTRUCTIBLE, LiveError, LiveState, client_for, kinds_to_read, kubeconfig_contexts, read_cluster, read_crds, read_dump_dir, yaml_error_text)

__all__ = ["add_parser", "run", "build_report", "read_live_clusters", "resolve_kubeconfigs",
           "format_text", "format_json", "format_markdown", "FORMATTERS"]


# ---------------------------------------------------------------------------------------------
# argparse


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``diff`` sub-command on ``subparsers`` (from ``add_subparsers()``); sets
    ``func=run``."""
    p = subparsers.add_parser(
        "diff", help="compare the stack with what runs in its clusters (drift report)",
        description="Compare the stack's desired state with the live clusters or with kubectl "
                    "dumps. Secret values are never printed: they show as <redacted #N>.",
        epilog=exit_codes_epilog({0: "no drift", 1: "error (bad stack, unreadable or ambiguous dump, "
                                                    "unreachable cluster) or usage error",
                                  2: "drift: a difference, or an intent finding the stack does not declare"}))
    p.add_argument("stack", metavar="STACK", help="stack name (stacks/Pulumi.<name>.yaml) or stack file")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--live", metavar="DIR",
                     help="directory of dumps: DIR/<cluster>.yaml (kind: List or multi-document "
                          "YAML from 'kubectl get ... -A -o yaml'), or DIR/<cluster>/*.yaml")
    src.add_argument("--kubeconfig", action="append", default=[], metavar="[CLUSTER=]PATH",
                     help="kubeconfig for all clusters, or for one (repeatable)")
    p.add_argument("--context", action="append", default=[], metavar="CLUSTER=CONTEXT",
                   help="kubeconfig context of a cluster (default: a context named like it)")
    p.add_argument("--cluster", action="append", default=[], metavar="NAME",
                   help="only these clusters (repeatable; default: all)")
    p.add_argument("--format", choices=sorted(FORMATTERS), default="text")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("--no-intent", action="store_true", help="skip the cross-cluster intent checks")
    p.set_defaults(func=run)

    usage_errors_exit_1(p, "diff")  # 2 means drift
    return p


# ---------------------------------------------------------------------------------------------
# report


def _parts(state: Any) -> tuple[list, list]:
    if isinstance(state, Mapping):
        return list(state.get("objects") or []), list(state.get("releases") or [])
    if isinstance(state, tuple):
        return list(state[0]), list(state[1])
    return list(state.objects), list(getattr(state, "releases", []) or [])


def build_report(stack: str, mesh: str, desired: Mapping[str, Any], live: Mapping[str, LiveState],
                 intent: bool = True, spec: Any = None) -> DriftReport:
    """The :class:`DriftReport` of ``desired`` (cluster -> ``render.ClusterState``, or
    ``{"objects", "releases"}``, or ``(objects, releases)``) against ``live`` (cluster ->
    :class:`LiveState`); clusters absent from ``live`` are skipped. With ``spec`` (the stack's
    ``MeshSpec``) and ``intent``, the workloads of clusters whose Pods were read are checked too
    (``workloads.check_workloads``). Live Pods are never diffed as objects (the mesh declares
    none). The report comes back redacted (``diff.redact_report``). Pure."""
    from ..drift.workloads import check_workloads, is_pod

    clusters: list[ClusterReport] = []
    gateway_findings: list = []
    pod_views: dict[str, list] = {}
    d_views, l_views = {}, {}
    for cluster in desired:
        if cluster not in live:
            continue
        objects, releases = _parts(desired[cluster])
        state = live[cluster]
        crd_findings, crd_notes = _gateway_api_check(cluster, desired[cluster], state)
        gateway_findings += crd_findings
        clusters.append(diff_cluster(cluster, mesh, objects, [o for o in state.objects if not is_pod(o)], releases,
                                     state.releases, list(state.notes) + crd_notes))
        if state.pods_read:
            pod_views[cluster] = state.objects
        d_views[cluster] = ClusterView(objects, releases)
        l_views[cluster] = ClusterView(state.objects, list((state.releases or {}).values()),
                                       state.releases is not None)
    workload_findings = check_workloads(spec, pod_views) if spec is not None and intent else []
    findings = sorted(check_intent(d_views, l_views) + gateway_findings + workload_findings,
                      key=lambda f: (f.declared, f.check, f.cluster or "", f.subject)) if intent else []
    return redact_report(DriftReport(stack, mesh, tuple(clusters), tuple(findings)))


def _gateway_needs(state: Any) -> Any:
    """The :class:`~mesh_components.core.gateway_api.Needs` of a desired cluster state, if any."""
    return state.get("gateway_api") if isinstance(state, Mapping) else getattr(state, "gateway_api", None)


def _gateway_api_check(cluster: str, state: Any, live: LiveState) -> tuple[list, list[str]]:
    """``gateway_api.check_crds`` on the CRDs read by name (``live.crds``), else on those among a
    dump's objects (none there: the check is noted as not run)."""
    from ..core.gateway_api import check_crds

    n = _gateway_needs(state)
    if n is None:
        return [], []
    crds = live.crds if live.crds is not None else [o for o in live.objects if o.get("kind") == "CustomResourceDefinition"]
    return check_crds(cluster, n, [_crd_view(c) for c in crds], read=live.crds is not None)


def _crd_view(crd: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a live CustomResourceDefinition that ``gateway_api.check_crds`` reads, in the
    shape of the API (apiextensions.k8s.io/v1: ``spec.group`` and ``spec.names.kind`` strings,
    ``spec.versions[]`` with a ``name`` string and a ``served`` boolean,
    https://kubernetes.io/docs/reference/kubernetes-api/extend-resources/custom-resource-definition-v1/).
    A live object may hold any JSON shape below its envelope (a hand-edited dump): a CRD whose
    group or kind is not a string names no kind here (so what needs it is reported as not
    installed), a version without a string name is left out, ``served`` counts only when ``true``."""
    def mapping(v: Any) -> Mapping[str, Any]:
        return v if isinstance(v, Mapping) else {}

    spec, meta = mapping(crd.get("spec")), mapping(crd.get("metadata"))
    group, kind = spec.get("group"), mapping(spec.get("names")).get("kind")
    versions = spec.get("versions") if isinstance(spec.get("versions"), list) else []
    view_spec = {"group": group, "names": {"kind": kind},
                 "versions": [{"name": v["name"], "served": v.get("served") is True} for v in versions
                              if isinstance(v, Mapping) and isinstance(v.get("name"), str)]
                 } if isinstance(group, str) and isinstance(kind, str) else {}
    annotations = {k: v for k, v in mapping(meta.get("annotations")).items() if isinstance(k, str) and isinstance(v, str)}
    return {"apiVersion": crd.get("apiVersion"), "kind": crd.get("kind"),
            "metadata": {"name": meta.get("name"), "annotations": annotations}, "spec": view_spec}


# ---------------------------------------------------------------------------------------------
# live state


def _pairs(values: Iterable[str], what: str) -> tuple[dict[str, str], list[str], list[Problem]]:
    named, bare, problems = {}, [], []
    for v in values:
        if "=" in v and not os.path.exists(v):
            k, _, rest = v.partition("=")
            if not k or not rest:
                problems.append((f"--{what}", f"{v!r}: expected CLUSTER={what.upper()}"))
            named[k] = rest
        else:
            bare.append(v)
    return named, bare, problems


def resolve_kubeconfigs(clusters: list[Any], kubeconfig_args: list[str], context_args: list[str],
                        environ: Mapping[str, str] = os.environ,
                        known: Iterable[str] | None = None) -> dict[str, tuple[Any, str | None]]:
    """cluster name -> ``(kubeconfig path or parsed mapping, context or None)`` following the
    order in the module doc. ``clusters`` are the spec's ``Cluster`` models. Raises
    :class:`LiveError` naming every cluster that has no usable kubeconfig or context."""
    problems: list[Problem] = []
    by_cluster, bare, p1 = _pairs(kubeconfig_args, "kubeconfig")
    contexts, bare_ctx, p2 = _pairs(context_args, "context")
    problems += p1 + p2
    problems += [("--context", f"{c!r}: expected CLUSTER=CONTEXT") for c in bare_ctx]
    if len(bare) > 1:
        problems.append(("--kubeconfig", "give one PATH for all clusters, or CLUSTER=PATH per cluster"))
    names = list(known) if known is not None else [c.name for c in clusters]
    for unknown in sorted((set(by_cluster) | set(contexts)) - set(names)):
        problems.append((f"--kubeconfig/--context {unknown}", f"no cluster {unknown!r} in the stack "
                                                              f"(clusters: {', '.join(names)})"))
    out: dict[str, tuple[Any, str | None]] = {}
    for i, c in enumerate(clusters):
        src = getattr(c, "kubeconfig", None)
        where = f"mesh.clusters[{i}].kubeconfig"
        config: Any = by_cluster.get(c.name) or (bare[0] if bare else None)
        shared = c.name not in by_cluster and bool(bare)
        context = contexts.get(c.name) or (getattr(src, "context", None) if src else None)
        if config is None and src is not None:
            if getattr(src, "file", None):
                config = os.path.expandvars(os.path.expanduser(src.file))
            elif getattr(src, "env", None):
                text = environ.get(src.env)
                if not text:
                    problems.append((where, f"environment variable {src.env} is not set; pass --kubeconfig"))
                    continue
                try:
                    config = text if os.path.exists(text) else yaml.safe_load(text)
                except yaml.YAMLError as e:  # never echo the text: it holds tokens and keys
                    problems.append((where, f"environment variable {src.env} is neither a file nor a "
                                            f"kubeconfig: {yaml_error_text(e)}"))
                    continue
                except (ValueError, TypeError, AttributeError, KeyError, OverflowError, RecursionError):
                    problems.append((where, f"environment variable {src.env} is neither a file nor a "
                                            f"kubeconfig: {UNCONSTRUCTIBLE}"))
                    continue
                if not isinstance(config, (str, Mapping)):
                    problems.append((where, f"environment variable {src.env} is neither a file nor a "
                                            f"kubeconfig (expected a path or a YAML mapping)"))
                    continue
            else:
                problems.append((where, f"cluster {c.name!r} gets its kubeconfig from a stack reference, "
                                        f"which diff cannot read; pass --kubeconfig {c.name}=PATH"))
                continue
        if config is None:
            problems.append((where, f"no kubeconfig for cluster {c.name!r}: pass --kubeconfig or "
                                    f"--live, or set kubeconfig.file in the stack"))
            continue
        if context is None and not isinstance(config, Mapping):
            try:
                available, _current = kubeconfig_contexts(config)
            except LiveError as e:
                problems += e.problems
                continue
            if c.name in available:
                context = c.name
            elif shared and len(clusters) > 1:
                problems.append((str(config), f"no context for cluster {c.name!r}: pass --context "
                                              f"{c.name}=CONTEXT (contexts: {', '.join(available) or 'none'})"))
                continue
        out[c.name] = (config, context)
    if problems:
        raise LiveError(problems)
    return out


def read_live_clusters(kubeconfigs: Mapping[str, tuple[Any, str | None]], desired: Mapping[str, Any],
                       client_factory: Callable[..., Any] = client_for) -> dict[str, LiveState]:
    """Read every cluster of ``kubeconfigs`` (one LIST per kind: the kinds its desired objects use
    plus ``live.WATCHED_KINDS``), and the Gateway API CRDs its desired state needs, by name
    (``live.read_crds``). Raises :class:`LiveError` with the problems of all clusters."""
    out: dict[str, LiveState] = {}
    problems: list[Problem] = []
    for cluster, (config, context) in kubeconfigs.items():
        objects, _ = _parts(desired[cluster])
        try:
            client = client_factory(config, context)
            try:
                out[cluster] = read_cluster(client, kinds_to_read(objects),
                                            declared_kinds=[(o.get("apiVersion"), o.get("kind")) for o in objects])
                if (n := _gateway_needs(desired[cluster])) is not None and n.versions:
                    from ..core.gateway_api import crd_name

                    crds, requests = read_crds(client, sorted({crd_name(k) for k, _, _ in n.versions}))
                    out[cluster].crds = crds
                    out[cluster].requests += requests
            finally:
                close = getattr(client, "close", None)
                if close:
                    close()
        except LiveError as e:
            problems += [(f"cluster {cluster}: {p}", m) for p, m in e.problems]
    if problems:
        raise LiveError(problems)
    return out


# ---------------------------------------------------------------------------------------------
# formatters


def _value(v: Any, limit: int = 120) -> str:
    if v is MISSING:
        return "<absent>"
    text = json.dumps(to_jsonable(v), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _change_line(c: FieldChange) -> str:
    if c.desired is MISSING:
        return f"{c.path}: not declared, live {_value(c.live)}"
    if c.live is MISSING:
        return f"{c.path}: desired {_value(c.desired)}, absent in cluster"
    return f"{c.path}: desired {_value(c.desired)}, live {_value(c.live)}"


def _headline(report: DriftReport) -> str:
    s = report.summary()
    total = sum(s.values())
    return (f"{'DRIFT' if report.has_drift else 'no drift'}: {s['missing']} missing, {s['changed']} changed, "
            f"{s['orphaned']} orphaned, {s['releases']} Helm release(s), {s['findings']} intent finding(s)"
            + (f" ({total} in all)" if total else ""))


def format_text(report: DriftReport) -> str:
    """The report for people: one block per cluster, one line per object, indented field changes.
    Redacted first (``diff.redact_report``), whatever the caller did."""
    report = redact_report(report)
    lines = [f"drift report for stack {report.stack} (mesh {report.mesh})", _headline(report), ""]
    for c in report.clusters:
        if not c.count:
            lines.append(f"cluster {c.cluster}: no drift")
        else:
            lines.append(f"cluster {c.cluster}: {c.count} difference(s)")
        for d in (*c.missing, *c.changed, *c.orphaned):
            label = {"missing": "missing in cluster", "changed": "changed",
                     "orphaned": "orphaned (owned, not declared)"}[d.state]
            lines.append(f"  {label:<31} {d.ref}")
            lines += [f"      {_change_line(ch)}" for ch in d.changes]
        for r in c.releases:
            lines.append(f"  {'helm release ' + r.state:<31} {r.namespace}/{r.name}")
            lines += [f"      {_change_line(ch)}" for ch in r.changes]
        lines += [f"  note: {n}" for n in c.notes]
    live = [f for f in report.findings if not f.declared]
    declared = [f for f in report.findings if f.declared]
    if live:
        lines += ["", "intent findings:"]
        lines += [f"  [{f.check}] {f.cluster or 'all clusters'}: {f.subject}: {f.message}" for f in live]
    if declared:
        lines += ["", "declared by the stack (not drift):"]
        lines += [f"  [{f.check}] {f.cluster or 'all clusters'}: {f.subject}: {f.message}" for f in declared]
    return "\n".join(lines) + "\n"


def format_json(report: DriftReport) -> str:
    """The report for machines: :meth:`DriftReport.to_dict` as indented JSON (schema in the module
    doc), redacted first (``diff.redact_report``)."""
    return json.dumps(redact_report(report).to_dict(), indent=2, ensure_ascii=False) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md(text: str) -> str:
    """``text`` for Markdown outside code: ``<`` escaped, or GitHub would drop ``<redacted #1>``
    as an unknown HTML tag and the reader would not see that something was hidden."""
    return _md_cell(text).replace("<", "&lt;")


def _md_code(text: str) -> str:
    return "`" + _md_cell(text).replace("`", "'") + "`"


def _md_ref(d: ObjectDrift) -> str:
    where = f"{d.ref.namespace}/{d.ref.name}" if d.ref.namespace else d.ref.name
    return f"| {d.state} | {d.ref.kind} | {_md_code(where)} | {d.ref.api_version} |"


def format_markdown(report: DriftReport) -> str:
    """The report as a pull-request comment: a summary line, a table per cluster with drift, the
    field changes in collapsible ``<details>`` blocks, then the intent findings. Redacted first
    (``diff.redact_report``)."""
    report = redact_report(report)
    icon = ":warning:" if report.has_drift else ":white_check_mark:"
    out = [f"## {icon} Mesh drift: stack `{report.stack}` (mesh `{report.mesh}`)", "", f"**{_headline(report)}**", ""]
    for c in report.clusters:
        if not c.count:
            out += [f"### Cluster `{c.cluster}`: no drift", ""]
        else:
            out += [f"### Cluster `{c.cluster}`: {c.count} difference(s)", "",
                    "| State | Kind | Object | API version |", "| --- | --- | --- | --- |"]
            out += [_md_ref(d) for d in (*c.missing, *c.changed, *c.orphaned)]
            out += [f"| helm release {r.state} | Helm release | {_md_code(r.namespace + '/' + r.name)} | |"
                    for r in c.releases]
            out.append("")
            for d in (*c.changed, *c.releases):
                name = (f"{d.ref.kind} {d.ref.namespace}/{d.ref.name}" if isinstance(d, ObjectDrift)
                        else f"Helm release {d.namespace}/{d.name}")
                if not d.changes:
                    continue
                out += [f"<details><summary>{_md(name)}: {len(d.changes)} field(s)</summary>", "",
                        "| Field | Desired | Live |", "| --- | --- | --- |"]
                out += [f"| {_md_code(ch.path)} | {_md_code(_value(ch.desired, 80))} | {_md_code(_value(ch.live, 80))} |"
                        for ch in d.changes]
                out += ["", "</details>", ""]
        out += [f"> note: {_md(n)}" for n in c.notes]
        if c.notes:
            out.append("")
    if report.findings:
        out += ["### Intent findings", "", "| Check | Cluster | Subject | Finding |", "| --- | --- | --- | --- |"]
        out += [f"| {f.check}{' (declared)' if f.declared else ''} | {f.cluster or 'all'} | {_md(f.subject)} | {_md(f.message)} |"
                for f in report.findings]
        out.append("")
    return _fit_markdown(out, MARKDOWN_LIMIT)


MARKDOWN_LIMIT = 60_000
"""Most characters of a Markdown report: it is posted as a GitHub issue or pull-request comment,
which holds at most 65,536 (the drift and preview workflows add a few lines of their own)."""


def _fit_markdown(lines: list[str], limit: int) -> str:
    """``lines`` joined, or, past ``limit`` characters, cut at a line with an open ``<details>``
    closed and a last line saying how much was left out and where the whole report is."""
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    kept, size, open_details = [], 0, False
    for line in lines:
        if size + len(line) + 1 > limit - 400:  # room for the closing lines
            break
        kept.append(line)
        size += len(line) + 1
        open_details = line.startswith("<details>") or (open_details and line != "</details>")
    omitted = len(lines) - len(kept)
    if open_details:
        kept += ["", "</details>"]
    kept += ["", f"**Cut to fit a comment:** {omitted} more line(s) not shown. The text and JSON reports "
                 f"(`--format text`, `--format json`) are whole."]
    return "\n".join(kept)


FORMATTERS: dict[str, Callable[[DriftReport], str]] = {
    "text": format_text, "json": format_json, "markdown": format_markdown}


# ---------------------------------------------------------------------------------------------
# run


def _print_problems(problems: Iterable[Problem], stream: Any) -> None:
    marks: dict = {}  # CI logs are public too: a message that quotes a token or key is redacted
    for path, message in problems:
        print(f"{redact_text(str(path), marks)}: {redact_text(str(message), marks)}", file=stream)


def _write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename, so a failed
    write never leaves half a report where the workflow reads one. Raises OSError."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the mode open() would have
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _desired(stack: str) -> tuple[Any, str, dict[str, Any]]:
    """``(spec, mesh name, cluster -> ClusterState)`` of a stack; raises MeshError (SpecError,
    TranslationError) for bad input."""
    from ..core.render import render_mesh
    from ..spec import load_stack

    loaded = load_stack(stack)
    spec = getattr(loaded, "spec", loaded)
    return spec, spec.name, render_mesh(loaded)


def run(args: argparse.Namespace, stdout: Any = None, stderr: Any = None) -> int:
    """Run ``diff`` with parsed ``args``; returns the exit code (0 no drift, 2 drift, 1 error)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        spec, mesh, desired = _desired(args.stack)
        clusters = list(spec.clusters)
        all_names = [c.name for c in clusters]
        wanted = list(getattr(args, "cluster", None) or [])
        unknown = [c for c in wanted if c not in {x.name for x in clusters}]
        if unknown:
            raise MeshError([("--cluster", f"no cluster {c!r} in the stack (clusters: "
                                           f"{', '.join(x.name for x in clusters)})") for c in unknown])
        if wanted:
            clusters = [c for c in clusters if c.name in wanted]
        names = [c.name for c in clusters]
        desired = {c: desired[c] for c in names if c in desired}
        if args.live:
            live = read_dump_dir(args.live, names)
        else:
            kubeconfigs = resolve_kubeconfigs(clusters, list(args.kubeconfig or []), list(args.context or []),
                                              known=all_names)
            live = read_live_clusters(kubeconfigs, desired)
        from ..spec import MeshSpec

        report = build_report(args.stack, mesh, desired, live, intent=not getattr(args, "no_intent", False),
                              spec=spec if isinstance(spec, MeshSpec) else None)
        text = FORMATTERS[getattr(args, "format", None) or "text"](report)
        if getattr(args, "output", None):
            _write_whole(Path(args.output), text)
        else:
            stdout.write(text)
        return 2 if report.has_drift else 0
    except MeshError as e:
        _print_problems(e.problems, stderr)
        return 1
    except OSError as e:
        _print_problems([(getattr(e, "filename", None) or args.stack, e.strerror or str(e))], stderr)
        return 1
    except RecursionError:  # the comparison recurses once per level of nesting
        _print_problems([(getattr(args, "live", None) or args.stack,
                          "an object is nested too deeply to compare (over Python's recursion limit): "
                          "dump objects as 'kubectl get -o yaml|json' writes them")], stderr)
        return 1
    except Exception as e:  # never a traceback for the user; the message names the failure
        _print_problems([(args.stack, f"internal error: {type(e).__name__}: {e}")], stderr)
        return 1
