"""Whole scans of the hostile site: planted copies found, traps contained, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crawlers.errors import ScanStoreError
from crawlers.scan import ScanConfig, Scanner
from crawlers.store import ScanStore
from forensics.library import Library

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
with Scanner(sys.argv[1], cfg) as s:
    s.run()
"""


def test_resume_after_kill_gives_the_same_cases(site: Site, scan_library: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cfg = config(site, scan_library, delay=0.15)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(out), json.dumps(cfg.__dict__)], env=env, cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        killed_with = -1
        while time.monotonic() < deadline and child.poll() is None:
            try:
                with sqlite3.connect(f"file:{out / 'scan.sqlite'}?mode=ro", uri=True, timeout=1) as db:
                    killed_with = db.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
            except sqlite3.Error:
                killed_with = -1
            if killed_with >= 2:
                break
            time.sleep(0.05)
        assert child.poll() is None, "the scan ended before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert 2 <= killed_with < len(EXPECTED)
    with Scanner(out) as scanner:  # resume: the configuration comes from the database
        scanner.run()
        assert case_keys(scanner.store, site.base) == EXPECTED
        assert len(scanner.store.cases()) == len(EXPECTED)


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
