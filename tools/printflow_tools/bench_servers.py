"""What the benches share to start their servers: free loopback ports, moto in its own
process, waiting until a port listens, stopping child processes for sure.

A bench that runs moto as a server in another process measures its own work, not moto's
(which then has a core of its own); these helpers keep that start-up in one place::

    with moto_server() as endpoint:        # "http://127.0.0.1:<port>"
        boto3.client("dynamodb", endpoint_url=endpoint)
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on the loopback interface nobody listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout_s: float = 30.0, process: subprocess.Popen[Any] | None = None
) -> None:
    """Return once something accepts connections on ``port``; fail if ``process`` (the one
    meant to listen) exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout_s} s")


# moto's server with PrintFlow's corrections (printflow_tools.localstack.fidelity), as the
# local stack runs it: a bench measures moto as it behaves like AWS.
_MOTO_SERVER = (
    "import sys\n"
    "from printflow_tools.localstack.fidelity import make_moto_behave_like_aws\n"
    "make_moto_behave_like_aws()\n"
    "from moto.server import main\n"
    "main(sys.argv[1:])\n"
)


def start_moto(port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """moto's server in its own process on loopback: the process and its endpoint URL."""
    port = port or free_port()
    process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", _MOTO_SERVER, "-H", LOOPBACK, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process)
    except BaseException:
        stop_processes([process])
        raise
    return process, f"http://{LOOPBACK}:{port}"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto in its own process while the block runs; yields its endpoint URL."""
    process, endpoint = start_moto()
    try:
        yield endpoint
    finally:
        stop_processes([process])


def stop_processes(processes: Sequence[subprocess.Popen[Any]], timeout_s: float = 10.0) -> None:
    """Terminate every process still running, then kill those that do not exit in time."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
