"""The live display of ``rongxin scan``: a rich progress bar over the page budget, with counts and rates.

One line on stderr: the pages fetched against ``--max-pages``, media fetched, fingerprinted
(distinct contents), cases, errors (failed pages and media), and the page and media rates
since the scan (or its resumption) started. :func:`describe` is the pure formatting,
:class:`ScanProgress` the rich display the scanner calls (at most twice a second).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def describe(counts: dict[str, int], seconds: float, start: dict[str, int] | None = None) -> str:
    """The counts line: pages, media, fingerprinted, cases, errors and rates.

    ``start`` holds the counts when this run began (a resumed scan's rates count only what
    this run did).

    Examples
    --------
    >>> describe({"page.done": 10, "page.failed": 2, "media.done": 30, "media.fingerprinted": 7,
    ...           "cases": 3, "media.failed": 1}, 4.0)
    'pages 12  media 31  fingerprinted 7  cases 3  errors 3  3.0 pages/s  7.8 media/s'
    """
    start = start or {}

    def n(*keys: str, base: dict[str, int] = counts) -> int:
        return sum(base.get(k, 0) for k in keys)

    pages = n("page.done", "page.failed")
    media = n("media.done", "media.failed")
    errors = n("page.failed", "media.failed")
    rate_pages = (pages - n("page.done", "page.failed", base=start)) / max(seconds, 1e-9)
    rate_media = (media - n("media.done", "media.failed", base=start)) / max(seconds, 1e-9)
    return (
        f"pages {pages}  media {media}  fingerprinted {n('media.fingerprinted')}  cases {n('cases')}  "
        f"errors {errors}  {rate_pages:.1f} pages/s  {rate_media:.1f} media/s"
    )


class ScanProgress:
    """A rich progress display to pass as the scanner's ``progress`` callback.

    Parameters
    ----------
    console : rich Console
        Where to draw (stderr).
    max_pages : int
        The page budget (the bar's total).
    clock : callable
        Injectable for tests.
    """

    def __init__(self, console: Console, max_pages: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._start: dict[str, int] | None = None
        self._progress = Progress(
            SpinnerColumn(),
            BarColumn(bar_width=24),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("starting", total=max_pages)

    def __enter__(self) -> ScanProgress:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def __call__(self, counts: dict[str, int]) -> None:
        if self._start is None:
            self._start = dict(counts)
        pages = counts.get("page.done", 0) + counts.get("page.failed", 0)
        text = describe(counts, self._clock() - self._started, self._start)
        self._progress.update(self._task, completed=pages, description=text)
