"""What a report shows of an evidence package: verified first, then summarized.

:func:`capture_summary` verifies the package offline against the genesis
(:func:`crawlers.package.verify_package`: every file's digests, the SM2 signature and the
member's certificate, the receipt of the package digest, the RFC 3161 token) and refuses
one that fails any check, naming the file and the check: a report never shows a package
that does not verify. It then reads the screenshot, the capture log, the environment
record and the file list into a :class:`forensics.report.model.CaptureSummary`.
:func:`extract_copy` takes the found copy's media file out of the package (by the SM3 the
scan recorded), so the side-by-side figures need no separate file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chain.types import Genesis
from crawlers.errors import PackageError
from forensics.report.model import CaptureEvent, CaptureSummary, FileDigest, ReceiptSummary, SignatureSummary
from rongxin.errors import RongxinError

#: Largest screenshot embedded in a report (bytes); a larger one is listed, not shown.
MAX_SCREENSHOT = 24 << 20
#: Capture-log lines and characters per value shown.
MAX_LOG_LINES = 400
MAX_VALUE_CHARS = 400


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def _iso(ms: Any) -> str:
    if isinstance(ms, bool) or not isinstance(ms, int):
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _files(manifest_files: dict[str, Any]) -> tuple[FileDigest, ...]:
    out = []
    for name, entry in sorted(manifest_files.items()):
        if not isinstance(entry, dict):
            continue
        sm3, sha, size = entry.get("sm3"), entry.get("sha256"), entry.get("bytes")
        if isinstance(sm3, str) and isinstance(sha, str):
            role = name.split("/", 1)[0] if "/" in name else ""
            out.append(FileDigest(name, sm3, sha, size if isinstance(size, int) else None, role))
    return tuple(out)


def _receipt(raw: bytes, facts: dict[str, Any], digest: str, name: str) -> ReceiptSummary:
    from chain.consensus.messages import QuorumCertificate
    from chain.receipt import Receipt

    receipt = Receipt.from_bytes(raw)
    anchored = facts.get("anchored", {})
    signer = facts.get("signer", {})
    return ReceiptSummary(
        subject="evidence package",
        chain_id=receipt.chain_id,
        height=int(anchored.get("height", 0)),
        block_time=_iso(anchored.get("block_time_ms")),
        block_hash="",
        tx_id=str(anchored.get("tx_id", "")),
        sender=str(signer.get("subject", "")),
        validators=tuple(a for a, _ in QuorumCertificate.from_obj(receipt.qc).signatures),
        digest=digest,
        verified=True,
        file_name=name,
    )


def capture_summary(package: Path, genesis: Genesis, *, case_id: int | None = None) -> CaptureSummary:
    """Verify ``package`` against ``genesis`` and summarize it for a report.

    Parameters
    ----------
    package : Path
        The ``.wacz`` evidence package.
    genesis : Genesis
        The consortium's genesis (the root of the signer's certificate and of the receipt).
    case_id : int, optional
        Refuse a package made for another case (its manifest names the case).

    Raises
    ------
    RongxinError
        The package does not verify (every failed check named), is of another case, or
        cannot be read.
    """
    from crawlers.package import read_package, verify_package
    from crawlers.package.manifest import RECEIPT

    result = verify_package(str(package), genesis, check_warc=True)
    if not result.ok:
        failed = "; ".join(f"{c.file} [{c.check}]: {c.detail}" for c in result.failures) or "not checked"
        raise RongxinError(f"the evidence package {package.name} does not verify: {failed}")
    try:
        with read_package(package) as pkg:
            case = pkg.manifest.get("case")
            if case_id is not None and isinstance(case, dict) and case.get("id") not in (None, case_id):
                raise RongxinError(
                    f"the evidence package {package.name} is of case {case.get('id')}, not {case_id}"
                )
            shot = None
            if "evidence/screenshot.png" in pkg.names:
                try:
                    shot = pkg.read("evidence/screenshot.png", limit=MAX_SCREENSHOT)
                except PackageError:
                    shot = None  # too large to embed: listed with its digests
            log = pkg.capture_log if "evidence/capture-log.jsonl" in pkg.names else []
            timeline = tuple(
                CaptureEvent(
                    _text(e.get("time", "")),
                    _text(
                        " ".join(
                            [str(e.get("event", ""))]
                            + [
                                f"{k}={_text(v)}"
                                for k, v in sorted(e.items())
                                if k not in ("time", "event", "elapsed_s")
                            ]
                        )
                    ),
                )
                for e in log[:MAX_LOG_LINES]
                if isinstance(e, dict)
            )
            env = pkg.environment if "evidence/environment.json" in pkg.names else {}
            environment = tuple((_text(k), _text(v)) for k, v in env.items())
            sig = pkg.signature
            signer = result.facts.get("signer", {})
            signature = SignatureSummary(
                algorithm=_text(sig.get("algorithm", "")),
                signer=_text(f"{signer.get('subject', '')} ({signer.get('organization', '')})"),
                public_key=_text(sig.get("public_key", "")),
                signed_digest=_text(sig.get("manifest_sm3", "")),
                value=_text(sig.get("signature", "")),
                verified=True,
            )
            raw = pkg.receipt_bytes
            receipt = (
                None
                if raw is None
                else _receipt(raw, result.facts, result.digest, f"{package.name}:{RECEIPT}")
            )
            stamp = result.facts.get("timestamp")
            files = _files(pkg.files)
    except PackageError as exc:
        raise RongxinError(f"cannot read the evidence package {package.name}: {exc}") from None
    capture = pkg.manifest.get("capture", {}) if isinstance(pkg.manifest.get("capture"), dict) else {}
    environment = (
        ("url", _text(capture.get("url", ""))),
        ("title", _text(capture.get("title", ""))),
        ("started", _iso(capture.get("started_ms"))),
        ("finished", _iso(capture.get("finished_ms"))),
        *environment,
    )
    return CaptureSummary(
        package_name=package.name,
        package_sm3=result.digest,
        screenshot_png=shot,
        timeline=timeline,
        environment=environment,
        files=files,
        signature=signature,
        receipt=receipt,
        timestamp_token=_text(stamp) if stamp else "",
    )


def extract_copy(package: Path, content_sm3: str, directory: Path) -> Path | None:
    """The package's file whose SM3 is ``content_sm3`` (the copy the scan fetched), written
    into ``directory``; ``None`` when the package holds no such file.

    Raises
    ------
    RongxinError
        The package cannot be read.
    """
    from crawlers.package import read_package

    try:
        with read_package(package) as pkg:
            for name, entry in sorted(pkg.files.items()):
                if isinstance(entry, dict) and entry.get("sm3") == content_sm3:
                    dest = directory / Path(name).name
                    with pkg.open(name) as src, dest.open("wb") as out:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
                    return dest
    except (PackageError, OSError) as exc:
        raise RongxinError(f"cannot take the copy out of {package.name}: {exc}") from None
    return None
