"""A SPAN port in network namespaces, for the live-capture tests and the capture-loss bench.

    hmi ns ── veth ── plc ns ─ tc mirred (ingress + egress of the plc side) ─ veth ── tap ns (sensor)
    10.77.0.1, .66    10.77.0.2                                                   no address

Clients run in ``hmi``, servers in ``plc``; the sensor and tcpdump capture the mirror in ``tap``, an
interface without an address, like a switch's SPAN destination port. Offloads are off on the monitored
link so frames on the mirror are wire-sized with real checksums, as a switch would copy them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

HMI_IP, ROGUE_IP, PLC_IP = "10.77.0.1", "10.77.0.66", "10.77.0.2"


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces and veth pairs"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"needs the {tool!r} tool (iproute2)"
    probe = f"otsprobe{os.getpid() % 100000}"
    try:
        subprocess.run(["ip", "netns", "add", probe], check=True, capture_output=True, timeout=10)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a network namespace: {getattr(exc, 'stderr', b'') or exc}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


@contextlib.contextmanager
def veth_pair(prefix: str) -> Iterator[tuple[socket.socket, str]]:
    """A veth pair in this namespace: a raw socket sending on one end, and the other end's name."""
    name = f"{prefix}{os.getpid() % 100000}"
    a, b = f"{name}a", f"{name}b"
    subprocess.run(
        ["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True, capture_output=True
    )
    try:
        for dev in (a, b):
            subprocess.run(["ip", "link", "set", dev, "addrgenmode", "none"], capture_output=True)
            subprocess.run(["ip", "link", "set", dev, "up"], check=True, capture_output=True)
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sender:
            sender.bind((a, 0))
            yield sender, b
    finally:
        subprocess.run(["ip", "link", "del", a], capture_output=True)


def _sh(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, timeout=20)


@dataclass
class SpanLab:
    tag: str  # short and unique: names are limited to 15 bytes

    def __post_init__(self) -> None:
        self.hmi, self.plc, self.tap = f"{self.tag}h", f"{self.tag}p", f"{self.tag}t"
        self.hmi_if, self.plc_if = f"{self.tag}hv", f"{self.tag}pv"
        self.span_out, self.span_in = f"{self.tag}s0", f"{self.tag}s1"

    def up(self) -> SpanLab:
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def _up(self) -> None:
        for ns in (self.hmi, self.plc, self.tap):
            _sh("ip", "netns", "add", ns)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh(
            "ip",
            "link",
            "add",
            self.hmi_if,
            "netns",
            self.hmi,
            "type",
            "veth",
            "peer",
            "name",
            self.plc_if,
            "netns",
            self.plc,
        )
        _sh(
            "ip",
            "link",
            "add",
            self.span_out,
            "netns",
            self.plc,
            "type",
            "veth",
            "peer",
            "name",
            self.span_in,
            "netns",
            self.tap,
        )
        _sh("ip", "-n", self.hmi, "addr", "add", f"{HMI_IP}/24", "dev", self.hmi_if)
        _sh("ip", "-n", self.hmi, "addr", "add", f"{ROGUE_IP}/24", "dev", self.hmi_if)
        _sh("ip", "-n", self.plc, "addr", "add", f"{PLC_IP}/24", "dev", self.plc_if)
        for ns, dev in (
            (self.hmi, self.hmi_if),
            (self.plc, self.plc_if),
            (self.plc, self.span_out),
            (self.tap, self.span_in),
        ):
            if shutil.which("ethtool"):
                subprocess.run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        "ethtool",
                        "-K",
                        dev,
                        "tx",
                        "off",
                        "tso",
                        "off",
                        "gso",
                        "off",
                        "gro",
                        "off",
                    ],
                    capture_output=True,
                    timeout=10,
                )
            _sh("ip", "-n", ns, "link", "set", dev, "up")
        # The SPAN session: copy both directions of the PLC's link to the span veth.
        _sh("ip", "netns", "exec", self.plc, "tc", "qdisc", "add", "dev", self.plc_if, "clsact")
        for hook in ("ingress", "egress"):
            _sh(
                "ip",
                "netns",
                "exec",
                self.plc,
                "tc",
                "filter",
                "add",
                "dev",
                self.plc_if,
                hook,
                "protocol",
                "all",
                "u32",
                "match",
                "u32",
                "0",
                "0",
                "action",
                "mirred",
                "egress",
                "mirror",
                "dev",
                self.span_out,
            )

    def down(self) -> None:
        for ns in (self.hmi, self.plc, self.tap):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)

    def cmd(self, ns: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def __enter__(self) -> SpanLab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()
