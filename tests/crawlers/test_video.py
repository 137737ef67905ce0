"""Video files found on pages: identified against the library's video index, within caps."""

from __future__ import annotations

from pathlib import Path

from crawlers.scan import Scanner

from .conftest import VideoSet
from .site import Site
from .test_scan import config


def test_video_file_on_a_page_becomes_a_case_with_its_span(
    video_site: Site, video_set: VideoSet, tmp_path: Path
) -> None:
    cfg = config(video_site, video_set.library, seeds=[video_site.base + "/video/page.html"], scope="page")
    with Scanner(tmp_path / "v", cfg) as scanner:
        summary = scanner.run()
        (case,) = scanner.store.cases()
        items = {u.removeprefix(video_site.base): (s, n) for u, _, s, n in scanner.store.items()}
    assert case.work_id == "programme" and case.kind == "video"
    assert case.media_url == video_site.base + "/video/copy.mp4"
    span = case.evidence["span"]
    q0, q1 = span["media_seconds"]
    w0, w1 = span["work_seconds"]
    assert w1 - w0 > 5.0
    assert q0 < 1.0 and q1 > 6.0  # most of the 8-s copy
    assert abs((w0 - q0) - video_set.copy_start) < 0.5  # the copy starts 3 s into the programme
    assert case.evidence["evidence"]["found_by"] in ("picture", "both")
    assert items["/video/none.jpg"][0] == "failed"  # the poster is a 404
    assert summary["media.fingerprinted"] == 1


def test_video_caps_size_and_identified_length(video_site: Site, video_set: VideoSet, tmp_path: Path) -> None:
    seed = [video_site.base + "/video/page.html"]
    small = config(video_site, video_set.library, seeds=seed, scope="page", video_bytes=100_000)
    with Scanner(tmp_path / "small", small) as scanner:
        scanner.run()
        notes = {u.removeprefix(video_site.base): (s, n) for u, _, s, n in scanner.store.items()}
        assert scanner.store.cases() == []
    state, note = notes["/video/copy.mp4"]
    assert state == "failed" and "TooLargeError" in note
    # only the first 4 s are identified: the span lies within them
    short = config(video_site, video_set.library, seeds=seed, scope="page", clip_seconds=4.0)
    with Scanner(tmp_path / "short", short) as scanner:
        scanner.run()
        (case,) = scanner.store.cases()
    assert case.evidence["span"]["media_seconds"][1] <= 4.5
