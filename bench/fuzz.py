"""Benchmark: coverage-guided fuzzing of every decoder that takes bytes from outside.

Usage: ``.venv/bin/python bench/fuzz.py [--quick] [--seconds S] [--targets a,b] [--engine E]``.

Each decoder of ``tests/fuzz/targets.py`` runs in its own process for ``S`` seconds (1 s
with ``--quick``, about a minute in all with start-up; 20 s otherwise, about 8 minutes)
under atheris, libFuzzer's coverage-guided engine for Python (``--engine atheris``, the
default when it is installed), or a seeded mutation loop (``--engine mutation``). Every input is
checked with the same invariants as the unit tests: only the package's error root
escapes, an accepted input re-encodes to itself, and a call takes at most a fixed
allowance plus 2 µs per byte. Half of atheris's inputs go to the decoder as they are,
half steer the structure-aware mutator (``tests/fuzz/mutate.py``) through the valid seeds.

Prints one row per decoder: inputs tried, crashes (an exception other than the error root
or a failed round trip), inputs over the time budget, the slowest input in µs per KB (sizes
below 1 KB count as 1 KB) and the slowest input overall. Crashing inputs are written to
``--crash-dir`` (default ``bench/fuzz-crashes``) for replay.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None


class _ByteChooser:
    """Choices read from fuzzer bytes (zeros once they run out), so coverage feedback steers
    the structure-aware mutator."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def choose(self, n: int) -> int:
        if n <= 1:
            return 0
        chunk = self.data[self.pos : self.pos + 2]
        self.pos += 2
        return int.from_bytes(chunk or b"\x00", "big") % n


class _Stats:
    def __init__(self, name: str, path: Path, crash_dir: Path) -> None:
        self.name, self.path, self.crash_dir = name, path, crash_dir
        self.inputs = self.crashes = self.slow = 0
        self.worst_rate = 0.0  # µs per KB
        self.worst_rate_size = 0
        self.worst_us = 0.0
        self.worst_size = 0
        self.first_crash = ""
        self._written = 0.0

    def record(self, data: bytes, seconds: float) -> None:
        self.inputs += 1
        us = seconds * 1e6
        rate = us / max(len(data), 1024) * 1024
        if rate > self.worst_rate:
            self.worst_rate, self.worst_rate_size = rate, len(data)
        if us > self.worst_us:
            self.worst_us, self.worst_size = us, len(data)

    def crash(self, data: bytes, message: str, slow: bool) -> None:
        if slow:
            self.slow += 1
        else:
            self.crashes += 1
            self.first_crash = self.first_crash or message[:300]
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        kind = "slow" if slow else "crash"
        (self.crash_dir / f"{self.name}-{kind}-{self.inputs}.bin").write_bytes(data)
        self.write(force=True)

    def write(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._written > 0.2:
            self._written = now
            doc = {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "path"}
            doc["crash_dir"] = str(self.crash_dir)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.path)


def _worker(name: str, engine: str, seconds: float, stats_path: Path, crash_dir: Path, seed: int) -> None:
    if engine == "atheris":
        # Third-party libraries first, uninstrumented: coverage feedback is for our code,
        # and instrumenting numpy or Pillow would only slow the start.
        for module in ("numpy", "PIL.Image", "cbor2", "cryptography", "coincurve", "scipy", "cv2"):
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
        with atheris.instrument_imports():
            from tests.fuzz import mutate as mutate_module
            from tests.fuzz import targets as targets_module
    else:
        from tests.fuzz import mutate as mutate_module
        from tests.fuzz import targets as targets_module
    target = targets_module.targets()[name]
    seeds = target.seeds()
    for s in seeds:
        if not targets_module.check(target, s).accepted:
            raise SystemExit(f"{name}: a seed input is refused")
    stats = _Stats(name, stats_path, crash_dir)

    def one(data: bytes) -> None:
        start = time.perf_counter()
        try:
            targets_module.check(target, data)
        except targets_module.TooSlow as exc:
            stats.crash(data, str(exc), slow=True)
        except targets_module.Crash as exc:
            stats.crash(data, str(exc), slow=False)
        stats.record(data, time.perf_counter() - start)
        stats.write()

    if engine == "atheris":

        def test_one_input(raw: bytes) -> None:
            if raw[:1] and raw[0] & 1:
                data = raw[1:]
            else:
                data = mutate_module.mutate(_ByteChooser(raw[1:]), seeds, target.cbor)
            one(data)

        corpus = stats_path.parent / "corpus"  # removed by the parent with the stats
        corpus.mkdir(exist_ok=True)
        for i, s in enumerate(seeds):
            (corpus / f"seed-{i}").write_bytes(b"\x01" + s)
        max_len = max(4096, 2 * max(len(s) for s in seeds) + 1)
        args = [
            sys.argv[0],
            f"-max_total_time={int(seconds)}",
            f"-max_len={max_len}",
            f"-seed={seed}",
            "-rss_limit_mb=3072",
            "-timeout=30",
            "-print_final_stats=0",
            str(corpus),
        ]
        atheris.Setup(args, test_one_input)
        atheris.Fuzz()
    else:
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            one(mutate_module.mutate(mutate_module.RandomChooser(seed * 1_000_003 + i), seeds, target.cbor))
            i += 1
    stats.write(force=True)


def _run(name: str, engine: str, seconds: float, crash_dir: Path, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rx-fuzz-") as tmp:
        stats_path = Path(tmp) / "stats.json"
        log = Path(tmp) / "log.txt"
        cmd = [sys.executable, __file__, "--worker", name, "--engine", engine, "--seconds", str(seconds)]
        cmd += ["--stats", str(stats_path), "--crash-dir", str(crash_dir), "--seed", str(seed)]
        with log.open("wb") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=_ROOT, timeout=seconds + 300)
        if not stats_path.exists():
            tail = log.read_text(errors="replace")[-2000:]
            return {"name": name, "error": f"worker exited with {proc.returncode}: {tail}"}
        doc: dict[str, Any] = json.loads(stats_path.read_text())
        doc["returncode"] = proc.returncode
        return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s per decoder, about a minute in all")
    parser.add_argument("--seconds", type=float, help="seconds per decoder (default 20, quick 1)")
    parser.add_argument("--targets", help="comma-separated decoder names (default: all)")
    parser.add_argument(
        "--engine", choices=["atheris", "mutation"], default="atheris" if atheris else "mutation"
    )
    parser.add_argument("--crash-dir", type=Path, default=_HERE / "fuzz-crashes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.engine == "atheris" and atheris is None:
        parser.error("atheris is not installed; use --engine mutation")
    seconds = opts.seconds or (1.0 if opts.quick else 20.0)
    if opts.worker:
        _worker(opts.worker, opts.engine, seconds, opts.stats, opts.crash_dir, opts.seed)
        return

    from tests.fuzz.targets import targets

    names = opts.targets.split(",") if opts.targets else list(targets())
    print(f"# {platform.platform()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"# engine {opts.engine}, {seconds:g} s per decoder, seed {opts.seed}")
    header = "| decoder | inputs | crashes | over budget | slowest µs/KB | slowest input |"
    print(header)
    print("|" + "---|" * 6)
    failed = False
    for name in names:
        s = _run(name, opts.engine, seconds, opts.crash_dir, opts.seed)
        if "error" in s:
            print(f"| {name} | worker failed: {s['error'][-200:]!r} | | | | |")
            failed = True
            continue
        failed |= bool(s["crashes"])
        print(
            f"| {name} | {s['inputs']:,} | {s['crashes']} | {s['slow']} | "
            f"{s['worst_rate']:,.0f} ({s['worst_rate_size']:,} B) | "
            f"{s['worst_us'] / 1000:,.1f} ms ({s['worst_size']:,} B) |",
            flush=True,
        )
        if s["first_crash"]:
            print(f"#   first crash: {s['first_crash']}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
