"""The real thing: node processes (``rongxin node run``), agency processes (``rongxin agency
serve`` with ``[consortium.ledger]``) and ``rongxin member revoke``: a regulator revoked on
chain is refused by the agencies at its next query."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.client import NodeClient
from chain.crypto.keyfile import load_private_key
from chain.node.identity import certificate_from_json
from chain.types import Genesis, Role
from privacy import paillier
from privacy.config import Deployment
from privacy.demo_data import AGENCIES, write_demo, write_service_configs
from privacy.errors import PolicyRefusal
from privacy.identity import Identity, load_certificate
from privacy.processes import AgencyProcesses
from privacy.query import Regulator
from privacy.spec import parse
from rongxin.client_profile import write_profile
from rongxin.demo_net import running_network
from rongxin.ops.build import NetworkSpec
from rongxin.ops.layout import PORT_STRIDE, free_base_port

ROOT_DIR = Path(__file__).resolve().parents[2]
PASSWORD = "privacy-ledger-test"
QUERY = "SELECT COUNT(*) FROM cases WHERE status = 'confirmed' GROUP BY county"

pytestmark = pytest.mark.slow


def _member_revoke(net: Path, cert_file: Path, reason: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR), "RONGXIN_KEY_PASSWORD": PASSWORD}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rongxin",
            "member",
            "revoke",
            str(cert_file),
            "--reason",
            reason,
            "--client",
            str(net / "supervisor" / "client.toml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_regulator_revoked_on_chain_is_refused_by_agency_processes(tmp_path: Path) -> None:
    net = tmp_path / "net"
    spec = NetworkSpec(
        consensus=1,
        base_port=free_base_port(1, low=30000),
        chain_id="rongxin-privacy-ledger",
        block_interval_ms=200,
        round_timeout_ms=500,
    )
    with running_network(net, spec, PASSWORD, scrypt_n=1 << 10, peers=0, what="the node process") as nodes:
        url = f"http://{nodes['node-0'].config.api.listen}"
        genesis = Genesis.from_bytes((net / "genesis.cbor").read_bytes())
        root = load_private_key(net / "supervisor" / "root.key", PASSWORD)
        sup_key = load_private_key(net / "supervisor" / "supervisor.key", PASSWORD)
        sup_cert = certificate_from_json((net / "supervisor" / "supervisor.cert.json").read_text())
        regulator = Identity.issue(root, "Provincial regulator", [Role.REGULATOR])
        q = tmp_path / "query"
        config = write_demo(q, rows=300, root=root, regulator=regulator, chain_id=genesis.chain_id)
        with NodeClient(url, sup_key, sup_cert, genesis) as supervisor:  # every party a member
            for name in ["regulator", *AGENCIES]:
                cert = load_certificate(q / "keys" / f"{name}.cert.json")
                supervisor.send("member.add", {"certificate": cert.to_dict()})
        regulator_file, services = write_service_configs(config, "127.0.0.1", free_base_port(5), PORT_STRIDE)
        for name, path in zip(AGENCIES, services, strict=True):
            profile = q / f"{name}.client.toml"
            keys = q / "keys"
            write_profile(
                profile,
                url,
                net / "genesis.cbor",
                keys / f"{name}.key",
                keys / f"{name}.cert.json",
                keys / "password",
            )
            doc = json.loads(path.read_text())
            doc["consortium"]["ledger"] = {"client": profile.name, "ttl_s": 0, "grace_s": 5}
            path.write_text(json.dumps(doc))
        dep = Deployment.from_file(regulator_file)
        identity = dep.regulator_identity()
        reg = Regulator(dep.catalog, dep.clients(None, identity), paillier.generate_keypair(2048), identity)
        with AgencyProcesses(services):
            rows = reg.run(parse(QUERY)).rows
            assert sum(int(r[-1]) for r in rows if r[-1] is not None) > 0
            out = _member_revoke(net, q / "keys" / "regulator.cert.json", "key leaked")
            assert "revoked" in out
            with pytest.raises(PolicyRefusal, match=r"revoked on the consortium ledger .*\(key leaked\)"):
                reg.run(parse(QUERY))
