"""Fuzz targets: every decoder that takes bytes from outside, with its invariants.

A :class:`Target` names a decoder, builds valid seed inputs (lazily: some need keys, a
receipt from a local consortium or a zero-knowledge proof), and says which error root may
escape and how to re-encode a decoded value. :func:`check` runs one input and enforces:

* only the package's own error root escapes (anything else is a :class:`Crash`);
* a decoded value re-encodes to exactly the input, where an encoder exists;
* the call takes at most ``fixed_ms`` plus :data:`US_PER_BYTE` per input byte (generous on a
  loaded 2-core machine, but an input that expands — a decode bomb — fails it by orders of
  magnitude).

The same targets drive the hypothesis tests (``tests/fuzz/test_fuzz.py``) and the
coverage-guided runs (``bench/fuzz.py``).
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chain import codec
from chain.crypto import PrivateKey, PublicKey
from chain.crypto.errors import CryptoError
from chain.crypto.keyfile import decrypt_private_key, encrypt_private_key
from chain.errors import ChainError
from privacy.errors import PrivacyError
from zkp.errors import ZkpError

US_PER_BYTE = 2.0
"""Time allowed per input byte, in microseconds, on top of a target's fixed allowance."""

FIXED_MS = 5.0
"""Default fixed time allowance per call, in milliseconds."""


class Crash(AssertionError):
    """An input broke an invariant: a foreign exception, a bad round trip or a slow decode."""


class Escaped(Crash):
    """An exception other than the package's error root escaped the decoder."""


class RoundTrip(Crash):
    """An accepted input does not re-encode to itself (two encodings of one value)."""


class TooSlow(Crash):
    """A call took longer than its fixed allowance plus :data:`US_PER_BYTE` per byte."""


@dataclass(frozen=True)
class Target:
    """One decoder under test."""

    name: str
    run: Callable[[bytes], Any]
    error: type[BaseException] | tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]
    reencode: Callable[[Any], bytes] | None = None
    fixed_ms: float = FIXED_MS
    cbor: bool = True
    """Seeds are canonical CBOR (so structure-aware type confusion applies)."""


@dataclass
class Outcome:
    accepted: bool
    seconds: float


def _call(target: Target, data: bytes) -> tuple[bool, Any, float]:
    start = time.perf_counter()
    try:
        value = target.run(data)
        accepted = True
    except target.error:
        value, accepted = None, False
    except Exception as exc:
        raise Escaped(
            f"{target.name}: {type(exc).__name__} escaped: {exc!r:.300} on {data[:64].hex()}"
        ) from exc
    return accepted, value, time.perf_counter() - start


def check(target: Target, data: bytes) -> Outcome:
    """Run ``target`` on ``data``; raise :class:`Crash` when an invariant breaks.

    An input over its time budget is run twice more and judged by its fastest run: a
    scheduler pause on a shared machine does not repeat, an input that expands does.
    """
    accepted, value, seconds = _call(target, data)
    budget = (target.fixed_ms + US_PER_BYTE * len(data) / 1000) / 1000
    for _ in range(2):
        if seconds <= budget:
            break
        seconds = min(seconds, _call(target, data)[2])
    if seconds > budget:
        raise TooSlow(
            f"{target.name}: {seconds * 1e3:.1f} ms for {len(data)} bytes (budget {budget * 1e3:.1f} ms)"
        )
    if accepted and target.reencode is not None:
        again = target.reencode(value)
        if again != bytes(data):
            raise RoundTrip(f"{target.name}: decoded value re-encodes differently: {data[:64].hex()}")
    return Outcome(accepted, seconds)


# ----------------------------------------------------------------------------- seeds


@functools.cache
def _ledger() -> Any:
    from tests.chain.ledger_fixtures import consortium

    return consortium()


def _codec_seeds() -> list[bytes]:
    values: list[Any] = [
        None,
        True,
        0,
        -(2**64),
        2**64 - 1,
        b"\x00" * 40,
        "text é",
        [1, [2, [3, []]], {}],
        {"a": 1, "b": [b"x", "y", None, False], "c": {"d": {"e": -24}}},
    ]
    return [codec.encode(v) for v in values] + _transaction_seeds()


@functools.cache
def _transaction_seeds() -> list[bytes]:
    c = _ledger()
    tx = c.media.tx("anchor", {"digest": b"\x02" * 32, "kind": "work", "meta": {"n": [1, "x"]}})
    return [tx.to_bytes()]


def _transaction(data: bytes) -> Any:
    from chain.types import Transaction

    return Transaction.from_bytes(data)


def _genesis(data: bytes) -> Any:
    from chain.types import Genesis

    return Genesis.from_bytes(data)


def _certificate(data: bytes) -> Any:
    from chain.types import Certificate

    return Certificate.from_dict(codec.decode(data))


def _epoch_seeds() -> list[bytes]:
    from chain.epochs import genesis_epoch

    return [genesis_epoch(_ledger().genesis).to_bytes()]


def _epoch(data: bytes) -> Any:
    from chain.epochs import EpochRecord

    return EpochRecord.from_bytes(data)


def _message_seeds() -> list[bytes]:
    from chain.consensus.messages import encode_message
    from tests.chain.consensus.message_samples import sample_messages

    top = ("vote", "timeout", "proposal", "sync_request", "sync_response", "evidence_msg")
    samples = sample_messages()
    return [encode_message(samples[k]) for k in top]


def _message(data: bytes) -> Any:
    from chain.consensus.messages import decode_message

    return decode_message(data)


def _reencode_message(msg: Any) -> bytes:
    from chain.consensus.messages import encode_message

    return encode_message(msg)


@functools.cache
def _receipt_fixture() -> tuple[bytes, Any]:
    from chain.localnet import LocalConsortium
    from chain.types import Role

    with tempfile.TemporaryDirectory(prefix="rx-fuzz-receipt-") as directory:
        net = LocalConsortium.create(Path(directory), nodes=4)
        try:
            member = net.add_member("County media center", [Role.MEDIA_CENTER])
            receipt = net.anchor(member, b"\x03" * 32, "work")
            return receipt.to_bytes(), net.genesis
        finally:
            net.close()


def _receipt(data: bytes) -> Any:
    from chain.receipt import Receipt

    return Receipt.from_bytes(data)


def _receipt_verify(data: bytes) -> Any:
    from chain.receipt import Receipt, verify_receipt

    return verify_receipt(Receipt.from_bytes(data), _receipt_fixture()[1])


def _receipt_error() -> type[BaseException]:
    from chain.receipt import ReceiptError

    return ReceiptError


@functools.cache
def _key() -> PrivateKey:
    return PrivateKey.from_bytes(
        bytes.fromhex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")
    )


def _keyfile_seeds() -> list[bytes]:
    """A sealed SM2 key file and one in the layout written before the sealed format."""
    earlier = Path(__file__).parents[1] / "data" / "sealed" / "legacy-sm2.key"
    return [encrypt_private_key(_key(), _KEYFILE_PASSWORD, scrypt_n=1024), earlier.read_bytes()]


_KEYFILE_PASSWORD = "legacy-pw"  # the password of tests/data/sealed/legacy-sm2.key


def _keyfile(data: bytes) -> Any:
    return decrypt_private_key(data, _KEYFILE_PASSWORD)


def _pem_seeds() -> list[bytes]:
    pub = _key().public_key
    return [pub.to_pem().encode(), _key().to_pem().encode()]


def _pem(data: bytes) -> Any:
    if b"PRIVATE" in data[:40]:
        return PrivateKey.from_pem(data)
    return PublicKey.from_pem(data)


def _der_seeds() -> list[bytes]:
    return [_key().public_key.to_der()]


def _public_key_seeds() -> list[bytes]:
    pub = _key().public_key
    return [pub.to_bytes(), pub.to_bytes(compressed=True)]


def _public_key(data: bytes) -> Any:
    return PublicKey.from_bytes(data)


def _reencode_public_key(key: Any) -> bytes:
    return bytes(key.to_bytes(compressed=True))


def _agency_seeds() -> list[bytes]:
    from privacy.agency import encode_message

    refusal = {"type": "refusal", "query_id": "q-1", "agency": "county", "reason": "too few rows"}
    contribution = {
        "type": "contribution",
        "query_id": "q-1",
        "agency": "county",
        "key_fp": b"\x01" * 32,
        "ciphertexts": [b"\x02" * 64, b"\x03" * 64],
        "decision": {"accepted": True, "reason": "ok"},
        "shares": {"city": b"\x04" * 120, "town": b"\x05" * 120},
    }
    shares = {
        "type": "shares",
        "query_id": "q-1",
        "agency": "county",
        "x": 2,
        "shares": {"city": {"self": b"\x06" * 66, "pairs": {"town": b"\x07" * 66}}},
    }
    return [encode_message(refusal), encode_message(contribution), encode_message(shares)]


def _envelope_seeds() -> list[bytes]:
    from chain.types import Certificate, Role
    from privacy.identity import Identity
    from privacy.protocol import sign

    key = PrivateKey.generate()
    who = Identity(key, Certificate.issue(_key(), "regulator", "r", [Role.REGULATOR], key.public_key, 0))
    view = {"type": "view", "query_id": "q-1", "survivors": ["a", "b", "c"], "dropped": []}
    return [sign(who, view)]


def _envelope(data: bytes) -> Any:
    from privacy.protocol import MESSAGE_FIELDS, open_signed

    open_signed(data, *MESSAGE_FIELDS)
    return codec.decode(data)  # the checked envelope (re-encodes to the same bytes)


def _agency(data: bytes) -> Any:
    from privacy.agency import decode_message

    return decode_message(
        data, "refusal", "contribution", "aggregate", "query", "view", "unmask", "recover", "shares"
    )


@functools.cache
def _deal() -> Any:
    from tests.zkp.transfer_fixtures import make_deal

    return make_deal(seed=7)


def _point_seeds() -> list[bytes]:
    from zkp.group import Point

    return [_deal().buyer.public.encode(), Point.identity().encode()]


def _point(data: bytes) -> Any:
    from zkp.group import Point

    return Point.decode(data, allow_identity=True)


def _scalar(data: bytes) -> Any:
    from zkp.group import scalar_from_bytes

    return scalar_from_bytes(data)


def _scalar_reencode(value: Any) -> bytes:
    from zkp.group import scalar_to_bytes

    return scalar_to_bytes(value)


def _range_proof(data: bytes) -> Any:
    from zkp.auditor import LIMB_BITS, LIMBS
    from zkp.rangeproof import RangeProof

    return RangeProof.decode(data, LIMB_BITS, LIMBS * (1 + len(_deal().transfer.shares)))


def _sigma(data: bytes) -> Any:
    from zkp.sigma import SigmaProof
    from zkp.transfer import _relation  # private on purpose: fuzzes the proof relation decoder

    deal = _deal()
    return SigmaProof.decode(data, len(_relation(deal.record, deal.transfer).witnesses()))


def _transfer_record_seeds() -> list[bytes]:
    from zkp.contract import TransferRecord

    deal = _deal()
    return [TransferRecord(deal.record, deal.transfer, "test-chain", b"\x04" * 32, 9).to_bytes()]


def _transfer_record(data: bytes) -> Any:
    from zkp.contract import TransferRecord

    return TransferRecord.from_bytes(data)


def _transfer_payload(data: bytes) -> Any:
    from zkp.transfer import Transfer

    return Transfer.from_payload(codec.decode(data))


def _transfer_payload_error() -> type[BaseException]:
    return ZkpError


# ----------------------------------------------------------------------------- forensics


def _png(width: int = 24, height: int = 20, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 9 % 256, y * 11 % 256, (x + y) * 5 % 256], axis=-1).astype(np.uint8)
    img = Image.fromarray(pixels).convert(mode)
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def _image_seeds() -> list[bytes]:
    return [_png(), _png(fmt="JPEG"), _png(fmt="GIF", mode="P"), _png(fmt="BMP")]


def _via_file(data: bytes, suffix: str, fn: Callable[[Path], Any]) -> Any:
    fd, name = tempfile.mkstemp(prefix="rx-fuzz-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return fn(Path(name))
    finally:
        os.unlink(name)


def _image(data: bytes) -> Any:
    from forensics.image.decode import load_frames

    return _via_file(data, ".img", lambda p: load_frames(p, max_pixels=4_000_000))


def _wav(seconds: float = 0.25, rate: int = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 12_000).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def _audio(data: bytes) -> Any:
    from forensics.audio.decode import decode

    return _via_file(data, ".wav", lambda p: decode(p, max_seconds=60))


def _forensics_error() -> type[BaseException]:
    from forensics.errors import ForensicsError

    return ForensicsError


# ----------------------------------------------------------------------------- registry


def _receipt_reencode(r: Any) -> bytes:
    return bytes(r.to_bytes())


def _to_bytes(value: Any) -> bytes:
    return bytes(value.to_bytes())


def _cert_reencode(cert: Any) -> bytes:
    return codec.encode(cert.to_dict())


def _payload_reencode(transfer: Any) -> bytes:
    return codec.encode(transfer.to_payload())


_BATCH = [b"first signed transaction", b"second signed transaction"]
"""The batch whose answers the ``client.stream_answer`` target reads."""


def _stream_answer_seeds() -> list[bytes]:
    import json

    from chain.crypto.sm3 import sm3

    ok = {
        "type": "submitted",
        "id": 0,
        "accepted": 2,
        "tx_ids": [sm3(t).hex() for t in _BATCH],
        "refused": [],
    }
    one = {
        "type": "submitted",
        "id": 0,
        "accepted": 1,
        "tx_ids": [sm3(_BATCH[0]).hex(), None],
        "refused": [{"index": 1, "reason": "nonce 3 already used"}],
    }
    return [json.dumps(ok).encode(), json.dumps(one).encode()]


def _stream_answer(data: bytes) -> Any:
    """A node's message on a submission stream, read as the answer to batch 0 of
    :data:`_BATCH` (a message that is not that answer is refused here too)."""
    from chain.client.stream import batch_results, read_answer
    from chain.errors import ClientError

    text = data.decode("utf-8", errors="replace")
    doc = read_answer(text, 0)
    if doc is None:
        raise ClientError("not the answer to this batch")
    return batch_results(doc, _BATCH)


def targets() -> dict[str, Target]:
    """Every fuzz target by name."""
    receipt_error = _receipt_error()
    forensics_error = _forensics_error()
    items = [
        Target("codec.decode", codec.decode, ChainError, _codec_seeds, codec.encode),
        Target("types.Transaction", _transaction, ChainError, _transaction_seeds, _to_bytes),
        Target("types.Genesis", _genesis, ChainError, lambda: [_ledger().genesis.to_bytes()], _to_bytes),
        Target(
            "types.Certificate",
            _certificate,
            ChainError,
            lambda: [codec.encode(c.to_dict()) for c in _ledger().genesis.certificates[:3]],
            _cert_reencode,
        ),
        Target("epochs.EpochRecord", _epoch, ChainError, _epoch_seeds, _to_bytes),
        Target("consensus.decode_message", _message, ChainError, _message_seeds, _reencode_message),
        Target(
            "receipt.from_bytes", _receipt, receipt_error, lambda: [_receipt_fixture()[0]], _receipt_reencode
        ),
        Target(
            "receipt.verify",
            _receipt_verify,
            receipt_error,
            lambda: [_receipt_fixture()[0]],
            fixed_ms=400.0,
        ),
        Target("client.stream_answer", _stream_answer, ChainError, _stream_answer_seeds, cbor=False),
        Target("crypto.keyfile", _keyfile, CryptoError, _keyfile_seeds, fixed_ms=300.0, cbor=False),
        Target("crypto.pem", _pem, CryptoError, _pem_seeds, fixed_ms=20.0, cbor=False),
        Target("crypto.der", PublicKey.from_der, CryptoError, _der_seeds, lambda k: k.to_der(), cbor=False),
        Target("crypto.public_key", _public_key, CryptoError, _public_key_seeds, cbor=False),
        Target("privacy.agency", _agency, PrivacyError, _agency_seeds, codec.encode),
        Target("privacy.envelope", _envelope, PrivacyError, _envelope_seeds, codec.encode),
        Target("zkp.Point", _point, ZkpError, _point_seeds, lambda p: p.encode(), cbor=False),
        Target(
            "zkp.scalar",
            _scalar,
            ZkpError,
            lambda: [_scalar_reencode(5), _scalar_reencode(-1)],
            _scalar_reencode,
            cbor=False,
        ),
        Target(
            "zkp.RangeProof",
            _range_proof,
            ZkpError,
            lambda: [_deal().transfer.range_proof],
            lambda p: p.encode(),
            fixed_ms=60.0,
            cbor=False,
        ),
        Target(
            "zkp.SigmaProof",
            _sigma,
            ZkpError,
            lambda: [_deal().transfer.proof],
            lambda p: p.encode(),
            fixed_ms=60.0,
            cbor=False,
        ),
        Target(
            "zkp.TransferRecord",
            _transfer_record,
            ZkpError,
            _transfer_record_seeds,
            _to_bytes,
            fixed_ms=60.0,
        ),
        Target(
            "zkp.Transfer.from_payload",
            _transfer_payload,
            (ZkpError, ChainError),
            lambda: [codec.encode(_deal().transfer.to_payload())],
            _payload_reencode,
            fixed_ms=60.0,
        ),
        Target("forensics.image", _image, forensics_error, _image_seeds, fixed_ms=1500.0, cbor=False),
        Target("forensics.audio", _audio, forensics_error, lambda: [_wav()], fixed_ms=5000.0, cbor=False),
    ]
    return {t.name: t for t in items}
