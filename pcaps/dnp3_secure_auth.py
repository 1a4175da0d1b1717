"""The DNP3 Secure Authentication v5 capture (IEEE 1815-2012 clause 7): master 1 and outstation 10 speak
SAv5; critical requests are challenged, except once.

* session key status request / key change (g120v4, g120v6 → g120v5);
* DIRECT_OPERATE challenged (g120v1) and answered with a correct reply (g120v2): executed (near miss of
  both the missing-challenge and the authentication-error rule);
* DIRECT_OPERATE in aggressive mode (g120v3 ... g120v9): executed without a challenge, as the standard
  allows (near miss of the missing-challenge rule);
* the unknown host 10.20.1.66 (address 100) sends DIRECT_OPERATE, is challenged and replies with a wrong
  MAC: the outstation answers with an authentication error (g120v7);
* master 1 sends DIRECT_OPERATE and outstation 10 executes it at once, with no challenge.

MACs are real HMAC-SHA-256 values truncated to 16 octets over the challenge and the critical request
(§7.5.2.3), with a fixed demonstration session key; the wrapped session keys are random octets.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from typing import Any

import gen_dnp3 as d
from capture import Capture
from dnp3_scenarios import LINUX_DELAYED_ACK_NS, ROGUE_ADDRESS, Dnp3Session, _connect, _latency, _outstations
from plan import MS, ROGUE, RTU10, SCADA_MASTER, SECOND, START_NS

USER = 1  # the default user number (§7.5.1.1)
ASSOCIATION_ID = 1
SESSION_KEY = bytes(range(0x40, 0x50))  # demonstration control-direction session key (AES-128 size)
TRIP_BREAKER_0 = 0x81  # CROB PULSE_ON | TCC trip
CLOSE_BREAKER_0 = 0x41  # CROB PULSE_ON | TCC close

ATTACKS = {
    "forged_reply": {
        "technique": "T0855",
        "name": "Unauthorized Command Message",
        "injected": "unknown master (address 100) DIRECT_OPERATE; its challenge reply carries a wrong MAC",
    },
    "unchallenged": {
        "technique": "T0855",
        "name": "Unauthorized Command Message",
        "injected": "DIRECT_OPERATE executed by an SAv5 outstation without a challenge",
    },
}


def _mac(*parts: bytes) -> bytes:
    return hmac.new(SESSION_KEY, b"".join(parts), hashlib.sha256).digest()[:16]


class SecureLink:
    """One SAv5 master↔outstation association: challenge sequence (CSQ) and the last challenge sent."""

    def __init__(self, session: Dnp3Session, rng: random.Random) -> None:
        self.session = session
        self.rng = rng
        self.csq = 0
        self.last_challenge = b""

    def _send(self, from_master: bool, ts: int, fragment: d.Fragment, attack: dict[str, Any] | None) -> int:
        ts, _ = self.session.send(from_master, ts, fragment, attack=attack)
        return ts

    def keys(self, ts: int) -> int:
        """Session key status request → status NOT_INIT, key change → status OK (§7.5.2.2)."""
        s, rng = self.session, self.rng
        ts = s.exchange(
            ts,
            d.Fragment(
                d.FC["authenticate_req"],
                s.assoc.next_master_seq(),
                objects=[d.session_key_status_request(USER)],
            ),
            d.Fragment(
                d.FC["authenticate_resp"],
                0,
                iin=0,
                objects=[d.session_key_status(0, USER, d.AUTH_KEY_STATUS_NOT_INIT, rng.randbytes(32), b"")],
            ),
            _latency(rng),
        )
        change = d.session_key_change(0, USER, rng.randbytes(40))
        return s.exchange(
            ts + 20 * MS,
            d.Fragment(d.FC["authenticate_req"], s.assoc.next_master_seq(), objects=[change]),
            d.Fragment(
                d.FC["authenticate_resp"],
                0,
                iin=0,
                objects=[
                    d.session_key_status(1, USER, d.AUTH_KEY_STATUS_OK, rng.randbytes(32), rng.randbytes(16))
                ],
            ),
            _latency(rng),
        )

    def challenged(
        self, ts: int, request: d.Fragment, outcome: str, attack: dict[str, Any] | None = None
    ) -> int:
        """A critical request, the outstation's challenge, the master's reply; then the executed response
        (``outcome`` "executed") or an authentication error (``outcome`` "wrong_mac")."""
        rng, seq = self.rng, request.sequence
        ts = self._send(True, ts, request, attack)
        self.csq += 1
        challenge_data = rng.randbytes(32)
        challenge = d.Fragment(
            d.FC["authenticate_resp"], seq, iin=0, objects=[d.auth_challenge(self.csq, USER, challenge_data)]
        )
        ts = self._send(False, ts + _latency(rng), challenge, attack)
        self.last_challenge = challenge.encode()
        good = _mac(self.last_challenge, request.encode())
        mac_value = good if outcome == "executed" else rng.randbytes(16)
        reply = d.Fragment(d.FC["authenticate_req"], seq, objects=[d.auth_reply(self.csq, USER, mac_value)])
        ts = self._send(True, ts + rng.randrange(5 * MS, 15 * MS), reply, attack)
        if outcome == "executed":
            answer = d.Fragment(d.FC["response"], seq, iin=0, objects=_echo(request))
        else:
            error = d.auth_error(self.csq, USER, ASSOCIATION_ID, d.AUTH_ERROR_AUTHENTICATION_FAILED, ts // MS)
            answer = d.Fragment(d.FC["authenticate_resp"], seq, iin=0, objects=[error])
        ts = self._send(False, ts + _latency(rng), answer, attack)
        self.session.conn.delayed_ack(0, ts + LINUX_DELAYED_ACK_NS)
        return ts

    def aggressive(self, ts: int, crob: d.Obj) -> int:
        """A critical request that authenticates itself (g120v3 first, g120v9 MAC last, §7.5.2.3.3)."""
        s = self.session
        self.csq += 1
        seq = s.assoc.next_master_seq()
        head = d.Fragment(
            d.FC["direct_operate"], seq, objects=[d.auth_aggressive_request(self.csq, USER), crob]
        )
        mac_value = _mac(self.last_challenge, head.encode())
        request = d.Fragment(d.FC["direct_operate"], seq, objects=[*head.objects, d.auth_hmac(mac_value)])
        response = d.Fragment(d.FC["response"], seq, iin=0, objects=[_echo_crob(crob)])
        return s.exchange(ts, request, response, _latency(self.rng))


def _echo_crob(crob: d.Obj) -> d.Obj:
    point = crob.truth["points"][0]
    return d.crob(point["index"], point["code"], point["count"], point["on_time"], point["off_time"])


def _echo(request: d.Fragment) -> list[d.Obj]:
    return [_echo_crob(o) for o in request.objects if o.truth["group"] == 12]


def dnp3_secure_auth(seed: int = 20002) -> Capture:
    cap = Capture(
        "dnp3_secure_auth.pcap",
        "DNP3 SAv5 between master 10.20.1.11 (address 1) and outstation 10.20.2.31 (address 10): session "
        "keys, a challenged DIRECT_OPERATE with a correct reply, an aggressive-mode DIRECT_OPERATE, event "
        "polls; the unknown host 10.20.1.66 (address 100) fails its challenge (g120v7 error); then "
        "outstation 10 executes a DIRECT_OPERATE from master 1 without challenging it.",
        [SCADA_MASTER, RTU10, ROGUE],
    )
    rng = random.Random(seed)
    rtu10 = _outstations()[0]
    rtu10.iin = 0
    session = _connect(cap, rng, SCADA_MASTER, rtu10, START_NS)
    link = SecureLink(session, rng)
    ts = link.keys(START_NS + SECOND)
    session.exchange(
        ts + SECOND, session.request("read", d.class_objects(1, 2, 3, 0)), rtu10.integrity(0), _latency(rng)
    )
    close_0 = d.crob(0, CLOSE_BREAKER_0, 1, 300, 0)
    link.challenged(START_NS + 5 * SECOND, session.request("direct_operate", [close_0]), "executed")
    link.aggressive(START_NS + 10 * SECOND, d.crob(0, TRIP_BREAKER_0, 1, 300, 0))
    for at in (15, 25, 30, 35):  # event polls go on (READ is not critical: never challenged)
        ts = START_NS + at * SECOND
        rtu10.evolve(rng, ts)
        session.exchange(
            ts, session.request("read", d.class_objects(1, 2, 3)), rtu10.events(0), _latency(rng)
        )

    rogue = _connect(cap, rng, ROGUE, rtu10, START_NS + 19 * SECOND, ROGUE_ADDRESS)
    forged = SecureLink(rogue, rng)
    forged.csq = link.csq  # the outstation's challenge sequence is one counter
    trip = rogue.request("direct_operate", [d.crob(0, TRIP_BREAKER_0, 1, 300, 0)])
    ts = forged.challenged(START_NS + 20 * SECOND, trip, "wrong_mac", ATTACKS["forged_reply"])
    rogue.conn.close(ts + SECOND)
    link.csq = forged.csq

    unchallenged = session.request("direct_operate", [d.crob(0, CLOSE_BREAKER_0, 1, 300, 0)])
    ts = session.exchange(
        START_NS + 40 * SECOND,
        unchallenged,
        d.Fragment(d.FC["response"], 0, iin=0, objects=_echo(unchallenged)),
        _latency(rng),
        ATTACKS["unchallenged"],
    )
    session.conn.close(ts + SECOND)
    for frame in cap.frames():
        if any("g120" in gv for m in frame.messages for gv in m.get("object_gv", [])):
            cap.expect_difference(
                frame,
                "tshark",
                "tshark 4.0 does not dissect secure authentication objects (g120): it lists none in "
                "AUTHENTICATE_REQ/RESP and stops at g120v3 (Unknown Object) in an aggressive-mode request",
                field="objects",
            )
    return cap
