"""Revocations kept in Redis and pushed to every server of a fleet (SPEC.md §4.6).

Needs the ``redis`` package: ``pip install 'signedws[redis]'``. Nothing else in
signedws imports this module; ``signedws serve`` does when ``[redis].url`` is
set.

The store
---------
Under a prefix ``P`` (default ``signedws``), three keys hold the fleet's
revocation set and one channel announces every change:

==============================  =======  ===============================================
``P:revocations:credentials``   set      members ``["iss","cid"]`` (compact JSON)
``P:revocations:subjects``      hash     field ``["iss","sub"]`` -> ``before`` (seconds)
``P:revocations:version``       string   an integer, incremented by every change
``P:revocations``               channel  ``{"version":N,"kind":"credential","key":["iss","cid"]}``
                                         or ``{"version":N,"kind":"subject",``
                                         ``"key":["iss","sub"],"before":T}``
==============================  =======  ===============================================

A change (add the member, increment the version, publish) is one Lua script:
atomic, and published in version order. `RedisRevocationStore` reads and
writes this layout; ``signedws revoke --redis`` uses it. A standalone Redis (or
one behind Sentinel) is assumed: the script touches three keys, which Redis
Cluster would need in one hash slot.

Theory of operation
-------------------
Every server runs a `RedisRevocations` task beside its listener. It subscribes
to the channel, *then* reads a snapshot (version, set and hash in one
MULTI/EXEC), so no change can fall between the two; a message whose version is
the next one is applied as a delta; any other version triggers a new snapshot.
Every ``check_interval`` seconds it reads the version, which both catches a
missed message and proves the connection alive. Any failure ends the session:
the task logs it, waits (exponential backoff with jitter) and starts a new
session, snapshot first.

Invariants:

1. The hot path never waits on the network: verifiers read
   ``verifier.revocations``, an in-memory `RevocationSet` that this task
   replaces with one assignment, atomic for concurrent verifiers.
2. While a server runs, its revocations only grow: a snapshot is merged into
   the set it holds, so a Redis that lost its data (restarted without
   persistence, flushed) un-revokes nothing. The loss is logged. Taking a
   revocation back needs the servers restarted (they load the store at start).
3. Redis unreachable: the server keeps serving with its last copy and logs
   one WARNING per outage, then one INFO when it is back and resynchronised.
4. No log line, error or repr carries the Redis password, whether in the
   userinfo or in a query parameter: every URL shown goes through
   `signedws.redaction.redacted_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..client import Backoff
from ..errors import KeyFormatError, UsageError
from ..jsondoc import parse_json
from ..logformat import When
from ..redaction import redacted_url
from ..revocation import RevocationSet
from ..verifier import Verifier

__all__ = [
    "DEFAULT_CHECK_INTERVAL",
    "DEFAULT_PREFIX",
    "Change",
    "RedisRevocationStore",
    "RedisRevocations",
    "connect_redis",
    "merge",
    "redacted_url",
]

#: Default prefix of the store's keys and channel.
DEFAULT_PREFIX: Final = "signedws"
#: Default seconds between version checks.
DEFAULT_CHECK_INTERVAL: Final = 5.0
#: Socket timeouts, seconds: a Redis that does not answer in this time is down.
DEFAULT_TIMEOUT: Final = 5.0
#: Delays between reconnection attempts.
DEFAULT_BACKOFF: Final = Backoff(initial=0.1, maximum=2.0)
#: The longest channel message or store member parsed, characters: a change
#: is two names and a few numbers. Anything longer, or nested, is a bad one.
MAX_MESSAGE_SIZE: Final = 16384

logger = logging.getLogger("signedws.server")
_system_random = secrets.SystemRandom()

# KEYS: credentials set, subjects hash, version. ARGV: channel, kind, member,
# before (subjects). Members are compact JSON arrays made by `_member`, so they
# can be spliced into the message as they are.
_CHANGE_SCRIPT: Final = """
local version = redis.call('INCR', KEYS[3])
local message
if ARGV[2] == 'credential' then
  redis.call('SADD', KEYS[1], ARGV[3])
  message = '{"version":' .. version .. ',"kind":"credential","key":' .. ARGV[3] .. '}'
else
  local before = ARGV[4]
  local current = redis.call('HGET', KEYS[2], ARGV[3])
  if current and tonumber(current) >= tonumber(before) then
    before = current
  end
  redis.call('HSET', KEYS[2], ARGV[3], before)
  message = '{"version":' .. version .. ',"kind":"subject","key":' .. ARGV[3]
    .. ',"before":' .. before .. '}'
end
redis.call('PUBLISH', ARGV[1], message)
return version
"""


def connect_redis(url: str, *, timeout: float = DEFAULT_TIMEOUT, decode: bool = True) -> Redis:
    """A Redis client for ``url`` (``redis://[:password@]host:port/db``) that
    fails fast: socket timeouts of ``timeout`` seconds and no retries of its
    own (the caller decides when to try again). Replies are str (UTF-8), or
    bytes with ``decode=False`` (topics carry binary payloads).

    Raises:
        UsageError: if ``url`` is not a Redis URL.
    """
    try:
        return Redis.from_url(
            url,
            decode_responses=decode,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise UsageError(f"not a Redis URL: {redacted_url(url)!r}: {exc}") from None


def _member(first: str, second: str) -> str:
    return json.dumps([first, second], separators=(",", ":"), ensure_ascii=False)


def _pair(member: object) -> list[str]:
    try:
        value = parse_json(cast(str, member), max_size=MAX_MESSAGE_SIZE)
    except (TypeError, ValueError):
        value = None
    if not (
        isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
    ):
        raise KeyFormatError(f"a revocation store member is not a JSON pair: {member!r:.80}")
    return value


def _seconds(value: object) -> int:
    if not (isinstance(value, str | int) and str(value).isascii() and str(value).isdigit()):
        raise KeyFormatError(f"a revoked subject's time is not whole seconds: {value!r:.40}")
    return int(value)


@dataclass(frozen=True, slots=True)
class Change:
    """One change announced on the channel."""

    version: int
    kind: str
    """``"credential"`` or ``"subject"``."""
    issuer: str
    name: str
    """The credential id, or the subject."""
    before: int | None = None
    """For a subject: credentials issued before this time (seconds) are revoked."""

    @property
    def revocations(self) -> RevocationSet:
        """What the change revokes, as a one-entry set."""
        if self.before is None:
            return RevocationSet([(self.issuer, self.name)])
        return RevocationSet(subjects={(self.issuer, self.name): self.before})

    def __str__(self) -> str:
        if self.before is None:
            return f"credential iss={self.issuer!r} cid={self.name!r}"
        return f"subject iss={self.issuer!r} sub={self.name!r} before={When(self.before)}"


class RedisRevocationStore:
    """The fleet's revocation set in Redis (the layout in the module docstring).

    Args:
        client: a Redis client with ``decode_responses=True`` (`connect_redis`).
        prefix: the prefix of the keys and channel.
    """

    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise UsageError("the Redis key prefix must be a non-empty string")
        self.client = client
        self.prefix = prefix
        self.channel = f"{prefix}:revocations"
        self._keys = [
            f"{prefix}:revocations:credentials",
            f"{prefix}:revocations:subjects",
            f"{prefix}:revocations:version",
        ]
        self._script = client.register_script(_CHANGE_SCRIPT)

    async def version(self) -> int:
        """The store's version (0 for an empty store)."""
        value = await self.client.get(self._keys[2])
        return 0 if value is None else _seconds(value)

    async def snapshot(self) -> tuple[int, RevocationSet]:
        """The version and the revocation set, read atomically.

        Raises:
            KeyFormatError: if the store holds something that is not a
                revocation.
            redis.exceptions.RedisError: if Redis fails.
        """
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self._keys[2])
            pipe.smembers(self._keys[0])
            pipe.hgetall(self._keys[1])
            version, credentials, subjects = await pipe.execute()
        document: dict[str, list[dict[str, object]]] = {"credentials": [], "subjects": []}
        for member in sorted(credentials):
            iss, cid = _pair(member)
            document["credentials"].append({"iss": iss, "cid": cid})
        for field, before in sorted(subjects.items()):
            iss, sub = _pair(field)
            document["subjects"].append({"iss": iss, "sub": sub, "before": _seconds(before)})
        revocations = RevocationSet.from_dict(document)
        return (0 if version is None else _seconds(version)), revocations

    async def revoke_credential(self, issuer: str, cid: str) -> int:
        """Revoke ``(issuer, cid)`` for the whole fleet.

        Returns:
            The store's new version.

        Raises:
            KeyFormatError: for an invalid name.
            redis.exceptions.RedisError: if Redis fails.
        """
        RevocationSet.from_dict({"credentials": [{"iss": issuer, "cid": cid}]})
        return await self._change("credential", _member(issuer, cid), "")

    async def revoke_subject(self, issuer: str, subject: str, *, before: int) -> int:
        """Revoke every credential of ``(issuer, subject)`` issued before
        ``before`` (seconds); a later time replaces an earlier one.

        Returns:
            The store's new version.

        Raises:
            KeyFormatError: for an invalid name or time.
            redis.exceptions.RedisError: if Redis fails.
        """
        RevocationSet.from_dict({"subjects": [{"iss": issuer, "sub": subject, "before": before}]})
        return await self._change("subject", _member(issuer, subject), str(before))

    async def _change(self, kind: str, member: str, before: str) -> int:
        version = await self._script(keys=self._keys, args=[self.channel, kind, member, before])
        return int(version)

    @staticmethod
    def parse_change(data: object) -> Change:
        """Decode a message of the channel.

        Raises:
            KeyFormatError: if it is not a change.
        """
        try:
            # Bounded: any client of the Redis may publish on the channel.
            message = parse_json(cast(str, data), max_size=MAX_MESSAGE_SIZE)
        except (TypeError, ValueError):
            message = None
        if not isinstance(message, Mapping) or type(message.get("version")) is not int:
            raise KeyFormatError("a revocation message is a JSON object with a version")
        first, second = _pair(json.dumps(message.get("key")))
        kind = message.get("kind")
        if kind == "credential":
            document: dict[str, object] = {"credentials": [{"iss": first, "cid": second}]}
            before = None
        elif kind == "subject":
            before = message.get("before")
            document = {"subjects": [{"iss": first, "sub": second, "before": before}]}
        else:
            raise KeyFormatError(f"unknown revocation message kind {kind!r:.40}")
        RevocationSet.from_dict(document)  # the names and the time are valid
        return Change(message["version"], kind, first, second, cast(int | None, before))

    def __repr__(self) -> str:
        return f"RedisRevocationStore(prefix={self.prefix!r})"


def merge(held: RevocationSet, more: RevocationSet) -> RevocationSet:
    """Everything ``held`` or ``more`` revokes (a subject keeps its later time)."""
    if not more:
        return held
    subjects = dict(held.subjects)
    for key, before in more.subjects.items():
        subjects[key] = max(before, subjects.get(key, before))
    return RevocationSet(held.credentials | more.credentials, subjects)


class RedisRevocations:
    """Keeps ``verifier.revocations`` in step with a `RedisRevocationStore`.

    Run `run` as a task for the life of the server; `wait_synced` waits for the
    first snapshot (``signedws serve`` does not accept connections before it).

    Args:
        verifier: the verifier whose ``revocations`` this task replaces.
        url: the Redis URL (``redis://[:password@]host:port/db``).
        prefix: the store's key and channel prefix.
        check_interval: seconds between version checks.
        timeout: Redis socket timeouts, seconds.
        backoff: delays between reconnection attempts.
        clock: a monotonic clock, seconds (for the outage length in logs).
        random: a uniform ``[0, 1)`` source for the backoff's jitter.

    Raises:
        UsageError: for an invalid URL or interval.
    """

    def __init__(
        self,
        verifier: Verifier,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _system_random.random,
    ) -> None:
        if not isinstance(verifier, Verifier):
            raise UsageError("verifier must be a signedws Verifier")
        if not check_interval > 0 or not timeout > 0:
            raise UsageError("check_interval and timeout must be positive")
        connect_redis(url, timeout=timeout)  # refuse a bad URL now, not in the task
        self.verifier = verifier
        self.url = url
        self.prefix = prefix
        self.check_interval = check_interval
        self.timeout = timeout
        self.backoff = backoff
        self._clock = clock
        self._random = random
        #: The store version the verifier's set reflects (-1: never synced).
        self.version = -1
        #: Completed snapshots (the first, and one per resynchronisation).
        self.syncs = 0
        self._synced = asyncio.Event()
        self._down_since: float | None = None

    @property
    def synced(self) -> bool:
        """Whether a snapshot was ever loaded."""
        return self._synced.is_set()

    @property
    def connected(self) -> bool:
        """Whether a snapshot is in force and the store is reachable (for
        readiness and the ``signedws_redis_up`` metric)."""
        return self.synced and self._down_since is None

    async def wait_synced(self) -> None:
        """Wait until the first snapshot is in force."""
        await self._synced.wait()

    async def run(self) -> None:
        """Follow the store until cancelled; never raises otherwise."""
        attempt = 0
        while True:
            syncs = self.syncs
            client = connect_redis(self.url, timeout=self.timeout)
            store = RedisRevocationStore(client, prefix=self.prefix)
            try:
                await self._follow(store)
            except Exception as exc:  # whatever happens: keep serving, log, retry
                if self._down_since is not None:
                    logger.debug("redis revocations: still failing: %s", type(exc).__name__)
                elif isinstance(exc, RedisError | OSError | KeyFormatError):
                    self._lost(exc)
                else:
                    logger.exception("redis revocations: unexpected failure")
                    self._lost(exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            if self.syncs != syncs:
                attempt = 0  # the session got going: start the backoff over
            await asyncio.sleep(self.backoff.delay(attempt, self._random()))
            attempt += 1

    def _lost(self, exc: BaseException) -> None:
        self._down_since = self._clock()
        held = self.verifier.revocations
        logger.warning(
            "redis revocations: lost %s (%s: %s); serving with the last copy "
            "(version %d, %d entries) until it is back",
            redacted_url(self.url),
            type(exc).__name__,
            exc,
            self.version,
            len(held),
        )

    async def _follow(self, store: RedisRevocationStore) -> None:
        pubsub = store.client.pubsub()
        try:
            await pubsub.subscribe(store.channel)
            await self._resync(store)
            loop = asyncio.get_running_loop()
            next_check = loop.time() + self.check_interval
            while True:
                wait = max(0.0, next_check - loop.time())
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                if message is not None and message.get("type") == "message":
                    await self._apply(store, message["data"])
                if loop.time() >= next_check:
                    if await store.version() != self.version:
                        await self._resync(store)
                    next_check = loop.time() + self.check_interval
        finally:
            # redis-py types PubSub.aclose from 8.x on and leaves it untyped before:
            # bind it to a typed callable so the call checks under both.
            close_pubsub: Callable[[], Awaitable[None]] = pubsub.aclose
            with contextlib.suppress(RedisError, OSError):
                await close_pubsub()

    async def _apply(self, store: RedisRevocationStore, data: object) -> None:
        try:
            change = store.parse_change(data)
        except KeyFormatError as exc:
            logger.error("redis revocations: ignoring a bad message: %s", exc)  # noqa: TRY400
            await self._resync(store)
            return
        if change.version != self.version + 1:
            await self._resync(store)
            return
        self.verifier.revocations = merge(self.verifier.revocations, change.revocations)
        self.version = change.version
        logger.info("redis revocations: version %d: revoked %s", change.version, change)

    async def _resync(self, store: RedisRevocationStore) -> None:
        version, snapshot = await store.snapshot()
        held = self.verifier.revocations
        merged = merge(held, snapshot)
        if len(merged) != len(snapshot):
            logger.warning(
                "redis revocations: the store (version %d, %d entries) lacks %d entries this "
                "server holds (did Redis lose data?); keeping them",
                version,
                len(snapshot),
                len(merged) - len(snapshot),
            )
        self.verifier.revocations = merged
        previous, self.version = self.version, version
        self.syncs += 1
        self._synced.set()
        if self._down_since is not None:
            logger.info(
                "redis revocations: %s is back after %.1f s; resynchronised to version %d "
                "(%d entries)",
                redacted_url(self.url),
                self._clock() - self._down_since,
                version,
                len(merged),
            )
            self._down_since = None
        elif previous != version:
            logger.info(
                "redis revocations: synchronised to version %d (%d entries) from %s",
                version,
                len(merged),
                redacted_url(self.url),
            )

    def __repr__(self) -> str:
        return (
            f"RedisRevocations({redacted_url(self.url)!r}, prefix={self.prefix!r}, "
            f"version={self.version})"
        )
