"""``works export --format rxhl``, ``works import``, ``works foreign``; ``identify`` of foreign works."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from chain.crypto.keyfile import save_private_key
from chain.crypto.sm2 import PrivateKey
from chain.node.identity import certificate_to_json
from chain.types import Certificate, Role
from rongxin.cli import app
from tests.forensics.audio.conftest import synth_music, write_wav
from tests.forensics.conftest import crop, jpeg, rotate, write_image

runner = CliRunner()
ROOT = PrivateKey.generate()


def _text(output: str) -> str:
    return " ".join(output.split())


def _member(d: Path, subject: str) -> tuple[Path, Path, Path]:
    """A member's sealed key, password file and certificate."""
    d.mkdir(parents=True, exist_ok=True)
    key = PrivateKey.generate()
    save_private_key(key, d / "member.key", "correct horse", scrypt_n=1024)
    (d / "member.pass").write_text("correct horse\n")
    cert = Certificate.issue(ROOT, subject, subject, [Role.MEDIA_CENTER], key.public_key, not_before_ms=0)
    (d / "member.cert.json").write_text(certificate_to_json(cert))
    return d / "member.key", d / "member.pass", d / "member.cert.json"


@pytest.fixture()
def exported(tmp_path: Path, photos: dict[str, np.ndarray]) -> dict[str, Path]:
    """Member A's library (two photos, one song) and its signed hash list."""
    media = tmp_path / "a-media"
    media.mkdir()
    write_image(media / "astronaut.jpg", photos["astronaut"])
    write_image(media / "chelsea.png", photos["chelsea"])
    write_wav(media / "anthem.wav", synth_music(41, 20.0))
    lib = tmp_path / "lib-a"
    r = runner.invoke(app, ["works", "add", str(media), "--library", str(lib)])
    assert r.exit_code == 0, r.output
    key, pw, cert = _member(tmp_path / "a", "county-a")
    out = tmp_path / "county-a.rxhl"
    r = runner.invoke(
        app,
        ["works", "export", "--library", str(lib), "--out", str(out), "--member", "county-a",
         "--key", str(key), "--password-file", str(pw), "--pdq", "--media", str(media),
         "--refs", str(tmp_path / "refs.json")],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (
        "3 works" in r.output and "signed by key" in r.output and "PDQ hashes for 2 of 2" in _text(r.output)
    )
    return {
        "list": out,
        "cert": cert,
        "key": key,
        "pw": pw,
        "media": media,
        "lib": lib,
        "refs": tmp_path / "refs.json",
    }


def test_export_import_identify(
    exported: dict[str, Path], tmp_path: Path, photos: dict[str, np.ndarray]
) -> None:
    refs = json.loads(exported["refs"].read_text())
    assert sorted(refs.values()) == ["anthem", "astronaut", "chelsea"]
    lib = tmp_path / "lib-b"
    r = runner.invoke(
        app,
        ["works", "import", str(exported["list"]), "--library", str(lib), "--signer", str(exported["cert"])],
    )
    assert r.exit_code == 0, r.output
    assert "3 added" in _text(r.output) and "county-a" in r.output
    r = runner.invoke(app, ["works", "import", str(exported["list"]), "--library", str(lib)])
    assert r.exit_code == 0 and "imported before; nothing changed" in _text(r.output)

    q = write_image(tmp_path / "q.jpg", jpeg(crop(rotate(photos["chelsea"], 6), 0.6), 40))
    r = runner.invoke(app, ["identify", str(q), "--library", str(lib), "--json"])
    assert r.exit_code == 0, r.output
    (m,) = json.loads(r.stdout)
    assert m["foreign"] is True and m["member"] == "county-a" and refs[m["reference"]] == "chelsea"
    assert m["query_sm3"] and m["title"] is None
    r = runner.invoke(app, ["identify", str(q), "--library", str(lib)])
    text = _text(r.output)
    assert r.exit_code == 0 and "no registered work found" in text and "other members' works" in text
    assert "county-a" in text and m["reference"][:10] in text

    song = write_wav(tmp_path / "clip.wav", synth_music(41, 20.0)[8000 * 4 : 8000 * 12] * 0.7)
    r = runner.invoke(app, ["identify", str(song), str(q), "--library", str(lib), "--json"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [refs[x["matches"][0]["reference"]] for x in lines] == ["anthem", "chelsea"]

    r = runner.invoke(app, ["works", "foreign", "--library", str(lib), "--json"])
    doc = json.loads(r.stdout)
    assert doc["works"] == {"county-a": {"audio": 1, "image": 2}} and len(doc["lists"]) == 1
    r = runner.invoke(app, ["works", "foreign", "--library", str(lib), "--forget", "county-a"])
    assert r.exit_code == 0 and "removed 3 works" in r.output
    r = runner.invoke(app, ["works", "foreign", "--library", str(lib), "--forget", "county-a"])
    assert r.exit_code == 1 and "no works of member 'county-a'" in _text(r.output)
    r = runner.invoke(app, ["works", "foreign", "--library", str(tmp_path / "typo"), "--forget", "county-a"])
    assert r.exit_code == 1 and "holds no work library" in _text(r.output)
    assert not (tmp_path / "typo").exists()
    r = runner.invoke(app, ["works", "foreign", "--library", str(exported["lib"])])
    assert r.exit_code == 0 and "holds no imported hash lists" in _text(r.output)
    r = runner.invoke(app, ["identify", str(q), "--library", str(lib), "--json"])
    assert json.loads(r.stdout) == []


def test_import_refuses_bad_lists(exported: dict[str, Path], tmp_path: Path) -> None:
    lib = tmp_path / "lib-b"
    _k, _p, other_cert = _member(tmp_path / "b", "county-b")
    data = exported["list"].read_bytes()

    def imp(path: Path, *extra: str) -> str:
        r = runner.invoke(app, ["works", "import", str(path), "--library", str(lib), *extra])
        assert r.exit_code == 1, r.output
        return _text(r.output)

    assert "not 'county-b'" in imp(exported["list"], "--signer", str(other_cert))  # the certificate's member
    assert "not by the expected key" in imp(
        exported["list"], "--from", "county-a", "--signer", str(other_cert)
    )
    assert "not 'county-b'" in imp(exported["list"], "--from", "county-b")
    tampered = tmp_path / "tampered.rxhl"
    pos = data.index(b'"dct":"') + 9
    tampered.write_bytes(data[:pos] + (b"0" if data[pos : pos + 1] != b"0" else b"1") + data[pos + 1 :])
    assert "altered" in imp(tampered, "--signer", str(exported["cert"]))
    short = tmp_path / "short.rxhl"
    short.write_bytes(data[: len(data) // 2])
    assert "incomplete" in imp(short)
    photo = tmp_path / "photo.rxhl"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert "not a hash list" in imp(photo)
    assert "cannot read" in imp(tmp_path / "missing.rxhl")
    unsigned = tmp_path / "unsigned.rxhl"
    r = runner.invoke(
        app,
        [
            "works",
            "export",
            "--library",
            str(exported["lib"]),
            "--out",
            str(unsigned),
            "--member",
            "county-a",
        ],
    )
    assert r.exit_code == 0 and "unsigned" in r.output
    assert "not signed" in imp(unsigned)
    r = runner.invoke(
        app, ["works", "import", str(unsigned), "--library", str(lib), "--allow-unsigned", "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["signer"] is None and json.loads(r.stdout)["added"] == 3
    r = runner.invoke(app, ["works", "import", str(tampered), "--library", str(lib), "--json"])
    assert r.exit_code == 1 and "altered" in json.loads(r.stdout)["error"]


def test_export_options_are_checked(exported: dict[str, Path], tmp_path: Path) -> None:
    lib = str(exported["lib"])
    out = str(tmp_path / "x.rxhl")
    r = runner.invoke(app, ["works", "export", "--library", lib, "--out", out])
    assert r.exit_code == 1 and "--member" in r.output
    r = runner.invoke(app, ["works", "export", "--library", lib, "--out", out, "--member", "m", "--pdq"])
    assert r.exit_code == 1 and "--media" in r.output
    r = runner.invoke(
        app, ["works", "export", "--library", lib, "--out", out, "--member", "m", "--kind", "film"]
    )
    assert r.exit_code == 1 and "--kind" in r.output
    r = runner.invoke(app, ["works", "export", "--library", lib, "--out", out, "--format", "csv"])
    assert r.exit_code == 1 and "unknown --format" in r.output
    r = runner.invoke(
        app,
        [
            "works",
            "export",
            "--library",
            lib,
            "--out",
            out,
            "--member",
            "m",
            "--kind",
            "image",
            "--reveal-ids",
        ],
    )
    assert r.exit_code == 0, r.output
    body = Path(out).read_text()
    assert '"title":"astronaut"' in body and '"kind":"audio"' not in body
    r = runner.invoke(app, ["works", "export", "--library", lib, "--out", out, "--member", "m"])
    assert r.exit_code == 1 and "exists" in r.output  # no silent overwrite


def test_identify_a_video_with_only_foreign_music(exported: dict[str, Path], tmp_path: Path) -> None:
    """A library holding no music of its own still answers for a video's soundtrack from imported lists."""
    from tests.forensics.test_library_video import make_video

    lib = tmp_path / "lib-b"
    r = runner.invoke(app, ["works", "import", str(exported["list"]), "--library", str(lib)])
    assert r.exit_code == 0, r.output
    video = make_video(tmp_path / "upload.mp4", exported["media"] / "anthem.wav", 5.0)
    r = runner.invoke(app, ["identify", str(video), "--library", str(lib), "--json"])
    assert r.exit_code == 0, r.output
    (m,) = json.loads(r.stdout)
    refs = json.loads(exported["refs"].read_text())
    assert refs[m["reference"]] == "anthem" and m["query_stream"] == "audio" and m["foreign"] is True


def test_export_signed_through_the_client_profile(exported: dict[str, Path], tmp_path: Path) -> None:
    """--client: the profile's key signs and its certificate's subject names the member."""
    d = exported["key"].parent
    profile = d / "rongxin-client.toml"
    profile.write_text(
        '[client]\nnode = "http://127.0.0.1:1"\ngenesis = "genesis.cbor"\nkey_file = "member.key"\n'
        'cert_file = "member.cert.json"\nkey_password_file = "member.pass"\n'
    )
    out = tmp_path / "via-profile.rxhl"
    r = runner.invoke(
        app,
        ["works", "export", "--library", str(exported["lib"]), "--out", str(out), "--client", str(profile)],
    )
    assert r.exit_code == 0, r.output
    assert "as member 'county-a', signed" in _text(r.output)
    r = runner.invoke(
        app,
        ["works", "import", str(out), "--library", str(tmp_path / "b"), "--signer", str(exported["cert"])],
    )
    assert r.exit_code == 0 and "3 added" in _text(r.output)
    _k, _p, other_cert = _member(tmp_path / "other", "county-x")
    (d / "member.cert.json").write_text(other_cert.read_text())  # the key no longer fits the certificate
    r = runner.invoke(
        app,
        ["works", "export", "--library", str(exported["lib"]), "--out", str(tmp_path / "x.rxhl"), "--client",
         str(profile)],
    )  # fmt: skip
    assert r.exit_code == 1 and "does not belong to the certificate" in _text(r.output)
