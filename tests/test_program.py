"""The real __main__.py under Pulumi mocks, for every stack in stacks/: the resource graph it
registers (types, providers, parents, CRD ordering, secrets) and that a second run is identical."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pulumi
import pytest

from program_harness import FAKE_KUBECONFIG, ROOT, run_program, stack_config

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
ISTIO_STACKS = [s for s in STACKS if json.loads(stack_config(s)["service-mesh:mesh"])["backend"]["type"] == "istio"]
CRD_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:yaml/v2:ConfigFile")
CR_GROUPS = (".istio.io/", "gateway.networking.k8s.io", ".linkerd.io/", ".smi-spec.io/", ".openservicemesh.io/")


@pytest.fixture(autouse=True)
def kube_env(tmp_path, monkeypatch):
    """Kubeconfigs for the stacks' sources: a file for dev (HOME), variables for staging."""
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(FAKE_KUBECONFIG)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("STAGING_USE1_KUBECONFIG", FAKE_KUBECONFIG)
    monkeypatch.setenv("STAGING_USW2_KUBECONFIG", str(home / ".kube" / "config"))


def by_type(regs, typ):
    return [r for r in regs if r.type == typ]


def k8s_resources(regs):
    return [r for r in regs if r.type.startswith("kubernetes:") and r.type != "pulumi:providers:kubernetes"]


@pytest.fixture(scope="module")
def runs():
    cache = {}

    def get(stack):
        if stack not in cache:
            cache[stack] = run_program(stack_config(stack), stack)
        return cache[stack]
    return get


def test_every_stack_is_tested():
    assert {"dev", "staging", "prod"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_one_provider_per_cluster_and_every_object_on_its_cluster(stack, runs):
    regs = runs(stack)
    config = json.loads(stack_config(stack)["service-mesh:mesh"])
    clusters = [c["name"] for c in config["clusters"]]
    providers = by_type(regs, "pulumi:providers:kubernetes")
    assert sorted(p.inputs["clusterIdentifier"] for p in providers) == sorted(clusters)
    provider_refs = {f"{p.urn}::{p.name}-id": p.inputs["clusterIdentifier"] for p in providers}
    used = Counter()
    for r in k8s_resources(regs):
        assert r.provider in provider_refs, f"{r.name} is not on an explicit cluster provider"
        cluster = provider_refs[r.provider]
        assert f"-{cluster}-" in r.name, f"{r.name} does not carry its cluster's name"
        used[cluster] += 1
    assert set(used) == set(clusters)
    # every kubeconfig reaches its provider as a secret
    assert all("kubeconfig" in p.secret_inputs for p in providers)


def test_prod_registers_kubernetes_resources_on_three_distinct_providers(runs):
    regs = runs("prod")
    assert len({r.provider for r in k8s_resources(regs)}) == 3


@pytest.mark.parametrize("stack", STACKS)
def test_component_tree(stack, runs):
    regs = runs(stack)
    urn_type = {r.urn: r.type for r in regs}
    meshes = by_type(regs, "mesh:index:ServiceMesh")
    assert len(meshes) == 1
    mesh_urn = meshes[0].urn
    clusters = json.loads(stack_config(stack)["service-mesh:mesh"])["clusters"]
    for t in ("ControlPlane", "SmiPolicies", "EgressRules", "EnvoyGateway"):
        comps = by_type(regs, f"mesh:index:{t}")
        assert len(comps) == len(clusters)
        assert all(c.parent == mesh_urn for c in comps)
    ca = by_type(regs, "pulumi-python:dynamic:Resource")
    assert len(ca) == 1 and ca[0].parent == mesh_urn
    for r in k8s_resources(regs):
        assert urn_type[r.parent].startswith("mesh:index:"), f"{r.name} is not parented to a component"


@pytest.mark.parametrize("stack", STACKS)
def test_custom_resources_wait_for_their_crds(stack, runs):
    regs = runs(stack)
    crd_sources = {r.urn for r in regs if r.type in CRD_TYPES}
    crs = by_type(regs, "kubernetes:apiextensions.k8s.io:CustomResource") or [
        r for r in k8s_resources(regs) if any(g in r.type for g in CR_GROUPS)]
    assert crs
    for r in crs:
        assert set(r.dependencies) & crd_sources, f"{r.name} does not depend on a CRD source"


@pytest.mark.parametrize("stack", ISTIO_STACKS)
def test_istiod_waits_for_cacerts_and_base(stack, runs):
    regs = runs(stack)
    urn = {r.name: r.urn for r in regs}
    istiods = [r for r in by_type(regs, "kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "istiod"]
    assert istiods
    for r in istiods:
        deps = {d.rsplit("::", 1)[-1] for d in r.dependencies}
        assert any(d.endswith("istio-base") for d in deps)
        assert any("secret-istio-system-cacerts" in d for d in deps)


@pytest.mark.parametrize("stack", ISTIO_STACKS)
def test_ca_keys_are_secret(stack, runs):
    regs = runs(stack)
    ca = by_type(regs, "pulumi-python:dynamic:Resource")[0]
    assert "intermediates" in ca.additional_secret_outputs
    secrets = [r for r in k8s_resources(regs) if r.type == "kubernetes:core/v1:Secret"]
    cacerts = [r for r in secrets if r.inputs["metadata"]["name"] == "cacerts"]
    assert len(cacerts) == len(json.loads(stack_config(stack)["service-mesh:mesh"])["clusters"])
    for r in cacerts:
        assert any(p.startswith("stringData") for p in r.secret_inputs), r.secret_inputs
        assert set(r.inputs["stringData"]) == {"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"}


def test_second_run_registers_identical_inputs(runs):
    # registration order depends on when Outputs resolve, so compare by (type, name)
    first = {(r.type, r.name): r for r in runs("prod")}
    second = {(r.type, r.name): r for r in run_program(stack_config("prod"), "prod")}
    assert first.keys() == second.keys()
    for key, a in first.items():
        b = second[key]
        if a.type == "pulumi-python:dynamic:Resource":  # the pickled provider differs by memory layout
            assert {k: v for k, v in a.inputs.items() if k != "__provider"} == \
                   {k: v for k, v in b.inputs.items() if k != "__provider"}
        else:
            assert a.inputs == b.inputs, a.name
        assert (a.parent, a.provider, sorted(a.dependencies), a.secret_inputs) == \
               (b.parent, b.provider, sorted(b.dependencies), b.secret_inputs), a.name


def test_removing_a_cluster_removes_only_its_resources(runs):
    full = runs("prod")
    config = stack_config("prod")
    mesh = json.loads(config["service-mesh:mesh"])
    mesh["clusters"] = [c for c in mesh["clusters"] if c["name"] != "prod-gcp"]
    mesh["services"] = [{k: v for k, v in s.items()} for s in mesh["services"]]
    smaller = run_program({**config, "service-mesh:mesh": json.dumps(mesh)}, "prod")
    names_full = {(r.type, r.name) for r in full}
    names_small = {(r.type, r.name) for r in smaller}
    removed = names_full - names_small
    assert names_small <= names_full
    assert removed and all("prod-gcp" in name for t, name in removed if t != "pulumi-python:dynamic:Resource")


def test_invalid_config_fails_before_any_resource(monkeypatch):
    config = stack_config("dev")
    mesh = json.loads(config["service-mesh:mesh"])
    mesh["clusters"][0]["cloud"] = "aws-typo"
    with pytest.raises(Exception) as err:
        run_program({**config, "service-mesh:mesh": json.dumps(mesh)}, "dev")
    assert "mesh.clusters[0].cloud" in str(err.value)
    assert "did you mean 'aws'?" in str(err.value)
