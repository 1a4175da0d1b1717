"""The audit log: who did what, when, to which target, with which note.

Every analyst action in the console (triage, deviation review, evidence download), every login, failed
login and logout, and every user change from the command line appends one row. Rows are never updated.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from otsentry.web.database import now_text

ACTIONS = {
    "login": "signed in",
    "login_failed": "failed to sign in",
    "login_throttled": "was refused (too many failures)",
    "logout": "signed out",
    "alert_ack": "acknowledged",
    "alert_close": "closed",
    "alert_reopen": "reopened",
    "evidence_download": "downloaded evidence of",
    "deviation_accept": "accepted",
    "deviation_reject": "rejected",
    "user_add": "added user",
    "user_passwd": "changed the password of",
    "user_role": "changed the role of",
    "user_remove": "removed user",
}


def record(
    conn: sqlite3.Connection,
    username: str,
    action: str,
    target: str | None = None,
    note: str | None = None,
    role: str | None = None,
    client: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    with conn:
        conn.execute(
            "INSERT INTO audit (at, username, role, action, target, note, client, detail)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                now_text(),
                username,
                role,
                action,
                target,
                note or None,
                client,
                orjson.dumps(detail).decode() if detail else None,
            ),
        )


def for_target(conn: sqlite3.Connection, target: str, limit: int = 100) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, at, username, role, action, target, note, client FROM audit WHERE target = ?"
        " ORDER BY id DESC LIMIT ?",
        (target, limit),
    ).fetchall()


def page(
    conn: sqlite3.Connection,
    username: str | None = None,
    action: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[sqlite3.Row]:
    where, params = [], []
    if username:
        where.append("username = ?")
        params.append(username)
    if action:
        where.append("action = ?")
        params.append(action)
    if before:
        where.append("id < ?")
        params.append(before)
    sql = "SELECT id, at, username, role, action, target, note, client FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return conn.execute(sql + " ORDER BY id DESC LIMIT ?", [*params, limit]).fetchall()
