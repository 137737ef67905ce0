"""Lazy package front doors (PEP 562), shared by every package of the project.

A package lists its public names and the modules that define them; a name is imported on
first access, so ``import chain`` (or ``forensics``, ``privacy`` …) stays cheap.

Examples
--------
>>> getattr_, dir_ = lazy_exports("chain", {"merkle_root": "chain.merkle"}, ["merkle_root"])
>>> getattr_("merkle_root") is __import__("chain.merkle").merkle.merkle_root
True
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, sources: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``sources`` maps a public name
    to the module that defines it; a loaded name is kept in the package's namespace."""

    def module_getattr(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[package], name, value)
        return value

    def module_dir() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return module_getattr, module_dir
