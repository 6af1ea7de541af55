"""vectors/sessions.json (SPEC.md §7.3, §10) through `ServerSession` and `ClientSession`.

Each case is a sequence of inputs over a fake clock to one side of a connection;
after every step the session must have sent, reported and scheduled exactly what
the step's ``expect`` says (a key absent from ``expect`` is not checked). The
vectors are written by ``vectors/gen/sessions.py``, which shares no code with
signedws; this module only reads them. See ``vectors/README.md`` for the format.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
from pathlib import Path
from typing import Any

import msgpack
import pytest
from vector_json import (
    Json,
    credential_of,
    fixed_random,
    h,
    payload_of,
    typed,
    verifier_of,
)

from signedws.keys import Ed25519PrivateKey, Ed25519PublicKey
from signedws.stream import StreamMarks

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


# The I/O-free sessions of issue 15 (core-api: signedws.server, signedws.client).
_SERVER_API = ("ServerSession", "ServerKey", "MessageReceived", "ConnectionRejected", "State")
_CLIENT_API = ("ClientSession", "PayloadReceived", "Acknowledged", "ServerRejected", "Action")


def _api(module: str, names: tuple[str, ...]) -> Any:
    """The module if it has the session API, else skip (never under CI=true:
    there a missing API is a failure)."""
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        missing = f"{module} cannot be imported ({exc})"
    else:
        absent = [name for name in names if not hasattr(loaded, name)]
        if not absent:
            return loaded
        missing = f"{module} lacks {', '.join(absent)}"
    reason = f"the session API of issue 15 is not here yet: {missing}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@functools.cache
def _load() -> Json:
    data: Json = json.loads((VECTORS / "sessions.json").read_text(encoding="utf-8"))
    assert data["version"] == 1
    return data


def _params(side: str) -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in _load()[side]]


# -- decoding the JSON ----------------------------------------------------------------------------


def unpack(frame: bytes) -> list[Any]:
    items: list[Any] = msgpack.unpackb(frame, raw=False)
    return items


def checked(index: int, step: Json, got: Json) -> None:
    """Compare what the session did with the keys ``expect`` lists."""
    expect = step["expect"]
    assert (index, step["op"], {key: got[key] for key in expect}) == (index, step["op"], expect)


# -- the server -----------------------------------------------------------------------------------


def server_sent(frame: bytes) -> Json:
    items = unpack(frame)
    if items[1] == 3:  # the hello (§5.2)
        return {"kind": 3, "bytes": frame.hex()}
    return {
        "kind": items[1],
        "key_id": items[2],
        "ctr": items[4],
        "ack": items[5],
        "ts": items[6],
        "payload": typed(items[7]),
        "bytes": frame.hex(),
    }


@pytest.mark.parametrize("case", _params("server"))
def test_server_session(case: Json) -> None:
    """A ServerSession (or several, sharing stream marks) reproduces every step."""
    server = _api("signedws.server", _SERVER_API)
    setup = case["setup"]
    verifier = verifier_of(setup["verifier"])
    marks = StreamMarks() if setup["marks"] else None
    key = setup["server_key"]
    server_key = (
        server.ServerKey(key["kid"], Ed25519PrivateKey(h(key["seed"])))
        if key is not None
        else None
    )
    sessions: dict[int, Any] = {}
    messages: dict[int, list[Any]] = {}
    for index, step in enumerate(case["steps"]):
        number = step["session"]
        op = step["op"]
        if op == "open":
            nonce = step["nonce"]
            session = sessions[number] = server.ServerSession(
                verifier,
                now=step["now"],
                server_key=server_key,
                marks=marks,
                first_frame_timeout=setup["first_frame_timeout"],
                idle_timeout=setup["idle_timeout"],
                ack_delay=setup["ack_delay"],
                random=fixed_random(h(nonce["random"])),
            )
            messages[number] = []
            assert session.nonce.hex() == nonce["bytes"]
        else:
            session = sessions[number]
            if op == "receive":
                session.receive_message(h(step["frame"]), now=step["now"])
            elif op == "receive_text":
                session.receive_message(step["text"], now=step["now"])
            elif op == "oversize":
                session.receive_oversize()
            elif op == "done":
                session.message_done(messages[number][step["index"]], now=step["now"])
            elif op == "advance":
                session.advance_time(step["now"])
            elif op == "send":
                session.send_message(payload_of(step["payload"]), now=step["now"])
            elif op == "closed":
                session.connection_closed()
            else:
                raise AssertionError(f"unknown op {op!r}")
        events = []
        for event in session.events_received():
            if isinstance(event, server.MessageReceived):
                message = event.message
                messages[number].append(message)
                events.append(
                    {
                        "type": "message",
                        "stream": message.stream.hex(),
                        "seq": message.seq,
                        "counter": message.counter,
                        "payload": typed(message.payload),
                    }
                )
            else:
                assert isinstance(event, server.ConnectionRejected)
                events.append({"type": "rejected", "code": event.code.id})
        got = {
            "events": events,
            "sent": [server_sent(frame) for frame in session.data_to_send()],
            "deadline": session.next_deadline(),
            "state": session.state.name,
        }
        checked(index, step, got)


# -- the client -----------------------------------------------------------------------------------


def client_sent(frame: bytes) -> Json:
    items = unpack(frame)
    return {
        "counter": items[4],
        "seq": items[7],
        "stream": items[6].hex(),
        "payload": typed(items[8]),
        "bytes": frame.hex(),
    }


@pytest.mark.parametrize("case", _params("client"))
def test_client_session(case: Json) -> None:
    """A ClientSession reproduces every step across its connections."""
    client = _api("signedws.client", _CLIENT_API)
    setup = case["setup"]
    session = client.ClientSession(
        credential_of(setup["credential"]),
        audience=setup["audience"],
        server_keys={kid: Ed25519PublicKey(h(key)) for kid, key in setup["server_keys"].items()},
        stream=h(setup["stream"]),
        keepalive=setup["keepalive"],
        refresh_margin=setup["refresh_margin"],
        ack_timeout=setup["ack_timeout"],
        max_repeats=setup["max_repeats"],
    )
    for index, step in enumerate(case["steps"]):
        op = step["op"]
        action = None
        if op == "hello":
            session.receive_hello(h(step["hello"]), now=step["now"])
        elif op == "send":
            session.send_message(payload_of(step["payload"]), now=step["now"])
        elif op == "receive":
            session.receive_message(h(step["frame"]), now=step["now"])
        elif op == "advance":
            session.advance_time(step["now"])
        elif op == "refresh":
            if "now" in inspect.signature(session.refresh).parameters:
                session.refresh(credential_of(step["credential"]), now=step["now"])
            else:  # core-api.md's refresh(credential)
                session.refresh(credential_of(step["credential"]))
        elif op == "closed":
            action = session.connection_closed(step["code"], step["reason"])
        elif op == "handshake_refused":
            action = session.handshake_refused(step["status"])
        else:
            raise AssertionError(f"unknown op {op!r}")
        events = []
        for event in session.events_received():
            if isinstance(event, client.PayloadReceived):
                events.append({"type": "payload", "payload": typed(event.payload)})
            elif isinstance(event, client.Acknowledged):
                events.append({"type": "acknowledged", "pending": event.pending})
            else:
                assert isinstance(event, client.ServerRejected)
                events.append({"type": "rejected", "code": event.code.id})
        got = {
            "sent": [client_sent(frame) for frame in session.data_to_send()],
            "events": events,
            "pending": session.pending,
            "connected": session.connected,
            "deadline": session.next_deadline(),
            "refresh_due": session.refresh_due(),
            "action": None if action is None else action.name,
        }
        checked(index, step, got)


def test_vector_file_shape() -> None:
    """Every case names its SPEC section, and every step lists what it expects."""
    data = _load()
    assert data["server"]
    assert data["client"]
    names = [case["name"] for case in data["server"] + data["client"]]
    assert len(names) == len(set(names))
    for case in data["server"] + data["client"]:
        assert case["spec"].startswith("§")
        assert all("expect" in step for step in case["steps"])
