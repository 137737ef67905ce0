"""Protocol messages of a privacy query, and the signed envelope every party sends them in.

A message is a map with a ``type`` and exactly the fields of that type
(:data:`MESSAGE_FIELDS`), encoded canonically (:mod:`chain.codec`, big integers as bytes).
Messages between parties travel **signed**: :func:`sign` wraps the encoded message with
the sender's certificate and an SM2 signature over ``RONGXIN-PRIVACY-1\\n || body``;
:func:`open_signed` checks the envelope's shape and the signature and returns the
message with the certificate that signed it. Whether that certificate is acceptable is
the receiver's decision (an agency checks a requester against the consortium root, see
:class:`privacy.identity.Trust`; agencies are pinned, see
:class:`privacy.identity.PeerDirectory`).

:data:`MAX_MESSAGE` (64 MiB) bounds a message, checked before decoding.

Examples
--------
>>> from chain.crypto import PrivateKey
>>> from privacy.identity import Identity
>>> who = Identity.issue(PrivateKey.generate(), "agency-a", ["media_center"])
>>> raw = sign(who, {"type": "refusal", "query_id": "q", "agency": "a", "reason": "no"})
>>> signed = open_signed(raw, "refusal")
>>> signed.msg["reason"], signed.cert == who.cert
('no', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.crypto import CryptoError
from chain.errors import ChainError
from chain.types import Certificate
from privacy.errors import CiphertextError, IdentityError
from privacy.identity import Identity

MAX_MESSAGE = 64 * 1024 * 1024
"""Largest encoded protocol message or envelope accepted."""
MAX_QUERY_ID = 128
"""Longest query id (the requester's nonce; 32 hex digits in practice)."""
SERVICE_PATH = "/privacy/v1/messages"
"""Where an agency's service takes protocol messages (:mod:`privacy.service`)."""
SCHEME = b"RONGXIN-PRIVACY-1\n"
"""Domain separation of the signatures of privacy messages."""

MESSAGE_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(fields)
    for name, fields in {
        # regulator → agencies: one query, signed by the requester
        "query": {
            "type",
            "query_id",
            "time_ms",
            "role",
            "spec",
            "agencies",
            "path",
            "n",
            "packed",
            "value_bits",
            "n_values",
        },
        # agency → aggregator: masked ciphertexts under the regulator's key
        # (and its threshold shares of its own seeds, sealed to each other participant)
        "contribution": {"type", "query_id", "agency", "key_fp", "ciphertexts", "decision", "shares"},
        "refusal": {"type", "query_id", "agency", "reason"},
        # agency → regulator: acceptance of an MPC query, where its party will listen, the
        # TLS certificate its party will present
        "decision": {"type", "query_id", "agency", "decision", "party", "min_group", "tls_cert"},
        # regulator → agencies: run your party of this plan (JSON) with these parties (every
        # participant's signed decision, in party order)
        "mpc-run": {"type", "query_id", "plan", "decisions", "timeout_s"},
        # agency → regulator: its party's output shares (JSON)
        "mpc-output": {"type", "query_id", "agency", "output"},
        # aggregator → survivors: who contributed and who dropped out
        "view": {"type", "query_id", "survivors", "dropped"},
        # survivor → aggregator: its signature on the one view it accepts for the query
        "endorsement": {"type", "query_id", "agency", "survivors", "dropped"},
        # aggregator → survivors: a majority's endorsements of the same view
        "reveal": {"type", "query_id", "endorsements"},
        # survivor → aggregator: its self-mask seed and its seeds shared with dropped agencies
        "unmask": {"type", "query_id", "agency", "self_seed", "pair_seeds"},
        # aggregator → revealed survivors: contributors that went silent since, and the
        # shares each of them sealed for this survivor
        "recover": {"type", "query_id", "late", "shares"},
        # survivor → aggregator: its shares of each late agency's self seed and of its
        # seeds shared with the view's dropped agencies
        "shares": {"type", "query_id", "agency", "x", "shares"},
        # aggregator → regulator: the unmasked, re-randomized sums
        "aggregate": {"type", "query_id", "key_fp", "agencies", "ciphertexts", "decisions"},
    }.items()
}


def int_to_bytes(x: int) -> bytes:
    """Unsigned big-endian bytes."""
    return x.to_bytes(max(1, (x.bit_length() + 7) // 8), "big")


def encode_message(msg: dict[str, Any]) -> bytes:
    """Canonical bytes of a protocol message (fields checked against its type)."""
    expected = MESSAGE_FIELDS.get(str(msg.get("type")))
    if expected is None or set(msg) != expected:
        raise CiphertextError(f"malformed protocol message of type {msg.get('type')!r}")
    return codec.encode(msg)


def _decode(data: Any, what: str) -> Any:
    if not isinstance(data, (bytes, bytearray)):
        raise CiphertextError(f"a {what} is bytes, not {type(data).__name__}")
    if len(data) > MAX_MESSAGE:
        raise CiphertextError(f"{what} of {len(data)} bytes exceeds the limit of {MAX_MESSAGE}")
    try:
        return codec.decode(bytes(data), max_size=MAX_MESSAGE)
    except codec.CodecError as exc:
        raise CiphertextError(f"malformed {what}: {exc}") from None


def decode_message(data: bytes, *types: str) -> dict[str, Any]:
    """Parse a message and check it is one of ``types`` with exactly its fields."""
    msg = _decode(data, "protocol message")
    if (
        not isinstance(msg, dict)
        or msg.get("type") not in types
        or msg["type"] not in MESSAGE_FIELDS
        or set(msg) != MESSAGE_FIELDS[str(msg["type"])]
    ):
        raise CiphertextError(f"unexpected protocol message (wanted {types})")
    qid = msg.get("query_id")
    if not isinstance(qid, str) or not 0 < len(qid) <= MAX_QUERY_ID:
        raise CiphertextError(f"a query id is a string of 1..{MAX_QUERY_ID} characters")
    return dict(msg)


@dataclass(frozen=True)
class Signed:
    """A verified envelope: the message, the certificate that signed it, the raw bytes."""

    msg: dict[str, Any]
    cert: Certificate
    raw: bytes


def sign(identity: Identity, msg: dict[str, Any]) -> bytes:
    """Encode ``msg`` and wrap it with the signer's certificate and SM2 signature."""
    body = encode_message(msg)
    signature = identity.key.sign(SCHEME + body)
    return codec.encode({"body": body, "cert": identity.cert.to_dict(), "signature": signature})


def open_signed(data: bytes, *types: str) -> Signed:
    """Check an envelope's shape and signature; the message must be one of ``types``.

    Raises
    ------
    CiphertextError
        Malformed, truncated or oversized envelope or message.
    IdentityError
        A malformed certificate, or a signature that does not verify with it (forged or
        altered in transit).
    """
    env = _decode(data, "signed message")
    if not isinstance(env, dict) or set(env) != {"body", "cert", "signature"}:
        raise CiphertextError("a signed message is a map of body, cert and signature")
    body, cert_doc, signature = env["body"], env["cert"], env["signature"]
    if not isinstance(body, bytes) or not isinstance(signature, bytes):
        raise CiphertextError("a signed message's body and signature are bytes")
    try:
        cert = Certificate.from_dict(cert_doc)
    except ChainError as exc:
        raise IdentityError(f"the signer's certificate is malformed: {exc}") from None
    try:
        cert.key().verify(SCHEME + body, signature)
    except (CryptoError, ChainError, ValueError):
        raise IdentityError(
            f"the signature of a message from {cert.subject!r} does not verify: forged or altered"
        ) from None
    return Signed(decode_message(body, *types), cert, bytes(data))
