"""The ``[ops]`` section of ``platform.toml``: how often nodes are sampled, how many samples
are kept, and the alert rules' thresholds (:mod:`rongxin.platform.alerts`).

::

    [ops]
    sample_interval_s = 10      # ask every node for /metrics this often (0: never)
    keep_samples = 720          # per node: 720 x 10 s = two hours of charts
    down_after_s = 60           # RongxinNodeDown
    stalled_after_s = 300       # RongxinHeightStalled
    empty_blocks = false        # true when the chain makes heartbeat blocks
    lag_blocks = 10             # RongxinSyncLag
    mempool_full_ratio = 0.9    # RongxinMempoolFull
    missed_proposals = 3        # RongxinMissedProposals: more than this ...
    missed_window_s = 600       # ... within this window
    verify_busy_ratio = 0.9     # RongxinSignatureCheckingSaturated: a core's share ...
    verify_busy_window_s = 300  # ... over this window
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from rongxin.ops.templates import MISSED_PROPOSALS, SYNC_LAG_BLOCKS, VERIFY_BUSY_RATIO, VERIFY_BUSY_WINDOW_S


@dataclass(frozen=True)
class OpsConfig:
    """The ``[ops]`` section of ``platform.toml``: sampling and alert thresholds.

    Attributes
    ----------
    sample_interval_s : float
        Seconds between two asks of every node's ``/metrics`` (0 turns sampling off).
    keep_samples : int
        Samples kept per node (memory is bounded by this; 720 at 10 s is two hours).
    down_after_s, stalled_after_s : float
        See the rules above.
    empty_blocks : bool
        The network makes heartbeat blocks (``[chain] empty_blocks``): a height that stops
        growing is an alert even with nothing pending.
    lag_blocks : int
    mempool_full_ratio : float
    missed_proposals : int
    missed_window_s : float
    verify_busy_ratio : float
        Share of one core (0-1] the node's signature checks may take, averaged over
        ``verify_busy_window_s``, before ``RongxinSignatureCheckingSaturated``.
    verify_busy_window_s : float
    """

    sample_interval_s: float = 10.0
    keep_samples: int = 720
    down_after_s: float = 60.0
    stalled_after_s: float = 300.0
    empty_blocks: bool = False
    lag_blocks: int = SYNC_LAG_BLOCKS
    mempool_full_ratio: float = 0.9
    missed_proposals: int = MISSED_PROPOSALS
    missed_window_s: float = 600.0
    verify_busy_ratio: float = VERIFY_BUSY_RATIO
    verify_busy_window_s: float = float(VERIFY_BUSY_WINDOW_S)


def ops_config(section: dict[str, Any], where: str) -> OpsConfig:
    """An :class:`OpsConfig` from a parsed ``[ops]`` table, or ``ValueError`` naming the key.

    Examples
    --------
    >>> ops_config({"down_after_s": 30}, "platform.toml").down_after_s
    30.0
    >>> ops_config({"lag_blocks": -1}, "platform.toml")
    Traceback (most recent call last):
    ...
    ValueError: platform.toml: [ops] lag_blocks: a positive number is required
    """
    known = {f.name: f for f in fields(OpsConfig)}
    values: dict[str, Any] = {}
    for key, value in section.items():
        f = known.get(key)
        if f is None:
            raise ValueError(f"{where}: [ops] {key}: unknown key")
        if f.type == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{where}: [ops] {key}: true or false")
            values[key] = value
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"{where}: [ops] {key}: a positive number is required")
        zero_ok = key == "sample_interval_s"
        if value < 0 or (value == 0 and not zero_ok) or value != value or value > 10**9:
            raise ValueError(f"{where}: [ops] {key}: a positive number is required")
        if f.type == "int":
            if not isinstance(value, int):
                raise ValueError(f"{where}: [ops] {key}: a whole number is required")
            values[key] = value
        else:
            values[key] = float(value)
    if values.get("keep_samples", 2) < 2:
        raise ValueError(f"{where}: [ops] keep_samples: at least 2")
    if values.get("keep_samples", 0) > 100_000:
        raise ValueError(f"{where}: [ops] keep_samples: at most 100000")
    for ratio in ("mempool_full_ratio", "verify_busy_ratio"):
        if not 0 < values.get(ratio, 0.5) <= 1:
            raise ValueError(f"{where}: [ops] {ratio}: between 0 and 1")
    return OpsConfig(**values)


__all__ = ["OpsConfig", "ops_config"]
