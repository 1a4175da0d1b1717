"""A capture under construction: frames from many connections, ordered by time, written with ground truth.

The truth file (``<name>.truth.json``) lists, per frame that completes at least one protocol message,
what a correct decoder reports: protocol, function code, action and the message's fields; attack
messages carry an ``attack`` object (ATT&CK for ICS technique and what was injected). Frames are
1-based as in Wireshark. A link-layer variant with the same frames names its source in ``frames_from``
instead of repeating them (``load_truth`` resolves it). ``expected_differences`` names frames where a
peer tool (``tshark``, ``suricata``) is known to report something else for a field (``function_code``,
``objects``) and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netpackets import Frame, Host, TcpConnection, UdpFlow
from pcapwriter import LINKTYPE_ETHERNET, PcapWriter


@dataclass
class Difference:
    """A frame where a peer tool is known to report something else for ``field``."""

    frame: Frame
    tool: str
    reason: str
    field: str = "function_code"


@dataclass
class Capture:
    """Collects frames from any number of connections; ``frames()`` returns them in capture order."""

    name: str
    description: str
    hosts: list[Host] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    # Capture-level facts the truth states besides its frames (e.g. the C12.22 vendor procedure table a
    # decoder needs to name manufacturer procedures).
    extra: dict[str, Any] = field(default_factory=dict)
    _frames: list[Frame] = field(default_factory=list)

    def sink(self, frame: Frame) -> None:
        self._frames.append(frame)

    def connection(
        self,
        client: Host,
        client_port: int,
        server: Host,
        server_port: int,
        client_isn: int,
        server_isn: int,
        **kwargs: Any,
    ) -> TcpConnection:
        return TcpConnection(
            self.sink, client, client_port, server, server_port, client_isn, server_isn, **kwargs
        )

    def udp_flow(self, a: Host, a_port: int, b: Host, b_port: int, a_ip_id: int, b_ip_id: int) -> UdpFlow:
        return UdpFlow(self.sink, a, a_port, b, b_port, a_ip_id, b_ip_id)

    def expect_difference(self, frame: Frame, tool: str, reason: str, field: str = "function_code") -> None:
        self.differences.append(Difference(frame, tool, reason, field))

    def frames(self) -> list[Frame]:
        # A stable sort: frames made at the same instant keep the order they were made in.
        return sorted(self._frames, key=lambda f: f.ts_ns)

    def truth(self, frames: list[Frame] | None = None, **extra: Any) -> dict[str, Any]:
        frames = self.frames() if frames is None else frames
        number = {id(f): i for i, f in enumerate(frames, 1)}
        doc: dict[str, Any] = {
            "capture": self.name,
            "description": self.description,
            "packets": len(frames),
            "hosts": {h.ip: {"name": h.name, "mac": h.mac.hex("-").upper()} for h in self.hosts},
        }
        doc.update(self.extra)
        doc.update(extra)
        doc["expected_differences"] = [
            {"frame": number[id(d.frame)], "tool": d.tool, "field": d.field, "reason": d.reason}
            for d in sorted(self.differences, key=lambda d: number[id(d.frame)])
        ]
        doc["frames"] = [
            {"frame": number[id(f)], "time_ns": f.ts_ns, "messages": f.messages}
            | ({"note": f.note} if f.note else {})
            for f in frames
            if f.messages or f.note
        ]
        return doc

    def write(self, out_dir: Path) -> tuple[Path, int]:
        frames = self.frames()
        path = out_dir / self.name
        with path.open("wb") as out:
            writer = PcapWriter(out, LINKTYPE_ETHERNET)
            for frame in frames:
                writer.write(frame.ts_ns, frame.data)
        write_truth(path, self.truth(frames))
        return path, len(frames)


def write_truth(capture_path: Path, doc: dict[str, Any]) -> Path:
    """Truth JSON beside the capture: one frame per line so diffs stay readable."""
    frames = doc.pop("frames")
    head = json.dumps(doc, indent=1, sort_keys=False)
    lines = ",\n".join("  " + json.dumps(f, sort_keys=True, separators=(",", ":")) for f in frames)
    text = head[:-2] + (',\n "frames": [\n' + lines + "\n ]\n}\n" if frames else ',\n "frames": []\n}\n')
    doc["frames"] = frames
    path = capture_path.with_name(capture_path.name.rsplit(".", 1)[0] + ".truth.json")
    path.write_text(text)
    return path


def load_truth(capture_path: Path) -> dict[str, Any]:
    """The truth of a capture, with ``frames_from`` (a link-layer variant of another capture) resolved."""
    path = capture_path.with_name(capture_path.name.rsplit(".", 1)[0] + ".truth.json")
    doc = json.loads(path.read_text())
    if doc.get("frames_from"):
        doc["frames"] = json.loads((path.parent / doc["frames_from"]).read_text())["frames"]
    return doc
