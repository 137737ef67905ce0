"""Heights over time: every node's public ``/status`` polled in the background.

:class:`HeightMonitor` keeps every node's answers (time, committed height) and the times
at which the network's height (the highest any node reported) grew. From them come the
progress checks: how long after a perturbation ended the chain grew again, how long a
restarted node took to catch up, and the longest stall.

Examples
--------
>>> m = HeightMonitor({}, lambda: 0.0)
>>> m.observe("node-0", 1.0, 3); m.observe("node-1", 2.0, 4); m.observe("node-0", 5.5, 5)
>>> m.best_at(1.5), m.best_at(9.0), m.advanced_after(2.0), m.reached("node-0", 4, 1.0)
(3, 5, 5.5, 5.5)
>>> m.max_stall(0.0, 6.0)
(3.5, 2.0)
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from rongxin.e2e.nodes import NodeProcess

POLL_S = 0.2
STATUS_TIMEOUT_S = 1.0


class HeightMonitor:
    """Poll every node's height (one thread per node) on the runner's clock ``clock``.

    Parameters
    ----------
    nodes : mapping of str to NodeProcess
        The nodes to watch (a node not running answers nothing and is skipped).
    clock : callable
        Seconds since the start of the run.
    """

    def __init__(self, nodes: Mapping[str, NodeProcess], clock: Callable[[], float]) -> None:
        self.nodes = dict(nodes)
        self.clock = clock
        self.lock = threading.Lock()
        self.seen: dict[str, list[tuple[float, int]]] = {}
        """Per node: (time, height) of every answer."""
        self.advances: list[tuple[float, int]] = []
        """(time, height) each time the highest reported height grew."""
        self.last_status: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ recording
    def observe(self, name: str, t: float, height: int) -> None:
        """Record that ``name`` reported ``height`` at ``t``."""
        with self.lock:
            self.seen.setdefault(name, []).append((t, height))
            if not self.advances or height > self.advances[-1][1]:
                self.advances.append((t, height))

    def start(self) -> None:
        """Start polling."""
        for name, node in self.nodes.items():
            thread = threading.Thread(
                target=self._poll, args=(name, node), name=f"e2e-monitor-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop polling (waits for the threads)."""
        self._stop.set()
        for t in self._threads:
            t.join(STATUS_TIMEOUT_S + 1.0)

    def _poll(self, name: str, node: NodeProcess) -> None:
        with httpx.Client(trust_env=False) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                if node.alive() and not node.paused:
                    doc = node.status(client, STATUS_TIMEOUT_S)
                    if doc is not None and isinstance(doc.get("height"), int):
                        self.last_status[name] = doc
                        self.observe(name, self.clock(), int(doc["height"]))
                self._stop.wait(max(0.0, POLL_S - (time.monotonic() - started)))

    # ------------------------------------------------------------------ queries
    def height(self, name: str) -> int | None:
        """The last height ``name`` reported."""
        with self.lock:
            rows = self.seen.get(name)
            return rows[-1][1] if rows else None

    def best(self) -> int:
        """The highest height any node reported."""
        with self.lock:
            return self.advances[-1][1] if self.advances else 0

    def best_at(self, t: float) -> int:
        """The highest height reported by time ``t``."""
        with self.lock:
            i = bisect.bisect_right(self.advances, (t, float("inf")))
            return self.advances[i - 1][1] if i else 0

    def advanced_after(self, t: float) -> float | None:
        """When the network's height first grew beyond its height at ``t``; ``None`` if not yet."""
        with self.lock:
            i = bisect.bisect_right(self.advances, (t, float("inf")))
            return self.advances[i][0] if i < len(self.advances) else None

    def reached(self, name: str, height: int, after: float) -> float | None:
        """When node ``name`` first answered with ``height`` or more at or after ``after``."""
        with self.lock:
            rows = self.seen.get(name, [])
            i = bisect.bisect_left(rows, (after, -1))
            return next((t for t, h in rows[i:] if h >= height), None)

    def longest_silence(self, name: str) -> tuple[float, float]:
        """The longest time between two consecutive answers of ``name`` (a node killed,
        paused, or whose event loop was busy), and when it began.

        >>> m = HeightMonitor({}, lambda: 0.0)
        >>> for t in (0.0, 0.2, 3.2, 3.4):
        ...     m.observe("a", t, 1)
        >>> m.longest_silence("a")
        (3.0, 0.2)
        """
        with self.lock:
            times = [t for t, _ in self.seen.get(name, [])]
        gaps = [(round(b - a, 3), a) for a, b in itertools.pairwise(times)]
        return max(gaps) if gaps else (0.0, 0.0)

    def max_stall(self, start: float, end: float) -> tuple[float, float]:
        """The longest time in ``[start, end]`` without the network's height growing, and
        when it began."""
        with self.lock:
            times = [t for t, _ in self.advances if start < t < end]
        edges = [start, *times, end]
        gaps = [(b - a, a) for a, b in itertools.pairwise(edges)]
        return max(gaps) if gaps else (0.0, start)


__all__ = ["HeightMonitor"]
