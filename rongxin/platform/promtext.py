"""A node's Prometheus ``/metrics`` answer, read as hostile input.

The text is bounded (bytes, lines, line length, label sets) before anything parses it;
only the sample lines of the metrics the operations page uses go on to
``prometheus_client``'s own text parser (so a huge answer of other metrics costs a line
scan, not a parse), and each value kept is checked to be a finite number. Anything else — a wrong type, a
malformed line, a value that is not a number — refuses the whole answer with a
:class:`MetricsError` (a node that answers that is reported as not answering properly).

Examples
--------
>>> m = parse_metrics(b"rongxin_consensus_height 12\\nrongxin_p2p_peers 3\\n")
>>> m.values["height"], m.values["peers"]
(12.0, 3.0)
>>> try:
...     parse_metrics(b"rongxin_consensus_height twelve\\n")
... except MetricsError as exc:
...     print(exc)
the metrics text is malformed: could not convert string to float: 'twelve'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from rongxin.ops.templates import VERIFY_CPU
from rongxin.platform.config import PlatformError

MAX_BYTES = 1024 * 1024
"""Largest ``/metrics`` answer read (a node's real answer is a few KiB, growing with peers)."""
MAX_LINES = 20_000
MAX_LINE = 4096
MAX_LABELLED = 1024
"""Most label sets kept for one labelled metric (missed proposals per validator)."""

GAUGES = {
    "height": "rongxin_consensus_height",
    "validators": "rongxin_consensus_validators",
    "voting": "rongxin_consensus_voting",
    "txs_total": "rongxin_consensus_total_txs_total",
    "blocks_total": "rongxin_consensus_blocks_total",
    "interval_sum": "rongxin_consensus_block_interval_seconds_sum",
    "interval_count": "rongxin_consensus_block_interval_seconds_count",
    "mempool": "rongxin_mempool_size",
    "mempool_max": "rongxin_mempool_max_txs",
    "peers": "rongxin_p2p_peers",
    "lag": "rongxin_blocksync_lag",
    "sm2_verifications_total": "rongxin_crypto_sm2_verifications_total",
    "signature_check_cpu_total": VERIFY_CPU,
}
"""What the operations page reads, by short name, with the node's metric name."""
MISSED = "rongxin_consensus_missed_proposals_total"
"""Rounds whose leader's block did not commit, labelled by ``validator``."""

_BY_METRIC = {v: k for k, v in GAUGES.items()}
_WANTED = frozenset(_BY_METRIC) | {MISSED}
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


class MetricsError(PlatformError):
    """A node's ``/metrics`` answer is too large, malformed or carries wrong values."""


@dataclass(frozen=True)
class NodeMetrics:
    """The samples of one ``/metrics`` answer the platform uses.

    Attributes
    ----------
    values : dict
        Short name (a key of :data:`GAUGES`) to value; a metric the node did not send is
        absent.
    missed : dict
        Validator name to its missed-proposal count.
    """

    values: dict[str, float] = field(default_factory=dict)
    missed: dict[str, float] = field(default_factory=dict)


def _bounded(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise MetricsError(f"the metrics answer is larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MetricsError("the metrics answer is not UTF-8 text") from None
    lines = text.split("\n")
    if len(lines) > MAX_LINES:
        raise MetricsError(f"the metrics answer has more than {MAX_LINES} lines")
    if any(len(line) > MAX_LINE for line in lines):
        raise MetricsError(f"the metrics answer has a line longer than {MAX_LINE} characters")
    if "\x00" in text:
        raise MetricsError("the metrics answer holds a NUL character")
    return text


def _used_lines(text: str) -> str:
    """The sample lines of the metrics kept (the text format has one sample per line; a
    label value's newline is escaped), comments and other metrics left out."""
    kept = []
    for line in text.split("\n"):
        m = _NAME.match(line)
        if m is not None and m.group() in _WANTED:
            kept.append(line)
            if len(kept) > 2 * (len(_BY_METRIC) + MAX_LABELLED):
                raise MetricsError("the metrics answer repeats its samples")
    return "\n".join(kept) + "\n"


def parse_metrics(raw: bytes) -> NodeMetrics:
    """Read a ``/metrics`` answer (Prometheus text format 0.0.4).

    Raises
    ------
    MetricsError
        Oversized, not UTF-8, malformed, a kept sample that is not a finite number (or is
        negative), a kept metric given twice, or too many missed-proposal label sets.
    """
    text = _used_lines(_bounded(raw))
    values: dict[str, float] = {}
    missed: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = sample.name
                if name not in _BY_METRIC and name != MISSED:
                    continue
                value = sample.value
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise MetricsError(f"{name}: not a number")
                v = float(value)
                if not math.isfinite(v) or v < 0:
                    raise MetricsError(f"{name}: {value!r} is not a finite count")
                if name == MISSED:
                    validator = sample.labels.get("validator")
                    if not isinstance(validator, str) or not validator or len(validator) > 128:
                        raise MetricsError(f"{name}: a validator label is required")
                    if validator in missed:
                        raise MetricsError(f"{name}: validator {validator[:40]!r} given twice")
                    if len(missed) >= MAX_LABELLED:
                        raise MetricsError(f"{name}: more than {MAX_LABELLED} validators")
                    missed[validator] = v
                    continue
                if sample.labels:
                    raise MetricsError(f"{name}: unexpected labels")
                key = _BY_METRIC[name]
                if key in values:
                    raise MetricsError(f"{name}: given twice")
                values[key] = v
    except MetricsError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise MetricsError(f"the metrics text is malformed: {exc}") from None
    return NodeMetrics(values, missed)


__all__ = ["GAUGES", "MAX_BYTES", "MISSED", "MetricsError", "NodeMetrics", "parse_metrics"]
