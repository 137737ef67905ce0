"""A scan spread over Dask distributed workers; the scan database stays with this process.

The client process (this one) owns the scan database, exactly as a single-process
:class:`~crawlers.scan.Scanner`, and is the only one that writes it; workers fetch and
identify and send their outcomes back. So a killed client resumes like any scan
(``rongxin scan resume DIR``, with or without ``--dask``), and items handed out when it
died are still pending in the database.

Politeness across workers: the client leases each origin to at most one task at a time,
so no two workers ever fetch from one host at once. A lease is one :func:`crawl_batch
<crawlers.cluster.crawl_batch>` task of up to ``batch`` items of the origin, sent
preferably to the origin's home worker (rendezvous hashing of the origin over the
current worker addresses: an origin stays on its worker, whose pacer and robots.txt
cache keep its state, and only a lost worker's origins move). The batch returns the
origin's next free slot (wall clock); the client leases the origin again only from then,
and the next batch carries the slot to whichever worker runs it, whose pacer waits for it
too, so the per-host delay holds across workers.

Identification runs as separate tasks (:func:`identify_task
<crawlers.cluster.identify_task>`) keyed by the content digest: one picture fetched
under many URLs, by many workers, is fingerprinted once, and Dask places the task on any
free worker. A worker lost mid-task: Dask runs its tasks again on another worker
(``distributed.scheduler.allowed-failures`` times); a task that still fails puts its
items back in the frontier, counted as an attempt.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from crawlers.cluster import PLUGIN_PREFIX, BatchResult, ScanWorkerPlugin, connect, crawl_batch, identify_task
from crawlers.errors import CrawlError
from crawlers.guard import Resolver, system_resolver
from crawlers.scan import Progress, ScanConfig, Scanner
from crawlers.steps import Fetched
from crawlers.store import Item
from crawlers.urls import origin_of

#: Fetched payloads larger than this go to the cluster with ``scatter``, not inside a task.
SCATTER_BYTES = 1 << 20


def home_worker(origin: str, workers: list[str]) -> str:
    """The worker an origin is given to: highest rendezvous hash of (worker, origin).

    Stable while the worker lives; when a worker leaves only its origins move.

    Examples
    --------
    >>> ws = ["tcp://10.0.0.1:4000", "tcp://10.0.0.2:4000"]
    >>> home_worker("http://a.example", ws) == home_worker("http://a.example", list(reversed(ws)))
    True
    """
    return max(workers, key=lambda w: hashlib.blake2b(f"{w}|{origin}".encode(), digest_size=8).digest())


class DaskScanner(Scanner):
    """Runs or resumes the scan stored in ``out`` on a Dask cluster.

    Parameters
    ----------
    out, config, resolver
        As :class:`~crawlers.scan.Scanner` (the resolver is sent to the workers).
    dask : str
        ``local``, ``local:N``, ``tcp://HOST:PORT`` or ``tls://HOST:PORT``
        (:func:`crawlers.cluster.connect`).
    workers : int, optional
        Workers of a local cluster when ``dask`` gives no count.
    processes : bool
        Local workers as processes (default) or threads of this process.
    batch : int
        Most items of one origin in one task.
    connect_seconds : float
        Time to reach the scheduler.

    Attributes
    ----------
    client : distributed.Client or None
        The Dask client while :meth:`run` runs.
    """

    def __init__(
        self,
        out: str | Path,
        config: ScanConfig | None = None,
        *,
        dask: str = "local",
        workers: int | None = None,
        processes: bool = True,
        resolver: Resolver = system_resolver,
        batch: int = 8,
        connect_seconds: float = 10.0,
        db: str | None = None,
    ) -> None:
        super().__init__(out, config, resolver=resolver, db=db)
        if batch < 1:
            raise CrawlError("batch must be >= 1")
        self.address = dask
        self.n_workers = workers
        self.processes = processes
        self.resolver = resolver
        self.batch = batch
        self.connect_seconds = connect_seconds
        self.tasks = {"crawl": 0, "identify": 0, "lost": 0}
        self.client: Any = None

    def __enter__(self) -> DaskScanner:
        return self

    def run(self, progress: Progress | None = None) -> dict[str, Any]:
        """Process items on the cluster until none is pending; returns the summary.

        Raises
        ------
        CrawlError
            The scheduler cannot be reached.
        """
        started = time.monotonic()
        with connect(
            self.address, self.n_workers, processes=self.processes, timeout=self.connect_seconds
        ) as client:
            self._expand_sitemaps()
            name = PLUGIN_PREFIX + secrets.token_hex(8)
            resolver = None if self.resolver is system_resolver else self.resolver
            client.register_plugin(ScanWorkerPlugin(name, asdict(self.config), resolver), name=name)
            try:
                workers = self._loop(client, name, progress)
            finally:
                self.client = None
                with contextlib.suppress(Exception):  # the cluster may be gone; the scan is recorded
                    client.unregister_worker_plugin(name)
        if progress is not None:
            progress(self.store.counts())
        summary: dict[str, Any] = dict(self.store.counts())
        summary["errors_this_run"] = self.errors
        summary["seconds"] = round(time.monotonic() - started, 3)
        summary["workers"] = workers
        summary["tasks"] = dict(self.tasks)
        return summary

    # -- the client loop ------------------------------------------------------------------

    def _loop(self, client: Any, name: str, progress: Progress | None) -> int:
        from distributed import wait

        self.client, self._name = client, name
        self._leases: dict[str, Any] = {}  # origin -> crawl future
        self._batches: dict[Any, list[Item]] = {}  # crawl future -> its items
        self._waiting: dict[str, tuple[Any, list[tuple[Item, Fetched]]]] = {}  # key -> identify
        self._busy: set[int] = set()  # item ids handed out
        self._slot: dict[str, float] = {}  # origin -> next free slot (wall clock)
        self._workers: list[str] = []
        self._threads: dict[str, int] = {}
        self._seen_workers = 0
        refreshed, shown = 0.0, 0.0
        while True:
            if time.monotonic() - refreshed > 1.0:
                self._threads = client.nthreads()
                self._workers = sorted(self._threads)
                self._seen_workers = max(self._seen_workers, len(self._workers))
                refreshed = time.monotonic()
            self._hand_out()
            futures = [*self._batches, *(f for f, _ in self._waiting.values())]
            if not futures:
                item, due = self.store.next_item(time.time(), pages=self._pages_left())
                if item is None and due is None:
                    break
                now = time.time()
                wake = min([due or now + 1.0, *(s for s in self._slot.values() if s > now)])
                time.sleep(min(max(wake - time.time(), 0.01), 1.0))
                continue
            try:
                done = wait(futures, timeout=0.5, return_when="FIRST_COMPLETED").done  # type: ignore[no-untyped-call]
            except TimeoutError:
                done = set()
            for fut in done:
                if fut in self._batches:
                    self._crawled(fut)
                else:
                    self._identified_on_cluster(fut)
            if progress is not None and time.monotonic() - shown > 0.5:
                shown = time.monotonic()
                progress(self.store.counts())
        return self._seen_workers

    def _pages_left(self) -> bool:
        in_flight = sum(1 for items in self._batches.values() for i in items if i.kind == "page")
        return self.store.pages_fetched() + in_flight < self.config.max_pages

    def _hand_out(self) -> None:
        """Lease free, due origins to new crawl tasks (at most two per worker thread in flight,
        fewer while many fetched media wait for identification)."""
        if not self._workers:
            return
        threads = sum(self._threads.values()) or len(self._workers)
        cap = 2 * threads
        if len(self._batches) >= cap or len(self._waiting) >= 4 * threads:
            return
        now = time.time()
        page_room = self.config.max_pages - self.store.pages_fetched()
        page_room -= sum(1 for items in self._batches.values() for i in items if i.kind == "page")
        groups: dict[str, list[Item]] = defaultdict(list)
        for item in self.store.due(now, pages=page_room > 0, limit=4000):
            origin = origin_of(item.url)
            if item.id in self._busy or origin in self._leases or self._slot.get(origin, 0.0) > now:
                continue
            if len(groups[origin]) >= self.batch:
                continue
            if item.kind == "page":
                if page_room <= 0:
                    continue
                page_room -= 1
            groups[origin].append(item)
        for origin, items in groups.items():
            if len(self._batches) >= cap:
                break
            items = [i for i in items if not self.over_budget(i)]
            if not items:
                continue
            fut = self.client.submit(
                crawl_batch,
                self._name,
                items,
                self._slot.get(origin, 0.0),
                key=f"rx-crawl-{self._name}-{items[0].id}-{secrets.token_hex(4)}",
                workers=[home_worker(origin, self._workers)],
                allow_other_workers=True,
                pure=False,
            )
            self.tasks["crawl"] += 1
            self._leases[origin] = fut
            self._batches[fut] = items
            self._busy.update(i.id for i in items)

    def _crawled(self, fut: Any) -> None:
        items = self._batches.pop(fut)
        origin = origin_of(items[0].url)
        self._leases.pop(origin, None)
        by_id = {i.id: i for i in items}
        if fut.status != "finished":
            self._lost(items, fut)
            return
        result: BatchResult = fut.result()
        fut.release()
        self._slot[origin] = result.next_at
        for item_id, out in result.outcomes:
            item = by_id.pop(item_id)
            self.record(item, out)
            if out.state == "media" and out.fetched is not None:
                self._identify_later(item, out.fetched)
            else:
                self._busy.discard(item_id)
        self._busy.difference_update(by_id)  # not reached: left pending for a later batch

    def _identify_later(self, item: Item, fetched: Fetched) -> None:
        if self.known(fetched):
            self.record_media(item, fetched, None)
            self._busy.discard(item.id)
            return
        key = f"rx-identify-{self._name}-{fetched.digest.hex()}"
        if key in self._waiting:
            self._waiting[key][1].append((item, fetched))
            return
        arg: Any = fetched
        if fetched.payload is not None and len(fetched.payload) > SCATTER_BYTES:
            arg = self.client.scatter(fetched, hash=False)
        fut = self.client.submit(identify_task, self._name, arg, key=key, pure=False, priority=1)
        self.tasks["identify"] += 1
        self._waiting[key] = (fut, [(item, fetched)])

    def _identified_on_cluster(self, fut: Any) -> None:
        _, pending = self._waiting.pop(fut.key)
        items = [item for item, _ in pending]
        if fut.status != "finished":
            self._lost(items, fut)
            return
        matches, error = fut.result()
        fut.release()
        if error and pending[0][1].payload is not None:
            self.errors += 1
        for item, fetched in pending:
            self.record_media(item, fetched, (matches, error))
            self._busy.discard(item.id)

    def _lost(self, items: list[Item], fut: Any) -> None:
        """A task that failed even after Dask's retries: its items go back to the frontier."""
        try:
            why = f"{type(fut.exception()).__name__}: {fut.exception()}"
        except Exception as exc:  # a cancelled future has none to show
            why = f"{type(exc).__name__}"
        fut.release()
        self.tasks["lost"] += 1
        for item in items:
            self._busy.discard(item.id)
            if item.attempts + 1 >= self.config.max_attempts:
                self.store.finish(item, "failed", f"task lost: {why}")
                self.errors += 1
            else:
                self.store.postpone(item, time.time() + 1.0, f"task lost: {why}")
