"""`make soak`: sustained mixed load against `copilot serve` on PostgreSQL + NATS (never part of make test).

Clients, each a user of their own tenant, register, sign in, create incidents and walk them through
their lifecycle, read them back, list them, look at investigations, create projects and post alerts
through a webhook, at a steady total rate; two WebSocket clients listen all along. RSS of the server
is sampled throughout. At the end it checks, and exits non-zero unless all hold:

- no answer was a 5xx (nor a transport error);
- every acknowledged command is in the log exactly once: per kind of event, what the answers
  acknowledged equals what the log holds (investigations, the copilot's own reactions, aside);
- memory is flat: after the warm-up, the average RSS of the last third is within SOAK_RSS_GROWTH_PCT
  of the first third's.

Settings (environment): SOAK_SECONDS (600), SOAK_RPS (30, total requests per second), SOAK_CLIENTS (8),
SOAK_WARMUP_SECONDS (a fifth of the run, at most 60), SOAK_RSS_GROWTH_PCT (10). The result replaces the
"## Soak" section at the end of BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from websockets.sync.client import connect as ws_connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.run import COPILOT, PG_URL, ROOT, copilot_env, database, free_port, process

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
RPS = float(os.environ.get("SOAK_RPS", "30"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "8"))
WARMUP = float(os.environ.get("SOAK_WARMUP_SECONDS", str(min(60.0, SECONDS / 5))))
GROWTH_PCT = float(os.environ.get("SOAK_RSS_GROWTH_PCT", "10"))
PASSWORD = "soak password 1234"
PATH = ["acknowledged", "investigating", "mitigated", "resolved", "learned"]
SEVERITIES = ["critical", "high", "medium", "low"]


@dataclass
class Tally:
    """What the answers said, shared by every client."""

    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    latencies: list[float] = field(default_factory=list)
    acknowledged: Counter[str] = field(default_factory=Counter)  # event kind -> events acknowledged
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, status: int, seconds: float) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(seconds)

    def acked(self, **kinds: int) -> None:
        with self.lock:
            for kind, count in kinds.items():
                self.acknowledged[kind.replace("__", ".")] += count


class Client:
    """One user of one tenant, doing what an on-call engineer's tools do, picked at random."""

    def __init__(self, base: str, n: int, tally: Tally) -> None:
        self.base = base
        self.tally = tally
        self.random = random.Random(n)
        self.http = httpx.Client(base_url=base, timeout=30)
        self.email = f"soak-{n}-{uuid.uuid4().hex[:6]}@example.com"
        body = self.call("POST", "/auth/register", {"email": self.email, "password": PASSWORD,
                                                    "full_name": f"Soak {n}", "tenant_name": f"Soak {n}"})
        assert body is not None, "registration failed"
        self.tally.acked(Tenant__Registered=1, Session__Started=1, Project__Created=1)
        self.tenant_id = body["user"]["tenant_id"]
        self.project_id = body["user"]["project_id"]
        self.http.headers["Authorization"] = f"Bearer {body['access_token']}"
        hook = self.call("POST", f"/projects/{self.project_id}/monitoring/integrations",
                         {"name": "alerts", "type": "webhook"})
        assert hook is not None
        self.tally.acked(Integration__Created=1)
        self.hook = hook
        self.open: dict[str, int] = {}  # incident -> how far along PATH it is
        self.seen: list[str] = []
        self.firing: set[str] = set()

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             params: dict[str, Any] | None = None) -> Any:
        started = time.perf_counter()
        try:
            response = self.http.request(method, path, json=body, headers=headers, params=params)
        except httpx.TransportError:
            with self.tally.lock:
                self.tally.transport_errors += 1
            return None
        self.tally.answered(response.status_code, time.perf_counter() - started)
        return response.json() if 200 <= response.status_code < 300 and response.content else None

    def step(self) -> None:
        roll = self.random.random()
        if roll < 0.22:
            created = self.call("POST", "/incidents", {"title": f"soak {uuid.uuid4().hex[:8]}",
                                                       "service_name": self.random.choice(["api", "db", "web"]),
                                                       "severity": self.random.choice(SEVERITIES)})
            if created:
                self.tally.acked(Incident__Detected=1)
                self.open[created["id"]] = 0
                self.seen.append(created["id"])
        elif roll < 0.45 and self.open:
            incident = self.random.choice(list(self.open))
            state = PATH[self.open[incident]]
            if self.call("PATCH", f"/incidents/{incident}/state", {"state": state}) is not None:
                self.tally.acked(Incident__StateChanged=1)
                self.open[incident] += 1
                if self.open[incident] == len(PATH):
                    del self.open[incident]
        elif roll < 0.63 and self.seen:
            self.call("GET", f"/incidents/{self.random.choice(self.seen[-200:])}")
        elif roll < 0.80:
            self.call("GET", "/incidents", params={"limit": 10, "skip": self.random.randint(0, 20)})
        elif roll < 0.88 and self.seen:
            incident = self.random.choice(self.seen[-200:])
            self.call("GET", f"/incidents/{incident}/{self.random.choice(['workflow', 'hypotheses', 'metrics'])}")
        elif roll < 0.95:
            self.alert()
        elif roll < 0.97:
            self.call("GET", "/projects")
        elif roll < 0.985:
            if self.call("POST", "/projects", {"name": f"Project {uuid.uuid4().hex[:6]}"}) is not None:
                self.tally.acked(Project__Created=1)
        elif self.call("POST", "/auth/login", {"email": self.email, "password": PASSWORD},
                       headers={"Authorization": ""}) is not None:
            self.tally.acked(Session__Started=1)

    def alert(self) -> None:
        name = f"Alert{self.random.randint(0, 30)}"
        status = "resolved" if name in self.firing and self.random.random() < 0.5 else "firing"
        result = self.call("POST", f"/webhooks/webhook/{self.hook['id']}",
                           {"alerts": [{"name": name, "status": status, "severity": self.random.choice(SEVERITIES),
                                        "service": "api", "description": "soak"}]},
                           headers={"Authorization": f"Bearer {self.hook['webhook_token']}"})
        if result is not None:
            self.tally.acked(Alert__Fired_or_Refired=result["fired"], Alert__Resolved=result["resolved"],
                             Incident__Detected=len(result["incidents_opened"]))
            (self.firing.add if status == "firing" else self.firing.discard)(name)


def listen(ws_url: str, client: Client, stop: threading.Event, received: Counter[str]) -> None:
    """A dashboard: connected and subscribed the whole run, reconnecting (with `since`) if dropped."""
    since = 0
    while not stop.is_set():
        token = client.call("GET", "/auth/ws-token")
        if token is None:
            time.sleep(1)
            continue
        try:
            with ws_connect(ws_url, open_timeout=30) as socket:
                socket.send(json.dumps({"type": "connect", "token": token["token"], "tenantId": client.tenant_id}))
                socket.recv(30)
                socket.send(json.dumps({"type": "subscribe", "channels": ["incidents", "hypotheses", "alerts"],
                                        "since": since}))
                while not stop.is_set():
                    try:
                        message = json.loads(socket.recv(1))
                    except TimeoutError:
                        continue
                    if "position" in message:
                        since = max(since, int(message["position"]))
                        received["events"] += 1
        except Exception:  # counted; the dashboard reconnects as a browser would
            received["reconnects"] += 1
            time.sleep(1)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def logged_events(url: str) -> Counter[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT split_part(topic, ':', 2), count(*) FROM copilot_events GROUP BY 1").fetchall()
    counts = Counter({kind: int(n) for kind, n in rows})
    counts["Alert.Fired_or_Refired"] = counts.pop("Alert.Fired", 0) + counts.pop("Alert.Refired", 0)
    return counts


def main() -> int:
    tally = Tally()
    samples: list[tuple[float, float]] = []  # (seconds since start, RSS MB)
    received: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="copilot-soak-") as tmp, database("soak_copilot") as db:
        api, ws = free_port(), free_port()
        url = f"{PG_URL}/{db}"
        env = copilot_env(db, api, ws, Path(tmp))
        env.pop("COPILOT_RATE_LIMIT_PER_MINUTE")  # the soak runs under the default rate limit
        base = f"http://127.0.0.1:{api}/api/v1"
        with process([str(COPILOT), "serve"], env, f"http://127.0.0.1:{api}/healthz",
                     Path(tmp) / "copilot.log") as server:
            clients = [Client(base, n, tally) for n in range(CLIENTS)]
            stop = threading.Event()
            listeners = [threading.Thread(target=listen, args=(f"ws://127.0.0.1:{ws}/ws", c, stop, received))
                         for c in clients[:2]]
            started = time.monotonic()
            interval = CLIENTS / RPS  # each client's share of the total rate

            def drive(client: Client) -> None:
                due = time.monotonic() + client.random.random() * interval
                while not stop.is_set() and time.monotonic() - started < SECONDS:
                    if (wait := due - time.monotonic()) > 0:
                        time.sleep(wait)
                    client.step()
                    due += interval

            drivers = [threading.Thread(target=drive, args=(c,)) for c in clients]
            for thread in [*listeners, *drivers]:
                thread.start()
            next_report = 30.0
            while any(d.is_alive() for d in drivers):
                elapsed = time.monotonic() - started
                samples.append((elapsed, rss_mb(server.pid)))
                if elapsed >= next_report:
                    print(f"{elapsed:5.0f} s  {sum(tally.statuses.values()):7,d} requests  "
                          f"RSS {samples[-1][1]:.0f} MB  5xx {sum(n for s, n in tally.statuses.items() if s >= 500)}",
                          flush=True)
                    next_report += 30
                time.sleep(2)
            stop.set()
            for thread in [*drivers, *listeners]:
                thread.join(60)
            elapsed = time.monotonic() - started
            ready = httpx.get(f"http://127.0.0.1:{api}/readyz", timeout=10).status_code
            for client in clients:
                client.http.close()
        logged = logged_events(url)

    # -- checks --------------------------------------------------------------------------------
    requests = sum(tally.statuses.values())
    errors_5xx = sum(n for status, n in tally.statuses.items() if status >= 500)
    errors_4xx = sum(n for status, n in tally.statuses.items() if 400 <= status < 500)
    kinds = sorted(tally.acknowledged)
    mismatched = {k: (tally.acknowledged[k], logged.get(k, 0)) for k in kinds
                  if tally.acknowledged[k] != logged.get(k, 0)}
    acked_total = sum(tally.acknowledged.values())
    logged_total = sum(logged.get(k, 0) for k in kinds)
    steady = [mb for at, mb in samples if at >= WARMUP]
    third = max(len(steady) // 3, 1)
    first, last = statistics.mean(steady[:third]), statistics.mean(steady[-third:])
    growth = (last - first) / first * 100
    latencies = sorted(tally.latencies)
    p50, p99 = (latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000) \
        if latencies else (float("nan"), float("nan"))
    checks = {
        "no 5xx, no transport error": errors_5xx == 0 and tally.transport_errors == 0,
        "acknowledged commands = events in the log": not mismatched,
        f"RSS flat (last third within {GROWTH_PCT:g}% of first)": abs(growth) <= GROWTH_PCT,
        "ready at the end": ready == 200,
    }
    failed = [name for name, ok in checks.items() if not ok]
    verdict = "PASS: " + "; ".join(checks) if not failed else "FAIL: " + "; ".join(failed)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [
        "## Soak",
        "",
        f"Last `make soak`: {stamp}, {os.cpu_count()} cores, SOAK_SECONDS={SECONDS:g} (warm-up {WARMUP:g} s), "
        f"{CLIENTS} clients at {RPS:g} req/s in total, PostgreSQL + NATS, `copilot serve` (all roles), two "
        "WebSocket dashboards listening.",
        "",
        "| check | result |",
        "| --- | --- |",
        f"| requests | {requests:,} in {elapsed:.0f} s ({requests / elapsed:.1f}/s), "
        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms |",
        f"| 5xx / transport errors / 4xx | {errors_5xx} / {tally.transport_errors} / {errors_4xx}"
        + (f" ({', '.join(f'{s}: {n}' for s, n in sorted(tally.statuses.items()) if 400 <= s < 500)})"
           if errors_4xx else "") + " |",
        f"| acknowledged commands vs events in the log | {acked_total:,} vs {logged_total:,} "
        f"({', '.join(f'{k} {tally.acknowledged[k]:,}' for k in kinds)})"
        + (f"; mismatched: {mismatched}" if mismatched else "; equal for every kind") + " |",
        f"| RSS after warm-up: first third → last third (peak) | {first:.0f} → {last:.0f} MB ({growth:+.1f}%), "
        f"peak {max(mb for _, mb in samples):.0f} MB |",
        f"| WebSocket events received (reconnects) | {received['events']:,} ({received['reconnects']}) |",
        f"| verdict | {verdict} |",
    ]
    print("\n".join(section))
    benchmarks = ROOT / "BENCHMARKS.md"
    text = benchmarks.read_text() if benchmarks.exists() else "# Benchmarks\n"
    head = text.split("\n## Soak\n", 1)[0].rstrip("\n")
    benchmarks.write_text(head + "\n\n" + "\n".join(section) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
