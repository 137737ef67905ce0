"""Hash-list exchange: export, the file format's checks, import into the foreign namespace, matching."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.crypto.sm2 import PrivateKey
from chain.crypto.sm3 import sm3
from forensics.errors import ForensicsError, ReadOnlyLibraryError
from forensics.exchange.errors import (
    HashListDigestError,
    HashListMismatchError,
    HashListSignatureError,
    HashListTooLargeError,
    MalformedHashListError,
    TruncatedHashListError,
    UnsupportedHashListVersionError,
)
from forensics.exchange.export import export_entries, signal_parameters, work_reference
from forensics.exchange.foreign import ForeignLibrary, open_foreign
from forensics.exchange.hashlist import (
    Entry,
    HashList,
    ImageFrame,
    Limits,
    check_signer,
    decode_hash_list,
    encode_hash_list,
)
from forensics.exchange.pdq import MATCH_DISTANCE, PdqMatcher, pdq_hash
from forensics.library import Library
from tests.datasets.conftest import smoke_root  # noqa: F401  (a fixture)
from tests.forensics.audio.conftest import synth_music, synth_notes, write_wav
from tests.forensics.conftest import crop, jpeg, rotate, write_image

KEY_A = PrivateKey.generate()
KEY_B = PrivateKey.generate()


@dataclasses.dataclass
class Exported:
    entries: list[Entry]
    signals: dict[str, object]
    refs: dict[str, str]  # work id -> reference
    media: Path
    songs: dict[str, np.ndarray]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, np.ndarray]) -> Exported:
    """Member A's library (three photos, two songs) exported with PDQ hashes."""
    d = tmp_path_factory.mktemp("member-a")
    media = d / "media"
    media.mkdir()
    songs = {
        "song-0": synth_music(300, 20.0),
        "song-1": synth_notes(301, 20.0, lowest=55.0),
    }  # with a bass line
    refs = {}
    with Library(d / "lib") as lib:
        for name in ("astronaut", "chelsea", "coffee"):
            path = write_image(media / f"{name}.jpg", photos[name])
            refs[name] = work_reference(lib.register(path, name, {"source": path.name}).content_digest)
        for name, x in songs.items():
            path = write_wav(media / f"{name}.wav", x)
            refs[name] = work_reference(lib.register(path, name, {"source": path.name}).content_digest)
        entries = export_entries(lib, pdq_media=[media])
        signals = signal_parameters(lib, ["image", "audio"], pdq=True)
    return Exported(entries, signals, refs, media, songs)


def _list(ex: Exported, key: PrivateKey | None = KEY_A, member: str = "county-a", **kw: object) -> bytes:
    return encode_hash_list(member, kw.pop("entries", ex.entries), signals=ex.signals, key=key, **kw)  # type: ignore[arg-type]


@pytest.fixture()
def foreign(tmp_path: Path) -> Iterator[ForeignLibrary]:
    with ForeignLibrary(tmp_path / "lib" / "foreign") as f:
        yield f


def test_export_holds_fingerprints_not_names(exported: Exported) -> None:
    by_ref = {e.ref: e for e in exported.entries}
    assert set(by_ref) == set(exported.refs.values())
    assert all(e.title is None for e in exported.entries)
    photo = by_ref[exported.refs["astronaut"]]
    assert photo.kind == "image" and len(photo.frames[0].dct) == 32 and photo.frames[0].features
    assert len(photo.pdq) == 1 and photo.pdq[0].quality >= 50
    song = by_ref[exported.refs["song-0"]]
    assert song.kind == "audio" and song.audio is not None and len(song.audio.hashes) > 500
    assert song.bass is None and song.audio.peaks_t  # nothing below 300 Hz: no bass layer
    bass = by_ref[exported.refs["song-1"]].bass
    assert bass is not None and len(bass.hashes) > 100
    data = _list(exported)
    assert b"astronaut" not in data and b"song-0" not in data and b"jpg" not in data


def test_round_trip_attacked_copies_are_found_as_foreign_works(
    exported: Exported, foreign: ForeignLibrary, photos: dict[str, np.ndarray], tmp_path: Path
) -> None:
    hl = decode_hash_list(_list(exported))
    check_signer(hl, expected=KEY_A.public_key, member="county-a")
    report = foreign.import_list(hl, signer_checked=True)
    assert (report.added, report.replaced, report.unchanged, report.already_imported) == (5, 0, 0, False)
    assert foreign.works_by_member() == {"county-a": {"audio": 2, "image": 3}}

    attacked = write_image(tmp_path / "q.jpg", jpeg(crop(rotate(photos["chelsea"], 8), 0.6), 35))
    (m,) = foreign.identify(attacked)
    assert (m.member, m.reference, m.kind) == ("county-a", exported.refs["chelsea"], "image")
    assert m.score >= m.threshold and m.signal == "rongxin-image" and m.list_sm3 == hl.digest.hex()
    mirrored = foreign.identify(jpeg(photos["coffee"][:, ::-1], 50))
    assert [x.reference for x in mirrored] == [exported.refs["coffee"]]
    assert foreign.identify(write_image(tmp_path / "horse.jpg", photos["horse"])) == []

    x = exported.songs["song-1"][8000 * 5 : 8000 * 15]
    noisy = x + np.random.default_rng(1).normal(0, 0.05, len(x)).astype(np.float32)
    clip = write_wav(tmp_path / "clip.wav", noisy)
    found = foreign.identify(clip)
    assert found and found[0].reference == exported.refs["song-1"] and found[0].kind == "audio"
    offset = found[0].details["ref_start"] - found[0].details["query_start"]
    assert offset == pytest.approx(5.0, abs=0.1)
    other = write_wav(tmp_path / "other.wav", synth_music(999, 10.0))
    assert foreign.identify(other) == []


def test_own_library_does_not_see_foreign_works(
    exported: Exported, tmp_path: Path, photos: dict[str, np.ndarray]
) -> None:
    with Library(tmp_path / "lib") as lib:
        with open_foreign(tmp_path / "lib") as f:  # type: ignore[union-attr]
            f.import_list(decode_hash_list(_list(exported)))
        assert len(lib) == 0 and lib.identify(photos["astronaut"]) == []
    with open_foreign(tmp_path / "lib", readonly=True) as f:  # type: ignore[union-attr]
        assert [m.reference for m in f.identify(photos["astronaut"])] == [exported.refs["astronaut"]]
        with pytest.raises(ReadOnlyLibraryError):
            f.import_list(decode_hash_list(_list(exported)))


def test_pdq_matches_with_threatexchanges_rule(
    exported: Exported, foreign: ForeignLibrary, photos: dict[str, np.ndarray]
) -> None:
    """Entries whose own fingerprints say nothing are still found by their PDQ hashes."""
    blind = [
        dataclasses.replace(e, frames=(ImageFrame(sm3(e.ref.encode()), None),))  # a hash matching nothing
        for e in exported.entries
        if e.kind == "image"
    ]
    foreign.import_list(decode_hash_list(_list(exported, entries=blind)))
    (m,) = foreign.identify(jpeg(photos["astronaut"], 40))
    assert m.signal == "pdq" and m.reference == exported.refs["astronaut"]
    assert 0 <= m.details["pdq_distance"] <= MATCH_DISTANCE and m.score >= m.threshold
    assert foreign.identify(photos["horse"]) == []
    flat = np.full((200, 200, 3), 128, np.uint8)  # quality 0: never matched
    assert foreign.identify(flat) == []


def test_pdq_matcher_threshold_and_quality() -> None:
    m = PdqMatcher()
    base = np.zeros(32, np.uint8)
    near, far = base.copy(), base.copy()
    near[:3] = 0xFF
    near[3] = 0x7F  # 31 bits
    far[:4] = 0xFF  # 32 bits
    m.add(["near", "far", "weak"], np.stack([near, far, base]), np.array([90, 90, 49]))
    assert len(m) == 2  # the low-quality hash is not stored
    assert m.match_hash(bytes(32), 80) == [("near", 31)]
    assert m.match_hash(bytes(32), 49) == []
    h, q = pdq_hash(np.zeros((64, 64), np.uint8))
    assert len(h) == 32 and q < 50


# -- the file format ---------------------------------------------------------------------------


def test_tampered_byte_is_refused(exported: Exported) -> None:
    data = bytearray(_list(exported))
    second_line = data.index(b"\n") + 1
    pos = data.index(b'"dct":"', second_line) + 8
    data[pos] = ord("0") if data[pos] != ord("0") else ord("1")
    with pytest.raises(HashListDigestError, match="altered"):
        decode_hash_list(bytes(data))


def test_forged_list_with_recomputed_digest_fails_the_signature(exported: Exported) -> None:
    lines = _list(exported).split(b"\n")[:-1]
    lines[1] = lines[1].replace(b'"kind":"image"', b'"kind":"image" ', 1)
    body = b"\n".join(lines[:-1]) + b"\n"
    trailer = json.loads(lines[-1])
    trailer["sm3"] = sm3(body).hex()
    with pytest.raises(HashListSignatureError, match="does not verify"):
        decode_hash_list(body + json.dumps(trailer).encode() + b"\n")
    # stripping the signature is noticed too: the header still names the signer
    trailer["signature"] = None
    with pytest.raises(HashListSignatureError, match="no signature"):
        decode_hash_list(body + json.dumps(trailer).encode() + b"\n")


def test_wrong_signer_and_member_are_refused(exported: Exported, foreign: ForeignLibrary) -> None:
    hl = decode_hash_list(_list(exported, key=KEY_B))
    with pytest.raises(HashListSignatureError, match="not by the expected key"):
        check_signer(hl, expected=KEY_A.public_key)
    with pytest.raises(HashListMismatchError, match="county-a"):
        check_signer(hl, member="county-b")
    unsigned = decode_hash_list(_list(exported, key=None))
    with pytest.raises(HashListSignatureError, match="not signed"):
        check_signer(unsigned)
    check_signer(unsigned, allow_unsigned=True)
    # trust on first use: once county-a's lists came signed by A, one signed by B is refused
    foreign.import_list(decode_hash_list(_list(exported, key=KEY_A, created="2026-12-01T00:00:00Z")))
    with pytest.raises(HashListSignatureError, match="earlier lists were signed"):
        foreign.import_list(hl)
    with pytest.raises(HashListSignatureError, match="earlier lists were signed"):
        foreign.import_list(unsigned)
    assert foreign.import_list(hl, signer_checked=True).unchanged == 5


@pytest.mark.parametrize("cut", ["inside-trailer", "no-trailer", "inside-entry", "header-only"])
def test_truncated_lists_are_refused(exported: Exported, cut: str) -> None:
    data = _list(exported)
    lines = data.split(b"\n")
    if cut == "inside-trailer":
        short = data[:-10]
    elif cut == "no-trailer":
        short = b"\n".join(lines[:-2]) + b"\n"
    elif cut == "inside-entry":
        short = b"\n".join(lines[:3]) + b"\n" + lines[3][: len(lines[3]) // 2]
    else:
        short = lines[0] + b"\n"
    with pytest.raises(TruncatedHashListError, match="incomplete"):
        decode_hash_list(short)


def test_oversized_lists_are_refused(exported: Exported) -> None:
    data = _list(exported)
    with pytest.raises(HashListTooLargeError, match="limit"):
        decode_hash_list(data, limits=Limits(max_bytes=len(data) - 1))
    with pytest.raises(HashListTooLargeError, match="longer than"):
        decode_hash_list(data, limits=Limits(max_line=1000))
    with pytest.raises(HashListTooLargeError, match="entries"):
        decode_hash_list(data, limits=Limits(max_entries=4))
    with pytest.raises(HashListTooLargeError):
        decode_hash_list(data, limits=Limits(max_landmarks=100))


def _rewrite_header(data: bytes, **changes: object) -> bytes:
    lines = data.split(b"\n")
    header = json.loads(lines[0]) | changes
    lines[0] = json.dumps(header).encode()
    return b"\n".join(lines)


def test_wrong_version_and_not_a_list(exported: Exported) -> None:
    with pytest.raises(UnsupportedHashListVersionError, match="version 2"):
        decode_hash_list(_rewrite_header(_list(exported), version=2))
    with pytest.raises(MalformedHashListError, match="not a hash list"):
        decode_hash_list(_rewrite_header(_list(exported), format="something-else"))
    for junk in (b"", b"\x89PNG\r\n\x1a\n" + bytes(40) + b"\n", b"{not json\n", b"[1, 2]\n"):
        with pytest.raises(MalformedHashListError):
            decode_hash_list(junk)
    # a header whose count disagrees with the lines (recomputed digest, unsigned)
    lines = _list(exported, key=None).split(b"\n")[:-2]
    header = json.loads(lines[0]) | {"entries": 3}
    body = b"\n".join([json.dumps(header).encode(), *lines[1:]]) + b"\n"
    trailer = json.dumps({"sm3": sm3(body).hex(), "signature": None}).encode() + b"\n"
    with pytest.raises(MalformedHashListError, match="more lines"):
        decode_hash_list(body + trailer)


def _unsigned_with(exported: Exported, entry: dict[str, object]) -> HashList:
    lines = [
        json.dumps(
            {
                "format": "rongxin-hash-list",
                "version": 1,
                "member": "county-a",
                "created": "2026-12-05T00:00:00Z",
                "entries": 1,
                "signals": exported.signals,
                "signer": None,
            }
        ).encode(),
        json.dumps(entry).encode(),
    ]
    body = b"\n".join(lines) + b"\n"
    return decode_hash_list(body + json.dumps({"sm3": sm3(body).hex(), "signature": None}).encode() + b"\n")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"ref": "../etc/passwd"}, "work reference"),
        ({"kind": "film"}, "kind"),
        ({"fingerprint_sm3": "zz"}, "fingerprint_sm3"),
        ({"extra": 1}, "unknown fields"),
        ({"image": {"frames": []}}, "non-empty"),
        ({"image": {"frames": [{"dct": "00" * 31, "features": None}]}}, "dct"),
        ({"image": {"frames": [{"dct": "00" * 32, "features": "not base64!"}]}}, "base64"),
        ({"pdq": [{"hash": "00" * 32, "quality": 101}]}, "quality"),
    ],
)
def test_malformed_entries_are_refused(exported: Exported, change: dict[str, object], error: str) -> None:
    image = next(e for e in exported.entries if e.kind == "image")
    from forensics.exchange.hashlist import entry_json

    with pytest.raises(MalformedHashListError, match=error):
        _unsigned_with(exported, entry_json(image) | change)


def test_bad_fingerprints_import_nothing(exported: Exported, foreign: ForeignLibrary) -> None:
    from forensics.exchange.hashlist import entry_json

    image = next(e for e in exported.entries if e.kind == "image")
    song = next(e for e in exported.entries if e.kind == "audio")
    blob = image.frames[0].features or b""
    cases = [
        # features whose length disagrees with their header
        (
            entry_json(dataclasses.replace(image, frames=(ImageFrame(image.frames[0].dct, blob[:-5]),))),
            "blob",
        ),
        # fingerprints that do not hash to the digest the member anchored
        (entry_json(dataclasses.replace(image, fingerprint_sm3=bytes(32))), "do not hash"),
        (entry_json(dataclasses.replace(song, fingerprint_sm3=bytes(32))), "do not hash"),
    ]
    assert song.audio is not None
    late = dataclasses.replace(song.audio, frames=song.audio.frames + np.uint32(10**6))
    cases.append((entry_json(dataclasses.replace(song, audio=late)), "malformed"))
    for entry, error in cases:
        with pytest.raises(ForensicsError, match=error):
            foreign.import_list(_unsigned_with(exported, entry))
    assert foreign.works_by_member() == {} and foreign.lists() == []


def test_audio_parameters_must_match(exported: Exported, foreign: ForeignLibrary) -> None:
    signals = json.loads(json.dumps(exported.signals))
    signals["rongxin-audio"]["params"]["hop"] = 64
    data = encode_hash_list("county-a", exported.entries, signals=signals, key=KEY_A)
    with pytest.raises(HashListMismatchError, match="other parameters"):
        foreign.import_list(decode_hash_list(data))


def test_import_is_idempotent_and_updates(exported: Exported, foreign: ForeignLibrary) -> None:
    first = decode_hash_list(_list(exported, created="2026-12-01T00:00:00Z"))
    assert foreign.import_list(first).added == 5
    again = foreign.import_list(first)
    assert again.already_imported and again.added == 0
    later = decode_hash_list(_list(exported, created="2026-12-05T00:00:00Z"))
    report = foreign.import_list(later)
    assert (report.added, report.replaced, report.unchanged) == (0, 0, 5)
    changed = [
        dataclasses.replace(e, frames=e.frames[:1] * 2, fingerprint_sm3=_digest_of(e.frames[:1] * 2))
        if e.ref == exported.refs["coffee"]
        else e
        for e in exported.entries
    ]
    report = foreign.import_list(decode_hash_list(_list(exported, entries=changed)))
    assert (report.added, report.replaced, report.unchanged) == (0, 1, 4)
    assert foreign.works_by_member() == {"county-a": {"audio": 2, "image": 3}}
    assert len(foreign.lists()) == 3
    assert foreign.forget_member("county-a") == 5
    assert foreign.works_by_member() == {} and foreign.lists() == []


def _digest_of(frames: tuple[ImageFrame, ...]) -> bytes:
    from forensics.image.features import LocalFeatures
    from forensics.image.index import ImageFingerprint, fingerprint_digest

    return fingerprint_digest(
        [
            ImageFingerprint(np.frombuffer(f.dct, np.uint8), LocalFeatures.from_bytes(f.features or b""))
            for f in frames
        ]
    )


# -- real music, and a video's soundtrack ------------------------------------------------------


@pytest.fixture(scope="module")
def real_song_list(
    tmp_path_factory: pytest.TempPathFactory,
    smoke_root: Path,  # noqa: F811  (the fixture imported above)
) -> tuple[bytes, Path, str]:
    """A hash list of one real song (the smoke corpus's game music), its file and its reference."""
    from datasets.manifest import Manifest

    root = smoke_root
    man = Manifest.open(root)
    song = next(e for e in man.select(collection="music", role="original") if (e.duration or 0) >= 60)
    with Library(tmp_path_factory.mktemp("real-a") / "lib") as lib:
        reg = lib.register(root / song.path, "theme")
        data = encode_hash_list(
            "county-a", export_entries(lib), signals=signal_parameters(lib, ["audio"], False), key=KEY_A
        )
    return data, root / song.path, work_reference(reg.content_digest)


def test_real_music_in_a_video_soundtrack_is_found_as_a_foreign_work(
    real_song_list: tuple[bytes, Path, str], foreign: ForeignLibrary, tmp_path: Path
) -> None:
    from tests.forensics.test_library_video import make_video

    data, song, ref = real_song_list
    foreign.import_list(decode_hash_list(data))
    video = make_video(tmp_path / "upload.mp4", song, 30.0)
    (m,) = foreign.identify(video)
    assert (m.member, m.reference, m.kind, m.query_stream) == ("county-a", ref, "audio", "audio")
    assert m.details["ref_start"] - m.details["query_start"] == pytest.approx(30.0, abs=0.2)
    silent = make_video(tmp_path / "silent.mp4", None)
    assert foreign.identify(silent) == []


def test_a_long_running_reader_sees_later_imports(
    exported: Exported, tmp_path: Path, photos: dict[str, np.ndarray]
) -> None:
    """A process that keeps the foreign works open (a web service) sees lists another process imports."""
    blind = [
        dataclasses.replace(e, frames=(ImageFrame(sm3(e.ref.encode()), None),))
        for e in exported.entries
        if e.kind == "image"
    ]
    where = tmp_path / "lib" / "foreign"
    with ForeignLibrary(where) as reader, ForeignLibrary(where) as writer:
        query = jpeg(photos["astronaut"], 40)
        assert reader.identify(query) == []
        writer.import_list(decode_hash_list(_list(exported, entries=blind)))
        assert [m.signal for m in reader.identify(query)] == ["pdq"]
        writer.forget_member("county-a")
        assert reader.identify(query) == []


# -- any damage is a HashListError, never a crash ----------------------------------------------


def _resealed(body: bytes) -> bytes:
    """``body`` (header and entry lines) with a correct unsigned trailer, so the fields are parsed."""
    return body + json.dumps({"sm3": sm3(body).hex(), "signature": None}).encode() + b"\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_lists_raise_hash_list_errors_only(
    exported: Exported, tmp_path: Path, data: st.DataObject
) -> None:
    from forensics.exchange.errors import HashListError

    small = [e for e in exported.entries if e.kind == "image"][:1] + [
        e for e in exported.entries if e.kind == "audio"
    ][:1]
    original = encode_hash_list("county-a", small, signals=exported.signals, key=None)
    body = bytearray(original[: original.rindex(b"\n", 0, len(original) - 1) + 1])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(body) - 1))
        how = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if how == "flip":
            body[pos] = data.draw(st.sampled_from(b'0123456789abcdef{}[]",:\\ -+eE.nul\n\x00\xff'))
        elif how == "delete":
            del body[pos : pos + data.draw(st.integers(1, 40))]
        else:
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    damaged = _resealed(bytes(body))
    try:
        hl = decode_hash_list(damaged)
    except HashListError:
        return
    with ForeignLibrary(tmp_path / f"f-{sm3(damaged).hex()[:12]}") as f:
        try:
            f.import_list(hl)
        except ForensicsError:
            return
