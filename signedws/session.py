"""The server side of one connection, above the verifier (SPEC.md §5, §7).

`ServerSession` is what a transport adapter drives: it mints the nonce and
hello, verifies client frames through the shared `Verifier`, and builds server
frames carrying acknowledgements. It does no I/O and reads no clock: the
adapter passes bytes and ``now`` in and sends the bytes it gets back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from . import envelope
from .envelope import (
    KIND_CLIENT_MAC,
    KIND_SERVER_ED25519,
    KIND_SERVER_MAC,
    TAG_SIZES,
    VERSION,
    Payload,
    str_field,
)
from .errors import Code, Rejected, UsageError
from .keys import Ed25519PrivateKey, RandomSource
from .verifier import Message, Verifier

__all__ = ["ServerKey", "ServerSession"]


@dataclass(frozen=True, slots=True)
class ServerKey:
    """The key an `ed25519` server signs its frames with, and its id."""

    kid: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        try:
            str_field(self.kid, "kid", Code.MALFORMED)
        except Rejected as exc:
            raise UsageError(exc.detail) from None
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise UsageError("a server key is an Ed25519PrivateKey")


class ServerSession:
    """One connection, server side.

    Args:
        verifier: the server's shared verifier.
        now: the server's clock, seconds, at connection time.
        server_key: the key to sign `ed25519` server frames with. Without one,
            `send` refuses on `ed25519` connections.
        random: the randomness source for the nonce.
    """

    __slots__ = (
        "_delivered",
        "_hello",
        "_sent_ack",
        "_server_counter",
        "_server_key",
        "state",
        "verifier",
    )

    def __init__(
        self,
        verifier: Verifier,
        *,
        now: float,
        server_key: ServerKey | None = None,
        random: RandomSource = secrets.token_bytes,
    ) -> None:
        self.verifier = verifier
        self.state = verifier.open(now=now, random=random)
        self._hello = verifier.hello(self.state, now=now)
        self._server_key = server_key
        self._server_counter = 0
        self._sent_ack = 0
        self._delivered: int | None = None

    @property
    def hello(self) -> bytes:
        """The hello, to send as the connection's first message."""
        return self._hello

    @property
    def nonce(self) -> bytes:
        """The connection nonce."""
        return self.state.nonce

    @property
    def accepted(self) -> int:
        """The highest client counter accepted (0 before the first)."""
        return self.state.highest

    @property
    def delivered(self) -> int:
        """How far acknowledgements may go (SPEC.md §7.3): the counter up to
        which every accepted frame was delivered. Until `deliver` is first
        called it follows the highest accepted counter (for callers that
        deliver each message as `receive` returns it)."""
        return self.state.highest if self._delivered is None else self._delivered

    def deliver(self, counter: int) -> None:
        """Record that every accepted frame up to ``counter`` was delivered.

        A transport that queues messages for the application calls this as
        the application finishes with them; from the first call on,
        acknowledgements follow these calls instead of verification.

        Raises:
            UsageError: if ``counter`` goes backwards or beyond the highest
                accepted counter.
        """
        if not (self._delivered or 0) <= counter <= self.state.highest:
            raise UsageError(
                f"delivered counter {counter} outside {self._delivered or 0}..{self.state.highest}"
            )
        self._delivered = counter

    @property
    def ack_pending(self) -> bool:
        """Whether frames were delivered since the last acknowledgement sent."""
        return self.delivered > self._sent_ack

    def receive(self, data: bytes, *, now: float) -> Message:
        """Verify a client frame (SPEC.md §6.4).

        Raises:
            Rejected: the frame is refused; close the connection with
                ``exc.code.close_code`` and ``exc.code.peer_reason``.
        """
        return self.verifier.verify(data, self.state, now=now)

    def send(self, payload: Payload, *, now: float) -> bytes:
        """Build a server frame for ``payload`` (None: a pure acknowledgement),
        acknowledging every client frame delivered so far (see `delivered`).

        Raises:
            UsageError: before any client frame was accepted (SPEC.md §7.1), on
                an `ed25519` connection without a server key, or for a payload
                of the wrong type.
        """
        if payload is not None and type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str, bytes or None")
        credential = self.state.credential
        if credential is None:
            raise UsageError("no client frame accepted yet: a server frame has no key")
        if credential.kind == KIND_CLIENT_MAC:
            kind, key_id = KIND_SERVER_MAC, credential.cid
        elif self._server_key is not None:
            kind, key_id = KIND_SERVER_ED25519, self._server_key.kid
        else:
            raise UsageError("an ed25519 connection needs a server_key to send frames")
        size = TAG_SIZES[kind]
        ack = self.delivered
        counter = self._server_counter + 1
        body = envelope.seal(
            [
                VERSION,
                kind,
                key_id,
                self.state.nonce,
                counter,
                ack,
                int(now * 1000),
                payload,
                bytes(size),
            ],
            size,
        )
        if kind == KIND_SERVER_MAC:
            tag = self.verifier.server_mac_tag(credential, body)
        else:
            assert self._server_key is not None  # noqa: S101 - checked above
            tag = self._server_key.private_key.sign(self.verifier.server_signed_input(body))
        self._server_counter = counter
        self._sent_ack = ack
        return body + bytes((0xC4, size)) + tag

    def claim_counter(self) -> int:
        """Take the next server counter for a frame built outside `send`: a
        broadcast frame (SPEC.md §14.3), which shares the connection's server
        counter. Write the frame before any frame `send` builds afterwards.

        Raises:
            UsageError: before any client frame was accepted (SPEC.md §7.1).
        """
        if self.state.credential is None:
            raise UsageError("no client frame accepted yet: a server frame has no key")
        self._server_counter += 1
        return self._server_counter

    def ack(self, *, now: float) -> bytes:
        """A pure acknowledgement frame (see `send`)."""
        return self.send(None, now=now)

    def __repr__(self) -> str:
        return f"ServerSession(accepted={self.state.highest}, sent={self._server_counter})"
