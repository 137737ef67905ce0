"""The image index: hashes, local features, identification under attacks, persistence, removal."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from forensics.image import features as feat
from forensics.image.binindex import GrowingBinaryIndex
from forensics.image.index import HASH_THRESHOLD, INLIER_THRESHOLD, ImageIndex
from forensics.image.phash import DIHEDRAL, content_box, dct_hash, dihedral_hashes, hamming
from tests.forensics.conftest import crop, jpeg, rotate, screenshot

REGISTERED = ("astronaut", "chelsea", "coffee", "rocket", "camera")
UNREGISTERED = ("horse", "moon", "coins", "immunohistochemistry")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, np.ndarray]) -> ImageIndex:
    idx = ImageIndex(tmp_path_factory.mktemp("img"))
    for name in REGISTERED:
        idx.add_array(name, photos[name])
    return idx


def test_hash_separates_unrelated_photos(photos: dict[str, np.ndarray]) -> None:
    hashes = {n: dct_hash(p) for n, p in photos.items()}
    for a, b in itertools.combinations(hashes, 2):
        assert hamming(hashes[a], hashes[b]) > HASH_THRESHOLD + 20, (a, b)


def test_hash_survives_photometric_attacks(photos: dict[str, np.ndarray]) -> None:
    img = photos["astronaut"]
    h = dct_hash(img)
    gray = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    attacked = {
        "jpeg10": jpeg(img, 10),
        "quarter": cv2.resize(img, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA),
        "blur": cv2.GaussianBlur(img, (0, 0), 3),
        "gray": gray,
        "bright": np.clip(img.astype(int) + 60, 0, 255).astype(np.uint8),
        "letterbox": cv2.copyMakeBorder(img, 80, 80, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0)),
        "aspect": cv2.resize(img, (614, 420)),
    }
    for name, a in attacked.items():
        assert hamming(dct_hash(a), h) <= HASH_THRESHOLD // 2, name


def test_every_dihedral_transform_is_undone(photos: dict[str, np.ndarray]) -> None:
    img = photos["coffee"]
    h = dct_hash(img)
    transforms = {
        "none": img,
        "flip_h": img[:, ::-1],
        "flip_v": img[::-1],
        "rot180": img[::-1, ::-1],
        "rot90": np.rot90(img, 1),
        "rot270": np.rot90(img, -1),
        "transpose": img.transpose(1, 0, 2),
        "anti_transpose": np.rot90(img, 2).transpose(1, 0, 2),
    }
    for name, t in transforms.items():
        assert hamming(dihedral_hashes(np.ascontiguousarray(t))[DIHEDRAL.index(name)], h) <= 4, name


def test_content_box_trims_uniform_padding() -> None:
    rng = np.random.default_rng(0)
    g = np.full((300, 400), 17, np.uint8)
    g[50:250, 30:370] = (rng.random((200, 340)) * 255).astype(np.uint8)
    x0, y0, x1, y1 = content_box(g)
    assert abs(x0 - 30) <= 2 and abs(y0 - 50) <= 2 and abs(x1 - 370) <= 2 and abs(y1 - 250) <= 2


def test_features_blob_round_trip_and_rejects_garbage(photos: dict[str, np.ndarray]) -> None:
    f = feat.extract(photos["chelsea"], feat.REFERENCE_FEATURES)
    assert 100 < len(f) <= feat.REFERENCE_FEATURES
    g = feat.LocalFeatures.from_bytes(f.to_bytes())
    assert np.array_equal(g.descriptors, f.descriptors) and np.allclose(g.points, f.points)
    with pytest.raises(ValueError):
        feat.LocalFeatures.from_bytes(f.to_bytes()[:-1])
    with pytest.raises(ValueError):
        feat.LocalFeatures.from_bytes(b"short")


def test_features_spread_over_the_image(photos: dict[str, np.ndarray]) -> None:
    f = feat.extract(photos["astronaut"], feat.REFERENCE_FEATURES)
    quadrants = {(int(x * 2 // f.width), int(y * 2 // f.height)) for x, y in f.points}
    assert quadrants == {(0, 0), (0, 1), (1, 0), (1, 1)}


@pytest.mark.parametrize("corner", ["tl", "tr", "bl", "br"])
def test_half_crop_keeps_evidence_well_above_threshold(photos: dict[str, np.ndarray], corner: str) -> None:
    # Any 50% crop keeps enough reference points for RANSAC to clear the inlier threshold
    # with a wide margin: at least 48 inliers on these photos (53-151 with 400 reference
    # points; 256 gave as few as 44, and a tenth of the benchmark's crops were then missed).
    for name in ("astronaut", "coffee", "rocket"):
        ref = feat.extract(photos[name], feat.REFERENCE_FEATURES)
        assert len(ref) == feat.REFERENCE_FEATURES
        part = crop(photos[name], 0.5, corner)
        v = feat.verify(feat.extract(part, feat.QUERY_FEATURES), ref)
        assert v is not None and v.inliers >= max(48, 2 * INLIER_THRESHOLD), (name, corner, v)
        assert abs(v.rotation_deg) < 2, (name, corner, v.rotation_deg)


def _top(index: ImageIndex, image: np.ndarray) -> str | None:
    matches = index.identify_array(image, 3)
    return matches[0].work_id if matches else None


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(lambda a: jpeg(a, 10), id="jpeg10"),
        pytest.param(lambda a: a[:, ::-1], id="flip"),
        pytest.param(lambda a: np.rot90(a), id="rot90"),
        pytest.param(lambda a: rotate(a, 23), id="rot23"),
        pytest.param(lambda a: crop(a, 0.5, "tl"), id="crop50-tl"),
        pytest.param(lambda a: crop(a, 0.5, "br"), id="crop50-br"),
        pytest.param(lambda a: screenshot(a, 0.4), id="screenshot40"),
        pytest.param(lambda a: screenshot(a, 0.4, rotate(a[::-1], 90)), id="collage40"),
        pytest.param(lambda a: jpeg(crop(rotate(a, -8), 0.6), 40), id="rot+crop+jpeg"),
    ],
)
def test_attacked_copies_are_identified(index: ImageIndex, photos: dict[str, np.ndarray], attack) -> None:  # type: ignore[no-untyped-def]
    for name in REGISTERED:
        assert _top(index, np.ascontiguousarray(attack(photos[name]))) == name, name


def test_unregistered_photos_return_nothing(index: ImageIndex, photos: dict[str, np.ndarray]) -> None:
    for name in UNREGISTERED:
        assert index.identify_array(photos[name], 5) == [], name
        assert index.identify_array(rotate(photos[name], 30), 5) == [], name


def test_match_details_locate_the_work(index: ImageIndex, photos: dict[str, np.ndarray]) -> None:
    img = photos["coffee"]  # 400 × 600
    shot = screenshot(img, 0.4, background=photos["moon"])
    (m,) = index.identify_array(shot, 1)
    assert m.details["path"] == "features" and m.details["inliers"] >= INLIER_THRESHOLD
    assert m.score >= m.threshold == 0.5 and m.details["fpr_target"] == 1e-4
    region = np.array(m.details["region"])
    H = shot.shape[0]
    expected = np.array([[5, H - 403], [605, H - 403], [605, H - 3], [5, H - 3]])
    assert np.abs(region - expected).max() < 15
    (r,) = index.identify_array(rotate(img, 40), 1)
    assert abs(r.details["rotation_deg"] - 40) < 3
    (h,) = index.identify_array(np.rot90(img), 1)
    assert h.details["path"] == "hash" and h.details["transform"] == "rot90"


def test_persistence_removal_and_concurrent_reader(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    writer = ImageIndex(tmp_path)
    writer.add_array("a", photos["astronaut"])
    reader = ImageIndex(tmp_path)  # a second handle, as another process would open
    assert _top(reader, photos["astronaut"]) == "a"
    writer.add_array("c", photos["chelsea"])
    assert _top(reader, crop(photos["chelsea"], 0.5)) == "c"  # sees the writer's later add
    assert writer.remove("a") is True and writer.remove("a") is False
    assert _top(reader, photos["astronaut"]) is None
    writer.close()
    reader.close()
    reopened = ImageIndex(tmp_path)
    assert reopened.stats()["works"] == 1
    assert _top(reopened, photos["chelsea"]) == "c" and _top(reopened, photos["astronaut"]) is None
    reopened.close()


def test_inverted_file_is_saved_and_replayed(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    names = list(photos)
    idx = ImageIndex(tmp_path, desc_ivf_min=1000, hash_ivf_min=4)
    for n in names[:6]:
        idx.add_array(n, photos[n])
    assert idx.stats()["descriptor_index"].startswith("ivf") and idx.stats()["hash_index"].startswith("ivf")
    idx.close()
    saved = list(tmp_path.glob("descriptors-*.ivf"))
    assert len(saved) == 1
    other = ImageIndex(tmp_path, desc_ivf_min=1000, hash_ivf_min=4)
    other.add_array(names[6], photos[names[6]])  # added after the file was written
    other.remove(names[0])
    other.close()  # saves the newer state, removes the older file
    again = ImageIndex(tmp_path, desc_ivf_min=1000, hash_ivf_min=4)
    assert len(list(tmp_path.glob("descriptors-*.ivf"))) == 1
    assert _top(again, rotate(photos[names[6]], 15)) == names[6]
    assert _top(again, rotate(photos[names[1]], 15)) == names[1]
    assert _top(again, photos[names[0]]) is None
    assert again.stats()["works"] == 6
    again.close()


def test_corrupt_saved_index_is_rebuilt(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    idx = ImageIndex(tmp_path, desc_ivf_min=500)
    for n in ("astronaut", "coffee", "chelsea"):
        idx.add_array(n, photos[n])
    idx.close()
    (saved,) = tmp_path.glob("descriptors-*.ivf")
    saved.write_bytes(b"garbage" * 10)
    again = ImageIndex(tmp_path, desc_ivf_min=500)
    assert _top(again, rotate(photos["coffee"], 20)) == "coffee"
    again.close()


def test_growing_index_switches_to_ivf_and_keeps_exact_hits() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    idx = GrowingBinaryIndex(ivf_min=3000, nprobe=8)
    idx.add(codes[:2000], np.arange(2000, dtype=np.int64))
    assert not idx.is_ivf
    idx.add(codes[2000:], np.arange(2000, 5000, dtype=np.int64))
    assert idx.is_ivf and idx.ntotal == 5000
    d, i = idx.search(codes[::500], 1)
    assert d[:, 0].tolist() == [0] * 10 and i[:, 0].tolist() == list(range(0, 5000, 500))
    assert idx.remove(np.array([0, 500], dtype=np.int64)) == 2
    _, i2 = idx.search(codes[:1], 1)
    assert i2[0, 0] != 0


def test_hash_neighbours_go_to_the_slow_path(index: ImageIndex, photos: dict[str, np.ndarray]) -> None:
    # A small rotation moves the hash past the threshold; the work must still be among the
    # nearest hashes handed to geometric verification, and then be found by it.
    query = rotate(photos["rocket"], 6)
    matches, nearest = index.hash_matches(query, 3)
    assert matches == []
    assert index.work_of_item(nearest[0]) == "rocket"
    assert len(nearest) == len(set(nearest)) <= 3
    found = index.feature_matches(query, 3, nearest)
    assert [m.work_id for m in found] == ["rocket"] and found[0].details["path"] == "features"


def _caption(rgb: np.ndarray) -> np.ndarray:
    """A short-video style caption: large yellow outlined text across the lower part."""
    out = np.ascontiguousarray(rgb).copy()
    h, w = out.shape[:2]
    scale = h / 160
    for text, y in (("BREAKING NEWS", 0.72), ("exclusive footage", 0.9)):
        org = (w // 20, int(h * y))
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_DUPLEX, scale, (0, 0, 0), max(2, int(scale * 6)))
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_DUPLEX, scale, (255, 230, 0), max(1, int(scale * 2)))
    return out


def _mirror(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, ::-1])


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(lambda a: rotate(_mirror(a), 3), id="mirror+rot3"),
        pytest.param(lambda a: rotate(_mirror(a), -3), id="mirror+rot-3"),
        pytest.param(lambda a: crop(_mirror(a), 0.5, "tl"), id="mirror+crop50"),
        pytest.param(lambda a: _caption(_mirror(a)), id="mirror+caption"),
        pytest.param(lambda a: jpeg(rotate(np.ascontiguousarray(a[::-1]), 4), 30), id="vflip+rot4+jpeg"),
    ],
)
def test_mirrored_and_edited_copies_are_identified(
    index: ImageIndex, photos: dict[str, np.ndarray], attack
) -> None:  # type: ignore[no-untyped-def]
    # A mirror alone is undone by the hash; combined with an edit that defeats the hash, the
    # local features must be matched on the mirrored query.
    for name in REGISTERED:
        assert _top(index, np.ascontiguousarray(attack(photos[name]))) == name, name


def test_mirrored_match_reports_the_mirror_rotation_and_region(
    index: ImageIndex, photos: dict[str, np.ndarray]
) -> None:
    img = photos["coffee"]  # 400 × 600
    (m,) = index.identify_array(rotate(_mirror(img), 3), 1)
    assert m.work_id == "coffee" and m.details["path"] == "features" and m.details["mirrored"] is True
    assert m.details["inliers"] >= INLIER_THRESHOLD and abs(m.details["rotation_deg"] - 3) < 1.5
    # The work's top-left corner lies at the query's top-right: a mirrored region.
    shot = screenshot(_mirror(img), 0.4, background=photos["moon"])
    (s,) = index.identify_array(shot, 1)
    assert s.work_id == "coffee" and s.details["mirrored"] is True
    H = shot.shape[0]
    expected = np.array([[605, H - 403], [5, H - 403], [5, H - 3], [605, H - 3]])
    assert np.abs(np.array(s.details["region"]) - expected).max() < 15
    # An unmirrored copy keeps the details it always had.
    (u,) = index.identify_array(rotate(img, 3), 1)
    assert u.details["path"] == "features" and "mirrored" not in u.details


def test_unregistered_photos_mirrored_and_edited_return_nothing(
    index: ImageIndex, photos: dict[str, np.ndarray]
) -> None:
    for name in UNREGISTERED:
        for query in (rotate(_mirror(photos[name]), 3), crop(_mirror(photos[name]), 0.5, "tl")):
            assert index.identify_array(query, 5) == [], name
