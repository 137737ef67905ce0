"""Pure parts of capture and packaging: WARC records, HLS playlists, SURT keys, the log."""

from __future__ import annotations

import io
import json
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from crawlers.capture.log import CaptureLog
from crawlers.capture.media import is_media, is_playlist, playlist_uris
from crawlers.capture.warc import Exchange, content_range, split_partial, write_warc
from crawlers.package.wacz import cdxj_lines, surt


def test_warc_records_parse_and_state_the_decoded_body(tmp_path: Path) -> None:
    body = "<html>融信</html>".encode()
    ex = Exchange(
        url="https://example.org/a?b=1",
        method="GET",
        request_headers=[("User-Agent", "t"), (":authority", "example.org")],
        status=200,
        response_headers=[("Content-Type", "text/html"), ("Content-Encoding", "br"), ("Content-Length", "3")],
        body=body,
        time=1_700_000_000.5,
        ip="93.184.216.34",
        http_version="h2",
    )
    path = tmp_path / "x.warc.gz"
    assert write_warc(path, [ex], {"software": "test"}) == 1
    with path.open("rb") as fh:
        records = [
            (r.rec_type, r.rec_headers, r.http_headers, r.content_stream().read())
            for r in ArchiveIterator(fh, check_digests=True)
        ]
    assert [r[0] for r in records] == ["warcinfo", "response", "request"]
    _, rec, http, payload = records[1]
    assert payload == body
    assert http.get_header("Content-Length") == str(len(body))
    assert http.get_header("X-Archive-Orig-Content-Encoding") == "br"
    assert http.get_header("Content-Encoding") is None
    assert rec.get_header("WARC-IP-Address") == "93.184.216.34"
    assert rec.get_header("WARC-Protocol") == "h2"
    assert records[2][1].get_header("WARC-Concurrent-To") == rec.get_header("WARC-Record-ID")
    assert records[2][2].get_header("Host") == "example.org"
    with path.open("rb") as fh:
        (line,) = cdxj_lines(fh, "x.warc.gz")
    key, ts, doc = line.split(" ", 2)
    assert key == "org,example)/a?b=1" and ts == "20231114221320"
    assert json.loads(doc)["status"] == "200"


def test_a_damaged_warc_does_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "x.warc.gz"
    write_warc(path, [Exchange("http://h/", "GET", [], 200, [], b"x" * 5000, 1.0)], {})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    problems = 0
    try:
        for r in ArchiveIterator(io.BytesIO(bytes(data)), check_digests=True):
            r.content_stream().read()
            problems += len(r.digest_checker.problems)
    except Exception:
        problems += 1
    assert problems


def test_hls_playlists_name_their_segments_once() -> None:
    variant = b"#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8\n"
    master = b"#EXTM3U\n" + variant + variant
    assert playlist_uris("http://h/v/master.m3u8", master) == ["http://h/v/low/index.m3u8"]
    media = b'#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="k.bin"\n#EXTINF:1,\n/abs/s0.ts\n#EXTINF:1,\ns1.ts\n'
    assert playlist_uris("http://h/v/i.m3u8", media) == [
        "http://h/v/k.bin",
        "http://h/abs/s0.ts",
        "http://h/v/s1.ts",
    ]
    assert playlist_uris("http://h/i.m3u8", b"#EXTM3U\n" + b"s.ts\n" * 3 + b"t.ts\n", limit=1) == [
        "http://h/s.ts"
    ]
    assert is_playlist("http://h/x", "text/plain", b"#EXTM3U\n")
    assert not is_playlist("http://h/x", "text/plain", b"<html>")
    assert is_media("http://h/a.mp4?x=1", "application/octet-stream")
    assert is_media("http://h/a", "audio/mpeg")
    assert not is_media("http://h/a.html", "text/html")


def test_surt_keys() -> None:
    assert surt("http://WWW.Example.COM/Path") == "com,example)/path"
    assert surt("http://127.0.0.1:8080/x") == "127.0.0.1:8080)/x"


def test_capture_log_has_wall_and_monotonic_time() -> None:
    log = CaptureLog()
    log.add("start", url="http://h/")
    log.add("done")
    lines = [json.loads(x) for x in log.to_jsonl().decode().splitlines()]
    assert [x["event"] for x in lines] == ["start", "done"]
    assert lines[0]["time"].endswith("Z") and lines[1]["elapsed_s"] >= lines[0]["elapsed_s"]


def _ex(url: str, status: int, body: bytes, headers: list[tuple[str, str]]) -> Exchange:
    return Exchange(url, "GET", [], status, headers, body, 1.0)


def test_partial_responses_of_files_held_in_full_are_set_apart() -> None:
    whole = bytes(range(256)) * 4
    full = {"http://h/v.mp4": whole}
    page = _ex("http://h/p.html", 200, b"<p>", [])
    good = _ex("http://h/v.mp4", 206, whole[100:200], [("Content-Range", "bytes 100-199/1024")])
    forged = _ex("http://h/v.mp4", 206, b"\x00" * 100, [("content-range", "bytes 100-199/1024")])
    no_range = _ex("http://h/v.mp4", 206, whole[:10], [])
    past_end = _ex("http://h/v.mp4", 206, b"x", [("Content-Range", "bytes 5000-5000/1024")])
    only_partial = _ex("http://h/other.mp4", 206, b"abc", [("Content-Range", "bytes 0-2/9")])
    kept, partial, checks = split_partial([page, good, forged, no_range, past_end, only_partial], full)
    assert kept == [page, only_partial]  # no complete copy of other.mp4: its only bytes stay replayable
    assert partial == [good, forged, no_range, past_end]
    assert [c["matches_full"] for c in checks] == [True, False, False, False]
    assert checks[0]["range"] == [100, 199] and checks[2]["range"] is None


def test_content_range_refuses_malformed_headers() -> None:
    for bad in ("bytes 9-1/10", "bytes -5/10", "items 0-1/2", "bytes 0-x/2", "", "bytes"):
        assert content_range([("Content-Range", bad)]) is None, bad
    assert content_range([("Content-Range", "bytes 0-0/*")]) == (0, 0)
