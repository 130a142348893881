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
