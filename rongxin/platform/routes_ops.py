"""The operations page: node status, key metrics over time, alerts, the operations audit log."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from rongxin.platform.accounts import Session
from rongxin.platform.chainview import heartbeat, probe_nodes
from rongxin.platform.charts import bars_svg, heartbeat_svg, lines_svg
from rongxin.platform.series import CHARTS, node_series
from rongxin.platform.web import platform_of, render, require

router = APIRouter()
AUDIT_ROWS = 200
ALERT_ROWS = 50


@router.get("/ops", response_class=HTMLResponse)
def ops(request: Request, session: Annotated[Session, Depends(require("ops.view"))]) -> Response:
    """Every configured node's status, heights and mempools as bars, the key metrics over
    time, the alerts firing and the latest changes, the latest audit events."""
    p = platform_of(request)
    probes = probe_nodes(p.config.nodes)
    names = {pr.url: str(pr.status.get("node") or pr.url) for pr in probes}
    charts: list[tuple[str, str, str]] = []
    firing: list[Any] = []
    changes: list[Any] = []
    if p.monitor is not None:
        per_node = {names.get(url, url): node_series(s) for url, s in p.monitor.ring.snapshot().items()}
        charts = [
            (key, caption, lines_svg([(n, series[key]) for n, series in per_node.items()], label=caption))
            for key, caption in CHARTS
        ]
        firing = [(since, a, names.get(a.target, a.target)) for since, a in p.monitor.book.firing]
        changes = [(c, names.get(c.alert.target, c.alert.target)) for c in reversed(p.monitor.book.history)][
            :ALERT_ROWS
        ]
    heights = bars_svg([(pr.status.get("node", pr.url), float(pr.status.get("height", 0))) for pr in probes])
    mempools = bars_svg(
        [(pr.status.get("node", pr.url), float(pr.status.get("mempool", 0))) for pr in probes]
    )
    events = tail_events(p.audit.path, AUDIT_ROWS)
    return render(
        request,
        "ops.html",
        probes=probes,
        map=heartbeat_svg(heartbeat(probes)),
        heights=heights,
        mempools=mempools,
        events=events,
        charts=charts,
        firing=firing,
        changes=changes,
        sampling=p.monitor is not None and p.monitor.config.sample_interval_s > 0,
    )


def tail_events(path: Path, rows: int, chunk: int = 256 * 1024) -> list[dict[str, Any]]:
    """The last ``rows`` events of a JSON-lines audit log, newest first, reading only its
    tail (the log grows without bound; a torn or foreign line is skipped).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> _ = p.write_text("".join(f'{{"n": {i}}}\\n' for i in range(1000)) + '{"torn')
    >>> [e["n"] for e in tail_events(p, 3, chunk=64)]
    [999, 998, 997]
    """
    if not path.is_file():
        return []
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = size
        data = b""
        while start > 0 and data.count(b"\n") <= rows:
            start = max(0, start - chunk)
            fh.seek(start)
            data = fh.read(size - start)
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first line may be cut
    out: list[dict[str, Any]] = []
    for line in reversed(lines):
        if len(out) == rows:
            break
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out
