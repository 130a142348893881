"""The Pulumi program: one ServiceMesh from the stack's ``service-mesh:mesh`` config object, or,
in fleet mode (``service-mesh:fleet``, ``mesh_components.spec.fleet``), the fleet's root stack or
one cluster's stack from the root stack file's spec.

Run per environment: ``pulumi up --stack dev|staging|prod`` (see README). Invalid config stops the
update before anything is created, with one ``path: message`` line per problem.
"""
from pathlib import Path

import pulumi

from mesh_components import ServiceMesh
from mesh_components.components import STABLE_NAME, rename_aliases
from mesh_components.components.fleet import MeshFleetRoot, export_all, fleet_cluster
from mesh_components.spec.errors import MeshError
from mesh_components.spec import CONFIG_KEY, load_program_mesh
from mesh_components.spec.fleet import FLEET_KEY

config = pulumi.Config()
try:
    mesh = load_program_mesh(config.get_object(CONFIG_KEY), config.get_object(FLEET_KEY), pulumi.get_stack(),
                             base_dir=Path(__file__).parent)
except MeshError as err:
    raise pulumi.RunError("invalid mesh spec:\n" + str(err)) from None
role = mesh.fleet.role if mesh.fleet is not None else None

ca = mesh.spec.ca
ca_secrets = {}
if role != "cluster":  # a cluster stack reads its intermediate from the root; the CA's inputs are the root's
    if ca.mode == "byoRoot":
        ca_secrets = {"root_cert_pem": config.require_secret(ca.root_cert_config),
                      "root_key_pem": config.require_secret(ca.root_key_config)}
    elif ca.mode == "intermediateOnly":
        ca_secrets = {"intermediates": config.require_secret_object(ca.intermediates_config)}
    elif ca.mode == "vault":
        ca_secrets = {"vault_token": config.require_secret(ca.vault.token_config)}

# a stable name, so renaming mesh.name replaces nothing; aliased from the mesh.name it used to be
aliases = pulumi.ResourceOptions(aliases=rename_aliases(mesh.spec.name))
try:
    if role == "root":
        root = MeshFleetRoot(STABLE_NAME, mesh, ca_secrets=ca_secrets, opts=aliases)
        export_all(root.outputs)
    elif role == "cluster":
        export_all(fleet_cluster(STABLE_NAME, mesh, stack=pulumi.get_stack()).outputs)
    else:
        service_mesh = ServiceMesh(STABLE_NAME, mesh, ca_secrets=ca_secrets, opts=aliases)
        pulumi.export("root_fingerprint", service_mesh.root_fingerprint)
        pulumi.export("ca_stage", service_mesh.ca_stage)
        pulumi.export("clusters", service_mesh.clusters)
        pulumi.export("allowed_egress", service_mesh.allowed_egress)
except MeshError as err:  # a policy the mesh cannot express exactly
    raise pulumi.RunError("the mesh cannot be rendered:\n" + str(err)) from None
