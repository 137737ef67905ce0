"""Image copy detection under attack: ours against imagehash pHash (256-bit) and PDQ.

Run::

    .venv/bin/python bench/image_robustness.py            # full run (≈ 30 min on 2 cores)
    .venv/bin/python bench/image_robustness.py --quick    # 40 originals, 600 distractors, no 100k sweep

Corpus: the originals are the image corpus's ``original`` entries (build it with
``datasets.corpus.build("images")``). Unrelated images come from the corpus's
``distractor`` entries plus the Debian packages in ``EXTRA_PACKAGES``, fetched with
``apt-get download`` and unpacked (not installed) under ``~/.cache/rongxin/bench-image``.
Every source package has one role (see the comment above ``QUERY_PACKAGES``): a library
package only gives registered distractors; a query package only gives calibration and
held-out queries, each file assigned by a hash of its path. A package that holds an
original is library-only. Before anything is measured, a fixed data-cleaning rule drops
near-duplicates (PDQ ≤ 31 bits or our DCT hash ≤ 16 bits, under any flip or rotation by
90°) of the originals from every set and of every library image from the query sets; the
script prints what came from where and what was dropped.
Thresholds of all three methods are chosen on the calibration queries against the
library, so that no calibration pair matches (``--allowed-pairs``); the false-positive
rates printed are measured on the held-out queries, which were never used to choose
anything. ``--shipped`` measures ours at the shipped thresholds instead.

Every attacked query is made by ``datasets.attacks.image.apply`` with a seed derived from
the family and the original, so a run is reproducible.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pdqhash  # type: ignore[import-untyped]
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets.attacks.image import apply as attack
from datasets.manifest import MANIFEST_NAME, Manifest, parse_lines
from datasets.paths import corpus_dir, downloads_dir
from forensics.errors import ForensicsError
from forensics.image import features as feat
from forensics.image.decode import load_image
from forensics.image.index import FPR_TARGET, HASH_THRESHOLD, INLIER_THRESHOLD, ImageFingerprint, ImageIndex
from forensics.image.phash import dct_hash, dihedral_hashes

EXTRA_PACKAGES = (
    # query packages (see QUERY_PACKAGES)
    "tuxpaint-stamps-default",
    "stellarium-data",
    # library-only
    "wesnoth-1.16-data",
    "hedgewars-data",
    "visp-images-data",
    "gimp-help-en",
    "marble-data",
    "kanagram",
    "khangman",
    "desktop-base",
    "plasma-workspace-wallpapers",
    "gnome-backgrounds",
    "ukui-wallpapers",
    "sway-backgrounds",
)
SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".pgm", ".ppm", ".bmp"}
MIN_SIDE = 80
# Thresholds are set so that *no* calibration pair matches (``--allowed-pairs 0``): an
# unregistered image should return nothing, and a per-pair rate (FPR_TARGET / 10 allowed
# 16 of 1.6M pairs) still let 18 of 470 held-out unrelated images match something.


def U(lo: float, hi: float) -> Callable[[random.Random], float]:
    return lambda r: round(r.uniform(lo, hi), 3)


# family -> list of (op, {param: value or sampler}); unspecified parameters use the datasets samplers.
FAMILIES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "jpeg q10-30": [("jpeg", {"quality": lambda r: r.randint(10, 30)})],
    "resize 0.25-4x": [("resize", {"scale": lambda r: round(2 ** r.uniform(-2, 2), 3)})],
    "crop 50% any position": [("crop", {"area": 0.5, "x": U(0, 1), "y": U(0, 1)})],
    "rotate any angle": [("rotate", {"angle": U(-180, 180), "crop_to_fit": False})],
    "rotate small ±1-5°": [
        ("rotate", {"angle": lambda r: r.choice([-1, 1]) * r.uniform(1, 5), "crop_to_fit": False})
    ],
    "rotate 90/180/270": [("rotate", {"angle": lambda r: r.choice([90, 180, 270]), "crop_to_fit": False})],
    "flip": [("flip", {})],
    "aspect ±20%": [("aspect", {"ratio": U(0.8, 1.2)})],
    "pad/letterbox": [("pad", {})],
    "border": [("border", {})],
    "brightness": [("brightness", {})],
    "contrast": [("contrast", {})],
    "gamma": [("gamma", {})],
    "saturation": [("saturation", {})],
    "grayscale": [("grayscale", {})],
    "blur": [("blur", {})],
    "sharpen": [("sharpen", {})],
    "noise": [("noise", {})],
    "text overlay": [("text", {})],
    "logo overlay": [("logo", {"scale": U(0.2, 0.6)})],
    "screenshot ≥40%": [("embed", {"mode": "screenshot", "scale": U(0.64, 0.9)})],
    "collage ≥40%": [("embed", {"mode": "collage", "scale": U(0.64, 0.9)})],
}
# A mirror combined with another edit (flipped re-uploads are common on short-video
# platforms): each is a family of its own, seeded like the others, and none of them takes
# part in the chains of two below (which keep drawing from the families above).
_MIRROR = ("flip", {"axis": "h"})
MIRROR_FAMILIES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "mirror + rotate small ±1-5°": [_MIRROR, *FAMILIES["rotate small ±1-5°"]],
    "mirror + crop 50%": [_MIRROR, *FAMILIES["crop 50% any position"]],
    "mirror + text overlay": [_MIRROR, *FAMILIES["text overlay"]],
    "mirror + jpeg q10-30": [_MIRROR, *FAMILIES["jpeg q10-30"]],
}
# Chains of two: any two families, except two that both shrink the visible share of the work
# (a 50% crop inside a 40% screenshot is a 20% copy, outside the stated range).
_SHRINKING = {"crop 50% any position", "screenshot ≥40%", "collage ≥40%", "pad/letterbox"}


def chain_for(family: str, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """The concrete attack chain (sampled parameters) of one query."""
    if family == "chain of two":
        names = [f for f in FAMILIES]
        while True:
            a, b = rng.sample(names, 2)
            if not (a in _SHRINKING and b in _SHRINKING):
                break
        steps = FAMILIES[a] + FAMILIES[b]
    else:
        steps = FAMILIES[family] if family in FAMILIES else MIRROR_FAMILIES[family]
    return [(op, {k: (v(rng) if callable(v) else v) for k, v in params.items()}) for op, params in steps]


# ---------------------------------------------------------------------------------------------
# corpus


def _fetch_packages(cache: Path) -> list[Path]:
    roots = []
    for pkg in EXTRA_PACKAGES:
        root = cache / "unpacked" / pkg
        if not root.exists():
            debs = sorted(downloads_dir().glob(f"{pkg}_*.deb")) + sorted(
                (cache / "debs").glob(f"{pkg}_*.deb")
            )
            if not debs:
                (cache / "debs").mkdir(parents=True, exist_ok=True)
                subprocess.run(
                    ["apt-get", "download", pkg], cwd=cache / "debs", check=True, capture_output=True
                )
                debs = sorted((cache / "debs").glob(f"{pkg}_*.deb"))
            tmp = root.with_name(root.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], check=True)
            tmp.rename(root)
        roots.append(root)
    return roots


def _usable(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            return min(im.size) >= MIN_SIDE
    except (OSError, ValueError, SyntaxError):
        return False


# Unrelated images are assigned to splits so that no "unrelated" query can show content that
# is registered (an original or a library distractor):
# - every source package has one role. A *library* package gives all its images to the
#   library; a *query* package gives its images only to the calibration and held-out sets,
#   so content a query package shares with itself (a wallpaper in twelve resolutions, the
#   same constellation drawing in two sky cultures) is never registered. One exception,
#   kept from the earlier scene-group rule: Tux Paint's letter stamps (``/alphabets/``) are
#   library distractors while its other stamps are queries (letters and objects are
#   different drawings, but in the same outlined clip-art style);
# - query packages are the few sources of many distinct pictures that no library source
#   shows: Stellarium's deep-sky photographs, sky-culture drawings and landscapes, Tux
#   Paint's stamps, and the corpus's distractors from Kivy's examples and imageio; a
#   package that holds an original is never a query package, whatever the list says;
# - everything else is library-only: game art (Wesnoth's portraits reuse each other's
#   drawings), ViSP's and pymecavideo's image sequences (the same scenes and lab table
#   seen many times; so grouped by whole package, like every source), documentation
#   screenshots (GIMP, KDE: the same desktop and widgets in every picture, the same
#   screenshot in ten languages) and wallpapers (they appear as desktop backgrounds in
#   those screenshots);
# - inside a query package each file is assigned on its own (by a hash of its path):
#   sharing between calibration and held-out queries never counts as a false positive.
# Then a data-cleaning rule, fixed before any measurement: a query image is dropped when it
# is a near-duplicate of an original, a library image or a query kept before it (PDQ ≤ 31
# bits, PDQ's own match threshold, or our DCT hash ≤ 16 bits, half the decision threshold,
# each under any of the eight flips/rotations); a library image when it is one of an
# original. The counts dropped are printed.
QUERY_PACKAGES = ("tuxpaint-stamps-default", "stellarium-data", "python-kivy-examples", "python3-imageio")
_LIBRARY_ONLY = ("/alphabets/",)
_FRAME_PREFIX = re.compile(r"^frame at [0-9.]+% of ")
PDQ_NEAR_DUPLICATE = 31
OURS_NEAR_DUPLICATE = HASH_THRESHOLD // 2
CALIBRATION_SHARE = 40  # percent of a query package's files; the rest is held out
SPLITS_VERSION = 4


def split_of(package: str, original_path: str, query_packages: set[str]) -> str:
    """``"library"``, ``"calibration"`` or ``"heldout"`` for one unrelated image.

    Examples
    --------
    >>> split_of("wesnoth-1.16-data", "/a/b.png", {"stellarium-data"})
    'library'
    >>> split_of("tuxpaint-stamps-default", "/x/alphabets/a.png", {"tuxpaint-stamps-default"})
    'library'
    >>> split_of("stellarium-data", "/n/m42.png", {"stellarium-data"}) in ("calibration", "heldout")
    True
    """
    if package not in query_packages or any(t in original_path for t in _LIBRARY_ONLY):
        return "library"
    key = f"{package}:{_FRAME_PREFIX.sub('', original_path)}"
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") % 100
    return "calibration" if h < CALIBRATION_SHARE else "heldout"


def _manifest(corpus: Path) -> Manifest:
    """The corpus manifest; while a build is still running, the entries it has finished."""
    if (corpus / MANIFEST_NAME).exists():
        return Manifest.open(corpus)
    entries: dict[str, str] = {}
    for state in sorted((corpus / ".state").glob("*.jsonl")):
        if state.name.endswith(".rejects.jsonl"):
            continue
        for line in state.read_text().splitlines():
            record = json.loads(line)
            if "entry" in record:
                entries.setdefault(record["entry"]["id"], json.dumps(record["entry"]))
    return Manifest(corpus, parse_lines(list(entries.values())))


class _HashSet:
    """Packed 256-bit hashes in a growing array, for near-duplicate checks."""

    def __init__(self) -> None:
        self.rows = np.zeros((1024, 32), np.uint8)
        self.n = 0

    def add(self, packed: np.ndarray) -> None:
        if self.n == len(self.rows):
            self.rows = np.concatenate([self.rows, np.zeros_like(self.rows)])
        self.rows[self.n] = packed
        self.n += 1

    def near(self, variants: np.ndarray, limit: int) -> bool:
        """Whether any of ``variants`` (packed, one per row) is within ``limit`` bits of a row."""
        if self.n == 0:
            return False
        xor = self.rows[None, : self.n, :] ^ variants[:, None, :]
        return int(np.bitwise_count(xor).sum(axis=2).min()) <= limit


def gather(corpus: Path, cache: Path) -> tuple[list[Path], dict[str, list[Path]], dict[str, Any]]:
    """Originals, the three disjoint unrelated sets (see the comment above), and what was dropped.

    The result is cached next to the unpacked packages.
    """
    key = f"{corpus}|v{SPLITS_VERSION}"
    listing = cache / f"splits-{hashlib.blake2b(key.encode(), digest_size=6).hexdigest()}.json"
    if listing.exists():
        saved = json.loads(listing.read_text())
        return (
            [Path(p) for p in saved["originals"]],
            {k: [Path(p) for p in v] for k, v in saved["splits"].items()},
            saved["report"],
        )
    manifest = _manifest(corpus)
    images = [e for e in manifest.entries if e.kind == "image"]
    originals = sorted(corpus / e.path for e in images if e.role == "original")
    original_packages = {e.package for e in images if e.role == "original"}
    query_packages = set(QUERY_PACKAGES) - original_packages
    pool: list[tuple[str, str, Path]] = [
        (e.package, e.original_path, corpus / e.path) for e in images if e.role == "distractor"
    ]
    for root in _fetch_packages(cache):
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in SUFFIXES and p.is_file():
                pool.append((root.name, "/" + str(p.relative_to(root)), p))
    hashes = {name: {"originals": _HashSet(), "kept": _HashSet()} for name in ("pdq", "ours")}
    for p in originals:
        rgb = load_image(p)
        hashes["pdq"]["originals"].add(np.packbits(pdq256(rgb)))
        hashes["ours"]["originals"].add(dct_hash(rgb))
    splits: dict[str, list[Path]] = {"library": [], "calibration": [], "heldout": []}
    sources: dict[str, dict[str, int]] = {}
    package_of: dict[str, str] = {}
    dropped: dict[str, dict[str, int]] = {s: {"pdq": 0, "ours": 0, "unreadable": 0} for s in splits}
    limits = {"pdq": PDQ_NEAR_DUPLICATE, "ours": OURS_NEAR_DUPLICATE}
    # Library distractors first (they need only differ from the originals), then the queries
    # (which must differ from the originals, every library image and each other).
    assigned = [(split_of(pkg, orig, query_packages), pkg, p) for pkg, orig, p in pool]
    assigned.sort(key=lambda t: t[0] != "library")
    for split, package, p in assigned:
        if not _usable(p):
            continue
        try:
            rgb = load_image(p)
        except ForensicsError:
            dropped[split]["unreadable"] += 1
            continue
        pdq_v = [_bits(v) for v in pdqhash.compute_dihedral(np.ascontiguousarray(rgb))[0]]
        variants = {"pdq": np.packbits(np.stack(pdq_v), axis=1), "ours": dihedral_hashes(rgb)}
        scope = ("originals",) if split == "library" else ("originals", "kept")
        near = [
            name
            for name in ("pdq", "ours")
            if any(hashes[name][s].near(variants[name], limits[name]) for s in scope)
        ]
        if near:
            dropped[split][near[0]] += 1
            continue
        for name in ("pdq", "ours"):
            hashes[name]["kept"].add(variants[name][0])
        splits[split].append(p)
        counts = sources.setdefault(package, {s: 0 for s in splits})
        counts[split] += 1
        package_of[str(p)] = package
    report = {
        "sources": sources,
        "dropped": dropped,
        "query_packages": sorted(query_packages),
        "package_of": package_of,
    }
    listing.write_text(
        json.dumps(
            {
                "originals": [str(p) for p in originals],
                "splits": {k: [str(p) for p in v] for k, v in splits.items()},
                "report": report,
            }
        )
    )
    return originals, splits, report


# ---------------------------------------------------------------------------------------------
# baselines


def _bits(h: Any) -> np.ndarray:
    bits: np.ndarray = np.asarray(h, dtype=bool).ravel()
    return bits


def phash256(rgb: np.ndarray) -> np.ndarray:
    return _bits(imagehash.phash(Image.fromarray(rgb), hash_size=16).hash)


def pdq256(rgb: np.ndarray) -> np.ndarray:
    vector, _quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return _bits(vector)


class HashBaseline:
    """Exhaustive Hamming search over one 256-bit hash per registered image."""

    def __init__(self, name: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        self.name, self.fn = name, fn
        self.bits: list[np.ndarray] = []
        self.threshold = -1
        self._matrix: np.ndarray | None = None

    def add(self, rgb: np.ndarray) -> None:
        self.bits.append(self.fn(rgb))

    def distances(self, rgb: np.ndarray) -> np.ndarray:
        if self._matrix is None:
            self._matrix = np.stack(self.bits)
        counts: np.ndarray = (self._matrix != self.fn(rgb)[None, :]).sum(axis=1)
        return counts


def threshold_low(hist: np.ndarray, allowed: float) -> int:
    """Largest t with #pairs at distance ≤ t at most ``allowed``."""
    cum = np.cumsum(hist)
    ok = np.nonzero(cum <= allowed)[0]
    return int(ok[-1]) if len(ok) else -1


def threshold_high(counts: np.ndarray, allowed: float) -> int:
    """Smallest t with #pairs at value ≥ t at most ``allowed``."""
    tail = np.cumsum(counts[::-1])[::-1]
    ok = np.nonzero(tail <= allowed)[0]
    return int(ok[0]) if len(ok) else len(counts)


# ---------------------------------------------------------------------------------------------


def dedupe_originals(originals: list[Path], limit: int, directory: Path) -> list[Path]:
    """The first ``limit`` originals that are not copies of one kept before them.

    The corpus's originals include sets that are copies of each other (dlib's jittered face
    chips of one photo): a query made from one would rightly match another, so only the
    first of each set is kept. "Copy" is decided with fixed, conservative thresholds (hash
    ≤ 32 bits or ≥ 20 inliers), before and independently of the calibration.
    """
    dedupe = ImageIndex(directory, hash_threshold=32, inlier_threshold=20)
    kept: list[Path] = []
    for p in originals:
        if len(kept) == limit:
            break
        try:
            rgb = load_image(p)
        except ForensicsError:
            continue
        found = dedupe.identify_array(rgb, 1)
        if found:
            print(f"  original {p.name} left out: a copy of {found[0].work_id}")
            continue
        dedupe.add_array(p.name, rgb)
        kept.append(p)
    dedupe.close()
    return kept


def print_sources(report: dict[str, Any], splits: dict[str, list[Path]]) -> None:
    """Where the unrelated images come from (before the per-split limits), what was dropped, and
    how many of each source the run uses."""
    used = {name: {str(p) for p in paths} for name, paths in splits.items()}
    print("query packages:", ", ".join(report["query_packages"]))
    print(
        "| source | library (pool) | calibration (pool) | held-out (pool) "
        "| used: library / calibration / held-out |"
    )
    print("|---|---|---|---|---|")
    for package, counts in sorted(report["sources"].items()):
        in_use = [
            sum(1 for q in used[name] if report["package_of"][q] == package)
            for name in ("library", "calibration", "heldout")
        ]
        print(
            f"| {package} | {counts['library']} | {counts['calibration']} | {counts['heldout']} | "
            + " / ".join(str(n) for n in in_use)
            + " |"
        )
    for name, d in report["dropped"].items():
        print(
            f"dropped from {name}: {d['pdq']} PDQ near-duplicates (≤ {PDQ_NEAR_DUPLICATE} bits), "
            f"{d['ours']} DCT-hash near-duplicates (≤ {OURS_NEAR_DUPLICATE} bits), "
            f"{d['unreadable']} unreadable"
        )


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=corpus_dir("full"))
    ap.add_argument("--originals", type=int, default=200)
    ap.add_argument("--distractors", type=int, default=5000)
    ap.add_argument("--heldout", type=int, default=1000)
    ap.add_argument("--calibration", type=int, default=1000)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--sweep-queries", type=int, default=300)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--sweep-only", action="store_true", help="register, then only the size sweep (shipped thresholds)"
    )
    ap.add_argument(
        "--shipped",
        action="store_true",
        help="measure ours at the shipped thresholds (HASH_THRESHOLD, INLIER_THRESHOLD), not calibrated ones",
    )
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument(
        "--allowed-pairs", type=float, default=0.0, help="calibration pairs allowed above threshold"
    )
    args = ap.parse_args()
    if args.quick:
        args.originals, args.distractors, args.heldout, args.calibration = 40, 600, 200, 200
        args.sizes, args.sweep_queries = "1000", 100
    return args


def select_images(
    args: argparse.Namespace, cache: Path, work: Path
) -> tuple[list[Path], dict[str, list[Path]]]:
    """The originals and the library, calibration and held-out sets of this run (seeded)."""
    rng = random.Random(args.seed)
    originals, splits, report = gather(args.corpus, cache)
    rng.shuffle(originals)
    originals = dedupe_originals(originals, args.originals, work / "dedupe")
    for name, limit in (
        ("library", args.distractors),
        ("calibration", args.calibration),
        ("heldout", args.heldout),
    ):
        random.Random(f"{args.seed}-{name}").shuffle(splits[name])
        splits[name] = splits[name][:limit]
    print(
        f"corpus: {len(originals)} originals, {len(splits['library'])} library distractors, "
        f"{len(splits['calibration'])} calibration and {len(splits['heldout'])} held-out unrelated images"
    )
    print_sources(report, splits)
    return originals, splits


@dataclass
class Registered:
    """The library of one run: our index, the two baselines, and what was registered."""

    index: ImageIndex
    baselines: list[HashBaseline]
    ids: list[str] = field(default_factory=list)
    registered_path: dict[str, Path] = field(default_factory=dict)
    fingerprints: list[ImageFingerprint] = field(default_factory=list)
    original_rgb: dict[str, np.ndarray] = field(default_factory=dict)
    rate: float = 0.0

    @property
    def n_lib(self) -> int:
        return len(self.ids)


def register_all(originals: list[Path], library: list[Path], directory: Path) -> Registered:
    """Register the originals and the library distractors in ours and in both baselines."""
    reg = Registered(
        ImageIndex(directory),
        [HashBaseline("pHash-256 (imagehash)", phash256), HashBaseline("PDQ (pdqhash)", pdq256)],
    )
    t_ours = 0.0
    batch: list[tuple[str, list[ImageFingerprint]]] = []
    for i, path in enumerate(originals + library):
        try:
            rgb = load_image(path)
        except ForensicsError as exc:
            print(f"  skipped {path.name}: {exc}")
            continue
        t0 = time.perf_counter()
        fp = ImageFingerprint.of(rgb)
        batch.append((f"w{i}", [fp]))
        if len(batch) >= 500:
            reg.index.add_many(batch)
            batch = []
        t_ours += time.perf_counter() - t0
        reg.ids.append(f"w{i}")
        reg.registered_path[f"w{i}"] = path
        reg.fingerprints.append(fp)
        for b in reg.baselines:
            b.add(rgb)
        if i < len(originals):
            reg.original_rgb[f"w{i}"] = rgb
    t0 = time.perf_counter()
    reg.index.add_many(batch)
    t_ours += time.perf_counter() - t0
    reg.rate = reg.n_lib / t_ours
    print(
        f"registered {reg.n_lib} images: {reg.rate:.1f} images/s (decode excluded), index {reg.index.stats()}"
    )
    return reg


def unrelated_scores(reg: Registered, paths: list[Path]) -> dict[str, Any]:
    """Histograms of every unrelated (query, work) pair: hash distances, inliers, baselines."""
    index = reg.index
    lib_bits = np.unpackbits(np.stack([f.hash for f in reg.fingerprints]), axis=1).astype(bool)
    ours_hist = np.zeros(257, np.int64)
    inlier_counts = np.zeros(1025, np.int64)
    base_hist = {b.name: np.zeros(257, np.int64) for b in reg.baselines}
    saved = index.hash_threshold, index.inlier_threshold
    index.hash_threshold, index.inlier_threshold = -1, 1  # hash path off, report every verification
    n = 0
    for p in paths:
        try:
            rgb = load_image(p)
        except ForensicsError:
            continue
        n += 1
        q = np.unpackbits(dihedral_hashes(rgb), axis=1).astype(bool)
        d = np.min([(lib_bits != v[None, :]).sum(axis=1) for v in q], axis=0)
        ours_hist += np.bincount(d, minlength=257)
        # The slow path also verifies the query's mirror image when the query matches
        # nothing; with every verification reported here, the mirror is queried explicitly
        # and each (query, work) pair counts its better orientation.
        best: dict[str, int] = {}
        for q_img in (rgb, np.ascontiguousarray(rgb[:, ::-1])):
            for m in index.identify_array(q_img, feat.QUERY_FEATURES):
                best[m.work_id] = max(best.get(m.work_id, 0), m.details["inliers"])
        for work_id, inliers in best.items():
            inlier_counts[min(1024, inliers)] += 1
            if inliers >= 12:
                print(f"  calibration pair with {inliers} inliers: {p} ~ {work_id}")
        for b in reg.baselines:
            base_hist[b.name] += np.bincount(b.distances(rgb), minlength=257)
    index.hash_threshold, index.inlier_threshold = saved
    return {"n": n, "ours_hist": ours_hist, "inliers": inlier_counts, "base": base_hist}


@dataclass
class Calibration:
    """Thresholds chosen on the calibration queries (never the held-out set)."""

    scores: dict[str, Any]
    pairs: int
    allowed: float
    hash_t: int
    inlier_t: int


def calibrate(reg: Registered, paths: list[Path], args: argparse.Namespace) -> Calibration:
    """Set every method's threshold so that at most ``--allowed-pairs`` calibration pairs match."""
    t0 = time.perf_counter()
    cal = unrelated_scores(reg, paths)
    pairs = cal["n"] * reg.n_lib
    allowed = min(args.allowed_pairs, FPR_TARGET / 10 * pairs)
    hash_t = threshold_low(cal["ours_hist"], allowed)
    inlier_t = max(threshold_high(cal["inliers"], allowed), 8)
    for b in reg.baselines:
        b.threshold = threshold_low(cal["base"][b.name], allowed)
    closest = int(np.nonzero(cal["ours_hist"])[0][0])
    most = int(np.nonzero(cal["inliers"])[0][-1]) if cal["inliers"].any() else 0
    print(
        f"calibration on {cal['n']} unrelated images × {reg.n_lib} works = {pairs:,} pairs "
        f"(≤ {allowed:.0f} pairs allowed, {time.perf_counter() - t0:.0f} s): ours hash ≤ {hash_t} bits, "
        f"inliers ≥ {inlier_t}; closest unrelated hash distance {closest}, "
        f"most unrelated inliers {most}; " + ", ".join(f"{b.name} ≤ {b.threshold}" for b in reg.baselines)
    )
    print(
        "calibration pairs at the shipped thresholds: "
        f"{int(cal['ours_hist'][: HASH_THRESHOLD + 1].sum())} within {HASH_THRESHOLD} bits "
        f"(per distance from {closest}: "
        f"{cal['ours_hist'][closest : HASH_THRESHOLD + 1].tolist()}), "
        f"{int(cal['inliers'][INLIER_THRESHOLD:].sum())} with ≥ {INLIER_THRESHOLD} inliers"
    )
    if args.shipped:
        hash_t, inlier_t = HASH_THRESHOLD, INLIER_THRESHOLD
        print(f"--shipped: ours measured at the shipped {hash_t} bits / {inlier_t} inliers instead")
    reg.index.hash_threshold, reg.index.inlier_threshold = hash_t, inlier_t
    return Calibration(cal, pairs, allowed, hash_t, inlier_t)


FamilyRow = tuple[str, int, float, float, float, str]


def attacked_queries(
    reg: Registered, families: list[str], seed: int, latencies: list[float]
) -> tuple[list[FamilyRow], dict[str, list[str]]]:
    """True-positive rate of each method on every family's attacked copies of the originals."""
    rows: list[FamilyRow] = []
    misses: dict[str, list[str]] = {}
    for family in families:
        hits = {"ours": 0, **{b.name: 0 for b in reg.baselines}}
        n = 0
        for k, (wid, rgb) in enumerate(reg.original_rgb.items()):
            r = random.Random(f"{seed}|{family}|{k}")
            chain = chain_for(family, r)
            img, _truth = attack(rgb, chain, seed=r.randrange(2**31))
            q = np.asarray(img.convert("RGB"))
            n += 1
            t0 = time.perf_counter()
            matches = reg.index.identify_array(q, 5)
            latencies.append(time.perf_counter() - t0)
            if matches and matches[0].work_id == wid:
                hits["ours"] += 1
            else:
                misses.setdefault(family, []).append(f"{wid}:{[s[0] for s in chain]}")
            target = reg.ids.index(wid)
            for b in reg.baselines:
                d = b.distances(q)
                if d[target] <= b.threshold and d[target] == d.min():
                    hits[b.name] += 1
        ours_tpr = hits["ours"] / n
        rows.append(
            (
                family,
                n,
                ours_tpr,
                hits[reg.baselines[0].name] / n,
                hits[reg.baselines[1].name] / n,
                "" if ours_tpr >= 0.95 else "✗",
            )
        )
        print(
            f"  {family:24s} n={n:4d} ours {ours_tpr:.3f}  pHash {rows[-1][3]:.3f}  PDQ {rows[-1][4]:.3f}",
            flush=True,
        )
    return rows, misses


@dataclass
class HeldOut:
    """False matches of unrelated held-out queries."""

    n: int = 0
    pairs: dict[str, int] = field(default_factory=dict)
    queries: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)


def heldout_false_positives(reg: Registered, paths: list[Path], latencies: list[float]) -> HeldOut:
    """Count the (query, work) pairs and the queries with any match, for every method."""
    fp_pairs = {"ours": 0, **{b.name: 0 for b in reg.baselines}}
    held = HeldOut(pairs=fp_pairs, queries=dict.fromkeys(fp_pairs, 0))
    for p in paths:
        try:
            rgb = load_image(p)
        except ForensicsError:
            continue
        held.n += 1
        t0 = time.perf_counter()
        matches = reg.index.identify_array(rgb, 10)
        latencies.append(time.perf_counter() - t0)
        held.pairs["ours"] += len(matches)
        held.queries["ours"] += bool(matches)
        if matches:
            found = [
                (
                    m.work_id,
                    str(reg.registered_path[m.work_id]),
                    m.details["hamming"] if m.details["path"] == "hash" else m.details["inliers"],
                )
                for m in matches
            ]
            held.examples.append(f"{p} -> {found} (work, its file, hash bits or inliers)")
        for b in reg.baselines:
            c = int((b.distances(rgb) <= b.threshold).sum())
            held.pairs[b.name] += c
            held.queries[b.name] += c > 0
    return held


def print_results(
    reg: Registered,
    cal: Calibration,
    shipped: bool,
    rows: list[FamilyRow],
    held: HeldOut,
    latencies: list[float],
    misses: dict[str, list[str]],
) -> None:
    """The thresholds, the TPR table, the held-out false-positive table and the latencies."""
    baselines, n_lib = reg.baselines, reg.n_lib
    held_pairs = held.n * n_lib
    print()
    print(
        f"## Image copy detection: {len(reg.original_rgb)} originals + "
        f"{n_lib - len(reg.original_rgb)} distractors registered"
    )
    print()
    print(
        ("Thresholds (ours: shipped; baselines: " if shipped else "Thresholds (")
        + f"calibrated on {cal.scores['n']} unrelated images, "
        + f"{cal.allowed:g} of {cal.pairs:,} pairs allowed to match):"
    )
    print(
        f"ours hash ≤ {cal.hash_t} bits or ≥ {cal.inlier_t} inliers; "
        f"pHash ≤ {baselines[0].threshold}; PDQ ≤ {baselines[1].threshold}"
    )
    print()
    print("| attack family | queries | ours TPR | pHash-256 TPR | PDQ TPR | ours ≥ 0.95 |")
    print("|---|---|---|---|---|---|")
    for fam, n, o, ph, pq, flag in rows:
        print(f"| {fam} | {n} | {o:.3f} | {ph:.3f} | {pq:.3f} | {'yes' if not flag else 'no'} |")
    print()
    print(
        f"| held-out unrelated queries: {held.n} × {n_lib} works = {held_pairs:,} pairs "
        "| ours | pHash-256 | PDQ |"
    )
    print("|---|---|---|---|")
    names = ["ours", baselines[0].name, baselines[1].name]
    print(
        "| FPR per (query, work) pair | "
        + " | ".join(f"{held.pairs[k] / held_pairs:.2e}" for k in names)
        + " |"
    )
    print(
        "| queries with any false match | " + " | ".join(f"{held.queries[k]}/{held.n}" for k in names) + " |"
    )
    print()
    print(
        f"registration: {reg.rate:.1f} images/s (fingerprint + index, decode excluded); "
        f"query latency at {n_lib} works: p50 {pct(latencies, 50) * 1e3:.1f} ms, "
        f"p99 {pct(latencies, 99) * 1e3:.1f} ms"
    )
    for ex in held.examples[:30]:
        print("  false match:", ex)
    for fam, ms in misses.items():
        print(f"  misses {fam}: {ms[:6]}")


def synthetic_fingerprints(
    reg: Registered, gen: np.random.Generator, start: int, count: int
) -> list[tuple[str, list[ImageFingerprint]]]:
    """``count`` synthetic works: a real distractor's fingerprint with 35 % of its hash bits
    and 25 % of every descriptor's bits flipped."""
    chunk = []
    for j in range(count):
        src = reg.fingerprints[int(gen.integers(len(reg.original_rgb), reg.n_lib))]
        h = src.hash ^ np.packbits(gen.random(256) < 0.35)
        desc = src.features.descriptors ^ np.packbits(
            gen.random(src.features.descriptors.shape[0] * 256) < 0.25
        ).reshape(-1, 32)
        f = feat.LocalFeatures(
            src.features.points, desc, src.features.width, src.features.height, src.features.scale
        )
        chunk.append((f"s{start + j}", [ImageFingerprint(h, f)]))
    return chunk


def size_sweep(
    reg: Registered, args: argparse.Namespace, families: list[str], thresholds: tuple[int, int], work: Path
) -> None:
    """Build libraries of each ``--sizes`` (real plus synthetic works) and time attacked queries."""
    hash_t, inlier_t = thresholds
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print()
    print(
        "| library size | build s | query p50 ms | query p99 ms | TPR on sweep queries "
        "| RSS MB per 1k works | disk KB per work |"
    )
    print("|---|---|---|---|---|---|---|")
    sweep_queries = []
    for k in range(args.sweep_queries):
        wid = list(reg.original_rgb)[k % len(reg.original_rgb)]
        r = random.Random(f"{args.seed}|sweep|{k}")
        img, _ = attack(
            reg.original_rgb[wid], chain_for(families[k % len(families)], r), seed=r.randrange(2**31)
        )
        sweep_queries.append((wid, np.asarray(img.convert("RGB"))))
    gen = np.random.default_rng(args.seed)
    for size in sizes:
        gc.collect()
        sweep_dir = work / f"sweep-{size}"
        rss0 = rss_mb()
        t0 = time.perf_counter()
        idx = ImageIndex(sweep_dir, hash_threshold=hash_t, inlier_threshold=inlier_t)
        real = list(zip(reg.ids, reg.fingerprints, strict=True))[: min(size, reg.n_lib)]
        idx.add_many([(w, [f]) for w, f in real])
        done = len(real)
        while done < size:
            chunk = synthetic_fingerprints(reg, gen, done, min(5000, size - done))
            idx.add_many(chunk)
            done += len(chunk)
        build = time.perf_counter() - t0
        lat = []
        sweep_hits = 0
        for wid, q in sweep_queries:
            t0 = time.perf_counter()
            m = idx.identify_array(q, 5)
            lat.append(time.perf_counter() - t0)
            sweep_hits += bool(m) and m[0].work_id == wid
        rss = rss_mb() - rss0
        disk = sum(p.stat().st_size for p in sweep_dir.rglob("*") if p.is_file())
        print(
            f"| {size:,} | {build:.0f} | {pct(lat, 50) * 1e3:.1f} | {pct(lat, 99) * 1e3:.1f} | "
            f"{sweep_hits / len(sweep_queries):.3f} | {rss / size * 1000:.1f} | {disk / size / 1024:.1f} |",
            flush=True,
        )
        idx.close()
        del idx
        shutil.rmtree(sweep_dir, ignore_errors=True)


def main() -> None:
    args = parse_args()
    cache = Path(os.environ.get("RONGXIN_BENCH_CACHE", Path.home() / ".cache" / "rongxin" / "bench-image"))
    work = Path(tempfile.mkdtemp(prefix="rongxin-imgbench-"))
    originals, splits = select_images(args, cache, work)
    reg = register_all(originals, splits["library"], work / "lib")

    families = [*FAMILIES, "chain of two", *MIRROR_FAMILIES]
    thresholds = HASH_THRESHOLD, INLIER_THRESHOLD  # the shipped (calibrated) values
    if not args.sweep_only:
        cal = calibrate(reg, splits["calibration"], args)
        thresholds = cal.hash_t, cal.inlier_t
        latencies: list[float] = []
        rows, misses = attacked_queries(reg, families, args.seed, latencies)
        held = heldout_false_positives(reg, splits["heldout"], latencies)
        print_results(reg, cal, args.shipped, rows, held, latencies, misses)
    reg.index.close()

    size_sweep(reg, args, [*FAMILIES, "chain of two"], thresholds, work)  # the same queries as before
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nmachine: {os.cpu_count()} cores (shared with other jobs during the run); "
        f"Python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
