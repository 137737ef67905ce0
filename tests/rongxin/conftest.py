"""Fixtures the command-line tests share with the package tests: real photos and the smoke
corpus of real media; and one run of the whole demo for every test that reads what it wrote."""

import io
from pathlib import Path

import pytest
from rich.console import Console

from rongxin.demo import DemoReport, run_demo
from tests.datasets.conftest import smoke, smoke_root  # noqa: F401  (fixtures)
from tests.forensics.conftest import photos  # noqa: F401  (a fixture)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoReport, str]:
    """The demo, once per session (it starts node processes and a browser: about a minute),
    in a directory whose name looks like Rich markup; and what it printed."""
    printed = io.StringIO()
    console = Console(file=printed, width=400, color_system=None)
    report = run_demo(tmp_path_factory.mktemp("demo[red]"), console, scrypt_n=1 << 10)
    return report, printed.getvalue()


@pytest.fixture
def demo(demo_run: tuple[DemoReport, str]) -> tuple[Path, DemoReport]:
    """The demo's directory and report."""
    return demo_run[0].out_dir, demo_run[0]
