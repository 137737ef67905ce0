"""Prometheus metrics of a running node, named in CometBFT's style
(``rongxin_<subsystem>_<name>``).

Most values are read from the host when Prometheus scrapes (a custom collector), so the
consensus path pays nothing for them; the block-interval histogram and the per-validator
missed proposals are updated at each commit.

=======================================================  ===========================================
metric                                                   meaning
=======================================================  ===========================================
``rongxin_consensus_height``                             committed height
``rongxin_consensus_rounds``                             current round
``rongxin_consensus_epoch``                              current epoch
``rongxin_consensus_validators``                         validators in the epoch
``rongxin_consensus_voting``                             1 when this node votes
``rongxin_consensus_block_interval_seconds``             histogram of block time differences
``rongxin_consensus_total_txs``                          transactions committed since start
``rongxin_consensus_blocks_total``                       blocks committed since start
``rongxin_consensus_missed_proposals_total{validator}``  rounds a leader's block did not commit
``rongxin_consensus_bad_messages_total``                 malformed or misrouted messages refused
``rongxin_consensus_compact_proposals_total``            compact proposals received
``rongxin_consensus_fetched_txs_total``                  transactions fetched to rebuild them
``rongxin_consensus_dropped_rebuilds_total``             rebuilds dropped incomplete
``rongxin_consensus_block_requests_total``               blocks asked for by hash (named, not held)
``rongxin_ledger_syncs_total``                           fsyncs of the ledger (steps grouped)
``rongxin_mempool_size`` / ``_size_bytes``               transactions waiting and their bytes
``rongxin_mempool_max_txs``                              the pool's capacity
``rongxin_mempool_refused_txs_total``                    gossiped transactions refused
``rongxin_mempool_dropped_gossip_txs_total``             of those, dropped on a full queue
``rongxin_p2p_peers``                                    connected peers
``rongxin_p2p_peer_send_bytes_total{peer,ch}``           bytes sent per peer and channel
``rongxin_p2p_peer_receive_bytes_total{peer,ch}``        bytes received per peer and channel
``rongxin_p2p_dropped_messages_total{peer}``             messages dropped on a full send queue
``rongxin_p2p_refused_connections_total``                handshakes refused
``rongxin_blocksync_lag``                                blocks behind the highest peer
``rongxin_blocksync_requests_received_total``            block requests peers sent this node
``rongxin_crypto_sm2_verifications_total``               SM2 signature verifications done
``rongxin_crypto_tx_signature_checks_total``             transaction signatures checked in batches
``rongxin_crypto_tx_signature_check_cpu_seconds_total``  CPU seconds spent checking them
``rongxin_process_gc_collections_total{generation}``     garbage collections (:mod:`chain.node.heap`)
``rongxin_process_gc_seconds_total{generation}``         seconds the collections held the interpreter
``rongxin_process_gc_longest_seconds``                   the longest collection since start
``rongxin_process_gc_frozen_objects``                    objects the collector never walks again
``process_resident_memory_bytes``, ``process_cpu_…``     the process (``prometheus_client``'s)
=======================================================  ===========================================
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from chain.consensus.core import Committed
from chain.crypto import sm2
from chain.node.heap import GcStats, gc_stats

if TYPE_CHECKING:
    from chain.node.host import NodeHost

_CHANNELS = {0x10: "heartbeat", 0x20: "consensus", 0x30: "mempool", 0x40: "blocksync", 0x60: "statesync"}


class _HostCollector(Collector):
    def __init__(self, host: NodeHost) -> None:
        self.host = host

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        h = self.host
        core = h.replica.core
        height = core.committed.height

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"rongxin_{name}", doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"rongxin_{name}", doc, value=value)

        yield gauge("consensus_height", "Committed height.", height)
        yield gauge("consensus_rounds", "Current consensus round.", core.round)
        yield gauge("consensus_epoch", "Current epoch.", core.epoch)
        yield gauge("consensus_validators", "Validators in the current epoch.", core.n)
        yield gauge("consensus_voting", "1 when this node votes in the current epoch.", int(core.voting))
        yield counter("consensus_total_txs", "Transactions committed since start.", h.counters.txs_committed)
        yield counter("consensus_blocks", "Blocks committed since start.", h.counters.commits)
        yield counter(
            "consensus_bad_messages", "Malformed or misrouted messages refused.", h.counters.bad_messages
        )
        yield counter("consensus_compact_proposals", "Compact proposals received.", h.counters.compact_in)
        yield counter(
            "consensus_fetched_txs", "Transactions fetched to rebuild proposals.", h.rebuilds.fetched
        )
        yield counter(
            "consensus_dropped_rebuilds", "Proposal rebuilds dropped incomplete.", h.rebuilds.expired
        )
        yield counter(
            "consensus_block_requests",
            "Blocks asked for by hash: a certificate or proposal named a block this node lacked.",
            h.counters.block_requests,
        )
        yield counter(
            "blocksync_requests_received",
            "Block requests received from peers (committed blocks, or one block by hash).",
            h.counters.sync_requests,
        )
        yield counter(
            "ledger_syncs",
            "fsyncs of the ledger, each for one or more consensus steps.",
            h.counters.ledger_syncs,
        )
        mp = h.replica.app.mempool
        yield gauge("mempool_size", "Transactions in the mempool.", len(mp))
        yield gauge("mempool_size_bytes", "Bytes of the transactions in the mempool.", mp.total_bytes)
        yield gauge("mempool_max_txs", "Capacity of the mempool in transactions.", mp.config.max_txs)
        yield counter("mempool_refused_txs", "Gossiped transactions refused.", h.counters.txs_refused)
        yield counter(
            "mempool_dropped_gossip_txs",
            "Gossiped transactions not admitted on a full admission queue.",
            h.counters.gossip_dropped,
        )
        yield counter(
            "mempool_overflow_rebuilt_txs",
            "Transactions of compact proposals found among gossip kept from a full admission queue.",
            h.counters.gossip_overflow_used,
        )
        peers = h.peers.peers
        yield gauge("p2p_peers", "Connected peers.", len(peers))
        sent = CounterMetricFamily(
            "rongxin_p2p_peer_send_bytes", "Bytes sent per peer and channel.", labels=["peer", "ch"]
        )
        recv = CounterMetricFamily(
            "rongxin_p2p_peer_receive_bytes", "Bytes received per peer and channel.", labels=["peer", "ch"]
        )
        dropped = CounterMetricFamily(
            "rongxin_p2p_dropped_messages", "Messages dropped on a full send queue.", labels=["peer"]
        )
        best = height
        for p in peers.values():
            name = p.stats.subject
            for ch, n in p.stats.sent.items():
                sent.add_metric([name, _CHANNELS.get(ch, hex(ch))], n)
            for ch, n in p.stats.received.items():
                recv.add_metric([name, _CHANNELS.get(ch, hex(ch))], n)
            dropped.add_metric([name], p.stats.dropped)
            best = max(best, p.stats.height)
        yield sent
        yield recv
        yield dropped
        yield counter("p2p_refused_connections", "Handshakes refused.", h.peers.refused)
        yield gauge("blocksync_lag", "Blocks behind the highest peer.", best - height)
        yield counter("crypto_sm2_verifications", "SM2 signature verifications done.", sm2.verifications())
        yield counter(
            "crypto_tx_signature_checks",
            "Transaction signatures the verifying thread checked in batches.",
            h.counters.signature_checks,
        )
        yield counter(
            "crypto_tx_signature_check_cpu_seconds",
            "CPU seconds the verifying thread spent checking transaction signatures.",
            h.counters.signature_check_cpu_s,
        )
        missed = CounterMetricFamily(
            "rongxin_consensus_missed_proposals",
            "Rounds whose leader's block did not commit, per validator.",
            labels=["validator"],
        )
        for validator, n in sorted(h.missed.items()):
            missed.add_metric([validator], n)
        yield missed


class _GcCollector(Collector):
    def __init__(self, stats: GcStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        s = self.stats
        collections = CounterMetricFamily(
            "rongxin_process_gc_collections", "Garbage collections since start.", labels=["generation"]
        )
        seconds = CounterMetricFamily(
            "rongxin_process_gc_seconds",
            "Wall-clock seconds garbage collections held the interpreter.",
            labels=["generation"],
        )
        for g in range(3):
            collections.add_metric([str(g)], s.collections[g])
            seconds.add_metric([str(g)], s.seconds[g])
        yield collections
        yield seconds
        yield GaugeMetricFamily(
            "rongxin_process_gc_longest_seconds",
            "The longest garbage collection since start.",
            value=s.longest,
        )
        yield GaugeMetricFamily(
            "rongxin_process_gc_frozen_objects",
            "Objects frozen at start: the collector never walks them again.",
            value=gc.get_freeze_count(),
        )


def node_registry(host: NodeHost) -> CollectorRegistry:
    """A registry with every metric of ``host`` (serve it at ``/metrics``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_HostCollector(host))
    registry.register(_GcCollector(gc_stats()))
    ProcessCollector(registry=registry)
    interval = Histogram(
        "rongxin_consensus_block_interval_seconds",
        "Time between consecutive committed blocks (block timestamps).",
        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
        registry=registry,
    )
    last: list[int] = []

    def observe(a: Committed) -> None:
        ts = a.block.timestamp_ms
        if last:
            interval.observe(max(0, ts - last[0]) / 1000)
        last[:] = [ts]

    host.on_commit.append(observe)
    return registry
