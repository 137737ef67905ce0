"""``rongxin works add|remove|stats`` and ``rongxin identify``: the work library from the shell.

The lead mounts these in :mod:`rongxin.cli`::

    app.add_typer(works_app, name="works")
    app.command("identify")(identify)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from forensics.errors import ForensicsError
from forensics.types import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES
from rongxin.cli_common import console, err_console
from rongxin.cli_common import fail as _fail

works_app = typer.Typer(help="Register, remove and count works in a forensics library.", no_args_is_help=True)

MEDIA_SUFFIXES = IMAGE_SUFFIXES | AUDIO_SUFFIXES | VIDEO_SUFFIXES

LibraryOption = Annotated[Path, typer.Option("--library", "-l", help="The library directory.")]


def audio_evidence(d: dict[str, Any]) -> str:
    """One line of an audio match's evidence: the rule that found it, spans, speed, peaks.

    Examples
    --------
    >>> audio_evidence({"layer": "both", "query_start": 0.0, "query_end": 4.9, "ref_start": 12.0,
    ...                 "ref_end": 16.9, "speed": 1.0, "verified_peaks": 20, "reference_peaks": 60})
    'both layers: query 0.00-4.90 s = work 12.00-16.90 s, speed 1.000, 20/60 peaks'
    """
    layer = d.get("layer", "main")
    found_by = "both layers" if layer == "both" else f"{layer} layer"
    return (
        f"{found_by}: query {d['query_start']:.2f}-{d['query_end']:.2f} s = work "
        f"{d['ref_start']:.2f}-{d['ref_end']:.2f} s, speed {d['speed']:.3f}, "
        f"{d['verified_peaks']}/{d['reference_peaks']} peaks"
    )


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
        d = m.details
        if d.get("path") == "hash":
            evidence = f"hash: {d['hamming']}/{d['hash_threshold']} bits, transform {d['transform']}"
        elif d.get("path") == "features":
            evidence = (
                f"features: {d['inliers']} inliers (≥{d['inlier_threshold']}), rotation {d['rotation_deg']}°"
            )
        elif m.kind == "audio" and "ref_start" in d:
            evidence = audio_evidence(d)
        else:
            evidence = json.dumps(d, ensure_ascii=False)[:80]
        table.add_row(m.work_id, m.kind, f"{m.score:.3f}", f"{m.threshold:.2f}", evidence)
    console.print(table)
    fpr = matches[0].details.get("fpr_target")
    if fpr is not None:
        console.print(f"threshold calibrated for a false-positive rate ≤ {fpr:g} per (query, work) pair")
