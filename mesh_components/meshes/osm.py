"""Open Service Mesh control plane (v1.2.4, archived upstream): the ``osm`` Helm release and its
namespace, per cluster (policy translation lives in ``osm_policy``).

Upstream behaviour this follows: ../shared/charts/osm (chart 1.2.4 from
https://openservicemesh.github.io/osm), https://release-v1-2.docs.openservicemesh.io/docs/guides/install/
and the OSM v1.2.4 sources: ``osm-bootstrap`` installs the SMI and OSM CRDs it serves
(``cmd/osm-bootstrap/crds``) at start, so custom resources wait for the release; the ``tresor``
certificate provider loads an existing ``osm-ca-bundle`` Secret instead of minting its own
(``pkg/certificate/castorage/k8s``), which is how the mesh CA (RSA, ``ca.ca_objects("osm", ...)``)
reaches it; ``osm namespace add`` labels a namespace ``openservicemesh.io/monitored-by: <mesh>`` and
annotates it ``openservicemesh.io/sidecar-injection: enabled``.

What OSM cannot do is refused at validation (``spec.check_references``): several clusters, Istio
options, locality failover.
"""
from __future__ import annotations

from ..core.ca import OSM_NAMESPACE
from ..core.meta import deep_merge, k8s_object, k8s_patch

REPOSITORY = "https://openservicemesh.github.io/osm"


def needs_gateway_api(spec) -> bool:
    """OSM v1.2 reads SMI, not the Gateway API."""
    return False


def control_plane(spec, cluster, *, ca_values: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Objects and Helm releases of OSM in ``cluster``: ``(objects, releases)``.

    One release ``osm`` in ``osm-system`` with ``osm.meshName`` = the mesh name (the namespace
    label value), ``osm.trustDomain``, permissive traffic policy off (SMI default deny, as the
    other meshes render it), global egress off (only the spec's egress rules leave the mesh) and
    the CA values of ``ca.ca_helm_values("osm", ...)``. The namespace is labelled
    ``openservicemesh.io/ignore`` so OSM never injects its own control plane.
    """
    ca_values = ca_values or {}
    objects = [k8s_object("v1", "Namespace", OSM_NAMESPACE, None, spec.name,
                          labels={"openservicemesh.io/ignore": "true"})]
    values = deep_merge({"osm": {
        "meshName": spec.name,
        "trustDomain": spec.trust_domain,
        "enablePermissiveTrafficPolicy": False,
        "enableEgress": False,
    }}, ca_values.get("osm", {}))
    return objects, [{"name": "osm", "namespace": OSM_NAMESPACE, "repository": REPOSITORY, "chart": "osm",
                      "version": spec.backend.chart_version, "values": values, "depends_on": []}]


def namespace_labels(spec, namespace: str) -> dict[str, str]:
    """``openservicemesh.io/monitored-by: <mesh name>``: the namespace belongs to this mesh."""
    return {"openservicemesh.io/monitored-by": spec.name}


def namespace_annotations(spec, namespace: str) -> dict[str, str]:
    """``openservicemesh.io/sidecar-injection: enabled``: OSM injects Envoy into new pods."""
    return {"openservicemesh.io/sidecar-injection": "enabled"}


def release_values_for(objects: list[dict]) -> dict[str, dict]:
    """Values, per release name, that ``objects`` (the cluster's rendered objects) need merged into
    the releases of :func:`control_plane`: ``{"osm": {"osm": {"featureFlags": {"enableRetryPolicy":
    True}}}}`` when a ``Retry`` is among them, else ``{}``. OSM v1.2.4 ignores every Retry unless
    the flag is on (pkg/catalog/retry.go:11-15); the chart's default is ``false`` (charts/osm/values.yaml:483-484), rendered into the preset
    MeshConfig (templates/preset-mesh-config.yaml:58).

    The preset reaches the ``osm-mesh-config`` MeshConfig only when osm-bootstrap creates it, at
    first install: an existing MeshConfig is kept as it is (cmd/osm-bootstrap/osm-bootstrap.go:
    282-329), as for every other MeshConfig value of this release: on a running mesh the flag
    reaches it through the patch of :func:`control_plane_objects_for`."""
    return {"osm": {"osm": {"featureFlags": {"enableRetryPolicy": True}}}} if _renders_retry(objects) else {}


MESH_CONFIG_API = "config.openservicemesh.io/v1alpha2"
MESH_CONFIG_NAME = "osm-mesh-config"
"""The MeshConfig OSM reads, in its own namespace (OSM v1.2.4 pkg/constants/constants.go:149;
cmd/osm-bootstrap/osm-bootstrap.go:48)."""


def _renders_retry(objects: list[dict]) -> bool:
    return any(o["kind"] == "Retry" and o["apiVersion"].startswith("policy.openservicemesh.io/") for o in objects)


def control_plane_objects_for(objects: list[dict]) -> list[dict]:
    """Control-plane objects that ``objects`` (the cluster's rendered policy objects) need: when a
    ``Retry`` is among them, ``[patch of MeshConfig osm-system/osm-mesh-config]`` holding only
    ``spec.featureFlags.enableRetryPolicy: true`` (``meta.k8s_patch``), else ``[]``.

    osm-bootstrap creates ``osm-mesh-config`` from the preset only when it is missing and never
    updates it (OSM v1.2.4 cmd/osm-bootstrap/osm-bootstrap.go:282-329), so the release value of
    :func:`release_values_for` does not reach a running mesh, and OSM drops every Retry while the
    flag is off (pkg/catalog/retry.go:12). The MeshConfig is osm-bootstrap's, not ours: a patch,
    which relinquishes the field when the last Retry goes. It is a custom resource, so it is
    registered after the release, whose osm-bootstrap creates it."""
    if not _renders_retry(objects):
        return []
    return [{**k8s_patch(MESH_CONFIG_API, "MeshConfig", MESH_CONFIG_NAME, OSM_NAMESPACE),
             "spec": {"featureFlags": {"enableRetryPolicy": True}}}]
