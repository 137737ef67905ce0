"""pytest set-up for the whole tree: the packages' doctests and ``tests/``.

The ledger's hot modules may run compiled (``chain._native``). A compiled module keeps no
docstrings that :mod:`doctest` can find, and its ``__file__`` is the extension in
``.native/``. So their doctests are read from the source file, as always, and run against
the compiled module: each example sees the compiled module's names, which is the code that
runs.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import pytest
from _pytest.doctest import (
    DoctestItem,
    DoctestModule,
    _get_checker,
    _get_continue_on_failure,
    _get_runner,
    get_optionflags,
)

from chain import _native

ROOT = Path(__file__).resolve().parent

# pytest's own doctest collector also visits those files: it then imports the compiled
# module (whose ``__file__`` is not the source) and finds nothing in it, instead of failing
os.environ.setdefault("PY_IGNORE_IMPORTMISMATCH", "1")


class CompiledDoctests(DoctestModule):
    """The doctests of a compiled module's source, run in the compiled module's namespace."""

    module_name: str

    def _getobj(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    def collect(self) -> Iterable[DoctestItem]:
        compiled = self.obj
        spec = importlib.util.spec_from_file_location(f"_doctest_source.{self.module_name}", self.path)
        assert spec is not None and spec.loader is not None
        source = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = source  # doctest resolves the objects' modules by name
        try:
            spec.loader.exec_module(source)
            tests = doctest.DocTestFinder().find(source, self.module_name)
        finally:
            del sys.modules[spec.name]
        runner = _get_runner(
            verbose=False,
            optionflags=get_optionflags(self.config),
            checker=_get_checker(),
            continue_on_failure=_get_continue_on_failure(self.config),
        )
        for test in tests:
            if test.examples:
                test.globs = dict(vars(compiled))
                yield DoctestItem.from_parent(self, name=test.name, runner=runner, dtest=test)


def _compiled_name(path: Path) -> str | None:
    if not _native.STATUS.startswith("native:") or path.suffix != ".py":
        return None
    try:
        parts = path.resolve().relative_to(ROOT).with_suffix("").parts
    except ValueError:
        return None
    name = ".".join(parts)
    return name if name in _native.MODULES else None


@pytest.hookimpl(tryfirst=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    name = _compiled_name(file_path)
    if name is None or not parent.config.getoption("doctestmodules", False):
        return None
    collector = CompiledDoctests.from_parent(parent, path=file_path)
    collector.module_name = name
    return collector
