"""The MPC path (``mpyc``) for order statistics, top-k and intersection size.

The agencies are the parties (at least 3), each its own process talking to the others
over TCP; the regulator runs no party. Each party secret-shares *fixed-shape* inputs
derived from its rows, so shapes reveal nothing about the data:

* **order statistics** (min, max, median, quantiles), by default a **secure search**
  over the value bins (after Aggarwal, Mishra and Pinkas, 2004): each agency keeps its
  rows in the clear and, at each step, secret-shares only its *counts* of rows at or below
  the step's public candidate bins; the parties add them, compare with the secret target
  rank and open the comparisons, which fix the next digit of the answer. They are
  determined by the answer itself, so the agencies learn the target bins (for a median
  both middle ones) and nothing else; ``ceil(bits / SEARCH_DIGIT_BITS)`` steps of
  ``2**SEARCH_DIGIT_BITS - 1`` comparisons per target and group, exact up to 2**32 bins.
  The earlier ``histogram`` method (still available: it opens nothing to the agencies,
  at the price of secret-sharing a histogram of ``2**bits`` bins per group, ``bits`` ≤ 20)
  adds the histograms, then finds each target bin five bits at a time with a secret
  one-hot selection.
* **top-k**: per-key totals and counts (keys from the catalog domain); keys under the
  minimum group size are dropped, then k rounds of secure argmax.
* **intersection size**: per-key presence indicators, multiplied across parties, summed.

Every output is multiplied by a fresh sharing of 1 (re-randomized), then each party hands
its *share* to the regulator, who alone recombines (and cross-checks two subsets of shares,
so a tampered share is detected). Semi-honest parties, honest majority (t = ⌊(m−1)/2⌋).

Examples
--------
>>> from privacy.catalog import Catalog
>>> from privacy.spec import parse_sql
>>> cat = Catalog.from_dict({"t": {"v": {"type": "int", "min": 0, "max": 999}}})
>>> p = plan(parse_sql("SELECT MEDIAN(v) FROM t"), cat, parties=3, min_group=1)
>>> p.kind, p.method, p.bits, p.width, p.targets
('order', 'search', 10, 1, ((2, 1, 0), (2, 1, 1)))
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from privacy.catalog import Catalog
from privacy.errors import MPCError, SpecError
from privacy.local import MAX_ROWS_BITS, n_groups, order_bits
from privacy.spec import QuerySpec

MIN_PARTIES = 3
INPUT_BUDGET_BITS = 20
MAX_ORDER_BITS = 20
MAX_SEARCH_BITS = 32
METHODS = ("search", "histogram")
QUANTILE_DENOMINATOR = 1000


@dataclass(frozen=True)
class MpcPlan:
    """Public parameters every party and the regulator agree on."""

    kind: str
    groups: int
    bits: int
    width: int
    targets: tuple[tuple[int, int, int], ...]
    secint_bits: int
    min_group: int
    k: int
    keys: int
    method: str = "search"

    def to_dict(self) -> dict[str, Any]:
        """Plain form for job files."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> MpcPlan:
        """Inverse of :meth:`to_dict`."""
        doc = dict(doc)
        doc["targets"] = tuple(tuple(t) for t in doc["targets"])
        return cls(**doc)

    @property
    def output_length(self) -> int:
        """Number of integers the regulator receives."""
        if self.kind == "order":
            return self.groups * (1 + self.n_outputs_per_group)
        if self.kind == "topk":
            return 2 * self.k
        return 2

    @property
    def n_outputs_per_group(self) -> int:
        """Order-statistic values per group (a median's two middle bins are output as one sum)."""
        return 1 if self.targets == MEDIAN_TARGETS else len(self.targets)


MEDIAN_TARGETS = ((2, 1, 0), (2, 1, 1))


def targets_for(spec: QuerySpec) -> tuple[tuple[int, int, int], ...]:
    """Conditions ``alpha * count(v <= x) >= beta * n + gamma`` whose smallest x is the answer."""
    if spec.aggregate == "min":
        return ((1, 0, 1),)
    if spec.aggregate == "max":
        return ((1, 1, 0),)
    if spec.aggregate == "median":
        return MEDIAN_TARGETS
    assert spec.quantiles is not None
    out = []
    for q in spec.quantiles:
        num = round(q * QUANTILE_DENOMINATOR)
        if abs(num - q * QUANTILE_DENOMINATOR) > 1e-6:
            raise SpecError(f"quantile {q} has more than 3 decimals; the MPC path supports steps of 0.001")
        out.append((QUANTILE_DENOMINATOR, num, 0))
    return tuple(out)


def plan(spec: QuerySpec, catalog: Catalog, parties: int, min_group: int, method: str = "search") -> MpcPlan:
    """The public plan for ``spec`` with ``parties`` agencies.

    ``method`` picks how order statistics are found: ``"search"`` (the agencies learn the
    answer's bins, cheap) or ``"histogram"`` (the agencies learn nothing, costly); other
    aggregates ignore it.
    """
    if method not in METHODS:
        raise SpecError(f"unknown MPC method {method!r}; expected one of {list(METHODS)}")
    if parties < MIN_PARTIES:
        raise SpecError(
            f"the MPC path needs at least {MIN_PARTIES} agencies (honest majority); {parties} selected"
        )
    spec.validate(catalog)
    rows_bits = MAX_ROWS_BITS + max(1, (parties - 1).bit_length())
    if spec.aggregate in ("min", "max", "median", "quantile"):
        g = n_groups(spec, catalog)
        col = catalog.column(spec.table, spec.column or "")
        if method == "search":
            max_bits = MAX_SEARCH_BITS
        else:
            max_bits = max(2, min(MAX_ORDER_BITS, INPUT_BUDGET_BITS - max(0, (g - 1).bit_length())))
        bits, width = order_bits(col, max_bits)
        targets = targets_for(spec)
        alpha = max(t[0] for t in targets)
        secint_bits = rows_bits + alpha.bit_length() + 3
        return MpcPlan("order", g, bits, width, targets, secint_bits, min_group, 0, 0, method)
    key = catalog.column(spec.table, spec.key or "")
    assert key.domain is not None
    if spec.aggregate == "topk":
        col = catalog.column(spec.table, spec.column or "")
        lo, hi = col.scaled_bounds()
        if lo < 0:
            raise SpecError(f"top-k needs a non-negative column; {col.name!r} may be {col.lo}")
        assert spec.k is not None
        if spec.k > len(key.domain):
            raise SpecError(f"k={spec.k} exceeds the {len(key.domain)} keys of {key.name!r}")
        bits = rows_bits + max(1, hi).bit_length() + 3
        return MpcPlan("topk", 1, 0, 1, (), bits, min_group, spec.k, len(key.domain))
    return MpcPlan("intersection", 1, 0, 1, (), rows_bits + 3, min_group, 0, len(key.domain))


# --- regulator side: launching parties, collecting and recombining shares -------------------


@dataclass(frozen=True)
class PartyJob:
    """What one agency's party process needs (its own data source stays its own)."""

    agency: str
    source: dict[str, Any]
    base: str
    min_group_size: int


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def recombine(outputs: Sequence[dict[str, Any]]) -> list[int]:
    """Recombine the parties' output shares into signed integers.

    With m parties and threshold t, shares of parties 1..t+1 and of the last t+1 parties
    must give the same secrets; a mismatch means a tampered or corrupted share.
    """
    from mpyc import finfields, thresha

    moduli = {int(o["modulus"]) for o in outputs}
    lengths = {len(o["shares"]) for o in outputs}
    if len(moduli) != 1 or len(lengths) != 1:
        raise MPCError("parties returned shares over different fields or of different lengths")
    p = moduli.pop()
    field = finfields.GF(p)
    points = sorted((int(o["pid"]) + 1, [int(s) % p for s in o["shares"]]) for o in outputs)
    t = (len(points) - 1) // 2
    first = [int(v) % p for v in thresha.recombine(field, points[: t + 1])]
    last = [int(v) % p for v in thresha.recombine(field, points[-(t + 1) :])]
    if first != last:
        raise MPCError(
            "the parties' output shares are inconsistent (a share was tampered with or corrupted); "
            "the result is discarded — re-run the query and check the agencies' MPC services"
        )
    return [v if v <= p // 2 else v - p for v in first]


def _spawn(
    spec: QuerySpec,
    catalog: Catalog,
    mpc_plan: MpcPlan,
    job: PartyJob,
    index: int,
    peers: Sequence[str],
    workdir: Path,
    extra_args: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start party ``index`` (``python -m privacy.mpc_party``) for ``job``'s agency."""
    job_path = workdir / f"party{index}.json"
    doc = {
        "spec": spec.to_dict(),
        "catalog": catalog.to_dict(),
        "plan": mpc_plan.to_dict(),
        "job": asdict(job),
        "index": index,
        "peers": list(peers),
    }
    job_path.write_text(json.dumps(doc))
    cmd = [sys.executable, "-m", "privacy.mpc_party", str(job_path), *extra_args]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _cleanup(procs: Sequence[subprocess.Popen[bytes]], workdir: Path) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    shutil.rmtree(workdir, ignore_errors=True)


def run_party(
    spec: QuerySpec,
    catalog: Catalog,
    mpc_plan: MpcPlan,
    job: PartyJob,
    index: int,
    peers: Sequence[str],
    *,
    timeout: float = 300.0,
    tls: tuple[bytes, Sequence[bytes]] | None = None,
) -> dict[str, Any]:
    """Run one agency's own party (its data never leaves it) until the computation ends.

    With ``tls = (key, certificates)`` the party's links are TLS (mpyc ``--ssl``): it
    presents ``certificates[index]`` with ``key`` and accepts only peers presenting one of
    ``certificates`` (:mod:`privacy.mpc_tls`).

    Returns the party's output (``pid``, ``modulus``, its ``shares`` of the outputs,
    ``bytes_sent``); raises :class:`MPCError` when the party fails or times out.
    """
    workdir = Path(tempfile.mkdtemp(prefix="rx-mpc-"))
    procs: list[subprocess.Popen[bytes]] = []
    extra: list[str] = []
    if tls is not None:
        from privacy.mpc_tls import write_config

        write_config(workdir, index, tls[0], list(tls[1]))
        extra.append("--ssl")
    try:
        procs.append(_spawn(spec, catalog, mpc_plan, job, index, peers, workdir, extra))
        return _collect(procs, [job], timeout, time.perf_counter(), None)[0]
    finally:
        _cleanup(procs, workdir)


def run(
    spec: QuerySpec,
    catalog: Catalog,
    mpc_plan: MpcPlan,
    jobs: Sequence[PartyJob],
    *,
    timeout: float = 300.0,
    progress: Callable[[str], None] | None = None,
    extra_args: Sequence[str] = (),
) -> tuple[list[int], dict[str, Any]]:
    """Run all the parties as processes over TCP on localhost and return the recombined
    outputs (tests and benchmarks; queries have each agency run its own party, see
    :func:`run_party`).

    Returns ``(outputs, stats)``; raises :class:`MPCError` naming the party that failed or
    timed out (all processes are stopped first).
    """
    m = len(jobs)
    ports = free_ports(m)
    peers = [f"127.0.0.1:{p}" for p in ports]
    workdir = Path(tempfile.mkdtemp(prefix="rx-mpc-"))
    procs: list[subprocess.Popen[bytes]] = []
    t0 = time.perf_counter()
    try:
        for i, job in enumerate(jobs):
            procs.append(_spawn(spec, catalog, mpc_plan, job, i, peers, workdir, extra_args))
        if progress:
            progress(f"started {m} MPC parties on ports {ports[0]}..{ports[-1]}")
        outputs = _collect(procs, jobs, timeout, t0, progress)
    finally:
        _cleanup(procs, workdir)
    return finish(mpc_plan, outputs, t0)


def finish(
    mpc_plan: MpcPlan, outputs: Sequence[dict[str, Any]], t0: float
) -> tuple[list[int], dict[str, Any]]:
    """Recombine the parties' outputs; the values and the run's statistics."""
    values = recombine(outputs)
    if len(values) != mpc_plan.output_length:
        raise MPCError(f"expected {mpc_plan.output_length} outputs, the parties produced {len(values)}")
    stats: dict[str, Any] = {
        "seconds": time.perf_counter() - t0,
        "bytes_sent": sum(int(o.get("bytes_sent", 0)) for o in outputs),
        "bytes_to_regulator": sum(len(json.dumps(o["shares"])) for o in outputs),
    }
    for phase in ("load", "mpyc_import", "connect", "compute"):  # the slowest party's, per phase
        times = [o["seconds"][phase] for o in outputs if isinstance(o.get("seconds"), dict)]
        if times and all(isinstance(t, int | float) for t in times):
            stats[f"party_{phase}_s"] = max(float(t) for t in times)
    return values, stats


def _collect(
    procs: Sequence[subprocess.Popen[bytes]],
    jobs: Sequence[PartyJob],
    timeout: float,
    t0: float,
    progress: Callable[[str], None] | None,
) -> list[dict[str, Any]]:
    out: dict[int, bytes] = {i: b"" for i in range(len(procs))}
    done: dict[int, int] = {}
    while len(done) < len(procs):
        remaining = timeout - (time.perf_counter() - t0)
        if remaining <= 0:
            waiting = [jobs[i].agency for i in range(len(procs)) if i not in done]
            raise MPCError(
                f"MPC timed out after {timeout:.0f} s waiting for {waiting}: a party dropped out or "
                "is unreachable; all parties were stopped and nothing was released"
            )
        streams: dict[int, int] = {}
        for i in range(len(procs)):
            stdout = procs[i].stdout
            if i not in done and stdout is not None:
                streams[stdout.fileno()] = i
        ready, _, _ = select.select(list(streams), [], [], min(remaining, 0.5))
        for fd in ready:
            i = streams[fd]
            chunk = os.read(fd, 1 << 16)
            if chunk:
                out[i] += chunk
                continue
            code = procs[i].wait()
            done[i] = code
            if code != 0:
                stderr = procs[i].stderr
                err = stderr.read().decode(errors="replace") if stderr is not None else ""
                lines = [ln for ln in err.strip().splitlines() if ln.strip()]
                detail = lines[-1] if lines else f"exit code {code}"
                raise MPCError(
                    f"agency {jobs[i].agency!r} (MPC party {i}) failed: {detail}; all parties were "
                    "stopped and nothing was released"
                )
            if progress:
                progress(f"party {i} ({jobs[i].agency}) finished")
    results = []
    for i in range(len(procs)):
        try:
            results.append(json.loads(out[i].decode().strip().splitlines()[-1]))
        except (ValueError, IndexError):
            raise MPCError(f"agency {jobs[i].agency!r} (MPC party {i}) returned no output shares") from None
    return results
