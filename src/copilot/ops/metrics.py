"""Prometheus metrics of a copilot process, in one registry per process."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """Everything a copilot process exports; collectors for values read at scrape time are registered here."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("copilot_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=r)
        self.latency = Histogram("copilot_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
                                 registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.events_appended = Counter("copilot_events_appended_total", "Appends to the event store", registry=r)
        self.append_seconds = Histogram("copilot_append_duration_seconds", "Time to append to the event store",
                                        registry=r, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
        self.log_head = Gauge("copilot_log_head_position", "Position of the newest event in the log", registry=r)
        self.projection_position = Gauge("copilot_projection_position", "Position each projection has reached",
                                         ["projection"], registry=r)
        self.projection_lag = Gauge("copilot_projection_lag_events", "Events a projection is behind the log",
                                    ["projection"], registry=r)
        self.ws_connections = Gauge("copilot_websocket_connections", "Open WebSocket connections", registry=r)
        self.ws_dropped = Gauge("copilot_websocket_dropped_slow_clients_total", "Slow WebSocket clients closed",
                                registry=r)
        self.relay_lag = Gauge("copilot_relay_lag_events", "Events the relay has not yet published", registry=r)
        self.publish_errors = Counter("copilot_nats_publish_errors_total", "Failed publishes to NATS", registry=r)
        self.investigations = Counter("copilot_investigations_total", "Investigation runs finished", ["outcome"],
                                      registry=r)
        self.step_seconds = Histogram("copilot_investigation_step_duration_seconds", "Investigation step duration",
                                      ["step", "status"], registry=r,
                                      buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.llm_requests = Counter("copilot_llm_requests_total", "LLM requests (and cache hits)",
                                    ["model", "cached", "success"], registry=r)
        self.llm_tokens = Counter("copilot_llm_tokens_total", "LLM tokens", ["model", "kind"], registry=r)
        self.llm_cost = Counter("copilot_llm_cost_usd_total", "LLM spend in USD", ["model"], registry=r)
        self.llm_saved = Counter("copilot_llm_saved_usd_total", "LLM spend avoided by the cache", ["model"],
                                 registry=r)
        # HTTP requests being answered in this process (EdgeMiddleware): an investigator in the
        # same process leaves the CPU to them (Investigator.step).
        self.requests_in_flight = 0
        Gauge("copilot_http_requests_in_flight", "HTTP requests being answered", registry=r).set_function(
            lambda: self.requests_in_flight)
        # A request's two series, looked up once per (method, route, status): `labels()` checks
        # and locks on every call (2 to 4 µs a request here).
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def record_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered: counted by method, route template and status, and timed."""
        key = (method, route, status)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = (self.requests.labels(method, route, str(status)),
                                                  self.latency.labels(method, route))
        series[0].inc()
        series[1].observe(seconds)

    def record_llm_call(self, call: dict[str, Any]) -> None:
        model = str(call["model"])
        self.llm_requests.labels(model, str(bool(call["cached"])).lower(), str(bool(call["success"])).lower()).inc()
        self.llm_tokens.labels(model, "prompt").inc(int(call["prompt_tokens"]))
        self.llm_tokens.labels(model, "completion").inc(int(call["completion_tokens"]))
        self.llm_cost.labels(model).inc(float(call["cost_usd"]))
        self.llm_saved.labels(model).inc(float(call["saved_usd"]))

    def render(self) -> bytes:
        return generate_latest(self.registry)
