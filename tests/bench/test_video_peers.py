"""The video benchmark's peers: ffmpeg ``signature`` log parsing and ranking, the peers' decision rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.video_peers import (
    Peer,
    SignaturePeer,
    SignatureReport,
    TmkPeer,
    VideohashPeer,
    VpdqPeer,
    detected,
    parse_signature_log,
)
from datasets.manifest import Manifest
from datasets.smoke import ensure

# what ffmpeg 5.1 logs for two instances (query first), with unrelated lines around
LOG = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'q.mp4':
  Duration: 00:00:10.00, start: 0.000000, bitrate: 181 kb/s
[signature@w1 @ 0x562dc1858f40] no matching of video 0 and 1
[signature@w0 @ 0x562dc185bdc0] matching of video 0 at 1.760000 and 1 at 21.760000, 250 frames matching
[signature@w0 @ 0x562dc185bdc0] whole video matching
frame=  250 fps=0.0 q=-0.0 Lsize=N/A time=00:00:10.00 bitrate=N/A speed=2.5x
"""


def test_parse_reads_each_instance() -> None:
    got = parse_signature_log(LOG)
    assert got == {
        "signature@w0": SignatureReport(True, 1.76, 21.76, 250, True),
        "signature@w1": SignatureReport(False),
    }


def test_parse_interleaved_and_crlf() -> None:
    text = (
        "[signature@w0 @ 0xa] matching of video 0 at 0.000000 and 1 at 5.500000, 90 frames matching\r\n"
        "[signature@w2 @ 0xb] matching of video 0 at 2.000000 and 1 at 0.040000, 120 frames matching\r\n"
        "[signature@w2 @ 0xb] whole video matching\r\n"
        "[signature@w1 @ 0xc] no matching of video 0 and 1\r\n"
    )
    got = parse_signature_log(text)
    assert got["signature@w0"] == SignatureReport(True, 0.0, 5.5, 90, False)
    assert got["signature@w2"].whole and got["signature@w2"].frames == 120
    assert not got["signature@w1"].matched


@pytest.mark.parametrize(
    "line",
    [
        # truncated (the process killed mid-line), no frame count
        "[signature@w0 @ 0xa] matching of video 0 at 1.000000 and 1 at 2.000000, ",
        # another pair of a many-input instance: not the query's
        "[signature@w0 @ 0xa] matching of video 1 at 1.000000 and 2 at 2.000000, 50 frames matching",
        # non-finite or negative times
        "[signature@w0 @ 0xa] matching of video 0 at nan and 1 at 2.000000, 50 frames matching",
        "[signature@w0 @ 0xa] matching of video 0 at -1.000000 and 1 at 2.000000, 50 frames matching",
        # no instance prefix (not a filter's line), forged text inside another line
        "matching of video 0 at 1.000000 and 1 at 2.000000, 50 frames matching",
        "[signature@w0 @ 0xa] note: matching of video 0 at 1.0 and 1 at 2.0, 50 frames matching extra",
        # "whole video" without a match before it
        "[signature@w0 @ 0xa] whole video matching",
        "",
        "\x00\xff garbage",
    ],
)
def test_parse_ignores_malformed(line: str) -> None:
    assert parse_signature_log(line) == {}


def test_parse_last_report_wins() -> None:
    text = (
        "[signature@w0 @ 0xa] matching of video 0 at 1.0 and 1 at 2.0, 50 frames matching\n"
        "[signature@w0 @ 0xa] no matching of video 0 and 1\n"
    )
    assert parse_signature_log(text) == {"signature@w0": SignatureReport(False)}


def test_ranking_maps_instances_to_works(tmp_path: Path) -> None:
    peer = SignaturePeer(tmp_path)
    peer.refs = {"a": tmp_path / "a.nut", "b": tmp_path / "b.nut", "c": tmp_path / "c.nut"}
    reports = {
        "signature@w0": SignatureReport(True, 0, 0, 40),
        "signature@w2": SignatureReport(True, 0, 0, 250),
        "signature@w1": SignatureReport(False),
        "signature@w7": SignatureReport(True, 0, 0, 999),  # no such work
        "Parsed_signature_3": SignatureReport(True, 0, 0, 999),  # not one of ours
    }
    assert peer.ranking(reports) == [("c", 250.0), ("a", 40.0)]


def test_detected_rule() -> None:
    assert detected([("a", 3.0), ("b", 1.0)], ["a"])
    assert not detected([("b", 3.0), ("a", 1.0)], ["a"])
    assert detected([("b", 3.0), ("a", 1.0)], ["a", "b"])
    assert not detected([("b", 3.0), ("c", 2.0), ("a", 1.0)], ["a", "b"])
    assert not detected([], ["a"])


def test_videohash_rule(tmp_path: Path) -> None:
    peer = VideohashPeer(tmp_path)
    assert peer.max_bits == 10
    peer.refs = {"near": 0b1111111111, "far": (1 << 64) - 1, "same": 0}
    assert peer.rank_hash(0) == [("same", 64.0), ("near", 54.0)]
    assert peer.rank_hash((1 << 64) - 1) == [("far", 64.0)]


def test_tmk_two_level_rule() -> None:
    peer = TmkPeer()
    if peer.error:
        pytest.skip(peer.error)
    rng = np.random.default_rng(7)
    a = rng.normal(size=(90, 256)).astype(np.float32)
    b = rng.normal(size=(90, 256)).astype(np.float32)
    ha, hb = peer.hashes(a), peer.hashes(b)
    assert ha is not None and hb is not None
    peer.refs = {"a": ha, "b": hb}
    ranked = peer.rank_hashes(peer.hashes(a + rng.normal(scale=0.1, size=a.shape).astype(np.float32)))
    assert [w for w, _ in ranked] == ["a"] and ranked[0][1] > 0.9
    assert peer.rank_hashes(None) == []
    assert peer.hashes(np.zeros((0, 256), np.float32)) is None
    # flat frames (all-zero features) give NaN scores, which never pass
    assert peer.rank_hashes(peer.hashes(np.zeros((30, 256), np.float32))) == []


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is required")
def test_signature_finds_an_excerpt_of_a_real_clip(tmp_path: Path) -> None:
    """ffmpeg's own detection on two real clips: the re-encoded excerpt is matched to its source only."""
    root = ensure()
    smoke = Manifest.open(root)
    clips = sorted(
        (e for e in smoke.select(collection="video", assembled=False) if 6 <= (e.duration or 0) <= 12),
        key=lambda e: e.duration or 0,
    )
    assert len(clips) >= 2
    src, other = root / clips[0].path, root / clips[1].path
    query = tmp_path / "q.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "1", "-t", "4.5", "-i", str(src), "-an",
                    "-c:v", "libx264", "-crf", "35", str(query)], check=True)  # fmt: skip
    peer = SignaturePeer(tmp_path / "sig")
    assert peer.error is None
    peer.prepare({"other": other, "src": src})
    ranked = peer.rank(query)
    assert [w for w, _ in ranked] == ["src"], (ranked, peer.failures)
    assert peer.failures == [] and len(peer.seconds) == 1
    # a file that is not a video: ffmpeg fails, nothing is reported, the failure is kept
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    assert peer.rank(bad) == []
    assert len(peer.failures) == 1


def test_vpdq_frame_rule(tmp_path: Path) -> None:
    peer = VpdqPeer(tmp_path, pct=50.0)
    rng = np.random.default_rng(3)
    work = rng.integers(0, 256, (20, 32), dtype=np.uint8)
    other = rng.integers(0, 256, (20, 32), dtype=np.uint8)
    peer.refs = {"work": work, "other": other, "empty": np.zeros((0, 32), np.uint8)}
    near = work[:6].copy()
    near[:, 0] ^= 0b1111  # 4 bits off: still within 31
    query = np.concatenate([near, other[:4]])  # 60 % of the frames from work, 40 % from other
    assert peer.rank_hashes(query) == [("work", 60.0)]
    assert peer.rank_hashes(np.concatenate([near[:2], other[:8]])) == [("other", 80.0)]
    assert peer.rank_hashes(np.zeros((0, 32), np.uint8)) == []


def test_windows_cover_the_video_untimed(tmp_path: Path) -> None:
    class Recorder(Peer):
        def __init__(self) -> None:
            super().__init__()
            self.spans: list[tuple[float, float] | None] = []

        def _rank(self, query: Path, span: tuple[float, float] | None) -> list[tuple[str, float]]:
            self.spans.append(span)
            return []

    peer = Recorder()
    assert len(peer.rank_windows(tmp_path / "v.mp4", 10.0, 4.0, 30.0)) == 6
    assert peer.spans == [(s, 10.0) for s in (0.0, 4.0, 8.0, 12.0, 16.0, 20.0)]
    assert peer.seconds == []  # false-positive windows are not query timings
    assert peer.rank_windows(tmp_path / "v.mp4", 30.0, 4.0, 20.0) == []
