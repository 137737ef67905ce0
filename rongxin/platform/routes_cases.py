"""Scans and cases: start a scan, watch it (page and WebSocket), the case list with
filters, a case page (the work beside the copy), its status workflow and takedown notice."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from crawlers.store import Case
from rongxin.platform.accounts import Session
from rongxin.platform.casework import LABELS, STATUSES, TRANSITIONS, WorkflowError
from rongxin.platform.i18n import LANGUAGES
from rongxin.platform.roles import allowed
from rongxin.platform.scanrunner import LABELS as SCAN_LABELS
from rongxin.platform.scanrunner import ScanRequestError
from rongxin.platform.web import COOKIE, audit, platform_of, redirect, render, require

router = APIRouter()
VIEW = require("cases.view")
MANAGE = require("cases.manage")
KINDS = ("image", "audio", "video")
ROWS = 500


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def _float(value: Any, default: float) -> float:
    try:
        out = float(str(value))
    except ValueError:
        return default
    return out if out == out else default  # NaN


@router.get("/cases", response_class=HTMLResponse)
def list_cases(
    request: Request,
    session: Annotated[Session, Depends(VIEW)],
    status: str = "",
    kind: str = "",
    work: str = "",
    scan: str = "",
) -> Response:
    """The scans and their cases, filtered by status, kind, work id and scan."""
    p = platform_of(request)
    status = status if status in STATUSES else ""
    kind = kind if kind in KINDS else ""
    work = work.strip()[:200]
    scans = p.scans.scans()
    rows: list[tuple[str, Case, str]] = []
    for scan_id in scans:
        if len(rows) >= ROWS:
            break
        if scan and scan != scan_id:
            continue
        states = p.cases.statuses(scan_id)
        for case in p.scans.cases(scan_id):
            st = states.get(case.id, "new")
            if (status and st != status) or (kind and case.kind != kind) or (work and work != case.work_id):
                continue
            rows.append((scan_id, case, st))
            if len(rows) >= ROWS:
                break
    return render(
        request,
        "cases.html",
        scans=scans[:50],
        rows=rows,
        fstatus=status,
        kind=kind,
        work=work,
        scan=scan if scan in scans else "",
        statuses=STATUSES,
        labels=LABELS,
        kinds=KINDS,
        error=None,
    )


@router.post("/scans")
async def start_scan(request: Request, session: Annotated[Session, Depends(MANAGE)]) -> Response:
    """Start a scan of the seeds against the platform's library; to its progress page."""
    p = platform_of(request)
    form = await request.form()
    seeds = str(form.get("seeds", ""))[:20000].split()
    allow = str(form.get("allow", ""))[:2000].split()
    scope = str(form.get("scope", "host"))
    try:
        scan_id = p.scans.start(
            seeds,
            scope,
            allow,
            _int(form.get("max_pages", 100), -1),
            _int(form.get("depth", 2), -1),
            _float(form.get("delay", 1.0), -1.0),
        )
    except ScanRequestError as exc:
        audit(request, "scan.start", ok=False, reason=str(exc)[:200])
        return render(
            request,
            "cases.html",
            status=422,
            scans=p.scans.scans()[:50],
            rows=[],
            fstatus="",
            statuses=STATUSES,
            labels=LABELS,
            kinds=KINDS,
            kind="",
            work="",
            scan="",
            error=str(exc),
        )
    audit(request, "scan.start", ok=True, scan=scan_id, seeds=seeds[:10], scope=scope)
    return redirect(f"/scans/{scan_id}")


def _scan_or_404(request: Request, scan_id: str) -> Response | None:
    if scan_id not in platform_of(request).scans.scans():
        return render(request, "message.html", status=404, title="Not found", message=scan_id)
    return None


@router.get("/scans/{scan_id}", response_class=HTMLResponse)
def scan_page(request: Request, scan_id: str, session: Annotated[Session, Depends(VIEW)]) -> Response:
    """A scan's progress (refreshes itself while running; the WebSocket updates it live)."""
    missing = _scan_or_404(request, scan_id)
    if missing is not None:
        return missing
    p = platform_of(request)
    return render(
        request,
        "scan.html",
        labels=SCAN_LABELS,
        scan=p.scans.state(scan_id),
        config=p.scans.config(scan_id),
        files=sorted(p.scans.files(scan_id)),
        cases=p.scans.cases(scan_id)[:ROWS],
    )


@router.get("/scans/{scan_id}/files/{name}")
def scan_file(
    request: Request, scan_id: str, name: str, session: Annotated[Session, Depends(VIEW)]
) -> Response:
    """Download an evidence package or report from the scan directory."""
    missing = _scan_or_404(request, scan_id)
    if missing is not None:
        return missing
    files = platform_of(request).scans.files(scan_id)
    if name not in files:
        return render(request, "message.html", status=404, title="Not found", message=name)
    audit(request, "scan.download", scan=scan_id, file=name)
    return FileResponse(files[name], filename=name, media_type="application/octet-stream")


async def scan_socket(websocket: WebSocket) -> None:
    """``/ws/scans/{id}``: the scan's progress as JSON about once a second until it ends."""
    p = platform_of(websocket)  # type: ignore[arg-type]
    session = p.store.session(websocket.cookies.get(COOKIE))
    scan_id = str(websocket.path_params.get("scan_id", ""))
    if session is None or session.user is None or not allowed(session.user.roles, "cases.view"):
        await websocket.close(code=4403)
        return
    origin = websocket.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != websocket.headers.get("host", ""):
        await websocket.close(code=4403)  # another site's page may not read the progress
        return
    if scan_id not in p.scans.scans():
        await websocket.close(code=4404)
        return
    await websocket.accept()
    try:
        for _ in range(3600):
            state = p.scans.state(scan_id)
            await websocket.send_text(
                json.dumps({"state": state.state, "counts": state.counts, "error": state.error})
            )
            if state.state != "running":
                break
            await asyncio.sleep(1.0)
    except WebSocketDisconnect:
        return
    await websocket.close()


def _find_case(request: Request, scan_id: str, case_id: int) -> Case:
    """The case, or a 404 page."""
    p = platform_of(request)
    found = None
    if scan_id in p.scans.scans():
        found = next((c for c in p.scans.cases(scan_id) if c.id == case_id), None)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no case {scan_id[:40]}/{case_id}")
    return found


@router.get("/cases/{scan_id}/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request, scan_id: str, case_id: int, session: Annotated[Session, Depends(VIEW)]
) -> Response:
    """The work and the copy side by side, the evidence, the status and its history."""
    p = platform_of(request)
    case = _find_case(request, scan_id, case_id)
    status = p.cases.status(scan_id, case_id)
    return render(
        request,
        "case.html",
        labels=LABELS,
        scan_id=scan_id,
        case=case,
        work=p.works.get(case.work_id),
        case_status=status,
        moves=sorted(TRANSITIONS[status], key=STATUSES.index),
        history=p.cases.history(scan_id, case_id),
        evidence=json.dumps(case.evidence, indent=2, ensure_ascii=False, sort_keys=True)[:20000],
        files=sorted(p.scans.files(scan_id)),
        error=None,
    )


@router.post("/cases/{scan_id}/{case_id}/status")
async def move_case(
    request: Request, scan_id: str, case_id: int, session: Annotated[Session, Depends(MANAGE)]
) -> Response:
    """Move the case along the workflow (refused, 409, when the move is not allowed)."""
    p = platform_of(request)
    _find_case(request, scan_id, case_id)
    form = await request.form()
    target = str(form.get("status", ""))[:40]
    note = str(form.get("note", "")).strip()
    user = session.user.name if session.user else ""
    try:
        previous = p.cases.move(scan_id, case_id, target, user, note)
    except WorkflowError as exc:
        audit(request, "case.status", ok=False, scan=scan_id, case=case_id, to=target, reason=str(exc))
        return render(request, "message.html", status=409, title="Refused", message=str(exc))
    audit(request, "case.status", ok=True, scan=scan_id, case=case_id, previous=previous, to=target)
    return redirect(f"/cases/{scan_id}/{case_id}")


@router.get("/cases/{scan_id}/{case_id}/notice", response_class=HTMLResponse)
def notice(
    request: Request,
    scan_id: str,
    case_id: int,
    session: Annotated[Session, Depends(VIEW)],
    lang: str = "zh",
) -> Response:
    """The takedown notice of a case, in Chinese or English."""
    p = platform_of(request)
    case = _find_case(request, scan_id, case_id)
    lang = lang if lang in LANGUAGES else "zh"
    work = p.works.get(case.work_id)
    receipt = p.works.receipt(case.work_id)
    audit(request, "case.notice", scan=scan_id, case=case_id, lang=lang)
    return render(
        request,
        f"notice_{lang}.html",
        scan_id=scan_id,
        case=case,
        work=work,
        receipt_ref=receipt_reference(receipt),
        org=p.config.name,
    )


def receipt_reference(receipt: bytes | None) -> str:
    """The SM3 of the work's kept anchor receipt (its reference in a notice), or ``""``.

    Examples
    --------
    >>> receipt_reference(None)
    ''
    >>> len(receipt_reference(b"x"))
    64
    """
    if receipt is None:
        return ""
    from chain.crypto.sm3 import sm3

    return sm3(receipt).hex()
