"""Video attacks, rendered by one ffmpeg run per query.

``apply(src, dest, chain, seed)`` writes the attacked MP4 to ``dest`` and returns its
:class:`~datasets.attacks.Truth` (``time_map``: query seconds → source seconds).
Transforms (name: parameters):

- ``excerpt``: start (s), length (s)
- ``reencode``: codec "libx264" | "libx265" | "libvpx-vp9" | "mpeg4", crf (quality; the
  output codec; the last ``reencode`` wins, default libx264 CRF 23)
- ``scale``: factor 0.2–2
- ``crop``: area 0.2–1, x, y 0–1
- ``letterbox``: fraction 0.05–1 of the height added as black bars top and bottom
- ``pillarbox``: fraction 0.05–1 of the width added left and right
- ``flip``: axis "h" | "v"
- ``fps``: rate 5–60
- ``speed``: factor 0.5–2 (video and sound)
- ``logo``: scale 0.05–0.5, x, y 0–1, opacity 0.1–1
- ``text``: text, size 0.03–0.3, x, y 0–1
- ``eq``: brightness −0.5–0.5, contrast 0.3–2
- ``pip``: scale 0.2–0.8, x, y 0–1 — the source inside a host video (``host=``)
- ``blur``: sigma 0.5–10
- ``audio``: mode "keep" | "replace" (needs ``replacement=``) | "remove"
- ``color``: gamma 0.3–3, saturation 0–3, noise 0–100 (temporal noise strength)
- ``camcorder``: warp 0–0.15 (corner displacement, fraction of the frame), sigma 0–5 (blur),
  noise 0–100, flicker 0–0.3 (brightness amplitude), hz 0.5–20 (flicker frequency)
- ``ticker``: text, size 0.03–0.2 (band height, fraction of the height), speed 0.05–2
  (frame widths per second) — a news ticker scrolling in a dark band at the bottom
- ``blank``: level 0–255 — the picture replaced by a flat grey (the sound kept)

``color``, ``camcorder``, ``ticker`` and ``blank`` are never drawn by :func:`sample_chain`
(named explicitly by the benchmarks), so the chains sampled for a seed stay as they were.

Encoding is single-threaded and bit-exact, so the same chain, seed and inputs give the
same bytes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datasets.attacks import (
    ChainSpec,
    Truth,
    check_choice,
    check_range,
    identity_map,
    map_excerpt,
    map_speed,
    normalize_chain,
    resolve,
    step_rng,
)
from datasets.attacks.image import load_font, logo_params, make_logo
from datasets.errors import AttackError, DatasetsError
from datasets.tools import FFMPEG_BITEXACT, MediaInfo, ffmpeg, probe

VIDEO_CODECS = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63), "mpeg4": (1, 31)}


class _Graph:
    """The filter chain being built, with the current stream labels and state."""

    def __init__(self, info: MediaInfo, work: Path) -> None:
        self.parts: list[str] = []
        self.v = "0:v"
        self.a: str | None = "0:a" if info.has_audio else None
        self.inputs: list[list[str]] = []
        self.duration = info.duration
        self.work = work
        self.n = 0
        self.codec = ("libx264", 23)
        self.seek: tuple[float, float] | None = None

    def label(self) -> str:
        self.n += 1
        return f"s{self.n}"

    def video(self, flt: str) -> None:
        out = self.label()
        self.parts.append(f"[{self.v}]{flt}[{out}]")
        self.v = out

    def audio(self, flt: str) -> None:
        if self.a is not None:
            out = self.label()
            self.parts.append(f"[{self.a}]{flt}[{out}]")
            self.a = out

    def add_input(self, args: list[str]) -> int:
        self.inputs.append(args)
        return len(self.inputs)


Op = Callable[[_Graph, dict[str, Any], dict[str, Any], list[dict[str, float]]], list[dict[str, float]]]


def _excerpt(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    start = check_range("excerpt", "start", p["start"], 0, max(g.duration - 0.05, 0))
    length = check_range("excerpt", "length", p["length"], 0.1, 1e6)
    length = min(length, g.duration - start)
    if not g.parts and g.seek is None:  # first step: seek in the input instead of decoding it all
        g.seek = (start, length)
    else:
        g.video(f"trim=start={start:.3f}:duration={length:.3f},setpts=PTS-STARTPTS")
        g.audio(f"atrim=start={start:.3f}:duration={length:.3f},asetpts=PTS-STARTPTS")
    g.duration = length
    return map_excerpt(tm, start, length)


def _reencode(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    codec = check_choice("reencode", "codec", p["codec"], tuple(VIDEO_CODECS))
    lo, hi = VIDEO_CODECS[codec]
    g.codec = (codec, int(check_range("reencode", "crf", p["crf"], lo, hi)))
    return tm


def _scale(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    f = check_range("scale", "factor", p["factor"], 0.1, 3)
    g.video(f"scale=max(2\\,trunc(iw*{f:g}/2)*2):max(2\\,trunc(ih*{f:g}/2)*2)")
    return tm


def _crop(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    k = check_range("crop", "area", p["area"], 0.05, 1) ** 0.5
    x, y = check_range("crop", "x", p["x"], 0, 1), check_range("crop", "y", p["y"], 0, 1)
    g.video(f"crop=trunc(iw*{k:.4f}/2)*2:trunc(ih*{k:.4f}/2)*2:(iw-ow)*{x:g}:(ih-oh)*{y:g}")
    return tm


def _box(axis: str) -> Op:
    def op(
        g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
    ) -> list[dict[str, float]]:
        f = check_range(axis, "fraction", p["fraction"], 0.01, 2)
        if axis == "letterbox":
            g.video(f"pad=iw:trunc(ih*{1 + f:.4f}/2)*2:0:(oh-ih)/2:black")
        else:
            g.video(f"pad=trunc(iw*{1 + f:.4f}/2)*2:ih:(ow-iw)/2:0:black")
        return tm

    return op


def _flip(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    g.video("hflip" if check_choice("flip", "axis", p["axis"], ("h", "v")) == "h" else "vflip")
    return tm


def _fps(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    g.video(f"fps={check_range('fps', 'rate', p['rate'], 1, 120):g}")
    return tm


def _atempo(f: float) -> str:
    parts = []
    while f > 2.0:
        parts.append("atempo=2.0")
        f /= 2.0
    while f < 0.5:
        parts.append("atempo=0.5")
        f /= 0.5
    parts.append(f"atempo={f:.6f}")
    return ",".join(parts)


def _speed(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    f = check_range("speed", "factor", p["factor"], 0.25, 4)
    g.video(f"setpts=PTS/{f:g}")
    g.audio(_atempo(f))
    g.duration /= f
    return map_speed(tm, f)


def _overlay(g: _Graph, op: str, img: Any, p: dict[str, Any]) -> None:
    """Overlay an RGBA picture at the step's relative position (x, y in 0–1)."""
    png = g.work / f"{op}{g.n}.png"
    img.save(png)
    x, y = check_range(op, "x", p["x"], 0, 1), check_range(op, "y", p["y"], 0, 1)
    idx = g.add_input(["-loop", "1", "-i", str(png)])
    out = g.label()
    g.parts.append(f"[{g.v}][{idx}:v]overlay=x=(W-w)*{x:g}:y=(H-h)*{y:g}:shortest=1:format=auto[{out}]")
    g.v = out


def _logo(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    scale = check_range("logo", "scale", p["scale"], 0.01, 1)
    opacity = check_range("logo", "opacity", p["opacity"], 0, 1)
    _overlay(g, "logo", make_logo(max(8, round(scale * res["width"])), int(p.get("design", 0)), opacity), p)
    return tm


def _text(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    from PIL import Image, ImageDraw

    if not isinstance(p["text"], str) or not p["text"]:
        raise AttackError("text: text must be a non-empty string")
    size = max(6, round(check_range("text", "size", p["size"], 0.01, 0.5) * res["height"]))
    font = load_font(size)
    box = ImageDraw.Draw(Image.new("RGBA", (1, 1))).textbbox((0, 0), p["text"], font=font)
    left, top, right, bottom = (int(v) for v in box)
    img = Image.new("RGBA", (right - left + 4, bottom - top + 4), (0, 0, 0, 0))
    ImageDraw.Draw(img).text(
        (2 - left, 2 - top),
        p["text"],
        font=font,
        fill=(255, 255, 255, 255),
        stroke_width=max(1, size // 15),
        stroke_fill=(0, 0, 0, 255),
    )
    _overlay(g, "text", img, p)
    return tm


def _eq(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    br = check_range("eq", "brightness", p["brightness"], -1, 1)
    co = check_range("eq", "contrast", p["contrast"], 0.1, 3)
    g.video(f"eq=brightness={br:g}:contrast={co:g}")
    return tm


def _pip(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    host = res.get("host")
    if host is None:
        raise AttackError("pip: picture-in-picture needs host=<path of another video>")
    scale = check_range("pip", "scale", p["scale"], 0.05, 1)
    x, y = check_range("pip", "x", p["x"], 0, 1), check_range("pip", "y", p["y"], 0, 1)
    p["host_id"] = str(host)
    idx = g.add_input(["-stream_loop", "-1", "-i", str(host)])
    small, bg, out = g.label(), g.label(), g.label()
    g.parts.append(f"[{g.v}]scale=trunc({res['host_width']}*{scale:g}/2)*2:-2[{small}]")
    g.parts.append(f"[{idx}:v]scale={res['host_width']}:{res['host_height']},setsar=1[{bg}]")
    g.parts.append(f"[{bg}][{small}]overlay=x=(W-w)*{x:g}:y=(H-h)*{y:g}:shortest=1[{out}]")
    g.v = out
    return tm


def _blur(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    g.video(f"gblur=sigma={check_range('blur', 'sigma', p['sigma'], 0.1, 50):g}")
    return tm


def _audio(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    mode = check_choice("audio", "mode", p["mode"], ("keep", "replace", "remove"))
    if mode != "keep" and g.a is not None and g.a != "0:a":
        g.parts.append(f"[{g.a}]anullsink")  # a filtered sound that is dropped must still end somewhere
    if mode == "remove":
        g.a = None
    elif mode == "replace":
        rep = res.get("replacement")
        if rep is None:
            raise AttackError("audio: mode 'replace' needs replacement=<path of other audio>")
        p["replacement_id"] = str(rep)
        idx = g.add_input(["-stream_loop", "-1", "-i", str(rep)])
        out = g.label()
        g.parts.append(f"[{idx}:a]aresample=44100,aformat=channel_layouts=stereo[{out}]")
        g.a = out
    return tm


def _color(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    gamma = check_range("color", "gamma", p["gamma"], 0.3, 3)
    sat = check_range("color", "saturation", p["saturation"], 0, 3)
    noise = round(check_range("color", "noise", p["noise"], 0, 100))
    g.video(f"eq=gamma={gamma:g}:saturation={sat:g}" + (f",noise=alls={noise}:allf=t" if noise else ""))
    return tm


def _camcorder(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    w = check_range("camcorder", "warp", p["warp"], 0, 0.15)
    sigma = check_range("camcorder", "sigma", p["sigma"], 0, 5)
    noise = round(check_range("camcorder", "noise", p["noise"], 0, 100))
    flicker = check_range("camcorder", "flicker", p["flicker"], 0, 0.3)
    hz = check_range("camcorder", "hz", p["hz"], 0.5, 20)
    # the screen filmed at a slant: its corners pulled inwards by different amounts
    c = [f"{w * k:.4f}" for k in (1.0, 0.4, 0.7, 0.2)]
    g.video(
        f"perspective=x0=W*{c[0]}:y0=H*{c[1]}:x1=W*(1-{c[2]}):y1=H*{c[3]}:"
        f"x2=W*{c[3]}:y2=H*(1-{c[0]}):x3=W*(1-{c[1]}):y3=H*(1-{c[2]}):sense=destination"
    )
    if sigma > 0:
        g.video(f"gblur=sigma={sigma:g}")
    if noise:
        g.video(f"noise=alls={noise}:allf=t")
    if flicker > 0:
        g.video(f"eq=brightness='{flicker:g}*sin(2*PI*t*{hz:g})':eval=frame")
    return tm


def _ticker(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    from PIL import Image, ImageDraw

    if not isinstance(p["text"], str) or not p["text"]:
        raise AttackError("ticker: text must be a non-empty string")
    band = max(8, round(check_range("ticker", "size", p["size"], 0.03, 0.2) * res["height"]))
    speed = check_range("ticker", "speed", p["speed"], 0.05, 2)
    font = load_font(max(6, round(band * 0.7)))
    text = (p["text"] + "   ·   ") * 6
    box = ImageDraw.Draw(Image.new("RGBA", (1, 1))).textbbox((0, 0), text, font=font)
    strip = Image.new("RGBA", (int(box[2] - box[0]) + 8, band), (10, 10, 60, 200))
    ImageDraw.Draw(strip).text((4 - box[0], (band - (box[3] - box[1])) / 2 - box[1]), text, font=font,
                               fill=(255, 255, 255, 255))  # fmt: skip
    png = g.work / f"ticker{g.n}.png"
    strip.save(png)
    idx = g.add_input(["-loop", "1", "-i", str(png)])
    out = g.label()
    g.parts.append(f"[{g.v}][{idx}:v]overlay=x='W-t*W*{speed:g}':y=H-h:shortest=1:format=auto[{out}]")
    g.v = out
    return tm


def _blank(
    g: _Graph, p: dict[str, Any], res: dict[str, Any], tm: list[dict[str, float]]
) -> list[dict[str, float]]:
    level = round(check_range("blank", "level", p["level"], 0, 255))
    g.video(f"lutyuv=y={level}:u=128:v=128")
    return tm


def _u(r: Any, a: float, b: float, nd: int = 3) -> float:
    return round(float(r.uniform(a, b)), nd)


def _excerpt_params(r: Any, info: MediaInfo, res: dict[str, Any]) -> dict[str, Any]:
    length = round(min(info.duration, r.uniform(3, 10)), 3)
    return {"start": round(r.uniform(0, max(0.0, info.duration - length)), 3), "length": length}


Sampler = Callable[[Any, MediaInfo, dict[str, Any]], dict[str, Any]]
OPS: dict[str, tuple[Sampler, Op]] = {
    "excerpt": (_excerpt_params, _excerpt),
    "reencode": (
        lambda r, i, res: {
            "codec": r.choice(["libx264", "libx265", "libvpx-vp9", "mpeg4"]),
            "crf": r.randint(20, 30),
        },
        _reencode,
    ),
    "scale": (lambda r, i, res: {"factor": _u(r, 0.4, 1.0)}, _scale),
    "crop": (lambda r, i, res: {"area": _u(r, 0.4, 0.9), "x": _u(r, 0, 1), "y": _u(r, 0, 1)}, _crop),
    "letterbox": (lambda r, i, res: {"fraction": _u(r, 0.1, 0.5)}, _box("letterbox")),
    "pillarbox": (lambda r, i, res: {"fraction": _u(r, 0.1, 0.5)}, _box("pillarbox")),
    "flip": (lambda r, i, res: {"axis": r.choice(["h", "v"])}, _flip),
    "fps": (lambda r, i, res: {"rate": r.choice([10, 12, 15, 24, 30, 50])}, _fps),
    "speed": (lambda r, i, res: {"factor": _u(r, 0.8, 1.25)}, _speed),
    "logo": (lambda r, i, res: logo_params(r, 0.1, 0.25, 0.03), _logo),
    "text": (
        lambda r, i, res: {
            "text": r.choice(["LIVE", "独家", "BREAKING", "转载"]),
            "size": _u(r, 0.05, 0.12),
            "x": _u(r, 0, 1),
            "y": _u(r, 0.7, 1),
        },
        _text,
    ),
    "eq": (lambda r, i, res: {"brightness": _u(r, -0.2, 0.2), "contrast": _u(r, 0.7, 1.4)}, _eq),
    "pip": (lambda r, i, res: {"scale": _u(r, 0.3, 0.6), "x": _u(r, 0, 1), "y": _u(r, 0, 1)}, _pip),
    "blur": (lambda r, i, res: {"sigma": _u(r, 1, 5)}, _blur),
    "audio": (
        lambda r, i, res: {
            "mode": r.choice(["keep", "remove"] + (["replace"] if res.get("replacement") else []))
        },
        _audio,
    ),
    "color": (
        lambda r, i, res: {
            "gamma": _u(r, 0.6, 1.6),
            "saturation": _u(r, 0.3, 1.8),
            "noise": r.randint(5, 25),
        },
        _color,
    ),
    "camcorder": (
        lambda r, i, res: {
            "warp": _u(r, 0.02, 0.08),
            "sigma": _u(r, 0.5, 1.5),
            "noise": r.randint(5, 15),
            "flicker": _u(r, 0.02, 0.08),
            "hz": _u(r, 1, 6),
        },
        _camcorder,
    ),
    "ticker": (
        lambda r, i, res: {
            "text": r.choice(["突发新闻 BREAKING NEWS", "本台消息 county news", "LIVE 直播"]),
            "size": _u(r, 0.06, 0.1),
            "speed": _u(r, 0.15, 0.4),
        },
        _ticker,
    ),
    "blank": (lambda r, i, res: {"level": r.choice([0, 16, 128])}, _blank),
}
#: Transforms :func:`sample_chain` never draws (named explicitly where used).
_NOT_SAMPLED = ("excerpt", "pip", "color", "camcorder", "ticker", "blank")
_EXTRA = {"pip": ["host_id"], "audio": ["replacement_id"]}


def apply(
    src: str | Path,
    dest: str | Path,
    chain: ChainSpec | str,
    seed: int,
    *,
    source_id: str | None = None,
    host: str | Path | None = None,
    replacement: str | Path | None = None,
) -> Truth:
    """Render an attacked copy of video ``src`` into ``dest`` (``.mp4``).

    Parameters
    ----------
    src, dest : path
        Source video and output file (MP4; overwritten).
    chain : chain spec
        See :func:`datasets.attacks.normalize_chain`; names are the keys of :data:`OPS`.
    seed : int
        Seeds every parameter not given.
    source_id : str, optional
        Manifest id recorded in the truth.
    host : path, optional
        Host video for ``pip``.
    replacement : path, optional
        Audio (or video with sound) for ``audio`` mode "replace".

    Returns
    -------
    Truth
        With ``output`` holding the result's duration, size and frame rate.

    Raises
    ------
    AttackError
        On unknown transforms or parameters, out-of-range values, a missing ``host`` or
        ``replacement``, or an unreadable source; :class:`datasets.errors.DatasetsError`
        if ffmpeg fails.
    """
    src, dest = Path(src), Path(dest)
    if dest.suffix.lower() != ".mp4":
        raise AttackError(f"video attacks write MP4; name the output *.mp4, not {dest.name}")
    try:
        info = probe(src)
    except DatasetsError as exc:
        raise AttackError(f"cannot read video {src}: {exc}") from None
    if not info.has_video or info.duration <= 0:
        raise AttackError(f"{src} has no video stream")
    steps = normalize_chain(chain)
    if not steps:
        raise AttackError("empty attack chain; name at least one transform")
    res: dict[str, Any] = {
        "host": host,
        "replacement": replacement,
        "width": info.width,
        "height": info.height,
    }
    if host is not None:
        hinfo = probe(Path(host))
        res["host_width"], res["host_height"] = hinfo.width - hinfo.width % 2, hinfo.height - hinfo.height % 2
    tm = identity_map(info.duration)
    resolved: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rx-vid-") as tmp:
        g = _Graph(info, Path(tmp))
        for i, step in enumerate(steps):
            if step.op not in OPS:
                raise AttackError(f"unknown video transform {step.op!r}; known: {', '.join(sorted(OPS))}")
            sampler, fn = OPS[step.op]
            defaults = sampler(step_rng(seed, i, step.op), info, res)
            params = resolve(step.op, step.params, defaults, [*defaults, *_EXTRA.get(step.op, [])])
            tm = fn(g, params, res, tm)
            resolved.append({"op": step.op, "params": params})
        g.video("pad=ceil(iw/2)*2:ceil(ih/2)*2,setsar=1,format=yuv420p")
        codec, crf = g.codec
        vargs = ["-c:v", codec, "-crf", str(crf)]
        if codec == "libx264":
            vargs += ["-preset", "veryfast"]
        elif codec == "libx265":
            vargs += ["-preset", "veryfast", "-x265-params", "pools=1:frame-threads=1:log-level=error"]
        elif codec == "libvpx-vp9":
            vargs += ["-b:v", "0", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "0"]
        elif codec == "mpeg4":
            vargs = ["-c:v", "mpeg4", "-q:v", str(crf)]
        maps = ["-map", f"[{g.v}]"]
        if g.a is not None:
            if g.a == "0:a":
                maps += ["-map", "0:a:0"]
            else:
                maps += ["-map", f"[{g.a}]"]
            maps += ["-c:a", "aac", "-b:a", "128k"]
        seek = ["-ss", f"{g.seek[0]:.3f}", "-t", f"{g.seek[1]:.3f}"] if g.seek else []
        # one decoder thread per input: threaded decoding after a seek is not reproducible
        args: list[str | Path] = ["-threads", "1", *seek, "-i", src]
        for extra in g.inputs:
            args += ["-threads", "1", *extra]
        ffmpeg(
            [
                *args,
                "-filter_complex",
                ";".join(g.parts),
                *maps,
                "-t",
                f"{g.duration:.3f}",
                *vargs,
                *FFMPEG_BITEXACT,
                "-movflags",
                "+faststart",
                dest,
            ],
            what=f"render video attack {'+'.join(s.op for s in steps)}",
        )
    out = probe(dest)
    return Truth(
        "video",
        source_id,
        seed,
        resolved,
        tm,
        {
            "duration": round(out.duration, 3),
            "width": out.width,
            "height": out.height,
            "fps": round(out.fps, 3),
            "has_audio": out.has_audio,
        },
    )


def sample_chain(rng: Any, length: int = 1, *, with_excerpt: bool = True) -> list[str]:
    """Transform names for one query: an ``excerpt`` first (if asked), then ``length`` others."""
    others = sorted(k for k in OPS if k not in _NOT_SAMPLED)
    return (["excerpt"] if with_excerpt else []) + list(rng.sample(others, length))
