"""Hash-list exchange: list size, export/verify/import time, and foreign matches against local ones.

Member A registers real media from the smoke corpus (photos, game music and videos: the
real camera clips of 5 s or more and the corpus's assembled slideshows,
``datasets.smoke``), exports a signed hash list with PDQ hashes, and member B imports it
into an empty library. Then the same attacked queries are identified by A against its own
works and by B against the imported list: the table says how often B finds the work A
finds (the reference must be A's reference of that work), how often B finds something A
does not, and what each lookup costs. Unrelated queries (the corpus's distractor photos
and sounds, and its speech) measure the false matches of both. A last row measures PDQ alone (image
entries stripped of our own fingerprints) on the same image queries.

Run::

    .venv/bin/python bench/hash_lists.py --quick     # 8 photos, 3 songs (about a minute)
    .venv/bin/python bench/hash_lists.py             # every original of the smoke corpus

Attacks (seeded by ``datasets.attacks``): photos ``jpeg+crop``, ``rotate+jpeg``,
``flip+jpeg``, ``resize+noise``; music 10-s ``excerpt`` with ``noise``, ``reencode``
(a lossy codec) or ``speed``; video 5-s ``excerpt`` re-encoded at H.264 CRF 38 and half
size, mirrored, or letterboxed.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.crypto.sm2 import PrivateKey
from chain.crypto.sm3 import sm3
from datasets.attacks import audio as audio_attacks
from datasets.attacks import image as image_attacks
from datasets.attacks import video as video_attacks
from datasets.manifest import Manifest
from datasets.smoke import ensure
from forensics.errors import ForensicsError
from forensics.exchange.export import export_entries, signal_parameters, work_reference
from forensics.exchange.foreign import ForeignLibrary
from forensics.exchange.hashlist import ImageFrame, decode_hash_list, encode_hash_list
from forensics.library import Library

IMAGE_ATTACKS: list[Any] = ["jpeg+crop", "rotate+jpeg", "flip+jpeg", "resize+noise"]
AUDIO_ATTACKS: list[Any] = [
    [("excerpt", {"length": 10.0}), "noise"],
    [("excerpt", {"length": 10.0}), "reencode"],
    [("excerpt", {"length": 10.0}), "speed"],
]
VIDEO_ATTACKS: list[Any] = [
    [("excerpt", {"length": 5.0}), ("scale", {"factor": 0.5}), ("reencode", {"codec": "libx264", "crf": 38})],
    [("excerpt", {"length": 5.0}), ("flip", {"axis": "h"})],
    [("excerpt", {"length": 5.0}), ("letterbox", {"fraction": 0.333})],
]


@dataclasses.dataclass
class Tally:
    queries: int = 0
    local: int = 0  # A found the right work
    foreign: int = 0  # B found the right reference
    both: int = 0
    foreign_only: int = 0
    local_s: float = 0.0
    foreign_s: float = 0.0

    def row(self, name: str) -> list[str]:
        n = max(1, self.queries)
        return [
            name,
            str(self.queries),
            f"{self.local / n:.0%}",
            f"{self.foreign / n:.0%}",
            f"{self.both / max(1, self.local):.0%}",
            str(self.foreign_only),
            f"{1000 * self.local_s / n:.0f}",
            f"{1000 * self.foreign_s / n:.0f}",
        ]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 photos and 3 songs")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    root = ensure()
    man = Manifest.open(root)
    photos = [root / e.path for e in man.select(collection="images", role="original")]
    songs = [
        root / e.path for e in man.select(collection="music", role="original") if (e.duration or 0) >= 30
    ]
    other_photos = [root / e.path for e in man.select(collection="images", role="distractor")]
    other_music = [root / e.path for e in man.select(collection="music", role="distractor")]
    other_music += [root / e.path for e in man.select(collection="speech", role="original")]
    videos = [
        root / e.path for e in man.select(collection="video", role="original") if (e.duration or 0) >= 5
    ]
    if args.quick:
        photos, songs, other_photos, other_music = photos[:8], songs[:3], other_photos[:12], other_music[:4]
        videos = videos[:3]
    work = Path(tempfile.mkdtemp(prefix="bench-hash-lists-"))
    try:
        _run(work, photos, songs, videos, other_photos, other_music, args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(
    work: Path,
    photos: list[Path],
    songs: list[Path],
    videos: list[Path],
    other_photos: list[Path],
    other_music: list[Path],
    seed: int,
) -> None:
    key = PrivateKey.generate()
    refs: dict[str, str] = {}
    a_dir, b_dir = work / "a", work / "b"
    with Library(a_dir) as a:
        for p in [*photos, *songs, *videos]:
            reg = a.register(p, p.stem, {"source": p.name})
            refs[reg.work_id] = work_reference(reg.content_digest)
        entries, t_export = _timed(lambda: export_entries(a, pdq_media=[root_of(photos)]))
        signals = signal_parameters(a, ["image", "audio", "video"], pdq=True)
        data, t_sign = _timed(lambda: encode_hash_list("county-a", entries, signals=signals, key=key))
        light = encode_hash_list("county-a", export_entries(a, features=False, peaks=False), signals=signals)
    hl, t_decode = _timed(lambda: decode_hash_list(data))
    images = [e for e in entries if e.kind == "image"]
    audio = [e for e in entries if e.kind == "audio"]
    video = [e for e in entries if e.kind == "video" and e.video is not None]
    minutes = sum(e.audio.duration / 60 for e in audio if e.audio is not None)
    video_s = sum(e.video.frames / e.video.rate for e in video if e.video is not None)
    image_bytes = sum(len(line) for line in data.split(b"\n")[1:-2] if b'"kind":"image"' in line)
    audio_bytes = sum(len(line) for line in data.split(b"\n")[1:-2] if b'"kind":"audio"' in line)
    video_bytes = sum(len(line) for line in data.split(b"\n")[1:-2] if b'"kind":"video"' in line)
    heard = sum(e.audio is not None for e in video)
    print(f"hash list: {len(images)} photos, {len(audio)} songs ({minutes:.1f} min of audio), "
          f"{len(video)} videos ({video_s:.0f} s, {heard} with sound)\n")  # fmt: skip
    _table(
        ["measure", "value"],
        [
            ["list size", f"{len(data):,} B ({len(gzip.compress(data)):,} B gzipped)"],
            ["per photo (DCT hash, ORB features, PDQ)", f"{image_bytes / max(1, len(images)):,.0f} B"],
            ["per audio minute (landmarks, peaks, bass)", f"{audio_bytes / max(1e-9, minutes):,.0f} B"],
            [
                "per video minute (frame hashes, two views; sound)",
                f"{60 * video_bytes / max(1e-9, video_s):,.0f} B",
            ],
            ["list without features and peaks", f"{len(light):,} B"],
            ["export (read the indexes, PDQ of the originals)", f"{t_export:.2f} s"],
            ["encode + SM3 + SM2 sign", f"{t_sign:.2f} s"],
            [
                "decode + check digest, signature, fields",
                f"{t_decode:.2f} s ({len(data) / t_decode / 1e6:.0f} MB/s)",
            ],
        ],
    )
    with ForeignLibrary(b_dir / "foreign") as b:
        report, t_import = _timed(lambda: b.import_list(hl))
        print(f"import into an empty library: {report.added} works in {t_import:.2f} s\n")
        with Library(a_dir, readonly=True) as a:
            tallies = _queries(work, a, b, photos, songs, refs, seed)
            tallies |= _video_queries(work, a, b, videos, refs, seed)
            false = _unrelated(a, b, other_photos, other_music)
    header = ["queries", "n", "A finds", "B finds", "B agrees", "B only", "A ms", "B ms"]
    _table(header, [t.row(name) for name, t in tallies.items()])
    print(
        f"unrelated queries: {false['photos']} photos and {false['music']} sound files, "
        f"{false['unreadable']} of them too short to fingerprint; false matches among the {false['n']} "
        f"others: A {false['local']}, B {false['foreign']}\n"
    )
    _pdq_only(work, hl.entries, signals, key, photos, refs, seed)


def root_of(paths: list[Path]) -> Path:
    return paths[0].parent


def _queries(
    work: Path,
    a: Library,
    b: ForeignLibrary,
    photos: list[Path],
    songs: list[Path],
    refs: dict[str, str],
    seed: int,
) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    qdir = work / "queries"
    qdir.mkdir()
    for k, chain in enumerate(IMAGE_ATTACKS + AUDIO_ATTACKS):
        name = (
            chain
            if isinstance(chain, str)
            else "+".join(str(c if isinstance(c, str) else c[0]) for c in chain)
        )
        t = tallies.setdefault(name, Tally())
        for n, src in enumerate(photos if isinstance(chain, str) else songs):
            s = seed * 1000 + k * 100 + n
            if isinstance(chain, str):
                img, _ = image_attacks.apply(src, chain, s)
                q = qdir / f"{k}-{n}.jpg"
                img.save(q, quality=92)
            else:
                clip, _ = audio_attacks.apply(src, chain, s)
                q = clip.save(qdir / f"{k}-{n}.wav")
            _score(t, a, b, q, src.stem, refs[src.stem])
    return tallies


def _video_queries(
    work: Path, a: Library, b: ForeignLibrary, videos: list[Path], refs: dict[str, str], seed: int
) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    qdir = work / "video-queries"
    qdir.mkdir()
    for k, chain in enumerate(VIDEO_ATTACKS):
        t = tallies.setdefault("video " + "+".join(str(c[0]) for c in chain), Tally())
        for n, src in enumerate(videos):
            q = qdir / f"{k}-{n}.mp4"
            video_attacks.apply(src, q, chain, seed * 1000 + k * 100 + n)
            _score(t, a, b, q, src.stem, refs[src.stem])
    return tallies


def _score(t: Tally, a: Library, b: ForeignLibrary, q: Path, work_id: str, ref: str) -> None:
    local, dt_a = _timed(lambda: a.identify(q, top_k=1))
    foreign, dt_b = _timed(lambda: b.identify(q, top_k=1))
    hit_a = bool(local) and local[0].work_id == work_id
    hit_b = bool(foreign) and foreign[0].reference == ref
    t.queries += 1
    t.local += hit_a
    t.foreign += hit_b
    t.both += hit_a and hit_b
    t.foreign_only += hit_b and not hit_a
    t.local_s += dt_a
    t.foreign_s += dt_b


def _unrelated(a: Library, b: ForeignLibrary, photos: list[Path], music: list[Path]) -> dict[str, int]:
    out = {"n": 0, "photos": len(photos), "music": len(music), "local": 0, "foreign": 0, "unreadable": 0}
    for q in [*photos, *music]:
        try:
            local, foreign = a.identify(q, top_k=1), b.identify(q, top_k=1)
        except ForensicsError:  # a sound effect too short to fingerprint, say
            out["unreadable"] += 1
            continue
        out["n"] += 1
        out["local"] += bool(local)
        out["foreign"] += bool(foreign)
    return out


def _pdq_only(
    work: Path,
    entries: Any,
    signals: dict[str, Any],
    key: PrivateKey,
    photos: list[Path],
    refs: dict[str, str],
    seed: int,
) -> None:
    blind = [
        dataclasses.replace(e, frames=(ImageFrame(sm3(e.ref.encode()), None),))
        for e in entries
        if e.kind == "image"
    ]
    data = encode_hash_list("county-a", blind, signals=signals, key=key)
    qdir = work / "pdq"
    qdir.mkdir()
    rows = []
    with ForeignLibrary(work / "pdq-only" / "foreign") as b:
        b.import_list(decode_hash_list(data))
        for k, chain in enumerate(IMAGE_ATTACKS):
            found = 0
            for n, src in enumerate(photos):
                img, _ = image_attacks.apply(src, chain, seed * 1000 + k * 100 + n)
                q = qdir / f"{k}-{n}.jpg"
                img.save(q, quality=92)
                m = b.identify(q, top_k=1)
                found += bool(m) and m[0].reference == refs[src.stem]
            rows.append([chain, str(len(photos)), f"{found / max(1, len(photos)):.0%}"])
    print("PDQ alone (ThreatExchange's rule: distance <= 31, quality >= 50), same photo queries:")
    _table(["queries", "n", "found"], rows)


if __name__ == "__main__":
    main()
