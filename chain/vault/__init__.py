"""The off-chain vault: encrypted, content-addressed objects served by members' nodes.

Only digests and small metadata go on chain; the files themselves (evidence packages,
reports, works kept with ``--keep-source``) live here.

* :mod:`chain.vault.objects` — the object format: SM4-GCM under a fresh key per object,
  addressed by SM3, keys wrapped to readers with SM2;
* :mod:`chain.vault.store` — the storage interface and the local-directory backend;
* :mod:`chain.vault.contract` — ``vault.put``, ``vault.grant``, ``vault.revoke``: the
  on-chain registry of objects and of who may read them;
* :mod:`chain.vault.service` — what a node does with it: access checks, replication, scrub.
"""

from chain.errors import VaultError
from chain.vault.objects import (
    HEADER_SIZE,
    ObjectChecker,
    ObjectHeader,
    check_stream,
    open_file,
    open_stream,
    seal_file,
    seal_stream,
    unwrap_key,
    wrap_key,
)
from chain.vault.store import LocalStore, ObjectStore, ObjectWriter

__all__ = [
    "HEADER_SIZE",
    "LocalStore",
    "ObjectChecker",
    "ObjectHeader",
    "ObjectStore",
    "ObjectWriter",
    "VaultError",
    "check_stream",
    "open_file",
    "open_stream",
    "seal_file",
    "seal_stream",
    "unwrap_key",
    "wrap_key",
]
