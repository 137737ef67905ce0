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

See ``docs/zkp.md`` for the statements, the protocols and the security assumptions.
"""

from zkp.errors import DecryptionError, EncodingError, ParameterError, ProofError, ZkpError

__all__ = ["DecryptionError", "EncodingError", "ParameterError", "ProofError", "ZkpError"]
