"""Benchmark corpora built from real media shipped in Debian and PyPI packages, and attack sets.

The front door below exports the stable API (see ``docs/datasets.md``):

- :func:`datasets.corpus.build` ``(kind, out=None) -> Manifest`` builds or resumes a corpus;
- :func:`datasets.manifest.load` ``(path) -> list[Entry]`` reads a manifest;
- :func:`datasets.smoke.ensure` ``() -> Path`` builds/validates the small test corpus;
- :func:`datasets.attacks.image.apply`, :func:`datasets.attacks.audio.apply`,
  :func:`datasets.attacks.video.apply` run a seeded transform chain and return the ground
  truth; :func:`datasets.attacks.generate.generate` samples whole attack sets.

Every error is a :class:`DatasetsError`. Only the errors are imported eagerly; the rest on
first use.

Examples
--------
>>> from datasets import Manifest, build, ensure
>>> from datasets.corpus import build as deep_build
>>> build is deep_build
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.lazy import lazy_exports
from datasets.errors import (
    AttackError,
    DatasetsError,
    DecodeError,
    FetchError,
    ManifestError,
    SmokeCorpusError,
    ToolMissingError,
)

if TYPE_CHECKING:
    from datasets.attacks import Step, Truth
    from datasets.attacks.generate import generate
    from datasets.corpus import build, counts
    from datasets.manifest import Entry, Manifest
    from datasets.paths import corpus_dir, data_root
    from datasets.smoke import ensure

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "Step": "datasets.attacks",
    "Truth": "datasets.attacks",
    "generate": "datasets.attacks.generate",
    "build": "datasets.corpus",
    "counts": "datasets.corpus",
    "Entry": "datasets.manifest",
    "Manifest": "datasets.manifest",
    "corpus_dir": "datasets.paths",
    "data_root": "datasets.paths",
    "ensure": "datasets.smoke",
}

__all__ = [
    "AttackError",
    "DatasetsError",
    "DecodeError",
    "Entry",
    "FetchError",
    "Manifest",
    "ManifestError",
    "SmokeCorpusError",
    "Step",
    "ToolMissingError",
    "Truth",
    "build",
    "corpus_dir",
    "counts",
    "data_root",
    "ensure",
    "generate",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
