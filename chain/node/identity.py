"""A node's identity on disk: certificate JSON, the key password, key + certificate, genesis.

* :func:`certificate_to_json` / :func:`certificate_from_json` — a :class:`Certificate` as
  JSON (the fields of :meth:`Certificate.to_dict`, bytes as lowercase hex), the form of
  ``node.cert.json`` and ``supervisor.cert.json``;
* :func:`key_password` — the password of the node's key: the first line of
  ``key_password_file``, else ``$RONGXIN_KEY_PASSWORD``;
* :func:`load_identity` — the node's private key and certificate, checked to belong
  together (and, given the genesis, to be signed by the consortium's root);
* :func:`load_genesis` — the genesis document a configuration names, validated.

Every failure is a :class:`~chain.errors.ConfigError` naming the file and the key of
``node.toml`` that led to it. The password is never part of a message.

Examples
--------
>>> from chain.crypto import PrivateKey
>>> from chain.types import Certificate, Role
>>> root = PrivateKey.generate(); node = PrivateKey.generate()
>>> cert = Certificate.issue(root, "node-0", "org", [Role.CONSENSUS_NODE], node.public_key, 0)
>>> certificate_from_json(certificate_to_json(cert)) == cert
True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chain.crypto import PrivateKey
from chain.crypto.errors import CryptoError, WrongPasswordError
from chain.crypto.keyfile import load_private_key
from chain.errors import ChainError, ConfigError
from chain.node.config import KEY_PASSWORD_ENV, NodeConfig
from chain.types import NODE_ROLES, Certificate, Genesis

_BYTES_FIELDS = ("public_key", "signature")


def certificate_to_json(cert: Certificate) -> str:
    """JSON text of ``cert``: :meth:`Certificate.to_dict` with bytes as lowercase hex."""
    doc: dict[str, Any] = cert.to_dict()
    for name in _BYTES_FIELDS:
        doc[name] = doc[name].hex()
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def certificate_from_json(text: str | bytes) -> Certificate:
    """Inverse of :func:`certificate_to_json`; raises :class:`~chain.errors.ValidationError`
    (or :class:`ValueError` for text that is not JSON)."""
    doc = json.loads(text)
    if isinstance(doc, dict):
        for name in _BYTES_FIELDS:
            if isinstance(doc.get(name), str):
                doc[name] = bytes.fromhex(doc[name])
    return Certificate.from_dict(doc)


def read_certificate(cfg: NodeConfig) -> Certificate:
    """The node's certificate (``[node] cert_file``), without opening the key."""
    path = cfg.node.cert_file
    try:
        return certificate_from_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(str(cfg.path), "node", "cert_file", f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, ChainError) as exc:
        raise ConfigError(str(cfg.path), "node", "cert_file", f"{path} is not a certificate: {exc}") from None


def key_password(cfg: NodeConfig) -> str:
    """The password of the node's key file.

    The first line of ``[node] key_password_file`` when it is set, else the environment
    variable ``RONGXIN_KEY_PASSWORD``.

    Raises
    ------
    ConfigError
        The file cannot be read or is empty, or neither source is set.
    """
    file = cfg.node.key_password_file
    if file is not None:
        try:
            secret = file.read_text(encoding="utf-8").split("\n", 1)[0]
        except (OSError, UnicodeDecodeError) as exc:
            problem = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ConfigError(
                str(cfg.path), "node", "key_password_file", f"cannot read {file}: {problem}"
            ) from None
        if not secret:
            raise ConfigError(str(cfg.path), "node", "key_password_file", f"{file} is empty")
        return secret
    secret = os.environ.get(KEY_PASSWORD_ENV, "")
    if not secret:
        raise ConfigError(
            str(cfg.path),
            "node",
            "key_password_file",
            f"is not set and ${KEY_PASSWORD_ENV} is empty: the node's key cannot be opened",
        )
    return secret


def load_genesis(cfg: NodeConfig) -> Genesis:
    """The genesis document named by ``[node] genesis``, decoded and validated."""
    path = cfg.node.genesis
    try:
        genesis = Genesis.from_bytes(Path(path).read_bytes())
        genesis.validate()
    except OSError as exc:
        raise ConfigError(str(cfg.path), "node", "genesis", f"cannot read {path}: {exc.strerror}") from None
    except ChainError as exc:
        raise ConfigError(str(cfg.path), "node", "genesis", f"{path} is not a valid genesis: {exc}") from None
    return genesis


def load_identity(cfg: NodeConfig, genesis: Genesis | None = None) -> tuple[PrivateKey, Certificate]:
    """The node's private key and certificate, checked to belong together.

    Parameters
    ----------
    cfg : NodeConfig
        The node's configuration (``key_file``, ``cert_file`` and the key password).
    genesis : Genesis, optional
        When given, the certificate must be signed by its supervisory root.

    Raises
    ------
    ConfigError
        Wrong password, unreadable or damaged key, a certificate for another key, without
        a node role (``consensus_node`` or ``observer_node``), or not signed by the root.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from chain.crypto.keyfile import save_private_key
    >>> from chain.node.config import NodeSection, P2PSection, HostPort
    >>> from chain.types import Role
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> root, node = PrivateKey.generate(), PrivateKey.generate()
    >>> cert = Certificate.issue(root, "node-0", "org", [Role.CONSENSUS_NODE], node.public_key, 0)
    >>> save_private_key(node, d / "node.key", "long password", scrypt_n=1024)
    >>> _ = (d / "node.cert.json").write_text(certificate_to_json(cert))
    >>> _ = (d / "node.pass").write_text("long password\\n")
    >>> (d / "node.pass").chmod(0o600)
    >>> cfg = NodeConfig(d / "node.toml", NodeSection("node-0", d / "genesis.cbor", d / "node.key",
    ...     d / "node.cert.json", d / "data", key_password_file=d / "node.pass"),
    ...     P2PSection((HostPort("127.0.0.1", 26656),)))
    >>> key, c = load_identity(cfg)
    >>> key == node and c == cert
    True
    """
    cert = read_certificate(cfg)
    secret = key_password(cfg)
    try:
        key = load_private_key(cfg.node.key_file, secret)
    except WrongPasswordError:
        raise ConfigError(
            str(cfg.path), "node", "key_file", f"{cfg.node.key_file}: wrong key password (or a damaged file)"
        ) from None
    except (CryptoError, OSError) as exc:
        raise ConfigError(
            str(cfg.path), "node", "key_file", f"cannot open {cfg.node.key_file}: {exc}"
        ) from None
    if key.public_key.to_bytes() != cert.public_key:
        raise ConfigError(
            str(cfg.path),
            "node",
            "cert_file",
            f"{cfg.node.cert_file} certifies another key than {cfg.node.key_file}",
        )
    if not NODE_ROLES & set(cert.roles):
        raise ConfigError(
            str(cfg.path),
            "node",
            "cert_file",
            f"{cfg.node.cert_file} is not a node certificate (roles: {', '.join(cert.roles)})",
        )
    if genesis is not None:
        try:
            cert.verify(genesis.root_key())
        except ChainError:
            raise ConfigError(
                str(cfg.path),
                "node",
                "cert_file",
                f"{cfg.node.cert_file} is not signed by the root of {genesis.chain_id}",
            ) from None
    return key, cert


__all__ = [
    "certificate_from_json",
    "certificate_to_json",
    "key_password",
    "load_genesis",
    "load_identity",
    "read_certificate",
]
