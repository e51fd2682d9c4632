"""The errors a provider adapter raises on purpose, by what the caller should do next.

Transient (:class:`ProviderUnavailable` and its kinds): the poller backs off, the start-render
Lambda retries. Permanent (:class:`ProviderRejected`): the step fails with the provider's
message. Nothing is left half-done by raising one: the adapters raise before or instead of a
state change they would otherwise report.
"""

from __future__ import annotations

from printflow.errors import PrintFlowError


class ProviderError(PrintFlowError):
    """Base of every error a provider adapter raises on purpose."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ProviderUnavailable(ProviderError):
    """Transient: network error, 5xx, 429, unexpected status or malformed answer.

    The poller backs off (at least ``retry_after_s`` when set); the start-render Lambda turns
    it into ``StepRetryable``.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class ProviderAnswerMalformed(ProviderUnavailable):
    """Transient like any unavailability, but a protocol violation an operator must see
    (the poller counts it in its errors metric): not JSON, or not the expected shape."""


class TooSoon(ProviderUnavailable):
    """The adapter refused to call the provider yet: a documented minimum interval (CC: 60 s
    between polls of a project, and between recoveries) has not passed. Nothing was sent."""


class ProviderRejected(ProviderError):
    """Permanent: the provider refused the request (bad settings, credentials, input)."""


class ProviderConflict(ProviderRejected):
    """Permanent: the provider answered 409, its resource is in a state that refuses the
    request (Customer's Canvas: a ``GeneralConflictDto``). Asking again changes nothing."""


class RecoveryRefused(ProviderError):
    """A recovery is not possible: attempts used up, not supported, or the work is not failed."""
