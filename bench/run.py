"""`make bench`: the copilot against its floor, side by side, in one run on this machine.

Both are served the same way (one uvicorn process) on PostgreSQL; the copilot runs as deployed
(`copilot serve` with PostgreSQL and NATS, every role in the process). Load comes from wrk, a
separate process. Prints one table of throughput and latency with the ratio to the floor, and
writes BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
PY = Path(sys.executable)
COPILOT = PY.parent / "copilot"
PG = os.environ.get("BENCH_PG", "host=127.0.0.1 port=5432 user=root dbname=postgres")
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://root@127.0.0.1:5432")
NATS = os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222")
DURATION = os.environ.get("BENCH_DURATION", "10s")
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def database(prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


@contextmanager
def process(args: list[str], env: dict[str, str], health: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_healthy(health, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def wrk(url: str, method: str = "GET", body: str | None = None, token: str | None = None,
        workdir: Path = Path(".")) -> dict[str, float]:
    """Run wrk against `url`; requests/s, p50 and p99 in ms, and non-2xx answers."""
    script = workdir / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    lines = [f'wrk.method = "{method}"', 'wrk.headers["Content-Type"] = "application/json"']
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    if body:
        lines.append(f"wrk.body = [[{body}]]")
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=300).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": ms("50"), "p99": ms("99"),
            "errors": float(bad.group(1)) if bad else 0.0}


BODY = '{"title": "High error rate on payment-api", "service_name": "payment-api", "severity": "high"}'
WS_CLIENTS = int(os.environ.get("BENCH_WS_CLIENTS", "1000"))
EVENT_RATE = float(os.environ.get("BENCH_EVENT_RATE", "200"))
EVENT_SECONDS = float(os.environ.get("BENCH_EVENT_SECONDS", "10"))


def deliver(base: str, ws_url: str, headers: dict[str, str], tenant: str, incidents: list[str]) -> dict[str, float]:
    """WS_CLIENTS clients listen while state changes are issued at EVENT_RATE per second."""
    token = httpx.get(f"{base}/auth/ws-token", headers=headers, timeout=30).json()["token"]
    clients = subprocess.Popen([str(PY), str(ROOT / "bench/ws_clients.py"), ws_url, token, tenant, str(WS_CLIENTS),
                                str(EVENT_SECONDS)], stdout=subprocess.PIPE, text=True)
    assert clients.stdout is not None
    clients.stdout.readline()  # every client is connected and subscribed
    started = time.monotonic()
    http = httpx.Client(headers=headers, timeout=30, limits=httpx.Limits(max_connections=64))

    def move(n: int) -> bool:
        # Each incident walks acknowledged, investigating, mitigated, investigating, … one move per visit;
        # the incidents are visited round-robin so no two moves of one incident are in flight together.
        incident = incidents[n % len(incidents)]
        visit = n // len(incidents)
        state = "acknowledged" if visit == 0 else ("investigating" if visit % 2 else "mitigated")
        return http.patch(f"{base}/incidents/{incident}/state", json={"state": state}).status_code == 200

    with ThreadPoolExecutor(max_workers=len(incidents)) as pool:
        futures = []
        for n in range(int(EVENT_RATE * EVENT_SECONDS)):
            if (wait := started + n / EVENT_RATE - time.monotonic()) > 0:
                time.sleep(wait)
            futures.append(pool.submit(move, n))
        submitting = time.monotonic() - started  # the rate is what was issued, not how long answers took
        issued = sum(1 for future in futures if future.result())
    http.close()
    elapsed = max(submitting, 1e-9)
    summary = json.loads(clients.stdout.readline())
    clients.wait(60)
    return {"rate": issued / elapsed, "messages": summary["messages"], "p50": summary["p50_ms"],
            "p99": summary["p99_ms"]}


def main() -> int:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: `make bench` installs it (Debian package wrk)")
    rows: list[tuple[str, dict[str, float], dict[str, float]]] = []
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="copilot-bench-") as tmp, database("bench_copilot") as copilot_db, \
            database("bench_floor") as floor_db:
        work = Path(tmp)
        api, ws = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")}
        env.update(COPILOT_DATABASE_URL=f"{PG_URL}/{copilot_db}", COPILOT_NATS_URL=NATS,
                   COPILOT_SECRET_KEY="bench-secret-key-0123456789-0123456789", COPILOT_API_PORT=str(api),
                   COPILOT_WS_PORT=str(ws), COPILOT_VAR_DIR=str(work / "var"), COPILOT_LOG_LEVEL="WARNING",
                   COPILOT_RATE_LIMIT_PER_MINUTE="100000000")
        base = f"http://127.0.0.1:{api}/api/v1"
        with process([str(COPILOT), "serve"], env, f"http://127.0.0.1:{api}/healthz", work / "copilot.log") as cp:
            registered = httpx.post(f"{base}/auth/register", json={
                "email": "bench@example.com", "password": "bench password 1", "full_name": "Bench",
                "tenant_name": "Bench"}, timeout=30).json()
            token = registered["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            seeded = [httpx.post(f"{base}/incidents", json={"title": f"seed {n}", "service_name": "svc",
                                                            "severity": "low"}, headers=headers, timeout=30).json()
                      for n in range(20)]
            delivery = deliver(base, f"ws://127.0.0.1:{ws}/ws", headers, registered["user"]["tenant_id"],
                               [s["id"] for s in seeded])
            create = wrk(f"{base}/incidents", "POST", BODY, token, work)
            listing = wrk(f"{base}/incidents?limit=10", token=token, workdir=work)
            one = wrk(f"{base}/incidents/{seeded[0]['id']}", token=token, workdir=work)
            rss["copilot (all roles)"] = peak_rss_mb(cp.pid)
        port = free_port()
        floor_env = {**os.environ, "FLOOR_DATABASE_URL": f"{PG_URL}/{floor_db}", "PYTHONPATH": str(ROOT)}
        with process([str(PY), "-m", "uvicorn", "bench.floor:app", "--port", str(port), "--log-level", "warning"],
                     floor_env, f"http://127.0.0.1:{port}/incidents", work / "floor.log") as fp:
            floor_create = wrk(f"http://127.0.0.1:{port}/incidents", "POST", BODY, workdir=work)
            floor_list = wrk(f"http://127.0.0.1:{port}/incidents", workdir=work)
            rss["floor"] = peak_rss_mb(fp.pid)
    rows = [("create-incident", create, floor_create), ("list-incidents (limit 10)", listing, floor_list),
            ("get-incident", one, floor_list)]
    table = [
        "| operation | copilot req/s | floor req/s | ratio | copilot p50 / p99 ms | floor p50 / p99 ms | non-2xx |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for name, ours, floor in rows:
        ratio = ours["rps"] / floor["rps"] if floor["rps"] else float("nan")
        table.append(f"| {name} | {ours['rps']:,.0f} | {floor['rps']:,.0f} | {ratio:.2f}x | "
                     f"{ours['p50']:.1f} / {ours['p99']:.1f} | {floor['p50']:.1f} / {floor['p99']:.1f} | "
                     f"{ours['errors']:.0f} |")
    memory = ["| process | peak RSS MB |", "| --- | ---: |"] + [f"| {k} | {v:.0f} |" for k, v in rss.items()]
    table += ["", "| event → WebSocket delivery | clients | events/s issued | messages received | p50 ms | p99 ms |",
              "| --- | ---: | ---: | ---: | ---: | ---: |",
              f"| state changes via REST | {WS_CLIENTS} | {delivery['rate']:.0f} (target {EVENT_RATE:.0f}) | "
              f"{delivery['messages']:,.0f} | {delivery['p50']:.1f} | {delivery['p99']:.1f} |"]
    print("\n".join(table))
    print()
    print("\n".join(memory))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (ROOT / "BENCHMARKS.md").write_text(
        f"# Benchmarks\n\nLast `make bench`: {stamp}, {os.cpu_count()} cores, wrk -t2 -c{CONNECTIONS} -d{DURATION}, "
        "PostgreSQL + NATS, one uvicorn process each. The floor (bench/floor.py) decodes, does one INSERT and "
        "answers; get-incident is compared with the floor's list (one SELECT).\n\n"
        + "\n".join(table) + "\n\n" + "\n".join(memory) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
