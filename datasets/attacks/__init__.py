"""Seeded attack generators for images, audio and video.

Every attack is a *chain* of steps. A step names a transform and may fix some of its
parameters; the rest are drawn from a generator seeded by ``(seed, step index, name)``,
so the same chain and seed always give the same parameters. The applied chain comes back
as a :class:`Truth`: the source id, every step with *all* its parameters, and for audio
and video the mapping of query time to source time.

Submodules: :mod:`datasets.attacks.image`, :mod:`datasets.attacks.audio`,
:mod:`datasets.attacks.video`, and :mod:`datasets.attacks.generate` which samples whole
attack sets from a corpus manifest.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from datasets.errors import AttackError


@dataclass(frozen=True)
class Step:
    """One transform of a chain.

    Attributes
    ----------
    op : str
        Transform name, e.g. ``"jpeg"`` or ``"speed"``.
    params : dict
        Parameters fixed by the caller; missing ones are sampled from the seed.
    """

    op: str
    params: dict[str, Any] = field(default_factory=dict)


ChainSpec = Sequence[str | Step | tuple[str, Mapping[str, Any]] | Mapping[str, Any]]


def normalize_chain(chain: ChainSpec | str) -> list[Step]:
    """Turn the accepted chain spellings into a list of :class:`Step`.

    Accepted: ``"jpeg"``, ``"jpeg+rotate"``, ``["jpeg", ("rotate", {"angle": 10})]``,
    ``[{"op": "jpeg", "params": {"quality": 30}}]`` or :class:`Step` objects.

    Examples
    --------
    >>> normalize_chain("jpeg+flip")
    [Step(op='jpeg', params={}), Step(op='flip', params={})]
    >>> normalize_chain([("rotate", {"angle": 10})])[0].params
    {'angle': 10}
    >>> normalize_chain([3])
    Traceback (most recent call last):
    ...
    datasets.errors.AttackError: chain step 0: expected a name, (name, params), {"op", "params"} or Step, ...
    """
    if isinstance(chain, str):
        chain = [c for c in chain.split("+") if c]
    steps: list[Step] = []
    for i, item in enumerate(chain):
        if isinstance(item, Step):
            steps.append(Step(item.op, dict(item.params)))
        elif isinstance(item, str):
            steps.append(Step(item))
        elif (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], Mapping)
        ):
            steps.append(Step(item[0], dict(item[1])))
        elif isinstance(item, Mapping) and isinstance(item.get("op"), str):
            steps.append(Step(item["op"], dict(item.get("params") or {})))
        else:
            got = type(item).__name__
            raise AttackError(
                f'chain step {i}: expected a name, (name, params), {{"op", "params"}} or Step, got {got}'
            )
    return steps


def step_rng(seed: int, index: int, op: str) -> random.Random:
    """The parameter generator of step ``index`` of a chain run with ``seed``.

    Examples
    --------
    >>> step_rng(1, 0, "jpeg").random() == step_rng(1, 0, "jpeg").random()
    True
    """
    return random.Random(f"rongxin-attack/{seed}/{index}/{op}")


def np_rng(seed: int, index: int, op: str) -> np.random.Generator:
    """A numpy generator for step ``index`` (noise samples), seeded like :func:`step_rng`."""
    return np.random.default_rng([seed & 0xFFFFFFFF, index, sum(map(ord, op))])


def resolve(
    op: str, given: Mapping[str, Any], defaults: Mapping[str, Any], allowed: Iterable[str]
) -> dict[str, Any]:
    """Merge caller parameters over sampled defaults, rejecting unknown names."""
    unknown = set(given) - set(allowed)
    if unknown:
        raise AttackError(f"{op}: unknown parameter(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return {**defaults, **given}


def check_range(op: str, name: str, value: Any, lo: float, hi: float) -> float:
    """``value`` as a float in ``[lo, hi]``, or :class:`AttackError`.

    Examples
    --------
    >>> check_range("jpeg", "quality", 50, 1, 100)
    50.0
    >>> check_range("jpeg", "quality", 0, 1, 100)
    Traceback (most recent call last):
    ...
    datasets.errors.AttackError: jpeg: quality=0 is outside [1, 100]
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise AttackError(f"{op}: {name} must be a number, got {value!r}") from None
    if not (lo <= v <= hi) or v != v:
        raise AttackError(f"{op}: {name}={value!r} is outside [{lo:g}, {hi:g}]")
    return v


def check_choice(op: str, name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else :class:`AttackError`."""
    if value not in choices:
        raise AttackError(f"{op}: {name} must be one of {list(choices)}, got {value!r}")
    return str(value)


@dataclass
class Truth:
    """Ground truth of one attacked query.

    Attributes
    ----------
    kind : {"image", "audio", "video"}
    source_id : str or None
        Manifest id of the source, when known.
    seed : int
        Seed the chain was run with.
    chain : list of dict
        ``{"op": name, "params": {...}}`` for every step, with all parameters resolved.
    time_map : list of dict or None
        For audio and video: segments ``{"query_start", "query_end", "source_start",
        "source_end"}`` in seconds; inside a segment the mapping is linear.
    output : dict
        Facts about the output (size, duration, sample rate, file digest once written).
    """

    kind: str
    source_id: str | None
    seed: int
    chain: list[dict[str, Any]] = field(default_factory=list)
    time_map: list[dict[str, float]] | None = None
    output: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict."""
        return asdict(self)

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def source_time(self, t: float) -> float | None:
        """Source time of query time ``t``, or None if ``t`` maps to no source time.

        Examples
        --------
        >>> tr = Truth("audio", "a", 0, time_map=[{"query_start": 0.0, "query_end": 10.0,
        ...     "source_start": 30.0, "source_end": 50.0}])
        >>> tr.source_time(5.0)
        40.0
        >>> tr.source_time(11.0) is None
        True
        """
        for seg in self.time_map or []:
            q0, q1 = seg["query_start"], seg["query_end"]
            if q0 <= t <= q1 and q1 > q0:
                s0, s1 = seg["source_start"], seg["source_end"]
                return s0 + (t - q0) * (s1 - s0) / (q1 - q0)
        return None


def identity_map(duration: float) -> list[dict[str, float]]:
    """The time map of an unmodified signal of ``duration`` seconds."""
    return [{"query_start": 0.0, "query_end": duration, "source_start": 0.0, "source_end": duration}]


def map_excerpt(segments: list[dict[str, float]], start: float, length: float) -> list[dict[str, float]]:
    """Time map after cutting query time ``[start, start + length)`` and shifting it to 0.

    Examples
    --------
    >>> map_excerpt(identity_map(60.0), 10.0, 5.0)
    [{'query_start': 0.0, 'query_end': 5.0, 'source_start': 10.0, 'source_end': 15.0}]
    """
    out = []
    end = start + length
    for seg in segments:
        q0, q1, s0, s1 = seg["query_start"], seg["query_end"], seg["source_start"], seg["source_end"]
        a, b = max(q0, start), min(q1, end)
        if b <= a or q1 <= q0:
            continue
        slope = (s1 - s0) / (q1 - q0)
        out.append(
            {
                "query_start": round(a - start, 6),
                "query_end": round(b - start, 6),
                "source_start": round(s0 + (a - q0) * slope, 6),
                "source_end": round(s0 + (b - q0) * slope, 6),
            }
        )
    return out


def map_speed(segments: list[dict[str, float]], factor: float) -> list[dict[str, float]]:
    """Time map after playing ``factor`` times faster (query times divide by ``factor``).

    Examples
    --------
    >>> map_speed(identity_map(10.0), 2.0)[0]["query_end"]
    5.0
    """
    return [
        {
            "query_start": round(s["query_start"] / factor, 6),
            "query_end": round(s["query_end"] / factor, 6),
            "source_start": s["source_start"],
            "source_end": s["source_end"],
        }
        for s in segments
    ]


__all__ = [
    "ChainSpec",
    "Step",
    "Truth",
    "check_choice",
    "check_range",
    "identity_map",
    "map_excerpt",
    "map_speed",
    "normalize_chain",
    "resolve",
    "step_rng",
]
