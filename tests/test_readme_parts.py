"""The README's "Using the parts alone" program runs as written (issue 14), under Pulumi's mocks:
the CA alone registers no Kubernetes object, and SmiPolicies registers the Istio policy of the SMI
file it names on the provider given in ``opts``, bookstore admitted to POST /restock-books only."""
from __future__ import annotations

import re

import pulumi

from program_harness import ROOT, Mocks, RecordingMonitor


def readme_programs() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Using the parts alone\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def readme_program() -> str:
    return readme_programs()[0]


def test_the_readme_program_registers_the_ca_alone_and_the_policies_on_the_given_provider(monkeypatch):
    monkeypatch.chdir(ROOT)  # the program names policies/smi/... relative to the project, as a stack does
    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="test", preview=False, monitor=monitor)
    exported = {}
    monkeypatch.setattr(pulumi, "export", lambda k, v: exported.__setitem__(k, v))
    captured = {}

    @pulumi.runtime.test
    def program():
        exec(compile(readme_program(), "README.md", "exec"), {"__name__": "__main__"})
        return pulumi.Output.all(**{k: v for k, v in exported.items()}).apply(captured.update)

    program()
    regs = [r for r in monitor.registrations if r.type != "pulumi:pulumi:Stack"]
    by_urn = {r.urn: r for r in regs}
    ca = [r for r in regs if r.type == "mesh:index:MeshCertificateAuthority"]
    assert len(ca) == 1 and [r.type for r in regs if r.parent == ca[0].urn] == ["pulumi-python:dynamic:Resource"]
    provider = next(r for r in regs if r.type == "pulumi:providers:kubernetes")
    assert provider.name == "istio-cluster"
    policies = next(r for r in regs if r.type == "mesh:index:SmiPolicies")
    k8s_objects = [r for r in regs if r.type.startswith("kubernetes:")]
    assert k8s_objects and all(by_urn[r.parent].urn == policies.urn for r in k8s_objects)
    assert all(r.provider.startswith(provider.urn) for r in k8s_objects)
    rules = [rule for r in k8s_objects if r.type == "kubernetes:security.istio.io/v1:AuthorizationPolicy"
             for rule in r.inputs["spec"].get("rules", [])]
    assert rules == [{"from": [{"source": {"principals": ["cluster.local/ns/bookstore/sa/bookstore"]}}],
                      "to": [{"operation": {"methods": ["POST"], "paths": ["/restock-books"],
                                            "ports": ["14001"]}}]}]
    assert captured["authorization_policies"] and set(captured["linkerd_values"]["east"]) >= {"identityTrustAnchorsPEM"}


def test_the_readme_multicluster_program_links_both_clusters_each_on_its_own_provider(monkeypatch):
    """The second program: MultiClusterLinks alone on two Linkerd clusters, kubeconfigs from secret
    config (set here as the CLI would: ``pulumi config set --secret eastKubeconfig ...``)."""
    from program_harness import FAKE_KUBECONFIG

    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="service-mesh", stack="test", preview=False, monitor=monitor)
    monkeypatch.setattr(pulumi, "export", lambda k, v: None)
    pulumi.runtime.set_all_config({"service-mesh:eastKubeconfig": FAKE_KUBECONFIG,
                                   "service-mesh:westKubeconfig": FAKE_KUBECONFIG},
                                  ["service-mesh:eastKubeconfig", "service-mesh:westKubeconfig"])
    try:
        @pulumi.runtime.test
        def program():
            exec(compile(readme_programs()[1], "README.md", "exec"), {"__name__": "__main__"})
        program()
    finally:
        pulumi.runtime.set_all_config({})
    regs = [r for r in monitor.registrations if r.type != "pulumi:pulumi:Stack"]
    providers = {r.name: r.urn for r in regs if r.type == "pulumi:providers:kubernetes"}
    assert sorted(providers) == ["east", "west"]
    links = {r.name: r for r in regs if r.type == "kubernetes:multicluster.linkerd.io/v1alpha3:Link"}
    assert sorted(links) == ["links-east:linkerd-multicluster/west", "links-west:linkerd-multicluster/east"]
    for name, r in links.items():
        assert r.provider.startswith(providers[name.split(":")[0].removeprefix("links-")] + "::")
    patches = [r.name for r in regs if r.type == "kubernetes:core/v1:ServicePatch"]
    assert patches == ["links-west:bookwarehouse/bookwarehouse"]
