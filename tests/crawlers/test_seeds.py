"""Seeds from sitemaps and feeds: expansion within caps, entity attacks and gzip bombs refused."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from crawlers.errors import SeedFileError
from crawlers.fetch import Fetcher, FetchLimits
from crawlers.guard import AddressGuard
from crawlers.politeness import HostPacer
from crawlers.scan import Scanner
from crawlers.seeds import SeedCaps, expand, gunzip, parse

from .site import BOMB, Site
from .test_scan import case_keys, config

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def urlset(*locs: str) -> bytes:
    return f"<urlset {NS}>{''.join(f'<url><loc>{u}</loc></url>' for u in locs)}</urlset>".encode()


def index(*locs: str) -> bytes:
    entries = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in locs)
    return f"<sitemapindex {NS}>{entries}</sitemapindex>".encode()


RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><link>/music.html</link><enclosure url="/media/song.wav" type="audio/wav" length="1"/></item>
<item><link>javascript:alert(1)</link></item></channel></rss>"""
ATOM = b"""<feed xmlns="http://www.w3.org/2005/Atom"><entry><link href="/busy.html"/>
<link rel="enclosure" type="video/mp4" href="/v.mp4"/><link rel="self" href="/x"/></entry></feed>"""
LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<urlset><url><loc>/&c;</loc></url></urlset>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<urlset><url><loc>&x;</loc></url></urlset>"""


def test_parse_sitemaps_and_feeds() -> None:
    base = "http://h.test/sitemap.xml"
    got = parse(gzip.compress(urlset("/a", "http://h.test/b?x=1", "http://127.0.0.2/steal")), base)
    assert got.kind == "urlset" and got.pages == ["http://h.test/a", "http://h.test/b?x=1"]
    assert got.refused == ["http://127.0.0.2/steal: not on http://h.test"]  # another origin
    assert parse(index("/s1.xml.gz", "http://other.test/s.xml"), base).sitemaps == ["http://h.test/s1.xml.gz"]
    rss = parse(RSS, "http://h.test/feed")
    assert rss.pages == ["http://h.test/music.html"] and rss.media == [
        ("http://h.test/media/song.wav", "audio")
    ]
    assert len(rss.refused) == 1  # the javascript: link
    atom = parse(ATOM, "http://h.test/atom")
    assert atom.pages == ["http://h.test/busy.html"] and atom.media == [("http://h.test/v.mp4", "video")]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (LAUGHS, "Forbidden"),
        (EXTERNAL, "Forbidden"),
        (b"<!DOCTYPE urlset SYSTEM 'http://127.0.0.2/x.dtd'><urlset/>", "Forbidden"),
        (BOMB, "bomb"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
        (b"<urlset><url>", "not a usable"),
        (b"<html><body>hi</body></html>", "not a sitemap"),
    ],
)
def test_hostile_seed_files_are_refused(body: bytes, why: str) -> None:
    with pytest.raises(SeedFileError, match=why):
        parse(body, "http://h.test/s.xml")


def test_gunzip_ratio_cap() -> None:
    zeros = gzip.compress(b"\0" * (4 << 20))
    with pytest.raises(SeedFileError, match="ratio"):
        gunzip(zeros, SeedCaps(file_bytes=8 << 20))
    with pytest.raises(SeedFileError, match="beyond"):
        gunzip(zeros, SeedCaps(file_bytes=1 << 20))


def test_index_recursion_is_bounded(site: Site) -> None:
    site.files["/idx0.xml"] = ("text/xml", index("/idx0.xml", "/idx1.xml", "/s0.xml"))
    site.files["/idx1.xml"] = ("text/xml", index("/idx2.xml"))
    site.files["/idx2.xml"] = ("text/xml", index("/idx3.xml", "/s2.xml"))
    site.files["/idx3.xml"] = ("text/xml", index("/s3.xml"))
    for i in (0, 2, 3):
        site.files[f"/s{i}.xml"] = ("text/xml", urlset(f"/page{i}.html"))
    fetcher = Fetcher(AddressGuard(["127.0.0.1"]), HostPacer(delay=0.0), FetchLimits(total_seconds=3.0))
    with fetcher:
        got = expand(fetcher, site.base + "/idx0.xml", SeedCaps(depth=2))  # idx0 -> idx1 -> idx2
        paths = site.paths()
        deeper = expand(fetcher, site.base + "/idx0.xml", SeedCaps(depth=3))
        capped = expand(fetcher, site.base + "/idx0.xml", SeedCaps(depth=5, urls=1))
    assert got.pages == [site.base + "/page0.html"]
    assert any("deeper than 2" in r for r in got.refused)
    assert "/idx3.xml" not in paths and "/s2.xml" not in paths
    assert paths.count("/idx0.xml") == 1  # it lists itself: read once
    assert deeper.pages == [site.base + "/page0.html", site.base + "/page2.html"]
    assert capped.pages == [site.base + "/page0.html"]


def test_scan_seeded_by_sitemaps_and_feeds(site: Site, scan_library: Path, tmp_path: Path) -> None:
    site.files["/sitemap.xml"] = ("text/xml", index("/sitemap-1.xml.gz", "/sitemap-bomb.xml.gz"))
    sm1 = gzip.compress(urlset("/gallery.html", "/private/secret.html", f"http://127.0.0.2:{site.port}/x"))
    site.files["/sitemap-1.xml.gz"] = ("application/octet-stream", sm1)
    site.files["/sitemap-bomb.xml.gz"] = ("application/octet-stream", BOMB)
    site.files["/feed.rss"] = ("application/rss+xml", RSS)
    site.files["/laughs.xml"] = ("text/xml", LAUGHS)
    maps = [site.base + p for p in ("/sitemap.xml", "/feed.rss", "/laughs.xml", "/missing.xml")]
    cfg = config(site, scan_library, seeds=[], sitemaps=maps, scope="page")
    with Scanner(tmp_path / "s", cfg) as scanner:
        scanner.run()
        keys = case_keys(scanner.store, site.base)
        notes = scanner.store.get_meta("expanded")
    assert keys == {
        ("/gallery.html", "/img/a.jpg", "astronaut"),
        ("/gallery.html", "/img/b.png", "coffee"),
        ("/music.html", "/media/song.wav", "song"),
        ("/feed.rss", "/media/song.wav", "song"),  # the feed's enclosure
    }
    assert notes[site.base + "/sitemap.xml"].startswith("sitemapindex: 2 pages")
    assert "failed" in notes[site.base + "/laughs.xml"] and "Forbidden" in notes[site.base + "/laughs.xml"]
    assert "HTTP 404" in notes[site.base + "/missing.xml"]
    paths = site.paths()
    assert not any(p.startswith("/private/") for p in paths)  # listed, but robots.txt disallows it
    assert paths.count("/sitemap-bomb.xml.gz") == 1
