"""One cluster's traffic policy component (SMI translated for the mesh)."""
from __future__ import annotations



from .base import _ObjectsComponent


class SmiPolicies(_ObjectsComponent):
    """One cluster's traffic policy as the mesh expresses it (type ``mesh:index:SmiPolicies``):
    access policy, waypoints, GAMMA routes for splits and version Services."""

    TYPE, CONCERN = "mesh:index:SmiPolicies", "policy"

    def outputs(self, objects):
        return {"objects": len(objects),
                "authorization_policies": sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                                                 for o in objects if o["kind"] == "AuthorizationPolicy")}
