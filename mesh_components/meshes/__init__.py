"""The per-mesh core: each mesh's control plane and its exact-or-refused policy translation.

:mod:`.istio` / :mod:`.istio_policy` (Istio 1.30.3), :mod:`.linkerd` / :mod:`.linkerd_policy`
(Linkerd edge-26.8.3), :mod:`.osm` / :mod:`.osm_policy` (Open Service Mesh v1.2.4). The policy
translators read the mesh-neutral model of :mod:`mesh_components.core.gamma`. No Pulumi import.
"""
