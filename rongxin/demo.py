"""The end-to-end demo behind ``make demo``: it grows with each capability that lands.

Current stages (issue "Foundation"):

1. create a demo consortium identity: a supervisory SM2 key, saved password-protected,
   and a self-signed certificate placeholder (real membership certificates arrive with
   the chain core);
2. sign a message and verify it, and show that a tampered message is rejected;
3. encrypt a file to the supervisor's key (SM2 envelope + SM4-GCM stream), decrypt it,
   and compare SM3 digests;
4. ledger, single node (issue "Chain core", consensus still to land): a genesis with the
   supervisor, a media center and five consensus-node certificates; the media center
   anchors a batch of work digests in one signed transaction (one Merkle root, one proof
   path per digest); the executor validates and applies it, the block is committed to a
   SQLite store and reopened; a re-anchored digest returns the original anchor, and a
   transaction from a revoked member is refused from the next height;
5. print what it did.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from chain import crypto
from chain.crypto import envelope, keyfile
from rongxin.errors import RongxinError

DEMO_PASSWORD_ENV = "RONGXIN_DEMO_PASSWORD"
DEMO_PASSWORD = "rongxin-demo"
SAMPLE_TEXT = (
    "融信 Rongxin demo evidence file.\n"
    "A county-level converged media center registers its works and anchors every result\n"
    "on a consortium chain that it runs with its province and regulators.\n"
)


@dataclass
class DemoStep:
    """One line of the demo's report."""

    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class DemoReport:
    """What the demo did, for the console table and for tests."""

    out_dir: Path
    steps: list[DemoStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every step succeeded."""
        return all(step.ok for step in self.steps)


def _utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def make_placeholder_certificate(key: crypto.PrivateKey, subject: str, role: str) -> dict[str, object]:
    """A self-signed JSON certificate placeholder (replaced by chain membership certificates).

    Examples
    --------
    >>> k = crypto.PrivateKey.generate()
    >>> cert = make_placeholder_certificate(k, "Demo Supervisor", "supervisory")
    >>> verify_placeholder_certificate(cert) == k.public_key
    True
    """
    body = {
        "type": "rongxin-placeholder-certificate",
        "version": 1,
        "subject": subject,
        "role": role,
        "public_key": key.public_key.to_bytes().hex(),
        "key_id": key.public_key.key_id(),
        "issued_at": _utc_now(),
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return {**body, "signature": key.sign(canonical).hex()}


def verify_placeholder_certificate(cert: dict[str, object]) -> crypto.PublicKey:
    """Check a placeholder certificate's self-signature; returns its public key."""
    try:
        body = {k: v for k, v in cert.items() if k != "signature"}
        pub = crypto.PublicKey.from_bytes(bytes.fromhex(str(cert["public_key"])))
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        pub.verify(canonical, bytes.fromhex(str(cert["signature"])))
    except (KeyError, ValueError) as exc:
        raise RongxinError(f"malformed certificate: {exc}") from None
    return pub


def run_demo(out_dir: Path, console: Console | None = None, *, scrypt_n: int | None = None) -> DemoReport:
    """Run every demo stage, writing its files under ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Directory for the demo's key file, certificate and sample files (created).
    console : rich.console.Console, optional
        Where to print progress and the final table; silent when ``None``.
    scrypt_n : int, optional
        Key-file KDF cost; the production default unless a test lowers it.

    Returns
    -------
    DemoReport
        One step per stage; ``report.ok`` is true when all succeeded.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    report = DemoReport(out_dir)
    say = console.print if console else (lambda *a, **k: None)
    password = os.environ.get(DEMO_PASSWORD_ENV, DEMO_PASSWORD)

    def step(name: str, ok: bool, detail: str, t0: float) -> None:
        report.steps.append(DemoStep(name, ok, detail, time.perf_counter() - t0))
        say(f"[{'green' if ok else 'red'}]{'✔' if ok else '✘'}[/] {name}: {detail}")

    # 1. consortium identity
    t0 = time.perf_counter()
    supervisor = crypto.PrivateKey.generate()
    key_path = out_dir / "supervisor.key"
    kwargs = {"scrypt_n": scrypt_n} if scrypt_n else {}
    keyfile.save_private_key(supervisor, key_path, password, **kwargs)
    cert = make_placeholder_certificate(
        supervisor, "Demo Provincial Supervisor (省级监管节点)", "supervisory"
    )
    (out_dir / "supervisor.cert.json").write_text(json.dumps(cert, indent=2, ensure_ascii=False) + "\n")
    (out_dir / "supervisor.pub.pem").write_text(supervisor.public_key.to_pem())
    reloaded = keyfile.load_private_key(key_path, password)
    verify_placeholder_certificate(cert)
    step(
        "consortium identity",
        reloaded == supervisor,
        f"SM2 key {supervisor.public_key.key_id()[:16]}… saved SM4-encrypted to {key_path.name}; "
        "self-signed certificate placeholder verified",
        t0,
    )

    # 2. sign and verify
    t0 = time.perf_counter()
    message = f"anchor: sm3={crypto.sm3(SAMPLE_TEXT.encode()).hex()} at {_utc_now()}".encode()
    signature = crypto.sign(reloaded, message)
    crypto.verify(supervisor.public_key, message, signature)
    tampered_rejected = not supervisor.public_key.is_valid_signature(message + b"!", signature)
    step(
        "sign / verify",
        tampered_rejected,
        f"SM2 signature {signature.hex()[:16]}… verified with ID 1234567812345678; "
        "a tampered message was rejected",
        t0,
    )

    # 3. encrypt and decrypt a file
    t0 = time.perf_counter()
    sample = out_dir / "sample-evidence.txt"
    sample.write_text(SAMPLE_TEXT * 200, encoding="utf-8")
    sealed = out_dir / "sample-evidence.txt.rxe"
    opened = out_dir / "sample-evidence.decrypted.txt"
    envelope.seal_file(supervisor.public_key, sample, sealed)
    envelope.open_file(reloaded, sealed, opened)
    same = crypto.sm3_file(sample) == crypto.sm3_file(opened)
    step(
        "encrypt / decrypt file",
        same,
        f"{sample.stat().st_size} B → {sealed.name} ({sealed.stat().st_size} B, SM2 envelope + SM4-GCM); "
        f"decrypted copy has the same SM3 {crypto.sm3_file(opened).hex()[:16]}…",
        t0,
    )

    _ledger_step(out_dir, supervisor, step)

    if console:
        table = Table(title=f"Rongxin demo — files in {out_dir}")
        table.add_column("step")
        table.add_column("result")
        table.add_column("time", justify="right")
        for s in report.steps:
            table.add_row(s.name, "[green]ok[/]" if s.ok else "[red]FAILED[/]", f"{s.seconds * 1000:.0f} ms")
        console.print(table)
    return report


def _ledger_step(
    out_dir: Path, root: crypto.PrivateKey, step: Callable[[str, bool, str, float], None]
) -> None:
    from chain import merkle
    from chain.executor import Executor, genesis_state
    from chain.store import LedgerStore
    from chain.types import Certificate, ChainParams, Genesis, Role, Transaction, ValidationError

    t0 = time.perf_counter()
    now = int(time.time() * 1000)
    supervisor_key, media_key = crypto.PrivateKey.generate(), crypto.PrivateKey.generate()
    supervisor = Certificate.issue(
        root, "Provincial supervisor", "prov", [Role.SUPERVISOR], supervisor_key.public_key, 0
    )
    media = Certificate.issue(
        root, "County media center", "county-1", [Role.MEDIA_CENTER], media_key.public_key, 0
    )
    nodes = [
        Certificate.issue(
            root,
            f"consensus node {i}",
            f"org-{i}",
            [Role.CONSENSUS_NODE],
            crypto.PrivateKey.generate().public_key,
            0,
        )
        for i in range(5)
    ]
    genesis = Genesis(
        "Rongxin demo consortium",
        "rongxin-demo",
        root.public_key.to_bytes(),
        (supervisor, media, *nodes),
        ChainParams(),
        now,
    )
    (out_dir / "genesis.cbor").write_bytes(genesis.to_bytes())
    executor, state = Executor(genesis), genesis_state(genesis)

    works = [f"work-{i}.jpg".encode() for i in range(8)]
    digests = [crypto.sm3(w) for w in works]
    root_digest, proofs = merkle.batch_proofs(digests)
    batch_payload = {"digest": root_digest, "kind": "work-batch", "count": len(digests)}
    anchor = Transaction.create(
        media_key,
        media.cert_id,
        "anchor",
        batch_payload,
        1,
        now,
        genesis.chain_id,
    )
    store_path = out_dir / "ledger.db"
    if store_path.exists():
        store_path.unlink()
    store = LedgerStore(store_path, genesis.hash, initial_state=state.entries())
    result = executor.execute(state, [anchor.to_bytes()], 1, now)
    block_hash = crypto.sm3(b"demo-block-1" + result.state_root)
    store.commit_block(
        1,
        block_hash,
        genesis.hash,
        result.state_root,
        b"(single-node demo block)",
        b"",
        [(anchor.tx_id, anchor.to_bytes())],
        result.changes,
    )
    store.close()
    store = LedgerStore(store_path, genesis.hash)
    reopened = store.load_state()
    proof_ok = all(
        merkle.is_included(merkle.leaf_hash(d), i, len(digests), proofs[i], root_digest)
        for i, d in enumerate(digests)
    )
    again = Transaction.create(
        media_key,
        media.cert_id,
        "anchor",
        batch_payload,
        2,
        now,
        genesis.chain_id,
    )
    dup = executor.execute(reopened, [again.to_bytes()], 2, now).results[0]
    revoke = Transaction.create(
        supervisor_key,
        supervisor.cert_id,
        "member.revoke",
        {"cert_id": media.cert_id, "reason": "demo"},
        1,
        now,
        genesis.chain_id,
    )
    reopened.apply(executor.execute(reopened, [revoke.to_bytes()], 2, now).changes)
    late = Transaction.create(
        media_key,
        media.cert_id,
        "anchor",
        {"digest": crypto.sm3(b"late"), "kind": "work"},
        3,
        now,
        genesis.chain_id,
    )
    try:
        executor.execute(reopened, [late.to_bytes()], 3, now)
        refused = False
    except ValidationError:
        refused = True
    ok = (
        proof_ok
        and store.head_height() == 1
        and store.load_state().root == result.state_root
        and dup["status"] == "already_anchored"
        and dup["tx_id"] == anchor.tx_id
        and refused
    )
    store.close()
    step(
        "ledger (single node)",
        ok,
        f"{len(digests)} work digests anchored under Merkle root {root_digest.hex()[:16]}… "
        f"(each with its own proof path); block 1 committed to {store_path.name}, reopened with the same "
        "state root; re-anchoring returned the original; a revoked member was refused from the next height",
        t0,
    )
