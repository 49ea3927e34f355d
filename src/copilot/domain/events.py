"""Looking up an aggregate's event classes by name."""

from __future__ import annotations

from eventsourcing.domain import DomainEvent

__all__ = ["event_type"]


def event_type(aggregate: type, name: str) -> type[DomainEvent]:
    """An aggregate's event class by name (the `@event` decorator makes them at class creation,
    where static type checkers cannot see them)."""
    cls = getattr(aggregate, name)
    if not (isinstance(cls, type) and issubclass(cls, DomainEvent)):
        raise TypeError(f"{aggregate.__name__}.{name} is not a domain event class")
    return cls
