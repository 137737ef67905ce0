"""Audio attacks: time maps, levels, codecs, determinism and refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datasets.attacks.audio import OPS, Audio, apply, load
from datasets.errors import AttackError
from datasets.manifest import Manifest


@pytest.fixture(scope="module")
def track(smoke: Manifest) -> Audio:
    e = max(smoke.select(collection="music", role="original"), key=lambda e: e.duration or 0)
    a = load(smoke.path(e))
    return Audio(a.samples[: a.rate * 12].copy(), a.rate)


@pytest.fixture(scope="module")
def speech(smoke: Manifest) -> list[Path]:
    return [smoke.path(e) for e in smoke.select(collection="speech")]


def test_excerpt_and_speed_time_maps(track: Audio) -> None:
    out, t = apply(track, [("excerpt", {"start": 2.0, "length": 6.0}), ("speed", {"factor": 1.25})], seed=0)
    assert abs(out.duration - 6.0 / 1.25) < 0.02
    assert t.source_time(0.0) == pytest.approx(2.0)
    assert t.source_time(4.8) == pytest.approx(8.0, abs=1e-3)
    assert t.source_time(5.0) is None
    tempo, t2 = apply(track, [("tempo", {"factor": 0.9})], seed=0)
    assert abs(tempo.duration - track.duration / 0.9) < 0.1
    assert t2.time_map and t2.time_map[0]["query_end"] == pytest.approx(track.duration / 0.9, abs=1e-3)


def test_noise_hits_the_requested_snr(track: Audio, speech: list[Path]) -> None:
    for color in ("white", "pink", "background"):
        out, t = apply(track, [("noise", {"snr_db": 10.0, "color": color})], seed=3, backgrounds=speech)
        noise = out.samples - track.samples
        snr = 10 * np.log10(
            np.mean(track.samples.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2)
        )
        assert snr == pytest.approx(10.0, abs=0.2), color
    assert t.chain[0]["params"]["background_id"].endswith(speech[t.chain[0]["params"]["background"]].name)


def _ac_power(x: np.ndarray) -> float:
    d = x.astype(np.float64)
    return float(np.mean((d - d.mean(axis=0)) ** 2))


def test_levels_ignore_a_dc_offset(track: Audio, speech: list[Path]) -> None:
    # a recording with a constant offset: the offset is not sound, so 0 dB SNR and a mix
    # at -6 dB are measured on the sound alone (they were 3+ dB harsher when it counted)
    biased = Audio((track.samples + 0.4).astype(np.float32), track.rate)
    sound = _ac_power(track.samples)
    out, _ = apply(biased, [("noise", {"snr_db": 0.0, "color": "pink"})], seed=3)
    noise = out.samples - biased.samples
    assert 10 * np.log10(sound / _ac_power(noise)) == pytest.approx(0.0, abs=0.2)
    voice = [("mix", {"mode": "voiceover", "level_db": -6.0, "other": 0})]
    mixed, _ = apply(biased, voice, seed=3, voices=speech)
    assert float(np.max(np.abs(mixed.samples))) <= 1.0
    unscaled, _ = apply(track, voice, seed=3, voices=speech)
    added_clean = unscaled.samples - track.samples
    # the voice added to the biased track has the level it gets on the unbiased one
    peak = float(np.max(np.abs(biased.samples + added_clean)))
    expect = (biased.samples + added_clean) / max(peak, 1.0)
    assert np.allclose(mixed.samples, expect, atol=1e-5)


def test_every_transform_is_deterministic(track: Audio, speech: list[Path]) -> None:
    short = Audio(track.samples[: track.rate * 4].copy(), track.rate)
    for op in OPS:
        a, ta = apply(short, [op], seed=5, backgrounds=speech, voices=speech, tracks=speech)
        b, tb = apply(short, [op], seed=5, backgrounds=speech, voices=speech, tracks=speech)
        assert ta.chain == tb.chain, op
        assert a.rate == b.rate and np.array_equal(a.samples, b.samples), op
        changed = a.samples.shape != short.samples.shape or not np.array_equal(a.samples, short.samples)
        assert changed or op == "excerpt", op


def test_reencode_and_resample(track: Audio) -> None:
    for codec in ("mp3", "aac", "opus"):
        out, _ = apply(track, [("reencode", {"codec": codec, "bitrate": 64})], seed=0)
        assert out.rate == track.rate and abs(out.duration - track.duration) < 0.1, codec
    low, _ = apply(track, [("resample", {"rate": 8000})], seed=0)
    assert low.rate == 8000 and abs(low.duration - track.duration) < 0.01
    tel, _ = apply(track, ["bandpass"], seed=0)
    spec = np.abs(np.fft.rfft(tel.samples[:, 0]))
    freqs = np.fft.rfftfreq(tel.samples.shape[0], 1 / tel.rate)
    orig = np.abs(np.fft.rfft(track.samples[:, 0]))
    assert spec[freqs > 6000].sum() < 0.05 * orig[freqs > 6000].sum()


def test_save_is_deterministic(tmp_path: Path, track: Audio) -> None:
    out, _ = apply(track, ["excerpt", "reverb"], seed=9)
    a, b = out.save(tmp_path / "a.flac"), out.save(tmp_path / "b.flac")
    assert a.read_bytes() == b.read_bytes()
    back = load(a)
    assert back.rate == out.rate and back.samples.shape == out.samples.shape
    with pytest.raises(AttackError, match=r"\.wav or \.flac"):
        out.save(tmp_path / "x.mp3")


@pytest.mark.parametrize(
    ("chain", "kwargs", "message"),
    [
        ("chorus", {}, "unknown audio transform"),
        ([("noise", {"color": "background"})], {}, "needs backgrounds"),
        ([("mix", {"mode": "track"})], {}, "needs tracks"),
        ([("speed", {"factor": 3})], {}, "outside"),
        ([("excerpt", {"start": 99.0, "length": 1})], {}, "outside"),
        ([("reencode", {"codec": "flac"})], {}, "codec must be one of"),
        ([("reencode", {"codec": "mp3", "bitrate": 8})], {}, "outside"),
        ([("gain", {"db": 1, "x": 2})], {}, "unknown parameter"),
    ],
)
def test_bad_chains_are_refused(track: Audio, chain: object, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AttackError, match=message):
        apply(track, chain, seed=0, **kwargs)  # type: ignore[arg-type]


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(AttackError, match="audio array"):
        load((np.zeros((0, 2)), 8000))
    with pytest.raises(AttackError, match="audio array"):
        load((np.zeros(10), 0))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(AttackError, match="cannot read audio"):
        load(bad)


def test_resolved_chain_replays_exactly(track: Audio, speech: list[Path]) -> None:
    short = Audio(track.samples[: track.rate * 5].copy(), track.rate)
    a, t = apply(short, ["noise", "reverb", "mix"], seed=21, backgrounds=speech, voices=speech, tracks=speech)
    b, _ = apply(short, t.chain, seed=0, backgrounds=speech, voices=speech, tracks=speech)
    assert np.array_equal(a.samples, b.samples)
