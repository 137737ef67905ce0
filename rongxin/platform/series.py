"""Time series of the key node metrics, derived from the sampled ``/metrics`` answers.

Gauges are read as they are; counters become rates between consecutive readable samples
(a counter that went down — the node restarted — gives no point for that interval).

Examples
--------
>>> from rongxin.platform.promtext import NodeMetrics
>>> from rongxin.platform.sampler import Sample
>>> s = [Sample(0.0, NodeMetrics({"txs_total": 10})), Sample(10.0, NodeMetrics({"txs_total": 60}))]
>>> node_series(s)["txs_rate"]
[(10.0, 5.0)]
"""

from __future__ import annotations

from collections.abc import Sequence

from rongxin.platform.sampler import Sample

CHARTS = (
    ("height", "Height"),
    ("block_interval", "Block interval (s)"),
    ("txs_rate", "Committed transactions/s"),
    ("mempool", "Mempool (transactions)"),
    ("peers", "Peers"),
    ("lag", "Sync lag (blocks)"),
    ("sm2_rate", "SM2 verifications/s"),
)
"""The charts of the operations page: series key and caption (translated on the page)."""

_GAUGES = ("height", "mempool", "peers", "lag")
_RATES = {"txs_rate": "txs_total", "sm2_rate": "sm2_verifications_total"}

Point = tuple[float, float]


def node_series(samples: Sequence[Sample]) -> dict[str, list[Point]]:
    """Every chart's points for one node, ``(time s, value)``, oldest first."""
    out: dict[str, list[Point]] = {key: [] for key, _ in CHARTS}
    prev: Sample | None = None
    for s in samples:
        if s.metrics is None:
            continue
        v = s.metrics.values
        for key in _GAUGES:
            if key in v:
                out[key].append((s.ts, v[key]))
        if prev is not None and prev.metrics is not None and s.ts > prev.ts:
            p = prev.metrics.values
            dt = s.ts - prev.ts
            for key, counter in _RATES.items():
                if counter in v and counter in p and v[counter] >= p[counter]:
                    out[key].append((s.ts, (v[counter] - p[counter]) / dt))
            # mean block interval over the period, from the histogram's sum and count
            if all(k in v and k in p for k in ("interval_sum", "interval_count")):
                blocks = v["interval_count"] - p["interval_count"]
                spent = v["interval_sum"] - p["interval_sum"]
                if blocks > 0 and spent >= 0:
                    out["block_interval"].append((s.ts, spent / blocks))
        prev = s
    return out


__all__ = ["CHARTS", "Point", "node_series"]
