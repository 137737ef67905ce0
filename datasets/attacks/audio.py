"""Audio attacks: excerpts, noise, codecs, filters, time and pitch changes, mixing.

``apply(audio, chain, seed)`` returns the attacked :class:`Audio` and its
:class:`~datasets.attacks.Truth`, whose ``time_map`` maps query seconds to source
seconds. Transforms (name: parameters):

- ``excerpt``: start (s), length (s)
- ``noise``: snr_db −20–80, color "white" | "pink" | "background" (needs ``backgrounds=``),
  background (index), offset (s), pattern (seed of the noise)
- ``reencode``: codec "mp3" | "aac" | "opus", bitrate (kbit/s), via ffmpeg
- ``resample``: rate 4000–96000 Hz (sox)
- ``bandpass``: low, high (Hz); the telephone band 300–3400 by default (sox ``sinc``)
- ``eq``: freq (Hz), gain_db, q (sox ``equalizer``)
- ``reverb``: t60 (s), wet 0–1: convolution with a synthetic exponentially decaying noise
  impulse response reaching −60 dB at ``t60``; pattern seeds the response
- ``speed``: factor 0.5–2 (tempo and pitch together; sox ``speed``)
- ``tempo``: factor 0.5–2 (tempo only; sox ``tempo``)
- ``pitch``: cents −1200–1200 (pitch only; sox ``pitch``)
- ``gain``: db −40–20 (clipped to [−1, 1])
- ``compress``: threshold_db −60–0, ratio 1–20 (sox ``compand``)
- ``mix``: mode "voiceover" | "track" (needs ``voices=`` / ``tracks=``), level_db of the
  added sound relative to the source's level, offset (s) into the added sound

Levels (``snr_db``, ``level_db``, the wet part of ``reverb``) are RMS about the mean: a DC
offset in a recording is not sound and does not count as signal.

sox runs with ``-R -D`` (repeatable, no dither); ffmpeg encoders run single-threaded and
bit-exact, so the same chain and seed give the same samples.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from datasets.attacks import (
    ChainSpec,
    Truth,
    check_choice,
    check_range,
    identity_map,
    map_excerpt,
    map_speed,
    normalize_chain,
    np_rng,
    resolve,
    step_rng,
)
from datasets.errors import AttackError, DatasetsError
from datasets.media import decode_audio
from datasets.tools import FFMPEG_BITEXACT, ffmpeg, probe, sox

CODECS = {
    "mp3": ("libmp3lame", ".mp3", (32, 320)),
    "aac": ("aac", ".m4a", (24, 320)),
    "opus": ("libopus", ".ogg", (6, 256)),
}


@dataclass
class Audio:
    """Float samples with their rate.

    Attributes
    ----------
    samples : ndarray
        float32, shape ``(n, channels)``, values in [-1, 1].
    rate : int
        Samples per second.
    """

    samples: NDArray[np.float32]
    rate: int

    @property
    def duration(self) -> float:
        """Seconds."""
        return float(self.samples.shape[0]) / self.rate

    def save(self, path: str | Path, subtype: str = "PCM_16") -> Path:
        """Write a WAV or FLAC file (chosen by suffix); deterministic for the same samples."""
        p = Path(path)
        fmt = {".wav": "WAV", ".flac": "FLAC"}.get(p.suffix.lower())
        if fmt is None:
            raise AttackError(f"save audio as .wav or .flac, not {p.suffix!r}")
        sf.write(p, np.clip(self.samples, -1.0, 1.0), self.rate, subtype=subtype, format=fmt)
        return p


AudioInput = str | Path | Audio | tuple[NDArray[np.floating[Any]], int]


def load(audio: AudioInput, channels: int | None = None) -> Audio:
    """Read any audio file ffmpeg decodes (at its own rate, at most 2 channels), or wrap an array.

    Raises
    ------
    AttackError
        If the input is unreadable, empty, or of the wrong shape.
    """
    if isinstance(audio, Audio):
        return audio
    if isinstance(audio, tuple):
        data, rate = audio
        arr = np.asarray(data, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] == 0 or not (1 <= arr.shape[1] <= 8) or int(rate) <= 0:
            raise AttackError(
                f"audio array must be (n,) or (n, channels) with n > 0 and a positive rate, got {arr.shape}"
            )
        return Audio(np.ascontiguousarray(arr), int(rate))
    try:
        info = probe(Path(audio))
        ch = channels or max(1, min(2, info.channels))
        if not info.has_audio:
            raise AttackError(f"{audio} has no audio stream")
        data = decode_audio(Path(audio), rate=info.sample_rate, channels=ch)
    except AttackError:
        raise
    except DatasetsError as exc:
        raise AttackError(f"cannot read audio {audio}: {exc}") from None
    return Audio(data.reshape(-1, ch).astype(np.float32), info.sample_rate)


def _rms(x: NDArray[np.float32]) -> float:
    """Level of the sound in ``x``: the RMS about each channel's mean.

    A constant offset (some recordings carry one: six of the audio benchmark's 53 tracks
    hold 13-53 % of their power at 0 Hz) is not sound; counted as signal it made "SNR 0 dB"
    up to 3.3 dB harsher, and a mix level that much louder, than asked.
    """
    if not x.size:
        return 0.0
    d = x.astype(np.float64)
    d = d - d.mean(axis=0)
    return float(np.sqrt(np.mean(np.square(d))))


def _fit(other: Audio, like: Audio, offset: float) -> NDArray[np.float32]:
    """``other`` resampled to ``like``'s rate and channels, starting at ``offset`` s, looped to its length."""
    o = other if other.rate == like.rate else _resample(other, like.rate)
    mono = o.samples.mean(axis=1)
    start = int(offset * like.rate) % max(1, mono.size)
    reps = int(np.ceil((start + like.samples.shape[0]) / mono.size)) + 1
    seg = np.tile(mono, reps)[start : start + like.samples.shape[0]]
    return np.repeat(seg[:, None], like.samples.shape[1], axis=1).astype(np.float32)


def _sox(a: Audio, effects: Sequence[str], what: str, out_rate: int | None = None) -> Audio:
    with tempfile.TemporaryDirectory(prefix="rx-sox-") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(src, a.samples, a.rate, subtype="FLOAT")
        rate = ["-r", str(out_rate)] if out_rate else []
        sox([src, "-e", "floating-point", "-b", "32", *rate, dst, *effects], what=what)
        data, rate_out = sf.read(dst, dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise AttackError(f"{what}: produced no samples")
    return Audio(np.ascontiguousarray(data), int(rate_out))


def _resample(a: Audio, rate: int) -> Audio:
    return _sox(a, ["rate", "-h", str(rate)], f"resample to {rate} Hz", out_rate=rate)


TimeMap = list[dict[str, float]]
Transform = Callable[
    [Audio, dict[str, Any], np.random.Generator, TimeMap, dict[str, Any]], tuple[Audio, TimeMap]
]


def _excerpt(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    start = check_range("excerpt", "start", p["start"], 0, a.duration)
    length = check_range("excerpt", "length", p["length"], 0.05, 1e6)
    i0 = round(start * a.rate)
    i1 = min(a.samples.shape[0], i0 + round(length * a.rate))
    if i1 - i0 < 1:
        raise AttackError(f"excerpt: start {start} s leaves no samples in a {a.duration:.2f} s signal")
    return Audio(a.samples[i0:i1].copy(), a.rate), map_excerpt(tm, i0 / a.rate, (i1 - i0) / a.rate)


def _pink(n: int, channels: int, g: np.random.Generator) -> NDArray[np.float32]:
    white = g.standard_normal((n, channels))
    spec = np.fft.rfft(white, axis=0)
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    pink = np.fft.irfft(spec / np.sqrt(f)[:, None], n=n, axis=0)
    return pink.astype(np.float32)


def _noise(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    snr = check_range("noise", "snr_db", p["snr_db"], -20, 80)
    g = np.random.default_rng(int(check_range("noise", "pattern", p["pattern"], 0, 2**32)))
    color = check_choice("noise", "color", p["color"], ("white", "pink", "background"))
    n, ch = a.samples.shape
    if color == "white":
        noise = g.standard_normal((n, ch)).astype(np.float32)
    elif color == "pink":
        noise = _pink(n, ch, g)
    else:
        bgs = res.get("backgrounds") or []
        if not bgs:
            raise AttackError(
                "noise: color 'background' needs backgrounds=[paths] (e.g. speech or distractor audio)"
            )
        idx = int(p.get("background", -1))
        if not 0 <= idx < len(bgs):
            raise AttackError(f"noise: background index {idx} is outside the {len(bgs)} backgrounds given")
        p["background_id"] = str(bgs[idx])
        noise = _fit(load(bgs[idx]), a, float(p.get("offset", 0.0)))
    sig, nr = _rms(a.samples), _rms(noise)
    if nr == 0 or sig == 0:
        return a, tm
    scaled = noise * (sig / nr / (10 ** (snr / 20)))
    return Audio((a.samples + scaled).astype(np.float32), a.rate), tm


def _reencode(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    codec = check_choice("reencode", "codec", p["codec"], tuple(CODECS))
    encoder, suffix, (lo, hi) = CODECS[codec]
    kbps = int(check_range("reencode", "bitrate", p["bitrate"], lo, hi))
    ch = a.samples.shape[1]
    with tempfile.TemporaryDirectory(prefix="rx-enc-") as tmp:
        src, enc = Path(tmp) / "in.wav", Path(tmp) / f"enc{suffix}"
        sf.write(src, np.clip(a.samples, -1, 1), a.rate, subtype="FLOAT")
        rate_args = ["-ar", "48000"] if codec == "opus" else []
        ffmpeg(
            ["-i", src, "-c:a", encoder, "-b:a", f"{kbps}k", *rate_args, *FFMPEG_BITEXACT, enc],
            what=f"encode {codec}",
        )
        data = decode_audio(enc, rate=a.rate, channels=ch).reshape(-1, ch)
    return Audio(data.astype(np.float32), a.rate), tm


def _resample_op(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    return _resample(a, int(check_range("resample", "rate", p["rate"], 4000, 96000))), tm


def _bandpass(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    lo = check_range("bandpass", "low", p["low"], 10, a.rate / 2)
    hi = check_range("bandpass", "high", p["high"], lo + 10, a.rate / 2)
    return _sox(a, ["sinc", f"{lo:g}-{min(hi, a.rate / 2 - 1):g}"], "band-pass"), tm


def _eq(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    f = check_range("eq", "freq", p["freq"], 20, a.rate / 2 - 1)
    gain = check_range("eq", "gain_db", p["gain_db"], -30, 30)
    q = check_range("eq", "q", p["q"], 0.1, 10)
    return _sox(a, ["equalizer", f"{f:g}", f"{q:g}q", f"{gain:g}"], "equalizer"), tm


def _reverb(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    t60 = check_range("reverb", "t60", p["t60"], 0.05, 10)
    wet = check_range("reverb", "wet", p["wet"], 0, 1)
    g = np.random.default_rng(int(check_range("reverb", "pattern", p["pattern"], 0, 2**32)))
    n_ir = max(1, int(t60 * a.rate))
    t = np.arange(n_ir) / a.rate
    ir = g.standard_normal(n_ir) * np.exp(-6.907755 * t / t60)  # ln(1000): -60 dB at t60
    ir[0] = 1.0
    ir /= np.sqrt(np.sum(ir**2))
    n = a.samples.shape[0]
    size = 1 << int(np.ceil(np.log2(n + n_ir)))
    spec = np.fft.rfft(a.samples, size, axis=0) * np.fft.rfft(ir, size)[:, None]
    wet_sig = np.fft.irfft(spec, size, axis=0)[:n]
    out = (1 - wet) * a.samples + wet * wet_sig * (
        _rms(a.samples) / max(_rms(wet_sig.astype(np.float32)), 1e-12)
    )
    return Audio(out.astype(np.float32), a.rate), tm


def _speed(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    f = check_range("speed", "factor", p["factor"], 0.5, 2)
    return _sox(a, ["speed", f"{f:g}", "rate", "-h", str(a.rate)], "speed change"), map_speed(tm, f)


def _tempo(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    f = check_range("tempo", "factor", p["factor"], 0.5, 2)
    return _sox(a, ["tempo", "-m", f"{f:g}"], "tempo change"), map_speed(tm, f)


def _pitch(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    cents = check_range("pitch", "cents", p["cents"], -1200, 1200)
    return _sox(a, ["pitch", f"{cents:g}"], "pitch change"), tm


def _gain(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    db = check_range("gain", "db", p["db"], -60, 30)
    return Audio(np.clip(a.samples * np.float32(10 ** (db / 20)), -1, 1).astype(np.float32), a.rate), tm


def _compress(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    thr = check_range("compress", "threshold_db", p["threshold_db"], -60, 0)
    ratio = check_range("compress", "ratio", p["ratio"], 1, 50)
    out0 = thr - thr / ratio
    return _sox(
        a, ["compand", "0.005,0.1", f"6:-90,-90,{thr:g},{thr:g},0,{out0:.2f}", "0"], "dynamic compression"
    ), tm


def _mix(
    a: Audio, p: dict[str, Any], g: np.random.Generator, tm: TimeMap, res: dict[str, Any]
) -> tuple[Audio, TimeMap]:
    mode = check_choice("mix", "mode", p["mode"], ("voiceover", "track"))
    level = check_range("mix", "level_db", p["level_db"], -40, 20)
    pool = res.get("voices" if mode == "voiceover" else "tracks") or []
    if not pool:
        raise AttackError(f"mix: mode {mode!r} needs {'voices' if mode == 'voiceover' else 'tracks'}=[paths]")
    idx = int(p.get("other", -1))
    if not 0 <= idx < len(pool):
        raise AttackError(f"mix: index {idx} is outside the {len(pool)} sounds given")
    p["other_id"] = str(pool[idx])
    other = _fit(load(pool[idx]), a, check_range("mix", "offset", p["offset"], 0, 1e6))
    sig, orms = _rms(a.samples), _rms(other)
    if orms > 0 and sig > 0:
        other = other * (sig / orms * 10 ** (level / 20))
    out = a.samples + other
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 1:
        out = out / peak
    return Audio(out.astype(np.float32), a.rate), tm


def _u(r: Any, a: float, b: float, nd: int = 3) -> float:
    return round(float(r.uniform(a, b)), nd)


Sampler = Callable[[Any, Audio, dict[str, Any]], dict[str, Any]]


def _excerpt_params(r: Any, a: Audio, res: dict[str, Any]) -> dict[str, Any]:
    length = min(a.duration, _u(r, 5, 20, 2))
    return {"start": round(r.uniform(0, max(0.0, a.duration - length)), 3), "length": length}


def _codec_params(r: Any, a: Audio, res: dict[str, Any]) -> dict[str, Any]:
    codec = r.choice(sorted(CODECS))
    return {
        "codec": codec,
        "bitrate": r.choice(
            {"mp3": [64, 96, 128, 192], "aac": [48, 64, 96, 128], "opus": [16, 24, 32, 64]}[codec]
        ),
    }


def _noise_params(r: Any, a: Audio, res: dict[str, Any]) -> dict[str, Any]:
    colors = ["white", "pink"] + (["background"] if res.get("backgrounds") else [])
    return {
        "snr_db": _u(r, 0, 30, 1),
        "color": r.choice(colors),
        "background": r.randrange(max(1, len(res.get("backgrounds") or []))),
        "offset": _u(r, 0, 30, 2),
        "pattern": r.randrange(2**31),
    }


def _mix_params(r: Any, a: Audio, res: dict[str, Any]) -> dict[str, Any]:
    modes = [m for m, k in (("voiceover", "voices"), ("track", "tracks")) if res.get(k)] or ["voiceover"]
    mode = r.choice(modes)
    n = len(res.get("voices" if mode == "voiceover" else "tracks") or [])
    return {
        "mode": mode,
        "level_db": _u(r, -12, 0, 1),
        "other": r.randrange(max(1, n)),
        "offset": _u(r, 0, 30, 2),
    }


OPS: dict[str, tuple[Sampler, Transform]] = {
    "excerpt": (_excerpt_params, _excerpt),
    "noise": (_noise_params, _noise),
    "reencode": (_codec_params, _reencode),
    "resample": (lambda r, a, res: {"rate": r.choice([8000, 11025, 16000, 22050, 32000])}, _resample_op),
    "bandpass": (lambda r, a, res: {"low": 300, "high": 3400}, _bandpass),
    "eq": (
        lambda r, a, res: {
            "freq": round(r.uniform(100, min(8000, a.rate / 2 - 100))),
            "gain_db": _u(r, -12, 12, 1),
            "q": _u(r, 0.5, 2, 2),
        },
        _eq,
    ),
    "reverb": (
        lambda r, a, res: {
            "t60": _u(r, 0.2, 2.0, 2),
            "wet": _u(r, 0.2, 0.6, 2),
            "pattern": r.randrange(2**31),
        },
        _reverb,
    ),
    "speed": (lambda r, a, res: {"factor": _u(r, 0.9, 1.1)}, _speed),
    "tempo": (lambda r, a, res: {"factor": _u(r, 0.9, 1.1)}, _tempo),
    "pitch": (lambda r, a, res: {"cents": _u(r, -200, 200, 1)}, _pitch),
    "gain": (lambda r, a, res: {"db": _u(r, -12, 6, 1)}, _gain),
    "compress": (lambda r, a, res: {"threshold_db": _u(r, -30, -10, 1), "ratio": _u(r, 2, 8, 1)}, _compress),
    "mix": (_mix_params, _mix),
}

_EXTRA = {"noise": ["background_id"], "mix": ["other_id"]}


def apply(
    audio: AudioInput,
    chain: ChainSpec | str,
    seed: int,
    *,
    source_id: str | None = None,
    backgrounds: Sequence[str | Path] = (),
    voices: Sequence[str | Path] = (),
    tracks: Sequence[str | Path] = (),
) -> tuple[Audio, Truth]:
    """Apply an attack chain to audio.

    Parameters
    ----------
    audio : path, Audio or (samples, rate)
        The source.
    chain : chain spec
        See :func:`datasets.attacks.normalize_chain`; names are the keys of :data:`OPS`.
    seed : int
        Seeds every parameter not given and all noise.
    source_id : str, optional
        Manifest id recorded in the truth.
    backgrounds, voices, tracks : sequences of paths
        Real sounds for ``noise`` (color "background") and ``mix`` (voiceover, track).

    Returns
    -------
    (Audio, Truth)

    Raises
    ------
    AttackError
        On unknown transforms or parameters, values out of range, unreadable input, or a
        transform that needs sounds that were not given.

    Examples
    --------
    >>> t = np.arange(8000 * 3) / 8000
    >>> tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    >>> out, truth = apply((tone, 8000), [("excerpt", {"start": 1.0, "length": 1.5}), "gain"], seed=3)
    >>> round(out.duration, 3), truth.source_time(0.5)
    (1.5, 1.5)
    """
    a = load(audio)
    steps = normalize_chain(chain)
    if not steps:
        raise AttackError("empty attack chain; name at least one transform")
    res: dict[str, Any] = {"backgrounds": list(backgrounds), "voices": list(voices), "tracks": list(tracks)}
    tm = identity_map(a.duration)
    resolved: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        if step.op not in OPS:
            raise AttackError(f"unknown audio transform {step.op!r}; known: {', '.join(sorted(OPS))}")
        sampler, fn = OPS[step.op]
        defaults = sampler(step_rng(seed, i, step.op), a, res)
        params = resolve(step.op, step.params, defaults, [*defaults, *_EXTRA.get(step.op, [])])
        a, tm = fn(a, params, np_rng(seed, i, step.op), tm, res)
        resolved.append({"op": step.op, "params": params})
    out = {"duration": round(a.duration, 6), "rate": a.rate, "channels": int(a.samples.shape[1])}
    return a, Truth("audio", source_id, seed, resolved, tm, out)


def sample_chain(rng: Any, length: int = 1, *, with_excerpt: bool = True) -> list[str]:
    """Transform names for one query: an ``excerpt`` first (if asked), then ``length`` others."""
    others = sorted(k for k in OPS if k != "excerpt")
    return (["excerpt"] if with_excerpt else []) + list(rng.sample(others, length))
