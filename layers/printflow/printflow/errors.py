"""Domain exceptions. Handlers map them to HTTP statuses or Step Functions errors in one place."""

from __future__ import annotations


class PrintFlowError(Exception):
    """Base class of every error the library raises on purpose."""


class ClientInputError(PrintFlowError):
    """The caller sent something we refuse; ``status`` is the HTTP status that says why."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSignature(ClientInputError):
    status = 401
    code = "invalid_signature"


class NotFound(ClientInputError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ClientInputError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, allow: str = "POST") -> None:
        super().__init__(message)
        self.allow = allow


class PayloadTooLarge(ClientInputError):
    status = 413
    code = "payload_too_large"


class MalformedPayload(ClientInputError):
    status = 400
    code = "malformed_payload"


class ValidationError(PrintFlowError):
    """A configuration document (storefront, flow) is invalid; the message names the field."""


class ValidationErrors(ValidationError):
    """Every problem found in one document, in the order they were found.

    ``str()`` is the first message, so code that reports one error still reads as before;
    ``messages`` holds them all (each naming its location).
    """

    def __init__(self, messages: list[str]) -> None:
        super().__init__(messages[0])
        self.messages = list(messages)


class ConfigurationError(PrintFlowError):
    """The deployment is missing a setting or resource; raised at cold start."""


class OrderAlreadyRecorded(PrintFlowError):
    """A conditional write found the order already there (a duplicate delivery)."""

    def __init__(self, existing: dict[str, object]) -> None:
        super().__init__("order already recorded")
        self.existing = existing


class StepRetryable(PrintFlowError):
    """A flow step hit a transient failure (5xx, 429, network); Step Functions retries it.

    Lambda reports the class name as ``errorType``, so the compiled ``Retry`` matches
    ``"StepRetryable"``.
    """


class StepFailed(PrintFlowError):
    """A flow step failed for good (4xx, invalid data); the flow's ``onError`` path runs."""
