"""A demonstration deployment of the platform beside a consortium of node processes.

:func:`running_demo` creates a network and starts every node as its own process through
:func:`rongxin.demo_net.running_network` (``rongxin chain init``'s :func:`create_network`:
four consensus nodes on loopback), admits a member
organization (a county legal center, also a copyright center so that it registers
ownership records and makes confidential transfers) through the supervisor's signed
request, registers the regulator's auditor key (kept as ``auditor.key``, sealed with the
demo password), writes the
member's sealed key, certificate and client profile, a ``platform.toml`` watching every
node, one user per role with the demo password, the regulator console's five demo
agencies (:func:`privacy.demo_data.write_demo`), and registers and anchors a few demo
works; the nodes stop when the ``with`` block ends. ``rongxin serve --demo DIR`` serves the
platform inside it until Ctrl-C; the browser tests run it against real node processes.

The demo password is printed and written in clear into the demo directory: this is a
demonstration on loopback, never a deployment.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chain.client import NodeClient
from chain.crypto import PrivateKey, atomic_write
from chain.crypto.keyfile import load_private_key, save_private_key
from chain.node.identity import certificate_from_json, certificate_to_json
from chain.types import Certificate, Genesis, Role
from privacy.demo_data import write_demo
from rongxin.client_profile import write_profile
from rongxin.demo_net import running_network
from rongxin.ops import procs
from rongxin.ops.build import NetworkSpec
from rongxin.ops.layout import free_base_port
from rongxin.platform.config import PlatformError
from rongxin.platform.roles import ROLES
from zkp.auditor import AuditorKey, seal_auditor_key
from zkp.contract import auditor_payload

DEMO_PASSWORD = "rongxin-demo-platform"
"""Password of every demo user and of the demo network's sealed keys (loopback demo only)."""


@dataclass
class DemoDeployment:
    """A running demo: the network's node processes and the platform's configuration."""

    directory: Path
    config: Path
    entries: list[procs.NodeEntry]
    users: dict[str, str]
    """User name -> role."""


def _wait(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise PlatformError(f"timed out waiting for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_demo(
    directory: Path,
    *,
    images: Sequence[Path] = (),
    nodes: int = 4,
    scrypt_n: int = 1 << 14,
    port: int = 8480,
) -> Iterator[DemoDeployment]:
    """Create and start the demo deployment in ``directory`` (a previous demo's network,
    accounts, library and member files there are replaced); its node processes are stopped
    when the ``with`` block ends (also on Ctrl-C).

    Parameters
    ----------
    images : sequence of paths
        Media registered (and anchored) as demo works, owned by the legal center.
    nodes : int
        Consensus nodes (4 tolerates one fault).
    scrypt_n : int
        scrypt cost of the sealed keys (lower only in tests).
    port : int
        The platform's port on 127.0.0.1.

    Raises
    ------
    PlatformError
        The member could not be admitted in time.
    rongxin.demo_net.DemoNetError
        A node did not come up in time.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("platform-data", "library", "member", "agencies"):  # a previous demo's chain is gone
        shutil.rmtree(directory / stale, ignore_errors=True)
    net_dir = directory / "net"
    spec = NetworkSpec(
        consensus=nodes,
        observers=0,
        base_port=free_base_port(nodes, low=31000),
        chain_id="rongxin-demo-platform",
        consortium="Rongxin demo consortium (融信演示联盟)",
        block_interval_ms=500,
        round_timeout_ms=1000,
    )
    with running_network(
        net_dir,
        spec,
        DEMO_PASSWORD,
        scrypt_n=scrypt_n,
        peers=nodes - 1,
        what="the node processes to connect to each other",
    ) as running:
        deployment = DemoDeployment(directory, directory / "platform.toml", list(running.values()), {})
        _configure(deployment, net_dir, scrypt_n, port)
        if images:
            _seed_works(deployment, images)
        yield deployment


def _configure(deployment: DemoDeployment, net_dir: Path, scrypt_n: int, port: int) -> None:
    directory = deployment.directory
    genesis = Genesis.from_bytes((net_dir / "genesis.cbor").read_bytes())
    sup = net_dir / "supervisor"
    sup_key = load_private_key(sup / "supervisor.key", DEMO_PASSWORD)
    sup_cert = certificate_from_json((sup / "supervisor.cert.json").read_text())
    root = load_private_key(sup / "root.key", DEMO_PASSWORD)
    urls = [f"http://{e.config.api.listen}" for e in deployment.entries]
    key = PrivateKey.generate()
    cert = Certificate.issue(
        root,
        "County legal center (县法律服务中心)",
        "County legal center",
        [Role.LEGAL_CENTER, Role.COPYRIGHT_CENTER],  # copyright center: ownership records, transfers
        key.public_key,
        int(time.time() * 1000) - 3_600_000,
    )
    auditor = AuditorKey.generate()  # the regulator's key that opens confidential transfers
    atomic_write(
        directory / "auditor.key",
        seal_auditor_key(auditor, DEMO_PASSWORD, scrypt_n=scrypt_n),
        0o600,
        overwrite=True,
    )
    with NodeClient(urls[0], sup_key, sup_cert, genesis) as supervisor:
        added = int(supervisor.send("member.add", {"certificate": cert.to_dict()})["height"])
        supervisor.send("zkp.auditor", auditor_payload(auditor, genesis.chain_id))
    _wait(
        lambda: all((s.height or 0) >= added for s in procs.probe(deployment.entries)),
        60,
        "the member's admission on every node",
    )
    member = directory / "member"
    member.mkdir(exist_ok=True)
    save_private_key(key, member / "member.key", DEMO_PASSWORD, scrypt_n=scrypt_n)
    (member / "member.cert.json").write_text(certificate_to_json(cert), encoding="utf-8")
    pass_file = member / "member.pass"
    pass_file.write_text(DEMO_PASSWORD + "\n", encoding="utf-8")
    pass_file.chmod(0o600)
    write_profile(
        member / "client.toml",
        urls[0],
        net_dir / "genesis.cbor",
        member / "member.key",
        member / "member.cert.json",
        pass_file,
    )
    admin_pass = directory / "admin.pass"
    admin_pass.write_text(DEMO_PASSWORD + "\n", encoding="utf-8")
    admin_pass.chmod(0o600)
    write_demo(directory / "agencies", rows=2000)  # the regulator console's five demo agencies
    nodes = ", ".join(f'"{u}"' for u in urls)
    deployment.config.write_text(
        "# The member platform of the demo (rongxin serve --config platform.toml)\n"
        "[platform]\n"
        'name = "county-legal-center"\n'
        f'listen = "127.0.0.1:{port}"\n'
        'data_dir = "platform-data"\n'
        'library = "library"\n'
        'client = "member/client.toml"\n'
        f"nodes = [{nodes}]\n"
        'admin_password_file = "admin.pass"\n'
        'agencies = "agencies/agencies.toml"\n'
        'language = "zh"\n',
        encoding="utf-8",
    )
    from rongxin.platform.accounts import AccountStore

    store = AccountStore(directory / "platform-data" / "accounts.sqlite")
    try:
        for role in ROLES:
            if role == "admin":
                continue
            name = role.replace("_", "-")
            if store.user(name) is None:
                store.create_user(name, DEMO_PASSWORD, {role}, display=f"demo {role}")
            deployment.users[name] = role
    finally:
        store.close()
    deployment.users["admin"] = "admin"


def _seed_works(deployment: DemoDeployment, images: Sequence[Path]) -> None:
    """Register and anchor the demo works through the same code the upload page uses."""
    from rongxin.platform.app import open_chain
    from rongxin.platform.config import load_config
    from rongxin.platform.workstore import WorkStore

    config = load_config(deployment.config)
    chain = open_chain(config)
    works = WorkStore(config.library, config.data_dir, config.max_upload_bytes)
    try:
        for image in images:
            with open(image, "rb") as fh:
                reg = works.add(fh, image.name, {"title": image.stem, "owner": "County legal center"})
            receipt, _ = chain.anchor_digest(reg.fingerprint_digest, "work-fingerprint")
            works.save_receipt(reg.work_id, receipt)
    finally:
        works.close()
        chain.close()
