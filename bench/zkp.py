"""Benchmark: Bulletproofs range proofs and a confidential transfer, beside dalek's figures.

Usage: ``.venv/bin/python bench/zkp.py [--repeat N]``. First a table of group-backend costs
(coincurve/libsecp256k1 against ristretto255 through the system libsodium, when present)
and of the fixed-base multi-scalar multiplication against one multiplication per term.
Then prove and verify
times (median of N runs, after a warm-up that builds the generator tables) and proof
sizes for 64-bit range proofs aggregated over m = 1, 2, 4, 8, 16, then a full transfer
with 3 royalty shares. dalek's sizes follow its format (``32·(9 + 2·log₂(64·m))`` bytes,
ristretto255); its verify time is quoted only for m = 1 (≈1 ms, the figure in its README
and in DESIGN §8); other dalek times are not quoted here, so no ratio is printed for them.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import hashlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Run as ``python bench/zkp.py``: this file's folder comes first on sys.path and its name
# would shadow the ``zkp`` package, so put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from chain import codec  # noqa: E402
from zkp.auditor import AuditorKey  # noqa: E402
from zkp.group import (  # noqa: E402
    FixedBaseTable,
    MultiExp,
    hash_to_point,
    multiexp,
    random_scalar,
    sum_points,
)
from zkp.rangeproof import RangeProof, bulletproof_gens, prove_range, verify_range  # noqa: E402
from zkp.transcript import Transcript  # noqa: E402
from zkp.transfer import (  # noqa: E402
    OwnerKey,
    OwnershipRecord,
    Transfer,
    prove_key_possession,
    prove_transfer,
    verify_transfer,
)

DALEK_VERIFY_MS = {1: 1.0}


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def _ristretto_us() -> dict[str, float]:
    """Costs of ristretto255 through the system libsodium (empty if it is not installed)."""
    name = ctypes.util.find_library("sodium")
    if name is None:
        return {}
    lib = ctypes.CDLL(name)
    if lib.sodium_init() < 0 or not hasattr(lib, "crypto_core_ristretto255_from_hash"):
        return {}
    a, b, out, scalar = (ctypes.create_string_buffer(32) for _ in range(4))
    lib.crypto_core_ristretto255_from_hash(a, hashlib.sha512(b"a").digest())
    lib.crypto_core_ristretto255_from_hash(b, hashlib.sha512(b"b").digest())
    lib.crypto_core_ristretto255_scalar_reduce(scalar, os.urandom(64))
    mul = _per_call_us(lambda: lib.crypto_scalarmult_ristretto255(out, scalar, a), 3000)
    add = _per_call_us(lambda: lib.crypto_core_ristretto255_add(out, a, b), 3000)
    return {"mul": mul, "add": add, "add_n": add, "msm_term": mul + add}


def _backend_rows() -> list[tuple[str, float, float | None]]:
    g, h = hash_to_point(b"bench", b"g"), hash_to_point(b"bench", b"h")
    s = random_scalar()
    points = [g * random_scalar() for _ in range(1000)]
    gens = [hash_to_point(b"bench", i.to_bytes(2, "big")) for i in range(128)]
    table = FixedBaseTable(gens)
    scalars = [random_scalar() for _ in gens]

    def fixed() -> object:
        acc = MultiExp()
        acc.add_fixed(table, scalars)
        return acc.result()

    ours = {
        "mul": _per_call_us(lambda: g * s, 3000),
        "add": _per_call_us(lambda: g + h, 3000),
        "add_n": _per_call_us(lambda: sum_points(points), 200) / len(points),
        "msm_term": _per_call_us(fixed, 50) / len(gens),
        "naive_term": _per_call_us(lambda: multiexp(scalars, gens), 20) / len(gens),
    }
    theirs = _ristretto_us()
    return [
        ("scalar multiplication (variable base)", ours["mul"], theirs.get("mul")),
        ("add two points", ours["add"], theirs.get("add")),
        ("add 1000 points in one call, per point", ours["add_n"], theirs.get("add_n")),
        ("MSM, 128 fixed bases, per term (tables)", ours["msm_term"], None),
        ("MSM, one multiplication per term", ours["naive_term"], theirs.get("msm_term")),
    ]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _dalek_size(m: int) -> int:
    return 32 * (9 + 2 * (64 * m).bit_length() - 2)


Row = tuple[str, float, float, int, float | None, int | None]


def _range_row(m: int, repeat: int) -> Row:
    values = [random_scalar() % (1 << 64) for _ in range(m)]
    blinds = [random_scalar() for _ in range(m)]
    proof, commitments = prove_range(values, blinds, 64, Transcript(b"bench"))
    prove_ms = _median_ms(lambda: prove_range(values, blinds, 64, Transcript(b"bench")), repeat)
    verify_ms = _median_ms(lambda: verify_range(commitments, 64, proof, Transcript(b"bench")), repeat)
    size = len(proof.encode())
    assert size == RangeProof.size(64, m)
    return (f"range 64-bit, m={m}", prove_ms, verify_ms, size, DALEK_VERIFY_MS.get(m), _dalek_size(m))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    args = parser.parse_args()
    load = os.getloadavg()
    backend = _backend_rows()
    start = time.perf_counter()
    bulletproof_gens().ensure(1024)
    setup_s = time.perf_counter() - start
    rows = [_range_row(m, args.repeat) for m in (1, 2, 4, 8, 16)]

    auditor, seller, buyer = AuditorKey.generate(), OwnerKey.generate(), OwnerKey.generate()
    work = b"\x07" * 32
    record = OwnershipRecord(work, 0, seller.public)
    pop = prove_key_possession(buyer, "bench", work)
    shares = [(b"author", 600_000), (b"studio", 300_000), (b"county-center", 100_000)]

    def make() -> Transfer:
        return prove_transfer("bench", record, seller, buyer.public, pop, auditor.public, 1_000_000, shares)

    transfer = make()
    prove_ms = _median_ms(make, args.repeat)
    verify_ms = _median_ms(lambda: verify_transfer(transfer, "bench", record, auditor.public), args.repeat)
    payload = len(codec.encode(transfer.to_payload()))
    rows.append(("transfer, 3 shares (payload)", prove_ms, verify_ms, payload, None, None))

    print(f"machine: {_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average at start: {load[0]:.2f} (the machine is shared: figures vary with it)")
    print()
    head = f"{'group operation (µs)':<42} {'secp256k1 (coincurve)':>22} {'ristretto255 (libsodium)':>25}"
    print(head)
    print("-" * len(head))
    for name, ours, theirs in backend:
        print(f"{name:<42} {ours:>22.2f} {(f'{theirs:.2f}' if theirs else '—'):>25}")
    print()
    print(
        f"generator tables (2 × 1024 generators) built once in {setup_s:.1f} s; median of {args.repeat} runs"
    )
    head = f"{'case':<30} {'prove ms':>9} {'verify ms':>10} {'bytes':>6} "
    head += f"{'dalek ms':>9} {'× dalek':>8} {'dalek B':>8}"
    print(head)
    print("-" * len(head))
    for name, p_ms, v_ms, size, d_ms, d_size in rows:
        d_ms_s = f"{d_ms:.1f}" if d_ms else "—"
        ratio = f"{v_ms / d_ms:.1f}" if d_ms else "—"
        d_size_s = str(d_size) if d_size else "—"
        print(f"{name:<30} {p_ms:>9.1f} {v_ms:>10.2f} {size:>6} {d_ms_s:>9} {ratio:>8} {d_size_s:>8}")


if __name__ == "__main__":
    main()
