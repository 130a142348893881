"""HashiCorp Vault PKI client: the mesh CA's optional external signer, so the root key never enters Pulumi state.

Two endpoints of the PKI secrets engine (https://developer.hashicorp.com/vault/api-docs/secret/pki):

* ``POST {address}/v1/{mount}/root/sign-intermediate`` with header ``X-Vault-Token``. The body is
  ``{"csr", "common_name", "ttl", "format": "pem"|"pem_bundle", "max_path_length", "use_csr_values", ...}``.
  The response is ``{"data": {"certificate", "issuing_ca", "ca_chain", "serial_number", "expiration"}}``.
  With ``pem_bundle`` the ``certificate`` field may also carry the issuing CA.
* ``GET {address}/v1/{mount}/ca_chain`` (unauthenticated): the default issuer's chain as PEM text
  ("Read default issuer certificate chain").

Errors come back as ``{"errors": ["message", ...]}`` for any status >= 400
(https://developer.hashicorp.com/vault/api-docs#error-response). A 403 means a bad or
under-privileged token. This module raises :class:`VaultError` (a :class:`~mesh_components.core.ca.CAError`)
with a sentence that names the endpoint and the fix, and never the token.

No session or client is kept between calls: a dynamic provider must not capture one (pulumi/pulumi#9653).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests

from .ca import CAError, FIELD_PATHS, SignedIntermediate

DEFAULT_TIMEOUT = 15.0
"""Seconds for connect and read."""


class VaultError(CAError):
    """Vault refused or could not be reached. ``status`` is the HTTP status (``None`` when unreachable),
    ``errors`` the strings Vault returned."""

    def __init__(self, message: str, *, status: int | None = None, errors: list[str] | None = None):
        self.status = status
        self.errors = list(errors or [])
        super().__init__([(FIELD_PATHS["vault_address"], message)])


@dataclass(frozen=True)
class VaultPKIClient:
    """A Vault PKI mount reached over HTTP(S) with ``requests``.

    ``address``: ``https://vault.example:8200`` (no ``/v1``). ``token``: the Vault token (keep it a
    Pulumi secret; it is never put in messages or ``repr``). ``mount``: the PKI mount path (default
    ``pki``). ``namespace``: optional Vault Enterprise namespace (``X-Vault-Namespace``).
    ``verify``: TLS verification, ``True`` or a CA bundle path.
    """

    address: str
    token: str
    mount: str = "pki"
    namespace: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        return f"VaultPKIClient(address={self.address!r}, mount={self.mount!r})"

    def _url(self, path: str) -> str:
        return f"{self.address.rstrip('/')}/v1/{self.mount.strip('/')}/{path}"

    def _headers(self, auth: bool) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if auth:
            h["X-Vault-Token"] = self.token
        if self.namespace:
            h["X-Vault-Namespace"] = self.namespace
        return h

    def _request(self, method: str, path: str, *, body: dict | None = None, auth: bool = True) -> requests.Response:
        url = self._url(path)
        try:
            with requests.Session() as s:  # built per call, never kept
                resp = s.request(method, url, headers=self._headers(auth), json=body,
                                 timeout=self.timeout, verify=self.verify)
        except requests.RequestException as e:
            raise VaultError(f"cannot reach Vault at {self.address} ({type(e).__name__}); check the address "
                             "and that Vault is running and reachable from where `pulumi up` runs") from None
        if resp.status_code >= 400:
            errors = _errors(resp)
            detail = "; ".join(errors) if errors else resp.reason or "no detail"
            hint = {
                403: "the token is invalid, expired or lacks the policy for this path; pass a valid token "
                     f"with 'update' on {self.mount}/root/sign-intermediate as vault_token",
                404: f"no such path; check that a PKI engine is mounted at '{self.mount}' (vault secrets list)",
                400: "Vault rejected the request; check the mount's default issuer and max TTL",
                503: "Vault is sealed or in maintenance; unseal it and retry",
            }.get(resp.status_code, "see the Vault server log")
            raise VaultError(f"Vault {method} /v1/{self.mount}/{path} failed with HTTP {resp.status_code}: "
                             f"{detail}; {hint}", status=resp.status_code, errors=errors)
        return resp

    def sign_intermediate(self, csr_pem: str, *, common_name: str, ttl_hours: int, max_path_length: int = 0,
                          format: str = "pem_bundle", use_csr_values: bool = True,
                          extra: dict[str, Any] | None = None) -> SignedIntermediate:
        """Have the mount's default issuer sign ``csr_pem`` as an intermediate CA.

        Sends ``csr``, ``common_name``, ``ttl`` (``"<hours>h"``), ``format`` (``pem`` or
        ``pem_bundle``), ``max_path_length`` (0: the intermediate signs only leaves) and
        ``use_csr_values`` (keep the CSR's subject, SANs and extensions), plus ``extra`` fields.
        Returns the first certificate of ``certificate`` as ``SignedIntermediate.certificate``. Any
        issuers bundled with it, plus ``ca_chain`` (or ``issuing_ca`` when Vault omits the chain),
        become ``ca_chain``. Raises :class:`VaultError` for HTTP errors or a malformed answer.
        """
        if format not in ("pem", "pem_bundle"):
            raise VaultError(f"format {format!r} is not supported here; use 'pem' or 'pem_bundle'")
        body: dict[str, Any] = {"csr": csr_pem, "common_name": common_name, "ttl": f"{int(ttl_hours)}h",
                                "format": format, "max_path_length": int(max_path_length),
                                "use_csr_values": bool(use_csr_values)}
        body.update(extra or {})
        resp = self._request("POST", "root/sign-intermediate", body=body)
        try:
            data = resp.json()["data"]
            certificate = data["certificate"]
        except (ValueError, KeyError, TypeError):
            raise VaultError("Vault's sign-intermediate answer has no data.certificate; check that "
                             f"'{self.mount}' is a PKI mount", status=resp.status_code) from None
        blocks = _pem_blocks(certificate)
        if not blocks:
            raise VaultError("Vault's sign-intermediate answer holds no PEM certificate (was format 'der' set?)")
        chain = list(blocks[1:]) + list(data.get("ca_chain") or [])
        issuing = data.get("issuing_ca") or ""
        if not chain and issuing:
            chain = [issuing]
        return SignedIntermediate(certificate=blocks[0], issuing_ca=issuing, ca_chain=tuple(chain),
                                  serial_number=str(data.get("serial_number") or ""),
                                  expiration=_int_or_none(data.get("expiration")))

    def read_ca_chain(self) -> list[str]:
        """The default issuer's chain (issuer first, root last) from ``GET /v1/{mount}/ca_chain``.

        Raises :class:`VaultError` when the mount has no CA.
        """
        resp = self._request("GET", "ca_chain", auth=False)
        blocks = _pem_blocks(resp.text)
        if not blocks:
            raise VaultError(f"Vault mount '{self.mount}' returned no CA chain; configure a root or an "
                             "intermediate issuer on it first", status=resp.status_code)
        return blocks


def _errors(resp: requests.Response) -> list[str]:
    try:
        errs = resp.json().get("errors")
    except (ValueError, AttributeError, json.JSONDecodeError):
        return []
    return [str(e) for e in errs] if isinstance(errs, list) else []


def _pem_blocks(text: str) -> list[str]:
    out, cur = [], []
    for line in (text or "").splitlines():
        if line.startswith("-----BEGIN CERTIFICATE-----"):
            cur = [line]
        elif line.startswith("-----END CERTIFICATE-----") and cur:
            cur.append(line)
            out.append("\n".join(cur) + "\n")
            cur = []
        elif cur:
            cur.append(line)
    return out


def _int_or_none(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None
