"""Debian's Prometheus and Alertmanager, started by the tests on free loopback ports."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import free_port

__all__ = ["alertmanager", "prometheus"]

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


def _require(binary: str) -> None:
    if not Path(binary).exists():
        pytest.fail(f"{binary} is missing: `make test` installs Debian's prometheus and prometheus-alertmanager")


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not become ready:\n{log.read_text()[-3000:]}")


@contextmanager
def _running(args: list[str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(ready_url, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def alertmanager(workdir: Path, webhook_url: str, token: str) -> Iterator[str]:
    """An Alertmanager routing every alert to our webhook with the integration's token; yields its URL."""
    _require(ALERTMANAGER)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: copilot
  group_by: ['alertname', 'service']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: copilot
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
""")
    url = f"http://127.0.0.1:{port}"
    with _running([ALERTMANAGER, f"--config.file={config}", f"--storage.path={workdir / 'data'}",
                   f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                  f"{url}/-/ready", workdir / "alertmanager.log"):
        yield url


@contextmanager
def prometheus(workdir: Path, alertmanager_url: str | None, rules: str) -> Iterator[str]:
    """A Prometheus evaluating `rules` every second and sending alerts to Alertmanager; yields its URL."""
    _require(PROMETHEUS)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (workdir / "rules.yml").write_text(rules)
    alerting = ""
    if alertmanager_url:
        target = alertmanager_url.removeprefix("http://")
        alerting = f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{target}']\n"
    config = workdir / "prometheus.yml"
    config.write_text(f"global:\n  evaluation_interval: 1s\n  scrape_interval: 15s\n"
                      f"rule_files: ['{workdir / 'rules.yml'}']\n{alerting}")
    url = f"http://127.0.0.1:{port}"
    with _running([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
                   f"--web.listen-address=127.0.0.1:{port}",
                   # Resend every second: the first send may beat Alertmanager discovery and be dropped.
                   "--rules.alert.resend-delay=1s"],
                  f"{url}/-/ready", workdir / "prometheus.log"):
        yield url
