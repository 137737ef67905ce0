"""Check a report PDF as page images: the CJK face embedded and drawn, nothing outside the margins."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2
import numpy as np

A4_WIDTH_PT = 595.28
A4_HEIGHT_PT = 841.89
MARGIN_PT = 13 / 25.4 * 72  # the report's left and right page margins
BOTTOM_PT = 16 / 25.4 * 72  # the bottom margin (it holds the page number only)


def _words(pdf: Path) -> list[tuple[int, float, float, float, float, str]]:
    """Every word of the PDF with its page and box (points), from ``pdftotext -bbox``."""
    html = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    out = []
    for page_no, page in enumerate(html.split("<page ")[1:], start=1):
        for m in re.finditer(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', page
        ):
            x0, y0, x1, y1 = (float(m.group(i)) for i in range(1, 5))
            out.append((page_no, x0, y0, x1, y1, m.group(5)))
    return out


def check_pdf_pages(pdf: Path, tmp: Path, dpi: int = 60) -> list[Path]:
    """Assert the PDF's pages render the report properly; return the page images (PNG).

    * the WenQuanYi Micro Hei face is embedded;
    * every word lies inside the left and right margins, and above the bottom margin (the
      page number excepted); the margin strips of every rendered page are blank;
    * nothing was shrunk to fit (the title starts at the left margin);
    * the title's six CJK glyphs each have ink and differ from each other (tofu boxes or
      blanks would be alike).
    """
    # fonts: the CJK face is embedded
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "WenQuanYiMicroHei" in fonts
    words = _words(pdf)
    pages = max(w[0] for w in words)
    assert 2 <= pages <= 12
    # no overflow: every word inside the printable width, and the right margin strip blank
    for page, x0, _y0, x1, y1, text in words:
        assert x0 >= MARGIN_PT - 2 and x1 <= A4_WIDTH_PT - MARGIN_PT + 2, (page, text, x0, x1)
        if not re.fullmatch(r"\d+|/", text):
            assert y1 <= A4_HEIGHT_PT - BOTTOM_PT + 2, (page, text, y1)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(tmp / "p")], check=True)
    images = sorted(tmp.glob("p-*.png"))
    assert len(images) == pages
    strip = int(MARGIN_PT * dpi / 72) - 3
    for png in images:
        img = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
        assert img is not None and img.shape[1] == round(A4_WIDTH_PT * dpi / 72)
        assert img[:, -strip:].min() > 240, f"{png.name}: ink in the right margin"
        assert img[:, :strip].min() > 240, f"{png.name}: ink in the left margin"
    # CJK drawn: the title's six glyphs each have ink and differ from each other (tofu boxes
    # or blanks would be identical)
    title = next((w for w in words if w[5].startswith("侵权取证报告")), None)
    assert title is not None, "the Chinese title is not in the text layer (no CJK font?)"
    # the printer shrinks a page that holds something wider than A4: the title then moves in
    assert abs(title[1] - MARGIN_PT) < 6, f"content shrunk to fit the page (title at x={title[1]:.1f})"
    page1 = cv2.imread(str(images[0]), cv2.IMREAD_GRAYSCALE)
    assert page1 is not None
    k = dpi / 72
    x0, y0, x1, y1 = (round(v * k) for v in title[1:5])
    cell = (x1 - x0) / len(title[5])
    glyphs = [page1[y0:y1, round(x0 + i * cell) : round(x0 + (i + 1) * cell)].astype(float) for i in range(6)]
    w = min(g.shape[1] for g in glyphs)
    glyphs = [g[:, :w] for g in glyphs]
    for g in glyphs:
        assert (g < 128).sum() > 10, "a blank glyph"
    for i in range(6):
        for j in range(i + 1, 6):
            assert np.abs(glyphs[i] - glyphs[j]).mean() > 10, f"glyphs {i} and {j} look alike (tofu?)"
    return images
