"""Frames of a video streamed from an ffmpeg pipe at a reduced size and rate.

ffmpeg samples the first video stream at a fixed rate (its ``fps`` filter: frame ``k``
shows the picture at ``k / rate`` seconds, whatever the source's rate or its variations),
applies the rotation in the file's metadata, scales every frame to a small square of
luma and writes raw bytes to a pipe. :func:`iter_frames` reads that pipe in blocks, so a
file of many hours is decoded with the memory of one block.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from forensics.pipes import read_exactly, widen_pipe
from forensics.video.errors import VideoDecodeError
from forensics.video.probe import ffmpeg_exe

__all__ = ["DECODE_SIDE", "iter_frames"]

#: Side of the square luma frames are decoded to.
DECODE_SIDE = 128


def _command(path: Path, rate: float, side: int, threads: int) -> list[str]:
    return [
        ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-threads",
        str(threads),
        "-i",
        "file:" + str(path.resolve()),
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-vf",
        f"fps={rate:g},scale={side}:{side}:flags=area,format=gray",
        "-f",
        "rawvideo",
        "pipe:1",
    ]


def iter_frames(
    path: Path,
    *,
    rate: float,
    side: int = DECODE_SIDE,
    block: int = 64,
    max_frames: int | None = None,
    strict: bool = True,
    threads: int = 1,
) -> Iterator[NDArray[np.uint8]]:
    """Stream the first video stream of ``path`` as blocks of square luma frames.

    Parameters
    ----------
    path : Path
        Any file ffmpeg decodes (checked beforehand with :func:`forensics.video.probe.check`).
    rate : float
        Frames per second sampled.
    side : int
        Frames are scaled to ``side`` × ``side`` pixels (the aspect ratio is not kept).
    block : int
        Frames per yielded block; memory is bounded by one block.
    max_frames : int, optional
        Stop (without error) after this many frames.
    strict : bool
        Raise :class:`VideoDecodeError` after the last block when ffmpeg reported errors
        (a truncated or damaged stream); when false, what decodes is used.
    threads : int
        Decoder threads.

    Yields
    ------
    numpy.ndarray
        ``(n, side, side)`` uint8 frames, ``n <= block``; frame ``k`` of the whole stream
        is the picture at ``k / rate`` seconds.

    Raises
    ------
    VideoDecodeError
        ffmpeg failed, or reported errors with ``strict``.
    """
    frame_bytes = side * side
    produced = 0
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(
            _command(path, rate, side, threads),
            stdout=subprocess.PIPE,
            stderr=errfile,
            stdin=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        widen_pipe(proc.stdout)
        stopped = False
        try:
            while True:
                want = block if max_frames is None else min(block, max_frames - produced)
                if want <= 0:
                    stopped = True
                    break
                data = read_exactly(proc.stdout, want * frame_bytes)
                n = len(data) // frame_bytes
                if n == 0:
                    break
                produced += n
                yield np.frombuffer(data[: n * frame_bytes], dtype=np.uint8).reshape(n, side, side)
                if n < want:
                    break
            returncode = 0 if stopped else proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        errfile.seek(0)
        message = errfile.read(65536).decode("utf-8", "replace")
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    tail = "; ".join(lines[-3:])
    if returncode != 0 and not stopped:
        raise VideoDecodeError(
            f"{path} could not be decoded as video (ffmpeg exit {returncode}: {tail or 'no message'}); "
            "check that it is a video file and not truncated"
        )
    if strict and lines and not stopped:
        raise VideoDecodeError(
            f"{path} decoded with errors ({tail}); the file is probably truncated or corrupt — "
            "re-encode or re-download it"
        )
