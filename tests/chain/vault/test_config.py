"""The ``[vault]`` section of node.toml: defaults, a full section, every bad value named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chain.errors import ConfigError
from chain.node.config import dump_config, load_config

BASE = """
[node]
name = "node-0"
genesis = "genesis.cbor"
key_file = "node.key"
cert_file = "node.cert.json"

[p2p]
listen = ["127.0.0.1:26656"]
"""


def _write(d: Path, extra: str) -> Path:
    for name in ("genesis.cbor", "node.key", "node.cert.json"):
        (d / name).write_bytes(b"")
    p = d / "node.toml"
    p.write_text(BASE + extra)
    return p


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, ""))
    v = cfg.vault
    assert v.enable and not v.hold_all and v.replicate_to == () and v.sources() == ()
    assert v.directory(cfg.node.data_dir) == tmp_path / "data" / "vault"
    assert v.max_object_bytes == 4 * 1024**3


def test_full_section_round_trips(tmp_path: Path) -> None:
    op = "ab" * 32
    cfg = load_config(
        _write(
            tmp_path,
            f"""
[vault]
dir = "objects"
max_object_bytes = 1048576
replicate_to = ["http://127.0.0.1:26667/", "http://[::1]:26677"]
repair_from = ["https://regulator.example.org:443"]
hold_all = true
replicate_interval_s = 0.5
scrub_interval_s = 3600
operators = ["{op.upper()}"]
""",
        )
    )
    v = cfg.vault
    assert v.dir == tmp_path / "objects"
    assert v.replicate_to == ("http://127.0.0.1:26667", "http://[::1]:26677")
    assert v.sources() == ("https://regulator.example.org:443",)
    assert v.hold_all and v.scrub_interval_s == 3600.0 and v.operators == (op,)
    again = tmp_path / "again.toml"
    again.write_text(dump_config(cfg))
    assert load_config(again).vault == v


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('replicate_to = ["ftp://x:1"]', "replicate_to[0]"),
        ('replicate_to = ["http://a:1", "http://a:1"]', "replicate_to"),
        ("replicate_to = [1]", "replicate_to[0]"),
        ("max_object_bytes = 0", "max_object_bytes"),
        ("scrub_interval_s = -1", "scrub_interval_s"),
        ('operators = ["zz"]', "operators[0]"),
        ("hold_all = 1", "hold_all"),
        ("colour = 1", "colour"),
    ],
)
def test_bad_values_named(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"[vault] {key}")):
        load_config(_write(tmp_path, f"\n[vault]\n{text}\n"))


S3 = """
[vault]
backend = "s3"
s3_endpoint = "http://127.0.0.1:9000"
s3_bucket = "rongxin-vault"
s3_access_key_id = "key-id"
"""


def test_s3_backend_round_trips_without_the_secret(tmp_path: Path) -> None:
    secret = tmp_path / "s3.secret"
    secret.write_text("the-secret-itself\n")
    secret.chmod(0o600)
    cfg = load_config(_write(tmp_path, S3 + 's3_secret_file = "s3.secret"\ns3_prefix = "node-0/"\n'))
    s3 = cfg.vault.s3
    assert cfg.vault.backend == "s3" and s3 is not None
    assert s3.secret_file == secret and s3.prefix == "node-0/" and s3.part_bytes == 16 * 1024 * 1024
    text = dump_config(cfg)
    assert "the-secret-itself" not in text
    again = tmp_path / "again.toml"
    again.write_text(text)
    assert load_config(again).vault == cfg.vault


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('backend = "ftp"', "backend"),
        ('s3_bucket = "x"', "s3_bucket"),  # only with backend = "s3"
        (S3.split("\n", 2)[2], "s3_secret_file"),  # neither secret source
        (S3.split("\n", 2)[2] + 's3_secret_env = "A"\ns3_secret_file = "node.key"', "s3_secret_file"),
        (
            S3.split("\n", 2)[2].replace("http://127.0.0.1:9000", "127.0.0.1:9000") + 's3_secret_env = "A"',
            "s3_endpoint",
        ),
        (S3.split("\n", 2)[2].replace("rongxin-vault", "Bad_Bucket") + 's3_secret_env = "A"', "s3_bucket"),
        (S3.split("\n", 2)[2] + 's3_secret_env = "A"\ns3_part_bytes = 1024', "s3_part_bytes"),
        (S3.split("\n", 2)[2] + 's3_secret_env = "A B"', "s3_secret_env"),
        (S3.split("\n", 2)[2] + 's3_secret_env = "A"\ns3_prefix = "/abs"', "s3_prefix"),
        (S3.split("\n", 2)[2] + 's3_secret_env = "A"\ns3_secret = "plain"', "s3_secret"),
    ],
)
def test_bad_s3_values_named(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"[vault] {key}")):
        load_config(_write(tmp_path, f"\n[vault]\n{text}\n"))


def test_s3_secret_file_readable_by_others_refused(tmp_path: Path) -> None:
    secret = tmp_path / "s3.secret"
    secret.write_text("x\n")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match=r"\[vault\] s3_secret_file.*chmod 600"):
        load_config(_write(tmp_path, S3 + 's3_secret_file = "s3.secret"\n'))


def test_s3_secret_read_at_start_and_empty_refused(tmp_path: Path) -> None:
    from chain.node.vault import open_store
    from chain.vault.s3 import S3Store

    secret = tmp_path / "s3.secret"
    secret.write_text("\n")
    secret.chmod(0o600)
    cfg = load_config(_write(tmp_path, S3 + 's3_secret_file = "s3.secret"\n'))
    with pytest.raises(ConfigError, match=r"\[vault\] s3_secret_file: gives an empty secret"):
        open_store(cfg)
    secret.write_text("value-1\n")
    store = open_store(cfg)  # no request is made until the store is used
    assert isinstance(store, S3Store) and store.bucket == "rongxin-vault"
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9000"
