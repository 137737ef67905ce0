"""A member's vault client: seal, store, register, grant and fetch encrypted objects.

Two layers:

* :class:`HttpObjects` — the node's ``/vault`` routes over HTTP, signed with the member's
  (or a node's) SM2 key: streamed uploads with a signed body digest, streamed downloads
  checked against the object's digest before they are kept.
* :class:`VaultClient` — what a member does: :meth:`~VaultClient.put` seals a file under
  a fresh key (nothing leaves the machine in clear), uploads it and registers it on chain
  with the key wrapped to the member itself; :meth:`~VaultClient.grant` wraps the key to
  another member's certificate key and records the grant on chain (its receipt proves
  it); :meth:`~VaultClient.get` reads the member's wrapped key from the chain (a proven
  state read), fetches the object and decrypts it, writing the file only if every check
  passed.

Examples
--------
With a node running (``rongxin node run``) and a :class:`~chain.client.NodeClient`::

    objects = HttpObjects(url, key, cert, genesis)
    vault = VaultClient(NodeClient(url, key, cert, genesis), objects, key, cert)
    stored = vault.put("evidence.wacz")
    vault.grant(stored.digest, court_cert_id)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import httpx

from chain import codec
from chain.api.auth import BODY_SM3_HEADER, sign_request
from chain.client.common import MAX_RESPONSE_BYTES, hex_bytes, node_answer, tls_context
from chain.contracts.membership import cert_key
from chain.crypto import PrivateKey
from chain.crypto.sm3 import sm3_file
from chain.errors import ClientError
from chain.receipt import Receipt
from chain.types import Certificate, Genesis
from chain.vault.contract import load_grant, load_object
from chain.vault.objects import ObjectChecker, ObjectHeader, open_file, seal_file, unwrap_key, wrap_key

CHUNK = 1 << 20


class ObjectTransport(Protocol):
    """How a member reaches a node's objects."""

    def put_file(self, digest: bytes, path: str | os.PathLike[str]) -> dict[str, Any]: ...

    def fetch(self, digest: bytes) -> Iterator[bytes]: ...


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while piece := fh.read(CHUNK):
            yield piece


class HttpObjects:
    """The ``/vault`` routes of one node, signed by one certificate holder.

    Parameters
    ----------
    url : str
        The node's API, ``http://host:port``.
    key, cert : PrivateKey, Certificate
        Who signs (a member, or a node pushing a replica).
    genesis : Genesis
        The chain (its id is in every signature).
    timeout_s : float
        Per-read timeout (an upload of gigabytes takes as long as it takes).
    """

    def __init__(
        self,
        url: str,
        key: PrivateKey,
        cert: Certificate,
        genesis: Genesis,
        *,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if key.public_key.to_bytes() != cert.public_key:
            raise ClientError("the key is not the certificate's key")
        self.url = url.rstrip("/")
        self.key = key
        self.cert = cert
        self.genesis = genesis
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout_s, transport=transport, verify=tls_context()
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> HttpObjects:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(
        self, method: str, path: str, body: bytes = b"", body_sm3: bytes | None = None
    ) -> dict[str, str]:
        return sign_request(
            self.key, self.cert.cert_id, method, path, body, chain_id=self.genesis.chain_id, body_sm3=body_sm3
        )

    @staticmethod
    def _refusal(response: httpx.Response) -> ClientError:
        """The error a refused streamed request stands for (its body read up to the limit)."""
        body = bytearray()
        for chunk in response.iter_bytes(CHUNK):
            body += chunk
            if len(body) >= MAX_RESPONSE_BYTES:
                break
        try:
            node_answer(response.status_code, bytes(body[:MAX_RESPONSE_BYTES]))
        except ClientError as exc:
            return exc
        return ClientError("the node refused the request", response.status_code)

    def _json(self, method: str, path: str) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, headers=self._headers(method, path))
        except httpx.TransportError as exc:
            raise ClientError(f"node {self.url} unreachable: {exc or type(exc).__name__}") from None
        return node_answer(response.status_code, response.content[:MAX_RESPONSE_BYTES])

    def put_file(self, digest: bytes, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Upload the object file ``path`` as ``digest`` (streamed); the node's answer."""
        p = Path(path)
        body_sm3 = sm3_file(p)
        target = f"/vault/objects/{digest.hex()}"
        headers = self._headers("PUT", target, body_sm3=body_sm3)
        headers[BODY_SM3_HEADER] = body_sm3.hex()
        headers["content-type"] = "application/octet-stream"
        headers["content-length"] = str(p.stat().st_size)
        try:
            response = self._http.put(target, content=_file_chunks(p), headers=headers)
        except httpx.TransportError as exc:
            raise ClientError(f"node {self.url} unreachable: {exc or type(exc).__name__}") from None
        return node_answer(response.status_code, response.content[:MAX_RESPONSE_BYTES])

    def fetch(self, digest: bytes) -> Iterator[bytes]:
        """The object's bytes as they arrive (unchecked: feed them to a checker)."""
        target = f"/vault/objects/{digest.hex()}"
        request = self._http.build_request("GET", target, headers=self._headers("GET", target))
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ClientError(f"node {self.url} unreachable: {exc or type(exc).__name__}") from None
        try:
            if response.status_code >= 400:
                raise self._refusal(response)
            try:
                yield from response.iter_bytes(CHUNK)
            except httpx.TransportError as exc:
                raise ClientError(
                    f"the download from {self.url} broke off: {exc or type(exc).__name__}"
                ) from None
        finally:
            response.close()

    def download(self, digest: bytes, dst: str | os.PathLike[str]) -> ObjectHeader:
        """Fetch the object into ``dst`` (atomically), checked against ``digest``."""
        from chain.crypto.atomic import atomic_output

        try:
            with atomic_output(dst, 0o600, overwrite=True) as out:
                header = _checked_copy(digest, self.fetch(digest), out)
        except OSError as exc:
            raise ClientError(f"cannot write {os.fspath(dst)!r}: {exc.strerror or exc}") from None
        return header

    def status(self) -> dict[str, Any]:
        """The node's ``/vault/status``."""
        return self._json("GET", "/vault/status")

    def scrub(self) -> dict[str, Any]:
        """Ask the node to scrub its vault now; the report."""
        return self._json("POST", "/vault/scrub")


def _checked_copy(digest: bytes, chunks: Iterator[bytes], out: BinaryIO) -> ObjectHeader:
    """Copy ``chunks`` into ``out``, refusing them unless they are the object ``digest``."""
    checker = ObjectChecker(digest)
    for chunk in chunks:
        checker.feed(chunk)
        out.write(chunk)
    return checker.finish()


@dataclass(frozen=True)
class StoredObject:
    """An object a member stored: its header (``digest`` is its address) and registration."""

    header: ObjectHeader
    tx_id: bytes
    height: int

    @property
    def digest(self) -> bytes:
        """The object's address."""
        return self.header.digest


class VaultClient:
    """A member's vault operations over a ledger and a node's objects.

    Parameters
    ----------
    ledger : chain.client.Ledger
        Where transactions go and state is read (proven): ``send``, ``state``, ``receipt``.
    objects : ObjectTransport
        The member's node's ``/vault`` routes (:class:`HttpObjects`).
    key, cert : PrivateKey, Certificate
        The member.
    workdir : path, optional
        Where sealed and downloaded objects are staged (a temporary directory by default).
    """

    def __init__(
        self,
        ledger: Any,
        objects: ObjectTransport,
        key: PrivateKey,
        cert: Certificate,
        workdir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.ledger = ledger
        self.objects = objects
        self.key = key
        self.cert = cert
        self.workdir = None if workdir is None else Path(workdir)

    @contextlib.contextmanager
    def _staging(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="rx-vault-", dir=self.workdir) as d:
            yield Path(d)

    def put(self, path: str | os.PathLike[str]) -> StoredObject:
        """Seal ``path`` under a fresh key, store it on the node, register it on chain.

        Raises
        ------
        VaultError
            The file cannot be read.
        ClientError
            The node refused the object or the registration.
        """
        with self._staging() as d:
            sealed = d / "object"
            header, key = seal_file(self.cert.cert_id, path, sealed)
            self.objects.put_file(header.digest, sealed)
        wrapped = wrap_key(self.key.public_key, header.digest, key)
        done = self.ledger.send("vault.put", {"header": header.to_bytes(), "wrapped": wrapped})
        return StoredObject(
            header, hex_bytes(done.get("tx_id"), "transaction id", 32), int(done.get("height", 0))
        )

    def info(self, digest: bytes) -> dict[str, Any] | None:
        """The object's registry record on chain (proven), or ``None``."""
        return load_object(_LedgerState(self.ledger), digest)

    def object_key(self, digest: bytes) -> bytes:
        """This member's key of ``digest``, unwrapped from its grant on chain.

        Raises
        ------
        ClientError
            No grant for this member (403).
        VaultError
            The wrapped key does not open with this member's key.
        """
        grant = load_grant(_LedgerState(self.ledger), digest, self.cert.cert_id)
        if grant is None:
            raise ClientError("this member holds no grant for this object on chain", 403)
        return unwrap_key(self.key, digest, grant["wrapped"])

    def get(self, digest: bytes, dst: str | os.PathLike[str]) -> ObjectHeader:
        """Fetch and decrypt ``digest`` into ``dst`` (which appears only if everything verified)."""
        key = self.object_key(digest)
        with self._staging() as d:
            staged = d / "object"
            with open(staged, "wb") as out:
                _checked_copy(digest, self.objects.fetch(digest), out)
            return open_file(key, digest, staged, dst)

    def grant(self, digest: bytes, member: bytes) -> Receipt:
        """Let ``member`` (a certificate id) read ``digest``; the verified receipt of the grant."""
        key = self.object_key(digest)
        raw = self.ledger.state(cert_key(member))
        if raw is None:
            raise ClientError("the grantee's certificate is not registered on this chain", 404)
        grantee = Certificate.from_dict(codec.decode(raw))
        wrapped = wrap_key(grantee.key(), digest, key)
        done = self.ledger.send("vault.grant", {"object": digest, "member": member, "wrapped": wrapped})
        receipt: Receipt = self.ledger.receipt(hex_bytes(done.get("tx_id"), "transaction id", 32))
        return receipt

    def revoke(self, digest: bytes, member: bytes) -> Receipt:
        """Withdraw ``member``'s grant of ``digest``; the verified receipt."""
        done = self.ledger.send("vault.revoke", {"object": digest, "member": member})
        receipt: Receipt = self.ledger.receipt(hex_bytes(done.get("tx_id"), "transaction id", 32))
        return receipt


class _LedgerState:
    """``get`` over a ledger's proven state reads (what the contract helpers read from)."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.ledger.state(key)
        return value


__all__ = [
    "HttpObjects",
    "ObjectTransport",
    "StoredObject",
    "VaultClient",
]
