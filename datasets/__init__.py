"""Benchmark corpora built from real media shipped in Debian and PyPI packages, and attack sets.

Stable API (see ``docs/datasets.md``):

- :func:`datasets.corpus.build` ``(kind, out=None) -> Manifest`` builds or resumes a corpus;
- :func:`datasets.manifest.load` ``(path) -> list[Entry]`` reads a manifest;
- :func:`datasets.smoke.ensure` ``() -> Path`` builds/validates the small test corpus;
- :func:`datasets.attacks.image.apply`, :func:`datasets.attacks.audio.apply`,
  :func:`datasets.attacks.video.apply` run a seeded transform chain and return the ground
  truth; :func:`datasets.attacks.generate.generate` samples whole attack sets.

Every error is a :class:`DatasetsError`.
"""

from datasets.errors import (
    AttackError,
    DatasetsError,
    DecodeError,
    FetchError,
    ManifestError,
    SmokeCorpusError,
    ToolMissingError,
)

__all__ = [
    "AttackError",
    "DatasetsError",
    "DecodeError",
    "FetchError",
    "ManifestError",
    "SmokeCorpusError",
    "ToolMissingError",
]
