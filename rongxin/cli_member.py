"""Members' commands against their node: anchor, fetch receipts, admit and revoke members.

* ``rongxin anchor FILE|DIGEST...`` — anchor the SM3 digest of each file (or a 64-hex
  digest) through the member's node, wait for the commit, save each receipt
  (``receipts/<digest>.receipt.cbor``) and print where; ``--batch`` anchors them all in
  one transaction (a Merkle batch) and saves each digest's proof beside the receipt
  (``<digest>.proof.json``, what ``rongxin verify --proof`` reads);
* ``rongxin receipt TX_ID|DIGEST`` — the receipt of a transaction, or of the transaction
  that anchored a digest;
* ``rongxin member add`` / ``member revoke`` — the supervisor certifies a member
  organization (its key, certificate and client profile written to a directory) and
  registers it on chain, or revokes a certificate.

Every command talks to the node named in the client profile (:mod:`rongxin.client_profile`)
and verifies what it receives against the genesis before saving it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from chain.errors import ChainError
from rongxin.cli_common import Force, console, fail, member_client, new_password, overwrite_guard, password

member_app = typer.Typer(help="Certify member organizations and revoke certificates.", no_args_is_help=True)

ClientOpt = Annotated[
    Path | None,
    typer.Option(
        "--client", help="Client profile (else $RONGXIN_CLIENT, else ./rongxin-client.toml).", metavar="FILE"
    ),
]
NodeOpt = Annotated[
    str | None, typer.Option("--node", help="The node's API URL (overrides the profile).", metavar="URL")
]
PasswordFile = Annotated[
    Path | None, typer.Option("--password-file", help="Read the key password from this file.", metavar="FILE")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _client(client: Path | None, node: str | None, password_file: Path | None) -> Any:
    """``(NodeClient, Genesis, ClientProfile)`` of the member the profile names."""
    return member_client(client, node, password_file)


def _digest_of(item: str) -> tuple[bytes, str]:
    """The digest an argument names: a file's SM3, or a 64-hex digest."""
    from chain.crypto.sm3 import sm3_file

    path = Path(item)
    if path.is_file():
        try:
            return sm3_file(path), str(path)
        except OSError as exc:
            raise fail(f"cannot read {path}: {exc.strerror}") from None
    if _HEX64.match(item):
        return bytes.fromhex(item), "digest"
    raise fail(f"{item} is neither a readable file nor a 64-hex SM3 digest")


def anchor_cmd(
    items: Annotated[
        list[str],
        typer.Argument(help="Files (their SM3 is anchored) or 64-hex digests.", metavar="FILE|DIGEST..."),
    ],
    kind: Annotated[str, typer.Option(help="What the digests are (work, evidence, report …).")] = "work",
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Where receipts are saved.", metavar="DIR")
    ] = Path("receipts"),
    batch: Annotated[
        bool, typer.Option(help="Anchor all digests in one transaction (a Merkle batch).")
    ] = False,
    client: ClientOpt = None,
    node: NodeOpt = None,
    password_file: PasswordFile = None,
    json_out: JsonOpt = False,
) -> None:
    """Anchor files or digests on the consortium ledger and save their receipts."""
    digests = [_digest_of(i) for i in items]
    cli, genesis, _ = _client(client, node, password_file)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot create {out_dir}: {exc.strerror}") from None
    rows: list[dict[str, Any]] = []
    try:
        if batch and len(digests) > 1:
            receipt, proofs = cli.anchor_batch([d for d, _ in digests], kind)
            verified = receipt.verify(genesis)
            rpath = out_dir / f"batch-{verified.tx_id.hex()[:16]}.receipt.cbor"
            rpath.write_bytes(receipt.to_bytes())
            for i, ((digest, source), path) in enumerate(zip(digests, proofs, strict=True)):
                ppath = out_dir / f"{digest.hex()}.proof.json"
                ppath.write_text(
                    json.dumps({"digest": digest.hex(), "index": i, "path": [p.hex() for p in path]}) + "\n"
                )
                rows.append(_row(source, digest, verified, rpath, ppath))
        else:
            for digest, source in digests:
                receipt = cli.anchor(digest, kind)
                verified = receipt.verify(genesis)
                rpath = out_dir / f"{digest.hex()}.receipt.cbor"
                rpath.write_bytes(receipt.to_bytes())
                rows.append(_row(source, digest, verified, rpath, None))
    except ChainError as exc:
        raise fail(f"anchoring failed: {exc}", as_json=json_out) from None
    except OSError as exc:
        raise fail(f"cannot write a receipt into {out_dir}: {exc.strerror}", as_json=json_out) from None
    finally:
        cli.close()
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        console.print(
            f"{r['source']}: {r['digest'][:16]}… anchored at height {r['height']} (tx {r['tx_id'][:16]}…); "
            f"receipt {r['receipt']}" + (f", proof {r['proof']}" if r["proof"] else ""),
            markup=False,
        )


def _row(source: str, digest: bytes, verified: Any, rpath: Path, ppath: Path | None) -> dict[str, Any]:
    return {
        "source": source,
        "digest": digest.hex(),
        "height": verified.height,
        "tx_id": verified.tx_id.hex(),
        "receipt": str(rpath),
        "proof": str(ppath) if ppath else None,
    }


def receipt_cmd(
    ident: Annotated[
        str, typer.Argument(help="A transaction id, or an anchored digest (64 hex).", metavar="TX_ID|DIGEST")
    ],
    out: Annotated[Path | None, typer.Option(help="Save the receipt here.", metavar="FILE")] = None,
    force: Force = False,
    client: ClientOpt = None,
    node: NodeOpt = None,
    password_file: PasswordFile = None,
    json_out: JsonOpt = False,
) -> None:
    """Fetch and verify the receipt of a transaction or of an anchored digest."""
    if not _HEX64.match(ident):
        raise fail(f"{ident} is not a 64-hex transaction id or digest", as_json=json_out)
    if out is not None:
        overwrite_guard(out, force)
    cli, genesis, _ = _client(client, node, password_file)
    key = bytes.fromhex(ident)
    proof: dict[str, Any] | None = None
    try:
        try:
            receipt = cli.receipt(key)
            found = "transaction"
        except ChainError as exc:
            if getattr(exc, "status", None) != 404:
                raise
            anchored = cli.find_anchor(key)
            if anchored is None:
                raise fail(
                    f"{ident} is neither a committed transaction nor an anchored digest", as_json=json_out
                ) from None
            receipt, found = anchored.receipt, "anchored digest"
            if anchored.path:
                proof = {"digest": ident, "index": anchored.index, "path": [p.hex() for p in anchored.path]}
        verified = receipt.verify(genesis)
    except ChainError as exc:
        raise fail(f"no receipt: {exc}", as_json=json_out) from None
    finally:
        cli.close()
    if out is not None:
        out.write_bytes(receipt.to_bytes())
        if proof is not None:
            out.with_suffix(".proof.json").write_text(json.dumps(proof) + "\n")
    doc = {
        "found": found,
        "tx_id": verified.tx_id.hex(),
        "height": verified.height,
        "block_hash": verified.block_hash.hex() if hasattr(verified, "block_hash") else None,
        "saved": str(out) if out else None,
    }
    if json_out:
        print(json.dumps(doc, indent=2))
    else:
        console.print(
            f"{found} {ident[:16]}…: committed at height {doc['height']} (tx {doc['tx_id'][:16]}…); "
            "receipt verified against the genesis" + (f"; saved to {out}" if out else ""),
            markup=False,
        )


@member_app.command("add")
def member_add(
    subject: Annotated[str, typer.Option(help="The member's name (certificate subject).")],
    roles: Annotated[
        str,
        typer.Option(
            help="Comma-separated roles: media_center, copyright_center, legal_center, regulator, auditor."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(help="Directory for the member's key, certificate and client profile.", metavar="DIR"),
    ],
    root_key: Annotated[
        Path,
        typer.Option("--root-key", help="The consortium's root key (supervisor/root.key).", metavar="FILE"),
    ],
    organization: Annotated[str | None, typer.Option(help="Organization (default: the subject).")] = None,
    member_node: Annotated[
        str | None,
        typer.Option(
            "--member-node", help="API URL of the member's own node for its profile.", metavar="URL"
        ),
    ] = None,
    member_password_file: Annotated[
        Path | None,
        typer.Option("--member-password-file", help="Password for the member's new key.", metavar="FILE"),
    ] = None,
    force: Force = False,
    client: ClientOpt = None,
    node: NodeOpt = None,
    password_file: PasswordFile = None,
) -> None:
    """Certify a member organization with the root key and register it on chain (supervisor)."""
    from chain.crypto import PrivateKey
    from chain.crypto.keyfile import load_private_key, save_private_key
    from chain.node.identity import certificate_to_json
    from chain.types import Certificate, Role
    from rongxin.client_profile import write_profile

    try:
        role_list = [Role(r.strip()) for r in roles.split(",") if r.strip()]
    except ValueError as exc:
        raise fail(f"unknown role: {exc}") from None
    if not role_list or {Role.SUPERVISOR, Role.CONSENSUS_NODE, Role.OBSERVER_NODE} & set(role_list):
        raise fail(
            "a member has one or more of the roles media_center, copyright_center, legal_center, "
            "regulator, auditor"
        )
    if out.exists() and any(out.iterdir()) and not force:
        raise fail(f"{out} is not empty (use --force to write into it)")
    cli, genesis, profile = _client(client, node, password_file)
    try:
        root_pw = password(password_file, prompt="Root key password")
        root = load_private_key(root_key, root_pw)
        if root.public_key.to_bytes() != genesis.root_key().to_bytes():
            raise fail(f"{root_key} is not this consortium's root key")
        key = PrivateKey.generate()
        not_before = int(time.time() * 1000) - 3600_000  # an hour's leeway for slow clocks
        cert = Certificate.issue(
            root, subject, organization or subject, role_list, key.public_key, not_before
        )
        member_pw = new_password(member_password_file, prompt="Password for the member's key")
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        save_private_key(key, out / "member.key", member_pw, overwrite=force)
        (out / "member.cert.json").write_text(certificate_to_json(cert))
        done = cli.send("member.add", {"certificate": cert.to_dict()})
        write_profile(
            out / "rongxin-client.toml",
            member_node or cli.url,
            profile.genesis,
            out / "member.key",
            out / "member.cert.json",
        )
    except ChainError as exc:
        raise fail(f"member not added: {exc}") from None
    except OSError as exc:
        raise fail(f"member not added: {exc.filename}: {exc.strerror}") from None
    finally:
        cli.close()
    console.print(
        f"member {subject} ({', '.join(r.value for r in role_list)}) registered "
        f"at height {done.get('height')}; "
        f"certificate id {cert.cert_id.hex()}; key, certificate and client profile in {out}",
        markup=False,
    )


@member_app.command("revoke")
def member_revoke(
    cert_id: Annotated[
        str, typer.Argument(help="The certificate id (64 hex) or a certificate JSON file.", metavar="CERT")
    ],
    reason: Annotated[str, typer.Option(help="Why (recorded on chain).")] = "revoked by the supervisor",
    client: ClientOpt = None,
    node: NodeOpt = None,
    password_file: PasswordFile = None,
) -> None:
    """Revoke a member's or node's certificate (supervisor); nodes drop it at the next height."""
    from chain.node.identity import certificate_from_json

    path = Path(cert_id)
    if path.is_file():
        try:
            target = certificate_from_json(path.read_text()).cert_id
        except (OSError, ValueError, ChainError) as exc:
            raise fail(f"{path} is not a certificate: {exc}") from None
    elif _HEX64.match(cert_id):
        target = bytes.fromhex(cert_id)
    else:
        raise fail(f"{cert_id} is neither a certificate file nor a 64-hex certificate id")
    cli, _, _ = _client(client, node, password_file)
    try:
        done = cli.send("member.revoke", {"cert_id": target, "reason": reason})
    except ChainError as exc:
        raise fail(f"not revoked: {exc}") from None
    finally:
        cli.close()
    console.print(
        f"certificate {target.hex()[:16]}… revoked (tx at height {done.get('height')})", markup=False
    )
