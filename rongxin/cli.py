"""The ``rongxin`` command line (typer + rich)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from chain import crypto
from chain.crypto import envelope, keyfile
from chain.crypto.sm2 import signature_from_der, signature_to_der
from chain.errors import ChainError
from rongxin import __version__
from rongxin.cli_common import (
    Force,
    PasswordFile,
    console,
    fail,
    new_password,
    overwrite_guard,
    password,
    read_file,
)
from rongxin.errors import RongxinError

app = typer.Typer(
    help="Rongxin (融信): forensics, privacy, ZK transfers on a 国密 consortium ledger.", no_args_is_help=True
)
crypto_app = typer.Typer(
    help="National crypto (SM2/SM3/SM4): hash, keys, sign, verify, encrypt.", no_args_is_help=True
)
app.add_typer(crypto_app, name="crypto")


def _mount() -> None:
    """Sub-commands of the other packages (imported here so ``rongxin --help`` lists them)."""
    from rongxin import (
        cli_agency,
        cli_chain,
        cli_datasets,
        cli_evidence,
        cli_exchange,
        cli_ledger,
        cli_member,
        cli_node,
        cli_platform,
        cli_query,
        cli_report,
        cli_scan,
        cli_snapshot,
        cli_vault,
        cli_works,
        cli_zkp,
    )

    app.add_typer(cli_datasets.app, name="datasets", help="Build benchmark corpora and attack sets.")

    cli_works.works_app.command("import")(cli_exchange.import_cmd)
    cli_works.works_app.command("foreign")(cli_exchange.foreign_cmd)
    app.add_typer(cli_works.works_app, name="works", help="Register works in a forensics library.")
    app.command("identify")(cli_works.identify)
    app.command("scan")(cli_scan.scan)
    app.add_typer(cli_scan.cases_app, name="cases", help="Cases found by web scans.")
    app.add_typer(cli_evidence.app, name="evidence", help="Capture pages as court evidence; verify packages.")
    app.command("report")(cli_report.report)
    app.add_typer(cli_query.app, name="query", help="Regulators' encrypted cross-agency queries.")
    app.add_typer(cli_agency.app, name="agency", help="Run an agency's endpoint for privacy queries.")
    app.add_typer(cli_zkp.app, name="transfer", help="Confidential copyright transfers: auditor tools.")
    app.add_typer(cli_ledger.app, name="ledger", help="Checkpoints and receipts from a node's store.")
    cli_chain.app.add_typer(cli_snapshot.snapshot_app, name="snapshot")
    app.add_typer(cli_chain.app, name="chain", help="Create a consortium network and run its nodes.")
    app.add_typer(cli_node.app, name="node", help="Run and manage a consortium node.")
    app.add_typer(
        cli_member.member_app, name="member", help="Certify member organizations; revoke certificates."
    )
    app.add_typer(
        cli_vault.app, name="vault", help="The encrypted off-chain vault: store, fetch, grant, scrub."
    )
    app.command("anchor")(cli_member.anchor_cmd)
    app.command("receipt")(cli_member.receipt_cmd)
    app.add_typer(cli_platform.app, name="platform", help="Member platform tools: sign a sign-in challenge.")
    from rongxin.platform.serve import serve

    app.command("serve")(serve)


def _public_key(spec: str) -> crypto.PublicKey:
    """A public key from a PEM file, a Rongxin key file (public part), a file holding hex, or hex.

    A file's contents are never echoed in an error, only its name.
    """
    path = Path(spec)
    if path.is_file():
        data = read_file(path)
        try:
            if b"BEGIN PUBLIC KEY" in data:
                return crypto.PublicKey.from_pem(data)
            if b"rongxin-sm2-private-key" in data:
                return crypto.PublicKey.from_bytes(bytes.fromhex(keyfile.read_public_key_hex(path)))
            return crypto.PublicKey.from_bytes(bytes.fromhex(data.decode("ascii").strip()))
        except (ValueError, ChainError):
            raise fail(
                f"{path} is neither a PEM public key, a Rongxin key file nor a hex SM2 public key"
            ) from None
    try:
        return crypto.PublicKey.from_bytes(bytes.fromhex(spec))
    except (ValueError, ChainError):
        raise fail(f"{spec!r} is neither a PEM/key file nor a hex SM2 public key") from None


class SignatureFormat(StrEnum):
    """How ``crypto sign`` encodes a signature (``crypto verify`` reads either)."""

    raw = "raw"
    der = "der"


@app.command()
def version() -> None:
    """Print the version and the crypto backends in use."""
    from chain.crypto.sm3 import HASHLIB_SM3

    console.print(f"rongxin {__version__}")
    console.print(
        f"SM3: {'hashlib (OpenSSL)' if HASHLIB_SM3 else 'cryptography (OpenSSL)'}; "
        "SM4: cryptography (OpenSSL); SM2: system OpenSSL 3 (libcrypto.so.3)"
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the demo's files.", metavar="DIR")] = Path(
        "demo-out"
    ),
) -> None:
    """Run the end-to-end demo on embedded defaults."""
    from rongxin.demo import run_demo

    console.rule("[bold]Rongxin 融信 demo")
    try:
        report = run_demo(out, console)
    except (ChainError, RongxinError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write {exc.filename or out}: {exc.strerror}") from None
    if not report.ok:
        raise fail("the demo did not complete: see the failed steps above")
    console.print("[bold green]demo complete[/]")


@crypto_app.command("hash")
def hash_cmd(files: Annotated[list[Path], typer.Argument(help="Files to hash.", metavar="FILE...")]) -> None:
    """Print the SM3 digest of each file (constant memory, any size)."""
    for f in files:
        try:
            typer.echo(f"{crypto.sm3_file(f).hex()}  {f}")
        except ChainError as exc:
            raise fail(str(exc)) from None


@crypto_app.command()
def keygen(
    out: Annotated[Path, typer.Argument(help="Key file to create (SM4-encrypted, mode 0600).")],
    password_file: PasswordFile = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Generate an SM2 key pair and save it password-protected."""
    overwrite_guard(out, force)
    secret = new_password(password_file)
    key = crypto.PrivateKey.generate()
    try:
        keyfile.save_private_key(key, out, secret, overwrite=force)
        crypto.atomic_write(
            out.with_suffix(out.suffix + ".pub.pem"), key.public_key.to_pem().encode(), 0o644, overwrite=True
        )
    except ChainError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write {exc.filename or str(out) + '.pub.pem'}: {exc.strerror}") from None
    console.print(
        f"key {key.public_key.key_id()[:16]}… written to {escape(str(out))} "
        f"(public key: {escape(str(out))}.pub.pem)"
    )


@crypto_app.command()
def sign(
    file: Annotated[Path, typer.Argument(help="File to sign.")],
    key: Annotated[Path, typer.Option(help="Rongxin key file.", metavar="KEYFILE")],
    user_id: Annotated[
        str, typer.Option(help="SM2 user ID.", metavar="ID")
    ] = crypto.DEFAULT_USER_ID.decode(),
    password_file: PasswordFile = None,
    sig_format: Annotated[
        SignatureFormat,
        typer.Option(
            "--format", help="raw: the 64-byte r||s; der: ASN.1 SEQUENCE {r, s} as OpenSSL reads it."
        ),
    ] = SignatureFormat.raw,
) -> None:
    """Sign a file (SM2 with SM3 and Z); prints the signature as hex (64-byte r||s, or DER)."""
    try:
        private = keyfile.load_private_key(key, password(password_file))
        with open(file, "rb") as fh:
            e = private.public_key.hasher(user_id.encode()).update_stream(fh).digest()
        sig = private.sign_digest(e)
        typer.echo((signature_to_der(sig) if sig_format is SignatureFormat.der else sig).hex())
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    except ChainError as exc:
        raise fail(str(exc)) from None


@crypto_app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="Signed file.")],
    signature: Annotated[
        str,
        typer.Argument(
            help="Signature (64-byte r||s or DER) as hex, or a file holding it as hex or binary.",
            metavar="SIGNATURE",
        ),
    ],
    pubkey: Annotated[str, typer.Option(help="Public key: PEM file, key file, or hex.", metavar="KEY")],
    user_id: Annotated[
        str, typer.Option(help="SM2 user ID.", metavar="ID")
    ] = crypto.DEFAULT_USER_ID.decode(),
) -> None:
    """Verify a file's SM2 signature (raw r||s or DER); exit status 0 only when it is valid."""
    sig = _signature(signature)
    pub = _public_key(pubkey)
    try:
        with open(file, "rb") as fh:
            e = pub.hasher(user_id.encode()).update_stream(fh).digest()
        pub.verify_digest(e, sig)
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    except ChainError as exc:
        raise fail(f"INVALID: {exc}") from None
    console.print(f"[green]valid[/] signature by {pub.key_id()[:16]}…")


def _signature(spec: str) -> bytes:
    """Signature bytes from hex text or a file (hex text, or binary as ``openssl pkeyutl`` writes);
    a DER ``SEQUENCE`` (not 64 bytes, first byte 0x30) is converted to r||s."""
    path = Path(spec)
    if path.is_file():
        data = read_file(path)
        try:
            sig = bytes.fromhex(data.decode("ascii").strip())
        except ValueError:
            sig = data
    else:
        try:
            sig = bytes.fromhex(spec.strip())
        except ValueError:
            raise fail("the signature is neither hex nor a file") from None
    if len(sig) != 64 and sig[:1] == b"\x30":
        try:
            return signature_from_der(sig)
        except ChainError as exc:
            raise fail(f"INVALID: {exc}") from None
    return sig


@crypto_app.command()
def encrypt(
    file: Annotated[Path, typer.Argument(help="File to encrypt.")],
    to: Annotated[str, typer.Option(help="Recipient public key: PEM file, key file, or hex.", metavar="KEY")],
    out: Annotated[Path, typer.Option(help="Encrypted output file (never the input).", metavar="FILE")],
    force: Force = False,
) -> None:
    """Encrypt a file to an SM2 public key (SM2 envelope + streaming SM4-GCM)."""
    overwrite_guard(out, force, inputs=[file])
    try:
        n = envelope.seal_file(_public_key(to), file, out)
    except ChainError as exc:
        raise fail(str(exc)) from None
    console.print(f"encrypted {n} bytes to {escape(str(out))}")


@crypto_app.command()
def decrypt(
    file: Annotated[Path, typer.Argument(help="Encrypted file.")],
    key: Annotated[Path, typer.Option(help="Rongxin key file of the recipient.", metavar="KEYFILE")],
    out: Annotated[
        Path,
        typer.Option(help="Decrypted output (written only if authentic; never an input).", metavar="FILE"),
    ],
    password_file: PasswordFile = None,
    force: Force = False,
) -> None:
    """Decrypt a file made by ``rongxin crypto encrypt``."""
    overwrite_guard(out, force, inputs=[file, key])
    try:
        n = envelope.open_file(keyfile.load_private_key(key, password(password_file)), file, out)
    except ChainError as exc:
        raise fail(str(exc)) from None
    console.print(f"decrypted {n} bytes to {escape(str(out))}")


@app.command("verify")
def verify_receipt_cmd(
    receipt: Annotated[Path, typer.Argument(help="Receipt file (.cbor) from the ledger.")],
    genesis: Annotated[
        Path, typer.Option(help="The chain's genesis document (genesis.cbor).", metavar="FILE")
    ],
    proof: Annotated[
        Path | None,
        typer.Option(
            help="JSON {digest, index, path} proving one digest of an anchored batch.", metavar="FILE"
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A pinned checkpoint (rongxin ledger checkpoint): refuses keys revoked since.",
            metavar="FILE",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Verify a ledger receipt offline against the genesis; exit status 0 only when it proves commitment."""
    import json

    from chain.receipt import Checkpoint, Receipt, ReceiptError, verify_anchored_digest, verify_receipt
    from chain.types import Genesis, ValidationError

    try:
        g = Genesis.from_bytes(genesis.read_bytes())
        r = Receipt.from_bytes(receipt.read_bytes())
        cp = None if checkpoint is None else Checkpoint.from_bytes(checkpoint.read_bytes())
        if proof is not None:
            doc = json.loads(proof.read_text())
            info = verify_anchored_digest(
                r,
                g,
                bytes.fromhex(doc["digest"]),
                int(doc["index"]),
                [bytes.fromhex(x) for x in doc["path"]],
                cp,
            )
        else:
            info = verify_receipt(r, g, cp)
    except OSError as exc:
        raise fail(f"cannot read {exc.filename}: {exc.strerror}", as_json=json_out, reason="io") from None
    except ReceiptError as exc:
        message = f"INVALID receipt ({exc.reason}): {exc.detail}"
        raise fail(message, as_json=json_out, reason=exc.reason) from None
    except (ValidationError, ValueError, KeyError, TypeError) as exc:
        raise fail(f"INVALID input: {exc}", as_json=json_out, reason="input") from None
    result: dict[str, Any] = {
        "valid": True,
        "chain_id": g.chain_id,
        "height": info.height,
        "block_hash": info.block_hash.hex(),
        "block_time_ms": info.block_timestamp_ms,
        "tx_id": info.tx_id.hex(),
        "type": info.transaction.type,
        "sender": info.sender.subject,
        "digest_proven": proof is not None,
        "checkpoint": None if cp is None else cp.headers[0][1],
    }
    if json_out:
        console.print_json(json.dumps(result))
    else:
        console.print(
            f"[green]valid[/]: {escape(str(result['type']))} tx {result['tx_id'][:16]}… by "
            f"{escape(str(result['sender']))} committed at height {result['height']} of {escape(g.chain_id)}"
            + (" — the digest is in the anchored batch" if proof else "")
        )
        if cp is None:
            console.print(
                "[dim]without a checkpoint this proves what a quorum of the epoch's validators signed;"
                " pin a recent checkpoint (--checkpoint) to refuse keys revoked since[/]"
            )
        else:
            console.print(f"checked against the pinned checkpoint at height {cp.headers[0][1]}")


_mount()


def main() -> None:
    """Console-script entry point."""
    app()
