"""Benchmark: how fast the attack generators run, per transform, on real smoke-corpus media.

Prints a Markdown table: for every image transform, milliseconds per call on a 1024-px
photo; for every audio transform, the real-time factor on a 20-s stereo excerpt
(seconds of audio processed per second); and for a few video chains, seconds per query
on a real 720p clip. Also the time of a no-op rebuild of the smoke corpus (everything
cached), which ``make test`` pays on every run.

Usage::

    .venv/bin/python bench/dataset_attacks.py [--repeat N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from datasets.attacks import ChainSpec, audio, image, video
from datasets.corpus import build
from datasets.manifest import Manifest
from datasets.smoke import ensure


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` calls."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = ensure()
    man = Manifest.open(root)
    print(f"machine: {platform.machine()}, {platform.python_version()}; corpus {root}\n")
    rows: list[tuple[str, str, str]] = []

    rows.append(
        ("smoke corpus, cached rebuild", f"{timed(lambda: build('all', root, smoke=True), 1):.2f} s", "")
    )

    photo = image.load(man.path(man.select(collection="images", role="original")[0]))
    photo = photo.resize((1024, round(1024 * photo.height / photo.width)))
    for op in sorted(image.OPS):
        s = timed(partial(image.apply, photo, [op], 1), args.repeat)
        rows.append((f"image {op}", f"{s * 1000:.1f} ms", f"{photo.width}x{photo.height}"))

    track = audio.load(
        man.path(max(man.select(collection="music", role="original"), key=lambda e: e.duration or 0))
    )
    clip = audio.Audio(track.samples[: track.rate * 20].copy(), track.rate)
    voices = [man.path(e) for e in man.select(collection="speech")]
    for op in sorted(audio.OPS):
        run = partial(audio.apply, clip, [op], 1, backgrounds=voices, voices=voices, tracks=voices)
        s = timed(run, args.repeat)
        rows.append((f"audio {op}", f"{clip.duration / s:.0f}× real time", f"{clip.duration:.0f} s stereo"))

    vids = sorted(man.select(collection="video", assembled=False), key=lambda e: -(e.width or 0))
    src, host = man.path(vids[0]), man.path(vids[-1])
    chains: dict[str, ChainSpec] = {
        "excerpt 4 s + scale": [("excerpt", {"start": 1, "length": 4}), "scale"],
        "excerpt 4 s + logo + text": [("excerpt", {"start": 1, "length": 4}), "logo", "text"],
        "excerpt 4 s + speed": [("excerpt", {"start": 1, "length": 4}), ("speed", {"factor": 1.1})],
        "excerpt 4 s + pip": [("excerpt", {"start": 1, "length": 4}), "pip"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, chain in chains.items():
            s = timed(partial(video.apply, src, Path(tmp) / "q.mp4", chain, 1, host=host), 1)
            rows.append((f"video {name}", f"{s:.2f} s/query", f"{vids[0].width}x{vids[0].height}"))

    print("| measure | result | input |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
