"""Handshake messages and key schedule of the peer protocol (pure: no I/O).

The byte layouts are specified in ``docs/protocol.md``; this module is their reference
implementation, and the test vectors in ``tests/chain/net/vectors.json`` are computed
with it.

* :class:`Hello` — the first message each side sends, in clear: protocol magic, version,
  cipher suite, role, chain id, genesis hash and the ephemeral SM2 point.
* :func:`transcript_hash` — SM3 over both hellos in initiator-then-responder order.
* :func:`traffic_keys` — HKDF-SM3 of the ECDH secret, salted with the transcript hash:
  one SM4 key per direction.
* :func:`auth_message`, :func:`encode_auth`, :func:`decode_auth` — the signed statement
  and the encrypted record that carries the certificate and the signature.
* :func:`encode_finish`, :func:`decode_finish` — the admission verdict.

Examples
--------
>>> h = Hello(INITIATOR, "rongxin-demo", bytes(32), bytes([4]) + bytes(64))
>>> Hello.from_bytes(h.to_bytes()) == h
True
>>> len(h.to_bytes())
117
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chain import codec
from chain.crypto.sm3 import sm3
from chain.errors import HandshakeError, ValidationError
from chain.net.records import OVERHEAD
from chain.types import Certificate

MAGIC: Final = b"RXP2"
VERSION: Final = 1
SUITE_SM: Final = 1
"""SM2-curve ECDH, HKDF-SM3, SM4-GCM records, SM2/SM3 signatures."""
INITIATOR: Final = 1
RESPONDER: Final = 2
HELLO_HEADER_SIZE: Final = 8
GENESIS_HASH_SIZE: Final = 32
EPHEMERAL_SIZE: Final = 65
MAX_CHAIN_ID_BYTES: Final = 255
MAX_HELLO_SIZE: Final = HELLO_HEADER_SIZE + MAX_CHAIN_ID_BYTES + GENESIS_HASH_SIZE + EPHEMERAL_SIZE
KEY_SIZE: Final = 16
SIGNATURE_SIZE: Final = 64
MAX_CERT_BYTES: Final = 4096
MAX_REASON_BYTES: Final = 256
AUTH_MAX_RECORD: Final = OVERHEAD + 2 + MAX_CERT_BYTES + SIGNATURE_SIZE
FINISH_MAX_RECORD: Final = OVERHEAD + 1 + MAX_REASON_BYTES
ACCEPTED: Final = 0
REFUSED: Final = 1

TRANSCRIPT_LABEL: Final = b"rongxin-p2p/1 transcript"
KEYS_LABEL: Final = b"rongxin-p2p/1 traffic keys"
AUTH_LABELS: Final = {
    INITIATOR: b"rongxin-p2p/1 initiator auth",
    RESPONDER: b"rongxin-p2p/1 responder auth",
}
ROLE_NAMES: Final = {INITIATOR: "initiator", RESPONDER: "responder"}


def other_role(role: int) -> int:
    """The role of the peer of a side playing ``role``."""
    return RESPONDER if role == INITIATOR else INITIATOR


@dataclass(frozen=True)
class Hello:
    """The clear-text first message of each side.

    Layout: ``"RXP2" | version u8 | suite u8 | role u8 | L u8 | chain_id (L bytes UTF-8)
    | genesis_hash (32) | ephemeral 04||X||Y (65)``.
    """

    role: int
    chain_id: str
    genesis_hash: bytes
    ephemeral: bytes

    def to_bytes(self) -> bytes:
        """Encode (see the class docstring); checks every field."""
        cid = self.chain_id.encode("utf-8")
        if not 1 <= len(cid) <= MAX_CHAIN_ID_BYTES:
            raise HandshakeError(f"a chain id is 1 to {MAX_CHAIN_ID_BYTES} bytes of UTF-8, got {len(cid)}")
        if len(self.genesis_hash) != GENESIS_HASH_SIZE:
            raise HandshakeError(f"a genesis hash is {GENESIS_HASH_SIZE} bytes, got {len(self.genesis_hash)}")
        if len(self.ephemeral) != EPHEMERAL_SIZE or self.role not in ROLE_NAMES:
            raise HandshakeError("a hello carries a 65-byte ephemeral point and role 1 or 2")
        head = MAGIC + bytes([VERSION, SUITE_SM, self.role, len(cid)])
        return head + cid + self.genesis_hash + self.ephemeral

    @staticmethod
    def rest_size(header: bytes) -> int:
        """Check the 8-byte header of a received hello; return how many bytes follow."""
        if header[:4] != MAGIC:
            raise HandshakeError(
                f"the peer does not speak the Rongxin peer protocol (it sent {header[:8].hex()!r} "
                f"where {MAGIC.hex()!r} was expected)"
            )
        version, suite, role, cid_len = header[4:8]
        if version != VERSION:
            raise HandshakeError(
                f"the peer speaks peer-protocol version {version}; this node speaks {VERSION}"
            )
        if suite != SUITE_SM:
            raise HandshakeError(f"the peer offers cipher suite {suite}; this node knows only {SUITE_SM}")
        if role not in ROLE_NAMES:
            raise HandshakeError(f"the peer's hello names role {role}; roles are 1 and 2")
        if cid_len == 0:
            raise HandshakeError("the peer's hello has an empty chain id")
        return cid_len + GENESIS_HASH_SIZE + EPHEMERAL_SIZE

    @classmethod
    def from_bytes(cls, data: bytes) -> Hello:
        """Decode a complete hello, refusing anything malformed."""
        if len(data) < HELLO_HEADER_SIZE or len(data) != HELLO_HEADER_SIZE + cls.rest_size(data[:8]):
            raise HandshakeError(f"a hello of {len(data)} bytes does not match its header")
        cid_end = HELLO_HEADER_SIZE + data[7]
        try:
            chain_id = data[HELLO_HEADER_SIZE:cid_end].decode("utf-8")
        except UnicodeDecodeError:
            raise HandshakeError("the peer's chain id is not UTF-8") from None
        genesis_hash = data[cid_end : cid_end + GENESIS_HASH_SIZE]
        return cls(data[6], chain_id, bytes(genesis_hash), bytes(data[cid_end + GENESIS_HASH_SIZE :]))

    def check_peer_hello(self, peer: Hello) -> None:
        """Refuse a peer hello that does not answer this one (our hello is ``self``)."""
        if peer.role == self.role:
            raise HandshakeError(
                f"both sides claim the {ROLE_NAMES[self.role]} role (a reflected or looped-back hello)"
            )
        if peer.chain_id != self.chain_id:
            raise HandshakeError(f"the peer is on chain {peer.chain_id!r}, this node on {self.chain_id!r}")
        if peer.genesis_hash != self.genesis_hash:
            raise HandshakeError(
                f"the peer's genesis hash {peer.genesis_hash.hex()[:16]}… differs from this node's "
                f"{self.genesis_hash.hex()[:16]}…: it belongs to another consortium or genesis"
            )
        if peer.ephemeral == self.ephemeral:
            raise HandshakeError("the peer echoed this node's ephemeral key")


def transcript_hash(hello_initiator: bytes, hello_responder: bytes) -> bytes:
    """``SM3("rongxin-p2p/1 transcript" || hello_I || hello_R)``.

    Examples
    --------
    >>> transcript_hash(b"i", b"r") == sm3(TRANSCRIPT_LABEL + b"ir")
    True
    """
    return sm3(TRANSCRIPT_LABEL + hello_initiator + hello_responder)


def traffic_keys(shared_secret: bytes, transcript: bytes) -> tuple[bytes, bytes]:
    """HKDF-SM3 (RFC 5869): ``(key initiator→responder, key responder→initiator)``.

    ``OKM = HKDF-SM3(IKM = shared_secret, salt = transcript, info = "rongxin-p2p/1 traffic
    keys", L = 32)``; the first 16 bytes key the initiator's records, the last 16 the
    responder's.

    Examples
    --------
    >>> i2r, r2i = traffic_keys(bytes(32), bytes(32))
    >>> len(i2r), i2r != r2i
    (16, True)
    """
    okm = HKDF(hashes.SM3(), 2 * KEY_SIZE, transcript, KEYS_LABEL).derive(shared_secret)
    return okm[:KEY_SIZE], okm[KEY_SIZE:]


def encode_certificate(cert: Certificate) -> bytes:
    """The certificate as sent in the handshake: canonical CBOR of ``cert.to_dict()``."""
    data = codec.encode(cert.to_dict())
    if len(data) > MAX_CERT_BYTES:
        raise HandshakeError(
            f"this node's certificate is {len(data)} bytes; at most {MAX_CERT_BYTES} are sent"
        )
    return data


def auth_message(role: int, transcript: bytes, cert_bytes: bytes) -> bytes:
    """What the side playing ``role`` signs: ``label(role) || transcript || certificate``.

    The labels differ by role, so the initiator's signature can never be replayed as the
    responder's (no reflection), and the transcript binds chain id, genesis hash and both
    ephemeral keys.

    Examples
    --------
    >>> auth_message(INITIATOR, b"T", b"C")
    b'rongxin-p2p/1 initiator authTC'
    """
    return AUTH_LABELS[role] + transcript + cert_bytes


def encode_auth(cert_bytes: bytes, signature: bytes) -> bytes:
    """Payload of the AUTH record: ``cert_len u16 | certificate | signature (64)``."""
    return len(cert_bytes).to_bytes(2, "big") + cert_bytes + signature


def decode_auth(payload: bytes) -> tuple[Certificate, bytes, bytes]:
    """Parse an AUTH payload into ``(certificate, its bytes, signature)``.

    Raises
    ------
    HandshakeError
        Wrong length, an oversized or non-canonical certificate.
    """
    if len(payload) < 2 + SIGNATURE_SIZE:
        raise HandshakeError(f"the peer's authentication message is {len(payload)} bytes, too short")
    cert_len = int.from_bytes(payload[:2], "big")
    if cert_len > MAX_CERT_BYTES:
        raise HandshakeError(f"the peer's certificate is {cert_len} bytes; at most {MAX_CERT_BYTES} accepted")
    if len(payload) != 2 + cert_len + SIGNATURE_SIZE:
        raise HandshakeError("the peer's authentication message length does not match its certificate length")
    cert_bytes = bytes(payload[2 : 2 + cert_len])
    try:
        cert = Certificate.from_dict(codec.decode(cert_bytes, max_size=MAX_CERT_BYTES))
    except (codec.CodecError, ValidationError) as exc:
        raise HandshakeError(f"the peer's certificate is malformed: {exc}") from None
    return cert, cert_bytes, bytes(payload[2 + cert_len :])


def encode_finish(refusal: str | None) -> bytes:
    """Payload of the FINISH record: ``00`` (accepted) or ``01 || reason`` (refused).

    Examples
    --------
    >>> encode_finish(None), encode_finish("revoked")
    (b'\\x00', b'\\x01revoked')
    """
    if refusal is None:
        return bytes([ACCEPTED])
    reason = refusal.encode("utf-8")[:MAX_REASON_BYTES].decode("utf-8", "ignore")
    return bytes([REFUSED]) + reason.encode("utf-8")


def decode_finish(payload: bytes) -> str | None:
    """Parse a FINISH payload: ``None`` when the peer admits us, else its reason.

    Examples
    --------
    >>> decode_finish(b"\\x01revoked")
    'revoked'
    """
    if payload == bytes([ACCEPTED]):
        return None
    if not payload or payload[0] != REFUSED or len(payload) > 1 + MAX_REASON_BYTES:
        raise HandshakeError("the peer's handshake verdict is malformed")
    return payload[1:].decode("utf-8", "replace") or "no reason given"
