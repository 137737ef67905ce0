"""The audio fingerprint's front end: ours (numpy/scipy) against librosa, on the same audio.

Both sides get the same decoded audio (the smoke corpus's music, decoded by ffmpeg to mono
8 kHz, as the index decodes it) and the same analysis: 1,024-sample Hann frames every 128
samples, log power in the bins of 250–3,500 Hz plus the picker's margin.

* **STFT** — ours: :meth:`forensics.audio.landmarks.PeakExtractor.feed` (strided frames,
  ``scipy.fft.rfft``, log power); librosa: ``librosa.stft`` then ``librosa.power_to_db``
  over the same bins.
* **peak picking** — ours: :meth:`PeakExtractor.finish` (local maxima over ±7 frames and
  ±12 bins that stand 6 dB above the mean of ±30 bins, silent frames skipped, the loudest
  per band and second kept, parabolic refinement); librosa: ``librosa.util.peak_pick``
  twice on the same spectrogram — along frequency (maximum over ±12 bins, 6 dB above the
  mean of ±30 bins) and along time (maximum over ±7 frames) — and the two masks ANDed.
  librosa's side does less work (no silence gate, no density cap, no refinement).
* **front end** — :func:`forensics.audio.landmarks.extract_peaks` as shipped (peaks picked
  in one-minute chunks) against librosa's STFT and both peak picks. Our peak-picking figure
  is the front end minus our STFT (picking a whole file in one chunk is slower than the
  shipped chunking, so it is not timed on its own).

librosa's kernels are compiled by numba (and the machine code cached on disk): the import
and the first calls are timed on their own in a fresh interpreter, once with an empty numba
cache and once with the cache that run filled; every figure, ours and librosa's, is taken
after a warm-up call on a minute of the same audio. Each figure is the median of
``--repeat`` runs (the first run on a new signal is often slower: fresh memory), in seconds
per minute of audio.

Run::

    .venv/bin/python bench/audio_frontend.py            # every music track of the smoke corpus
    .venv/bin/python bench/audio_frontend.py --quick    # two tracks
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from datasets.manifest import Manifest
from datasets.smoke import ensure
from forensics.audio.decode import decode
from forensics.audio.landmarks import LandmarkParams, PeakExtractor, analysis_bins, extract_peaks

Audio = npt.NDArray[np.float32]


def music(limit: int | None) -> list[tuple[str, Audio]]:
    """The smoke corpus's music originals, decoded to mono at the fingerprint's rate."""
    root = ensure()
    entries = [e for e in Manifest.open(root).entries if e.collection == "music" and e.role == "original"]
    entries.sort(key=lambda e: e.id)
    rate = LandmarkParams().sample_rate
    return [(e.id, decode(root / e.path, sample_rate=rate)) for e in entries[:limit]]


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ours_stft(x: Audio) -> PeakExtractor:
    ex = PeakExtractor(chunk_seconds=1e9)  # one chunk: feed() only computes the spectrogram
    ex.feed(x)
    return ex


def ours_stages(x: Audio, repeat: int) -> tuple[float, float, int]:
    """Seconds of our STFT alone and of the whole front end as shipped (medians of ``repeat``),
    and the peaks kept."""
    stft = median_seconds(lambda: ours_stft(x), repeat)
    whole = median_seconds(lambda: extract_peaks(x), repeat)
    return stft, whole, len(extract_peaks(x))


def librosa_stft(x: Audio) -> npt.NDArray[np.float32]:
    import librosa

    p = LandmarkParams()
    lo, hi = analysis_bins(p)
    spec = librosa.stft(x, n_fft=p.n_fft, hop_length=p.hop, window="hann")[lo:hi]
    db: npt.NDArray[np.float32] = librosa.power_to_db(np.abs(spec) ** 2, ref=1.0, amin=1e-12, top_db=None)
    return db


def librosa_peaks(db: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    import librosa

    p = LandmarkParams()
    r, w = p.peak_freq_radius, p.whiten_bins // 2
    in_freq = librosa.util.peak_pick(
        db,
        pre_max=r,
        post_max=r + 1,
        pre_avg=w,
        post_avg=w + 1,
        delta=p.min_prominence_db,
        wait=0,
        sparse=False,
        axis=0,
    )
    t = p.peak_time_radius
    in_time = librosa.util.peak_pick(
        db, pre_max=t, post_max=t + 1, pre_avg=0, post_avg=1, delta=0.0, wait=0, sparse=False, axis=1
    )
    both: npt.NDArray[np.bool_] = in_freq & in_time
    return both


def librosa_stages(x: Audio, repeat: int) -> tuple[float, float, int]:
    stft_times, pick_times, n = [], [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        db = librosa_stft(x)
        t1 = time.perf_counter()
        n = int(librosa_peaks(db).sum())
        t2 = time.perf_counter()
        stft_times.append(t1 - t0)
        pick_times.append(t2 - t1)
    return statistics.median(stft_times), statistics.median(pick_times), n


def librosa_start() -> list[tuple[float, float, float]]:
    """Seconds, in a fresh interpreter, to import librosa with the functions used here (its
    submodules load lazily), then of the first ``stft`` and the first ``peak_pick`` call:
    once with an empty numba cache (numba compiles), then again with the cache it filled."""
    code = (
        "import time, numpy as np\n"
        "t0 = time.perf_counter()\n"
        "import librosa\n"
        "librosa.stft, librosa.power_to_db, librosa.util.peak_pick\n"
        "t1 = time.perf_counter()\n"
        "librosa.stft(np.zeros(8000, np.float32), n_fft=1024, hop_length=128)\n"
        "t2 = time.perf_counter()\n"
        "librosa.util.peak_pick(np.zeros((8, 64), np.float32), pre_max=1, post_max=2, pre_avg=1,"
        " post_avg=2, delta=0.0, wait=0, sparse=False, axis=1)\n"
        "t3 = time.perf_counter()\n"
        "print(t1 - t0, t2 - t1, t3 - t2)\n"
    )
    runs = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
            ).stdout
            imp, stft, pick = (float(v) for v in out.split())
            runs.append((imp, stft, pick))
    return runs


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f}; Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="two tracks only")
    ap.add_argument("--tracks", type=int, default=None, help="at most this many tracks")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is printed)")
    args = ap.parse_args()
    if args.quick:
        args.tracks = args.tracks or 2

    (cold, warm) = librosa_start()
    tracks = music(args.tracks)
    minutes = sum(len(x) for _, x in tracks) / LandmarkParams().sample_rate / 60
    for warm_up in (lambda x: librosa_peaks(librosa_stft(x)), ours_stft, extract_peaks):
        warm_up(tracks[0][1][: 60 * LandmarkParams().sample_rate])  # one minute, before any timing

    totals = dict.fromkeys(("ours_stft", "ours_all", "lr_stft", "lr_pick"), 0.0)
    ours_n = lr_n = 0
    for _, x in tracks:
        s, whole, n = ours_stages(x, args.repeat)
        totals["ours_stft"] += s
        totals["ours_all"] += whole
        ours_n += n
        s, p, n = librosa_stages(x, args.repeat)
        totals["lr_stft"] += s
        totals["lr_pick"] += p
        lr_n += n

    per_min = {k: v / minutes for k, v in totals.items()}
    print(f"machine: {machine()}; numpy {np.__version__}, librosa {version('librosa')}")
    print(
        f"audio: {len(tracks)} music tracks of the smoke corpus, {minutes:.1f} min at 8 kHz mono; "
        f"median of {args.repeat} run(s) per track"
    )
    for label, (imp, first_stft, first_pick) in (("empty numba cache", cold), ("numba cache filled", warm)):
        print(
            f"librosa start, fresh interpreter, {label}: import {imp:.2f} s, "
            f"first stft {first_stft:.2f} s, first peak_pick {first_pick:.2f} s"
        )
    print()
    print("| stage | ours (numpy/scipy) s/min | librosa s/min | librosa ÷ ours |")
    print("|---|---:|---:|---:|")
    rows = (
        ("STFT, log power (1,024 / 128, Hann)", per_min["ours_stft"], per_min["lr_stft"]),
        (
            "peak picking (ours: front end minus STFT)",
            per_min["ours_all"] - per_min["ours_stft"],
            per_min["lr_pick"],
        ),
        ("front end: STFT + peak picking", per_min["ours_all"], per_min["lr_stft"] + per_min["lr_pick"]),
    )
    for name, ours, theirs in rows:
        print(f"| {name} | {ours:.4f} | {theirs:.4f} | {theirs / ours:.2f}× |")
    print()
    print(
        f"peaks: ours {ours_n / minutes:.0f} per minute kept (density cap); librosa "
        f"{lr_n / minutes:.0f} per minute of candidates (no silence gate, no cap)"
    )


if __name__ == "__main__":
    main()
