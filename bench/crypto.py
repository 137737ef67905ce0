"""Benchmark: Rongxin's national-crypto layer against pure-Python gmssl, in one run.

Prints a Markdown table: SM3 and SM4 throughput (MB/s), SM2 sign/s and verify/s on one
core (one signature per call, and batches in one call with ``verify_many``), SM2 verify/s
on all cores (threads, each verifying batches in one call that releases the GIL), SM2
encrypt/decrypt of 32-byte messages, and for each the gmssl figure and the ratio.
``gmalglib`` (a C extension) is added when it is installed, for the backend choice.

A second table shows what a verifying thread pays beside a thread that runs Python (a
node's event loop beside its verifying thread): CPU and wall time per signature, one per
call against batches. Each call into OpenSSL releases the GIL, and taking it back from a
busy thread waits for its switch interval.

Usage::

    .venv/bin/python bench/crypto.py [--seconds S] [--json]

Targets: SM2 verify >= 2,000/s per core, SM3 >= 300 MB/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from chain import crypto
from chain.crypto import sm4


def rate(fn: Callable[[], object], seconds: float, min_runs: int = 3) -> float:
    """Calls per second of ``fn`` over at least ``seconds`` (after one warm-up call)."""
    fn()
    runs = 0
    start = time.perf_counter()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and runs >= min_runs:
            return runs / elapsed


def throughput(fn: Callable[[bytes], object], size: int, seconds: float) -> float:
    """MB/s (10^6 bytes) of ``fn`` applied to ``size``-byte buffers."""
    data = os.urandom(size)
    return rate(lambda: fn(data), seconds) * size / 1e6


def ours(seconds: float) -> dict[str, float]:
    key = crypto.PrivateKey.generate()
    pub = key.public_key
    msg = os.urandom(100)
    sig = key.sign(msg)
    sm4_key = sm4.generate_key()
    ct = pub.encrypt(msg[:32])
    out = {
        "SM3 MB/s": throughput(crypto.sm3, 64 << 20, seconds),
        "SM4 MB/s": throughput(lambda d: sm4.seal(sm4_key, d), 64 << 20, seconds),
        "SM2 sign/s (1 core)": rate(lambda: key.sign(msg), seconds),
        "SM2 verify/s (1 core)": rate(lambda: pub.verify(msg, sig), seconds),
        "SM2 verify/s (1 core, batches of 100)": 100
        * rate(lambda: crypto.verify_many([(pub, msg, sig)] * 100), seconds),
        "SM2 encrypt/s (1 core)": rate(lambda: pub.encrypt(msg[:32]), seconds),
        "SM2 decrypt/s (1 core)": rate(lambda: key.decrypt(ct), seconds),
    }
    cores = os.cpu_count() or 1
    batch = 500

    def verify_batch() -> None:
        assert crypto.verify_many([(pub, msg, sig)] * batch) == [None] * batch

    with ThreadPoolExecutor(cores) as pool:

        def all_cores() -> None:
            list(pool.map(lambda _: verify_batch(), range(cores)))

        out[f"SM2 verify/s ({cores} cores)"] = rate(all_cores, seconds) * batch * cores
    return out


def _spin(stop: threading.Event) -> None:
    """Run Python (holding the GIL, as an event loop does) until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i


def beside_busy_thread(count: int = 200) -> list[tuple[str, float, float, float]]:
    """For one signature per call and for one batch per call: CPU µs per signature
    alone, then CPU and wall µs per signature in a thread while another thread runs
    Python."""
    keys = [crypto.PrivateKey.generate() for _ in range(8)]
    jobs = []
    for i in range(count):
        key, msg = keys[i % len(keys)], os.urandom(200)
        jobs.append((key.public_key, msg, key.sign(msg)))

    def one_by_one() -> None:
        for pub, msg, sig in jobs:
            pub.verify(msg, sig)

    def batched() -> None:
        assert crypto.verify_many(jobs) == [None] * count

    def timed(fn: Callable[[], None]) -> tuple[float, float]:
        t0, w0 = time.thread_time(), time.perf_counter()
        fn()
        return 1e6 * (time.thread_time() - t0) / count, 1e6 * (time.perf_counter() - w0) / count

    rows = []
    for name, fn in (("one signature per call", one_by_one), ("verify_many, one call per batch", batched)):
        alone = timed(fn)[0]
        stop = threading.Event()
        spinner = threading.Thread(target=_spin, args=(stop,))
        spinner.start()
        try:
            with ThreadPoolExecutor(1) as worker:
                cpu, wall = worker.submit(timed, fn).result()
        finally:
            stop.set()
            spinner.join()
        rows.append((name, alone, cpu, wall))
    return rows


def gmssl_figures(seconds: float) -> dict[str, float]:
    from gmssl import func
    from gmssl import sm2 as g2
    from gmssl import sm3 as g3
    from gmssl import sm4 as g4

    key = crypto.PrivateKey.generate()
    while key.public_key.to_bytes()[1:].hex()[0] in "04":  # gmssl's lstrip("04") bug
        key = crypto.PrivateKey.generate()
    g = g2.CryptSM2(private_key=key.to_bytes().hex(), public_key=key.public_key.to_bytes()[1:].hex(), mode=1)
    msg = os.urandom(100)
    sig = g.sign_with_sm3(msg)
    ct = g.encrypt(msg[:32])
    c4 = g4.CryptSM4()
    c4.set_key(os.urandom(16), g4.SM4_ENCRYPT)
    return {
        "SM3 MB/s": throughput(lambda d: g3.sm3_hash(func.bytes_to_list(d)), 64 << 10, seconds),
        "SM4 MB/s": throughput(lambda d: c4.crypt_cbc(b"\0" * 16, d), 64 << 10, seconds),
        "SM2 sign/s (1 core)": rate(lambda: g.sign_with_sm3(msg), seconds),
        "SM2 verify/s (1 core)": rate(lambda: g.verify_with_sm3(sig, msg), seconds),
        "SM2 encrypt/s (1 core)": rate(lambda: g.encrypt(msg[:32]), seconds),
        "SM2 decrypt/s (1 core)": rate(lambda: g.decrypt(ct), seconds),
    }


def gmalglib_figures(seconds: float) -> dict[str, float] | None:
    try:
        import gmalglib  # type: ignore[import-not-found]
    except ImportError:
        return None
    sk, pk = gmalglib.sm2_generate_keypair()
    msg = os.urandom(100)
    sig = gmalglib.sm2_sign(sk, msg)
    verifier = gmalglib.sm2.SM2(pk=pk)  # the sm2_verify wrapper drops its signature argument
    assert verifier.verify(msg, sig)
    return {
        "SM3 MB/s": throughput(gmalglib.sm3_digest, 64 << 20, seconds),
        "SM2 sign/s (1 core)": rate(lambda: gmalglib.sm2_sign(sk, msg), seconds),
        "SM2 verify/s (1 core)": rate(lambda: verifier.verify(msg, sig), seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    results = {"rongxin": ours(args.seconds), "gmssl": gmssl_figures(args.seconds)}
    extra = gmalglib_figures(args.seconds)
    if extra is not None:
        results["gmalglib"] = extra
    if args.json:
        print(json.dumps(results, indent=2))
        return

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    cols = ["rongxin", "gmssl", "ratio vs gmssl"] + (["gmalglib"] if extra else [])
    print("| measure | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, value in results["rongxin"].items():
        ref = results["gmssl"].get(name)
        row = [f"{value:,.0f}" if value >= 10 else f"{value:.2f}"]
        row.append("—" if ref is None else (f"{ref:,.0f}" if ref >= 10 else f"{ref:.2f}"))
        row.append("—" if ref is None else f"{value / ref:,.0f}×")
        if extra:
            x = extra.get(name)
            row.append("—" if x is None else f"{x:,.0f}")
        print(f"| {name} | " + " | ".join(row) + " |")
    verify = results["rongxin"]["SM2 verify/s (1 core)"]
    sm3_speed = results["rongxin"]["SM3 MB/s"]
    print()
    print(
        f"target SM2 verify >= 2,000/s per core: {'met' if verify >= 2000 else 'NOT met'} ({verify:,.0f}/s)"
    )
    print(f"target SM3 >= 300 MB/s: {'met' if sm3_speed >= 300 else 'NOT met'} ({sm3_speed:,.0f} MB/s)")
    print()
    print("SM2 verification in a thread beside a thread that runs Python (µs per signature):")
    print("| way | CPU alone | CPU beside it | wall beside it |")
    print("|---|---:|---:|---:|")
    for name, alone, cpu, wall in beside_busy_thread():
        print(f"| {name} | {alone:,.0f} | {cpu:,.0f} | {wall:,.0f} |")


if __name__ == "__main__":
    main()
