"""Reading a decoder's output pipe: a wider pipe buffer, and reads that loop over short reads.

Both the audio and the video decoders stream raw samples or frames from an ffmpeg
subprocess through these.

Examples
--------
>>> import os
>>> r, w = os.pipe()
>>> _ = os.write(w, b"abc"); os.close(w)
>>> with os.fdopen(r, "rb") as stream:
...     widen_pipe(stream)
...     read_exactly(stream, 5)
b'abc'
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import IO

PIPE_BYTES = 1 << 20
"""Pipe buffer asked for: the decoder may run 1 MiB ahead while the caller computes."""


def widen_pipe(stream: IO[bytes], size: int = PIPE_BYTES) -> None:
    """Let the writer of ``stream`` run ``size`` bytes ahead (Linux; best effort)."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, size)


def read_exactly(stream: IO[bytes], n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short pipe reads; fewer only at end of stream."""
    fd = stream.fileno()
    chunks: list[bytes] = []
    remaining = n
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


__all__ = ["PIPE_BYTES", "read_exactly", "widen_pipe"]
