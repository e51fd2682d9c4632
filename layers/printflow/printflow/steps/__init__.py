"""The order-flow steps that run as plain Lambda tasks: consume-rest-api and send-email.

- :mod:`printflow.steps.context`: the step event contract (:class:`StepInvocation`);
- :mod:`printflow.steps.rest`: the ``printflow.order/v1`` document and its delivery;
- :mod:`printflow.steps.email` / :mod:`printflow.steps.templating`: emails from templates;
- :mod:`printflow.steps.wiring`: builds the steps from :class:`StepSettings` and clients.

Both steps end in one of three ways: a small result, :class:`~printflow.errors.StepRetryable`
(the flow's ``Retry`` runs the step again) or :class:`~printflow.errors.StepFailed` (the
flow's ``onError`` path runs).
"""
