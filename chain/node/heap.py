"""The node process's garbage collector: what it costs, and a setting that costs less.

CPython frees most objects by reference counting; its cyclic collector also walks the
objects that survived, in three generations, whenever enough containers have been made
(700 by default for the youngest). A node keeps about 100,000 objects from its start
(modules, the API's routes and models, the consensus state) and makes many short-lived
ones per transaction, so with the defaults it ran about 400 young and 3 full collections
in a one-minute bench run: about 7 % of its event loop, and each full collection walked
every object of the start again (measured in ``docs/benchmarks.md``).

:func:`tuned_collector` is what ``rongxin node run`` does once the node has started:
collect, then freeze the survivors (:func:`gc.freeze`: they are never walked again, as a
server that preforks does), and collect the youngest generation every
:data:`GC_THRESHOLDS` ``[0]`` containers instead of 700. Cycles are still collected;
garbage in them only waits a little longer.

:class:`GcStats` counts collections and the time they held the interpreter, per
generation, from :data:`gc.callbacks` (plain counters: a callback may run inside any
allocation, so it takes no lock). The node serves them as metrics.

Examples
--------
>>> import gc
>>> before = gc.get_threshold()
>>> with tuned_collector() as frozen:
...     gc.get_threshold() == GC_THRESHOLDS and frozen > 0
True
>>> gc.get_threshold() == before
True
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["GC_THRESHOLDS", "GcStats", "gc_stats", "tuned_collector"]

GC_THRESHOLDS = (20_000, 20, 10)
"""``gc.set_threshold`` of a running node: the youngest generation every 20,000 new
containers; the older two as often, relative to it, as by default."""


@contextlib.contextmanager
def tuned_collector(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> Iterator[int]:
    """Collect, freeze what survives, and use ``thresholds``; undone on exit.

    Yields
    ------
    int
        The objects frozen (never walked by the collector again while this lasts).
    """
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    try:
        yield gc.get_freeze_count()
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


class GcStats:
    """Collections and their duration (wall-clock seconds the interpreter was held), per
    generation, since :meth:`install`.

    Examples
    --------
    >>> stats = gc_stats()
    >>> n = stats.collections[2]
    >>> _ = gc.collect()
    >>> stats.collections[2] == n + 1 and stats.seconds[2] > 0
    True
    """

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        """The longest collection since :meth:`install` (seconds)."""
        self._started = 0.0

    def install(self) -> None:
        """Start counting (once: a second call changes nothing)."""
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        """Stop counting."""
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info.get("generation")
        if not isinstance(generation, int) or not 0 <= generation < 3:
            return
        took = time.perf_counter() - self._started
        self.collections[generation] += 1
        self.seconds[generation] += took
        if took > self.longest:
            self.longest = took


_STATS = GcStats()


def gc_stats() -> GcStats:
    """This process's :class:`GcStats`, counting from the first call."""
    _STATS.install()
    return _STATS
