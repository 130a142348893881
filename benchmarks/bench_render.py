"""Render and mocked-program cost of synthetic meshes: N services over M clusters.

    .venv/bin/python benchmarks/bench_render.py [N ...] [--clusters M] [--no-program]

Each measurement runs in a fresh subprocess so peak memory (max RSS) is its own. Prints, per N:
core time (validation + SMI + translation, in memory), YAML serialisation alone, write_tree
(serialising and writing one file per object) on the disk and on tmpfs, render wall time (core + write_tree), peak RSS, objects and releases rendered, and
the time and Pulumi resource count of the real __main__.py under Pulumi's mocks.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
sys.path[:0] = [{root!r}, {root!r} + "/benchmarks", {root!r} + "/tests"]
from synthetic import synthetic_mesh
mesh = synthetic_mesh({n}, {m})
mode = {mode!r}
t0 = time.perf_counter()
if mode == "render":
    from mesh_components.spec import load_mesh
    from mesh_components.render import render_mesh, write_tree
    states = render_mesh(load_mesh(mesh, base_dir={root!r}))
    t1 = time.perf_counter()
    from mesh_components.render import dump_yaml, redact
    texts = [dump_yaml(redact(o, False)) for st in states.values() for o in st.objects]
    yaml_s = time.perf_counter() - t1
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        write_tree(states, Path(d) / "out")
    t2 = time.perf_counter()
    shm_s = float("nan")
    if Path("/dev/shm").is_dir():
        t3 = time.perf_counter()
        with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
            write_tree(states, Path(d) / "out")
        shm_s = time.perf_counter() - t3
    result = dict(shm_s=shm_s,core_s=t1 - t0 - yaml_s, yaml_s=yaml_s, write_s=t2 - t1, total_s=t2 - t0 - yaml_s, objects=sum(len(s.objects) for s in states.values()),
                  releases=sum(len(s.releases) for s in states.values()))
else:
    from program_harness import run_program
    regs = run_program({{"service-mesh:mesh": json.dumps(mesh)}}, "bench")
    result = dict(total_s=time.perf_counter() - t0, resources=len(regs))
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def measure(n: int, m: int, mode: str) -> dict:
    code = CHILD.format(root=str(ROOT), n=n, m=m, mode=mode)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=int, default=[100, 1000, 5000])
    ap.add_argument("--clusters", type=int, default=3)
    ap.add_argument("--no-program", action="store_true")
    args = ap.parse_args()
    print(f"{'N':>6} {'M':>2} | {'core s':>7} {'yaml s':>7} {'write s':>7} {'tmpfs s':>7} {'render s':>8} {'peak MB':>8} {'objects':>8} {'releases':>8}"
          f" | {'program s':>9} {'peak MB':>8} {'resources':>9}")
    for n in args.sizes:
        r = measure(n, args.clusters, "render")
        p = {} if args.no_program else measure(n, args.clusters, "program")
        print(f"{n:>6} {args.clusters:>2} | {r['core_s']:>7.2f} {r['yaml_s']:>7.2f} {r['write_s']:>7.2f} {r['shm_s']:>7.2f} {r['total_s']:>8.2f} {r['peak_rss_mb']:>8.0f} "
              f"{r['objects']:>8} {r['releases']:>8} | {p.get('total_s', float('nan')):>9.2f} "
              f"{p.get('peak_rss_mb', float('nan')):>8.0f} {p.get('resources', 0):>9}", flush=True)


if __name__ == "__main__":
    main()
