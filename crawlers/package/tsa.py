"""RFC 3161 timestamps over the manifest's SHA-256, from a configured TSA.

The chain receipt is the default proof of time; a TSA token is an optional second one
that courts also know. Requests are made with ``rfc3161-client``; the token is verified
offline against the manifest bytes and, when the verifier pins them, the TSA's
certificates.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from crawlers.errors import CrawlError

MAX_RESPONSE = 1 << 20

#: Imprint hashes accepted in tokens (OID -> hash); requests use SHA-256.
_IMPRINT_HASHES = {
    "2.16.840.1.101.3.4.2.1": hashlib.sha256,
    "2.16.840.1.101.3.4.2.2": hashlib.sha384,
    "2.16.840.1.101.3.4.2.3": hashlib.sha512,
}


class TimestampError(CrawlError):
    """A time-stamp could not be obtained, or a token does not verify."""


def request_timestamp(url: str, data: bytes, *, timeout_s: float = 30.0) -> bytes:
    """Ask the TSA at ``url`` for a time-stamp of ``data`` (SHA-256 imprint, with nonce and the
    TSA's certificate); returns the DER time-stamp response after checking it matches."""
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder, decode_timestamp_response

    req = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    try:
        resp = httpx.post(
            url,
            content=req.as_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise TimestampError(f"the TSA at {url} did not answer: {exc}") from None
    if resp.status_code != 200 or len(resp.content) > MAX_RESPONSE:
        raise TimestampError(f"the TSA at {url} answered {resp.status_code} ({len(resp.content)} bytes)")
    try:
        tsr = decode_timestamp_response(resp.content)
    except Exception as exc:  # the parser raises its own types for bad DER
        raise TimestampError(f"the TSA's answer is not a time-stamp response: {exc}") from None
    if tsr.tst_info.nonce != req.nonce:
        raise TimestampError("the TSA's answer carries another nonce")
    verify_timestamp(resp.content, data, None)
    return bytes(resp.content)


def verify_timestamp(token: bytes, data: bytes, roots: list[bytes] | None) -> dict[str, Any]:
    """Check that ``token`` (a DER time-stamp response) stamps the SHA-256 of ``data``.

    With ``roots`` (PEM or DER certificates), the token's signature must chain to one of
    them; without, only the imprint and the token's structure are checked.

    Returns
    -------
    dict
        ``{"time": ISO 8601, "tsa": name or None, "serial": int}``.
    """
    from rfc3161_client import decode_timestamp_response

    try:
        tsr = decode_timestamp_response(token)
    except Exception as exc:  # the parser raises its own types for bad DER
        raise TimestampError(f"not a time-stamp response: {exc}") from None
    info = tsr.tst_info
    imprint = info.message_imprint
    stamped = bytes(imprint.message)
    expected = _IMPRINT_HASHES.get(imprint.hash_algorithm.dotted_string)
    if expected is None:
        raise TimestampError(f"the token uses an unsupported hash ({imprint.hash_algorithm.dotted_string})")
    if stamped != expected(data).digest():
        raise TimestampError("the token stamps another document than this manifest")
    if roots:
        from cryptography import x509
        from rfc3161_client import VerificationError, VerifierBuilder

        builder = VerifierBuilder()
        for raw in roots:
            cert = (
                x509.load_pem_x509_certificate(raw)
                if raw.lstrip().startswith(b"-----")
                else x509.load_der_x509_certificate(raw)
            )
            builder = builder.add_root_certificate(cert)
        try:
            builder.build().verify_message(tsr, data)
        except (VerificationError, ValueError) as exc:
            detail = str(exc)[:300]
            raise TimestampError(
                f"the token's signature does not verify against the pinned TSA: {detail}"
            ) from None
    name: Any = getattr(info.name, "value", None)
    tsa = name.rfc4514_string() if name is not None and hasattr(name, "rfc4514_string") else None
    return {"time": info.gen_time.isoformat(), "tsa": tsa, "serial": info.serial_number}
