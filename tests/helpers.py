"""Test helpers: fixed keys, a fake clock, frame forgers and a two-party `Pair`.

`Pair` is in the spirit of h11's ``tests/helpers.py::ConnectionPair``: one server
core (a `Verifier` and a `ServerSession`) and one client core (a `Signer` made
from the session's hello) under one fake clock, with methods that carry frames
client -> server and server -> client. Everything is fixed: keys come from
constant seeds, ``now`` from the clock, nonce randomness from a seeded stream.
Nothing here does I/O or starts an event loop.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, Literal

import msgpack
import pytest

from signedws import envelope
from signedws import verifier as verifier_module
from signedws.credential import (
    CERTIFICATE_LABEL,
    Ed25519Credential,
    Issuer,
    MACCredential,
    encode_key_reference,
)
from signedws.ed25519 import Backend, BackendName, strict_problem, verify_strict
from signedws.envelope import CLIENT_LABEL, SERVER_LABEL, Payload, length_prefixed
from signedws.errors import Code, Rejected
from signedws.keyring import Keyring
from signedws.keys import Ed25519PrivateKey, HMACKey, RandomSource
from signedws.revocation import EMPTY, RevocationSet
from signedws.server import MessageReceived, ServerKey, ServerSession
from signedws.signer import ServerMessage, Signer
from signedws.verifier import ConnectionState, Message, VerifiedCredential, Verifier

__all__ = [
    "AUDIENCE",
    "CLIENT_KEY",
    "ED_ISSUER",
    "ED_ISSUER_KEY",
    "ED_KID",
    "FAST_PATH_OUTCOMES",
    "FLEET_KEY",
    "HMAC_ISSUER",
    "HMAC_KID",
    "HMAC_SECRET",
    "ISSUER",
    "NODE_ID",
    "NOW",
    "NOW_MS",
    "REG_KID",
    "REVOKED_CID",
    "SCHEMES",
    "SCOPES",
    "SERVER_KEY",
    "SERVER_KID",
    "STREAM",
    "SUBJECT",
    "TAMPER_CODES",
    "CountingBackend",
    "FakeClock",
    "Outcome",
    "Pair",
    "Scheme",
    "Way",
    "certificate",
    "client_frame",
    "encode_parts",
    "encodings",
    "fast_path_way",
    "field_variants",
    "flip_bit",
    "flip_byte",
    "full_path_twin",
    "key_reference",
    "make_keyring",
    "other_credentials",
    "raw_certificate",
    "seeded_random",
    "server_frame",
    "state_copy",
    "strict_accepts",
    "token",
    "verify_both_paths",
    "watch_fast_path",
    "which_way",
]

#: The fixed clock every test starts at, seconds since the epoch.
NOW: Final = 1_700_000_000.0
NOW_MS: Final = 1_700_000_000_000

AUDIENCE: Final = "wss://api.example.test/ws"
ISSUER: Final = "https://login.example.test"
SUBJECT: Final = "alice"
SCOPES: Final = ("chat:read", "chat:write")
HMAC_KID: Final = "hmac-1"
ED_KID: Final = "ed-1"
REG_KID: Final = "device-1"
SERVER_KID: Final = "server-1"
NODE_ID: Final = b"node-001"
STREAM: Final = bytes(range(100, 116))

FLEET_KEY: Final = HMACKey(bytes(range(32)))
HMAC_SECRET: Final = HMACKey(bytes(range(32, 64)))
ED_ISSUER_KEY: Final = Ed25519PrivateKey(b"\x01" * 32)
CLIENT_KEY: Final = Ed25519PrivateKey(b"\x02" * 32)
SERVER_KEY: Final = Ed25519PrivateKey(b"\x03" * 32)

HMAC_ISSUER: Final = Issuer(ISSUER, HMAC_KID, HMAC_SECRET)
ED_ISSUER: Final = Issuer(ISSUER, ED_KID, ED_ISSUER_KEY)

Scheme = Literal["mac", "certificate", "keyref"]

#: Every credential kind with every Ed25519 backend that verifies it.
SCHEMES: Final[list[tuple[Scheme, BackendName]]] = [
    ("mac", "libsodium"),
    ("certificate", "libsodium"),
    ("certificate", "openssl"),
    ("keyref", "libsodium"),
    ("keyref", "openssl"),
]

#: Codes a tampered copy of a valid frame may draw (SPEC.md §9). Left out on
#: purpose: frame_too_large (tampering here never grows a frame past the
#: limit), nonce_expired, and every code that needs an *authentic* credential
#: whose claims are wrong (expired, not yet valid, audience, binding, revoked):
#: the credential's claims are covered by its own tag or signature, so
#: tampering with them ends in credential_invalid or earlier.
TAMPER_CODES: Final = frozenset(
    {
        Code.MALFORMED,
        Code.UNSUPPORTED_VERSION,
        Code.SCHEME_MISMATCH,
        Code.NONCE_MISMATCH,
        Code.REPLAY,
        Code.CREDENTIAL_MALFORMED,
        Code.UNKNOWN_ISSUER,
        Code.UNKNOWN_KEY,
        Code.CREDENTIAL_INVALID,
        Code.WEAK_KEY,
        Code.TIMESTAMP_SKEW,
        Code.BAD_TAG,
        Code.BAD_SIGNATURE,
    }
)


# -- bytes ------------------------------------------------------------------


def flip_bit(data: bytes, i: int) -> bytes:
    """``data`` with bit ``i`` (bit ``i % 8`` of byte ``i // 8``) inverted."""
    index, bit = divmod(i, 8)
    return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]


def strict_accepts(backend: Backend, public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether the strict rule accepts the signature (`strict_problem` says no
    problem); `verify_strict` raises exactly when it does not."""
    ok = strict_problem(backend, public_key, signature, message) is None
    if ok:
        verify_strict(backend, public_key, signature, message)
    else:
        with pytest.raises(Rejected) as info:
            verify_strict(backend, public_key, signature, message)
        assert info.value.code is Code.BAD_SIGNATURE
    return ok


def flip_byte(data: bytes, index: int) -> bytes:
    """``data`` with every bit of byte ``index`` inverted (PyNaCl ``flip_byte``)."""
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


# -- the verifier's two paths ---------------------------------------------------

#: What `Verifier.verify` did with a frame: the message, or the rejection's code
#: and detail; then the connection state after it (counters, window, binding,
#: the current credential's bytes and the end of its validity).
Outcome = tuple[
    Message | tuple[Code, str], tuple[int, int, tuple[str, str] | None, bytes | None, int]
]


def full_path_twin(state: ConnectionState) -> ConnectionState:
    """A copy of ``state`` that has no current credential, so that
    `Verifier.verify` takes its full path on it (every step of SPEC.md §6.4 in
    order) where ``state`` itself may take the per-connection fast path."""
    twin = ConnectionState(state.nonce)
    twin.nonce_expires_ms = state.nonce_expires_ms
    twin.highest, twin.bitmap, twin.principal = state.highest, state.bitmap, state.principal
    return twin


def _outcome(verifier: Verifier, data: bytes, state: ConnectionState, now: float) -> Outcome:
    result: Message | tuple[Code, str]
    try:
        result = verifier.verify(data, state, now=now)
    except Rejected as exc:
        result = (exc.code, exc.detail)
    current = state.credential
    return result, (
        state.highest,
        state.bitmap,
        state.principal,
        None if current is None else current.head,
        state.valid_until_ms,
    )


#: Which way `Verifier.verify` took a frame, as `which_way` names it:
#: "fast" (the per-connection fast path took it: steps 2-8 passed in its one
#: condition), "handed over" (it tried the fast path, whose condition failed or
#: whose msgpack call raised, and handed the frame to the full path) or "full
#: only" (the fast path was not tried: no current credential, a frame that does
#: not begin with its bytes, or one refused at step 1).
Way = Literal["fast", "handed over", "full only"]

#: How often `verify_both_paths` saw each `Way`: tests read it to show that
#: the fast path was exercised, not only skipped.
FAST_PATH_OUTCOMES: collections.Counter[str] = collections.Counter()

#: The names in `signedws.verifier`'s module globals that `watch_fast_path`
#: records: the fast path's one msgpack call, its hand-over to the full path,
#: and the reference decoder.
_WATCHED: Final = ("_unpackb", "_client_fields", "parse_client_frame")


def _parsed(data: bytes) -> envelope.ClientFields | tuple[Code, str]:
    try:
        return envelope.parse_client_frame(data)
    except Rejected as exc:
        return (exc.code, exc.detail)


@contextlib.contextmanager
def watch_fast_path() -> Iterator[list[tuple[str, object]]]:
    """Within: `signedws.verifier`'s calls to `_WATCHED` (as its module globals
    resolve them at call time), recorded in order with what each returned or
    raised. The calls still happen: nothing else changes."""
    calls: list[tuple[str, object]] = []

    def recording(name: str, real: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            try:
                result = real(*args, **kwargs)
            except Exception as exc:
                calls.append((name, exc))
                raise
            calls.append((name, result))
            return result

        return call

    with pytest.MonkeyPatch.context() as patch:
        for name in _WATCHED:
            patch.setattr(verifier_module, name, recording(name, getattr(verifier_module, name)))
        yield calls


def _as_answer(result: object) -> object:
    """A recorded result as `_parsed` gives it (a rejection as its code and detail)."""
    if isinstance(result, Rejected):
        return (result.code, result.detail)
    return result


def which_way(calls: Sequence[tuple[str, object]], data: bytes) -> Way:
    """The `Way` one `verify` call took with ``data``, from what
    `watch_fast_path` recorded during it; and, whichever way, that the fast
    path's decoding agreed with the reference decoder,
    `envelope.parse_client_frame`: a frame it took decoded to the reference's
    fields; one it handed over came with the very fields, or the very
    rejection, the reference gives."""
    names = [name for name, _ in calls]
    if "_unpackb" not in names:
        assert names in ([], ["parse_client_frame"]), names
        return "full only"
    expected = _parsed(data)
    decoded = calls[0][1]
    if names == ["_unpackb"]:
        assert isinstance(decoded, list), decoded
        assert decoded[0] == envelope.VERSION
        assert tuple(decoded[1:]) == expected, (decoded, expected)
        return "fast"
    assert names in (["_unpackb", "_client_fields"], ["_unpackb", "parse_client_frame"]), names
    if names[1] == "parse_client_frame":  # msgpack refused the frame
        assert isinstance(decoded, Exception), decoded
    else:
        assert _as_answer(calls[1][1]) == expected, (calls[1][1], expected)
    return "handed over"


def state_copy(state: ConnectionState) -> ConnectionState:
    """A copy of ``state``, current credential included: `verify` on it takes
    the same way as on ``state`` and leaves ``state`` as it was."""
    copy = full_path_twin(state)
    copy.credential, copy.valid_until_ms = state.credential, state.valid_until_ms
    return copy


def _observed(
    verifier: Verifier, data: bytes, state: ConnectionState, now: float
) -> tuple[Way, Outcome]:
    with watch_fast_path() as calls:
        outcome = _outcome(verifier, data, state, now)
    return which_way(calls, data), outcome


def fast_path_way(
    verifier: Verifier, data: bytes, state: ConnectionState, *, now: float
) -> tuple[Way, Message | tuple[Code, str]]:
    """Verify ``data`` on a `state_copy` of ``state`` (``state`` does not move)
    and say which `Way` it went (`which_way`, which also holds the fast path's
    decoding to the reference's), with the answer: the message, or the
    rejection's code and detail."""
    way, (result, _) = _observed(verifier, data, state_copy(state), now)
    return way, result


def verify_both_paths(
    verifier: Verifier, data: bytes, state: ConnectionState, *, now: float
) -> Message | Rejected:
    """Verify ``data`` on ``state`` and on its `full_path_twin`; both must
    give the same message or the same code and detail, and leave the same
    state. Returns what ``state`` got (``state`` moves on if it accepted).

    The call on ``state`` is watched (`which_way`): its decoding is held to
    the reference decoder's, and `FAST_PATH_OUTCOMES` counts which way it
    went."""
    twin = full_path_twin(state)
    expected = _outcome(verifier, data, twin, now)
    way, got = _observed(verifier, data, state, now)
    FAST_PATH_OUTCOMES[way] += 1
    assert got[0] == expected[0], (got, expected)
    if isinstance(got[0], Message):  # both now hold the frame's credential
        assert got[1] == expected[1], (got, expected)
    else:  # the twin never had a credential: the rest must not have moved
        assert got[1][:3] == expected[1][:3], (got, expected)
    result = got[0]
    if isinstance(result, Message):
        return result
    return Rejected(*result)


def int_encodings(value: int) -> list[bytes]:
    """Every MessagePack encoding of a non-negative int: canonical first."""
    canonical = bytes(msgpack.packb(value))
    widths = (
        (0xCC, 1, False),
        (0xCD, 2, False),
        (0xCE, 4, False),
        (0xCF, 8, False),
        (0xD0, 1, True),
        (0xD1, 2, True),
        (0xD2, 4, True),
        (0xD3, 8, True),
    )
    others = [
        bytes([marker]) + value.to_bytes(size, "big", signed=signed)
        for marker, size, signed in widths
        if value < 2 ** (8 * size - signed)
    ]
    return [canonical, *[e for e in others if e != canonical]]


def encodings(value: object) -> list[bytes]:
    """Every MessagePack encoding of ``value`` worth trying (ints, bins and strs
    in every width; anything else canonically): canonical first."""
    if type(value) is int and value >= 0:
        return int_encodings(value)
    canonical = bytes(msgpack.packb(value, use_bin_type=True))
    if isinstance(value, bytes | str):
        raw = value if isinstance(value, bytes) else value.encode()
        markers = (0xC4, 0xC5, 0xC6) if isinstance(value, bytes) else (0xD9, 0xDA, 0xDB)
        headers = [
            bytes([marker]) + len(raw).to_bytes(size, "big")
            for marker, size in zip(markers, (1, 2, 4), strict=True)
            if len(raw) < 2 ** (8 * size)
        ]
        return [canonical, *[h + raw for h in headers if h + raw != canonical]]
    return [canonical]


#: A credential id tests put in the verifier's revocation set (`other_credentials`).
REVOKED_CID: Final = "revoked"


def other_credentials() -> list[MACCredential | Ed25519Credential]:
    """Credentials a frame may carry instead of its connection's own: of
    another subject, audience or validity, of the other scheme, or revoked
    (when the verifier revokes `REVOKED_CID`). Issued at `NOW`."""
    elsewhere = ["wss://elsewhere.example.test/ws"]
    return [
        token(cid="other"),
        token(cid="mallory", subject="mallory"),
        token(cid="elsewhere", audiences=elsewhere),
        token(cid="expired", now=NOW - 7200),
        token(cid="future", now=NOW + 7200),
        token(cid=REVOKED_CID),
        certificate(cid="other"),
        certificate(cid="mallory", subject="mallory"),
        certificate(cid="elsewhere", audiences=elsewhere),
        certificate(cid=REVOKED_CID),
    ]


def field_variants(pair: Pair, index: int) -> list[object]:
    """Values to put in element ``index`` of a frame on ``pair``'s connection:
    near the genuine one (the checks' boundaries, other credentials, other
    counters and times), of every other type a decoder returns, and uints at
    the widths of MessagePack's encodings."""
    state = pair.server.verifier_state
    ms = pair.clock.ms
    near: list[list[object]] = [
        [0, 1, 2],
        [0, 1, 2, 3],
        [
            pair.cred,
            pair.cred + b"\x00",
            b"",
            *(
                c.token if isinstance(c, MACCredential) else c.credential
                for c in other_credentials()
            ),
        ],
        [state.nonce, state.nonce[:-1], state.nonce + b"\x00", bytes(64)],
        [0, 1, 2, state.highest, state.highest + 1, state.highest + 300, 2**64 - 1],
        [0, ms, ms - 300_000, ms - 300_001, ms + 300_000, ms + 300_001],
        [STREAM, STREAM[:15], STREAM + b"\x00"],
        [0, 1, 2, 1000],
        [None, "x", b"x", "", b"", "é" * 40, b"x" * 300],
    ]
    others: list[object] = [None, True, False, 1.0, "1", b"\x01", [], {}, -1]
    widths: list[object] = [127, 128, 255, 256, 32767, 32768, 65536, 2**31, 2**32, 2**63]
    return [*near[index], *others, *widths]


def seeded_random(seed: bytes) -> RandomSource:
    """A deterministic randomness source: SHA-256 of ``seed`` and a call counter."""
    calls = 0

    def random(size: int) -> bytes:
        nonlocal calls
        calls += 1
        out = b""
        block = 0
        while len(out) < size:
            out += hashlib.sha256(
                seed + calls.to_bytes(4, "big") + block.to_bytes(4, "big")
            ).digest()
            block += 1
        return out[:size]

    return random


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds

    @property
    def ms(self) -> int:
        """The clock in whole milliseconds, as the verifier reads it."""
        return int(self.now * 1000)


# -- credentials ----------------------------------------------------------------


def token(
    *,
    subject: str = SUBJECT,
    cid: str = "tok-1",
    now: float = NOW,
    lifetime: int = 3600,
    scopes: Iterable[str] = SCOPES,
    audiences: Iterable[str] = (AUDIENCE,),
    issuer: Issuer = HMAC_ISSUER,
) -> MACCredential:
    """A `mac` token from the fixed HMAC issuer (or ``issuer``)."""
    return issuer.issue_token(
        subject=subject,
        now=now,
        lifetime=lifetime,
        scopes=scopes,
        audiences=audiences,
        credential_id=cid,
    )


def certificate(
    *,
    subject: str = SUBJECT,
    cid: str = "cert-1",
    now: float = NOW,
    lifetime: int = 3600,
    scopes: Iterable[str] = SCOPES,
    audiences: Iterable[str] = (AUDIENCE,),
    issuer: Issuer = ED_ISSUER,
    client_key: Ed25519PrivateKey = CLIENT_KEY,
) -> Ed25519Credential:
    """A certificate for ``client_key`` from the fixed Ed25519 issuer."""
    cert = issuer.issue_certificate(
        client_key.public_key(),
        subject=subject,
        now=now,
        lifetime=lifetime,
        scopes=scopes,
        audiences=audiences,
        credential_id=cid,
    )
    return Ed25519Credential(cert, client_key)


def key_reference(iss: str = ISSUER, kid: str = REG_KID) -> Ed25519Credential:
    """A key reference to the fixed registry entry, with the client's key."""
    return Ed25519Credential(encode_key_reference(iss, kid), CLIENT_KEY)


def raw_certificate(
    key: bytes,
    *,
    signer: Ed25519PrivateKey = ED_ISSUER_KEY,
    iss: str = ISSUER,
    kid: str = ED_KID,
    cid: str = "raw-1",
    sub: str = SUBJECT,
    iat: int = int(NOW),
    exp: int = int(NOW) + 3600,
) -> bytes:
    """A certificate over arbitrary key bytes (even a weak key), properly signed.

    `Issuer` refuses weak keys, so tests that need one build it here by the
    steps of SPEC.md §4.3.
    """
    body = envelope.seal(
        [1, 2, iss, kid, cid, sub, list(SCOPES), [], iat, exp, key, bytes(64)], 64
    )
    return body + b"\xc4\x40" + signer.sign(CERTIFICATE_LABEL + body)


def make_keyring() -> Keyring:
    """A keyring with the fixed HMAC and Ed25519 issuer keys and one registry entry."""
    keyring = Keyring()
    keyring.add_hmac_key(ISSUER, HMAC_KID, HMAC_SECRET)
    keyring.add_ed25519_key(ISSUER, ED_KID, ED_ISSUER_KEY.public_key())
    keyring.register(
        ISSUER,
        REG_KID,
        CLIENT_KEY.public_key(),
        subject=SUBJECT,
        not_before=int(NOW) - 60,
        expires=int(NOW) + 3600,
        scopes=SCOPES,
        audiences=(AUDIENCE,),
    )
    return keyring


# -- frames -----------------------------------------------------------------


Secret = HMACKey | Ed25519PrivateKey


def encode_parts(*values: object) -> list[bytes]:
    """Each value canonically encoded on its own, to splice frames by hand."""
    return [bytes(msgpack.packb(value, use_bin_type=True)) for value in values]


def _finish(
    label: bytes, header: bytes, parts: Sequence[bytes], secret: Secret, audience: str
) -> bytes:
    size = 32 if isinstance(secret, HMACKey) else 64
    body = header + b"".join(parts)
    signed = label + length_prefixed(audience.encode()) + body
    tag = secret.mac(signed) if isinstance(secret, HMACKey) else secret.sign(signed)
    return body + bytes((0xC4, size)) + tag


def client_frame(
    fields: Sequence[object],
    secret: Secret,
    *,
    audience: str = AUDIENCE,
    parts: Sequence[bytes] | None = None,
    label: bytes = CLIENT_LABEL,
) -> bytes:
    """A client frame from elements 0-8, tagged by ``secret`` (SPEC.md §6.2-6.3).

    With ``parts`` (pre-encoded elements, possibly non-canonical) the elements
    are spliced as given under a fixarray header; the tag is computed over
    whatever bytes result, so only the check under test can refuse them.
    ``label`` replaces the client label (to forge a reflected frame).
    """
    encoded = list(parts) if parts is not None else encode_parts(*fields)
    header = bytes([0x90 | (len(encoded) + 1)])
    return _finish(label, header, encoded, secret, audience)


def server_frame(fields: Sequence[object], secret: Secret, *, audience: str = AUDIENCE) -> bytes:
    """A server frame from elements 0-7, tagged by ``secret`` (SPEC.md §7.1)."""
    header = bytes([0x90 | (len(fields) + 1)])
    return _finish(SERVER_LABEL, header, encode_parts(*fields), secret, audience)


class CountingBackend:
    """An Ed25519 backend that delegates and records what it was asked."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name: BackendName = inner.name
        self.prepared: list[bytes] = []
        self.verified: list[bytes] = []

    def prepare(self, public_key: bytes) -> object:
        """Record the key and delegate."""
        self.prepared.append(public_key)
        return self.inner.prepare(public_key)

    def equation_holds(self, prepared: object, signature: bytes, message: bytes) -> bool:
        """Record the message and delegate."""
        self.verified.append(message)
        return self.inner.equation_holds(prepared, signature, message)

    @property
    def frame_verifications(self) -> int:
        """Calls that checked a client frame's signature (not a certificate's)."""
        return sum(1 for m in self.verified if m.startswith(CLIENT_LABEL))

    @property
    def certificate_verifications(self) -> int:
        """Calls that checked an issuer's signature on a certificate."""
        return sum(1 for m in self.verified if m.startswith(CERTIFICATE_LABEL))


Snapshot = tuple[int, int, tuple[str, str] | None, VerifiedCredential | None]


class Pair:
    """A server and a client core wired together under one fake clock.

    Args:
        scheme: ``"mac"`` (token), ``"certificate"`` or ``"keyref"`` (key
            reference); the last two are `ed25519` connections.
        backend: the verifier's Ed25519 backend.
        credential: overrides the scheme's default credential.
        server_key: whether the session gets a `ServerKey` (for `ed25519`
            server frames).
        **limits: passed to `Verifier` (window, max_frame_size, ...).
    """

    def __init__(
        self,
        scheme: Scheme = "mac",
        backend: BackendName = "libsodium",
        *,
        credential: MACCredential | Ed25519Credential | None = None,
        revocations: RevocationSet = EMPTY,
        server_key: bool = True,
        window: int = 0,
        max_frame_size: int = 65536,
        max_skew: float = 300.0,
        leeway: float = 30.0,
        nonce_ttl: int = 86400,
        cache_size: int = 4096,
        clock: FakeClock | None = None,
    ) -> None:
        self.scheme = scheme
        self.clock = clock or FakeClock()
        self.keyring = make_keyring()
        self.verifier = Verifier(
            self.keyring,
            audience=AUDIENCE,
            fleet_key=FLEET_KEY,
            node_id=NODE_ID,
            revocations=revocations,
            backend=backend,
            window=window,
            max_frame_size=max_frame_size,
            max_skew=max_skew,
            leeway=leeway,
            nonce_ttl=nonce_ttl,
            cache_size=cache_size,
        )
        self._server_key = ServerKey(SERVER_KID, SERVER_KEY) if server_key else None
        self.server = self.open()
        if credential is None:
            if scheme == "mac":
                credential = token()
            elif scheme == "certificate":
                credential = certificate()
            else:
                credential = key_reference()
        self.credential = credential
        self.client = Signer.from_hello(
            self.server.hello,
            credential,
            audience=AUDIENCE,
            now=self.clock.now,
            server_keys={SERVER_KID: SERVER_KEY.public_key()},
            stream=STREAM,
        )
        self.held: bytes | None = None

    def open(self, seed: bytes = b"nonce") -> ServerSession:
        """Another server session on the same verifier, with seeded randomness."""
        return ServerSession(
            self.verifier,
            now=self.clock.now,
            server_key=self._server_key,
            random=seeded_random(seed),
        )

    # -- the client's view ----------------------------------------------------

    @property
    def kind(self) -> int:
        """The client frame kind of this connection (1 mac, 2 ed25519)."""
        return 1 if isinstance(self.credential, MACCredential) else 2

    @property
    def cred(self) -> bytes:
        """The exact credential bytes the client sends."""
        c = self.credential
        return c.token if isinstance(c, MACCredential) else c.credential

    @property
    def secret(self) -> Secret:
        """What tags the client's frames: the frame key or the client's private key."""
        c = self.credential
        return c.frame_key if isinstance(c, MACCredential) else c.private_key

    def next_counter(self) -> int:
        """The counter the client would use next."""
        return max(self.client.counter, self.server.verifier_state.highest) + 1

    def sign(self, payload: Payload = "hello") -> bytes:
        """The client signs its next frame at the clock's time."""
        return self.client.sign(payload, now=self.clock.now)

    def forge(
        self,
        *,
        version: object = 1,
        kind: object = None,
        cred: object = None,
        nonce: object = None,
        ctr: object = None,
        ts: object = None,
        stream: object = STREAM,
        seq: object = None,
        payload: object = "forged",
        secret: Secret | None = None,
        tag: bytes | None = None,
        credential: MACCredential | Ed25519Credential | None = None,
    ) -> bytes:
        """A client frame with any element overridden, tagged correctly unless
        ``tag`` is given (then that tag is appended, whatever its size).

        A forged counter above the client's is consumed, as the client would.
        """
        if credential is not None:
            cred = (
                credential.token
                if isinstance(credential, MACCredential)
                else credential.credential
            )
            if secret is None:
                secret = (
                    credential.frame_key
                    if isinstance(credential, MACCredential)
                    else credential.private_key
                )
            if kind is None:
                kind = 1 if isinstance(credential, MACCredential) else 2
        if ctr is None:
            ctr = self.next_counter()
        if isinstance(ctr, int) and ctr > self.client.counter:
            self.client._counter = ctr
        fields = [
            version,
            self.kind if kind is None else kind,
            self.cred if cred is None else cred,
            self.server.nonce if nonce is None else nonce,
            ctr,
            self.clock.ms if ts is None else ts,
            stream,
            (0 if payload is None else self.client.seq + 1) if seq is None else seq,
            payload,
        ]
        if tag is not None:
            return envelope.encode([*fields, tag])
        return client_frame(fields, self.secret if secret is None else secret)

    # -- client -> server -----------------------------------------------------

    def deliver(self, frame: bytes) -> Message | Rejected:
        """The server verifies ``frame``: the message (accepted and done with
        at once, as an application that handles it straight away), or the
        rejection (not accepted: the connection goes on, for tests that
        check the state a rejection leaves)."""
        server = self.server
        try:
            message = server.verify(frame, now=self.clock.now)
        except Rejected as exc:
            return exc
        server.accept(message, now=self.clock.now)
        for event in server.events_received():
            if isinstance(event, MessageReceived):
                server.message_done(event.message, now=self.clock.now)
        return message

    def send(self, payload: Payload = "hello") -> Message | Rejected:
        """The client signs ``payload`` and the server receives it."""
        return self.deliver(self.sign(payload))

    def accept(self, payload: Payload = "hello") -> Message:
        """Like `send`, and the frame must be accepted."""
        result = self.send(payload)
        assert isinstance(result, Message), f"frame refused: {result!r}"
        return result

    def snapshot(self) -> Snapshot:
        """The connection state that must not move on a rejection (SPEC.md §6.4)."""
        s = self.server.verifier_state
        return (s.highest, s.bitmap, s.principal, s.credential)

    def warm_up(self) -> None:
        """Accept counters 1 and 3 and hold 2 back: a state with a gap in it.

        With a window, ``held`` (counter 2) is still acceptable afterwards.
        """
        self.accept("one")
        self.held = self.sign("two")
        self.accept("three")

    def assert_rejected(self, frame: bytes, code: Code, *, recover: bool = True) -> Rejected:
        """``frame`` is refused with ``code`` and the connection state is unchanged.

        With ``recover``, the connection then goes on: the held-back frame (if
        any) and a fresh frame are accepted.
        """
        before = self.snapshot()
        result = self.deliver(frame)
        assert isinstance(result, Rejected), f"frame accepted, expected {code.id}: {result!r}"
        assert result.code is code, f"expected {code.id}, got {result!r}"
        assert self.snapshot() == before, (
            f"state changed on {code.id}: {before} -> {self.snapshot()}"
        )
        if recover:
            self.assert_recovers()
        return result

    def assert_recovers(self) -> None:
        """The held-back frame (if any) and a new frame are accepted."""
        if self.held is not None:
            held, self.held = self.held, None
            message = self.deliver(held)
            assert isinstance(message, Message), f"held-back frame refused: {message!r}"
        self.accept("after")

    # -- server -> client -----------------------------------------------------

    def reply(self, payload: Payload = None) -> ServerMessage | Rejected:
        """The server sends ``payload`` (None: an ack) and the client verifies it."""
        self.server.send_message(payload, now=self.clock.now)
        return self.receive(self.server.data_to_send()[-1])

    def receive(self, frame: bytes) -> ServerMessage | Rejected:
        """The client verifies a server frame: the message, or the rejection."""
        try:
            return self.client.verify(frame)
        except Rejected as exc:
            return exc


def handle(session: ServerSession, frame: bytes, *, now: float) -> Message:
    """``session`` verifies and accepts ``frame``, and its application is done
    with the message at once (so the next server frame acknowledges it).

    Raises:
        Rejected: the frame is refused.
    """
    message = session.verify(frame, now=now)
    session.accept(message, now=now)
    for event in session.events_received():
        if isinstance(event, MessageReceived):
            session.message_done(event.message, now=now)
    return message


def sent_frame(session: ServerSession, payload: Payload, *, now: float) -> bytes:
    """The server frame ``session`` sends for ``payload`` (None: an ack)."""
    session.send_message(payload, now=now)
    return session.data_to_send()[-1]
