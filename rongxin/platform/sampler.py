"""Samples of every configured node's ``/metrics``, kept in bounded ring buffers.

:class:`SampleRing` is the pure memory (a fixed number of samples per node, the oldest
dropped first); :class:`MetricsSampler` is the I/O: a daemon thread that asks each node
for ``/metrics`` every ``interval_s`` seconds (signed with the member's key when the
platform has one, answer size and time bounded), parses the answer with
:func:`~rongxin.platform.promtext.parse_metrics`, and hands the samples to a callback
(the alert rules).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from rongxin.platform.promtext import MAX_BYTES, MetricsError, NodeMetrics, parse_metrics


@dataclass(frozen=True)
class Sample:
    """One ask of one node: when, whether it answered, and what it said.

    ``metrics`` is ``None`` when the node did not answer properly; ``error`` says why.
    """

    ts: float
    metrics: NodeMetrics | None
    error: str = ""

    @property
    def up(self) -> bool:
        """Whether the node answered with readable metrics."""
        return self.metrics is not None


class SampleRing:
    """The latest ``keep`` samples of each node (bounded memory; thread-safe).

    Examples
    --------
    >>> ring = SampleRing(2)
    >>> for t in (1.0, 2.0, 3.0):
    ...     ring.add("n", Sample(t, NodeMetrics({"height": t})))
    >>> [s.ts for s in ring.samples("n")]
    [2.0, 3.0]
    """

    def __init__(self, keep: int, max_nodes: int = 256) -> None:
        if keep < 2:
            raise ValueError("keep at least two samples per node (rates need two)")
        self.keep = keep
        self.max_nodes = max_nodes
        self._rings: dict[str, deque[Sample]] = {}
        self._lock = threading.Lock()

    def add(self, node: str, sample: Sample) -> None:
        """Append ``sample`` to ``node``'s ring (a node beyond ``max_nodes`` is ignored)."""
        with self._lock:
            ring = self._rings.get(node)
            if ring is None:
                if len(self._rings) >= self.max_nodes:
                    return
                ring = self._rings[node] = deque(maxlen=self.keep)
            ring.append(sample)

    def samples(self, node: str) -> list[Sample]:
        """``node``'s samples, oldest first."""
        with self._lock:
            return list(self._rings.get(node, ()))

    def nodes(self) -> list[str]:
        """The nodes sampled so far, in the order they were first seen."""
        with self._lock:
            return list(self._rings)

    def snapshot(self) -> dict[str, list[Sample]]:
        """Every node's samples, oldest first."""
        with self._lock:
            return {n: list(r) for n, r in self._rings.items()}


Signer = Callable[[str, str], dict[str, str]]
"""``(method, target) -> headers`` signing a request to a node."""


def fetch_metrics(http: httpx.Client, url: str, sign: Signer | None = None) -> Sample:
    """Ask ``url`` for ``/metrics`` once; never raises for what the node does.

    The answer is read in pieces and abandoned past :data:`~rongxin.platform.promtext.MAX_BYTES`.
    """
    now = time.time()
    headers = sign("GET", "/metrics") if sign is not None else {}
    try:
        with http.stream("GET", f"{url}/metrics", headers=headers) as r:
            if r.status_code != 200:
                return Sample(now, None, f"HTTP {r.status_code}")
            body = bytearray()
            for piece in r.iter_bytes():
                body += piece
                if len(body) > MAX_BYTES:
                    return Sample(now, None, f"answer larger than {MAX_BYTES} bytes")
    except httpx.HTTPError as exc:
        return Sample(now, None, str(exc) or type(exc).__name__)
    try:
        return Sample(now, parse_metrics(bytes(body)))
    except MetricsError as exc:
        return Sample(now, None, str(exc))


class MetricsSampler:
    """Samples ``nodes`` every ``interval_s`` seconds in a daemon thread.

    Parameters
    ----------
    nodes : sequence of str
        Base URLs of the nodes (``http://host:port``).
    ring : SampleRing
        Where the samples go.
    interval_s : float
        Seconds between rounds.
    sign : callable, optional
        Signs each request (nodes serve ``/metrics`` to members only by default).
    on_round : callable, optional
        Called with the round's time after every round (the alert rules run there).
    timeout_s : float
        Time limit of one node's answer.
    """

    def __init__(
        self,
        nodes: Sequence[str],
        ring: SampleRing,
        interval_s: float,
        sign: Signer | None = None,
        on_round: Callable[[float], object] | None = None,
        timeout_s: float = 3.0,
    ) -> None:
        self.nodes = list(nodes)
        self.ring = ring
        self.interval_s = interval_s
        self.sign = sign
        self.on_round = on_round
        self.timeout_s = timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample_once(self, http: httpx.Client) -> None:
        """One round: every node once, then ``on_round``."""
        for url in self.nodes:
            self.ring.add(url, fetch_metrics(http, url, self.sign))
        if self.on_round is not None:
            self.on_round(time.time())

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                self.sample_once(http)
                self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def start(self) -> None:
        """Start sampling (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the current round (waits for it, bounded by the nodes' timeouts)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s * max(1, len(self.nodes)) + 5)


__all__ = ["MetricsSampler", "Sample", "SampleRing", "Signer", "fetch_metrics"]
