"""Where a 30-s video query's time goes, and its picture decoded by the ffmpeg process or by PyAV.

A video query as ``rongxin identify clip.mp4`` runs it: probe the file, decode its picture
(sampled at 4 frames/s, scaled to 128×128 grey), hash the frames (content, mirror,
picture-in-picture inset), search the picture index, decode the soundtrack and search the
audio index, fuse. This script times each phase alone (wall seconds, and CPU seconds of
this process — PyAV decodes in it — and of its ffmpeg children) on two kinds of clip:

- **programme**: a 30-s excerpt of a programme re-encoded at H.264 CRF 28 (a modest
  bitrate, as most uploads are);
- **noisy**: a 30-s excerpt with gamma, saturation and strong temporal noise (the
  ``color`` attack), encoded at CRF 23 — about 11 Mbit/s, so that decoding it is costly.

The picture decode is timed both ways, on one decoder thread and on the query's count
(:data:`~forensics.video.fingerprint.QUERY_DECODE_THREADS`): by an ffmpeg process that
decodes every frame (:func:`forensics.video.decode.iter_frames`) and in this process with
PyAV, leaving undecoded the non-reference frames no sample shows
(:func:`forensics.video.avdecode.query_frames`); the two decoders' frame hashes are
compared frame by frame (bits differing). Whole queries
(:meth:`forensics.video.index.VideoIndex.identify`, the soundtrack on a second thread)
then run with either decoder, alternated round by round on the same clips and index.

Both must give the same best match. The corpus is the one of ``bench/video_robustness.py
--quick`` (built on first use, cached). Figures depend on the machine's load: the load
average is printed beside each row.

Run::

    .venv/bin/python bench/video_query_phases.py --quick     # ≈ 2 minutes once the corpus exists
    .venv/bin/python bench/video_query_phases.py --rounds 10 --clips 4
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.video_robustness import build_corpus, duration, machine
from datasets.attacks.video import apply
from forensics.audio.fingerprint import query_peaks
from forensics.audio.index import AudioIndex
from forensics.image.phash import dct_hash
from forensics.types import Match
from forensics.video.avdecode import query_frames
from forensics.video.decode import iter_frames
from forensics.video.fingerprint import (
    BLOCK_FRAMES,
    DEFAULT_RATE,
    QUERY_DECODE_THREADS,
    fingerprint_blocks,
)
from forensics.video.index import SOUND_MATCHES, VideoIndex
from forensics.video.probe import probe

KINDS: dict[str, list[Any]] = {
    "programme": [("reencode", {"codec": "libx264", "crf": 28})],
    "noisy": ["color"],
}


def _children() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


@contextmanager
def timed(into: dict[str, list[tuple[float, float, float]]], name: str) -> Iterator[None]:
    """Append (wall s, process CPU s, children CPU s) of the block to ``into[name]``."""
    w, p, c = time.perf_counter(), time.process_time(), _children()
    yield
    into.setdefault(name, []).append((time.perf_counter() - w, time.process_time() - p, _children() - c))


def identify_with(idx: VideoIndex, path: Path, decoder: str) -> list[Match]:
    """``idx.identify`` with the picture decoded by ``decoder``."""
    idx.query_decoder = decoder
    try:
        return idx.identify(path, top_k=5)
    finally:
        idx.query_decoder = "pyav"


def phases(
    idx: VideoIndex,
    audio: AudioIndex,
    path: Path,
    out: dict[str, list[tuple[float, float, float]]],
    hamming: list[int],
) -> None:
    """Each phase of one query alone; ``hamming`` gets the bits by which each sampled frame's
    hash differs between the two decoders."""
    with timed(out, "probe (ffprobe)"):
        probe(path)
    for threads in (1, QUERY_DECODE_THREADS):
        with timed(out, f"decode, ffmpeg process, {threads} thr"):
            blocks = list(
                iter_frames(path, rate=DEFAULT_RATE, block=BLOCK_FRAMES, strict=False, threads=threads)
            )
        with timed(out, f"decode, PyAV, {threads} thr"):
            fast = list(query_frames(path, rate=DEFAULT_RATE, block=BLOCK_FRAMES, threads=threads))
    a, b = np.concatenate(blocks), np.concatenate(fast)
    if a.shape != b.shape:
        raise SystemExit(f"{path}: ffmpeg process gave {a.shape}, PyAV {b.shape}")
    bits = [
        int(np.unpackbits(dct_hash(x.copy()) ^ dct_hash(y.copy())).sum()) for x, y in zip(a, b, strict=True)
    ]
    hamming.extend(bits)
    with timed(out, "frame hashes (+mirror, inset)"):
        fp = fingerprint_blocks(iter(blocks), DEFAULT_RATE, query=True)
    with timed(out, "picture search"):
        idx._alignments(fp)
    bass = None if audio._bass is None else audio._bass.params
    with timed(out, "soundtrack decode + peaks"):
        peaks, low = query_peaks(
            path, audio.params, bass, max_seconds=audio.max_query_seconds, min_seconds=audio.min_seconds
        )
    with timed(out, "sound search"):
        audio.identify_peaks(peaks, SOUND_MATCHES, bass=low)


def row(name: str, values: list[tuple[float, float, float]], loads: list[float] | None = None) -> str:
    a = np.asarray(values)
    wall, cpu = a[:, 0], a[:, 1] + a[:, 2]
    load = f"{np.mean(loads):>6.2f}" if loads else ""
    return (
        f"{name:<34} {np.median(wall):>8.3f} {wall.max():>8.3f} {np.median(a[:, 1]):>8.3f} "
        f"{np.median(a[:, 2]):>8.3f} {np.median(cpu):>8.3f} {load}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 clips per kind, 3 rounds")
    ap.add_argument("--clips", type=int, default=4, help="clips per kind")
    ap.add_argument("--rounds", type=int, default=6, help="rounds of (ffmpeg process, PyAV) per clip")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "rongxin" / "bench-video")
    args = ap.parse_args()
    if args.quick:
        args.clips, args.rounds = 2, 3
    corpus = build_corpus(args.workdir / "media", 5, 60.0, 6.0, args.seed)  # as video_robustness --quick
    print(machine(), f"load average at start {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="rx-vphase-", dir=args.workdir) as tmp_s:
        tmp = Path(tmp_s)
        audio = AudioIndex(tmp / "audio")
        idx = VideoIndex(tmp / "video")
        idx.attach_audio(lambda: audio)
        for name, path in corpus.programmes.items():
            idx.add(name, path)
        names = sorted(corpus.programmes)
        clips: dict[str, list[tuple[str, Path]]] = {k: [] for k in KINDS}
        for kind, chain in KINDS.items():
            for i in range(args.clips):
                name = names[(i + (kind == "noisy")) % len(names)]
                at = round(3.0 + 7.0 * i, 2) % max(1.0, duration(corpus.programmes[name]) - 30.5)
                q = tmp / f"{kind}-{i}.mp4"
                apply(corpus.programmes[name], q, [("excerpt", {"start": at, "length": 30.0}), *chain], i)
                clips[kind].append((name, q))
                idx.identify(q)  # page cache warm, imports done
        head = f"{'':<34} {'wall p50':>8} {'wall max':>8} {'py CPU':>8} {'ffm CPU':>8} {'CPU p50':>8}"
        for kind, items in clips.items():
            per: dict[str, list[tuple[float, float, float]]] = {}
            hamming: list[int] = []
            for _name, q in items:
                phases(idx, audio, q, per, hamming)
            print(f"\n{kind} clip, each phase alone (s, median of {len(items)} clips)\n{head}")
            for name, values in per.items():
                print(row(name, values))
            hist = np.bincount(hamming)
            print(f"frame hashes, ffmpeg process vs PyAV ({len(hamming)} frames): bits differing "
                  + ", ".join(f"{k}: {n}" for k, n in enumerate(hist) if n))  # fmt: skip
        runs: dict[str, Callable[[Path], list[Match]]] = {
            "ffmpeg process": lambda p: identify_with(idx, p, "ffmpeg"),
            "PyAV": lambda p: identify_with(idx, p, "pyav"),
        }
        print(f"\nwhole queries, alternated, {args.rounds} rounds (s)\n{head}   load")
        for kind, items in clips.items():
            timing: dict[str, list[tuple[float, float, float]]] = {}
            loads: dict[str, list[float]] = {}
            found = dict.fromkeys(runs, 0)
            for r in range(args.rounds):
                order = list(runs) if r % 2 == 0 else list(runs)[::-1]
                for name, q in items:
                    for how in order:
                        loads.setdefault(how, []).append(os.getloadavg()[0])
                        with timed(timing, how):
                            matches = runs[how](q)
                        found[how] += bool(matches) and matches[0].work_id == name
            for how in runs:
                print(
                    row(f"{kind}: {how}", timing[how], loads[how])
                    + f"  found {found[how]}/{len(timing[how])}"
                )
        idx.close()
        audio.close()


if __name__ == "__main__":
    main()
