"""The local HTTP servers stay quiet when a client hangs up, and still print other errors."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

from printflow_tools.loopback_http import LoopbackHTTPServer


@pytest.mark.parametrize(
    ("error", "printed"),
    [(ConnectionResetError(104, "reset"), False), (BrokenPipeError(), False),
     (ValueError("a bug in a handler"), True)],
)  # fmt: skip
def test_only_a_hang_up_goes_unprinted(
    error: Exception, printed: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    server = LoopbackHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        try:
            raise error
        except Exception:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()

    assert (type(error).__name__ in capsys.readouterr().err) is printed
