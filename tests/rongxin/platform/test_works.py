"""Works: upload and register a real photo, its anchor, search; hostile uploads and stored XSS."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from rongxin.platform.workstore import UploadError, WorkStore
from tests.chain.api.harness import TestClient
from tests.forensics.conftest import write_image
from tests.rongxin.platform.conftest import Stack, client_of, csrf_of

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def photo_bytes(
    photos: dict[str, NDArray[np.uint8]], tmp_path_factory: pytest.TempPathFactory
) -> list[bytes]:
    d = tmp_path_factory.mktemp("photos")
    return [write_image(d / f"{name}.jpg", rgb).read_bytes() for name, rgb in sorted(photos.items())]


def _upload(c: TestClient, token: str, name: str, data: bytes, **fields: str) -> httpx.Response:
    return c.post(
        "/works", files={"file": (name, data)}, data={"csrf": token, **fields}, follow_redirects=False
    )


def test_register_anchor_and_find_a_work_with_hostile_metadata(
    stack: Stack, photo_bytes: list[bytes]
) -> None:
    c = client_of(stack, "legal-staff")
    token = csrf_of(c.get("/works/new").text)
    r = _upload(c, token, f"{XSS}.jpg", photo_bytes[0], title=f"Harbour {XSS}", owner="County media center")
    assert r.status_code == 303, r.text[:300]
    where = r.headers["location"]
    assert "anchor=failed" not in where
    page = c.get(where)
    assert page.status_code == 200 and 'id="anchored"' in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert "<img src=x" not in page.text
    work_id = where.rsplit("/", 1)[1]
    listing = c.get("/works", params={"q": "harbour"}).text
    assert work_id in listing and "<script>alert" not in listing
    assert work_id not in c.get("/works", params={"q": "harbour", "kind": "audio"}).text
    # the fingerprint is on chain: the explorer finds it by digest
    reg = stack.app.state.platform.works.get(work_id)
    r = c.get("/explorer/search", params={"q": reg.fingerprint_digest.hex()}, follow_redirects=False)
    assert r.headers["location"] == f"/explorer/anchors/{reg.fingerprint_digest.hex()}"
    # a regulator can read works but not register one
    reader = client_of(stack, "regulator")
    assert reader.get(where).status_code == 200
    assert _upload(reader, csrf_of(reader.get("/works").text), "a.jpg", photo_bytes[1]).status_code == 403
    # the same content again is refused with the library's reason
    again = _upload(c, token, "copy.jpg", photo_bytes[0])
    assert again.status_code == 422 and "already registered" in again.text


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("notes.jpg", lambda p: b"this is not a picture at all\n" * 10),
        ("cut.jpg", lambda p: p[: len(p) // 3]),
        ("song.mp3", lambda p: b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 300),
        ("empty.png", lambda p: b""),
        ("../../etc/passwd", lambda p: b"root:x:0:0:root:/root:/bin/bash\n"),
        (
            "bomb.png",
            lambda p: (
                bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\xff\xff\xff\xff" * 2 + b"\x08\x02"
            ),
        ),
    ],
)
def test_hostile_uploads_are_refused_with_a_clear_message(
    stack: Stack, photo_bytes: list[bytes], name: str, make
) -> None:  # type: ignore[no-untyped-def]
    c = client_of(stack, "editor")
    token = csrf_of(c.get("/works/new").text)
    before = stack.app.state.platform.works.count()
    r = _upload(c, token, name, make(photo_bytes[2]))
    assert r.status_code == 422, r.status_code
    assert 'id="upload-error"' in r.text
    assert stack.app.state.platform.works.count() == before
    uploads = stack.config.data_dir / "uploads"
    assert not list(uploads.glob("incoming-*"))  # nothing left behind
    assert not (stack.config.data_dir.parent / "etc").exists()


def test_upload_size_limit_leaves_nothing(tmp_path: Path) -> None:
    store = WorkStore(tmp_path / "lib", tmp_path / "data", max_bytes=1000)
    with pytest.raises(UploadError, match="larger than"):
        store.save_upload(io.BytesIO(b"x" * 5000), "big.jpg")
    assert not list((tmp_path / "data" / "uploads").iterdir())
    with pytest.raises(UploadError, match="empty"):
        store.save_upload(io.BytesIO(b""), "e.jpg")


def test_an_oversized_request_is_refused_before_it_is_read(stack: Stack) -> None:
    c = client_of(stack, "editor")
    limit = stack.config.max_upload_bytes + 1024 * 1024
    r = c.post(
        "/works",
        content=b"",
        headers={"content-length": str(limit + 1), "content-type": "multipart/form-data"},
    )
    assert r.status_code == 413


def test_works_registered_outside_the_platform_appear_and_search_is_literal(
    tmp_path: Path, photos: dict[str, NDArray[np.uint8]]
) -> None:
    store = WorkStore(tmp_path / "lib", tmp_path / "data", max_bytes=10 * 1024 * 1024)
    rgb = photos[sorted(photos)[3]]
    with open(write_image(tmp_path / "a.jpg", rgb), "rb") as fh:
        store.add(fh, "a.jpg", {"title": "100% pure_gold"})
    store.library.register(rgb[::2, ::2].copy(), "from-the-cli", {"title": "100x pureXgold"})
    assert {r.work_id for r in store.search()[0]} == {"from-the-cli", store.search("100%")[0][0].work_id}
    assert [r.title for r in store.search("100%")[0]] == ["100% pure_gold"]
    assert [r.title for r in store.search("pure_gold")[0]] == ["100% pure_gold"]
    page, more = store.search(limit=1)
    assert len(page) == 1 and more
    assert store.search(kind="audio") == ([], False)
    store.close()
