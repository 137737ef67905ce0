"""Transaction load for end-to-end runs: members, pre-signed anchors, client threads.

Every client is a member of the consortium with its own key (certified by the root and
admitted with ``member.add`` before the load starts) and a list of anchor transactions
signed in advance with consecutive nonces. A :class:`LoadClient` thread sends them at its
share of the rate through :class:`~chain.client.NodeClient` (signed API requests), to one
node at a time, moving on to the next node when one does not answer. Most transactions
are sent in ``sync`` mode (admitted to the mempool); every ``commit_every``-th is then
sent again in ``commit`` mode by a helper thread (the node answers once it is committed,
with the height), so that waiting for commits never holds back the load.

A node may lose a transaction it admitted (SIGKILL before gossip), and a sender's later
nonces then wait behind the gap. So each client watches its sender's committed nonce
(``GET /accounts/{cert_id}``) and, when it has not moved for :data:`STUCK_S` seconds,
sends the waiting transactions again — the same bytes, so the same transaction ids — to
another node. After the load it keeps doing so (``drain``) until every nonce it sent is
committed or the drain time is over.

With ``conflicts``, two clients share one sender and sign every nonce each with a
different digest: exactly one of each pair may commit.

Examples
--------
>>> from chain.crypto import PrivateKey
>>> root = PrivateKey.generate()
>>> members = make_members(root, 2, "e2e")
>>> [m.name for m in members], members[0].cert.roles[0].value
(['e2e-client-0', 'e2e-client-1'], 'media_center')
>>> txs = presign(members[0], 3, "chain-x", "e2e")
>>> [t.nonce for t in txs], len(txs[0].tx_id)
([1, 2, 3], 32)
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chain.client import NodeClient
from chain.client.common import anchor_payload
from chain.crypto import PrivateKey
from chain.errors import ClientError, CommitTimeout
from chain.types import Certificate, Genesis, Role, Transaction
from rongxin.ops.build import CLOCK_SKEW_MS

STUCK_S = 3.0
"""A sender's committed nonce that has not moved this long, with transactions outstanding,
makes its client send them again (to another node)."""
RESEND = 64
"""Transactions sent again at once, from the first uncommitted nonce."""
WINDOW = 400
"""Transactions a client may have outstanding (sent, not known committed)."""
REQUEST_TIMEOUT_S = 4.0
COMMIT_WAIT_S = 3.0
COMMITTERS = 2
"""Threads per client that send transactions again in ``commit`` mode."""


@dataclass(frozen=True)
class Member:
    """A load client's identity: a key and its root-signed certificate."""

    name: str
    key: PrivateKey
    cert: Certificate


@dataclass(frozen=True)
class SignedTx:
    """A pre-signed transaction."""

    nonce: int
    raw: bytes
    tx_id: bytes


def make_members(root: PrivateKey, count: int, prefix: str) -> list[Member]:
    """``count`` members certified by ``root`` as media centres (they may anchor)."""
    not_before = int(time.time() * 1000) - CLOCK_SKEW_MS
    out = []
    for i in range(count):
        key = PrivateKey.generate()
        name = f"{prefix}-client-{i}"
        cert = Certificate.issue(root, name, "e2e load", [Role.MEDIA_CENTER], key.public_key, not_before)
        out.append(Member(name, key, cert))
    return out


def presign(member: Member, count: int, chain_id: str, tag: str, first_nonce: int = 1) -> list[SignedTx]:
    """``count`` anchor transactions of ``member`` with nonces from ``first_nonce``; each
    anchors a digest unique to ``tag``, the member and the nonce."""
    now = int(time.time() * 1000)
    out = []
    for nonce in range(first_nonce, first_nonce + count):
        digest = hashlib.sha256(f"{tag}/{member.name}/{nonce}".encode()).digest()
        tx = Transaction.create(
            member.key, member.cert.cert_id, "anchor", anchor_payload(digest, "e2e"), nonce, now, chain_id
        )
        out.append(SignedTx(nonce, tx.to_bytes(), tx.tx_id))
    return out


def register_members(client: NodeClient, members: Sequence[Member], timeout_s: float = 30.0) -> int:
    """Admit ``members`` with ``member.add`` transactions of ``client``'s member (the
    supervisor), sent together; the height by which all are committed."""
    nonce = client.account().get("pending_nonce")
    if not isinstance(nonce, int):
        raise ClientError("the node's account answer has no nonce")
    ids = []
    for i, m in enumerate(members):
        tx = Transaction.create(
            client.key,
            client.cert.cert_id,
            "member.add",
            {"certificate": m.cert.to_dict()},
            nonce + i,
            int(time.time() * 1000),
            client.genesis.chain_id,
        )
        ids.append(client.submit(tx.to_bytes(), "sync"))
    return max((client.wait(tx_id, timeout_s) for tx_id in ids), default=0)


@dataclass
class Acks:
    """What the API acknowledged, shared by the client threads (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    """Every transaction sent at least once: id → (client, nonce)."""
    accepted: set[bytes] = field(default_factory=set)
    """Admitted to a mempool (``sync`` answered ``accepted``, or ``commit`` timed out)."""
    committed: dict[bytes, int] = field(default_factory=dict)
    """The API said committed, at this height."""
    refused: Counter[str] = field(default_factory=Counter)
    unreachable: int = 0
    resent: int = 0

    def record(self, tx: SignedTx, client: str, answer: dict[str, Any] | None, refusal: str | None) -> None:
        """Remember one answer (``refusal`` for a 4xx)."""
        with self.lock:
            self.sent.setdefault(tx.tx_id, (client, tx.nonce))
            if refusal is not None:
                self.refused[re.sub(r"\d+", "N", refusal.split(";")[0])[:80]] += 1
            elif answer is not None and answer.get("status") == "committed":
                height = answer.get("height")
                if isinstance(height, int):
                    self.committed[tx.tx_id] = height
            else:
                self.accepted.add(tx.tx_id)


class _Sender:
    """Signed requests to one node at a time, moving on when a node does not answer."""

    def __init__(self, member: Member, urls: Sequence[str], genesis: Genesis, acks: Acks, name: str) -> None:
        self.clients = [
            NodeClient(u, member.key, member.cert, genesis, timeout_s=REQUEST_TIMEOUT_S, retries=0)
            for u in urls
        ]
        self.current = 0
        self.acks = acks
        self.name = name

    def rotate(self) -> None:
        self.current = (self.current + 1) % len(self.clients)

    def send(self, tx: SignedTx, mode: str) -> bool:
        """Send ``tx``; whether a node answered (a refusal counts as an answer)."""
        body = {"tx": tx.raw.hex(), "mode": mode, "timeout_s": COMMIT_WAIT_S}
        try:
            answer = self.clients[self.current].request("POST", "/txs", body)
        except CommitTimeout:  # admitted, not committed within the wait
            self.acks.record(tx, self.name, {"status": "accepted"}, None)
            return True
        except ClientError as exc:
            if 400 <= exc.status < 500:
                self.acks.record(tx, self.name, None, exc.reason)
                return True
            with self.acks.lock:
                self.acks.unreachable += 1
            self.rotate()
            return False
        self.acks.record(tx, self.name, answer, None)
        return True

    def committed_nonce(self) -> int | None:
        """The sender's last committed nonce, as the current node says; ``None`` if it does not."""
        try:
            doc = self.clients[self.current].account()
        except ClientError:
            self.rotate()
            return None
        return int(doc.get("next_nonce", 1)) - 1

    def close(self) -> None:
        for c in self.clients:
            c.close()


class LoadClient(threading.Thread):
    """One client: sends its transactions at ``rate`` per second, then drains.

    Parameters
    ----------
    member : Member
        The sender.
    txs : sequence of SignedTx
        Its pre-signed transactions, nonces consecutive from 1.
    urls : sequence of str
        Node APIs, the first one preferred.
    genesis : Genesis
        The chain's genesis.
    rate : float
        Transactions per second.
    commit_every : int
        Every n-th transaction in ``commit`` mode (0: none).
    acks : Acks
        Where answers are recorded.
    """

    def __init__(
        self,
        member: Member,
        txs: Sequence[SignedTx],
        urls: Sequence[str],
        genesis: Genesis,
        rate: float,
        commit_every: int,
        acks: Acks,
        *,
        name: str,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.member = member
        self.txs = list(txs)
        self.rate = rate
        self.commit_every = commit_every
        self.acks = acks
        self.sender = _Sender(member, urls, genesis, acks, name)
        self.committers = [
            _Sender(member, list(urls)[k % len(urls) :] + list(urls)[: k % len(urls)], genesis, acks, name)
            for k in range(1, COMMITTERS + 1)
        ]
        self.commits: queue.Queue[SignedTx | None] = queue.Queue()
        self.stop_load = threading.Event()
        self.stop_drain = threading.Event()
        self.sent_upto = 0
        """Highest nonce sent so far."""
        self.committed_upto = 0
        """Highest nonce of the sender known committed (from its account's next nonce)."""
        self._last_move = now()
        self._last_check = 0.0
        self._now = now
        self.drained = False
        self.error: BaseException | None = None

    def _check(self, force: bool = False) -> None:
        """Learn the committed nonce; send stuck transactions again."""
        now = self._now()
        if not force and now - self._last_check < 1.0:
            return
        self._last_check = now
        committed = self.sender.committed_nonce()
        if committed is None:
            return
        if committed > self.committed_upto:
            self.committed_upto = committed
            self._last_move = now
        if self.committed_upto >= self.sent_upto:
            self._last_move = now
            return
        if now - self._last_move >= STUCK_S:
            self.sender.rotate()
            first = self.committed_upto  # the index of nonce committed_upto + 1
            for tx in self.txs[first : min(first + RESEND, self.sent_upto)]:
                if not self.sender.send(tx, "sync"):
                    break
                with self.acks.lock:
                    self.acks.resent += 1
            self._last_move = now

    def run(self) -> None:
        committers = [
            threading.Thread(target=self._commit_loop, args=(c,), name=f"{self.name}-commit-{k}", daemon=True)
            for k, c in enumerate(self.committers)
        ]
        for t in committers:
            t.start()
        try:
            self._load()
            self._drain()
        except BaseException as exc:  # reported by the runner
            self.error = exc
        finally:
            for _ in committers:
                self.commits.put(None)
            for t in committers:
                t.join(REQUEST_TIMEOUT_S + 1.0)
            self.sender.close()
            for c in self.committers:
                c.close()

    def _commit_loop(self, sender: _Sender) -> None:
        """Send again, in ``commit`` mode, transactions already admitted: the answer says
        at which height each committed."""
        while (tx := self.commits.get()) is not None:
            for _ in range(len(sender.clients)):
                if self.stop_drain.is_set() or sender.send(tx, "commit"):
                    break

    def _load(self) -> None:
        start = self._now()
        i = 0
        while i < len(self.txs) and not self.stop_load.is_set():
            due = start + i / self.rate if self.rate > 0 else start
            wait = due - self._now()
            if wait > 0 and self.stop_load.wait(min(wait, 0.5)):
                break
            if wait > 0.5:
                continue
            self._check()
            if self.sent_upto - self.committed_upto >= WINDOW:
                self.stop_load.wait(0.2)
                continue
            tx = self.txs[i]
            if not self.sender.send(tx, "sync"):
                continue
            if self.commit_every and (i + 1) % self.commit_every == 0:
                self.commits.put(tx)
            self.sent_upto = max(self.sent_upto, tx.nonce)
            i += 1

    def _drain(self) -> None:
        while not self.stop_drain.is_set():
            self._check(force=True)
            if self.committed_upto >= self.sent_upto:
                self.drained = True
                return
            self.stop_drain.wait(0.5)


__all__ = [
    "Acks",
    "LoadClient",
    "Member",
    "SignedTx",
    "make_members",
    "presign",
    "register_members",
]
