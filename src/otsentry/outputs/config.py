"""Forwarding destinations from the ``[forward]`` table of the TOML config.

```toml
[forward]
poll_interval = 0.2              # seconds between outbox polls when idle
health_interval = 60             # at most one drop (sensor-health) alert per destination per interval

[[forward.destination]]
name = "qradar"
transport = "relp"               # udp | tcp | tls | relp | hec | file
host = "siem.example.org"
port = 2514
format = "leef"                  # cef | leef | ecs | message   (hec and file always write ECS JSON)
framing = "rfc5424"              # rfc5424 | rfc3164 | none      (syslog transports)
max_backlog = 100000             # alerts waiting for this destination before the oldest are dropped
max_age = "7d"                   # ... or older than this
```
The lead's main config embeds the same table; :func:`parse_forward_config` takes it already parsed.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otsentry.outputs.formats.syslog import DEFAULT_SD_ID, FACILITIES

TRANSPORTS = ("udp", "tcp", "tls", "relp", "hec", "file")
FORMATS = ("cef", "leef", "ecs", "message")
FRAMINGS = ("rfc5424", "rfc3164", "none")
DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}  # RFC 5426 / common practice / RFC 5425
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Destination:
    """One SIEM destination; every field is a key of a ``[[forward.destination]]`` entry."""

    name: str
    transport: str
    format: str = "cef"
    framing: str = "rfc5424"
    enabled: bool = True
    # network
    host: str = "127.0.0.1"
    port: int = 0
    connect_timeout: float = 5.0
    write_timeout: float = 10.0
    # TLS (RFC 5425 for syslog; also RELP with tls = true and HEC over https)
    tls: bool = False
    tls_ca: str | None = None  # verify the server against this CA bundle (system store when unset)
    tls_cert: str | None = None  # optional client certificate ...
    tls_key: str | None = None  # ... and its key
    tls_server_name: str | None = None  # name the server certificate must carry (default: host)
    tls_verify: bool = True
    # syslog header and payloads
    facility: str = "local4"
    app_name: str = "otsentry"
    hostname: str | None = None  # default: the alert's observer.name
    sd_id: str = DEFAULT_SD_ID
    leef_delimiter: str = "^"
    # Splunk HEC
    url: str | None = None
    token: str | None = None
    token_file: str | None = None
    hec_acks: bool = False
    channel: str | None = None  # GUID; generated per process when unset
    index: str | None = None
    source: str = "otsentry"
    sourcetype: str = "_json"
    # ECS JSON lines file
    path: str | None = None
    fsync: bool = True
    # delivery
    batch_size: int = 500
    window: int = 1000  # messages sent but not yet acknowledged
    ack_timeout: float = 30.0  # no acknowledgement progress for this long: reconnect and resend
    resend_window: int = 1000  # tcp/tls: messages resent after a reconnect (no application acks)
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    max_backlog: int = 100_000
    max_age: float = 7 * 86400.0
    min_severity: int = 0  # alerts below this event.severity are not sent (counted as filtered)

    @property
    def uses_tls(self) -> bool:
        if self.transport == "tls":
            return True
        if self.transport == "hec":
            return bool(self.url and self.url.lower().startswith("https:"))
        return self.tls

    def hec_token(self) -> str:
        if self.token:
            return self.token
        if self.token_file:
            return Path(self.token_file).read_text().strip()
        raise ConfigError(f"destination {self.name!r}: hec needs token or token_file")


@dataclass(frozen=True)
class ForwardConfig:
    destinations: tuple[Destination, ...] = ()
    poll_interval: float = 0.2
    health_interval: float = 60.0
    observer_name: str | None = None

    def get(self, name: str) -> Destination:
        for dest in self.destinations:
            if dest.name == name:
                return dest
        known = ", ".join(d.name for d in self.destinations) or "none configured"
        raise ConfigError(f"no destination named {name!r} ({known})")

    @property
    def enabled(self) -> tuple[Destination, ...]:
        return tuple(d for d in self.destinations if d.enabled)


def duration(value: Any, key: str) -> float:
    """Seconds from a number or a string like ``90s``, ``15m``, ``2h``, ``7d``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
        if match:
            return float(match[1]) * _UNITS[match[2] or "s"]
    raise ConfigError(f"{key}: not a duration: {value!r} (seconds, or e.g. '15m', '7d')")


_FIELDS = {f.name: f for f in dataclasses.fields(Destination)}
_DURATIONS = {"connect_timeout", "write_timeout", "ack_timeout", "backoff_initial", "backoff_max", "max_age"}


def parse_destination(raw: Mapping[str, Any], index: int = 0) -> Destination:
    where = f"forward.destination[{index}]"
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if not raw.get("name") or not raw.get("transport"):
        raise ConfigError(f"{where}: needs name and transport")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _DURATIONS:
            values[key] = duration(value, f"{where}.{key}")
            continue
        kind = _FIELDS[key].type
        if kind in ("int", "float") and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
        if kind == "bool" and not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}: expected true or false, got {value!r}")
        if kind.startswith("str") and not isinstance(value, str):
            raise ConfigError(f"{where}.{key}: expected a string, got {value!r}")
        values[key] = int(value) if kind == "int" else value
    transport = values["transport"]
    if transport not in TRANSPORTS:
        raise ConfigError(f"{where}.transport: one of {', '.join(TRANSPORTS)}")
    if transport in ("hec", "file"):
        values["format"] = "ecs"
    if values.get("format", "cef") not in FORMATS:
        raise ConfigError(f"{where}.format: one of {', '.join(FORMATS)}")
    if values.get("framing", "rfc5424") not in FRAMINGS:
        raise ConfigError(f"{where}.framing: one of {', '.join(FRAMINGS)}")
    if values.get("facility", "local4") not in FACILITIES:
        raise ConfigError(f"{where}.facility: one of {', '.join(FACILITIES)}")
    if len(values.get("leef_delimiter", "^")) != 1:
        raise ConfigError(f"{where}.leef_delimiter: exactly one character")
    if transport in ("udp", "tcp", "tls", "relp"):
        values.setdefault("port", DEFAULT_PORTS.get(transport, 0))
        if not 0 < values["port"] < 65536:
            raise ConfigError(f"{where}.port: needed for {transport}")
    if transport == "hec" and not (values.get("url") and (values.get("token") or values.get("token_file"))):
        raise ConfigError(f"{where}: hec needs url and token (or token_file)")
    if transport == "file" and not values.get("path"):
        raise ConfigError(f"{where}: file needs path")
    if (values.get("tls_cert") is None) != (values.get("tls_key") is None):
        raise ConfigError(f"{where}: tls_cert and tls_key go together")
    for key in ("batch_size", "window"):
        if values.get(key, 1) < 1:
            raise ConfigError(f"{where}.{key}: at least 1")
    return Destination(**values)


def parse_forward_config(table: Mapping[str, Any] | None) -> ForwardConfig:
    """The ``[forward]`` table (already parsed TOML) as a validated :class:`ForwardConfig`."""
    table = dict(table or {})
    raw_destinations = table.pop("destination", [])
    if not isinstance(raw_destinations, list):
        raise ConfigError("forward.destination must be an array of tables ([[forward.destination]])")
    destinations = tuple(parse_destination(d, i) for i, d in enumerate(raw_destinations))
    names = [d.name for d in destinations]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"forward.destination: duplicate name(s) {', '.join(duplicated)}")
    known = {"poll_interval", "health_interval", "observer_name"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"forward: unknown key(s) {', '.join(unknown)}")
    return ForwardConfig(
        destinations=destinations,
        poll_interval=duration(table.get("poll_interval", 0.2), "forward.poll_interval"),
        health_interval=duration(table.get("health_interval", 60), "forward.health_interval"),
        observer_name=table.get("observer_name"),
    )


def load_forward_config(path: str | Path) -> ForwardConfig:
    """Read the ``[forward]`` table of a TOML file (other tables are ignored)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_forward_config(data.get("forward"))
