"""Attach the consortium ledger's membership to an agency's or a regulator's trust.

``[consortium.ledger] client`` names a member's client profile
(:mod:`rongxin.client_profile`); its node client answers, with state proofs, whether a
certificate is registered and whether it was revoked (:mod:`privacy.membership`). A
service cannot prompt, so the key password comes from the profile's
``key_password_file`` or ``$RONGXIN_KEY_PASSWORD``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rongxin.client_profile import ProfileError, load_profile, open_client, profile_password

if TYPE_CHECKING:
    from chain.client import NodeClient
    from privacy.config import LedgerSettings
    from privacy.identity import Trust


def attach_ledger(trust: Trust, settings: LedgerSettings) -> tuple[Trust, NodeClient]:
    """``trust`` consulting the ledger through the profile's node, and that node client
    (close it when done).

    Raises
    ------
    ProfileError
        The profile cannot be read or opened, or no password is configured.
    CatalogError
        The profile's chain has another root than ``trust``.
    """
    from privacy.membership import with_ledger

    if not settings.client.is_file():
        raise ProfileError(
            f"[consortium.ledger] client: no member client profile at {settings.client} "
            "(`rongxin member add` writes one)"
        )
    profile = load_profile(settings.client)
    password = profile_password(profile)
    if password is None:
        raise ProfileError(
            f"{profile.path}: give key_password_file or set $RONGXIN_KEY_PASSWORD "
            "(the ledger's client is opened without a prompt)"
        )
    client, genesis = open_client(profile, password)
    try:
        trusted = with_ledger(
            trust,
            client,
            genesis,
            settings.ttl_s,
            settings.grace_s,
            require_registered=settings.require_registered,
        )
    except Exception:
        client.close()
        raise
    return trusted, client
