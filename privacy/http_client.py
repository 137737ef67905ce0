"""Reach an agency's service (:mod:`privacy.service`) over HTTP, each request signed.

Examples
--------
>>> from chain.crypto import PrivateKey
>>> from privacy.identity import Identity
>>> agency = Identity.issue(PrivateKey.generate(), "county-a", ["media_center"])
>>> HttpAgencyClient("county-a", "http://127.0.0.1:8600/", agency.cert).url
'http://127.0.0.1:8600'
"""

from __future__ import annotations

import os
import ssl

import httpx

from chain.api.auth import sign_request
from chain.types import Certificate
from privacy.errors import AgencyUnavailable, CiphertextError, IdentityError, PrivacyError
from privacy.identity import Identity
from privacy.protocol import MAX_MESSAGE as MAX_BODY_BYTES
from privacy.protocol import SERVICE_PATH as PATH


class HttpAgencyClient:
    """One agency's service, pinned to its certificate.

    Parameters
    ----------
    name : str
        The agency's name.
    url : str
        Its service's base URL (``http://host:port``).
    certificate : Certificate
        Its pinned certificate (the regulator checks every answer against it).
    signer : Identity or None
        The requester whose key signs each HTTP request (set before the first call).
    chain_id : str
        The consortium's chain id.
    timeout : float
        Seconds for one request.
    tls_certificate : path or None
        The agency's pinned HTTPS certificate (``https://`` URLs): only it is trusted.
    """

    def __init__(
        self,
        name: str,
        url: str,
        certificate: Certificate,
        signer: Identity | None = None,
        chain_id: str = "rongxin",
        timeout: float = 300.0,
        *,
        tls_certificate: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.certificate = certificate
        self.signer = signer
        self.chain_id = chain_id
        self.timeout = timeout
        self.verify: ssl.SSLContext | bool = True
        if tls_certificate is not None:
            # HTTPS to this agency trusts exactly its pinned certificate
            self.verify = ssl.create_default_context(cafile=os.fspath(tls_certificate))

    def call(self, request: bytes) -> bytes:
        """Post one signed message; the agency's signed answer.

        Raises
        ------
        AgencyUnavailable
            The agency cannot be reached, or failed (5xx).
        IdentityError
            The agency refused the request's authentication (401, 403).
        CiphertextError
            The agency found the message malformed (400, 413), or answered something
            that is not a message.
        """
        if self.signer is None:
            raise PrivacyError("an HTTP agency client needs the requester's identity to sign requests")
        headers = sign_request(
            self.signer.key, self.signer.cert_id, "POST", PATH, request, chain_id=self.chain_id
        )
        headers["Content-Type"] = "application/cbor"
        try:
            resp = httpx.post(
                self.url + PATH, content=request, headers=headers, timeout=self.timeout, verify=self.verify
            )
        except httpx.TimeoutException:
            raise AgencyUnavailable(self.name, f"no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise AgencyUnavailable(self.name, f"{type(exc).__name__}: {exc}") from None
        if resp.status_code == 200:
            if len(resp.content) > MAX_BODY_BYTES:
                raise CiphertextError(f"agency {self.name!r} answered more than {MAX_BODY_BYTES} bytes")
            return resp.content
        try:
            reason = str(resp.json().get("error", resp.text))
        except ValueError:
            reason = resp.text[:200]
        if resp.status_code in (401, 403):
            raise IdentityError(f"agency {self.name!r} refused the request's authentication: {reason}")
        if resp.status_code in (400, 413):
            raise CiphertextError(f"agency {self.name!r} refused the message: {reason}")
        raise AgencyUnavailable(self.name, f"HTTP {resp.status_code}: {reason}")
