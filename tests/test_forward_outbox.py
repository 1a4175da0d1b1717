"""The forwarder's bookkeeping: order, resume, filters, prune, backlog caps with drop accounting, CLI."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
import structlog
from click.testing import CliRunner

from forward_helpers import acked, fill_db, forward_state, make_alert, wait_for
from otsentry.detect.alerts import AlertStore
from otsentry.outputs.cli import forward
from otsentry.outputs.config import Destination, parse_destination
from otsentry.outputs.forwarder import Backoff, Forwarder, ForwardService
from otsentry.outputs.health import RULE_ID
from otsentry.outputs.state import ForwardStore, ensure_schema
from otsentry.outputs.transports.base import HardError, Item, RetryLater, Transport, TransportError

FAST = {"backoff_initial": 0.01, "backoff_max": 0.05}


class FakeTransport(Transport):
    """Records what it was given; acknowledges as told."""

    def __init__(self, dest: Destination, log: list[int], *, ack: bool = True, resend: int = 0,
                 fail_after: int | None = None, busy_once_at: int | None = None,
                 hard: bool = False) -> None:
        super().__init__(dest)
        self.log, self.ack, self.fail_after, self.hard = log, ack, fail_after, hard
        self.busy_once_at = busy_once_at
        self.resend_after_reconnect = resend

    def open(self) -> None:
        if self.hard:
            raise HardError("invalid token")

    def send(self, items: Sequence[Item]) -> None:
        for seq, _message in items:
            if self.busy_once_at is not None and seq == self.busy_once_at:
                self.busy_once_at = None
                raise RetryLater("busy", after=0.01)
            if self.fail_after is not None and len(self.log) >= self.fail_after:
                self.fail_after = None
                raise TransportError("connection reset")
            self.log.append(seq)
            self.inflight.add((seq,))

    def poll(self, timeout: float) -> int | None:
        if self.ack:
            self.inflight.ack_all()
        return self.inflight.acked

    def close(self) -> None:
        pass


def run_forwarder(forwarder: Forwarder, until: callable, timeout: float = 10.0) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=forwarder.run, args=(stop,))
    thread.start()
    try:
        assert wait_for(until, timeout), "forwarder did not get there in time"
    finally:
        stop.set()
        thread.join(10)


def file_dest(tmp_path: Path, name: str = "file", **extra: object) -> Destination:
    return parse_destination({"name": name, "transport": "file", "path": str(tmp_path / f"{name}.jsonl"),
                              "fsync": False, **FAST, **extra})


def file_seqs(path: Path) -> list[int]:
    return [orjson.loads(line)["otsentry"]["alert"]["seq"] for line in path.read_bytes().splitlines()]


def test_drains_in_order_and_resumes_after_a_clean_stop(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 300)
    dest = file_dest(tmp_path, batch_size=64)
    run_forwarder(Forwarder(dest, db), lambda: acked(db, "file") == 300)
    assert file_seqs(tmp_path / "file.jsonl") == list(range(1, 301))
    state = forward_state(db, "file")
    assert state["status"] == "stopped" and state["sent"] == 300 and state["dropped"] == 0
    fill_db(db, 50, first=301)
    run_forwarder(Forwarder(dest, db), lambda: acked(db, "file") == 350)
    assert file_seqs(tmp_path / "file.jsonl") == list(range(1, 351))  # no duplicate after a clean stop


def test_min_severity_filters_and_counts(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 10)
    fill_db(db, 10, first=11, **{"event.severity": 3, "log.level": "low"})
    fill_db(db, 5, first=21)
    dest = file_dest(tmp_path, min_severity=5)
    run_forwarder(Forwarder(dest, db), lambda: acked(db, "file") == 25)
    assert file_seqs(tmp_path / "file.jsonl") == [*range(1, 11), *range(21, 26)]
    assert forward_state(db, "file")["filtered"] == 10


def test_unclean_restart_resends_the_window_of_unacknowledged_transports(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 100)
    ensure_schema(db)
    store = ForwardStore(db)
    store.ensure("tcp")
    store.save_progress("tcp", 60, 60, 0)  # status 'running' in the database: the last run crashed
    store.close()
    sent: list[int] = []
    dest = parse_destination({"name": "tcp", "transport": "tcp", "port": 9, **FAST})
    forwarder = Forwarder(dest, db, transport_factory=lambda d: FakeTransport(d, sent, resend=10))
    run_forwarder(forwarder, lambda: acked(db, "tcp") == 100)
    assert sent == list(range(51, 101))  # seq 51..60 resent: the documented resend window


def test_failure_resumes_after_the_last_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 200)
    sent: list[int] = []
    transports: list[FakeTransport] = []

    def factory(d: Destination) -> Transport:
        t = FakeTransport(d, sent, fail_after=120 if not transports else None)
        transports.append(t)
        return t

    dest = parse_destination({"name": "relp", "transport": "relp", "port": 9, "ack_timeout": 0.3, **FAST})
    run_forwarder(Forwarder(dest, db, transport_factory=factory), lambda: acked(db, "relp") == 200)
    assert sorted(set(sent)) == list(range(1, 201))
    state = forward_state(db, "relp")
    assert state["failures"] >= 1 and "connection reset" in state["last_error"]


def test_no_acknowledgement_means_reconnect_and_resend(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 20)
    sent: list[int] = []
    made: list[int] = []

    def factory(d: Destination) -> Transport:
        made.append(1)
        return FakeTransport(d, sent, ack=len(made) > 1)  # the first connection never acknowledges

    dest = parse_destination({"name": "relp", "transport": "relp", "port": 9, "ack_timeout": 0.2, **FAST})
    run_forwarder(Forwarder(dest, db, transport_factory=factory), lambda: acked(db, "relp") == 20)
    assert sent == [*range(1, 21), *range(1, 21)]
    assert "no acknowledgement" in forward_state(db, "relp")["last_error"]


def test_busy_receiver_gets_the_rest_later_without_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 50)
    sent: list[int] = []
    dest = parse_destination({"name": "hec", "transport": "hec", "url": "http://x", "token": "t", **FAST})
    forwarder = Forwarder(dest, db, transport_factory=lambda d: FakeTransport(d, sent, busy_once_at=31))
    run_forwarder(forwarder, lambda: acked(db, "hec") == 50)
    assert sent == list(range(1, 51))
    assert forward_state(db, "hec")["failures"] == 1


def test_hard_error_is_reported_in_status(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 5)
    dest = parse_destination({"name": "hec", "transport": "hec", "url": "http://x", "token": "t", **FAST})
    forwarder = Forwarder(dest, db, transport_factory=lambda d: FakeTransport(d, [], hard=True))
    run_forwarder(forwarder, lambda: forward_state(db, "hec").get("status") == "error")
    state = forward_state(db, "hec")
    assert state["last_error"] == "invalid token" and state["acked_seq"] == 0


def test_outbox_pruned_only_when_every_destination_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 3000)
    ensure_schema(db)
    store = ForwardStore(db)
    store.ensure("a")
    store.ensure("b")
    store.save_progress("a", 3000, 3000, 0)
    store.save_progress("b", 1500, 1500, 0)
    assert store.prune(["a", "b"], keep=100) == 1400
    assert store.prune(["a", "b", "never-ran"], keep=0) == 0  # a destination without state holds it back
    remaining = store.conn.execute("SELECT MIN(seq), COUNT(*) FROM outbox").fetchone()
    store.close()
    assert remaining == (1401, 1600)


def test_backlog_cap_drops_are_counted_logged_and_alerted(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 500)
    dest = parse_destination({"name": "dead", "transport": "tcp", "host": "127.0.0.1", "port": 9,
                              "max_backlog": 100, "connect_timeout": 0.2, **FAST})
    forwarder = Forwarder(dest, db, health_interval=0, observer_name="sensor-1")
    with structlog.testing.capture_logs() as logs:
        # 401 go, not 400: the health alert that reports the drop needs its place within the cap.
        run_forwarder(forwarder, lambda: forward_state(db, "dead").get("dropped") == 401)
        time.sleep(0.3)  # more caps checks: the health alert must not push the backlog over again
    state = forward_state(db, "dead")
    assert state["acked_seq"] == 401 and state["dropped"] == 401 and state["status"] in ("backoff", "stopped")
    store = ForwardStore(db)
    drops = store.drops("dead")
    store.close()
    assert [(d["first_seq"], d["last_seq"], d["count"]) for d in drops] == [(1, 401, 401)]
    assert "backlog over 100" in drops[0]["reason"] and drops[0]["alert_seq"] == 501
    dropped_logs = [e for e in logs if e["event"] == "forward.dropped"]
    assert len(dropped_logs) == 1
    assert dropped_logs[0]["count"] == 401 and dropped_logs[0]["log_level"] == "error"
    alerts = AlertStore(db)
    health = alerts.get("501")
    outbox = alerts.outbox(after=500)
    alerts.close()
    assert health is not None and health["rule_id"] == RULE_ID and health["severity"] == 7
    assert "dropped 401 alert(s) (seq 1–401)" in health["message"]
    assert "forward replay --since 1" in health["message"]
    assert [seq for seq, _ in outbox] == [501]  # the health alert is itself queued for the SIEMs


def test_age_cap_drops_old_alerts(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 30)
    ensure_schema(db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE outbox SET created = '2000-01-01T00:00:00.000000Z' WHERE seq <= 20")
    conn.close()
    dest = parse_destination({"name": "dead", "transport": "tcp", "port": 9, "max_age": "1h",
                              "connect_timeout": 0.2, **FAST})
    forwarder = Forwarder(dest, db, health_interval=0)
    run_forwarder(forwarder, lambda: forward_state(db, "dead").get("dropped") == 20)
    store = ForwardStore(db)
    assert "longer than 3600 s" in store.drops("dead")[0]["reason"]
    store.close()


def test_backoff_grows_with_jitter_and_resets() -> None:
    backoff = Backoff(0.5, 8.0)
    delays = [backoff.next_delay() for _ in range(7)]
    for attempt, delay in enumerate(delays):
        step = min(8.0, 0.5 * 2 ** attempt)
        assert step / 2 <= delay <= step
    assert len({round(d, 6) for d in delays}) == len(delays)
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_one_forwarding_process_per_database(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 1)
    config = parse_config_for(tmp_path)
    first = ForwardService(config, db)
    first.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            ForwardService(config, db).start()
    finally:
        first.stop()


def parse_config_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    from otsentry.outputs.config import parse_forward_config

    return parse_forward_config({"destination": [{"name": "file", "transport": "file",
                                                   "path": str(tmp_path / "out.jsonl")}]})


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "otsentry.toml"
    path.write_text(
        "[[forward.destination]]\n"
        f'name = "file"\ntransport = "file"\npath = "{tmp_path / "cli.jsonl"}"\n'
        '[[forward.destination]]\nname = "closed"\ntransport = "tcp"\nport = 9\n'
        "connect_timeout = 0.5\n" + extra
    )
    return path


def test_cli_status_replay_and_test(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 40)
    config = write_config(tmp_path)
    runner = CliRunner()
    base = ["--config", str(config), "--db", str(db)]

    result = runner.invoke(forward, [*base, "status", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["destination"]: r for r in orjson.loads(result.output)}
    assert rows["file"]["status"] == "never run" and rows["file"]["latest_seq"] == 40

    result = runner.invoke(forward, [*base, "replay", "--since", "31", "--dest", "file"])
    assert result.exit_code == 0, result.output
    assert "resent seq 31..40: done, 10 sent" in result.output
    assert file_seqs(tmp_path / "cli.jsonl") == list(range(31, 41))

    result = runner.invoke(forward, [*base, "test", "file"])
    assert result.exit_code == 0 and "OK" in result.output
    test_line = orjson.loads((tmp_path / "cli.jsonl").read_bytes().splitlines()[-1])
    assert test_line["rule"]["id"] == "otsentry-forward-test"
    assert test_line["otsentry"]["alert"]["test"] is True
    assert "not a security event" in test_line["message"]

    result = runner.invoke(forward, [*base, "test", "closed"])
    assert result.exit_code == 1 and "FAILED" in result.output and "refused" in result.output

    result = runner.invoke(forward, [*base, "test", "nope"])
    assert result.exit_code == 2 and "no destination named 'nope'" in result.output

    result = runner.invoke(forward, [*base, "status"])
    assert result.exit_code == 0 and "closed" in result.output


def test_status_shows_lag_and_backlog(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 40)
    ensure_schema(db)
    store = ForwardStore(db)
    store.ensure("file")
    store.save_progress("file", 25, 25, 0)
    store.close()
    result = CliRunner().invoke(forward, ["--config", str(write_config(tmp_path)), "--db", str(db), "status",
                                          "--json"])
    row = {r["destination"]: r for r in orjson.loads(result.output)}["file"]
    assert (row["acked_seq"], row["lag"], row["backlog"]) == (25, 15, 15)


def test_file_transport_reopens_after_rotation_and_keeps_lines_whole(tmp_path: Path) -> None:
    from otsentry.outputs.transports.jsonfile import JsonLinesTransport

    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b'{"cut short')  # a crash in the middle of a line
    transport = JsonLinesTransport(file_dest(tmp_path, path=str(path)))
    transport.open()
    transport.send([(1, b'{"a":1}')])
    path.rename(tmp_path / "alerts.jsonl.1")
    transport.send([(2, b'{"a":2}')])
    transport.close()
    assert (tmp_path / "alerts.jsonl.1").read_bytes() == b'{"cut short\n{"a":1}\n'
    assert path.read_bytes() == b'{"a":2}\n'
    assert transport.inflight.acked == 2


def test_test_alert_is_marked(tmp_path: Path) -> None:
    from otsentry.outputs.probe import make_test_alert

    alert = make_test_alert("siem", "sensor-1")
    assert alert["otsentry.alert.test"] is True and alert["otsentry.alert.seq"] == 0
    assert alert["event.severity"] == 1 and "TEST ALERT" in alert["message"]
    assert make_alert(1)["otsentry.alert.seq"] == 1


def test_an_unreadable_alert_is_counted_not_blocking(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 10)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE alerts SET doc = '{not json' WHERE seq = 4")
    conn.close()
    dest = file_dest(tmp_path)
    run_forwarder(Forwarder(dest, db, health_interval=0), lambda: acked(db, "file") == 10)
    assert file_seqs(tmp_path / "file.jsonl") == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert forward_state(db, "file")["dropped"] == 1
    store = ForwardStore(db)
    drop = store.drops("file")[0]
    store.close()
    assert (drop["first_seq"], drop["count"], drop["alert_seq"]) == (4, 1, 11)
    assert "could not encode" in drop["reason"]


def test_replay_stops_at_a_hard_error(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 5)
    dest = parse_destination({"name": "hec", "transport": "hec", "url": "http://x", "token": "t",
                              "backoff_max": 30})
    refusing = lambda d: FakeTransport(d, [], hard=True)  # noqa: E731
    forwarder = Forwarder(dest, db, replay=(1, 5), transport_factory=refusing)
    stop = threading.Event()
    timer = threading.Timer(5, stop.set)
    timer.start()
    forwarder.run(stop)
    timer.cancel()
    assert not stop.is_set() and forwarder.acked == 0 and forwarder.last_error == "invalid token"


def test_a_destination_behind_the_pruned_outbox_catches_up_from_the_alerts_table(tmp_path: Path) -> None:
    db = tmp_path / "sensor.db"
    fill_db(db, 100)
    ensure_schema(db)
    store = ForwardStore(db)
    store.ensure("file")
    store.save_progress("file", 20, 20, 0)
    store.ensure("other")
    store.save_progress("other", 100, 100, 0)
    assert store.prune(["other"], keep=10) == 90  # "file" was disabled while "other" went on
    store.close()
    run_forwarder(Forwarder(file_dest(tmp_path), db), lambda: acked(db, "file") == 100)
    assert file_seqs(tmp_path / "file.jsonl") == list(range(21, 101))
