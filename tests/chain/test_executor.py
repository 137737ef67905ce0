import pytest

from chain import codec
from chain.contracts.anchor import anchor_key
from chain.contracts.membership import revoked_from, validator_set
from chain.executor import Executor, genesis_state
from chain.state import State
from chain.types import Role, ValidationError

from .ledger_fixtures import RecordingTable, consortium


def _setup(n_nodes: int = 4):
    c = consortium(n_nodes)
    return c, Executor(c.genesis), genesis_state(c.genesis)


def _commit(state: State, execution) -> None:
    state.apply(execution.changes)
    assert state.root == execution.state_root


def test_anchor_and_duplicate_returns_original() -> None:
    c, ex, state = _setup()
    digest = b"\x07" * 32
    first = ex.execute(state, [c.media.tx("anchor", {"digest": digest, "kind": "image"}).to_bytes()], 1, 10)
    _commit(state, first)
    assert first.results[0]["status"] == "anchored"
    original_tx = first.results[0]["tx_id"]
    again = ex.execute(
        state, [c.regulator.tx("anchor", {"digest": digest, "kind": "image"}).to_bytes()], 2, 20
    )
    assert again.results[0] == {"status": "already_anchored", "tx_id": original_tx, "height": 1}
    record = codec.decode(state.get(anchor_key(digest)))
    assert record["sender"] == c.media.cert.cert_id


def test_invalid_transactions_make_the_block_invalid() -> None:
    c, ex, state = _setup()
    good = c.media.tx("anchor", {"digest": b"\x01" * 32, "kind": "w"}).to_bytes()
    cases = {
        "replay": [good, good],
        "unknown contract": [c.media.tx("nope", {}).to_bytes()],
        "bad payload": [c.media.tx("anchor", {"digest": b"short", "kind": "w"}).to_bytes()],
        "extra field": [c.media.tx("anchor", {"digest": b"\x02" * 32, "kind": "w", "x": 1}).to_bytes()],
        "wrong chain": [c.media.tx("anchor", {"digest": b"\x03" * 32, "kind": "w"}, chain_id="x").to_bytes()],
        "role": [
            c.media.tx("member.revoke", {"cert_id": c.regulator.cert.cert_id, "reason": "r"}).to_bytes()
        ],
        "observer": [],
    }
    outsider = c.new_member("outsider", [Role.MEDIA_CENTER])
    cases["unregistered sender"] = [outsider.tx("anchor", {"digest": b"\x04" * 32, "kind": "w"}).to_bytes()]
    forged = bytearray(c.media.tx("anchor", {"digest": b"\x05" * 32, "kind": "w"}).to_bytes())
    forged[-5] ^= 1
    cases["forged signature"] = [bytes(forged)]
    for name, txs in cases.items():
        if not txs:
            continue
        root_before = state.root
        with pytest.raises(ValidationError):
            ex.execute(state, txs, 1, 10)
        assert state.root == root_before, name


def test_revocation_applies_from_next_height_and_changes_validators() -> None:
    c, ex, state = _setup(5)  # five validators: one may leave (never fewer than four)
    node = c.nodes[0]
    assert node.cert.cert_id in validator_set(state, 1)
    revoke = c.supervisor.tx(
        "member.revoke", {"cert_id": c.media.cert.cert_id, "reason": "licence withdrawn"}
    )
    revoke_node = c.supervisor.tx("member.revoke", {"cert_id": node.cert.cert_id, "reason": "equivocation"})
    same_block = c.media.tx("anchor", {"digest": b"\x09" * 32, "kind": "w"})
    ex_h5 = ex.execute(state, [revoke.to_bytes(), revoke_node.to_bytes(), same_block.to_bytes()], 5, 50)
    _commit(state, ex_h5)
    assert revoked_from(state, c.media.cert.cert_id) == 6
    # Validator set changes at the height boundary.
    assert node.cert.cert_id in validator_set(state, 5)
    assert node.cert.cert_id not in validator_set(state, 6)
    later = c.media.tx("anchor", {"digest": b"\x0a" * 32, "kind": "w"})
    with pytest.raises(ValidationError, match="revoked from height 6"):
        ex.execute(state, [later.to_bytes()], 6, 60)
    with pytest.raises(ValidationError, match="already revoked"):
        ex.execute(
            state,
            [c.supervisor.tx("member.revoke", {"cert_id": c.media.cert.cert_id, "reason": "x"}).to_bytes()],
            6,
            60,
        )


def test_add_member_requires_root_signed_certificate_and_supervisor() -> None:
    c, ex, state = _setup()
    newcomer = c.new_member("New copyright center", [Role.COPYRIGHT_CENTER])
    add = c.supervisor.tx("member.add", {"certificate": newcomer.cert.to_dict()})
    _commit(state, ex.execute(state, [add.to_bytes()], 1, 10))
    ok = newcomer.tx("anchor", {"digest": b"\x0b" * 32, "kind": "w"})
    ex.execute(state, [ok.to_bytes()], 2, 20)
    from chain.crypto import PrivateKey
    from chain.types import Certificate

    rogue = Certificate.issue(
        PrivateKey.generate(), "rogue", "r", [Role.SUPERVISOR], PrivateKey.generate().public_key, 0
    )
    with pytest.raises(ValidationError, match="not valid"):
        ex.execute(state, [c.supervisor.tx("member.add", {"certificate": rogue.to_dict()}).to_bytes()], 2, 20)
    other = c.new_member("x", [Role.MEDIA_CENTER])
    with pytest.raises(ValidationError, match="may not send"):
        ex.execute(state, [c.media.tx("member.add", {"certificate": other.cert.to_dict()}).to_bytes()], 2, 20)


def test_select_skips_invalid_and_respects_limits() -> None:
    c, ex, state = _setup()
    good = [c.media.tx("anchor", {"digest": bytes([i]) * 32, "kind": "w"}).to_bytes() for i in range(5)]
    bad = c.regulator.tx("anchor", {"digest": b"x", "kind": "w"}).to_bytes()
    chosen, rejected = ex.select(state, [good[0], bad, *good[1:]], 1, 10, max_txs=3, max_bytes=1 << 20)
    assert chosen == good[:3]
    assert len(rejected) == 1 and "digest" in rejected[0][1]
    ex.execute(state, chosen, 1, 10)


def test_nonces_are_strictly_sequential() -> None:
    from chain.executor import NonceGapError, next_nonce

    c, ex, state = _setup()
    first = c.media.tx("anchor", {"digest": b"\x01" * 32, "kind": "w"})
    second = c.media.tx("anchor", {"digest": b"\x02" * 32, "kind": "w"})
    with pytest.raises(ValidationError, match="ahead"):  # the second cannot overtake the first
        ex.execute(state, [second.to_bytes()], 1, 10)
    with pytest.raises(NonceGapError) as e:
        ex.apply_one(state.overlay(), second.to_bytes(), 1, 10)
    assert e.value.expected == 1
    chosen, rejected = ex.select(state, [second.to_bytes(), first.to_bytes()], 1, 10, 10, 1 << 20)
    assert chosen == [first.to_bytes()] and len(rejected) == 1
    _commit(state, ex.execute(state, [first.to_bytes(), second.to_bytes()], 1, 10))
    assert next_nonce(state, c.media.cert.cert_id) == 3
    with pytest.raises(ValidationError, match="already used"):
        ex.execute(state, [first.to_bytes()], 2, 20)


def test_committed_transactions_leave_the_caches_and_replays_still_fail() -> None:
    c, ex, state = _setup()
    raws = [c.media.tx("anchor", {"digest": bytes([i]) * 32, "kind": "w"}).to_bytes() for i in range(3)]
    ids = [ex.decode(r).tx_id for r in raws]
    _commit(state, ex.execute(state, raws, 1, 10))
    assert all(ex.is_verified(i) for i in ids) and ex.verifications == 3
    ex._decoded.pop(raws[0])  # evicted before the commit: not hashed again, left to age out
    ex.forget(raws)
    assert not any(ex.is_verified(i) for i in ids[1:]) and not ex._decoded
    assert len(ex._verified) <= ex.verified_cache
    with pytest.raises(ValidationError, match="already used"):
        ex.execute(state, raws[:1], 2, 20)  # the nonce refuses a replay, cache or not


def test_tx_id_of_raw_bytes_is_the_decoded_id_cached_or_not() -> None:
    c, ex, _ = _setup()
    raw = c.media.tx("anchor", {"digest": b"\x09" * 32, "kind": "image"}).to_bytes()
    from_bytes = ex.tx_id_of(raw)  # not decoded yet: the SM3 of the bytes
    assert from_bytes == ex.decode(raw).tx_id == ex.tx_id_of(raw)
    ex.forget([raw])
    assert ex.tx_id_of(raw) == from_bytes
    assert ex.tx_id_of(raw + b"\x00") != from_bytes  # other bytes, another id (never a decoded one)


def test_a_block_has_its_anchor_keys_read_ahead_at_once_and_bad_ones_skipped() -> None:
    c, ex, plain = _setup()
    table = RecordingTable(plain.entries())
    state = State(table=table)
    digests = [bytes([i]) * 32 for i in range(1, 4)]
    txs = [c.media.tx("anchor", {"digest": d, "kind": "w"}).to_bytes() for d in digests]
    execution = ex.execute(state, txs, 1, 10)
    assert table.asked == [[anchor_key(d) for d in digests]]
    assert execution.state_root == ex.execute(plain, txs, 1, 10).state_root
    chosen, _ = ex.select(state, txs, 1, 10, max_txs=2, max_bytes=1 << 20)
    assert table.asked[-1] == [anchor_key(d) for d in digests[:2]] and chosen == txs[:2]
    # undecodable bytes, an unknown type, a digest that is not bytes: nothing to read ahead,
    # and each is still refused with its own reason when its turn comes
    odd = [b"\xff not a transaction", c.regulator.tx("nope", {}).to_bytes()]
    c.regulator.nonce = 0  # (the first was never committed)
    odd.append(c.regulator.tx("anchor", {"digest": "text", "kind": "w"}).to_bytes())
    for raw, reason in zip(odd, ("canonically encoded", "no contract", "digest"), strict=True):
        table.asked.clear()
        with pytest.raises(ValidationError, match=reason):
            ex.execute(state, [raw], 1, 10)
        assert table.asked == []


def test_a_contracts_failing_or_odd_reads_only_goes_without_reading_ahead() -> None:
    from chain.contracts.base import TxContext
    from chain.executor import default_registry

    class Noted:
        type_name = "noted"
        permitted_roles = frozenset(Role)

        def __init__(self, reads) -> None:  # type: ignore[no-untyped-def]
            self.reads = reads

        def check_payload(self, payload: dict) -> None:
            return None

        def authorize(self, ctx: TxContext, payload: dict, state) -> None:  # type: ignore[no-untyped-def]
            return None

        def apply(self, state, ctx: TxContext, payload: dict) -> dict:  # type: ignore[no-untyped-def]
            state.set(b"noted/" + ctx.tx_id, b"1")
            return {"seen": state.get(b"k")}

    def boom(payload: dict) -> list[bytes]:
        raise RuntimeError("a contract's bug")

    c, _, plain = _setup()
    for reads, asked in ((boom, []), (lambda p: ["text", b"k", 7], [[b"k"]])):
        registry = default_registry(c.genesis)
        registry.register(Noted(reads))
        ex = Executor(c.genesis, registry)
        table = RecordingTable({**plain.entries(), b"k": b"v"})
        execution = ex.execute(State(table=table), [c.media.tx("noted", {}).to_bytes()], 1, 10)
        c.media.nonce = 0
        assert execution.results == [{"seen": b"v"}] and table.asked == asked
