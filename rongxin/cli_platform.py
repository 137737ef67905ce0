"""``rongxin platform …``: what a platform user does from a terminal.

* ``sign-challenge [FILE] --key KEYFILE`` — sign the member platform's sign-in challenge
  (read from ``FILE``, or standard input) with the user's encrypted SM2 key file
  (``chain.crypto.keyfile``); prints the signature (hex ``r‖s``) to paste into the
  sign-in page. The challenge's site, user and expiry are shown on standard error first,
  so the user sees which site asked.

Mounted by ``rongxin.cli`` as ``app.add_typer(cli_platform.app, name="platform")``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from chain.crypto import load_private_key
from chain.crypto.errors import CryptoError
from rongxin.cli_common import PasswordFile, err_console, fail, password
from rongxin.platform.sm2login import HEADER, sign_challenge

app = typer.Typer(help="Member platform tools: sign an SM2 sign-in challenge.", no_args_is_help=True)
MAX_CHALLENGE = 4096


@app.command("sign-challenge")
def sign_challenge_cmd(
    key: Annotated[Path, typer.Option("--key", help="Your SM2 key file.", metavar="KEYFILE")],
    challenge: Annotated[
        Path | None, typer.Argument(help="File holding the challenge text (default: standard input).")
    ] = None,
    password_file: PasswordFile = None,
) -> None:
    """Sign the platform's sign-in challenge with your SM2 key file; print the signature."""
    try:
        raw = (
            challenge.read_bytes()[: MAX_CHALLENGE + 1]
            if challenge
            else sys.stdin.buffer.read(MAX_CHALLENGE + 1)
        )
    except OSError as exc:
        raise fail(f"cannot read {challenge}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8").replace("\r\n", "\n").strip("\n")
    except UnicodeDecodeError:
        raise fail("the challenge is not UTF-8 text; copy it from the sign-in page") from None
    if len(raw) > MAX_CHALLENGE or not text.startswith(HEADER + "\n"):
        raise fail(f"this is not a platform sign-in challenge (it starts with {HEADER!r})")
    fields = dict(line.split(": ", 1) for line in text.splitlines()[1:] if ": " in line)
    err_console.print(
        f"signing in as {fields.get('user', '?')} at {fields.get('origin', '?')} "
        f"(expires {fields.get('expires', '?')})",
        markup=False,
    )
    try:
        private = load_private_key(key, password(password_file))
    except (OSError, CryptoError) as exc:
        raise fail(f"cannot open the key file {key}: {exc}") from None
    typer.echo(sign_challenge(private, text))
