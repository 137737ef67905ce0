"""``rongxin query ...``: run regulators' privacy-preserving queries across agencies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from privacy import paillier
from privacy.audit import AuditLog, ExecutorAnchor
from privacy.config import Deployment
from privacy.demo_data import write_demo
from privacy.errors import PrivacyError
from privacy.query import Regulator
from privacy.spec import parse
from rongxin.cli_common import Force, PasswordFile, console, fail, overwrite_guard, password

app = typer.Typer(
    help="Privacy-preserving aggregate queries across agencies (Paillier / MPC).", no_args_is_help=True
)


def _keypair(dep: Deployment, password_file: Path | None) -> tuple[paillier.PublicKey, paillier.PrivateKey]:
    key_file = dep.regulator.get("key_file")
    if key_file is None:
        return paillier.generate_keypair(int(dep.regulator.get("key_bits", paillier.DEFAULT_BITS)))
    sk = paillier.load_private_key(
        dep.base / key_file, password(password_file, prompt="Paillier key password")
    )
    return sk.public_key, sk


@app.command("run")
def run(
    spec: Annotated[str, typer.Argument(help="Query: SQL-like text, JSON text, or @FILE with either.")],
    agencies: Annotated[Path, typer.Option("--agencies", help="Deployment file (agencies.toml or .json).")],
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Use only these agencies (repeat).")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    unpacked: Annotated[bool, typer.Option(help="Paillier without slot packing (plain phe).")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds before an agency counts as dropped out.")] = 300.0,
    password_file: PasswordFile = None,
) -> None:
    """Run one query across the agencies and print the result (table or JSON)."""
    text = Path(spec[1:]).read_text(encoding="utf-8") if spec.startswith("@") else spec
    try:
        dep = Deployment.from_file(agencies)
        query = parse(text)
        log = AuditLog(ExecutorAnchor.ephemeral(), dep.base / "audit.jsonl")
        regulator = Regulator(
            dep.catalog,
            dep.clients(only),
            _keypair(dep, password_file),
            str(dep.regulator.get("requester", "regulator")),
            str(dep.regulator.get("role", "regulator")),
            log,
            timeout,
        )
        with console.status("running query…") as status:
            result = regulator.run(query, packed=not unpacked, progress=lambda m: status.update(m))
    except PrivacyError as exc:
        raise fail(str(exc)) from None
    if output == "json":
        console.print_json(json.dumps(result.to_json(), ensure_ascii=False, default=str))
        return
    table = Table(title=f"{query.aggregate} over {query.table} ({result.path})")
    for c in result.columns:
        table.add_column(str(c))
    for row in result.rows:
        table.add_row(*("—" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    if result.audit is not None and result.anchor is not None:
        console.print(
            f"audit record {result.audit.digest().hex()[:16]}… anchored at height {result.anchor.height} "
            f"(tx {result.anchor.tx_id.hex()[:16]}…)"
        )


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Argument(help="Directory to write the demo agencies into.")] = Path(
        "demo-query"
    ),
    rows: Annotated[int, typer.Option(help="Rows of the plays table per agency.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed (same seed, same data).")] = 2026,
) -> None:
    """Generate the five-agency demo (SQLite and CSV sources) and its agencies.toml."""
    config = write_demo(out, rows=rows, seed=seed)
    console.print(
        f"wrote {config}; try: rongxin query run \"SELECT COUNT(*) FROM cases WHERE status = 'confirmed' "
        f'GROUP BY county" --agencies {config}'
    )


@app.command("keygen")
def keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the encrypted Paillier key file.")],
    bits: Annotated[int, typer.Option(help="Modulus size (2048 minimum).")] = paillier.DEFAULT_BITS,
    password_file: PasswordFile = None,
    force: Force = False,
) -> None:
    """Create the regulator's Paillier key, encrypted at rest (a sealed secret: scrypt + SM4-GCM)."""
    overwrite_guard(path, force)
    secret = password(password_file, confirm=True, prompt="Password")
    try:
        _pk, sk = paillier.generate_keypair(bits)
        paillier.save_private_key(sk, path, secret, overwrite=force)
    except PrivacyError as exc:
        raise fail(str(exc)) from None
    console.print(f"wrote {path} (fingerprint {paillier.fingerprint(sk.public_key).hex()[:16]}…)")
