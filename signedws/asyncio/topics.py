"""Topics: one authenticated message to many connections (SPEC.md §14).

::

    from signedws.asyncio.topics import topics

    async def handler(connection):
        room = topics()  # the process's: in-process, or across the fleet over Redis
        async for message in connection:
            if "chat" in message.scopes:
                room.subscribe(connection, "room:general")  # the application decides
                await room.publish("room:general", f"{message.subject}: {message.payload}")

Theory of operation
-------------------
A topic has subscribers (connections, chosen by the application: scopes are
the natural check) and a sequence: each message gets the topic's next
``tseq``. `LocalTopics` numbers and delivers in this process; `RedisTopics`
numbers with a Redis ``INCR`` and publishes on a Redis channel in one script
(so the channel carries a topic's messages in ``tseq`` order), and every node
(this one too) delivers what it reads from the channel to its own
subscribers. Both have the same methods; ``signedws serve`` installs one
(`topics`), a `RedisTopics` when ``[redis].url`` is set.

Delivering one message to a node's subscribers (`deliver`) is one step of
the event loop, with no ``await``: the body is encoded and hashed once
(`signedws.broadcast.Broadcast`), each connection's counter is claimed and its
binding made (`signedws.broadcast.Broadcaster`), and the frame is written
without waiting (`ServerConnection.write_frame`). Frames therefore leave in
counter order with the connection's own frames, and messages of a topic in
``tseq`` order. A connection whose write buffer holds more than
``max_buffer`` bytes is *slow*: under ``SlowPolicy.SKIP`` it misses the
message (its client sees the gap as ``missed``, §14.4 step 9); under
``SlowPolicy.CLOSE`` it is closed (1013, "too slow") and unsubscribed. Never
does one connection make the others wait. The `Delivery` says who got it.

Invariants:

1. A connection is sent a topic's messages only while subscribed, and only
   after its first client frame was accepted (§14.3); before that it is
   listed as ``waiting`` and misses the message.
2. Per node, a topic's messages are delivered in ``tseq`` order and at most
   once: a message at or below the last one delivered for the topic is
   dropped (a Redis reconnect cannot replay one, which the client would
   refuse with ``replay``).
3. Memory: subscriptions are dropped when their connection closes (at the
   next delivery, or by `unsubscribe_all`); a connection's unsent frames are
   bounded by ``max_buffer`` plus one frame. Topic counters are kept for the
   life of the process (`LocalTopics`) or of the Redis data (`RedisTopics`):
   a topic's numbering never restarts (§14.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgpack

from ..broadcast import DEFAULT_BATCH_SIZE, Broadcast, Broadcaster
from ..envelope import str_field
from ..errors import Code, Rejected, UsageError
from ..server import ServerKey

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .connection import ServerConnection

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "MAX_HISTORY",
    "SLOW_CLOSE_CODE",
    "Delivery",
    "LocalTopics",
    "Published",
    "RedisTopics",
    "SlowPolicy",
    "install",
    "topics",
]

logger = logging.getLogger(__name__)

#: A connection with more unsent bytes than this is slow (256 KiB).
DEFAULT_MAX_BUFFER: Final = 256 * 1024
#: The longest history `resume` reads, and the most live messages it holds
#: while reading it.
MAX_HISTORY: Final = 10_000
#: `resume` lets the event loop run after this many messages.
RESUME_SLICE: Final = 64
#: The close code of a slow connection under `SlowPolicy.CLOSE` (RFC 6455
#: §7.4.1, "Try Again Later": a client reconnects).
SLOW_CLOSE_CODE: Final = 1013


class SlowPolicy(enum.Enum):
    """What happens to a slow connection (see the module's docstring)."""

    #: It misses the message; its client sees the gap (``missed``).
    SKIP = "skip"
    #: It is closed (1013) and unsubscribed.
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class Delivery:
    """Who one node sent one message to."""

    topic: str
    tseq: int
    #: Written to their connection (not yet necessarily received).
    sent: tuple[ServerConnection, ...] = ()
    #: Slow, under `SlowPolicy.SKIP`: they missed it.
    skipped: tuple[ServerConnection, ...] = ()
    #: Slow, under `SlowPolicy.CLOSE`: closed and unsubscribed.
    closed: tuple[ServerConnection, ...] = ()
    #: No client frame accepted yet, or an `ed25519` connection on a server
    #: without a server key: not sent, still subscribed.
    waiting: tuple[ServerConnection, ...] = ()


@dataclass(frozen=True, slots=True)
class Published:
    """What `publish` did."""

    topic: str
    tseq: int
    #: How many nodes received it (`LocalTopics`: 1).
    nodes: int
    #: This node's `Delivery` if it was made before `publish` returned
    #: (`LocalTopics`); None for `RedisTopics`, whose nodes deliver when the
    #: message comes back on the channel (see `RedisTopics.on_delivery`).
    delivery: Delivery | None


def _topic(topic: object) -> str:
    try:
        return str_field(topic, "topic", Code.MALFORMED)
    except Rejected as exc:
        raise UsageError(exc.detail) from None


class LocalTopics:
    """Topics in this process (see the module's docstring).

    Args:
        audience: the server's audience.
        server_key: the key `ed25519` connections' broadcasts are signed with
            (without one they get none).
        max_buffer: unsent bytes above which a connection is slow.
        slow: what happens to a slow connection.
        batch_size: `ed25519` connections per signature (SPEC.md §14.3).
        clock: wall-clock seconds, for the body's time.
        history: how many of each topic's last messages to keep for `resume`
            (0: none).

    Raises:
        UsageError: for an invalid audience, limit, policy or history.
    """

    def __init__(
        self,
        audience: str,
        *,
        server_key: ServerKey | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        slow: SlowPolicy = SlowPolicy.SKIP,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Callable[[], float] = time.time,
        history: int = 0,
    ) -> None:
        if type(max_buffer) is not int or max_buffer < 0:
            raise UsageError("max_buffer must be a non-negative integer")
        if type(history) is not int or not 0 <= history <= MAX_HISTORY:
            raise UsageError(f"history must be an integer from 0 to {MAX_HISTORY}")
        if not isinstance(slow, SlowPolicy):
            raise UsageError("slow must be a SlowPolicy")
        self._broadcaster = Broadcaster(audience, server_key=server_key, batch_size=batch_size)
        self.audience = audience
        self.max_buffer = max_buffer
        self.slow = slow
        self._clock = clock
        # topic -> its subscribers, in subscription order (a dict: ordered set).
        self._subscribers: dict[str, dict[ServerConnection, None]] = {}
        self._topics_of: dict[ServerConnection, set[str]] = {}
        # topic -> the last tseq delivered on this node (subscribed topics only).
        self._delivered: dict[str, int] = {}
        # topic -> the last tseq assigned here (`LocalTopics.publish`).
        self._numbers: dict[str, int] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.history = history
        # topic -> its last `history` messages (`LocalTopics`; Redis keeps its own).
        self._past: dict[str, deque[Broadcast]] = {}
        # (connection, topic) -> live messages held while `resume` reads history.
        self._catching_up: dict[tuple[ServerConnection, str], list[Broadcast]] = {}

    # -- subscriptions ----------------------------------------------------------

    def subscribe(self, connection: ServerConnection, topic: str) -> None:
        """Send ``connection`` the topic's messages from the next one on.
        Idempotent. The application decides (check the principal's scopes).

        Raises:
            UsageError: for a topic that is not 1 to 255 UTF-8 bytes.
        """
        topic = _topic(topic)
        if connection.closed:
            return
        self._subscribers.setdefault(topic, {})[connection] = None
        self._topics_of.setdefault(connection, set()).add(topic)

    def unsubscribe(self, connection: ServerConnection, topic: str) -> None:
        """Stop sending ``connection`` the topic's messages (idempotent)."""
        members = self._subscribers.get(topic)
        if members is None or connection not in members:
            return
        del members[connection]
        if not members:
            del self._subscribers[topic]
            self._delivered.pop(topic, None)
        held = self._topics_of[connection]
        held.discard(topic)
        if not held:
            del self._topics_of[connection]

    def unsubscribe_all(self, connection: ServerConnection) -> None:
        """Drop every subscription of ``connection`` (a handler's ``finally``)."""
        for topic in list(self._topics_of.get(connection, ())):
            self.unsubscribe(connection, topic)

    def subscribed(self, connection: ServerConnection) -> frozenset[str]:
        """The topics ``connection`` is subscribed to."""
        return frozenset(self._topics_of.get(connection, ()))

    def subscribers(self, topic: str) -> int:
        """How many connections of this node are subscribed to ``topic``."""
        return len(self._subscribers.get(topic, ()))

    # -- publishing ---------------------------------------------------------------

    async def publish(self, topic: str, payload: str | bytes) -> Published:
        """Send ``payload`` to every subscriber of ``topic`` (in this process).

        Raises:
            UsageError: for an invalid topic or payload.
        """
        topic = _topic(topic)
        tseq = self._numbers.get(topic, 0) + 1
        message = self._broadcaster.message(topic, tseq, payload, now=self._clock())
        self._numbers[topic] = tseq
        if self.history:
            self._past.setdefault(topic, deque(maxlen=self.history)).append(message)
        return Published(topic, tseq, 1, self.deliver(message))

    async def _history_after(self, topic: str, after: int) -> list[Broadcast]:
        """The kept messages of ``topic`` numbered above ``after``, in order."""
        return [m for m in self._past.get(topic, ()) if m.tseq > after]

    async def resume(self, connection: ServerConnection, topic: str, *, after: int) -> int:
        """Subscribe ``connection`` to ``topic`` and first send it the kept
        messages numbered above ``after`` (the client's mark for the topic,
        `signedws.broadcast.Topics.mark`, which it sends the application on a
        reconnect), then the live ones: in order, none twice. Messages no
        longer kept show as a gap (``missed``) at the client.

        Returns:
            How many messages were sent from the history and the catch-up.

        Raises:
            UsageError: for an invalid topic or ``after``.
        """
        topic = _topic(topic)
        if type(after) is not int or after < 0:
            raise UsageError("after must be a non-negative integer")
        if connection.closed:
            return 0
        key = (connection, topic)
        held = self._catching_up[key] = []
        self.subscribe(connection, topic)
        sent, last = 0, after
        try:
            pending = deque(await self._history_after(topic, after) if self.history else ())
            # Until nothing is pending or held, live messages keep being held:
            # no await between the last check and the end of the catch-up.
            while pending or held:
                if not pending:
                    pending.extend(held)
                    held.clear()
                message = pending.popleft()
                if message.tseq <= last:
                    continue
                frame = self._broadcaster.frames(message, [connection.session])[0]
                if frame is None or not connection.write_frame(frame):
                    break
                sent, last = sent + 1, message.tseq
                if not sent % RESUME_SLICE:
                    await asyncio.sleep(0)  # an ed25519 history is a signature per message
        finally:
            self._catching_up.pop(key, None)
        return sent

    def deliver(self, message: Broadcast) -> Delivery:
        """Send one numbered message to this node's subscribers of its topic,
        in this event-loop step (see the module's docstring).

        Raises:
            UsageError: if ``message`` was made for another audience.
        """
        if message.audience != self.audience:
            raise UsageError("the message was made for another audience")
        topic, tseq = message.topic, message.tseq
        members = self._subscribers.get(topic)
        if not members:
            return Delivery(topic, tseq)
        last = self._delivered.get(topic, 0)
        if tseq <= last:
            # A replay (clients would refuse it) or a counter that went back:
            # Redis lost its data. The topic resumes past ``last`` (SPEC.md §14.1).
            logger.warning("topic %r: message %d at or below %d dropped", topic, tseq, last)
            return Delivery(topic, tseq)
        self._delivered[topic] = tseq
        limit = self.max_buffer
        ready: list[ServerConnection] = []
        slow: list[ServerConnection] = []
        waiting: list[ServerConnection] = []
        gone: list[ServerConnection] = []
        catching = self._catching_up
        for connection in members:
            if catching and (connection, topic) in catching:
                held = catching[connection, topic]
                if len(held) < MAX_HISTORY:
                    held.append(message)  # sent after the history, by `resume`
                continue
            if not connection.writable:
                (gone if connection.closed else waiting).append(connection)
            elif connection.buffered > limit:
                slow.append(connection)
            else:
                ready.append(connection)
        frames = self._broadcaster.frames(message, [c.session for c in ready])
        sent: list[ServerConnection] = []
        for connection, frame in zip(ready, frames, strict=True):
            if frame is None:
                waiting.append(connection)
            elif connection.write_frame(frame):
                sent.append(connection)
            else:
                gone.append(connection)
        for connection in gone:
            self.unsubscribe_all(connection)
        if slow and self.slow is SlowPolicy.CLOSE:
            for connection in slow:
                self.unsubscribe_all(connection)
                task = asyncio.get_running_loop().create_task(
                    connection.close(SLOW_CLOSE_CODE, "too slow")
                )
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            return Delivery(topic, tseq, tuple(sent), (), tuple(slow), tuple(waiting))
        return Delivery(topic, tseq, tuple(sent), tuple(slow), (), tuple(waiting))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(audience={self.audience!r}, topics={len(self._subscribers)}, "
            f"connections={len(self._topics_of)})"
        )


# -- across the fleet: Redis pub/sub ----------------------------------------------------

#: INCR the topic's counter and PUBLISH under it, atomically: the channel
#: carries a topic's messages in tseq order. Returns {tseq, receivers}.
_PUBLISH: Final = """
local tseq = redis.call('INCR', KEYS[1])
local nodes = redis.call('PUBLISH', KEYS[2], string.format('%d ', tseq) .. ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], string.format('%d-1', tseq), 'm', ARGV[1])
end
return {tseq, nodes}
"""


class RedisTopics(LocalTopics):
    """Topics across a fleet over Redis pub/sub (see the module's docstring).

    Keys under the prefix ``P`` (``[redis].prefix``): ``P:topic-seq:<topic>``
    (a string, the topic's last ``tseq``), the channel ``P:topic:<topic>``,
    carrying ``b"<tseq> " + msgpack([ts_ms, payload])``, and with
    ``history`` the stream ``P:topic-log:<topic>`` (about its last
    ``history`` messages, entry ids ``<tseq>-1``, field ``m`` the msgpack)
    that `resume` reads on any node.
    Every node subscribes to ``P:topic:*`` and delivers what it reads; a
    message sent while a node's subscription was down is missed by its
    subscribers (their clients see the gap).

    Args:
        client: a ``redis.asyncio.Redis`` returning bytes
            (``signedws.asyncio.redis.connect_redis(url, decode=False)``).
        audience, server_key, max_buffer, slow, batch_size, clock: as `LocalTopics`.
        prefix: the key prefix.
        on_delivery: called with each `Delivery` this node makes.
    """

    def __init__(
        self,
        client: Redis,
        audience: str,
        *,
        prefix: str = "signedws",
        server_key: ServerKey | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        slow: SlowPolicy = SlowPolicy.SKIP,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Callable[[], float] = time.time,
        history: int = 0,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        super().__init__(
            audience,
            server_key=server_key,
            max_buffer=max_buffer,
            slow=slow,
            batch_size=batch_size,
            clock=clock,
            history=history,
        )
        self._client = client
        self._channel = f"{prefix}:topic:"
        self._counter = f"{prefix}:topic-seq:"
        self._log = f"{prefix}:topic-log:"
        self._script = client.register_script(_PUBLISH)
        self._ready = asyncio.Event()
        self.on_delivery = on_delivery

    async def publish(self, topic: str, payload: str | bytes) -> Published:
        """Number ``payload`` in ``topic`` fleet-wide and publish it; every
        node's subscribers get it (this node's when it comes back on the
        channel).

        Raises:
            UsageError: for an invalid topic or payload.
            redis.exceptions.RedisError: Redis unreachable (nothing published).
        """
        topic = _topic(topic)
        if type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str or bytes")
        data = msgpack.packb([int(self._clock() * 1000), payload], use_bin_type=True)
        keys = [self._counter + topic, self._channel + topic, self._log + topic]
        tseq, nodes = await self._script(keys=keys, args=[data, self.history])
        return Published(topic, int(tseq), int(nodes), None)

    async def _history_after(self, topic: str, after: int) -> list[Broadcast]:
        """From the topic's Redis stream (entry ids ``<tseq>-1``)."""
        entries: Any = await self._client.xrange(
            self._log + topic, f"{after + 1}-0", "+", count=self.history
        )
        channel = (self._channel + topic).encode()
        past = []
        for entry in entries or ():
            try:
                entry_id, fields = entry
                message = self._parse(channel, entry_id.split(b"-")[0] + b" " + fields[b"m"])
            except (TypeError, KeyError, ValueError, UsageError, msgpack.UnpackException) as exc:
                logger.warning("topics: a bad history entry of %r dropped: %s", topic, exc)
                continue
            if message is not None:
                past.append(message)
        return past

    async def wait_ready(self) -> None:
        """Wait until this node is subscribed to the channels."""
        await self._ready.wait()

    async def run(self, *, retry: float = 1.0) -> None:
        """Follow the channels until cancelled; on a failure, log it, wait
        ``retry`` seconds and subscribe again."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis errors, a lost connection
                self._ready.clear()
                logger.warning(
                    "topics: Redis subscription lost (%s); retrying", type(exc).__name__
                )
                await asyncio.sleep(retry)

    async def _follow(self) -> None:
        pubsub = self._client.pubsub()
        try:
            await pubsub.psubscribe(self._channel + "*")
            # The subscription is in force once Redis confirmed it.
            while True:
                reply = await pubsub.get_message(ignore_subscribe_messages=False, timeout=5.0)
                if reply is not None and reply.get("type") == "psubscribe":
                    break
            self._ready.set()
            while True:
                reply = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if reply is not None and reply.get("type") == "pmessage":
                    self._received(reply["channel"], reply["data"])
        finally:
            self._ready.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _received(self, channel: object, data: object) -> None:
        """One message off the channel: deliver it here (bad ones are logged
        and dropped: Redis is the fleet's, but nothing it says may crash)."""
        try:
            message = self._parse(channel, data)
        except (ValueError, UsageError, msgpack.UnpackException) as exc:
            logger.warning("topics: a bad message on %r dropped: %s", channel, exc)
            return
        if message is None:
            return
        delivery = self.deliver(message)
        if self.on_delivery is not None:
            self.on_delivery(delivery)

    def _parse(self, channel: object, data: object) -> Broadcast | None:
        """The message, None if no connection here is subscribed to its topic.

        Raises:
            ValueError, UsageError, msgpack.UnpackException: a bad message.
        """
        if type(channel) is not bytes or type(data) is not bytes:
            raise ValueError("not bytes")
        topic = channel.decode()[len(self._channel) :]
        if topic not in self._subscribers:
            return None
        number, _, packed = data.partition(b" ")
        fields = msgpack.unpackb(packed, raw=False)
        if type(fields) is not list or len(fields) != 2:
            raise ValueError("not [ts, payload]")
        timestamp_ms, payload = fields
        return self._broadcaster.message(
            topic, int(number), payload, now=0.0, timestamp_ms=timestamp_ms
        )


# -- the process's topics -----------------------------------------------------------------

_installed: LocalTopics | None = None


def install(instance: LocalTopics | None) -> None:
    """Make ``instance`` the process's topics (`topics`); ``signedws serve``
    calls it at start. None uninstalls."""
    global _installed  # noqa: PLW0603 - one per process, set once at start
    _installed = instance


def topics() -> LocalTopics:
    """The process's topics (a `RedisTopics` under ``signedws serve`` with
    ``[redis].url``, else a `LocalTopics`).

    Raises:
        UsageError: if none was installed (outside ``signedws serve``: make a
            `LocalTopics` and `install` it).
    """
    if _installed is None:
        raise UsageError("no topics installed: signedws serve installs them; else install()")
    return _installed
