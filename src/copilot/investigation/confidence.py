"""From the engine's raw posterior to a confidence that means what it says.

The engine's raw posterior of its top cause is a score: a stated 60% may be right nine times in
ten. The map here turns it into the probability that the top cause is the true one: logistic
regression on the log-odds of the raw score (Platt scaling), fitted on the answers the engine
commits to in the evaluation scenarios (`python eval/evaluate.py --fit`, which also reports a
k-fold cross-validation of the fit). The fitted coefficients are data, kept in
`fitted_confidence.py`.

The engine's rules were tuned on those same scenarios, so there it is right far more often than
on incidents it has never seen; a plain fit would promise that everywhere. The fit is therefore
pulled towards the identity (slope 1, intercept 0: "the raw posterior is right") by a prior worth
a fixed share of the data (`PRIOR_SHARE`), chosen on answers the engine gave to scenarios the
first time it saw them (see eval/README.md). The map is strictly increasing: it never reorders
causes, and more confirmations always mean more confidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from copilot.investigation import fitted_confidence

__all__ = ["PRIOR_SHARE", "ConfidenceMap", "Platt", "fit", "fitted_map", "identity"]

ConfidenceMap = Callable[[float], float]
# The prior towards the identity weighs as much as this share of the fitted answers. At 0.5 the map's
# mean stated confidence over the tuning set's committed answers (0.78) is what the engine delivered on
# the committed answers it first gave to the four batches written blind, by two authors (about 76%);
# at 0.15 it promised 0.85, and on the second author's batch it was right 58% of the time.
PRIOR_SHARE = 0.5
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


def fit(points: Sequence[tuple[float, bool]], prior_share: float = PRIOR_SHARE) -> Platt:
    """The Platt map that best predicts `right` from `raw` over `points`, by Newton's method: the
    maximum a posteriori of the log-likelihood with a Gaussian prior on the coefficients around the
    identity's, of precision `prior_share` times the number of points."""
    prior_weight = max(prior_share * len(points), 1e-3)
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
