"""Decision-rule bookkeeping: candidates moved between windows and layers keep every field."""

from __future__ import annotations

import dataclasses

from forensics.audio.match import Candidate, Variant
from forensics.audio.rules import decide, scaled, shift
from forensics.evidence import AudioEvidence
from forensics.types import Match


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


def match(q0: float, q1: float, offset: float, score: float, layer: str, work: str = "song") -> Match:
    """A match of ``work`` heard at ``q0..q1`` of the query, ``offset`` seconds later in the work."""
    e = AudioEvidence(q0, q1, q0 + offset, q1 + offset, 1.0, 1.0, 0.016, 9, 30, 40, 2.5, score, 3.0,
                      20, 60, 1e-4, layer)  # fmt: skip
    return Match.of(work, score, 13.0, e)


def test_an_occurrence_is_reported_once_over_the_span_of_all_its_reports() -> None:
    # the joint rule clears its threshold by most but found one window; the main rule
    # extended the same occurrence over the whole query: one match, the joint rule's
    # score, the main rule's span (each end where the report that reached it put it)
    window = match(10.07, 18.3, 6.43, 167.0, "both")
    later = match(20.05, 28.76, 6.43, 152.0, "both")
    whole = match(0.05, 29.97, 6.42, 140.0, "main")
    got = decide([whole], [], [window, later], top_k=5)
    assert len(got) == 1
    m = got[0]
    assert m.score == 167.0 and m.details["layer"] == "both"
    e = m.evidence
    assert isinstance(e, AudioEvidence)
    assert (e.query_start, e.query_end) == (0.05, 29.97)
    assert (e.ref_start, e.ref_end) == (6.47, 36.39)
    assert m.details["query_start"] == 0.05 and m.details["ref_end"] == 36.39  # details follow


def test_other_occurrences_and_other_works_stay_apart() -> None:
    first = match(0.0, 10.0, 5.0, 150.0, "main")
    again = match(20.0, 30.0, 60.0, 140.0, "main")  # the same song heard again, elsewhere in it
    apart = match(13.0, 18.0, 5.0, 120.0, "main")  # same alignment, but 3 s after the first ends
    other = match(0.0, 10.0, 5.0, 130.0, "main", work="other")
    got = decide([first, again, apart, other], [], [], top_k=10)
    assert [(m.work_id, m.evidence.query_start) for m in got if m.evidence is not None] == [
        ("song", 0.0),
        ("song", 20.0),
        ("other", 0.0),
        ("song", 13.0),
    ]
    assert got[0].evidence is not None and got[0].evidence.query_end == 10.0  # not grown
