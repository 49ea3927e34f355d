"""Adapters to monitoring tools: alert payload formats, and connection probes."""
