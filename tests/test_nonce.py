"""Tests for signedws.nonce: connection nonces minted and checked by a fleet (SPEC.md §5.3)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from helpers import AUDIENCE, FLEET_KEY, NODE_ID, NOW, flip_bit, seeded_random

from signedws.errors import Code, Rejected, UsageError
from signedws.keys import HMACKey
from signedws.nonce import NonceInfo, NonceKey, unverified_expiry

TTL = 600
EXPIRES = int(NOW) + TTL


def mint(key: NonceKey | None = None, seed: bytes = b"r") -> bytes:
    """A nonce from the fixed fleet key, node id, clock and a seeded random source."""
    key = key or NonceKey(FLEET_KEY, AUDIENCE)
    return key.mint(node_id=NODE_ID, now=NOW, ttl=TTL, random=seeded_random(seed))


def spec_tag(fleet_secret: bytes, audience: str, head: bytes) -> bytes:
    """The nonce tag computed from SPEC.md §3.2 and §5.3 without signedws."""
    nonce_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"signedws/v1 nonce-key"
    ).derive(fleet_secret)
    aud = audience.encode()
    message = b"signedws/v1 nonce\x00" + len(aud).to_bytes(2, "big") + aud + head
    return hmac.digest(nonce_key, message, hashlib.sha256)


# Minting


def test_mint_with_fixed_randomness_is_deterministic() -> None:
    """The same inputs and the same random bytes give the same nonce."""
    assert mint() == mint()
    assert mint(seed=b"r") != mint(seed=b"s")


def test_mint_lays_out_the_nonce_as_specified() -> None:
    """version 1 | node id | expiry (big-endian seconds) | 15 random bytes | HMAC tag."""
    nonce = mint()
    random_bytes = seeded_random(b"r")(15)
    assert len(nonce) == 64
    assert nonce[0] == 1
    assert nonce[1:9] == NODE_ID
    assert nonce[9:17] == EXPIRES.to_bytes(8, "big")
    assert nonce[17:32] == random_bytes
    assert nonce[32:] == spec_tag(FLEET_KEY.to_bytes(), AUDIENCE, nonce[:32])


def test_mint_truncates_fractional_now() -> None:
    """The expiry is whole seconds: now's fraction is dropped before adding the ttl."""
    key = NonceKey(FLEET_KEY, AUDIENCE)
    nonce = key.mint(node_id=NODE_ID, now=NOW + 0.999, ttl=TTL, random=bytes)
    assert unverified_expiry(nonce) == EXPIRES


def test_unverified_expiry_reads_bytes_9_to_17() -> None:
    """unverified_expiry returns the expiry field without looking at the tag."""
    nonce = bytearray(mint())
    nonce[40] ^= 1  # break the tag: the expiry is still read
    assert unverified_expiry(bytes(nonce)) == EXPIRES


@pytest.mark.parametrize("node_id", [b"", b"1234567", b"123456789", "node-001", None])
def test_mint_refuses_a_node_id_that_is_not_8_bytes(node_id: object) -> None:
    """A node id is exactly 8 bytes."""
    key = NonceKey(FLEET_KEY, AUDIENCE)
    with pytest.raises(UsageError, match="node_id"):
        key.mint(node_id=node_id, now=NOW, ttl=TTL, random=bytes)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [0, -1])
def test_mint_refuses_a_ttl_below_one_second(ttl: int) -> None:
    """The nonce lifetime is at least one second."""
    key = NonceKey(FLEET_KEY, AUDIENCE)
    with pytest.raises(UsageError, match="ttl"):
        key.mint(node_id=NODE_ID, now=NOW, ttl=ttl, random=bytes)


@pytest.mark.parametrize("audience", ["", "x" * 256, "é" * 128, 7, None, b"aud"])
def test_nonce_key_refuses_an_invalid_audience(audience: object) -> None:
    """The audience is a str of 1 to 255 UTF-8 bytes (SPEC.md §2.1)."""
    with pytest.raises(UsageError, match="audience"):
        NonceKey(FLEET_KEY, audience)  # type: ignore[arg-type]


def test_nonce_key_repr_hides_the_key() -> None:
    """repr shows no key material."""
    assert repr(NonceKey(FLEET_KEY, AUDIENCE)) == "NonceKey(<secret>)"


# Checking


def test_check_returns_node_id_and_expiry() -> None:
    """A fresh nonce of this fleet and audience checks out to its node id and expiry."""
    info = NonceKey(FLEET_KEY, AUDIENCE).check(mint(), now=NOW)
    assert info == NonceInfo(NODE_ID, EXPIRES)


def test_check_by_another_server_of_the_fleet() -> None:
    """Any holder of the fleet key and audience recognises the nonce: no shared state."""
    minted = mint(NonceKey(HMACKey(FLEET_KEY.to_bytes()), AUDIENCE))
    assert NonceKey(FLEET_KEY, AUDIENCE).check(minted, now=NOW).node_id == NODE_ID


@pytest.mark.parametrize("size", [0, 1, 32, 63, 65, 128])
def test_check_refuses_wrong_length_as_malformed(size: int) -> None:
    """A nonce that is not 64 bytes is malformed."""
    nonce = (mint() * 2)[:size]
    with pytest.raises(Rejected) as exc:
        NonceKey(FLEET_KEY, AUDIENCE).check(nonce, now=NOW)
    assert exc.value.code is Code.MALFORMED


def test_check_refuses_a_nonce_of_another_fleet() -> None:
    """A nonce minted under another fleet key is nonce_invalid."""
    other = mint(NonceKey(HMACKey(b"\xff" * 32), AUDIENCE))
    with pytest.raises(Rejected) as exc:
        NonceKey(FLEET_KEY, AUDIENCE).check(other, now=NOW)
    assert exc.value.code is Code.NONCE_INVALID


def test_check_refuses_a_nonce_for_another_audience() -> None:
    """A nonce minted for another audience of the same fleet is nonce_invalid."""
    other = mint(NonceKey(FLEET_KEY, "wss://other.example.test/ws"))
    with pytest.raises(Rejected) as exc:
        NonceKey(FLEET_KEY, AUDIENCE).check(other, now=NOW)
    assert exc.value.code is Code.NONCE_INVALID


def test_check_refuses_every_single_bit_flip() -> None:
    """Flipping any one of the 512 bits (version, node, expiry, random, tag) is nonce_invalid."""
    key = NonceKey(FLEET_KEY, AUDIENCE)
    nonce = mint()
    codes = set()
    for i in range(len(nonce) * 8):
        with pytest.raises(Rejected) as exc:
            key.check(flip_bit(nonce, i), now=NOW)
        codes.add(exc.value.code)
    assert codes == {Code.NONCE_INVALID}


def test_check_refuses_another_version_even_with_a_valid_tag() -> None:
    """A nonce whose version byte is not 1 is nonce_invalid, whatever its tag."""
    head = bytes([2]) + mint()[1:32]
    nonce = head + spec_tag(FLEET_KEY.to_bytes(), AUDIENCE, head)
    with pytest.raises(Rejected) as exc:
        NonceKey(FLEET_KEY, AUDIENCE).check(nonce, now=NOW)
    assert exc.value.code is Code.NONCE_INVALID


def test_check_refuses_an_expired_nonce() -> None:
    """A nonce is valid while now < expiry: at the expiry second it is nonce_expired."""
    key = NonceKey(FLEET_KEY, AUDIENCE)
    nonce = mint()
    assert key.check(nonce, now=EXPIRES - 0.001).expires == EXPIRES
    for now in (EXPIRES, EXPIRES + 1, EXPIRES + 10**6):
        with pytest.raises(Rejected) as exc:
            key.check(nonce, now=now)
        assert exc.value.code is Code.NONCE_EXPIRED


@pytest.mark.parametrize("drawn", [b"", bytes(14), bytes(16), "x" * 15])
def test_mint_refuses_a_random_source_of_the_wrong_size(drawn: object) -> None:
    """The random source must give exactly 15 bytes: a short one would shorten the nonce."""
    key = NonceKey(FLEET_KEY, AUDIENCE)
    with pytest.raises(UsageError, match="15 bytes"):
        key.mint(node_id=NODE_ID, now=NOW, ttl=TTL, random=lambda n: drawn)  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize(("now", "ttl"), [(2**64, 1), (-10, 1), (NOW, 1.5), (NOW, "60")])
def test_mint_refuses_an_expiry_that_does_not_fit(now: float, ttl: object) -> None:
    """ttl is whole seconds and the expiry must fit the nonce's 8 bytes."""
    key = NonceKey(FLEET_KEY, AUDIENCE)
    with pytest.raises(UsageError):
        key.mint(node_id=NODE_ID, now=now, ttl=ttl, random=seeded_random(b"r"))  # type: ignore[arg-type]
