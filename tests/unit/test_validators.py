"""The shared config-time checks: each caller keeps its wording, and both URL checks refuse
what they refused before."""

from __future__ import annotations

import pytest

from printflow.errors import ConfigurationError, ValidationError
from printflow.validators import (
    UrlPolicy,
    ascii_int,
    bounded_int,
    check_https_uri,
    check_url,
    finite_float,
    is_secret_name,
)


@pytest.mark.parametrize(
    ("url", "config_problem", "step_problem"),
    [
        ("", "required, an https URL", "must be an https URL"),
        ("https://a b.example.com/", "not a valid URL", "must not contain whitespace"),
        ("http://orders.example.com/", "must be an https URL", "must be an https URL"),
        ("https://u:p@orders.example.com/", "credentials in the URL", "must not contain user info"),
        ("https://orders.example.com:x/", "not a valid URL", "has an invalid port"),
        ("https://[::1/", "not a valid URL", "must be an https URL with a valid host"),
        ("https:///path", "the URL has no host", "must be an https URL with a valid host"),
    ],
)
def test_each_caller_keeps_its_wording(url: str, config_problem: str, step_problem: str) -> None:
    with pytest.raises(ValidationError, match=f"^provider.baseUrl: {config_problem}"):
        check_url(url, "provider.baseUrl", UrlPolicy())
    with pytest.raises(ValidationError, match=f"^steps.call.uri: {step_problem}"):
        check_https_uri(url, "steps.call.uri")


def test_the_step_uri_may_carry_a_query_the_config_url_may_not() -> None:
    url = "https://orders.example.com/hook?shop=1"
    assert check_https_uri(url, "uri") == url
    with pytest.raises(ValidationError, match="must not have a query or fragment"):
        check_url(url, "baseUrl", UrlPolicy())
    assert check_url(url, "url", UrlPolicy(), allow_query=True) == url


def test_http_only_for_the_policy_hosts() -> None:
    assert check_url("http://127.0.0.1:8123/", "u", UrlPolicy.loopback()) == "http://127.0.0.1:8123"
    with pytest.raises(ValidationError, match="must be an https URL"):
        check_https_uri("http://127.0.0.1:8123/", "u")


def test_the_url_policy_follows_the_egress_allowlist() -> None:
    from printflow.net.ssrf import EgressPolicy

    policy = UrlPolicy.from_egress(EgressPolicy.parse("127.0.0.1:8123,[::1]:9000,sink"))
    assert policy.allow_insecure_hosts == frozenset({"127.0.0.1", "::1", "sink"})


def test_secret_names_are_the_whole_string() -> None:
    assert is_secret_name("printflow/chili-credentials")
    assert not is_secret_name("printflow/chili\n")
    assert not is_secret_name("a" * 513)
    assert not is_secret_name(None)


def test_bounded_int_refuses_booleans_text_and_out_of_range() -> None:
    assert bounded_int(5, "bad", minimum=1, maximum=9) == 5
    for value in (True, "5", 0, 10, 2.0):
        with pytest.raises(ValidationError, match=r"^bad$"):
            bounded_int(value, "bad", minimum=1, maximum=9)
    assert bounded_int("12", "bad", text=True, error=ConfigurationError) == 12
    with pytest.raises(ConfigurationError, match=r"^bad$"):
        bounded_int("twelve", "bad", text=True, error=ConfigurationError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1042", 1042),
        ("9" * 18, 10**18 - 1),
        ("9" * 19, None),  # past the limit: refused, never parsed
        ("5" * 5000, None),  # past Python's int-parsing limit too
        ("²", None),  # str.isdigit() is True for these, and int() raises on them
        ("¹²³", None),
        ("١٢٣", None),  # digits of another script: int() reads them, a header never means them
        ("", None),
        (" 12", None),
        ("-1", None),
        ("1e3", None),
    ],
)
def test_ascii_int_reads_plain_digits_only(text: str, expected: int | None) -> None:
    assert ascii_int(text) == expected


def test_finite_float_takes_usable_numbers_only() -> None:
    assert finite_float(2) == 2.0 and finite_float(2.5) == 2.5
    for unusable in (True, None, float("inf"), float("nan"), 10**400, [1], "2"):
        assert finite_float(unusable) is None
    assert finite_float(" 3.5 ", text=True) == 3.5
    for text in ("inf", "NaN", "soon", "9" * 400 + "e9"):
        assert finite_float(text, text=True) is None
