"""Read an evidence package safely: every byte of it is hostile until checked.

:func:`read_package` opens the zip, refuses unsafe or duplicate names, oversized entries
and truncated archives, and parses the manifest; file contents are read on demand with
the zip's CRC checked. It does not judge the evidence: :func:`crawlers.package.verify`
does.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawlers.errors import PackageError
from crawlers.package.manifest import ANCHOR, FORMAT, MANIFEST, RECEIPT, SIGNATURE, TIMESTAMP

#: Caps on what a package may hold.
MAX_ENTRIES = 20_000
MAX_ENTRY_BYTES = 8 << 30
MAX_SMALL_FILE = 64 << 20  # manifest, signature, receipt, logs: read whole into memory


def _safe_name(name: str) -> bool:
    return (
        bool(name)
        and not name.startswith("/")
        and "\\" not in name
        and "\0" not in name
        and all(part not in ("", ".", "..") for part in name.split("/"))
    )


@dataclass
class EvidencePackage:
    """An opened evidence package.

    Attributes
    ----------
    path : Path
    names : list of str
        The zip's file names in order.
    manifest_bytes : bytes
        ``evidence/manifest.json`` exactly as stored (what is signed and anchored).
    manifest : dict
        Parsed manifest: ``capture``, ``case``, ``match``, ``signer``, ``files``.
    """

    path: Path
    names: list[str]
    manifest_bytes: bytes
    manifest: dict[str, Any]
    _zip: zipfile.ZipFile = field(repr=False)

    @property
    def zip(self) -> zipfile.ZipFile:
        """The open zip (for streaming copies; read through :meth:`read` and :meth:`open`)."""
        return self._zip

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """Package path -> ``{"bytes", "sm3", "sha256"}`` as the manifest states."""
        files = self.manifest.get("files")
        return files if isinstance(files, dict) else {}

    def read(self, name: str, *, limit: int = MAX_ENTRY_BYTES) -> bytes:
        """The bytes of ``name``, CRC-checked; :class:`PackageError` when absent or damaged."""
        try:
            info = self._zip.getinfo(name)
        except KeyError:
            raise PackageError(f"{name}: not in the package") from None
        if info.file_size > limit:
            raise PackageError(f"{name}: {info.file_size} bytes exceeds {limit}")
        try:
            return self._zip.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise PackageError(f"{name}: unreadable ({exc})") from None

    def open(self, name: str) -> Any:
        """A binary stream of ``name`` (CRC checked at its end)."""
        try:
            return self._zip.open(name)
        except (KeyError, zipfile.BadZipFile, OSError) as exc:
            raise PackageError(f"{name}: cannot open ({exc})") from None

    def optional(self, name: str) -> bytes | None:
        """The bytes of a small optional file, or ``None`` when the package has none."""
        return self.read(name, limit=MAX_SMALL_FILE) if name in self.names else None

    @property
    def signature(self) -> dict[str, Any]:
        """``evidence/signature.json`` parsed."""
        return _json(self.read(SIGNATURE, limit=MAX_SMALL_FILE), SIGNATURE)

    @property
    def screenshot(self) -> bytes:
        """The full-page screenshot (PNG)."""
        return self.read("evidence/screenshot.png")

    @property
    def environment(self) -> dict[str, Any]:
        """The environment record."""
        return _json(
            self.read("evidence/environment.json", limit=MAX_SMALL_FILE), "evidence/environment.json"
        )

    @property
    def capture_log(self) -> list[dict[str, Any]]:
        """The timestamped capture log entries."""
        raw = self.read("evidence/capture-log.jsonl", limit=MAX_SMALL_FILE)
        try:
            return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PackageError(f"evidence/capture-log.jsonl: not JSON lines ({exc})") from None

    @property
    def receipt_bytes(self) -> bytes | None:
        """The chain receipt of the package digest, if added."""
        return self.optional(RECEIPT)

    @property
    def anchor(self) -> dict[str, Any] | None:
        """The digest's position in an anchored batch (``index``, ``path``), if added."""
        raw = self.optional(ANCHOR)
        return None if raw is None else _json(raw, ANCHOR)

    @property
    def timestamp_token(self) -> bytes | None:
        """The RFC 3161 time-stamp response, if added."""
        return self.optional(TIMESTAMP)

    def close(self) -> None:
        """Close the zip."""
        self._zip.close()

    def __enter__(self) -> EvidencePackage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json(raw: bytes, name: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{name}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise PackageError(f"{name}: not a JSON object")
    return doc


def read_package(path: str | Path) -> EvidencePackage:
    """Open an evidence package.

    Raises
    ------
    PackageError
        Not a zip, truncated, unsafe or duplicate entry names, too many or too large
        entries, no manifest, or a manifest that is not ours.
    """
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise PackageError(f"{path}: not a readable zip (truncated or damaged): {exc}") from None
    try:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise PackageError(f"{path}: {len(infos)} entries exceeds {MAX_ENTRIES}")
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise PackageError(f"{path}: duplicate file names in the zip")
        for info in infos:
            if not _safe_name(info.filename) or info.is_dir():
                raise PackageError(f"{path}: unsafe entry name {info.filename!r}")
            if info.file_size > MAX_ENTRY_BYTES:
                raise PackageError(f"{info.filename}: {info.file_size} bytes exceeds {MAX_ENTRY_BYTES}")
        pkg = EvidencePackage(path, names, b"", {}, zf)
        pkg.manifest_bytes = pkg.read(MANIFEST, limit=MAX_SMALL_FILE)
        pkg.manifest = _json(pkg.manifest_bytes, MANIFEST)
        if pkg.manifest.get("format") != FORMAT:
            raise PackageError(f"{MANIFEST}: not a {FORMAT} manifest")
        return pkg
    except BaseException:
        zf.close()
        raise
