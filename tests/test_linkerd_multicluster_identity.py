"""Linkerd multicluster and caller identity (issue 10, point 12).

Upstream:
- Gateway mode loses the caller's identity: "the workload in the second cluster sees the request
  originating from its gateway, not from the workload in the first cluster. This makes it
  impossible to properly implement authorization policy across clusters"
  (https://linkerd.io/2023/09/12/linkerd-214/, "Lost Identity"). The gateway is a pod running only
  the proxy, as service account ``gateway.name`` in the chart's namespace
  (linkerd/linkerd2 edge-26.8.3 multicluster/charts/linkerd-multicluster/templates/gateway.yaml:
  34-36, 56, 71; its identity, :107, is
  ``<gateway.name>.<namespace>.serviceaccount.identity.<linkerdNamespace>.<identityTrustDomain>``).
- The gateway admits any meshed identity from any network (templates/gateway-policy.yaml:
  MeshTLSAuthentication ``any-meshed`` identities '*', NetworkAuthentication 0.0.0.0/0, ::/0), and
  reaches services it does not export (linkerd/linkerd2#4452, wontfix): admitting the gateway
  admits every meshed workload of every linked cluster.
- Pod-to-pod (remote discovery, flat network) keeps the caller's identity
  (https://linkerd.io/2/tasks/pod-to-pod-multicluster/).
"""
from __future__ import annotations

import pytest
import yaml

from mesh_components.core import multicluster as mc
from mesh_components.spec.errors import TranslationError
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh

from cp_helpers import find, stack_mesh, with_clusters
from program_harness import ROOT

MC_VALUES = ROOT.parent / "shared" / "charts" / "linkerd-multicluster" / "values.yaml"


def render(mesh):
    return render_mesh(load_mesh(mesh, base_dir=ROOT))


def gateway_identity(trust_domain: str) -> str:
    """The identity the destination sees in gateway mode, built as gateway.yaml:107 builds it."""
    v = yaml.safe_load(MC_VALUES.read_text())
    return (f"{v['gateway']['name']}.{mc.LINKERD_MC_NAMESPACE}.serviceaccount.identity."
            f"{v['linkerdNamespace']}.{trust_domain}")


def exports(states) -> dict[str, list[str]]:
    return {c: sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in st.concerns["multicluster"]
                      if o["kind"] == "Service" and mc.EXPORT_LABEL in o["metadata"].get("labels", {}))
            for c, st in states.items()}


def mysql_only_in(mesh: dict, cluster: str) -> dict:
    next(s for s in mesh["services"] if s["name"] == "mysql")["clusters"] = [cluster]
    return mesh


def test_the_shipped_stack_exports_nothing_no_other_cluster_calls():
    # every service runs in both clusters, so every declared call stays in its cluster: nothing is
    # mirrored through the public gateways (before: all five services, mysql and bookthief included)
    assert exports(render(stack_mesh("linkerd"))) == {"linkerd-east": [], "linkerd-west": []}


def test_a_cross_cluster_rule_through_the_gateway_is_refused_naming_the_gateway_identity():
    mesh = mysql_only_in(stack_mesh("linkerd"), "linkerd-west")  # the warehouse in linkerd-east calls it
    with pytest.raises(TranslationError) as err:
        render(mesh)
    problems = dict(err.value.problems)
    origin = next(o for o in problems if "bookwarehouse-access-mysql" in o)
    message = problems[origin]
    assert gateway_identity("cluster.local") in message
    assert "linkerd-east" in message and "every meshed workload of every linked cluster" in message
    assert "pod to pod" in message and "mesh.clusters[].network" in message


def test_pod_to_pod_keeps_identity_and_exports_only_the_callee():
    mesh = mysql_only_in(with_clusters(stack_mesh("linkerd"), 2, same_network=True), "c2")
    states = render(mesh)
    assert exports(states) == {"c1": [], "c2": ["bookwarehouse/mysql"]}
    patch = find(states["c2"].concerns["multicluster"], "Service", "mysql", "bookwarehouse")
    assert patch["metadata"]["labels"][mc.EXPORT_LABEL] == "remote-discovery"
    # the caller's own identity is what mysql admits; no gateway identity anywhere
    auth = find(states["c2"].objects, "MeshTLSAuthentication", "mysql-mysql", "bookwarehouse")
    assert auth["spec"]["identities"] == ["bookwarehouse.bookwarehouse.serviceaccount.identity.linkerd.cluster.local"]
    assert not [o for st in states.values() for o in st.objects
                if gateway_identity("cluster.local") in str(o.get("spec"))]


def test_the_gateway_identity_we_name_is_the_one_links_pin():
    st = render(stack_mesh("linkerd"))["linkerd-east"]
    link = find(st.concerns["multicluster"], "Link", "linkerd-west", mc.LINKERD_MC_NAMESPACE)
    assert link["spec"]["gatewayIdentity"] == gateway_identity("cluster.local")
