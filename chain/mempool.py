"""A bounded mempool: pending transactions indexed by id and by sender → nonce.

What a node keeps between admitting a transaction (:meth:`chain.replica.LedgerApp.submit`)
and committing it. Everything here is bookkeeping over already-validated entries; the
checks against the state (certificate, nonce, signature, contract) stay in the executor.

Indexes
-------
* by transaction id (de-duplication: the same bytes gossiped twice are one entry);
* by sender, then nonce (a sorted list of the pending nonces per sender): a block's commit
  removes its transactions and then, for each sender it touched, every pending entry whose
  nonce is now used — ``O(txs in the block + those senders' removed entries)``, never a scan
  of the pool (CometBFT's recheck-on-commit rechecks the whole pool and stalls a lagging
  node);
* each entry keeps its decoded metadata (sender, nonce, size), so building a proposal never
  decodes the pool.

Limits (:class:`MempoolConfig`): a number of transactions, a total of bytes and a number of
transactions per sender; at most one pending transaction per ``(sender, nonce)``.

When full
---------
A full pool makes room for a newcomer only at the expense of the sender with the most
pending transactions, and only if that sender keeps at least as many as the newcomer's
sender will have: its **newest** (highest-nonce) entries are evicted, so what remains of
it is still a run of consecutive nonces that can commit. A sender never loses a transaction
to its own later one, and two senders cannot evict each other back and forth. Otherwise the
newcomer is refused with ``ValidationError("the mempool is full ...")``: the client retries
later. Evicted transactions are forgotten (not remembered as seen), so they may be sent
again.

Proposal order
--------------
:meth:`Mempool.cursor` yields entries round-robin over senders — every sender's next
transaction before anyone's second — in nonce order within a sender, starting at the nonce
the sender needs next and stopping at a gap. Senders whose transactions were committed move
to the back, so the order rotates from block to block. Cost: ``O(entries looked at)``.

Seen cache
----------
Ids of recently committed transactions are remembered (a bounded LRU map, with the reason
to give), so a late gossip copy is refused without decoding or a database lookup.

Examples
--------
>>> pool = Mempool(MempoolConfig(max_txs=2, max_bytes=1 << 20, max_per_sender=2))
>>> _ = pool.add(MempoolEntry(b"a" * 32, b"tx-a1", b"alice", 1))
>>> _ = pool.add(MempoolEntry(b"b" * 32, b"tx-a2", b"alice", 2))
>>> [e.nonce for e in pool.add(MempoolEntry(b"c" * 32, b"tx-b1", b"bob", 1))]  # evicts alice's newest
[2]
>>> pool.reap(10, 1 << 20)
[b'tx-a1', b'tx-b1']
>>> pool.remove_committed([(b"a" * 32, b"alice", 1)], lambda sender: 2)
1
>>> pool.refusal(b"a" * 32)
'transaction is already committed'
>>> pool.stats().count
1
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from chain.errors import ValidationError

DEFAULT_MAX_TXS = 100_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_PER_SENDER = 10_000
DEFAULT_SEEN_CACHE = 50_000
"""Committed ids remembered (about 140 bytes each): a copy arriving later is still refused,
by the store's index of transactions instead."""
COMMITTED = "transaction is already committed"
"""The refusal given for a transaction the node has committed."""


@dataclass(frozen=True)
class MempoolConfig:
    """Limits of a :class:`Mempool` (``[mempool]`` in a node's configuration).

    Parameters
    ----------
    max_txs : int
        Pending transactions at most.
    max_bytes : int
        Total size of the pending transactions at most.
    max_per_sender : int
        Pending transactions of one sender at most.
    seen_cache : int
        Committed transaction ids remembered, so gossip does not re-admit them.

    Examples
    --------
    >>> MempoolConfig().max_per_sender
    10000
    >>> MempoolConfig(max_txs=0)
    Traceback (most recent call last):
    ...
    chain.errors.ValidationError: mempool limit max_txs must be a positive integer, not 0
    """

    max_txs: int = DEFAULT_MAX_TXS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_per_sender: int = DEFAULT_MAX_PER_SENDER
    seen_cache: int = DEFAULT_SEEN_CACHE

    def __post_init__(self) -> None:
        for name in ("max_txs", "max_bytes", "max_per_sender", "seen_cache"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(f"mempool limit {name} must be a positive integer, not {value!r}")


@dataclass(frozen=True, slots=True)
class MempoolEntry:
    """A pending transaction with the metadata the pool orders it by."""

    tx_id: bytes
    raw: bytes
    sender: bytes
    nonce: int

    @property
    def size(self) -> int:
        """Encoded size in bytes."""
        return len(self.raw)


@dataclass(frozen=True)
class MempoolStats:
    """What a pool holds (for metrics and ``/status``)."""

    count: int
    bytes: int
    senders: int
    seen: int
    evicted: int
    """Entries evicted to make room for other senders since the pool was made."""
    refused_full: int
    """Transactions refused because the pool was full since the pool was made."""

    def to_dict(self) -> dict[str, int]:
        """JSON-friendly form."""
        return {
            "count": self.count,
            "bytes": self.bytes,
            "senders": self.senders,
            "seen": self.seen,
            "evicted": self.evicted,
            "refused_full": self.refused_full,
        }


class _Queue:
    """One sender's pending entries: their nonces sorted, and the entries by nonce."""

    __slots__ = ("entries", "nonces")

    def __init__(self) -> None:
        self.nonces: list[int] = []
        self.entries: dict[int, MempoolEntry] = {}


class Mempool:
    """Pending transactions with de-duplication, limits and a sender → nonce index.

    Parameters
    ----------
    config : MempoolConfig, optional
        Limits (defaults: 100,000 transactions, 256 MiB, 10,000 per sender).

    Examples
    --------
    >>> pool = Mempool()
    >>> _ = pool.add(MempoolEntry(b"i" * 32, b"raw", b"sender", 1))
    >>> b"i" * 32 in pool, len(pool), pool.total_bytes
    (True, 1, 3)
    """

    def __init__(self, config: MempoolConfig | None = None) -> None:
        self.config = config or MempoolConfig()
        self._by_id: dict[bytes, MempoolEntry] = {}
        self._queues: dict[bytes, _Queue] = {}  # insertion order = proposal order of senders
        self._by_count: dict[int, dict[bytes, None]] = {}  # pending count -> senders
        self._bytes = 0
        self._seen: OrderedDict[bytes, str] = OrderedDict()
        self._evicted = 0
        self._refused_full = 0

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._by_id

    def __iter__(self) -> Iterator[MempoolEntry]:
        """Every entry, senders in proposal order, each sender's in nonce order."""
        for queue in self._queues.values():
            for nonce in queue.nonces:
                yield queue.entries[nonce]

    def get(self, tx_id: bytes) -> MempoolEntry | None:
        """The pending entry with ``tx_id``, or ``None``."""
        return self._by_id.get(tx_id)

    @property
    def total_bytes(self) -> int:
        """Total size of the pending transactions."""
        return self._bytes

    def pending(self, sender: bytes) -> int:
        """Number of pending transactions of ``sender``."""
        queue = self._queues.get(sender)
        return 0 if queue is None else len(queue.nonces)

    def stats(self) -> MempoolStats:
        """Counts for metrics.

        Examples
        --------
        >>> Mempool().stats().to_dict()["count"]
        0
        """
        return MempoolStats(
            len(self._by_id),
            self._bytes,
            len(self._queues),
            len(self._seen),
            self._evicted,
            self._refused_full,
        )

    # ------------------------------------------------------------------ seen cache
    def refusal(self, tx_id: bytes) -> str | None:
        """Why ``tx_id`` would be refused, if the pool remembers it (e.g. already committed)."""
        return self._seen.get(tx_id)

    def remember(self, tx_id: bytes, reason: str = COMMITTED) -> None:
        """Remember ``tx_id`` with the reason to refuse it again (bounded, least recent first out)."""
        self._seen[tx_id] = reason
        self._seen.move_to_end(tx_id)
        if len(self._seen) > self.config.seen_cache:
            self._seen.popitem(last=False)

    # ------------------------------------------------------------------ admission
    def check(self, sender: bytes, nonce: int, size: int) -> None:
        """Refuse, before any expensive check, what :meth:`add` would refuse.

        Raises
        ------
        ValidationError
            When ``(sender, nonce)`` is already pending, the sender is at its limit, or the
            pool is full and no other sender can give up room (see the module docstring).
        """
        self._check_sender(sender, nonce)
        self._victims(sender, size)

    def _check_sender(self, sender: bytes, nonce: int) -> None:
        queue = self._queues.get(sender)
        if queue is not None:
            other = queue.entries.get(nonce)
            if other is not None:
                raise ValidationError(
                    f"another transaction with nonce {nonce} of this sender is pending "
                    f"({other.tx_id.hex()[:16]}…); it must commit or be dropped first"
                )
            if len(queue.nonces) >= self.config.max_per_sender:
                raise ValidationError(
                    f"the sender has {len(queue.nonces)} transactions pending, the limit per sender; "
                    "wait for them to commit"
                )

    def add(self, entry: MempoolEntry) -> list[MempoolEntry]:
        """Queue ``entry`` (already validated); return the entries evicted to make room.

        Adding a pending id again changes nothing.

        Raises
        ------
        ValidationError
            As :meth:`check`.
        """
        if entry.tx_id in self._by_id:
            return []
        self._check_sender(entry.sender, entry.nonce)
        victims = self._victims(entry.sender, entry.size)
        for victim in victims:
            self._drop(victim)
        self._evicted += len(victims)
        queue = self._queues.get(entry.sender)
        if queue is None:
            queue = self._queues[entry.sender] = _Queue()
        before = len(queue.nonces)
        insort(queue.nonces, entry.nonce)
        queue.entries[entry.nonce] = entry
        self._by_id[entry.tx_id] = entry
        self._bytes += entry.size
        self._recount(entry.sender, before, before + 1)
        return victims

    def _victims(self, sender: bytes, size: int) -> list[MempoolEntry]:
        """Entries to evict so that ``size`` more bytes from ``sender`` fit; refuse if none may go."""
        need_count = len(self._by_id) + 1 - self.config.max_txs
        need_bytes = self._bytes + size - self.config.max_bytes
        if need_count <= 0 and need_bytes <= 0:
            return []
        mine = self.pending(sender) + 1
        heavy = self._heaviest(sender)
        victims: list[MempoolEntry] = []
        if heavy is not None and size <= self.config.max_bytes:
            queue = self._queues[heavy]
            for nonce in reversed(queue.nonces):
                if need_count <= 0 and need_bytes <= 0:
                    break
                if len(queue.nonces) - len(victims) - 1 < mine:
                    break
                victim = queue.entries[nonce]
                victims.append(victim)
                need_count -= 1
                need_bytes -= victim.size
        if need_count > 0 or need_bytes > 0:
            self._refused_full += 1
            raise ValidationError(
                f"the mempool is full ({len(self._by_id)} transactions, {self._bytes} bytes); retry later"
            )
        return victims

    def _heaviest(self, exclude: bytes) -> bytes | None:
        """The sender with the most pending entries other than ``exclude``."""
        counts = set(self._by_count)
        while counts:  # the top bucket, or the next one when it holds only ``exclude``
            top = max(counts)
            for sender in self._by_count[top]:
                if sender != exclude:
                    return sender
            counts.discard(top)
        return None

    def _recount(self, sender: bytes, before: int, after: int) -> None:
        if before:
            bucket = self._by_count[before]
            del bucket[sender]
            if not bucket:
                del self._by_count[before]
        if after:
            self._by_count.setdefault(after, {})[sender] = None

    # ------------------------------------------------------------------ removal
    def _drop(self, entry: MempoolEntry) -> None:
        queue = self._queues[entry.sender]
        before = len(queue.nonces)
        i = bisect_left(queue.nonces, entry.nonce)
        del queue.nonces[i]
        del queue.entries[entry.nonce]
        del self._by_id[entry.tx_id]
        self._bytes -= entry.size
        self._recount(entry.sender, before, before - 1)
        if not queue.nonces:
            del self._queues[entry.sender]

    def remove(self, tx_id: bytes) -> MempoolEntry | None:
        """Remove one pending transaction (e.g. found invalid); the removed entry or ``None``."""
        entry = self._by_id.get(tx_id)
        if entry is not None:
            self._drop(entry)
        return entry

    def remove_committed(
        self, committed: Iterable[tuple[bytes, bytes, int]], next_nonce: Callable[[bytes], int]
    ) -> int:
        """After a commit: drop its transactions and every entry whose nonce is now used.

        Parameters
        ----------
        committed : iterable of (tx_id, sender, nonce)
            The block's transactions (whether or not they were in this pool).
        next_nonce : callable
            ``sender -> the nonce it needs next`` in the newly committed state.

        Returns
        -------
        int
            Entries removed. Cost: ``O(len(committed) + removed)``; the senders touched move
            to the back of the proposal order.
        """
        removed = 0
        senders: dict[bytes, None] = {}
        for tx_id, sender, _nonce in committed:
            self.remember(tx_id, COMMITTED)
            senders[sender] = None
            if self.remove(tx_id) is not None:
                removed += 1
        for sender in senders:
            queue = self._queues.get(sender)
            if queue is None:
                continue
            cut = bisect_left(queue.nonces, next_nonce(sender))
            if cut:
                before = len(queue.nonces)
                for nonce in queue.nonces[:cut]:
                    entry = queue.entries.pop(nonce)
                    del self._by_id[entry.tx_id]
                    self._bytes -= entry.size
                del queue.nonces[:cut]
                removed += cut
                self._recount(sender, before, before - cut)
            del self._queues[sender]
            if queue.nonces:  # rotate: it had its turn in this block
                self._queues[sender] = queue
        return removed

    # ------------------------------------------------------------------ proposals
    def cursor(self, next_nonce: Callable[[bytes], int] | None = None) -> ProposalCursor:
        """Entries in proposal order (see the module docstring); the pool must not change
        while the cursor is in use.

        ``next_nonce`` (``sender -> nonce``) starts each sender at the nonce it needs next
        in the state the block extends; without it, at its lowest pending nonce.
        """
        return ProposalCursor(self._queues, next_nonce)

    def reap(
        self, max_txs: int, max_bytes: int, next_nonce: Callable[[bytes], int] | None = None
    ) -> list[bytes]:
        """Up to ``max_txs`` transactions and ``max_bytes`` bytes in proposal order (not removed).

        Examples
        --------
        >>> pool = Mempool()
        >>> for i, (s, n) in enumerate([(b"a", 1), (b"a", 2), (b"b", 1), (b"a", 4)]):
        ...     _ = pool.add(MempoolEntry(bytes([i]) * 32, b"%s%d" % (s, n), s, n))
        >>> pool.reap(10, 1000)  # round-robin over senders, stopping at a's gap before 4
        [b'a1', b'b1', b'a2']
        """
        out: list[bytes] = []
        size = 0
        for entry in self.cursor(next_nonce):
            if len(out) >= max_txs or size + entry.size > max_bytes:
                break
            out.append(entry.raw)
            size += entry.size
        return out


class _Lane:
    """A sender's run of consecutive nonces being walked by a cursor."""

    __slots__ = ("expected", "index", "queue")

    def __init__(self, queue: _Queue, index: int, expected: int) -> None:
        self.queue, self.index, self.expected = queue, index, expected


class ProposalCursor:
    """Iterator over a pool's entries in proposal order, with a way to skip a sender.

    After an entry is found invalid, :meth:`skip_sender` drops the rest of its sender's
    run for this proposal (they need it first).
    """

    def __init__(self, queues: dict[bytes, _Queue], next_nonce: Callable[[bytes], int] | None) -> None:
        self._senders = iter(queues.items())
        self._next_nonce = next_nonce
        self._active: deque[_Lane] = deque()
        self._current: _Lane | None = None

    def __iter__(self) -> ProposalCursor:
        return self

    def skip_sender(self) -> None:
        """Yield nothing more of the last entry's sender."""
        self._current = None

    def _lane(self, sender: bytes, queue: _Queue) -> _Lane | None:
        if self._next_nonce is None:
            return _Lane(queue, 0, queue.nonces[0])
        expected = self._next_nonce(sender)
        i = bisect_left(queue.nonces, expected)
        if i < len(queue.nonces) and queue.nonces[i] == expected:
            return _Lane(queue, i, expected)
        return None  # waiting for an earlier nonce (or nothing usable)

    def _fresh(self) -> _Lane | None:
        for sender, queue in self._senders:  # every sender's first before anyone's second
            lane = self._lane(sender, queue)
            if lane is not None:
                return lane
        return None

    def __next__(self) -> MempoolEntry:
        if self._current is not None:
            self._active.append(self._current)
            self._current = None
        while True:
            lane = self._fresh()
            if lane is None:
                if not self._active:
                    raise StopIteration
                lane = self._active.popleft()
            queue, i = lane.queue, lane.index
            if i < len(queue.nonces) and queue.nonces[i] == lane.expected:
                entry = queue.entries[lane.expected]
                lane.index, lane.expected = i + 1, lane.expected + 1
                self._current = lane
                return entry
