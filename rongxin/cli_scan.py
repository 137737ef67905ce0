"""``rongxin scan SEED...``, ``rongxin scan resume DIR`` and ``rongxin cases list|show``.

A scan crawls from its seeds, fetches the media it finds and identifies them against a
work library; every hit is a case in the scan directory's database (``DIR/scan.sqlite``,
or a PostgreSQL schema with ``--db postgresql://...``). See ``docs/scanning.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from crawlers.errors import CrawlError
from crawlers.fetch import DEFAULT_AGENT
from crawlers.scan import ScanConfig, Scanner
from crawlers.store import ScanStore
from forensics.library import CATALOGUE
from rongxin.cli_common import console, err_console
from rongxin.cli_common import fail as _fail
from rongxin.cli_evidence import (
    CaseSettings,
    ClientOption,
    KeepOption,
    NoAnchorOption,
    NoRecordingOption,
    PlayOption,
    Signer,
    TsaOption,
    capture_scan_cases,
)
from rongxin.scan_progress import ScanProgress

cases_app = typer.Typer(help="List and show the cases found by a scan.", no_args_is_help=True)

OutOption = Annotated[Path, typer.Option("--out", "-o", help="The scan directory.")]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="RONGXIN_SCAN_DB",
        help="postgresql://user@host:port/database for a scan database on PostgreSQL (default: "
        "SQLite in the scan directory); also to give the password when opening a PostgreSQL scan.",
    ),
]


def scan(
    seeds: Annotated[
        list[str] | None,
        typer.Argument(help="Seed URLs; or `resume DIR` to finish an interrupted scan."),
    ] = None,
    library: Annotated[
        Path | None, typer.Option("--library", "-l", help="The work library directory.")
    ] = None,
    scope: Annotated[str, typer.Option(help="Links followed: page, prefix, host or domain.")] = "host",
    depth: Annotated[int, typer.Option(min=0, help="Link hops followed from a seed.")] = 3,
    max_pages: Annotated[int, typer.Option("--max-pages", min=1, help="Most pages fetched.")] = 1000,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="New directory for the scan's database.")
    ] = None,
    delay: Annotated[float, typer.Option(min=0.0, help="Seconds between requests to one site.")] = 1.0,
    agent: Annotated[str, typer.Option(help="User-agent product token.")] = DEFAULT_AGENT,
    contact: Annotated[str, typer.Option(help="Operator contact (URL or mail) sent in the user agent.")] = "",
    ignore_robots: Annotated[
        bool, typer.Option("--ignore-robots", help="Do not obey robots.txt (recorded in every case).")
    ] = False,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="An internal address or network the scan may reach (repeatable)."),
    ] = None,
    request_seconds: Annotated[float, typer.Option(min=0.1, help="Time cap of one fetch.")] = 30.0,
    sitemap: Annotated[
        list[str] | None,
        typer.Option(
            "--sitemap", help="A sitemap, sitemap index, RSS or Atom feed to seed from (repeatable)."
        ),
    ] = None,
    render: Annotated[
        str, typer.Option(help="Headless browser for script-built pages: auto, never or always.")
    ] = "auto",
    host_pages: Annotated[
        int, typer.Option("--host-pages", min=1, help="Most pages fetched from one site.")
    ] = 10_000,
    host_mib: Annotated[
        int, typer.Option("--host-mib", min=1, help="Most MiB of bodies taken from one site.")
    ] = 2048,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            help="Spread the scan over Dask workers: tcp://HOST:PORT or tls://HOST:PORT of a scheduler, "
            "or local[:N] for a cluster on this machine.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Workers of a local Dask cluster (implies --dask local)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    capture: Annotated[
        bool,
        typer.Option(
            "--capture",
            help="Capture court evidence of every new case after the scan (see `evidence --help`).",
        ),
    ] = False,
    evidence_out: Annotated[
        Path | None,
        typer.Option("--evidence-out", help="Directory of the --capture packages (default DIR/evidence)."),
    ] = None,
    client: ClientOption = None,
    tsa: TsaOption = None,
    play_seconds: PlayOption = 10.0,
    no_recording: NoRecordingOption = False,
    no_anchor: NoAnchorOption = False,
    keep: KeepOption = False,
    db: DbOption = None,
) -> None:
    """Scan web pages for copies of registered works; prints a JSON summary at the end.

    Pages are followed within --scope and --depth from the SEEDs; images and audio found on
    them are fetched, fingerprinted and identified against --library. robots.txt is obeyed,
    internal addresses are refused unless --allow names them, and one site gets one request
    per --delay seconds. `rongxin scan resume DIR` finishes a scan that was interrupted.

    With --capture, the page of every case without an evidence package is then captured,
    signed and anchored into --evidence-out/case-<id>/ (as `rongxin evidence capture-cases`
    does), with the browser allowed what --allow allows; the summary lists the packages and
    the failures, and the exit status is 1 when a capture failed (the scan's cases stay).

    With --dask (or --workers) hosts are spread over Dask workers, one worker per host at a
    time, and identification runs as Dask tasks; the scan database stays in this process.
    """
    seeds = list(seeds or [])
    if workers is not None and dask is None:
        dask = "local"
    if not capture and (evidence_out or client or tsa or no_recording or no_anchor or keep):
        raise _fail("--evidence-out, --client, --tsa, --no-recording, --no-anchor and --keep need --capture")
    if keep and no_anchor:
        raise _fail("--keep stores the packages through the member's node: drop --no-anchor")
    # the member's key is opened first: a broken profile stops the scan before it starts
    signer = Signer.open(client, no_anchor, as_json=False) if capture else None
    try:
        summary, directory = _scan(seeds, library, out, quiet, {
            "sitemaps": list(sitemap or []), "library": str(library), "scope": scope, "depth": depth,
            "max_pages": max_pages, "delay": delay, "agent": agent, "contact": contact,
            "obey_robots": not ignore_robots, "allow": list(allow or []), "request_seconds": request_seconds,
            "render": render, "host_pages": host_pages, "host_bytes": host_mib * 1024 * 1024,
        }, db, dask, workers)  # fmt: skip
        failed = 0
        if signer is not None:
            settings = CaseSettings(allow, tsa, play_seconds, no_recording, keep)
            summary["evidence"] = _capture(
                signer, directory, evidence_out or directory / "evidence", settings
            )
            failed = len(summary["evidence"]["failed"])
    finally:
        if signer is not None:
            signer.close()
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    if failed:
        raise typer.Exit(1)


def _scan(
    seeds: list[str],
    library: Path | None,
    out: Path | None,
    quiet: bool,
    settings: dict[str, Any],
    db: str | None = None,
    dask: str | None = None,
    workers: int | None = None,
) -> tuple[dict[str, Any], Path]:
    """Run (or resume) the scan (``settings``: the :class:`ScanConfig` of a new one but its
    seeds; ``db``: a PostgreSQL URI for the scan database; ``dask``: a Dask scheduler or
    ``local[:N]``); its summary and directory."""

    def make(out_dir: Path, cfg: ScanConfig | None) -> Scanner:
        if dask is None:
            return Scanner(out_dir, cfg, db=db)
        from crawlers.dask_scan import DaskScanner  # Dask is imported only when asked for

        return DaskScanner(out_dir, cfg, dask=dask, workers=workers, db=db)

    try:
        if seeds[:1] == ["resume"]:
            if len(seeds) != 2:
                raise _fail("usage: rongxin scan resume DIR")
            directory = Path(seeds[1])
            scanner = make(directory, None)
        else:
            if library is None or out is None:
                raise _fail("a new scan needs --library and --out")
            config = ScanConfig(seeds=seeds, **settings)
            if not (Path(library) / CATALOGUE).is_file():
                raise _fail(f"{library} holds no work library")
            if dask is not None:
                from crawlers.cluster import parse_address

                parse_address(dask)  # a bad address is refused before the scan directory is made
            directory = out
            scanner = make(out, config)
        with scanner:
            if quiet:
                summary = scanner.run()
            else:
                with ScanProgress(err_console, scanner.config.max_pages) as progress:
                    summary = scanner.run(progress)
    except CrawlError as exc:
        raise _fail(str(exc)) from None
    return summary, directory


def _capture(signer: Signer, scan: Path, out: Path, settings: CaseSettings) -> dict[str, Any]:
    """Capture the scan's cases that have no package; what was captured and what failed."""
    from rongxin.evidence_cases import pending_cases

    try:
        todo, total = pending_cases(scan, out)
    except CrawlError as exc:
        raise _fail(str(exc)) from None
    done: dict[str, Any] = {"dir": str(out), "cases": total, "captured_before": total - len(todo),
                            "packages": [], "failed": []}  # fmt: skip
    for row in capture_scan_cases(signer, scan, todo, out, settings):
        if row.ok:
            done["packages"].append(row.to_json())
            err_console.print(f"evidence of case {row.case}: {escape(str(row.package))}")
        else:
            done["failed"].append(row.to_json())
            err_console.print(f"[red]error:[/] evidence of case {row.case}: {escape(str(row.error))}")
    if done["failed"]:
        err_console.print(
            f"[red]{len(done['failed'])} of {len(todo)} evidence captures failed[/]; the scan's cases "
            f"are kept in {escape(str(scan))}. Capture them again with: rongxin evidence capture-cases "
            f"--scan {escape(str(scan))} --out {escape(str(out))}"
        )
    return done


def _open(out: Path, db: str | None) -> ScanStore:
    try:
        return ScanStore(out, db=db)
    except CrawlError as exc:
        raise _fail(str(exc)) from None


@cases_app.command("list")
def list_cases(
    out: OutOption,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one case each.")] = False,
    db: DbOption = None,
) -> None:
    """The cases of a scan: id, work, score, media URL and page URL."""
    store = _open(out, db)
    try:
        cases = store.cases()
    finally:
        store.close()
    if as_json:
        for case in cases:
            sys.stdout.write(json.dumps(case.to_json(), sort_keys=True, ensure_ascii=False) + "\n")
        return
    table = Table("id", "work", "kind", "score", "media", "page")
    for c in cases:
        table.add_row(
            str(c.id), escape(c.work_id), c.kind, f"{c.score:.3f}", escape(c.media_url), escape(c.page_url)
        )
    console.print(table)
    console.print(f"{len(cases)} case(s)")


@cases_app.command("show")
def show_case(
    case_id: Annotated[int, typer.Argument(help="The case id (from `cases list`).")],
    out: OutOption,
    db: DbOption = None,
) -> None:
    """One case as JSON: URLs, work, evidence, time and the content's SM3 digest."""
    store = _open(out, db)
    try:
        case = store.case(case_id)
    finally:
        store.close()
    if case is None:
        raise _fail(f"no case {case_id} in {out}")
    data: dict[str, Any] = case.to_json()
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
