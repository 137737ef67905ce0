"""The package front doors: every exported name imports, and is the object at its deep path.

``from chain import Receipt`` must give :class:`chain.receipt.Receipt` itself, not a copy,
and importing a package must stay cheap: names are loaded on first access.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

#: package -> {exported name: the module that defines it}
FRONT_DOORS: dict[str, dict[str, str]] = {
    "chain": {
        "Certificate": "chain.types",
        "ChainError": "chain.errors",
        "ChainParams": "chain.types",
        "Checkpoint": "chain.receipt",
        "CheckpointInfo": "chain.receipt",
        "CodecError": "chain.codec",
        "Contract": "chain.contracts.base",
        "ContractRegistry": "chain.contracts.base",
        "Genesis": "chain.types",
        "Identity": "chain.localnet",
        "LedgerStore": "chain.store",
        "LocalConsortium": "chain.localnet",
        "LocalNet": "chain.localnet",
        "LocalNetError": "chain.localnet",
        "MerkleError": "chain.merkle",
        "MerkleTree": "chain.merkle",
        "Receipt": "chain.receipt",
        "ReceiptError": "chain.receipt",
        "Replica": "chain.replica",
        "Role": "chain.types",
        "StateProof": "chain.state_tree",
        "StoreError": "chain.store",
        "Transaction": "chain.types",
        "TxContext": "chain.contracts.base",
        "ValidationError": "chain.types",
        "VerifiedReceipt": "chain.receipt",
        "build_checkpoint": "chain.receipt",
        "build_receipt": "chain.receipt",
        "commitment_of": "chain.state_tree",
        "merkle_root": "chain.merkle",
        "verify_anchored_digest": "chain.receipt",
        "verify_checkpoint": "chain.receipt",
        "verify_consistency": "chain.merkle",
        "verify_inclusion": "chain.merkle",
        "verify_receipt": "chain.receipt",
        "verify_state_proof": "chain.state_tree",
    },
    "chain.api": {
        "ReplayCache": "chain.api.auth",
        "create_app": "chain.api.app",
        "sign_request": "chain.api.auth",
        "verify_request": "chain.api.auth",
    },
    "chain.client": {
        "AnchoredDigest": "chain.client.common",
        "AsyncLedger": "chain.client.ledger",
        "AsyncNodeClient": "chain.client.http",
        "AsyncSubmitStream": "chain.client.stream",
        "ClientError": "chain.errors",
        "InProcessLedger": "chain.client.inprocess",
        "Ledger": "chain.client.ledger",
        "NodeClient": "chain.client.http",
        "SubmitStream": "chain.client.stream",
    },
    "chain.node": {
        "KEY_PASSWORD_ENV": "chain.node.config",
        "ApiSection": "chain.node.config",
        "ConfigError": "chain.errors",
        "ConsensusSection": "chain.node.config",
        "HostPort": "chain.node.config",
        "MempoolSection": "chain.node.config",
        "NodeConfig": "chain.node.config",
        "NodeSection": "chain.node.config",
        "P2PSection": "chain.node.config",
        "StateSyncSection": "chain.node.config",
        "certificate_from_json": "chain.node.identity",
        "certificate_to_json": "chain.node.identity",
        "dump_config": "chain.node.config",
        "key_password": "chain.node.identity",
        "load_config": "chain.node.config",
        "load_genesis": "chain.node.identity",
        "load_identity": "chain.node.identity",
        "parse_host_port": "chain.node.config",
        "read_certificate": "chain.node.identity",
    },
    "forensics": {
        "AudioIndex": "forensics.audio.index",
        "ForensicsError": "forensics.errors",
        "INDEX_CLASSES": "forensics.library",
        "ImageIndex": "forensics.image.index",
        "Library": "forensics.library",
        "LibraryError": "forensics.errors",
        "DuplicateContentError": "forensics.errors",
        "ReadOnlyLibraryError": "forensics.errors",
        "Match": "forensics.types",
        "MediaError": "forensics.errors",
        "MediaIndex": "forensics.types",
        "MediaKind": "forensics.types",
        "Registration": "forensics.types",
        "UnsupportedMediaError": "forensics.errors",
        "VideoIndex": "forensics.video.index",
        "array_digest": "forensics.library",
        "detect_kind": "forensics.types",
        "register_index": "forensics.library",
    },
    "privacy": {
        "AgencyClient": "privacy.query",
        "AgencyService": "privacy.config",
        "HttpAgencyClient": "privacy.http_client",
        "Identity": "privacy.identity",
        "IdentityError": "privacy.errors",
        "PeerDirectory": "privacy.identity",
        "PostgreSQLConnector": "privacy.pg",
        "Trust": "privacy.identity",
        "check_record": "privacy.audit",
        "AgencyServer": "privacy.agency",
        "AgencyUnavailable": "privacy.errors",
        "Aggregator": "privacy.query",
        "AnchorReceipt": "privacy.audit",
        "ArrayConnector": "privacy.connectors",
        "AuditAnchor": "privacy.audit",
        "AuditError": "privacy.errors",
        "AuditLog": "privacy.audit",
        "AuditRecord": "privacy.audit",
        "BudgetExhausted": "privacy.errors",
        "BudgetLedger": "privacy.policy",
        "CSVConnector": "privacy.connectors",
        "Catalog": "privacy.catalog",
        "CatalogError": "privacy.errors",
        "CiphertextError": "privacy.errors",
        "Column": "privacy.catalog",
        "Connector": "privacy.connectors",
        "ConnectorError": "privacy.errors",
        "ConsortiumAnchor": "privacy.audit",
        "Decision": "privacy.policy",
        "Deployment": "privacy.config",
        "ExecutorAnchor": "privacy.audit",
        "LedgerAnchor": "privacy.audit",
        "Filter": "privacy.spec",
        "KeyValidationError": "privacy.errors",
        "LedgerMembership": "privacy.membership",
        "LocalAgencyClient": "privacy.config",
        "MPCError": "privacy.errors",
        "OverflowRisk": "privacy.errors",
        "Policy": "privacy.policy",
        "PolicyRefusal": "privacy.errors",
        "PrivacyError": "privacy.errors",
        "QueryResult": "privacy.query",
        "QuerySpec": "privacy.spec",
        "Regulator": "privacy.query",
        "with_ledger": "privacy.membership",
        "SQLiteConnector": "privacy.connectors",
        "SpecError": "privacy.errors",
        "generate_keypair": "privacy.paillier",
        "parse": "privacy.spec",
        "parse_sql": "privacy.spec",
    },
    "zkp": {
        "AuditReport": "zkp.transfer",
        "AuditorKey": "zkp.auditor",
        "DecryptionError": "zkp.errors",
        "EncodingError": "zkp.errors",
        "OwnerKey": "zkp.transfer",
        "OwnershipRecord": "zkp.transfer",
        "ParameterError": "zkp.errors",
        "PedersenGens": "zkp.pedersen",
        "Point": "zkp.group",
        "ProofError": "zkp.errors",
        "RangeProof": "zkp.rangeproof",
        "SecretKey": "zkp.group",
        "Share": "zkp.transfer",
        "Transcript": "zkp.transcript",
        "Transfer": "zkp.transfer",
        "ZkpError": "zkp.errors",
        "audit": "zkp.transfer",
        "pedersen_gens": "zkp.pedersen",
        "prove_key_possession": "zkp.transfer",
        "prove_range": "zkp.rangeproof",
        "prove_transfer": "zkp.transfer",
        "register_contracts": "zkp.contract",
        "verify_key_possession": "zkp.transfer",
        "verify_range": "zkp.rangeproof",
        "verify_transfer": "zkp.transfer",
    },
    "datasets": {
        "AttackError": "datasets.errors",
        "DatasetsError": "datasets.errors",
        "DecodeError": "datasets.errors",
        "Entry": "datasets.manifest",
        "FetchError": "datasets.errors",
        "Manifest": "datasets.manifest",
        "ManifestError": "datasets.errors",
        "SmokeCorpusError": "datasets.errors",
        "Step": "datasets.attacks",
        "ToolMissingError": "datasets.errors",
        "Truth": "datasets.attacks",
        "build": "datasets.corpus",
        "corpus_dir": "datasets.paths",
        "counts": "datasets.corpus",
        "data_root": "datasets.paths",
        "ensure": "datasets.smoke",
        "generate": "datasets.attacks.generate",
    },
    "rongxin": {
        "DemoReport": "rongxin.demo",
        "DemoStep": "rongxin.demo",
        "RongxinError": "rongxin.errors",
        "main": "rongxin.cli",
        "run_demo": "rongxin.demo",
    },
    "crawlers": {
        "AddressGuard": "crawlers.guard",
        "BlockedAddressError": "crawlers.errors",
        "BrowserError": "crawlers.errors",
        "Case": "crawlers.store",
        "CrawlError": "crawlers.errors",
        "FetchError": "crawlers.errors",
        "FetchLimits": "crawlers.fetch",
        "FetchTimeoutError": "crawlers.errors",
        "Fetcher": "crawlers.fetch",
        "MediaPrepError": "crawlers.errors",
        "PlaylistError": "crawlers.errors",
        "RedirectError": "crawlers.errors",
        "RobotsDisallowedError": "crawlers.errors",
        "ScanConfig": "crawlers.scan",
        "ScanStore": "crawlers.store",
        "ScanStoreError": "crawlers.errors",
        "Scanner": "crawlers.scan",
        "DaskScanner": "crawlers.dask_scan",
        "ScopeRule": "crawlers.urls",
        "SeedFileError": "crawlers.errors",
        "TooLargeError": "crawlers.errors",
        "classify": "crawlers.guard",
        "normalize": "crawlers.urls",
    },
}

#: Heavy libraries that importing a package must not load.
HEAVY = ("numpy", "cv2", "faiss", "scipy", "phe", "mpyc", "coincurve", "typer")


@pytest.mark.parametrize("package", sorted(FRONT_DOORS))
def test_all_lists_exactly_the_front_door(package: str) -> None:
    module = importlib.import_module(package)
    expected = set(FRONT_DOORS[package]) | ({"__version__"} if package == "rongxin" else set())
    assert sorted(module.__all__) == sorted(expected)
    assert module.__doc__ and len(module.__doc__) > 80


@pytest.mark.parametrize(
    ("package", "name", "deep"),
    [(p, n, d) for p, names in sorted(FRONT_DOORS.items()) for n, d in sorted(names.items())],
)
def test_front_door_name_is_the_deep_object(package: str, name: str, deep: str) -> None:
    front = getattr(importlib.import_module(package), name)
    assert front is getattr(importlib.import_module(deep), name)


@pytest.mark.parametrize("package", sorted(FRONT_DOORS))
def test_star_import_and_dir(package: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    module = importlib.import_module(package)
    assert set(module.__all__) <= set(namespace)
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("package", sorted(FRONT_DOORS))
def test_unknown_name_raises_attribute_error(package: str) -> None:
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        exec(f"from {package} import no_such_name", {})


def test_from_import_syntax_works() -> None:
    import chain.localnet
    import chain.receipt
    import chain.types
    import forensics.library
    import privacy.query
    import zkp.transfer
    from chain import Checkpoint, Genesis, LocalConsortium, Receipt, Transaction, verify_receipt
    from forensics import Library, Match
    from privacy import AgencyClient, AuditAnchor, Regulator
    from zkp import Transcript, prove_transfer

    assert Receipt is chain.receipt.Receipt and verify_receipt is chain.receipt.verify_receipt
    assert Checkpoint is chain.receipt.Checkpoint and LocalConsortium is chain.localnet.LocalConsortium
    assert Genesis is chain.types.Genesis and Transaction is chain.types.Transaction
    assert Library is forensics.library.Library and Match is forensics.library.Match
    assert Regulator is privacy.query.Regulator and AgencyClient is privacy.query.AgencyClient
    assert AuditAnchor.__module__ == "privacy.audit"
    assert prove_transfer is zkp.transfer.prove_transfer and Transcript.__module__ == "zkp.transcript"


@pytest.mark.parametrize("package", sorted(FRONT_DOORS))
def test_import_is_light(package: str) -> None:
    """In a fresh interpreter, ``import <package>`` loads none of the heavy libraries."""
    code = (
        f"import sys, {package}\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_subpackages_still_import_through_the_front_door() -> None:
    """``from chain import codec`` (a submodule) still works beside the lazy names."""
    from chain import codec, crypto, merkle

    assert codec.__name__ == "chain.codec" and crypto.__name__ == "chain.crypto"
    assert merkle.__name__ == "chain.merkle"
