"""Render a report's HTML to PDF with the headless browser (Debian chromium, A4).

The HTML is self-contained (:func:`forensics.report.build_html`); the page is opened with
JavaScript disabled and every network request refused, so a hostile string that escaped
escaping could still neither run nor fetch anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawlers.browser import launch
from crawlers.errors import BrowserError
from rongxin.errors import RongxinError

if TYPE_CHECKING:
    from playwright.sync_api import PdfMargins

#: Page margins (the template's ``@page`` rule gives the same).
MARGINS: PdfMargins = {"top": "14mm", "right": "13mm", "bottom": "16mm", "left": "13mm"}


def render_pdf(html: str, *, timeout_s: float = 60.0) -> bytes:
    """The PDF of ``html`` on A4 pages, backgrounds printed, page numbers in the footer.

    Parameters
    ----------
    html : str
        A self-contained document.
    timeout_s : float
        Longest the browser may take to load and print it.

    Returns
    -------
    bytes
        The PDF.

    Raises
    ------
    RongxinError
        The browser is missing or fails.
    """
    from playwright.sync_api import Error as PlaywrightError

    try:
        with launch(timeout_s=timeout_s) as browser:
            context = browser.new_context(java_script_enabled=False, offline=True)
            try:
                context.route("**/*", lambda route: route.abort())
                page = context.new_page()
                page.set_default_timeout(timeout_s * 1000)
                page.set_content(html, wait_until="load")
                page.emulate_media(media="print")
                return page.pdf(
                    format="A4",
                    print_background=True,
                    margin=MARGINS,
                    prefer_css_page_size=True,
                    display_header_footer=True,
                    header_template="<span></span>",
                    footer_template=(
                        '<div style="font-size:8px;width:100%;text-align:center;color:#6b7280">'
                        '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
                    ),
                )
            finally:
                context.close()
    except BrowserError as exc:
        raise RongxinError(f"cannot render the PDF: {exc}") from None
    except PlaywrightError as exc:
        raise RongxinError(f"the browser failed to render the PDF: {exc.message}") from None
