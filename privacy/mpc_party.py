"""One agency's MPC party process: ``python -m privacy.mpc_party JOB.json``.

Started by :func:`privacy.mpc.run`. It reads only its own agency's data source, derives
the fixed-shape inputs of the plan, runs the ``mpyc`` program with the other parties over
TCP and prints one JSON line with its *share* of the outputs for the regulator.

``mpyc.runtime`` parses ``sys.argv`` when imported, so it is imported inside :func:`main`
only (importing this module for its docs has no side effect).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from privacy.catalog import Catalog
from privacy.connectors import from_config
from privacy.errors import PrivacyError
from privacy.local import RankCounter, key_indicator, key_totals, load, order_counter, order_histogram
from privacy.mpc import MEDIAN_TARGETS, MpcPlan
from privacy.pg import PostgreSQLConnector
from privacy.spec import QuerySpec

DIGIT_BITS = 5
SEARCH_DIGIT_BITS = 2


def local_inputs(doc: dict[str, Any]) -> tuple[MpcPlan, list[Any]]:
    """The agency's plaintext inputs for the plan (never sent: they are secret-shared)."""
    spec = QuerySpec.from_dict(doc["spec"])
    catalog = Catalog.from_dict(doc["catalog"])
    mpc_plan = MpcPlan.from_dict(doc["plan"])
    job = doc["job"]
    if mpc_plan.min_group < int(job["min_group_size"]):
        raise PrivacyError(
            f"the plan's minimum group size {mpc_plan.min_group} is below this agency's "
            f"{job['min_group_size']}; refusing"
        )
    connector = from_config(job["source"], catalog, Path(job["base"]))
    if mpc_plan.kind == "order" and mpc_plan.method == "search":
        if isinstance(connector, PostgreSQLConnector):  # counted in the database
            return mpc_plan, [connector.order_counter(spec, catalog, mpc_plan.bits, mpc_plan.width)]
        frame = load(connector, catalog, spec)
        return mpc_plan, [order_counter(spec, catalog, frame, mpc_plan.bits, mpc_plan.width)]
    frame = load(connector, catalog, spec)
    if mpc_plan.kind == "order":
        return mpc_plan, [order_histogram(spec, catalog, frame, mpc_plan.bits, mpc_plan.width)]
    if mpc_plan.kind == "topk":
        totals, counts = key_totals(spec, catalog, frame)
        return mpc_plan, [totals, counts]
    return mpc_plan, [key_indicator(spec, catalog, frame)]


async def _program(mpc: Any, mpc_plan: MpcPlan, inputs: list[Any]) -> tuple[int, list[int]]:
    secint = mpc.SecInt(mpc_plan.secint_bits)
    parties = list(range(len(mpc.parties)))

    def shared_sum(arr: np.ndarray) -> Any:
        shares = mpc.input(secint.array(np.asarray(arr, dtype=object)), senders=parties)
        total = shares[0]
        for s in shares[1:]:
            total = total + s
        return total

    if mpc_plan.kind == "order" and mpc_plan.method == "search":
        outs = await _order_search(mpc, secint, mpc_plan, inputs[0], shared_sum)
    elif mpc_plan.kind == "order":
        outs = _order(mpc, secint, mpc_plan, shared_sum(inputs[0]))
    elif mpc_plan.kind == "topk":
        outs = _topk(mpc, secint, mpc_plan, shared_sum(inputs[0]), shared_sum(inputs[1]))
    else:
        shares = mpc.input(secint.array(np.asarray(inputs[0], dtype=object)), senders=parties)
        prod = shares[0]
        for s in shares[1:]:
            prod = prod * s
        size = prod.sum()
        flag = size >= mpc_plan.min_group
        outs = [flag, size * flag]
    vec = _flatten(secint, outs)
    one = mpc.input(secint(1), senders=0)
    vec = vec * one
    share = await mpc.gather(vec)
    return int(secint.field.modulus), [int(v) for v in np.asarray(share.value).reshape(-1)]


def _flatten(secint: Any, outs: list[Any]) -> Any:
    parts = []
    for o in outs:
        if hasattr(o, "shape") and hasattr(o, "reshape"):
            parts.append(o.reshape(-1))
        else:
            parts.append(secint.array(np.zeros(1, dtype=object)) + o)
    return np.concatenate(parts)


def _first_true(mpc: Any, secint: Any, s: Any) -> Any:
    """One-hot of the first 1 in each row of a monotone 0/1 matrix."""
    zeros = secint.array(np.zeros((s.shape[0], 1), dtype=object))
    return s - np.concatenate((zeros, s[:, :-1]), axis=1)


def _order(mpc: Any, secint: Any, p: MpcPlan, hist: Any) -> list[Any]:
    """Find every target bin digit by digit (DIGIT_BITS per level, most significant first)."""
    g, t_count = p.groups, len(p.targets)
    n = hist.sum(axis=1)  # (G,)
    rows = t_count * g
    x = np.concatenate([hist] * t_count)  # (T*G, 2**bits): one copy per target (local, free)
    thr = np.concatenate([n * b + c for _, b, c in p.targets]).reshape(rows, 1)
    alpha = np.array([[a] for a, _, _ in p.targets for _ in range(g)], dtype=object)
    prev = secint.array(np.zeros((rows, 1), dtype=object))
    bins = secint.array(np.zeros(rows, dtype=object))
    remaining = p.bits
    while remaining > 0:
        d = min(DIGIT_BITS, remaining)
        remaining -= d
        cube = x.reshape(rows, 1 << d, 1 << remaining)
        coarse = cube.sum(axis=2)  # (rows, 2**d)
        cum = np.cumsum(coarse, axis=1) + prev
        e = _first_true(mpc, secint, cum * alpha >= thr)
        prev = (e * (cum - coarse)).sum(axis=1).reshape(rows, 1)
        bins = bins * (1 << d) + e @ np.arange(1 << d, dtype=object)
        if remaining:
            x = np.concatenate([e[i : i + 1, :] @ cube[i] for i in range(rows)])
    by_target = bins.reshape(t_count, g)
    values = by_target[0] + by_target[1] if p.targets == MEDIAN_TARGETS else by_target
    flag = n >= p.min_group
    return [flag, values * flag]


async def _order_search(
    mpc: Any, secint: Any, p: MpcPlan, counter: RankCounter, shared_sum: Callable[[np.ndarray], Any]
) -> list[Any]:
    """Find every target bin by a secure search over the bins (Aggarwal, Mishra, Pinkas 2004).

    The group totals are shared and compared with the minimum group size; those flags are
    opened (the output carries them anyway) and suppressed groups are not searched. Then,
    ``SEARCH_DIGIT_BITS`` bits per step, most significant first, each party shares its
    counts of rows at or below the ``2**d - 1`` public candidate bins that split the
    current interval; the parties compare ``alpha * total >= beta * n + gamma`` under MPC
    and open how many candidates qualify, which is the next digit of the smallest
    qualifying bin. Only these digits — fixed by the answer — are opened.
    """
    n = shared_sum(counter.totals())  # (G,)
    flags = [int(f) for f in np.asarray(await mpc.output(n >= p.min_group)).reshape(-1)]
    active = np.array([g for g in range(p.groups) if flags[g]], dtype=np.int64)
    t_count = len(p.targets)
    rows = t_count * len(active)
    base = np.zeros(rows, dtype=np.int64)
    if rows:
        row_groups = np.tile(active, t_count)
        n_active = n[active]
        thr = np.concatenate([n_active * b + c for _, b, c in p.targets]).reshape(rows, 1)
        alpha = np.array([[a] for a, _, _ in p.targets for _ in active], dtype=object)
        remaining = p.bits
        while remaining > 0:
            d = min(SEARCH_DIGIT_BITS, remaining)
            remaining -= d
            steps = np.arange(1, 1 << d, dtype=np.int64) << remaining  # (2**d - 1,)
            candidates = base[:, None] + steps[None, :] - 1  # last bin of each lower part
            local = counter.at_most(np.repeat(row_groups, len(steps)), candidates.reshape(-1))
            total = shared_sum(np.asarray(local.reshape(rows, len(steps)), dtype=object))
            qualifying = (total * alpha >= thr).sum(axis=1)
            opened = np.asarray(await mpc.output(qualifying), dtype=np.int64).reshape(-1)
            base = base + (((1 << d) - 1 - opened) << remaining)
    bins = np.zeros((t_count, p.groups), dtype=object)
    if rows:
        bins[:, active] = base.reshape(t_count, len(active))
    values = bins[0] + bins[1] if p.targets == MEDIAN_TARGETS else bins.reshape(-1)
    public = np.concatenate([np.array(flags, dtype=object), np.asarray(values, dtype=object).reshape(-1)])
    return [secint.array(public)]


def _topk(mpc: Any, secint: Any, p: MpcPlan, totals: Any, counts: Any) -> list[Any]:
    ok = counts >= p.min_group
    v = totals * ok + ok - 1  # suppressed keys become -1
    idx = np.arange(p.keys, dtype=object)
    out_idx, out_val = [], []
    for _ in range(p.k):
        u, top = mpc.np_argmax(v, arg_unary=True, arg_only=False)
        out_idx.append(u @ idx)
        out_val.append(top)
        v = v - u * (v + 2)
    return [mpc.np_fromlist(out_idx), mpc.np_fromlist(out_val)]


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one party and print its output shares as JSON."""
    args = sys.argv[1:] if argv is None else argv
    doc = json.loads(Path(args[0]).read_text())
    t0 = time.perf_counter()
    try:
        mpc_plan, inputs = local_inputs(doc)
    except PrivacyError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 3
    peers = doc["peers"]
    sys.argv = [
        sys.argv[0],
        *[arg for p in peers for arg in ("-P", p)],
        "-I",
        str(doc["index"]),
        "--no-log",
        *args[1:],
    ]
    if "--ssl" in args[1:]:
        from privacy.mpc_tls import pin_contexts_only

        pin_contexts_only()
    t_loaded = time.perf_counter()
    from mpyc.runtime import mpc

    stamps: dict[str, float] = {}

    async def session() -> tuple[int, list[int], int]:
        stamps["import"] = time.perf_counter()
        await mpc.start()
        stamps["connected"] = time.perf_counter()
        modulus, shares = await _program(mpc, mpc_plan, inputs)
        stamps["computed"] = time.perf_counter()
        sent = sum(
            int(getattr(p.protocol, "nbytes_sent", 0))
            for p in mpc.parties
            if p.pid != mpc.pid and p.protocol is not None
        )
        await mpc.shutdown()
        return modulus, shares, sent

    modulus, shares, sent = mpc.run(session())
    seconds = {  # where this party's time went (after the interpreter started)
        "load": t_loaded - t0,
        "mpyc_import": stamps["import"] - t_loaded,
        "connect": stamps["connected"] - stamps["import"],
        "compute": stamps["computed"] - stamps["connected"],
    }
    out = {"pid": doc["index"], "modulus": modulus, "shares": shares, "bytes_sent": sent, "seconds": seconds}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
