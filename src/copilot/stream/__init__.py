"""Live updates: the WebSocket gateway on :8505 (and, with the stream issue, the relay)."""

from copilot.stream.gateway import create_gateway_app

__all__ = ["create_gateway_app"]
