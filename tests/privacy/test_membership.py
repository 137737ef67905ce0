"""Revocations from the consortium ledger: agencies refuse revoked requesters, the query
client refuses revoked agencies, the configured deny list still applies, and an
unreachable ledger fails closed once the grace period is over."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain import codec
from chain.api import create_app
from chain.client import NodeClient
from chain.contracts.membership import cert_key, revoked_key
from chain.crypto import PrivateKey
from chain.errors import ClientError
from chain.types import Genesis, Role
from privacy import paillier
from privacy.agency import AgencyServer
from privacy.config import LedgerSettings
from privacy.connectors import ArrayConnector
from privacy.errors import CatalogError, IdentityError, PolicyRefusal
from privacy.identity import Identity, PeerDirectory, Trust
from privacy.membership import LedgerMembership, with_ledger
from privacy.policy import BudgetLedger, Policy
from privacy.query import Regulator
from privacy.spec import parse_sql
from tests.chain.api.harness import Node, serve, start_node

from .conftest import CATALOG, POLICY, Direct, agency_tables

COUNT = parse_sql("SELECT COUNT(*) FROM plays")


class FakeChain:
    """A ledger's state as a dict; ``down`` makes every read fail like an unreachable node."""

    def __init__(self) -> None:
        self.entries: dict[bytes, bytes] = {}
        self.down = False
        self.reads = 0

    def state(self, key: bytes) -> bytes | None:
        self.reads += 1
        if self.down:
            raise ClientError("node http://127.0.0.1:9 unreachable: connection refused")
        return self.entries.get(key)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _member(root: PrivateKey, name: str, role: Role) -> Identity:
    return Identity.issue(root, name, [role])


def test_cache_revocation_registration_and_fail_closed() -> None:
    root = PrivateKey.generate()
    who = _member(root, "Regulator", Role.REGULATOR).cert
    chain, clock = FakeChain(), Clock()
    m = LedgerMembership(chain, ttl_s=10, grace_s=30, clock=clock)
    with pytest.raises(IdentityError, match="not registered on the consortium ledger"):
        m.check(who)
    chain.entries[cert_key(who.cert_id)] = b"registered"
    with pytest.raises(IdentityError, match="not registered"):  # the answer is cached for ttl_s
        m.check(who)
    clock.now += 10.5
    m.check(who)
    reads = chain.reads
    clock.now += 5
    m.check(who)
    assert chain.reads == reads  # within ttl_s: no read
    chain.entries[revoked_key(who.cert_id)] = codec.encode({"from_height": 7, "reason": "key leaked"})
    clock.now += 6
    with pytest.raises(IdentityError, match=r"revoked on the consortium ledger from height 7 \(key leaked\)"):
        m.check(who)
    # an unreadable revocation record is still a revocation
    chain.entries[revoked_key(who.cert_id)] = b"\xff\x00garbage"
    clock.now += 11
    with pytest.raises(IdentityError, match="unreadable revocation record"):
        m.check(who)
    del chain.entries[revoked_key(who.cert_id)]
    clock.now += 11
    m.check(who)
    # the ledger goes down: the last answer holds for grace_s after its ttl_s, then refusal
    chain.down = True
    clock.now += 10 + 29
    m.check(who)
    clock.now += 2
    with pytest.raises(
        IdentityError, match=r"cannot check 'Regulator' against the consortium ledger.*refusing"
    ):
        m.check(who)
    chain.down = False
    m.check(who)  # back up: answers again
    # never answered and unreachable: refused at once
    other = _member(root, "Other", Role.REGULATOR).cert
    chain.down = True
    with pytest.raises(IdentityError, match="never answered"):
        m.check(other)
    # genesis certificates count as registered; registration can be left unchecked
    chain.down = False
    LedgerMembership(chain, genesis_ids=frozenset({other.cert_id})).check(other)
    LedgerMembership(chain, require_registered=False).check(other)
    with pytest.raises(ValueError):
        LedgerMembership(chain, ttl_s=-1)


def test_trust_applies_the_deny_list_and_the_ledger() -> None:
    root = PrivateKey.generate()
    good, denied, revoked = (_member(root, n, Role.REGULATOR).cert for n in ("good", "denied", "revoked"))
    chain = FakeChain()
    for c in (good, denied, revoked):
        chain.entries[cert_key(c.cert_id)] = b"registered"
    chain.entries[revoked_key(revoked.cert_id)] = codec.encode({"from_height": 3, "reason": "left"})
    trust = Trust(root.public_key, frozenset({denied.cert_id}), LedgerMembership(chain))
    assert trust.check(good, "regulator") is good
    with pytest.raises(IdentityError, match="has been revoked"):  # the local deny list
        trust.check(denied, "regulator")
    with pytest.raises(IdentityError, match="revoked on the consortium ledger from height 3"):
        trust.check(revoked, "regulator")
    with pytest.raises(IdentityError, match="does not carry the role"):
        trust.check(good, "supervisor")
    genesis = Genesis("c", "chain", PrivateKey.generate().public_key.to_bytes(), ())
    with pytest.raises(CatalogError, match="another supervisory root"):
        with_ledger(Trust(root.public_key), chain, genesis)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "needs client"),
        ({"client": ""}, "needs client"),
        ({"client": "c.toml", "ttl_s": -1}, "ttl_s must be seconds"),
        ({"client": "c.toml", "grace_s": True}, "grace_s must be seconds"),
        ({"client": "c.toml", "grace_s": "60"}, "grace_s must be seconds"),
        ({"client": "c.toml", "require_registered": "yes"}, "require_registered must be true or false"),
        ({"client": "c.toml", "ttl": 5}, r"unknown keys \['ttl'\]"),
    ],
)
def test_ledger_settings_are_checked(doc: dict[str, object], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        LedgerSettings.from_dict(doc, Path("/x"))


def test_ledger_settings_defaults() -> None:
    s = LedgerSettings.from_dict({"client": "m.toml", "ttl_s": 2}, Path("/cfg"))
    assert (s.client, s.ttl_s, s.grace_s, s.require_registered) == (Path("/cfg/m.toml"), 2.0, 60.0, True)


# ------------------------------------------------ a node's API over HTTP, state proofs checked
@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = start_node(tmp_path_factory.mktemp("ledger"))
    yield n
    n.consortium.close()


def _register(node: Node, name: str, role: Role) -> Identity:
    m = node.consortium.add_member(name, [role])
    return Identity(m.key, m.cert)


def _revoke(node: Node, who: Identity, reason: str) -> None:
    c = node.consortium
    c.submit(c.supervisor, "member.revoke", {"cert_id": who.cert.cert_id, "reason": reason})


def test_revoked_on_chain_is_refused_at_the_next_query(node: Node, tmp_path: Path) -> None:
    names = [f"agency-{i}" for i in range(3)]
    ids = {n: _register(node, f"{n} {tmp_path.name}", Role.MEDIA_CENTER) for n in names}
    regulator = _register(node, f"Regulator {tmp_path.name}", Role.REGULATOR)
    denied = _register(node, f"Denied regulator {tmp_path.name}", Role.REGULATOR)
    keypair = paillier.generate_keypair(2048)
    with serve(create_app(node.service)) as url:
        client = NodeClient(url, node.member.key, node.member.cert, node.genesis, retries=0, timeout_s=2)
        base = Trust(node.consortium.root.public_key, frozenset({denied.cert.cert_id}))
        trust = with_ledger(base, client, node.genesis, ttl_s=0.0, grace_s=1.5)
        peers = PeerDirectory({n: ids[n].cert for n in names})
        servers = [
            AgencyServer(
                n,
                ArrayConnector({"plays": agency_tables(60 + i, 200)}),
                CATALOG,
                Policy.from_dict(POLICY),
                ids[n],
                trust,
                peers,
                BudgetLedger(tmp_path / f"{n}.db"),
            )
            for i, n in enumerate(names)
        ]
        clients = [Direct(s) for s in servers]

        def ask(who: Identity, checked: Trust | None = trust) -> list[list[object]]:
            return Regulator(CATALOG, clients, keypair, who, trust=checked).run(COUNT).rows

        assert ask(regulator)[0][1] == 600
        # the configured deny list still refuses a member in good standing on chain
        with pytest.raises(PolicyRefusal, match="has been revoked"):
            ask(denied)
        # revoked on chain: the very next query is refused by the agencies
        _revoke(node, regulator, "key leaked")
        with pytest.raises(
            PolicyRefusal, match=r"revoked on the consortium ledger from height \d+ \(key leaked\)"
        ):
            ask(regulator)
        # an agency revoked on chain: the query client refuses to run with it
        other = _register(node, f"Second regulator {tmp_path.name}", Role.REGULATOR)
        assert ask(other)[0][1] == 600
        _revoke(node, ids["agency-2"], "left the consortium")
        with pytest.raises(IdentityError, match=r"agency 'agency-2' cannot take part: .*left the consortium"):
            ask(other)
        # the configured deny list applies to agencies too
        with pytest.raises(IdentityError, match=r"agency 'agency-0' cannot take part: .*has been revoked"):
            ask(other, Trust(base.root, frozenset({ids["agency-0"].cert.cert_id})))
        assert ask(other, None)[0][1] == 600  # (the agencies' own checks: requester in good standing)
    # the node goes away: answers fetched in the last grace_s still hold, then fail closed
    assert ask(other, None)[0][1] == 600
    time.sleep(1.7)
    with pytest.raises(PolicyRefusal, match=r"cannot check .* against the consortium ledger.*refusing"):
        ask(other, None)
    client.close()


def test_agency_serve_refuses_to_start_without_its_ledger_profile(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from privacy.demo_data import write_demo, write_service_configs
    from rongxin.cli_agency import app

    _, services = write_service_configs(write_demo(tmp_path / "q", rows=50), tls=False)
    doc = json.loads(services[0].read_text())
    doc["consortium"]["ledger"] = {"client": "nowhere.client.toml"}
    services[0].write_text(json.dumps(doc))
    res = CliRunner().invoke(app, ["serve", "--config", str(services[0])])
    assert res.exit_code == 1 and "nomemberclientprofileat" in "".join(res.output.split())
    assert "nowhere.client.toml" in "".join(res.output.split())
    doc["consortium"]["ledger"] = {"client": "x.toml", "grace_s": -5}
    services[0].write_text(json.dumps(doc))
    res = CliRunner().invoke(app, ["serve", "--config", str(services[0])])
    assert res.exit_code == 1 and "grace_s must be seconds" in " ".join(res.output.split())
