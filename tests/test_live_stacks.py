"""``otsentry run`` on a SPAN port while real stacks talk across the monitored link.

A pymodbus client and server, a yadnp3 (opendnp3) master and outstation, an unexpected Modbus client
and a tcpreplay of sample captures (802.1Q/QinQ, IPv6 fragments, DNP3 polling) cross a veth link that
is mirrored to the sensor's interface (see live_netns.py); tcpdump records the same mirror. Then:

* the live events equal ``otsentry replay`` of tcpdump's capture (same count, same fields; packet times
  within 50 ms) — with everything in one process, and with two workers sharing the interface by
  PACKET_FANOUT and feeding a separate collector process;
* every request and response in the stacks' own action logs (pymodbus ``trace_pdu``, opendnp3 command
  and measurement callbacks) is an event with the same function code, addresses, values and points;
* the replayed samples give the protocol fields ``otsentry replay`` gives on the sample files;
* the kernel dropped nothing; the write from the unexpected client raised the Sigma alert and the known
  client's writes did not; the service logged stats and health metrics and stopped cleanly on SIGTERM.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from live_events import OTSENTRY, PCAPS, PYTHON, REPO, compare_events, protocol_events, read_jsonl
from live_netns import HMI_IP, PLC_IP, ROGUE_IP, SpanLab, netns_unavailable


def _skip_reason() -> str | None:
    for tool in ("tcpdump", "tcpreplay"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    for module in ("pymodbus", "opendnp3"):
        if importlib.util.find_spec(module) is None:
            return f"needs the {module} stack"
    return netns_unavailable()


SKIP = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

UNKNOWN_CLIENT_WRITE = "7d422258-5c90-5e85-a28e-fa818b0a8a8c"  # rules/modbus/modbus_write_unknown_client.yml
REPLAYED = [
    PCAPS / "dnp3_polling.pcap",
    PCAPS / "linktypes" / "modbus_polling_qinq.pcap",
    PCAPS / "linktypes" / "modbus_polling_ipv6frag.pcap",
]
BASELINE = f"""otsentry_baseline: 1
learned: {{sources: [live-test]}}
assets:
  {HMI_IP}: {{}}
  {PLC_IP}: {{}}
pairs:
  modbus {HMI_IP} -> {PLC_IP}/modbus:1: {{}}
  dnp3 {HMI_IP}/dnp3:1 -> {PLC_IP}/dnp3:10: {{}}
"""


@dataclass
class LiveRun:
    workers: int
    directory: Path
    returncode: int
    events: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    offline: list[dict[str, Any]]
    service_log: list[dict[str, Any]]
    tcpdump_report: str

    def log(self, name: str) -> list[dict[str, Any]]:
        return read_jsonl(self.directory / f"{name}.jsonl")


def _wait_for(path: Path, text: str, proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode} before {text!r}: {path.read_text()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in {path} after {timeout} s")


def _scenario(lab: SpanLab, out: Path, workers: int) -> LiveRun:
    (out / "baseline.yaml").write_text(BASELINE)
    peer = [PYTHON, str(REPO / "tests" / "live_peers.py")]
    dump = subprocess.Popen(
        lab.cmd(lab.tap, ["tcpdump", "-i", lab.span_in, "-n", "-U", "-w", str(out / "tap.pcap")]),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "listening on" in (dump.stderr.readline() if dump.stderr else "")
    sensor_log = out / "service.log"
    with open(sensor_log, "w") as log_file:
        sensor = subprocess.Popen(
            lab.cmd(
                lab.tap,
                [
                    *OTSENTRY,
                    "run",
                    "-i",
                    lab.span_in,
                    "--workers",
                    str(workers),
                    "--events-out",
                    str(out / "events.jsonl"),
                    "--alerts-out",
                    str(out / "alerts.jsonl"),
                    "--db",
                    str(out / "otsentry.db"),
                    "--baseline",
                    str(out / "baseline.yaml"),
                    "--stats-interval",
                    "0.5",
                    "--set",
                    "logging.format='json'",
                    "--set",
                    f"capture.inline={'true' if workers == 1 else 'false'}",
                ],
            ),
            stderr=log_file,
            stdout=subprocess.DEVNULL,
        )
    servers = [
        subprocess.Popen(
            lab.cmd(lab.plc, [*peer, "modbus-server", PLC_IP, "502", str(out / "modbus-server.jsonl")]),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ),
        subprocess.Popen(
            lab.cmd(lab.plc, [*peer, "dnp3-outstation", PLC_IP, "20000", str(out / "outstation.jsonl")]),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ),
    ]
    try:
        _wait_for(sensor_log, '"capturing"', sensor)
        for server in servers:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        clients = [
            [*peer, "modbus-client", PLC_IP, "502", HMI_IP, str(out / "modbus-client.jsonl"), "normal"],
            [*peer, "dnp3-master", PLC_IP, "20000", str(out / "master.jsonl")],
            [*peer, "modbus-client", PLC_IP, "502", ROGUE_IP, str(out / "modbus-rogue.jsonl"), "rogue"],
            ["tcpreplay", "-i", lab.hmi_if, "--pps", "5000", *map(str, REPLAYED)],
        ]
        for argv in clients:
            done = subprocess.run(lab.cmd(lab.hmi, argv), capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{argv[2:4]}: {done.stderr[-1500:]}"
        time.sleep(1.0)  # the last ring block retires after block_timeout_ms; batches flush every 0.5 s
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait(10)
    sensor.send_signal(signal.SIGTERM)
    returncode = sensor.wait(60)
    dump.send_signal(signal.SIGINT)
    _, report = dump.communicate(timeout=20)
    offline = subprocess.run(
        [
            PYTHON,
            "-m",
            "otsentry",
            "replay",
            str(out / "tap.pcap"),
            "--events-out",
            str(out / "offline.jsonl"),
            "--baseline",
            str(out / "baseline.yaml"),
            "--summary-json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert offline.returncode == 0, offline.stderr[-2000:]
    return LiveRun(
        workers=workers,
        directory=out,
        returncode=returncode,
        events=read_jsonl(out / "events.jsonl"),
        alerts=read_jsonl(out / "alerts.jsonl"),
        offline=read_jsonl(out / "offline.jsonl"),
        service_log=[
            _json_line(line) for line in sensor_log.read_text().splitlines() if line.startswith("{")
        ],
        tcpdump_report=report,
    )


def _json_line(line: str) -> dict[str, Any]:
    import json

    return json.loads(line)


@pytest.fixture(scope="module", params=[1, 2], ids=["1-inline", "2-workers-fanout-collector"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    workers = request.param
    out = tmp_path_factory.mktemp(f"live{workers}")
    with SpanLab(f"ol{os.getpid() % 10000}{workers}") as lab:
        return _scenario(lab, out, workers)


# -- the whole capture --------------------------------------------------------------------------------


def test_live_events_equal_an_offline_replay_of_the_same_traffic(run: LiveRun) -> None:
    live = protocol_events(run.events)
    assert len(live) > 500
    assert len(live) == len(run.offline)
    assert compare_events(live, run.offline) == []


def test_the_kernel_dropped_nothing(run: LiveRun) -> None:
    stats = [entry for entry in run.service_log if entry.get("event") == "stats"]
    assert stats and stats[-1]["drops_total"] == 0
    metrics = [e for e in run.events if e.get("event.action") == "capture_stats"]
    assert metrics and sum(e["otsentry.health.drops"] for e in metrics) == 0
    assert metrics[-1]["otsentry.health.frames_total"] > 1000
    assert "0 packets dropped by kernel" in run.tcpdump_report


def test_service_reports_health_and_stops_cleanly(run: LiveRun) -> None:
    assert run.returncode == 0
    events = [entry["event"] for entry in run.service_log]
    assert events[0] == "starting" and "capturing" in events and events[-1] == "stopped"
    sensor = [e for e in run.events if e.get("event.action") == "sensor_stats"]
    assert all(e["event.kind"] == "metric" and e["event.dataset"] == "otsentry.health" for e in sensor)
    assert sensor[-1]["otsentry.health.events_total"] == len(protocol_events(run.events))
    assert sensor[-1]["otsentry.health.workers"] == run.workers


# -- the stacks' own logs ------------------------------------------------------------------------------


def _modbus_expected(record: dict[str, Any], request: bool) -> dict[str, Any]:
    """The event fields a pymodbus PDU (from trace_pdu) must show."""
    fc = record["fc"]
    fields: dict[str, Any] = {
        "modbus.transaction_id": record["tid"],
        "modbus.unit_id": record["unit"],
        "modbus.function_code": fc,
    }
    if record["exception"]:
        fields.update({"modbus.pdu_type": "exception", "modbus.exception_code": record["exception_code"]})
        return fields
    fields["modbus.pdu_type"] = "request" if request else "response"
    bits = [int(b) for b in record["bits"]]
    if fc in (1, 2, 3, 4):
        if request:
            fields.update({"modbus.address": record["address"], "modbus.quantity": record["count"]})
        elif fc in (3, 4):
            fields["modbus.values"] = record["registers"]
        else:
            fields["modbus.values"] = bits  # padded to whole bytes by pymodbus: trimmed by the caller
    elif fc == 5:
        fields.update({"modbus.address": record["address"], "modbus.values": bits[:1]})
    elif fc == 6:
        fields.update({"modbus.address": record["address"], "modbus.values": record["registers"]})
    elif fc in (15, 16):
        fields.update({"modbus.address": record["address"], "modbus.quantity": record["count"] or len(bits)})
        if request:
            fields["modbus.values"] = record["registers"] if fc == 16 else bits
    return fields


def _matches(event: dict[str, Any], fields: dict[str, Any]) -> bool:
    for key, want in fields.items():
        got = event.get(key)
        if key == "modbus.values" and event.get("modbus.function_code") in (1, 2) and got is not None:
            want = want[: len(got)]
        if got != want:
            return False
    return True


@pytest.mark.parametrize("log_name,client_ip", [("modbus-client", HMI_IP), ("modbus-rogue", ROGUE_IP)])
def test_modbus_events_match_the_client_log(run: LiveRun, log_name: str, client_ip: str) -> None:
    records = run.log(log_name)
    assert len(records) >= 4
    events = [
        e for e in run.events if e.get("network.protocol") == "modbus" and e.get("client.ip") == client_ip
    ]
    assert len(events) == len(records)  # one event per PDU on the wire, nothing more
    for record in records:
        request = record["sending"]
        fields = _modbus_expected(record, request)
        fields["source.ip" if request else "destination.ip"] = client_ip
        assert any(_matches(e, fields) for e in events), f"no event for {record}"


def test_modbus_events_match_the_server_log(run: LiveRun) -> None:
    records = run.log("modbus-server")
    events = [e for e in run.events if e.get("network.protocol") == "modbus" and e.get("server.ip") == PLC_IP]
    assert len(records) == len(events) == len(run.log("modbus-client")) + len(run.log("modbus-rogue"))
    for record in records:
        request = not record["sending"]  # the server receives requests
        fields = _modbus_expected(record, request)
        fields["destination.ip" if request else "source.ip"] = PLC_IP
        assert any(_matches(e, fields) for e in events), f"no event for {record}"


GROUPS = {
    "Binary": (1, 2),
    "BinaryOutputStatus": (10, 11),
    "Counter": (20, 22),
    "Analog": (30, 32),
    "AnalogOutputStatus": (40, 42),
}


def _dnp3(run: LiveRun) -> list[dict[str, Any]]:
    return [e for e in run.events if e.get("network.protocol") == "dnp3" and e.get("server.ip") == PLC_IP]


def test_dnp3_commands_match_the_master_and_outstation_logs(run: LiveRun) -> None:
    events = _dnp3(run)
    master = [r for r in run.log("master") if r["action"] in ("direct_operate", "select_and_operate")]
    outstation = [r for r in run.log("outstation") if r["action"] in ("select", "operate")]
    assert len(master) == 3 and len(outstation) == 4
    requests = {3: [], 4: [], 5: []}  # SELECT, OPERATE, DIRECT_OPERATE (IEEE 1815 table 4-1)
    for e in events:
        if e.get("dnp3.application.function_code") in requests and e["source.ip"] == HMI_IP:
            requests[e["dnp3.application.function_code"]].append(e)
    seen = Counter()
    for record in outstation:  # what the outstation executed, with the function that carried it
        fc = 3 if record["action"] == "select" else (5 if "Direct" in record["op"] else 4)
        if record["type"] == "crob":
            op = record["op_type"].rsplit(".", 1)[-1]
            hits = [
                e
                for e in requests[fc]
                if e.get("dnp3.control.index") == [record["index"]] and e.get("dnp3.control.op_type") == [op]
            ]
        else:
            hits = [
                e
                for e in requests[fc]
                if e.get("dnp3.analog_output.index") == [record["index"]]
                and e.get("dnp3.analog_output.value") == [record["value"]]
            ]
        assert len(hits) == 1, f"{record}: {len(hits)} events"
        seen[fc] += 1
    assert seen == {5: 2, 3: 1, 4: 1}
    assert sum(len(v) for v in requests.values()) == 4  # no command the stacks did not send
    for record in master:  # each command was echoed back with status SUCCESS (0)
        responses = [
            e
            for e in events
            if e["source.ip"] == PLC_IP
            and e["dnp3.application.function_code"] == 129
            and any(
                p.get("index") == record["index"] and p.get("status") == 0
                for o in e.get("dnp3.objects", [])
                if o["group"] in (12, 41)
                for p in o["points"]
            )
        ]
        assert responses, record


def test_dnp3_points_match_what_the_master_received(run: LiveRun) -> None:
    seen: set[tuple[int, int, float]] = set()
    for e in _dnp3(run):
        if e["source.ip"] != PLC_IP:
            continue
        for obj in e.get("dnp3.objects", []):
            for point in obj.get("points", []):
                if "index" in point and isinstance(point.get("value"), bool | int | float):
                    seen.add((obj["group"], point["index"], float(point["value"])))
    values = [r for r in run.log("master") if r["action"] == "value"]
    assert len(values) >= 40
    for record in values:
        groups = GROUPS[record["kind"]]
        assert any((g, record["index"], float(record["value"])) in seen for g in groups), record
    updates = [r for r in run.log("outstation") if r["action"] == "update"]
    for record in updates:  # the values the outstation set are on the wire as the master saw them
        assert any((g, record["index"], float(record["value"])) in seen for g in GROUPS[record["kind"]])


def test_replayed_samples_give_the_events_of_their_files(run: LiveRun, tmp_path: Path) -> None:
    out = tmp_path / "samples.jsonl"
    done = subprocess.run(
        [PYTHON, "-m", "otsentry", "replay", *map(str, REPLAYED), "--events-out", str(out), "--no-detect"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    def projection(events: list[dict[str, Any]]) -> Counter[str]:
        import json

        keep = (
            "event.action",
            "source.ip",
            "destination.ip",
            "source.port",
            "destination.port",
            "network.vlan.id",
            "network.inner.vlan.id",
        )
        return Counter(
            json.dumps(
                {
                    k: v
                    for k, v in e.items()
                    if k in keep or (k.split(".")[0] in ("modbus", "dnp3") and k != "modbus.request_frame")
                },
                sort_keys=True,
            )
            for e in events
        )

    live = [e for e in protocol_events(run.events) if e.get("server.ip") != PLC_IP]
    assert projection(live) == projection(read_jsonl(out))
    assert {e.get("network.inner.vlan.id") for e in live if e.get("network.vlan.id")} != {None}  # QinQ kept


def test_write_from_unexpected_client_raises_the_alert(run: LiveRun) -> None:
    hits = [a for a in run.alerts if a.get("rule.id") == UNKNOWN_CLIENT_WRITE]
    assert hits, "no alert for the unexpected client's writes"
    assert {a["source.ip"] for a in hits if a["destination.ip"] == PLC_IP} == {ROGUE_IP}
    assert all(a["otsentry.alert.seq"] > 0 and a["event.kind"] == "alert" for a in hits)
    known = [a for a in run.alerts if a.get("rule.id") == UNKNOWN_CLIENT_WRITE and a["source.ip"] == HMI_IP]
    assert known == []  # the baseline knows the HMI: its writes are not alerts
