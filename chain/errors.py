r"""Every error the :mod:`chain` package raises on purpose, under one root.

Callers catch :class:`ChainError` for anything the ledger refuses; the subclasses say which
part refused it. The national-crypto family (:class:`CryptoError` and below) tells a
malformed signature from a forged one and a truncated ciphertext from a wrong password;
:mod:`chain.crypto` re-exports it.

Examples
--------
>>> from chain import codec
>>> try:
...     codec.decode(b"\xff")
... except ChainError as exc:
...     type(exc).__name__
'CodecError'
"""

from __future__ import annotations


class ChainError(Exception):
    """Root of every error raised by the :mod:`chain` package."""


class CodecError(ChainError):
    """A value cannot be canonically encoded, or bytes are not a canonical encoding."""


class MerkleError(ChainError):
    """Bad input to a Merkle function, or a proof that does not verify."""


class ValidationError(ChainError):
    """A ledger object is malformed, badly signed or not permitted."""


class NonceGapError(ValidationError):
    """A transaction whose nonce is ahead: it must wait for its predecessors."""

    def __init__(self, message: str, expected: int) -> None:
        super().__init__(message)
        self.expected = expected


class ConsensusError(ChainError):
    """Invalid consensus message, certificate or state."""


class StoreError(ChainError):
    """The store is unusable, belongs to another chain, or a write breaks chain rules."""


class ReceiptError(ChainError):
    """A receipt does not prove what it claims; ``reason`` names the failed check."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


class LocalNetError(ChainError):
    """The in-process network could not reach the requested state in time."""


class SnapshotError(ChainError):
    """A state snapshot is malformed, unproven or does not match its block; ``reason`` names
    the failed check (``malformed``, ``wrong-chain``, ``commit-proof``, ``height``,
    ``checkpoint``, ``chunk``, ``state``, ``store``, ``io``; ``pruned`` when every peer
    that offered it has since pruned it; ``offers`` when no peer offered a snapshot that
    could be restored)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


class ConfigError(ChainError):
    """A node configuration file (``node.toml``) is unreadable or wrong.

    The message names the file, the ``[section]`` and the key (each when known) and says
    what was wrong, e.g. ``net/node-0/node.toml: [p2p] listen[1]: port 70000 is outside
    1-65535``; :attr:`path`, :attr:`section` and :attr:`key` hold the parts.
    """

    def __init__(self, path: str, section: str | None, key: str | None, problem: str) -> None:
        where = path
        if section is not None:
            where += f": [{section}]"
        if key is not None:
            where += f" {key}" if section is not None else f": {key}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.section = section
        self.key = key
        self.problem = problem


# --------------------------------------------------------------------------- national crypto
class CryptoError(ChainError):
    """Root of every error raised by :mod:`chain.crypto`."""


class BackendError(CryptoError):
    """The cryptographic backend (system OpenSSL 3) is missing or failed unexpectedly."""


class KeyFormatError(CryptoError):
    """A key could not be decoded: wrong length, bad encoding, or a point off the curve."""


class WrongKeyTypeError(CryptoError, TypeError):
    """An object of the wrong kind was passed where a specific key type is required."""


class InvalidSignature(CryptoError):
    """A signature does not verify for this message, key and user ID."""


class SignatureFormatError(InvalidSignature):
    """A signature is malformed: wrong length, or r or s outside ``[1, n-1]``."""


class DecryptionError(CryptoError):
    """A ciphertext could not be decrypted: it was modified, truncated or the key is wrong."""


class CiphertextFormatError(DecryptionError):
    """A ciphertext is structurally invalid (too short, bad header, bad point)."""


class WrongPasswordError(DecryptionError):
    """A password-protected key file could not be opened with the given password."""


class KeyFileError(CryptoError):
    """A key file is unreadable, of an unknown format, or uses unsupported parameters."""


class WrongKindError(KeyFileError):
    """A sealed file holds another kind of secret than the one asked for (e.g. an auditor
    key given where an SM2 private key is expected)."""


# --------------------------------------------------------------------------- networking
class NetError(ChainError):
    """Root of every error raised by :mod:`chain.net`: the peer connection is unusable.

    Every subclass means the connection has been (or must be) closed; a node reconnects
    rather than trying to resynchronise a damaged stream.
    """


class HandshakeError(NetError):
    """The secure handshake failed: malformed, truncated or forged messages, another
    chain or genesis, an unknown protocol version, or a timeout."""


class PeerRefused(NetError):
    """A peer is not admitted: its certificate is not issued by the consortium root, is
    not a node certificate, or ``check_peer`` refused it (or the peer refused us)."""


class RecordError(NetError):
    """A record after the handshake is oversized, tampered, replayed, reordered, cut short
    or names an unknown channel."""


class ConnectionClosed(NetError):
    """The connection is closed: the peer closed it at a record boundary, or it was
    closed locally (after :meth:`~chain.net.SecureConnection.close` or an error)."""


# --------------------------------------------------------------------------- node API and client
class AuthError(ChainError):
    """A signed API request was refused: missing, malformed, stale, replayed or forged
    (``status`` 401), or signed by a certificate that may not read (``status`` 403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class SubscriptionError(ChainError):
    """An event subscription was refused (bad kinds or filter, too many subscriptions), or
    ended because its client fell behind: ``resume_height`` is where to resubscribe from."""

    def __init__(self, message: str, resume_height: int | None = None) -> None:
        super().__init__(message)
        self.resume_height = resume_height


class CommitTimeout(ChainError):
    """A transaction was not committed in the time allowed; it may still commit later."""

    def __init__(self, message: str, tx_id: bytes = b"") -> None:
        super().__init__(message)
        self.tx_id = tx_id


class VaultError(ChainError):
    """An off-chain vault object was refused or could not be stored or read: malformed,
    truncated, over its size cap, not matching its digest, or not readable with the key.
    ``status`` is the HTTP status a node answers with (400 by default)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ClientError(ChainError):
    """A node refused a client's request, answered something unverifiable, or could not be
    reached. ``status`` is the HTTP status (0 when no answer came) and ``reason`` the node's
    own words (its ``{"error": ...}``) or what the client found wrong."""

    def __init__(self, reason: str, status: int = 0) -> None:
        super().__init__(f"{reason} (HTTP {status})" if status else reason)
        self.reason = reason
        self.status = status
