"""Wires the stages together; the only module that knows all of them.

capture → decode (L2–L4) → flow table (TCP reassembly) → protocol analyzers
        → events → sinks (JSON lines, SQLite)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from time import perf_counter
from typing import IO, TYPE_CHECKING, Any

from otsentry.capture import CaptureError, RawFrame, read_capture
from otsentry.events import Event, EventBuilder, Parts, community_id, format_timestamp, serialise
from otsentry.net.decode import Decoder
from otsentry.net.flows import ATTACHED, Flow, FlowLimits, FlowTable
from otsentry.protocols import ProtocolSpec, all_specs
from otsentry.protocols.base import Message
from otsentry.store import EventStore

if TYPE_CHECKING:  # the analysis stages are optional; importing them pulls in pySigma
    from otsentry.analysis import Analysis

EventSink = Callable[[list[Event]], None]
BATCH = 8192


@dataclass
class Summary:
    """What a run saw, for the closing report and the sensor-health metrics."""

    packets: int = 0
    bytes: int = 0
    ip_packets: int = 0
    flows: int = 0
    events: Counter[str] = field(default_factory=Counter)
    decode_errors: Counter[str] = field(default_factory=Counter)
    decoder: Counter[str] = field(default_factory=Counter)
    tcp: dict[str, int] = field(default_factory=dict)
    capture_errors: list[str] = field(default_factory=list)
    alerts: Counter[str] = field(default_factory=Counter)  # by log.level
    seconds: float = 0.0

    @property
    def packets_per_second(self) -> float:
        return self.packets / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "ip_packets": self.ip_packets,
            "flows": self.flows,
            "events": dict(self.events),
            "decode_errors": dict(self.decode_errors),
            "decoder": dict(self.decoder),
            "tcp": self.tcp,
            "capture_errors": self.capture_errors,
            "alerts": dict(self.alerts),
            "seconds": round(self.seconds, 3),
            "packets_per_second": round(self.packets_per_second),
        }


class JsonLinesSink:
    """Events as JSON lines, one object per line."""

    def __init__(self, path: str | Path) -> None:
        self.file: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed by close()

    def write(self, events: list[Event], lines: list[bytes]) -> None:
        self.file.write(b"".join(lines))

    def close(self) -> None:
        self.file.close()


class Sensor:
    """Turns captured frames into events and hands them to the sinks in batches."""

    def __init__(
        self,
        observer_name: str = "otsentry",
        sinks: Iterable[EventSink] = (),
        events_out: JsonLinesSink | None = None,
        store: EventStore | None = None,
        specs: list[ProtocolSpec] | None = None,
        limits: FlowLimits | None = None,
        shard: tuple[int, int] | None = None,
        analysis: Analysis | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.analysis = analysis  # enrichment and detection, between decoding and the sinks
        # (index, count): handle only the flows that hash to this worker (see parallel.py).
        self.shard = shard
        self.store = store
        # Sinks that keep serialised events share one orjson pass per event.
        self.serialised_sinks: list[Any] = [s for s in (events_out, store) if s is not None]
        self.builder = EventBuilder(observer_name)
        self.decoder = Decoder()
        self.flows = FlowTable(specs or all_specs(), self._on_messages, self._on_flow_end, limits)
        self.summary = Summary()
        self.pending: list[Event] = []
        self.pending_parts: list[Parts] = []  # aligned with pending, for serialise()
        self.flow_records: list[dict[str, Any]] = []

    # -- stages ------------------------------------------------------------------------------

    def _on_messages(self, flow: Flow, messages: list[Message]) -> None:
        self.pending += self.builder.build(flow, messages, self.pending_parts)
        if len(self.pending) >= BATCH:
            self.flush_events()

    def _count(self, events: list[Event]) -> None:
        counts = Counter(map(itemgetter("event.dataset"), events))  # counted in C, not per event
        self.summary.events.update(counts)
        if counts.get("otsentry.decode_error"):
            self.summary.decode_errors.update(
                e.get("network.protocol") or "unknown"
                for e in events
                if e["event.dataset"] == "otsentry.decode_error"
            )

    def _on_flow_end(self, flow: Flow) -> None:
        if self.store is None or flow.state != ATTACHED:  # keep records of the flows we decode
            return
        record = flow.record()
        record["community_id"] = community_id(flow)
        record["start_ts"] = format_timestamp(record.pop("start"))
        record["end_ts"] = format_timestamp(record.pop("end"))
        record["pcap_file"] = self.builder.pcap_file
        self.flow_records.append(record)

    def flush_events(self) -> None:
        events, parts = self.pending, self.pending_parts
        if events:
            self.pending, self.pending_parts = [], []
            self._count(events)
            if self.analysis is not None:
                self.analysis(events)
            for sink in self.sinks:
                sink(events)
            if self.serialised_sinks:
                lines = serialise(events, parts[: len(events)])
                for serialised in self.serialised_sinks:
                    serialised.write(events, lines)
        if self.flow_records and self.store is not None:
            self.store.add_flows(self.flow_records)
            self.flow_records = []

    # -- driving -------------------------------------------------------------------------------

    def process_frames(
        self, frames: Iterable[RawFrame], progress: Callable[[int], None] | None = None
    ) -> None:
        """Run frames through decode and the flow table; frame numbers count from 1 per call."""
        decode = self.decoder.decode
        on_packet = self.flows.packet
        index, count = self.shard or (0, 1)
        frame_no = 0
        nbytes = 0
        try:
            for frame in frames:
                frame_no += 1
                nbytes += len(frame.data) + 16
                pkt = decode(frame, frame_no)
                if pkt is not None and (
                    count == 1
                    or (pkt.sport + pkt.dport + pkt.src_addr[-1] + pkt.dst_addr[-1]) % count == index
                ):
                    on_packet(pkt)
                if progress is not None and not frame_no & 0xFFF:
                    progress(nbytes)  # bytes read so far, for a progress bar over the file size
        finally:
            self.summary.packets += frame_no
            self.summary.bytes += nbytes

    def replay(self, path: str | Path, progress: Callable[[int], None] | None = None) -> None:
        """Replay one capture file; a damaged file ends with its error recorded, not raised."""
        self.builder.pcap_file = str(path)
        started = perf_counter()
        try:
            self.process_frames(read_capture(path), progress)
        except CaptureError as exc:
            self.summary.capture_errors.append(str(exc))
        finally:
            # Flows and IP fragments do not span files: end them so their last messages carry
            # this file's name and unfinished datagrams are counted.
            self.decoder.flush()
            self.flows.flush()
            self.flush_events()
            if self.analysis is not None:
                self.analysis.end_of_capture(path)
            self.summary.seconds += perf_counter() - started

    def close(self) -> Summary:
        self.flows.flush()
        self.flush_events()
        summary = self.summary
        summary.flows = self.flows.flows_total
        summary.decoder = Counter(self.decoder.counters)
        summary.tcp = self.flows.tcp_stats.as_dict()
        summary.ip_packets = summary.decoder.get("decoded", 0)
        if self.analysis is not None:
            summary.alerts = self.analysis.counts
            self.analysis.close()
        for sink in (*self.sinks, *self.serialised_sinks):
            close = getattr(sink, "close", None)
            if close is not None:
                close()
        return summary
