"""``rongxin chain snapshot …``: state-sync snapshots of a node's ledger store.

* ``export --db ledger.db --genesis genesis.cbor --out snap/ [--height H]`` — the state at
  the node's head (or at committed height ``H``) as a manifest and ≤ 4 MiB chunks in the
  new directory ``snap/``, with the commit proof of its block;
* ``import snap/ --db new.db --genesis genesis.cbor [--checkpoint cp.cbor]`` — check the
  snapshot against the genesis (commit proof, epochs, state root) and create the new
  database ``new.db`` from it; a node started on it block-syncs from the snapshot's height.

:data:`snapshot_app` is mounted by ``rongxin.cli`` under the ``chain`` command group
(``cli_chain.app.add_typer(snapshot_app, name="snapshot")``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chain.errors import ChainError
from chain.receipt import Checkpoint
from chain.snapshot import CHUNK_BYTES, import_snapshot_dir, write_snapshot
from chain.types import Genesis
from rongxin.cli_common import console, err_console, fail, open_ledger, read_file

snapshot_app = typer.Typer(
    help="State-sync snapshots: export a node's state at a height, restore a new node from one.",
    no_args_is_help=True,
)

GenesisFile = Annotated[
    Path, typer.Option(help="The chain's genesis document (genesis.cbor).", metavar="FILE")
]


@contextmanager
def _progress(what: str, total: int | None) -> Iterator[Callable[[int, int], None]]:
    """A chunk counter on stderr; yields the ``progress(done, total)`` callback."""
    with Progress(
        TextColumn(f"{what} [progress.description]{{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("chunks", total=total)

        def update(done: int, of: int) -> None:
            bar.update(task, completed=done, total=of or None)

        yield update


@snapshot_app.command("export")
def export_cmd(
    db: Annotated[Path, typer.Option(help="The node's ledger store (ledger.db).", metavar="FILE")],
    genesis: GenesisFile,
    out: Annotated[Path, typer.Option(help="New directory for the snapshot.", metavar="DIR")],
    height: Annotated[
        int | None, typer.Option(help="A committed height (default: the node's head).", metavar="H")
    ] = None,
    chunk_mib: Annotated[float, typer.Option(help="Target chunk size in MiB.", metavar="MIB")] = (
        CHUNK_BYTES / (1 << 20)
    ),
) -> None:
    """Export the state at a committed height with its block's commit proof."""
    start = time.perf_counter()
    with open_ledger(db, genesis) as (store, g), _progress("exporting", None) as progress:
        try:
            manifest = write_snapshot(
                store, g, out, height, chunk_bytes=int(chunk_mib * (1 << 20)), progress=progress
            )
        except ChainError as exc:
            raise fail(str(exc)) from None
    console.print(
        escape(
            f"snapshot of {g.chain_id} at height {manifest.height}: {manifest.entries} state entries in "
            f"{len(manifest.chunks)} chunks ({manifest.size / 1e6:.1f} MB) written to {out} "
            f"in {time.perf_counter() - start:.1f} s\nblock hash {manifest.block_hash.hex()}"
        )
    )


@snapshot_app.command("import")
def import_cmd(
    snapshot: Annotated[Path, typer.Argument(help="Snapshot directory (from snapshot export).")],
    db: Annotated[Path, typer.Option(help="The new node's ledger store to create.", metavar="FILE")],
    genesis: GenesisFile,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A pinned checkpoint the snapshot must not be older than.", metavar="FILE"),
    ] = None,
) -> None:
    """Verify a snapshot against the genesis and create a new node's store from it."""
    start = time.perf_counter()
    try:
        g = Genesis.from_bytes(read_file(genesis))
        cp = None if checkpoint is None else Checkpoint.from_bytes(read_file(checkpoint))
        with _progress("importing", None) as progress:
            info = import_snapshot_dir(snapshot, db, g, checkpoint=cp, progress=progress)
    except ChainError as exc:
        raise fail(f"snapshot refused: {exc}") from None
    console.print(
        escape(
            f"restored {db} at height {info.height} (epoch {info.epoch}): {info.entries} state entries "
            f"verified against the block's state root in {time.perf_counter() - start:.1f} s\n"
            "start the node on it: it block-syncs from there"
        )
    )
