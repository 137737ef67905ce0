"""Assembled slideshows: seeded recipes and reproducible bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets.assemble import plan_clip, render_slideshow
from datasets.errors import DatasetsError
from datasets.manifest import Manifest
from datasets.tools import probe

PHOTOS = [f"p{i}" for i in range(10)]


def test_plan_is_seeded_and_in_range() -> None:
    plans = [plan_clip(i, 5, PHOTOS, ["m1", "m2"]) for i in range(30)]
    assert plans == [plan_clip(i, 5, PHOTOS, ["m1", "m2"]) for i in range(30)]
    assert plans != [plan_clip(i, 6, PHOTOS, ["m1", "m2"]) for i in range(30)]
    assert all(20 <= p["duration"] <= 40 for p in plans)
    assert len({(p["width"], p["height"]) for p in plans}) >= 3
    assert len({p["fps"] for p in plans}) >= 2
    with pytest.raises(DatasetsError, match="need at least"):
        plan_clip(0, 0, ["p1"], [])


def test_render_is_bit_exact(tmp_path: Path, smoke: Manifest) -> None:
    photos = [smoke.path(e) for e in smoke.select(collection="images", role="original")[:3]]
    track = smoke.select(collection="music", role="original")[0]
    recipe = plan_clip(0, 1, ["a", "b", "c"], ["m"], short=True)
    recipe.update(width=160, height=90, seconds_per_photo=1.5, transition_seconds=0.5, duration=3.5)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    render_slideshow(recipe, photos, smoke.path(track), 1.0, a)
    render_slideshow(recipe, photos, smoke.path(track), 1.0, b)
    assert a.read_bytes() == b.read_bytes()
    info = probe(a)
    assert (info.width, info.height, info.has_audio) == (160, 90, True)
    assert abs(info.duration - 3.5) < 0.2
