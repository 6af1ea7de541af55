"""sessions.json: the per-connection rules of SPEC.md §7.3 and §10 over a fake clock.

Each case is a sequence of inputs to one side of a connection (several server
connections sharing stream marks, or one client across its connections) with,
after each input, what that side must have sent, reported, and when it must be
woken next. The expectations come from the two small models below, written from
SPEC.md §7.3 ("the server's rules, step by step", "the client's rules") and §10
("Timeouts") alone; the frames are built by `gen.common` and `gen.server_frames`.
Like the rest of the generator it never imports signedws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Final

from gen.common import (
    ALICE,
    ALICE_CLAIMS,
    AUD,
    BOB,
    CAROL,
    CONN,
    KID_SERVER,
    KIND_ED25519,
    KIND_HELLO,
    KIND_MAC,
    KIND_SERVER_ED25519,
    KIND_SERVER_MAC,
    NOW,
    SECRET_A,
    SEED_SERVER,
    SENSOR,
    Client,
    Json,
    NonceInputs,
    Payload,
    document,
    ed25519_public,
    fixed,
    hx,
    mac_client,
    num,
    typed,
    verifier_json,
)
from gen.server_frames import hello, server_frame

ACK_DELAY: Final = 0.0625  # 1/16 s: every time below stays a multiple of 1/1024
FIRST_FRAME_TIMEOUT: Final = 10
IDLE_TIMEOUT: Final = 60
T0: Final = NOW - 30  # the server opens its first connection
KEEPALIVE: Final = 10
REFRESH_MARGIN: Final = 60
MAX_REPEATS: Final = 5
STEP: Final = 1 / 64  # a short interval, exact in binary

# A second credential of alice's (same iss, sub): a refresh mid-connection (§4.5).
ALICE_R: Final = mac_client(
    replace(ALICE_CLAIMS, cid="tok-alice-r", iat=NOW - 10, exp=NOW + 1800), SECRET_A
)
# bob, writing on alice's stream id: (iss, sub, stream) names a stream (§7.3).
BOB_ON_ALICES_STREAM: Final = replace(BOB, stream=ALICE.stream)


def ms_floor(seconds: float) -> int:
    """A clock in seconds to milliseconds, rounded down (SPEC.md §2)."""
    return math.floor(seconds * 1000)


def nonce_inputs(case: str, index: int, now: float) -> NonceInputs:
    return replace(CONN, now=now, random=fixed(f"sessions {case} connection {index}", 15))


def earliest(*times: float | None) -> float | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def deadline_json(value: float | None) -> int | float | None:
    return None if value is None else num(value)


# -- the server (SPEC.md §7.3 server rules 1-5, §10 Timeouts) -----------------------------------


@dataclass
class ServerConn:
    """One connection as the server model holds it."""

    nonce: bytes
    state: str = "AWAITING_FIRST_FRAME"
    highest: int = 0  # H
    outstanding: list[int] = field(default_factory=list)
    messages: list[tuple[Client, int, int]] = field(default_factory=list)  # (client, ctr, seq)
    acked: int = 0  # A_s
    ack_due: float | None = None
    timeout_due: float | None = None
    received: bool = False
    server_ctr: int = 0
    credential: Client | None = None
    sent: list[Json] = field(default_factory=list)
    events: list[Json] = field(default_factory=list)

    @property
    def delivered(self) -> int:  # D, rule 1
        return min(self.outstanding) - 1 if self.outstanding else self.highest


class ServerCase:
    """A server case: its setup, the model, and the steps with their expectations."""

    def __init__(
        self,
        name: str,
        description: str,
        spec: str,
        *,
        server_key: bool = False,
        ack_delay: float | None = ACK_DELAY,
        first_frame_timeout: float | None = FIRST_FRAME_TIMEOUT,
        idle_timeout: float | None = IDLE_TIMEOUT,
        max_frame_size: int = 65536,
    ) -> None:
        self.name, self.description, self.spec = name, description, spec
        self.server_key = server_key
        self.ack_delay = ack_delay
        self.first_frame_timeout = first_frame_timeout
        self.idle_timeout = idle_timeout
        self.max_frame_size = max_frame_size
        self.marks: dict[tuple[str, str, bytes], int] = {}
        self.conns: list[ServerConn] = []
        self.steps: list[Json] = []

    # -- model ------------------------------------------------------------------------------

    def _schedule(self, conn: ServerConn, now: float) -> None:
        """Rule 3: the ack deadline is set when D first rises above A_s."""
        if self.ack_delay is not None and conn.delivered > conn.acked and conn.ack_due is None:
            conn.ack_due = now + self.ack_delay

    def _reject(self, conn: ServerConn, code: str) -> None:
        """Rule 5: one rejection, then nothing."""
        conn.events.append({"type": "rejected", "code": code})
        conn.state = "REJECTED"
        conn.ack_due = conn.timeout_due = None

    def _server_frame(self, conn: ServerConn, payload: Payload, now: float) -> None:
        assert conn.credential is not None  # noqa: S101 - a frame was accepted
        conn.server_ctr += 1
        ack = conn.delivered
        if conn.credential.kind == KIND_MAC:
            kind, key_id, key = KIND_SERVER_MAC, conn.credential.cid, conn.credential.secret
        else:
            assert self.server_key  # noqa: S101 - refused otherwise (§7.1)
            kind, key_id, key = KIND_SERVER_ED25519, KID_SERVER, SEED_SERVER
        ts = ms_floor(now)
        frame = server_frame(
            kind,
            key_id,
            key,
            ctr=conn.server_ctr,
            ack=ack,
            ts=ts,
            payload=payload,
            nonce=conn.nonce,
        )
        conn.sent.append(
            {
                "kind": kind,
                "key_id": key_id,
                "ctr": conn.server_ctr,
                "ack": ack,
                "ts": ts,
                "payload": typed(payload),
                "bytes": hx(frame),
            }
        )
        conn.acked = ack
        conn.ack_due = None

    def _tick(self, conn: ServerConn, now: float) -> None:
        """Rule 4: a clock tick acts on the deadlines passed at ``now``; the timeout
        wins over an acknowledgement (rule 5: nothing is sent after it)."""
        if conn.timeout_due is not None and conn.timeout_due <= now:
            self._reject(conn, "idle_timeout" if conn.received else "first_frame_timeout")
        elif conn.ack_due is not None and conn.ack_due <= now:
            self._server_frame(conn, None, now)

    # -- steps ------------------------------------------------------------------------------

    def _step(self, session: int, step: Json, *, state: bool = True) -> None:
        conn = self.conns[session]
        expect: Json = {
            "events": conn.events,
            "sent": conn.sent,
            "deadline": deadline_json(earliest(conn.ack_due, conn.timeout_due)),
        }
        if state:
            expect["state"] = conn.state
        self.steps.append({"op": step.pop("op"), "session": session, **step, "expect": expect})
        conn.events, conn.sent = [], []

    def open(self, now: float, session: int | None = None) -> ServerCase:
        index = len(self.conns) if session is None else session
        assert index == len(self.conns)  # noqa: S101
        inputs = nonce_inputs(self.name, index, now)
        nonce = inputs.mint()
        conn = ServerConn(nonce)
        self.conns.append(conn)
        data = hello(nonce, AUD, ms_floor(now), self.max_frame_size, 0)
        conn.sent.append({"kind": KIND_HELLO, "bytes": hx(data)})
        if self.first_frame_timeout is not None:
            conn.timeout_due = now + self.first_frame_timeout
        self._step(index, {"op": "open", "now": num(now), "nonce": inputs.json()})
        return self

    def receive(
        self,
        client: Client,
        ctr: int,
        payload: Payload,
        *,
        now: float,
        seq: int | None = None,
        session: int = 0,
        reject: str | None = None,
    ) -> ServerCase:
        """A client frame; ``reject`` is the §6.4 / §7.1 code it fails with, if any
        (worked out by hand for the few refused frames below)."""
        conn = self.conns[session]
        number = (0 if payload is None else ctr) if seq is None else seq
        frame = client.frame(ctr, ms_floor(now) - 250, payload, seq=number, nonce=conn.nonce)
        if conn.state in ("OPEN", "AWAITING_FIRST_FRAME"):
            conn.received = True
            if self.idle_timeout is not None:
                conn.timeout_due = now + self.idle_timeout
            if reject is not None:
                self._reject(conn, reject)
            else:
                conn.state = "OPEN"
                conn.highest = ctr
                conn.credential = client
                key = (client.iss, client.sub, client.stream)
                if payload is not None:
                    if number <= self.marks.get(key, 0):
                        pass  # rule 2: dropped, delivered
                    else:
                        conn.outstanding.append(ctr)
                        conn.messages.append((client, ctr, number))
                        conn.events.append(
                            {
                                "type": "message",
                                "stream": hx(client.stream),
                                "seq": number,
                                "counter": ctr,
                                "payload": typed(payload),
                            }
                        )
                self._schedule(conn, now)
        self._step(session, {"op": "receive", "now": num(now), "frame": hx(frame)})
        return self

    def receive_text(self, now: float, session: int = 0) -> ServerCase:
        conn = self.conns[session]
        if conn.state in ("OPEN", "AWAITING_FIRST_FRAME"):
            self._reject(conn, "malformed")
        self._step(session, {"op": "receive_text", "now": num(now), "text": "hello"})
        return self

    def oversize(self, session: int = 0) -> ServerCase:
        conn = self.conns[session]
        if conn.state in ("OPEN", "AWAITING_FIRST_FRAME"):
            self._reject(conn, "frame_too_large")
        self._step(session, {"op": "oversize"})
        return self

    def done(self, index: int, now: float, session: int = 0) -> ServerCase:
        conn = self.conns[session]
        client, ctr, seq = conn.messages[index]
        key = (client.iss, client.sub, client.stream)
        # Rule 2: taken (and finished); a copy taken first elsewhere leaves the mark.
        self.marks[key] = max(self.marks.get(key, 0), seq)
        conn.outstanding.remove(ctr)
        if conn.state == "OPEN":
            self._schedule(conn, now)
        self._step(session, {"op": "done", "index": index, "now": num(now)})
        return self

    def advance(self, now: float, session: int = 0) -> ServerCase:
        self._tick(self.conns[session], now)
        self._step(session, {"op": "advance", "now": num(now)})
        return self

    def send(self, payload: Payload, now: float, session: int = 0) -> ServerCase:
        conn = self.conns[session]
        assert conn.state == "OPEN"  # noqa: S101 - the cases send only when they may
        self._server_frame(conn, payload, now)
        self._step(session, {"op": "send", "payload": typed(payload), "now": num(now)})
        return self

    def closed(self, session: int = 0) -> ServerCase:
        conn = self.conns[session]
        conn.state = "CLOSED"
        conn.ack_due = conn.timeout_due = None
        self._step(session, {"op": "closed"})
        return self

    def json(self) -> Json:
        return {
            "name": self.name,
            "description": self.description,
            "spec": self.spec,
            "setup": {
                "verifier": verifier_json(max_frame_size=self.max_frame_size),
                "server_key": {"kid": KID_SERVER, "seed": hx(SEED_SERVER)}
                if self.server_key
                else None,
                "marks": True,
                "first_frame_timeout": self.first_frame_timeout,
                "idle_timeout": self.idle_timeout,
                "ack_delay": self.ack_delay,
            },
            "steps": self.steps,
        }


def server_cases() -> list[Json]:
    cases: list[ServerCase] = []

    def case(name: str, description: str, spec: str = "§7.3", **kw: Any) -> ServerCase:
        made = ServerCase(name, description, spec, **kw)
        cases.append(made)
        return made

    t = T0
    case(
        "deliver_then_ack_after_done",
        "a message is handed over at once, acknowledged only ack_delay after the application "
        "finished it, by a pure acknowledgement",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).advance(t + 2).done(0, t + 3).advance(
        t + 3 + ACK_DELAY - STEP
    ).advance(t + 3 + ACK_DELAY)
    case(
        "ack_coalesced",
        "three messages finished within ack_delay of the first: one acknowledgement covers all",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).receive(ALICE, 2, "m2", now=t + 1 + STEP).receive(
        ALICE, 3, "m3", now=t + 1 + 2 * STEP
    ).done(0, t + 1.25).done(1, t + 1.25 + STEP).done(2, t + 1.25 + 2 * STEP).advance(
        t + 1.25 + ACK_DELAY
    ).advance(t + 2)
    case(
        "ack_waits_for_prefix",
        "messages finished out of order: the ack covers only the finished prefix",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).receive(ALICE, 2, "m2", now=t + 1).done(
        1, t + 2
    ).advance(t + 2 + ACK_DELAY).done(0, t + 3).advance(t + 3 + ACK_DELAY)
    case(
        "ack_rides_on_server_frame",
        "a server frame sent before the ack deadline carries the ack; no pure ack follows; "
        "a frame sent before anything is finished carries ack 0",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).send("before", t + 1.5).done(0, t + 2).send(
        "after", t + 2 + STEP
    ).advance(t + 2 + ACK_DELAY).advance(t + 3)
    case(
        "control_frame_delivered",
        "a control frame counts as delivered once accepted: acknowledged with nothing handed over",
    ).open(t).receive(ALICE, 1, None, now=t + 1).advance(t + 1 + ACK_DELAY)
    case(
        "control_frame_behind_message",
        "a control frame behind an unfinished message waits for it",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).receive(ALICE, 2, None, now=t + 1.5).advance(
        t + 2
    ).done(0, t + 2.5).advance(t + 2.5 + ACK_DELAY)
    case(
        "ed25519_server_key_acks",
        "an ed25519 client's control frame, acknowledged by a frame signed with the server key",
        "§7.1, §7.3",
        server_key=True,
    ).open(t).receive(CAROL, 1, None, now=t + 1).advance(t + 1 + ACK_DELAY).receive(
        CAROL, 2, "files", now=t + 2
    ).done(0, t + 2).send(b"\x00\x01", t + 2 + STEP)
    case(
        "no_ack_delay",
        "without ack_delay no pure acknowledgement is sent: the ack rides on the next frame",
        ack_delay=None,
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).done(0, t + 1).advance(t + 5).send("x", t + 6)
    case(
        "resend_dedupe_within_connection",
        "a data frame whose seq is not above its stream's mark is dropped, counted delivered",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).done(0, t + 1).receive(
        ALICE, 2, "m1 again", now=t + 2, seq=1
    ).receive(ALICE, 3, "m2", now=t + 2, seq=2).advance(t + 2 + ACK_DELAY).done(1, t + 3).advance(
        t + 3 + ACK_DELAY
    )
    case(
        "resend_dedupe_across_connections",
        "two connections share the marks: the resends the first delivered are dropped on the "
        "second and acknowledged; the new one is delivered",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).receive(ALICE, 2, "m2", now=t + 1).done(
        0, t + 1.5
    ).done(1, t + 1.5).closed().open(t + 2, 1).receive(
        ALICE, 1, "m1", now=t + 3, seq=1, session=1
    ).receive(ALICE, 2, "m2", now=t + 3, seq=2, session=1).receive(
        ALICE, 3, "m3", now=t + 3, seq=3, session=1
    ).advance(t + 3 + ACK_DELAY, 1).done(0, t + 4, 1).advance(t + 4 + ACK_DELAY, 1)
    case(
        "resend_of_unfinished_delivered",
        "a message handed to an application that never finished it did not move the mark: its "
        "resend on the next connection is delivered",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).closed().open(t + 2, 1).receive(
        ALICE, 1, "m1", now=t + 3, seq=1, session=1
    ).done(0, t + 3, 1).advance(t + 3 + ACK_DELAY, 1)
    case(
        "dedupe_per_principal",
        "bob writing on alice's stream id does not meet alice's mark: (iss, sub, stream)",
    ).open(t).receive(ALICE, 1, "alice 1", now=t + 1).done(0, t + 1).open(t + 2, 1).receive(
        BOB_ON_ALICES_STREAM, 1, "bob 1", now=t + 3, seq=1, session=1
    ).done(0, t + 3, 1)
    case(
        "first_frame_timeout",
        "no frame within first_frame_timeout of the hello: first_frame_timeout; nothing after",
        "§10",
    ).open(t).advance(t + FIRST_FRAME_TIMEOUT - STEP).advance(t + FIRST_FRAME_TIMEOUT).receive(
        ALICE, 1, "late", now=t + FIRST_FRAME_TIMEOUT + 1
    )
    case(
        "first_frame_before_tick",
        "a frame read at the first-frame deadline, before the clock ticks, counts: the "
        "deadline acts on ticks only",
        "§7.3, §10",
    ).open(t).receive(ALICE, 1, "just in time", now=t + FIRST_FRAME_TIMEOUT).advance(
        t + FIRST_FRAME_TIMEOUT
    )
    case(
        "idle_timeout",
        "each frame moves the deadline to its arrival plus idle_timeout; then idle_timeout",
        "§10",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).receive(ALICE, 2, "m2", now=t + 30).advance(
        t + 30 + IDLE_TIMEOUT - STEP
    ).advance(t + 30 + IDLE_TIMEOUT)
    case(
        "idle_frame_before_tick",
        "a frame read at the idle deadline, before the clock ticks, counts and moves the deadline",
        "§7.3, §10",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).receive(
        ALICE, 2, "m2", now=t + 1 + IDLE_TIMEOUT
    ).advance(t + 1 + IDLE_TIMEOUT)
    case(
        "timeout_wins_over_ack",
        "a late tick finds the ack deadline and the idle deadline passed: idle_timeout, no ack",
        "§7.3, §10",
    ).open(t).receive(ALICE, 1, None, now=t + 1).advance(t + 1 + IDLE_TIMEOUT + 1)
    case(
        "idle_deadline_with_ack_deadline",
        "the next deadline is the earlier of the ack deadline and the idle deadline",
        "§7.3, §10",
    ).open(t).receive(ALICE, 1, None, now=t + 1).advance(t + 1 + ACK_DELAY).advance(
        t + 1 + IDLE_TIMEOUT
    )
    case(
        "refresh_mid_connection",
        "a control frame with a new credential of the same principal: later server frames use "
        "its frame key and cid (§4.5, §7.1)",
        "§4.5, §7.1",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).done(0, t + 1).receive(
        ALICE_R, 2, None, now=t + 2
    ).send("after refresh", t + 2 + STEP)
    case(
        "oversize_message",
        "the transport refused a message over max_frame while reading: frame_too_large",
        "§9, §10",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).oversize()
    case(
        "frame_over_max_frame",
        "a whole frame over max_frame is frame_too_large (§6.4 step 1); nothing after it",
        "§6.4, §10",
        max_frame_size=512,
    ).open(t).receive(ALICE, 1, "x" * 600, now=t + 1, reject="frame_too_large").receive(
        ALICE, 2, "small", now=t + 2
    )
    case(
        "text_message",
        "a text WebSocket message is malformed; a valid frame after it is dropped unverified",
        "§10",
    ).open(t).receive_text(t + 1).receive(ALICE, 1, "m1", now=t + 2)
    case(
        "ed25519_without_server_key",
        "an ed25519 frame to a server without a server key: scheme_mismatch (§7.1)",
        "§7.1",
    ).open(t).receive(CAROL, 1, "hello", now=t + 1, reject="scheme_mismatch")
    case(
        "rejection_clears_ack",
        "a refused frame (a replayed counter) ends the connection: the pending ack is not sent",
        "§7.3",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).done(0, t + 1).receive(
        ALICE, 1, "m1", now=t + 1 + STEP, reject="replay"
    ).advance(t + 2)
    case(
        "closed",
        "the connection closed: no deadline, nothing sent",
        "§7.3",
    ).open(t).receive(ALICE, 1, "m1", now=t + 1).done(0, t + 1).closed()
    return [c.json() for c in cases]


# -- the client (SPEC.md §7.3 client rules 1-6) -------------------------------------------------

RECONNECT_CODES: Final = (1001, 1006, 1011, 1012, 1013, 1014, 4408, 4410, 4503)
REFRESH_CODES: Final = (4419,)
FINISH_CODES: Final = (1000, 1005)
FAIL_CODES: Final = (1009, 4400, 4401, 4403, 4409, 4413, 4425, 4429)


def close_action(code: int | None) -> str:
    if code is None or code in RECONNECT_CODES:
        return "RECONNECT"
    if code in REFRESH_CODES:
        return "REFRESH"
    if code in FINISH_CODES:
        return "FINISH"
    return "FAIL"


@dataclass
class Entry:
    seq: int
    payload: str | bytes
    counter: int = 0


def credential_exp(client: Client) -> int | None:
    """A credential's ``exp``, as its generator made it (a key reference has none)."""
    if client is SENSOR:
        return None
    if client.cid == ALICE.cid:
        return ALICE_CLAIMS.exp
    if client.cid == ALICE_R.cid:
        return NOW + 1800
    raise AssertionError(client.cid)


class ClientCase:
    """A client case: the model of one client across its connections."""

    def __init__(
        self,
        name: str,
        description: str,
        spec: str,
        client: Client = ALICE,
        *,
        keepalive: float | None = KEEPALIVE,
    ) -> None:
        self.name, self.description, self.spec = name, description, spec
        self.first = self.client = client
        self.keepalive = keepalive
        self.stream = client.stream
        self.seq = 0
        self.outbox: list[Entry] = []
        self.connected = False
        self.conn_index = 0
        self.nonce = b""
        self.offset = 0
        self.max_frame = 65536
        self.counter = 0
        self.acked = 0
        self.server_ctr = 0
        self.last_send = 0.0
        self.failed = False
        self.repeats = 0
        self.last_ending: tuple[int | None, str] | None = None
        self.progress = False
        self.steps: list[Json] = []
        self._sent: list[Json] = []
        self._events: list[Json] = []

    # -- model ------------------------------------------------------------------------------

    def _sign(self, payload: Payload, seq: int, now: float) -> tuple[int, bytes]:
        self.counter += 1
        ts = ms_floor(now) + self.offset
        frame = self.client.frame(self.counter, ts, payload, seq=seq, nonce=self.nonce)
        return self.counter, frame

    def _record(self, counter: int, seq: int, payload: Payload, frame: bytes) -> None:
        self._sent.append(
            {
                "counter": counter,
                "seq": seq,
                "stream": hx(self.stream),
                "payload": typed(payload),
                "bytes": hx(frame),
            }
        )

    def _deadline(self) -> float | None:
        if self.connected and self.keepalive is not None:
            return self.last_send + self.keepalive
        return None

    def _refresh_due(self) -> float | None:
        exp = credential_exp(self.client)
        return None if exp is None else exp - REFRESH_MARGIN

    def _step(self, step: Json, **extra: Any) -> ClientCase:
        expect: Json = {"sent": self._sent, "events": self._events, "pending": len(self.outbox)}
        if not self.failed:
            expect["connected"] = self.connected
            expect["deadline"] = deadline_json(self._deadline())
        expect["refresh_due"] = deadline_json(self._refresh_due())
        expect.update(extra)
        self.steps.append({**step, "expect": expect})
        self._sent, self._events = [], []
        return self

    # -- steps ------------------------------------------------------------------------------

    def hello(self, now: float, *, max_frame: int = 65536) -> ClientCase:
        """A new connection's hello (the server's clock 2.5 s ahead of the client's)."""
        inputs = nonce_inputs(self.name, self.conn_index, now + 2.5)
        self.conn_index += 1
        self.nonce = inputs.mint()
        time_ms = ms_floor(now + 2.5)
        data = hello(self.nonce, AUD, time_ms, max_frame, 0)
        self.offset = time_ms - ms_floor(now)
        self.max_frame = max_frame
        self.counter = self.acked = self.server_ctr = 0
        self.progress = False
        self.connected = True
        self.last_send = now
        for entry in self.outbox:
            entry.counter = 0
        frames = []
        for entry in self.outbox:  # rule 1
            ts = ms_floor(now) + self.offset
            counter = len(frames) + 1
            frames.append(
                (
                    counter,
                    entry,
                    self.client.frame(counter, ts, entry.payload, seq=entry.seq, nonce=self.nonce),
                )
            )
        if any(len(frame) > max_frame for _, _, frame in frames):
            # Nothing is sent on a connection a pending message does not fit.
            self._events.append({"type": "rejected", "code": "frame_too_large"})
            self.connected = False
            self.failed = True
            return self._step({"op": "hello", "now": num(now), "hello": hx(data)})
        for counter, entry, frame in frames:
            self.counter = entry.counter = counter
            self._record(counter, entry.seq, entry.payload, frame)
        if not self.outbox:
            counter, frame = self._sign(None, 0, now)
            self._record(counter, 0, None, frame)
        return self._step({"op": "hello", "now": num(now), "hello": hx(data)})

    def send(self, payload: str | bytes, now: float) -> ClientCase:
        self.seq += 1
        entry = Entry(self.seq, payload)
        self.outbox.append(entry)
        if self.connected:  # rule 2
            entry.counter, frame = self._sign(payload, entry.seq, now)
            self._record(entry.counter, entry.seq, payload, frame)
            self.last_send = now
        return self._step({"op": "send", "payload": typed(payload), "now": num(now)})

    def receive(self, ack: int, payload: Payload, now: float) -> ClientCase:
        """A valid server frame (mac, under the current credential's frame key)."""
        self.server_ctr += 1
        assert self.client.kind == KIND_MAC  # noqa: S101
        frame = server_frame(
            KIND_SERVER_MAC,
            self.client.cid,
            self.client.secret,
            ctr=self.server_ctr,
            ack=ack,
            ts=ms_floor(now) + self.offset,
            payload=payload,
            nonce=self.nonce,
        )
        removed = 0
        while self.outbox and 0 < self.outbox[0].counter <= ack:  # rule 3
            self.outbox.pop(0)
            removed += 1
        self.acked = ack
        if removed:
            self.progress = True
            self._events.append({"type": "acknowledged", "pending": len(self.outbox)})
        if payload is not None:
            self.progress = True
            self._events.append({"type": "payload", "payload": typed(payload)})
        return self._step({"op": "receive", "now": num(now), "frame": hx(frame)})

    def receive_invalid(self, ack: int, now: float, code: str) -> ClientCase:
        """A server frame the client refuses (§7.2): the one bad field is ``ack``."""
        frame = server_frame(
            KIND_SERVER_MAC,
            self.client.cid,
            self.client.secret,
            ctr=self.server_ctr + 1,
            ack=ack,
            ts=ms_floor(now) + self.offset,
            nonce=self.nonce,
        )
        self._events.append({"type": "rejected", "code": code})
        self.connected = False
        self.failed = True
        return self._step({"op": "receive", "now": num(now), "frame": hx(frame)})

    def advance(self, now: float) -> ClientCase:
        due = self._deadline()
        if due is not None and now >= due:  # rule 4
            counter, frame = self._sign(None, 0, now)
            self._record(counter, 0, None, frame)
            self.last_send = now
        return self._step({"op": "advance", "now": num(now)})

    def refresh(self, client: Client, now: float) -> ClientCase:
        self.client = replace(client, stream=self.stream)  # rule 5: nothing sent
        return self._step({"op": "refresh", "now": num(now), "credential": client.json()})

    def closed(self, code: int | None, reason: str = "") -> ClientCase:
        """The connection ended (rule 6, and the repeated-failure rule of §7.3)."""
        self.connected = False
        action = close_action(code)
        ending = (code, reason)
        if self.progress or action == "FINISH":
            self.repeats, self.last_ending = 0, None
        elif code in (None, 1006):
            pass
        elif ending == self.last_ending:
            self.repeats += 1
        else:
            self.repeats, self.last_ending = 1, ending
        if action != "FAIL" and self.repeats >= MAX_REPEATS:
            action = "FAIL"
        return self._step({"op": "closed", "code": code, "reason": reason}, action=action)

    def handshake_refused(self, status: int) -> ClientCase:
        action = "RECONNECT" if status >= 500 or status == 429 else "FAIL"
        return self._step({"op": "handshake_refused", "status": status}, action=action)

    def json(self) -> Json:
        return {
            "name": self.name,
            "description": self.description,
            "spec": self.spec,
            "setup": {
                "credential": self.first.json(),
                "audience": AUD,
                "stream": hx(self.stream),
                "server_keys": {KID_SERVER: hx(ed25519_public(SEED_SERVER))}
                if self.first.kind == KIND_ED25519
                else {},
                "keepalive": self.keepalive,
                "refresh_margin": REFRESH_MARGIN,
                "ack_timeout": None,
                "max_repeats": MAX_REPEATS,
            },
            "steps": self.steps,
        }


def client_cases() -> list[Json]:
    cases: list[ClientCase] = []

    def case(
        name: str, description: str, spec: str = "§7.3", client: Client = ALICE, **kw: Any
    ) -> ClientCase:
        made = ClientCase(name, description, spec, client, **kw)
        cases.append(made)
        return made

    c = NOW - 10  # the client's clock
    case(
        "control_frame_when_nothing_pending",
        "a new connection with an empty outbox: one control frame, counter 1, seq 0",
    ).hello(c)
    case(
        "ack_clears_outbox",
        "acks remove the messages sent under counters up to them; a payload is reported after "
        "the acknowledgement; an ack that removes nothing reports nothing",
    ).hello(c).send("a", c + 1).send("b", c + 1).send("c", c + 1).receive(3, None, c + 2).receive(
        4, "hi", c + 3
    ).receive(4, b"\x01", c + 4)
    case(
        "resend_order_after_new_hello",
        "after a reconnect the unacknowledged messages are re-signed in seq order under new "
        "counters, then the message sent meanwhile, then new ones; acks of the new connection "
        "count its counters",
    ).hello(c).send("a", c + 1).send("b", c + 1).send("c", c + 1).receive(2, None, c + 2).closed(
        1006
    ).send("d", c + 3).hello(c + 4).send("e", c + 5).receive(1, None, c + 6).receive(
        4, None, c + 6
    )
    case(
        "resend_too_large_kept",
        "a pending message larger than the new hello's max_frame: nothing is sent on that "
        "connection, nothing is dropped, the connection fails with frame_too_large",
    ).hello(c).send("a", c + 1).send("x" * 2000, c + 1).send("c", c + 1).closed(1001).hello(
        c + 3, max_frame=1024
    )
    case(
        "keepalive_after_idle",
        "a control frame when nothing was sent for keepalive seconds; receiving does not count",
    ).hello(c).advance(c + KEEPALIVE - STEP).advance(c + KEEPALIVE).send(
        "a", c + KEEPALIVE + 2
    ).receive(2, None, c + KEEPALIVE + 11).advance(c + KEEPALIVE + 12)
    case(
        "keepalive_off",
        "without keepalive the client never sends on its own",
        keepalive=None,
    ).hello(c).advance(c + 1000)
    case(
        "refresh_due_and_refresh",
        "refresh refresh_margin before exp; the refresh sends nothing, the next frame carries "
        "the new credential, and server frames under its frame key are accepted",
        "§4.5, §7.3",
    ).hello(c).refresh(ALICE_R, c + 0.5).send("after", c + 1).receive(1, "ok", c + 2)
    case(
        "refresh_due_key_reference",
        "a key reference has no exp: no refresh time",
        "§4.4, §7.3",
        SENSOR,
    ).hello(c)
    case(
        "server_frame_refused",
        "a server frame acknowledging a counter never sent is ack_invalid; nothing is removed",
        "§7.2",
    ).hello(c).send("a", c + 1).receive_invalid(5, c + 2, "ack_invalid")
    for code in (None, *RECONNECT_CODES, *REFRESH_CODES, *FINISH_CODES, *FAIL_CODES):
        shown = "none" if code is None else str(code)
        case(
            f"close_{shown}",
            f"closed with {'no close frame' if code is None else f'close code {code}'}: "
            f"{close_action(code).lower()}",
        ).hello(c).closed(code)
    for status in (503, 500, 429, 403, 400, 404):
        action = "RECONNECT" if status >= 500 or status == 429 else "FAIL"
        case(
            f"handshake_refused_{status}",
            f"an opening handshake refused with HTTP {status}: {action.lower()}",
        ).handshake_refused(status)
    repeated = case(
        "repeated_failure",
        f"{MAX_REPEATS} connections in a row closed the same way without progress: fail",
    )
    for index in range(MAX_REPEATS):
        repeated.hello(c + 10 * index).closed(4408, "timeout")
    lost = case(
        "lost_connections_not_counted",
        "connections lost without a close frame (1006) never count as repeats",
    )
    for index in range(MAX_REPEATS + 1):
        lost.hello(c + 10 * index).closed(1006)
    progress = case(
        "progress_resets_repeats",
        "a connection on which a message was acknowledged resets the count of repeats",
    )
    for index in range(MAX_REPEATS - 1):
        progress.hello(c + 10 * index).closed(4408, "timeout")
    progress.hello(c + 50).send("a", c + 51).receive(2, None, c + 52).closed(4408, "timeout")
    for index in range(MAX_REPEATS - 1):
        progress.hello(c + 60 + 10 * index).closed(4408, "timeout")
    return [c_.json() for c_ in cases]


def sessions_json() -> Json:
    server = server_cases()
    client = client_cases()
    names = [c["name"] for c in server] + [c["name"] for c in client]
    assert len(names) == len(set(names)), "duplicate case names"  # noqa: S101
    doc = document(
        "Per-connection rules over a fake clock (SPEC.md §7.3, §10): server connections "
        "(delivery, acknowledgements, dedupe, timeouts, refusals) and a client across its "
        "connections (resend, acknowledgements, keepalive, refresh, close codes).",
        [],
    )
    del doc["cases"]
    return {**doc, "server": server, "client": client}
