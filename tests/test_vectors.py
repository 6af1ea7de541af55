"""The conformance vectors of SPEC.md §12, run through signedws's public API.

The JSON files under ``vectors/`` are written by ``vectors/generate.py``, an
independent implementation of the generating side that does not import
signedws; this module only reads them. Each case is its own test, named by the
case's ``name``. See ``vectors/README.md`` for the format.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import handle, sent_frame, verify_both_paths
from vector_json import (
    Json,
    credential_of,
    fixed_random,
    h,
    payload_of,
    revocations_of,
    typed,
    verifier_of,
)

from signedws.credential import (
    Issuer,
    TokenKeys,
    encode_key_reference,
)
from signedws.ed25519 import SMALL_ORDER_ENCODINGS, check_public_key, check_signature
from signedws.errors import Rejected
from signedws.keys import Ed25519PrivateKey, Ed25519PublicKey, HMACKey
from signedws.nonce import NONCE_KEY_INFO, NonceKey
from signedws.server import ServerKey, ServerSession
from signedws.signer import ServerMessage, Signer
from signedws.verifier import ConnectionState, Message, Verifier

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


@functools.cache
def load(name: str) -> Json:
    """A vector file, parsed."""
    data: Json = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert data["version"] == 1
    return data


def cases(name: str, *types: str) -> list[Any]:
    """The cases of a file (of the given types, if any), as pytest params."""
    return [
        pytest.param(case, id=case["name"])
        for case in load(name)["cases"]
        if not types or case.get("type") in types
    ]


# -- decoding the JSON --------------------------------------------------------------


def as_int(value: int | str) -> int:
    """Integers above 2^53 - 1 are decimal strings in the vectors."""
    return int(value)


def minted_nonce(inputs: Json) -> bytes:
    """Mint the nonce from its inputs, and check it is the bytes the vector gives."""
    nonce = NonceKey(HMACKey(h(inputs["fleet_key"])), inputs["audience"]).mint(
        node_id=h(inputs["node_id"]),
        now=inputs["now"],
        ttl=inputs["ttl"],
        random=fixed_random(h(inputs["random"])),
    )
    assert nonce.hex() == inputs["bytes"]
    return nonce


def normalized(expect: Json) -> Json:
    """An expectation with big integers as ints, for comparison."""
    if "accept" not in expect or not isinstance(expect["accept"], dict):
        return expect
    accept = dict(expect["accept"])
    for key in ("ctr", "ack", "seq"):
        if key in accept:
            accept[key] = as_int(accept[key])
    return {"accept": accept}


def message_result(message: Message) -> Json:
    return {
        "accept": {
            "sub": message.subject,
            "iss": message.issuer,
            "scopes": sorted(message.scopes),
            "ctr": message.counter,
            "stream": message.stream.hex(),
            "seq": message.seq,
            "payload": typed(message.payload),
            "cid": message.credential_id,
            "ts": message.timestamp_ms,
        }
    }


def server_message_result(message: ServerMessage) -> Json:
    return {
        "accept": {
            "ctr": message.counter,
            "ack": message.ack,
            "payload": typed(message.payload),
            "ts": message.timestamp_ms,
        }
    }


def outcome(run: Callable[[], Json]) -> Json:
    """What ``run`` returned, or the rejection it raised, in the vectors' form."""
    try:
        return run()
    except Rejected as exc:
        return {"reject": exc.code.id}


def verify_outcome(verifier: Verifier, frame: bytes, state: ConnectionState, now: float) -> Json:
    """The verifier's answer to one client frame, in the vectors' form."""
    try:
        message = verifier.verify(frame, state, now=now)
    except Rejected as exc:
        return {"reject": exc.code.id}
    return message_result(message)


def server_outcome(signer: Signer, frame: bytes, now: float) -> Json:
    """The client's answer to one server frame, in the vectors' form."""
    try:
        message = signer.verify(frame)
    except Rejected as exc:
        return {"reject": exc.code.id}
    return server_message_result(message)


def state_snapshot(state: ConnectionState) -> tuple[object, ...]:
    return (state.highest, state.bitmap, state.principal, state.credential)


def run_frame_steps(verifier: Verifier, state: ConnectionState, steps: list[Json]) -> None:
    """Run frames.json steps on one connection; a rejection must change nothing.

    Each frame is also verified on a `full_path_twin` of the state, which must
    get the same answer (`verify_both_paths`).
    """
    for index, step in enumerate(steps):
        if "replace_revocations" in step:
            verifier.revocations = revocations_of(step["replace_revocations"])
        before = state_snapshot(state)
        # The fast path and the full path give the same answer (helpers.py).
        got = verify_both_paths(verifier, h(step["frame"]), state, now=step["now"])
        result = {"reject": got.code.id} if isinstance(got, Rejected) else message_result(got)
        assert (index, result) == (index, normalized(step["expect"]))
        if "reject" in result:
            assert state_snapshot(state) == before, f"step {index} changed the state"


# -- keys.json ------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("keys.json"))
def test_keys(case: Json) -> None:
    """Key derivations and Ed25519 public keys match the vector (SPEC.md §3)."""
    kind = case["type"]
    if kind == "hmac_issuer_secret":
        keys = TokenKeys(HMACKey(h(case["secret"])))
        assert keys.token_key.to_bytes().hex() == case["token_key"]
        assert keys.frame_key_root.to_bytes().hex() == case["frame_key_root"]
    elif kind == "frame_key":
        keys = TokenKeys(HMACKey(h(case["secret"])))
        assert keys.frame_key(h(case["token"])).to_bytes().hex() == case["frame_key"]
    elif kind == "nonce_key":
        derived = HMACKey(h(case["fleet_key"])).derive(NONCE_KEY_INFO)
        assert derived.to_bytes().hex() == case["nonce_key"]
    else:
        assert kind == "ed25519_seed"
        public = Ed25519PrivateKey(h(case["seed"])).public_key()
        assert public.to_bytes().hex() == case["public_key"]


# -- credentials.json ---------------------------------------------------------------------


def _issued_bytes(case: Json) -> bytes:
    fields = case["fields"]
    iat, exp = as_int(fields["iat"]), as_int(fields["exp"])
    args: Json = {
        "subject": fields["sub"],
        "now": iat,
        "lifetime": exp - iat,
        "scopes": fields["scopes"],
        "audiences": fields["aud"],
        "credential_id": fields["cid"],
    }
    if case["type"] == "token":
        issuer = Issuer(fields["iss"], fields["kid"], HMACKey(h(case["issuer_secret"])))
        credential = issuer.issue_token(**args)
        assert credential.frame_key.to_bytes().hex() == case["frame_key"]
        return credential.token
    issuer = Issuer(fields["iss"], fields["kid"], Ed25519PrivateKey(h(case["issuer_seed"])))
    return issuer.issue_certificate(Ed25519PublicKey(h(fields["public_key"])), **args)


@pytest.mark.parametrize("case", cases("credentials.json"))
def test_credentials(case: Json) -> None:
    """Issuers reproduce the exact credential bytes; a verifier accepts or
    refuses a frame carrying each credential with the expected code (SPEC.md §4)."""
    if case["mintable"]:
        if case["type"] == "key_reference":
            fields = case["fields"]
            issued = encode_key_reference(fields["iss"], fields["kid"])
        else:
            issued = _issued_bytes(case)
        assert issued.hex() == case["bytes"]
    if case["type"] == "token" and "frame_key" in case:
        secret = HMACKey(h(case["issuer_secret"]))
        assert TokenKeys(secret).frame_key(h(case["bytes"])).to_bytes().hex() == case["frame_key"]
    setup = load("credentials.json")["setup"]
    verifier = verifier_of(setup["verifier"])
    state = ConnectionState(minted_nonce(setup["nonce"]))
    step = {"frame": case["frame"], "now": case["now"], "expect": case["expect"]}
    run_frame_steps(verifier, state, [step])


# -- nonces.json ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("nonces.json"))
def test_nonces(case: Json) -> None:
    """Nonces are minted byte for byte and checked as SPEC.md §5.3 says."""
    if case["type"] == "mint":
        inputs = case["inputs"]
        nonce = minted_nonce(inputs)
        assert int.from_bytes(nonce[9:17], "big") == inputs["expires"]
        return
    key = NonceKey(HMACKey(h(case["fleet_key"])), case["audience"])

    def check() -> Json:
        info = key.check(h(case["nonce"]), now=case["now"])
        return {"valid": {"node_id": info.node_id.hex(), "expires": info.expires}}

    assert outcome(check) == case["expect"]


# -- frames.json ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("frames.json"))
def test_frames(case: Json) -> None:
    """A verifier set up from the case accepts or refuses each step's frame as
    expected; a refused frame changes nothing (SPEC.md §6.4)."""
    verifier = verifier_of(case["verifier"])
    state = ConnectionState(minted_nonce(case["nonce"]))
    run_frame_steps(verifier, state, case["steps"])


# -- server_frames.json --------------------------------------------------------------------------


def _server_keys(case: Json) -> dict[str, Ed25519PublicKey]:
    return {kid: Ed25519PublicKey(h(key)) for kid, key in case.get("server_keys", {}).items()}


@pytest.mark.parametrize("case", cases("server_frames.json", "hello"))
def test_hellos(case: Json) -> None:
    """A client accepts a hello for its audience and refuses others (SPEC.md §5.2)."""

    def start() -> Json:
        signer = Signer.from_hello(
            h(case["hello"]),
            credential_of(case["credential"]),
            audience=case["audience"],
            now=case["now"],
        )
        hello = signer.hello
        fields = {
            "nonce": hello.nonce.hex(),
            "aud": hello.audience,
            "time": hello.server_time_ms,
            "max_frame": hello.max_frame_size,
            "window": hello.window,
        }
        return {"accept": fields}

    assert outcome(start) == case["expect"]


@pytest.mark.parametrize("case", cases("server_frames.json", "client_frames"))
def test_client_frames(case: Json) -> None:
    """A client signs the exact frame bytes of the vector (SPEC.md §6.3)."""
    signer = Signer.from_hello(
        h(case["hello"]),
        credential_of(case["credential"]),
        audience=case["audience"],
        now=case["now"],
        stream=h(case["stream"]),
        seq=case["seq"],
    )
    for index, step in enumerate(case["steps"]):
        if "refresh" in step:
            signer.refresh(credential_of(step["refresh"]))
        payload = payload_of(step["payload"])
        frame = signer.sign(payload, now=step["now"], seq=step.get("resend_seq"))
        assert (index, frame.hex()) == (index, step["frame"])
        assert signer.counter == step["ctr"]


@pytest.mark.parametrize("case", cases("server_frames.json", "server_frames"))
def test_server_frames(case: Json) -> None:
    """A client accepts or refuses each server frame as expected (SPEC.md §7.2)."""
    credentials = [credential_of(c) for c in case["credentials"]]
    signer = Signer.from_hello(
        h(case["hello"]),
        credentials[0],
        audience=case["audience"],
        now=case["now"],
        server_keys=_server_keys(case),
        stream=h(case["stream"]),
    )
    for credential in credentials[1:]:
        signer.refresh(credential)
    for _ in range(case["sent"]):
        signer.sign(None, now=case["now"])
    for index, step in enumerate(case["steps"]):
        result = server_outcome(signer, h(step["frame"]), step["now"])
        assert (index, result) == (index, normalized(step["expect"]))


@pytest.mark.parametrize("case", cases("server_frames.json", "session"))
def test_sessions(case: Json) -> None:
    """A ServerSession and a Signer reproduce a whole connection byte for byte."""
    nonce_inputs = case["nonce"]
    server_key = case["server_key"]
    session = ServerSession(
        verifier_of(case["verifier"]),
        now=case["server_now"],
        server_key=(
            ServerKey(server_key["kid"], Ed25519PrivateKey(h(server_key["seed"])))
            if server_key
            else None
        ),
        random=fixed_random(h(nonce_inputs["random"])),
    )
    assert session.nonce.hex() == nonce_inputs["bytes"]
    assert session.hello.hex() == case["hello"]
    signer = Signer.from_hello(
        session.hello,
        credential_of(case["credential"]),
        audience=case["audience"],
        now=case["client_now"],
        server_keys=_server_keys(case),
        stream=h(case["stream"]),
        seq=case["seq"],
    )
    for index, step in enumerate(case["steps"]):
        payload = payload_of(step["payload"])
        expect = normalized(step["expect"])
        if step["from"] == "client":
            frame = signer.sign(payload, now=step["client_now"])
            assert (index, frame.hex()) == (index, step["frame"])
            result = message_result(handle(session, frame, now=step["server_now"]))
        else:
            frame = sent_frame(session, payload, now=step["server_now"])
            assert (index, frame.hex()) == (index, step["frame"])
            result = server_message_result(signer.verify(frame))
        assert (index, result) == (index, expect)


# -- ed25519_rules.json ---------------------------------------------------------------------------


def test_ed25519_constants() -> None:
    """L and p are the constants of SPEC.md §8.2."""
    data = load("ed25519_rules.json")
    assert int(data["L"]["decimal"]) == 2**252 + 27742317777372353535851937790883648493
    assert int(data["p"]["decimal"]) == 2**255 - 19
    for name in ("L", "p"):
        value = int(data[name]["decimal"])
        assert value.to_bytes(32, "little").hex() == data[name]["le_hex"]


def test_small_order_set() -> None:
    """The library's blocklist is exactly the 14 encodings of the vectors."""
    encodings = {h(case["encoding"]) for case in load("ed25519_rules.json")["cases"]}
    assert len(encodings) == 14
    assert encodings == set(SMALL_ORDER_ENCODINGS)


@pytest.mark.parametrize("case", cases("ed25519_rules.json"))
def test_small_order_refused(case: Json) -> None:
    """Each small-order encoding is refused as a public key and as R (§8.2 rule 4)."""
    encoding = h(case["encoding"])
    assert check_public_key(encoding) is not None
    assert check_signature(encoding + bytes(32)) is not None
