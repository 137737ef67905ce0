"""Real video for the video index tests, built once per run from the smoke corpus.

Programmes: the three longest real camera clips of the smoke corpus (14 s, 10 s and 7.6 s),
scaled to 320 pixels wide and muxed with 30-s-or-longer excerpts of real music, so that
picture and sound can be tested apart. Unrelated video: the corpus's shorter real clip and
its assembled slideshows (photos never used in the programmes).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from datasets.errors import SmokeCorpusError
from datasets.manifest import Manifest
from datasets.smoke import ensure


def ffmpeg(*args: str | Path) -> None:
    """Run ffmpeg quietly; fail the test with its message if it fails."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        pytest.fail("ffmpeg is required for the video tests: apt-get install ffmpeg")
    proc = subprocess.run([exe, "-v", "error", "-y", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"ffmpeg {' '.join(map(str, args))} failed: {proc.stderr}")


@dataclass(frozen=True)
class Media:
    """Programmes (name → file, with sound), their durations, the music used, unrelated videos."""

    programmes: dict[str, Path]
    durations: dict[str, float]
    songs: dict[str, Path]
    unrelated: list[Path]
    other_song: Path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    """Three programmes with music and four unrelated videos (see the module docstring)."""
    try:
        root = ensure()
    except SmokeCorpusError as exc:
        pytest.fail(
            f"the smoke corpus of real media is required and could not be built: {exc}", pytrace=False
        )
    man = Manifest.open(root)
    real = sorted(
        (
            e
            for e in man.select(collection="video", role="original")
            if not e.assembled and (e.duration or 0) >= 5
        ),
        key=lambda e: -(e.duration or 0),
    )
    assembled = [e for e in man.select(collection="video", role="original") if e.assembled]
    music = [e for e in man.select(collection="music", role="original") if (e.duration or 0) >= 60]
    out = tmp_path_factory.mktemp("video-media")
    programmes: dict[str, Path] = {}
    durations: dict[str, float] = {}
    songs: dict[str, Path] = {}
    for i, (name, entry) in enumerate(zip(("alpha", "beta", "gamma"), real[:3], strict=True)):
        song = root / music[i].path
        dest = out / f"{name}.mp4"
        ffmpeg(
            "-i", root / entry.path, "-ss", "20", "-i", song,
            "-map", "0:v:0", "-map", "1:a:0", "-vf", "scale=320:-2,fps=25", "-c:v", "libx264",
            "-preset", "veryfast", "-crf", "20", "-c:a", "aac", "-t", f"{entry.duration:.3f}", dest,
        )  # fmt: skip
        programmes[name] = dest
        durations[name] = float(entry.duration or 0)
        songs[name] = song
    unrelated = [root / e.path for e in real[3:4]] + [root / e.path for e in assembled]
    return Media(programmes, durations, songs, unrelated, root / music[3].path)


def excerpt(
    src: Path, dest: Path, start: float, length: float, *vf: str, extra: tuple[str, ...] = ()
) -> Path:
    """``length`` s of ``src`` from ``start``, with the video filters ``vf``, re-encoded (sound kept)."""
    filters = ["-vf", ",".join(vf)] if vf else []
    ffmpeg("-ss", f"{start}", "-t", f"{length}", "-i", src, *filters, *extra, "-c:v", "libx264",
           "-preset", "veryfast", "-crf", "28", "-c:a", "aac", dest)  # fmt: skip
    return dest
