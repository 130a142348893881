"""The mesh certificate authority as a component, usable alone (e.g. for a Linkerd or Istio
installed by other means) or composed by ``ServiceMesh``.

No ``from __future__ import annotations`` here: Pulumi's analyzer reads the Args and output
annotations as objects (``pulumi/provider/experimental/analyzer.py`` ``analyze_component``).

The component wraps the dynamic resource :class:`mesh_components.ca_provider.MeshCertificateAuthority`
(provider :class:`~mesh_components.ca_provider.MeshCAProvider`, pickled by reference into every
stack's state: it stays at that path), registered as its child. Its args are checked before
anything is registered, by the stack file's own loader: the args become a minimal stack-shaped
``mesh:`` mapping (``mesh.trustDomain``, ``mesh.backend.type``, ``mesh.clusters[].name``,
``mesh.ca...``), checked by :func:`mesh_components.spec.parse_spec` and
:func:`~mesh_components.spec.check_references` (whose CA part is ``ca.validate_ca_config``, through
``spec.ca_problems``), and the secret inputs, where they are plain values, by
``ca.validate_supplied``; the problems are re-pathed to the component's fields
(:data:`FIELDS`): ``MeshCertificateAuthority ca: keyAlgorithm: Linkerd accepts only ECDSA P-256 ...``.
The ``CAConfig`` the dynamic resource gets is then ``spec.ca_config()`` of that mesh, exactly
what ``ServiceMesh`` builds from a stack file with the same settings.

What users of a mesh installed by other means feed it (outputs, per cluster, keys secret):

- Istio, "Plug in CA Certificates" (https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/):
  Secret ``cacerts`` in ``istio-system`` with ``ca-cert.pem``, ``ca-key.pem``, ``root-cert.pem``,
  ``cert-chain.pem``: :attr:`MeshCertificateAuthority.istio_cacerts`.
- Linkerd chart values (linkerd2 edge-26.8.3 ``charts/linkerd-control-plane/values.yaml``:
  ``identityTrustAnchorsPEM`` line 64, ``identityTrustDomain`` line 67,
  ``identity.issuer.tls.crtPEM``/``keyPEM`` lines 482-490; the Helm install of
  https://linkerd.io/2/tasks/generate-certificates/ passes them with ``--set-file``):
  :attr:`MeshCertificateAuthority.linkerd_values`.
- OSM v1.2.4: Secret ``osm-ca-bundle`` with ``ca.crt`` and ``private.key``
  (``ca.ca_objects``): :attr:`MeshCertificateAuthority.osm_ca_bundle`.
"""
import re
from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
from pulumi import Output, ResourceOptions

from ..core import ca as ca_core
from ..spec.errors import Problem, SpecError
from ..spec import check_references, parse_spec
from . import standalone
from .args import (ArgsError, from_schema_keys, is_output, raise_if, schema_name, unknown_inputs, where,
                   whole_number)

COMPONENT = "MeshCertificateAuthority"


class MeshCAIntermediateArgs(TypedDict, total=False):
    """One cluster's intermediate CA supplied by you (``mode: intermediateOnly``), PEM strings."""

    cert_pem: Required[pulumi.Input[str]]
    """The intermediate CA certificate (``CA:TRUE``)."""
    key_pem: Required[pulumi.Input[str]]
    """Its private key (pass it as a Pulumi secret)."""
    chain_pem: pulumi.Input[str]
    """The issuers from the intermediate's up to the root. Default: ``cert_pem`` (which must then
    hold them)."""


class MeshCertificateAuthorityArgs(TypedDict, total=False):
    """The CA's settings: those of the stack file's ``mesh.ca`` plus the mesh-wide ones it reads
    (trust domain, mesh kind, clusters, mesh name), and the secret inputs of the modes that take
    material from you. All durations are in days."""

    trust_domain: Required[pulumi.Input[str]]
    """The mesh's SPIFFE trust domain (lowercase letters, digits, ``.``, ``-``, ``_``), e.g.
    ``cluster.local``: Istio's ``meshConfig.trustDomain``, Linkerd's ``identityTrustDomain``
    (the Linkerd issuer is named ``identity.linkerd.<trustDomain>``)."""
    mesh: Required[pulumi.Input[str]]
    """The mesh the material is for: ``istio``, ``linkerd`` (ECDSA P-256 only) or ``osm`` (RSA
    only, one cluster)."""
    clusters: Required[pulumi.Input[Sequence[pulumi.Input[str]]]]
    """The clusters (DNS labels, each once): each gets its own intermediate CA under the one root."""
    key_algorithm: pulumi.Input[str]
    """``ECDSA_P256``, ``RSA_2048``, ``RSA_3072`` or ``RSA_4096``. Default: ``RSA_2048`` for OSM,
    else ``ECDSA_P256``."""
    root_validity_days: pulumi.Input[int]
    """The root's lifetime in days. Default: 3650."""
    intermediate_validity_days: pulumi.Input[int]
    """Each intermediate's lifetime in days, shorter than the root's. Default: 365."""
    rotation_window_days: pulumi.Input[int]
    """An intermediate is re-issued on the first update within this many days of its expiry;
    shorter than its lifetime. Default: 30."""
    mode: pulumi.Input[str]
    """``managed`` (the root is minted here, default), ``byoRoot`` (``root_cert_pem`` +
    ``root_key_pem``), ``intermediateOnly`` (``intermediates`` per cluster) or ``vault`` (Vault PKI
    signs the intermediates: ``vault_address``, ``vault_token``)."""
    root_generation: pulumi.Input[int]
    """The root's generation (>= 1). Raise it by one with ``rotation_stage: addNewRoot`` to start a
    root rotation. Default: 1."""
    rotation_stage: pulumi.Input[str]
    """``none`` (default), ``addNewRoot``, ``reissueIntermediates``, ``removeOldRoot``: one update per
    stage, in this order."""
    overlap_days: pulumi.Input[int]
    """Days both roots stay trusted before ``removeOldRoot`` is accepted (0-3650). Default: 7."""
    vault_address: pulumi.Input[str]
    """``vault`` mode: the Vault address, ``http(s)://host[:port]``. No default."""
    vault_mount: pulumi.Input[str]
    """``vault`` mode: the PKI secrets engine's mount path. Default: ``pki``."""
    vault_role: pulumi.Input[str]
    """``vault`` mode: the PKI role, if any. Default: none."""
    mesh_name: pulumi.Input[str]
    """The mesh's name (DNS label), in the certificates' subjects. Default: ``mesh``."""
    root_cert_pem: pulumi.Input[str]
    """``byoRoot``: the root certificate (PEM; ``CA:TRUE`` with a path length of at least 1);
    ``intermediateOnly``: extra trusted roots (e.g. old and new during a rotation). Secret."""
    root_key_pem: pulumi.Input[str]
    """``byoRoot``: the root's private key (PEM). Secret."""
    intermediates: pulumi.Input[Mapping[str, pulumi.Input[MeshCAIntermediateArgs]]]
    """``intermediateOnly``: cluster -> its intermediate (``cert_pem``, ``key_pem``, ``chain_pem``),
    one per cluster. Secret."""
    vault_token: pulumi.Input[str]
    """``vault`` mode: the Vault token. Secret."""


CONFIG_ARGS = tuple(ca_core.CONFIG_FIELDS)
"""The args that make the ``CAConfig`` (plain values: they decide the certificates' subjects and
which clusters get one)."""
SECRET_ARGS = ("root_cert_pem", "root_key_pem", "intermediates", "vault_token")
"""The args the dynamic resource takes as secret inputs (``ca_provider.SECRET_INPUTS``); they may
be Outputs (checked by the provider's ``check`` once known)."""

_CA = {"key_algorithm": "keyAlgorithm", "root_validity_days": "rootValidityDays",
       "intermediate_validity_days": "intermediateValidityDays", "rotation_window_days": "rotationWindowDays",
       "mode": "mode"}
_ROTATION = {"root_generation": "generation", "rotation_stage": "stage", "overlap_days": "overlapDays"}
_VAULT = {"vault_address": "address", "vault_mount": "mount", "vault_role": "role"}

FIELDS = {
    "mesh": "",
    "mesh.name": "meshName",
    "mesh.trustDomain": "trustDomain",
    "mesh.backend": "mesh",
    "mesh.backend.type": "mesh",
    "mesh.clusters": "clusters",
    "mesh.ca": "",
    **{f"mesh.ca.{v}": schema_name(k) for k, v in _CA.items()},
    "mesh.ca.rootRotation": "rootGeneration",
    **{f"mesh.ca.rootRotation.{v}": schema_name(k) for k, v in _ROTATION.items()},
    "mesh.ca.vault": "vaultAddress",
    **{f"mesh.ca.vault.{v}": schema_name(k) for k, v in _VAULT.items()},
}
"""Stack path -> the component's field (:func:`standalone.repath`); per cluster,
``mesh.clusters[i].name`` -> ``clusters[i]`` is added (:func:`_fields`)."""

SUPPLIED_FIELDS = {"ca": "", "ca.rootCert": "rootCertPem", "ca.rootKey": "rootKeyPem", "ca.intermediates": "intermediates",
                   "ca.vault.token": "vaultToken"}
"""``ca.FIELD_PATHS`` of the secret inputs (``ca.validate_supplied``) -> the component's field."""

_SYNTHESISED = re.compile(r"^mesh\.clusters\[\d+\]\.(?!name$)")
"""Problems about the parts of each cluster the component makes up (cloud, region; the kubeconfig
a multi-cluster stack needs to link clusters) do not concern a CA: dropped."""


def _fields(n_clusters: int) -> dict:
    return {**FIELDS, **{f"mesh.clusters[{i}].name": f"clusters[{i}]" for i in range(n_clusters)},
            **{f"mesh.clusters[{i}]": f"clusters[{i}]" for i in range(n_clusters)}}


def _has_output(value: Any) -> bool:
    if is_output(value):
        return True
    if isinstance(value, Mapping):
        return any(_has_output(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_output(v) for v in value)
    return False


def _intermediates_python_keys(value: Any) -> Any:
    """``intermediates`` with each cluster's keys in Python form (``certPem`` -> ``cert_pem``), as
    the provider reads them; anything else unchanged (refused by the checks)."""
    if not isinstance(value, Mapping):
        return value
    known = MeshCAIntermediateArgs.__annotations__
    return {c: from_schema_keys(v, known) if isinstance(v, Mapping) else v for c, v in value.items()}


def stack_mesh(name: str, args: Mapping[str, Any]) -> tuple[dict, dict, list[Problem]]:
    """``args`` (Python or camelCase keys) -> ``(the stack-shaped mesh: mapping, the args with
    Python keys and whole floats as ints, problems found before the spec loader)``. Problems are
    ``(component field, message)``."""
    if not isinstance(args, Mapping):
        raise ArgsError([(where(COMPONENT, name), f"args must be a mapping of {COMPONENT}Args fields, got "
                                                  f"{type(args).__name__}")])
    known = MeshCertificateAuthorityArgs.__annotations__
    problems: list[Problem] = list(unknown_inputs(args, known))
    a = {k: whole_number(v) for k, v in from_schema_keys(args, known).items() if k in known}
    for key in CONFIG_ARGS:
        if key in a:
            problems += standalone.unknown_values(a[key], key)
    for key in ("trust_domain", "mesh", "clusters"):
        if a.get(key) is None:
            problems.append((key, {"trust_domain": 'required; give the SPIFFE trust domain, e.g. "cluster.local"',
                                   "mesh": "required; give the mesh the material is for: istio, linkerd or osm",
                                   "clusters": "required; give the cluster names, each gets an intermediate CA"}[key]))
    clusters = a.get("clusters")
    if clusters is not None and not isinstance(clusters, (list, tuple)):
        problems.append(("clusters", f"expected a list of cluster names, got {type(clusters).__name__}"))
        clusters = None
    mesh: dict = {"name": a.get("mesh_name", "mesh"), "backend": {"type": a.get("mesh")},
                  "clusters": [{"name": c, "cloud": "onprem", "region": "standalone"} for c in clusters or ()]}
    if a.get("trust_domain") is not None:
        mesh["trustDomain"] = a["trust_domain"]
    ca: dict = {v: a[k] for k, v in _CA.items() if a.get(k) is not None}
    rotation = {v: a[k] for k, v in _ROTATION.items() if a.get(k) is not None}
    if rotation:
        ca["rootRotation"] = rotation
    vault = {v: a[k] for k, v in _VAULT.items() if a.get(k) is not None}
    if vault:
        ca["vault"] = vault
    if ca:
        mesh["ca"] = ca
    return mesh, a, problems


def config(name: str, args: Mapping[str, Any]) -> tuple[ca_core.CAConfig, dict]:
    """Validate ``args``: ``(the CAConfig, the secret inputs with Python keys)``. Pure (no Pulumi
    calls). Raises :class:`ArgsError` with every problem, ``"MeshCertificateAuthority <name>:
    <camelField>: message"``: the stack file's checks of ``mesh.ca`` (and of the trust domain,
    mesh, clusters and name it reads) re-pathed, and ``ca.validate_supplied`` of the plain secret
    inputs."""
    mesh, a, problems = stack_mesh(name, args)
    raise_if(COMPONENT, name, problems)
    fields = _fields(len(mesh["clusters"]))
    try:
        spec = parse_spec(mesh)
    except SpecError as e:
        raise ArgsError(standalone.repath(COMPONENT, name, e.problems, fields)) from None
    found = [p for p in check_references(spec) if not _SYNTHESISED.match(p[0])]
    if found:
        raise ArgsError(standalone.repath(COMPONENT, name, found, fields))
    cfg = spec.ca_config()
    secrets = {k: a.get(k) for k in SECRET_ARGS}
    secrets["intermediates"] = _intermediates_python_keys(secrets["intermediates"])
    if not _has_output(list(secrets.values())):
        supplied = ca_core.SuppliedMaterial(**{k: v or None for k, v in secrets.items()})
        try:
            bad = ca_core.validate_supplied(cfg, supplied)
        except (TypeError, ValueError, AttributeError) as e:  # e.g. a number where a PEM string goes
            bad = [("ca", f"invalid secret input ({type(e).__name__}); give PEM strings")]
        if bad:
            raise ArgsError(standalone.repath(COMPONENT, name, bad, SUPPLIED_FIELDS))
    return cfg, secrets


def _per_cluster(authority, clusters: Sequence[str], build) -> Output:
    """One Output: cluster -> ``build(trust bundle PEM, the cluster's entry of the dynamic
    resource's ``intermediates`` output: {cert_pem, key_pem, chain_pem, not_after})`` for every cluster."""
    def make(values):
        bundle, intermediates = values
        return {c: build(bundle, (intermediates or {}).get(c) or {}) for c in clusters}
    return Output.all(authority.trust_bundle_pem, authority.intermediates).apply(make)


class MeshCertificateAuthority(pulumi.ComponentResource):
    """One mesh root of trust and one intermediate CA per cluster, with staged root rotation
    (``managed``, ``byoRoot``, ``intermediateOnly`` or ``vault`` mode). Outputs the trust bundle and
    each cluster's material, keys secret, in the forms Istio (``cacerts``), Linkerd (chart values)
    and OSM (``osm-ca-bundle``) read: usable alone for a mesh installed by other means. The keys
    live in the stack's state (a dynamic resource, ``mesh_components.ca_provider``), encrypted as
    secrets; no Kubernetes object is created."""

    TYPE = "mesh:index:MeshCertificateAuthority"

    root_fingerprint: pulumi.Output[str]
    """SHA-256 of the signing root certificate (DER), lowercase hex."""
    root_cert: pulumi.Output[str]
    """The root certificate that signs the intermediates now (PEM)."""
    root_not_after: pulumi.Output[str]
    """When that root expires (ISO 8601, UTC)."""
    trust_bundle: pulumi.Output[str]
    """Every trusted root (PEM): one, or two during a root rotation. What workloads must trust
    (Istio ``root-cert.pem``, Linkerd ``identityTrustAnchorsPEM``)."""
    stage: pulumi.Output[str]
    """The root rotation stage applied: ``none``, ``addNewRoot``, ``reissueIntermediates``, ``removeOldRoot``."""
    stage_description: pulumi.Output[str]
    """What that stage means, in a sentence."""
    multi_root: pulumi.Output[bool]
    """Whether two roots are trusted (during a rotation; Istio then needs ``ISTIO_MULTIROOT_MESH``)."""
    intermediate_certs: pulumi.Output[dict[str, str]]
    """Cluster -> its intermediate CA certificate (PEM)."""
    intermediate_chains: pulumi.Output[dict[str, str]]
    """Cluster -> its chain: the intermediate, then the issuers up to the root (PEM; Istio ``cert-chain.pem``)."""
    intermediate_keys: pulumi.Output[dict[str, str]]
    """Cluster -> its intermediate's private key (PEM). Secret."""
    intermediate_not_after: pulumi.Output[dict[str, str]]
    """Cluster -> when its intermediate expires (ISO 8601, UTC)."""
    istio_cacerts: Optional[pulumi.Output[dict[str, dict[str, str]]]]
    """Istio only: cluster -> the data of Secret ``cacerts`` in ``istio-system`` (``ca-cert.pem``,
    ``ca-key.pem``, ``root-cert.pem``, ``cert-chain.pem``; https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/).
    Secret."""
    linkerd_values: Optional[pulumi.Output[dict[str, dict[str, Any]]]]
    """Linkerd only: cluster -> values of chart ``linkerd-control-plane``: ``identityTrustAnchorsPEM``,
    ``identityTrustDomain`` and ``identity.issuer.tls.crtPEM``/``keyPEM`` (the issuer is the
    cluster's intermediate). Secret."""
    osm_ca_bundle: Optional[pulumi.Output[dict[str, dict[str, str]]]]
    """OSM only: cluster -> the data of Secret ``osm-ca-bundle`` in OSM's namespace (``ca.crt``:
    the chain, ``private.key``), for chart value ``osm.caBundleSecretName``. Secret."""

    def __init__(self, name: str, args: MeshCertificateAuthorityArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        cfg, secrets = config(name, args)  # raises before anything is registered
        if _has_output(secrets["intermediates"]):  # camelCase keys (other languages) once known
            secrets["intermediates"] = Output.from_input(secrets["intermediates"]).apply(_intermediates_python_keys)
        pulumi.ComponentResource.__init__(self, self.TYPE, name, None, opts)
        self._register(name, cfg, secrets, ResourceOptions(parent=self))

    @classmethod
    def _of_service_mesh(cls, name: str, cfg: ca_core.CAConfig, secrets: Mapping[str, Any],
                         service_mesh: pulumi.Resource, service_mesh_name: str, former_names: Sequence[str] = (),
                         opts: Optional[ResourceOptions] = None) -> "MeshCertificateAuthority":
        """The component as ``ServiceMesh`` composes it, from the stack's ``CAConfig`` (already
        checked by the stack file's loader) and ``ca_secrets``.

        The dynamic resource is named ``name`` as before, but now has this component as parent, so
        its URN changes from ``...ServiceMesh$pulumi-python:dynamic:Resource::<name>`` to
        ``...ServiceMesh$mesh:index:MeshCertificateAuthority$pulumi-python:dynamic:Resource::<name>``.
        Aliases keep its state (the root of trust): ``Alias(parent=service_mesh)`` is the old URN
        (the engine fills the alias's name and type with the resource's own, and puts the
        parent's old URN in when the parent itself matched through an alias: pulumi/pulumi
        ``pkg/resource/deploy/step_generator.go`` ``collapseAliasToUrn``); for each former name of
        ``service_mesh`` (its ``Alias(name=...)``, ``service_mesh.rename_aliases``) also that name
        (``service_mesh_name`` is its name now) with this one's suffix, the name the engine's ``inheritedChildAlias`` gave the resource
        when it was ``service_mesh``'s child. ``generateAliases`` multiplies out only the aliases of
        a parent that matched through an alias, and this component is new (no stored state), so
        its children inherit nothing from it."""
        self = cls.__new__(cls)
        pulumi.ComponentResource.__init__(self, cls.TYPE, name, None, opts)
        own = service_mesh_name
        suffix = name[len(own):] if name.startswith(own) else None
        aliases = [pulumi.Alias(parent=service_mesh)]
        aliases += [pulumi.Alias(name=f"{old}{suffix}", parent=service_mesh) for old in former_names
                    if suffix is not None and old != own]
        self._register(name, cfg, dict(secrets), ResourceOptions(parent=self, aliases=aliases))
        return self

    def _register(self, name: str, cfg: ca_core.CAConfig, secrets: Mapping[str, Any], opts: ResourceOptions) -> None:
        from ..ca_provider import MeshCertificateAuthority as Authority

        self.config = cfg
        self.authority = Authority(name, cfg, **{k: v for k, v in secrets.items() if v is not None}, opts=opts)
        a = self.authority
        clusters = list(cfg.clusters)

        def field(key: str) -> Output:
            return a.intermediates.apply(lambda d: {c: ((d or {}).get(c) or {}).get(key) for c in clusters})

        values: dict[str, Any] = {
            "root_fingerprint": a.root_fingerprint,
            # a certificate is public: plain, as the schema documents it, even where the engine marks
            # it secret because the byoRoot input of the same name was (annotateSecrets)
            "root_cert": Output.unsecret(a.root_cert_pem),
            "root_not_after": a.root_not_after,
            "trust_bundle": a.trust_bundle_pem,
            "stage": a.stage,
            "stage_description": a.stage_description,
            "multi_root": a.multi_root,
            "intermediate_certs": Output.unsecret(field("cert_pem")),
            "intermediate_chains": Output.unsecret(field("chain_pem")),
            "intermediate_keys": Output.secret(field("key_pem")),
            "intermediate_not_after": Output.unsecret(field("not_after")),
        }
        if cfg.mesh == "istio":  # ca.ca_objects: the same files ServiceMesh puts in cacerts
            values["istio_cacerts"] = Output.secret(_per_cluster(a, clusters, lambda bundle, r: {
                "ca-cert.pem": r.get("cert_pem"), "ca-key.pem": r.get("key_pem"), "root-cert.pem": bundle,
                "cert-chain.pem": r.get("chain_pem")}))
        elif cfg.mesh == "linkerd":
            values["linkerd_values"] = Output.secret(_per_cluster(a, clusters, lambda bundle, r: {
                "identityTrustAnchorsPEM": bundle, "identityTrustDomain": cfg.trust_domain,
                "identity": {"issuer": {"tls": {"crtPEM": r.get("cert_pem"), "keyPEM": r.get("key_pem")}}}}))
        else:
            values["osm_ca_bundle"] = Output.secret(_per_cluster(a, clusters, lambda bundle, r: {
                "ca.crt": r.get("chain_pem"), "private.key": r.get("key_pem")}))
        for key, value in values.items():
            setattr(self, key, value)
        self.register_outputs(values)

    def material(self, cluster: str) -> ca_core.ClusterCAMaterial:
        """``cluster``'s :class:`~mesh_components.core.ca.ClusterCAMaterial` as Outputs; the key secret."""
        return self.authority.material(cluster)
