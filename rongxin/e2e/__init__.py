"""End-to-end fault tests of the consortium ledger as real node processes.

In the manner of CometBFT's ``test/e2e``: a TOML manifest describes a network, a load
and timed perturbations (:mod:`rongxin.e2e.manifest`); the runner creates the network
with ``create_network`` (what ``rongxin chain init`` runs), starts every node as
``python -m rongxin node run``, drives signed transactions through
:class:`~chain.client.NodeClient`, kills, pauses, partitions (through per-link TCP
proxies, :mod:`rongxin.e2e.proxy`), restarts and skews nodes, and then checks the outcome
black-box over the nodes' APIs (:mod:`rongxin.e2e.checks`).

* :mod:`rongxin.e2e.manifest` — the manifest format and its schedule;
* :mod:`rongxin.e2e.nodes` — node processes (and the hooks for byzantine and state-sync nodes);
* :mod:`rongxin.e2e.proxy` — fault-injecting proxies, one per directed link;
* :mod:`rongxin.e2e.load` — members, pre-signed transactions, client threads;
* :mod:`rongxin.e2e.monitor` — heights over time;
* :mod:`rongxin.e2e.checks` — the black-box checks;
* :mod:`rongxin.e2e.runner` — :func:`~rongxin.e2e.runner.run_manifest` and its report.

``python -m rongxin.e2e MANIFEST [--workdir DIR]`` runs one manifest and prints its report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.lazy import lazy_exports

if TYPE_CHECKING:
    from rongxin.e2e.manifest import Manifest, ManifestError, load_manifest
    from rongxin.e2e.runner import Report, run_manifest

_LAZY: dict[str, str] = {
    "Manifest": "rongxin.e2e.manifest",
    "ManifestError": "rongxin.e2e.manifest",
    "load_manifest": "rongxin.e2e.manifest",
    "Report": "rongxin.e2e.runner",
    "run_manifest": "rongxin.e2e.runner",
}

__all__ = ["Manifest", "ManifestError", "Report", "load_manifest", "run_manifest"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
