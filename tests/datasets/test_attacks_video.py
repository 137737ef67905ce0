"""Video attacks: bit-exact rendering, time maps, geometry, audio handling, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets.attacks import ChainSpec
from datasets.attacks.video import apply
from datasets.errors import AttackError
from datasets.manifest import Entry, Manifest
from datasets.media import video_frame
from datasets.tools import probe


@pytest.fixture(scope="module")
def clip(smoke: Manifest) -> Entry:
    """The smallest real clip of at least 4 s with sound (else any of at least 4 s)."""
    vids = [v for v in smoke.select(collection="video", assembled=False) if (v.duration or 0) >= 4]
    with_audio = [v for v in vids if v.sample_rate] or vids
    return min(with_audio, key=lambda v: (v.width or 0) * (v.height or 0) * (v.duration or 0))


def test_chain_is_bit_exact_with_time_map(tmp_path: Path, smoke: Manifest, clip: Entry) -> None:
    chain: ChainSpec = [
        ("excerpt", {"start": 0.5, "length": 2.0}),
        ("scale", {"factor": 0.5}),
        ("speed", {"factor": 1.25}),
        "logo",
    ]
    a = apply(smoke.path(clip), tmp_path / "a.mp4", chain, seed=3, source_id=clip.id)
    b = apply(smoke.path(clip), tmp_path / "b.mp4", chain, seed=3, source_id=clip.id)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert a.chain == b.chain and a.source_id == clip.id
    assert a.source_time(0.0) == pytest.approx(0.5)
    assert a.source_time(1.6) == pytest.approx(2.5, abs=1e-3)
    assert a.output["duration"] == pytest.approx(1.6, abs=0.15)
    assert (
        a.output["width"] == (clip.width or 0) // 4 * 2 or abs(a.output["width"] - (clip.width or 0) / 2) <= 2
    )


def test_geometry_and_audio_modes(tmp_path: Path, smoke: Manifest, clip: Entry) -> None:
    src = smoke.path(clip)
    base = [("excerpt", {"start": 0.0, "length": 1.0})]
    t = apply(src, tmp_path / "l.mp4", [*base, ("letterbox", {"fraction": 0.5})], seed=0)
    assert t.output["height"] >= int((clip.height or 0) * 1.5) - 2 and t.output["width"] == clip.width
    t = apply(src, tmp_path / "p.mp4", [*base, ("pillarbox", {"fraction": 0.5})], seed=0)
    assert t.output["width"] >= int((clip.width or 0) * 1.5) - 2
    t = apply(src, tmp_path / "f.mp4", [*base, ("fps", {"rate": 10})], seed=0)
    assert t.output["fps"] == pytest.approx(10, abs=0.1)
    t = apply(src, tmp_path / "m.mp4", [*base, ("audio", {"mode": "remove"})], seed=0)
    assert not probe(tmp_path / "m.mp4").has_audio
    music = smoke.path(smoke.select(collection="music")[0])
    t = apply(src, tmp_path / "r.mp4", [*base, ("audio", {"mode": "replace"})], seed=0, replacement=music)
    assert probe(tmp_path / "r.mp4").has_audio and t.chain[1]["params"]["replacement_id"] == str(music)


def test_picture_in_picture_takes_the_host_frame(tmp_path: Path, smoke: Manifest, clip: Entry) -> None:
    host = next(v for v in smoke.select(collection="video") if v.id != clip.id)
    t = apply(
        smoke.path(clip), tmp_path / "pip.mp4", [("excerpt", {"start": 0, "length": 1.0}), "pip"], seed=1,
        host=smoke.path(host),
    )  # fmt: skip
    assert (
        abs(t.output["width"] - (host.width or 0)) <= 1 and abs(t.output["height"] - (host.height or 0)) <= 1
    )


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        ("pip", "needs host"),
        ([("audio", {"mode": "replace"})], "needs replacement"),
        ("warp", "unknown video transform"),
        ([("reencode", {"codec": "libx264", "crf": 99})], "outside"),
        ([("crop", {"area": 2})], "outside"),
    ],
)
def test_bad_chains_are_refused(
    tmp_path: Path, smoke: Manifest, clip: Entry, chain: object, message: str
) -> None:
    with pytest.raises(AttackError, match=message):
        apply(smoke.path(clip), tmp_path / "x.mp4", chain, seed=0)  # type: ignore[arg-type]


def test_bad_paths(tmp_path: Path, smoke: Manifest, clip: Entry) -> None:
    with pytest.raises(AttackError, match="MP4"):
        apply(smoke.path(clip), tmp_path / "x.avi", "flip", seed=0)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(AttackError, match="cannot read video"):
        apply(junk, tmp_path / "y.mp4", "flip", seed=0)


def test_real_clip_seek_is_reproducible(tmp_path: Path, smoke: Manifest) -> None:
    """Seeking into the middle of a real H.264 GOP decodes the same frames every time."""
    real = max(smoke.select(collection="video", assembled=False), key=lambda v: v.duration or 0)
    mid = (real.duration or 0) / 2
    frames = {video_frame(smoke.path(real), mid).tobytes() for _ in range(3)}
    assert len(frames) == 1
    chain: ChainSpec = [("excerpt", {"start": mid, "length": 1.0}), ("scale", {"factor": 0.25})]
    apply(smoke.path(real), tmp_path / "a.mp4", chain, seed=0)
    apply(smoke.path(real), tmp_path / "b.mp4", chain, seed=0)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_broadcast_and_camcorder_transforms(tmp_path: Path, smoke: Manifest, clip: Entry) -> None:
    """color, camcorder, ticker and blank keep the timing; blank leaves one flat grey; bad values refused."""
    src = smoke.path(clip)
    base = [("excerpt", {"start": 0.5, "length": 1.5})]
    for op in ("color", "camcorder", "ticker"):
        t = apply(src, tmp_path / f"{op}.mp4", [*base, op], seed=4)
        assert t.source_time(1.0) == pytest.approx(1.5, abs=1e-3)
        assert set(t.chain[1]["params"]) and t.output["width"] == clip.width
    apply(src, tmp_path / "blank.mp4", [*base, ("blank", {"level": 16})], seed=0)
    frame = video_frame(tmp_path / "blank.mp4", 0.5).convert("L")
    assert frame.getextrema()[1] - frame.getextrema()[0] <= 4
    with pytest.raises(AttackError, match="warp"):
        apply(src, tmp_path / "x.mp4", [*base, ("camcorder", {"warp": 0.5})], seed=0)
    with pytest.raises(AttackError, match="text"):
        apply(src, tmp_path / "x.mp4", [*base, ("ticker", {"text": ""})], seed=0)
