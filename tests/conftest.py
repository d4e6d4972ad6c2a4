"""Shared test configuration: Hypothesis profiles.

``default`` keeps the whole run quick; ``fuzz`` (``--hypothesis-profile=fuzz``, the
``fuzz`` tox env) runs at least 10,000 examples per property.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile(
    "fuzz",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", max_examples=200, deadline=None)
settings.load_profile("default")
