"""The per-flow DLMS/COSEM analyzer: wrapper framing, request/response pairing, the
association's system titles, block reassembly, and the event fields of each APDU."""

from __future__ import annotations

from collections import OrderedDict

from otsentry.protocols.base import DecodeError, Fields, Message, decode_error_fields
from otsentry.protocols.dlms import acse
from otsentry.protocols.dlms.apdu import apdu_name, decode_apdu
from otsentry.protocols.dlms.axdr import Reader
from otsentry.protocols.dlms.blocks import BlockAssembler
from otsentry.protocols.dlms.security import SYSTEM_TITLE_SIZE, system_title_fields
from otsentry.protocols.dlms.wrapper import HEADER, HEADER_SIZE, VERSION, WrapperFramer, WrapperHeader
from otsentry.protocols.dlms.xdlms import Decoded, value_fields

PROTOCOL = "dlms"
DATASET = "otsentry.dlms"
MAX_PENDING = 32  # outstanding requests remembered per flow (4-bit invoke ids need 16 per service)


class DlmsAnalyzer:
    """One per TCP or UDP flow (direction 0 = client→server)."""

    protocol = PROTOCOL

    def __init__(self) -> None:
        self.framers = (WrapperFramer(), WrapperFramer())
        # (service, invoke id) -> the request, so responses name what they answer.
        self.pending: OrderedDict[tuple[str, int], Decoded] = OrderedDict()
        # System title each side announced in AARQ/AARE (or its first general-ciphering APDU).
        self.titles: list[bytes | None] = [None, None]
        self.blocks = BlockAssembler()

    # -- the flow layer's calls ---------------------------------------------------------------

    def on_data(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        for item in self.framers[direction].feed(data):
            if isinstance(item, str):
                out.append((direction, ts, frame, decode_error_fields(PROTOCOL, item)))
            else:
                out.append((direction, ts, frame, self.message(direction, *item)))

    def on_gap(self, direction: int) -> None:
        self.framers[direction].gap()
        self.blocks.clear(direction)

    def on_datagram(self, direction: int, data: bytes, ts: float, frame: int, out: list[Message]) -> None:
        """UDP: each datagram holds whole wrapper frames (Green Book 7.3.3.3)."""
        offset = 0
        while offset < len(data):
            if len(data) - offset < HEADER_SIZE:
                out.append((direction, ts, frame, decode_error_fields(
                    PROTOCOL, f"{len(data) - offset} bytes left in the datagram, short of a wrapper header")))
                return
            version, source, destination, length = HEADER.unpack_from(data, offset)
            end = offset + HEADER_SIZE + length
            if version != VERSION or end > len(data):
                left = len(data) - offset - HEADER_SIZE
                reason = (f"wrapper version {version:#06x}" if version != VERSION
                          else f"wrapper length {length} exceeds the {left} bytes left")
                out.append((direction, ts, frame, decode_error_fields(PROTOCOL, reason)))
                return
            header = WrapperHeader(version, source, destination, length)
            apdu = data[offset + HEADER_SIZE : end]
            out.append((direction, ts, frame, self.message(direction, header, apdu)))
            offset = end

    # -- one APDU -----------------------------------------------------------------------------

    def message(self, direction: int, header: WrapperHeader, apdu: bytes) -> Fields:
        """The event fields of one wrapped APDU (a decode-error event when it is malformed)."""
        base = header.fields()
        try:
            decoded = decode_apdu(apdu, self._lookup)
        except DecodeError as exc:
            extra = {**base, "dlms.apdu": apdu_name(apdu[0])} if apdu else base
            return decode_error_fields(PROTOCOL, str(exc), **extra)
        fields: Fields = {"network.protocol": PROTOCOL, "event.dataset": DATASET,
                          "event.action": decoded.action, **base}
        fields.update(decoded.fields)
        self._association(direction, apdu[0], fields)
        self._pair(decoded)
        self._reassemble(direction, decoded, fields)
        if decoded.role == "request":
            meaning = next((i.meaning for i in decoded.items if i.meaning), None)
            if meaning:
                fields["event.action"] = meaning
        return fields

    def _lookup(self, service: str, invoke_id: int) -> Decoded | None:
        return self.pending.get((service, invoke_id))

    def _association(self, direction: int, tag: int, fields: Fields) -> None:
        """Learn each side's system title; label ciphered APDUs that do not carry one."""
        if tag == acse.AARQ:
            self.pending.clear()
            self.blocks.clear()
            self.titles = [None, None]
        title_hex = fields.get("dlms.system_title")
        if title_hex is not None:
            title = bytes.fromhex(title_hex)
            announced = tag in (acse.AARQ, acse.AARE)
            if len(title) == SYSTEM_TITLE_SIZE and (announced or self.titles[direction] is None):
                self.titles[direction] = title
        elif fields.get("dlms.ciphered") or fields.get("dlms.initiate.ciphered"):
            known = self.titles[direction]
            if known is not None:
                fields.update(system_title_fields(known, "association"))

    def _pair(self, decoded: Decoded) -> None:
        if decoded.invoke_id is None or decoded.service is None:
            return
        key = (decoded.service, decoded.invoke_id)
        if decoded.role == "request" and decoded.items and not decoded.continuation:
            self.pending.pop(key, None)
            # Keep only what a response needs, not the request's rendered values.
            self.pending[key] = Decoded(decoded.action, service=decoded.service, role="request",
                                        invoke_id=decoded.invoke_id, items=decoded.items,
                                        with_list=decoded.with_list)
            while len(self.pending) > MAX_PENDING:
                self.pending.popitem(last=False)
        elif decoded.role == "response" and not decoded.more:
            self.pending.pop(key, None)

    def _reassemble(self, direction: int, decoded: Decoded, fields: Fields) -> None:
        block = decoded.block
        if block is None or decoded.service is None or decoded.with_list:
            return
        if decoded.service == "action" and decoded.role == "response":
            return  # its blocks join into an Action-Response-With-Optional-Data, not a Data
        joined = self.blocks.add(direction, decoded.service, decoded.invoke_id, block)
        if joined is None:
            return
        item = decoded.items[0] if decoded.items else None
        r = Reader(joined)
        try:
            values = value_fields(r, item)
            r.expect_end("reassembled block data")
        except DecodeError as exc:
            fields["dlms.block.reassembly_error"] = str(exc)
            return
        fields["dlms.block.reassembled"] = True
        fields["dlms.block.total_length"] = len(joined)
        for key, value in values.items():
            fields.setdefault(key, value)

