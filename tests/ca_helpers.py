"""Test helpers for the CA tests: a travelling clock, `openssl` wrappers, a loopback mTLS handshake
and a local fake of Vault's PKI HTTP API (the documented request/response shapes)."""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from mesh_components.core import ca

UTC = dt.timezone.utc


class FixedClock:
    """A picklable clock: ``clock()`` returns ``t``; ``advance(days=...)`` moves it."""

    def __init__(self, t: dt.datetime | None = None):
        self.t = t or dt.datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, days: float = 0, hours: float = 0) -> dt.datetime:
        self.t = self.t + dt.timedelta(days=days, hours=hours)
        return self.t


CLOCK_ENV = "MESH_CA_TEST_NOW"
"""Test-only: the variable :class:`EnvClock` reads. Nothing in ``mesh_components`` reads it."""


class EnvClock:
    """A clock for a provider that runs in another process (``python -m pulumi.dynamic``).

    ``clock()`` returns :data:`CLOCK_ENV` (ISO UTC, ``2031-03-01T00:00:00Z``) read at every call, or
    the real UTC clock when unset. dill pickles it by reference (``ca_helpers.EnvClock``), so a
    provider serialized with it unpickles in the SDK's host when ``tests/`` is on its
    ``PYTHONPATH``; the test starts each host with the time it wants.
    """

    def __call__(self) -> dt.datetime:
        v = os.environ.get(CLOCK_ENV)
        return ca.parse_iso(v) if v else dt.datetime.now(UTC)


def _write(d: Path, name: str, text: str) -> str:
    p = d / name
    p.write_text(text)
    return str(p)


def openssl_verify(trusted_pem: str, cert_pem: str, untrusted_pem: str | None = None,
                   at: dt.datetime | None = None, purpose: str | None = None) -> tuple[bool, str]:
    """Run ``openssl verify -x509_strict`` on the first certificate of ``cert_pem``; returns (ok, output)."""
    with tempfile.TemporaryDirectory() as td:
        d = Path(td)
        args = ["openssl", "verify", "-x509_strict", "-CAfile", _write(d, "trusted.pem", trusted_pem)]
        if untrusted_pem:
            args += ["-untrusted", _write(d, "untrusted.pem", untrusted_pem)]
        if at is not None:
            args += ["-attime", str(int(at.timestamp()))]
        if purpose:
            args += ["-purpose", purpose]
        leaf = ca.cert_to_pem(ca.load_certificate(cert_pem))
        args.append(_write(d, "cert.pem", leaf))
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        out = (r.stdout + r.stderr).strip()
        return r.returncode == 0 and out.endswith(": OK"), out


def openssl_text(cert_pem: str) -> str:
    """``openssl x509 -noout -text`` of one certificate."""
    r = subprocess.run(["openssl", "x509", "-noout", "-text"], input=cert_pem, capture_output=True, text=True,
                       timeout=30, check=True)
    return r.stdout


def openssl_root(tmp: Path, *, algorithm: str = "ec", pathlen: int | None = 1, days: int = 3650,
                 cn: str = "BYO Root") -> tuple[str, str]:
    """A root CA made by the openssl CLI itself: ``(cert_pem, key_pem)``."""
    key = tmp / f"{cn.replace(' ', '_')}.key"
    crt = tmp / f"{cn.replace(' ', '_')}.crt"
    if algorithm == "ec":
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
                       check=True, capture_output=True)
    else:
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", str(key)], check=True, capture_output=True)
    bc = "critical,CA:TRUE" + (f",pathlen:{pathlen}" if pathlen is not None else "")
    subprocess.run(["openssl", "req", "-x509", "-new", "-key", str(key), "-out", str(crt), "-days", str(days),
                    "-subj", f"/O=Example Corp/CN={cn}", "-addext", f"basicConstraints={bc}",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-addext", "subjectKeyIdentifier=hash"], check=True, capture_output=True)
    return crt.read_text(), key.read_text()


def mtls_handshake(server: ca.IssuedCert, client: ca.IssuedCert, *, server_trust: str, client_trust: str,
                   timeout: float = 10.0) -> dict:
    """A real mutual-TLS handshake over 127.0.0.1 with Python's ``ssl``.

    Each side presents ``chain_pem`` (leaf + intermediate(s)) and trusts only its ``*_trust`` PEMs.
    Returns ``{"ok", "server_saw", "client_saw", "server_error", "client_error"}``. The ``*_saw``
    entries are the peer's URI SANs.
    """
    res: dict = {"ok": False, "server_saw": None, "client_saw": None, "server_error": None, "client_error": None}
    with tempfile.TemporaryDirectory() as td:
        d = Path(td)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.minimum_version = ssl.TLSVersion.TLSv1_2
        sctx.load_cert_chain(_write(d, "s.pem", server.chain_pem), _write(d, "s.key", server.key_pem))
        sctx.verify_mode = ssl.CERT_REQUIRED
        sctx.load_verify_locations(cadata=server_trust)
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.minimum_version = ssl.TLSVersion.TLSv1_2
        cctx.check_hostname = False  # SPIFFE identities are URI SANs; checked below instead
        cctx.verify_mode = ssl.CERT_REQUIRED
        cctx.load_verify_locations(cadata=client_trust)
        cctx.load_cert_chain(_write(d, "c.pem", client.chain_pem), _write(d, "c.key", client.key_pem))

        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(timeout)
        port = lsock.getsockname()[1]
        server_ok = threading.Event()

        def serve():
            try:
                conn, _ = lsock.accept()
                conn.settimeout(timeout)
                with sctx.wrap_socket(conn, server_side=True) as ss:
                    res["server_saw"] = [v for k, v in ss.getpeercert().get("subjectAltName", ()) if k == "URI"]
                    ss.sendall(b"ok")
                    server_ok.set()
            except (ssl.SSLError, OSError) as e:
                res["server_error"] = f"{type(e).__name__}: {e}"

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
                with cctx.wrap_socket(raw) as cs:
                    res["client_saw"] = [v for k, v in cs.getpeercert().get("subjectAltName", ()) if k == "URI"]
                    data = cs.recv(2)
                    res["ok"] = data == b"ok"
        except (ssl.SSLError, OSError) as e:
            res["client_error"] = f"{type(e).__name__}: {e}"
        t.join(timeout)
        lsock.close()
        res["ok"] = res["ok"] and server_ok.is_set()
    return res


# ---------------------------------------------------------------------------------------------
# fake Vault PKI


class FakeVault:
    """Vault's PKI engine on 127.0.0.1 (ephemeral port, own thread), speaking the documented shapes.

    ``POST /v1/<mount>/root/sign-intermediate`` (``X-Vault-Token`` required, else 403
    ``{"errors": ["permission denied"]}``; missing ``csr``/``common_name`` -> 400), ``GET
    /v1/<mount>/ca_chain`` (PEM, unauthenticated). ``requests`` records every call.
    ``rotate_root()`` makes a new default issuer. ``bundle_issuer`` concatenates the issuing CA to
    ``certificate`` as ``pem_bundle`` does for non-Vault-derived roots. ``now`` (default: the real
    clock) dates what it issues, so a test that moves the provider's clock can move Vault's too.
    """

    def __init__(self, token: str = "hvs.test-token-123", mount: str = "pki", now=None):
        self.token = token
        self.mount = mount
        self.now = now or (lambda: dt.datetime.now(UTC))
        """The fake's clock (a zero-argument callable): its roots and signatures start at ``now()``."""
        self.requests: list[dict] = []
        self.bundle_issuer = False
        self.generation = 0
        self.rotate_root()

    def rotate_root(self) -> str:
        self.generation += 1
        cfg = ca.CAConfig(trust_domain="vault.test", mesh="istio", clusters=("x",), mesh_name="vault")
        self.root_cert_pem, self.root_key_pem = ca.issue_root(cfg, self.generation, now=self.now())
        return self.root_cert_pem

    def __enter__(self) -> "FakeVault":
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output quiet
                pass

            def _send(self, status: int, body: dict | str, ctype: str = "application/json"):
                raw = (json.dumps(body) if isinstance(body, dict) else body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                vault.requests.append({"method": "GET", "path": self.path, "token": self.headers.get("X-Vault-Token")})
                if self.path == f"/v1/{vault.mount}/ca_chain":
                    return self._send(200, vault.root_cert_pem, "application/pem-certificate-chain")
                return self._send(404, {"errors": []})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                vault.requests.append({"method": "POST", "path": self.path, "token": self.headers.get("X-Vault-Token"),
                                       "content_type": self.headers.get("Content-Type"), "body": body})
                if self.path != f"/v1/{vault.mount}/root/sign-intermediate":
                    return self._send(404, {"errors": ["1 error occurred:\n\t* unsupported path\n\n"]})
                if self.headers.get("X-Vault-Token") != vault.token:
                    return self._send(403, {"errors": ["permission denied"]})
                if not isinstance(body, dict) or not body.get("csr"):
                    return self._send(400, {"errors": ["\"csr\" is empty"]})
                if not body.get("common_name"):
                    return self._send(400, {"errors": ["the common_name field is required"]})
                try:
                    csr = x509.load_pem_x509_csr(body["csr"].encode())
                except ValueError:
                    return self._send(400, {"errors": ["certificate request could not be parsed"]})
                return self._send(200, vault.sign(csr, body))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def sign(self, csr: x509.CertificateSigningRequest, body: dict) -> dict:
        root = ca.load_certificate(self.root_cert_pem)
        root_key = ca.load_private_key(self.root_key_pem)
        now = self.now()
        ttl = str(body.get("ttl") or "720h")
        hours = int(ttl[:-1]) if ttl.endswith("h") else int(ttl) // 3600
        end = min(now + dt.timedelta(hours=hours), root.not_valid_after_utc)  # Vault truncates to the issuer
        mpl = int(body.get("max_path_length", -1))
        subject = (csr.subject if body.get("use_csr_values")
                   else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, body["common_name"])]))
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(root.subject)
             .public_key(csr.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(seconds=30)).not_valid_after(end)
             .add_extension(x509.BasicConstraints(ca=True, path_length=None if mpl < 0 else mpl), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                            critical=False))
        if body.get("use_csr_values"):
            try:
                san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                b = b.add_extension(san.value, critical=False)
            except x509.ExtensionNotFound:
                pass
        cert = b.sign(root_key, hashes.SHA256())
        pem = ca.cert_to_pem(cert)
        certificate = pem + (self.root_cert_pem if self.bundle_issuer and body.get("format") == "pem_bundle" else "")
        serial = ":".join(f"{cert.serial_number:040x}"[i:i + 2] for i in range(0, 40, 2))
        return {"lease_id": "", "renewable": False, "lease_duration": 0,
                "data": {"certificate": certificate, "issuing_ca": self.root_cert_pem,
                         "ca_chain": [self.root_cert_pem], "serial_number": serial,
                         "expiration": int(end.timestamp())},
                "warnings": None, "auth": None}


def free_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (for 'unreachable' tests)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tools_dir() -> Path:
    return Path(os.environ.get("MESH_SHARED_TOOLS", "/work/shared/tools"))
