"""Fixtures: a work library of real photos and synthetic music, their attacked copies as web media."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from datasets.attacks import audio as audio_attacks
from datasets.attacks import image as image_attacks
from forensics.library import Library
from tests.forensics.audio.conftest import synth_music, write_wav
from tests.forensics.conftest import _photo

from .site import Site, serve

WORKS = {"astronaut": "astronaut", "coffee": "coffee", "chelsea": "chelsea"}


def _encoded(img: object, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=80) if fmt == "JPEG" else img.save(buf, format=fmt)  # type: ignore[attr-defined]
    return buf.getvalue()


@pytest.fixture(scope="session")
def scan_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library holding three photos and one 30-s song."""
    d = tmp_path_factory.mktemp("scan-lib")
    lib = Library(d / "lib")
    try:
        for work_id, name in WORKS.items():
            lib.register(_photo(name), work_id)
        song = write_wav(d / "song.wav", synth_music(7, 30.0))
        lib.register(song, "song")
    finally:
        lib.close()
    return d / "lib"


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory, scan_library: Path) -> dict[str, tuple[str, bytes]]:
    """Attacked copies of the works, keyed by the path the site serves them under."""
    a, _ = image_attacks.apply(_photo("astronaut"), "jpeg", seed=1)
    b, _ = image_attacks.apply(_photo("coffee"), "resize", seed=2)
    c, _ = image_attacks.apply(_photo("chelsea"), "jpeg", seed=3)
    d, _ = image_attacks.apply(_photo("astronaut"), "jpeg", seed=4)
    decoy, _ = image_attacks.apply(_photo("rocket"), "jpeg", seed=5)
    src = tmp_path_factory.mktemp("song-src") / "song.wav"
    write_wav(src, synth_music(7, 30.0))
    song, _ = audio_attacks.apply(src, [{"op": "excerpt", "start": 5.0, "length": 12.0}, "gain"], seed=6)
    wav = tmp_path_factory.mktemp("song-out") / "copy.wav"
    song.save(wav)
    return {
        "/img/a.jpg": ("image/jpeg", _encoded(a, "JPEG")),
        "/img/b.png": ("text/html", _encoded(b, "PNG")),  # lying content type
        "/img/c.jpg": ("image/jpeg", _encoded(c, "JPEG")),
        "/private/d.jpg": ("image/jpeg", _encoded(d, "JPEG")),
        "/img/decoy.jpg": ("image/jpeg", _encoded(decoy, "JPEG")),
        "/media/song.wav": ("application/octet-stream", wav.read_bytes()),
    }


@pytest.fixture
def site(planted: dict[str, tuple[str, bytes]]) -> Iterator[Site]:
    """The hostile site, fresh (its log and its 429 state) for each test."""
    with serve(planted) as s:
        yield s
