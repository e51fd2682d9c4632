"""How often each provider's render work is polled (each job has its own poll timer).

The policy is part of the provider's spec (``providers/<name>.py``: ``POLLING``, with the
reasons for its numbers); this is the poller's and the start step's way to look it up.
"""

from __future__ import annotations

from printflow.domain.render_job import PollingPolicy
from printflow.providers.registry import spec_for


def policy_for(provider: str) -> PollingPolicy:
    """The polling policy of ``provider`` (a job's provider id); unknown ids are an error."""
    return spec_for(provider).polling
