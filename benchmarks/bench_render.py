"""Render cost of synthetic meshes, N services over M clusters: end to end and by phase.

    .venv/bin/python benchmarks/bench_render.py [N ...] [--clusters M ...] [--repeat R] [--program]
    .venv/bin/python benchmarks/bench_render.py 1000 10000 --clusters 3 10 --repeat 5

Default sweep: N = 100, 1,000, 5,000, 10,000 services, M = 3 clusters, 3 runs per case. For each
case ``synthetic.write_stack`` writes a stack file on tmpfs (``/dev/shm``, else the temp folder), then:

- **e2e**: ``python -m mesh_components render STACK --out DIR`` in a fresh process, DIR on the same
  tmpfs: wall time including interpreter start, imports, parsing, validation, render and writing
  every file, and the CPU time (user + system) of the same run, steadier when the machine is
  shared. Its peak RSS is the child's own ``ru_maxrss`` (``os.wait4``), so cases never mix.
- **phases**: the same steps, CPU time of each, in a fresh process: ``parse`` (reading the stack
  file: ``spec.load_yaml_documents``, LibYAML; ``--python-loader`` also times PyYAML's pure-Python
  loader once), ``validate`` (the rest of ``spec.load_stack``: pydantic + references),
  ``render`` (``render.render_mesh``, the pure core), ``write`` (``render.write_tree``).
- **per object**: e2e CPU time and the four phases together, divided by the objects written, in µs.
- **cycles**: objects the cyclic collector finds right after ``render_mesh`` (which runs with it
  paused): what pausing it leaves in memory.

Every figure is the median of R runs, with the spread (max - min) / median as a noise gauge: the
machine is shared. ``--program`` adds the real ``__main__.py`` under Pulumi's mocks (slow: about
3.4 ms per resource). No assertions: these are measurements; results live in benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from synthetic import write_stack  # noqa: E402

PHASES = r"""
import gc, json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
t0 = time.process_time()
from mesh_components.core.render import cyclic_gc_paused, render_mesh, write_tree
from mesh_components.spec import load_stack, load_yaml_documents
t1 = time.process_time()
paused = cyclic_gc_paused()  # as the CLI's commands run (cli.gc_paused)
paused.__enter__()
loaded = load_stack({stack!r})  # parse + validate
t2 = time.process_time()
states = render_mesh(loaded)
t3 = time.process_time()
cycles = gc.collect()  # what loading and rendering left for the cyclic collector (paused); untimed
t3b = time.process_time()
files = write_tree(states, Path({out!r}))
t4 = time.process_time()
docs = load_yaml_documents(Path({stack!r}))  # the parse alone, again (the file is in the page cache)
t5 = time.process_time()
paused.__exit__(None, None, None)
python_parse_s = float("nan")
if {python_loader!r}:
    from mesh_components import yaml_source
    docs = yaml_source.load_documents(Path({stack!r}), loader=yaml_source.PYTHON_LOADER)
    python_parse_s = time.process_time() - t5
print(json.dumps(dict(import_s=t1 - t0, parse_s=t5 - t4, validate_s=(t2 - t1) - (t5 - t4), render_s=t3 - t2,
                      write_s=t4 - t3b, cycles=cycles, python_parse_s=python_parse_s,
                      objects=sum(len(s.objects) for s in states.values()), files=len(files),
                      peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""

PROGRAM = r"""
import json, resource, sys, time
sys.path[:0] = [{root!r}, {root!r} + "/benchmarks", {root!r} + "/tests"]
from synthetic import synthetic_mesh
from program_harness import run_program
mesh = synthetic_mesh({n}, {m})
t0 = time.perf_counter()
regs = run_program({{"service-mesh:mesh": json.dumps(mesh)}}, "bench")
print(json.dumps(dict(program_s=time.perf_counter() - t0, resources=len(regs),
                      program_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def run_child(argv: list[str]) -> tuple[float, float, float, str]:
    """Run ``argv``; returns (wall seconds, CPU seconds (user + system), the child's own peak RSS
    in MB, its stdout). CPU time is the steadier figure on a shared machine."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, status, usage = os.wait4(proc.pid, 0)  # this child's rusage, not the sum of all children
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{argv[:4]}... exited {proc.returncode}:\n{err.read().decode()[-2000:]}")
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read().decode()


def median_spread(values: list[float]) -> tuple[float, float]:
    med = statistics.median(values)
    return med, (max(values) - min(values)) / med if med else 0.0


def measure(n: int, m: int, repeat: int, work: Path, program: bool, python_loader: bool) -> dict:
    stack = write_stack(work / f"Pulumi.synthetic-{n}x{m}.yaml", n, m)
    e2e, e2e_cpu, e2e_mb, phases = [], [], [], []
    for r in range(repeat):
        out = work / f"out-{n}x{m}-{r}"
        wall, cpu, mb, _ = run_child([sys.executable, "-m", "mesh_components", "render", str(stack), "--out", str(out)])
        e2e.append(wall), e2e_cpu.append(cpu), e2e_mb.append(mb)
        shutil.rmtree(out)
        _, _, _, text = run_child([sys.executable, "-c", PHASES.format(root=str(ROOT), stack=str(stack), out=str(out),
                                                                   python_loader=python_loader and r == 0)])
        phases.append(json.loads(text.strip().splitlines()[-1]))
        shutil.rmtree(out)
    res = {"n": n, "m": m, "stack_mb": stack.stat().st_size / 2**20, "objects": phases[0]["objects"],
           "files": phases[0]["files"], "runs": repeat}
    res["e2e_s"], res["e2e_spread"] = median_spread(e2e)
    res["e2e_mb"] = statistics.median(e2e_mb)
    res["e2e_cpu_s"] = statistics.median(e2e_cpu)
    for key in ("import_s", "parse_s", "validate_s", "render_s", "write_s", "peak_mb", "cycles"):
        res[key] = statistics.median(p[key] for p in phases)
    res["python_parse_s"] = phases[0]["python_parse_s"]
    work_s = [p["parse_s"] + p["validate_s"] + p["render_s"] + p["write_s"] for p in phases]
    res["work_s"], res["work_spread"] = median_spread(work_s)
    res["e2e_us_obj"] = res["e2e_cpu_s"] / res["objects"] * 1e6
    res["work_us_obj"] = res["work_s"] / res["objects"] * 1e6
    stack.unlink()
    if program:
        _, _, _, text = run_child([sys.executable, "-c", PROGRAM.format(root=str(ROOT), n=n, m=m)])
        res.update(json.loads(text.strip().splitlines()[-1]))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[100, 1000, 5000, 10000], help="services per case")
    ap.add_argument("--clusters", nargs="+", type=int, default=[3], help="clusters per case (several: a sweep)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the median is printed")
    ap.add_argument("--program", action="store_true", help="also run __main__.py under Pulumi's mocks (slow)")
    ap.add_argument("--python-loader", action="store_true",
                    help="also time the parse with PyYAML's pure-Python loader (yaml_source.PYTHON_LOADER), once")
    ap.add_argument("--json", action="store_true", help="one JSON object per case instead of the table")
    args = ap.parse_args()
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="bench-render-", dir=shm if shm.is_dir() else None))
    print(f"# python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}, "
          f"files on {work} ({'tmpfs' if str(work).startswith('/dev/shm') else 'disk'})", flush=True)
    if not args.json:
        print(f"{'N':>6} {'M':>3} {'stack MB':>8} {'objects':>8} | {'e2e s':>6} {'±':>4} {'cpu s':>6} {'peak MB':>7} {'µs/obj':>6} | "
              f"{'import':>6} {'parse':>6} {'valid.':>6} {'render':>6} {'write':>6} {'work s':>6} {'±':>4} {'µs/obj':>6} {'cycles':>6}"
              + (f" {'py parse':>8}" if args.python_loader else "")
              + (f" | {'program s':>9} {'MB':>6} {'resources':>9}" if args.program else ""), flush=True)
    try:
        for m in args.clusters:
            for n in args.sizes:
                r = measure(n, m, args.repeat, work, args.program, args.python_loader)
                if args.json:
                    print(json.dumps(r), flush=True)
                    continue
                print(f"{n:>6} {m:>3} {r['stack_mb']:>8.2f} {r['objects']:>8} | {r['e2e_s']:>6.2f} "
                      f"{r['e2e_spread']:>4.0%} {r['e2e_cpu_s']:>6.2f} {r['e2e_mb']:>7.0f} {r['e2e_us_obj']:>6.0f} | {r['import_s']:>6.2f} "
                      f"{r['parse_s']:>6.2f} {r['validate_s']:>6.2f} {r['render_s']:>6.2f} {r['write_s']:>6.2f} "
                      f"{r['work_s']:>6.2f} {r['work_spread']:>4.0%} {r['work_us_obj']:>6.0f} {r['cycles']:>6.0f}"
                      + (f" {r['python_parse_s']:>8.2f}" if args.python_loader else "")
                      + (f" | {r['program_s']:>9.1f} {r['program_mb']:>6.0f} {r['resources']:>9}" if args.program else ""),
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
