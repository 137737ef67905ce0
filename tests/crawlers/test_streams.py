"""HLS and DASH streams in scans: found in pages and scripts, fetched within caps, hostile ones refused."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from crawlers.errors import PlaylistError
from crawlers.guard import AddressGuard
from crawlers.playlists import StreamCaps, dash_plan, hls_plan, literal_refusal, manifest_type
from crawlers.scan import Scanner

from .conftest import HOSTILE_STREAMS, VideoSet
from .site import Site
from .test_scan import config

CAPS = StreamCaps(segments=5, seconds=30.0)


def test_hls_and_dash_streams_become_cases(video_site: Site, video_set: VideoSet, tmp_path: Path) -> None:
    seed = video_site.base + "/video/streams.html"
    cfg = config(video_site, video_set.library, seeds=[seed], scope="page")
    with Scanner(tmp_path / "s", cfg) as scanner:
        scanner.run()
        cases = {c.media_url.removeprefix(video_site.base): c for c in scanner.store.cases()}
    assert set(cases) == {"/video/hls/master.m3u8", "/video/dash/stream.mpd"}
    for case in cases.values():
        assert case.work_id == "programme" and case.kind == "video"
        q0, q1 = case.evidence["span"]["media_seconds"]
        w0, _ = case.evidence["span"]["work_seconds"]
        assert q1 - q0 > 4.0 and abs((w0 - q0) - video_set.copy_start) < 0.6
    assert cases["/video/dash/stream.mpd"].evidence["evidence"]["found_by"] == "both"  # video + audio muxed
    paths = video_site.paths()
    assert "/video/hls/missing-high.m3u8" not in paths  # the lowest-bandwidth variant is read
    assert sum(p.startswith("/video/hls/seg") for p in paths) == 4
    assert sum(p.startswith("/video/dash/chunk-") for p in paths) == 8  # 4 video + 4 audio (of 5)


def test_hostile_manifests_are_refused_or_capped(
    video_site: Site, video_set: VideoSet, tmp_path: Path
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(8)
    listener.setblocking(False)
    internal = (
        "#EXTM3U\n#EXTINF:2,\n/video/hls/seg000.ts\n"
        f"#EXTINF:2,\nhttp://127.0.0.2:{listener.getsockname()[1]}/seg.ts\n"
        "#EXTINF:2,\nhttp://169.254.169.254/latest/seg.ts\n"
    )
    huge = "#EXTM3U\n" + "".join(f"#EXTINF:1,\n/video/hls/seg000.ts?n={i}\n" for i in range(100_000))
    video_site.files["/video/evil/internal.m3u8"] = ("text/plain", internal.encode())
    video_site.files["/video/evil/huge.m3u8"] = ("text/plain", huge.encode())
    names = [*sorted(HOSTILE_STREAMS), "/video/evil/internal.m3u8"]
    page = "<html><body>" + "".join(f'<video src="{n}"></video>' for n in names)
    video_site.files["/video/evil.html"] = ("text/html", page.encode())
    cfg = config(
        video_site,
        video_set.library,
        seeds=[video_site.base + "/video/evil.html"],
        scope="page",
        stream_segments=5,
        request_seconds=3.0,
    )
    t0 = time.monotonic()
    try:
        with Scanner(tmp_path / "s", cfg) as scanner:
            scanner.run()
            items = {u.removeprefix(video_site.base): (s, n) for u, _, s, n in scanner.store.items()}
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected to the "internal" address
    finally:
        listener.close()
    assert time.monotonic() - t0 < 30
    want = {
        "/video/evil/loop-a.m3u8": "loop",
        "/video/evil/self.m3u8": "loop",
        "/video/evil/nest1.m3u8": "nested deeper",
        "/video/evil/absurd.m3u8": "absurd",
        "/video/evil/nan.m3u8": "absurd",
        "/video/evil/negative.m3u8": "absurd",
        "/video/evil/encrypted.m3u8": "encrypted",
        "/video/evil/laughs.mpd": "Forbidden",
        "/video/evil/forever.mpd": "no video segment",
        "/video/evil/internal.m3u8": "refused before fetching",
    }
    for name, why in want.items():
        state, note = items.get(name, ("missing", str(items)))
        assert state == "failed" and why in note, (name, state, note)
    assert items["/video/evil/huge.m3u8"][0] == "done"
    paths = video_site.paths()
    assert sum(p.startswith("/video/hls/seg000.ts?n=") for p in paths) == 5  # capped at 5 of 100,000
    assert sum(p.startswith("/video/forever/") for p in paths) == 1  # the first 404 ends the stream
    assert not any(p.startswith("/k") for p in paths)  # no key fetched for the encrypted stream


def test_manifest_sniffing_and_literal_refusal() -> None:
    assert manifest_type(b"\xef\xbb\xbf#EXTM3U\n") == "hls"
    assert manifest_type(b'<?xml version="1.0"?><!-- x --><MPD>') == "dash"
    assert manifest_type(b"<html><MPD>") is None and manifest_type(b"") is None
    guard = AddressGuard(["127.0.0.1"])
    assert literal_refusal(["http://127.0.0.1:8/a.ts", "http://cdn.test/b.ts"], guard) is None
    assert "private" in (literal_refusal(["http://10.1.2.3/a.ts"], guard) or "")
    assert "loopback" in (literal_refusal(["http://[::ffff:127.0.0.2]/a.ts"], guard) or "")


def test_hls_plans() -> None:
    base = "http://h.test/v/"
    master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=900\nhi.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=100\nlo/x.m3u8\n"
    assert hls_plan(master, base + "m.m3u8", CAPS).next_playlist == "http://h.test/v/lo/x.m3u8"
    with pytest.raises(PlaylistError, match="nested"):
        hls_plan(master, base + "m.m3u8", CAPS, level=2)
    fmp4 = '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n' + "".join(f"#EXTINF:4,\ns{i}.m4s\n" for i in range(20))
    (track,) = hls_plan(fmp4, base + "p.m3u8", CAPS).tracks
    assert track.init == base + "init.mp4" and len(track.segments) == 5 and track.seconds == 20.0
    (track,) = hls_plan(fmp4, base + "p.m3u8", StreamCaps(segments=50, seconds=10.0)).tracks
    assert len(track.segments) == 3  # 12 s reach the 10-s cap
    for bad in ("#EXTM3U\n#EXTINF:abc,\nx.ts\n", "#EXTM3U\n", "#EXTM3U\n#EXTINF:inf,\nx.ts\n"):
        with pytest.raises(PlaylistError):
            hls_plan(bad, base, CAPS)
    with pytest.raises(PlaylistError, match="byte-range"):
        hls_plan("#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:100@0\nx.ts\n", base, CAPS)
    with pytest.raises(PlaylistError, match="bad segment URL"):
        hls_plan("#EXTM3U\n#EXTINF:2,\nfile:///etc/passwd\n", base, CAPS)


MPD = """<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="PT1H">
<BaseURL>media/</BaseURL><Period><AdaptationSet mimeType="video/mp4">
<SegmentTemplate timescale="10" media="$RepresentationID$/$Time$.m4s"
 initialization="$RepresentationID$/i.mp4">
<SegmentTimeline><S t="0" d="20" r="999999999"/></SegmentTimeline></SegmentTemplate>
<Representation id="hi" bandwidth="9000"/><Representation id="lo" bandwidth="100"/>
</AdaptationSet><AdaptationSet mimeType="audio/mp4"><Representation id="a" bandwidth="64">
<SegmentList duration="4" timescale="1"><Initialization sourceURL="a/init.mp4"/>
<SegmentURL media="a/1.m4s"/><SegmentURL media="a/2.m4s"/></SegmentList></Representation></AdaptationSet>
</Period></MPD>"""


def test_dash_plans() -> None:
    video, audio = dash_plan(MPD.encode(), "http://h.test/s/x.mpd", CAPS).tracks
    assert video.kind == "video" and video.init == "http://h.test/s/media/lo/i.mp4"
    assert video.segments == tuple(f"http://h.test/s/media/lo/{t}.m4s" for t in (0, 20, 40, 60, 80))
    assert audio.kind == "audio" and len(audio.segments) == 2 and audio.seconds == 8.0
    for bad in (
        MPD.replace('d="20"', 'd="0"'),
        MPD.replace('timescale="10"', 'timescale="0"'),
        "<MPD><Period/></MPD>",
        "<NotMPD/>",
        "<MPD",
        '<!DOCTYPE MPD [<!ENTITY x SYSTEM "file:///etc/passwd">]><MPD>&x;</MPD>',
    ):
        with pytest.raises(PlaylistError):
            dash_plan(bad.encode(), "http://h.test/x.mpd", CAPS)
