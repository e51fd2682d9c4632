"""How often each provider's render work is polled (each job has its own poll timer).

CHILI output tasks take seconds: the first poll comes 2 s after the start, like CHILI's own
studio UI; then the interval is a fifth of the task's age, at least 2 s and at most 30 s,
with +/- 10 % jitter (polls at about 2, 4, 6, 8, 10, 12, 14.4, 17.3, 20.7 ... s; 30 s from
2.5 minutes on). A finished task is seen at most ~20 % of its render time (at least 2 s)
late: a 10 s render after 5 or 6 polls, at most ~2 s late.
Customer's Canvas asks for at most one processing-results request per project per 60 s.
"""

from __future__ import annotations

from printflow.domain.render_job import PollingPolicy
from printflow.domain.storefront import ProviderName

POLICIES: dict[str, PollingPolicy] = {
    ProviderName.CHILI.value: PollingPolicy(
        interval_s=2.0, first_poll_s=2.0, age_fraction=0.2, max_interval_s=30.0, jitter=0.1
    ),
    ProviderName.CUSTOMERS_CANVAS.value: PollingPolicy(
        interval_s=60.0, first_poll_s=0.0, min_interval_s=60.0, recovery_delay_s=60.0
    ),
}


def policy_for(provider: str) -> PollingPolicy:
    return POLICIES[provider]
