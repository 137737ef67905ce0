"""``rongxin transfer …``: the auditor's commands for confidential transfers.

* ``auditor-keygen KEYFILE`` — a new auditor key, saved password-protected (scrypt +
  SM4-GCM); prints the public key to register with a ``zkp.auditor`` transaction;
* ``audit`` — decrypt and check recorded transfers, either one exported record
  (``--record FILE``, the CBOR kept under ``zkp/xfer/…``) or every transfer of a work read
  from a ledger store (``--db ledger.db --genesis genesis.cbor --work HEX``). Each transfer's
  proofs are verified again, then price and shares are decrypted and checked to balance.

Mounted by ``rongxin.cli`` as ``app.add_typer(cli_zkp.app, name="transfer")``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chain.errors import ChainError
from chain.store import LedgerStore
from chain.types import Genesis
from zkp.auditor import AuditorKey, open_auditor_key, seal_auditor_key
from zkp.contract import TransferRecord, transfer_records
from zkp.errors import ZkpError
from zkp.transfer import audit, verify_transfer

app = typer.Typer(help="Confidential copyright transfers: auditor keys and audits.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)
PASSWORD_ENV = "RONGXIN_KEY_PASSWORD"  # the same variable as the other key commands

PasswordFile = Annotated[
    Path | None,
    typer.Option(help=f"Read the key password from this file (else ${PASSWORD_ENV}, else a prompt)."),
]


def _fail(message: str) -> typer.Exit:
    from rongxin import cli  # imported here: rongxin.cli mounts this module

    return cli._fail(message)


def _password(password_file: Path | None, confirm: bool = False) -> str:
    from rongxin import cli

    return cli._password(password_file, confirm)


@app.command("auditor-keygen")
def auditor_keygen(
    keyfile: Annotated[Path, typer.Argument(help="Where to write the new auditor key file.")],
    password_file: PasswordFile = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Create an auditor (regulator) key; print its public key."""
    if keyfile.exists() and not force:
        raise _fail(f"{keyfile} exists; pass --force to overwrite it")
    key = AuditorKey.generate()
    blob = seal_auditor_key(key, _password(password_file, confirm=True))
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(blob)
    console.print(key.public.encode().hex())


def _records(
    record: Path | None, db: Path | None, genesis: Path | None, work: str | None
) -> list[TransferRecord]:
    if record is not None:
        try:
            return [TransferRecord.from_bytes(record.read_bytes())]
        except OSError as exc:
            raise _fail(f"cannot read {record}: {exc.strerror}") from None
    if db is None or genesis is None or work is None:
        raise _fail("give --record FILE, or --db, --genesis and --work together")
    try:
        work_id = bytes.fromhex(work)
        gen = Genesis.from_bytes(genesis.read_bytes())
        store = LedgerStore(db, gen.hash)
    except (ValueError, OSError, ChainError) as exc:
        raise _fail(f"cannot open the ledger: {exc}") from None
    try:
        return list(transfer_records(_StoreState(store), work_id))
    finally:
        store.close()


class _StoreState:
    def __init__(self, store: LedgerStore) -> None:
        self._store = store

    def get(self, key: bytes) -> bytes | None:
        return self._store.get_state(key)


@app.command("audit")
def audit_cmd(
    key: Annotated[Path, typer.Option("--key", help="The auditor key file.")],
    record: Annotated[Path | None, typer.Option(help="One exported transfer record (CBOR).")] = None,
    db: Annotated[Path | None, typer.Option(help="A ledger store (SQLite).")] = None,
    genesis: Annotated[Path | None, typer.Option(help="The chain's genesis file.")] = None,
    work: Annotated[str | None, typer.Option(help="Work id (64 hex digits).")] = None,
    password_file: PasswordFile = None,
) -> None:
    """Verify, decrypt and check recorded transfers; exit 1 if any fails."""
    try:
        auditor = open_auditor_key(key.read_bytes(), _password(password_file))
    except OSError as exc:
        raise _fail(f"cannot read {key}: {exc.strerror}") from None
    except ZkpError as exc:
        raise _fail(str(exc)) from None
    records = _records(record, db, genesis, work)
    if not records:
        raise _fail("no recorded transfer found for this work")
    table = Table("work", "seq", "height", "price", "royalty shares")
    failed = 0
    for rec in records:
        try:
            verify_transfer(rec.transfer, rec.chain_id, rec.record, auditor.public)
            report = audit(rec.transfer, auditor)
        except ZkpError as exc:
            failed += 1
            err_console.print(f"[red]transfer {rec.record.work.hex()[:16]}… seq {rec.record.seq}:[/] {exc}")
            continue
        shares = ", ".join(f"{party.decode(errors='replace')}={amount}" for party, amount in report.shares)
        table.add_row(
            rec.record.work.hex()[:16] + "…", str(rec.record.seq), str(rec.height), str(report.price), shares
        )
    console.print(table)
    if failed:
        raise typer.Exit(1)
