"""Package fetching guards, tool lookup, decode checks and near-identity signatures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import media
from datasets.errors import DecodeError, FetchError, ToolMissingError
from datasets.fetch import download_deb, download_wheel, license_line
from datasets.tools import decode_check, probe, require


def test_license_line_prefers_files_star() -> None:
    text = "Format: x\n\nFiles: debian/*\nLicense: MIT\n\nFiles: *\nCopyright: me\nLicense: CC-BY-SA-3.0\n"
    assert license_line(text) == "CC-BY-SA-3.0"
    assert license_line("Files: a\nLicense: BSD-3-Clause\n") == "BSD-3-Clause"
    assert license_line("no statement here").startswith("unknown")


@pytest.mark.parametrize("name", ["Bad Name", "../etc", "", "pkg;rm"])
def test_invalid_package_names_are_refused_before_any_download(name: str) -> None:
    with pytest.raises(FetchError, match="not a valid Debian package name"):
        download_deb(name)


@pytest.mark.parametrize("req", ["scikit-image", "scikit-image>=1", "x==1;rm"])
def test_pypi_sources_must_be_pinned(req: str) -> None:
    with pytest.raises(FetchError, match="pinned"):
        download_wheel(req)


def test_missing_tool_names_the_package() -> None:
    with pytest.raises(ToolMissingError, match="not on PATH"):
        require("rongxin-no-such-tool")
    assert require("ffmpeg").endswith("ffmpeg")
    assert require("sox").endswith("sox")


def test_truncated_and_garbage_media_fail_decode(tmp_path: Path, smoke_root: Path) -> None:
    video = next((smoke_root / "video").glob("*.mp4"))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    with pytest.raises(DecodeError):
        decode_check(cut)
    junk = tmp_path / "junk.ogg"
    junk.write_bytes(b"OggS" + bytes(range(256)) * 8)
    with pytest.raises(DecodeError):
        media.decode_audio(junk)
    with pytest.raises(DecodeError):
        probe(tmp_path / "missing.wav")
    decode_check(video)  # the intact file decodes


def test_check_image_rejects_truncated_and_icons(tmp_path: Path, smoke_root: Path) -> None:
    jpg = next(p for p in (smoke_root / "images").iterdir() if p.suffix == ".jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(jpg.read_bytes()[:2000])
    with pytest.raises(DecodeError, match="not a decodable image"):
        media.check_image(bad)
    icon = tmp_path / "icon.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(icon)
    with pytest.raises(DecodeError, match="icon"):
        media.check_image(icon)
    ok = media.check_image(jpg)
    assert ok.width >= 64 and len(ok.signature) == 32


def test_dhash_near_identity(smoke_root: Path) -> None:
    photos = sorted(p for p in (smoke_root / "images").iterdir() if p.suffix == ".jpg")[:2]
    a, b = (Image.open(p).convert("RGB") for p in photos)
    ha = media.dhash(a)
    assert media.hamming(ha, media.dhash(a.resize((a.width // 2, a.height // 2)))) <= 12
    assert media.hamming(ha, media.dhash(b)) > 40
    with pytest.raises(ValueError):
        media.hamming(b"\x00", b"\x00\x00")


def test_audio_signature_near_identity() -> None:
    g = np.random.default_rng(0)
    x = g.standard_normal(8000 * 20).astype(np.float32) * 0.1
    noisy = x + g.standard_normal(x.size).astype(np.float32) * 0.01
    other = g.standard_normal(8000 * 20).astype(np.float32) * 0.1
    sx = media.audio_signature(x)
    assert media.audio_near(sx, media.audio_signature(noisy))
    assert not media.audio_near(sx, media.audio_signature(other))
    assert not media.audio_near(sx, media.audio_signature(x[: 8000 * 10]))  # other length
    assert media.rms_dbfs(np.zeros(10, np.float32)) == float("-inf")
