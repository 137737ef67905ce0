import json

import pytest

from chain import crypto
from chain.crypto import keyfile
from rongxin.demo import make_placeholder_certificate, run_demo, verify_placeholder_certificate
from rongxin.errors import RongxinError


def test_demo_runs_end_to_end(tmp_path) -> None:
    report = run_demo(tmp_path, scrypt_n=1 << 10)
    assert report.ok
    assert [s.name for s in report.steps] == [
        "consortium identity",
        "sign / verify",
        "encrypt / decrypt file",
        "ledger (single node)",
    ]
    assert (tmp_path / "ledger.db").exists() and (tmp_path / "genesis.cbor").exists()
    key = keyfile.load_private_key(tmp_path / "supervisor.key", "rongxin-demo")
    cert = json.loads((tmp_path / "supervisor.cert.json").read_text())
    assert verify_placeholder_certificate(cert) == key.public_key
    assert crypto.sm3_file(tmp_path / "sample-evidence.txt") == crypto.sm3_file(
        tmp_path / "sample-evidence.decrypted.txt"
    )


def test_placeholder_certificate_tampering() -> None:
    key = crypto.PrivateKey.generate()
    cert = make_placeholder_certificate(key, "S", "supervisory")
    forged = {**cert, "role": "consensus"}
    with pytest.raises(crypto.InvalidSignature):
        verify_placeholder_certificate(forged)
    with pytest.raises(RongxinError):
        verify_placeholder_certificate({k: v for k, v in cert.items() if k != "public_key"})
