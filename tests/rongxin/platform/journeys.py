"""Browser journeys of the platform, shared by the fast test (in-process consortium behind
a real node API) and the slow one (node processes): each drives headless Chromium against
a platform served by uvicorn on loopback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SHOTS_ENV = "RONGXIN_SCREENSHOTS"
"""Set to a directory (e.g. ``docs/screenshots``) to keep the screenshots there."""


def shots_dir(default: Path) -> Path:
    """Where the journeys write their screenshots."""
    target = Path(os.environ.get(SHOTS_ENV) or default)
    target.mkdir(parents=True, exist_ok=True)
    return target


def shot(page: Any, shots: Path, name: str) -> None:
    """A screenshot of the page at laptop width, as a small palette PNG."""
    from PIL import Image

    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=96)
    small.save(path, optimize=True)


def sign_in(page: Any, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def sign_out(page: Any) -> None:
    page.click("#logout")
    page.wait_for_selector("input[name=username]")


def register_work(page: Any, base: str, image: Path, title: str, owner: str) -> str:
    """Upload ``image`` through the form (with the progress script); the work page's URL."""
    page.goto(f"{base}/works/new")
    page.set_input_files("#file", str(image))
    page.fill("#title", title)
    page.fill("#owner", owner)
    page.click("#register")
    page.wait_for_selector("#anchored, #not-anchored, #upload-error", timeout=60_000)
    return str(page.url)


def verify_digest_in_explorer(page: Any, base: str, digest: str, downloads: Path) -> str:
    """Search the digest, download its receipt and proof, check them in the receipt checker;
    the checker's verdict text."""
    page.goto(f"{base}/explorer")
    page.fill("#q", digest)
    page.press("#q", "Enter")
    page.wait_for_selector("#verified")
    with page.expect_download() as dl:
        page.click("#dl-receipt")
    receipt = downloads / "receipt.cbor"
    dl.value.save_as(str(receipt))
    with page.expect_download() as dl2:
        page.click("#dl-proof")
    proof = downloads / "proof.json"
    dl2.value.save_as(str(proof))
    page.goto(f"{base}/explorer/receipts")
    page.set_input_files("#receipt-file", str(receipt))
    page.set_input_files("#proof-file", str(proof))
    page.click("#check")
    page.wait_for_selector("#receipt-ok, #receipt-bad")
    return str(page.inner_text("#receipt-ok, #receipt-bad"))


def transfer_work(page: Any, work_url: str, price: str, shares: dict[str, str]) -> str:
    """From a work's page: register its ownership record, make a key to receive it, and
    transfer it confidentially to that key; the transaction id of the transfer."""
    page.goto(work_url)
    page.click("#work-transfers")
    page.wait_for_selector("#no-record")
    page.click("#register-ownership")
    page.wait_for_selector("#ledger-verified", timeout=60_000)
    page.click("#back-to-work")
    page.click("#receive-key")
    page.wait_for_selector("#received-key")
    page.fill("#buyer-key", page.input_value("#received-key"))
    page.fill("#buyer-pop", page.input_value("#received-pop"))
    page.fill("#price", price)
    for i, (party, amount) in enumerate(shares.items()):
        page.fill(f"#party-{i}", party)
        page.fill(f"#amount-{i}", amount)
    page.click("#make-transfer")
    page.wait_for_selector("#ledger-verified, #transfers-error", timeout=120_000)
    error = page.locator("#transfers-error")
    assert not error.count(), error.inner_text()
    return str(page.inner_text("#tx-id"))


def open_recorded_transfers(page: Any, base: str, work: str, key_file: Path, password: str) -> None:
    """As the auditor: open a work's recorded transfers with the auditor key file."""
    page.goto(f"{base}/transfers?work={work}")
    page.set_input_files("#auditor-key-file", str(key_file))
    page.fill("#auditor-password", password)
    page.click("#open-transfers")
    page.wait_for_selector("#opened, #transfers-error")
