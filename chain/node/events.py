"""Committed-chain events for API subscribers, through a hub that never blocks its publisher.

After each commit the node host publishes, for the new block, one ``block`` event, one
``tx`` event per transaction and, when the block changed the validator set, one
``validators`` event. :func:`committed_events` builds them from a node's store, so an
event published live and one replayed later from the store are the same JSON.

Event shapes (JSON; bytes as lowercase hex):

* ``{"type": "block", "height", "hash", "time_ms", "txs", "proposer", "round", "epoch"}``
  (``txs`` is the number of transactions), plus ``"tx_ids"`` (the ids of the block's
  transactions in order) for a subscription made with ``block_tx_ids``: one message per
  block tells such a client when each of its transactions committed, where ``tx`` events
  cost the node a stored result read and a message per transaction;
* ``{"type": "tx", "tx_id", "height", "index", "tx_type", "sender", "result"}`` plus
  ``"anchor_digest"`` for an ``anchor`` transaction;
* ``{"type": "validators", "epoch", "height", "validators": [{"id", "subject"}]}`` — the
  epoch that the block at ``height`` started.

Back-pressure: every :class:`Subscription` has a bounded queue and :meth:`EventHub.publish`
never waits. When a subscription's queue is full, the subscription ends: its queued events
are dropped and replaced by **one** final event ``{"type": "error", "reason":
"subscription overflowed; resubscribe from height N"}``, ``N`` being the height of the
oldest event it did not get, after which reading it stops. A slow client therefore never
slows the node, and never silently misses an event: it gets the error, or every event.

Examples
--------
>>> import asyncio
>>> hub = EventHub()
>>> sub = hub.subscribe({"tx"}, {"tx_type": "anchor"}, max_queue=2)
>>> for h in (1, 2, 3):
...     hub.publish({"type": "tx", "height": h, "tx_type": "anchor", "tx_id": "00", "sender": "01"})
>>> asyncio.run(sub.get())["type"], sub.closed
('error', True)
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.consensus.messages import Block
from chain.epochs import CURRENT_EPOCH, EpochRecord, epoch_info, epoch_key
from chain.errors import SubscriptionError
from chain.store import LedgerStore
from chain.types import Transaction

log = logging.getLogger(__name__)

EVENT_KINDS = frozenset({"block", "tx", "validators"})
"""What a subscriber may ask for."""
MAX_QUEUE = 1000
"""Largest (and default) queue of one subscription, in events."""
MAX_SUBSCRIPTIONS = 1024
"""Default limit of live subscriptions on one hub (every client together)."""
MAX_TX_TYPES = 32
"""Most transaction types one filter may name."""

Event = dict[str, Any]


def to_json(value: Any) -> Any:
    """A JSON-ready copy of a decoded CBOR value: bytes as lowercase hex, tuples as lists.

    Map keys become strings (bytes keys as hex). Decoded CBOR is at most
    :data:`chain.codec.MAX_DEPTH` deep, so the recursion is bounded.

    Examples
    --------
    >>> to_json({"digest": b"\\x01\\xab", "n": [1, (b"\\xff",)]})
    {'digest': '01ab', 'n': [1, ['ff']]}
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {
            (k.hex() if isinstance(k, (bytes, bytearray)) else str(k)): to_json(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# --------------------------------------------------------------------------- building events
def block_event(block: Block, tx_ids: Sequence[bytes] | None = None) -> Event:
    """The ``block`` event of a committed block; with ``tx_ids`` (its transactions' ids, in
    order) it carries them as ``"tx_ids"`` for the subscriptions that asked for them.

    Examples
    --------
    >>> from chain.consensus.messages import genesis_block
    >>> block_event(genesis_block("c", b"r" * 32))["txs"]
    0
    >>> block_event(genesis_block("c", b"r" * 32), [])["tx_ids"]
    []
    """
    event: Event = {
        "type": "block",
        "height": block.height,
        "hash": block.hash.hex(),
        "time_ms": block.timestamp_ms,
        "txs": len(block.payload),
        "proposer": block.proposer,
        "round": block.round,
        "epoch": block.epoch,
    }
    if tx_ids is not None:
        event["tx_ids"] = [t.hex() for t in tx_ids]
    return event


def tx_event(tx: Transaction, height: int, index: int, result: Any) -> Event:
    """The ``tx`` event of a committed transaction (``result`` as decoded from the store).

    Examples
    --------
    >>> from chain.crypto import PrivateKey
    >>> tx = Transaction.create(PrivateKey.generate(), b"\\x01" * 32, "anchor",
    ...                         {"digest": b"\\x02" * 32, "kind": "work"}, 1, 0)
    >>> tx_event(tx, 5, 0, {"status": "anchored"})["anchor_digest"] == "02" * 32
    True
    """
    event: Event = {
        "type": "tx",
        "tx_id": tx.tx_id.hex(),
        "height": height,
        "index": index,
        "tx_type": tx.type,
        "sender": tx.sender.hex(),
        "result": to_json(result),
    }
    digest = tx.payload.get("digest") if tx.type == "anchor" else None
    if isinstance(digest, bytes):
        event["anchor_digest"] = digest.hex()
    return event


def validators_event(record: EpochRecord) -> Event:
    """The ``validators`` event of the epoch ``record`` (started by block ``record.height``).

    Examples
    --------
    >>> validators_event(EpochRecord(1, 7, ()))
    {'type': 'validators', 'epoch': 1, 'height': 7, 'validators': []}
    """
    return {"type": "validators", **epoch_info(record)}


def epoch_started_at(store: LedgerStore, height: int) -> EpochRecord | None:
    """The epoch that the committed block at ``height`` started, if it started one.

    Looks from the newest epoch down, so the check for a block just committed reads one
    record.
    """
    raw = store.get_state(CURRENT_EPOCH)
    epoch = 0 if raw is None else int.from_bytes(raw, "big")
    while epoch > 0:
        stored = store.get_state(epoch_key(epoch))
        if stored is None:
            return None
        record = EpochRecord.from_bytes(stored)
        if record.height == height:
            return record
        if record.height < height:
            return None
        epoch -= 1
    return None


def committed_events(store: LedgerStore, height: int) -> list[Event]:
    """Every event of the committed block at ``height``: block (with its ``tx_ids``),
    transactions, validators.

    Returns an empty list when the store has no block at ``height`` (yet).

    Examples
    --------
    >>> import tempfile
    >>> from chain.localnet import LocalConsortium
    >>> from chain.types import Role
    >>> c = LocalConsortium.create(tempfile.mkdtemp(), nodes=4)
    >>> _ = c.add_member("County media center", [Role.MEDIA_CENTER])
    >>> [e["type"] for e in committed_events(c.replicas[0].store, 1)]
    ['block', 'tx']
    >>> c.close()
    """
    row = store.block(height)
    if row is None:
        return []
    obj = codec.decode(row.block)
    raws = store.transactions(height)
    obj[-1] = raws
    txs = [Transaction.from_bytes(raw) for raw in raws]
    events = [block_event(Block.from_obj(obj), [tx.tx_id for tx in txs])]
    for index, tx in enumerate(txs):
        stored = store.tx_result(tx.tx_id)
        events.append(tx_event(tx, height, index, None if stored is None else codec.decode(stored)))
    record = epoch_started_at(store, height)
    if record is not None:
        events.append(validators_event(record))
    return events


# --------------------------------------------------------------------------- filters
def _hex32(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 64:
        raise SubscriptionError(f"filter {name!r} must be 64 hex digits")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise SubscriptionError(f"filter {name!r} must be 64 hex digits") from None
    return value.lower()


@dataclass(frozen=True)
class EventFilter:
    """Which ``tx`` events a subscription wants (every condition given must hold).

    ``block`` and ``validators`` events are not filtered: a subscription gets them when it
    asks for their kind.

    Examples
    --------
    >>> f = EventFilter.from_dict({"tx_type": ["anchor"], "sender": "ab" * 32})
    >>> f.matches({"type": "tx", "tx_type": "anchor", "sender": "ab" * 32})
    True
    >>> f.matches({"type": "tx", "tx_type": "member.add", "sender": "ab" * 32})
    False
    """

    tx_types: frozenset[str] = frozenset()
    sender: str | None = None
    anchor_digest: str | None = None
    tx_id: str | None = None

    @classmethod
    def from_dict(cls, doc: Any) -> EventFilter:
        """Parse a client's filter ``{"tx_type", "sender", "anchor_digest", "tx_id"}``.

        ``tx_type`` is one type or a list of types; the others are 64 hex digits.

        Raises
        ------
        SubscriptionError
            When the filter is not such a map.
        """
        if doc is None:
            return cls()
        if not isinstance(doc, Mapping):
            raise SubscriptionError("a filter is a map")
        unknown = set(doc) - {"tx_type", "sender", "anchor_digest", "tx_id"}
        if unknown:
            raise SubscriptionError(f"unknown filter fields {sorted(map(str, unknown))[:4]}")
        types = doc.get("tx_type", [])
        if isinstance(types, str):
            types = [types]
        if (
            not isinstance(types, list)
            or len(types) > MAX_TX_TYPES
            or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in types)
        ):
            raise SubscriptionError(f"filter 'tx_type' is a type name or a list of at most {MAX_TX_TYPES}")
        return cls(
            frozenset(types), _hex32(doc, "sender"), _hex32(doc, "anchor_digest"), _hex32(doc, "tx_id")
        )

    def matches(self, event: Event) -> bool:
        """Whether ``event`` passes (events other than ``tx`` always do)."""
        if event.get("type") != "tx":
            return True
        if self.tx_types and event.get("tx_type") not in self.tx_types:
            return False
        if self.sender is not None and event.get("sender") != self.sender:
            return False
        if self.anchor_digest is not None and event.get("anchor_digest") != self.anchor_digest:
            return False
        return self.tx_id is None or event.get("tx_id") == self.tx_id


def parse_kinds(kinds: Any) -> frozenset[str]:
    """The event kinds a client asked for (all of them for ``None``).

    Raises
    ------
    SubscriptionError
        When ``kinds`` is not a list of known kinds.

    Examples
    --------
    >>> sorted(parse_kinds(["tx", "block"]))
    ['block', 'tx']
    """
    if kinds is None:
        return EVENT_KINDS
    if isinstance(kinds, (str, bytes)) or not isinstance(kinds, Iterable):
        raise SubscriptionError(f"kinds is a list of {sorted(EVENT_KINDS)}")
    chosen = list(kinds)
    if len(chosen) > len(EVENT_KINDS) * 4 or not all(isinstance(k, str) for k in chosen):
        raise SubscriptionError(f"kinds is a list of {sorted(EVENT_KINDS)}")
    unknown = set(chosen) - EVENT_KINDS
    if unknown:
        raise SubscriptionError(f"unknown event kinds {sorted(unknown)}; kinds are {sorted(EVENT_KINDS)}")
    if not chosen:
        raise SubscriptionError("ask for at least one event kind")
    return frozenset(chosen)


def shaped(event: Event, block_tx_ids: bool) -> Event:
    """``event`` as a subscriber gets it: a ``block`` event keeps its ``tx_ids`` only for a
    subscriber that asked for them (``event`` itself is not changed).

    Examples
    --------
    >>> shaped({"type": "block", "height": 2, "tx_ids": ["ab"]}, False)
    {'type': 'block', 'height': 2}
    """
    if not block_tx_ids and "tx_ids" in event and event.get("type") == "block":
        return {k: v for k, v in event.items() if k != "tx_ids"}
    return event


# --------------------------------------------------------------------------- subscriptions
class Subscription:
    """One subscriber's bounded queue of events; read it with :meth:`get` or ``async for``.

    Made by :meth:`EventHub.subscribe`. Reading stops (``StopAsyncIteration``) after
    :meth:`close`, or after the final overflow error has been read.
    """

    def __init__(
        self,
        hub: EventHub,
        sid: int,
        kinds: frozenset[str],
        flt: EventFilter,
        max_queue: int,
        block_tx_ids: bool = False,
    ) -> None:
        self.id = sid
        self.kinds = kinds
        self.filter = flt
        self.max_queue = max_queue
        self.block_tx_ids = block_tx_ids
        """Whether ``block`` events keep their ``tx_ids``."""
        self.resume_height: int | None = None
        """After an overflow: the height to resubscribe from."""
        self._hub = hub
        self._items: deque[Event] = deque()
        self._final: Event | None = None
        self._closed = False
        self._wakeup = asyncio.Event()

    @property
    def closed(self) -> bool:
        """Whether the subscription has ended (closed, or overflowed)."""
        return self._closed

    def matches(self, event: Event) -> bool:
        """Whether this subscription wants ``event``."""
        return event.get("type") in self.kinds and self.filter.matches(event)

    def shape(self, event: Event) -> Event:
        """``event`` as this subscription gets it (see :func:`shaped`)."""
        return shaped(event, self.block_tx_ids)

    def _offer(self, event: Event) -> None:
        if self._closed:
            return
        event = self.shape(event)
        if len(self._items) >= self.max_queue:
            oldest = self._items[0] if self._items else event
            height = int(oldest.get("height", 0))
            self.resume_height = height
            self._items.clear()
            self._final = {
                "type": "error",
                "reason": f"subscription overflowed; resubscribe from height {height}",
                "resume_height": height,
            }
            self._end()
            return
        self._items.append(event)
        self._wakeup.set()

    def _end(self) -> None:
        self._closed = True
        self._hub._forget(self)
        self._wakeup.set()

    def close(self) -> None:
        """End the subscription (queued events are dropped)."""
        self._items.clear()
        self._end()

    def pending(self) -> int:
        """Events queued and not read yet."""
        return len(self._items) + (self._final is not None)

    def get_nowait(self) -> Event | None:
        """The next event, or ``None`` when none is queued (or the subscription ended)."""
        if self._items:
            return self._items.popleft()
        if self._final is not None:
            final, self._final = self._final, None
            return final
        return None

    async def get(self) -> Event:
        """The next event, waiting for one; ``StopAsyncIteration`` when the subscription ended."""
        while True:
            event = self.get_nowait()
            if event is not None:
                return event
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()


class EventHub:
    """Fans committed-chain events out to subscriptions; :meth:`publish` never blocks.

    Parameters
    ----------
    max_subscriptions : int
        Live subscriptions allowed at once, all clients together.

    Notes
    -----
    Not thread-safe: publish and subscribe from the node's event loop (the host and the
    API share it).
    """

    def __init__(self, max_subscriptions: int = MAX_SUBSCRIPTIONS) -> None:
        self.max_subscriptions = max_subscriptions
        self._subs: dict[int, Subscription] = {}
        self._next_id = 0
        self._listeners: list[Callable[[Event], None]] = []
        self.published = 0
        """Events published so far."""
        self.overflows = 0
        """Subscriptions ended because their client fell behind."""
        self.last_height = 0
        """Height of the newest event published."""

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(
        self,
        kinds: Iterable[str] | None,
        filter: Any = None,
        max_queue: int = MAX_QUEUE,
        block_tx_ids: bool = False,
    ) -> Subscription:
        """A new subscription to ``kinds`` (all when ``None``) whose ``tx`` events pass ``filter``.

        Parameters
        ----------
        kinds : iterable of str or None
            Among :data:`EVENT_KINDS`.
        filter : dict or EventFilter, optional
            See :meth:`EventFilter.from_dict`.
        max_queue : int
            Events queued before the subscription overflows (1 to :data:`MAX_QUEUE`).
        block_tx_ids : bool
            Whether ``block`` events carry the ids of the block's transactions (needs the
            ``block`` kind).

        Raises
        ------
        SubscriptionError
            Bad kinds, filter, queue size or ``block_tx_ids``, or the hub's subscription
            limit reached.
        """
        chosen = parse_kinds(kinds)
        flt = filter if isinstance(filter, EventFilter) else EventFilter.from_dict(filter)
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or not 1 <= max_queue <= MAX_QUEUE:
            raise SubscriptionError(f"max_queue must be 1..{MAX_QUEUE}")
        if not isinstance(block_tx_ids, bool):
            raise SubscriptionError("block_tx_ids is true or false")
        if block_tx_ids and "block" not in chosen:
            raise SubscriptionError("block_tx_ids needs the 'block' event kind")
        if len(self._subs) >= self.max_subscriptions:
            raise SubscriptionError(
                f"the node serves {self.max_subscriptions} subscriptions already; retry later"
            )
        self._next_id += 1
        sub = Subscription(self, self._next_id, chosen, flt, max_queue, block_tx_ids)
        self._subs[sub.id] = sub
        return sub

    def _forget(self, sub: Subscription) -> None:
        if self._subs.pop(sub.id, None) is not None and sub.resume_height is not None:
            self.overflows += 1

    def wants(self, kind: str) -> bool:
        """Whether a live subscription asks for events of ``kind``: a publisher need not
        build events nobody gets (listeners see ``block`` and ``validators`` events, and
        ``tx`` events only when some subscription wants them)."""
        return any(kind in sub.kinds for sub in self._subs.values())

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener(event)`` for every event published (it must not block)."""
        self._listeners.append(listener)

    def publish(self, event: Event) -> None:
        """Give ``event`` to every subscription that wants it; never blocks."""
        self.published += 1
        height = event.get("height")
        if isinstance(height, int) and height > self.last_height:
            self.last_height = height
        for sub in list(self._subs.values()):
            if sub.matches(event):
                sub._offer(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the host's commit path
                log.exception("event listener failed")

    def publish_all(self, events: Iterable[Event]) -> None:
        """:meth:`publish` each of ``events`` in order."""
        for event in events:
            self.publish(event)
