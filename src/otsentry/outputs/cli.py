"""``otsentry forward``: status, replay, test and run. ``register(cli)`` adds the group to the main CLI.

The config file (``--config``, env ``OTSENTRY_CONFIG``) holds the ``[forward]`` table; the database
(``--db``, env ``OTSENTRY_DB``, default ``otsentry.db`` as for ``otsentry alerts``) is the sensor's
SQLite file with the alerts. When the main CLI puts ``config_path``/``db`` into ``ctx.obj`` those are
the defaults.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from otsentry.outputs.config import ConfigError, ForwardConfig, load_forward_config
from otsentry.outputs.forwarder import Forwarder, ForwardService
from otsentry.outputs.probe import send_test_alert
from otsentry.outputs.state import ForwardStore, ensure_schema

DEFAULT_DB = "otsentry.db"  # the same default as otsentry.detect.cli (not imported: it loads pySigma)


def _settings(ctx: click.Context) -> tuple[ForwardConfig, Path]:
    obj = ctx.find_root().obj if isinstance(ctx.find_root().obj, dict) else {}
    config_path = ctx.obj.get("config_path") or obj.get("config_path")
    db = ctx.obj.get("db") or obj.get("db") or DEFAULT_DB
    if not config_path:
        raise click.UsageError("no config: pass --config FILE (or set OTSENTRY_CONFIG)")
    try:
        config = load_forward_config(config_path)
    except (ConfigError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    return config, Path(db)


@click.group("forward")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar="OTSENTRY_CONFIG", help="TOML config with the [forward] table.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar="OTSENTRY_DB",
              help=f"The sensor's SQLite database with the alerts [default: {DEFAULT_DB}, or $OTSENTRY_DB].")
@click.pass_context
def forward(ctx: click.Context, config_path: Path | None, db: Path | None) -> None:
    """Forward alerts to SIEMs (syslog CEF/LEEF/RFC 5424, RELP, Splunk HEC, ECS JSON)."""
    ctx.obj = {"config_path": config_path, "db": db}


def _age(text: str | None) -> str:
    if not text:
        return "-"
    then = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    seconds = (dt.datetime.now(dt.UTC) - then).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def status_rows(config: ForwardConfig, db: Path) -> list[dict[str, Any]]:
    ensure_schema(db)
    store = ForwardStore(db)
    try:
        latest = store.latest_seq()
        rows = []
        for dest in config.destinations:
            state = store.state(dest.name) or {"acked_seq": None, "status": "never run"}
            acked = state.get("acked_seq")
            backlog, oldest = store.backlog(acked) if acked is not None else (None, None)
            rows.append({
                "destination": dest.name,
                "transport": dest.transport,
                "enabled": dest.enabled,
                "status": state.get("status"),
                "acked_seq": acked,
                "latest_seq": latest,
                "lag": latest - acked if acked is not None else None,
                "backlog": backlog,
                "oldest_waiting": oldest,
                "sent": state.get("sent", 0),
                "failures": state.get("failures", 0),
                "consecutive_failures": state.get("consecutive_failures", 0),
                "dropped": state.get("dropped", 0),
                "filtered": state.get("filtered", 0),
                "last_error": state.get("last_error"),
                "last_error_at": state.get("last_error_at"),
                "updated": state.get("updated"),
            })
        return rows
    finally:
        store.close()


@forward.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Lag, backlog, failures and drops per destination."""
    config, db = _settings(ctx)
    rows = status_rows(config, db)
    if as_json:
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title="otsentry forwarding", title_justify="left")
    for column in ("destination", "transport", "status", "acked", "lag", "backlog", "oldest", "sent",
                   "failures", "dropped", "last error"):
        table.add_column(column, justify="right" if column in ("acked", "lag", "backlog", "sent") else "left")
    for r in rows:
        status_text = r["status"] if r["enabled"] else "disabled"
        style = "red" if r["status"] == "error" or r["dropped"] else ""
        style = style or ("yellow" if r["status"] == "backoff" else "")
        dash = "-"
        table.add_row(
            r["destination"], r["transport"], f"[{style}]{status_text}[/]" if style else str(status_text),
            str(dash if r["acked_seq"] is None else r["acked_seq"]),
            str(dash if r["lag"] is None else r["lag"]),
            str(dash if r["backlog"] is None else r["backlog"]), _age(r["oldest_waiting"]), str(r["sent"]),
            f"{r['consecutive_failures']}/{r['failures']}", str(r["dropped"]), (r["last_error"] or "")[:80],
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped or captured: do not fold the table to 80 columns
    console.print(table)


@forward.command()
@click.option("--since", type=click.IntRange(min=1), required=True, help="First alert seq to resend.")
@click.option("--until", type=click.IntRange(min=1), help="Last alert seq (default: the newest).")
@click.option("--dest", "names", multiple=True, help="Destination name (repeatable; default: all enabled).")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Give up after this many seconds.")
@click.pass_context
def replay(ctx: click.Context, since: int, until: int | None, names: tuple[str, ...], timeout: float) -> None:
    """Resend alerts with seq >= SINCE from the alerts table (duplicates keep their alert id)."""
    config, db = _settings(ctx)
    try:
        destinations = [config.get(n) for n in names] if names else list(config.enabled)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    ensure_schema(db)
    store = ForwardStore(db)
    try:
        last = min(until or store.latest_seq(), store.latest_seq())
    finally:
        store.close()
    if last < since:
        click.echo(f"no alerts with seq {since}..{until or 'newest'}")
        return
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    failed = False
    try:
        for dest in destinations:
            forwarder = Forwarder(dest, db, observer_name=config.observer_name, replay=(since, last),
                                  poll_interval=config.poll_interval)
            forwarder.run(stop)
            done = forwarder.acked >= last
            failed |= not done
            outcome = "done" if done else f"incomplete (acknowledged up to {forwarder.acked})"
            error = f" — last error: {forwarder.last_error}" if forwarder.last_error and not done else ""
            click.echo(f"{dest.name}: resent seq {since}..{last}: {outcome},"
                       f" {forwarder.sent_total} sent{error}")
    finally:
        timer.cancel()
    sys.exit(1 if failed else 0)


@forward.command("test")
@click.argument("destination")
@click.option("--timeout", type=float, default=10.0, show_default=True)
@click.pass_context
def test_command(ctx: click.Context, destination: str, timeout: float) -> None:
    """Send one clearly marked test alert to DESTINATION and report what happened."""
    config, _db = _settings(ctx)
    try:
        dest = config.get(destination)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    result = send_test_alert(dest, config.observer_name, timeout)
    verdict = "OK" if result.ok else "FAILED"
    click.echo(f"{dest.name} ({dest.transport}): {verdict} in {result.seconds * 1000:.0f} ms"
               f" — {result.detail} [test alert id {result.alert_id}]")
    sys.exit(0 if result.ok else 1)


@forward.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Forward until stopped (SIGTERM/SIGINT): one thread per enabled destination."""
    config, db = _settings(ctx)
    if not config.enabled:
        raise click.UsageError("no enabled [[forward.destination]] in the config")
    service = ForwardService(config, db)
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        service.start()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        while not done.wait(0.5):
            pass
    finally:
        service.stop()


def register(cli_group: click.Group) -> None:
    """Add ``forward`` to the main ``otsentry`` command group."""
    cli_group.add_command(forward)
