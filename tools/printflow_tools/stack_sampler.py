"""A wall-clock sampler of every thread's stack, for the fault run's ``--profile``.

Every ``interval_s`` it looks at what each thread of the process is doing and counts, per
kind of thread (an SQS mapping's poller, moto's server, a schedule, the engine), the
innermost frame of PrintFlow code and the innermost frame of all: "the download function
waits in moto's DynamoDB lock" reads as ``sqs-DownloadFunction | download/service.py:...``
next to ``threading.py:acquire``. Wall-clock, so a thread blocked on a lock or a socket
counts as much as one on the CPU: that is the point (where the time goes, not the CPU).
"""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter
from types import FrameType

_OURS = ("/printflow/", "/functions/", "/printflow_tools/", "/moto/")
_NUMBERED = re.compile(r"[-_]\d+$|^Thread-\d+ ")
# Where an idle thread sits (a server's select, a pool worker or a schedule waiting for
# work): left out, so the report shows the threads that were doing or waiting on something.
_IDLE = frozenset(
    {
        "selectors.py:select",
        "threading.py:wait",
        "threading.py:_wait_for_tstate_lock",
        "thread.py:_worker",
        "socketserver.py:serve_forever",
    }
)


class StackSampler:
    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.samples: Counter[tuple[str, str, str]] = Counter()
        self.threads: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="stack-sampler")

    def __enter__(self) -> StackSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        names = {}
        while not self._stop.wait(self.interval_s):
            for thread in threading.enumerate():
                if thread.ident is not None:
                    names[thread.ident] = thread.name
            for ident, frame in sys._current_frames().items():
                name = names.get(ident, "?")
                if name == "stack-sampler":
                    continue
                kind = _NUMBERED.sub("", name)
                where = _where(frame)
                if where in _IDLE:
                    continue
                self.threads[kind] += 1
                self.samples[(kind, _ours(frame), where)] += 1

    def report(self, top: int = 30) -> list[str]:
        """The busiest (thread kind, innermost PrintFlow/moto frame, innermost frame)."""
        total = sum(self.samples.values()) or 1
        lines = [
            f"{100 * count / total:5.1f}%  {kind} (all)"
            for kind, count in self.threads.most_common(12)
        ]
        for (kind, ours, inner), count in self.samples.most_common(top):
            lines.append(f"{100 * count / total:5.1f}%  {kind:<34} {ours:<55} {inner}")
        return lines


def _where(frame: FrameType) -> str:
    code = frame.f_code
    return f"{code.co_filename.rsplit('/', 2)[-1]}:{code.co_name}"


def _ours(frame: FrameType | None) -> str:
    while frame is not None:
        filename = frame.f_code.co_filename
        if any(part in filename for part in _OURS) and "stack_sampler" not in filename:
            tail = "/".join(filename.rsplit("/", 3)[-3:])
            return f"{tail}:{frame.f_code.co_name}:{frame.f_lineno}"
        frame = frame.f_back
    return "-"
