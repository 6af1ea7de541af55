"""The hostile-input corpus against the core: every case refused with its
documented code, the connection state unchanged, and no expensive check paid
for a frame that fails a cheaper one (SPEC.md §6.4, §9, §11.7)."""

from __future__ import annotations

import collections
from dataclasses import dataclass

import figures
import pytest
from corpus import CASES, CATEGORIES, NONCE_CASES, Case, Conn, NonceCase, make_verifier
from helpers import (
    AUDIENCE,
    FLEET_KEY,
    CountingBackend,
    FakeClock,
    seeded_random,
    verify_both_paths,
)

from signedws.credential import CERTIFICATE_LABEL, TokenKeys
from signedws.ed25519 import BackendName, check_signature
from signedws.envelope import CLIENT_LABEL
from signedws.errors import Code, Rejected
from signedws.nonce import NonceKey
from signedws.verifier import ConnectionState, Message, VerifiedCredential, Verifier

#: The step of SPEC.md §6.4 at which each code is raised.
STEP: dict[Code, int] = {
    Code.FRAME_TOO_LARGE: 1,
    Code.MALFORMED: 2,
    Code.UNSUPPORTED_VERSION: 3,
    Code.NONCE_MISMATCH: 5,
    Code.NONCE_EXPIRED: 5,
    Code.REPLAY: 6,
    Code.CREDENTIAL_MALFORMED: 7,
    Code.SCHEME_MISMATCH: 7,
    Code.UNKNOWN_ISSUER: 7,
    Code.UNKNOWN_KEY: 7,
    Code.CREDENTIAL_INVALID: 7,
    Code.WEAK_KEY: 7,
    Code.CREDENTIAL_EXPIRED: 7,
    Code.CREDENTIAL_NOT_YET_VALID: 7,
    Code.AUDIENCE_MISMATCH: 7,
    Code.CREDENTIAL_MISMATCH: 8,
    Code.CREDENTIAL_REVOKED: 9,
    Code.TIMESTAMP_SKEW: 10,
    Code.BAD_TAG: 11,
    Code.BAD_SIGNATURE: 11,
}


def _params() -> list[object]:
    """Every case; the ed25519 ones under both backends."""
    params: list[object] = []
    for case in CASES:
        backends: tuple[BackendName, ...] = ("libsodium",)
        if case.setup.scheme != "mac":
            backends = ("libsodium", "openssl")
        params += [pytest.param(case, b, id=f"{case.name}-{b}") for b in backends]
    return params


PARAMS = _params()


@dataclass
class Opened:
    """A core connection after a case's prelude."""

    verifier: Verifier
    state: ConnectionState
    conn: Conn
    clock: FakeClock


def open_case(case: Case, backend: BackendName = "libsodium") -> Opened:
    """Configure the verifier, open a connection and play the honest prelude."""
    clock = FakeClock()
    verifier = make_verifier(case.setup, backend)
    state = verifier.open(now=clock.now, random=seeded_random(b"corpus"))
    conn = Conn(state.nonce, clock, case.setup.scheme)
    for ctr in case.setup.prelude:
        message = verifier.verify(conn.frame(ctr=ctr), state, now=clock.now)
        assert isinstance(message, Message)
    clock.advance(case.setup.advance)
    return Opened(verifier, state, conn, clock)


def snapshot(state: ConnectionState) -> tuple[object, ...]:
    """What must not move on a rejection (SPEC.md §6.4 step 12)."""
    return (state.highest, state.bitmap, state.principal, state.credential, state.nonce)


def test_corpus_is_large_and_covers_every_server_code() -> None:
    """At least 60 named cases, every category populated, every rejection
    code a server core can raise drawn by at least one case."""
    assert len(CASES) >= 60
    by_category = collections.Counter(c.category for c in CASES)
    assert set(by_category) == set(CATEGORIES)
    drawn = {c.expected for c in CASES} | {c.expected for c in NONCE_CASES}
    server_codes = set(STEP) | {Code.NONCE_INVALID}
    assert drawn == server_codes
    figures.record("input.cases", len(CASES), "named hostile frames", section="input")
    for category, count in sorted(by_category.items()):
        figures.record(
            f"input.category.{category}",
            count,
            f"· {category}: {CATEGORIES[category]}",
            section="input",
        )
    figures.record(
        "input.nonce_cases",
        len(NONCE_CASES),
        "fleet nonce checks (no socket form)",
        section="input",
    )
    figures.record(
        "input.codes",
        len(drawn),
        "distinct rejection codes drawn (of 21 a server can raise)",
        section="input",
    )


@pytest.mark.parametrize(("case", "backend"), PARAMS)
def test_case_is_refused_with_its_code_and_changes_nothing(
    case: Case, backend: BackendName
) -> None:
    """Each hostile frame is refused with exactly its code; the connection's
    state is as before, and an honest frame is still accepted after it."""
    opened = open_case(case, backend)
    data = case.build(opened.conn)
    before = snapshot(opened.state)
    # The verifier's fast path and its full path refuse it alike (helpers.py).
    refused = verify_both_paths(opened.verifier, data, opened.state, now=opened.clock.now)
    assert isinstance(refused, Rejected), (case.name, refused)
    assert refused.code is case.expected, (case.name, refused)
    assert snapshot(opened.state) == before
    # The details are for the log: never a frame's bytes or a secret.
    assert opened.conn.nonce.hex() not in refused.detail
    figures.add(
        "input.core_runs", 1, "corpus runs against the core (cases x backends)", section="input"
    )
    if case.setup.advance or opened.conn.counter >= 2**64 - 1:
        return  # the nonce or credential expired, or the counters ran out: reconnect
    honest = opened.conn.frame("honest after")
    assert isinstance(opened.verifier.verify(honest, opened.state, now=opened.clock.now), Message)


@pytest.mark.parametrize("case", NONCE_CASES, ids=[c.name for c in NONCE_CASES])
def test_nonce_checked_outside_its_connection(case: NonceCase) -> None:
    """A fleet server checking a nonce it did not mint on this connection
    refuses forged, edited, foreign and expired nonces (SPEC.md §5.3)."""
    with pytest.raises(Rejected) as info:
        NonceKey(FLEET_KEY, AUDIENCE).check(case.nonce(), now=case.now)
    assert info.value.code is case.expected
    figures.add(
        "input.core_runs", 1, "corpus runs against the core (cases x backends)", section="input"
    )


# -- DoS economics: counting what each refusal cost (SPEC.md §11.7) -----------------------


class CountingMAC:
    """Stands in for a credential's prepared frame-MAC state and counts the
    copies taken of it: one per frame MAC computed (SPEC.md §6.4 step 11)."""

    def __init__(self, inner: object, costs: Costs) -> None:
        self.inner = inner
        self.costs = costs

    def copy(self) -> object:
        """Count, then copy the real state."""
        self.costs.frame_macs += 1
        return self.inner.copy()  # type: ignore[attr-defined]


class Costs:
    """What the verifier spent on one frame: frame MACs computed (step 11),
    token tags computed (step 7, on a cache miss); Ed25519 verifications are
    counted by `helpers.CountingBackend`."""

    def __init__(self) -> None:
        self.frame_macs = 0
        self.token_macs = 0

    def watch(self, verifier: Verifier, monkeypatch: pytest.MonkeyPatch) -> None:
        """Count from now on, whatever the verifier's cache holds."""
        for vc in list(verifier._cache.values()):
            if vc.mac_state is not None:
                vc.mac_state = CountingMAC(vc.mac_state, self)  # type: ignore[assignment]
        authenticate = verifier._authenticate
        token_tag = TokenKeys.token_tag

        def counting_authenticate(cred: bytes, kind: int) -> VerifiedCredential:
            vc = authenticate(cred, kind)
            if vc.mac_state is not None:
                vc.mac_state = CountingMAC(vc.mac_state, self)  # type: ignore[assignment]
            return vc

        def counting_token_tag(keys: TokenKeys, body: bytes) -> bytes:
            self.token_macs += 1
            return token_tag(keys, body)

        monkeypatch.setattr(verifier, "_authenticate", counting_authenticate)
        monkeypatch.setattr(TokenKeys, "token_tag", counting_token_tag)


@pytest.mark.parametrize(("case", "backend"), PARAMS)
def test_refusal_costs_nothing_the_step_does_not_need(
    case: Case, backend: BackendName, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames refused before step 7 cost no MAC and no Ed25519 verification at
    all; frames refused at steps 7-10 never have their own tag checked (and
    authenticate a credential at most once); only step 11 checks the tag."""
    opened = open_case(case, backend)
    data = case.build(opened.conn)
    costs = Costs()
    costs.watch(opened.verifier, monkeypatch)
    counting = CountingBackend(opened.verifier.backend)
    opened.verifier.backend = counting
    with pytest.raises(Rejected) as info:
        opened.verifier.verify(data, opened.state, now=opened.clock.now)
    assert info.value.code is case.expected
    frame_checks = costs.frame_macs + counting.frame_verifications
    credential_checks = costs.token_macs + counting.certificate_verifications
    step = STEP[case.expected]
    if step <= 6:
        assert (frame_checks, credential_checks) == (0, 0), case.name
        figures.add(
            "dos.free", 1, "corpus frames refused with no MAC or signature check", section="dos"
        )
    elif step <= 10:
        assert frame_checks == 0, case.name
        assert credential_checks <= 1, case.name
        figures.add(
            "dos.no_tag", 1, "corpus frames refused before their own tag is checked", section="dos"
        )
    else:
        # The byte rules of SPEC.md §8.2 (S < L, R canonical and not of small
        # order) refuse a signature before the backend is asked.
        byte_rule = case.expected is Code.BAD_SIGNATURE and check_signature(data[-64:])
        assert frame_checks == (0 if byte_rule else 1), case.name
        assert credential_checks <= 1, case.name
    assert all(m.startswith((CLIENT_LABEL, CERTIFICATE_LABEL)) for m in counting.verified)
