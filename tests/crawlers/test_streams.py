"""HLS and DASH streams in scans: found in pages and scripts, fetched within caps, hostile ones refused."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from crawlers.errors import PlaylistError
from crawlers.fetch import Fetcher
from crawlers.guard import AddressGuard
from crawlers.guard import AddressGuard as Guard
from crawlers.playlists import StreamCaps, dash_plan, hls_plan, literal_refusal, manifest_type
from crawlers.politeness import HostPacer
from crawlers.scan import Scanner
from crawlers.segments import ByteRange, Key, decrypt, range_body, sequence_iv
from crawlers.streams import fetch_stream

from .conftest import AES_KEY, HOSTILE_STREAMS, VideoSet, aes_encrypt
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
    ranged = "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:100@0\nx.ts\n#EXTINF:2,\n#EXT-X-BYTERANGE:50\nx.ts\n"
    (track,) = hls_plan(ranged, base, CAPS).tracks
    assert [p.byterange for p in track.pieces] == [ByteRange(0, 100), ByteRange(100, 50)]
    for bad, why in (
        ("#EXT-X-BYTERANGE:50\nx.ts", "no previous range"),
        ("#EXT-X-BYTERANGE:0@0\nx.ts", "zero length"),
        ("#EXT-X-BYTERANGE:-5@0\nx.ts", "not <length>"),
        ('#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k"\nx.ts', "SAMPLE-AES"),
        ('#EXT-X-KEY:METHOD=AES-128,URI="k",KEYFORMAT="com.apple.streamingkeydelivery"\nx.ts', "key format"),
        ('#EXT-X-KEY:METHOD=AES-128,URI="k",IV=0x1234\nx.ts', "32 hex digits"),
        ("#EXT-X-KEY:METHOD=AES-128\nx.ts", "without a URI"),
        ('#EXT-X-KEY:METHOD=AES-128,URI="file:///etc/k"\nx.ts', "bad AES-128 key URI"),
    ):
        with pytest.raises(PlaylistError, match=why):
            hls_plan("#EXTM3U\n#EXTINF:2,\n" + bad + "\n", base, CAPS)
    keyed = '#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:9\n#EXT-X-KEY:METHOD=AES-128,URI="/k"\n'
    keyed += "#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n"
    (track,) = hls_plan(keyed, base, CAPS).tracks
    assert [p.key for p in track.pieces] == [Key("http://h.test/k", sequence_iv(n)) for n in (9, 10)]
    assert track.urls()[-1] == "http://h.test/k"  # checked by the guard with the segments
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


def test_aes128_and_byte_range_streams_are_identified_like_clear_ones(
    video_site: Site, video_set: VideoSet, tmp_path: Path
) -> None:
    streams = ["/video/hls/low.m3u8", "/video/ranged/aes.m3u8", "/video/plain/aes.m3u8"]
    page = "<html><body>" + "".join(f'<video src="{u}"></video>' for u in streams) + "</body></html>"
    video_site.files["/video/protected.html"] = ("text/html", page.encode())
    cfg = config(
        video_site, video_set.library, seeds=[video_site.base + "/video/protected.html"], scope="page"
    )
    with Scanner(tmp_path / "s", cfg) as scanner:
        summary = scanner.run()
        cases = {c.media_url.removeprefix(video_site.base): c for c in scanner.store.cases()}
    assert set(cases) == set(streams)
    assert {(c.work_id, c.content_digest) for c in cases.values()} == {
        ("programme", cases[streams[0]].content_digest)
    }
    assert summary["media.fingerprinted"] == 1  # decrypted and cut out: the clear stream's very bytes
    paths = video_site.paths()
    assert paths.count("/video/keys/k.bin") == 2  # once per stream, not per segment
    assert paths.count("/video/ranged/all.bin") == 4  # one range request per segment
    assert paths.count("/video/plain/all.bin") == 1  # Range ignored: read once, ranges cut out


def _fetch(site: Site, playlist: str, max_bytes: int = 8 << 20) -> tuple[list[bytes], int]:
    """The tracks of an HLS playlist served at /video/t/p.m3u8, and the bytes the fetches took."""
    site.files["/video/t/p.m3u8"] = ("text/plain", playlist.encode())
    taken: list[int] = []
    with Fetcher(guard=Guard(["127.0.0.1"]), pacer=HostPacer(delay=0.0)) as f:
        url = site.base + "/video/t/p.m3u8"
        tracks = fetch_stream(
            f,
            url,
            f.fetch(url).body,
            caps=CAPS,
            max_bytes=max_bytes,
            seconds=10,
            on_fetch=lambda u, n: taken.append(n),
        )
    return [t.body for t in tracks], sum(taken)


def test_protected_stream_failures_are_clear(video_site: Site) -> None:
    clear = video_site.files["/video/hls/seg000.ts"][1]
    iv = bytes(16)
    sealed = aes_encrypt(clear, AES_KEY, iv)
    big = bytes(3 << 20)
    video_site.files.update({
        "/video/t/seg.bin": ("video/mp2t", sealed),
        "/video/ranged/seg.bin": ("video/mp2t", sealed),
        "/video/t/big.bin": ("video/mp2t", big),
        "/video/t/k15": ("application/octet-stream", AES_KEY[:15]),
        "/video/t/k17": ("application/octet-stream", AES_KEY + b"!"),
        "/video/t/wrong": ("application/octet-stream", bytes(range(100, 116))),
        "/video/t/good": ("application/octet-stream", AES_KEY),
    })  # fmt: skip

    def keyed(key: str, seg: str = "seg.bin", extra: str = "") -> str:
        return (f'#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="{key}",IV=0x{iv.hex()}\n'
                f"#EXTINF:2,\n{extra}{seg}\n#EXT-X-ENDLIST\n")  # fmt: skip

    assert _fetch(video_site, keyed("good"))[0] == [clear]
    assert _fetch(video_site, keyed("good", "/video/ranged/seg.bin", f"#EXT-X-BYTERANGE:{len(sealed)}@0\n"))[
        0
    ] == [clear]
    for playlist, why in (
        (keyed("k15"), "is 15 bytes, not 16"),
        (keyed("k17"), "longer than 16 bytes"),
        (keyed("nokey"), "HTTP 404"),
        (keyed("wrong"), "bad padding"),
        (
            keyed("good", "/video/ranged/seg.bin", "#EXT-X-BYTERANGE:16@999999\n"),
            "beyond the end of the file .HTTP 416",
        ),
        (
            keyed("good", "seg.bin", "#EXT-X-BYTERANGE:16@999999\n"),
            f"beyond the end of the file .{len(sealed)} bytes",
        ),
        (keyed("good", "seg.bin", "#EXT-X-BYTERANGE:15@0\n"), "not whole 16-byte blocks"),
    ):
        with pytest.raises(PlaylistError, match=why):
            _fetch(video_site, playlist)
    # a server that ignores Range, a range deep in a big file: never more than the budget is read
    deep = "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:1000@2500000\nbig.bin\n"
    with pytest.raises(PlaylistError, match=r"ignored Range.*byte budget") as err:
        _fetch(video_site, deep, max_bytes=1 << 20)
    assert "2500000" in str(err.value)
    body, taken = _fetch(video_site, deep.replace("2500000", "1000"), max_bytes=1 << 20)
    assert body == [big[1000:2000]] and taken < 4000  # read up to the range's end, not the 3-MiB file


def test_range_answers_and_decryption_are_checked() -> None:
    want = ByteRange(10, 4)
    assert range_body(206, {"content-range": "bytes 10-13/100"}, b"abcd", want, 14) == b"abcd"
    assert range_body(206, {"content-range": "bytes 10-13/*"}, b"abcd", want, 14) == b"abcd"
    for headers, body, why in (
        ({"content-range": "bytes 0-3/100"}, b"abcd", "sent Content-Range"),
        ({}, b"abcd", "sent Content-Range 'none'"),
        ({"content-range": "bytes 10-13/12"}, b"abcd", "past its own end"),
        ({"content-range": "bytes 10-13/100"}, b"abcdef", "206 body of 6 bytes"),
        ({"content-range": "bytes 10-13/100", "content-encoding": "gzip"}, b"abcd", "Content-Encoding"),
    ):
        with pytest.raises(PlaylistError, match=why):
            range_body(206, headers, body, want, 14)
    with pytest.raises(PlaylistError, match="HTTP 500"):
        range_body(500, {}, b"", want, 14)
    sealed = aes_encrypt(b"x" * 40, AES_KEY, bytes(16))
    assert decrypt(sealed, AES_KEY, bytes(16)) == b"x" * 40
    with pytest.raises(PlaylistError, match="must be 16 bytes"):
        decrypt(sealed, AES_KEY[:8], bytes(16))
    with pytest.raises(PlaylistError, match="bad padding"):
        decrypt(sealed[:-16] + bytes(16), AES_KEY, bytes(16))  # truncated and forged last block
    with pytest.raises(PlaylistError, match="whole 16-byte blocks"):
        decrypt(b"", AES_KEY, bytes(16))
