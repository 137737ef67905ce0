"""Crawlers: whole-web scans for copies of registered works, polite and safe against hostile sites.

A scan (:class:`~crawlers.scan.Scanner`, ``rongxin scan``) crawls from seed pages within a
scope (:mod:`crawlers.urls`), fetches with caps on size, time and redirects, robots.txt
obeyed and one request per second per site by default (:mod:`crawlers.fetch`), refuses
internal addresses after DNS resolution and on every redirect (:mod:`crawlers.guard`),
finds media in pages (:mod:`crawlers.extract`), renders script-built pages in a browser
without a network of its own (:mod:`crawlers.render`), follows HLS and DASH manifests
within caps (:mod:`crawlers.playlists`, :mod:`crawlers.streams`), seeds from sitemaps and
feeds (:mod:`crawlers.seeds`), identifies images, audio and video against a
:class:`forensics.Library`, and records every hit as a case in a scan database, SQLite or
PostgreSQL (:mod:`crawlers.scandb`), that survives ``kill -9`` (:mod:`crawlers.store`).
AES-128 and byte-range HLS segments are opened by :mod:`crawlers.segments`. A scan spreads
over Dask distributed workers with :class:`~crawlers.dask_scan.DaskScanner`
(:mod:`crawlers.cluster`: one worker per host at a time, identification as tasks, the
library opened once per worker). See ``docs/scanning.md``.

Every error is a :class:`CrawlError`. Only the errors are imported eagerly; the rest on
first use.

Examples
--------
>>> from crawlers import classify, normalize
>>> classify("169.254.169.254"), normalize("HTTP://Example.com:80/a/../b")
('metadata', 'http://example.com/b')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.lazy import lazy_exports
from crawlers.errors import (
    BlockedAddressError,
    BrowserError,
    CrawlError,
    FetchError,
    FetchTimeoutError,
    MediaPrepError,
    PlaylistError,
    RedirectError,
    RobotsDisallowedError,
    ScanStoreError,
    SeedFileError,
    TooLargeError,
)

if TYPE_CHECKING:
    from crawlers.dask_scan import DaskScanner
    from crawlers.fetch import Fetcher, FetchLimits
    from crawlers.guard import AddressGuard, classify
    from crawlers.scan import ScanConfig, Scanner
    from crawlers.store import Case, ScanStore
    from crawlers.urls import ScopeRule, normalize

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "DaskScanner": "crawlers.dask_scan",
    "Fetcher": "crawlers.fetch",
    "FetchLimits": "crawlers.fetch",
    "AddressGuard": "crawlers.guard",
    "classify": "crawlers.guard",
    "ScanConfig": "crawlers.scan",
    "Scanner": "crawlers.scan",
    "Case": "crawlers.store",
    "ScanStore": "crawlers.store",
    "ScopeRule": "crawlers.urls",
    "normalize": "crawlers.urls",
}

__all__ = [
    "AddressGuard",
    "BlockedAddressError",
    "BrowserError",
    "Case",
    "CrawlError",
    "DaskScanner",
    "FetchError",
    "FetchLimits",
    "FetchTimeoutError",
    "Fetcher",
    "MediaPrepError",
    "PlaylistError",
    "RedirectError",
    "RobotsDisallowedError",
    "ScanConfig",
    "ScanStore",
    "ScanStoreError",
    "Scanner",
    "ScopeRule",
    "SeedFileError",
    "TooLargeError",
    "classify",
    "normalize",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
