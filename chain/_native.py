"""Load the mypyc-compiled build of the ledger's hot modules, when it matches the sources.

``scripts/native.py`` compiles :data:`MODULES` into ``.native/`` beside the packages and
records the SHA-256 of each source it compiled. :func:`install` (run by ``import chain``)
puts a finder in front of the import system that serves those modules from the build, but
only when the build is for this interpreter and every source is unchanged: an edited
module, a build for another Python, a damaged manifest or ``RONGXIN_NATIVE=0`` all leave
the pure Python modules in charge, and :data:`STATUS` says why.

The compiled modules are the same code: the same tests pass on both (``make test`` runs
the build; ``RONGXIN_NATIVE=0`` runs the source).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["BUILD_DIR", "ENV", "MODULES", "STATUS", "install", "stale_reason"]

MODULES = ("chain.codec", "chain.executor", "chain.mempool", "chain.state", "chain.state_tree")
"""The compiled modules: pure, fully typed, and where a node's Python time goes."""

LIBRARIES = ("chain.crypto._verify_many",)
"""Plain C shared libraries of the build (loaded with ``ctypes`` by their module's owner,
:func:`library`), each from the ``.c`` file of its name."""

BUILD_DIR = ".native"
"""The build's directory, beside the packages (not in version control)."""

MANIFEST = "manifest.json"
ENV = "RONGXIN_NATIVE"
"""``0`` in the environment: run the pure Python modules."""

STATUS = "python: not looked for yet"
"""What :func:`install` found: ``native: …`` or ``python: <reason>``."""

_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


_CURRENT: Path | None = None  # the build, once install() found it current


def source_of(root: Path, name: str) -> Path:
    """The source file of module or library ``name`` under ``root``."""
    return root.joinpath(*name.split(".")).with_suffix(".c" if name in LIBRARIES else ".py")


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of the source of each compiled module and library under ``root``."""
    return {
        name: hashlib.sha256(source_of(root, name).read_bytes()).hexdigest() for name in MODULES + LIBRARIES
    }


def _interpreter() -> str:
    return f"{sys.implementation.cache_tag} {_SUFFIX}"


def write_manifest(out: Path, sources: dict[str, str]) -> None:
    """Record what the build in ``out`` was compiled from and for."""
    doc = {"interpreter": _interpreter(), "modules": sources}
    (out / MANIFEST).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def extension_of(out: Path, name: str) -> Path:
    """The compiled extension of module ``name`` (or the shared library of ``name`` in
    :data:`LIBRARIES`) in the build ``out``."""
    return source_of(out, name).with_suffix(".so" if name in LIBRARIES else _SUFFIX)


def library(name: str) -> Path | None:
    """The built shared library ``name`` (one of :data:`LIBRARIES`) when the build is
    current and in use, else ``None`` (the caller then does without it)."""
    return None if _CURRENT is None else extension_of(_CURRENT, name)


def _files(out: Path) -> dict[str, Path]:
    files = {name: extension_of(out, name) for name in MODULES + LIBRARIES}
    # mypyc puts the code of all the modules in one shared library that each module's
    # small extension imports by its top-level name
    for lib in out.glob("*__mypyc" + _SUFFIX):
        files[lib.name.removesuffix(_SUFFIX)] = lib
    return files


def stale_reason(out: Path, root: Path) -> str | None:
    """Why the build in ``out`` cannot serve the sources under ``root`` (``None``: it can)."""
    try:
        doc = json.loads((out / MANIFEST).read_text())
    except FileNotFoundError:
        return f"no build in {out}"
    except (OSError, ValueError) as exc:
        return f"the build's manifest is unreadable ({exc})"
    if not isinstance(doc, dict) or doc.get("interpreter") != _interpreter():
        return "the build is for another interpreter"
    if doc.get("modules") != digests(root):
        return "sources changed since the build"
    files = _files(out)
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing or len(files) <= len(MODULES) + len(LIBRARIES):
        return f"the build is incomplete ({', '.join(missing) or 'no shared library'})"
    return None


class _Finder(importlib.abc.MetaPathFinder):
    """Serves the compiled modules from the build's files."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, str(file), loader=loader)


def install(root: Path | None = None) -> str:
    """Serve :data:`MODULES` from the build when it is current; returns :data:`STATUS`."""
    global STATUS, _CURRENT
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return STATUS
    root = Path(__file__).resolve().parents[1] if root is None else root
    if os.environ.get(ENV, "1") == "0":
        STATUS = f"python: {ENV}=0"
        return STATUS
    try:
        reason = stale_reason(root / BUILD_DIR, root)
    except OSError as exc:
        reason = f"cannot read the sources ({exc})"
    if reason is not None:
        STATUS = f"python: {reason}"
        return STATUS
    if any(name in sys.modules for name in MODULES):
        STATUS = "python: the modules were imported before the build could be installed"
        return STATUS
    files = _files(root / BUILD_DIR)
    sys.meta_path.insert(0, _Finder({n: p for n, p in files.items() if n not in LIBRARIES}))
    _CURRENT = root / BUILD_DIR
    STATUS = f"native: {len(MODULES)} modules compiled by mypyc, {len(LIBRARIES)} C library"
    return STATUS
