"""``otsentry alerts …`` (triage) and ``otsentry rules …`` (the Sigma pack). ``register(cli)`` adds them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from otsentry.detect import severity
from otsentry.detect.alerts import STATUSES, AlertStore
from otsentry.detect.engine import DetectionEngine, bundled_rules_dir, load_collection

DEFAULT_DB = "otsentry.db"


def _db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="OTSENTRY_DB",
        default=None,
        help=f"SQLite database [default: {DEFAULT_DB}, or $OTSENTRY_DB].",
    )(f)


def _rules_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--rules",
        "rule_dirs",
        multiple=True,
        type=click.Path(exists=True, path_type=Path),
        help="Rule folder or file (repeatable) [default: the bundled pack].",
    )(f)


def _json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def _open_store(db: Path | None) -> AlertStore:
    path = db or Path(DEFAULT_DB)
    if not path.exists():
        raise click.ClickException(f"no database at {path} (otsentry replay CAPTURE --db {path} --rules …)")
    return AlertStore(path)


def _echo_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode())


def _dirs(rule_dirs: tuple[Path, ...]) -> list[Path]:
    return list(rule_dirs) or [bundled_rules_dir()]


def _min_severity(text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    if text.lower() not in severity.SEVERITIES:
        raise click.BadParameter(f"use a number 1-10 or one of {', '.join(severity.SEVERITIES)}")
    return severity.SEVERITIES[text.lower()].number


# -- alerts ------------------------------------------------------------------------------------------------


def _list_alerts(
    db: Path | None, status: str | None, min_sev: str | None, since: str | None, as_json: bool, limit: int
) -> None:
    store = _open_store(db)
    rows = store.list(status=status, min_severity=_min_severity(min_sev), since=since, limit=limit)
    if as_json:
        _echo_json([{k: v for k, v in r.items() if k != "doc"} for r in rows])
        return
    table = Table(title=f"Alerts ({len(rows)})", title_justify="left")
    for col in ("Seq", "ID", "Time", "Sev", "Status", "Count", "Rule", "Message"):
        table.add_column(col, justify="right" if col in ("Seq", "Sev", "Count") else "left", overflow="fold")
    for r in rows:
        table.add_row(
            str(r["seq"]),
            r["id"][:8],
            (r["ts"] or "")[:19],
            f"{r['level']} ({r['severity']})",
            r["status"],
            str(r["count"]),
            r["rule_name"] or "",
            r["message"] or "",
        )
    Console().print(table)


@click.group("alerts", invoke_without_command=True)
@_db_option
@click.option("--status", type=click.Choice(STATUSES), help="Only alerts in this triage state.")
@click.option("--severity", "min_sev", help="Only alerts at least this severe (1-10 or a level name).")
@click.option("--since", help="Only alerts from this time on (RFC 3339 prefix, e.g. 2024-05-14T06).")
@click.option("--limit", default=1000, show_default=True)
@_json_option
@click.pass_context
def alerts_group(
    ctx: click.Context,
    db: Path | None,
    status: str | None,
    min_sev: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List alerts (oldest first); subcommands show and triage one."""
    if ctx.invoked_subcommand is None:
        _list_alerts(db, status, min_sev, since, as_json, limit)


@alerts_group.command("list")
@_db_option
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--severity", "min_sev", help="At least this severe (1-10 or a level name).")
@click.option("--since", help="From this time on (RFC 3339 prefix).")
@click.option("--limit", default=1000, show_default=True)
@_json_option
def alerts_list(
    db: Path | None, status: str | None, min_sev: str | None, since: str | None, limit: int, as_json: bool
) -> None:
    """List alerts."""
    _list_alerts(db, status, min_sev, since, as_json, limit)


@alerts_group.command("show")
@click.argument("alert_id")
@_db_option
@_json_option
def alerts_show(alert_id: str, db: Path | None, as_json: bool) -> None:
    """One alert (by id, id prefix or seq): its message, rule, ATT&CK mapping, evidence and history."""
    store = _open_store(db)
    alert = store.get(alert_id)
    if alert is None:
        raise click.ClickException(f"no alert {alert_id}")
    if as_json:
        _echo_json(alert)
        return
    doc = alert["doc"]
    table = Table(title=f"Alert {alert['seq']} — {alert['id']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [
        ("message", alert["message"]),
        ("status", alert["status"]),
        ("severity", f"{alert['level']} ({alert['severity']})"),
        ("rule", f"{alert['rule_name']} [{alert['rule_id']}] ({alert['ruleset']})"),
        (
            "technique",
            ", ".join(
                f"{i} {n}"
                for i, n in zip(
                    doc.get("threat.technique.id", []), doc.get("threat.technique.name", []), strict=False
                )
            ),
        ),
        ("tactic", ", ".join(doc.get("threat.tactic.name", []))),
        ("time", f"{alert['first_seen']} … {alert['last_seen']} ({alert['count']}×)"),
        (
            "flow",
            f"{alert['source_ip']} → {alert['destination_ip']} {alert['protocol'] or ''} "
            f"{alert['community_id'] or ''}",
        ),
        ("capture", f"{alert['pcap_file'] or ''} frames {doc.get('otsentry.alert.frames', [])}"),
        ("evidence", alert["evidence"] or ""),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    for entry in alert["history"]:
        table.add_row("history", f"{entry['at'][:19]} {entry['status']} {entry.get('note', '')}")
    Console().print(table)


def _triage(status: str) -> Callable[..., None]:
    def command(alert_id: str, note: str | None, db: Path | None) -> None:
        store = _open_store(db)
        try:
            alert = store.set_status(alert_id, status, note)
        except KeyError:
            raise click.ClickException(f"no alert {alert_id}") from None
        click.echo(f"alert {alert['seq']} ({alert['id']}) {status}")

    return command


for _status, _name, _help in (
    ("acknowledged", "ack", "Acknowledge an alert (someone is on it)."),
    ("closed", "close", "Close an alert."),
):
    alerts_group.command(_name, help=_help)(
        click.argument("alert_id")(
            click.option("--note", help="Why; kept in the alert's history.")(_db_option(_triage(_status)))
        )
    )


# -- rules ------------------------------------------------------------------------------------------------


@click.group("rules")
def rules_group() -> None:
    """The Sigma rule pack: list, check, test and convert to SIEM queries."""


@rules_group.command("list")
@_rules_option
@_json_option
def rules_list(rule_dirs: tuple[Path, ...], as_json: bool) -> None:
    """The rules that raise alerts, with level, service and ATT&CK techniques."""
    engine = DetectionEngine.from_paths(_dirs(rule_dirs))
    rows = [
        {
            "id": r.id,
            "title": r.title,
            "level": r.level.level,
            "service": (r.dataset or "*").removeprefix("otsentry."),
            "type": str(r.rule.type) if r.is_correlation else "rule",  # type: ignore[union-attr]
            "techniques": r.threat.get("threat.technique.id", []),
            "source": r.source,
        }
        for r in engine.rules
        if r.output
    ]
    if as_json:
        _echo_json(rows)
        return
    table = Table(title=f"Rules ({len(rows)})", title_justify="left")
    for col in ("ID", "Service", "Level", "Type", "ATT&CK", "Title"):
        table.add_column(col, overflow="fold")
    for r in sorted(rows, key=lambda r: (r["service"], r["title"])):
        service = r["service"] if r["type"] == "rule" else "corr"
        table.add_row(r["id"][:8], service, r["level"], r["type"], ", ".join(r["techniques"]), r["title"])
    Console().print(table)


@rules_group.command("check")
@_rules_option
def rules_check(rule_dirs: tuple[Path, ...]) -> None:
    """Validate rules: Sigma syntax and best practices (pySigma validators; the online ATT&CK validator is
    replaced by the project's ATT&CK-for-ICS table), otsentry's requirements and test-case coverage."""
    from otsentry.detect.checks import check_rules

    problems = check_rules(_dirs(rule_dirs))
    for source, message in problems:
        click.echo(f"{source}: {message}")
    click.echo(f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


@rules_group.command("test")
@_rules_option
@click.option("-v", "--verbose", is_flag=True, help="List every case, not only failures.")
def rules_test(rule_dirs: tuple[Path, ...], verbose: bool) -> None:
    """Run each rule's test cases (``<folder>/tests/*.yaml``): fire events must raise it, near misses not."""
    from otsentry.detect.ruletest import case_files, run_cases

    dirs = _dirs(rule_dirs)
    engine = DetectionEngine.from_paths(dirs)
    results, missing = run_cases(engine, case_files(dirs))
    for r in results:
        if verbose or not r.passed:
            click.echo(f"{'ok  ' if r.passed else 'FAIL'} {r.title} — {r.kind} {r.detail}")
    for rule in missing:
        click.echo(f"FAIL {rule.title} — no test case with a fire and a near miss ({rule.source})")
    failed = sum(not r.passed for r in results) + len(missing)
    click.echo(f"{len(results) - failed + len(missing)} passed, {failed} failed")
    sys.exit(1 if failed else 0)


@rules_group.command("convert")
@_rules_option
@click.option("-t", "--target", type=click.Choice(["splunk", "lucene", "esql"]), required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@_json_option
def rules_convert(rule_dirs: tuple[Path, ...], target: str, output: Path | None, as_json: bool) -> None:
    """Convert the rules to Splunk SPL, Elasticsearch Lucene or ES|QL queries (otsentry's field mapping)."""
    from otsentry.detect.convert import convert

    results = convert(_dirs(rule_dirs), target)
    if as_json:
        text = orjson.dumps([r.__dict__ for r in results], option=orjson.OPT_INDENT_2).decode()
    else:
        lines = []
        for r in results:
            lines.append(f"# {r.title} [{r.rule_id}]" + (f" — {r.note}" if r.note else ""))
            lines += [f"# ERROR: {r.error}"] if r.error else r.queries
            lines.append("")
        text = "\n".join(lines)
    if output:
        output.write_text(text)
    else:
        click.echo(text)
    sys.exit(1 if any(r.error for r in results) else 0)


@rules_group.command("pipeline")
@click.option("-t", "--target", type=click.Choice(["splunk", "elasticsearch"]), required=True)
def rules_pipeline(target: str) -> None:
    """Print the pySigma processing pipeline (YAML) for ``sigma convert -p``."""
    from otsentry.detect.pipeline import pipeline_yaml

    click.echo(pipeline_yaml(target), nl=False)


def register(cli: click.Group) -> None:
    """Add ``alerts`` and ``rules`` to the main ``otsentry`` group."""
    cli.add_command(alerts_group)
    cli.add_command(rules_group)


__all__ = ["load_collection", "register"]
