"""Evidence pcaps: the packets of an alert's flow shortly before and after the trigger.

Three pieces, so the sensor can use whichever fits the input:

* :func:`write_pcap` — frames ``(ts, linktype, bytes)`` to a small classic pcap (µs, little endian).
* :class:`EvidenceRecorder` — live capture: the sensor feeds every packet of a decoded flow with
  :meth:`~EvidenceRecorder.packet` (key = the flow's Community ID); each flow keeps a ring of its last
  ``before_frames`` frames (and at most ``max_flow_bytes``); :meth:`~EvidenceRecorder.request` snapshots
  the ring for an alert and keeps collecting until ``after_frames`` more frames or ``after_seconds`` of
  packet time have passed (or the flow ends / the recorder closes), then writes the file.
* :func:`cut_from_capture` — replay: one pass over the capture file after the run picks, for each
  alert, the frames of its flow within ``[trigger - before_seconds, trigger + after_seconds]``. Exact
  even when events reach the engine in large batches (the ring may have moved on by then).

Files are named ``<alert id>.pcap`` in the evidence directory (next to the database by default).
"""

from __future__ import annotations

import ipaddress
import struct
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import communityid

from otsentry.capture import read_capture
from otsentry.net.decode import Decoder

Frame = tuple[float, int, bytes]  # (ts, linktype, captured bytes)

_PCAP_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")
PCAP_MAGIC_USEC = 0xA1B2C3D4
SNAPLEN = 262144


def write_pcap(path: str | Path, frames: Iterable[Frame]) -> int:
    """Write frames to a pcap; frames of a link type other than the first one's are skipped.

    Returns the number of frames written.
    """
    frames = list(frames)
    linktype = frames[0][1] if frames else 1
    written = 0
    with open(path, "wb") as out:
        out.write(_PCAP_HEADER.pack(PCAP_MAGIC_USEC, 2, 4, 0, 0, SNAPLEN, linktype))
        for ts, lt, data in frames:
            if lt != linktype:
                continue
            sec = int(ts)
            usec = min(round((ts - sec) * 1_000_000), 999_999)
            out.write(_RECORD_HEADER.pack(sec, usec, len(data), len(data)))
            out.write(data)
            written += 1
    return written


@dataclass
class _Pending:
    path: Path
    trigger_ts: float
    frames: list[Frame]
    after_left: int
    deadline: float


@dataclass
class _Ring:
    frames: deque[Frame]
    nbytes: int = 0
    pending: list[_Pending] = field(default_factory=list)


class EvidenceRecorder:
    """Per-flow rings of recent frames and the pending evidence files of live alerts."""

    def __init__(
        self,
        directory: str | Path,
        before_frames: int = 32,
        after_frames: int = 16,
        after_seconds: float = 5.0,
        max_flows: int = 4096,
        max_flow_bytes: int = 256 * 1024,
    ) -> None:
        self.directory = Path(directory)
        self.before_frames = before_frames
        self.after_frames = after_frames
        self.after_seconds = after_seconds
        self.max_flows = max_flows
        self.max_flow_bytes = max_flow_bytes
        self.rings: OrderedDict[Any, _Ring] = OrderedDict()
        self.written: list[Path] = []

    def path_for(self, alert_id: str) -> Path:
        return self.directory / f"{alert_id}.pcap"

    def packet(self, key: Any, ts: float, linktype: int, data: bytes) -> None:
        ring = self.rings.get(key)
        if ring is None:
            if len(self.rings) >= self.max_flows:
                _old_key, old = self.rings.popitem(last=False)
                self._finish_all(old)
            ring = self.rings[key] = _Ring(deque())
        else:
            self.rings.move_to_end(key)
        frame = (ts, linktype, data)
        ring.frames.append(frame)
        ring.nbytes += len(data)
        while len(ring.frames) > self.before_frames or (
            ring.nbytes > self.max_flow_bytes and len(ring.frames) > 1
        ):
            ring.nbytes -= len(ring.frames.popleft()[2])
        if ring.pending:
            still = []
            for p in ring.pending:
                p.frames.append(frame)
                if ts > p.trigger_ts:
                    p.after_left -= 1
                if p.after_left <= 0 or ts >= p.deadline:
                    self._write(p)
                else:
                    still.append(p)
            ring.pending = still

    def request(self, alert_id: str, key: Any, trigger_ts: float) -> Path:
        """Start the evidence of one alert; returns the path the file will have."""
        path = self.path_for(alert_id)
        ring = self.rings.get(key)
        frames = [f for f in ring.frames if f[0] <= trigger_ts + self.after_seconds] if ring else []
        after = sum(1 for f in frames if f[0] > trigger_ts)
        pending = _Pending(
            path, trigger_ts, frames, self.after_frames - after, trigger_ts + self.after_seconds
        )
        if ring is None or pending.after_left <= 0:
            self._write(pending)
        else:
            ring.pending.append(pending)
        return path

    def flow_end(self, key: Any) -> None:
        ring = self.rings.pop(key, None)
        if ring is not None:
            self._finish_all(ring)

    def close(self) -> None:
        for ring in self.rings.values():
            self._finish_all(ring)
        self.rings.clear()

    def _finish_all(self, ring: _Ring) -> None:
        for p in ring.pending:
            self._write(p)
        ring.pending = []

    def _write(self, pending: _Pending) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_pcap(pending.path, pending.frames)
        self.written.append(pending.path)


# -- replay: cut from the capture file --------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceRequest:
    path: Path
    community_id: str
    trigger_ts: float


_COMMUNITY = communityid.CommunityID()


def _packet_community_id(pkt: Any) -> str:
    src = str(ipaddress.ip_address(pkt.src_addr))
    dst = str(ipaddress.ip_address(pkt.dst_addr))
    proto = communityid.PROTO_TCP if pkt.proto == 6 else communityid.PROTO_UDP
    return _COMMUNITY.calc(communityid.FlowTuple(proto, src, dst, pkt.sport, pkt.dport))


def cut_from_capture(
    capture: str | Path,
    requests: Iterable[EvidenceRequest],
    before_seconds: float = 5.0,
    after_seconds: float = 5.0,
    max_frames: int = 256,
) -> dict[Path, int]:
    """Write each request's frames (its flow, within the time window) from ``capture``; frames written."""
    requests = list(requests)
    if not requests:
        return {}
    lo = min(r.trigger_ts for r in requests) - before_seconds
    hi = max(r.trigger_ts for r in requests) + after_seconds
    by_flow: dict[str, list[EvidenceRequest]] = {}
    for r in requests:
        by_flow.setdefault(r.community_id, []).append(r)
    collected: dict[Path, list[Frame]] = {r.path: [] for r in requests}
    decoder = Decoder()
    for number, raw in enumerate(read_capture(capture), start=1):
        if raw.ts < lo:
            continue
        if raw.ts > hi:
            break
        pkt = decoder.decode(raw, number)
        if pkt is None or pkt.proto not in (6, 17):
            continue
        wanted = by_flow.get(_packet_community_id(pkt))
        if not wanted:
            continue
        for r in wanted:
            frames = collected[r.path]
            if (
                r.trigger_ts - before_seconds <= raw.ts <= r.trigger_ts + after_seconds
                and len(frames) < max_frames
            ):
                frames.append((raw.ts, raw.linktype, raw.data))
    counts = {}
    for path, frames in collected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        counts[path] = write_pcap(path, frames)
    return counts


def requests_from_alerts(alerts: Iterable[Mapping[str, Any]], capture: str | Path) -> list[EvidenceRequest]:
    """Evidence requests for the alerts raised while replaying ``capture`` that name an evidence path."""
    from otsentry.detect.timeparse import event_ts

    out = []
    for a in alerts:
        path, cid = a.get("otsentry.alert.evidence"), a.get("network.community_id")
        if path and cid and a.get("otsentry.pcap.file") == str(capture):
            out.append(EvidenceRequest(Path(path), cid, event_ts(a)))
    return out
