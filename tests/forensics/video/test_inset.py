"""The picture-in-picture inset's box, found on real frames: its extent and its edge pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from forensics.evidence import VideoEvidence
from forensics.library import Library
from forensics.video.decode import iter_frames
from forensics.video.fingerprint import INSET_EDGE_RATIO, fingerprint_blocks, inset_box
from tests.forensics.video.conftest import Media


def _frames(path: Path, side: int = 128, n: int = 24) -> NDArray[np.uint8]:
    return np.concatenate(list(iter_frames(path, rate=4.0, side=side, block=64, strict=False)))[:n]


@pytest.fixture(scope="module")
def pictures(media: Media) -> tuple[NDArray[np.uint8], list[NDArray[np.uint8]]]:
    """A real host (an unrelated clip) and two real programmes, 24 frames each at 128 × 128."""
    return _frames(media.unrelated[1]), [_frames(media.programmes[n]) for n in ("alpha", "beta")]


# places of a 64 × 64 inset (x0, y0) in a 128 × 128 frame, none on the frame's border
PLACES = [(22, 18), (42, 25), (54, 10), (9, 33), (41, 38), (6, 43), (60, 60), (32, 32), (14, 57), (50, 4)]


def test_the_box_is_the_inset_not_a_box_run_on_to_the_border(
    pictures: tuple[NDArray[np.uint8], list[NDArray[np.uint8]]],
) -> None:
    """Each side must be an edge along its whole length: a box that runs past the inset's corner
    to the frame's border (whose side there counts as present) is not the inset.

    Until 2026-12-05 (a side scored by its mean) 14 of these 20 boxes were right; an inset
    a few pixels from two borders still gives a box run on to them now and then."""
    host, programmes = pictures
    right = []
    for programme in programmes:
        for x0, y0 in PLACES:
            frames = host.copy()
            frames[:, y0 : y0 + 64, x0 : x0 + 64] = [
                cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in programme
            ]
            box = inset_box(frames)
            right.append(
                box is not None
                and max(abs(a - b) for a, b in zip(box, (x0, y0, x0 + 64, y0 + 64), strict=True)) <= 1
            )
    assert sum(right) >= 18, right


@pytest.mark.parametrize(("x", "y"), [(83, 61), (41, 101), (121, 27)])
def test_a_row_half_host_half_inset_is_left_out(
    pictures: tuple[NDArray[np.uint8], list[NDArray[np.uint8]]], x: int, y: int
) -> None:
    """An inset whose sides fall inside decoded pixels: the blended rows and columns are not hashed."""
    host, (programme, _) = pictures
    big = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_CUBIC) for f in host])
    big[:, y : y + 128, x : x + 128] = [
        cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in programme
    ]
    frames = np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in big])
    # the inset covers x / 2 .. x / 2 + 64 (a half pixel at each end): those rows and columns are half host
    x0, y0 = (x + 1) // 2, (y + 1) // 2
    assert inset_box(frames) == (x0, y0, x0 + 63, y0 + 63)


@pytest.fixture(scope="module")
def gamma(media: Media) -> NDArray[np.uint8]:
    """The third programme's frames (24 at 128 × 128): the inset's own detail is strong along its
    bottom, as in the demonstration's picture-in-picture clip."""
    return _frames(media.programmes["gamma"])


@pytest.mark.parametrize(("x0", "y0"), [(64, 0), (0, 0), (0, 64), (64, 64), (30, 40), (10, 52)])
def test_an_inset_on_whole_pixels_keeps_its_outermost_rows_and_columns(
    pictures: tuple[NDArray[np.uint8], list[NDArray[np.uint8]]], gamma: NDArray[np.uint8], x0: int, y0: int
) -> None:
    """An inset whose sides fall between decoded pixels (a quarter of the frame in a corner, or
    placed on even pixels of the double-size frame) has no blended line to leave out.

    Its own last rows differ strongly (the edge inside its bottom side is stronger than an
    inset's edge must be): until 2026-12-05 that was taken for a blend and the last row cut."""
    host, _ = pictures
    big = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_CUBIC) for f in host])
    big[:, 2 * y0 : 2 * y0 + 128, 2 * x0 : 2 * x0 + 128] = [
        cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in gamma
    ]
    frames = np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in big])
    f = frames.astype(np.float32)
    rows, cols = np.abs(np.diff(f, axis=1)).mean(axis=0), np.abs(np.diff(f, axis=2)).mean(axis=0)
    inner = rows[y0 + 62, x0 : x0 + 64].mean()  # between the inset's last two rows
    assert inner >= INSET_EDGE_RATIO * (rows.mean() + cols.mean()) / 2
    assert inset_box(frames) == (x0, y0, x0 + 64, y0 + 64)


@pytest.mark.parametrize(("k", "x", "y"), [(1, 320, 180), (0, 320, 121), (0, 320, 43), (1, 0, 0)])
def test_an_inset_flush_with_the_border_is_boxed_up_to_it(
    media: Media, pictures: tuple[NDArray[np.uint8], list[NDArray[np.uint8]]], k: int, x: int, y: int
) -> None:
    """Programme ``k`` as a quarter-frame inset at ``(x, y)`` of a 640 × 360 frame, touching one
    or two borders: the box reaches the border (until 2026-12-05 a box a pixel short of it, over
    the inset's own content, borrowed the border's credit and was taken, then cut a pixel more)."""
    programme = pictures[1][k]
    frames = []
    for h, p in zip(_frames(media.unrelated[2]), programme, strict=True):
        big = cv2.resize(h, (640, 360), interpolation=cv2.INTER_CUBIC)
        big[y : y + 180, x : x + 320] = cv2.resize(p, (320, 180), interpolation=cv2.INTER_AREA)
        frames.append(cv2.resize(big, (128, 128), interpolation=cv2.INTER_AREA))
    box = inset_box(np.stack(frames))
    inset = (x / 5, y / 2.8125, (x + 320) / 5, (y + 180) / 2.8125)  # in decoded pixels
    # each side on the inset's, or a blended line beyond it (left out or kept) away
    assert box is not None and max(abs(a - b) for a, b in zip(box, inset, strict=True)) <= 0.75, box


def test_nothing_is_taken_for_an_inset_in_a_plain_clip(
    pictures: tuple[NDArray[np.uint8], list[NDArray[np.uint8]]],
) -> None:
    host, programmes = pictures
    assert inset_box(host) is None and all(inset_box(p) is None for p in programmes)


@pytest.fixture(scope="module")
def alpha_library(tmp_path_factory: pytest.TempPathFactory, media: Media) -> Path:
    """A library holding one programme."""
    directory = tmp_path_factory.mktemp("inset-library") / "lib"
    with Library(directory) as lib:
        lib.register(media.programmes["alpha"], "alpha", {"owner": "county media center"})
    return directory


@pytest.mark.parametrize(("x", "y"), [(0.84, 0.16), (0.14, 0.52)])
def test_a_picture_in_picture_near_a_border_is_found(
    tmp_path: Path, media: Media, alpha_library: Path, x: float, y: float
) -> None:
    """A quarter-frame inset a few per cent from a border, picture only, is found and boxed
    (until 2026-12-05 its box ran on to the border and neither place was found)."""
    from datasets.attacks.video import apply

    clip = tmp_path / "pip.mp4"
    chain: list[Any] = [
        ("excerpt", {"start": 2.0, "length": 8.0}),
        ("pip", {"scale": 0.5, "x": x, "y": y}),
        ("audio", {"mode": "remove"}),
    ]
    apply(media.programmes["alpha"], clip, chain, seed=5, host=media.unrelated[2])
    with Library.open(alpha_library, readonly=True) as lib:
        (m, *_) = lib.identify(clip)
    e = m.evidence
    assert m.work_id == "alpha" and isinstance(e, VideoEvidence) and e.pip_box is not None
    x0, y0, x1, y1 = e.pip_box  # the inset: half the host's width and height, at (W - w) · x
    assert x0 == pytest.approx(x / 2, abs=0.02) and x1 == pytest.approx(x / 2 + 0.5, abs=0.02)
    assert y0 == pytest.approx(y / 2, abs=0.02) and y1 == pytest.approx(y / 2 + 0.5, abs=0.02)


def test_a_quarter_frame_inset_in_a_corner_is_boxed_exactly_and_placed(
    tmp_path_factory: pytest.TempPathFactory, media: Media
) -> None:
    """The demonstration's picture-in-picture case: the third programme as the top right quarter
    of an unrelated video, picture only. The inset lies on whole decoded pixels and its own
    last rows differ strongly; its box must keep them (a box a row short matched only through
    the full frame, placed 0.55 s off, until 2026-12-05)."""
    from datasets.attacks.video import apply

    directory = tmp_path_factory.mktemp("corner") / "lib"
    clip = directory.parent / "pip.mp4"
    chain: list[Any] = [
        ("excerpt", {"start": 1.0, "length": 6.0}),
        ("pip", {"scale": 0.5, "x": 1.0, "y": 0.0}),
        ("audio", {"mode": "remove"}),
    ]
    truth = apply(media.programmes["gamma"], clip, chain, seed=2, host=media.unrelated[1])
    with Library(directory) as lib:
        lib.register(media.programmes["gamma"], "gamma", {"owner": "county media center"})
        (m, *_) = lib.identify(clip)
    e = m.evidence
    assert m.work_id == "gamma" and isinstance(e, VideoEvidence)
    assert e.pip_box == (0.5, 0.0, 1.0, 0.5)
    start = truth.source_time(e.query_start)
    assert start is not None and abs(e.ref_start - start) <= 0.5


def _smooth(rng: np.random.Generator, n: int, side: int) -> NDArray[np.float64]:
    return np.stack([cv2.GaussianBlur(rng.random((side, side)) * 255, (0, 0), 3) for _ in range(n)])


@pytest.mark.parametrize("patch", [30.0, 45.0])
def test_an_inset_whose_corner_holds_a_stronger_box_is_boxed_whole(patch: float) -> None:
    """A lasting bright patch in the inset's top-right corner: the box of the patch (two of the
    inset's sides, two of the patch's) outscores the inset's own, but the inset's box holds
    it and grows past it at one end of each axis, so the inset is taken. Until 2026-12-06
    the patch was (a quarter-frame inset over a still photo panned slowly)."""
    rng = np.random.default_rng(5)
    host = _smooth(rng, 8, 128) * 3 - 256
    inset = _smooth(rng, 8, 64) * 3 - 256
    inset[:, :40, 24:] += patch
    host[:, 40:104, 30:94] = inset
    assert inset_box(host.clip(0, 255).astype(np.uint8)) == (30, 40, 94, 104)


@pytest.mark.parametrize(("band", "lift"), [(30, 20), (40, 40)])
def test_a_box_holding_the_inset_but_running_on_at_both_ends_is_not_taken(band: float, lift: float) -> None:
    """A box that holds the strongest box but runs past it at both ends of an axis lies over the
    host's content there (here dark bands of the host above and below the inset, whose far
    edges make a taller box nearly as strong): the strongest box stands."""
    rng = np.random.default_rng(5)
    host = _smooth(rng, 8, 128) * 3 - 256
    host[:, 40:104, 30:94] = _smooth(rng, 8, 64) * 3 - 256 + lift
    host[:, 30:40, 30:94] -= band
    host[:, 104:114, 30:94] -= band
    assert inset_box(host.clip(0, 255).astype(np.uint8)) == (30, 40, 94, 104)


def _with_inset(rng: np.random.Generator, n: int) -> NDArray[np.uint8]:
    host = _smooth(rng, n, 128) * 3 - 256
    host[:, 40:104, 30:94] = _smooth(rng, n, 64) * 3 - 256 + 40
    return host.clip(0, 255).astype(np.uint8)


def _plain(rng: np.random.Generator, n: int) -> NDArray[np.uint8]:
    return (_smooth(rng, n, 128) * 3 - 256).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("inset_first", [True, False])
def test_a_block_that_finds_no_inset_keeps_the_box_of_the_block_next_to_it(inset_first: bool) -> None:
    """An inset stays where it is: a 16-s block whose box is not found (its sides weak there)
    is hashed with the box of the block before it, or after it; until 2026-12-06 its inset
    frames were left out and a copy's span stopped at that block."""
    rng = np.random.default_rng(7)
    found, lost = _with_inset(rng, 12), _plain(rng, 12)
    assert inset_box(found) == (30, 40, 94, 104) and inset_box(lost) is None
    blocks = [found, lost] if inset_first else [lost, found]
    fp = fingerprint_blocks(blocks, 4.0, query=True)
    assert fp.inset_boxes is not None and fp.inset_valid is not None
    assert np.allclose(fp.inset_boxes * 128, [30, 40, 94, 104])  # every frame of both blocks
    assert fp.inset_valid.all()


def test_clips_without_an_inset_have_none_in_any_block() -> None:
    rng = np.random.default_rng(7)
    fp = fingerprint_blocks([_plain(rng, 12), _plain(rng, 12)], 4.0, query=True)
    assert fp.inset_boxes is not None and fp.inset_valid is not None
    assert np.isnan(fp.inset_boxes).all() and not fp.inset_valid.any()
