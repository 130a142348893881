"""Benchmarks for the mesh CA: issuing a root plus 10 intermediates, and a no-op ``diff``.

Run: ``.venv/bin/python benchmarks/bench_ca.py`` from the project root. It prints one line per
figure (median and min of several runs, in milliseconds). Results are recorded in benchmarks/CA.md.
No assertions: these are measurements, not tests.
"""
from __future__ import annotations

import datetime as dt
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cryptography  # noqa: E402

from mesh_components.core import ca  # noqa: E402
from mesh_components import ca_provider as cp  # noqa: E402

CLUSTERS = tuple(f"cluster-{i:02d}" for i in range(10))
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


class Clock:
    def __call__(self) -> dt.datetime:
        return NOW + dt.timedelta(days=10)


def timed(fn, runs: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), min(samples)


def cfg(alg: str) -> ca.CAConfig:
    mesh = "osm" if alg.startswith("RSA") else "istio"
    return ca.CAConfig(trust_domain="cluster.local", mesh=mesh, clusters=CLUSTERS, key_algorithm=alg)


def issue_all(alg: str) -> ca.CAState:
    c = cfg(alg)
    plan = ca.plan_changes(c, None, NOW)
    return ca.apply_plan(c, None, plan, NOW)


def main() -> None:
    print(f"python {platform.python_version()}, cryptography {cryptography.__version__}, "
          f"{platform.machine()}, {platform.system()}")
    for alg, runs in (("ECDSA_P256", 30), ("RSA_2048", 5), ("RSA_3072", 3), ("RSA_4096", 3)):
        med, low = timed(lambda: issue_all(alg), runs)
        print(f"issue root + 10 intermediates [{alg}]: median {med:.1f} ms, min {low:.1f} ms ({runs} runs)")

    c = cfg("ECDSA_P256")
    state = issue_all("ECDSA_P256")
    med, low = timed(lambda: ca.plan_changes(c, state, NOW + dt.timedelta(days=10)), 200)
    print(f"no-op plan_changes (pure core, state objects, 10 clusters): median {med:.2f} ms, min {low:.2f} ms (200 runs)")

    provider = cp.MeshCAProvider(Clock())
    news = provider.check({}, c.to_inputs()).inputs
    outs = cp.state_to_outputs(c, state, None)
    assert provider.diff("id", outs, news).changes is False
    med, low = timed(lambda: provider.diff("id", outs, news), 200)
    print(f"no-op provider.diff (from stored outputs: parse 11 certs + plan, 10 clusters): "
          f"median {med:.2f} ms, min {low:.2f} ms (200 runs)")

    med, low = timed(lambda: provider.update("id", outs, news), 20)
    print(f"no-op provider.update (returns all outputs): median {med:.2f} ms, min {low:.2f} ms (20 runs)")

    from pulumi.dynamic.dynamic import serialize_provider
    med, low = timed(lambda: serialize_provider(provider), 50)
    print(f"serialize_provider (dill, as the engine does): median {med:.2f} ms, min {low:.2f} ms (50 runs)")


if __name__ == "__main__":
    main()
