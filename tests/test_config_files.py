"""The typed config: valid files, one clear line for every kind of mistake, flags and keys in step."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from otsentry.config import Config, ConfigError, load_config, parse_config, resolve_workers
from otsentry.net.flows import FlowLimits
from otsentry.runner_cli import build_config, run_command

PACKAGED = Path(__file__).resolve().parents[1] / "packaging" / "otsentry.toml"


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "otsentry.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config == Config(source="<defaults>")
    assert config.flows.limits() == FlowLimits()
    assert config.capture.filter == "ports" and config.capture.workers == 1


def test_the_packaged_default_config_is_valid() -> None:
    config = load_config(PACKAGED)
    assert config.outputs.db == "/var/lib/otsentry/otsentry.db"
    assert config.outputs.events_file is None  # "" unsets an optional path
    assert config.analysis.rules == ("/usr/share/otsentry/rules",)
    assert config.flows.limits() == FlowLimits()  # the file documents the real defaults


def test_a_full_file(tmp_path: Path) -> None:
    path = tmp_path / "otsentry.toml"
    path.write_text("""
[sensor]
name = "substation-7"
protocols = ["modbus", "dnp3"]
[capture]
interfaces = ["eth1", "bond0"]
workers = "auto"
extra_tcp_ports = [5020]
ring_mb = 128
[flows]
tcp_idle = 1200
max_flows = 50000
[outputs]
events_file = "/var/lib/otsentry/events.jsonl"
[health]
loss_threshold = 0.01
[forward]
poll_interval = 0.2
[[forward.destination]]
name = "siem"
transport = "udp"
[inventory]
max_assets = 5000
""")
    config = load_config(path)
    assert config.sensor.protocols == ("modbus", "dnp3")
    assert config.capture.interfaces == ("eth1", "bond0") and config.capture.workers == "auto"
    assert resolve_workers(config) >= 1
    assert config.flows.limits() == FlowLimits(tcp_idle=1200.0, max_flows=50000)
    assert isinstance(config.flows.tcp_idle, float)
    assert config.forward == {"poll_interval": 0.2, "destination": [{"name": "siem", "transport": "udp"}]}
    assert config.inventory == {"max_assets": 5000}
    assert parse_config(config.to_dict(), str(path)) == config  # the dict form round-trips


@pytest.mark.parametrize(
    "text,message",
    [
        ("[capture\n", "invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 9)"),
        ("[captur]\n", "unknown table [captur] (did you mean 'capture'?)"),
        ("[capture]\ninterface = ['eth1']\n", "unknown key capture.interface (did you mean 'interfaces'?)"),
        (
            "[capture]\nzzz = 1\n",
            "unknown key capture.zzz (known: interfaces, filter, extra_tcp_ports, extra_udp_ports, "
            "extra_filter, vlan, workers, inline, backend, ring_mb, block_kb, block_timeout_ms, snaplen, "
            "promiscuous, ignore_outgoing, fanout_group)",
        ),
        ("capture = 5\n", "capture: expected a table, got integer 5"),
        ("[capture]\nworkers = 'two'\n", "capture.workers: expected an integer or 'auto', got string 'two'"),
        ("[capture]\nworkers = 1.5\n", "capture.workers: expected an integer or 'auto', got number 1.5"),
        ("[capture]\npromiscuous = 'yes'\n", "capture.promiscuous: expected true or false, got string 'yes'"),
        ("[capture]\nring_mb = true\n", "capture.ring_mb: expected an integer, got boolean True"),
        (
            "[capture]\ninterfaces = 'eth1'\n",
            "capture.interfaces: expected a list of strings, got string 'eth1'",
        ),
        (
            "[capture]\nextra_tcp_ports = [502, '503']\n",
            "capture.extra_tcp_ports: expected a list of integers, got list [502, '503']",
        ),
        (
            "[capture]\nbackend = 'pfring'\n",
            "capture.backend: expected 'af_packet' or 'libpcap', got string 'pfring'",
        ),
        ("[outputs]\ndb = 5\n", 'outputs.db: expected a string (or "" for none), got integer 5'),
        ("[flows]\ntcp_idle = '10m'\n", "flows.tcp_idle: expected a number, got string '10m'"),
        (
            "[logging]\nlevel = 'verbose'\n",
            "logging.level: expected 'debug' or 'info' or 'warning' or 'error', got string 'verbose'",
        ),
    ],
)
def test_type_and_name_errors(tmp_path: Path, text: str, message: str) -> None:
    assert _error(tmp_path, text) == message


@pytest.mark.parametrize(
    "text,message",
    [
        ("[capture]\nextra_udp_ports = [70000]\n", "capture.extra_udp_ports: port 70000 is outside 1-65535"),
        ("[capture]\nworkers = 0\n", "capture.workers: 0 is outside 1-64"),
        (
            "[capture]\nbackend = 'libpcap'\nworkers = 2\n",
            "capture.backend: libpcap captures with one inline worker (set capture.inline = true and "
            "capture.workers = 1; fanout needs af_packet)",
        ),
        (
            "[capture]\nblock_kb = 48\n",
            "capture.block_kb: 48 is not a power of two of at least 4 (KiB pages)",
        ),
        (
            "[capture]\nring_mb = 1\nblock_kb = 2048\nsnaplen = 1500\n",
            "capture.ring_mb: 1 MiB is not a whole number of 2048 KiB blocks",
        ),
        ("[capture]\nblock_kb = 64\n", "capture.block_kb: a 64 KiB block cannot hold a 65557-byte frame"),
        (
            "[capture]\ninterfaces = ['a-very-long-interface-name']\n",
            "capture.interfaces: 'a-very-long-interface-name' is not an interface name "
            "(1-15 bytes, no '/' or spaces)",
        ),
        ("[capture]\ninterfaces = ['eth1', 'eth1']\n", "capture.interfaces: an interface is listed twice"),
        (
            "[capture]\nfilter = 'tcp prot 502'\n",
            "capture.filter: libpcap cannot compile 'tcp prot 502': "
            "can't parse filter expression: syntax error",
        ),
        ("[capture]\nextra_filter = 'hots 10.0.0.1'\n", "capture.extra_filter: libpcap cannot compile"),
        ("[sensor]\nprotocols = ['modbus', 'profinet']\n", "sensor.protocols: unknown protocol 'profinet'"),
        ("[sensor]\nname = '  '\n", "sensor.name: must not be empty"),
        ("[flows]\nudp_idle = 0\n", "flows.udp_idle: must be more than 0 seconds"),
        ("[health]\nloss_threshold = 1.5\n", "health.loss_threshold: 1.5 is not a fraction between 0 and 1"),
    ],
)
def test_value_errors(tmp_path: Path, text: str, message: str) -> None:
    assert _error(tmp_path, text).startswith(message)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^/nonexistent/otsentry.toml: cannot read: No such file or directory$"
    ):
        load_config("/nonexistent/otsentry.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[sensor]\nname = "caf\xe9"\n')
    with pytest.raises(
        ConfigError, match=r"latin.toml: not UTF-8 text: invalid continuation byte at byte 20$"
    ):
        load_config(latin)


def test_command_line_overrides_win_and_name_their_origin(tmp_path: Path) -> None:
    path = tmp_path / "otsentry.toml"
    path.write_text('[capture]\ninterfaces = ["eth1"]\nworkers = 2\n[sensor]\nname = "file"\n')
    config, overrides = build_config(
        path,
        {"capture.workers": 1, "sensor.name": None},
        ("capture.ring_mb=128", 'capture.interfaces=["eth2", "eth3"]', "capture.filter=all"),
    )
    assert config.capture.workers == 1 and config.capture.ring_mb == 128
    assert config.capture.interfaces == ("eth2", "eth3") and config.capture.filter == "all"
    assert config.sensor.name == "file" and config.source == str(path)
    assert overrides == {
        "capture.ring_mb": 128,
        "capture.interfaces": ["eth2", "eth3"],
        "capture.filter": "all",
        "capture.workers": 1,
    }
    with pytest.raises(ConfigError, match=r"^command line: unknown setting 'capture'$"):
        build_config(path, {}, ("capture=1",))
    with pytest.raises(ConfigError, match=r"^command line: capture.snaplen: 10 is outside 64-262144$"):
        build_config(path, {}, ("capture.snaplen=10",))


def test_every_run_flag_is_a_config_key() -> None:
    """Each flag's help names its key, and that key exists: a flag cannot drift from the file."""
    keys = {f"{section}.{key}" for section, table in Config().to_dict().items() for key in table}
    flagged = set()
    for param in run_command.params:
        if not isinstance(param, click.Option) or param.name in ("config_path", "settings", "check"):
            continue
        help_text = param.help or ""
        key = help_text[help_text.rfind("[") + 1 : help_text.rfind("]")]
        assert key in keys, f"{param.opts}: {help_text!r}"
        flagged.add(key)
    assert len(flagged) == 14


def test_baseline_and_inventory_tables_reach_the_analysis_stage(tmp_path: Path) -> None:
    """Deviation thresholds and inventory limits come from the config file, checked at start."""
    from otsentry.analysis import build_analysis

    good = tmp_path / "good.toml"
    good.write_text("[baseline]\npoll_tolerance = 0.5\n[inventory]\nmax_pairs = 1000\n")
    config = load_config(good)
    analysis = build_analysis(None, None, detect=False, thresholds=config.baseline, limits=config.inventory)
    assert analysis.enricher.inventory.limits.max_pairs == 1000
    assert config.baseline == {"poll_tolerance": 0.5}
    bad = tmp_path / "bad.toml"
    bad.write_text("[baseline]\npoll_tolerence = 0.5\n")
    with pytest.raises(ConfigError, match=r"\[baseline\]: unknown thresholds setting\(s\): poll_tolerence"):
        load_config(bad)


def test_c1222_vendor_procedures_come_from_the_config_file(tmp_path: Path) -> None:
    """Remote connect/disconnect are manufacturer procedures: their meaning is configured per vendor."""
    from otsentry.capture.bpf import enabled_specs
    from otsentry.config import c1222_spec

    path = tmp_path / "otsentry.toml"
    path.write_text('[c1222.vendor_procedures.GE]\nMP12 = "remote_disconnect"\n13 = "remote_connect"\n')
    config = load_config(path)
    (spec,) = [s for s in enabled_specs(c1222=c1222_spec(config.c1222)) if s.name == "c1222"]
    assert spec.stream_analyzer.args[0] == {"GE": {12: "remote_disconnect", 13: "remote_connect"}}
    path.write_text('[c1222.vendor_procedures.GE]\nMP4096 = "remote_disconnect"\n')
    with pytest.raises(ConfigError, match=r"\[c1222\]: manufacturer procedure 'MP4096'"):
        load_config(path)
