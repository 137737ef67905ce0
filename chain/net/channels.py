"""Channel ids: which protocol a record belongs to.

One secure connection carries several protocols; every record's plaintext starts with a
channel id byte.  Application channels are the members of :class:`Channel`; the two
handshake-only ids (:data:`AUTH`, :data:`FINISH`) are valid only as the first two records
in each direction and are an error afterwards, like any id not listed here.

Examples
--------
>>> Channel(0x20).name
'CONSENSUS'
>>> is_channel(0x99)
False
"""

from __future__ import annotations

import enum
from typing import Final


class Channel(enum.IntEnum):
    """Application channels multiplexed over one connection (ids as in CometBFT)."""

    HEARTBEAT = 0x10
    CONSENSUS = 0x20
    MEMPOOL = 0x30
    BLOCK_SYNC = 0x40
    STATE_SYNC = 0x60


AUTH: Final = 0x01
"""Handshake record 0: the sender's certificate and its signature over the transcript."""

FINISH: Final = 0x02
"""Handshake record 1: whether the sender admits its peer (and why not)."""

_IDS: Final = frozenset(int(c) for c in Channel)


def is_channel(channel_id: int) -> bool:
    """Whether ``channel_id`` names an application channel.

    Examples
    --------
    >>> is_channel(Channel.MEMPOOL), is_channel(AUTH)
    (True, False)
    """
    return channel_id in _IDS
