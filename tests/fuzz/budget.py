"""How much each fuzz test may try: every new fuzz test together stays under a minute on two shared cores."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def fuzz(examples: int) -> settings:
    """A modest number of examples, no deadline (two shared, noisy cores), no example database left in the checkout."""
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
