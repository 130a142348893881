"""Benchmark: the drift diff of 10,000 objects (target: under 1 s). A plain script, no pytest.

    .venv/bin/python benchmarks/bench_diff.py [--objects 10000] [--repeat 5]

Builds ``N`` desired objects in the shapes the renderer emits (AuthorizationPolicy, HTTPRoute with
weights, Service, ServiceAccount, Secret with stringData, PeerAuthentication, ServiceEntry,
Namespace, ConfigMap, Gateway), and the live copies a cluster would return: every object with
server-side noise (managedFields, status, uid, resourceVersion, last-applied annotation, defaults),
1% of them changed by hand, 0.5% deleted, 0.5% owned strays added. Then times, best of ``repeat``:

- ``diff_cluster`` (normalise + compare + orphans) on the whole set;
- ``build_report`` (the same plus the intent checks), which is what ``diff`` runs per stack.

Object generation and YAML parsing are not timed (the dump is read once per run; the C YAML loader
parses ~10k objects in a few seconds, see DIFF.md). Results are recorded in ``benchmarks/DIFF.md``.
"""
from __future__ import annotations

import argparse
import copy
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from diff_helpers import add_noise, deployed  # noqa: E402
from mesh_components.drift.diff import diff_cluster  # noqa: E402
from mesh_components.cli.drift_cli import build_report  # noqa: E402
from mesh_components.drift.live import LiveState  # noqa: E402
from mesh_components.core.slots import Slot  # noqa: E402

MESH = "bench"
OWN = {"app.kubernetes.io/managed-by": "mesh-components", "mesh-components.io/mesh": MESH}


def make_object(i: int) -> dict:
    ns = f"team-{i % 50}"
    name = f"obj-{i}"
    meta = {"name": name, "namespace": ns, "labels": dict(OWN, app=f"svc-{i % 200}")}
    k = i % 10
    if k == 0:
        return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": meta,
                "spec": {"action": "ALLOW", "selector": {"matchLabels": {"app": f"svc-{i % 200}"}},
                         "rules": [{"from": [{"source": {"principals": [f"cluster.local/ns/{ns}/sa/caller-{j}"
                                                                      for j in range(3)]}}],
                                    "to": [{"operation": {"methods": ["GET", "POST"], "paths": [f"/api/v{j}/*" for j in range(2)]}}]}]}}
    if k == 1:
        return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
                "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": f"svc-{i % 200}", "port": 8080}],
                         "rules": [{"backendRefs": [{"name": f"svc-{i % 200}-v1", "port": 8080, "weight": 90},
                                                    {"name": f"svc-{i % 200}-v2", "port": 8080, "weight": 10}]}]}}
    if k == 2:
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
                "spec": {"selector": {"app": f"svc-{i % 200}", "version": "v1"},
                         "ports": [{"name": "http", "port": 8080, "appProtocol": "http"},
                                   {"name": "grpc", "port": 9090, "appProtocol": "grpc"}]}}
    if k == 3:
        return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}
    if k == 4:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
                "stringData": {"ca.crt": Slot("ca", "trust_bundle_pem"), "token": f"token-{i}"}}
    if k == 5:
        return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": meta,
                "spec": {"selector": {"matchLabels": {"app": f"svc-{i % 200}"}}, "mtls": {"mode": "STRICT"},
                         "portLevelMtls": {"8080": {"mode": "STRICT"}}}}
    if k == 6:
        return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": meta,
                "spec": {"hosts": [f"api-{i}.example.com"], "exportTo": [ns], "location": "MESH_EXTERNAL",
                         "resolution": "DNS", "ports": [{"number": 443, "name": "tls-443", "protocol": "TLS"}]}}
    if k == 7:
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": f"ns-{i}", "labels": dict(OWN, **{"istio.io/rev": "1-30"})}}
    if k == 8:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n", "index": str(i)}}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": meta,
            "spec": {"gatewayClassName": "istio",
                     "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "hostname": f"h{i}.example.com"},
                                   {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": f"h{i}.example.com",
                                    "tls": {"certificateRefs": [{"name": f"cert-{i}"}]}}]}}


def make_sets(n: int, seed: int = 7) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    desired = [make_object(i) for i in range(n)]
    live = [add_noise(deployed(o), i) for i, o in enumerate(desired)]
    for o in rng.sample(live, n // 100):  # 1% changed by hand
        o.setdefault("metadata", {}).setdefault("labels", {})["app.kubernetes.io/managed-by"] = "kubectl"
    for o in rng.sample(live, n // 200):  # 0.5% deleted
        live.remove(o)
    for j in range(n // 200):  # 0.5% owned strays
        live.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": f"stray-{j}", "namespace": "team-0", "labels": dict(OWN), "uid": f"s{j}"}})
    return desired, live


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    desired, live = make_sets(args.objects)
    snapshot = (copy.deepcopy(desired[:50]), copy.deepcopy(live[:50]))

    t_diff, report = best_of(args.repeat, lambda: diff_cluster("c1", MESH, desired, live))
    state = LiveState(live, {})
    t_report, full = best_of(args.repeat, lambda: build_report("bench", MESH, {"c1": {"objects": desired, "releases": []}},
                                                               {"c1": state}))
    assert (desired[:50], live[:50]) == snapshot, "the diff must not mutate its inputs"
    print(f"python {platform.python_version()} on {platform.machine()} ({platform.system()})")
    print(f"objects: {len(desired)} desired, {len(live)} live")
    print(f"found: {len(report.missing)} missing, {len(report.changed)} changed, {len(report.orphaned)} orphaned")
    print(f"diff_cluster : {t_diff * 1000:7.1f} ms  (best of {args.repeat})")
    print(f"build_report : {t_report * 1000:7.1f} ms  (with intent checks)")
    ok = t_report < 1.0
    print("PASS: under 1 s" if ok else "FAIL: 1 s or more")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
