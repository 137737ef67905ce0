"""The regulator console: the catalogue and the agencies' policy limits, a query run across
the agencies, its answer, each agency's decision, and the audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, Response

from rongxin.platform.accounts import Session
from rongxin.platform.console import ConsoleError, Outcome
from rongxin.platform.web import audit, platform_of, render, require

router = APIRouter(prefix="/regulator")
RUN = require("query.run")
EXAMPLE = "SELECT COUNT(*) FROM cases WHERE status = 'confirmed' GROUP BY county"


def _page(request: Request, outcome: Outcome | None, query: str, status: int = 200) -> Response:
    console = platform_of(request).console
    context: dict[str, Any] = {"catalogue": [], "limits": [], "trail": [], "error": ""}
    try:
        context.update(catalogue=console.catalogue(), limits=console.limits(), trail=console.trail(20))
    except ConsoleError as exc:
        context["error"] = str(exc)
    return render(request, "regulator.html", status=status, outcome=outcome, query=query, **context)


@router.get("", response_class=HTMLResponse)
def console_page(request: Request, session: Annotated[Session, Depends(RUN)]) -> Response:
    """The query form with the catalogue and each agency's limits shown before running."""
    return _page(request, None, EXAMPLE)


@router.post("", response_class=HTMLResponse)
async def run_query(request: Request, session: Annotated[Session, Depends(RUN)]) -> Response:
    """Run the query across the agencies; the answer or the refusal, with every decision."""
    form = await request.form()
    query = str(form.get("query", ""))[:4000]
    console = platform_of(request).console
    if not query.strip():
        return _page(request, Outcome(query, error="write a query"), query, status=422)
    try:
        outcome = await run_in_threadpool(console.run, query)
    except ConsoleError as exc:
        return _page(request, Outcome(query, error=str(exc)), query, status=503)
    audit(
        request,
        "query.run",
        ok=not outcome.error,
        refused_by=outcome.refused_by,
        reason=outcome.error[:200],
        record=outcome.record_digest,
        anchored_at=outcome.anchor_height,
    )
    return _page(request, outcome, query, status=200 if not outcome.error else 422)


@router.get("/receipts/{digest}")
def record_receipt(request: Request, digest: str, session: Annotated[Session, Depends(RUN)]) -> Response:
    """The receipt of an anchored audit record (CBOR download, for the receipt checker)."""
    path = platform_of(request).console.receipt_file(digest)
    if path is None:
        return render(request, "message.html", status=404, title="Error", message="No such receipt.")
    return FileResponse(path, media_type="application/cbor", filename=path.name)
