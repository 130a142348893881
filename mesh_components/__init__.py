"""Service mesh as code: a pure core that renders a mesh spec into Kubernetes objects and Helm
releases per cluster, and Pulumi components that deploy them.

Importing this package creates no Pulumi resources and does not import Pulumi: the components
(``ServiceMesh`` and its parts) load on first access, so the core and CLI run without it.
"""
from __future__ import annotations

__version__ = "0.1.0"

_COMPONENTS = {"ServiceMesh", "ControlPlane", "IstioControlPlane", "LinkerdControlPlane", "OsmControlPlane",
               "SmiPolicies", "EgressRules", "MeshGateway", "MultiClusterLinks",
               "MeshCertificateAuthority", "MeshCertificateAuthorityArgs", "cluster_providers"}
"""Names served from :mod:`mesh_components.components`. ``MeshCertificateAuthority`` is the
component (``mesh:index:MeshCertificateAuthority``); the dynamic resource it wraps stays at
``mesh_components.ca_provider.MeshCertificateAuthority`` (with ``MeshCAProvider``, pickled by
reference into every stack's state)."""


def __getattr__(name: str):
    if name in _COMPONENTS:
        from . import components
        return getattr(components, name)
    raise AttributeError(f"module 'mesh_components' has no attribute {name!r}")


__all__ = sorted(_COMPONENTS)
