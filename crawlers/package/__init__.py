"""Evidence packages: a WACZ 1.1.1 zip of a capture with our signed manifest, the chain
receipt of its digest and an optional RFC 3161 timestamp; read and verified offline.

>>> from crawlers.package import read_package, verify_package  # doctest: +SKIP
>>> pkg = read_package("case-17.wacz"); pkg.manifest["capture"]["url"]  # doctest: +SKIP
"""

from __future__ import annotations

from crawlers.package.build import add_receipt, add_timestamp, build_package, timestamp_package
from crawlers.package.manifest import package_digest
from crawlers.package.read import EvidencePackage, read_package
from crawlers.package.verify import Check, Verification, verify_package

__all__ = [
    "Check",
    "EvidencePackage",
    "Verification",
    "add_receipt",
    "add_timestamp",
    "build_package",
    "package_digest",
    "read_package",
    "timestamp_package",
    "verify_package",
]
