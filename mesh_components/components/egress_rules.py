"""One cluster's egress allow-list component."""
from __future__ import annotations



from .base import _ReleasingComponent


class EgressRules(_ReleasingComponent):
    """One cluster's egress allow-list (type ``mesh:index:EgressRules``): ServiceEntries, the Istio
    egress gateway release and its routing, policy and credential objects, Sidecars, waypoint
    policy and, ambient, the egress NetworkPolicy of each application namespace, Linkerd
    EgressNetworks or OSM Egress policies. Outputs: ``objects``,
    ``service_entries``, ``egress_gateway`` (the release, or None)."""

    TYPE, CONCERN = "mesh:index:EgressRules", "egress"

    def outputs(self, objects):
        return {"objects": len(objects),
                "service_entries": sorted(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceEntry"),
                "egress_gateway": next(iter(self.releases), None)}
