"""The work library: catalogue, routing by kind, persistence, bad input, concurrency."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from chain.crypto.sm3 import sm3_file
from forensics import library as library_mod
from forensics.errors import (
    DuplicateContentError,
    ForensicsError,
    LibraryError,
    MediaError,
    ReadOnlyLibraryError,
    UnsupportedMediaError,
)
from forensics.image.index import fingerprint_digest
from forensics.library import Library, register_index
from tests.forensics.conftest import crop, jpeg, rotate, write_image


@pytest.fixture()
def files(tmp_path: Path, photos: dict[str, np.ndarray]) -> dict[str, Path]:
    d = tmp_path / "media"
    d.mkdir()
    return {n: write_image(d / f"{n}.jpg", photos[n]) for n in ("astronaut", "chelsea", "coffee", "horse")}


def test_register_identify_and_catalogue(
    tmp_path: Path, files: dict[str, Path], photos: dict[str, np.ndarray]
) -> None:
    with Library(tmp_path / "lib") as lib:
        reg = lib.register(files["astronaut"], "astro", {"owner": "县融媒体中心", "year": 2026})
        assert reg.kind == "image" and reg.content_digest == sm3_file(files["astronaut"])
        assert len(reg.fingerprint_digest) == 32 and reg.registered_at is not None
        assert reg.registered_at.endswith("Z") and "T" in reg.registered_at
        lib.register(files["chelsea"], "cat")
        assert len(lib) == 2 and "astro" in lib and "nope" not in lib
        assert lib.get("astro") == reg
        q = write_image(tmp_path / "q.jpg", jpeg(crop(rotate(photos["astronaut"], 12), 0.55), 30))
        (m,) = lib.identify(q)
        assert m.work_id == "astro" and m.score >= m.threshold
        assert lib.identify(files["horse"]) == []


def test_fingerprint_digest_is_deterministic(tmp_path: Path, files: dict[str, Path]) -> None:
    with Library(tmp_path / "a") as a, Library(tmp_path / "b") as b:
        ra = a.register(files["coffee"], "x")
        rb = b.register(files["coffee"], "y")
    assert ra.fingerprint_digest == rb.fingerprint_digest
    assert fingerprint_digest([]) != ra.fingerprint_digest


def test_persists_across_restart_and_remove(tmp_path: Path, files: dict[str, Path]) -> None:
    with Library(tmp_path / "lib") as lib:
        lib.register(files["coffee"], "coffee", {"k": [1, 2]})
        lib.register(files["chelsea"], "cat")
    with Library(tmp_path / "lib", create=False) as lib:
        assert [r.work_id for r in lib.works()] == ["cat", "coffee"]
        assert lib.get("coffee").metadata == {"k": [1, 2]}  # type: ignore[union-attr]
        assert lib.identify(files["coffee"])[0].work_id == "coffee"
        lib.remove("coffee")
        with pytest.raises(LibraryError, match="no work"):
            lib.remove("coffee")
        stats = lib.stats()
        assert stats["works"] == 1 and stats["works_by_kind"] == {"image": 1}
        assert stats["indexes"]["image"]["works"] == 1 and stats["bytes_on_disk"] > 0
    with Library(tmp_path / "lib") as lib:
        assert lib.identify(files["coffee"]) == []
        assert lib.identify(files["chelsea"])[0].work_id == "cat"


def test_duplicate_and_invalid_ids(tmp_path: Path, files: dict[str, Path]) -> None:
    with Library(tmp_path / "lib") as lib:
        lib.register(files["coffee"], "w")
        with pytest.raises(LibraryError, match="already registered"):
            lib.register(files["chelsea"], "w")
        for bad in ("", "   ", "a\nb", "x" * 201):
            with pytest.raises(LibraryError):
                lib.register(files["chelsea"], bad)
        with pytest.raises(LibraryError, match="JSON"):
            lib.register(files["chelsea"], "meta", {"f": object()})
        assert [r.work_id for r in lib.works()] == ["w"]


def test_failed_fingerprint_releases_the_id(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with Library(tmp_path / "lib") as lib:
        with pytest.raises(MediaError):
            lib.register(bad, "w")
        assert "w" not in lib and len(lib) == 0


@pytest.mark.parametrize(
    ("content", "error"),
    [(b"", MediaError), (b"just some text, no media here", UnsupportedMediaError)],
)
def test_bad_files_raise_forensics_errors(tmp_path: Path, content: bytes, error: type[Exception]) -> None:
    p = tmp_path / "thing.bin"
    p.write_bytes(content)
    with Library(tmp_path / "lib") as lib:
        with pytest.raises(error):
            lib.register(p, "w")
        with pytest.raises(error):
            lib.identify(p)
        with pytest.raises(MediaError, match="directory"):
            lib.identify(tmp_path)


def test_kind_without_index_gives_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(library_mod.INDEX_CLASSES, "audio", "forensics.no_such_module:AudioIndex")
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    with Library(tmp_path / "lib") as lib:
        with pytest.raises(UnsupportedMediaError, match=r"audio index .* is not installed"):
            lib.register(wav, "song")
        assert len(lib) == 0
    mp4 = tmp_path / "v.mp4"
    mp4.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(40))
    with Library(tmp_path / "lib") as lib, pytest.raises(UnsupportedMediaError, match="soundtrack only"):
        lib.identify(mp4)


def test_register_index_plugs_in_a_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class FakeVideo:
        kind = "video"

        def __init__(self, directory: Path) -> None:
            directory.mkdir(parents=True)

        def add(self, work_id: str, path: Path) -> bytes:
            calls.append(work_id)
            return bytes(32)

        def identify(self, path: Path, top_k: int) -> list[library_mod.Match]:
            return [library_mod.Match("clip", 0.9, "video", 0.5, {})]

        def remove(self, work_id: str) -> bool:
            return True

        def stats(self) -> dict[str, int]:
            return {"works": len(calls)}

        def close(self) -> None:
            calls.append("closed")

    monkeypatch.setitem(library_mod.INDEX_CLASSES, "video", FakeVideo)
    mp4 = tmp_path / "v.mp4"
    mp4.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(40))
    with Library(tmp_path / "lib") as lib:
        assert lib.register(mp4, "clip").kind == "video"
        assert [m.work_id for m in lib.identify(mp4)] == ["clip"]
        assert lib.stats()["indexes"]["video"] == {"works": 1}
    assert calls == ["clip", "closed"]
    with pytest.raises(ValueError):
        register_index("smell", "x:y")


def test_directory_problems(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="holds no work library"):
        Library(tmp_path / "missing", create=False)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(LibraryError, match="is a file"):
        Library(f)
    d = tmp_path / "junk"
    d.mkdir()
    (d / "library.db").write_bytes(b"not a database" * 100)
    with pytest.raises(LibraryError, match="not a usable library"):
        Library(d)
    lib = Library(tmp_path / "ok")
    lib.close()
    lib.close()
    with pytest.raises(LibraryError, match="closed"):
        len(lib)


def test_array_sources(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    with Library(tmp_path / "lib") as lib:
        reg = lib.register(photos["rocket"], "rocket")
        assert reg.content_digest == library_mod.array_digest(photos["rocket"])
        assert lib.identify(photos["rocket"][:, ::-1])[0].work_id == "rocket"
        with pytest.raises(ValueError):
            lib.identify(photos["rocket"], top_k=0)


def _reader(path: str, query: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        with Library(path, create=False) as lib:
            out.put([m.work_id for m in lib.identify(query)])
    except ForensicsError as exc:  # pragma: no cover - reported to the parent
        out.put(str(exc))


def test_concurrent_reader_processes(tmp_path: Path, files: dict[str, Path]) -> None:
    lib = Library(tmp_path / "lib")
    lib.register(files["coffee"], "coffee")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_reader, args=(str(tmp_path / "lib"), str(files["coffee"]), out)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    lib.register(files["chelsea"], "cat")  # a write while the readers run
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    lib.close()
    assert results == [["coffee"], ["coffee"]]
    assert json.dumps(results)


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory``: (size, mtime in ns)."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


def test_readonly_lookups_change_no_file(tmp_path: Path, files: dict[str, Path]) -> None:
    from tests.forensics.audio.conftest import synth_music, write_wav

    song = write_wav(tmp_path / "song.wav", synth_music(5, 20.0))
    with Library(tmp_path / "lib") as lib:
        lib.register(files["coffee"], "coffee", {"owner": "A"})
        lib.register(song, "song")
    before = _snapshot(tmp_path / "lib")
    with Library.open(tmp_path / "lib", readonly=True) as lib:
        assert lib.readonly and len(lib) == 2
        assert lib.identify(files["coffee"])[0].work_id == "coffee"
        assert lib.identify(song)[0].work_id == "song"
        assert lib.stats()["works_by_kind"] == {"audio": 1, "image": 1}
        assert lib.work("coffee").metadata == {"owner": "A"}
        with pytest.raises(ReadOnlyLibraryError, match="read-only"):
            lib.register(files["horse"], "horse")
        with pytest.raises(ReadOnlyLibraryError, match="read-only"):
            lib.remove("coffee")
        assert isinstance(ReadOnlyLibraryError("x"), LibraryError)
    assert _snapshot(tmp_path / "lib") == before
    with pytest.raises(LibraryError, match="holds no work library"):
        Library.open(tmp_path / "typo", readonly=True)
    with pytest.raises(LibraryError, match="holds no work library"):
        Library.open(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_readonly_library_without_an_index_of_the_kind(tmp_path: Path, files: dict[str, Path]) -> None:
    from tests.forensics.audio.conftest import synth_music, write_wav

    with Library(tmp_path / "lib") as lib:
        lib.register(files["coffee"], "coffee")
    before = _snapshot(tmp_path / "lib")
    with Library.open(tmp_path / "lib", readonly=True) as lib:
        assert lib.identify(write_wav(tmp_path / "s.wav", synth_music(3, 10.0))) == []
    assert _snapshot(tmp_path / "lib") == before


def test_same_content_is_refused_under_any_id(tmp_path: Path, files: dict[str, Path]) -> None:
    copy = tmp_path / "renamed.jpg"
    copy.write_bytes(files["coffee"].read_bytes())
    with Library(tmp_path / "lib") as lib:
        reg = lib.register(files["coffee"], "coffee")
        with pytest.raises(DuplicateContentError, match="already registered as 'coffee' on") as info:
            lib.register(copy, "other-id")
        assert info.value.work_id == "coffee" and info.value.registered_at == reg.registered_at
        assert "other-id" not in lib and len(lib) == 1
        assert lib.find_content(reg.content_digest) == reg
        assert lib.find_content(bytes(32)) is None
        lib.remove("coffee")
        assert lib.register(copy, "other-id").content_digest == reg.content_digest


def test_work_and_works_give_typed_records(tmp_path: Path, files: dict[str, Path]) -> None:
    with Library(tmp_path / "lib") as lib:
        lib.register(files["horse"], "horse", {"owner": "B"})
        lib.register(files["chelsea"], "cat")
        w = lib.work("horse")
        assert (
            w.kind == "image"
            and w.metadata == {"owner": "B"}
            and w.content_digest == sm3_file(files["horse"])
        )
        assert [x.work_id for x in lib.works()] == ["cat", "horse"]
        with pytest.raises(LibraryError, match="no work 'nope'"):
            lib.work("nope")
