"""Built-in contracts (membership, anchoring) and the contract interface."""

from chain.contracts.base import Contract, ContractRegistry, TxContext

__all__ = ["Contract", "ContractRegistry", "TxContext"]
