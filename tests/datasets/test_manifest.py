"""Manifest parsing, writing and validation against files."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.crypto.sm3 import sm3_file
from datasets.errors import ManifestError
from datasets.manifest import Entry, Manifest, load, parse_lines, write


def _entry(tmp: Path, name: str = "a.png", data: bytes = b"hello") -> Entry:
    (tmp / "images").mkdir(exist_ok=True)
    f = tmp / "images" / name
    f.write_bytes(data)
    return Entry(
        id=f"img-{name}",
        kind="image",
        collection="images",
        role="original",
        path=f"images/{name}",
        digest=sm3_file(f).hex(),
        size=len(data),
        package="pkg",
        version="1",
        origin="apt",
        license="GPL-2+",
        original_path="/usr/share/x/" + name,
        width=4,
        height=4,
    )


def test_round_trip(tmp_path: Path) -> None:
    entries = [_entry(tmp_path, "a.png", b"one"), _entry(tmp_path, "b.png", b"two")]
    man = Manifest(tmp_path, entries)
    man.save()
    assert load(tmp_path) == entries
    assert Manifest.open(tmp_path)["img-b.png"].size == 3
    man.validate()


def test_validate_detects_tampering_missing_and_extra_files(tmp_path: Path) -> None:
    e = _entry(tmp_path, "a.png", b"original")
    man = Manifest(tmp_path, [e])
    (tmp_path / "images" / "a.png").write_bytes(b"tampered")  # same size, other bytes
    with pytest.raises(ManifestError, match="does not match its SM3 digest"):
        man.validate()
    man.validate(check_digests=False)  # size still equal
    (tmp_path / "images" / "a.png").write_bytes(b"short")
    with pytest.raises(ManifestError, match="has 5 bytes"):
        man.validate(check_digests=False)
    (tmp_path / "images" / "a.png").unlink()
    with pytest.raises(ManifestError, match="missing"):
        man.validate()
    (tmp_path / "images" / "a.png").write_bytes(b"original")
    (tmp_path / "images" / "stray.jpg").write_bytes(b"x")
    with pytest.raises(ManifestError, match=r"stray\.jpg is not in the manifest"):
        man.validate()


def _line(**over: object) -> str:
    base: dict[str, object] = {
        "id": "x",
        "kind": "audio",
        "collection": "music",
        "role": "original",
        "path": "music/x.ogg",
        "digest": "ab" * 32,
        "size": 10,
        "package": "p",
        "version": "1",
    }
    base.update(over)
    return json.dumps({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (_line(kind="text"), "bad kind"),
        (_line(role="maybe"), "bad kind/collection/role"),
        (_line(digest="zz"), "64 lowercase hex"),
        (_line(digest="AB" * 32), "64 lowercase hex"),
        (_line(path="/etc/passwd"), "relative to the corpus root"),
        (_line(path="music/../../x"), "relative to the corpus root"),
        (_line(size=-1), "non-negative"),
        (_line(size="10"), "non-negative"),
        (_line(version=None), "lacks field"),
        (_line(extra=1), "unknown manifest field"),
    ],
)
def test_malformed_lines_are_rejected(line: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_lines([line])


def test_duplicate_ids_and_truncated_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="duplicate id"):
        parse_lines([_line(), _line()])
    good = _line()
    (tmp_path / "manifest.jsonl").write_text(good + "\n" + good[: len(good) // 2] + "\n")
    with pytest.raises(ManifestError, match=r"manifest.jsonl:2: not valid JSON"):
        load(tmp_path)
    with pytest.raises(ManifestError, match="build the corpus first"):
        load(tmp_path / "nope")


def test_write_is_atomic_and_select_filters(tmp_path: Path) -> None:
    e1 = _entry(tmp_path, "a.png", b"1")
    write(tmp_path / "m.jsonl", [e1])
    assert not list(tmp_path.glob("*.tmp"))  # no temporary left
    man = Manifest(tmp_path, [e1])
    assert man.select(kind="image") == [e1]
    assert man.select(kind="audio") == []
    assert man.select(role="distractor") == []
    with pytest.raises(ManifestError, match="no entry"):
        man["img-missing"]


def test_concurrent_writers_each_rename_a_whole_file(tmp_path: Path) -> None:
    entries = [_entry(tmp_path, f"{i}.png", bytes([i])) for i in range(40)]
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for _ in range(25):
                write(tmp_path / "m.jsonl", entries[k:])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert lines and len(lines) in {40, 39, 38, 37}  # one writer's whole list, never a mix
    assert not list(tmp_path.glob("*.tmp"))


def test_failed_write_leaves_the_old_manifest(tmp_path: Path) -> None:
    e1 = _entry(tmp_path, "a.png", b"1")
    write(tmp_path / "m.jsonl", [e1])

    def broken() -> Iterator[Entry]:
        yield e1
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write(tmp_path / "m.jsonl", broken())
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 1
    assert not list(tmp_path.glob("*.tmp"))
