"""The cached builder every handler gets its services through."""

from __future__ import annotations

import threading

import pytest

from printflow.cold_start import ColdStart


def test_builds_on_first_use_and_keeps_the_value() -> None:
    built: list[object] = []
    service = ColdStart(lambda: built.append(object()) or built[-1])
    assert built == []  # nothing at import time

    first = service()
    assert service() is first
    assert len(built) == 1


def test_a_failed_build_is_tried_again_on_the_next_call() -> None:
    attempts = iter([RuntimeError("secret missing"), "service"])

    def build() -> str:
        outcome = next(attempts)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    service = ColdStart(build)
    with pytest.raises(RuntimeError, match="secret missing"):
        service()
    assert service() == "service"


def test_a_builder_that_returns_none_is_not_run_again() -> None:
    calls: list[int] = []
    nothing = ColdStart(lambda: calls.append(1))
    assert nothing() is None and nothing() is None
    assert calls == [1]


def test_inject_replaces_the_builder_and_reset_restores_it() -> None:
    service = ColdStart(lambda: "built")
    service.inject("fake")
    assert service() == "fake"
    service.reset()
    assert service() == "built"


def test_concurrent_first_calls_build_once() -> None:
    started = threading.Barrier(8)
    built: list[int] = []

    def build() -> int:
        built.append(1)
        return len(built)

    service = ColdStart(build)
    results: list[int] = []

    def call() -> None:
        started.wait()
        results.append(service())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert built == [1] and results == [1] * 8
