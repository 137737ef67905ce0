"""HLS and DASH streams fetched within caps: manifests followed, segments fetched and joined.

Every request (nested playlists, init sections, segments) goes through the scan's
:class:`~crawlers.fetch.Fetcher`, so robots.txt, the per-site pace and the SSRF guard apply
to each segment URL exactly as to a page. On top of the plan's own bounds
(:mod:`crawlers.playlists`), the whole stream shares one byte budget and one deadline; a
plan naming a literal internal address is refused before any segment is fetched, and a
playlist URL met twice (a loop) ends the stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from crawlers.errors import BlockedAddressError, FetchError, FetchTimeoutError, PlaylistError
from crawlers.fetch import Fetcher
from crawlers.playlists import StreamCaps, Track, dash_plan, hls_plan, literal_refusal, manifest_type

#: Largest manifest read (bytes).
PLAYLIST_BYTES = 1 << 20


@dataclass(frozen=True)
class FetchedTrack:
    """One rendition's bytes: its init section and segments joined, in order."""

    track: Track
    body: bytes
    segments: int


def fetch_stream(
    fetcher: Fetcher,
    url: str,
    body: bytes,
    *,
    caps: StreamCaps,
    max_bytes: int,
    seconds: float,
    on_fetch: Callable[[str, int], None] | None = None,
) -> list[FetchedTrack]:
    """Fetch enough of the stream whose manifest ``body`` came from ``url`` to identify it.

    Parameters
    ----------
    fetcher : Fetcher
        The scan's guarded fetcher.
    url : str
        Where the manifest was fetched from (after redirects).
    body : bytes
        The manifest.
    caps : StreamCaps
        Segments, seconds and master-playlist nesting.
    max_bytes : int
        Bytes of all segments (and nested playlists) together.
    seconds : float
        Time for the whole stream.
    on_fetch : callable, optional
        ``(url, bytes)`` after each playlist or segment fetched (the scan charges the
        bytes to the origin that served them).

    Returns
    -------
    list of FetchedTrack
        Video first (DASH), or one muxed track (HLS).

    Raises
    ------
    PlaylistError
        A manifest refused (see :mod:`crawlers.playlists`), a loop of playlists, or no
        segment could be fetched.
    BlockedAddressError
        The plan names an address the guard refuses.
    FetchError
        The byte budget or the deadline was passed before one segment per track arrived.
    """
    deadline = time.monotonic() + seconds
    spent = 0
    seen = {url}
    level = 0
    while True:
        kind = manifest_type(body)
        if kind == "hls":
            plan = hls_plan(body[:PLAYLIST_BYTES].decode("utf-8", "replace"), url, caps, level)
        elif kind == "dash":
            plan = dash_plan(body[:PLAYLIST_BYTES], url, caps)
        else:
            raise PlaylistError(f"{url}: expected an HLS or DASH manifest")
        if plan.next_playlist is None:
            break
        if plan.next_playlist in seen:
            raise PlaylistError(f"{url}: playlist loop back to {plan.next_playlist}")
        seen.add(plan.next_playlist)
        level += 1
        resp = fetcher.fetch(
            plan.next_playlist, max_bytes=PLAYLIST_BYTES, seconds=max(deadline - time.monotonic(), 0.01)
        )
        if resp.status != 200:
            raise PlaylistError(f"{plan.next_playlist}: HTTP {resp.status}")
        spent += len(resp.body)
        if on_fetch is not None:
            on_fetch(resp.url, len(resp.body))
        url, body = resp.url, resp.body
        if resp.url != plan.next_playlist and resp.url in seen:
            raise PlaylistError(f"{url}: playlist loop through a redirect")
        seen.add(resp.url)
    urls = [u for t in plan.tracks for u in ([t.init] if t.init else []) + list(t.segments)]
    why = literal_refusal(urls, fetcher.guard)
    if why is not None:
        raise BlockedAddressError(f"stream {url} names {why}; refused before fetching")
    out: list[FetchedTrack] = []
    for track in plan.tracks:
        parts: list[bytes] = []
        fetched = 0
        for seg_url in ([track.init] if track.init else []) + list(track.segments):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or spent >= max_bytes:
                break
            try:
                resp = fetcher.fetch(seg_url, max_bytes=max_bytes - spent, seconds=remaining)
            except FetchTimeoutError:
                break
            if resp.status != 200:
                break
            spent += len(resp.body)
            if on_fetch is not None:
                on_fetch(resp.url, len(resp.body))
            parts.append(resp.body)
            fetched += seg_url != track.init
        if fetched == 0:
            raise FetchError(f"stream {url}: no {track.kind} segment fetched within the caps")
        out.append(FetchedTrack(track, b"".join(parts), fetched))
    return out
