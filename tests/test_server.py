"""Tests for signedws.session: one connection, server side (SPEC.md §5, §7)."""

from __future__ import annotations

import msgpack
import pytest
from helpers import (
    AUDIENCE,
    NODE_ID,
    NOW,
    NOW_MS,
    SCHEMES,
    SERVER_KEY,
    SERVER_KID,
    Pair,
    Scheme,
    seeded_random,
    token,
)

from signedws.ed25519 import BackendName
from signedws.envelope import SERVER_LABEL, Hello, decode_hello, length_prefixed
from signedws.errors import Code, Rejected, UsageError
from signedws.keys import Ed25519PrivateKey
from signedws.server import ServerKey, ServerSession
from signedws.signer import ServerMessage
from signedws.verifier import Message


def _ids(param: tuple[str, str]) -> str:
    return "-".join(param)


# -- the hello (§5.2) ---------------------------------------------------------------------


def test_hello_announces_nonce_audience_time_and_limits() -> None:
    """The hello carries the connection nonce, the audience, the server time and limits."""
    p = Pair(window=16, max_frame_size=8192)
    hello = decode_hello(p.server.hello)
    assert hello == Hello(p.server.nonce, AUDIENCE, NOW_MS, 8192, 16)
    assert msgpack.unpackb(p.server.hello)[:2] == [1, 3]


def test_nonce_is_minted_from_the_given_randomness() -> None:
    """Same random source, same nonce; the nonce names the node and the fleet checks it."""
    p = Pair()
    a = p.open(b"seed")
    b = p.open(b"seed")
    c = p.open(b"other seed")
    assert a.nonce == b.nonce != c.nonce
    assert a.nonce[1:9] == NODE_ID
    info = p.verifier.nonce_key.check(a.nonce, now=NOW)
    assert info.expires == int(NOW) + 86400
    assert a.state.nonce == a.nonce


def test_new_session_has_accepted_nothing() -> None:
    """Before any client frame: nothing accepted, no acknowledgement pending."""
    session = Pair().server
    assert session.accepted == 0
    assert session.ack_pending is False
    assert repr(session) == "ServerSession(accepted=0, sent=0)"


# -- sending before the first frame (§7.1) ---------------------------------------------


@pytest.mark.parametrize("payload", [None, "hi", b"hi"])
def test_send_before_any_accepted_frame_is_a_usage_error(payload: str | bytes | None) -> None:
    """A server frame needs the client's scheme and key: none before a frame is accepted."""
    p = Pair()
    with pytest.raises(UsageError, match="no client frame accepted"):
        p.server.send(payload, now=NOW)
    with pytest.raises(UsageError, match="no client frame accepted"):
        p.server.ack(now=NOW)


def test_send_after_a_rejected_first_frame_is_still_a_usage_error() -> None:
    """A rejected frame teaches the session nothing: still no key to send with."""
    p = Pair()
    result = p.deliver(p.forge(nonce=bytes(64)))
    assert isinstance(result, Rejected)
    with pytest.raises(UsageError):
        p.server.ack(now=NOW)


@pytest.mark.parametrize("scheme", ["certificate", "keyref"])
def test_ed25519_connection_without_server_key_cannot_send(scheme: Scheme) -> None:
    """On an ed25519 connection, send needs a ServerKey."""
    p = Pair(scheme, server_key=False)
    p.accept()
    with pytest.raises(UsageError, match="server_key"):
        p.server.send("hi", now=NOW)
    assert p.server.ack_pending is True


def test_mac_connection_needs_no_server_key() -> None:
    """On a mac connection the server frame key is the client's frame key."""
    p = Pair("mac", server_key=False)
    p.accept()
    assert isinstance(p.reply("hi"), ServerMessage)


@pytest.mark.parametrize("payload", [1, 2.5, bytearray(b"x"), ["x"], False])
def test_send_refuses_other_payload_types(payload: object) -> None:
    """Server payloads are str, bytes or None."""
    p = Pair()
    p.accept()
    with pytest.raises(UsageError, match="payload"):
        p.server.send(payload, now=NOW)  # type: ignore[arg-type]


# -- receiving and acknowledging (§6.4, §7.3) ------------------------------------------------


def test_receive_verifies_through_the_verifier() -> None:
    """receive returns the verified message and advances `accepted`."""
    p = Pair()
    message = p.server.receive(p.sign("hi"), now=NOW)
    assert isinstance(message, Message)
    assert p.server.accepted == 1


def test_ack_pending_and_acknowledgements() -> None:
    """ack_pending is set by accepted frames and cleared by any server frame."""
    p = Pair()
    p.accept()
    assert (p.server.accepted, p.server.ack_pending) == (1, True)
    first = p.reply()
    assert first == ServerMessage(counter=1, ack=1, payload=None, timestamp_ms=NOW_MS)
    assert p.server.ack_pending is False
    p.accept()
    p.accept()
    assert (p.server.accepted, p.server.ack_pending) == (3, True)
    p.clock.advance(2)
    second = p.reply("data")
    assert second == ServerMessage(counter=2, ack=3, payload="data", timestamp_ms=NOW_MS + 2000)
    assert p.server.ack_pending is False
    assert p.client.acked == 3
    third = p.reply(b"more")
    assert third == ServerMessage(counter=3, ack=3, payload=b"more", timestamp_ms=NOW_MS + 2000)
    assert repr(p.server) == "ServerSession(accepted=3, sent=3)"


def test_ack_acknowledges_the_highest_counter_with_a_window() -> None:
    """With W > 0, ack is the highest counter accepted, even after a late frame."""
    p = Pair(window=8)
    p.accept()
    late = p.sign("late")
    p.accept()
    assert p.reply() == ServerMessage(1, 3, None, NOW_MS)
    assert isinstance(p.deliver(late), Message)
    assert p.server.accepted == 3
    assert p.server.ack_pending is False


def test_rejected_frame_leaves_ack_pending_alone() -> None:
    """A rejected frame neither sets nor clears ack_pending."""
    p = Pair()
    p.accept()
    p.reply()
    assert isinstance(p.deliver(p.forge(ts=0)), Rejected)
    assert (p.server.accepted, p.server.ack_pending) == (1, False)


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
@pytest.mark.parametrize("payload", [None, "", "text", b"", b"\x00\xff" * 100])
def test_server_frames_verify_at_the_client(
    scheme: Scheme, backend: BackendName, payload: str | bytes | None
) -> None:
    """Every payload type round-trips through send and Signer.verify for every scheme."""
    p = Pair(scheme, backend)
    p.accept()
    message = p.reply(payload)
    assert isinstance(message, ServerMessage)
    assert message.payload == payload
    assert type(message.payload) is type(payload)


def test_mac_server_frame_is_tagged_with_the_current_frame_key() -> None:
    """§7.1 kind 4: key_id is the current credential's cid; the tag its frame key's HMAC."""
    p = Pair("mac")
    p.accept()
    frame = p.server.send("hi", now=NOW)
    fields = msgpack.unpackb(frame)
    assert fields[:8] == [1, 4, "tok-1", p.server.nonce, 1, 1, NOW_MS, "hi"]
    signed = SERVER_LABEL + length_prefixed(AUDIENCE.encode()) + frame[:-34]
    assert frame[-34:-32] == b"\xc4\x20"
    assert frame[-32:] == token().frame_key.mac(signed)


@pytest.mark.parametrize("scheme", ["certificate", "keyref"])
def test_ed25519_server_frame_is_signed_by_the_server_key(scheme: Scheme) -> None:
    """§7.1 kind 5: key_id is the server key's id; the signature covers the server label."""
    p = Pair(scheme)
    p.accept()
    frame = p.server.send(b"hi", now=NOW)
    fields = msgpack.unpackb(frame)
    assert fields[:8] == [1, 5, SERVER_KID, p.server.nonce, 1, 1, NOW_MS, b"hi"]
    signed = SERVER_LABEL + length_prefixed(AUDIENCE.encode()) + frame[:-66]
    assert frame[-66:-64] == b"\xc4\x40"
    assert SERVER_KEY.public_key().verify(frame[-64:], signed)


def test_server_frame_is_not_accepted_as_a_client_frame() -> None:
    """§7.1: a server frame reflected to the server is refused."""
    p = Pair()
    p.accept()
    result = p.deliver(p.server.ack(now=NOW))
    assert isinstance(result, Rejected)
    assert result.code is Code.MALFORMED


# -- ServerKey ----------------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["", "k" * 256, 7, None])
def test_server_key_refuses_an_invalid_kid(kid: object) -> None:
    """A server key id is a str of 1 to 255 bytes."""
    with pytest.raises(UsageError, match="kid"):
        ServerKey(kid, SERVER_KEY)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [b"\x03" * 32, SERVER_KEY.public_key(), None])
def test_server_key_refuses_anything_but_a_private_key(key: object) -> None:
    """A server key holds an Ed25519PrivateKey."""
    with pytest.raises(UsageError, match="Ed25519PrivateKey"):
        ServerKey(SERVER_KID, key)  # type: ignore[arg-type]


def test_server_key_is_a_frozen_value() -> None:
    """ServerKey is a frozen dataclass; its repr does not show the seed."""
    key = ServerKey(SERVER_KID, Ed25519PrivateKey(b"\x03" * 32))
    assert key == ServerKey(SERVER_KID, SERVER_KEY)
    assert SERVER_KEY.to_bytes().hex() not in repr(key)
    with pytest.raises(AttributeError):
        key.kid = "other"  # type: ignore[misc]


def test_session_uses_the_given_random_source() -> None:
    """ServerSession draws the nonce's random bytes from ``random``."""
    p = Pair()
    session = ServerSession(p.verifier, now=NOW, random=seeded_random(b"nonce"))
    assert session.nonce == p.server.nonce
    assert session.hello == p.server.hello


def test_deliver_moves_acknowledgements_to_delivery() -> None:
    """After deliver(), acks cover only delivered frames, never just verified ones (§7.3)."""
    pair = Pair()
    session = pair.server
    assert session.delivered == 0
    session.deliver(0)
    for payload in ("a", "b", "c"):
        pair.accept(payload)
    assert session.accepted == 3
    assert session.delivered == 0
    assert not session.ack_pending
    session.deliver(2)
    assert session.ack_pending
    assert pair.client.verify(session.ack(now=pair.clock.now), now=pair.clock.now).ack == 2
    assert not session.ack_pending


@pytest.mark.parametrize("counter", [-1, 4])
def test_deliver_refuses_going_backwards_or_past_acceptance(counter: int) -> None:
    """The delivery mark never decreases and never passes the highest accepted counter."""
    pair = Pair()
    for payload in ("a", "b", "c"):
        pair.accept(payload)
    pair.server.deliver(1)
    with pytest.raises(UsageError, match="delivered counter"):
        pair.server.deliver(counter if counter > 0 else 0)
