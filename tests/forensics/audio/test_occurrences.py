"""Long queries: every occurrence of a work is reported, each over its full length."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from forensics.audio.index import AudioIndex
from tests.forensics.audio.conftest import SR, synth_music

Clip = Callable[..., Path]
Songs = dict[str, NDArray[np.float32]]

UNREGISTERED = synth_music(999, 40.0)
"""Music none of the registered songs holds."""


def spans(m: object) -> tuple[float, float, float, float]:
    d = m.details  # type: ignore[attr-defined]
    return d["query_start"], d["query_end"], d["ref_start"], d["ref_end"]


def test_a_work_used_twice_is_reported_twice_at_full_length(
    shared_index: AudioIndex, songs: Songs, clip: Clip
) -> None:
    a = songs["song-0"]
    x = np.concatenate(
        [a[: SR * 10], UNREGISTERED[: SR * 10], a[SR * 30 : SR * 40], UNREGISTERED[SR * 10 : SR * 20]]
    )
    found = shared_index.identify(clip(x), top_k=5)
    assert [m.work_id for m in found] == ["song-0", "song-0"]
    assert found[0].score >= found[1].score
    by_place = sorted(spans(m) for m in found)
    (q0, q1, r0, r1), (s0, s1, t0, t1) = by_place
    assert abs(q0 - 0) <= 0.5 and abs(q1 - 10) <= 0.5
    assert abs(r0 - 0) <= 0.5 and abs(r1 - 10) <= 0.5
    assert abs(s0 - 20) <= 0.5 and abs(s1 - 30) <= 0.5
    assert abs(t0 - 30) <= 0.5 and abs(t1 - 40) <= 0.5


def test_an_excerpt_is_reported_over_its_whole_length(
    shared_index: AudioIndex, songs: Songs, clip: Clip
) -> None:
    x = songs["song-1"][SR * 12 : SR * 32]
    (m,) = shared_index.identify(clip(x), top_k=5)
    q0, q1, r0, r1 = spans(m)
    assert m.work_id == "song-1"
    assert q1 - q0 >= 19.0
    assert abs((r0 - q0) - 12.0) <= 0.1 and abs((r1 - q1) - 12.0) <= 0.1


def test_unrelated_long_query_has_no_occurrence(shared_index: AudioIndex, clip: Clip) -> None:
    assert shared_index.identify(clip(UNREGISTERED), top_k=5) == []


def test_occurrences_are_ranked_deterministically(shared_index: AudioIndex, songs: Songs, clip: Clip) -> None:
    a = songs["song-2"]
    x = np.concatenate([a[SR * 5 : SR * 15], UNREGISTERED[: SR * 8], a[SR * 5 : SR * 15]])
    q = clip(x)
    first = shared_index.identify(q, top_k=5)
    assert [m.work_id for m in first] == ["song-2", "song-2"]  # one alignment, heard twice
    assert [spans(m) for m in shared_index.identify(q, top_k=5)] == [spans(m) for m in first]
    assert [spans(m) for m in shared_index.identify(q, top_k=1)] == [spans(first[0])]
