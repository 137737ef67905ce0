"""Alert rules over the nodes' metric samples (a pure core: samples in, alerts out).

The rules carry the names of the Prometheus alerting rules that ``rongxin chain init``
writes to ``alerts.yml`` (:func:`rongxin.ops.templates.alert_rules`), so an operator sees
the same alert on the platform's operations page and in Alertmanager:

=================================  ============================================================
alert                              fires when
=================================  ============================================================
RongxinNodeDown                    no readable ``/metrics`` from the node for ``down_after_s``
RongxinHeightStalled               the height did not grow for ``stalled_after_s`` (while
                                   transactions are pending, unless ``empty_blocks``)
RongxinPeersBelowQuorum            a voting node has fewer peers than a quorum needs (an
                                   observer: none)
RongxinMempoolFull                 the mempool is fuller than ``mempool_full_ratio`` of its
                                   capacity
RongxinSyncLag                     the node is more than ``lag_blocks`` behind (its own count,
                                   or the highest node sampled)
RongxinMissedProposals             a validator's proposals failed more than ``missed_proposals``
                                   times within ``missed_window_s``
RongxinSignatureCheckingSaturated  the node's signature checks took more than
                                   ``verify_busy_ratio`` of a core over ``verify_busy_window_s``
=================================  ============================================================

:class:`AlertBook` remembers which alerts are firing and reports each change (fired,
resolved) once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chain.consensus.core import quorum_size
from rongxin.platform.opsconfig import OpsConfig
from rongxin.platform.sampler import Sample

NODE_DOWN = "RongxinNodeDown"
HEIGHT_STALLED = "RongxinHeightStalled"
PEERS_BELOW_QUORUM = "RongxinPeersBelowQuorum"
MEMPOOL_FULL = "RongxinMempoolFull"
SYNC_LAG = "RongxinSyncLag"
MISSED_PROPOSALS = "RongxinMissedProposals"
VERIFY_SATURATED = "RongxinSignatureCheckingSaturated"
RULES = (
    NODE_DOWN,
    HEIGHT_STALLED,
    PEERS_BELOW_QUORUM,
    MEMPOOL_FULL,
    SYNC_LAG,
    MISSED_PROPOSALS,
    VERIFY_SATURATED,
)


@dataclass(frozen=True)
class Alert:
    """One firing alert: its rule, the node (or validator) it is about, and why."""

    name: str
    target: str
    severity: str
    detail: str

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the alert across evaluations."""
        return (self.name, self.target)


def _last_up(samples: Sequence[Sample]) -> Sample | None:
    for s in reversed(samples):
        if s.up:
            return s
    return None


def _at_or_before(samples: Sequence[Sample], ts: float) -> Sample | None:
    """The latest readable sample taken at or before ``ts``."""
    found = None
    for s in samples:
        if s.ts > ts:
            break
        if s.up:
            found = s
    return found


def _node_alerts(
    node: str, samples: Sequence[Sample], now: float, best: float, config: OpsConfig
) -> list[Alert]:
    """The alerts of one node that answered within ``down_after_s`` (all but missed proposals)."""
    last = _last_up(samples)
    assert last is not None and last.metrics is not None
    out: list[Alert] = []
    v = last.metrics.values
    height = v.get("height")
    # height stalled: the height now is not above the height stalled_after_s ago
    then = _at_or_before(samples, now - config.stalled_after_s)
    before = None if then is None or then.metrics is None else then.metrics.values.get("height")
    pending = v.get("mempool", 0)
    if (
        height is not None
        and before is not None
        and height <= before
        and (config.empty_blocks or pending > 0)
    ):
        why = "" if config.empty_blocks else f" with {pending:.0f} transactions pending"
        out.append(
            Alert(
                HEIGHT_STALLED,
                node,
                "critical",
                f"height #{height:.0f} has not grown for {config.stalled_after_s:g} s{why}",
            )
        )
    peers, validators = v.get("peers"), v.get("validators")
    if peers is not None and v.get("voting", 0) >= 1 and validators is not None:
        need = quorum_size(int(validators)) - 1
        if peers < need:
            quorum = quorum_size(int(validators))
            detail = f"{peers:.0f} peers; a quorum of {quorum} of {validators:.0f} needs {need}"
            out.append(Alert(PEERS_BELOW_QUORUM, node, "warning", detail))
    elif peers is not None and v.get("voting") == 0 and peers < 1:
        out.append(Alert(PEERS_BELOW_QUORUM, node, "warning", "an observer with no peer"))
    size, cap = v.get("mempool"), v.get("mempool_max")
    if size is not None and cap and size / cap > config.mempool_full_ratio:
        detail = (
            f"{size:.0f} of {cap:.0f} transactions ({100 * size / cap:.0f}%, above "
            f"{100 * config.mempool_full_ratio:.0f}%)"
        )
        out.append(Alert(MEMPOOL_FULL, node, "warning", detail))
    lag = max(v.get("lag", 0.0), best - height if height is not None else 0.0)
    if lag > config.lag_blocks:
        out.append(Alert(SYNC_LAG, node, "warning", f"{lag:.0f} blocks behind (above {config.lag_blocks})"))
    busy = _verify_busy(samples, last, now, config)
    if busy is not None and busy > config.verify_busy_ratio:
        detail = (
            f"signature checks took {100 * busy:.0f}% of a core over the last "
            f"{config.verify_busy_window_s:g} s (above {100 * config.verify_busy_ratio:.0f}%): "
            "transactions arrive about as fast as this machine verifies them"
        )
        out.append(Alert(VERIFY_SATURATED, node, "warning", detail))
    return out


def _verify_busy(samples: Sequence[Sample], last: Sample, now: float, config: OpsConfig) -> float | None:
    """The share of a core the node's signature checks took between the readable sample
    taken ``verify_busy_window_s`` before ``now`` (or just before) and ``last`` (as
    Prometheus's ``rate``); ``None`` without two such samples, or across a restart (the
    counter went down)."""
    then = _at_or_before(samples, now - config.verify_busy_window_s)
    if then is None or then.metrics is None or last.metrics is None or last.ts <= then.ts:
        return None
    before = then.metrics.values.get("signature_check_cpu_total")
    after = last.metrics.values.get("signature_check_cpu_total")
    if before is None or after is None or after < before:
        return None
    return (after - before) / (last.ts - then.ts)


def _missed_growth(samples: Sequence[Sample], now: float, config: OpsConfig) -> dict[str, float]:
    """How much each validator's missed-proposal count grew over the samples within the
    window, as this node counts them (as Prometheus's ``increase`` over the window)."""
    last = _last_up(samples)
    start = next((s for s in samples if s.up and s.ts >= now - config.missed_window_s), None)
    if last is None or last.metrics is None or start is None or start.metrics is None:
        return {}
    out = {}
    for validator, count in last.metrics.missed.items():
        base = start.metrics.missed.get(validator, 0.0)
        out[validator] = count - base if count >= base else count  # a restart resets the counter
    return out


def evaluate(nodes: Mapping[str, Sequence[Sample]], now: float, config: OpsConfig) -> list[Alert]:
    """Every alert that holds at ``now`` over the nodes' samples (oldest first per node).

    Examples
    --------
    >>> from rongxin.platform.promtext import NodeMetrics
    >>> up = Sample(0.0, NodeMetrics({"height": 5, "mempool": 95, "mempool_max": 100}))
    >>> [a.name for a in evaluate({"n": [up]}, 1.0, OpsConfig())]
    ['RongxinMempoolFull']
    >>> [a.name for a in evaluate({"n": [up]}, 61.0, OpsConfig())]
    ['RongxinNodeDown']
    """
    heights = []
    for samples in nodes.values():
        last = _last_up(samples)
        if last is not None and last.metrics is not None and "height" in last.metrics.values:
            heights.append(last.metrics.values["height"])
    best = max(heights, default=0.0)
    out: list[Alert] = []
    missed: dict[str, float] = {}
    for node, samples in nodes.items():
        if not samples:
            continue
        last = _last_up(samples)
        if last is None or now - last.ts >= config.down_after_s:
            if last is not None or now - samples[0].ts >= config.down_after_s:
                why = samples[-1].error or "no answer"
                detail = f"no readable /metrics for {config.down_after_s:g} s: {why}"
                out.append(Alert(NODE_DOWN, node, "critical", detail))
            continue
        out.extend(_node_alerts(node, samples, now, best, config))
        for validator, grew in _missed_growth(samples, now, config).items():
            missed[validator] = max(missed.get(validator, 0.0), grew)
    for validator, grew in sorted(missed.items()):
        if grew > config.missed_proposals:
            detail = (
                f"{grew:.0f} rounds without its block in {config.missed_window_s:g} s "
                f"(above {config.missed_proposals})"
            )
            out.append(Alert(MISSED_PROPOSALS, validator, "warning", detail))
    return out


@dataclass(frozen=True)
class Change:
    """An alert that started or stopped firing at ``ts``."""

    ts: float
    state: str  # "firing" or "resolved"
    alert: Alert


class AlertBook:
    """The alerts firing now and the latest changes (bounded).

    Examples
    --------
    >>> book = AlertBook()
    >>> a = Alert("RongxinNodeDown", "n", "critical", "no answer")
    >>> [c.state for c in book.update([a], 1.0)], [c.state for c in book.update([a], 2.0)]
    (['firing'], [])
    >>> [c.state for c in book.update([], 3.0)], book.firing
    (['resolved'], [])
    """

    def __init__(self, keep: int = 500) -> None:
        self._firing: dict[tuple[str, str], tuple[float, Alert]] = {}
        self.history: deque[Change] = deque(maxlen=keep)

    @property
    def firing(self) -> list[tuple[float, Alert]]:
        """``(since, alert)`` of each alert firing now, oldest first."""
        return sorted(self._firing.values(), key=lambda x: (x[0], x[1].key))

    def update(self, active: Sequence[Alert], now: float) -> list[Change]:
        """Record an evaluation; return what started and what stopped firing."""
        changes = []
        seen = {a.key: a for a in active}
        for key, alert in seen.items():
            if key not in self._firing:
                self._firing[key] = (now, alert)
                changes.append(Change(now, "firing", alert))
            else:
                self._firing[key] = (self._firing[key][0], alert)  # the latest detail
        for key in [k for k in self._firing if k not in seen]:
            _, alert = self._firing.pop(key)
            changes.append(Change(now, "resolved", alert))
        self.history.extend(changes)
        return changes


__all__ = ["RULES", "Alert", "AlertBook", "Change", "evaluate"]
