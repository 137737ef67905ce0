"""The member organization's ownership keys (:class:`zkp.transfer.OwnerKey`), kept by the platform.

An ownership record on the ledger names a public owner key ``P = x·B``; whoever holds
``x`` can transfer the work. The platform makes a fresh key for every record it registers
or receives and keeps its secret under ``data_dir/owner-keys/<work>/<public>.key``:
SM4-GCM under a key derived (HMAC-SM3) from the member's SM2 private key, the one the
platform already holds to sign its transactions, with the work and the public key as
associated data. A copy of the directory without the member key opens nothing; a file
moved to another work's folder or renamed does not open. Files are written atomically
with mode 0600 before the transaction that names their key is sent.

The same derived secret keys :meth:`OwnerKeyStore.form_mac`, the tag that binds a
transfer form to the ownership record it was made for (a forged or stale form is
refused).

Examples
--------
>>> import tempfile, pathlib
>>> store = OwnerKeyStore(pathlib.Path(tempfile.mkdtemp()), b"k" * 32)
>>> key = store.new_key(b"w" * 32)
>>> store.get(b"w" * 32, key.public) == key, store.get(b"v" * 32, key.public)
(True, None)
"""

from __future__ import annotations

import hmac
from pathlib import Path

from chain.crypto import atomic_write, sm4
from chain.crypto.errors import CryptoError
from chain.crypto.sm3 import hmac_sm3
from rongxin.platform.config import PlatformError
from zkp.errors import ZkpError
from zkp.group import Point
from zkp.transfer import OwnerKey

_WRAP = b"rongxin/platform/owner-keys/v1"
_MAC = b"rongxin/platform/transfer-form/v1"
_MAX_FILE = 256


class OwnerKeyError(PlatformError):
    """An ownership key file exists but does not open (damaged, moved, another member key)."""


class OwnerKeyStore:
    """Ownership keys of this member, one sealed file per (work, public key).

    Parameters
    ----------
    directory : Path
        Where the key files live (``data_dir/owner-keys``).
    member_secret : bytes
        The member's SM2 private key bytes (only a derived key is kept).
    """

    def __init__(self, directory: Path, member_secret: bytes) -> None:
        if len(member_secret) < 32:
            raise ValueError("the member secret must be at least 32 bytes")
        self.directory = directory
        self._wrap = hmac_sm3(member_secret, _WRAP)[:16]
        self._mac = hmac_sm3(member_secret, _MAC)

    def _path(self, work: bytes, public: Point) -> Path:
        return self.directory / work.hex() / f"{public.encode().hex()}.key"

    def new_key(self, work: bytes) -> OwnerKey:
        """A fresh ownership key for ``work``, sealed to disk before it is returned."""
        key = OwnerKey.generate()
        path = self._path(work, key.public)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        aad = work + key.public.encode()
        atomic_write(path, sm4.seal(self._wrap, key.to_bytes(), aad), 0o600)
        return key

    def get(self, work: bytes, public: Point) -> OwnerKey | None:
        """The key of ``work`` whose public half is ``public``, or ``None`` if this member
        never held it.

        Raises
        ------
        OwnerKeyError
            The file is there but does not open.
        """
        path = self._path(work, public)
        try:
            with open(path, "rb") as fh:
                blob = fh.read(_MAX_FILE + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise OwnerKeyError(f"cannot read the ownership key of this work: {exc}") from None
        if len(blob) > _MAX_FILE:
            raise OwnerKeyError("the ownership key file of this work is damaged (too large)")
        try:
            key = OwnerKey.from_bytes(sm4.open_sealed(self._wrap, blob, work + public.encode()))
        except (CryptoError, ZkpError):
            raise OwnerKeyError(
                "the ownership key file of this work does not open with this member's key "
                "(damaged, moved, or written under another member key)"
            ) from None
        if key.public != public:
            raise OwnerKeyError("the ownership key file of this work holds another key than its name says")
        return key

    def held(self, work: bytes) -> int:
        """How many key files this member keeps for ``work``."""
        folder = self.directory / work.hex()
        return sum(1 for p in folder.glob("*.key")) if folder.is_dir() else 0

    def form_mac(self, *fields: str) -> str:
        """A hex tag over ``fields`` (a form's hidden values), keyed by the member secret."""
        return hmac_sm3(self._mac, "\x1f".join(fields).encode()).hex()

    def form_mac_ok(self, tag: str, *fields: str) -> bool:
        """Whether ``tag`` is :meth:`form_mac` of ``fields`` (constant time)."""
        return hmac.compare_digest(tag.encode(), self.form_mac(*fields).encode())


def store_for(data_dir: Path, member_secret: bytes | None) -> OwnerKeyStore | None:
    """The store under ``data_dir/owner-keys`` (``None`` without a member key)."""
    if member_secret is None:
        return None
    return OwnerKeyStore(data_dir / "owner-keys", member_secret)
