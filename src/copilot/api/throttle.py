"""In-process rate limits: per-caller request budget and failed-login throttling."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

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
    """Failed logins within a sliding window, counted per (email, client address) and per address.

    Counting per email alone would hand anyone a lock on any account: ten wrong passwords every
    fifteen minutes would keep its owner out for as long as the attacker cares to. Counted per
    (email, address), a guesser at one address is slowed just as much, while the owner signing in
    from elsewhere is not refused because of someone else's failures; the per-address limit stops
    one address spraying many emails. A guesser spread over many addresses meets the per-email
    limit (`per_email * 10`), which does not apply to an address that has signed in to that
    account before: the owner's usual address keeps working whatever the attack.
    """

    def __init__(self, per_email: int, per_address: int, window_seconds: int = 900,
                 clock: Callable[[], float] = time.time, max_keys: int = 100_000) -> None:
        self.per_pair = per_email
        self.per_address = per_address
        self.per_email = per_email * 10
        self.window = window_seconds
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._trusted: dict[str, float] = {}  # "email address" -> last successful login
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def _limits(self, email: str, address: str) -> list[tuple[str, int]]:
        email = email.lower()
        limits = [(f"p:{email} {address}", self.per_pair), (f"a:{address}", self.per_address)]
        if f"{email} {address}" not in self._trusted:
            limits.append((f"e:{email}", self.per_email))
        return limits

    def check(self, email: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key, limit in self._limits(email, address):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = int(times[0] + self.window - now) + 1
                    raise TooManyRequestsError(
                        f"too many failed logins; try again in {wait} seconds", retry_after=wait
                    )

    def failed(self, email: str, address: str) -> None:
        now = self.clock()
        email = email.lower()
        with self._lock:
            if len(self._failures) >= self.max_keys:  # bounded memory: forget what has expired
                for key in [k for k, times in self._failures.items() if not times or times[-1] <= now - self.window]:
                    del self._failures[key]
            for key in (f"p:{email} {address}", f"a:{address}", f"e:{email}"):
                self._recent(key, now).append(now)

    def succeeded(self, email: str, address: str) -> None:
        now = self.clock()
        email = email.lower()
        with self._lock:
            self._failures.pop(f"p:{email} {address}", None)
            if len(self._trusted) >= self.max_keys:
                self._trusted.clear()  # errs towards the per-email limit applying again, never towards none
            self._trusted[f"{email} {address}"] = now
