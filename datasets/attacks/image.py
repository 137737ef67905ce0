"""Image attacks: the transforms copy detectors face, seeded and recorded.

``apply(image, chain, seed)`` returns the attacked image (RGB :class:`PIL.Image.Image`)
and its :class:`~datasets.attacks.Truth`. Transforms (name: parameters and ranges):

- ``jpeg``: quality 10–95
- ``resize``: scale 0.2–3 (side-length factor)
- ``crop``: area 0.2–1 (fraction kept), x, y 0–1 (position of the box in the free space)
- ``rotate``: angle −180–180 degrees, crop_to_fit (largest upright rectangle inside)
- ``flip``: axis "h" or "v"
- ``aspect``: ratio 0.5–2 (width factor, height kept)
- ``pad``: top, bottom, left, right 0–0.5 (fractions of the size), color [r, g, b]
- ``border``: width 0.005–0.1 (fraction of the shorter side), color
- ``brightness``, ``contrast``, ``saturation``: factor 0–3 (1 = unchanged)
- ``gamma``: gamma 0.2–5
- ``grayscale``: no parameters
- ``blur``: radius 0.3–10 (Gaussian)
- ``sharpen``: percent 50–500, radius 0.5–5
- ``noise``: sigma 1–50 (Gaussian, 8-bit scale), pattern (seed of the noise)
- ``text``: text, size 0.03–0.3 (fraction of height), x, y 0–1, color
- ``logo``: scale 0.05–0.5 (fraction of width), x, y 0–1, opacity 0.1–1
- ``embed``: mode "screenshot" or "collage", scale 0.2–0.9 (of the canvas), x, y 0–1,
  pattern (seed of the canvas drawing)

Geometric transforms record in their resolved parameters where the source went
(``box`` in output pixels for crop, pad, embed).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from datasets.attacks import (
    ChainSpec,
    Truth,
    check_choice,
    check_range,
    normalize_chain,
    np_rng,
    resolve,
    step_rng,
)
from datasets.errors import AttackError

ImageInput = str | Path | Image.Image | NDArray[np.uint8]
Sampler = Callable[[Any], dict[str, Any]]
Transform = Callable[[Image.Image, dict[str, Any], np.random.Generator], Image.Image]

_TEXTS = ("BREAKING NEWS", "独家报道", "LIVE", "© 2026 media", "转载请注明出处", "sample text", "热点")
MAX_PIXELS = 64_000_000


def load(image: ImageInput) -> Image.Image:
    """An RGB image from a path, a PIL image or an ``(H, W[, 3|4])`` uint8 array.

    Raises
    ------
    AttackError
        If the input cannot be read or has the wrong shape or type.
    """
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        if (
            image.dtype != np.uint8
            or image.ndim not in (2, 3)
            or (image.ndim == 3 and image.shape[2] not in (3, 4))
        ):
            raise AttackError(
                f"image array must be uint8 (H, W), (H, W, 3) or (H, W, 4), got {image.dtype} {image.shape}"
            )
        return Image.fromarray(image).convert("RGB")
    try:
        with Image.open(image) as im:
            im.load()
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise AttackError(f"cannot read image {image}: {exc}") from None


def _color(op: str, value: Any) -> tuple[int, int, int]:
    if not (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(c, int) and 0 <= c <= 255 for c in value)
    ):
        raise AttackError(f"{op}: color must be three integers 0–255, got {value!r}")
    return (int(value[0]), int(value[1]), int(value[2]))


def _rcolor(r: Any) -> list[int]:
    return [r.randrange(256) for _ in range(3)]


def load_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """WenQuanYi Micro Hei (Chinese) if installed, else DejaVu Sans, else Pillow's own font."""
    for cand in (
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    ):
        if Path(cand).is_file():
            return ImageFont.truetype(cand, size)
    return ImageFont.load_default(size=size)


def _jpeg(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    q = int(check_range("jpeg", "quality", p["quality"], 1, 100))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _resize(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    s = check_range("resize", "scale", p["scale"], 0.05, 4)
    w, h = max(1, round(img.width * s)), max(1, round(img.height * s))
    if w * h > MAX_PIXELS:
        raise AttackError(f"resize: {w}x{h} exceeds {MAX_PIXELS} pixels")
    return img.resize((w, h), Image.Resampling.LANCZOS)


def _crop(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    area = check_range("crop", "area", p["area"], 0.01, 1)
    x, y = check_range("crop", "x", p["x"], 0, 1), check_range("crop", "y", p["y"], 0, 1)
    k = math.sqrt(area)
    w, h = max(1, round(img.width * k)), max(1, round(img.height * k))
    left, top = round((img.width - w) * x), round((img.height - h) * y)
    p["box"] = [left, top, left + w, top + h]
    return img.crop((left, top, left + w, top + h))


def _rotate(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    angle = check_range("rotate", "angle", p["angle"], -360, 360)
    if not p["crop_to_fit"]:
        return img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    out = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
    # largest axis-aligned rectangle of the original aspect inside the rotated frame
    a = math.radians(abs(angle) % 180)
    a = min(a, math.pi - a)
    w, h = img.width, img.height
    k = min(w / (w * math.cos(a) + h * math.sin(a)), h / (w * math.sin(a) + h * math.cos(a)))
    cw, ch = max(1, int(w * k)), max(1, int(h * k))
    left, top = (w - cw) // 2, (h - ch) // 2
    return out.crop((left, top, left + cw, top + ch))


def _flip(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    axis = check_choice("flip", "axis", p["axis"], ("h", "v"))
    return ImageOps.mirror(img) if axis == "h" else ImageOps.flip(img)


def _aspect(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    r = check_range("aspect", "ratio", p["ratio"], 0.25, 4)
    return img.resize((max(1, round(img.width * r)), img.height), Image.Resampling.LANCZOS)


def _pad(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    t, b, left, r = (check_range("pad", n, p[n], 0, 1) for n in ("top", "bottom", "left", "right"))
    dt, db, dl, dr = (
        round(t * img.height),
        round(b * img.height),
        round(left * img.width),
        round(r * img.width),
    )
    out = Image.new("RGB", (img.width + dl + dr, img.height + dt + db), _color("pad", p["color"]))
    out.paste(img, (dl, dt))
    p["box"] = [dl, dt, dl + img.width, dt + img.height]
    return out


def _border(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    w = max(1, round(check_range("border", "width", p["width"], 0.001, 0.25) * min(img.size)))
    return ImageOps.expand(img, border=w, fill=_color("border", p["color"]))


def _enhance(name: str, cls: Callable[[Image.Image], ImageEnhance._Enhance]) -> Transform:
    def fn(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
        return cls(img).enhance(check_range(name, "factor", p["factor"], 0, 5))

    return fn


def _gamma(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    g = check_range("gamma", "gamma", p["gamma"], 0.1, 10)
    lut = [min(255, round(255 * (i / 255) ** g)) for i in range(256)]
    return img.point(lut * 3)


def _grayscale(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    return img.convert("L").convert("RGB")


def _blur(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(check_range("blur", "radius", p["radius"], 0.1, 50)))


def _sharpen(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    pct = int(check_range("sharpen", "percent", p["percent"], 1, 1000))
    return img.filter(
        ImageFilter.UnsharpMask(radius=check_range("sharpen", "radius", p["radius"], 0.1, 20), percent=pct)
    )


def _noise(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    sigma = check_range("noise", "sigma", p["sigma"], 0, 128)
    g = np.random.default_rng(int(check_range("noise", "pattern", p["pattern"], 0, 2**32)))
    a = np.asarray(img, dtype=np.float32) + g.normal(0.0, sigma, (img.height, img.width, 3)).astype(
        np.float32
    )
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def _text(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    if not isinstance(p["text"], str) or not p["text"]:
        raise AttackError("text: text must be a non-empty string")
    size = max(6, round(check_range("text", "size", p["size"], 0.01, 0.5) * img.height))
    out = img.copy()
    draw = ImageDraw.Draw(out)
    font = load_font(size)
    left, top, right, bottom = draw.textbbox((0, 0), p["text"], font=font)
    x = round(check_range("text", "x", p["x"], 0, 1) * max(0, img.width - (right - left)))
    y = round(check_range("text", "y", p["y"], 0, 1) * max(0, img.height - (bottom - top)))
    draw.text(
        (x - left, y - top),
        p["text"],
        font=font,
        fill=_color("text", p["color"]),
        stroke_width=max(1, size // 15),
        stroke_fill=(0, 0, 0),
    )
    return out


def make_logo(size: int, seed: int = 0, opacity: float = 1.0) -> Image.Image:
    """A synthetic RGBA station logo (``size`` pixels wide), the same for the same seed.

    Examples
    --------
    >>> make_logo(64).size
    (64, 32)
    """
    g = np.random.default_rng(seed)
    w, h = max(8, size), max(4, size // 2)
    logo = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(logo)
    c1 = tuple(int(v) for v in g.integers(0, 256, 3))
    d.rounded_rectangle((0, 0, w - 1, h - 1), radius=h // 4, fill=(*c1, 220))
    d.ellipse((h // 8, h // 8, h - h // 8, h - h // 8), fill=(255, 255, 255, 255))
    d.text((h, h // 4), "TV", font=load_font(max(6, h // 2)), fill=(255, 255, 255, 255))
    if opacity < 1:
        logo.putalpha(logo.getchannel("A").point(lambda v: round(v * opacity)))
    return logo


def _logo(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    w = max(8, round(check_range("logo", "scale", p["scale"], 0.01, 1) * img.width))
    opacity = check_range("logo", "opacity", p["opacity"], 0, 1)
    logo = make_logo(w, int(p.get("design", 0)), opacity)
    x = round(check_range("logo", "x", p["x"], 0, 1) * max(0, img.width - logo.width))
    y = round(check_range("logo", "y", p["y"], 0, 1) * max(0, img.height - logo.height))
    out = img.copy()
    out.paste(logo, (x, y), logo)
    return out


def _embed(img: Image.Image, p: dict[str, Any], _: np.random.Generator) -> Image.Image:
    mode = check_choice("embed", "mode", p["mode"], ("screenshot", "collage"))
    g = np.random.default_rng(int(check_range("embed", "pattern", p["pattern"], 0, 2**32)))
    scale = check_range("embed", "scale", p["scale"], 0.05, 1)
    cw = max(64, round(img.width / scale))
    ch = max(64, round(img.height / scale))
    if mode == "screenshot":
        canvas = Image.new("RGB", (cw, ch), (236, 236, 236))
        d = ImageDraw.Draw(canvas)
        bar = max(8, ch // 20)
        d.rectangle((0, 0, cw, bar), fill=(60, 64, 72))
        for i in range(3):
            d.ellipse(
                (bar // 4 + i * bar, bar // 4, bar // 4 + i * bar + bar // 2, bar // 4 + bar // 2),
                fill=(200, 90, 80),
            )
        for row in range(bar * 2, ch, max(6, ch // 25)):
            d.line(
                (cw // 40, row, cw // 40 + int(g.integers(cw // 8, cw // 4)), row),
                fill=(150, 150, 150),
                width=2,
            )
    else:
        tiles = g.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        canvas = Image.fromarray(tiles).resize((cw, ch), Image.Resampling.BILINEAR)
        d = ImageDraw.Draw(canvas)
        for k in range(1, 4):
            d.line((k * cw // 4, 0, k * cw // 4, ch), fill=(255, 255, 255), width=max(2, cw // 100))
            d.line((0, k * ch // 4, cw, k * ch // 4), fill=(255, 255, 255), width=max(2, cw // 100))
    x = round(check_range("embed", "x", p["x"], 0, 1) * (cw - img.width))
    y = round(check_range("embed", "y", p["y"], 0, 1) * (ch - img.height))
    canvas.paste(img, (x, y))
    p["box"] = [x, y, x + img.width, y + img.height]
    return canvas


def _u(r: Any, a: float, b: float, nd: int = 3) -> float:
    return round(float(r.uniform(a, b)), nd)


def logo_params(r: Any, lo: float, hi: float, margin: float) -> dict[str, Any]:
    """Sampled parameters of a logo in a corner: width fraction in [lo, hi], opacity, design."""
    return {
        "scale": _u(r, lo, hi),
        "x": r.choice([margin, 1 - margin]),
        "y": r.choice([margin, 1 - margin]),
        "opacity": _u(r, 0.5, 1),
        "design": r.randrange(1000),
    }


#: name → (parameter sampler, transform)
OPS: dict[str, tuple[Sampler, Transform]] = {
    "jpeg": (lambda r: {"quality": r.randint(10, 95)}, _jpeg),
    "resize": (lambda r: {"scale": _u(r, 0.25, 2.0)}, _resize),
    "crop": (lambda r: {"area": _u(r, 0.3, 0.9), "x": _u(r, 0, 1), "y": _u(r, 0, 1)}, _crop),
    "rotate": (lambda r: {"angle": _u(r, -180, 180, 2), "crop_to_fit": r.random() < 0.5}, _rotate),
    "flip": (lambda r: {"axis": r.choice(["h", "v"])}, _flip),
    "aspect": (lambda r: {"ratio": _u(r, 0.6, 1.6)}, _aspect),
    "pad": (
        lambda r: {**{k: _u(r, 0, 0.3) for k in ("top", "bottom", "left", "right")}, "color": _rcolor(r)},
        _pad,
    ),
    "border": (lambda r: {"width": _u(r, 0.01, 0.06), "color": _rcolor(r)}, _border),
    "brightness": (lambda r: {"factor": _u(r, 0.5, 1.6)}, _enhance("brightness", ImageEnhance.Brightness)),
    "contrast": (lambda r: {"factor": _u(r, 0.5, 1.6)}, _enhance("contrast", ImageEnhance.Contrast)),
    "saturation": (lambda r: {"factor": _u(r, 0.0, 2.0)}, _enhance("saturation", ImageEnhance.Color)),
    "gamma": (lambda r: {"gamma": _u(r, 0.5, 2.0)}, _gamma),
    "grayscale": (lambda r: {}, _grayscale),
    "blur": (lambda r: {"radius": _u(r, 0.5, 4.0)}, _blur),
    "sharpen": (lambda r: {"percent": r.randint(80, 300), "radius": _u(r, 1, 3)}, _sharpen),
    "noise": (lambda r: {"sigma": _u(r, 3, 25), "pattern": r.randrange(2**31)}, _noise),
    "text": (
        lambda r: {
            "text": r.choice(_TEXTS),
            "size": _u(r, 0.05, 0.15),
            "x": _u(r, 0, 1),
            "y": _u(r, 0, 1),
            "color": _rcolor(r),
        },
        _text,
    ),
    "logo": (lambda r: logo_params(r, 0.1, 0.3, 0.02), _logo),
    "embed": (
        lambda r: {
            "mode": r.choice(["screenshot", "collage"]),
            "scale": _u(r, 0.3, 0.8),
            "x": _u(r, 0, 1),
            "y": _u(r, 0, 1),
            "pattern": r.randrange(2**31),
        },
        _embed,
    ),
}


def apply(
    image: ImageInput, chain: ChainSpec | str, seed: int, *, source_id: str | None = None
) -> tuple[Image.Image, Truth]:
    """Apply an attack chain to an image.

    Parameters
    ----------
    image : path, PIL image or uint8 array
        The source image.
    chain : chain spec
        See :func:`datasets.attacks.normalize_chain`; names are the keys of :data:`OPS`.
    seed : int
        Seeds every parameter not given in the chain (and the noise).
    source_id : str, optional
        Manifest id recorded in the truth.

    Returns
    -------
    (PIL.Image.Image, Truth)
        The attacked RGB image and what was done.

    Raises
    ------
    AttackError
        On an unknown transform, an unknown or out-of-range parameter, or unreadable input.

    Examples
    --------
    >>> img = Image.linear_gradient("L").convert("RGB")
    >>> out, truth = apply(img, "crop+jpeg", seed=7)
    >>> l, t, r, b = truth.chain[0]["params"]["box"]
    >>> [s["op"] for s in truth.chain], out.size == (r - l, b - t)
    (['crop', 'jpeg'], True)
    >>> replay, _ = apply(img, truth.chain, seed=7)
    >>> replay.tobytes() == out.tobytes()
    True
    """
    img = load(image)
    steps = normalize_chain(chain)
    if not steps:
        raise AttackError("empty attack chain; name at least one transform")
    resolved: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        if step.op not in OPS:
            raise AttackError(f"unknown image transform {step.op!r}; known: {', '.join(sorted(OPS))}")
        sampler, fn = OPS[step.op]
        defaults = sampler(step_rng(seed, i, step.op))
        params = resolve(step.op, step.params, defaults, [*defaults, "box"])
        img = fn(img, params, np_rng(seed, i, step.op))
        resolved.append({"op": step.op, "params": params})
    truth = Truth("image", source_id, seed, resolved, None, {"width": img.width, "height": img.height})
    return img, truth


def save(img: Image.Image, path: str | Path) -> Path:
    """Save losslessly as PNG (deterministic bytes for the same pixels)."""
    p = Path(path)
    clean = Image.frombytes("RGB", img.size, img.convert("RGB").tobytes())  # no metadata carried over
    clean.save(p, format="PNG", optimize=False, compress_level=6)
    return p


def sample_chain(rng: Any, length: int = 1) -> list[str]:
    """Names of ``length`` distinct transforms drawn with ``rng`` (a :class:`random.Random`)."""
    return list(rng.sample(sorted(OPS), length))
