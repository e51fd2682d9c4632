"""Values a handler builds once per execution environment: its services and clients.

A handler module declares, at import::

    service = ColdStart(lambda: build_intake_service(SETTINGS))

and calls ``service()`` in its handler. The builder runs on the first call, not at import:
creating boto3 clients costs ~0.2 s and a module's import time is on every cold start's
critical path. Later invocations in the same environment get the same object, so caches kept
in it (provider credentials, OAuth tokens) survive between invocations.

Order of work: the first ``__call__`` takes a lock, builds, stores; every later call returns
the stored value without locking. A builder that raises stores nothing: the next invocation
builds again (a secret that was missing may exist by then). Tests either load a handler
module afresh (a new cold start) or call :meth:`ColdStart.inject` / :meth:`ColdStart.reset`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class ColdStart(Generic[T]):
    """A value built by ``builder`` on first use and kept for the execution environment."""

    def __init__(self, builder: Callable[[], T]) -> None:
        self._builder = builder
        self._built = False
        self._value: T | None = None
        # Lambda runs one invocation at a time per environment, but tests and the local
        # stack call a handler from several threads: build once, not once per thread.
        self._lock = threading.Lock()

    def __call__(self) -> T:
        if not self._built:
            with self._lock:
                if not self._built:
                    self._value = self._builder()
                    self._built = True
        # Not ``assert self._value is not None``: a builder may legitimately return None.
        return cast(T, self._value)

    def inject(self, value: T) -> None:
        """Use ``value`` instead of building one (a test's fake or moto-backed service)."""
        with self._lock:
            self._value = value
            self._built = True

    def reset(self) -> None:
        """Forget the value: the next call builds again, as a new cold start would."""
        with self._lock:
            self._value = None
            self._built = False
