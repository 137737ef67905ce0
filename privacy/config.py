"""Deployment configuration: consortium trust, catalog, agencies and regulator (TOML or JSON).

.. code-block:: toml

    [consortium]
    root_public_key = "04…"            # the supervisory root's SM2 public key (hex)
    revoked = []                       # certificate ids (hex) refused even if root-signed
    [consortium.ledger]                # optional: membership and revocations from the ledger
    client = "member-client.toml"      # a member's client profile (rongxin member add writes one)
    ttl_s = 10                         # answers cached this long
    grace_s = 60                       # then used this much longer while the node is unreachable
    require_registered = true          # refuse certificates never registered on the chain

    [regulator]
    role = "regulator"
    identity_key = "keys/regulator.key"              # encrypted SM2 key file
    identity_certificate = "keys/regulator.cert.json"
    password_file = "keys/password"    # else $RONGXIN_KEY_PASSWORD
    key_file = "regulator.paillier"    # the Paillier key (else a fresh one per run)

    [[agencies]]                       # an agency run in-process ...
    name = "county-a"
    source = { kind = "sqlite", path = "county-a.db" }
    state_dir = "state/county-a"
    identity_key = "keys/county-a.key"
    identity_certificate = "keys/county-a.cert.json"
    password_file = "keys/password"
    [agencies.policy]
    min_agencies = 3

    [[agencies]]                       # ... or reached over the network
    name = "county-b"
    url = "http://10.0.0.2:8600"
    identity_certificate = "keys/county-b.cert.json"

Every agency pins the other agencies of the deployment by their certificates.

Examples
--------
>>> d = Deployment.from_dict({
...     "catalog": {"t": {"v": {"type": "int", "min": 0, "max": 9}}},
...     "agencies": [{"name": "a", "source": {"kind": "csv", "path": "a"}}]})
>>> [a.name for a in d.agencies]
['a']
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.crypto import CryptoError, PublicKey
from chain.types import Certificate
from privacy.agency import AgencyServer
from privacy.catalog import Catalog
from privacy.connectors import from_config
from privacy.errors import CatalogError
from privacy.identity import Identity, PeerDirectory, Trust, load_certificate, load_identity
from privacy.membership import DEFAULT_GRACE_S, DEFAULT_TTL_S
from privacy.mpc import PartyJob
from privacy.policy import BudgetLedger, Policy
from privacy.replay import ReplayGuard

DEFAULT_PORT = 8600
"""Where an agency's service listens unless its configuration says otherwise."""
DEFAULT_CHAIN_ID = "rongxin-local"
"""The chain id assumed when ``[consortium]`` names none (the local consortium's)."""
PASSWORD_ENV = "RONGXIN_KEY_PASSWORD"
"""Where an identity key's password is taken from when no ``password_file`` is given."""


def _opt_str(doc: dict[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise CatalogError(f"{where}: {key!r} must be a string")
    return value


@dataclass(frozen=True)
class IdentityFiles:
    """Where a party's SM2 key, certificate and key password are (paths relative to the file)."""

    key: str | None = None
    certificate: str | None = None
    password_file: str | None = None

    @classmethod
    def from_dict(cls, doc: dict[str, Any], where: str) -> IdentityFiles:
        """Read ``identity_key``, ``identity_certificate`` and ``password_file``."""
        return cls(
            _opt_str(doc, "identity_key", where),
            _opt_str(doc, "identity_certificate", where),
            _opt_str(doc, "password_file", where),
        )

    def certificate_at(self, base: Path, who: str) -> Certificate:
        """The certificate (no password needed)."""
        if self.certificate is None:
            raise CatalogError(f"{who} has no identity_certificate")
        return load_certificate(base / self.certificate)

    def open(self, base: Path, who: str) -> Identity:
        """The key and certificate, the key opened with the password."""
        if self.key is None or self.certificate is None:
            raise CatalogError(f"{who} needs identity_key and identity_certificate (its SM2 identity)")
        if self.password_file is not None:
            try:
                password = (base / self.password_file).read_text(encoding="utf-8").rstrip("\n")
            except OSError as exc:
                raise CatalogError(
                    f"cannot read password file {base / self.password_file}: {exc.strerror}"
                ) from None
        else:
            password = os.environ.get(PASSWORD_ENV, "")
            if not password:
                raise CatalogError(f"{who}: give password_file or set ${PASSWORD_ENV} for its identity key")
        return load_identity(base / self.key, base / self.certificate, password)


@dataclass(frozen=True)
class AgencyConfig:
    """One agency's entry: in-process (``source``) or remote (``url``)."""

    name: str
    source: dict[str, Any] | None
    policy: Policy
    state_dir: str | None = None
    identity: IdentityFiles = IdentityFiles()
    url: str | None = None
    mpc_host: str = "127.0.0.1"
    tls_certificate: str | None = None
    tls_key: str | None = None

    @classmethod
    def from_dict(cls, doc: Any, i: int) -> AgencyConfig:
        """Parse ``agencies[i]``."""
        where = f"agencies[{i}]"
        if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
            raise CatalogError(f"{where} needs a 'name'")
        source, url = doc.get("source"), _opt_str(doc, "url", where)
        if (source is None) == (url is None) or (source is not None and not isinstance(source, dict)):
            raise CatalogError(f"{where} needs either a 'source' table (in-process) or a 'url' (remote)")
        return cls(
            doc["name"],
            None if source is None else dict(source),
            Policy.from_dict(doc.get("policy", {})),
            _opt_str(doc, "state_dir", where),
            IdentityFiles.from_dict(doc, where),
            url,
            _opt_str(doc, "mpc_host", where) or "127.0.0.1",
            _opt_str(doc, "tls_certificate", where),
            _opt_str(doc, "tls_key", where),
        )


def chain_id_of(doc: Any) -> str:
    """The consortium's chain id (``[consortium] chain_id``), bound into request signatures."""
    value = doc.get("chain_id", DEFAULT_CHAIN_ID) if isinstance(doc, dict) else DEFAULT_CHAIN_ID
    if not isinstance(value, str) or not value:
        raise CatalogError("[consortium] chain_id must be a non-empty string")
    return value


def parse_trust(doc: Any) -> Trust:
    """The ``[consortium]`` table: root public key (hex) and revoked certificate ids."""
    if not isinstance(doc, dict) or not isinstance(doc.get("root_public_key"), str):
        raise CatalogError("[consortium] needs root_public_key (hex of the supervisory root's SM2 key)")
    revoked = doc.get("revoked", [])
    try:
        root = PublicKey.from_bytes(bytes.fromhex(doc["root_public_key"]))
        ids = frozenset(bytes.fromhex(r) for r in revoked)
    except (ValueError, TypeError, CryptoError) as exc:
        raise CatalogError(f"[consortium]: invalid root_public_key or revoked list: {exc}") from None
    return Trust(root, ids)


@dataclass(frozen=True)
class LedgerSettings:
    """``[consortium.ledger]``: where and how to read membership from the consortium ledger.

    The client profile is opened by the command that runs the agency or the query (it
    holds a member key), then :func:`privacy.membership.with_ledger` attaches it.
    """

    client: Path
    ttl_s: float = DEFAULT_TTL_S
    grace_s: float = DEFAULT_GRACE_S
    require_registered: bool = True

    @classmethod
    def from_dict(cls, doc: Any, base: Path) -> LedgerSettings:
        """Parse the table (``client`` relative to ``base``)."""
        where = "[consortium.ledger]"
        if not isinstance(doc, dict) or not isinstance(doc.get("client"), str) or not doc["client"]:
            raise CatalogError(f"{where} needs client (a member's client profile)")
        extra = set(doc) - {"client", "ttl_s", "grace_s", "require_registered"}
        if extra:
            raise CatalogError(f"{where}: unknown keys {sorted(extra)}")
        ttl, grace = doc.get("ttl_s", DEFAULT_TTL_S), doc.get("grace_s", DEFAULT_GRACE_S)
        for name, v in (("ttl_s", ttl), ("grace_s", grace)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 86_400:
                raise CatalogError(f"{where}: {name} must be seconds between 0 and 86400")
        required = doc.get("require_registered", True)
        if not isinstance(required, bool):
            raise CatalogError(f"{where}: require_registered must be true or false")
        return cls(base / doc["client"], float(ttl), float(grace), required)


def ledger_settings(doc: Any, base: Path) -> LedgerSettings | None:
    """The ``[consortium.ledger]`` table of a ``[consortium]`` table, if any."""
    if not isinstance(doc, dict) or "ledger" not in doc:
        return None
    return LedgerSettings.from_dict(doc["ledger"], base)


@dataclass(frozen=True)
class Deployment:
    """Everything ``rongxin query run`` needs."""

    catalog: Catalog
    agencies: list[AgencyConfig]
    regulator: dict[str, Any] = field(default_factory=dict)
    base: Path = Path(".")
    trust: Trust | None = None
    chain_id: str = DEFAULT_CHAIN_ID
    ledger: LedgerSettings | None = None

    @classmethod
    def from_dict(cls, doc: Any, base: Path | None = None) -> Deployment:
        """Parse a configuration document."""
        if not isinstance(doc, dict) or "catalog" not in doc or "agencies" not in doc:
            raise CatalogError("a deployment needs 'catalog' and 'agencies'")
        if not isinstance(doc["agencies"], list):
            raise CatalogError("'agencies' is a list of agency tables")
        agencies = [AgencyConfig.from_dict(a, i) for i, a in enumerate(doc["agencies"])]
        names = [a.name for a in agencies]
        if len(set(names)) != len(names):
            raise CatalogError("agency names must be unique")
        trust = parse_trust(doc["consortium"]) if "consortium" in doc else None
        return cls(
            Catalog.from_dict(doc["catalog"]),
            agencies,
            dict(doc.get("regulator", {})),
            base or Path("."),
            trust,
            chain_id_of(doc.get("consortium", {})),
            ledger_settings(doc.get("consortium"), base or Path(".")),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Deployment:
        """Read a ``.toml`` or ``.json`` file (paths inside are relative to it)."""
        return cls.from_dict(*read_document(path))

    def regulator_identity(self) -> Identity:
        """The requester's SM2 identity (``[regulator]`` identity files)."""
        return IdentityFiles.from_dict(self.regulator, "[regulator]").open(self.base, "the regulator")

    def peers(self) -> PeerDirectory:
        """Every agency of the deployment, pinned by its certificate."""
        return PeerDirectory(
            {a.name: a.identity.certificate_at(self.base, f"agency {a.name!r}") for a in self.agencies}
        )

    def server(self, agency: AgencyConfig, trust: Trust | None = None) -> AgencyServer:
        """The in-process server of ``agency`` (pinning every agency of the deployment);
        ``trust`` replaces the deployment's (e.g. with the ledger attached)."""
        trust = trust or self.trust
        if trust is None:
            raise CatalogError("the deployment needs a [consortium] table (the root its agencies trust)")
        return build_server(agency, self.catalog, trust, self.peers(), self.base)

    def clients(
        self, names: list[str] | None = None, signer: Identity | None = None, trust: Trust | None = None
    ) -> list[Any]:
        """Clients for the named agencies (all by default): in-process or over HTTP.

        ``signer`` (the requester's identity) signs the HTTP requests to remote agencies;
        ``trust`` replaces the deployment's for in-process agencies.
        """
        known = {a.name: a for a in self.agencies}
        chosen = names or list(known)
        missing = [n for n in chosen if n not in known]
        if missing:
            raise CatalogError(f"unknown agencies {missing}; the deployment has {sorted(known)}")
        out: list[Any] = []
        for n in chosen:
            a = known[n]
            if a.url is not None:
                from privacy.http_client import HttpAgencyClient

                cert = a.identity.certificate_at(self.base, f"agency {n!r}")
                pinned = None if a.tls_certificate is None else self.base / a.tls_certificate
                out.append(
                    HttpAgencyClient(a.name, a.url, cert, signer, self.chain_id, tls_certificate=pinned)
                )
            else:
                out.append(LocalAgencyClient(self.server(a, trust)))
        return out


def build_server(
    agency: AgencyConfig, catalog: Catalog, trust: Trust, peers: PeerDirectory, base: Path
) -> AgencyServer:
    """An agency's server from its entry: data source, identity, budget and replay state."""
    if agency.source is None:
        raise CatalogError(f"agency {agency.name!r} is remote ({agency.url}); it has no in-process server")
    budget = state = None
    replay = ReplayGuard()
    if agency.state_dir is not None:
        state = base / agency.state_dir
        state.mkdir(parents=True, exist_ok=True)
        budget = BudgetLedger(state / "budget.db")
        replay = ReplayGuard(state / "replay.db")
    return AgencyServer(
        agency.name,
        from_config(agency.source, catalog, base),
        catalog,
        agency.policy,
        agency.identity.open(base, f"agency {agency.name!r}"),
        trust,
        peers,
        budget,
        replay,
        state,
        agency.source,
        base,
        agency.mpc_host,
    )


@dataclass(frozen=True)
class AgencyService:
    """One agency run as a network service (``rongxin agency serve --config agency.toml``).

    .. code-block:: toml

        [consortium]
        root_public_key = "04…"
        chain_id = "rongxin-local"

        [agency]                           # the keys of an in-process [[agencies]] entry
        name = "county-a"                  # (see the module docstring), and where to listen
        listen = "127.0.0.1:8600"

        [[peers]]                          # the other agencies, pinned
        name = "county-b"
        certificate = "keys/county-b.cert.json"

        [catalog.plays.views]              # the shared catalog
        type = "int"
    """

    server: AgencyServer
    host: str
    port: int
    chain_id: str
    tls_key: Path | None = None
    tls_certificate: Path | None = None
    ledger: LedgerSettings | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> AgencyService:
        """Read an agency's service configuration (paths inside are relative to it)."""
        doc, base = read_document(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("agency"), dict) or "catalog" not in doc:
            raise CatalogError(f"{path}: an agency service needs [agency], [consortium] and [catalog]")
        if "consortium" not in doc:
            raise CatalogError(f"{path}: an agency service needs [consortium] (the root it trusts)")
        entry = {k: v for k, v in doc["agency"].items() if k != "listen"}
        agency = AgencyConfig.from_dict(entry, 0)
        listen = doc["agency"].get("listen", f"127.0.0.1:{DEFAULT_PORT}")
        host, _, port = str(listen).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise CatalogError(f"{path}: listen must be HOST:PORT, not {listen!r}")
        peers: dict[str, Certificate] = {}
        for i, p in enumerate(doc.get("peers", [])):
            if (
                not isinstance(p, dict)
                or not isinstance(p.get("name"), str)
                or not isinstance(p.get("certificate"), str)
            ):
                raise CatalogError(f"{path}: peers[{i}] needs a name and a certificate file")
            peers[p["name"]] = load_certificate(base / p["certificate"])
        server = build_server(
            agency,
            Catalog.from_dict(doc["catalog"]),
            parse_trust(doc["consortium"]),
            PeerDirectory(peers),
            base,
        )
        if (agency.tls_key is None) != (agency.tls_certificate is None):
            raise CatalogError(f"{path}: give both tls_key and tls_certificate for HTTPS, or neither")
        return cls(
            server,
            host.strip("[]"),
            int(port),
            chain_id_of(doc["consortium"]),
            None if agency.tls_key is None else base / agency.tls_key,
            None if agency.tls_certificate is None else base / agency.tls_certificate,
            ledger_settings(doc["consortium"], base),
        )


def read_document(path: str | Path) -> tuple[dict[str, Any], Path]:
    """A ``.toml`` or ``.json`` file's document and the directory its paths are relative to."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read deployment file {p}: {exc.strerror}") from None
    try:
        doc = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{p} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {exc}") from None
    return doc, p.resolve().parent


class LocalAgencyClient:
    """Reaches an in-process :class:`AgencyServer` (messages still travel as bytes)."""

    def __init__(self, server: AgencyServer) -> None:
        self.server = server
        self.name = server.name
        self.certificate = server.certificate

    def call(self, request: bytes) -> bytes:
        """Send a request, get the answer bytes."""
        return self.server.handle(bytes(request))

    def party_job(self) -> PartyJob:
        """MPC launch parameters."""
        return self.server.party_job()
