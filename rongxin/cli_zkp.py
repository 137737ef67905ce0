"""``rongxin transfer …``: the auditor's commands for confidential transfers.

* ``auditor-keygen KEYFILE`` — a new auditor key, saved password-protected (a sealed
  secret: scrypt + SM4-GCM, written atomically with mode 0600); prints the public key to
  register with a ``zkp.auditor`` transaction;
* ``audit`` — decrypt and check recorded transfers, either one exported record
  (``--record FILE``, the CBOR kept under ``zkp/xfer/…``) or every transfer of a work read
  from a ledger store (``--db ledger.db --genesis genesis.cbor --work HEX``), or through
  the member's node (``--client rongxin-client.toml --work HEX``: proven state reads). Each transfer's
  proofs are verified again, then price and shares are decrypted and checked to balance.

Mounted by ``rongxin.cli`` as ``app.add_typer(cli_zkp.app, name="transfer")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from chain.store import LedgerStore
from rongxin.cli_common import (
    PasswordFile,
    console,
    err_console,
    fail,
    new_password,
    open_ledger,
    overwrite_guard,
    password,
    read_file,
    write_output,
)
from zkp.auditor import AuditorKey, open_auditor_key, seal_auditor_key
from zkp.contract import TransferRecord, transfer_records
from zkp.errors import ZkpError
from zkp.transfer import audit, verify_transfer

app = typer.Typer(help="Confidential copyright transfers: auditor keys and audits.", no_args_is_help=True)


@app.command("auditor-keygen")
def auditor_keygen(
    keyfile: Annotated[Path, typer.Argument(help="Where to write the new auditor key file.")],
    password_file: PasswordFile = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Create an auditor (regulator) key; print its public key."""
    overwrite_guard(keyfile, force)
    key = AuditorKey.generate()
    write_output(keyfile, seal_auditor_key(key, new_password(password_file)), force=force)
    console.print(key.public.encode().hex())


def _records(
    record: Path | None,
    db: Path | None,
    genesis: Path | None,
    work: str | None,
    client: Path | None = None,
    password_file: Path | None = None,
) -> list[TransferRecord]:
    if record is not None:
        data = read_file(record)
        try:
            return [TransferRecord.from_bytes(data)]
        except ZkpError as exc:
            raise fail(f"{record} is not a transfer record ({exc})") from None
    if work is None or (client is None and (db is None or genesis is None)):
        raise fail("give --record FILE, or --work with --client PROFILE, or --db, --genesis and --work")
    try:
        work_id = bytes.fromhex(work)
    except ValueError as exc:
        raise fail(f"cannot open the ledger: the work id is not hex ({exc})") from None
    if client is not None:  # through the member's node: every read proven against the genesis
        from chain.errors import ChainError
        from rongxin.cli_common import member_client
        from rongxin.contracts import LedgerStateReader

        cli, _, _ = member_client(client, None, password_file)
        try:
            return list(transfer_records(LedgerStateReader(cli), work_id))
        except ChainError as exc:
            raise fail(f"cannot read the transfers through the node: {exc}") from None
        finally:
            cli.close()
    assert db is not None and genesis is not None
    with open_ledger(db, genesis) as (store, _):
        return list(transfer_records(_StoreState(store), work_id))


class _StoreState:
    def __init__(self, store: LedgerStore) -> None:
        self._store = store

    def get(self, key: bytes) -> bytes | None:
        return self._store.get_state(key)


@app.command("audit")
def audit_cmd(
    key: Annotated[Path, typer.Option("--key", help="The auditor key file.", metavar="KEYFILE")],
    record: Annotated[
        Path | None, typer.Option(help="One exported transfer record (CBOR).", metavar="FILE")
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help="A node's ledger store (ledger/node-0.db).", metavar="FILE")
    ] = None,
    genesis: Annotated[
        Path | None, typer.Option(help="The chain's genesis document (genesis.cbor).", metavar="FILE")
    ] = None,
    work: Annotated[str | None, typer.Option(help="Work id (64 hex digits).", metavar="HEX")] = None,
    client: Annotated[
        Path | None,
        typer.Option(
            "--client", help="Read the transfers through your node (client profile).", metavar="FILE"
        ),
    ] = None,
    client_password_file: Annotated[
        Path | None,
        typer.Option("--client-password-file", help="Password of the profile's key.", metavar="FILE"),
    ] = None,
    password_file: PasswordFile = None,
) -> None:
    """Verify, decrypt and check recorded transfers; exit 1 if any fails."""
    data = read_file(key)
    try:
        auditor = open_auditor_key(data, password(password_file))
    except ZkpError as exc:
        raise fail(str(exc)) from None
    records = _records(record, db, genesis, work, client, client_password_file)
    if not records:
        raise fail("no recorded transfer found for this work")
    table = Table("work", "seq", "height", "price", "royalty shares")
    failed = 0
    for rec in records:
        try:
            verify_transfer(rec.transfer, rec.chain_id, rec.record, auditor.public)
            report = audit(rec.transfer, auditor)
        except ZkpError as exc:
            failed += 1
            err_console.print(
                f"[red]transfer {rec.record.work.hex()[:16]}… seq {rec.record.seq}:[/] {escape(str(exc))}"
            )
            continue
        shares = ", ".join(f"{party.decode(errors='replace')}={amount}" for party, amount in report.shares)
        table.add_row(
            rec.record.work.hex()[:16] + "…",
            str(rec.record.seq),
            str(rec.height),
            str(report.price),
            escape(shares),
        )
    console.print(table)
    if failed:
        raise typer.Exit(1)
