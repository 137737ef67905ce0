"""Per-query results kept in a JSONL file, so that a long benchmark run survives being stopped.

Each line is one finished measurement (a query of the robustness run, or an unrelated
clip of the false-positive pool) with the key that names it and the configuration key
of the run it belongs to. A rerun with the same configuration reads the lines, skips the
keys already measured and appends the others; a line cut short by a kill (the last one)
or a line of another configuration is ignored. The pure core (:func:`config_key`,
:func:`parse_lines`) does no I/O; :class:`ResultLog` reads and appends the file.

Examples
--------
>>> key = config_key({"seed": 1, "works": ["a", "b"]})
>>> lines = [json.dumps({"config": key, "key": "q1", "ok": True}), '{"config": "' + key + '", "ke']
>>> sorted(parse_lines(lines, key))
['q1']
>>> parse_lines(lines, config_key({"seed": 2}))
{}
>>> round(upper_bound(0, 30000), 6), round(upper_bound(1, 30000), 6)
(0.0001, 0.000158)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def config_key(config: Mapping[str, Any]) -> str:
    """A short digest of ``config`` (JSON-serialisable; key order does not matter)."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_lines(lines: Iterable[str], config: str) -> dict[str, dict[str, Any]]:
    """The records of ``config`` in ``lines``, by key (the last record of a key wins).

    Blank, truncated or malformed lines, records without a string ``key`` and records of
    other configurations are skipped.
    """
    out: dict[str, dict[str, Any]] = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("config") == config and isinstance(record.get("key"), str):
            out[record["key"]] = record
    return out


def upper_bound(false: int, pairs: int) -> float:
    """One-sided 95 % upper bound of a rate after ``false`` events in ``pairs`` trials (Poisson).

    Zero events give the rule of three (3 / pairs, to within 0.2 %); ``pairs`` 0 gives 1.
    """
    if pairs <= 0:
        return 1.0
    if false < 0 or false > pairs:
        raise ValueError(f"{false} events in {pairs} trials")
    if false == 0:
        return 3.0 / pairs
    from scipy.stats import chi2

    return min(1.0, float(chi2.ppf(0.95, 2 * (false + 1))) / 2 / pairs)


class ResultLog:
    """Finished measurements of one configuration, appended to ``path`` one JSON line each.

    Parameters
    ----------
    path : Path
        The JSONL file (created with its directory when missing; shared by configurations).
    config : Mapping
        What the measurements depend on (corpus, seeds, lengths, thresholds …): records of
        another configuration are neither read nor overwritten.
    code : str, optional
        The code that measures (a commit), written into every record appended, so that a
        run resumed after the code changed says which records came from which code
        (:meth:`codes`).
    """

    def __init__(self, path: Path, config: Mapping[str, Any], code: str = "") -> None:
        self.path = path
        self.code = code
        self.config = config_key(config)
        self.done: dict[str, dict[str, Any]] = {}
        if path.exists():
            with path.open(encoding="utf-8", errors="replace") as f:
                self.done = parse_lines(f, self.config)

    def __contains__(self, key: str) -> bool:
        return key in self.done

    def get(self, key: str) -> dict[str, Any] | None:
        """The record measured for ``key``, if any."""
        return self.done.get(key)

    def append(self, key: str, record: Mapping[str, Any]) -> None:
        """Keep ``record`` under ``key`` (flushed to disk before returning)."""
        full = {**record, "config": self.config, "key": key}
        if self.code:
            full["code"] = self.code
        line = json.dumps(full, default=str, allow_nan=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            if f.tell() and not _ends_with_newline(self.path):
                f.write("\n")  # a line cut short by a kill stays a line of its own
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[key] = full

    def codes(self) -> dict[str, int]:
        """How many of the records kept come from each code (``""``: not recorded)."""
        out: dict[str, int] = {}
        for record in self.done.values():
            code = str(record.get("code", ""))
            out[code] = out.get(code, 0) + 1
        return out


def current_code(root: Path) -> str:
    """The commit checked out at ``root`` (``+changes`` when the tree differs from it), or ``""``."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+changes" if dirty else "")


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


__all__ = ["ResultLog", "config_key", "current_code", "parse_lines", "upper_bound"]
