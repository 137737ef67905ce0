"""Build corpora: fetch packages, decode-check and deduplicate their media, write the manifest.

``build("images")`` (or ``rongxin datasets build images``) processes every source of that
collection, one at a time. Each finished source leaves a state file under
``<out>/.state/``, so an interrupted build resumes where it stopped and a finished one
returns at once. After the sources, files are deduplicated across the whole corpus (by
SM3 digest, then by near-identity), assembled videos and frame distractors are added
for ``video``/``all``, and ``manifest.jsonl`` is rewritten to list exactly the files present.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from chain.crypto.sm3 import sm3_file
from datasets import media
from datasets.errors import DatasetsError, DecodeError, ManifestError
from datasets.fetch import Unpacked, unpack
from datasets.manifest import MANIFEST_NAME, MEDIA_DIRS, Entry, Manifest, Role, parse_lines
from datasets.paths import corpus_dir
from datasets.sources import TARGETS, Source, sources_for
from datasets.tools import FFMPEG_BITEXACT, decode_check, ffmpeg, media_fields, probe, require

log = logging.getLogger(__name__)

STATE_DIR = ".state"
PREFIX = {"image": "img", "audio": "aud", "video": "vid"}
#: Two images whose 256-bit dHashes differ in at most this many bits are near-identical.
IMAGE_NEAR_BITS = 12
#: Audio signatures shorter than this (≈2 s) are only deduplicated by digest.
MIN_AUDIO_SIG = 16

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Item:
    """An entry with its near-identity signature, as kept in a state file."""

    entry: Entry
    sig: bytes

    def to_json(self) -> str:
        return json.dumps({"entry": asdict(self.entry), "sig": self.sig.hex()}, ensure_ascii=False)


def _read_state(path: Path) -> list[Item]:
    items: list[Item] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            data = json.loads(line)
            entry = parse_lines([json.dumps(data["entry"])], f"{path}:{number}")[0]
            items.append(Item(entry, bytes.fromhex(data["sig"])))
        except (json.JSONDecodeError, KeyError, ValueError, TypeError, ManifestError, IndexError) as exc:
            raise ManifestError(
                f"state file {path} is damaged at line {number} ({exc}); delete it to redo"
            ) from None
    return items


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)


def _dropped_ids(out: Path) -> set[str]:
    path = out / "duplicates.jsonl"
    if not path.is_file():
        return set()
    try:
        return {
            json.loads(line)["dropped"]
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        }
    except (json.JSONDecodeError, KeyError, TypeError):
        return set()


def _state_ok(out: Path, items: list[Item]) -> bool:
    """Whether every file of a finished source is still there (or was dropped as a duplicate)."""
    dropped = _dropped_ids(out)
    return all(
        it.entry.id in dropped
        or ((out / it.entry.path).is_file() and (out / it.entry.path).stat().st_size == it.entry.size)
        for it in items
    )


def _match(root: Path, source: Source) -> list[Path]:
    found: set[Path] = set()
    for pattern in source.include:
        for p in root.glob(pattern):
            if (p.is_dir() if source.mode == "frames" else p.is_file()) and not p.is_symlink():
                rel = p.relative_to(root).as_posix()
                if not any(Path(rel).match(x) or rel.endswith(x.lstrip("*")) for x in source.exclude):
                    found.add(p)
    return sorted(found)


def _store(out: Path, collection: str, kind: str, src: Path, suffix: str) -> tuple[str, str, str, int]:
    digest = sm3_file(src).hex()
    entry_id = f"{PREFIX[kind]}-{digest[:16]}"
    rel = f"{collection}/{entry_id}{suffix.lower()}"
    dest = out / rel
    if not (dest.is_file() and dest.stat().st_size == src.stat().st_size):
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    return entry_id, digest, rel, src.stat().st_size


def _encode_frames(frame_dir: Path, fps: float, dest: Path) -> dict[str, Any]:
    frames = sorted(p for p in frame_dir.iterdir() if p.suffix.lower() in {".pgm", ".ppm", ".jpg", ".png"})
    if len(frames) < 10:
        raise DecodeError(f"{frame_dir}: only {len(frames)} frames; need at least 10")
    with tempfile.TemporaryDirectory(prefix="rx-frames-") as tmp:
        listing = Path(tmp) / "frames.txt"
        listing.write_text(
            "".join(f"file '{f.as_posix()}'\nduration {1 / fps:.6f}\n" for f in frames), encoding="utf-8"
        )
        ffmpeg(
            [
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                listing,
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2,format=yuv420p",
                "-r",
                f"{fps:g}",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "18",
                *FFMPEG_BITEXACT,
                "-movflags",
                "+faststart",
                dest,
            ],
            what=f"encode frame sequence {frame_dir.name}",
        )
    return {
        "from": "real camera frame sequence",
        "frames": len(frames),
        "fps": fps,
        "codec": "libx264",
        "crf": 18,
    }


def _role(source: Source, digest: str) -> Role:
    """The source's role, except one file in ``holdout`` (by digest) held out as a distractor."""
    if source.holdout and int(digest[:8], 16) % source.holdout == 0:
        return "distractor"
    return source.role


def _process_file(out: Path, source: Source, pkg: Unpacked, path: Path) -> Item:
    rel_orig = path.relative_to(pkg.root).as_posix()
    common: dict[str, Any] = {
        "kind": source.kind,
        "collection": source.collection,
        "role": source.role,
        "package": pkg.package,
        "version": pkg.version,
        "origin": pkg.origin,
        "license": pkg.license,
        "original_path": "/" + rel_orig,
    }
    if source.mode == "frames":
        with tempfile.TemporaryDirectory(prefix="rx-frames-") as tmp:
            enc = Path(tmp) / "seq.mp4"
            recipe = _encode_frames(path, source.fps, enc)
            return _video_item(out, source.collection, enc, common | {"recipe": recipe})
    if source.kind == "image":
        chk = media.check_image(path)
        entry_id, digest, rel, size = _store(out, source.collection, "image", path, path.suffix)
        e = Entry(
            id=entry_id, path=rel, digest=digest, size=size, width=chk.width, height=chk.height, **common
        )
        return Item(e, chk.signature)
    if source.kind == "audio":
        samples = media.decode_audio(path)
        level = media.rms_dbfs(samples)
        if level < media.SILENCE_DBFS:
            raise DecodeError(f"{path}: silent ({level:.0f} dBFS)")
        info = probe(path)
        entry_id, digest, rel, size = _store(out, source.collection, "audio", path, path.suffix)
        common["role"] = _role(source, digest)
        e = Entry(
            id=entry_id,
            path=rel,
            digest=digest,
            size=size,
            duration=round(samples.size / media.SIG_RATE, 3),
            sample_rate=info.sample_rate,
            channels=info.channels,
            **common,
        )
        return Item(e, media.audio_signature(samples))
    return _video_item(out, source.collection, path, common)


def _video_item(out: Path, collection: str, path: Path, common: dict[str, Any]) -> Item:
    decode_check(path)
    info = probe(path)
    if not info.has_video or info.duration <= 0.2:
        raise DecodeError(f"{path}: no video stream of useful length")
    sig = media.dhash(media.video_frame(path, info.duration / 2))
    entry_id, digest, rel, size = _store(out, collection, "video", path, path.suffix or ".mp4")
    e = Entry(
        id=entry_id,
        path=rel,
        digest=digest,
        size=size,
        **media_fields(info),
        **common,
    )
    return Item(e, sig)


def _process_source(out: Path, source: Source, smoke: bool, progress: Progress | None) -> list[Item]:
    state = out / STATE_DIR / f"{source.key}.jsonl"
    pkg = unpack(source)  # cheap when already unpacked; license and held-out roles are re-derived
    if state.is_file():
        cached = _read_state(state)
        if _state_ok(out, cached):
            fresh = [
                Item(replace(it.entry, license=pkg.license, role=_role(source, it.entry.digest)), it.sig)
                for it in cached
            ]
            if fresh != cached:
                _write_lines(state, (it.to_json() for it in fresh))
            return fresh
        log.warning("source %s: files missing, processing again", source.key)
    paths = _match(pkg.root, source)
    if not paths:
        raise DatasetsError(
            f"source {source.key}: no file in {pkg.package} matches {source.include}; fix the recipe"
        )
    if smoke and source.smoke_limit:
        paths = paths[: source.smoke_limit]
    items: list[Item] = []
    rejects: list[str] = []
    for i, path in enumerate(paths):
        if progress:
            progress(source.key, i, len(paths))
        try:
            items.append(_process_file(out, source, pkg, path))
        except DecodeError as exc:
            rejects.append(json.dumps({"path": str(path.relative_to(pkg.root)), "reason": str(exc)}))
    if progress:
        progress(source.key, len(paths), len(paths))
    state.parent.mkdir(parents=True, exist_ok=True)
    _write_lines(out / STATE_DIR / f"{source.key}.rejects.jsonl", rejects)
    _write_lines(state, (it.to_json() for it in items))
    return items


def dedupe(items: list[Item]) -> tuple[list[Item], list[tuple[Item, Item, str]]]:
    """Drop exact (same SM3) and near-identical duplicates; the first occurrence wins.

    Returns
    -------
    kept : list of Item
    dropped : list of (dropped, kept, reason)
    """
    kept: list[Item] = []
    dropped: list[tuple[Item, Item, str]] = []
    by_digest: dict[str, Item] = {}
    images: list[Item] = []
    image_sigs: list[np.ndarray[Any, np.dtype[np.uint8]]] = []
    audio: list[Item] = []
    videos: list[Item] = []
    for it in items:
        e = it.entry
        first = by_digest.get(e.digest)
        if first is not None:
            dropped.append((it, first, "same SM3 digest"))
            continue
        twin: Item | None = None
        if e.kind == "image" and it.sig and images:
            bits = np.unpackbits(np.frombuffer(it.sig, np.uint8))
            dist = (np.stack(image_sigs) != bits).sum(axis=1)
            j = int(dist.argmin())
            if dist[j] <= IMAGE_NEAR_BITS:
                twin = images[j]
        elif e.kind == "audio" and len(it.sig) >= MIN_AUDIO_SIG:
            twin = next((a for a in audio if media.audio_near(it.sig, a.sig)), None)
        elif e.kind == "video":
            twin = next(
                (
                    v
                    for v in videos
                    if abs((v.entry.duration or 0) - (e.duration or 0))
                    <= 0.02 * max(v.entry.duration or 0, 0.5)
                    and len(v.sig) == len(it.sig)
                    and media.hamming(v.sig, it.sig) <= IMAGE_NEAR_BITS
                ),
                None,
            )
        if twin is not None:
            dropped.append((it, twin, "near-identical"))
            continue
        by_digest[e.digest] = it
        kept.append(it)
        if e.kind == "image" and it.sig:
            images.append(it)
            image_sigs.append(np.unpackbits(np.frombuffer(it.sig, np.uint8)))
        elif e.kind == "audio" and len(it.sig) >= MIN_AUDIO_SIG:
            audio.append(it)
        elif e.kind == "video":
            videos.append(it)
    return kept, dropped


def _all_state(out: Path) -> list[Item]:
    order = {s.key: i for i, s in enumerate(sources_for(("images", "music", "speech", "video")))}
    files = [p for p in (out / STATE_DIR).glob("*.jsonl") if not p.name.endswith(".rejects.jsonl")]
    files = [p for p in files if p.stem in order]
    items: list[Item] = []
    for p in sorted(files, key=lambda p: order[p.stem]):
        items.extend(_read_state(p))
    return items


def _finish(out: Path, extra: list[Entry]) -> Manifest:
    kept, dropped = dedupe(_all_state(out))
    entries = [it.entry for it in kept]
    seen = {e.id for e in entries}
    for e in extra:
        if e.id not in seen:
            seen.add(e.id)
            entries.append(e)
    keep_paths = {e.path for e in entries}
    for sub in MEDIA_DIRS:
        d = out / sub
        if d.is_dir():
            for f in d.rglob("*"):
                if f.is_file() and f.relative_to(out).as_posix() not in keep_paths:
                    f.unlink()
    _write_lines(
        out / "duplicates.jsonl",
        (
            json.dumps(
                {
                    "dropped": a.entry.id,
                    "kept": b.entry.id,
                    "reason": r,
                    "original_path": a.entry.original_path,
                    "package": a.entry.package,
                }
            )
            for a, b, r in dropped
        ),
    )
    man = Manifest(out, entries)
    man.save()
    man.validate(check_digests=False)
    return man


def build(
    kind: str,
    out: str | os.PathLike[str] | None = None,
    *,
    smoke: bool = False,
    seed: int = 0,
    assembled: int | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Build (or resume, or just re-validate) a corpus.

    Parameters
    ----------
    kind : {"images", "music", "speech", "video", "all"}
        What to build; ``video`` also builds ``images`` and ``music``, which its assembled
        clips are made from.
    out : path, optional
        Corpus directory; default ``<data root>/full`` (``<data root>/smoke`` if ``smoke``).
    smoke : bool
        Build the small smoke subset (only sources marked ``smoke``, few files, few short
        assembled clips).
    seed : int
        Seed of the assembled clips' parameters.
    assembled : int, optional
        Number of assembled clips (default 72 for a full build, 3 for smoke).
    progress : callable, optional
        Called as ``progress(step, done, total)``.

    Returns
    -------
    Manifest
        The corpus's manifest, covering every collection built into ``out`` so far.

    Raises
    ------
    DatasetsError
        With a message naming the missing tool or package, or the failing step.
    """
    if kind not in TARGETS:
        raise DatasetsError(f"unknown corpus {kind!r}; choose one of {', '.join(TARGETS)}")
    for tool in ("ffmpeg", "ffprobe"):
        require(tool)
    root = Path(out) if out is not None else corpus_dir("smoke" if smoke else "full")
    root.mkdir(parents=True, exist_ok=True)
    collections = TARGETS[kind]
    for source in sources_for(collections, smoke=smoke):
        _process_source(root, source, smoke, progress)
    extra: list[Entry] = []
    from datasets import assemble

    if "video" in collections or (root / STATE_DIR / assemble.STATE_NAME).is_file():
        kept, _ = dedupe(_all_state(root))
        base = [it.entry for it in kept]
        count = assembled if assembled is not None else (3 if smoke else 72)
        extra = assemble.build_assembled(root, base, count=count, seed=seed, short=smoke, progress=progress)
    return _finish(root, extra)


def counts(manifest: Manifest) -> dict[str, dict[str, float]]:
    """Files and hours per collection/role/assembled group, for reports.

    Examples
    --------
    >>> counts(Manifest(Path("."), []))
    {}
    """
    table: dict[str, dict[str, float]] = {}
    for e in manifest:
        key = f"{e.collection}/{e.role}" + ("/assembled" if e.assembled else "")
        row = table.setdefault(key, {"files": 0, "hours": 0.0, "bytes": 0})
        row["files"] += 1
        row["hours"] += (e.duration or 0.0) / 3600
        row["bytes"] += e.size
    return {k: table[k] for k in sorted(table)}


__all__ = ["MANIFEST_NAME", "Item", "build", "counts", "dedupe"]
