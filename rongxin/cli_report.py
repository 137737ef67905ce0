"""``rongxin report CASE``: the infringement report of a scan case, as HTML and PDF.

The case comes from a scan's database (``rongxin cases list``), the work from the
forensics library, the two media files from the caller (``--work-file``, ``--copy``;
each checked against the SM3 the library or the scan recorded; the copy is taken from
the evidence package when one is given), the work's registration receipt from
``--work-receipt`` and the capture from ``--package`` (both checked against ``--genesis``
before they are shown). When no evidence package is given, the report says so. See
``docs/report.md``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from crawlers.errors import CrawlError
from crawlers.store import Case, ScanStore
from forensics.errors import ForensicsError
from forensics.report.model import (
    CaptureSummary,
    CaseInfo,
    ReceiptSummary,
    ReportError,
    ReportInput,
    WorkInfo,
    evidence_from_json,
)
from rongxin.cli_common import Force, err_console, overwrite_guard, write_output
from rongxin.cli_common import fail as _fail
from rongxin.errors import RongxinError

FORMATS = ("html", "pdf")


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written."""

    html: Path | None
    pdf: Path | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def receipt_summary(receipt: Path, genesis: Path, subject: str) -> ReceiptSummary:
    """Check a ledger receipt offline against the genesis and summarize it for a report.

    Raises
    ------
    RongxinError
        The files cannot be read, or the receipt does not verify (the check is named).
    """
    from chain.consensus.messages import QuorumCertificate
    from chain.errors import ChainError
    from chain.receipt import Receipt, ReceiptError, verify_receipt
    from chain.types import Genesis, ValidationError

    try:
        g = Genesis.from_bytes(genesis.read_bytes())
        r = Receipt.from_bytes(receipt.read_bytes())
        info = verify_receipt(r, g)
        qc = QuorumCertificate.from_obj(r.qc)
    except OSError as exc:
        raise RongxinError(f"cannot read {exc.filename}: {exc.strerror}") from None
    except ReceiptError as exc:
        raise RongxinError(f"the receipt {receipt.name} is INVALID ({exc.reason}): {exc.detail}") from None
    except (ChainError, ValidationError, ValueError) as exc:
        raise RongxinError(
            f"the receipt {receipt.name} or genesis {genesis.name} is malformed: {exc}"
        ) from None
    anchored = info.transaction.payload.get("digest")
    when = datetime.fromtimestamp(info.block_timestamp_ms / 1000, UTC)
    return ReceiptSummary(
        subject=subject,
        chain_id=g.chain_id,
        height=info.height,
        block_time=when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        block_hash=info.block_hash.hex(),
        tx_id=info.tx_id.hex(),
        sender=info.sender.subject,
        validators=tuple(author for author, _ in qc.signatures),
        digest=anchored.hex() if isinstance(anchored, bytes) else "",
        verified=True,
        file_name=receipt.name,
    )


def _genesis(path: Path) -> Any:
    from chain.errors import ChainError
    from chain.types import Genesis, ValidationError

    try:
        return Genesis.from_bytes(path.read_bytes())
    except OSError as exc:
        raise RongxinError(f"cannot read {path}: {exc.strerror}") from None
    except (ChainError, ValidationError, ValueError) as exc:
        raise RongxinError(f"{path.name} is not a genesis document: {exc}") from None


def load_case(scan_dir: Path, case_id: int) -> Case:
    """Case ``case_id`` of the scan in ``scan_dir``.

    Raises
    ------
    RongxinError
        No scan there, an unreadable database, or no such case.
    """
    try:
        store = ScanStore(scan_dir)
    except CrawlError as exc:
        raise RongxinError(str(exc)) from None
    try:
        case = store.case(case_id)
    except (sqlite3.DatabaseError, ValueError) as exc:  # a damaged file, or a case's JSON tampered with
        raise RongxinError(f"the scan database in {scan_dir} cannot be read: {exc}") from None
    finally:
        store.close()
    if case is None:
        raise RongxinError(
            f"no case {case_id} in {scan_dir}; list them with `rongxin cases list --out {scan_dir}`"
        )
    return case


def report_input(
    case: Case,
    library: Path,
    *,
    work_file: Path | None = None,
    copy_file: Path | None = None,
    capture: CaptureSummary | None = None,
    work_receipt: ReceiptSummary | None = None,
    issuer: str = "",
    verify_url: str = "",
) -> ReportInput:
    """The report's input for ``case``: the work read from ``library``, the files checked.

    Raises
    ------
    RongxinError
        No library, the case's work is not in it, malformed stored evidence, or a file
        that is not the recorded one.
    """
    from forensics.library import Library
    from forensics.report.build import check_file

    try:
        with Library.open(library, readonly=True) as lib:
            reg = lib.get(case.work_id)
    except ForensicsError as exc:
        raise RongxinError(str(exc)) from None
    if reg is None:
        raise RongxinError(f"work {case.work_id!r} of case {case.id} is not in the library {library}")
    stored: dict[str, Any] = case.evidence if isinstance(case.evidence, dict) else {}
    threshold = stored.get("threshold")
    try:
        evidence = evidence_from_json(case.kind, stored.get("evidence"))
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
            raise ReportError("the case records no threshold")
        if work_file is not None:
            check_file(work_file, reg.content_digest.hex(), "work")
        if copy_file is not None:
            check_file(copy_file, case.content_digest.hex(), "copy")
    except ReportError as exc:
        raise RongxinError(f"case {case.id}: {exc}") from None
    stream = stored.get("query_stream")
    info = CaseInfo(
        case_id=str(case.id),
        page_url=case.page_url,
        media_url=case.media_url,
        final_url=case.final_url,
        found_at=case.found_at,
        content_sm3=case.content_digest.hex(),
        robots_obeyed=case.robots_obeyed,
        score=case.score,
        threshold=float(threshold),
        query_stream=stream if isinstance(stream, str) else "",
    )
    work = WorkInfo(
        reg.work_id,
        reg.kind,
        reg.registered_at or "",
        reg.content_digest.hex(),
        reg.fingerprint_digest.hex(),
        dict(reg.metadata),
    )
    return ReportInput(
        info,
        work,
        evidence,
        work_file=work_file,
        copy_file=copy_file,
        capture=capture,
        work_receipt=work_receipt,
        issuer=issuer,
        generated_at=_now(),
        verify_url=verify_url,
    )


def write_report(
    inp: ReportInput, out: Path, formats: tuple[str, ...], *, lang: str = "zh", force: bool = False
) -> ReportFiles:
    """Write ``out.html`` and/or ``out.pdf`` (``out`` without a suffix).

    Raises
    ------
    RongxinError
        The report cannot be built or the PDF rendered.
    """
    from forensics.report.build import build_html

    try:
        html = build_html(inp, lang)
    except ReportError as exc:
        raise RongxinError(str(exc)) from None
    html_path = pdf_path = None
    out.parent.mkdir(parents=True, exist_ok=True)
    if "html" in formats:
        html_path = out.with_name(out.name + ".html")
        write_output(html_path, html.encode("utf-8"), force=force, mode=0o644)
    if "pdf" in formats:
        from rongxin.report_pdf import render_pdf

        pdf_path = out.with_name(out.name + ".pdf")
        write_output(pdf_path, render_pdf(html), force=force, mode=0o644)
    return ReportFiles(html_path, pdf_path)


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise _fail(f"--format takes html, pdf or html,pdf (not {text!r})")
    return chosen


def report(
    case_id: Annotated[int, typer.Argument(help="The case id (from `rongxin cases list`).", metavar="CASE")],
    scan: Annotated[Path, typer.Option("--scan", "-s", help="The scan directory holding the case.")],
    library: Annotated[Path, typer.Option("--library", "-l", help="The work library directory.")],
    formats: Annotated[str, typer.Option("--format", "-f", help="html, pdf, or html,pdf.")] = "html,pdf",
    lang: Annotated[str, typer.Option(help="Report language: zh (Chinese, default) or en.")] = "zh",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output path without suffix (default: SCAN/reports/case-CASE)."),
    ] = None,
    work_file: Annotated[
        Path | None, typer.Option("--work-file", help="The registered work's file (checked by its SM3).")
    ] = None,
    copy_file: Annotated[
        Path | None, typer.Option("--copy", help="The found copy's file (checked against the case's SM3).")
    ] = None,
    work_receipt: Annotated[
        Path | None, typer.Option("--work-receipt", help="Ledger receipt of the work's registration.")
    ] = None,
    genesis: Annotated[
        Path | None,
        typer.Option(help="The chain's genesis document, to check receipts before they are shown."),
    ] = None,
    package: Annotated[
        Path | None,
        typer.Option("--package", help="The case's evidence package (.wacz), verified before it is shown."),
    ] = None,
    issuer: Annotated[str, typer.Option(help="The center issuing the report.")] = "",
    verify_url: Annotated[
        str, typer.Option("--verify-url", help="URL the QR code leads to (default: the offline commands).")
    ] = "",
    force: Force = False,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            "--vault",
            help="Store the written files in the member's off-chain vault through its node (--client).",
        ),
    ] = False,
    client: Annotated[
        Path | None,
        typer.Option("--client", help="Client profile for --keep (else $RONGXIN_CLIENT).", metavar="FILE"),
    ] = None,
) -> None:
    """Write the infringement report of a scan case (HTML and PDF, Chinese by default).

    The report shows the case, the registered work and the copy side by side with the
    match evidence drawn (give --work-file and --copy: a scan keeps only digests), every
    file's SM3 and SHA-256, the receipts, a QR code and how to verify it all offline.
    Prints the written paths as JSON (with --keep, also each file's vault object).
    """
    chosen = _formats(formats)
    if lang not in ("zh", "en"):
        raise _fail(f"--lang takes zh or en (not {lang!r})")
    target = out if out is not None else scan / "reports" / f"case-{case_id}"
    for fmt in chosen:
        overwrite_guard(target.with_name(f"{target.name}.{fmt}"), force)
    ledger = None
    if keep:  # the profile is checked before anything is written
        from rongxin.cli_common import member_client

        cli, genesis_doc, _ = member_client(client)
        ledger = (cli, genesis_doc)
    try:
        case = load_case(scan, case_id)
        receipt = None
        if (work_receipt is not None or package is not None) and genesis is None:
            raise RongxinError(
                "--work-receipt and --package need --genesis: a receipt or package is shown only once checked"
            )
        if work_receipt is not None and genesis is not None:
            receipt = receipt_summary(
                work_receipt, genesis, "work registration" if lang == "en" else "作品登记"
            )
        with tempfile.TemporaryDirectory(prefix="rongxin-report-") as tmp:
            capture = None
            if package is not None and genesis is not None:
                from rongxin.report_package import capture_summary, extract_copy

                capture = capture_summary(package, _genesis(genesis), case_id=case_id)
                if copy_file is None:
                    copy_file = extract_copy(package, case.content_digest.hex(), Path(tmp))
            inp = report_input(
                case,
                library,
                work_file=work_file,
                copy_file=copy_file,
                capture=capture,
                work_receipt=receipt,
                issuer=issuer,
                verify_url=verify_url,
            )
            files = write_report(inp, target, chosen, lang=lang, force=force)
    except RongxinError as exc:
        if ledger is not None:
            ledger[0].close()
        raise _fail(str(exc)) from None
    if work_file is None or copy_file is None:
        err_console.print(
            "note: without the work's file and the copy's (--work-file; --copy or a --package holding it) "
            "the report shows digests but no side-by-side figures"
        )
    result: dict[str, Any] = {
        "html": str(files.html) if files.html else None,
        "pdf": str(files.pdf) if files.pdf else None,
    }
    if ledger is not None:
        result["vault"] = _keep(ledger, [p for p in (files.html, files.pdf) if p is not None])
    sys.stdout.write(json.dumps(result) + "\n")


def _keep(ledger: tuple[Any, Any], paths: list[Path]) -> dict[str, Any]:
    """Store the written files in the member's vault; their records by format."""
    from rongxin.vault_keep import keep_files

    cli, genesis = ledger
    try:
        rows = keep_files(cli, genesis, paths)
    except RongxinError as exc:
        raise _fail(f"the report is written but not kept: {exc}") from None
    finally:
        cli.close()
    return {Path(r["file"]).suffix.lstrip("."): r for r in rows}
