"""Tracker speed: /go/<code> with the journal on, against a bare ASGI app that only answers 302,
on the same granian (one worker) in the same run, 64 connections on loopback, measured with wrk.
Then: every 302 received is in the database after ingest (zero lost clicks), compared as totals
for the timed rounds and click id by click id in one more round whose wrk records each Location.

    .venv/bin/python benchmarks/redirect.py [--seconds 10] [--connections 64] [--rounds 3]

The two apps are measured in alternating rounds (each app's median is reported) so both see the
same background load on a shared machine.

Needs Debian's wrk (apt-get install wrk). Goals: tracker >= 0.7x bare, p99 < 10 ms, zero lost.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "redirect"
sys.path.insert(0, str(ROOT))

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
SETTINGS = """
SITEURL = "http://127.0.0.1:{port}"
STORYLOOP = {{
    "database_url": "sqlite:///var/storyloop.db",
    "tracking": {{"base_url": "http://127.0.0.1:{port}", "port": {port}}},
    "channels": {{"mastodon": {{}}}},
}}
"""


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The baseline: an ASGI app that answers every request with a fixed 302."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 302,
            "headers": [(b"location", b"http://127.0.0.1/x"), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(port)


def granian(
    target: str, port: int, *, factory: bool, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "1"]
    argv += ["--port", str(port), "--no-ws", "--log-level", "warning"]
    if factory:
        argv.append("--factory")
    process = subprocess.Popen([*argv, target], env=env, cwd=WORK, start_new_session=True)
    wait_for_port(port)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def group_cpu(group: int) -> float:
    """CPU seconds (user + system) used so far by every live process of a process group: the
    granian server and its worker."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields[2] is the process group (field 5 of stat)
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def wrk(url: str, seconds: int, connections: int, threads: int = 2) -> dict[str, float]:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["-H", f"User-Agent: {BROWSER}", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": requests,
        "rps": rps,
        "p99_ms": float(p99.group(1)) * scale,
        "non_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": 1 if errors else 0,
    }


# A wrk script for the check round: each thread writes the Location of every 302 it receives to a
# file of its own (line-buffered, so nothing is lost when wrk exits).
RECORD_LOCATIONS = """
local counter = 0
function setup(thread)
  thread:set("n", counter)
  counter = counter + 1
end
function init(args)
  out = io.open(os.getenv("LOCATIONS") .. "/thread-" .. n .. ".txt", "w")
  out:setvbuf("line")
end
function response(status, headers, body)
  if status == 302 then
    out:write((headers["location"] or headers["Location"] or "?"), "\\n")
  end
end
"""


def received_ids(url: str, seconds: int, connections: int, folder: Path, code: str) -> list[str]:
    """One wrk round that records every 302's Location: the click ids the clients were given."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    script = folder / "record.lua"
    script.write_text(RECORD_LOCATIONS, encoding="utf-8")
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script)]
    argv += ["-H", f"User-Agent: {BROWSER}", url]
    env = {**os.environ, "LOCATIONS": str(folder)}
    subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    pattern = re.compile(re.escape(code) + r"\.[0-9a-f]+")
    ids = []
    for path in sorted(folder.glob("thread-*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            found = pattern.search(line)
            assert found, f"no click id in the Location {line!r}"
            ids.append(found.group(0))
    return ids


def stored_ids(settings: Any, engine: Any) -> set[str]:
    from sqlalchemy import select

    from publisher.tracking.ingest import ingest
    from publisher.tracking.journal import journal_dir
    from publisher.tracking.schema import clicks

    ingest(engine, journal_dir(settings.var_dir))
    with engine.connect() as conn:
        return set(conn.execute(select(clicks.c.id)).scalars())


def setup(port: int) -> tuple[Any, Any, str]:
    from publisher import db
    from publisher import settings as settings_mod
    from publisher.model import Story
    from publisher.tracking import prepare_links

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    (WORK / "pelicanconf.py").write_text(SETTINGS.format(port=port), encoding="utf-8")
    settings = settings_mod.load(WORK / "pelicanconf.py")
    engine = db.connect(settings.database_url)
    db.upgrade(engine)
    story = Story(
        slug="bench",
        title="Bench",
        summary="",
        lang="en",
        region=None,
        category="stories",
        url=f"http://127.0.0.1:{port}/stories/bench.html",
        html="",
        text="",
        images=(),
        channels=("mastodon",),
        publish_at=datetime.now(UTC),
        timezone="UTC",
        variants={},
        offer=None,
        store=None,
        testimonial=None,
        overrides={},
        source="bench.md",
        content_hash="h",
    )
    with engine.begin() as conn:
        links = prepare_links(
            conn, settings, delivery_id="bench", story=story, channel="mastodon", variant=None
        )
    return settings, engine, links.get(story.url)


def counted_clicks(settings: Any, engine: Any) -> int:
    from sqlalchemy import func, select

    from publisher.tracking.ingest import ingest
    from publisher.tracking.journal import journal_dir
    from publisher.tracking.schema import clicks

    ingest(engine, journal_dir(settings.var_dir))
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(clicks)).scalar_one())


def measure(
    name: str, target: str, path: str, args: argparse.Namespace, ctx: tuple[Any, Any, int, Any]
) -> dict[str, float]:
    """One round for one app: start granian, warm up, measure, stop; for the tracker, count the
    clicks the round added to the database."""
    settings, engine, port, env = ctx
    factory = name == "tracker"
    server = granian(target, port, factory=factory, env=env)
    try:
        wrk(path, 2, args.connections)  # warm-up (fills the code cache, opens the journal)
        before = counted_clicks(settings, engine) if factory else 0
        cpu = group_cpu(server.pid)
        result = wrk(path, args.seconds, args.connections)
        result["cpu_us"] = (group_cpu(server.pid) - cpu) / max(result["requests"], 1) * 1e6
    finally:
        stop(server)
    result["clicks"] = counted_clicks(settings, engine) - before if factory else 0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds per app.")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    port = free_port()
    settings, engine, url = setup(port)
    env = {**os.environ, "STORYLOOP_SETTINGS": str(WORK / "pelicanconf.py")}
    env["PYTHONPATH"] = f"{ROOT / 'benchmarks'}:{ROOT}"
    ctx = (settings, engine, port, env)
    apps = (
        ("bare", "redirect:bare_app", f"http://127.0.0.1:{port}/go/x"),
        ("tracker", "publisher.tracking.server:create_app", url),
    )
    # Alternate the apps so both see the same background load; report each app's median round.
    rounds: dict[str, list[dict[str, float]]] = {"bare": [], "tracker": []}
    for _ in range(args.rounds):
        for name, target, path in apps:
            rounds[name].append(measure(name, target, path, args, ctx))
    print(
        f"{'app':10} {'round':>5} {'requests':>9} {'req/s':>9} {'p99 ms':>7} {'non-3xx':>8}"
        f" {'server CPU/req':>15}"
    )
    for name, results in rounds.items():
        for i, r in enumerate(results, 1):
            print(
                f"{name:10} {i:>5} {int(r['requests']):>9} {r['rps']:>9.0f} "
                f"{r['p99_ms']:>7.2f} {int(r['non_3xx']):>8} {r['cpu_us']:>12.1f} us"
            )
    bare_rps = statistics.median(r["rps"] for r in rounds["bare"])
    tracker_rps = statistics.median(r["rps"] for r in rounds["tracker"])
    p99 = statistics.median(r["p99_ms"] for r in rounds["tracker"])
    bare_p99 = statistics.median(r["p99_ms"] for r in rounds["bare"])
    ratio = tracker_rps / bare_rps
    bare_cpu = statistics.median(r["cpu_us"] for r in rounds["bare"])
    tracker_cpu = statistics.median(r["cpu_us"] for r in rounds["tracker"])
    received = sum(int(r["requests"]) for r in rounds["tracker"])
    counted = sum(int(r["clicks"]) for r in rounds["tracker"])
    lost = max(0, received - counted)
    # The check round: every click id handed out in a 302 must be in the database, by id.
    server = granian("publisher.tracking.server:create_app", port, factory=True, env=env)
    try:
        wrk(url, 2, args.connections)
        before = stored_ids(settings, engine)
        handed_out = received_ids(
            url, args.seconds, args.connections, WORK / "locations", url.rsplit("/", 1)[-1]
        )
    finally:
        stop(server)
    after = stored_ids(settings, engine)
    missing = set(handed_out) - after
    print(
        f"check round: {len(handed_out):,} click ids received in 302s, "
        f"{len(set(handed_out)):,} distinct, {len(after - before):,} new ids stored, "
        f"{len(missing)} received but not stored"
    )
    lost = max(lost, len(missing))
    if len(set(handed_out)) != len(handed_out):
        print("DUPLICATE click ids were handed out")
        lost = max(lost, 1)
    print(
        f"median req/s: bare {bare_rps:.0f}, tracker {tracker_rps:.0f}: {ratio:.2f}x "
        f"(goal >= 0.7x)\nmedian p99: bare {bare_p99:.2f} ms, tracker {p99:.2f} ms (goal < 10)\n"
        f"median server CPU per request: bare {bare_cpu:.1f} us, tracker {tracker_cpu:.1f} us "
        f"({tracker_cpu / bare_cpu:.2f}x)"
    )
    print(
        f"clicks in the database: {counted}, 302s wrk received: {received}, lost: {lost} "
        f"(answered in flight when wrk stopped: {counted - received})"
    )
    engine.dispose()
    print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    ok = ratio >= 0.7 and p99 < 10 and lost == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
