"""Whole scans of the hostile site: planted copies found, traps contained, resume after kill -9."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from crawlers.errors import ScanStoreError
from crawlers.scan import ScanConfig, Scanner
from crawlers.scandb import POINTER_NAME
from crawlers.store import ScanStore
from forensics.library import Library
from privacy.pg_cluster import ThrowawayCluster
from tests.pg import pg_uri

from .site import Site

ROOT = Path(__file__).resolve().parents[2]


def config(site: Site, library: Path, **kw: Any) -> ScanConfig:
    opts: dict[str, Any] = {
        "seeds": [site.base + "/"],
        "library": str(library),
        "scope": "host",
        "depth": 3,
        "max_pages": 40,
        "delay": 0.0,
        "allow": ["127.0.0.1"],
        "page_bytes": 1 << 20,
        "media_bytes": 4 << 20,
        "request_seconds": 1.5,
        "contact": "mailto:scans@rongxin.test",
    }
    opts.update(kw)
    return ScanConfig(**opts)


def case_keys(store: ScanStore, base: str) -> set[tuple[str, str, str]]:
    return {(c.page_url.removeprefix(base), c.media_url.removeprefix(base), c.work_id) for c in store.cases()}


EXPECTED = {
    ("/gallery.html", "/img/a.jpg", "astronaut"),
    ("/gallery.html", "/img/b.png", "coffee"),
    ("/malformed.html", "/img/b.png", "coffee"),
    ("/busy.html", "/img/c.jpg", "chelsea"),
    ("/photo-page", "/photo-page", "chelsea"),
    ("/music.html", "/media/song.wav", "song"),
    ("/mirror.html", "/mirror/a.jpg", "astronaut"),
    ("/mirror.html", "/mirror2/a.jpg?size=l", "astronaut"),
    ("/mirror.html", "/img/a.jpg", "astronaut"),
}


def test_scan_finds_planted_copies_and_contains_the_traps(
    site: Site, scan_library: Path, tmp_path: Path
) -> None:
    calls: list[str] = []
    lib = Library.open(scan_library, readonly=True)

    def identify(path: Path) -> list[Any]:
        calls.append(path.suffix)
        return lib.identify(path)

    t0 = time.monotonic()
    try:
        with Scanner(tmp_path / "scan", config(site, scan_library), identify=identify) as scanner:
            summary = scanner.run()
            store = scanner.store
            assert case_keys(store, site.base) == EXPECTED
            items = {u.removeprefix(site.base): (k, s, n) for u, k, s, n in store.items()}
            song = next(c for c in store.cases() if c.work_id == "song")
            assert song.evidence["evidence"]  # spans of the audio match
            assert all(c.robots_obeyed and len(c.content_digest) == 32 for c in store.cases())
    finally:
        lib.close()
    elapsed = time.monotonic() - t0
    paths = site.paths()
    assert not any(p.startswith("/private/") for p in paths), paths
    assert items["/private/secret.html"][1] == "skipped"
    assert items["/escape"][1] == "failed" and "127.0.0.2" in items["/escape"][2]
    assert items["/metadata"][1] == "failed" and "metadata" in items["/metadata"][2]
    for u in ("/tarpit", "/endless", "/bomb", "/loop/1", "/missing", "/broken"):
        assert items[u][1] == "failed", (u, items[u])
    assert items["/a/b/a/b/a/b/"][1] == "skipped"  # trap: remembered, never fetched
    assert "/a/b/a/b/a/b/" not in paths
    assert sum(p.startswith("/calendar") for p in paths) == 1  # the calendar's next days are traps
    assert paths.count("/busy.html") == 2  # 429, then served after Retry-After
    # one picture under four URLs, fetched four times but fingerprinted once
    assert sum(p.split("?")[0] in ("/img/a.jpg", "/mirror/a.jpg", "/mirror2/a.jpg") for p in paths) == 3
    # distinct contents: a, b, c (also served as /photo-page), the decoy, the song
    assert len(calls) == summary["media.fingerprinted"] == 5
    assert summary["cases"] == len(EXPECTED)
    assert elapsed < 20


def test_ignoring_robots_is_recorded(site: Site, scan_library: Path, tmp_path: Path) -> None:
    cfg = config(
        site, scan_library, seeds=[site.base + "/private/secret.html"], scope="page", obey_robots=False
    )
    with Scanner(tmp_path / "s", cfg) as scanner:
        scanner.run()
        cases = scanner.store.cases()
    assert [(c.work_id, c.robots_obeyed) for c in cases] == [("astronaut", False)]


def test_scan_directory_rules(site: Site, scan_library: Path, tmp_path: Path) -> None:
    with pytest.raises(ScanStoreError, match="holds no scan"):
        Scanner(tmp_path / "nothing")
    cfg = config(site, scan_library, seeds=[site.base + "/missing"], scope="page")
    Scanner(tmp_path / "s", cfg).close()
    with pytest.raises(ScanStoreError, match="already holds"):
        Scanner(tmp_path / "s", cfg)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "scan.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ScanStoreError):
        Scanner(tmp_path / "bad")


_CHILD = """
import sys
from crawlers.scan import ScanConfig, Scanner
import json
cfg = ScanConfig(**json.loads(sys.argv[2]))
with Scanner(sys.argv[1], cfg, db=sys.argv[3] or None) as s:
    s.run()
"""


def _count_cases(out: Path, conninfo: str | None) -> int:
    """Cases committed so far, read beside the running scan (-1 before its tables exist)."""
    if conninfo is None:
        try:
            with sqlite3.connect(f"file:{out / 'scan.sqlite'}?mode=ro", uri=True, timeout=1) as db:
                return int(db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])
        except sqlite3.Error:
            return -1
    try:
        schema = json.loads((out / POINTER_NAME).read_text())["schema"]
        with psycopg.connect(conninfo, connect_timeout=2) as con:
            row = con.execute(f'SELECT COUNT(*) FROM "{schema}".cases').fetchone()
            return -1 if row is None else int(row[0])
    except (OSError, ValueError, psycopg.Error):
        return -1


def kill_after_cases(child: subprocess.Popen[bytes], out: Path, conninfo: str | None, cases: int = 2) -> int:
    """SIGKILL the scanning ``child`` once ``cases`` cases are committed; the count seen last."""
    try:
        deadline, seen = time.monotonic() + 90, -1
        while time.monotonic() < deadline and child.poll() is None:
            seen = _count_cases(out, conninfo)
            if seen >= cases:
                break
            time.sleep(0.05)
        assert child.poll() is None, "the scan ended before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    return seen


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_resume_after_kill_gives_the_same_cases(
    site: Site, scan_library: Path, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    out = tmp_path / "killed"
    cluster = request.getfixturevalue("pg_server") if backend == "postgresql" else None
    uri = pg_uri(cluster) if cluster is not None else ""
    cfg = config(site, scan_library, delay=0.15)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(out), json.dumps(cfg.__dict__), uri], env=env, cwd=ROOT
    )
    killed_with = kill_after_cases(child, out, cluster.conninfo if cluster is not None else None)
    assert 2 <= killed_with < len(EXPECTED)
    with Scanner(out) as scanner:  # resume: the configuration (and the database) from the directory
        assert scanner.store.backend == backend
        scanner.run()
        assert case_keys(scanner.store, site.base) == EXPECTED
        assert len(scanner.store.cases()) == len(EXPECTED)


def _comparable(store: ScanStore) -> list[tuple[Any, ...]]:
    """The cases without their time of finding."""
    return [dataclasses.astuple(dataclasses.replace(c, found_at="")) for c in store.cases()]


def test_a_scan_into_postgresql_records_what_sqlite_does(
    site: Site, scan_library: Path, tmp_path: Path, pg_server: ThrowawayCluster
) -> None:
    cfg = config(site, scan_library, seeds=[site.base + "/mirror.html", site.base + "/gallery.html"], depth=0)
    results = {}
    for name, db in (("sqlite", None), ("postgresql", pg_uri(pg_server))):
        with Scanner(tmp_path / name, cfg, db=db) as scanner:
            summary = scanner.run()
            counts = (summary["cases"], summary["media.fingerprinted"], summary["media.done"])
            results[name] = (_comparable(scanner.store), sorted(scanner.store.items()), counts)
            assert scanner.store.backend == name
    assert results["sqlite"] == results["postgresql"]
    cases, _, counts = results["postgresql"]
    assert counts == (len(cases), 3, 5) == (5, 3, 5)  # a.jpg under three URLs fingerprinted once
    assert {c[4] for c in cases} == {"astronaut", "coffee"}


def test_cli_scan_and_cases(site: Site, scan_library: Path, tmp_path: Path) -> None:
    from rongxin.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["scan", site.base + "/busy.html", "--library", str(scan_library), "--out", str(out)]
    args += ["--scope", "page", "--delay", "0", "--allow", "127.0.0.1", "--quiet"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["cases"] == 1
    r = runner.invoke(app, ["cases", "list", "--out", str(out), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["work_id"] == "chelsea"
    r = runner.invoke(app, ["cases", "show", "1", "--out", str(out)])
    shown = json.loads(r.stdout)
    assert shown["media_url"].endswith("/img/c.jpg") and len(shown["content_sm3"]) == 64
    assert runner.invoke(app, ["cases", "show", "9", "--out", str(out)]).exit_code == 1
    r = runner.invoke(app, ["scan", "resume", str(out), "--quiet"])
    assert r.exit_code == 0 and json.loads(r.stdout.strip().splitlines()[-1])["cases"] == 1
    assert runner.invoke(app, ["scan", "resume", str(tmp_path / "none"), "-q"]).exit_code == 1
    bad = runner.invoke(
        app, ["scan", "ftp://x.test/", "--library", str(scan_library), "--out", str(tmp_path / "f")]
    )
    assert bad.exit_code == 1


def test_per_host_budgets(site: Site, scan_library: Path, tmp_path: Path) -> None:
    cfg = config(site, scan_library, host_pages=3, host_bytes=10**9)
    with Scanner(tmp_path / "pages", cfg) as scanner:
        summary = scanner.run()
        notes = [n for _, kind, state, n in scanner.store.items() if kind == "page" and state == "skipped"]
    assert summary.get("page.done", 0) + summary.get("page.failed", 0) <= 3
    assert any("budget" in n for n in notes)
    cfg = config(site, scan_library, seeds=[site.base + "/mirror.html"], scope="page", host_bytes=2000)
    with Scanner(tmp_path / "bytes", cfg) as scanner:
        summary = scanner.run()
    # the page leaves budget for one picture (a fetch may overshoot by one body); the other two are skipped
    assert summary["cases"] == 1 and summary["media.skipped"] == 2


def test_cli_scan_into_postgresql(
    site: Site, scan_library: Path, tmp_path: Path, pg_server: ThrowawayCluster
) -> None:
    from rongxin.cli import app

    runner = CliRunner()
    out = tmp_path / "pg"
    args = ["scan", site.base + "/gallery.html", "--library", str(scan_library), "--out", str(out)]
    args += ["--scope", "page", "--delay", "0", "--allow", "127.0.0.1", "--quiet"]
    r = runner.invoke(app, [*args, "--db", pg_uri(pg_server)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["cases"] == 2
    assert not (out / "scan.sqlite").exists() and (out / POINTER_NAME).is_file()
    r = runner.invoke(app, ["cases", "list", "--out", str(out), "--json"])
    assert r.exit_code == 0 and {json.loads(x)["work_id"] for x in r.stdout.splitlines()} == {
        "astronaut",
        "coffee",
    }
    r = runner.invoke(app, ["scan", "resume", str(out), "-q"], env={"RONGXIN_SCAN_DB": pg_uri(pg_server)})
    assert r.exit_code == 0 and json.loads(r.stdout.strip().splitlines()[-1])["cases"] == 2
    bad = runner.invoke(
        app, [*args[:5], str(tmp_path / "bad"), "--db", "postgresql://u:hunter2@127.0.0.1:1/x"]
    )
    assert bad.exit_code == 1 and "cannot reach PostgreSQL" in bad.output and "hunter2" not in bad.output
