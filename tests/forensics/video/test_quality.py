"""Frames without edges do not count: the quality gate of the video fingerprint."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from forensics.video.decode import iter_frames
from forensics.video.errors import VideoTooShortError
from forensics.video.fingerprint import (
    MIN_DETAIL,
    MIN_QUALITY,
    border_box,
    fingerprint_file,
    frame_quality,
    hash_frames,
)
from forensics.video.index import VideoIndex
from tests.forensics.video.conftest import Media, ffmpeg


def ramp(low: float, high: float, angle: float, side: int = 128) -> np.ndarray:
    """A smooth linear gradient from ``low`` to ``high`` grey at ``angle`` radians."""
    y, x = np.mgrid[0:side, 0:side] / (side - 1)
    t = x * np.cos(angle) + y * np.sin(angle)
    t = (t - t.min()) / (t.max() - t.min())
    return np.asarray(low + (high - low) * t, np.uint8)


@pytest.mark.parametrize("low,high", [(0, 255), (40, 200), (100, 160)])
def test_a_smooth_gradient_has_detail_but_no_quality(low: float, high: float) -> None:
    frames = np.stack([ramp(low, high, a) for a in np.linspace(0.0, 1.5, 6)])
    box = (0, 0, 128, 128)
    assert all(float(f.std()) >= MIN_DETAIL for f in frames)  # the old gate let them through
    assert max(frame_quality(f) for f in frames) < MIN_QUALITY
    _, _, valid = hash_frames(frames, box)
    assert not valid.any()
    _, _, ungated = hash_frames(frames, box, min_quality=0)  # as an inset's view is hashed
    assert ungated.all()


def test_textured_and_outlined_pictures_keep_full_quality() -> None:
    rng = np.random.default_rng(5)
    noise = (rng.random((128, 128)) * 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(noise, (0, 0), 1.0)
    outline = np.full((128, 128), 90, np.uint8)
    for k in range(8, 128, 16):  # a grid of lines: edges, and flat between them
        outline[k : k + 2] = 200
        outline[:, k : k + 2] = 200
    for picture in (noise, blurred, outline):
        assert frame_quality(picture) >= MIN_QUALITY
    _, _, valid = hash_frames(np.stack([noise, outline]), (0, 0, 128, 128))
    assert valid.all()


def test_quality_of_pictures_of_any_size_is_measured_at_64_pixels_and_capped() -> None:
    assert frame_quality(np.zeros((3, 5), np.uint8)) == 0
    assert frame_quality(np.full((200, 90), 255, np.uint8)) == 0
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert frame_quality(checker) == 100  # every neighbour differs by the whole range: capped
    fine = (np.indices((256, 256)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert frame_quality(fine) == 0  # averaged to 64 x 64 first, a one-pixel checker is flat


def test_real_footage_keeps_its_frames(media: Media) -> None:
    """The programmes' frames pass the gate: it removes chance matches, not evidence."""
    qualities = []
    for path in media.programmes.values():
        for block in iter_frames(path, rate=4.0, strict=False):
            x0, y0, x1, y1 = border_box(block)
            qualities.extend(frame_quality(f[y0:y1, x0:x1]) for f in block)
    assert len(qualities) > 100
    assert np.mean(np.array(qualities) >= MIN_QUALITY) >= 0.95


def test_a_pan_over_a_gradient_is_no_picture_evidence(tmp_path: Path, media: Media) -> None:
    """A sky-like gradient that turns slowly: refused as a work (no picture to register),
    and as a query it has no frame that could vote or count."""
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i in range(100):
        big = ramp(40, 220, 0.2 + 0.4 * i / 100, side=360)
        cv2.imwrite(str(frames_dir / f"{i:04d}.png"), cv2.resize(big, (320, 180)))
    pan = tmp_path / "sky.mp4"
    ffmpeg("-framerate", "10", "-i", frames_dir / "%04d.png", "-pix_fmt", "yuv420p", pan)
    index = VideoIndex(tmp_path / "index")
    name, programme = next(iter(media.programmes.items()))
    index.add(name, programme)
    with pytest.raises(VideoTooShortError, match="with detail"):
        index.add("sky", pan)
    assert index.work_ids() == [name]
    fp = fingerprint_file(pan, rate=index.rate, limits=index.limits, query=True, min_valid=0)
    assert len(fp.codes) >= 30 and not fp.valid.any()
    assert index.alignments(fp) == []
