"""Signing and verification for consensus: real SM2 and a fast simulation scheme.

:class:`Sm2Signer` / :class:`Sm2Verifier` are what a deployment uses.  The simulation
scheme (:class:`SimPki`) gives each node a random secret and "signs" with HMAC-SM3; only
the registry knows the secrets and hands each node a signer for its *own* id, so in the
simulator a node can only sign as itself, exactly as with SM2, at ~1/100 of the cost.

Both verifiers cache successful verifications by ``(author, message, signature)`` so each
signature is checked at most once per node (QCs are seen many times).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Protocol

from chain.crypto import CryptoError, PrivateKey, PublicKey
from chain.crypto.sm3 import hmac_sm3

_CACHE_LIMIT = 200_000


class Signer(Protocol):
    """Signs consensus bytes as one validator."""

    @property
    def node_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


class Verifier(Protocol):
    """Checks a validator's signature; never raises, returns ``False`` when invalid."""

    def verify(self, author: str, message: bytes, signature: bytes) -> bool: ...


class _CachingVerifier:
    def __init__(self) -> None:
        self._ok: set[tuple[str, bytes, bytes]] = set()
        self.checks = 0

    def _check(self, author: str, message: bytes, signature: bytes) -> bool:
        raise NotImplementedError

    def verify(self, author: str, message: bytes, signature: bytes) -> bool:
        key = (author, message, signature)
        if key in self._ok:
            return True
        self.checks += 1
        if not self._check(author, message, signature):
            return False
        if len(self._ok) >= _CACHE_LIMIT:
            self._ok.clear()
        self._ok.add(key)
        return True


class Sm2Signer:
    """SM2 signer wrapping a :class:`~chain.crypto.PrivateKey`."""

    def __init__(self, node_id: str, key: PrivateKey) -> None:
        self._id = node_id
        self._key = key

    @property
    def node_id(self) -> str:
        return self._id

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


class Sm2Verifier(_CachingVerifier):
    """SM2 verifier over a fixed ``validator id -> PublicKey`` map."""

    def __init__(self, keys: Mapping[str, PublicKey]) -> None:
        super().__init__()
        self._keys = dict(keys)

    def _check(self, author: str, message: bytes, signature: bytes) -> bool:
        pub = self._keys.get(author)
        if pub is None:
            return False
        try:
            pub.verify(message, signature)
        except CryptoError:
            return False
        return True


class SimPki:
    """Simulated PKI: per-node HMAC-SM3 secrets, held only by this registry.

    Secrets come from ``os.urandom`` (never from simulation randomness), so a simulated
    Byzantine node cannot forge an honest node's signature.
    """

    def __init__(self, node_ids: list[str]) -> None:
        self._secrets = {n: os.urandom(32) for n in node_ids}

    def signer(self, node_id: str) -> SimSigner:
        """The signer of ``node_id`` (give it only to that node, or to its Twin)."""
        return SimSigner(node_id, self._secrets[node_id])

    def verifier(self) -> SimVerifier:
        """A fresh verifier (one per node, so caches are per node)."""
        return SimVerifier(self)

    def _tag(self, author: str, message: bytes) -> bytes | None:
        secret = self._secrets.get(author)
        return None if secret is None else hmac_sm3(secret, message)


class SimSigner:
    """HMAC-SM3 signer handed out by :class:`SimPki`."""

    def __init__(self, node_id: str, secret: bytes) -> None:
        self._id = node_id
        self._secret = secret

    @property
    def node_id(self) -> str:
        return self._id

    def sign(self, message: bytes) -> bytes:
        return hmac_sm3(self._secret, message)


class SimVerifier(_CachingVerifier):
    """Verifier of :class:`SimPki` signatures."""

    def __init__(self, pki: SimPki) -> None:
        super().__init__()
        self._pki = pki

    def _check(self, author: str, message: bytes, signature: bytes) -> bool:
        tag = self._pki._tag(author, message)
        return tag is not None and hmac.compare_digest(tag, signature)
