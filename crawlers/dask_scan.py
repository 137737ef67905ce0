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
cache keep its state; it moves when its worker is lost, or when its worker already runs
two crawl tasks per thread and another has room, so that a worker whose hosts are done
takes on the others' instead of idling). The batch returns the
origin's next free slot (wall clock); the client leases the origin again only from then,
and the next batch carries the slot to whichever worker runs it, whose pacer waits for it
too, so the per-host delay holds across workers.

Fetched media stay on the worker that fetched them; the batch returns their content
digests. For each digest neither identified before (the scan database) nor being
identified (a task in flight), the client pins one :func:`identify_held
<crawlers.cluster.identify_held>` task per batch to that worker; the other holders are
told to drop their copy. So one picture fetched under many URLs, by many workers, is
fingerprinted once, and media bytes never pass through the client.

The client handles finished tasks in groups (Dask's ``as_completed``, results gathered
by its event loop) and records each group in one database transaction
(:meth:`~crawlers.store.ScanStore.batch`): a crash loses a whole group or nothing, and
the items of a lost group are still pending, so a resumed scan does them again, without
losing or repeating a case. A worker lost mid-task: Dask runs its crawl tasks again on
another worker (``distributed.scheduler.allowed-failures`` times); identification tasks
pinned to it are cancelled and their items fetched again; a task that still fails puts
its items back in the frontier, counted as an attempt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from crawlers.cluster import PLUGIN_PREFIX, BatchResult, ScanWorkerPlugin, connect, crawl_batch, identify_held
from crawlers.errors import CrawlError
from crawlers.guard import Resolver, system_resolver
from crawlers.scan import Progress, ScanConfig, Scanner
from crawlers.steps import Fetched
from crawlers.store import Item
from crawlers.urls import origin_of

#: Held media a worker is told to drop with a task of its own once they reach this size (smaller
#: drops ride along with its next identification task).
DROP_BYTES = 64 * 1024 * 1024


def lease_worker(origin: str, workers: list[str], threads: Mapping[str, int], busy: Mapping[str, int]) -> str:
    """The worker for a new lease of ``origin``, given the crawl tasks ``busy`` on each.

    Its :func:`home_worker` while that one runs fewer than two crawl tasks per thread; else
    the worker with the most room (the home worker on a tie). Hosts are few beside
    workers, so homes alone give one worker more hosts than another; once the busier one
    is full, its origins spill to one that has room, with their slot, instead of leaving
    that worker idle.

    >>> ws = ["tcp://a:1", "tcp://b:1"]
    >>> home = home_worker("http://h.example", ws)
    >>> lease_worker("http://h.example", ws, {w: 1 for w in ws}, {}) == home
    True
    >>> lease_worker("http://h.example", ws, {w: 1 for w in ws}, {home: 2}) != home
    True
    """
    home = home_worker(origin, workers)

    def room(w: str) -> int:
        return 2 * max(1, threads.get(w, 1)) - busy.get(w, 0)

    if room(home) > 0:
        return home
    return max(workers, key=lambda w: (room(w), w == home))


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


class PendingByOrigin:
    """The pending items of a scan that are not handed out, in memory, by origin.

    The client is the only writer of the scan database, so it can keep this mirror
    exact: it is filled from the database (:meth:`~crawlers.store.ScanStore.pending_after`,
    by growing id) and items handed out leave it until their task returns them. Leasing
    then costs per origin, not a database query over the whole frontier.
    """

    def __init__(self) -> None:
        self._heaps: dict[str, list[tuple[bool, int, Item]]] = {}
        self._due: dict[int, float] = {}
        self.last_id = 0

    def __len__(self) -> int:
        return sum(len(h) for h in self._heaps.values())

    def add(self, item: Item, due: float = 0.0) -> None:
        """Queue ``item`` (media of an origin before its pages, each by id), not before ``due``."""
        heap = self._heaps.setdefault(origin_of(item.url), [])
        heapq.heappush(heap, (item.kind == "page", item.id, item))
        if due > 0.0:
            self._due[item.id] = due
        else:
            self._due.pop(item.id, None)
        self.last_id = max(self.last_id, item.id)

    def take(
        self, now: float, free: Any, batch: int, page_room: int, origins: int
    ) -> list[tuple[str, list[Item]]]:
        """Up to ``batch`` due items of each of at most ``origins`` origins for which
        ``free(origin)`` holds, oldest heads first; at most ``page_room`` pages in all."""
        heads = sorted((heap[0][:2], origin) for origin, heap in self._heaps.items() if heap and free(origin))
        out: list[tuple[str, list[Item]]] = []
        for _, origin in heads:
            if len(out) >= origins:
                break
            heap = self._heaps[origin]
            items: list[Item] = []
            later: list[tuple[bool, int, Item]] = []
            while heap and len(items) < batch:
                entry = heapq.heappop(heap)
                item = entry[2]
                if self._due.get(item.id, 0.0) > now or (item.kind == "page" and page_room <= 0):
                    later.append(entry)
                    continue
                if item.kind == "page":
                    page_room -= 1
                self._due.pop(item.id, None)
                items.append(item)
            for entry in later:
                heapq.heappush(heap, entry)
            if not heap:
                del self._heaps[origin]
            if items:
                out.append((origin, items))
        return out


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
        Most items of one origin in one task (32: per-task costs of the scheduler, the
        client and the workers then weigh little; a lost task costs at most that many
        fetches again).
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
        batch: int = 32,
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
        self.identified = 0
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
        summary["identified"] = self.identified
        return summary

    # -- the client loop ------------------------------------------------------------------

    def _loop(self, client: Any, name: str, progress: Progress | None) -> int:
        from distributed import as_completed

        self.client, self._name = client, name
        self._done: Any = as_completed(loop=client.loop, with_results=True, raise_errors=False)  # type: ignore[no-untyped-call]
        self._crawls: dict[str, tuple[str, list[Item], str]] = {}  # task key -> origin, items, worker
        self._leases: set[str] = set()  # origins with a crawl task in flight
        self._idents: dict[str, tuple[str, list[bytes], Any]] = {}  # task key -> worker, digests, future
        self._waiting: dict[bytes, tuple[str, list[tuple[Item, Fetched]]]] = {}  # digest -> holder, items
        self._to_identify: dict[str, list[bytes]] = defaultdict(list)  # worker -> digests, this round
        self._to_drop: dict[str, list[bytes]] = defaultdict(list)  # worker -> digests to forget
        self._drop_bytes: dict[str, int] = defaultdict(int)  # worker -> bytes of those
        self._busy: set[int] = set()  # item ids handed out
        self._slot: dict[str, float] = {}  # origin -> next free slot (wall clock)
        self._pages_out = 0  # page items in crawl tasks
        self._pages_done = self.store.pages_fetched()
        self._pending = PendingByOrigin()
        self._load_pending()
        self._workers: list[str] = []
        self._threads: dict[str, int] = {}
        self._seen_workers = 0
        refreshed, shown = -1.0, 0.0
        while True:
            if time.monotonic() - refreshed > 1.0:
                self._refresh(client)
                refreshed = time.monotonic()
            self._hand_out()
            if not self._crawls and not self._idents:
                item, due = self.store.next_item(time.time(), pages=self._pages_left())
                if item is None and due is None:
                    break
                if item is not None and not len(self._pending):  # not expected: read it all again
                    self._pending = PendingByOrigin()
                    self._load_pending()
                now = time.time()
                wake = min([due or now + 1.0, *(s for s in self._slot.values() if s > now)])
                time.sleep(min(max(wake - time.time(), 0.01), 1.0))
                continue
            ready = self._ready()
            if ready:
                with self.store.batch():
                    for fut, result in ready:
                        if fut.key in self._crawls:
                            self._crawled(fut, result)
                        else:
                            self._identify_done(fut, result)
                self._pages_done = self.store.pages_fetched()
                self._load_pending()
                self._submit_identify()
            if progress is not None and time.monotonic() - shown > 0.5:
                shown = time.monotonic()
                progress(self.store.counts())
        return self._seen_workers

    def _refresh(self, client: Any) -> None:
        """Learn the current workers; cancel identification pinned to workers that left."""
        self._threads = client.nthreads()
        self._workers = sorted(self._threads)
        self._seen_workers = max(self._seen_workers, len(self._workers))
        gone = [fut for worker, _, fut in self._idents.values() if worker not in self._threads]
        if gone:
            client.cancel(gone)  # they come back through as_completed as cancelled: lost

    def _ready(self) -> list[tuple[Any, Any]]:
        """The finished tasks and their results, waiting a little when none is."""
        now = time.time()
        wake = min([now + 0.5, *(s for s in self._slot.values() if s > now)])
        cond = self._done.thread_condition
        with cond:
            if not self._done.has_ready():
                cond.wait(timeout=min(max(wake - now, 0.005), 0.5))
        return list(self._done.next_batch(block=False))

    def _load_pending(self) -> None:
        """Mirror the items queued since the last call."""
        for item, due in self.store.pending_after(self._pending.last_id):
            self._pending.add(item, due)

    def _give_back(self, item: Item, due: float = 0.0, attempt: bool = False) -> None:
        """``item`` is pending again (``attempt``: one more try counted, as in the database)."""
        self._busy.discard(item.id)
        if attempt:
            item = dataclasses.replace(item, attempts=item.attempts + 1)
        self._pending.add(item, due)

    def _pages_left(self) -> bool:
        return self._pages_done + self._pages_out < self.config.max_pages

    def _hand_out(self) -> None:
        """Lease free, due origins to new crawl tasks (at most two per worker thread in flight,
        none while many identification tasks are waiting)."""
        if not self._workers:
            return
        threads = sum(self._threads.values()) or len(self._workers)
        cap = 2 * threads
        if len(self._crawls) >= cap or len(self._idents) >= 2 * threads:
            return
        now = time.time()
        page_room = self.config.max_pages - self._pages_done - self._pages_out
        room = cap - len(self._crawls)

        def free(origin: str) -> bool:
            return origin not in self._leases and self._slot.get(origin, 0.0) <= now

        groups = self._pending.take(now, free, self.batch, page_room, room)
        if not groups:
            return
        by_worker: dict[str, list[tuple[str, list[Item]]]] = defaultdict(list)
        busy = Counter(worker for _, _, worker in self._crawls.values())
        with self.store.batch():
            for origin, items in groups:
                usage = self.store.host_usage(origin)
                items = [i for i in items if not self.over_budget(i, usage)]
                if items:
                    worker = lease_worker(origin, self._workers, self._threads, busy)
                    busy[worker] += 1
                    by_worker[worker].append((origin, items))
        for worker, leases in by_worker.items():
            keys = [f"rx-crawl-{self._name}-{items[0].id}-{secrets.token_hex(4)}" for _, items in leases]
            futures = self.client.map(
                crawl_batch,
                [self._name] * len(leases),
                [items for _, items in leases],
                [self._slot.get(origin, 0.0) for origin, _ in leases],
                key=keys,
                workers=[worker],
                allow_other_workers=True,
                pure=False,
            )
            self._done.update(futures)
            for key, (origin, items) in zip(keys, leases, strict=True):
                self.tasks["crawl"] += 1
                self._leases.add(origin)
                self._crawls[key] = (origin, items, worker)
                self._busy.update(i.id for i in items)
                self._pages_out += sum(1 for i in items if i.kind == "page")

    def _crawled(self, fut: Any, result: Any) -> None:
        origin, items, _ = self._crawls.pop(fut.key)
        self._leases.discard(origin)
        self._pages_out -= sum(1 for i in items if i.kind == "page")
        by_id = {i.id: i for i in items}
        if fut.status != "finished":
            self._lost(items, fut, result)
            return
        batch: BatchResult = result
        self._slot[origin] = batch.next_at
        for item_id, out in batch.outcomes:
            item = by_id.pop(item_id)
            self.record(item, out)
            if out.state == "media" and out.fetched is not None:
                self._identify_later(item, out.fetched, batch.worker)
            elif out.state == "retry" and item.attempts + 1 < self.config.max_attempts:
                self._give_back(item, time.time() + out.retry_after, attempt=True)  # postponed
            else:
                self._busy.discard(item_id)
        for item in by_id.values():  # not reached: left pending for a later batch
            self._give_back(item)

    def _identify_later(self, item: Item, fetched: Fetched, worker: str) -> None:
        """Record ``item`` now if its digest is known; else queue it for the worker holding it."""
        digest = fetched.digest
        waiting = self._waiting.get(digest)
        if waiting is not None:  # being identified: wait for that result
            if fetched.held and waiting[0] != worker:
                self._drop(worker, fetched)
            waiting[1].append((item, fetched))
            return
        known = self.known(fetched)
        if known or not fetched.held:  # identified before, or nothing to identify (fetched.error)
            if fetched.held:
                self._drop(worker, fetched)
            self.record_media(item, fetched, None if known else ([], fetched.error))
            self._busy.discard(item.id)
            return
        self._waiting[digest] = (worker, [(item, fetched)])
        self._to_identify[worker].append(digest)

    def _drop(self, worker: str, fetched: Fetched) -> None:
        self._to_drop[worker].append(fetched.digest)
        self._drop_bytes[worker] += fetched.size

    def _submit_identify(self) -> None:
        """One identification task per worker for the digests it holds; the drops it owes ride
        along (a worker also drops its oldest held media beyond ``HELD_BYTES``)."""
        for worker, size in self._drop_bytes.items():  # much to forget and nothing to identify
            if size >= DROP_BYTES and worker not in self._to_identify:
                self._to_identify[worker] = []
        for worker in list(self._to_identify):
            digests = self._to_identify.pop(worker)
            drop = self._to_drop.pop(worker, [])
            self._drop_bytes.pop(worker, None)
            if worker not in self._threads:  # it left: its held media are gone
                if digests:
                    self._lost([i for d in digests for i, _ in self._waiting.pop(d)[1]], None, "worker left")
                continue
            key = f"rx-identify-{self._name}-{secrets.token_hex(8)}"
            fut = self.client.submit(
                identify_held,
                self._name,
                digests,
                drop,
                key=key,
                workers=[worker],
                allow_other_workers=False,
                pure=False,
                priority=1,
            )
            self._done.add(fut)
            self.tasks["identify"] += 1
            self.identified += len(digests)
            self._idents[key] = (worker, digests, fut)

    def _identify_done(self, fut: Any, result: Any) -> None:
        _, digests, _ = self._idents.pop(fut.key)
        if fut.status != "finished":
            self._lost([i for d in digests for i, _ in self._waiting.pop(d)[1]], fut, result)
            return
        for digest, matches, error in result:
            pending = self._waiting.pop(digest)[1]
            if matches is None:  # dropped on the worker (its held bytes were full): fetch again
                self._lost([item for item, _ in pending], None, "held media dropped on the worker")
                continue
            if error:
                self.errors += 1
            for item, fetched in pending:
                self.record_media(item, fetched, (matches, error))
                self._busy.discard(item.id)

    def _lost(self, items: list[Item], fut: Any, result: Any) -> None:
        """A task that failed even after Dask's retries: its items go back to the frontier."""
        if fut is None:
            why = str(result)
        elif fut.status == "error" and isinstance(result, tuple) and len(result) == 3:
            why = f"{type(result[1]).__name__}: {result[1]}"
        else:
            why = f"task {fut.status}"
        self.tasks["lost"] += 1
        for item in items:
            if item.attempts + 1 >= self.config.max_attempts:
                self._busy.discard(item.id)
                self.store.finish(item, "failed", f"task lost: {why}")
                self.errors += 1
            else:
                due = time.time() + 1.0
                self.store.postpone(item, due, f"task lost: {why}")
                self._give_back(item, due, attempt=True)
