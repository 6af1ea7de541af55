"""The verifier: the server's per-frame hot path (SPEC.md §6.4).

Theory of operation
-------------------
`Verifier` holds what is shared by all connections of a server: the keyring,
the revocation set, the audience, the fleet nonce key, the limits and a cache of
authenticated credentials. `ConnectionState` holds what is per connection: the
nonce and its expiry, the replay window, the ``(iss, sub)`` binding and the
current credential. `Verifier.verify` runs SPEC.md §6.4's steps in order.

Invariants:

1. `verify` raises only `Rejected`, for any input bytes.
2. `verify` changes a `ConnectionState` only in its last step, after the MAC
   or signature verified. A rejected frame leaves the state exactly as it was.
3. The credential cache is a pure memo of what depends only on the credential
   bytes and the keyring (parsing, issuer authentication, frame-key derivation,
   key preparation). Time (expiry, key windows), revocation and binding are
   checked on every frame. The cache is dropped whenever `Keyring.version`
   moves.
4. No signature or MAC is computed for a frame that fails a cheaper step
   (SPEC.md §11.7): only a credential cache miss authenticates a credential,
   and only step 11 touches the frame's tag.
5. Nothing secret reaches a `Rejected` detail: details name fields, sizes and
   identifiers only.
6. A credential that failed authentication is remembered, with its rejection,
   in a small failure cache beside the credential cache (`_failures`): a memo
   of the same kind (a function of the credential bytes, the frame kind and the
   keyring alone), dropped with it, and bounded on its own, so that refused
   credentials can neither evict authenticated ones nor grow memory.

The per-connection fast path
----------------------------
Every frame of a connection normally carries the same credential and the same
nonce as the frame before, and the connection's ``state.credential`` already
holds what steps 7.1-7.3 gave for that credential: all that is per connection
or per credential is known before the frame arrives. A frame that begins with
the exact bytes of that credential (``vc.head``) takes the fast path, written
inline in `Verifier.verify`: one msgpack call and one condition that holds
only if steps 2-8 all pass (its comments say, line by line, which step each
test stands for). Byte comparisons with ``vc.head`` and ``state.nonce`` take
the place of the nonce check and of the cache look-up (which hashes the
credential: ~80 ns for a token); the binding holds by construction (the commit
that made ``vc`` the state's credential bound the state to ``vc.principal``);
the cache's epoch and the keyring's version say the keyring did not change
since ``vc`` was made.

If the condition fails, for whatever reason, the decoded frame goes to
`signedws._fastpath.client_fields` (`envelope.parse_client_frame` for a value
msgpack already decoded), then the full path (`Verifier._verify_full`: steps
5-8 in SPEC order, on the fields steps 2-4 checked), which reports the first
failing step's code, exactly as if there were no fast path. Steps 9-12 are
written once, at the end of `verify`, and both paths go through them. So both
paths accept the same frames, refuse the same frames and report the same
codes: the tests compare them on every vector, the adversarial corpus,
hypothesis frames and mutated frames (``tests/helpers.py::verify_both_paths``,
which also records whether the fast path took the frame, handed it over or
was not tried).

Why inline: `signedws._fastpath` holds the other deliberate duplicates, and
the fast path lived there for a while (issue 15, as ``current_frame``). That
cost one Python call per frame plus unpacking the frame's 10 fields twice:
~150 ns of a ~3.1 µs `mac` verify (``benchmarks/compare.py``, ``signedws.mac``
against ``floor.mac``: fastest rounds 3,034 -> 3,182 ns; paired median 2.05x
-> 2.16x of the HMAC floor; nothing measurable on `ed25519`, 1.05x either
way), so it came back here. Measured again when it did (3 alternated runs of
``compare.py --quick`` each, on a loaded machine): paired median 2.10x, 2.10x,
2.12x of ``floor.mac`` inline against 2.18x, 2.27x, 2.23x through the call;
fastest rounds 3,058-3,084 ns against 3,186-3,276 ns.

Invariant 7: ``state.credential`` is set only by a commit (step 12), after a
frame whose 64-byte nonce equalled ``state.nonce``, together with
``state.principal = state.credential.principal`` and ``state.valid_until_ms``
(the earlier of the nonce's expiry and the credential's fast interval's end);
``ConnectionState.nonce`` never changes.

Thread safety: `verify` may run on several threads at once (the adapters
offload Ed25519 verification), but never on two threads for one connection at a
time: the caller serialises frames per connection, which it must do anyway to
deliver them in order.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
from typing import Final, NamedTuple, NoReturn

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hmac as c_hmac

from . import _fastpath, ed25519, envelope, replay
from .credential import CERTIFICATE_LABEL, KeyReference, TokenKeys, unverified_credential
from .envelope import (
    CLIENT_LABEL,
    DECODE_ERRORS,
    KIND_CLIENT_ED25519,
    KIND_CLIENT_MAC,
    SERVER_LABEL,
    STREAM_SIZE,
    TYPE_TOKEN,
    ClientFields,
    Hello,
    Payload,
    canonical,
    length_prefixed,
    parse_client_frame,
)
from .errors import Code, Rejected, UsageError
from .keyring import Keyring
from .keys import Ed25519PublicKey, HMACKey, RandomSource
from .logformat import When
from .nonce import NODE_ID_SIZE, NonceKey, unverified_expiry
from .revocation import EMPTY, RevocationSet

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_LEEWAY",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_SKEW",
    "DEFAULT_NONCE_TTL",
    "ConnectionState",
    "Message",
    "VerifiedCredential",
    "Verifier",
]

DEFAULT_MAX_FRAME_SIZE: Final = 65536
DEFAULT_MAX_SKEW: Final = 300.0
DEFAULT_LEEWAY: Final = 30.0
DEFAULT_NONCE_TTL: Final = 86400
DEFAULT_CACHE_SIZE: Final = 4096
_MAX_SECONDS: Final = 10**9  # time tolerances beyond ~30 years are mistakes
#: Most refused credentials the failure cache holds (invariant 6): at most
#: ~1 MiB of credential bytes, whatever an attacker sends.
MAX_FAILURE_CACHE_SIZE: Final = 256

# The hot path's module-level names (a global load is cheaper than an attribute).
_trunc: Final = math.trunc  # int(now * 1000), ~20 ns cheaper
_unpackb: Final = msgpack.unpackb
#: `envelope.parse_client_frame` for what ``_unpackb`` decoded (the fast path's fallback).
_client_fields: Final = _fastpath.client_fields
#: A client frame's first byte in canonical form: a fixarray of 10 elements.
_FRAME_ARRAY: Final = b"\x9a"


class Message(NamedTuple):
    """A verified client frame: the only handle on its payload.

    A NamedTuple rather than a frozen dataclass: it is built once per frame on
    the hot path, and tuple construction is several times cheaper (measured,
    issue 15, median of 15 rounds of 9 fields: 699 ns for the NamedTuple, 2,617
    ns for a frozen slotted dataclass).
    """

    #: The authenticated principal.
    subject: str
    #: The issuer that vouches for `subject`.
    issuer: str
    #: The scopes of the credential this frame carried.
    scopes: frozenset[str]
    #: The frame's counter on this connection.
    counter: int
    #: The client's stream id (SPEC.md §7.3), stable across reconnects.
    stream: bytes
    #: The message's number in its stream; 0 for a control frame.
    seq: int
    #: The application payload; None for a control frame (SPEC.md §6.5).
    payload: Payload
    #: The credential id (revocation names it).
    credential_id: str
    #: The client's timestamp, milliseconds.
    timestamp_ms: int


#: ``Message(*values)``, several times cheaper (see `_fastpath.tuple_constructor`).
_new_message: Final = _fastpath.tuple_constructor(Message)


class VerifiedCredential:
    """A credential that passed authentication, as the cache holds it.

    Everything here depends only on the credential bytes, the keyring and the
    verifier's audience and leeway; nothing on time.
    """

    __slots__ = (
        "aud_ok",
        "cid",
        "epoch",
        "exp_ms",
        "frame_key",
        "head",
        "iat",
        "iat_ms",
        "iss",
        "key_window",
        "kind",
        "mac_state",
        "prepared",
        "principal",
        "scopes",
        "sub",
        "tag_size",
        "valid_from_ms",
        "valid_until_ms",
    )

    def __init__(
        self,
        *,
        kind: int,
        iss: str,
        sub: str,
        cid: str,
        scopes: frozenset[str],
        iat: int,
        exp: int,
        aud_ok: bool,
        key_window: tuple[int, int],
        frame_key: HMACKey | None = None,
        mac_state: c_hmac.HMAC | None = None,
        prepared: object = None,
        cred: bytes = b"",
        leeway_ms: int = 0,
    ) -> None:
        self.kind = kind
        self.iss = iss
        self.sub = sub
        self.cid = cid
        self.principal = (iss, sub)
        self.scopes = scopes
        self.iat = iat
        self.iat_ms = iat * 1000
        self.exp_ms = exp * 1000
        self.aud_ok = aud_ok
        self.key_window = key_window
        # The per-frame test of step 7.4 (`Verifier.verify`): the key window,
        # the iat (less the verifier's leeway) and the expiry as one interval,
        # empty when the audience is wrong. Only when ``now`` falls outside it
        # are the checks done one by one, in order (`Verifier._check_validity`).
        self.valid_from_ms = max(key_window[0], self.iat_ms - leeway_ms)
        self.valid_until_ms = min(key_window[1], self.exp_ms) if aud_ok else self.valid_from_ms
        self.frame_key = frame_key
        # The frame key's HMAC past the client label and audience
        # (`HMACKey.prefixed_mac`): copied per frame.
        self.mac_state = mac_state
        self.prepared = prepared
        # For the per-connection fast path: the first bytes of every canonical
        # frame with this kind and these exact credential bytes (the array
        # header, version 1, the kind, then ``cred`` as a bin: SPEC.md §6.1
        # elements 0-2). MessagePack decodes a prefix the one way, so a frame
        # that begins with them decodes to exactly these three elements.
        self.head = _FRAME_ARRAY + bytes((envelope.VERSION, kind)) + envelope.canonical(cred)
        self.tag_size = 32 if kind == KIND_CLIENT_MAC else 64
        # The verifier's cache epoch this was authenticated in (set by the
        # verifier): the fast path uses it only while the epoch is current.
        self.epoch: object = None

    def __repr__(self) -> str:
        return f"VerifiedCredential(iss={self.iss!r}, cid={self.cid!r}, sub={self.sub!r})"


class ConnectionState:
    """Per-connection verifier state (SPEC.md §6.4). Small on purpose.

    Only `Verifier.verify` changes it: its fast path relies on ``credential``,
    ``principal`` and ``valid_until_ms`` having been set together by its own
    commit (invariant 7 of the module docstring).
    """

    __slots__ = (
        "bitmap",
        "credential",
        "highest",
        "nonce",
        "nonce_expires_ms",
        "principal",
        "valid_until_ms",
    )

    def __init__(self, nonce: bytes) -> None:
        self.nonce = nonce
        self.nonce_expires_ms = unverified_expiry(nonce) * 1000
        self.highest = 0
        self.bitmap = 0
        self.principal: tuple[str, str] | None = None
        self.credential: VerifiedCredential | None = None
        # For the fast path: the end of both the nonce's and the current
        # credential's validity (min(nonce_expires_ms, credential.valid_until_ms)),
        # set with ``credential`` (the same int object as one of the two).
        self.valid_until_ms = 0

    def __repr__(self) -> str:
        return f"ConnectionState(highest={self.highest}, principal={self.principal!r})"


def _scheme_mismatch(kind: int) -> Rejected:
    return Rejected(Code.SCHEME_MISMATCH, f"frame kind {kind} with a credential of another scheme")


class Verifier:
    """Verifies client frames for one audience (SPEC.md §6.4).

    Args:
        keyring: trusted issuers and registered keys. It may change while the
            verifier runs; the credential cache follows it.
        audience: this service's identity, shared by its fleet.
        fleet_key: the fleet secret nonces are minted under (SPEC.md §3.2).
        node_id: this server's 8-byte node id (random if omitted).
        revocations: the revocation set; replace `revocations` to update it.
        backend: the Ed25519 backend, ``"libsodium"`` or ``"openssl"``.
        window: replay window size, 0 (strictly increasing) to 1024.
        max_frame_size: largest frame accepted, bytes, checked before decoding.
        max_skew: frame timestamp tolerance, seconds.
        leeway: tolerance on credentials' ``iat``, seconds.
        nonce_ttl: connection nonce lifetime, seconds.
        cache_size: credential cache entries.

    Raises:
        UsageError: for an invalid argument.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        audience: str,
        fleet_key: HMACKey,
        node_id: bytes | None = None,
        revocations: RevocationSet = EMPTY,
        backend: str = "libsodium",
        window: int = 0,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_skew: float = DEFAULT_MAX_SKEW,
        leeway: float = DEFAULT_LEEWAY,
        nonce_ttl: int = DEFAULT_NONCE_TTL,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if not isinstance(keyring, Keyring):
            raise UsageError("keyring must be a Keyring")
        if not isinstance(revocations, RevocationSet):
            raise UsageError("revocations must be a RevocationSet")
        if not isinstance(fleet_key, HMACKey):
            raise UsageError("fleet_key must be an HMACKey")
        self._nonce_key = NonceKey(fleet_key, audience)
        self.audience = audience
        self._keyring = keyring
        self.revocations = revocations
        self.backend = ed25519.get_backend(backend)
        if node_id is None:
            node_id = secrets.token_bytes(NODE_ID_SIZE)
        if not isinstance(node_id, bytes) or len(node_id) != NODE_ID_SIZE:
            raise UsageError(f"node_id must be {NODE_ID_SIZE} bytes")
        self.node_id = node_id
        try:
            self.window = replay.validate_window(window)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        for name, value in (
            ("max_frame_size", max_frame_size),
            ("cache_size", cache_size),
            ("nonce_ttl", nonce_ttl),
        ):
            if type(value) is not int or value < 1:
                raise UsageError(f"{name} must be a positive integer")
        for name, seconds in (("max_skew", max_skew), ("leeway", leeway)):
            if type(seconds) not in (int, float) or not 0 <= seconds <= _MAX_SECONDS:
                raise UsageError(f"{name} must be a number of seconds from 0 to {_MAX_SECONDS}")
        self.max_frame_size = max_frame_size
        self.max_skew_ms = int(max_skew * 1000)
        self.leeway_ms = int(leeway * 1000)
        self.nonce_ttl = nonce_ttl
        self.cache_size = cache_size
        aud = length_prefixed(audience.encode())
        self._client_prefix = CLIENT_LABEL + aud
        self._server_prefix = SERVER_LABEL + aud
        self._cache: dict[bytes, VerifiedCredential] = {}
        # Credential bytes -> (the frame kind it failed under, or None if its
        # failure does not depend on the kind; code; detail): invariant 6.
        self._failures: dict[bytes, tuple[int | None, Code, str]] = {}
        self._failures_size = min(cache_size, MAX_FAILURE_CACHE_SIZE)
        # Replaced whenever the caches are dropped: a VerifiedCredential from
        # an older epoch is not used by the fast path.
        self._epoch = object()
        self._cache_version = keyring.version
        self._cache_lock = threading.Lock()

    @property
    def keyring(self) -> Keyring:
        """The keyring. Assigning a new one (a reload) drops the credential cache."""
        return self._keyring

    @keyring.setter
    def keyring(self, keyring: Keyring) -> None:
        if not isinstance(keyring, Keyring):
            raise UsageError("keyring must be a Keyring")
        with self._cache_lock:
            self._keyring = keyring
            self._drop_caches()

    def __repr__(self) -> str:
        return (
            f"Verifier(audience={self.audience!r}, backend={self.backend.name!r}, "
            f"window={self.window}, keyring={self.keyring!r})"
        )

    # -- connections ----------------------------------------------------------

    def open(self, *, now: float, random: RandomSource = secrets.token_bytes) -> ConnectionState:
        """Start a connection: mint its nonce (SPEC.md §5.3)."""
        return ConnectionState(
            self._nonce_key.mint(node_id=self.node_id, now=now, ttl=self.nonce_ttl, random=random)
        )

    def hello(self, state: ConnectionState, *, now: float) -> bytes:
        """The hello to send first on ``state``'s connection (SPEC.md §5.2)."""
        return envelope.encode_hello(
            Hello(state.nonce, self.audience, int(now * 1000), self.max_frame_size, self.window)
        )

    @property
    def nonce_key(self) -> NonceKey:
        """The fleet nonce key, to check nonces outside their connection."""
        return self._nonce_key

    # -- credentials (SPEC.md §6.4 step 7) ------------------------------------

    def _authenticate(self, cred: bytes, kind: int) -> VerifiedCredential:
        """Steps 7.1-7.3 on a cache miss."""
        claims = unverified_credential(cred)
        if isinstance(claims, KeyReference):
            if kind != KIND_CLIENT_ED25519:
                raise _scheme_mismatch(kind)
            reg = self._keyring.registered_key(claims.iss, claims.kid)
            return VerifiedCredential(
                kind=kind,
                iss=reg.issuer,
                sub=reg.subject,
                cid=reg.kid,
                scopes=reg.scopes,
                iat=reg.not_before,
                exp=reg.expires,
                aud_ok=not reg.audiences or self.audience in reg.audiences,
                key_window=(0, 2**64),
                prepared=self.backend.prepare(reg.public_key.to_bytes()),
                cred=cred,
                leeway_ms=self.leeway_ms,
            )
        iss, kid, cid = claims.iss, claims.kid, claims.cid
        if (KIND_CLIENT_MAC if claims.type == TYPE_TOKEN else KIND_CLIENT_ED25519) != kind:
            raise _scheme_mismatch(kind)
        entry = self._keyring.issuer_key(iss, kid)
        frame_key = mac_state = prepared = None
        if claims.type == TYPE_TOKEN:
            if not isinstance(entry.key, TokenKeys):
                raise Rejected(
                    Code.UNKNOWN_KEY,
                    f"iss={iss!r} kid={kid!r} cid={cid!r}: key is not an HMAC issuer key",
                )
            if not hmac.compare_digest(claims.tag, entry.key.token_tag(claims.body)):
                raise Rejected(
                    Code.CREDENTIAL_INVALID,
                    f"iss={iss!r} kid={kid!r} cid={cid!r}: token tag does not verify",
                )
            frame_key = entry.key.frame_key(cred)
            mac_state = frame_key.prefixed_mac(self._client_prefix)
        else:
            if not isinstance(entry.key, Ed25519PublicKey):
                raise Rejected(
                    Code.UNKNOWN_KEY,
                    f"iss={iss!r} kid={kid!r} cid={cid!r}: key is not an Ed25519 issuer key",
                )
            public_key = claims.public_key or b""
            problem = ed25519.check_public_key(public_key)
            if problem is not None:
                raise Rejected(
                    Code.WEAK_KEY, f"iss={iss!r} kid={kid!r} cid={cid!r}: certified key: {problem}"
                )
            problem = ed25519.strict_problem(
                self.backend, entry.key.to_bytes(), claims.tag, CERTIFICATE_LABEL + claims.body
            )
            if problem is not None:
                raise Rejected(
                    Code.CREDENTIAL_INVALID,
                    f"iss={iss!r} kid={kid!r} cid={cid!r}: certificate signature: {problem}",
                )
            prepared = self.backend.prepare(public_key)
        return VerifiedCredential(
            kind=kind,
            iss=iss,
            sub=claims.sub,
            cid=cid,
            scopes=claims.scopes,
            iat=claims.iat,
            exp=claims.exp,
            aud_ok=not claims.aud or self.audience in claims.aud,
            key_window=entry.window_ms,
            frame_key=frame_key,
            mac_state=mac_state,
            prepared=prepared,
            cred=cred,
            leeway_ms=self.leeway_ms,
        )

    def _drop_caches(self) -> None:
        """Forget every credential, good or bad (the caller holds the lock)."""
        self._cache = {}
        self._failures = {}
        self._epoch = object()
        self._cache_version = self._keyring.version

    def _credential(self, cred: bytes, kind: int) -> VerifiedCredential:
        """Steps 7.1-7.3 through the credential and failure caches."""
        if self._cache_version != self._keyring.version:
            with self._cache_lock:
                self._drop_caches()
        vc = self._cache.get(cred)
        if vc is None:
            failure = self._failures.get(cred)
            if failure is not None:
                # What `_authenticate` raised for these bytes under this keyring
                # (invariant 6). Only the scheme check (7.2) depends on the
                # frame's kind, and a failure remembered with a kind passed it
                # for that kind: any other kind fails it first.
                failed_kind, code, detail = failure
                if failed_kind is not None and failed_kind != kind:
                    raise _scheme_mismatch(kind)
                raise Rejected(code, detail)
            epoch, version = self._epoch, self._keyring.version
            try:
                vc = self._authenticate(cred, kind)
            except Rejected as exc:
                self._remember_failure(cred, kind, exc, epoch, version)
                raise
            vc.epoch = epoch
            with self._cache_lock:
                # Not if the keyring moved meanwhile: the next frame re-authenticates.
                if self._epoch is epoch and self._keyring.version == version:
                    if len(self._cache) >= self.cache_size:
                        # FIFO eviction: dicts keep insertion order.
                        del self._cache[next(iter(self._cache))]
                    self._cache[cred] = vc
        if vc.kind != kind:
            raise _scheme_mismatch(kind)
        return vc

    def _remember_failure(
        self, cred: bytes, kind: int, exc: Rejected, epoch: object, version: int
    ) -> None:
        """Put `_authenticate`'s rejection of ``cred`` in the failure cache.

        `credential_malformed` (step 7.1) does not depend on the frame's kind;
        every later failure passed the scheme check (7.2) for ``kind``. A
        `scheme_mismatch` is not remembered: it says nothing of the other kind.
        """
        code = exc.code
        if code is Code.SCHEME_MISMATCH:
            return
        entry = (None if code is Code.CREDENTIAL_MALFORMED else kind, code, exc.detail)
        with self._cache_lock:
            if self._epoch is epoch and self._keyring.version == version:
                failures = self._failures
                if len(failures) >= self._failures_size:
                    del failures[next(iter(failures))]  # FIFO, as the credential cache
                failures[cred] = entry

    def clear_cache(self) -> None:
        """Drop every cached credential, authenticated or refused: each is
        authenticated again at its next frame, on every connection."""
        with self._cache_lock:
            self._drop_caches()

    # -- the hot path ---------------------------------------------------------

    def verify(self, data: bytes, state: ConnectionState, *, now: float) -> Message:
        """Verify one client frame received on ``state``'s connection.

        Args:
            data: the exact bytes of the binary WebSocket message.
            state: the connection's state, from `open`.
            now: the server's clock, seconds since the epoch.

        Returns:
            The verified message. ``state`` has advanced past it.

        Raises:
            Rejected: with the code of the first failing step of SPEC.md §6.4;
                ``state`` is unchanged. The caller closes the connection with
                ``code.close_code`` and logs ``code`` and ``detail``.
        """
        # 1. Size, before any decoding.
        if len(data) > self.max_frame_size:
            raise Rejected(Code.FRAME_TOO_LARGE, f"{len(data)} bytes, over {self.max_frame_size}")
        now_ms = _trunc(now * 1000)
        vc = state.credential
        # 2-8. A frame that begins with the exact bytes of the connection's
        # current credential (version 1, its kind and ``cred``: vc.head) comes
        # from that credential's holder, who alone signed a frame on this
        # connection: it is decoded in one msgpack call and tries the
        # per-connection fast path (see the module docstring). Any other frame
        # is decoded by `envelope.parse_client_frame`, at a bounded cost
        # whatever it holds.
        if vc is not None and data.startswith(vc.head):
            checked: ClientFields | None  # None: steps 2-8 passed on the fast path
            try:
                fields = _unpackb(data, max_map_len=0, max_ext_len=0)
            except DECODE_ERRORS:  # the bounded decoder says why
                checked = parse_client_frame(data)
            else:
                # vc.head begins with a fixarray of 10: what decoded is a list of 10.
                _, _, _, nonce, ctr, ts, stream, seq, payload, tag = fields
                # The condition holds only if steps 2-8 all pass; each line
                # says which step(s) it stands for.
                if (
                    # Cheapest first, and first what tells apart the frames an
                    # attacker most easily sends (another connection's,
                    # replayed, malformed): they then pay little for trying the
                    # fast path before the full path refuses them.
                    #
                    # 4 (nonce: bin(64)) and 5: vc was committed on this state,
                    # after a frame with a 64-byte nonce equal to state.nonce.
                    nonce == state.nonce
                    # 7.1-7.3: vc is what a cache look-up would give (see below).
                    and vc.epoch is self._epoch
                    and self._cache_version == self._keyring.version
                    # 4 (ctr: uint >= 1, as H >= 0) and 6 (ctr > H passes).
                    and type(ctr) is int
                    and ctr > state.highest
                    # 3 (version: the uint 1), 4 (kind: a client kind; cred: bin
                    # <= 4096 bytes), 7.2 (kind goes with vc's type) and
                    # 7.1-7.3: the frame begins with version 1, vc's kind and
                    # the exact credential bytes that authenticated to vc
                    # (vc.head, tested above) in the current epoch of the cache
                    # under an unchanged keyring (tested above): a cache
                    # look-up would give vc or an equal result.
                    #
                    # 4: the other fields' types and sizes, as
                    # `_fastpath.client_fields`.
                    and type(ts) is int
                    and ts >= 0
                    and type(stream) is bytes
                    and len(stream) == STREAM_SIZE
                    and type(seq) is int
                    and (
                        ((type(payload) is bytes or type(payload) is str) and seq > 0)
                        or (payload is None and seq == 0)
                    )
                    and type(tag) is bytes
                    and len(tag) == vc.tag_size
                    # 5 (now < the nonce's expiry) and 7.4, as the full path
                    # tests them: the commit that made vc the state's
                    # credential set state.valid_until_ms to the earlier of the
                    # two ends. (8 passes: that commit also bound the state to
                    # vc's principal.)
                    and vc.valid_from_ms <= now_ms < state.valid_until_ms
                    # 2: canonical form. Last: the dearest, and a frame that
                    # fails an earlier test then pays for it only once (in the
                    # full path).
                    and canonical(fields) == data
                ):
                    checked = None  # steps 2-8 passed: vc is the state's already
                else:
                    # The full path says why, in the reference's words.
                    checked = _client_fields(fields, data)
            if checked is None:
                bind = False
            else:
                vc = self._verify_full(checked, state, now_ms)
                _, _, _, ctr, ts, stream, seq, payload, tag = checked
                bind = True
        else:
            checked = parse_client_frame(data)
            vc = self._verify_full(checked, state, now_ms)
            _, _, _, ctr, ts, stream, seq, payload, tag = checked
            bind = True
        # Both paths: the frame passed steps 1-8, and its kind is vc.kind
        # (step 7.2). Steps 9-12 are written once, here.
        # 9. Revocation.
        revocations = self.revocations
        if revocations is not EMPTY and revocations.is_revoked(vc.iss, vc.cid, vc.sub, vc.iat):
            raise Rejected(
                Code.CREDENTIAL_REVOKED, f"iss={vc.iss!r} cid={vc.cid!r} sub={vc.sub!r}"
            )
        # 10. Timestamp.
        if abs(ts - now_ms) > self.max_skew_ms:
            raise Rejected(Code.TIMESTAMP_SKEW, f"skew {ts - now_ms} ms")
        # 11. Tag.
        if vc.kind == KIND_CLIENT_MAC:
            mac = vc.mac_state.copy()  # type: ignore[union-attr]
            mac.update(data[:-34])
            try:
                mac.verify(tag)  # constant-time comparison
            except InvalidSignature:
                raise Rejected(Code.BAD_TAG, f"cid={vc.cid!r} ctr={ctr}") from None
        else:
            problem = ed25519.check_signature(tag)
            if problem is not None:
                raise Rejected(Code.BAD_SIGNATURE, f"cid={vc.cid!r} ctr={ctr}: {problem}")
            if not self.backend.equation_holds(vc.prepared, tag, self._client_prefix + data[:-66]):
                raise Rejected(Code.BAD_SIGNATURE, f"cid={vc.cid!r} ctr={ctr}")
        # 12. Commit.
        if self.window:
            state.highest, state.bitmap = replay.advance(
                state.highest, state.bitmap, self.window, ctr
            )
        else:
            state.highest = ctr
        if bind:
            state.principal = vc.principal
            state.credential = vc
            state.valid_until_ms = min(state.nonce_expires_ms, vc.valid_until_ms)
        return _new_message((vc.sub, vc.iss, vc.scopes, ctr, stream, seq, payload, vc.cid, ts))

    def _verify_full(
        self, checked: ClientFields, state: ConnectionState, now_ms: int
    ) -> VerifiedCredential:
        """Steps 5-8 in order, on ``checked`` (the frame's fields, decoded and
        type-checked: steps 2-4): the full path.

        Returns:
            The frame's credential, for steps 9-12.
        """
        kind, cred, nonce, ctr, _, _, _, _, _ = checked
        # 5. Nonce.
        if nonce != state.nonce:
            raise Rejected(Code.NONCE_MISMATCH, "not this connection's nonce")
        if now_ms >= state.nonce_expires_ms:
            raise Rejected(
                Code.NONCE_EXPIRED, f"connection nonce expired at {state.nonce_expires_ms // 1000}"
            )
        # 6. Counter.
        if ctr <= state.highest:
            reason = replay.check(state.highest, state.bitmap, self.window, ctr)
            if reason is not None:
                raise Rejected(Code.REPLAY, reason)
        # 7. Credential: 7.1-7.3 through the caches, 7.4 on every frame.
        vc = self._credential(cred, kind)
        if not vc.valid_from_ms <= now_ms < vc.valid_until_ms:
            self._check_validity(vc, now_ms)
        # 8. Binding.
        principal = state.principal
        if principal is not None and principal != vc.principal:
            raise Rejected(
                Code.CREDENTIAL_MISMATCH,
                f"connection is bound to iss={principal[0]!r} sub={principal[1]!r}, "
                f"frame has iss={vc.iss!r} sub={vc.sub!r}",
            )
        return vc

    def _check_validity(self, vc: VerifiedCredential, now_ms: int) -> NoReturn:
        """Step 7.4 check by check, in order, for a frame outside the fast interval."""
        start, end = vc.key_window
        if not start <= now_ms < end:
            raise Rejected(
                Code.UNKNOWN_KEY, f"iss={vc.iss!r} cid={vc.cid!r}: issuer key not valid now"
            )
        if now_ms < vc.iat_ms - self.leeway_ms:
            raise Rejected(
                Code.CREDENTIAL_NOT_YET_VALID, f"iss={vc.iss!r} cid={vc.cid!r}: iat {When(vc.iat)}"
            )
        if now_ms >= vc.exp_ms:
            raise Rejected(
                Code.CREDENTIAL_EXPIRED,
                f"iss={vc.iss!r} cid={vc.cid!r}: exp {When(vc.exp_ms // 1000)}",
            )
        # Within the key window and the credential's validity, the interval is
        # empty only for a credential that is not for this audience.
        raise Rejected(
            Code.AUDIENCE_MISMATCH, f"iss={vc.iss!r} cid={vc.cid!r}: not for {self.audience!r}"
        )

    # -- server frames (SPEC.md §7.1) -----------------------------------------

    def server_mac_tag(self, credential: VerifiedCredential, body: bytes) -> bytes:
        """The `mac` server-frame tag over ``body`` under ``credential``'s frame key."""
        assert credential.frame_key is not None  # noqa: S101 - mac credentials have one
        return credential.frame_key.mac(self._server_prefix + body)

    def server_signed_input(self, body: bytes) -> bytes:
        """The bytes an `ed25519` server frame's signature covers."""
        return self._server_prefix + body
