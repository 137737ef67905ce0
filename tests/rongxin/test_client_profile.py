"""Member client profiles opened by services, without a prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain.crypto import PrivateKey
from chain.crypto.keyfile import save_private_key
from chain.types import Genesis
from rongxin.client_profile import ProfileError, open_unattended, write_profile


def _profile(tmp_path: Path, password_file: Path | None) -> Path:
    root = PrivateKey.generate().public_key.to_bytes()
    (tmp_path / "genesis.cbor").write_bytes(Genesis("Test consortium", "test-chain", root, ()).to_bytes())
    path = tmp_path / "member.client.toml"
    write_profile(
        path,
        "http://127.0.0.1:1",
        tmp_path / "genesis.cbor",
        tmp_path / "member.key",
        tmp_path / "member.cert.json",
        password_file,
    )
    return path


def test_a_service_without_a_password_is_told_where_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RONGXIN_KEY_PASSWORD", raising=False)
    with pytest.raises(ProfileError, match="the platform needs the key password without a prompt"):
        open_unattended(_profile(tmp_path, None), "the platform")


def test_a_wrong_password_or_a_broken_profile_is_a_profile_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_private_key(PrivateKey.generate(), tmp_path / "member.key", "right", scrypt_n=2**10)
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "not-the-key-password-7391")
    with pytest.raises(ProfileError, match=r"member\.client\.toml: ") as err:
        open_unattended(_profile(tmp_path, None), "the platform")
    assert "wrong password" in str(err.value) and "7391" not in str(err.value)  # never repeated
    (tmp_path / "pw").write_text("")  # an empty password file has no first line
    with pytest.raises(ProfileError, match="cannot read the key password file"):
        open_unattended(_profile(tmp_path, tmp_path / "pw"), "the platform")
