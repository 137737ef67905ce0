"""``rongxin works add|remove|list|show|export|stats`` and ``rongxin identify``: the library from the shell.

Commands that only read (``identify``, ``works list|show|export|stats``) open the library
read-only (:meth:`forensics.library.Library.open`), so a library on a read-only medium can
be searched and nothing in its directory changes. Every command but ``works add`` refuses
a ``--library`` that holds no library rather than creating one; ``works add`` says when
it creates a new library.

The lead mounts these in :mod:`rongxin.cli`::

    app.add_typer(works_app, name="works")
    app.command("identify")(identify)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from forensics.exchange.foreign import ForeignLibrary, ForeignMatch
    from forensics.library import Library
    from forensics.types import Registration

from chain.crypto.errors import CryptoError
from chain.crypto.sm3 import sm3_file
from forensics.errors import DuplicateContentError, ForensicsError, LibraryError, UnsupportedMediaError
from forensics.evidence import AudioEvidence, ImageFeatureEvidence, ImageHashEvidence, VideoEvidence
from forensics.types import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, Match, detect_kind
from rongxin.cli_common import Force, PasswordFile, console, err_console, write_output
from rongxin.cli_common import fail as _fail

works_app = typer.Typer(
    help="Register, list, show, export, remove and count works in a forensics library.", no_args_is_help=True
)

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


def video_evidence(e: VideoEvidence | Mapping[str, Any]) -> str:
    """One line of a video match's evidence: what found it, the spans, speed, frames, mirror.

    ``e`` is the match's :class:`~forensics.evidence.VideoEvidence` or its JSON form (a
    match's ``details``, e.g. another member's work found through a hash list).

    Examples
    --------
    >>> video_evidence(VideoEvidence(0.0, 10.0, 30.0, 40.0, 1.0, "both", True, (0.0, 0.1, 1.0, 0.9),
    ...                              38, 40, 72, (), (), 1e-4))
    'picture and sound: query 0.00-10.00 s = work 30.00-40.00 s, speed 1.000, 38/40 frames, mirrored'
    >>> video_evidence({"found_by": "sound", "query_start": 0.0, "query_end": 9.0, "ref_start": 2.0,
    ...                 "ref_end": 11.0, "speed": 1.0, "matched_frames": 0, "compared_frames": 0,
    ...                 "flip": False})
    'sound: query 0.00-9.00 s = work 2.00-11.00 s, speed 1.000'
    """
    d = e.to_json() if isinstance(e, VideoEvidence) else e
    found_by = {"picture": "picture", "sound": "sound", "both": "picture and sound"}[d["found_by"]]
    line = (
        f"{found_by}: query {d['query_start']:.2f}-{d['query_end']:.2f} s = work "
        f"{d['ref_start']:.2f}-{d['ref_end']:.2f} s, speed {d['speed']:.3f}"
    )
    if d["compared_frames"]:
        line += f", {d['matched_frames']}/{d['compared_frames']} frames"
    return line + (", mirrored" if d["flip"] else "")


def evidence_line(m: Match) -> str:
    """One line of a match's evidence for the ``identify`` table, from its typed evidence.

    A match found in a video's soundtrack (``m.query_stream == "audio"``) says so first.

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
    if isinstance(e, VideoEvidence):
        return video_evidence(e)
    if isinstance(e, AudioEvidence):
        heard = audio_evidence(e)
        return f"in the soundtrack, {heard}" if m.query_stream == "audio" else heard
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


def _open(library: Path, *, readonly: bool = False, create: bool = False) -> Library:
    """The library at ``library``: read-only for lookups; created (and said so) only when ``create``."""
    from forensics.library import CATALOGUE, Library

    try:
        if create and not (library / CATALOGUE).exists():
            err_console.print(f"creating a new library at {library}")
            return Library(library)
        return Library.open(library, readonly=readonly)
    except ForensicsError as exc:
        raise _fail(str(exc)) from None


def work_record(reg: Registration) -> dict[str, Any]:
    """A registered work as JSON: what ``works show --json`` and ``works export`` print.

    ``anchor_receipt`` is the work's ``anchor_receipt`` metadata (the path of the receipt
    of the transaction that anchored its fingerprint digest), ``None`` when not recorded.

    Examples
    --------
    >>> from forensics.types import Registration
    >>> reg = Registration("w", "image", bytes(32), b"\\x01" * 32, {"owner": "A"}, "2026-01-02T03:04:05Z")
    >>> r = work_record(reg)
    >>> r["content_sm3"][:8], r["fingerprint_sm3"][:8], r["registered_at"], r["anchor_receipt"]
    ('00000000', '01010101', '2026-01-02T03:04:05Z', None)
    """
    receipt = reg.metadata.get("anchor_receipt")
    return {
        "work_id": reg.work_id,
        "kind": reg.kind,
        "registered_at": reg.registered_at,
        "content_sm3": reg.content_digest.hex(),
        "fingerprint_sm3": reg.fingerprint_digest.hex(),
        "metadata": reg.metadata,
        "anchor_receipt": receipt if isinstance(receipt, str) else None,
    }


def _looks_like_copy(lib: Library, path: Path) -> Match | None:
    """The registered work ``path`` looks like a copy of, if any (errors are left to registering)."""
    from forensics.library import INDEX_CLASSES

    if len(lib) == 0:
        return None
    try:
        if detect_kind(path) == "video" and "video" not in INDEX_CLASSES:
            return None  # not registrable: registering says why, without decoding the soundtrack
    except ForensicsError:
        return None
    try:
        matches = lib.identify(path, top_k=1)
    except ForensicsError:
        return None
    return matches[0] if matches else None


@works_app.command("add")
def add(
    paths: Annotated[list[Path], typer.Argument(help="Media files or directories (searched recursively).")],
    library: LibraryOption,
    work_id: Annotated[
        str | None,
        typer.Option("--id", help="Work id for a single file (default: the file name without suffix)."),
    ] = None,
    metadata: Annotated[str | None, typer.Option(help="JSON object stored with every work added.")] = None,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing/--fail-existing",
            help="A file whose content is already registered (same bytes, under any id) is reported as "
            "skipped (the default, so re-running over a folder succeeds), or counted as failed.",
        ),
    ] = True,
    allow_copies: Annotated[
        bool,
        typer.Option(
            "--allow-copies",
            help="Do not warn when a new file looks like a copy of a registered work (added either way).",
        ),
    ] = False,
    anchor: Annotated[
        bool,
        typer.Option(
            "--anchor",
            help="Anchor the fingerprint digests of the works added as one Merkle batch through the "
            "member's node (--client); the receipt and each work's proof go to LIBRARY/anchors/.",
        ),
    ] = False,
    keep_source: Annotated[
        bool,
        typer.Option(
            "--keep-source",
            help="Seal each new file into the off-chain vault through the member's node (--client) "
            "before registering it; the work's metadata records the vault object.",
        ),
    ] = False,
    client: Annotated[
        Path | None,
        typer.Option(
            "--client",
            help="Client profile for --anchor and --keep-source (else $RONGXIN_CLIENT).",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Register works; a work's id is its file name without the extension unless --id is given.

    A file whose bytes are already registered is not registered again. A file that
    `identify` finds to be a copy of a registered work is added with a warning. Exits with
    status 1 when any file failed.
    """
    files = collect_media(paths)
    if not files:
        raise _fail("no media files found in the given paths")
    if work_id is not None and len(files) != 1:
        raise _fail(f"--id names a single work but {len(files)} files were given; drop --id")
    meta = _parse_metadata(metadata)
    added = skipped = failures = 0
    registered: list[Registration] = []
    ledger = _anchor_client(client) if anchor or keep_source else None
    vault = _vault_of(ledger) if keep_source and ledger is not None else None
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
                    copy_of = None if allow_copies else _looks_like_copy(lib, path)
                    kept = _keep_source(vault, lib, path) if vault is not None else {}
                    reg = lib.register(path, wid, meta | {"source": path.name} | kept)
                    registered.append(reg)
                    added += 1
                    progress.console.print(
                        f"added {reg.work_id} ({reg.kind}) content SM3 {reg.content_digest.hex()[:16]}…"
                    )
                    if copy_of is not None:
                        progress.console.print(
                            f"[yellow]warning:[/] {reg.work_id} looks like a copy of {copy_of.work_id} "
                            f"(score {copy_of.score:.3f}, threshold {copy_of.threshold:.2f}); "
                            "added anyway (--allow-copies silences this)"
                        )
                except DuplicateContentError as exc:
                    if skip_existing:
                        skipped += 1
                        progress.console.print(
                            f"skipped {path}: already registered as {exc.work_id} on {exc.registered_at}"
                        )
                    else:
                        failures += 1
                        progress.console.print(f"[red]failed[/] {path}: {exc}")
                except ForensicsError as exc:
                    failures += 1
                    progress.console.print(f"[red]failed[/] {path}: {exc}")
                except _VaultFailure as exc:
                    failures += 1
                    progress.console.print(f"[red]failed[/] {path}: {exc}", markup=False)
                progress.advance(task)
    finally:
        lib.close()
        if vault is not None:
            vault.objects.close()
    summary = f"{added} added, {failures} failed"
    if skipped:
        summary += f", {skipped} skipped (already registered)"
    console.print(f"{summary}; library {library}")
    if anchor and ledger is not None and registered:
        _anchor_works(ledger, registered, library / "anchors")
    elif ledger is not None:
        ledger[0].close()
    if failures:
        raise typer.Exit(1)


class _VaultFailure(Exception):
    """The source file could not be kept in the vault (the work is not registered then)."""


def _vault_of(ledger: Any) -> Any:
    """A vault client for the member of the ``(NodeClient, Genesis)`` pair."""
    from rongxin.vault_keep import member_vault

    return member_vault(*ledger)


def _keep_source(vault: Any, lib: Library, path: Path) -> dict[str, Any]:
    """Seal ``path`` into the vault unless its bytes are registered already; the metadata to record."""
    from chain.crypto.sm3 import sm3_file
    from chain.errors import ChainError
    from rongxin.vault_keep import vault_record

    if lib.find_content(sm3_file(path)) is not None:
        return {}  # registering will report the duplicate; nothing to keep
    try:
        return vault_record(vault, path)
    except (ChainError, OSError) as exc:
        raise _VaultFailure(f"not registered: the source could not be kept in the vault ({exc})") from None


def _anchor_client(client: Path | None) -> Any:
    """``(NodeClient, Genesis)`` of the client profile (checked before anything is registered)."""
    from rongxin.cli_common import member_client

    cli, genesis, _ = member_client(client)
    return cli, genesis


def _anchor_works(ledger: Any, works: list[Registration], out: Path) -> None:
    """Anchor the works' fingerprint digests as one batch; save the receipt and the proofs."""
    from chain.errors import ChainError

    cli, genesis = ledger
    digests = [w.fingerprint_digest for w in works]
    proofs: Sequence[list[bytes]]
    try:
        if len(digests) == 1:
            receipt, proofs = cli.anchor(digests[0], "work-fingerprint"), [[]]
        else:
            receipt, proofs = cli.anchor_batch(digests, "work-fingerprints")
        info = receipt.verify(genesis)
    except ChainError as exc:
        raise _fail(f"the works are registered but not anchored: {exc}") from None
    finally:
        cli.close()
    out.mkdir(parents=True, exist_ok=True)
    rpath = out / f"{info.tx_id.hex()[:16]}.receipt.cbor"
    rpath.write_bytes(receipt.to_bytes())
    for i, (w, path) in enumerate(zip(works, proofs, strict=True)):
        doc = {"digest": w.fingerprint_digest.hex(), "index": i, "path": [p.hex() for p in path]}
        (out / f"{w.work_id}.proof.json").write_text(json.dumps(doc) + "\n")
    console.print(
        f"anchored the fingerprint digests of {len(works)} work(s) at height {info.height} "
        f"(tx {info.tx_id.hex()[:16]}…); receipt {escape(str(rpath))}, proofs beside it"
    )


@works_app.command("remove")
def remove(
    work_ids: Annotated[list[str], typer.Argument(help="Ids of the works to remove.")],
    library: LibraryOption,
) -> None:
    """Remove works from the library; prints how many were removed and how many were not found.

    Every id found is removed. Exits with status 1 when any id was not found or could not
    be removed, 0 otherwise.
    """
    lib = _open(library)
    removed = not_found = errors = 0
    try:
        for wid in work_ids:
            try:
                lib.remove(wid)
                removed += 1
                console.print(f"removed {wid}")
            except ForensicsError as exc:
                if isinstance(exc, LibraryError) and wid not in lib:
                    not_found += 1
                else:
                    errors += 1
                err_console.print(f"[red]error:[/] {exc}")
    finally:
        lib.close()
    summary = f"removed {removed}, not found {not_found}"
    console.print(summary + (f", failed {errors}" if errors else ""))
    if not_found or errors:
        raise typer.Exit(1)


@works_app.command("list")
def list_works(
    library: LibraryOption,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per work (JSON lines).")
    ] = False,
) -> None:
    """The registered works: id, kind, registration time and the start of the content SM3."""
    lib = _open(library, readonly=True)
    try:
        works = list(lib.works())
    finally:
        lib.close()
    if as_json:
        sys.stdout.write("".join(json.dumps(work_record(w), ensure_ascii=False) + "\n" for w in works))
        return
    if not works:
        console.print(f"library {library} holds no works")
        return
    table = Table(title=f"{len(works)} works in {library}")
    for column in ("id", "kind", "registered (UTC)", "content SM3"):
        table.add_column(column)
    for w in works:
        table.add_row(w.work_id, w.kind, w.registered_at or "-", w.content_digest.hex()[:16] + "…")
    console.print(table)


@works_app.command("show")
def show(
    work_id: Annotated[str, typer.Argument(help="The work's id.")],
    library: LibraryOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One work: kind, registration time, content and fingerprint SM3, metadata, anchor receipt."""
    lib = _open(library, readonly=True)
    try:
        record = work_record(lib.work(work_id))
    except ForensicsError as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    if as_json:
        sys.stdout.write(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"work {work_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("kind", record["kind"])
    table.add_row("registered (UTC)", record["registered_at"] or "-")
    table.add_row("content SM3", record["content_sm3"])
    table.add_row("fingerprint SM3", record["fingerprint_sm3"])
    table.add_row("anchor receipt", record["anchor_receipt"] or "none recorded")
    for key, value in sorted(record["metadata"].items()):
        table.add_row(
            f"metadata {key}", value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        )
    console.print(table)


@works_app.command("export")
def export(
    library: LibraryOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write.")],
    work_ids: Annotated[list[str] | None, typer.Argument(help="Ids of the works to export.")] = None,
    all_works: Annotated[bool, typer.Option("--all", help="Export every work.")] = False,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="jsonl: the works' records (default); rxhl: a hash list of their fingerprints for other "
            "members (the default when --out ends in .rxhl; every work of --kind unless ids are named).",
            metavar="jsonl|rxhl",
        ),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="rxhl: only works of this kind.", metavar="image|audio|video"),
    ] = None,
    pdq: Annotated[
        bool, typer.Option("--pdq", help="rxhl: add PDQ hashes of the image works (needs --media).")
    ] = False,
    media: Annotated[
        list[Path] | None,
        typer.Option(
            "--media",
            help="rxhl --pdq: a directory holding the image works' original files (found by name, checked by "
            "content SM3); may be repeated.",
            metavar="DIR",
        ),
    ] = None,
    member: Annotated[
        str | None,
        typer.Option(
            "--member", help="rxhl: the exporting member's id (default: its certificate's subject)."
        ),
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="rxhl: sign with this member key file.", metavar="FILE")
    ] = None,
    client: Annotated[
        Path | None,
        typer.Option(
            "--client",
            help="rxhl: sign with the key of this client profile; names the member.",
            metavar="FILE",
        ),
    ] = None,
    password_file: PasswordFile = None,
    reveal_ids: Annotated[
        bool, typer.Option("--reveal-ids", help="rxhl: include each work's id (else opaque references only).")
    ] = False,
    no_features: Annotated[
        bool,
        typer.Option(
            "--no-features", help="rxhl: image global hashes only, no local features (crops are not found)."
        ),
    ] = False,
    refs: Annotated[
        Path | None,
        typer.Option(
            "--refs", help="rxhl: also write reference -> work id (JSON) here, for your own records."
        ),
    ] = None,
    force: Force = False,
) -> None:
    """Write works (given ids, or --all) as JSON lines, or their fingerprints as a hash list (.rxhl).

    A hash list lets another member find copies of the works without receiving them
    (`rongxin works import`); see docs/hash-list-format.md.
    """
    chosen = fmt or ("rxhl" if out.suffix.lower() == ".rxhl" else "jsonl")
    if chosen not in ("jsonl", "rxhl"):
        raise _fail(f"unknown --format {fmt!r}; use jsonl or rxhl")
    if chosen == "rxhl":
        if all_works and work_ids:
            raise _fail("name the works to export, or pass --all (not both)")
        _export_hash_list(
            library, out, work_ids or None, kind, media if pdq else None, pdq, member, key, client,
            password_file, reveal_ids, not no_features, refs, force,
        )  # fmt: skip
        return
    if bool(work_ids) == all_works:
        raise _fail("name the works to export, or pass --all (not both)")
    lib = _open(library, readonly=True)
    try:
        works = list(lib.works()) if all_works else [lib.work(w) for w in work_ids or []]
    except ForensicsError as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    data = "".join(json.dumps(work_record(w), ensure_ascii=False, sort_keys=True) + "\n" for w in works)
    write_output(out, data.encode(), force=force, mode=0o644)
    console.print(f"exported {len(works)} works to {out}")


def _signing_identity(
    member: str | None, key: Path | None, client: Path | None, password_file: Path | None
) -> tuple[str, Any]:
    """The exporting member's id and SM2 key (``None`` for an unsigned list)."""
    from rongxin.cli_common import password
    from rongxin.client_profile import ProfileError, find_profile, load_profile
    from rongxin.hashlists import ExchangeInputError, certificate_member, load_signing_key

    if key is not None and client is not None:
        raise _fail("give --key or --client, not both")
    try:
        if client is not None:
            profile = load_profile(find_profile(client))
            subject, public = certificate_member(profile.cert_file)
            pw = password(
                password_file or profile.key_password_file, prompt=f"Password of {profile.key_file.name}"
            )
            private = load_signing_key(profile.key_file, pw)
            if private.public_key != public:
                raise _fail(f"{profile.key_file} does not belong to the certificate {profile.cert_file}")
            return member or subject, private
        if member is None:
            raise _fail(
                "name the exporting member with --member (or sign with --client, whose certificate names it)"
            )
        if key is None:
            return member, None
        return member, load_signing_key(key, password(password_file, prompt=f"Password of {key.name}"))
    except (ProfileError, ExchangeInputError) as exc:
        raise _fail(str(exc)) from None


def _export_hash_list(
    library: Path,
    out: Path,
    work_ids: list[str] | None,
    kind: str | None,
    media: list[Path] | None,
    pdq: bool,
    member: str | None,
    key: Path | None,
    client: Path | None,
    password_file: Path | None,
    reveal_ids: bool,
    features: bool,
    refs: Path | None,
    force: bool,
) -> None:
    """``works export --format rxhl``: the works' fingerprints as a (signed) hash list."""
    from forensics.exchange.export import export_entries, references, signal_parameters
    from forensics.exchange.hashlist import encode_hash_list

    if kind not in (None, "image", "audio", "video"):
        raise _fail(f"--kind must be image, audio or video, not {kind!r}")
    if pdq and not media:
        raise _fail(
            "--pdq needs --media DIR: the library keeps no images, so PDQ is computed from the originals"
        )
    kinds = [kind] if kind else ["image", "audio", "video"]
    who, signing_key = _signing_identity(member, key, client, password_file)
    lib = _open(library, readonly=True)
    try:
        entries = export_entries(
            lib, kinds=kinds, work_ids=work_ids, reveal_ids=reveal_ids, features=features, pdq_media=media
        )
        present = sorted({e.kind for e in entries})
        data = encode_hash_list(who, entries, signals=signal_parameters(lib, present, pdq), key=signing_key)
        exported = {e.ref for e in entries}
        mapping = {r: w for r, w in references(lib.works()).items() if r in exported}
    except ForensicsError as exc:
        raise _fail(str(exc)) from None
    finally:
        lib.close()
    write_output(out, data, force=force, mode=0o644)
    if refs is not None:
        write_output(refs, (json.dumps(mapping, indent=2, sort_keys=True) + "\n").encode(), force=force)
    with_pdq = sum(1 for e in entries if e.pdq)
    images = sum(1 for e in entries if e.kind == "image")
    signed = f"signed by key {signing_key.public_key.key_id()[:16]}…" if signing_key else "unsigned"
    console.print(f"exported the fingerprints of {len(entries)} works to {out} as member {who!r}, {signed}")
    if pdq:
        console.print(f"PDQ hashes for {with_pdq} of {images} image works (the others' files were not found)")


def _flatten(info: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested statistics as ``(dotted key, value)`` pairs, for a table.

    Examples
    --------
    >>> _flatten({"works": 2, "layers": {"main": {"bytes": 10}}})
    [('works', '2'), ('layers.main.bytes', '10')]
    """
    rows: list[tuple[str, str]] = []
    for key, value in info.items():
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, int) and not isinstance(value, bool):
            rows.append((f"{prefix}{key}", f"{value:,}" if abs(value) >= 10_000 else str(value)))
        else:
            rows.append((f"{prefix}{key}", str(value)))
    return rows


@works_app.command("stats")
def stats(
    library: LibraryOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts of works per kind, index structures and size on disk."""
    lib = _open(library, readonly=True)
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
        table = Table(title=f"{kind}: {count} works")
        table.add_column("index statistic")
        table.add_column("value", overflow="fold")
        for key, value in _flatten(info["indexes"].get(kind, {})):
            table.add_row(key, value)
        console.print(table)


def _match_json(m: Match, lib: Library, query_sm3: str) -> dict[str, Any]:
    """A match's JSON (``Match.to_json``) with the query's SM3 and the matched work's registration."""
    reg = lib.get(m.work_id)
    return m.to_json() | {
        "query_sm3": query_sm3,
        "registered_at": reg.registered_at if reg is not None else None,
        "metadata": reg.metadata if reg is not None else {},
        "content_sm3": reg.content_digest.hex() if reg is not None else None,
    }


def _open_foreign(library: Path) -> ForeignLibrary | None:
    """The library's imported hash lists (read-only), ``None`` when it has none."""
    from forensics.exchange.foreign import open_foreign

    try:
        return open_foreign(library, readonly=True)
    except ForensicsError as exc:
        raise _fail(str(exc)) from None


def _query(
    lib: Library, foreign: ForeignLibrary | None, path: Path, top_k: int
) -> tuple[str, list[Match], list[ForeignMatch]]:
    """The query's SM3 (hex), the works found in it and other members' works; raises ForensicsError.

    A library holding only other members' works answers for a video's soundtrack too.
    """
    try:
        matches = lib.identify(path, top_k=top_k)
    except UnsupportedMediaError:
        if foreign is None or detect_kind(path) != "video":
            raise
        matches = []
    others = foreign.identify(path, top_k) if foreign is not None else []
    try:
        digest = sm3_file(path).hex()
    except CryptoError as exc:
        raise LibraryError(str(exc)) from exc
    return digest, matches, others


def _print_foreign(path: Path, others: list[ForeignMatch]) -> None:
    table = Table(title=f"other members' works in {path} (from imported hash lists)")
    for column in ("member", "reference", "kind", "signal", "score", "threshold", "evidence"):
        table.add_column(column, overflow="fold")
    for f in others:
        if f.signal == "pdq":
            evidence = f"PDQ: {f.details['pdq_distance']}/{f.details['pdq_threshold']} bits"
        elif f.kind == "video":
            evidence = video_evidence(f.details)
        elif f.kind == "audio":
            evidence = audio_evidence(f.details)
        elif "hamming" in f.details:
            evidence = f"hash: {f.details['hamming']}/{f.details['hash_threshold']} bits"
        else:
            evidence = f"features: {f.details.get('inliers')} inliers"
        reference = f.reference if f.title is None else f"{f.reference} ({f.title})"
        table.add_row(f.member, reference, f.kind, f.signal, f"{f.score:.3f}", f"{f.threshold:.2f}", evidence)
    console.print(table)


def _print_matches(
    path: Path, matches: list[Match], lib: Library, query_sm3: str, others: list[ForeignMatch] | None = None
) -> None:
    if not matches:
        console.print(f"no registered work found in {path}")
    else:
        _print_local(path, matches, lib, query_sm3)
    if others:
        _print_foreign(path, others)


def _print_local(path: Path, matches: list[Match], lib: Library, query_sm3: str) -> None:
    table = Table(title=f"matches for {path} (SM3 {query_sm3[:16]}…)")
    for column in ("work", "kind", "registered", "score", "threshold", "evidence"):
        table.add_column(column)
    for m in matches:
        reg = lib.get(m.work_id)
        registered = reg.registered_at if reg is not None and reg.registered_at else "-"
        table.add_row(m.work_id, m.kind, registered, f"{m.score:.3f}", f"{m.threshold:.2f}", evidence_line(m))
    console.print(table)
    first = matches[0].evidence
    fpr = first.fpr_target if first is not None else matches[0].details.get("fpr_target")
    if fpr is not None:
        console.print(f"threshold calibrated for a false-positive rate ≤ {fpr:g} per (query, work) pair")


def identify(
    files: Annotated[
        list[Path], typer.Argument(help="Media files to look up, or directories (searched recursively).")
    ],
    library: LibraryOption,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One file: print its matches as a JSON list. Several files or a directory: JSON lines, "
            "one object per query file.",
        ),
    ] = False,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Most matches reported per file.")] = 5,
) -> None:
    """Find registered works in FILES; only matches above the calibrated threshold are listed.

    Each match carries the query file's SM3 and the matched work's metadata and
    registration time. With several files, a file that cannot be read is reported and the
    others are still searched; the command then exits with status 1. The library is opened
    read-only. Other members' works imported with `works import` are found too and shown
    apart, as the member's references ("foreign": true in JSON).
    """
    queries = collect_media(files)
    if not queries:
        raise _fail("no media files found in the given paths")
    lib = _open(library, readonly=True)
    foreign = None
    try:
        foreign = _open_foreign(library)
        if len(files) == 1 and queries == files:
            _identify_one(lib, foreign, queries[0], as_json, top_k)
            return
        failed = _identify_many(lib, foreign, queries, as_json, top_k)
    finally:
        if foreign is not None:
            foreign.close()
        lib.close()
    if failed:
        err_console.print(f"[red]error:[/] {failed} of {len(queries)} files could not be searched")
        raise typer.Exit(1)


def _identify_one(
    lib: Library, foreign: ForeignLibrary | None, path: Path, as_json: bool, top_k: int
) -> None:
    try:
        query_sm3, matches, others = _query(lib, foreign, path, top_k)
    except ForensicsError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        objects = [_match_json(m, lib, query_sm3) for m in matches]
        objects += [f.to_json() | {"query_sm3": query_sm3} for f in others]
        sys.stdout.write(json.dumps(objects, indent=2, ensure_ascii=False) + "\n")
        return
    _print_matches(path, matches, lib, query_sm3, others)


def _identify_many(
    lib: Library, foreign: ForeignLibrary | None, queries: list[Path], as_json: bool, top_k: int
) -> int:
    """Search every file; JSON lines or tables on stdout, progress on stderr. Returns the failures."""
    failed = 0
    with Progress(
        TextColumn("[bold]identifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=err_console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as progress:
        task = progress.add_task("", total=len(queries))
        for path in queries:
            progress.update(task, description=path.name)
            try:
                query_sm3, matches, others = _query(lib, foreign, path, top_k)
            except ForensicsError as exc:
                failed += 1
                if as_json:
                    sys.stdout.write(
                        json.dumps({"query": str(path), "error": str(exc)}, ensure_ascii=False) + "\n"
                    )
                err_console.print(f"[red]error:[/] {path}: {exc}")
            else:
                if as_json:
                    line = {
                        "query": str(path),
                        "query_sm3": query_sm3,
                        "matches": [_match_json(m, lib, query_sm3) for m in matches]
                        + [f.to_json() | {"query_sm3": query_sm3} for f in others],
                    }
                    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
                else:
                    _print_matches(path, matches, lib, query_sm3, others)
            progress.advance(task)
    return failed
