"""Captures of the loopback site: static page, page built by JavaScript, video player, HLS."""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawlers.capture import Capture, CaptureOptions, capture
from crawlers.errors import CaptureError
from rongxin.demo_site import REDIRECT
from tests.crawlers.test_tls import _self_signed

from .conftest import LOOPBACK
from .site import CaptureSite, serve


def _warc_urls(cap: Capture) -> dict[str, list[int]]:
    urls: dict[str, list[int]] = {}
    with (cap.directory / "archive/data.warc.gz").open("rb") as fh:
        for r in ArchiveIterator(fh, check_digests=True):
            if r.rec_type == "response":
                urls.setdefault(r.rec_headers.get_header("WARC-Target-URI"), []).append(
                    len(r.content_stream().read())
                )
            assert not r.digest_checker.problems
    return urls


def _mp4_seconds(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    return float(out.stdout.strip())


def test_static_page_capture_has_every_product(static_capture: Capture, capture_site: CaptureSite) -> None:
    cap = static_capture
    assert cap.status == 200 and cap.title == "静态页 Static copy"
    urls = _warc_urls(cap)
    assert f"{capture_site.base}/static.html" in urls and f"{capture_site.base}/img/still.png" in urls
    shot = (cap.directory / "evidence/screenshot.png").read_bytes()
    assert shot.startswith(b"\x89PNG")
    height = int.from_bytes(shot[20:24], "big")
    assert height > 2000  # full page, not the 720-px window
    assert "A copied work" in (cap.directory / "evidence/dom.html").read_text()
    assert _mp4_seconds(cap.directory / "evidence/recording.mp4") > 0.5
    env = json.loads((cap.directory / "evidence/environment.json").read_text())
    assert env["browser"]["version"] and env["dns"]["127.0.0.1"]["answers"] == ["127.0.0.1"]
    assert env["hosts_file"]["sm3"] and "proxy" in env and env["clock"]["local_time_ms"] > 0
    events = [
        json.loads(x)["event"]
        for x in (cap.directory / "evidence/capture-log.jsonl").read_text().splitlines()
    ]
    for e in ("start", "loaded", "scrolled", "screenshot", "recording-stopped", "warc", "done"):
        assert e in events
    assert set(cap.files) >= {"archive/data.warc.gz", "evidence/recording.mp4", "evidence/screenshot.png"}


def test_video_page_plays_the_span_and_keeps_the_media(capture_site: CaptureSite, tmp_path: Path) -> None:
    opts = CaptureOptions(allow=("127.0.0.1",), play_span=(1.0, 3.0), ledger_time_ms=lambda: 1_000)
    cap = capture(f"{capture_site.base}/video.html", tmp_path / "v", opts)
    log = [json.loads(x) for x in (cap.directory / "evidence/capture-log.jsonl").read_text().splitlines()]
    play = next(e for e in log if e["event"] == "play")
    paused = next(e for e in log if e["event"] == "paused")
    assert abs(play["start"] - 1.0) < 0.2 and play["seconds"] == 2.0
    assert paused["at"] >= 2.5  # it really played
    (media,) = cap.media
    served = capture_site.files["/media/clip.mp4"][1]
    assert (cap.directory / media["path"]).read_bytes() == served
    assert len(served) in _warc_urls(cap)[f"{capture_site.base}/media/clip.mp4"]
    env = json.loads((cap.directory / "evidence/environment.json").read_text())
    assert env["clock"]["ledger_time_ms"] == 1_000 and env["clock"]["offset_ms"] > 0
    assert _mp4_seconds(cap.directory / "evidence/recording.mp4") >= 2.0


@pytest.mark.slow
def test_page_built_by_javascript(capture_site: CaptureSite, tmp_path: Path) -> None:
    cap = capture(
        f"{capture_site.base}/scripted.html",
        tmp_path / "s",
        CaptureOptions(allow=("127.0.0.1",), record_screen=False),
    )
    assert cap.title == "Built by script"
    dom = (cap.directory / "evidence/dom.html").read_text()
    assert dom.count('class="item"') == 3 and "第三" in dom
    assert f"{capture_site.base}/api/items.json" in _warc_urls(cap)
    assert "evidence/recording.mp4" not in cap.files


@pytest.mark.slow
def test_hls_stream_keeps_playlist_and_every_segment(capture_site: CaptureSite, tmp_path: Path) -> None:
    cap = capture(f"{capture_site.base}/hls.html", tmp_path / "h", LOOPBACK)
    segments = sorted(p for p in capture_site.files if p.startswith("/hls/seg"))
    assert len(segments) >= 3
    got = {m["url"].removeprefix(capture_site.base) for m in cap.media}
    assert got == {"/hls/index.m3u8", *segments}
    for m in cap.media:
        assert (cap.directory / m["path"]).read_bytes() == capture_site.files[
            m["url"].removeprefix(capture_site.base)
        ][1]


def test_loopback_is_refused_without_an_allow(capture_site: CaptureSite, tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="loopback"):
        capture(f"{capture_site.base}/static.html", tmp_path / "x")
    with pytest.raises(CaptureError, match="scheme"):
        capture("file:///etc/passwd", tmp_path / "y", LOOPBACK)


def test_a_non_empty_output_directory_is_refused(capture_site: CaptureSite, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("x")
    with pytest.raises(CaptureError, match="not empty"):
        capture(f"{capture_site.base}/static.html", tmp_path / "d", LOOPBACK)


@pytest.mark.slow
def test_https_site_records_its_certificate_chain(
    site_files: dict[str, tuple[str, bytes]], tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path, "127.0.0.1")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    files = {"/static.html": site_files["/static.html"], "/img/still.png": site_files["/img/still.png"]}
    with serve(files, tls) as site:
        with pytest.raises(CaptureError, match="CERT"):  # a certificate that does not verify is refused
            capture(f"{site.base}/static.html", tmp_path / "strict", LOOPBACK)
        opts = CaptureOptions(allow=("127.0.0.1",), record_screen=False, ignore_https_errors=True)
        cap = capture(f"{site.base}/static.html", tmp_path / "c", opts)
    env = json.loads((cap.directory / "evidence/environment.json").read_text())
    assert env["https_errors_ignored"] is True
    (chain,) = env["tls"]
    assert chain["port"] == site.port and chain["verify_result"] != "ok"
    (leaf,) = chain["chain"]
    assert leaf["subject"] == "CN=127.0.0.1" and leaf["pem"] == cert.read_text().strip()


@pytest.mark.slow
def test_the_guard_checks_every_request_and_media_redirect(
    site_files: dict[str, tuple[str, bytes]], tmp_path: Path
) -> None:
    files = dict(site_files)
    with serve(files) as site:
        other = f"http://127.0.0.2:{site.port}"
        files = {
            "/hostile.html": (
                "text/html",
                f'<img src="{other}/steal.png"><video src="/media/moved.mp4"></video>'.encode(),
            ),
            "/media/moved.mp4": (REDIRECT, f"{other}/media/clip.mp4".encode()),
        }
        site.files.update(files)
        opts = CaptureOptions(allow=("127.0.0.1",), record_screen=False, default_play_s=0.5)
        cap = capture(f"{site.base}/hostile.html", tmp_path / "h", opts)
    log = [json.loads(x) for x in (cap.directory / "evidence/capture-log.jsonl").read_text().splitlines()]
    refused = {e["url"] for e in log if e["event"] == "refused"}
    assert f"{other}/steal.png" in refused and f"{other}/media/clip.mp4" in refused
    assert any(e["event"] == "media-redirect" for e in log)
    assert cap.media == [] and not any(p.startswith("/steal") or p == "/media/clip.mp4" for p in site.log)
