"""Zero knowledge: confidential copyright transfers verified by the ledger.

Modules in dependency order:

* :mod:`zkp.group` — secp256k1 through libsecp256k1 (``coincurve``): points, scalars,
  validated encodings, hash-to-curve generators, multi-scalar multiplication;
* :mod:`zkp.transcript` — a Merlin-style Fiat–Shamir transcript over SM3;
* :mod:`zkp.pedersen` — Pedersen commitments;
* :mod:`zkp.sigma` — Schnorr, Chaum–Pedersen, representation proofs, AND/OR composition;
* :mod:`zkp.rangeproof` — Bulletproofs range proofs (n = 8…64, aggregated);
* :mod:`zkp.auditor` — twisted-ElGamal encryption of amounts to the auditor;
* :mod:`zkp.transfer` — the confidential transfer statement, prover, verifier and audit;
* :mod:`zkp.contract` — the ledger contracts (``zkp.auditor``, ``zkp.register``, ``zkp.transfer``).

The ledger runs the contracts once ``rongxin`` registers them with a node
(:func:`register_contracts`); ``chain`` itself does not import ``zkp``. See ``docs/zkp.md``
for the statements, the protocols and the security assumptions. The names below are
imported on first use.

Examples
--------
>>> from zkp import Transcript, prove_range, verify_range
>>> proof, commitments = prove_range([42], [7], 64, Transcript(b"example"))
>>> verify_range(commitments, 64, proof, Transcript(b"example"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.lazy import lazy_exports
from zkp.errors import DecryptionError, EncodingError, ParameterError, ProofError, ZkpError

if TYPE_CHECKING:
    from zkp.auditor import AuditorKey
    from zkp.contract import register_contracts
    from zkp.group import Point, SecretKey
    from zkp.pedersen import PedersenGens, pedersen_gens
    from zkp.rangeproof import RangeProof, prove_range, verify_range
    from zkp.transcript import Transcript
    from zkp.transfer import (
        AuditReport,
        OwnerKey,
        OwnershipRecord,
        Share,
        Transfer,
        audit,
        prove_key_possession,
        prove_transfer,
        verify_key_possession,
        verify_transfer,
    )

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "AuditorKey": "zkp.auditor",
    "register_contracts": "zkp.contract",
    "Point": "zkp.group",
    "SecretKey": "zkp.group",
    "PedersenGens": "zkp.pedersen",
    "pedersen_gens": "zkp.pedersen",
    "RangeProof": "zkp.rangeproof",
    "prove_range": "zkp.rangeproof",
    "verify_range": "zkp.rangeproof",
    "Transcript": "zkp.transcript",
    "AuditReport": "zkp.transfer",
    "OwnerKey": "zkp.transfer",
    "OwnershipRecord": "zkp.transfer",
    "Share": "zkp.transfer",
    "Transfer": "zkp.transfer",
    "audit": "zkp.transfer",
    "prove_key_possession": "zkp.transfer",
    "prove_transfer": "zkp.transfer",
    "verify_key_possession": "zkp.transfer",
    "verify_transfer": "zkp.transfer",
}

__all__ = [
    "AuditReport",
    "AuditorKey",
    "DecryptionError",
    "EncodingError",
    "OwnerKey",
    "OwnershipRecord",
    "ParameterError",
    "PedersenGens",
    "Point",
    "ProofError",
    "RangeProof",
    "SecretKey",
    "Share",
    "Transcript",
    "Transfer",
    "ZkpError",
    "audit",
    "pedersen_gens",
    "prove_key_possession",
    "prove_range",
    "prove_transfer",
    "register_contracts",
    "verify_key_possession",
    "verify_range",
    "verify_transfer",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
