"""The two cases where the peers fail, on a capture built here: a response whose final transport
segment holds 1 octet (Suricata 7 raises LEN_TOO_SMALL and stops parsing the flow) and a response
whose transport sequence wraps 63 → 0 (Wireshark 4.0 drops it). otsentry decodes every message."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from dnp3_frames import app_request, app_response, class_poll, frames
from dnp3_replay import replay

MASTER, OUTSTATION = "10.0.0.1", "10.0.0.2"


def _g1v2(points: int, seq: int) -> bytes:
    return app_response(bytes([1, 2, 0x01]) + struct.pack("<HH", 0, points - 1) + b"\x81" * points, seq=seq)


def build_capture(path: Path) -> list[tuple[int, int]]:
    """Write the capture; return (application function code, transport segments) per message."""
    from scapy.all import IP, TCP, Ether, wrpcap

    packets = []
    tcp_seq = {MASTER: 1000, OUTSTATION: 5000}
    transport_seq = {MASTER: 0, OUTSTATION: 0}
    clock = [1_700_000_000.0]

    def segment(src: str, data: bytes, flags: str = "PA") -> None:
        dst = OUTSTATION if src == MASTER else MASTER
        sport, dport = (40000, 20000) if src == MASTER else (20000, 40000)
        pkt = (
            Ether()
            / IP(src=src, dst=dst)
            / TCP(sport=sport, dport=dport, flags=flags, seq=tcp_seq[src], ack=tcp_seq[dst])
        )
        pkt = pkt / data if data else pkt
        pkt.time = clock[0]
        clock[0] += 0.01
        packets.append(pkt)
        tcp_seq[src] += len(data) + (1 if "S" in flags else 0)

    expected = []

    def send(src: str, fragment: bytes, first_seq: int | None = None) -> None:
        first = transport_seq[src] if first_seq is None else first_seq
        master = src == MASTER
        wire = frames(
            fragment,
            source=1 if master else 10,
            destination=10 if master else 1,
            master=master,
            first_seq=first,
        )
        transport_seq[src] = (first + len(wire)) & 63
        for frame in wire:
            segment(src, frame)
        expected.append((fragment[1], len(wire)))

    segment(MASTER, b"", "S")
    segment(OUTSTATION, b"", "SA")
    segment(MASTER, b"", "A")
    send(MASTER, app_request(1, class_poll(), seq=0))
    send(OUTSTATION, _g1v2(239, 0))  # 250 fragment octets: the final segment carries 1
    send(MASTER, app_request(1, class_poll(), seq=1))
    send(OUTSTATION, _g1v2(20, 1))
    send(MASTER, app_request(1, class_poll(), seq=2))
    send(OUTSTATION, _g1v2(400, 2), first_seq=63)  # segments 63, 0
    send(MASTER, app_request(1, class_poll(), seq=3))
    send(OUTSTATION, _g1v2(20, 3))
    wrpcap(str(path), packets)
    return expected


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, int]]]:
    path = tmp_path_factory.mktemp("dnp3") / "short_final_and_wrap.pcap"
    return path, build_capture(path)


def test_otsentry_decodes_every_message(capture: tuple[Path, list[tuple[int, int]]]) -> None:
    path, expected = capture
    messages = [f for _frame, _d, f in replay(path).messages]
    assert [(m["dnp3.application.function_code"], m["dnp3.transport.segments"]) for m in messages] == expected
    assert not any(m.get("dnp3.objects_truncated") for m in messages)
    short, wrapped = messages[1], messages[5]
    assert short["dnp3.objects"][0]["count"] == 239 and len(short["dnp3.objects"][0]["points"]) == 239
    assert wrapped["dnp3.objects"][0]["count"] == 400


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_wireshark_drops_the_wrapping_message(capture: tuple[Path, list[tuple[int, int]]]) -> None:
    path, expected = capture
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "dnp3.al.func", "-E", "occurrence=a"]
    functions = [
        int(v)
        for line in subprocess.run(cmd, capture_output=True, text=True).stdout.split()
        for v in line.split(",")
    ]
    assert len(functions) == len(expected) - 1  # the response with segments 63, 0 is missing
    assert functions == [fc for i, (fc, _) in enumerate(expected) if i != 5]


SURICATA_CONFIG = """%YAML 1.1
---
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types: [dnp3, anomaly]
app-layer:
  protocols:
    dnp3:
      enabled: yes
      detection-ports:
        dp: 20000
stream:
  reassembly:
    depth: 0
"""


@pytest.mark.skipif(shutil.which("suricata") is None, reason="suricata not installed")
def test_suricata_stops_after_the_short_final_segment(
    capture: tuple[Path, list[tuple[int, int]]], tmp_path: Path
) -> None:
    path, expected = capture
    (tmp_path / "suricata.yaml").write_text(SURICATA_CONFIG)
    subprocess.run(
        [
            "suricata",
            "-c",
            str(tmp_path / "suricata.yaml"),
            "-r",
            str(path),
            "-l",
            str(tmp_path),
            "-k",
            "none",
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    events = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    anomalies = [e["anomaly"]["event"] for e in events if e["event_type"] == "anomaly"]
    logged = [e for e in events if e["event_type"] == "dnp3"]
    assert "LEN_TOO_SMALL" in anomalies
    assert len(logged) < len(expected) // 2  # it stops logging the flow; otsentry decodes all 8
