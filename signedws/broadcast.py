"""Authenticated broadcast frames (SPEC.md §14), sans I/O.

Theory of operation
-------------------
A broadcast sends one message of a topic to many connections. The server makes
one `Broadcast` per message: it encodes the body (topic, per-topic sequence
number ``tseq``, time, payload) and hashes it once. Each recipient then costs a
**binding** of that hash to the connection's nonce and server counter:

- `mac` connections: one HMAC under the connection's frame key
  (`Broadcast.mac_frame`);
- `ed25519` connections: the bindings of a batch are the leaves of a hash tree
  whose root the server signs once; each frame carries the signature and its
  leaf's path (`Broadcast.ed25519_frames`).

`Broadcaster.frames` does both for a list of `ServerSession`s, taking each
one's next server counter; it keeps the frame keys' HMAC contexts between
messages. It does no I/O: the transport writes each frame to its
connection, in counter order with the connection's other server frames.

The client checks a broadcast frame with `check` (pure: nothing changes) and
commits it: `signedws.signer.Signer.verify_broadcast` does both, against the
connection's server counter and the client's `Topics` (the per-topic marks
that survive reconnects, like the client's stream).
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple

import msgpack
from cryptography.hazmat.primitives import hmac as c_hmac

from .envelope import (
    DEFAULT_MAX_SERVER_FRAME_SIZE,
    NONCE_SIZE,
    VERSION,
    decode_canonical,
    describe,
    length_prefixed,
    str_field,
    uint_field,
)
from .errors import Code, Rejected, UsageError
from .keys import Ed25519PublicKey, HMACKey
from .replay import MAX_COUNTER

if TYPE_CHECKING:
    from .server import ServerKey, ServerSession

__all__ = [
    "BINDING_LABEL",
    "BODY_LABEL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_MAX_TOPICS",
    "KIND_BROADCAST_BODY",
    "KIND_BROADCAST_ED25519",
    "KIND_BROADCAST_MAC",
    "MAX_PATH_HASHES",
    "ROOT_LABEL",
    "Broadcast",
    "BroadcastBody",
    "BroadcastFrame",
    "BroadcastMessage",
    "Broadcaster",
    "Topics",
    "check",
    "fold",
    "parse_body",
    "parse_frame",
]

KIND_BROADCAST_MAC: Final = 6
KIND_BROADCAST_ED25519: Final = 7
KIND_BROADCAST_BODY: Final = 8

BODY_LABEL: Final = b"signedws/v1 broadcast-body\x00"
BINDING_LABEL: Final = b"signedws/v1 broadcast\x00"
ROOT_LABEL: Final = b"signedws/v1 broadcast-root\x00"

#: Longest authentication path a client accepts, in 32-byte hashes (§14.5).
MAX_PATH_HASHES: Final = 32
#: How many topic marks a client keeps by default (§14.5).
DEFAULT_MAX_TOPICS: Final = 4096
#: How many frame keys' HMAC contexts a `Broadcaster` keeps by default.
DEFAULT_CACHE_SIZE: Final = 16384
#: How many `ed25519` recipients share one signature by default (§14.3):
#: 8 hashes of path, a signature's cost spread over 256 recipients.
DEFAULT_BATCH_SIZE: Final = 256

_TAG_SIZES: Final = {KIND_BROADCAST_MAC: 32, KIND_BROADCAST_ED25519: 64}
_sha256: Final = hashlib.sha256


def _packer() -> Callable[[object], bytes]:
    """A shared C packer (see `signedws.envelope`): canonical, no per-call setup."""
    packer = msgpack.Packer(use_bin_type=True)
    if type(packer).__module__ != "msgpack._cmsgpack":  # pragma: no cover - no C extension
        return functools.partial(msgpack.packb, use_bin_type=True)
    pack: Callable[[object], bytes] = packer.pack
    return pack


_pack: Final = _packer()


# -- body (SPEC.md §14.1) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class BroadcastBody:
    """A decoded broadcast body."""

    topic: str
    tseq: int
    timestamp_ms: int
    payload: str | bytes


def parse_body(data: bytes) -> BroadcastBody:
    """Decode a body and check its shape (§14.4 step 2).

    Raises:
        Rejected: `malformed` or `unsupported_version`.
    """
    fields = decode_canonical(data)  # refuses an empty array (§2)
    version = fields[0]
    if type(version) is not int or version != VERSION:
        raise Rejected(Code.UNSUPPORTED_VERSION, f"body version {describe(version)}")
    if len(fields) != 6:
        raise Rejected(Code.MALFORMED, f"body has {len(fields)} elements, not 6")
    _, kind, topic, tseq, ts, payload = fields
    if type(kind) is not int or kind != KIND_BROADCAST_BODY:
        raise Rejected(Code.MALFORMED, f"body kind {describe(kind)}")
    topic = str_field(topic, "topic", Code.MALFORMED)
    number = uint_field(tseq, "tseq", Code.MALFORMED)
    if number < 1:
        raise Rejected(Code.MALFORMED, "tseq is 0")
    timestamp = uint_field(ts, "ts", Code.MALFORMED)
    if type(payload) is not str and type(payload) is not bytes:
        raise Rejected(Code.MALFORMED, "body payload is not a str or bin")
    return BroadcastBody(topic, number, timestamp, payload)


def _prefixes(audience: str) -> tuple[bytes, bytes, bytes]:
    aud = length_prefixed(audience.encode())
    return BODY_LABEL + aud, BINDING_LABEL + aud, ROOT_LABEL + aud


def _node(a: bytes, b: bytes) -> bytes:
    return _sha256(b"\x01" + a + b if a <= b else b"\x01" + b + a).digest()


def fold(leaf: bytes, path: bytes) -> bytes:
    """The root a leaf and its path lead to (§14.2)."""
    node = leaf
    for i in range(0, len(path), 32):
        node = _node(node, path[i : i + 32])
    return node


def _tree(leaves: list[bytes]) -> tuple[bytes, list[bytes]]:
    """The root of ``leaves`` and each leaf's path (§14.3 steps 6 and 8)."""
    levels = [leaves]
    level = leaves
    while len(level) > 1:
        up = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])  # an odd last node is carried up unchanged
        levels.append(up)
        level = up
    root = level[0]
    # suffix[j]: the path from node j of a level up to the root, top-down.
    suffix = [b""]
    for nodes in reversed(levels[:-1]):
        size = len(nodes)
        suffix = [(nodes[j ^ 1] if j ^ 1 < size else b"") + suffix[j >> 1] for j in range(size)]
    return root, suffix


# -- server side (SPEC.md §14.3) ----------------------------------------------


class Broadcast:
    """One message of a topic, encoded and hashed once (§14.3 steps 1-2).

    Args:
        topic: the topic, 1 to 255 UTF-8 bytes.
        tseq: the message's number in the topic, from 1 (assigned by whoever
            orders the topic).
        payload: str (text) or bytes (binary).
        audience: the server's audience.
        now: the publisher's clock, seconds.
        timestamp_ms: the body's time in milliseconds, instead of ``now``'s:
            every node of a fleet sends the same body (§14.1).

    Raises:
        UsageError: for an invalid topic, ``tseq``, payload or time.
    """

    __slots__ = (
        "_binding_prefix",
        "_root_prefix",
        "audience",
        "body",
        "body_hash",
        "topic",
        "tseq",
    )

    def __init__(
        self,
        topic: str,
        tseq: int,
        payload: str | bytes,
        *,
        audience: str,
        now: float,
        timestamp_ms: int | None = None,
    ) -> None:
        try:
            str_field(topic, "topic", Code.MALFORMED)
            str_field(audience, "audience", Code.MALFORMED)
        except Rejected as exc:
            raise UsageError(exc.detail) from None
        if type(tseq) is not int or not 1 <= tseq <= MAX_COUNTER:
            raise UsageError("tseq must be an integer from 1 to 2**64-1")
        if type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str or bytes")
        if timestamp_ms is None:
            timestamp_ms = int(now * 1000)
        elif type(timestamp_ms) is not int or not 0 <= timestamp_ms <= MAX_COUNTER:
            raise UsageError("timestamp_ms must be an integer from 0 to 2**64-1")
        self.topic = topic
        self.tseq = tseq
        self.audience = audience
        self.body = _pack([VERSION, KIND_BROADCAST_BODY, topic, tseq, timestamp_ms, payload])
        body_prefix, self._binding_prefix, self._root_prefix = _prefixes(audience)
        self.body_hash = _sha256(body_prefix + self.body).digest()

    def binding(self, nonce: bytes, counter: int) -> bytes:
        """The binding input of one connection (§14.2)."""
        return self._binding_prefix + nonce + counter.to_bytes(8, "big") + self.body_hash

    def mac_frame(self, nonce: bytes, counter: int, cid: str, frame_key: HMACKey) -> bytes:
        """The frame for one `mac` connection (§14.3 steps 3-4)."""
        tag = frame_key.mac(self.binding(nonce, counter))
        return _pack([VERSION, KIND_BROADCAST_MAC, cid, nonce, counter, self.body, b"", tag])

    def ed25519_frames(
        self, recipients: Sequence[tuple[bytes, int]], server_key: ServerKey
    ) -> list[bytes]:
        """The frames for one batch of `ed25519` connections, one signature
        for all (§14.3 steps 5-8).

        Args:
            recipients: each connection's ``(nonce, counter)``.
            server_key: the key to sign the batch's root with.

        Raises:
            UsageError: for an empty batch or one over 2**32 recipients.
        """
        if not 0 < len(recipients) <= 1 << MAX_PATH_HASHES:
            raise UsageError("a batch has 1 to 2**32 recipients")
        prefix = b"\x00" + self._binding_prefix
        tail = self.body_hash
        leaves = [
            _sha256(prefix + nonce + counter.to_bytes(8, "big") + tail).digest()
            for nonce, counter in recipients
        ]
        root, paths = _tree(leaves)
        tag = server_key.private_key.sign(self._root_prefix + root)
        head = (VERSION, KIND_BROADCAST_ED25519, server_key.kid)
        body = self.body
        return [
            _pack([*head, nonce, counter, body, path, tag])
            for (nonce, counter), path in zip(recipients, paths, strict=True)
        ]

    def __repr__(self) -> str:
        return f"Broadcast(topic={self.topic!r}, tseq={self.tseq}, body={len(self.body)} bytes)"


class Broadcaster:
    """Fans broadcasts out to the server sessions of one audience (§14.3).

    Long-lived (one per server): it keeps, per frame key, an HMAC context that
    has absorbed the binding's constant prefix, so that a `mac` recipient
    costs one context copy and a 104-byte update. The contexts are bounded
    (``cache_size``; the oldest is dropped first) and hold nothing a session
    does not already hold.

    Args:
        audience: the server's audience.
        server_key: the key to sign `ed25519` batches with; without one,
            `ed25519` sessions get no frame.
        batch_size: `ed25519` recipients per signature (§14.3; 256: 8-hash
            paths).
        cache_size: how many frame keys' HMAC contexts to keep.

    Raises:
        UsageError: for an invalid audience, batch size or cache size.
    """

    __slots__ = ("_contexts", "_prefix", "audience", "batch_size", "cache_size", "server_key")

    def __init__(
        self,
        audience: str,
        *,
        server_key: ServerKey | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        try:
            str_field(audience, "audience", Code.MALFORMED)
        except Rejected as exc:
            raise UsageError(exc.detail) from None
        if type(batch_size) is not int or not 1 <= batch_size <= 1 << MAX_PATH_HASHES:
            raise UsageError("batch_size must be an integer from 1 to 2**32")
        if type(cache_size) is not int or cache_size < 1:
            raise UsageError("cache_size must be a positive integer")
        self.audience = audience
        self.server_key = server_key
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._prefix = _prefixes(audience)[1]
        # id(frame key) -> (the frame key, its prefixed HMAC context).
        self._contexts: dict[int, tuple[HMACKey, c_hmac.HMAC]] = {}

    def message(
        self,
        topic: str,
        tseq: int,
        payload: str | bytes,
        *,
        now: float,
        timestamp_ms: int | None = None,
    ) -> Broadcast:
        """A `Broadcast` for this audience (see `Broadcast`)."""
        return Broadcast(
            topic, tseq, payload, audience=self.audience, now=now, timestamp_ms=timestamp_ms
        )

    def _context(self, frame_key: HMACKey) -> c_hmac.HMAC:
        entry = self._contexts.get(id(frame_key))
        if entry is not None and entry[0] is frame_key:
            return entry[1]
        context = frame_key.prefixed_mac(self._prefix)
        if len(self._contexts) >= self.cache_size:
            del self._contexts[next(iter(self._contexts))]
        self._contexts[id(frame_key)] = (frame_key, context)
        return context

    def frames(self, message: Broadcast, sessions: Sequence[ServerSession]) -> list[bytes | None]:
        """The frame of ``message`` for each session, taking each one's next
        server counter; write each to its connection before that session's
        next `ServerSession.send_message` frame.

        ``None`` for a session that cannot be sent a server frame yet (no
        client frame accepted, §14.3), or an `ed25519` one without a
        ``server_key``; those take no counter.

        Raises:
            UsageError: if ``message`` was made for another audience.
        """
        if message.audience != self.audience:
            raise UsageError("the message was made for another audience")
        server_key = self.server_key
        frames: list[bytes | None] = [None] * len(sessions)
        batch: list[tuple[bytes, int]] = []
        where: list[int] = []
        body, tail = message.body, message.body_hash
        head = (VERSION, KIND_BROADCAST_MAC)

        def flush() -> None:
            assert server_key is not None  # noqa: S101 - only batched with a key
            for i, frame in zip(where, message.ed25519_frames(batch, server_key), strict=True):
                frames[i] = frame
            batch.clear()
            where.clear()

        for i, session in enumerate(sessions):
            credential = session.verifier_state.credential
            if credential is None:
                continue
            frame_key = credential.frame_key
            if frame_key is not None:
                nonce, counter = session.nonce, session.claim_counter()
                mac = self._context(frame_key).copy()
                mac.update(nonce + counter.to_bytes(8, "big") + tail)
                frames[i] = _pack(
                    [*head, credential.cid, nonce, counter, body, b"", mac.finalize()]
                )
            elif server_key is not None:
                batch.append((session.nonce, session.claim_counter()))
                where.append(i)
                if len(batch) == self.batch_size:
                    flush()
        if batch:
            flush()
        return frames

    def __repr__(self) -> str:
        return f"Broadcaster(audience={self.audience!r}, contexts={len(self._contexts)})"


# -- client side (SPEC.md §14.4) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class BroadcastFrame:
    """A decoded broadcast frame; unverified until `check` returns."""

    kind: int
    key_id: str
    nonce: bytes
    counter: int
    body: bytes
    path: bytes
    tag: bytes
    message: BroadcastBody


def parse_frame(data: bytes, *, max_size: int = DEFAULT_MAX_SERVER_FRAME_SIZE) -> BroadcastFrame:
    """Decode a broadcast frame and its body (§14.4 steps 1-2).

    Raises:
        Rejected: `frame_too_large`, `malformed` or `unsupported_version`.
    """
    if len(data) > max_size:
        raise Rejected(Code.FRAME_TOO_LARGE, f"broadcast frame of {len(data)} bytes")
    fields = decode_canonical(data)  # refuses an empty array (§2)
    version = fields[0]
    if type(version) is not int or version != VERSION:
        raise Rejected(Code.UNSUPPORTED_VERSION, f"version {describe(version)}")
    if len(fields) != 8:
        raise Rejected(Code.MALFORMED, f"broadcast frame has {len(fields)} elements, not 8")
    _, kind, key_id, nonce, ctr, body, path, tag = fields
    if type(kind) is not int or kind not in _TAG_SIZES:
        raise Rejected(Code.MALFORMED, f"kind {describe(kind)} is not a broadcast kind")
    key_id = str_field(key_id, "key_id", Code.MALFORMED)
    if type(nonce) is not bytes or len(nonce) != NONCE_SIZE:
        raise Rejected(Code.MALFORMED, f"nonce is not a bin({NONCE_SIZE})")
    counter = uint_field(ctr, "ctr", Code.MALFORMED)
    if counter < 1:
        raise Rejected(Code.MALFORMED, "ctr is 0")
    if type(body) is not bytes:
        raise Rejected(Code.MALFORMED, "body is not a bin")
    if type(path) is not bytes or len(path) % 32 or len(path) > 32 * MAX_PATH_HASHES:
        raise Rejected(Code.MALFORMED, f"path is not a bin of up to {MAX_PATH_HASHES} hashes")
    if kind == KIND_BROADCAST_MAC and path:
        raise Rejected(Code.MALFORMED, "a mac broadcast has an empty path")
    if type(tag) is not bytes or len(tag) != _TAG_SIZES[kind]:
        raise Rejected(Code.MALFORMED, f"tag is not a bin({_TAG_SIZES[kind]})")
    return BroadcastFrame(kind, key_id, nonce, counter, body, path, tag, parse_body(body))


class BroadcastMessage(NamedTuple):
    """A verified broadcast."""

    #: The connection's server counter the frame carried.
    counter: int
    topic: str
    #: The message's number in the topic.
    tseq: int
    #: How many of the topic's messages were skipped since the last one this
    #: client received (a gap, §14.4 step 9); 0 for a topic's first message.
    missed: int
    payload: str | bytes
    #: The publisher's time, milliseconds.
    timestamp_ms: int


class Topics:
    """The client's topic marks (§14.4): per topic, the highest ``tseq``
    delivered. Keep one for the life of the client, across reconnects.

    Bounded: past ``max_topics`` the least recently delivered topic's mark
    is dropped (§14.5).
    """

    __slots__ = ("_marks", "max_topics")

    def __init__(
        self, marks: Mapping[str, int] | None = None, *, max_topics: int = DEFAULT_MAX_TOPICS
    ) -> None:
        if type(max_topics) is not int or max_topics < 1:
            raise UsageError("max_topics must be a positive integer")
        self.max_topics = max_topics
        self._marks: OrderedDict[str, int] = OrderedDict()
        for topic, tseq in (marks or {}).items():
            if type(tseq) is not int or not 1 <= tseq <= MAX_COUNTER:
                raise UsageError("a mark is an integer from 1 to 2**64-1")
            self._commit(topic, tseq)

    def mark(self, topic: str) -> int | None:
        """The highest ``tseq`` delivered for ``topic``, or None."""
        return self._marks.get(topic)

    def __len__(self) -> int:
        return len(self._marks)

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._marks))

    def _commit(self, topic: str, tseq: int) -> None:
        self._marks[topic] = tseq
        self._marks.move_to_end(topic)
        while len(self._marks) > self.max_topics:
            self._marks.popitem(last=False)

    def commit(self, message: BroadcastMessage) -> None:
        """Record a verified message as delivered (§14.4 step 9)."""
        self._commit(message.topic, message.tseq)

    def __repr__(self) -> str:
        return f"Topics({len(self._marks)} topics)"


def check(
    data: bytes,
    *,
    audience: str,
    nonce: bytes,
    server_counter: int,
    mac: bool,
    frame_keys: Mapping[str, HMACKey],
    server_keys: Mapping[str, Ed25519PublicKey],
    topics: Topics,
    max_size: int = DEFAULT_MAX_SERVER_FRAME_SIZE,
) -> BroadcastMessage:
    """Verify a broadcast frame (§14.4 steps 1-8). Changes nothing: the
    caller commits the result (its server counter, and `Topics.commit`).

    Args:
        data: the exact bytes received.
        audience: the server's audience.
        nonce: the connection nonce.
        server_counter: the highest server counter received on the connection.
        mac: whether the client's scheme is `mac` (else `ed25519`).
        frame_keys: the frame keys the client holds, by ``cid`` (`mac`).
        server_keys: the server public keys, by id (`ed25519`).
        topics: the client's topic marks.

    Raises:
        Rejected: with the code of the first failing step.
    """
    frame = parse_frame(data, max_size=max_size)
    if frame.kind != (KIND_BROADCAST_MAC if mac else KIND_BROADCAST_ED25519):
        raise Rejected(Code.SCHEME_MISMATCH, f"broadcast kind {frame.kind}")
    if frame.nonce != nonce:
        raise Rejected(Code.NONCE_MISMATCH, "not this connection's nonce")
    if frame.counter <= server_counter:
        raise Rejected(Code.REPLAY, f"server counter {frame.counter} not above {server_counter}")
    body = frame.message
    mark = topics.mark(body.topic)
    if mark is not None and body.tseq <= mark:
        raise Rejected(Code.REPLAY, f"tseq {body.tseq} not above the topic's mark {mark}")
    body_prefix, binding_prefix, root_prefix = _prefixes(audience)
    binding = (
        binding_prefix
        + nonce
        + frame.counter.to_bytes(8, "big")
        + _sha256(body_prefix + frame.body).digest()
    )
    if frame.kind == KIND_BROADCAST_MAC:
        frame_key = frame_keys.get(frame.key_id)
        if frame_key is None:
            raise Rejected(Code.UNKNOWN_KEY, f"no frame key for cid {frame.key_id!r}")
        frame_key.verify(frame.tag, binding)  # raises Rejected: bad_tag
    else:
        server_key = server_keys.get(frame.key_id)
        if server_key is None:
            raise Rejected(Code.UNKNOWN_KEY, f"no server key {frame.key_id!r}")
        root = fold(_sha256(b"\x00" + binding).digest(), frame.path)
        server_key.verify(frame.tag, root_prefix + root)  # raises Rejected: bad_signature
    missed = 0 if mark is None else body.tseq - mark - 1
    return BroadcastMessage(
        frame.counter, body.topic, body.tseq, missed, body.payload, body.timestamp_ms
    )
