"""Issue 11, points 3-5: what OSM v1.2.4 really does with our output, read from its source.

3. OSM reads a port's protocol from ``appProtocol``, else the name's prefix, else http
   (openservicemesh/osm v1.2.4 pkg/k8s/client.go:296-310); server-first protocols need
   ``tcp-server-first`` (pkg/envoy/lds/listener.go:69-111, 210-230; demo/deploy-mysql.sh:17-30).
   Istio (pkg/config/kube/conversion.go:26-93) and Linkerd (default opaque ports,
   charts/linkerd-control-plane/values.yaml:236-245) get their own checks.
4. A Retry applies only with ``featureFlags.enableRetryPolicy`` (pkg/catalog/retry.go:11-15).
5. An IngressBackend port is matched against the Service's target port (pkg/catalog/ingress.go:41-44).
"""
from __future__ import annotations

import copy

import pytest
import yaml

from mesh_components.spec.errors import SpecError, TranslationError
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh

from cp_helpers import stack_mesh
from program_harness import FAKE_KUBECONFIG, ROOT, run_program, stack_config
from test_policy import find

SHARED_CHARTS = ROOT.parent / "shared" / "charts"

# --- OSM v1.2.4's reading of a Service port, transcribed from its source ---------------------

SUPPORTED_PROTOCOLS_IN_MESH = ["tcp-server-first", "http", "tcp", "grpc"]
"""pkg/constants/constants.go:311, in order."""


def osm_reads(service_port: dict) -> str:
    """pkg/k8s/client.go:296-310: the name's ``<p>-`` prefix in SupportedProtocolsInMesh order,
    else http; ``appProtocol`` wins when set."""
    protocol = "http"
    for p in SUPPORTED_PROTOCOLS_IN_MESH:
        if service_port.get("name", "").startswith(p + "-"):
            protocol = p
            break
    return service_port.get("appProtocol", protocol)


def server_side_apply(live: dict, patch: dict) -> dict:
    """Merge ``patch``'s ``spec.ports`` into ``live``'s as Server-Side Apply does: a list map keyed
    by (port, protocol) (k8s.io/api v0.36.3 core/v1/types.go:5981-5988), the patch's fields set on
    the matching entry, the rest of the entry and of the Service kept."""
    out = copy.deepcopy(live)
    for entry in patch.get("spec", {}).get("ports", []):
        key = (entry["port"], entry.get("protocol", "TCP"))
        hit = [p for p in out["spec"]["ports"] if (p["port"], p.get("protocol", "TCP")) == key]
        if hit:
            hit[0].update(entry)
        else:
            out["spec"]["ports"].append(dict(entry))
    return out


def app_service(name: str, ns: str, ports: list[dict]) -> dict:
    """The application's own Service, as it ships (no appProtocol)."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"protocol": "TCP", **p} for p in ports]}}


def render(mesh: dict):
    return next(iter(render_mesh(load_mesh(mesh, base_dir=ROOT)).values()))


def problems(mesh: dict) -> dict[str, str]:
    with pytest.raises((SpecError, TranslationError)) as err:
        render(mesh)
    return dict(err.value.problems)


def service_patches(st) -> list[dict]:
    return [o for o in st.objects if o["kind"] == "Service"
            and (o["metadata"].get("annotations") or {}).get("mesh-components.io/patch") == "true"]


# --- 3. OSM: appProtocol by patch -----------------------------------------------------------------

def test_osm_stack_mysql_is_read_as_tcp_server_first_after_the_patch():
    st = render(stack_mesh("osm"))
    live = app_service("mysql", "bookwarehouse", [{"name": "mysql", "port": 3306, "targetPort": 3306}])
    assert osm_reads(live["spec"]["ports"][0]) == "http"  # what OSM made of the port before this fix
    patch = find(service_patches(st), "Service", "mysql", "bookwarehouse")
    # only the list-map keys and the one field the mesh sets: no name, targetPort, selector, labels
    assert patch["spec"] == {"ports": [{"port": 3306, "protocol": "TCP", "appProtocol": "tcp-server-first"}]}
    assert set(patch["metadata"]) == {"name", "namespace", "annotations"}
    merged = server_side_apply(live, patch)
    assert osm_reads(merged["spec"]["ports"][0]) == "tcp-server-first"
    assert merged["spec"]["ports"][0]["name"] == "mysql" and merged["spec"]["selector"] == {"app": "mysql"}
    # ports named as OSM reads them need nothing: no patch of the http services
    assert [p["metadata"]["name"] for p in service_patches(st)] == ["mysql"]


def test_osm_patches_exactly_the_ports_whose_name_says_another_protocol():
    mesh = stack_mesh("osm")
    ports = [{"port": 80, "name": "http", "protocol": "http"},
             {"port": 9090, "name": "grpc", "protocol": "grpc"},            # no "grpc-" prefix: http to OSM
             {"port": 5432, "name": "tcp-db", "protocol": "tcp", "serverFirst": True},
             {"port": 6379, "name": "tcp-cache", "protocol": "tcp"},
             {"port": 8443, "name": "tls", "protocol": "tls"},              # app TLS is opaque TCP to OSM
             {"port": 8081, "protocol": "http"}]                            # name unknown: say it
    mesh["services"].append({"name": "multi", "namespace": "bookstore", "ports": ports})
    st = render(mesh)
    patch = find(service_patches(st), "Service", "multi", "bookstore")
    assert patch["spec"]["ports"] == [
        {"port": 9090, "protocol": "TCP", "appProtocol": "grpc"},
        {"port": 5432, "protocol": "TCP", "appProtocol": "tcp-server-first"},
        {"port": 8443, "protocol": "TCP", "appProtocol": "tcp"},
        {"port": 8081, "protocol": "TCP", "appProtocol": "http"}]
    live = app_service("multi", "bookstore", [{k: v for k, v in p.items() if k in ("port", "name")} for p in ports])
    read = {p["port"]: osm_reads(p) for p in server_side_apply(live, patch)["spec"]["ports"]}
    assert read == {80: "http", 9090: "grpc", 5432: "tcp-server-first", 6379: "tcp", 8443: "tcp", 8081: "http"}


def test_osm_version_services_carry_the_protocol_osm_reads():
    mesh = stack_mesh("osm")
    mesh["services"].append({"name": "db", "namespace": "bookwarehouse", "versions": [{"name": "v1"}],
                             "ports": [{"port": 5432, "name": "pg", "protocol": "tcp", "serverFirst": True},
                                       {"port": 8443, "name": "tls", "protocol": "tls"}]})
    st = render(mesh)
    svc = find(st.objects, "Service", "db-v1", "bookwarehouse")
    assert [osm_reads(p) for p in svc["spec"]["ports"]] == ["tcp-server-first", "tcp"]


def test_osm_service_patch_registers_its_ports_under_the_mocks(tmp_path, monkeypatch):
    (tmp_path / ".kube").mkdir()   # the osm stack reads ~/.kube/config
    (tmp_path / ".kube" / "config").write_text(FAKE_KUBECONFIG)
    monkeypatch.setenv("HOME", str(tmp_path))
    regs = run_program(stack_config("osm"))
    patches = [r for r in regs if r.type == "kubernetes:core/v1:ServicePatch"]
    assert [(r.inputs["metadata"]["name"], r.inputs["spec"]) for r in patches] == [
        ("mysql", {"ports": [{"port": 3306, "protocol": "TCP", "appProtocol": "tcp-server-first"}]})]


def test_server_first_is_for_tcp_ports_only():
    mesh = stack_mesh("osm")
    mesh["services"][0]["ports"][0]["serverFirst"] = True
    found = problems(mesh)
    assert any(path.startswith("mesh.services[0].ports[0]") and "serverFirst applies to protocol tcp" in m
               for path, m in found.items()), found


# --- 3. Istio: the port name must declare TCP (or be a well-known port) -------------------------

@pytest.mark.parametrize("port,name,ok", [
    (3306, "mysql", True),           # instance.go Parse: MySQL (IsTCP)
    (5432, "tcp-postgres", True),
    (3306, "db", True),              # conversion.go:86-92: well-known port, unnamed protocol -> TCP
    (5432, "db", False),             # sniffed
    (5432, "postgres", False),       # not an Istio protocol name: sniffed
    (5432, "http-db", False),        # read as HTTP
    (5432, None, False),             # the Service's name is unknown
])
def test_istio_server_first_needs_a_tcp_name(port, name, ok):
    mesh = stack_mesh("dev")
    mesh["services"].append({"name": "db", "namespace": "bookwarehouse",
                             "ports": [{"port": port, "protocol": "tcp", "serverFirst": True,
                                        **({"name": name} if name else {})}]})
    path = f"mesh.services[{len(mesh['services']) - 1}].ports[0].name"
    if ok:
        render(mesh)
    else:
        assert "name it 'tcp' or 'tcp-<suffix>'" in problems(mesh)[path]


# --- 3. Linkerd: server-first ports must be opaque ----------------------------------------------

def linkerd_with(port: int, target: int | None = None, *, rule: bool = False) -> dict:
    """The linkerd stack plus a server-first service ``db``: in bookbuyer, a namespace without
    destinations (no Server, no default deny), or with ``rule`` in bookwarehouse with a TCP rule
    (so an opaque Server selects its pods)."""
    mesh = stack_mesh("linkerd")
    ns = "bookwarehouse" if rule else "bookbuyer"
    mesh["services"].append({"name": "db", "namespace": ns, "ports": [
        {"port": port, "name": "db", "protocol": "tcp", "serverFirst": True,
         **({"targetPort": target} if target else {})}]})
    if rule:
        mesh["accessRules"].append({"name": "warehouse-db", "namespace": ns, "destination": {"serviceAccount": "db"},
                                    "sources": [{"serviceAccount": "bookwarehouse"}], "tcp": {}})
    return mesh


@pytest.mark.skipif(not (SHARED_CHARTS / "linkerd-control-plane").is_dir(), reason="../shared/charts missing")
def test_linkerd_default_opaque_ports_are_the_charts():
    from mesh_components.core.app_protocol import LINKERD_DEFAULT_OPAQUE_PORTS
    values = yaml.safe_load((SHARED_CHARTS / "linkerd-control-plane" / "values.yaml").read_text())
    assert values["proxy"]["opaquePorts"] == LINKERD_DEFAULT_OPAQUE_PORTS


def test_linkerd_server_first_port_in_the_default_opaque_ports_renders_unchanged():
    plain = render_mesh(load_mesh(stack_mesh("linkerd"), base_dir=ROOT))
    mesh = stack_mesh("linkerd")
    mysql = next(s for s in mesh["services"] if s["name"] == "mysql")
    mysql["ports"][0]["serverFirst"] = True   # 3306: opaque by default on both sides
    marked = render_mesh(load_mesh(mesh, base_dir=ROOT))
    assert {c: st.objects for c, st in marked.items()} == {c: st.objects for c, st in plain.items()}
    assert not [o for st in marked.values() for o in service_patches(st) if o["metadata"]["name"] == "mysql"
                and "spec" in o]


def test_linkerd_refuses_a_server_first_port_that_is_not_opaque_and_accepts_the_override():
    mesh = linkerd_with(1433)
    path = f"mesh.services[{len(mesh['services']) - 1}].ports[0].serverFirst"
    found = problems(mesh)
    assert "not opaque" in found[path] and "/values/proxy" in found[path]
    # the pod's port outside the list, no Server: the server's proxy would detect on it
    assert "port(s) 1433 are not opaque" in problems(linkerd_with(3306, 1433))[path]
    # an opaque Server selecting the pods on 1433 makes that side opaque (endpoints_watcher.go:611-650)
    st = render(linkerd_with(3306, 1433, rule=True))
    server = find(st.objects, "Server", "db-db", "bookwarehouse")
    assert (server["spec"]["port"], server["spec"]["proxyProtocol"]) == (1433, "opaque")
    mesh["overrides"] = mesh.get("overrides", []) + [{
        "kind": "HelmRelease", "name": "linkerd-control-plane",
        "patch": [{"op": "add", "path": "/values/proxy",
                   "value": {"opaquePorts": "25,587,3306,4444,5432,6379,9300,11211,1433"}}]}]
    render_mesh(load_mesh(mesh, base_dir=ROOT))


# --- 4. OSM: the Retry feature flag -------------------------------------------------------------

def with_retries(mesh: dict) -> dict:
    store = next(s for s in mesh["services"] if s["name"] == "bookstore")
    store["resilience"] = {"retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": ["5xx"]}}
    return mesh


def without_telemetry(mesh: dict) -> dict:
    """The stack without its mesh.telemetry, whose tracing patches the same MeshConfig (merged with the
    retry flag: tests/test_telemetry_linkerd_osm.py)."""
    mesh.pop("telemetry", None)
    return mesh


def test_a_rendered_retry_turns_on_osms_retry_policy_flag():
    st = render(with_retries(without_telemetry(stack_mesh("osm"))))
    assert [o for o in st.objects if o["kind"] == "Retry"]
    osm = next(r for r in st.releases if r.name == "osm")
    assert osm.values["osm"]["featureFlags"] == {"enableRetryPolicy": True}
    # the value reaches only a MeshConfig osm-bootstrap creates; an existing one is kept as it is
    # (cmd/osm-bootstrap/osm-bootstrap.go:282-329), so the flag is also patched onto it
    patch = find(st.concerns["control-plane"], "MeshConfig", "osm-mesh-config", "osm-system")
    assert patch == {"apiVersion": "config.openservicemesh.io/v1alpha2", "kind": "MeshConfig",
                     "metadata": {"name": "osm-mesh-config", "namespace": "osm-system",
                                  "annotations": {"mesh-components.io/patch": "true"}},
                     "spec": {"featureFlags": {"enableRetryPolicy": True}}}
    # without a Retry the chart default stays (the stack renders none)
    plain_state = render(without_telemetry(stack_mesh("osm")))
    plain = next(r for r in plain_state.releases if r.name == "osm")
    assert "featureFlags" not in plain.values["osm"]
    assert not [o for o in plain_state.objects if o["kind"] == "MeshConfig"]


@pytest.mark.skipif(not (SHARED_CHARTS / "osm").is_dir(), reason="../shared/charts missing")
def test_osm_chart_default_leaves_retries_off():
    values = yaml.safe_load((SHARED_CHARTS / "osm" / "values.yaml").read_text())
    assert values["osm"]["featureFlags"]["enableRetryPolicy"] is False   # charts/osm/values.yaml:484


# --- 5. OSM: IngressBackend names the target port -------------------------------------------------

def test_osm_ingress_backend_names_the_target_port():
    mesh = stack_mesh("osm")
    store = next(s for s in mesh["services"] if s["name"] == "bookstore")
    store["ports"] = [{"port": 80, "targetPort": 14001, "name": "http", "protocol": "http"}]
    mesh["ingress"] = {"hosts": ["bookstore.example.com"], "tls": {"secretName": "bookstore-tls"},
                       "routes": [{"pathPrefix": "/", "service": "bookstore", "namespace": "bookstore", "port": 80}]}
    st = render(mesh)
    backend = find(st.objects, "IngressBackend", "ingress-bookstore", "bookstore")
    # pkg/catalog/ingress.go:42 skips a backend whose port is not the MeshService's TargetPort
    mesh_service = {"name": "bookstore", "port": 80, "target_port": 14001}
    applied = [b for b in backend["spec"]["backends"]
               if b["name"] == mesh_service["name"] and b["port"]["number"] == mesh_service["target_port"]]
    assert applied == [{"name": "bookstore", "port": {"number": 14001, "protocol": "http"}}]
    # the gateway's own route still addresses the Service port
    route = find(st.objects, "HTTPRoute", "ingress-bookstore-bookstore", "mesh-ingress")
    assert {r["port"] for rule in route["spec"]["rules"] for r in rule["backendRefs"]} == {80}
