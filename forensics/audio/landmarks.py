"""Spectral-peak landmarks: the audio fingerprint (after Wang 2003 and Panako's triplets).

Audio at 8 kHz is cut into 128 ms Hann frames every 16 ms (7.8 Hz bins: a long window
lifts tonal components further out of broadband noise). Peaks are the local maxima of the
log power spectrum over ±7 frames and ±12 bins that stand at least 6 dB above the mean of
their ±30 neighbouring bins, in frames that are not silent. The band is split into
:attr:`LandmarkParams.bands` equal parts on the semitone scale, and in each one-second
block the loudest peaks of each part are kept, :attr:`LandmarkParams.peaks_per_second`
in all — picking by absolute level keeps the strong components that survive additive
noise, where picking by local contrast would chase noise; picking per part keeps the
upper partials of music when a voice-over or another track fills the low band, and
the later echoes of reverb from taking every slot. Each peak is refined to fractional
time and frequency by parabolic interpolation.

Each peak (the *anchor*) is combined with pairs of the next few peaks in a target zone
ahead of it. A triplet becomes a 29-bit hash of five quantized values:

* the anchor's frequency on a log scale (half-semitone cells, 250–3500 Hz);
* the frequency intervals from the anchor to the second and to the third peak, in half
  semitones — ratios, so a pitch shift leaves them alone;
* the time span from the anchor to the third peak, on a log scale (5 % cells);
* where the second peak falls inside that span, in sixteenths — a ratio of times, so a
  tempo change leaves it alone.

Pair hashes (anchor frequency, interval, time) carry about 19 bits: at 1,000 hours of
audio each value would be shared by hundreds of index entries, and every lookup would
cost that much. Triplets carry 29, so a lookup returns about one entry even then.

A query that was sped up, slowed down or pitch-shifted is looked up under a grid of
(time scale, pitch scale) hypotheses. Only two fields depend on the hypothesis — a pitch
change moves the anchor frequency, a tempo change the time span — so
:class:`Landmarks` quantizes the invariant fields once and :meth:`Landmarks.hashes`
adds the other two per hypothesis. This is the lesson of Panako and Olaf that plain
landmark hashes break under speed changes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.fft
from scipy import ndimage

__all__ = [
    "EVIDENCE_BINS",
    "EVIDENCE_STEP",
    "EVIDENCE_TIME",
    "HASH_BITS",
    "LandmarkParams",
    "Landmarks",
    "PeakExtractor",
    "Peaks",
    "analysis_bins",
    "anchor_peaks",
    "extract_peaks",
    "hash_fields",
    "hash_peaks",
    "landmarks",
    "mix32",
    "unmix32",
]

FloatArray = npt.NDArray[np.float64]
_F_BITS = 7
_D_BITS = 6
_T_BITS = 6
_R_BITS = 4
HASH_BITS = _F_BITS + 2 * _D_BITS + _T_BITS + _R_BITS
"""Bits of information in a landmark hash (its values are spread over 32 bits by :func:`mix32`)."""
_MIX_A = 0x21F0AAAD
_MIX_B = 0x735A2D97


@dataclass(frozen=True)
class LandmarkParams:
    """Parameters of the fingerprint; an index records them and refuses others.

    Attributes
    ----------
    sample_rate : int
        Hz the audio is resampled to.
    n_fft, hop : int
        STFT frame length and step in samples (128 ms and 16 ms at 8 kHz).
    fmin, fmax : float
        Frequency band of peaks in Hz.
    peak_time_radius, peak_freq_radius : int
        Half-size of the local-maximum neighbourhood, in frames and bins.
    whiten_bins : int
        Width of the frequency moving average a peak must stand out of.

    min_prominence_db : float
        A peak must stand this far above the local spectral mean.
    silence_db : float
        Frames whose mean power is below this (dBFS) yield no peaks.
    peaks_per_second : int
        Density cap: the strongest peaks in each one-second block are kept.
    bands : int
        The cap is shared equally by this many frequency bands (equal in semitones).
    fan_out : int
        Pairs per anchor peak.
    query_peaks_per_second, query_fan_out : int
        The same for queries: denser, so that the registered peaks are still among the
        query's when speech, music or noise is mixed over it (costs lookups, not index size).
    dt_min, dt_max : float
        Target zone in frames (time interval between the paired peaks).
    df_max : float
        Target zone in semitones (absolute frequency interval).
    min_gap : float
        Target peaks closer than this in time (frames) count as simultaneous and are
        ordered by frequency.
    freq_cell : float
        Log-frequency quantization, semitones.
    dt_ratio : float
        Log-time quantization: one cell per this ratio.
    """

    sample_rate: int = 8000
    n_fft: int = 1024
    hop: int = 128
    fmin: float = 250.0
    fmax: float = 3500.0
    peak_time_radius: int = 7
    peak_freq_radius: int = 12
    whiten_bins: int = 61
    min_prominence_db: float = 6.0
    silence_db: float = -70.0
    peaks_per_second: int = 12
    bands: int = 3
    fan_out: int = 5
    query_peaks_per_second: int = 24
    query_fan_out: int = 10
    dt_min: float = 3.0
    dt_max: float = 63.0
    df_max: float = 12.0
    min_gap: float = 1.0
    freq_cell: float = 0.5
    dt_ratio: float = 1.05

    @property
    def frame_seconds(self) -> float:
        """Seconds between frames (the time unit of peaks and index entries)."""
        return self.hop / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-serializable dict."""
        return asdict(self)


@dataclass(frozen=True)
class Peaks:
    """Spectral peaks of a signal, sorted by time.

    Attributes
    ----------
    t : numpy.ndarray
        Fractional frame index of each peak.
    lf : numpy.ndarray
        Frequency in semitones above ``fmin``.
    strength : numpy.ndarray
        Whitened level in dB (how far the peak stands out).
    frames : int
        Number of frames analysed (duration = frames × hop / sample_rate).
    evidence : numpy.ndarray of int8, optional
        Queries only (``query=True``): the *evidence map*, one row per frame and one
        column per STFT bin of :func:`analysis_bins` — the whitened level (dB above the mean
        of the neighbouring ``whiten_bins`` bins), maximized over ±2 frames and ±1 bin, in
        half-dB steps. Verification reads it at the reference's peaks, so that a component
        of the work that is still audible but lost its peak to a louder sound (a voice-over,
        another track, reverb, noise) still counts as graded evidence.
    """

    t: FloatArray
    lf: FloatArray
    strength: FloatArray
    frames: int
    evidence: npt.NDArray[np.int8] | None = None

    def __len__(self) -> int:
        return len(self.t)

    def window(self, start: int, stop: int) -> Peaks:
        """The peaks of frames ``[start, stop)``, with times from ``start`` (and the evidence rows).

        Examples
        --------
        >>> import numpy as np
        >>> p = Peaks(np.array([1.0, 5.5, 9.0]), np.array([3.0, 4.0, 5.0]), np.ones(3), 10,
        ...           evidence=np.zeros((10, 4), dtype=np.int8))
        >>> w = p.window(4, 8)
        >>> w.t.tolist(), w.frames, w.evidence.shape
        ([1.5], 4, (4, 4))
        """
        start = max(0, int(start))
        stop = min(self.frames, int(stop))
        sel = (self.t >= start) & (self.t < stop)
        ev = None if self.evidence is None else self.evidence[start:stop]
        return Peaks(self.t[sel] - start, self.lf[sel], self.strength[sel], max(0, stop - start), ev)


EVIDENCE_TIME = 2
"""Half-width in frames of the evidence map's maximum (the verification's time tolerance)."""
EVIDENCE_BINS = 1
"""Half-width in bins of the evidence map's maximum."""
EVIDENCE_STEP = 0.5
"""dB per unit of the evidence map."""


def analysis_bins(params: LandmarkParams) -> tuple[int, int]:
    """The STFT bins ``[lo, hi)`` that peaks are picked in, with a margin each side for context.

    Column ``j`` of :attr:`Peaks.evidence` is bin ``lo + j``, at ``(lo + j) * sample_rate / n_fft`` Hz.

    Examples
    --------
    >>> analysis_bins(LandmarkParams())
    (19, 462)
    """
    p = params
    freqs = np.arange(p.n_fft // 2 + 1) * p.sample_rate / p.n_fft
    lo = int(np.searchsorted(freqs, p.fmin))
    hi = int(np.searchsorted(freqs, p.fmax, side="right"))
    pad = p.peak_freq_radius + 1
    return max(1, lo - pad), min(len(freqs) - 1, hi + pad)


class PeakExtractor:
    """Incremental peak picker: feed samples block by block, then :meth:`finish`.

    Memory is bounded by the chunk size (about a minute of spectrogram) plus the peaks
    found, whatever the length of the input.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(8000 * 4).astype(np.float32) * 0.1
    >>> ex = PeakExtractor()
    >>> for i in range(0, len(x), 3000):
    ...     ex.feed(x[i:i + 3000])
    >>> p = ex.finish()
    >>> p.frames, bool(len(p) > 20)
    (250, True)
    """

    def __init__(
        self, params: LandmarkParams | None = None, chunk_seconds: float = 60.0, *, query: bool = False
    ) -> None:
        self.params = params or LandmarkParams()
        p = self.params
        self._query = query
        density = p.query_peaks_per_second if query else p.peaks_per_second
        self._bands = max(1, p.bands)
        self._quota = -(-density // self._bands)  # peaks kept per band and second (rounded up)
        self._window = np.hanning(p.n_fft + 1)[:-1].astype(np.float32)
        freqs = np.arange(p.n_fft // 2 + 1) * p.sample_rate / p.n_fft
        lo = int(np.searchsorted(freqs, p.fmin))
        hi = int(np.searchsorted(freqs, p.fmax, side="right"))
        # margin of bins each side so the whitening and the maximum filter see context
        self._lo, self._hi = analysis_bins(p)
        self._band = (lo - self._lo, hi - self._lo)
        # density band of each bin of the analysed range (equal parts on the semitone scale)
        semis = 12.0 * np.log2(np.maximum(freqs[self._lo : self._hi], 1.0) / p.fmin)
        part = np.floor(semis / (12.0 * math.log2(p.fmax / p.fmin)) * self._bands)
        self._band_of = np.clip(part, 0, self._bands - 1).astype(np.int64)
        self._bin_hz = p.sample_rate / p.n_fft
        self._block = round(1.0 / p.frame_seconds)
        self._chunk = max(1, round(chunk_seconds / p.frame_seconds / self._block)) * self._block
        self._margin = p.peak_time_radius + 1
        self._samples = np.zeros(p.n_fft - p.hop, dtype=np.float32)  # half-window of leading zeros
        self._rows: list[npt.NDArray[np.float32]] = [self._silent_rows(self._margin)]
        self._nrows = self._margin
        self._done = 0  # global index of the first frame not yet peak-picked
        self._frames = 0
        self._out: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        self._evidence: list[npt.NDArray[np.int8]] = []

    def _silent_rows(self, n: int) -> npt.NDArray[np.float32]:
        return np.full((n, self._hi - self._lo), np.nan, dtype=np.float32)

    def feed(self, samples: npt.ArrayLike) -> None:
        """Add mono samples at ``params.sample_rate``."""
        x = np.asarray(samples, dtype=np.float32).ravel()
        if x.size == 0:
            return
        buf = np.concatenate([self._samples, x])
        p = self.params
        n = 0 if len(buf) < p.n_fft else 1 + (len(buf) - p.n_fft) // p.hop
        if n:
            frames = np.lib.stride_tricks.sliding_window_view(buf, p.n_fft)[:: p.hop][:n]
            spec = scipy.fft.rfft(frames * self._window, axis=1)[:, self._lo : self._hi]
            power = spec.real**2 + spec.imag**2
            rows = (10.0 * np.log10(power + 1e-12)).astype(np.float32)
            self._rows.append(rows)
            self._nrows += n
            self._frames += n
        self._samples = buf[n * p.hop :]
        while self._nrows >= self._chunk + 2 * self._margin:
            self._process(self._chunk)

    def finish(self) -> Peaks:
        """Flush the remaining frames and return every peak found, sorted by time."""
        p = self.params
        tail = len(self._samples)
        if tail > p.n_fft - p.hop:  # cover the last samples with a zero-padded frame
            self.feed(np.zeros(p.n_fft - tail, dtype=np.float32))
        self._rows.append(self._silent_rows(self._margin))
        self._nrows += self._margin
        while self._nrows > 2 * self._margin:
            self._process(min(self._chunk, self._nrows - 2 * self._margin))
        if self._out:
            t, lf, s = (np.concatenate(parts) for parts in zip(*self._out, strict=True))
        else:
            t = lf = s = np.zeros(0)
        evidence = None
        if self._query:
            width = self._hi - self._lo
            rows = np.concatenate(self._evidence) if self._evidence else np.zeros((0, width), dtype=np.int8)
            evidence = rows[: self._frames]
        return Peaks(t=t, lf=lf, strength=s, frames=self._frames, evidence=evidence)

    def _process(self, core: int) -> None:
        rows = np.concatenate(self._rows) if len(self._rows) > 1 else self._rows[0]
        m = self._margin
        window = rows[: core + 2 * m]
        self._out.append(self._pick(window, m, core, self._done))
        keep = rows[core:]
        self._rows = [keep]
        self._nrows = len(keep)
        self._done += core

    def _pick(
        self, spec: npt.NDArray[np.float32], m: int, core: int, first: int
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        p = self.params
        valid = ~np.isnan(spec[:, 0])
        level = np.where(valid[:, None], spec, -200.0).astype(np.float32)
        contrast = level - ndimage.uniform_filter1d(level, p.whiten_bins, axis=1, mode="nearest")
        if self._query:
            whitened = ndimage.maximum_filter(
                contrast, size=(2 * EVIDENCE_TIME + 1, 2 * EVIDENCE_BINS + 1), mode="nearest"
            )[m : m + core]
            units = np.rint(whitened / EVIDENCE_STEP)
            self._evidence.append(np.clip(units, -128, 127).astype(np.int8))
        loud = valid & (level.mean(axis=1) > p.silence_db)
        size = (2 * p.peak_time_radius + 1, 2 * p.peak_freq_radius + 1)
        local_max = level == ndimage.maximum_filter(level, size=size, mode="nearest")
        b0, b1 = self._band
        cand = np.zeros_like(local_max)
        cand[m : m + core, b0:b1] = local_max[m : m + core, b0:b1]
        cand &= contrast > p.min_prominence_db
        cand &= loud[:, None]
        ti, fi = np.nonzero(cand)
        if ti.size == 0:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        strength = level[ti, fi].astype(np.float64)
        # density cap: in each one-second block, the strongest peaks of each band
        group = ((ti - m + first) // self._block) * self._bands + self._band_of[fi]
        order = np.lexsort((-strength, group))
        grouped = group[order]
        starts = np.searchsorted(grouped, grouped, side="left")
        rank = np.arange(len(order)) - starts
        keep = np.sort(order[rank < self._quota])
        ti, fi, strength = ti[keep], fi[keep], strength[keep]
        dt = _parabolic(spec, ti, fi, axis=0)
        df = _parabolic(spec, ti, fi, axis=1)
        t = (ti - m + first).astype(np.float64) + dt
        hz = (fi + self._lo + df) * self._bin_hz
        lf = 12.0 * np.log2(np.maximum(hz, 1.0) / p.fmin)
        order = np.argsort(t, kind="stable")
        return t[order], lf[order], strength[order]


def _parabolic(
    spec: npt.NDArray[np.float32], ti: npt.NDArray[np.intp], fi: npt.NDArray[np.intp], axis: int
) -> FloatArray:
    """Sub-cell offset of each peak from a parabola through it and its two neighbours."""
    n = spec.shape[axis]
    if axis == 0:
        a = spec[np.clip(ti - 1, 0, n - 1), fi]
        c = spec[np.clip(ti + 1, 0, n - 1), fi]
    else:
        a = spec[ti, np.clip(fi - 1, 0, n - 1)]
        c = spec[ti, np.clip(fi + 1, 0, n - 1)]
    b = spec[ti, fi]
    den = (a - 2.0 * b + c).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(den < -1e-9, 0.5 * (a - c) / den, 0.0)
    out: FloatArray = np.clip(np.nan_to_num(off), -0.5, 0.5)
    return out


def extract_peaks(
    samples: npt.ArrayLike, params: LandmarkParams | None = None, *, query: bool = False
) -> Peaks:
    """Spectral peaks of a whole signal (see :class:`PeakExtractor` for streams).

    Parameters
    ----------
    samples : array_like
        Mono samples at ``params.sample_rate``.
    params : LandmarkParams, optional
        Fingerprint parameters.
    query : bool
        Pick the denser query peaks (``query_peaks_per_second``).

    Returns
    -------
    Peaks

    Examples
    --------
    >>> import numpy as np
    >>> len(extract_peaks(np.zeros(8000)))  # silence has no peaks
    0
    """
    ex = PeakExtractor(params, query=query)
    ex.feed(samples)
    return ex.finish()


@dataclass(frozen=True)
class Landmarks:
    """Triplets of peaks with the fields of their hashes, before quantizing the variant ones.

    The fields that a speed, tempo or pitch change leaves alone are quantized here once;
    :meth:`hashes` adds the two that change (anchor frequency and time span) for each
    hypothesis, so a query is hashed under every hypothesis at little extra cost.

    Attributes
    ----------
    anchor_t : numpy.ndarray
        Time of each triplet's anchor peak, frames.
    anchor_lf : numpy.ndarray
        Frequency of the anchor, semitones above ``fmin``.
    span : numpy.ndarray
        Time from the anchor to the third peak, frames.
    invariant : numpy.ndarray of uint32
        The invariant fields (both frequency intervals and the time ratio), packed.
    """

    anchor_t: FloatArray
    anchor_lf: FloatArray
    span: FloatArray
    invariant: npt.NDArray[np.uint32]
    params: LandmarkParams

    def __len__(self) -> int:
        return len(self.anchor_t)

    def hashes(
        self, time_scale: float = 1.0, pitch_scale: float = 1.0
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.intp]]:
        """Hashes under one (time scale, pitch scale) hypothesis, and which triplets they are.

        Parameters
        ----------
        time_scale : float
            Multiply time spans by this before quantizing (a query played 4 % fast is
            looked up with ``time_scale=1.04``).
        pitch_scale : float
            Divide frequencies by this (a query pitched up by 6 % uses ``pitch_scale=1.06``).

        Returns
        -------
        hashes : numpy.ndarray of uint32
            Mixed ``HASH_BITS``-bit hashes (a bijection of the packed fields, so every bit
            is evenly used).
        which : numpy.ndarray of intp
            Index of the triplet of each hash (triplets whose fields fall outside the
            ranges under this hypothesis are dropped).
        """
        p = self.params
        shift = 12.0 * math.log2(pitch_scale)
        fc = np.floor((self.anchor_lf - shift) / p.freq_cell)
        with np.errstate(divide="ignore"):
            tc = np.floor(np.log(self.span * (time_scale / p.dt_min)) / math.log(p.dt_ratio))
        ok = (fc >= 0) & (fc < (1 << _F_BITS)) & (tc >= 0) & (tc < (1 << _T_BITS))
        which = np.flatnonzero(ok)
        packed = (
            (fc[which].astype(np.uint32) << (_D_BITS * 2 + _T_BITS + _R_BITS))
            | (tc[which].astype(np.uint32) << _R_BITS)
            | self.invariant[which]
        )
        return mix32(packed.astype(np.uint32)), which


def mix32(x: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """A bijection of 32-bit integers that spreads every input bit over all output bits.

    The index buckets hashes by their top bits; mixing makes the buckets even although
    the fields themselves are far from uniform. Being a bijection it adds no collisions.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(1 << 16, dtype=np.uint32)
    >>> len(np.unique(mix32(x))) == len(x), int(mix32(x)[:4].max() >> 28) > 0
    (True, True)
    """
    h = np.asarray(x, dtype=np.uint32).copy()
    h ^= h >> np.uint32(16)
    h *= np.uint32(_MIX_A)
    h ^= h >> np.uint32(15)
    h *= np.uint32(_MIX_B)
    h ^= h >> np.uint32(15)
    return h


def unmix32(h: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """The inverse of :func:`mix32`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([0, 1, 2**29 - 1, 2**32 - 1], dtype=np.uint32)
    >>> unmix32(mix32(x)).tolist() == x.tolist()
    True
    """
    x = np.asarray(h, dtype=np.uint32).copy()
    x ^= (x >> np.uint32(15)) ^ (x >> np.uint32(30))
    x *= np.uint32(pow(_MIX_B, -1, 1 << 32))
    x ^= (x >> np.uint32(15)) ^ (x >> np.uint32(30))
    x *= np.uint32(pow(_MIX_A, -1, 1 << 32))
    x ^= x >> np.uint32(16)
    return x


def hash_fields(h: npt.NDArray[np.uint32]) -> dict[str, npt.NDArray[np.uint32]]:
    """The quantized fields of landmark hashes (for inspection and tests).

    Returns
    -------
    dict
        ``anchor`` (anchor frequency cell), ``interval2`` and ``interval3`` (frequency
        intervals to the second and third peak, in cells, offset by 31), ``span`` (log
        time-span cell) and ``ratio`` (where the second peak falls in the span, 0–15).

    Examples
    --------
    >>> import numpy as np
    >>> p = Peaks(t=np.array([0.0, 5.0, 12.0]), lf=np.array([12.0, 15.0, 10.0]),
    ...           strength=np.ones(3), frames=20)
    >>> f = hash_fields(hash_peaks(p)[0])
    >>> int(f["anchor"][0]), int(f["interval2"][0]) - 31, int(f["interval3"][0]) - 31, int(f["ratio"][0])
    (24, 6, -4, 6)
    """
    x = unmix32(h)
    mask_d = np.uint32((1 << _D_BITS) - 1)
    return {
        "anchor": x >> np.uint32(2 * _D_BITS + _T_BITS + _R_BITS),
        "interval2": (x >> np.uint32(_D_BITS + _T_BITS + _R_BITS)) & mask_d,
        "interval3": (x >> np.uint32(_T_BITS + _R_BITS)) & mask_d,
        "span": (x >> np.uint32(_R_BITS)) & np.uint32((1 << _T_BITS) - 1),
        "ratio": x & np.uint32((1 << _R_BITS) - 1),
    }


def _targets(peaks: Peaks, p: LandmarkParams, fan: int) -> npt.NDArray[np.intp]:
    """The first ``fan`` peaks in each peak's target zone (``-1`` where there are fewer)."""
    n = len(peaks)
    t, lf = peaks.t, peaks.lf
    out = np.full((n, fan), -1, dtype=np.intp)
    used = np.zeros(n, dtype=np.intp)
    for k in range(1, n):
        i = np.arange(n - k)
        dt = t[i + k] - t[i]
        if dt.min() > p.dt_max:
            break
        ok = (dt >= p.dt_min) & (dt <= p.dt_max) & (np.abs(lf[i + k] - lf[i]) <= p.df_max) & (used[i] < fan)
        i = i[ok]
        out[i, used[i]] = i + k
        used[i] += 1
    return out


def landmarks(peaks: Peaks, params: LandmarkParams | None = None, *, fan_out: int | None = None) -> Landmarks:
    """Triplet landmarks of ``peaks`` (see the module notes for the fields).

    Each peak (the anchor) is combined with every pair of the first ``fan_out`` peaks of
    its target zone: ``fan_out * (fan_out - 1) / 2`` triplets per anchor.

    Parameters
    ----------
    peaks : Peaks
        From :func:`extract_peaks`.
    params : LandmarkParams, optional
        Fingerprint parameters (those the peaks were made with).
    fan_out : int, optional
        Target peaks per anchor; ``params.fan_out`` when omitted.

    Returns
    -------
    Landmarks

    Examples
    --------
    >>> import numpy as np
    >>> p = Peaks(t=np.array([0.0, 5.0, 12.0]), lf=np.array([12.0, 15.0, 10.0]),
    ...           strength=np.ones(3), frames=20)
    >>> lm = landmarks(p)
    >>> len(lm), lm.span.tolist()
    (1, [12.0])
    """
    p = params or LandmarkParams()
    fan = p.fan_out if fan_out is None else fan_out
    if fan < 2:
        raise ValueError(f"fan_out must be at least 2 (a triplet needs two targets), got {fan}")
    t, lf = peaks.t, peaks.lf
    tg = _targets(peaks, p, fan)
    half = (1 << _D_BITS) // 2 - 1
    r_cells = 1 << _R_BITS
    parts: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]] = []
    for a in range(fan - 1):
        for b in range(a + 1, fan):
            i = np.flatnonzero(tg[:, b] >= 0)
            parts.append((i, tg[i, a], tg[i, b]))
    if not parts or not any(len(x[0]) for x in parts):
        empty = np.zeros(0)
        return Landmarks(empty, empty, empty, np.zeros(0, dtype=np.uint32), p)
    i, j, k = (np.concatenate(x) for x in zip(*parts, strict=True))
    # concurrent peaks (a chord) have no reliable time order: order them by frequency
    close = (t[k] - t[j]) < p.min_gap
    swap = close & (lf[k] < lf[j])
    j, k = np.where(swap, k, j), np.where(swap, j, k)
    span = np.maximum(t[j], t[k]) - t[i]
    d2 = np.rint((lf[j] - lf[i]) / p.freq_cell) + half
    d3 = np.rint((lf[k] - lf[i]) / p.freq_cell) + half
    ratio = np.where(close, r_cells - 1, np.floor((t[j] - t[i]) / span * r_cells))
    ratio = np.clip(ratio, 0, r_cells - 1)
    ok = (d2 >= 0) & (d2 <= 2 * half) & (d3 >= 0) & (d3 <= 2 * half)
    invariant = (
        (d2[ok].astype(np.uint32) << (_D_BITS + _T_BITS + _R_BITS))
        | (d3[ok].astype(np.uint32) << (_T_BITS + _R_BITS))
        | ratio[ok].astype(np.uint32)
    )
    return Landmarks(t[i[ok]], lf[i[ok]], span[ok], invariant, p)


def hash_peaks(
    peaks: Peaks,
    params: LandmarkParams | None = None,
    *,
    time_scale: float = 1.0,
    pitch_scale: float = 1.0,
    fan_out: int | None = None,
) -> tuple[npt.NDArray[np.uint32], FloatArray]:
    """Landmark hashes of ``peaks``, optionally mapped by a speed / pitch hypothesis.

    Parameters
    ----------
    peaks : Peaks
        From :func:`extract_peaks`.
    params : LandmarkParams, optional
        Fingerprint parameters (those the peaks were made with).
    time_scale, pitch_scale : float
        The hypothesis (see :meth:`Landmarks.hashes`).
    fan_out : int, optional
        Target peaks per anchor; ``params.fan_out`` when omitted.

    Returns
    -------
    hashes : numpy.ndarray of uint32
        One hash per triplet.
    times : numpy.ndarray of float64
        The anchor's time in (unscaled) frames of the input.

    Examples
    --------
    >>> import numpy as np
    >>> p = Peaks(t=np.array([0.0, 5.0, 12.0]), lf=np.array([12.0, 15.0, 10.0]),
    ...           strength=np.ones(3), frames=20)
    >>> h, t = hash_peaks(p)
    >>> len(h), t.tolist(), bool(h[0] != hash_peaks(p, pitch_scale=1.06)[0][0])
    (1, [0.0], True)
    """
    lm = landmarks(peaks, params, fan_out=fan_out)
    hashes, which = lm.hashes(time_scale, pitch_scale)
    return hashes, lm.anchor_t[which]


def anchor_peaks(
    hashes: npt.NDArray[np.uint32], frames: npt.ArrayLike, n_frames: int, params: LandmarkParams | None = None
) -> Peaks:
    """The anchor peaks that stored landmarks imply, for fingerprints made without peaks.

    A hash holds its anchor's frequency cell and the index holds its anchor's frame, so
    the distinct (frame, cell) pairs are peaks of the original, at the resolution of a
    frame and a cell (the cell's centre is used).

    Examples
    --------
    >>> import numpy as np
    >>> p = Peaks(t=np.array([0.0, 5.0, 12.0]), lf=np.array([12.2, 15.0, 10.0]),
    ...           strength=np.ones(3), frames=20)
    >>> h, t = hash_peaks(p)
    >>> q = anchor_peaks(h, np.rint(t), 20)
    >>> q.t.tolist(), q.lf.tolist()
    ([0.0], [12.25])
    """
    p = params or LandmarkParams()
    h = np.asarray(hashes, dtype=np.uint32)
    t = np.asarray(frames, dtype=np.float64)
    if h.size == 0:
        empty = np.zeros(0)
        return Peaks(empty, empty, empty, int(n_frames))
    cell = hash_fields(h)["anchor"].astype(np.float64)
    pairs = np.unique(np.stack([t, cell], axis=1), axis=0)
    return Peaks(pairs[:, 0], (pairs[:, 1] + 0.5) * p.freq_cell, np.ones(len(pairs)), int(n_frames))
