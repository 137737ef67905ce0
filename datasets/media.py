"""Decoding checks and the compact signatures used to drop near-identical files.

These signatures only detect *near-identity* (the same picture re-saved, the same track
re-encoded) when building a corpus; they are not the project's fingerprints.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from datasets.errors import DecodeError
from datasets.tools import ffmpeg_output

#: Images whose shorter side is below this are icons, not photos, and are skipped.
MIN_IMAGE_SIDE = 64
#: Sample rate at which audio is decoded for signatures.
SIG_RATE = 8000
#: Audio quieter than this RMS (dBFS) is treated as silence and skipped.
SILENCE_DBFS = -55.0


def dhash(img: Image.Image, size: int = 16) -> bytes:
    """A ``size``×``size``-bit difference hash of an image (horizontal gradient signs).

    Examples
    --------
    >>> a = Image.linear_gradient("L").resize((64, 48))
    >>> len(dhash(a))
    32
    >>> dhash(a) == dhash(a.resize((128, 96)))
    True
    """
    g = img.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS)
    px = np.asarray(g, dtype=np.int16)
    bits = px[:, 1:] > px[:, :-1]
    return np.packbits(bits.ravel()).tobytes()


def hamming(a: bytes, b: bytes) -> int:
    """Number of differing bits between two equal-length byte strings.

    Examples
    --------
    >>> hamming(b"\\x0f", b"\\xff")
    4
    """
    if len(a) != len(b):
        raise ValueError("signatures of different lengths")
    x = np.bitwise_xor(np.frombuffer(a, np.uint8), np.frombuffer(b, np.uint8))
    return int(np.unpackbits(x).sum())


@dataclass(frozen=True)
class ImageCheck:
    """A decoded image's size and signature."""

    width: int
    height: int
    signature: bytes


def check_image(path: Path) -> ImageCheck:
    """Fully decode an image file and return its size and :func:`dhash`.

    Raises
    ------
    DecodeError
        If the file is not an image, is truncated, or is smaller than :data:`MIN_IMAGE_SIDE`.
    """
    try:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DecodeError(f"{path}: not a decodable image ({exc})") from None
    if min(rgb.size) < MIN_IMAGE_SIDE:
        raise DecodeError(
            f"{path}: {rgb.width}x{rgb.height} is an icon, not a photo (shorter side < {MIN_IMAGE_SIDE})"
        )
    return ImageCheck(rgb.width, rgb.height, dhash(rgb))


def decode_audio(path: Path, rate: int = SIG_RATE, channels: int = 1) -> NDArray[np.float32]:
    """Decode any audio (or a video's sound) with ffmpeg to float32 samples.

    Returns
    -------
    ndarray
        Shape ``(n,)`` for mono, ``(n, channels)`` otherwise, values in [-1, 1].

    Raises
    ------
    DecodeError
        If ffmpeg reports any decoding error or yields no samples.
    """
    out = ffmpeg_output(
        path,
        ["-vn", "-ac", str(channels), "-ar", str(rate), "-f", "f32le", "-"],
        what="audio does not decode cleanly",
    )
    data = np.frombuffer(out, dtype="<f4").astype(np.float32)
    if data.size < channels:
        raise DecodeError(f"{path}: no audio samples")
    if channels > 1:
        data = data[: data.size - data.size % channels].reshape(-1, channels)
    return data


def rms_dbfs(samples: NDArray[np.float32]) -> float:
    """Root-mean-square level in dB relative to full scale (-inf for digital silence)."""
    r = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return 20.0 * float(np.log10(r)) if r > 0 else float("-inf")


def audio_signature(samples: NDArray[np.float32], rate: int = SIG_RATE) -> bytes:
    """Sign bits of band-energy differences over time and frequency (4 frames a second).

    Two decodes of the same recording give nearly the same bits; unrelated audio differs
    in about half of them.
    """
    hop = rate // 4
    n = samples.size // hop
    if n < 2:
        return b""
    frames = samples[: n * hop].reshape(n, hop) * np.hanning(hop).astype(np.float32)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    edges = np.geomspace(100, rate / 2 * 0.95, 18) * hop / rate
    bands = np.stack(
        [spec[:, int(a) : max(int(b), int(a) + 1)].sum(axis=1) for a, b in itertools.pairwise(edges)],
        axis=1,
    )
    e = np.log(bands + 1e-9)
    d = np.diff(e, axis=1)
    bits = np.diff(d, axis=0) > 0
    return np.packbits(bits.ravel()).tobytes()


def audio_near(a: bytes, b: bytes, max_ber: float = 0.2) -> bool:
    """Whether two :func:`audio_signature` values come from the same recording.

    Signatures of different lengths are compared over their common prefix only if the
    lengths differ by at most 2 %.
    """
    if not a or not b:
        return False
    la, lb = len(a), len(b)
    if abs(la - lb) > 0.02 * max(la, lb) + 1:
        return False
    n = min(la, lb)
    return hamming(a[:n], b[:n]) <= max_ber * 8 * n


def video_frame(path: Path, at: float) -> Image.Image:
    """One decoded video frame at ``at`` seconds, as an RGB image.

    Raises
    ------
    DecodeError
        If no frame can be decoded there.
    """
    png = ffmpeg_output(
        path,
        ["-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"],
        what=f"no video frame at {at:.2f} s",
        pre=["-threads", "1", "-ss", f"{max(at, 0):.3f}"],  # threaded decoding after a seek can vary
        strict=False,
    )
    if not png:
        raise DecodeError(f"{path}: no video frame at {at:.2f} s")
    with Image.open(io.BytesIO(png)) as im:
        return im.convert("RGB")
