"""Media discovery in HTML, content sniffing, and per-host pacing with a fake clock."""

from __future__ import annotations

import itertools
import random

import pytest

from crawlers.extract import MAX_REFS, decode_html, extract
from crawlers.politeness import HostPacer, parse_retry_after
from crawlers.sniff import family, sniff

PAGE = """<!doctype html><html><head><base href="/site/">
<meta property="og:image" content="https://cdn.test/og.jpg">
<meta property="og:video" content="/v/clip.mp4">
<style>.hero { background-image: url("hero.png") }</style>
<script type="application/ld+json">
{"@context": "https://schema.org", "@graph": [
  {"@type": "ImageObject", "contentUrl": "/ld/photo.jpg"},
  {"@type": "AudioObject", "contentUrl": "/ld/song.mp3"}]}
</script></head><body>
<img src="a.jpg" srcset="a-2x.jpg 2x, a-640.jpg 640w" alt="x">
<img data-src="lazy.jpg" src="data:image/gif;base64,R0lGOD">
<picture><source srcset="p.webp 1x, p2.webp 2x" type="image/webp"><img src="p.jpg"></picture>
<div style="background-image: url('bg.jpg'); color: red">x</div>
<video poster="poster.jpg"><source src="movie.mp4" type="video/mp4"></video>
<audio src="track.mp3"></audio><audio><source src="track.ogg"></audio>
<a href="next.html">next</a><a href="javascript:void(0)">js</a><a href="mailto:x@y">m</a>
<a href="next.html#top">again</a><iframe src="/embed/player.html"></iframe>
</body></html>"""


def test_finds_every_kind_of_reference() -> None:
    refs = extract("http://h.test/start.html", PAGE)
    got = {m.url.removeprefix("http://h.test"): (m.hint, m.source) for m in refs.media}
    assert got == {
        "https://cdn.test/og.jpg": ("image", "og:image"),
        "/v/clip.mp4": ("video", "og:video"),
        "/site/hero.png": ("image", "css"),
        "/ld/photo.jpg": ("image", "json-ld"),
        "/ld/song.mp3": ("audio", "json-ld"),
        "/site/a.jpg": ("image", "img"),
        "/site/a-2x.jpg": ("image", "srcset"),
        "/site/a-640.jpg": ("image", "srcset"),
        "/site/lazy.jpg": ("image", "img"),
        "/site/p.webp": ("image", "srcset"),
        "/site/p2.webp": ("image", "srcset"),
        "/site/p.jpg": ("image", "img"),
        "/site/bg.jpg": ("image", "css"),
        "/site/poster.jpg": ("image", "poster"),
        "/site/movie.mp4": ("video", "source"),
        "/site/track.mp3": ("audio", "audio"),
        "/site/track.ogg": ("audio", "source"),
    }
    assert refs.links == ["http://h.test/site/next.html", "http://h.test/embed/player.html"]


def test_malformed_html_never_raises() -> None:
    rng = random.Random(5)
    pieces = [
        "<img src='x.jpg'",
        "<",
        ">",
        "<!--",
        "]]>",
        "<![CDATA[",
        '"',
        "<a href=",
        "&#xffffff;",
        "\x00",
        "</",
    ]
    for _ in range(200):
        html = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 60)))
        extract("http://h.test/", html)
    refs = extract("http://h.test/", "<div><img src=ok.jpg <p>unclosed <img src='two.jpg'")
    assert refs.media and refs.media[0].url == "http://h.test/ok.jpg"
    broken_json = '<script type="application/ld+json">{"contentUrl": </script><img src=a.png>'
    assert [m.url for m in extract("http://h.test/", broken_json).media] == ["http://h.test/a.png"]


def test_reference_cap() -> None:
    html = "".join(f'<img src="/i{i}.jpg"><a href="/p{i}">' for i in range(MAX_REFS + 50))
    refs = extract("http://h.test/", html)
    assert len(refs.media) == MAX_REFS and len(refs.links) == MAX_REFS


def test_wrong_encodings() -> None:
    gbk = '<html><head><meta charset="gbk"></head><img src="/图片/一.jpg"></html>'.encode("gbk")
    assert (
        extract("http://h.test/", decode_html(gbk)).media[0].url
        == "http://h.test/%E5%9B%BE%E7%89%87/%E4%B8%80.jpg"
    )
    lying = '<meta charset="utf-8"><img src="/é.jpg">'.encode("latin-1")  # says utf-8, is latin-1
    assert extract("http://h.test/", decode_html(lying)).media[0].url.startswith("http://h.test/")
    assert "broken" in decode_html(b"broken \xff\xfe\xfd", "x-unknown")
    assert decode_html("<p>ü</p>".encode("utf-16")) == "<p>ü</p>"


def test_sniff_ignores_claims() -> None:
    assert sniff(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "image/jpeg"
    assert sniff(b"RIFF\x24\x00\x00\x00WAVEfmt ") == "audio/wav"
    assert sniff(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert sniff(b"\xef\xbb\xbf\n  <HTML><body>") == "text/html"
    assert sniff(b"") == "application/octet-stream"
    assert sniff(b"%PDF-1.7") == "application/octet-stream"
    ts = (b"\x47" + bytes(187)) * 3
    assert sniff(ts) == "video/mp2t" and family(sniff(ts)) == "video"
    assert sniff(b"\x47" + bytes(187) + b"\x00" + bytes(200)) == "application/octet-stream"  # one sync byte
    assert (
        family("image/png") == "image"
        and family("text/html") == "html"
        and family("application/pdf") == "other"
    )


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def test_pacer_spaces_requests_per_origin() -> None:
    fc = FakeClock()
    pacer = HostPacer(delay=2.0, clock=fc.clock, sleep=fc.sleep)
    starts = []
    for origin in ["http://a", "http://a", "http://b", "http://a"]:
        with pacer.slot(origin):
            starts.append((origin, fc.t))
    a = [t for o, t in starts if o == "http://a"]
    assert [b - a_ for a_, b in itertools.pairwise(a)] == [pytest.approx(2.0)] * 2
    assert dict(starts)["http://b"] == pytest.approx(a[1])  # b did not wait for a


def test_backoff_honours_retry_after_and_caps_it() -> None:
    fc = FakeClock()
    pacer = HostPacer(delay=0.5, max_backoff=60.0, clock=fc.clock, sleep=fc.sleep)
    assert pacer.backoff("http://a", 7.0) == 7.0
    assert pacer.wait_time("http://a") == pytest.approx(7.0)
    assert pacer.backoff("http://a", 10_000.0) == 60.0
    assert pacer.backoff("http://b", None) == 2.0  # no header: exponential from max(delay, 1)
    assert pacer.backoff("http://b", None) == 4.0
    pacer.success("http://b")
    assert pacer.backoff("http://b", None) == 2.0
    with pytest.raises(ValueError):
        HostPacer(concurrency=0)


def test_parse_retry_after() -> None:
    assert parse_retry_after("120", 0) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480.0 - 30) == pytest.approx(30.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 2e9) == 0.0
    for bad in (None, "", "-5", "1.5", "tomorrow", "Wed, 99 Foo 2015"):
        assert parse_retry_after(bad, 0) is None
