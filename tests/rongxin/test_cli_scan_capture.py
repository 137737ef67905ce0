"""``rongxin scan --capture``: a scan of a loopback site whose new cases are captured as
evidence, signed and anchored, and recorded with their cases; one case's failed capture is
reported and loses nothing of the scan."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chain.errors import ChainError
from crawlers.package import read_package, verify_package
from datasets.attacks import image as image_attacks
from forensics.library import Library
from rongxin.cli import app
from rongxin.demo_site import loopback_server
from rongxin.evidence_cases import pending_cases
from tests.crawlers.capture import conftest as capture_fixtures
from tests.crawlers.capture.conftest import Ledger
from tests.forensics.conftest import _photo
from tests.rongxin import test_cli_evidence

ledger = capture_fixtures.ledger
genesis_file = test_cli_evidence.genesis_file
profile = test_cli_evidence.profile

runner = CliRunner()

PAGE = b"""<!doctype html><html><head><title>Reposted</title></head><body>
<h1>A reposted photo</h1><img src="/img/copy.jpg" width="320"></body></html>"""


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scan-capture") / "lib"
    lib = Library(path)
    try:
        lib.register(_photo("astronaut"), "astronaut")
    finally:
        lib.close()
    return path


@pytest.fixture(scope="module")
def copy_jpeg() -> bytes:
    img, _ = image_attacks.apply(_photo("astronaut"), "jpeg", seed=11)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


@pytest.fixture
def site(copy_jpeg: bytes) -> Iterator[str]:
    """Two pages showing the copy; /blocked.html drops the connection of headless browsers."""
    files = {"/post.html": ("text/html", PAGE), "/blocked.html": ("text/html", PAGE),
             "/img/copy.jpg": ("image/jpeg", copy_jpeg)}  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/blocked.html" and "HeadlessChrome" in self.headers.get("User-Agent", ""):
                self.close_connection = True  # no answer at all: the capture cannot load the page
                return
            ctype, body = files.get(path, ("text/plain", b""))
            self.send_response(200 if path in files else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with loopback_server(Handler) as port:
        yield f"http://127.0.0.1:{port}"


class _Node:
    """The member's node, answered by the local consortium: packages really go on its chain."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def anchor(self, digest: bytes, kind: str) -> Any:
        net = self.ledger.consortium.net
        net.now = max(net.now, int(time.time() * 1000))
        return self.ledger.consortium.anchor(self.ledger.center, digest, kind)

    def checkpoint(self) -> Any:
        raise ChainError("no checkpoint from this node")  # the capture records the ledger time as missing

    def close(self) -> None:
        pass


@pytest.fixture
def node(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> _Node:
    fake = _Node(ledger)
    monkeypatch.setattr(
        "rongxin.client_profile.open_client", lambda profile, pw, node=None: (fake, ledger.consortium.genesis)
    )
    return fake


def _scan_args(site: str, library: Path, out: Path, profile: Path) -> list[str]:
    return ["scan", f"{site}/post.html", f"{site}/blocked.html", "--library", str(library), "--out", str(out),
            "--scope", "page", "--depth", "1", "--delay", "0", "--render", "never", "--allow", "127.0.0.1",
            "--quiet", "--capture", "--client", str(profile), "--no-recording"]  # fmt: skip


def test_scan_capture_packages_new_cases_and_reports_a_failed_one(
    site: str, library: Path, profile: Path, node: _Node, ledger: Ledger, tmp_path: Path
) -> None:
    out = tmp_path / "scan"
    done = runner.invoke(app, _scan_args(site, library, out, profile))
    assert done.exit_code == 1, done.output  # one capture failed
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["cases"] == 2  # the scan's results are whole
    evidence = summary["evidence"]
    assert evidence["dir"] == str(out / "evidence") and evidence["cases"] == 2
    (good,) = evidence["packages"]
    (bad,) = evidence["failed"]
    assert good["url"].endswith("/post.html") and good["anchored"] is True
    assert bad["url"].endswith("/blocked.html") and "/blocked.html" in bad["error"] and "package" not in bad
    errors = " ".join(done.stderr.split())
    assert f"evidence of case {bad['case']}" in errors and "1 of 2 evidence captures failed" in errors
    assert "rongxin evidence capture-cases --scan" in errors

    # the package exists, verifies offline, holds the very bytes the scan identified
    package = Path(good["package"])
    assert package == (out / "evidence" / f"case-{good['case']}" / "evidence.wacz").resolve()
    v = verify_package(str(package), ledger.consortium.genesis)
    assert v.ok, [(c.file, c.check, c.detail) for c in v.failures]
    shown = json.loads(runner.invoke(app, ["cases", "show", str(good["case"]), "--out", str(out)]).stdout)
    with read_package(package) as pkg:
        assert pkg.manifest["case"]["id"] == good["case"] and pkg.manifest["case"]["work_id"] == "astronaut"
        (copy,) = [
            e for n, e in pkg.manifest["files"].items() if n.startswith("media/") and n.endswith("copy.jpg")
        ]
        assert copy["sm3"] == shown["content_sm3"]
    # and the case names its package; the failed case names none
    assert shown["evidence_package"] == {
        "path": str(package),
        "sm3": good["package_digest_sm3"],
        "recorded_at": shown["evidence_package"]["recorded_at"],
    }
    failed_case = json.loads(
        runner.invoke(app, ["cases", "show", str(bad["case"]), "--out", str(out)]).stdout
    )
    assert "evidence_package" not in failed_case

    # a second run (capture-cases, or scan resume --capture) captures only the case without a package
    todo, total = pending_cases(out, out / "evidence")
    assert [c.id for c in todo] == [bad["case"]] and total == 2
    (out / "evidence" / f"case-{good['case']}" / "evidence.wacz").rename(tmp_path / "moved.wacz")
    assert len(pending_cases(out, out / "evidence")[0]) == 2  # the recorded package is gone: capture again


def test_scan_capture_options_are_checked_before_the_scan(
    site: str, library: Path, profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "scan"
    base = ["scan", f"{site}/post.html", "--library", str(library), "--out", str(out), "--quiet"]
    alone = runner.invoke(app, [*base, "--keep"])
    assert alone.exit_code == 1 and "need --capture" in alone.output
    both = runner.invoke(app, [*base, "--capture", "--keep", "--no-anchor"])
    assert both.exit_code == 1 and "drop --no-anchor" in both.output
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "not the password")
    wrong = runner.invoke(app, [*base, "--capture", "--client", str(profile), "--no-anchor"])
    assert wrong.exit_code == 1 and "client profile" in wrong.output
    assert not out.exists()  # refused before the scan began
