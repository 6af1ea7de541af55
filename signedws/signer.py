"""The signer: the client side of one connection (SPEC.md §5.2, §6.3, §7.2).

Theory of operation
-------------------
A `Signer` is made from the server's hello and the client's credential. It
owns the connection's counter: frames come out of `sign` in counter order. It
is not thread safe: one caller signs at a time, and writes the frames in the
order they were signed (the asyncio client holds one lock around signing and
writing; `signedws.client.ClientSession` is the usual caller).

`verify` checks server frames (SPEC.md §7.2) and tracks the server's counter and
acknowledgements. Like the server's verifier it changes nothing unless the
frame authenticated.

`refresh` swaps the credential; frame keys of earlier `mac` credentials are
kept (a few) so that server frames still in flight under them verify.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Final, NamedTuple

from . import broadcast, envelope
from .credential import ClientCredential, Ed25519Credential, KeyReference, MACCredential
from .envelope import (
    CLIENT_LABEL,
    KIND_CLIENT_ED25519,
    KIND_CLIENT_MAC,
    KIND_SERVER_ED25519,
    KIND_SERVER_MAC,
    SERVER_LABEL,
    STREAM_SIZE,
    TAG_SIZES,
    VERSION,
    Hello,
    Payload,
    length_prefixed,
)
from .errors import Code, Rejected, UsageError
from .keys import Ed25519PublicKey, HMACKey
from .replay import MAX_COUNTER

__all__ = ["KEPT_FRAME_KEYS", "ServerMessage", "Signer"]

#: How many frame keys of earlier credentials a client keeps after refreshes.
KEPT_FRAME_KEYS: Final = 4


class ServerMessage(NamedTuple):
    """A verified server frame."""

    #: The server's counter.
    counter: int
    #: How far the server delivered the client's frames (SPEC.md §7.3).
    ack: int
    #: The payload; None for a pure acknowledgement.
    payload: Payload
    #: The server's timestamp, milliseconds.
    timestamp_ms: int


def _claims_principal(credential: ClientCredential) -> tuple[str, str | None]:
    claims = credential.claims
    if isinstance(claims, KeyReference):
        return claims.iss, None
    return claims.iss, claims.sub


class Signer:
    """Signs client frames and verifies server frames for one connection.

    Args:
        credential: the client's credential and secret.
        hello: the server's hello (already checked for its audience; see
            `from_hello`).
        now: the client's clock, seconds, when the hello arrived; frames are
            stamped with the client clock corrected by the server's.
        server_keys: for `ed25519` clients, the server's public keys by id, to
            verify server frames (SPEC.md §7.1).
        stream: the client's 16-byte stream id (SPEC.md §7.3); random if
            omitted. Pass the same one to every connection's signer.
        seq: the ``seq`` of the last message already numbered in the stream
            (0 for a new stream); `sign` numbers new messages after it.
        topics: the client's topic marks for broadcasts (SPEC.md §14.4); a
            new one if omitted. Pass the same one to every connection's signer.

    Raises:
        UsageError: for an invalid credential type.
    """

    def __init__(
        self,
        credential: ClientCredential,
        hello: Hello,
        *,
        now: float,
        server_keys: Mapping[str, Ed25519PublicKey] | None = None,
        stream: bytes | None = None,
        seq: int = 0,
        topics: broadcast.Topics | None = None,
    ) -> None:
        if stream is None:
            stream = secrets.token_bytes(STREAM_SIZE)
        if not isinstance(stream, bytes) or len(stream) != STREAM_SIZE:
            raise UsageError(f"stream must be {STREAM_SIZE} bytes")
        if type(seq) is not int or not 0 <= seq < MAX_COUNTER:
            raise UsageError("seq must be an integer from 0 to 2**64-2")
        self.stream = stream
        self._seq = seq
        if not isinstance(credential, MACCredential | Ed25519Credential):
            raise UsageError("credential must be a MACCredential or an Ed25519Credential")
        self.hello = hello
        self._topics = broadcast.Topics() if topics is None else topics
        aud = length_prefixed(hello.audience.encode())
        self._client_prefix = CLIENT_LABEL + aud
        self._server_prefix = SERVER_LABEL + aud
        self._offset_ms = hello.server_time_ms - int(now * 1000)
        self._server_keys = dict(server_keys or {})
        self._counter = 0
        self._server_counter = 0
        self._ack = 0
        self._frame_keys: dict[str, HMACKey] = {}
        # The server frame kinds of the schemes held on this connection (SPEC.md
        # §7.2 step 2): a refresh may change the scheme (§4.5).
        self._server_kinds: set[int] = set()
        self._credential = credential
        self._principal = _claims_principal(credential)
        self._install(credential)

    @classmethod
    def from_hello(
        cls,
        data: bytes,
        credential: ClientCredential,
        *,
        audience: str,
        now: float,
        server_keys: Mapping[str, Ed25519PublicKey] | None = None,
        stream: bytes | None = None,
        seq: int = 0,
        topics: broadcast.Topics | None = None,
    ) -> Signer:
        """Start a connection from the hello's bytes (SPEC.md §5.2).

        Raises:
            Rejected: `malformed`/`unsupported_version` for a bad hello,
                `audience_mismatch` if it names another audience than the one
                the client meant to reach.
        """
        hello = envelope.decode_hello(data)
        if hello.audience != audience:
            raise Rejected(Code.AUDIENCE_MISMATCH, "hello names another audience")
        return cls(
            credential,
            hello,
            now=now,
            server_keys=server_keys,
            stream=stream,
            seq=seq,
            topics=topics,
        )

    def _install(self, credential: ClientCredential) -> None:
        if isinstance(credential, MACCredential):
            self._server_kinds.add(KIND_SERVER_MAC)
            self._kind = KIND_CLIENT_MAC
            self._cred = credential.token
            self._mac_state = credential.frame_key.prefixed_mac(self._client_prefix)
            self._frame_keys[credential.cid] = credential.frame_key
            while len(self._frame_keys) > KEPT_FRAME_KEYS:
                del self._frame_keys[next(iter(self._frame_keys))]
        else:
            self._server_kinds.add(KIND_SERVER_ED25519)
            self._kind = KIND_CLIENT_ED25519
            self._cred = credential.credential
            self._private_key = credential.private_key

    # -- state ------------------------------------------------------------------

    @property
    def nonce(self) -> bytes:
        """The connection nonce."""
        return self.hello.nonce

    @property
    def counter(self) -> int:
        """The counter of the last frame signed (0 before the first)."""
        return self._counter

    @property
    def seq(self) -> int:
        """The ``seq`` of the last message numbered in the stream."""
        return self._seq

    @property
    def acked(self) -> int:
        """The highest client counter the server acknowledged."""
        return self._ack

    @property
    def credential(self) -> ClientCredential:
        """The credential frames are signed with now."""
        return self._credential

    def __repr__(self) -> str:
        return f"Signer({self._credential!r}, counter={self._counter}, acked={self._ack})"

    # -- client frames (SPEC.md §6.3) -------------------------------------------

    def refresh(self, credential: ClientCredential) -> None:
        """Sign the next frames with ``credential`` (SPEC.md §4.5).

        The scheme may change (a token to a certificate or key reference, or
        back): the next frames are of the new credential's kind, and server
        frames of both schemes verify from then on (SPEC.md §7.2 step 2).

        Raises:
            UsageError: if ``credential`` is of another issuer or subject (the
                server would refuse it with `credential_mismatch`).
        """
        iss, sub = _claims_principal(credential)
        if iss != self._principal[0] or (
            sub is not None and self._principal[1] is not None and sub != self._principal[1]
        ):
            raise UsageError("a refreshed credential must have the same issuer and subject")
        self._credential = credential
        self._principal = (iss, sub if sub is not None else self._principal[1])
        self._install(credential)

    def sign(self, payload: Payload, *, now: float, seq: int | None = None) -> bytes:
        """Build the next client frame for ``payload``.

        Args:
            payload: the message: str (text), bytes (binary) or None (a control
                frame, SPEC.md §6.5).
            now: the client's clock, seconds.
            seq: for a message being resent after a reconnect, its original
                number in the stream (SPEC.md §7.3). Omit it for a new
                message: it gets the stream's next number. Ignored (0) for a
                control frame.

        Returns:
            The frame's bytes, to send as one binary WebSocket message.

        Raises:
            UsageError: if the payload has the wrong type, ``seq`` is invalid,
                the frame would exceed the server's ``max_frame``, or the
                counter is exhausted (reconnect to continue).
        """
        if payload is not None and type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str, bytes or None")
        if seq is not None and (type(seq) is not int or not 1 <= seq <= MAX_COUNTER):
            raise UsageError("seq must be an integer from 1 to 2**64-1")
        ctr = self._counter + 1
        if ctr > MAX_COUNTER:
            raise UsageError("counter exhausted: reconnect for a new nonce")
        if payload is None:
            number = 0
        elif seq is None:
            number = self._seq + 1
            if number > MAX_COUNTER:
                raise UsageError("stream exhausted: start a new stream")
        else:
            number = seq
        # The offset comes from the unauthenticated hello (SPEC.md §11.6): a
        # forged server time gives frames the server refuses (timestamp_skew),
        # never a timestamp outside the uint64 range.
        ts = min(MAX_COUNTER, max(0, int(now * 1000) + self._offset_ms))
        size = TAG_SIZES[self._kind]
        fields = [VERSION, self._kind, self._cred, self.hello.nonce, ctr, ts]
        body = envelope.seal([*fields, self.stream, number, payload, bytes(size)], size)
        if self._kind == KIND_CLIENT_MAC:
            mac = self._mac_state.copy()
            mac.update(body)
            frame = body + b"\xc4\x20" + mac.finalize()
        else:
            frame = body + b"\xc4\x40" + self._private_key.sign(self._client_prefix + body)
        if len(frame) > self.hello.max_frame_size:
            raise UsageError(
                f"frame of {len(frame)} bytes exceeds the server's limit of "
                f"{self.hello.max_frame_size}"
            )
        self._counter = ctr
        # New messages are numbered after any seq used so far, resent or not.
        self._seq = max(self._seq, number)
        return frame

    # -- server frames (SPEC.md §7.2) -------------------------------------------

    def verify(self, data: bytes) -> ServerMessage:
        """Verify a server frame.

        Args:
            data: the exact bytes received. No check of SPEC.md §7.2 reads
                the client's clock, so none is passed.

        Returns:
            The verified frame.

        Raises:
            Rejected: with the code of the first failing step; nothing changes.
                The client closes the connection with the code's close code.
        """
        if len(data) > envelope.DEFAULT_MAX_SERVER_FRAME_SIZE:
            raise Rejected(Code.FRAME_TOO_LARGE, f"server frame of {len(data)} bytes")
        frame = envelope.parse_server_frame(data)
        if frame.kind not in self._server_kinds:
            raise Rejected(Code.SCHEME_MISMATCH, f"server frame kind {frame.kind}")
        if frame.nonce != self.hello.nonce:
            raise Rejected(Code.NONCE_MISMATCH, "not this connection's nonce")
        if frame.counter <= self._server_counter:
            raise Rejected(
                Code.REPLAY, f"server counter {frame.counter} not above {self._server_counter}"
            )
        size = TAG_SIZES[frame.kind]
        signed = self._server_prefix + data[: -(size + 2)]
        if not self._ack <= frame.ack <= self._counter:
            raise Rejected(
                Code.ACK_INVALID, f"ack {frame.ack} outside {self._ack}..{self._counter}"
            )
        if frame.kind == KIND_SERVER_MAC:
            frame_key = self._frame_keys.get(frame.key_id)
            if frame_key is None:
                raise Rejected(Code.UNKNOWN_KEY, f"no frame key for cid {frame.key_id!r}")
            if not hmac.compare_digest(frame.tag, frame_key.mac(signed)):
                raise Rejected(Code.BAD_TAG, f"server frame {frame.counter}")
        else:
            server_key = self._server_keys.get(frame.key_id)
            if server_key is None:
                raise Rejected(Code.UNKNOWN_KEY, f"no server key {frame.key_id!r}")
            server_key.verify(frame.tag, signed)  # raises Rejected: bad_signature
        self._server_counter = frame.counter
        self._ack = frame.ack
        return ServerMessage(frame.counter, frame.ack, frame.payload, frame.timestamp_ms)

    # -- broadcast frames (SPEC.md §14.4) -----------------------------------------

    @property
    def topics(self) -> broadcast.Topics:
        """The client's topic marks (SPEC.md §14.4)."""
        return self._topics

    def verify_broadcast(self, data: bytes) -> broadcast.BroadcastMessage:
        """Verify a broadcast frame (a server frame of kind 6 or 7).

        It shares the connection's server counter with `verify`; the topic's
        mark moves to the message's ``tseq``.

        Raises:
            Rejected: with the code of the first failing step; nothing changes.
                The client closes the connection with the code's close code.
        """
        message = broadcast.check(
            data,
            audience=self.hello.audience,
            nonce=self.hello.nonce,
            server_counter=self._server_counter,
            mac=self._kind == KIND_CLIENT_MAC,
            frame_keys=self._frame_keys,
            server_keys=self._server_keys,
            topics=self._topics,
        )
        self._server_counter = message.counter
        self._topics.commit(message)
        return message

    def verify_any(self, data: bytes) -> ServerMessage | broadcast.BroadcastMessage:
        """Verify a server frame (`verify`) or a broadcast frame
        (`verify_broadcast`), told apart by their first bytes: a canonical
        broadcast frame starts with an 8-element array, version 1, kind 6
        or 7. The one call a client's receive loop needs; either path checks
        the whole frame, so a frame sent down the wrong one is only refused.

        Raises:
            Rejected: as `verify` or `verify_broadcast`; nothing changes.
        """
        if data[:2] == b"\x98\x01" and data[2:3] in (b"\x06", b"\x07"):
            return self.verify_broadcast(data)
        return self.verify(data)
