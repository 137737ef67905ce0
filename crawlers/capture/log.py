"""The timestamped capture log: what the capture did, when, in order."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utc_iso(t: float) -> str:
    """``t`` (seconds since the epoch) as an ISO 8601 UTC time with milliseconds."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class CaptureLog:
    """Entries ``{"time", "elapsed_s", "event", ...}``: wall clock and seconds since the start.

    The wall clock is what a reader compares with other records; the elapsed seconds come
    from a monotonic clock and cannot jump when the system clock is changed mid-capture.
    """

    entries: list[dict[str, Any]] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic)

    def add(self, event: str, **detail: Any) -> None:
        """Append an event with its details (JSON-serializable values)."""
        self.entries.append(
            {
                "time": utc_iso(time.time()),
                "elapsed_s": round(time.monotonic() - self._t0, 3),
                "event": event,
                **detail,
            }
        )

    def to_jsonl(self) -> bytes:
        """The log as JSON lines (UTF-8)."""
        return "".join(
            json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in self.entries
        ).encode()
