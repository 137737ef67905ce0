"""The worker side of a scan on Dask distributed, and connecting to a Dask cluster.

A distributed scan (:class:`crawlers.dask_scan.DaskScanner`) registers one
:class:`ScanWorkerPlugin` per scan with :meth:`distributed.Client.register_plugin`; Dask
sets it up on every worker, present and future (a worker restarted after a crash too).
The plugin holds the worker's state for the scan: one fetcher (its politeness pacer and
robots.txt cache, kept for the hosts the worker is given) and the work library, opened
once per worker from its path and reopened only when its catalogue changes (version =
the catalogue file's size and modification time). Tasks carry only their items or
fetched bytes and the plugin's name, never the library.

Two task functions run on the workers:

* :func:`crawl_batch` fetches a batch of items of one origin, in order, under the
  worker's pacer (the client hands the origin's next free slot over with the batch). The
  bytes of fetched media stay on the worker (:meth:`ScanWorkerPlugin.hold`, keyed by
  their content digest); the client receives only digests, sizes and types;
* :func:`identify_held` fingerprints held media and identifies them in the library, on
  the worker that holds them (the client pins the task there), and drops the held media
  the client does not need identified (their digest is known, or another worker
  identifies it). So each content digest is identified once across the cluster, and
  media bytes never travel to the client and back.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from crawlers.errors import CrawlError
from crawlers.guard import Resolver, system_resolver
from crawlers.steps import Fetched, Outcome, StepRunner, build_fetcher, identify_payload
from crawlers.store import Item
from crawlers.urls import origin_of

#: Names of the scan plugins on the workers start with this.
PLUGIN_PREFIX = "rongxin-scan-"

#: Most bytes of fetched media a worker holds for identification (the oldest are dropped
#: beyond it; the newest is always kept, whatever its size).
HELD_BYTES = 512 * 1024 * 1024

#: Dask settings of the cluster a scan starts (``--dask local[:N]``), applied while it
#: starts (a worker process gets them from its nanny, a restarted one too). An idle Dask
#: server wakes up hundreds of times a second by default; on a machine whose cores the
#: workers share with the client, the scheduler and the nannies, that time is taken from
#: the scan (measured on 2026-12-05: an idle two-worker cluster cost the client process
#: 33 ms of CPU a second and each worker 22 ms; with these, 9 and 3.5 ms):
#:
#: * the workers' statistical profiler off (it samples the running task's stack 100 times a
#:   second, for the dashboard, which a scan's cluster does not start);
#: * no work stealing: a scan keeps at most two crawl tasks per worker thread in flight
#:   and balances its leases itself (:func:`crawlers.dask_scan.lease_worker`), so there is
#:   nothing queued to steal, and identification tasks must run where their media are;
#: * the event loops' health check every 500 ms (not 20 ms; a loop blocked for 3 s is still
#:   reported), the system monitor (CPU, memory, I/O for the dashboard) every 2 s, and
#:   the memory monitor (pause, spill, restart a worker beyond its memory limit) every
#:   second: a worker holds at most :data:`HELD_BYTES` of media and stops a batch at half
#:   of it, so its memory does not jump by gigabytes within a second.
#:
#: A cluster of one's own (``dask scheduler`` / ``dask worker``) takes the same settings
#: from its Dask configuration (``docs/scanning.md``).
SCAN_DASK_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.scheduler.work-stealing": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}

_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")
_LOCAL = re.compile(r"^local(?::(\d{1,3}))?$")


def library_version(path: str | Path) -> tuple[int, int]:
    """The version a worker keys its open library by: the catalogue's size and mtime (ns)."""
    from forensics.library import CATALOGUE

    try:
        st = (Path(path) / CATALOGUE).stat()
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


class ScanWorkerPlugin(WorkerPlugin):
    """A scan's state on one Dask worker: its fetcher, its step runner, its open library.

    Parameters
    ----------
    name : str
        The plugin's name (``PLUGIN_PREFIX`` + the scan's run token); tasks find the
        plugin by it.
    config : dict
        The scan's :class:`~crawlers.scan.ScanConfig` as stored.
    resolver : callable, optional
        Host resolver of the SSRF guard (the worker's system resolver by default).
    """

    def __init__(self, name: str, config: dict[str, Any], resolver: Resolver | None = None) -> None:
        self.name = name
        self.config = config
        self.resolver = resolver
        self.library_opens = 0

    def setup(self, worker: Any = None) -> None:
        """Build the fetcher and open the library (once per worker)."""
        from crawlers.scan import ScanConfig

        self.scan_config = ScanConfig(**self.config)
        self.fetcher = build_fetcher(self.scan_config, self.resolver or system_resolver)
        self.steps = StepRunner(self.scan_config, self.fetcher)
        self._lock = threading.Lock()
        self._library: Any = None
        self._version: tuple[int, int] | None = None
        self._held: OrderedDict[bytes, tuple[bytes, str]] = OrderedDict()
        self._held_bytes = 0
        self.workdir = Path(tempfile.mkdtemp(prefix="rongxin-scan-"))  # payloads for the fingerprinter
        self.library()

    def teardown(self, worker: Any = None) -> None:
        """Close the browser, the fetcher and the library."""
        self.steps.close()
        self.fetcher.close()
        with self._lock:
            if self._library is not None:
                self._library.close()
                self._library = None
            self._held.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def library(self) -> Any:
        """The open work library, reopened when its catalogue changed since it was opened."""
        from forensics.library import Library

        version = library_version(self.scan_config.library)
        with self._lock:
            if self._library is None or version != self._version:
                if self._library is not None:
                    self._library.close()
                self._library = Library.open(self.scan_config.library, readonly=True)
                self._version = version
                self.library_opens += 1
            return self._library

    def identify_file(self, path: Path) -> list[Any]:
        """Matches of a media file in the library."""
        return list(self.library().identify(path))

    def hold(self, fetched: Fetched, cap: int = HELD_BYTES) -> Fetched:
        """Keep ``fetched``'s payload here under its digest; returns it without the payload.

        Beyond ``cap`` bytes the oldest held payloads are dropped (a later
        :meth:`take` of one of them finds nothing, and the client fetches it again).
        """
        if fetched.payload is None:
            return fetched
        with self._lock:
            old = self._held.pop(fetched.digest, None)
            if old is not None:
                self._held_bytes -= len(old[0])
            self._held[fetched.digest] = (fetched.payload, fetched.payload_mime)
            self._held_bytes += len(fetched.payload)
            while self._held_bytes > cap and len(self._held) > 1:
                _, (payload, _) = self._held.popitem(last=False)
                self._held_bytes -= len(payload)
        return dataclasses.replace(fetched, payload=None, held=True)

    def take(self, digest: bytes) -> tuple[bytes, str] | None:
        """The held payload and its type for ``digest`` (no longer held), or ``None``."""
        with self._lock:
            got = self._held.pop(digest, None)
            if got is not None:
                self._held_bytes -= len(got[0])
            return got

    @property
    def held_bytes(self) -> int:
        """Bytes of media held for identification."""
        return self._held_bytes


def _plugin(name: str) -> ScanWorkerPlugin:
    from distributed import get_worker

    plugin = get_worker().plugins.get(name)
    if not isinstance(plugin, ScanWorkerPlugin):
        raise CrawlError(f"this worker has no scan plugin {name!r}")
    return plugin


@dataclass
class BatchResult:
    """What a worker did with a batch: outcomes of the items processed, in order.

    Items after a ``retry`` outcome (the site asked to slow down) are left for later;
    ``next_at`` is the origin's next free slot (wall clock), handed to the next batch.
    """

    worker: str
    outcomes: list[tuple[int, Outcome]]
    next_at: float


def crawl_batch(name: str, items: list[Item], not_before: float) -> BatchResult:
    """Process ``items`` (all of one origin) on this worker, no request before ``not_before``.

    Fetched media stay on this worker (:meth:`ScanWorkerPlugin.hold`); their outcomes
    carry the digest, size and type only (``Fetched.held``). The batch stops early (the rest
    left for later) when the site answers 429/503, or when half of :data:`HELD_BYTES` waits
    here to be identified.
    """
    from distributed import get_worker

    plugin = _plugin(name)
    origin = origin_of(items[0].url)
    pacer = plugin.fetcher.pacer
    pacer.hold(origin, pacer.clock() + (not_before - time.time()))
    outcomes: list[tuple[int, Outcome]] = []
    for item in items:
        out = plugin.steps.process(item)
        if out.fetched is not None:
            out.fetched = plugin.hold(out.fetched)
        outcomes.append((item.id, out))
        if out.state == "retry" or plugin.held_bytes >= HELD_BYTES // 2:
            break  # the site asked to slow down; or enough media wait here to be identified first
    next_at = time.time() + pacer.wait_time(origin)
    return BatchResult(get_worker().address, outcomes, next_at)


Identified = tuple[bytes, list[dict[str, Any]] | None, str]
"""``(digest, matches, error)``; ``matches`` ``None``: the payload was not held here."""


def identify_held(name: str, digests: list[bytes], drop: list[bytes]) -> list[Identified]:
    """Identify the payloads this worker holds under ``digests``, and forget those under ``drop``.

    Returns
    -------
    list of (bytes, list of dict or None, str)
        Per digest, in order: the matches as stored and the error that stopped the
        identification (empty when none); ``None`` matches when this worker does not hold
        the payload (it was dropped to stay within :data:`HELD_BYTES`, or the task runs on
        another worker than the one that fetched it).
    """
    plugin = _plugin(name)
    for digest in drop:
        plugin.take(digest)
    out: list[Identified] = []
    for digest in digests:
        held = plugin.take(digest)
        if held is None:
            out.append((digest, None, ""))
            continue
        payload, mime = held
        fetched = Fetched("", digest, mime, len(payload), payload, mime)
        matches, error = identify_payload(
            fetched, plugin.identify_file, plugin.scan_config.clip_seconds, plugin.workdir
        )
        out.append((digest, matches, error))
    return out


def parse_address(address: str) -> tuple[str, int | None]:
    """``("local", N or None)`` for ``local[:N]``, or ``(address, None)`` for a scheduler address.

    Raises
    ------
    CrawlError
        Neither ``local[:N]`` nor ``tcp://HOST:PORT`` / ``tls://HOST:PORT``.

    Examples
    --------
    >>> parse_address("local:2"), parse_address("tls://10.0.0.5:8786")
    (('local', 2), ('tls://10.0.0.5:8786', None))
    """
    local = _LOCAL.match(address)
    if local:
        n = int(local.group(1)) if local.group(1) else None
        if n is not None and n < 1:
            raise CrawlError("local:N needs N >= 1 workers")
        return "local", n
    m = _ADDRESS.match(address)
    if not m or not 0 < int(m.group(3)) < 65536:
        raise CrawlError(
            f"--dask {address!r} is not a scheduler address: use local, local:N, tcp://HOST:PORT or tls://HOST:PORT"
        )
    return address, None


def local_cluster(n_workers: int, *, processes: bool = True) -> Any:
    """A new ``LocalCluster`` for a scan: ``n_workers`` workers of one thread each, with
    :data:`SCAN_DASK_CONFIG`, listening on 127.0.0.1 only, without a dashboard.

    Parameters
    ----------
    n_workers : int
        Worker processes (or threads of this process, ``processes=False``).
    processes : bool
        Workers in processes of their own, each started (and restarted when it dies) by a
        nanny in this process; or as threads of this process.

    Returns
    -------
    distributed.LocalCluster
        Started; the caller closes it.
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set(SCAN_DASK_CONFIG):
        return LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            host="127.0.0.1",
            protocol="tcp://",
        )


@contextmanager
def connect(
    address: str, workers: int | None = None, *, processes: bool = True, timeout: float = 10.0
) -> Iterator[Any]:
    """A :class:`distributed.Client` of the scheduler at ``address``, or of a new ``LocalCluster``.

    Parameters
    ----------
    address : str
        ``local`` or ``local:N`` (a cluster of N workers on this machine, one thread each;
        ``workers`` or the CPU count when N is not given; :func:`local_cluster`), or ``tcp://HOST:PORT`` /
        ``tls://HOST:PORT`` of a running ``dask scheduler``. TLS certificates come from
        Dask's configuration (``distributed.comm.tls``).
    processes : bool
        Local workers in processes (the default) or as threads of this process.
    timeout : float
        Seconds to reach the scheduler.

    Raises
    ------
    CrawlError
        A bad address, or no scheduler answering there in time.
    """
    target, n = parse_address(address)
    from distributed import Client

    cluster = None
    try:
        if target == "local":
            cluster = local_cluster(n or workers or os.cpu_count() or 1, processes=processes)
            client = Client(cluster, timeout=timeout)  # type: ignore[no-untyped-call]
        else:
            client = Client(target, timeout=timeout)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise CrawlError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]
        if cluster is not None:
            cluster.close()
