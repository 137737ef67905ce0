"""What every ``rongxin`` command shares: consoles, errors, passwords and safe output files.

Each ``rongxin/cli*.py`` module imports from here and none imports another, so any of them
can be imported (and tested) alone; :mod:`rongxin.cli` mounts the others.

* :data:`console` (stdout) and :data:`err_console` (stderr, errors and progress bars);
* :func:`fail` — print ``error: …`` to stderr (or, for a command asked for JSON, an error
  object on stdout) and return the :class:`typer.Exit` to raise; messages are printed as
  text, never read as Rich markup, so file names and exception texts show as they are;
* :func:`password` — a key password from ``--password-file``, else ``$RONGXIN_KEY_PASSWORD``,
  else a hidden prompt; :func:`new_password` the same for a new key file, refusing one
  shorter than :data:`MIN_PASSWORD_LENGTH`; :data:`PasswordFile` is the matching option;
* :func:`overwrite_guard` and :func:`write_output` — refuse to replace an existing file
  without ``--force`` (and an input file always), then write atomically
  (:func:`chain.crypto.atomic_write`);
* :func:`member_client` — the node client of a member's client profile (``--client``),
  for every command that talks to the member's node.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from chain.crypto import atomic_write
from chain.errors import ChainError
from chain.replica import chain_genesis_block
from chain.store import LedgerStore
from chain.types import Genesis

if TYPE_CHECKING:
    from chain.client.http import NodeClient
    from rongxin.client_profile import ClientProfile

console = Console()
err_console = Console(stderr=True)
PASSWORD_ENV = "RONGXIN_KEY_PASSWORD"
"""Environment variable holding the key password when no ``--password-file`` is given."""
MIN_PASSWORD_LENGTH = 8
"""Fewest characters of the password of a new key file (existing files open with any)."""

PasswordFile = Annotated[
    Path | None,
    typer.Option(
        help=f"Read the key password from this file (else ${PASSWORD_ENV}, else a prompt).", metavar="FILE"
    ),
]
Force = Annotated[bool, typer.Option(help="Overwrite an existing output file.")]


def fail(message: str, code: int = 1, *, as_json: bool = False, reason: str | None = None) -> typer.Exit:
    """Print ``error: message`` to stderr; return the exit to raise.

    ``message`` is plain text (a file name such as ``photo[red].txt`` prints as it is).
    With ``as_json`` (a command run with ``--json`` / ``--format json``) the error is the
    object ``{"error": message, "reason": reason}`` on stdout instead; the exit code is the
    same either way.

    Examples
    --------
    >>> exc = fail("no such work")
    >>> exc.exit_code
    1
    >>> fail("bad input", as_json=True, reason="format").exit_code
    {"error": "bad input", "reason": "format"}
    1
    """
    if as_json:
        typer.echo(json.dumps({"error": message, "reason": reason}, ensure_ascii=False))
    else:
        err_console.print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(code)


def password(password_file: Path | None, confirm: bool = False, prompt: str = "Key password") -> str:
    """The key password: first line of ``password_file``, else ``$RONGXIN_KEY_PASSWORD``, else a prompt.

    ``confirm`` asks twice at the prompt (for a new key). A password file that cannot be
    read is a :func:`fail`. The password is never printed.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "pw"
    >>> _ = f.write_text("s3cret\\n")
    >>> password(f)
    's3cret'
    """
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise fail(f"cannot read password file {password_file}: {exc.strerror}") from None
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def new_password(password_file: Path | None, prompt: str = "Key password") -> str:
    """The password of a new key file (:func:`password`, asked twice at a prompt).

    One shorter than :data:`MIN_PASSWORD_LENGTH` characters is refused (:func:`fail`).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "pw"
    >>> _ = f.write_text("correct horse\\n")
    >>> new_password(f)
    'correct horse'
    """
    secret = password(password_file, confirm=True, prompt=prompt)
    if len(secret) < MIN_PASSWORD_LENGTH:
        raise fail(
            f"the password of a new key file needs at least {MIN_PASSWORD_LENGTH} characters "
            f"(this one has {len(secret)})"
        )
    return secret


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def overwrite_guard(out: Path, force: bool, *, inputs: Iterable[Path] = ()) -> None:
    """Refuse (:func:`fail`) an output that is one of ``inputs`` (always), or exists without ``force``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> overwrite_guard(d / "new.bin", force=False)
    >>> _ = (d / "in.bin").write_bytes(b"x")
    >>> overwrite_guard(d / "in.bin", force=True, inputs=[d / "in.bin"])
    Traceback (most recent call last):
    ...
    typer.exceptions.Exit: 1
    """
    for source in inputs:
        if out.exists() and _same_file(out, source):
            raise fail(f"{out} is also an input; write the output to another file")
    if not force and (out.exists() or out.is_symlink()):
        raise fail(f"{out} exists; pass --force to overwrite it")


def write_output(out: Path, data: bytes, *, force: bool, mode: int = 0o600) -> None:
    """Write ``data`` to ``out`` atomically with ``mode``; without ``force`` an existing ``out`` is refused.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "checkpoint.cbor"
    >>> write_output(out, b"cbor", force=False, mode=0o644)
    >>> out.read_bytes()
    b'cbor'
    """
    try:
        atomic_write(out, data, mode, overwrite=force)
    except FileExistsError:
        raise fail(f"{out} exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror}") from None


__all__ = [
    "MIN_PASSWORD_LENGTH",
    "PASSWORD_ENV",
    "Force",
    "PasswordFile",
    "console",
    "err_console",
    "fail",
    "new_password",
    "overwrite_guard",
    "password",
    "write_output",
]


def read_file(path: Path) -> bytes:
    """The bytes of ``path``, or a one-line error naming it (never its contents)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None


@contextmanager
def open_ledger(db: Path, genesis: Path) -> Iterator[tuple[LedgerStore, Genesis]]:
    """A node's ledger store and the chain's genesis, the store closed after use.

    The store is opened for the chain of ``genesis`` (stores are labelled with the hash of
    the chain's first block); a missing store is refused, never created, and an unreadable
    or foreign genesis is a one-line error.
    """
    if not db.is_file():
        raise fail(f"no ledger store at {db}")
    try:
        g = Genesis.from_bytes(genesis.read_bytes())
        store = LedgerStore(db, chain_genesis_block(g).hash)
    except OSError as exc:
        raise fail(f"cannot read {exc.filename}: {exc.strerror}") from None
    except ChainError as exc:
        raise fail(str(exc)) from None
    try:
        yield store, g
    finally:
        store.close()


def member_client(
    client: Path | None,
    node: str | None = None,
    password_file: Path | None = None,
    *,
    as_json: bool = False,
) -> tuple[NodeClient, Genesis, ClientProfile]:
    """Open the node client of the member that a client profile names.

    Parameters
    ----------
    client
        The profile file (``--client``); ``None`` looks in the usual places
        (:func:`rongxin.client_profile.find_profile`).
    node
        Another node URL than the profile's.
    password_file
        The key password (else the profile's password source, else a prompt).
    as_json
        Report a bad profile as a JSON error object.

    Returns
    -------
    tuple
        ``(client, genesis, profile)``; close the client when done.
    """
    from rongxin.client_profile import ProfileError, find_profile, load_profile, open_client, profile_password

    try:
        profile = load_profile(find_profile(client))
        pw = password(password_file) if password_file is not None else profile_password(profile)
        if pw is None:
            pw = password(None, prompt=f"Password of {profile.key_file.name}")
        cli, genesis = open_client(profile, pw, node)
    except ProfileError as exc:
        raise fail(str(exc), as_json=as_json, reason="client") from None
    return cli, genesis, profile
