"""An agency as a network service: one HTTP endpoint that answers signed protocol messages.

``POST /privacy/v1/messages`` takes one signed message (:mod:`privacy.protocol`: a query, a
view or a reveal) as its body and answers with the agency's signed message
(``application/cbor``). The HTTP request itself is authenticated as the node API's reads
are (:mod:`chain.api.auth`: the ``X-Rongxin-*`` headers, an SM2 signature over method,
path, body hash, time and nonce, the nonce remembered in the time window): the signing
certificate must be the one inside the message. Whether that certificate may query —
certified by the consortium root for the role it claims (:class:`privacy.identity.Trust`)
— the agency decides, and answers a signed, logged refusal when it may not.
``GET /health`` says who the agency is.

Errors are ``{"error": reason}``: 400 for a malformed message, 401 for an unauthenticated
or forged request, 413 for a body over :data:`MAX_BODY_BYTES`. A policy refusal is not an
HTTP error: it is the agency's signed refusal, with status 200.

Payloads are Paillier ciphertexts of masked values, seeds that unmask only a sum, and the
query text; run the service behind TLS (a reverse proxy) where the query text itself is
confidential.

Examples
--------
>>> from privacy.service import MAX_BODY_BYTES
>>> MAX_BODY_BYTES // (1024 * 1024)
64
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from chain.api.auth import ReplayCache, verify_request
from chain.errors import AuthError
from chain.types import Certificate
from privacy.agency import AgencyServer
from privacy.errors import CiphertextError, IdentityError
from privacy.protocol import MAX_MESSAGE, SERVICE_PATH, open_signed

log = logging.getLogger(__name__)

MAX_BODY_BYTES = MAX_MESSAGE
"""Largest request body accepted."""
PATH = SERVICE_PATH


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def create_app(server: AgencyServer, chain_id: str) -> FastAPI:
    """The agency's ASGI app (serve it with uvicorn).

    Parameters
    ----------
    server : AgencyServer
        The agency.
    chain_id : str
        The consortium's chain id (bound into every request signature).
    """
    app = FastAPI(title=f"Rongxin agency {server.name}", docs_url=None, redoc_url=None)
    replay = ReplayCache()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"agency": server.name, "cert_id": server.certificate.cert_id.hex()}

    @app.post(PATH)
    async def message(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            return _error(413, f"a message is at most {MAX_BODY_BYTES} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return _error(413, f"a message is at most {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            signed = open_signed(body, "query", "view", "reveal", "recover", "mpc-run")
            # the transport signature must come from the message's own signer; whether that
            # signer may query is the agency's decision (a signed, logged refusal if not)
            verify_request(
                "POST",
                PATH,
                body,
                request.headers,
                chain_id=chain_id,
                member=lambda cert_id, _now: _same(cert_id, signed.cert),
                replay=replay,
            )
            t0 = time.perf_counter()
            answer = await run_in_threadpool(server.handle, body)
            log.info("%s %s answered in %.3f s", server.name, signed.msg["type"], time.perf_counter() - t0)
        except AuthError as exc:
            return _error(exc.status, str(exc))
        except IdentityError as exc:
            return _error(401, str(exc))
        except CiphertextError as exc:
            return _error(400, str(exc))
        return Response(answer, media_type="application/cbor")

    return app


def _same(cert_id: bytes, cert: Certificate) -> Certificate:
    if cert_id != cert.cert_id:
        raise AuthError("the request is signed by another certificate than its message", 401)
    return cert
