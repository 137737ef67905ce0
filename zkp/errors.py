"""Exception root of the :mod:`zkp` package.

Every error raised on purpose by :mod:`zkp` derives from :class:`ZkpError`:

* :class:`EncodingError` — bytes that do not decode to a valid point, scalar or proof
  (off-curve, identity where not allowed, non-canonical, wrong length, truncated);
* :class:`ProofError` — a well-formed proof that does not verify for the statement;
* :class:`ParameterError` — a caller asked for something outside the supported range
  (a value that does not fit, an unsupported bit size, too many shares);
* :class:`DecryptionError` — an auditor ciphertext that does not open under the given key.
"""

from __future__ import annotations


class ZkpError(Exception):
    """Root of every error raised on purpose by the :mod:`zkp` package."""


class EncodingError(ZkpError):
    """Bytes that are not a valid encoding of a point, scalar, proof or payload."""


class ProofError(ZkpError):
    """A proof that does not verify for the given statement."""


class ParameterError(ZkpError):
    """An argument outside what the protocol supports."""


class DecryptionError(ZkpError):
    """An auditor ciphertext that does not decrypt under the given key."""
