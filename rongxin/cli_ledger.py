"""``rongxin ledger …``: checkpoints and receipts read from a node's ledger store.

* ``checkpoint --db node.db --genesis genesis.cbor --out checkpoint.cbor`` — a checkpoint
  at the node's committed head, and its block hash to compare with what other members
  publish before pinning it (``rongxin verify RECEIPT --checkpoint checkpoint.cbor``);
* ``receipt TX_ID --db node.db --genesis genesis.cbor --out receipt.cbor`` — the receipt of
  a committed transaction, rebuilt up to the node's head: what a receipt made before a
  checkpoint needs in order to verify against it.

Mounted by ``rongxin.cli`` as ``app.add_typer(cli_ledger.app, name="ledger")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from chain.errors import ChainError
from chain.receipt import build_checkpoint, build_receipt, verify_checkpoint
from rongxin.cli_common import Force, console, fail, open_ledger, overwrite_guard, write_output

app = typer.Typer(help="Checkpoints and receipts from a node's ledger store.", no_args_is_help=True)

Db = Annotated[Path, typer.Option(help="The node's ledger store (ledger/node-0.db).", metavar="FILE")]
GenesisFile = Annotated[
    Path, typer.Option(help="The chain's genesis document (genesis.cbor).", metavar="FILE")
]
Out = Annotated[Path, typer.Option(help="Where to write the file.", metavar="FILE")]


@app.command("checkpoint")
def checkpoint_cmd(db: Db, genesis: GenesisFile, out: Out, force: Force = False) -> None:
    """Write a checkpoint at the node's committed head; print the hash to compare before pinning."""
    overwrite_guard(out, force)
    with open_ledger(db, genesis) as (store, g):
        try:
            cp = build_checkpoint(store, g)
            info = verify_checkpoint(cp, g)
        except ChainError as exc:
            raise fail(str(exc)) from None
    write_output(out, cp.to_bytes(), force=force, mode=0o644)
    console.print(
        escape(
            f"checkpoint of {g.chain_id} at height {info.height}, epoch {info.epoch} "
            f"({len(info.record.validators)} validators) written to {out}\n"
            f"block hash {info.digest} — compare it with what other members publish before pinning it"
        )
    )


@app.command("receipt")
def receipt_cmd(
    tx_id: Annotated[str, typer.Argument(help="Transaction id (64 hex digits).")],
    db: Db,
    genesis: GenesisFile,
    out: Out,
    force: Force = False,
) -> None:
    """Write the receipt of a committed transaction, with proofs up to the node's head."""
    overwrite_guard(out, force)
    try:
        raw_id = bytes.fromhex(tx_id)
    except ValueError:
        raise fail("the transaction id must be 64 hex digits") from None
    if len(raw_id) != 32:
        raise fail("the transaction id must be 64 hex digits")
    with open_ledger(db, genesis) as (store, g):
        try:
            receipt = build_receipt(store, raw_id)
            info = receipt.verify(g)
        except ChainError as exc:
            raise fail(str(exc)) from None
    write_output(out, receipt.to_bytes(), force=force, mode=0o644)
    console.print(
        escape(f"receipt of {info.transaction.type} tx {tx_id[:16]}… (height {info.height}) written to {out}")
    )
