"""A loopback HTTP endpoint that plays a consume-rest-api receiver (an ERP, a print shop).

It records every delivery and answers with scripted statuses (``[500, 200]`` = fail once,
then accept), so tests and the demo can show retries and error paths.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from printflow_tools.loopback_http import LoopbackHTTPServer


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class RestSink:
    def __init__(self, statuses: Sequence[int] = (), default_status: int = 200) -> None:
        self._lock = threading.Lock()
        self._script = list(statuses)
        self.default_status = default_status
        self.deliveries: list[Delivery] = []
        self._server = LoopbackHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="rest-sink"
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, *statuses: int) -> None:
        """Answer the next deliveries with these statuses, then ``default_status``."""
        with self._lock:
            self._script = list(statuses)

    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def start(self) -> RestSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RestSink:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _next_status(self) -> int:
        with self._lock:
            return self._script.pop(0) if self._script else self.default_status

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = sink._next_status()
                headers = {k.lower(): v for k, v in self.headers.items()}
                sink._record(Delivery(self.path, headers, body, status))
                answer = json.dumps({"accepted": status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
