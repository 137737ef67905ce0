"""Typed evidence: its JSON is a match's details, key for key, and a match keeps the two in step."""

from __future__ import annotations

import dataclasses
import json

import pytest

from forensics.evidence import AudioEvidence, ImageFeatureEvidence, ImageHashEvidence, points
from forensics.types import Match

AUDIO = AudioEvidence(
    1.5, 6.5, 31.5, 36.6, 1.02, 1.0, 0.016, 12, 40, 55, 3.1, 15.2, 4.4, 70, 160, 0.001, "main"
)


def test_audio_evidence_json_has_the_details_keys_in_order() -> None:
    assert list(AUDIO.to_json()) == [
        "query_start", "query_end", "ref_start", "ref_end", "speed", "pitch", "offset_accuracy", "votes",
        "verified_frames", "reference_frames", "chance_frames", "peak_significance", "spectral_evidence",
        "verified_peaks", "reference_peaks", "fpr_target", "layer",
    ]  # fmt: skip
    both = dataclasses.replace(AUDIO, layer="both", bass_significance=6.0, main_significance=9.5)
    assert list(both.to_json())[-3:] == ["layer", "bass_significance", "main_significance"]


def test_image_evidence_json_writes_lists_and_the_frame_only_when_known() -> None:
    region = points([[0, 0], [8.5, 0], [8.5, 6], [0, 6]])
    hashed = ImageHashEvidence(3, 24, "rot90", region, (9, 6), 4, 1e-4)
    assert hashed.to_json() == {
        "fpr_target": 1e-4, "path": "hash", "hamming": 3, "hash_threshold": 24, "transform": "rot90",
        "region": [[0, 0], [8.5, 0], [8.5, 6], [0, 6]], "query_size": [9, 6], "item": 4,
    }  # fmt: skip
    featured = ImageFeatureEvidence(40, 12, 30.0, 0.5, region, (9, 6), 4, 1e-4, query_frame=2)
    assert list(featured.to_json())[:3] == ["fpr_target", "path", "inliers"]
    assert featured.to_json()["query_frame"] == 2 and json.dumps(featured.to_json())
    assert "mirrored" not in featured.to_json()
    mirrored = dataclasses.replace(featured, mirrored=True)
    assert mirrored.to_json()["mirrored"] is True
    assert {k: v for k, v in mirrored.to_json().items() if k != "mirrored"} == featured.to_json()


def test_match_details_are_its_evidence_json() -> None:
    m = Match.of("song", 19.6, 13.4, AUDIO)
    assert m.kind == "audio" and m.details == AUDIO.to_json() and m.to_json()["details"] == AUDIO.to_json()
    assert Match("song", 19.6, "audio", 13.4, AUDIO.to_json(), AUDIO) == m
    with pytest.raises(ValueError, match="to_json"):
        Match("song", 19.6, "audio", 13.4, {"query_start": 0.0}, AUDIO)
    with pytest.raises(ValueError, match="cannot carry"):
        Match("song", 19.6, "image", 13.4, {}, AUDIO)
    assert Match("clip", 0.9, "video", 0.5, {"x": 1}).evidence is None  # indexes without typed evidence
