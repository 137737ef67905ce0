"""Fixtures: the loopback capture site with media made by ffmpeg, a local consortium whose
legal center signs and anchors packages, and one captured and packaged static page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain.localnet import Identity, LocalConsortium
from chain.types import Role
from crawlers.capture import Capture, CaptureOptions, capture
from crawlers.package import add_receipt, build_package

from .site import CaptureSite, make_media, pages, serve

LOOPBACK = CaptureOptions(allow=("127.0.0.1",), default_play_s=2.0)


@pytest.fixture(scope="session")
def site_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes]]:
    return {**pages(), **make_media(tmp_path_factory.mktemp("capture-media"))}


@pytest.fixture(scope="session")
def capture_site(site_files: dict[str, tuple[str, bytes]]) -> Iterator[CaptureSite]:
    with serve(site_files) as s:
        yield s


@dataclass
class Ledger:
    consortium: LocalConsortium
    center: Identity


@pytest.fixture(scope="session")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    c = LocalConsortium.create(tmp_path_factory.mktemp("evidence-net"), nodes=1)
    c.net.now = int(time.time() * 1000)  # the simulated clock starts at the wall clock
    center = c.add_member("Legal center", [Role.LEGAL_CENTER])
    yield Ledger(c, center)
    c.close()


@pytest.fixture(scope="session")
def static_capture(capture_site: CaptureSite, tmp_path_factory: pytest.TempPathFactory) -> Capture:
    return capture(f"{capture_site.base}/static.html", tmp_path_factory.mktemp("cap") / "static", LOOPBACK)


@pytest.fixture(scope="session")
def package(static_capture: Capture, ledger: Ledger, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signed, anchored package of the static page."""
    out = tmp_path_factory.mktemp("pkg") / "static.wacz"
    case = {"id": 7, "page_url": static_capture.url, "work_id": "astronaut"}
    match = {"kind": "image", "score": 0.93}
    digest = build_package(
        static_capture, out, key=ledger.center.key, certificate=ledger.center.cert, case=case, match=match
    )
    ledger.consortium.net.now = max(ledger.consortium.net.now, int(time.time() * 1000))
    add_receipt(out, ledger.consortium.anchor(ledger.center, digest, "evidence-package"))
    return out
