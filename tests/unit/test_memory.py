"""The server caps glibc's malloc arenas at start, unless the operator already chose a number."""

from __future__ import annotations

import platform

import pytest

from copilot.ops.memory import limit_malloc_arenas


def test_the_arena_cap_is_set_on_glibc() -> None:
    assert limit_malloc_arenas() is (platform.libc_ver()[0] == "glibc")


def test_an_operators_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_malloc_arenas() is False
