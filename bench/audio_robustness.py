"""Audio fingerprint robustness: ours (forensics.audio) against Chromaprint on the same queries.

Registers real music (Debian's wesnoth-1.16-music and singularity-music), then cuts
excerpts of 3, 5 and 10 s from random places, attacks them with the seeded generator of
:mod:`datasets.attacks.audio` (the families and strengths of
``docs/benchmarks.md``), and asks both systems
for the top-1 work:

* ours: :class:`forensics.audio.index.AudioIndex` end to end (file → decode → match);
* Chromaprint: ``fpcalc -raw`` fingerprints (Debian ``libchromaprint-tools``) of the
  references and the query, matched by a sliding-window bit-error-rate search written
  here (:func:`chromaprint_match`); a match needs a BER at or below a threshold
  calibrated like ours.

Both decision thresholds are calibrated on unrelated audio that is not used anywhere
else (fretsonfire songs, codec2 speech, hedgewars, nexuiz and planetblupi music, every
other Czech fillets-ng speech file): windows of 3, 5 and 10 s, and each system's
threshold is set, per length, so that none of them matches (ours: one more than the
highest score; Chromaprint: just below the lowest bit error rate). The false-positive
rate is then measured on a pool that shares no package with it nor with the registered
works (:data:`FPR_POOL`: drascula, warzone2100,
hyperrogue, fillets-ng and asc music; English fillets-ng speech and klettres' spoken
letters in 20 languages; about 7 h). Windows are sliced from each file's peaks (ours)
and from its whole-file Chromaprint fingerprint, not cut with ffmpeg, so that thousands
of them fit in the run. Also printed: index size per hour, registration speed (wall, and
per core from the CPU time of this process and ffmpeg) and 10-s query latency.
``--null-only`` skips the attacks: registration, calibration and false positives only.
``--sweep`` instead measures query latency and chance scores against synthetic indexes of
10–1,000 h, built from real peaks re-pitched, re-timed and jittered (see
:func:`synthetic_tracks`).

Run::

    .venv/bin/python bench/audio_robustness.py --n 20 --calib 1500 --null 2000   # ≈ 60 min, 2 cores
    .venv/bin/python bench/audio_robustness.py --null-only --calib 1500 --null 2000  # ≈ 20 min
    .venv/bin/python bench/audio_robustness.py --sweep 10,100,1000                # ≈ 10 min, 8 GB RAM

Media come from ``~/.cache/rongxin/test-audio`` (Debian packages unpacked with
``apt-get download`` + ``dpkg-deb -x``; ``--fetch`` does it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets.attacks.audio import Audio, apply
from forensics.audio.bass import bass_samples
from forensics.audio.decode import decode
from forensics.audio.index import AudioIndex
from forensics.audio.landmarks import Peaks, extract_peaks, hash_peaks
from forensics.audio.peakstore import encode_peaks
from forensics.errors import MediaError

CACHE = Path.home() / ".cache" / "rongxin" / "test-audio"
ROOT = CACHE / "x"
PACKAGES = [
    "wesnoth-1.16-music",
    "singularity-music",
    "hedgewars-data",
    "drascula-music",
    "fretsonfire-songs-muldjord",
    "fretsonfire-songs-sectoid",
    "codec2-examples",
    "fillets-ng-data-cs",
    "nexuiz-music",
    "planetblupi-music-ogg",
    # the false-positive pool only (see FPR_POOL)
    "warzone2100-music",
    "hyperrogue-music",
    "fillets-ng-data",
    "klettres-data",
    "asc-music",
]
FPR_POOL = {
    # package: (music globs, speech globs) under ROOT; no package here is registered or
    # used for calibration, so the pools are disjoint by package
    "drascula-music": (["usr/share/scummvm/drascula/audio/*.ogg"], []),
    "warzone2100-music": (["usr/share/games/warzone2100/music/**/*.opus"], []),
    "hyperrogue-music": (["usr/share/hyperrogue/music/**/*.ogg"], []),
    "fillets-ng-data": (
        ["usr/share/games/fillets-ng/music/*.ogg"],
        ["usr/share/games/fillets-ng/sound/*/en/*.ogg"],
    ),
    "asc-music": (["usr/share/games/asc/music/*.mp3"], []),
    "klettres-data": ([], ["usr/share/klettres/**/*.ogg"]),
}
CP_ITEM_SECONDS = 1365 / 11025  # Chromaprint: 11025 Hz, 4096-sample frames, step 1365


def fetch() -> None:
    """Unpack the Debian packages holding the corpus into the cache (apt-get download)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in PACKAGES:
            subprocess.run(["apt-get", "download", pkg], cwd=tmp, check=True)
        for deb in Path(tmp).glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(ROOT)], check=True)
    nexuiz_music()


def nexuiz_music() -> list[Path]:
    """Nexuiz's music, unpacked once from the game's ``music.pk3`` (a zip) next to it."""
    pk3 = ROOT / "usr/share/games/nexuiz/data/music.pk3"
    out = ROOT / "usr/share/games/nexuiz/music"
    if pk3.exists() and not any(out.glob("*.ogg")):
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(pk3) as z:
            for info in z.infolist():
                if info.filename.endswith(".ogg"):
                    (out / Path(info.filename).name).write_bytes(z.read(info))
    return sorted(out.glob("*.ogg"))


def corpus() -> dict[str, list[Path]]:
    """Registered works, and two disjoint pools of unrelated audio (calibration / FPR)."""
    g = ROOT / "usr/share/games"
    refs = sorted((g / "wesnoth/1.16/data/core/music").glob("*.ogg")) + sorted(
        (g / "singularity/music").glob("*.ogg")
    )
    refs = [p for p in refs if "silence" not in p.name]
    speech = sorted((g / "fillets-ng/sound").glob("*/cs/*.ogg"))
    # calibration: fretsonfire songs, codec2 speech, hedgewars, nexuiz and planetblupi
    # music, even fillets-ng speech
    calib = (
        sorted((g / "fretsonfire/data/songs").rglob("song.ogg"))
        + sorted((ROOT / "usr/share/codec2/wav").glob("*.wav"))
        + sorted((g / "hedgewars/Data/Music").glob("*.ogg"))
        + nexuiz_music()
        + sorted((ROOT / "usr/share/planetblupi/music").glob("*.ogg"))
    )
    # false positives: packages used nowhere else (drascula first: "under music" mixes its
    # first 12 files); the odd Czech fillets-ng files are left out, as they share the
    # calibration's package
    unrelated, unrelated_speech = [], []
    for pkg, (music_globs, speech_globs) in FPR_POOL.items():
        music = sorted(p for g in music_globs for p in ROOT.glob(g))
        voices = sorted(p for g in speech_globs for p in ROOT.glob(g))
        if not music and not voices:
            raise SystemExit(f"{pkg} missing under {ROOT}; run with --fetch (needs apt-get and dpkg-deb)")
        unrelated += music
        unrelated_speech += voices
    if not refs or not calib or not speech:
        raise SystemExit(f"corpus missing under {ROOT}; run with --fetch (needs apt-get and dpkg-deb)")
    random.Random(5).shuffle(unrelated_speech)  # languages and speakers mixed in every stream
    return {
        "refs": refs,
        "calib": calib,
        "calib_speech": speech[0::2],
        "unrelated": unrelated,
        "unrelated_speech": unrelated_speech,
        "speech": speech,
    }


def duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip() or 0.0)


def cut(path: Path, start: float, length: float, out: Path, rate: int = 44100) -> Audio:
    """An excerpt as stereo float at ``rate`` (ffmpeg seeks; the file is never decoded whole)."""
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-ss", f"{start:.3f}", "-t", f"{length:.3f}", "-i", str(path)),
            *("-ac", "2", "-ar", str(rate), "-f", "f32le", str(out)),
        ],
        check=True,
    )
    data = np.fromfile(out, dtype="<f4").reshape(-1, 2)
    return Audio(np.ascontiguousarray(data), rate)


# -- Chromaprint ------------------------------------------------------------------------------


def fpcalc(path: Path, length: int = 0) -> np.ndarray:
    out = subprocess.run(
        ["fpcalc", "-raw", "-plain", "-length", str(length), str(path)], capture_output=True, text=True
    )
    text = out.stdout.strip()
    if not text:  # fpcalc exits non-zero on a benign end-of-file message; use what it printed
        return np.zeros(0, dtype=np.uint32)
    return np.array([int(v) & 0xFFFFFFFF for v in text.split(",")], dtype=np.uint32)


@dataclass
class ChromaRefs:
    data: np.ndarray  # all reference items, concatenated
    starts: np.ndarray  # first item of each reference
    ends: np.ndarray
    silence: int  # the item fpcalc gives digital silence


FLAT_BITS = 2
"""Items within this many bits of the silence item are *flat*: Chromaprint's filters found
no spectral contrast (silence, a fade, a steady sound), so they carry no evidence."""


def silence_item() -> int:
    """The Chromaprint item of digital silence (fpcalc of 10 s of zeros; one constant value)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "zeros.wav"
        Audio(np.zeros((80000, 1), dtype=np.float32), 8000).save(wav)
        items = fpcalc(wav)
    values, counts = np.unique(items, return_counts=True)
    return int(values[np.argmax(counts)])


def chromaprint_refs(paths: list[Path]) -> ChromaRefs:
    arrays = [fpcalc(p) for p in paths]
    starts = np.cumsum([0] + [len(a) for a in arrays[:-1]])
    ends = starts + np.array([len(a) for a in arrays])
    return ChromaRefs(np.concatenate(arrays), starts, ends, silence_item())


def chromaprint_match(query: np.ndarray, refs: ChromaRefs) -> tuple[int, float, float]:
    """(reference index, bit error rate, offset s) of the best full-overlap alignment, or (-1, 1, 0).

    Every position of every reference is tried; the score is the fraction of differing
    bits between the query's items and the reference's items at that position. A *flat*
    item (within :data:`FLAT_BITS` of the item of digital silence: no spectral contrast)
    on either side counts as 16 differing bits (chance): silence, fades and steady sounds
    are not evidence of a copy, and several registered tracks end in seconds of them,
    which a quiet or fading stretch of any query would otherwise match with almost no
    error (0.1 % of the references' items are flat).
    """
    n = len(query)
    if n == 0:
        return -1, 1.0, 0.0
    best = (-1, 1.0, 0.0)
    q_flat = _flat(query, refs.silence)
    for r, (s, e) in enumerate(zip(refs.starts, refs.ends, strict=True)):
        if e - s < n:
            continue
        win = np.lib.stride_tricks.sliding_window_view(refs.data[s:e], n)
        errors = np.bitwise_count(win ^ query[None, :]).astype(np.int64)
        flat = np.lib.stride_tricks.sliding_window_view(_flat(refs.data[s:e], refs.silence), n) | q_flat
        errors[flat] = 16
        ber = errors.sum(axis=1) / (32.0 * n)
        i = int(np.argmin(ber))
        if ber[i] < best[1]:
            best = (r, float(ber[i]), i * CP_ITEM_SECONDS)
    return best


def _flat(items: np.ndarray, silence: int) -> np.ndarray:
    flat: np.ndarray = np.bitwise_count(items ^ np.uint32(silence)) <= FLAT_BITS
    return flat


# -- attack families ----------------------------------------------------------------------------


def families(rng: random.Random, n_voices: int, n_tracks: int) -> dict[str, Any]:
    """Attack chains per family; callables draw the strength of each query from ``rng``."""
    u = rng.uniform
    return {
        "clean": lambda: [],
        "white 20 dB": lambda: [("noise", {"color": "white", "snr_db": 20})],
        "white 10 dB": lambda: [("noise", {"color": "white", "snr_db": 10})],
        "white 0 dB": lambda: [("noise", {"color": "white", "snr_db": 0})],
        "pink 20 dB": lambda: [("noise", {"color": "pink", "snr_db": 20})],
        "pink 10 dB": lambda: [("noise", {"color": "pink", "snr_db": 10})],
        "pink 0 dB": lambda: [("noise", {"color": "pink", "snr_db": 0})],
        "background 0-20 dB": lambda: [("noise", {"color": "background", "snr_db": round(u(0, 20), 1)})],
        "mp3 32k": lambda: [("reencode", {"codec": "mp3", "bitrate": 32})],
        "aac 32k": lambda: [("reencode", {"codec": "aac", "bitrate": 32})],
        "opus 32k": lambda: [("reencode", {"codec": "opus", "bitrate": 32})],
        "resample 8-48k": lambda: [("resample", {"rate": rng.choice([8000, 11025, 16000, 48000])})],
        "telephone": lambda: [("bandpass", {"low": 300, "high": 3400}), ("resample", {"rate": 8000})],
        "eq ±12 dB": lambda: [
            ("eq", {"freq": round(u(100, 3000)), "gain_db": rng.choice([-12, -8, 8, 12]), "q": 1.0})
        ],
        "reverb t60 .3-.8": lambda: [("reverb", {"t60": round(u(0.3, 0.8), 2), "wet": 0.5})],
        "gain+compress": lambda: [
            ("gain", {"db": round(u(-12, 6), 1)}),
            ("compress", {"threshold_db": round(u(-30, -10), 1), "ratio": round(u(2, 8), 1)}),
        ],
        "speed ±5%": lambda: [("speed", {"factor": round(rng.choice([-1, 1]) * u(0.01, 0.05) + 1, 4)})],
        "tempo ±5%": lambda: [("tempo", {"factor": round(rng.choice([-1, 1]) * u(0.01, 0.05) + 1, 4)})],
        "pitch ±1 st": lambda: [("pitch", {"cents": round(rng.choice([-1, 1]) * u(30, 100))})],
        "under speech": lambda: [
            ("mix", {"mode": "voiceover", "level_db": round(u(-6, 0), 1), "other": rng.randrange(n_voices)})
        ],
        "under music": lambda: [
            ("mix", {"mode": "track", "level_db": round(u(-10, -3), 1), "other": rng.randrange(n_tracks)})
        ],
    }


# -- main ---------------------------------------------------------------------------------------


def register(index: AudioIndex, refs: list[Path]) -> tuple[float, float, float]:
    """Register ``refs``; (seconds of audio, wall seconds, CPU seconds of this process and ffmpeg)."""
    cpu0 = _cpu()
    t0 = time.perf_counter()
    for p in refs:
        index.add(p.stem, p)
    wall = time.perf_counter() - t0
    cpu = _cpu() - cpu0
    return sum(duration(p) for p in refs), wall, cpu


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Stream:
    """Unrelated audio decoded once: 8 kHz samples for ours, a Chromaprint fingerprint."""

    name: str
    samples: np.ndarray
    chroma: np.ndarray


def streams(music: list[Path], speech: list[Path], tmp: Path, speech_seconds: float = 120.0) -> list[Stream]:
    """One stream per music file; short speech files are joined into streams of about 2 min."""
    groups: list[tuple[str, list[Path]]] = [(p.name, [p]) for p in music]
    current: list[Path] = []
    total = 0.0
    for p in speech:
        current.append(p)
        total += p.stat().st_size / 4000  # Ogg speech at about 32 kbit/s: a rough length
        if total >= speech_seconds:
            groups.append((f"speech-{len(groups)}", current))
            current, total = [], 0.0
    out = []
    for name, paths in groups:
        x = np.concatenate([_decode_or_empty(p) for p in paths])
        wav = tmp / "stream.wav"
        Audio(x[:, None], 8000).save(wav)
        out.append(Stream(name, x, fpcalc(wav)))
    return out


def _decode_or_empty(path: Path) -> np.ndarray:
    try:
        return decode(path, strict=False)
    except MediaError:
        return np.zeros(0, dtype=np.float32)


def window_scores(
    index: AudioIndex, cp: ChromaRefs, pool: list[Stream], length: int, n: int, seed: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Best score of ours (threshold 0), lowest Chromaprint BER, and the best scores of our
    bass layer and of the rule summing both layers (threshold 0; 0 without a bass layer;
    :meth:`AudioIndex.best_scores`) on ``n`` windows of ``length`` s.

    Windows start every ``length / 2`` s in every stream (a random subset when there are
    more than ``n``); windows that :class:`AudioIndex` would refuse as queries (fewer than
    two peaks a second: silence, a tone) are skipped for both systems, and so are the last
    windows of a stream where its Chromaprint fingerprint (which ends up to 3 s before the
    audio) has fewer items than a full window (a shorter slice would be matched as a
    shorter query). Peaks are extracted once per stream and sliced, and the Chromaprint
    fingerprint of a window is the slice of the stream's fingerprint; both approximate a
    clip cut from the stream up to edge effects.
    """
    fs = index.params.frame_seconds
    starts = [
        (k, s)
        for k, st in enumerate(pool)
        for s in np.arange(0.0, len(st.samples) / 8000 - length, length / 2)
    ]
    rng = random.Random(seed)
    if len(starts) > n:
        starts = sorted(rng.sample(starts, n))
    peaks = {}
    lows = {}
    ours: list[float] = []
    chroma: list[float] = []
    ours_bass: list[float] = []
    ours_both: list[float] = []
    bass = index.bass
    cp_items = int((length * 11025 - 4096) / 1365) + 1
    for k, s in starts:
        if k not in peaks:
            peaks = {k: extract_peaks(pool[k].samples, index.params, query=True)}
            if bass is not None:
                lows = {k: extract_peaks(bass_samples(pool[k].samples), bass.params, query=True)}
        pk = peaks[k]
        f0 = round(s / fs)
        window = pk.window(f0, f0 + round(length / fs))
        if len(window) < 2 * length:  # silence or a tone: refused as a query (NoFingerprintError)
            continue
        i0 = round(s / CP_ITEM_SECONDS)
        items = pool[k].chroma[i0 : i0 + cp_items]
        if len(items) < cp_items:
            continue
        low = None
        if bass is not None:
            bfs = bass.params.frame_seconds
            b0 = round(s / bfs)
            low = lows[k].window(b0, b0 + round(length / bfs))
        best = index.best_scores(window, low)
        ours.append(best["main"])
        ours_bass.append(best.get("bass", 0.0))
        ours_both.append(best.get("both", 0.0))
        _, ber, _ = chromaprint_match(items, cp)
        chroma.append(ber)
    return ours, chroma, ours_bass, ours_both


def pool_size(pool: list[Stream], lengths: list[int]) -> dict[str, Any]:
    """Hours of a pool and the windows :func:`window_scores` can start in it, per length."""
    seconds = [len(st.samples) / 8000 for st in pool]
    windows = {L: sum(len(np.arange(0.0, s - L, L / 2)) for s in seconds) for L in lengths}
    return {"hours": sum(seconds) / 3600, "windows": windows}


def tail(scores: list[float], threshold: float) -> str:
    """Counts of unrelated windows per unit of score, in the four units below the threshold and above."""
    top = int(threshold)
    h = np.bincount(np.floor(np.asarray(scores, dtype=np.float64)).astype(np.int64), minlength=top + 1)
    near = range(max(0, top - 4), len(h))
    return ", ".join(f"[{v},{v + 1}): {int(h[v])}" for v in near if h[v] or v >= top)


# The whole benchmark in order (complexity 18); its stages print as they finish.
def main() -> None:  # noqa: C901
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="queries per family and length")
    ap.add_argument("--lengths", default="3,5,10")
    ap.add_argument("--null", type=int, default=2000, help="unrelated windows per length (FPR)")
    ap.add_argument("--calib", type=int, default=2000, help="calibration windows per length")
    ap.add_argument("--speech-files", type=int, default=400, help="speech files in the calibration pool")
    ap.add_argument("--null-only", action="store_true", help="skip the attacks: calibration and FPR only")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--families", default="", help="comma-separated subset of attack families")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--threshold", type=float, default=0.0, help="use this threshold instead of calibrating")
    ap.add_argument("--bass-threshold", type=float, default=0.0, help="the same for the bass layer")
    ap.add_argument(
        "--joint-threshold", type=float, default=0.0, help="the same for the rule summing both layers"
    )
    ap.add_argument("--reuse", action="store_true", help="keep the index of an earlier run in --workdir")
    ap.add_argument("--fetch", action="store_true", help="download and unpack the corpus first")
    ap.add_argument("--sweep", default="", help="only measure latency at these synthetic index sizes (h)")
    ap.add_argument("--json", type=Path, default=None, help="write all results here")
    args = ap.parse_args()
    if args.fetch:
        fetch()
    c = corpus()
    lengths = [int(x) for x in args.lengths.split(",") if x]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rx-audio-bench-"))
    tmp = work / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        shutil.rmtree(work / "index", ignore_errors=True)
    results: dict[str, Any] = {"machine": machine()}
    print(results["machine"], flush=True)

    index = AudioIndex(work / "index")
    if args.sweep:
        results["sweep"] = sweep(index, [float(h) for h in args.sweep.split(",")], c["refs"], work)
        index.close()
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
        return
    if args.reuse and index.stats()["works"] == len(c["refs"]):
        audio_s, wall, cpu = sum(duration(p) for p in c["refs"]), float("nan"), float("nan")
    else:
        audio_s, wall, cpu = register(index, c["refs"])
    # size at rest: closing the catalogues checkpoints their write-ahead logs, which otherwise
    # hold a second, transient copy of the pages written (counted in size figures before 2026-12-04)
    index.close()
    index = AudioIndex(work / "index")
    st = index.stats()
    results["registration"] = {
        "works": st["works"],
        "hours": audio_s / 3600,
        "seconds": wall,
        "cpu_seconds": cpu,
        "x_realtime": audio_s / wall,
        "x_realtime_per_core": audio_s / cpu,
        "bytes_per_hour": st["bytes"] / (audio_s / 3600),
        "bass_bytes_per_hour": (st["bass"] or {}).get("bytes", 0) / (audio_s / 3600),
    }
    t0 = time.perf_counter()
    cp = chromaprint_refs(c["refs"])
    cp_wall = time.perf_counter() - t0
    results["registration"]["chromaprint_x_realtime"] = audio_s / cp_wall
    results["registration"]["chromaprint_bytes_per_hour"] = cp.data.nbytes / (audio_s / 3600)
    print_registration(results["registration"])

    # calibration on unrelated audio that is used nowhere else
    pool = streams(c["calib"], c["calib_speech"][: args.speech_files], tmp)
    calib = {L: window_scores(index, cp, pool, L, args.calib, args.seed + 1) for L in lengths}
    # one threshold per query length: one more than the highest unrelated score of that length
    thr = {L: args.threshold or round(max(v[0]) + 1.0, 3) for L, v in calib.items()}
    bthr = {L: args.bass_threshold or round(max(v[2]) + 1.0, 3) for L, v in calib.items()}
    jthr = {L: args.joint_threshold or round(max(v[3]) + 1.0, 3) for L, v in calib.items()}
    cp_tau = {L: float(min(v[1])) - 1e-9 for L, v in calib.items()}
    results["calibration"] = {
        str(L): {
            "n": len(v[0]),
            "ours_max": max(v[0]),
            "ours_tail": tail(v[0], thr[L]),
            "threshold": thr[L],
            "chromaprint_min_ber": min(v[1]),
            "bass_max": max(v[2]),
            "bass_tail": tail(v[2], bthr[L]),
            "bass_threshold": bthr[L],
            "joint_max": max(v[3]),
            "joint_tail": tail(v[3], jthr[L]),
            "joint_threshold": jthr[L],
            "raw_ours": v[0],
            "raw_chromaprint": v[1],
            "raw_bass": v[2],
            "raw_joint": v[3],
        }
        for L, v in calib.items()
    }
    index.close()
    index = AudioIndex(
        work / "index",
        threshold={float(L): t for L, t in thr.items()},
        bass_threshold={float(L): t for L, t in bthr.items()},
        joint_threshold={float(L): t for L, t in jthr.items()},
    )
    print_calibration(results["calibration"])

    # robustness
    durs = {p: duration(p) for p in c["refs"]}
    rng = random.Random(args.seed)
    speech = random.Random(7).sample(c["speech"], min(600, len(c["speech"])))
    voices = [] if args.null_only else [p for p in speech[:300] if duration(p) > 2.0]
    tracks = [] if args.null_only else mix_tracks(c["unrelated"], tmp)
    fam = families(rng, len(voices), len(tracks))
    chosen = [f for f in fam if not args.families or f in args.families.split(",")]
    if args.null_only:
        chosen = []
    rows: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    latencies: list[float] = []
    match_only: list[float] = []
    for family in chosen:
        for length in lengths:
            ok_ours = ok_cp = 0
            offs: list[float] = []
            raw: list[dict[str, Any]] = []
            for i in range(args.n):
                ref = rng.randrange(len(c["refs"]))
                path = c["refs"][ref]
                x0 = rng.uniform(1.0, durs[path] - 1.3 * length - 2)
                a = cut(path, x0, 1.2 * length + 1.0, tmp / "cut.f32")
                chain = [*fam[family](), ("excerpt", {"start": 0.3, "length": float(length)})]
                seed = args.seed * 1000003 + i * 101 + length
                attacked, truth = apply(a, chain, seed, voices=voices, tracks=tracks, backgrounds=voices)
                q = tmp / "q.wav"
                attacked.save(q)
                t0 = time.perf_counter()
                try:
                    ms = index.identify(q, top_k=1)
                except MediaError:
                    ms = []
                if length == 10:
                    latencies.append(time.perf_counter() - t0)
                    if family == "clean":
                        x = decode(q)
                        peaks = extract_peaks(x, index.params, query=True)
                        low = None
                        if index.bass is not None:
                            low = extract_peaks(bass_samples(x), index.bass.params, query=True)
                        t0 = time.perf_counter()
                        index.identify_peaks(peaks, top_k=1, bass=low)
                        match_only.append(time.perf_counter() - t0)
                if ms and ms[0].work_id == path.stem:
                    ok_ours += 1
                    d = ms[0].details
                    src = truth.source_time(d["query_start"])
                    if src is not None:
                        offs.append(abs(d["ref_start"] - (x0 + src)))
                r, ber, _ = chromaprint_match(fpcalc(q), cp)
                if r == ref and ber <= cp_tau[length]:
                    ok_cp += 1
                raw.append(
                    {
                        "truth": path.stem,
                        "ours": [ms[0].work_id, ms[0].score, ms[0].details.get("layer")] if ms else None,
                        "chromaprint": [c["refs"][r].stem if r >= 0 else None, ber],
                    }
                )
            rows[family][length] = {
                "ours": ok_ours / args.n,
                "chromaprint": ok_cp / args.n,
                "offset_max": max(offs) if offs else None,
                "offset_within_0.1": (sum(o <= 0.1 for o in offs) / len(offs)) if offs else None,
                "raw": raw,
            }
            print(
                f"  {family:20s} {length:2d}s ours {ok_ours}/{args.n} chromaprint {ok_cp}/{args.n} "
                f"offsets ≤0.1 s {sum(o <= 0.1 for o in offs)}/{len(offs)}",
                flush=True,
            )
    results["robustness"] = rows
    results["n"] = args.n

    # false positives on other unrelated audio
    pool = streams(c["unrelated"], c["unrelated_speech"], tmp)
    results["fpr_pool"] = pool_size(pool, lengths)
    print(
        f"false-positive pool: {results['fpr_pool']['hours']:.2f} h in {len(pool)} streams; windows "
        f"available {results['fpr_pool']['windows']} (half-overlapping), {args.null} drawn per length",
        flush=True,
    )
    null = {L: window_scores(index, cp, pool, L, args.null, args.seed + 2) for L in lengths}
    results["fpr"] = {
        str(L): {
            "n": len(v[0]),
            # a false positive when any rule clears its threshold
            "ours": sum(
                x >= thr[L] or b >= bthr[L] or j >= jthr[L] for x, b, j in zip(v[0], v[2], v[3], strict=True)
            )
            / len(v[0]),
            "main_only": sum(x >= thr[L] for x in v[0]) / len(v[0]),
            "bass_only": sum(b >= bthr[L] for b in v[2]) / len(v[0]),
            "joint_only": sum(j >= jthr[L] for j in v[3]) / len(v[0]),
            "joint_max": max(v[3]),
            "joint_threshold": jthr[L],
            "joint_tail": tail(v[3], jthr[L]),
            "raw_joint": v[3],
            "bass_max": max(v[2]),
            "bass_threshold": bthr[L],
            "bass_tail": tail(v[2], bthr[L]),
            "raw_bass": v[2],
            "ours_max": max(v[0]),
            "threshold": thr[L],
            "ours_tail": tail(v[0], thr[L]),
            "chromaprint": sum(b <= cp_tau[L] for b in v[1]) / len(v[1]),
            "raw_ours": v[0],
            "raw_chromaprint": v[1],
        }
        for L, v in null.items()
    }
    results["latency_10s"] = {
        "mean": float(np.mean(latencies)) if latencies else None,
        "p95": float(np.percentile(latencies, 95)) if latencies else None,
        "match_only_mean": float(np.mean(match_only)) if match_only else None,
    }
    print_tables(results, lengths, cp_tau)
    index.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


def mix_tracks(pool: list[Path], tmp: Path) -> list[Path]:
    """30-s pieces of unregistered music, as WAV, for the "under music" family."""
    out = []
    for i, p in enumerate(pool[:12]):
        dest = tmp / f"track{i}.wav"
        if not dest.exists() or dest.stat().st_size < 100_000:  # absent or left empty by a failed run
            d = duration(p)
            cut(p, min(20.0, d / 3), min(30.0, d * 2 / 3), tmp / "t.f32").save(dest)
        out.append(dest)
    return out


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


def print_registration(r: dict[str, Any]) -> None:
    print(
        f"registered {r['works']} works, {r['hours']:.2f} h in {r['seconds']:.1f} s wall, "
        f"{r['cpu_seconds']:.1f} s CPU"
    )
    print(
        "| system | registration, × real time (wall, 1 process) | per core (CPU incl. ffmpeg) "
        "| index size per hour |"
    )
    print("|---|---|---|---|")
    print(
        f"| ours | {r['x_realtime']:.0f}× | {r['x_realtime_per_core']:.0f}× "
        f"| {r['bytes_per_hour'] / 1e6:.2f} MB (bass layer {r['bass_bytes_per_hour'] / 1e6:.2f} MB) |"
    )
    cp_x, cp_mb = r["chromaprint_x_realtime"], r["chromaprint_bytes_per_hour"] / 1e6
    print(f"| Chromaprint (fpcalc) | {cp_x:.0f}× | – | {cp_mb:.3f} MB |")


def print_calibration(cal: dict[str, Any]) -> None:
    print(
        "calibration windows (fretsonfire songs, codec2 speech, hedgewars, nexuiz and planetblupi music, "
        "fillets-ng speech):"
    )
    for k, v in cal.items():
        print(
            f"  {k:>2s} s: n={v['n']} ours max {v['ours_max']} (threshold {v['threshold']}; "
            f"windows per score {v['ours_tail']}); bass layer max {v['bass_max']} (threshold "
            f"{v['bass_threshold']}; {v['bass_tail']}); both layers max {v['joint_max']} (threshold "
            f"{v['joint_threshold']}; {v['joint_tail']}); Chromaprint min BER {v['chromaprint_min_ber']:.3f}"
        )


def print_tables(results: dict[str, Any], lengths: list[int], tau: dict[int, float]) -> None:
    rows = results["robustness"]
    n = results["n"]
    head = " | ".join(f"{x} s ours | {x} s Chromaprint" for x in lengths)
    if rows:
        print(f"\ntop-1 accuracy, {n} queries per cell\n")
        print(f"| attack | {head} | offset ≤ 0.1 s (5 s, ours) |")
        print("|---" * (2 * len(lengths) + 2) + "|")
    for family, by_len in rows.items():
        cells = " | ".join(f"{by_len[x]['ours']:.0%} | {by_len[x]['chromaprint']:.0%}" for x in lengths)
        off = by_len.get(5, by_len[lengths[0]])["offset_within_0.1"]
        print(f"| {family} | {cells} | {'-' if off is None else f'{off:.0%}'} |")
    print(f"\nfalse positives on unregistered audio ({', '.join(FPR_POOL)})\n")
    print(
        "| query length | queries | ours FPR (any rule) | main max (threshold) | main windows per score "
        "| bass max (threshold) | both layers max (threshold) | Chromaprint FPR |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for k, v in results["fpr"].items():
        print(
            f"| {k} s | {v['n']} | {v['ours']:.4f} | {v['ours_max']} ({v['threshold']}) | {v['ours_tail']} | "
            f"{v['bass_max']} ({v['bass_threshold']}) | {v['joint_max']} ({v['joint_threshold']}) | "
            f"{v['chromaprint']:.4f} (BER ≤ {tau[int(k)]:.3f}) |"
        )
    lat = results["latency_10s"]
    if lat["mean"] is not None:
        print(
            f"\n10-s query latency (decode + match, {results['registration']['hours']:.1f} h index): "
            f"mean {lat['mean'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms; "
            f"match only {lat['match_only_mean'] * 1000:.0f} ms"
        )


def synthetic_tracks(
    peaks: list[Peaks], hours: float, params: Any, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray, int, Peaks]]:
    """Landmarks of ``hours`` of synthetic music: real peaks, re-pitched, re-timed and jittered.

    Each track is a real track's peaks shifted by up to ±6 semitones, stretched by 0.8–1.25
    and jittered (±0.5 semitone, ±1 frame per peak), so the hash values keep the real
    distribution of intervals and spans but form new combinations. Yields (hashes,
    anchor frames, frames, peaks) per track; the peaks are stored like a registered
    work's, so that candidates against the synthetic index are verified at full cost.
    """
    g = np.random.default_rng(seed)
    total = hours * 3600 / params.frame_seconds
    made = 0.0
    top = 12.0 * np.log2(params.fmax / params.fmin)
    while made < total:
        src = peaks[int(g.integers(len(peaks)))]
        scale = float(g.uniform(0.8, 1.25))
        t = src.t * scale + g.normal(0, 1.0, len(src))
        lf = src.lf + float(g.uniform(-6, 6)) + g.normal(0, 0.5, len(src))
        keep = (lf >= 0) & (lf < top)
        order = np.argsort(t[keep])
        p = Peaks(t[keep][order], lf[keep][order], src.strength[keep][order], int(src.frames * scale) + 2)
        h, at = hash_peaks(p, params)
        yield h, np.clip(np.rint(at), 0, None).astype(np.int64), p.frames, p
        made += p.frames


def fill_synthetic(layer: AudioIndex, sources: list[Peaks], hours: float, seed: int) -> int:
    """Write ``hours`` of synthetic tracks (:func:`synthetic_tracks`) into ``layer`` as one
    segment with their works and stored peaks; the number of landmarks."""
    p = layer.params
    parts: list[np.ndarray] = []
    works: list[tuple[Any, ...]] = []
    peak_rows: list[tuple[Any, ...]] = []
    base = 0
    for hashes, frames, n_frames, peaks in synthetic_tracks(sources, hours, p, seed):
        parts.append((hashes.astype(np.uint64) << np.uint64(32)) | (frames + base).astype(np.uint64))
        works.append((len(works) + 1, f"w{len(works)}", base, n_frames, len(hashes), b"", ""))
        peak_rows.append((len(works), *encode_peaks(peaks), peaks.frames))
        base += n_frames + 1024
    packed = np.concatenate(parts)
    del parts
    packed.sort()
    n = len(packed)
    name = "seg-synthetic"
    layer._write_segment(name, (packed >> np.uint64(32)).astype(np.uint32), packed.astype(np.uint32))
    del packed
    with layer._db:
        layer._db.execute("INSERT INTO segments (name, entries) VALUES (?, ?)", (name, n))
        layer._db.executemany(
            "INSERT INTO works (idx, work_id, base, frames, hashes, digest, added) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            works,
        )
        layer._db.executemany("INSERT INTO peaks (idx, t, lf, frames) VALUES (?, ?, ?, ?)", peak_rows)
        layer._set("next_base", str(base))
        layer._bump()
    return n


def sweep(index: AudioIndex, hours: list[float], refs: list[Path], work: Path) -> list[dict[str, Any]]:
    """Latency and chance scores of 10-s queries against synthetic indexes of ``hours`` each.

    The query is a real 10-s excerpt of a registered track, matched against a synthetic
    index (see :func:`synthetic_tracks`) that does not hold it, so its best score there is
    a chance score; five further unrelated excerpts give more chance scores. Both layers
    are filled (the same synthetic hours, the same work names) and both are matched, as
    in service.
    """
    p = index.params
    bp = index.bass.params if index.bass is not None else None
    sources, low_sources = [], []
    for r in refs[:20]:
        x = decode(r)
        sources.append(extract_peaks(x, p))
        if bp is not None:
            low_sources.append(extract_peaks(bass_samples(x), bp))
    queries: list[tuple[Peaks, Peaks | None]] = []
    for r in refs[20:26]:
        x = decode(r)[8000 * 30 : 8000 * 40]
        low = extract_peaks(bass_samples(x), bp, query=True) if bp is not None else None
        queries.append((extract_peaks(x, p, query=True), low))
    out = []
    print(
        "\n| synthetic index | landmarks (main + bass) | size on disk | per hour "
        "| 10-s query, match only: mean / max | best chance score (main, bass, both) |"
    )
    print("|---|---|---|---|---|---|")
    for h in hours:
        d = work / f"sweep-{h:g}"
        shutil.rmtree(d, ignore_errors=True)
        syn = AudioIndex(d)
        n = fill_synthetic(syn, sources, h, int(h * 1000))
        n_low = 0
        if syn.bass is not None and low_sources:
            n_low = fill_synthetic(syn.bass, low_sources, h, int(h * 1000) + 1)
        times = []
        for _ in range(2):  # page the index in
            syn.identify_peaks(queries[0][0], top_k=5, bass=queries[0][1])
        chance, chance_low, chance_both = [], [], []
        for q, low in queries * 2:
            t0 = time.perf_counter()
            syn.identify_peaks(q, top_k=5, bass=low)  # the stored (default) thresholds, as in service
            times.append(time.perf_counter() - t0)
        for q, low in queries:  # no threshold: the best chance score, whatever it is (slower)
            best = syn.best_scores(q, low)
            chance.append(best["main"])
            chance_low.append(best.get("bass", 0.0))
            chance_both.append(best.get("both", 0.0))
        size = sum(f.stat().st_size for f in d.glob("seg-*.npy")) + sum(
            f.stat().st_size for f in d.glob("bass/seg-*.npy")
        )
        row = {
            "hours": h,
            "landmarks": n,
            "bass_landmarks": n_low,
            "bytes": size,
            "mean": float(np.mean(times)),
            "max": float(np.max(times)),
            "chance_max": max(chance),
            "bass_chance_max": max(chance_low, default=0.0),
            "joint_chance_max": max(chance_both, default=0.0),
        }
        out.append(row)
        print(
            f"| {h:g} h | {n:,} + {n_low:,} | {size / 1e9:.2f} GB | {size / h / 1e6:.2f} MB | "
            f"{row['mean'] * 1000:.0f} / {row['max'] * 1000:.0f} ms | {row['chance_max']}, "
            f"{row['bass_chance_max']}, {row['joint_chance_max']} |",
            flush=True,
        )
        syn.close()
        shutil.rmtree(d, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
