"""``rongxin vault …``: a member's encrypted off-chain vault, served by its node.

* ``vault put FILE... [--grant CERT_ID]`` — seal each file under a fresh SM4 key on this
  machine, store the ciphertext on the member's node (which copies it to the supervisory
  organization's node), register it on chain with the key wrapped to the member, and
  optionally grant it at once;
* ``vault get DIGEST --out FILE`` — fetch an object the member owns or was granted,
  decrypt it and check it end to end (the file appears only if everything verified);
* ``vault grant DIGEST CERT_ID`` / ``vault revoke DIGEST CERT_ID`` — let a court, the
  regulator or another center read an object, or stop it; the grant's receipt is saved
  (``receipts/<tx>.receipt.cbor``) and verifies offline with ``rongxin verify``;
* ``vault scrub`` — have the node re-hash every object and repair what is damaged or
  missing from a replica; ``vault status`` — what the node holds and still has to copy.

Every command uses the member's client profile (see :mod:`rongxin.client_profile`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from chain.errors import ChainError
from rongxin.cli_common import Force, console, fail, overwrite_guard
from rongxin.cli_member import ClientOpt, JsonOpt, NodeOpt, PasswordFile, _client

app = typer.Typer(help="The encrypted off-chain vault: store, fetch, grant, scrub.", no_args_is_help=True)

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
Digest = Annotated[str, typer.Argument(help="The object's digest (64 hex digits).", metavar="DIGEST")]
Member = Annotated[
    str, typer.Argument(help="The grantee's certificate id (64 hex digits).", metavar="CERT_ID")
]
OutDir = Annotated[Path, typer.Option("--out-dir", help="Where receipts are saved.", metavar="DIR")]


def _hex32(value: str, what: str) -> bytes:
    if not _HEX64.match(value):
        raise fail(f"{what} must be 64 hex digits, not {value[:80]!r}")
    return bytes.fromhex(value)


@contextmanager
def _open(client: Path | None, node: str | None, password_file: Path | None) -> Iterator[tuple[Any, Any]]:
    """``(VaultClient, Genesis)`` of the profile's member; its connections are closed on exit."""
    from rongxin.vault_keep import member_vault

    cli, genesis, _ = _client(client, node, password_file)
    vault = member_vault(cli, genesis)
    try:
        yield vault, genesis
    finally:
        vault.objects.close()
        cli.close()


def _save_receipt(receipt: Any, genesis: Any, out_dir: Path) -> tuple[Path, Any]:
    verified = receipt.verify(genesis)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{verified.tx_id.hex()}.receipt.cbor"
    path.write_bytes(receipt.to_bytes())
    return path, verified


@app.command("put")
def put_cmd(
    files: Annotated[list[Path], typer.Argument(help="Files to store.", metavar="FILE...")],
    grant: Annotated[
        list[str] | None,
        typer.Option("--grant", help="Grant each object to this certificate id too (repeatable)."),
    ] = None,
    out_dir: OutDir = Path("receipts"),
    client: ClientOpt = None,
    node: NodeOpt = None,
    password_file: PasswordFile = None,
    json_out: JsonOpt = False,
) -> None:
    """Seal files under fresh keys, store them on the member's node and register them on chain."""
    for f in files:
        if not f.is_file():
            raise fail(f"{f} is not a readable file", as_json=json_out)
    grantees = [_hex32(g, "--grant") for g in grant or []]
    rows: list[dict[str, Any]] = []
    try:
        with _open(client, node, password_file) as (vault, genesis):
            for f in files:
                stored = vault.put(f)
                row: dict[str, Any] = {
                    "file": str(f),
                    "object": stored.digest.hex(),
                    "content_sm3": stored.header.content_sm3.hex(),
                    "size": stored.header.content_size,
                    "tx_id": stored.tx_id.hex(),
                    "height": stored.height,
                    "grants": [],
                }
                for member in grantees:
                    rpath, verified = _save_receipt(vault.grant(stored.digest, member), genesis, out_dir)
                    row["grants"].append(
                        {"member": member.hex(), "height": verified.height, "receipt": str(rpath)}
                    )
                rows.append(row)
    except ChainError as exc:
        raise fail(f"vault put failed: {exc}", as_json=json_out) from None
    except OSError as exc:
        raise fail(f"vault put failed: {exc.strerror or exc}", as_json=json_out) from None
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        console.print(
            f"{r['file']}: object {r['object']} ({r['size']} bytes, content SM3 {r['content_sm3'][:16]}…) "
            f"registered at height {r['height']}"
            + "".join(f"; granted to {g['member'][:16]}… (receipt {g['receipt']})" for g in r["grants"]),
            markup=False,
        )


@app.command("get")
def get_cmd(
    digest: Digest,
    out: Annotated[Path, typer.Option("--out", help="Where to write the decrypted file.", metavar="FILE")],
    force: Force = False,
    client: ClientOpt = None,
    node: NodeOpt = None,
    password_file: PasswordFile = None,
    json_out: JsonOpt = False,
) -> None:
    """Fetch an object the member owns or was granted, decrypt and check it."""
    raw = _hex32(digest, "the object digest")
    overwrite_guard(out, force)
    try:
        with _open(client, node, password_file) as (vault, _):
            header = vault.get(raw, out)
    except ChainError as exc:
        raise fail(f"vault get failed: {exc}", as_json=json_out) from None
    row = {
        "object": digest.lower(),
        "out": str(out),
        "size": header.content_size,
        "content_sm3": header.content_sm3.hex(),
    }
    if json_out:
        print(json.dumps(row, indent=2))
        return
    console.print(
        f"{out}: {row['size']} bytes, content SM3 {row['content_sm3']} (checked against the object)",
        markup=False,
    )


def _grant_or_revoke(
    action: str,
    digest: str,
    member: str,
    out_dir: Path,
    client: Path | None,
    node: str | None,
    password_file: Path | None,
    json_out: bool,
) -> None:
    raw, who = _hex32(digest, "the object digest"), _hex32(member, "the certificate id")
    try:
        with _open(client, node, password_file) as (vault, genesis):
            receipt = vault.grant(raw, who) if action == "grant" else vault.revoke(raw, who)
            rpath, verified = _save_receipt(receipt, genesis, out_dir)
    except ChainError as exc:
        raise fail(f"vault {action} failed: {exc}", as_json=json_out) from None
    except OSError as exc:
        raise fail(f"cannot save the receipt in {out_dir}: {exc.strerror}", as_json=json_out) from None
    row = {
        "action": action,
        "object": digest.lower(),
        "member": member.lower(),
        "tx_id": verified.tx_id.hex(),
        "height": verified.height,
        "receipt": str(rpath),
    }
    if json_out:
        print(json.dumps(row, indent=2))
        return
    verb = "granted to" if action == "grant" else "revoked for"
    console.print(
        f"object {digest[:16]}… {verb} {member[:16]}… at height {row['height']}; receipt {rpath}",
        markup=False,
    )


def _member_command(action: str, summary: str) -> Callable[..., None]:
    """The ``grant`` or ``revoke`` command (same arguments, one action each)."""

    def command(
        digest: Digest,
        member: Member,
        out_dir: OutDir = Path("receipts"),
        client: ClientOpt = None,
        node: NodeOpt = None,
        password_file: PasswordFile = None,
        json_out: JsonOpt = False,
    ) -> None:
        _grant_or_revoke(action, digest, member, out_dir, client, node, password_file, json_out)

    command.__doc__ = summary
    command.__name__ = f"{action}_cmd"
    return command


app.command("grant")(
    _member_command(
        "grant", "Let another member read an object (its key wrapped to theirs, recorded on chain)."
    )
)
app.command("revoke")(
    _member_command(
        "revoke", "Stop serving an object to a member (a key it already unwrapped stays known to it)."
    )
)


@app.command("scrub")
def scrub_cmd(
    client: ClientOpt = None,
    node: NodeOpt = None,
    password_file: PasswordFile = None,
    json_out: JsonOpt = False,
) -> None:
    """Have the node re-hash every object and repair damaged or missing ones from replicas."""
    try:
        with _open(client, node, password_file) as (vault, _):
            report = vault.objects.scrub()
    except ChainError as exc:
        raise fail(f"vault scrub failed: {exc}", as_json=json_out) from None
    if json_out:
        print(json.dumps(report, indent=2))
    else:
        console.print(
            f"checked {report.get('checked')}: {report.get('intact')} intact, "
            f"{len(report.get('damaged', []))} damaged, {len(report.get('missing', []))} missing, "
            f"{len(report.get('repaired', []))} repaired, {len(report.get('lost', []))} lost",
            markup=False,
        )
    if report.get("lost"):
        raise typer.Exit(1)


@app.command("status")
def status_cmd(
    client: ClientOpt = None,
    node: NodeOpt = None,
    password_file: PasswordFile = None,
) -> None:
    """What the node's vault holds, its replication backlog and its last scrub (JSON)."""
    try:
        with _open(client, node, password_file) as (vault, _):
            print(json.dumps(vault.objects.status(), indent=2))
    except ChainError as exc:
        raise fail(f"vault status failed: {exc}") from None
