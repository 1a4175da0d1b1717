"""One forwarder per destination: drain the outbox in sequence order, at least once.

The loop: fetch the next alerts after the cursor (as many as the transport's window allows), encode,
send, collect acknowledgements, and persist the highest contiguously acknowledged sequence number in
``forward_state``. Any failure closes the connection, waits an exponential backoff with jitter, and
resumes after the last acknowledged number — so a killed receiver, a black-holed link or a killed
sensor costs duplicates (same ``otsentry.alert.id``), never a gap. Stream transports without
application acknowledgements (tcp/tls) also resend their ``resend_window`` after a reconnect.

A backlog cap per destination (count and age) is the only way an alert is ever given up: each drop is
counted in ``forward_state.dropped``, recorded in ``forward_drops``, logged at error level, and raised
as a sensor-health alert (at most one per ``health_interval``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from otsentry.logs import get_logger
from otsentry.outputs import health
from otsentry.outputs.alertfields import severity_number
from otsentry.outputs.config import Destination, ForwardConfig
from otsentry.outputs.encode import build_encoder
from otsentry.outputs.state import Drop, ForwardStore, Row, ensure_schema
from otsentry.outputs.transports import HardError, RetryLater, Transport, TransportError, open_transport


def _log() -> Any:
    """A fresh logger per message (messages are rare): picks up logging set up after import, and tests'
    ``structlog.testing.capture_logs`` even when loggers are cached on first use."""
    return get_logger()

CAP_CHECK_INTERVAL = 1.0
PRUNE_EVERY = 1000  # acknowledged alerts between outbox prunes
DRAIN_ON_STOP = 2.0  # seconds to collect outstanding acknowledgements when stopping


@dataclass
class Backoff:
    """Exponential backoff with "equal jitter": half the step fixed, half random."""

    initial: float
    maximum: float
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        step = min(self.maximum, self.initial * 2 ** min(self.attempt, 30))
        self.attempt += 1
        return step / 2 + self.rng.uniform(0, step / 2)

    def reset(self) -> None:
        self.attempt = 0


class Forwarder:
    """Drains the outbox (or, for a replay, a range of the alerts table) to one destination."""

    def __init__(
        self,
        dest: Destination,
        db_path: str | Path,
        *,
        observer_name: str | None = None,
        peers: tuple[str, ...] | None = None,
        poll_interval: float = 0.2,
        health_interval: float = 60.0,
        transport_factory: Callable[[Destination], Transport] = open_transport,
        replay: tuple[int, int] | None = None,
        prune_keep: int | None = None,
    ) -> None:
        self.dest = dest
        self.db_path = Path(db_path)
        self.observer_name = observer_name
        self.peers = peers or (dest.name,)  # destinations that must all acknowledge before pruning
        self.poll_interval = poll_interval
        self.health_interval = health_interval
        self.transport_factory = transport_factory
        self.replay = replay  # (first seq, last seq) resent from the alerts table, state not persisted
        # outbox rows kept below the slowest destination: the largest resend window of all of them
        self.prune_keep = dest.resend_window if prune_keep is None else prune_keep
        self.encode = build_encoder(dest)
        self.backoff = Backoff(dest.backoff_initial, dest.backoff_max)
        self.transport: Transport | None = None
        self.store: ForwardStore | None = None
        self.order: deque[tuple[int, bool]] = deque()  # (seq, filtered) handed out, not yet acknowledged
        self.acked = 0
        self.cursor = 0
        self.unclean = False  # resend the window on the next connect
        self.last_progress = time.monotonic()
        self.next_cap_check = 0.0
        self.since_prune = 0
        self.pending_drops: list[Drop] = []
        self.last_health = -1e9
        self.sent_total = 0
        self.last_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Forward until ``stop`` is set (or, for a replay, until the range is acknowledged)."""
        ensure_schema(self.db_path)
        self.store = ForwardStore(self.db_path)
        try:
            self._start()
            while not stop.is_set() and not self.replay_done():
                try:
                    self._cycle(stop)
                except RetryLater as exc:
                    self._busy(exc, stop)
                except HardError as exc:
                    self._failed(exc, stop, hard=True)
                    if self.replay is not None:
                        break  # a replay is interactive: report the refusal instead of waiting
                except TransportError as exc:
                    self._failed(exc, stop, hard=False)
                except sqlite3.Error as exc:  # a locked or busy database: wait and go on
                    _log().warning("forward.database", destination=self.dest.name, error=str(exc))
                    stop.wait(self.poll_interval)
                except Exception as exc:  # a bug must not stop forwarding silently
                    _log().exception("forward.unexpected", destination=self.dest.name)
                    self._failed(TransportError(f"unexpected: {exc!r}"), stop, hard=False)
            self._shutdown()
        finally:
            self.store.close()
            self.store = None

    def replay_done(self) -> bool:
        return self.replay is not None and self.acked >= self.replay[1]

    def _start(self) -> None:
        assert self.store is not None
        if self.replay is not None:
            self.acked = self.cursor = self.replay[0] - 1
            return
        state = self.store.ensure(self.dest.name)
        self.acked = self.cursor = int(state["acked_seq"])
        self.unclean = state["status"] not in ("new", "stopped")
        _log().info("forward.start", destination=self.dest.name, transport=self.dest.transport,
                    acked_seq=self.acked, resume_after_crash=self.unclean)

    def _shutdown(self) -> None:
        if self.transport is not None:
            deadline = time.monotonic() + DRAIN_ON_STOP
            with contextlib.suppress(TransportError):
                while self.order and time.monotonic() < deadline:
                    self._advance(self.transport.poll(0.05))
            self.transport.close()
            self.transport = None
        if self.replay is None and self.store is not None:
            self._flush_health(force=True)
            self.store.set_status(self.dest.name, "stopped")
        _log().info("forward.stop", destination=self.dest.name, acked_seq=self.acked)

    # -- one round ---------------------------------------------------------------------------------

    def _connect(self) -> None:
        transport = self.transport_factory(self.dest)
        try:
            transport.open()
        except BaseException:
            transport.close()
            raise
        self.transport = transport
        self.order.clear()
        resend = transport.resend_after_reconnect if self.unclean else 0
        floor = self.replay[0] - 1 if self.replay else 0
        self.cursor = max(self.acked - resend, floor)
        self.unclean = False
        self.last_progress = time.monotonic()
        if self.replay is None:
            assert self.store is not None
            self.store.set_status(self.dest.name, "running")
        _log().info("forward.connected", destination=self.dest.name, resume_after=self.cursor)

    def _fetch(self, after: int, limit: int) -> list[Row]:
        assert self.store is not None
        if self.replay is not None:
            return self.store.fetch_alerts(after, self.replay[1], limit)
        return self.store.fetch_outbox(after, limit)

    def _cycle(self, stop: threading.Event) -> None:
        if self.transport is None:
            self._connect()
        transport = self.transport
        assert transport is not None
        now = time.monotonic()
        if self.replay is None and now >= self.next_cap_check:
            self.next_cap_check = now + CAP_CHECK_INTERVAL
            self._enforce_caps()
        room = transport.room()
        fetched = 0
        if room > 0:
            rows = self._fetch(self.cursor, min(room, self.dest.batch_size))
            if rows:
                items = []
                for row in rows:
                    try:
                        alert = orjson.loads(row.doc)
                        filtered = severity_number(alert) < self.dest.min_severity
                        if not filtered:
                            items.append((row.seq, self.encode(alert)))
                    except Exception as exc:  # one unreadable alert must not block the ones after it
                        self._unsendable(row.seq, f"could not encode: {exc!r}"[:300])
                        filtered = True
                    self.order.append((row.seq, filtered))
                self.cursor = rows[-1].seq
                fetched = len(rows)
                if items:
                    transport.send(items)
        busy = fetched > 0 and transport.room() > 0
        waiting = transport.pending() > 0
        self._advance(transport.poll(0.0 if busy else (self.poll_interval if waiting else 0.0)))
        if transport.pending() and time.monotonic() - self.last_progress > self.dest.ack_timeout:
            raise TransportError(f"no acknowledgement for {self.dest.ack_timeout:g} s")
        if not fetched and not transport.pending():
            stop.wait(self.poll_interval)

    def _advance(self, transport_acked: int | None) -> None:
        """Move the acknowledged pointer over what the transport confirmed (and filtered alerts)."""
        sent = filtered = 0
        newest = None
        order = self.order
        while order and (order[0][1] or (transport_acked is not None and order[0][0] <= transport_acked)):
            seq, was_filtered = order.popleft()
            newest = seq
            if was_filtered:
                filtered += 1
            else:
                sent += 1
        if newest is None:
            return
        self.last_progress = time.monotonic()
        self.backoff.reset()
        self.sent_total += sent
        self.last_error = None
        if newest <= self.acked:
            return  # a resent window message
        self.acked = newest
        if self.replay is not None:
            return
        assert self.store is not None
        self.store.save_progress(self.dest.name, newest, sent, filtered)
        self.since_prune += sent + filtered
        if self.since_prune >= PRUNE_EVERY:
            self.since_prune = 0
            self.store.prune(self.peers, max(self.prune_keep, 0))

    # -- failures ----------------------------------------------------------------------------------

    def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self.order.clear()

    def _failed(self, exc: TransportError, stop: threading.Event, hard: bool) -> None:
        self._close_transport()
        self.unclean = True
        self.last_error = str(exc)
        delay = self.dest.backoff_max if hard else self.backoff.next_delay()
        logger = _log()
        (logger.error if hard else logger.warning)(
            "forward.failed", destination=self.dest.name, error=str(exc), hard=hard, retry_in=round(delay, 2),
            acked_seq=self.acked,
        )
        if self.replay is None and self.store is not None:
            self.store.record_failure(self.dest.name, str(exc), "error" if hard else "backoff")
            with contextlib.suppress(sqlite3.Error):
                self._enforce_caps()
        if not (hard and self.replay is not None):
            stop.wait(delay)

    def _busy(self, exc: RetryLater, stop: threading.Event) -> None:
        """The receiver is busy: keep the connection, resend after what it accepted, later."""
        assert self.transport is not None
        accepted = self.transport.last_accepted
        resume = max(accepted if accepted is not None else self.acked, self.acked)
        while self.order and self.order[-1][0] > resume:
            self.order.pop()
        self.cursor = resume
        delay = exc.after if exc.after is not None else self.backoff.next_delay()
        self.last_error = str(exc)
        _log().warning("forward.busy", destination=self.dest.name, error=str(exc), retry_in=round(delay, 2))
        if self.replay is None and self.store is not None:
            self.store.record_failure(self.dest.name, str(exc), "backoff")
        self.last_progress = time.monotonic()
        stop.wait(delay)

    # -- backlog caps ------------------------------------------------------------------------------

    def _enforce_caps(self) -> None:
        assert self.store is not None
        count, oldest = self.store.backlog(self.acked)
        if not count:
            return
        cut, reason = None, ""
        if count > self.dest.max_backlog:
            # Leave room for the health alert that will report this drop: without it, that alert took
            # the backlog over the cap again, and each health alert cost one more real alert.
            room = 0 if self.pending_drops else 1  # one health alert reports all pending drops
            cut = self.store.cut_for_size(self.acked, min(count, count - self.dest.max_backlog + room))
            reason = f"backlog over {self.dest.max_backlog} alerts"
        limit = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.dest.max_age)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
        if oldest is not None and oldest < limit:
            age_cut = self.store.cut_for_age(self.acked, limit)
            if age_cut is not None and (cut is None or age_cut > cut):
                cut, reason = age_cut, f"waiting longer than {self.dest.max_age:g} s"
        if cut is not None:
            self._drop(cut, reason)
        self._flush_health()

    def _drop(self, cut: int, reason: str) -> None:
        assert self.store is not None
        drop = self.store.drop(self.dest.name, self.acked, cut, reason)
        if drop is None:
            return
        self.acked = max(self.acked, cut)
        self.cursor = max(self.cursor, cut)
        while self.order and self.order[0][0] <= cut:
            self.order.popleft()
        self.pending_drops.append(drop)
        _log().error("forward.dropped", destination=self.dest.name, count=drop.count,
                     first_seq=drop.first_seq, last_seq=drop.last_seq, reason=reason)

    def _unsendable(self, seq: int, reason: str) -> None:
        if self.replay is None:
            assert self.store is not None
            self.pending_drops.append(self.store.record_unsendable(self.dest.name, seq, reason))
        _log().error("forward.dropped", destination=self.dest.name, count=1, first_seq=seq, last_seq=seq,
                     reason=reason)

    def _flush_health(self, force: bool = False) -> None:
        if not self.pending_drops:
            return
        now = time.monotonic()
        if not force and now - self.last_health < self.health_interval:
            return
        assert self.store is not None
        alert = health.drop_alert(self.dest.name, self.pending_drops, self.observer_name)
        seq = health.raise_alert(self.db_path, alert)
        self.store.mark_reported(self.dest.name, seq)
        _log().error("forward.health_alert", destination=self.dest.name, alert_seq=seq,
                     dropped=alert["otsentry.forward.dropped"])
        self.pending_drops = []
        self.last_health = now


class ForwardService:
    """All enabled destinations of a config, one thread each, one process per database (a file lock)."""

    def __init__(self, config: ForwardConfig, db_path: str | Path,
                 transport_factory: Callable[[Destination], Transport] = open_transport) -> None:
        self.config = config
        self.db_path = Path(db_path)
        self.transport_factory = transport_factory
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.forwarders: list[Forwarder] = []
        self._lock_file: Any = None

    def start(self) -> None:
        ensure_schema(self.db_path)
        self._lock_file = open(f"{self.db_path}.forward.lock", "w")  # noqa: SIM115 - held while running
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock_file.close()
            raise RuntimeError(f"another forwarder is already running on {self.db_path}") from exc
        peers = tuple(d.name for d in self.config.enabled)
        keep = max(d.resend_window for d in self.config.enabled) if peers else 0
        for dest in self.config.enabled:
            forwarder = Forwarder(
                dest, self.db_path, observer_name=self.config.observer_name, peers=peers,
                poll_interval=self.config.poll_interval, health_interval=self.config.health_interval,
                transport_factory=self.transport_factory, prune_keep=keep,
            )
            thread = threading.Thread(target=forwarder.run, args=(self.stop_event,), daemon=True,
                                      name=f"forward-{dest.name}")
            self.forwarders.append(forwarder)
            self.threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    @contextlib.contextmanager
    def running(self) -> Iterator[ForwardService]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
