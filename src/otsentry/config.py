"""One typed configuration for the sensor: a TOML file, then command-line overrides, validated at start.

Every section is a frozen dataclass whose fields are the keys of that TOML table; the field's type hint
is the schema. ``load_config(path)`` reads and checks the file; ``Config.override({"capture.workers": 2})``
applies command-line flags with the same checks. Any problem — bad TOML, an unknown table or key, a wrong
type, a value out of range — raises :class:`ConfigError` with one line naming the file and the key::

    /etc/otsentry/otsentry.toml: capture.workers: expected an integer or 'auto', got string 'two'

The tables of the other stages (``[inventory]``, ``[baseline]``, ``[detect]``, ``[forward]``, ``[web]``) are
passed through as plain dicts: their owners validate them (e.g. ``outputs.config.parse_forward_config``).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from otsentry.net.flows import FlowLimits

PASS_THROUGH = ("inventory", "baseline", "detect", "forward", "web", "c1222")
MAX_FRAME = 65535 + 22  # an IP datagram of 64 KiB behind Ethernet and two VLAN tags


class ConfigError(ValueError):
    """One line: which file, which key, what is wrong."""


@dataclass(frozen=True)
class SensorConfig:
    name: str = "otsentry"  # observer.name in every event and alert
    protocols: tuple[str, ...] = ()  # protocols to decode (and to build the capture filter from); empty: all


@dataclass(frozen=True)
class CaptureConfig:
    interfaces: tuple[str, ...] = ()
    # "ports": only the enabled protocols' ports (+ extras); "all": every packet (finds protocols on
    # other ports by their heuristics, at the cost of decoding all traffic); anything else: a BPF expression.
    filter: str = "ports"
    extra_tcp_ports: tuple[int, ...] = ()
    extra_udp_ports: tuple[int, ...] = ()
    extra_filter: str = ""  # OR'ed into the "ports" filter, e.g. "host 10.20.1.5"
    vlan: bool = True  # also match the port filter inside an 802.1Q tag left in the frame (QinQ)
    workers: int | Literal["auto"] = 1  # capture/decode processes sharing each interface (PACKET_FANOUT)
    # true: capture, decoding and analysis in one process (one core, lowest latency); false: the capture
    # workers feed a separate collector process (analysis and outputs), a pipeline over two cores or more.
    inline: bool = False
    backend: Literal["af_packet", "libpcap"] = "af_packet"
    ring_mb: int = 64  # TPACKET_V3 ring per interface and worker
    # Ring block size. A block is handed over full or after block_timeout_ms: at low rates blocks leave
    # partly filled, so many small blocks buffer longer than a few large ones.
    block_kb: int = 256
    block_timeout_ms: int = 50
    snaplen: int = 262144
    promiscuous: bool = True
    ignore_outgoing: bool = True  # skip frames this host sends (a SPAN port only receives)
    fanout_group: int = 0  # PACKET_FANOUT group id; 0: let the kernel pick an unused one


@dataclass(frozen=True)
class FlowsConfig:
    tcp_idle: float = FlowLimits.tcp_idle
    udp_idle: float = FlowLimits.udp_idle
    closed_linger: float = FlowLimits.closed_linger
    max_flows: int = FlowLimits.max_flows
    max_pending_bytes: int = FlowLimits.max_pending_bytes

    def limits(self) -> FlowLimits:
        return FlowLimits(**dataclasses.asdict(self))


@dataclass(frozen=True)
class OutputsConfig:
    events_file: str | None = None  # JSON lines
    db: str | None = None  # SQLite: events, flows, inventory, alerts and their outbox
    alerts_file: str | None = None  # alerts as JSON lines
    forward: bool = True  # run the [forward] destinations inside the service (needs db)
    flush_interval: float = 0.5  # seconds an event may wait in a batch before it is written


@dataclass(frozen=True)
class AnalysisConfig:
    detect: bool = True  # Sigma rules and baseline deviations
    rules: tuple[str, ...] = ()  # rule files or folders; empty: the bundled pack
    baseline: str | None = None  # a baseline file; unset: the one stored in the database, if any


@dataclass(frozen=True)
class HealthConfig:
    stats_interval: float = 60.0  # seconds between stats log lines and health metric events
    silent_after: float = 300.0  # alert when an interface captured nothing for this long
    loss_threshold: float = 0.001  # alert when the kernel dropped more than this fraction in an interval


@dataclass(frozen=True)
class LoggingConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


SECTIONS: dict[str, type] = {
    "sensor": SensorConfig,
    "capture": CaptureConfig,
    "flows": FlowsConfig,
    "outputs": OutputsConfig,
    "analysis": AnalysisConfig,
    "health": HealthConfig,
    "logging": LoggingConfig,
}


@dataclass(frozen=True)
class Config:
    sensor: SensorConfig = field(default_factory=SensorConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    flows: FlowsConfig = field(default_factory=FlowsConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    # Other stages' tables, validated by their owners.
    inventory: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    detect: dict[str, Any] = field(default_factory=dict)
    forward: dict[str, Any] = field(default_factory=dict)
    web: dict[str, Any] = field(default_factory=dict)
    # ANSI C12.22: per-vendor manufacturer procedure meanings ({"GE": {"MP12": "remote_disconnect"}})
    # and the default C12.19 data order; see protocols/c1222.spec_with.
    c1222: dict[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"  # where it came from, for error messages and SIGHUP reloads

    def to_dict(self) -> dict[str, Any]:
        """The TOML document this config is (``parse_config`` of it gives the same config)."""
        doc = {name: _plain(dataclasses.asdict(getattr(self, name))) for name in SECTIONS}
        doc.update({name: dict(getattr(self, name)) for name in PASS_THROUGH})
        return doc

    def override(self, values: Mapping[str, Any], origin: str = "command line") -> Config:
        """Apply ``{"section.key": value}`` overrides (None leaves a key as it is) with the same checks."""
        doc = self.to_dict()
        for dotted, value in values.items():
            if value is None:
                continue
            section, _, key = dotted.partition(".")
            if section not in doc or not key:
                raise ConfigError(f"{origin}: unknown setting {dotted!r}")
            doc[section][key] = value
        return parse_config(doc, self.source, origin=origin)


def load_config(path: str | Path | None) -> Config:
    """The config in ``path`` (``None``: the defaults), checked."""
    if path is None:
        return parse_config({}, "<defaults>")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(doc, str(path))


def parse_config(doc: Mapping[str, Any], source: str, origin: str | None = None) -> Config:
    """Build and check a config from a parsed TOML document; errors name ``origin`` (default: source)."""
    where = origin or source
    unknown = [name for name in doc if name not in SECTIONS and name not in PASS_THROUGH]
    if unknown:
        hint = _suggest(unknown[0], [*SECTIONS, *PASS_THROUGH])
        raise ConfigError(f"{where}: unknown table [{unknown[0]}]{hint}")
    values: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = doc.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: {name}: expected a table, got {_describe_value(table)}")
        values[name] = _build_section(cls, name, table, where)
    for name in PASS_THROUGH:
        table = doc.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: {name}: expected a table, got {_describe_value(table)}")
        values[name] = dict(table)
    _check_stage_tables(values, where)
    config = Config(**values, source=source)
    _check(config, where)
    return config


def _check_stage_tables(values: dict[str, Any], where: str) -> None:
    """The inventory, baseline and detect tables are checked here, at start, by the classes they fill."""
    from otsentry.inventory.dnp3_commands import settings_from_table
    from otsentry.inventory.settings import Limits, Thresholds, from_mapping

    for name, cls in (("baseline", Thresholds), ("inventory", Limits)):
        try:
            from_mapping(cls, values[name])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: [{name}]: {exc}") from None
    try:
        settings_from_table(values["detect"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: [detect]: {exc}") from None
    try:
        c1222_spec(values["c1222"])
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{where}: [c1222]: {exc}") from None


def c1222_spec(table: dict[str, Any]) -> Any:
    """The C12.22 protocol spec for the ``[c1222]`` table (its vendor procedure tables)."""
    from otsentry.protocols.c1222 import spec_with

    unknown = sorted(set(table) - {"vendor_procedures", "big_endian_tables"})
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    return spec_with(table.get("vendor_procedures"), bool(table.get("big_endian_tables", False)))


# -- typed fields ----------------------------------------------------------------------------------


def _build_section(cls: type, name: str, table: Mapping[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in table.items():
        if key not in hints:
            raise ConfigError(f"{where}: unknown key {name}.{key}{_suggest(key, known)}")
        kwargs[key] = _convert(value, hints[key], f"{name}.{key}", where)
    return cls(**kwargs)


def _convert(value: Any, hint: Any, key: str, where: str) -> Any:
    try:
        return _coerce(value, hint)
    except _Mismatch:
        raise ConfigError(
            f"{where}: {key}: expected {_describe_type(hint)}, got {_describe_value(value)}"
        ) from None


class _Mismatch(Exception):
    pass


def _coerce(value: Any, hint: Any) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        if value == "" and type(None) in args:
            return None  # TOML has no null: an empty string unsets an optional path
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _coerce(value, arm)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:
        if isinstance(value, str) and value in get_args(hint):
            return value
        raise _Mismatch
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _Mismatch
        item = get_args(hint)[0]
        return tuple(_coerce(v, item) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise _Mismatch


def _describe_type(hint: Any) -> str:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        arms = [_describe_type(a) for a in get_args(hint) if a is not type(None)]
        text = " or ".join(arms)
        return f"{text} (or \"\" for none)" if type(None) in get_args(hint) else text
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(hint))
    if origin is tuple:
        return f"a list of {_describe_type(get_args(hint)[0]).removeprefix('a ').removeprefix('an ')}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _describe_value(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table"}
    name = next((v for k, v in kind.items() if type(value) is k), type(value).__name__)
    return f"{name} {value!r}" if not isinstance(value, dict) else name


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(choices)})"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# -- checks beyond types ---------------------------------------------------------------------------


def _check(config: Config, where: str) -> None:
    def fail(key: str, problem: str) -> None:
        raise ConfigError(f"{where}: {key}: {problem}")

    from otsentry.protocols import all_specs

    names = [s.name for s in all_specs()]
    for proto in config.sensor.protocols:
        if proto not in names:
            fail("sensor.protocols", f"unknown protocol {proto!r} (known: {', '.join(names)})")
    if not config.sensor.name.strip():
        fail("sensor.name", "must not be empty")

    cap = config.capture
    for ifname in cap.interfaces:
        if not ifname or len(ifname.encode()) > 15 or "/" in ifname or any(c.isspace() for c in ifname):
            fail("capture.interfaces", f"{ifname!r} is not an interface name (1-15 bytes, no '/' or spaces)")
    if len(set(cap.interfaces)) != len(cap.interfaces):
        fail("capture.interfaces", "an interface is listed twice")
    for key, ports in (("capture.extra_tcp_ports", cap.extra_tcp_ports), ("capture.extra_udp_ports",
                                                                          cap.extra_udp_ports)):
        for port in ports:
            if not 1 <= port <= 65535:
                fail(key, f"port {port} is outside 1-65535")
    if isinstance(cap.workers, int) and not 1 <= cap.workers <= 64:
        fail("capture.workers", f"{cap.workers} is outside 1-64")
    if cap.backend == "libpcap" and (cap.workers != 1 or not cap.inline):
        fail("capture.backend", "libpcap captures with one inline worker (set capture.inline = true and "
             "capture.workers = 1; fanout needs af_packet)")
    if cap.block_kb < 4 or cap.block_kb & (cap.block_kb - 1):
        fail("capture.block_kb", f"{cap.block_kb} is not a power of two of at least 4 (KiB pages)")
    if cap.ring_mb < 1 or cap.ring_mb * 1024 < cap.block_kb or (cap.ring_mb * 1024) % cap.block_kb:
        fail("capture.ring_mb", f"{cap.ring_mb} MiB is not a whole number of {cap.block_kb} KiB blocks")
    if cap.ring_mb > 4096:
        fail("capture.ring_mb", f"{cap.ring_mb} MiB is more than 4096")
    if not 1 <= cap.block_timeout_ms <= 10_000:
        fail("capture.block_timeout_ms", f"{cap.block_timeout_ms} is outside 1-10000")
    if not 64 <= cap.snaplen <= 262144:
        fail("capture.snaplen", f"{cap.snaplen} is outside 64-262144")
    largest = min(cap.snaplen, MAX_FRAME)  # the kernel never delivers more than an IP datagram + L2 headers
    if largest + 64 > cap.block_kb * 1024:
        fail("capture.block_kb", f"a {cap.block_kb} KiB block cannot hold a {largest}-byte frame")
    if not 0 <= cap.fanout_group <= 0xFFFF:
        fail("capture.fanout_group", f"{cap.fanout_group} is outside 0-65535")
    if cap.filter.strip() == "":
        fail("capture.filter", 'must be "ports", "all" or a BPF expression')

    from otsentry.capture import bpf  # libpcap compiles the text: a typo fails here, not at capture time

    try:
        bpf.filter_for(config)
    except bpf.FilterError as exc:
        key = "capture.extra_filter" if cap.filter == "ports" and cap.extra_filter else "capture.filter"
        fail(key, str(exc))

    flows = config.flows
    for key in ("tcp_idle", "udp_idle", "closed_linger"):
        if getattr(flows, key) <= 0:
            fail(f"flows.{key}", "must be more than 0 seconds")
    if flows.max_flows < 1:
        fail("flows.max_flows", "must be at least 1")
    if flows.max_pending_bytes < 1024:
        fail("flows.max_pending_bytes", "must be at least 1024")

    if config.outputs.flush_interval <= 0:
        fail("outputs.flush_interval", "must be more than 0 seconds")
    health = config.health
    if health.stats_interval <= 0:
        fail("health.stats_interval", "must be more than 0 seconds")
    if health.silent_after <= 0:
        fail("health.silent_after", "must be more than 0 seconds")
    if not 0.0 <= health.loss_threshold <= 1.0:
        fail("health.loss_threshold", f"{health.loss_threshold} is not a fraction between 0 and 1")


def resolve_workers(config: Config) -> int:
    """``capture.workers`` as a number: ``auto`` leaves one core to the collector on machines with 3+."""
    workers = config.capture.workers
    if workers == "auto":
        cores = len(os.sched_getaffinity(0))
        return max(1, cores - 1) if cores > 2 else 1
    return int(workers)
