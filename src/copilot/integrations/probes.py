"""Connection tests: one real request to the tool, 5 s at most, and an honest answer.

Every failure — refused, timed out, TLS, unauthorized, not the tool we expected — is a
`success: false` with a detail a person can act on, never an exception. Targets that
resolve to link-local or cloud-metadata addresses are refused before any request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["ProbeResult", "forbidden_target", "probe"]

TIMEOUT_SECONDS = 5.0
_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"}
# Cloud metadata services outside the link-local range: AWS over IPv6, Alibaba Cloud.
_METADATA_ADDRESSES = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


@dataclass(frozen=True)
class ProbeResult:
    success: bool
    latency_ms: float | None
    version: str | None
    detail: str


# What each tool answers to, and how to read its version from the answer.
_ENDPOINTS: dict[str, str] = {
    "prometheus": "/api/v1/status/buildinfo",
    "alertmanager": "/api/v2/status",
    "grafana": "/api/health",
    "datadog": "/api/v1/validate",
    "pagerduty": "/abilities",
}


def _headers(kind: str, credentials: dict[str, Any]) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "sre-copilot/connection-test"}
    if kind == "datadog" and credentials.get("api_key"):
        headers["DD-API-KEY"] = str(credentials["api_key"])
        if credentials.get("app_key"):
            headers["DD-APPLICATION-KEY"] = str(credentials["app_key"])
    elif kind == "pagerduty" and credentials.get("token"):
        headers["Authorization"] = f"Token token={credentials['token']}"
        headers["Accept"] = "application/vnd.pagerduty+json;version=2"
    elif credentials.get("token"):
        headers["Authorization"] = f"Bearer {credentials['token']}"
    return headers


def _auth(credentials: dict[str, Any]) -> httpx.BasicAuth | None:
    if credentials.get("username") and credentials.get("password"):
        return httpx.BasicAuth(str(credentials["username"]), str(credentials["password"]))
    return None


def _version(kind: str, body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    if kind == "prometheus":
        data = body.get("data")
        return str(data.get("version")) if isinstance(data, dict) and data.get("version") else None
    if kind == "alertmanager":
        info = body.get("versionInfo")
        return str(info.get("version")) if isinstance(info, dict) and info.get("version") else None
    if kind == "grafana":
        return str(body["version"]) if body.get("version") else None
    return None


def _looks_right(kind: str, body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if kind == "prometheus":
        return body.get("status") == "success"
    if kind == "alertmanager":
        return "versionInfo" in body or "cluster" in body
    if kind == "grafana":
        return body.get("database") == "ok" or "version" in body
    if kind == "datadog":
        return body.get("valid") is True
    if kind == "pagerduty":
        return "abilities" in body
    return True


async def forbidden_target(host: str) -> str | None:
    """Why this host must not be called, or None."""
    if host.lower().rstrip(".") in _METADATA_HOSTS:
        return f"{host} is a cloud metadata endpoint; refusing to call it"
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return f"cannot resolve {host}"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address in _METADATA_ADDRESSES:
            return f"{host} resolves to {address}, a cloud metadata endpoint; refusing to call it"
        if address.is_link_local or address.is_multicast or address.is_unspecified or address.is_reserved:
            return f"{host} resolves to {address}, a link-local or reserved address; refusing to call it"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None \
                and address.ipv4_mapped.is_link_local:
            return f"{host} resolves to {address}, a link-local address; refusing to call it"
    return None


async def probe(kind: str, config: dict[str, Any], credentials: dict[str, Any]) -> ProbeResult:
    path = _ENDPOINTS.get(kind)
    base = config.get("url")
    if path is None or not base:
        return ProbeResult(False, None, None, f"a {kind} integration has no endpoint to test; "
                                              "send it a webhook to check it end to end")
    url = base.rstrip("/") + path
    host = urlsplit(url).hostname or ""
    refusal = await forbidden_target(host)
    if refusal:
        return ProbeResult(False, None, None, refusal)
    started = time.perf_counter()
    try:
        # No redirects: a redirect could lead anywhere, including where the check above forbids.
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False,
                                     verify=bool(config.get("verify_tls", True)), trust_env=False) as client:
            response = await client.get(url, headers=_headers(kind, credentials), auth=_auth(credentials))
    except httpx.ConnectError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, ssl.SSLError) or "SSL" in str(error) or "certificate" in str(error):
            return ProbeResult(False, None, None, f"TLS handshake with {host} failed: {error}")
        return ProbeResult(False, None, None, f"could not connect to {host}: {error or 'connection refused'}")
    except httpx.TimeoutException:
        return ProbeResult(False, None, None, f"{host} did not answer within {TIMEOUT_SECONDS:.0f} s")
    except httpx.HTTPError as error:
        return ProbeResult(False, None, None, f"request to {host} failed: {type(error).__name__}: {error}")
    latency = round((time.perf_counter() - started) * 1000, 1)
    if response.status_code in (401, 403):
        return ProbeResult(False, latency, None, f"{host} refused the credentials (HTTP {response.status_code})")
    if response.is_redirect:
        return ProbeResult(False, latency, None, f"{host} redirects (HTTP {response.status_code}); "
                                                 "use the final URL")
    if response.status_code >= 400:
        return ProbeResult(False, latency, None, f"{host} answered HTTP {response.status_code} on {path}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not _looks_right(kind, body):
        return ProbeResult(False, latency, None, f"{url} did not answer as {kind} does; is this the right URL?")
    version = _version(kind, body)
    return ProbeResult(True, latency, version, f"connected to {kind}" + (f" {version}" if version else ""))
