"""The consume-rest-api step against httpx.MockTransport: document, headers, outcomes."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from printflow.adapters.order_table import NewOrderRecord, OrderTable
from printflow.adapters.signing_secrets import SigningSecrets
from printflow.domain.order import LineItem, Order, OrderKey, Property, RawBodyRef
from printflow.errors import StepFailed, StepRetryable
from printflow.net.safe_http import guarded_client
from printflow.net.ssrf import EgressGuard
from printflow.steps.context import StepInvocation, parse_step_event
from printflow.steps.rest import (
    MAX_RESPONSE_BYTES,
    SCHEMA,
    RestStep,
    artifact_links,
    request_budget,
)

NOW = 1_700_000_000.0
PUBLIC = "93.184.216.34"
KEY = OrderKey("demo-shopify", "5001")
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:OrderFlow:demo-shopify-5001-abc"
URI = "https://erp.example.com/hooks/printflow?tenant=7"
SIGNING_KEY = "erp-signing-key-0123456789"


def order_item(**extra: Any) -> dict[str, Any]:
    order = Order(
        key=KEY,
        platform="shopify",
        number="1001",
        name="#1001",
        email="jane@example.org",
        currency="EUR",
        created_at="2024-05-01T10:00:00Z",
        line_items=(LineItem("11", "Mug", 2, sku="MUG-1", properties=(Property("text", "Hi"),)),),
    )
    record = NewOrderRecord(
        order=order,
        raw_body=RawBodyRef("bucket", "webhooks/x.body"),
        flow="default",
        received_at="2024-05-01T10:00:01Z",
        sweep_due_at=0,
        due_shards=4,
    )
    item = record.to_item("intake-1")
    item.update(extra)
    return item


class FakeTable:
    def __init__(self, item: dict[str, Any] | None) -> None:
        self.item = item

    def get_order(self, key: OrderKey) -> dict[str, Any] | None:
        return self.item if key == KEY else None

    def record_rest_delivery(self, key: OrderKey, step: str, delivery: str, *_: Any) -> None:
        self.deliveries = [*getattr(self, "deliveries", []), (step, delivery)]


class FakeSecretsManager:
    """Just enough of the Secrets Manager client for Powertools' SecretsProvider."""

    def __init__(self, secrets: dict[str, str], error: str | None = None) -> None:
        self.secrets = secrets
        self.error = error
        self.calls = 0

    def get_secret_value(self, SecretId: str, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "GetSecretValue")
        if SecretId not in self.secrets:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "nope"}},
                "GetSecretValue",
            )
        return {"Name": SecretId, "SecretString": self.secrets[SecretId]}


def invocation(options: dict[str, Any] | None = None, **input_extra: Any) -> StepInvocation:
    event = {
        "input": {
            "order": {
                "pk": "ORDER#demo-shopify#5001",
                "sk": "ORDER",
                "storefrontId": KEY.storefront_id,
                "orderId": KEY.order_id,
            },
            **input_extra,
        },
        "step": {
            "id": "consume",
            "type": "consume-rest-api",
            "successStatus": "In progress",
            "options": options if options is not None else {"uri": URI},
        },
        "execution": EXECUTION,
    }
    return parse_step_event(event, expected_type="consume-rest-api")


Handler = Callable[[httpx.Request], httpx.Response]


class Harness:
    def __init__(
        self,
        handler: Handler | None = None,
        *,
        item: dict[str, Any] | None = None,
        answers: Sequence[str] = (PUBLIC,),
        secrets: FakeSecretsManager | None = None,
    ) -> None:
        self.requests: list[httpx.Request] = []
        self._handler = handler or (lambda request: httpx.Response(200, text="thanks"))

        def record(request: httpx.Request) -> httpx.Response:
            request.read()
            self.requests.append(request)
            return self._handler(request)

        self.secrets = secrets or FakeSecretsManager({})
        guard = EgressGuard(resolver=lambda host, port: list(answers))
        self.step = RestStep(
            FakeTable(order_item() if item is None else item),  # type: ignore[arg-type]
            guarded_client(guard, inner=httpx.MockTransport(record)),
            SigningSecrets(self.secrets, "printflow"),
            clock=lambda: NOW,
        )

    def run(self, inv: StepInvocation | None = None, remaining_s: float = 30.0) -> Any:
        return self.step.run(inv or invocation(), remaining_s=remaining_s)

    @property
    def document(self) -> dict[str, Any]:
        (request,) = self.requests
        doc: dict[str, Any] = json.loads(request.content)
        return doc


# -- success: the document and the headers ----------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_success(status: int) -> None:
    harness = Harness(lambda request: httpx.Response(status))

    delivery = harness.run()

    assert delivery.status == status
    assert len(harness.requests) == 1


def test_the_order_document_is_posted_to_the_checked_address() -> None:
    harness = Harness()

    delivery = harness.run()

    (request,) = harness.requests
    assert request.method == "POST"
    assert request.url.host == PUBLIC
    assert request.url.raw_path == b"/hooks/printflow?tenant=7"
    assert request.headers["host"] == "erp.example.com"
    assert request.extensions["sni_hostname"] == "erp.example.com"
    item = order_item()
    assert harness.document == {
        "schema": SCHEMA,
        "order": item["order"],
        "status": "Received",
        "statusHistory": item["statusHistory"],
        "currentStep": None,
        "artifacts": [],
        "flow": {"step": "consume", "execution": EXECUTION},
        "sentAt": "2023-11-14T22:13:20Z",
    }
    assert harness.document["order"]["lineItems"][0]["properties"] == [
        {"name": "text", "value": "Hi"}
    ]
    assert delivery.delivery_id == request.headers["x-printflow-delivery"]


def test_headers_identify_printflow_and_the_delivery() -> None:
    harness = Harness()
    options = {"uri": URI, "headers": {"Authorization": "Bearer abc", "X-Tenant": "7"}}

    harness.run(invocation(options))

    headers = harness.requests[0].headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("PrintFlow/")
    assert headers["authorization"] == "Bearer abc"
    assert headers["x-tenant"] == "7"
    expected = hashlib.sha256(f"{EXECUTION}\nconsume".encode()).hexdigest()[:32]
    assert headers["x-printflow-delivery"] == expected
    assert "x-printflow-signature" not in headers


def test_the_delivery_id_is_stable_across_retries_and_differs_per_step() -> None:
    first, retry = invocation(), invocation()
    other = StepInvocation(
        order=KEY,
        step_id="notify",
        step_type="consume-rest-api",
        success_status="",
        execution=EXECUTION,
    )
    assert first.delivery_id == retry.delivery_id
    assert first.delivery_id != other.delivery_id


def test_an_error_path_document_carries_the_error_without_a_stack_trace() -> None:
    cause = json.dumps(
        {
            "errorMessage": "render failed: template missing",
            "errorType": "StepFailed",
            "stackTrace": ['  File "/var/task/app.py", line 3, in handler\n'],
        }
    )
    item = order_item(currentStep="generate", error={"step": "generate", "error": "StepFailed"})
    harness = Harness(item=item)

    harness.run(invocation(error={"Error": "StepFailed", "Cause": cause}))

    assert harness.document["error"] == {
        "step": "generate",
        "error": "StepFailed",
        "cause": "render failed: template missing",
    }
    assert harness.document["currentStep"] == "generate"
    assert b"/var/task" not in harness.requests[0].content


def test_the_signature_is_the_generic_webhook_scheme() -> None:
    secrets = FakeSecretsManager({"printflow/flows/erp": json.dumps({"current": SIGNING_KEY})})
    harness = Harness(secrets=secrets)

    harness.run(invocation({"uri": URI, "signingSecret": "printflow/flows/erp"}))

    request = harness.requests[0]
    timestamp = request.headers["x-printflow-timestamp"]
    expected = hmac.new(
        SIGNING_KEY.encode(), timestamp.encode() + b"." + request.content, hashlib.sha256
    ).hexdigest()
    assert timestamp == str(int(NOW))
    assert request.headers["x-printflow-signature"] == f"v1={expected}"


def test_a_plain_secret_value_is_the_key_and_is_cached() -> None:
    secrets = FakeSecretsManager({"printflow/flows/erp": SIGNING_KEY})
    harness = Harness(secrets=secrets)
    signed = invocation({"uri": URI, "signingSecret": "printflow/flows/erp"})

    harness.run(signed)
    harness.run(signed)

    assert secrets.calls == 1
    for request in harness.requests:
        digest = hmac.new(
            SIGNING_KEY.encode(),
            request.headers["x-printflow-timestamp"].encode() + b"." + request.content,
            hashlib.sha256,
        ).hexdigest()
        assert request.headers["x-printflow-signature"] == f"v1={digest}"


@pytest.mark.parametrize(
    ("secret", "error", "expected", "message"),
    [
        ("other/erp", None, StepFailed, "must be named printflow/"),
        ("printflow/flows/missing", None, StepFailed, "ResourceNotFoundException"),
        ("printflow/flows/erp", "ThrottlingException", StepRetryable, "unavailable"),
        ("printflow/flows/erp", "AccessDeniedException", StepFailed, "cannot be read"),
    ],
)
def test_signing_secret_problems(
    secret: str, error: str | None, expected: type[Exception], message: str
) -> None:
    secrets = FakeSecretsManager({"printflow/flows/erp": SIGNING_KEY}, error=error)
    harness = Harness(secrets=secrets)

    with pytest.raises(expected, match=message):
        harness.run(invocation({"uri": URI, "signingSecret": secret}))
    assert harness.requests == []


# -- outcomes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, StepFailed),
        (401, StepFailed),
        (404, StepFailed),
        (422, StepFailed),
        (408, StepRetryable),
        (429, StepRetryable),
        (500, StepRetryable),
        (502, StepRetryable),
        (503, StepRetryable),
        (301, StepFailed),
        (302, StepFailed),
        (307, StepFailed),
    ],
)
def test_status_mapping(status: int, expected: type[Exception]) -> None:
    harness = Harness(
        lambda request: httpx.Response(
            status, text="nope", headers={"location": "https://elsewhere.example.com/"}
        )
    )

    with pytest.raises(expected) as caught:
        harness.run()

    message = str(caught.value)
    assert f"POST https://erp.example.com answered {status}: nope" in message
    assert "tenant=7" not in message  # paths and queries may carry tokens
    assert len(harness.requests) == 1  # never follows a redirect


def test_a_redirect_says_redirects_are_not_followed() -> None:
    harness = Harness(lambda request: httpx.Response(302, headers={"location": "/x"}))

    with pytest.raises(StepFailed, match="redirects are not followed"):
        harness.run()


def test_the_excerpt_is_short_and_on_one_line() -> None:
    body = "error:\r\n\tline two\x00\x1b[31m" + "x" * 5000
    harness = Harness(lambda request: httpx.Response(400, text=body))

    with pytest.raises(StepFailed) as caught:
        harness.run()

    excerpt = str(caught.value).split(": ", 1)[1]
    assert excerpt.startswith("error: line two [31mxxx")
    assert len(excerpt) <= 200
    assert "\n" not in excerpt
    assert "\r" not in excerpt
    assert "\x00" not in excerpt


class EndlessBody(httpx.SyncByteStream):
    """A body that never ends; counts what the client pulled."""

    def __init__(self) -> None:
        self.served = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.served < 50 * 1024 * 1024:
            self.served += 4096
            yield b"e" * 4096


def test_at_most_64_kib_of_an_error_body_is_read() -> None:
    body = EndlessBody()
    harness = Harness(lambda request: httpx.Response(500, stream=body))

    with pytest.raises(StepRetryable, match="answered 500"):
        harness.run()

    assert body.served <= MAX_RESPONSE_BYTES + 4096


def test_a_compressed_error_body_is_not_decoded() -> None:
    harness = Harness(
        lambda request: httpx.Response(
            400, stream=httpx.ByteStream(b"\x1f\x8b..."), headers={"content-encoding": "gzip"}
        )
    )

    with pytest.raises(StepFailed, match=r"answered 400: \(gzip-encoded body\)"):
        harness.run()
    assert harness.requests[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ReadTimeout("slow"), "timed out"),
        (httpx.ConnectTimeout("slow"), "timed out"),
        (httpx.ConnectError("refused"), "failed \\(ConnectError\\)"),
        (httpx.RemoteProtocolError("eof"), "failed \\(RemoteProtocolError\\)"),
    ],
)
def test_timeouts_and_network_errors_are_retryable(error: Exception, message: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(StepRetryable, match=message):
        Harness(fail).run()


def test_the_timeout_follows_the_lambdas_remaining_time() -> None:
    harness = Harness()

    harness.run(remaining_s=8.0)

    timeout = harness.requests[0].extensions["timeout"]
    # budget = min(10, (8 - 2) * 0.75) = 4.5 s, a third per network wait.
    assert timeout["read"] == pytest.approx(1.5)
    assert timeout["connect"] == pytest.approx(1.5)
    assert request_budget(300.0, 10.0) == 10.0


def test_too_little_time_left_is_retryable_and_sends_nothing() -> None:
    harness = Harness()

    with pytest.raises(StepRetryable, match="not enough time"):
        harness.run(remaining_s=2.5)
    assert harness.requests == []


# -- refusals before any request ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "answers", "message"),
    [
        ("https://erp.example.com/", ("10.0.0.5",), "is a private address"),
        ("https://erp.example.com/", ("169.254.169.254",), "is a link-local address"),
        ("https://169.254.169.254/latest/meta-data/", (), "is a link-local address"),
        ("https://0x7f000001/", (), "is a loopback address"),
        ("http://erp.example.com/", (PUBLIC,), "use https"),
        ("https://user:pw@erp.example.com/", (PUBLIC,), "credentials in the URL"),
        ("erp.example.com/hook", (PUBLIC,), "refused"),
    ],
)
def test_the_ssrf_guard_refuses_before_sending(
    uri: str, answers: tuple[str, ...], message: str
) -> None:
    harness = Harness(answers=answers)

    with pytest.raises(StepFailed, match=message):
        harness.run(invocation({"uri": uri}))
    assert harness.requests == []


def test_a_name_that_does_not_resolve_is_retryable() -> None:
    harness = Harness(answers=())

    with pytest.raises(StepRetryable, match="has no addresses"):
        harness.run()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "options.uri: required"),
        ({"uri": URI, "headers": {"Content-Type": "text/plain"}}, "cannot be overridden"),
        ({"uri": URI, "headers": {"X-PrintFlow-Signature": "v1=00"}}, "cannot be overridden"),
        ({"uri": URI, "headers": {"X-Bad": "a\r\nInjected: 1"}}, "control characters"),
        ({"uri": URI, "headers": {"Bad Name": "x"}}, "not a valid header name"),
        ({"uri": URI, "signingSecret": ""}, "signingSecret"),
    ],
)
def test_bad_options_fail_the_step(options: dict[str, Any], message: str) -> None:
    harness = Harness()

    with pytest.raises(StepFailed, match=message):
        harness.run(invocation(options))
    assert harness.requests == []


def test_a_missing_order_fails_the_step() -> None:
    harness = Harness(item={})
    harness.step._table = FakeTable(None)  # type: ignore[assignment]

    with pytest.raises(StepFailed, match="order '5001' of storefront 'demo-shopify' not found"):
        harness.run()
    assert harness.requests == []


def test_a_throttled_order_table_is_retryable() -> None:
    class Throttled:
        def get_item(self, **_: Any) -> dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}},
                "GetItem",
            )

    harness = Harness()
    harness.step._table = OrderTable(Throttled(), "orders")

    with pytest.raises(StepRetryable, match="order table unavailable"):
        harness.run()


# -- the event contract --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("input"), "'input' must be an object"),
        (lambda e: e["input"]["order"].pop("orderId"), "input.order.orderId"),
        (lambda e: e["input"]["order"].update(pk="ORDER#x#y"), "pk does not match"),
        (lambda e: e["step"].update(type="send-email"), "this function runs"),
        (lambda e: e.pop("execution"), "execution"),
        (lambda e: e["step"].update(options=[]), "'step.options' must be an object"),
    ],
)
def test_a_malformed_event_fails_the_step(
    mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    event: dict[str, Any] = {
        "input": {"order": {"pk": "ORDER#s#1", "sk": "ORDER", "storefrontId": "s", "orderId": "1"}},
        "step": {"id": "consume", "type": "consume-rest-api", "options": {"uri": URI}},
        "execution": EXECUTION,
    }
    parse_step_event(event, expected_type="consume-rest-api")  # valid as given
    mutate(event)

    with pytest.raises(StepFailed, match=message):
        parse_step_event(event, expected_type="consume-rest-api")


# -- the artifact seam --------------------------------------------------------------------------


def test_artifact_links_are_presigned_when_a_presigner_is_wired() -> None:
    calls: list[tuple[str, str, int]] = []

    def presign(bucket: str, key: str, expires_s: int) -> str:
        calls.append((bucket, key, expires_s))
        return f"https://{bucket}.s3.amazonaws.com/{key}?X-Amz-Signature=abc"

    artifacts = [
        {
            "bucket": "art",
            "key": "orders/s/1/j/front.pdf",
            "contentType": "application/pdf",
            "size": 1234,
            "sha256": "ab" * 32,
        },
        {"bucket": "art", "key": "orders/s/1/j/back.png", "filename": "Back.png"},
        {"key": "no-bucket"},
    ]

    links = artifact_links(artifacts, presign, now=NOW, expires_s=600)

    assert [link["name"] for link in links] == ["front.pdf", "Back.png"]
    assert links[0]["url"].startswith("https://art.s3.amazonaws.com/orders/s/1/j/front.pdf")
    assert links[0]["size"] == 1234
    assert links[0]["expiresAt"] == "2023-11-14T22:23:20Z"
    assert calls == [("art", "orders/s/1/j/front.pdf", 600), ("art", "orders/s/1/j/back.png", 600)]


@pytest.mark.parametrize("artifacts", [None, [], "junk"])
def test_no_artifacts_means_an_empty_list(artifacts: Any) -> None:
    assert artifact_links(artifacts, lambda b, k, e: "u", now=NOW) == []


def test_without_a_presigner_no_link_is_invented() -> None:
    assert artifact_links([{"bucket": "b", "key": "k"}], None, now=NOW) == []
