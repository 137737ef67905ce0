import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chain import crypto
from chain.crypto import keyfile
from chain.crypto.sm2 import signature_from_der
from rongxin.cli import app

runner = CliRunner()


@pytest.fixture
def keypath(tmp_path, monkeypatch):
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "pw")
    key = crypto.PrivateKey.generate()
    path = tmp_path / "k.key"
    keyfile.save_private_key(key, path, "pw", scrypt_n=1 << 10)
    (tmp_path / "k.pub.pem").write_text(key.public_key.to_pem())
    return path


def test_hash(tmp_path) -> None:
    f = tmp_path / "abc.txt"
    f.write_bytes(b"abc")
    result = runner.invoke(app, ["crypto", "hash", str(f)])
    assert result.exit_code == 0
    assert result.stdout.startswith("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    missing = runner.invoke(app, ["crypto", "hash", str(tmp_path / "none")])
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr


def test_sign_verify_cycle(tmp_path, keypath) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_bytes(b"report" * 1000)
    signed = runner.invoke(app, ["crypto", "sign", str(doc), "--key", str(keypath)])
    assert signed.exit_code == 0, signed.output
    sig = signed.stdout.strip()
    assert len(sig) == 128
    pem = str(tmp_path / "k.pub.pem")
    ok = runner.invoke(app, ["crypto", "verify", str(doc), sig, "--pubkey", pem])
    assert ok.exit_code == 0 and "valid" in ok.stdout
    by_keyfile = runner.invoke(app, ["crypto", "verify", str(doc), sig, "--pubkey", str(keypath)])
    assert by_keyfile.exit_code == 0
    doc.write_bytes(b"report" * 999)
    bad = runner.invoke(app, ["crypto", "verify", str(doc), sig, "--pubkey", pem])
    assert bad.exit_code == 1 and "INVALID" in bad.stderr
    short = runner.invoke(app, ["crypto", "verify", str(doc), sig[:-2], "--pubkey", pem])
    assert short.exit_code == 1 and "64 bytes" in short.stderr
    nothex = runner.invoke(app, ["crypto", "verify", str(doc), "zz", "--pubkey", pem])
    assert nothex.exit_code == 1


def test_wrong_password(tmp_path, keypath, monkeypatch) -> None:
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "nope")
    doc = tmp_path / "doc.txt"
    doc.write_bytes(b"x")
    result = runner.invoke(app, ["crypto", "sign", str(doc), "--key", str(keypath)])
    assert result.exit_code == 1
    assert "wrong password" in result.stderr


def test_encrypt_decrypt_cycle(tmp_path, keypath) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x00\x01" * 50_000)
    enc = tmp_path / "in.rxe"
    r1 = runner.invoke(
        app, ["crypto", "encrypt", str(src), "--to", str(tmp_path / "k.pub.pem"), "--out", str(enc)]
    )
    assert r1.exit_code == 0, r1.output
    out = tmp_path / "out.bin"
    r2 = runner.invoke(app, ["crypto", "decrypt", str(enc), "--key", str(keypath), "--out", str(out)])
    assert r2.exit_code == 0, r2.output
    assert out.read_bytes() == src.read_bytes()
    enc.write_bytes(enc.read_bytes()[:-5])
    r3 = runner.invoke(
        app, ["crypto", "decrypt", str(enc), "--key", str(keypath), "--out", str(tmp_path / "x")]
    )
    assert r3.exit_code == 1
    assert not (tmp_path / "x").exists()


def test_keygen_refuses_overwrite(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "new-key-pw")
    monkeypatch.setattr(keyfile, "DEFAULT_SCRYPT_N", 1 << 10)
    target = tmp_path / "new.key"
    target.write_text("keep me")
    result = runner.invoke(app, ["crypto", "keygen", str(target)])
    assert result.exit_code == 1 and "exists" in result.stderr
    assert target.read_text() == "keep me"


def test_version_and_bad_pubkey(tmp_path) -> None:
    v = runner.invoke(app, ["version"])
    assert v.exit_code == 0 and "OpenSSL" in v.stdout
    f = tmp_path / "f"
    f.write_bytes(b"x")
    r = runner.invoke(app, ["crypto", "encrypt", str(f), "--to", "not-a-key", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "neither" in r.stderr


def _encrypt(tmp_path, src, out, *extra: str):
    to = str(tmp_path / "k.pub.pem")
    return runner.invoke(app, ["crypto", "encrypt", str(src), "--to", to, "--out", str(out), *extra])


def test_encrypt_refuses_an_existing_output_without_force(tmp_path, keypath) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"evidence")
    out = tmp_path / "in.rxe"
    out.write_bytes(b"keep me")
    refused = _encrypt(tmp_path, src, out)
    assert refused.exit_code == 1 and "exists" in refused.stderr and "--force" in refused.stderr
    assert out.read_bytes() == b"keep me"
    forced = _encrypt(tmp_path, src, out, "--force")
    assert forced.exit_code == 0, forced.output
    assert out.read_bytes() != b"keep me"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_encrypt_onto_its_own_input_always_refuses(tmp_path, keypath) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"evidence")
    (tmp_path / "alias.bin").symlink_to(src)
    for out in (src, tmp_path / "alias.bin", tmp_path / "." / "in.bin"):
        for extra in ((), ("--force",)):
            result = _encrypt(tmp_path, src, out, *extra)
            assert result.exit_code == 1 and "is also an input" in _flat(result.stderr)
    assert src.read_bytes() == b"evidence"


def test_decrypt_refuses_an_existing_output_without_force(tmp_path, keypath) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"evidence")
    enc = tmp_path / "in.rxe"
    assert _encrypt(tmp_path, src, enc).exit_code == 0
    out = tmp_path / "out.bin"
    out.write_bytes(b"keep me")
    decrypt = ["crypto", "decrypt", str(enc), "--key", str(keypath), "--out"]
    refused = runner.invoke(app, [*decrypt, str(out)])
    assert refused.exit_code == 1 and "exists" in refused.stderr
    assert out.read_bytes() == b"keep me"
    forced = runner.invoke(app, [*decrypt, str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert out.read_bytes() == b"evidence"
    onto_key = runner.invoke(app, [*decrypt, str(keypath), "--force"])
    assert onto_key.exit_code == 1 and "is also an input" in _flat(onto_key.stderr)
    assert keyfile.load_private_key(keypath, "pw")


def test_keygen_writes_a_sealed_key_and_force_replaces_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "new-key-pw")
    target = tmp_path / "new.key"
    first = runner.invoke(app, ["crypto", "keygen", str(target)])
    assert first.exit_code == 0, first.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    key = keyfile.load_private_key(target, "new-key-pw")
    assert (tmp_path / "new.key.pub.pem").read_text() == key.public_key.to_pem()
    again = runner.invoke(app, ["crypto", "keygen", str(target), "--force"])
    assert again.exit_code == 0, again.output
    assert keyfile.load_private_key(target, "new-key-pw") != key


def _flat(text: str) -> str:
    """Output with the console's line wrapping undone."""
    return " ".join(text.split())


def test_a_binary_pubkey_file_is_named_not_echoed(tmp_path, keypath, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # short names: no line wrapping in the output
    doc = Path("doc.txt")
    doc.write_bytes(b"report")
    photo = Path("photo.png")
    photo.write_bytes(b"\x89PNG\r\n\x1a\n[/x][red]secret-bytes\xff\xfe" + bytes(range(256)))
    sig = runner.invoke(app, ["crypto", "sign", str(doc), "--key", str(keypath)]).stdout.strip()
    res = runner.invoke(app, ["crypto", "verify", str(doc), sig, "--pubkey", str(photo)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    err = _flat(res.stderr)
    assert "photo.png is neither" in err and "secret-bytes" not in err and "PNG" not in err


def test_file_names_are_printed_as_they_are(tmp_path, keypath, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # short names: no line wrapping in the output
    src = Path("photo[red].txt")
    src.write_bytes(b"evidence")
    out = Path("photo[red].txt.rxe")
    pem = "k.pub.pem"
    res = runner.invoke(app, ["crypto", "encrypt", str(src), "--to", pem, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "photo[red].txt.rxe" in _flat(res.stdout)
    again = runner.invoke(app, ["crypto", "encrypt", str(src), "--to", pem, "--out", str(out)])
    assert again.exit_code == 1 and "photo[red].txt.rxe exists" in _flat(again.stderr)
    odd = Path("a[/x]b")
    res = runner.invoke(app, ["crypto", "hash", str(odd)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    assert "a[/x]b" in _flat(res.stderr)


def test_writing_under_a_file_is_one_line_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "new-key-pw")
    monkeypatch.setattr(keyfile, "DEFAULT_SCRYPT_N", 1 << 10)
    (tmp_path / "afile").write_text("x")
    for args in (
        ["crypto", "keygen", str(tmp_path / "afile" / "key")],
        ["demo", "--out", str(tmp_path / "afile" / "demo")],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), (args, res.output)
        err = _flat(res.stderr)
        assert "cannot write" in err and "Not a directory" in err and "Traceback" not in err


def test_new_keys_need_a_long_enough_password(tmp_path, keypath, monkeypatch) -> None:
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "short")
    target = tmp_path / "new.key"
    res = runner.invoke(app, ["crypto", "keygen", str(target)])
    assert res.exit_code == 1 and "at least 8 characters" in _flat(res.stderr)
    assert not target.exists()
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "pw")  # an existing key opens with its password
    doc = tmp_path / "doc.txt"
    doc.write_bytes(b"x")
    assert runner.invoke(app, ["crypto", "sign", str(doc), "--key", str(keypath)]).exit_code == 0
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", "short")
    res = runner.invoke(app, ["transfer", "auditor-keygen", str(tmp_path / "aud.key")])
    assert res.exit_code == 1 and "at least 8 characters" in _flat(res.stderr)


def test_der_signatures_for_openssl(tmp_path, keypath) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_bytes(b"report" * 100)
    pem = str(tmp_path / "k.pub.pem")
    res = runner.invoke(app, ["crypto", "sign", str(doc), "--key", str(keypath), "--format", "der"])
    assert res.exit_code == 0, res.output
    der = bytes.fromhex(res.stdout.strip())
    assert der[0] == 0x30 and len(signature_from_der(der)) == 64
    ok = runner.invoke(app, ["crypto", "verify", str(doc), der.hex(), "--pubkey", pem])
    assert ok.exit_code == 0 and "valid" in ok.stdout
    binary = tmp_path / "doc.sig"
    binary.write_bytes(der)  # as `openssl pkeyutl -sign` writes it
    ok = runner.invoke(app, ["crypto", "verify", str(doc), str(binary), "--pubkey", pem])
    assert ok.exit_code == 0, ok.output
    if shutil.which("openssl"):
        openssl = ["openssl", "dgst", "-sm3", "-verify", pem, "-sigopt", "distid:1234567812345678"]
        checked = subprocess.run(
            [*openssl, "-signature", str(binary), str(doc)], capture_output=True, text=True
        )
        assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked.stderr
    doc.write_bytes(b"other")
    bad = runner.invoke(app, ["crypto", "verify", str(doc), str(binary), "--pubkey", pem])
    assert bad.exit_code == 1 and "INVALID" in bad.stderr
    refused = runner.invoke(app, ["crypto", "sign", str(doc), "--key", str(keypath), "--format", "pem"])
    assert refused.exit_code == 2


def test_verify_json_failures_are_json(tmp_path) -> None:
    import json

    receipt, genesis = tmp_path / "r.cbor", tmp_path / "g.cbor"
    receipt.write_bytes(b"\xa0")
    res = runner.invoke(app, ["verify", str(receipt), "--genesis", str(genesis), "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert "g.cbor" in doc["error"] and doc["reason"] == "io"
    genesis.write_bytes(b"not cbor")
    res = runner.invoke(app, ["verify", str(receipt), "--genesis", str(genesis), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["error"].startswith("INVALID")


def test_help_shows_metavars_not_type_tags() -> None:
    res = runner.invoke(app, ["crypto", "hash", "--help"], env={"COLUMNS": "120"})
    assert "FILE..." in res.stdout
    res = runner.invoke(app, ["crypto", "verify", "--help"], env={"COLUMNS": "120"})
    assert "<str>" not in res.stdout.split("--pubkey")[1].split("\n")[0]


def test_a_damaged_key_file_is_named_not_echoed(tmp_path, keypath) -> None:
    import json

    doc = json.loads(keypath.read_text())
    doc["kdf"]["name"] = "[red]" + "secret-bytes" * 400
    keypath.write_text(json.dumps(doc))
    target = tmp_path / "doc.txt"
    target.write_bytes(b"x")
    res = runner.invoke(app, ["crypto", "sign", str(target), "--key", str(keypath)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    assert "unsupported KDF" in _flat(res.stderr) and len(res.stderr) < 300
