"""Video fingerprint robustness: ours (forensics.video) against a vPDQ-style matcher, same queries.

Programmes are assembled from the full corpus's real photos (original role) and the smoke
corpus's real music: slideshows whose shots pan across each photo (a moving crop, so that
every second differs from the next), 640×360 at 25 fps, plus one programme of the smoke
corpus's real camera clips. Unrelated video is assembled the same way from the
*distractor* photos and music only, in two disjoint pools: one calibrates the threshold,
the other measures false positives (windows of 10 s and 30 s sliced from the
fingerprints of long unrelated videos, each window a query against every work).

Queries: an excerpt of 10 s or 30 s from a random place of a random programme, attacked
with :mod:`datasets.attacks.video` (seeded) in each family of :data:`FAMILIES`; the
"inserted" family puts the excerpt between two unrelated videos, "two_works" joins
excerpts of two programmes (both must be found). Detection is top-1 (the right work is
the best match, above the threshold). Span errors compare the reported work span with the
excerpt's true source span, at both ends.

Peers in the same run, behind the same queries (``--peers``):

- **vPDQ-style** — PDQ hashes (``pdqhash``) of frames at 1 fps, and ThreatExchange's vPDQ
  rule: a query frame matches a work when one of the work's frames is within 31 bits
  (frames of quality below 50 ignored); the work matches when at least ``--vpdq-pct`` % of
  the query's frames match.
- **TMK+PDQF** (``perception``), **videohash**, ffmpeg's MPEG-7 **signature** filter and,
  when installed, Meta's **vpdq** bindings, each with its own decision rule
  (:mod:`bench.video_peers`). ``videohash`` takes several
  seconds a query: ``--videohash-n`` caps its queries per family and length.

Every matcher is judged by the same rule: the true work (both, for "two_works") among its
first answers that clear its own rule. Each peer's false positives are counted on windows
cut from two of the held-out unrelated videos, and its time per query is printed.

Run::

    .venv/bin/python bench/video_robustness.py --quick      # ≈ 25 minutes on a loaded machine
    .venv/bin/python bench/video_robustness.py --n 40       # the issue's query counts (hours)
    .venv/bin/python bench/video_robustness.py --quick --fp-pool 1000   # false positives only
    .venv/bin/python bench/video_robustness.py --quick --sweep 1000 --sweep-queries 24   # latency only
    .venv/bin/python bench/video_robustness.py --quick --sweep 100 --sweep-decoders ffmpeg,pyav

``--fp-pool N`` counts false positives only, on N generated unrelated clips of
``--fp-seconds`` (:mod:`bench.video_unrelated`; the threshold calibrated as above). A
clip searches the whole index once, so the (query, work) pairs grow with the library:
``--programmes`` and ``--programme-seconds`` size it in any mode (``--quick`` only sets
what is not given), and ``--shots-per-photo 2`` shows each photo in two pans so that the
corpus's photos make more programmes (each programme still its own photos)::

    .venv/bin/python bench/video_robustness.py --quick --programmes 38 --shots-per-photo 2 \
        --fp-pool 1000 --fp-seconds 10      # 39 works of 60 s: 39,000 pairs

Long runs keep each measurement as it is made, in the workdir: ``queries.jsonl`` (one
line per attacked query) and ``fp-pool.jsonl`` (one per unrelated clip). A run stopped
half-way and started again with the same arguments skips what it measured (the query
draws are the same) and prints the whole table; set-up (registration, calibration, the
peers' references) is done again.
``--sweep`` measures only the query time as synthetic hours are added: the picture
search of a fingerprinted clip, and the whole query from the file (probe, decode, hash,
picture and soundtrack search, fusion) as ``rongxin identify`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.video_peers import Peer, SignaturePeer, TmkPeer, VideohashPeer, VpdqPeer, describe, detected
from bench.video_results import ResultLog, current_code, upper_bound
from datasets.attacks.video import apply
from datasets.manifest import Manifest
from datasets.paths import corpus_dir
from datasets.smoke import ensure
from forensics.audio.index import AudioIndex
from forensics.video.align import popcount_rows
from forensics.video.fingerprint import DEFAULT_RATE, VideoFingerprint, fingerprint_file
from forensics.video.index import VideoIndex

WIDTH, HEIGHT, FPS = 640, 360, 25

#: family → attack chain after the excerpt (``host``/``replacement`` filled in per query).
FAMILIES: dict[str, list[Any]] = {
    "h264_crf38_360p": [("reencode", {"codec": "libx264", "crf": 38})],  # the programmes are 360p
    "x265": [("reencode", {"codec": "libx265", "crf": 32})],
    "vp9": [("reencode", {"codec": "libvpx-vp9", "crf": 45})],
    "letterbox_4:3": [("letterbox", {"fraction": 0.333})],
    "pillarbox": [("scale", {"factor": 0.75}), ("pillarbox", {"fraction": 0.333})],
    "crop_20pct_sides": [("crop", {"area": 0.36, "x": 0.5, "y": 0.5})],
    "flip_h": [("flip", {"axis": "h"})],
    "logo_ticker": ["logo", "ticker"],
    "pip_quarter": [("pip", {"scale": 0.5}), ("audio", {"mode": "replace"})],  # the picture alone
    "speed_0.9": [("speed", {"factor": 0.9})],
    "speed_1.1": [("speed", {"factor": 1.1})],
    "fps_25to15": [("fps", {"rate": 15})],
    "color_noise": ["color"],
    "camcorder": ["camcorder"],
    "audio_replaced": [("audio", {"mode": "replace"})],
    "picture_blanked": [("blank", {"level": 16})],
    "inserted": [],
    "two_works": [],
}


@dataclass
class Corpus:
    """Programmes (id → file), unrelated videos for calibration and for false positives, music."""

    programmes: dict[str, Path]
    calibration: list[Path]
    null: list[Path]
    other_music: list[Path]
    null_photos: list[Path] = field(default_factory=list)  # the distractor photos of ``null``
    calibration_photos: list[Path] = field(default_factory=list)  # those of ``calibration``


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


def slideshow(
    photos: list[Path], music: Path | None, out: Path, shot: float, seed: int, music_start: float = 0.0
) -> Path:
    """Shots of ``shot`` s panning across each photo (moving crop), with ``music``; cached."""
    if out.exists():
        return out
    rng = random.Random(seed)
    inputs: list[str | Path] = []
    parts = []
    for i, p in enumerate(photos):
        inputs += ["-loop", "1", "-framerate", str(FPS), "-t", f"{shot}", "-i", p]
        zoom = rng.uniform(1.1, 1.3)  # a slow pan: 10-30 pixels per second
        dx, dy = rng.choice([(1, 0), (-1, 0), (0, 1), (1, 1)])
        x = f"(iw-ow)*({0.5 - dx / 2}+{dx}*t/{shot})" if dx else "(iw-ow)/2"
        y = f"(ih-oh)*({0.5 - dy / 2}+{dy}*t/{shot})" if dy else "(ih-oh)/2"
        parts.append(
            f"[{i}:v]scale={int(WIDTH * zoom)}:{int(HEIGHT * zoom)}:force_original_aspect_ratio=increase,"
            f"crop={WIDTH}:{HEIGHT}:x='{x}':y='{y}',setsar=1,format=yuv420p[v{i}]"
        )
    concat = "".join(f"[v{i}]" for i in range(len(photos))) + f"concat=n={len(photos)}:v=1:a=0[v]"
    audio: list[str | Path] = []
    maps = ["-map", "[v]"]
    if music is not None:
        audio = ["-stream_loop", "-1", "-ss", f"{music_start}", "-i", music]
        maps += ["-map", f"{len(photos)}:a", "-c:a", "aac", "-b:a", "96k"]
    tmp = out.with_suffix(".part.mp4")
    graph = ";".join([*parts, concat])
    ffmpeg(*inputs, *audio, "-filter_complex", graph, *maps, "-t", f"{shot * len(photos)}",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-r", str(FPS), tmp)  # fmt: skip
    tmp.replace(out)
    return out


def photos_tag(photos: list[Path]) -> str:
    """A short name for a list of photos (their file names, in order), for cached renders of them."""
    crc = zlib.crc32("\n".join(p.name for p in photos).encode())
    return f"{crc:08x}"


def _frame_source(original: str) -> str | None:
    """The video a corpus photo was taken from (its ``original_path`` reads "frame at 25% of
    <video>"), or ``None`` for a photo of its own."""
    head, sep, video = original.partition(" of ")
    return video if sep and head.startswith("frame at ") else None


def _still(e: Any) -> bool:
    """A photo ffmpeg can loop as a still (JPEG or PNG) of at least 320 pixels wide."""
    return (e.width or 0) >= 320 and str(e.path).lower().endswith((".jpg", ".jpeg", ".png"))


def build_corpus(
    work: Path, n_prog: int, prog_seconds: float, null_minutes: float, seed: int, shots_per_photo: int = 1
) -> Corpus:
    """Programmes, the two unrelated pools and the music (files rendered once into ``work``, cached).

    Each programme shows its own ``prog_seconds / 6 / shots_per_photo`` original photos (no
    photo in two programmes), each photo in ``shots_per_photo`` consecutive 6-s pans of
    their own zoom and direction; fewer programmes are made when the photos run out.
    """
    full = Manifest.open(corpus_dir("full"))
    smoke_root = ensure()
    smoke = Manifest.open(smoke_root)
    originals = sorted(
        (full.root / e.path for e in full.select(collection="images", role="original") if _still(e)),
        key=str,
    )
    real = [e for e in smoke.select(collection="video", role="original")
            if not e.assembled and (e.duration or 0) >= 5]  # fmt: skip
    registered = {e.original_path for e in real}  # the sources of the real programme
    distractors = sorted(
        (
            full.root / e.path
            for e in full.select(collection="images", role="distractor")
            if _still(e) and _frame_source(e.original_path) not in registered
        ),
        key=str,
    )  # a frame of a registered video is no unrelated picture: the pools leave it out
    music = [
        smoke_root / e.path
        for e in smoke.select(collection="music", role="original")
        if (e.duration or 0) >= 60
    ]
    # music heard in the programmes, and sound never registered (unrelated videos, replaced audio)
    # (each programme its own stretch of music: a shared soundtrack would make two works one)
    heard, other = music[:6], music[6:]
    other += [smoke_root / e.path for e in smoke.select(collection="speech") if (e.duration or 0) >= 20]
    rng = random.Random(seed)
    rng.shuffle(originals)
    rng.shuffle(distractors)
    work.mkdir(parents=True, exist_ok=True)
    shot = 6.0
    per = max(1, int(prog_seconds / shot) // shots_per_photo)  # distinct photos per programme
    tag = f"-x{shots_per_photo}" if shots_per_photo > 1 else ""  # the cached file names the layout
    programmes: dict[str, Path] = {}
    for i in range(n_prog):
        photos = originals[i * per : (i + 1) * per]
        if len(photos) < per:
            print(f"only {i} programmes: {len(originals)} original photos, {per} a programme", flush=True)
            break
        shots = [p for p in photos for _ in range(shots_per_photo)]
        song, lap = heard[i % 5], i // 5  # heard[5] is the real programme's
        target = work / f"prog-{i:02d}{tag}.mp4"
        programmes[f"prog-{i:02d}"] = slideshow(shots, song, target, shot, i, 62.0 * lap)
    clips = [smoke_root / e.path for e in real]
    real_prog = work / "prog-real.mp4"
    if not real_prog.exists():
        filt = "".join(
            f"[{i}:v]scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease,pad={WIDTH}:{HEIGHT}:(ow-iw)/2:"
            f"(oh-ih)/2,fps={FPS},setsar=1,format=yuv420p[v{i}];"
            for i in range(len(clips))
        )
        filt += "".join(f"[v{i}]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=1:a=0[v]"
        ins: list[str | Path] = []
        for p in clips:
            ins += ["-i", p]
        ffmpeg(*ins, "-stream_loop", "-1", "-i", heard[5], "-filter_complex", filt, "-map", "[v]",
               "-map", f"{len(clips)}:a", "-shortest", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
               "-c:a", "aac", real_prog)  # fmt: skip
    programmes["prog-real"] = real_prog
    # unrelated: distractor photos only, split in two disjoint pools
    per_null = int(120 / shot)  # 2-minute videos
    n_null = max(2, int(null_minutes / 2))
    pool = distractors[: len(distractors) // 2], distractors[len(distractors) // 2 :]
    calibration: list[Path] = []
    null: list[Path] = []
    for k, (photos, out) in enumerate(((pool[0], calibration), (pool[1], null))):
        for j in range(n_null):
            chosen = [photos[(j * per_null + i) % len(photos)] for i in range(per_null)]
            name = f"null-{k}-{j:02d}-{photos_tag(chosen)}.mp4"  # the cache names its photos
            out.append(slideshow(chosen, other[(j + k) % len(other)], work / name, shot, 1000 + j))
    return Corpus(programmes, calibration, null, other, list(pool[1]), list(pool[0]))


def duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip())


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# -- vPDQ-style peer -------------------------------------------------------------------------------


def pdq_frames(path: Path) -> np.ndarray:
    """PDQ hashes (packed, 32 bytes) of the frames at 1 fps with quality ≥ 50."""
    import pdqhash  # type: ignore[import-untyped]

    side = 256
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-vf", f"fps=1,scale={side}:{side}",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        capture_output=True, check=False,
    )  # fmt: skip
    frames = np.frombuffer(proc.stdout, np.uint8)
    n = len(frames) // (side * side * 3)
    out = []
    for f in frames[: n * side * side * 3].reshape(n, side, side, 3):
        bits, quality = pdqhash.compute(np.ascontiguousarray(f))
        if quality >= 50:
            out.append(np.packbits(bits.astype(np.uint8)))
    return np.array(out, np.uint8).reshape(-1, 32)


def vpdq_match(query: np.ndarray, refs: dict[str, np.ndarray], pct: float) -> tuple[str | None, float]:
    """The work whose frames match the largest share of the query's frames (≥ ``pct`` %), and that share."""
    best: tuple[str | None, float] = (None, 0.0)
    if len(query) == 0:
        return best
    for work, ref in refs.items():
        if len(ref) == 0:
            continue
        d = popcount_rows(np.bitwise_xor(query[:, None, :], ref[None, :, :]))
        share = 100.0 * float((d.min(axis=1) <= 31).mean())
        if share > best[1]:
            best = (work, share)
    return best if best[1] >= pct else (None, best[1])


def vpdq_rank(query: np.ndarray, refs: dict[str, np.ndarray], pct: float) -> list[tuple[str, float]]:
    """Every work whose frames match ≥ ``pct`` % of the query's frames, largest share first."""
    out = []
    for work, ref in refs.items():
        if len(query) and len(ref):
            d = popcount_rows(np.bitwise_xor(query[:, None, :], ref[None, :, :]))
            share = 100.0 * float((d.min(axis=1) <= 31).mean())
            if share >= pct:
                out.append((work, share))
    return sorted(out, key=lambda x: -x[1])


# -- queries ---------------------------------------------------------------------------------------


@dataclass
class Query:
    family: str
    length: float
    path: Path
    truth: list[tuple[str, float, float]]  # (work, source start, source end)


@dataclass(frozen=True)
class QueryPlan:
    """Everything drawn at random for one query; rendering it (:func:`render_query`) draws nothing."""

    family: str
    length: float
    i: int
    name: str  # the programme excerpted
    start: float
    seed: int  # the attack generator's
    host: Path | None = None  # the unrelated video around (inserted) or behind (picture-in-picture)
    hstart: float = 0.0
    other: str | None = None  # two_works: the second programme
    ostart: float = 0.0
    replacement: Path | None = None  # the sound dubbed over

    @property
    def key(self) -> str:
        """The query's name in a run's result log (family, length asked, number)."""
        return f"{self.family}:{self.length:g}:{self.i}"

    def truth(self, length: float) -> list[tuple[str, float, float]]:
        """(work, source start, source end) of each excerpt, ``length`` the excerpt's actual length."""
        if self.other is not None:
            half = length / 2
            return [(self.name, self.start, self.start + half), (self.other, self.ostart, self.ostart + half)]
        return [(self.name, self.start, self.start + length)]


def plan_query(
    family: str, length: float, i: int, corpus: Corpus, rng: random.Random, seconds: Any = None
) -> QueryPlan:
    """Draw the ``i``-th query of ``family`` and ``length`` from ``rng`` (the run's one generator).

    ``seconds`` maps a file to its duration (default: ffprobe). The draws, and their order,
    are those of every run since the benchmark began, so that a rerun that skips measured
    queries still draws the same later ones.
    """
    seconds = seconds or duration
    names = sorted(corpus.programmes)
    name = rng.choice(names)
    total = seconds(corpus.programmes[name])
    clipped = min(length, total - 1.0)
    start = round(rng.uniform(0, total - clipped - 0.5), 2)
    seed = zlib.crc32(f"{family}:{clipped}:{i}".encode()) % 100000
    plan = QueryPlan(family, length, i, name, start, seed)
    if family == "inserted":
        host = rng.choice(corpus.null)
        return replace(plan, host=host, hstart=rng.uniform(0, seconds(host) - 20))
    if family == "two_works":
        other = rng.choice([n for n in names if n != name])
        ototal = seconds(corpus.programmes[other])
        return replace(plan, other=other, ostart=round(rng.uniform(0, ototal - clipped / 2 - 0.5), 2))
    behind = rng.choice(corpus.null) if family == "pip_quarter" else None
    dubbed = family in ("audio_replaced", "pip_quarter")
    return replace(plan, host=behind, replacement=rng.choice(corpus.other_music) if dubbed else None)


def render_query(plan: QueryPlan, corpus: Corpus, work: Path) -> Query:
    """The query file of ``plan`` in ``work``, attacked with :mod:`datasets.attacks.video`."""
    family, i = plan.family, plan.i
    src = corpus.programmes[plan.name]
    length = min(plan.length, duration(src) - 1.0)
    out = work / f"q-{family}-{int(length)}-{i:03d}.mp4"
    chain: list[Any] = [("excerpt", {"start": plan.start, "length": length}), *FAMILIES[family]]
    if family == "inserted":
        assert plan.host is not None
        plain = work / f"q-{family}-{int(length)}-{i:03d}-x.mp4"
        apply(src, plain, chain, plan.seed)
        graph = (
            "[0:v]setsar=1[a];[1:v]setsar=1[b];[2:v]setsar=1[c];"
            "[a][0:a][b][1:a][c][2:a]concat=n=3:v=1:a=1[v][s]"
        )
        ffmpeg("-ss", f"{plan.hstart:.2f}", "-t", "8", "-i", plan.host, "-i", plain, "-ss",
               f"{plan.hstart + 10:.2f}", "-t", "8", "-i", plan.host, "-filter_complex", graph,
               "-map", "[v]", "-map", "[s]", "-c:v", "libx264", "-preset", "veryfast",
               "-c:a", "aac", out)  # fmt: skip
        plain.unlink()
    elif plan.other is not None:
        half = length / 2
        a, b = work / "tw-a.mp4", work / "tw-b.mp4"
        apply(src, a, [("excerpt", {"start": plan.start, "length": half})], plan.seed)
        apply(
            corpus.programmes[plan.other], b, [("excerpt", {"start": plan.ostart, "length": half})], plan.seed
        )
        graph = "[0:v][0:a][1:v][1:a]concat=n=2:v=1:a=1[v][s]"
        ffmpeg("-i", a, "-i", b, "-filter_complex", graph, "-map", "[v]",
               "-map", "[s]", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", out)  # fmt: skip
    else:
        apply(src, out, chain, plan.seed, host=plan.host, replacement=plan.replacement)
    return Query(family, length, out, plan.truth(length))


def make_query(family: str, length: float, i: int, corpus: Corpus, work: Path, rng: random.Random) -> Query:
    """Draw and render the ``i``-th query of ``family`` and ``length``."""
    return render_query(plan_query(family, length, i, corpus, rng), corpus, work)


def window_scores(
    index: VideoIndex, videos: list[Path], lengths: list[float], hop: float | None
) -> dict[float, list[float]]:
    """The best unthresholded score per window (every work), windows sliced from each fingerprint.

    ``hop`` ``None``: windows side by side (a 30-s clip gives one 30-s and three 10-s
    windows). A video with too little picture scores what its few frames reach (often 0).
    """
    out: dict[float, list[float]] = {length: [] for length in lengths}
    for v in videos:
        fp = fingerprint_file(v, rate=index.rate, limits=index.limits, query=True, min_valid=0)
        assert fp.mirror is not None and fp.boxes is not None
        for length in lengths:
            n = int(length * fp.rate)
            for s in range(0, len(fp.codes) - n + 1, int((length if hop is None else hop) * fp.rate)):
                out[length].append(
                    max((a.score for _, a in index.alignments(window(fp, s, s + n))), default=0.0)
                )
    return out


def window(fp: VideoFingerprint, start: int, stop: int) -> VideoFingerprint:
    """Frames ``start:stop`` of a query fingerprint, every view with them (the inset's too, so
    that unrelated windows are searched as a query is)."""
    views = ("codes", "valid", "mirror", "boxes", "inset", "inset_mirror", "inset_valid", "inset_boxes")
    cut = {v: getattr(fp, v)[start:stop] for v in views if getattr(fp, v) is not None}
    return VideoFingerprint(rate=fp.rate, **cut)


def time_files(
    idx: VideoIndex, queries: list[tuple[str, Path, Any]], decoders: tuple[str, ...]
) -> dict[str, tuple[list[float], list[float], list[float], int]]:
    """End to end, as `rongxin identify` runs it: probe, decode, hash, picture search,
    soundtrack search and fusion, with each picture decoder in turn (the order alternated
    query by query). Each query file runs twice per decoder; the first warms the page cache.
    Per decoder: wall seconds, CPU seconds (this process's threads and its ffmpeg
    children), load averages and how many found their programme."""
    out: dict[str, tuple[list[float], list[float], list[float], int]] = {d: ([], [], [], 0) for d in decoders}
    for rep in range(2):
        for i, (name, q, _fp) in enumerate(queries):
            for dec in decoders if i % 2 == 0 else decoders[::-1]:
                idx.query_decoder = dec
                t, c = time.time(), _cpu()
                matches = idx.identify(q, top_k=5)
                if rep:
                    lat, cpu, loads, ok = out[dec]
                    lat.append(time.time() - t)
                    cpu.append(_cpu() - c)
                    loads.append(os.getloadavg()[0])
                    out[dec] = (lat, cpu, loads, ok + (bool(matches) and matches[0].work_id == name))
    return out


def sweep(
    corpus: Corpus,
    hours: list[float],
    work: Path,
    seed: int,
    n_queries: int = 4,
    decoders: tuple[str, ...] = ("pyav",),
    families: list[str] | None = None,
) -> None:
    """Query latency and chance scores with ``hours`` of synthetic works beside the programmes.

    The filler is made from real fingerprints: each synthetic hour is sampled frames of the
    real programmes (both views), every hash with 24 random bits flipped, in runs of 4-s
    shots — near-duplicates of real content, harder on the index than unrelated video.

    ``families`` ``None``: every query is the colour-and-noise attack (the heaviest file to
    decode). Otherwise the 30-s queries are drawn as the robustness run draws them, family
    after family in turn (``plan_query``), and the file timings are also printed per family.
    """
    from forensics.video.fingerprint import VideoFingerprint as Fp

    rng = np.random.default_rng(seed)
    audio = AudioIndex(work / "audio")  # the programmes' soundtracks, as inside a library
    base = VideoIndex(work / "base")
    base.attach_audio(lambda: audio)
    kept = {r.work_id for r in base.catalogue.rows()}  # a --sweep-dir of an earlier run
    for name, path in corpus.programmes.items():
        if name not in kept:
            base.add(name, path)
    real = [base.catalogue.load(r) for r in base.catalogue.rows() if r.work_id in corpus.programmes]
    added = False
    queries = []
    kinds: list[str] = []
    names = sorted(corpus.programmes)
    pick = random.Random(seed)
    for i in range(n_queries):
        if families:  # the robustness run's draws, family after family
            plan = plan_query(families[i % len(families)], 30.0, i, corpus, pick)
            rendered = render_query(plan, corpus, work)
            name, q = plan.name, rendered.path
            kinds.append(plan.family)
        else:  # 30-s excerpts, every programme in turn, from a seeded place
            name = names[i % len(names)] if n_queries > 4 else names[i]
            span = duration(corpus.programmes[name]) - 30.5
            at = 10.0 if n_queries <= 4 else round(pick.uniform(0, span), 2)
            q = work / f"sweep-{i}.mp4"
            apply(corpus.programmes[name], q, [("excerpt", {"start": at, "length": 30.0}), "color"], i)
            kinds.append("color_noise")
        fp = fingerprint_file(q, rate=base.rate, limits=base.limits, query=True, min_valid=0)
        queries.append((name, q, fp))
    head = ("hours", "frames", "open s", "save s", "reopen s", "query p50", "query max", "found", "chance",
            "file p50", "file p99", "file max", "file CPU", "file found", "load", "decoder")  # fmt: skip
    widths = (6, 10, 7, 7, 8, 9, 9, 6, 7, 9, 9, 9, 9, 10, 5, 7)
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    done = 0.0
    for target in sorted(hours):
        while done < target:
            n = int(3600 * DEFAULT_RATE)
            picks = rng.integers(0, len(real), n // 16)
            frames = []
            for views in (0, 1):
                rows = []
                for p in picks:
                    codes, _valid = real[p][views]
                    start = rng.integers(0, max(1, len(codes) - 16))
                    rows.append(codes[start : start + 16])
                block = np.concatenate(rows)
                flips = rng.integers(0, 256, (len(block), 24))
                bits = np.unpackbits(block, axis=1)
                np.put_along_axis(bits, flips, 1 - np.take_along_axis(bits, flips, axis=1), axis=1)
                frames.append(np.packbits(bits, axis=1))
            valid = np.ones(len(frames[0]), bool)
            fp = Fp(frames[0], valid, DEFAULT_RATE, centre=frames[1], centre_valid=valid)
            if f"filler-{done:06.0f}" not in kept:  # drawn all the same, so the next hours are too
                base.catalogue.add(f"filler-{done:06.0f}", fp, fp.digest, sound=False)
                added = True
            done += 1.0
        if added:  # time the clustering from the segments first
            for stale in (work / "base").glob("search-*.ivf"):
                stale.unlink()
        t = time.time()
        idx = VideoIndex(work / "base")
        idx.attach_audio(lambda: audio)
        opened = time.time() - t
        t = time.time()
        idx.flush()  # what a writer does when it closes: keep the inverted file on disk
        saved = time.time() - t
        t = time.time()
        VideoIndex(work / "base", readonly=True).close()
        reopened = time.time() - t
        lat, ok, chance = [], 0, 0.0
        for name, _q, fp in queries:
            t = time.time()
            found = idx.alignments(fp)
            lat.append(time.time() - t)
            ok += bool(found) and found[0][0] == name and found[0][1].score >= idx.threshold
            chance = max([chance] + [a.score for w, a in found if w.startswith("filler")])
        frames_n = idx.stats()["frames"]
        for dec, (file_lat, file_cpu, loads, file_ok) in time_files(idx, queries, decoders).items():
            print(f"{target:>6.0f} {frames_n:>10} {opened:>7.1f} {saved:>7.1f} {reopened:>8.1f} "
                  f"{pct(lat, 50):>8.2f}s {max(lat):>8.2f}s "
                  f"{ok:>3}/{len(queries)} {chance:>7.2f} {pct(file_lat, 50):>8.2f}s "
                  f"{pct(file_lat, 99):>8.2f}s {max(file_lat):>8.2f}s {pct(file_cpu, 50):>8.2f}s "
                  f"{file_ok:>7}/{len(queries)} "
                  f"{np.mean(loads):>5.1f} {dec:>7}", flush=True)  # fmt: skip
            if families:
                for kind in dict.fromkeys(kinds):
                    of = [i for i, k in enumerate(kinds) if k == kind]
                    sel, cpu = [file_lat[i] for i in of], [file_cpu[i] for i in of]
                    print(f"{'':>6} {kind:<20} file p50 {pct(sel, 50):.2f}s max {max(sel):.2f}s "
                          f"CPU p50 {pct(cpu, 50):.2f}s ({len(of)} queries, {dec})")  # fmt: skip
        idx.close()
    base.close()
    audio.close()


def fp_pool(
    corpus: Corpus, args: argparse.Namespace, media: Path, tmp: Path, lengths: list[float]
) -> dict[str, Any]:
    """False positives on ``args.fp_pool`` generated unrelated clips (:mod:`bench.video_unrelated`).

    The programmes are registered (picture), the threshold calibrated on the calibration
    pool as in the full run; then every clip (rendered once into ``media``) is a query,
    and each window of each length (side by side) against every work is one (query,
    work) pair.
    """
    from bench.video_unrelated import clip_kind, unrelated_pool

    index = VideoIndex(tmp / "fp-index")
    index.query_decoder = args.query_decoder
    for name, path in corpus.programmes.items():
        index.add(name, path)
    cal = window_scores(index, corpus.calibration, lengths, hop=2.0)
    threshold = max(2.0, max(max(v) for v in cal.values()) + 0.5)
    works = len(corpus.programmes)
    library = sum(duration(p) for p in corpus.programmes.values())
    cal_max = {str(L): max(v) for L, v in cal.items()}
    print(f"{works} works ({library / 60:.1f} min of picture), threshold {threshold:.2f} matched s "
          f"from {sum(len(v) for v in cal.values())} calibration windows (highest per length "
          f"{cal_max})", flush=True)  # fmt: skip
    lengths = [L for L in lengths if args.fp_seconds >= L]
    photos = photos_tag(corpus.null_photos)  # the cache and the log name them
    # each clip's scores, kept as measured: a stopped run resumes where it was
    log = ResultLog(media.parent / "fp-pool.jsonl", {
        "photos": photos,
        "works": {n: p.stat().st_size for n, p in sorted(corpus.programmes.items())},
        "calibration": [p.stat().st_size for p in corpus.calibration], "seed": args.seed,
        "clip_seconds": args.fp_seconds, "lengths": lengths, "decoder": args.query_decoder,
    })  # fmt: skip
    rows: dict[tuple[str, float], list[float]] = defaultdict(list)
    t0 = time.time()
    reused = sum(f"clip-{k}" in log for k in range(args.fp_pool))
    if reused:
        print(f"  {reused} clips already measured ({log.path})", flush=True)
    clips = unrelated_pool(
        args.fp_pool, media / f"fp-pool-{photos}", corpus.null_photos, args.seed, args.fp_seconds,
        workers=2,
        skip=lambda k: f"clip-{k}" in log,
    )  # rendered (or reused) while the earlier ones are queried  # fmt: skip
    n = 0
    for k, clip in enumerate(clips):
        record = log.get(f"clip-{k}")
        if record is None:
            measured = window_scores(index, [clip], lengths, hop=None)
            record = {"kind": clip_kind(k), "scores": {str(L): v for L, v in measured.items()}}
            log.append(f"clip-{k}", record)
        for L in lengths:
            rows[(clip_kind(k), L)] += record["scores"][str(L)]
        n = k + 1
        if n % 100 == 0:
            worst = max(max(v) for v in rows.values())
            print(
                f"  {n} clips, {time.time() - t0:.0f} s, best unrelated score so far {worst:.2f}", flush=True
            )
    index.close()
    print(f"\nfalse positives on {n} unrelated clips of {args.fp_seconds:.0f} s against {works} "
          f"works (threshold {threshold:.2f} matched seconds from {sum(len(v) for v in cal.values())} "
          f"calibration windows; clips rendered and queried in {time.time() - t0:.0f} s)")  # fmt: skip
    print(f"{'clips':<12} {'len':>4} {'windows':>8} {'pairs':>8} {'false':>6} {'max score':>9} {'mean':>6} "
          f"{'95% bound':>9}")  # fmt: skip
    out: dict[str, Any] = {"threshold": threshold, "calibration_max": cal_max, "works": works,
                           "library_seconds": library, "clips": n, "rows": []}  # fmt: skip
    for L in lengths:
        for kind in [*sorted({k for k, _ in rows}), "all"]:
            scores = [x for (k, l2), v in rows.items() if l2 == L and kind in (k, "all") for x in v]
            false = sum(x >= threshold for x in scores)
            pairs = len(scores) * works
            bound = upper_bound(false, pairs)
            out["rows"].append({"clips": kind, "length": L, "windows": len(scores), "pairs": pairs,
                                "false": false, "max_score": max(scores),
                                "mean_score": float(np.mean(scores)), "bound95": bound})  # fmt: skip
            print(f"{kind:<12} {L:>4.0f} {len(scores):>8} {pairs:>8} {false:>6} {max(scores):>9.2f} "
                  f"{np.mean(scores):>6.2f} {bound:>9.1e}")  # fmt: skip
    print("(a pair: one window against one work; 'false' counts windows whose best work reached the "
          "threshold; the bound: the rate per pair at 95 % confidence, 3 / pairs when none)")  # fmt: skip
    return out


def score_query(
    index: VideoIndex,
    q: Query,
    refs: dict[str, np.ndarray],
    vpdq_pct: float,
    row: dict[str, list[Any]],
    peers: Sequence[tuple[Peer, int]] = (),
    i: int = 0,
) -> None:
    """Identify one query with ours and the peers; append the outcomes, span errors and latency to ``row``.

    ``peers`` are (peer, number of queries per family and length it answers); the ``i``-th
    query goes to the peers whose number is above ``i``.
    """
    w0 = time.time()
    matches = index.identify(q.path, top_k=5)
    row["latency"].append(time.time() - w0)
    found: dict[str, Any] = {}
    for m in matches:  # a work's best match
        found.setdefault(m.work_id, m)
    top = [m.work_id for m in matches[: len(q.truth)]]
    ok = all(t[0] in top for t in q.truth)
    row["ours"].append(ok)
    if not ok:
        got = [(m.work_id, round(m.score, 2)) for m in matches[:2]]
        print(f"    missed {q.family} {q.length:.0f} s: {q.truth} -> {got}", flush=True)
    for work_id, s0, s1 in q.truth:
        best = found.get(work_id)
        if ok and best is not None:
            d = best.details
            row["span"].append(abs(d["ref_start"] - s0))
            row["span"].append(abs(d["ref_end"] - s1))
            row["by"].append(d["found_by"])
    truth = [t[0] for t in q.truth]
    w0 = time.time()
    row["vpdq"].append(detected(vpdq_rank(pdq_frames(q.path), refs, vpdq_pct), truth))
    row["vpdq_s"].append(time.time() - w0)
    for peer, limit in peers:
        if not peer.error and i < limit:
            try:
                ranking = peer.rank(q.path)
            except Exception as e:  # a peer failing on one query counts as a miss, and is shown
                print(f"    {peer.name} failed on {q.path.name}: {type(e).__name__}: {e}", flush=True)
                ranking = []
            row[peer.name].append(detected(ranking, truth))


def make_peers(names: str, scratch: Path, vpdq_pct: float = 50.0) -> list[Peer]:
    """The peers named (comma-separated ``tmk``, ``videohash``, ``signature``, ``vpdq``; ``none``)."""
    made: list[Peer] = []
    for name in [n.strip() for n in names.split(",") if n.strip() and n.strip() != "none"]:
        if name == "tmk":
            made.append(TmkPeer())
        elif name == "videohash":
            made.append(VideohashPeer(scratch / "videohash"))
        elif name == "signature":
            made.append(SignaturePeer(scratch / "signature"))
        elif name == "vpdq":
            made.append(VpdqPeer(scratch / "vpdq", vpdq_pct))
        else:
            raise SystemExit(f"unknown peer {name!r}")
    return made


def prepare_peers(peers: list[Peer], corpus: Corpus, lengths: list[float]) -> dict[str, Any]:
    """Register the programmes with each peer and count its false positives; a failing peer is marked."""
    fps: dict[str, Any] = {}
    for peer in peers:
        if peer.error:
            print(f"peer {peer.name}: NOT RUN — {peer.error}", flush=True)
            continue
        c0 = time.time()
        try:
            peer.prepare(corpus.programmes)
        except Exception as e:  # a peer failing is reported, not fatal
            peer.error = f"registration failed: {type(e).__name__}: {e}"
            print(f"peer {peer.name}: NOT RUN — {peer.error}", flush=True)
            continue
        prep = time.time() - c0
        fps[peer.name] = peer_false_positives(peer, corpus.null[:2], lengths)
        print(f"peer {peer.name}: works registered in {prep:.0f} s; false positives (matched, pairs) "
              f"per length {fps[peer.name]}", flush=True)  # fmt: skip
    return fps


#: window hop (s) of each peer's false-positive windows (slower peers, fewer windows)
PEER_HOP = {"TMK": 4.0, "signature": 10.0, "vpdq-meta": 10.0, "videohash": 60.0}


def peer_false_positives(peer: Peer, videos: list[Path], lengths: list[float]) -> dict[str, list[int]]:
    """(window, work) pairs the peer matched, and pairs tried, per length (str) — windows of ``videos``."""
    hop = PEER_HOP.get(peer.name, 10.0)
    out: dict[str, list[int]] = {str(L): [0, 0] for L in lengths}
    for v in videos:
        total = duration(v)
        for L in lengths:
            for found in peer.rank_windows(v, L, hop, total):
                out[str(L)][0] += len(found)
                out[str(L)][1] += len(peer.refs)  # type: ignore[attr-defined]
    return out


def report_peers(peers: list[Peer]) -> dict[str, Any]:
    """Print each peer's time per query (or why it did not run); the same as a dict for the JSON."""
    out = {}
    for peer in peers:
        print("  " + describe(peer))
        out[peer.name] = {"error": peer.error, "seconds": peer.seconds}
        for failure in getattr(peer, "failures", [])[:3]:
            print(f"    {failure}")
    return out


def rate(values: list[Any], n: int) -> str:
    """A detection rate for the table: '-' when no query, '0.67', or '0.00/1' when fewer than ``n``."""
    if not values:
        return "-"
    return f"{np.mean(values):.2f}" + (f"/{len(values)}" if len(values) != n else "")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 queries per family and length, small pools")
    ap.add_argument("--n", type=int, default=40, help="queries per family and length")
    ap.add_argument("--programmes", type=int, default=None,
                    help="slideshow programmes, beside the real one (12; --quick: 5)")  # fmt: skip
    ap.add_argument("--programme-seconds", type=float, default=None, help="seconds each (120; --quick: 60)")
    ap.add_argument("--shots-per-photo", type=int, default=1,
                    help="6-s pans per photo (more programmes from the same photos)")  # fmt: skip
    ap.add_argument("--null-minutes", type=float, default=None,
                    help="minutes of unrelated video per pool (40; --quick: 6)")  # fmt: skip
    ap.add_argument("--lengths", default="10,30")
    ap.add_argument("--families", default="", help="comma-separated subset")
    ap.add_argument(
        "--measure", default="",
        help="measure only these of --families (the others' queries are drawn, not run, so that "
        "the measured ones are those a run of every family in --families draws)",
    )  # fmt: skip
    ap.add_argument("--fpr", type=float, default=1e-4)
    ap.add_argument("--vpdq-pct", type=float, default=50.0)
    ap.add_argument(
        "--peers", default="tmk,videohash,signature,vpdq", help="peers beside vPDQ-style (or none)"
    )
    ap.add_argument("--videohash-n", type=int, default=0,
                    help="videohash queries per family and length (0: all; --quick: 1)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument(
        "--query-decoder",
        choices=("pyav", "ffmpeg"),
        default="pyav",
        help="a query's picture decoder (VideoIndex.query_decoder)",
    )
    ap.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "rongxin" / "bench-video")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--sweep", default="", help="only measure query latency at these synthetic sizes (h)")
    ap.add_argument(
        "--sweep-decoders",
        default="pyav",
        help="picture decoders of the sweep's file queries, comma-separated (alternated): pyav,ffmpeg",
    )
    ap.add_argument("--sweep-queries", type=int, default=4, help="30-s query clips timed per size (--sweep)")
    ap.add_argument(
        "--sweep-dir",
        type=Path,
        default=None,
        help="keep the sweep's index here and reuse it in a later run with the same seed and sizes "
        "(its open time is then that of the saved inverted file); default: a temporary directory",
    )
    ap.add_argument(
        "--sweep-families",
        default="",
        help="the sweep's queries drawn family after family from these (comma-separated, or 'all'); "
        "default: colour and noise only",
    )
    ap.add_argument("--fp-pool", type=int, default=0,
                    help="only count false positives on this many generated unrelated clips")  # fmt: skip
    ap.add_argument("--fp-seconds", type=float, default=10.0, help="length of each --fp-pool clip (s)")
    args = ap.parse_args()
    run(args)


def one_measurement(args: argparse.Namespace, corpus: Corpus, work: Path, lengths: list[float]) -> None:
    """``--sweep`` or ``--fp-pool`` alone."""
    with tempfile.TemporaryDirectory(prefix="rx-vonly-", dir=work) as tmp_s:
        if args.sweep:
            sizes = [float(h) for h in args.sweep.split(",")]
            decoders = tuple(args.sweep_decoders.split(","))
            fams = list(FAMILIES) if args.sweep_families == "all" else [
                f for f in args.sweep_families.split(",") if f
            ]  # fmt: skip
            where = args.sweep_dir or Path(tmp_s)
            where.mkdir(parents=True, exist_ok=True)
            sweep(corpus, sizes, where, args.seed, args.sweep_queries, decoders, fams or None)
            return
        res = fp_pool(corpus, args, work / "media", Path(tmp_s), lengths)
    if args.json:
        args.json.write_text(json.dumps(res | {"machine": machine()}, indent=2))


def measure_queries(
    plans: Sequence[QueryPlan], log: ResultLog, measure: Callable[[QueryPlan], dict[str, list[Any]]]
) -> dict[str, list[Any]]:
    """The outcomes of ``plans`` merged (name → values in plan order), each measured at most once.

    A plan whose key is in ``log`` gives its logged outcome; the others are ``measure``-d
    and appended to ``log`` one by one, so that a run stopped half-way keeps what it did.
    """
    merged: dict[str, list[Any]] = defaultdict(list)
    for plan in plans:
        record = log.get(plan.key)
        if record is None:
            record = {"row": dict(measure(plan))}
            log.append(plan.key, record)
        for name, values in record["row"].items():
            merged[name] += values
    return merged


def query_log(
    work: Path,
    args: argparse.Namespace,
    corpus: Corpus,
    families: list[str],
    lengths: list[float],
    threshold: float,
    peers: list[tuple[Peer, int]],
) -> ResultLog:
    """The run's per-query results in ``work/queries.jsonl``: a rerun with the same arguments skips
    the queries measured (their draws are the same), a run with other arguments starts afresh."""
    log = ResultLog(work / "queries.jsonl", {
        "works": {n: p.stat().st_size for n, p in sorted(corpus.programmes.items())},
        "unrelated": [p.stat().st_size for p in [*corpus.calibration, *corpus.null]],
        "families": {f: FAMILIES[f] for f in families}, "lengths": lengths, "n": args.n,
        "seed": args.seed, "threshold": threshold, "vpdq_pct": args.vpdq_pct,
        "peers": [(p.name, limit) for p, limit in peers], "decoder": args.query_decoder,
        **({"measure": args.measure} if args.measure else {}),
    }, code=current_code(Path(__file__).resolve().parents[1]))  # fmt: skip
    if log.done:
        by = ", ".join(f"{n} by {c or 'unrecorded code'}" for c, n in sorted(log.codes().items()))
        print(f"{len(log.done)} queries measured before ({log.path}; {by}): kept, not run again", flush=True)
    return log


def apply_defaults(args: argparse.Namespace) -> None:
    """The corpus sizes not given (``--quick``: 5 programmes of 60 s, 6 min a pool), and the quick counts."""
    defaults = (5, 60.0, 6.0) if args.quick else (12, 120.0, 40.0)
    for key, value in zip(("programmes", "programme_seconds", "null_minutes"), defaults, strict=True):
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.quick:
        args.n = 3
        args.videohash_n = args.videohash_n or 1


def run(args: argparse.Namespace) -> None:
    """The benchmark with the parsed arguments (see the module docstring)."""
    apply_defaults(args)
    lengths = [float(x) for x in args.lengths.split(",")]
    families = [f for f in (args.families.split(",") if args.families else FAMILIES)]
    measured = [f for f in families if not args.measure or f in args.measure.split(",")]
    work = args.workdir
    t0 = time.time()
    corpus = build_corpus(
        work / "media", args.programmes, args.programme_seconds, args.null_minutes, args.seed,
        args.shots_per_photo,
    )  # fmt: skip
    if args.fp_pool or args.sweep:
        one_measurement(args, corpus, work, lengths)
        return
    pools = f"{len(corpus.calibration)}+{len(corpus.null)}"
    print(f"corpus: {len(corpus.programmes)} programmes, {pools} unrelated "
          f"videos ({time.time() - t0:.0f} s)")  # fmt: skip
    results: dict[str, Any] = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="rx-vbench-", dir=work) as tmp_s:
        tmp = Path(tmp_s)
        index = VideoIndex(tmp / "index")
        index.query_decoder = args.query_decoder
        audio = AudioIndex(tmp / "audio")
        index.attach_audio(lambda: audio)  # soundtracks, as inside a library
        # registration
        seconds = sum(duration(p) for p in corpus.programmes.values())
        c0, w0 = _cpu(), time.time()
        for name, path in corpus.programmes.items():
            index.add(name, path)
        reg_cpu, reg_wall = _cpu() - c0, time.time() - w0  # picture and soundtrack
        stats = index.stats()
        seg_bytes = sum(p.stat().st_size for p in (tmp / "index").glob("seg-*"))
        hours = seconds / 3600
        results["registration"] = {
            "hours": hours, "wall": reg_wall, "cpu": reg_cpu, "x_realtime_per_core": seconds / reg_cpu,
            "bytes_per_hour_segments": seg_bytes / hours, "bytes_per_hour_total": stats["bytes"] / hours,
        }  # fmt: skip
        hd = work / "media" / "hd720.mp4"
        if not hd.exists():
            ffmpeg("-i", corpus.programmes["prog-00"], "-vf", "scale=1280:720", "-c:v", "libx264", "-preset",
                   "veryfast", "-crf", "20", "-c:a", "copy", hd)  # fmt: skip
        c0 = _cpu()
        VideoIndex(tmp / "hd").add("hd", hd)  # the picture only
        results["registration"]["x_realtime_per_core_720p"] = duration(hd) / (_cpu() - c0)
        c0 = _cpu()
        VideoIndex(tmp / "sd").add("sd", corpus.programmes["prog-00"])
        results["registration"]["x_realtime_per_core_360p_picture"] = duration(
            corpus.programmes["prog-00"]
        ) / (_cpu() - c0)
        # calibration (disjoint pool) and false positives (the other pool)
        cal = window_scores(index, corpus.calibration, lengths, hop=2.0)
        threshold = max(2.0, max(max(v) for v in cal.values()) + 0.5)
        index.set_threshold(threshold, args.fpr)
        null = window_scores(index, corpus.null, lengths, hop=2.0)
        works = len(corpus.programmes)
        fp_counts = {L: sum(s >= threshold for s in null[L]) for L in lengths}
        results["calibration"] = {
            "threshold": threshold, "windows": {str(k): len(v) for k, v in cal.items()},
            "max_unrelated": {str(k): max(v) for k, v in cal.items()},
        }  # fmt: skip
        results["false_positives"] = {
            str(L): {"windows": len(null[L]), "pairs": len(null[L]) * works, "false": fp_counts[L],
                     "max_score": max(null[L])}
            for L in lengths
        }  # fmt: skip
        # the peer's references
        refs = {name: pdq_frames(p) for name, p in corpus.programmes.items()}
        vpdq_null = {L: 0 for L in lengths}
        vpdq_null_n = {L: 0 for L in lengths}
        for v in corpus.null[:2]:
            frames = pdq_frames(v)
            for L in lengths:
                for s in range(0, len(frames) - int(L) + 1, 4):
                    vpdq_null_n[L] += 1
                    vpdq_null[L] += vpdq_match(frames[s : s + int(L)], refs, args.vpdq_pct)[0] is not None
        results["vpdq_false_positives"] = {str(L): [vpdq_null[L], vpdq_null_n[L] * works] for L in lengths}
        # the other peers: works registered once, false positives on windows of the same videos
        peers = make_peers(args.peers, tmp / "peers", args.vpdq_pct)
        limits = {"videohash": args.videohash_n or args.n}
        results["peer_false_positives"] = prepare_peers(peers, corpus, lengths)
        active = [(p, limits.get(p.name, args.n)) for p in peers if not p.error]
        # attacked queries
        rng = random.Random(args.seed)
        rows: dict[tuple[str, float], dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
        qdir = tmp / "queries"
        qdir.mkdir()
        log = query_log(work, args, corpus, families, lengths, threshold, active)
        for family in families:
            for L in lengths:
                plans = [plan_query(family, L, i, corpus, rng) for i in range(args.n)]  # measured or not
                if family not in measured:
                    continue  # drawn only: the later families' draws stay those of the whole list

                def measure(plan: QueryPlan) -> dict[str, list[Any]]:
                    q = render_query(plan, corpus, qdir)
                    one: dict[str, list[Any]] = defaultdict(list)
                    score_query(index, q, refs, args.vpdq_pct, one, active, plan.i)
                    q.path.unlink()
                    return one

                for key, values in measure_queries(plans, log, measure).items():
                    rows[(family, L)][key] += values
                r = rows[(family, L)]
                ours, peer = np.mean(r["ours"]), np.mean(r["vpdq"])
                others = "".join(f"  {p.name} {rate(r[p.name], args.n)}" for p, _ in active)
                print(f"  {family:<18} {L:>4.0f} s  ours {ours:.2f}  vPDQ {peer:.2f}{others}",
                      flush=True)  # fmt: skip
        index.close()
        audio.close()
    # table
    print()
    print(f"machine: {machine()}")
    print(
        f"threshold {threshold:.2f} matched seconds "
        f"(calibrated on {sum(len(v) for v in cal.values())} windows)"
    )
    names = [p.name for p in peers]
    print(f"{'family':<18} {'len':>4} {'n':>3} {'ours':>5} {'vPDQ':>5} "
          + "".join(f"{n:>10}" for n in names)
          + f" {'span p50':>8} {'span p95':>8} {'found by':<24} {'query p50':>9}")  # fmt: skip
    table = []
    for (family, L), r in rows.items():
        by = {k: r["by"].count(k) for k in ("picture", "sound", "both") if r["by"].count(k)}
        row = {
            "family": family, "length": L, "n": len(r["ours"]), "ours": float(np.mean(r["ours"])),
            "vpdq": float(np.mean(r["vpdq"])), "span_p50": pct(r["span"], 50), "span_p95": pct(r["span"], 95),
            "found_by": by, "latency_p50": pct(r["latency"], 50), "latency_p99": pct(r["latency"], 99),
            "peers": {n: [int(sum(r[n])), len(r[n])] for n in names},
        }  # fmt: skip
        table.append(row)
        cells = "".join(f"{rate(r[n], len(r['ours'])):>10}" for n in names)
        print(f"{family:<18} {L:>4.0f} {row['n']:>3} {row['ours']:>5.2f} {row['vpdq']:>5.2f}{cells} "
              f"{row['span_p50']:>8.2f} {row['span_p95']:>8.2f} {json.dumps(by):<24} "
              f"{row['latency_p50']:>8.2f}s")  # fmt: skip
    results["table"] = table
    print("(a peer's cell: share of its queries detected; '/k' when it answered k queries only; "
          "'-' not run)")  # fmt: skip
    vpdq_s = [x for r in rows.values() for x in r["vpdq_s"]]
    print(f"time per query (wall, the works' signatures ready): vPDQ-style p50 {pct(vpdq_s, 50):.2f} s, "
          f"max {max(vpdq_s, default=0.0):.2f} s")  # fmt: skip
    results["peers"] = report_peers(peers)
    reg = results["registration"]
    print(f"registration: {reg['hours']:.2f} h in {reg['wall']:.1f} s wall, {reg['cpu']:.1f} s CPU = "
          f"{reg['x_realtime_per_core']:.0f}× real time per core (360p, picture and sound); picture only: "
          f"{reg['x_realtime_per_core_360p_picture']:.0f}× at 360p, "
          f"{reg['x_realtime_per_core_720p']:.0f}× at 720p")  # fmt: skip
    print(f"index size: {reg['bytes_per_hour_segments'] / 1e6:.2f} MB/h of segments, "
          f"{reg['bytes_per_hour_total'] / 1e6:.2f} MB/h with the catalogue")  # fmt: skip
    for L, fpd in results["false_positives"].items():
        print(f"false positives at {float(L):.0f} s: {fpd['false']} of {fpd['pairs']} (query, work) pairs "
              f"({fpd['windows']} windows), highest unrelated score {fpd['max_score']:.2f}; vPDQ "
              f"{results['vpdq_false_positives'][L][0]} of "
              f"{results['vpdq_false_positives'][L][1]}")  # fmt: skip
        for name, fp in results.get("peer_false_positives", {}).items():
            if L in fp:
                print(f"    {name}: {fp[L][0]} of {fp[L][1]} (window, work) pairs")
    all_lat = [x for r in rows.values() for x in r["latency"]]
    print(f"query latency (file → matches): p50 {pct(all_lat, 50):.2f} s, p99 {pct(all_lat, 99):.2f} s; "
          f"total run {time.time() - t0:.0f} s")  # fmt: skip
    print_latency_by_length(rows, lengths, args.query_decoder)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


def print_latency_by_length(rows: dict[tuple[str, float], Any], lengths: list[float], decoder: str) -> None:
    """Query latency p50 and p99 per query length, and the load average now."""
    for L in lengths:
        lat = [x for (_f, length), r in rows.items() if length == L for x in r["latency"]]
        if lat:
            print(f"    {L:.0f}-s queries ({len(lat)}, picture decoder {decoder}): p50 "
                  f"{pct(lat, 50):.2f} s, p99 {pct(lat, 99):.2f} s")  # fmt: skip
    print("load average at the end: " + " ".join(f"{x:.1f}" for x in os.getloadavg()))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores (shared with other jobs during the run)"


if __name__ == "__main__":
    main()
    sys.exit(0)
