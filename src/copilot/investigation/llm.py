"""The LLM engine: the same evidence as a prompt, structured JSON back, every call accounted for.

Any litellm model string works (`COPILOT_LLM_MODEL`; `COPILOT_LLM_API_BASE` for self-hosted or
OpenAI-compatible servers). litellm always runs on its bundled cost map (no network) and is
imported only when an LLM is configured: it costs seconds and ~200 MB to load. A call that
fails, times out or answers outside the schema is retried once; then the built-in engine
answers instead, so an investigation never fails because the LLM did.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import msgspec

from copilot.investigation.engine import CATEGORIES, Calibration, credible_interval, generate_hypotheses
from copilot.investigation.evidence import Evidence

__all__ = ["LLMCall", "LLMEngine"]

log = logging.getLogger(__name__)

_Category = Literal[
    "deploy_regression", "config_change", "resource_saturation", "dependency_failure", "traffic_surge",
    "infrastructure_failure", "expired_credential", "backlog", "known_recurrence", "insufficient_evidence",
]


class _LLMHypothesis(msgspec.Struct):
    category: _Category
    claim: str
    description: str
    confidence: float
    supporting_evidence: list[str]
    contradicting_evidence: list[str]


class _LLMAnswer(msgspec.Struct):
    hypotheses: list[_LLMHypothesis]


_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["hypotheses"],
    "properties": {"hypotheses": {"type": "array", "maxItems": 5, "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["category", "claim", "description", "confidence", "supporting_evidence",
                     "contradicting_evidence"],
        "properties": {
            "category": {"type": "string", "enum": [*CATEGORIES, "insufficient_evidence"]},
            "claim": {"type": "string"},
            "description": {"type": "string"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "supporting_evidence": {"type": "array", "items": {"type": "string"}},
            "contradicting_evidence": {"type": "array", "items": {"type": "string"}},
        },
    }}},
}

_SYSTEM = (
    "You are an SRE investigating a production incident. From the evidence (JSON) propose at most five root-cause "
    "hypotheses, most likely first. Each cites only facts from the evidence, with their numbers and times. "
    "confidence is your calibrated probability that the hypothesis is the root cause. If nothing is decisive, "
    "answer a single hypothesis of category insufficient_evidence with low confidence."
)


@dataclass(frozen=True)
class LLMCall:
    """One request as it is recorded: tokens, exact cost, latency, outcome."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    latency_ms: float
    success: bool


def _exact_cost(litellm: Any, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
    """Tokens times the per-token prices of litellm's cost map, in exact decimals.

    litellm's own `completion_cost` multiplies floats (0.0002346 comes out 0.00023459999999999998);
    the prices themselves are exact in decimal, so the product is too.
    """
    try:
        info = litellm.get_model_info(model)
        return (Decimal(prompt_tokens) * Decimal(str(info.get("input_cost_per_token") or 0))
                + Decimal(completion_tokens) * Decimal(str(info.get("output_cost_per_token") or 0)))
    except Exception:  # a model without a price in the cost map costs what we cannot know: 0
        log.info("no price for %s in litellm's cost map", model)
        return Decimal(0)


def _litellm() -> Any:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never fetch the cost map
    import litellm

    litellm.telemetry = False
    return litellm


class LLMEngine:
    name = "llm"

    def __init__(self, model: str, api_base: str | None, api_key: str | None = None, timeout: float = 30.0) -> None:
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.timeout = timeout

    def _call(self, evidence: Evidence) -> tuple[_LLMAnswer | None, LLMCall]:
        litellm = _litellm()
        started = time.perf_counter()
        prompt = msgspec.json.encode(evidence).decode()
        response = None
        try:
            response = litellm.completion(
                model=self.model,
                messages=[{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt}],
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "hypotheses", "schema": _SCHEMA, "strict": True}},
                api_base=self.api_base, api_key=self.api_key, timeout=self.timeout, num_retries=0,
            )
            content = response.choices[0].message.content or ""
            answer: _LLMAnswer | None = msgspec.json.decode(content, type=_LLMAnswer)
        except Exception as error:  # any failure is recorded and retried/fallen back, never raised
            log.warning("LLM %s failed: %s", self.model, error)
            answer = None
        latency = round((time.perf_counter() - started) * 1000, 1)
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = _exact_cost(litellm, self.model, prompt_tokens, completion_tokens) if response is not None \
            else Decimal(0)
        return answer, LLMCall(self.model, prompt_tokens, completion_tokens, cost, latency, answer is not None)

    def generate(self, evidence: Evidence, calibration: Calibration, namespace: UUID
                 ) -> tuple[list[dict[str, Any]], list[LLMCall], str]:
        """Hypotheses, the calls made for them, and which engine answered in the end."""
        calls: list[LLMCall] = []
        for _attempt in range(2):  # the call and one retry
            answer, call = self._call(evidence)
            calls.append(call)
            if answer is not None and answer.hypotheses:
                return self._shape(answer, evidence, calibration), calls, self.name
        return generate_hypotheses(evidence, calibration, namespace), calls, "builtin (LLM failed)"

    @staticmethod
    def _shape(answer: _LLMAnswer, evidence: Evidence, calibration: Calibration) -> list[dict[str, Any]]:
        facts = len(evidence.alerts) + len(evidence.metrics) + len(evidence.changes) + len(evidence.similar)
        shaped = []
        for h in answer.hypotheses[:5]:
            p = min(max(h.confidence, 0.0), 1.0)
            confirmed, rejected = calibration.get(h.category, (0, 0))
            lower, upper = credible_interval(p, 3.0 + facts + confirmed + rejected)
            shaped.append({
                "category": h.category, "claim": h.claim[:500], "description": h.description[:5000],
                "confidence_score": round(p, 3), "confidence_lower": round(lower, 3),
                "confidence_upper": round(upper, 3), "supporting_evidence": h.supporting_evidence[:20],
                "contradicting_evidence": h.contradicting_evidence[:20],
                "recommendation": "inconclusive" if h.category == "insufficient_evidence"
                else ("investigate" if p >= 0.5 else "gather more evidence"),
            })
        return shaped
