"""HLS and DASH streams fetched within caps: manifests followed, segments fetched and joined.

Every request (nested playlists, init sections, segments) goes through the scan's
:class:`~crawlers.fetch.Fetcher`, so robots.txt, the per-site pace and the SSRF guard apply
to each segment URL exactly as to a page. On top of the plan's own bounds
(:mod:`crawlers.playlists`), the whole stream shares one byte budget and one deadline; a
plan naming a literal internal address is refused before any segment is fetched, and a
playlist URL met twice (a loop) ends the stream.

Byte-range segments are fetched with ``Range`` requests; a server that ignores ``Range``
answers with the whole file, of which at most the end of the file's last planned range
(and never more than what is left of the stream's byte budget) is read, once: that
segment's range and the file's later ones are cut out of it. AES-128 segments are
opened with their 16-byte key, fetched once per key URI through the same fetcher
(:mod:`crawlers.segments`). Any failure of either is a :class:`PlaylistError` naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from crawlers.errors import BlockedAddressError, FetchError, FetchTimeoutError, PlaylistError, TooLargeError
from crawlers.fetch import Fetcher, RetryLaterError
from crawlers.playlists import Piece, StreamCaps, Track, dash_plan, hls_plan, literal_refusal, manifest_type
from crawlers.segments import KEY_BYTES, decrypt, range_body

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
        A manifest refused (see :mod:`crawlers.playlists`), a loop of playlists, a key
        that cannot be fetched or is not 16 bytes, a segment that does not decrypt, or a
        byte range the server does not serve as asked.
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
    urls = [u for t in plan.tracks for u in t.urls()]
    why = literal_refusal(urls, fetcher.guard)
    if why is not None:
        raise BlockedAddressError(f"stream {url} names {why}; refused before fetching")
    budget = _Budget(deadline, max_bytes, spent, on_fetch)
    keys: dict[str, bytes] = {}
    out: list[FetchedTrack] = []
    for track in plan.tracks:
        parts = _fetch_track(fetcher, track, budget, keys)
        fetched = sum(not is_init for is_init, _ in parts)
        if fetched == 0:
            raise FetchError(f"stream {url}: no {track.kind} segment fetched within the caps")
        out.append(FetchedTrack(track, b"".join(data for _, data in parts), fetched))
    return out


@dataclass
class _Budget:
    """What is left of a stream's time and bytes, and who hears of each fetch."""

    deadline: float
    max_bytes: int
    spent: int
    on_fetch: Callable[[str, int], None] | None

    def took(self, url: str, n: int) -> None:
        self.spent += n
        if self.on_fetch is not None:
            self.on_fetch(url, n)


def _fetch_track(
    fetcher: Fetcher, track: Track, budget: _Budget, keys: dict[str, bytes]
) -> list[tuple[bool, bytes]]:
    """``(is_init, bytes)`` of a track's init section and segments fetched within the budget,
    byte ranges cut out and AES-128 segments decrypted."""
    furthest: dict[str, int] = {}  # per file, the end of its last planned byte range
    for seg_url, piece, _ in track.parts():
        if piece.byterange is not None:
            furthest[seg_url] = max(furthest.get(seg_url, 0), piece.byterange.end)
    whole: dict[str, tuple[bytes, int]] = {}  # files whose server ignored Range: (prefix read, cap)
    parts: list[tuple[bool, bytes]] = []
    for seg_url, piece, is_init in track.parts():
        if budget.deadline - time.monotonic() <= 0 or budget.spent >= budget.max_bytes:
            break
        if piece.key is not None and piece.key.uri not in keys:
            keys[piece.key.uri] = _key(fetcher, piece.key.uri, budget)
        if piece.byterange is not None and seg_url in whole:
            prefix, cap = whole[seg_url]  # cut from what was read, no second request
            data = range_body(200, {}, prefix, piece.byterange, cap)
        else:
            fetched = _fetch_piece(fetcher, seg_url, piece, budget, furthest.get(seg_url, 0))
            if fetched is None:
                break
            data, ignored_range = fetched
            if ignored_range is not None:
                whole[seg_url] = ignored_range
        if piece.key is not None:
            data = decrypt(data, keys[piece.key.uri], piece.key.iv)
        parts.append((is_init, data))
    return parts


def _fetch_piece(
    fetcher: Fetcher, url: str, piece: Piece, budget: _Budget, furthest: int
) -> tuple[bytes, tuple[bytes, int] | None] | None:
    """A segment's bytes (its byte range cut out), and when the server ignored ``Range`` the
    file's prefix read with its cap (for the file's later ranges); ``None`` ends the stream.

    A range request's answer is read up to the end of the file's last planned range (a
    server that ignores ``Range`` sends the file from its start), within the byte budget.
    """
    left = budget.max_bytes - budget.spent
    cap = left if piece.byterange is None else min(furthest, left)
    try:
        resp = fetcher.fetch(
            url,
            max_bytes=cap,
            seconds=budget.deadline - time.monotonic(),
            truncate=piece.byterange is not None,
            byte_range=None if piece.byterange is None else piece.byterange.header(),
        )
    except FetchTimeoutError:
        return None
    if resp.status != 200 and (piece.byterange is None or resp.status not in (206, 416)):
        return None
    budget.took(resp.url, len(resp.body))
    if piece.byterange is None:
        return resp.body, None
    data = range_body(resp.status, resp.headers, resp.body, piece.byterange, cap)
    return data, ((resp.body, cap) if resp.status == 200 else None)


def _key(fetcher: Fetcher, uri: str, budget: _Budget) -> bytes:
    """An AES-128 key: exactly 16 bytes from ``uri``."""
    try:
        resp = fetcher.fetch(uri, max_bytes=KEY_BYTES, seconds=max(budget.deadline - time.monotonic(), 0.01))
    except TooLargeError:
        raise PlaylistError(f"AES-128 key {uri} is longer than {KEY_BYTES} bytes") from None
    except RetryLaterError:
        raise  # 429/503: the scan retries the stream later
    except FetchError as exc:
        raise PlaylistError(f"AES-128 key {uri} could not be fetched: {exc}") from None
    budget.took(resp.url, len(resp.body))
    if resp.status != 200:
        raise PlaylistError(f"AES-128 key {uri}: HTTP {resp.status}")
    if len(resp.body) != KEY_BYTES:
        raise PlaylistError(f"AES-128 key {uri} is {len(resp.body)} bytes, not {KEY_BYTES}")
    return resp.body
