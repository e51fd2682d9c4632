"""Sending email through SES v2 from the deployment's verified sender.

SES errors are sorted into the two step outcomes here, once: throttling and service errors
are worth a Step Functions retry, everything else (a rejected message, an unverified or
paused sender, bad parameters) will fail the same way again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from printflow.errors import StepFailed, StepRetryable

_RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "LimitExceededException",
        "InternalFailure",
        "InternalServiceError",
        "ServiceUnavailable",
    }
)
# One attempt per send: SES has no idempotency key, and botocore re-sends a SendEmail whose
# answer was lost (a read timeout), which SES may have sent already: a CI fault run counted
# a customer's email twice that way. A send refused with an answer (throttled, 5xx) sent
# nothing, and the step's own retry sends it; no answer leaves the record "sending".
SEND_ATTEMPTS = 1
# SES messages may quote recipient addresses (sandbox rejections do); customers' addresses
# must not end up in the execution history or the logs.
_ADDRESS = re.compile(r"[^\s@<>\"',;:()\[\]]+@[^\s@<>\"',;:()\[\]]+")
MAX_SES_MESSAGE_CHARS = 300


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None


class SesMailer:
    def __init__(self, client: Any, sender: str, *, configuration_set: str | None = None) -> None:
        self._client = client
        self.sender = sender
        self.configuration_set = configuration_set

    def send(self, email: OutgoingEmail) -> str:
        """Send ``email``; return the SES message id.

        Raises :class:`StepRetryable` or :class:`StepFailed` (see the module doc).
        """
        body: dict[str, Any] = {"Text": {"Data": email.text, "Charset": "UTF-8"}}
        if email.html is not None:
            body["Html"] = {"Data": email.html, "Charset": "UTF-8"}
        request: dict[str, Any] = {
            "FromEmailAddress": self.sender,
            "Destination": {"ToAddresses": list(email.recipients)},
            "Content": {
                "Simple": {"Subject": {"Data": email.subject, "Charset": "UTF-8"}, "Body": body}
            },
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self._client.send_email(**request)
        except ClientError as exc:
            raise _send_error(exc, self.sender) from exc
        except BotoCoreError as exc:
            raise StepRetryable(f"ses unreachable ({type(exc).__name__})") from exc
        return str(response["MessageId"])


def _send_error(exc: ClientError, sender: str) -> StepFailed | StepRetryable:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "Unknown")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    message = redact_addresses(str(error.get("Message") or ""), keep=sender)
    message = message[:MAX_SES_MESSAGE_CHARS]
    detail = f"ses refused the email ({code})" + (f": {message}" if message else "")
    if code in _RETRYABLE_CODES or status >= 500:
        return StepRetryable(detail)
    return StepFailed(detail)


def redact_addresses(text: str, *, keep: str = "") -> str:
    """``text`` with every email address but ``keep`` (our own sender) replaced."""
    kept = parseaddr(keep)[1].casefold()

    def replace(match: re.Match[str]) -> str:
        address = match.group(0)
        return address if kept and address.casefold().rstrip(".") == kept else "<address>"

    return _ADDRESS.sub(replace, text)
