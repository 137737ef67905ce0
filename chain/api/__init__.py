"""The node's HTTP and WebSocket API: FastAPI app, signed requests, event streams.

* :func:`create_app` — the FastAPI app over a :class:`chain.node.service.NodeService`
  (``/status``, ``/blocks/{height}``, ``/receipts/{tx_id}``, ``POST /txs``,
  ``WS /events`` …; ``/docs`` lists them);
* :func:`sign_request`, :func:`verify_request` — the two sides of a member's signed
  request (:mod:`chain.api.auth`), which every read beyond ``/status`` and ``/health``
  needs.

FastAPI is imported only when :func:`create_app` is first used: a client that only signs
requests (:mod:`chain.client`) does not load it.

Examples
--------
>>> from chain.crypto import PrivateKey
>>> from chain.api import sign_request
>>> headers = sign_request(PrivateKey.generate(), b"\\x01" * 32, "GET", "/status", chain_id="c")
>>> len(headers["X-Rongxin-Signature"])
128
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.lazy import lazy_exports

if TYPE_CHECKING:
    from chain.api.app import create_app
    from chain.api.auth import ReplayCache, sign_request, verify_request

_LAZY: dict[str, str] = {
    "create_app": "chain.api.app",
    "ReplayCache": "chain.api.auth",
    "sign_request": "chain.api.auth",
    "verify_request": "chain.api.auth",
}

__all__ = ["ReplayCache", "create_app", "sign_request", "verify_request"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
