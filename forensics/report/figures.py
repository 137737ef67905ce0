"""The report's figures, drawn from the two media files and the match evidence (PNG bytes).

* :func:`image_pair` — the work and the copy side by side: the matched region outlined on
  the copy and the local-feature correspondences that support it (ORB keypoints
  verified by the same RANSAC fit the image index uses, :func:`forensics.image.features.correspondences`);
* :func:`audio_spectrograms` — both spectrograms with the aligned spans shaded;
* :func:`audio_similarity` — spectral similarity along the copy at the found alignment,
  one value per second (:func:`audio_similarity_series`);
* :func:`video_frame_pairs` — sample frame pairs along the alignment, bars and inset
  boxes outlined;
* :func:`similarity_plot` — a per-second similarity series against the copy's time.

Labels come in the report's language (:mod:`forensics.report.i18n`); the CJK font is
WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``), with DejaVu Sans for Latin text.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from forensics.errors import ForensicsError
from forensics.evidence import AudioEvidence, ImageFeatureEvidence, ImageHashEvidence, VideoEvidence
from forensics.report.model import ReportError

#: Sample rate the audio figures decode at (the fingerprint's own rate).
AUDIO_RATE = 8000
#: Longest stretch of a file a spectrogram shows (seconds); longer files show the span and margins.
MAX_SPECTROGRAM_SECONDS = 120.0
#: Longest stretch of the copy the similarity series covers (seconds): the aligned span
#: (its first part when longer) with margins on both sides.
MAX_SIMILARITY_SECONDS = 600.0
#: Correspondences drawn at most (the strongest evenly spread).
MAX_LINES = 60
#: Height in pixels of the side-by-side image figure.
PAIR_HEIGHT = 420
#: Frame pairs shown at most.
MAX_FRAME_PAIRS = 6
_FONTS = ["WenQuanYi Micro Hei", "DejaVu Sans"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = _FONTS
    plt.rcParams["font.family"] = "sans-serif"
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _png(fig: Any) -> bytes:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# -- images -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePair:
    """The side-by-side image figure and what it shows.

    Attributes
    ----------
    png : bytes
    correspondences : int
        Keypoint pairs consistent with one geometric transform (0 when none was found).
    """

    png: bytes
    correspondences: int


def _load(path: Path) -> NDArray[np.uint8]:
    from forensics.image.decode import load_image

    try:
        return load_image(path)
    except ForensicsError as exc:
        raise ReportError(f"cannot draw {path.name}: {exc}") from None


def _pairs_for(
    work: NDArray[np.uint8], copy: NDArray[np.uint8], mirrored: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Inlier keypoints (work points, copy points) in original pixels; empty when none verify."""
    from forensics.image import features as feat

    reference = feat.extract(work, feat.REFERENCE_FEATURES)
    query_img = np.ascontiguousarray(copy[:, ::-1]) if mirrored else copy
    query = feat.extract(query_img, feat.QUERY_FEATURES)
    found = feat.correspondences(query, reference)
    if found is None:
        return np.zeros((0, 2)), np.zeros((0, 2))
    _, ref_pts, q_pts = found
    ref_pts = ref_pts / reference.scale
    q_pts = q_pts / query.scale
    if mirrored:
        q_pts = np.column_stack([copy.shape[1] - q_pts[:, 0], q_pts[:, 1]])
    return ref_pts, q_pts


def image_pair(
    work_path: Path, copy_path: Path, evidence: ImageHashEvidence | ImageFeatureEvidence
) -> ImagePair:
    """The work (left) and the copy (right) at one height, the matched region outlined on
    the copy in red and the verified keypoint correspondences joined in green.

    Parameters
    ----------
    work_path, copy_path : Path
        Image files.
    evidence : ImageHashEvidence or ImageFeatureEvidence
        The match; its ``region`` is in the copy's pixels.

    Raises
    ------
    ReportError
        A file does not decode as an image.
    """
    work = _load(work_path)
    copy = _load(copy_path)
    mirrored = bool(getattr(evidence, "mirrored", False)) or getattr(evidence, "transform", "") in (
        "flip_h",
        "transpose",
        "anti_transpose",
    )
    ref_pts, q_pts = _pairs_for(work, copy, mirrored)
    if len(ref_pts) == 0 and not mirrored:
        ref_pts, q_pts = _pairs_for(work, copy, True)
    sw = PAIR_HEIGHT / work.shape[0]
    sc = PAIR_HEIGHT / copy.shape[0]
    ww, cw = max(1, round(work.shape[1] * sw)), max(1, round(copy.shape[1] * sc))
    gap = 24
    canvas = np.full((PAIR_HEIGHT, ww + gap + cw, 3), 255, np.uint8)
    canvas[:, :ww] = cv2.resize(work, (ww, PAIR_HEIGHT), interpolation=cv2.INTER_AREA)
    canvas[:, ww + gap :] = cv2.resize(copy, (cw, PAIR_HEIGHT), interpolation=cv2.INTER_AREA)
    region = np.array(evidence.region, dtype=np.float64).reshape(-1, 2)
    if len(region) >= 2:
        poly = np.round(region * sc + [ww + gap, 0]).astype(np.int32)
        cv2.polylines(canvas, [poly], True, (220, 30, 30), 3, cv2.LINE_AA)
    step = max(1, math.ceil(len(ref_pts) / MAX_LINES))
    for (x0, y0), (x1, y1) in zip(ref_pts[::step], q_pts[::step], strict=True):
        a = (round(x0 * sw), round(y0 * sw))
        b = (round(x1 * sc + ww + gap), round(y1 * sc))
        cv2.line(canvas, a, b, (40, 170, 60), 1, cv2.LINE_AA)
        cv2.circle(canvas, a, 4, (40, 170, 60), 2, cv2.LINE_AA)
        cv2.circle(canvas, b, 4, (40, 170, 60), 2, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - encoding an RGB uint8 array does not fail
        raise ReportError("could not encode the image figure")
    return ImagePair(buf.tobytes(), len(ref_pts))


# -- audio --------------------------------------------------------------------------------------


def _decode(path: Path, lo: float = 0.0, hi: float = math.inf) -> tuple[NDArray[np.float32], float]:
    """The samples of ``path`` from ``lo`` to ``hi`` seconds (streamed: a long file is never
    held whole) and the time of the first sample returned."""
    from forensics.audio.decode import iter_blocks

    lo = max(0.0, lo)
    first = int(lo * AUDIO_RATE)
    last = math.inf if math.isinf(hi) else int(hi * AUDIO_RATE)
    parts: list[NDArray[np.float32]] = []
    at = 0
    try:
        for block in iter_blocks(path, sample_rate=AUDIO_RATE, block_seconds=10.0, strict=False):
            end = at + len(block)
            if end > first:
                parts.append(block[max(0, first - at) : max(0, int(min(end, last)) - at)])
            at = end
            if at >= last:
                break
    except ForensicsError as exc:
        raise ReportError(f"cannot draw {path.name}: {exc}") from None
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return samples, first / AUDIO_RATE


def _spectrogram(x: NDArray[np.float32]) -> tuple[NDArray[np.float64], float]:
    """Log-magnitude spectrogram (dB, bins × frames) and the frame hop in seconds."""
    from scipy.signal import stft

    nper, hop = 512, 256
    if len(x) < nper:
        x = np.pad(x, (0, nper - len(x)))
    _, _, z = stft(x, fs=AUDIO_RATE, nperseg=nper, noverlap=nper - hop, boundary=None, padded=False)
    mag = np.abs(z)
    db = 20 * np.log10(np.maximum(mag, 1e-6))
    return db, hop / AUDIO_RATE


def _window(start: float, end: float, seconds: float) -> tuple[float, float]:
    """A stretch of about ``seconds`` around the span ``start``..``end`` (the span's first
    ``seconds`` when it is longer), never before 0."""
    margin = max(5.0, (seconds - (end - start)) / 2)
    lo = max(0.0, start - margin)
    return lo, lo + max(seconds, min(end - start, seconds) + 10.0)


def audio_spectrograms(
    work_path: Path, copy_path: Path, evidence: AudioEvidence, labels: dict[str, str]
) -> bytes:
    """Spectrograms of the work (top) and the copy (bottom), the aligned spans shaded.

    Parameters
    ----------
    work_path, copy_path : Path
        Audio files (or video files with a soundtrack).
    evidence : AudioEvidence
    labels : dict
        ``work``, ``copy``, ``seconds``, ``hz``, ``span`` in the report's language.
    """
    import librosa.display

    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(9, 5.2), constrained_layout=True)
    for ax, path, (start, end), title in (
        (axes[0], work_path, (evidence.ref_start, evidence.ref_end), labels["work"]),
        (axes[1], copy_path, (evidence.query_start, evidence.query_end), labels["copy"]),
    ):
        x, lo = _decode(path, *_window(start, end, MAX_SPECTROGRAM_SECONDS))
        db, hop = _spectrogram(x)
        librosa.display.specshow(
            db,
            sr=AUDIO_RATE,
            hop_length=int(hop * AUDIO_RATE),
            x_axis="s",
            y_axis="hz",
            x_coords=lo + np.arange(db.shape[1] + 1) * hop,
            y_coords=np.linspace(0.0, AUDIO_RATE / 2, db.shape[0] + 1),
            ax=ax,
            cmap="magma",
            vmin=float(db.max()) - 80,
        )
        ax.axvspan(start, end, color="#22c55e", alpha=0.12, lw=0)
        ax.axvline(start, color="#22c55e", lw=1.5)
        ax.axvline(end, color="#22c55e", lw=1.5)
        ax.set_title(f"{title} — {labels['span']} {start:.2f}–{end:.2f} s", fontsize=10, loc="left")
        ax.set_xlabel(labels["seconds"])
        ax.set_ylabel(labels["hz"])
    return _png(fig)


def audio_similarity_series(
    work_path: Path, copy_path: Path, evidence: AudioEvidence
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Spectral similarity of the copy with the work at the found alignment, per copy second.

    Each file's log spectrogram is whitened (each frequency's median over time removed, which
    cancels equalization and gain) and each frame centred; a copy frame at ``t`` is compared
    with the work frame at ``ref_start + (t - query_start) * speed``, the work's
    frequencies scaled by ``pitch``, by the correlation of the two frames. The value of a
    second is the mean over its frames, clipped to 0..1: about 0 where the copy plays
    something else, high inside the aligned span.

    Only about :data:`MAX_SIMILARITY_SECONDS` of the copy around the span are decoded (the
    span's first part when it is longer), so a long stream costs bounded memory.

    Returns
    -------
    (times, values)
        Copy seconds (start of each second) and similarities (``nan`` where the alignment
        falls outside the work).
    """
    q_lo, q_hi = _window(evidence.query_start, evidence.query_end, MAX_SIMILARITY_SECONDS)
    r_lo = evidence.ref_start + (q_lo - evidence.query_start) * evidence.speed - 1.0
    r_hi = evidence.ref_start + (q_hi - evidence.query_start) * evidence.speed + 1.0
    q_x, q_lo = _decode(copy_path, q_lo, q_hi)
    r_x, r_lo = _decode(work_path, r_lo, r_hi)
    q_db, hop = _spectrogram(q_x)
    r_db, _ = _spectrogram(r_x)
    q = q_db - np.median(q_db, axis=1, keepdims=True)
    r = r_db - np.median(r_db, axis=1, keepdims=True)
    bins = q.shape[0]
    if evidence.pitch != 1.0:
        # the copy's bin k holds the work's bin k / pitch
        src = np.arange(bins) / evidence.pitch
        r = np.stack([np.interp(src, np.arange(bins), r[:, j], right=np.nan) for j in range(r.shape[1])], 1)
    band = slice(4, bins - 4)
    q, r = q[band], r[band]
    frames = q.shape[1]
    tq = q_lo + np.arange(frames) * hop
    tr = evidence.ref_start + (tq - evidence.query_start) * evidence.speed
    jr = np.round((tr - r_lo) / hop).astype(np.int64)
    valid = (jr >= 0) & (jr < r.shape[1])
    corr = np.full(frames, np.nan)
    if valid.any():
        a = q[:, valid]
        b = r[:, jr[valid]]
        ok = ~np.isnan(b)
        a = np.where(ok, a, 0.0)
        b = np.where(ok, b, 0.0)
        a = a - a.mean(axis=0)
        b = b - b.mean(axis=0)
        den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
        corr[valid] = np.where(den > 0, (a * b).sum(0) / np.maximum(den, 1e-12), 0.0)
    first = math.floor(q_lo)
    times = np.arange(first, math.ceil(q_lo + frames * hop), dtype=np.float64)
    values = np.full(len(times), np.nan)
    for i, s in enumerate(times):
        chunk = corr[(tq >= s) & (tq < s + 1)]
        chunk = chunk[~np.isnan(chunk)]
        if len(chunk):
            values[i] = float(np.clip(chunk.mean(), 0.0, 1.0))
    return times, values


# -- plots --------------------------------------------------------------------------------------


def similarity_plot(
    times: Sequence[float] | NDArray[np.float64],
    values: Sequence[float] | NDArray[np.float64],
    span: tuple[float, float],
    labels: dict[str, str],
    threshold: float | None = None,
) -> bytes:
    """Similarity (0..1) per second of the copy, the aligned span shaded.

    Parameters
    ----------
    times, values : sequence of float
        Copy seconds and similarities (``nan`` for none).
    span : (float, float)
        The aligned span in the copy.
    labels : dict
        ``title``, ``seconds``, ``similarity``, ``span`` and (with ``threshold``) ``threshold``.
    threshold : float, optional
        A per-frame decision line to draw.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 2.8), constrained_layout=True)
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ax.axvspan(span[0], span[1], color="#22c55e", alpha=0.18, lw=0, label=labels["span"])
    ax.step(t, v, where="post", color="#1d4ed8", lw=1.8, label=labels["similarity"])
    if len(t):
        ax.plot(t + 0.5, v, "o", color="#1d4ed8", ms=3)
    if threshold is not None:
        ax.axhline(threshold, color="#dc2626", ls="--", lw=1, label=labels["threshold"])
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel(labels["seconds"])
    ax.set_ylabel(labels["similarity"])
    ax.set_title(labels["title"], fontsize=10, loc="left")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


# -- video --------------------------------------------------------------------------------------


def _frame_at(path: Path, seconds: float, width: int = 320) -> NDArray[np.uint8] | None:
    """The colour picture of ``path`` at ``seconds`` (RGB), or ``None`` when ffmpeg gives none."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise ReportError("ffmpeg is needed to draw video frames: apt-get install ffmpeg")
    cmd = [
        exe, "-v", "error", "-nostdin", "-ss", f"{max(0.0, seconds):.3f}", "-i", str(path),
        "-frames:v", "1", "-vf", f"scale={width}:-2", "-f", "image2pipe", "-c:v", "png", "-",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0 or not proc.stdout:
        return None
    img = cv2.imdecode(np.frombuffer(proc.stdout, np.uint8), cv2.IMREAD_COLOR)
    return None if img is None else np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def _pick(pairs: Sequence[tuple[float, float, int]], n: int) -> list[tuple[float, float, int]]:
    if len(pairs) <= n:
        return list(pairs)
    idx = np.linspace(0, len(pairs) - 1, n).round().astype(int)
    return [pairs[i] for i in idx]


def video_frame_pairs(
    work_path: Path, copy_path: Path, evidence: VideoEvidence, labels: dict[str, str]
) -> tuple[bytes, int]:
    """Sample frame pairs along the alignment: the work's frame (left) and the copy's (right).

    The copy's picture without its bars (``crop_box``) is outlined in red, an inset
    (``pip_box``) in orange. Captions give both times and the differing hash bits.

    Returns
    -------
    (bytes, int)
        The PNG and the number of pairs drawn (frames ffmpeg could not give are left out).
    """
    plt = _plt()
    pairs = _pick(evidence.frame_pairs, MAX_FRAME_PAIRS)
    frames = []
    for q_s, w_s, bits in pairs:
        a, b = _frame_at(work_path, w_s), _frame_at(copy_path, q_s)
        if a is not None and b is not None:
            frames.append((a, b, q_s, w_s, bits))
    if not frames:
        raise ReportError(f"no frame pairs could be read from {work_path.name} and {copy_path.name}")
    fig, axes = plt.subplots(len(frames), 2, figsize=(8, 2.6 * len(frames)), squeeze=False)
    for row, (a, b, q_s, w_s, bits) in zip(axes, frames, strict=True):
        row[0].imshow(a)
        row[0].set_title(f"{labels['work']} {w_s:.2f} s", fontsize=9)
        row[1].imshow(b)
        row[1].set_title(f"{labels['copy']} {q_s:.2f} s — {bits}/256 {labels['bits']}", fontsize=9)
        h, w = b.shape[:2]
        for box, colour in ((evidence.crop_box, "#dc2626"), (evidence.pip_box, "#f59e0b")):
            if box is None or tuple(box) == (0.0, 0.0, 1.0, 1.0):
                continue
            x0, y0, x1, y1 = box
            row[1].add_patch(
                plt.Rectangle((x0 * w, y0 * h), (x1 - x0) * w, (y1 - y0) * h, fill=False, ec=colour, lw=2)
            )
        for ax in row:
            ax.set_axis_off()
    fig.tight_layout()
    return _png(fig), len(frames)
