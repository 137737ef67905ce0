"""``rongxin works add|remove|stats`` and ``rongxin identify``: the work library from the shell.

The lead mounts these in :mod:`rongxin.cli`::

    app.add_typer(works_app, name="works")
    app.command("identify")(identify)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from forensics.errors import ForensicsError
from forensics.evidence import AudioEvidence, ImageFeatureEvidence, ImageHashEvidence
from forensics.types import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, Match
from rongxin.cli_common import console, err_console
from rongxin.cli_common import fail as _fail

works_app = typer.Typer(help="Register, remove and count works in a forensics library.", no_args_is_help=True)

MEDIA_SUFFIXES = IMAGE_SUFFIXES | AUDIO_SUFFIXES | VIDEO_SUFFIXES

LibraryOption = Annotated[Path, typer.Option("--library", "-l", help="The library directory.")]


def audio_evidence(e: AudioEvidence | Mapping[str, Any]) -> str:
    """One line of an audio match's evidence: the rule that found it, spans, speed, peaks.

    ``e`` is the match's :class:`~forensics.evidence.AudioEvidence`, or its JSON form (a
    match's ``details``, as ``rongxin identify --json`` prints them; ``layer`` defaults to
    ``main`` there).

    Examples
    --------
    >>> audio_evidence({"layer": "both", "query_start": 0.0, "query_end": 4.9, "ref_start": 12.0,
    ...                 "ref_end": 16.9, "speed": 1.0, "verified_peaks": 20, "reference_peaks": 60})
    'both layers: query 0.00-4.90 s = work 12.00-16.90 s, speed 1.000, 20/60 peaks'
    >>> audio_evidence(AudioEvidence(0.0, 4.9, 12.0, 16.9, 1.0, 1.0, 0.016, 9, 30, 40, 2.5, 14.0, 3.0,
    ...                              20, 60, 0.001, "main"))
    'main layer: query 0.00-4.90 s = work 12.00-16.90 s, speed 1.000, 20/60 peaks'
    """
    if isinstance(e, AudioEvidence):
        spans = (e.query_start, e.query_end, e.ref_start, e.ref_end)
        layer, speed, peaks = e.layer, e.speed, (e.verified_peaks, e.reference_peaks)
    else:
        spans = (e["query_start"], e["query_end"], e["ref_start"], e["ref_end"])
        layer, speed, peaks = e.get("layer", "main"), e["speed"], (e["verified_peaks"], e["reference_peaks"])
    found_by = "both layers" if layer == "both" else f"{layer} layer"
    return (
        f"{found_by}: query {spans[0]:.2f}-{spans[1]:.2f} s = work "
        f"{spans[2]:.2f}-{spans[3]:.2f} s, speed {speed:.3f}, "
        f"{peaks[0]}/{peaks[1]} peaks"
    )


def evidence_line(m: Match) -> str:
    """One line of a match's evidence for the ``identify`` table, from its typed evidence.

    Examples
    --------
    >>> from forensics.evidence import ImageHashEvidence, points
    >>> e = ImageHashEvidence(3, 24, "rot90", points([[0, 0], [9, 0], [9, 5], [0, 5]]), (10, 6), 7, 1e-4)
    >>> evidence_line(Match.of("poster", 0.9, 0.5, e))
    'hash: 3/24 bits, transform rot90'
    """
    e = m.evidence
    if isinstance(e, ImageHashEvidence):
        return f"hash: {e.hamming}/{e.hash_threshold} bits, transform {e.transform}"
    if isinstance(e, ImageFeatureEvidence):
        return f"features: {e.inliers} inliers (≥{e.inlier_threshold}), rotation {e.rotation_deg}°"
    if isinstance(e, AudioEvidence):
        return audio_evidence(e)
    return json.dumps(m.details, ensure_ascii=False)[:80]


def collect_media(paths: list[Path]) -> list[Path]:
    """Files named directly, plus media files (by suffix) found recursively in directories.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("a.jpg", "sub/b.PNG", "notes.txt"):
    ...     (d / name).parent.mkdir(exist_ok=True); _ = (d / name).write_bytes(b"x")
    >>> [p.name for p in collect_media([d])]
    ['a.jpg', 'b.PNG']
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
            )
        else:
            found.append(path)
    return found


def _parse_metadata(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            f'--metadata is not JSON ({exc.msg}); give an object such as \'{{"owner": "X"}}\''
        ) from None
    if not isinstance(value, dict):
        raise _fail("--metadata must be a JSON object")
    return value


def _open(library: Path, create: bool) -> Any:
    from forensics.library import Library

    try:
        return Library(library, create=create)
    except ForensicsError as exc:
        raise _fail(str(exc)) from None


@works_app.command("add")
def add(
    paths: Annotated[list[Path], typer.Argument(help="Media files or directories (searched recursively).")],
    library: LibraryOption,
    work_id: Annotated[
        str | None,
        typer.Option("--id", help="Work id for a single file (default: the file name without suffix)."),
    ] = None,
    metadata: Annotated[str | None, typer.Option(help="JSON object stored with every work added.")] = None,
) -> None:
    """Register works; a work's id is its file name without the extension unless --id is given."""
    files = collect_media(paths)
    if not files:
        raise _fail("no media files found in the given paths")
    if work_id is not None and len(files) != 1:
        raise _fail(f"--id names a single work but {len(files)} files were given; drop --id")
    meta = _parse_metadata(metadata)
    failures = 0
    lib = _open(library, create=True)
    try:
        with Progress(
            TextColumn("[bold]registering"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            console=err_console,
            transient=not err_console.is_terminal,
        ) as progress:
            task = progress.add_task("", total=len(files))
            for path in files:
                wid = work_id if work_id is not None else path.stem
                progress.update(task, description=wid)
                try:
                    reg = lib.register(path, wid, meta | {"source": path.name})
                    progress.console.print(
                        f"added {reg.work_id} ({reg.kind}) content SM3 {reg.content_digest.hex()[:16]}…"
                    )
                except ForensicsError as exc:
                    failures += 1
                    progress.console.print(f"[red]skipped[/] {path}: {exc}")
                progress.advance(task)
    finally:
        lib.close()
    console.print(f"{len(files) - failures} added, {failures} failed; library {library}")
    if failures:
        raise typer.Exit(1)


@works_app.command("remove")
def remove(
    work_ids: Annotated[list[str], typer.Argument(help="Ids of the works to remove.")],
    library: LibraryOption,
) -> None:
    """Remove works from the library."""
    lib = _open(library, create=False)
    failed = False
    try:
        for wid in work_ids:
            try:
                lib.remove(wid)
                console.print(f"removed {wid}")
            except ForensicsError as exc:
                failed = True
                err_console.print(f"[red]error:[/] {exc}")
    finally:
        lib.close()
    if failed:
        raise typer.Exit(1)


@works_app.command("stats")
def stats(
    library: LibraryOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts of works per kind, index structures and size on disk."""
    lib = _open(library, create=False)
    try:
        info = lib.stats()
    finally:
        lib.close()
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2, sort_keys=True) + "\n")
        return
    console.print(
        f"library {info['directory']}: {info['works']} works, {info['bytes_on_disk']:,} bytes on disk"
    )
    for kind, count in sorted(info["works_by_kind"].items()):
        console.print(f"  {kind}: {count} works; index {info['indexes'].get(kind, {})}")


def identify(
    file: Annotated[Path, typer.Argument(help="The media file to look up.")],
    library: LibraryOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print the matches as a JSON list.")] = False,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Most matches reported.")] = 5,
) -> None:
    """Find registered works in FILE; only matches above the calibrated threshold are listed."""
    lib = _open(library, create=False)
    try:
        matches = lib.identify(file, top_k=top_k)
    except ForensicsError as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    if as_json:
        sys.stdout.write(json.dumps([m.to_json() for m in matches], indent=2, ensure_ascii=False) + "\n")
        return
    if not matches:
        console.print(f"no registered work found in {file}")
        return
    table = Table(title=f"matches for {file}")
    for column in ("work", "kind", "score", "threshold", "evidence"):
        table.add_column(column)
    for m in matches:
        table.add_row(m.work_id, m.kind, f"{m.score:.3f}", f"{m.threshold:.2f}", evidence_line(m))
    console.print(table)
    first = matches[0].evidence
    fpr = first.fpr_target if first is not None else matches[0].details.get("fpr_target")
    if fpr is not None:
        console.print(f"threshold calibrated for a false-positive rate ≤ {fpr:g} per (query, work) pair")
