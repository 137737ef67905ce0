"""Attack-set generation (the ``rongxin datasets`` command line is tested in tests/rongxin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets.attacks.generate import generate, load_truth, plan
from datasets.errors import AttackError
from datasets.manifest import Manifest


def test_plan_depends_only_on_seed(smoke: Manifest) -> None:
    p1 = [(s.id, n, q) for s, n, q in plan(smoke, "audio", 20, seed=4)]
    assert p1 == [(s.id, n, q) for s, n, q in plan(smoke, "audio", 20, seed=4)]
    assert p1 != [(s.id, n, q) for s, n, q in plan(smoke, "audio", 20, seed=5)]
    assert all(n[0] == "excerpt" and 2 <= len(n) <= 3 for _, n, _ in p1)
    with pytest.raises(AttackError, match="unknown attack kind"):
        plan(smoke, "text", 1, 0)
    with pytest.raises(AttackError, match="no original"):
        plan(Manifest(smoke.root, []), "image", 1, 0)


def test_generate_image_set_is_reproducible(tmp_path: Path, smoke: Manifest) -> None:
    a = generate(smoke, "image", 6, seed=2, out=tmp_path / "a")
    b = generate(smoke, "image", 6, seed=2, out=tmp_path / "b")
    assert [t.output["digest"] for t in a] == [t.output["digest"] for t in b]
    rows = load_truth(tmp_path / "a")
    assert len(rows) == 6 and all((tmp_path / "a" / r["output"]["file"]).is_file() for r in rows)
    ids = {e.id for e in smoke.select(collection="images", role="original")}
    assert all(r["source_id"] in ids and r["chain"] for r in rows)


def test_generate_audio_set(tmp_path: Path, smoke: Manifest) -> None:
    truths = generate(smoke, "audio", 3, seed=1, out=tmp_path, max_chain=1)
    for t in truths:
        assert t.time_map and t.time_map[0]["source_end"] > t.time_map[0]["source_start"]
        assert (tmp_path / t.output["file"]).suffix == ".flac"
