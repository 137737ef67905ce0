"""Sample whole attack sets from a corpus: queries plus a ``truth.jsonl`` of ground truth.

``generate(manifest, "image", count=100, seed=1, out=DIR)`` picks sources among the
corpus's originals, draws a chain of one or two transforms per query, renders each query
into ``DIR/queries/`` and writes one :class:`~datasets.attacks.Truth` per line (plus the
query's file name and SM3 digest) to ``DIR/truth.jsonl``. Everything depends only on the
seed and the manifest, so a set can be regenerated exactly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chain.crypto.sm3 import sm3_file
from datasets.attacks import Truth, audio, image, video
from datasets.errors import AttackError
from datasets.manifest import Entry, Manifest

SOURCE_COLLECTION = {"image": "images", "audio": "music", "video": "video"}


def _pool(man: Manifest, **kw: Any) -> list[Entry]:
    return sorted(man.select(**kw), key=lambda e: e.id)


def plan(
    man: Manifest, kind: str, count: int, seed: int, *, max_chain: int = 2
) -> list[tuple[Entry, list[str], int]]:
    """The (source, transform names, query seed) of every query; pure function of the inputs.

    Raises
    ------
    AttackError
        If ``kind`` is unknown or the corpus has no original of that kind.
    """
    if kind not in SOURCE_COLLECTION:
        raise AttackError(f"unknown attack kind {kind!r}; choose image, audio or video")
    if count < 0 or max_chain < 1:
        raise AttackError("count must be >= 0 and max_chain >= 1")
    sources = _pool(man, collection=SOURCE_COLLECTION[kind], role="original")
    if not sources:
        raise AttackError(
            f"the corpus at {man.root} has no original {SOURCE_COLLECTION[kind]}; build it first"
        )
    rng = random.Random(f"rongxin-attack-set/{kind}/{seed}")
    out = []
    for _ in range(count):
        src = rng.choice(sources)
        length = rng.randint(1, max_chain)
        mod = {"image": image, "audio": audio, "video": video}[kind]
        names = mod.sample_chain(rng, length)
        out.append((src, names, rng.getrandbits(31)))
    return out


def generate(
    man: Manifest,
    kind: str,
    count: int,
    seed: int,
    out: str | Path,
    *,
    max_chain: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Truth]:
    """Render an attack set; see the module docstring.

    Returns
    -------
    list of Truth
        In query order; each ``output`` also holds ``file`` and ``digest``.
    """
    out = Path(out)
    qdir = out / "queries"
    qdir.mkdir(parents=True, exist_ok=True)
    speech = [man.path(e) for e in _pool(man, collection="speech")]
    dmusic = [man.path(e) for e in _pool(man, collection="music", role="distractor")]
    hosts = [e for e in _pool(man, collection="video", role="distractor")] or _pool(man, collection="video")
    truths: list[Truth] = []
    jobs = plan(man, kind, count, seed, max_chain=max_chain)
    for i, (src, names, qseed) in enumerate(jobs):
        if progress:
            progress(f"attacks/{kind}", i, len(jobs))
        qid = f"q{i:05d}"
        if kind == "image":
            img, truth = image.apply(man.path(src), names, qseed, source_id=src.id)
            path = image.save(img, qdir / f"{qid}.png")
        elif kind == "audio":
            clip, truth = audio.apply(
                man.path(src),
                names,
                qseed,
                source_id=src.id,
                backgrounds=speech + dmusic,
                voices=speech,
                tracks=dmusic,
            )
            path = clip.save(qdir / f"{qid}.flac")
        else:
            host = next((h for h in hosts if h.id != src.id), None)
            truth = video.apply(
                man.path(src),
                qdir / f"{qid}.mp4",
                names,
                qseed,
                source_id=src.id,
                host=man.path(host) if host else None,
                replacement=dmusic[0] if dmusic else None,
            )
            path = qdir / f"{qid}.mp4"
        truth.output.update({"file": f"queries/{path.name}", "digest": sm3_file(path).hex(), "query_id": qid})
        truths.append(truth)
    if progress:
        progress(f"attacks/{kind}", len(jobs), len(jobs))
    tmp = out / "truth.jsonl.tmp"
    tmp.write_text("".join(t.to_json() + "\n" for t in truths), encoding="utf-8")
    tmp.replace(out / "truth.jsonl")
    return truths


def load_truth(path: str | Path) -> list[dict[str, Any]]:
    """Read a ``truth.jsonl`` (or the one inside an attack-set directory)."""
    p = Path(path)
    if p.is_dir():
        p = p / "truth.jsonl"
    try:
        return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise AttackError(f"cannot read attack truth {p}: {exc}") from None
