"""The report of a video case: a real programme, a letterboxed excerpt of it, the library's match."""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from forensics.evidence import VideoEvidence
from forensics.report import build_html
from tests.forensics.report.conftest import Found, _found
from tests.forensics.video.conftest import Media, excerpt


@pytest.fixture(scope="module")
def video_found(tmp_path_factory: pytest.TempPathFactory, media: Media) -> Found:
    d = tmp_path_factory.mktemp("report-video")
    work = media.programmes["alpha"]
    copy = excerpt(work, d / "copy.mp4", 3.0, 8.0, "scale=320:-2", "pad=iw:ih+60:0:30")
    return _found(d / "lib", work, copy, "alpha", {"title": "节目 alpha"})


def test_video_report_frame_pairs_along_the_alignment(video_found: Found) -> None:
    ev = video_found.evidence
    assert isinstance(ev, VideoEvidence) and ev.frame_pairs
    assert ev.ref_start - ev.query_start == pytest.approx(3.0, abs=0.5)
    html = build_html(video_found.report_input())
    figs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    pairs = cv2.imdecode(np.frombuffer(base64.b64decode(figs[1]), np.uint8), cv2.IMREAD_COLOR)
    assert pairs is not None and pairs.shape[0] > 200 * min(len(ev.frame_pairs), 6)
    # QR, frame pairs, picture similarity, and the soundtrack's spectrograms and similarity when it was heard
    assert len(figs) == 3 + (2 if ev.sound is not None else 0)
    assert "沿对齐关系抽取的帧对" in html and "每秒画面相似度" in html
    plot = cv2.imdecode(np.frombuffer(base64.b64decode(figs[2]), np.uint8), cv2.IMREAD_COLOR)
    assert plot is not None and plot.shape[1] > 700


@pytest.mark.slow
def test_video_frames_missing_are_reported(video_found: Found, tmp_path: Path) -> None:
    broken = tmp_path / "copy.mp4"
    broken.write_bytes(video_found.copy_file.read_bytes()[:300])
    html = build_html(dataclasses.replace(video_found.report_input(), copy_file=broken), "en")
    assert "The figure could not be drawn" in html


@pytest.mark.slow
def test_video_report_pdf_pages(video_found: Found, tmp_path: Path) -> None:
    from rongxin.report_pdf import render_pdf
    from tests.rongxin.pdf_pages import check_pdf_pages

    pdf = tmp_path / "video.pdf"
    pdf.write_bytes(render_pdf(build_html(video_found.report_input())))
    images = check_pdf_pages(pdf, tmp_path)
    # the tall frame-pair figure is scaled into one page, not cut at its bottom
    for png in images:
        img = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
        assert img is not None
        bottom = img[-int(14 / 25.4 * 60) :, :]
        dark = bottom < 128
        assert dark.sum() < 200, f"{png.name}: content in the bottom margin"
