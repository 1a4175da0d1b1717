"""ECS JSON lines file for Filebeat / Elastic Agent: one alert per line, acknowledged after fsync.

The file is opened in append mode and reopened when it was rotated away (its inode changed), so
logrotate's ``create`` mode works without copytruncate.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from otsentry.outputs.transports.base import Item, Transport, TransportError


class JsonLinesTransport(Transport):
    def __init__(self, dest) -> None:  # type: ignore[no-untyped-def]
        super().__init__(dest)
        self.path = Path(dest.path)
        self.file: BinaryIO | None = None
        self.inode: int | None = None

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "ab")  # noqa: SIM115 - kept open across batches
            self.inode = os.fstat(self.file.fileno()).st_ino
            if self.file.tell() > 0 and not self._ends_with_newline():
                self.file.write(b"\n")  # a line cut short by a crash stays alone on its line
        except OSError as exc:
            raise TransportError(f"open {self.path}: {exc}") from exc

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def _rotated(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self.inode
        except FileNotFoundError:
            return True

    def send(self, items: Sequence[Item]) -> None:
        if self.file is None or self._rotated():
            self.close()
            self.open()
        assert self.file is not None
        try:
            self.file.write(b"".join(message + b"\n" for _, message in items))
            self.file.flush()
            if self.dest.fsync:
                os.fsync(self.file.fileno())
        except OSError as exc:
            raise TransportError(f"write {self.path}: {exc}") from exc
        self.inflight.add(seq for seq, _ in items)
        self.inflight.ack_all()

    def poll(self, timeout: float) -> int | None:
        return self.inflight.acked

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None
