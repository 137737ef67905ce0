"""The record layer on its own: nonces, limits, authentication and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from chain.crypto import sm4
from chain.errors import ConnectionClosed, NetError, RecordError
from chain.net.records import (
    DEFAULT_MAX_FRAME,
    MAX_RECORDS,
    OVERHEAD,
    RecordOpener,
    RecordReader,
    RecordSealer,
    check_max_frame,
    record_nonce,
)

KEY = bytes(range(16))


def test_layout_nonce_and_aad() -> None:
    record = RecordSealer(KEY, counter=5).seal(0x30, b"tx")
    length = OVERHEAD + 2
    assert record[:4] == length.to_bytes(4, "big")
    nonce = bytes(11) + b"\x05"
    assert record_nonce(5) == nonce
    assert sm4.gcm_decrypt(KEY, nonce, record[4:], record[:4]) == b"\x30tx"


def test_counters_advance_and_order_is_enforced() -> None:
    sealer, opener = RecordSealer(KEY), RecordOpener(KEY)
    records = [sealer.seal(0x10, bytes([i])) for i in range(3)]
    assert opener.open(records[0][:4], records[0][4:]) == (0x10, b"\x00")
    with pytest.raises(RecordError, match="record 1 failed authentication"):
        opener.open(records[2][:4], records[2][4:])  # skipped one
    with pytest.raises(RecordError):
        opener.open(records[0][:4], records[0][4:])  # replayed
    assert opener.open(records[1][:4], records[1][4:]) == (0x10, b"\x01")


def test_other_key_or_direction_fails() -> None:
    record = RecordSealer(KEY).seal(0x20, b"x")
    with pytest.raises(RecordError):
        RecordOpener(bytes(16)).open(record[:4], record[4:])


def test_sizes_are_bounded() -> None:
    sealer = RecordSealer(KEY, max_frame=100)
    sealer.seal(0x20, bytes(100 - OVERHEAD))
    with pytest.raises(RecordError, match="max_frame"):
        sealer.seal(0x20, bytes(101 - OVERHEAD))
    opener = RecordOpener(KEY, max_frame=100)
    with pytest.raises(RecordError, match="exceeds max_frame 100"):
        opener.body_length((101).to_bytes(4, "big"))
    with pytest.raises(RecordError, match="shorter"):
        opener.body_length((OVERHEAD - 1).to_bytes(4, "big"))
    with pytest.raises(RecordError, match="differs from its length prefix"):
        opener.open((20).to_bytes(4, "big"), bytes(19))
    assert DEFAULT_MAX_FRAME - OVERHEAD >= 16 * 1024 * 1024


@pytest.mark.parametrize("bad", [0, 63, 2**32, True, "16"])
def test_max_frame_setting_is_checked(bad: object) -> None:
    with pytest.raises(NetError):
        check_max_frame(bad)  # type: ignore[arg-type]


def test_channel_must_be_one_byte() -> None:
    with pytest.raises(RecordError):
        RecordSealer(KEY).seal(256, b"")


def test_counter_stops_before_a_nonce_repeats() -> None:
    sealer = RecordSealer(KEY, counter=MAX_RECORDS - 1)
    last = sealer.seal(0x10, b"")
    with pytest.raises(RecordError, match="2\\*\\*64"):
        sealer.seal(0x10, b"")
    opener = RecordOpener(KEY, counter=MAX_RECORDS - 1)
    assert opener.open(last[:4], last[4:]) == (0x10, b"")
    with pytest.raises(RecordError, match="2\\*\\*64"):
        opener.open(last[:4], last[4:])
    with pytest.raises(RecordError):
        record_nonce(MAX_RECORDS)


def test_reader_survives_cancellation_mid_record() -> None:
    async def scenario() -> None:
        stream = asyncio.StreamReader()
        reader = RecordReader(stream, RecordOpener(KEY))
        sealer = RecordSealer(KEY)
        first, second = sealer.seal(0x40, b"block 1"), sealer.seal(0x40, b"block 2")
        stream.feed_data(first[:6])  # the length and two body bytes
        waiting = asyncio.create_task(reader.read())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        stream.feed_data(first[6:] + second)
        assert await reader.read() == (0x40, b"block 1")
        assert await reader.read() == (0x40, b"block 2")
        stream.feed_eof()
        with pytest.raises(ConnectionClosed):
            await reader.read()

    asyncio.run(asyncio.wait_for(scenario(), 10))
