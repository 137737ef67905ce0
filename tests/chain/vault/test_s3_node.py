"""A node whose vault is configured with ``backend = "s3"`` (a real S3 server on loopback):
members PUT and GET through the node API, copies reach the regulator's node, and an
object damaged in the bucket is found by scrub and repaired from the replica."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chain.errors import ConfigError
from chain.node.config import load_config
from chain.node.vault import build_vault, open_store
from chain.vault.s3 import S3Store
from chain.vault.store import LocalStore, ObjectStore
from tests.chain.vault.harness import vault_nodes
from tests.chain.vault.s3server import ACCESS_KEY_ID, REGION, SECRET, s3_server
from tests.chain.vault.test_config import _write

SECRET_ENV = "RONGXIN_TEST_S3_SECRET"


def _s3_config(d: Path, endpoint: str) -> Path:
    return _write(
        d,
        f"""
[vault]
backend = "s3"
s3_endpoint = "{endpoint}"
s3_bucket = "node-vault"
s3_region = "{REGION}"
s3_access_key_id = "{ACCESS_KEY_ID}"
s3_secret_env = "{SECRET_ENV}"
s3_prefix = "node-0/"
""",
    )


def test_node_with_s3_backend_serves_replicates_and_repairs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with s3_server() as server:
        server.store("node-vault")  # the operator creates the bucket
        cfg = load_config(_s3_config(tmp_path, server.endpoint))
        monkeypatch.delenv(SECRET_ENV, raising=False)
        with pytest.raises(ConfigError, match="s3_secret_env"):
            open_store(cfg)
        monkeypatch.setenv(SECRET_ENV, SECRET)
        bucket = open_store(cfg)
        assert isinstance(bucket, S3Store)

        def store_for(i: int) -> ObjectStore:
            return bucket if i == 0 else LocalStore(tmp_path / f"local-{i}")

        with vault_nodes(tmp_path / "net", count=2, store_for=store_for) as net:
            a, regulator = net.vaults
            src = tmp_path / "case.wacz"
            src.write_bytes(os.urandom(150_000))
            owner = net.client(net.owner)
            stored = owner.put(src)
            assert list(bucket.digests()) == [stored.digest]
            out = tmp_path / "back.wacz"
            owner.get(stored.digest, out)
            assert out.read_bytes() == src.read_bytes()
            # the node's own replication push (chain.node.vault) copies from the bucket
            me = net.node_ids[0]
            _, push = build_vault(cfg, me.key, me.cert, net.consortium.genesis, lambda: None)
            push(net.urls[1], stored.digest)
            assert regulator.store.verify(stored.digest) == stored.header
            assert list((cfg.vault.directory(cfg.node.data_dir) / "spool").iterdir()) == []
            assert a.replicate(net.push(0)) == (1, 0)
            # an object altered in the bucket is found by scrub and repaired from the replica
            key = bucket.key(stored.digest)
            raw = bytearray(bucket.client.get_object(Bucket=bucket.bucket, Key=key)["Body"].read())
            raw[1000] ^= 1
            bucket.client.put_object(Bucket=bucket.bucket, Key=key, Body=bytes(raw))
            report = a.scrub()
            assert stored.digest in report.damaged and stored.digest in report.repaired
            assert bucket.verify(stored.digest) == stored.header
            owner.get(stored.digest, out)
            assert out.read_bytes() == src.read_bytes()
