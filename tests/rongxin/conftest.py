"""Fixtures the command-line tests share with the package tests: real photos and the smoke
corpus of real media."""

from tests.datasets.conftest import smoke, smoke_root  # noqa: F401  (fixtures)
from tests.forensics.conftest import photos  # noqa: F401  (a fixture)
