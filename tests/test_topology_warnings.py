"""Issue 11 point 12: clusters in different regions on one network, and ``validate``'s warnings.

Istio sends a sidecar's traffic to the endpoints of its own network directly, by pod IP, and only
those of other networks through their east-west gateway (istio 1.30.3
``pilot/pkg/xds/endpoints/ep_filters.go:154-155``: ``if !forceGateway && (b.proxy.InNetwork(epNetwork)
|| len(gateways) == 0) { // The endpoint is directly reachable - just add it``; ``InNetwork`` is
equality of network names, ``pilot/pkg/model/context.go:421``), as the multi-primary guide says: "Both
clusters reside on the network1 network, meaning there is direct connectivity between the pods in
both clusters" (https://istio.io/v1.30/docs/setup/install/multicluster/multi-primary/). So one network
across regions is a claim about the underlay the spec must make explicitly.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mesh_components.cli import main
from mesh_components.spec.errors import SpecError
from mesh_components.spec import load_mesh, load_stack, topology_warnings

ROOT = Path(__file__).resolve().parents[1]


def stack_data(name: str) -> dict:
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text())
    return doc["config"]["service-mesh:mesh"]


def write_stack(tmp_path: Path, data: dict) -> Path:
    data = {**data, "smiFiles": [str(ROOT / f) for f in data.get("smiFiles", [])]}
    path = tmp_path / "stacks" / "Pulumi.t.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": data}}))
    return path


def unconfirmed_staging() -> dict:
    data = stack_data("staging")
    data.pop("flatNetworks")
    return data


def test_two_regions_on_one_network_warn_naming_both_clusters_and_regions():
    spec = load_mesh(unconfirmed_staging(), base_dir=ROOT).spec
    (path, message), = topology_warnings(spec)
    assert path == "mesh.clusters[1].network"
    for text in ("'staging-use1' (us-east-1)", "'staging-usw2' (us-west-2)", "network 'staging-vpc'",
                 "pod IPs", "flatNetworks: [staging-vpc]", "own network"):
        assert text in message, (text, message)


def test_the_staging_stack_confirms_its_flat_network_and_other_stacks_need_nothing():
    for name in ("dev", "staging", "prod", "linkerd", "osm"):
        assert topology_warnings(load_stack(name, root=ROOT).spec) == [], name
    assert load_stack("staging", root=ROOT).spec.flat_networks == ["staging-vpc"]


def test_default_network_and_same_region_and_osm():
    data = unconfirmed_staging()
    for c in data["clusters"]:
        c.pop("network")
    (path, message), = topology_warnings(load_mesh(data, base_dir=ROOT).spec)
    assert path == "mesh.clusters[1].network" and "no cluster names a network: one network for all" in message
    assert "bookstore-staging-network" in message  # the name Istio's global.network gets
    same_region = unconfirmed_staging()
    same_region["clusters"][1]["region"] = "us-east-1"
    assert topology_warnings(load_mesh(same_region, base_dir=ROOT).spec) == []
    # each region on a network of its own: east-west gateways, nothing assumed
    split = unconfirmed_staging()
    split["clusters"][1]["network"] = "staging-usw2"
    for i, c in enumerate(split["clusters"]):
        c["eastWestGateway"] = {"addresses": [f"203.0.113.{i + 7}"], "subnets": [f"subnet-{i}"],
                                "eipAllocations": [f"eipalloc-{i}"]}
    assert topology_warnings(load_mesh(split, base_dir=ROOT).spec) == []


def test_flat_networks_must_name_a_network_of_the_clusters():
    data = stack_data("staging")
    data["flatNetworks"] = ["staging-vcp"]
    with pytest.raises(SpecError) as e:
        load_mesh(data, base_dir=ROOT)
    assert e.value.problems == [("mesh.flatNetworks[0]", "unknown network 'staging-vcp'; did you mean 'staging-vpc'?")]


def test_validate_prints_warnings_exits_0_and_2_with_strict(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = str(write_stack(tmp_path, unconfirmed_staging()))
    assert main(["validate", path]) == 0
    out = capsys.readouterr()
    (line,) = [ln for ln in out.err.splitlines() if ": warning: " in ln]
    assert line.startswith("mesh.clusters[1].network: warning: clusters 'staging-use1' (us-east-1), 'staging-usw2' (us-west-2)")
    assert "valid: mesh 'bookstore-staging'" in out.out and out.out.rstrip().endswith("; 1 warning(s)")
    assert main(["validate", path, "--strict"]) == 2
    assert [ln for ln in capsys.readouterr().err.splitlines() if ": warning: " in ln] == [line]
    assert main(["validate", "staging", "--strict"]) == 0
    assert ": warning: " not in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # 2 means warnings with --strict, so usage errors exit 1
        main(["validate", "staging", "--strictt"])
    assert e.value.code == 1
