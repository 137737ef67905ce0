"""Keeping finished files — evidence packages, reports — in the member's off-chain vault.

The file is sealed (SM4-GCM, a key per object wrapped to the member), stored through the
member's node and registered on chain by :class:`chain.client.vault.VaultClient`; the
record returned names the vault object so that the file can be fetched later with
``rongxin vault get``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rongxin.errors import RongxinError


def member_vault(cli: Any, genesis: Any) -> Any:
    """A :class:`~chain.client.vault.VaultClient` for the member of a node client.

    Parameters
    ----------
    cli : chain.client.NodeClient
        The member's node client (its key and certificate sign every request).
    genesis : chain.types.Genesis
        The chain of that node.
    """
    from chain.client.vault import HttpObjects, VaultClient

    return VaultClient(cli, HttpObjects(cli.url, cli.key, cli.cert, genesis), cli.key, cli.cert)


def vault_record(vault: Any, path: Path) -> dict[str, Any]:
    """Store one file through ``vault`` (a :func:`member_vault`); what to record about it.

    Returns
    -------
    dict
        ``{"vault_object", "vault_tx", "vault_height"}`` (hex digests).

    Raises
    ------
    chain.errors.ChainError, OSError
        The node refused or could not be reached, or the file is unreadable.
    """
    stored = vault.put(path)
    return {
        "vault_object": stored.digest.hex(),
        "vault_tx": stored.tx_id.hex(),
        "vault_height": stored.height,
    }


def keep_files(cli: Any, genesis: Any, paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Store each file in the member's vault; one record per file.

    Parameters
    ----------
    cli, genesis
        As for :func:`member_vault`.
    paths : sequence of Path
        The files, stored in this order.

    Returns
    -------
    list of dict
        ``{"file", "vault_object", "vault_tx", "vault_height"}`` (hex digests).

    Raises
    ------
    RongxinError
        A file is unreadable, or the node refused or could not be reached; files stored
        before it stay stored.
    """
    from chain.errors import ChainError

    vault = member_vault(cli, genesis)
    rows: list[dict[str, Any]] = []
    try:
        for path in paths:
            try:
                rows.append({"file": str(path), **vault_record(vault, path)})
            except (ChainError, OSError) as exc:
                raise RongxinError(f"{path} could not be kept in the vault: {exc}") from None
    finally:
        vault.objects.close()
    return rows


__all__ = ["keep_files", "member_vault", "vault_record"]
