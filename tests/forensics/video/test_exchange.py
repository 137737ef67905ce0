"""Video works in hash lists: export, the format's checks, import, and finding a copy with its span."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from chain.crypto.sm2 import PrivateKey
from chain.crypto.sm3 import sm3
from forensics.errors import ForensicsError
from forensics.exchange.errors import (
    HashListMismatchError,
    HashListTooLargeError,
    MalformedHashListError,
    TruncatedHashListError,
    UnsupportedHashListVersionError,
)
from forensics.exchange.export import export_entries, signal_parameters, work_reference
from forensics.exchange.foreign import ForeignLibrary
from forensics.exchange.hashlist import (
    SIGNAL_VIDEO,
    Entry,
    Limits,
    decode_hash_list,
    encode_hash_list,
    entry_json,
)
from forensics.library import Library
from tests.forensics.video.conftest import Media, excerpt, ffmpeg

KEY = PrivateKey.generate()


@dataclass
class Exported:
    entries: list[Entry]
    signals: dict[str, object]
    refs: dict[str, str]  # work id -> reference
    digests: dict[str, bytes]  # work id -> fingerprint digest


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, media: Media) -> Exported:
    """Member A's library: two programmes (picture and sound), exported as video entries."""
    d = tmp_path_factory.mktemp("video-member-a")
    refs, digests = {}, {}
    with Library(d / "lib") as lib:
        for name in ("alpha", "beta"):
            reg = lib.register(media.programmes[name], name, {"source": media.programmes[name].name})
            refs[name], digests[name] = work_reference(reg.content_digest), reg.fingerprint_digest
        entries = export_entries(lib)
        signals = signal_parameters(lib, {e.kind for e in entries}, pdq=False)
    return Exported(entries, signals, refs, digests)


def _list(ex: Exported, entries: list[Entry] | None = None, key: PrivateKey | None = KEY) -> bytes:
    return encode_hash_list(
        "county-a", ex.entries if entries is None else entries, signals=ex.signals, key=key
    )


@pytest.fixture()
def foreign(tmp_path: Path) -> Iterator[ForeignLibrary]:
    with ForeignLibrary(tmp_path / "lib" / "foreign") as f:
        yield f


def test_video_entries_round_trip(exported: Exported) -> None:
    assert sorted(e.kind for e in exported.entries) == ["video", "video"]
    assert exported.signals[SIGNAL_VIDEO]["rate"] == 4.0  # type: ignore[index]
    assert "rongxin-audio" in exported.signals  # the soundtracks' parameters travel too
    by_ref = {e.ref: e for e in exported.entries}
    alpha = by_ref[exported.refs["alpha"]]
    assert alpha.fingerprint_sm3 == exported.digests["alpha"] and alpha.title is None
    assert alpha.video is not None and alpha.audio is not None
    assert alpha.video.frames >= 4 * 13  # 14 s at 4 frames a second
    assert len(alpha.video.centre) == len(alpha.video.codes)
    hl = decode_hash_list(_list(exported))
    assert [entry_json(e) for e in hl.entries] == [entry_json(e) for e in exported.entries]
    assert [e.video for e in hl.entries] == [e.video for e in exported.entries]  # byte for byte
    line = json.loads(_list(exported).split(b"\n")[1])
    assert set(line["video"]) == {"rate", "frames", "codes", "valid", "centre", "centre_valid"}


def test_a_foreign_list_finds_an_attacked_copy_with_its_span(
    exported: Exported, foreign: ForeignLibrary, media: Media, tmp_path: Path
) -> None:
    report = foreign.import_list(decode_hash_list(_list(exported)))
    assert (report.added, report.replaced) == (2, 0)
    assert foreign.works_by_member() == {"county-a": {"video": 2}}
    # re-encoded, smaller and mirrored, with other music: the picture alone must find it
    copy = excerpt(
        media.programmes["alpha"], tmp_path / "copy.mp4", 3.0, 8.0,
        extra=("-i", str(media.other_song), "-map", "0:v", "-map", "1:a", "-vf", "hflip,scale=240:-2",
               "-shortest"),
    )  # fmt: skip
    (m, *_) = foreign.identify(copy)
    assert (m.member, m.reference, m.kind, m.signal) == (
        "county-a",
        exported.refs["alpha"],
        "video",
        "rongxin-video",
    )
    assert m.score >= m.threshold and m.details["found_by"] == "picture" and m.details["flip"]
    assert m.details["ref_start"] - m.details["query_start"] == pytest.approx(3.0, abs=0.5)
    assert m.details["ref_end"] - m.details["ref_start"] == pytest.approx(8.0, abs=1.0)
    json.dumps(m.to_json())
    # the picture blanked, the original sound: found through the imported soundtrack
    blanked = tmp_path / "blanked.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=black:size=320x180:rate=25", "-ss", "2", "-t", "9", "-i",
           media.programmes["beta"], "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264",
           "-c:a", "aac", blanked)  # fmt: skip
    (m, *_) = foreign.identify(blanked)
    assert m.reference == exported.refs["beta"] and m.details["found_by"] == "sound"
    # an unrelated video finds nothing
    assert foreign.identify(media.unrelated[0]) == []


def _entry_with(ex: Exported, **video: object) -> dict[str, object]:
    e = entry_json(ex.entries[0])
    return e | {"video": e["video"] | video}


def _unsigned(ex: Exported, entry: dict[str, object], signals: dict[str, object] | None = None) -> bytes:
    header = {
        "format": "rongxin-hash-list", "version": 1, "member": "county-a", "created": "2026-12-05T00:00:00Z",
        "entries": 1, "signals": ex.signals if signals is None else signals, "signer": None,
    }  # fmt: skip
    body = json.dumps(header).encode() + b"\n" + json.dumps(entry).encode() + b"\n"
    return body + json.dumps({"sm3": sm3(body).hex(), "signature": None}).encode() + b"\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"rate": 0}, "rate"),
        ({"rate": float("inf")}, "JSON"),
        ({"frames": -1}, "positive"),
        ({"frames": True}, "positive"),
        ({"codes": _b64(bytes(31))}, "32 bytes per frame"),
        ({"codes": "!!"}, "base64"),
        ({"valid": _b64(bytes(1))}, "one bit per frame"),
        ({"centre": _b64(bytes(32))}, "centre"),
        ({"extra": 1}, "unknown fields"),
    ],
)
def test_malformed_video_entries_are_refused(
    exported: Exported, change: dict[str, object], error: str
) -> None:
    if change.get("rate") == float("inf"):  # json.dumps writes Infinity, which JSON does not allow
        data = _unsigned(exported, _entry_with(exported)).replace(b'"rate": 4.0', b'"rate": Infinity')
    else:
        data = _unsigned(exported, _entry_with(exported, **change))
    with pytest.raises(MalformedHashListError, match=error):
        decode_hash_list(data)


def test_padding_bits_and_a_lone_bass_layer_are_refused(exported: Exported) -> None:
    e = exported.entries[0]
    assert e.video is not None
    n = e.video.frames - e.video.frames % 8 - 1  # a frame count with a padding bit
    flags = np.unpackbits(np.frombuffer(e.video.valid, np.uint8))[:n]
    packed = bytearray(np.packbits(flags).tobytes())
    shorter = {"frames": n, "codes": _b64(e.video.codes[: 32 * n]), "centre": "", "centre_valid": ""}
    decode_hash_list(_unsigned(exported, _entry_with(exported, valid=_b64(bytes(packed)), **shorter)))
    packed[-1] |= 1
    with pytest.raises(MalformedHashListError, match="past the last frame"):
        decode_hash_list(_unsigned(exported, _entry_with(exported, valid=_b64(bytes(packed)), **shorter)))
    lone = {k: v for k, v in entry_json(e).items() if k != "audio"} | {"bass": entry_json(e)["audio"]}
    with pytest.raises(MalformedHashListError, match="bass layer without"):
        decode_hash_list(_unsigned(exported, lone))


def test_truncated_oversized_and_wrong_version_video_lists(exported: Exported) -> None:
    data = _list(exported)
    second = data.index(b"\n", data.index(b"\n") + 1) + 1
    for cut in (data[: second + 100], data[:second], data[:-3]):
        with pytest.raises(TruncatedHashListError):
            decode_hash_list(cut)
    frames = exported.entries[0].video.frames  # type: ignore[union-attr]
    with pytest.raises(HashListTooLargeError, match="frames"):
        decode_hash_list(data, limits=Limits(max_video_frames=frames - 1))
    lines = data.split(b"\n")
    lines[0] = json.dumps(json.loads(lines[0]) | {"version": 2}).encode()
    with pytest.raises(UnsupportedHashListVersionError):
        decode_hash_list(b"\n".join(lines))


def test_inconsistent_or_foreign_rate_video_imports_nothing(
    exported: Exported, foreign: ForeignLibrary
) -> None:
    e = exported.entries[0]
    assert e.video is not None
    codes = bytearray(e.video.codes)
    codes[0] ^= 0xFF  # one frame's hash changed: no longer the fingerprint the member registered
    bad = _entry_with(exported, codes=_b64(bytes(codes)))
    good = entry_json(exported.entries[1])
    header = json.loads(_unsigned(exported, good).split(b"\n")[0]) | {"entries": 2}
    body = (
        json.dumps(header).encode()
        + b"\n"
        + json.dumps(good).encode()
        + b"\n"
        + json.dumps(bad).encode()
        + b"\n"
    )
    hl = decode_hash_list(body + json.dumps({"sm3": sm3(body).hex(), "signature": None}).encode() + b"\n")
    with pytest.raises(HashListMismatchError, match="fingerprint_sm3"):
        foreign.import_list(hl)
    assert foreign.works_by_member() == {} and foreign.lists() == []
    other_rate = dict(exported.signals) | {SIGNAL_VIDEO: exported.signals[SIGNAL_VIDEO] | {"rate": 2.0}}  # type: ignore[operator]
    with pytest.raises(HashListMismatchError, match="frames/s"):
        foreign.import_list(decode_hash_list(_unsigned(exported, good, other_rate)))
    no_video = {k: v for k, v in exported.signals.items() if k != SIGNAL_VIDEO}
    with pytest.raises(MalformedHashListError, match="video parameters"):
        foreign.import_list(decode_hash_list(_unsigned(exported, good, no_video)))
    assert foreign.works_by_member() == {}


def test_damaged_video_lines_raise_forensics_errors_only(exported: Exported, tmp_path: Path) -> None:
    """Seeded byte damage anywhere in a video entry's line: refused, never a crash."""
    rng = np.random.default_rng(20261205)
    line = json.dumps(entry_json(exported.entries[0])).encode()
    header = json.loads(_unsigned(exported, {}).split(b"\n")[0])
    refused = 0
    for k in range(40):
        damaged = bytearray(line)
        for pos in rng.integers(0, len(damaged), int(rng.integers(1, 4))):
            damaged[int(pos)] = int(rng.choice(list(b'0123456789{}[]",:AZaz+/= \x00')))
        body = json.dumps(header).encode() + b"\n" + bytes(damaged) + b"\n"
        data = body + json.dumps({"sm3": sm3(body).hex(), "signature": None}).encode() + b"\n"
        try:
            with ForeignLibrary(tmp_path / f"f{k}") as f:
                f.import_list(decode_hash_list(data))
        except ForensicsError:
            refused += 1
    assert refused >= 38  # only damage to the reference alone can leave a valid entry
