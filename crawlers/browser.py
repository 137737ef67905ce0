"""The headless browser: Debian's ``chromium`` driven by Playwright, never a downloaded build.

Every part of Rongxin that needs a real browser (evidence capture, pages that build
themselves with JavaScript, PDF reports, the platform's browser tests) starts it here, so
that the executable, the sandbox flags and the "nothing is downloaded" rule live in one place.

The executable is found in this order: the ``RONGXIN_CHROMIUM`` environment variable, then
Debian's ``/usr/lib/chromium/chromium`` (the real binary behind the ``/usr/bin/chromium``
wrapper script), then ``chromium`` or ``chromium-browser`` on ``PATH``. Playwright's own
browser downloads are disabled by setting ``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD``.

Playwright's ``record_video_dir`` needs Playwright's own ffmpeg build, which is a download;
screen recordings are therefore made from the DevTools screencast and encoded with the
system ``ffmpeg`` (see the capture module), not with ``record_video_dir``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from crawlers.errors import BrowserError

if TYPE_CHECKING:
    from playwright.sync_api import Browser

#: Where Debian installs the real chromium binary (``/usr/bin/chromium`` is a shell wrapper).
DEBIAN_CHROMIUM = Path("/usr/lib/chromium/chromium")

#: Flags for a headless browser running as root in a container: no sandbox (root cannot use
#: it), no GPU, no first-run or background network chatter (component updates, metrics).
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
)


def chromium_executable() -> Path:
    """Return the path of the chromium binary to drive.

    Returns
    -------
    Path
        An existing executable file.

    Raises
    ------
    BrowserError
        No chromium is installed (install Debian's ``chromium`` package), or
        ``RONGXIN_CHROMIUM`` names a file that does not exist.
    """
    configured = os.environ.get("RONGXIN_CHROMIUM")
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise BrowserError(f"RONGXIN_CHROMIUM={configured!r} is not a file")
        return path
    if DEBIAN_CHROMIUM.is_file():
        return DEBIAN_CHROMIUM
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise BrowserError("no chromium found: install the Debian package `chromium` (scripts/setup.sh does)")


@contextmanager
def launch(*, extra_args: tuple[str, ...] = (), timeout_s: float = 30.0) -> Iterator[Browser]:
    """Start a headless chromium through Playwright and close it on exit.

    Parameters
    ----------
    extra_args
        More command-line flags for chromium (after :data:`CHROMIUM_ARGS`).
    timeout_s
        How long the browser may take to start.

    Yields
    ------
    playwright.sync_api.Browser
        A browser with no context yet; open a fresh context (a fresh profile) per job.

    Raises
    ------
    BrowserError
        Playwright is not installed, or chromium is missing or fails to start.
    """
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - playwright is a declared dependency
        raise BrowserError("playwright is not installed (pip install playwright)") from exc
    executable = chromium_executable()
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(
                executable_path=str(executable),
                args=[*CHROMIUM_ARGS, *extra_args],
                timeout=timeout_s * 1000,
            )
        except PlaywrightError as exc:
            raise BrowserError(f"chromium at {executable} failed to start: {exc.message}") from exc
        try:
            yield browser
        finally:
            with suppress(PlaywrightError):  # already gone (crashed): nothing left to close
                browser.close()
