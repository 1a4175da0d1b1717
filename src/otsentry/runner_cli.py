"""``otsentry run``: the live sensor service. ``register(cli)`` adds the command to the main group.

Every flag is a config key (shown in its help); ``--set section.key=value`` reaches the others. The
command-line wins over the file, and keeps winning after a SIGHUP reload. Exit codes: 0 after a clean
stop, 1 when the capture fails (systemd restarts), 2 for a bad config or usage (systemd does not:
``RestartPreventExitStatus=2``).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import orjson

from otsentry.config import Config, ConfigError, load_config


def _toml_value(text: str) -> Any:
    """``--set`` values are TOML (``128``, ``true``, ``["eth1", "eth2"]``); anything else is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _workers(value: str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        return value  # the config check names the key and the bad value


def build_config(
    config_path: Path | None, flags: dict[str, Any], settings: tuple[str, ...]
) -> tuple[Config, dict[str, Any]]:
    """The file's config with ``--set`` and the flags applied; also the overrides, for SIGHUP reloads."""
    overrides: dict[str, Any] = {}
    for item in settings:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item}: expected section.key=value")
        overrides[key.strip()] = _toml_value(value.strip())
    overrides.update({k: v for k, v in flags.items() if v is not None})
    config = load_config(config_path)
    return config.override(overrides, origin="command line"), overrides


@click.command("run")
@click.option("-i", "--interface", "interfaces", multiple=True, metavar="IF",
              help="Interface to capture (repeatable). [capture.interfaces]")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar="OTSENTRY_CONFIG", help="TOML config file (env OTSENTRY_CONFIG).")
@click.option("--workers", help="Capture processes per interface, or 'auto'. [capture.workers]")
@click.option("--filter", "filter_text", help="'ports', 'all' or a BPF expression. [capture.filter]")
@click.option("--backend", type=click.Choice(["af_packet", "libpcap"]), help="[capture.backend]")
@click.option("--ring-mb", type=int, help="Ring size per interface and worker. [capture.ring_mb]")
@click.option("--events-out", help="Append events as JSON lines. [outputs.events_file]")
@click.option("--db", help="SQLite database. [outputs.db]")
@click.option("--alerts-out", help="Append alerts as JSON lines. [outputs.alerts_file]")
@click.option("--observer-name", help="observer.name in events and alerts. [sensor.name]")
@click.option("--rules", multiple=True, help="Rule file or folder (repeatable). [analysis.rules]")
@click.option("--detect/--no-detect", default=None, help="Run detection. [analysis.detect]")
@click.option("--baseline", help="Baseline file. [analysis.baseline]")
@click.option("--stats-interval", type=float, help="Seconds between stats. [health.stats_interval]")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="[logging.level]")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any config key, e.g. --set capture.block_timeout_ms=20 (repeatable).")
@click.option("--check", is_flag=True, help="Check the config, print it with the capture filter, exit.")
def run_command(interfaces: tuple[str, ...], config_path: Path | None, workers: str | None,
                filter_text: str | None, backend: str | None, ring_mb: int | None, events_out: str | None,
                db: str | None, alerts_out: str | None, observer_name: str | None, rules: tuple[str, ...],
                detect: bool | None, baseline: str | None, stats_interval: float | None,
                log_level: str | None, settings: tuple[str, ...], check: bool) -> None:
    """Capture live from network interfaces (a SPAN port or tap) as a service."""
    flags = {
        "capture.interfaces": list(interfaces) or None,
        "capture.workers": _workers(workers),
        "capture.filter": filter_text,
        "capture.backend": backend,
        "capture.ring_mb": ring_mb,
        "outputs.events_file": events_out,
        "outputs.db": db,
        "outputs.alerts_file": alerts_out,
        "sensor.name": observer_name,
        "analysis.rules": list(rules) or None,
        "analysis.detect": detect,
        "analysis.baseline": baseline,
        "health.stats_interval": stats_interval,
        "logging.level": log_level,
    }
    try:
        config, overrides = build_config(config_path, flags, settings)
    except ConfigError as exc:
        click.echo(f"otsentry: error: {exc}", err=True)
        sys.exit(2)
    if check:
        from otsentry.capture import bpf

        doc = config.to_dict()
        doc["capture"]["compiled_filter"] = bpf.filter_for(config) or "(none: every frame)"
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    if not config.capture.interfaces:
        click.echo("otsentry: error: no interface to capture: give --interface or capture.interfaces",
                   err=True)
        sys.exit(2)

    from otsentry.capture.live import LiveCaptureError
    from otsentry.logs import configure_logging
    from otsentry.runner import LiveService, ServiceError
    from otsentry.runner import log_level as level_of

    configure_logging(config.logging.format, level_of(config.logging.level))
    service = LiveService(config, config_path, overrides)
    try:
        code = service.run()
    except (LiveCaptureError, ServiceError) as exc:
        service.log.error("capture_failed", error=str(exc))
        click.echo(f"otsentry: error: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)


def register(cli_group: click.Group) -> None:
    """Add ``run`` to the main ``otsentry`` command group."""
    cli_group.add_command(run_command)
