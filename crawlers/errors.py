"""Errors of the crawlers: one root, :class:`CrawlError`, for everything a scan refuses or fails at."""

from __future__ import annotations


class CrawlError(Exception):
    """Root of every error raised by :mod:`crawlers`."""


class BlockedAddressError(CrawlError):
    """A host resolved to an address the SSRF guard refuses (private, loopback, metadata, ...)."""


class FetchError(CrawlError):
    """A fetch failed: network error, bad status, or a cap was hit."""


class TooLargeError(FetchError):
    """A body (or its decompressed form) went beyond the size cap; the transfer was aborted."""


class FetchTimeoutError(FetchError):
    """A request took longer than its total time budget (slow-drip responses included)."""


class RedirectError(FetchError):
    """Too many redirects, a redirect loop, or a redirect to a refused URL."""


class RobotsDisallowedError(CrawlError):
    """robots.txt forbids this URL to our user agent."""


class ScanStoreError(CrawlError):
    """The scan directory or its database is missing, corrupt, or from another format."""


class BrowserError(CrawlError):
    """The headless browser is missing, failed to start, or crashed during a page."""


class CaptureError(CrawlError):
    """An evidence capture failed: the page did not load, the browser or ffmpeg failed."""


class PackageError(CrawlError):
    """An evidence package cannot be built or read (not a zip, truncated, malformed)."""


class MediaPrepError(CrawlError):
    """ffmpeg could not cut or join a fetched media file."""


class PlaylistError(CrawlError):
    """An HLS or DASH manifest that cannot be read, or that a bounded scan refuses."""


class SeedFileError(CrawlError):
    """A sitemap or feed that cannot be read or is refused (entities, DTDs, bombs, not XML)."""
