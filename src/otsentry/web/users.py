"""Local console users: argon2id password hashes (argon2-cffi) and three roles.

``viewer`` reads every page; ``analyst`` also triages alerts and reviews deviations; ``admin`` also reads
the audit log. Users are managed from the command line (``otsentry users add|passwd|remove``), never
from the web, so a stolen session cannot create accounts.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from otsentry.web.database import now_text

ROLES = ("viewer", "analyst", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 12

# argon2-cffi's defaults are RFC 9106's second recommendation (argon2id, t=3, m=64 MiB, p=4).
_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Unknown users are checked against this hash so that a wrong name costs as long as a wrong password
    (made on first use: hashing at import would slow every ``otsentry`` command)."""
    return _HASHER.hash("otsentry-no-such-user")


class UserError(ValueError):
    """A user name, role or password that cannot be accepted."""


@dataclass(frozen=True)
class User:
    username: str
    role: str

    def can(self, role: str) -> bool:
        """Whether this user holds ``role`` or a higher one."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise UserError("user names are 1-64 letters, digits and . _ @ - (starting with a letter or digit)")
    return username


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"passwords need at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise UserError("passwords are at most 1024 characters")
    return password


class UserStore:
    """The ``web_users`` table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add(self, username: str, password: str, role: str) -> None:
        check_username(username)
        check_role(role)
        hashed = _HASHER.hash(check_password(password))
        now = now_text()
        try:
            with self.conn:
                self.conn.execute(
                    "INSERT INTO web_users (username, password_hash, role, created, updated)"
                    " VALUES (?,?,?,?,?)",
                    (username, hashed, role, now, now),
                )
        except sqlite3.IntegrityError:
            raise UserError(f"user {username!r} exists (use passwd to change the password)") from None

    def set_password(self, username: str, password: str) -> None:
        hashed = _HASHER.hash(check_password(password))
        with self.conn:
            cur = self.conn.execute(
                "UPDATE web_users SET password_hash = ?, updated = ? WHERE username = ?",
                (hashed, now_text(), username),
            )
            if cur.rowcount == 0:
                raise UserError(f"no user {username!r}")
            # A new password ends every session of the account.
            self.conn.execute("DELETE FROM web_sessions WHERE username = ?", (username,))

    def set_role(self, username: str, role: str) -> None:
        check_role(role)
        with self.conn:
            cur = self.conn.execute(
                "UPDATE web_users SET role = ?, updated = ? WHERE username = ?", (role, now_text(), username)
            )
        if cur.rowcount == 0:
            raise UserError(f"no user {username!r}")

    def remove(self, username: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM web_sessions WHERE username = ?", (username,))
            cur = self.conn.execute("DELETE FROM web_users WHERE username = ?", (username,))
        if cur.rowcount == 0:
            raise UserError(f"no user {username!r}")

    def list(self) -> list[dict[str, str]]:
        rows = self.conn.execute("SELECT username, role, created, updated FROM web_users ORDER BY username")
        return [dict(zip(("username", "role", "created", "updated"), r, strict=True)) for r in rows]

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM web_users").fetchone()[0])

    def verify(self, username: str, password: str) -> User | None:
        """The user when ``password`` is right; ``None`` otherwise (in about the same time either way)."""
        row = self.conn.execute(
            "SELECT password_hash, role FROM web_users WHERE username = ?", (username,)
        ).fetchone()
        stored = row[0] if row else _dummy_hash()
        try:
            _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if _HASHER.check_needs_rehash(stored):
            with self.conn:
                self.conn.execute(
                    "UPDATE web_users SET password_hash = ? WHERE username = ?",
                    (_HASHER.hash(password), username),
                )
        return User(username, row[1])
