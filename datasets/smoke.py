"""The smoke corpus: a small real-media corpus that tests build once and reuse.

``ensure()`` builds it under ``<data root>/smoke`` (about 70 MB of package downloads,
a minute or two on a fresh machine; seconds once cached), validates it against its
manifest, and returns its root. Tests call it from a session-scoped fixture; ``make
test`` runs ``python -m datasets.smoke`` first. If it cannot be built the caller gets a
:class:`~datasets.errors.SmokeCorpusError` that says why and what to do.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from datasets.corpus import build
from datasets.errors import DatasetsError, SmokeCorpusError
from datasets.manifest import Manifest
from datasets.paths import corpus_dir

#: What the smoke corpus must contain at least (collection/role → files).
MINIMUM = {
    "images/original": 10,
    "images/distractor": 10,
    "music/original": 4,
    "music/distractor": 2,
    "speech/original": 4,
    "video/original": 5,
}


def check(man: Manifest) -> None:
    """Raise :class:`SmokeCorpusError` unless ``man`` meets :data:`MINIMUM` and validates."""
    have: dict[str, int] = {}
    for e in man:
        key = f"{e.collection}/{e.role}"
        have[key] = have.get(key, 0) + 1
    short = {k: (have.get(k, 0), n) for k, n in MINIMUM.items() if have.get(k, 0) < n}
    if short:
        raise SmokeCorpusError(f"smoke corpus at {man.root} is incomplete (have, need): {short}")
    if not man.select(assembled=True, kind="video"):
        raise SmokeCorpusError(f"smoke corpus at {man.root} has no assembled video")
    try:
        man.validate()
    except DatasetsError as exc:
        raise SmokeCorpusError(str(exc)) from None


def ensure(out: str | os.PathLike[str] | None = None) -> Path:
    """Build (if needed) and validate the smoke corpus; return its root directory.

    Raises
    ------
    SmokeCorpusError
        If it cannot be built (missing tool, unreachable package registry, ...) or does
        not validate; the message names the cause.
    """
    root = Path(out) if out is not None else corpus_dir("smoke")
    try:
        man = build("all", root, smoke=True)
    except SmokeCorpusError:
        raise
    except DatasetsError as exc:
        raise SmokeCorpusError(
            f"cannot build the smoke corpus at {root}: {exc}. It needs ffmpeg, sox and libsox-fmt-all "
            "(scripts/apt-packages.txt), and apt-get access to the Debian archive (`apt-get update` once)."
        ) from None
    check(man)
    return root


def main() -> int:
    """Entry point of ``python -m datasets.smoke``: build, validate, print the root."""
    try:
        root = ensure()
    except SmokeCorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    man = Manifest.open(root)
    print(f"smoke corpus ready: {root} ({len(man)} files)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
