"""Structured logs of a node: one JSON object per line, and the operations audit log.

The node's log (``data_dir/node.log`` when started by ``rongxin chain up``) is JSON lines
with time, level, logger, message and the node's name. Nothing secret is logged: keys
and passwords never reach a log call (peers appear by certificate subject, transactions
by id).

The operations audit log (``data_dir/ops-audit.jsonl``) records what an operator must be
able to answer for: node starts and stops (with the config digest), membership and
configuration changes made through this node. Each line is appended and flushed with
``fsync``.

Examples
--------
>>> import io, json, logging
>>> buf = io.StringIO()
>>> h = logging.StreamHandler(buf); h.setFormatter(JsonFormatter("node-0"))
>>> lg = logging.getLogger("doctest.logs"); lg.addHandler(h); lg.propagate = False
>>> lg.warning("peer %s silent", "node-1")
>>> json.loads(buf.getvalue())["msg"]
'peer node-1 silent'
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object per line."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "node": self.node,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(node: str, level: str = "info", stream: Any = None) -> None:
    """Send the ``rongxin`` loggers to ``stream`` (stderr) as JSON lines at ``level``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(node))
    root = logging.getLogger("rongxin")
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = [handler]
        lg.setLevel("WARNING")
        lg.propagate = False


class OpsAudit:
    """Append-only JSON-lines log of operator-relevant events (fsynced per line)."""

    def __init__(self, path: str | os.PathLike[str], node: str) -> None:
        self.path = Path(path)
        self.node = node
        self._lock = threading.Lock()

    def record(self, event: str, **fields: Any) -> None:
        """Append one event (``fields`` must be JSON-serialisable and free of secrets)."""
        doc = {"ts_ms": int(time.time() * 1000), "node": self.node, "event": event, **fields}
        line = json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """Every event recorded so far (a torn last line is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
