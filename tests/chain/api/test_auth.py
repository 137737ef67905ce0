"""Signed requests, both sides: what a member signs and every way the node refuses one."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chain.api.auth import (
    CERT_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIME_HEADER,
    ReplayCache,
    auth_message,
    canonical_request,
    headers_from_message,
    sign_request,
    verify_request,
)
from chain.crypto import PrivateKey
from chain.errors import AuthError
from chain.types import Certificate, Role

ROOT = PrivateKey.generate()
KEY = PrivateKey.generate()
CERT = Certificate.issue(ROOT, "Media center", "m", [Role.MEDIA_CENTER], KEY.public_key, 0)
CHAIN = "test-chain"
BODY = b'{"tx": "00"}'


def member(cert_id: bytes, now_ms: int) -> Certificate:
    if cert_id != CERT.cert_id:
        raise AuthError("not registered", 403)
    return CERT


def signed(**kw: Any) -> dict[str, str]:
    args: dict[str, Any] = {"chain_id": CHAIN, **kw}
    return sign_request(KEY, CERT.cert_id, "POST", "/txs?x=1", BODY, **args)


def verify(headers: dict[str, str], **kw: Any) -> Certificate:
    args: dict[str, Any] = {
        "method": "POST",
        "target": "/txs?x=1",
        "body": BODY,
        "chain_id": CHAIN,
        "replay": ReplayCache(),
        **kw,
    }
    return verify_request(
        args.pop("method"), args.pop("target"), args.pop("body"), headers, member=member, **args
    )


def test_a_signed_request_verifies() -> None:
    headers = signed()
    assert verify(headers) is CERT
    assert len(headers[NONCE_HEADER]) == 32 and len(headers[SIGNATURE_HEADER]) == 128
    assert abs(int(headers[TIME_HEADER]) - time.time() * 1000) < 5000


def test_header_names_are_case_insensitive_in_lower_case() -> None:
    assert verify({k.lower(): v for k, v in signed().items()}) is CERT


@pytest.mark.parametrize("missing", [CERT_HEADER, TIME_HEADER, NONCE_HEADER, SIGNATURE_HEADER])
def test_each_missing_header_is_named(missing: str) -> None:
    headers = signed()
    del headers[missing]
    with pytest.raises(AuthError, match=f"missing {missing}") as e:
        verify(headers)
    assert e.value.status == 401


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        (CERT_HEADER, "ab", "X-Rongxin-Cert must be 64..64 hex digits"),
        (CERT_HEADER, "zz" * 32, "not hexadecimal"),
        (TIME_HEADER, "-5", "milliseconds"),
        (TIME_HEADER, "12.5", "milliseconds"),
        (TIME_HEADER, "9" * 16, "milliseconds"),
        (NONCE_HEADER, "abcd", "X-Rongxin-Nonce must be 16..64"),
        (NONCE_HEADER, "g" * 32, "not hexadecimal"),
        (SIGNATURE_HEADER, "00" * 63, "X-Rongxin-Signature must be 128..128"),
        (SIGNATURE_HEADER, "", "X-Rongxin-Signature must be"),
    ],
)
def test_malformed_headers(header: str, value: str, message: str) -> None:
    headers = signed()
    headers[header] = value
    with pytest.raises(AuthError, match=message):
        verify(headers)


@pytest.mark.parametrize(
    "change",
    [
        {"method": "GET"},
        {"target": "/txs?x=2"},
        {"target": "/txs"},
        {"body": b'{"tx": "01"}'},
        {"chain_id": "another-chain"},
    ],
)
def test_a_request_altered_after_signing_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(AuthError, match="signature does not verify"):
        verify(signed(), **change)


def test_signed_with_another_key_or_forged() -> None:
    other = PrivateKey.generate()
    headers = sign_request(other, CERT.cert_id, "POST", "/txs?x=1", BODY, chain_id=CHAIN)
    with pytest.raises(AuthError, match="signature does not verify"):
        verify(headers)
    forged = signed()
    sig = bytearray(bytes.fromhex(forged[SIGNATURE_HEADER]))
    sig[10] ^= 1
    forged[SIGNATURE_HEADER] = sig.hex()
    with pytest.raises(AuthError, match="signature does not verify"):
        verify(forged)
    zero = signed()
    zero[SIGNATURE_HEADER] = "00" * 64  # r = s = 0: malformed, refused the same way
    with pytest.raises(AuthError, match="signature does not verify"):
        verify(zero)


def test_unknown_certificate_is_403() -> None:
    headers = sign_request(KEY, b"\x01" * 32, "POST", "/txs?x=1", BODY, chain_id=CHAIN)
    with pytest.raises(AuthError, match="not registered") as e:
        verify(headers)
    assert e.value.status == 403


@pytest.mark.parametrize("offset_ms", [-61_000, 61_000, -(10**12)])
def test_stale_or_future_time_is_refused(offset_ms: int) -> None:
    now = 1_700_000_000_000
    headers = signed(timestamp_ms=now + offset_ms)
    with pytest.raises(AuthError, match="from the node's clock"):
        verify(headers, now_ms=now)


@pytest.mark.parametrize("offset_ms", [-59_000, 59_000])
def test_time_inside_the_window_is_accepted(offset_ms: int) -> None:
    now = 1_700_000_000_000
    assert verify(signed(timestamp_ms=now + offset_ms), now_ms=now) is CERT


def test_replayed_nonce_is_refused_even_with_a_fresh_signature() -> None:
    cache = ReplayCache()
    headers = signed()
    verify(headers, replay=cache)
    with pytest.raises(AuthError, match="already used"):
        verify(headers, replay=cache)
    again = signed(nonce=headers[NONCE_HEADER])  # same nonce, new time and signature
    with pytest.raises(AuthError, match="already used"):
        verify(again, replay=cache)
    verify(signed(), replay=cache)  # a new nonce is fine


def test_a_refused_request_does_not_spend_its_nonce() -> None:
    cache = ReplayCache()
    headers = signed()
    with pytest.raises(AuthError):
        verify(headers, replay=cache, body=b"tampered")
    assert verify(headers, replay=cache) is CERT


def test_replay_cache_expires_and_is_bounded() -> None:
    cache = ReplayCache(window_ms=1000, max_entries=2)
    cache.check_and_add(b"a", "n1", 0)
    cache.check_and_add(b"a", "n2", 0)
    with pytest.raises(AuthError, match="too many") as e:
        cache.check_and_add(b"a", "n3", 10)
    assert e.value.status == 503
    cache.check_and_add(b"a", "n3", 2001)  # the first two expired (twice the window)
    assert len(cache) == 1
    cache.check_and_add(b"b", "n3", 2001)  # nonces are per certificate


def test_canonical_string_binds_every_part() -> None:
    base = canonical_request("GET", "/a", b"", 1, "00" * 16, b"\x01" * 32, "c")
    assert base.split(b"\n")[0] == b"RONGXIN-API-1"
    variants = [
        canonical_request("POST", "/a", b"", 1, "00" * 16, b"\x01" * 32, "c"),
        canonical_request("GET", "/b", b"", 1, "00" * 16, b"\x01" * 32, "c"),
        canonical_request("GET", "/a", b"x", 1, "00" * 16, b"\x01" * 32, "c"),
        canonical_request("GET", "/a", b"", 2, "00" * 16, b"\x01" * 32, "c"),
        canonical_request("GET", "/a", b"", 1, "01" * 16, b"\x01" * 32, "c"),
        canonical_request("GET", "/a", b"", 1, "00" * 16, b"\x02" * 32, "c"),
        canonical_request("GET", "/a", b"", 1, "00" * 16, b"\x01" * 32, "d"),
    ]
    assert len({base, *variants}) == 8


def test_websocket_auth_message_round_trip() -> None:
    headers = signed()
    assert headers_from_message(auth_message(headers)) == headers
    assert headers_from_message({"type": "auth", "cert": 5}) == {}


def test_signing_needs_no_web_framework() -> None:
    """A client signs requests without loading FastAPI or the HTTP client."""
    import subprocess
    import sys

    code = (
        "import sys, chain.client, chain.api\n"
        "from chain.api import sign_request\n"
        "heavy = [m for m in ('fastapi', 'starlette', 'httpx', 'uvicorn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
