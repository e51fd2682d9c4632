"""The base of the local HTTP servers (the API gateway, the REST receiver, the sandboxes)."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` that stays quiet when a client hangs up.

    A client closing its keep-alive connection (or a bounded reader stopping early) is
    normal, and the services these servers stand for log nothing for it; socketserver
    printed a ``ConnectionResetError`` traceback each time. Any other error is printed.
    """

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
