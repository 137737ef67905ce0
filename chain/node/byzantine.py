"""A Byzantine node process, for fault tests of a running consortium.

:class:`ByzantineReplica` is a :class:`~chain.replica.Replica` whose consensus core, in
every epoch, is a :class:`~chain.consensus.byzantine.ByzantineCore`: it follows the
protocol and keeps an honest store, but equivocates as leader, withholds votes, sends
far-future rounds, floods votes and timeouts, forges certificates and relays messages
signed by outsiders. The honest nodes must stay live and agree, put its equivocation on
chain as evidence and exclude it from the validator set at the next epoch.

Run it in place of an honest node (the end-to-end runner does, for nodes with
``behaviour = "byzantine"``)::

    python -m chain.node.byzantine --config net/node-4/node.toml --seed 7

Never run it in production: it signs conflicting messages with the node's key, which is
exactly what gets a node excluded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import Any

from chain.consensus.byzantine import Misbehaviour, corrupt
from chain.consensus.core import ConsensusCore
from chain.consensus.crypto import Signer
from chain.replica import Replica


class ByzantineReplica(Replica):
    """A replica whose core (in every epoch) is a :class:`ByzantineCore`.

    Parameters
    ----------
    *args
        As :class:`~chain.replica.Replica`.
    seed : int
        Seeds the choice of attacks (a run replays).
    outsiders : sequence of Signer
        Keys outside the validator set whose signed messages it relays (none: a made-up key).
    misbehaviour : Misbehaviour, optional
        Which attacks (default: all).
    """

    def __init__(
        self,
        *args: Any,
        seed: int = 0,
        outsiders: Sequence[Signer] = (),
        misbehaviour: Misbehaviour | None = None,
    ) -> None:
        self.seed, self.outsiders, self.misbehaviour = seed, list(outsiders), misbehaviour
        self.attacks: Counter[str] = Counter()
        """What it did, by kind, over all its epochs."""
        super().__init__(*args)

    def _make_core(self) -> ConsensusCore:
        core = corrupt(super()._make_core(), self.misbehaviour, self.seed, self.outsiders)
        core.attacks = self.attacks
        return core


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m chain.node.byzantine --config node.toml [--seed N]``: run until SIGTERM."""
    from chain.errors import ChainError
    from chain.node.config import load_config
    from chain.node.run import run_node

    parser = argparse.ArgumentParser(
        prog="python -m chain.node.byzantine", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", required=True, help="the node's node.toml")
    parser.add_argument("--seed", type=int, default=0, help="seed of the attacks")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        asyncio.run(run_node(cfg, replica_factory=partial(ByzantineReplica, seed=args.seed), tune_gc=True))
    except ChainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - a process entry point
    sys.exit(main())
