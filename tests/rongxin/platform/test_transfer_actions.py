"""Transfers made from the platform against a real node API: register a work's ownership
record, receive a key, make a confidential transfer (proofs built on the server, sent
through the member's node client), open it as the auditor; and every bad input refused in
words and audited: negative, oversized and unbalanced amounts, someone else's work, a
stale or forged form, a wrong auditor key or password, hostile party names."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from chain.crypto.sealed import MIN_SCRYPT_N
from chain.receipt import Receipt
from chain.types import Role
from rongxin.platform.transferform import FormError, parse_amount, parse_shares, parse_terms
from rongxin.platform.transfers import TransferRefused, current_record, make_transfer
from tests.chain.api.harness import TestClient
from tests.forensics.conftest import write_image
from tests.rongxin.platform.conftest import Stack, client_of, csrf_of
from zkp.auditor import AuditorKey, seal_auditor_key
from zkp.contract import auditor_payload, register_payload
from zkp.group import Point
from zkp.transfer import OwnerKey, prove_key_possession, verify_key_possession

XSS = '<script>alert("p")</script>'
AUDITOR_PASSWORD = "auditor password"


@dataclass
class Deal:
    stack: Stack
    auditor: AuditorKey
    key_file: bytes
    work: str  # ledger work id (hex)
    library_work: str


@pytest.fixture(scope="module")
def deal(
    stack: Stack, photos: dict[str, NDArray[np.uint8]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deal]:
    """The regulator's auditor key registered by the supervisor; a work in the library."""
    c = stack.node.consortium
    auditor = AuditorKey.generate()
    c.submit(c.supervisor, "zkp.auditor", auditor_payload(auditor, c.genesis.chain_id))
    d = tmp_path_factory.mktemp("deal")
    name = sorted(photos)[0]
    data = write_image(d / "harbour.jpg", photos[name]).read_bytes()
    reg = stack.app.state.platform.works.add(io.BytesIO(data), "harbour.jpg", {"title": "Harbour"})
    key_file = seal_auditor_key(auditor, AUDITOR_PASSWORD, scrypt_n=MIN_SCRYPT_N)
    yield Deal(stack, auditor, key_file, reg.content_digest.hex(), reg.work_id)


def _events(stack: Stack, event: str) -> list[dict[str, Any]]:
    return [e for e in stack.app.state.platform.audit.read() if e["event"] == event]


def _form_of(html: str) -> dict[str, str]:
    form = html[html.index('id="transfer-form"') :]
    return {
        k: re.search(rf'name="{k}" value="([^"]*)"', form).group(1)  # type: ignore[union-attr]
        for k in ("csrf", "work", "record", "mac")
    }


def _buyer(stack: Stack, work: str) -> tuple[OwnerKey, str, str]:
    key = OwnerKey.generate()
    pop = prove_key_possession(key, stack.node.genesis.chain_id, bytes.fromhex(work))
    return key, key.public.encode().hex(), pop.hex()


def _transfer(c: TestClient, form: dict[str, str], key: str, pop: str, price: str, **rows: str) -> Any:
    data: dict[str, Any] = {**form, "buyer_key": key, "buyer_pop": pop, "price": price}
    data["party"], data["amount"] = [*rows, ""], [*rows.values(), ""]
    return c.post("/transfers/make", data=data, follow_redirects=False)


def test_register_transfer_and_open_with_every_refusal(deal: Deal) -> None:
    stack = deal.stack
    staff = client_of(stack, "legal-staff")
    page = staff.get("/transfers", params={"work": deal.library_work})
    assert page.status_code == 200 and 'id="no-record"' in page.text and 'id="register-form"' in page.text
    token = csrf_of(page.text)
    # register the ownership record of the library's work
    done = staff.post("/transfers/register", data={"csrf": token, "work": deal.library_work})
    assert done.status_code == 200, done.text[:500]
    assert 'id="ledger-verified"' in done.text and 'id="receipt-verified"' in done.text
    tx_id = re.search(r'id="tx-id">([0-9a-f]{64})<', done.text).group(1)  # type: ignore[union-attr]
    receipt = Receipt.from_bytes(staff.get(f"/transfers/receipts/{tx_id}").content)
    assert receipt.verify(stack.node.genesis).tx_id.hex() == tx_id
    # registering again, or a work that is not in this library, is refused in words
    again = staff.post("/transfers/register", data={"csrf": token, "work": deal.work})
    assert again.status_code == 409 and "already holds the ownership record" in again.text
    other = staff.post("/transfers/register", data={"csrf": token, "work": "ab" * 32})
    assert other.status_code == 409 and "only a work registered in this organization" in other.text

    page = staff.get("/transfers", params={"work": deal.work}).text
    assert 'id="record-seq">0<' in page and 'id="transfer-form"' in page
    form = _form_of(page)
    _, key, pop = _buyer(stack, deal.work)
    bad = {
        "price: an amount cannot be negative": ("-5", {"author": "-5"}),
        "price: at most 18,446,744,073,709,551,615": (str(1 << 64), {"author": str(1 << 64)}),
        "royalty shares sum to 900, not the price 1,000": ("1000", {"author": "600", "center": "300"}),
        "each party may appear once": ("1000", {"author": "600", " author": "400"}),
        "a whole number of yuan": ("12.50", {"author": "12.50"}),
    }
    for reason, (price, rows) in bad.items():
        r = _transfer(staff, form, key, pop, price, **rows)
        assert r.status_code == 422 and reason in r.text.replace("&#39;", "'"), (reason, r.text[-3000:])
    # a buyer key made for another work, a forged record field, a forged tag
    _, _, pop2 = _buyer(stack, "cd" * 32)
    r = _transfer(staff, form, key, pop2, "1000", author="1000")
    assert r.status_code == 409 and "proof of possession does not verify" in r.text
    r = _transfer(staff, {**form, "record": form["record"].replace("0:", "1:", 1)}, key, pop, "10", a="10")
    assert r.status_code == 422 and "altered or made for another user" in r.text
    r = _transfer(staff, {**form, "mac": "00" * 32}, key, pop, "10", a="10")
    assert r.status_code == 422 and "altered" in r.text
    editor = client_of(stack, "editor")  # the same form posted by another user
    r = _transfer(editor, {**form, "csrf": csrf_of(editor.get("/transfers").text)}, key, pop, "10", a="10")
    assert r.status_code == 422 and "another user" in r.text
    # the transfer: hostile party names are kept as text and escaped
    r = _transfer(staff, form, key, pop, "1,000,000", author="600000", **{XSS: "300000", "平台": "100000"})
    assert r.status_code == 200, r.text[-3000:]
    assert 'id="ledger-verified"' in r.text and 'id="new-seq">1<' in r.text and key in r.text
    # the same (now stale) form again
    r = _transfer(staff, form, key, pop, "10", a="10")
    assert r.status_code == 422 and "ownership record changed since this form was opened" in r.text
    listing = staff.get("/transfers", params={"work": deal.work}).text
    assert "<script>alert" not in listing and "&lt;script&gt;" in listing and "已验证" in listing
    assert 'id="transfer-form"' not in listing and 'id="record-mine"' in listing  # no longer ours
    assert "1000000" not in listing and "600000" not in listing  # amounts stay hidden

    # the auditor opens the recorded transfer with the key file it brings
    aud = client_of(stack, "auditor")
    atoken = csrf_of(aud.get("/transfers", params={"work": deal.work}).text)

    def open_with(blob: bytes, password: str) -> Any:
        return aud.post(
            "/transfers/open", data={"csrf": atoken, "work": deal.work, "password": password},
            files={"key": ("auditor.key", blob)},
        )  # fmt: skip

    opened = open_with(deal.key_file, AUDITOR_PASSWORD)
    assert opened.status_code == 200, opened.text[-2000:]
    assert 'class="price">1,000,000<' in opened.text and "author = 600,000" in opened.text
    assert "平台 = 100,000" in opened.text and "&lt;script&gt;" in opened.text
    assert "<script>alert" not in opened.text
    wrong = open_with(deal.key_file, "not the password")
    assert wrong.status_code == 422 and "cannot open auditor key file" in wrong.text
    other_key = seal_auditor_key(AuditorKey.generate(), AUDITOR_PASSWORD, scrypt_n=MIN_SCRYPT_N)
    r = open_with(other_key, AUDITOR_PASSWORD)
    assert (
        r.status_code == 200
        and "encrypted to another auditor key" in r.text
        and 'class="price"' not in r.text
    )
    assert open_with(b"\x00" * 40, AUDITOR_PASSWORD).status_code == 422
    assert open_with(b"x" * 20_000, AUDITOR_PASSWORD).status_code == 422
    # staff may not open; the auditor may not register or transfer
    assert staff.post("/transfers/open", data={"csrf": token, "work": deal.work}).status_code == 403
    assert aud.post("/transfers/register", data={"csrf": atoken, "work": deal.work}).status_code == 403

    made = _events(stack, "transfer.make")
    assert [e["ok"] for e in made].count(True) == 1 and [e["ok"] for e in made].count(False) >= 10
    assert all("600000" not in str(e) and "1000000" not in str(e) for e in made)
    assert [e["ok"] for e in _events(stack, "transfer.register")] == [True, False, False]
    assert [e["ok"] for e in _events(stack, "transfer.open")][:3] == [True, False, False]


def test_receive_a_work_and_a_record_held_by_another_key(deal: Deal) -> None:
    stack = deal.stack
    c = stack.node.consortium
    work = bytes(range(32))
    other = OwnerKey.generate()  # another member registers this work with its own key
    center = c.add_member("Provincial copyright center", [Role.COPYRIGHT_CENTER])
    c.submit(center, "zkp.register", register_payload(work, other, c.genesis.chain_id))
    staff = client_of(stack, "legal-staff")
    page = staff.get("/transfers", params={"work": work.hex()}).text
    assert 'id="record-seq">0<' in page and 'id="transfer-form"' not in page and "否" in page
    token = csrf_of(page)
    r = staff.post("/transfers/receive", data={"csrf": token, "work": work.hex()})
    assert r.status_code == 200 and 'id="received-key"' in r.text
    received = dict(re.findall(r'id="received-(key|pop)" value="([0-9a-f]+)"', r.text))
    assert len(received["key"]) == 66 and len(received["pop"]) == 128
    verify_key_possession(Point.decode(bytes.fromhex(received["key"])), bytes.fromhex(received["pop"]),
                          c.genesis.chain_id, work)  # fmt: skip
    assert stack.app.state.platform.owner_keys.held(work) == 1
    assert staff.post("/transfers/receive", data={"csrf": token, "work": "zz"}).status_code == 422
    assert staff.post("/transfers/receive", data={"work": work.hex()}).status_code == 403  # no CSRF
    assert [e["ok"] for e in _events(stack, "transfer.receive")] == [True, False]
    assert _events(stack, "csrf.refused")
    # someone else's record: refused before any proof, even with a well-formed request
    record = current_record(stack.chain.client, work)
    assert record is not None
    _, key, pop = _buyer(stack, work.hex())
    terms = parse_terms(key, pop, "10", ["a"], ["10"])
    keys = stack.app.state.platform.owner_keys
    with pytest.raises(TransferRefused, match="does not hold the current ownership record"):
        make_transfer(stack.chain.client, stack.node.genesis, keys, work, record, terms)


def test_form_fields_are_checked_before_any_proof() -> None:
    assert parse_amount(" 18446744073709551615 ", "p") == (1 << 64) - 1
    cases = [("", "enter an amount"), ("-1", "negative"), ("1e3", "whole number"), ("１２", "whole number")]
    cases += [(str(1 << 64), "at most"), ("9" * 50, "whole number")]
    for text, reason in cases:
        with pytest.raises(FormError, match=reason):
            parse_amount(text, "p")
    with pytest.raises(FormError, match="fill at least one row"):
        parse_shares(["", " "], ["", ""], 0)
    with pytest.raises(FormError, match="at most 64 bytes"):
        parse_shares(["方" * 22], ["1"], 1)
    with pytest.raises(FormError, match="control"):
        parse_shares(["a\u202eb"], ["1"], 1)
    with pytest.raises(FormError, match="at most 15 rows"):
        parse_shares([f"p{i}" for i in range(16)], ["1"] * 16, 16)
    with pytest.raises(FormError, match="66 hex digits"):
        parse_terms("02" * 32, "00" * 64, "1", ["a"], ["1"])
    with pytest.raises(FormError, match="only hex digits"):
        parse_terms("0g" * 33, "00" * 64, "1", ["a"], ["1"])
    assert parse_terms("02" * 33, "00 " * 64, "0", ["a"], ["0"]).shares == ((b"a", 0),)
