"""`make bench`: the copilot against its floors, side by side, in one run on this machine.

Absolute numbers on a shared 2-core machine are noise; ratios to a floor measured in the same
run are not. Stages, each on a database of its own:

1. all-in-one — `copilot serve` as `make run` deploys it (PostgreSQL + NATS, every role in one
   process): create, list and get under wrk, event → WebSocket delivery to 1,000 clients, and
   the CPU each request costs the server.
2. floors — bench/floor.py (decode, one INSERT, answer; one SELECT of 10 rows) under the same
   wrk, and bench/ws_floor.py (broadcast to the same client process) for delivery.
3. scale-out — the roles in separate processes, with one and then two API processes and one and
   then two gateways against one PostgreSQL and NATS; then two investigators sharing the incidents
   (COPILOT_INVESTIGATOR_PARTITIONS=2) behind one API process.
4. data size — list and get at 10k and at BENCH_LARGE incidents in the project (seeded into the
   log by bench/seed.py and projected by `copilot projections rebuild`, which is timed), and
   `copilot audit replay` of an incident with BENCH_REPLAY_EVENTS events.

Prints the tables, writes BENCHMARKS.md and BENCHMARKS.png (the chart).
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
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
WS_CLIENTS = int(os.environ.get("BENCH_WS_CLIENTS", "1000"))
EVENT_RATE = float(os.environ.get("BENCH_EVENT_RATE", "200"))
EVENT_SECONDS = float(os.environ.get("BENCH_EVENT_SECONDS", "10"))
# A rate the client process itself can take on this machine: 1,000 clients at 200 events/s are
# 200,000 messages/s, more than one Python client process (and the floor) can handle here.
EVENT_RATE_LOW = float(os.environ.get("BENCH_EVENT_RATE_LOW", "10"))
SMALL = 10_000
LARGE = int(os.environ.get("BENCH_LARGE", "1000000"))
REPLAY_EVENTS = int(os.environ.get("BENCH_REPLAY_EVENTS", "10000"))
BODY = '{"title": "High error rate on payment-api", "service_name": "payment-api", "severity": "high"}'
SECRET = "bench-secret-key-0123456789-0123456789"

Result = dict[str, float]
START, END = "<!-- make bench: generated from here -->", "<!-- make bench: generated up to here -->"


# -- plumbing -------------------------------------------------------------------------------

def calibrate() -> float:
    """Milliseconds for one fixed pure-Python loop (best of 5). This VM's speed differs between
    days by up to 2x for the same code (session 8: the unchanged rebuild at 19k events/s against
    32k the day before), so every run prints it at its start and end: two runs' absolute figures
    compare only as far as their calibrations agree; ratios to the floor compare within a run."""
    def work() -> int:
        total = 0
        for n in range(200_000):
            row: dict[str, Any] = {"n": n, "s": str(n)}
            total += len(row["s"]) + n % 7
        return total

    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best * 1000


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
    deadline = time.monotonic() + 90
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
    """One server process, healthy inside the block and stopped (SIGINT) after it."""
    procs = Processes(log.parent, {})
    try:
        yield procs.start(log.stem, args, env, health, log)
    finally:
        procs.stop()


class Processes:
    """Every server process of a stage: started healthy, stopped at the end, peak RSS kept."""

    def __init__(self, work: Path, rss: dict[str, float]) -> None:
        self.work = work
        self.rss = rss
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, label: str, args: list[str], env: dict[str, str], health: str,
              log: Path | None = None) -> subprocess.Popen[bytes]:
        log = log or self.work / f"{label.replace(' ', '_')}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        self.running.append((label, proc))
        wait_healthy(health, proc)
        return proc

    @property
    def pids(self) -> list[int]:
        return [proc.pid for _, proc in self.running]

    def stop(self) -> None:
        for label, proc in self.running:
            self.rss[label] = max(self.rss.get(label, 0.0), peak_rss_mb(proc.pid))
            proc.send_signal(signal.SIGINT)
        for _, proc in self.running:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.running.clear()


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """All CPUs' (busy, total) clock ticks since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


def machine_busy(before: tuple[int, int]) -> float:
    """The share of the whole machine's CPU that was busy since `before` (0..1)."""
    busy, total = machine_ticks()
    return (busy - before[0]) / max(total - before[1], 1)


def copilot_env(db: str, api: int, ws: int, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")}
    env.update(COPILOT_DATABASE_URL=f"{PG_URL}/{db}", COPILOT_NATS_URL=NATS, COPILOT_SECRET_KEY=SECRET,
               COPILOT_API_PORT=str(api), COPILOT_WS_PORT=str(ws), COPILOT_VAR_DIR=str(work / "var"),
               COPILOT_LOG_LEVEL="WARNING", COPILOT_RATE_LIMIT_PER_MINUTE="100000000")
    return env


def register(base: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.post(f"{base}/auth/register", json={
        "email": "bench@example.com", "password": "bench password 1", "full_name": "Bench",
        "tenant_name": "Bench"}, timeout=30).json()
    return body


def login(base: str) -> str:
    answer = httpx.post(f"{base}/auth/login", json={"email": "bench@example.com", "password": "bench password 1"},
                        timeout=30)
    token: str = answer.json()["access_token"]
    return token


# -- load -----------------------------------------------------------------------------------

def _wrk_once(url: str, connections: int, method: str, body: str | None, token: str | None, workdir: Path) -> str:
    script = workdir / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    lines = [f'wrk.method = "{method}"', 'wrk.headers["Content-Type"] = "application/json"']
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    if body:
        lines.append(f"wrk.body = [[{body}]]")
    script.write_text("\n".join(lines) + "\n")
    threads = min(2, connections)
    return subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{DURATION}", "--latency", "-s", str(script),
                           url], capture_output=True, text=True, timeout=300).stdout


def _parse(out: str) -> Result:
    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "requests": float(done.group(1)) if done else 0.0,
            "p50": ms("50"), "p99": ms("99"), "errors": float(bad.group(1)) if bad else 0.0}


def load(urls: list[str], pids: list[int], workdir: Path, method: str = "GET", body: str | None = None,
         token: str | None = None) -> Result:
    """wrk against each url at once (CONNECTIONS split between them), and the servers' CPU per request.

    wrk binds each run to one host:port, so two API processes get a wrk each; throughput adds
    up, p50 is the mean and p99 the worse of the two.
    """
    before = {pid: cpu_seconds([pid]) for pid in pids}
    with ThreadPoolExecutor(len(urls)) as pool:
        outs = list(pool.map(lambda u: _wrk_once(u, CONNECTIONS // len(urls), method, body, token, workdir), urls))
    spent = {pid: cpu_seconds([pid]) - before[pid] for pid in pids}
    parts = [_parse(out) for out in outs]
    requests = sum(p["requests"] for p in parts) or float("nan")
    return {"rps": sum(p["rps"] for p in parts), "p50": sum(p["p50"] for p in parts) / len(parts),
            "p99": max(p["p99"] for p in parts), "errors": sum(p["errors"] for p in parts), "requests": requests,
            "cpu_ms": sum(spent.values()) * 1000 / requests,
            **{f"cpu_ms pid {pid}": cpu * 1000 / requests for pid, cpu in spent.items()}}


def settle(db: str, pids: list[int], created: Result) -> Result:
    """After a create load: how long until every incident's investigation has finished (the
    projector, relay and investigator catching up), and what that makes of the load: incidents
    created *and* investigated per second, and every process's CPU per create including the
    catch-up. The API accepting creates faster than the rest can follow is not throughput."""
    before = {pid: cpu_seconds([pid]) for pid in pids}
    started = time.perf_counter()
    with psycopg.connect(f"{PG_URL}/{db}", autocommit=True) as conn:
        while time.perf_counter() - started < 1800:
            row = conn.execute("SELECT count(*) FROM incidents i LEFT JOIN investigations v ON v.incident_id = i.id"
                               " WHERE v.status IS DISTINCT FROM 'completed'").fetchone()
            if row is not None and row[0] == 0:
                break
            time.sleep(0.25)
    catch_up = time.perf_counter() - started
    requests = created["requests"]
    loaded = requests / created["rps"] if created["rps"] else float("nan")
    spent = {pid: cpu_seconds([pid]) - before[pid] for pid in pids}
    return {"rps": requests / (loaded + catch_up), "catch_up_s": catch_up,
            "cpu_ms": created["cpu_ms"] + sum(spent.values()) * 1000 / requests,
            **{f"cpu_ms pid {pid}": created[f"cpu_ms pid {pid}"] + cpu * 1000 / requests for pid, cpu in spent.items()}}


def analyze(db: str) -> None:
    """Planner statistics as autovacuum leaves them within its first minute (autovacuum_naptime).
    Reads measured straight after a create load on a new database would otherwise be planned
    from no statistics: a page of incidents as a scan and sort of all of the project's 2,500
    (1.6 ms in PostgreSQL instead of 0.05), which halved the list's throughput for that minute."""
    with psycopg.connect(f"{PG_URL}/{db}", autocommit=True) as conn:
        conn.execute("ANALYZE")


def _clients(ws_urls: list[str], token: str, tenant: str) -> list[subprocess.Popen[str]]:
    """One bench/ws_clients.py process per gateway, the clients split between them; all connected."""
    procs = [subprocess.Popen([str(PY), str(ROOT / "bench/ws_clients.py"), url, token, tenant,
                               str(WS_CLIENTS // len(ws_urls)), str(EVENT_SECONDS)], stdout=subprocess.PIPE, text=True)
             for url in ws_urls]
    for proc in procs:
        assert proc.stdout is not None
        proc.stdout.readline()  # every client of this process is connected and subscribed
    return procs


def _received(procs: list[subprocess.Popen[str]]) -> Result:
    summaries = []
    for proc in procs:
        assert proc.stdout is not None
        summaries.append(json.loads(proc.stdout.readline()))
        proc.wait(60)
    return {"messages": sum(s["messages"] for s in summaries), "p50": max(s["p50_ms"] for s in summaries),
            "p99": max(s["p99_ms"] for s in summaries)}


def deliver(base: str, ws_urls: list[str], headers: dict[str, str], tenant: str, rate: float = EVENT_RATE) -> Result:
    """WS_CLIENTS clients listen while state changes of 20 fresh incidents are issued through the API at
    `rate` a second."""
    incidents = seed_incidents(base, headers, 20)
    token = httpx.get(f"{base}/auth/ws-token", headers=headers, timeout=30).json()["token"]
    clients = _clients(ws_urls, token, tenant)
    ticks = machine_ticks()
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
        for n in range(int(rate * EVENT_SECONDS)):
            if (wait := started + n / rate - time.monotonic()) > 0:
                time.sleep(wait)
            futures.append(pool.submit(move, n))
        submitting = time.monotonic() - started  # the rate is what was issued, not how long answers took
        issued = sum(1 for future in futures if future.result())
    http.close()
    busy = machine_busy(ticks)  # while events were issued and delivered: servers, clients, database, NATS
    return {"rate": issued / max(submitting, 1e-9), "expected": issued * WS_CLIENTS, "busy": busy,
            **_received(clients)}


def deliver_floor(work: Path, rss: dict[str, float], rate: float = EVENT_RATE) -> Result:
    port = free_port()
    floor = subprocess.Popen([str(PY), str(ROOT / "bench/ws_floor.py"), str(port), str(WS_CLIENTS), str(rate),
                              str(EVENT_SECONDS)], stdout=subprocess.PIPE, text=True)
    assert floor.stdout is not None
    floor.stdout.readline()
    clients = _clients([f"ws://127.0.0.1:{port}/ws"], "floor", "floor")
    ticks = machine_ticks()
    time.sleep(EVENT_SECONDS)  # the floor sends once every client is subscribed
    busy = machine_busy(ticks)
    received = _received(clients)
    rss["delivery floor"] = max(rss.get("delivery floor", 0.0), peak_rss_mb(floor.pid))
    floor.wait(60)
    return {"rate": rate, "expected": rate * EVENT_SECONDS * WS_CLIENTS, "busy": busy, **received}


def seed_incidents(base: str, headers: dict[str, str], count: int) -> list[str]:
    return [httpx.post(f"{base}/incidents", json={"title": f"seed {n}", "service_name": "svc", "severity": "low"},
                       headers=headers, timeout=30).json()["id"] for n in range(count)]


def copilot_cli(env: dict[str, str], *args: str) -> tuple[str, float]:
    started = time.perf_counter()
    out = subprocess.run([str(COPILOT), *args], env=env, capture_output=True, text=True, timeout=3600, check=True)
    return out.stdout, time.perf_counter() - started


# -- stages ---------------------------------------------------------------------------------

def all_in_one(work: Path, rss: dict[str, float], floor: Floor) -> dict[str, Result]:
    with database("bench_copilot") as db, ExitStack() as stack:
        api, ws = free_port(), free_port()
        procs = Processes(work, rss)
        stack.callback(procs.stop)
        procs.start("copilot (all roles)", [str(COPILOT), "serve"], copilot_env(db, api, ws, work),
                    f"http://127.0.0.1:{api}/healthz")
        base = f"http://127.0.0.1:{api}/api/v1"
        registered = register(base)
        token = registered["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        seeded = seed_incidents(base, headers, 20)
        tenant = registered["user"]["tenant_id"]
        results = {"delivery": deliver(base, [f"ws://127.0.0.1:{ws}/ws"], headers, tenant),
                   "delivery low": deliver(base, [f"ws://127.0.0.1:{ws}/ws"], headers, tenant, EVENT_RATE_LOW)}
        results["create"] = load([f"{base}/incidents"], procs.pids, work, "POST", BODY, token)
        results["create sustained"] = settle(db, procs.pids, results["create"])
        results["floor create"] = floor.create()
        analyze(db)
        results["list"] = load([f"{base}/incidents?limit=10"], procs.pids, work, token=token)
        results["floor list"] = floor.list()
        results["get"] = load([f"{base}/incidents/{seeded[0]}"], procs.pids, work, token=token)
        results["floor get"] = floor.list()
        return results


class Floor:
    """The floor app (bench/floor.py), up for the whole run and idle between its loads. Each
    copilot row is compared with a floor load run right after it, not with one from another stage:
    this VM's speed drifts within a run (session 8: the calibration went from 47 to 88 ms between
    a run's start and end), and a ratio of two loads minutes apart would measure the drift."""

    def __init__(self, work: Path, rss: dict[str, float], stack: ExitStack) -> None:
        db = stack.enter_context(database("bench_floor"))
        port = free_port()
        procs = Processes(work, rss)
        stack.callback(procs.stop)
        env = {**os.environ, "FLOOR_DATABASE_URL": f"{PG_URL}/{db}", "PYTHONPATH": str(ROOT)}
        self.url = f"http://127.0.0.1:{port}/incidents"
        self.pid = procs.start("floor", [str(PY), "-m", "uvicorn", "bench.floor:app", "--port", str(port),
                                         "--log-level", "warning"], env, self.url).pid
        self.work = work
        for _ in range(20):  # a full page to list from the first list on
            httpx.post(self.url, content=BODY, headers={"Content-Type": "application/json"},
                       timeout=30).raise_for_status()

    def create(self) -> Result:
        return load([self.url], [self.pid], self.work, "POST", BODY)

    def list(self) -> Result:
        return load([self.url], [self.pid], self.work)


def delivery_floors(work: Path, rss: dict[str, float]) -> dict[str, Result]:
    return {"delivery": deliver_floor(work, rss), "delivery low": deliver_floor(work, rss, EVENT_RATE_LOW)}


def scale_out(work: Path, rss: dict[str, float], floor: Floor) -> dict[str, Result]:
    """The roles apart: projector, relay, investigator, then one or two API processes and gateways."""
    results: dict[str, Result] = {}
    with database("bench_scale") as db, ExitStack() as stack:
        procs = Processes(work, rss)
        stack.callback(procs.stop)
        for role in ("projector", "relay", "investigator"):
            port = free_port()
            procs.start(f"{role} (split)", [str(COPILOT), "serve", "--role", role],
                        copilot_env(db, port, free_port(), work), f"http://127.0.0.1:{port}/healthz")
        apis, gateways = [], []
        for n in (1, 2):
            api, ws = free_port(), free_port()
            procs.start(f"api {n} (split)", [str(COPILOT), "serve", "--role", "api"],
                        copilot_env(db, api, free_port(), work), f"http://127.0.0.1:{api}/healthz")
            procs.start(f"gateway {n} (split)", [str(COPILOT), "serve", "--role", "stream"],
                        copilot_env(db, free_port(), ws, work), f"http://127.0.0.1:{ws}/healthz")
            apis.append(f"http://127.0.0.1:{api}/api/v1")
            gateways.append(f"ws://127.0.0.1:{ws}/ws")
        registered = register(apis[0])
        token = registered["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        tenant = registered["user"]["tenant_id"]
        results["delivery, 1 gateway"] = deliver(apis[0], gateways[:1], headers, tenant)
        results["delivery, 2 gateways"] = deliver(apis[0], gateways, headers, tenant)
        results["create, 1 API process"] = load([f"{apis[0]}/incidents"], procs.pids, work, "POST", BODY, token)
        per_process = results["create, 1 API process, sustained"] = settle(db, procs.pids,
                                                                            results["create, 1 API process"])
        results["floor create, 1 API process"] = floor.create()
        results["create CPU by process"] = {label: per_process[f"cpu_ms pid {proc.pid}"]
                                            for label, proc in procs.running}
        results["create, 2 API processes"] = load([f"{a}/incidents" for a in apis], procs.pids, work, "POST", BODY,
                                                  token)
        results["create, 2 API processes, sustained"] = settle(db, procs.pids, results["create, 2 API processes"])
        results["floor create, 2 API processes"] = floor.create()
        analyze(db)
        results["list, 1 API process"] = load([f"{apis[0]}/incidents?limit=10"], procs.pids, work, token=token)
        results["list, 2 API processes"] = load([f"{a}/incidents?limit=10" for a in apis], procs.pids, work,
                                                token=token)
    return results


def investigators(work: Path, rss: dict[str, float], floor: Floor) -> dict[str, Result]:
    """The roles apart with two investigators sharing the incidents (COPILOT_INVESTIGATOR_PARTITIONS=2)."""
    with database("bench_investigators") as db, ExitStack() as stack:
        procs = Processes(work, rss)
        stack.callback(procs.stop)
        for label, role in (("projector", "projector"), ("relay", "relay"), ("investigator 1", "investigator"),
                            ("investigator 2", "investigator"), ("api", "api")):
            port = free_port()
            env = {**copilot_env(db, port, free_port(), work), "COPILOT_INVESTIGATOR_PARTITIONS": "2"}
            procs.start(f"{label} (2 investigators)", [str(COPILOT), "serve", "--role", role], env,
                        f"http://127.0.0.1:{port}/healthz")
        base = f"http://127.0.0.1:{port}/api/v1"  # the API, started last
        created = load([f"{base}/incidents"], procs.pids, work, "POST", BODY, register(base)["access_token"])
        return {"create": created, "create, sustained": settle(db, procs.pids, created), "floor create": floor.create()}


def data_size(work: Path, rss: dict[str, float], floor: Floor) -> dict[str, Result]:
    """list/get at 10k and LARGE incidents (the API role alone, on rebuilt read models); rebuild over
    the log; replay of a long incident."""
    results: dict[str, Result] = {}
    with database("bench_size") as db:
        api, ws = free_port(), free_port()
        env = copilot_env(db, api, ws, work)
        base = f"http://127.0.0.1:{api}/api/v1"
        procs = Processes(work, rss)
        procs.start("copilot (data size)", [str(COPILOT), "serve"], env, f"http://127.0.0.1:{api}/healthz")
        registered = register(base)
        project = registered["user"]["project_id"]
        long_lived = seed_incidents(base, {"Authorization": f"Bearer {registered['access_token']}"}, 1)[0]
        procs.stop()
        url = env["COPILOT_DATABASE_URL"]
        seeded = 0
        for size in (SMALL, LARGE):
            subprocess.run([str(PY), str(ROOT / "bench/seed.py"), "incidents", url, project, str(size - seeded)],
                           env=env, check=True, capture_output=True, timeout=3600)
            seeded = size
            out, seconds = copilot_cli(env, "projections", "rebuild")
            found = re.search(r"([\d,]+) events in ([\d.]+) s", out)
            assert found is not None, out
            events, rebuilding = float(found.group(1).replace(",", "")), float(found.group(2))
            results[f"rebuild at {size:,}"] = {"events": events, "seconds": seconds, "eps": events / seconds,
                                               "rebuild eps": events / rebuilding}
            # Reads need the API and the rebuilt read models (and a projector for the login's session);
            # an investigator here would start on the seeded incidents and compete with the reads.
            projector = free_port()
            procs.start("projector (data size)", [str(COPILOT), "serve", "--role", "projector"],
                        {**env, "COPILOT_API_PORT": str(projector)}, f"http://127.0.0.1:{projector}/healthz")
            procs.start("api (data size)", [str(COPILOT), "serve", "--role", "api"], env,
                        f"http://127.0.0.1:{api}/healthz")
            token = login(base)
            with psycopg.connect(url) as conn:
                some = conn.execute("SELECT id FROM incidents ORDER BY detected_at LIMIT 1 OFFSET %s",
                                    (size // 2,)).fetchone()
            assert some is not None
            results[f"list at {size:,}"] = load([f"{base}/incidents?limit=10"], procs.pids, work, token=token)
            results[f"floor list at {size:,}"] = floor.list()
            results[f"get at {size:,}"] = load([f"{base}/incidents/{some[0]}"], procs.pids, work, token=token)
            results[f"floor get at {size:,}"] = floor.list()
            procs.stop()
        subprocess.run([str(PY), str(ROOT / "bench/seed.py"), "history", url, long_lived, str(REPLAY_EVENTS)],
                       env=env, check=True, capture_output=True, timeout=3600)
        out, seconds = copilot_cli(env, "audit", "replay", long_lived, "--json")
        results["replay"] = {"events": float(len(json.loads(out)["events"])), "seconds": seconds}
    return results


# -- report ---------------------------------------------------------------------------------

def _fmt(value: float, digits: int = 0) -> str:
    return "—" if value != value else f"{value:,.{digits}f}"  # NaN shows as a dash


def report(ours: dict[str, Result], floor: dict[str, Result], scale: dict[str, Result], sized: dict[str, Result],
           shared: dict[str, Result], rss: dict[str, float]) -> list[str]:
    lines = ["| operation | copilot req/s | floor req/s | ratio | copilot p50 / p99 ms | floor p50 / p99 ms | "
             "copilot CPU ms/req | floor CPU ms/req | non-2xx |",
             "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |"]
    rows = [("create-incident", ours["create"], ours["floor create"]), ("list-incidents (limit 10)", ours["list"],
            ours["floor list"]), ("get-incident", ours["get"], ours["floor get"])]
    for size in (SMALL, LARGE):
        rows += [(f"{what}-incident{'s' if what == 'list' else ''} at {size:,} incidents", sized[f"{what} at {size:,}"],
                  sized[f"floor {what} at {size:,}"]) for what in ("list", "get")]
    for name, o, f in rows:
        lines.append(f"| {name} | {_fmt(o['rps'])} | {_fmt(f['rps'])} | {o['rps'] / f['rps']:.2f}x | "
                     f"{_fmt(o['p50'], 1)} / {_fmt(o['p99'], 1)} | {_fmt(f['p50'], 1)} / {_fmt(f['p99'], 1)} | "
                     f"{_fmt(o['cpu_ms'], 2)} | {_fmt(f['cpu_ms'], 2)} | {_fmt(o['errors'])} |")
    lines += ["", "| event → WebSocket delivery | clients | events/s issued | messages received / expected | "
              "p50 ms | p99 ms | machine CPU busy |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    deliveries = [("copilot, all roles in one process", ours["delivery low"]), ("floor (bench/ws_floor.py)",
                  floor["delivery low"]), ("copilot, all roles in one process", ours["delivery"]),
                  ("floor (bench/ws_floor.py)", floor["delivery"])] + [
        (f"copilot split, {k.split(', ')[1]}", v) for k, v in scale.items() if k.startswith("delivery")]
    for name, d in deliveries:
        lines.append(f"| {name} | {WS_CLIENTS} | {_fmt(d['rate'])} | {_fmt(d['messages'])} / {_fmt(d['expected'])} | "
                     f"{_fmt(d['p50'], 1)} | {_fmt(d['p99'], 1)} | {d['busy']:.0%} |")
    lines += ["", "| create for the load's duration, then until every incident is investigated | creates/s "
              "accepted | catch-up s | incidents created and investigated /s | floor creates/s (run after it) | "
              "ratio | CPU ms per incident (all processes) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, accepted, sustained, floor_create in [
            ("all roles in one process", ours["create"], ours["create sustained"], ours["floor create"])] + [
            (f"roles apart, {n}", scale[f"create, {n}"], scale[f"create, {n}, sustained"], scale[f"floor create, {n}"])
            for n in ("1 API process", "2 API processes")] + [
            ("roles apart, 1 API process, 2 investigators sharing", shared["create"], shared["create, sustained"],
             shared["floor create"])]:
        lines.append(f"| {name} | {_fmt(accepted['rps'])} | {sustained['catch_up_s']:.1f} | {_fmt(sustained['rps'])} | "
                     f"{_fmt(floor_create['rps'])} | {sustained['rps'] / floor_create['rps']:.2f}x | "
                     f"{_fmt(sustained['cpu_ms'], 2)} |")
    lines += ["", "| scale-out (roles in separate processes) | req/s | p50 / p99 ms | CPU ms/req (all processes) |",
              "| --- | ---: | --- | ---: |"]
    for name, r in scale.items():
        if name.startswith(("create, ", "list, ")) and not name.endswith("sustained"):
            lines.append(f"| {name} | {_fmt(r['rps'])} | {_fmt(r['p50'], 1)} / {_fmt(r['p99'], 1)} | "
                         f"{_fmt(r['cpu_ms'], 2)} |")
    lines += ["", "| where an incident's CPU goes (roles apart, 1 API, with catch-up) | CPU ms per create |",
              "| --- | ---: |"]
    by_process = scale["create CPU by process"]
    lines += [f"| {label.removesuffix(' (split)')} | {ms:.2f} |" for label, ms in by_process.items()]
    lines += ["", "| log operation (the whole CLI run, start included) | events | seconds | events/s | "
              "events/s of the rebuild itself |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in sized.items():
        if name.startswith("rebuild"):
            lines.append(f"| projections rebuild, log of {name.split(' at ')[1]} incidents | {_fmt(r['events'])} | "
                         f"{r['seconds']:.1f} | {_fmt(r['eps'])} | {_fmt(r['rebuild eps'])} |")
    replay = sized["replay"]
    lines.append(f"| audit replay of one incident | {_fmt(replay['events'])} | {replay['seconds']:.2f} | "
                 f"{_fmt(replay['events'] / replay['seconds'])} | — |")
    lines += ["", "| process | peak RSS MB |", "| --- | ---: |"] + [f"| {k} | {v:.0f} |" for k, v in rss.items()]
    return lines


def chart(ours: dict[str, Result], floor: dict[str, Result], size: dict[str, Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["create", "list", "get", f"list\n@{LARGE:,}", f"get\n@{LARGE:,}"]
    copilot = [ours["create"]["rps"], ours["list"]["rps"], ours["get"]["rps"], size[f"list at {LARGE:,}"]["rps"],
               size[f"get at {LARGE:,}"]["rps"]]
    floors_ = [ours["floor create"]["rps"], ours["floor list"]["rps"], ours["floor get"]["rps"],
               size[f"floor list at {LARGE:,}"]["rps"], size[f"floor get at {LARGE:,}"]["rps"]]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    xs = range(len(names))
    left.bar([x - 0.2 for x in xs], copilot, width=0.4, label="copilot")
    left.bar([x + 0.2 for x in xs], floors_, width=0.4, label="floor")
    left.set_xticks(list(xs), names)
    left.set_ylabel("requests/s (wrk, 32 connections)")
    left.legend()
    left.set_title("throughput vs the floor")
    deliveries = [(f"copilot\n{EVENT_RATE_LOW:.0f}/s", ours["delivery low"]),
                  (f"floor\n{EVENT_RATE_LOW:.0f}/s", floor["delivery low"]),
                  (f"copilot\n{EVENT_RATE:.0f}/s", ours["delivery"]), (f"floor\n{EVENT_RATE:.0f}/s", floor["delivery"])]
    right.bar([n for n, _ in deliveries], [d["p99"] for _, d in deliveries])
    right.axhline(50, color="red", linestyle="--", label="target p99 50 ms")
    right.set_yscale("log")
    right.set_ylabel("p99 ms (log)")
    right.set_title(f"delivery p99, {WS_CLIENTS} clients")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> int:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: `make bench` installs it (Debian package wrk)")
    rss: dict[str, float] = {}
    calibrated = [calibrate()]
    with tempfile.TemporaryDirectory(prefix="copilot-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        floor_app = Floor(work, rss, stack)
        ours = all_in_one(work, rss, floor_app)
        floor = delivery_floors(work, rss)
        scale = scale_out(work, rss, floor_app)
        shared = investigators(work, rss, floor_app)
        size = data_size(work, rss, floor_app)
    calibrated.append(calibrate())
    lines = report(ours, floor, scale, size, shared, rss)
    print("\n".join(lines))
    chart(ours, floor, size, ROOT / "BENCHMARKS.png")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    generated = (
        f"{START}\nLast `make bench`: {stamp}, {os.cpu_count()} cores, wrk -c{CONNECTIONS} -d{DURATION}, "
        "PostgreSQL + NATS. The floor (bench/floor.py) decodes, does one INSERT and answers; get-incident is "
        "compared with the floor's list (one SELECT). Each row's floor figures come from a floor load run right "
        "after the copilot's (bench/run.py `Floor`). CPU ms/req is the server processes' user+system CPU over "
        "the run divided by the requests answered (PostgreSQL's own CPU is not in it). Reads after a create load "
        "run on analyzed tables (bench/run.py `analyze`). Chart: BENCHMARKS.png. Machine calibration (bench/run.py "
        f"`calibrate`, lower is faster): {calibrated[0]:.0f} ms at the start, {calibrated[1]:.0f} ms at the end.\n\n"
        + "\n".join(lines) + f"\n{END}")
    target = ROOT / "BENCHMARKS.md"
    text = target.read_text() if target.exists() else "# Benchmarks\n\n"
    if START in text and END in text:  # only the generated part is replaced; the notes around it stay
        text = text[:text.index(START)] + generated + text[text.index(END) + len(END):]
    else:
        text = "# Benchmarks\n\n" + generated + "\n"
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
