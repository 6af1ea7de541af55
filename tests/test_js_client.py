"""The JavaScript client (``clients/js``), run from pytest so that one runner
reports everything ``make test`` runs.

Each test runs a ``node --test`` suite as a subprocess and asserts it passed:

- the conformance suite: every vector of ``vectors/`` (and the codec,
  signer, client and server session unit tests, pure over a fake clock, and
  the WebSocket pump over an in-process loopback), no server needed;
- Node <-> Python: the JS client against the real Python server
  (``clients/js/demo/serve.py``) over loopback: both schemes, reconnect with
  resend, refresh;
- Chromium: the demo page in Debian's headless ``chromium``, driven by
  ``playwright-core``: signed frames verified by the Python server, a
  disallowed origin refused with HTTP 403, a non-extractable private key.

A fourth test is differential: thousands of mutated frames, hellos and
credentials go through both implementations, which must give the same code
for each.

A missing tool (node >= 20, ``clients/js/node_modules``, chromium) skips a
test locally with a loud reason; under ``CI=true`` it fails it instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vector_json import credential_of, verifier_of

from signedws.credential import unverified_credential
from signedws.envelope import decode_hello
from signedws.errors import Rejected
from signedws.keys import Ed25519PublicKey
from signedws.signer import Signer
from signedws.verifier import ConnectionState, Verifier

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "clients" / "js"
VECTORS = ROOT / "vectors"
CI = os.environ.get("CI") == "true"
CHROMIUM = Path(os.environ.get("SIGNEDWS_CHROMIUM", "/usr/bin/chromium"))

Json = dict[str, Any]


def require(ok: bool, reason: str) -> None:
    """Skip loudly when a tool is missing, or fail under CI=true."""
    if ok:
        return
    if CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(f"JS CLIENT NOT TESTED: {reason} (run `bash .ci/run` or see clients/js/README.md)")


def node() -> str:
    """The node executable (>= 20), or skip/fail."""
    path = shutil.which("node")
    require(path is not None, "node is not installed")
    assert path is not None
    # Fixed argument lists, no shell, in all three subprocess calls (S603).
    version = subprocess.run(  # noqa: S603
        [path, "--version"], capture_output=True, text=True, check=True
    )
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    require(major >= 20, f"node {version.stdout.strip()} is older than 20")
    require(
        (JS / "node_modules" / "@msgpack" / "msgpack").is_dir(),
        "clients/js/node_modules is missing (npm ci in clients/js)",
    )
    return path


def run_suite(*files: str, websocket: bool = False, timeout: float = 120) -> str:
    """Run ``node --test`` on ``files`` (under clients/js/test) and assert
    that every test passed; return the output."""
    command = [node()]
    if websocket:
        # Node 20 exposes WebSocket behind this flag (later versions by default).
        command.append("--experimental-websocket")
    command += ["--test", "--test-reporter=tap", *(f"test/{name}" for name in files)]
    env = {**os.environ, "SIGNEDWS_PYTHON": sys.executable}
    result = subprocess.run(  # noqa: S603
        command, cwd=JS, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    counts = dict(re.findall(r"^# (pass|fail|skipped|cancelled) (\d+)$", output, re.MULTILINE))
    summary = ", ".join(f"{counts.get(k, '?')} {k}" for k in ("pass", "fail", "cancelled"))
    print(f"node --test {' '.join(files)}: {summary}")
    for line in re.findall(r"^# .*browser: .*$", output, re.MULTILINE):
        print(line)
    failed = [line for line in output.splitlines() if re.match(r"\s*not ok ", line)]
    assert result.returncode == 0, (
        f"node --test failed ({summary}):\n" + "\n".join(failed) + ("\n" + output[-4000:])
    )
    assert int(counts.get("pass", 0)) > 0, output[-4000:]
    assert counts.get("fail") == "0", output[-4000:]
    return output


def test_node_conformance() -> None:
    """Every conformance vector, the codec, the signer and the client and
    server sessions (pure, fake clock) pass under Node."""
    run_suite(
        "vectors.test.js",
        "issuance.test.js",
        "broadcast.test.js",
        "codec.test.js",
        "signer.test.js",
        "client.test.js",
        "server.test.js",
        "websocket.test.js",
    )


def test_node_session_vectors() -> None:
    """vectors/sessions.json (SPEC.md §7.3, §10) through the JS ClientSession and,
    once the JS port has it, ServerSession."""
    run_suite("sessions.test.js")


def test_node_python() -> None:
    """The Node client talks to the real Python server: mac, ed25519,
    reconnect with resend, refresh without reconnecting."""
    run_suite("python.test.js", websocket=True)


def test_chromium() -> None:
    """The demo page in headless Chromium: verified signed frames, CSWSH
    refused with 403, a non-extractable private key."""
    require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    node()
    require(
        (JS / "node_modules" / "playwright-core").is_dir(),
        "playwright-core is missing (npm ci in clients/js)",
    )
    run_suite("browser.test.js")


# -- differential: the same code from both implementations ---------------------


def load(name: str) -> Json:
    data: Json = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def case(name: str, file: str) -> Json:
    found: Json = next(c for c in load(file)["cases"] if c["name"] == name)
    return found


def mutations(data: bytes) -> Iterator[bytes]:
    """Every byte flipped two ways, every truncation, two extensions."""
    for i in range(len(data)):
        for mask in (0x01, 0xFF):
            yield data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]
    for i in range(len(data)):
        yield data[:i]
    yield data + b"\x00"
    yield data + b"\xc0"


#: Values MessagePack can hold but signedws never uses, in the version slot
#: and in a field: both sides must give the same code.
ODD_VALUES = ("cb3ff0000000000000", "ca3f800000", "80", "810101", "c70001", "c3", "a131", "ff")


def python_outcome(item: Json, verifiers: dict[str, Verifier]) -> str:
    data = bytes.fromhex(item["hex"])
    try:
        if item["kind"] == "client_frame":
            c = case(item["case"], "frames.json")
            if item["case"] not in verifiers:
                verifiers[item["case"]] = verifier_of(c["verifier"])
            state = ConnectionState(bytes.fromhex(c["nonce"]["bytes"]))
            verifiers[item["case"]].verify(data, state, now=c["steps"][0]["now"])
        elif item["kind"] == "server_frame":
            c = case(item["case"], "server_frames.json")
            credentials = [credential_of(x) for x in c["credentials"]]
            signer = Signer.from_hello(
                bytes.fromhex(c["hello"]),
                credentials[0],
                audience=c["audience"],
                now=c["now"],
                server_keys={
                    k: Ed25519PublicKey(bytes.fromhex(v)) for k, v in c["server_keys"].items()
                },
                stream=bytes.fromhex(c["stream"]),
            )
            for credential in credentials[1:]:
                signer.refresh(credential)
            for _ in range(c["sent"]):
                signer.sign(None, now=c["now"])
            signer.verify(data)
        elif item["kind"] == "hello":
            decode_hello(data)
        else:
            unverified_credential(data)
    except Rejected as exc:
        return exc.code.id
    return "accept"


def corpus() -> list[Json]:
    """Mutations of one valid input of each kind, and odd values spliced in."""
    frames = load("frames.json")["cases"]
    mac = case("mac_str_payload", "frames.json")
    ed = next(
        c
        for c in frames
        if c["steps"][0]["frame"].startswith("9a0102") and "accept" in c["steps"][0]["expect"]
    )
    seeds: list[Json] = [
        {"kind": "client_frame", "case": mac["name"], "hex": mac["steps"][0]["frame"]},
        {"kind": "client_frame", "case": ed["name"], "hex": ed["steps"][0]["frame"]},
    ]
    for name in ("server_mac_sequence", "server_ed25519_sequence"):
        c = case(name, "server_frames.json")
        seeds.append({"kind": "server_frame", "case": name, "hex": c["steps"][0]["frame"]})
    seeds.append({"kind": "hello", "hex": case("hello_valid", "server_frames.json")["hello"]})
    for c in load("credentials.json")["cases"]:
        if c["name"] == "token_alice" or (c["type"] == "certificate" and c["mintable"]):
            seeds.append({"kind": "credential", "hex": c["bytes"]})
            if c["type"] == "certificate":
                break
    items = []
    for seed in seeds:
        data = bytes.fromhex(seed["hex"])
        variants = list(mutations(data))
        # data[0] is the array header, data[1] the version: replace the version,
        # then the second element, by each odd value.
        for odd in ODD_VALUES:
            variants.append(data[:1] + bytes.fromhex(odd) + data[2:])
            variants.append(data[:2] + bytes.fromhex(odd) + data[3:])
        items += [{**seed, "hex": variant.hex()} for variant in variants]
    return items


def test_same_codes_as_python() -> None:
    """For thousands of mutated inputs of every kind, the JavaScript and the
    Python implementations give the same rejection code (or both accept)."""
    items = corpus()
    result = subprocess.run(  # noqa: S603
        [node(), "test/support/parity.js"],
        cwd=JS,
        input=json.dumps({"items": items}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    js = json.loads(result.stdout)
    verifiers: dict[str, Verifier] = {}
    python = [python_outcome(item, verifiers) for item in items]
    differ = [
        (item["kind"], item["hex"], p, j)
        for item, p, j in zip(items, python, js, strict=True)
        if p != j
    ]
    print(f"{len(items)} inputs, {len(set(python))} distinct outcomes, {len(differ)} differ")
    assert differ == []
