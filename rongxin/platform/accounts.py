"""Users, server-side sessions and login throttling in one SQLite file (``accounts.sqlite``).

Passwords are hashed with Argon2id (``argon2-cffi``; its RFC 9106 low-memory profile) and
never stored or logged in clear. A session id is 32 bytes from the OS, given to the
browser once; the store keeps only its SM3 digest, so a copy of the database opens no
session. Each session carries its own CSRF token. Logging in always creates a new session
(the pre-login one is deleted), so an id planted before login is worth nothing after it.

Failed logins are counted per user name and per client address over a window; past the
limit, :meth:`AccountStore.throttled` says how long to wait (even a right password is
refused meanwhile).

Examples
--------
>>> import tempfile, pathlib
>>> store = AccountStore(pathlib.Path(tempfile.mkdtemp()) / "accounts.sqlite")
>>> store.create_user("li", "correct horse battery", {"legal_staff"}).roles
frozenset({'legal_staff'})
>>> store.authenticate("li", "wrong password!") is None
True
>>> store.authenticate("li", "correct horse battery").name
'li'
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from chain.crypto.sm3 import sm3
from rongxin.platform.config import PlatformError
from rongxin.platform.roles import ROLES

MIN_PASSWORD = 12
"""Shortest password accepted for a platform user."""
MAX_PASSWORD = 1024
USER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
"""User names: 2-32 characters, lowercase letters, digits, ``.``, ``_``, ``-``."""
THROTTLE_FAILURES = 5
"""Failed logins of one user name within the window before further tries are refused."""
THROTTLE_ADDRESS_FAILURES = 30
"""Failed logins from one client address (an office behind one NAT) within the window."""
THROTTLE_WINDOW_S = 15 * 60
ANONYMOUS_SESSION_S = 3600
"""Lifetime of a session before sign-in (it only carries the login form's CSRF token)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    display TEXT NOT NULL,
    roles TEXT NOT NULL,
    pw_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_digest BLOB PRIMARY KEY,
    user TEXT,
    csrf TEXT NOT NULL,
    lang TEXT,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL,
    ts_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, ts_ms);
CREATE TABLE IF NOT EXISTS sm2_keys (
    user TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    set_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sm2_challenges (
    id_digest BLOB PRIMARY KEY,
    user TEXT NOT NULL,
    session_digest BLOB NOT NULL,
    text TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
"""


class AccountError(PlatformError):
    """A user cannot be created or changed as asked (the message says why)."""


@dataclass(frozen=True)
class User:
    """A platform user (never carries the password hash)."""

    name: str
    display: str
    roles: frozenset[str]
    active: bool = True


@dataclass(frozen=True)
class Session:
    """A server-side session: its user (``None`` before login), CSRF token and language."""

    id_digest: bytes
    user: User | None
    csrf: str
    lang: str | None
    expires_ms: int


def _now_ms() -> int:
    return int(time.time() * 1000)


def check_roles(roles: set[str] | frozenset[str]) -> frozenset[str]:
    """``roles`` if every one is known and there is at least one; :class:`AccountError` if not."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise AccountError(f"unknown role {sorted(unknown)[0]!r}; roles are {', '.join(ROLES)}")
    if not roles:
        raise AccountError("a user needs at least one role")
    return frozenset(roles)


def check_password(password: str) -> None:
    """:class:`AccountError` when ``password`` is too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password has at most {MAX_PASSWORD} characters")


class AccountStore:
    """The platform's users, sessions and failed-login counters.

    Parameters
    ----------
    path : path
        The SQLite file (created with its tables when missing; mode 0600).
    session_s : int
        How long a session lives after login.
    hasher : argon2.PasswordHasher, optional
        Defaults to the RFC 9106 low-memory Argon2id profile.
    """

    def __init__(
        self, path: str | Path, session_s: int = 12 * 3600, hasher: PasswordHasher | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600, exist_ok=True)
        self.session_s = session_s
        self._hasher = hasher or PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)
        # a hash to verify against when the user does not exist (same time either way)
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # ------------------------------------------------------------------ users
    def create_user(
        self, name: str, password: str, roles: set[str] | frozenset[str], display: str = ""
    ) -> User:
        """Add a user; :class:`AccountError` for a taken or invalid name, weak password, bad role."""
        if not USER_RE.fullmatch(name):
            raise AccountError("a user name is 2-32 lowercase letters, digits, '.', '_' or '-'")
        check_password(password)
        held = check_roles(set(roles))
        display = (display or name).strip()[:80]
        pw_hash = self._hasher.hash(password)
        try:
            with self._lock, self._db:
                self._db.execute(
                    "INSERT INTO users (name, display, roles, pw_hash, active, created_ms) "
                    "VALUES (?, ?, ?, ?, 1, ?)",
                    (name, display, ",".join(sorted(held)), pw_hash, _now_ms()),
                )
        except sqlite3.IntegrityError:
            raise AccountError(f"user {name!r} already exists") from None
        return User(name, display, held)

    def user(self, name: str) -> User | None:
        """The user called ``name``, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT name, display, roles, active FROM users WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else User(row[0], row[1], frozenset(row[2].split(",")), bool(row[3]))

    def users(self) -> list[User]:
        """Every user, by name."""
        with self._lock:
            rows = self._db.execute("SELECT name, display, roles, active FROM users ORDER BY name").fetchall()
        return [User(r[0], r[1], frozenset(r[2].split(",")), bool(r[3])) for r in rows]

    def _must_exist(self, name: str) -> None:
        if self.user(name) is None:
            raise AccountError(f"no user {name!r}")

    def set_roles(self, name: str, roles: set[str] | frozenset[str]) -> None:
        """Replace a user's roles."""
        held = check_roles(set(roles))
        self._must_exist(name)
        with self._lock, self._db:
            self._db.execute("UPDATE users SET roles = ? WHERE name = ?", (",".join(sorted(held)), name))

    def set_password(self, name: str, password: str) -> None:
        """Set a new password and end the user's sessions."""
        check_password(password)
        self._must_exist(name)
        pw_hash = self._hasher.hash(password)
        with self._lock, self._db:
            self._db.execute("UPDATE users SET pw_hash = ? WHERE name = ?", (pw_hash, name))
            self._db.execute("DELETE FROM sessions WHERE user = ?", (name,))

    def set_active(self, name: str, active: bool) -> None:
        """Enable or disable a user; disabling ends their sessions."""
        self._must_exist(name)
        with self._lock, self._db:
            self._db.execute("UPDATE users SET active = ? WHERE name = ?", (int(active), name))
            if not active:
                self._db.execute("DELETE FROM sessions WHERE user = ?", (name,))

    def active_admins(self) -> int:
        """How many enabled users hold the admin role."""
        return sum(1 for u in self.users() if u.active and "admin" in u.roles)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs and they are enabled; else ``None`` (same cost)."""
        with self._lock:
            row = self._db.execute("SELECT pw_hash FROM users WHERE name = ?", (name,)).fetchone()
        stored = row[0] if row else self._dummy
        try:
            self._hasher.verify(stored, password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self._lock, self._db:
                self._db.execute(
                    "UPDATE users SET pw_hash = ? WHERE name = ?", (self._hasher.hash(password), name)
                )
        user = self.user(name)
        return user if user is not None and user.active else None

    # ------------------------------------------------------------------ sessions
    def new_session(self, user: str | None, lang: str | None = None) -> tuple[str, Session]:
        """A fresh session (anonymous when ``user`` is ``None``): its id for the cookie, and it."""
        sid = secrets.token_urlsafe(32)
        digest = sm3(sid.encode())
        csrf = secrets.token_urlsafe(32)
        now = _now_ms()
        lifetime = self.session_s if user else min(self.session_s, ANONYMOUS_SESSION_S)
        expires = now + lifetime * 1000
        with self._lock, self._db:
            self._db.execute("DELETE FROM sessions WHERE expires_ms < ?", (now,))
            self._db.execute(
                "INSERT INTO sessions (id_digest, user, csrf, lang, created_ms, expires_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (digest, user, csrf, lang, now, expires),
            )
        return sid, Session(digest, self.user(user) if user else None, csrf, lang, expires)

    def session(self, sid: str | None) -> Session | None:
        """The live session with this id (``None`` if unknown, expired, or its user disabled)."""
        if not sid or len(sid) > 128:
            return None
        digest = sm3(sid.encode())
        with self._lock:
            row = self._db.execute(
                "SELECT user, csrf, lang, expires_ms FROM sessions WHERE id_digest = ?", (digest,)
            ).fetchone()
        if row is None or row[3] < _now_ms():
            return None
        user = None
        if row[0] is not None:
            user = self.user(row[0])
            if user is None or not user.active:
                return None
        return Session(digest, user, row[1], row[2], row[3])

    def end_session(self, session: Session) -> None:
        """Delete a session (logout, or the pre-login session at login)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM sessions WHERE id_digest = ?", (session.id_digest,))

    def set_session_lang(self, session: Session, lang: str) -> None:
        """Remember the session's chosen language."""
        with self._lock, self._db:
            self._db.execute("UPDATE sessions SET lang = ? WHERE id_digest = ?", (lang, session.id_digest))

    # ------------------------------------------------------------------ SM2 sign-in
    def set_sm2_key(self, name: str, public_hex: str | None) -> None:
        """Register (or, with ``None``, remove) the user's SM2 public key (uncompressed hex)."""
        self._must_exist(name)
        with self._lock, self._db:
            if public_hex is None:
                self._db.execute("DELETE FROM sm2_keys WHERE user = ?", (name,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO sm2_keys (user, public_key, set_ms) VALUES (?, ?, ?)",
                    (name, public_hex, _now_ms()),
                )

    def sm2_key(self, name: str) -> str | None:
        """The user's registered SM2 public key (hex), or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT public_key FROM sm2_keys WHERE user = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def new_challenge(self, user: str, session: Session, text: str, expires_ms: int) -> str:
        """Keep a sign-in challenge for ``user`` bound to ``session``; its id (given once)."""
        cid = secrets.token_urlsafe(24)
        now = _now_ms()
        with self._lock, self._db:
            self._db.execute("DELETE FROM sm2_challenges WHERE expires_ms < ?", (now,))
            self._db.execute(
                "INSERT INTO sm2_challenges (id_digest, user, session_digest, text, expires_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (sm3(cid.encode()), user, session.id_digest, text, expires_ms),
            )
        return cid

    def take_challenge(self, cid: str) -> tuple[str, bytes, str, int] | None:
        """The challenge ``cid`` as ``(user, session digest, text, expires_ms)``, removed in
        the same step so that it is answered at most once (``None``: unknown or used)."""
        if not cid or len(cid) > 128:
            return None
        digest = sm3(cid.encode())
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT user, session_digest, text, expires_ms FROM sm2_challenges WHERE id_digest = ?",
                (digest,),
            ).fetchone()
            if row is None:
                return None
            self._db.execute("DELETE FROM sm2_challenges WHERE id_digest = ?", (digest,))
        return str(row[0]), bytes(row[1]), str(row[2]), int(row[3])

    # ------------------------------------------------------------------ throttling
    def record_failure(self, *keys: str) -> None:
        """Count one failed login against each key (e.g. ``user:li``, ``ip:10.0.0.7``)."""
        now = _now_ms()
        with self._lock, self._db:
            self._db.execute("DELETE FROM login_failures WHERE ts_ms < ?", (now - THROTTLE_WINDOW_S * 1000,))
            self._db.executemany(
                "INSERT INTO login_failures (key, ts_ms) VALUES (?, ?)", [(k, now) for k in keys]
            )

    def clear_failures(self, *keys: str) -> None:
        """Forget the failures of these keys (after a successful login)."""
        with self._lock, self._db:
            self._db.executemany("DELETE FROM login_failures WHERE key = ?", [(k,) for k in keys])

    def throttled(self, *keys: str) -> int:
        """Seconds until a login for these keys is accepted again (0: now); ``ip:`` keys
        allow :data:`THROTTLE_ADDRESS_FAILURES`, others :data:`THROTTLE_FAILURES`."""
        now = _now_ms()
        since = now - THROTTLE_WINDOW_S * 1000
        wait = 0
        with self._lock:
            for key in keys:
                rows = self._db.execute(
                    "SELECT ts_ms FROM login_failures WHERE key = ? AND ts_ms >= ? ORDER BY ts_ms",
                    (key, since),
                ).fetchall()
                limit = THROTTLE_ADDRESS_FAILURES if key.startswith("ip:") else THROTTLE_FAILURES
                if len(rows) >= limit:
                    oldest = rows[-limit][0]
                    wait = max(wait, (oldest + THROTTLE_WINDOW_S * 1000 - now + 999) // 1000)
        return int(wait)
