"""Work a replica does once instead of several times: admission without the contract's
apply, the proposer's execution finished from the payload it built, the transaction root
remembered — each checked against the full path it replaces."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from chain.consensus.core import BlockDraft
from chain.contracts.anchor import AnchorContract, anchor_key
from chain.contracts.base import TxContext
from chain.executor import Executor, default_registry
from chain.merkle import merkle_root
from chain.replica import Replica
from chain.state import Overlay
from chain.types import Role, Transaction, ValidationError

from .ledger_fixtures import Consortium, Member, consortium


def _anchor(m: Member, i: int, ts: int = 1000) -> bytes:
    return m.tx("anchor", {"digest": i.to_bytes(32, "big"), "kind": "t"}, timestamp_ms=ts).to_bytes()


def _replica(c: Consortium, path: Path, registry: Any = None) -> Replica:
    return Replica(c.genesis, path, c.nodes[0].key, registry=registry)


def _draft(r: Replica, payload: list[bytes], ts: int) -> BlockDraft:
    return BlockDraft(r.app.head_block, 1, ts, r.node_id, tuple(payload), (), 0)


class _Refusing:
    """A contract whose apply refuses every transaction (its checks pass)."""

    type_name: ClassVar[str] = "refusing"
    permitted_roles: ClassVar[frozenset[Role]] = frozenset(Role)

    def check_payload(self, payload: dict[str, Any]) -> None:
        return None

    def authorize(self, ctx: TxContext, payload: dict[str, Any], state: Overlay) -> None:
        return None

    def apply(self, state: Overlay, ctx: TxContext, payload: dict[str, Any]) -> dict[str, Any]:
        raise ValidationError("refused in apply")


class _RefusingButDeclaredNot(_Refusing):
    type_name: ClassVar[str] = "refusing.declared"
    apply_never_refuses: ClassVar[bool] = True


def test_admission_still_refuses_everything_a_block_refuses(tmp_path: Path) -> None:
    c = consortium()
    r = _replica(c, tmp_path / "n.db")
    m = c.media
    good = _anchor(m, 1)
    assert r.app.submit(good) == Transaction.from_bytes(good).tx_id
    # admission wrote nothing to the committed state (it never did; now it does not even
    # build the record)
    assert r.app.state.get(anchor_key((1).to_bytes(32, "big"))) is None
    # a forged signature: the payload changed after signing
    tx = Transaction.from_bytes(_anchor(m, 2))
    forged = replace(tx, payload={"digest": b"x" * 32, "kind": "t"})
    with pytest.raises(ValidationError, match="signature"):
        r.app.submit(forged.to_bytes())
    m.nonce -= 1
    # a bad payload (checked by the contract's check_payload)
    bad = m.tx("anchor", {"digest": b"short", "kind": "t"}).to_bytes()
    with pytest.raises(ValidationError, match="digest"):
        r.app.submit(bad)
    m.nonce -= 1
    # a replayed nonce
    with pytest.raises(ValidationError):
        r.app.submit(_anchor(Member(m.key, m.cert), 9))  # nonce 1 again
    # a stranger's certificate
    stranger = c.new_member("stranger", [Role.MEDIA_CENTER])
    with pytest.raises(ValidationError, match="not registered"):
        r.app.submit(_anchor(stranger, 1))
    # a role that may not anchor
    obs = c.new_member("observer", [Role.OBSERVER_NODE])
    genesis = replace(c.genesis, certificates=(*c.genesis.certificates, obs.cert))
    r2 = Replica(genesis, tmp_path / "n2.db", c.nodes[0].key)
    with pytest.raises(ValidationError, match="may not send"):
        r2.app.submit(_anchor(obs, 1))
    r.close()
    r2.close()


def test_only_a_contract_that_declares_it_skips_apply_at_admission(tmp_path: Path) -> None:
    c = consortium()
    reg = default_registry(c.genesis)
    reg.register(_Refusing())
    reg.register(_RefusingButDeclaredNot())
    r = _replica(c, tmp_path / "n.db", reg)
    m = c.media
    with pytest.raises(ValidationError, match="refused in apply"):
        r.app.submit(m.tx("refusing", {}).to_bytes())
    m.nonce -= 1
    # declared (wrongly, here) never to refuse: admitted, and the block builder, which
    # applies everything, drops it from the mempool
    raw = m.tx("refusing.declared", {}).to_bytes()
    r.app.submit(raw)
    assert len(r.app.mempool) == 1
    assert r.app.build_payload(r.app.head_block, 2000, 100, 1 << 20) == []
    assert len(r.app.mempool) == 0


def _count_executions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count full block executions (:meth:`Executor.execute`) from now on."""
    runs: list[int] = []
    full = Executor.execute

    def counted(self: Executor, *args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return full(self, *args, **kwargs)

    monkeypatch.setattr(Executor, "execute", counted)
    return runs


def _filled(c: Consortium, path: Path, n: int) -> tuple[Replica, list[bytes]]:
    r = _replica(c, path)
    for raw in (raws := [_anchor(c.media, i) for i in range(n)]):
        r.app.submit(raw)
    return r, raws


def test_the_proposer_finishes_its_built_block_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = consortium()
    leader, raws = _filled(c, tmp_path / "leader.db", 30)
    follower = _replica(c, tmp_path / "follower.db")
    for raw in raws:
        follower.app.submit(raw)
    payload = leader.app.build_payload(leader.app.head_block, 2000, 100, 1 << 20)
    assert payload == raws
    runs = _count_executions(monkeypatch)
    root = leader.app.execute(_draft(leader, payload, 2000))
    assert runs == []  # finished from the build, not executed again
    assert follower.app.execute(_draft(follower, payload, 2000)) == root
    assert runs == [1]
    a = next(iter(leader.app._spec.values())).execution
    b = next(iter(follower.app._spec.values())).execution
    assert (a.changes, a.results, a.state_root) == (b.changes, b.results, b.state_root)
    leader.close()
    follower.close()


@pytest.mark.parametrize("change", ["timestamp", "payload", "commit between"])
def test_a_draft_other_than_the_built_one_is_executed_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    c = consortium()
    leader, raws = _filled(c, tmp_path / "leader.db", 10)
    payload = leader.app.build_payload(leader.app.head_block, 2000, 100, 1 << 20)
    ts = 2000
    if change == "timestamp":
        ts = 2001
    elif change == "payload":
        payload = payload[:5]
    else:
        leader.app.on_commit(leader.app.head_block)  # a commit resets what was built
    runs = _count_executions(monkeypatch)
    root = leader.app.execute(_draft(leader, payload, ts))
    assert runs == [1]
    fresh = _replica(c, tmp_path / "fresh.db")
    for raw in raws:
        fresh.app.submit(raw)
    assert fresh.app.execute(_draft(fresh, payload, ts)) == root
    leader.close()
    fresh.close()


def test_the_remembered_transaction_root_follows_the_payload(tmp_path: Path) -> None:
    c = consortium()
    r, raws = _filled(c, tmp_path / "n.db", 6)
    assert r.app.tx_root(raws) == merkle_root(raws)
    assert r.app.tx_root(tuple(raws)) == merkle_root(raws)
    assert r.app.tx_root(raws[:3]) == merkle_root(raws[:3])
    swapped = [raws[1], raws[0], *raws[2:]]
    assert r.app.tx_root(swapped) == merkle_root(swapped)
    copies = [bytes(bytearray(x)) for x in swapped]  # equal, not the same objects
    assert r.app.tx_root(copies) == merkle_root(swapped)
    assert r.app.tx_root([]) == merkle_root([])
    r.close()


def test_anchor_declares_its_apply_never_refuses() -> None:
    assert AnchorContract.apply_never_refuses is True
