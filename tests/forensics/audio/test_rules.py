"""Decision-rule bookkeeping: candidates moved between windows and layers keep every field."""

from __future__ import annotations

import dataclasses

from forensics.audio.match import Candidate, Variant
from forensics.audio.rules import scaled, shift


def candidate() -> Candidate:
    return Candidate(
        work=2,
        votes=7,
        variant=Variant(1.02, 1.0),
        speed=1.02,
        query_start=10.0,
        query_end=40.0,
        ref_start=110.0,
        ref_end=140.6,
        residual=0.75,
        anchors=5,
    )


def test_shifted_candidate_keeps_its_anchors() -> None:
    c = candidate()
    moved = shift(c, 312.0)
    assert moved.anchors == 5
    assert (moved.query_start, moved.query_end) == (322.0, 352.0)
    # every other field as it was
    assert dataclasses.replace(moved, query_start=c.query_start, query_end=c.query_end) == c
    assert shift(c, 0.0) is c


def test_scaled_candidate_keeps_its_anchors() -> None:
    c = candidate()
    up = scaled(c, 4.0, work=9)
    assert up.anchors == 5 and up.work == 9 and up.votes == 7 and up.variant == c.variant
    assert (up.query_start, up.ref_end, up.residual) == (40.0, 562.4, 3.0)
