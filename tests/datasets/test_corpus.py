"""Corpus building: the smoke corpus's contents, deduplication, resumption, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datasets.corpus import Item, build, counts, dedupe
from datasets.errors import DatasetsError
from datasets.manifest import Entry, Manifest
from datasets.sources import SOURCES, TARGETS, sources_for
from datasets.tools import probe


def test_smoke_corpus_covers_every_collection_with_real_media(smoke: Manifest) -> None:
    table = counts(smoke)
    for key in (
        "images/original",
        "images/distractor",
        "music/original",
        "music/distractor",
        "speech/original",
    ):
        assert table[key]["files"] >= 2, key
    assert table["video/original/assembled"]["files"] == 3
    assert table["music/original"]["hours"] > 0.05
    for e in smoke:
        assert e.package and e.version and e.license, e.id
        assert e.id.startswith({"image": "img-", "audio": "aud-", "video": "vid-"}[e.kind])
        assert e.digest.startswith(e.id.split("-")[1])
        if e.kind != "image":
            assert e.duration and e.duration > 0
        else:
            assert e.width and e.height and min(e.width, e.height) >= 64
    smoke.validate()


def test_every_smoke_file_decodes(smoke: Manifest) -> None:
    for e in smoke.select(kind="video"):
        info = probe(smoke.path(e))
        assert info.has_video and abs(info.duration - (e.duration or 0)) < 0.5
        assert (info.width, info.height) == (e.width, e.height)


def test_assembled_entries_are_labelled(smoke: Manifest) -> None:
    clips = smoke.select(kind="video", assembled=True)
    assert clips
    for c in clips:
        assert c.recipe["type"] == "slideshow" and c.path.startswith("assembled/")
        assert all(d in {e.id for e in smoke} for d in c.derived_from)
    frames = smoke.select(kind="image", assembled=True)
    assert frames and all(f.role == "distractor" and f.recipe["type"] == "video frame" for f in frames)


def test_rebuild_is_idempotent_and_quick(smoke_root: Path, smoke: Manifest) -> None:
    before = (smoke_root / "manifest.jsonl").read_bytes()
    again = build("all", smoke_root, smoke=True)
    assert (smoke_root / "manifest.jsonl").read_bytes() == before
    assert [e.id for e in again] == [e.id for e in smoke]


def test_unknown_target_and_recipe_consistency() -> None:
    with pytest.raises(DatasetsError, match="unknown corpus 'pictures'"):
        build("pictures")
    keys = [s.key for s in SOURCES]
    assert len(keys) == len(set(keys))
    assert set(TARGETS["all"]) == {s.collection for s in SOURCES}
    assert all(s.smoke for s in sources_for(("images", "music", "speech", "video"), smoke=True))


def _item(i: str, digest: str, kind: str = "image", sig: bytes = b"", duration: float | None = None) -> Item:
    e = Entry.from_dict(
        json.loads(
            json.dumps(
                {
                    "id": i,
                    "kind": kind,
                    "collection": {"image": "images", "audio": "music", "video": "video"}[kind],
                    "role": "original",
                    "path": f"x/{i}",
                    "digest": digest * 64,
                    "size": 1,
                    "package": "p",
                    "version": "1",
                    "duration": duration,
                }
            )
        )
    )
    return Item(e, sig)


def test_dedupe_exact_and_near() -> None:
    a = _item("a", "a", sig=bytes(32))
    same = _item("b", "a", sig=bytes(32))
    near = _item("c", "c", sig=b"\x01" * 8 + bytes(24))  # 8 bits away
    far = _item("d", "d", sig=b"\xff" * 32)
    kept, dropped = dedupe([a, same, near, far])
    assert [k.entry.id for k in kept] == ["a", "d"]
    assert [(d.entry.id, k.entry.id, r) for d, k, r in dropped] == [
        ("b", "a", "same SM3 digest"),
        ("c", "a", "near-identical"),
    ]
    v1 = _item("v1", "1", "video", bytes(32), 10.0)
    v2 = _item("v2", "2", "video", bytes(32), 10.1)
    v3 = _item("v3", "3", "video", bytes(32), 30.0)
    kept, dropped = dedupe([v1, v2, v3])
    assert [k.entry.id for k in kept] == ["v1", "v3"]


def test_damaged_state_file_is_reported(tmp_path: Path) -> None:
    from datasets.corpus import _read_state  # private on purpose: the state file's own reader

    p = tmp_path / "x.jsonl"
    p.write_text('{"entry": {"id": 1}, "sig": "zz"}\n')
    with pytest.raises(DatasetsError, match="delete it to redo"):
        _read_state(p)
