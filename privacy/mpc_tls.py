"""TLS credentials: for the mpyc links between agencies' parties (one fresh certificate per
party and query) and for agencies' HTTPS endpoints (:func:`service_credentials`).

mpyc's ``--ssl`` mode makes every party present ``.config/party_<pid>.crt`` (its key in
``party_<pid>.key``), checks each peer's certificate against ``.config/mpyc_ca.crt`` and a
server's name against ``MPyC party <pid>``. An agency makes a fresh P-256 key and a
self-signed certificate for its party (:func:`party_credentials`, not a CA: it can sign
nothing else) and announces the certificate inside its SM2-signed acceptance of the query;
every agency then trusts exactly the certificates that the other participants signed
(:func:`write_config`), so a link is both encrypted and bound to a pinned agency.
mpyc builds its contexts with :func:`ssl.create_default_context`, which would also trust
the system's public CAs; a party process first calls :func:`pin_contexts_only`, so its
contexts trust nothing but the certificates mpyc then loads from ``.config`` (and skip
reading the system store, about a second per party on a busy machine).

Examples
--------
>>> key, cert = party_credentials(1)
>>> b"BEGIN CERTIFICATE" in cert and b"PRIVATE KEY" in key
True
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from privacy.errors import MPCError

MAX_CERT_BYTES = 4096


def party_name(pid: int) -> str:
    """The name mpyc checks a party's certificate against."""
    return f"MPyC party {pid}"


def self_signed(
    common_name: str, dns: list[str], ips: list[str] | None = None, hours: int = 24
) -> tuple[bytes, bytes]:
    """A fresh P-256 key (PKCS#8 PEM) and a self-signed, non-CA certificate (PEM) for
    ``common_name``, valid for the given DNS names and IP addresses."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips or []]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=hours))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def party_credentials(pid: int, hours: int = 24) -> tuple[bytes, bytes]:
    """A fresh key (PKCS#8 PEM) and self-signed certificate (PEM) for party ``pid``."""
    return self_signed(party_name(pid), [party_name(pid)], hours=hours)


def service_credentials(host: str, days: int = 365) -> tuple[bytes, bytes]:
    """A key and self-signed certificate for an agency's HTTPS endpoint at ``host`` (a name
    or an IP address); the regulator pins the certificate."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return self_signed(host, [], [host], hours=24 * days)
    except ValueError:
        return self_signed(host, [host], hours=24 * days)


def check_certificate(pem: bytes, pid: int) -> bytes:
    """``pem`` if it is one certificate named for party ``pid``; :class:`MPCError` otherwise."""
    if not isinstance(pem, bytes) or len(pem) > MAX_CERT_BYTES:
        raise MPCError(f"party {pid}'s TLS certificate is missing or too large")
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise MPCError(f"party {pid}'s TLS certificate is malformed: {exc}") from None
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [party_name(pid)]:
        raise MPCError(f"party {pid}'s TLS certificate names {names}, not {party_name(pid)!r}")
    return pem


def write_config(workdir: Path, pid: int, key_pem: bytes, certs: Sequence[bytes]) -> None:
    """mpyc's ``.config`` for party ``pid``: its key and certificate, and every party's
    certificate as the trusted set."""
    cfg = workdir / ".config"
    cfg.mkdir(mode=0o700, exist_ok=True)
    key_path = cfg / f"party_{pid}.key"
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    (cfg / f"party_{pid}.crt").write_bytes(certs[pid])
    (cfg / "mpyc_ca.crt").write_bytes(b"".join(certs))


def pinned_context(
    purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
) -> ssl.SSLContext:
    """Like :func:`ssl.create_default_context` but without the system's CAs, TLS 1.3 only.

    ``SERVER_AUTH`` (a client's context) checks the server's name; both sides require the
    peer's certificate. Only ``cafile``/``capath``/``cadata`` and whatever the caller loads
    later are trusted.
    """
    if purpose == ssl.Purpose.SERVER_AUTH:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if cafile or capath or cadata:
        ctx.load_verify_locations(cafile, capath, cadata)
    return ctx


def pin_contexts_only() -> None:
    """Make :func:`ssl.create_default_context` in this process :func:`pinned_context`.

    For a party process only (mpyc creates its contexts that way and nothing else in it
    opens TLS connections).
    """
    ssl.create_default_context = pinned_context  # type: ignore[assignment]
