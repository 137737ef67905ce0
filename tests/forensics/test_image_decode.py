"""Decoding: every supported mode becomes 8-bit RGB; bad input raises a clear ForensicsError."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensics.errors import ForensicsError, MediaError, UnsupportedMediaError
from forensics.image.decode import load_frames, load_image
from tests.forensics.conftest import write_image


def test_jpeg_png_webp_round_trip_to_rgb(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    rgb = photos["coffee"]
    for suffix in (".jpg", ".png", ".webp"):
        path = tmp_path / f"c{suffix}"
        Image.fromarray(rgb).save(path, quality=95)
        out = load_image(path)
        assert out.shape == rgb.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 6


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        load_image(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot read"):
        load_image(tmp_path / "nope.png")


def test_non_image_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.png"
    p.write_text("this is a text file, not a PNG\n" * 10)
    with pytest.raises(UnsupportedMediaError, match="not an image"):
        load_image(p)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_truncated_files(tmp_path: Path, photos: dict[str, np.ndarray], suffix: str) -> None:
    full = tmp_path / f"full{suffix}"
    Image.fromarray(photos["astronaut"]).save(full, quality=90)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError):
        load_image(cut)


def test_corrupt_png_checksum(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    p = tmp_path / "x.png"
    Image.fromarray(photos["camera"]).save(p)
    data = bytearray(p.read_bytes())
    idat = data.find(b"IDAT")
    data[idat + 40 : idat + 60] = bytes(20)  # clobber compressed data
    p.write_bytes(bytes(data))
    with pytest.raises(MediaError, match=r"corrupt|truncated"):
        load_image(p)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(100_000, 100_000))  # 10 gigapixels claimed in 100 bytes
    with pytest.raises(MediaError, match="decompression bomb"):
        load_image(p)


def test_pixel_limit_is_configurable(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    p = write_image(tmp_path / "a.png", photos["astronaut"])
    with pytest.raises(MediaError, match="above the limit"):
        load_image(p, max_pixels=100_000)
    assert load_image(p, max_pixels=600_000).shape == (512, 512, 3)


def test_too_small_image(tmp_path: Path) -> None:
    p = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(p)
    with pytest.raises(MediaError, match="at least"):
        load_image(p)


def test_cmyk_jpeg(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(photos["chelsea"]).convert("CMYK").save(p, quality=95)
    out = load_image(p)
    assert out.shape == photos["chelsea"].shape
    assert np.abs(out.astype(int) - photos["chelsea"].astype(int)).mean() < 12


def test_16_bit_png_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    p = tmp_path / "deep.png"
    Image.fromarray(ramp).save(p)
    out = load_image(p)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert np.all(np.diff(out[:, :, 0].ravel().astype(int)) >= 0)


def test_alpha_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:, :16] = (255, 0, 0, 255)  # opaque red left half, transparent right half
    p = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(p)
    out = load_image(p)
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[0, 31]) == (255, 255, 255)


def test_palette_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    img.paste(1, (0, 0, 16, 32))
    p = tmp_path / "pal.png"
    img.save(p, transparency=0)
    out = load_image(p)
    assert tuple(out[0, 0]) == (0, 255, 0) and tuple(out[0, 31]) == (255, 255, 255)


def test_exif_orientation_applied(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    rgb = photos["rocket"]  # 427 × 640 (H × W)
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    p = tmp_path / "exif.jpg"
    img.save(p, quality=95, exif=exif)
    out = load_image(p)
    assert out.shape[:2] == (rgb.shape[1], rgb.shape[0])


def test_animated_gif_frames(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    frames = [
        Image.fromarray(photos[n]).resize((128, 96)) for n in ("coffee", "chelsea", "rocket", "horse", "moon")
    ]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=80, loop=0)
    out = load_frames(p, max_frames=3)
    assert len(out) == 3
    assert not np.array_equal(out[0], out[1])
    assert load_frames(p, max_frames=10).__len__() == 5


def test_arrays_of_every_layout() -> None:
    gray = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60
    assert load_image(gray).shape == (32, 32, 3)
    assert load_image(np.ones((20, 20, 1), np.float32) * 0.5)[0, 0, 0] == 128
    assert load_image(np.zeros((20, 20), bool)).max() == 0
    with pytest.raises(MediaError, match="shape"):
        load_image(np.zeros((20, 20, 2), np.uint8))
    with pytest.raises(MediaError, match="NaN"):
        load_image(np.full((20, 20), np.nan))
    with pytest.raises(ForensicsError):
        load_image(np.zeros((4, 400), np.uint8))


def _gif_with_large_second_frame(tmp_path: Path, side: int) -> Path:
    """A 2-frame 32×32 GIF whose second image descriptor declares ``side``×``side`` pixels."""
    frames = [Image.new("RGB", (32, 32), (200 * i, 50, 100 - 80 * i)) for i in range(2)]
    path = tmp_path / "frames.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    data = path.read_bytes()
    descriptor = b"\x2c" + struct.pack("<4H", 0, 0, 32, 32)
    second = data.index(descriptor, data.index(descriptor) + 1)
    patched = data[:second] + b"\x2c" + struct.pack("<4H", 0, 0, side, side) + data[second + 9 :]
    path.write_bytes(patched)
    return path


@pytest.mark.parametrize("side", [3000, 0xFFFF])
def test_animated_gif_frame_bomb_refused(tmp_path: Path, side: int) -> None:
    """The first frame passed the pixel check; a later frame's larger canvas raised
    Pillow's DecompressionBombError (not a ForensicsError) or was decoded unchecked."""
    path = _gif_with_large_second_frame(tmp_path, side)
    with pytest.raises(MediaError, match="decompression bomb"):
        load_frames(path, max_pixels=4_000_000, max_frames=2)
