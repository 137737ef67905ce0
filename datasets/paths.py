"""Where corpora and downloads live.

Everything is cached under ``~/.cache/rongxin/datasets`` unless the environment variable
``RONGXIN_DATA_DIR`` names another directory (or a caller passes ``out=``).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "RONGXIN_DATA_DIR"


def data_root() -> Path:
    """The root of the dataset cache.

    Returns
    -------
    Path
        ``$RONGXIN_DATA_DIR`` if set, else ``~/.cache/rongxin/datasets``.

    Examples
    --------
    >>> isinstance(data_root(), Path)
    True
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "rongxin" / "datasets"


def downloads_dir() -> Path:
    """Directory holding downloaded ``.deb`` and wheel files (shared by all corpora)."""
    return data_root() / "downloads"


def extract_dir() -> Path:
    """Directory holding unpacked packages, one sub-directory per package file."""
    return data_root() / "extract"


def corpus_dir(name: str = "full") -> Path:
    """Default output directory of the corpus called ``name`` (``"full"`` or ``"smoke"``)."""
    return data_root() / name
