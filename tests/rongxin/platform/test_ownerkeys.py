"""The platform's ownership keys: sealed under the member key, bound to work and public
key; moved, damaged, oversized files and another member's key are refused; form tags."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rongxin.platform.ownerkeys import OwnerKeyError, OwnerKeyStore

WORK, OTHER = b"\x01" * 32, b"\x02" * 32


def test_keys_open_only_where_and_with_what_they_were_sealed(tmp_path: Path) -> None:
    store = OwnerKeyStore(tmp_path, os.urandom(32))
    key = store.new_key(WORK)
    path = tmp_path / WORK.hex() / f"{key.public.encode().hex()}.key"
    assert path.stat().st_mode & 0o777 == 0o600 and key.to_bytes() not in path.read_bytes()
    assert store.get(WORK, key.public) == key and store.held(WORK) == 1 and store.held(OTHER) == 0
    assert store.get(WORK, store.new_key(OTHER).public) is None
    with pytest.raises(OwnerKeyError, match="does not open"):
        OwnerKeyStore(tmp_path, os.urandom(32)).get(WORK, key.public)  # another member key
    moved = tmp_path / OTHER.hex() / path.name
    shutil.copy(path, moved)
    with pytest.raises(OwnerKeyError, match="does not open"):
        store.get(OTHER, key.public)
    for damaged in (path.read_bytes()[:-1], path.read_bytes()[:10], b"", b"x" * 300):
        path.write_bytes(damaged)
        with pytest.raises(OwnerKeyError):
            store.get(WORK, key.public)
    with pytest.raises(ValueError):
        OwnerKeyStore(tmp_path, b"short")


def test_form_tags_bind_every_field(tmp_path: Path) -> None:
    store = OwnerKeyStore(tmp_path, os.urandom(32))
    tag = store.form_mac("transfer", "ab", "0", "02cd", "li")
    assert store.form_mac_ok(tag, "transfer", "ab", "0", "02cd", "li")
    assert not store.form_mac_ok(tag, "transfer", "ab", "1", "02cd", "li")
    assert not store.form_mac_ok(tag, "transfer", "ab", "0", "02cd", "wu")
    assert not store.form_mac_ok(
        tag[:-1] + ("1" if tag[-1] == "0" else "0"), "transfer", "ab", "0", "02cd", "li"
    )
    assert not OwnerKeyStore(tmp_path, os.urandom(32)).form_mac_ok(tag, "transfer", "ab", "0", "02cd", "li")
