"""``rongxin report``: a scan case's report as HTML and PDF; the PDF checked as page images."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from chain.crypto.sm3 import sm3_file
from crawlers.store import Item, ScanStore
from rongxin.cli import app
from tests.forensics.report.conftest import HOSTILE, Found, image_found  # noqa: F401 (fixture)
from tests.rongxin.pdf_pages import check_pdf_pages

runner = CliRunner()
A4_WIDTH_PT = 595.28
MARGIN_PT = 13 / 25.4 * 72  # the report's left and right page margins


def _record_case(scan: Path, found: Found) -> None:
    """Record ``found`` as case 1 of a scan, the way the scanner's store records a hit."""
    store = ScanStore(scan, create=True)
    try:
        page = f"http://127.0.0.1:8/gallery?{HOSTILE}"
        media = "http://127.0.0.1:8/img/copy.jpg"
        store.add(page, "page", 0)
        store.add(media, "media", 1)
        page_item = Item(1, page, "page", 0, "", 0)
        store.finish_page(page_item, [], [(media, "img")])
        m = found.match
        assert m.evidence is not None
        match = {
            "work_id": m.work_id,
            "kind": m.kind,
            "score": m.score,
            "evidence": {"threshold": m.threshold, "evidence": m.evidence.to_json()},
        }
        media_item = Item(2, media, "media", 1, "img", 0)
        data = found.copy_file.read_bytes()
        store.finish_media(media_item, media, sm3_file(found.copy_file), "image/jpeg", len(data), [match])
        assert len(store.cases()) == 1
    finally:
        store.close()


@pytest.fixture
def scan(tmp_path: Path, image_found: Found) -> Path:  # noqa: F811
    d = tmp_path / "scan"
    _record_case(d, image_found)
    return d


def _lib(found: Found) -> Path:
    return found.work_file.parent / "lib"


def _run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, " ".join(result.stderr.split())  # unwrapped


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (scripts/apt-packages.txt)")
def test_report_html_and_pdf_pages_render_cjk_without_overflow(
    scan: Path,
    image_found: Found,  # noqa: F811
    tmp_path: Path,
) -> None:
    code, out, err = _run(
        "report", "1", "--scan", scan, "--library", _lib(image_found),
        "--work-file", image_found.work_file, "--copy", image_found.copy_file,
        "--issuer", "融信县级融媒体中心",
    )  # fmt: skip
    assert code == 0, err
    written = json.loads(out)
    html = Path(written["html"]).read_text()
    pdf = Path(written["pdf"])
    assert Path(written["html"]).name == "case-1.html" and pdf.parent == scan / "reports"
    for path in (image_found.work_file, image_found.copy_file):
        assert sm3_file(path).hex() in html and hashlib.sha256(path.read_bytes()).hexdigest() in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    images = check_pdf_pages(pdf, tmp_path)
    # the figure made it onto a page: a large coloured area
    colourful = 0
    for png in images:
        rgb = cv2.imread(str(png))
        assert rgb is not None
        colourful += int((rgb.std(axis=2) > 25).sum())
    assert colourful > 20_000


def test_english_html_only(scan: Path, image_found: Found) -> None:  # noqa: F811
    out_base = scan / "r" / "en"
    code, out, err = _run(
        "report", "1", "-s", scan, "-l", _lib(image_found), "--lang", "en", "--format", "html", "-o", out_base
    )
    assert code == 0, err
    written = json.loads(out)
    assert written["pdf"] is None and not (scan / "r" / "en.pdf").exists()
    html = (scan / "r" / "en.html").read_text()
    assert "Infringement evidence report" in html and "No capture package" in html
    assert "was not supplied" in html and "side-by-side" in err
    code, _, err = _run("report", "1", "-s", scan, "-l", _lib(image_found), "-f", "html", "-o", out_base)
    assert code == 1 and "exists; pass --force" in err


def test_work_receipt_checked_against_the_genesis(
    scan: Path,
    image_found: Found,  # noqa: F811
    tmp_path: Path,
) -> None:
    from chain.localnet import LocalConsortium
    from chain.types import Role

    c = LocalConsortium.create(tmp_path / "net", nodes=4)
    try:
        member = c.add_member("County media center", [Role.MEDIA_CENTER])
        receipt = c.anchor(member, image_found.registration.fingerprint_digest, "work")
        (tmp_path / "work.receipt").write_bytes(receipt.to_bytes())
        (tmp_path / "genesis.cbor").write_bytes(c.genesis.to_bytes())
        height = receipt.verify(c.genesis).height
        other = LocalConsortium.create(tmp_path / "other", nodes=4)
        (tmp_path / "other.cbor").write_bytes(other.genesis.to_bytes())
        other.close()
    finally:
        c.close()
    args: list[str | Path] = [
        "report",
        "1",
        "-s",
        scan,
        "-l",
        _lib(image_found),
        "-f",
        "html",
        "--work-receipt",
        tmp_path / "work.receipt",
    ]
    code, _, err = _run(*args)
    assert code == 1 and "need --genesis" in err
    code, _, err = _run(*args, "--genesis", tmp_path / "other.cbor")
    assert code == 1 and "INVALID" in err
    code, out, err = _run(*args, "--genesis", tmp_path / "genesis.cbor", "--lang", "en")
    assert code == 0, err
    html = Path(json.loads(out)["html"]).read_text()
    assert f"<td>{height}</td>" in html and "County media center" in html
    assert image_found.registration.fingerprint_digest.hex() in html
    assert "rongxin verify work.receipt --genesis genesis.cbor" in html
    validators = re.search(r"Validators</th><td[^>]*>([^<]+)</td>", html)
    assert validators is not None and len(validators.group(1).split(", ")) >= 3


def test_bad_input_gives_clear_errors(scan: Path, image_found: Found, tmp_path: Path) -> None:  # noqa: F811
    lib = _lib(image_found)
    code, _, err = _run("report", "99", "-s", scan, "-l", lib, "-f", "html")
    assert code == 1 and "no case 99" in err
    code, _, err = _run("report", "1", "-s", scan, "-l", tmp_path / "nolib", "-f", "html")
    assert code == 1 and "holds no work library" in err
    code, _, err = _run("report", "1", "-s", tmp_path / "noscan", "-l", lib, "-f", "html")
    assert code == 1 and "holds no scan" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "scan.sqlite").write_bytes(b"this is not a database" * 100)
    code, _, err = _run("report", "1", "-s", bad, "-l", lib, "-f", "html")
    assert code == 1 and "not a usable scan database" in err
    code, _, err = _run("report", "1", "-s", scan, "-l", lib, "-f", "html", "--copy", image_found.work_file)
    assert code == 1 and "is not the recorded copy" in err
    code, _, err = _run("report", "1", "-s", scan, "-l", lib, "-f", "html", "--package", tmp_path / "x.wacz")
    assert code == 1 and "need --genesis" in err
    (tmp_path / "genesis.cbor").write_bytes(b"\xa1not a genesis")
    code, _, err = _run(
        "report", "1", "-s", scan, "-l", lib, "-f", "html", "--package", tmp_path / "x.wacz",
        "--genesis", tmp_path / "genesis.cbor",
    )  # fmt: skip
    assert code == 1 and "is not a genesis document" in err
    code, _, err = _run("report", "1", "-s", scan, "-l", lib, "-f", "docx")
    assert code == 1 and "--format takes html, pdf" in err
    code, _, err = _run("report", "1", "-s", scan, "-l", lib, "--lang", "fr")
    assert code == 1 and "--lang takes zh or en" in err
    # a case whose stored evidence was tampered with
    import sqlite3

    db = sqlite3.connect(scan / "scan.sqlite")
    db.execute("UPDATE cases SET evidence = ?", (json.dumps({"threshold": 1.0, "evidence": {"path": "x"}}),))
    db.commit()
    db.close()
    code, _, err = _run("report", "1", "-s", scan, "-l", lib, "-f", "html")
    assert code == 1 and "case 1:" in err and "'hash' or 'features'" in err
    db = sqlite3.connect(scan / "scan.sqlite")
    db.execute("UPDATE cases SET evidence = '{not json'")
    db.commit()
    db.close()
    code, _, err = _run("report", "1", "-s", scan, "-l", lib, "-f", "html")
    assert code == 1 and "cannot be read" in err
    assert not (scan / "reports").exists()
