"""Shared fixtures for the image forensics tests: real photos from the scikit-image wheel."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from numpy.typing import NDArray

PHOTO_NAMES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "horse",
    "moon",
    "coins",
    "immunohistochemistry",
)


def _photo(name: str) -> NDArray[np.uint8]:
    img = np.asarray(getattr(skimage.data, name)())
    if img.dtype == np.bool_:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3].astype(np.uint8))


@pytest.fixture(scope="session")
def photos() -> dict[str, NDArray[np.uint8]]:
    """Real photos (RGB uint8) keyed by name."""
    return {name: _photo(name) for name in PHOTO_NAMES}


def write_image(path: Path, rgb: NDArray[np.uint8], quality: int = 95) -> Path:
    """Save an RGB array with OpenCV (format from the suffix)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    return path


def jpeg(rgb: NDArray[np.uint8], quality: int) -> NDArray[np.uint8]:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.asarray(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), dtype=np.uint8)


def rotate(rgb: NDArray[np.uint8], angle: float) -> NDArray[np.uint8]:
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return np.asarray(cv2.warpAffine(rgb, m, (w, h), borderValue=(0, 0, 0)), dtype=np.uint8)


def crop(rgb: NDArray[np.uint8], area: float, corner: str = "br") -> NDArray[np.uint8]:
    h, w = rgb.shape[:2]
    s = area**0.5
    ch, cw = int(h * s), int(w * s)
    y0 = h - ch if "b" in corner else 0
    x0 = w - cw if "r" in corner else 0
    return np.ascontiguousarray(rgb[y0 : y0 + ch, x0 : x0 + cw])


def screenshot(
    rgb: NDArray[np.uint8], fraction: float, background: NDArray[np.uint8] | None = None
) -> NDArray[np.uint8]:
    """``rgb`` pasted into a larger canvas so that it covers ``fraction`` of the area."""
    h, w = rgb.shape[:2]
    scale = (1 / fraction) ** 0.5
    H, W = int(h * scale), int(w * scale)
    canvas = np.full((H, W, 3), 235, np.uint8)
    if background is not None:
        canvas = np.asarray(cv2.resize(background, (W, H)), dtype=np.uint8)
    canvas[H - h - 3 : H - 3, 5 : 5 + w] = rgb
    return canvas
