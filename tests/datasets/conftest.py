"""Fixtures of the datasets tests: the smoke corpus of real media, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets.errors import SmokeCorpusError
from datasets.manifest import Manifest
from datasets.smoke import ensure


@pytest.fixture(scope="session")
def smoke_root() -> Path:
    """Root of the smoke corpus; fails (never skips) with the reason if it cannot be built."""
    try:
        return ensure()
    except SmokeCorpusError as exc:
        pytest.fail(
            f"the smoke corpus of real media is required and could not be built: {exc}", pytrace=False
        )


@pytest.fixture(scope="session")
def smoke(smoke_root: Path) -> Manifest:
    """The smoke corpus's manifest."""
    return Manifest.open(smoke_root)
