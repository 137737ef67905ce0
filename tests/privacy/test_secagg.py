"""The regulator learns only the answer: secure aggregation, authenticated requesters, replay
protection, minimum participants, dropouts — and the three attacks that worked against the
previous protocol (per-agency values decrypted by the regulator, a one-agency query
answered, the DP budget renewed by renaming the requester)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from chain.crypto import PrivateKey
from chain.types import Role
from privacy import paillier, secagg
from privacy.agency import AgencyServer
from privacy.errors import AgencyUnavailable, CiphertextError, IdentityError, PolicyRefusal
from privacy.identity import Identity, PeerDirectory, Trust
from privacy.local import value_bits
from privacy.protocol import open_signed, sign
from privacy.query import Regulator
from privacy.replay import ReplayGuard, clock_ms
from privacy.spec import parse_sql

from .conftest import AGENCY_IDS, CATALOG, COUNTIES, POLICY, REGULATOR, ROOT, agency_tables, make_servers

KeyPair = tuple[paillier.PublicKey, paillier.PrivateKey]
ANSWERS = ("contribution", "refusal", "decision", "endorsement", "unmask", "shares")


class Spy:
    """An in-process link that records every message in both directions (what a network
    adversary, the aggregator or the regulator could see)."""

    def __init__(self, server: AgencyServer, fault: str | None = None) -> None:
        self.server, self.name, self.certificate, self.fault = server, server.name, server.certificate, fault
        self.sent: list[bytes] = []
        self.received: list[bytes] = []

    def call(self, request: bytes) -> bytes:
        if self.fault == "drop":
            raise ConnectionResetError("connection reset by peer")
        self.sent.append(request)
        answer = self.server.handle(request)
        self.received.append(answer)
        return answer

    def party_job(self) -> Any:
        return self.server.party_job()

    def answers(self, kind: str) -> list[dict[str, Any]]:
        out = []
        for raw in self.received:
            msg = open_signed(raw, *ANSWERS).msg
            if msg["type"] == kind:
                out.append(msg)
        return out


def query_message(spec_text: str, agencies: list[str], pk: paillier.PublicKey, **over: Any) -> dict[str, Any]:
    spec = parse_sql(spec_text)
    msg = {
        "type": "query",
        "query_id": over.pop("query_id", f"q-{time.monotonic_ns()}"),
        "time_ms": clock_ms(),
        "role": "regulator",
        "spec": spec.to_json(),
        "agencies": agencies,
        "path": "paillier",
        "n": paillier.public_key_to_bytes(pk),
        "packed": True,
        "value_bits": value_bits(spec, CATALOG),
        "n_values": 4 if spec.group_by else 1,
    }
    msg.update(over)
    return msg


def refusal(server: AgencyServer, raw: bytes) -> str:
    return str(open_signed(server.handle(raw), "refusal").msg["reason"])


# --- regression: the three attacks on the previous protocol -------------------------------------


def test_intercepted_contributions_decrypt_to_uniform_noise(
    servers: list[AgencyServer], keypair: KeyPair, tables: Any
) -> None:
    """With the regulator's Paillier key, every per-agency message decrypts to a value
    indistinguishable from uniform mod n — even after removing the revealed self masks —
    while every answer is exact. (The previous protocol let the regulator decrypt each
    agency's local sums exactly.)"""
    pk, sk = keypair
    spies = [Spy(s) for s in servers]
    reg = Regulator(CATALOG, spies, keypair, REGULATOR)
    spec = parse_sql("SELECT SUM(views) FROM plays GROUP BY county")
    truth = [sum(int(t["views"][t["county"] == c].sum()) for t in tables) for c in COUNTIES]
    local_packed = set()
    layout = paillier.SlotLayout.plan(value_bits(spec, CATALOG), 3, pk.n.bit_length(), 4)
    for t in tables:
        local_packed |= set(layout.pack([int(t["views"][t["county"] == c].sum()) for c in COUNTIES]))
    runs = 40
    for _ in range(runs):
        assert [r[1] for r in reg.run(spec).rows] == truth
    decrypted, unselfmasked = [], []
    for spy in spies:
        contributions = spy.answers("contribution")
        unmasks = spy.answers("unmask")
        assert len(contributions) == len(unmasks) == runs
        for c, u in zip(contributions, unmasks, strict=True):
            [ct] = c["ciphertexts"]
            m = int(sk.raw_decrypt(int.from_bytes(ct, "big")))
            assert m not in local_packed
            decrypted.append(m)
            [self_mask] = secagg.expand(bytes(u["self_seed"]), 1, pk.n)
            unselfmasked.append((m - self_mask) % pk.n)
    # Four tests of fresh OS randomness: at 1e-4 each, uniform noise failed one run in
    # 2,500 (a chi-square p of 9e-5 was seen). At 1e-6 a false alarm is one run in 250,000,
    # and what the tests are for still fails at once: decryptions that are local sums sit
    # near 0 (a KS p-value far below 1e-100), and any of them is also caught exactly below.
    alpha = 1e-6
    for sample in (decrypted, unselfmasked):
        u01 = [m / pk.n for m in sample]
        assert stats.kstest(u01, "uniform").pvalue > alpha
        # and the low bits: 16 buckets of m mod 16
        counts = np.bincount([m % 16 for m in sample], minlength=16)
        assert stats.chisquare(counts).pvalue > alpha
        assert not set(sample) & local_packed


def test_a_query_across_fewer_agencies_than_the_policy_minimum_is_refused(
    servers: list[AgencyServer], keypair: KeyPair, tmp_path: Path, tables: Any
) -> None:
    """The previous protocol answered a one-agency query with that agency's exact value."""
    for k in (1, 2):
        reg = Regulator(CATALOG, [Spy(s) for s in servers[:k]], keypair, REGULATOR)
        agencies = "agency" if k == 1 else "agencies"
        with pytest.raises(PolicyRefusal, match=rf"runs across {k} {agencies}; .* at least 3"):
            reg.run(parse_sql("SELECT SUM(views) FROM plays"))
    # a per-agency setting: agencies that accept two participants answer a two-agency query
    two = make_servers(tables[:2], tmp_path / "two", {**POLICY, "min_agencies": 2})
    res = Regulator(CATALOG, [Spy(s) for s in two], keypair, REGULATOR).run(
        parse_sql("SELECT COUNT(*) FROM plays")
    )
    assert res.rows[0][1] == sum(len(t["views"]) for t in tables[:2])
    with pytest.raises(Exception, match="min_agencies must be at least 2"):
        make_servers(tables[:1], tmp_path / "one", {**POLICY, "min_agencies": 1})


def test_dp_budget_follows_the_signing_certificate_not_a_name(
    servers: list[AgencyServer], keypair: KeyPair
) -> None:
    """The previous protocol kept budgets under a requester name the requester wrote itself."""
    pk, _ = keypair
    reg = Regulator(CATALOG, [Spy(s) for s in servers], keypair, REGULATOR)
    reg.run(parse_sql("SELECT COUNT(*) FROM plays WITH EPSILON 1.5"))
    names = [s.name for s in servers]
    for alias in ("reg-1#1", "reg-1#2", ""):
        # the same requester signs queries naming itself differently: the agency charges the certificate
        spec = parse_sql("SELECT COUNT(*) FROM plays WITH EPSILON 1.5").with_requester(alias, "regulator")
        msg = query_message("SELECT COUNT(*) FROM plays", names, pk, spec=spec.to_json(), value_bits=20)
        assert "has spent ε=1.5 of its budget 2" in refusal(servers[0], sign(REGULATOR, msg))
    with pytest.raises(PolicyRefusal, match=r"has spent ε=1\.5 of its budget 2"):
        reg.run(parse_sql("SELECT COUNT(*) FROM plays WITH EPSILON 1"))
    assert {d["requester"] for d in servers[0].decisions()} == {REGULATOR.cert_id.hex()}
    # another certified regulator has its own budget
    other = Identity.issue(ROOT, "Another regulator", [Role.REGULATOR])
    Regulator(CATALOG, [Spy(s) for s in servers], keypair, other).run(
        parse_sql("SELECT COUNT(*) FROM plays WITH EPSILON 1.5")
    )
    # a regulator certificate the requester made itself is worth nothing
    fake_root = PrivateKey.generate()
    forged = Identity.issue(fake_root, "Provincial regulator", [Role.REGULATOR])
    with pytest.raises(PolicyRefusal, match="not signed by the consortium's root"):
        Regulator(CATALOG, [Spy(s) for s in servers], keypair, forged).run(
            parse_sql("SELECT COUNT(*) FROM plays WITH EPSILON 0.1")
        )


# --- authentication and replay ----------------------------------------------------------------


def test_replayed_stale_and_future_queries_are_refused(servers: list[AgencyServer], keypair: KeyPair) -> None:
    pk, _ = keypair
    names = [s.name for s in servers]
    raw = sign(REGULATOR, query_message("SELECT COUNT(*) FROM plays", names, pk, value_bits=20))
    assert open_signed(servers[0].handle(raw), "contribution")
    assert "already used (a replayed query)" in refusal(servers[0], raw)
    for skew in (-600_000, 600_000):
        msg = query_message("SELECT COUNT(*) FROM plays", names, pk, value_bits=20, time_ms=clock_ms() + skew)
        assert "600 s from this agency's clock; at most 120 s" in refusal(servers[1], sign(REGULATOR, msg))
    guard = ReplayGuard(servers[0].budget.path.parent / "replay.db")  # type: ignore[union-attr]
    guard.check("q", 10, now_ms=10)
    with pytest.raises(IdentityError, match="already used"):
        ReplayGuard(guard.path).check("q", 11, now_ms=11)  # persisted across restarts
    ReplayGuard(guard.path).check("q", 10 + 5 * 120_000, now_ms=10 + 5 * 120_000)  # expired, then new


def test_certificates_expired_revoked_or_without_the_role_are_refused(
    servers: list[AgencyServer], keypair: KeyPair
) -> None:
    expired = Identity.issue(ROOT, "old regulator", [Role.REGULATOR], not_after_ms=1000)
    media = Identity.issue(ROOT, "a media center", [Role.MEDIA_CENTER])
    for who, claim, why in [
        (expired, "regulator", "is not valid now"),
        (media, "regulator", "does not carry the role 'regulator'"),
    ]:
        with pytest.raises(PolicyRefusal, match=why):
            Regulator(CATALOG, [Spy(s) for s in servers], keypair, who, claim).run(
                parse_sql("SELECT COUNT(*) FROM plays")
            )
    for s in servers:
        s.trust = Trust(ROOT.public_key, frozenset({REGULATOR.cert_id}))
    with pytest.raises(PolicyRefusal, match="has been revoked"):
        Regulator(CATALOG, [Spy(s) for s in servers], keypair, REGULATOR).run(
            parse_sql("SELECT COUNT(*) FROM plays")
        )
    assert all(not d["accepted"] for d in servers[0].decisions())


def test_forged_and_malformed_envelopes_are_rejected(servers: list[AgencyServer], keypair: KeyPair) -> None:
    from chain import codec

    pk, _ = keypair
    raw = sign(
        REGULATOR, query_message("SELECT COUNT(*) FROM plays", ["agency-0", "agency-1", "agency-2"], pk)
    )
    env = codec.decode(raw)
    altered = dict(env, body=env["body"].replace(b"COUNT", b"COUNT").replace(b"agency-2", b"agency-3"))
    with pytest.raises(IdentityError, match="does not verify"):
        servers[0].handle(codec.encode(altered))
    swapped = dict(env, cert=AGENCY_IDS["agency-1"].cert.to_dict())
    with pytest.raises(IdentityError, match="does not verify"):
        servers[0].handle(codec.encode(swapped))
    bad_cert = dict(env, cert={"subject": "x"})
    with pytest.raises(IdentityError, match="certificate is malformed"):
        servers[0].handle(codec.encode(bad_cert))
    for junk in (raw[:-7], b"", b"\xa0", codec.encode([1, 2]), codec.encode(dict(env, extra=1))):
        with pytest.raises(CiphertextError):
            servers[0].handle(junk)
    with pytest.raises(CiphertextError, match="exceeds the limit"):
        servers[0].handle(b"\x00" * (64 * 1024 * 1024 + 1))
    with pytest.raises(CiphertextError, match="unexpected protocol message"):
        servers[0].handle(sign(REGULATOR, {"type": "refusal", "query_id": "q", "agency": "a", "reason": "x"}))
    for qid in (5, "", "q" * 129):
        bad = query_message(
            "SELECT COUNT(*) FROM plays", ["agency-0", "agency-1", "agency-2"], pk, query_id=qid
        )
        with pytest.raises(CiphertextError, match="a query id is a string"):
            servers[0].handle(sign(REGULATOR, bad))


def test_agencies_refuse_participants_they_have_not_pinned(
    servers: list[AgencyServer], keypair: KeyPair
) -> None:
    """A regulator cannot surround an agency with agencies of its own making."""
    sybil_id = Identity.issue(ROOT, "agency-9", [Role.MEDIA_CENTER])
    sybil = AgencyServer(
        "agency-9",
        servers[0].connector,
        CATALOG,
        servers[0].policy,
        sybil_id,
        Trust(ROOT.public_key),
        PeerDirectory({"agency-0": AGENCY_IDS["agency-0"].cert}),
    )
    reg = Regulator(CATALOG, [Spy(servers[0]), Spy(sybil), Spy(servers[1])], keypair, REGULATOR)
    with pytest.raises(PolicyRefusal, match=r"agencies \['agency-9'\] are not pinned peers of this agency"):
        reg.run(parse_sql("SELECT COUNT(*) FROM plays"))


# --- dropouts and the unmasking rounds --------------------------------------------------------------


def test_an_agency_dropping_out_before_contributing_is_recovered(tmp_path: Path, keypair: KeyPair) -> None:
    tables = [agency_tables(seed, 200 + 30 * seed) for seed in range(4)]
    four = make_servers(tables, tmp_path)
    spies = [Spy(s, "drop" if s.name == "agency-3" else None) for s in four]
    for packed in (True, False):
        res = Regulator(CATALOG, spies, keypair, REGULATOR).run(
            parse_sql("SELECT SUM(views) FROM plays GROUP BY county"), packed=packed
        )
        expect = [sum(int(t["views"][t["county"] == c].sum()) for t in tables[:3]) for c in COUNTIES]
        assert [r[1] for r in res.rows] == expect
        assert res.stats["survivors"] == ["agency-0", "agency-1", "agency-2"]
        assert any("agency-3" in n and "dropped out" in n for n in res.notes)
    assert res.audit is not None
    assert ("agency-3", False) in {(d[0], d[1]) for d in res.audit.decisions}
    # two of four left: no majority, no result
    spies[2].fault = "drop"
    with pytest.raises(AgencyUnavailable, match=r"2 of 4 agencies contributed.*no partial result"):
        Regulator(CATALOG, spies, keypair, REGULATOR).run(parse_sql("SELECT COUNT(*) FROM plays"))


def test_a_lying_aggregator_learns_nothing_from_a_false_dropout(tmp_path: Path, keypair: KeyPair) -> None:
    """The aggregator keeps agency-3's contribution but says it dropped out: the survivors
    reveal their seeds shared with agency-3, yet agency-3's self mask keeps its value hidden,
    and agency-3's seed is never revealed since no other view can be endorsed."""
    pk, sk = keypair
    tables = [agency_tables(seed, 200) for seed in range(4)]
    four = make_servers(tables, tmp_path)
    names = [s.name for s in four]
    msg = query_message("SELECT COUNT(*) FROM plays", names, pk, value_bits=20)
    qid = msg["query_id"]
    raw = sign(REGULATOR, msg)
    contributions = {s.name: open_signed(s.handle(raw), "contribution").msg for s in four}
    survivors, dropped = names[:3], ["agency-3"]
    view = sign(REGULATOR, {"type": "view", "query_id": qid, "survivors": survivors, "dropped": dropped})
    endorsements = [four[i].handle(view) for i in range(3)]
    reveal = sign(REGULATOR, {"type": "reveal", "query_id": qid, "endorsements": endorsements})
    unmasks = [open_signed(four[i].handle(reveal), "unmask").msg for i in range(3)]
    # strip every pairwise mask of agency-3 from its intercepted contribution
    [ct] = contributions["agency-3"]["ciphertexts"]
    m = int(sk.raw_decrypt(int.from_bytes(ct, "big")))
    for u in unmasks:
        [pair] = secagg.expand(bytes(u["pair_seeds"]["agency-3"]), 1, pk.n)
        m = (m + pair) % pk.n if u["agency"] < "agency-3" else (m - pair) % pk.n
    layout = paillier.SlotLayout.plan(20, 4, pk.n.bit_length(), 1)
    assert m != layout.pack([200])[0] and m.bit_length() > 1000  # still self-masked
    # the aggregator now tries to obtain agency-3's self seed with another view
    other = sign(
        REGULATOR, {"type": "view", "query_id": qid, "survivors": names[1:], "dropped": ["agency-0"]}
    )
    assert "already endorsed another view" in refusal(four[1], other)
    e3 = four[3].handle(other)  # agency-3 endorses: it has not endorsed anything yet
    assert open_signed(e3, "endorsement")
    reveal3 = sign(REGULATOR, {"type": "reveal", "query_id": qid, "endorsements": [e3, endorsements[1]]})
    assert "endorsed another view" in refusal(four[3], reveal3)
    reveal3 = sign(REGULATOR, {"type": "reveal", "query_id": qid, "endorsements": [e3]})
    assert "only 1 agencies endorsed the view and 3 must; nothing is revealed" in refusal(four[3], reveal3)
    # ... or with a recovery that calls agency-3 late: its shares stay sealed, because the view
    # the others endorsed lists agency-3 as dropped (its pairwise seeds are already out)
    sealed = contributions["agency-3"]["shares"]
    for i in range(3):
        recover = sign(
            REGULATOR,
            {
                "type": "recover",
                "query_id": qid,
                "late": ["agency-3"],
                "shares": {"agency-3": sealed[names[i]]},
            },
        )
        assert "['agency-3'] did not contribute in the endorsed view" in refusal(four[i], recover)
    # an endorsement forged by the aggregator for agency-1 and agency-2
    forged = [
        sign(
            REGULATOR,
            {
                "type": "endorsement",
                "query_id": qid,
                "agency": a,
                "survivors": names[1:],
                "dropped": ["agency-0"],
            },
        )
        for a in ("agency-1", "agency-2")
    ]
    reveal3 = sign(REGULATOR, {"type": "reveal", "query_id": qid, "endorsements": [e3, *forged]})
    assert "not signed by that agency" in refusal(four[3], reveal3)
    # another requester cannot continue the query
    other_reg = Identity.issue(ROOT, "Another regulator", [Role.REGULATOR])
    assert "only the requester that signed the query" in refusal(
        four[0], sign(other_reg, {**open_signed(reveal, "reveal").msg})
    )


def test_views_need_a_majority_and_the_policy_minimum(tmp_path: Path, keypair: KeyPair) -> None:
    pk, _ = keypair
    five = make_servers([agency_tables(s, 100) for s in range(5)], tmp_path, {**POLICY, "min_agencies": 2})
    names = [s.name for s in five]
    msg = query_message("SELECT COUNT(*) FROM plays", names, pk, value_bits=20)
    raw = sign(REGULATOR, msg)
    for s in five:
        open_signed(s.handle(raw), "contribution")
    view = {"type": "view", "query_id": msg["query_id"], "survivors": names[:2], "dropped": names[2:]}
    assert "a result needs a majority" in refusal(five[0], sign(REGULATOR, view))
    view = {"type": "view", "query_id": msg["query_id"], "survivors": names[:3], "dropped": names[4:]}
    assert "does not split the query's participants" in refusal(five[0], sign(REGULATOR, view))
    view = {"type": "view", "query_id": msg["query_id"], "survivors": names[1:], "dropped": names[:1]}
    assert "lists this agency as dropped out" in refusal(five[0], sign(REGULATOR, view))
    view = {"type": "view", "query_id": "unknown", "survivors": names, "dropped": []}
    assert "holds no contribution to query 'unknown'" in refusal(five[0], sign(REGULATOR, view))


# --- the pure core --------------------------------------------------------------------------------


def test_masks_cancel_exactly_for_any_number_of_agencies() -> None:
    rng = np.random.default_rng(5)
    n = (1 << 2047) - 1  # any modulus: masks cancel modulo it
    for k in (2, 3, 7):
        names = [f"a{i}" for i in range(k)]
        secret = {
            frozenset((a, b)): bytes(rng.integers(0, 256, 32, dtype=np.uint8))
            for a in names
            for b in names
            if a < b
        }
        values = {a: [int(v) for v in rng.integers(-1000, 1000, 5)] for a in names}
        seeds = {a: secagg.fresh_seed() for a in names}
        masked = {
            a: secagg.mask(
                values[a],
                n,
                seeds[a],
                {b: secagg.pair_seed(secret[frozenset((a, b))], "q", a, b) for b in names if b != a},
                a,
            )
            for a in names
        }
        total = [sum(masked[a][j] for a in names) % n for j in range(5)]
        corr = secagg.correction(5, n, seeds.values(), [])
        got = [(t - c) % n for t, c in zip(total, corr, strict=True)]
        assert [g if g < n // 2 else g - n for g in got] == [
            sum(values[a][j] for a in names) for j in range(5)
        ]
    with pytest.raises(CiphertextError, match="a mask seed is 32 bytes"):
        secagg.expand(b"short", 1, n)


class LateDrop(Spy):
    """Answers the query, then goes silent at one of the later rounds."""

    def __init__(self, server: AgencyServer, stage: str | None) -> None:
        super().__init__(server)
        self.stage = stage

    def call(self, request: bytes) -> bytes:
        if open_signed(request, "query", "view", "reveal", "recover").msg["type"] == self.stage:
            raise TimeoutError("timed out")
        return super().call(request)


def test_a_survivor_going_silent_after_contributing_is_recovered_from_shares(
    servers: list[AgencyServer], keypair: KeyPair, tables: Any
) -> None:
    """Its contribution is in the sum; a majority of the others hand over their shares of
    its self seed, and the answer is exact and includes its data (Bonawitz et al.'s double
    masking). It never revealed anything itself."""
    spec = parse_sql("SELECT SUM(views) FROM plays GROUP BY county")
    truth = [sum(int(t["views"][t["county"] == c].sum()) for t in tables) for c in COUNTIES]
    for stage in ("view", "reveal"):
        spies = [Spy(servers[0]), LateDrop(servers[1], stage), Spy(servers[2])]
        res = Regulator(CATALOG, spies, keypair, REGULATOR).run(spec)
        assert [r[1] for r in res.rows] == truth
        assert res.stats["survivors"] == ["agency-0", "agency-1", "agency-2"]
        assert any("['agency-1'] went silent after contributing" in n for n in res.notes)
        assert not spies[1].answers("unmask")
        assert [len(s.answers("shares")) for s in spies] == [1, 0, 1]


def test_a_late_survivor_and_an_early_dropout_together(tmp_path: Path, keypair: KeyPair) -> None:
    """agency-4 never contributes and agency-1 goes silent at the reveal: agency-1's seeds
    shared with agency-4 are rebuilt from shares too, and the answer covers agencies 0-3."""
    tables = [agency_tables(seed, 150 + 20 * seed) for seed in range(5)]
    five = make_servers(tables, tmp_path)
    spies: list[Spy] = [Spy(s) for s in five]
    spies[1] = LateDrop(five[1], "reveal")
    spies[4].fault = "drop"
    for packed in (True, False):
        res = Regulator(CATALOG, spies, keypair, REGULATOR).run(
            parse_sql("SELECT SUM(views) FROM plays GROUP BY county"), packed=packed
        )
        expect = [sum(int(t["views"][t["county"] == c].sum()) for t in tables[:4]) for c in COUNTIES]
        assert [r[1] for r in res.rows] == expect
    handed = spies[0].answers("shares")[-1]["shares"]
    assert sorted(handed) == ["agency-1"]
    assert sorted(handed["agency-1"]["pairs"]) == ["agency-4"]  # never a seed shared with a contributor


def test_too_many_silent_survivors_abort_without_a_result(
    servers: list[AgencyServer], keypair: KeyPair
) -> None:
    spies = [Spy(servers[0]), LateDrop(servers[1], "reveal"), LateDrop(servers[2], "reveal")]
    reg = Regulator(CATALOG, spies, keypair, REGULATOR)
    with pytest.raises(
        AgencyUnavailable,
        match=r"'agency-1' dropped out.*after contributing.*1 agencies answered with unmask and 2 must",
    ):
        reg.run(parse_sql("SELECT SUM(views) FROM plays"))
    # a survivor silent at the recovery too: one share is not enough
    spies = [Spy(servers[0]), LateDrop(servers[1], "reveal"), LateDrop(servers[2], "recover")]
    with pytest.raises(
        AgencyUnavailable, match=r"'agency-1' dropped out.*1 agencies answered with shares and 2 must"
    ):
        Regulator(CATALOG, spies, keypair, REGULATOR).run(parse_sql("SELECT SUM(views) FROM plays"))


def test_recovery_requests_that_must_be_refused(servers: list[AgencyServer], keypair: KeyPair) -> None:
    pk, _ = keypair
    names = [s.name for s in servers]
    msg = query_message("SELECT COUNT(*) FROM plays", names, pk, value_bits=20)
    qid = msg["query_id"]
    raw = sign(REGULATOR, msg)
    contributions = {s.name: open_signed(s.handle(raw), "contribution").msg for s in servers}
    sealed = {a: c["shares"] for a, c in contributions.items()}

    def recover(late: list[str], shares: dict[str, bytes], who: Identity = REGULATOR) -> bytes:
        return sign(who, {"type": "recover", "query_id": qid, "late": late, "shares": shares})

    # before the reveal: nothing is handed over
    assert "only after revealing its own" in refusal(
        servers[0], recover(["agency-1"], {"agency-1": sealed["agency-1"]["agency-0"]})
    )
    view = sign(REGULATOR, {"type": "view", "query_id": qid, "survivors": names, "dropped": []})
    endorsements = [s.handle(view) for s in servers]
    reveal = sign(REGULATOR, {"type": "reveal", "query_id": qid, "endorsements": endorsements[:2]})
    for s in servers[:2]:
        open_signed(s.handle(reveal), "unmask")
    # itself as late; shares sealed for another holder; an altered box; another requester
    assert "it answers for itself" in refusal(servers[0], recover(["agency-0"], {"agency-0": b"x"}))
    with pytest.raises(CiphertextError, match="do not open: altered or misaddressed"):
        servers[0].handle(recover(["agency-2"], {"agency-2": sealed["agency-2"]["agency-1"]}))
    box = bytearray(sealed["agency-2"]["agency-0"])
    box[-1] ^= 1
    with pytest.raises(CiphertextError, match="do not open"):
        servers[0].handle(recover(["agency-2"], {"agency-2": bytes(box)}))
    with pytest.raises(CiphertextError, match="carries their sealed shares"):
        servers[0].handle(recover(["agency-2"], {}))
    other_reg = Identity.issue(ROOT, "Another regulator", [Role.REGULATOR])
    assert "only the requester that signed the query" in refusal(
        servers[0], recover(["agency-2"], {"agency-2": sealed["agency-2"]["agency-0"]}, other_reg)
    )
    # the real thing: agency-0's share of agency-2's self seed, and no pairwise seed (nobody dropped)
    got = open_signed(
        servers[0].handle(recover(["agency-2"], {"agency-2": sealed["agency-2"]["agency-0"]})), "shares"
    ).msg
    assert got["x"] == 1 and got["shares"]["agency-2"]["pairs"] == {}


def test_shamir_shares_rebuild_only_from_a_majority_and_catch_altered_shares() -> None:
    seed = secagg.fresh_seed()
    shares = secagg.split(seed, [1, 2, 3, 4, 5], 3)
    assert secagg.combine({x: shares[x] for x in (2, 4, 5)}, 3) == seed
    assert secagg.combine(shares, 3) == seed
    with pytest.raises(CiphertextError, match="2 shares cannot rebuild"):
        secagg.combine({x: shares[x] for x in (1, 2)}, 3)
    bad = dict(shares)
    bad[4] = (bad[4] + 1) % secagg.SHARE_PRIME
    with pytest.raises(CiphertextError, match="altered"):
        secagg.combine(bad, 3)
    # two shares of a 3-of-5 sharing are uniform: the same pair of shares fits any seed
    assert len({tuple(secagg.split(seed, [1, 2], 2).values()) for _ in range(50)}) == 50
    with pytest.raises(CiphertextError, match="cannot split"):
        secagg.split(seed, [1, 1, 2], 2)
