"""``rongxin works import`` and ``rongxin works foreign``: other members' hash lists in a library.

A member exports its works' fingerprints with ``rongxin works export --out list.rxhl``
(:mod:`rongxin.cli_works`); another member imports the file here. The list's format,
SM3 digest and SM2 signature are checked, its publisher is checked against the key the
importer knows (``--signer``: the member's certificate), and its fingerprints go into the
library's foreign namespace (:mod:`forensics.exchange.foreign`), from where ``rongxin
identify`` reports copies as the member's references. :mod:`rongxin.cli` mounts::

    works_app.command("import")(import_cmd)
    works_app.command("foreign")(foreign_cmd)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from forensics.errors import ForensicsError
from rongxin.cli_common import console, err_console, fail

LibraryOption = Annotated[Path, typer.Option("--library", "-l", help="The library directory.")]


def import_cmd(
    hash_list: Annotated[Path, typer.Argument(help="The hash list file (.rxhl) another member exported.")],
    library: LibraryOption,
    from_member: Annotated[
        str | None,
        typer.Option(
            "--from", help="The member the list must come from (default: the --signer certificate's)."
        ),
    ] = None,
    signer: Annotated[
        str | None,
        typer.Option(
            "--signer",
            help="The key the member is known by: its certificate (member.cert.json), a public-key PEM, "
            "a key file or the key in hex. Without it the member's first list is trusted, later ones "
            "must match.",
            metavar="CERT|PEM|HEX",
        ),
    ] = None,
    allow_unsigned: Annotated[
        bool,
        typer.Option(
            "--allow-unsigned", help="Accept a list without signature (its publisher is unchecked)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Import another member's hash list so that `rongxin identify` finds copies of its works.

    Refused, with nothing imported: a file that is not a hash list, truncated, too large,
    of an unknown version, altered (SM3), forged or signed by another key than expected,
    unsigned (without --allow-unsigned), or from another member than --from. Importing
    the same list again changes nothing.
    """
    from forensics.exchange.foreign import open_foreign
    from forensics.exchange.hashlist import check_signer
    from forensics.library import CATALOGUE, Library
    from rongxin.hashlists import ExchangeInputError, read_hash_list, read_signer

    try:
        expected = read_signer(signer) if signer is not None else None
        if expected is not None and allow_unsigned:
            raise fail("--signer and --allow-unsigned contradict each other; give one", as_json=as_json)
        member = from_member or (expected.member if expected is not None else None)
        hl = read_hash_list(hash_list)
        check_signer(
            hl,
            expected=None if expected is None else expected.key,
            member=member,
            allow_unsigned=allow_unsigned,
        )
        if not (library / CATALOGUE).exists():
            err_console.print(f"creating a new library at {library}")
        Library(library).close()
        foreign = open_foreign(library)
        assert foreign is not None
        try:
            report = foreign.import_list(hl, signer_checked=expected is not None)
        finally:
            foreign.close()
    except ExchangeInputError as exc:
        raise fail(str(exc), as_json=as_json, reason="input") from None
    except ForensicsError as exc:
        raise fail(f"{hash_list}: {exc}", as_json=as_json, reason=type(exc).__name__) from None
    doc: dict[str, object] = {
        "list_sm3": report.list_sm3.hex(),
        "member": report.member,
        "signer": report.signer,
        "created": hl.header.created,
        "works": len(hl.entries),
        "added": report.added,
        "replaced": report.replaced,
        "unchanged": report.unchanged,
        "already_imported": report.already_imported,
    }
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    signed = f"signed by key {report.signer[:16]}…" if report.signer else "UNSIGNED"
    if report.already_imported:
        console.print(f"{hash_list} (SM3 {report.list_sm3.hex()[:16]}…) was imported before; nothing changed")
        return
    console.print(
        f"imported {len(hl.entries)} works of member {report.member!r} ({signed}, list of "
        f"{hl.header.created}): {report.added} added, {report.replaced} replaced, "
        f"{report.unchanged} unchanged"
    )


def foreign_cmd(
    library: LibraryOption,
    forget: Annotated[
        str | None, typer.Option("--forget", help="Remove every work and list imported from this member.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The hash lists imported into the library, and the other members' works per kind."""
    from forensics.exchange.foreign import FOREIGN_DIR, open_foreign
    from forensics.library import CATALOGUE

    if not (library / CATALOGUE).is_file():
        raise fail(f"{library} holds no work library", as_json=as_json)
    try:
        exists = (library / FOREIGN_DIR / "foreign.db").is_file()
        foreign = open_foreign(library, readonly=forget is None) if exists else None
        if foreign is None:
            if forget is not None:
                raise fail(f"{library} holds no imported hash lists; nothing of {forget!r} to remove")
            if as_json:
                sys.stdout.write(json.dumps({"lists": [], "works": {}}) + "\n")
            else:
                console.print(f"library {library} holds no imported hash lists")
            return
        try:
            if forget is not None:
                removed = foreign.forget_member(forget)
                if not removed:
                    raise fail(f"no works of member {forget!r} were imported into {library}")
                console.print(f"removed {removed} works of member {forget!r}")
                return
            lists, works = foreign.lists(), foreign.works_by_member()
        finally:
            foreign.close()
    except ForensicsError as exc:
        raise fail(str(exc), as_json=as_json) from None
    if as_json:
        doc = {
            "lists": [
                {
                    "list_sm3": x.list_sm3.hex(),
                    "member": x.member,
                    "created": x.created,
                    "signer": x.signer,
                    "entries": x.entries,
                    "imported_at": x.imported_at,
                }
                for x in lists
            ],
            "works": works,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    table = Table(title=f"hash lists imported into {library}")
    for column in ("member", "created (UTC)", "imported (UTC)", "entries", "signer", "list SM3"):
        table.add_column(column, overflow="fold")
    for x in lists:
        table.add_row(
            x.member,
            x.created,
            x.imported_at,
            str(x.entries),
            (x.signer or "unsigned")[:16],
            x.list_sm3.hex()[:16],
        )
    console.print(table)
    for member, kinds in sorted(works.items()):
        console.print(f"{member}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
