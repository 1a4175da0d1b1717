"""Server-side sessions with a CSRF token each, and login rate limiting.

The cookie carries 256 random bits; the table keeps only their SHA-256, so a copy of the database
does not hand out live sessions. A session ends after ``IDLE_SECONDS`` without a request or
``MAX_SECONDS`` after login, on logout, and when the user's password changes or the user is removed.
The role is read from ``web_users`` on every request, so a changed role applies at once.

Rate limiting counts failed logins per user name and per client address within ``WINDOW_SECONDS``;
past the allowance the key is locked for a time that doubles with every further failure (capped),
and a locked key is refused *before* the password is checked, so guessing stays slow even when a
guess would be right. The counters live in the database and survive restarts.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass

from otsentry.web.users import User

IDLE_SECONDS = 30 * 60
MAX_SECONDS = 12 * 3600
TOUCH_SECONDS = 60  # write last_seen at most this often per session

WINDOW_SECONDS = 15 * 60
ALLOWED_FAILURES = {"user": 5, "client": 20}
FIRST_LOCK_SECONDS = 30
MAX_LOCK_SECONDS = 15 * 60


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    token_hash: str


class SessionStore:
    """The ``web_sessions`` table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def create(self, username: str, client: str | None) -> tuple[str, str]:
        """A new session (never a reused token: no session fixation); returns (cookie token, CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        with self.conn:
            self.conn.execute(
                "DELETE FROM web_sessions WHERE last_seen < ? OR created < ?",
                (now - IDLE_SECONDS, now - MAX_SECONDS),
            )
            self.conn.execute(
                "INSERT INTO web_sessions (token_hash, username, csrf_token, created, last_seen, client)"
                " VALUES (?,?,?,?,?,?)",
                (_digest(token), username, csrf, now, now, client),
            )
        return token, csrf

    def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 128:
            return None
        token_hash = _digest(token)
        row = self.conn.execute(
            "SELECT s.username, u.role, s.csrf_token, s.created, s.last_seen FROM web_sessions s"
            " JOIN web_users u ON u.username = s.username WHERE s.token_hash = ?",
            (token_hash,),
        ).fetchone()
        if row is None:
            return None
        username, role, csrf, created, last_seen = row
        now = time.time()
        if now - last_seen > IDLE_SECONDS or now - created > MAX_SECONDS:
            self.end(token_hash)
            return None
        if now - last_seen > TOUCH_SECONDS:
            with self.conn:
                self.conn.execute(
                    "UPDATE web_sessions SET last_seen = ? WHERE token_hash = ?", (now, token_hash)
                )
        return Session(User(username, role), csrf, token_hash)

    def end(self, token_hash: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))


class LoginThrottle:
    """Failed-login counters per ``user:NAME`` and ``client:ADDRESS`` (the ``web_login_failures`` table)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @staticmethod
    def keys(username: str, client: str | None) -> list[str]:
        keys = [f"user:{username.lower()[:64]}"]
        if client:
            keys.append(f"client:{client}")
        return keys

    def locked_for(self, keys: list[str]) -> float:
        """Seconds until every key may try again (0 when none is locked)."""
        now = time.time()
        marks = ",".join("?" * len(keys))
        row = self.conn.execute(
            f"SELECT MAX(locked_until) FROM web_login_failures WHERE key IN ({marks})", keys
        ).fetchone()
        return max(0.0, (row[0] or 0) - now)

    def failed(self, keys: list[str]) -> None:
        now = time.time()
        with self.conn:
            for key in keys:
                row = self.conn.execute(
                    "SELECT failures, window_start FROM web_login_failures WHERE key = ?", (key,)
                ).fetchone()
                failures, start = (row[0], row[1]) if row and now - row[1] < WINDOW_SECONDS else (0, now)
                failures += 1
                allowed = ALLOWED_FAILURES[key.split(":", 1)[0]]
                locked_until = 0.0
                if failures >= allowed:
                    locked_until = now + min(MAX_LOCK_SECONDS, FIRST_LOCK_SECONDS * 2 ** (failures - allowed))
                self.conn.execute(
                    "INSERT INTO web_login_failures (key, failures, window_start, locked_until)"
                    " VALUES (?,?,?,?)"
                    " ON CONFLICT(key) DO UPDATE SET failures = excluded.failures,"
                    " window_start = excluded.window_start, locked_until = excluded.locked_until",
                    (key, failures, start, locked_until),
                )

    def succeeded(self, keys: list[str]) -> None:
        marks = ",".join("?" * len(keys))
        with self.conn:
            self.conn.execute(f"DELETE FROM web_login_failures WHERE key IN ({marks})", keys)
