"""PostgreSQL LISTEN on the event store's channel: wakes followers of the log at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["LogListener"]

log = logging.getLogger(__name__)


class LogListener:
    """A daemon thread that calls `on_notify()` for every NOTIFY the recorder sends on append."""

    def __init__(self, conninfo: str, channel: str, on_notify: Callable[[], None]) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.on_notify = on_notify
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=3)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    self.on_notify()  # anything appended while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.on_notify()
            except Exception:
                log.warning("LISTEN connection lost; followers poll until it is back", exc_info=True)
                self._stop.wait(1.0)
