"""Evidence packages: WACZ layout, offline verification, and every kind of tampering refused."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from chain.crypto import PrivateKey
from chain.localnet import LocalConsortium
from chain.types import Certificate, Role
from crawlers.capture import Capture
from crawlers.errors import PackageError
from crawlers.package import add_receipt, build_package, package_digest, read_package, verify_package
from crawlers.package.manifest import SIGNATURE, sign_manifest

from .conftest import Ledger


def _entries(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _rewrite(src: Path, dst: Path, entries: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return dst


def _failed(v: object) -> list[tuple[str, str]]:
    return [(c.file, c.check) for c in v.failures]  # type: ignore[attr-defined]


def test_a_good_package_verifies_offline(package: Path, ledger: Ledger) -> None:
    v = verify_package(str(package), ledger.consortium.genesis)
    assert v.ok, _failed(v)
    checks = {c.check for c in v.checks if c.status == "ok"}
    assert {"sm3+sha256", "wacz", "signature", "certificate", "receipt", "warc"} <= checks
    assert v.facts["signer"]["subject"] == "Legal center" and v.facts["anchored"]["height"] >= 1
    assert json.loads(json.dumps(v.to_json()))["ok"] is True


def test_the_package_is_a_wacz(package: Path) -> None:
    names = [n for n, _ in _entries(package)]
    for required in ("datapackage.json", "datapackage-digest.json", "pages/pages.jsonl", "indexes/index.cdxj",
                     "archive/data.warc.gz", "evidence/manifest.json", "evidence/signature.json",
                     "evidence/receipt.cbor"):  # fmt: skip
        assert required in names
    with zipfile.ZipFile(package) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        dp = json.loads(zf.read("datapackage.json"))
        pages = zf.read("pages/pages.jsonl").decode().splitlines()
    assert dp["profile"] == "data-package" and dp["wacz_version"] == "1.1.1"
    # every file but the index and its digest is a resource (what WACZ validators require)
    assert {r["path"] for r in dp["resources"]} == set(names) - {
        "datapackage.json",
        "datapackage-digest.json",
    }
    assert all(
        r["hash"].startswith("sha256:") and r["name"] == r["path"].rsplit("/", 1)[-1] for r in dp["resources"]
    )
    assert json.loads(pages[0])["format"] == "json-pages-1.0" and json.loads(pages[1])["url"].endswith(
        "/static.html"
    )


def test_read_package_is_the_public_reader(package: Path) -> None:
    with read_package(package) as pkg:
        assert pkg.screenshot.startswith(b"\x89PNG")
        assert pkg.environment["browser"]["name"] == "chromium"
        assert pkg.capture_log[0]["event"] in ("dns", "start")
        assert pkg.receipt_bytes and pkg.anchor == {
            "merkle_proof": {"digest": package_digest(pkg.manifest_bytes).hex(), "index": 0, "path": []}
        }
        assert pkg.manifest["case"]["id"] == 7 and pkg.manifest["match"]["kind"] == "image"
        assert pkg.files["evidence/screenshot.png"]["sm3"]
        assert pkg.timestamp_token is None


def test_a_changed_byte_in_any_file_is_refused_naming_the_file(
    package: Path, ledger: Ledger, tmp_path: Path
) -> None:
    entries = _entries(package)
    for i, (name, data) in enumerate(entries):
        changed = bytearray(data)
        changed[len(changed) // 2] ^= 0x01
        bad = _rewrite(
            package, tmp_path / f"t{i}.wacz", [*entries[:i], (name, bytes(changed)), *entries[i + 1 :]]
        )
        v = verify_package(str(bad), ledger.consortium.genesis)
        assert not v.ok, name
        assert any(name in f for f, _ in _failed(v)), (name, _failed(v))


def test_a_flipped_byte_in_the_zip_is_refused(package: Path, ledger: Ledger, tmp_path: Path) -> None:
    data = bytearray(package.read_bytes())
    with zipfile.ZipFile(package) as zf:
        info = zf.getinfo("evidence/screenshot.png")
    data[info.header_offset + 30 + len(info.filename) + 100] ^= 0xFF  # inside the stored PNG
    bad = tmp_path / "flip.wacz"
    bad.write_bytes(bytes(data))
    v = verify_package(str(bad), ledger.consortium.genesis)
    assert ("evidence/screenshot.png", "zip-crc") in _failed(v)


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.0])
def test_a_truncated_package_is_refused(package: Path, ledger: Ledger, tmp_path: Path, keep: float) -> None:
    data = package.read_bytes()
    bad = tmp_path / "cut.wacz"
    bad.write_bytes(data[: int(len(data) * keep)])
    v = verify_package(str(bad), ledger.consortium.genesis)
    assert not v.ok and _failed(v)[0][1] == "package"
    with pytest.raises(PackageError):
        read_package(bad)


def test_an_added_file_is_refused(package: Path, ledger: Ledger, tmp_path: Path) -> None:
    bad = _rewrite(package, tmp_path / "extra.wacz", [*_entries(package), ("evidence/note.txt", b"trust me")])
    assert ("evidence/note.txt", "listed") in _failed(verify_package(str(bad), ledger.consortium.genesis))


def test_unsafe_or_duplicate_names_are_refused(package: Path, tmp_path: Path) -> None:
    for name in ("../evil", "/abs", "a/./b"):
        with pytest.raises(PackageError, match="unsafe"):
            read_package(_rewrite(package, tmp_path / "u.wacz", [*_entries(package), (name, b"x")]))
    entries = _entries(package)
    with pytest.warns(UserWarning):  # zipfile warns of the duplicate while writing it
        dup = _rewrite(package, tmp_path / "d.wacz", [*entries, entries[0]])
    with pytest.raises(PackageError, match="duplicate"):
        read_package(dup)


def test_a_signature_by_another_key_is_refused(package: Path, ledger: Ledger, tmp_path: Path) -> None:
    entries = dict(_entries(package))
    forged = sign_manifest(entries["evidence/manifest.json"], PrivateKey.generate())
    bad = _rewrite(
        package, tmp_path / "k.wacz", [(n, forged if n == SIGNATURE else d) for n, d in _entries(package)]
    )
    assert (SIGNATURE, "signature") in _failed(verify_package(str(bad), ledger.consortium.genesis))
    sig = json.loads(entries[SIGNATURE])
    sig["signature"] = sig["signature"][:-4] + ("0000" if not sig["signature"].endswith("0000") else "1111")
    raw = json.dumps(sig).encode()
    bad = _rewrite(
        package, tmp_path / "s.wacz", [(n, raw if n == SIGNATURE else d) for n, d in _entries(package)]
    )
    assert (SIGNATURE, "signature") in _failed(verify_package(str(bad), ledger.consortium.genesis))


def test_a_key_that_is_not_the_certificates_cannot_sign(
    static_capture: Capture, ledger: Ledger, tmp_path: Path
) -> None:
    with pytest.raises(PackageError, match="does not belong"):
        build_package(
            static_capture, tmp_path / "x.wacz", key=PrivateKey.generate(), certificate=ledger.center.cert
        )


def test_a_certificate_of_another_consortium_and_its_receipt_are_refused(
    static_capture: Capture, ledger: Ledger, tmp_path: Path
) -> None:
    other = LocalConsortium.create(tmp_path / "other", nodes=1)
    try:
        other.net.now = int(time.time() * 1000)
        member = other.add_member("Impostor", [Role.LEGAL_CENTER])
        out = tmp_path / "other.wacz"
        digest = build_package(static_capture, out, key=member.key, certificate=member.cert)
        add_receipt(out, other.anchor(member, digest, "evidence-package"))
        assert verify_package(str(out), other.genesis).ok
        failed = _failed(verify_package(str(out), ledger.consortium.genesis))
        assert ("evidence/manifest.json", "certificate") in failed
        assert ("evidence/receipt.cbor + evidence/anchor.json", "receipt") in failed
    finally:
        other.close()


def test_a_self_made_certificate_is_refused(static_capture: Capture, ledger: Ledger, tmp_path: Path) -> None:
    key = PrivateKey.generate()
    cert = Certificate.issue(key, "Legal center", "Legal center", [Role.LEGAL_CENTER], key.public_key, 0)
    out = tmp_path / "self.wacz"
    build_package(static_capture, out, key=key, certificate=cert)
    v = verify_package(str(out), ledger.consortium.genesis)
    assert ("evidence/manifest.json", "certificate") in _failed(v) and not v.ok


def test_a_receipt_of_another_digest_or_none_is_refused(
    static_capture: Capture, ledger: Ledger, tmp_path: Path
) -> None:
    out = tmp_path / "r.wacz"
    digest = build_package(static_capture, out, key=ledger.center.key, certificate=ledger.center.cert)
    assert digest == package_digest(read_package(out).manifest_bytes)
    v = verify_package(str(out), ledger.consortium.genesis)
    assert ("evidence/receipt.cbor", "receipt") in _failed(v) and not v.ok
    ledger.consortium.net.now = max(ledger.consortium.net.now, int(time.time() * 1000))
    add_receipt(out, ledger.consortium.anchor(ledger.center, bytes(32), "evidence-package"))
    assert ("evidence/receipt.cbor + evidence/anchor.json", "receipt") in _failed(
        verify_package(str(out), ledger.consortium.genesis)
    )


def test_without_genesis_nothing_is_accepted(package: Path) -> None:
    v = verify_package(str(package), None)
    assert not v.failures and not v.ok


def test_a_capture_with_a_missing_file_is_not_packaged(
    static_capture: Capture, ledger: Ledger, tmp_path: Path
) -> None:
    files = dict(static_capture.files)
    files["evidence/screenshot.png"] = tmp_path / "gone.png"
    broken = Capture(**{**static_capture.__dict__, "files": files})
    with pytest.raises(PackageError, match="missing"):
        build_package(broken, tmp_path / "x.wacz", key=ledger.center.key, certificate=ledger.center.cert)
    assert not (tmp_path / "x.wacz").exists()
