"""The vault's routes in the node API: store and fetch encrypted objects by digest.

=====================================  ====================================================
``PUT /vault/objects/{digest}``        store an object (streamed; checked against its digest
                                       as it arrives; a member stores only its own objects)
``GET /vault/objects/{digest}``        the object's bytes (its owner, grantees, nodes)
``GET /vault/status``                  objects held, bytes, replication backlog, last scrub
``POST /vault/scrub``                  re-hash everything and repair from replicas
=====================================  ====================================================

Every vault request is a member's signed request (:mod:`chain.api.auth`), whatever the
app's ``require_auth``: the node must know who stores and who reads. An upload signs the
SM3 of its body in advance (header ``X-Rongxin-Body-SM3``), so the node checks the
signature before it takes a byte and the body against the signed digest at its end. A
body over the node's cap is refused from its ``Content-Length`` (413) or as it streams;
an upload that is cut short, altered or not the object named leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect

from chain.api.app import _fail, api_of, authenticate, parse_digest
from chain.api.auth import BODY_SM3_HEADER
from chain.crypto.sm3 import SM3
from chain.errors import AuthError, VaultError
from chain.types import Certificate
from chain.vault.service import VaultService

router = APIRouter(prefix="/vault", tags=["vault"])

CHUNK = 1 << 20


def _vault(request: Request) -> VaultService:
    vault: VaultService | None = getattr(api_of(request.app).service, "vault", None)
    if vault is None:
        raise _fail(404, "this node keeps no vault ([vault] enable = false)")
    return vault


async def _signed(request: Request, body_sm3: bytes | None = None) -> Certificate:
    """The member who signed the request (always required for the vault)."""
    return await authenticate(request, api_of(request.app), body_sm3)


def _declared_sm3(request: Request) -> bytes:
    value = request.headers.get(BODY_SM3_HEADER)
    if value is None:
        raise _fail(400, f"an upload declares the SM3 of its body in {BODY_SM3_HEADER} (and signs it)")
    return parse_digest(value, BODY_SM3_HEADER)


@router.put(
    "/objects/{digest}",
    status_code=201,
    responses={
        201: {"description": "stored (or already held)"},
        400: {"description": "not the object named: malformed, truncated, altered"},
        403: {"description": "a member storing another member's object"},
        413: {"description": "over the node's object size cap"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_object(request: Request, digest: str) -> Response:
    """Store an object: 117-byte header (whose SM3 is ``digest``) and SM4-GCM body."""
    vault = _vault(request)
    raw = parse_digest(digest, "an object digest")
    declared = _declared_sm3(request)
    cert = await _signed(request, declared)
    upload = vault.upload(raw, cert)
    seen = SM3()
    try:
        async for chunk in request.stream():
            if chunk:
                seen.update(chunk)
                upload.feed(chunk)
        if seen.digest() != declared:
            raise VaultError("the body does not hash to the SM3 its signature declares", 400)
        header = await asyncio.to_thread(upload.commit)
    except VaultError as exc:
        upload.abort()
        raise _fail(exc.status, str(exc)) from None
    except (ClientDisconnect, asyncio.CancelledError):
        upload.abort()
        raise
    except BaseException:
        upload.abort()
        raise
    await asyncio.to_thread(vault.accepted, header, cert)
    return JSONResponse({"stored": True, "object": header.to_json()}, status_code=201)


def _chunks(fh: Any) -> Iterator[bytes]:
    try:
        while piece := fh.read(CHUNK):
            yield piece
    finally:
        fh.close()


@router.get("/objects/{digest}", response_class=Response)
async def get_object(request: Request, digest: str) -> Response:
    """The object's bytes, streamed (its owner, members granted on chain, and nodes)."""
    vault = _vault(request)
    raw = parse_digest(digest, "an object digest")
    cert = await _signed(request)
    try:
        vault.check_read(raw, cert)
        fh = vault.store.open(raw)
    except AuthError as exc:
        raise _fail(exc.status, str(exc)) from None
    except VaultError as exc:
        raise _fail(exc.status, str(exc)) from None
    size = vault.store.size(raw)
    headers = {} if size is None else {"content-length": str(size)}
    return StreamingResponse(_chunks(fh), media_type="application/octet-stream", headers=headers)


@router.get("/status")
async def vault_status(request: Request) -> dict[str, Any]:
    """Objects held and their bytes, replication backlog per target, the last scrub."""
    vault = _vault(request)
    await _signed(request)
    return await asyncio.to_thread(vault.status)


@router.post("/scrub")
async def start_scrub(request: Request) -> dict[str, Any]:
    """Re-hash every object held or expected; repair damaged and missing ones from the
    replicas. Answers with the report when it is done (409 while another runs)."""
    vault = _vault(request)
    cert = await _signed(request)
    if not vault.may_scrub(cert):
        raise _fail(403, "this member may not start a scrub on this node ([vault] operators)")
    try:
        report = await asyncio.to_thread(vault.scrub, vault.expected())  # chain state read on the loop
    except VaultError as exc:
        raise _fail(exc.status, str(exc)) from None
    return report.to_json()


__all__ = ["router"]
