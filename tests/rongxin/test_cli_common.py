"""The toolkit every ``rongxin`` command shares (rongxin.cli_common)."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rongxin import cli_common
from rongxin.cli_common import (
    MIN_PASSWORD_LENGTH,
    PASSWORD_ENV,
    fail,
    new_password,
    overwrite_guard,
    password,
    write_output,
)

runner = CliRunner()


def _run(fn) -> tuple[int, str]:
    """Run ``fn`` as a command; its exit code and stderr (line wrapping undone)."""
    app = typer.Typer()
    app.command()(fn)
    app.command("unused")(lambda: None)
    result = runner.invoke(app, [fn.__name__])
    return result.exit_code, " ".join(result.stderr.split())


def test_fail_prints_to_stderr_and_returns_the_exit() -> None:
    def boom() -> None:
        raise fail("the library is locked", code=3)

    code, err = _run(boom)
    assert (code, err) == (3, "error: the library is locked")


def test_password_from_file_env_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pw = tmp_path / "pw"
    pw.write_text("from-file\n\n")
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert password(pw) == "from-file"
    assert password(None) == "from-env"
    monkeypatch.delenv(PASSWORD_ENV)
    monkeypatch.setattr(
        typer, "prompt", lambda text, **kw: f"typed for {text!r} confirm={kw['confirmation_prompt']}"
    )
    assert password(None, confirm=True, prompt="Paillier key password") == (
        "typed for 'Paillier key password' confirm=True"
    )

    def unreadable() -> None:
        password(tmp_path / "missing")

    code, err = _run(unreadable)
    assert code == 1 and "cannot read password file" in err and "missing" in err


def test_overwrite_guard(tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"x")
    os.link(src, tmp_path / "hard.bin")
    overwrite_guard(tmp_path / "new.bin", force=False, inputs=[src])
    overwrite_guard(tmp_path / "other.bin", force=True)
    for out, force, message in (
        (src, False, "is also an input"),
        (src, True, "is also an input"),
        (tmp_path / "hard.bin", True, "is also an input"),
        (tmp_path / "hard.bin", False, "is also an input"),
    ):
        code, err = _run(lambda out=out, force=force: overwrite_guard(out, force, inputs=[src]))
        assert code == 1 and message in err
    code, err = _run(lambda: overwrite_guard(src, False))
    assert code == 1 and "exists; pass --force" in err


def test_write_output_is_atomic_and_refuses_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out.cbor"
    write_output(out, b"one", force=False, mode=0o644)
    assert out.read_bytes() == b"one" and stat.S_IMODE(out.stat().st_mode) == 0o644
    code, err = _run(lambda: write_output(out, b"two", force=False))
    assert code == 1 and "exists; pass --force" in err and out.read_bytes() == b"one"
    write_output(out, b"two", force=True)
    assert out.read_bytes() == b"two" and stat.S_IMODE(out.stat().st_mode) == 0o600
    code, err = _run(lambda: write_output(tmp_path / "no-dir" / "x", b"", force=True))
    assert code == 1 and "cannot write" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.cbor"]


@pytest.mark.parametrize(
    "module", ["cli_zkp", "cli_query", "cli_ledger", "cli_works", "cli_datasets", "cli_exchange"]
)
def test_each_command_module_imports_alone(module: str) -> None:
    """No import cycle: a sub-command module never needs rongxin.cli."""
    code = f"import sys, rongxin.{module}; assert 'rongxin.cli' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_the_cli_modules_share_one_toolkit() -> None:
    from rongxin import cli, cli_datasets, cli_ledger, cli_query, cli_works, cli_zkp

    for module in (cli, cli_datasets, cli_ledger, cli_query, cli_works, cli_zkp):
        assert module.console is cli_common.console, module.__name__


def test_fail_prints_user_text_as_it_is_and_json_on_request() -> None:
    def marked() -> None:
        raise fail("cannot read photo[red].txt nor a[/x]b: [bold]no")

    code, err = _run(marked)
    assert (code, err) == (1, "error: cannot read photo[red].txt nor a[/x]b: [bold]no")

    app = typer.Typer()

    @app.command()
    def as_json() -> None:
        raise fail("bad [red] input", code=2, as_json=True, reason="input")

    app.command("unused")(lambda: None)
    result = runner.invoke(app, ["as-json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": "bad [red] input", "reason": "input"}


def test_new_password_has_a_minimum_length(tmp_path: Path) -> None:
    short, long = tmp_path / "short", tmp_path / "long"
    short.write_text("seven77\n")
    long.write_text("eight888\n")
    assert new_password(long) == "eight888" and password(short) == "seven77"

    def newkey() -> None:
        new_password(short)

    code, err = _run(newkey)
    assert code == 1 and f"at least {MIN_PASSWORD_LENGTH} characters" in err
