"""signedws's verifier beside its physical floors and the JWT peers, in one run.

Usage::

    python benchmarks/compare.py [--json PATH] [--budget SECONDS] [--quick]

Method
------
Every row is a function that performs one operation (verify one frame, decode
one envelope, verify one JWT proof ...) over pre-built inputs. After a
calibration pass each row gets a chunk size ``n`` such that one chunk lasts
about `CHUNK_SECONDS`. Then rounds run until the time budget or `MAX_ROUNDS`
is reached; in every round each row runs one chunk, in a freshly shuffled
order. A row's cost in a round is its chunk time divided by ``n``.

Ratios are *paired*: a row's cost in round ``r`` is divided by its reference's
cost in the same round ``r``, and the median over rounds is reported (with the
10th and 90th percentiles). Whatever slows the machine during a round (other
processes, frequency changes) slows both sides of the pair. ``min/min``, the
ratio of the two rows' fastest rounds, is reported beside it.

Rows
----
floor.*     what no implementation can undercut, on the very frames the
            signedws rows verify: msgpack decode alone; decode + HMAC-SHA256
            from a context holding the precomputed keyed SHA-256 states
            (pyca/cryptography's, the cheapest from Python: copy, update,
            verify) -- the least a `mac` verify can cost; Ed25519 verify
            through libsodium (the cffi call PyNaCl's own wrapper makes, with
            no output buffer) and through OpenSSL (pyca/cryptography), signed
            inputs precomputed. Not one fixed message: Ed25519 verification is
            variable-time in public values and its cost differs by a few
            percent between messages, so the floors verify the same 100
            messages as the rows they are compared with.
context.*   for reading the table: signedws's own envelope decode (SPEC.md
            §6.4 steps 2-4, the reference for cheap rejections), decode + HMAC
            from two hashlib keyed SHA-256 states, and PyNaCl's public
            ``crypto_sign_open``.
signedws.*  the real `Verifier`, steady state: warm credential cache, a bound
            connection, frames with consecutive counters.
reject.*    the real `Verifier` refusing frames: what an attacker can make a
            server pay per frame.
jwt.*       the peers of `peer.py`: a DPoP-style proof JWT per message.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgpack
import nacl.bindings
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.asymmetric import ed25519 as c_ed25519
from nacl._sodium import ffi as sodium_ffi  # type: ignore[import-not-found]  # cffi .so, no stub
from nacl._sodium import lib as sodium_lib  # the floor: the call PyNaCl's wrappers make

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer
import report
import scenario
from scenario import NOW, Connection, Scenario

from signedws import Rejected, Signer
from signedws.envelope import CLIENT_LABEL, length_prefixed, parse_client_frame
from signedws.errors import Code

CHUNK_SECONDS: Final = 0.004
MAX_ROUNDS: Final = 300
MIN_ROUNDS: Final = 15
DEFAULT_BUDGET: Final = 60.0
MAX_CHUNK: Final = 4000
#: The Ed25519 rows (verify and floors) all go through the same 100 frames.
ED_FRAMES: Final = 100


@dataclass
class Row:
    """One benchmark row: ``build(n)`` returns a function that runs ``n`` operations."""

    name: str
    group: str
    description: str
    build: Callable[[int], Callable[[], None]]
    reference: str | None = None
    fixed_n: int | None = None  # no calibration: exactly this many operations per chunk
    n: int = 0
    chunk: Callable[[], None] | None = None
    samples: list[float] = field(default_factory=list)  # seconds per operation, per round


# -- inputs -------------------------------------------------------------------------


def _hmac_states(key: bytes, prefix: bytes) -> tuple[object, object]:
    """The two keyed SHA-256 states of HMAC (RFC 2104), inner one past ``prefix``."""
    block = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    inner.update(prefix)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner, outer


class Bench:
    """Builds every row over one `Scenario` per backend."""

    def __init__(self) -> None:
        self.sodium = Scenario("libsodium")
        self.openssl = Scenario("openssl")
        self.mac = self.sodium.connection("mac")
        self.ed = self.sodium.connection("ed25519")
        self.ed_openssl = self.openssl.connection("ed25519")
        for scn, conn in ((self.sodium, self.mac), (self.sodium, self.ed)):
            scn.warm(conn)
        self.openssl.warm(self.ed_openssl)
        self.prefix = CLIENT_LABEL + length_prefixed(scenario.AUDIENCE.encode())
        self._frames: dict[tuple[int, int], list[bytes]] = {}

    # Pre-signed frames with consecutive counters, shared by rows of one connection.
    def frames(self, conn: Connection, n: int) -> list[bytes]:
        key = (id(conn), n)
        if key not in self._frames:
            conn.signer._counter = 0  # every chunk restarts at counter 1 (rewind)
            self._frames[key] = conn.sign(n)
        return self._frames[key]

    def verify_chunk(self, conn: Connection, n: int) -> Callable[[], None]:
        frames = self.frames(conn, n)
        verify = conn.verifier.verify
        state = conn.state

        def chunk() -> None:
            state.highest = 0
            for frame in frames:
                verify(frame, state, now=NOW)

        chunk()  # check it runs
        return chunk

    def reject_chunk(
        self, conn: Connection, frame: bytes, code: Code, n: int
    ) -> Callable[[], None]:
        frames = [frame] * n
        verify = conn.verifier.verify
        state = conn.state
        got: Code | None = None
        try:
            verify(frame, state, now=NOW)
        except Rejected as exc:
            got = exc.code
        if got is not code:
            raise AssertionError(f"expected {code}, got {got}")

        def chunk() -> None:
            for f in frames:
                try:  # noqa: SIM105 - contextlib.suppress would add its own cost
                    verify(f, state, now=NOW)
                except Rejected:
                    pass

        return chunk

    # -- floors ---------------------------------------------------------------------

    def floor_decode(self, n: int) -> Callable[[], None]:
        frames = self.frames(self.mac, n)
        unpackb = msgpack.unpackb

        def chunk() -> None:
            for frame in frames:
                unpackb(frame)

        return chunk

    def floor_mac(self, n: int) -> Callable[[], None]:
        frames = self.frames(self.mac, n)
        frame_key = self.mac.signer.credential.frame_key.to_bytes()  # type: ignore[union-attr]
        keyed = c_hmac.HMAC(frame_key, hashes.SHA256())
        keyed.update(self.prefix)
        copy = keyed.copy
        unpackb = msgpack.unpackb
        check = copy()
        check.update(frames[0][:-34])
        check.verify(frames[0][-32:])

        def chunk() -> None:
            for frame in frames:
                fields = unpackb(frame)
                mac = copy()
                mac.update(frame[:-34])
                mac.verify(fields[9])

        return chunk

    def context_mac_hashlib(self, n: int) -> Callable[[], None]:
        frames = self.frames(self.mac, n)
        frame_key = self.mac.signer.credential.frame_key.to_bytes()  # type: ignore[union-attr]
        inner, outer = _hmac_states(frame_key, self.prefix)
        unpackb = msgpack.unpackb
        compare = hmac.compare_digest
        icopy = inner.copy  # type: ignore[attr-defined]
        ocopy = outer.copy  # type: ignore[attr-defined]
        # Check that the floor computes the real tag.
        h = icopy()
        h.update(frames[0][:-34])
        o = ocopy()
        o.update(h.digest())
        assert o.digest() == frames[0][-32:]

        def chunk() -> None:
            for frame in frames:
                fields = unpackb(frame)
                h = icopy()
                h.update(frame[:-34])
                o = ocopy()
                o.update(h.digest())
                compare(o.digest(), fields[9])

        return chunk

    def _ed_inputs(self, n: int, conn: Connection | None = None) -> list[tuple[bytes, bytes]]:
        """(signature, signed input) of the frames the ed25519 verify rows verify.

        Not one fixed message: Ed25519 verification is variable-time in the
        public scalars, and its cost differs by a few percent from message to
        message, so the floors go through the very messages the rows do.
        """
        frames = self.frames(conn or self.ed, n)
        return [(f[-64:], self.prefix + f[:-66]) for f in frames]

    def floor_sodium(self, n: int) -> Callable[[], None]:
        public = scenario.CLIENT_KEY.public_key().to_bytes()
        signed = [
            (signature + message, len(signature) + len(message))
            for signature, message in self._ed_inputs(n)
        ]
        null = sodium_ffi.NULL
        open_ = sodium_lib.crypto_sign_open
        assert all(open_(null, null, sm, size, public) == 0 for sm, size in signed)
        sm, size = signed[0]
        assert open_(null, null, sm[:-1] + bytes([sm[-1] ^ 1]), size, public) != 0

        def chunk() -> None:
            for sm, size in signed:
                open_(null, null, sm, size, public)

        return chunk

    def floor_openssl(self, n: int) -> Callable[[], None]:
        public = scenario.CLIENT_KEY.public_key().to_bytes()
        verify = c_ed25519.Ed25519PublicKey.from_public_bytes(public).verify
        inputs = self._ed_inputs(n, self.ed_openssl)

        def chunk() -> None:
            for signature, message in inputs:
                verify(signature, message)

        return chunk

    def context_pynacl(self, n: int) -> Callable[[], None]:
        public = scenario.CLIENT_KEY.public_key().to_bytes()
        signed = [signature + message for signature, message in self._ed_inputs(n)]
        open_ = nacl.bindings.crypto_sign_open

        def chunk() -> None:
            for sm in signed:
                open_(sm, public)

        return chunk

    def context_parse(self, n: int) -> Callable[[], None]:
        frames = self.frames(self.mac, n)

        def chunk() -> None:
            for frame in frames:
                parse_client_frame(frame)

        return chunk

    # -- rejections -----------------------------------------------------------------

    def rejection_rows(self) -> list[Row]:
        conn = self.sodium.connection("mac")
        self.sodium.warm(conn)
        conn.state.highest = 1_000_000  # frames with a lower counter are replays
        honest = conn.sign(1)[0]
        conn.signer._counter = 2_000_000
        fresh = conn.sign(1)[0]
        other = self.sodium.connection("mac")
        wrong_nonce = other.sign(1)[0]
        hello = self.sodium.verifier.hello(conn.state, now=NOW)
        rogue = Signer.from_hello(
            hello, scenario.rogue_credential(), audience=scenario.AUDIENCE, now=NOW
        )
        rogue._counter = 3_000_000
        unknown = rogue.sign(scenario.PAYLOAD, now=NOW)
        fields = msgpack.unpackb(fresh)
        fields[1] = 7
        malformed = msgpack.packb(fields)
        ed_conn = self.sodium.connection("ed25519")
        self.sodium.warm(ed_conn)
        ed_frame = ed_conn.sign(1)[0]
        tampered = scenario.flip(ed_frame, len(ed_frame) - 70)  # a payload byte
        cases = [
            ("garbage", "random bytes", scenario.garbage(len(fresh)), Code.MALFORMED),
            ("malformed", "decodes, wrong kind", malformed, Code.MALFORMED),
            ("wrong_nonce", "another connection's frame", wrong_nonce, Code.NONCE_MISMATCH),
            ("replay", "counter already accepted", honest, Code.REPLAY),
            ("unknown_credential", "token of an unknown issuer", unknown, Code.UNKNOWN_ISSUER),
            (
                "bad_tag",
                "mac frame, tag flipped",
                scenario.flip(fresh, len(fresh) - 1),
                Code.BAD_TAG,
            ),
        ]

        def reject(frame: bytes, code: Code) -> Callable[[int], Callable[[], None]]:
            return lambda n: self.reject_chunk(conn, frame, code, n)

        rows = [
            Row(f"reject.{name}", "reject", what, reject(frame, code), reference="context.parse")
            for name, what, frame, code in cases
        ]
        rows[-1].reference = "floor.mac"
        rows.append(
            Row(
                "reject.bad_signature",
                "reject",
                "ed25519 frame, payload byte flipped",
                lambda n: self.reject_chunk(ed_conn, tampered, Code.BAD_SIGNATURE, n),
                reference="floor.ed25519.libsodium",
            )
        )
        return rows

    # -- peers ----------------------------------------------------------------------

    def peer_row(self, library: peer.Library, algorithm: peer.Algorithm) -> Row:
        keys = peer.PeerKeys()
        nonce = peer.b64url(self.mac.state.nonce)
        messages_by_n: dict[int, list[bytes]] = {}

        def build(n: int) -> Callable[[], None]:
            if n not in messages_by_n:
                messages_by_n[n] = peer.make_proofs(
                    algorithm, keys, nonce=nonce, payload=scenario.PAYLOAD, now=NOW, count=n
                )
            messages = messages_by_n[n]
            server = peer.PeerServer(library, algorithm, keys, nonce=nonce)
            verify = server.verify

            def chunk() -> None:
                server.highest = 0
                for message in messages:
                    verify(message, now=NOW)

            chunk()
            return chunk

        reference = "signedws.ed25519.libsodium" if algorithm == "EdDSA" else "signedws.mac"
        return Row(
            f"jwt.{library}.{algorithm}",
            "peer",
            f"{library} {algorithm} proof JWT + claim checks",
            build,
            reference=reference,
        )

    def rows(self) -> list[Row]:
        rows = [
            Row("floor.decode", "floor", "msgpack.unpackb of the frame", self.floor_decode),
            Row(
                "floor.mac",
                "floor",
                "decode + HMAC-SHA256 from a keyed context (cryptography): copy, update, verify",
                self.floor_mac,
            ),
            Row(
                "context.mac.hashlib",
                "context",
                "decode + HMAC-SHA256 from two hashlib keyed SHA-256 states",
                self.context_mac_hashlib,
                reference="floor.mac",
            ),
            Row(
                "floor.ed25519.libsodium",
                "floor",
                "libsodium crypto_sign_open through cffi, signed inputs precomputed",
                self.floor_sodium,
            ),
            Row(
                "floor.ed25519.openssl",
                "floor",
                "OpenSSL Ed25519 verify through cryptography, inputs precomputed",
                self.floor_openssl,
            ),
            Row(
                "context.parse",
                "context",
                "signedws envelope decode (§6.4 steps 2-4)",
                self.context_parse,
                reference="floor.decode",
            ),
            Row(
                "context.pynacl",
                "context",
                "PyNaCl's public crypto_sign_open, signed inputs precomputed",
                self.context_pynacl,
                reference="floor.ed25519.libsodium",
            ),
            Row(
                "signedws.mac",
                "signedws",
                "Verifier.verify, mac frame",
                lambda n: self.verify_chunk(self.mac, n),
                reference="floor.mac",
            ),
            Row(
                "signedws.ed25519.libsodium",
                "signedws",
                "Verifier.verify, ed25519 frame, libsodium",
                lambda n: self.verify_chunk(self.ed, n),
                reference="floor.ed25519.libsodium",
            ),
            Row(
                "signedws.ed25519.openssl",
                "signedws",
                "Verifier.verify, ed25519 frame, OpenSSL",
                lambda n: self.verify_chunk(self.ed_openssl, n),
                reference="floor.ed25519.openssl",
            ),
        ]
        for row in rows:
            if "ed25519" in row.name or row.name == "context.pynacl":
                row.fixed_n = ED_FRAMES
        rows += self.rejection_rows()
        rows += [self.peer_row(lib, alg) for alg in peer.ALGORITHMS for lib in peer.LIBRARIES]
        return rows


# -- measurement --------------------------------------------------------------------


def calibrate(row: Row, *, quick: bool) -> None:
    """Pick ``n`` so that one chunk lasts about CHUNK_SECONDS, and build it."""
    if row.fixed_n:
        row.n = row.fixed_n
    else:
        probe = row.build(8)
        probe()
        start = time.perf_counter()
        probe()
        per_op = (time.perf_counter() - start) / 8
        target = CHUNK_SECONDS / (4 if quick else 1)
        row.n = max(4, min(MAX_CHUNK, int(target / max(per_op, 1e-9))))
    row.chunk = row.build(row.n)


def measure(rows: list[Row], *, budget: float, max_rounds: int, seed: int = 1) -> int:
    """Interleaved rounds until ``budget`` seconds or ``max_rounds``; returns the rounds run."""
    order = list(rows)
    shuffle = random.Random(seed).shuffle  # noqa: S311 - an order, not a secret
    clock = time.perf_counter
    deadline = clock() + budget
    rounds = 0
    while rounds < max_rounds and (rounds < MIN_ROUNDS or clock() < deadline):
        shuffle(order)
        gc.collect()
        for row in order:
            chunk = row.chunk
            assert chunk is not None
            start = clock()
            chunk()
            row.samples.append((clock() - start) / row.n)
        rounds += 1
    return rounds


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def paired(a: Row, b: Row) -> dict[str, float]:
    """Statistics of a's cost over b's, round by round."""
    ratios = [x / y for x, y in zip(a.samples, b.samples, strict=True)]
    return {
        "median": statistics.median(ratios),
        "p10": _quantile(ratios, 0.1),
        "p90": _quantile(ratios, 0.9),
        "min_over_min": min(a.samples) / min(b.samples),
    }


def summarize(rows: list[Row], rounds: int) -> dict[str, object]:
    """Per-row costs, paired ratios to each row's reference, and the issue's targets."""
    by_name = {row.name: row for row in rows}
    table = []
    for row in rows:
        entry: dict[str, object] = {
            "name": row.name,
            "group": row.group,
            "description": row.description,
            "n": row.n,
            "median_ns": statistics.median(row.samples) * 1e9,
            "min_ns": min(row.samples) * 1e9,
            "p10_ns": _quantile(row.samples, 0.1) * 1e9,
            "p90_ns": _quantile(row.samples, 0.9) * 1e9,
        }
        if row.reference and row.reference in by_name:
            entry["reference"] = row.reference
            entry["vs_reference"] = paired(row, by_name[row.reference])
        table.append(entry)
    return {"rounds": rounds, "rows": table, "targets": targets(by_name)}


def fastest_peer(by_name: dict[str, Row], algorithm: str) -> Row:
    """The JWT peer with the lowest median cost for ``algorithm``."""
    peers = [r for r in by_name.values() if r.group == "peer" and r.name.endswith(algorithm)]
    return min(peers, key=lambda r: statistics.median(r.samples))


def _target(what: str, op: str, bound: float, stats: dict[str, float]) -> dict[str, object]:
    value = stats["median"]
    met = value <= bound if op == "<=" else value >= bound
    return {"target": what, "op": op, "bound": bound, "value": value, "stats": stats, "met": met}


CHEAP_REJECTIONS: Final = ("garbage", "malformed", "wrong_nonce", "replay", "unknown_credential")


def targets(by_name: dict[str, Row]) -> list[dict[str, object]]:
    """The targets of issue 4 that this script measures (needs every row)."""
    needed = ["signedws.mac", "signedws.ed25519.libsodium", "context.parse", "floor.decode"]
    if any(name not in by_name for name in needed) or not any(
        r.group == "peer" for r in by_name.values()
    ):
        return []
    hs = fastest_peer(by_name, "HS256")
    ed = fastest_peer(by_name, "EdDSA")
    mac = by_name["signedws.mac"]
    sodium = by_name["signedws.ed25519.libsodium"]
    decode = by_name["context.parse"]
    result = [
        _target(
            "mac verify / its floor (decode + precomputed-key HMAC)",
            "<=",
            2.0,
            paired(mac, by_name["floor.mac"]),
        ),
        _target(f"fastest JWT HS256 peer ({hs.name}) / mac verify", ">=", 15.0, paired(hs, mac)),
        _target(
            "ed25519 verify (libsodium) / libsodium floor",
            "<=",
            1.05,
            paired(sodium, by_name["floor.ed25519.libsodium"]),
        ),
        _target(
            f"fastest JWT EdDSA peer ({ed.name}) / ed25519 verify (libsodium)",
            ">=",
            2.3,
            paired(ed, sodium),
        ),
    ]
    for name in CHEAP_REJECTIONS:
        row = by_name[f"reject.{name}"]
        target = _target(f"reject.{name} / envelope decode", "<=", 3.0, paired(row, decode))
        target["vs_msgpack_decode"] = paired(row, by_name["floor.decode"])
        result.append(target)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the results as JSON to this path")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="seconds of rounds")
    parser.add_argument("--rounds", type=int, default=MAX_ROUNDS, help="at most this many rounds")
    parser.add_argument("--quick", action="store_true", help="short chunks, a few seconds")
    parser.add_argument("--only", help="comma-separated row name prefixes (plus their references)")
    args = parser.parse_args(argv)

    peer.self_check()
    rows = Bench().rows()
    if args.only:
        wanted = tuple(args.only.split(","))
        keep = {r.name for r in rows if r.name.startswith(wanted)}
        keep |= {r.reference for r in rows if r.name in keep and r.reference}
        rows = [r for r in rows if r.name in keep]
    load_before = report.load_average()
    started = time.time()
    for row in rows:
        calibrate(row, quick=args.quick)
    gc.freeze()
    budget = min(args.budget, 5.0) if args.quick else args.budget
    rounds = measure(rows, budget=budget, max_rounds=args.rounds)
    result = summarize(rows, rounds)
    result["chunk_seconds"] = CHUNK_SECONDS
    result["seconds"] = time.time() - started
    result["load_average"] = {"before": load_before, "after": report.load_average()}
    result["environment"] = report.environment()
    print(report.compare_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
