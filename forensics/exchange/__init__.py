"""Fingerprint exchange between members: hash lists out, other members' works in.

A member exports its works' fingerprints as a signed hash list
(:mod:`forensics.exchange.hashlist`, built by :mod:`forensics.exchange.export`); another
member imports it into the foreign namespace of its library
(:mod:`forensics.exchange.foreign`) and from then on finds copies of those works —
reported as the member's opaque references — without ever receiving the works. PDQ
hashes travel too and are matched with ThreatExchange's rule (:mod:`forensics.exchange.pdq`).
Every error is a :class:`forensics.exchange.errors.HashListError`, itself a
:class:`forensics.errors.ForensicsError`.
"""

from __future__ import annotations

from forensics.exchange.errors import (
    HashListDigestError,
    HashListError,
    HashListMismatchError,
    HashListSignatureError,
    HashListTooLargeError,
    MalformedHashListError,
    TruncatedHashListError,
    UnsupportedHashListVersionError,
)

__all__ = [
    "HashListDigestError",
    "HashListError",
    "HashListMismatchError",
    "HashListSignatureError",
    "HashListTooLargeError",
    "MalformedHashListError",
    "TruncatedHashListError",
    "UnsupportedHashListVersionError",
]
