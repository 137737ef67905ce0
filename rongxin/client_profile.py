"""A member's client profile: which node to talk to, as whom, on which chain.

Members' applications (``rongxin anchor``, ``rongxin receipt``, ``works add --anchor``,
``query run``, ``rongxin member …``) reach the ledger through a node's API with the
member's signed requests. The profile is a small TOML file, ``rongxin-client.toml``::

    [client]
    node = "http://127.0.0.1:26657"        # the member's own node
    genesis = "genesis.cbor"               # the consortium's genesis (receipts verify against it)
    key_file = "member.key"                # the member's sealed SM2 key
    cert_file = "member.cert.json"         # its certificate
    key_password_file = "member.pass"      # optional; else $RONGXIN_KEY_PASSWORD, else a prompt

Relative paths are relative to the profile's directory. ``rongxin chain init`` writes one
for the supervisor (``supervisor/client.toml``) and ``rongxin member add`` one for each
new member. Commands find the profile from ``--client``, else ``$RONGXIN_CLIENT``, else
``./rongxin-client.toml``; ``--node URL`` overrides the node.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "c.toml").write_text('[client]\\nnode = "http://127.0.0.1:1"\\ngenesis = "g"\\n'
...                               'key_file = "k"\\ncert_file = "c"\\n')
>>> load_profile(d / "c.toml").node
'http://127.0.0.1:1'
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chain.node.config import toml_document
from rongxin.errors import RongxinError

if TYPE_CHECKING:
    from chain.client import NodeClient
    from chain.types import Genesis

CLIENT_ENV = "RONGXIN_CLIENT"
DEFAULT_PROFILE = "rongxin-client.toml"
_KEYS = {"node", "genesis", "key_file", "cert_file", "key_password_file"}


class ProfileError(RongxinError):
    """The client profile is missing, malformed or names files that cannot be used."""


@dataclass(frozen=True)
class ClientProfile:
    """A loaded profile (paths absolute)."""

    path: Path
    node: str
    genesis: Path
    key_file: Path
    cert_file: Path
    key_password_file: Path | None = None


def find_profile(explicit: Path | None) -> Path:
    """``explicit``, else ``$RONGXIN_CLIENT``, else ``./rongxin-client.toml``."""
    if explicit is not None:
        return explicit
    env = os.environ.get(CLIENT_ENV)
    return Path(env) if env else Path(DEFAULT_PROFILE)


def load_profile(path: str | os.PathLike[str]) -> ClientProfile:
    """Read and check a profile; :class:`ProfileError` naming the file and key."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(
            f"no client profile at {p} (give --client FILE or set ${CLIENT_ENV}; "
            "`rongxin chain init` writes supervisor/client.toml)"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{p}: not a readable TOML file: {exc}") from None
    section = doc.get("client")
    if not isinstance(section, dict) or set(doc) != {"client"}:
        raise ProfileError(f"{p}: the profile has exactly one section, [client]")
    unknown = set(section) - _KEYS
    if unknown:
        raise ProfileError(f"{p}: [client] {sorted(unknown)[0]}: unknown key")
    values: dict[str, Any] = {}
    for key in ("node", "genesis", "key_file", "cert_file"):
        v = section.get(key)
        if not isinstance(v, str) or not v:
            raise ProfileError(f"{p}: [client] {key}: a non-empty string is required")
        values[key] = v
    if not values["node"].startswith(("http://", "https://")):
        raise ProfileError(f"{p}: [client] node: an http:// or https:// URL is required")
    base = p.parent
    pw = section.get("key_password_file")
    if pw is not None and not isinstance(pw, str):
        raise ProfileError(f"{p}: [client] key_password_file: a string is required")
    return ClientProfile(
        p.resolve(),
        values["node"].rstrip("/"),
        (base / values["genesis"]).resolve(),
        (base / values["key_file"]).resolve(),
        (base / values["cert_file"]).resolve(),
        (base / pw).resolve() if pw else None,
    )


def write_profile(
    path: Path,
    node: str,
    genesis: Path,
    key_file: Path,
    cert_file: Path,
    key_password_file: Path | None = None,
) -> None:
    """Write a profile at ``path`` with paths relative to its directory where possible."""

    def rel(target: Path) -> str:
        try:
            return os.path.relpath(target.resolve(), path.parent.resolve())
        except ValueError:
            return str(target.resolve())

    section: dict[str, object] = {
        "node": node,
        "genesis": rel(genesis),
        "key_file": rel(key_file),
        "cert_file": rel(cert_file),
    }
    if key_password_file is not None:
        section["key_password_file"] = rel(key_password_file)
    header = "# A member's client profile (see `rongxin anchor --help`).\n"
    path.write_text(header + toml_document({"client": section}), encoding="utf-8")


def profile_password(profile: ClientProfile) -> str | None:
    """The key password from the profile's password file or the environment, if given."""
    if profile.key_password_file is not None:
        try:
            return profile.key_password_file.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as exc:
            raise ProfileError(
                f"cannot read the key password file {profile.key_password_file}: {exc}"
            ) from None
    return os.environ.get("RONGXIN_KEY_PASSWORD")


def open_unattended(path: str | os.PathLike[str], who: str) -> tuple[NodeClient, Genesis]:
    """The node client of the profile at ``path``, opened without a prompt (for services).

    Parameters
    ----------
    path : path
        The member client profile.
    who : str
        What opens it, for the error message (e.g. ``"the platform"``).

    Raises
    ------
    ProfileError
        The profile cannot be read or opened, or it names no password file and
        ``$RONGXIN_KEY_PASSWORD`` is not set.
    """
    profile = load_profile(path)
    password = profile_password(profile)
    if password is None:
        raise ProfileError(
            f"{profile.path}: {who} needs the key password without a prompt: give "
            "key_password_file in the profile or set $RONGXIN_KEY_PASSWORD"
        )
    return open_client(profile, password)


def open_client(profile: ClientProfile, password: str, node: str | None = None) -> tuple[NodeClient, Genesis]:
    """A :class:`~chain.client.NodeClient` for the profile's member (``node`` overrides)."""
    from chain.client import NodeClient
    from chain.crypto.keyfile import load_private_key
    from chain.errors import ChainError
    from chain.node.identity import certificate_from_json
    from chain.types import Genesis

    try:
        genesis = Genesis.from_bytes(profile.genesis.read_bytes())
        key = load_private_key(profile.key_file, password)
        cert = certificate_from_json(profile.cert_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{profile.path}: cannot read {exc.filename}: {exc.strerror}") from None
    except (ChainError, ValueError) as exc:
        raise ProfileError(f"{profile.path}: {exc}") from None
    if key.public_key.to_bytes() != cert.key().to_bytes():
        raise ProfileError(f"{profile.path}: the key does not belong to the certificate")
    return NodeClient(node or profile.node, key, cert, genesis), genesis
