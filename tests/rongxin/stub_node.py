"""A stand-in for ``rongxin node run`` in the tests of ``rongxin chain up|down|status``.

``python -m tests.rongxin.stub_node node run --config <node.toml>`` loads the node's
configuration and serves ``GET /status`` on its API address until SIGTERM. The height it
reports is ``10 +`` the number in the node's name (``node-3`` → 13). Environment knobs:

* ``STUB_NODE_FAIL=<name>`` — that node exits with status 3 at start, saying why;
* ``STUB_NODE_IGNORE_TERM=<name>`` — that node ignores SIGTERM (only SIGKILL stops it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chain.node.config import load_config


def main(argv: list[str]) -> int:
    if argv[:3] != ["node", "run", "--config"] or len(argv) != 4:
        print(f"usage: stub_node node run --config FILE (got {argv})", file=sys.stderr)
        return 2
    cfg = load_config(argv[3])
    name = cfg.node.name
    if os.environ.get("STUB_NODE_FAIL") == name:
        print(f"stub {name}: failing at start as asked", flush=True)
        return 3
    digits = re.findall(r"\d+", name)
    status = {
        "node": name,
        "chain_id": "stub",
        "node_id": name,
        "role": "observer" if name.startswith("observer") else "consensus",
        "height": 10 + int(digits[-1]) if digits else 10,
        "round": 0,
        "head_hash": "00" * 32,
        "peers": 3,
        "voting": not name.startswith("observer"),
        "catching_up": False,
    }
    body = json.dumps(status).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/status":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if cfg.api.listen.is_ipv6 else socket.AF_INET

    server = Server((cfg.api.listen.host, cfg.api.listen.port), Handler)
    if os.environ.get("STUB_NODE_IGNORE_TERM") == name:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"stub {name}: serving /status on {cfg.api.listen}", flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    print(f"stub {name}: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
