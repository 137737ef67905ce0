"""The RFC 3161 path against a local TSA (``openssl ts -reply`` on 127.0.0.1)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from crawlers.package import timestamp_package, verify_package
from crawlers.package.manifest import TIMESTAMP
from crawlers.package.tsa import TimestampError, request_timestamp

from .conftest import Ledger
from .tsa import make_tsa, serve_tsa


def test_a_timestamped_package_verifies_and_a_foreign_token_is_refused(
    package: Path, ledger: Ledger, tmp_path: Path
) -> None:
    stamped = tmp_path / "stamped.wacz"
    shutil.copy(package, stamped)
    with serve_tsa(tmp_path / "tsa") as tsa:
        timestamp_package(stamped, tsa.url)
        other_token = request_timestamp(tsa.url, b"another manifest")
        assert tsa.requests == 2
    genesis = ledger.consortium.genesis
    v = verify_package(str(stamped), genesis, tsa_roots=[tsa.root_pem])
    assert v.ok and v.facts["timestamp"]["tsa"] == "CN=Test TSA"
    assert any(c.check == "timestamp" and c.status == "ok" for c in v.checks)
    unpinned = verify_package(str(stamped), genesis)
    assert unpinned.ok and "not pinned" in next(c.detail for c in unpinned.checks if c.check == "timestamp")
    wrong_root = make_tsa(tmp_path / "other-tsa").read_bytes()
    assert (TIMESTAMP, "timestamp") in [
        (c.file, c.check) for c in verify_package(str(stamped), genesis, tsa_roots=[wrong_root]).failures
    ]
    swapped = tmp_path / "swapped.wacz"
    with zipfile.ZipFile(stamped) as src, zipfile.ZipFile(swapped, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, other_token if info.filename == TIMESTAMP else src.read(info))
    v = verify_package(str(swapped), genesis, tsa_roots=[tsa.root_pem])
    assert not v.ok
    assert any(f.file == TIMESTAMP and "another document" in f.detail for f in v.failures)
    assert ("datapackage.json", "wacz") in [(f.file, f.check) for f in v.failures]  # the index too


def test_a_tsa_that_answers_garbage_or_nothing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TimestampError, match="did not answer"):
        request_timestamp("http://127.0.0.1:9/tsa", b"x", timeout_s=2)
    with serve_tsa(tmp_path / "tsa") as tsa:
        (tmp_path / "tsa" / "tsa.key").write_text("not a key")  # the TSA now fails every request
        with pytest.raises(TimestampError, match="answered 500"):
            request_timestamp(tsa.url, b"x")
