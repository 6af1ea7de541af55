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

Thread safety: `verify` may run on several threads at once (the adapters
offload Ed25519 verification), but never on two threads for one connection at a
time: the caller serialises frames per connection, which it must do anyway to
deliver them in order.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from typing import Final, NamedTuple, NoReturn

from cryptography.hazmat.primitives import hmac as c_hmac

from . import ed25519, envelope, replay
from .credential import CERTIFICATE_LABEL, KeyReference, TokenKeys, unverified_credential
from .envelope import (
    CLIENT_LABEL,
    KIND_CLIENT_ED25519,
    KIND_CLIENT_MAC,
    SERVER_LABEL,
    TYPE_TOKEN,
    Hello,
    Payload,
    length_prefixed,
)
from .errors import Code, Rejected, UsageError
from .keyring import Keyring
from .keys import Ed25519PublicKey, HMACKey, RandomSource
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


class Message(NamedTuple):
    """A verified client frame: the only handle on its payload.

    A NamedTuple rather than a frozen dataclass: it is built once per frame on
    the hot path, and tuple construction is several times cheaper.
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


class VerifiedCredential:
    """A credential that passed authentication, as the cache holds it.

    Everything here depends only on the credential bytes, the keyring and the
    verifier's audience; nothing on time.
    """

    __slots__ = (
        "aud_ok",
        "cid",
        "exp_ms",
        "frame_key",
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
        # The per-frame fast path (`Verifier.verify`, step 7.4): the key window
        # and the expiry as one interval, empty when the audience is wrong.
        # Only when ``now`` falls outside it are the checks done one by one.
        self.valid_from_ms = key_window[0]
        self.valid_until_ms = min(key_window[1], self.exp_ms) if aud_ok else key_window[0]
        self.frame_key = frame_key
        # The frame key's HMAC past the client label and audience
        # (`HMACKey.prefixed_mac`): copied per frame.
        self.mac_state = mac_state
        self.prepared = prepared

    def __repr__(self) -> str:
        return f"VerifiedCredential(iss={self.iss!r}, cid={self.cid!r}, sub={self.sub!r})"


class ConnectionState:
    """Per-connection verifier state (SPEC.md §6.4). Small on purpose."""

    __slots__ = ("bitmap", "credential", "highest", "nonce", "nonce_expires_ms", "principal")

    def __init__(self, nonce: bytes) -> None:
        self.nonce = nonce
        self.nonce_expires_ms = unverified_expiry(nonce) * 1000
        self.highest = 0
        self.bitmap = 0
        self.principal: tuple[str, str] | None = None
        self.credential: VerifiedCredential | None = None

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
            self._cache = {}
            self._cache_version = keyring.version

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
            ctype_kind = KIND_CLIENT_ED25519
        else:
            ctype_kind = KIND_CLIENT_MAC if claims.type == TYPE_TOKEN else KIND_CLIENT_ED25519
        if ctype_kind != kind:
            raise _scheme_mismatch(kind)
        if isinstance(claims, KeyReference):
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
            )
        entry = self._keyring.issuer_key(claims.iss, claims.kid)
        ident = f"iss={claims.iss!r} kid={claims.kid!r} cid={claims.cid!r}"
        frame_key = mac_state = prepared = None
        if claims.type == TYPE_TOKEN:
            if not isinstance(entry.key, TokenKeys):
                raise Rejected(Code.UNKNOWN_KEY, f"{ident}: key is not an HMAC issuer key")
            if not hmac.compare_digest(claims.tag, entry.key.token_tag(claims.body)):
                raise Rejected(Code.CREDENTIAL_INVALID, f"{ident}: token tag does not verify")
            frame_key = entry.key.frame_key(cred)
            mac_state = frame_key.prefixed_mac(self._client_prefix)
        else:
            if not isinstance(entry.key, Ed25519PublicKey):
                raise Rejected(Code.UNKNOWN_KEY, f"{ident}: key is not an Ed25519 issuer key")
            public_key = claims.public_key or b""
            problem = ed25519.check_public_key(public_key)
            if problem is not None:
                raise Rejected(Code.WEAK_KEY, f"{ident}: certified key: {problem}")
            if not ed25519.verify_strict(
                self.backend, entry.key.to_bytes(), claims.tag, CERTIFICATE_LABEL + claims.body
            ):
                raise Rejected(
                    Code.CREDENTIAL_INVALID, f"{ident}: certificate signature does not verify"
                )
            prepared = self.backend.prepare(public_key)
        return VerifiedCredential(
            kind=kind,
            iss=claims.iss,
            sub=claims.sub,
            cid=claims.cid,
            scopes=claims.scopes,
            iat=claims.iat,
            exp=claims.exp,
            aud_ok=not claims.aud or self.audience in claims.aud,
            key_window=entry.window_ms,
            frame_key=frame_key,
            mac_state=mac_state,
            prepared=prepared,
        )

    def _credential(self, cred: bytes, kind: int) -> VerifiedCredential:
        """Steps 7.1-7.3 when `verify`'s fast path (a cache hit of the right
        kind under an unchanged keyring) does not apply."""
        if self._cache_version != self._keyring.version:
            with self._cache_lock:
                self._cache = {}
                self._cache_version = self._keyring.version
        vc = self._cache.get(cred)
        if vc is None:
            vc = self._authenticate(cred, kind)
            with self._cache_lock:
                if len(self._cache) >= self.cache_size:
                    # FIFO eviction: dicts keep insertion order.
                    del self._cache[next(iter(self._cache))]
                self._cache[cred] = vc
        if vc.kind != kind:
            raise _scheme_mismatch(kind)
        return vc

    def clear_cache(self) -> None:
        """Drop every cached credential (they are re-authenticated on use)."""
        with self._cache_lock:
            self._cache = {}

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
        # 2-4. Decode, version, structure.
        kind, cred, nonce, ctr, ts, stream, seq, payload, tag = envelope.parse_client_frame(data)
        now_ms = int(now * 1000)
        # 5. Nonce.
        if nonce != state.nonce or now_ms >= state.nonce_expires_ms:
            if nonce != state.nonce:
                raise Rejected(Code.NONCE_MISMATCH, "not this connection's nonce")
            raise Rejected(
                Code.NONCE_EXPIRED, f"connection nonce expired at {state.nonce_expires_ms // 1000}"
            )
        # 6. Counter.
        if ctr <= state.highest:
            reason = replay.check(state.highest, state.bitmap, self.window, ctr)
            if reason is not None:
                raise Rejected(Code.REPLAY, reason)
        # 7. Credential. A cache hit of the right kind under an unchanged
        # keyring is the common case; `_credential` handles everything else.
        vc = self._cache.get(cred)
        if vc is None or vc.kind != kind or self._cache_version != self._keyring.version:
            vc = self._credential(cred, kind)
        if (
            not vc.valid_from_ms <= now_ms < vc.valid_until_ms
            or now_ms < vc.iat_ms - self.leeway_ms
        ):
            self._check_validity(vc, now_ms)
        # 8. Binding (after the first frame, usually the very same tuple).
        principal = state.principal
        if principal is not vc.principal and principal is not None and principal != vc.principal:
            raise Rejected(
                Code.CREDENTIAL_MISMATCH,
                f"connection is bound to iss={principal[0]!r} sub={principal[1]!r}, "
                f"frame has iss={vc.iss!r} sub={vc.sub!r}",
            )
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
        if kind == KIND_CLIENT_MAC:
            mac = vc.mac_state.copy()  # type: ignore[union-attr]
            mac.update(data[:-34])
            if not hmac.compare_digest(mac.finalize(), tag):
                raise Rejected(Code.BAD_TAG, f"cid={vc.cid!r} ctr={ctr}")
        else:
            problem = ed25519.check_signature(tag)
            if problem is not None:
                raise Rejected(Code.BAD_SIGNATURE, f"cid={vc.cid!r} ctr={ctr}: {problem}")
            if not self.backend.verify(vc.prepared, tag, self._client_prefix + data[:-66]):
                raise Rejected(Code.BAD_SIGNATURE, f"cid={vc.cid!r} ctr={ctr}")
        # 12. Commit.
        if self.window:
            state.highest, state.bitmap = replay.advance(
                state.highest, state.bitmap, self.window, ctr
            )
        else:
            state.highest = ctr
        state.principal = vc.principal
        state.credential = vc
        # tuple.__new__ skips NamedTuple's Python-level __new__ (~100 ns).
        return tuple.__new__(
            Message, (vc.sub, vc.iss, vc.scopes, ctr, stream, seq, payload, vc.cid, ts)
        )

    def _check_validity(self, vc: VerifiedCredential, now_ms: int) -> NoReturn:
        """Step 7.4 check by check, in order, for a frame outside the fast interval."""
        start, end = vc.key_window
        if not start <= now_ms < end:
            raise Rejected(
                Code.UNKNOWN_KEY, f"iss={vc.iss!r} cid={vc.cid!r}: issuer key not valid now"
            )
        if now_ms < vc.iat_ms - self.leeway_ms:
            raise Rejected(
                Code.CREDENTIAL_NOT_YET_VALID, f"iss={vc.iss!r} cid={vc.cid!r}: iat {vc.iat}"
            )
        if now_ms >= vc.exp_ms:
            raise Rejected(
                Code.CREDENTIAL_EXPIRED, f"iss={vc.iss!r} cid={vc.cid!r}: exp {vc.exp_ms // 1000}"
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
