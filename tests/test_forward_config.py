"""The [forward] TOML table: destinations as dataclasses, validated with messages that name the key."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from otsentry.outputs.cli import forward, register
from otsentry.outputs.config import ConfigError, load_forward_config, parse_forward_config

SAMPLE = """
[sensor]
name = "ignored here"

[forward]
poll_interval = 0.5
health_interval = "2m"

[[forward.destination]]
name = "qradar"
transport = "relp"
host = "siem.example.org"
port = 2514
format = "leef"
max_age = "7d"
max_backlog = 5000

[[forward.destination]]
name = "arcsight"
transport = "tls"
host = "arcsight.example.org"
tls_ca = "/etc/otsentry/ca.pem"
tls_cert = "/etc/otsentry/sensor.pem"
tls_key = "/etc/otsentry/sensor.key"
framing = "rfc3164"

[[forward.destination]]
name = "splunk"
transport = "hec"
url = "https://splunk.example.org:8088"
token = "00000000-0000-0000-0000-000000000000"
hec_acks = true
format = "cef"

[[forward.destination]]
name = "elastic"
transport = "file"
path = "/var/log/otsentry/alerts.ecs.jsonl"
enabled = false
"""


def test_sample_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "otsentry.toml"
    path.write_text(SAMPLE)
    config = load_forward_config(path)
    assert config.poll_interval == 0.5 and config.health_interval == 120
    assert [d.name for d in config.destinations] == ["qradar", "arcsight", "splunk", "elastic"]
    qradar, arcsight, splunk, elastic = config.destinations
    assert qradar.max_age == 7 * 86400 and qradar.max_backlog == 5000 and qradar.format == "leef"
    assert arcsight.port == 6514 and arcsight.uses_tls and arcsight.framing == "rfc3164"
    assert splunk.format == "ecs" and splunk.uses_tls and splunk.hec_acks  # HEC always carries ECS JSON
    assert [d.name for d in config.enabled] == ["qradar", "arcsight", "splunk"]
    assert not elastic.enabled


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "transport": "carrier-pigeon"}, "transport"),
        ({"name": "x", "transport": "relp"}, "port"),
        ({"name": "x", "transport": "tcp", "colour": "red"}, "unknown key"),
        ({"name": "x", "transport": "tcp", "format": "xml"}, "format"),
        ({"name": "x", "transport": "tcp", "max_age": "a week"}, "duration"),
        ({"name": "x", "transport": "tcp", "port": "514"}, "number"),
        ({"name": "x", "transport": "hec", "url": "https://s:8088"}, "token"),
        ({"name": "x", "transport": "file"}, "path"),
        ({"name": "x", "transport": "tls", "tls_cert": "c.pem"}, "tls_key"),
        ({"name": "x", "transport": "tcp", "leef_delimiter": "^^"}, "one character"),
        ({"name": "x", "transport": "tcp", "facility": "local9"}, "facility"),
        ({"transport": "tcp"}, "name"),
    ],
)
def test_invalid_destinations_are_refused_by_key(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_forward_config({"destination": [entry]})


def test_duplicate_names_and_unknown_forward_keys() -> None:
    same = {"name": "a", "transport": "udp"}
    with pytest.raises(ConfigError, match="duplicate"):
        parse_forward_config({"destination": [same, same]})
    with pytest.raises(ConfigError, match="unknown"):
        parse_forward_config({"poll": 1})


def test_register_adds_the_forward_group() -> None:
    @click.group()
    def main() -> None:
        pass

    register(main)
    assert main.commands["forward"] is forward
    assert set(forward.commands) == {"status", "replay", "test", "run"}
