"""The mypyc build of the hot modules: served only when current, and the same results."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import chain.codec
from chain import _native
from chain.crypto import _openssl

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]

# what the check below computes, run in a child process with and without the build
PROBE = r"""
import json, random
from chain import _native, codec
from chain.errors import ChainError
from chain.state import State
from chain.state_tree import entry_bytes, verify_state_proof
rnd = random.Random(5)
entries = {b"k/" + rnd.randbytes(4): rnd.randbytes(9) for _ in range(500)}
s = State(entries)
s.apply({k: None for k in list(entries)[:50]} | {b"new": b"v"})
errors = []
for bad in ["text", b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", b"\xa2\x61b\x01\x61a\x02", 5, None]:
    try:
        codec.decode(bad)
    except ChainError as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
for args in [("k", b"v"), (b"k", 3)]:
    try:
        entry_bytes(*args)
    except ChainError as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
try:
    verify_state_proof(s.root, b"new", b"v", s.prove(b"new").to_obj())
except ChainError as exc:
    errors.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({
    "status": _native.STATUS,
    "codec_file": codec.__file__,
    "root": s.root.hex(),
    "encoded": codec.encode({"b": [1, -2, b"x", "y", None, True], "a": {"c": 2**64 - 1}}).hex(),
    "errors": errors,
}))
"""


def _probe(native: bool) -> dict[str, object]:
    env = {**os.environ, _native.ENV: "1" if native else "0"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_the_build_is_current_and_serves_the_modules() -> None:
    if os.environ.get(_native.ENV) == "0":  # this run asked for the pure modules
        assert f"python: {_native.ENV}=0" == _native.STATUS
        assert chain.codec.__file__ == str(ROOT / "chain" / "codec.py")
        return
    # make setup / make test build it; a stale or missing build here means the node runs
    # as Python, which this says rather than hides
    reason = _native.stale_reason(ROOT / _native.BUILD_DIR, ROOT)
    assert reason is None, f"{reason}: run .venv/bin/python scripts/native.py"
    assert _native.STATUS.startswith("native:")
    assert chain.codec.__file__ is not None and chain.codec.__file__.endswith(SUFFIX)
    # the C helper that verifies many SM2 signatures in one call is built and loaded
    helper = _native.library("chain.crypto._verify_many")
    assert helper is not None and helper.is_file()
    assert _openssl._MANY is not None


def test_without_the_build_no_library_is_offered() -> None:
    code = "from chain import _native; from chain.crypto import _openssl; "
    code += "print(_native.library('chain.crypto._verify_many'), _openssl._MANY)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, _native.ENV: "0"},
        check=True,
    )
    assert out.stdout.split() == ["None", "None"]


def test_compiled_and_pure_modules_give_the_same_results() -> None:
    pure, native = _probe(False), _probe(True)
    assert pure["status"] == f"python: {_native.ENV}=0"
    assert str(pure["codec_file"]).endswith("chain/codec.py")
    if os.environ.get(_native.ENV) != "0":
        assert str(native["status"]).startswith("native:")
        assert str(native["codec_file"]).endswith(SUFFIX)
    assert len(pure["errors"]) == 8  # type: ignore[arg-type]
    for key in ("root", "encoded", "errors"):
        assert native[key] == pure[key], key


def _fake_root(tmp_path: Path) -> tuple[Path, Path]:
    """A source tree with the compiled modules' sources and a build that matches them."""
    root = tmp_path / "src"
    for name in _native.MODULES + _native.LIBRARIES:
        dest = _native.source_of(root, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_native.source_of(ROOT, name), dest)
    out = root / _native.BUILD_DIR
    for name in _native.MODULES + _native.LIBRARIES:
        ext = _native.extension_of(out, name)
        ext.parent.mkdir(parents=True, exist_ok=True)
        ext.write_bytes(b"")
    (out / ("0123__mypyc" + SUFFIX)).write_bytes(b"")
    _native.write_manifest(out, _native.digests(root))
    return root, out


def test_a_matching_build_is_current(tmp_path: Path) -> None:
    root, out = _fake_root(tmp_path)
    assert _native.stale_reason(out, root) is None


def test_an_edited_source_makes_the_build_stale(tmp_path: Path) -> None:
    root, out = _fake_root(tmp_path)
    src = _native.source_of(root, "chain.state")
    src.write_text(src.read_text() + "\n# edited\n")
    assert _native.stale_reason(out, root) == "sources changed since the build"


def test_an_edited_or_missing_c_library_makes_the_build_stale(tmp_path: Path) -> None:
    root, out = _fake_root(tmp_path)
    src = _native.source_of(root, "chain.crypto._verify_many")
    assert src.suffix == ".c"
    src.write_text(src.read_text() + "\n/* edited */\n")
    assert _native.stale_reason(out, root) == "sources changed since the build"
    root, out = _fake_root(tmp_path / "again")
    _native.extension_of(out, "chain.crypto._verify_many").unlink()
    assert "incomplete" in str(_native.stale_reason(out, root))


def test_a_missing_damaged_foreign_or_incomplete_build_is_not_used(tmp_path: Path) -> None:
    root, out = _fake_root(tmp_path)
    manifest = out / _native.MANIFEST
    doc = json.loads(manifest.read_text())
    manifest.write_text("{not json")
    assert "unreadable" in str(_native.stale_reason(out, root))
    manifest.write_text(json.dumps({**doc, "interpreter": "cpython-27 .so"}))
    assert _native.stale_reason(out, root) == "the build is for another interpreter"
    manifest.write_text(json.dumps(doc))
    _native.extension_of(out, "chain.mempool").unlink()
    assert "incomplete" in str(_native.stale_reason(out, root))
    shutil.rmtree(out)
    assert str(_native.stale_reason(out, root)).startswith("no build")


def test_install_leaves_python_in_charge_when_the_build_is_stale(tmp_path: Path) -> None:
    root, _ = _fake_root(tmp_path)
    src = _native.source_of(root, "chain.codec")
    src.write_text(src.read_text() + "\n# edited\n")
    # in a child process, so that this one's import system is left alone
    code = (
        "import sys; from chain import _native; "
        "sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _native._Finder)]; "
        f"print(_native.install(__import__('pathlib').Path({str(root)!r})))"
    )
    out_text = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, _native.ENV: "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out_text.strip() == "python: sources changed since the build"
