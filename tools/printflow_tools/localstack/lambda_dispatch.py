"""Running Lambda invocations in process, for moto's Step Functions engine and for tests.

moto cannot run Lambda code without Docker. Its Step Functions engine invokes Lambda through
a boto3 client it creates per call with ``boto3.client(...)`` (so on boto3's *default*
session) and reads ``FunctionError`` and the ``Payload`` stream from the response; the error
name used by ``Retry``/``Catch`` is the payload's ``errorType``, as on AWS.

:class:`LambdaDispatcher` answers ``lambda.Invoke`` calls before they leave botocore:

- ``before-parameter-build.lambda.Invoke`` keeps the caller's parameters in the request
  context (the function name as given, the raw payload);
- ``before-call.lambda.Invoke`` runs the registered Python handler and returns a response
  shaped like Lambda's (``StatusCode``, ``ExecutedVersion``, ``FunctionError``, ``Payload``).

The handlers are registered on the current default session *and* added to botocore's
``BUILTIN_HANDLERS``, because ``mock_aws`` swaps the default session for a fresh one (and a
server-mode engine may create one later); every session created while the dispatcher is
installed gets the handlers. Clients created *before* ``install()`` keep the events they
copied at creation and are not dispatched. After ``uninstall()`` the handlers that remain in
such sessions answer nothing (they pass through to the normal request path).

Executions run in moto's background threads, and a Task's invocation in yet another thread,
so registration and the invocation log are guarded by a lock; handlers run outside it and may
run concurrently.
"""

from __future__ import annotations

import io
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, cast

import boto3
from botocore import handlers as botocore_handlers
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

Handler = Callable[[Any, Any], Any]

_PARAMS_EVENT = "before-parameter-build.lambda.Invoke"
_CALL_EVENT = "before-call.lambda.Invoke"
_CONTEXT_KEY = "printflow_lambda_invoke"


@dataclass(slots=True)
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True, slots=True)
class Invocation:
    """One dispatched call, kept for assertions."""

    function_name: str
    event: Any
    error_type: str | None
    failure: Failure | None = None

    @property
    def trace(self) -> str | None:
        """The failure's traceback, as the function's log would hold it on AWS (the error
        payload carries none: see _fail)."""
        return None if self.failure is None else self.failure.formatted()


@dataclass(frozen=True, slots=True)
class Failure:
    """Where a function raised: its frames are noted as it fails and formatted when read.

    ``traceback.format_exc`` at every failure stat()ed each frame's file (linecache's
    freshness check) and read its source: 6% of the local stack's CPU in the 200-order fault
    run, where steps fail on purpose all the time (injected provider faults), for traces
    that are read only when a test fails. Keeping the traceback object instead would keep
    every failed invocation's frames, and their locals, alive.
    """

    frames: tuple[tuple[str, int, str], ...]  # file, line, function: innermost last
    exception: str  # "Type: message", as the traceback's last line

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        frames = tuple(
            (frame.f_code.co_filename, line, frame.f_code.co_name)
            for frame, line in traceback.walk_tb(exc.__traceback__)
        )
        return cls(frames, "".join(traceback.format_exception_only(exc)).rstrip("\n"))

    def formatted(self) -> str:
        stack = traceback.StackSummary.from_list(
            [traceback.FrameSummary(file, line, name, lookup_line=False)
             for file, line, name in self.frames]
        )  # fmt: skip
        return "".join(
            ["Traceback (most recent call last):\n", *stack.format(), self.exception, "\n"]
        )


@dataclass(slots=True)
class _Registration:
    handler: Handler
    timeout_seconds: int
    memory_limit_in_mb: int


@dataclass(slots=True)
class _Outcome:
    status_code: int = 200
    payload: bytes = b"null"
    function_error: str | None = None
    error: dict[str, str] | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def function_name_of(function: str) -> str:
    """``NAME``, ``NAME:qualifier``, ``acct:function:NAME`` or a full ARN -> ``NAME``."""
    parts = function.split(":")
    if function.startswith("arn:") and len(parts) >= 7 and parts[5] == "function":
        return parts[6]
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2]
    return parts[0]


class LambdaDispatcher:
    """Dispatches ``lambda.Invoke`` to in-process handlers, by function name.

    Use as a context manager (``with LambdaDispatcher() as lambdas: lambdas.register(...)``)
    or with :meth:`install` / :meth:`uninstall`.
    """

    def __init__(self, *, region: str = "us-east-1", account_id: str = "123456789012") -> None:
        self.region = region
        self.account_id = account_id
        self._lock = threading.Lock()
        self._handlers: dict[str, _Registration] = {}
        self._invocations: list[Invocation] = []
        self._sessions: list[Any] = []
        self._installed = False
        self._id = f"printflow-lambda-dispatch-{id(self)}"

    # -- registry ---------------------------------------------------------------------------

    def register(
        self,
        function: str,
        handler: Handler,
        *,
        timeout_seconds: int = 30,
        memory_limit_in_mb: int = 256,
    ) -> None:
        """Route invocations of ``function`` (a name or an ARN) to ``handler(event, context)``."""
        registration = _Registration(handler, timeout_seconds, memory_limit_in_mb)
        with self._lock:
            self._handlers[function_name_of(function)] = registration

    def unregister(self, function: str) -> None:
        with self._lock:
            self._handlers.pop(function_name_of(function), None)

    @property
    def invocations(self) -> list[Invocation]:
        """A snapshot of the calls dispatched so far, oldest first."""
        with self._lock:
            return list(self._invocations)

    def invocations_of(self, function: str) -> list[Invocation]:
        name = function_name_of(function)
        return [call for call in self.invocations if call.function_name == name]

    # -- installation -----------------------------------------------------------------------

    def install(self, session: boto3.Session | None = None) -> LambdaDispatcher:
        """Start answering ``lambda.Invoke`` on ``session`` (default: boto3's) and new sessions."""
        target = session or boto3._get_default_session()
        with self._lock:
            self._installed = True
            if (_PARAMS_EVENT, self._remember_params) not in botocore_handlers.BUILTIN_HANDLERS:
                botocore_handlers.BUILTIN_HANDLERS.append((_PARAMS_EVENT, self._remember_params))
                botocore_handlers.BUILTIN_HANDLERS.append((_CALL_EVENT, self._dispatch))
            if not any(known is target for known in self._sessions):
                self._sessions.append(target)
                target.events.register(
                    _PARAMS_EVENT, self._remember_params, unique_id=self._id + "-params"
                )
                # botocore's stubs say handlers return None; before-call ones answer the call.
                dispatch: Callable[..., Any] = self._dispatch
                target.events.register(_CALL_EVENT, dispatch, unique_id=self._id + "-call")
        return self

    def uninstall(self) -> None:
        with self._lock:
            self._installed = False
            for spec in ((_PARAMS_EVENT, self._remember_params), (_CALL_EVENT, self._dispatch)):
                while spec in botocore_handlers.BUILTIN_HANDLERS:
                    botocore_handlers.BUILTIN_HANDLERS.remove(spec)
            for session in self._sessions:
                session.events.unregister(_PARAMS_EVENT, unique_id=self._id + "-params")
                session.events.unregister(_CALL_EVENT, unique_id=self._id + "-call")
            self._sessions.clear()

    def __enter__(self) -> LambdaDispatcher:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    # -- botocore event handlers ------------------------------------------------------------

    def _remember_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self._installed:
            context[_CONTEXT_KEY] = dict(params)

    def _dispatch(
        self, context: dict[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        params = context.get(_CONTEXT_KEY)
        if not self._installed or params is None:
            return None
        name = function_name_of(str(params.get("FunctionName", "")))
        with self._lock:
            registration = self._handlers.get(name)
        if registration is None:
            outcome = _Outcome(
                status_code=404,
                error={
                    "Code": "ResourceNotFoundException",
                    "Message": f"Function not found: {self._arn(name)} (no handler registered "
                    "with the LambdaDispatcher)",
                },
            )
            return self._response(outcome)
        invocation_type = str(params.get("InvocationType") or "RequestResponse")
        try:
            event = json.loads(_payload_bytes(params.get("Payload")) or b"{}")
        except (ValueError, UnicodeDecodeError):
            outcome = _Outcome(
                status_code=400,
                error={
                    "Code": "InvalidRequestContentException",
                    "Message": "Could not parse request body into json",
                },
            )
            return self._response(outcome)
        if invocation_type == "DryRun":
            return self._response(_Outcome(status_code=204, payload=b""))
        if invocation_type == "Event":
            worker = threading.Thread(
                target=self._run, args=(name, registration, event), daemon=True
            )
            worker.start()
            return self._response(_Outcome(status_code=202, payload=b""))
        return self._response(self._run(name, registration, event))

    # -- invocation -------------------------------------------------------------------------

    def _run(self, name: str, registration: _Registration, event: Any) -> _Outcome:
        request_id = str(uuid.uuid4())
        context = LambdaContext(
            function_name=name,
            invoked_function_arn=self._arn(name),
            memory_limit_in_mb=registration.memory_limit_in_mb,
            aws_request_id=request_id,
            deadline=time.monotonic() + registration.timeout_seconds,
        )
        outcome = _Outcome(request_id=request_id)
        failure: Failure | None = None
        try:
            result = registration.handler(event, context)
        except Exception as exc:  # every failure becomes a function error, as on AWS
            _fail(outcome, type(exc).__name__, str(exc))
            failure = Failure.of(exc)
        else:
            try:
                outcome.payload = json.dumps(result).encode()
            except (TypeError, ValueError) as exc:
                _fail(outcome, "Runtime.MarshalError", f"Unable to marshal response: {exc}")
        with self._lock:
            self._invocations.append(
                Invocation(
                    name, event, _error_type(outcome) if outcome.function_error else None, failure
                )
            )
        return outcome

    def _arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"

    def _response(self, outcome: _Outcome) -> tuple[AWSResponse, dict[str, Any]]:
        headers = {"x-amzn-requestid": outcome.request_id}
        metadata = {
            "RequestId": outcome.request_id,
            "HTTPStatusCode": outcome.status_code,
            "HTTPHeaders": headers,
            "RetryAttempts": 0,
        }
        http = AWSResponse(
            url=f"https://lambda.{self.region}.amazonaws.com/",
            status_code=outcome.status_code,
            headers=cast(Any, headers),
            raw=None,
        )
        if outcome.error is not None:
            return http, {"Error": outcome.error, "ResponseMetadata": metadata}
        parsed: dict[str, Any] = {
            "ResponseMetadata": metadata,
            "StatusCode": outcome.status_code,
            "ExecutedVersion": "$LATEST",
            "Payload": StreamingBody(io.BytesIO(outcome.payload), len(outcome.payload)),
        }
        if outcome.function_error is not None:
            parsed["FunctionError"] = outcome.function_error
        return http, parsed


def _payload_bytes(payload: Any) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    data = payload.read()  # a file-like object, as boto3 also accepts
    return data.encode() if isinstance(data, str) else bytes(data)


def _fail(outcome: _Outcome, error_type: str, message: str) -> None:
    """Lambda's shape for an unhandled error; ``errorType`` is what Retry/Catch match.

    The stack trace is left empty: the payload becomes the Catch ``Cause``, which is stored
    on the order and may be mailed to operations, so it stays short and deterministic.
    """
    outcome.function_error = "Unhandled"
    outcome.payload = json.dumps(
        {"errorType": error_type, "errorMessage": message, "stackTrace": []}
    ).encode()


def _error_type(outcome: _Outcome) -> str | None:
    try:
        return str(json.loads(outcome.payload)["errorType"])
    except (ValueError, KeyError, TypeError):
        return None
