#!/usr/bin/env python3
"""Generate the signedws conformance vectors (SPEC.md §12).

Run ``python vectors/generate.py``: it writes ``keys.json``, ``credentials.json``,
``nonces.json``, ``frames.json``, ``server_frames.json``, ``ed25519_rules.json`` and
``sessions.json`` next to itself. The output is deterministic: every key, seed, nonce, clock and
credential id is fixed below, Ed25519 signatures are deterministic, and JSON is
written with a fixed key order.

This script is a second, independent implementation of the generating side of
SPEC.md. It deliberately does not import ``signedws``: it uses only msgpack,
hmac/hashlib, cryptography's HKDF and PyNaCl, so that a disagreement between
the spec and the library shows up as a failing vector test rather than being
copied into the vectors. Expected rejection codes are worked out by hand from
SPEC.md §6.4 / §7.2 (the first failing step wins) and written next to each case.

The generator is split per output file, each module next to the SPEC.md sections
it pins: ``gen/common.py`` (constants, primitives, fixed inputs, the builders of
credentials, nonces and frames, the verifier configuration), ``gen/keys.py``,
``gen/credentials.py``, ``gen/nonces.py``, ``gen/frames.py``,
``gen/server_frames.py``, ``gen/ed25519_rules.py`` and ``gen/sessions.py`` (the
per-connection rules of §7.3 and §10, from its own model of them). This file only
writes them.

See ``vectors/README.md`` for the file format.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen.common import HERE, Json
from gen.credentials import credentials_json
from gen.ed25519_rules import ed25519_rules_json
from gen.frames import frames_json
from gen.keys import keys_json
from gen.nonces import nonces_json
from gen.server_frames import server_frames_json
from gen.sessions import sessions_json

# -- main --------------------------------------------------------------------------------


def write(name: str, data: Json) -> None:
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    (HERE / name).write_text(text, encoding="utf-8")


def main() -> None:
    write("keys.json", keys_json())
    write("credentials.json", credentials_json())
    write("nonces.json", nonces_json())
    write("frames.json", frames_json())
    write("server_frames.json", server_frames_json())
    write("ed25519_rules.json", ed25519_rules_json())
    write("sessions.json", sessions_json())


if __name__ == "__main__":
    main()
