"""The operations page (node status, key metrics, the operations audit log) and the pages
of parts not built yet."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from rongxin.platform.accounts import Session
from rongxin.platform.chainview import probe_nodes
from rongxin.platform.charts import bars_svg
from rongxin.platform.web import platform_of, render, require

router = APIRouter()
AUDIT_ROWS = 200


@router.get("/ops", response_class=HTMLResponse)
def ops(request: Request, session: Annotated[Session, Depends(require("ops.view"))]) -> Response:
    """Every configured node's status, heights and mempools as bars, the latest audit events."""
    p = platform_of(request)
    probes = probe_nodes(p.config.nodes)
    heights = bars_svg([(pr.status.get("node", pr.url), float(pr.status.get("height", 0))) for pr in probes])
    mempools = bars_svg(
        [(pr.status.get("node", pr.url), float(pr.status.get("mempool", 0))) for pr in probes]
    )
    events = p.audit.read()[-AUDIT_ROWS:][::-1]
    return render(request, "ops.html", probes=probes, heights=heights, mempools=mempools, events=events)


def _not_yet(permission: str, title: str, template_title: str) -> None:
    def page(request: Request) -> Response:
        return render(request, "not_yet.html", title=template_title)

    page.__name__ = f"not_yet_{title}"
    page.__doc__ = f"{template_title}: not built yet."
    router.add_api_route(
        f"/{title}",
        page,
        methods=["GET"],
        response_class=HTMLResponse,
        dependencies=[Depends(require(permission))],
    )


_not_yet("cases.view", "cases", "Scans and cases")
_not_yet("query.run", "regulator", "Regulator console")
_not_yet("transfers.view", "transfers", "Transfers")
