"""Rongxin's consortium ledger: national crypto, consensus, storage, receipts.

``chain`` imports none of Rongxin's other packages (see ``DESIGN.md`` §2).
"""

from chain.errors import ChainError

__all__ = ["ChainError"]
