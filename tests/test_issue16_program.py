"""Issue 16 under ``pulumi up`` (the real ``__main__.py`` under Pulumi's mocks): the objects of
``ca.mode: spire`` and ``mesh.externalWorkloads`` are registered by the components, in an order a
real cluster accepts. The rendered objects themselves are tested in test_spire.py and
test_external_workloads.py."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("pulumi")

from program_harness import run_program, stack_config  # noqa: E402


def _prod(**changes) -> list:
    conf = stack_config("prod")
    mesh = json.loads(conf["service-mesh:mesh"])
    for key, value in changes.items():
        mesh[key] = value(mesh[key]) if callable(value) else value
    return run_program({**conf, "service-mesh:mesh": json.dumps(mesh)}, stack="prod")


def test_spire_registers_crds_then_spire_then_identities_then_istiod():
    """Per cluster: the spire release after spire-crds; every ClusterSPIFFEID after both (its CRD and
    the controller manager that reconciles it, spiffe/helm-charts-hardened spire-0.30.0); istiod
    after every ClusterSPIFFEID of its cluster (a proxy SPIRE has not registered never gets an SVID,
    so the gateways istiod's injector makes would never become Ready); the upstream authority Secret
    (the cluster's intermediate key) is a secret input."""
    regs = _prod(ca=lambda ca: {**ca, "mode": "spire"})
    clusters = sorted({r.name.split("-control-plane")[0] for r in regs if r.name.endswith("-control-plane-istiod")})
    assert len(clusters) == 3
    for prefix in clusters:
        release = {r.name.rpartition("-control-plane-")[2]: r for r in regs
                   if r.type == "kubernetes:helm.sh/v3:Release" and r.name.startswith(f"{prefix}-control-plane-")}
        assert release["spire-crds"].urn in release["spire"].dependencies
        ids = [r for r in regs if r.type == "kubernetes:spire.spiffe.io/v1alpha1:ClusterSPIFFEID"
               and r.name.startswith(f"{prefix}-control-plane:")]
        assert ids, prefix
        for i in ids:
            assert {release["spire-crds"].urn, release["spire"].urn} <= set(i.dependencies), i.name
        assert {i.urn for i in ids} <= set(release["istiod"].dependencies)
        upstream = [r for r in regs if r.type == "kubernetes:core/v1:Secret" and r.name.startswith(prefix)
                    and r.inputs["metadata"]["name"] == "spire-upstream-ca"]
        assert len(upstream) == 1
        assert "stringData" in upstream[0].secret_inputs  # the key reaches the engine as a secret
        assert {"stringData", "data"} <= set(upstream[0].additional_secret_outputs)
        assert "tls.key" in upstream[0].inputs["stringData"]


def test_external_workloads_register_after_the_control_plane_on_their_cluster_only():
    """A VM joining bookstore (v2) and one with its own service on prod-aws: SmiPolicies registers
    the WorkloadGroup / WorkloadEntry (networking.istio.io, after the istio-base CRDs and istiod) and
    the own-service VM's ServiceAccount on prod-aws's provider only; MultiClusterLinks exposes istiod
    on prod-aws's east-west gateway (after that gateway's release), as the rendered objects say."""
    vms = [{"name": "bookstore-vm", "namespace": "bookstore", "service": "bookstore", "version": "v2",
            "addresses": ["10.10.0.5"], "cluster": "prod-aws"},
           {"name": "ledger", "namespace": "bookstore", "addresses": ["10.10.0.9"], "cluster": "prod-aws",
            "ports": [{"port": 7000, "protocol": "tcp"}]}]
    regs = _prod(externalWorkloads=vms)
    urn = {r.urn: r for r in regs}

    def deps(r) -> set[str]:
        return {urn[d].name for d in r.dependencies if d in urn}
    istio = [r for r in regs if r.type in ("kubernetes:networking.istio.io/v1:WorkloadGroup",
                                           "kubernetes:networking.istio.io/v1:WorkloadEntry")]
    assert sorted((r.type.rpartition(":")[2], r.name) for r in istio) == [
        ("WorkloadEntry", "mesh-prod-aws-policies:bookstore/bookstore-vm"),
        ("WorkloadEntry", "mesh-prod-aws-policies:bookstore/ledger"),
        ("WorkloadGroup", "mesh-prod-aws-policies:bookstore/bookstore-vm"),
        ("WorkloadGroup", "mesh-prod-aws-policies:bookstore/ledger")]
    for r in istio:
        assert {"mesh-prod-aws-control-plane-istio-base", "mesh-prod-aws-control-plane-istiod"} <= deps(r), r.name
        assert r.provider.startswith(next(p.urn for p in regs if p.name == "prod-aws-k8s" or
                                          p.name.endswith("prod-aws-k8s")))
    entry = next(r for r in istio if r.name.endswith("bookstore-vm") and r.type.endswith("WorkloadEntry"))
    assert entry.inputs["spec"]["labels"]["version"] == "v2" and entry.inputs["spec"]["network"] == "aws-us-east-1"
    accounts = [r for r in regs if r.type == "kubernetes:core/v1:ServiceAccount" and r.name.endswith("/ledger")]
    assert [r.name for r in accounts] == ["mesh-prod-aws-policies:bookstore/ledger"]
    exposed = sorted(r.name for r in regs if r.name.rpartition(":")[2] in ("istio-system/istiod-gateway",
                                                                         "istio-system/istiod-vs"))
    assert exposed == ["mesh-prod-aws-multicluster:istio-system/istiod-gateway",
                       "mesh-prod-aws-multicluster:istio-system/istiod-vs"]
    for r in (x for x in regs if x.name in exposed):
        assert "mesh-prod-aws-control-plane-istio-eastwestgateway" in deps(r)
