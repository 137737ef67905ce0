"""The HTML report built from real matches: content, escaping, languages, bad input."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re

import cv2
import numpy as np
import pytest

from chain.crypto.sm3 import sm3_file
from forensics.evidence import AudioEvidence, ImageFeatureEvidence
from forensics.report import (
    CaptureEvent,
    CaptureSummary,
    FileDigest,
    ReceiptSummary,
    ReportError,
    SignatureSummary,
    build_html,
    check_file,
    evidence_from_json,
    verification_text,
)
from forensics.report.figures import audio_similarity_series

from .conftest import HOSTILE, Found


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def _decode(png: bytes, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), flags)
    assert img is not None
    return img


def _no_external(html: str) -> None:
    assert not re.search(r'\b(src|href)="(?!data:)', html), "an external reference"
    assert "<script" not in html.lower()
    assert "onerror=" not in html.replace("onerror=alert(2)&gt;", "")


def _capture(found: Found) -> CaptureSummary:
    shot = cv2.imencode(".png", np.full((40, 60, 3), 200, np.uint8))[1].tobytes()
    receipt = ReceiptSummary(
        "package",
        "rongxin-test-chain",
        4711,
        "2026-12-05T06:01:02Z",
        "aa" * 32,
        "bb" * 32,
        "CN=County Media Center",
        ("node-1", "node-2", "node-3"),
        "cc" * 32,
        verified=True,
        file_name="package <receipt>.cbor",
    )
    sig = SignatureSummary("SM2-with-SM3", "CN=Center <x>", "04" + "dd" * 64, "ee" * 32, "ff" * 70, True)
    return CaptureSummary(
        package_name=f"case-17{HOSTILE}.wacz",
        package_sm3="12" * 32,
        screenshot_png=shot,
        timeline=(CaptureEvent("2026-12-05T06:00:01Z", f"page loaded {HOSTILE}"),),
        environment=(("chromium", "156.0"), ("resolved", "127.0.0.1")),
        files=(FileDigest(f"screenshot{HOSTILE}.png", "34" * 32, "56" * 32, 100, "screenshot"),),
        signature=sig,
        receipt=receipt,
    )


def test_image_report_shows_the_pair_digests_and_escapes_hostile_strings(image_found: Found) -> None:
    ev = image_found.evidence
    assert isinstance(ev, ImageFeatureEvidence)
    html = build_html(image_found.report_input())
    _no_external(html)
    assert "侵权取证报告" in html and "无取证包" in html
    for path in (image_found.work_file, image_found.copy_file):
        assert sm3_file(path).hex() in html
        assert hashlib.sha256(path.read_bytes()).hexdigest() in html
    assert image_found.registration.fingerprint_digest.hex() in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the page URL and the title, escaped
    assert "县融媒体中心 &lt;b&gt;" in html
    assert "copy&lt;1&gt;.jpg" in html and "copy<1>" not in html
    figs = _images(html)
    pair = _decode(figs[1])  # figs[0] is the QR code
    assert pair.shape[0] == 420 and pair.shape[1] > 600
    drawn = int(re.search(r"（(\d+) 对）", html).group(1))  # type: ignore[union-attr]
    assert drawn >= ev.inlier_threshold
    # red region outline and green correspondences are drawn on the picture
    assert ((pair[:, :, 2] > 200) & (pair[:, :, 1] < 60) & (pair[:, :, 0] < 60)).sum() > 500
    assert ((pair[:, :, 1] > 150) & (pair[:, :, 2] < 80) & (pair[:, :, 0] < 100)).sum() > 200


def test_qr_code_holds_the_verification(image_found: Found) -> None:
    inp = image_found.report_input()
    html = build_html(inp)
    qr = _decode(_images(html)[0], cv2.IMREAD_GRAYSCALE)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(qr)
    assert text == verification_text(inp)
    assert inp.case.content_sm3 in text
    url = "https://verify.example.org/case/17?d=" + inp.case.content_sm3
    html = build_html(dataclasses.replace(inp, verify_url=url))
    qr = _decode(_images(html)[0], cv2.IMREAD_GRAYSCALE)
    assert cv2.QRCodeDetector().detectAndDecode(qr)[0] == url


def test_capture_package_fields_are_shown_escaped(image_found: Found) -> None:
    inp = dataclasses.replace(image_found.report_input(), capture=_capture(image_found))
    html = build_html(inp, "en")
    _no_external(html)
    assert "No capture package" not in html
    for needle in ("4711", "2026-12-05T06:01:02Z", "node-1, node-2, node-3", "aa" * 32, "bb" * 32, "cc" * 32):
        assert needle in html
    assert "ff" * 70 in html and "SM2-with-SM3" in html and "CN=Center &lt;x&gt;" in html
    assert "34" * 32 in html and "56" * 32 in html  # the package file's digests
    assert "page loaded &#34;&gt;&lt;script&gt;" in html
    assert "rongxin evidence verify" in html and "rongxin verify" in html
    assert 'src="data:image/jpeg;base64,' in html.split("<h3>Page screenshot</h3>")[1]
    assert html.count("data:image/png") == 2 and html.count("data:image/jpeg") == 1  # QR, pair; screenshot
    assert "<h3>evidence package</h3>" in html
    work_receipt = dataclasses.replace(_capture(image_found).receipt, subject="work <registration>")  # type: ignore[type-var]
    no_pkg_receipt = dataclasses.replace(_capture(image_found), receipt=None)
    html = build_html(dataclasses.replace(inp, capture=no_pkg_receipt, work_receipt=work_receipt), "en")
    assert "<h3>work &lt;registration&gt;</h3>" in html and "<h3>evidence package</h3>" not in html


def test_english_switch_and_unknown_language(image_found: Found) -> None:
    en = build_html(image_found.report_input(), "en")
    assert "Infringement evidence report" in en and "No capture package" in en
    assert "侵权取证报告" not in en and 'lang="en"' in en
    with pytest.raises(ReportError, match="language"):
        build_html(image_found.report_input(), "fr")


def test_missing_files_are_said_not_drawn(image_found: Found) -> None:
    html = build_html(dataclasses.replace(image_found.report_input(), copy_file=None), "en")
    assert "The copy&#39;s file was not supplied" in html
    assert len(_images(html)) == 1  # the QR code only
    html = build_html(dataclasses.replace(image_found.report_input(), work_file=None))
    assert "未提供登记作品的原始文件" in html


def test_check_file_refuses_another_file(image_found: Found) -> None:
    assert check_file(image_found.copy_file, sm3_file(image_found.copy_file).hex(), "copy").size
    with pytest.raises(ReportError, match="not the recorded copy"):
        check_file(image_found.work_file, sm3_file(image_found.copy_file).hex(), "copy")
    with pytest.raises(ReportError, match="cannot read"):
        check_file(image_found.work_file.with_name("missing.png"), "00", "work")


def test_a_copy_that_does_not_decode_is_reported_not_fatal(image_found: Found, tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "copy.jpg"
    broken.write_bytes(image_found.copy_file.read_bytes()[:200])
    html = build_html(dataclasses.replace(image_found.report_input(), copy_file=broken), "en")
    assert "The figure could not be drawn" in html


def test_audio_report_spectrograms_and_similarity(audio_found: Found) -> None:
    ev = audio_found.evidence
    assert isinstance(ev, AudioEvidence)
    assert ev.query_start == pytest.approx(6.0, abs=0.6) and ev.ref_start == pytest.approx(8.0, abs=0.6)
    times, values = audio_similarity_series(audio_found.work_file, audio_found.copy_file, ev)
    inside = values[(times >= ev.query_start + 1) & (times + 1 <= ev.query_end - 1)]
    outside = values[(times + 1 <= ev.query_start - 0.5) | (times >= ev.query_end + 0.5)]
    outside = outside[~np.isnan(outside)]
    assert inside.min() > 0.4, inside
    assert len(outside) >= 6 and outside.max() < 0.2, outside
    html = build_html(audio_found.report_input())
    _no_external(html)
    figs = _images(html)
    assert len(figs) == 3  # QR, spectrograms, similarity
    for fig in figs[1:]:
        img = _decode(fig)
        assert img.shape[1] > 700 and img.std() > 20
    assert "相似度随时间变化" in html and f"{ev.ref_start:.6g}" in html


@pytest.mark.parametrize(
    ("kind", "details", "message"),
    [
        ("image", [], "not a JSON object"),
        ("image", {"path": "other"}, "'hash' or 'features'"),
        ("image", {"path": "features", "inliers": "40"}, "'inliers'"),
        ("image", {"path": "features", "inliers": True}, "'inliers'"),
        ("audio", {"layer": "main", "query_start": None}, "'query_start'"),
        ("audio", {"layer": "treble"}, "'layer'"),
        ("video", {"found_by": "picture", "per_second": ["x"]}, "'per_second'"),
        ("text", {}, "unknown media kind"),
    ],
)
def test_malformed_evidence_is_refused(kind: str, details: object, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        evidence_from_json(kind, details)


def test_stored_evidence_round_trips(image_found: Found, audio_found: Found) -> None:
    for found in (image_found, audio_found):
        ev = found.evidence
        assert evidence_from_json(ev.kind, ev.to_json()) == ev
    bad = image_found.evidence.to_json() | {"region": [[0, 0], [1]]}
    with pytest.raises(ReportError, match="'region'"):
        evidence_from_json("image", bad)


def test_a_long_copy_is_analysed_around_the_span_only(audio_found: Found, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A 6-minute copy holding the excerpt at 5:00: only the stretch around it is decoded."""
    from forensics.report import figures
    from tests.forensics.audio.conftest import synth_music, write_wav

    monkeypatch.setattr(figures, "MAX_SIMILARITY_SECONDS", 60.0)
    monkeypatch.setattr(figures, "MAX_SPECTROGRAM_SECONDS", 40.0)
    sr = 8000
    song = synth_music(7, 30.0)
    copy = np.tile(synth_music(5, 30.0), 12)
    copy[300 * sr : 312 * sr] = 0.7 * song[8 * sr : 20 * sr]
    path = write_wav(tmp_path / "long.wav", copy)
    found = audio_found.evidence
    assert isinstance(found, AudioEvidence)
    ev = dataclasses.replace(found, query_start=300.0, query_end=312.0, ref_start=8.0, ref_end=20.0)
    times, values = audio_similarity_series(audio_found.work_file, path, ev)
    assert times[0] >= 300 - 60 and times[-1] <= 312 + 60 and len(times) <= 62
    inside = values[(times >= 301) & (times <= 310)]
    assert inside.min() > 0.4, inside
    outside = values[(times >= 314) & (times <= 330)]
    assert np.nanmax(outside) < 0.4 and np.nanmedian(outside) < 0.15, outside
    labels = {"work": "W", "copy": "C", "seconds": "s", "hz": "Hz", "span": "span"}
    assert _decode(figures.audio_spectrograms(audio_found.work_file, path, ev, labels)).shape[1] > 700


def test_hash_path_image_report(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A re-encoded, mirrored copy found by the global hash: region outlined, keypoints verified."""
    from forensics.evidence import ImageHashEvidence
    from tests.forensics.conftest import _photo, jpeg, write_image

    from .conftest import _found

    work = write_image(tmp_path / "coffee.png", _photo("coffee"))
    copy = write_image(tmp_path / "copy.png", jpeg(np.ascontiguousarray(_photo("coffee")[:, ::-1]), 30))
    found = _found(tmp_path / "lib", work, copy, "coffee", {})
    assert isinstance(found.evidence, ImageHashEvidence) and found.evidence.transform == "flip_h"
    html = build_html(found.report_input(), "en")
    pair = _decode(_images(html)[1])
    assert ((pair[:, :, 2] > 200) & (pair[:, :, 1] < 60) & (pair[:, :, 0] < 60)).sum() > 500
    drawn = re.search(r"\((\d+) pairs\)", html)
    assert drawn is not None and int(drawn.group(1)) >= 15  # the mirrored copy's features verified


def test_a_huge_or_bogus_screenshot_is_scaled_or_left_out(image_found: Found) -> None:
    from forensics.report.build import SCREENSHOT_MAX_HEIGHT, SCREENSHOT_WIDTH

    tall = cv2.imencode(".png", np.full((9000, 2400, 3), 180, np.uint8))[1].tobytes()
    cap = dataclasses.replace(_capture(image_found), screenshot_png=tall)
    html = build_html(dataclasses.replace(image_found.report_input(), capture=cap), "en")
    shot = re.search(r'src="data:image/jpeg;base64,([^"]+)"', html)
    assert shot is not None
    img = _decode(base64.b64decode(shot.group(1)))
    assert img.shape[:2] == (SCREENSHOT_MAX_HEIGHT, SCREENSHOT_WIDTH)
    for bogus in (b"<svg onload=alert(1)>", b"\x89PNG\r\n\x1a\n" + b"\0" * 50):
        cap = dataclasses.replace(_capture(image_found), screenshot_png=bogus)
        html = build_html(dataclasses.replace(image_found.report_input(), capture=cap), "en")
        assert "The package holds no screenshot." in html and "svg" not in html
