"""What a projection is: a named consumer of the log that owns some read-model tables."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import msgspec
from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic

from copilot.domain.events import event_type
from copilot.projections.db import Transaction

__all__ = ["Facts", "Projection", "event_type", "json_text"]

Handler = Callable[[Transaction, Any], None]

_json = msgspec.json.Encoder(order="sorted")


def json_text(value: Any) -> str:
    """A JSON column's text, keys sorted so that a rebuild writes byte-identical rows."""
    return _json.encode(value).decode()


K = TypeVar("K")
V = TypeVar("V")


class Facts(Generic[K, V]):
    """What a projection learned from earlier events and that never changes afterwards (an
    investigation's incident and project, say), so that a later event's handler need not read it
    back: a read in the middle of a batch waits for everything sent before it. A miss, after a
    restart or once the fact was forgotten, reads the table.

    Bounded by LIMIT: when full, the oldest quarter is forgotten, since a fact is mostly needed
    soon after it is learned (an investigation's events follow its opening within seconds, or
    within a backlog's length). Each entry costs 380-610 bytes here (ids as UUID objects), so
    25,000 cost at most ~15 MB; at the earlier 100,000, the facts of one process's three maps
    alone could reach ~160 MB after that many incidents, half the 300 MB a process may use.
    """

    LIMIT = 25_000

    def __init__(self, limit: int | None = None) -> None:
        self._facts: dict[K, V] = {}
        self._limit = limit or self.LIMIT

    def __len__(self) -> int:
        return len(self._facts)

    def get(self, key: K) -> V | None:
        return self._facts.get(key)

    def put(self, key: K, value: V) -> V:
        if len(self._facts) >= self._limit and key not in self._facts:
            for oldest in list(itertools.islice(self._facts, max(self._limit // 4, 1))):
                del self._facts[oldest]
        self._facts[key] = value
        return value


class Projection:
    """Subclasses name themselves, list their tables, and map event classes to handlers.

    A handler writes rows with the transaction it is given; the runner commits those rows
    and the projection's new log position together, so a replayed event is never applied
    twice and a crash never leaves rows without their position (or the reverse).
    Handlers must be idempotent upserts/deletes keyed by ids, so a rebuild from an empty
    table gives the same rows as the live run.
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]

    def handlers(self) -> dict[type[DomainEvent], Handler]:
        raise NotImplementedError

    def __init__(self) -> None:
        self.position = 0
        self._by_topic = {get_topic(cls): handler for cls, handler in self.handlers().items()}

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self._by_topic)

    def apply(self, tx: Transaction, topic: str, event: DomainEvent, position: int) -> None:
        handler = self._by_topic.get(topic)
        if handler is not None:
            self.position = position  # the log position of the event being applied
            handler(tx, event)
