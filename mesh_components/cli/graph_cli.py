"""``python -m mesh_components graph``: who may talk to whom, as a Mermaid or Graphviz DOT diagram.

Usage::

    python -m mesh_components graph STACK [--format mermaid|dot|json] [-o FILE] [--strict] [--metrics]

The diagram (see :mod:`mesh_components.analysis.graph`) goes to stdout, or to FILE with ``-o``. Rules that
admit nothing, rules shadowed by others and overrides that change access policy (read from the
rendered objects after ``mesh.overrides``) are printed to stderr as ``warning: <origin>: <kind>:
<message>`` lines and kept in the diagram as comments; a final summary line on stderr counts them.

JSON (``--format json``, :func:`graph_json`), the same graph the diagrams draw::

    {"mesh": str,
     "nodes": [{"id", "kind", "namespace", "label", "unrestricted"}],
     "edges": [{"source", "target", "kind", "lines": [str]}],
     "warnings": [{"origin", "kind", "message", "others": [str]}]}

``kind`` of a node: ``service``, ``version``, ``external``, ``ingress``, ``identity``, ``vm`` (a
``mesh.externalWorkloads`` entry: a workload outside Kubernetes); its
``namespace`` is null for nodes outside every namespace (egress hosts); ``label`` may hold line
breaks; ``unrestricted``: no access rule guards the service. ``kind`` of an edge: ``allow``,
``ingress``, ``egress``, ``split``, ``override``, ``member`` (a VM backs the service it joins);
``source``/``target`` are node ids; ``lines``
what it carries (one route, port set or weight each). ``kind`` of a warning: ``admits-nothing``,
``shadowed``, ``redundant-match``, ``override-widens``, ``override-changes-access``; ``others``:
the rules that already admit what it admits. Every list is sorted, so the same stack gives the
same bytes; keys are only ever added.

``--metrics`` overlays the golden-signal series (:mod:`mesh_components.core.telemetry.golden_signals`)
on each ``allow`` edge and each ``ingress`` edge to the route's service: per access rule and source
identity, a line ``metrics {namespace="..",service="..",access_rule="..",source_namespace="..",
source_service_account=".."}: <series>, ...`` (the selector of its series), or ``metrics: no
per-rule series (<why>); destination: <series> {namespace="..",service=".."}`` where the mesh
cannot compute them (OSM; Istio ambient where no waypoint serves the service); in JSON each edge
gets ``"metrics": [{"labels": {name: value}, "series": [str], "gap": str (only where no per-rule
series exists)}]``. It needs ``mesh.telemetry`` with ``metrics.enabled`` and ``goldenSignals``
(else exit 1). Without ``--metrics`` nothing changes.

Exit codes: 0 (warnings or not), 2 with ``--strict`` when there is any warning, 1 invalid input
or usage (``path: message`` lines on stderr, never a traceback).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import exit_codes_epilog, usage_errors_exit_1
from ..spec.errors import MeshError

__all__ = ["add_parser", "run", "graph_of", "graph_json", "FORMATS"]


FORMATS = ("mermaid", "dot", "json")
"""The ``--format`` choices: :data:`mesh_components.analysis.graph.RENDERERS` and :func:`graph_json`."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``graph`` sub-command on ``subparsers``; sets ``func=run``."""
    p = subparsers.add_parser(
        "graph", help="draw who may talk to whom (Mermaid, Graphviz DOT or JSON), flag dead and shadowed rules",
        description="Draw the allowed calls of a stack: services by namespace, access-rule routes, "
                    "egress hosts, the ingress gateway and traffic splits. Warns about rules that "
                    "admit nothing or are shadowed by others, and about overrides that change access "
                    "policy (read from the rendered objects).",
        epilog=exit_codes_epilog({0: "drawn (with warnings or not)", 1: "invalid input or usage error",
                                  2: "with --strict: any warning"}))
    p.add_argument("stack", metavar="STACK", help="stack name (stacks/Pulumi.<name>.yaml) or stack file")
    p.add_argument("--format", choices=FORMATS, default="mermaid",
                   help="Mermaid or Graphviz DOT diagram, or the graph as JSON (default mermaid)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the diagram here instead of stdout")
    p.add_argument("--strict", action="store_true", help="exit 2 when there is any warning")
    p.add_argument("--metrics", action="store_true",
                   help="show on each edge the golden-signal series that will show its traffic (needs mesh.telemetry)")
    p.set_defaults(func=run)

    usage_errors_exit_1(p, "graph")  # 2 means warnings
    return p


def graph_of(loaded, metrics: bool = False):
    """The :class:`~mesh_components.analysis.graph.Graph` of a loaded stack (``spec.LoadedMesh``), with its
    findings. With ``mesh.overrides``, the graph also reads what is deployed: the stack is rendered
    with and without its overrides (``render.render_mesh``) and every caller an override lets in
    is drawn and reported (:func:`mesh_components.analysis.override_access.override_report`). Raises
    :class:`MeshError` for policy the mesh-neutral model refuses (and, with overrides, for what
    the mesh cannot render). ``metrics``: overlay the golden-signal series on the edges
    (``build_graph(series=...)``); raises :class:`MeshError` when the stack records none (no
    ``mesh.telemetry``, metrics or ``goldenSignals`` off, or golden signals the mesh refuses)."""
    from ..core import gamma
    from ..analysis import graph, override_access
    from ..spec import smi
    from ..core.gateway import gateway_identity

    spec = loaded.spec
    policies = smi.policy_set(spec, loaded.smi_documents)
    identity = gateway_identity(spec)
    model = gamma.build(spec, policies, identity)
    findings = graph.analyse(spec, policies, model)
    widenings: list = []
    if spec.overrides:
        from ..core.render import render_mesh

        deployed = render_mesh(loaded)
        base = render_mesh(loaded._replace(spec=spec.model_copy(update={"overrides": []})))
        changed, widenings = override_access.override_report(spec, base, deployed)
        findings = sorted(set(findings) | set(graph.override_findings(changed, widenings)))
    series = _series_overlay(spec, model) if metrics else None
    return graph.build_graph(spec, model, findings, identity, widenings, series)


def _series_overlay(spec, model):
    """``(authorization, identity) -> SeriesRef`` for the overlay; MeshError without golden signals."""
    from ..core.telemetry import golden_signals

    m = spec.telemetry.metrics if spec.telemetry is not None else None
    if m is None or not m.enabled or not m.golden_signals:
        where = ("mesh.telemetry" if m is None else "mesh.telemetry.metrics.enabled" if not m.enabled
                 else "mesh.telemetry.metrics.goldenSignals")
        raise MeshError([(where, "--metrics shows the golden-signal series, which this stack does not record: "
                                 "add mesh.telemetry with metrics enabled and goldenSignals: true, or drop --metrics")])
    if problems := golden_signals.problems(spec):
        raise MeshError(problems)
    waypoints = golden_signals.waypoint_namespaces(spec, model)
    return lambda a, identity: golden_signals.edge_series(spec, model, a, identity, waypoints)


def graph_json(g) -> str:
    """The :class:`~mesh_components.analysis.graph.Graph` ``g`` as the JSON document in this module's
    docstring (nodes, edges and warnings as the diagrams have them, in their sorted order), two-space
    indented, ending in a newline. Pure."""
    doc = {"mesh": g.mesh,
           "nodes": [{"id": n.id, "kind": n.kind, "namespace": n.group, "label": n.label,
                      "unrestricted": n.unrestricted} for n in g.nodes],
           "edges": [{"source": e.source, "target": e.target, "kind": e.kind, "lines": list(e.lines),
                      **({"metrics": [m.as_json() for m in e.metrics]} if g.metrics else {})}
                     for e in g.edges],
           "warnings": [{"origin": f.origin, "kind": f.kind, "message": f.message, "others": list(f.others)}
                        for f in g.findings]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _writer(fmt: str):
    from ..analysis.graph import RENDERERS  # lazily: every CLI run builds this parser

    return graph_json if fmt == "json" else RENDERERS[fmt]


def run(args: argparse.Namespace, stdout: Any = None, stderr: Any = None) -> int:
    """Run ``graph`` with parsed ``args``; returns 0, or 2 with ``--strict`` and warnings. Invalid
    input raises :class:`MeshError` (the CLI prints ``path: message`` lines and exits 1)."""
    from ..spec import load_stack

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    g = graph_of(load_stack(args.stack), metrics=bool(getattr(args, "metrics", False)))
    text = _writer(getattr(args, "format", None) or "mermaid")(g)
    where = ""
    if getattr(args, "output", None):
        try:
            Path(args.output).write_text(text)
        except OSError as e:
            raise MeshError([(args.output, f"cannot write: {e.strerror or e}")]) from None
        where = f"; wrote {args.output}"
    else:
        stdout.write(text)
    for f in g.findings:
        print(f"warning: {f.line()}", file=stderr)
    counts = ", ".join(f"{what} {n}" for what, n in g.counts.items())
    print(f"graph {args.stack}: {counts}; warnings {len(g.findings)}{where}", file=stderr)
    return 2 if getattr(args, "strict", False) and g.findings else 0
