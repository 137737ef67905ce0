"""Fixtures for the audio tests: seeded synthetic music written as files, and an index."""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from forensics.audio.index import AudioIndex

SR = 8000


def synth_notes(
    seed: int,
    seconds: float,
    sr: int = SR,
    *,
    lengths: tuple[float, float] = (0.1, 0.4),
    decay: tuple[float, float] = (2.0, 8.0),
    attack: float = 200.0,
    voices: int = 3,
    lowest: float = 220.0,
    semitones: int = 30,
    harmonics: tuple[tuple[int, float], ...] = ((1, 1.0), (2, 0.5), (3, 0.25)),
) -> NDArray[np.float32]:
    """Seeded notes: ``lengths`` s long, up to ``voices`` at once, fundamentals on the
    ``semitones`` above ``lowest`` Hz, the given harmonics, plucked (decaying) envelopes."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.zeros(n + sr, dtype=np.float64)
    t = 0.0
    while t < seconds:
        dur = float(rng.uniform(*lengths))
        m = int(dur * sr)
        tt = np.arange(m) / sr
        env = np.exp(-tt * rng.uniform(*decay)) * np.minimum(1.0, tt * attack)
        for _ in range(int(rng.integers(1, voices + 1))):
            f0 = lowest * 2 ** (int(rng.integers(0, semitones)) / 12)
            for h, amp in harmonics:
                if f0 * h < sr / 2 - 200:
                    out[int(t * sr) : int(t * sr) + m] += amp * env * np.sin(2 * np.pi * f0 * h * tt)
        t += dur
    x = out[:n]
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def synth_music(seed: int, seconds: float, sr: int = SR) -> NDArray[np.float32]:
    """A seeded melody with chords: notes of 0.1–0.4 s from 220 Hz up, three harmonics each."""
    return synth_notes(seed, seconds, sr)


def write_wav(path: Path, x: NDArray[np.floating], sr: int = SR, channels: int = 1) -> Path:
    """16-bit PCM WAV (duplicating mono into ``channels``)."""
    data = np.clip(np.asarray(x, dtype=np.float64), -1, 1)
    pcm = (data * 32767).astype("<i2")
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; fail the test with its message if it fails."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        pytest.fail("ffmpeg is required for the audio tests: apt-get install ffmpeg")
    proc = subprocess.run([exe, "-v", "error", "-y", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"ffmpeg {' '.join(args)} failed: {proc.stderr}")


@pytest.fixture(scope="session")
def songs() -> dict[str, NDArray[np.float32]]:
    """Three 40-s synthetic songs at 8 kHz, keyed by name."""
    return {f"song-{i}": synth_music(100 + i, 40.0) for i in range(3)}


@pytest.fixture(scope="session")
def song_files(
    tmp_path_factory: pytest.TempPathFactory, songs: dict[str, NDArray[np.float32]]
) -> dict[str, Path]:
    """The songs as WAV files."""
    d = tmp_path_factory.mktemp("songs")
    return {name: write_wav(d / f"{name}.wav", x) for name, x in songs.items()}


@pytest.fixture(scope="session")
def shared_index(
    tmp_path_factory: pytest.TempPathFactory, song_files: dict[str, Path]
) -> Iterator[AudioIndex]:
    """An index holding the three songs; tests must not change it."""
    index = AudioIndex(tmp_path_factory.mktemp("shared-index"))
    for name, path in song_files.items():
        index.add(name, path)
    yield index
    index.close()


@pytest.fixture
def clip(tmp_path: Path) -> Callable[..., Path]:
    """Write a query clip: ``clip(x, name="q.wav", sr=8000)``."""

    def make(x: NDArray[np.floating], name: str = "q.wav", sr: int = SR, channels: int = 1) -> Path:
        return write_wav(tmp_path / name, x, sr, channels)

    return make
