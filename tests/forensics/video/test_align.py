"""Alignment: synthetic codes for the voting logic, real clips for offsets and speeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datasets.attacks.video import apply
from forensics.video.align import AlignParams, Pairs, QueryCodes, align, popcount_rows
from forensics.video.index import VideoIndex
from tests.forensics.video.conftest import Media, excerpt

RATE = 4.0


def _pairs(query: np.ndarray, works: list[np.ndarray], k: int = 8) -> Pairs:
    """Exhaustive nearest pairs (both variants) within the default frame threshold."""
    rows = []
    for variant, codes in enumerate((query, query[:, ::-1])):
        for w, ref in enumerate(works):
            d = popcount_rows(np.bitwise_xor(codes[:, None, :], ref[None, :, :]))
            for i in range(len(codes)):
                for j in np.argsort(d[i])[:k]:
                    if d[i, j] <= AlignParams().frame_bits:
                        rows.append((i, variant, w, j, d[i, j]))
    a = np.array(rows, dtype=np.int64).reshape(-1, 5)
    return Pairs(a[:, 0], a[:, 1].astype(np.int8), a[:, 2], a[:, 3], a[:, 4].astype(np.int16))


def _noisy(codes: np.ndarray, rng: np.random.Generator, bits: int) -> np.ndarray:
    out = codes.copy()
    for row in out:
        flips = rng.choice(256, bits, replace=False)
        for b in flips:
            row[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def _resample(work: np.ndarray, start: float, seconds: float, speed: float) -> np.ndarray:
    """Query frames at RATE showing work time start + speed·t."""
    t = np.arange(int(seconds * RATE)) / RATE
    return np.asarray(work[np.rint((start + speed * t) * RATE).astype(int)])


@pytest.mark.parametrize("speed", [0.9, 1.0, 1.1])
def test_offset_and_speed_recovered_from_noisy_codes(speed: float) -> None:
    rng = np.random.default_rng(int(speed * 100))
    works = [rng.integers(0, 256, (400, 32), dtype=np.uint8) for _ in range(3)]
    q = _noisy(_resample(works[1], 31.0, 20.0, speed), rng, 40)
    query = QueryCodes(q, q[:, ::-1], np.ones(len(q), bool), RATE)
    found = align(query, _pairs(q, works), lambda w: (works[w], np.ones(400, bool)), AlignParams())
    assert found and found[0].work == 1
    a = found[0]
    assert abs(a.ref_start - 31.0) <= 0.3 and abs(a.speed - speed) <= 0.02, a
    assert abs(a.ref_end - (31.0 + speed * 20.0)) <= 0.5
    assert a.matched >= 0.9 * len(q) and len(a.per_second) == 20 and len(a.pairs) == 5


def test_long_query_refined_to_its_speed_and_offset() -> None:
    # a 15-min query (3,600 frames): the refinement scores its grid in several batches
    rng = np.random.default_rng(7)
    work = rng.integers(0, 256, (4400, 32), dtype=np.uint8)
    speed, start = 1.03, 40.0
    q = _noisy(_resample(work, start, 900.0, speed), rng, 40)
    t = np.arange(len(q)) / RATE
    true_j = np.rint((start + speed * t) * RATE).astype(np.int64)
    i = np.arange(0, len(q), 3)  # a third of the frames found their true neighbour...
    j = true_j[i]
    wrong = rng.integers(0, len(work), len(i))  # ...and as many a random one
    pairs = Pairs(
        np.concatenate([i, i]),
        np.zeros(2 * len(i), np.int8),
        np.zeros(2 * len(i), np.int64),
        np.concatenate([j, wrong]),
        np.zeros(2 * len(i), np.int16),
    )
    query = QueryCodes(q, q[:, ::-1], np.ones(len(q), bool), RATE)
    (a,) = align(query, pairs, lambda w: (work, np.ones(len(work), bool)), AlignParams())
    assert abs(a.speed - speed) <= 0.005 and abs(a.ref_start - start) <= 0.25, a
    assert a.matched >= 0.95 * len(q)


def test_two_works_in_one_query_each_get_a_span() -> None:
    rng = np.random.default_rng(5)
    works = [rng.integers(0, 256, (200, 32), dtype=np.uint8) for _ in range(4)]
    q = np.concatenate([works[2][40:80], works[0][100:160]])  # 10 s of work 2, then 15 s of work 0
    query = QueryCodes(q, q[:, ::-1], np.ones(len(q), bool), RATE)
    found = align(query, _pairs(q, works), lambda w: (works[w], np.ones(200, bool)), AlignParams())
    spans = {a.work: (a.query_start, a.query_end, a.ref_start) for a in found}
    assert set(spans) == {0, 2}
    assert spans[2] == pytest.approx((0.0, 10.0, 10.0), abs=0.3)
    assert spans[0] == pytest.approx((10.0, 25.0, 25.0), abs=0.3)


def test_unrelated_codes_give_nothing_and_invalid_frames_never_count() -> None:
    rng = np.random.default_rng(9)
    works = [rng.integers(0, 256, (200, 32), dtype=np.uint8)]
    q = rng.integers(0, 256, (60, 32), dtype=np.uint8)
    query = QueryCodes(q, q[:, ::-1], np.ones(60, bool), RATE)
    assert align(query, _pairs(q, works), lambda w: (works[w], np.ones(200, bool)), AlignParams()) == []
    same = works[0][:60]
    blank = QueryCodes(same, same[:, ::-1], np.zeros(60, bool), RATE)
    assert align(blank, _pairs(same, works), lambda w: (works[w], np.ones(200, bool)), AlignParams()) == []


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, media: Media) -> VideoIndex:
    idx = VideoIndex(tmp_path_factory.mktemp("align-idx"))
    for name, path in media.programmes.items():
        idx.add(name, path)
    return idx


@pytest.mark.parametrize(
    ("name", "start", "filters", "speed", "flip"),
    [
        ("alpha", 3.0, (), 1.0, False),
        ("alpha", 4.0, ("hflip",), 1.0, True),
        ("beta", 2.0, ("setpts=PTS/1.1",), 1.1, False),
        ("beta", 1.0, ("setpts=PTS/0.9",), 0.9, False),
        ("gamma", 1.5, ("scale=320:180,pad=320:240:0:30",), 1.0, False),  # letterbox
        ("alpha", 2.0, ("scale=240:180,pad=320:180:40:0", "eq=gamma=1.4:saturation=0.6"), 1.0, False),
        # 20 % cut from every side, of a programme that moves over the whole picture (the
        # centre of beta is a still black board with a small ball: see the test below)
        ("alpha", 2.0, ("crop=iw*0.6:ih*0.6",), 1.0, False),
    ],
)
def test_real_clip_offset_and_speed(
    tmp_path: Path,
    index: VideoIndex,
    media: Media,
    name: str,
    start: float,
    filters: tuple[str, ...],
    speed: float,
    flip: bool,
) -> None:
    clip = excerpt(media.programmes[name], tmp_path / "clip.mp4", start, 6.0, *filters)
    fp = index.fingerprint(clip, query=True)
    found = index.identify_fingerprint(fp)
    assert found, f"{name} not found"
    work, a = found[0]
    assert work == name and a.flip is flip
    assert index.view_of(a) == ("centre" if "crop" in "".join(filters) else "full")
    assert abs(a.speed - speed) <= 0.04, a.speed  # 6 s at 4 frames per second: speed within 4 %
    # both ends of the span map to the work within half a second
    for q, r in ((a.query_start, a.ref_start), (a.query_end, a.ref_end)):
        assert abs(r - (start + speed * q)) <= 0.5, a
    assert a.query_end - a.query_start >= 0.8 * fp.duration


def test_attack_generator_truth_matches_the_alignment(
    tmp_path: Path, index: VideoIndex, media: Media
) -> None:
    truth = apply(
        media.programmes["alpha"],
        tmp_path / "attacked.mp4",
        [("excerpt", {"start": 5.0, "length": 8.0}), ("speed", {"factor": 1.1}), ("eq", {})],
        seed=11,
    )
    (work, a), *_ = index.identify_fingerprint(index.fingerprint(tmp_path / "attacked.mp4", query=True))
    assert work == "alpha" and abs(a.speed - 1.1) <= 0.03
    assert abs(a.ref_start - (5.0 + 1.1 * a.query_start)) <= 0.5, (a, truth.time_map)


def test_centre_crop_of_a_still_scene_is_identified(tmp_path: Path, index: VideoIndex, media: Media) -> None:
    # beta's centre is a black board that a small ball crosses: its frames barely change,
    # so a centre crop's place in time is not fixed by its pictures (with ffmpeg 5.1.9 the
    # best alignment of a crop from 2.0 s starts at 0.2 s, at speed 0.89), but what it
    # is a copy of, and of which view, still is
    clip = excerpt(media.programmes["beta"], tmp_path / "clip.mp4", 2.0, 6.0, "crop=iw*0.6:ih*0.6")
    found = index.identify_fingerprint(index.fingerprint(clip, query=True))
    assert found and found[0][0] == "beta"
    assert index.view_of(found[0][1]) == "centre" and not found[0][1].flip
