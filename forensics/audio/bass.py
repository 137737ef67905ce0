"""The bass layer: a second fingerprint of the band below 300 Hz, at a quarter of the rate.

The main fingerprint (:class:`~forensics.audio.landmarks.LandmarkParams`) picks its
peaks between 250 and 3,500 Hz, where speech and most instruments carry their detail.
Much music keeps most of its energy lower, in the bass line and the kick drum. Mixed
under a voice-over or another track at a level set on the whole signal, such a work can
sit 5-17 dB *below* the other sound between 250 and 3,500 Hz while still standing 10-35 dB
*above* it below 120 Hz: its main-band peaks are masked, its bass peaks are not.

The bass layer fingerprints that band on its own: the 8 kHz signal is low-passed and
decimated to 2 kHz (:class:`Decimator`), and peaks are picked between 30 and 300 Hz on
512-ms frames every 64 ms — enough frequency resolution (2 Hz) to tell bass notes
apart. It has its own index, thresholds and calibration; a query is matched against both
layers, and a work is reported when either layer's verification clears that layer's
threshold (:class:`forensics.audio.index.AudioIndex`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from forensics.audio.landmarks import LandmarkParams

__all__ = ["BASS_PARAMS", "DEFAULT_BASS_THRESHOLDS", "DEFAULT_JOINT_THRESHOLDS", "Decimator", "bass_samples"]

BASS_PARAMS = LandmarkParams(
    sample_rate=2000,
    n_fft=1024,
    hop=128,
    fmin=30.0,
    fmax=300.0,
    peak_freq_radius=6,
    whiten_bins=31,
    peaks_per_second=6,
    query_peaks_per_second=12,
    fan_out=3,
    bands=2,
    dt_max=31.0,
)
"""Parameters of the bass layer (frames of 512 ms every 64 ms at 2 kHz)."""

DEFAULT_BASS_THRESHOLDS: dict[float, float] = {3.0: 4.222, 5.0: 5.196, 10.0: 8.734}
"""Score the bass layer's verification needs, per query window length in seconds (as for
the main layer's ``DEFAULT_THRESHOLDS``): one more than the highest bass score of the same
unrelated calibration windows (5,940 / 5,947 / 4,581 at 3 / 5 / 10 s) against the
benchmark's catalogue (``bench/audio_robustness.py``; docs/history/audio.md, a bass
layer beside the main one, 2026-12-04).
:meth:`forensics.audio.index.AudioIndex.calibrate` recalibrates both layers."""

DEFAULT_JOINT_THRESHOLDS: dict[float, float] = {3.0: 7.534, 5.0: 9.022, 10.0: 11.935}
"""What the bass and main significances of one bass-layer candidate, verified at the same
alignment, need in sum (the ``both`` rule of
:meth:`forensics.audio.index.AudioIndex.identify_peaks`), per query window length in
seconds: one more than the highest sum on the same calibration windows as
``DEFAULT_BASS_THRESHOLDS`` (docs/history/audio.md and docs/benchmarks.md, Audio, 2026-12-04).
:meth:`~forensics.audio.index.AudioIndex.calibrate` sets them."""
_FACTOR = 4
_TAPS = 63


def lowpass_taps(n: int, cutoff: float) -> npt.NDArray[np.float64]:
    """A linear-phase low-pass FIR filter: a Hamming-windowed sinc, unit gain at DC.

    ``cutoff`` is relative to the Nyquist frequency (0 < cutoff < 1); ``n`` is odd. The
    same filter as ``scipy.signal.firwin(n, cutoff)`` (tested), without importing
    ``scipy.signal``, which costs more than a second at start-up.

    Examples
    --------
    >>> h = lowpass_taps(5, 0.5)
    >>> round(float(h.sum()), 12), bool(np.allclose(h, h[::-1]))
    (1.0, True)
    """
    if n % 2 != 1 or not 0.0 < cutoff < 1.0:
        raise ValueError("a low-pass filter needs an odd length and 0 < cutoff < 1")
    m = np.arange(n) - (n - 1) / 2.0
    h = cutoff * np.sinc(cutoff * m) * np.hamming(n)
    return np.asarray(h / h.sum(), dtype=np.float64)


class Decimator:
    """Low-pass and keep every fourth sample: 8 kHz blocks in, 2 kHz blocks out, streaming.

    The filter state and the phase carry over from block to block, so feeding a signal
    in pieces gives the same output as feeding it whole.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    >>> d = Decimator()
    >>> parts = np.concatenate([d.feed(x[:1001]), d.feed(x[1001:])])
    >>> whole = Decimator().feed(x)
    >>> len(whole), bool(np.allclose(parts, whole, atol=1e-6))
    (2000, True)
    """

    def __init__(self) -> None:
        # cut-off at 0.8 of the output Nyquist (800 Hz), far above the layer's 300 Hz
        self._taps = lowpass_taps(_TAPS, 0.8 / _FACTOR)
        self._history = np.zeros(_TAPS - 1)  # the last inputs, for the next block's first outputs
        self._skip = 0

    def feed(self, block: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Filter ``block`` (8 kHz, mono) and return its 2 kHz samples."""
        x = np.asarray(block, dtype=np.float64).reshape(-1)
        if x.size == 0:
            return np.zeros(0, dtype=np.float32)
        full = np.concatenate([self._history, x])
        y = np.convolve(full, self._taps, mode="valid")  # y[i] = Σ_k taps[k] · x[i − k]
        self._history = full[-(_TAPS - 1) :]
        out: npt.NDArray[np.float32] = np.asarray(y[self._skip :: _FACTOR], dtype=np.float32)
        self._skip = (self._skip - x.size) % _FACTOR
        return out


def bass_samples(samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The 2 kHz signal the bass layer analyses, from 8 kHz ``samples`` (a whole clip)."""
    return Decimator().feed(samples)
