"""The headless browser launcher: Debian chromium through Playwright, no downloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawlers import CrawlError
from crawlers.browser import chromium_executable, launch
from crawlers.errors import BrowserError


def test_executable_is_a_real_file() -> None:
    path = chromium_executable()
    assert path.is_file()
    assert "chromium" in path.name


def test_configured_executable_that_does_not_exist_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RONGXIN_CHROMIUM", str(tmp_path / "no-such-browser"))
    with pytest.raises(BrowserError, match="not a file"):
        chromium_executable()
    assert issubclass(BrowserError, CrawlError)


def test_a_broken_executable_fails_with_a_browser_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("RONGXIN_CHROMIUM", str(fake))
    with pytest.raises(BrowserError, match="failed to start"), launch(timeout_s=10):
        pass


def test_renders_chinese_text_to_a_screenshot(tmp_path: Path) -> None:
    with launch() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.set_content("<p id=t style='font-size:40px'>融信 Rongxin</p>")
        assert page.inner_text("#t") == "融信 Rongxin"
        shot = tmp_path / "shot.png"
        page.screenshot(path=str(shot))
        context.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 1000
