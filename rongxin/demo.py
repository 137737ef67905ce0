"""The end-to-end demo behind ``make demo`` and ``rongxin demo``.

Its steps, in the order they run and print:

1. consortium identity: a supervisory SM2 key, saved password-protected, and a
   self-signed certificate placeholder;
2. sign and verify a message, and show that a tampered message is rejected;
3. encrypt a file to the supervisor's key (SM2 envelope + SM4-GCM stream), decrypt it,
   and compare SM3 digests;
4. consortium ledger: five consensus nodes in one process (2-chain HotStuff, SM2 votes,
   a SQLite store each) and a media center admitted by the supervisor's ``member.add``;
5. anchor a batch of work digests in one transaction (one Merkle root, one proof path per
   digest) and verify its receipt offline against the genesis; a flipped byte is refused
   and re-anchoring returns the original receipt;
6. register works in an image library, find attacked copies, anchor the fingerprint
   digests;
7. register music, find attacked 5-s excerpts in it and nothing in unrelated speech;
8. a confidential copyright transfer (zero-knowledge proof, hidden price and shares that
   balance) verified by the ledger's contract; the regulator's auditor key (``auditor.key``,
   sealed with the demo password) and the recorded transfer (``transfer.cbor``) are kept,
   and the ledger stores stay in ``ledger/``, so that ``rongxin transfer audit`` runs on them;
9. an encrypted cross-agency query whose audit record is anchored with a receipt;
10. a node misses a block while down and catches up, every node restarts from its store,
    a revoked member is refused from the next height;
11. a pinned checkpoint against which the batch receipt verifies.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chain import crypto
from chain.client import Ledger
from chain.contracts.base import ContractRegistry
from chain.crypto import envelope, keyfile
from chain.localnet import Identity, LocalConsortium
from chain.replica import Replica
from chain.types import Genesis
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
        say(f"[{'green' if ok else 'red'}]{'✔' if ok else '✘'}[/] {name}: {escape(detail)}")

    # 1. consortium identity
    t0 = time.perf_counter()
    supervisor = crypto.PrivateKey.generate()
    key_path = out_dir / "supervisor.key"
    keyfile.save_private_key(supervisor, key_path, password, scrypt_n=scrypt_n or keyfile.DEFAULT_SCRYPT_N)
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

    _ledger_step(out_dir, supervisor, step, password, scrypt_n)

    from rongxin.demo_net import network_stage

    network_stage(out_dir, step, scrypt_n=scrypt_n or keyfile.DEFAULT_SCRYPT_N)

    from rongxin.demo_vault import vault_stage

    # the report stage's evidence package and report go to the off-chain vault
    kept = sorted((out_dir / "report").glob("case-*-evidence/*.wacz")) + sorted(
        (out_dir / "report").glob("case-*.pdf")
    )
    vault_stage(out_dir, step, scrypt_n=scrypt_n or keyfile.DEFAULT_SCRYPT_N, files=kept)

    from rongxin.demo_evidence import evidence_stage

    evidence_stage(out_dir, step)

    if console:
        table = Table(title=escape(f"Rongxin demo — files in {out_dir}"))
        table.add_column("step")
        table.add_column("result")
        table.add_column("time", justify="right")
        for s in report.steps:
            table.add_row(s.name, "[green]ok[/]" if s.ok else "[red]FAILED[/]", f"{s.seconds * 1000:.0f} ms")
        console.print(table)
    return report


def _ledger_step(
    out_dir: Path,
    root: crypto.PrivateKey,
    step: Callable[[str, bool, str, float], None],
    password: str,
    scrypt_n: int | None,
) -> None:
    import shutil

    from chain import merkle
    from chain.localnet import LocalConsortium, LocalNet
    from chain.receipt import Receipt, verify_anchored_digest
    from chain.types import Genesis, Role, ValidationError

    t0 = time.perf_counter()
    ledger_dir = out_dir / "ledger"
    if ledger_dir.exists():
        shutil.rmtree(ledger_dir)
    consortium = LocalConsortium.create(
        ledger_dir, nodes=5, chain_id="rongxin-demo", registry_factory=_registry
    )
    (out_dir / "genesis.cbor").write_bytes(consortium.genesis.to_bytes())
    media = consortium.add_member("County media center (县融媒体中心)", [Role.MEDIA_CENTER])
    step(
        "consortium ledger",
        len(consortium.replicas) == 5,
        f"5 consensus nodes (2-chain HotStuff, SM2 votes), SQLite stores in {ledger_dir.name}/; "
        "a media center admitted by the supervisor's member.add transaction",
        t0,
    )

    t0 = time.perf_counter()
    works = [f"work-{i}.jpg".encode() for i in range(8)]
    digests = [crypto.sm3(w) for w in works]
    batch_root, proofs = merkle.batch_proofs(digests)
    payload = {"digest": batch_root, "kind": "work-batch", "count": len(digests)}
    tx_id = consortium.submit(media, "anchor", payload)
    receipt = consortium.original_receipt(tx_id)
    receipt_path = out_dir / "receipt-work-batch.cbor"
    receipt_path.write_bytes(receipt.to_bytes())
    (out_dir / "work-3.proof.json").write_text(
        json.dumps({"digest": digests[3].hex(), "index": 3, "path": [p.hex() for p in proofs[3]]}, indent=2)
    )
    genesis = Genesis.from_bytes((out_dir / "genesis.cbor").read_bytes())
    info = verify_anchored_digest(
        Receipt.from_bytes(receipt_path.read_bytes()), genesis, digests[3], 3, proofs[3]
    )
    tampered = bytearray(receipt_path.read_bytes())
    tampered[len(tampered) // 2] ^= 1
    try:
        Receipt.from_bytes(bytes(tampered)).verify(genesis)
        tamper_refused = False
    except Exception:
        tamper_refused = True
    again = consortium.original_receipt(consortium.submit(media, "anchor", payload))
    step(
        "anchor + offline receipt",
        again.tx == receipt.tx and again.headers[0] == receipt.headers[0] and tamper_refused,
        f"{len(digests)} work digests under Merkle root {batch_root.hex()[:16]}… committed at height "
        f"{info.height}; {receipt_path.name} ({receipt_path.stat().st_size} B) verified offline against "
        "genesis.cbor for work-3 (batch path + tx inclusion + headers + SM2 quorum certificate); a flipped "
        "byte was refused; re-anchoring returned the original receipt",
        t0,
    )

    _forensics_step(out_dir, consortium, media, step)

    from rongxin.demo_report import report_stage

    report_stage(out_dir, step)
    _audio_step(out_dir, step)
    _video_step(out_dir, step)
    from chain.client import InProcessLedger

    consortium.add_member("Provincial regulator (省级监管)", [Role.REGULATOR])
    _zk_step(
        out_dir,
        InProcessLedger(consortium, media),
        InProcessLedger(consortium, consortium.supervisor),
        digests[3],
        step,
        password,
        scrypt_n,
    )
    _privacy_step(out_dir, consortium, step)

    t0 = time.perf_counter()
    consortium.net.down.add(consortium.net.name_of(consortium.replicas[4]))
    late_id = consortium.submit(
        media, "anchor", {"digest": crypto.sm3(b"while a node is down"), "kind": "work"}
    )
    consortium.net.down.clear()
    keys = [n.key for n in consortium.nodes]
    now = consortium.net.now
    heads = [r.store.head_hash() for r in consortium.replicas[:4]]
    consortium.close()
    replicas = [
        Replica(consortium.genesis, ledger_dir / f"node-{i}.db", k, _registry(consortium.genesis))
        for i, k in enumerate(keys)
    ]
    net = LocalNet(replicas, start_ms=now)
    net.start()
    tx = media.sign(
        consortium.genesis.chain_id, "anchor", {"digest": crypto.sm3(b"after restart"), "kind": "w"}, now
    )
    net.wait(net.submit(tx.to_bytes()))
    caught_up = replicas[4].store.tx_location(late_id) is not None
    reopened_same = all(replicas[i].store.block_by_hash(h) is not None for i, h in enumerate(heads))
    revoke = consortium.supervisor.sign(
        consortium.genesis.chain_id,
        "member.revoke",
        {"cert_id": media.cert.cert_id, "reason": "demo"},
        net.now,
    )
    net.wait(net.submit(revoke.to_bytes()))
    try:
        net.submit(
            media.sign(
                consortium.genesis.chain_id, "anchor", {"digest": b"x" * 32, "kind": "w"}, 0
            ).to_bytes()
        )
        refused = False
    except ValidationError as exc:
        refused = "revoked" in str(exc)
    roots = {r.store.load_state().root for r in replicas}
    step(
        "crash, restart, revocation",
        caught_up and reopened_same and refused and len(roots) == 1,
        "a node missed a block while down and caught up; all 5 nodes restarted from their SQLite "
        "stores and kept committing with one state root; a revoked member was refused from the next height",
        t0,
    )
    _checkpoint_step(out_dir, consortium.genesis, replicas, info.tx_id, digests, proofs, step)
    for r in replicas:
        r.close()


def _checkpoint_step(
    out_dir: Path,
    genesis: Genesis,
    replicas: list[Replica],
    batch_tx: bytes,
    digests: list[bytes],
    proofs: Sequence[list[bytes]],
    step: Callable[[str, bool, str, float], None],
) -> None:
    """Pin a checkpoint at the head; the batch receipt, rebuilt up to it, verifies against it."""
    from chain.receipt import (
        Receipt,
        ReceiptError,
        build_checkpoint,
        build_receipt,
        verify_anchored_digest,
        verify_checkpoint,
    )

    t0 = time.perf_counter()
    checkpoints = [build_checkpoint(r.store, genesis) for r in replicas]
    # every member publishes a checkpoint of the same block (compared by its digest, the block
    # hash: each node may hold a different quorum of signatures for it)
    agree = len({verify_checkpoint(c, genesis).digest for c in checkpoints}) == 1
    checkpoint = checkpoints[0]
    cp_path = out_dir / "checkpoint.cbor"
    cp_path.write_bytes(checkpoint.to_bytes())
    cp_info = verify_checkpoint(checkpoint, genesis)
    old = Receipt.from_bytes((out_dir / "receipt-work-batch.cbor").read_bytes())
    try:
        verify_anchored_digest(old, genesis, digests[3], 3, proofs[3], checkpoint)
        old_refused = False
    except ReceiptError as exc:
        old_refused = exc.reason == "history"
    current = build_receipt(replicas[1].store, batch_tx)
    current_path = out_dir / "receipt-work-batch.current.cbor"
    current_path.write_bytes(current.to_bytes())
    verified = verify_anchored_digest(current, genesis, digests[3], 3, proofs[3], checkpoint)
    step(
        "pinned checkpoint",
        agree and old_refused and verified.height < cp_info.height,
        f"all 5 nodes publish the same checkpoint ({cp_path.name}: height {cp_info.height}, block "
        f"{cp_info.digest[:16]}…); the receipt made at anchoring time predates it and was asked to be "
        f"rebuilt; rebuilt by another node ({current_path.name}) it proves work-3 against the checkpoint "
        "through the chain's history, so keys revoked since cannot backdate an anchor",
        t0,
    )


def _registry(genesis: Genesis) -> ContractRegistry:
    """The demo node's contracts: the ledger's own plus the confidential-transfer ones."""
    from rongxin.contracts import node_registry

    return node_registry(genesis)


def _zk_step(
    out_dir: Path,
    media: Ledger,
    supervisor: Ledger,
    work: bytes,
    step: Callable[[str, bool, str, float], None],
    password: str,
    scrypt_n: int | None,
) -> None:
    """A confidential transfer through the ``Ledger`` protocol (signed transactions, proven
    state reads); the regulator's auditor key (sealed with the demo password) and the
    recorded transfer stay in ``out_dir`` for ``rongxin transfer audit``."""
    from chain.crypto import atomic_write
    from chain.crypto.sealed import DEFAULT_SCRYPT_N
    from chain.errors import ChainError
    from rongxin.contracts import LedgerStateReader
    from zkp.auditor import AuditorKey, seal_auditor_key
    from zkp.contract import auditor_payload, load_record, register_payload, transfer_records
    from zkp.transfer import OwnerKey, audit, prove_key_possession, prove_transfer

    t0 = time.perf_counter()
    chain_id = media.genesis.chain_id
    state = LedgerStateReader(media)  # every read proven against the genesis
    auditor = AuditorKey.generate()
    key_path = out_dir / "auditor.key"
    sealed = seal_auditor_key(auditor, password, scrypt_n=scrypt_n or DEFAULT_SCRYPT_N)
    atomic_write(key_path, sealed, 0o600, overwrite=True)
    # the regulator holds the auditor key; the supervisor registers its public half
    supervisor.send("zkp.auditor", auditor_payload(auditor, chain_id))
    seller, buyer = OwnerKey.generate(), OwnerKey.generate()
    media.send("zkp.register", register_payload(work, seller, chain_id))
    record = load_record(state, work)
    assert record is not None
    price = 1_000_000
    shares = [(b"author", 600_000), (b"county-center", 300_000), (b"platform", 100_000)]
    pop = prove_key_possession(buyer, chain_id, work)
    transfer = prove_transfer(chain_id, record, seller, buyer.public, pop, auditor.public, price, shares)
    media.send("zkp.transfer", transfer.to_payload())
    new_record = load_record(state, work)
    try:
        again = prove_transfer(chain_id, record, seller, buyer.public, pop, auditor.public, price, shares)
        media.send("zkp.transfer", again.to_payload())
        double_refused = False
    except ChainError:
        double_refused = True
    recorded = list(transfer_records(state, work))
    report = audit(recorded[-1].transfer, auditor)
    on_chain = recorded[-1].to_bytes()
    record_path = out_dir / "transfer.cbor"
    record_path.write_bytes(on_chain)
    hidden = str(price).encode() not in on_chain and price.to_bytes(8, "big") not in on_chain
    ok = (
        new_record is not None
        and new_record.owner == buyer.public
        and double_refused
        and report.price == price
        and sum(v for _, v in report.shares) == price
        and hidden
    )
    step(
        "confidential transfer (ZK)",
        ok,
        f"work {work.hex()[:12]}… moved to a new owner; every node verified the Bulletproofs range proofs "
        f"and balance proof ({len(on_chain):,} B on chain, price and 3 royalty shares hidden); a second "
        f"transfer from the spent record was refused; the regulator's key opened price {report.price:,} "
        f"and shares that balance; audit with: rongxin transfer audit --key {key_path} "
        f"--db {out_dir / 'ledger' / 'node-0.db'} --genesis {out_dir / 'genesis.cbor'} --work {work.hex()} "
        f"(or --record {record_path}), the key password being the demo's",
        t0,
    )


def _privacy_step(
    out_dir: Path, consortium: LocalConsortium, step: Callable[[str, bool, str, float], None]
) -> None:
    from privacy import paillier
    from privacy.audit import AuditLog, ConsortiumAnchor
    from privacy.config import Deployment
    from privacy.demo_data import write_demo, write_service_configs
    from privacy.identity import Identity
    from privacy.processes import AgencyProcesses
    from privacy.query import Regulator
    from privacy.spec import parse
    from rongxin.ops.layout import PORT_STRIDE, free_base_port

    t0 = time.perf_counter()
    regulator_member = consortium.members["Provincial regulator (省级监管)"]
    identity = Identity(regulator_member.key, regulator_member.cert)
    config = write_demo(
        out_dir / "agencies",
        rows=2000,
        root=consortium.root,
        regulator=identity,
        chain_id=consortium.genesis.chain_id,
    )
    # every agency as its own process, reached over HTTPS (pinned certificates), requests signed
    regulator_file, services = write_service_configs(config, "127.0.0.1", free_base_port(5), PORT_STRIDE)
    dep = Deployment.from_file(regulator_file)
    anchor = ConsortiumAnchor(consortium, regulator_member)
    audit_log = AuditLog(anchor, out_dir / "audit.jsonl")
    clients = dep.clients(None, identity)
    regulator = Regulator(
        dep.catalog, clients, paillier.generate_keypair(), identity, "regulator", audit_log, 120
    )
    query = "SELECT COUNT(*) FROM cases WHERE status = 'confirmed' GROUP BY county"
    with AgencyProcesses(services):
        result = regulator.run(parse(query))
    receipt = anchor.receipts.get(result.audit.digest()) if result.audit is not None else None
    total = sum(int(row[-1]) for row in result.rows if row[-1] is not None)
    ok = result.path == "paillier" and bool(result.rows) and receipt is not None
    if receipt is not None:
        receipt.verify(consortium.genesis)
    step(
        "encrypted cross-agency query",
        ok,
        f"{len(clients)} agency processes answered “{query}” over HTTPS, signed by the regulator's "
        "certificate, with "
        f"masked contributions under its Paillier key (secure aggregation, packed slots): "
        f"{len(result.rows)} counties, {total} confirmed cases in all, no agency's own count "
        "revealed; the query's audit record is anchored on the consortium ledger with a receipt",
        t0,
    )


def _fresh_library(out_dir: Path, library: str, outputs: str) -> tuple[Path, Path]:
    """An empty library directory (a rerun starts over) and a directory for attacked copies."""
    import shutil

    lib_dir = out_dir / library
    if lib_dir.exists():
        shutil.rmtree(lib_dir)
    copies = out_dir / outputs
    copies.mkdir(exist_ok=True)
    return lib_dir, copies


def _audio_step(out_dir: Path, step: Callable[[str, bool, str, float], None]) -> None:
    """Register real music, find attacked 5-s excerpts in it, and nothing in unrelated speech."""

    from datasets.attacks.audio import apply as attack_audio
    from datasets.manifest import load as load_manifest
    from datasets.smoke import ensure as ensure_smoke
    from forensics.evidence import AudioEvidence
    from forensics.library import Library

    t0 = time.perf_counter()
    corpus = ensure_smoke()
    entries = load_manifest(corpus / "manifest.jsonl")
    music = [e for e in entries if e.collection == "music" and e.role == "original"]
    speech = [e for e in entries if e.collection == "speech"]
    tracks = [e for e in music if (e.duration or 0.0) >= 60.0][:4]  # long enough for the excerpts
    lib_dir, clips_dir = _fresh_library(out_dir, "audio-library", "clips")
    attacks: list[list[tuple[str, dict[str, Any]]]] = [
        [("excerpt", {"start": 30.0, "length": 5.0}), ("speed", {"factor": 1.03})],
        [("excerpt", {"start": 12.0, "length": 5.0}), ("noise", {"color": "white", "snr_db": 10})],
        [("excerpt", {"start": 40.0, "length": 5.0}), ("reencode", {"codec": "mp3", "bitrate": 32})],
        # under a voice-over 3 dB below it (speech not used as a stranger below)
        [
            ("excerpt", {"start": 20.0, "length": 5.0}),
            ("mix", {"mode": "voiceover", "level_db": -3.0, "other": 3}),
        ],
    ]
    originals = [corpus / e.path for e in speech if e.role == "original"]
    strangers, voices = originals[:2], originals[2:6]
    found, offsets_ok = 0, 0
    layers: list[str] = []
    with Library(lib_dir) as library:
        for i, e in enumerate(tracks):
            library.register(corpus / e.path, f"track-{i}", {"source": e.package})
        for i, chain in enumerate(attacks):
            clip, truth = attack_audio(corpus / tracks[i].path, chain, seed=i, voices=voices)
            path = clip.save(clips_dir / f"clip-{i}.wav")
            matches = library.identify(path, top_k=1)
            if matches and matches[0].work_id == f"track-{i}":
                found += 1
                evidence = matches[0].evidence
                if isinstance(evidence, AudioEvidence):
                    layers.append(evidence.layer)
                    start = truth.source_time(evidence.query_start)
                    offsets_ok += start is not None and abs(evidence.ref_start - start) <= 0.1
        false_hits = sum(bool(library.identify(path, top_k=1)) for path in strangers)
    ok = found == len(attacks) and offsets_ok == len(attacks) and false_hits == 0
    step(
        "register music, find excerpts",
        ok,
        f"{len(tracks)} music tracks registered in {lib_dir.name}/; {found}/{len(attacks)} attacked "
        "5-s excerpts (sped up 3 %, white noise at 10 dB, MP3 at 32 kbit/s, under a voice-over at "
        f"-3 dB) identified (by rule: {', '.join(layers)}), {offsets_ok} placed within ±0.1 s; "
        f"{false_hits} matches for {len(strangers)} unrelated speech recordings",
        t0,
    )


def _video_step(out_dir: Path, step: Callable[[str, bool, str, float], None]) -> None:
    """Register real programmes (picture and sound), find attacked excerpts by picture, sound, both."""
    import subprocess

    from datasets.attacks.video import apply as attack_video
    from datasets.manifest import load as load_manifest
    from datasets.smoke import ensure as ensure_smoke
    from forensics.evidence import VideoEvidence
    from forensics.library import Library

    t0 = time.perf_counter()
    corpus = ensure_smoke()
    entries = load_manifest(corpus / "manifest.jsonl")
    real = sorted(
        (e for e in entries if e.kind == "video" and not e.assembled and (e.duration or 0.0) >= 5.0),
        key=lambda e: -(e.duration or 0.0),
    )[:3]
    slideshows = [corpus / e.path for e in entries if e.kind == "video" and e.assembled]
    music = [
        e for e in entries if e.collection == "music" and e.role == "original" and (e.duration or 0) >= 60
    ]
    lib_dir, clips_dir = _fresh_library(out_dir, "video-library", "video-clips")
    programmes = []
    for i, e in enumerate(real):  # camera footage with a music bed: picture and sound to register
        dest = clips_dir / f"programme-{i}.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(corpus / e.path), "-ss", "20", "-i",
             str(corpus / music[i].path), "-map", "0:v:0", "-map", "1:a:0", "-vf", "scale=480:-2",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "aac",
             "-t", f"{e.duration:.3f}", str(dest)],
            check=True,
        )  # fmt: skip
        programmes.append(dest)
    dub = corpus / music[3].path

    def cut(start: float, length: float) -> tuple[str, dict[str, Any]]:
        return ("excerpt", {"start": start, "length": length})

    cases: list[tuple[str, int, list[Any], str]] = [
        ("dubbed with other music, colours changed", 0,
         [cut(3.0, 8.0), ("eq", {}), ("audio", {"mode": "replace"})], "picture"),
        ("picture blanked", 1, [cut(2.0, 6.0), ("blank", {"level": 16})], "sound"),
        ("a quarter of another video, other music (picture-in-picture)", 2,
         [cut(1.0, 6.0), ("pip", {"scale": 0.5, "x": 1.0, "y": 0.0}), ("audio", {"mode": "replace"})],
         "picture"),
        ("mirrored, letterboxed, re-encoded", 0,
         [cut(5.0, 6.0), ("flip", {"axis": "h"}), ("letterbox", {"fraction": 0.3}),
          ("reencode", {"codec": "libx264", "crf": 34})], "both"),
    ]  # fmt: skip
    found, as_expected, placed = 0, 0, 0
    seen: list[str] = []
    with Library(lib_dir) as library:
        for i, path in enumerate(programmes):
            library.register(path, f"programme-{i}", {"source": real[i].package})
        for k, (_label, i, chain, expected) in enumerate(cases):
            clip = clips_dir / f"clip-{k}.mp4"
            truth = attack_video(programmes[i], clip, chain, seed=k, host=slideshows[0], replacement=dub)
            matches = library.identify(clip, top_k=1)
            if (
                matches
                and matches[0].work_id == f"programme-{i}"
                and isinstance(matches[0].evidence, VideoEvidence)
            ):
                found += 1
                ev = matches[0].evidence
                seen.append(ev.found_by)
                as_expected += ev.found_by == expected
                start = truth.source_time(ev.query_start)
                placed += start is not None and abs(ev.ref_start - start) <= 0.5
        false_hits = sum(bool(library.identify(p, top_k=1)) for p in slideshows[1:])
    ok = found == len(cases) and as_expected == len(cases) and placed == len(cases) and false_hits == 0
    step(
        "register programmes, find clips",
        ok,
        f"{len(programmes)} real camera clips with music registered (picture and sound) in {lib_dir.name}/; "
        f"{found}/{len(cases)} attacked excerpts identified ({'; '.join(c[0] for c in cases)}) — found by "
        f"{', '.join(seen)}; {placed} placed within ±0.5 s; {false_hits} matches for "
        f"{len(slideshows) - 1} unrelated videos",
        t0,
    )


def _forensics_step(
    out_dir: Path, consortium: LocalConsortium, media: Identity, step: Callable[[str, bool, str, float], None]
) -> None:

    from chain import merkle
    from datasets.attacks.image import apply as attack
    from datasets.manifest import load as load_manifest
    from datasets.smoke import ensure as ensure_smoke
    from forensics.library import Library

    t0 = time.perf_counter()
    corpus = ensure_smoke()  # real photos from Debian packages (built once, then cached)
    entries = load_manifest(corpus / "manifest.jsonl")
    photos = [e for e in entries if e.kind == "image" and e.role == "original"][:6]
    strangers = [e for e in entries if e.kind == "image" and e.role == "distractor"][:3]
    lib_dir, copies_dir = _fresh_library(out_dir, "library", "copies")
    attacks: list[list[tuple[str, dict[str, Any]]]] = [
        [("jpeg", {"quality": 15}), ("resize", {"scale": 0.5})],
        [("crop", {"area": 0.6, "x": 0.3, "y": 0.7})],
        [("rotate", {"angle": 90, "crop_to_fit": False})],
        [("logo", {})],
        [("flip", {"axis": "h"}), ("brightness", {"factor": 1.3})],
        [("text", {})],
    ]
    found = 0
    with Library(lib_dir) as library:
        registrations = [
            library.register(corpus / e.path, f"work-{i}", {"source": e.package})
            for i, e in enumerate(photos)
        ]
        for i, (entry, chain) in enumerate(zip(photos, attacks, strict=False)):
            copy, _truth = attack(corpus / entry.path, chain, seed=i)
            path = copies_dir / f"copy-{i}.png"
            copy.save(path)
            matches = library.identify(path, top_k=1)
            found += bool(matches) and matches[0].work_id == f"work-{i}"
        false_hits = sum(bool(library.identify(corpus / e.path, top_k=1)) for e in strangers)
    fingerprints = [r.fingerprint_digest for r in registrations]
    fp_root, fp_proofs = merkle.batch_proofs(fingerprints)
    payload = {"digest": fp_root, "kind": "fingerprint-batch", "count": len(fingerprints)}
    receipt = consortium.original_receipt(consortium.submit(media, "anchor", payload))
    (out_dir / "receipt-fingerprints.cbor").write_bytes(receipt.to_bytes())
    from chain.receipt import verify_anchored_digest

    verify_anchored_digest(receipt, consortium.genesis, fingerprints[0], 0, fp_proofs[0])
    ok = found == len(photos) and false_hits == 0
    step(
        "register works, find copies",
        ok,
        f"{len(photos)} real photos from Debian packages registered in {lib_dir.name}/; "
        f"{found}/{len(photos)} attacked copies (JPEG q15 + half size, 60 % crop, 90° turn, station logo, "
        "mirror + brightness, caption) identified as the right work; "
        f"{false_hits} matches for {len(strangers)} unrelated images; "
        "the fingerprint digests anchored on the ledger (receipt-fingerprints.cbor)",
        t0,
    )
