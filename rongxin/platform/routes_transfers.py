"""Transfers: the recorded confidential transfers of a work, read through the member's node,
with what the auditor may open."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from chain.errors import ChainError
from rongxin.platform.accounts import Session
from rongxin.platform.transfers import parse_work, work_transfers
from rongxin.platform.web import audit, platform_of, render, require
from zkp.errors import ZkpError

router = APIRouter(prefix="/transfers")
VIEW = require("transfers.view")


@router.get("", response_class=HTMLResponse)
async def transfers(request: Request, session: Annotated[Session, Depends(VIEW)], work: str = "") -> Response:
    """The form for a work id and, given one, its recorded transfers."""
    p = platform_of(request)
    work = work.strip()[:200]
    if not work:
        return render(request, "transfers.html", work="", rows=None, auditor="", error="")
    work_id = parse_work(work)
    if work_id is None:
        return render(
            request, "transfers.html", status=422, work=work, rows=None, auditor="",
            error="a work id is 64 hex digits",
        )  # fmt: skip
    if not p.chain.configured or p.chain.client is None:
        return render(
            request, "transfers.html", status=503, work=work, rows=None, auditor="",
            error="No node is configured: the explorer has nothing to read.",
        )  # fmt: skip
    try:
        rows, auditor = await run_in_threadpool(work_transfers, p.chain.client, work_id)
    except (ChainError, ZkpError) as exc:
        audit(request, "transfer.list", ok=False, work=work_id.hex(), reason=str(exc)[:200])
        return render(request, "transfers.html", status=502, work=work, rows=None, auditor="", error=str(exc))
    audit(request, "transfer.list", ok=True, work=work_id.hex(), transfers=len(rows))
    return render(request, "transfers.html", work=work_id.hex(), rows=rows, auditor=auditor, error="")
