"""nonces.json: minting and checking connection nonces (SPEC.md §5.3)."""

from __future__ import annotations

from gen.common import (
    AUD,
    CONN,
    CONN2,
    FLEET,
    NODE,
    NONCE,
    NOW,
    OTHER_AUD,
    OTHER_FLEET,
    OTHER_NODE,
    TTL,
    Json,
    NonceInputs,
    document,
    fixed,
    flip,
    hx,
    nonce_head,
    nonce_tag,
    num,
    reject,
)

# -- nonces.json ----------------------------------------------------------------------------


def nonces_json() -> Json:
    cases: list[Json] = []
    mints = [
        ("mint_standard", "the standard connection nonce of frames.json", CONN),
        ("mint_second_connection", "another connection of the same server", CONN2),
        (
            "mint_other_node",
            "another node of the fleet, short lifetime",
            NonceInputs(FLEET, AUD, OTHER_NODE, NOW, 60, fixed("other node random", 15)),
        ),
        (
            "mint_unicode_audience",
            "an audience with non-ASCII characters (lp counts UTF-8 bytes)",
            NonceInputs(FLEET, "wß.example/ü", NODE, NOW, TTL, fixed("unicode aud", 15)),
        ),
        (
            "mint_zero_random",
            "all-zero random bytes and node id",
            NonceInputs(FLEET, AUD, bytes(8), NOW, 1, bytes(15)),
        ),
        (
            "mint_fractional_now",
            "the clock 0.875 s past a whole second: the expiry is floor(now) + ttl (SPEC.md "
            "§2, §5.3), not rounded up",
            NonceInputs(FLEET, AUD, NODE, NOW + 0.875, TTL, fixed("fractional now", 15)),
        ),
    ]
    for name, description, inputs in mints:
        cases.append(
            {"name": name, "description": description, "type": "mint", "inputs": inputs.json()}
        )

    def check(
        name: str,
        description: str,
        nonce: bytes,
        now: float,
        expect: Json,
        *,
        fleet: bytes = FLEET,
        audience: str = AUD,
    ) -> None:
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "check",
                "fleet_key": hx(fleet),
                "audience": audience,
                "nonce": hx(nonce),
                "now": num(now),
                "expect": expect,
            }
        )

    valid = {"valid": {"node_id": hx(NODE), "expires": CONN.expires}}
    check(
        "check_valid", "the standard nonce, checked by any server of the fleet", NONCE, NOW, valid
    )
    check(
        "check_valid_just_before_expiry",
        "1/8 s before its expiry",
        NONCE,
        CONN.expires - 0.125,
        valid,
    )
    check(
        "check_other_node_valid",
        "a nonce minted by another node is valid fleet-wide",
        mints[2][2].mint(),
        NOW + 30,
        {"valid": {"node_id": hx(OTHER_NODE), "expires": NOW + 60}},
    )
    check("check_expired_at_expiry", "now == expiry", NONCE, CONN.expires, reject("nonce_expired"))
    check(
        "check_expired_later",
        "a day after expiry",
        NONCE,
        CONN.expires + 86400,
        reject("nonce_expired"),
    )
    check(
        "check_other_fleet",
        "checked with another fleet key",
        NONCE,
        NOW,
        reject("nonce_invalid"),
        fleet=OTHER_FLEET,
    )
    check(
        "check_other_audience",
        "checked for another audience of the same fleet",
        NONCE,
        NOW,
        reject("nonce_invalid"),
        audience=OTHER_AUD,
    )
    for region, offset in (
        ("version", 0),
        ("node_id", 4),
        ("expiry", 16),
        ("random", 20),
        ("tag", 50),
    ):
        check(
            f"check_flipped_{region}",
            f"one bit flipped in the {region} region (byte {offset})",
            flip(NONCE, offset, 2),
            NOW,
            reject("nonce_invalid"),
        )
    head = nonce_head(2, NODE, CONN.expires, CONN.random)
    check(
        "check_version_2_valid_tag",
        "version byte 0x02 with a tag recomputed over it: the version is checked on its own",
        head + nonce_tag(FLEET, AUD, head),
        NOW,
        reject("nonce_invalid"),
    )
    extended = flip(NONCE, 9, 7)  # expiry pushed far into the future, tag now wrong
    check(
        "check_invalid_before_expired",
        "an expired nonce with a wrong tag: nonce_invalid is checked before the expiry",
        flip(NONCE, 40, 0),
        CONN.expires + 1,
        reject("nonce_invalid"),
    )
    check(
        "check_extended_expiry",
        "expiry bytes raised by an attacker: the tag no longer matches",
        extended,
        NOW,
        reject("nonce_invalid"),
    )
    check("check_63_bytes", "one byte short", NONCE[:63], NOW, reject("malformed"))
    check("check_65_bytes", "one byte too many", NONCE + b"\x00", NOW, reject("malformed"))
    check("check_empty", "zero bytes", b"", NOW, reject("malformed"))
    return document("Connection nonces (§5.3): minting with fixed inputs, and checking.", cases)
