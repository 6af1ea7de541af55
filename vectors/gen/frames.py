"""frames.json: client frames verified by a server (SPEC.md §6.4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import msgpack

from gen.common import (
    A_NEW_NOT_BEFORE,
    A_OLD_NOT_AFTER,
    ALICE,
    ALICE_2,
    ALICE_AT_B,
    ALICE_CERT,
    ALICE_CLAIMS,
    AUD,
    BOB,
    CAROL,
    CAROL_CLAIMS,
    CONN,
    IDENTITY_POINT,
    ISS_A,
    ISS_B,
    ISS_DEV,
    ISS_STRANGER,
    KID_A,
    KID_A_ED_OLD,
    KID_A_NEW,
    KID_A_OLD,
    KID_SENSOR,
    KIND_ED25519,
    KIND_MAC,
    MAX_U64,
    NONCANONICAL_Y,
    NONCE,
    NONCE2,
    NOW,
    OTHER_AUD,
    SECRET_A,
    SECRET_A_NEW,
    SECRET_A_OLD,
    SECRET_STRANGER,
    SEED_A,
    SEED_A_OLD,
    SEED_CAROL,
    SEED_ROGUE,
    SENSOR,
    SERVER_LABEL,
    Claims,
    Client,
    FrameCase,
    Json,
    L,
    Payload,
    array,
    array_header,
    bin16,
    bin_tag,
    cert_client,
    certificate,
    default_ts,
    document,
    ed25519_public,
    encode_each,
    fixed,
    flip,
    key_reference,
    keyring_json,
    le32,
    mac_client,
    ms,
    pack,
    raw_str,
    reject,
    revocations_json,
    seal,
    str8,
    token_key,
)

# -- frames.json ---------------------------------------------------------------------------------


def element_offset(frame: bytes, index: int) -> int:
    """Offset of element ``index`` of a canonical client frame (fixarray header)."""
    fields = msgpack.unpackb(frame, raw=False)
    offset = 1
    for value in fields[:index]:
        offset += len(pack(value))
    return offset


def frames_json() -> Json:
    cases: list[FrameCase] = []

    def case(name: str, description: str, **kwargs: Any) -> FrameCase:
        seq = FrameCase(name, description, **kwargs)
        cases.append(seq)
        return seq

    ts0 = default_ts(NOW)
    # ---- positive ------------------------------------------------------------------
    case("mac_str_payload", "a token frame with a text payload").send(ALICE, 1, "hello")
    case("mac_bin_payload", "a token frame with a binary payload").send(ALICE, 1, bytes(range(16)))
    case("mac_nil_control_frame", "a nil payload: a control frame (§6.5)").send(ALICE, 1, None)
    case("mac_empty_str_payload", "the empty string as payload").send(ALICE, 1, "")
    case("mac_empty_bin_payload", "the empty byte string as payload").send(ALICE, 1, b"")
    case("mac_unicode_payload", "a non-ASCII text payload").send(ALICE, 1, "héllo, wörld ✓ 🙂")
    case("mac_bin16_payload", "a 300-byte binary payload (bin 16 is canonical here)").send(
        ALICE, 1, fixed("payload", 300)
    )
    case("mac_sequence", "three frames in order: str, bin, nil").send(
        ALICE, 1, "one", now=NOW
    ).send(ALICE, 2, b"\x02", now=NOW + 1).send(ALICE, 3, None, now=NOW + 2)
    case("ed25519_certificate", "a certificate frame").send(CAROL, 1, "hello")
    case("ed25519_certificate_sequence", "certificate frames in order").send(
        CAROL, 1, "one", now=NOW
    ).send(CAROL, 2, b"two", now=NOW + 1).send(CAROL, 3, None, now=NOW + 2)
    case("ed25519_key_reference", "a key reference frame (registry entry)").send(
        SENSOR, 1, b"\x00\x01temperature=21.5"
    )
    case("ed25519_key_reference_sequence", "key reference frames in order").send(
        SENSOR, 1, "a", now=NOW
    ).send(SENSOR, 2, "b", now=NOW + 1)
    case(
        "refresh_new_token",
        "refresh (§4.5): a new token of the same (iss, sub), new cid and scopes; then the old "
        "token again, still valid: each frame is judged by its own credential",
    ).send(ALICE, 1, "old", now=NOW + 650).send(ALICE_2, 2, "new", now=NOW + 700).send(
        ALICE, 3, "old again", now=NOW + 701
    )
    case(
        "refresh_token_to_certificate",
        "refresh from a token (kind 1) to a certificate (kind 2) of the same (iss, sub): "
        "the type may change (§4.5)",
    ).send(ALICE, 1, "mac").send(ALICE_CERT, 2, "ed25519", now=NOW + 1)
    case(
        "refresh_with_control_frame",
        "a nil-payload frame moves to the new credential (§4.5)",
    ).send(ALICE, 1, "x", now=NOW + 650).send(ALICE_2, 2, None, now=NOW + 700)
    case("gaps_allowed_w0", "W = 0: counters must increase, gaps are allowed").send(
        ALICE, 1, "a"
    ).send(ALICE, 7, "b", now=NOW + 1).send(ALICE, 1000, "c", now=NOW + 2)
    case("first_counter_not_1", "the first frame may have any counter >= 1").send(ALICE, 42, "x")
    case(
        "resent_messages_keep_seq",
        "a new connection resends messages 41 and 42 of its stream under counters 1 and 2 "
        "(§7.3), then sends message 43",
    ).send(ALICE, 1, "m41", seq=41).send(ALICE, 2, "m42", seq=42).send(ALICE, 3, "m43", seq=43)
    case(
        "seq_order_not_checked",
        "the verifier does not order seq (§6.4 checks only seq = 0 iff nil): seq 5 then 3",
    ).send(ALICE, 1, "a", seq=5).send(ALICE, 2, "b", seq=3)
    case("seq_max", "seq 2^64 - 1 is accepted").send(ALICE, 1, "last", seq=MAX_U64)
    case("counter_max", "counter 2^64 - 1 is accepted").send(ALICE, MAX_U64, "last")
    case(
        "window_out_of_order",
        "W = 4: counters 3, 1, 2, 4 are all accepted, each once",
        window=4,
    ).send(ALICE, 3, "3").send(ALICE, 1, "1").send(ALICE, 2, "2").send(ALICE, 4, "4")
    case(
        "window_oldest_in_window",
        "W = 4: after 10, counter 7 (10 - 7 = 3 < 4) is accepted",
        window=4,
    ).send(ALICE, 10, "10").send(ALICE, 7, "7")
    case(
        "window_slides",
        "W = 4: after 5 then 9, counter 6 is accepted (9 - 6 = 3), counter 5 is refused",
        window=4,
    ).send(ALICE, 5, "5").send(ALICE, 9, "9").send(ALICE, 6, "6").send(
        ALICE, 5, "5", expect="replay"
    )
    case(
        "window_large_jump",
        "W = 1024: a jump of a million, then a counter one below it",
        window=1024,
    ).send(ALICE, 1, "1").send(ALICE, 1_000_001, "far").send(ALICE, 1_000_000, "below")
    case(
        "window_jump_to_max_counter",
        "W = 4: after 1, counter 2^64 - 1, then 2^64 - 2 inside the window; a replay of "
        "2^64 - 1 is refused",
        window=4,
    ).send(ALICE, 1, "1").send(ALICE, MAX_U64, "max").send(ALICE, MAX_U64 - 1, "max-1").send(
        ALICE, MAX_U64, "max", expect="replay"
    )
    case("skew_at_max_future", "ts = now + max_skew exactly is accepted").send(
        ALICE, 1, ts=ms(NOW) + 300_000
    )
    case("skew_at_max_past", "ts = now - max_skew exactly is accepted").send(
        ALICE, 1, ts=ms(NOW) - 300_000
    )
    early = mac_client(
        replace(ALICE_CLAIMS, cid="tok-alice-early", iat=NOW + 100, exp=NOW + 1000), SECRET_A
    )
    case(
        "leeway_just_inside",
        "iat = now + 30 s exactly (leeway 30 s): accepted (now >= iat - leeway)",
    ).send(early, 1, now=NOW + 70)
    case("leeway_zero_at_iat", "leeway 0: accepted at now == iat", leeway=0).send(
        early, 1, now=NOW + 100
    )
    case("just_before_exp", "1/8 s before exp: accepted").send(
        ALICE, 1, now=ALICE_CLAIMS.exp - 0.125
    )
    case(
        "revoked_subject_issued_after",
        "subject revoked before t = iat: the credential (iat == t, not iat < t) is accepted",
        revocations=revocations_json(subjects=[(ISS_A, "alice", ALICE_CLAIMS.iat)]),
    ).send(ALICE, 1)
    case(
        "revocation_is_per_issuer",
        "cid tok-alice-1 revoked under issuer B does not revoke issuer A's tok-alice-1",
        revocations=revocations_json(
            credentials=[(ISS_B, "tok-alice-1")], subjects=[(ISS_B, "alice", NOW + 9999)]
        ),
    ).send(ALICE, 1)
    aud_any = mac_client(replace(ALICE_CLAIMS, cid="tok-any", aud=()), SECRET_A)
    aud_two = mac_client(replace(ALICE_CLAIMS, cid="tok-two", aud=(AUD, OTHER_AUD)), SECRET_A)
    case("audience_empty_list", "aud = [] is valid at any audience").send(aud_any, 1)
    case("audience_in_list", "aud lists two audiences, one is ours").send(aud_two, 1)
    at_nb = mac_client(
        Claims(
            ISS_A,
            KID_A_NEW,
            "tok-new-key",
            "alice",
            (),
            (AUD,),
            A_NEW_NOT_BEFORE - 10,
            A_NEW_NOT_BEFORE + 900,
        ),
        SECRET_A_NEW,
    )
    case(
        "issuer_key_at_not_before",
        "a token under hk-2025 at exactly its not_before: accepted ([not_before, not_after))",
    ).send(at_nb, 1, now=A_NEW_NOT_BEFORE)
    frame = ALICE.frame(1, ts0, "fits")
    case(
        "frame_at_max_frame_size",
        "len(frame) == max_frame_size is accepted",
        max_frame_size=len(frame),
    ).raw(frame, NOW, ALICE.accept(1, ts0, "fits"))

    # ---- rejection leaves the state unchanged (§6.4) ---------------------------------
    case(
        "rejection_changes_nothing_counter",
        "W = 0: 1 accepted; 5 with a bad tag refused; 2 accepted (H did not move to 5)",
    ).send(ALICE, 1, "1").raw(
        _bad_tag(ALICE, 5, ts0),
        NOW,
        reject("bad_tag"),
    ).send(ALICE, 2, "2")
    case(
        "rejection_changes_nothing_window",
        "W = 4: 3 accepted; 2 with a bad tag refused; 2 accepted (the bitmap was not marked)",
        window=4,
    ).send(ALICE, 3, "3").raw(_bad_tag(ALICE, 2, ts0), NOW, reject("bad_tag")).send(ALICE, 2, "2")
    case(
        "rejection_changes_nothing_binding",
        "bob's frame refused (bad tag) before any accepted frame; then alice binds the "
        "connection: the refused frame did not bind it to bob",
    ).raw(_bad_tag(BOB, 1, ts0), NOW, reject("bad_tag")).send(ALICE, 1).send(
        BOB, 2, expect="credential_mismatch"
    )
    case(
        "rejection_then_same_counter",
        "a frame refused for skew, then the same counter with a good timestamp is accepted",
    ).send(ALICE, 1, ts=ms(NOW) + 400_000, expect="timestamp_skew").send(ALICE, 1)

    # ---- negative: authentication ---------------------------------------------------------
    case("mac_bad_tag", "a token frame whose tag was made with another frame key").raw(
        _bad_tag(ALICE, 1, ts0), NOW, reject("bad_tag")
    )
    case(
        "mac_tag_with_token_key",
        "a frame tagged with the issuer's token_key instead of the frame key",
    ).raw(replace(ALICE, secret=token_key(SECRET_A)).frame(1, ts0, "x"), NOW, reject("bad_tag"))
    case(
        "mac_tag_of_other_token",
        "alice's token with a tag made with bob's frame key",
    ).raw(replace(ALICE, secret=BOB.secret).frame(1, ts0, "x"), NOW, reject("bad_tag"))
    case("ed25519_bad_signature", "a certificate frame signed by another key").raw(
        replace(CAROL, secret=SEED_ROGUE).frame(1, ts0, "x"), NOW, reject("bad_signature")
    )
    case("ed25519_key_reference_bad_signature", "a key reference frame signed by another key").raw(
        replace(SENSOR, secret=SEED_CAROL).frame(1, ts0, "x"), NOW, reject("bad_signature")
    )
    good_ed = CAROL.frame(1, ts0, "x")
    sig = good_ed[-64:]
    case(
        "signature_s_plus_l",
        "a valid signature with S replaced by S + L: §8.2 rule 2 (S < L)",
    ).raw(
        good_ed[:-64] + sig[:32] + le32(int.from_bytes(sig[32:], "little") + L),
        NOW,
        reject("bad_signature"),
    )
    case(
        "signature_small_order_r",
        "R replaced by the identity point (small order, §8.2 rule 4)",
    ).raw(good_ed[:-64] + IDENTITY_POINT + sig[32:], NOW, reject("bad_signature"))
    case(
        "signature_noncanonical_r",
        "R replaced by a non-canonical encoding (y = p + 3, §8.2 rule 3)",
    ).raw(good_ed[:-64] + NONCANONICAL_Y + sig[32:], NOW, reject("bad_signature"))
    case("signature_all_zero", "a 64-byte all-zero signature").raw(
        good_ed[:-64] + bytes(64), NOW, reject("bad_signature")
    )
    case(
        "wrong_audience_mac",
        "tag valid for audience other.example.com (lp(aud) in the signed input), not ours",
    ).send(ALICE, 1, aud=OTHER_AUD, expect="bad_tag")
    case(
        "wrong_audience_ed25519",
        "signature valid for audience other.example.com, not ours",
    ).send(CAROL, 1, aud=OTHER_AUD, expect="bad_signature")
    case(
        "server_label_reflected",
        "a frame tagged with the server label instead of the client label (§7.1)",
    ).raw(
        seal(KIND_MAC, ALICE.frame(1, ts0, "x")[:-34], ALICE.secret, AUD, SERVER_LABEL),
        NOW,
        reject("bad_tag"),
    )

    # ---- negative: one flipped bit per envelope field (§6.4: first failing step) ---------
    base_frame = ALICE.frame(1, ts0, "hello")
    off = {
        name: element_offset(base_frame, i)
        for i, name in enumerate(
            ["version", "kind", "cred", "nonce", "ctr", "ts", "stream", "seq", "payload", "tag"]
        )
    }
    flips = [
        ("flip_array_header", 0, 0, "malformed", "header 0x9a -> 0x9b: 11 elements announced"),
        ("flip_version", off["version"], 1, "unsupported_version", "version 1 -> 3"),
        ("flip_kind", off["kind"], 1, "malformed", "kind 1 -> 3: not a client kind"),
        ("flip_cred_header", off["cred"], 0, "malformed", "cred header c4 -> c5 (bin 16)"),
        (
            "flip_cred_subject",
            off["cred"] + 2 + ALICE.cred.index(b"alice") + 4,
            0,
            "credential_invalid",
            "sub 'alice' -> 'alicd' inside the token: its tag no longer verifies",
        ),
        (
            "flip_cred_token_tag",
            off["cred"] + 2 + len(ALICE.cred) - 1,
            7,
            "credential_invalid",
            "last byte of the token's tag",
        ),
        ("flip_nonce", off["nonce"] + 2 + 20, 4, "nonce_mismatch", "a bit of the nonce"),
        ("flip_ctr_to_0", off["ctr"], 0, "malformed", "ctr 1 -> 0"),
        ("flip_ctr_to_3", off["ctr"], 1, "bad_tag", "ctr 1 -> 3: only the tag catches it"),
        ("flip_ts_low_bit", off["ts"] + 8, 0, "bad_tag", "ts changed by 1 ms: within max_skew"),
        (
            "flip_ts_high_bit",
            off["ts"] + 5,
            6,
            "timestamp_skew",
            "ts changed by 2^30 ms: beyond max_skew, checked before the tag",
        ),
        ("flip_stream", off["stream"] + 2 + 7, 3, "bad_tag", "a bit of the stream id"),
        ("flip_stream_header", off["stream"], 3, "malformed", "stream header c4 -> cc (uint 8)"),
        ("flip_seq_to_0", off["seq"], 0, "malformed", "seq 1 -> 0 with a str payload"),
        ("flip_seq_to_3", off["seq"], 1, "bad_tag", "seq 1 -> 3: only the tag catches it"),
        ("flip_payload", off["payload"] + 1, 0, "bad_tag", "payload 'hello' -> 'iello'"),
        (
            "flip_payload_invalid_utf8",
            off["payload"] + 1,
            7,
            "malformed",
            "payload byte 'h' -> 0xe8: the str is no longer valid UTF-8",
        ),
        ("flip_payload_header", off["payload"], 0, "malformed", "fixstr length 5 -> 4"),
        ("flip_tag", off["tag"] + 2 + 31, 0, "bad_tag", "last bit of the tag"),
        ("flip_tag_header", off["tag"], 1, "malformed", "tag header c4 -> c6 (bin 32)"),
    ]
    for name, offset, bit, code, what in flips:
        case(name, f"one flipped bit: {what}").raw(
            flip(base_frame, offset, bit), NOW, reject(code)
        )
    case("flip_ed25519_signature", "one flipped bit in a certificate frame's signature").raw(
        flip(good_ed, len(good_ed) - 10, 5), NOW, reject("bad_signature")
    )

    # ---- negative: truncation and trailing bytes ---------------------------------------------
    for length in (0, 1, 2, 40, len(base_frame) // 2, len(base_frame) - 34, len(base_frame) - 1):
        case(
            f"truncated_to_{length}",
            f"the first {length} of {len(base_frame)} bytes of a valid frame",
        ).raw(base_frame[:length], NOW, reject("malformed"))
    case("trailing_zero_byte", "a valid frame followed by 00").raw(
        base_frame + b"\x00", NOW, reject("malformed")
    )
    case("trailing_nil", "a valid frame followed by c0 (a whole MessagePack nil)").raw(
        base_frame + b"\xc0", NOW, reject("malformed")
    )
    case("two_frames_concatenated", "two valid frames in one message").raw(
        base_frame + ALICE.frame(2, ts0, "again"), NOW, reject("malformed")
    )

    # ---- negative: non-canonical encodings, tag valid over the exact bytes ---------------------
    def at(index: int, encoded: bytes) -> Callable[[list[bytes]], list[bytes]]:
        def rewrite(items: list[bytes]) -> list[bytes]:
            out = list(items)
            out[index] = encoded
            return out

        return rewrite

    # Element indexes: 0 version, 1 kind, 2 cred, 3 nonce, 4 ctr, 5 ts, 6 stream, 7 seq,
    # 8 payload, 9 tag.
    noncanonical = [
        ("noncanonical_ctr_uint8", "ctr 1 as uint 8 (cc 01)", at(4, b"\xcc\x01"), ALICE),
        (
            "noncanonical_ctr_uint16",
            "ctr 200 as uint 16 (cd 00 c8)",
            at(4, b"\xcd\x00\xc8"),
            ALICE,
        ),
        ("noncanonical_ctr_int16", "ctr 1 as int 16 (d1 00 01)", at(4, b"\xd1\x00\x01"), ALICE),
        ("noncanonical_ctr_int8", "ctr 1 as int 8 (d0 01)", at(4, b"\xd0\x01"), ALICE),
        ("noncanonical_version_uint8", "version 1 as uint 8 (cc 01)", at(0, b"\xcc\x01"), ALICE),
        ("noncanonical_kind_uint8", "kind 1 as uint 8 (cc 01)", at(1, b"\xcc\x01"), ALICE),
        ("noncanonical_cred_bin16", "a short cred as bin 16", at(2, bin16(ALICE.cred)), ALICE),
        ("noncanonical_nonce_bin16", "the nonce as bin 16", at(3, bin16(NONCE)), ALICE),
        (
            "noncanonical_stream_bin16",
            "the stream id as bin 16",
            at(6, bin16(ALICE.stream)),
            ALICE,
        ),
        ("noncanonical_seq_uint8", "seq 1 as uint 8 (cc 01)", at(7, b"\xcc\x01"), ALICE),
        ("noncanonical_seq_int8", "seq 1 as int 8 (d0 01)", at(7, b"\xd0\x01"), ALICE),
        ("noncanonical_payload_str8", "payload 'hello' as str 8", at(8, str8("hello")), ALICE),
        (
            "noncanonical_payload_bin16",
            "a 3-byte bin payload as bin 16",
            at(8, bin16(b"abc")),
            ALICE,
        ),
        (
            "noncanonical_ts_uint64_small",
            "ts 1000 as uint 64 (the clock at 1 s after the epoch)",
            at(5, b"\xcf" + (1000).to_bytes(8, "big")),
            ALICE,
        ),
        (
            "noncanonical_ed25519_ctr_uint8",
            "an Ed25519 frame, ctr as uint 8",
            at(4, b"\xcc\x01"),
            CAROL,
        ),
    ]
    for name, what, rewrite, client in noncanonical:
        case(name, f"non-canonical: {what}; tag valid over these bytes").raw(
            client.frame(1, ts0, "hello", items=rewrite), NOW, reject("malformed")
        )
    case(
        "noncanonical_array16_header",
        "non-canonical: the envelope's array header as array 16 (dc 00 0a); tag valid",
    ).raw(ALICE.frame(1, ts0, "hello", header=b"\xdc\x00\x0a"), NOW, reject("malformed"))

    # ---- negative: wrong types, extra and missing elements ----------------------------------
    typed_cases: list[tuple[str, str, int, bytes, str]] = [
        ("version_str", "version is the str '1'", 0, pack("1"), "unsupported_version"),
        ("version_nil", "version is nil", 0, pack(None), "unsupported_version"),
        ("version_0", "version 0", 0, pack(0), "unsupported_version"),
        (
            "unsupported_version_2",
            "version 2, otherwise a valid frame",
            0,
            pack(2),
            "unsupported_version",
        ),
        ("kind_str", "kind is a str", 1, pack("mac"), "malformed"),
        ("kind_0", "kind 0", 1, pack(0), "malformed"),
        ("kind_hello", "kind 3 (a hello's kind)", 1, pack(3), "malformed"),
        ("kind_server_mac", "kind 4 (a server frame's kind)", 1, pack(4), "malformed"),
        ("kind_ed25519_with_32_byte_tag", "kind 2 with a 32-byte tag", 1, pack(2), "malformed"),
        ("cred_str", "cred is a str", 2, pack("token"), "malformed"),
        ("cred_nil", "cred is nil", 2, pack(None), "malformed"),
        (
            "cred_array",
            "cred is the token decoded: an array, not a bin",
            2,
            pack(msgpack.unpackb(ALICE.cred)),
            "malformed",
        ),
        ("nonce_str", "nonce is a 64-character str", 3, pack("n" * 64), "malformed"),
        ("nonce_63_bytes", "nonce is bin(63)", 3, pack(NONCE[:63]), "malformed"),
        ("nonce_65_bytes", "nonce is bin(65)", 3, pack(NONCE + b"\x00"), "malformed"),
        ("ctr_zero", "ctr 0 (§6.4 step 4)", 4, pack(0), "malformed"),
        ("ctr_str", "ctr is a str", 4, pack("1"), "malformed"),
        ("ctr_negative", "ctr is -1", 4, pack(-1), "malformed"),
        ("ctr_nil", "ctr is nil", 4, pack(None), "malformed"),
        ("ctr_float", "ctr is the float64 1.0", 4, pack(1.0), "malformed"),
        ("ts_bin", "ts is a bin", 5, pack(b"\x01"), "malformed"),
        ("ts_negative", "ts is -1", 5, pack(-1), "malformed"),
        ("stream_15_bytes", "stream is bin(15)", 6, pack(ALICE.stream[:15]), "malformed"),
        ("stream_17_bytes", "stream is bin(17)", 6, pack(ALICE.stream + b"\x00"), "malformed"),
        ("stream_str", "stream is a 16-character str", 6, pack("s" * 16), "malformed"),
        ("stream_nil", "stream is nil", 6, pack(None), "malformed"),
        ("seq_zero_with_payload", "seq 0 with a str payload (§6.1)", 7, pack(0), "malformed"),
        ("seq_negative", "seq is -1", 7, pack(-1), "malformed"),
        ("seq_str", "seq is a str", 7, pack("1"), "malformed"),
        ("seq_nil", "seq is nil", 7, pack(None), "malformed"),
        ("payload_int", "payload is a uint", 8, pack(7), "malformed"),
        ("payload_negative_int", "payload is -7", 8, pack(-7), "malformed"),
        ("payload_array", "payload is an array", 8, pack(["hello"]), "malformed"),
        ("payload_map", "payload is a map", 8, b"\x81\xa1k\xa1v", "malformed"),
        ("payload_empty_map", "payload is an empty map", 8, b"\x80", "malformed"),
        ("payload_bool", "payload is true", 8, pack(True), "malformed"),
        ("payload_float", "payload is a float64", 8, pack(1.5), "malformed"),
        (
            "payload_ext",
            "payload is an extension type (fixext 1)",
            8,
            b"\xd4\x01\x00",
            "malformed",
        ),
    ]
    for name, what, index, encoded, code in typed_cases:
        # ALICE's frame key makes a 32-byte tag, also under kind 2 (kind_ed25519_with_...).
        case(name, f"{what}; tag valid over these bytes").raw(
            ALICE.frame(1, ts0, "hello", items=at(index, encoded)), NOW, reject(code)
        )
    case("seq_nonzero_with_nil", "seq 1 with a nil payload (§6.1); tag valid").raw(
        ALICE.frame(1, ts0, None, seq=1), NOW, reject("malformed")
    )
    elements = encode_each([1, KIND_MAC, ALICE.cred, NONCE, 1, ts0, ALICE.stream, 1, "hello"])
    body = array(elements, array_header(10))
    case("tag_str", "tag is a 32-character str").raw(
        body + pack("t" * 32), NOW, reject("malformed")
    )
    case("tag_31_bytes", "tag is bin(31)").raw(body + bin_tag(bytes(31)), NOW, reject("malformed"))
    case("tag_nil", "tag is nil").raw(body + pack(None), NOW, reject("malformed"))
    case("mac_with_64_byte_tag", "kind 1 with a 64-byte tag").raw(
        body + bin_tag(bytes(64)), NOW, reject("malformed")
    )
    ed_elements = encode_each(
        [1, KIND_ED25519, CAROL.cred, NONCE, 1, ts0, CAROL.stream, 1, "hello"]
    )
    case("ed25519_with_32_byte_tag", "kind 2 with a 32-byte tag").raw(
        array(ed_elements, array_header(10)) + bin_tag(bytes(32)), NOW, reject("malformed")
    )
    case("extra_element", "11 elements: a nil after the tag").raw(
        array(elements, array_header(11)) + bin_tag(bytes(32)) + pack(None),
        NOW,
        reject("malformed"),
    )

    def drop_stream(items: list[bytes]) -> list[bytes]:
        return [*items[:6], *items[7:]]

    case("missing_element", "9 elements: no stream; tag valid over these bytes").raw(
        ALICE.frame(1, ts0, "hello", items=drop_stream, header=array_header(9)),
        NOW,
        reject("malformed"),
    )

    def draft_layout(items: list[bytes]) -> list[bytes]:
        return [*items[:6], items[8]]

    case(
        "eight_element_layout",
        "the 8-element layout without stream and seq; tag valid over these bytes",
    ).raw(
        ALICE.frame(1, ts0, "hello", items=draft_layout, header=array_header(8)),
        NOW,
        reject("malformed"),
    )
    case(
        "version_2_with_11_elements", "version 2 with 11 elements: the version is checked first"
    ).raw(
        array([pack(2), *elements[1:]], array_header(11)) + bin_tag(bytes(32)) + pack(None),
        NOW,
        reject("unsupported_version"),
    )
    case("empty_array", "an empty array").raw(b"\x90", NOW, reject("malformed"))
    case("not_an_array", "a str").raw(pack("hello"), NOW, reject("malformed"))
    case("top_level_map", "a map").raw(b"\x81\x01\x01", NOW, reject("malformed"))
    case("top_level_nil", "nil").raw(b"\xc0", NOW, reject("malformed"))
    case("reserved_byte", "the never-used byte c1").raw(b"\xc1", NOW, reject("malformed"))
    big_cred = bytes(4097)
    case(
        "cred_4097_bytes",
        "a cred of 4097 bytes: over the credential size limit (§10)",
    ).raw(
        Client(KIND_MAC, big_cred, ALICE.secret, "", "", "", ()).frame(1, ts0, None),
        NOW,
        reject("malformed"),
    )
    case(
        "cred_4096_bytes_junk",
        "a cred of exactly 4096 zero bytes: within the limit, but not a credential",
    ).raw(
        Client(KIND_MAC, bytes(4096), ALICE.secret, "", "", "", ()).frame(1, ts0, None),
        NOW,
        reject("credential_malformed"),
    )

    # ---- negative: nonce, counter ------------------------------------------------------------
    case("wrong_nonce", "a frame signed for another connection's nonce of the same fleet").send(
        ALICE, 1, nonce=NONCE2, expect="nonce_mismatch"
    )
    short = replace(CONN, ttl=60)
    case(
        "nonce_expired",
        "now == the nonce's expiry (connection opened at now - 30 with a 60 s nonce)",
        nonce=short,
        nonce_ttl=60,
    ).send(ALICE, 1, now=NOW - 10).send(ALICE, 2, now=short.expires, expect="nonce_expired")
    case("replayed_counter", "the same frame twice").send(ALICE, 1, "x").raw(
        ALICE.frame(1, ts0, "x"), NOW, reject("replay")
    )
    case("counter_lower", "W = 0: 5 then 3").send(ALICE, 5).send(ALICE, 3, expect="replay")
    case("counter_equal_new_payload", "W = 0: 5 then 5 with another payload").send(
        ALICE, 5, "a"
    ).send(ALICE, 5, "b", expect="replay")
    case("counter_wrap", "after 2^64 - 1 no counter passes").send(ALICE, MAX_U64, "last").send(
        ALICE, 1, "wrapped", expect="replay"
    ).send(ALICE, MAX_U64, "again", expect="replay")
    case(
        "window_outside",
        "W = 4: after 10, counter 6 is 4 behind: outside the window; 7 is still accepted",
        window=4,
    ).send(ALICE, 10).send(ALICE, 6, expect="replay").send(ALICE, 7)
    case("window_duplicate", "W = 4: 3, 1, then 1 again", window=4).send(ALICE, 3).send(
        ALICE, 1
    ).send(ALICE, 1, expect="replay")
    case("window_highest_again", "W = 4: the highest counter again", window=4).send(
        ALICE, 10
    ).send(ALICE, 10, expect="replay")

    # ---- negative: credential checks at step 7 ----------------------------------------------
    case("credential_expired", "a frame at exactly the token's exp").send(
        ALICE, 1, now=ALICE_CLAIMS.exp, expect="credential_expired"
    )
    case(
        "credential_expires_mid_connection",
        "accepted before exp, refused at exp on the same connection",
    ).send(ALICE, 1, now=NOW).send(ALICE, 2, now=ALICE_CLAIMS.exp, expect="credential_expired")
    case(
        "certificate_expired",
        "a certificate frame after the certificate's exp",
    ).send(CAROL, 1, now=CAROL_CLAIMS.exp + 5, expect="credential_expired")
    case(
        "credential_not_yet_valid",
        "iat = now + 30.125 s with leeway 30 s: 125 ms beyond the leeway",
    ).send(early, 1, now=NOW + 69.875, expect="credential_not_yet_valid")
    case(
        "credential_not_yet_valid_no_leeway",
        "leeway 0: refused 1/8 s before iat",
        leeway=0,
    ).send(early, 1, now=NOW + 99.875, expect="credential_not_yet_valid")
    case(
        "revoked_by_cid",
        "the token's (iss, cid) is in the revocation set",
        revocations=revocations_json(credentials=[(ISS_A, "tok-alice-1")]),
    ).send(ALICE, 1, expect="credential_revoked")
    case(
        "revoked_by_subject",
        "(iss, sub) revoked before t = iat + 1: iat < t",
        revocations=revocations_json(subjects=[(ISS_A, "alice", ALICE_CLAIMS.iat + 1)]),
    ).send(ALICE, 1, expect="credential_revoked")
    case(
        "revoked_key_reference",
        "a key reference's cid is its kid: (devices.example.com, sensor-7) revoked",
        revocations=revocations_json(credentials=[(ISS_DEV, KID_SENSOR)]),
    ).send(SENSOR, 1, expect="credential_revoked")
    case(
        "revoked_mid_connection",
        "frame 1 accepted; the revocation set is replaced and frame 2 is refused; the set is "
        "cleared again and frame 2 is accepted (the refusal changed nothing)",
    ).send(ALICE, 1).send(
        ALICE,
        2,
        now=NOW + 1,
        expect="credential_revoked",
        revocations=revocations_json(credentials=[(ISS_A, "tok-alice-1")]),
    ).send(ALICE, 2, now=NOW + 2, revocations=revocations_json())
    case(
        "audience_mismatch",
        "a token whose aud list does not contain the server's audience",
    ).send(
        mac_client(replace(ALICE_CLAIMS, cid="tok-other-aud", aud=(OTHER_AUD,)), SECRET_A),
        1,
        expect="audience_mismatch",
    )
    case(
        "credential_mismatch_other_subject",
        "bound to (auth.example.com, alice); then bob's valid token; then alice again",
    ).send(ALICE, 1).send(BOB, 2, expect="credential_mismatch").send(ALICE, 2)
    case(
        "credential_mismatch_other_issuer",
        "bound to (auth.example.com, alice); then alice of partner.example.net",
    ).send(ALICE, 1).send(ALICE_AT_B, 2, expect="credential_mismatch")
    case(
        "credential_mismatch_key_reference",
        "bound to sensor-7 by a key reference; then carol's certificate",
    ).send(SENSOR, 1).send(CAROL, 2, expect="credential_mismatch")
    stranger = mac_client(replace(ALICE_CLAIMS, iss=ISS_STRANGER), SECRET_STRANGER)
    case("unknown_issuer", "a token of an issuer that is in no keyring").send(
        stranger, 1, expect="unknown_issuer"
    )
    confused = mac_client(replace(ALICE_CLAIMS, iss=ISS_B, kid=KID_A), SECRET_A)
    case(
        "kid_of_other_issuer",
        "iss partner.example.net with kid hk-2024 (a kid of auth.example.com), tagged and "
        "framed with auth.example.com's secret",
    ).send(confused, 1, expect="unknown_key")
    case(
        "hmac_key_for_certificate",
        "a certificate naming an HMAC issuer key (auth.example.com, hk-2024)",
    ).send(
        cert_client(replace(CAROL_CLAIMS, kid=KID_A), SEED_CAROL, SEED_A),
        1,
        expect="unknown_key",
    )
    case(
        "scheme_mismatch_kind1_certificate",
        "kind 1 carrying a certificate (with a 32-byte tag)",
    ).raw(
        Client(KIND_MAC, CAROL.cred, fixed("any key"), "", "", "", ()).frame(1, ts0, "x"),
        NOW,
        reject("scheme_mismatch"),
    )
    case(
        "scheme_mismatch_kind1_key_reference",
        "kind 1 carrying a key reference (with a 32-byte tag)",
    ).raw(
        Client(KIND_MAC, SENSOR.cred, fixed("any key"), "", "", "", ()).frame(1, ts0, "x"),
        NOW,
        reject("scheme_mismatch"),
    )
    case(
        "scheme_mismatch_kind2_token",
        "kind 2 carrying a token (with a 64-byte signature by some key)",
    ).raw(
        Client(KIND_ED25519, ALICE.cred, SEED_CAROL, "", "", "", ()).frame(1, ts0, "x"),
        NOW,
        reject("scheme_mismatch"),
    )
    case(
        "scheme_mismatch_after_cache",
        "a token accepted under kind 1, then the same token bytes under kind 2",
    ).send(ALICE, 1).raw(
        Client(KIND_ED25519, ALICE.cred, SEED_CAROL, "", "", "", ()).frame(2, ts0, "x"),
        NOW,
        reject("scheme_mismatch"),
    )
    case(
        "weak_key",
        "a certificate binding a small-order key, properly signed by the issuer",
    ).raw(
        Client(
            KIND_ED25519,
            certificate(replace(CAROL_CLAIMS, cid="cert-weak"), IDENTITY_POINT, SEED_A),
            SEED_CAROL,
            "",
            "",
            "",
            (),
        ).frame(1, ts0, "x"),
        NOW,
        reject("weak_key"),
    )
    retired = mac_client(replace(ALICE_CLAIMS, kid=KID_A_OLD, cid="tok-old-key"), SECRET_A_OLD)
    case(
        "issuer_key_retired",
        "a token under hk-2023, whose not_after is 1000 s before now",
    ).send(retired, 1, expect="unknown_key")
    case(
        "issuer_key_retired_at_not_after",
        "a token under hk-2023 at exactly its not_after",
    ).send(retired, 1, now=A_OLD_NOT_AFTER, expect="unknown_key")
    case(
        "issuer_key_retired_ed25519",
        "a certificate under ek-2023, whose not_after has passed",
    ).send(
        cert_client(replace(CAROL_CLAIMS, kid=KID_A_ED_OLD), SEED_CAROL, SEED_A_OLD),
        1,
        expect="unknown_key",
    )
    case(
        "issuer_key_not_yet_valid",
        "a token under hk-2025 1/8 s before its not_before",
    ).send(at_nb, 1, now=A_NEW_NOT_BEFORE - 0.125, expect="unknown_key")
    case(
        "registry_key_absent",
        "a key reference to an entry the registry does not hold",
    ).send(replace(SENSOR, cred=key_reference(ISS_DEV, "sensor-8")), 1, expect="unknown_key")
    reg_late = keyring_json(sensor_iat=NOW + 100, sensor_exp=NOW + 200)
    case(
        "registry_entry_not_yet_valid",
        "a key reference whose registry entry has iat = now + 100 s (beyond the leeway)",
        keyring=reg_late,
    ).send(SENSOR, 1, expect="credential_not_yet_valid")
    case(
        "registry_entry_expired",
        "a key reference at exactly its registry entry's exp",
        keyring=reg_late,
    ).send(SENSOR, 1, now=NOW + 200, expect="credential_expired")

    # ---- negative: timestamp and size ---------------------------------------------------------
    case("skew_future", "ts = now + max_skew + 1 ms").send(
        ALICE, 1, ts=ms(NOW) + 300_001, expect="timestamp_skew"
    )
    case("skew_past", "ts = now - max_skew - 1 ms").send(
        ALICE, 1, ts=ms(NOW) - 300_001, expect="timestamp_skew"
    )
    case("skew_zero_ts", "ts = 0").send(ALICE, 1, ts=0, expect="timestamp_skew")
    case(
        "frame_too_large",
        "len(frame) == max_frame_size + 1",
        max_frame_size=len(frame) - 1,
    ).raw(frame, NOW, reject("frame_too_large"))
    case(
        "frame_too_large_before_decoding",
        "17 bytes of garbage with max_frame_size 16: size is checked before decoding",
        max_frame_size=16,
    ).raw(b"\xc1" * 17, NOW, reject("frame_too_large"))

    # ---- order of checks (§6.4: the first failing step wins) ---------------------------------
    case(
        "order_nonce_before_credential",
        "wrong nonce and an unknown issuer: nonce_mismatch (step 5 before step 7)",
    ).send(stranger, 1, nonce=NONCE2, expect="nonce_mismatch")
    case(
        "order_replay_before_credential",
        "a replayed counter carrying an expired credential: replay (step 6 before 7)",
    ).send(ALICE, 5, now=NOW).send(BOB, 5, now=ALICE_CLAIMS.exp + 60, expect="replay")
    case(
        "order_expired_before_tag",
        "an expired token and a bad tag: credential_expired (step 7 before 11)",
    ).raw(_bad_tag(ALICE, 1, ms(ALICE_CLAIMS.exp)), ALICE_CLAIMS.exp, reject("credential_expired"))
    case(
        "order_revoked_before_skew",
        "revoked and skewed: credential_revoked (step 9 before 10)",
        revocations=revocations_json(credentials=[(ISS_A, "tok-alice-1")]),
    ).send(ALICE, 1, ts=0, expect="credential_revoked")
    case(
        "order_mismatch_before_revocation",
        "bound to alice; bob's token, also revoked: credential_mismatch (step 8 before 9)",
        revocations=revocations_json(credentials=[(ISS_A, "tok-bob-1")]),
    ).send(ALICE, 1).send(BOB, 2, expect="credential_mismatch")
    case(
        "order_skew_before_tag",
        "skewed and with a bad tag: timestamp_skew (step 10 before 11)",
    ).raw(_bad_tag(ALICE, 1, 0), NOW, reject("timestamp_skew"))
    case(
        "order_scheme_before_authentication",
        "kind 1 with a certificate of an unknown issuer: scheme_mismatch (7.2 before 7.3)",
    ).raw(
        Client(
            KIND_MAC,
            certificate(
                replace(CAROL_CLAIMS, iss=ISS_STRANGER), ed25519_public(SEED_CAROL), SEED_ROGUE
            ),
            fixed("any key"),
            "",
            "",
            "",
            (),
        ).frame(1, ts0, "x"),
        NOW,
        reject("scheme_mismatch"),
    )
    case(
        "order_key_window_before_expiry",
        "a token under the retired hk-2023 that is also expired: unknown_key (7.4 order)",
    ).send(
        mac_client(
            replace(
                ALICE_CLAIMS, kid=KID_A_OLD, cid="tok-old-exp", iat=NOW - 9000, exp=NOW - 8000
            ),
            SECRET_A_OLD,
        ),
        1,
        expect="unknown_key",
    )
    case(
        "order_expiry_before_audience",
        "an expired token for another audience: credential_expired (7.4 order)",
    ).send(
        mac_client(
            replace(ALICE_CLAIMS, cid="tok-exp-aud", aud=(OTHER_AUD,), iat=NOW - 900, exp=NOW - 1),
            SECRET_A,
        ),
        1,
        expect="credential_expired",
    )

    # ---- SPEC 1.0: §2 decoding before the version (issue 14 items 5, 9-11) -----------------
    decoding_cases: list[tuple[str, str, bytes]] = [
        ("version_float64", "version is the float64 1.0", pack(1.0)),
        ("version_float32", "version is the float32 1.0", b"\xca\x3f\x80\x00\x00"),
        ("version_true", "version is true", pack(True)),
        ("version_negative", "version is -1 (negative fixint)", pack(-1)),
        ("version_invalid_utf8", "version is a str whose byte ff is not UTF-8", raw_str(b"\xff")),
        ("version_empty_array", "version is an empty array (nested)", b"\x90"),
        ("version_nested_array", "version is the array [1] (nested)", pack([1])),
        ("version_empty_map", "version is an empty map", b"\x80"),
        ("payload_nested_empty_arrays", "payload is [[]]: an array nests", b"\x91\x90"),
    ]
    for name, what, encoded in decoding_cases:
        index = 8 if name.startswith("payload") else 0
        case(name, f"{what}: §2 decoding fails, before the version; tag valid").raw(
            ALICE.frame(1, ts0, "hello", items=at(index, encoded)), NOW, reject("malformed")
        )

    def version_2_float_ctr(items: list[bytes]) -> list[bytes]:
        return [pack(2), *items[1:4], pack(1.0), *items[5:]]

    case(
        "version_2_float_elsewhere",
        "version 2 and a float64 ctr: decoding (§2) fails before the version is read",
    ).raw(ALICE.frame(1, ts0, "hello", items=version_2_float_ctr), NOW, reject("malformed"))
    case(
        "version_2_with_65_elements",
        "version 2 with 65 elements: over 64, decoding (§2) fails before the version",
    ).raw(
        array([pack(2), *elements[1:]], b"\xdc\x00\x41") + bin_tag(bytes(32)) + pack(None) * 55,
        NOW,
        reject("malformed"),
    )

    # ---- SPEC 1.0: counter wrap with a window (item 6), rounding of now (item 14) ---------
    case(
        "counter_wrap_window",
        "W = 4 at H = 2^64 - 1: 2^64 - 4 (H - ctr = 3 < 4) passes once; 2^64 - 5 and H "
        "itself are replays",
        window=4,
    ).send(ALICE, MAX_U64, "last").send(ALICE, MAX_U64 - 3, "in window").send(
        ALICE, MAX_U64 - 4, "outside", expect="replay"
    ).send(ALICE, MAX_U64, "again", expect="replay").send(
        ALICE, MAX_U64 - 3, "twice", expect="replay"
    )
    fine = NOW + 1 / 1024  # 0.9765625 ms after NOW: now_ms = floor(...) = NOW * 1000 (§2)
    case(
        "skew_fractional_now",
        "now = NOW + 1/1024 s: now_ms rounds down to NOW * 1000 (§2), so ts = now_ms - "
        "max_skew is within max_skew (rounding up would refuse it), and one ms less is not",
    ).send(ALICE, 1, now=fine, ts=ms(NOW) - 300_000).send(
        ALICE, 2, now=fine, ts=ms(NOW) - 300_001, expect="timestamp_skew"
    )

    result = [seq.json() for seq in cases]
    description = (
        "Client frames (§6) verified by a server (§6.4). Each case sets up a verifier and a "
        "connection, then runs steps in order on that one connection; a refused step changes "
        "nothing and later steps continue from the same state."
    )
    return document(description, result)


def _bad_tag(client: Client, ctr: int, ts: int, payload: Payload = "x") -> bytes:
    """A frame of ``client`` whose tag or signature is made with a wrong key."""
    wrong = replace(client, secret=fixed("wrong key for " + client.cid))
    return wrong.frame(ctr, ts, payload)
