"""Decode any audio or video file to mono float samples through an ``ffmpeg`` pipe.

The decoder streams: :func:`iter_blocks` yields fixed-size blocks while ffmpeg is still
reading the file, so a file of many hours is fingerprinted in bounded memory. Every
container and codec that the installed ffmpeg reads is accepted (WAV, FLAC, MP3,
Ogg/Vorbis/Opus, M4A/AAC, and the first audio stream of a video file).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from forensics.audio.errors import (
    AudioDecodeError,
    AudioTooLongError,
    DecoderMissingError,
    NoAudioStreamError,
)
from forensics.errors import MediaError
from forensics.pipes import read_exactly, widen_pipe

__all__ = ["DEFAULT_SAMPLE_RATE", "MAX_INPUT_RATE", "MIN_INPUT_RATE", "decode", "iter_blocks"]

DEFAULT_SAMPLE_RATE = 8000
"""Sample rate the fingerprints work at (Hz): the telephone band survives every attack."""

_BYTES_PER_SAMPLE = 4

MIN_INPUT_RATE = 1000
"""Lowest sample rate (Hz) accepted in a file: below it, resampling expands the input more
than eightfold (a 4-KB WAV that claims 1 Hz would decode to 64 MB of samples)."""

MAX_INPUT_RATE = 768_000
"""Highest sample rate (Hz) accepted in a file (the highest in studio use). ffmpeg's resampler
builds its filter bank in time and memory that grow with the rate ratio: a 4-KB WAV that
claims 386 MHz takes 10 s of CPU before the first sample."""


def _ffmpeg(name: str = "ffmpeg") -> str:
    exe = shutil.which(name)
    if exe is None:
        raise DecoderMissingError(
            f"{name} is not installed or not on PATH; install ffmpeg (Debian: apt-get install ffmpeg)"
        )
    return exe


def _command(path: Path, sample_rate: int) -> list[str]:
    return [
        _ffmpeg(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        # one format per file: a stream whose sample rate or channels change part-way (a
        # chained Ogg, a spliced broadcast) would rebuild the resampler for whatever rate
        # the new part declares, unchecked; ffmpeg stops at the change instead
        "-reinit_filter",
        "0",
        "-i",
        "file:" + str(path.resolve()),
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
        "-f",
        "f32le",
        "-acodec",
        "pcm_f32le",
        "pipe:1",
    ]


def _input_rate(path: Path) -> int | None:
    """The sample rate the first audio stream declares, read by ffprobe from the headers.

    ``None`` when ffprobe reads no rate (not media, no audio stream): ffmpeg itself then
    says why, with the usual errors.
    """
    cmd = [
        _ffmpeg("ffprobe"),
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=sample_rate",
        "-of",
        "csv=p=0",
        "file:" + str(path.resolve()),
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AudioDecodeError(f"{path}: ffprobe did not finish reading its headers within 60 s") from exc
    except OSError as exc:
        raise DecoderMissingError(
            f"ffprobe could not be run ({exc.strerror or exc}); "
            "install ffmpeg (Debian: apt-get install ffmpeg)"
        ) from exc
    text = out.stdout.decode("ascii", "replace").strip().splitlines()
    if out.returncode != 0 or not text or not text[0].strip().isdigit():
        return None
    return int(text[0].strip()[:12])


def _check_input_rate(path: Path) -> None:
    rate = _input_rate(path)
    if rate is not None and not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise AudioDecodeError(
            f"{path} declares an audio sample rate of {rate} Hz, "
            f"outside {MIN_INPUT_RATE}..{MAX_INPUT_RATE} Hz; "
            "the header is corrupt or forged — re-encode the file at a usual rate"
        )


_FORMAT_CHANGE = "Changing audio frame properties on the fly is not supported"
"""What ffmpeg says when a stream's sample rate or channels change part-way (``-reinit_filter 0``)."""


def _classify(path: Path, returncode: int, message: str, strict: bool) -> MediaError | None:
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    tail = "; ".join(lines[-3:])
    if _FORMAT_CHANGE in message:
        if not strict:
            return None  # the part before the change was decoded: that is what lenient asks
        return AudioDecodeError(
            f"{path} changes its audio format part-way (the sample rate or the channels, as a "
            "chained Ogg stream or a spliced broadcast recording may), and decoding stops there "
            "(one format per file) — cut the file at the change, or re-encode it to one format"
        )
    if returncode != 0:
        if "matches no streams" in message or "does not contain any stream" in message:
            return NoAudioStreamError(f"{path} has no audio stream; give an audio file or a video with sound")
        return AudioDecodeError(
            f"{path} could not be decoded as audio (ffmpeg exit {returncode}: {tail or 'no message'}); "
            "check that it is an audio or video file and not truncated"
        )
    if strict and lines:
        return AudioDecodeError(
            f"{path} decoded with errors ({tail}); the file is probably truncated or corrupt — "
            "re-encode or re-download it"
        )
    return None


def iter_blocks(
    path: Path | str,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    block_seconds: float = 60.0,
    max_seconds: float | None = None,
    strict: bool = True,
) -> Iterator[npt.NDArray[np.float32]]:
    """Stream the first audio stream of ``path`` as mono float32 blocks.

    Parameters
    ----------
    path : Path or str
        Any file ffmpeg reads: audio, or video with an audio track.
    sample_rate : int
        Output sample rate in Hz (ffmpeg resamples).
    block_seconds : float
        Length of each yielded block; the last one may be shorter. Memory use is bounded by
        one block whatever the file's length.
    max_seconds : float, optional
        Refuse files longer than this (:class:`AudioTooLongError`) without decoding the rest.
    strict : bool
        When true, errors that ffmpeg reports while still producing audio (a truncated
        or damaged stream, or a change of sample rate or channels part-way) raise
        :class:`AudioDecodeError` after the last block; when false the decodable part
        (up to such a change) is used.

    Yields
    ------
    numpy.ndarray
        float32 samples in [-1, 1], one block at a time.

    Raises
    ------
    MediaError
        The file is missing or empty.
    AudioDecodeError
        ffmpeg failed (not media, corrupt header), or reported errors with ``strict``; or
        the stream declares a sample rate outside :data:`MIN_INPUT_RATE`..
        :data:`MAX_INPUT_RATE` (checked from the headers before decoding); or, with
        ``strict``, the sample rate or the channels change part-way through the stream
        (decoding stops there: a later part's declared rate is never resampled).
    NoAudioStreamError
        The media has no audio stream.
    AudioTooLongError
        The audio exceeds ``max_seconds``.
    DecoderMissingError
        ffmpeg is not installed.

    Examples
    --------
    >>> import tempfile, wave, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.wav"
    >>> with wave.open(str(p), "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    ...     w.writeframes(bytes(2 * 16000))
    >>> sum(len(b) for b in iter_blocks(p, block_seconds=0.25))
    8000
    """
    path = Path(path)
    if sample_rate < 1000 or sample_rate > 192000:
        raise ValueError(f"sample_rate {sample_rate} is outside 1000..192000 Hz")
    if block_seconds <= 0:
        raise ValueError(f"block_seconds must be positive, got {block_seconds}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise MediaError(f"{path} is not a regular file; give an audio or video file")
    if size == 0:
        raise MediaError(f"{path} is empty (0 bytes); give an audio or video file")
    _check_input_rate(path)
    block_bytes = max(1, round(block_seconds * sample_rate)) * _BYTES_PER_SAMPLE
    limit = None if max_seconds is None else round(max_seconds * sample_rate)
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(
            _command(path, sample_rate), stdout=subprocess.PIPE, stderr=errfile, stdin=subprocess.DEVNULL
        )
        assert proc.stdout is not None
        widen_pipe(proc.stdout)
        produced = 0
        try:
            while True:
                data = read_exactly(proc.stdout, block_bytes)
                if not data:
                    break
                usable = len(data) - len(data) % _BYTES_PER_SAMPLE
                block = np.frombuffer(data[:usable], dtype="<f4").astype(np.float32)
                produced += len(block)
                if limit is not None and produced > limit:
                    raise AudioTooLongError(
                        f"{path} is longer than the maximum of {max_seconds:.0f} s; "
                        "cut it into parts or raise max_seconds"
                    )
                np.clip(block, -1.0, 1.0, out=block)
                yield block
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        errfile.seek(0)
        message = errfile.read(65536).decode("utf-8", "replace")
    error = _classify(path, returncode, message, strict)
    if error is not None:
        raise error


def decode(
    path: Path | str,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    max_seconds: float | None = None,
    strict: bool = True,
) -> npt.NDArray[np.float32]:
    """Decode the whole first audio stream of ``path`` into one mono float32 array.

    Use :func:`iter_blocks` for long files; this is for clips and tests.

    Parameters
    ----------
    path : Path or str
        Audio file, or video file with an audio track.
    sample_rate : int
        Output sample rate in Hz.
    max_seconds : float, optional
        Refuse longer files.
    strict : bool
        Raise on decode errors even when some audio was produced.

    Returns
    -------
    numpy.ndarray
        float32 samples.

    Examples
    --------
    >>> import tempfile, wave, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.wav"
    >>> with wave.open(str(p), "wb") as w:
    ...     w.setnchannels(2); w.setsampwidth(2); w.setframerate(44100)
    ...     w.writeframes(bytes(4 * 44100))
    >>> decode(p).shape
    (8000,)
    """
    blocks = list(iter_blocks(path, sample_rate=sample_rate, max_seconds=max_seconds, strict=strict))
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(blocks)
