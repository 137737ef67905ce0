"""platform.toml, the admin bootstrapped from a password file, the admin's own limits,
and the Chinese text of every template string."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rongxin.platform.accounts import AccountStore
from rongxin.platform.app import bootstrap_admin, create_app
from rongxin.platform.config import ConfigError, load_config
from rongxin.platform.i18n import ZH
from rongxin.platform.web import TEMPLATES, safe_next
from tests.chain.api.harness import TestClient
from tests.rongxin.platform.conftest import FAST_HASHER, PASSWORD, Stack, client_of, csrf_of, login


def _config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "platform.toml"
    p.write_text(body, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[platform]\nlisten = "nowhere"\n', "HOST:PORT"),
        ('[platform]\nlisten = "127.0.0.1:99999"\n', "port"),
        ("[platform]\ncolour = 1\n", "unknown key"),
        ("[other]\n", "optional \\[ops\\] section"),
        ("[platform]\n[ops]\ndown_after_s = -5\n", r"\[ops\] down_after_s: a positive number"),
        ('[platform]\n[ops]\nlag_blocks = "10"\n', r"\[ops\] lag_blocks"),
        ("[platform]\n[ops]\nlag_blocks = 2.5\n", "whole number"),
        ("[platform]\n[ops]\nempty_blocks = 1\n", "true or false"),
        ("[platform]\n[ops]\nmempool_full_ratio = 1.5\n", "between 0 and 1"),
        ("[platform]\n[ops]\nverify_busy_ratio = 2\n", r"verify_busy_ratio: between 0 and 1"),
        ("[platform]\n[ops]\nverify_busy_window_s = 0\n", "positive"),
        ("[platform]\n[ops]\nkeep_samples = 1\n", "at least 2"),
        ("[platform]\n[ops]\nalarm = 1\n", r"\[ops\] alarm: unknown key"),
        ("[platform]\nops = 3\n", "unknown key"),
        ('[platform]\nnodes = ["ftp://x"]\n', "nodes"),
        ('[platform]\nlanguage = "fr"\n', "language"),
        ("[platform]\nmax_upload_mb = -1\n", "positive"),
        ('[platform]\nsecure_cookies = "sometimes"\n', "secure_cookies"),
        ("[platform\n", "not a readable TOML"),
        ('[platform]\nbehind_proxy = "yes"\n', "behind_proxy"),
    ],
)
def test_bad_configurations_name_the_key(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, body))


def test_ops_section_sets_the_alert_thresholds(tmp_path: Path) -> None:
    c = load_config(_config(tmp_path, "[platform]\n[ops]\ndown_after_s = 30\nempty_blocks = true\n"))
    assert c.ops.down_after_s == 30.0 and c.ops.empty_blocks and c.ops.lag_blocks == 10
    assert load_config(_config(tmp_path, "[platform]\n")).ops.sample_interval_s == 10.0


def test_config_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    c = load_config(_config(tmp_path, '[platform]\nclient = "m/client.toml"\nsecure_cookies = true\n'))
    assert c.client == (tmp_path / "m" / "client.toml").resolve()
    assert c.secure_cookies == "always" and not c.behind_proxy
    with pytest.raises(ConfigError, match="no platform configuration"):
        load_config(tmp_path / "missing.toml")


def test_serve_bootstraps_the_admin_from_a_password_file(tmp_path: Path) -> None:
    (tmp_path / "admin.pass").write_text(PASSWORD + "\n")
    cfg = load_config(_config(tmp_path, '[platform]\nadmin_password_file = "admin.pass"\n'))
    app = create_app(cfg)
    c = login(TestClient(app, base_url="http://127.0.0.1"), "admin")
    assert c.get("/admin/users").status_code == 200
    store: AccountStore = app.state.platform.store
    assert not bootstrap_admin(store, cfg.admin_password_file)  # an admin exists: nothing done
    (tmp_path / "weak.pass").write_text("short\n")
    fresh = AccountStore(tmp_path / "other.sqlite", hasher=FAST_HASHER)
    with pytest.raises(ConfigError, match="at least 12"):
        bootstrap_admin(fresh, tmp_path / "weak.pass")
    with pytest.raises(ConfigError, match="cannot read"):
        bootstrap_admin(fresh, tmp_path / "none.pass")
    # without a client profile the explorer says it has nothing to read
    page = c.get("/explorer")
    assert page.status_code == 503 and "未配置节点" in page.text


def test_the_last_admin_keeps_the_role_and_cannot_be_disabled(stack: Stack) -> None:
    c = client_of(stack, "admin")
    token = csrf_of(c.get("/admin/users").text)
    r = c.post("/admin/users/admin", data={"csrf": token, "action": "disable"})
    assert r.status_code == 400 and "last active admin" in r.text
    r = c.post("/admin/users/admin", data={"csrf": token, "action": "roles", "roles": "auditor"})
    assert r.status_code == 400
    r = c.post("/admin/users/nobody", data={"csrf": token, "action": "disable"})
    assert r.status_code == 400 and "no user" in r.text
    # a user the admin disables is signed out at once
    victim = client_of(stack, "regulator")
    assert victim.get("/works").status_code == 200
    assert c.post("/admin/users/regulator", data={"csrf": token, "action": "disable"}).status_code == 200
    assert victim.get("/works", follow_redirects=False).status_code == 303
    c.post("/admin/users/regulator", data={"csrf": token, "action": "enable"})
    events = [e["event"] for e in stack.app.state.platform.audit.read()]
    assert "user.disable" in events and "user.enable" in events


def test_post_login_destinations_stay_on_the_site() -> None:
    assert safe_next("/works?q=1") == "/works?q=1"
    for bad in ("//evil.example", "https://evil.example", "/\\evil", "", None, "works"):
        assert safe_next(bad) == "/"


def test_every_template_string_has_chinese() -> None:
    missing = set()
    for path in TEMPLATES.glob("*.html"):
        for text in re.findall(r"""t\(\s*["']([^"']+)["']""", path.read_text(encoding="utf-8")):
            if text not in ZH:
                missing.add(text)
    assert not missing, sorted(missing)
