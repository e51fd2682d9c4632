"""Shared fixtures. The AWS environment is set before anything creates a client."""

from __future__ import annotations

import os

# Fake credentials and a fixed region for moto; set at import so no client ever sees real ones.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "printflow-tests",
        "POWERTOOLS_METRICS_NAMESPACE": "PrintFlow",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
# A `printflow local` someone runs on this machine must not become the CLI tests' stack.
os.environ["PRINTFLOW_LOCAL_STACK_FILE"] = os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"printflow-tests-{os.getpid()}-no-local-stack.json"
)
os.environ.pop("AWS_PROFILE", None)
