"""The mesh spec: shipped stacks load; bad input gets `path: message` problems naming the fix;
no mutation of a valid stack ever escapes as anything but a MeshError."""
from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh_components.spec.errors import MeshError, SpecError
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_mesh, load_stack

from program_harness import ROOT


def dev_mesh() -> dict:
    return yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]["service-mesh:mesh"]


def problems(mesh: dict) -> dict[str, str]:
    with pytest.raises(SpecError) as err:
        load_mesh(mesh, base_dir=ROOT)
    return dict(err.value.problems)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_load(stack):
    loaded = load_stack(stack, root=ROOT)
    assert loaded.spec.services and loaded.smi_documents


def test_defaults():
    m = load_mesh(dev_mesh(), base_dir=ROOT).spec
    web = m.services[0]
    assert web.account == web.name and web.pod_labels() == {"app": web.name}
    assert m.ca.key_algorithm is None and m.key_algorithm() == "ECDSA_P256"
    assert m.network_of(m.clusters[0]) == "bookstore-dev-network"


def mutate(mesh: dict, path: list, value) -> dict:
    out = copy.deepcopy(mesh)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


BAD = [
    (["backend", "type"], "istoi", "mesh.backend.type", "did you mean 'istio'?"),
    (["backend", "istio", "dataPlane"], "ambiant", "mesh.backend.istio.dataPlane", "did you mean 'ambient'?"),
    (["clusters", 0, "cloud"], "amazon", "mesh.clusters[0].cloud", "'aws', 'azure', 'gcp' or 'onprem'"),
    (["name"], "Book_Store", "mesh.name", "DNS-1123"),
    (["services", 2, "ports", 0, "port"], 70000, "mesh.services[2].ports[0].port", "1-65535"),
    (["services", 2, "ports", 0, "port"], 0, "mesh.services[2].ports[0].port", "1-65535"),
    (["services", 2, "namespace"], "bookstor", "mesh.services[2].namespace", "did you mean 'bookstore'?"),
    (["accessRules", 0, "sources", 0, "serviceAccount"], "bookbyer", "mesh.accessRules[0].sources[0].serviceAccount",
     "did you mean 'bookbuyer'?"),
    (["accessRules", 0, "destination", "serviceAccount"], "nobody", "mesh.accessRules[0].destination.serviceAccount",
     "unknown service account"),
    (["egress", 0, "hosts", 0], "*.bookpublisher.example.com", "mesh.egress[0].hosts[0]", "allowWildcard"),
    (["egress", 0, "sources", 0, "service"], "bookwarehose", "mesh.egress[0].sources[0]", "unknown service"),
    (["ingress", "routes", 0, "port"], 8080, "mesh.ingress.routes[0].port", "has no port 8080"),
    (["namespaces", 0, "clusters"], ["nowhere"], "mesh.namespaces[0].clusters[0]", "unknown cluster 'nowhere'"),
    (["ca", "intermediateValidityDays"], 400, "mesh.ca.intermediateValidityDays", "not shorter than the root"),
    (["trustDomian"], "x.org", "mesh.trustDomian", "did you mean 'trustDomain'?"),
    (["clusters", 0, "kubeconfig"], {"file": "a", "env": "B"}, "mesh.clusters[0].kubeconfig", "exactly one"),
    (["smiFiles"], ["policies/missing"], "mesh.smiFiles[0]", "neither a file nor a folder"),
    (["services"], "bookstore", "mesh.services", "list"),
]


@pytest.mark.parametrize("path,value,where,fragment", BAD, ids=[b[2] for b in BAD])
def test_bad_input_names_the_field_and_the_fix(path, value, where, fragment):
    found = problems(mutate(dev_mesh(), path, value))
    assert where in found, found
    assert fragment in found[where]


def test_duplicate_names_and_weights():
    mesh = dev_mesh()
    mesh["clusters"].append(dict(mesh["clusters"][0]))
    mesh["trafficSplits"] = [{"name": "s", "namespace": "bookstore", "service": "bookstore",
                              "backends": [{"service": "bookstore-v1", "weight": 0},
                                           {"service": "bookstore-v3", "weight": 0}]}]
    found = problems(mesh)
    assert "duplicate cluster 'dev'" in found["mesh.clusters[1]"]
    assert "every weight is 0" in found["mesh.trafficSplits[0].backends"]
    assert "unknown backend service 'bookstore-v3'" in found["mesh.trafficSplits[0].backends[1].service"]


def test_a_service_named_like_a_version_service_of_another_is_refused():
    """render.version_services creates ``bookstore-v2`` for version v2 of ``bookstore`` and owns it
    (a Service resource: pulumi-kubernetes < 4.29 adopted an existing one by upsert, and destroy
    deletes it), so the application cannot also declare a service of that name (OSM's demo ships
    one)."""
    mesh = dev_mesh()
    store = next(i for i, s in enumerate(mesh["services"]) if s["name"] == "bookstore")
    v2 = next(j for j, v in enumerate(mesh["services"][store]["versions"]) if v["name"] == "v2")
    mesh["services"].append({**copy.deepcopy(mesh["services"][store]), "name": "bookstore-v2"})
    mesh["services"][-1].pop("versions", None)
    found = problems(mesh)
    where = f"mesh.services[{len(mesh['services']) - 1}].name"
    assert found[where] == (f"service 'bookstore-v2' is named like the Service the mesh creates and owns for "
                            f"mesh.services[{store}].versions[{v2}] of service 'bookstore' in 'bookstore'; "
                            f"rename the version or this service")


def test_every_problem_is_reported_at_once():
    mesh = dev_mesh()
    mesh["services"][2]["namespace"] = "nope"
    mesh["egress"][0]["hosts"] = ["*.x.com"]
    assert len(problems(mesh)) >= 2


def test_linkerd_refuses_rsa_and_osm_refuses_many_clusters():
    mesh = dev_mesh()
    mesh["backend"] = {"type": "linkerd"}
    mesh["ca"]["keyAlgorithm"] = "RSA_2048"
    assert "ECDSA_P256" in problems(mesh)["mesh.ca.keyAlgorithm"]
    mesh = dev_mesh()
    mesh["backend"] = {"type": "osm"}
    mesh["clusters"].append({"name": "dev2", "cloud": "onprem", "region": "x"})
    assert "one cluster" in problems(mesh)["mesh.clusters"]


JUNK = st.sampled_from([None, 0, -1, 70000, True, "", "x", "Bad_Name", "*.a.com", [], ["x"], {}, {"a": 1},
                        [{"name": "x"}], 1.5])


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


DEV_PATHS = [p for p in _paths(dev_mesh()) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(DEV_PATHS), junk=JUNK, delete=st.booleans())
def test_any_mutation_is_valid_or_a_mesh_error(path, junk, delete):
    mesh = dev_mesh()
    node = mesh
    for p in path[:-1]:
        node = node[p]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = junk
    try:
        render_mesh(load_mesh(mesh, base_dir=ROOT))
    except MeshError as e:
        assert e.problems and all(isinstance(p, str) and m for p, m in e.problems)
