"""Unrelated video clips for false-positive counts, generated deterministically (no library content).

The packages hold about three minutes of real camera footage (``DATASETS.md``), and the
benchmark's programmes use it, so a pool of 1,000 or more clips unrelated to the library
has to be made. Each clip is its own ffmpeg render, from a seed, of one of five kinds:

``photos``
    a slideshow of real photos that no programme shows (the corpus's *distractor* photos
    given to this pool, never those of the calibration pool): five shots of
    ``length / 5`` s, each a slow pan at a random zoom across a photo drawn at random;
``life``
    Conway's game of life (ffmpeg's ``life`` source) from a random soup, random colours
    and cell size;
``cellauto``
    an elementary cellular automaton (``cellauto``), one of several rules, random start;
``gradients``
    moving colour gradients (``gradients``): smooth pictures with little detail, the
    kind of frame most likely to hash alike;
``mandelbrot``
    a zoom into the Mandelbrot set from one of several points, at a random rate.

Four of the five kinds are synthetic: their statistics differ from broadcast footage, and
a false-positive count on them says less than one on real programmes. The benchmark
therefore prints the counts per kind. No clip is derived from a programme or from the
calibration pool. Clips are 320×180 at 12 frames per second, without sound (they measure
the picture's false positives; the soundtrack's are the audio index's own). The photos
are scaled once to at most 640 pixels wide first, so that no clip decodes a large photo
for every frame.

Examples
--------
>>> [clip_kind(k) for k in range(6)]
['photos', 'life', 'cellauto', 'gradients', 'mandelbrot', 'photos']
>>> "life=" in lavfi_source("life", __import__("random").Random(1), 30.0)
True
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KINDS = ("photos", "life", "cellauto", "gradients", "mandelbrot")
W, H, RATE = 320, 180, 8
#: Elementary automaton rules with lasting structure (not dying out or filling up at once).
RULES = (18, 22, 30, 45, 54, 60, 73, 90, 105, 110, 126, 150, 182)
#: Points of the Mandelbrot set's boundary worth zooming into (x, y).
POINTS = ((-0.743643887, 0.131825904), (-0.16070135, 1.0375665), (0.28693186, 0.01260247),
          (-1.25066, 0.02012), (-0.748, 0.1), (0.001643721971153, -0.822467633298876))  # fmt: skip


def clip_kind(k: int) -> str:
    """The kind of the ``k``-th clip of a pool (the kinds in turn)."""
    return KINDS[k % len(KINDS)]


def _colour(rng: random.Random, lo: int = 0, hi: int = 256) -> str:
    """A random colour with channels in ``lo .. hi - 1`` (live cells bright, the ground dark)."""
    return "0x" + "".join(f"{rng.randrange(lo, hi):02x}" for _ in range(3))


def lavfi_source(kind: str, rng: random.Random, length: float) -> str:
    """The ffmpeg ``lavfi`` graph of a synthetic clip of ``kind`` (not ``photos``), drawn from ``rng``."""
    if kind == "life":
        cell = rng.choice((2, 3, 4, 5))
        return (
            f"life=size={W // cell}x{H // cell}:rate={RATE}:seed={rng.randrange(1 << 30)}:"
            f"ratio={rng.uniform(0.2, 0.6):.3f}:mold={rng.randrange(0, 40)}:life_color={_colour(rng, 128)}:"
            f"death_color={_colour(rng, 0, 96)}:mold_color={_colour(rng)},scale={W}:{H}:flags=neighbor"
        )
    if kind == "cellauto":
        return (
            f"cellauto=size={W // 2}x{H // 2}:rate={RATE}:rule={rng.choice(RULES)}:"
            f"random_fill_ratio={rng.uniform(0.1, 0.9):.3f}:random_seed={rng.randrange(1 << 30)}:"
            f"scroll={rng.choice((0, 1))},scale={W}:{H}:flags=neighbor,colorchannelmixer="
            f"rr={rng.uniform(0.2, 1):.2f}:gg={rng.uniform(0.2, 1):.2f}:bb={rng.uniform(0.2, 1):.2f}"
        )
    if kind == "gradients":
        n = rng.randrange(2, 9)
        colours = ":".join(f"c{i}={_colour(rng)}" for i in range(n))
        return (
            f"gradients=size={W}x{H}:rate={RATE}:{colours}:nb_colors={n}:"
            f"speed={rng.uniform(0.005, 0.05):.4f}:seed={rng.randrange(1 << 30)}:"
            f"type={rng.choice(('linear', 'radial', 'circular', 'spiral'))}"
        )
    if kind == "mandelbrot":
        x, y = rng.choice(POINTS)
        start = rng.uniform(0.5, 3.0)
        end = start * rng.uniform(1e-4, 1e-2)
        return (
            f"mandelbrot=size={W // 2}x{H // 2}:rate={RATE}:start_x={x}:start_y={y}:start_scale={start:.4f}:"
            f"end_scale={end:.6f}:end_pts={length * RATE:.0f}:maxiter=96:inner=mincol,scale={W}:{H}"
        )
    raise ValueError(f"no lavfi source for kind {kind!r}")


def _photo_graph(photos: list[Path], rng: random.Random, length: float) -> tuple[list[str], str]:
    """ffmpeg inputs and filter graph of a five-shot pan across photos drawn from ``photos``."""
    shot = length / 5
    chosen = rng.sample(photos, min(5, len(photos)))
    inputs: list[str] = []
    chains = []
    for i, p in enumerate(chosen):
        inputs += ["-loop", "1", "-framerate", str(RATE), "-t", f"{shot}", "-i", str(p)]
        zoom = rng.uniform(1.15, 1.6)
        sx, sy = rng.uniform(-1, 1), rng.uniform(-1, 1)  # pan direction and rate
        chains.append(
            f"[{i}:v]scale={int(W * zoom)}:{int(H * zoom)}:force_original_aspect_ratio=increase,"
            f"crop={W}:{H}:x='(iw-ow)*(0.5+{sx / 2:.3f}*(2*t/{shot}-1))':"
            f"y='(ih-oh)*(0.5+{sy / 2:.3f}*(2*t/{shot}-1))',setsar=1,format=yuv420p[s{i}]"
        )
    joined = "".join(f"[s{i}]" for i in range(len(chosen)))
    return inputs, ";".join([*chains, f"{joined}concat=n={len(chosen)}:v=1:a=0[v]"])


def render_clip(k: int, out: Path, photos: list[Path], seed: int, length: float = 30.0) -> Path:
    """Render the ``k``-th clip of the pool seeded ``seed`` to ``out`` (kept when it exists)."""
    if out.exists():
        return out
    rng = random.Random(f"{seed}:{k}")
    kind = clip_kind(k)
    if kind == "photos":
        inputs, graph = _photo_graph(photos, rng, length)
        source = [*inputs, "-filter_complex", graph, "-map", "[v]"]
    else:
        source = ["-f", "lavfi", "-i", lavfi_source(kind, rng, length), "-vf", "format=yuv420p"]
    tmp = out.with_suffix(".part.mp4")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-threads", "1", *source, "-t", f"{length}",
         "-r", str(RATE), "-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "26", str(tmp)],
        check=True,
    )  # fmt: skip
    tmp.replace(out)
    return out


def _small(photos: list[Path], directory: Path) -> list[Path]:
    """``photos`` scaled to at most 640 pixels wide (JPEG), once."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for p in photos:
        small = directory / f"{p.stem}.jpg"
        if not small.exists():
            tmp = directory / f"{p.stem}.part.jpg"
            scale = "scale='min(640,iw)':-2,format=yuvj420p"
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-i", str(p), "-vf", scale,
                            "-q:v", "3", str(tmp)], check=True)  # fmt: skip
            tmp.replace(small)
        out.append(small)
    return out


def unrelated_pool(
    n: int,
    directory: Path,
    photos: list[Path],
    seed: int,
    length: float = 30.0,
    workers: int = 1,
    skip: Callable[[int], bool] | None = None,
) -> Iterator[Path]:
    """``n`` unrelated clips of ``length`` s in ``directory``, in order, each as soon as it is rendered.

    A clip already in ``directory`` is reused.

    Parameters
    ----------
    n : int
        Clips.
    directory : Path
        Where they are kept (``clip-<seed>-<k>.mp4``).
    photos : list of Path
        Photos the ``photos`` clips may show: none of the programmes' or the calibration
        pool's.
    seed : int
        The pool's seed; the ``k``-th clip depends on it and ``k`` only.
    length : float
        Seconds per clip.
    workers : int
        ffmpeg processes at once.
    skip : callable, optional
        ``skip(k)`` true: the ``k``-th clip is not rendered (its path is yielded all the same,
        for a caller that measured it before).
    """
    if not photos:
        raise ValueError("the photo clips need photos that no programme and no calibration video shows")
    small = _small(photos, directory / "photos")

    def one(k: int) -> Path:
        out = directory / f"clip-{seed}-{length:g}s-{k:05d}.mp4"
        return out if skip is not None and skip(k) else render_clip(k, out, small, seed, length)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(one, range(n))
