"""Audit through the ledger: the record carries the requester's certificate and every agency's
signed answer, is anchored by the consortium's nodes, and both the requester and each agency
can check it against the receipt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chain.localnet import LocalConsortium
from chain.types import Role
from privacy import paillier
from privacy.audit import AuditLog, ConsortiumAnchor, check_record
from privacy.errors import AuditError, PolicyRefusal
from privacy.identity import Identity, Trust
from privacy.policy import Policy
from privacy.query import Regulator
from privacy.spec import parse_sql

from .conftest import CATALOG, POLICY, Direct, agency_tables, make_servers


def test_audit_records_are_anchored_and_checkable_by_requester_and_agencies(
    tmp_path: Path, keypair: tuple[paillier.PublicKey, paillier.PrivateKey]
) -> None:
    c = LocalConsortium.create(tmp_path / "net", nodes=4)
    try:
        member = c.add_member("Provincial regulator", [Role.REGULATOR])
        regulator = Identity(member.key, member.cert)
        servers = make_servers([agency_tables(s, 150) for s in range(3)], tmp_path / "agencies")
        for s in servers:
            s.trust = Trust(c.root.public_key)
        anchor = ConsortiumAnchor(c, member)
        log = AuditLog(anchor, tmp_path / "audit.jsonl")
        reg = Regulator(CATALOG, [Direct(s) for s in servers], keypair, regulator, audit=log)
        res = reg.run(parse_sql("SELECT COUNT(*) FROM plays GROUP BY county"))
        servers[2].policy = Policy.from_dict({**POLICY, "min_agencies": 4})
        with pytest.raises(PolicyRefusal, match="at least 4"):
            reg.run(parse_sql("SELECT SUM(views) FROM plays"))
        lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert [line["path"] for line in lines] == ["paillier", "refused"]
        for line in lines:
            assert line["requester"] == member.cert.cert_id.hex()
            assert line["requester_subject"] == "Provincial regulator"
            assert [a["agency"] for a in line["answers"]] == ["agency-0", "agency-1", "agency-2"]
        assert res.audit is not None
        receipt = anchor.receipts[res.audit.digest()]
        doc = lines[0]
        # the requester checks its record
        assert check_record(doc, receipt, c.genesis).query_id == res.audit.query_id
        # each agency checks that the record carries the answer it signed (its own log)
        for s in servers:
            mine = [d for d in s.decisions() if d["query_id"] == doc["query_id"]]
            assert len(mine) == 1 and mine[0]["accepted"]
            assert mine[0]["query_digest"] == doc["query_digest"]
            check_record(doc, receipt, c.genesis, s.name, bytes.fromhex(mine[0]["answer_digest"]))
        # the refused query: agency-2's refusal is in its own log and in the anchored record
        refused = lines[1]
        d2 = next(d for d in servers[2].decisions() if d["query_id"] == refused["query_id"])
        assert not d2["accepted"] and "at least 4" in d2["reason"]
        receipt2 = anchor.receipts[bytes.fromhex(refused["record_digest"])]
        check_record(refused, receipt2, c.genesis, "agency-2", bytes.fromhex(d2["answer_digest"]))
        # tampering with the record, or another agency's answer, is caught
        forged = dict(doc, decisions=[dict(d, reason="edited") for d in doc["decisions"]])
        with pytest.raises(AuditError, match="not anchored by this receipt"):
            check_record(forged, receipt, c.genesis)
        with pytest.raises(AuditError, match="does not carry agency 'agency-0'"):
            check_record(doc, receipt, c.genesis, "agency-0", b"\0" * 32)
        with pytest.raises(AuditError, match="malformed audit record"):
            check_record({"query_id": "x"}, receipt, c.genesis)
    finally:
        c.close()


def test_query_run_signs_with_the_client_profile_member_and_anchors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rongxin query run --client``: without identity files in ``[regulator]``, the
    profile's member key signs the queries; the record is anchored and its receipt saved."""
    import tomllib

    from typer.testing import CliRunner

    from privacy.demo_data import write_demo
    from rongxin import cli_query

    c = LocalConsortium.create(tmp_path / "net", nodes=4)
    try:
        member = c.add_member("Provincial regulator", [Role.REGULATOR])
        config = write_demo(tmp_path / "q", rows=200, root=c.root, chain_id=c.genesis.chain_id)
        text = config.read_text()
        doc = tomllib.loads(text)
        for key in ("identity_key", "identity_certificate", "password_file"):
            text = text.replace(f'{key} = "{doc["regulator"][key]}"\n', "", 1)
        config.write_text(text)
        assert "identity_key" not in tomllib.loads(text)["regulator"]
        anchor = ConsortiumAnchor(c, member)
        monkeypatch.setattr(
            cli_query, "_ledger_anchor", lambda _p, _j: (anchor, Identity(member.key, member.cert))
        )
        res = CliRunner().invoke(
            cli_query.app,
            [
                "run",
                "SELECT COUNT(*) FROM cases",
                "--agencies",
                str(config),
                "--client",
                "x",
                "--format",
                "json",
            ],
        )
        assert res.exit_code == 0, res.output
        line = json.loads((tmp_path / "q" / "audit.jsonl").read_text().splitlines()[-1])
        assert line["requester"] == member.cert.cert_id.hex() and line["anchor"] is not None
        receipt = anchor.receipts[bytes.fromhex(line["record_digest"])]
        assert check_record(line, receipt, c.genesis).path == "paillier"
        # without either identity the command says what is missing
        monkeypatch.setattr(cli_query, "_ledger_anchor", lambda _p, _j: (anchor, None))
        res = CliRunner().invoke(
            cli_query.app, ["run", "SELECT COUNT(*) FROM cases", "--agencies", str(config)]
        )
        assert res.exit_code == 1 and "needs identity_key and identity_certificate" in " ".join(
            res.output.split()
        )
    finally:
        c.close()
