"""How often each provider's render work is polled.

CHILI output tasks finish in seconds: poll every few seconds, within one poller run.
Customer's Canvas asks for at most one processing-results request per project per 60 s.
"""

from __future__ import annotations

from printflow.domain.render_job import PollingPolicy
from printflow.domain.storefront import ProviderName

POLICIES: dict[str, PollingPolicy] = {
    ProviderName.CHILI.value: PollingPolicy(interval_s=3.0, first_poll_s=0.0),
    ProviderName.CUSTOMERS_CANVAS.value: PollingPolicy(
        interval_s=60.0, first_poll_s=0.0, min_interval_s=60.0, recovery_delay_s=60.0
    ),
}


def policy_for(provider: str) -> PollingPolicy:
    return POLICIES[provider]
