"""Every error the :mod:`chain` package raises on purpose, under one root.

Callers catch :class:`ChainError` for anything the ledger refuses; the subclasses say which
part refused it. National-crypto errors (:class:`chain.crypto.CryptoError` and its family)
live in :mod:`chain.crypto.errors` and derive from :class:`ChainError` as well.

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


class LocalNetError(ChainError):
    """The in-process network could not reach the requested state in time."""
