"""From the engine's raw posterior to a confidence that means what it says.

The engine's raw posterior for a cause is a score: a stated 60% may be right nine times in ten.
The map here turns it into the probability that the cause is the true one: logistic regression
on the log-odds of the raw score (Platt scaling), fitted on every cause the engine ranks in its
top three for the evaluation scenarios, right or wrong (`python eval/evaluate.py --fit`, which
also cross-validates the fit). The fitted coefficients are data, kept in `fitted_confidence.py`.

The fit is pulled gently towards the identity (slope 1, intercept 0: "the raw posterior is
already right"), so a handful of scenarios cannot make it extreme, and it is strictly
increasing, so it never reorders causes and more confirmations always mean more confidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from copilot.investigation import fitted_confidence

__all__ = ["ConfidenceMap", "Platt", "fit", "fitted_map", "identity"]

ConfidenceMap = Callable[[float], float]
_EDGE = 1e-4  # raw scores are kept this far from 0 and 1, where their log-odds are infinite


def identity(p: float) -> float:
    return p


def _logit(p: float) -> float:
    p = min(max(p, _EDGE), 1 - _EDGE)
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


@dataclass(frozen=True)
class Platt:
    """p ↦ sigmoid(slope · logit(p) + intercept); the identity is Platt(1, 0)."""

    slope: float
    intercept: float

    def __call__(self, p: float) -> float:
        return _sigmoid(self.slope * _logit(p) + self.intercept)


def fit(points: Sequence[tuple[float, bool]], prior_weight: float = 1.0) -> Platt:
    """The Platt map that best predicts `right` from `raw` over `points` (maximum a posteriori:
    log-likelihood minus prior_weight/2 times the squared distance of the coefficients from the
    identity's), by Newton's method."""
    slope, intercept = 1.0, 0.0
    for _ in range(100):
        g_s = prior_weight * (slope - 1.0)
        g_i = prior_weight * intercept
        h_ss, h_si, h_ii = prior_weight, 0.0, prior_weight
        for raw, right in points:
            x = _logit(raw)
            q = _sigmoid(slope * x + intercept)
            w = q * (1 - q)
            g_s += (q - float(right)) * x
            g_i += q - float(right)
            h_ss += w * x * x
            h_si += w * x
            h_ii += w
        det = h_ss * h_ii - h_si * h_si
        step_s = (h_ii * g_s - h_si * g_i) / det
        step_i = (h_ss * g_i - h_si * g_s) / det
        slope, intercept = slope - step_s, intercept - step_i
        if abs(step_s) + abs(step_i) < 1e-10:
            break
    return Platt(slope, intercept)


def fitted_map() -> Platt:
    """The map fitted on the evaluation scenarios."""
    return Platt(fitted_confidence.SLOPE, fitted_confidence.INTERCEPT)
