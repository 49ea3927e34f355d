"""SRE Copilot: an event-sourced incident backend."""

__version__ = "0.1.0"
