"""Reassembly of GET/SET/ACTION block transfers (Green Book ed. 9, 9.3.5 "Transferring long
application elements"): the raw-data of consecutive blocks joins into one encoded ``Data``.

Bounded: one transfer per direction at a time (a new first block replaces an unfinished one);
blocks must arrive numbered 1, 2, 3… with the same service and invoke id; the joined bytes are
capped, and a transfer that breaks a rule is dropped, not guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otsentry.protocols.dlms.xdlms import Block

MAX_TRANSFER = 0x10000  # one maximum-size APDU worth of value bytes


@dataclass(slots=True)
class _Transfer:
    service: str
    invoke_id: int | None
    next_number: int
    data: bytearray = field(default_factory=bytearray)


class BlockAssembler:
    """Per-flow block transfers, one per direction."""

    __slots__ = ("transfers",)

    def __init__(self) -> None:
        self.transfers: dict[int, _Transfer] = {}

    def clear(self, direction: int | None = None) -> None:
        if direction is None:
            self.transfers.clear()
        else:
            self.transfers.pop(direction, None)

    def add(self, direction: int, service: str, invoke_id: int | None, block: Block) -> bytes | None:
        """Take one block; return the joined value bytes when ``block`` completes a transfer."""
        transfer = self.transfers.get(direction)
        if block.raw is None:
            self.transfers.pop(direction, None)
            return None
        if block.number == 1:
            transfer = self.transfers[direction] = _Transfer(service, invoke_id, 1)
        if (transfer is None or block.number != transfer.next_number or transfer.service != service
                or transfer.invoke_id != invoke_id or len(transfer.data) + len(block.raw) > MAX_TRANSFER):
            self.transfers.pop(direction, None)
            return None
        transfer.data += block.raw
        transfer.next_number += 1
        if not block.last:
            return None
        del self.transfers[direction]
        return bytes(transfer.data)
