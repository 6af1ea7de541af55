"""Write benchmarks/RESULTS.md from the JSON the benchmark scripts leave behind.

Usage::

    python benchmarks/report.py [--compare PATH] [--e2e PATH] [--hotpath PATH]
                                [--broadcast-local PATH] [--broadcast-fleet PATH] [--out PATH]

``compare.py --json``, ``e2e.py --json``, ``broadcast_e2e.py local --json``,
``broadcast_e2e.py fleet --json`` and pytest-benchmark's
``--benchmark-json`` each write one file; this script turns whichever exist
into the tables of RESULTS.md, with the machine, the versions and the date.
RESULTS.md is never edited by hand: rerun ``make bench``.

What this run has no JSON for is kept from the RESULTS.md it replaces: a
section whose file is missing (say, ``e2e.json`` on a machine where only
``compare.py`` ran) is carried over as it was, marked as such, and so is the
fleet section between ``<!-- fleet:begin -->`` and ``<!-- fleet:end -->``,
which belongs to ``benchmarks/fleet.py``.

It also writes README.md's headline figures, between ``<!-- bench:begin -->``
and ``<!-- bench:end -->``, when this run has both ``compare.py``'s and
``e2e.py``'s JSON (and a broadcast line when ``broadcast_e2e.py local``'s
JSON is there too): README quotes the run, nobody types its numbers.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

_DATE: Final = "%Y-%m-%d %H:%M UTC"
HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parent
OUT_DIR: Final = ROOT / ".benchmarks"  # git-ignored
COMPARE_JSON: Final = OUT_DIR / "compare.json"
E2E_JSON: Final = OUT_DIR / "e2e.json"
HOTPATH_JSON: Final = OUT_DIR / "hotpath.json"
BROADCAST_LOCAL_JSON: Final = OUT_DIR / "broadcast_local.json"
BROADCAST_FLEET_JSON: Final = OUT_DIR / "broadcast_fleet.json"
RESULTS_MD: Final = HERE / "RESULTS.md"
README_MD: Final = ROOT / "README.md"
#: The markers README.md's headline figures are written between.
README_BEGIN: Final = "<!-- bench:begin -->"
README_END: Final = "<!-- bench:end -->"
#: How the compare.py peer rows name their library.
_PEER_NAMES: Final = {"pyjwt": "PyJWT", "joserfc": "joserfc", "authlib": "Authlib"}
#: The markers `benchmarks/fleet.py` writes its section between.
FLEET_BEGIN: Final = "<!-- fleet:begin -->"
FLEET_END: Final = "<!-- fleet:end -->"
COMPARE_TITLE: Final = "## Hot path beside floors and peers (`compare.py`)"
E2E_TITLE: Final = "## End to end over `websockets` and `picows` (`e2e.py`)"
HOTPATH_TITLE: Final = "## pytest-benchmark suite (`benchmarks/test_hotpath.py`)"
BROADCAST_TITLE: Final = "## Broadcast and topics (`broadcast_e2e.py`)"
KEPT_NOTE: Final = (
    "*Kept from the previous RESULTS.md: this run had no JSON for this section "
    "(its own load averages, date and versions were those of its run).*"
)

PACKAGES: Final = (
    "signedws",
    "msgpack",
    "PyNaCl",
    "cryptography",
    "websockets",
    "PyJWT",
    "joserfc",
    "Authlib",
    "pytest-benchmark",
)


# -- environment ----------------------------------------------------------------------


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, where the OS has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str:
    try:
        out = subprocess.run(  # noqa: S603 - fixed read-only git commands
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def environment() -> dict[str, Any]:
    """Machine, versions and date, for the report's header."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        from cryptography.hazmat.backends.openssl import backend  # noqa: PLC0415

        versions["OpenSSL (cryptography)"] = backend.openssl_version_text()
    except ImportError:  # pragma: no cover
        pass
    import ssl  # noqa: PLC0415

    versions["OpenSSL (hashlib/hmac)"] = ssl.OPENSSL_VERSION
    dirty = _git("status", "--porcelain", "--", "signedws")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime(_DATE),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": versions,
        "commit": _git("rev-parse", "--short", "HEAD")
        + (" (signedws/ has uncommitted changes)" if dirty and dirty != "unknown" else ""),
    }


# -- tables ---------------------------------------------------------------------------


def _ns(value: float) -> str:
    if value >= 100_000:
        return f"{value / 1000:,.0f} µs"
    if value >= 10_000:
        return f"{value / 1000:,.1f} µs"
    return f"{value:,.0f} ns"


def _ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def compare_table(result: dict[str, Any]) -> str:
    """The compare.py section: every row, then the targets."""
    lines = [
        f"{result['rounds']} interleaved rounds of ~{result['chunk_seconds'] * 1000:.0f} ms "
        f"chunks per row, {result['seconds']:.0f} s in all. Cost per operation: median "
        "(and fastest) round. Ratio: the row's cost over its reference's in the same "
        "round, median over rounds [10th-90th percentile], then fastest round over "
        "fastest round.",
        "",
        "| row | what | median | fastest | reference | paired ratio [p10-p90] | min/min |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for row in result["rows"]:
        ref = row.get("reference", "")
        stats = row.get("vs_reference")
        paired = (
            f"{_ratio(stats['median'])} [{_ratio(stats['p10'])}-{_ratio(stats['p90'])}]"
            if stats
            else ""
        )
        minmin = _ratio(stats["min_over_min"]) if stats else ""
        lines.append(
            f"| `{row['name']}` | {row['description']} | {_ns(row['median_ns'])} "
            f"| {_ns(row['min_ns'])} | {f'`{ref}`' if ref else ''} | {paired} | {minmin} |"
        )
    if result.get("targets"):
        lines += ["", *targets_table(result["targets"])]
    return "\n".join(lines)


def targets_table(targets: list[dict[str, Any]]) -> list[str]:
    if targets and "stats" not in targets[0]:
        return single_targets_table(targets)
    lines = [
        "| target | bound | paired median [p10-p90] | min/min | met |",
        "|---|---:|---:|---:|:---:|",
    ]
    for t in targets:
        s = t["stats"]
        extra = ""
        if "vs_msgpack_decode" in t:
            extra = f" (vs msgpack alone: {_ratio(t['vs_msgpack_decode']['median'])})"
        lines.append(
            f"| {t['target']}{extra} | {t['op']} {t['bound']:g} "
            f"| {_ratio(s['median'])} [{_ratio(s['p10'])}-{_ratio(s['p90'])}] "
            f"| {_ratio(s['min_over_min'])} | {'yes' if t['met'] else '**no**'} |"
        )
    return lines


def single_targets_table(targets: list[dict[str, Any]]) -> list[str]:
    """Targets of e2e.py: best rounds' ratio, the paired median, and the
    ratio of frames per server CPU-second (robust to other processes taking
    the server's CPU, not to the server idling)."""
    lines = [
        "| target | bound | best rounds | paired median | per server CPU-second | met |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for t in targets:
        bytes_ = "bytes" in t["target"]
        value = f"{t['value']:.0f}" if bytes_ else _ratio(t["value"])
        bound = f"{t['bound']:g}" if bytes_ else f"{t['bound']:g}x"
        paired = _ratio(t["paired"]) if t.get("paired") is not None else ""
        per_cpu = _ratio(t["per_cpu_second"]) if t.get("per_cpu_second") is not None else ""
        lines.append(
            f"| {t['target']} | {t['op']} {bound} | {value} | {paired} | {per_cpu} "
            f"| {'yes' if t['met'] else '**no**'} |"
        )
    return lines


def e2e_tables(result: dict[str, Any]) -> str:
    """The e2e.py section."""
    lines = [result.get("method", ""), ""]
    lines += [
        "| run | server | frames/s | vs reference | server CPU (waited) | load generator CPU "
        "| frames per CPU-second | all rounds (frames/s) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for run in result["throughput"]:
        ref = run.get("vs_reference")
        versus = f"{ref:.2f}x of `{run['reference']}`" if ref is not None else ""
        lines.append(
            f"| `{run['name']}` | {run['server']} | {run['frames_per_second']:,.0f} | {versus} "
            f"| {' + '.join(f'{c:.2f}' for c in run['server_cpu'])} "
            f"({' + '.join(f'{c:.2f}' for c in run.get('server_waited', []))}) "
            f"| {run.get('client_cpu', 0):.2f} "
            f"| {run['frames_per_cpu_second']:,.0f} "
            f"| {', '.join(f'{r:,}' for r in run.get('rounds', []))} |"
        )
    memory = result.get("memory")
    if memory:
        lines += [
            "",
            f"{memory['connections']:,} idle authenticated `{memory['scheme']}` connections "
            f"(each accepted {memory['frames_per_connection']} frame(s)), one server process.",
            "",
            "| measure | bytes per connection |",
            "|---|---:|",
            f"| verifier state: `ConnectionState` and what it alone references "
            f"| {memory['verifier_state_bytes']:.0f} |",
            f"| its credential: `VerifiedCredential` and its Python objects "
            f"(one per credential, shared with the cache) | {memory['credential_bytes']:,.0f} |",
            "| server RSS growth from the first half of the connections to all of them, "
            "per connection (asyncio, websockets, adapter, credential, buffers: all of it) "
            f"| {memory['rss_bytes_per_connection']:,.0f} |",
        ]
        picows = result.get("memory_picows")
        if picows:
            per_connection = picows["rss_bytes_per_connection"]
            lines += [
                "| server RSS growth on picows (`signedws.asyncio.picows.serve`, same "
                f"clients) | {per_connection:,.0f} |"
            ]
        floor = result.get("memory_picows_floor")
        if floor:
            lines += [
                "| server RSS growth on picows holding connections that only verify, "
                "set up as the adapter sets picows up (`--idle-floor`: what bounds the "
                f"picows adapter) | {floor['rss_bytes_per_connection']:,.0f} |"
            ]
        if memory.get("notes"):
            lines += ["", memory["notes"]]
    if result.get("targets"):
        lines += ["", *targets_table(result["targets"])]
    return "\n".join(lines)


def hotpath_table(result: dict[str, Any]) -> str:
    """The pytest-benchmark suite, as one table."""
    lines = [
        "| benchmark | median | min | rounds |",
        "|---|---:|---:|---:|",
    ]
    for bench in result["benchmarks"]:
        stats = bench["stats"]
        lines.append(
            f"| `{bench['name']}` | {_ns(stats['median'] * 1e9)} | {_ns(stats['min'] * 1e9)} "
            f"| {stats['rounds']:,} |"
        )
    return "\n".join(lines)


def _us(value: float) -> str:
    return f"{value:.2f} µs"


def _load_line(result: dict[str, Any]) -> str:
    load = result.get("load_average") or {}
    return f"Load average (1/5/15 min) before: {load.get('before')}, after: {load.get('after')}."


def broadcast_targets_table(targets: list[dict[str, Any]]) -> list[str]:
    """Issue 18's targets: absolute bounds (µs, ms) and ratios."""
    lines = ["| target | bound | measured | met |", "|---|---:|---:|:---:|"]
    for t in targets:
        name = t["target"]
        if name.endswith("(µs)"):
            bound, value = _us(t["bound"]), _us(t["value"])
        elif name.endswith("(ms)"):
            bound, value = f"{t['bound']:g} ms", f"{t['value']:.2f} ms"
        else:
            bound, value = f"{t['bound']:g}x", _ratio(t["value"])
        lines.append(
            f"| {name} | {t['op']} {bound} | {value} | {'yes' if t['met'] else '**no**'} |"
        )
    return lines


def broadcast_tables(
    env: dict[str, Any], local: dict[str, Any] | None, fleet: dict[str, Any] | None
) -> str:
    """The broadcast_e2e.py section: CPU per recipient, cross-node latency,
    then issue 18's targets."""
    lines: list[str] = []
    targets: list[dict[str, Any]] = []
    if local:
        local_env = local.get("environment") or {}
        lines += [
            *_own_run(env, local_env.get("date"), local_env.get("commit")),
            f"One {local['payload_bytes']}-byte message to {local['recipients']:,} "
            "authenticated connections of one scheme (a client subprocess reads them), "
            "CPU of the server process (`time.process_time`) per recipient: median "
            f"(and fastest) of {local['rounds']} rounds, the rows in shuffled order each "
            "round. `bare`: websockets' `broadcast()` of the payload to the same "
            "connections (unauthenticated); `publish`: `LocalTopics.publish` (SPEC.md §14 "
            "frames and the writes); `frames only`: `Broadcaster.frames` (authentication and "
            "encoding, no write). Ratio: publish over bare, paired by round, median."
            + (" *The publish row was profiled (`--profile`).*" if local.get("profiled") else ""),
            "",
            f"`python benchmarks/broadcast_e2e.py local --recipients {local['recipients']} "
            f"--rounds {local['rounds']} --json .benchmarks/broadcast_local.json`",
            "",
            _load_line(local),
            "",
            "| scheme | bare `broadcast()` | publish | frames only | publish / bare |",
            "|---|---:|---:|---:|---:|",
        ]
        for scheme, figures in local["schemes"].items():
            rows = figures["rows"]
            cells = " | ".join(
                f"{_us(rows[name]['median_us'])} ({_us(rows[name]['min_us'])})"
                for name in ("bare", "topics", "frames")
            )
            lines.append(f"| `{scheme}` | {cells} | {_ratio(figures['topics_over_bare'])} |")
        targets += local.get("targets", [])
    if fleet:
        fleet_env = fleet.get("environment") or {}
        if lines:
            lines.append("")
        lines += [
            *_own_run(env, fleet_env.get("date"), fleet_env.get("commit")),
            "redis-server, three `signedws serve` nodes (examples/chat_handler.py, "
            "`[redis].url`), nginx in front; one member on each node through nginx. The "
            f"member on node A says {fleet['messages']} lines, one every "
            f"{fleet['interval_ms']} ms; latency from its send to the broadcast's arrival "
            "at the members on nodes B and C (one clock, one process).",
            "",
            f"`python benchmarks/broadcast_e2e.py fleet --messages {fleet['messages']} "
            "--json .benchmarks/broadcast_fleet.json`",
            "",
            _load_line(fleet),
            "",
            "| receiver | receipts | median | p90 | max |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, s in [*fleet["nodes"].items(), ("B and C", fleet["all"])]:
            name = label if label == "B and C" else f"node {label}"
            lines.append(
                f"| {name} | {s['receipts']:,} | {s['median_ms']:.2f} ms "
                f"| {s['p90_ms']:.2f} ms | {s['max_ms']:.2f} ms |"
            )
        targets += fleet.get("targets", [])
    if targets:
        lines += ["", *broadcast_targets_table(targets)]
    return "\n".join(lines)


def _environment_lines(env: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    return [
        f"- date: {env['date']}",
        f"- machine: {env['cpu']}, {env['cpus']} CPUs, {env['memory_gib']} GiB, {env['platform']}",
        f"- Python: {env['python']}",
        f"- versions: {versions}",
        f"- signedws commit: {env['commit']}",
    ]


def previous_section(text: str, title: str) -> str | None:
    """The section of an earlier RESULTS.md that starts at the heading
    ``title``: up to the next ``## `` heading or the fleet block, without
    the note `KEPT_NOTE` a previous carry-over added. None if there is none."""
    start = text.find(f"\n{title}\n")
    if start < 0:
        return None
    body_start = start + len(title) + 2
    ends = [len(text)]
    for marker in ("\n## ", f"\n{FLEET_BEGIN}"):
        at = text.find(marker, body_start)
        if at >= 0:
            ends.append(at)
    return text[body_start : min(ends)].strip("\n").removeprefix(KEPT_NOTE).strip("\n")


def fleet_block(text: str) -> str | None:
    """The fleet section of an earlier RESULTS.md, markers included."""
    start = text.find(FLEET_BEGIN)
    end = text.find(FLEET_END, start)
    if start < 0 or end < 0:
        return None
    return text[start : end + len(FLEET_END)]


def _own_run(env: dict[str, Any], date: str | None, commit: str | None) -> list[str]:
    """A line dating a section whose run is not that of the file's header
    (another commit, or more than half an hour apart), else nothing."""
    header = env.get("date")
    if not date or not header:
        return []
    apart = abs(
        datetime.datetime.strptime(date, _DATE) - datetime.datetime.strptime(header, _DATE)
    )
    same_commit = commit is not None and str(env.get("commit", "")).startswith(commit[:7])
    if same_commit and apart <= datetime.timedelta(minutes=30):
        return []
    return [f"This section's run: {date}, signedws commit {commit}.", ""]


def render(
    compare: dict[str, Any] | None,
    e2e: dict[str, Any] | None,
    hotpath: dict[str, Any] | None,
    previous: str = "",
    *,
    broadcast_local: dict[str, Any] | None = None,
    broadcast_fleet: dict[str, Any] | None = None,
) -> str:
    """RESULTS.md from the JSON results; ``previous`` (the file it replaces)
    supplies the sections this run has no JSON for, and the fleet section."""
    env = (compare or e2e or {}).get("environment") or environment()
    out = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/report.py` from the last `make bench`; do not edit by hand.",
        "Every ratio is measured within one run of one script (see `benchmarks/compare.py`",
        "and `benchmarks/e2e.py` for the method).",
        "",
        *_environment_lines(env),
    ]

    def section(title: str, body: str | None) -> None:
        if body is not None:
            out.extend(["", title, "", body])
            return
        kept = previous_section(previous, title)
        if kept is not None:
            out.extend(["", title, "", KEPT_NOTE, "", kept])

    compare_body = None
    if compare:
        load = compare.get("load_average") or {}
        compare_body = "\n".join(
            [
                f"Load average (1/5/15 min) before: {load.get('before')}, "
                f"after: {load.get('after')}.",
                "",
                compare_table(compare),
            ]
        )
    section(COMPARE_TITLE, compare_body)
    e2e_body = None
    if e2e:
        load = e2e.get("load_average") or {}
        e2e_env = e2e.get("environment") or {}
        e2e_body = "\n".join(
            [
                *_own_run(env, e2e_env.get("date"), e2e_env.get("commit")),
                f"Load average (1/5/15 min) before: {load.get('before')}, "
                f"after: {load.get('after')}.",
                "",
                e2e_tables(e2e),
            ]
        )
    section(E2E_TITLE, e2e_body)
    hotpath_body = None
    if hotpath:
        when = hotpath.get("datetime")
        date = (
            datetime.datetime.fromisoformat(when).astimezone(datetime.UTC).strftime(_DATE)
            if when
            else None
        )
        commit = (hotpath.get("commit_info") or {}).get("id")
        hotpath_body = "\n".join(
            [*_own_run(env, date, commit[:7] if commit else None), hotpath_table(hotpath)]
        )
    section(HOTPATH_TITLE, hotpath_body)
    broadcast_body = None
    if broadcast_local or broadcast_fleet:
        broadcast_body = broadcast_tables(env, broadcast_local, broadcast_fleet)
    section(BROADCAST_TITLE, broadcast_body)
    fleet = fleet_block(previous)
    if fleet is not None:
        out.extend(["", fleet])
    return "\n".join(out) + "\n"


def _peer(target: dict[str, Any]) -> str:
    """The library of the peer row a target names, e.g. ``(jwt.authlib.HS256)``."""
    name: str = target["target"]  # the target's name, from the JSON
    row = name.split("(", 1)[1].split(")", 1)[0]
    return _PEER_NAMES.get(row.split(".")[1], row)


def broadcast_line(local: dict[str, Any], fleet: dict[str, Any] | None) -> str:
    """README's headline for broadcast: CPU per recipient, and the fleet's median."""
    mac, ed = local["schemes"]["mac"], local["schemes"]["ed25519"]
    line = (
        f"- Broadcast to {local['recipients']:,} connections: "
        f"{_us(mac['rows']['topics']['median_us'])} (`mac`) and "
        f"{_us(ed['rows']['topics']['median_us'])} (`ed25519`) of CPU per recipient to "
        f"publish, {_ratio(mac['topics_over_bare'])} and {_ratio(ed['topics_over_bare'])} "
        "the CPU of websockets' unauthenticated `broadcast()`"
    )
    if fleet:
        line += (
            f"; across three nodes (redis, nginx), median {fleet['all']['median_ms']:.1f} ms "
            f"from the sender to the other nodes' members (p90 {fleet['all']['p90_ms']:.1f} ms)"
        )
    return line + "."


def readme_block(
    compare: dict[str, Any],
    e2e: dict[str, Any],
    broadcast_local: dict[str, Any] | None = None,
    broadcast_fleet: dict[str, Any] | None = None,
) -> str:
    """README.md's headline figures, from one run of each script."""
    targets = {t["target"].split(" (")[0].split(" / ")[0]: t for t in compare["targets"]}
    rows = {row["name"]: row for row in compare["rows"]}
    mac, ed = targets["mac verify"], targets["ed25519 verify"]
    hs, eddsa = targets["fastest JWT HS256 peer"], targets["fastest JWT EdDSA peer"]
    rejections = [t["value"] for name, t in targets.items() if name.startswith("reject.")]
    runs = {run["name"]: run for run in e2e["throughput"]}
    env = compare.get("environment") or {}
    by_target = {t["target"]: t for t in e2e["targets"]}
    threads = by_target["ed25519, both CPUs (adapter thread pool) / one CPU"]["value"]
    reuse = by_target["ed25519, both CPUs (two processes, SO_REUSEPORT) / one CPU"]["value"]
    floor = runs.get("mac-floor", {}).get("vs_reference")
    lines = [
        README_BEGIN,
        f"Its last run ({env.get('date', '?')}, commit {env.get('commit', '?')}; "
        f"{env.get('cpus', '?')}-CPU {env.get('cpu', 'machine')}, {env.get('python', '?')}):",
        "",
        f"- `mac` verify: {_ns(rows['signedws.mac']['median_ns'])} a frame, "
        f"{_ratio(mac['value'])} its floor (msgpack decode plus HMAC-SHA256 from a "
        f"precomputed keyed state), {_ratio(hs['value'])} faster than the fastest "
        f"DPoP-style HS256 proof JWT ({_peer(hs)}).",
        f"- `ed25519` verify: {_ratio(ed['value'])} the libsodium floor, "
        f"{_ratio(eddsa['value'])} faster than the fastest EdDSA proof JWT "
        f"({_peer(eddsa)}, on OpenSSL).",
        "- Refusing garbage, another connection's frame, a replay or an unknown "
        f"credential costs {min(rejections):.1f}-{max(rejections):.1f}x the envelope "
        "decode: no MAC or signature is computed for them.",
        f"- End to end on one CPU: {runs['mac']['frames_per_second']:,.0f} `mac` "
        f"frames/s, {_ratio(runs['mac']['vs_reference'])} of bare `websockets` with a "
        "counting handler"
        + (
            f" (verifying inside websockets' reader and doing nothing else reaches "
            f"{_ratio(floor)}: no adapter on websockets can do better)"
            if floor is not None
            else ""
        )
        + f". `ed25519` scales {_ratio(reuse)} on two server processes "
        f"(`--workers 2`, SO_REUSEPORT), {_ratio(threads)} with the thread pool of "
        f"one process. {e2e['memory']['verifier_state_bytes']:.0f} bytes of verifier "
        "state per idle connection.",
        *_picows_lines(runs, by_target, e2e),
        *([broadcast_line(broadcast_local, broadcast_fleet)] if broadcast_local else []),
        README_END,
    ]
    return "\n".join(lines)


def _picows_lines(
    runs: dict[str, Any], by_target: dict[str, Any], e2e: dict[str, Any]
) -> list[str]:
    """README's picows figures (issue 16), if this run has them."""
    if "picows-mac" not in runs or "baseline" not in runs:
        return []
    mac = runs["picows-mac"]
    parts = [
        f"- On picows (`--transport picows`), one CPU: {mac['frames_per_second']:,.0f} "
        f"authenticated `mac` frames/s, {_ratio(mac['vs_reference'])} of bare `websockets` "
        f"({mac['frames_per_cpu_second']:,.0f} per server CPU-second, "
        f"{mac['frames_per_cpu_second'] / runs['baseline']['frames_per_cpu_second']:.2f}x "
        "bare websockets')"
    ]
    floor = by_target.get("picows mac / picows + verify-only floor")
    if floor is not None:
        parts.append(f", {_ratio(floor['value'])} of picows with verification alone")
    ed = by_target.get("picows ed25519, 1 CPU / libsodium floor")
    if ed is not None:
        parts.append(f"; `ed25519` {_ratio(ed['value'])} of the libsodium floor")
    workers = by_target.get("picows ed25519, --workers 2 / 1 CPU")
    if workers is not None:
        parts.append(f", {_ratio(workers['value'])} on `--workers 2`")
    memory, picows = e2e.get("memory"), e2e.get("memory_picows")
    if memory and picows:
        parts.append(
            f". {picows['rss_bytes_per_connection']:,.0f} bytes of RSS per idle connection "
            f"({memory['rss_bytes_per_connection']:,.0f} on websockets)"
        )
    return ["".join(parts) + "."]


def replace_block(text: str, block: str) -> str:
    """``text`` with what stands between the README markers replaced by
    ``block`` (markers included); unchanged if the markers are missing."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return text
    return text[:start] + block + text[end + len(README_END) :]


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", type=Path, default=COMPARE_JSON)
    parser.add_argument("--e2e", type=Path, default=E2E_JSON)
    parser.add_argument("--hotpath", type=Path, default=HOTPATH_JSON)
    parser.add_argument("--broadcast-local", type=Path, default=BROADCAST_LOCAL_JSON)
    parser.add_argument("--broadcast-fleet", type=Path, default=BROADCAST_FLEET_JSON)
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    args = parser.parse_args(argv)
    previous = args.out.read_text() if args.out.exists() else ""
    broadcast_local, broadcast_fleet = _load(args.broadcast_local), _load(args.broadcast_fleet)
    text = render(
        _load(args.compare),
        _load(args.e2e),
        _load(args.hotpath),
        previous,
        broadcast_local=broadcast_local,
        broadcast_fleet=broadcast_fleet,
    )
    args.out.write_text(text)
    print(f"wrote {args.out}")
    compare, e2e = _load(args.compare), _load(args.e2e)
    if compare and e2e and args.out == RESULTS_MD:
        readme = README_MD.read_text()
        block = readme_block(compare, e2e, broadcast_local, broadcast_fleet)
        README_MD.write_text(replace_block(readme, block))
        print(f"wrote {README_MD.name}'s figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
