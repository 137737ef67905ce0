"""The operations monitor: samples the nodes' ``/metrics``, evaluates the alert rules after
every round, and writes each alert that starts or stops firing to the operations audit log
(``alert.firing`` / ``alert.resolved``)."""

from __future__ import annotations

import threading
from typing import Any

from chain.api.auth import sign_request
from chain.node.logs import OpsAudit
from rongxin.platform.alerts import AlertBook, Change, evaluate
from rongxin.platform.opsconfig import OpsConfig
from rongxin.platform.sampler import MetricsSampler, SampleRing, Signer


def member_signer(client: Any) -> Signer | None:
    """Signs ``/metrics`` requests as the member of a :class:`~chain.client.NodeClient`
    (``None`` without a client holding a member key: then only nodes with public metrics
    answer)."""
    key, cert, genesis = (getattr(client, a, None) for a in ("key", "cert", "genesis"))
    if key is None or cert is None or genesis is None:
        return None
    cert_id, chain_id = cert.cert_id, genesis.chain_id

    def sign(method: str, target: str) -> dict[str, str]:
        return sign_request(key, cert_id, method, target, b"", chain_id=chain_id)

    return sign


class OpsMonitor:
    """Samples, alert state and their audit records for one platform.

    Parameters
    ----------
    nodes : sequence of str
        The consortium nodes of ``platform.toml``.
    config : OpsConfig
        Sampling and thresholds.
    audit : OpsAudit
        Where alert changes are recorded.
    sign : callable, optional
        Signs the ``/metrics`` requests.
    """

    def __init__(
        self, nodes: tuple[str, ...], config: OpsConfig, audit: OpsAudit, sign: Signer | None = None
    ) -> None:
        self.config = config
        self.audit = audit
        self.ring = SampleRing(config.keep_samples)
        self.book = AlertBook()
        self._lock = threading.Lock()
        self.sampler = MetricsSampler(nodes, self.ring, config.sample_interval_s, sign, self.evaluate)

    def evaluate(self, now: float) -> list[Change]:
        """Run the rules over the samples at ``now``; record and return the changes."""
        with self._lock:
            changes = self.book.update(evaluate(self.ring.snapshot(), now, self.config), now)
        for c in changes:
            self.audit.record(
                f"alert.{c.state}",
                alert=c.alert.name,
                target=c.alert.target,
                severity=c.alert.severity,
                detail=c.alert.detail[:300],
            )
        return changes

    def start(self) -> None:
        """Start sampling in the background (not when ``sample_interval_s`` is 0 or no node is configured)."""
        if self.config.sample_interval_s > 0 and self.sampler.nodes:
            self.sampler.start()

    def stop(self) -> None:
        """Stop sampling."""
        self.sampler.stop()


__all__ = ["OpsMonitor", "member_signer"]
