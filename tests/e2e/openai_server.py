"""A local server speaking the OpenAI chat-completions protocol, so litellm's real HTTP path runs in tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIServer", "openai_server"]


@dataclass
class OpenAIServer:
    """What the server answers, and what it was asked."""

    answer: dict[str, Any]
    prompt_tokens: int = 812
    completion_tokens: int = 188
    fail: bool = False
    delay: float = 0.0  # seconds before each answer, as a real model takes
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@contextmanager
def openai_server(answer: dict[str, Any]) -> Iterator[OpenAIServer]:
    state = OpenAIServer(answer=answer)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            state.requests.append({"path": self.path, "body": body, "auth": self.headers.get("authorization")})
            time.sleep(state.delay)
            if state.fail:
                payload = json.dumps({"error": {"message": "overloaded", "type": "server_error"}}).encode()
                self.send_response(500)
            else:
                payload = json.dumps({
                    "id": f"chatcmpl-{len(state.requests)}", "object": "chat.completion", "created": int(time.time()),
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": json.dumps(state.answer)}}],
                    "usage": {"prompt_tokens": state.prompt_tokens, "completion_tokens": state.completion_tokens,
                              "total_tokens": state.prompt_tokens + state.completion_tokens},
                }).encode()
                self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
