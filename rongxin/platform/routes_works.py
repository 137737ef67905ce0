"""Works: list and search, a work's page (fingerprint anchor and receipt), upload and register."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from chain.errors import ChainError
from chain.receipt import Receipt, verify_anchored_digest
from forensics.errors import ForensicsError
from rongxin.platform.accounts import Session
from rongxin.platform.chainview import ChainUnavailable
from rongxin.platform.web import audit, platform_of, redirect, render, require
from rongxin.platform.workstore import UploadError

router = APIRouter(prefix="/works")
VIEW = require("works.view")
REGISTER = require("works.register")
PAGE = 50
KINDS = ("image", "audio", "video")


@router.get("", response_class=HTMLResponse)
def list_works(
    request: Request, session: Annotated[Session, Depends(VIEW)], q: str = "", kind: str = "", page: int = 0
) -> Response:
    """Registered works, searched by id, title, owner or file name, filtered by kind."""
    store = platform_of(request).works
    page = max(0, page)
    kind = kind if kind in KINDS else ""
    found, more = store.search(q[:200], kind, page * PAGE, PAGE)
    return render(
        request,
        "works.html",
        works=found,
        q=q[:200],
        kind=kind,
        kinds=KINDS,
        page=page,
        more=more,
        total=store.count(),
    )


@router.get("/new", response_class=HTMLResponse)
def new_work(request: Request, session: Annotated[Session, Depends(REGISTER)]) -> Response:
    """The upload form."""
    return render(request, "work_new.html", error=None)


@router.post("")
async def register_work(request: Request, session: Annotated[Session, Depends(REGISTER)]) -> Response:
    """Save the upload, register it in the library, anchor its fingerprint digest."""
    p = platform_of(request)
    form = await request.form()
    upload = form.get("file")
    title = str(form.get("title", "")).strip()[:200]
    owner = str(form.get("owner", "")).strip()[:200]
    wanted_id = str(form.get("work_id", "")).strip()[:64]
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(request, "work_new.html", status=400, error="choose a file to upload")
    filename = upload.filename[:255]
    meta = {"title": title, "owner": owner, "registered_by": session.user.name if session.user else ""}
    try:
        reg = await run_in_threadpool(p.works.add, upload.file, filename, meta, wanted_id)
    except (UploadError, ForensicsError) as exc:
        audit(request, "work.register", ok=False, filename=filename, reason=str(exc)[:200])
        return render(request, "work_new.html", status=422, error=str(exc))
    audit(
        request,
        "work.register",
        ok=True,
        work_id=reg.work_id,
        kind=reg.kind,
        content_sm3=reg.content_digest.hex(),
    )
    note = ""
    if p.chain.configured:
        try:
            receipt, height = await run_in_threadpool(
                p.chain.anchor_digest, reg.fingerprint_digest, "work-fingerprint"
            )
            p.works.save_receipt(reg.work_id, receipt)
            audit(request, "work.anchor", work_id=reg.work_id, height=height)
        except ChainUnavailable as exc:
            note = "?anchor=failed"
            audit(request, "work.anchor", work_id=reg.work_id, ok=False, reason=str(exc)[:200])
    return redirect(f"/works/{reg.work_id}{note}")


@router.get("/{work_id}", response_class=HTMLResponse)
def work_page(
    request: Request, work_id: str, session: Annotated[Session, Depends(VIEW)], anchor: str = ""
) -> Response:
    """A work: kind, digests, metadata, and its fingerprint anchor verified against the genesis."""
    p = platform_of(request)
    reg = p.works.get(work_id)
    if reg is None:
        return render(request, "message.html", status=404, title="Not found", message=work_id)
    info, error = None, ""
    kept = p.works.receipt(work_id)
    if kept is not None and p.chain.genesis is not None:
        try:
            info = verify_anchored_digest(
                Receipt.from_bytes(kept), p.chain.genesis, reg.fingerprint_digest, 0, []
            )
        except ChainError as exc:
            error = str(exc)
    elif p.chain.configured:
        try:
            found = p.chain.anchor(reg.fingerprint_digest)
            info = found.receipt.verify(p.chain.trusted_genesis())
        except LookupError:
            pass
        except (ChainUnavailable, ChainError) as exc:
            error = str(exc)
    return render(request, "work.html", work=reg, info=info, error=error, anchor_failed=anchor == "failed")
