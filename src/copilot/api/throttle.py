"""In-process rate limits: per-caller request budget and failed-login throttling."""

from __future__ import annotations

import threading
import time
from collections import deque

from copilot.api.errors import TooManyRequestsError

__all__ = ["FixedWindowCounter", "LoginThrottle"]


class FixedWindowCounter:
    """Counts hits per key in fixed windows; answers (allowed, limit, remaining, reset_seconds)."""

    def __init__(self, limit: int, window_seconds: int = 60, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_keys = max_keys
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> tuple[bool, int, int, int]:
        now = time.time() if now is None else now
        window = int(now // self.window)
        with self._lock:
            start, count = self._counts.get(key, (window, 0))
            if start != window:
                start, count = window, 0
            count += 1
            if len(self._counts) >= self.max_keys and key not in self._counts:
                self._counts.clear()  # bounded memory; a reset only ever errs towards allowing
            self._counts[key] = (start, count)
        reset = int((window + 1) * self.window - now) + 1
        return count <= self.limit, self.limit, max(self.limit - count, 0), reset


class LoginThrottle:
    """Failed logins per email and per client address within a sliding window.

    The lock-out always ends with the window, so an attacker hammering a victim's email
    delays the victim by at most `window_seconds`, never locks them out for good.
    """

    def __init__(self, per_email: int, per_address: int, window_seconds: int = 900) -> None:
        self.per_email = per_email
        self.per_address = per_address
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def check(self, email: str, address: str) -> None:
        now = time.time()
        with self._lock:
            for key, limit in ((f"e:{email.lower()}", self.per_email), (f"a:{address}", self.per_address)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = int(times[0] + self.window - now) + 1
                    raise TooManyRequestsError(
                        f"too many failed logins; try again in {wait} seconds", retry_after=wait
                    )

    def failed(self, email: str, address: str) -> None:
        now = time.time()
        with self._lock:
            for key in (f"e:{email.lower()}", f"a:{address}"):
                self._recent(key, now).append(now)

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._failures.pop(f"e:{email.lower()}", None)
