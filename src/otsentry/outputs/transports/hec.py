"""Splunk HTTP Event Collector: batched ``POST /services/collector/event``, optional indexer acks.

Source: Splunk docs "Format events for HTTP Event Collector", "About HTTP Event Collector Indexer
Acknowledgment" and "Troubleshoot HTTP Event Collector" (status codes). ``Authorization: Splunk <token>``;
a batch is concatenated event objects. With acknowledgement on, every request carries the
``X-Splunk-Request-Channel`` GUID, the answer holds an ``ackId``, and ``POST /services/collector/ack``
with ``{"acks": [ids]}`` answers ``{"acks": {"id": true|false}}`` — true once indexed (replicated).
Error codes: 1 token disabled, 2 token required, 3 invalid authorization, 4 invalid token (401/403),
6 invalid data format, 7 incorrect index (400), 9 server busy (503), 10/11 channel missing/invalid,
14 ACK disabled (400). Busy answers are retried after a backoff; refusals of the token, index or
channel are hard errors shown in ``forward status``.
"""

from __future__ import annotations

import http.client
import time
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

import orjson

from otsentry.outputs.transports import net
from otsentry.outputs.transports.base import HardError, Item, RetryLater, Transport, TransportError

EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"
HARD_CODES = {1: "token disabled", 2: "token required", 3: "invalid authorization", 4: "invalid token",
              7: "incorrect index", 10: "data channel is missing", 11: "invalid data channel",
              14: "ACK is disabled on the token", 16: "query string authorization is not enabled"}
ACK_POLL_INTERVAL = 0.25


class HecTransport(Transport):
    def __init__(self, dest) -> None:  # type: ignore[no-untyped-def]
        super().__init__(dest)
        parts = urlsplit(dest.url)
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.https else 80)
        base = parts.path.rstrip("/")
        for suffix in (EVENT_PATH, "/services/collector"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
                break
        self.base = base
        self.token = dest.hec_token()
        self.channel = dest.channel or str(uuid.uuid4())
        self.conn: http.client.HTTPConnection | None = None
        self.pending_acks: dict[int, list[int]] = {}
        self.next_ack_poll = 0.0
        self.accepted: int | None = None

    # -- http --------------------------------------------------------------------------------------

    def open(self) -> None:
        if self.https:
            context = net.tls_context(self.dest)
            self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.dest.write_timeout,
                                                    context=context)
        else:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.dest.write_timeout)
        self.pending_acks.clear()
        self.accepted = None

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Splunk {self.token}", "Content-Type": "application/json"}
        if self.dest.hec_acks:
            headers["X-Splunk-Request-Channel"] = self.channel
        return headers

    def _post(self, path: str, body: bytes) -> tuple[int, dict, http.client.HTTPResponse]:
        if self.conn is None:
            raise TransportError("not connected")
        try:
            self.conn.request("POST", self.base + path, body=body, headers=self._headers())
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise HardError(f"HEC TLS: server certificate rejected: {exc}") from exc
            raise TransportError(f"HEC {path}: {exc or type(exc).__name__}") from exc
        try:
            answer = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            answer = {"text": raw[:200].decode(errors="replace")}
        return response.status, answer if isinstance(answer, dict) else {}, response

    def _check(self, status: int, answer: dict, response: http.client.HTTPResponse) -> None:
        if status == 200:
            return
        code = answer.get("code")
        text = f"HEC HTTP {status} code {code}: {answer.get('text', '')}"
        if status == 503:
            retry_after = response.getheader("Retry-After")
            raise RetryLater(text, float(retry_after) if retry_after and retry_after.isdigit() else None)
        if status in (401, 403) or code in HARD_CODES:
            raise HardError(f"{text} ({HARD_CODES.get(code, 'refused')})")
        if status == 400:
            raise HardError(text)  # our events are valid JSON: a 400 needs someone to look
        raise TransportError(text)

    # -- transport ---------------------------------------------------------------------------------

    def send(self, items: Sequence[Item]) -> None:
        for start in range(0, len(items), self.dest.batch_size):
            chunk = items[start:start + self.dest.batch_size]
            status, answer, response = self._post(EVENT_PATH, b"\n".join(message for _, message in chunk))
            self._check(status, answer, response)
            seqs = [seq for seq, _ in chunk]
            self.inflight.add(seqs)
            self.accepted = seqs[-1]
            if self.dest.hec_acks:
                ack_id = answer.get("ackId")
                if not isinstance(ack_id, int):
                    raise HardError("HEC answered without ackId: enable indexer acknowledgement on the token")
                self.pending_acks[ack_id] = seqs
            else:
                self.inflight.ack(seqs)

    def poll(self, timeout: float) -> int | None:
        if not self.pending_acks:
            return self.inflight.acked
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if now >= self.next_ack_poll:
                self.next_ack_poll = now + ACK_POLL_INTERVAL
                self._poll_acks()
                if not self.pending_acks:
                    break
            wait = min(self.next_ack_poll, deadline) - time.monotonic()
            if wait <= 0 and time.monotonic() >= deadline:
                break
            time.sleep(max(0.0, wait))
        return self.inflight.acked

    def _poll_acks(self) -> None:
        body = orjson.dumps({"acks": sorted(self.pending_acks)})
        status, answer, response = self._post(f"{ACK_PATH}?channel={self.channel}", body)
        if status == 503:
            return  # busy: ask again at the next poll
        self._check(status, answer, response)
        acks = answer.get("acks")
        if not isinstance(acks, dict):
            raise TransportError(f"HEC ack answer without acks: {answer}")
        for key, done in acks.items():
            if done is True and key.isdigit() and int(key) in self.pending_acks:
                self.inflight.ack(self.pending_acks.pop(int(key)))

    @property
    def last_accepted(self) -> int | None:
        return self.accepted if self.accepted is not None else self.inflight.acked

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.pending_acks.clear()
