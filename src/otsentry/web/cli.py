"""Commands: ``otsentry serve`` (the analyst console) and ``otsentry users add|passwd|role|remove|list``.

``register(cli)`` adds both to the main ``otsentry`` group. Every command takes ``--db PATH`` (default
``otsentry.db`` or $OTSENTRY_DB) like the other commands that read the store.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from otsentry.web import audit
from otsentry.web.database import init_database
from otsentry.web.users import ROLES, UserError, UserStore

DEFAULT_DB = "otsentry.db"
DEFAULT_LISTEN = "127.0.0.1:8443"


def _db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="OTSENTRY_DB",
        default=None,
        help=f"SQLite database [default: {DEFAULT_DB}, or $OTSENTRY_DB].",
    )(f)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {text!r}", param_hint="--listen")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def _connect(db: Path | None) -> sqlite3.Connection:
    path = db or Path(DEFAULT_DB)
    init_database(path)
    conn = sqlite3.connect(path, timeout=15.0)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _read_password(from_stdin: bool, confirm: bool = True) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


# -- serve -------------------------------------------------------------------------------------------------


@click.command("serve")
@_db_option
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, help="Address and port to serve on.")
@click.option(
    "--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TLS certificate (PEM)."
)
@click.option(
    "--key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Its private key (PEM)."
)
@click.option(
    "--evidence-dir",
    "evidence_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where evidence pcaps may be served from (repeatable) [default: evidence/ beside the database].",
)
@click.option(
    "--tls-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where a generated self-signed certificate is kept [default: console-tls/ beside the database].",
)
def serve(
    db: Path | None,
    listen: str,
    cert: Path | None,
    key: Path | None,
    evidence_dirs: tuple[Path, ...],
    tls_dir: Path | None,
) -> None:
    """Serve the analyst console over HTTPS (login required; users from ``otsentry users add``)."""
    import uvicorn

    from otsentry.web.app import create_app
    from otsentry.web.tls import fingerprint, self_signed

    path = db or Path(DEFAULT_DB)
    if not path.exists():
        raise click.ClickException(f"no database at {path} (otsentry replay CAPTURE --db {path})")
    if bool(cert) != bool(key):
        raise click.UsageError("--cert and --key go together")
    host, port = parse_listen(listen)
    conn = _connect(path)
    users = UserStore(conn).count()
    conn.close()
    if users == 0:
        raise click.ClickException(f"no console users yet: otsentry users add NAME --role admin --db {path}")
    if cert is None or key is None:
        cert, key = self_signed(tls_dir or path.resolve().parent / "console-tls", host)
        click.echo(f"TLS: self-signed certificate {cert}", err=True)
    click.echo(f"TLS certificate SHA-256 fingerprint: {fingerprint(cert)}", err=True)
    if not _is_loopback(host):
        click.echo(f"warning: serving on {host}, reachable from the network", err=True)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"otsentry console on https://{shown}:{port}/", err=True)
    app = create_app(path, list(evidence_dirs))
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        server_header=False,
        proxy_headers=False,
        log_level="warning",
        access_log=False,
    )


# -- users -------------------------------------------------------------------------------------------------


@click.group("users")
def users_group() -> None:
    """Console users: local accounts with argon2 password hashes and a role (viewer, analyst, admin)."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@_db_option
def users_add(username: str, role: str, password_stdin: bool, db: Path | None) -> None:
    """Add a user (asks for the password)."""
    conn = _connect(db)
    try:
        UserStore(conn).add(username, _read_password(password_stdin), role)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(conn, _cli_actor(), "user_add", target=f"user:{username}", detail={"role": role})
    click.echo(f"added {username} ({role})")


@users_group.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@_db_option
def users_passwd(username: str, password_stdin: bool, db: Path | None) -> None:
    """Change a user's password (ends the user's sessions)."""
    conn = _connect(db)
    try:
        UserStore(conn).set_password(username, _read_password(password_stdin))
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(conn, _cli_actor(), "user_passwd", target=f"user:{username}")
    click.echo(f"password of {username} changed")


@users_group.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@_db_option
def users_role(username: str, role: str, db: Path | None) -> None:
    """Change a user's role (applies to open sessions at once)."""
    conn = _connect(db)
    try:
        UserStore(conn).set_role(username, role)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(conn, _cli_actor(), "user_role", target=f"user:{username}", detail={"role": role})
    click.echo(f"{username} is now {role}")


@users_group.command("remove")
@click.argument("username")
@_db_option
def users_remove(username: str, db: Path | None) -> None:
    """Remove a user and end the user's sessions."""
    conn = _connect(db)
    try:
        UserStore(conn).remove(username)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(conn, _cli_actor(), "user_remove", target=f"user:{username}")
    click.echo(f"removed {username}")


@users_group.command("list")
@_db_option
def users_list(db: Path | None) -> None:
    """List users and roles."""
    conn = _connect(db)
    for user in UserStore(conn).list():
        click.echo(f"{user['username']}\t{user['role']}\tcreated {user['created'][:19]}")


def register(cli: click.Group) -> None:
    """Add ``serve`` and ``users`` to the main ``otsentry`` group."""
    cli.add_command(serve)
    cli.add_command(users_group)
