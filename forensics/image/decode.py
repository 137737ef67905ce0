"""Decode images into 8-bit RGB arrays, refusing what cannot be used safely.

Every image the library sees passes through :func:`load_frames`: files of any format
Pillow reads (JPEG, PNG, WebP, GIF, BMP, TIFF) and numpy arrays. Decoding is defensive:

- 0-byte, non-image, truncated and corrupt files raise :class:`~forensics.errors.MediaError`
  (:class:`~forensics.errors.UnsupportedMediaError` when the bytes are no image at all);
- the pixel count is checked *before* pixels are decoded, so a decompression bomb is refused
  without allocating its memory;
- EXIF orientation is applied; palette, alpha (composited on white), CMYK, 16-bit and
  floating-point images become 8-bit RGB;
- animated images (GIF, WebP, APNG) yield up to ``max_frames`` evenly spaced frames.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from forensics.errors import MediaError, UnsupportedMediaError

#: Largest accepted image, in pixels (width × height of one frame): 64 megapixels.
DEFAULT_MAX_PIXELS = 64_000_000
#: Most frames read from an animated image.
DEFAULT_MAX_FRAMES = 4
#: Smallest accepted side, in pixels: anything smaller carries no usable fingerprint.
MIN_SIDE = 16

RGBImage = NDArray[np.uint8]
ImageSource = str | os.PathLike[str] | NDArray[np.generic]


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> RGBImage:
    """The first frame of ``source`` as an ``(H, W, 3)`` uint8 RGB array.

    Parameters
    ----------
    source : path or numpy array
        An image file, or an array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` (RGB) or
        ``(H, W, 4)`` (RGBA) of integers or floats in ``[0, 1]``.
    max_pixels : int
        Refuse images with more pixels than this.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8, RGB.

    Raises
    ------
    MediaError
        Empty, truncated, corrupt, too large or too small input.
    UnsupportedMediaError
        The file is not an image.

    Examples
    --------
    >>> import numpy as np
    >>> load_image(np.zeros((20, 30), dtype=np.uint8)).shape
    (20, 30, 3)
    """
    return load_frames(source, max_pixels=max_pixels, max_frames=1)[0]


def load_frames(
    source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_frames: int = DEFAULT_MAX_FRAMES
) -> list[RGBImage]:
    """Frames of ``source`` as ``(H, W, 3)`` uint8 RGB arrays (one for a still image).

    Parameters
    ----------
    source : path or numpy array
        See :func:`load_image`.
    max_pixels : int
        Refuse frames with more pixels than this (checked before decoding).
    max_frames : int
        For animated images, at most this many frames, evenly spaced, first frame included.

    Returns
    -------
    list of numpy.ndarray

    Raises
    ------
    MediaError, UnsupportedMediaError
        See :func:`load_image`.

    Examples
    --------
    >>> import io, tempfile, pathlib
    >>> from PIL import Image
    >>> frames = [Image.new("RGB", (32, 32), (i * 40, 0, 0)) for i in range(6)]
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.gif"
    >>> frames[0].save(p, save_all=True, append_images=frames[1:], duration=50)
    >>> len(load_frames(p, max_frames=3))
    3
    """
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    if isinstance(source, np.ndarray):
        return [_from_array(source, max_pixels)]
    return _from_file(Path(os.fspath(source)), max_pixels, max_frames)


def _check_size(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise MediaError(
            f"{what} is {width}×{height} = {width * height:,} pixels, above the limit of {max_pixels:,} "
            "(possible decompression bomb); downscale it or raise max_pixels"
        )
    if min(width, height) < MIN_SIDE:
        raise MediaError(f"{what} is {width}×{height} pixels; give an image at least {MIN_SIDE} px per side")


def _from_array(array: NDArray[np.generic], max_pixels: int) -> RGBImage:
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise MediaError(f"image array has shape {arr.shape}; give (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    _check_size(int(arr.shape[1]), int(arr.shape[0]), max_pixels, "image array")
    arr8 = _to_uint8(arr)
    if arr8.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr8[:, :, None], 3, axis=2))
    if arr8.shape[2] == 4:
        return _composite_on_white(arr8)
    return np.ascontiguousarray(arr8)


def _to_uint8(arr: NDArray[np.generic]) -> NDArray[np.uint8]:
    if arr.dtype == np.uint8:
        return arr.astype(np.uint8, copy=False)
    if arr.dtype == np.bool_:
        return (arr.astype(np.uint8) * 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        data = arr.astype(np.float64)
        if not np.all(np.isfinite(data)):
            raise MediaError("image array holds NaN or infinite values; give finite pixel values")
        if data.min() >= 0.0 and data.max() <= 1.0:
            return np.round(data * 255.0).astype(np.uint8)
        return _stretch(data)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == np.uint16:
            return (arr.astype(np.uint32) // 257).astype(np.uint8)
        data = arr.astype(np.float64)
        if data.min() >= 0 and data.max() <= 255:
            return data.astype(np.uint8)
        if data.min() >= 0 and data.max() <= 65535:
            return (data // 257).astype(np.uint8)
        return _stretch(data)
    raise MediaError(f"image array has dtype {arr.dtype}; give integer or floating-point pixels")


def _stretch(data: NDArray[np.float64]) -> NDArray[np.uint8]:
    lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        return np.zeros(data.shape, dtype=np.uint8)
    return np.round((data - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _composite_on_white(rgba: NDArray[np.uint8]) -> RGBImage:
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    rgb = rgba[:, :, :3].astype(np.uint16)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


def _from_file(path: Path, max_pixels: int, max_frames: int) -> list[RGBImage]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size == 0:
        raise MediaError(f"{path} is empty (0 bytes); give an image file")
    with warnings.catch_warnings():
        # We enforce our own pixel limit below; Pillow's warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise MediaError(
                f"{path}: {exc}; refused as a possible decompression bomb (limit {max_pixels:,} pixels)"
            ) from exc
        except UnidentifiedImageError as exc:
            raise UnsupportedMediaError(f"{path} is not an image this library can decode") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise MediaError(f"{path}: corrupt image header ({exc}); re-export the file") from exc
        with img:
            _check_size(img.width, img.height, max_pixels, str(path))
            n_frames = int(getattr(img, "n_frames", 1) or 1)
            if n_frames <= 1 or max_frames == 1:
                indices = [0]
            else:
                count = min(max_frames, n_frames)
                indices = sorted({round(i * (n_frames - 1) / (count - 1)) for i in range(count)})
            frames: list[RGBImage] = []
            for index in indices:
                try:
                    img.seek(index)
                    # A later frame may declare a larger canvas than the first one.
                    if img.width * img.height > max_pixels:
                        _check_size(img.width, img.height, max_pixels, f"{path} frame {index}")
                    img.load()
                    frame = img if n_frames > 1 else ImageOps.exif_transpose(img)
                    frames.append(_pil_to_rgb(frame))
                except Image.DecompressionBombError as exc:
                    raise MediaError(
                        f"{path} frame {index}: {exc}; refused as a possible decompression bomb "
                        f"(limit {max_pixels:,} pixels)"
                    ) from exc
                except (OSError, SyntaxError, ValueError, EOFError) as exc:
                    if frames:  # a damaged tail of an animation: keep the frames that decoded
                        break
                    raise MediaError(
                        f"{path}: truncated or corrupt image data ({exc}); the file cannot be decoded"
                    ) from exc
    return frames


def _pil_to_rgb(img: Image.Image) -> RGBImage:
    mode = img.mode
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGB", "RGBA", "L", "LA"):
        arr = np.asarray(img.convert("RGBA") if mode == "LA" else img)
        if arr.ndim == 3 and arr.shape[2] == 4:
            return _composite_on_white(arr)
        return _from_array(arr, max_pixels=arr.shape[0] * arr.shape[1])
    if mode in ("1",):
        return _from_array(np.asarray(img.convert("L")), max_pixels=img.width * img.height)
    if mode.startswith("I;16") or mode in ("I", "F"):
        raw = np.asarray(img)
        pixels = img.width * img.height
        if mode == "F":
            return _from_array(raw.astype(np.float32), max_pixels=pixels)
        if mode.startswith("I;16"):  # 16-bit: always scale the full 0..65535 range down
            return _from_array(raw.astype(np.uint16), max_pixels=pixels)
        return _from_array(raw.astype(np.int64), max_pixels=pixels)
    # CMYK, YCbCr, LAB, HSV, RGBX, RGBa, ...: Pillow converts these to RGB.
    try:
        return np.ascontiguousarray(np.asarray(img.convert("RGB")))
    except ValueError as exc:
        raise UnsupportedMediaError(f"image mode {mode!r} cannot be converted to RGB") from exc
