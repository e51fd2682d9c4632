"""Numbers a provider or a store sends as header text: a wait is read only from plain ASCII
digits, so characters ``str.isdigit()`` accepts (``²``) or thousands of digits are no wait,
never an exception in the step that reads them."""

from __future__ import annotations

import httpx
import pytest

from printflow.providers.http_answers import retry_after_s
from printflow.store_apis.base import StoreAnswer


@pytest.mark.parametrize("value", ["²", "¹²³", "١٢٣", "9" * 5000, "soon"])
def test_an_unreadable_retry_after_is_no_wait(value: str) -> None:
    # as the bytes arrive: httpx decodes them as UTF-8 (then Latin-1)
    response = httpx.Response(503, headers=[(b"Retry-After", value.encode())])
    assert response.headers["retry-after"] == value
    assert retry_after_s(response) is None


def test_a_retry_after_in_seconds_or_as_a_date_is_read() -> None:
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": " 30 "})) == 30.0
    past = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_s(past) == 0.0


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"X-Rate-Limit-Time-Reset-Ms": "1500"}, 1.5),
        ({"X-Rate-Limit-Time-Reset-Ms": "²"}, None),
        ({"X-Rate-Limit-Time-Reset-Ms": "7" * 5000}, None),
        ({"Retry-After": "2.0"}, 2.0),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "²"}, None),
    ],
)
def test_a_store_s_wait_headers(headers: dict[str, str], wait: float | None) -> None:
    raw = [(name.encode(), value.encode()) for name, value in headers.items()]
    answer = StoreAnswer(429, httpx.Headers(raw), None)
    assert answer.retry_after_s == wait
