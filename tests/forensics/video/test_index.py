"""The video index: persistence, calibration, compilations, and fusion with the soundtrack in a library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from forensics.evidence import AudioEvidence, VideoEvidence
from forensics.library import Library
from forensics.video.errors import VideoIndexError
from forensics.video.index import DEFAULT_THRESHOLD, VideoIndex
from tests.forensics.video.conftest import Media, excerpt, ffmpeg


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, media: Media) -> Path:
    """A library holding the three programmes (picture and sound)."""
    directory = tmp_path_factory.mktemp("video-library") / "lib"
    with Library(directory) as lib:
        for name, path in media.programmes.items():
            assert lib.register(path, name, {"owner": "county media center"}).kind == "video"
    return directory


def test_persistence_and_reopening(tmp_path: Path, media: Media) -> None:
    idx = VideoIndex(tmp_path / "idx")
    d1 = idx.add("alpha", media.programmes["alpha"])
    assert len(d1) == 32 and idx.add("alpha", media.programmes["alpha"]) == d1  # replaced, same digest
    idx.add("beta", media.programmes["beta"])
    stats = idx.stats()
    assert stats["works"] == 2 and stats["frames"] > 4 * 20
    clip = excerpt(media.programmes["beta"], tmp_path / "clip.mp4", 2.0, 6.0)
    idx.close()
    for readonly in (True, False):
        with VideoIndex(tmp_path / "idx", readonly=readonly) as again:
            assert again.work_ids() == ["alpha", "beta"]
            (m,) = again.identify(clip)
            assert m.work_id == "beta" and m.kind == "video"
    with VideoIndex(tmp_path / "idx") as writer, VideoIndex(tmp_path / "idx", readonly=True) as reader:
        assert writer.remove("beta") and not writer.remove("beta")
        assert reader.identify(clip) == []  # the reader sees the writer's change
        assert len(list((tmp_path / "idx").glob("seg-*"))) == 1


def test_calibration_sets_and_stores_the_threshold(tmp_path: Path, media: Media) -> None:
    idx = VideoIndex(tmp_path / "idx")
    with pytest.raises(VideoIndexError, match="register the programmes first"):
        idx.calibrate(media.unrelated)
    for name, path in media.programmes.items():
        idx.add(name, path)
    assert idx.threshold == DEFAULT_THRESHOLD
    with pytest.raises(VideoIndexError, match="pairs"):
        idx.calibrate(media.unrelated, fpr_target=1e-4)
    out = idx.calibrate(media.unrelated, fpr_target=0.1)
    assert out["pairs"] == 3 * len(media.unrelated) and out["threshold"] >= 2.0
    assert out["threshold"] >= out["max_unrelated"] + 0.5
    idx.close()
    with VideoIndex(tmp_path / "idx", readonly=True) as again:
        assert again.threshold == out["threshold"] and again.fpr_target == 0.1
        for other in media.unrelated:
            assert again.identify(other) == []  # nothing below the threshold is ever returned


def test_compilation_of_two_works_reports_both_spans(tmp_path: Path, media: Media, library: Path) -> None:
    a = excerpt(media.programmes["alpha"], tmp_path / "a.mp4", 4.0, 6.0, "scale=320:180")
    g = excerpt(media.programmes["gamma"], tmp_path / "g.mp4", 1.0, 5.0, "scale=320:180")
    both = tmp_path / "both.mp4"
    ffmpeg("-i", a, "-i", g, "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-c:v",
           "libx264", "-preset", "veryfast", both)  # fmt: skip
    with Library.open(library, readonly=True) as lib:
        found = {m.work_id: m for m in lib.identify(both)}
    assert set(found) == {"alpha", "gamma"}
    ea, eg = found["alpha"].evidence, found["gamma"].evidence
    assert isinstance(ea, VideoEvidence) and isinstance(eg, VideoEvidence)
    assert ea.found_by == eg.found_by == "picture"  # no sound in the compilation
    assert ea.query_start == pytest.approx(0.0, abs=0.5) and ea.query_end == pytest.approx(6.0, abs=0.5)
    assert ea.ref_start == pytest.approx(4.0, abs=0.5)
    assert eg.query_start == pytest.approx(6.0, abs=0.5) and eg.ref_start == pytest.approx(1.0, abs=0.5)


def test_picture_sound_and_both(tmp_path: Path, media: Media, library: Path) -> None:
    plain = excerpt(media.programmes["alpha"], tmp_path / "plain.mp4", 2.0, 10.0, "scale=320:-2")
    dubbed = excerpt(
        media.programmes["alpha"], tmp_path / "dubbed.mp4", 2.0, 10.0,
        extra=("-i", str(media.other_song), "-map", "0:v", "-map", "1:a", "-shortest"),
    )  # fmt: skip
    blanked = tmp_path / "blanked.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=black:size=320x180:rate=25", "-ss", "2", "-t", "10", "-i",
           media.programmes["alpha"], "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264",
           "-c:a", "aac", blanked)  # fmt: skip
    with Library.open(library, readonly=True) as lib:
        by = {}
        for name, clip in (("plain", plain), ("dubbed", dubbed), ("blanked", blanked)):
            (m, *_) = lib.identify(clip)
            assert m.work_id == "alpha" and m.kind == "video" and m.score >= m.threshold, name
            assert isinstance(m.evidence, VideoEvidence)
            by[name] = m.evidence
            json.dumps(m.to_json())
    assert by["plain"].found_by == "both" and isinstance(by["plain"].sound, AudioEvidence)
    assert by["dubbed"].found_by == "picture" and by["dubbed"].sound is None
    assert by["blanked"].found_by == "sound" and by["blanked"].matched_frames == 0
    for e in by.values():
        assert e.ref_start - e.query_start == pytest.approx(2.0, abs=0.5)


def test_music_works_still_found_in_a_video_soundtrack(tmp_path: Path, media: Media) -> None:
    with Library(tmp_path / "lib") as lib:
        lib.register(media.programmes["beta"], "beta")
        lib.register(media.other_song, "song")
        clip = tmp_path / "clip.mp4"
        pattern = ("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10")
        ffmpeg(*pattern, "-ss", "30", "-t", "10", "-i", media.other_song,
               "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264", clip)  # fmt: skip
        (m,) = lib.identify(clip)
        assert m.work_id == "song" and m.kind == "audio" and m.query_stream == "audio"
        lib.remove("beta")
        assert "beta" not in lib and lib.index("audio").work_ids() == ["song"]  # type: ignore[attr-defined]


def test_failed_soundtrack_registration_leaves_nothing(tmp_path: Path, media: Media) -> None:
    class Broken:
        def add(self, work_id: str, path: Path) -> bytes:
            raise VideoIndexError("audio index full")

    idx = VideoIndex(tmp_path / "idx")
    idx.attach_audio(lambda: Broken())  # type: ignore[arg-type,return-value]
    with pytest.raises(VideoIndexError, match="audio index full"):
        idx.add("alpha", media.programmes["alpha"])
    assert idx.work_ids() == [] and not list((tmp_path / "idx").glob("seg-*"))


def test_picture_in_picture_is_found_in_its_inset(tmp_path: Path, media: Media, library: Path) -> None:
    from datasets.attacks.video import apply

    clip = tmp_path / "pip.mp4"
    chain: list[Any] = [
        ("excerpt", {"start": 1.0, "length": 6.0}),
        ("pip", {"scale": 0.5, "x": 0.2, "y": 0.9}),
        ("audio", {"mode": "remove"}),
    ]
    apply(media.programmes["gamma"], clip, chain, seed=3, host=media.unrelated[1])
    with Library.open(library, readonly=True) as lib:
        (m, *_) = lib.identify(clip)
    e = m.evidence
    assert m.work_id == "gamma" and isinstance(e, VideoEvidence) and e.found_by == "picture"
    assert e.pip_box is not None and e.ref_start - e.query_start == pytest.approx(1.0, abs=0.5)
    # a 16:9 programme half as wide as a 16:9 host: 160×90 of 320×180, at (32, 81)
    x0, y0, x1, y1 = e.pip_box
    assert x1 - x0 == pytest.approx(0.5, abs=0.03) and y1 - y0 == pytest.approx(0.5, abs=0.03)
    assert x0 == pytest.approx(0.1, abs=0.03) and y0 == pytest.approx(0.45, abs=0.03)


def test_a_long_query_gives_one_match_per_occurrence(tmp_path: Path, media: Media, library: Path) -> None:
    """The soundtrack's windows at the picture's alignment join it: one match, found by both."""
    whole = excerpt(media.programmes["alpha"], tmp_path / "whole.mp4", 0.0, 14.0, "scale=256:-2")
    with Library.open(library, readonly=True) as lib:
        matches = lib.identify(whole, top_k=10)
    alpha = [m for m in matches if m.work_id == "alpha"]
    assert len(alpha) == 1, [m.details for m in alpha]
    e = alpha[0].evidence
    assert isinstance(e, VideoEvidence) and e.found_by == "both"
    assert e.query_end - e.query_start >= 12.0 and abs(e.ref_start - e.query_start) <= 0.5


def test_a_reader_follows_additions_and_removals(tmp_path: Path, media: Media) -> None:
    """Additions are loaded on their own; a removal or a replacement reloads the works."""
    writer = VideoIndex(tmp_path / "idx")
    reader = VideoIndex(tmp_path / "idx", readonly=True)
    clip = excerpt(media.programmes["gamma"], tmp_path / "clip.mp4", 1.0, 5.0)
    assert reader.identify(clip) == []
    writer.add("alpha", media.programmes["alpha"])
    writer.add("gamma", media.programmes["gamma"])
    assert [m.work_id for m in reader.identify(clip)] == ["gamma"]
    writer.remove("alpha")
    assert [m.work_id for m in reader.identify(clip)] == ["gamma"] and reader.work_ids() == ["gamma"]
    writer.add("gamma", media.programmes["beta"])  # the id now holds another programme
    assert reader.identify(clip) == []


def test_the_inverted_file_is_saved_and_reopened_instead_of_clustered_again(
    tmp_path: Path, media: Media, caplog: pytest.LogCaptureFixture
) -> None:
    where = tmp_path / "idx"
    clip = excerpt(media.programmes["beta"], tmp_path / "clip.mp4", 2.0, 6.0)
    with VideoIndex(where, ivf_min=100) as idx:
        idx.add("alpha", media.programmes["alpha"])
        idx.add("beta", media.programmes["beta"])
        assert idx.stats()["search"] == "inverted file" and idx.search_source == "built"
        (built,) = idx.identify(clip)
    (saved,) = where.glob("search-*.ivf")
    assert saved.name.startswith("search-2-")
    with VideoIndex(where, readonly=True, ivf_min=100) as again:
        assert again.search_source == "file"
        (m,) = again.identify(clip)
        assert (m.work_id, m.score) == (built.work_id, built.score)
        assert again.stats()["search_file_bytes"] == saved.stat().st_size > 0
    # a work registered later is added to the saved search; the next close saves a new file
    with VideoIndex(where, ivf_min=100) as idx:
        assert idx.search_source == "file"
        idx.add("gamma", media.programmes["gamma"])
        g = excerpt(media.programmes["gamma"], tmp_path / "g.mp4", 1.0, 5.0)
        assert [m.work_id for m in idx.identify(g)] == ["gamma"]
    (saved,) = where.glob("search-*.ivf")
    assert saved.name.startswith("search-3-")
    # a removal makes the file stale for a reader that opens before the writer saves again
    with VideoIndex(where, ivf_min=100) as idx:
        idx.remove("alpha")
        with VideoIndex(where, readonly=True, ivf_min=100) as reader:
            assert reader.search_source == "built" and reader.work_ids() == ["beta", "gamma"]
            assert [m.work_id for m in reader.identify(clip)] == ["beta"]
    # a damaged or foreign file is ignored, logged, and the search rebuilt
    (saved,) = where.glob("search-*.ivf")
    saved.write_bytes(b"not an index" * 10)
    with caplog.at_level("WARNING"), VideoIndex(where, readonly=True, ivf_min=100) as reader:
        assert reader.search_source == "built"
        assert [m.work_id for m in reader.identify(clip)] == ["beta"]
    assert "ignoring unreadable saved search" in caplog.text
    with VideoIndex(where, ivf_min=100):
        pass  # the writer replaces the damaged file
    (saved,) = where.glob("search-*.ivf")
    other = tmp_path / "other"
    with VideoIndex(other, ivf_min=100) as idx:
        idx.add("alpha", media.programmes["alpha"])
        idx.add("gamma", media.programmes["gamma"])
    (foreign,) = other.glob("search-*.ivf")
    saved.write_bytes(foreign.read_bytes())  # the right name, another index's frames (alpha, gamma)
    with caplog.at_level("WARNING"), VideoIndex(where, readonly=True, ivf_min=100) as reader:
        assert reader.search_source == "built"
        assert [m.work_id for m in reader.identify(clip)] == ["beta"]
    assert "rebuilding it" in caplog.text


def test_the_sound_carries_the_span_on_where_the_picture_stops(
    tmp_path: Path, media: Media, library: Path
) -> None:
    """A copy whose picture goes black halfway is one match over the whole copy, found by
    both; a copy with no picture at all is one sound match over all its windows."""
    half = excerpt(
        media.programmes["alpha"],
        tmp_path / "half.mp4",
        2.0,
        12.0,
        "drawbox=enable='gte(t,5)':color=black:t=fill",
    )
    blank = tmp_path / "blank.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=black:size=320x180:rate=25", "-ss", "2", "-t", "24", "-i",
           media.programmes["alpha"], "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264",
           "-c:a", "aac", blank)  # fmt: skip
    with Library.open(library, readonly=True) as lib:
        h = [m for m in lib.identify(half, top_k=10) if m.work_id == "alpha"]
        b = [m for m in lib.identify(blank, top_k=10) if m.work_id == "alpha"]
    assert len(h) == 1 and isinstance(h[0].evidence, VideoEvidence)
    e = h[0].evidence
    copied = min(12.0, media.durations["alpha"] - 2.0)  # seconds of the programme in the copies
    assert copied >= 10.0
    assert e.found_by == "both" and e.query_end - e.query_start >= copied - 2.0, e.to_json()
    assert e.matched_frames < 6 * 4 * 2  # the picture matched only its first seconds
    assert e.ref_start - e.query_start == pytest.approx(2.0, abs=0.5)
    assert len(b) == 1 and isinstance(b[0].evidence, VideoEvidence), [m.details for m in b]
    e = b[0].evidence
    assert e.found_by == "sound" and e.query_end - e.query_start >= media.durations["alpha"] - 4.0, (
        e.to_json()
    )
    assert e.ref_start - e.query_start == pytest.approx(2.0, abs=0.5)


def test_a_copy_whose_picture_matches_in_pieces_is_one_match_over_the_whole_copy(
    tmp_path: Path, media: Media, library: Path
) -> None:
    """A copy with no sound whose picture is shown in negative for five seconds in the middle
    (longer than the aligner's gap) matches in two pieces on one line: one match, from the
    first piece's start to the last one's end."""
    copy = excerpt(
        media.programmes["alpha"],
        tmp_path / "gap.mp4",
        2.0,
        12.0,
        "negate=enable='between(t,4,9)'",
        extra=("-an",),
    )
    copied = min(12.0, media.durations["alpha"] - 2.0)
    assert copied >= 10.0
    with Library.open(library, readonly=True) as lib:
        alpha = [m for m in lib.identify(copy, top_k=10) if m.work_id == "alpha"]
    assert len(alpha) == 1, [m.details for m in alpha]
    e = alpha[0].evidence
    assert isinstance(e, VideoEvidence)
    assert e.found_by == "picture", e.to_json()
    assert e.query_start <= 1.0 and e.query_end >= copied - 1.0, e.to_json()
    assert e.ref_start == pytest.approx(2.0 + e.query_start, abs=0.5)
    assert e.ref_end == pytest.approx(2.0 + e.query_end, abs=0.5)
