"""mesh.externalWorkloads (issue 16, items 1-3): VMs join Istio (WorkloadGroup/WorkloadEntry, istiod
on the east-west gateway, istioctl's bootstrap files) and Linkerd (ExternalWorkload, Servers with
externalWorkloadSelector, the SPIRE bootstrap); OSM refuses. Upstream facts each test relies on are
cited beside it (and in mesh_components/core/external_workloads.py)."""
from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from mesh_components.core import external_workloads as ew
from mesh_components.core.render import render_mesh, write_tree
from mesh_components.spec import load_mesh
from mesh_components.spec.errors import SpecError

VALIDATE = Path("/work/shared/tools/validate-manifests")

# two clusters on two networks, each with a static east-west gateway; one VM per network: orders-vm
# joins declared service orders (version v2) in cluster east, ledger is a service of its own in west
MESH = {
    "name": "vm-mesh",
    "backend": {"type": "istio", "istio": {"dataPlane": "sidecar"}},
    "clusters": [
        {"name": "east", "cloud": "gcp", "region": "us-east1", "network": "net-east",
         "kubeconfig": {"file": "kube-east.yaml"}, "eastWestGateway": {"addresses": ["198.51.100.10"]}},
        {"name": "west", "cloud": "gcp", "region": "us-west1", "network": "net-west",
         "kubeconfig": {"file": "kube-west.yaml"}, "eastWestGateway": {"addresses": ["198.51.100.20"]}},
    ],
    "namespaces": [{"name": "shop"}, {"name": "legacy"}],
    "services": [
        {"name": "web", "namespace": "shop", "ports": [{"port": 8080, "name": "http", "protocol": "http"}]},
        {"name": "orders", "namespace": "shop",
         "ports": [{"port": 9090, "name": "http", "protocol": "http", "targetPort": 9091}],
         "versions": [{"name": "v1"}, {"name": "v2"}]},
    ],
    "externalWorkloads": [
        {"name": "orders-vm", "namespace": "shop", "service": "orders", "version": "v2",
         "addresses": ["10.10.0.5"], "cluster": "east"},
        {"name": "ledger", "namespace": "legacy", "addresses": ["10.20.0.7"], "cluster": "west",
         "ports": [{"port": 7000, "protocol": "tcp"}]},
    ],
    "accessRules": [
        {"name": "web-to-orders", "namespace": "shop", "destination": {"serviceAccount": "orders"},
         "sources": [{"serviceAccount": "web", "namespace": "shop"}],
         "http": [{"methods": ["GET"], "pathRegex": "/orders"}]},
        {"name": "ledger-to-web", "namespace": "shop", "destination": {"serviceAccount": "web"},
         "sources": [{"serviceAccount": "ledger", "namespace": "legacy"}], "tcp": {}},
    ],
    "trafficSplits": [{"name": "orders-canary", "namespace": "shop", "service": "orders",
                       "backends": [{"service": "orders-v1", "weight": 90}, {"service": "orders-v2", "weight": 10}]}],
}


def mesh(backend: str = "istio", **changes) -> dict:
    data = copy.deepcopy(MESH)
    data["backend"] = {"type": backend, **({"istio": {"dataPlane": "sidecar"}} if backend == "istio" else {})}
    data.update(changes)
    return data


def problems(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as e:
        load_mesh(data)
    return e.value.problems


def objects(states, cluster: str, kind: str | None = None) -> list[dict]:
    return [o for o in states[cluster].objects if kind is None or o["kind"] == kind]


def named(states, cluster: str, kind: str, name: str) -> dict:
    return next(o for o in objects(states, cluster, kind) if o["metadata"]["name"] == name)


def selects(selector: dict, labels: dict) -> bool:
    """A Kubernetes equality selector (Service ``selector``, ``matchLabels``) against labels."""
    return all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------------------------------------
# rendered objects pass the CRD schemas and CEL rules


@pytest.mark.skipif(not VALIDATE.exists(), reason="validate-manifests not available")
@pytest.mark.parametrize("backend", ["istio", "linkerd"])
def test_rendered_tree_passes_validate_manifests(backend, tmp_path):
    states = render_mesh(load_mesh(mesh(backend)))
    write_tree(states, tmp_path / "out")
    for cluster in ("east", "west"):
        run = subprocess.run([str(VALIDATE), str(tmp_path / "out" / cluster)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
        assert " 0 invalid" in run.stdout
    kinds = {o["kind"] for c in states for o in objects(states, c)}
    assert ({"WorkloadGroup", "WorkloadEntry"} if backend == "istio" else {"ExternalWorkload"}) <= kinds


def test_no_external_workloads_renders_nothing_new():
    """Opt-in: without mesh.externalWorkloads none of their objects (nor istiod's exposure) exist."""
    data = mesh()
    del data["externalWorkloads"]
    data["accessRules"] = data["accessRules"][:1]
    states = render_mesh(load_mesh(data))
    names = {(o["kind"], o["metadata"]["name"]) for c in states for o in objects(states, c)}
    assert not {k for k, _ in names} & {"WorkloadGroup", "WorkloadEntry", "ExternalWorkload"}
    assert ("Gateway", "istiod-gateway") not in names


# ---------------------------------------------------------------------------------------------
# Istio


def test_istio_workload_entry_is_selected_by_the_service_and_its_version_service():
    """A k8s Service selects WorkloadEntries by its selector (PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES,
    default true: istio 1.30.3 pilot/pkg/features/pilot.go:119-121; controller.go:773-831), at the
    numeric targetPort unless the entry names the port (controller.go:833-860)."""
    spec = load_mesh(mesh()).spec
    states = render_mesh(spec)
    we = named(states, "east", "WorkloadEntry", "orders-vm")
    assert we["spec"]["address"] == "10.10.0.5" and we["spec"]["network"] == "net-east"
    assert we["spec"]["ports"] == {"http": 9091} and we["spec"]["serviceAccount"] == "orders"
    orders = spec.services_by_key[("shop", "orders")]
    assert selects(orders.pod_labels(), we["spec"]["labels"])
    assert selects(named(states, "east", "Service", "orders-v2")["spec"]["selector"], we["spec"]["labels"])
    assert not selects(named(states, "east", "Service", "orders-v1")["spec"]["selector"], we["spec"]["labels"])
    # only where the VM joins: the other cluster's istiod reads it across clusters (pilot.go:155-156)
    assert not objects(states, "west", "WorkloadEntry") or all(
        o["metadata"]["name"] != "orders-vm" for o in objects(states, "west", "WorkloadEntry"))
    group = named(states, "east", "WorkloadGroup", "orders-vm")
    assert group["spec"]["metadata"]["labels"] == we["spec"]["labels"]


def test_istio_destination_policy_covers_the_vm_exactly():
    """The AuthorizationPolicy of orders selects the VM (its proxy's labels are its bootstrap
    labels, istio 1.30.3 pilot/pkg/model/context.go:616-620) and nothing of ledger; it admits web
    only, on the target port the VM listens on."""
    states = render_mesh(load_mesh(mesh()))
    ap = named(states, "east", "AuthorizationPolicy", "web-to-orders-orders")
    we = named(states, "east", "WorkloadEntry", "orders-vm")
    ledger = named(states, "west", "WorkloadEntry", "ledger")
    assert selects(ap["spec"]["selector"]["matchLabels"], we["spec"]["labels"])
    assert not selects(ap["spec"]["selector"]["matchLabels"], ledger["spec"]["labels"])
    rule, = ap["spec"]["rules"]
    assert rule["from"] == [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}]
    assert rule["to"][0]["operation"]["ports"] == [str(we["spec"]["ports"]["http"])]


def test_istio_vm_source_is_admitted_by_its_identity_exactly():
    """ledger calls web as cluster.local/ns/legacy/sa/ledger, the principal its istio-agent's token
    (audience istio-ca, istioctl/pkg/workload/workload.go:409-431) gets from istiod."""
    states = render_mesh(load_mesh(mesh()))
    ap = named(states, "east", "AuthorizationPolicy", "ledger-to-web-web")
    assert [r["from"] for r in ap["spec"]["rules"]] == [
        [{"source": {"principals": ["cluster.local/ns/legacy/sa/ledger"]}}]]
    assert ap["spec"]["rules"][0]["to"] == [{"operation": {"ports": ["8080"]}}]


def test_istiod_is_exposed_on_the_east_west_gateway_as_upstream_does():
    """samples/multicluster/expose-istiod.yaml at 1.30.3: 15012 and 15017 TLS passthrough."""
    states = render_mesh(load_mesh(mesh()))
    for cluster in ("east", "west"):
        gw = named(states, cluster, "Gateway", "istiod-gateway")
        assert gw["spec"]["selector"] == {"istio": "eastwestgateway"}
        assert sorted(s["port"]["number"] for s in gw["spec"]["servers"]) == [15012, 15017]
        vs = named(states, cluster, "VirtualService", "istiod-vs")
        assert [(t["match"][0]["port"], t["route"][0]["destination"]["port"]["number"]) for t in vs["spec"]["tls"]] \
            == [(15012, 15012), (15017, 443)]
        assert gw in states[cluster].concerns["multicluster"]


def test_istio_vm_on_another_network_gets_that_network():
    data = mesh()
    data["externalWorkloads"][0]["network"] = "net-west"
    we = named(render_mesh(load_mesh(data)), "east", "WorkloadEntry", "orders-vm")
    assert we["spec"]["network"] == "net-west"


def test_istio_without_addresses_auto_registers():
    """No addresses: no static entry; the VM registers from the group (ISTIO_META_AUTO_REGISTER_GROUP,
    pilot/pkg/autoregistration/controller.go:234)."""
    data = mesh()
    data["externalWorkloads"][0]["addresses"] = []
    loaded = load_mesh(data)
    states = render_mesh(loaded)
    assert all(o["metadata"]["name"] != "orders-vm" for o in objects(states, "east", "WorkloadEntry"))
    files = ew.bootstrap_files(loaded, "orders-vm", None)
    meta = yaml.safe_load(files["mesh.yaml"])["defaultConfig"]["proxyMetadata"]
    assert meta["ISTIO_META_AUTO_REGISTER_GROUP"] == "orders-vm"


def test_istio_bootstrap_files_are_istioctls_and_deterministic(tmp_path):
    from mesh_components.cli import main

    root = tmp_path / "root.pem"
    root.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    stack = tmp_path / "Pulumi.vms.yaml"
    stack.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": mesh()}}))
    outs = []
    for run in ("a", "b"):
        assert main(["workload-bootstrap", str(stack), "--workload", "orders-vm", "--out", str(tmp_path / run),
                     "--root-cert", str(root)]) == 0
        outs.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    assert outs[0] == outs[1]
    files = {k: v.decode() for k, v in outs[0].items()}
    assert {"cluster.env", "mesh.yaml", "hosts", "root-cert.pem"} <= set(files)
    assert "istio-token" not in files  # never a fake token: the command that makes one
    assert files["istio-token.command"] == ("kubectl --context east create token orders -n shop --audience istio-ca "
                                            "--duration 3600s > istio-token\n")
    assert files["hosts"] == "198.51.100.10 istiod.istio-system.svc\n"
    env = dict(line.split("=", 1) for line in files["cluster.env"].splitlines())
    assert env["ISTIO_SERVICE"] == "orders-vm.shop" and env["SERVICE_ACCOUNT"] == "orders"
    assert env["ISTIO_INBOUND_PORTS"] == "9091" and env["ISTIO_SERVICE_CIDR"] == "'*'"
    meta = yaml.safe_load(files["mesh.yaml"])["defaultConfig"]["proxyMetadata"]
    import json

    we_labels = named(render_mesh(load_mesh(mesh())), "east", "WorkloadEntry", "orders-vm")["spec"]["labels"]
    assert selects(we_labels, json.loads(meta["ISTIO_METAJSON_LABELS"]))
    assert meta["ISTIO_META_NETWORK"] == "net-east" and meta["ISTIO_META_CLUSTER_ID"] == "east"
    assert files["root-cert.pem"] == root.read_text()
    assert main(["workload-bootstrap", str(stack), "--workload", "orders-vm", "--out", str(tmp_path / "a")]) == 1


# ---------------------------------------------------------------------------------------------
# Linkerd


def test_linkerd_external_workload_identity_and_selection():
    """Identity <sa>.<ns>.serviceaccount.identity.linkerd.<td>; a Service selects it by labels
    (linkerd2 edge-26.8.3 endpoints_controller.go:369-377) at its port equal to the numeric
    targetPort, TCP (endpoints_reconciler.go:642-665)."""
    states = render_mesh(load_mesh(mesh("linkerd")))
    ext = named(states, "east", "ExternalWorkload", "orders-vm")
    assert ext["spec"]["meshTLS"] == {"identity": "orders.shop.serviceaccount.identity.linkerd.cluster.local",
                                      "serverName": "orders.shop.serviceaccount.identity.linkerd.cluster.local"}
    assert ext["spec"]["workloadIPs"] == [{"ip": "10.10.0.5"}]
    assert ext["spec"]["ports"] == [{"name": "http", "port": 9091, "protocol": "TCP"}]
    labels = ext["metadata"]["labels"]
    assert selects(named(states, "east", "Service", "orders-v2")["spec"]["selector"], labels)
    assert not selects(named(states, "east", "Service", "orders-v1")["spec"]["selector"], labels)
    # the policy controller reads the default policy from the workload itself (workload.rs:140-189)
    assert ext["metadata"]["annotations"]["config.linkerd.io/default-inbound-policy"] == "deny"


def test_linkerd_destination_policy_covers_the_vm_as_the_pods():
    """The pods' Server (podSelector) cannot select ExternalWorkloads (CRD oneOf podSelector |
    externalWorkloadSelector): a twin Server selects them, with the same routes and sources."""
    states = render_mesh(load_mesh(mesh("linkerd")))
    pod, vm = named(states, "east", "Server", "orders-http"), named(states, "east", "Server", "orders-http-external")
    assert "externalWorkloadSelector" not in pod["spec"] and "podSelector" not in vm["spec"]
    assert vm["spec"]["port"] == pod["spec"]["port"] == 9091
    ext = named(states, "east", "ExternalWorkload", "orders-vm")
    assert selects(vm["spec"]["externalWorkloadSelector"]["matchLabels"], ext["metadata"]["labels"])
    ledger = named(states, "west", "ExternalWorkload", "ledger")
    assert not selects(vm["spec"]["externalWorkloadSelector"]["matchLabels"], ledger["metadata"]["labels"])

    def policy(server: str) -> list:
        routes = [r for r in objects(states, "east", "HTTPRoute") if r["apiVersion"].startswith("policy.linkerd.io")
                  and r["spec"]["parentRefs"][0]["name"] == server]
        out = []
        for r in routes:
            authn = named(states, "east", "MeshTLSAuthentication", r["metadata"]["name"])
            out.append((r["spec"]["rules"], authn["spec"]["identities"]))
        return sorted(map(repr, out))

    assert policy("orders-http") == policy("orders-http-external") != []


def test_linkerd_vm_source_is_admitted_by_its_identity_exactly():
    states = render_mesh(load_mesh(mesh("linkerd")))
    authn = named(states, "east", "MeshTLSAuthentication", "web-http")
    assert authn["spec"]["identities"] == ["ledger.legacy.serviceaccount.identity.linkerd.cluster.local"]


def test_linkerd_bootstrap_names_the_workload_and_spiffe_id():
    """Env names: linkerd2-proxy release/v2.366.0 linkerd/app/src/env.rs:200-262; with SPIRE the
    server id must be a SPIFFE URI (env/identity.rs:17-40)."""
    loaded = load_mesh(mesh("linkerd"))
    files = ew.bootstrap_files(loaded, "shop/orders-vm", None)
    assert files == ew.bootstrap_files(loaded, "shop/orders-vm", None)
    env = dict(line.split("=", 1) for line in files["proxy.env"].splitlines())
    assert env["LINKERD2_PROXY_IDENTITY_SERVER_ID"] == "spiffe://cluster.local/ns/shop/sa/orders"
    assert env["LINKERD2_PROXY_IDENTITY_SERVER_NAME"] == "orders.shop.serviceaccount.identity.linkerd.cluster.local"
    assert env["LINKERD2_PROXY_POLICY_WORKLOAD"] == """'{"ns":"shop","external_workload":"orders-vm"}'"""
    assert "-dns orders.shop.serviceaccount.identity.linkerd.cluster.local" in files["spire-entry.command"]
    assert "--subresource=status" in files["ready.command"]
    assert "trust-anchors.pem" not in files


# ---------------------------------------------------------------------------------------------
# refusals and spec errors


def test_osm_refuses_external_workloads():
    data = mesh("osm", clusters=MESH["clusters"][:1])
    data["externalWorkloads"] = [dict(data["externalWorkloads"][0])]
    found = [(p, m) for p, m in problems(data) if p == "mesh.externalWorkloads"]
    assert found and "OSM" in found[0][1] and "istio" in found[0][1] and "linkerd" in found[0][1]


@pytest.mark.parametrize("field,value,path,words", [
    ("cluster", "north", "mesh.externalWorkloads[0].cluster", "unknown cluster"),
    ("network", "net-south", "mesh.externalWorkloads[0].network", "unknown network"),
    ("service", "order", "mesh.externalWorkloads[0].service", "did you mean 'orders'"),
    ("namespace", "shops", "mesh.externalWorkloads[0].namespace", "unknown namespace"),
    ("addresses", ["vm1.example.com"], "mesh.externalWorkloads[0].addresses[0]", "not an IP address"),
    ("ports", [{"port": 1234}], "mesh.externalWorkloads[0].ports[0].port", "has no port 1234"),
    ("serviceAccount", "other", "mesh.externalWorkloads[0].serviceAccount", "runs as its account"),
    ("version", "v3", "mesh.externalWorkloads[0].version", "unknown version"),
])
def test_spec_errors_name_the_field(field, value, path, words):
    data = mesh()
    data["externalWorkloads"][0][field] = value
    found = [m for p, m in problems(data) if p == path]
    assert found and words in found[0], problems(data)


def test_duplicate_names_and_addresses():
    data = mesh()
    data["externalWorkloads"].append(dict(data["externalWorkloads"][0]))
    got = problems(data)
    assert ("mesh.externalWorkloads[2]", "duplicate external workload 'shop/orders-vm'; names must be unique") in got
    assert any(p == "mesh.externalWorkloads[2].addresses[0]" for p, _ in got)


def test_linkerd_needs_one_address_on_the_clusters_network():
    data = mesh("linkerd")
    data["externalWorkloads"][0]["addresses"] = ["10.10.0.5", "10.10.0.6"]
    data["externalWorkloads"][1]["network"] = "net-east"
    got = dict(problems(data))
    assert "one address" in got["mesh.externalWorkloads[0].addresses"]
    assert "IP connectivity" in got["mesh.externalWorkloads[1].network"]


def test_istio_refuses_ambient_and_single_network():
    data = mesh()
    data["backend"]["istio"]["dataPlane"] = "ambient"
    assert any("ambient" in m for p, m in problems(data) if p == "mesh.externalWorkloads[0]")
    data = mesh()
    for c in data["clusters"]:
        c["network"] = "one"
        del c["eastWestGateway"]
    data["flatNetworks"] = ["one"]
    assert any("east-west gateway" in m for p, m in problems(data) if p == "mesh.externalWorkloads[0].cluster")


def test_labels_that_another_service_selects_are_refused():
    """Not wider: a VM of orders whose labels web's Service selects would be policed as web too."""
    data = mesh()
    data["services"][0]["labels"] = {"tier": "front"}
    data["externalWorkloads"][0]["labels"] = {"tier": "front"}
    assert any("service 'web'" in m for p, m in problems(data) if p == "mesh.externalWorkloads[0].labels")


def test_graph_marks_external_workloads():
    from mesh_components.analysis.graph import build_graph
    from mesh_components.core.render import traffic_model

    loaded = load_mesh(mesh())
    g = build_graph(loaded.spec, traffic_model(loaded))
    vms = {n.id: n for n in g.nodes if n.kind == "vm"}
    assert len(vms) == 2 and all("external workload" in n.label for n in vms.values())
    assert any(e.kind == "member" and e.source in vms for e in g.edges)
    assert any(e.kind == "allow" and e.source in vms and "web" in e.target for e in g.edges)


def test_egress_hides_entries_from_a_vm_that_is_no_source():
    """A Sidecar's workloadSelector selects a VM proxy by its labels as it does a pod (its labels are
    its bootstrap labels, istio 1.30.3 pilot/pkg/model/context.go:616-620): the VM with a service of
    its own in a source namespace gets the same 'no-egress' Sidecar as the namespace's other services."""
    data = mesh()
    data["externalWorkloads"][1].update(namespace="shop", cluster="east")
    data["accessRules"][1]["sources"][0]["namespace"] = "shop"
    data["egress"] = [{"name": "api", "hosts": ["api.example.com"], "ports": [{"port": 443, "protocol": "https"}],
                       "sources": [{"service": "web", "namespace": "shop"}]}]
    states = render_mesh(load_mesh(data))
    sidecar = named(states, "east", "Sidecar", "ledger-no-egress")
    ledger = named(states, "east", "WorkloadEntry", "ledger")
    assert sidecar["spec"]["workloadSelector"]["labels"] == ledger["spec"]["labels"]
    web = named(states, "east", "AuthorizationPolicy", "ledger-to-web-web")
    assert web["spec"]["rules"][0]["from"][0]["source"]["principals"] == ["cluster.local/ns/shop/sa/ledger"]


@pytest.mark.parametrize("backend", ["istio", "linkerd"])
def test_smi_file_traffic_target_may_name_a_vm_as_its_source(backend, tmp_path):
    """A TrafficTarget read from an SMI file admits a VM's service account as an inline access rule
    does (spec.smi.check_documents takes mesh.externalWorkloads' accounts as sources); the
    translation is the one of the inline rule, so the file and the inline rule render the same policy."""
    (tmp_path / "smi").mkdir()
    (tmp_path / "smi" / "ledger.yaml").write_text(yaml.safe_dump({
        "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
        "metadata": {"name": "ledger-to-web", "namespace": "shop"},
        "spec": {"destination": {"kind": "ServiceAccount", "name": "web", "namespace": "shop"},
                 "sources": [{"kind": "ServiceAccount", "name": "ledger", "namespace": "legacy"}],
                 "rules": [{"kind": "TCPRoute", "name": "web-tcp"}]}}) + "---\n" + yaml.safe_dump({
        "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
        "metadata": {"name": "web-tcp", "namespace": "shop"}, "spec": {}}))
    data = mesh(backend)
    data["accessRules"] = [r for r in data["accessRules"] if r["name"] != "ledger-to-web"]
    data["smiFiles"] = ["smi"]
    from_file = render_mesh(load_mesh(data, base_dir=tmp_path))
    inline = render_mesh(load_mesh(mesh(backend)))
    kinds = {"AuthorizationPolicy", "MeshTLSAuthentication"}  # Linkerd names identities in the latter

    def policy(states):
        return {c: sorted((o["kind"], o["metadata"]["name"], yaml.safe_dump(o["spec"]))
                          for o in objects(states, c) if o["kind"] in kinds) for c in ("east", "west")}
    assert policy(from_file) == policy(inline)
    source = ("cluster.local/ns/legacy/sa/ledger" if backend == "istio"
              else "ledger.legacy.serviceaccount.identity.linkerd.cluster.local")
    assert source in yaml.safe_dump(policy(from_file))
