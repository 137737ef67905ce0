"""Transfers: a work's recorded confidential transfers; registering its ownership record;
making a confidential transfer (proofs built here with this member's ownership key, sent
through the member's node); a key for receiving a work; and, for auditors, opening the
recorded transfers with the auditor key they bring for that one request.

Every ``POST`` names a permission of :mod:`rongxin.platform.roles` and carries the CSRF
token; every outcome, refused or done, is an audit event (never with a price, a share or
a key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from chain.crypto import atomic_write
from chain.errors import ChainError
from rongxin.platform.accounts import Session
from rongxin.platform.chainview import ChainUnavailable
from rongxin.platform.ownerkeys import OwnerKeyError, OwnerKeyStore
from rongxin.platform.transferform import SHARE_ROWS, FormError, parse_terms
from rongxin.platform.transfers import (
    TransferRefused,
    current_record,
    make_transfer,
    open_transfers,
    parse_work,
    receive_key,
    register_ownership,
    work_transfers,
)
from rongxin.platform.web import Platform, audit, platform_of, render, require
from zkp.auditor import open_auditor_key
from zkp.errors import ZkpError

router = APIRouter(prefix="/transfers")
VIEW = require("transfers.view")
MAKE = require("transfers.make")
OPEN = require("transfers.open")
MAX_KEY_FILE = 16 * 1024
"""Largest auditor key file accepted by the opening form."""


def _resolve(p: Platform, text: str) -> tuple[bytes | None, str]:
    """The ledger work id (32 bytes: the work's content SM3) and the library work id
    (``""`` when the work is not in this member's library) named by ``text``, which is
    either 64 hex digits or a library work id."""
    text = text.strip()[:200]
    work = parse_work(text)
    if work is not None:
        reg = p.works.library.find_content(work) if p.works.library_dir.exists() else None
        return work, reg.work_id if reg is not None else ""
    reg = p.works.get(text) if text and p.works.library_dir.exists() else None
    if reg is None:
        return None, ""
    return bytes(reg.content_digest), reg.work_id


def _form_fields(work: bytes, seq: int, owner: str, user: str) -> tuple[str, ...]:
    return ("transfer", work.hex(), str(seq), owner, user)


def _page(request: Request, status: int = 200, **context: Any) -> Response:
    defaults: dict[str, Any] = {
        "work": "",
        "library_work": "",
        "rows": None,
        "auditor": "",
        "error": "",
        "record": None,
        "mine": False,
        "mac": "",
        "share_rows": SHARE_ROWS,
        "form": {},
        "opened": None,
        "received": None,
    }
    return render(request, "transfers.html", status=status, **(defaults | context))


NO_NODE = "No node is configured: the explorer has nothing to read."


def _keys(p: Platform) -> OwnerKeyStore:
    if p.owner_keys is None or not p.chain.configured:
        raise ChainUnavailable(NO_NODE)
    return p.owner_keys


async def _show(
    request: Request, session: Session, text: str, status: int = 200, error: str = "", **extra: Any
) -> Response:
    """The page for one work: ownership record, recorded transfers, the forms the user may use."""
    p = platform_of(request)
    if not text.strip():
        return _page(request, status, error=error, **extra)
    work, library_work = _resolve(p, text)
    if work is None:
        return _page(
            request, 422 if status == 200 else status, work=text.strip()[:200],
            error=error or "a work id is 64 hex digits or a work of this library", **extra,
        )  # fmt: skip
    if not p.chain.configured or p.chain.client is None:
        return _page(request, 503, work=text.strip()[:200], error=NO_NODE, **extra)
    try:
        rows, auditor = await run_in_threadpool(work_transfers, p.chain.client, work)
        record = await run_in_threadpool(current_record, p.chain.client, work)
        mine = bool(record and p.owner_keys and p.owner_keys.get(work, record.owner) is not None)
    except (ChainError, ZkpError, OwnerKeyError) as exc:
        audit(request, "transfer.list", ok=False, work=work.hex(), reason=str(exc)[:200])
        return _page(request, 502, work=text.strip()[:200], error=str(exc), **extra)
    mac = ""
    if record is not None and mine and p.owner_keys is not None and session.user is not None:
        owner = record.owner.encode().hex()
        mac = p.owner_keys.form_mac(*_form_fields(work, record.seq, owner, session.user.name))
    if status == 200:
        audit(request, "transfer.list", ok=True, work=work.hex(), transfers=len(rows))
    context = {
        "work": work.hex(), "library_work": library_work, "rows": rows, "auditor": auditor,
        "record": record, "mine": mine, "mac": mac, "error": error,
    }  # fmt: skip
    return _page(request, status, **(context | extra))


@router.get("", response_class=HTMLResponse)
async def transfers(request: Request, session: Annotated[Session, Depends(VIEW)], work: str = "") -> Response:
    """The form for a work and, given one, its ownership record and recorded transfers."""
    return await _show(request, session, work)


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {
        "work": str(form.get("work", ""))[:200],
        "record": str(form.get("record", ""))[:200],
        "mac": str(form.get("mac", ""))[:200],
        "buyer_key": str(form.get("buyer_key", ""))[:400],
        "buyer_pop": str(form.get("buyer_pop", ""))[:400],
        "price": str(form.get("price", ""))[:100],
        "party": [str(v)[:200] for v in form.getlist("party")][:32],
        "amount": [str(v)[:100] for v in form.getlist("amount")][:32],
        "password": str(form.get("password", ""))[:1024],
        "key": form.get("key"),
    }


@router.post("/register", response_class=HTMLResponse)
async def register(request: Request, session: Annotated[Session, Depends(MAKE)]) -> Response:
    """Register the ownership record of one of this library's works (``zkp.register``)."""
    p = platform_of(request)
    f = await _form(request)
    work, library_work = _resolve(p, f["work"])
    try:
        if work is None or not library_work:
            raise TransferRefused(
                "only a work registered in this organization's library gets an ownership record here; "
                "register the work first"
            )
        keys = _keys(p)
        sent = await run_in_threadpool(
            register_ownership, p.chain.client, p.chain.trusted_genesis(), keys, work
        )
    except (TransferRefused, ChainUnavailable, ChainError, ZkpError, OwnerKeyError) as exc:
        audit(request, "transfer.register", ok=False, work=f["work"][:80], reason=str(exc)[:200])
        return await _show(request, session, f["work"], status=_status(exc), error=str(exc))
    _keep_receipt(p, sent.tx_id, sent.receipt)
    audit(request, "transfer.register", ok=True, work=sent.work, tx=sent.tx_id, height=sent.height)
    return render(request, "transfer_done.html", sent=sent, library_work=library_work)


@router.post("/receive", response_class=HTMLResponse)
async def receive(request: Request, session: Annotated[Session, Depends(MAKE)]) -> Response:
    """A fresh ownership key for receiving a work: its public key and proof for the seller."""
    p = platform_of(request)
    f = await _form(request)
    work, _ = _resolve(p, f["work"])
    try:
        if work is None:
            raise FormError("a work id is 64 hex digits or a work of this library")
        keys = _keys(p)
        public, pop = receive_key(keys, p.chain.trusted_genesis().chain_id, work)
    except (TransferRefused, FormError, ChainUnavailable, ChainError) as exc:
        audit(request, "transfer.receive", ok=False, work=f["work"][:80], reason=str(exc)[:200])
        return await _show(request, session, f["work"], status=_status(exc), error=str(exc))
    audit(request, "transfer.receive", ok=True, work=work.hex(), key=public)
    return await _show(request, session, work.hex(), received={"key": public, "pop": pop})


@router.post("/make", response_class=HTMLResponse)
async def make(request: Request, session: Annotated[Session, Depends(MAKE)]) -> Response:
    """Prove and send a confidential transfer of a work whose current record this member holds."""
    p = platform_of(request)
    f = await _form(request)
    work = parse_work(f["work"])
    user = session.user.name if session.user is not None else ""
    kept = {k: f[k] for k in ("buyer_key", "buyer_pop", "price", "party", "amount")}
    try:
        if work is None:
            raise FormError("a work id is 64 hex digits")
        seq_text, _, owner = f["record"].partition(":")
        if not seq_text.isdigit() or len(seq_text) > 19 or not owner:
            raise FormError("this form does not name the ownership record it was made for; reload the page")
        keys = _keys(p)
        if not keys.form_mac_ok(f["mac"], *_form_fields(work, int(seq_text), owner, user)):
            raise FormError("this form was altered or made for another user; reload the page")
        terms = parse_terms(f["buyer_key"], f["buyer_pop"], f["price"], f["party"], f["amount"])
        record = await run_in_threadpool(current_record, p.chain.client, work)
        if record is None or record.seq != int(seq_text) or record.owner.encode().hex() != owner:
            raise FormError(
                "the ownership record changed since this form was opened (the work was transferred); "
                "reload the page"
            )
        genesis = p.chain.trusted_genesis()
        sent = await run_in_threadpool(make_transfer, p.chain.client, genesis, keys, work, record, terms)
    except (TransferRefused, FormError, ChainUnavailable, ChainError, ZkpError, OwnerKeyError) as exc:
        audit(request, "transfer.make", ok=False, work=f["work"][:80], reason=str(exc)[:200])
        return await _show(request, session, f["work"], status=_status(exc), error=str(exc), form=kept)
    _keep_receipt(p, sent.tx_id, sent.receipt)
    audit(request, "transfer.make", ok=True, work=sent.work, tx=sent.tx_id, height=sent.height, seq=sent.seq)
    _, library_work = _resolve(p, sent.work)
    return render(request, "transfer_done.html", sent=sent, library_work=library_work)


@router.post("/open", response_class=HTMLResponse)
async def open_recorded(request: Request, session: Annotated[Session, Depends(OPEN)]) -> Response:
    """Open a work's recorded transfers with the auditor key file and password sent with the
    request (used for this request only, never kept)."""
    p = platform_of(request)
    f = await _form(request)
    work = parse_work(f["work"])
    try:
        if work is None:
            raise FormError("a work id is 64 hex digits")
        upload = f["key"]
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise FormError("choose the auditor key file")
        blob = await upload.read(MAX_KEY_FILE + 1)
        if len(blob) > MAX_KEY_FILE:
            raise FormError("this is not an auditor key file (too large)")
        key = await run_in_threadpool(open_auditor_key, blob, f["password"])
        if not p.chain.configured or p.chain.client is None:
            raise ChainUnavailable(NO_NODE)
        opened = await run_in_threadpool(open_transfers, p.chain.client, work, key)
    except (TransferRefused, FormError, ChainUnavailable, ChainError, ZkpError) as exc:
        audit(request, "transfer.open", ok=False, work=f["work"][:80], reason=str(exc)[:200])
        return await _show(request, session, f["work"], status=_status(exc), error=str(exc))
    failed = sum(1 for o in opened if o.problem)
    audit(request, "transfer.open", ok=not failed, work=work.hex(), transfers=len(opened), failed=failed)
    return await _show(request, session, work.hex(), opened=opened)


def _status(exc: Exception) -> int:
    if isinstance(exc, ChainUnavailable):
        return 503
    if isinstance(exc, FormError):
        return 422
    if isinstance(exc, ZkpError):  # a key file that does not open
        return 422
    if isinstance(exc, TransferRefused):
        return 409
    return 502


def _keep_receipt(p: Platform, tx_id: str, receipt: bytes) -> None:
    folder = Path(p.config.data_dir) / "transfer-receipts"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / f"{tx_id}.receipt.cbor", receipt, 0o644, overwrite=True)


@router.get("/receipts/{tx_id}")
def receipt(request: Request, tx_id: str, session: Annotated[Session, Depends(VIEW)]) -> Response:
    """A kept receipt of a registration or transfer made here (CBOR)."""
    if parse_work(tx_id) is None:
        return Response("a transaction id is 64 hex digits", status_code=422, media_type="text/plain")
    path = Path(platform_of(request).config.data_dir) / "transfer-receipts" / f"{tx_id.lower()}.receipt.cbor"
    if not path.is_file():
        return Response("no receipt kept for this transaction", status_code=404, media_type="text/plain")
    return Response(
        path.read_bytes(),
        media_type="application/cbor",
        headers={"content-disposition": f'attachment; filename="{tx_id.lower()}.receipt.cbor"'},
    )
