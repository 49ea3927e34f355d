"""Live updates: the relay (log → bus), the bus (NATS JetStream or in-process) and the WebSocket gateway."""

from copilot.stream.bus import EventBus, InProcessBus
from copilot.stream.events import PublicEvent, PublicEventEncoder
from copilot.stream.gateway import Gateway, Hub
from copilot.stream.relay import LogReader, Relay

__all__ = [
    "EventBus",
    "Gateway",
    "Hub",
    "InProcessBus",
    "LogReader",
    "PublicEvent",
    "PublicEventEncoder",
    "Relay",
]
