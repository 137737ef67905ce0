"""ffmpeg decoding: formats, video audio tracks, streaming, and refusal of bad input."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest

from forensics.audio.decode import MAX_INPUT_RATE, MIN_INPUT_RATE, decode, iter_blocks
from forensics.audio.errors import AudioDecodeError, AudioTooLongError, NoAudioStreamError
from forensics.errors import MediaError, UnsupportedMediaError
from tests.forensics.audio.conftest import ffmpeg, synth_music, write_wav


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return synth_music(7, 6.0, sr=44100)


@pytest.mark.parametrize("channels", [1, 2])
def test_wav_is_resampled_and_downmixed(tmp_path: Path, music: np.ndarray, channels: int) -> None:
    p = write_wav(tmp_path / "a.wav", music, sr=44100, channels=channels)
    x = decode(p)
    assert x.dtype == np.float32
    assert abs(len(x) - 6 * 8000) <= 2
    assert 0.05 < float(np.sqrt(np.mean(x**2))) < 0.5


@pytest.mark.parametrize(
    ("suffix", "codec"), [(".flac", "flac"), (".mp3", "libmp3lame"), (".ogg", "libvorbis"), (".m4a", "aac")]
)
def test_compressed_formats_decode(tmp_path: Path, music: np.ndarray, suffix: str, codec: str) -> None:
    src = write_wav(tmp_path / "a.wav", music, sr=44100)
    out = tmp_path / f"a{suffix}"
    ffmpeg("-i", str(src), "-c:a", codec, str(out))
    x = decode(out)
    assert abs(len(x) / 8000 - 6.0) < 0.1  # encoder padding only
    assert float(np.max(np.abs(x))) > 0.1


def test_audio_track_of_video(tmp_path: Path, music: np.ndarray) -> None:
    src = write_wav(tmp_path / "a.wav", music, sr=44100)
    video = tmp_path / "v.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=64x48:d=6",
        "-i",
        str(src),
        "-shortest",
        "-c:a",
        "aac",
        str(video),
    )
    assert abs(len(decode(video)) / 8000 - 6.0) < 0.2


def test_video_without_audio_is_refused(tmp_path: Path) -> None:
    video = tmp_path / "silent.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x48:d=2", str(video))
    with pytest.raises(NoAudioStreamError, match="no audio stream"):
        decode(video)
    assert issubclass(NoAudioStreamError, UnsupportedMediaError)


def test_blocks_stream_the_same_samples(tmp_path: Path, music: np.ndarray) -> None:
    p = write_wav(tmp_path / "a.wav", music, sr=44100)
    blocks = list(iter_blocks(p, block_seconds=0.5))
    assert len(blocks) == 12
    assert all(len(b) == 4000 for b in blocks[:-1])
    np.testing.assert_array_equal(np.concatenate(blocks), decode(p))


def test_too_long_is_refused_without_decoding_everything(tmp_path: Path, music: np.ndarray) -> None:
    p = write_wav(tmp_path / "a.wav", music, sr=44100)
    with pytest.raises(AudioTooLongError, match="longer than the maximum"):
        decode(p, max_seconds=2.0)


def test_not_audio(tmp_path: Path) -> None:
    p = tmp_path / "notes.wav"
    p.write_text("these are not samples\n" * 50)
    with pytest.raises(AudioDecodeError, match="could not be decoded"):
        decode(p)


def test_empty_and_missing(tmp_path: Path) -> None:
    empty = tmp_path / "e.wav"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        decode(empty)
    with pytest.raises(MediaError, match="cannot read"):
        decode(tmp_path / "missing.wav")
    with pytest.raises(MediaError, match="not a regular file"):
        decode(tmp_path)


def test_corrupt_header(tmp_path: Path, music: np.ndarray) -> None:
    p = write_wav(tmp_path / "a.wav", music, sr=44100)
    data = bytearray(p.read_bytes())
    data[0:16] = b"\x00" * 16  # RIFF/WAVE/fmt markers gone
    p.write_bytes(bytes(data))
    with pytest.raises(AudioDecodeError):
        decode(p)


def _wav_claiming(path: Path, rate: int, samples: int = 2000) -> Path:
    """A 16-bit mono PCM WAV whose header declares ``rate`` (written by hand: ``wave`` refuses
    nothing, but spelling the bytes out keeps the forged field obvious)."""
    data = np.random.default_rng(rate % 2**32).integers(-3000, 3000, samples, dtype=np.int16).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, (rate * 2) & 0xFFFFFFFF, 2, 16)
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize("rate", [385_883_968, 20_000_003, 768_001, 1, 999])
def test_forged_sample_rate_is_refused_before_decoding(tmp_path: Path, rate: int) -> None:
    # 386 MHz cost ffmpeg's resampler 10 s of CPU for 4 KB (found by the fuzzer); 1 Hz
    # expanded 4 KB into 64 MB of samples. Both are refused from the header.
    p = _wav_claiming(tmp_path / "forged.wav", rate)
    with pytest.raises(AudioDecodeError, match=f"declares an audio sample rate of {rate} Hz"):
        decode(p)
    with pytest.raises(AudioDecodeError, match=re.escape("outside 1000..768000 Hz")):
        list(iter_blocks(p))


@pytest.mark.parametrize("rate", [MIN_INPUT_RATE, 8000, 96000, MAX_INPUT_RATE])
def test_sample_rates_at_and_inside_the_limits_decode(tmp_path: Path, rate: int) -> None:
    p = _wav_claiming(tmp_path / "ok.wav", rate, samples=4000)
    x = decode(p)
    assert abs(len(x) - round(4000 * 8000 / rate)) <= 2


def _ogg_crc(page: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04C11DB7, unreflected, no final xor)."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def _vorbis_claiming(src: Path, rate: int, out: Path) -> Path:
    """``src`` (an Ogg Vorbis file) with the rate in its identification header set to
    ``rate``, and its first page's checksum made right again."""
    data = bytearray(src.read_bytes())
    at = data.index(b"\x01vorbis")
    struct.pack_into("<I", data, at + 12, rate)
    segments = data[26]
    end = 27 + segments + sum(data[27 : 27 + segments])
    page = bytearray(data[:end])
    page[22:26] = bytes(4)
    struct.pack_into("<I", data, 22, _ogg_crc(bytes(page)))
    out.write_bytes(bytes(data))
    return out


def _chained(tmp_path: Path, music: np.ndarray, second_rate: int | None) -> Path:
    """A chained Ogg: 2 s of Vorbis at 8 kHz, then 2 s at 44.1 kHz (its header claiming
    ``second_rate`` when given). Only the first part's rate is in the file's headers."""
    first, second = tmp_path / "first.ogg", tmp_path / "second.ogg"
    ffmpeg("-i", str(write_wav(tmp_path / "a.wav", music[:16000])), "-c:a", "libvorbis", str(first))
    ffmpeg(
        "-i",
        str(write_wav(tmp_path / "b.wav", music[:16000])),
        "-ar",
        "44100",
        "-c:a",
        "libvorbis",
        str(second),
    )
    if second_rate is not None:
        second = _vorbis_claiming(second, second_rate, tmp_path / "forged.ogg")
    chained = tmp_path / "chained.ogg"
    chained.write_bytes(first.read_bytes() + second.read_bytes())
    return chained


def test_a_chained_stream_that_changes_its_rate_stops_at_the_change(
    tmp_path: Path, music: np.ndarray
) -> None:
    p = _chained(tmp_path, music, None)
    with pytest.raises(AudioDecodeError, match="changes its audio format part-way"):
        decode(p)
    # lenient: the part before the change, complete
    x = decode(p, strict=False)
    assert 15000 <= len(x) <= 16000
    assert float(np.abs(x).max()) > 0.1


@pytest.mark.parametrize("rate", [385_883_968, 1])
def test_a_forged_rate_in_a_chained_stream_is_never_resampled(
    tmp_path: Path, music: np.ndarray, rate: int
) -> None:
    # the headers ffprobe reads declare 8 kHz; the second part claims 386 MHz (ffmpeg's
    # resampler: 17 s of CPU and 860 MB for it) or 1 Hz (eightfold expansion)
    p = _chained(tmp_path, music, rate)
    with pytest.raises(AudioDecodeError, match="changes its audio format part-way"):
        list(iter_blocks(p, block_seconds=0.5))
    assert len(decode(p, strict=False)) <= 16000


def test_truncated_flac_strict_and_lenient(tmp_path: Path, music: np.ndarray) -> None:
    src = write_wav(tmp_path / "a.wav", music, sr=44100)
    flac = tmp_path / "a.flac"
    ffmpeg("-i", str(src), "-c:a", "flac", str(flac))
    data = flac.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 2])  # ends inside a frame
    lenient = decode(cut, strict=False)
    assert 1.5 < len(lenient) / 8000 < 4.5  # about the first half
    with pytest.raises(AudioDecodeError, match="truncated or corrupt"):
        decode(cut, strict=True)


def test_truncated_m4a_without_index_is_refused(tmp_path: Path, music: np.ndarray) -> None:
    src = write_wav(tmp_path / "a.wav", music, sr=44100)
    m4a = tmp_path / "a.m4a"
    ffmpeg("-i", str(src), "-c:a", "aac", str(m4a))
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(m4a.read_bytes()[:-2000])  # the moov atom at the end is cut off
    with pytest.raises(AudioDecodeError):
        decode(cut, strict=False)


def test_bad_arguments(tmp_path: Path, music: np.ndarray) -> None:
    p = write_wav(tmp_path / "a.wav", music, sr=44100)
    with pytest.raises(ValueError, match="sample_rate"):
        decode(p, sample_rate=10)
    with pytest.raises(ValueError, match="block_seconds"):
        list(iter_blocks(p, block_seconds=0))
