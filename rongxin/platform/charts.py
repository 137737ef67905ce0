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


def heartbeat_svg(nodes: Sequence[tuple[str, str, int | None]], width: int = 720) -> str:
    """The consortium at a glance: one disc per node, green online, amber catching up, red
    offline, with its name and height (names escaped).

    Parameters
    ----------
    nodes : sequence of (name, state, height)
        ``state`` is ``"up"``, ``"catching-up"`` or ``"down"``.
    """
    colours = {"up": "#2e9d4f", "catching-up": "#d9822b", "down": "#c0392b"}
    per_row = max(1, min(len(nodes), width // 120))
    rows = (len(nodes) + per_row - 1) // per_row
    height = max(1, rows) * 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img">'
    ]
    for i, (name, state, h) in enumerate(nodes):
        x = 60 + (i % per_row) * 120
        y = 30 + (i // per_row) * 90
        fill = colours.get(state, colours["down"])
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="18" fill="{fill}"><title>{escape(name)}: {state}</title></circle>'
        )
        parts.append(f'<text x="{x}" y="{y + 36}" font-size="12" text-anchor="middle">{escape(name)}</text>')
        label = "—" if h is None else f"#{h}"
        parts.append(
            f'<text x="{x}" y="{y + 5}" font-size="10" fill="#fff" text-anchor="middle">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


LINE_COLOURS = ("#3b6ea5", "#d9822b", "#2e9d4f", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#b7950b")


def lines_svg(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    width: int = 360,
    height: int = 150,
    label: str = "",
) -> str:
    """One line per ``(name, points)``, points ``(time s, value)`` oldest first, over a
    shared time axis (names escaped; a legend below; an empty chart shows a dash).

    Examples
    --------
    >>> svg = lines_svg([("node-0", [(0, 1), (10, 3)]), ("<b>", [(0, 2)])], label="height")
    >>> svg.count("<polyline"), "&lt;b&gt;" in svg
    (1, True)
    """
    pad_l, pad_r, pad_t = 44, 6, 8
    legend_h = 14 * ((len(series) + 2) // 3)
    pad_b = 18 + legend_h
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img">'
        f"<title>{escape(label)}</title>"
    )
    points = [p for _, pts in series for p in pts]
    if not points:
        return head + f'<text x="{pad_l}" y="{pad_t + inner_h // 2}">—</text></svg>'
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points)
    top = max(v for _, v in points)
    bottom = min(0.0, min(v for _, v in points))
    span_t = max(1e-9, t1 - t0)
    span_v = max(1e-9, top - bottom)

    def xy(t: float, v: float) -> str:
        x = pad_l + inner_w * (t - t0) / span_t
        return f"{x:.1f},{pad_t + inner_h - inner_h * (v - bottom) / span_v:.1f}"

    parts = [head]
    base = pad_t + inner_h
    parts.append(f'<line x1="{pad_l}" y1="{base}" x2="{width - pad_r}" y2="{base}" stroke="#888"/>')
    parts.append(f'<text x="2" y="{pad_t + 9}" font-size="10" fill="#555">{top:.4g}</text>')
    parts.append(f'<text x="2" y="{base}" font-size="10" fill="#555">{bottom:.4g}</text>')
    for i, (name, pts) in enumerate(series):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        if len(pts) == 1:
            x, y = xy(*pts[0]).split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>')
        elif pts:
            path = " ".join(xy(t, v) for t, v in pts)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5">'
                f"<title>{escape(name)}: {pts[-1][1]:.4g}</title></polyline>"
            )
        lx = pad_l + (i % 3) * (inner_w // 3)
        ly = height - legend_h + 10 + 14 * (i // 3)
        parts.append(f'<rect x="{lx}" y="{ly - 8}" width="8" height="8" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 11}" y="{ly}" font-size="10">{escape(name[:28])}</text>')
    parts.append(f'<text x="{pad_l}" y="{base + 12}" font-size="10" fill="#555">{span_t / 60:.1f} min</text>')
    parts.append("</svg>")
    return "".join(parts)
