"""server_frames.json: hellos, client signing, server frames verified by a client,
and sessions (SPEC.md §5.2, §6.3, §7)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

from gen.common import (
    ALICE,
    ALICE_2,
    ALICE_CERT,
    AUD,
    BOB,
    CAROL,
    CLIENT_LABEL,
    CONN,
    KID_SERVER,
    KIND_ED25519,
    KIND_HELLO,
    KIND_MAC,
    KIND_SERVER_ED25519,
    KIND_SERVER_MAC,
    MAX_U64,
    NONCE,
    NONCE2,
    NOW,
    OTHER_AUD,
    SEED_SERVER,
    SEED_SERVER_OTHER,
    SENSOR,
    SERVER_LABEL,
    TAG_SIZE,
    Client,
    Json,
    L,
    Payload,
    array,
    array_header,
    big,
    document,
    ed25519_public,
    encode_each,
    fixed,
    flip,
    hx,
    le32,
    ms,
    num,
    pack,
    raw_str,
    reject,
    seal,
    typed,
    verifier_json,
)

# -- server_frames.json ---------------------------------------------------------------------------


def hello(nonce: bytes, aud: str, time_ms: int, max_frame: int = 65536, window: int = 0) -> bytes:
    """A hello (§5.2)."""
    return pack([1, KIND_HELLO, nonce, aud, time_ms, max_frame, window])


def server_frame(
    kind: int,
    key_id: str,
    key: bytes,
    *,
    ctr: int,
    ack: int,
    ts: int,
    payload: Payload = None,
    nonce: bytes = NONCE,
    aud: str = AUD,
    label: bytes = SERVER_LABEL,
    items: Callable[[list[bytes]], list[bytes]] | None = None,
) -> bytes:
    """A server frame (§7.1)."""
    elements = encode_each([1, kind, key_id, nonce, ctr, ack, ts, payload])
    if items is None:
        zero = bytes(TAG_SIZE[kind])
        full = pack([1, kind, key_id, nonce, ctr, ack, ts, payload, zero])
        assert full[: -(len(zero) + 2)] == array(elements, array_header(9))  # noqa: S101
    else:
        elements = items(elements)
    return seal(kind, array(elements, array_header(9)), key, aud, label)


HELLO_TIME: Final = ms(NOW - 30)
HELLO: Final = hello(NONCE, AUD, HELLO_TIME)
CLIENT_HELLO_NOW: Final = NOW - 32.5  # the client's clock is 2.5 s behind the server's


def server_frames_json() -> Json:
    cases: list[Json] = []

    def hello_fields(nonce: bytes, aud: str, time_ms: int, max_frame: int, window: int) -> Json:
        return {
            "nonce": hx(nonce),
            "aud": aud,
            "time": time_ms,
            "max_frame": max_frame,
            "window": window,
        }

    def hello_case(name: str, description: str, data: bytes, expect: Json) -> None:
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "hello",
                "credential": ALICE.json(),
                "audience": AUD,
                "now": num(CLIENT_HELLO_NOW),
                "hello": hx(data),
                "expect": expect,
            }
        )

    hello_case(
        "hello_valid",
        "the standard hello",
        HELLO,
        {"accept": hello_fields(NONCE, AUD, HELLO_TIME, 65536, 0)},
    )
    big_hello = hello(NONCE2, AUD, ms(NOW), 1 << 20, 1024)
    hello_case(
        "hello_window_and_limit",
        "a hello announcing W = 1024 and a 1 MiB frame limit",
        big_hello,
        {"accept": hello_fields(NONCE2, AUD, ms(NOW), 1 << 20, 1024)},
    )
    hello_case(
        "hello_wrong_audience",
        "a hello naming another audience (§5.2)",
        hello(NONCE, OTHER_AUD, HELLO_TIME),
        reject("audience_mismatch"),
    )
    hello_case(
        "hello_audience_prefix",
        "a hello whose audience is a prefix of ours",
        hello(NONCE, AUD[:-1], HELLO_TIME),
        reject("audience_mismatch"),
    )
    hello_case(
        "hello_version_2",
        "a hello of version 2",
        pack([2, KIND_HELLO, NONCE, AUD, HELLO_TIME, 65536, 0]),
        reject("unsupported_version"),
    )
    hello_case("hello_truncated", "a hello missing its last byte", HELLO[:-1], reject("malformed"))
    hello_case(
        "hello_trailing_byte",
        "a hello followed by a zero byte",
        HELLO + b"\x00",
        reject("malformed"),
    )
    hello_case(
        "hello_wrong_kind",
        "kind 4 instead of 3",
        pack([1, 4, NONCE, AUD, HELLO_TIME, 65536, 0]),
        reject("malformed"),
    )
    hello_case(
        "hello_6_elements",
        "no window element",
        pack([1, KIND_HELLO, NONCE, AUD, HELLO_TIME, 65536]),
        reject("malformed"),
    )
    hello_case(
        "hello_nonce_63_bytes",
        "a 63-byte nonce",
        pack([1, KIND_HELLO, NONCE[:63], AUD, HELLO_TIME, 65536, 0]),
        reject("malformed"),
    )
    hello_case(
        "hello_audience_bin",
        "aud is a bin",
        pack([1, KIND_HELLO, NONCE, AUD.encode(), HELLO_TIME, 65536, 0]),
        reject("malformed"),
    )
    hello_case(
        "hello_noncanonical_time",
        "time 5 as uint 8",
        array([pack(1), pack(3), pack(NONCE), pack(AUD), b"\xcc\x05", pack(65536), pack(0)]),
        reject("malformed"),
    )
    # SPEC 1.0: §2 decoding (issue 14 items 5, 9, 10) and the audience (item 18).
    hello_case(
        "hello_empty_array", "an empty array: no version (§2)", b"\x90", reject("malformed")
    )
    hello_case(
        "hello_version_false",
        "version is false: §2 decoding fails before the version",
        pack([False, KIND_HELLO, NONCE, AUD, HELLO_TIME, 65536, 0]),
        reject("malformed"),
    )
    hello_case(
        "hello_aud_invalid_utf8",
        "aud is a str whose bytes are not UTF-8: §2 decoding fails",
        array(
            [
                pack(1),
                pack(3),
                pack(NONCE),
                raw_str(b"api\xff"),
                *map(pack, (HELLO_TIME, 65536, 0)),
            ]
        ),
        reject("malformed"),
    )
    hello_case(
        "hello_audience_case",
        "the expected audience in capitals: compared byte for byte, no normalisation (§5.2)",
        hello(NONCE, AUD.upper(), HELLO_TIME),
        reject("audience_mismatch"),
    )
    hello_case(
        "hello_audience_trailing_slash",
        "the expected audience with a trailing slash: another audience (§5.2)",
        hello(NONCE, AUD + "/", HELLO_TIME),
        reject("audience_mismatch"),
    )

    # ---- client signing: exact bytes -------------------------------------------------------
    offset = HELLO_TIME - ms(CLIENT_HELLO_NOW)

    def signing_case(
        name: str,
        description: str,
        client: Client,
        payloads: list[tuple[float, Payload]],
        *,
        refresh: dict[int, Client] | None = None,
        initial_seq: int = 0,
        resend: dict[int, int] | None = None,
    ) -> None:
        """Frames a client signs: ``refresh`` swaps the credential before step i,
        ``resend`` gives step i's message its original seq (§7.3)."""
        steps: list[Json] = []
        current = client
        last_seq = initial_seq
        for i, (now, payload) in enumerate(payloads):
            step: Json = {}
            if refresh and i in refresh:
                current = refresh[i]
                step["refresh"] = current.json()
            if resend and i in resend:
                step["resend_seq"] = resend[i]
                seq = resend[i]
            elif payload is None:
                seq = 0
            else:
                last_seq += 1
                seq = last_seq
            ts = math.floor(now * 1000) + offset  # SPEC.md §2: rounded down
            step.update(
                {
                    "now": num(now),
                    "payload": typed(payload),
                    "ctr": i + 1,
                    "ts": ts,
                    "seq": seq,
                    "frame": hx(current.frame(i + 1, ts, payload, seq=seq)),
                }
            )
            steps.append(step)
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "client_frames",
                "credential": client.json(),
                "stream": hx(client.stream),
                "seq": initial_seq,
                "audience": AUD,
                "hello": hx(HELLO),
                "now": num(CLIENT_HELLO_NOW),
                "steps": steps,
            }
        )

    clock = CLIENT_HELLO_NOW
    signing_case(
        "sign_mac",
        "a token client signs str, bin, empty and nil payloads; ts = client clock + "
        "(hello time - client clock at the hello)",
        ALICE,
        [(clock + 0.5, "hello"), (clock + 1, b"\x00\xff"), (clock + 1.25, ""), (clock + 2, None)],
    )
    signing_case(
        "sign_ed25519_certificate",
        "a certificate client signs three frames",
        CAROL,
        [(clock + 0.5, "hello"), (clock + 1, b"bytes"), (clock + 2, None)],
    )
    signing_case(
        "sign_ed25519_key_reference",
        "a key reference client signs two frames",
        SENSOR,
        [(clock + 0.5, b"\x01\x02"), (clock + 1, "t=21.5")],
    )
    signing_case(
        "sign_mac_refresh",
        "a token client refreshes to a new token before its third frame (§4.5)",
        ALICE,
        [(clock + 0.5, "one"), (clock + 1, "two"), (clock + 1.5, "three"), (clock + 2, None)],
        refresh={2: ALICE_2},
    )
    signing_case(
        "sign_resend_after_reconnect",
        "a client whose stream had numbered 7 messages, 6 and 7 unacknowledged, reconnects: "
        "it resends 6 and 7 with their original seq, then numbers a new message 8 (§7.3)",
        ALICE,
        [(clock + 0.5, "six"), (clock + 0.5, "seven"), (clock + 1, None), (clock + 1.5, "eight")],
        initial_seq=7,
        resend={0: 6, 1: 7},
    )

    signing_case(
        "client_fractional_clock",
        "the client's clock 1/1024 s (0.977 ms) past a millisecond: ts is rounded down "
        "(§2, §6.3), so both frames carry the same ts as a whole-millisecond clock would",
        ALICE,
        [(clock + 1 / 1024, "a"), (clock + 1 - 1 / 1024, "b")],
    )
    signing_case(
        "sign_refresh_token_to_certificate",
        "a client refreshes from a token (kind 1) to a certificate of the same (iss, sub) "
        "(kind 2): the scheme may change (§4.5)",
        ALICE,
        [(clock + 0.5, "mac"), (clock + 1, "ed25519"), (clock + 1.5, None)],
        refresh={1: ALICE_CERT},
    )

    # ---- server frames the client verifies (§7.2) ------------------------------------------
    srv_pub = ed25519_public(SEED_SERVER)

    def verify_case(
        name: str,
        description: str,
        credentials: list[Client],
        sent: int,
        steps: list[tuple[bytes, Json]],
        *,
        server_keys: dict[str, bytes] | None = None,
    ) -> None:
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "server_frames",
                "credentials": [c.json() for c in credentials],
                "stream": hx(credentials[0].stream),
                "audience": AUD,
                "hello": hx(HELLO),
                "now": num(CLIENT_HELLO_NOW),
                "server_keys": {k: hx(v) for k, v in (server_keys or {}).items()},
                "sent": sent,
                "steps": [
                    {"frame": hx(frame), "now": num(NOW), "expect": expect}
                    for frame, expect in steps
                ],
            }
        )

    def s_accept(ctr: int, ack: int, ts: int, payload: Payload) -> Json:
        return {"accept": {"ctr": big(ctr), "ack": big(ack), "payload": typed(payload), "ts": ts}}

    fk = ALICE.secret
    ts = ms(NOW)

    def mac_sf(ctr: int, ack: int, payload: Payload = None, **kw: Any) -> bytes:
        key = kw.pop("key", fk)
        return server_frame(
            KIND_SERVER_MAC, ALICE.cid, key, ctr=ctr, ack=ack, ts=ts, payload=payload, **kw
        )

    def ed_sf(ctr: int, ack: int, payload: Payload = None, **kw: Any) -> bytes:
        kid = kw.pop("kid", KID_SERVER)
        key = kw.pop("key", SEED_SERVER)
        return server_frame(
            KIND_SERVER_ED25519, kid, key, ctr=ctr, ack=ack, ts=ts, payload=payload, **kw
        )

    ok = s_accept
    verify_case(
        "server_mac_sequence",
        "server frames under the client's frame key: str, bin, then a pure ack",
        [ALICE],
        3,
        [
            (mac_sf(1, 1, "welcome"), ok(1, 1, ts, "welcome")),
            (mac_sf(2, 3, b"\x01\x02"), ok(2, 3, ts, b"\x01\x02")),
            (mac_sf(3, 3), ok(3, 3, ts, None)),
        ],
    )
    verify_case(
        "server_mac_gaps_and_zero_ack",
        "server counters may skip; ack 0 means nothing accepted yet",
        [ALICE],
        2,
        [(mac_sf(5, 0, "early"), ok(5, 0, ts, "early")), (mac_sf(9, 2, ""), ok(9, 2, ts, ""))],
    )
    verify_case(
        "server_mac_previous_credential",
        "after a refresh, a server frame under the previous credential's cid still verifies "
        "(§7.2 step 6), as does one under the current cid",
        [ALICE, ALICE_2],
        2,
        [
            (mac_sf(1, 1, "old key"), ok(1, 1, ts, "old key")),
            (
                server_frame(
                    KIND_SERVER_MAC,
                    ALICE_2.cid,
                    ALICE_2.secret,
                    ctr=2,
                    ack=2,
                    ts=ts,
                    payload="new key",
                ),
                ok(2, 2, ts, "new key"),
            ),
        ],
    )
    verify_case(
        "server_ed25519_sequence",
        "server frames signed by the server key srv-1",
        [CAROL],
        2,
        [(ed_sf(1, 1, "welcome"), ok(1, 1, ts, "welcome")), (ed_sf(2, 2), ok(2, 2, ts, None))],
        server_keys={KID_SERVER: srv_pub},
    )
    verify_case(
        "server_ed25519_key_reference_client",
        "a key reference client verifies server frames the same way",
        [SENSOR],
        1,
        [(ed_sf(1, 1, b"cfg"), ok(1, 1, ts, b"cfg"))],
        server_keys={KID_SERVER: srv_pub},
    )
    verify_case(
        "server_max_counter",
        "server counter 2^64 - 1",
        [ALICE],
        1,
        [(mac_sf(MAX_U64, 1), ok(MAX_U64, 1, ts, None)), (mac_sf(MAX_U64, 1), reject("replay"))],
    )

    verify_case(
        "server_refresh_mac_to_ed25519_old_kind",
        "a client that refreshed from a token to a certificate still accepts a mac server "
        "frame (kind 4, in flight) under the token's cid, then an ed25519 one (§7.2 step 2)",
        [ALICE, ALICE_CERT],
        2,
        [
            (mac_sf(1, 1, "in flight"), ok(1, 1, ts, "in flight")),
            (ed_sf(2, 2), ok(2, 2, ts, None)),
        ],
        server_keys={KID_SERVER: srv_pub},
    )
    verify_case(
        "server_refresh_mac_to_ed25519_new_kind",
        "after a refresh from a token to a certificate: an ed25519 server frame (kind 5), then "
        "a later mac one (kind 4): both of the connection's schemes verify (§7.2 step 2)",
        [ALICE, ALICE_CERT],
        2,
        [(ed_sf(1, 1, "new"), ok(1, 1, ts, "new")), (mac_sf(2, 2, "old"), ok(2, 2, ts, "old"))],
        server_keys={KID_SERVER: srv_pub},
    )

    def negative(
        name: str,
        description: str,
        frame: bytes,
        code: str,
        *,
        client: Client = ALICE,
        sent: int = 3,
        before: list[tuple[bytes, Json]] | None = None,
    ) -> None:
        keys = {KID_SERVER: srv_pub} if client.kind == KIND_ED25519 else None
        steps = [*(before or []), (frame, reject(code))]
        verify_case(name, description, [client], sent, steps, server_keys=keys)

    negative(
        "server_bad_tag",
        "a tag made with another key",
        mac_sf(1, 1, "x", key=BOB.secret),
        "bad_tag",
    )
    good = mac_sf(1, 1, "x")
    negative(
        "server_flipped_tag", "one bit of the tag flipped", flip(good, len(good) - 1, 0), "bad_tag"
    )
    negative(
        "server_flipped_payload",
        "one bit of the payload flipped",
        flip(good, len(good) - 35, 0),
        "bad_tag",
    )
    negative(
        "server_wrong_audience",
        "tagged for audience other.example.com",
        mac_sf(1, 1, "x", aud=OTHER_AUD),
        "bad_tag",
    )
    negative(
        "server_client_label",
        "tagged with the client label instead of the server label (reflection, §7.1)",
        mac_sf(1, 1, "x", label=CLIENT_LABEL),
        "bad_tag",
    )
    negative(
        "server_reflected_client_frame",
        "the client's own frame sent back: 10 elements, kind 1",
        ALICE.frame(1, ts, "x"),
        "malformed",
    )
    negative(
        "server_nonce_mismatch",
        "another connection's nonce",
        mac_sf(1, 1, nonce=NONCE2),
        "nonce_mismatch",
    )
    negative(
        "server_replay",
        "the same server counter twice",
        mac_sf(1, 1, "again"),
        "replay",
        before=[(mac_sf(1, 1, "x"), ok(1, 1, ts, "x"))],
    )
    negative(
        "server_counter_lower",
        "server counter 3 then 2",
        mac_sf(2, 2),
        "replay",
        before=[(mac_sf(3, 1), ok(3, 1, ts, None))],
    )
    negative("server_counter_zero", "server counter 0", mac_sf(0, 1), "malformed")
    negative(
        "server_ack_above_sent",
        "ack 4 after the client sent 3 frames",
        mac_sf(1, 4),
        "ack_invalid",
    )
    negative(
        "server_ack_without_sending",
        "ack 1 when the client sent nothing",
        mac_sf(1, 1),
        "ack_invalid",
        sent=0,
    )
    negative(
        "server_ack_backwards",
        "ack 3 then ack 2",
        mac_sf(2, 2),
        "ack_invalid",
        before=[(mac_sf(1, 3), ok(1, 3, ts, None))],
    )
    verify_case(
        "server_rejection_changes_nothing",
        "ack 3 accepted; a frame with a bad tag and counter 5 refused; counter 2 is then "
        "accepted (the counter did not move to 5)",
        [ALICE],
        3,
        [
            (mac_sf(1, 3), ok(1, 3, ts, None)),
            (mac_sf(5, 3, key=BOB.secret), reject("bad_tag")),
            (mac_sf(2, 3), ok(2, 3, ts, None)),
        ],
    )
    negative(
        "server_unknown_cid",
        "key_id names a cid the client never held",
        server_frame(KIND_SERVER_MAC, "tok-unknown", fk, ctr=1, ack=1, ts=ts),
        "unknown_key",
    )
    negative(
        "server_unknown_kid",
        "an Ed25519 server frame with an unconfigured key id",
        ed_sf(1, 1, kid="srv-9", key=SEED_SERVER_OTHER),
        "unknown_key",
        client=CAROL,
    )
    negative(
        "server_bad_signature",
        "signed under kid srv-1 by another key",
        ed_sf(1, 1, key=SEED_SERVER_OTHER),
        "bad_signature",
        client=CAROL,
    )
    good_ed = ed_sf(1, 1, "x")
    sig = good_ed[-64:]
    negative(
        "server_signature_s_plus_l",
        "S replaced by S + L",
        good_ed[:-64] + sig[:32] + le32(int.from_bytes(sig[32:], "little") + L),
        "bad_signature",
        client=CAROL,
    )
    negative(
        "server_scheme_mismatch_kind5_to_mac",
        "an Ed25519 server frame (kind 5) to a mac client",
        ed_sf(1, 1),
        "scheme_mismatch",
    )
    negative(
        "server_scheme_mismatch_kind4_to_ed25519",
        "a mac server frame (kind 4) to an ed25519 client",
        mac_sf(1, 1),
        "scheme_mismatch",
        client=CAROL,
    )
    negative("server_truncated", "a server frame missing its last byte", good[:-1], "malformed")
    negative("server_trailing_byte", "a server frame followed by 00", good + b"\x00", "malformed")
    negative(
        "server_8_elements",
        "no payload element",
        seal(
            KIND_SERVER_MAC,
            array([pack(v) for v in (1, 4, ALICE.cid, NONCE, 1, 1, ts)], array_header(8)),
            fk,
            AUD,
            SERVER_LABEL,
        ),
        "malformed",
    )
    negative(
        "server_key_id_empty",
        "key_id is the empty string",
        server_frame(KIND_SERVER_MAC, "", fk, ctr=1, ack=1, ts=ts),
        "malformed",
    )
    negative(
        "server_payload_int",
        "payload is a uint",
        mac_sf(1, 1, items=lambda e: [*e[:7], pack(5)]),
        "malformed",
    )
    negative(
        "server_noncanonical_ack",
        "ack 1 as uint 8; tag valid over these bytes",
        mac_sf(1, 1, items=lambda e: [*e[:5], b"\xcc\x01", *e[6:]]),
        "malformed",
    )
    negative(
        "server_version_2",
        "a server frame of version 2",
        mac_sf(1, 1, items=lambda e: [pack(2), *e[1:]]),
        "unsupported_version",
    )
    negative(
        "server_version_float",
        "version is the float64 1.0: §2 decoding fails before the version; tag valid",
        mac_sf(1, 1, items=lambda e: [pack(1.0), *e[1:]]),
        "malformed",
    )
    negative(
        "server_kind_1",
        "kind 1 (a client kind) in a 9-element frame",
        mac_sf(1, 1, items=lambda e: [e[0], pack(1), *e[2:]]),
        "malformed",
    )
    negative(
        "server_order_scheme_before_nonce",
        "kind 5 to a mac client with a wrong nonce: scheme_mismatch (step 2 before 3)",
        ed_sf(1, 1, nonce=NONCE2),
        "scheme_mismatch",
    )
    negative(
        "server_order_nonce_before_replay",
        "wrong nonce and a replayed counter: nonce_mismatch (step 3 before 4)",
        mac_sf(1, 1, nonce=NONCE2),
        "nonce_mismatch",
        before=[(mac_sf(1, 1), ok(1, 1, ts, None))],
    )
    negative(
        "server_order_ack_before_key",
        "ack above sent and an unknown cid: ack_invalid (step 5 before 6)",
        server_frame(KIND_SERVER_MAC, "tok-unknown", fk, ctr=1, ack=9, ts=ts),
        "ack_invalid",
    )
    negative(
        "server_order_key_before_tag",
        "an unknown cid and a bad tag: unknown_key (step 6 before 7)",
        server_frame(KIND_SERVER_MAC, "tok-unknown", BOB.secret, ctr=1, ack=1, ts=ts),
        "unknown_key",
    )

    # ---- sessions: both sides, exact bytes ---------------------------------------------------
    def session_case(
        name: str, description: str, client: Client, with_server_key: bool, window: int = 0
    ) -> None:
        server_open = NOW - 30
        conn = replace(CONN, now=server_open, random=fixed(f"session {name} random", 15))
        nonce = conn.mint()
        hello_bytes = hello(nonce, AUD, ms(server_open), 65536, window)
        client_clock_at_hello = server_open - 2.5
        off = ms(server_open) - ms(client_clock_at_hello)
        steps: list[Json] = []
        sent = acked = server_ctr = last_seq = 0
        events: list[tuple[str, float, Payload]] = [
            ("client", NOW - 1, "hello server"),
            ("client", NOW - 0.75, b"\x00\x01"),
            ("server", NOW - 0.5, "hello client"),
            ("client", NOW - 0.25, None),
            ("server", NOW, None),
            ("server", NOW + 0.5, b"\xff"),
        ]
        for sender, server_now, payload in events:
            client_now = server_now - 2.5
            if sender == "client":
                sent += 1
                ts = ms(client_now) + off
                if payload is None:
                    seq = 0
                else:
                    last_seq += 1
                    seq = last_seq
                frame = client.frame(sent, ts, payload, seq=seq, nonce=nonce)
                steps.append(
                    {
                        "from": "client",
                        "client_now": num(client_now),
                        "server_now": num(server_now),
                        "payload": typed(payload),
                        "frame": hx(frame),
                        "expect": client.accept(sent, ts, payload, seq),
                    }
                )
                acked = sent
            else:
                server_ctr += 1
                ts = ms(server_now)
                if client.kind == KIND_MAC:
                    kind, key_id, key = KIND_SERVER_MAC, client.cid, client.secret
                else:
                    kind, key_id, key = KIND_SERVER_ED25519, KID_SERVER, SEED_SERVER
                frame = server_frame(
                    kind,
                    key_id,
                    key,
                    ctr=server_ctr,
                    ack=acked,
                    ts=ts,
                    payload=payload,
                    nonce=nonce,
                )
                steps.append(
                    {
                        "from": "server",
                        "server_now": num(server_now),
                        "client_now": num(client_now),
                        "payload": typed(payload),
                        "frame": hx(frame),
                        "expect": s_accept(server_ctr, acked, ts, payload),
                    }
                )
        case: Json = {
            "name": name,
            "description": description,
            "type": "session",
            "verifier": verifier_json(window=window),
            "server_now": server_open,
            "nonce": conn.json(),
            "server_key": {"kid": KID_SERVER, "seed": hx(SEED_SERVER)}
            if with_server_key
            else None,
            "hello": hx(hello_bytes),
            "credential": client.json(),
            "stream": hx(client.stream),
            "seq": 0,
            "audience": AUD,
            "client_now": num(client_clock_at_hello),
            "server_keys": {KID_SERVER: hx(srv_pub)} if with_server_key else {},
            "steps": steps,
        }
        cases.append(case)

    session_case(
        "session_mac",
        "a whole mac connection: hello, client frames, server frames with acks",
        ALICE,
        False,
    )
    session_case(
        "session_ed25519_certificate",
        "a whole ed25519 connection with a certificate and a server key",
        CAROL,
        True,
    )
    session_case(
        "session_ed25519_key_reference_window",
        "a whole ed25519 connection with a key reference, W = 16",
        SENSOR,
        True,
        16,
    )
    description = (
        "The client side (§5.2, §6.3, §7.2): hellos to accept or refuse, client frames a "
        "client must produce byte for byte, server frames a client must accept or refuse, "
        "and whole sessions (both sides, exact bytes)."
    )
    return document(description, cases)
