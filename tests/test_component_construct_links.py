"""``Construct`` of ``mesh:index:MultiClusterLinks`` over gRPC, as the engine drives it for a
TypeScript or YAML program (issue 14): the clusters' kubernetes providers arrive as provider
resource references inside the inputs (``clusters[].provider``; the schema refers to
``/kubernetes/v4.34.2/schema.json#/resources/pulumi:providers:kubernetes``), the SDK hydrates
them through the engine's ``getResource`` (pulumi/pulumi ``pkg/resource/deploy/builtins.go``), and
every child must register on its own cluster's provider. Reads (``Resource.get`` of the token
Secrets) go to the engine's ``ReadResource`` on the target cluster's provider.

The engine, plugin and wire helpers are ``tests/test_component_package.py``'s."""
from __future__ import annotations

import base64

import pytest
import yaml

from test_component_package import (PROJECT, SIG, STACK, STACK_URN, construct, downgrade, engine, new_urn,  # noqa: F401
                                    plugin, secret, to_dict, unwrap)

RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
"""The resource reference signature (pulumi/pulumi ``sdk/go/common/resource/sig``: ``ResourceReferenceSig``)."""
NAME = "links"
TYPE = "mesh:index:MultiClusterLinks"


def provider_urn(cluster: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::pulumi:providers:kubernetes::{cluster}"


def provider_id(cluster: str) -> str:
    return f"id-of-{cluster}-provider"


def kubeconfig(cluster: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {"server": f"https://{cluster}.example:6443",
                                                   "certificate-authority-data": base64.b64encode(b"ca").decode()}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "admin"}}]})


def inputs(mesh: str = "istio") -> dict:
    return {"mesh": mesh, "trustDomain": "shop.example", "meshName": "shop", "clusters": [
        {"name": c, "network": f"net-{c}", "eastWestAddresses": [ip],
         "provider": {SIG: RESOURCE_SIG, "urn": provider_urn(c), "id": provider_id(c), "packageVersion": "4.34.2"}}
        for c, ip in (("east", "203.0.113.10"), ("west", "203.0.113.20"))],
        # secret values: the SDK lifts them to the whole mapping (pulumi/runtime/rpc.py deserialize_property)
        "kubeconfigs": {c: secret(kubeconfig(c)) for c in ("east", "west")}}


@pytest.fixture
def two_clusters(engine):  # noqa: F811 (the fixture imported above)
    """The engine knows both providers the program registered before the component."""
    for c in ("east", "west"):
        engine.existing[provider_urn(c)] = {"id": provider_id(c), "state": {
            "kubeconfig": secret(kubeconfig(c)), "version": "4.34.2"}}
    yield engine
    for c in ("east", "west"):
        engine.existing.pop(provider_urn(c), None)


@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_construct_registers_each_clusters_objects_on_the_provider_its_reference_names(plugin, two_clusters, mesh):  # noqa: F811
    engine = two_clusters
    answer = construct(plugin, engine, TYPE, NAME, inputs(mesh))
    regs = engine.registered()
    component_urn, component = regs[0]
    assert (component.type, component.name, component.parent) == (TYPE, NAME, STACK_URN)
    assert answer.urn == component_urn == new_urn(STACK_URN, TYPE, NAME)
    children = [r for _, r in regs[1:]]
    assert children
    for r in children:
        cluster = r.name.split(":")[0].removeprefix(f"{NAME}-")
        assert cluster in ("east", "west"), r.name
        assert r.parent == component_urn and r.provider == f"{provider_urn(cluster)}::{provider_id(cluster)}", r.name
    expected = {"istio": {"east:istio-system/istio-reader-token-west", "east:istio-system/istio-remote-secret-west",
                          "west:istio-system/istio-reader-token-east", "west:istio-system/istio-remote-secret-east"},
                "linkerd": {"east:linkerd-multicluster/cluster-credentials-west", "east:linkerd/cluster-credentials-west",
                            "east:linkerd-multicluster/west", "west:linkerd-multicluster/cluster-credentials-east",
                            "west:linkerd/cluster-credentials-east", "west:linkerd-multicluster/east"}}[mesh]
    assert {r.name.removeprefix(f"{NAME}-") for r in children} == expected
    state, _ = unwrap(to_dict(answer.state))
    assert state["peers"] == {"east": ["west"], "west": ["east"]}


def test_construct_builds_each_remote_secret_from_the_targets_kubeconfig_and_token_and_keeps_it_secret(plugin, two_clusters):  # noqa: F811
    engine = two_clusters
    construct(plugin, engine, TYPE, NAME, inputs("istio"))
    reads = {(r.type, r.id): r for r in engine.reads}
    token_read = reads[("kubernetes:core/v1:Secret", "istio-system/istio-reader-token-east")]
    assert token_read.provider == f"{provider_urn('west')}::{provider_id('west')}"  # read on the target
    remote = next(r for _, r in engine.registered() if r.name == f"{NAME}-east:istio-system/istio-remote-secret-west")
    body = downgrade(to_dict(remote.object))
    string_data = body["stringData"]
    assert isinstance(string_data, dict) and string_data.get(SIG) is not None  # a secret on the wire
    config = yaml.safe_load(unwrap(string_data)[0]["west"])
    assert config["clusters"][0]["cluster"]["server"] == "https://west.example:6443"
    assert config["users"][0]["user"]["token"] == "token-istio-system/istio-reader-token-east"


def test_construct_with_two_clusters_of_one_name_fails_naming_the_field_before_registering(plugin, two_clusters):  # noqa: F811
    import grpc

    engine = two_clusters
    bad = inputs("linkerd")
    bad["clusters"][1]["name"] = "east"
    with pytest.raises(grpc.RpcError) as e:
        construct(plugin, engine, TYPE, NAME, bad)
    assert f"MultiClusterLinks {NAME}: clusters[1].name: cluster 'east' is given twice" in e.value.details()
    assert engine.registered() == []
