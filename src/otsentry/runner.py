"""The live service: capture workers sharing the interfaces by kernel fanout, one collector, signals.

Process layout::

    worker 0 ─┐  AF_PACKET ring per interface (one PACKET_FANOUT group per interface) → decode →
    worker 1 ─┤  flows → protocol events, shipped in batches (orjson) over a pipe
      …       ┘
              └─► collector (the main process): enrichment + detection, event/alert files, SQLite,
                  the SIEM forwarder threads, stats and sensor health; signals

With ``capture.inline = true`` (and one worker) one process does it all (no pipe, one core). Otherwise
decoding and analysis run in parallel on different cores. Analysis is never split by flow: the
inventory, the baseline and correlations need every flow of a host in one place.

Signals (main process):

* SIGTERM / SIGINT — stop: workers end their flows (the last messages become events), flush, report
  and exit; the collector judges open correlation windows, writes, closes and exits 0.
* SIGHUP — reload: the config file is read and checked again (a bad file is logged and ignored), then
  every hook in :attr:`LiveService.reload_hooks` gets the new config: logging, detection rules (rebuilt
  from disk), health thresholds, and in every worker the kernel filter (swapped atomically on the live
  socket) and the flow limits. The capture is never closed. Settings that need a restart (interfaces,
  workers, ring, outputs) are logged as such.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import IO, Any

import orjson

from otsentry.capture import bpf
from otsentry.capture.live import (
    AfPacketSource,
    LibpcapSource,
    LiveCapture,
    LiveCaptureError,
    RingSpec,
    Source,
    interface_rx_packets,
)
from otsentry.config import Config, ConfigError, c1222_spec, load_config, resolve_workers
from otsentry.events import format_timestamp
from otsentry.health import HealthMonitor, InterfaceCounters, PipelineCounters
from otsentry.logs import configure_logging, get_logger
from otsentry.sensor import Sensor, Summary

Event = dict[str, Any]
STOP = "stop"
HOUSEKEEPING_INTERVAL = 0.1  # seconds between checks for signals, control messages and due flushes
REPORT_INTERVAL = 1.0  # seconds between a worker's counter reports
# Settings a running service cannot change (SIGHUP logs them; a restart applies them).
RESTART_KEYS = {
    "capture": ("interfaces", "workers", "inline", "backend", "ring_mb", "block_kb", "block_timeout_ms",
                "snaplen", "promiscuous", "ignore_outgoing", "fanout_group"),
    "outputs": ("events_file", "db", "alerts_file", "forward"),
    "sensor": ("name", "protocols"),
}

# Pipe messages (one tag byte + payload).
MSG_READY, MSG_EVENTS, MSG_STATS, MSG_DONE, MSG_ERROR = b"R", b"E", b"S", b"D", b"X"
MSG_QUIT, MSG_RELOAD = b"Q", b"H"


class ServiceError(RuntimeError):
    """The service cannot start or run (one line for the log and the exit message)."""


def log_level(name: str) -> int:
    import logging

    return {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
            "error": logging.ERROR}[name]


# -- capture side --------------------------------------------------------------------------------


def open_sources(config: Config, groups: dict[str, int] | None = None) -> list[Source]:
    """One capture source per interface; AF_PACKET sockets join ``groups[ifname]`` (or create it)."""
    cap = config.capture
    text = bpf.filter_for(config)
    sources: list[Source] = []
    try:
        for ifname in cap.interfaces:
            if cap.backend == "libpcap":
                sources.append(LibpcapSource(ifname, text, cap.snaplen, cap.promiscuous, cap.block_timeout_ms,
                                             cap.ring_mb * 1024 * 1024))
                continue
            from otsentry.capture.live import interface_linktype

            program = bpf.compile_filter(text, interface_linktype(ifname), cap.snaplen) if text else None
            group = (groups or {}).get(ifname)
            if group is None and cap.fanout_group:
                group = (cap.fanout_group + cap.interfaces.index(ifname)) & 0xFFFF
            sources.append(AfPacketSource(
                ifname, program, RingSpec.from_sizes(cap.ring_mb, cap.block_kb, cap.block_timeout_ms),
                promiscuous=cap.promiscuous, fanout_group=group, ignore_outgoing=cap.ignore_outgoing,
            ))
    except BaseException:
        for src in sources:
            src.close()
        raise
    return sources


def swap_filter(sources: list[Source], config: Config) -> None:
    """Attach ``config``'s filter to live sockets (a SIGHUP reload; the capture keeps running)."""
    text = bpf.filter_for(config)
    for src in sources:
        program = bpf.compile_filter(text, src.linktype, config.capture.snaplen) if text else None
        src.set_filter(program, text)


class CaptureWorker:
    """Frames from the interfaces through a Sensor; events to ``emit``, counters to ``report``.

    ``control()`` is called between frames every HOUSEKEEPING_INTERVAL: it returns None, STOP, or a new
    Config to apply (SIGHUP).
    """

    def __init__(
        self,
        index: int,
        config: Config,
        sources: list[Source],
        emit: Callable[[list[Event]], None],
        report: Callable[[dict[str, Any]], None],
        control: Callable[[], Config | str | None],
    ) -> None:
        self.index = index
        self.config = config
        self.sources = sources
        self.report = report
        self.control = control
        self.sensor = Sensor(
            observer_name=config.sensor.name,
            sinks=[emit],
            specs=bpf.enabled_specs(config.sensor.protocols, c1222=c1222_spec(config.c1222)),
            limits=config.flows.limits(),
        )
        self.log = get_logger(component="capture", worker=index)
        now = time.monotonic()
        self._next_flush = now + config.outputs.flush_interval
        self._next_report = now + REPORT_INTERVAL

    def run(self) -> Summary:
        capture = self.capture = LiveCapture(self.sources)
        started = time.perf_counter()
        try:
            self.sensor.process_frames(capture.frames(self._housekeeping, HOUSEKEEPING_INTERVAL))
        finally:
            self.sensor.summary.seconds = time.perf_counter() - started
            self.sensor.decoder.flush()
            summary = self.sensor.close()  # ends every flow: their last messages become events
            self.report(self.counters())
            capture.close()
        return summary

    def _housekeeping(self) -> bool:
        command = self.control()
        if command == STOP:
            return False
        if isinstance(command, Config):
            self.apply(command)
        while self.capture.link_events:
            ifname, error = self.capture.link_events.pop(0)
            self.log.warning("link_event", interface=ifname, error=error)
        now = time.monotonic()
        if now >= self._next_flush:
            self.sensor.flush_events()
            self._next_flush = now + self.config.outputs.flush_interval
        if now >= self._next_report:
            # Flows idle past their timeout end even when no packet comes to sweep them.
            self.sensor.flows.expire(time.time())
            self.report(self.counters())
            self._next_report = now + REPORT_INTERVAL
        return True

    def apply(self, config: Config) -> None:
        try:
            swap_filter(self.sources, config)
        except (OSError, bpf.FilterError) as exc:
            self.log.error("filter_reload_failed", error=str(exc))
        self.sensor.flows.limits = config.flows.limits()
        configure_logging(config.logging.format, log_level(config.logging.level))
        self.log = get_logger(component="capture", worker=self.index)  # loggers cache their config
        self.config = config

    def counters(self) -> dict[str, Any]:
        summary = self.sensor.summary
        interfaces = {}
        for src in self.sources:
            try:
                kernel = src.stats().as_dict()
            except OSError:
                kernel = {}
            interfaces[src.ifname] = {"frames": src.frames_seen, "bytes": src.bytes_seen, **kernel}
        return {
            "worker": self.index,
            "interfaces": interfaces,
            "events": sum(summary.events.values()),
            "decode_errors": sum(summary.decode_errors.values()),
            "flows": len(self.sensor.flows),
        }


def _worker_main(index: int, config: Config, conn: Connection, groups: dict[str, int]) -> None:
    """A capture worker process: sources in the fanout groups, events and counters to the collector."""
    stop = [False]

    def on_stop(_signum: int, _frame: Any) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the collector reloads and tells the workers
    signal.set_wakeup_fd(-1)  # inherited from the collector: its wake-up socket is not ours
    parent = os.getppid()
    try:
        sources = open_sources(config, groups)
    except (LiveCaptureError, bpf.FilterError, OSError) as exc:
        conn.send_bytes(MSG_ERROR + str(exc).encode())
        return
    fanout = {s.ifname: s.fanout_id for s in sources if getattr(s, "fanout_id", None) is not None}
    conn.send_bytes(MSG_READY + orjson.dumps(fanout))

    def emit(events: list[Event]) -> None:
        conn.send_bytes(MSG_EVENTS + orjson.dumps(events))

    def report(counters: dict[str, Any]) -> None:
        conn.send_bytes(MSG_STATS + orjson.dumps(counters))

    def control() -> Config | str | None:
        if stop[0] or os.getppid() != parent:
            return STOP
        while conn.poll():
            msg = conn.recv_bytes()
            if msg[:1] == MSG_QUIT:
                return STOP
            if msg[:1] == MSG_RELOAD:
                from otsentry.config import parse_config

                return parse_config(orjson.loads(msg[1:]), config.source)
        return None

    worker = CaptureWorker(index, config, sources, emit, report, control)
    try:
        summary = worker.run()
    except LiveCaptureError as exc:
        conn.send_bytes(MSG_ERROR + str(exc).encode())
        conn.close()
        os._exit(1)
    conn.send_bytes(MSG_DONE + orjson.dumps(summary.as_dict()))
    conn.close()


# -- collector side --------------------------------------------------------------------------------


class _AppendLines:
    """A JSON-lines file opened for appending (a restarted service must not truncate it)."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.file: IO[bytes] = open(path, "ab")  # noqa: SIM115 - closed by close()

    def write(self, lines: list[bytes]) -> None:
        self.file.write(b"".join(lines))
        self.file.flush()  # whole batches reach the file at once: readers never see half a line

    def close(self) -> None:
        self.file.close()


class Collector:
    """Enrichment and detection, the event/alert outputs, stats and sensor health."""

    def __init__(self, config: Config, workers: int) -> None:
        self.config = config
        self.workers = workers
        self.log = get_logger(component="collector")
        out = config.outputs
        self.events_file = _AppendLines(out.events_file) if out.events_file else None
        self.alerts_file = _AppendLines(out.alerts_file) if out.alerts_file else None
        self.db = Path(out.db) if out.db else None
        self.store = None
        if self.db is not None:
            from otsentry.store import EventStore

            self.db.parent.mkdir(parents=True, exist_ok=True)
            self.store = EventStore(self.db)
        self.analysis = self._build_analysis(config)
        self.monitor = HealthMonitor(config.sensor.name, list(config.capture.interfaces),
                                     config.health.silent_after, config.health.loss_threshold)
        self.worker_counters: dict[int, dict[str, Any]] = {}
        self.events = 0
        self.decode_errors = 0
        self.alerts = 0
        self.health_alerts: list[Event] = []
        self.forward = self._start_forwarder(config)
        self._next_stats = time.monotonic() + config.health.stats_interval

    # -- stages ----------------------------------------------------------------------------------

    def _build_analysis(self, config: Config) -> Any:
        from otsentry.analysis import build_analysis

        a = config.analysis
        analysis = build_analysis(
            self.db,
            [Path(p) for p in a.rules] or None,
            detect=a.detect,
            alerts_out=None,  # written here, appending
            baseline_file=Path(a.baseline) if a.baseline else None,
            thresholds=config.baseline,
            limits=config.inventory,
            detectors=config.detect,
        )
        if analysis.engine is not None:
            analysis.engine.evidence_dir = None  # no capture file to cut evidence from in live mode
        return analysis

    def _start_forwarder(self, config: Config) -> Any:
        if not (config.outputs.forward and self.db is not None and config.forward):
            return None
        from otsentry.outputs.config import parse_forward_config
        from otsentry.outputs.forwarder import ForwardService

        forward_config = parse_forward_config(config.forward)
        if not forward_config.enabled:
            return None
        service = ForwardService(forward_config, self.db)
        service.start()
        return service

    def emit(self, events: list[Event]) -> None:
        """Protocol events from a worker: enrich, detect, write."""
        created = format_timestamp(time.time())
        errors = 0
        for event in events:
            event["event.created"] = created
            if event["event.dataset"] == "otsentry.decode_error":
                errors += 1
        self.events += len(events)
        self.decode_errors += errors
        alerts = self.analysis(events)
        self._write(events)
        if alerts:
            self._write_alerts(alerts)

    def _write(self, events: list[Event]) -> None:
        dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        lines = [dumps(e, option=opt) for e in events]
        if self.events_file is not None:
            self.events_file.write(lines)
        if self.store is not None:
            self.store.write(events, lines)

    def _write_alerts(self, alerts: list[Event]) -> None:
        self.alerts += len(alerts)
        if self.alerts_file is not None:
            dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
            self.alerts_file.write([dumps(a, option=opt) for a in alerts])
        for alert in alerts:
            self.log.warning("alert", rule=alert.get("rule.id"), severity=alert.get("event.severity"),
                             message=alert.get("message"), source_ip=alert.get("source.ip"),
                             destination_ip=alert.get("destination.ip"),
                             seq=alert.get("otsentry.alert.seq"))

    def raise_health_alerts(self, alerts: list[Event]) -> None:
        """Health alerts get a seq and an outbox row like rule alerts (through the engine when it runs)."""
        if not alerts:
            return
        if self.analysis.engine is not None:
            stamped = self.analysis(list(alerts))
        else:
            stamped = alerts
            if self.db is not None:
                from otsentry.outputs.health import raise_alert

                for alert in alerts:
                    raise_alert(self.db, alert)
        self.health_alerts += stamped
        self._write_alerts(stamped)

    # -- counters, stats and health ----------------------------------------------------------------

    def on_counters(self, counters: dict[str, Any]) -> None:
        self.worker_counters[counters["worker"]] = counters

    def interface_counters(self) -> dict[str, InterfaceCounters]:
        totals = {name: InterfaceCounters() for name in self.config.capture.interfaces}
        for counters in self.worker_counters.values():
            for name, values in counters["interfaces"].items():
                totals.setdefault(name, InterfaceCounters()).add(values)
        for name, total in totals.items():
            total.rx_packets = interface_rx_packets(name)
        return totals

    def outbox_lag(self) -> int | None:
        if self.forward is None or self.db is None:
            return None
        from otsentry.outputs.cli import status_rows

        try:
            lags = [r["lag"] for r in status_rows(self.forward.config, self.db) if r["enabled"] and r["lag"]
                    is not None]
        except Exception as exc:  # a stats line must never stop the sensor
            self.log.warning("outbox_lag_unavailable", error=str(exc))
            return None
        return max(lags, default=0)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_stats:
            return
        self._next_stats = now + self.config.health.stats_interval
        pipeline = PipelineCounters(
            events=self.events,
            alerts=self.alerts,
            decode_errors=self.decode_errors,
            flows=sum(c.get("flows", 0) for c in self.worker_counters.values()),
            outbox_lag=self.outbox_lag(),
            workers=self.workers,
        )
        metrics, alerts, stats = self.monitor.update(time.time(), self.interface_counters(), pipeline)
        self._write(metrics)
        self.log.info("stats", **stats)
        self.raise_health_alerts(alerts)

    # -- reload and close ---------------------------------------------------------------------------

    def reload(self, config: Config) -> None:
        """SIGHUP: rules rebuilt from disk, health thresholds; outputs need a restart."""
        old = self.analysis.engine
        if config.analysis.detect:
            from otsentry.detect.alerts import AlertStore
            from otsentry.detect.engine import DetectionEngine, bundled_rules_dir

            paths = [Path(p) for p in config.analysis.rules] or [bundled_rules_dir()]
            try:
                engine = DetectionEngine.from_paths(paths, store=AlertStore(self.db) if self.db else None)
            except Exception as exc:  # a broken rule file must not stop a running sensor
                self.log.error("rules_reload_failed", error=str(exc))
            else:
                if old is not None:
                    engine.seq = max(engine.seq, old.seq)
                self.analysis.engine = engine
                self.log.info("rules_reloaded", rules=len(engine.rules), problems=len(engine.problems))
        else:
            self.analysis.engine = None
        set_baseline = getattr(self.analysis.enricher, "set_baseline", None)
        if config.analysis.baseline and set_baseline is not None:
            from otsentry.inventory.baseline import Baseline

            try:
                set_baseline(Baseline.from_text(Path(config.analysis.baseline).read_text()))
            except (OSError, ValueError) as exc:
                self.log.error("baseline_reload_failed", error=str(exc))
        self.monitor.set_thresholds(config.health.silent_after, config.health.loss_threshold)
        self.log = get_logger(component="collector")
        self.config = config

    def close(self) -> dict[str, Any]:
        """Judge open windows, write the last numbers, close every output."""
        alerts = self.analysis.end_of_capture("live")  # evidence_dir is None: nothing is cut
        if alerts:
            self._write_alerts(alerts)
        self.tick(force=True)
        self.analysis.close()
        if self.forward is not None:
            self.forward.stop()
        for sink in (self.events_file, self.alerts_file, self.store):
            if sink is not None:
                sink.close()
        return {"events": self.events, "alerts": self.alerts, "decode_errors": self.decode_errors}


# -- the service ----------------------------------------------------------------------------------


class LiveService:
    """``otsentry run``: start the workers and the collector, handle signals, stop cleanly."""

    def __init__(self, config: Config, config_path: Path | None = None,
                 overrides: dict[str, Any] | None = None) -> None:
        if not config.capture.interfaces:
            raise ServiceError("no interface to capture: give --interface or capture.interfaces")
        self.config = config
        self.config_path = config_path
        self.overrides = dict(overrides or {})
        self.workers = resolve_workers(config)
        self.log = get_logger(component="service")
        self.stop_requested = False
        self.reload_requested = False
        # Called with the new Config on SIGHUP, in order; a hook that raises is logged and skipped.
        self.reload_hooks: list[Callable[[Config], None]] = [self._reload_logging]
        self.collector: Collector | None = None
        self.worker_summaries: list[dict[str, Any]] = []
        self.worker_errors: dict[int, str] = {}

    # -- signals and reload ---------------------------------------------------------------------------

    def _on_stop(self, signum: int, _frame: Any) -> None:
        self.stop_requested = True

    def _on_hup(self, _signum: int, _frame: Any) -> None:
        self.reload_requested = True

    def _install_signals(self) -> socket.socket:
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        self._wake = (wake_r, wake_w)
        return wake_r

    def _reload_logging(self, config: Config) -> None:
        configure_logging(config.logging.format, log_level(config.logging.level))
        self.log = get_logger(component="service")  # bound loggers cache the old configuration

    def reload(self) -> Config | None:
        """Re-read the config file; run the reload hooks. Returns the new config, or None if it is bad."""
        self.reload_requested = False
        try:
            new = load_config(self.config_path).override(self.overrides)
        except ConfigError as exc:
            self.log.error("reload_failed", error=str(exc), keeping=self.config.source)
            return None
        pending = [f"{section}.{key}" for section, keys in RESTART_KEYS.items() for key in keys
                   if getattr(getattr(new, section), key) != getattr(getattr(self.config, section), key)]
        if pending:
            self.log.warning("restart_needed", settings=pending)
        for hook in self.reload_hooks:
            try:
                hook(new)
            except Exception as exc:  # one hook's failure must not stop the others or the capture
                self.log.error("reload_hook_failed", hook=getattr(hook, "__qualname__", repr(hook)),
                               error=str(exc))
        self.config = new
        self.log.info("reloaded", config=new.source)
        return new

    # -- running --------------------------------------------------------------------------------------

    def run(self) -> int:
        """Capture until SIGTERM/SIGINT; 0 after a clean stop."""
        wake = self._install_signals()
        self.log.info("starting", interfaces=list(self.config.capture.interfaces), workers=self.workers,
                      filter=bpf.filter_for(self.config) or "all", backend=self.config.capture.backend,
                      pid=os.getpid())
        if self.workers == 1 and self.config.capture.inline:
            return self._run_inline()
        return self._run_workers(wake)

    def _run_inline(self) -> int:
        sources = open_sources(self.config)
        collector = self.collector = Collector(self.config, 1)
        self.reload_hooks.append(collector.reload)
        worker: CaptureWorker | None = None

        def control() -> Config | str | None:
            collector.tick()
            if self.stop_requested:
                return STOP
            if self.reload_requested:
                new = self.reload()
                if new is not None and worker is not None:
                    return new
            return None

        worker = CaptureWorker(0, self.config, sources, collector.emit, collector.on_counters, control)
        self.log.info("capturing", fanout={s.ifname: getattr(s, "fanout_id", None) for s in sources})
        try:
            summary = worker.run()
        finally:
            totals = collector.close()
        self.worker_summaries = [summary.as_dict()]
        self.log.info("stopped", **totals, packets=summary.packets)
        return 0

    def _spawn_workers(self) -> list[tuple[Any, Connection]]:
        """Start the workers one at a time: each joins the fanout groups the first one created, in the
        same order on every interface, so a flow seen on two interfaces maps to the same worker."""
        ctx = multiprocessing.get_context("fork")
        procs: list[tuple[Any, Connection]] = []
        groups: dict[str, int] = {}
        for index in range(self.workers):
            parent_end, child_end = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_worker_main, args=(index, self.config, child_end, groups),
                               name=f"otsentry-capture-{index}", daemon=True)
            proc.start()
            child_end.close()
            reply = parent_end.recv_bytes() if parent_end.poll(30) else MSG_ERROR + b"worker did not start"
            if reply[:1] != MSG_READY:
                for p, conn in procs:
                    conn.send_bytes(MSG_QUIT)
                    p.join(5)
                proc.join(5)
                raise ServiceError(reply[1:].decode(errors="replace"))
            groups = {**orjson.loads(reply[1:]), **groups}
            procs.append((proc, parent_end))
        self.log.info("capturing", fanout=groups, workers=[p.pid for p, _ in procs])
        return procs

    def _run_workers(self, wake: socket.socket) -> int:
        procs = self._spawn_workers()  # before the collector opens databases or starts threads (fork)
        collector = self.collector = Collector(self.config, self.workers)
        conns = {conn: index for index, (_, conn) in enumerate(procs)}

        def tell_workers(config: Config) -> None:
            payload = MSG_RELOAD + orjson.dumps(config.to_dict())
            for conn in conns:
                conn.send_bytes(payload)

        self.reload_hooks += [collector.reload, tell_workers]
        stopping = False
        deadline = float("inf")
        try:
            while conns:
                if self.stop_requested and not stopping:
                    stopping = True
                    deadline = time.monotonic() + 30
                    for conn in conns:
                        conn.send_bytes(MSG_QUIT)
                if self.reload_requested and not stopping:
                    self.reload()
                if time.monotonic() > deadline:
                    self.log.error("workers_did_not_stop", workers=list(conns.values()))
                    break
                for ready in wait([*conns, wake], timeout=HOUSEKEEPING_INTERVAL * 2):
                    if ready is wake:
                        with contextlib.suppress(BlockingIOError):
                            wake.recv(512)
                        continue
                    assert isinstance(ready, Connection)
                    self._dispatch(ready, conns, collector)
                collector.tick()
                if not stopping:
                    for proc, conn in procs:
                        if conn in conns and not proc.is_alive() and not conn.poll():
                            index = conns[conn]
                            raise ServiceError(self.worker_errors.get(index)
                                               or f"capture worker {index} died (exit code {proc.exitcode})")
        finally:
            for proc, conn in procs:
                if proc.is_alive():
                    proc.terminate()
                proc.join(5)
                conn.close()
            totals = collector.close()
        packets = sum(s.get("packets", 0) for s in self.worker_summaries)
        self.log.info("stopped", **totals, packets=packets)
        return 0

    def _dispatch(self, conn: Connection, conns: dict[Connection, int], collector: Collector) -> None:
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            conns.pop(conn, None)
            return
        tag, body = msg[:1], msg[1:]
        if tag == MSG_EVENTS:
            collector.emit(orjson.loads(body))
        elif tag == MSG_STATS:
            collector.on_counters(orjson.loads(body))
        elif tag == MSG_DONE:
            self.worker_summaries.append(orjson.loads(body))
            conns.pop(conn, None)
        elif tag == MSG_ERROR:
            error = body.decode(errors="replace")
            self.worker_errors[conns.get(conn, -1)] = error
            self.log.error("worker_error", worker=conns.get(conn), error=error)
