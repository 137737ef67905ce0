"""Compile the ledger's pure hot modules to C extensions with mypyc, out of the source tree.

A node spends most of its Python time in a few pure, fully typed modules (the canonical
codec, the executor, the mempool, the state and its commitment tree). mypyc, the compiler
that ships with mypy, turns them into C extensions that run the same code with native
calls and unboxed attributes. The extensions go to ``.native/`` with a manifest of the
SHA-256 of every source they were built from; ``chain._native`` loads them only while
every source still matches, so an edited module runs as Python until the next build
(``make setup`` and ``make test`` rebuild what is out of date).

Usage::

    .venv/bin/python scripts/native.py            # build if out of date
    .venv/bin/python scripts/native.py --check    # exit 1 when out of date, build nothing
    .venv/bin/python scripts/native.py --clean    # remove .native/

``RONGXIN_NATIVE=0`` in the environment makes every process run the pure Python modules.
A machine without a C compiler or Python headers keeps running Python: the build prints
why and exits 0 unless ``--strict`` is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chain import _native  # noqa: E402


def build(out: Path) -> None:
    """mypyc-compile :data:`chain._native.MODULES` into ``out`` and write its manifest."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    sources = [_native.source_of(ROOT, name) for name in _native.MODULES]
    compiled = _native.digests(ROOT)  # before compiling: an edit meanwhile makes the build stale
    work = Path(tempfile.mkdtemp(prefix="rongxin-native-"))
    here = Path.cwd()
    try:
        os.chdir(ROOT)  # mypyc names the modules by their path from here
        relative = [str(p.relative_to(ROOT)) for p in sources]
        extensions = mypycify(relative, opt_level="3", target_dir=str(work / "c"))
        dist = Distribution({"name": "rongxin-native", "ext_modules": extensions})
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib = str(work / "lib")  # type: ignore[attr-defined]
        cmd.build_temp = str(work / "tmp")  # type: ignore[attr-defined]
        cmd.parallel = os.cpu_count() or 1  # type: ignore[attr-defined]
        dist.run_command("build_ext")
        os.chdir(here)
        staged = out.with_name(out.name + ".new")
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(work / "lib", staged)
        for name in _native.LIBRARIES:
            compile_library(_native.source_of(ROOT, name), _native.extension_of(staged, name))
        _native.write_manifest(staged, compiled)
        shutil.rmtree(out, ignore_errors=True)
        staged.rename(out)
    finally:
        os.chdir(here)
        shutil.rmtree(work, ignore_errors=True)  # also when the build failed


def compile_library(source: Path, target: Path) -> None:
    """Compile one plain C source of :data:`chain._native.LIBRARIES` into a shared library
    (it links nothing: the OpenSSL functions it calls are passed in by its caller)."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [*cc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(target), str(source)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"compiling {source.name} failed: {exc.stderr.strip()}") from None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only say whether the build is current")
    p.add_argument("--clean", action="store_true", help="remove the build")
    p.add_argument("--force", action="store_true", help="build even when current")
    p.add_argument("--strict", action="store_true", help="fail when the build fails")
    args = p.parse_args()
    out = ROOT / _native.BUILD_DIR
    if args.clean:
        shutil.rmtree(out, ignore_errors=True)
        print(f"native: removed {out}")
        return 0
    reason = _native.stale_reason(out, ROOT)
    if args.check:
        print(f"native: {reason or 'current'}")
        return 1 if reason else 0
    if reason is None and not args.force:
        print(f"native: current ({len(_native.MODULES)} modules in {out.name}/)")
        return 0
    print(f"native: building ({reason or 'forced'}): {', '.join(_native.MODULES)}", flush=True)
    t0 = time.monotonic()
    try:
        build(out)
    except Exception as exc:  # a missing compiler or header: the pure modules keep working
        print(f"native: build failed, the pure Python modules will run: {exc!r:.400}", file=sys.stderr)
        return 1 if args.strict else 0
    print(f"native: built in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
