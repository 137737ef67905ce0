"""The block explorer: head and production chart, blocks, transactions, search, anchored
digests with their receipts, validators, nodes online, and the receipt checker."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from chain.client.common import AnchoredDigest
from chain.errors import ChainError
from chain.receipt import Receipt, verify_anchored_digest, verify_receipt
from rongxin.platform.accounts import Session
from rongxin.platform.chainview import ChainUnavailable, classify_query, probe_nodes
from rongxin.platform.charts import production_svg
from rongxin.platform.web import audit, platform_of, redirect, render, require

router = APIRouter(prefix="/explorer")
VIEW = require("explorer.view")
VERIFY = require("receipt.verify")
PAGE = 20
BLOCK_TXS = 500
"""Transactions listed on a block's page (the count shows them all)."""
MAX_RECEIPT_UPLOAD = 4 * 1024 * 1024


def _unavailable(request: Request, exc: Exception) -> Response:
    return render(request, "message.html", status=503, title="Explorer", message=str(exc))


def _not_found(request: Request, what: str) -> Response:
    return render(request, "message.html", status=404, title="Not found", message=what)


@router.get("", response_class=HTMLResponse)
def overview(
    request: Request, session: Annotated[Session, Depends(VIEW)], before: int | None = None
) -> Response:
    """The head, the latest blocks (paged by ``before``) and block production over time."""
    chain = platform_of(request).chain
    try:
        status = chain.status()
        head = int(status["height"])
        top = head if before is None else max(0, min(head, before - 1))
        blocks = chain.blocks(top, PAGE)
        chart = (
            production_svg(chain.production(head), label="transactions per interval")
            if before is None
            else ""
        )
    except ChainUnavailable as exc:
        return _unavailable(request, exc)
    older = blocks[-1]["height"] if blocks and blocks[-1]["height"] > 1 else None
    newer = top + PAGE + 1 if top < head else None
    return render(
        request, "explorer.html", status_doc=status, blocks=blocks, chart=chart, older=older, newer=newer
    )


@router.get("/blocks/{height}", response_class=HTMLResponse)
def block(request: Request, height: int, session: Annotated[Session, Depends(VIEW)]) -> Response:
    """One block: header, quorum certificate, transactions."""
    try:
        doc = platform_of(request).chain.block(height)
    except LookupError:
        return _not_found(request, f"block {height}")
    except ChainUnavailable as exc:
        return _unavailable(request, exc)
    txs = doc.get("txs", [])
    return render(request, "block.html", block=doc, txs=txs[:BLOCK_TXS], tx_count=len(txs))


@router.get("/txs/{tx_id}", response_class=HTMLResponse)
def transaction(request: Request, tx_id: str, session: Annotated[Session, Depends(VIEW)]) -> Response:
    """One transaction, its payload and result."""
    kind, value = classify_query(tx_id)
    if kind != "hex32":
        return _not_found(request, tx_id)
    try:
        doc = platform_of(request).chain.transaction(value)
    except LookupError:
        return _not_found(request, f"transaction {value}")
    except ChainUnavailable as exc:
        return _unavailable(request, exc)
    payload = json.dumps(doc.get("tx", {}).get("payload", {}), indent=2, ensure_ascii=False)
    return render(request, "tx.html", tx=doc, payload=payload)


@router.get("/anchors/{digest}", response_class=HTMLResponse)
def anchor(request: Request, digest: str, session: Annotated[Session, Depends(VIEW)]) -> Response:
    """How a digest was anchored; the receipt, verified against the genesis."""
    kind, value = classify_query(digest)
    if kind != "hex32":
        return _not_found(request, digest)
    p = platform_of(request)
    try:
        found = p.chain.anchor(bytes.fromhex(value))
        info = found.receipt.verify(p.chain.trusted_genesis())
    except LookupError:
        return _not_found(request, f"anchored digest {value}")
    except (ChainUnavailable, ChainError) as exc:
        return _unavailable(request, exc)
    return render(request, "anchor.html", digest=value, found=found, info=info)


def _anchored(request: Request, digest: str) -> AnchoredDigest | Response:
    """The verified anchor of ``digest``, or the page that says why there is none."""
    kind, value = classify_query(digest)
    if kind != "hex32":
        return _not_found(request, digest)
    try:
        return platform_of(request).chain.anchor(bytes.fromhex(value))
    except LookupError:
        return _not_found(request, f"anchored digest {value}")
    except ChainUnavailable as exc:
        return _unavailable(request, exc)


def _download(data: bytes, media_type: str, filename: str) -> Response:
    return Response(
        data, media_type=media_type, headers={"content-disposition": f'attachment; filename="{filename}"'}
    )


@router.get("/anchors/{digest}/receipt")
def anchor_receipt(request: Request, digest: str, session: Annotated[Session, Depends(VIEW)]) -> Response:
    """The receipt of the transaction that anchored ``digest`` (CBOR download)."""
    found = _anchored(request, digest)
    if isinstance(found, Response):
        return found
    return _download(found.receipt.to_bytes(), "application/cbor", f"{found.digest.hex()[:16]}.receipt.cbor")


@router.get("/anchors/{digest}/proof")
def anchor_proof(request: Request, digest: str, session: Annotated[Session, Depends(VIEW)]) -> Response:
    """The digest's place in its anchored batch, as ``rongxin works add --anchor`` writes it."""
    found = _anchored(request, digest)
    if isinstance(found, Response):
        return found
    doc = {"digest": found.digest.hex(), "index": found.index, "path": [p.hex() for p in found.path]}
    return _download(
        (json.dumps(doc) + "\n").encode(), "application/json", f"{found.digest.hex()[:16]}.proof.json"
    )


@router.get("/search")
def search(request: Request, session: Annotated[Session, Depends(VIEW)], q: str = "") -> Response:
    """A height, a block hash, a transaction id or an anchored digest: to its page."""
    audit(request, "explorer.search", q=q[:80])
    kind, value = classify_query(q)
    chain = platform_of(request).chain
    try:
        if kind == "height":
            chain.block(int(value))
            return redirect(f"/explorer/blocks/{value}")
        if kind == "hex32":
            try:
                return redirect(f"/explorer/blocks/{chain.block_by_hash(value)['height']}")
            except LookupError:
                pass
            try:
                chain.transaction(value)
                return redirect(f"/explorer/txs/{value}")
            except LookupError:
                pass
            chain.anchor(bytes.fromhex(value))
            return redirect(f"/explorer/anchors/{value}")
    except LookupError:
        pass
    except ChainUnavailable as exc:
        return _unavailable(request, exc)
    return render(request, "message.html", status=404, title="Search", message=q, not_found=True)


@router.get("/validators", response_class=HTMLResponse)
def validators(request: Request, session: Annotated[Session, Depends(VIEW)]) -> Response:
    """The validator set in force and its history by epoch."""
    try:
        doc = platform_of(request).chain.validators()
    except ChainUnavailable as exc:
        return _unavailable(request, exc)
    return render(request, "validators.html", doc=doc)


@router.get("/nodes", response_class=HTMLResponse)
def nodes(request: Request, session: Annotated[Session, Depends(VIEW)]) -> Response:
    """Each consortium node's heartbeat: online, height, head age, round, peers."""
    probes = probe_nodes(platform_of(request).config.nodes)
    return render(request, "nodes.html", probes=probes)


@router.get("/receipts", response_class=HTMLResponse)
def receipt_form(request: Request, session: Annotated[Session, Depends(VERIFY)]) -> Response:
    """The receipt checker's form."""
    return render(request, "receipt.html", result=None, error=None)


@router.post("/receipts")
async def receipt_check(request: Request, session: Annotated[Session, Depends(VERIFY)]) -> Response:
    """Verify an uploaded receipt against the genesis (and a digest's batch proof, if given)."""
    p = platform_of(request)
    form = await request.form()
    upload = form.get("receipt")
    proof_upload = form.get("proof")
    digest_text = str(form.get("digest", "")).strip().lower()
    error = None
    result = None
    try:
        if p.chain.genesis is None:
            raise ChainUnavailable("No node is configured: the explorer has nothing to read.")
        if not isinstance(upload, UploadFile):
            raise ValueError("choose a receipt file")
        data = await upload.read(MAX_RECEIPT_UPLOAD + 1)
        if len(data) > MAX_RECEIPT_UPLOAD:
            raise ValueError("the file is too large to be a receipt")
        receipt = Receipt.from_bytes(_receipt_bytes(data))
        if digest_text or (isinstance(proof_upload, UploadFile) and proof_upload.filename):
            digest, index, path = await _proof_of(digest_text, proof_upload)
            info = verify_anchored_digest(receipt, p.chain.genesis, digest, index, path)
        else:
            info = verify_receipt(receipt, p.chain.genesis)
        result = info
        audit(request, "receipt.verify", ok=True, tx_id=info.tx_id.hex(), height=info.height)
    except (ChainError, ChainUnavailable, ValueError) as exc:
        error = str(exc)
        audit(request, "receipt.verify", ok=False, reason=error[:200])
    status = 200 if error is None else 422
    return render(request, "receipt.html", status=status, result=result, error=error)


def _receipt_bytes(data: bytes) -> bytes:
    """CBOR bytes as uploaded, or the same written as hex text."""
    text = data.strip()
    if text and len(text) % 2 == 0 and all(c in b"0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text.decode())
    return data


async def _proof_of(digest_text: str, proof_upload: object) -> tuple[bytes, int, list[bytes]]:
    """The digest and its batch proof from the form (a proof file, or a digest alone)."""
    index, path = 0, []
    if isinstance(proof_upload, UploadFile) and proof_upload.filename:
        raw = await proof_upload.read(1024 * 1024 + 1)
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            index = doc["index"]
            path = [bytes.fromhex(h) for h in doc["path"]]
            digest_text = digest_text or str(doc["digest"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"the proof file is not a digest proof: {exc}") from None
        if not isinstance(index, int) or isinstance(index, bool) or index < 0 or len(path) > 64:
            raise ValueError("the proof file is not a digest proof: bad index or path")
    kind, value = classify_query(digest_text)
    if kind != "hex32":
        raise ValueError("the digest is 64 hexadecimal characters")
    return bytes.fromhex(value), index, path
