"""``WS /events``: authentication, subscriptions, replay, limits and the overflow error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.websockets import WebSocketDisconnect

from chain.api import create_app
from chain.api import ws as ws_module
from chain.api.auth import auth_message
from chain.types import Role
from tests.chain.api.harness import Node, TestClient, start_node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = start_node(tmp_path)
    yield n
    n.consortium.close()


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node.service, max_ws_subscriptions=3)) as c:
        yield c


def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The next message, failing the test instead of hanging when none comes."""

    async def get() -> Any:
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()

    message = ws.portal.call(get)
    ws._raise_on_close(message)
    doc: dict[str, Any] = json.loads(message["text"])
    return doc


def closed_with(ws: Any) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with pytest.raises(WebSocketDisconnect) as e:
        for _ in range(100):
            recv(ws)
    return e.value.code, e.value.reason


def connect(client: TestClient, node: Node, **headers: str) -> Any:
    return client.websocket_connect("/events", headers=headers or node.headers("GET", "/events"))


def commit_anchor(client: TestClient, node: Node, digest: bytes) -> dict[str, Any]:
    tx = node.anchor_tx(digest)
    body = json.dumps({"tx": tx.to_bytes().hex(), "mode": "commit"}).encode()
    response = client.post("/txs", content=body, headers=node.headers("POST", "/txs", body))
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def until(ws: Any, predicate: Any) -> list[dict[str, Any]]:
    got = []
    while True:
        message = recv(ws)
        got.append(message)
        if predicate(message):
            return got


def test_subscribe_and_receive_filtered_events(client: TestClient, node: Node) -> None:
    with connect(client, node) as ws:
        ready = recv(ws)
        assert ready["type"] == "ready"
        ws.send_json({"type": "subscribe", "kinds": ["tx"], "filter": {"tx_type": "anchor"}})
        subscribed = recv(ws)
        assert subscribed["type"] == "subscribed" and subscribed["height"] == ready["height"]
        done = commit_anchor(client, node, b"\x01" * 32)
        event = recv(ws)
        assert event["type"] == "tx" and event["tx_id"] == done["tx_id"]
        assert (event["height"], event["tx_type"], event["subscription"]) == (
            done["height"],
            "anchor",
            subscribed["id"],
        )
        assert event["anchor_digest"] == "01" * 32 and event["result"]["status"] == "anchored"
        ws.send_json({"type": "ping"})
        assert recv(ws) == {"type": "pong"}  # nothing else (no block events) was queued


def test_first_message_authentication(client: TestClient, node: Node) -> None:
    with client.websocket_connect("/events") as ws:
        ws.send_json(auth_message(node.headers("GET", "/events")))
        assert recv(ws)["type"] == "ready"


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        ({"type": "subscribe"}, "the first message must be"),
        ({"type": "auth", "cert": "00" * 32}, "missing X-Rongxin-Time"),
    ],
)
def test_bad_first_message_closes(client: TestClient, first: dict[str, Any], reason: str) -> None:
    with client.websocket_connect("/events") as ws:
        ws.send_json(first)
        error = recv(ws)
        assert error["type"] == "error" and reason in error["reason"]
        assert closed_with(ws)[0] == 1008


def test_forged_or_replayed_connection_is_refused(client: TestClient, node: Node) -> None:
    headers = node.headers("GET", "/events")
    forged = dict(headers)
    forged["X-Rongxin-Signature"] = "11" * 64
    with connect(client, node, **forged) as ws:
        assert "signature does not verify" in recv(ws)["reason"]
        assert closed_with(ws)[0] == 1008
    with connect(client, node, **headers) as ws:
        assert recv(ws)["type"] == "ready"
    with connect(client, node, **headers) as ws:
        assert "already used" in recv(ws)["reason"]
    signed_elsewhere = node.headers("GET", "/status")
    with connect(client, node, **signed_elsewhere) as ws:
        assert "signature does not verify" in recv(ws)["reason"]


def test_auth_message_must_come_in_time(
    client: TestClient, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_module, "AUTH_TIMEOUT_S", 0.1)
    with client.websocket_connect("/events") as ws:
        assert "no auth message" in recv(ws)["reason"]


def test_no_auth_when_the_app_needs_none(node: Node) -> None:
    with TestClient(create_app(node.service, require_auth=False)) as c, c.websocket_connect("/events") as ws:
        assert recv(ws)["type"] == "ready"


def test_replay_from_a_height_then_live_without_duplicates(client: TestClient, node: Node) -> None:
    first = commit_anchor(client, node, b"\x02" * 32)
    with connect(client, node) as ws:
        recv(ws)
        ws.send_json({"type": "subscribe", "kinds": ["block", "tx"], "from_height": 1})
        head = recv(ws)["height"]
        assert head >= first["height"]
        replayed = until(ws, lambda m: m["type"] == "tx" and m["tx_id"] == first["tx_id"])
        assert [m["height"] for m in replayed if m["type"] == "block"] == list(range(1, first["height"] + 1))
        assert [m["tx_type"] for m in replayed if m["type"] == "tx"] == ["member.add", "anchor"]
        if head > first["height"]:
            until(ws, lambda m: m["type"] == "block" and m["height"] == head)
        second = commit_anchor(client, node, b"\x03" * 32)
        live = until(ws, lambda m: m["type"] == "tx" and m["tx_id"] == second["tx_id"])
        heights = [m["height"] for m in live if m["type"] == "block"]
        assert heights and min(heights) == head + 1 and heights == sorted(set(heights))


def test_overflow_sends_one_error_then_closes(client: TestClient, node: Node) -> None:
    with connect(client, node) as ws:
        recv(ws)
        ws.send_json({"type": "subscribe", "kinds": ["block"], "max_queue": 2})
        sid = recv(ws)["id"]
        burst = [{"type": "block", "height": h, "hash": "00" * 32} for h in range(100, 110)]
        client.portal.call(node.service.hub.publish_all, burst)  # faster than anyone reads
        error = recv(ws)
        assert error == {
            "type": "error",
            "reason": "subscription overflowed; resubscribe from height 100",
            "resume_height": 100,
            "subscription": sid,
        }
        code, reason = closed_with(ws)
        assert (code, reason) == (1013, "subscription overflowed")
    assert node.service.hub.overflows == 1 and len(node.service.hub) == 0


def test_subscription_limits_and_bad_requests_are_not_fatal(client: TestClient, node: Node) -> None:
    with connect(client, node) as ws:
        recv(ws)
        for bad, reason in [
            ({"type": "subscribe", "kinds": ["mempool"]}, "unknown event kinds"),
            ({"type": "subscribe", "filter": {"sender": "xy"}}, "64 hex digits"),
            ({"type": "subscribe", "max_queue": 10**6}, "max_queue"),
            ({"type": "subscribe", "from_height": -1}, "from_height is a height"),
            ({"type": "subscribe", "from_height": 10**6}, "above the node's height"),
            ({"type": "unsubscribe", "id": 99}, "no subscription with this id"),
            ({"type": "dance"}, "message types are"),
        ]:
            ws.send_json(bad)
            error = recv(ws)
            assert error["type"] == "error" and reason in error["reason"] and error["fatal"] is False
        ids = []
        for _ in range(3):
            ws.send_json({"type": "subscribe"})
            ids.append(recv(ws)["id"])
        ws.send_json({"type": "subscribe"})
        assert "at most 3 subscriptions" in recv(ws)["reason"]
        ws.send_json({"type": "unsubscribe", "id": ids[0]})
        assert recv(ws) == {"type": "unsubscribed", "id": ids[0]}
        ws.send_json({"type": "subscribe"})
        assert recv(ws)["type"] == "subscribed"
    assert len(node.service.hub) == 0  # the connection's subscriptions end with it


def test_the_hub_bounds_every_connection_together(client: TestClient, node: Node) -> None:
    node.service.hub.max_subscriptions = 1
    with connect(client, node) as first, connect(client, node) as second:
        recv(first)
        recv(second)
        first.send_json({"type": "subscribe"})
        assert recv(first)["type"] == "subscribed"
        second.send_json({"type": "subscribe"})
        assert "retry later" in recv(second)["reason"]


def test_unreadable_messages_close_the_connection(client: TestClient, node: Node) -> None:
    with connect(client, node) as ws:
        recv(ws)
        ws.send_text("not json")
        assert recv(ws)["reason"] == "messages are JSON objects"
        assert closed_with(ws)[0] == 1003
    with connect(client, node) as ws:
        recv(ws)
        ws.send_text(" " * (64 * 1024 + 1))
        assert "at most" in recv(ws)["reason"]
        assert closed_with(ws)[0] == 1009


def test_block_events_with_their_transactions_ids(client: TestClient, node: Node) -> None:
    with connect(client, node) as ws:
        recv(ws)
        ws.send_json({"type": "subscribe", "kinds": ["block"], "block_tx_ids": True})
        with_ids = recv(ws)["id"]
        ws.send_json({"type": "subscribe", "kinds": ["block"]})
        plain = recv(ws)["id"]
        done = commit_anchor(client, node, b"\x04" * 32)
        got = until(ws, lambda m: m["subscription"] == plain and m["height"] == done["height"])
        mine = [m for m in got if m["subscription"] == with_ids and m["height"] == done["height"]]
        assert len(mine) == 1 and done["tx_id"] in mine[0]["tx_ids"]
        assert len(mine[0]["tx_ids"]) == mine[0]["txs"]
        assert all("tx_ids" not in m for m in got if m["subscription"] == plain)
        # a replay from the store carries them too
        ws.send_json({"type": "subscribe", "kinds": ["block"], "block_tx_ids": True, "from_height": 1})
        replay = recv(ws)["id"]
        again = until(ws, lambda m: m.get("subscription") == replay and m["height"] == done["height"])
        assert done["tx_id"] in again[-1]["tx_ids"]


def test_bad_subscriptions_of_block_tx_ids_and_oversized_filters(client: TestClient, node: Node) -> None:
    with connect(client, node) as ws:
        recv(ws)
        for bad, reason in [
            ({"type": "subscribe", "kinds": ["block"], "block_tx_ids": "yes"}, "true or false"),
            ({"type": "subscribe", "kinds": ["tx"], "block_tx_ids": True}, "needs the 'block' event kind"),
            ({"type": "subscribe", "kinds": ["block_txs"]}, "unknown event kinds"),
            ({"type": "subscribe", "filter": {"tx_type": ["anchor"] * 33}}, "tx_type"),
            ({"type": "subscribe", "filter": {"tx_type": ["x" * 65]}}, "tx_type"),
            ({"type": "subscribe", "filter": {"tx_id": "ab" * 33}}, "64 hex digits"),
        ]:
            ws.send_json(bad)
            error = recv(ws)
            assert error["type"] == "error" and reason in error["reason"] and error["fatal"] is False
        assert len(node.service.hub) == 0
        ws.send_json({"type": "subscribe", "filter": {"tx_type": ["t" * 64] * 1000}})  # > 64 KiB
        assert "at most" in recv(ws)["reason"]
        assert closed_with(ws)[0] == 1009


# ------------------------------------------------------------------ submissions
def test_submit_batches_over_the_authenticated_connection(client: TestClient, node: Node) -> None:
    good = [node.anchor_tx(bytes([0x50 + i]) * 32) for i in range(3)]
    bad = node.unsent_tx(b"\x58" * 32, colour=1)
    with connect(client, node) as ws:
        recv(ws)
        ws.send_json({"type": "submit", "id": 7, "txs": [t.to_bytes().hex() for t in [*good, bad]]})
        answer = recv(ws)
        assert answer["type"] == "submitted" and answer["id"] == 7 and answer["accepted"] == 3
        assert answer["tx_ids"] == [t.tx_id.hex() for t in good] + [None]
        assert answer["refused"][0]["index"] == 3
        assert "unknown payload fields" in answer["refused"][0]["reason"]
        assert all(node.service.store.tx_location(t.tx_id) is not None for t in good)
        # a batch the node cannot read is refused as a whole, naming its id; not fatal
        for bad_message, reason in [
            ({"type": "submit", "id": 1, "txs": []}, "a batch holds 1 to"),
            ({"type": "submit", "id": 2, "txs": ["zz"]}, "transaction 0 is not hex"),
            ({"type": "submit", "id": 3, "txs": ["00", 5]}, "transaction 1 is not hex"),
            ({"type": "submit", "id": 4, "txs": "00"}, "a submit message is"),
            ({"type": "submit", "id": 5, "txs": ["00"], "more": 1}, "a submit message is"),
        ]:
            ws.send_json(bad_message)
            error = recv(ws)
            assert error["type"] == "error" and reason in error["reason"]
            assert error["fatal"] is False and error["id"] == bad_message["id"]
        for no_id in [{"type": "submit", "txs": ["00"]}, {"type": "submit", "id": True, "txs": ["00"]}]:
            ws.send_json(no_id)
            error = recv(ws)
            assert "has an id" in error["reason"] and error["fatal"] is False and "id" not in error
        # transactions that do not decode are refused one by one, with reasons
        ws.send_json({"type": "submit", "id": 8, "txs": ["00", "ff" * 40]})
        answer = recv(ws)
        assert answer["accepted"] == 0 and answer["tx_ids"] == [None, None]
        assert [r["index"] for r in answer["refused"]] == [0, 1]
        ws.send_json({"type": "ping"})
        assert recv(ws) == {"type": "pong"}  # the connection still serves

    def counted(status: str) -> float | None:
        labels = {"route": ws_module.SUBMIT_ROUTE, "status": status}
        return node.service.registry.get_sample_value("rongxin_api_requests_total", labels)

    assert counted("200") == 2 and counted("400") == 7


def test_only_a_submit_may_be_larger_than_other_messages(client: TestClient, node: Node) -> None:
    limit = ws_module.MAX_MESSAGE_BYTES
    junk = ["00" * 400] * (limit // 800 + 10)  # more than the limit of other messages
    with connect(client, node) as ws:
        recv(ws)
        message = {"type": "submit", "id": 1, "txs": junk}
        assert len(json.dumps(message)) > limit
        ws.send_json(message)
        answer = recv(ws)
        assert answer["type"] == "submitted" and answer["accepted"] == 0
        assert len(answer["refused"]) == len(junk)
        ws.send_json({"type": "ping", "pad": "x" * limit})
        assert "other than submit are at most" in recv(ws)["reason"]
        assert closed_with(ws)[0] == 1009


def test_a_member_revoked_while_connected_can_no_longer_submit(client: TestClient, node: Node) -> None:
    c = node.consortium
    other = c.add_member("County archive", [Role.MEDIA_CENTER])
    with connect(client, node, **node.headers("GET", "/events", who=other)) as ws:
        assert recv(ws)["type"] == "ready"
        first = node.anchor_tx(b"\x61" * 32, who=other)
        ws.send_json({"type": "submit", "id": 1, "txs": [first.to_bytes().hex()]})
        assert recv(ws)["accepted"] == 1
        c.submit(c.supervisor, "member.revoke", {"cert_id": other.cert.cert_id, "reason": "left"})
        later = node.anchor_tx(b"\x62" * 32, who=other)
        ws.send_json({"type": "submit", "id": 2, "txs": [later.to_bytes().hex()]})
        assert "revoked from height" in recv(ws)["reason"]
        assert closed_with(ws)[0] == 1008
    assert node.service.store.tx_location(later.tx_id) is None
    labels = {"route": ws_module.SUBMIT_ROUTE, "status": "403"}
    assert node.service.registry.get_sample_value("rongxin_api_requests_total", labels) == 1
