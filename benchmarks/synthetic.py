"""A generator of synthetic meshes: N services over M clusters, shaped like real ones.

Every tenth service is TCP (a database), every fifth HTTP service has v1/v2 and a 80/20 split,
every service may be called by the previous one (GET /api/.*), every twentieth reaches an external
API. Namespaces hold ten services each and span every cluster.

``write_stack`` writes one as a Pulumi stack file (``config: service-mesh:mesh: ...``, block style,
as a person writes it) for end-to-end runs of ``python -m mesh_components render``.
"""
from __future__ import annotations

from pathlib import Path

CLOUDS = ["aws", "azure", "gcp", "onprem"]


def synthetic_mesh(services: int, clusters: int = 3, data_plane: str = "sidecar") -> dict:
    """The ``mesh`` config object (as in a stack file) of a synthetic mesh."""
    cluster_names = [f"c{i}" for i in range(clusters)]
    mesh: dict = {
        "name": f"synthetic-{services}",
        "backend": {"type": "istio", "istio": {"dataPlane": data_plane}},
        "clusters": [{"name": c, "cloud": CLOUDS[i % len(CLOUDS)], "region": f"region-{i}", "network": f"net-{i}",
                      # multi-cluster: kubeconfigs build the remote secrets; AWS east-west gateways need
                      # static addresses (TEST-NET here)
                      "kubeconfig": {"stackReference": f"acme/platform/{c}"},
                      **({"eastWestGateway": {"addresses": [f"203.0.113.{i + 1}"], "subnets": [f"subnet-{i}"],
                                              "eipAllocations": [f"eipalloc-{i}"]}}
                         if CLOUDS[i % len(CLOUDS)] == "aws" and clusters > 1 else {})}
                     for i, c in enumerate(cluster_names)],
        "namespaces": [{"name": f"ns{n}"} for n in range((services + 9) // 10)],
        "services": [], "accessRules": [], "trafficSplits": [], "egress": [],
    }
    for i in range(services):
        ns, name, tcp = f"ns{i // 10}", f"svc{i}", i % 10 == 9
        svc: dict = {"name": name, "namespace": ns,
                     "ports": [{"port": 5432 if tcp else 8080, "name": "db" if tcp else "http",
                                "protocol": "tcp" if tcp else "http"}]}
        if not tcp and i % 5 == 0:
            svc["versions"] = [{"name": "v1"}, {"name": "v2"}]
            mesh["trafficSplits"].append({"name": f"{name}-split", "namespace": ns, "service": name, "backends": [
                {"service": f"{name}-v1", "weight": 80}, {"service": f"{name}-v2", "weight": 20}]})
        mesh["services"].append(svc)
        if i:
            prev = mesh["services"][i - 1]
            rule: dict = {"name": f"{prev['name']}-to-{name}", "namespace": ns, "destination": {"serviceAccount": name},
                          "sources": [{"serviceAccount": prev["name"], "namespace": prev["namespace"]}]}
            if tcp:
                rule["tcp"] = {"ports": [5432]}
            else:
                rule["http"] = [{"name": "api", "methods": ["GET"], "pathRegex": "/api/.*"}]
            mesh["accessRules"].append(rule)
        if i % 20 == 0:
            mesh["egress"].append({"name": f"ext{i}", "hosts": [f"api{i}.example.com"], "ports": [{"port": 443}],
                                   "sources": [{"service": name, "namespace": ns}]})
    return mesh


def write_stack(path: Path | str, services: int, clusters: int = 3, data_plane: str = "sidecar") -> Path:
    """Write the synthetic mesh of ``services`` services over ``clusters`` clusters as a stack file
    at ``path`` (block-style YAML under ``config.service-mesh:mesh``); returns the path."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    doc = {"config": {"service-mesh:mesh": synthetic_mesh(services, clusters, data_plane)}}
    path = Path(path)
    path.write_text(f"# synthetic stack: {services} services x {clusters} clusters (benchmarks/synthetic.py)\n"
                    + yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False, width=4096))
    return path
