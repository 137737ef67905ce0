"""Operations metrics: the /metrics parser on hostile answers, the bounded sample rings, the
fetch through a real HTTP client, each alert rule firing and resolving, and the alert changes
written to the operations audit log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from chain.node.logs import OpsAudit
from rongxin.ops.templates import alert_rules
from rongxin.platform.alerts import (
    HEIGHT_STALLED,
    MEMPOOL_FULL,
    MISSED_PROPOSALS,
    NODE_DOWN,
    PEERS_BELOW_QUORUM,
    RULES,
    SYNC_LAG,
    VERIFY_SATURATED,
    AlertBook,
    evaluate,
)
from rongxin.platform.monitor import OpsMonitor
from rongxin.platform.opsconfig import OpsConfig
from rongxin.platform.promtext import GAUGES, MAX_BYTES, MetricsError, NodeMetrics, parse_metrics
from rongxin.platform.sampler import Sample, SampleRing, fetch_metrics
from rongxin.platform.series import node_series
from tests.chain.api.harness import serve
from tests.rongxin.platform.conftest import Stack, client_of


class _Node(Collector):
    """The node's gauges and counters, as the node's collector declares them."""

    def __init__(self, **values: float) -> None:
        self.values = values

    def collect(self):  # type: ignore[no-untyped-def]
        v = self.values
        yield GaugeMetricFamily("rongxin_consensus_height", "h", value=v.get("height", 7))
        yield GaugeMetricFamily("rongxin_consensus_validators", "v", value=4)
        yield GaugeMetricFamily("rongxin_consensus_voting", "v", value=1)
        yield CounterMetricFamily("rongxin_consensus_total_txs", "t", value=v.get("txs", 120))
        yield CounterMetricFamily("rongxin_consensus_blocks", "b", value=7)
        yield GaugeMetricFamily("rongxin_mempool_size", "m", value=3)
        yield GaugeMetricFamily("rongxin_mempool_max_txs", "m", value=100_000)
        yield GaugeMetricFamily("rongxin_p2p_peers", "p", value=3)
        yield GaugeMetricFamily("rongxin_blocksync_lag", "l", value=0)
        yield CounterMetricFamily("rongxin_crypto_sm2_verifications", "s", value=500)
        yield CounterMetricFamily("rongxin_crypto_tx_signature_check_cpu_seconds", "c", value=42.5)
        missed = CounterMetricFamily("rongxin_consensus_missed_proposals", "m", labels=["validator"])
        missed.add_metric(["node-2"], 2)
        yield missed


def exposition(**values: float) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Node(**values))
    return generate_latest(registry)


def test_parses_what_prometheus_client_writes() -> None:
    m = parse_metrics(exposition())
    assert m.values["height"] == 7 and m.values["txs_total"] == 120 and m.values["peers"] == 3
    assert m.values["sm2_verifications_total"] == 500 and m.values["mempool_max"] == 100_000
    assert m.values["signature_check_cpu_total"] == 42.5
    assert m.missed == {"node-2": 2.0}
    assert set(m.values) <= set(GAUGES)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"#" * (MAX_BYTES + 1), "larger than"),
        (b"x 1\n" * 20_001, "more than 20000 lines"),
        (b"# " + b"a" * 5000 + b"\n", "longer than"),
        (b"rongxin_consensus_height \xff\xfe\n", "not UTF-8"),
        (b"rongxin_consensus_height 1\x00\n", "NUL"),
        (b"rongxin_consensus_height twelve\n", "malformed"),
        (b'rongxin_consensus_height{node="a 1\n', "malformed"),
        (b"rongxin_consensus_height NaN\n", "not a finite count"),
        (b"rongxin_p2p_peers +Inf\n", "not a finite count"),
        (b"rongxin_mempool_size -4\n", "not a finite count"),
        (b'rongxin_consensus_height{shard="1"} 3\n', "unexpected labels"),
        (b"rongxin_consensus_height 3\nrongxin_consensus_height 4\n", "given twice"),
        (b"rongxin_consensus_missed_proposals_total 3\n", "validator label"),
        (
            b'rongxin_consensus_missed_proposals_total{validator="a"} 1\n'
            b'rongxin_consensus_missed_proposals_total{validator="a"} 2\n',
            "given twice",
        ),
        (
            b"".join(
                b'rongxin_consensus_missed_proposals_total{validator="v%d"} 1\n' % i for i in range(1100)
            ),
            "more than 1024 validators",
        ),
        (b"rongxin_consensus_height 1\n" * 3000, "repeats its samples"),
    ],
)
def test_hostile_answers_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(MetricsError, match=reason):
        parse_metrics(raw)


def test_metrics_it_does_not_use_are_ignored_and_absent_ones_missing() -> None:
    m = parse_metrics(b"# TYPE other gauge\nother NaN\nrongxin_p2p_peers 2\n")
    assert m.values == {"peers": 2.0}
    # other metrics never reach the parser: a megabyte of label-heavy lines is only scanned
    heavy = b"x{" + b",".join(b'l%d="\\n"' % i for i in range(60)) + b"} 1\n"
    assert parse_metrics(heavy * (MAX_BYTES // len(heavy)) + b"rongxin_p2p_peers 4\n").values == {
        "peers": 4.0
    }


def test_the_ring_keeps_a_bounded_number_of_samples_and_nodes() -> None:
    ring = SampleRing(keep=3, max_nodes=2)
    for i in range(10):
        ring.add("a", Sample(float(i), NodeMetrics({"height": float(i)})))
    ring.add("b", Sample(0.0, None, "down"))
    ring.add("c", Sample(0.0, None, "down"))  # beyond max_nodes: ignored
    assert [s.ts for s in ring.samples("a")] == [7.0, 8.0, 9.0]
    assert ring.nodes() == ["a", "b"] and ring.samples("c") == []
    with pytest.raises(ValueError):
        SampleRing(keep=1)


def _http(handler) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_fetch_signs_bounds_and_never_raises() -> None:
    seen: dict[str, str] = {}

    def good(request: httpx.Request) -> httpx.Response:
        seen.update(request.headers)
        return httpx.Response(200, content=exposition(height=9))

    s = fetch_metrics(_http(good), "http://127.0.0.1:1", lambda m, t: {"x-signed": f"{m} {t}"})
    assert s.up and s.metrics is not None and s.metrics.values["height"] == 9
    assert seen["x-signed"] == "GET /metrics"

    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"#" * 65536] * 20))

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"rongxin_consensus_height <script>\n")

    for handler, why in (
        (huge, "larger than"),
        (refused, "refused"),
        (garbage, "malformed"),
        (lambda r: httpx.Response(401), "HTTP 401"),
    ):
        s = fetch_metrics(_http(handler), "http://127.0.0.1:1")
        assert not s.up and why in s.error


def test_series_are_gauges_and_rates_and_skip_a_restart() -> None:
    def at(t: float, txs: float, blocks: float, spent: float) -> Sample:
        values = {"height": blocks, "txs_total": txs, "interval_count": blocks, "interval_sum": spent}
        return Sample(t, NodeMetrics(values))

    series = node_series([at(0, 0, 0, 0), at(10, 100, 5, 10), Sample(15, None, "x"), at(20, 50, 6, 11)])
    assert series["height"] == [(0, 0), (10, 5), (20, 6)]
    assert series["txs_rate"] == [(10, 10.0)]  # the counter went down at 20 s: no point
    assert series["block_interval"] == [(10, 2.0), (20, 1.0)]


def up(t: float, **values: float) -> Sample:
    base = {"height": 10.0, "mempool": 0.0, "mempool_max": 100.0, "peers": 3.0, "validators": 4.0}
    base.update(values)
    if "busy" in base:
        base["signature_check_cpu_total"] = base.pop("busy")
    missed = {"node-3": base.pop("missed")} if "missed" in base else {}
    return Sample(t, NodeMetrics({**base, "voting": base.get("voting", 1.0)}, missed))


CFG = OpsConfig(down_after_s=60, stalled_after_s=300, lag_blocks=10, missed_proposals=3, missed_window_s=600)


@pytest.mark.parametrize(
    ("name", "firing", "resolved"),
    [
        (
            NODE_DOWN,
            {"a": [up(0), Sample(70, None, "refused")]},
            {"a": [up(0), Sample(70, None, "x"), up(80)]},
        ),
        (
            HEIGHT_STALLED,
            {"a": [up(0, mempool=5), up(350, mempool=5)]},
            {"a": [up(0, mempool=5), up(350, mempool=5, height=11)]},
        ),
        (PEERS_BELOW_QUORUM, {"a": [up(0, peers=1)]}, {"a": [up(0, peers=2)]}),
        (PEERS_BELOW_QUORUM, {"a": [up(0, peers=0, voting=0)]}, {"a": [up(0, peers=1, voting=0)]}),
        (MEMPOOL_FULL, {"a": [up(0, mempool=95)]}, {"a": [up(0, mempool=80)]}),
        (SYNC_LAG, {"a": [up(0, lag=11)]}, {"a": [up(0, lag=10)]}),
        (
            SYNC_LAG,
            {"a": [up(0, height=100)], "b": [up(0, height=80)]},
            {"a": [up(0, height=100)], "b": [up(0, height=95)]},
        ),
        (
            MISSED_PROPOSALS,
            {"a": [up(0, missed=1), up(100, missed=5)]},
            {"a": [up(0, missed=1), up(700, missed=5)]},
        ),
        (
            VERIFY_SATURATED,  # 285 CPU-seconds in 300 s: 95 % of a core
            {"a": [up(0, busy=1000), up(300, busy=1285)]},
            {"a": [up(0, busy=1000), up(300, busy=1240)]},  # 80 %
        ),
    ],
)
def test_each_rule_fires_and_resolves(name: str, firing: dict, resolved: dict) -> None:  # type: ignore[type-arg]
    now = max(s.ts for samples in firing.values() for s in samples)
    book = AlertBook()
    fired = [c for c in book.update(evaluate(firing, now, CFG), now) if c.alert.name == name]
    assert [c.state for c in fired] == ["firing"], evaluate(firing, now, CFG)
    later = max(s.ts for samples in resolved.values() for s in samples) + 1
    others = [a for a in evaluate(resolved, later, CFG) if a.name == name]
    assert others == []
    changes = [c for c in book.update(evaluate(resolved, later, CFG), later) if c.alert.name == name]
    assert [c.state for c in changes] == ["resolved"]


def test_quiet_chain_and_young_sampler_raise_nothing() -> None:
    # no transactions pending: a height that stays is not stalled (no heartbeat blocks)
    assert evaluate({"a": [up(0), up(400)]}, 400, CFG) == []
    # heartbeat blocks configured: it is
    heartbeat = OpsConfig(empty_blocks=True)
    assert [a.name for a in evaluate({"a": [up(0), up(400)]}, 400, heartbeat)] == [HEIGHT_STALLED]
    # never answered, but asked only for 10 s: not down yet
    assert evaluate({"a": [Sample(0, None, "x"), Sample(10, None, "x")]}, 10, CFG) == []


def test_signature_checking_is_saturated_only_over_a_whole_window_without_a_restart() -> None:
    def names(samples: list[Sample], now: float) -> list[str]:
        return [a.name for a in evaluate({"a": samples}, now, CFG)]

    busy = [up(0, busy=0), up(100, busy=99), up(200, busy=198), up(300, busy=297)]
    assert names(busy, 300) == [VERIFY_SATURATED]
    alert = evaluate({"a": busy}, 300, CFG)[0]
    assert alert.target == "a" and "99% of a core over the last 300 s" in alert.detail
    # not yet a whole window of samples: nothing to say
    assert names(busy[1:], 300) == []
    # a restart in between (the counter starts again from zero): no rate across it
    assert names([up(0, busy=500), up(150, busy=10), up(300, busy=160)], 300) == []
    # a node without the counter (an older version), or an idle one
    assert names([up(0), up(300)], 300) == []
    assert names([up(0, busy=0), up(300, busy=0)], 300) == []
    # the threshold is the configuration's
    strict = OpsConfig(verify_busy_ratio=0.5, verify_busy_window_s=100)
    assert [a.name for a in evaluate({"a": [up(0, busy=0), up(100, busy=60)]}, 100, strict)] == [
        VERIFY_SATURATED
    ]


def test_rule_names_are_the_prometheus_rules_of_chain_init() -> None:
    rules = alert_rules("rongxin-local", 4, empty_blocks=False, block_interval_ms=1000)
    for name in RULES:
        assert f"alert: {name}" in rules


def test_monitor_writes_alert_changes_to_the_audit_log(tmp_path: Path) -> None:
    audit = OpsAudit(tmp_path / "ops-audit.jsonl", "platform")
    monitor = OpsMonitor(("http://127.0.0.1:9",), CFG, audit)
    monitor.ring.add("http://127.0.0.1:9", up(0, mempool=99))
    monitor.evaluate(1.0)
    monitor.evaluate(2.0)  # still firing: not written again
    monitor.ring.add("http://127.0.0.1:9", up(3, mempool=1))
    monitor.evaluate(3.0)
    events = [(e["event"], e["alert"], e["target"]) for e in audit.read()]
    assert events == [
        ("alert.firing", MEMPOOL_FULL, "http://127.0.0.1:9"),
        ("alert.resolved", MEMPOOL_FULL, "http://127.0.0.1:9"),
    ]


def _metrics_node(heights: list[float]) -> Any:
    """A loopback HTTP endpoint answering ``/metrics`` like a node whose mempool is nearly
    full and whose validator label tries markup; the height and that validator's missed
    proposals grow with each ask."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()

    @app.get("/metrics")
    def metrics() -> Response:
        heights.append(heights[-1] + 3)
        body = exposition(height=heights[-1], txs=40 * heights[-1]).replace(
            b"rongxin_mempool_size 3.0", b"rongxin_mempool_size 99999.0"
        )
        body += b'rongxin_consensus_missed_proposals_total{validator="<script>x</script>"} %d\n' % heights[-1]
        return Response(body, media_type="text/plain")

    return app


def test_ops_page_shows_metric_charts_and_alerts_by_role(stack: Stack) -> None:
    monitor = stack.app.state.platform.monitor
    assert monitor is not None and monitor.sampler.nodes == [stack.node_url]
    heights = [10.0]
    with serve(_metrics_node(heights)) as fake:
        monitor.sampler.nodes.append(fake)
        try:
            with httpx.Client(timeout=10) as http:
                for _ in range(3):  # the real node (signed request) and the loopback one
                    monitor.sampler.sample_once(http)
                    time.sleep(0.05)
        finally:
            monitor.sampler.nodes.remove(fake)
    real = monitor.ring.samples(stack.node_url)
    assert real and real[-1].up, real[-1].error  # the node answered the member's signed ask
    page = client_of(stack, "operator").get("/ops")
    assert page.status_code == 200
    html = page.text
    for key in ("height", "txs_rate", "mempool", "peers", "lag", "sm2_rate", "block_interval"):
        assert f'id="chart-{key}"' in html
    chart = html.split('id="chart-height"')[1].split("</figure>")[0]
    assert "<polyline" in chart  # three samples of the growing height
    alerts = html.split('id="alerts"')[1].split("</table>")[0]
    assert "RongxinMempoolFull" in alerts and "RongxinMissedProposals" in alerts
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in alerts
    audit = html.split('id="audit"')[1]
    assert "alert.firing" in audit
    for role in ("auditor", "admin"):
        assert client_of(stack, role).get("/ops").status_code == 200
    for role in ("legal_staff", "regulator", "editor"):
        r = client_of(stack, role.replace("_", "-")).get("/ops")
        assert r.status_code == 403 and "RongxinMempoolFull" not in r.text
    assert client_of(stack).get("/ops", follow_redirects=False).status_code == 303
    # the fake node is gone: its alerts resolve at the next evaluation
    with monitor._lock:
        monitor.ring._rings.pop(fake, None)
    changes = monitor.evaluate(time.time())
    assert {c.state for c in changes} == {"resolved"}
