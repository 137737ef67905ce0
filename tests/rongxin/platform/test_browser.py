"""The platform in real headless Chromium (Debian's, through Playwright) against a platform
served by uvicorn on 127.0.0.1, reading a real node API: sign in, register a work, find
its anchored fingerprint in the explorer and verify its receipt, find its copy on a site
with a scan and confirm the case, the admin creates a user,
a hostile upload shows the forensics error. Screenshots of the main pages are written
(to ``$RONGXIN_SCREENSHOTS`` when set, e.g. ``docs/screenshots``)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from crawlers.browser import launch
from rongxin.platform.app import close_app, create_app
from rongxin.platform.config import load_config
from rongxin.platform.deploy import DEMO_PASSWORD, running_demo
from tests.chain.api.harness import serve
from tests.forensics.conftest import write_image
from tests.rongxin.platform.conftest import PASSWORD, Stack
from tests.rongxin.platform.copysite import copy_site
from tests.rongxin.platform.journeys import (
    register_work,
    shot,
    shots_dir,
    sign_in,
    sign_out,
    verify_digest_in_explorer,
)


def test_journeys_in_chromium(stack: Stack, photos: dict[str, NDArray[np.uint8]], tmp_path: Path) -> None:
    names = sorted(photos)
    images = [write_image(tmp_path / f"{n}.jpg", photos[n]) for n in names[:2]]
    bogus = tmp_path / "holiday.jpg"
    bogus.write_bytes(b"GIF89a" + b"\x00" * 64)
    shots = shots_dir(tmp_path / "shots")
    with serve(stack.app) as base, launch() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        page = context.new_page()
        page.goto(f"{base}/works")
        assert page.url.startswith(f"{base}/login?next=")
        shot(page, shots, "login")
        sign_in(page, base, "legal-staff", PASSWORD)
        cookie = next(c for c in context.cookies() if c["name"] == "rx_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        shot(page, shots, "home")

        # register two works through the upload form (the progress script posts them)
        url = register_work(page, base, images[0], "港口晨景 Harbour at dawn", "县融媒体中心")
        assert page.locator("#anchored").is_visible(), page.content()[:2000]
        fingerprint = page.inner_text("#fingerprint")
        shot(page, shots, "work")
        register_work(page, base, images[1], "<b>not bold</b>", "县融媒体中心")
        assert page.locator("#work-title").inner_text() == "<b>not bold</b>"  # shown as text
        page.goto(f"{base}/works")
        shot(page, shots, "works")

        # a suspected copy (half size, JPEG q40) is found in the library
        copy = write_image(tmp_path / "suspect.jpg", photos[names[0]][::2, ::2].copy(), quality=40)
        page.goto(f"{base}/works/identify")
        page.set_input_files("#identify-file", str(copy))
        page.click("#find")
        page.wait_for_selector("#matches, #no-match, #identify-error")
        assert page.locator("#matches tbody tr").count() >= 1, page.content()[:2000]
        shot(page, shots, "identify")

        # a hostile upload: the forensics error, in words
        register_work(page, base, bogus, "bogus", "x")
        assert page.locator("#upload-error").is_visible()
        page.goto(f"{base}/works/new")
        shot(page, shots, "register")

        # the explorer finds the anchored fingerprint and the receipt checker verifies it
        page.goto(f"{base}/explorer")
        shot(page, shots, "explorer")
        verdict = verify_digest_in_explorer(page, base, fingerprint, tmp_path)
        assert "回执有效" in verdict, verdict
        shot(page, shots, "receipt-checker")
        page.goto(url)
        assert page.locator("#anchored").is_visible()
        # a scan started from the platform finds the work's copy on a site: the case, confirmed
        site_files = {
            "/": ("text/html", b'<html><body><img src="/c.jpg"></body></html>'),
            "/c.jpg": ("image/jpeg", copy.read_bytes()),
        }
        with copy_site(site_files) as site:
            page.goto(f"{base}/cases")
            form = page.locator("#scan-form")
            form.locator("textarea[name=seeds]").fill(f"{site}/")
            form.locator("input[name=delay]").fill("0")
            form.locator("input[name=allow]").fill("127.0.0.1")
            form.locator("button").click()
            page.wait_for_selector("#scan-cases a", timeout=60_000)  # the socket reloads the page
        shot(page, shots, "scan")
        page.locator("#scan-cases a").first.click()
        assert page.inner_text("#copy-page") == f"{site}/"
        page.locator("#move-form button").click()
        assert page.inner_text("#case-status") == "已确认"
        shot(page, shots, "case")
        sign_out(page)

        # the operator sees the nodes and the audit log, in English
        sign_in(page, base, "operator", PASSWORD)
        page.click("button[name=lang]")
        page.goto(f"{base}/ops")
        assert "Operations audit log" in page.content()
        assert page.locator("#audit tr", has_text="work.register").count() >= 2
        assert page.locator("#alerts").is_visible() and page.locator("#metric-charts figure").count() == 7
        shot(page, shots, "operations")
        page.goto(f"{base}/works")
        assert "You do not have access" in page.content()
        sign_out(page)

        # the admin creates a user, who can then sign in
        sign_in(page, base, "admin", PASSWORD)
        page.goto(f"{base}/admin/users")
        form = page.locator("#create-user")
        form.locator("input[name=name]").fill("wang.fang")
        form.locator("input[name=display]").fill("王芳")
        form.locator("input[name=password]").fill("a long enough password")
        form.locator("input[value=auditor]").check()
        form.locator("button").click()
        page.wait_for_selector("text=王芳")
        shot(page, shots, "users")
        sign_out(page)
        sign_in(page, base, "wang.fang", "a long enough password")
        assert "审计员" in page.content()
        context.close()

        # a tablet held upright: no page is wider than the screen
        tablet = browser.new_context(viewport={"width": 768, "height": 1024}, has_touch=True)
        page = tablet.new_page()
        sign_in(page, base, "auditor", PASSWORD)
        for path in (
            "/",
            "/explorer",
            "/works",
            url.removeprefix(base),
            "/explorer/receipts",
            "/ops",
            "/explorer/nodes",
        ):
            page.goto(f"{base}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 768, (path, width)
        tablet.close()
    for name in (
        "login",
        "home",
        "work",
        "works",
        "register",
        "explorer",
        "receipt-checker",
        "operations",
        "users",
    ):
        png = shots / f"{name}.png"
        assert png.stat().st_size > 5000


@pytest.mark.slow
def test_journeys_against_node_processes(
    photos: dict[str, NDArray[np.uint8]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo deployment: four node processes on loopback, the member's platform reading
    them through the SDK; sign in, register a work, find its digest, verify its receipt; the
    regulator runs a query across the demo agencies."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[3]))
    seeds = [write_image(tmp_path / f"{n}.jpg", photos[n]) for n in sorted(photos)[2:5]]
    image = write_image(tmp_path / "harbour.jpg", photos[sorted(photos)[0]])
    shots = shots_dir(tmp_path / "shots")
    with running_demo(tmp_path / "demo", images=seeds, scrypt_n=1 << 10) as deployment:
        app = create_app(load_config(deployment.config))
        with serve(app) as base, launch() as browser:
            page = browser.new_context(
                viewport={"width": 1280, "height": 800}, accept_downloads=True
            ).new_page()
            sign_in(page, base, "legal-staff", DEMO_PASSWORD)
            register_work(page, base, image, "港口晨景", "县法律服务中心")
            assert page.locator("#anchored").is_visible(), page.content()[:2000]
            fingerprint = page.inner_text("#fingerprint")
            page.goto(f"{base}/works")
            assert page.locator("#works tbody tr").count() == len(seeds) + 1
            verdict = verify_digest_in_explorer(page, base, fingerprint, tmp_path)
            assert "回执有效" in verdict, verdict
            page.goto(f"{base}/explorer/nodes")
            assert page.locator("#nodes tr.up").count() == len(deployment.entries)
            shot(page, shots, "nodes")
            page.goto(f"{base}/explorer")
            shot(page, shots, "explorer-network")
            sign_out(page)
            # the regulator runs the console's example query across the five demo agencies
            sign_in(page, base, "regulator", DEMO_PASSWORD)
            page.goto(f"{base}/regulator")
            assert page.locator("#limits tbody tr").count() == 5
            with page.expect_navigation(timeout=300_000):  # the first query makes the Paillier key
                page.click("#query-form button")
            assert page.locator("#answer tbody tr").count() >= 1, page.content()[:2000]
            assert page.locator("#decisions tbody tr").count() == 5
            shot(page, shots, "regulator")
            # the record of that query is anchored by the member's node, its receipt linked
            assert page.locator("#record-anchor.ok").count() == 1
            sign_out(page)
            # the operator: every node's key metrics over time, sampled from its /metrics
            monitor = app.state.platform.monitor
            with httpx.Client(timeout=10) as http:
                for _ in range(3):
                    monitor.sampler.sample_once(http)
                    time.sleep(1)
            sign_in(page, base, "operator", DEMO_PASSWORD)
            page.goto(f"{base}/ops")
            nodes = len(deployment.entries)
            assert page.locator("#chart-height polyline").count() == nodes, page.content()[:3000]
            assert page.locator("#chart-peers polyline").count() == nodes
            assert page.locator("#chart-sm2_rate polyline").count() == nodes
            page.evaluate("document.getElementById('metric-charts').previousElementSibling.scrollIntoView()")
            shot(page, shots, "operations-metrics")
            sign_out(page)
        close_app(app)
