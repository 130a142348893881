"""The pure core shared by every mesh: a validated spec -> Kubernetes objects and Helm releases per
cluster (:mod:`.render`, the entry point), with the parts every mesh uses: the mesh-neutral traffic
model (:mod:`.gamma`), resilience, the CA (:mod:`.ca`, :mod:`.vault`, :mod:`.certificates`), egress,
multi-cluster wiring, ingress (:mod:`.gateway`, :mod:`.gateway_api`, :mod:`.envoy_gateway`,
:mod:`.clouds`), telemetry, deploy-time slots and metadata conventions. No Pulumi import.

Layers (README "How the pieces fit"): :mod:`mesh_components.spec` (the input) -> this package and
:mod:`mesh_components.meshes` (per mesh) -> :mod:`mesh_components.analysis` and
:mod:`mesh_components.drift` (reading the result back) -> :mod:`mesh_components.components` (Pulumi)
-> :mod:`mesh_components.cli`.
"""
