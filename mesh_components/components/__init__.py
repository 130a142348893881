"""Pulumi components: thin ComponentResources that register the pure core's desired state.

``ServiceMesh`` renders the spec with :func:`mesh_components.core.render.render_mesh` and composes,
per cluster and on that cluster's own kubernetes Provider:

- ``IstioControlPlane`` / ``LinkerdControlPlane`` / ``OsmControlPlane`` (base ``ControlPlane``, also
  usable alone with typed Args): namespaces, the CA distribution (Istio ``cacerts``), the Gateway API CRDs, the
  Helm releases in install order, mesh-wide objects;
- ``SmiPolicies``: translated access policy, waypoints, traffic splits, version Services;
- ``EgressRules``: ServiceEntries, Sidecars, egress waypoint policy;
- ``MeshGateway``: the ingress Gateway and its routes;
- ``MultiClusterLinks`` (several clusters only; also usable alone with typed Args for a set of
  clusters, each on its own provider): the credentials other clusters read this one with, this cluster's remote secrets / Links to the others (kubeconfigs built from each target's
  kubeconfig input and a token read back from it, :class:`ClusterOutputs`), exported Services;

plus one mesh-wide ``MeshCertificateAuthority`` (``certificate_authority``: a component over the
dynamic resource ``mesh_components.ca_provider.MeshCertificateAuthority``). Custom resources depend on
the releases and manifests that define their CRDs (pulumi-kubernetes#2881), and every child is
named after its component and cluster (two clusters' ``istio-system`` must not collide in URNs,
pulumi-kubernetes#1689). Idioms: https://www.pulumi.com/docs/iac/concepts/resources/components/

Layout: ``providers`` (one kubernetes Provider per cluster), ``registration`` (objects and Helm
releases as resources: names, aliases, patches), ``lookups`` (where deploy-time values come from),
``base`` (the shared component shapes), one module per part (``control_plane``, ``smi_policies``,
``egress_rules``, ``mesh_gateway``, ``mesh_telemetry``, ``multicluster_links``) and
``service_mesh``, which composes them.
"""
from __future__ import annotations

from .base import _ObjectsComponent, _ReleasingComponent  # noqa: F401
from .certificate_authority import MeshCAIntermediateArgs, MeshCertificateAuthority, MeshCertificateAuthorityArgs
from .control_plane import (ControlPlane, IstioControlPlane, IstioControlPlaneArgs, IstioRevisionArgs,
                            LinkerdControlPlane, LinkerdControlPlaneArgs, OsmControlPlane, OsmControlPlaneArgs)
from .egress_rules import (EgressAllowed, EgressCredentialArgs, EgressPortArgs, EgressRuleArgs, EgressRules,
                           EgressRulesArgs, EgressServiceArgs, EgressSourceArgs, EgressTlsOriginationArgs)
from .lookups import _field, ca_lookup, config_secret_lookup, mesh_lookup  # noqa: F401
from .mesh_gateway import (MeshGateway, MeshGatewayArgs, MeshGatewayRouteArgs, MeshGatewayTlsArgs,  # noqa: F401
                           _CustomResourceWithStatus, gateway_addresses)
from .mesh_telemetry import MeshTelemetry, recording_rule_names
from .multicluster_links import ClusterOutputs, MultiClusterLinks
from .providers import cluster_providers, kubeconfig_input, kubeconfig_inputs
from .registration import (NAMESPACE_TYPE, PATCH_FORCE_ANNOTATION, Lookup, api_version_aliases, needs_crds,
                           namespace_patch_metadata, object_identity, patch_options, previous_claims,
                           previous_name_aliases, previous_names, previous_resource_name, register_object,
                           register_objects, register_release, registered_type, resource_name, type_aliases)
from .service_mesh import STABLE_NAME, ServiceMesh, rename_aliases
from .smi_policies import (SmiNamespaceArgs, SmiPolicies, SmiPoliciesArgs, SmiScraperArgs, SmiServiceArgs,
                           SmiServicePortArgs, SmiServiceVersionArgs)

__all__ = ["ClusterOutputs", "ControlPlane", "IstioControlPlane", "IstioControlPlaneArgs", "IstioRevisionArgs",
           "LinkerdControlPlane", "LinkerdControlPlaneArgs", "OsmControlPlane", "OsmControlPlaneArgs", "MeshCAIntermediateArgs", "MeshCertificateAuthority",
           "MeshCertificateAuthorityArgs", "EgressAllowed", "EgressCredentialArgs", "EgressPortArgs", "EgressRuleArgs",
           "EgressRules", "EgressRulesArgs", "EgressServiceArgs", "EgressSourceArgs", "EgressTlsOriginationArgs",
           "MeshGateway", "MeshGatewayArgs", "MeshGatewayRouteArgs", "MeshGatewayTlsArgs", "Lookup", "MeshTelemetry",
           "MultiClusterLinks", "NAMESPACE_TYPE", "PATCH_FORCE_ANNOTATION", "STABLE_NAME", "ServiceMesh",
           "SmiNamespaceArgs", "SmiPolicies", "SmiPoliciesArgs", "SmiScraperArgs", "SmiServiceArgs",
           "SmiServicePortArgs", "SmiServiceVersionArgs", "api_version_aliases", "ca_lookup", "cluster_providers", "config_secret_lookup",
           "gateway_addresses", "kubeconfig_input", "kubeconfig_inputs", "mesh_lookup", "namespace_patch_metadata",
           "needs_crds", "object_identity", "patch_options", "previous_claims", "previous_name_aliases",
           "previous_names", "previous_resource_name", "recording_rule_names", "register_object",
           "register_objects", "register_release", "registered_type", "rename_aliases", "resource_name",
           "type_aliases"]
