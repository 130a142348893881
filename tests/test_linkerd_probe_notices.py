"""``validate`` tells a Linkerd user which routed ports would lose kubelet probes.

A Linkerd ``Server`` with ``HTTPRoute``s attached gets only those routes, not the policy controller's
default probe route (linkerd/linkerd2 edge-26.8.3 policy-controller/k8s/index/src/inbound/index.rs:
2014-2016 returns before the default routes are added; :2241-2300 builds that probe route from the
pod's ``httpGet`` probes). Offline we cannot see the pods' probes, so every port served by a routed
Server that declares no ``probePaths`` gets a ``path: notice:`` line naming the field, and a port that
declares them gets the probe route instead (:func:`mesh_components.meshes.linkerd.probe_objects`).
"""
from __future__ import annotations

import subprocess
import sys

from mesh_components.meshes.linkerd import probe_notices

from cp_helpers import render, stack_mesh
from program_harness import ROOT


def notices(mesh: dict) -> dict[str, str]:
    from mesh_components.spec import load_mesh
    spec = load_mesh(mesh, base_dir=ROOT).spec
    return dict(n for st in render(mesh).values() for n in probe_notices(spec, st.objects))


def test_routed_port_without_probe_paths_gets_a_notice_and_declared_ones_do_not():
    mesh = stack_mesh("linkerd")
    found = notices(mesh)
    services = [(s["namespace"], s["name"]) for s in mesh["services"]]
    warehouse = services.index(("bookwarehouse", "bookwarehouse"))
    store = services.index(("bookstore", "bookstore"))
    assert mesh["services"][store]["ports"][0]["probePaths"]  # the stack declares the OSM demo's probes
    assert f"mesh.services[{warehouse}].ports[0].probePaths" in found
    assert "never become Ready" in found[f"mesh.services[{warehouse}].ports[0].probePaths"]
    assert not any(path.startswith(f"mesh.services[{store}]") for path in found)
    # declaring the paths turns the notice into a probe route
    mesh["services"][warehouse]["ports"][0]["probePaths"] = ["/healthz"]
    assert f"mesh.services[{warehouse}].ports[0].probePaths" not in notices(mesh)


def test_validate_prints_the_notice_and_still_exits_0():
    run = subprocess.run([sys.executable, "-m", "mesh_components", "validate", "linkerd", "--strict"],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "probePaths: notice:" in run.stderr
