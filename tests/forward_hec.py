"""A Splunk HTTP Event Collector stand-in implementing the documented endpoints and answers.

``POST /services/collector/event`` (``Authorization: Splunk <token>``, concatenated event objects;
with acknowledgement on, the ``X-Splunk-Request-Channel`` header is required and the answer carries an
``ackId``), ``POST /services/collector/ack?channel=…`` with ``{"acks": [ids]}`` → ``{"acks": {"id": bool}}``.
Answers and codes from the Splunk docs: 0 Success, 2 Token is required (401), 4 Invalid token (403),
6 Invalid data format (400), 9 Server is busy (503), 10 Data channel is missing (400), 11 Invalid data
channel (400), 12 Event field is required (400), 14 ACK is disabled (400).
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeHec:
    def __init__(self, token: str = "11111111-2222-3333-4444-555555555555", acks: bool = False,
                 certfile: Path | None = None, keyfile: Path | None = None) -> None:
        self.token = token
        self.acks = acks
        self.busy = 0  # answer this many event requests with 503
        self.ack_after_polls = 0  # an ackId turns true after this many ack polls that asked for it
        self.lose_acks: set[int] = set()  # these ackIds never turn true; their events are never indexed
        self.hold_acks = threading.Event()  # while set, no ack turns true
        self.indexed: list[dict[str, Any]] = []  # events a search would find
        self.requests: list[tuple[str, int]] = []  # (path, status)
        self._pending: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(dict)
        self._polls: dict[tuple[str, int], int] = defaultdict(int)
        self._next_ack: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.https = certfile is not None
        if certfile is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"{'https' if self.https else 'http'}://localhost:{port}"

    def __enter__(self) -> FakeHec:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def seqs(self) -> list[int]:
        with self.lock:
            return [e["event"]["otsentry"]["alert"]["seq"] for e in self.indexed]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                with hec.lock:
                    hec.requests.append((urlsplit(self.path).path, status))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                parts = urlsplit(self.path)
                auth = self.headers.get("Authorization")
                if not auth:
                    return self.answer(401, {"text": "Token is required", "code": 2})
                if auth != f"Splunk {hec.token}":
                    return self.answer(403, {"text": "Invalid token", "code": 4})
                channel = self.headers.get("X-Splunk-Request-Channel") or parse_qs(parts.query).get(
                    "channel", [None])[0]
                if parts.path == "/services/collector/event":
                    return self.event(body, channel)
                if parts.path == "/services/collector/ack":
                    return self.ack(body, channel)
                return self.answer(404, {"text": "The requested URL was not found on this server."})

            def event(self, body: bytes, channel: str | None) -> None:
                with hec.lock:
                    if hec.busy > 0:
                        hec.busy -= 1
                        busy = True
                    else:
                        busy = False
                if busy:
                    return self.answer(503, {"text": "Server is busy", "code": 9})
                if hec.acks:
                    if not channel:
                        return self.answer(400, {"text": "Data channel is missing", "code": 10})
                    try:
                        uuid.UUID(channel)
                    except ValueError:
                        return self.answer(400, {"text": "Invalid data channel", "code": 11})
                decoder, text, pos, events = json.JSONDecoder(), body.decode(), 0, []
                while pos < len(text):
                    while pos < len(text) and text[pos].isspace():
                        pos += 1
                    if pos >= len(text):
                        break
                    try:
                        event, pos = decoder.raw_decode(text, pos)
                    except json.JSONDecodeError:
                        return self.answer(400, {"text": "Invalid data format", "code": 6,
                                                 "invalid-event-number": len(events)})
                    if "event" not in event:
                        return self.answer(400, {"text": "Event field is required", "code": 12})
                    events.append(event)
                if not events:
                    return self.answer(400, {"text": "No data", "code": 5})
                if not hec.acks:
                    with hec.lock:
                        hec.indexed.extend(events)
                    return self.answer(200, {"text": "Success", "code": 0})
                with hec.lock:
                    ack_id = hec._next_ack[channel]
                    hec._next_ack[channel] += 1
                    hec._pending[channel][ack_id] = events
                return self.answer(200, {"text": "Success", "code": 0, "ackId": ack_id})

            def ack(self, body: bytes, channel: str | None) -> None:
                if not hec.acks:
                    return self.answer(400, {"text": "ACK is disabled", "code": 14})
                if not channel:
                    return self.answer(400, {"text": "Data channel is missing", "code": 10})
                asked = json.loads(body or b"{}").get("acks", [])
                result = {}
                with hec.lock:
                    pending = hec._pending[channel]
                    for ack_id in asked:
                        hec._polls[(channel, ack_id)] += 1
                        done = (ack_id in pending and ack_id not in hec.lose_acks
                                and not hec.hold_acks.is_set()
                                and hec._polls[(channel, ack_id)] > hec.ack_after_polls)
                        if done:
                            hec.indexed.extend(pending.pop(ack_id))
                        result[str(ack_id)] = done
                return self.answer(200, {"acks": result})

        return Handler
