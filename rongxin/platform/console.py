"""The regulator console's engine: the catalogue and each agency's policy limits of the
deployment configured for the platform, a query run through :class:`privacy.query.Regulator`,
and the deployment's audit trail (``audit.jsonl`` beside the deployment file).

With a ledger (the member's node client and the genesis) each query's audit record is
anchored the way ``rongxin query run --client`` anchors it — through
:class:`privacy.audit.LedgerAnchor` — and its receipt, verified against the genesis, is kept
in ``audit-receipts/<record digest>.receipt.cbor`` beside the deployment file (the same
place the command line keeps it)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.client import Ledger
from chain.types import Genesis
from privacy import paillier
from privacy.audit import AuditLog, LedgerAnchor
from privacy.config import Deployment
from privacy.errors import PolicyRefusal, PrivacyError
from privacy.query import Regulator
from privacy.spec import parse
from rongxin.platform.config import PlatformError
from rongxin.platform.routes_ops import tail_events

QUERY_CHARS = 4000
RECEIPTS = "audit-receipts"
"""Folder beside the deployment file holding each anchored audit record's receipt."""


class ConsoleError(PlatformError):
    """No deployment is configured, or it cannot be used."""


@dataclass
class Outcome:
    """One query's outcome: the answer, or the refusal, with each agency's decision."""

    query: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    path: str = ""
    error: str = ""
    refused_by: str = ""
    decisions: list[dict[str, Any]] = field(default_factory=list)
    record_digest: str = ""
    anchor_height: int | None = None
    anchor_tx: str = ""
    receipt: str = ""
    """File name of the record's receipt in :data:`RECEIPTS` (empty when not anchored)."""


class RegulatorConsole:
    """Runs regulators' queries against the deployment file ``deployment``.

    Parameters
    ----------
    deployment : path or None
        ``agencies.toml`` (or ``.json``); ``None``: the console says none is configured.
    keypair : tuple, optional
        The Paillier key pair (default: read from the deployment's ``key_file`` is not
        supported without a prompt, so one is generated once per process with its
        ``key_bits``).
    timeout : float
        Seconds before an agency counts as dropped out.
    ledger : (Ledger, Genesis), optional
        Where each audit record is anchored (the member's node client); ``None``: records
        are only written to ``audit.jsonl``, marked as not anchored.
    """

    def __init__(
        self,
        deployment: Path | None,
        keypair: tuple[paillier.PublicKey, paillier.PrivateKey] | None = None,
        timeout: float = 120.0,
        ledger: tuple[Ledger, Genesis] | None = None,
    ) -> None:
        self.path = deployment
        self._keypair = keypair
        self.timeout = timeout
        self.ledger = ledger
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        """Whether a deployment file is configured."""
        return self.path is not None

    def deployment(self) -> Deployment:
        """The deployment, read again each time (its agencies' state lives on disk)."""
        if self.path is None:
            raise ConsoleError("no agencies are configured for this platform (set agencies in platform.toml)")
        try:
            return Deployment.from_file(self.path)
        except (PrivacyError, OSError) as exc:
            raise ConsoleError(f"the agencies file cannot be used: {exc}") from None

    def catalogue(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every (table, column, properties) of the catalogue."""
        doc = self.deployment().catalog.to_dict()
        return [(t, c, dict(props)) for t, cols in sorted(doc.items()) for c, props in sorted(cols.items())]

    def limits(self, role: str = "regulator") -> list[dict[str, Any]]:
        """Each agency's policy limits as they apply to ``role``."""
        out = []
        for a in self.deployment().agencies:
            grant = a.policy.roles.get(role)
            out.append(
                {
                    "agency": a.name,
                    "min_group_size": a.policy.min_group_size,
                    "min_agencies": a.policy.min_agencies,
                    "require_dp": a.policy.require_dp,
                    "epsilon_budget": a.policy.epsilon_budget,
                    "grant": grant_text(grant),
                    "remote": a.url is not None,
                }
            )
        return out

    def _keys(self, dep: Deployment) -> tuple[paillier.PublicKey, paillier.PrivateKey]:
        with self._lock:
            if self._keypair is None:
                self._keypair = paillier.generate_keypair(
                    int(dep.regulator.get("key_bits", paillier.DEFAULT_BITS))
                )
            return self._keypair

    def run(self, text: str) -> Outcome:
        """Run one query; a refusal or a malformed query is an :class:`Outcome` with ``error``."""
        text = text.strip()[:QUERY_CHARS]
        out = Outcome(text)
        dep = self.deployment()
        anchor = None if self.ledger is None else LedgerAnchor(*self.ledger)
        log = AuditLog(anchor, dep.base / "audit.jsonl")
        try:
            spec = parse(text)
            identity = dep.regulator_identity()
            regulator = Regulator(
                dep.catalog,
                dep.clients(None, identity),
                self._keys(dep),
                identity,
                str(dep.regulator.get("role", "regulator")),
                log,
                self.timeout,
            )
            result = regulator.run(spec)
        except PolicyRefusal as exc:
            out.error, out.refused_by = exc.reason, exc.agency
        except PrivacyError as exc:
            out.error = str(exc)
        except OSError as exc:
            out.error = f"cannot use {exc.filename}: {exc.strerror}"
        else:
            out.columns = [str(c) for c in result.columns]
            out.rows = result.rows
            out.notes = list(result.notes)
            out.path = result.path
        if out.error and not out.refused_by:
            return out  # nothing reached the agencies, nothing was recorded
        last = self.trail(1)
        if last:
            out.decisions = list(last[0].get("decisions", []))
            out.record_digest = str(last[0].get("record_digest", ""))
        if anchor is not None and out.record_digest:
            self._keep_receipt(anchor, dep.base, out)
        return out

    @staticmethod
    def _keep_receipt(anchor: LedgerAnchor, base: Path, out: Outcome) -> None:
        """Save the record's receipt (already verified against the genesis) beside the deployment."""
        try:
            digest = bytes.fromhex(out.record_digest)
        except ValueError:
            return
        receipt = anchor.receipts.get(digest)
        if receipt is None:
            return
        info = receipt.verify(anchor.genesis)
        name = f"{digest.hex()}.receipt.cbor"
        folder = base / RECEIPTS
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(receipt.to_bytes())
        out.anchor_height, out.anchor_tx, out.receipt = info.height, info.tx_id.hex(), name

    def receipt_file(self, digest: str) -> Path | None:
        """The saved receipt of the audit record ``digest`` (64 hex digits), or None."""
        if self.path is None or not re.fullmatch(r"[0-9a-f]{64}", digest):
            return None
        p = self.path.parent / RECEIPTS / f"{digest}.receipt.cbor"
        return p if p.is_file() else None

    def trail(self, rows: int = 50) -> list[dict[str, Any]]:
        """The deployment's latest audit records, newest first."""
        if self.path is None:
            return []
        return tail_events(self.path.parent / "audit.jsonl", rows)


def grant_text(grant: Any) -> str:
    """A role grant in one line: tables with their columns, then the aggregates.

    Examples
    --------
    >>> from privacy.policy import RoleGrant
    >>> grant_text(RoleGrant({"cases": frozenset({"status", "county"})}, frozenset({"count"})))
    'cases: county, status; aggregates: count'
    >>> grant_text(None)
    '—'
    """
    if grant is None:
        return "—"
    tables = "; ".join(f"{t}: {', '.join(sorted(cols))}" for t, cols in sorted(grant.tables.items()))
    return f"{tables}; aggregates: {', '.join(sorted(grant.aggregates))}"
