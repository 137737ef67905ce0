"""Audio index segment merge: peak memory and time of the streaming merge, against an in-memory merge.

Builds a synthetic audio index of the given sizes in hours (landmarks of real peaks
re-pitched, re-timed and jittered: :func:`audio_robustness.synthetic_tracks`), split into
``--segments`` segments, removes ``--removed`` of the works, then merges it in a fresh
child process and reports the child's peak resident memory (``VmHWM``) and wall time:

* stream: :meth:`forensics.audio.index.AudioIndex.compact` (k-way merge in blocks,
  output written front to back; memory bounded by ``merge_chunk``);
* in-memory: the merge as it was before (concatenate everything, drop removed works,
  stable argsort, bucket directory, ``np.save``), for comparison — only at sizes up to
  ``--memory-max`` hours.

With ``--register N`` it measures the merge *policy* instead: ``N`` synthetic works
(random landmarks, ``--landmarks`` each) registered one by one with
:meth:`~forensics.audio.index.AudioIndex.add_fingerprint`, under the size-tiered policy
(:func:`forensics.audio.index.plan_merge`) and under the former one (every merge rewrites
all segments), reporting works per second, landmarks rewritten per registered landmark,
the most any landmark was rewritten, the largest merge and the most segments seen.

Run::

    .venv/bin/python bench/audio_merge.py --register 2000 --landmarks 1000   # ≈ 2 min
    .venv/bin/python bench/audio_merge.py --hours 100              # ≈ 3 min, 2 cores
    .venv/bin/python bench/audio_merge.py --hours 1000 --memory-max 0   # ≈ 20 min, 7 GB of disk

Media for the synthetic peaks come from ``~/.cache/rongxin/test-audio``
(``bench/audio_robustness.py --fetch``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from forensics.audio.index import AudioIndex, make_fingerprint, plan_merge
from forensics.audio.segments import Segment


class _MergeCounter:
    """Counts the entries each merge of an index reads and how often each work is rewritten
    (through the segment store's ``on_merge`` hook)."""

    def __init__(self, index: AudioIndex) -> None:
        self.index = index
        self.merged: list[int] = []
        self.rewrites: dict[int, int] = {}
        index.store.on_merge = self.record

    def record(self, segments: Sequence[Segment], blocks: Sequence[int]) -> None:
        self.merged.append(sum(len(s.keys) for s in segments))
        names = [s.name for s in segments]
        marks = ",".join("?" * len(names))
        for (idx,) in self.index.catalogue.query(f"SELECT idx FROM works WHERE segment IN ({marks})", names):
            self.rewrites[idx] = self.rewrites.get(idx, 0) + 1


def register(directory: Path, works: int, landmarks: int, policy: str, seed: int) -> dict[str, Any]:
    """Register ``works`` synthetic works one by one under ``policy`` ("tiered" or "full")."""
    rng = np.random.default_rng(seed)
    fps = [
        make_fingerprint(
            rng.integers(0, 1 << 32, landmarks, dtype=np.uint64), rng.integers(0, 1800, landmarks), 30.0
        )
        for _ in range(works)
    ]
    shutil.rmtree(directory, ignore_errors=True)
    index = AudioIndex(directory)
    counter = _MergeCounter(index)
    if policy == "full":  # the former policy: whenever a merge is due, rewrite every segment
        index.storage.merge_policy = lambda sizes, k, f: sorted(sizes) if plan_merge(sizes, k, f) else []
    most, slowest = 0, 0.0
    t0 = time.perf_counter()
    for i, fp in enumerate(fps):
        t1 = time.perf_counter()
        index.add_fingerprint(f"w{i}", fp)
        slowest = max(slowest, time.perf_counter() - t1)
        most = max(most, len(index.catalogue.segment_sizes()))
    seconds = time.perf_counter() - t0
    total = works * landmarks
    index.close()
    shutil.rmtree(directory, ignore_errors=True)
    return {
        "policy": policy,
        "works": works,
        "landmarks": total,
        "seconds": seconds,
        "works_per_s": works / seconds,
        "rewritten_per_landmark": sum(counter.merged) / total,
        "most_rewrites": max(counter.rewrites.values(), default=0),
        "merges": len(counter.merged),
        "largest_merge": max(counter.merged, default=0),
        "slowest_add_s": slowest,
        "most_segments": most,
    }


def policy_table(work: Path, works: int, landmarks: int) -> list[dict[str, Any]]:
    print(
        "\n| policy | works | landmarks | wall time | works/s | rewritten per landmark "
        "| most rewrites of a landmark | merges | largest merge | slowest registration | most segments |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for policy in ("tiered", "full"):
        r = register(work / f"register-{policy}", works, landmarks, policy, seed=works)
        rows.append(r)
        label = "size-tiered (fan-in 4)" if policy == "tiered" else "full rewrite (before)"
        print(
            f"| {label} | {works:,} | {r['landmarks']:,} | {r['seconds']:.1f} s | {r['works_per_s']:.1f} "
            f"| {r['rewritten_per_landmark']:.2f} | {r['most_rewrites']} | {r['merges']} "
            f"| {r['largest_merge']:,} | {r['slowest_add_s']:.2f} s | {r['most_segments']} |",
            flush=True,
        )
    return rows


def build(directory: Path, hours: float, segments: int, removed: float, seed: int) -> dict[str, Any]:
    """A synthetic index of ``hours`` in ``segments`` bulk segments; ``removed`` of the works removed."""
    from audio_robustness import corpus, synthetic_tracks

    from forensics.audio.decode import decode
    from forensics.audio.landmarks import extract_peaks

    shutil.rmtree(directory, ignore_errors=True)
    index = AudioIndex(directory, max_segments=segments + 1)
    p = index.params
    sources = [extract_peaks(decode(r), p) for r in corpus()["refs"][:20]]
    rng = np.random.default_rng(seed)
    base = 0
    n_works = 0
    tracks = synthetic_tracks(sources, hours, p, seed)
    per_segment = hours * 3600 / p.frame_seconds / segments
    done = False
    while not done:
        parts: list[np.ndarray] = []
        rows = []
        frames_here = 0
        for hashes, frames, n_frames, _peaks in tracks:
            parts.append((hashes.astype(np.uint64) << np.uint64(32)) | (frames + base).astype(np.uint64))
            rows.append((f"w{n_works}", base, n_frames, len(hashes), b"", "", int(rng.random() < removed)))
            base += n_frames + 1024
            n_works += 1
            frames_here += n_frames
            if frames_here >= per_segment:
                break
        else:
            done = True
        if not parts:
            break
        packed = np.concatenate(parts)
        del parts
        packed.sort()
        name = index.store.new_name()
        index.store.write(name, (packed >> np.uint64(32)).astype(np.uint32), packed.astype(np.uint32))
        with index.catalogue.transaction() as db:  # bulk rows, as no registration writes them
            db.execute("INSERT INTO segments (name, entries) VALUES (?, ?)", (name, len(packed)))
            db.executemany(
                "INSERT INTO works (work_id, base, frames, hashes, digest, added, removed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            index.catalogue.set("next_base", str(base))
            index.catalogue.bump()
        del packed
    st = index.stats()
    index.close()
    return {"hours": hours, "works": n_works, "segments": st["segments"], "landmarks": st["landmarks"]}


def _status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since exec; ``ru_maxrss`` would include the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(directory: Path, mode: str, chunk: int) -> None:
    """Merge ``directory`` once in this process; print time and memory as JSON."""
    index = AudioIndex(directory, merge_chunk=chunk)
    index.refresh()
    before = _status_mb("VmRSS")
    t0 = time.perf_counter()
    if mode == "stream":
        stats: dict[str, Any] = index.compact()
    else:  # the former merge: everything in memory (the tests' reference implementation)
        from tests.forensics.audio.test_index_merge import in_memory_merge

        with index.catalogue.writer():
            out = directory / "in-memory"
            out.mkdir(exist_ok=True)
            merged = in_memory_merge(index)
            for part, arr in zip(("keys", "vals", "dir"), merged, strict=True):
                np.save(out / f"{part}.npy", arr)
            stats = {"entries_out": len(merged[0])}
            del merged
            shutil.rmtree(out)
    seconds = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    index.close()
    print(
        json.dumps({"mode": mode, "seconds": seconds, "rss_before_mb": before, "peak_rss_mb": peak, **stats})
    )


def run_child(directory: Path, mode: str, chunk: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(directory), "--mode", mode, "--chunk", str(chunk)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", default="100", help="comma-separated synthetic index sizes")
    ap.add_argument("--segments", type=int, default=9, help="segments to merge (max_segments + 1)")
    ap.add_argument("--removed", type=float, default=0.1, help="fraction of works removed before the merge")
    ap.add_argument("--chunk", type=int, default=1 << 20, help="merge_chunk: entries held at once")
    ap.add_argument("--memory-max", type=float, default=100.0, help="largest size merged in memory too (h)")
    ap.add_argument("--register", type=int, default=0, help="measure the merge policy: works registered")
    ap.add_argument("--landmarks", type=int, default=1000, help="landmarks per registered work")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="stream", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.mode, args.chunk)
        return
    from audio_robustness import machine

    work = args.workdir or Path(tempfile.mkdtemp(prefix="rx-audio-merge-"))
    print(machine(), flush=True)
    if args.register:
        rows = policy_table(work, args.register, args.landmarks)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    print(
        "\n| synthetic index | landmarks | segments | merge | wall time | peak RSS "
        "| RSS before the merge | entries kept |"
    )
    print("|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for h in (float(x) for x in args.hours.split(",")):
        d = work / f"merge-{h:g}"
        info = build(d, h, args.segments, args.removed, seed=int(h * 7) + 1)
        modes = (["in-memory"] if h <= args.memory_max else []) + ["stream"]
        for mode in modes:
            r = {**info, **run_child(d, mode, args.chunk)}
            rows.append(r)
            label = f"stream (chunk {args.chunk:,})" if mode == "stream" else "in memory (before)"
            print(
                f"| {h:g} h | {info['landmarks']:,} | {info['segments']} | {label} "
                f"| {r['seconds']:.2f} s | {r['peak_rss_mb']:.0f} MB "
                f"| {r['rss_before_mb']:.0f} MB | {r['entries_out']:,} |",
                flush=True,
            )
        shutil.rmtree(d, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
