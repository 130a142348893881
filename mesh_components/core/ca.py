"""Mesh certificate authority, the pure core: one root of trust, one intermediate CA per cluster.

No Pulumi import here. ``mesh_components.ca_provider`` wraps this module in a Pulumi dynamic
provider. ``mesh_components.core.vault`` is the optional external signer (HashiCorp Vault PKI).

What this module does:

* keys and certificates (``cryptography``): ECDSA P-256 by default, RSA 2048/3072/4096 as options.
  The root has ``basicConstraints CA:TRUE, pathlen:1``, each intermediate ``CA:TRUE, pathlen:0``.
  Both have critical ``keyUsage keyCertSign, cRLSign`` and subject/authority key identifiers
  (RFC 5280 4.2.1.1, 4.2.1.2, 4.2.1.3, 4.2.1.9; https://www.rfc-editor.org/rfc/rfc5280).
* no name constraints. Each mesh names its workloads its own way: Istio uses SPIFFE URI SANs
  ``spiffe://<trust-domain>/ns/<ns>/sa/<sa>`` (https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md),
  Linkerd DNS SANs ``<sa>.<ns>.serviceaccount.identity.linkerd.<trust-domain>``, and OSM a
  CN/DNS name. istiod also signs DNS-named serving certificates from the same CA. One constraint
  set would not suit every mesh, so none is added.
* the rotation state machine and the "what is due" planner (:func:`plan_changes`). Both are pure
  functions of (desired :class:`CAConfig`, current :class:`CAState`, ``now``), cheap and
  deterministic for a given clock. :func:`apply_plan` carries a plan out.
* distribution in each mesh's own format (:func:`ca_objects`, :func:`ca_helm_values`).

Key encodings follow what each mesh parses: ECDSA keys are SEC1 ``EC PRIVATE KEY`` (Linkerd's
``DecodePEMKey`` accepts that block type in every release,
https://github.com/linkerd/linkerd2/blob/main/pkg/tls/codec.go). RSA keys are PKCS#8 ``PRIVATE
KEY``, the only form OSM v1.2.4 decodes (``DecodePEMPrivateKey``,
https://github.com/openservicemesh/osm/blob/v1.2.4/pkg/certificate/encode.go). That decoder also
asserts ``*rsa.PrivateKey``, so OSM needs an RSA key. Linkerd needs ECDSA P-256 (chart values
``identity.issuer.tls``).

Errors from user input raise :class:`CAError`. The message names the field and says how to fix it.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .slots import Slot

KEY_ALGORITHMS = ("ECDSA_P256", "RSA_2048", "RSA_3072", "RSA_4096")
MESHES = ("istio", "linkerd", "osm")
MODES = ("managed", "byoRoot", "intermediateOnly", "vault")
STAGES = ("none", "addNewRoot", "reissueIntermediates", "removeOldRoot")
SINGLE_ROOT_STAGES = ("none", "removeOldRoot")
CLOCK_SKEW = _dt.timedelta(minutes=5)
"""Certificates are back-dated by this much (not_before = now - 5 minutes) to allow clock skew."""

FIELD_PATHS = {
    "trust_domain": "ca.trustDomain",
    "mesh": "ca.mesh",
    "clusters": "ca.clusters",
    "key_algorithm": "ca.keyAlgorithm",
    "root_validity_days": "ca.rootValidityDays",
    "intermediate_validity_days": "ca.intermediateValidityDays",
    "rotation_window_days": "ca.rotationWindowDays",
    "mode": "ca.mode",
    "root_generation": "ca.rootRotation.generation",
    "rotation_stage": "ca.rootRotation.stage",
    "overlap_days": "ca.rootRotation.overlapDays",
    "vault_address": "ca.vault.address",
    "vault_mount": "ca.vault.mount",
    "vault_role": "ca.vault.role",
    "mesh_name": "ca.meshName",
    "root_cert_pem": "ca.rootCert",
    "root_key_pem": "ca.rootKey",
    "intermediates": "ca.intermediates",
    "vault_token": "ca.vault.token",
    "intermediate_path_length": "ca.mode",
    "intermediate_uri_domains": "ca.spire.trustDomains",
}
"""Input field (snake_case, as the provider receives it) -> path shown to the user."""

_PATH_TO_FIELD = {v: k for k, v in FIELD_PATHS.items()}


class CAError(ValueError):
    """A user mistake in the CA configuration or supplied material.

    ``problems`` holds ``(field path, message)`` pairs. ``str(err)`` has one ``path: message`` per
    line. The message says what to change.
    """

    def __init__(self, problems: Sequence[tuple[str, str]] | str):
        if isinstance(problems, str):
            problems = [("ca", problems)]
        self.problems = list(problems)
        super().__init__("\n".join(f"{p}: {m}" for p, m in self.problems))


def field_of(path: str) -> str:
    """The snake_case input key for a :data:`FIELD_PATHS` path (``"ca.keyAlgorithm"`` -> ``"key_algorithm"``)."""
    return _PATH_TO_FIELD.get(path, path.split(".")[-1])


# ---------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class CAConfig:
    """Desired CA, as the stack spec says it (all durations in days).

    ``root_generation`` numbers the root of trust. Raise it by one and set ``rotation_stage`` to
    ``addNewRoot`` to start a root rotation. Then apply ``reissueIntermediates`` and, at least
    ``overlap_days`` later, ``removeOldRoot``, one stack update per stage (see
    :func:`check_stage_transition`). Secret material (BYO root, supplied intermediates, Vault token)
    is passed separately, never here.
    """

    trust_domain: str
    mesh: str
    clusters: tuple[str, ...]
    key_algorithm: str = "ECDSA_P256"
    root_validity_days: int = 3650
    intermediate_validity_days: int = 365
    rotation_window_days: int = 30
    mode: str = "managed"
    root_generation: int = 1
    rotation_stage: str = "none"
    overlap_days: int = 7
    vault_address: str | None = None
    vault_mount: str = "pki"
    vault_role: str | None = None
    mesh_name: str = "mesh"
    intermediate_path_length: int = 0
    """``pathLenConstraint`` of each intermediate (the root gets one more): 0, or 1 when SPIRE's
    server CA sits below the intermediate (``ca.mode: spire``, ``mesh_components.core.spire``:
    root -> intermediate -> SPIRE server CA -> SVID; RFC 5280 4.2.1.9). A provider input only
    when not 0, so existing stacks keep their inputs."""
    intermediate_uri_domains: Mapping[str, str] = field(default_factory=dict, hash=False)
    """cluster -> the host every URI SAN below that cluster's intermediate must have: a critical
    ``nameConstraints`` extension with that one permitted URI subtree (RFC 5280 4.2.1.10: "For URIs,
    the constraint applies to the host part of the name"; :func:`intermediate_name_constraints`).
    Federated ``ca.mode: spire`` sets each cluster's SPIFFE trust domain, so a leaked intermediate key
    cannot mint identities of another trust domain. Only URI names are constrained: DNS, IP and
    e-mail SANs (istiod's own serving certificate) stay unconstrained (4.2.1.10: a name type with
    no subtree is not restricted). Empty: no constraints. A provider input only when not empty."""

    def __post_init__(self) -> None:
        if isinstance(self.clusters, (list, tuple)):
            object.__setattr__(self, "clusters", tuple(self.clusters))

    def to_inputs(self) -> dict[str, Any]:
        """The config as provider inputs: snake_case keys, ``clusters`` as a list."""
        out = {f: (list(getattr(self, f)) if f == "clusters" else getattr(self, f)) for f in CONFIG_FIELDS}
        if self.intermediate_path_length:  # only then: existing stacks keep their inputs
            out["intermediate_path_length"] = self.intermediate_path_length
        if self.intermediate_uri_domains:  # likewise
            out["intermediate_uri_domains"] = {c: self.intermediate_uri_domains[c]
                                               for c in sorted(self.intermediate_uri_domains)}
        return out

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> "CAConfig":
        """Rebuild from provider inputs/outputs. Pulumi sends numbers as floats, so whole floats become ints.

        Raises :class:`CAError` when a required field is missing.
        """
        missing = [f for f in ("trust_domain", "mesh", "clusters") if inputs.get(f) is None]
        if missing:
            raise CAError([(FIELD_PATHS[f], "is required") for f in missing])
        kwargs: dict[str, Any] = {}
        for f in CONFIG_FIELDS:
            if f not in inputs or inputs[f] is None:
                continue
            v = inputs[f]
            if f in _INT_FIELDS and isinstance(v, float) and v.is_integer():
                v = int(v)
            if f == "clusters":
                v = tuple(v)
            kwargs[f] = v
        depth = inputs.get("intermediate_path_length")  # see to_inputs
        if isinstance(depth, (int, float)) and not isinstance(depth, bool) and float(depth).is_integer():
            kwargs["intermediate_path_length"] = int(depth)
        domains = inputs.get("intermediate_uri_domains")
        if isinstance(domains, Mapping) and domains:
            kwargs["intermediate_uri_domains"] = {str(c): str(d) for c, d in sorted(domains.items())}
        return cls(**kwargs)


CONFIG_FIELDS = (
    "trust_domain", "mesh", "clusters", "key_algorithm", "root_validity_days",
    "intermediate_validity_days", "rotation_window_days", "mode", "root_generation",
    "rotation_stage", "overlap_days", "vault_address", "vault_mount", "vault_role", "mesh_name",
)
_INT_FIELDS = ("root_validity_days", "intermediate_validity_days", "rotation_window_days",
               "root_generation", "overlap_days")
_TRUST_DOMAIN_RE = re.compile(r"^[a-z0-9._-]+$")
_CLUSTER_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def validate_ca_config(cfg: CAConfig) -> list[tuple[str, str]]:
    """Every problem with ``cfg`` as ``(field path, message with the fix)``; empty when valid.

    Checks: known mesh/mode/algorithm/stage. Linkerd needs ECDSA P-256 (it parses only ECDSA trust
    anchors and issuers; chart values ``identityTrustAnchorsPEM``/``identity.issuer.tls``,
    https://github.com/linkerd/linkerd2/blob/main/charts/linkerd-control-plane/values.yaml).
    OSM v1.2.4 needs RSA (see module docstring). Other checks: positive day counts, an
    intermediate shorter-lived than the root, a rotation window shorter than the intermediate
    validity, a SPIFFE-valid trust domain (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md#21-trust-domain),
    DNS-label cluster names, Vault settings for ``vault`` mode, and staged rotation only where it
    applies.
    """
    p: list[tuple[str, str]] = []
    P = FIELD_PATHS
    if cfg.mesh not in MESHES:
        p.append((P["mesh"], f"unknown mesh {cfg.mesh!r}; use one of {', '.join(MESHES)}"))
    if not isinstance(cfg.trust_domain, str) or not cfg.trust_domain or not _TRUST_DOMAIN_RE.match(cfg.trust_domain):
        p.append((P["trust_domain"], f"{cfg.trust_domain!r} is not a SPIFFE trust domain; use lowercase "
                                     "letters, digits, '.', '-' and '_' only, e.g. 'cluster.local'"))
    clusters = cfg.clusters if isinstance(cfg.clusters, tuple) else ()
    if not clusters:
        p.append((P["clusters"], "needs at least one cluster name; every cluster gets its own intermediate CA"))
    seen: set[str] = set()
    for i, c in enumerate(clusters):
        if not isinstance(c, str) or not _CLUSTER_RE.match(c):
            p.append((f"{P['clusters']}[{i}]", f"{c!r} is not a DNS label; use lowercase letters, digits and '-'"))
        elif c in seen:
            p.append((f"{P['clusters']}[{i}]", f"cluster {c!r} is listed twice; list each cluster once"))
        seen.add(c)
    if cfg.key_algorithm not in KEY_ALGORITHMS:
        p.append((P["key_algorithm"], f"unknown key algorithm {cfg.key_algorithm!r}; use one of {', '.join(KEY_ALGORITHMS)}"))
    elif cfg.mesh == "linkerd" and cfg.key_algorithm != "ECDSA_P256":
        p.append((P["key_algorithm"], f"Linkerd accepts only ECDSA P-256 trust anchors and issuers, not "
                                      f"{cfg.key_algorithm}; set keyAlgorithm: ECDSA_P256"))
    elif cfg.mesh == "osm" and not cfg.key_algorithm.startswith("RSA_"):
        p.append((P["key_algorithm"], "OSM v1.2.4 reads the CA key of osm-ca-bundle as an RSA PKCS#8 key "
                                      "only; set keyAlgorithm: RSA_2048 (or RSA_3072/RSA_4096)"))
    for f in _INT_FIELDS:
        v = getattr(cfg, f)
        low = 0 if f == "overlap_days" else 1
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            p.append((P[f], f"{v!r} is not a whole number >= {low}" + (" (days)" if f.endswith("days") else "")))
    ints_ok = all(isinstance(getattr(cfg, f), int) for f in _INT_FIELDS)
    if ints_ok and cfg.intermediate_validity_days >= cfg.root_validity_days:
        p.append((P["intermediate_validity_days"], f"{cfg.intermediate_validity_days} days is not shorter than the "
                                                   f"root's {cfg.root_validity_days} days; an intermediate cannot "
                                                   "outlive its root, lower it or raise rootValidityDays"))
    if ints_ok and cfg.rotation_window_days >= cfg.intermediate_validity_days:
        p.append((P["rotation_window_days"], f"{cfg.rotation_window_days} days is not shorter than the intermediate "
                                             f"validity ({cfg.intermediate_validity_days} days), so every update "
                                             "would re-issue; lower it"))
    if cfg.mode not in MODES:
        p.append((P["mode"], f"unknown mode {cfg.mode!r}; use one of {', '.join(MODES)}"))
    if cfg.rotation_stage not in STAGES:
        p.append((P["rotation_stage"], f"unknown stage {cfg.rotation_stage!r}; use one of {', '.join(STAGES)}"))
    elif cfg.mode == "intermediateOnly" and cfg.rotation_stage != "none":
        p.append((P["rotation_stage"], "intermediateOnly mode has no root to rotate: supply new intermediates "
                                       "instead, and pass both roots in the trusted root bundle during the "
                                       "overlap; set rotation stage 'none'"))
    elif (cfg.rotation_stage in ("addNewRoot", "reissueIntermediates") and isinstance(cfg.root_generation, int)
          and cfg.root_generation < 2):
        p.append((P["rotation_stage"], f"stage {cfg.rotation_stage} rotates to a new root, but generation "
                                       f"{cfg.root_generation} has no older root; start a rotation by raising "
                                       "the generation to 2 with stage addNewRoot"))
    if cfg.mode == "vault":
        if not cfg.vault_address or not re.match(r"^https?://[^/\s]+", str(cfg.vault_address)):
            p.append((P["vault_address"], f"vault mode needs the Vault address as http(s)://host[:port], "
                                          f"got {cfg.vault_address!r}"))
        if not cfg.vault_mount or not re.match(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", str(cfg.vault_mount)):
            p.append((P["vault_mount"], f"{cfg.vault_mount!r} is not a Vault mount path; use e.g. 'pki'"))
    if not isinstance(cfg.mesh_name, str) or not cfg.mesh_name:
        p.append((P["mesh_name"], "needs a non-empty mesh name (it goes into certificate subjects)"))
    return p


def require_valid(cfg: CAConfig) -> None:
    """Raise :class:`CAError` listing every problem :func:`validate_ca_config` finds."""
    problems = validate_ca_config(cfg)
    if problems:
        raise CAError(problems)


# ---------------------------------------------------------------------------------------------
# keys, certificates, inspection

PrivateKey = Any  # ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def generate_key(algorithm: str = "ECDSA_P256") -> PrivateKey:
    """A new private key for ``algorithm`` (one of :data:`KEY_ALGORITHMS`). Raises :class:`CAError` otherwise."""
    if algorithm == "ECDSA_P256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm in ("RSA_2048", "RSA_3072", "RSA_4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm[4:]))
    raise CAError([(FIELD_PATHS["key_algorithm"], f"unknown key algorithm {algorithm!r}; use one of {', '.join(KEY_ALGORITHMS)}")])


def private_key_pem(key: PrivateKey) -> str:
    """PEM of ``key``: SEC1 ``EC PRIVATE KEY`` for ECDSA, PKCS#8 ``PRIVATE KEY`` for RSA (see module docstring)."""
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if isinstance(key, ec.EllipticCurvePrivateKey)
           else serialization.PrivateFormat.PKCS8)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def load_private_key(pem: str, *, what: str = "private key", path: str = "ca") -> PrivateKey:
    """Parse an unencrypted PEM private key. Raises :class:`CAError` naming ``path`` (never echoing the key)."""
    try:
        key = serialization.load_pem_private_key(_b(pem), password=None)
    except (ValueError, TypeError) as e:
        raise CAError([(path, f"the {what} is not an unencrypted PEM private key ({type(e).__name__}); "
                              "pass the PEM text, e.g. from `openssl ec -in key.pem`")]) from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise CAError([(path, f"the {what} is a {type(key).__name__}; use an ECDSA P-256 or RSA key")])
    return key


def load_certificates(pem: str, *, what: str = "certificate", path: str = "ca") -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order. Raises :class:`CAError` when there is none."""
    try:
        certs = x509.load_pem_x509_certificates(_b(pem))
    except (ValueError, TypeError):
        certs = []
    if not certs:
        raise CAError([(path, f"the {what} is not PEM text holding at least one CERTIFICATE block")])
    return certs


def load_certificate(pem: str, *, what: str = "certificate", path: str = "ca") -> x509.Certificate:
    """The first certificate of a PEM bundle (see :func:`load_certificates`)."""
    return load_certificates(pem, what=what, path=path)[0]


def cert_to_pem(cert: x509.Certificate) -> str:
    """PEM text of one certificate, ending with a newline."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def fingerprint(cert: x509.Certificate | str) -> str:
    """SHA-256 fingerprint of the DER certificate as lowercase hex (``openssl x509 -fingerprint -sha256`` without colons)."""
    if isinstance(cert, str):
        cert = load_certificate(cert)
    return cert.fingerprint(hashes.SHA256()).hex()


def not_after(cert: x509.Certificate | str) -> _dt.datetime:
    """Expiry (timezone-aware UTC) of a certificate or of the first certificate in a PEM string."""
    if isinstance(cert, str):
        cert = load_certificate(cert)
    return cert.not_valid_after_utc


def key_algorithm_of(public_key: Any) -> str:
    """``ECDSA_P256``, ``RSA_<bits>`` or ``OTHER`` for a public (or private) key."""
    if hasattr(public_key, "public_key") and not isinstance(public_key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        public_key = public_key.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ECDSA_P256" if public_key.curve.name == "secp256r1" else f"ECDSA_{public_key.curve.name}"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA_{public_key.key_size}"
    return "OTHER"


def join_pems(*pems: str) -> str:
    """Concatenate PEM texts, one newline between each, dropping repeated certificates (by fingerprint)."""
    out: list[str] = []
    seen: set[str] = set()
    for pem in pems:
        if not pem:
            continue
        for cert in load_certificates(pem):
            fp = fingerprint(cert)
            if fp not in seen:
                seen.add(fp)
                out.append(cert_to_pem(cert))
    return "".join(out)


def is_self_signed(cert: x509.Certificate) -> bool:
    """True when the certificate's issuer is its subject and its own key verifies its signature."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not self-signed"
        return False


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """Istio's workload identity ``spiffe://<trust-domain>/ns/<ns>/sa/<sa>`` (https://istio.io/latest/docs/concepts/security/#istio-identity)."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def _b(s: str | bytes) -> bytes:
    return s.encode() if isinstance(s, str) else s


def _utc(t: _dt.datetime) -> _dt.datetime:
    return t.replace(tzinfo=_dt.timezone.utc) if t.tzinfo is None else t.astimezone(_dt.timezone.utc)


def _ski(public_key: Any) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _aki(issuer: x509.Certificate | None, issuer_public_key: Any) -> x509.AuthorityKeyIdentifier:
    if issuer is not None:
        try:
            ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        except x509.ExtensionNotFound:
            pass
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key)


def _ca_builder(subject: x509.Name, issuer_name: x509.Name, public_key: Any, issuer_cert: x509.Certificate | None,
                issuer_public_key: Any, *, start: _dt.datetime, end: _dt.datetime, path_length: int | None,
                sans: Sequence[x509.GeneralName] = ()) -> x509.CertificateBuilder:
    b = (x509.CertificateBuilder()
         .subject_name(subject).issuer_name(issuer_name).public_key(public_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                      crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(_ski(public_key), critical=False)
         .add_extension(_aki(issuer_cert, issuer_public_key), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b


def _sign(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    return builder.sign(key, hashes.SHA256())


def root_subject(cfg: CAConfig, generation: int) -> x509.Name:
    """``CN=<mesh_name> root CA g<generation>, O=<mesh_name>``: each generation has its own name, so chains stay unambiguous."""
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, cfg.mesh_name),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{cfg.mesh_name} root CA g{generation}"),
    ])


def intermediate_common_name(cfg: CAConfig, cluster: str) -> str:
    """The intermediate's CN. For Linkerd it is ``identity.linkerd.<trust-domain>``, the name Linkerd's
    identity controller verifies the issuer against (``Crt.Verify(roots, name)`` with ``DNSName``,
    https://github.com/linkerd/linkerd2/blob/main/pkg/tls/cred.go). Otherwise it is
    ``<mesh_name> intermediate CA <cluster>``."""
    if cfg.mesh == "linkerd":
        return f"identity.linkerd.{cfg.trust_domain}"
    return f"{cfg.mesh_name} intermediate CA {cluster}"


def intermediate_subject(cfg: CAConfig, cluster: str) -> x509.Name:
    """``CN=<see intermediate_common_name>, OU=<trust_domain>, O=<mesh_name>, L=<cluster>`` (Istio's
    tools/certs convention puts the cluster in L, https://github.com/istio/istio/tree/master/tools/certs)."""
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, cfg.mesh_name),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, cfg.trust_domain),
        x509.NameAttribute(NameOID.LOCALITY_NAME, cluster),
        x509.NameAttribute(NameOID.COMMON_NAME, intermediate_common_name(cfg, cluster)),
    ])


def intermediate_sans(cfg: CAConfig) -> list[x509.GeneralName]:
    """Subject alternative names of an intermediate: the DNS name Linkerd verifies, none for other meshes."""
    if cfg.mesh == "linkerd":
        return [x509.DNSName(f"identity.linkerd.{cfg.trust_domain}")]
    return []


def intermediate_name_constraints(cfg: CAConfig, cluster: str) -> x509.NameConstraints | None:
    """The ``nameConstraints`` of ``cluster``'s intermediate: one permitted URI subtree, the host
    ``cfg.intermediate_uri_domains[cluster]`` (a SPIFFE trust domain: ``spiffe://<td>/...`` matches,
    ``spiffe://<other td>/...`` does not; RFC 5280 4.2.1.10), no excluded subtrees; ``None`` when
    the cluster has no entry (no extension)."""
    host = cfg.intermediate_uri_domains.get(cluster)
    if not host:
        return None
    return x509.NameConstraints(permitted_subtrees=[x509.UniformResourceIdentifier(host)], excluded_subtrees=None)


def _name_constraints_of(cert: x509.Certificate) -> x509.NameConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None


def _path_length_of(cert: x509.Certificate) -> int | None:
    """``pathLenConstraint`` of a CA certificate (``None``: unlimited, or no basicConstraints)."""
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        return None


def issue_root(cfg: CAConfig, generation: int, *, now: _dt.datetime, key: PrivateKey | None = None) -> tuple[str, str]:
    """A self-signed root ``(cert_pem, key_pem)``: pathlen 1, valid ``cfg.root_validity_days`` days from ``now``.

    ``key`` defaults to a new ``cfg.key_algorithm`` key.
    """
    now = _utc(now)
    key = key or generate_key(cfg.key_algorithm)
    name = root_subject(cfg, generation)
    cert = _sign(_ca_builder(name, name, key.public_key(), None, key.public_key(), start=now - CLOCK_SKEW,
                             end=now + _dt.timedelta(days=cfg.root_validity_days),
                             path_length=1 + cfg.intermediate_path_length), key)
    return cert_to_pem(cert), private_key_pem(key)


@dataclass(frozen=True)
class IssuedCert:
    """A certificate with its key and chain (``chain_pem``: the certificate first, then its issuers up to the root)."""

    cert_pem: str
    key_pem: str
    chain_pem: str


def issue_intermediate(cfg: CAConfig, cluster: str, *, issuer_cert_pem: str, issuer_key_pem: str,
                       now: _dt.datetime, key: PrivateKey | None = None,
                       issuer_chain_pem: str | None = None) -> IssuedCert:
    """The intermediate CA of ``cluster``, signed by the given root (or other CA).

    pathlen 0, valid ``cfg.intermediate_validity_days`` days from ``now`` but never past the
    issuer's own expiry. ``chain_pem`` = intermediate + issuer chain (``issuer_chain_pem``,
    default: the issuer alone), the shape of Istio's ``cert-chain.pem``.
    """
    now = _utc(now)
    issuer = load_certificate(issuer_cert_pem)
    issuer_key = load_private_key(issuer_key_pem, what="root key")
    key = key or generate_key(cfg.key_algorithm)
    end = min(now + _dt.timedelta(days=cfg.intermediate_validity_days), issuer.not_valid_after_utc)
    builder = _ca_builder(intermediate_subject(cfg, cluster), issuer.subject, key.public_key(), issuer,
                          issuer_key.public_key(), start=now - CLOCK_SKEW, end=end,
                          path_length=cfg.intermediate_path_length, sans=intermediate_sans(cfg))
    constraints = intermediate_name_constraints(cfg, cluster)
    if constraints is not None:  # critical: RFC 5280 4.2.1.10 "Conforming CAs MUST mark this extension as critical"
        builder = builder.add_extension(constraints, critical=True)
    cert = _sign(builder, issuer_key)
    pem = cert_to_pem(cert)
    return IssuedCert(pem, private_key_pem(key), join_pems(pem, issuer_chain_pem or issuer_cert_pem))


def intermediate_csr(cfg: CAConfig, cluster: str, key: PrivateKey) -> str:
    """PEM CSR for the intermediate of ``cluster``, for an external signer. It asks for the subject,
    SANs, ``CA:TRUE, pathlen:0`` and keyCertSign/cRLSign, as Vault's ``use_csr_values`` expects."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(intermediate_subject(cfg, cluster))
           .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
           .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                        data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                        crl_sign=True, encipher_only=False, decipher_only=False), critical=True))
    sans = intermediate_sans(cfg)
    if sans:
        csr = csr.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def issue_workload_certificate(issuer_cert_pem: str, issuer_key_pem: str, *, now: _dt.datetime,
                               spiffe_uri: str | None = None, dns_names: Sequence[str] = (),
                               validity_hours: int = 24, key_algorithm: str = "ECDSA_P256",
                               issuer_chain_pem: str | None = None) -> IssuedCert:
    """A leaf (workload) certificate, as a mesh's CA would sign it from a cluster's intermediate.

    Empty subject with a critical SAN holding ``spiffe_uri`` (X.509-SVID, as Istio issues) and/or
    ``dns_names``. ``CA:FALSE``, digitalSignature (+keyEncipherment for RSA), serverAuth+clientAuth.
    ``chain_pem`` = leaf + ``issuer_chain_pem`` (default: the issuer alone). Meshes issue these
    themselves. This function exists for tests and tooling.
    """
    if not spiffe_uri and not dns_names:
        raise CAError([("workload", "a workload certificate needs a SPIFFE URI or a DNS name")])
    now = _utc(now)
    issuer = load_certificate(issuer_cert_pem)
    issuer_key = load_private_key(issuer_key_pem, what="issuer key")
    key = generate_key(key_algorithm)
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_uri)] if spiffe_uri else []
    sans += [x509.DNSName(d) for d in dns_names]
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    end = min(now + _dt.timedelta(hours=validity_hours), issuer.not_valid_after_utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([])).issuer_name(issuer.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - CLOCK_SKEW).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=is_rsa,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                        critical=False)
         .add_extension(x509.SubjectAlternativeName(sans), critical=True)
         .add_extension(_ski(key.public_key()), critical=False)
         .add_extension(_aki(issuer, issuer_key.public_key()), critical=False))
    pem = cert_to_pem(_sign(b, issuer_key))
    return IssuedCert(pem, private_key_pem(key), join_pems(pem, issuer_chain_pem or issuer_cert_pem))


def check_ca_certificate(cert: x509.Certificate, *, path: str, what: str, mesh: str | None = None,
                         min_path_length: int = 0) -> list[tuple[str, str]]:
    """Problems that keep ``cert`` from acting as a mesh CA: not ``CA:TRUE``, no keyCertSign,
    a path length below ``min_path_length``, or a key type ``mesh`` cannot use."""
    p: list[tuple[str, str]] = []
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not bc.ca:
            p.append((path, f"the {what} is not a CA certificate (basicConstraints CA:FALSE); supply a CA certificate"))
        elif bc.path_length is not None and bc.path_length < min_path_length:
            p.append((path, f"the {what} has pathlen {bc.path_length}, so it cannot sign the intermediates below it; "
                            f"supply a CA with pathlen >= {min_path_length} or none"))
    except x509.ExtensionNotFound:
        p.append((path, f"the {what} has no basicConstraints extension; supply a CA certificate"))
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.key_cert_sign:
            p.append((path, f"the {what} lacks keyUsage keyCertSign; supply a CA that may sign certificates"))
    except x509.ExtensionNotFound:
        pass
    alg = key_algorithm_of(cert.public_key())
    if mesh == "linkerd" and alg != "ECDSA_P256":
        p.append((path, f"the {what} has a {alg} key, but Linkerd accepts only ECDSA P-256; supply a P-256 CA"))
    if mesh == "osm" and not alg.startswith("RSA_"):
        p.append((path, f"the {what} has a {alg} key, but OSM v1.2.4 accepts only RSA; supply an RSA CA"))
    return p


def _key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    return (cert.public_key().public_bytes(serialization.Encoding.DER, pub)
            == key.public_key().public_bytes(serialization.Encoding.DER, pub))


def _chain_ok(certs: Sequence[x509.Certificate]) -> bool:
    for child, parent in zip(certs, certs[1:]):
        try:
            child.verify_directly_issued_by(parent)
        except Exception:  # noqa: BLE001
            return False
    return True


# ---------------------------------------------------------------------------------------------
# state


def iso(t: _dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return _utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s: str) -> _dt.datetime:
    """Inverse of :func:`iso` (also accepts ``+00:00`` offsets)."""
    return _utc(_dt.datetime.fromisoformat(s.replace("Z", "+00:00")))


@dataclass(frozen=True)
class RootRecord:
    """A trusted root: its ``generation``, certificate and key (``None`` when the key lives elsewhere: Vault, intermediateOnly)."""

    generation: int
    cert_pem: str
    key_pem: str | None = None

    @cached_property
    def cert(self) -> x509.Certificate:
        return load_certificate(self.cert_pem, what=f"root certificate (generation {self.generation})")

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    @property
    def not_after(self) -> _dt.datetime:
        return self.cert.not_valid_after_utc

    @property
    def key_algorithm(self) -> str:
        return key_algorithm_of(self.cert.public_key())


@dataclass(frozen=True)
class IntermediateRecord:
    """A cluster's intermediate CA. ``chain_pem`` runs from the intermediate up to and including its root."""

    cluster: str
    cert_pem: str
    key_pem: str
    chain_pem: str

    @cached_property
    def cert(self) -> x509.Certificate:
        return load_certificate(self.cert_pem, what=f"intermediate of cluster {self.cluster}")

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    @cached_property
    def issuer_fingerprint(self) -> str:
        """Fingerprint of the root at the top of ``chain_pem``."""
        return fingerprint(load_certificates(self.chain_pem)[-1])

    @property
    def not_after(self) -> _dt.datetime:
        return self.cert.not_valid_after_utc

    @property
    def key_algorithm(self) -> str:
        return key_algorithm_of(self.cert.public_key())

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()


@dataclass(frozen=True)
class CAState:
    """What exists: trusted ``roots`` (ascending generation), the ``signer_generation`` whose root
    signs intermediates, the ``stage`` last applied and when (``stage_applied_at``), and one
    intermediate per cluster."""

    mode: str
    root_generation: int
    stage: str
    stage_applied_at: _dt.datetime
    roots: tuple[RootRecord, ...]
    signer_generation: int
    intermediates: Mapping[str, IntermediateRecord] = field(default_factory=dict)

    def root(self, generation: int) -> RootRecord | None:
        return next((r for r in self.roots if r.generation == generation), None)

    @property
    def signer(self) -> RootRecord:
        r = self.root(self.signer_generation)
        if r is None:  # pragma: no cover - guarded by apply_plan
            raise CAError(f"state names signer generation {self.signer_generation}, which is not a trusted root")
        return r

    @property
    def trust_bundle_pem(self) -> str:
        """Every trusted root, oldest first (one or two PEMs concatenated)."""
        return join_pems(*(r.cert_pem for r in self.roots))

    @property
    def multi_root(self) -> bool:
        return len(self.roots) > 1

    def material(self, cluster: str) -> "ClusterCAMaterial":
        """The :class:`ClusterCAMaterial` of ``cluster`` (plain strings)."""
        rec = self.intermediates[cluster]
        return ClusterCAMaterial(self.trust_bundle_pem, rec.cert_pem, rec.key_pem, rec.chain_pem)


@dataclass(frozen=True)
class SuppliedMaterial:
    """Secret inputs, passed apart from :class:`CAConfig`.

    byoRoot: ``root_cert_pem`` + ``root_key_pem`` is the root of ``CAConfig.root_generation``.
    intermediateOnly: ``intermediates`` maps cluster -> ``{"cert_pem", "key_pem", "chain_pem"}``.
    ``root_cert_pem`` may add trusted roots (e.g. old + new during a user-driven rotation).
    vault: ``vault_token``.
    """

    root_cert_pem: str | None = None
    root_key_pem: str | None = None
    intermediates: Mapping[str, Mapping[str, str]] | None = None
    vault_token: str | None = None


def validate_supplied(cfg: CAConfig, supplied: SuppliedMaterial) -> list[tuple[str, str]]:
    """Problems with the secret inputs for ``cfg.mode``. Messages never quote key material."""
    P = FIELD_PATHS
    p: list[tuple[str, str]] = []
    if cfg.mode == "byoRoot":
        if not supplied.root_cert_pem or not supplied.root_key_pem:
            return [(P["root_cert_pem"], "byoRoot mode needs the root certificate and key as Pulumi secrets "
                                         "(root_cert_pem and root_key_pem)")]
        try:
            cert = load_certificate(supplied.root_cert_pem, what="root certificate", path=P["root_cert_pem"])
            key = load_private_key(supplied.root_key_pem, what="root key", path=P["root_key_pem"])
        except CAError as e:
            return e.problems
        if not _key_matches(cert, key):
            p.append((P["root_key_pem"], "the root key does not belong to the root certificate; pass the matching key"))
        p += check_ca_certificate(cert, path=P["root_cert_pem"], what="root certificate", mesh=cfg.mesh,
                                  min_path_length=1)
    elif cfg.mode == "intermediateOnly":
        given = dict(supplied.intermediates or {})
        for c in cfg.clusters:
            path = f"{P['intermediates']}.{c}"
            item = given.get(c)
            if not item or not item.get("cert_pem") or not item.get("key_pem"):
                p.append((path, f"intermediateOnly mode needs cluster {c}'s intermediate as "
                                "{cert_pem, key_pem, chain_pem} (Pulumi secret)"))
                continue
            try:
                certs = load_certificates(item["cert_pem"], what="intermediate certificate", path=path)
                chain = load_certificates(item.get("chain_pem") or item["cert_pem"], what="chain", path=path)
                key = load_private_key(item["key_pem"], what="intermediate key", path=path)
            except CAError as e:
                p += e.problems
                continue
            full = _normalise_chain(certs[0], certs[1:] + chain)
            if not _key_matches(full[0], key):
                p.append((path, "the key does not belong to the intermediate certificate; pass the matching key"))
            if not _chain_ok(full):
                p.append((path, "the chain does not verify: each certificate must be signed by the next, up to the root"))
            if len(full) < 2:
                p.append((path, "chain_pem must hold the issuer(s) up to the root, so the root can be trusted"))
            p += check_ca_certificate(full[0], path=path, what="intermediate", mesh=cfg.mesh)
        extra = sorted(set(given) - set(cfg.clusters))
        if extra:
            p.append((P["intermediates"], f"intermediates given for unknown cluster(s) {', '.join(extra)}; "
                                          "add them to the clusters or remove them"))
        if supplied.root_cert_pem:
            try:
                load_certificates(supplied.root_cert_pem, what="trusted roots", path=P["root_cert_pem"])
            except CAError as e:
                p += e.problems
    elif cfg.mode == "vault":
        if not supplied.vault_token:
            p.append((P["vault_token"], "vault mode needs the Vault token as a Pulumi secret (vault_token)"))
    return p


def _normalise_chain(first: x509.Certificate, rest: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    out = [first]
    seen = {fingerprint(first)}
    for c in rest:
        fp = fingerprint(c)
        if fp not in seen:
            seen.add(fp)
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------------
# rotation state machine and planner


def check_stage_transition(old_generation: int, old_stage: str, new_generation: int, new_stage: str) -> None:
    """Refuse a root-rotation move that skips or reverses a stage. Raises :class:`CAError` naming the stage to apply first.

    Allowed moves (one stack update each): ``(g, none|removeOldRoot) -> (g+1, addNewRoot)`` starts a
    rotation; ``addNewRoot -> reissueIntermediates -> removeOldRoot -> none`` at the same generation;
    ``reissueIntermediates -> addNewRoot`` rolls back the signer; ``(g, addNewRoot) -> (g-1, none)``
    abandons a rotation before any intermediate moved. Within a generation ``none`` and
    ``removeOldRoot`` both mean one trusted root. The overlap wait before ``removeOldRoot`` needs
    time, so :func:`plan_changes` checks it.
    Upstream flow: https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/ and
    https://linkerd.io/2/tasks/manually-rotating-control-plane-tls-credentials/.
    """
    path = FIELD_PATHS["rotation_stage"]
    gpath = FIELD_PATHS["root_generation"]
    g0, s0, g1, s1 = old_generation, old_stage, new_generation, new_stage
    single0, single1 = s0 in SINGLE_ROOT_STAGES, s1 in SINGLE_ROOT_STAGES
    if g1 == g0:
        if s1 == s0 or (single0 and single1):
            return
        if s0 == "addNewRoot" and s1 == "reissueIntermediates":
            return
        if s0 == "reissueIntermediates" and s1 in ("removeOldRoot", "addNewRoot"):
            return
        if s0 == "addNewRoot":
            raise CAError([(path, f"root generation {g1} is at stage addNewRoot; apply stage reissueIntermediates "
                                  f"first (then removeOldRoot), one update each")])
        if s0 == "reissueIntermediates":
            raise CAError([(path, f"root generation {g1} is at stage reissueIntermediates; apply stage "
                                  "removeOldRoot first to finish the rotation")])
        raise CAError([(path, f"the rotation to root generation {g1} is finished (stage {s0}); to rotate again "
                              f"set generation {g1 + 1} with stage addNewRoot")])
    if g1 == g0 + 1:
        if single0 and s1 == "addNewRoot":
            return
        if single0:
            raise CAError([(path, f"generation {g1} starts a root rotation, which must begin with stage "
                                  f"addNewRoot (trust old + new root everywhere); apply addNewRoot first, "
                                  f"not {s1}")])
        raise CAError([(gpath, f"the rotation to generation {g0} is still at stage {s0}; finish it "
                               f"({'reissueIntermediates, then ' if s0 == 'addNewRoot' else ''}removeOldRoot) "
                               f"before starting generation {g1}")])
    if g1 == g0 - 1 and s0 == "addNewRoot" and single1:
        return
    if g1 > g0:
        raise CAError([(gpath, f"generation jumps from {g0} to {g1}; rotate one generation at a time: set "
                               f"{g0 + 1} with stage addNewRoot first")])
    raise CAError([(gpath, f"generation cannot go back from {g0} to {g1} (stage {s0}); only a rotation still "
                           f"at addNewRoot can be abandoned, by setting generation {g0 - 1} with stage none")])


def transition_problems(cfg: CAConfig, *, prev_mode: str, prev_generation: int, prev_stage: str,
                        now: _dt.datetime, stage_since: _dt.datetime | None = None,
                        prev_root_fingerprint: str | None = None,
                        supplied: SuppliedMaterial | None = None) -> list[tuple[str, str]]:
    """Problems with moving from the CA last applied (``prev_*``) to ``cfg`` at ``now``, as ``(path, message)``.

    Empty when the move is allowed. Pure. :func:`plan_changes` calls it with the stored state and
    the provider's ``check`` calls it with the last applied inputs, so a refused move is a check
    failure before any diff (see :mod:`mesh_components.ca_provider`). The checks, in order:
    leaving intermediateOnly; :func:`check_stage_transition`; a mode switch without a new root
    generation; ``removeOldRoot`` sooner than ``overlap_days`` after ``reissueIntermediates``
    was applied (``stage_since``; skipped when ``None``); a byoRoot root that differs from
    ``prev_root_fingerprint``, the root of ``cfg.root_generation`` already in use. intermediateOnly
    targets have no stages, so nothing is checked for them.
    """
    P = FIELD_PATHS
    G, S = cfg.root_generation, cfg.rotation_stage
    if cfg.mode == "intermediateOnly":
        return []
    if prev_mode == "intermediateOnly":
        return [(P["mode"], f"switching from intermediateOnly to {cfg.mode} would replace the trust roots in one "
                            "step; create a new CA resource instead")]
    try:
        check_stage_transition(prev_generation, prev_stage, G, S)
    except CAError as e:
        return e.problems
    if prev_mode != cfg.mode and G == prev_generation:
        return [(P["mode"], f"switching mode from {prev_mode} to {cfg.mode} brings a new root; do it as a rotation: "
                            f"set generation {G + 1} with stage addNewRoot")]
    if S == "removeOldRoot" and prev_stage == "reissueIntermediates" and G == prev_generation and stage_since:
        ready = _utc(stage_since) + _dt.timedelta(days=cfg.overlap_days)
        if _utc(now) < ready:
            return [(P["rotation_stage"],
                     f"removeOldRoot must wait {cfg.overlap_days} days after reissueIntermediates (applied "
                     f"{iso(stage_since)}), so workloads pick up the new intermediates; apply it after "
                     f"{iso(ready)}, or lower overlapDays")]
    root = (supplied or SuppliedMaterial()).root_cert_pem
    if cfg.mode == "byoRoot" and prev_root_fingerprint and root:
        try:
            differs = fingerprint(root) != prev_root_fingerprint
        except CAError as e:
            return e.problems
        if differs:
            return [(P["root_cert_pem"], f"the supplied root differs from root generation {G} already in use; a new "
                                         f"root needs a staged rotation: set generation {G + 1} with stage addNewRoot")]
    return []


@dataclass(frozen=True)
class Reissue:
    """One intermediate to (re-)issue and why."""

    cluster: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """What an update must do. Built by :func:`plan_changes`, carried out by :func:`apply_plan`."""

    stage: str
    root_generation: int
    signer_generation: int
    add_root_generation: int | None = None
    drop_root_generations: tuple[int, ...] = ()
    reissue: tuple[Reissue, ...] = ()
    remove: tuple[str, ...] = ()
    roots_changed: bool = False
    stage_changed: bool = False
    notices: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        """True when applying the plan changes any certificate, the trusted roots or the recorded stage."""
        return bool(self.add_root_generation is not None or self.drop_root_generations or self.reissue
                    or self.remove or self.roots_changed or self.stage_changed)

    @property
    def reissue_clusters(self) -> tuple[str, ...]:
        return tuple(r.cluster for r in self.reissue)

    def describe(self) -> str:
        """One line for people: stage, root changes, intermediates to issue/remove, or ``no changes``."""
        parts = [f"stage {self.stage} (root generation {self.root_generation}, signer g{self.signer_generation})"]
        if self.add_root_generation is not None:
            parts.append(f"add root g{self.add_root_generation}")
        if self.drop_root_generations:
            parts.append("remove root " + ", ".join(f"g{g}" for g in self.drop_root_generations))
        if self.roots_changed:
            parts.append("trusted roots changed")
        if self.reissue:
            parts.append("issue " + "; ".join(f"{r.cluster} ({r.reason})" for r in self.reissue))
        if self.remove:
            parts.append("remove intermediates " + ", ".join(self.remove))
        if not self.changes:
            parts.append("no changes")
        return "; ".join(parts)


def stage_description(stage: str, generation: int) -> str:
    """What stage ``stage`` means for the trust bundle and signer, in words (shown in previews and outputs)."""
    old = generation - 1
    return {
        "none": f"steady: trust root g{generation} only; it signs every intermediate",
        "addNewRoot": f"rotation 1/3: trust roots g{old} + g{generation} everywhere; signer stays g{old}",
        "reissueIntermediates": f"rotation 2/3: trust g{old} + g{generation}; intermediates re-issued from g{generation}",
        "removeOldRoot": f"rotation 3/3: trust root g{generation} only; g{old} removed",
    }.get(stage, stage)


def _due(rec: IntermediateRecord, cfg: CAConfig, signer_not_after: _dt.datetime, now: _dt.datetime) -> str | None:
    window_start = rec.not_after - _dt.timedelta(days=cfg.rotation_window_days)
    if now < window_start:
        return None
    would_end = min(now + _dt.timedelta(days=cfg.intermediate_validity_days), signer_not_after)
    if would_end <= rec.not_after:  # capped by the root: re-issuing would not extend it
        return None
    if now >= rec.not_after:
        return f"expired {iso(rec.not_after)}"
    return f"inside the {cfg.rotation_window_days}-day rotation window: expires {iso(rec.not_after)}"


def due_notices(cfg: CAConfig, state: CAState, now: _dt.datetime) -> list[str]:
    """What time has made due in ``state`` by ``now`` but no update has applied yet, one sentence each.

    Pure; the provider's ``read`` prints these on refresh, and the next ``pulumi up`` applies them
    (managed, byoRoot, vault: re-issues the intermediates inside their rotation window) or asks
    for them (intermediateOnly: new intermediates; any mode: a root near its expiry needs a staged
    rotation). Empty when nothing is due.
    """
    now = _utc(now)
    window = _dt.timedelta(days=cfg.rotation_window_days)
    out: list[str] = []
    if state.mode == "intermediateOnly":
        for c in sorted(state.intermediates):
            rec = state.intermediates[c]
            if now >= rec.not_after - window:
                out.append(f"the supplied intermediate of {c} expires {iso(rec.not_after)}; supply a new one")
        return out
    signer = state.root(state.signer_generation)
    for c in sorted(state.intermediates):
        rec = state.intermediates[c]
        why = _due(rec, cfg, signer.not_after if signer else rec.not_after, now)
        if why:
            out.append(f"the intermediate of {c} is {why}; the next `pulumi up` re-issues it")
    newest = state.root(state.root_generation)
    if newest is not None and now >= newest.not_after - window:
        out.append(f"root g{state.root_generation} expires {iso(newest.not_after)}; start a staged rotation: set "
                   f"generation {state.root_generation + 1} with stage addNewRoot")
    return out


def plan_changes(cfg: CAConfig, state: CAState | None, now: _dt.datetime,
                 supplied: SuppliedMaterial | None = None) -> Plan:
    """What must change so that ``state`` matches ``cfg`` at time ``now``. Pure and cheap (no signing, no I/O).

    Intermediates are (re-)issued for added clusters, a changed signer root, key algorithm,
    subject, or when inside the rotation window (``now >= not_after - rotation_window_days``)
    and a re-issue would extend them. Removed clusters lose only their intermediate. Roots are
    never replaced in one step: a new root arrives only through the stages of
    :func:`check_stage_transition`. Raises :class:`CAError` for invalid config or inputs, a skipped
    stage, or ``removeOldRoot`` before ``overlap_days`` have passed since ``reissueIntermediates``.
    """
    require_valid(cfg)
    supplied = supplied or SuppliedMaterial()
    problems = validate_supplied(cfg, supplied)
    if problems:
        raise CAError(problems)
    now = _utc(now)
    if cfg.mode == "intermediateOnly":
        return _plan_intermediate_only(cfg, state, now, supplied)
    G, S = cfg.root_generation, cfg.rotation_stage
    if state is None:
        return Plan(stage=S, root_generation=G, signer_generation=G, add_root_generation=G,
                    reissue=tuple(Reissue(c, "new cluster") for c in cfg.clusters), stage_changed=True,
                    notices=(stage_description(S, G),) if S not in SINGLE_ROOT_STAGES else ())
    existing = {r.generation: r for r in state.roots}
    problems = transition_problems(
        cfg, prev_mode=state.mode, prev_generation=state.root_generation, prev_stage=state.stage, now=now,
        stage_since=state.stage_applied_at if any(g < G for g in existing) else None,
        prev_root_fingerprint=existing[G].fingerprint if G in existing else None, supplied=supplied)
    if problems:
        raise CAError(problems)
    add = None if G in existing else G
    older = sorted(g for g in existing if g < G)
    old = older[-1] if older else None
    if S in SINGLE_ROOT_STAGES or old is None:
        trusted = [G]
    else:
        trusted = [old, G]
    signer = old if (S == "addNewRoot" and old is not None) else G
    drop = tuple(sorted(g for g in existing if g not in trusted))
    signer_rec = existing.get(signer)
    if cfg.mode == "vault" and S == "addNewRoot":
        acceptable = {existing[g].fingerprint for g in trusted if g in existing}
    else:
        acceptable = {signer_rec.fingerprint} if signer_rec else set()
    reissue: list[Reissue] = []
    for c in cfg.clusters:
        rec = state.intermediates.get(c)
        if rec is None:
            reissue.append(Reissue(c, "cluster added"))
            continue
        if rec.issuer_fingerprint not in acceptable:
            gen = next((r.generation for r in state.roots if r.fingerprint == rec.issuer_fingerprint), None)
            reissue.append(Reissue(c, f"signed by root {'g%d' % gen if gen else 'no longer trusted'}; signer is g{signer}"))
            continue
        if rec.key_algorithm != cfg.key_algorithm:
            reissue.append(Reissue(c, f"key algorithm {rec.key_algorithm} -> {cfg.key_algorithm}"))
            continue
        want = (x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, intermediate_common_name(cfg, c))]).rfc4514_string()
                if cfg.mode == "vault" else intermediate_subject(cfg, c).rfc4514_string())
        have = (x509.Name(rec.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)).rfc4514_string()
                if cfg.mode == "vault" else rec.subject)
        if have != want:
            reissue.append(Reissue(c, f"subject {have} -> {want}"))
            continue
        if cfg.mode in ("managed", "byoRoot"):  # intermediates this module issues (vault's: Vault's role)
            depth = _path_length_of(rec.cert)
            if depth != cfg.intermediate_path_length:
                reissue.append(Reissue(c, f"pathLenConstraint {depth} -> {cfg.intermediate_path_length}"))
                continue
            limits = intermediate_name_constraints(cfg, c)
            if _name_constraints_of(rec.cert) != limits:
                reissue.append(Reissue(c, "URI name constraints " + (
                    f"-> {cfg.intermediate_uri_domains[c]}" if limits else "removed")))
                continue
        due = _due(rec, cfg, signer_rec.not_after if signer_rec else rec.not_after, now)
        if due:
            reissue.append(Reissue(c, due))
    if signer_rec is not None:
        problems = path_length_problems(cfg, signer_rec)
        if problems:
            raise CAError(problems)
    remove = tuple(sorted(set(state.intermediates) - set(cfg.clusters)))
    notices: list[str] = []
    if S not in SINGLE_ROOT_STAGES:
        notices.append(stage_description(S, G))
    newest = existing.get(G)
    if newest is not None:
        if now >= newest.not_after - _dt.timedelta(days=cfg.rotation_window_days):
            notices.append(f"root g{G} expires {iso(newest.not_after)}; start a staged rotation: set generation "
                           f"{G + 1} with stage addNewRoot")
        if cfg.mode == "managed" and newest.key_algorithm != cfg.key_algorithm:
            notices.append(f"root g{G} keeps its {newest.key_algorithm} key; keyAlgorithm {cfg.key_algorithm} applies "
                           "to the root at the next rotation")
    return Plan(stage=S, root_generation=G, signer_generation=signer, add_root_generation=add,
                drop_root_generations=drop, reissue=tuple(reissue), remove=remove,
                stage_changed=(S != state.stage or G != state.root_generation or cfg.mode != state.mode),
                notices=tuple(notices))


def path_length_problems(cfg: CAConfig, signer: RootRecord) -> list[tuple[str, str]]:
    """``[(ca.mode, message)]`` when ``signer`` (the root that signs the intermediates after this
    update) has a ``pathLenConstraint`` below ``1 + cfg.intermediate_path_length``; else ``[]``.

    With ``ca.mode: spire`` the path is root -> intermediate -> SPIRE server CA -> SVID: two CA
    certificates below the root, so the root needs pathlen >= 2 (RFC 5280 4.2.1.9, 6.1.4 (l)-(m);
    ``openssl verify`` error 25 "path length constraint exceeded"). SPIRE does not check it: it
    signs its server CA under the upstream authority anyway (spiffe/spire v1.14.5
    ``pkg/common/x509svid/upstreamca.go:44-88``; the ``disk`` plugin only verifies the upstream
    certificate, ``pkg/server/plugin/upstreamauthority/disk/disk.go:239``), so every SVID chain would
    fail. A root minted for another mode (pathlen 1) cannot sign such intermediates, and a root
    rotation cannot replace it without a stage in which the old root signs (``addNewRoot``), so the
    only exact road is a new CA (a fresh stack)."""
    need = 1 + cfg.intermediate_path_length
    have = _path_length_of(signer.cert)
    if have is None or have >= need:
        return []
    return [(FIELD_PATHS["mode"],
             f"root g{signer.generation} has pathLenConstraint {have} (minted for a mode without SPIRE), but "
             f"ca.mode spire needs {need}: root -> cluster intermediate -> SPIRE server CA -> SVID, and SPIRE would "
             "sign under it anyway, so every workload certificate chain would fail verification (path length "
             "constraint exceeded) and all mesh traffic would be denied. A root rotation cannot help (its "
             "addNewRoot stage still signs with this root). Keep the previous ca.mode on this stack, or deploy "
             "ca.mode spire on a new stack (a fresh CA, minted with pathlen "
             f"{need}) and move workloads to it")]


def _supplied_roots(cfg: CAConfig, supplied: SuppliedMaterial) -> list[str]:
    roots: list[str] = []
    for c in cfg.clusters:
        item = (supplied.intermediates or {})[c]
        certs = load_certificates(item.get("chain_pem") or item["cert_pem"])
        roots.append(cert_to_pem(certs[-1]))
    if supplied.root_cert_pem:
        roots += [cert_to_pem(c) for c in load_certificates(supplied.root_cert_pem)]
    return [cert_to_pem(c) for c in load_certificates(join_pems(*roots))]


def _plan_intermediate_only(cfg: CAConfig, state: CAState | None, now: _dt.datetime,
                            supplied: SuppliedMaterial) -> Plan:
    roots = _supplied_roots(cfg, supplied)
    have_roots = [r.fingerprint for r in state.roots] if state else []
    roots_changed = [fingerprint(r) for r in roots] != have_roots
    reissue, notices = [], []
    for c in cfg.clusters:
        item = (supplied.intermediates or {})[c]
        fp = fingerprint(item["cert_pem"])
        rec = state.intermediates.get(c) if state else None
        if rec is None:
            reissue.append(Reissue(c, "cluster added" if state else "new cluster"))
        elif rec.fingerprint != fp:
            reissue.append(Reissue(c, "supplied intermediate changed"))
        end = not_after(item["cert_pem"])
        if now >= end - _dt.timedelta(days=cfg.rotation_window_days):
            notices.append(f"the supplied intermediate of {c} expires {iso(end)}; supply a new one")
    remove = tuple(sorted(set(state.intermediates) - set(cfg.clusters))) if state else ()
    return Plan(stage="none", root_generation=cfg.root_generation, signer_generation=1,
                reissue=tuple(reissue), remove=remove, roots_changed=roots_changed,
                stage_changed=state is None or state.mode != cfg.mode, notices=tuple(notices))


@dataclass(frozen=True)
class SignedIntermediate:
    """An external signer's answer (Vault ``sign-intermediate`` response ``data``): the new
    ``certificate``, the ``issuing_ca`` and ``ca_chain`` (nearest issuer first)."""

    certificate: str
    issuing_ca: str
    ca_chain: tuple[str, ...] = ()
    serial_number: str = ""
    expiration: int | None = None


class ExternalSigner(Protocol):
    """Signs intermediate CSRs with a root kept outside Pulumi (e.g. :class:`mesh_components.core.vault.VaultPKIClient`)."""

    def read_ca_chain(self) -> list[str]:
        """The signer's current issuer chain, issuer first, root last."""

    def sign_intermediate(self, csr_pem: str, *, common_name: str, ttl_hours: int,
                          max_path_length: int = 0) -> SignedIntermediate:
        """Sign ``csr_pem`` as an intermediate CA."""


def apply_plan(cfg: CAConfig, state: CAState | None, plan: Plan, now: _dt.datetime, *,
               supplied: SuppliedMaterial | None = None, signer: ExternalSigner | None = None,
               key_factory: Callable[[str], PrivateKey] = generate_key) -> CAState:
    """Carry out ``plan`` (from :func:`plan_changes` with the same arguments) and return the new state.

    managed: new roots are minted here. byoRoot: the supplied root is adopted. vault: the new root
    is the top of ``signer.read_ca_chain()`` and every intermediate is a local key plus a CSR that
    ``signer`` signs, so the root key never enters the state. intermediateOnly: the supplied
    intermediates are adopted. Raises :class:`CAError` when an external signer answers with a
    certificate that does not fit (wrong key, wrong root).
    """
    supplied = supplied or SuppliedMaterial()
    now = _utc(now)
    if cfg.mode == "intermediateOnly":
        return _apply_intermediate_only(cfg, state, plan, now, supplied)
    roots = {r.generation: r for r in (state.roots if state else ())}
    if plan.add_root_generation is not None:
        g = plan.add_root_generation
        if cfg.mode == "managed":
            cert_pem, key_pem = issue_root(cfg, g, now=now, key=key_factory(cfg.key_algorithm))
            roots[g] = RootRecord(g, cert_pem, key_pem)
        elif cfg.mode == "byoRoot":
            roots[g] = RootRecord(g, cert_to_pem(load_certificate(supplied.root_cert_pem)),
                                  private_key_pem(load_private_key(supplied.root_key_pem)))
        elif cfg.mode == "vault":
            if signer is None:
                raise CAError([(FIELD_PATHS["vault_address"], "vault mode needs a Vault signer")])
            chain = signer.read_ca_chain()
            anchor = cert_to_pem(load_certificates(join_pems(*chain), what="Vault CA chain")[-1])
            known = {r.fingerprint: r.generation for r in roots.values()}
            if fingerprint(anchor) in known:
                raise CAError([(FIELD_PATHS["root_generation"],
                                f"Vault's default issuer still chains to root g{known[fingerprint(anchor)]}; make the "
                                f"new root Vault's default issuer (mount {cfg.vault_mount}) before applying "
                                f"generation {g}")])
            roots[g] = RootRecord(g, anchor, None)
    elif cfg.mode == "byoRoot" and cfg.root_generation in roots:
        g = cfg.root_generation  # same root (checked by plan_changes); refresh the key from the input
        roots[g] = replace(roots[g], key_pem=private_key_pem(load_private_key(supplied.root_key_pem)))
    for g in plan.drop_root_generations:
        roots.pop(g, None)
    intermediates = dict(state.intermediates) if state else {}
    for c in plan.remove:
        intermediates.pop(c, None)
    signer_root = roots[plan.signer_generation]
    trusted_fps = {r.fingerprint for r in roots.values()}
    for item in plan.reissue:
        key = key_factory(cfg.key_algorithm)
        if cfg.mode == "vault":
            intermediates[item.cluster] = _vault_issue(cfg, item.cluster, key, signer, signer_root, trusted_fps,
                                                       strict=plan.stage != "addNewRoot")
        else:
            if not signer_root.key_pem:
                raise CAError([(FIELD_PATHS["root_key_pem"],
                                f"root g{signer_root.generation} has no private key here (its key stays with the "
                                f"system that issued it), so it cannot sign cluster {item.cluster}'s intermediate; "
                                "finish the rotation (reissueIntermediates) before adding clusters")])
            issued = issue_intermediate(cfg, item.cluster, issuer_cert_pem=signer_root.cert_pem,
                                        issuer_key_pem=signer_root.key_pem, now=now, key=key)
            intermediates[item.cluster] = IntermediateRecord(item.cluster, issued.cert_pem, issued.key_pem,
                                                             issued.chain_pem)
    changed = state is None or plan.stage_changed
    return CAState(mode=cfg.mode, root_generation=plan.root_generation, stage=plan.stage,
                   stage_applied_at=now if changed else state.stage_applied_at,
                   roots=tuple(roots[g] for g in sorted(roots)), signer_generation=plan.signer_generation,
                   intermediates={c: intermediates[c] for c in sorted(intermediates)})


def _vault_issue(cfg: CAConfig, cluster: str, key: PrivateKey, signer: ExternalSigner | None,
                 signer_root: RootRecord, trusted_fps: set[str], *, strict: bool) -> IntermediateRecord:
    if signer is None:
        raise CAError([(FIELD_PATHS["vault_address"], "vault mode needs a Vault signer")])
    signed = signer.sign_intermediate(intermediate_csr(cfg, cluster, key),
                                      common_name=intermediate_common_name(cfg, cluster),
                                      ttl_hours=cfg.intermediate_validity_days * 24, max_path_length=0)
    certs = load_certificates(signed.certificate, what="certificate Vault returned")
    chain = _normalise_chain(certs[0], certs[1:] + load_certificates(
        join_pems(*(signed.ca_chain or ()), signed.issuing_ca), what="CA chain Vault returned"))
    if not _key_matches(chain[0], key):
        raise CAError([(FIELD_PATHS["vault_address"], "Vault returned a certificate for a different key; check the "
                                                      "mount and that nothing rewrites the CSR")])
    top = fingerprint(chain[-1])
    want = {signer_root.fingerprint} if strict else trusted_fps
    if top not in want:
        raise CAError([(FIELD_PATHS["vault_address"],
                        f"Vault signed cluster {cluster}'s intermediate with a root that is not "
                        f"{'root g%d' % signer_root.generation if strict else 'a trusted root'} "
                        f"(got sha256 {top[:16]}...); set the mount's default issuer to that root")])
    pem = cert_to_pem(chain[0])
    return IntermediateRecord(cluster, pem, private_key_pem(key), "".join(cert_to_pem(c) for c in chain))


def _apply_intermediate_only(cfg: CAConfig, state: CAState | None, plan: Plan, now: _dt.datetime,
                             supplied: SuppliedMaterial) -> CAState:
    roots = tuple(RootRecord(i + 1, pem) for i, pem in enumerate(_supplied_roots(cfg, supplied)))
    inter: dict[str, IntermediateRecord] = {}
    for c in cfg.clusters:
        item = (supplied.intermediates or {})[c]
        certs = load_certificates(item["cert_pem"])
        chain = _normalise_chain(certs[0], certs[1:] + load_certificates(item.get("chain_pem") or item["cert_pem"]))
        inter[c] = IntermediateRecord(c, cert_to_pem(chain[0]), private_key_pem(load_private_key(item["key_pem"])),
                                      "".join(cert_to_pem(x) for x in chain))
    first_root = inter[cfg.clusters[0]].issuer_fingerprint
    signer_gen = next((r.generation for r in roots if r.fingerprint == first_root), 1)
    changed = state is None or plan.stage_changed or plan.roots_changed
    return CAState(mode=cfg.mode, root_generation=cfg.root_generation, stage="none",
                   stage_applied_at=now if changed else state.stage_applied_at, roots=roots,
                   signer_generation=signer_gen, intermediates=inter)


# ---------------------------------------------------------------------------------------------
# distribution


@dataclass(frozen=True)
class ClusterCAMaterial:
    """One cluster's CA material. Values are PEM strings or :class:`~mesh_components.core.slots.Slot` placeholders.

    ``trust_bundle_pem``: every trusted root (one, or two during a rotation). ``ca_cert_pem``: the
    cluster's intermediate. ``ca_key_pem``: its key (secret). ``cert_chain_pem``: intermediate +
    root, as Istio's ``cert-chain.pem`` expects.
    """

    trust_bundle_pem: Any
    ca_cert_pem: Any
    ca_key_pem: Any
    cert_chain_pem: Any


def slot_material(cluster: str) -> ClusterCAMaterial:
    """Placeholders for :func:`ca_objects`/:func:`ca_helm_values` in offline renders: source ``ca``,
    key ``trust_bundle_pem`` (mesh-wide, an output of the resource) and, per cluster, ``cert_pem``,
    ``key_pem`` (secret) and ``chain_pem``: the keys of the resource's ``intermediates[cluster]`` output."""
    return ClusterCAMaterial(
        trust_bundle_pem=Slot("ca", "trust_bundle_pem"),
        ca_cert_pem=Slot("ca", "cert_pem", cluster),
        ca_key_pem=Slot("ca", "key_pem", cluster, secret=True),
        cert_chain_pem=Slot("ca", "chain_pem", cluster),
    )


ISTIO_NAMESPACE = "istio-system"
LINKERD_NAMESPACE = "linkerd"
OSM_NAMESPACE = "osm-system"
OSM_CA_SECRET = "osm-ca-bundle"


def _meta(name: str, namespace: str, labels: Mapping[str, str]) -> dict:
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


def ca_objects(mesh: str, material: ClusterCAMaterial, labels: Mapping[str, str]) -> list[dict]:
    """Kubernetes objects that hand ``material`` to ``mesh`` in one cluster (Secrets use ``stringData``).

    * istio: Secret ``cacerts`` in ``istio-system`` with ``ca-cert.pem``, ``ca-key.pem``,
      ``root-cert.pem`` (the trust bundle, which may hold several roots) and ``cert-chain.pem``
      (https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/).
    * linkerd: ConfigMap ``linkerd-identity-trust-roots`` (``ca-bundle.crt``) and Secret
      ``linkerd-identity-issuer`` of type ``kubernetes.io/tls`` (``tls.crt``, ``tls.key``,
      ``ca.crt``) in ``linkerd``, for ``identity.externalCA: true`` and
      ``identity.issuer.scheme: kubernetes.io/tls``. ``ca.crt`` holds the trust bundle
      (https://linkerd.io/2/tasks/automatically-rotating-control-plane-tls-credentials/).
    * osm: Secret ``osm-ca-bundle`` in ``osm-system`` with ``ca.crt`` (the intermediate first, the
      signer OSM uses, then its root, which OSM also hands to sidecars as trusted CAs) and
      ``private.key`` (OSM v1.2.4 ``castorage/k8s.GetCertFromKubernetes``).

    Raises :class:`CAError` for an unknown mesh.
    """
    if mesh == "istio":
        return [{
            "apiVersion": "v1", "kind": "Secret", "metadata": _meta("cacerts", ISTIO_NAMESPACE, labels),
            "type": "Opaque",
            "stringData": {
                "ca-cert.pem": material.ca_cert_pem,
                "ca-key.pem": material.ca_key_pem,
                "root-cert.pem": material.trust_bundle_pem,
                "cert-chain.pem": material.cert_chain_pem,
            },
        }]
    if mesh == "linkerd":
        return [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": _meta("linkerd-identity-trust-roots", LINKERD_NAMESPACE, labels),
             "data": {"ca-bundle.crt": material.trust_bundle_pem}},
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": _meta("linkerd-identity-issuer", LINKERD_NAMESPACE, labels),
             "type": "kubernetes.io/tls",
             "stringData": {"tls.crt": material.ca_cert_pem, "tls.key": material.ca_key_pem,
                            "ca.crt": material.trust_bundle_pem}},
        ]
    if mesh == "osm":
        return [{
            "apiVersion": "v1", "kind": "Secret", "metadata": _meta(OSM_CA_SECRET, OSM_NAMESPACE, labels),
            "type": "Opaque",
            "stringData": {"ca.crt": material.cert_chain_pem, "private.key": material.ca_key_pem},
        }]
    raise CAError([(FIELD_PATHS["mesh"], f"unknown mesh {mesh!r}; use one of {', '.join(MESHES)}")])


def ca_helm_values(mesh: str, material: ClusterCAMaterial, *, multi_root: bool) -> dict[str, dict]:
    """Helm values, keyed by chart name, that make ``mesh`` use the CA objects of :func:`ca_objects`.

    * istio: ``{"istiod": {"env": {"ISTIO_MULTIROOT_MESH": "true"}}}`` while two roots are trusted
      (``multi_root``), else ``{}``. istiod's multi-root trust flag
      (https://github.com/istio/istio/blob/master/pilot/pkg/features/security.go).
    * linkerd: ``identityTrustAnchorsPEM`` (the bundle), ``identity.externalCA: true`` and
      ``identity.issuer.scheme: kubernetes.io/tls`` for ``linkerd-control-plane``.
    * osm: ``osm.caBundleSecretName: osm-ca-bundle`` with the ``tresor`` provider for ``osm``.

    Every key exists in the upstream chart's values.yaml (../shared/charts). Raises :class:`CAError` for an unknown mesh.
    """
    if mesh == "istio":
        return {"istiod": {"env": {"ISTIO_MULTIROOT_MESH": "true"}}} if multi_root else {}
    if mesh == "linkerd":
        return {"linkerd-control-plane": {
            "identityTrustAnchorsPEM": material.trust_bundle_pem,
            "identity": {"externalCA": True, "issuer": {"scheme": "kubernetes.io/tls"}},
        }}
    if mesh == "osm":
        return {"osm": {"osm": {"caBundleSecretName": OSM_CA_SECRET, "certificateProvider": {"kind": "tresor"}}}}
    raise CAError([(FIELD_PATHS["mesh"], f"unknown mesh {mesh!r}; use one of {', '.join(MESHES)}")])
