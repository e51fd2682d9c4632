"""How often each provider's render work is polled (each job has its own poll timer).

CHILI output tasks take seconds: the first poll comes 2 s after the start, like CHILI's own
studio UI, then the interval grows by 15 % per poll with +/- 10 % jitter, up to 30 s (polls
at about 2, 4, 6.3, 9, 12, 15.5 ... s). A finished task is seen about 2 s + 15 % of its
render time late at worst: a 10 s render after 5 polls, 1-3 s late; the cap is reached
after ~3 minutes of rendering.
Customer's Canvas asks for at most one processing-results request per project per 60 s.
"""

from __future__ import annotations

from printflow.domain.render_job import PollingPolicy
from printflow.domain.storefront import ProviderName

POLICIES: dict[str, PollingPolicy] = {
    ProviderName.CHILI.value: PollingPolicy(
        interval_s=2.0, first_poll_s=2.0, growth=1.15, max_interval_s=30.0, jitter=0.1
    ),
    ProviderName.CUSTOMERS_CANVAS.value: PollingPolicy(
        interval_s=60.0, first_poll_s=0.0, min_interval_s=60.0, recovery_delay_s=60.0
    ),
}


def policy_for(provider: str) -> PollingPolicy:
    return POLICIES[provider]
