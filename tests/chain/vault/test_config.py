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
