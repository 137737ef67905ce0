"""Server-rendered SVG charts (no JavaScript, no downloaded library).

Examples
--------
>>> svg = production_svg([(1, 0, 2), (2, 1000, 0), (3, 61000, 5)], buckets=2)
>>> svg.startswith("<svg") and svg.count("<rect") >= 2
True
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def production_svg(
    rows: Sequence[tuple[int, int, int]],
    buckets: int = 30,
    width: int = 720,
    height: int = 180,
    label: str = "",
) -> str:
    """Bars of transactions per time interval and a line of blocks per interval.

    Parameters
    ----------
    rows : sequence of (height, time_ms, transactions)
        Blocks, oldest first.
    buckets : int
        Number of equal time intervals between the first and last block.
    label : str
        Caption text (escaped).
    """
    pad_l, pad_b, pad_t = 40, 22, 10
    inner_w, inner_h = width - pad_l - 8, height - pad_b - pad_t
    head = f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img">'
    title = f"<title>{escape(label)}</title>"
    if not rows:
        return head + title + f'<text x="{pad_l}" y="{height // 2}">—</text></svg>'
    t0, t1 = rows[0][1], rows[-1][1]
    span = max(1, t1 - t0)
    txs = [0] * buckets
    blocks = [0] * buckets
    for _, t, n in rows:
        i = min(buckets - 1, (t - t0) * buckets // span)
        txs[i] += n
        blocks[i] += 1
    top = max(1, max(txs), max(blocks))
    bw = inner_w / buckets
    parts = [head, title]
    parts.append(
        f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - 8}" y2="{pad_t + inner_h}" stroke="#888"/>'
    )
    parts.append(f'<text x="4" y="{pad_t + 10}" font-size="11" fill="#555">{top}</text>')
    parts.append(f'<text x="4" y="{pad_t + inner_h}" font-size="11" fill="#555">0</text>')
    for i, n in enumerate(txs):
        h = inner_h * n / top
        x = pad_l + i * bw
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{pad_t + inner_h - h:.1f}" width="{max(1.0, bw - 2):.1f}" '
            f'height="{h:.1f}" fill="#3b6ea5"><title>{n} tx, {blocks[i]} blocks</title></rect>'
        )
    pts = " ".join(
        f"{pad_l + (i + 0.5) * bw:.1f},{pad_t + inner_h - inner_h * b / top:.1f}"
        for i, b in enumerate(blocks)
    )
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#d9822b" stroke-width="2"/>')
    secs = span / 1000
    parts.append(
        f'<text x="{pad_l}" y="{height - 5}" font-size="11" fill="#555">'
        f"#{rows[0][0]} – #{rows[-1][0]} · {secs:.0f} s</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(items: Sequence[tuple[str, float]], width: int = 360, row: int = 22) -> str:
    """Horizontal bars, one per ``(label, value)`` (labels escaped)."""
    height = row * max(1, len(items)) + 4
    top = max([v for _, v in items] + [1.0])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img">'
    ]
    for i, (name, value) in enumerate(items):
        w = (width - 160) * value / top
        y = i * row + 2
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(name)}</text>')
        parts.append(f'<rect x="110" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="#3b6ea5"/>')
        parts.append(f'<text x="{114 + w:.1f}" y="{y + 14}" font-size="12">{value:g}</text>')
    parts.append("</svg>")
    return "".join(parts)
