"""node.toml: a good file loads with its paths resolved, every bad one names file, section and key."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from chain.crypto import PrivateKey
from chain.crypto.keyfile import save_private_key
from chain.errors import ChainError, ConfigError
from chain.node import (
    HostPort,
    dump_config,
    key_password,
    load_config,
    load_genesis,
    load_identity,
    parse_host_port,
)
from chain.node.identity import certificate_from_json, certificate_to_json
from chain.types import Certificate, Genesis, Role

PASSWORD = "a long node password"

GOOD = """
[node]
name = "node-0"
genesis = "../genesis.cbor"
key_file = "node.key"
key_password_file = "node.pass"
cert_file = "node.cert.json"
data_dir = "data"
log_level = "debug"

[p2p]
listen = ["127.0.0.1:26656", "[::1]:26656"]
persistent_peers = ["10.0.0.2:26666", "node-2.example.org:26676", "[fe80::1]:26686"]
max_frame_bytes = 1048576
handshake_timeout_s = 5

[api]
listen = "0.0.0.0:26657"
public_status = false

[consensus]
round_timeout_ms = 1500

[mempool]
max_txs = 5000
max_bytes = 1000000
max_per_sender = 100

[state_sync]
enable = true
snapshot_interval = 0
snapshot_keep = 3
discovery_s = 4
chunk_timeout_s = 2.5
"""


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """A network directory with one node's genesis, sealed key, certificate and password file."""
    root, node, other = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    certs = [
        Certificate.issue(root, "node-0", "Org A", [Role.CONSENSUS_NODE], node.public_key, 0),
        Certificate.issue(root, "node-1", "Org B", [Role.CONSENSUS_NODE], other.public_key, 0),
    ]
    genesis = Genesis("Test consortium", "rx-test", root.public_key.to_bytes(), tuple(certs))
    (tmp_path / "genesis.cbor").write_bytes(genesis.to_bytes())
    d = tmp_path / "node-0"
    d.mkdir()
    save_private_key(node, d / "node.key", PASSWORD, scrypt_n=1 << 10)
    (d / "other.key").write_bytes((d / "node.key").read_bytes())
    save_private_key(other, d / "other.key", PASSWORD, scrypt_n=1 << 10)
    (d / "node.cert.json").write_text(certificate_to_json(certs[0]))
    (d / "node.pass").write_text(PASSWORD + "\n")
    (d / "node.pass").chmod(0o600)
    (d / "node.toml").write_text(GOOD)
    return d


def test_good_config_loads_with_resolved_paths(node_dir: Path) -> None:
    cfg = load_config(node_dir / "node.toml")
    assert cfg.path == node_dir / "node.toml"
    assert cfg.node.name == "node-0"
    assert cfg.node.genesis == node_dir.parent / "genesis.cbor"
    assert cfg.node.key_file == node_dir / "node.key"
    assert cfg.node.key_password_file == node_dir / "node.pass"
    assert cfg.node.data_dir == node_dir / "data"
    assert cfg.node.log_level == "debug"
    assert cfg.p2p.listen == (HostPort("127.0.0.1", 26656), HostPort("::1", 26656))
    assert [str(p) for p in cfg.p2p.persistent_peers] == [
        "10.0.0.2:26666",
        "node-2.example.org:26676",
        "[fe80::1]:26686",
    ]
    assert cfg.p2p.max_frame_bytes == 1048576 and cfg.p2p.handshake_timeout_s == 5.0
    assert str(cfg.api.listen) == "0.0.0.0:26657" and cfg.api.listen.url_authority == "127.0.0.1:26657"
    assert cfg.api.public_status is False
    assert cfg.consensus.round_timeout_ms == 1500
    assert (cfg.mempool.max_txs, cfg.mempool.max_bytes, cfg.mempool.max_per_sender) == (5000, 1000000, 100)
    assert cfg.pid_file == node_dir / "data" / "node.pid"
    ss = cfg.state_sync
    assert (ss.enable, ss.snapshot_interval, ss.snapshot_keep) == (True, 0, 3)
    assert (ss.discovery_s, ss.chunk_timeout_s) == (4.0, 2.5)


def test_defaults_and_relative_cwd_independence(node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    minimal = (
        '[node]\nname = "n"\ngenesis = "../genesis.cbor"\nkey_file = "node.key"\n'
        'cert_file = "node.cert.json"\n[p2p]\nlisten = ["127.0.0.1:1"]\n'
    )
    (node_dir / "min.toml").write_text(minimal)
    monkeypatch.chdir(node_dir.parent)
    cfg = load_config(Path(node_dir.name) / "min.toml")
    assert cfg.path.is_absolute() and cfg.node.genesis == node_dir.parent / "genesis.cbor"
    assert cfg.node.key_password_file is None and cfg.node.log_level == "info"
    assert cfg.p2p.persistent_peers == () and cfg.p2p.max_frame_bytes == 16 * 1024 * 1024 + 64
    assert str(cfg.api.listen) == "127.0.0.1:26657" and cfg.api.public_status is True
    assert cfg.consensus.round_timeout_ms is None and cfg.mempool.max_txs == 100_000
    assert cfg.state_sync.enable is False and cfg.state_sync.snapshot_interval == 1000


def test_dump_round_trips(node_dir: Path) -> None:
    cfg = load_config(node_dir / "node.toml")
    text = dump_config(cfg, header="generated for a test\n\nsecond line")
    assert text.startswith("# generated for a test\n#\n# second line\n")
    assert 'genesis = "../genesis.cbor"' in text and 'key_file = "node.key"' in text
    (node_dir / "again.toml").write_text(text)
    again = load_config(node_dir / "again.toml")
    assert again == replace(cfg, path=node_dir / "again.toml")
    no_consensus = replace(cfg, consensus=replace(cfg.consensus, round_timeout_ms=None))
    assert "[consensus]" not in dump_config(no_consensus)


def test_dump_escapes_strings(node_dir: Path) -> None:
    cfg = load_config(node_dir / "node.toml")
    odd = node_dir / 'we"ird\\dir'
    odd.mkdir()
    (odd / "k\tey").write_bytes((node_dir / "node.key").read_bytes())
    tricky = replace(cfg, node=replace(cfg.node, key_file=odd / "k\tey"))
    (node_dir / "odd.toml").write_text(dump_config(tricky))
    assert load_config(node_dir / "odd.toml").node.key_file == odd / "k\tey"


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


BAD: list[tuple[str, str, str, str | None, str | None, str]] = [
    # (id, old, new, section, key, fragment of the problem)
    (
        "unknown key",
        'log_level = "debug"',
        'log_level = "debug"\nlog_levle = "info"',
        "node",
        "log_levle",
        "unknown key",
    ),
    ("unknown section", "[mempool]", "[mempol]", "mempol", None, "unknown section"),
    (
        "wrong type",
        "max_txs = 5000",
        'max_txs = "5000"',
        "mempool",
        "max_txs",
        "must be an integer, not a string",
    ),
    ("bool is not int", "max_txs = 5000", "max_txs = true", "mempool", "max_txs", "not a boolean"),
    (
        "list expected",
        'listen = ["127.0.0.1:26656", "[::1]:26656"]',
        'listen = "127.0.0.1:26656"',
        "p2p",
        "listen",
        "must be a list",
    ),
    ("no port", '"10.0.0.2:26666"', '"10.0.0.2"', "p2p", "persistent_peers[0]", "has no port"),
    ("port range", '"10.0.0.2:26666"', '"10.0.0.2:70000"', "p2p", "persistent_peers[0]", "outside 1-65535"),
    ("port zero", '"10.0.0.2:26666"', '"10.0.0.2:0"', "p2p", "persistent_peers[0]", "outside 1-65535"),
    ("bad ipv4", '"10.0.0.2:26666"', '"10.0.0.300:26666"', "p2p", "persistent_peers[0]", "not a valid IPv4"),
    ("bare ipv6", '"[fe80::1]:26686"', '"fe80::1:26686"', "p2p", "persistent_peers[2]", "in brackets"),
    ("bad ipv6", '"[fe80::1]:26686"', '"[fe80::zz]:26686"', "p2p", "persistent_peers[2]", "not an IPv6"),
    (
        "bad host name",
        '"node-2.example.org:26676"',
        '"node_2!:26676"',
        "p2p",
        "persistent_peers[1]",
        "not a valid host name",
    ),
    ("duplicate peer", '"[fe80::1]:26686"', '"10.0.0.2:26666"', "p2p", "persistent_peers", "twice"),
    (
        "bad api listen",
        'listen = "0.0.0.0:26657"',
        'listen = "0.0.0.0:http"',
        "api",
        "listen",
        "not a number",
    ),
    ("missing file", 'key_file = "node.key"', 'key_file = "nope.key"', "node", "key_file", "does not exist"),
    (
        "directory as file",
        'cert_file = "node.cert.json"',
        'cert_file = "."',
        "node",
        "cert_file",
        "is not a file",
    ),
    ("missing key", 'cert_file = "node.cert.json"\n', "", "node", "cert_file", "is required"),
    (
        "missing section",
        GOOD[GOOD.index("[p2p]") : GOOD.index("[api]")],
        "",
        "p2p",
        None,
        "section is missing",
    ),
    ("zero limit", "max_bytes = 1000000", "max_bytes = 0", "mempool", "max_bytes", "must be positive"),
    (
        "negative limit",
        "round_timeout_ms = 1500",
        "round_timeout_ms = -1",
        "consensus",
        "round_timeout_ms",
        "positive",
    ),
    (
        "nan timeout",
        "handshake_timeout_s = 5",
        "handshake_timeout_s = nan",
        "p2p",
        "handshake_timeout_s",
        "positive",
    ),
    (
        "huge frame",
        "max_frame_bytes = 1048576",
        "max_frame_bytes = 1073741824",
        "p2p",
        "max_frame_bytes",
        "exceeds",
    ),
    (
        "per sender",
        "max_per_sender = 100",
        "max_per_sender = 6000",
        "mempool",
        "max_per_sender",
        "exceeds max_txs",
    ),
    (
        "no listen",
        'listen = ["127.0.0.1:26656", "[::1]:26656"]',
        "listen = []",
        "p2p",
        "listen",
        "at least one",
    ),
    ("log level", 'log_level = "debug"', 'log_level = "loud"', "node", "log_level", "is not one of"),
    ("node name", 'name = "node-0"', 'name = "node 0/x"', "node", "name", "letters, digits"),
    (
        "negative interval",
        "snapshot_interval = 0",
        "snapshot_interval = -5",
        "state_sync",
        "snapshot_interval",
        "0 (no snapshots) or positive",
    ),
    ("keep none", "snapshot_keep = 3", "snapshot_keep = 0", "state_sync", "snapshot_keep", "positive"),
    ("enable not bool", "enable = true", 'enable = "yes"', "state_sync", "enable", "true or false"),
    (
        "state sync key",
        "chunk_timeout_s = 2.5",
        "chunk_timeout = 2.5",
        "state_sync",
        "chunk_timeout",
        "unknown key",
    ),
    ("section not table", "[consensus]\nround_timeout_ms = 1500", "", None, None, ""),
]


@pytest.mark.parametrize(("case", "old", "new", "section", "key", "problem"), BAD, ids=[b[0] for b in BAD])
def test_bad_configs_name_file_section_and_key(
    node_dir: Path, case: str, old: str, new: str, section: str | None, key: str | None, problem: str
) -> None:
    text = _edit(GOOD, old, new)
    if case == "section not table":
        text = "consensus = 3\n" + text
        section, key, problem = None, "consensus", "must be a [consensus] table"
    path = node_dir / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert isinstance(err, ChainError)
    assert err.path == str(path) and err.section == section and err.key == key, str(err)
    assert problem in err.problem, str(err)
    assert str(err).startswith(str(path))
    if section is not None:
        assert f"[{section}]" in str(err)


def test_file_level_errors(node_dir: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(node_dir / "absent.toml")
    (node_dir / "syntax.toml").write_text("[node\nname=")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(node_dir / "syntax.toml")
    assert info.value.section is None and info.value.key is None
    (node_dir / "latin1.toml").write_bytes(b'[node]\nname = "\xe9"\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(node_dir / "latin1.toml")


def test_password_file_must_be_private(node_dir: Path) -> None:
    (node_dir / "node.pass").chmod(0o644)
    with pytest.raises(ConfigError, match=r"\[node\] key_password_file: .*readable by others.*chmod 600"):
        load_config(node_dir / "node.toml")


def test_data_dir_must_be_a_directory(node_dir: Path) -> None:
    (node_dir / "data").write_text("not a directory")
    with pytest.raises(ConfigError, match=r"\[node\] data_dir: .*not a directory"):
        load_config(node_dir / "node.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:26656", HostPort("127.0.0.1", 26656)),
        ("[::1]:1", HostPort("::1", 1)),
        ("[::]:65535", HostPort("::", 65535)),
        ("localhost:80", HostPort("localhost", 80)),
        ("node-1.example.org.:26656", HostPort("node-1.example.org.", 26656)),
    ],
)
def test_parse_host_port_good(text: str, expected: HostPort) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    "text", ["", ":26656", "1.2.3:26656", "[::1]26656", "[::1]:", "host:-1", "host:２２"]
)
def test_parse_host_port_bad(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host_port(text)


def test_key_password_sources(node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(node_dir / "node.toml")
    assert key_password(cfg) == PASSWORD
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "from env")
    assert key_password(cfg) == PASSWORD  # the file wins
    no_file = replace(cfg, node=replace(cfg.node, key_password_file=None))
    assert key_password(no_file) == "from env"
    monkeypatch.delenv("RONGXIN_KEY_PASSWORD")
    with pytest.raises(ConfigError, match=r"key_password_file: is not set and \$RONGXIN_KEY_PASSWORD"):
        key_password(no_file)
    (node_dir / "node.pass").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        key_password(cfg)


def test_load_identity_checks_key_cert_and_root(node_dir: Path) -> None:
    cfg = load_config(node_dir / "node.toml")
    genesis = load_genesis(cfg)
    key, cert = load_identity(cfg, genesis)
    assert key.public_key.to_bytes() == cert.public_key and cert.subject == "node-0"

    other_key = replace(cfg, node=replace(cfg.node, key_file=node_dir / "other.key"))
    with pytest.raises(ConfigError, match=r"\[node\] cert_file: .*certifies another key"):
        load_identity(other_key)

    (node_dir / "node.pass").write_text("wrong password\n")
    with pytest.raises(ConfigError, match=r"\[node\] key_file: .*wrong key password") as info:
        load_identity(cfg)
    assert "wrong password" not in str(info.value)
    (node_dir / "node.pass").write_text(PASSWORD)

    foreign = Genesis("Other", "rx-other", PrivateKey.generate().public_key.to_bytes(), ())
    with pytest.raises(ConfigError, match="not signed by the root of rx-other"):
        load_identity(cfg, foreign)

    member = Certificate.issue(PrivateKey.generate(), "m", "o", [Role.MEDIA_CENTER], key.public_key, 0)
    (node_dir / "node.cert.json").write_text(certificate_to_json(member))
    with pytest.raises(ConfigError, match="not a node certificate"):
        load_identity(cfg)
    (node_dir / "node.cert.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"cert_file: .* is not a certificate"):
        load_identity(cfg)


def test_load_genesis_refuses_garbage(node_dir: Path) -> None:
    cfg = load_config(node_dir / "node.toml")
    assert load_genesis(cfg).chain_id == "rx-test"
    cfg.node.genesis.write_bytes(b"\x00garbage")
    with pytest.raises(ConfigError, match=r"\[node\] genesis: .* is not a valid genesis"):
        load_genesis(cfg)


def test_certificate_json_is_hex(node_dir: Path) -> None:
    text = (node_dir / "node.cert.json").read_text()
    cert = certificate_from_json(text)
    assert f'"public_key": "{cert.public_key.hex()}"' in text
    assert os.linesep in text or text.endswith("\n")
