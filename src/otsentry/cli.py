"""The ``otsentry`` command line."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from otsentry import __version__
from otsentry.logs import configure_logging
from otsentry.parallel import replay_parallel
from otsentry.sensor import JsonLinesSink, Sensor, Summary
from otsentry.store import EventStore

if TYPE_CHECKING:
    from otsentry.analysis import Analysis


class _LazyCommands(click.Group):
    """Loads the other command modules (Sigma, the web console, …) only when one of them is asked for,
    so ``otsentry replay`` does not pay for importing them."""

    _loaded = False

    def _load(self) -> None:
        if not self._loaded:
            type(self)._loaded = True
            _register_commands()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self._load()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)


@click.group(cls=_LazyCommands)
@click.version_option(__version__, prog_name="otsentry")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "console", "json"]),
    default="auto",
    help="The sensor's own logs: human on a terminal, JSON for services.",
)
def cli(log_format: str) -> None:
    """otsentry — a passive OT security sensor."""
    configure_logging(log_format)
    # The sensor makes and drops millions of small acyclic dicts (events, DNP3 points). At CPython's
    # default of 700 allocations the cyclic collector ran every few packets and took 11 % of replay
    # CPU on the DNP3 bench capture; at 50,000 it takes 3 %. Live workers fork from here and inherit it.
    gc.set_threshold(50_000, 20, 20)


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--events-out", type=click.Path(dir_okay=False, path_type=Path), help="Write events as JSON lines."
)
@click.option(
    "--db", type=click.Path(dir_okay=False, path_type=Path), help="Store events and flows in SQLite."
)
@click.option("--observer-name", default="otsentry", show_default=True, help="observer.name in every event.")
@click.option("--summary-json", is_flag=True, help="Print the run summary as JSON instead of a table.")
@click.option(
    "--alerts-out", type=click.Path(dir_okay=False, path_type=Path), help="Write alerts as JSON lines."
)
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Sigma rule file or folder (repeatable); default: the bundled pack.",
)
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Detect deviations from this baseline file (default: the one in --db, if any).",
)
@click.option("--no-detect", is_flag=True, help="Decode only: no inventory, baseline or Sigma stages.")
@click.option(
    "--workers",
    default="auto",
    show_default=True,
    help="Decoding processes, sharded by flow (needs --no-detect); 'auto': all cores over 16 MiB.",
)
def replay(
    captures: tuple[Path, ...],
    events_out: Path | None,
    db: Path | None,
    observer_name: str,
    summary_json: bool,
    alerts_out: Path | None,
    rule_paths: tuple[Path, ...],
    baseline_file: Path | None,
    no_detect: bool,
    workers: str,
) -> None:
    """Decode pcap/pcapng CAPTURES into OT protocol events, inventory and alerts."""
    missing = [str(p) for p in captures if not p.exists()]
    if missing:
        raise click.UsageError(f"no such capture: {', '.join(missing)}")
    count = _worker_count(workers, captures, analysing=not no_detect)
    if count > 1:
        summary = replay_parallel(list(captures), count, events_out, db, observer_name)
    else:
        analysis = None
        if not no_detect:
            from otsentry.analysis import build_analysis  # pySigma loads only when detection runs

            analysis = build_analysis(
                db, list(rule_paths) or None, alerts_out=alerts_out, baseline_file=baseline_file
            )
        summary = _replay_here(
            captures, events_out, db, observer_name, show_progress=not summary_json, analysis=analysis
        )
    if summary_json:
        click.echo(orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_summary(summary)
    for error in summary.capture_errors:
        click.echo(f"otsentry: error: {error}", err=True)
    sys.exit(2 if summary.capture_errors else 0)


def _worker_count(workers: str, captures: tuple[Path, ...], analysing: bool) -> int:
    """Workers for decoding. Inventory and detection need every flow in one process (a
    correlation may span flows), so with them the replay runs in one process."""
    if workers == "auto":
        big = sum(p.stat().st_size for p in captures) > 16 * 1024 * 1024
        return (os.cpu_count() or 1) if big and not analysing else 1
    try:
        count = max(1, int(workers))
    except ValueError:
        raise click.BadParameter(
            f"expected a number or 'auto', got {workers!r}", param_hint="--workers"
        ) from None
    if count > 1 and analysing:
        raise click.UsageError("--workers above 1 decodes only: add --no-detect")
    return count


def _replay_here(
    captures: tuple[Path, ...],
    events_out: Path | None,
    db: Path | None,
    observer_name: str,
    show_progress: bool,
    analysis: Analysis | None = None,
) -> Summary:
    """Replay in this process, with a progress bar on a terminal."""
    sink = JsonLinesSink(events_out) if events_out else None
    store = EventStore(db) if db else None
    sensor = Sensor(observer_name=observer_name, events_out=sink, store=store, analysis=analysis)
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (show_progress and console.is_terminal),
        transient=True,
    ) as progress:
        for path in captures:
            task = progress.add_task(path.name, total=path.stat().st_size)
            sensor.replay(path, lambda done, task=task: progress.update(task, completed=done))
            progress.update(task, completed=path.stat().st_size)
    return sensor.close()


def _print_summary(summary: Summary) -> None:
    console = Console()
    table = Table(title="otsentry replay", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("packets", f"{summary.packets:,}")
    table.add_row("flows", f"{summary.flows:,}")
    table.add_row("time", f"{summary.seconds:.2f} s ({summary.packets_per_second:,.0f} packets/s)")
    for dataset, count in sorted(summary.events.items()):
        table.add_row(f"events {dataset.removeprefix('otsentry.')}", f"{count:,}")
    for level, count in sorted(summary.alerts.items()):
        table.add_row(f"alerts {level}", f"[red]{count:,}[/]")
    for protocol, count in sorted(summary.decode_errors.items()):
        table.add_row(f"decode errors {protocol}", f"[yellow]{count:,}[/]")
    skipped = {k: v for k, v in summary.decoder.items() if k != "decoded" and v}
    for name, count in sorted(skipped.items()):
        table.add_row(f"packets {name.replace('_', ' ')}", f"{count:,}")
    tcp = {k: v for k, v in summary.tcp.items() if k != "segments" and v}
    for name, count in sorted(tcp.items()):
        table.add_row(f"tcp {name.replace('_', ' ')}", f"{count:,}")
    console.print(table)


def _register_commands() -> None:
    """The inventory, detection, forwarding, live and console commands live beside their code."""
    from otsentry import runner_cli
    from otsentry.detect import cli as detect_cli
    from otsentry.inventory import cli as inventory_cli
    from otsentry.outputs import cli as outputs_cli
    from otsentry.web import cli as web_cli

    for module in (runner_cli, inventory_cli, detect_cli, outputs_cli, web_cli):
        module.register(cli)


def main() -> None:
    cli(prog_name="otsentry")
