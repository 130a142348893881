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
    # the stack names kubeconfig file kube-east.yaml and no context: the file's current context
    assert files["istio-token.command"] == ("kubectl --kubeconfig kube-east.yaml create token orders -n shop "
                                            "--audience istio-ca --duration 3600s > istio-token\n")
    assert files["hosts"] == "198.51.100.10 istiod.istio-system.svc\n"
    env = dict(line.split("=", 1) for line in files["cluster.env"].splitlines())
    assert env["ISTIO_SERVICE"] == "orders-vm.shop" and env["SERVICE_ACCOUNT"] == "orders"
    assert env["ISTIO_INBOUND_PORTS"] == "'*'" and env["ISTIO_SERVICE_CIDR"] == "'*'"
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
    """Identity the SPIFFE ID, server name <sa>.<ns>.serviceaccount.identity.linkerd.<td> (see
    test_linkerd_external_workload_identity_is_a_uri); a Service selects it by labels
    (linkerd2 edge-26.8.3 endpoints_controller.go:369-377) at its port equal to the numeric
    targetPort, TCP (endpoints_reconciler.go:642-665)."""
    states = render_mesh(load_mesh(mesh("linkerd")))
    ext = named(states, "east", "ExternalWorkload", "orders-vm")
    assert ext["spec"]["meshTLS"] == {"identity": "spiffe://cluster.local/ns/shop/sa/orders",
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


# ---------------------------------------------------------------------------------------------
# review fixes (each test cites the upstream source of the defect)

PEM = "-----BEGIN CERTIFICATE-----\nMIIBxTCCAWugAwIBAgIQ\n-----END CERTIFICATE-----\n"


def sourced(tmp_path, name: str, text: str, keys: list[str]) -> dict[str, str]:
    """The values a POSIX shell gets sourcing ``text`` with ``set -a`` (as istio-start.sh does)."""
    (tmp_path / name).write_text(text)
    script = f"set -a; . ./{name}; " + "; ".join(f'printf "%s\\0" "${k}"' for k in keys)
    out = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    return dict(zip(keys, out.split("\0")))


def test_linkerd_external_workload_identity_is_a_uri_and_sources_the_dns_identity():
    """The destination controller sends meshTLS.identity as a URI identity ("we assume external
    workloads support only SPIRE identity": linkerd2 edge-26.8.3 controller/api/destination/
    endpoint_translator.go:378-388); the proxy parses it with Id::parse_uri = url::Url::parse
    (linkerd2-proxy release/v2.366.0 linkerd/identity/src/lib.rs:58-62) and drops TLS for an invalid
    one (linkerd/proxy/api-resolve/src/pb.rs:69-82). So it is the SVID's SPIFFE ID (verify_id
    accepts any SAN, linkerd/meshtls/verifier/src/lib.rs:43-53), the one spire-entry.command
    registers; the server name and the -dns SAN stay the DNS identity, and as a client the VM is
    known by its first SAN (verifier lib.rs:35-41), the DNS one, which MeshTLSAuthentication names."""
    from urllib.parse import urlparse

    loaded = load_mesh(mesh("linkerd"))
    states = render_mesh(loaded)
    for cluster, name, ns, sa in (("east", "orders-vm", "shop", "orders"), ("west", "ledger", "legacy", "ledger")):
        tls = named(states, cluster, "ExternalWorkload", name)["spec"]["meshTLS"]
        assert urlparse(tls["identity"]).scheme == "spiffe"  # a URL: parse_uri accepts it
        assert urlparse(tls["serverName"]).scheme == ""  # a DNS name: parse_uri would reject it
        files = ew.bootstrap_files(loaded, f"{ns}/{name}", None)
        words = files["spire-entry.command"].split()
        assert words[words.index("-spiffeID") + 1] == tls["identity"]
        assert words[words.index("-dns") + 1] == tls["serverName"]
        assert f"LINKERD2_PROXY_IDENTITY_SERVER_ID={tls['identity']}\n" in files["proxy.env"]
        assert f"LINKERD2_PROXY_IDENTITY_SERVER_NAME={tls['serverName']}\n" in files["proxy.env"]
    ledger_dns = named(states, "west", "ExternalWorkload", "ledger")["spec"]["meshTLS"]["serverName"]
    assert named(states, "east", "MeshTLSAuthentication", "web-http")["spec"]["identities"] == [ledger_dns]


def test_istio_cluster_env_merges_proxy_metadata_and_overrides(tmp_path):
    """createClusterEnv writes proxyConfig.proxyMetadata merged with its overrides (istio 1.30.3
    istioctl/pkg/workload/workload.go:383-390); istio-start.sh sources only sidecar.env and
    cluster.env (tools/packaging/common/istio-start.sh:24-34), so the metadata pilot-agent reads
    from its environment (ISTIO_META_DNS_CAPTURE, ISTIO_META_CLUSTER_ID, ...) must be in it."""
    files = ew.bootstrap_files(load_mesh(mesh()), "orders-vm", None)
    meta = yaml.safe_load(files["mesh.yaml"])["defaultConfig"]["proxyMetadata"]
    overrides = ["ISTIO_INBOUND_PORTS", "ISTIO_NAMESPACE", "ISTIO_SERVICE", "ISTIO_SERVICE_CIDR",
                 "ISTIO_LOCAL_EXCLUDE_PORTS", "SERVICE_ACCOUNT", "ISTIO_SVC_IP"]
    keys = sorted(set(meta) | set(overrides))
    env = sourced(tmp_path, "cluster.env", files["cluster.env"], keys)
    assert {k: env[k] for k in meta} == meta
    assert {"ISTIO_META_DNS_CAPTURE", "ISTIO_META_CLUSTER_ID", "ISTIO_METAJSON_LABELS"} <= set(meta)
    assert env["ISTIO_SERVICE"] == "orders-vm.shop" and env["ISTIO_SVC_IP"] == "10.10.0.5"
    assert len(files["cluster.env"].splitlines()) == len(keys)  # nothing else


def test_istio_inbound_capture_is_every_port_but_istioctls_exclusions(tmp_path):
    """Pods capture every inbound port (istio 1.30.3 manifests/charts/istio-control/istio-discovery/
    values.yaml:351 includeInboundPorts "*"); the VM does too, so no listener bypasses STRICT mTLS
    and AuthorizationPolicies. istio-iptables applies ISTIO_LOCAL_EXCLUDE_PORTS only with "*"
    (tools/istio-iptables/pkg/cmd/root.go:65-73): ssh, Prometheus, the agent ports
    (workload.go:350-362, status port 15020 by default)."""
    for name in ("orders-vm", "ledger"):
        files = ew.bootstrap_files(load_mesh(mesh()), name, None)
        env = sourced(tmp_path, "cluster.env", files["cluster.env"],
                      ["ISTIO_INBOUND_PORTS", "ISTIO_LOCAL_EXCLUDE_PORTS"])
        assert env["ISTIO_INBOUND_PORTS"] == "*"
        assert sorted(env["ISTIO_LOCAL_EXCLUDE_PORTS"].split(",")) == ["15020", "15021", "15090", "22"]
        assert "statusPort" not in yaml.safe_load(files["mesh.yaml"])["defaultConfig"]  # so 15020 is it


def test_istio_own_service_vm_gets_the_service_account_its_token_needs():
    """istioctl's token is a TokenRequest on the WorkloadGroup's service account, which must exist
    (istio 1.30.3 istioctl/pkg/workload/workload.go:408-425): ledger (a service of its own) gets
    ServiceAccount legacy/ledger on its cluster; orders-vm runs as the application's orders (none);
    an account a declared service there runs as is the application's (none); Linkerd needs none
    (its VM identity is a SPIRE SVID)."""
    states = render_mesh(load_mesh(mesh()))
    sa = named(states, "west", "ServiceAccount", "ledger")
    assert sa["metadata"]["namespace"] == "legacy"
    assert sa["metadata"]["labels"][ew.EXTERNAL_LABEL] == "ledger"
    group = named(states, "west", "WorkloadGroup", "ledger")
    assert group["spec"]["template"]["serviceAccount"] == sa["metadata"]["name"]
    assert sa in states["west"].concerns["policy"]
    assert all(o["metadata"]["labels"].get(k) == v for o in (sa,) for k, v in group["metadata"]["labels"].items()
               if k != ew.EXTERNAL_LABEL)
    assert not [o for c in ("east", "west") for o in objects(states, c, "ServiceAccount")
                if o["metadata"]["name"] == "orders"]
    assert not [o for o in objects(states, "east", "ServiceAccount") if o["metadata"]["namespace"] == "legacy"]
    data = mesh()
    data["services"].append({"name": "books", "namespace": "legacy", "serviceAccount": "ledger",
                             "ports": [{"port": 80, "name": "http", "protocol": "http"}]})
    states = render_mesh(load_mesh(data))
    assert not [o for o in objects(states, "west", "ServiceAccount") if o["metadata"]["name"] == "ledger"]
    linkerd = render_mesh(load_mesh(mesh("linkerd")))
    assert not [o for o in objects(linkerd, "west", "ServiceAccount") if o["metadata"]["name"] == "ledger"]


@pytest.mark.parametrize("kubeconfig,flags", [
    ({"file": "kube-east.yaml"}, "kubectl --kubeconfig kube-east.yaml"),
    ({"file": "~/k 1.yaml", "context": "gke_east"}, "kubectl --kubeconfig ~/'k 1.yaml' --context gke_east"),
    ({"env": "KUBE_EAST"}, "kubectl --context east"),
])
@pytest.mark.parametrize("backend", ["istio", "linkerd"])
def test_bootstrap_commands_reach_the_cluster_as_the_stack_does(backend, kubeconfig, flags):
    """The stack reaches a cluster through its kubeconfig file, cut to its context (default the
    file's current-context: spec.minify_kubeconfig); the written kubectl commands use the same."""
    data = mesh(backend)
    data["clusters"][0]["kubeconfig"] = kubeconfig
    files = ew.bootstrap_files(load_mesh(data), "orders-vm", None)
    command = files["istio-token.command" if backend == "istio" else "ready.command"]
    assert command.startswith(flags + " -n shop " if backend == "linkerd" else flags + " create token ")
    assert f"{flags} -n " in files["README"]  # the root certificate / trust anchor command
    assert "--context east " not in command or kubeconfig.get("env")


def test_a_vm_of_a_versioned_service_needs_its_version():
    """The split sends orders' traffic to orders-v1 / orders-v2 (render.version_services), which
    select by the version's labels: a VM without version would be selected by neither."""
    data = mesh()
    del data["externalWorkloads"][0]["version"]
    found = [m for p, m in problems(data) if p == "mesh.externalWorkloads[0].version"]
    assert found and "v1" in found[0] and "v2" in found[0]
    data = mesh()
    data["services"][1]["versions"] = []
    data["trafficSplits"] = []
    del data["externalWorkloads"][0]["version"]
    load_mesh(data)  # no versions: none needed


def test_labels_may_not_override_the_version_labels():
    """labels: {version: v1} on a VM of version v2 would make orders-v1 select it instead."""
    data = mesh()
    data["externalWorkloads"][0]["labels"] = {"version": "v1"}
    found = [m for p, m in problems(data) if p == "mesh.externalWorkloads[0].labels"]
    assert found and "version" in found[0] and "'v2'" in found[0]
    data["externalWorkloads"][0]["labels"] = {"version": "v2", "tier": "vm"}
    states = render_mesh(load_mesh(data))
    we = named(states, "east", "WorkloadEntry", "orders-vm")
    assert selects(named(states, "east", "Service", "orders-v2")["spec"]["selector"], we["spec"]["labels"])


def test_linkerd_proxy_env_has_cluster_networks_and_trust_anchors(tmp_path):
    """LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS (linkerd2-proxy release/v2.366.0
    linkerd/app/src/env.rs:669-688; unset: cluster-scoped default policies unsupported) is the
    chart's clusterNetworks, which pod proxies get (linkerd2 edge-26.8.3
    charts/partials/templates/_proxy.tpl:78-79) and which the rendered values leave at its default
    (charts/linkerd-control-plane/values.yaml:13); LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS (env.rs:217)
    is the PEM given, exactly, when proxy.env is sourced."""
    loaded = load_mesh(mesh("linkerd"))
    chart_values = Path("/work/shared/charts/linkerd-control-plane/values.yaml")
    if chart_values.exists():
        assert yaml.safe_load(chart_values.read_text())["clusterNetworks"] == ew.LINKERD_CLUSTER_NETWORKS
    control_planes = [r for state in render_mesh(loaded).values() for r in state.releases
                      if r.chart == "linkerd-control-plane"]
    assert len(control_planes) == 2 and all("clusterNetworks" not in r.values for r in control_planes)
    files = ew.bootstrap_files(loaded, "orders-vm", PEM)
    keys = ["LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"]
    env = sourced(tmp_path, "proxy.env", files["proxy.env"], keys)
    assert env == {keys[0]: ew.LINKERD_CLUSTER_NETWORKS, keys[1]: PEM}
    assert files["trust-anchors.pem"] == PEM
    without = ew.bootstrap_files(loaded, "orders-vm", None)
    assert "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS=" not in without["proxy.env"]
    assert "NOT SET" in without["README"] and "resolve in-cluster names" in without["README"]


@pytest.mark.parametrize("backend", ["istio", "linkerd"])
def test_spire_ca_with_external_workloads_is_refused(backend):
    """ca.mode spire: an Istio VM's istio-agent gets an istiod certificate with a token
    (istio 1.30.3 istioctl/pkg/workload/workload.go:398-432), not a SPIRE SVID - not exact, refused."""
    data = mesh(backend, ca={"mode": "spire"})
    found = [m for p, m in problems(data) if p == "mesh.externalWorkloads"]
    assert found and "ca.mode" in found[0]
    data["externalWorkloads"] = []
    assert not [p for p, _ in _problems_or_none(data) if p == "mesh.externalWorkloads"]


def _problems_or_none(data: dict) -> list[tuple[str, str]]:
    try:
        load_mesh(data)
    except SpecError as e:
        return e.problems
    return []
