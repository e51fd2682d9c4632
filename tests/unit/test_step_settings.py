"""Settings of the step functions: required variables, defaults, the egress allowlist."""

from __future__ import annotations

import pytest

from printflow.errors import ConfigurationError
from printflow.steps.settings import StepSettings

BASE = {"ORDER_TABLE": "orders"}


def test_defaults_need_only_the_order_table() -> None:
    settings = StepSettings.from_env(BASE)

    assert settings.core.order_table == "orders"
    assert settings.core.secrets_prefix == "printflow"
    assert settings.egress.allow_hosts == frozenset()
    assert settings.sender_email is None
    assert settings.operations_email is None
    assert settings.rest_timeout_s == 10


def test_every_variable_is_read() -> None:
    settings = StepSettings.from_env(
        {
            **BASE,
            "SECRETS_PREFIX": "pf-prod",
            "EGRESS_ALLOWLIST": "127.0.0.1:8123,localhost:8123",
            "SENDER_EMAIL": "PrintFlow <noreply@printflow.example>",
            "OPERATIONS_EMAIL": "ops@printflow.example",
            "REST_TIMEOUT_SECONDS": "20",
            "SIGNING_SECRET_CACHE_SECONDS": "60",
        },
        email=True,
    )

    assert settings.core.secrets_prefix == "pf-prod"
    assert settings.egress.allow_hosts == frozenset({"127.0.0.1:8123", "localhost:8123"})
    assert settings.sender_email == "PrintFlow <noreply@printflow.example>"
    assert settings.operations_email == "ops@printflow.example"
    assert settings.rest_timeout_s == 20
    assert settings.secret_cache_s == 60


@pytest.mark.parametrize(
    ("env", "email", "variable"),
    [
        ({}, False, "ORDER_TABLE"),
        (BASE, True, "SENDER_EMAIL"),
        ({**BASE, "SENDER_EMAIL": "not-an-address"}, True, "SENDER_EMAIL"),
        ({**BASE, "OPERATIONS_EMAIL": "Ops <ops@printflow.example>"}, False, "OPERATIONS_EMAIL"),
        ({**BASE, "REST_TIMEOUT_SECONDS": "0"}, False, "REST_TIMEOUT_SECONDS"),
        ({**BASE, "REST_TIMEOUT_SECONDS": "soon"}, False, "REST_TIMEOUT_SECONDS"),
        ({**BASE, "EGRESS_ALLOWLIST": "user@host:1"}, False, "EGRESS_ALLOWLIST"),
    ],
)
def test_a_bad_variable_fails_the_cold_start_by_name(
    env: dict[str, str], email: bool, variable: str
) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        StepSettings.from_env(env, email=email)
