"""``rongxin evidence capture URL`` and ``rongxin evidence verify PACKAGE``.

A capture fixes a page as court evidence: a WARC of every request, a full-page
screenshot, a screen recording, the media, the DOM, the environment record and a log,
packed as a WACZ with a manifest signed by the member's SM2 key, its digest anchored on
chain and the receipt inside. Verification is offline. See ``docs/evidence.md``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from rongxin.cli_common import console, err_console
from rongxin.cli_common import fail as _fail

if TYPE_CHECKING:
    from rongxin.evidence_cases import CaseResult

app = typer.Typer(
    help="Capture pages as signed, anchored evidence; verify packages offline.", no_args_is_help=True
)


ClientOption = Annotated[
    Path | None, typer.Option("--client", help="Client profile: the member's key signs, its node anchors.")
]
AllowOption = Annotated[
    list[str] | None,
    typer.Option("--allow", help="An internal address or network the browser may reach (repeatable)."),
]
TsaOption = Annotated[str | None, typer.Option("--tsa", help="URL of an RFC 3161 time-stamp authority.")]
PlayOption = Annotated[
    float, typer.Option(min=0.0, help="Seconds of media played when the case names no span.")
]
NoRecordingOption = Annotated[bool, typer.Option("--no-recording", help="No screen recording.")]
NoAnchorOption = Annotated[
    bool, typer.Option("--no-anchor", help="Sign only; the package then lacks its chain receipt.")
]
KeepOption = Annotated[
    bool,
    typer.Option(
        "--keep",
        "--vault",
        help="Store the finished package in the member's off-chain vault through its node "
        "(the object digest is printed and written to DIR/vault.json).",
    ),
]


def _case(scan: Path | None, case_id: int | None) -> dict[str, Any] | None:
    if case_id is None:
        return None
    from crawlers.errors import CrawlError
    from crawlers.store import ScanStore

    if scan is None:
        raise _fail("--case needs --scan DIR (the scan directory that found it)")
    try:
        store = ScanStore(scan)
        try:
            case = store.case(case_id)
        finally:
            store.close()
    except CrawlError as exc:
        raise _fail(str(exc)) from None
    if case is None:
        raise _fail(f"no case {case_id} in {scan}")
    return case.to_json()


@dataclass
class Signer:
    """The member's key and certificate from a client profile, and its node (unless offline)."""

    key: Any
    cert: Any
    ledger: Any
    genesis: Any

    @classmethod
    def open(cls, client: Path | None, no_anchor: bool, as_json: bool) -> Signer:
        from chain.crypto.keyfile import load_private_key
        from chain.errors import ChainError
        from chain.node.identity import certificate_from_json
        from rongxin.cli_common import password
        from rongxin.client_profile import (
            ProfileError,
            find_profile,
            load_profile,
            open_client,
            profile_password,
        )

        try:
            profile = load_profile(find_profile(client))
            pw = profile_password(profile) or password(None, prompt=f"Password of {profile.key_file.name}")
            key = load_private_key(profile.key_file, pw)
            cert = certificate_from_json(profile.cert_file.read_text(encoding="utf-8"))
            ledger, genesis = (None, None) if no_anchor else open_client(profile, pw)
        except (ProfileError, ChainError, OSError, ValueError) as exc:
            raise _fail(f"client profile: {exc}", as_json=as_json) from None
        return cls(key, cert, ledger, genesis)

    def _ledger_time(self) -> int:
        from chain.receipt import verify_checkpoint

        return verify_checkpoint(self.ledger.checkpoint(), self.genesis).timestamp_ms

    def options(self, allow: list[str] | None, no_recording: bool, play_seconds: float) -> Any:
        from crawlers.capture import CaptureOptions

        return CaptureOptions(
            allow=tuple(allow or ()),
            record_screen=not no_recording,
            default_play_s=play_seconds,
            ledger_time_ms=None if self.ledger is None else self._ledger_time,
        )

    def capture(self, url: str, out: Path, opts: Any, case: dict[str, Any] | None, tsa: str | None) -> Any:
        """:func:`rongxin.evidence.collect_evidence` with this member's key and node.

        Raises
        ------
        crawlers.CrawlError, chain.errors.ChainError
            The capture, the package or the anchoring failed.
        """
        from rongxin.evidence import ANCHOR_KIND, collect_evidence

        ledger = self.ledger
        return collect_evidence(
            url,
            out,
            key=self.key,
            certificate=self.cert,
            anchor=None if ledger is None else (lambda d: ledger.anchor(d, ANCHOR_KIND)),
            options=opts,
            case=case,
            tsa_url=tsa,
        )

    def collect(
        self, url: str, out: Path, opts: Any, case: dict[str, Any] | None, tsa: str | None, as_json: bool
    ) -> Any:
        from chain.errors import ChainError
        from crawlers.errors import CrawlError

        try:
            return self.capture(url, out, opts, case, tsa)
        except (CrawlError, ChainError) as exc:
            raise _fail(f"evidence capture of {url} failed: {exc}", as_json=as_json) from None

    def vault_keep(self, package: Path, out: Path) -> dict[str, Any]:
        """Store ``package`` in the member's vault; the record, also written to ``out/vault.json``.

        Raises
        ------
        rongxin.errors.RongxinError
            The vault refused or could not be reached.
        """
        from rongxin.vault_keep import keep_files

        row = keep_files(self.ledger, self.genesis, [package])[0]
        (out / "vault.json").write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
        return row

    def keep(self, package: Path, out: Path, as_json: bool) -> dict[str, Any]:
        from rongxin.errors import RongxinError

        try:
            return self.vault_keep(package, out)
        except RongxinError as exc:
            raise _fail(f"the package is written but not kept: {exc}", as_json=as_json) from None

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()


@app.command("capture")
def capture_cmd(
    url: Annotated[str, typer.Argument(help="The page to capture.")],
    case_id: Annotated[
        int | None, typer.Option("--case", help="The case this page holds (from `cases list`).")
    ] = None,
    scan: Annotated[Path | None, typer.Option("--scan", help="The scan directory of --case.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="New directory for the capture.")] = None,
    client: ClientOption = None,
    allow: AllowOption = None,
    tsa: TsaOption = None,
    play_seconds: PlayOption = 10.0,
    no_recording: NoRecordingOption = False,
    no_anchor: NoAnchorOption = False,
    keep: KeepOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Capture URL as evidence and write DIR/evidence.wacz (signed, anchored, receipt inside)."""
    out = out or Path(f"evidence-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    if out.exists() and any(out.iterdir()):
        raise _fail(f"{out} is not empty", as_json=as_json)
    if keep and no_anchor:
        raise _fail("--keep stores the package through the member's node: drop --no-anchor", as_json=as_json)
    case = _case(scan, case_id)
    signer = Signer.open(client, no_anchor, as_json)
    opts = signer.options(allow, no_recording, play_seconds)
    try:
        ev = signer.collect(url, out, opts, case, tsa, as_json)
        kept = signer.keep(ev.package, out, as_json) if keep else None
    finally:
        signer.close()
    summary = {
        "package": str(ev.package),
        "package_digest_sm3": ev.digest.hex(),
        "url": url,
        "title": ev.capture.title,
        "files": len(ev.capture.files),
        "media": len(ev.capture.media),
        "anchored": ev.receipt is not None,
        "timestamped": ev.timestamped,
        "seconds": round((ev.capture.finished_ms - ev.capture.started_ms) / 1000, 1),
    }
    if kept is not None:
        summary |= {k: kept[k] for k in ("vault_object", "vault_tx", "vault_height")}
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    console.print(
        f"captured {escape(url)} ({summary['files']} files, {summary['media']} media)"
        f" in {summary['seconds']} s"
    )
    console.print(f"package {escape(str(ev.package))}, digest {ev.digest.hex()}")
    console.print("anchored on chain; receipt in the package" if ev.receipt else "[yellow]not anchored[/]")
    if kept is not None:
        console.print(f"kept in the vault as object {kept['vault_object']} (height {kept['vault_height']})")


@dataclass
class CaseSettings:
    """How the cases of a scan are captured (the options of ``capture-cases`` and ``scan --capture``)."""

    allow: list[str] | None = None
    tsa: str | None = None
    play_seconds: float = 10.0
    no_recording: bool = False
    keep: bool = False


def capture_scan_cases(
    signer: Signer, scan: Path, cases: list[Any], out: Path, settings: CaseSettings
) -> Iterator[CaseResult]:
    """Capture ``cases`` of ``scan`` (from :func:`rongxin.evidence_cases.pending_cases`)
    into ``OUT/case-<id>/``; the results as they come."""
    from rongxin.evidence_cases import capture_cases

    def collect(case: Any, target: Path) -> Any:
        opts = signer.options(settings.allow, settings.no_recording, settings.play_seconds)
        return signer.capture(case.page_url, target, opts, case.to_json(), settings.tsa)

    keep = signer.vault_keep if settings.keep else None
    return capture_cases(scan, cases, out, collect, keep)


@app.command("capture-cases")
def capture_cases_cmd(
    scan: Annotated[Path, typer.Option("--scan", help="The scan directory whose cases are captured.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory of the packages (case-<id>/).")],
    client: ClientOption = None,
    allow: AllowOption = None,
    tsa: TsaOption = None,
    play_seconds: PlayOption = 10.0,
    no_recording: NoRecordingOption = False,
    no_anchor: NoAnchorOption = False,
    keep: KeepOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON line per case.")] = False,
) -> None:
    """Capture the page of every case of a scan that has no package yet (OUT/case-<id>/).

    Run it after `rongxin scan` (or again after `rongxin scan resume`), or let `rongxin
    scan --capture` run it: cases captured before are skipped, so each new case is
    captured once, and each package is recorded with its case (`rongxin cases show`).
    Exits with status 1 when any capture failed; the others are kept.
    """
    from crawlers.errors import CrawlError
    from rongxin.evidence_cases import pending_cases

    if keep and no_anchor:
        raise _fail("--keep stores the packages through the member's node: drop --no-anchor", as_json=as_json)
    settings = CaseSettings(allow, tsa, play_seconds, no_recording, keep)
    try:
        todo, total = pending_cases(scan, out)
    except CrawlError as exc:
        raise _fail(str(exc), as_json=as_json) from None
    if not todo:
        console.print(f"no new case in {escape(str(scan))} ({total} captured before)")
        return
    signer = Signer.open(client, no_anchor, as_json)
    failed = 0
    try:
        for row in capture_scan_cases(signer, scan, todo, out, settings):
            failed += not row.ok
            if as_json:
                typer.echo(json.dumps(row.to_json(), ensure_ascii=False))
            elif row.ok:
                console.print(f"case {row.case}: {escape(str(row.package))}")
            else:
                err_console.print(f"[red]error:[/] case {row.case}: {escape(str(row.error))}")
    finally:
        signer.close()
    if failed:
        raise typer.Exit(1)


@app.command("verify")
def verify_cmd(
    package: Annotated[Path, typer.Argument(help="The evidence package (.wacz).")],
    genesis: Annotated[Path, typer.Option(help="The consortium's genesis (genesis.cbor).", metavar="FILE")],
    checkpoint: Annotated[
        Path | None, typer.Option(help="A pinned checkpoint (rongxin ledger checkpoint).", metavar="FILE")
    ] = None,
    tsa_cert: Annotated[
        list[Path] | None,
        typer.Option("--tsa-cert", help="A trusted TSA certificate, PEM or DER (repeatable)."),
    ] = None,
    skip_warc: Annotated[bool, typer.Option("--skip-warc", help="Do not parse the WARC records.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print every check as JSON.")] = False,
) -> None:
    """Verify an evidence package offline; exit status 0 only when every check passes.

    Checks every file's SM3 and SHA-256 against the signed manifest, the WACZ data
    package, the SM2 signature and the signer's certificate against the genesis, the chain
    receipt of the package digest (and the pinned checkpoint), the RFC 3161 token when
    present, and that the WARC parses. A failure names the file and the check.
    """
    from chain.errors import ChainError
    from chain.receipt import Checkpoint
    from chain.types import Genesis
    from crawlers.package import verify_package

    try:
        g = Genesis.from_bytes(genesis.read_bytes())
        cp = None if checkpoint is None else Checkpoint.from_bytes(checkpoint.read_bytes())
        roots = [p.read_bytes() for p in tsa_cert or ()]
    except OSError as exc:
        raise _fail(f"cannot read {exc.filename}: {exc.strerror}", as_json=as_json, reason="input") from None
    except ChainError as exc:
        raise _fail(f"genesis or checkpoint: {exc}", as_json=as_json, reason="input") from None
    result = verify_package(str(package), g, checkpoint=cp, tsa_roots=roots, check_warc=not skip_warc)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        for c in result.checks:
            if c.status != "ok" or c.check not in ("sm3+sha256",):
                colour = {"ok": "green", "failed": "red", "skipped": "yellow"}[c.status]
                detail = f" — {escape(c.detail)}" if c.detail else ""
                console.print(f"[{colour}]{c.status:7}[/] {escape(c.file)} {escape(f'[{c.check}]')}{detail}")
        files = sum(1 for c in result.checks if c.check == "sm3+sha256")
        console.print(f"{files} files match the signed manifest; package digest (SM3) {result.digest}")
        console.print("[green]VALID[/]" if result.ok else "[red]REFUSED[/]")
    if not result.ok:
        raise typer.Exit(1)
