"""The live display of `rongxin scan`: counts, rates, and a real scan drawn to a console."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from crawlers.scan import Scanner
from rongxin.scan_progress import ScanProgress, describe

from .site import Site
from .test_scan import config


def test_describe_counts_and_rates() -> None:
    counts = {"page.done": 8, "page.failed": 2, "media.done": 5, "media.failed": 1, "cases": 4}
    line = describe(counts, 2.0, start={"page.done": 4})
    assert line.startswith("pages 10  media 6  fingerprinted 0  cases 4  errors 3")
    assert line.endswith("3.0 pages/s  3.0 media/s")  # a resumed run counts only its own work
    assert describe({}, 0.0).endswith("0.0 pages/s  0.0 media/s")


def test_progress_of_a_real_scan(site: Site, scan_library: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=False)
    cfg = config(site, scan_library, seeds=[site.base + "/mirror.html"], scope="page", max_pages=5)
    with Scanner(tmp_path / "s", cfg) as scanner, ScanProgress(console, cfg.max_pages) as progress:
        summary = scanner.run(progress)
    shown = out.getvalue()
    assert "pages 1  media 3  fingerprinted 1  cases 3  errors 0" in shown
    assert summary["cases"] == 3


def test_cli_shows_progress_on_stderr(site: Site, scan_library: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rongxin.cli import app

    args = ["scan", site.base + "/gallery.html", "--library", str(scan_library), "--out", str(tmp_path / "o")]
    r = CliRunner().invoke(app, [*args, "--scope", "page", "--delay", "0", "--allow", "127.0.0.1"])
    assert r.exit_code == 0, r.output
    assert "pages 1  media 3" in r.stderr and '"cases": 2' in r.stdout
