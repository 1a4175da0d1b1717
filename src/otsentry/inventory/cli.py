"""Commands: ``assets``, ``assets show ID``, ``comms``, ``map`` and ``baseline learn|check|show|export|
import|diff|accept|deviations``. Each takes ``--db PATH`` (default ``otsentry.db`` or $OTSENTRY_DB) and
``--json``; tables print with rich. ``register(cli)`` adds them to the main ``otsentry`` group.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from otsentry.inventory.baseline import Baseline, diff, dump_yaml
from otsentry.inventory.comms import endpoint_id
from otsentry.inventory.enrich import Enricher
from otsentry.inventory.mapview import build_dot, render
from otsentry.inventory.observe import Event
from otsentry.inventory.settings import Thresholds
from otsentry.inventory.store import InventoryStore, parse_addr

DEFAULT_DB = "otsentry.db"


def _db_option(f: Callable) -> Callable:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="OTSENTRY_DB",
        default=None,
        help=f"SQLite database [default: {DEFAULT_DB}, or $OTSENTRY_DB].",
    )(f)


def _json_option(f: Callable) -> Callable:
    return click.option(
        "--json", "as_json", is_flag=True, default=False, help="Print JSON instead of tables."
    )(f)


def _store(db: Path | None, must_exist: bool = True) -> InventoryStore:
    path = db or Path(DEFAULT_DB)
    if must_exist and not path.exists():
        raise click.ClickException(
            f"no database at {path} (create one with: otsentry replay CAPTURE --db {path})"
        )
    return InventoryStore(path)


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


def _short(value: Any, width: int = 48) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        value = ", ".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, list):
        value = ", ".join(map(str, value))
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _polling_text(polling: dict[str, Any] | None) -> str:
    if not polling:
        return ""
    parts = []
    for sig, stats in polling.items():
        if stats.get("median") is not None:
            parts.append(f"{sig}: {stats['median']:.3f}s ±{stats['jitter']:.3f}")
    return "\n".join(parts)


# -- assets and comms ---------------------------------------------------------------------------------


@click.group("assets", invoke_without_command=True)
@_db_option
@_json_option
@click.pass_context
def assets_group(ctx: click.Context, db: Path | None, as_json: bool) -> None:
    """The asset inventory: one row per IP with MAC vendor, roles, protocols and identity."""
    ctx.obj = {"db": db, "json": as_json}
    if ctx.invoked_subcommand is not None:
        return
    store = _store(db)
    rows = store.assets()
    if as_json:
        _echo_json(rows)
        return
    table = Table(title=f"Assets ({len(rows)})", title_justify="left")
    for col in ("ID", "IP", "MAC", "Vendor", "Roles", "Identity", "Last seen", "Messages"):
        table.add_column(col, justify="right" if col in ("ID", "Messages") else "left")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["ip"],
            r["mac"] or "",
            _short(r["vendor"], 28),
            "\n".join(r["roles"] or []),
            _short(r["identity"]),
            (r["last_seen"] or "")[:19],
            f"{r['messages'] or 0:,}",
        )
    Console().print(table)


@assets_group.command("show")
@click.argument("ident")
@_db_option
@_json_option
@click.pass_context
def assets_show(ctx: click.Context, ident: str, db: Path | None, as_json: bool) -> None:
    """One asset by ID or IP: addresses, logical devices, identity, communications, process values."""
    db = db or ctx.obj.get("db")
    as_json = as_json or ctx.obj.get("json")
    asset = _store(db).asset(ident)
    if asset is None:
        raise click.ClickException(f"no asset {ident!r}")
    if as_json:
        _echo_json(asset)
        return
    console = Console()
    info = Table(show_header=False, title=f"Asset {asset['id']}: {asset['ip']}", title_justify="left")
    info.add_column(style="bold")
    info.add_column()
    for key in ("ip", "mac", "vendor", "vlans", "protocols", "roles", "first_seen", "last_seen", "messages"):
        info.add_row(key, _short(asset.get(key), 100))
    for key, value in (asset.get("identity") or {}).items():
        info.add_row(f"identity.{key}", _short(value, 100))
    console.print(info)
    devices = Table(title="Addresses and logical devices", title_justify="left")
    for col in ("Kind", "Protocol", "Address", "Roles", "Vendor / identity", "First seen", "Last seen"):
        devices.add_column(col)
    for a in asset["addresses"]:
        devices.add_row(
            a["kind"],
            a["protocol"],
            a["address"],
            _short(a["roles"]),
            _short(a["vendor"] or a["identity"], 60),
            (a["first_seen"] or "")[:19],
            (a["last_seen"] or "")[:19],
        )
    console.print(devices)
    _print_comms(console, asset["communications"], "Communications")
    if asset["process_values"]:
        values = Table(title="Process values (observed range)", title_justify="left")
        for col in ("Protocol", "Device", "Point", "Low", "High", "Samples"):
            values.add_column(col)
        for v in asset["process_values"]:
            values.add_row(
                v["protocol"], v["address"], v["point"], f"{v['lo']:g}", f"{v['hi']:g}", str(v["samples"])
            )
        console.print(values)


def _print_comms(console: Console, rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=f"{title} ({len(rows)})", title_justify="left")
    for col in (
        "Protocol",
        "Initiator",
        "Responder",
        "Dir",
        "Function",
        "Class",
        "Count",
        "Ranges",
        "Polling",
        "Last seen",
    ):
        table.add_column(col, justify="right" if col == "Count" else "left")
    for r in rows:
        initiator = endpoint_id(r["initiator_ip"], r["protocol"], parse_addr(r["initiator_address"]))
        responder = endpoint_id(r["responder_ip"], r["protocol"], parse_addr(r["responder_address"]))
        code = f" ({r['function_code']})" if r["function_code"] is not None else ""
        ranges = "\n".join(f"{k}: {_short(v, 40)}" for k, v in (r["ranges"] or {}).items())
        style = "red" if r["function_class"] in ("write", "control") and r["direction"] == "request" else None
        table.add_row(
            r["protocol"],
            initiator,
            responder,
            "→" if r["direction"] == "request" else "←",
            f"{r['function']}{code}",
            r["function_class"] or "",
            f"{r['count']:,}",
            ranges,
            _polling_text(r["polling"]),
            (r["last_seen"] or "")[:19],
            style=style,
        )
    console.print(table)


@click.command("comms")
@_db_option
@_json_option
@click.option("--ip", help="Only pairs with this IP on either side.")
@click.option("--protocol", help="Only this protocol (modbus, dnp3, c1222, dlms, iec104).")
def comms_command(db: Path | None, as_json: bool, ip: str | None, protocol: str | None) -> None:
    """Communications: pair × direction × function with counts, ranges and polling statistics."""
    rows = _store(db).comms(ip=ip, protocol=protocol)
    if as_json:
        _echo_json(rows)
        return
    _print_comms(Console(), rows, "Communications")


@click.command("map")
@_db_option
@_json_option
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("otsentry-map"),
    show_default=True,
    help="Output path without extension.",
)
@click.option(
    "--format", "formats", default="svg,png", show_default=True, help="Comma-separated: svg, png, dot, pdf."
)
@click.option(
    "--max-assets", default=300, show_default=True, help="Draw at most this many (the busiest) assets."
)
def map_command(db: Path | None, as_json: bool, out: Path, formats: str, max_assets: int) -> None:
    """Draw the network map (Graphviz): subnets, roles, protocols; writes and controls in red."""
    store = _store(db)
    assets = store.assets()
    addresses: dict[int, list[dict[str, Any]]] = {}
    for row in store.query("SELECT * FROM asset_addresses"):
        addresses.setdefault(row["asset_id"], []).append(row)
    dot_text = build_dot(assets, addresses, store.comms(), max_assets=max_assets)
    try:
        written = render(dot_text, out, tuple(f.strip() for f in formats.split(",") if f.strip()))
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json({"files": [str(p) for p in written], "assets": len(assets)})
    else:
        for path in written:
            click.echo(f"wrote {path}")


# -- baseline --------------------------------------------------------------------------------------------


@click.group("baseline")
def baseline_group() -> None:
    """Learn, review, export/import, diff and accept the baseline of normal traffic."""


def _stored_events(store: InventoryStore, since: str | None, until: str | None) -> Iterator[list[Event]]:
    sql, params = "SELECT doc FROM events", []
    where = []
    if since:
        where.append("ts >= ?")
        params.append(since)
    if until:
        where.append("ts < ?")
        params.append(until)
    if where:
        sql += " WHERE " + " AND ".join(where)
    cursor = store.conn.execute(sql + " ORDER BY ts, id", params)
    while True:
        rows = cursor.fetchmany(8192)
        if not rows:
            return
        yield [orjson.loads(r[0]) for r in rows]


def _feed(
    enricher: Callable[[list[Event]], Any],
    captures: tuple[Path, ...],
    store: InventoryStore | None,
    since: str | None,
    until: str | None,
) -> dict[str, Any]:
    """Run captures (through the sensor) or stored events through ``enricher``."""
    if captures:
        try:
            from otsentry.sensor import Sensor
        except ImportError as exc:  # the sensor core is optional for reviewing a stored baseline
            raise click.ClickException(f"cannot replay captures: {exc}") from exc
        sensor = Sensor(sinks=[enricher])
        for path in captures:
            sensor.replay(path)
        summary = sensor.close()
        if summary.capture_errors:
            raise click.ClickException("; ".join(summary.capture_errors))
        return {"sources": [str(p) for p in captures]}
    assert store is not None
    for batch in _stored_events(store, since, until):
        enricher(batch)
    return {
        "sources": [f"{store.db.conn.execute('PRAGMA database_list').fetchone()[2]} events"],
        **({"since": since} if since else {}),
        **({"until": until} if until else {}),
    }


def _learned_meta(enricher: Enricher, extra: dict[str, Any]) -> dict[str, Any]:
    from otsentry.inventory.deviations import format_ts

    inv = enricher.inventory
    firsts = [a.first for a in inv.assets.values()]
    meta = {"events": inv.events, **extra}
    if firsts:
        meta["from"] = format_ts(min(firsts))
        meta["to"] = format_ts(inv.now)
    return meta


@baseline_group.command("learn")
@click.argument("captures", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_db_option
@_json_option
@click.option("--since", help="With stored events: learn from this time on (RFC 3339 prefix).")
@click.option("--until", help="With stored events: learn up to this time (exclusive).")
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the learned baseline as YAML.",
)
def baseline_learn(
    captures: tuple[Path, ...],
    db: Path | None,
    as_json: bool,
    since: str | None,
    until: str | None,
    export_path: Path | None,
) -> None:
    """Learn the baseline from CAPTURES, or from the events stored in the database; store it there."""
    store = _store(db, must_exist=not captures)
    enricher = Enricher(add_fields=False)
    meta = _feed(enricher, captures, store, since, until)
    baseline = Baseline.learn(enricher.inventory, Thresholds(), _learned_meta(enricher, meta))
    store.save_baseline(baseline)
    if export_path:
        export_path.write_text(baseline.to_yaml(), encoding="utf-8")
    summary = {"learned": baseline.learned, **baseline.summary()}
    if as_json:
        _echo_json(summary)
    else:
        _print_summary("Baseline learned", summary)


def _print_summary(title: str, summary: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary.items():
        table.add_row(key, _short(value, 100))
    Console().print(table)


def _load_stored_baseline(store: InventoryStore) -> Baseline:
    baseline = store.load_baseline()
    if baseline is None:
        raise click.ClickException("no baseline in the database (otsentry baseline learn / import)")
    return baseline


@baseline_group.command("check")
@click.argument("captures", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_db_option
@_json_option
@click.option("--since", help="With stored events: check from this time on.")
@click.option("--until", help="With stored events: check up to this time (exclusive).")
@click.option(
    "--alerts-out", type=click.Path(dir_okay=False, path_type=Path), help="Write the alerts as JSON lines."
)
def baseline_check(
    captures: tuple[Path, ...],
    db: Path | None,
    as_json: bool,
    since: str | None,
    until: str | None,
    alerts_out: Path | None,
) -> None:
    """Compare CAPTURES (or stored events) with the stored baseline; record and list the deviations."""
    store = _store(db)
    alerts: list[Event] = []
    enricher = Enricher(baseline=_load_stored_baseline(store), add_fields=False)

    def stage(events: list[Event]) -> list[Event]:
        alerts.extend(e for e in enricher(events) if e.get("event.dataset") == "otsentry.baseline")
        return events

    _feed(stage, captures, store, since, until)
    alerts.extend(enricher.finish())
    assert enricher.detector is not None
    store.write_deviations(list(enricher.detector.deviations.values()))
    if alerts_out:
        with alerts_out.open("wb") as fh:
            fh.write(b"".join(orjson.dumps(a, option=orjson.OPT_APPEND_NEWLINE) for a in alerts))
    ids = {a["otsentry.baseline.deviation_id"] for a in alerts}
    rows = [d for d in store.deviations() if d["id"] in ids]
    if as_json:
        _echo_json({"alerts": len(alerts), "deviations": rows})
    else:
        _print_deviations(rows, f"Deviations ({len(alerts)} alerts)")
    sys.exit(1 if rows else 0)


def _print_deviations(rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("ID", "Kind", "Message", "Count", "First seen", "Status"):
        table.add_column(col, justify="right" if col == "Count" else "left")
    for d in rows:
        table.add_row(
            d["id"], d["action"], d["message"], str(d["count"]), (d["first_seen"] or "")[:19], d["status"]
        )
    Console().print(table)


@baseline_group.command("deviations")
@_db_option
@_json_option
@click.option("--status", type=click.Choice(["new", "accepted"]), help="Only deviations with this status.")
def baseline_deviations(db: Path | None, as_json: bool, status: str | None) -> None:
    """Deviations recorded so far, with the ids ``baseline accept`` takes."""
    rows = _store(db).deviations(status)
    if as_json:
        _echo_json(rows)
    else:
        _print_deviations(rows, f"Deviations ({len(rows)})")


@baseline_group.command("show")
@_db_option
@_json_option
def baseline_show(db: Path | None, as_json: bool) -> None:
    """The stored baseline: assets, devices and pairs with their functions, ranges, polling and bands."""
    baseline = _load_stored_baseline(_store(db))
    if as_json:
        _echo_json(baseline.to_doc())
        return
    console = Console()
    _print_summary("Baseline", {"learned": baseline.learned, **baseline.summary()})
    doc = baseline.to_doc()
    assets = Table(title="Assets and logical devices", title_justify="left")
    for col in ("IP", "MACs", "Device", "Roles", "Value bands"):
        assets.add_column(col)
    for ip, entry in doc["assets"].items():
        devices = entry.get("devices") or {"": {}}
        for n, (dkey, dev) in enumerate(devices.items()):
            bands = ", ".join(f"{p} {b}" for p, b in (dev.get("values") or {}).items())
            assets.add_row(
                ip if n == 0 else "",
                ", ".join(entry["macs"]) if n == 0 else "",
                dkey,
                ", ".join(dev.get("roles") or []),
                _short(bands, 60),
            )
    console.print(assets)
    pairs = Table(title="Pairs", title_justify="left")
    for col in ("Pair", "Requests", "Responses", "Polling"):
        pairs.add_column(col)
    for pid, entry in doc["pairs"].items():

        def funcs(section: dict[str, Any] | None) -> str:
            return "\n".join(
                f"{name}" + "".join(f" {s}={_short(r, 30)}" for s, r in (f.get("ranges") or {}).items())
                for name, f in (section or {}).items()
            )

        polling = "\n".join(
            f"{sig}: {p['period']:.3f}s ±{p['jitter']:.3f}" for sig, p in (entry.get("polling") or {}).items()
        )
        pairs.add_row(pid, funcs(entry.get("requests")), funcs(entry.get("responses")), polling)
    console.print(pairs)


@baseline_group.command("export")
@_db_option
@_json_option
@click.option(
    "-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
def baseline_export(db: Path | None, as_json: bool, out: Path | None) -> None:
    """Write the stored baseline as YAML (or JSON) for review and version control."""
    doc = _load_stored_baseline(_store(db)).to_doc()
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n" if as_json else dump_yaml(doc)
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _read_baseline(path: Path) -> Baseline:
    try:
        return Baseline.from_text(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    except Exception as exc:  # yaml's errors have no common base with ValueError
        raise click.ClickException(f"{path}: not a baseline file ({exc.__class__.__name__})") from exc


@baseline_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_db_option
@_json_option
def baseline_import(path: Path, db: Path | None, as_json: bool) -> None:
    """Replace the stored baseline with a reviewed YAML/JSON file."""
    baseline = _read_baseline(path)
    _store(db, must_exist=False).save_baseline(baseline)
    summary = baseline.summary()
    if as_json:
        _echo_json(summary)
    else:
        _print_summary(f"Baseline imported from {path}", summary)


@baseline_group.command("diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_db_option
@_json_option
def baseline_diff(old: Path, new: Path | None, db: Path | None, as_json: bool) -> None:
    """What changed from baseline OLD to NEW (a file, or the stored baseline when NEW is omitted)."""
    before = _read_baseline(old)
    after = _read_baseline(new) if new else _load_stored_baseline(_store(db))
    changes = diff(before, after)
    if as_json:
        _echo_json(changes)
    else:
        table = Table(title=f"{old} → {new or 'stored baseline'}", title_justify="left")
        table.add_column("")
        table.add_column("Fact")
        table.add_column("Value")
        for fact in changes["added"]:
            table.add_row("[green]+[/]", fact, after.facts()[fact])
        for fact in changes["removed"]:
            table.add_row("[red]-[/]", fact, before.facts()[fact])
        for fact, was, now in changes["changed"]:
            table.add_row("[yellow]~[/]", fact, f"{was} → {now}")
        Console().print(table)
    sys.exit(1 if any(changes.values()) else 0)


@baseline_group.command("accept")
@click.argument("deviation_ids", nargs=-1, required=True)
@_db_option
@_json_option
def baseline_accept(deviation_ids: tuple[str, ...], db: Path | None, as_json: bool) -> None:
    """Add reviewed deviations to the stored baseline so they no longer fire."""
    store = _store(db)
    baseline = _load_stored_baseline(store)
    accepted = []
    for dev_id in deviation_ids:
        row = store.deviation(dev_id)
        if row is None:
            raise click.ClickException(f"no deviation {dev_id!r} (otsentry baseline deviations lists them)")
        accept(baseline, row["detail"] or {})
        accepted.append(row)
    store.save_baseline(baseline)
    for row in accepted:
        store.set_deviation_status(row["id"], "accepted")
    if as_json:
        _echo_json({"accepted": [r["id"] for r in accepted], **baseline.summary()})
    else:
        for row in accepted:
            click.echo(f"accepted {row['id']} {row['action']}: {row['subject']}")


def accept(baseline: Baseline, detail: dict[str, Any]) -> None:
    """Apply a deviation's recorded detail (a baseline fragment to merge, a channel to forget)."""
    if detail.get("merge"):
        baseline.merge(Baseline.from_doc(detail["merge"]))
    channel = detail.get("remove_channel")
    if channel:
        baseline.remove_channel(channel[0], channel[1], channel[2])


def register(cli: click.Group) -> None:
    """Add the inventory and baseline commands to the main ``otsentry`` group."""
    for command in (assets_group, comms_command, map_command, baseline_group):
        cli.add_command(command)
