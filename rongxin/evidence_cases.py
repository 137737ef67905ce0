"""Evidence for the cases of a scan: each case without a package is captured once.

``rongxin evidence capture-cases`` and ``rongxin scan --capture`` both run
:func:`capture_cases`: the page of every case that has no package yet is captured into
``OUT/case-<id>/`` (:func:`rongxin.evidence.collect_evidence` through the ``collect``
callable), optionally kept in the vault, and the package is recorded with the case in the
scan database. One case's failure is reported in its :class:`CaseResult` and the others
go on.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chain.errors import ChainError
from crawlers.errors import CrawlError
from crawlers.store import Case, ScanStore
from rongxin.errors import RongxinError

if TYPE_CHECKING:
    from rongxin.evidence import Evidence

#: The package of a case inside the output directory.
PACKAGE = "evidence.wacz"

#: ``collect(case, directory)``: capture the case's page into the new directory.
Collect = Callable[[Case, Path], "Evidence"]
#: ``keep(package, directory)``: store the package in the vault; the vault record.
Keep = Callable[[Path, Path], dict[str, Any]]


@dataclass
class CaseResult:
    """The outcome of one case's capture: a package, or the error that stopped it."""

    case: int
    url: str
    package: str | None = None
    package_digest_sm3: str | None = None
    anchored: bool = False
    vault_object: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the package was made (and kept, when asked)."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The fields that are set, as a JSON-ready dict."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def case_dir(out: Path, case_id: int) -> Path:
    """Where the package of a case goes: ``OUT/case-<id>/``."""
    return out / f"case-{case_id}"


def pending_cases(scan: Path, out: Path) -> tuple[list[Case], int]:
    """The cases of ``scan`` with no package yet, and how many cases it holds in all.

    A case has its package when ``OUT/case-<id>/evidence.wacz`` exists, or when the scan
    database names a package file that exists.

    Raises
    ------
    crawlers.errors.ScanStoreError
        ``scan`` holds no scan database.
    """
    store = ScanStore(scan)
    try:
        cases = store.cases()
    finally:
        store.close()

    def captured(c: Case) -> bool:
        recorded = c.package is not None and Path(c.package["path"]).is_file()
        return recorded or (case_dir(out, c.id) / PACKAGE).is_file()

    return [c for c in cases if not captured(c)], len(cases)


def capture_cases(
    scan: Path, cases: list[Case], out: Path, collect: Collect, keep: Keep | None
) -> Iterator[CaseResult]:
    """Capture each case into ``OUT/case-<id>/`` and record its package in the scan database.

    A directory left by an interrupted capture is removed and the case captured again.
    Capture, anchoring, vault and database errors end that case's capture (its result
    holds the error); the next case goes on. A package that was written but could not be
    kept in the vault is recorded with the case all the same.
    """
    for case in cases:
        target = case_dir(out, case.id)
        result = CaseResult(case.id, case.page_url)
        try:
            if target.exists():
                shutil.rmtree(target)
            ev = collect(case, target)
        except (CrawlError, ChainError, OSError) as exc:
            result.error = f"evidence capture of {case.page_url} failed: {exc}"
            yield result
            continue
        result.package = str(ev.package.resolve())
        result.package_digest_sm3 = ev.digest.hex()
        result.anchored = ev.receipt is not None
        try:
            if keep is not None:
                result.vault_object = str(keep(ev.package, target)["vault_object"])
        except RongxinError as exc:
            result.error = f"the package is written but not kept in the vault: {exc}"
        try:
            store = ScanStore(scan)
            try:
                store.record_package(case.id, result.package, ev.digest)
            finally:
                store.close()
        except CrawlError as exc:
            result.error = f"the package is written but not recorded with the case: {exc}"
        yield result
