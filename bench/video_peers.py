"""Peers of ``bench/video_robustness.py``: TMK+PDQF, ``videohash`` and ffmpeg's MPEG-7 signature.

Each peer registers the benchmark's works once per run (:meth:`prepare`) and then ranks
the works a query matches **by the peer's own decision rule**, best first
(:meth:`rank`); an empty list means the peer reports nothing. A peer that cannot run here
(a package missing or broken, ffmpeg without the filter) keeps the reason in
:attr:`error`, and the benchmark prints it instead of figures.

- :class:`TmkPeer` — TMK+PDQF through ``perception`` (``TMKL1`` and ``TMKL2`` over
  ``PDQHashF`` frame features at 15 fps), with ThreatExchange's two-level rule: level-1
  cosine ≥ 0.7 and level-2 score ≥ 0.7; ranked by the level-2 score.
- :class:`VideohashPeer` — ``videohash``'s one 64-bit hash per video (a collage of frames
  at 1 fps), similar when at most 10 bits differ (its ``is_similar``: 15 % of 64 bits).
- :class:`SignaturePeer` — ffmpeg's ``signature`` filter in detection mode: the query
  against each work as a pair of inputs, ranked by the frames ffmpeg reports matching.
- :class:`VpdqPeer` — Meta's ``vpdq`` bindings when installed, with the vPDQ frame rule.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: one ranked answer: (work id, the peer's score), best first
Ranking = list[tuple[str, float]]


def _clip_args(span: tuple[float, float] | None) -> list[str]:
    """ffmpeg input options selecting ``span`` (start, length) of a file; none for the whole."""
    return [] if span is None else ["-ss", f"{span[0]:.3f}", "-t", f"{span[1]:.3f}"]


def _cut(query: Path, span: tuple[float, float], out: Path) -> Path:
    """``span`` (start, length) of ``query`` as a file of its own (picture only, near-lossless)."""
    args = ["-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", str(out)]
    subprocess.run(["ffmpeg", "-v", "error", *_clip_args(span), "-i", str(query), *args], check=True)
    return out


def _on_file(
    query: Path, span: tuple[float, float] | None, scratch: Path, answer: Callable[[Path], Ranking]
) -> Ranking:
    """``answer`` for the whole file, or for ``span`` of it cut to a file of its own in ``scratch``."""
    if span is None:
        return answer(query)
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        return answer(_cut(query, span, Path(d) / "window.mp4"))


class Peer:
    """A peer matcher: :meth:`prepare` the works, then :meth:`rank` queries."""

    name = "peer"

    def __init__(self) -> None:
        self.error: str | None = None
        self.seconds: list[float] = []  # wall time of each ranked query

    def prepare(self, works: dict[str, Path]) -> None:
        """Compute and keep the works' signatures (once per run)."""
        raise NotImplementedError

    def _rank(self, query: Path, span: tuple[float, float] | None) -> Ranking:
        raise NotImplementedError

    def rank_windows(self, video: Path, length: float, hop: float, total: float) -> list[Ranking]:
        """The answers for windows of ``length`` s every ``hop`` s of a ``total``-s video (untimed)."""
        starts = np.arange(0.0, total - length + 1e-9, hop)
        return [self.rank(video, (float(s), length), timed=False) for s in starts]

    def rank(self, query: Path, span: tuple[float, float] | None = None, timed: bool = True) -> Ranking:
        """The works ``query`` (or its ``span``: start, length in seconds) matches, best first."""
        t = time.time()
        out = self._rank(query, span)
        if timed:
            self.seconds.append(time.time() - t)
        return out


# -- TMK+PDQF (perception) -------------------------------------------------------------------------


class TmkPeer(Peer):
    """TMK+PDQF through ``perception``'s ``TMKL1``/``TMKL2`` hashers and ``PDQHashF`` frames.

    Frames are decoded once by ffmpeg at the hashers' 15 fps, scaled to 128×128 (PDQ
    reduces every picture to 64×64 luma; hashing a 128-pixel frame instead of the full one
    changes its float hash little and is seven times faster), hashed with ``PDQHashF`` and
    handed to both hashers' ``hash_from_final_state`` with their timestamps in seconds, as
    ``VideoHasher.compute`` does after reading the file itself.
    """

    name = "TMK"
    level1 = 0.7  # ThreatExchange's defaults validated for TMK+PDQF
    level2 = 0.7
    fps = 15
    side = 128

    def __init__(self) -> None:
        super().__init__()
        self.refs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        try:
            from perception.hashers.image.pdq import PDQHashF
            from perception.hashers.video.tmk import TMKL1, TMKL2

            self.frame_hasher = PDQHashF()
            self.l1 = TMKL1(frame_hasher=self.frame_hasher, frames_per_second=self.fps)
            self.l2 = TMKL2(frame_hasher=self.frame_hasher, frames_per_second=self.fps)
            self.frame_hasher.compute(np.zeros((64, 64, 3), np.uint8), hash_format="vector")
        except Exception as e:  # any failure of the package is the peer's result
            self.error = f"perception: {type(e).__name__}: {e}"

    def features(self, path: Path, span: tuple[float, float] | None = None) -> np.ndarray:
        """PDQF vectors (n, 256) of the frames at 15 fps."""
        side = self.side
        proc = subprocess.run(
            ["ffmpeg", "-v", "error", *_clip_args(span), "-i", str(path), "-map", "0:v:0",
             "-vf", f"fps={self.fps},scale={side}:{side}", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
            capture_output=True, check=False,
        )  # fmt: skip
        raw = np.frombuffer(proc.stdout, np.uint8)
        n = len(raw) // (side * side * 3)
        frames = raw[: n * side * side * 3].reshape(n, side, side, 3)
        return np.array(
            [self.frame_hasher.compute(np.ascontiguousarray(f), hash_format="vector") for f in frames],
            np.float32,
        ).reshape(-1, 256)

    def hashes(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(level-1, level-2) vectors of a sequence of frame features, or ``None`` if it is empty."""
        if len(feats) == 0:
            return None
        stamps = [i / self.fps for i in range(len(feats))]
        state1 = {"sum": feats.sum(axis=0), "frame_count": len(feats)}
        with np.errstate(invalid="ignore", divide="ignore"):  # flat frames: NaN, which no rule passes
            v1 = self.l1.hash_from_final_state(state1)  # type: ignore[no-untyped-call]
            v2 = self.l2.hash_from_final_state({"features": list(feats), "timestamps": stamps})  # type: ignore[no-untyped-call]
        return np.asarray(v1, np.float32), np.asarray(v2, np.float32)

    def prepare(self, works: dict[str, Path]) -> None:
        for name, path in works.items():
            h = self.hashes(self.features(path))
            if h is not None:
                self.refs[name] = h

    def score(self, query: tuple[np.ndarray, np.ndarray], work: str) -> tuple[float, float]:
        """(level-1 cosine, level-2 score) of a query against a registered work (NaN for flat input)."""
        r1, r2 = self.refs[work]
        s1 = 1.0 - float(self.l1.compute_distance(query[0], r1))
        if not s1 >= self.level1:
            return s1, float("nan")  # the rule prunes before level 2
        s2 = 1.0 - float(np.asarray(self.l2.compute_distance(query[1], r2)).ravel()[0])
        return s1, s2

    def rank_hashes(self, query: tuple[np.ndarray, np.ndarray] | None) -> Ranking:
        """Works passing both levels for the query's hashes, best level-2 score first."""
        if query is None:
            return []
        out = []
        for work in self.refs:
            s1, s2 = self.score(query, work)
            if s1 >= self.level1 and s2 >= self.level2:  # NaN (flat frames) never passes
                out.append((work, s2))
        return sorted(out, key=lambda x: -x[1])

    def _rank(self, query: Path, span: tuple[float, float] | None) -> Ranking:
        return self.rank_hashes(self.hashes(self.features(query, span)))

    def rank_windows(self, video: Path, length: float, hop: float, total: float) -> list[Ranking]:
        """As :meth:`Peer.rank_windows`, the video's frames hashed once and sliced per window."""
        feats = self.features(video)
        n, step = round(length * self.fps), round(hop * self.fps)
        return [self.rank_hashes(self.hashes(feats[s : s + n])) for s in range(0, len(feats) - n + 1, step)]


# -- videohash -------------------------------------------------------------------------------------


class VideohashPeer(Peer):
    """``videohash``'s 64-bit hash per video; a work matches within ``ceil(15 % × 64)`` = 10 bits.

    ``videohash`` 3.0.1 (2022) calls ``PIL.Image.ANTIALIAS``, removed in Pillow 10; the
    alias is restored (``LANCZOS``, which it always named) in this process before import.
    Given a local path it runs the system ffmpeg and downloads nothing (``yt-dlp`` is used
    only for URLs).
    """

    name = "videohash"

    def __init__(self, scratch: Path) -> None:
        super().__init__()
        self.scratch = scratch
        self.refs: dict[str, int] = {}
        self.max_bits = 10
        try:
            import PIL.Image

            if not hasattr(PIL.Image, "ANTIALIAS"):
                PIL.Image.ANTIALIAS = PIL.Image.Resampling.LANCZOS  # type: ignore[attr-defined]
            from videohash import VideoHash  # type: ignore[import-untyped]

            self._cls = VideoHash
            self.max_bits = math.ceil(15 / 100 * 64)
        except Exception as e:  # as above
            self.error = f"videohash: {type(e).__name__}: {e}"

    def hash(self, path: Path) -> int:
        """The 64-bit hash of a video file (its own working files removed afterwards)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        store = Path(tempfile.mkdtemp(prefix="vh-", dir=self.scratch))
        try:
            return int(self._cls(path=str(path), storage_path=f"{store}/").hash_hex, 16)
        finally:
            shutil.rmtree(store, ignore_errors=True)

    def prepare(self, works: dict[str, Path]) -> None:
        for name, path in works.items():
            self.refs[name] = self.hash(path)

    def rank_hash(self, h: int) -> Ranking:
        """Works within :attr:`max_bits` of hash ``h``, nearest first (score = 64 − distance)."""
        dist = sorted((bin(h ^ r).count("1"), w) for w, r in self.refs.items())
        return [(w, 64.0 - d) for d, w in dist if d <= self.max_bits]

    def _rank(self, query: Path, span: tuple[float, float] | None) -> Ranking:
        return _on_file(query, span, self.scratch, lambda f: self.rank_hash(self.hash(f)))


# -- official vPDQ bindings -------------------------------------------------------------------------


class VpdqPeer(Peer):
    """Meta's ``vpdq`` bindings (0.2.5, built from source here): ``computeHash`` at one frame a
    second, full frames, one thread; frames of quality < 50 dropped and repeated hashes kept
    once, as ThreatExchange's matcher does; then the same rule as the script's vPDQ-style
    peer: a query frame matches a work when one of its frames is within 31 bits, the work
    when at least ``pct`` % of the query's frames match. Only the hashing differs (vPDQ's own
    decoder and PDQ of the full frame instead of ffmpeg-scaled 256×256 frames).
    """

    name = "vpdq-meta"

    def __init__(self, scratch: Path, pct: float = 50.0) -> None:
        super().__init__()
        self.scratch = scratch
        self.pct = pct
        self.refs: dict[str, np.ndarray] = {}
        try:
            import vpdq  # type: ignore[import-not-found]

            self._vpdq = vpdq
        except Exception as e:  # not installed: it needs libav* headers and a compiler to build
            self.error = f"vpdq: {type(e).__name__}: {e}"

    def hashes(self, path: Path) -> np.ndarray:
        """Distinct PDQ hashes (n, 32 bytes) of the frames of quality ≥ 50, one a second."""
        feats = self._vpdq.computeHash(str(path), seconds_per_hash=1.0, thread_count=1)
        rows = {bytes.fromhex(f.hex) for f in feats if f.quality >= 50}
        return np.array([np.frombuffer(r, np.uint8) for r in sorted(rows)], np.uint8).reshape(-1, 32)

    def prepare(self, works: dict[str, Path]) -> None:
        for name, path in works.items():
            self.refs[name] = self.hashes(path)

    def rank_hashes(self, query: np.ndarray) -> Ranking:
        """Works whose frames match ≥ ``pct`` % of the query's hashes, largest share first."""
        out = []
        for work, ref in self.refs.items():
            if len(query) and len(ref):
                d = np.unpackbits(np.bitwise_xor(query[:, None, :], ref[None, :, :]), axis=2).sum(axis=2)
                share = 100.0 * float((d.min(axis=1) <= 31).mean())
                if share >= self.pct:
                    out.append((work, share))
        return sorted(out, key=lambda x: -x[1])

    def _rank(self, query: Path, span: tuple[float, float] | None) -> Ranking:
        return _on_file(query, span, self.scratch, lambda f: self.rank_hashes(self.hashes(f)))


# -- ffmpeg's MPEG-7 signature filter --------------------------------------------------------------


@dataclass(frozen=True)
class SignatureReport:
    """What one ``signature`` filter instance logged about its pair of inputs.

    ``matched`` is false for "no matching"; otherwise the first input's and the second
    input's matching positions (seconds), the frames matching, and whether ffmpeg called
    it a whole-video match.
    """

    matched: bool
    first_at: float = 0.0
    second_at: float = 0.0
    frames: int = 0
    whole: bool = False


_PREFIX = r"\[(?P<inst>[^\]\s]+) @ (?:0x)?[0-9a-fA-F]+\]\s*"
_MATCH = re.compile(
    _PREFIX + r"matching of video (?P<a>\d+) at (?P<ta>[-+0-9.eE]+|nan|inf) and (?P<b>\d+) at "
    r"(?P<tb>[-+0-9.eE]+|nan|inf), (?P<n>\d+) frames matching\s*$"
)
_WHOLE = re.compile(_PREFIX + r"whole video matching\s*$")
_NONE = re.compile(_PREFIX + r"no matching of video (?P<a>\d+) and (?P<b>\d+)\s*$")


def parse_signature_log(text: str) -> dict[str, SignatureReport]:
    """The report of each ``signature`` filter instance (by instance name) in ffmpeg's log.

    Only the pair (video 0, video 1) of each instance is read — the benchmark gives each
    instance two inputs, query first. Lines of other filters, progress output, unknown
    lines, non-finite or negative times and "whole video matching" without a match before
    it are ignored; an instance that logged both a match and "no matching" keeps the match
    only if the match came last. Lines from several instances may interleave.
    """
    out: dict[str, SignatureReport] = {}
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if (m := _MATCH.search(line)) is not None:
            if (m["a"], m["b"]) != ("0", "1"):
                continue
            try:
                ta, tb = float(m["ta"]), float(m["tb"])
            except ValueError:
                continue
            if not (math.isfinite(ta) and math.isfinite(tb)) or ta < 0 or tb < 0:
                continue
            out[m["inst"]] = SignatureReport(True, ta, tb, int(m["n"]))
        elif (m := _WHOLE.search(line)) is not None:
            prev = out.get(m["inst"])
            if prev is not None and prev.matched:
                out[m["inst"]] = SignatureReport(True, prev.first_at, prev.second_at, prev.frames, True)
        elif (m := _NONE.search(line)) is not None and (m["a"], m["b"]) == ("0", "1"):
            out[m["inst"]] = SignatureReport(False)
    return out


class SignaturePeer(Peer):
    """ffmpeg's ``signature`` filter (MPEG-7 video signature) with its own detection.

    Works are decoded once per run to raw 160×90 frames at their own frame rate (the
    descriptor averages a fixed 32×32 grid of the frame, so the reduced size changes
    little and keeps a query's cost at a second or so). One ffmpeg process per query:
    the query, scaled to the same size, is split to one ``signature@wK=nb_inputs=2:
    detectmode=full`` instance per work (query first), so each work gets ffmpeg's own
    verdict and no work is compared with another. The default thresholds of the filter
    decide; works it reports are ranked by frames matching.
    """

    name = "signature"
    size = (160, 90)

    def __init__(self, scratch: Path, ffmpeg: str = "ffmpeg") -> None:
        super().__init__()
        self.scratch = scratch
        self.ffmpeg = ffmpeg
        self.refs: dict[str, Path] = {}
        self.failures: list[str] = []
        try:
            filters = subprocess.run([ffmpeg, "-hide_banner", "-filters"], capture_output=True, text=True,
                                     check=True, timeout=30).stdout  # fmt: skip
            if not re.search(r"^\s*\S*\s+signature\s", filters, re.M):
                self.error = "ffmpeg has no signature filter"
        except (OSError, subprocess.SubprocessError) as e:
            self.error = f"ffmpeg: {type(e).__name__}: {e}"

    def prepare(self, works: dict[str, Path]) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        w, h = self.size
        for k, (name, path) in enumerate(works.items()):
            out = self.scratch / f"sig-{k:03d}.nut"
            subprocess.run([self.ffmpeg, "-v", "error", "-y", "-i", str(path), "-map", "0:v:0", "-an",
                            "-vf", f"scale={w}:{h},format=yuv420p", "-c:v", "rawvideo", str(out)],
                           check=True)  # fmt: skip
            self.refs[name] = out

    def command(self, query: Path, span: tuple[float, float] | None = None) -> list[str]:
        """The ffmpeg command comparing ``query`` with every work (instance ``wK`` ↔ the K-th work)."""
        w, h = self.size
        n = len(self.refs)
        args = [self.ffmpeg, "-hide_banner", "-nostats", "-nostdin", "-v", "info", *_clip_args(span),
                "-i", str(query)]  # fmt: skip
        for ref in self.refs.values():
            args += ["-i", str(ref)]
        split = "".join(f"[q{k}]" for k in range(n))
        graph = (
            [f"[0:v]scale={w}:{h},format=yuv420p,split={n}{split}"]
            if n > 1
            else [f"[0:v]scale={w}:{h},format=yuv420p[q0]"]
        )
        graph += [f"[q{k}][{k + 1}:v]signature@w{k}=nb_inputs=2:detectmode=full[o{k}]" for k in range(n)]
        args += ["-filter_complex", ";".join(graph)]
        for k in range(n):
            args += ["-map", f"[o{k}]"]
        return [*args, "-f", "null", "-"]

    def ranking(self, reports: dict[str, SignatureReport]) -> Ranking:
        """Works reported matching, most frames first (instance ``wK`` is the K-th work)."""
        names = list(self.refs)
        out = []
        for inst, rep in reports.items():
            m = re.fullmatch(r"signature@w(\d+)", inst)
            if m is None or not rep.matched or int(m[1]) >= len(names):
                continue
            out.append((names[int(m[1])], float(rep.frames)))
        return sorted(out, key=lambda x: -x[1])

    def _rank(self, query: Path, span: tuple[float, float] | None) -> Ranking:
        if not self.refs:
            return []
        proc = subprocess.run(self.command(query, span), capture_output=True, text=True, errors="replace",
                              check=False, timeout=600)  # fmt: skip
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
            self.failures.append(f"{query.name}: ffmpeg exit {proc.returncode}: {tail[0][:200]}")
        return self.ranking(parse_signature_log(proc.stderr))


def detected(ranking: Ranking, truth: list[str]) -> bool:
    """The benchmark's rule for every matcher: each true work among the first ``len(truth)`` answers."""
    top = [w for w, _ in ranking[: len(truth)]]
    return all(t in top for t in truth)


def describe(peer: Any) -> str:
    """A one-line status of a peer for the report: its error, or how long its queries took."""
    if peer.error:
        return f"{peer.name}: NOT RUN — {peer.error}"
    s = peer.seconds
    if not s:
        return f"{peer.name}: no queries"
    return (f"{peer.name}: {len(s)} queries, p50 {float(np.median(s)):.2f} s, "
            f"max {max(s):.2f} s per query (wall)")  # fmt: skip
