"""The environment record: what a court needs to see that the capturing system was clean.

Tool and browser versions, the operating system, proxy settings, the digest of the hosts
file and of the resolver configuration, the DNS answers of every host the page touched,
the TLS certificate chain each HTTPS site presented, and the clock (with its offset from
the ledger's time when a ledger was asked).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from chain.crypto.sm3 import sm3

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
               "ALL_PROXY", "NO_PROXY")  # fmt: skip
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def file_digest(path: Path) -> dict[str, Any]:
    """SM3 and SHA-256 of a system file (``{"path", "missing": true}`` when absent)."""
    try:
        data = path.read_bytes()
    except OSError:
        return {"path": str(path), "missing": True}
    return {
        "path": str(path),
        "bytes": len(data),
        "sm3": sm3(data).hex(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def os_release() -> dict[str, str]:
    """``/etc/os-release`` as a dict (empty when absent)."""
    out: dict[str, str] = {}
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("PRETTY_NAME", "ID", "VERSION_ID"):
            out[key] = value.strip().strip('"')
    return out


def system_record(browser_version: str, browser_path: str) -> dict[str, Any]:
    """Versions, OS, proxy settings, hosts file and resolver configuration."""
    ffmpeg = shutil.which("ffmpeg")
    ffmpeg_version = None
    if ffmpeg:
        try:
            first = subprocess.run([ffmpeg, "-version"], capture_output=True, timeout=10, check=False).stdout
            ffmpeg_version = first.decode("utf-8", "replace").splitlines()[0] if first else None
        except (OSError, subprocess.TimeoutExpired):
            ffmpeg_version = None
    return {
        "tool": {"name": "rongxin", "version": _version("rongxin")},
        "python": sys.version.split()[0],
        "playwright": _version("playwright"),
        "warcio": _version("warcio"),
        "browser": {"name": "chromium", "version": browser_version, "executable": browser_path},
        "ffmpeg": ffmpeg_version,
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            **os_release(),
        },
        "proxy": {
            "browser": "none (--no-proxy-server: the browser connects directly)",
            "environment": {k: os.environ[k] for k in _PROXY_VARS if k in os.environ},
        },
        "hosts_file": file_digest(Path("/etc/hosts")),
        "resolver_config": file_digest(Path("/etc/resolv.conf")),
    }


def clock_record(local_ms: int, ledger_ms: int | None) -> dict[str, Any]:
    """The capture's clock, and its offset from the ledger's time when known."""
    doc: dict[str, Any] = {"local_time_ms": local_ms}
    if ledger_ms is not None:
        doc["ledger_time_ms"] = ledger_ms
        doc["offset_ms"] = local_ms - ledger_ms
    return doc


def tls_chain(host: str, address: str, port: int, *, timeout_s: float = 15.0) -> dict[str, Any]:
    """The certificate chain ``address:port`` presents for ``host`` (SNI), as PEM with the
    subject and issuer of each certificate, read with ``openssl s_client``.

    The chain is recorded as presented, verified or not: a court wants to see what the
    site showed. Failures are recorded as ``{"error": ...}``, never raised.
    """
    exe = shutil.which("openssl")
    if exe is None:
        return {"error": "no openssl on PATH"}
    target = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    try:
        done = subprocess.run(
            [exe, "s_client", "-connect", target, "-servername", host, "-showcerts"],
            input=b"", capture_output=True, timeout=timeout_s, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"openssl s_client failed: {exc}"}
    pems = [m.group(0).decode("ascii", "replace") for m in _PEM.finditer(done.stdout)]
    if not pems:
        return {"error": "the server presented no certificate"}
    certs: list[dict[str, Any]] = []
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    for pem in pems:
        entry: dict[str, Any] = {"pem": pem}
        try:
            c = x509.load_pem_x509_certificate(pem.encode())
            entry.update(
                subject=c.subject.rfc4514_string(),
                issuer=c.issuer.rfc4514_string(),
                not_before=c.not_valid_before_utc.isoformat(),
                not_after=c.not_valid_after_utc.isoformat(),
                sha256=c.fingerprint(hashes.SHA256()).hex(),
            )
        except ValueError as exc:
            entry["error"] = f"unreadable certificate: {exc}"
        certs.append(entry)
    verify = re.search(rb"Verify return code: (\d+) \(([^)]*)\)", done.stdout)
    return {
        "host": host,
        "address": address,
        "port": port,
        "chain": certs,
        "verify_result": verify.group(2).decode() if verify else None,
    }
