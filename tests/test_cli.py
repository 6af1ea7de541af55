"""Tests for the signedws command line and the serve configuration."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from example_support import run_example_client

import signedws.cli.serve
import signedws.config
from signedws import (
    Code,
    Ed25519Credential,
    MACCredential,
    ServerSession,
    Signer,
    UsageError,
    Verifier,
    load_key,
)
from signedws.cli import main
from signedws.config import (
    build_verifier,
    load_config,
    load_credential,
    load_fleet_key,
    load_keyring,
    load_server_key,
    worker_node_id,
)
from signedws.envelope import decode_hello

AUDIENCE = "wss://cli.signedws.test/ws"
REPO = Path(__file__).resolve().parents[1]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Keys made with the CLI, a keyring and a fleet key, in tmp_path."""
    for argv in (
        ("keygen", "hmac", "--kid", "h1", "-o", str(tmp_path / "issuer.jwk")),
        ("keygen", "hmac", "--kid", "fleet", "-o", str(tmp_path / "fleet.jwk")),
        ("keygen", "ed25519", "--kid", "e1", "-o", str(tmp_path / "ed-issuer.jwk")),
        ("keygen", "ed25519", "--kid", "c1", "-o", str(tmp_path / "client.jwk")),
        ("keygen", "ed25519", "--kid", "srv", "-o", str(tmp_path / "server.jwk")),
    ):
        assert cli(capsys, *argv)[0] == 0
    issuer_jwk = json.loads((tmp_path / "issuer.jwk").read_text())
    ed_jwk = json.loads((tmp_path / "ed-issuer.jwk").read_text())
    del ed_jwk["d"]  # the keyring holds the issuer's public key only
    keyring = {"issuers": {"auth": [issuer_jwk, ed_jwk]}}
    (tmp_path / "keyring.json").write_text(json.dumps(keyring))
    (tmp_path / "revoked.json").write_text(json.dumps({"credentials": [], "subjects": []}))
    return tmp_path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- help and entry points --------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [[], ["keygen"], ["issue"], ["serve"], ["issuer"], ["revoke"], ["inspect"], ["demo"]],
)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    """--help works for the program and every command, and exits 0."""
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: signedws" in capsys.readouterr().out


def test_python_dash_m_and_version() -> None:
    """python -m signedws runs the same command line."""
    result = subprocess.run(
        [sys.executable, "-m", "signedws", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert result.stdout.startswith("signedws ")


# -- keygen -------------------------------------------------------------------------------


def test_keygen_ed25519(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """keygen ed25519 writes a 0600 private JWK and prints only the public JWK."""
    out = tmp_path / "k.jwk"
    code, printed, _ = cli(
        capsys,
        "keygen",
        "ed25519",
        "--kid",
        "k",
        "-o",
        str(out),
        "--public-out",
        str(out) + ".pub",
    )
    assert code == 0
    assert mode(out) == 0o600
    public = json.loads(printed)
    assert "d" not in public
    kid, private = load_key(out)
    assert kid == "k"
    assert isinstance(private, signedws.Ed25519PrivateKey)
    assert json.loads(Path(str(out) + ".pub").read_text()) == public
    assert public["x"] in out.read_text()
    assert json.loads(out.read_text())["d"] not in printed


def test_keygen_hmac_prints_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """keygen hmac writes a 0600 secret and prints nothing of it."""
    out = tmp_path / "h.jwk"
    code, printed, _ = cli(capsys, "keygen", "hmac", "--kid", "h", "-o", str(out))
    assert code == 0
    assert mode(out) == 0o600
    assert json.loads(out.read_text())["k"] not in printed


def test_keygen_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing key file is never overwritten (exit 2)."""
    out = tmp_path / "h.jwk"
    assert cli(capsys, "keygen", "hmac", "--kid", "h", "-o", str(out))[0] == 0
    before = out.read_text()
    code, _, err = cli(capsys, "keygen", "hmac", "--kid", "h", "-o", str(out))
    assert code == 2
    assert "exists" in err
    assert out.read_text() == before


# -- issue --------------------------------------------------------------------------------


def pair(credential: Any, keyring_dir: Path) -> tuple[Verifier, ServerSession, Signer]:
    verifier = Verifier(
        load_keyring(keyring_dir / "keyring.json"),
        audience=AUDIENCE,
        fleet_key=load_fleet_key(keyring_dir / "fleet.jwk"),
    )
    session = ServerSession(verifier, now=time.time())
    signer = Signer.from_hello(session.hello, credential, audience=AUDIENCE, now=time.time())
    return verifier, session, signer


def test_issue_mac(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """issue mac prints a token and its frame key; --out writes them (0600) for
    load_credential; the credential verifies on a server with the keyring."""
    common = ["--key", str(keys / "issuer.jwk"), "--issuer", "auth", "--subject", "alice"]
    code, printed, _ = cli(capsys, "issue", "mac", *common, "--scope", "chat")
    assert code == 0
    document = json.loads(printed)
    assert set(document) == {"scheme", "token", "frame_key"}
    out = keys / "alice.json"
    code, printed, _ = cli(
        capsys, "issue", "mac", *common, "--audience", AUDIENCE, "--out", str(out)
    )
    assert code == 0
    assert mode(out) == 0o600
    assert "frame_key" not in json.loads(printed)
    credential = load_credential(out)
    assert isinstance(credential, MACCredential)
    assert credential.claims.aud == {AUDIENCE}
    _, session, signer = pair(credential, keys)
    message = session.verify(signer.sign("hi", now=time.time()), now=time.time())
    assert (message.subject, message.payload) == ("alice", "hi")


def test_issue_ed25519(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """issue ed25519 certifies a client key; the certificate verifies."""
    out = keys / "bob.json"
    code, _, _ = cli(
        capsys,
        "issue",
        "ed25519",
        "--key",
        str(keys / "ed-issuer.jwk"),
        "--issuer",
        "auth",
        "--subject",
        "bob",
        "--public-key",
        str(keys / "client.jwk"),
        "--lifetime",
        "60",
        "--out",
        str(out),
    )
    assert code == 0
    credential = load_credential(out, private_key=keys / "client.jwk")
    assert isinstance(credential, Ed25519Credential)
    _, session, signer = pair(credential, keys)
    message = session.verify(signer.sign(b"x", now=time.time()), now=time.time())
    assert message.subject == "bob"
    with pytest.raises(UsageError):
        load_credential(out)  # an ed25519 credential needs its private key


def test_issue_with_a_public_key_fails(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An issuer key must be secret or private (exit 2, no traceback)."""
    (keys / "pub.jwk").write_text(
        json.dumps(
            {k: v for k, v in json.loads((keys / "client.jwk").read_text()).items() if k != "d"}
        )
    )
    code, _, err = cli(
        capsys, "issue", "mac", "--key", str(keys / "pub.jwk"), "--issuer", "a", "--subject", "s"
    )
    assert code == 2
    assert err.startswith("signedws: error:")


# -- inspect ------------------------------------------------------------------------------


def test_inspect_decodes_and_verifies(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """inspect shows a frame's fields (payload only on request) and, given keys,
    says it verifies or why it is rejected."""
    credential = load_credential_from_cli(keys, capsys)
    _, session, signer = pair(credential, keys)
    frame = signer.sign("secret words", now=time.time())
    verify = [
        "--keyring",
        str(keys / "keyring.json"),
        "--audience",
        AUDIENCE,
        "--fleet-key",
        str(keys / "fleet.jwk"),
    ]
    code, out, _ = cli(capsys, "inspect", frame.hex())
    assert code == 0
    assert "client frame, kind 1 (mac)" in out
    assert "sub='alice'" in out
    assert "payload     str, 12 bytes" in out
    assert "secret words" not in out
    code, out, _ = cli(capsys, "inspect", frame.hex(), "--payload", *verify)
    assert code == 0
    assert "secret words" in out
    assert "verified: sub='alice'" in out
    tampered = frame[:-1] + bytes([frame[-1] ^ 1])
    (keys / "frame.bin").write_bytes(tampered)
    code, out, _ = cli(capsys, "inspect", "--file", str(keys / "frame.bin"), *verify)
    assert code == 1
    assert "rejected: bad_tag (400, close 4401)" in out
    code, out, _ = cli(capsys, "inspect", frame.hex(), *verify, "--after-counter", "1")
    assert (code, "rejected: replay" in out) == (1, True)
    code, out, _ = cli(capsys, "inspect", session.hello.hex())
    assert (code, out.startswith("hello,")) == (0, True)
    assert AUDIENCE in out
    code, out, _ = cli(capsys, "inspect", "c1c1c1")
    assert (code, out.startswith("not a signedws frame: malformed")) == (1, True)
    assert cli(capsys, "inspect", "zz")[0] == 2


def load_credential_from_cli(keys: Path, capsys: pytest.CaptureFixture[str]) -> MACCredential:
    out = keys / "alice.json"
    cli(
        capsys,
        "issue",
        "mac",
        "--key",
        str(keys / "issuer.jwk"),
        "--issuer",
        "auth",
        "--subject",
        "alice",
        "--out",
        str(out),
    )
    credential = load_credential(out)
    assert isinstance(credential, MACCredential)
    return credential


# -- configuration ------------------------------------------------------------------------


def minimal(server: str = "", keys: str = "", rest: str = "") -> str:
    """A configuration with the required keys, and more."""
    return (
        f'[server]\naudience = "a"\norigins = []\n{server}\n'
        f'[keys]\nfleet_key = "f"\nkeyring = "k"\n{keys}\n{rest}'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[server]\naudience = "a"\n', "origins is required"),
        ("[nope]\n", "unknown sections"),
        ('[server]\nadience = "a"\n', "unknown keys"),
        (
            '[server]\naudience = 1\norigins = []\n[keys]\nfleet_key = "f"\nkeyring = "k"\n',
            "string",
        ),
        (
            '[server]\naudience = "a"\norigins = []\nport = true\n'
            '[keys]\nfleet_key = "f"\nkeyring = "k"\n',
            "integer",
        ),
        (
            '[server]\naudience = "a"\norigins = []\nhandler = "nocolon"\n'
            '[keys]\nfleet_key = "f"\nkeyring = "k"\n',
            "handler",
        ),
        (
            '[server]\naudience = "a"\norigins = []\n[keys]\nfleet_key = "f"\nkeyring = "k"\n'
            "[limits]\nmax_frame_size = 0\n",
            "positive",
        ),
        ("not toml [", "not valid TOML"),
        (minimal('node_id = "xyz"'), "16 hex digits"),
        (minimal('node_id = "00112233"'), "16 hex digits"),
        (minimal("workers = 0"), "workers must be 1 to 64"),
        (minimal("workers = 65"), "workers must be 1 to 64"),
        (minimal("backlog = 0"), "backlog must be positive"),
        (
            minimal(keys='revocations = "r.json"', rest='[redis]\nurl = "redis://h/0"'),
            "one revocation source",
        ),
        (minimal(rest='[redis]\nprefix = ""'), "prefix must not be empty"),
        (minimal(rest="[redis]\ncheck_interval = 0"), "check_interval must be positive"),
        (minimal(rest="[redis]\ntopic_history = -1"), "topic_history must be 0 to 10000"),
        (minimal(rest="[redis]\ntopic_history = 10001"), "topic_history must be 0 to 10000"),
    ],
)
def test_config_errors(tmp_path: Path, text: str, message: str) -> None:
    """Invalid configurations fail loudly, naming the problem."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_config(path)


def test_build_verifier_and_server_key(keys: Path) -> None:
    """build_verifier loads the files a configuration names."""
    (keys / "s.toml").write_text(
        '[server]\naudience = "wss://x"\norigins = ["https://x"]\n'
        '[keys]\nfleet_key = "fleet.jwk"\nkeyring = "keyring.json"\n'
        'revocations = "revoked.json"\nserver_key = "server.jwk"\n'
        "[limits]\nmax_frame_size = 4096\nwindow = 8\nfirst_frame_timeout = 0\n"
    )
    config = load_config(keys / "s.toml")
    assert config.first_frame_timeout is None
    verifier = build_verifier(config)
    assert (verifier.max_frame_size, verifier.window) == (4096, 8)
    assert load_server_key(keys / "server.jwk").kid == "srv"
    with pytest.raises(signedws.KeyFormatError):
        load_server_key(keys / "fleet.jwk")
    with pytest.raises(signedws.KeyFormatError):
        load_fleet_key(keys / "server.jwk")
    with pytest.raises(signedws.KeyFormatError):
        load_keyring(keys / "missing.json")


# -- signedws serve, for real --------------------------------------------------------------


def write_serve_config(keys: Path) -> Path:
    path = keys / "serve.toml"
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = 0
audience = "{AUDIENCE}"
origins = ["https://app.example"]
allow_no_origin = true
handler = "echo"

[keys]
fleet_key = "fleet.jwk"
keyring = "keyring.json"
revocations = "revoked.json"
server_key = "server.jwk"
reload_interval = 0

[limits]
first_frame_timeout = 5.0
"""
    )
    return path


def test_serve_subprocess(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`signedws serve` from a config in a subprocess: accepts a signedws client
    (mac and ed25519), rejects a forged frame, reloads revocations on SIGHUP,
    logs a line per rejection and stops cleanly on SIGTERM."""
    from websockets.asyncio.client import connect as ws_connect

    from signedws.asyncio import Refused, connect

    alice = load_credential_from_cli(keys, capsys)
    cli(
        capsys,
        "issue",
        "ed25519",
        "--key",
        str(keys / "ed-issuer.jwk"),
        "--issuer",
        "auth",
        "--subject",
        "bob",
        "--public-key",
        str(keys / "client.jwk"),
        "--out",
        str(keys / "bob.json"),
    )
    bob = load_credential(keys / "bob.json", private_key=keys / "client.jwk")
    _, server_private = load_key(keys / "server.jwk")
    assert isinstance(server_private, signedws.Ed25519PrivateKey)
    server_keys = {"srv": server_private.public_key()}
    config = write_serve_config(keys)
    stderr_path = keys / "stderr.log"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments
            [sys.executable, "-m", "signedws", "serve", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=REPO,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"listening on (ws://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        uri = match.group(1)

        async def session() -> None:
            async with connect(uri, alice, audience=AUDIENCE) as client:
                await client.send("hello over mac")
                assert await client.recv() == "hello over mac"
            async with connect(uri, bob, audience=AUDIENCE, server_keys=server_keys) as client:
                await client.send("hello over ed25519")
                assert await client.recv() == "hello over ed25519"
            async with ws_connect(uri, subprotocols=["signedws.v1"]) as ws:  # type: ignore[list-item]
                hello = await ws.recv()
                assert isinstance(hello, bytes)
                signer = Signer(alice, decode_hello(hello), now=time.time())
                frame = signer.sign("forged", now=time.time())
                await ws.send(frame[:-1] + bytes([frame[-1] ^ 1]))
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 4401
            revoked = {"credentials": [{"iss": "auth", "cid": alice.cid}], "subjects": []}
            tmp = keys / "revoked.tmp"
            tmp.write_text(json.dumps(revoked))
            os.replace(tmp, keys / "revoked.json")
            proc.send_signal(signal.SIGHUP)
            refused: Refused | None = None
            async with asyncio.timeout(10):
                while refused is None:  # until the reload is in force
                    try:
                        async with connect(uri, alice, audience=AUDIENCE) as client:
                            await client.send("after revocation")
                            await client.recv()
                    except Refused as exc:
                        refused = exc
                    await asyncio.sleep(0.05)
            assert refused.code is Code.CREDENTIAL_REVOKED

        asyncio.run(asyncio.wait_for(session(), 30))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    log = stderr_path.read_text()
    assert "code=bad_tag number=400" in log
    assert "code=credential_revoked number=307" in log
    assert "reloaded revocations" in log
    assert "stopped" in log
    assert "Traceback" not in log
    for secret in (alice.token, alice.frame_key.to_bytes()):
        assert signedws.keys.b64url_encode(secret) not in log
        assert secret.hex() not in log
    assert "hello over" not in log


def test_serve_refuses_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad configuration exits 2 with a one-line error."""
    (tmp_path / "bad.toml").write_text("[server]\n")
    code, _, err = cli(capsys, "serve", "--config", str(tmp_path / "bad.toml"))
    assert code == 2
    assert "required" in err


def test_rejected_credential_file(tmp_path: Path) -> None:
    """load_credential refuses unknown schemes and missing fields."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"scheme": "other"}))
    with pytest.raises(signedws.KeyFormatError):
        load_credential(path)
    path.write_text(json.dumps({"scheme": "mac", "token": "AAAA"}))
    with pytest.raises(signedws.KeyFormatError):
        load_credential(path)


# -- the examples -----------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_examples_run(tmp_path: Path) -> None:
    """examples/setup.sh, server.py and client.py work as the README shows them
    (on another port); examples/serve.toml is a valid configuration."""
    examples = REPO / "examples"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    setup = ["sh", str(examples / "setup.sh")]
    subprocess.run(setup, cwd=tmp_path, env=env, check=True)  # noqa: S603 - our script
    assert mode(tmp_path / "keyring.json") == 0o600
    assert load_config(examples / "serve.toml").handler == "echo"
    port = str(free_port())
    for name in ("server.py", "client.py"):
        text = (examples / name).read_text().replace("8765", port)
        (tmp_path / name).write_text(text)
    server = subprocess.Popen(
        [sys.executable, "server.py"], cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    assert run_example_client(server, tmp_path) == "alice said hello\n"


# -- fleets: node ids, workers, revoke, nonce checks (issue 7) ----------------------------


def test_fleet_configuration(keys: Path) -> None:
    """node_id, workers and [redis] load; each worker gets its own stable node
    id, derived from the configured one; the verifier mints under it."""
    (keys / "f.toml").write_text(
        minimal('node_id = "00112233AABBCCDD"\nworkers = 3', rest='[redis]\nurl = "redis://h/1"')
        .replace('fleet_key = "f"', 'fleet_key = "fleet.jwk"')
        .replace('keyring = "k"', 'keyring = "keyring.json"')
    )
    config = load_config(keys / "f.toml")
    assert config.node_id == bytes.fromhex("00112233aabbccdd")
    assert (config.workers, config.redis_url, config.redis_prefix) == (
        3,
        "redis://h/1",
        "signedws",
    )
    assert (config.redis_check_interval, config.redis_topic_history) == (5.0, 0)
    ids = [worker_node_id(config.node_id, i) for i in range(3)]
    assert len(set(ids)) == 3
    assert ids == [worker_node_id(config.node_id, i) for i in range(3)]  # stable
    assert all(node_id is not None and len(node_id) == 8 for node_id in ids)
    assert worker_node_id(None, 1) is None
    verifier = build_verifier(config)
    assert verifier.node_id == config.node_id
    assert decode_hello(ServerSession(verifier, now=time.time()).hello).nonce[1:9] == (
        config.node_id
    )
    assert config.replace(workers=1).workers == 1
    with pytest.raises(UsageError):
        config.replace(workers=0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "workers must be 1 to 64"),
        (["--node-id", "zz"], "16 hex digits"),
    ],
)
def test_serve_refuses_bad_overrides(
    keys: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """--workers and --node-id are checked like the file's keys (exit 2)."""
    code, _, err = cli(capsys, "serve", "--config", str(write_serve_config(keys)), *argv)
    assert code == 2
    assert message in err


def test_serve_does_not_start_without_its_redis_revocations(
    keys: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server configured with Redis does not serve before it has the
    revocation set from it: Redis unreachable at start is an error (exit 2)."""
    monkeypatch.setattr(signedws.cli.serve, "REDIS_SYNC_TIMEOUT", 0.3)
    config = write_serve_config(keys)
    text = config.read_text().replace('revocations = "revoked.json"\n', "")
    config.write_text(text + f'\n[redis]\nurl = "redis://:pw@127.0.0.1:{free_port()}/0"\n')
    code, out, err = cli(capsys, "serve", "--config", str(config))
    assert code == 2
    assert "listening" not in out
    assert "no revocation set from Redis at redis://:***@127.0.0.1:" in err
    assert "pw" not in err


def test_revoke_in_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """revoke --file creates or updates a revocation file atomically, keeps its
    mode, and keeps a subject's latest time; mistakes change nothing."""
    path = tmp_path / "revoked.json"
    common = ["revoke", "--file", str(path), "--issuer", "auth"]
    code, out, _ = cli(capsys, *common, "--cid", "c1")
    assert code == 0
    assert out == f"revoked credential iss='auth' cid='c1' in {path}\n"
    path.chmod(0o640)
    assert cli(capsys, *common, "--subject", "bob", "--before", "100")[0] == 0
    assert cli(capsys, *common, "--subject", "bob", "--before", "50")[0] == 0
    before = int(time.time())
    assert cli(capsys, *common, "--subject", "carol")[0] == 0
    revocations = signedws.config.load_revocations(path)
    assert revocations.credentials == {("auth", "c1")}
    assert revocations.subjects[("auth", "bob")] == 100
    assert before < revocations.subjects[("auth", "carol")] <= int(time.time()) + 1
    assert mode(path) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["revoked.json"]  # no temporary left
    text = path.read_text()
    code, _, err = cli(capsys, *common, "--cid", "c2", "--before", "5")
    assert (code, "--before goes with --subject" in err) == (2, True)
    code, _, err = cli(capsys, *common, "--cid", "")
    assert code == 2
    assert path.read_text() == text
    path.write_text("{broken")
    assert cli(capsys, *common, "--cid", "c3")[0] == 2
    assert path.read_text() == "{broken"


def test_revoke_through_a_config(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """revoke --config uses the configuration's revocation file; a
    configuration without one is an error; an unreachable Redis too."""
    config = write_serve_config(keys)
    code, out, _ = cli(capsys, "revoke", "--config", str(config), "--issuer", "a", "--cid", "x")
    assert code == 0
    assert str(keys / "revoked.json") in out
    assert ("a", "x") in signedws.config.load_revocations(keys / "revoked.json").credentials
    config.write_text(config.read_text().replace('revocations = "revoked.json"\n', ""))
    code, _, err = cli(capsys, "revoke", "--config", str(config), "--issuer", "a", "--cid", "y")
    assert code == 2
    assert "no revocation file and no [redis].url" in err
    url = f"redis://:secret-pw@127.0.0.1:{free_port()}/0"
    code, _, err = cli(capsys, "revoke", "--redis", url, "--issuer", "a", "--cid", "y")
    assert code == 2
    assert err.startswith("signedws: error: Redis at redis://:***@127.0.0.1:")
    assert "secret-pw" not in err


def test_inspect_checks_a_hello_nonce(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """inspect checks a hello's nonce as any server of the fleet would: from
    the fleet key and audience (or a serve configuration); another fleet's or
    an expired nonce is rejected (exit 1)."""
    config = write_serve_config(keys)
    verifier = build_verifier(load_config(config).replace(node_id=bytes(range(8))))
    hello = ServerSession(verifier, now=time.time()).hello.hex()
    code, out, _ = cli(capsys, "inspect", hello, "--config", str(config))
    assert code == 0
    assert out.startswith("hello,")
    assert f"nonce verified: minted by this fleet for {AUDIENCE!r} by node 0001020304050607" in out
    code, out, _ = cli(
        capsys, "inspect", hello, "--audience", "other", "--fleet-key", str(keys / "fleet.jwk")
    )
    assert (code, "nonce rejected: nonce_invalid (202)" in out) == (1, True)
    code, out, _ = cli(
        capsys, "inspect", hello, "--config", str(config), "--now", str(time.time() + 10**6)
    )
    assert (code, "nonce rejected: nonce_expired (201)" in out) == (1, True)
    code, _, err = cli(capsys, "inspect", hello, "--fleet-key", str(keys / "fleet.jwk"))
    assert (code, "give --audience" in err) == (2, True)
    assert cli(capsys, "inspect", hello)[0] == 0  # no keys: decode only
