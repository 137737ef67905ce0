"""Fixtures: a work library of real photos and synthetic music, their attacked copies as web media."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datasets.attacks import audio as audio_attacks
from datasets.attacks import image as image_attacks
from datasets.attacks import video as video_attacks
from datasets.errors import SmokeCorpusError
from datasets.manifest import Manifest
from datasets.smoke import ensure
from forensics.library import Library
from tests.forensics.audio.conftest import synth_music, write_wav
from tests.forensics.conftest import _photo
from tests.forensics.video.conftest import ffmpeg

from .site import Site, serve

WORKS = {"astronaut": "astronaut", "coffee": "coffee", "chelsea": "chelsea"}


def _encoded(img: object, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=80) if fmt == "JPEG" else img.save(buf, format=fmt)  # type: ignore[attr-defined]
    return buf.getvalue()


@pytest.fixture(scope="session")
def scan_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library holding three photos and one 30-s song."""
    d = tmp_path_factory.mktemp("scan-lib")
    lib = Library(d / "lib")
    try:
        for work_id, name in WORKS.items():
            lib.register(_photo(name), work_id)
        song = write_wav(d / "song.wav", synth_music(7, 30.0))
        lib.register(song, "song")
    finally:
        lib.close()
    return d / "lib"


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory, scan_library: Path) -> dict[str, tuple[str, bytes]]:
    """Attacked copies of the works, keyed by the path the site serves them under."""
    a, _ = image_attacks.apply(_photo("astronaut"), "jpeg", seed=1)
    b, _ = image_attacks.apply(_photo("coffee"), "resize", seed=2)
    c, _ = image_attacks.apply(_photo("chelsea"), "jpeg", seed=3)
    d, _ = image_attacks.apply(_photo("astronaut"), "jpeg", seed=4)
    decoy, _ = image_attacks.apply(_photo("rocket"), "jpeg", seed=5)
    src = tmp_path_factory.mktemp("song-src") / "song.wav"
    write_wav(src, synth_music(7, 30.0))
    song, _ = audio_attacks.apply(src, [{"op": "excerpt", "start": 5.0, "length": 12.0}, "gain"], seed=6)
    wav = tmp_path_factory.mktemp("song-out") / "copy.wav"
    song.save(wav)
    return {
        "/img/a.jpg": ("image/jpeg", _encoded(a, "JPEG")),
        "/img/b.png": ("text/html", _encoded(b, "PNG")),  # lying content type
        "/img/c.jpg": ("image/jpeg", _encoded(c, "JPEG")),
        "/private/d.jpg": ("image/jpeg", _encoded(d, "JPEG")),
        "/img/decoy.jpg": ("image/jpeg", _encoded(decoy, "JPEG")),
        "/media/song.wav": ("application/octet-stream", wav.read_bytes()),
    }


@pytest.fixture
def site(planted: dict[str, tuple[str, bytes]]) -> Iterator[Site]:
    """The hostile site, fresh (its log and its 429 state) for each test."""
    with serve(planted) as s:
        yield s


@dataclass(frozen=True)
class VideoSet:
    """A library holding one programme (picture and sound), and the files a site serves of it."""

    library: Path
    copy_start: float  # where the attacked copy starts in the programme (seconds)
    files: dict[str, tuple[str, bytes]]


def _programme(out: Path) -> Path:
    """A 14-s real camera clip, 320 pixels wide, with 14 s of real music: the registered work."""
    try:
        root = ensure()
    except SmokeCorpusError as exc:
        pytest.fail(f"the smoke corpus of real media is required: {exc}", pytrace=False)
    man = Manifest.open(root)
    clip = max(
        (e for e in man.select(collection="video", role="original") if not e.assembled),
        key=lambda e: e.duration or 0,
    )
    song = next(e for e in man.select(collection="music", role="original") if (e.duration or 0) >= 60)
    dest = out / "programme.mp4"
    ffmpeg("-i", root / clip.path, "-ss", "20", "-i", root / song.path, "-map", "0:v:0", "-map", "1:a:0",
           "-vf", "scale=320:-2,fps=25", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
           "-c:a", "aac", "-t", "14", dest)  # fmt: skip
    return dest


@pytest.fixture(scope="session")
def video_set(tmp_path_factory: pytest.TempPathFactory) -> VideoSet:
    """The programme registered as a video work; an attacked copy (8 s from 3 s, scaled, with a
    logo) served as an MP4 file on ``/video/page.html``."""
    d = tmp_path_factory.mktemp("scan-video")
    programme = _programme(d)
    with Library(d / "lib") as lib:
        assert lib.register(programme, "programme").kind == "video"
    copy = d / "copy.mp4"
    chain: list[Any] = [
        {"op": "excerpt", "params": {"start": 3.0, "length": 8.0}},
        {"op": "scale", "params": {"factor": 0.75}},
        "logo",
    ]
    truth = video_attacks.apply(programme, copy, chain, seed=11)
    assert truth.time_map is not None
    page = '<html><body><video controls src="/video/copy.mp4" poster="/video/none.jpg"></video></body></html>'
    files = {
        "/video/page.html": ("text/html", page.encode()),
        "/video/copy.mp4": ("video/mp4", copy.read_bytes()),
        "/video/streams.html": ("text/html", STREAMS_PAGE.encode()),
        "/video/hls/master.m3u8": ("application/vnd.apple.mpegurl", HLS_MASTER.encode()),
        **HOSTILE_STREAMS,
    }
    files.update(_streams(copy, d))
    return VideoSet(d / "lib", truth.time_map[0]["source_start"], files)


@pytest.fixture
def video_site(planted: dict[str, tuple[str, bytes]], video_set: VideoSet) -> Iterator[Site]:
    """The hostile site serving the video set too."""
    with serve({**planted, **video_set.files}) as s:
        yield s


STREAMS_PAGE = """<html><body>
<video controls><source src="/video/hls/master.m3u8" type="application/x-mpegURL"></video>
<div id="player"></div><script>player.load({src: "/video/dash/stream.mpd", autoplay: false});</script>
</body></html>"""
HLS_MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=9000000,RESOLUTION=1920x1080
/video/hls/missing-high.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=240x134
low.m3u8
"""
_NESTED = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n{}\n"
_ONE = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:{},\n/video/hls/seg000.ts\n#EXT-X-ENDLIST\n"
_BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE MPD [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period><AdaptationSet contentType="video">
<Representation id="&d;" mimeType="video/mp4" bandwidth="1"><BaseURL>/video/copy.mp4</BaseURL>
</Representation></AdaptationSet></Period></MPD>"""
_FOREVER = """<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="P100000D"><Period>
<AdaptationSet contentType="video"><Representation id="v" mimeType="video/mp4" bandwidth="1">
<SegmentTemplate timescale="1" duration="1" startNumber="0" media="/video/forever/$Number$.m4s"/>
</Representation></AdaptationSet></Period></MPD>"""
_HUGE = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n" + "".join(
    f"#EXTINF:1.0,\n/video/huge/{i}.ts\n" for i in range(100_000)
)

#: Hostile manifests: loops, nesting, absurd durations, entity bombs, endless segment lists.
HOSTILE_STREAMS: dict[str, tuple[str, bytes]] = {
    "/video/evil/loop-a.m3u8": ("text/plain", _NESTED.format("/video/evil/loop-b.m3u8").encode()),
    "/video/evil/loop-b.m3u8": ("text/plain", _NESTED.format("/video/evil/loop-a.m3u8").encode()),
    "/video/evil/self.m3u8": ("text/plain", _NESTED.format("self.m3u8").encode()),
    "/video/evil/nest1.m3u8": ("text/plain", _NESTED.format("nest2.m3u8").encode()),
    "/video/evil/nest2.m3u8": ("text/plain", _NESTED.format("nest3.m3u8").encode()),
    "/video/evil/nest3.m3u8": ("text/plain", _NESTED.format("nest4.m3u8").encode()),
    "/video/evil/absurd.m3u8": ("text/plain", _ONE.format("1e308").encode()),
    "/video/evil/nan.m3u8": ("text/plain", _ONE.format("nan").encode()),
    "/video/evil/negative.m3u8": ("text/plain", _ONE.format("-4").encode()),
    "/video/evil/encrypted.m3u8": (
        "text/plain",
        _ONE.format("2").replace("#EXTINF", '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="/k"\n#EXTINF').encode(),
    ),
    "/video/evil/huge.m3u8": ("text/plain", _HUGE.encode()),
    "/video/evil/laughs.mpd": ("application/dash+xml", _BILLION_LAUGHS.encode()),
    "/video/evil/forever.mpd": ("application/dash+xml", _FOREVER.encode()),
}


def _streams(copy: Path, d: Path) -> dict[str, tuple[str, bytes]]:
    """The attacked copy as HLS (MPEG-TS, 2-s segments) and DASH (fragmented MP4, video and audio)."""
    hls, dash = d / "hls", d / "dash"
    hls.mkdir()
    dash.mkdir()
    enc = ["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
           "-c:a", "aac"]  # fmt: skip
    ffmpeg("-i", copy, *enc, "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
           "-hls_segment_filename", hls / "seg%03d.ts", hls / "low.m3u8")  # fmt: skip
    ffmpeg("-i", copy, "-map", "0:v", "-map", "0:a", *enc, "-f", "dash", "-seg_duration", "2",
           "-use_template", "1", "-use_timeline", "0", "-init_seg_name", "init-$RepresentationID$.m4s",
           "-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s", dash / "stream.mpd")  # fmt: skip
    out: dict[str, tuple[str, bytes]] = {}
    for sub in (hls, dash):
        for f in sub.iterdir():
            out[f"/video/{sub.name}/{f.name}"] = ("application/octet-stream", f.read_bytes())
    out.update(protected_hls((hls / "low.m3u8").read_text(), lambda name: (hls / name).read_bytes()))
    return out


#: The AES-128 key of the protected streams, and the IV its first segment names.
AES_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
FIRST_IV = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
FIRST_SEQUENCE = 5


def aes_encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-128-CBC with PKCS#7 padding, as an HLS packager writes a segment."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(data) + padder.finalize()) + enc.finalize()


def protected_hls(
    playlist: str, segment: Callable[[str], bytes], key_path: str = "/video/keys/k.bin"
) -> dict[str, tuple[str, bytes]]:
    """The clear HLS ``playlist`` re-packaged as one AES-128 file of byte ranges: the first
    segment with an explicit IV, the others with their media sequence number as IV; served
    from :data:`~.site.RANGED` (ranges honoured) and from ``/video/plain/`` (ignored)."""
    lines = [ln for ln in playlist.splitlines() if ln and not ln.startswith("#EXT-X-MEDIA-SEQUENCE")]
    blob, out_lines = b"", []
    index = 0
    for ln in lines:
        if ln.startswith("#"):
            out_lines.append(ln)
            if ln.startswith("#EXTM3U"):
                out_lines.append(f"#EXT-X-MEDIA-SEQUENCE:{FIRST_SEQUENCE}")
            continue
        if index == 0:
            iv = FIRST_IV
            out_lines.insert(-1, f'#EXT-X-KEY:METHOD=AES-128,URI="{key_path}",IV=0x{FIRST_IV.hex()}')
        else:
            iv = (FIRST_SEQUENCE + index).to_bytes(16, "big")
            if index == 1:
                out_lines.insert(-1, f'#EXT-X-KEY:METHOD=AES-128,URI="{key_path}"')
        sealed = aes_encrypt(segment(ln), AES_KEY, iv)
        out_lines.append(
            f"#EXT-X-BYTERANGE:{len(sealed)}@{len(blob)}" if index == 0 else f"#EXT-X-BYTERANGE:{len(sealed)}"
        )
        out_lines.append("all.bin")
        blob += sealed
        index += 1
    text = "\n".join(out_lines) + "\n"
    return {
        key_path: ("application/octet-stream", AES_KEY),
        "/video/ranged/aes.m3u8": ("application/vnd.apple.mpegurl", text.encode()),
        "/video/ranged/all.bin": ("video/mp2t", blob),
        "/video/plain/aes.m3u8": ("application/vnd.apple.mpegurl", text.encode()),
        "/video/plain/all.bin": ("video/mp2t", blob),
    }
