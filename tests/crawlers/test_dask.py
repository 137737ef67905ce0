"""Scans on Dask distributed: same cases as one process, one worker per host at a time,
the library opened once per worker, a killed worker loses nothing, a client killed with
SIGKILL resumes with the same cases (SQLite and PostgreSQL), bad addresses refused."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crawlers.cluster import SCAN_DASK_CONFIG, connect, local_cluster, parse_address
from crawlers.dask_scan import DaskScanner, home_worker, lease_worker
from crawlers.errors import CrawlError
from crawlers.scan import ScanConfig, Scanner
from crawlers.store import ScanStore
from forensics.library import Library
from privacy.pg_cluster import ThrowawayCluster
from tests.pg import pg_uri

from .site import Site
from .test_scan import EXPECTED, ROOT, case_keys, config, kill_after_cases
from .vhosts import VHosts, picture_of, serve_vhosts

HOSTS = 5


def vhost_config(hosts: VHosts, library: Path, **kw: Any) -> ScanConfig:
    opts: dict[str, Any] = {
        "seeds": [b + "/" for b in hosts.bases],
        "library": str(library),
        "scope": "host",
        "depth": 2,
        "max_pages": 100,
        "delay": 0.0,
        "allow": ["127.0.0.1"],
        "render": "never",
        "request_seconds": 5.0,
    }
    opts.update(kw)
    return ScanConfig(**opts)


def cases_of(store: ScanStore) -> set[tuple[str, str, str]]:
    return {(c.page_url, c.media_url, c.work_id) for c in store.cases()}


WORK_OF = {"a.jpg": "astronaut", "b.png": "coffee", "c.jpg": "chelsea"}


def planted_cases(hosts: VHosts) -> set[tuple[str, str, str]]:
    """The cases the sites hold: every picture page showing a registered work (not the decoy)."""
    out = set()
    for k, base in enumerate(hosts.bases):
        for i in range(3):
            name = picture_of(k, i, sorted([*WORK_OF, "decoy.jpg"]))
            if name in WORK_OF:
                out.add((f"{base}/p/{i}.html", f"{base}/img/{name}", WORK_OF[name]))
    return out


@pytest.fixture
def pictures(planted: dict[str, tuple[str, bytes]]) -> dict[str, tuple[str, bytes]]:
    """Three registered works (one with a lying content type) and a decoy."""
    return {
        "a.jpg": planted["/img/a.jpg"],
        "b.png": planted["/img/b.png"],
        "c.jpg": planted["/img/c.jpg"],
        "decoy.jpg": planted["/img/decoy.jpg"],
    }


def test_two_workers_find_what_one_process_finds_and_share_no_host(
    pictures: dict[str, tuple[str, bytes]],
    scan_library: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve_vhosts(HOSTS, pictures) as hosts:
        with Scanner(tmp_path / "one", vhost_config(hosts, scan_library)) as one:
            one.run()
            expected = cases_of(one.store)
        assert expected == planted_cases(hosts)
        single_paths = sorted(hosts.paths)
        hosts.paths.clear()
        hosts.peak.clear()
        hosts.peak_all = 0

        opens: list[str] = []
        real_open = Library.open.__func__  # type: ignore[attr-defined]

        def counting_open(cls: type[Library], /, directory: Any, **kw: Any) -> Library:
            opens.append(str(directory))
            return real_open(cls, directory, **kw)  # type: ignore[no-any-return]

        monkeypatch.setattr(Library, "open", classmethod(counting_open))
        cfg = vhost_config(hosts, scan_library)
        with DaskScanner(tmp_path / "two", cfg, dask="local:2", processes=False, batch=2) as two:
            summary = two.run()
            assert cases_of(two.store) == expected
    assert summary["workers"] == 2
    assert summary["tasks"]["crawl"] > 2 * HOSTS  # hosts really were handed out batch by batch
    # each distinct content identified once, by digest, though fetched under many URLs
    assert summary["identified"] == summary["media.fingerprinted"] == len(pictures)
    assert opens == [str(scan_library)] * 2  # once per worker, not per task
    assert max(hosts.peak.values()) == 1, hosts.peak  # never two requests to one host at once
    assert hosts.peak_all >= 2  # but hosts were fetched in parallel
    assert not any(p.startswith("/private/") for _, p in hosts.paths)
    # the same fetches, none repeated; robots.txt at most once per worker that served the host
    assert sorted(p for p in hosts.paths if p[1] != "/robots.txt") == [
        p for p in single_paths if p[1] != "/robots.txt"
    ]
    robots = [port for port, p in hosts.paths if p == "/robots.txt"]
    assert set(robots) == set(hosts.ports) and max(robots.count(p) for p in hosts.ports) <= 2


def test_the_delay_between_requests_to_a_host_holds_across_workers(
    pictures: dict[str, tuple[str, bytes]],
    scan_library: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delay = 0.25
    turn = itertools.count()

    def alternate(origin: str, workers: list[str]) -> str:  # every batch on the other worker
        return workers[next(turn) % len(workers)]

    monkeypatch.setattr("crawlers.dask_scan.home_worker", alternate)
    with serve_vhosts(3, pictures, pause=0.0) as hosts:
        cfg = vhost_config(hosts, scan_library, delay=delay)
        with DaskScanner(tmp_path / "s", cfg, dask="local:2", processes=False, batch=1) as scanner:
            summary = scanner.run()
            assert cases_of(scanner.store) == planted_cases(hosts)
    assert summary["tasks"]["crawl"] >= 3 * 4  # every host's items came in several batches
    for port, starts in hosts.starts.items():
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        # arrival times at the server jitter (a new connection arrives later than a reused
        # one); a slot not handed over between workers would show gaps near zero
        assert len(starts) >= 8 and min(gaps) >= delay * 0.6 and sum(gaps) / len(gaps) >= delay, (port, gaps)


def test_a_task_that_keeps_failing_gives_its_items_back_and_then_fails_them(
    pictures: dict[str, tuple[str, bytes]],
    scan_library: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("fingerprinter crashed")

    monkeypatch.setattr("crawlers.cluster.identify_payload", broken)
    with serve_vhosts(2, pictures) as hosts:
        cfg = vhost_config(hosts, scan_library, max_attempts=2)
        with DaskScanner(tmp_path / "s", cfg, dask="local:2", processes=False) as scanner:
            summary = scanner.run()
            items = scanner.store.items()
    media = [(state, note) for _, kind, state, note in items if kind == "media"]
    assert len(media) == 6 and all(s == "failed" and "fingerprinter crashed" in n for s, n in media), media
    pages = [state for _, kind, state, _ in items if kind == "page"]
    assert pages.count("done") == 8 and summary["cases"] == 0
    assert summary["tasks"]["lost"] >= 4  # every distinct content tried twice (max_attempts)


def test_hostile_site_on_workers_gives_the_cases_of_one_process(
    site: Site, scan_library: Path, tmp_path: Path
) -> None:
    cfg = config(site, scan_library, render="never")
    with DaskScanner(tmp_path / "scan", cfg, dask="local:2", processes=False) as scanner:
        summary = scanner.run()
        assert case_keys(scanner.store, site.base) == EXPECTED
        items = {u.removeprefix(site.base): s for u, _, s, _ in scanner.store.items()}
    paths = site.paths()
    assert not any(p.startswith("/private/") for p in paths)
    assert items["/escape"] == items["/bomb"] == items["/tarpit"] == "failed"
    assert paths.count("/busy.html") == 2  # 429, then served after Retry-After
    assert summary["media.fingerprinted"] == 5


def test_a_killed_worker_loses_no_case(
    pictures: dict[str, tuple[str, bytes]], scan_library: Path, tmp_path: Path
) -> None:
    with serve_vhosts(HOSTS, pictures, pause=0.05) as hosts:
        cfg = vhost_config(hosts, scan_library)
        expected = planted_cases(hosts)
        killed: list[int] = []

        with DaskScanner(tmp_path / "two", cfg, dask="local:2", batch=2) as scanner:

            def kill_one(counts: dict[str, int]) -> None:
                if killed or counts.get("page.done", 0) < 3:
                    return
                client = scanner.client
                busy = [w for w, keys in client.processing().items() if keys]
                pids = client.run(os.getpid, workers=busy[:1])
                for pid in pids.values():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

            summary = scanner.run(kill_one)
            assert cases_of(scanner.store) == expected
    assert killed, "the scan ended before a worker could be killed"
    assert summary.get("page.pending", 0) == summary.get("media.pending", 0) == 0
    assert max(hosts.peak.values()) == 1, hosts.peak


def test_bad_scheduler_addresses_are_clear_crawl_errors(tmp_path: Path) -> None:
    for bad in ("http://127.0.0.1:8786", "tcp://127.0.0.1", "tcp://127.0.0.1:99999", "local:0", "remote", ""):
        with pytest.raises(CrawlError, match=r"scheduler address|N >= 1"):
            parse_address(bad)
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with (
        pytest.raises(CrawlError, match=f"cannot reach the Dask scheduler at {address}"),
        connect(address, timeout=1.0),
    ):
        pass
    assert parse_address("local") == ("local", None)
    assert parse_address("tcp://[::1]:8786") == ("tcp://[::1]:8786", None)


def test_home_worker_is_stable_and_moves_only_a_lost_workers_hosts() -> None:
    workers = [f"tcp://127.0.0.1:{4000 + i}" for i in range(4)]
    origins = [f"http://h{i}.test" for i in range(200)]
    before = {o: home_worker(o, workers) for o in origins}
    assert len(set(before.values())) == 4  # spread over every worker
    after = {o: home_worker(o, workers[1:]) for o in origins}
    moved = {o for o in origins if before[o] != after[o]}
    assert moved == {o for o in origins if before[o] == workers[0]}


def test_a_lease_spills_from_a_full_home_worker_to_one_with_room() -> None:
    workers = [f"tcp://127.0.0.1:{4000 + i}" for i in range(3)]
    threads = {workers[0]: 1, workers[1]: 2, workers[2]: 1}
    origins = [f"http://h{i}.test" for i in range(60)]
    for o in origins:
        home = home_worker(o, workers)
        assert lease_worker(o, workers, threads, {}) == home  # room at home: stays
        full = {home: 2 * threads[home]}
        moved = lease_worker(o, workers, threads, full)
        assert moved != home
        # the most room: the two-thread worker unless it is the full home
        assert moved == (workers[1] if home != workers[1] else workers[0])
        # every worker full: the home keeps it (the scan's total cap holds the line)
        assert lease_worker(o, workers, threads, {w: 2 * threads[w] for w in workers}) == home
    # hashing alone leaves some worker with more homes than another; spilling evens the
    # tasks in flight: hand out leases one by one, each to lease_worker's choice
    busy: dict[str, int] = {}
    for o in origins[:8]:
        w = lease_worker(o, workers, threads, busy)
        busy[w] = busy.get(w, 0) + 1
    assert busy == {workers[0]: 2, workers[1]: 4, workers[2]: 2}


class _Stop(Exception):
    pass


def test_a_client_stopped_mid_scan_resumes_on_the_cluster(
    pictures: dict[str, tuple[str, bytes]], scan_library: Path, tmp_path: Path
) -> None:
    with serve_vhosts(HOSTS, pictures) as hosts:
        cfg = vhost_config(hosts, scan_library)

        def stop(counts: dict[str, int]) -> None:
            if counts.get("page.done", 0) >= 4:
                raise _Stop  # the client dies with batches and identifications in flight

        with DaskScanner(tmp_path / "s", cfg, dask="local:2", processes=False, batch=2) as first:
            with pytest.raises(_Stop):
                first.run(stop)
            part = cases_of(first.store)
            pending = first.store.counts().get("page.pending", 0) + first.store.counts().get(
                "media.pending", 0
            )
        assert pending > 0 and part < planted_cases(hosts)
        with DaskScanner(tmp_path / "s", dask="local:2", processes=False) as again:
            summary = again.run()
            assert cases_of(again.store) == planted_cases(hosts)
    assert summary["cases"] == len(planted_cases(hosts))
    assert max(hosts.peak.values()) == 1


def test_cli_refuses_a_bad_scheduler_address_before_making_the_scan(
    scan_library: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from rongxin.cli import app

    out = tmp_path / "cli"
    bad = CliRunner().invoke(app, ["scan", "http://127.0.0.1:1/", "--library", str(scan_library), "--out",
                                   str(out), "--dask", "udp://127.0.0.1:1", "--quiet"])  # fmt: skip
    assert bad.exit_code != 0 and "not a scheduler address" in bad.output
    assert not out.exists()


@pytest.mark.slow
def test_cli_scan_on_a_local_cluster(
    pictures: dict[str, tuple[str, bytes]], scan_library: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from rongxin.cli import app

    out = tmp_path / "cli"
    with serve_vhosts(2, pictures) as hosts:
        args = ["scan", *[b + "/" for b in hosts.bases], "--library", str(scan_library), "--out", str(out),
                "--delay", "0", "--allow", "127.0.0.1", "--render", "never", "--workers", "2",
                "--quiet"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output.strip().splitlines()[-1])
        assert summary["workers"] == 2 and summary["cases"] == len(planted_cases(hosts))
    resumed = CliRunner().invoke(app, ["scan", "resume", str(out), "--dask", "local:1", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.output.strip().splitlines()[-1])["cases"] == summary["cases"]


def test_a_dask_scan_into_postgresql_records_what_sqlite_does(
    pictures: dict[str, tuple[str, bytes]], scan_library: Path, tmp_path: Path, pg_server: ThrowawayCluster
) -> None:
    got = {}
    with serve_vhosts(3, pictures) as hosts:
        cfg = vhost_config(hosts, scan_library)
        for name, db in (("sqlite", None), ("postgresql", pg_uri(pg_server))):
            with DaskScanner(
                tmp_path / name, cfg, dask="local:2", processes=False, batch=2, db=db
            ) as scanner:
                summary = scanner.run()
                assert scanner.store.backend == name
                cases = {
                    (c.page_url, c.media_url, c.final_url, c.work_id, c.kind, c.score, c.content_digest)
                    for c in scanner.store.cases()
                }
                got[name] = (cases, sorted(scanner.store.items()), summary["media.fingerprinted"])
        assert {(*c[:2], c[3]) for c in got["sqlite"][0]} == planted_cases(hosts)
    assert got["postgresql"] == got["sqlite"]
    assert (tmp_path / "postgresql" / "scan-db.json").is_file()
    assert not (tmp_path / "postgresql" / "scan.sqlite").exists()


_CHILD = """
import json, sys
from crawlers.dask_scan import DaskScanner
from crawlers.scan import ScanConfig
cfg = ScanConfig(**json.loads(sys.argv[2]))
with DaskScanner(sys.argv[1], cfg, dask="local:2", processes=False, batch=2, db=sys.argv[3] or None) as s:
    s.run()
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_client_killed_with_sigkill_resumes_with_the_same_cases(
    pictures: dict[str, tuple[str, bytes]],
    scan_library: Path,
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    """The client records finished tasks in groups, one transaction each: a kill between or
    inside groups loses no case and repeats none."""
    out = tmp_path / "killed"
    cluster = request.getfixturevalue("pg_server") if backend == "postgresql" else None
    with serve_vhosts(4, pictures, pause=0.05) as hosts:
        cfg = vhost_config(hosts, scan_library, delay=0.1)
        expected = planted_cases(hosts)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        uri = pg_uri(cluster) if cluster is not None else ""
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(out), json.dumps(cfg.__dict__), uri], env=env, cwd=ROOT
        )
        killed_with = kill_after_cases(child, out, cluster.conninfo if cluster is not None else None)
        assert 2 <= killed_with < len(expected)
        with DaskScanner(out, dask="local:2", processes=False) as again:
            assert again.store.backend == backend
            summary = again.run()
            assert cases_of(again.store) == expected
            assert len(again.store.cases()) == len(expected)  # none twice
    assert summary.get("page.pending", 0) == summary.get("media.pending", 0) == 0
    assert max(hosts.peak.values()) == 1


def test_a_worker_holds_fetched_media_by_digest_within_its_cap(scan_library: Path) -> None:
    from crawlers.cluster import ScanWorkerPlugin
    from crawlers.steps import Fetched

    plugin = ScanWorkerPlugin(
        "rongxin-scan-test", {"seeds": ["http://a.test/"], "library": str(scan_library)}
    )
    plugin.setup()
    try:

        def fetched(tag: bytes, size: int) -> Fetched:
            return Fetched("http://a.test/x", tag * 32, "image/jpeg", size, tag * size, "image/jpeg")

        a = plugin.hold(fetched(b"a", 40), cap=100)
        assert a.held and a.payload is None and a.digest == b"a" * 32 and a.size == 40
        plugin.hold(fetched(b"b", 40), cap=100)
        plugin.hold(fetched(b"c", 40), cap=100)  # 120 > 100: the oldest (a) is dropped
        assert plugin.held_bytes == 80 and plugin.take(b"a" * 32) is None
        assert plugin.take(b"b" * 32) == (b"b" * 40, "image/jpeg") and plugin.take(b"b" * 32) is None
        plugin.hold(fetched(b"d", 500), cap=100)  # the newest is kept whatever its size
        assert plugin.take(b"c" * 32) is None and plugin.held_bytes == 500
        failed = Fetched("http://a.test/s.m3u8", b"e" * 32, "application/x-mpegurl", 0, None, "", error="no")
        assert plugin.hold(failed) is failed  # nothing to hold: returned as it is
    finally:
        plugin.teardown()


def _timers(dask_worker: Any) -> tuple[list[str], float]:
    return sorted(dask_worker.periodic_callbacks), dask_worker.periodic_callbacks["tick"].callback_time


def test_a_scans_local_cluster_has_its_dask_settings_in_the_worker_processes() -> None:
    import dask
    from distributed import Client

    stock = dask.config.get("distributed.worker.profile.enabled")
    with local_cluster(1) as cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        ((names, tick),) = client.run(_timers).values()  # in the worker process, set up by its nanny
        assert "profile" not in names and "profile-cycle" not in names
        assert "heartbeat" in names and "memory_monitor" in names  # the rest still runs
        assert tick == 500.0
        extensions = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.extensions))
        assert "stealing" not in extensions and "amm" in extensions
        assert client.submit(sum, [1, 2]).result() == 3
    assert dask.config.get("distributed.worker.profile.enabled") == stock  # this process's own config
    assert SCAN_DASK_CONFIG["distributed.admin.tick.interval"] == "500ms"


def test_pending_items_are_leased_per_origin_media_first_and_when_due() -> None:
    from crawlers.dask_scan import PendingByOrigin
    from crawlers.store import Item

    pending = PendingByOrigin()
    for i, (url, kind) in enumerate(
        [("http://a.test/1", "page"), ("http://a.test/x.jpg", "media"), ("http://b.test/1", "page"),
         ("http://a.test/2", "page"), ("http://c.test/1", "page"), ("http://b.test/y.jpg", "media")],
        start=1,
    ):  # fmt: skip
        pending.add(Item(i, url, kind, 0, "", 0), due=50.0 if url == "http://b.test/y.jpg" else 0.0)
    assert len(pending) == 6 and pending.last_id == 6
    got = pending.take(10.0, lambda o: o != "http://c.test", batch=2, page_room=10, origins=5)
    assert [(o, [i.id for i in items]) for o, items in got] == [
        ("http://a.test", [2, 1]),
        ("http://b.test", [3]),
    ]
    assert len(pending) == 3  # a.test/2, c.test/1 (origin busy), b.test/y.jpg (not due yet)
    got = pending.take(60.0, lambda o: True, batch=8, page_room=1, origins=5)
    assert [(o, [i.id for i in items]) for o, items in got] == [
        ("http://b.test", [6]),
        ("http://a.test", [4]),
    ]
    assert len(pending) == 1  # c.test/1 waits for page room
    assert pending.take(60.0, lambda o: True, batch=8, page_room=0, origins=5) == []
    assert [i.id for _, items in pending.take(60.0, lambda o: True, 8, 1, 5) for i in items] == [5]
