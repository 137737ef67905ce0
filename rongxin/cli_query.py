"""``rongxin query ...``: run regulators' privacy-preserving queries across agencies."""

from __future__ import annotations

import contextlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from privacy import paillier
from privacy.audit import AuditLog, LedgerAnchor
from privacy.config import Deployment
from privacy.demo_data import write_demo
from privacy.errors import PrivacyError
from privacy.identity import Identity
from privacy.query import Regulator
from privacy.spec import parse
from rongxin.cli_common import Force, PasswordFile, console, fail, new_password, overwrite_guard, password
from rongxin.client_profile import ProfileError

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


class OutputFormat(StrEnum):
    """How ``query run`` prints its result (and its errors)."""

    table = "table"
    json = "json"


@app.command("run")
def run(
    spec: Annotated[str, typer.Argument(help="Query: SQL-like text, JSON text, or @FILE with either.")],
    agencies: Annotated[
        Path, typer.Option("--agencies", help="Deployment file (agencies.toml or .json).", metavar="FILE")
    ],
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Use only these agencies (repeat).", metavar="AGENCY")
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table, or json (errors too, as {error, reason}).")
    ] = OutputFormat.table,
    unpacked: Annotated[bool, typer.Option(help="Paillier without slot packing (plain phe).")] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds before an agency counts as dropped out.", metavar="SECONDS")
    ] = 300.0,
    password_file: PasswordFile = None,
    client: Annotated[
        Path | None,
        typer.Option(
            "--client",
            help="The regulator's client profile: anchor the audit record through its node.",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Run one query across the agencies and print the result (table or JSON).

    The query is signed with the regulator's SM2 identity: the deployment's ``[regulator]``
    identity files, or else the member key of ``--client``'s profile. Each query's audit
    record is appended to ``audit.jsonl`` next to the deployment file.
    With ``--client`` (the regulator's client profile) the record's digest is anchored
    through the regulator's node and its receipt saved in ``audit-receipts/``; without it,
    nothing is anchored and the command says so.
    """
    as_json = output is OutputFormat.json
    closing = contextlib.ExitStack()
    try:
        text = Path(spec[1:]).read_text(encoding="utf-8") if spec.startswith("@") else spec
    except OSError as exc:
        raise fail(f"cannot read {spec[1:]}: {exc.strerror}", as_json=as_json, reason="input") from None
    try:
        dep = Deployment.from_file(agencies)
        query = parse(text)
        anchor, member = _ledger_anchor(client, as_json) if client is not None else (None, None)
        log = AuditLog(anchor, dep.base / "audit.jsonl")
        # the requester's identity: the deployment's [regulator] identity files, else the
        # member identity of the client profile
        identity = member if member is not None and "identity_key" not in dep.regulator else None
        identity = identity or dep.regulator_identity()
        trust = dep.trust
        if dep.ledger is not None and trust is not None:  # agencies revoked on the ledger are refused
            from rongxin.privacy_ledger import attach_ledger

            trust, ledger_client = attach_ledger(trust, dep.ledger)
            closing.callback(ledger_client.close)
        regulator = Regulator(
            dep.catalog,
            dep.clients(only, identity, trust),
            _keypair(dep, password_file),
            identity,
            str(dep.regulator.get("role", "regulator")),
            log,
            timeout,
            trust=trust,
        )
        with closing, console.status("running query…") as status:
            result = regulator.run(query, packed=not unpacked, progress=lambda m: status.update(m))
    except (PrivacyError, ProfileError) as exc:
        raise fail(str(exc), as_json=as_json, reason=type(exc).__name__) from None
    except OSError as exc:
        raise fail(f"cannot use {exc.filename}: {exc.strerror}", as_json=as_json, reason="io") from None
    if as_json:
        console.print_json(json.dumps(result.to_json(), ensure_ascii=False, default=str))
        return
    table = Table(title=escape(f"{query.aggregate} over {query.table} ({result.path})"))
    for c in result.columns:
        table.add_column(escape(str(c)))
    for row in result.rows:
        table.add_row(
            *(escape("—" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row)
        )
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    if result.audit is not None:
        digest = result.audit.digest()
        if anchor is None:
            console.print(
                f"audit record {digest.hex()[:16]}… written to {escape(str(log.path))}; "
                "not anchored: no ledger node is configured (give --client)"
            )
            return
        receipt = anchor.receipts.get(digest)
        saved = dep.base / "audit-receipts" / f"{digest.hex()}.receipt.cbor"
        if receipt is not None:
            saved.parent.mkdir(exist_ok=True)
            saved.write_bytes(receipt.to_bytes())
            info = receipt.verify(anchor.genesis)
            console.print(
                f"audit record {digest.hex()[:16]}… anchored at height {info.height} "
                f"(tx {info.tx_id.hex()[:16]}…); receipt {escape(str(saved))}"
            )


def _ledger_anchor(client: Path, as_json: bool) -> tuple[LedgerAnchor, Identity]:
    """An audit anchor through the node of the regulator's client profile, and the
    profile's member identity (which can sign the queries)."""
    from rongxin.cli_common import member_client

    ledger, genesis, _ = member_client(client, as_json=as_json)
    return LedgerAnchor(ledger, genesis), Identity(ledger.key, ledger.cert)


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Argument(help="Directory to write the demo agencies into.")] = Path(
        "demo-query"
    ),
    rows: Annotated[int, typer.Option(help="Rows of the plays table per agency.", metavar="N")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed (same seed, same data).", metavar="N")] = 2026,
) -> None:
    """Generate the five-agency demo (SQLite and CSV sources) and its agencies.toml."""
    try:
        config = write_demo(out, rows=rows, seed=seed)
    except OSError as exc:
        raise fail(f"cannot write {exc.filename or out}: {exc.strerror}") from None
    console.print(
        escape(
            f"wrote {config}; try: rongxin query run \"SELECT COUNT(*) FROM cases WHERE status = 'confirmed' "
            f'GROUP BY county" --agencies {config}'
        )
    )


@app.command("keygen")
def keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the encrypted Paillier key file.")],
    bits: Annotated[
        int, typer.Option(help="Modulus size (2048 minimum).", metavar="BITS")
    ] = paillier.DEFAULT_BITS,
    password_file: PasswordFile = None,
    force: Force = False,
) -> None:
    """Create the regulator's Paillier key, encrypted at rest (a sealed secret: scrypt + SM4-GCM)."""
    overwrite_guard(path, force)
    secret = new_password(password_file, prompt="Password")
    try:
        _pk, sk = paillier.generate_keypair(bits)
        paillier.save_private_key(sk, path, secret, overwrite=force)
    except PrivacyError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"wrote {escape(str(path))} (fingerprint {paillier.fingerprint(sk.public_key).hex()[:16]}…)"
    )
