"""Real matches for the report tests: a work, an attacked copy, the library's identification."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from chain.crypto.sm3 import sm3_file
from forensics.evidence import Evidence
from forensics.library import Library
from forensics.report import CaseInfo, ReportInput, WorkInfo
from forensics.types import Match, Registration
from tests.forensics.audio.conftest import synth_music, write_wav
from tests.forensics.conftest import _photo, rotate, screenshot, write_image

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


@dataclass(frozen=True)
class Found:
    """A registered work, its attacked copy and the match the library found."""

    work_file: Path
    copy_file: Path
    registration: Registration
    match: Match

    @property
    def evidence(self) -> Evidence:
        assert self.match.evidence is not None
        return self.match.evidence

    def report_input(self, **kw: object) -> ReportInput:
        case = CaseInfo(
            case_id="17",
            page_url=f"http://127.0.0.1:1/page?q={HOSTILE}",
            media_url="http://127.0.0.1:1/media/" + self.copy_file.name,
            final_url="http://127.0.0.1:1/media/" + self.copy_file.name,
            found_at="2026-12-05T06:00:00Z",
            content_sm3=sm3_file(self.copy_file).hex(),
            robots_obeyed=True,
            score=self.match.score,
            threshold=self.match.threshold,
            query_stream=self.match.query_stream or "",
        )
        reg = self.registration
        work = WorkInfo(
            reg.work_id,
            reg.kind,
            reg.registered_at or "",
            reg.content_digest.hex(),
            reg.fingerprint_digest.hex(),
            reg.metadata,
        )
        args: dict[str, object] = {
            "work_file": self.work_file,
            "copy_file": self.copy_file,
            "issuer": "县融媒体中心 <b>",
            "generated_at": "2026-12-05T07:00:00Z",
        }
        args.update(kw)
        return ReportInput(case, work, self.evidence, **args)  # type: ignore[arg-type]


def _found(lib_dir: Path, work: Path, copy: Path, work_id: str, metadata: dict[str, object]) -> Found:
    with Library(lib_dir) as lib:
        reg = lib.register(work, work_id, metadata)
        matches = lib.identify(copy)
    assert matches and matches[0].work_id == work_id, matches
    return Found(work, copy, reg, matches[0])


@pytest.fixture(scope="session")
def image_found(tmp_path_factory: pytest.TempPathFactory) -> Found:
    """A photo and a rotated screenshot of it (found by local features)."""
    d = tmp_path_factory.mktemp("report-image")
    work = write_image(d / "astronaut.png", _photo("astronaut"))
    copy = write_image(d / "copy<1>.jpg", screenshot(rotate(_photo("astronaut"), 15), 0.5), 80)
    return _found(d / "lib", work, copy, "astronaut", {"title": HOSTILE, "owner": "融信 county"})


@pytest.fixture(scope="session")
def audio_found(tmp_path_factory: pytest.TempPathFactory) -> Found:
    """A 30-s song; the copy plays 6 s of other music, 12 s of the song (quieter), 6 s of other music."""
    d = tmp_path_factory.mktemp("report-audio")
    song = synth_music(7, 30.0)
    work = write_wav(d / "song.wav", song)
    other = synth_music(99, 12.0)
    sr = 8000
    copy = np.concatenate([other[: 6 * sr], 0.7 * song[8 * sr : 20 * sr], other[6 * sr :]])
    copy_file = write_wav(d / "copy.wav", copy)
    return _found(d / "lib", work, copy_file, "song", {"title": "歌曲"})
