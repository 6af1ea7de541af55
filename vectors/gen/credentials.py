"""credentials.json: tokens, certificates and key references (SPEC.md §4)."""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from gen.common import (
    ALICE_CERT,
    ALICE_CLAIMS,
    AUD,
    CAROL,
    CAROL_CLAIMS,
    CONN,
    IDENTITY_POINT,
    ISS_A,
    ISS_B,
    ISS_DEV,
    ISS_STRANGER,
    KID_A,
    KID_A_ED,
    KID_B,
    KID_SENSOR,
    KIND_ED25519,
    KIND_MAC,
    MAX_U64,
    NONCANONICAL_Y,
    NOW,
    ORDER8_POINT,
    OTHER_AUD,
    SECRET_A,
    SECRET_B,
    SECRET_STRANGER,
    SEED_A,
    SEED_ALICE_ED,
    SEED_CAROL,
    SEED_ROGUE,
    SEED_SENSOR,
    SENSOR,
    Claims,
    Client,
    Json,
    L,
    array,
    array_header,
    bin_tag,
    cert_client,
    certificate,
    default_ts,
    document,
    ed25519_public,
    flip,
    frame_key,
    hx,
    key_reference,
    le32,
    mac_client,
    num,
    pack,
    raw_str,
    reject,
    seal_certificate,
    seal_token,
    str8,
    token,
    verifier_json,
)

# -- credentials.json -----------------------------------------------------------------

CRED_NOW: Final = NOW


def cred_setup() -> Json:
    return {"verifier": verifier_json(), "nonce": CONN.json()}


def credentials_json() -> Json:
    cases: list[Json] = []
    ts = default_ts(CRED_NOW)

    def positive_token(name: str, description: str, claims: Claims, secret: bytes) -> None:
        client = mac_client(claims, secret)
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "token",
                "mintable": True,
                "issuer_secret": hx(secret),
                "fields": claims.json(),
                "bytes": hx(client.cred),
                "frame_key": hx(client.secret),
                "frame": hx(client.frame(1, ts, "hi")),
                "now": CRED_NOW,
                "expect": client.accept(1, ts, "hi"),
            }
        )

    def positive_certificate(
        name: str, description: str, claims: Claims, client_seed: bytes
    ) -> None:
        client = cert_client(claims, client_seed, SEED_A)
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "certificate",
                "mintable": True,
                "issuer_seed": hx(SEED_A),
                "fields": {**claims.json(), "public_key": hx(ed25519_public(client_seed))},
                "client_seed": hx(client_seed),
                "bytes": hx(client.cred),
                "frame": hx(client.frame(1, ts, "hi")),
                "now": CRED_NOW,
                "expect": client.accept(1, ts, "hi"),
            }
        )

    positive_token(
        "token_alice",
        "a token with two scopes and one audience, as an issuer mints it",
        ALICE_CLAIMS,
        SECRET_A,
    )
    positive_token(
        "token_no_scopes_any_audience",
        "empty scopes and an empty aud list (valid at any audience trusting the issuer)",
        Claims(ISS_A, KID_A, "tok-empty-lists", "dave"),
        SECRET_A,
    )
    positive_token(
        "token_unicode_fields",
        "non-ASCII UTF-8 in sub, cid and a scope",
        Claims(ISS_A, KID_A, "tök-ü-1", "zoë@例え.jp", ("lire:é",), (AUD,)),
        SECRET_A,
    )
    positive_token(
        "token_limits",
        "at the limits of §2.1: 255-byte sub, 64 scopes, 16 audiences",
        Claims(
            ISS_A,
            KID_A,
            "c" * 255,
            "s" * 255,
            tuple(f"scope-{i:02d}" for i in range(64)),
            tuple(sorted([AUD, *(f"aud-{i:02d}.example" for i in range(15))])),
        ),
        SECRET_A,
    )
    positive_token(
        "token_issuer_b",
        "a token of a second issuer, with a 48-byte secret",
        Claims(ISS_B, KID_B, "tok-partner-alice", "alice", ("chat:read",)),
        SECRET_B,
    )
    positive_token(
        "token_large_times",
        "iat and exp that need uint 64 (exp = 2^64 - 1 seconds)",
        Claims(ISS_A, KID_A, "tok-forever", "erin", iat=NOW - 60, exp=MAX_U64),
        SECRET_A,
    )
    positive_certificate(
        "certificate_carol",
        "a certificate binding carol's Ed25519 key, no audience restriction",
        CAROL_CLAIMS,
        SEED_CAROL,
    )
    positive_certificate(
        "certificate_alice_with_audience",
        "a certificate with an aud list that contains the server's audience",
        Claims(ISS_A, KID_A_ED, "cert-alice-1", "alice", ("chat:read",), (AUD,)),
        SEED_ALICE_ED,
    )
    cases.append(
        {
            "name": "key_reference_sensor",
            "description": "a key reference to the registry entry (devices.example.com, sensor-7)",
            "type": "key_reference",
            "mintable": True,
            "fields": {"iss": ISS_DEV, "kid": KID_SENSOR},
            "bytes": hx(SENSOR.cred),
            "frame": hx(SENSOR.frame(1, ts, "hi")),
            "now": CRED_NOW,
            "expect": SENSOR.accept(1, ts, "hi"),
        }
    )
    # Scopes are a set (§2.1): order is not checked. Issuers may mint them sorted,
    # so this one is built by hand and is not mintable through a sorting issuer.
    unsorted = Claims(ISS_A, KID_A, "tok-unsorted", "frank", ("zeta", "alpha"), (OTHER_AUD, AUD))
    unsorted_client = mac_client(unsorted, SECRET_A)
    cases.append(
        {
            "name": "token_unsorted_sets_accepted",
            "description": "scopes and aud in unsorted order: sets, order is not checked (§2.1)",
            "type": "token",
            "mintable": False,
            "issuer_secret": hx(SECRET_A),
            "fields": unsorted.json(),
            "bytes": hx(unsorted_client.cred),
            "frame_key": hx(unsorted_client.secret),
            "frame": hx(unsorted_client.frame(1, ts, "hi")),
            "now": CRED_NOW,
            "expect": unsorted_client.accept(1, ts, "hi"),
        }
    )

    def negative(
        name: str,
        description: str,
        cred: bytes,
        code: str,
        *,
        kind: int = KIND_MAC,
        secret: bytes | None = None,
        ctype: str = "token",
        now: float = CRED_NOW,
    ) -> None:
        if secret is None:
            secret = frame_key(SECRET_A, cred) if kind == KIND_MAC else SEED_CAROL
        client = Client(kind, cred, secret, "", "", "", ())
        cases.append(
            {
                "name": name,
                "description": description,
                "type": ctype,
                "mintable": False,
                "bytes": hx(cred),
                "frame": hx(client.frame(1, default_ts(now), "hi")),
                "now": num(now),
                "expect": reject(code),
            }
        )

    base = Claims(ISS_A, KID_A, "tok-neg", "mallory", ("chat:read",), (AUD,))
    items = base.items(1)

    def tok(elements: list[bytes], header: bytes | None = None, secret: bytes = SECRET_A) -> bytes:
        """A token over hand-made elements, with a correct tag over its body."""
        return seal_token(array(elements, array_header(11) if header is None else header), secret)

    def with_item(index: int, encoded: bytes) -> list[bytes]:
        out = list(items)
        out[index] = encoded
        return out

    good = token(base, SECRET_A)
    mal = "credential_malformed"
    negative("token_missing_tag", "10 elements: the tag is missing", array(items), mal)
    negative(
        "token_extra_element",
        "12 elements: a nil after the tag",
        array([*items, bin_tag(bytes(32)), pack(None)]),
        mal,
    )
    negative(
        "token_tag_31_bytes",
        "tag is bin(31), not bin(32)",
        array(items, array_header(11)) + bin_tag(bytes(31)),
        mal,
    )
    negative("token_version_2", "credential version 2", tok(with_item(0, pack(2))), mal)
    negative("token_unknown_type_4", "credential type 4", tok(with_item(1, pack(4))), mal)
    negative("token_trailing_byte", "a valid token followed by one zero byte", good + b"\x00", mal)
    negative(
        "token_noncanonical_iat_uint64",
        "iat in the uint 64 form although it fits uint 32; tag valid over these bytes",
        tok(with_item(8, b"\xcf" + (NOW - 60).to_bytes(8, "big"))),
        mal,
    )
    negative(
        "token_noncanonical_sub_str8",
        "sub in the str 8 form although it fits fixstr; tag valid over these bytes",
        tok(with_item(5, str8("mallory"))),
        mal,
    )
    negative(
        "token_noncanonical_array16",
        "the token's array header in the array 16 form; tag valid over these bytes",
        tok(items, b"\xdc\x00\x0b"),
        mal,
    )
    negative(
        "token_noncanonical_tag_bin16",
        "the tag's header in the bin 16 form (c5 00 20)",
        array(items, array_header(11)) + b"\xc5\x00\x20" + bytes(32),
        mal,
    )
    negative(
        "token_duplicate_scopes",
        "scopes list a scope twice (§2.1: sets); tag valid",
        tok(with_item(6, pack(["chat:read", "chat:read"]))),
        mal,
    )
    negative(
        "token_duplicate_audiences",
        "aud lists the server audience twice (§2.1); tag valid",
        tok(with_item(7, pack([AUD, AUD]))),
        mal,
    )
    negative(
        "token_exp_equals_iat",
        "exp == iat (§4.1: exp MUST be > iat); tag valid",
        tok(with_item(9, pack(NOW - 60))),
        mal,
    )
    negative(
        "token_exp_before_iat",
        "exp < iat; tag valid",
        tok(with_item(9, pack(NOW - 61))),
        mal,
    )
    negative("token_empty_subject", "sub is the empty string", tok(with_item(5, pack(""))), mal)
    negative(
        "token_subject_256_bytes",
        "sub of 256 bytes (§2.1: 1 to 255)",
        tok(with_item(5, pack("s" * 256))),
        mal,
    )
    negative(
        "token_empty_scope", "a scope that is the empty string", tok(with_item(6, pack([""]))), mal
    )
    negative(
        "token_65_scopes",
        "65 scopes (§2.1: at most 64)",
        tok(with_item(6, pack([f"s{i}" for i in range(65)]))),
        mal,
    )
    negative(
        "token_17_audiences",
        "17 audiences (§2.1: at most 16)",
        tok(with_item(7, pack(sorted([AUD, *(f"a{i}.example" for i in range(16))])))),
        mal,
    )
    negative(
        "token_invalid_utf8_subject",
        "sub is a str whose bytes are not UTF-8 (ff fe)",
        tok(with_item(5, raw_str(b"\xff\xfe"))),
        mal,
    )
    negative("token_iss_not_str", "iss is a uint", tok(with_item(2, pack(7))), mal)
    negative("token_kid_bin", "kid is a bin, not a str", tok(with_item(3, pack(b"hk-2024"))), mal)
    negative("token_iat_negative", "iat is -1 (a negative int)", tok(with_item(8, pack(-1))), mal)
    negative(
        "token_scopes_not_array", "scopes is a str", tok(with_item(6, pack("chat:read"))), mal
    )
    negative("token_scope_not_str", "a scope is a uint", tok(with_item(6, pack([1]))), mal)
    negative("token_exp_nil", "exp is nil", tok(with_item(9, pack(None))), mal)
    negative("credential_empty", "the credential is zero bytes", b"", mal)
    negative("credential_not_array", "the credential is a str", pack("a token"), mal)
    negative("credential_map", "the credential is a map", b"\x81\x01\x01", mal)
    negative("credential_one_element", "the credential is [1]", pack([1]), mal)
    cert_items = [*replace(base, kid=KID_A_ED).items(2), pack(ed25519_public(SEED_CAROL))]
    negative(
        "certificate_key_31_bytes",
        "a certificate whose key is bin(31); signature valid over these bytes",
        seal_certificate(
            array([*cert_items[:10], pack(ed25519_public(SEED_CAROL)[:31])], array_header(12)),
            SEED_A,
        ),
        mal,
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_sig_63_bytes",
        "a certificate whose sig is bin(63)",
        array(cert_items, array_header(12)) + bin_tag(bytes(63)),
        mal,
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "key_reference_extra_element",
        "a key reference with 5 elements",
        pack([1, 3, ISS_DEV, KID_SENSOR, None]),
        mal,
        kind=KIND_ED25519,
        secret=SEED_SENSOR,
        ctype="key_reference",
    )
    negative(
        "key_reference_empty_kid",
        "a key reference whose kid is empty",
        pack([1, 3, ISS_DEV, ""]),
        mal,
        kind=KIND_ED25519,
        secret=SEED_SENSOR,
        ctype="key_reference",
    )
    negative(
        "key_reference_version_2",
        "a key reference of version 2",
        pack([2, 3, ISS_DEV, KID_SENSOR]),
        mal,
        kind=KIND_ED25519,
        secret=SEED_SENSOR,
        ctype="key_reference",
    )
    # Authentication failures (§4.2-§4.4), in check order.
    stranger = token(replace(base, iss=ISS_STRANGER), SECRET_STRANGER)
    negative(
        "token_unknown_issuer",
        "iss names no issuer of the keyring",
        stranger,
        "unknown_issuer",
        secret=frame_key(SECRET_STRANGER, stranger),
    )
    negative(
        "token_unknown_kid",
        "a kid the (known) issuer does not have",
        token(replace(base, kid="hk-1999"), SECRET_A),
        "unknown_key",
    )
    confused = token(replace(base, iss=ISS_B, kid=KID_A), SECRET_A)
    negative(
        "token_kid_of_another_issuer",
        "claims issuer B with kid hk-2024, which exists only under issuer A; tagged with A's "
        "secret (a keyring keyed by kid alone would accept it, §3.3)",
        confused,
        "unknown_key",
        secret=frame_key(SECRET_A, confused),
    )
    negative(
        "token_under_ed25519_key",
        "a token whose (iss, kid) names an Ed25519 issuer key",
        token(replace(base, kid=KID_A_ED), SECRET_A),
        "unknown_key",
    )
    negative(
        "certificate_under_hmac_key",
        "a certificate whose (iss, kid) names an HMAC issuer key",
        certificate(replace(base, kid=KID_A), ed25519_public(SEED_CAROL), SEED_A),
        "unknown_key",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "key_reference_not_registered",
        "a key reference to (devices.example.com, sensor-8), not in the registry",
        key_reference(ISS_DEV, "sensor-8"),
        "unknown_key",
        kind=KIND_ED25519,
        secret=SEED_SENSOR,
        ctype="key_reference",
    )
    negative(
        "key_reference_issuer_key_namespace",
        "a key reference to (auth.example.com, ek-2024): an issuer key, not a registry entry "
        "(§3.3: separate namespaces)",
        key_reference(ISS_A, KID_A_ED),
        "unknown_key",
        kind=KIND_ED25519,
        secret=SEED_A,
        ctype="key_reference",
    )
    negative(
        "token_bad_tag",
        "a token whose last tag byte is flipped",
        flip(good, len(good) - 1, 0),
        "credential_invalid",
    )
    other_key = token(base, SECRET_B)
    negative(
        "token_tagged_with_other_secret",
        "claims (auth.example.com, hk-2024) but tagged with issuer B's secret",
        other_key,
        "credential_invalid",
        secret=frame_key(SECRET_B, other_key),
    )
    carol_cert = CAROL.cred
    negative(
        "certificate_bad_signature",
        "carol's certificate with one bit of its signature flipped",
        flip(carol_cert, len(carol_cert) - 40, 3),
        "credential_invalid",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_signed_by_untrusted_key",
        "a certificate naming (auth.example.com, ek-2024), signed by another key",
        certificate(
            replace(CAROL_CLAIMS, cid="cert-rogue"), ed25519_public(SEED_CAROL), SEED_ROGUE
        ),
        "credential_invalid",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    sig = carol_cert[-64:]
    s_plus_l = sig[:32] + le32(int.from_bytes(sig[32:], "little") + L)
    negative(
        "certificate_signature_s_plus_l",
        "carol's certificate with S replaced by S + L (the equation still holds mod L; "
        "§8.2 rule 2 refuses S >= L)",
        carol_cert[:-64] + s_plus_l,
        "credential_invalid",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_small_order_key",
        "a certificate binding the identity point (small order), properly signed by the issuer",
        certificate(replace(CAROL_CLAIMS, cid="cert-weak-1"), IDENTITY_POINT, SEED_A),
        "weak_key",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_order8_key",
        "a certificate binding a point of order 8, properly signed by the issuer",
        certificate(replace(CAROL_CLAIMS, cid="cert-weak-2"), ORDER8_POINT, SEED_A),
        "weak_key",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_noncanonical_key",
        "a certificate binding a key whose y is p + 3 (non-canonical, §8.2 rule 3), signed",
        certificate(replace(CAROL_CLAIMS, cid="cert-weak-3"), NONCANONICAL_Y, SEED_A),
        "weak_key",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "token_expired",
        "a token used at exactly its exp (valid while now < exp)",
        good,
        "credential_expired",
        now=base.exp,
    )
    future = token(replace(base, iat=NOW + 3600, exp=NOW + 7200), SECRET_A)
    negative(
        "token_not_yet_valid",
        "a token whose iat is an hour after now (beyond the 30 s leeway)",
        future,
        "credential_not_yet_valid",
    )
    negative(
        "token_other_audience",
        "a token whose aud list does not contain the server's audience",
        token(replace(base, aud=(OTHER_AUD,)), SECRET_A),
        "audience_mismatch",
    )
    # ---- SPEC 1.0 (issue 14 items 4, 8, 11-13) -------------------------------------------
    # §2.1: an issuer sorts each set by UTF-8 bytes. The fields list them in another order:
    # an issuer that sorts by UTF-16 code units would put the emoji before U+FF01.
    utf8_order = ("z", "\u00e9", "\uff01", "\U0001f600")
    assert list(utf8_order) == sorted(utf8_order, key=str.encode)  # noqa: S101
    sorted_claims = Claims(ISS_A, KID_A, "tok-utf8-order", "erin", utf8_order, ())
    sorted_client = mac_client(sorted_claims, SECRET_A)
    cases.append(
        {
            "name": "token_sets_sorted_by_utf8_bytes",
            "description": "scopes sorted by UTF-8 bytes (§2.1): z < é < U+FF01 < U+1F600; "
            "`fields` lists them in reverse, for the issuer to sort",
            "type": "token",
            "mintable": True,
            "issuer_secret": hx(SECRET_A),
            "fields": {**sorted_claims.json(), "scopes": list(reversed(utf8_order))},
            "bytes": hx(sorted_client.cred),
            "frame_key": hx(sorted_client.secret),
            "frame": hx(sorted_client.frame(1, ts, "hi")),
            "now": CRED_NOW,
            "expect": sorted_client.accept(1, ts, "hi"),
        }
    )
    late = token(replace(base, iss=ISS_STRANGER, exp=NOW - 61), SECRET_STRANGER)
    negative(
        "token_exp_before_iat_unknown_issuer",
        "exp < iat under an issuer of no keyring: a shape check, before the issuer (§4)",
        late,
        mal,
        secret=frame_key(SECRET_STRANGER, late),
    )
    negative(
        "token_scope_nested_array",
        "a scope that is itself an array: nothing nests below a [str] (§2); tag valid",
        tok(with_item(6, pack([["chat:read"]]))),
        mal,
    )
    negative(
        "token_version_float",
        "credential version is the float64 1.0: credential_malformed, never "
        "unsupported_version (§4); tag valid",
        tok(with_item(0, pack(1.0))),
        mal,
    )
    alice_cert = bytearray(ALICE_CERT.cred)
    alice_cert[1] = 2  # element 0 of a fixarray: the version
    negative(
        "certificate_version_2",
        "a certificate of version 2: credential_malformed (§4)",
        bytes(alice_cert),
        mal,
        kind=KIND_ED25519,
        ctype="certificate",
    )
    dev_token = token(replace(base, iss=ISS_DEV, kid=KID_SENSOR), SECRET_A)
    negative(
        "token_issuer_only_in_registry",
        "a token of devices.example.com, which has registry entries but no issuer key: "
        "registry entries do not make an issuer known (§4.2)",
        dev_token,
        "unknown_issuer",
        secret=frame_key(SECRET_A, dev_token),
    )
    negative(
        "certificate_issuer_only_in_registry",
        "a certificate of devices.example.com (registry entries only): unknown_issuer (§4.3)",
        certificate(
            replace(base, iss=ISS_DEV, kid=KID_SENSOR), ed25519_public(SEED_CAROL), SEED_SENSOR
        ),
        "unknown_issuer",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_issuer_with_only_hmac_keys",
        "a certificate of partner.example.net, whose only keys are HMAC keys, under a kid it "
        "does not have: the issuer is known (§4.2), the key is not",
        certificate(replace(base, iss=ISS_B, kid="ek-1"), ed25519_public(SEED_CAROL), SEED_ROGUE),
        "unknown_key",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "key_reference_unknown_issuer",
        "a key reference of an issuer in no keyring and no registry: unknown_key, never "
        "unknown_issuer (§4.4)",
        key_reference(ISS_STRANGER, "device-1"),
        "unknown_key",
        kind=KIND_ED25519,
        secret=SEED_SENSOR,
        ctype="key_reference",
    )

    description = (
        "Tokens, certificates and key references with their exact bytes (§4). Every case "
        "has a frame carrying the credential and the verifier's answer, under the verifier "
        "and connection nonce of `setup`."
    )
    return document(description, cases, setup=cred_setup())
