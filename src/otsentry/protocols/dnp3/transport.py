"""DNP3 transport function: segments → application fragments (IEEE 1815-2012 clause 8).

Each link frame's user data starts with one transport octet: FIN (0x80), FIR (0x40) and a 6-bit
sequence number that increments per segment and wraps 63 → 0. Reassembly state is kept per
(direction, link source, link destination): a terminal server multiplexes several outstations on
one TCP connection, and their segments interleave.
"""

from __future__ import annotations

from otsentry.protocols.dnp3.codes import TRANSPORT_FIN, TRANSPORT_FIR, TRANSPORT_SEQ

# The standard's default maximum fragment is 2048 octets; devices may configure more. Past this
# hard cap a fragment is dropped rather than buffered (memory per flow stays bounded).
MAX_FRAGMENT = 64 * 1024
MAX_PARTIALS = 64  # fragments in progress per flow (distinct direction/source/destination keys)

Key = tuple[int, int, int]  # (direction, link source, link destination)


class _Partial:
    __slots__ = ("data", "last", "next_seq", "segments")

    def __init__(self, segment: bytes) -> None:
        self.data = bytearray(segment[1:])
        self.next_seq = (segment[0] + 1) & TRANSPORT_SEQ
        self.last = segment
        self.segments = 1


class TransportReassembler:
    """Joins transport segments per key. ``add`` returns (fragment or None, problem or None,
    number of segments of the fragment); a problem is a human-readable reason for a decode error."""

    __slots__ = ("_partials", "discarded", "duplicates", "max_fragment", "max_partials", "quiet")

    def __init__(self, max_fragment: int = MAX_FRAGMENT, max_partials: int = MAX_PARTIALS) -> None:
        self._partials: dict[Key, _Partial] = {}
        self.max_fragment = max_fragment
        self.max_partials = max_partials
        self.discarded = 0  # segments or partial fragments thrown away
        self.duplicates = 0  # repeated segments ignored
        # Directions in which segments without FIR are expected (after a gap or mid-stream
        # pickup) and are dropped silently until the next FIR.
        self.quiet = [False, False]

    def add(self, key: Key, segment: bytes) -> tuple[bytes | None, str | None, int]:
        """Feed one segment (transport octet + fragment data, at least 1 octet)."""
        header = segment[0]
        partial = self._partials.get(key)
        problem = None
        if header & TRANSPORT_FIR:
            self.quiet[key[0]] = False
            if partial is not None:
                if segment == partial.last:  # link-layer retransmission of the segment just taken
                    self.duplicates += 1
                    return None, None, 0
                del self._partials[key]
                self.discarded += 1
                problem = (
                    f"transport: new first segment (seq {header & TRANSPORT_SEQ}) while a fragment of "
                    f"{len(partial.data)} octets was incomplete: partial fragment discarded"
                )
            if header & TRANSPORT_FIN:
                return segment[1:], problem, 1
            if len(segment) - 1 > self.max_fragment:
                self.discarded += 1
                return None, f"transport: segment exceeds {self.max_fragment} octets", 0
            if len(self._partials) >= self.max_partials:
                self._partials.pop(next(iter(self._partials)))  # oldest in insertion order
                self.discarded += 1
            self._partials[key] = _Partial(segment)
            return None, problem, 0
        seq = header & TRANSPORT_SEQ
        if partial is None:
            self.discarded += 1
            if self.quiet[key[0]]:
                return None, None, 0
            return None, f"transport: segment seq {seq} without FIR and no fragment in progress: discarded", 0
        if seq != partial.next_seq:
            if segment == partial.last:
                self.duplicates += 1
                return None, None, 0
            del self._partials[key]
            self.discarded += 1
            return (
                None,
                f"transport: segment seq {seq} out of sequence ({partial.next_seq} expected): "
                f"partial fragment of {len(partial.data)} octets discarded",
                0,
            )
        if len(partial.data) + len(segment) - 1 > self.max_fragment:
            del self._partials[key]
            self.discarded += 1
            return None, f"transport: fragment exceeds {self.max_fragment} octets: discarded", 0
        partial.data += segment[1:]
        partial.next_seq = (seq + 1) & TRANSPORT_SEQ
        partial.last = segment
        partial.segments += 1
        if header & TRANSPORT_FIN:
            del self._partials[key]
            return bytes(partial.data), None, partial.segments
        return None, None, 0

    def drop_direction(self, direction: int) -> None:
        """Forget incomplete fragments of one direction (bytes were lost there)."""
        for key in [k for k in self._partials if k[0] == direction]:
            del self._partials[key]
        self.quiet[direction] = True

    def pending(self) -> int:
        """Octets held in incomplete fragments."""
        return sum(len(p.data) for p in self._partials.values())
