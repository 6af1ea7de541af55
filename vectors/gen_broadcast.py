#!/usr/bin/env python3
"""Generate ``vectors/broadcast.json``: the broadcast frames of SPEC.md §14.

Run ``python vectors/gen_broadcast.py``; it writes ``broadcast.json`` next to
itself, deterministically. Like ``generate.py`` it is an independent
implementation built from SPEC.md alone (msgpack, hmac/hashlib and PyNaCl, never
``signedws``). Expected codes are worked out by hand from §14.4's steps (the
first failing step wins).

File format (conventions of ``vectors/README.md``: bytes as lowercase hex,
payloads typed ``{"str": …}``/``{"bin": …}``, expectations ``{"accept": …}`` or
``{"reject": code}``):

- ``audience``: the server's audience every case uses.
- ``clients``: ``"mac"``: ``{"scheme": "mac", "frame_keys": {cid: hex}}`` (the
  frame keys the client holds); ``"ed25519"``: ``{"scheme": "ed25519",
  "server_keys": {kid: public key hex}}``.
- cases with ``"kind": "body"``: ``topic``, ``tseq``, ``ts``, ``payload``, and the
  outputs ``body`` (exact bytes) and ``body_hash``.
- cases with ``"kind": "batch"``: what a server generates (§14.3) for one
  message: the body inputs, ``scheme``, ``key_id``, the signing ``seed``
  (ed25519) or each recipient's ``frame_key`` (mac), and ``recipients``: a list
  of ``{"nonce", "ctr", "binding", "leaf" (ed25519), "frame"}`` in batch order;
  ``root`` for ed25519.
- cases with ``"kind": "verify"``: ``client`` (a key of ``clients``), the
  connection state ``nonce``, ``hs`` (the highest server counter, §7.2),
  ``marks`` (topic -> highest tseq delivered, §14.4), the ``frame``, and
  ``expected``: ``{"accept": {"counter", "topic", "tseq", "ts", "payload",
  "missed", "marks"}}`` (``marks`` after the commit) or ``{"reject": code}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, Final

import msgpack
import nacl.signing

HERE: Final = Path(__file__).resolve().parent
FORMAT_VERSION: Final = 1

BODY_LABEL: Final = b"signedws/v1 broadcast-body\x00"  # §14.1
BINDING_LABEL: Final = b"signedws/v1 broadcast\x00"  # §14.2
ROOT_LABEL: Final = b"signedws/v1 broadcast-root\x00"  # §14.2
KIND_MAC: Final = 6
KIND_ED25519: Final = 7
KIND_BODY: Final = 8

AUDIENCE: Final = "chat.example.com"
NONCE_A: Final = bytes([1]) + bytes(range(1, 64))
NONCE_B: Final = bytes([1]) + bytes(range(101, 164))
NONCE_C: Final = bytes([1]) + bytes(range(51, 114))
NONCE_D: Final = bytes([1]) + bytes(range(151, 214))
NONCE_E: Final = bytes([1]) + bytes(range(11, 74))
FRAME_KEY_ALICE: Final = bytes(range(32, 64))
FRAME_KEY_BOB: Final = bytes(range(64, 96))
SERVER_SEED: Final = bytes([7]) * 32
OTHER_SERVER_SEED: Final = bytes([8]) * 32
TS: Final = 1_700_000_000_125


def lp(value: bytes) -> bytes:
    """``lp(x)``: 2-byte big-endian length, then x (SPEC.md §2)."""
    return len(value).to_bytes(2, "big") + value


def pack(value: object) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def public_key(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def sign(seed: bytes, message: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).sign(message).signature)


def body(topic: str, tseq: int, ts: int, payload: str | bytes | None) -> bytes:
    return pack([1, KIND_BODY, topic, tseq, ts, payload])


def body_hash(data: bytes) -> bytes:
    return sha256(BODY_LABEL + lp(AUDIENCE.encode()) + data)


def binding(nonce: bytes, ctr: int, data: bytes) -> bytes:
    return BINDING_LABEL + lp(AUDIENCE.encode()) + nonce + ctr.to_bytes(8, "big") + body_hash(data)


def leaf(bind: bytes) -> bytes:
    return sha256(b"\x00" + bind)


def node(a: bytes, b: bytes) -> bytes:
    return sha256(b"\x01" + min(a, b) + max(a, b))


def tree(leaves: list[bytes]) -> tuple[bytes, list[bytes]]:
    """The root and each leaf's path (§14.3 steps 6 and 8)."""
    paths: list[list[bytes]] = [[] for _ in leaves]
    level = list(leaves)
    # members[i]: the leaf indexes under node i of the current level.
    members: list[list[int]] = [[i] for i in range(len(leaves))]
    while len(level) > 1:
        next_level: list[bytes] = []
        next_members: list[list[int]] = []
        for i in range(0, len(level) - 1, 2):
            left, right = level[i], level[i + 1]
            for j in members[i]:
                paths[j].append(right)
            for j in members[i + 1]:
                paths[j].append(left)
            next_level.append(node(left, right))
            next_members.append(members[i] + members[i + 1])
        if len(level) % 2:
            next_level.append(level[-1])
            next_members.append(members[-1])
        level, members = next_level, next_members
    return level[0], [b"".join(p) for p in paths]


def fold(start: bytes, path: bytes) -> bytes:
    r = start
    for i in range(0, len(path), 32):
        r = node(r, path[i : i + 32])
    return r


def root_input(root: bytes) -> bytes:
    return ROOT_LABEL + lp(AUDIENCE.encode()) + root


def frame(fields: tuple[int, str, bytes, int, bytes, bytes, bytes]) -> bytes:
    """``(kind, key_id, nonce, ctr, body, path, tag)`` as a broadcast frame (§14.2)."""
    return pack([1, *fields])


def mac_frame(
    nonce: bytes, ctr: int, data: bytes, *, cid: str = "c-alice", key: bytes = FRAME_KEY_ALICE
) -> bytes:
    tag = hmac.digest(key, binding(nonce, ctr, data), hashlib.sha256)
    return frame((KIND_MAC, cid, nonce, ctr, data, b"", tag))


def ed_frames(
    recipients: list[tuple[bytes, int]],
    data: bytes,
    *,
    kid: str = "srv-1",
    seed: bytes = SERVER_SEED,
) -> tuple[bytes, list[bytes], list[bytes], list[bytes]]:
    bindings = [binding(n, c, data) for n, c in recipients]
    leaves = [leaf(b) for b in bindings]
    root, paths = tree(leaves)
    tag = sign(seed, root_input(root))
    frames = [
        frame((KIND_ED25519, kid, n, c, data, p, tag))
        for (n, c), p in zip(recipients, paths, strict=True)
    ]
    return root, leaves, paths, frames


def ed_frame(nonce: bytes, ctr: int, data: bytes, **kw: Any) -> bytes:
    return ed_frames([(nonce, ctr)], data, **kw)[3][0]


def payload_json(payload: str | bytes) -> dict[str, str]:
    return {"str": payload} if isinstance(payload, str) else {"bin": payload.hex()}


def body_inputs(topic: str, tseq: int, ts: int, payload: str | bytes) -> dict[str, Any]:
    return {"topic": topic, "tseq": tseq, "ts": ts, "payload": payload_json(payload)}


def replace_field(data: bytes, index: int, value: object) -> bytes:
    fields = msgpack.unpackb(data, raw=False)
    fields[index] = value
    return pack(fields)


def verify(
    name: str,
    description: str,
    client: str,
    data: bytes,
    *,
    nonce: bytes = NONCE_A,
    hs: int = 2,
    marks: dict[str, int] | None = None,
    reject: str | None = None,
) -> dict[str, Any]:
    marks = dict(marks or {})
    case: dict[str, Any] = {
        "name": name,
        "description": description,
        "kind": "verify",
        "client": client,
        "nonce": nonce.hex(),
        "hs": hs,
        "marks": marks,
        "frame": data.hex(),
    }
    if reject is not None:
        case["expected"] = {"reject": reject}
        return case
    fields = msgpack.unpackb(data, raw=False)
    b = msgpack.unpackb(fields[5], raw=False)
    topic, tseq = b[2], b[3]
    missed = tseq - marks[topic] - 1 if topic in marks else 0
    after = {**marks, topic: tseq}
    case["expected"] = {
        "accept": {
            "counter": fields[4],
            "topic": topic,
            "tseq": tseq,
            "ts": b[4],
            "payload": payload_json(b[5]),
            "missed": missed,
            "marks": after,
        }
    }
    return case


def build() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    room = body("room:42", 7, TS, "hello room")
    binary = body("room:42", 7, TS, bytes(range(128)))
    # -- bodies ---------------------------------------------------------------
    for name, inputs in (
        ("body_text", ("room:42", 7, TS, "hello room")),
        ("body_binary_128", ("room:42", 7, TS, bytes(range(128)))),
        ("body_unicode_topic", ("salle:été", 1, 0, "")),
        ("body_large_tseq", ("ticker", 2**53 - 1, TS, b"")),
    ):
        data = body(*inputs)
        cases.append(
            {
                "name": name,
                "description": "a body's exact bytes and body_hash (§14.1)",
                "kind": "body",
                **body_inputs(*inputs),
                "body": data.hex(),
                "body_hash": body_hash(data).hex(),
            }
        )
    # -- what a server generates ----------------------------------------------
    mac_recipients = [
        (NONCE_A, 3, "c-alice", FRAME_KEY_ALICE),
        (NONCE_B, 1, "c-bob", FRAME_KEY_BOB),
    ]
    cases.append(
        {
            "name": "batch_mac_two",
            "description": "a mac broadcast to two connections: one HMAC each (§14.3 steps 3-4)",
            "kind": "batch",
            "scheme": "mac",
            **body_inputs("room:42", 7, TS, "hello room"),
            "recipients": [
                {
                    "nonce": n.hex(),
                    "ctr": c,
                    "key_id": cid,
                    "frame_key": k.hex(),
                    "binding": binding(n, c, room).hex(),
                    "frame": mac_frame(n, c, room, cid=cid, key=k).hex(),
                }
                for n, c, cid, k in mac_recipients
            ],
        }
    )
    for name, recipients in (
        ("batch_ed25519_one", [(NONCE_A, 3)]),
        ("batch_ed25519_three", [(NONCE_A, 3), (NONCE_B, 1), (NONCE_C, 9)]),
        (
            "batch_ed25519_five",
            [(NONCE_A, 3), (NONCE_B, 1), (NONCE_C, 9), (NONCE_D, 2), (NONCE_E, 2**53 - 1)],
        ),
    ):
        root, leaves, paths, frames = ed_frames(recipients, room)
        cases.append(
            {
                "name": name,
                "description": f"an ed25519 broadcast to a batch of {len(recipients)}: "
                "one signature, a path each (§14.3 steps 5-8)",
                "kind": "batch",
                "scheme": "ed25519",
                "key_id": "srv-1",
                "seed": SERVER_SEED.hex(),
                **body_inputs("room:42", 7, TS, "hello room"),
                "root": root.hex(),
                "root_input": root_input(root).hex(),
                "recipients": [
                    {
                        "nonce": n.hex(),
                        "ctr": c,
                        "binding": binding(n, c, room).hex(),
                        "leaf": lf.hex(),
                        "path": p.hex(),
                        "frame": f.hex(),
                    }
                    for (n, c), lf, p, f in zip(recipients, leaves, paths, frames, strict=True)
                ],
            }
        )
        for i, ((n, c), f) in enumerate(zip(recipients, frames, strict=True)):
            cases.append(
                verify(
                    f"{name}_verify_r{i}",
                    "each recipient of the batch verifies its own frame",
                    "ed25519",
                    f,
                    nonce=n,
                    hs=c - 1,
                )
            )
    # -- accepted -------------------------------------------------------------
    cases += [
        verify(
            "mac_first_of_topic",
            "no mark for the topic: missed 0",
            "mac",
            mac_frame(NONCE_A, 3, room),
        ),
        verify(
            "mac_in_order",
            "tseq = mark + 1",
            "mac",
            mac_frame(NONCE_A, 3, room),
            marks={"room:42": 6},
        ),
        verify(
            "mac_gap",
            "tseq = mark + 3: accepted with missed 2 (§14.4 step 9)",
            "mac",
            mac_frame(NONCE_A, 3, room),
            marks={"room:42": 4, "other": 9},
        ),
        verify("mac_binary_payload", "a bin payload", "mac", mac_frame(NONCE_A, 3, binary)),
        verify(
            "mac_previous_frame_key",
            "bound under the frame key of an earlier credential the client still holds",
            "mac",
            mac_frame(NONCE_A, 3, room, cid="c-alice-old", key=FRAME_KEY_BOB),
        ),
        verify(
            "mac_counter_gap",
            "ctr may jump (§7.2 step 4: only > Hs)",
            "mac",
            mac_frame(NONCE_A, 90, room),
        ),
        verify(
            "ed25519_single",
            "a batch of one: empty path, root = leaf",
            "ed25519",
            ed_frame(NONCE_A, 3, room),
        ),
        verify(
            "ed25519_gap",
            "tseq = mark + 2: missed 1",
            "ed25519",
            ed_frame(NONCE_A, 3, room),
            marks={"room:42": 5},
        ),
    ]
    # -- refused --------------------------------------------------------------
    good_mac = mac_frame(NONCE_A, 3, room)
    good_ed = ed_frames([(NONCE_A, 3), (NONCE_B, 1), (NONCE_C, 9)], room)[3]
    other_topic = body("room:43", 7, TS, "hello room")
    tampered = body("room:42", 7, TS, "hello rooM")
    next_tseq = body("room:42", 8, TS, "hello room")
    bob_tag = msgpack.unpackb(mac_frame(NONCE_B, 3, room), raw=False)[7]
    bad_s = sign(SERVER_SEED, b"x")[:32] + (2**255 - 1).to_bytes(32, "little")
    cases += [
        # another connection
        verify(
            "mac_other_connection",
            "a frame bound to connection A, received on connection B (step 4)",
            "mac",
            good_mac,
            nonce=NONCE_B,
            reject="nonce_mismatch",
        ),
        verify(
            "mac_nonce_rewritten",
            "A's frame with its nonce rewritten to B's, tag unchanged (step 8)",
            "mac",
            replace_field(good_mac, 3, NONCE_B),
            nonce=NONCE_B,
            reject="bad_tag",
        ),
        verify(
            "ed25519_other_connection",
            "recipient A's frame received on connection B (step 4)",
            "ed25519",
            good_ed[0],
            nonce=NONCE_B,
            reject="nonce_mismatch",
        ),
        verify(
            "ed25519_nonce_rewritten",
            "A's frame with B's nonce and counter, A's path and signature (step 8)",
            "ed25519",
            replace_field(replace_field(good_ed[0], 3, NONCE_B), 4, 1),
            nonce=NONCE_B,
            hs=0,
            reject="bad_signature",
        ),
        verify(
            "ed25519_path_of_other_recipient",
            "B's frame with A's path: B's leaf does not fold to the root (step 8)",
            "ed25519",
            replace_field(good_ed[1], 6, msgpack.unpackb(good_ed[0], raw=False)[6]),
            nonce=NONCE_B,
            hs=0,
            reject="bad_signature",
        ),
        # another topic
        verify(
            "mac_other_topic",
            "the body's topic changed, tag unchanged (step 8)",
            "mac",
            replace_field(good_mac, 5, other_topic),
            reject="bad_tag",
        ),
        verify(
            "ed25519_other_topic",
            "the body's topic changed, path and signature unchanged (step 8)",
            "ed25519",
            replace_field(good_ed[0], 5, other_topic),
            reject="bad_signature",
        ),
        # order
        verify(
            "mac_counter_replay",
            "ctr = Hs: a frame already received (step 5)",
            "mac",
            good_mac,
            hs=3,
            reject="replay",
        ),
        verify(
            "mac_topic_replay",
            "tseq = mark: the topic's message already delivered (step 6)",
            "mac",
            good_mac,
            marks={"room:42": 7},
            reject="replay",
        ),
        verify(
            "ed25519_topic_backwards",
            "tseq below the mark (step 6)",
            "ed25519",
            good_ed[0],
            marks={"room:42": 12},
            reject="replay",
        ),
        verify(
            "mac_tseq_rewritten",
            "tseq changed to skip the mark check, tag unchanged (step 8)",
            "mac",
            replace_field(good_mac, 5, next_tseq),
            marks={"room:42": 7},
            reject="bad_tag",
        ),
        # tampering
        verify(
            "mac_tampered_payload",
            "one payload byte changed (step 8)",
            "mac",
            replace_field(good_mac, 5, tampered),
            reject="bad_tag",
        ),
        verify(
            "ed25519_tampered_payload",
            "one payload byte changed (step 8)",
            "ed25519",
            replace_field(good_ed[0], 5, tampered),
            reject="bad_signature",
        ),
        verify(
            "mac_counter_rewritten",
            "ctr changed, tag unchanged (step 8)",
            "mac",
            replace_field(good_mac, 4, 4),
            reject="bad_tag",
        ),
        verify(
            "ed25519_path_altered",
            "one bit of the path flipped (step 8)",
            "ed25519",
            replace_field(
                good_ed[0],
                6,
                bytes([msgpack.unpackb(good_ed[0], raw=False)[6][0] ^ 1])
                + msgpack.unpackb(good_ed[0], raw=False)[6][1:],
            ),
            reject="bad_signature",
        ),
        verify(
            "ed25519_path_dropped",
            "the path removed: the leaf alone is not the root (step 8)",
            "ed25519",
            replace_field(good_ed[0], 6, b""),
            reject="bad_signature",
        ),
        # wrong binding
        verify(
            "mac_binding_of_other_connection",
            "the tag of connection B's binding on A's frame (step 8)",
            "mac",
            replace_field(good_mac, 7, bob_tag),
            reject="bad_tag",
        ),
        # wrong key
        verify(
            "mac_wrong_frame_key",
            "tagged under Bob's frame key, key_id names Alice's (step 8)",
            "mac",
            mac_frame(NONCE_A, 3, room, cid="c-alice", key=FRAME_KEY_BOB),
            reject="bad_tag",
        ),
        verify(
            "mac_unknown_cid",
            "key_id names a credential the client does not hold (step 7)",
            "mac",
            mac_frame(NONCE_A, 3, room, cid="c-bob", key=FRAME_KEY_BOB),
            reject="unknown_key",
        ),
        verify(
            "ed25519_wrong_server_key",
            "signed by another key under the id of srv-1 (step 8)",
            "ed25519",
            ed_frame(NONCE_A, 3, room, seed=OTHER_SERVER_SEED),
            reject="bad_signature",
        ),
        verify(
            "ed25519_unknown_server_key",
            "key_id names no configured server key (step 7)",
            "ed25519",
            ed_frame(NONCE_A, 3, room, kid="srv-9", seed=OTHER_SERVER_SEED),
            reject="unknown_key",
        ),
        verify(
            "ed25519_signature_s_not_reduced",
            "S >= L (§8.2 rule 2) (step 8)",
            "ed25519",
            replace_field(good_ed[0], 7, bad_s),
            reject="bad_signature",
        ),
        # scheme
        verify(
            "mac_frame_to_ed25519_client",
            "kind 6 to an ed25519 client (step 3)",
            "ed25519",
            good_mac,
            reject="scheme_mismatch",
        ),
        verify(
            "ed25519_frame_to_mac_client",
            "kind 7 to a mac client (step 3)",
            "mac",
            good_ed[0],
            reject="scheme_mismatch",
        ),
        # shape (steps 1-2)
        verify(
            "frame_version_2",
            "frame version 2",
            "mac",
            replace_field(good_mac, 0, 2),
            reject="unsupported_version",
        ),
        verify(
            "frame_kind_server",
            "kind 4 is not a broadcast",
            "mac",
            replace_field(good_mac, 1, 4),
            reject="malformed",
        ),
        verify(
            "frame_counter_zero", "ctr 0", "mac", replace_field(good_mac, 4, 0), reject="malformed"
        ),
        verify(
            "frame_nine_elements",
            "an extra element",
            "mac",
            pack([*msgpack.unpackb(good_mac, raw=False), 0]),
            reject="malformed",
        ),
        verify(
            "frame_trailing_byte",
            "a byte after the array",
            "mac",
            good_mac + b"\x00",
            reject="malformed",
        ),
        verify(
            "frame_not_canonical",
            "ctr 3 as a uint 8 (cc 03)",
            "mac",
            good_mac.replace(NONCE_A + b"\x03", NONCE_A + b"\xcc\x03", 1),
            reject="malformed",
        ),
        verify(
            "frame_short_nonce",
            "a 63-byte nonce",
            "mac",
            replace_field(good_mac, 3, NONCE_A[:63]),
            reject="malformed",
        ),
        verify(
            "frame_short_tag",
            "a 31-byte tag for kind 6",
            "mac",
            replace_field(good_mac, 7, bytes(31)),
            reject="malformed",
        ),
        verify(
            "mac_frame_with_path",
            "kind 6 with a non-empty path",
            "mac",
            replace_field(good_mac, 6, bytes(32)),
            reject="malformed",
        ),
        verify(
            "ed25519_path_not_multiple_of_32",
            "a 33-byte path",
            "ed25519",
            replace_field(good_ed[0], 6, bytes(33)),
            reject="malformed",
        ),
        verify(
            "ed25519_path_too_long",
            "33 hashes (§14.5)",
            "ed25519",
            replace_field(good_ed[0], 6, bytes(33 * 32)),
            reject="malformed",
        ),
        verify(
            "frame_body_not_bin",
            "body as a str",
            "mac",
            replace_field(good_mac, 5, "x"),
            reject="malformed",
        ),
        verify(
            "body_version_2",
            "body version 2",
            "mac",
            replace_field(good_mac, 5, pack([2, KIND_BODY, "room:42", 7, TS, "hello room"])),
            reject="unsupported_version",
        ),
        verify(
            "body_kind_wrong",
            "body kind 4",
            "mac",
            replace_field(good_mac, 5, pack([1, 4, "room:42", 7, TS, "hello room"])),
            reject="malformed",
        ),
        verify(
            "body_tseq_zero",
            "tseq 0",
            "mac",
            replace_field(good_mac, 5, pack([1, KIND_BODY, "room:42", 0, TS, "hello room"])),
            reject="malformed",
        ),
        verify(
            "body_nil_payload",
            "a nil payload",
            "mac",
            replace_field(good_mac, 5, pack([1, KIND_BODY, "room:42", 7, TS, None])),
            reject="malformed",
        ),
        verify(
            "body_empty_topic",
            "a topic of 0 bytes (§2.1)",
            "mac",
            replace_field(good_mac, 5, pack([1, KIND_BODY, "", 7, TS, "hello room"])),
            reject="malformed",
        ),
        verify(
            "body_not_canonical",
            "tseq 7 as a uint 8 in the body",
            "mac",
            replace_field(good_mac, 5, room.replace(b"\x07", b"\xcc\x07", 1)),
            reject="malformed",
        ),
        verify(
            "body_trailing_byte",
            "a byte after the body's array",
            "mac",
            replace_field(good_mac, 5, room + b"\xc0"),
            reject="malformed",
        ),
        verify(
            "body_five_elements",
            "the payload left out",
            "mac",
            replace_field(good_mac, 5, pack([1, KIND_BODY, "room:42", 7, TS])),
            reject="malformed",
        ),
    ]
    names = [c["name"] for c in cases]
    if len(names) != len(set(names)):
        raise SystemExit("case names must be unique")
    # The generator's own consistency checks: every path folds to its root.
    for c in cases:
        if c["kind"] == "batch" and c["scheme"] == "ed25519":
            for r in c["recipients"]:
                if fold(bytes.fromhex(r["leaf"]), bytes.fromhex(r["path"])).hex() != c["root"]:
                    raise SystemExit(f"{c['name']}: a path does not fold to the root")
    return {
        "description": "Broadcast frames (SPEC.md §14): bodies, what a server generates for "
        "a message, and frames a client accepts or refuses (the first failing step's code).",
        "version": FORMAT_VERSION,
        "audience": AUDIENCE,
        "clients": {
            "mac": {
                "scheme": "mac",
                "frame_keys": {
                    "c-alice": FRAME_KEY_ALICE.hex(),
                    "c-alice-old": FRAME_KEY_BOB.hex(),
                },
            },
            "ed25519": {
                "scheme": "ed25519",
                "server_keys": {"srv-1": public_key(SERVER_SEED).hex()},
            },
        },
        "cases": cases,
    }


def main() -> None:
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    (HERE / "broadcast.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
