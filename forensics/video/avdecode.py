"""Sampled frames decoded in this process with libavcodec (PyAV), packet by packet.

A query's picture used to be decoded by an ``ffmpeg`` process (:func:`forensics.video.decode.iter_frames`),
which decodes every frame of the stream and keeps the ones its ``fps`` filter samples.
Here the demuxer's packets are read a few dozen ahead, so that each packet's display
time and that of the frame shown after it are known before the packet is decoded: a
packet whose frame no sample shows (:func:`forensics.video.sampling.needed`) is sent to
the decoder with ``skip_frame = NONREF``, and the decoder drops it if no other frame
refers to it (x264's default stream has about half of its frames so, most of them
unsampled at 4 frames/s). Reference frames, and every frame a sample shows, are decoded
as usual, so each sample is the same picture the ``fps`` filter picks
(:class:`~forensics.video.sampling.SlotPicker` applies its rule) and only the sampled
frames are scaled, with libswscale's area filter, to the small grey square the hashes
need; the rotation in the file's metadata is applied as the command-line tool does.
Memory is a packet window (:data:`LOOKAHEAD` packets, at most :data:`LOOKAHEAD_BYTES`) and
the decoder's own frames, whatever the length.

:func:`query_frames` is the entry point: it decodes here when PyAV opens the file and
its stream, and otherwise (PyAV missing, a container or codec it cannot open, a rotation
that is not a multiple of 90°, or a stream that fails before its first block) falls back
to the ``ffmpeg`` process, which maps every bad input to its error.
"""

from __future__ import annotations

import bisect
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from forensics.errors import ForensicsError
from forensics.video.decode import DECODE_SIDE, iter_frames
from forensics.video.errors import VideoDecodeError, VideoLimitsError
from forensics.video.sampling import SlotPicker, needed

__all__ = [
    "LOOKAHEAD",
    "LOOKAHEAD_BYTES",
    "DecodeStats",
    "PyAVUnusableError",
    "av_frames",
    "query_frames",
]

log = logging.getLogger(__name__)

#: Packets read ahead of the decoder: more than any reordering depth of H.264 or HEVC.
LOOKAHEAD = 32
#: Bytes of packets read ahead, at most: past this the oldest is decoded early (as needed,
#: its successor being unknown), so a stream of huge packets holds a bounded window.
LOOKAHEAD_BYTES = 64 << 20
#: Display times of recent packets kept to find a packet's successor.
_RECENT = 4 * LOOKAHEAD
#: Packets that fail to decode, in a row, after which a stream is taken as broken.
MAX_BAD_PACKETS = 200


@dataclass
class DecodeStats:
    """What one decode did (filled in as it runs).

    Attributes
    ----------
    backend : str
        ``"pyav"``, or ``"ffmpeg"`` when the ffmpeg process decoded (the fallback).
    packets : int
        Packets read.
    skippable : int
        Packets sent with ``skip_frame = NONREF`` (the decoder drops those that are not references).
    decoded : int
        Frames the decoder returned.
    bad_packets : int
        Packets the decoder rejected (damaged data; the frames around them are used as decoded).
    slots : int
        Samples produced.
    fallback_reason : str
        Why the ffmpeg process decoded instead, when it did.
    """

    backend: str = "pyav"
    packets: int = 0
    skippable: int = 0
    decoded: int = 0
    bad_packets: int = 0
    slots: int = 0
    fallback_reason: str = ""


class PyAVUnusableError(ForensicsError):
    """PyAV cannot decode this file here; :func:`query_frames` hands it to the ffmpeg process."""


@dataclass
class _Source:
    container: Any
    stream: Any
    origin: Fraction
    time_base: Fraction
    frame_step: Fraction | None


def _open(path: Path, threads: int) -> _Source:
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a declared dependency
        raise PyAVUnusableError("PyAV is not installed") from exc
    try:
        # "file:" and an absolute path: a name such as "concat:a|b" or "http:..." is a file name
        container = av.open("file:" + str(path.resolve()), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise PyAVUnusableError(f"PyAV cannot open it ({exc})") from exc
    try:
        if not container.streams.video:
            raise PyAVUnusableError("no video stream")
        stream = container.streams.video[0]
        cc = stream.codec_context
        if cc is None or stream.time_base is None:
            raise PyAVUnusableError("no decoder or time base for the video stream")
        cc.thread_type = "AUTO" if threads > 1 else "SLICE"
        cc.thread_count = max(1, threads)
        start = container.start_time  # AV_TIME_BASE units (µs), the command-line tool's origin
        origin = Fraction(start, 1_000_000) if start is not None else Fraction(0)
        rate = stream.average_rate or stream.guessed_rate
        step = Fraction(1) / Fraction(rate) if rate else None
        return _Source(container, stream, origin, Fraction(stream.time_base), step)
    except PyAVUnusableError:
        container.close()
        raise
    except Exception as exc:  # whatever PyAV raises here means: use the fallback
        container.close()
        raise PyAVUnusableError(f"PyAV cannot set up the decoder ({exc})") from exc


class _Held:
    """A decoded frame waiting for its slot, scaled once however many slots show it."""

    __slots__ = ("frame", "small")

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.small: NDArray[np.uint8] | None = None


def av_frames(
    path: Path,
    *,
    rate: float,
    side: int = DECODE_SIDE,
    block: int = 64,
    max_frames: int | None = None,
    threads: int = 1,
    rotation: int = 0,
    max_pixels: int | None = None,
    skip_unsampled: bool = True,
    stats: DecodeStats | None = None,
) -> Iterator[NDArray[np.uint8]]:
    """Decode ``path``'s first video stream with PyAV into blocks of sampled grey frames.

    The samples are those of :func:`forensics.video.decode.iter_frames` (frame ``k`` is
    the picture at ``k / rate`` seconds from the file's start), scaled the same way.

    Parameters
    ----------
    path : Path
        A video file (checked beforehand with :func:`forensics.video.probe.check`).
    rate : float
        Frames per second sampled.
    side : int
        Frames are scaled to ``side`` × ``side`` pixels.
    block : int
        Frames per yielded block.
    max_frames : int, optional
        Stop (without error) after this many frames.
    threads : int
        Decoder threads (frame and slice threading; the frames are the same).
    rotation : int
        Display rotation from the metadata (:attr:`forensics.video.probe.VideoInfo.rotation`),
        a multiple of 90 degrees.
    max_pixels : int, optional
        Largest decoded frame accepted (a stream can change its size after the header).
    skip_unsampled : bool
        Let the decoder drop non-reference frames that no sample shows.
    stats : DecodeStats, optional
        Filled in with counts as the decode runs.

    Yields
    ------
    numpy.ndarray
        ``(n, side, side)`` uint8 frames, ``n <= block``.

    Raises
    ------
    PyAVUnusableError
        PyAV cannot open the file or its stream (raised before anything is yielded).
    VideoLimitsError
        A decoded frame is larger than ``max_pixels``.
    VideoDecodeError
        Every packet failed to decode, or a run of :data:`MAX_BAD_PACKETS` did.
    """
    if rotation % 90:
        raise PyAVUnusableError(f"rotation of {rotation} degrees")
    stats = stats if stats is not None else DecodeStats()
    src = _open(path, threads)
    return _Decoder(
        src,
        Fraction(rate).limit_denominator(1_000_000),
        side,
        block,
        max_frames,
        (rotation // 90) % 4,
        max_pixels,
        skip_unsampled,
        stats,
    ).run()


class _Decoder:
    """One decode: the packet window, the decoder and the slot picker."""

    def __init__(
        self,
        src: _Source,
        rate: Fraction,
        side: int,
        block: int,
        max_frames: int | None,
        turns: int,
        max_pixels: int | None,
        skip_unsampled: bool,
        stats: DecodeStats,
    ) -> None:
        self.src, self.rate, self.side, self.block = src, rate, side, block
        self.max_frames, self.turns, self.max_pixels = max_frames, turns, max_pixels
        self.skip_unsampled, self.stats = skip_unsampled, stats
        self.cc = src.stream.codec_context
        self.picker: SlotPicker[_Held] = SlotPicker(rate)
        self.out: list[NDArray[np.uint8]] = []
        self.produced = 0
        self.last_t: Fraction | None = None
        self.last_end: Fraction | None = None
        self.skipping = False
        self.bad_run = 0
        self.window: deque[Any] = deque()
        self.window_bytes = 0
        self.recent: list[int] = []  # sorted display times (pts) of recent packets
        self.recent_order: deque[int] = deque()

    def full(self) -> bool:
        return self.max_frames is not None and self.produced >= self.max_frames

    def small(self, held: _Held) -> NDArray[np.uint8]:
        """The held frame scaled to the grey square (once), rotated as displayed."""
        if held.small is None:
            side = self.side
            g = held.frame.to_ndarray(format="gray", width=side, height=side, interpolation="AREA")
            g = np.ascontiguousarray(g[:side, :side], dtype=np.uint8)
            held.small = np.rot90(g, self.turns).copy() if self.turns else g
            held.frame = None  # the full-size picture is no longer needed
        return held.small

    def time_of(self, frame: Any) -> Fraction:
        ts = frame.pts if frame.pts is not None else frame.dts
        if ts is not None:
            return Fraction(ts) * self.src.time_base - self.src.origin
        if self.last_t is not None and self.src.frame_step is not None:
            return self.last_t + self.src.frame_step
        return Fraction(0)

    def take(self, frames: list[Any]) -> Iterator[NDArray[np.uint8]]:
        """Push decoded frames into the picker; the samples they settle."""
        for frame in frames:
            self.stats.decoded += 1
            if self.max_pixels is not None and frame.width * frame.height > self.max_pixels:
                raise VideoLimitsError(
                    f"{self.src.container.name} changes to {frame.width}×{frame.height} pixels while "
                    f"decoding, more than the {self.max_pixels:,} accepted; re-encode it at a lower "
                    "resolution"
                )
            t = self.time_of(frame)
            dur = frame.duration * self.src.time_base if frame.duration else self.src.frame_step
            self.last_t = t
            self.last_end = t + dur if dur is not None else t
            for _, held in self.picker.push(t, _Held(frame)):
                yield self.small(held)

    def emit(self, arrays: Iterator[NDArray[np.uint8]]) -> Iterator[NDArray[np.uint8]]:
        """Gather samples into blocks, up to ``max_frames``."""
        for a in arrays:
            if self.full():
                return
            self.out.append(a)
            self.produced += 1
            self.stats.slots += 1
            if len(self.out) == self.block:
                yield np.stack(self.out)
                self.out.clear()

    def decode(self, packet: Any) -> list[Any]:
        """Frames of one packet (``None`` flushes); a rejected packet gives none."""
        import av

        try:
            frames = list(self.cc.decode(packet))
        except av.FFmpegError:
            if packet is None:
                return []
            self.stats.bad_packets += 1
            self.bad_run += 1
            if self.bad_run >= MAX_BAD_PACKETS:
                raise VideoDecodeError(
                    f"{self.src.container.name}: {self.bad_run} packets in a row could not be decoded; "
                    "the video stream is corrupt — re-encode or re-download it"
                ) from None
            return []
        self.bad_run = 0
        return frames

    def successor(self, pts: int) -> int | None:
        i = bisect.bisect_right(self.recent, pts)
        return self.recent[i] if i < len(self.recent) else None

    def remember(self, pts: int) -> None:
        bisect.insort(self.recent, pts)
        self.recent_order.append(pts)
        if len(self.recent_order) > _RECENT:
            old = self.recent_order.popleft()
            del self.recent[bisect.bisect_left(self.recent, old)]

    def skippable(self, packet: Any, at_end: bool) -> bool:
        """Whether no sample shows the packet's frame (known from the display times around it).

        The successor is the earliest later display time among the packets read; were the
        true one not read yet, the one found is later still, which can only make the frame
        count as shown (decoded needlessly), never hide a frame a sample shows.
        """
        if not self.skip_unsampled or packet.pts is None or packet.is_keyframe:
            return False
        nxt = self.successor(packet.pts)
        if nxt is None and not at_end:
            return False
        tb, origin = self.src.time_base, self.src.origin
        t_next = nxt * tb - origin if nxt is not None else None
        return not needed(packet.pts * tb - origin, t_next, self.rate)

    def pop(self) -> Any:
        packet = self.window.popleft()
        self.window_bytes -= packet.size
        return packet

    def send(self, packet: Any, at_end: bool) -> Iterator[NDArray[np.uint8]]:
        skip = self.skippable(packet, at_end)
        if skip != self.skipping:
            self.cc.skip_frame = "NONREF" if skip else "DEFAULT"
            self.skipping = skip
        self.stats.skippable += skip
        yield from self.emit(self.take(self.decode(packet)))

    def packets(self) -> Iterator[Any]:
        """The stream's packets; a truncated or damaged file ends them where reading fails."""
        import av

        demuxer = self.src.container.demux(self.src.stream)
        while True:
            try:
                packet = next(demuxer)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as exc:
                log.debug("demuxing stopped: %s", exc)
                return
            if packet.size:
                yield packet

    def run(self) -> Iterator[NDArray[np.uint8]]:
        try:
            for packet in self.packets():
                if self.full():
                    break
                self.stats.packets += 1
                self.window.append(packet)
                self.window_bytes += packet.size
                if packet.pts is not None:
                    self.remember(packet.pts)
                while len(self.window) > LOOKAHEAD or self.window_bytes > LOOKAHEAD_BYTES:
                    yield from self.send(self.pop(), at_end=False)
            while self.window and not self.full():
                yield from self.send(self.pop(), at_end=True)
            if not self.full():
                if self.skipping:
                    self.cc.skip_frame = "DEFAULT"
                yield from self.emit(self.take(self.decode(None)))
                if self.last_end is not None:
                    yield from self.emit(self.small(h) for _, h in self.picker.finish(self.last_end))
            if self.out:
                yield np.stack(self.out)
                self.out.clear()
            if self.stats.decoded == 0:
                raise VideoDecodeError(
                    f"{self.src.container.name}: no frame of the video stream could be decoded; the "
                    "file is probably truncated or corrupt"
                )
        finally:
            self.src.container.close()


def query_frames(
    path: Path,
    *,
    rate: float,
    side: int = DECODE_SIDE,
    block: int = 64,
    max_frames: int | None = None,
    threads: int = 1,
    rotation: int = 0,
    max_pixels: int | None = None,
    stats: DecodeStats | None = None,
) -> Iterator[NDArray[np.uint8]]:
    """A query's sampled frames: decoded with PyAV, or by the ffmpeg process when PyAV cannot.

    Decoding is lenient, as for any query: a damaged stream gives what decodes. The
    ffmpeg process takes over when PyAV cannot open the file or its stream, or fails
    before the first block is yielded; after that, a failure ends the frames.

    Parameters
    ----------
    path, rate, side, block, max_frames, threads, rotation, max_pixels
        As for :func:`av_frames`.
    stats : DecodeStats, optional
        Filled in (``backend`` tells which decoder ran).

    Yields
    ------
    numpy.ndarray
        ``(n, side, side)`` uint8 frames, as :func:`forensics.video.decode.iter_frames` gives.

    Raises
    ------
    VideoDecodeError
        Neither decoder could decode the stream.
    VideoLimitsError
        A decoded frame is larger than ``max_pixels``.
    """
    stats = stats if stats is not None else DecodeStats()

    def fallback(reason: str) -> Iterator[NDArray[np.uint8]]:
        log.debug("%s: decoding with the ffmpeg process: %s", path, reason)
        stats.backend, stats.fallback_reason = "ffmpeg", reason
        return iter_frames(
            path, rate=rate, side=side, block=block, max_frames=max_frames, strict=False, threads=threads
        )

    try:
        blocks = av_frames(
            path,
            rate=rate,
            side=side,
            block=block,
            max_frames=max_frames,
            threads=threads,
            rotation=rotation,
            max_pixels=max_pixels,
            stats=stats,
        )
    except PyAVUnusableError as exc:
        yield from fallback(str(exc))
        return
    yielded = False
    try:
        for b in blocks:
            yielded = True
            yield b
    except VideoDecodeError as exc:
        if yielded:
            raise
        yield from fallback(str(exc))
