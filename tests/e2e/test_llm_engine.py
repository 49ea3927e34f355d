"""The LLM engine through litellm's real code path, against a local OpenAI-protocol server: its
hypotheses are served, every call's tokens and cost are recorded, identical evidence is a cache hit,
and when the LLM fails the built-in engine answers."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fresh_postgres_database
from tests.e2e.api import Users
from tests.e2e.openai_server import OpenAIServer, openai_server
from tests.e2e.server import COPILOT, Server, assert_stops_cleanly, backend_env, start_server, user_env
from tests.e2e.test_investigation import wait_for_run

ANSWER = {"hypotheses": [{
    "category": "dependency_failure",
    "claim": "Redis connection pool exhausted on payment-api",
    "description": "Timeouts to Redis began with the symptoms.",
    "confidence": 0.72,
    "supporting_evidence": ["alert RedisTimeouts firing since 11:58 UTC"],
    "contradicting_evidence": [],
}]}
# gpt-4o-mini in litellm's bundled cost map: $0.15 per 1M prompt tokens, $0.60 per 1M completion tokens.
EXPECTED_COST = Decimal("812") * Decimal("0.00000015") + Decimal("188") * Decimal("0.0000006")


@pytest.fixture
def llm() -> Iterator[OpenAIServer]:
    with openai_server(ANSWER) as server:
        yield server


@pytest.fixture
def llm_server(backend: str, llm: OpenAIServer, tmp_path: Path) -> Iterator[Server]:
    with ExitStack() as stack:
        url = stack.enter_context(fresh_postgres_database()) if backend == "postgres" else None
        env = backend_env(backend, tmp_path / "var", url)
        env.update(COPILOT_LLM_MODEL="openai/gpt-4o-mini", COPILOT_LLM_API_BASE=llm.url, COPILOT_LLM_API_KEY="sk-local")
        server = start_server(backend, env, tmp_path / "server.log")
        try:
            yield server
        finally:
            assert_stops_cleanly(server)


def llm_calls(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    generate = next(s for s in workflow["steps"] if s["step"] == "generate")
    calls: list[dict[str, Any]] = generate["findings"]["llm_calls"]
    return calls


def test_the_llm_answers_every_call_is_accounted_and_identical_evidence_is_a_cache_hit(
    llm_server: Server, llm: OpenAIServer
) -> None:
    with Users(llm_server.api_url) as users:
        owner = users.register(who="sre")
        first = owner.client.post("/incidents", json={"title": "Checkout is slow", "service_name": "payment-api",
                                                      "severity": "high"}).json()
        workflow = wait_for_run(owner, first["id"], timeout=60)
        assert workflow["engine"] == "llm" and workflow["cached"] is False
        [call] = llm_calls(workflow)
        assert (call["prompt_tokens"], call["completion_tokens"], call["success"]) == (812, 188, True)
        assert Decimal(call["cost_usd"]) == EXPECTED_COST
        [request] = llm.requests
        assert request["body"]["model"] == "gpt-4o-mini" and request["auth"] == "Bearer sk-local"
        assert request["body"]["response_format"]["type"] == "json_schema"
        assert "payment-api" in request["body"]["messages"][1]["content"]

        [hypothesis] = owner.client.get(f"/incidents/{first['id']}/hypotheses").json()
        assert hypothesis["claim"] == "Redis connection pool exhausted on payment-api"
        assert hypothesis["confidence_score"] == 0.72
        assert hypothesis["confidence_lower"] < 0.72 < hypothesis["confidence_upper"]

        second = owner.client.post("/incidents", json={"title": "Checkout is slow", "service_name": "payment-api",
                                                       "severity": "high"}).json()
        again = wait_for_run(owner, second["id"], timeout=60)
        assert again["cached"] is True
        assert len(llm.requests) == 1  # no second call
        [hit] = llm_calls(again)
        assert hit["cached"] is True and Decimal(hit["cost_usd"]) == 0
        assert Decimal(hit["saved_usd"]) == EXPECTED_COST

        # The analytics add up exactly to what the LLM server reported.
        usage = owner.client.get("/analytics/token-usage").json()
        assert (usage["total_requests"], usage["total_tokens"]) == (1, 1000)
        assert Decimal(str(usage["total_cost_usd"])) == EXPECTED_COST
        assert usage["breakdown_by_type"] == [{"request_type": "hypothesis", "count": 1, "total_tokens": 1000,
                                               "cost_usd": float(EXPECTED_COST)}]
        assert len(usage["timeline"]) == 8 and sum(day["tokens"] for day in usage["timeline"]) == 1000
        summary = owner.client.get("/analytics/cost-summary?days=7").json()
        assert summary["overall_stats"]["total_requests"] == 1
        assert Decimal(str(summary["overall_stats"]["total_cost_usd"])) == EXPECTED_COST
        assert summary["cache_stats"]["cache_hit_rate"] == 50.0
        assert Decimal(str(summary["cache_stats"]["potential_savings"])) == EXPECTED_COST
        assert summary["cache_stats"]["incidents_with_hypotheses"] == 2
        assert [i["incident_id"] for i in summary["most_expensive_incidents"]] == [first["id"]]
        per_incident = owner.client.get(f"/analytics/incident-metrics/{first['id']}").json()
        assert (per_incident["requests"], per_incident["prompt_tokens"], per_incident["completion_tokens"]) == (
            1, 812, 188)
        assert per_incident["by_model"][0]["model"] == "openai/gpt-4o-mini"
        assert per_incident["by_step"][0]["step"] == "generate"
        assert per_incident["lifecycle"]["state"] == "detected"
        # A rebuild of the analytics read model, from the log alone, gives the same figures.
        rebuilt = subprocess.run([str(COPILOT), "projections", "rebuild", "analytics"], env=user_env(**llm_server.env),
                                 capture_output=True, text=True, timeout=60)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert owner.client.get("/analytics/token-usage").json() == usage
        assert owner.client.get(f"/analytics/incident-metrics/{first['id']}").json() == per_incident
        again_summary = owner.client.get("/analytics/cost-summary?days=7").json()
        assert again_summary["cache_stats"] == summary["cache_stats"]
        assert again_summary["overall_stats"] == summary["overall_stats"]

        other = users.register(who="other")
        assert other.client.get("/analytics/token-usage").json()["total_requests"] == 0
        assert other.client.get(f"/analytics/incident-metrics/{first['id']}").status_code == 404


def test_when_the_llm_fails_the_builtin_engine_answers_after_one_retry(llm_server: Server, llm: OpenAIServer) -> None:
    llm.fail = True
    with Users(llm_server.api_url) as users:
        owner = users.register(who="sre")
        incident = owner.client.post("/incidents", json={"title": "Checkout is slow", "service_name": "payment-api",
                                                         "severity": "high"}).json()
        workflow = wait_for_run(owner, incident["id"], timeout=60)
        assert workflow["status"] == "completed" and workflow["engine"] == "builtin (LLM failed)"
        calls = llm_calls(workflow)
        assert [c["success"] for c in calls] == [False, False]
        assert len(llm.requests) == 2
        assert owner.client.get(f"/incidents/{incident['id']}/hypotheses").json()
