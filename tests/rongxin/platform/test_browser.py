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

from chain.crypto import PrivateKey
from chain.crypto.sealed import MIN_SCRYPT_N
from crawlers.browser import launch
from rongxin.platform.app import close_app, create_app
from rongxin.platform.config import load_config
from rongxin.platform.deploy import DEMO_PASSWORD, running_demo
from rongxin.platform.sm2login import sign_challenge
from tests.chain.api.harness import serve
from tests.forensics.conftest import write_image
from tests.rongxin.platform.conftest import PASSWORD, Stack
from tests.rongxin.platform.copysite import copy_site
from tests.rongxin.platform.journeys import (
    open_recorded_transfers,
    register_work,
    shot,
    shots_dir,
    sign_in,
    sign_out,
    transfer_work,
    verify_digest_in_explorer,
)
from zkp.auditor import AuditorKey, seal_auditor_key
from zkp.contract import auditor_payload


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
            "/transfers",
            "/account",
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
def test_transfer_journey_in_chromium(
    stack: Stack, photos: dict[str, NDArray[np.uint8]], tmp_path: Path
) -> None:
    """Legal staff register a work, its ownership record and a confidential transfer (hidden
    price and royalty shares, one party name hostile HTML); the auditor opens it with the
    auditor key file, then registers an SM2 key and signs in with it. About 15 s on the
    loaded project machine, hence slow."""
    image = write_image(tmp_path / "river.jpg", photos[sorted(photos)[5]])
    consortium, auditor = stack.node.consortium, AuditorKey.generate()  # the regulator's key
    consortium.submit(
        consortium.supervisor, "zkp.auditor", auditor_payload(auditor, consortium.genesis.chain_id)
    )
    auditor_file = tmp_path / "auditor.key"
    auditor_file.write_bytes(seal_auditor_key(auditor, "auditor password", scrypt_n=MIN_SCRYPT_N))
    shots = shots_dir(tmp_path / "shots")
    with serve(stack.app) as base, launch() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        sign_in(page, base, "legal-staff", PASSWORD)
        url = register_work(page, base, image, "江畔 River bank", "县融媒体中心")
        tx_id = transfer_work(page, url, "1000000", {"作者": "600000", "<i>平台</i>": "400000"})
        assert page.locator("#receipt-verified").is_visible() and page.inner_text("#new-seq") == "1"
        shot(page, shots, "transfer")
        work_hex = page.inner_text("#sent code").strip()
        page.goto(f"{base}/transfers?work={work_hex}")
        assert "1000000" not in page.content() and page.locator("#transfers tbody tr").count() == 1
        sign_out(page)
        sign_in(page, base, "auditor", PASSWORD)
        open_recorded_transfers(page, base, work_hex, auditor_file, "auditor password")
        assert page.inner_text("#opened .price") == "1,000,000", page.content()[-3000:]
        assert "<i>平台</i> = 400,000" in page.inner_text("#opened .opened-shares")
        assert tx_id.startswith(page.inner_text("#opened code").rstrip("…"))
        shot(page, shots, "transfer-audit")
        page.set_viewport_size({"width": 768, "height": 1024})  # a tablet held upright
        assert page.evaluate("document.documentElement.scrollWidth") <= 768
        page.set_viewport_size({"width": 1280, "height": 800})
        # the auditor registers an SM2 key and signs in with it (the signature as
        # `rongxin platform sign-challenge` prints it)
        key = PrivateKey.generate()
        page.click("#my-account")
        page.fill("#sm2-public-key", key.public_key.to_pem())
        page.click("#save-sm2-key")
        assert key.public_key.key_id() in page.inner_text("#sm2-key-id")
        sign_out(page)
        page.click("#sm2-link")
        page.fill("#sm2-username", "auditor")
        page.click("#sm2-challenge")
        page.fill("#signature", sign_challenge(key, page.inner_text("#challenge-text")))
        shot(page, shots, "sm2-login")
        page.click("#sm2-sign-in")
        page.wait_for_url(f"{base}/")
        assert page.inner_text("#my-account") == "auditor user"
    for name in ("transfer", "transfer-audit", "sm2-login"):
        assert (shots / f"{name}.png").stat().st_size > 5000


@pytest.mark.slow
def test_journeys_against_node_processes(
    photos: dict[str, NDArray[np.uint8]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo deployment: four node processes on loopback, the member's platform reading
    them through the SDK; sign in, register a work, find its digest, verify its receipt,
    transfer the work confidentially; the regulator runs a query across the demo agencies;
    the auditor opens the transfer with the demo's auditor key."""
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
            work_url = register_work(page, base, image, "港口晨景", "县法律服务中心")
            assert page.locator("#anchored").is_visible(), page.content()[:2000]
            fingerprint = page.inner_text("#fingerprint")
            page.goto(f"{base}/works")
            assert page.locator("#works tbody tr").count() == len(seeds) + 1
            verdict = verify_digest_in_explorer(page, base, fingerprint, tmp_path)
            assert "回执有效" in verdict, verdict
            # a confidential transfer verified by the four node processes
            transfer_work(page, work_url, "500000", {"县法律服务中心": "500000"})
            assert page.locator("#receipt-verified").is_visible()
            work_hex = page.inner_text("#sent code").strip()
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
            sign_in(page, base, "auditor", DEMO_PASSWORD)
            key_file = deployment.directory / "auditor.key"
            open_recorded_transfers(page, base, work_hex, key_file, DEMO_PASSWORD)
            assert page.inner_text("#opened .price") == "500,000", page.content()[-3000:]
            sign_out(page)
        close_app(app)
