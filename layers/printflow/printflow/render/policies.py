"""How often each provider's render work is polled (each job has its own poll timer).

CHILI output tasks take seconds: the first poll comes 2 s after the start, like CHILI's own
studio UI, then the interval grows by 30 % per poll with +/- 10 % jitter up to 30 s (2, 2.6,
3.4, 4.4, 5.7 ... s: a 10 s render is seen done after 4 polls, at most ~2.4 s late).
Customer's Canvas asks for at most one processing-results request per project per 60 s.
"""

from __future__ import annotations

from printflow.domain.render_job import PollingPolicy
from printflow.domain.storefront import ProviderName

POLICIES: dict[str, PollingPolicy] = {
    ProviderName.CHILI.value: PollingPolicy(
        interval_s=2.0, first_poll_s=2.0, growth=1.3, max_interval_s=30.0, jitter=0.1
    ),
    ProviderName.CUSTOMERS_CANVAS.value: PollingPolicy(
        interval_s=60.0, first_poll_s=0.0, min_interval_s=60.0, recovery_delay_s=60.0
    ),
}


def policy_for(provider: str) -> PollingPolicy:
    return POLICIES[provider]
