"""The transport contract the forwarder drives, and the in-order acknowledgement bookkeeping."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Sequence

from otsentry.outputs.config import Destination

Item = tuple[int, bytes]  # (sequence number, encoded message)


class TransportError(Exception):
    """The connection failed or stalled: the forwarder reconnects after a backoff and resends."""


class HardError(TransportError):
    """The receiver refuses us (invalid token, wrong index, rejected certificate): needs an operator.

    Reported in ``forward status``; retried only every ``backoff_max`` seconds.
    """


class RetryLater(TransportError):
    """The receiver is busy (HEC 503): keep the connection, wait, then send what it did not accept."""

    def __init__(self, message: str, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


class InFlight:
    """Sequence numbers sent and not yet acknowledged, in send order.

    ``acked`` is the highest sequence number below which everything sent on this connection was
    acknowledged; receivers that acknowledge out of order (HEC ack ids) are handled by :meth:`ack`.
    """

    def __init__(self) -> None:
        self._queue: deque[int] = deque()
        self._done: set[int] = set()
        self.acked: int | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, seqs: Iterable[int]) -> None:
        self._queue.extend(seqs)

    def ack(self, seqs: Iterable[int]) -> None:
        self._done.update(seqs)
        queue, done = self._queue, self._done
        while queue and queue[0] in done:
            done.discard(seq := queue.popleft())
            self.acked = seq

    def ack_all(self) -> None:
        if self._queue:
            self.acked = self._queue[-1]
        self._queue.clear()
        self._done.clear()

    @property
    def last(self) -> int | None:
        return self._queue[-1] if self._queue else self.acked


class Transport(ABC):
    #: messages sent again after a reconnect (transports whose acknowledgements do not mean "stored")
    resend_after_reconnect: int = 0
    #: true when an acknowledgement means the receiver has the message (RELP, HEC acks, fsync)
    acknowledged: bool = True

    def __init__(self, dest: Destination) -> None:
        self.dest = dest
        self.inflight = InFlight()

    @abstractmethod
    def open(self) -> None:
        """Connect (raises TransportError); a fresh connection starts with nothing in flight."""

    @abstractmethod
    def send(self, items: Sequence[Item]) -> None:
        """Send messages in order (raises TransportError; RetryLater after a partial send)."""

    @abstractmethod
    def poll(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for acknowledgements; the highest contiguously acknowledged seq."""

    @abstractmethod
    def close(self) -> None:
        """Close quietly (never raises)."""

    def room(self) -> int:
        """How many more messages may be sent before acknowledgements come back."""
        return max(0, self.dest.window - len(self.inflight))

    def pending(self) -> int:
        return len(self.inflight)

    @property
    def last_accepted(self) -> int | None:
        """The last seq the receiver took (sent or acknowledged); resend after it on RetryLater."""
        return self.inflight.last
