"""Signed API requests: a member signs each request with its SM2 key; the node checks it.

Both sides live here: :func:`sign_request` (what a client sends) and
:func:`verify_request` (what a node accepts). A request is signed over its canonical
string, the lines

.. code-block:: text

    RONGXIN-API-1
    <chain id>
    <METHOD>
    <path?query, exactly as sent>
    <SM3 of the body, hex>
    <timestamp, ms since the Unix epoch>
    <nonce, 32 random hex digits>
    <certificate id, hex>

joined by ``\\n`` (UTF-8) and signed with SM2 (default user id). The client sends the
certificate id, the timestamp, the nonce and the signature in the headers
``X-Rongxin-Cert``, ``X-Rongxin-Time``, ``X-Rongxin-Nonce`` and ``X-Rongxin-Signature``
(hex). The node accepts the request when the certificate is registered on its chain (or
is one of the genesis' certificates), is not revoked at the next height and is valid now,
the timestamp is within ±60 s of the node's clock, the signature verifies, and the nonce
was not seen in the window (a bounded :class:`ReplayCache`). The chain id in the signed
string keeps a request for one chain from being replayed on another.

A WebSocket client signs ``GET`` of the path it connects to (``/events``) with an empty
body, in the same headers or, where it cannot set headers (a browser), in its first
message ``{"type": "auth", "cert", "time", "nonce", "signature"}``
(:func:`auth_message`).

Examples
--------
>>> from chain.crypto import PrivateKey
>>> from chain.types import Certificate, Role
>>> root, key = PrivateKey.generate(), PrivateKey.generate()
>>> cert = Certificate.issue(root, "Media center", "m", [Role.MEDIA_CENTER], key.public_key, 0)
>>> headers = sign_request(key, cert.cert_id, "GET", "/txs/ab", b"", chain_id="demo")
>>> seen = ReplayCache()
>>> verify_request("GET", "/txs/ab", b"", headers, chain_id="demo",
...                member=lambda cert_id, now_ms: cert, replay=seen) is cert
True
>>> verify_request("GET", "/txs/ab", b"", headers, chain_id="demo",
...                member=lambda cert_id, now_ms: cert, replay=seen)
Traceback (most recent call last):
...
chain.errors.AuthError: the request's nonce was already used (a replayed request): sign each request afresh
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from chain.crypto import CryptoError, PrivateKey
from chain.crypto.sm3 import sm3
from chain.errors import AuthError
from chain.types import Certificate

SCHEME = "RONGXIN-API-1"
CERT_HEADER = "X-Rongxin-Cert"
TIME_HEADER = "X-Rongxin-Time"
NONCE_HEADER = "X-Rongxin-Nonce"
SIGNATURE_HEADER = "X-Rongxin-Signature"
BODY_SM3_HEADER = "X-Rongxin-Body-SM3"
"""The SM3 of a streamed request body (vault uploads), signed in place of hashing the body first."""
WINDOW_MS = 60_000
"""How far a request's timestamp may be from the node's clock, either way."""
MAX_REPLAY_ENTRIES = 200_000
"""Nonces a node remembers at once (a request beyond it is refused, never a nonce forgotten early)."""

MemberLookup = Callable[[bytes, int], Certificate]
"""``(cert_id, now_ms) -> Certificate`` of a member that may read now; raises :class:`AuthError`."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def canonical_request(
    method: str,
    target: str,
    body: bytes,
    timestamp_ms: int,
    nonce: str,
    cert_id: bytes,
    chain_id: str,
    body_sm3: bytes | None = None,
) -> bytes:
    """The bytes a request's signature covers (see the module docstring).

    ``body_sm3`` stands for ``sm3(body)`` when the body streams (a vault upload): the
    signature then covers the declared digest, and the node checks the body against it
    as it arrives.

    Examples
    --------
    >>> canonical_request("get", "/status", b"", 1, "00" * 16, b"\\x01" * 32, "c").split(b"\\n")[2]
    b'GET'
    """
    lines = [
        SCHEME,
        chain_id,
        method.upper(),
        target,
        (sm3(body) if body_sm3 is None else body_sm3).hex(),
        str(timestamp_ms),
        nonce,
        cert_id.hex(),
    ]
    return "\n".join(lines).encode()


def sign_request(
    key: PrivateKey,
    cert_id: bytes,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    chain_id: str,
    timestamp_ms: int | None = None,
    nonce: str | None = None,
    body_sm3: bytes | None = None,
) -> dict[str, str]:
    """The headers that authenticate one request.

    Parameters
    ----------
    key : PrivateKey
        The member's SM2 key.
    cert_id : bytes
        Its certificate id (registered on the chain).
    method : str
        HTTP method (``GET`` for a WebSocket).
    path : str
        The request target as sent: path and query (``/blocks/3``, ``/events?x=1``).
    body : bytes
        The exact body bytes sent (empty for ``GET``).
    chain_id : str
        The chain's id (from its genesis).
    timestamp_ms, nonce : optional
        Now and 16 random bytes in hex by default (tests pass their own).
    body_sm3 : bytes, optional
        The SM3 of a body that is streamed rather than passed (``body`` is then ignored);
        send it in ``X-Rongxin-Body-SM3``.

    Returns
    -------
    dict of str to str
        The four ``X-Rongxin-*`` headers.

    Examples
    --------
    >>> key = PrivateKey.generate()
    >>> sorted(sign_request(key, b"\\x01" * 32, "GET", "/validators", chain_id="c"))
    ['X-Rongxin-Cert', 'X-Rongxin-Nonce', 'X-Rongxin-Signature', 'X-Rongxin-Time']
    """
    ts = _now_ms() if timestamp_ms is None else timestamp_ms
    n = secrets.token_hex(16) if nonce is None else nonce
    signature = key.sign(canonical_request(method, path, body, ts, n, cert_id, chain_id, body_sm3))
    return {
        CERT_HEADER: cert_id.hex(),
        TIME_HEADER: str(ts),
        NONCE_HEADER: n,
        SIGNATURE_HEADER: signature.hex(),
    }


def auth_message(headers: Mapping[str, str]) -> dict[str, Any]:
    """The WebSocket first message carrying the same fields as :func:`sign_request`'s headers.

    Examples
    --------
    >>> auth_message({CERT_HEADER: "a", TIME_HEADER: "1", NONCE_HEADER: "n", SIGNATURE_HEADER: "s"})
    {'type': 'auth', 'cert': 'a', 'time': '1', 'nonce': 'n', 'signature': 's'}
    """
    return {
        "type": "auth",
        "cert": headers[CERT_HEADER],
        "time": headers[TIME_HEADER],
        "nonce": headers[NONCE_HEADER],
        "signature": headers[SIGNATURE_HEADER],
    }


def headers_from_message(message: Mapping[str, Any]) -> dict[str, str]:
    """Inverse of :func:`auth_message` (fields that are not strings are left out)."""
    names = {"cert": CERT_HEADER, "time": TIME_HEADER, "nonce": NONCE_HEADER, "signature": SIGNATURE_HEADER}
    return {header: message[field] for field, header in names.items() if isinstance(message.get(field), str)}


class ReplayCache:
    """Nonces seen recently, per certificate; a nonce is remembered for twice the window.

    Bounded: when it holds ``max_entries`` unexpired nonces it refuses new requests
    (status 503) rather than forget a nonce early, which would let a replay through.

    Examples
    --------
    >>> cache = ReplayCache()
    >>> cache.check_and_add(b"c", "n1", now_ms=0)
    >>> cache.check_and_add(b"c", "n1", now_ms=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chain.errors.AuthError: the request's nonce was already used ...
    >>> cache.check_and_add(b"c", "n1", now_ms=2 * WINDOW_MS + 1)  # long expired: the time check refuses it
    """

    def __init__(self, window_ms: int = WINDOW_MS, max_entries: int = MAX_REPLAY_ENTRIES) -> None:
        self.window_ms = window_ms
        self.max_entries = max_entries
        self._expiry: dict[tuple[bytes, str], int] = {}
        self._order: deque[tuple[int, tuple[bytes, str]]] = deque()

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now_ms: int) -> None:
        while self._order and self._order[0][0] <= now_ms:
            expiry, key = self._order.popleft()
            if self._expiry.get(key) == expiry:
                del self._expiry[key]

    def check_and_add(self, cert_id: bytes, nonce: str, now_ms: int) -> None:
        """Remember ``nonce`` of ``cert_id``; :class:`AuthError` if it was seen in the window."""
        self._purge(now_ms)
        key = (cert_id, nonce)
        if key in self._expiry:
            raise AuthError(
                "the request's nonce was already used (a replayed request): sign each request afresh"
            )
        if len(self._expiry) >= self.max_entries:
            raise AuthError("the node is handling too many signed requests; retry in a minute", status=503)
        expiry = now_ms + 2 * self.window_ms
        self._expiry[key] = expiry
        self._order.append((expiry, key))


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        raise AuthError(
            f"missing {name} header: reads need a member's signed request "
            f"({CERT_HEADER}, {TIME_HEADER}, {NONCE_HEADER}, {SIGNATURE_HEADER})"
        )
    return value


def _hex(value: str, name: str, sizes: range) -> bytes:
    if len(value) % 2 or len(value) // 2 not in sizes:
        raise AuthError(f"{name} must be {2 * sizes.start}..{2 * (sizes.stop - 1)} hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise AuthError(f"{name} is not hexadecimal") from None


def verify_request(
    method: str,
    target: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    chain_id: str,
    member: MemberLookup,
    replay: ReplayCache,
    now_ms: int | None = None,
    window_ms: int = WINDOW_MS,
    body_sm3: bytes | None = None,
) -> Certificate:
    """Check a signed request; the certificate of the member that signed it.

    Parameters
    ----------
    method, target, body
        The request as received: method, raw path and query, body bytes.
    headers : mapping
        Its headers (the four ``X-Rongxin-*``; case-insensitive mappings or the exact names).
    chain_id : str
        The node's chain id.
    member : callable
        ``(cert_id, now_ms) -> Certificate`` of a member allowed to read now (registered,
        not revoked, valid), raising :class:`AuthError` (403) otherwise.
    replay : ReplayCache
        Nonces seen recently.
    now_ms : int, optional
        The node's clock (now by default).
    window_ms : int
        Allowed clock difference.
    body_sm3 : bytes, optional
        The declared SM3 of a streamed body, checked in place of ``sm3(body)``; the caller
        must then check the body it receives against it.

    Raises
    ------
    AuthError
        401 for a missing, malformed, stale, forged or replayed request; 403 when the
        certificate may not read; 503 when the replay cache is full.
    """
    cert_id = _hex(_header(headers, CERT_HEADER), CERT_HEADER, range(32, 33))
    raw_time = _header(headers, TIME_HEADER)
    if not raw_time.isdigit() or len(raw_time) > 15:
        raise AuthError(f"{TIME_HEADER} must be milliseconds since the Unix epoch")
    timestamp = int(raw_time)
    nonce = _header(headers, NONCE_HEADER)
    _hex(nonce, NONCE_HEADER, range(8, 33))
    signature = _hex(_header(headers, SIGNATURE_HEADER), SIGNATURE_HEADER, range(64, 65))
    now = _now_ms() if now_ms is None else now_ms
    if abs(now - timestamp) > window_ms:
        raise AuthError(
            f"the request's time is {abs(now - timestamp) / 1000:.0f} s from the node's clock; at most "
            f"{window_ms // 1000} s are allowed: check the client's clock and sign each request afresh"
        )
    cert = member(cert_id, now)
    message = canonical_request(method, target, body, timestamp, nonce, cert_id, chain_id, body_sm3)
    try:
        cert.key().verify(message, signature)
    except CryptoError:
        raise AuthError(
            "the request's signature does not verify with the certificate's key "
            "(wrong key, another chain, or the request was altered)"
        ) from None
    replay.check_and_add(cert_id, nonce.lower(), now)
    return cert
