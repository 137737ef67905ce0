"""The demo's vault stage: a file stored off chain, granted, fetched by the grantee only.

Two node processes: ``node-0`` is the supervisory organization's node (it keeps a copy of
every vault object) and ``observer-0`` is a legal center's own node. The legal center
seals an evidence file on its machine, stores it through its node (which copies it to
node-0) and registers it on chain; it grants an internet court access, whose receipt
verifies offline; the court fetches and decrypts it through node-0; another center is
refused by the node and holds no key. The files are the demo's evidence package and
infringement report when the earlier stages wrote them (else a generated file).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from chain.client import NodeClient
from chain.client.vault import HttpObjects, VaultClient
from chain.crypto import PrivateKey
from chain.crypto.keyfile import load_private_key
from chain.crypto.sm3 import sm3_file
from chain.errors import ChainError, ClientError
from chain.node.identity import certificate_from_json
from chain.types import Certificate, Genesis, Role
from rongxin.demo_net import _wait, running_network
from rongxin.ops import procs
from rongxin.ops.build import NetworkSpec
from rongxin.ops.layout import free_base_port

Step = Callable[[str, bool, str, float], None]
PASSWORD = "rongxin-demo-vault"


def vault_stage(
    out_dir: Path, step: Step, *, scrypt_n: int = 1 << 14, files: list[Path] | None = None
) -> None:
    """Run the vault stage (see the module docstring), reporting through ``step``.

    ``files`` are stored, granted and fetched back (a generated 2 MiB file when empty).
    """
    t0 = time.perf_counter()
    net_dir = out_dir / "vault-net"
    spec = NetworkSpec(
        consensus=1,
        observers=1,
        base_port=free_base_port(2, low=31000),
        chain_id="rongxin-demo-vault",
        consortium="Rongxin demo consortium (融信演示联盟)",
        block_interval_ms=100,
        round_timeout_ms=500,
    )
    try:
        with running_network(
            net_dir, spec, PASSWORD, scrypt_n=scrypt_n, peers=1, what="the two vault nodes to connect"
        ) as entries:
            _vault_work(out_dir, net_dir, entries, step, t0, files or [])
    except ChainError as exc:
        step("off-chain vault", False, f"the vault stage failed: {exc}", t0)


def _vault_work(
    out_dir: Path,
    net_dir: Path,
    entries: dict[str, procs.NodeEntry],
    step: Step,
    t0: float,
    files: list[Path],
) -> None:
    genesis = Genesis.from_bytes((net_dir / "genesis.cbor").read_bytes())
    sup = net_dir / "supervisor"
    root = load_private_key(sup / "root.key", PASSWORD)
    sup_key = load_private_key(sup / "supervisor.key", PASSWORD)
    sup_cert = certificate_from_json((sup / "supervisor.cert.json").read_text())
    names = sorted(entries)
    regulator_node, member_node = names[0], names[1]

    def url(name: str) -> str:
        return f"http://{entries[name].config.api.listen.url_authority}"

    not_before = int(time.time() * 1000) - 3_600_000
    members: dict[str, tuple[PrivateKey, Certificate]] = {}
    with NodeClient(url(regulator_node), sup_key, sup_cert, genesis) as supervisor:
        for name, role in (
            ("County legal center (县法律服务中心)", Role.LEGAL_CENTER),
            ("Internet court (互联网法院)", Role.AUDITOR),
            ("Another media center", Role.MEDIA_CENTER),
        ):
            key = PrivateKey.generate()
            cert = Certificate.issue(root, name, name, [role], key.public_key, not_before)
            height = int(supervisor.send("member.add", {"certificate": cert.to_dict()})["height"])
            members[name] = (key, cert)
    _wait(
        lambda: all((s.height or 0) >= height for s in procs.probe(list(entries.values()))),
        30,
        "both nodes to commit the members' registrations",
    )

    def vault_of(name: str, node: str) -> VaultClient:
        key, cert = members[name]
        return VaultClient(
            NodeClient(url(node), key, cert, genesis), HttpObjects(url(node), key, cert, genesis), key, cert
        )

    legal = vault_of("County legal center (县法律服务中心)", member_node)
    court = vault_of("Internet court (互联网法院)", regulator_node)
    other = vault_of("Another media center", regulator_node)
    if not files:
        generated = out_dir / "vault-evidence.bin"
        generated.write_bytes(os.urandom(2 << 20))
        files = [generated]
    court_dir = out_dir / "vault-court"
    court_dir.mkdir(exist_ok=True)
    copy = entries[regulator_node].config
    court_id = members["Internet court (互联网法院)"][1].cert_id
    ok, heights, first = True, [], b""
    for source in files:
        stored = legal.put(source)
        first = first or stored.digest
        copy_path = (
            copy.vault.directory(copy.node.data_dir)
            / "objects"
            / stored.digest.hex()[:2]
            / stored.digest.hex()[2:4]
            / stored.digest.hex()
        )
        _wait(copy_path.exists, 30, "the legal center's node to copy the object to the supervisory node")
        ok &= _refused(court, stored.digest, out_dir / "vault-court-early.bin")
        receipt = legal.grant(stored.digest, court_id)
        if source is files[0]:
            (out_dir / "vault-grant.receipt.cbor").write_bytes(receipt.to_bytes())
        heights.append(receipt.verify(genesis).height)
        fetched = court_dir / source.name
        court.get(stored.digest, fetched)
        ok &= sm3_file(fetched) == sm3_file(source)
        ok &= _refused(other, stored.digest, out_dir / "vault-other.bin")
    listed = ", ".join(f.name for f in files)
    step(
        "off-chain vault",
        ok,
        f"{len(files)} file(s) ({listed}) each sealed under a fresh SM4 key, stored through the legal "
        f"center's node (first object {first.hex()[:16]}…) and copied to the supervisory node; granted "
        f"to the internet court at heights {heights} (vault-grant.receipt.cbor verifies offline); the "
        "court fetched and decrypted each (same SM3, in vault-court/); another center was refused by the "
        "node and holds no key",
        t0,
    )
    for v in (legal, court, other):
        v.ledger.close()
        v.objects.close()  # type: ignore[attr-defined]


def _refused(vault: VaultClient, digest: bytes, dst: Path) -> bool:
    """Whether ``vault``'s member is refused the object (and nothing was written)."""
    try:
        vault.get(digest, dst)
    except ClientError as exc:
        if exc.status != 403:
            raise
        try:
            list(vault.objects.fetch(digest))
        except ClientError as node_refusal:
            return node_refusal.status == 403 and not dst.exists()
    return False


__all__ = ["vault_stage"]
