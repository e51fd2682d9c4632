"""The Powertools singletons every handler shares.

Service name, log level and metrics namespace come from the template's ``POWERTOOLS_*``
Globals. ``Tracer`` is not created here: importing the X-Ray SDK costs about 0.3 s, so only the
functions off the storefront's latency path create one (see :func:`tracer`); the webhook relies
on Lambda's active tracing for its invocation segment.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

logger = Logger()
metrics = Metrics(namespace="PrintFlow")


@cache
def tracer() -> Tracer:
    """The shared Tracer, created on first use (its import is the slowest in the layer).

    Only botocore is patched: patching httpx would add X-Ray trace headers to requests sent
    to storefront-configured URLs and render providers.
    """
    from aws_lambda_powertools import Tracer

    return Tracer(patch_modules=("botocore",))
