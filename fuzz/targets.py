"""Fuzz targets for signedws: decode and verify any bytes, raising only
documented errors (STYLE.md "Errors"; websockets' ``fuzzing/`` harnesses).

`check` is the whole target: its first input byte picks what to feed, the rest
is the input. It raises `Failure` (an `AssertionError`) or lets any
undocumented exception escape when signedws misbehaves; for every input that
signedws handles as documented it returns None. It imports nothing but the
signedws core, so it runs under atheris (``fuzz_verify.py``), under hypothesis
(``tests/adversarial/test_fuzz_harness.py``) or from a REPL.

What "documented" means per target:

- ``verify``: `Verifier.verify` raises only `Rejected`, with one of the codes
  SPEC.md §9 gives the server core, and a rejected frame leaves the connection
  state exactly as it was (SPEC.md §6.4 step 12).
- ``decode``: the unverified decoders raise only `Rejected` (`malformed`,
  `unsupported_version`, `credential_malformed`).
- ``server frames``: `Signer.verify` raises only `Rejected` with a client-side
  code and changes nothing when it does.
- ``nonce``: `NonceKey.check` raises only `Rejected` (`malformed`,
  `nonce_invalid`, `nonce_expired`).
- ``retagged``: the input, re-tagged under the honest `mac` client's frame
  key, is verified: mutations inside fields reach every step, and a frame
  that is accepted is delivered exactly as it reads.

Everything is fixed (keys, clock, nonce randomness), so a crashing input
reproduces exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

from signedws import (
    Code,
    Ed25519Credential,
    Ed25519PrivateKey,
    HMACKey,
    Issuer,
    Keyring,
    MACCredential,
    NonceKey,
    Rejected,
    RevocationSet,
    ServerKey,
    ServerSession,
    Signer,
    Verifier,
    decode_hello,
    encode_key_reference,
    unverified_client_frame,
    unverified_credential,
)
from signedws.envelope import parse_server_frame
from signedws.verifier import ConnectionState

__all__ = ["TARGETS", "Failure", "check", "seeds"]

NOW: Final = 1_700_000_000.0
AUDIENCE: Final = "wss://fuzz.example.test/ws"
ISSUER: Final = "https://login.example.test"
FLEET_KEY: Final = HMACKey(bytes(range(32)))
HMAC_SECRET: Final = HMACKey(bytes(range(32, 64)))
ED_ISSUER_KEY: Final = Ed25519PrivateKey(b"\x01" * 32)
CLIENT_KEY: Final = Ed25519PrivateKey(b"\x02" * 32)
SERVER_KEY: Final = ServerKey("server-1", Ed25519PrivateKey(b"\x03" * 32))
STREAM: Final = bytes(range(16))

#: Codes the server core may raise for a client frame (SPEC.md §9).
SERVER_CODES: Final = frozenset(
    {
        Code.FRAME_TOO_LARGE,
        Code.MALFORMED,
        Code.UNSUPPORTED_VERSION,
        Code.SCHEME_MISMATCH,
        Code.NONCE_MISMATCH,
        Code.NONCE_EXPIRED,
        Code.REPLAY,
        Code.TIMESTAMP_SKEW,
        Code.CREDENTIAL_MALFORMED,
        Code.UNKNOWN_ISSUER,
        Code.UNKNOWN_KEY,
        Code.CREDENTIAL_INVALID,
        Code.WEAK_KEY,
        Code.CREDENTIAL_EXPIRED,
        Code.CREDENTIAL_NOT_YET_VALID,
        Code.CREDENTIAL_REVOKED,
        Code.AUDIENCE_MISMATCH,
        Code.CREDENTIAL_MISMATCH,
        Code.BAD_TAG,
        Code.BAD_SIGNATURE,
    }
)
#: Codes a client may raise for a server frame (SPEC.md §7.2).
CLIENT_CODES: Final = frozenset(
    {
        Code.FRAME_TOO_LARGE,
        Code.MALFORMED,
        Code.UNSUPPORTED_VERSION,
        Code.SCHEME_MISMATCH,
        Code.NONCE_MISMATCH,
        Code.REPLAY,
        Code.ACK_INVALID,
        Code.UNKNOWN_KEY,
        Code.BAD_TAG,
        Code.BAD_SIGNATURE,
    }
)
DECODE_CODES: Final = frozenset({Code.MALFORMED, Code.UNSUPPORTED_VERSION})
NONCE_CODES: Final = frozenset({Code.MALFORMED, Code.NONCE_INVALID, Code.NONCE_EXPIRED})


class Failure(AssertionError):
    """signedws did something its documentation does not allow."""


def _random(seed: bytes) -> Callable[[int], bytes]:
    calls = [0]

    def random(size: int) -> bytes:
        calls[0] += 1
        return hashlib.shake_256(seed + calls[0].to_bytes(4, "big")).digest(size)

    return random


class World:
    """The fixed server and clients every input is checked against."""

    def __init__(self) -> None:
        keyring = Keyring()
        keyring.add_hmac_key(ISSUER, "hmac-1", HMAC_SECRET)
        keyring.add_ed25519_key(ISSUER, "ed-1", ED_ISSUER_KEY.public_key())
        keyring.register(
            ISSUER,
            "device-1",
            CLIENT_KEY.public_key(),
            subject="device",
            not_before=int(NOW) - 60,
            expires=int(NOW) + 3600,
        )
        revocations = RevocationSet([(ISSUER, "tok-revoked")])
        common = {"audience": AUDIENCE, "fleet_key": FLEET_KEY, "node_id": b"fuzznode"}
        self.strict = Verifier(keyring, revocations=revocations, **common)  # type: ignore[arg-type]
        self.windowed = Verifier(keyring, revocations=revocations, window=8, **common)  # type: ignore[arg-type]
        mac = Issuer(ISSUER, "hmac-1", HMAC_SECRET)
        ed = Issuer(ISSUER, "ed-1", ED_ISSUER_KEY)
        self.token = mac.issue_token(
            subject="alice", now=NOW, credential_id="tok-1", audiences=[AUDIENCE]
        )
        self.credentials: list[MACCredential | Ed25519Credential] = [
            self.token,
            Ed25519Credential(
                ed.issue_certificate(
                    CLIENT_KEY.public_key(), subject="alice", now=NOW, credential_id="cert-1"
                ),
                CLIENT_KEY,
            ),
            Ed25519Credential(encode_key_reference(ISSUER, "device-1"), CLIENT_KEY),
            mac.issue_token(subject="alice", now=NOW - 7200, credential_id="tok-old"),
            mac.issue_token(subject="bob", now=NOW, credential_id="tok-revoked"),
        ]
        # One fresh connection per verifier, and a template of a warm one.
        self.fresh = ServerSession(self.strict, now=NOW, random=_random(b"fresh"))
        self.warm = ServerSession(
            self.windowed, now=NOW, server_key=SERVER_KEY, random=_random(b"warm")
        )
        warm_signer = self._signer(self.warm, self.credentials[0])
        for payload in ("one", "two", None):
            self.warm.verify(warm_signer.sign(payload, now=NOW), now=NOW)
        self.warm.verify(warm_signer.sign("four", now=NOW), now=NOW)
        # Clients that sent three frames, to verify server frames against.
        self.server_mac = ServerSession(self.strict, now=NOW, random=_random(b"smac"))
        self.server_ed = ServerSession(
            self.strict, now=NOW, server_key=SERVER_KEY, random=_random(b"sed")
        )
        self.client_mac = self._signer(self.server_mac, self.credentials[0])
        self.client_ed = self._signer(self.server_ed, self.credentials[1])
        for server, client in (
            (self.server_mac, self.client_mac),
            (self.server_ed, self.client_ed),
        ):
            for payload in ("a", "b", "c"):
                server.verify(client.sign(payload, now=NOW), now=NOW)
        self.nonce_key = NonceKey(FLEET_KEY, AUDIENCE)

    def _signer(
        self, server: ServerSession, credential: MACCredential | Ed25519Credential
    ) -> Signer:
        return Signer.from_hello(
            server.hello,
            credential,
            audience=AUDIENCE,
            now=NOW,
            server_keys={SERVER_KEY.kid: SERVER_KEY.private_key.public_key()},
            stream=STREAM,
        )


_world: World | None = None


def world() -> World:
    """The fixed world, built on first use (so that importing is cheap)."""
    global _world  # noqa: PLW0603 - a lazily built constant
    if _world is None:
        _world = World()
    return _world


def _copy(state: ConnectionState) -> ConnectionState:
    copy = ConnectionState(state.nonce)
    copy.highest, copy.bitmap = state.highest, state.bitmap
    copy.principal, copy.credential = state.principal, state.credential
    return copy


def _snapshot(state: ConnectionState) -> tuple[object, ...]:
    return (state.highest, state.bitmap, state.principal, state.credential, state.nonce)


def _expect(codes: frozenset[Code], exc: Rejected, what: str) -> None:
    if exc.code not in codes:
        raise Failure(f"{what} raised undocumented code {exc.code.id}")


def _verify(verifier: Verifier, template: ConnectionState, data: bytes) -> None:
    state = _copy(template)
    before = _snapshot(state)
    try:
        verifier.verify(data, state, now=NOW)
    except Rejected as exc:
        _expect(SERVER_CODES, exc, "Verifier.verify")
        if _snapshot(state) != before:
            raise Failure(f"state changed on {exc.code.id}") from None


def _verify_fresh(data: bytes) -> None:
    w = world()
    _verify(w.strict, w.fresh.verifier_state, data)


def _verify_warm(data: bytes) -> None:
    w = world()
    _verify(w.windowed, w.warm.verifier_state, data)


def _verify_retagged(data: bytes) -> None:
    """Re-tag ``data`` as the honest `mac` client would, then verify it: the
    mutations inside fields get past step 11, and whatever is accepted must
    be exactly what the frame says (SPEC.md §6.4 step 12)."""
    if len(data) < 34:
        return
    w = world()
    body = data[:-34]
    prefix = b"signedws/v1 client\x00" + len(AUDIENCE).to_bytes(2, "big") + AUDIENCE.encode()
    frame = body + b"\xc4\x20" + w.token.frame_key.mac(prefix + body)
    state = _copy(w.fresh.verifier_state)
    before = _snapshot(state)
    try:
        message = w.strict.verify(frame, state, now=NOW)
    except Rejected as exc:
        _expect(SERVER_CODES, exc, "Verifier.verify")
        if _snapshot(state) != before:
            raise Failure(f"state changed on {exc.code.id}") from None
        return
    fields = unverified_client_frame(frame)
    if (message.counter, message.seq, message.payload, message.stream) != (
        fields.counter,
        fields.seq,
        fields.payload,
        fields.stream,
    ):
        raise Failure("delivered message differs from the frame")
    if state.highest != fields.counter or message.subject != "alice":
        raise Failure("state after acceptance does not match the frame")


def _decode(data: bytes) -> None:
    for decoder, codes in (
        (unverified_client_frame, DECODE_CODES),
        (parse_server_frame, DECODE_CODES),
        (decode_hello, DECODE_CODES),
        (unverified_credential, frozenset({Code.CREDENTIAL_MALFORMED})),
    ):
        try:
            decoder(data)
        except Rejected as exc:
            _expect(codes, exc, decoder.__name__)


def _server_frame(data: bytes) -> None:
    w = world()
    for signer in (w.client_mac, w.client_ed):
        before = (signer._server_counter, signer._ack)
        try:
            signer.verify(data)
        except Rejected as exc:
            _expect(CLIENT_CODES, exc, "Signer.verify")
            if (signer._server_counter, signer._ack) != before:
                raise Failure(f"client state changed on {exc.code.id}") from None
        else:
            # Only a genuine server frame verifies; undo it for the next input.
            signer._server_counter, signer._ack = before


def _hello(data: bytes) -> None:
    try:
        Signer.from_hello(data, world().credentials[0], audience=AUDIENCE, now=NOW)
    except Rejected as exc:
        _expect(DECODE_CODES | {Code.AUDIENCE_MISMATCH}, exc, "Signer.from_hello")


def _nonce(data: bytes) -> None:
    try:
        world().nonce_key.check(data, now=NOW)
    except Rejected as exc:
        _expect(NONCE_CODES, exc, "NonceKey.check")


#: The targets, by the value of an input's first byte (modulo their number).
TARGETS: Final[tuple[Callable[[bytes], None], ...]] = (
    _verify_fresh,
    _verify_warm,
    _decode,
    _server_frame,
    _hello,
    _nonce,
    _verify_retagged,
)


def check(data: bytes) -> None:
    """Run one fuzz input: ``data[0]`` picks the target, ``data[1:]`` is fed to it.

    Raises:
        Failure: signedws broke a documented rule (and any exception other
            than `Rejected` escapes as it is).
    """
    if not data:
        return
    TARGETS[data[0] % len(TARGETS)](bytes(data[1:]))


def seeds() -> list[bytes]:
    """Inputs that reach deep: genuine frames, credentials, hellos, server
    frames and nonces, each prefixed with its target's selector byte."""
    w = world()
    out: list[bytes] = []
    for selector, session in ((0, w.fresh), (1, w.warm)):
        for credential in w.credentials:
            signer = Signer.from_hello(
                session.hello, credential, audience=AUDIENCE, now=NOW, stream=STREAM, seq=10
            )
            if selector == 1:
                signer._counter = 4
            for payload in ("hello", b"\x00\x01", None):
                out.append(bytes([selector]) + signer.sign(payload, now=NOW))
    for credential in w.credentials:
        raw = credential.token if isinstance(credential, MACCredential) else credential.credential
        out.append(b"\x02" + raw)
    out.append(b"\x02" + w.fresh.hello)
    for server, payload in (
        (w.server_mac, "reply"),
        (w.server_ed, b"reply"),
        (w.server_mac, None),
    ):
        server.send_message(payload, now=NOW)
        out.append(b"\x03" + server.data_to_send()[-1])
    out.append(b"\x04" + w.fresh.hello)
    out.append(b"\x05" + w.fresh.nonce)
    out += [b"\x06" + seed[1:] for seed in out if seed[0] == 0 and seed[3] == 1]  # mac frames
    return out
