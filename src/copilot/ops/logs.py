"""Logging: one JSON object per line for machines, readable lines when a person is watching."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["configure_logging", "log_context"]

# What the current request is about; every log line written while serving it carries these.
log_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("log_context", default=None)

# Whatever a log line carries, these never leave the process in clear.
_SECRETS = re.compile(r"(eyJ[\w-]+\.[\w-]+\.[\w-]+|whk_[\w-]{20,}|inv_[\w-]{20,}|(?i:password|token|secret|"
                      r"api_key|authorization)[\"']?\s*[:=]\s*[\"']?[^\s\"',}]+)")


def _redact(text: str) -> str:
    return _SECRETS.sub(lambda m: m.group(0).split("=")[0].split(":")[0] + "=[redacted]"
                        if ("=" in m.group(0) or ":" in m.group(0)) and not m.group(0).startswith("eyJ")
                        else "[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": _redact(record.getMessage()),
        }
        entry.update(log_context.get() or {})
        for key in ("request_id", "tenant_id", "project_id"):
            if hasattr(record, key):
                entry[key] = str(getattr(record, key))
        if record.exc_info:
            entry["exception"] = _redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _redact(super().format(record))


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
