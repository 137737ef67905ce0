"""The event hub: filters, bounded queues, the overflow error a slow client cannot miss."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from chain.errors import SubscriptionError
from chain.localnet import LocalConsortium
from chain.node.events import (
    EVENT_KINDS,
    EventFilter,
    EventHub,
    committed_events,
    parse_kinds,
    to_json,
)
from chain.types import Role

SENDER = "ab" * 32
DIGEST = "cd" * 32


def tx(height: int, tx_type: str = "anchor", sender: str = SENDER, **extra: Any) -> dict[str, Any]:
    return {"type": "tx", "height": height, "tx_type": tx_type, "sender": sender, "tx_id": "00" * 32, **extra}


def block(height: int) -> dict[str, Any]:
    return {"type": "block", "height": height, "hash": "11" * 32, "txs": 0}


def drain(sub: Any) -> list[dict[str, Any]]:
    out = []
    while (event := sub.get_nowait()) is not None:
        out.append(event)
    return out


def test_to_json_turns_bytes_into_hex_everywhere() -> None:
    value = {"a": b"\x00\x01", b"\xff": [1, (b"\x02",), None, True], 3: "x"}
    assert to_json(value) == {"a": "0001", "ff": [1, ["02"], None, True], "3": "x"}


def test_subscription_gets_only_the_kinds_and_transactions_it_asked_for() -> None:
    hub = EventHub()
    anchors = hub.subscribe({"tx"}, {"tx_type": "anchor", "sender": SENDER})
    blocks = hub.subscribe(["block"])
    everything = hub.subscribe(None)
    events = [block(1), tx(1), tx(1, "member.add"), tx(1, sender="ef" * 32)]
    hub.publish_all(events)
    assert drain(anchors) == [events[1]]
    assert drain(blocks) == [events[0]]
    assert drain(everything) == events
    assert hub.published == 4 and hub.last_height == 1


@pytest.mark.parametrize(
    ("flt", "matches"),
    [
        ({"anchor_digest": DIGEST}, True),
        ({"anchor_digest": DIGEST.upper()}, True),
        ({"anchor_digest": "ee" * 32}, False),
        ({"tx_id": "00" * 32}, True),
        ({"tx_id": "01" * 32}, False),
        ({"tx_type": ["member.add", "anchor"]}, True),
        ({"tx_type": "member.add"}, False),
        ({}, True),
        (None, True),
    ],
)
def test_filter_conditions(flt: Any, matches: bool) -> None:
    assert EventFilter.from_dict(flt).matches(tx(1, anchor_digest=DIGEST)) is matches


def test_filters_pass_block_and_validator_events() -> None:
    flt = EventFilter.from_dict({"sender": "ee" * 32})
    assert flt.matches(block(1)) and flt.matches({"type": "validators", "height": 1})


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ([1], "a filter is a map"),
        ({"colour": "red"}, "unknown filter fields"),
        ({"sender": "ab"}, "64 hex digits"),
        ({"sender": "zz" * 32}, "64 hex digits"),
        ({"anchor_digest": 5}, "64 hex digits"),
        ({"tx_type": 5}, "tx_type"),
        ({"tx_type": ["a"] * 33}, "tx_type"),
        ({"tx_type": [""]}, "tx_type"),
        ({"tx_type": ["x" * 65]}, "tx_type"),
    ],
)
def test_bad_filters_are_refused(flt: Any, message: str) -> None:
    with pytest.raises(SubscriptionError, match=message):
        EventFilter.from_dict(flt)


@pytest.mark.parametrize("kinds", ["tx", ["tx", "mempool"], [], [1], b"tx", 5, ["tx"] * 13])
def test_bad_kinds_are_refused(kinds: Any) -> None:
    with pytest.raises(SubscriptionError):
        parse_kinds(kinds)


def test_all_kinds_by_default() -> None:
    assert parse_kinds(None) == EVENT_KINDS


def test_overflow_ends_the_subscription_with_one_final_error() -> None:
    hub = EventHub()
    slow = hub.subscribe({"block"}, max_queue=3)
    fast = hub.subscribe({"block"}, max_queue=10)
    for h in range(1, 6):
        hub.publish(block(h))
    assert slow.closed and slow.resume_height == 1
    assert drain(slow) == [
        {
            "type": "error",
            "reason": "subscription overflowed; resubscribe from height 1",
            "resume_height": 1,
        }
    ]
    assert len(hub) == 1 and hub.overflows == 1
    assert [e["height"] for e in drain(fast)] == [1, 2, 3, 4, 5]
    hub.publish(block(6))  # an ended subscription gets nothing more
    assert slow.pending() == 0

    async def read_after_end() -> None:
        with pytest.raises(StopAsyncIteration):
            await slow.get()

    asyncio.run(read_after_end())


def test_overflow_names_the_oldest_event_the_client_did_not_get() -> None:
    hub = EventHub()
    sub = hub.subscribe({"block"}, max_queue=2)
    hub.publish(block(7))
    assert sub.get_nowait() == block(7)  # read: the client has it
    for h in (8, 9, 10):
        hub.publish(block(h))
    assert sub.resume_height == 8
    assert drain(sub)[-1]["reason"].endswith("resubscribe from height 8")


def test_waiting_reader_is_woken_and_stops_at_close() -> None:
    async def scenario() -> list[int]:
        hub = EventHub()
        sub = hub.subscribe({"block"})
        got: list[int] = []

        async def reader() -> None:
            async for event in sub:
                got.append(event["height"])

        task = asyncio.create_task(reader())
        await asyncio.sleep(0)
        hub.publish(block(1))
        await asyncio.sleep(0)
        hub.publish(block(2))
        await asyncio.sleep(0)
        sub.close()
        await asyncio.wait_for(task, 1)
        assert len(hub) == 0
        return got

    assert asyncio.run(scenario()) == [1, 2]


def test_subscription_limits() -> None:
    hub = EventHub(max_subscriptions=2)
    first = hub.subscribe(None)
    hub.subscribe(None)
    with pytest.raises(SubscriptionError, match="2 subscriptions already"):
        hub.subscribe(None)
    first.close()
    hub.subscribe(None)  # room again
    for bad in (0, 1001, True, "5"):
        with pytest.raises(SubscriptionError, match="max_queue"):
            EventHub().subscribe(None, max_queue=bad)


def test_a_failing_listener_does_not_stop_publication() -> None:
    hub = EventHub()
    seen: list[dict[str, Any]] = []
    hub.add_listener(lambda event: 1 / 0)  # type: ignore[arg-type,return-value]
    hub.add_listener(seen.append)
    hub.publish(block(1))
    assert seen == [block(1)]


def test_committed_events_from_a_store(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    try:
        member = c.add_member("County media center", [Role.MEDIA_CENTER])
        c.anchor(member, b"\x07" * 32, "work")
        store = c.replicas[0].store
        events = [e for h in range(1, store.head_height() + 1) for e in committed_events(store, h)]
        blocks = [e for e in events if e["type"] == "block"]
        txs = [e for e in events if e["type"] == "tx"]
        assert [b["height"] for b in blocks] == list(range(1, store.head_height() + 1))
        assert [t["tx_type"] for t in txs] == ["member.add", "anchor"]
        anchor = txs[1]
        assert anchor["anchor_digest"] == "07" * 32
        assert anchor["sender"] == member.cert.cert_id.hex()
        assert anchor["result"]["status"] == "anchored"
        assert store.tx_location(bytes.fromhex(anchor["tx_id"])) == (anchor["height"], anchor["index"])
        assert committed_events(store, store.head_height() + 1) == []
    finally:
        c.close()


def test_validators_event_when_a_block_starts_an_epoch(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    try:
        c.add_node("node-4")
        store = c.replicas[0].store
        found = [
            e
            for h in range(1, store.head_height() + 1)
            for e in committed_events(store, h)
            if e["type"] == "validators"
        ]
        assert [e["epoch"] for e in found] == [1]
        assert len(found[0]["validators"]) == 5
        assert "node-4" in {v["subject"] for v in found[0]["validators"]}
    finally:
        c.close()


def test_block_tx_ids_only_for_the_subscriptions_that_ask() -> None:
    hub = EventHub()
    with_ids = hub.subscribe(["block"], block_tx_ids=True)
    without = hub.subscribe(["block", "tx"])
    event = {**block(4), "txs": 2, "tx_ids": ["01" * 32, "02" * 32]}
    hub.publish(event)
    assert drain(with_ids) == [event]
    assert drain(without) == [block(4) | {"txs": 2}]
    assert event["tx_ids"] == ["01" * 32, "02" * 32]  # the published event is not changed


@pytest.mark.parametrize(
    ("kinds", "flag", "message"),
    [
        (["block"], "yes", "true or false"),
        (["block"], 1, "true or false"),
        (["block"], None, "true or false"),
        (["tx"], True, "needs the 'block' event kind"),
        (["validators", "tx"], True, "needs the 'block' event kind"),
    ],
)
def test_bad_block_tx_ids_are_refused(kinds: Any, flag: Any, message: str) -> None:
    hub = EventHub()
    with pytest.raises(SubscriptionError, match=message):
        hub.subscribe(kinds, block_tx_ids=flag)
    assert len(hub) == 0


def test_the_hub_says_whether_anyone_wants_a_kind() -> None:
    hub = EventHub()
    assert not hub.wants("tx")
    blocks = hub.subscribe(["block"], block_tx_ids=True)
    assert hub.wants("block") and not hub.wants("tx")
    txs = hub.subscribe(["tx"], {"tx_type": "anchor"})
    assert hub.wants("tx")
    txs.close()
    assert not hub.wants("tx")
    blocks.close()
    assert not hub.wants("block")


def test_committed_block_events_carry_their_transactions_ids(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    try:
        member = c.add_member("County media center", [Role.MEDIA_CENTER])
        c.anchor(member, b"\x08" * 32, "work")
        store = c.replicas[0].store
        for height in range(1, store.head_height() + 1):
            events = committed_events(store, height)
            ids = [e["tx_id"] for e in events if e["type"] == "tx"]
            assert events[0]["type"] == "block" and events[0]["tx_ids"] == ids
            assert events[0]["txs"] == len(ids)
    finally:
        c.close()
