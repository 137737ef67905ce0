"""Scans started from the platform keep their databases on the configured PostgreSQL scan
database (``scan_db`` of ``platform.toml``, else ``RONGXIN_SCAN_DB``), as ``rongxin scan
--db`` does; a bad URI is refused when the configuration is read."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from privacy.pg_cluster import ThrowawayCluster
from rongxin.platform.config import ConfigError, load_config
from rongxin.platform.scanrunner import ScanRunner
from tests.forensics.conftest import _photo, write_image
from tests.pg import pg_uri
from tests.rongxin.platform.copysite import copy_site


def test_scan_db_in_the_configuration_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "platform.toml"
    monkeypatch.delenv("RONGXIN_SCAN_DB", raising=False)
    toml.write_text("[platform]\n", encoding="utf-8")
    assert load_config(toml).scan_db is None  # SQLite
    monkeypatch.setenv("RONGXIN_SCAN_DB", "postgresql://env@127.0.0.1:5432/scans")
    assert load_config(toml).scan_db == "postgresql://env@127.0.0.1:5432/scans"
    toml.write_text('[platform]\nscan_db = "postgresql://file@127.0.0.1:5433/scans"\n', encoding="utf-8")
    assert load_config(toml).scan_db == "postgresql://file@127.0.0.1:5433/scans"  # the file wins
    for bad in ('"mysql://u:secret@db/scans"', "5432", '"postgresql://u:secret@h/db?bogus=1"'):
        toml.write_text(f"[platform]\nscan_db = {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="scan_db") as err:
            load_config(toml)
        assert "secret" not in str(err.value)
    toml.write_text("[platform]\n", encoding="utf-8")
    monkeypatch.setenv("RONGXIN_SCAN_DB", "sqlite:///x")
    with pytest.raises(ConfigError, match="RONGXIN_SCAN_DB"):
        load_config(toml)


def _wait(runner: ScanRunner, scan_id: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while runner.state(scan_id).state == "running":
        assert time.monotonic() < deadline, runner.state(scan_id)
        time.sleep(0.1)


def test_a_platform_scan_keeps_its_database_on_postgresql(
    pg_server: ThrowawayCluster, tmp_path: Path
) -> None:
    from forensics.library import Library

    with Library(tmp_path / "lib") as lib:
        lib.register(write_image(tmp_path / "orig.jpg", _photo("astronaut")), "astronaut")
    copy = write_image(tmp_path / "copy.jpg", _photo("astronaut")[::2, ::2].copy(), quality=60).read_bytes()
    files = {
        "/": ("text/html", b'<html><body><img src="/img/c.jpg"></body></html>'),
        "/img/c.jpg": ("image/jpeg", copy),
    }
    uri = pg_uri(pg_server)
    runner = ScanRunner(tmp_path / "scans", tmp_path / "lib", ("127.0.0.1",), db=uri)
    with copy_site(files) as base:
        scan_id = runner.start([base + "/"], "host", ["127.0.0.1"], max_pages=5, depth=1, delay=0.0)
        _wait(runner, scan_id)
    assert runner.state(scan_id).state == "done", runner.state(scan_id)
    directory = tmp_path / "scans" / scan_id
    assert (directory / "scan-db.json").is_file() and not (directory / "scan.sqlite").exists()
    cases = runner.cases(scan_id)
    assert [(c.page_url, c.media_url, c.work_id) for c in cases] == [
        (base + "/", base + "/img/c.jpg", "astronaut")
    ]
    # another platform process (a restart) lists the scan and reads it from PostgreSQL
    again = ScanRunner(tmp_path / "scans", tmp_path / "lib", ("127.0.0.1",), db=uri)
    assert again.scans() == [scan_id]
    stored = again.state(scan_id)
    assert stored.state == "stored" and stored.counts["cases"] == 1 and stored.counts["media.done"] == 1
    assert again.cases(scan_id) == cases and again.config(scan_id)["seeds"] == [base + "/"]
    # the schema is really on the server
    import psycopg

    with psycopg.connect(pg_server.conninfo) as con:
        row = con.execute("SELECT COUNT(*) FROM pg_namespace WHERE nspname LIKE 'scan\\_%%'").fetchone()
    assert row is not None and row[0] >= 1
