"""The scan database's operations, the same on SQLite and on PostgreSQL (a real throw-away
server), and PostgreSQL's connection failures as clear errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from crawlers.errors import CrawlError, ScanStoreError
from crawlers.scandb import POINTER_NAME, holds_scan
from crawlers.store import ScanStore
from privacy.pg_cluster import ThrowawayCluster
from tests.pg import password_login, pg_uri

OpenStore = Callable[..., ScanStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """``open_store(dir, create=...)`` on the backend under test; every store closed afterwards."""
    uri = pg_uri(request.getfixturevalue("pg_server")) if request.param == "postgresql" else None
    opened: list[ScanStore] = []

    def make(directory: Path | None = None, **kw: Any) -> ScanStore:
        kw.setdefault("db", uri)
        store = ScanStore(directory or tmp_path / "scan", **kw)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


M = [{"work_id": "w1", "kind": "image", "score": 0.9, "evidence": {"threshold": 0.5}}]


def test_frontier_seen_set_and_order(open_store: OpenStore) -> None:
    s = open_store(create=True)
    assert s.add("http://a.test/", "page", 0) and not s.add("http://a.test/", "page", 3)
    assert s.add("http://a.test/x.jpg", "media", 1, "image")
    assert s.seen("http://a.test/") and not s.seen("http://a.test/other")
    item, due = s.next_item(now=1e12)
    assert item is not None and item.kind == "media" and due is None  # media before pages
    s.postpone(item, until=5000.0, note="429")
    item2, _ = s.next_item(now=1000.0)
    assert item2 is not None and item2.url == "http://a.test/" and item2.attempts == 0
    added = s.finish_page(item2, [("http://a.test/b", "pending"), ("http://a.test/a/a/a", "skipped")],
                          [("http://a.test/x.jpg", "image")])  # fmt: skip
    assert added == 0 and s.pages_fetched() == 1
    nothing, due = s.next_item(now=1000.0, pages=False)
    assert nothing is None and due == 5000.0
    again, _ = s.next_item(now=6000.0, pages=False)
    assert again is not None and again.attempts == 1
    assert {u: st for u, _, st, _ in s.items()}["http://a.test/a/a/a"] == "skipped"
    assert s.counts()["page.pending"] == 1


def test_due_items_media_first_then_pages_oldest_first(open_store: OpenStore) -> None:
    s = open_store(create=True)
    for k in range(6):  # pages and media interleaved as a crawl queues them
        s.add(f"http://a.test/p{k}", "page", 1)
        s.add(f"http://a.test/m{k}.jpg", "media", 1, "image")
    first, _ = s.next_item(now=1e12)
    assert first is not None
    s.postpone(first, until=5000.0, note="429")  # m0 waits
    assert [i.url.rsplit("/", 1)[1] for i in s.due(1000.0)] == [
        *(f"m{k}.jpg" for k in range(1, 6)),
        *(f"p{k}" for k in range(6)),
    ]
    assert [i.url.rsplit("/", 1)[1] for i in s.due(1000.0, limit=7)] == [
        *(f"m{k}.jpg" for k in range(1, 6)),
        "p0",
        "p1",
    ]
    assert [i.kind for i in s.due(1000.0, pages=False)] == ["media"] * 5
    assert [i.url.rsplit("/", 1)[1] for i in s.due(6000.0, limit=2)] == ["m0.jpg", "m1.jpg"]
    nxt, _ = s.next_item(now=1000.0)
    assert nxt is not None and nxt.url.endswith("/m1.jpg")
    for item in s.due(1000.0, pages=False):
        s.postpone(item, until=7000.0, note="429")
    page, _ = s.next_item(now=1000.0)
    assert page is not None and page.url.endswith("/p0")
    none, due = s.next_item(now=1000.0, pages=False)
    assert none is None and due == 5000.0


def test_digest_dedup_cases_and_budgets(open_store: OpenStore) -> None:
    s = open_store(create=True)
    s.set_meta("robots_obeyed", True)
    for page in ("http://a.test/1", "http://a.test/2"):
        s.add(page, "page", 0)
    p1, _ = s.next_item(1e12)
    assert p1 is not None
    s.finish_page(p1, [], [("http://a.test/x.jpg", ""), ("http://b.test/y.jpg", "")])
    digest = bytes(range(32))
    m1, _ = s.next_item(1e12)
    assert m1 is not None and m1.url == "http://a.test/x.jpg"
    assert s.media_result(digest) is None
    s.charge("http://a.test", 0, 1234)
    assert s.finish_media(m1, m1.url, digest, "image/jpeg", 1234, M) == 1
    assert s.media_result(digest) == M
    m2, _ = s.next_item(1e12)
    assert m2 is not None and m2.url == "http://b.test/y.jpg"
    # the same bytes under another URL: the stored result is used, not a second identification
    assert s.finish_media(m2, "http://b.test/z.jpg", digest, "image/jpeg", 1234, None) == 1
    # a repeated step (as after a crash) adds nothing
    assert s.finish_media(m2, "http://b.test/z.jpg", digest, "image/jpeg", 1234, None) == 0
    p2, _ = s.next_item(1e12)
    assert p2 is not None and p2.url == "http://a.test/2"
    assert s.finish_page(p2, [], [("http://a.test/x.jpg", "")]) == 1  # an identified media: case at once
    cases = s.cases()
    assert [(c.page_url[-1], c.media_url, c.work_id) for c in cases] == [
        ("1", "http://a.test/x.jpg", "w1"),
        ("1", "http://b.test/y.jpg", "w1"),
        ("2", "http://a.test/x.jpg", "w1"),
    ]
    assert cases[1].final_url == "http://b.test/z.jpg" and cases[0].content_digest == digest
    assert cases[0].robots_obeyed and cases[0].evidence == {"threshold": 0.5}
    assert s.case(cases[2].id) == cases[2] and s.case(999) is None
    s.record_package(cases[1].id, "evidence/case-2", b"\x01" * 32)
    s.record_package(cases[1].id, "evidence/case-2b", b"\x02" * 32)  # a later capture replaces it
    with pytest.raises(ScanStoreError, match="no case 999"):
        s.record_package(999, "x", b"")
    package = s.case(cases[1].id).package  # type: ignore[union-attr]
    assert package is not None and package["path"] == "evidence/case-2b" and package["sm3"] == "02" * 32
    assert s.case(cases[0].id).package is None  # type: ignore[union-attr]
    assert s.counts()["media.fingerprinted"] == 1 and s.counts()["cases"] == 3
    s.charge("http://a.test", 1, 10)
    s.finish(p2, "done")
    assert s.host_usage("http://a.test") == (1, 1244) and s.host_usage("http://c.test") == (0, 0)


def test_a_batch_commits_its_steps_together_or_not_at_all(open_store: OpenStore, tmp_path: Path) -> None:
    s = open_store(create=True)
    s.set_meta("robots_obeyed", True)
    s.add("http://a.test/1", "page", 0)
    page, _ = s.next_item(1e12)
    assert page is not None
    digest = b"\x07" * 32
    with pytest.raises(RuntimeError), s.batch():  # a crash inside: nothing of the block stays
        s.finish_page(page, [("http://a.test/2", "pending")], [("http://a.test/x.jpg", "")])
        s.charge("http://a.test", 1, 10)
        with s.batch():  # nested: part of the outer block
            (media,) = [i for i, _ in s.pending_after(0) if i.kind == "media"]
            s.finish_media(media, media.url, digest, "image/jpeg", 10, M)
        raise RuntimeError("killed")
    assert s.counts() == {"page.pending": 1, "media.fingerprinted": 0, "cases": 0}
    assert s.host_usage("http://a.test") == (0, 0)
    other = open_store(tmp_path / "scan")  # another connection sees nothing before the commit
    with s.batch():
        s.finish_page(page, [("http://a.test/2", "pending")], [("http://a.test/x.jpg", "")])
        (media,) = [i for i, _ in s.pending_after(page.id) if i.kind == "media"]
        assert s.finish_media(media, media.url, digest, "image/jpeg", 10, M) == 1
        assert other.counts()["cases"] == 0
    assert other.counts()["cases"] == 1 and s.counts()["page.done"] == 1
    pending = s.pending_after(0)
    assert [(i.url, due) for i, due in pending] == [("http://a.test/2", 0.0)]
    s.postpone(pending[0][0], until=5000.0, note="429")
    assert s.pending_after(0)[0][1] == 5000.0 and s.pending_after(pending[0][0].id) == []


def test_reopen_meta_and_expansion(open_store: OpenStore, tmp_path: Path) -> None:
    s = open_store(create=True)
    s.set_meta("config", {"seeds": ["x"], "n": 1})
    s.set_meta("config", {"seeds": ["y"], "n": 2})
    s.record_expansion(
        "http://a.test/sitemap.xml", ["http://a.test/p"], [("http://a.test/v.mp4", "video")], "ok"
    )
    s.add("http://a.test/p", "page", 0)
    s.close()
    r = open_store()  # reopened from the directory alone (the PostgreSQL pointer, no --db)
    assert r.get_meta("config") == {"seeds": ["y"], "n": 2} and r.get_meta("missing") is None
    assert r.get_meta("expanded") == {"http://a.test/sitemap.xml": "ok"}
    assert [(u, k) for u, k, _, _ in r.items()] == [
        ("http://a.test/p", "page"),
        ("http://a.test/v.mp4", "media"),
    ]
    assert holds_scan(tmp_path / "scan")
    with pytest.raises(ScanStoreError, match="holds no scan"):
        open_store(tmp_path / "empty")


def test_postgres_scans_are_separate_schemas_and_no_password_is_stored(
    pg_server: ThrowawayCluster, tmp_path: Path
) -> None:
    password_login(pg_server, "scanner", "pa ss:w@rd")
    uri = pg_uri(pg_server, "scanner", "pa ss:w@rd")
    a = ScanStore(tmp_path / "a", create=True, db=uri)
    b = ScanStore(tmp_path / "b", create=True, db=uri)
    try:
        a.add("http://a.test/", "page", 0)
        assert b.items() == [] and a.backend == b.backend == "postgresql"
    finally:
        a.close()
        b.close()
    pointer = (tmp_path / "a" / POINTER_NAME).read_text()
    info = json.loads(pointer)
    assert "pa ss" not in pointer and "password" not in pointer and "user=scanner" in info["dsn"]
    with pytest.raises(ScanStoreError, match="refused the credentials") as wrong:
        ScanStore(tmp_path / "a")  # the stored string has no password
    assert "pa ss" not in str(wrong.value)
    reopened = ScanStore(tmp_path / "a", db=uri)  # the password given again
    try:
        assert [u for u, *_ in reopened.items()] == ["http://a.test/"]
    finally:
        reopened.close()
    with psycopg.connect(pg_server.conninfo) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
            (info["schema"],),
        ).fetchall()
    assert [t[0] for t in tables] == ["case_packages", "cases", "frontier", "hosts", "media", "meta", "refs"]


def test_postgres_connection_failures_are_clear(pg_server: ThrowawayCluster, tmp_path: Path) -> None:
    password_login(pg_server, "scanner", "pa ss:w@rd")
    cases = {
        "wrong password": (pg_uri(pg_server, "scanner", "guess"), "refused the credentials"),
        "no password": (pg_uri(pg_server, "scanner"), "refused the credentials"),
        "no server on the socket": (f"postgresql://x@/db?host={tmp_path}&port=5432", "cannot reach"),
        "nothing on the loopback port": ("postgresql://x:secret@127.0.0.1:1/db", "cannot reach"),
        "no such database": (pg_uri(pg_server).replace("/rongxin?", "/nosuchdb?"), "does not exist"),
        "not a URI": ("mysql://root@127.0.0.1/x", "takes a postgresql://"),
        "bad URI": ("postgresql://u:secret@127.0.0.1/x?nonsense=1", "not a valid PostgreSQL URI"),
    }
    for name, (uri, message) in cases.items():
        with pytest.raises(CrawlError, match=message) as err:
            ScanStore(tmp_path / name.replace(" ", "-"), create=True, db=uri)
        assert "secret" not in str(err.value) and "guess" not in str(err.value), name
        assert not holds_scan(tmp_path / name.replace(" ", "-")), name
    # a pointer to a schema the server does not hold is refused, not started afresh
    s = ScanStore(tmp_path / "moved", create=True, db=pg_uri(pg_server))
    s.close()
    info = json.loads((tmp_path / "moved" / POINTER_NAME).read_text())
    with psycopg.connect(pg_server.conninfo, autocommit=True) as con:
        con.execute(f'DROP SCHEMA "{info["schema"]}" CASCADE')
    with pytest.raises(ScanStoreError, match="holds no scan schema"):
        ScanStore(tmp_path / "moved")
    (tmp_path / "sqlite").mkdir()
    ScanStore(tmp_path / "sqlite", create=True).close()
    with pytest.raises(ScanStoreError, match="SQLite scan"):
        ScanStore(tmp_path / "sqlite", db=pg_uri(pg_server))
    (tmp_path / "moved" / POINTER_NAME).write_text("{not json")
    with pytest.raises(ScanStoreError, match="not a scan database pointer"):
        ScanStore(tmp_path / "moved")
