"""The user guide's walk-throughs, run as documented on what ``rongxin demo`` writes."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rongxin.cli import app
from rongxin.demo import DEMO_PASSWORD, DemoReport

runner = CliRunner()


@pytest.fixture
def demo_report(demo_run: tuple[DemoReport, str]) -> DemoReport:
    report = demo_run[0]
    assert report.ok, [(s.name, s.detail) for s in report.steps if not s.ok]
    return report


@pytest.fixture
def demo_out(demo_report: DemoReport) -> Path:
    return demo_report.out_dir


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_transfer_audit_as_documented_on_the_demo_ledger(
    demo_out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(demo_out)
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", DEMO_PASSWORD)
    record = Path("transfer.cbor")
    assert Path("auditor.key").stat().st_mode & 0o777 == 0o600 and record.is_file()
    work = _work_of(record)
    res = runner.invoke(
        app,
        [
            "transfer",
            "audit",
            "--key",
            "auditor.key",
            "--db",
            "ledger/node-0.db",
            "--genesis",
            "genesis.cbor",
            "--work",
            work,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "1000000" in res.output and "author=600000" in _flat(res.output)
    res = runner.invoke(app, ["transfer", "audit", "--key", "auditor.key", "--record", str(record)])
    assert res.exit_code == 0, res.output
    assert "1000000" in res.output


def test_the_demo_prints_the_audit_command(demo_report: DemoReport) -> None:
    out = demo_report.out_dir
    zk = next(s for s in demo_report.steps if s.name == "confidential transfer (ZK)")
    detail = _flat(zk.detail)
    assert f"audit with: rongxin transfer audit --key {out / 'auditor.key'}" in detail
    assert f"--db {out / 'ledger' / 'node-0.db'} --genesis {out / 'genesis.cbor'} --work " in detail


def test_transfer_audit_refuses_a_missing_store(demo_out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(demo_out)
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", DEMO_PASSWORD)
    args = ["transfer", "audit", "--key", "auditor.key", "--db", "ledger/node-9.db"]
    res = runner.invoke(app, [*args, "--genesis", "genesis.cbor", "--work", "00" * 32])
    assert res.exit_code == 1 and "no ledger store at" in _flat(res.output)
    assert not Path("ledger/node-9.db").exists()


def test_transfer_audit_refuses_a_file_that_is_not_a_transfer_record(
    demo_out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(demo_out)
    monkeypatch.setenv("RONGXIN_KEY_PASSWORD", DEMO_PASSWORD)
    res = runner.invoke(app, ["transfer", "audit", "--key", "auditor.key", "--record", "genesis.cbor"])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    assert "is not a transfer record" in _flat(res.output)


def _work_of(record: Path) -> str:
    from zkp.contract import TransferRecord

    return TransferRecord.from_bytes(record.read_bytes()).record.work.hex()


def test_the_demo_prints_its_directory_as_it_is(demo_run: tuple[DemoReport, str]) -> None:
    report, printed = demo_run
    assert report.out_dir.name.startswith("demo[red]")
    assert f"files in {report.out_dir}" in _flat(printed)
    assert f"--key {report.out_dir / 'auditor.key'}" in _flat(printed)
