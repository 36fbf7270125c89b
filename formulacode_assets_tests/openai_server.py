"""A real OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks.

``ThreadingHTTPServer`` in a daemon thread answering ``POST /v1/chat/completions``. What it answers
is scriptable: a queue of one-shot actions (``script``) is consumed first, then ``responder`` decides
(a function of the request body). Every request is recorded, so tests can count calls made (or not
made) by the code under test.

Actions: ``Reply(content)`` (a normal completion), ``Status(code)`` (an HTTP error such as 429 or
500), ``Delay(seconds, then)`` (slow answer). A responder may also return a plain string (a reply).

``dspy_reply(**fields)`` formats outputs the way DSPy's ChatAdapter parses them
(``[[ ## field ## ]]`` sections ending with ``[[ ## completed ## ]]``), and ``requested_fields``
reads which output fields a DSPy request asks for, so one responder can serve several programs.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Delay",
    "OpenAIServer",
    "RecordedRequest",
    "Reply",
    "Status",
    "dspy_input",
    "dspy_reply",
    "requested_fields",
    "user_text",
]


@dataclass(frozen=True)
class Reply:
    content: str


@dataclass(frozen=True)
class Status:
    code: int
    message: str = "scripted error"


@dataclass(frozen=True)
class Delay:
    seconds: float
    then: Reply | Status | None = None  # None: ask the responder after the delay


Action = Reply | Status | Delay
Responder = Callable[[dict], "Action | str"]


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    body: dict
    authorization: str | None
    received_at: float = field(default_factory=time.monotonic)


def dspy_reply(**fields: Any) -> str:
    """An answer in DSPy ChatAdapter format, fields in the given order."""
    parts = [f"[[ ## {name} ## ]]\n{value}" for name, value in fields.items()]
    return "\n\n".join([*parts, "[[ ## completed ## ]]"])


_FIELD_LINE = re.compile(r"^\d+\. `(\w+)`", re.MULTILINE)


def requested_fields(body: dict) -> list[str]:
    """Output field names a DSPy ChatAdapter request asks for (from its system message)."""
    system = next((m["content"] for m in body.get("messages", []) if m.get("role") == "system"), "")
    if isinstance(system, list):  # content parts
        system = "".join(part.get("text", "") for part in system)
    _, _, outputs = system.partition("Your output fields are:")
    outputs, _, _ = outputs.partition("All interactions will be structured")
    return _FIELD_LINE.findall(outputs)


def user_text(body: dict) -> str:
    """The text of the last user message (where DSPy puts the inputs)."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    if not users:
        return ""
    content = users[-1]["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


def dspy_input(body: dict, name: str) -> str:
    """The value of one input field in a DSPy ChatAdapter request (``[[ ## name ## ]]`` section)."""
    text = user_text(body)
    match = re.search(rf"\[\[ ## {re.escape(name)} ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nRespond with |\Z)", text, re.S)
    return match.group(1) if match else ""


def _completion(content: str, model: str) -> dict:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"},
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


class OpenAIServer:
    """Start with ``with OpenAIServer(responder) as server:``; ``server.base_url`` ends in ``/v1``."""

    def __init__(self, responder: Responder | None = None, *, latency: float = 0.0):
        self.responder: Responder = responder or (lambda body: Reply("ok"))
        self.latency = latency
        self.requests: list[RecordedRequest] = []
        self._script: deque[Action] = deque()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0  # most requests answered at the same time: concurrency, seen by the server
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ---------------------------------------------------------------------------

    def script(self, *actions: Action) -> None:
        """Queue one-shot actions, used (in order) before the responder is asked."""
        with self._lock:
            self._script.extend(actions)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls

            def log_message(self, format, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
                    return
                server._record(RecordedRequest(self.path, body, self.headers.get("Authorization")))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                action = server._next_action(body)
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server.latency:
                        time.sleep(server.latency)
                finally:
                    with server._lock:
                        server.in_flight -= 1
                while isinstance(action, Delay):
                    time.sleep(action.seconds)
                    action = action.then if action.then is not None else server._respond(body)
                if isinstance(action, Status):
                    kind = "rate_limit_error" if action.code == 429 else "server_error"
                    self._send(action.code, {"error": {"message": action.message, "type": kind}})
                else:
                    self._send(200, _completion(action.content, body.get("model", "loopback")))

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-loopback", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- internals -------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_action(self, body: dict) -> Action:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self._respond(body)

    def _respond(self, body: dict) -> Action:
        action = self.responder(body)
        return Reply(action) if isinstance(action, str) else action
