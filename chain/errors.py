"""Exception root of the :mod:`chain` package.

Every error raised on purpose by the ledger (crypto, codec, consensus, storage, network)
derives from :class:`ChainError`, so callers can catch one class.
"""

from __future__ import annotations


class ChainError(Exception):
    """Root of every error raised by the :mod:`chain` package."""
